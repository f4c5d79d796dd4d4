/*
 * cmd_topic.c - `mqlog topic alter` and `mqlog topic delete`: change a topic's partition count and
 * retention, or delete it with its records, group offsets and forwarder checkpoints.
 *
 * Without a daemon the command opens the data directory as its writer and calls the store
 * (mq_store_topic_alter(), mq_store_topic_delete()). Beside a running mqlogd, which holds the writer lock, it
 * sends the request over mqlogd's control socket (control/control.h) and mqlogd calls the same functions
 * on its own writer, so that its ingest and the topic agree at once. Either way the forwarder check of
 * delete is made here, from the checkpoints in the catalog, which a reader sees as well as the writer.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"
#include "tool/tool.h"
#include "util/parse.h"

static void mq_topic_help(void)
{
    printf(
        "usage: mqlog topic alter -d DATA_DIR TOPIC [-P N] [--retention DURATION] [--retention-bytes SIZE]\n"
        "       mqlog topic delete -d DATA_DIR TOPIC [--force]\n"
        "\n"
        "alter raises TOPIC's partition count (never lowers it, as in Kafka) and replaces its retention.\n"
        "Records with a key go to murmur2(key) modulo the partition count: after a raise, new records\n"
        "with a key may land in another partition than the earlier ones with the same key.\n"
        "\n"
        "delete removes TOPIC: its partitions with every record, its consumer-group offsets and the\n"
        "forwarders' checkpoints for it. It refuses while a forwarder has records of TOPIC it has not\n"
        "forwarded yet (see 'mqlog forward status'), unless --force. An interrupted delete is finished\n"
        "by the next writer that opens the data directory.\n"
        "\n"
        "Both work with or without a running mqlogd: beside it they are sent over its control socket\n"
        "(DATA_DIR/.control) and mqlogd applies them at once. A topic that a mapping of mqlogd's\n"
        "configuration writes to keeps what alter set until the next reload (SIGHUP) or restart: then\n"
        "the mapping's retention applies again, and its partition count if it is higher. To change such\n"
        "a topic for good, edit its mapping. A deleted topic a mapping writes to is created again by the\n"
        "next message it routes there.\n"
        "\n"
        "  -d, --dir DATA_DIR         the data directory\n"
        "  -P, --partitions N         alter: the new partition count, 1..%d, not below the current one\n"
        "      --retention DURATION   alter: delete segments older than this: 250ms, 30s, 5m, 12h, 7d,\n"
        "                             2w; 0 keeps them forever\n"
        "      --retention-bytes SIZE alter: delete the oldest segments while a partition is larger:\n"
        "                             512MiB, 1GiB, 10GB; 0 means no limit\n"
        "      --force                delete: even when forwarders have not forwarded all of TOPIC\n"
        "  -h, --help                 this text\n",
        MQ_CATALOG_PARTITIONS_MAX);
}

/* Sends a one-line request to mqlogd and reports its reply: prints "ok" text on stdout, an error on
 * stderr. Returns the exit status. */
