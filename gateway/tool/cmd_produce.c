/*
 * cmd_produce.c - `mqlog produce`: every line of stdin becomes one record of a topic (tests, demos,
 * backfills). Records go through mq_part_produce(), which gathers them into batches, and everything is
 * flushed (fdatasync) before the command exits 0: exit status 0 means every line is durable.
 *
 * Beside a running mqlogd, which holds the writer lock, the records go over its control socket
 * (control/control.h): the partitions are chosen here as below, and mqlogd appends them and makes them
 * durable before it answers the final "end".
 *
 * Partition choice without -p: a keyed record goes where Kafka's default partitioner would put it
 * (murmur2 of the key, route/placement.h), so that the same key always lands in the same partition; records
 * without a key go round-robin, one record per partition in turn, starting at partition 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"
#include "route/placement.h"
#include "tool/tool.h"
#include "util/parse.h"

static void mq_produce_help(void)
{
    printf(
        "usage: mqlog produce -d DATA_DIR TOPIC [-p PARTITION] [-k KEY] [-H KEY=VALUE]... [-z CODEC] [-v]\n"
        "\n"
        "Appends every line of standard input (without its newline) as one record, timestamped now. The\n"
        "command exits 0 only once every record is durable (fdatasync). Beside a running mqlogd the records\n"
        "go over its control socket (DATA_DIR/.control) and mqlogd appends them, compressed as its\n"
        "partitions are (no -z), each line at most 349514 bytes.\n"
        "\n"
        "  -d, --dir DATA_DIR        the data directory\n"
        "  -p, --partition N         the partition (default: by key, else round-robin)\n"
        "  -k, --key KEY             the key of every record; without -p it picks the partition as\n"
        "                            Kafka's default partitioner does (murmur2)\n"
        "  -H, --header KEY=VALUE    a header on every record (repeatable)\n"
        "  -z, --compression CODEC   compress the batches: none (default), gzip, snappy, lz4 or zstd\n"
        "  -v, --verbose             print the number of records and their offsets on stderr\n"
        "  -h, --help                this text\n");
}

#define MQ_PRODUCE_MAX_HEADERS 64

/* What was produced to one partition, for -v. */
struct mq_produce_part {
    struct mq_part *part;
    int64_t first, last, count;
};

/* Buffered writes to the control socket. */
struct mq_produce_sock {
    int fd;
    char buf[65536];
    size_t used;
    bool failed;
};

static void mq_produce_sock_put(struct mq_produce_sock *s, const char *p, size_t n)
{
    if (s->used + n > sizeof s->buf) {
        s->failed = s->failed || !mq_tool_ctl_send(s->fd, s->buf, s->used);
        s->used = 0;
    }
    if (n > sizeof s->buf) {
        s->failed = s->failed || !mq_tool_ctl_send(s->fd, p, n);
        return;
    }
    memcpy(s->buf + s->used, p, n);
    s->used += n;
}

/*
 * produce through mqlogd (fd: its control socket): the topic is looked up in a reader store, every line sent
 * as a record of the partition chosen for it, then "end", whose answer says where the records went. Returns
 * the exit status.
 */
