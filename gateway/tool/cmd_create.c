/*
 * cmd_create.c - `mqlog create`: creates a topic (catalog row and partition directories) in a data
 * directory, itself or, beside a running mqlogd, through mqlogd's control socket.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool/tool.h"
#include "util/parse.h"
#include "util/topic.h"

static void mq_create_help(void)
{
    printf("usage: mqlog create -d DATA_DIR TOPIC --partitions N [--retention DURATION] "
           "[--retention-bytes SIZE]\n"
           "\n"
           "Creates TOPIC with N partitions. The data directory is created when missing. Beside a running\n"
           "mqlogd the request goes over its control socket (DATA_DIR/.control) and mqlogd creates it.\n"
           "\n"
           "  -d, --dir DATA_DIR         the data directory\n"
           "  -P, --partitions N         number of partitions, 1..%d (required)\n"
           "      --retention DURATION   delete segments older than this: 250ms, 30s, 5m, 12h, 7d, 2w;\n"
           "                             0 keeps them forever (default 7d)\n"
           "      --retention-bytes SIZE delete the oldest segments while a partition is larger: 512MiB,\n"
           "                             1GiB, 10GB; 0 means no limit (default 0)\n"
           "  -h, --help                 this text\n"
           "\n"
           "A topic name is " MQ_TOPIC_NAME_RULE ".\n",
           MQ_CATALOG_PARTITIONS_MAX);
}

int mq_cmd_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"partitions", required_argument, NULL, 'P'},
        {"retention", required_argument, NULL, 'r'},
        {"retention-bytes", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    int64_t partitions = -1;
    struct mq_retention ret = {.ms = MQ_RETENTION_MS_DEFAULT, .bytes = 0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:P:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'P':
            if (!mq_tool_parse_int("create", "--partitions", optarg, 1, MQ_CATALOG_PARTITIONS_MAX,
                                   &partitions))
                return MQ_EXIT_USAGE;
            break;
        case 'r':
            if (mq_parse_duration_ms(optarg, &ret.ms) != MQ_OK)
                return mq_tool_usage_error(
                    "create", "--retention '%s': not a duration (e.g. 7d, 12h, 30m, 0 for none)", optarg);
            break;
        case 'b':
            if (mq_parse_size(optarg, &ret.bytes) != MQ_OK)
                return mq_tool_usage_error(
                    "create", "--retention-bytes '%s': not a size (e.g. 1GiB, 500MB, 0 for none)", optarg);
            break;
        case 'h':
            mq_create_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("create", argc, argv, c);
        }
    }
    const char *topic = NULL;
    int urc = mq_tool_dir_and_topic("create", dir, argc, argv, &topic);
    if (urc != MQ_EXIT_OK)
        return urc;
    if (partitions < 0)
        return mq_tool_usage_error("create", "--partitions N is required");

    int fd = mq_tool_daemon(dir);
    if (fd == -2)
        return MQ_EXIT_FAIL;
    if (fd >= 0) {
        /* mqlogd writes the directory: it creates the topic (tool/ctl.c) */
        char line[MQ_TOPIC_NAME_MAX + 128], reply[1024];
        snprintf(line, sizeof line, "create %s %d %lld %lld\n", topic, (int)partitions, (long long)ret.ms,
                 (long long)ret.bytes);
        bool sent = mq_tool_ctl_send(fd, line, strlen(line)) && mq_tool_ctl_reply(fd, reply, sizeof reply);
        close(fd);
        if (!sent)
            return MQ_EXIT_FAIL;
        if (strncmp(reply, "ok ", 3) != 0) {
            mq_tool_error("%s", strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
            return MQ_EXIT_FAIL;
        }
        printf("%s\n", reply + 3);
        return MQ_EXIT_OK;
    }
    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_WRITE, true);
    if (!store)
        return MQ_EXIT_FAIL;
    char errstr[512] = "";
    enum mq_err err = mq_store_topic_create(store, topic, (int32_t)partitions, &ret, errstr, sizeof errstr);
    enum mq_err cerr = mq_store_close(store);
    if (err != MQ_OK) {
        mq_tool_error("%s", errstr[0] ? errstr : mq_strerror(err));
        return MQ_EXIT_FAIL;
    }
    if (cerr != MQ_OK) {
        mq_tool_error("closing %s: %s", dir, mq_strerror(cerr));
        return MQ_EXIT_FAIL;
    }
    printf("created topic %s with %d partition%s\n", topic, (int)partitions, partitions == 1 ? "" : "s");
    return MQ_EXIT_OK;
}