static int mq_topic_ask(int fd, const char *line)
{
    char reply[1024];
    if (!mq_tool_ctl_send(fd, line, strlen(line)) || !mq_tool_ctl_reply(fd, reply, sizeof reply))
        return MQ_EXIT_FAIL;
    if (strncmp(reply, "ok ", 3) == 0) {
        char *note = strchr(reply, '\t');
        if (note)
            *note++ = '\0';
        printf("%s\n", reply + 3);
        if (note)
            fprintf(stderr, "mqlog: note: %s\n", note);
        return MQ_EXIT_OK;
    }
    mq_tool_error("%s", strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
    return MQ_EXIT_FAIL;
}

static int mq_topic_alter(int argc, char **argv)
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
    int64_t partitions = -1, ret_ms = -1, ret_bytes = -1;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":d:P:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'P':
            if (!mq_tool_parse_int("topic", "--partitions", optarg, 1, MQ_CATALOG_PARTITIONS_MAX,
                                   &partitions))
                return MQ_EXIT_USAGE;
            break;
        case 'r':
            if (mq_parse_duration_ms(optarg, &ret_ms) != MQ_OK)
                return mq_tool_usage_error(
                    "topic", "--retention '%s': not a duration (e.g. 7d, 12h, 30m, 0 for none)", optarg);
            break;
        case 'b':
            if (mq_parse_size(optarg, &ret_bytes) != MQ_OK)
                return mq_tool_usage_error(
                    "topic", "--retention-bytes '%s': not a size (e.g. 1GiB, 500MB, 0 for none)", optarg);
            break;
        case 'h':
            mq_topic_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("topic", argc, argv, c);
        }
    }
    const char *name = NULL;
    int urc = mq_tool_dir_and_topic("topic", dir, argc, argv, &name);
    if (urc != MQ_EXIT_OK)
        return urc;
    if (partitions < 0 && ret_ms < 0 && ret_bytes < 0)
        return mq_tool_usage_error("topic", "nothing to change: give -P, --retention or --retention-bytes");

    int rc;
    int fd = mq_tool_daemon(dir);
    if (fd == -2)
        return MQ_EXIT_FAIL;
    if (fd >= 0) {
        char line[512], num[3][24];
        snprintf(num[0], sizeof num[0], "%" PRId64, partitions);
        snprintf(num[1], sizeof num[1], "%" PRId64, ret_ms);
        snprintf(num[2], sizeof num[2], "%" PRId64, ret_bytes);
        snprintf(line, sizeof line, "alter %s %s %s %s\n", name, partitions < 0 ? "-" : num[0],
                 ret_ms < 0 ? "-" : num[1], ret_bytes < 0 ? "-" : num[2]);
        rc = mq_topic_ask(fd, line);
        close(fd);
    } else {
        struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_WRITE, false);
        if (!store)
            return MQ_EXIT_FAIL;
        struct mq_catalog_topic t;
        rc = MQ_EXIT_FAIL;
        if (mq_tool_topic(store, name, &t)) {
            char msg[512] = "";
            if (mq_store_topic_alter(store, name, (int32_t)partitions, ret_ms, ret_bytes, msg, sizeof msg) ==
                MQ_OK) {
                printf("%s\n", msg);
                rc = MQ_EXIT_OK;
            } else {
                mq_tool_error("%s", msg);
            }
        }
        enum mq_err cerr = mq_store_close(store);
        if (cerr != MQ_OK && rc == MQ_EXIT_OK) {
            mq_tool_error("closing %s: %s", dir, mq_strerror(cerr));
            rc = MQ_EXIT_FAIL;
        }
    }
    if (rc == MQ_EXIT_OK && partitions > 0)
        fprintf(stderr,
                "mqlog: note: records with a key now go to murmur2(key) %% %" PRId64
                ", which may differ from the partition of earlier records with the same key\n",
                partitions);
    return rc;
}

/*
 * Whether a forwarder has not forwarded every record of topic: returns the number of (forwarder, partition)
 * pairs behind, the first described in first; -1 after an error message.
 */