static int mq_produce_via_daemon(int fd, const char *dir, const char *topic_name, int64_t partition,
                                 const char *key, const struct mq_header *headers, int nheaders, bool verbose)
{
    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    struct mq_catalog_topic topic;
    int rc = MQ_EXIT_FAIL;
    char *line = NULL, *esc = NULL;
    size_t line_cap = 0;
    struct mq_produce_sock *sock = calloc(1, sizeof *sock);
    if (!sock) {
        mq_tool_error("out of memory");
        goto out;
    }
    sock->fd = fd;
    if (!store || !mq_tool_topic(store, topic_name, &topic))
        goto out;
    if (partition >= topic.partitions) {
        mq_tool_error("unknown partition %" PRId64 " of topic %s (it has %d: 0..%d)", partition, topic.name,
                      (int)topic.partitions, (int)topic.partitions - 1);
        goto out;
    }
    int32_t fixed = partition >= 0 ? (int32_t)partition
                    : key          ? mq_partition_for_key(key, strlen(key), topic.partitions)
                                   : -1;
    /* the request: "produce TOPIC KEY [=HK =HV]..." */
    size_t need = strlen(topic.name) + 16 + MQ_CTL_ESCAPED_MAX(key ? strlen(key) : 0);
    for (int i = 0; i < nheaders; i++)
        need += MQ_CTL_ESCAPED_MAX(headers[i].key_len) + MQ_CTL_ESCAPED_MAX(headers[i].value_len) + 2;
    if (!(esc = malloc(need > MQ_CTL_LINE_MAX ? need : MQ_CTL_LINE_MAX))) {
        mq_tool_error("out of memory");
        goto out;
    }
    size_t n = (size_t)sprintf(esc, "produce %s ", topic.name);
    if (key)
        n += mq_ctl_escape(esc + n, key, strlen(key));
    else
        esc[n++] = '-';
    for (int i = 0; i < nheaders; i++) {
        esc[n++] = ' ';
        n += mq_ctl_escape(esc + n, headers[i].key, (size_t)headers[i].key_len);
        esc[n++] = ' ';
        n += mq_ctl_escape(esc + n, headers[i].value, (size_t)headers[i].value_len);
    }
    esc[n++] = '\n';
    if (n > MQ_CTL_LINE_MAX) {
        mq_tool_error("the key and headers are too long to send to mqlogd");
        goto out;
    }
    mq_produce_sock_put(sock, esc, n);
    int32_t rr = 0;
    int64_t lineno = 0;
    ssize_t len;
    errno = 0;
    while (!sock->failed && (len = getline(&line, &line_cap, stdin)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        /* "record P =VALUE\n" within a request line: the worst case escapes every byte */
        if ((size_t)len > (MQ_CTL_LINE_MAX - 32) / 3) {
            mq_tool_error("line %" PRId64 " is too long to send to mqlogd (%zd bytes; at most %d beside it)",
                          lineno, len, (MQ_CTL_LINE_MAX - 32) / 3);
            goto out;
        }
        int32_t p = fixed;
        if (p < 0) {
            p = rr;
            rr = rr + 1 == topic.partitions ? 0 : rr + 1;
        }
        n = (size_t)sprintf(esc, "record %d ", (int)p);
        n += mq_ctl_escape(esc + n, line, (size_t)len);
        esc[n++] = '\n';
        mq_produce_sock_put(sock, esc, n);
        errno = 0;
    }
    if (ferror(stdin)) {
        mq_tool_error("reading standard input: %s", MQ_STRERROR(errno ? errno : EIO));
        goto out;
    }
    mq_produce_sock_put(sock, "end\n", 4);
    if (!sock->failed && sock->used)
        sock->failed = !mq_tool_ctl_send(fd, sock->buf, sock->used);
    char reply[2048];
    if (sock->failed || !mq_tool_ctl_reply(fd, reply, sizeof reply))
        goto out;
    if (strncmp(reply, "ok", 2) != 0) {
        mq_tool_error("%s", strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
        goto out;
    }
    rc = MQ_EXIT_OK;
    if (verbose) {
        /* the answer: one "P:FIRST:LAST:COUNT" per partition written */
        int64_t total = 0, v[4];
        int used = 0;
        for (const char *w = reply + 2; sscanf(w, " %" SCNd64 ":%" SCNd64 ":%" SCNd64 ":%" SCNd64 "%n", &v[0],
                                               &v[1], &v[2], &v[3], &used) == 4;
             w += used)
            total += v[3];
        fprintf(stderr, "mqlog: produced %" PRId64 " record%s to %s\n", total, total == 1 ? "" : "s",
                topic.name);
        for (const char *w = reply + 2; sscanf(w, " %" SCNd64 ":%" SCNd64 ":%" SCNd64 ":%" SCNd64 "%n", &v[0],
                                               &v[1], &v[2], &v[3], &used) == 4;
             w += used)
            fprintf(stderr, "mqlog:   %s-%d: %" PRId64 " at offsets %" PRId64 "..%" PRId64 "\n", topic.name,
                    (int)v[0], v[3], v[1], v[2]);
    }
out:
    free(line);
    free(esc);
    free(sock);
    mq_store_close(store);
    return rc;
}

int mq_cmd_produce(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"partition", required_argument, NULL, 'p'},
        {"key", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'},
        {"compression", required_argument, NULL, 'z'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *key = NULL;
    int64_t partition = -1;
    bool verbose = false;
    int codec = MQ_CODEC_NONE;
    struct mq_header headers[MQ_PRODUCE_MAX_HEADERS];
    int nheaders = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:p:k:H:z:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            if (!mq_tool_parse_int("produce", "-p", optarg, 0, MQ_CATALOG_PARTITIONS_MAX - 1, &partition))
                return MQ_EXIT_USAGE;
            break;
        case 'k':
            key = optarg;
            break;
        case 'H': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return mq_tool_usage_error("produce", "--header '%s': expected KEY=VALUE", optarg);
            if (nheaders == MQ_PRODUCE_MAX_HEADERS)
                return mq_tool_usage_error("produce", "at most %d headers", MQ_PRODUCE_MAX_HEADERS);
            headers[nheaders++] = (struct mq_header){.key = optarg,
                                                     .key_len = (int32_t)(eq - optarg),
                                                     .value = eq + 1,
                                                     .value_len = (int32_t)strlen(eq + 1)};
            break;
        }
        case 'z':
            for (codec = 0; codec < MQ_CODEC_COUNT && strcmp(optarg, mq_codec_name(codec)) != 0; codec++)
                ;
            if (codec == MQ_CODEC_COUNT)
                return mq_tool_usage_error("produce",
                                           "--compression '%s': expected none, gzip, snappy, lz4 or "
                                           "zstd",
                                           optarg);
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            mq_produce_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("produce", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("produce", "no data directory (-d DIR)");
    if (optind >= argc)
        return mq_tool_usage_error("produce", "no topic");
    if (optind + 1 < argc)
        return mq_tool_usage_error("produce", "unexpected argument '%s'", argv[optind + 1]);
    const char *topic_name = argv[optind];
    if (!mq_topic_name_valid(topic_name))
        return mq_tool_usage_error("produce", "invalid topic name '%s'", topic_name);

    int fd = mq_tool_daemon(dir);
    if (fd == -2)
        return MQ_EXIT_FAIL;
    if (fd >= 0) {
        if (codec != MQ_CODEC_NONE) {
            close(fd);
            mq_tool_error("-z: beside a running mqlogd records are compressed as its partitions are (the "
                          "configuration's compression)");
            return MQ_EXIT_FAIL;
        }
        int rc = mq_produce_via_daemon(fd, dir, topic_name, partition, key, headers, nheaders, verbose);
        close(fd);
        return rc;
    }
    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_WRITE, false);
    if (!store)
        return MQ_EXIT_FAIL;
    struct mq_catalog_topic topic;
    struct mq_produce_part *parts = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    int rc = MQ_EXIT_FAIL;
    if (!mq_tool_topic(store, topic_name, &topic))
        goto out;
    if (partition >= topic.partitions) {
        mq_tool_error("unknown partition %" PRId64 " of topic %s (it has %d: 0..%d)", partition, topic.name,
                      (int)topic.partitions, (int)topic.partitions - 1);
        goto out;
    }
    parts = calloc((size_t)topic.partitions, sizeof *parts);
    if (!parts) {
        mq_tool_error("out of memory");
        goto out;
    }
    /* A fixed key or partition means one partition for every line: open it (and fail) before reading. */
    int32_t fixed = -1;
    if (partition >= 0)
        fixed = (int32_t)partition;
    else if (key)
        fixed = mq_partition_for_key(key, strlen(key), topic.partitions);
    if (fixed >= 0 && !(parts[fixed].part = mq_tool_part(store, &topic, fixed)))
        goto out;
    if (fixed >= 0)
        mq_part_set_compression(parts[fixed].part, codec);

    struct mq_record rec = {
        .key = key,
        .key_len = key ? (int32_t)strlen(key) : -1,
        .headers = nheaders ? headers : NULL,
        .header_count = nheaders,
    };
    int32_t rr = 0; /* round-robin cursor */
    int64_t lineno = 0;
    ssize_t n;
    errno = 0;
    while ((n = getline(&line, &line_cap, stdin)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (n > INT32_MAX) {
            mq_tool_error("line %" PRId64 " is too long for a record (%zd bytes)", lineno, n);
            goto out;
        }
        int32_t p = fixed;
        if (p < 0) {
            p = rr;
            rr = rr + 1 == topic.partitions ? 0 : rr + 1;
        }
        struct mq_produce_part *pp = &parts[p];
        if (!pp->part) {
            if (!(pp->part = mq_tool_part(store, &topic, p)))
                goto out;
            mq_part_set_compression(pp->part, codec);
        }
        rec.timestamp = mq_now_ms();
        rec.value = line;
        rec.value_len = (int32_t)n;
        int64_t off = -1;
        enum mq_err err = mq_part_produce(pp->part, &rec, &off);
        /* Backpressure (MQ_ERR_FULL) or a batch that would outgrow the maximum (MQ_ERR_RANGE): write out
         * what is pending and try once more. */
        if (err == MQ_ERR_FULL || err == MQ_ERR_RANGE) {
            enum mq_err ferr = mq_part_flush(pp->part);
            err = ferr != MQ_OK ? ferr : mq_part_produce(pp->part, &rec, &off);
        }
        if (err != MQ_OK) {
            mq_tool_error("line %" PRId64 ": appending to %s-%d failed: %s%s", lineno, topic.name, (int)p,
                          mq_strerror(err), err == MQ_ERR_RANGE ? " (record too large)" : "");
            goto out;
        }
        if (!pp->count++)
            pp->first = off;
        pp->last = off;
        errno = 0;
    }
    if (ferror(stdin)) {
        mq_tool_error("reading standard input: %s", MQ_STRERROR(errno ? errno : EIO));
        goto out;
    }
    for (int32_t p = 0; p < topic.partitions; p++) {
        if (!parts[p].part)
            continue;
        enum mq_err err = mq_part_flush(parts[p].part);
        if (err != MQ_OK) {
            mq_tool_error("flushing %s-%d: %s", topic.name, (int)p, mq_strerror(err));
            goto out;
        }
    }
    rc = MQ_EXIT_OK;
    if (verbose) {
        int64_t total = 0;
        for (int32_t p = 0; p < topic.partitions; p++)
            total += parts[p].count;
        fprintf(stderr, "mqlog: produced %" PRId64 " record%s to %s\n", total, total == 1 ? "" : "s",
                topic.name);
        for (int32_t p = 0; p < topic.partitions; p++)
            if (parts[p].count)
                fprintf(stderr, "mqlog:   %s-%d: %" PRId64 " at offsets %" PRId64 "..%" PRId64 "\n",
                        topic.name, (int)p, parts[p].count, parts[p].first, parts[p].last);
    }
out:
    free(line);
    free(parts);
    enum mq_err cerr = mq_store_close(store);
    if (cerr != MQ_OK && rc == MQ_EXIT_OK) {
        mq_tool_error("closing %s: %s", dir, mq_strerror(cerr));
        rc = MQ_EXIT_FAIL;
    }
    return rc;
}