static int mq_topic_unforwarded(struct mq_store *store, const char *topic, char *first, size_t first_size)
{
    struct mq_checkpoint *cps = NULL;
    size_t n = 0;
    enum mq_err err = mq_catalog_checkpoint_list(mq_store_catalog(store), "forward.", &cps, &n);
    if (err != MQ_OK) {
        mq_tool_error("reading the forwarders' checkpoints: %s", mq_strerror(err));
        return -1;
    }
    int behind = 0;
    size_t tl = strlen(topic);
    for (size_t i = 0; i < n; i++) {
        const char *key = cps[i].key;
        int64_t p, cp;
        if (strncmp(key, topic, tl) != 0 || key[tl] != ':' ||
            mq_parse_int64(key + tl + 1, 0, INT32_MAX, &p) != MQ_OK ||
            mq_parse_int64(cps[i].value, 0, INT64_MAX, &cp) != MQ_OK)
            continue;
        struct mq_part *part = NULL;
        int64_t start = 0, end = 0;
        if (mq_store_part(store, topic, (int32_t)p, &part) != MQ_OK ||
            mq_part_offsets(part, &start, &end) != MQ_OK)
            continue; /* a partition that is gone holds nothing to forward */
        if (cp < start)
            cp = start; /* what retention deleted is not waited for */
        if (cp >= end)
            continue;
        if (behind++ == 0)
            snprintf(first, first_size,
                     "forwarder %s has not forwarded %" PRId64 " record%s of %s-%d (offsets %" PRId64
                     "..%" PRId64 ")",
                     cps[i].connector + strlen("forward."), end - cp, end - cp == 1 ? "" : "s", topic, (int)p,
                     cp, end - 1);
    }
    mq_catalog_checkpoints_free(cps, n);
    return behind;
}

static int mq_topic_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool force = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'F':
            force = true;
            break;
        case 'h':
            mq_topic_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("topic", argc, argv, c);
        }
    }
    const char *name = NULL;
    int urc = mq_tool_dir_and_topic("topic", dir, argc, argv, &name);
    if (urc != MQ_EXIT_OK)
        return urc;

    int fd = mq_tool_daemon(dir);
    if (fd == -2)
        return MQ_EXIT_FAIL;
    /* The checks read the partitions through a reader store: a writer store that opened a partition could
     * not delete it. */
    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    int rc = MQ_EXIT_FAIL;
    struct mq_catalog_topic t;
    if (!store || !mq_tool_topic(store, name, &t))
        goto out;
    char first[512] = "";
    int behind = mq_topic_unforwarded(store, name, first, sizeof first);
    if (behind < 0)
        goto out;
    char more[64] = "";
    if (behind > 1)
        snprintf(more, sizeof more, ", and %d more partition%s behind", behind - 1,
                 behind == 2 ? " is" : "s are");
    if (behind > 0 && !force) {
        mq_tool_error("not deleting topic %s: %s%s (see 'mqlog forward status'; --force deletes it anyway)",
                      name, first, more);
        goto out;
    }
    if (behind > 0)
        fprintf(stderr, "mqlog: note: deleting topic %s although %s%s\n", name, first, more);
    if (fd >= 0) {
        char line[MQ_TOPIC_NAME_MAX + 16];
        snprintf(line, sizeof line, "delete %s\n", name);
        rc = mq_topic_ask(fd, line);
        goto out;
    }
    mq_store_close(store);
    if (!(store = mq_tool_open_store(dir, MQ_STORE_WRITE, false)))
        goto out;
    enum mq_err err = mq_store_topic_delete(store, name);
    if (err != MQ_OK) {
        mq_tool_error("deleting topic %s: %s", name, mq_strerror(err));
        goto out;
    }
    printf("topic %s: deleted (%d partition%s)\n", name, (int)t.partitions, t.partitions == 1 ? "" : "s");
    rc = MQ_EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    if (store) {
        enum mq_err cerr = mq_store_close(store);
        if (cerr != MQ_OK && rc == MQ_EXIT_OK) {
            mq_tool_error("closing %s: %s", dir, mq_strerror(cerr));
            rc = MQ_EXIT_FAIL;
        }
    }
    return rc;
}

int mq_cmd_topic(int argc, char **argv)
{
    if (argc < 2)
        return mq_tool_usage_error("topic", "no subcommand (alter or delete)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        mq_topic_help();
        return MQ_EXIT_OK;
    }
    if (strcmp(sub, "alter") == 0)
        return mq_topic_alter(argc - 1, argv + 1);
    if (strcmp(sub, "delete") == 0)
        return mq_topic_delete(argc - 1, argv + 1);
    return mq_tool_usage_error("topic", "unknown subcommand '%s' (alter or delete)", sub);
}
