/*
 * cmd_topics.c - `mqlog topics`: every topic and partition of a data directory with its offsets, size and
 * timestamps, as a table or as JSON. Opens the store read-only, so it works beside a running mqlogd.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool/out.h"
#include "tool/tool.h"

static void mq_topics_help(void)
{
    printf(
        "usage: mqlog topics -d DATA_DIR [--json]\n"
        "\n"
        "Lists every topic and partition: log start offset, end offset (the next offset to be written),\n"
        "offsets missing below the end, bytes in segment files, segment count, oldest and newest record\n"
        "timestamps (ISO 8601 UTC; epoch milliseconds in JSON, null when the partition is empty).\n"
        "Read-only: safe beside mqlogd.\n"
        "\n"
        "The end offset counts offsets lost to damage, as Kafka's log-end offset counts a range removed by\n"
        "compaction: MISSING says how many of them lie where a segment's batches stop short of the next\n"
        "segment (emptied, cut or removed segments). Readers skip them; `mqlog verify` names each, and\n"
        "batches that fail their CRC, which only reading every byte finds.\n"
        "\n"
        "  -d, --dir DATA_DIR  the data directory\n"
        "  -j, --json          one JSON document: {\"topics\":[{\"topic\",\"partitions\",\"retention_ms\",\n"
        "                      \"retention_bytes\",\"partition_list\":[{\"partition\",\"start_offset\",\n"
        "                      \"end_offset\",\"missing_offsets\",\"bytes\",\"segments\",\n"
        "                      \"oldest_timestamp\",\"newest_timestamp\"}]}]}\n"
        "  -h, --help          this text\n");
}

static void mq_out_ts(struct mq_out *out, int64_t ts)
{
    if (ts < 0)
        mq_out_str(out, "null");
    else
        mq_out_int(out, ts);
}

int mq_cmd_topics(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            mq_topics_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("topics", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("topics", "no data directory (-d DIR)");
    if (optind < argc)
        return mq_tool_usage_error("topics", "unexpected argument '%s'", argv[optind]);

    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!store)
        return MQ_EXIT_FAIL;
    struct mq_catalog_topic *topics = NULL;
    size_t ntopics = 0;
    enum mq_err err = mq_store_topic_list(store, &topics, &ntopics);
    if (err != MQ_OK) {
        mq_tool_error("%s: listing topics: %s (%s)", dir, mq_strerror(err),
                      mq_catalog_errmsg(mq_store_catalog(store)));
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }

    struct mq_out out;
    if (!mq_out_init(&out, STDOUT_FILENO, 64 * 1024)) {
        mq_tool_error("out of memory");
        free(topics);
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }
    int rc = MQ_EXIT_OK;
    char line[1024], ts1[40], ts2[40];
    int width = 24; /* the TOPIC column fits the longest name (at most 249 characters) */
    for (size_t i = 0; i < ntopics; i++)
        if ((int)strlen(topics[i].name) > width)
            width = (int)strlen(topics[i].name);
    if (json)
        mq_out_str(&out, "{\"topics\":[");
    else if (ntopics) {
        snprintf(line, sizeof line, "%-*s %5s %12s %12s %8s %14s %8s  %-24s  %s\n", width, "TOPIC", "PART",
                 "START", "END", "MISSING", "BYTES", "SEGMENTS", "OLDEST", "NEWEST");
        mq_out_str(&out, line);
    }
    for (size_t i = 0; i < ntopics; i++) {
        const struct mq_catalog_topic *t = &topics[i];
        if (json) {
            mq_out_str(&out, i ? ",{\"topic\":\"" : "{\"topic\":\"");
            mq_out_str(&out, t->name); /* topic names need no escaping: [a-zA-Z0-9._-] */
            mq_out_str(&out, "\",\"partitions\":");
            mq_out_int(&out, t->partitions);
            mq_out_str(&out, ",\"retention_ms\":");
            mq_out_int(&out, t->retention_ms);
            mq_out_str(&out, ",\"retention_bytes\":");
            mq_out_int(&out, t->retention_bytes);
            mq_out_str(&out, ",\"partition_list\":[");
        }
        bool first = true;
        for (int32_t p = 0; p < t->partitions; p++) {
            struct mq_part *part = mq_tool_part(store, t, p);
            struct mq_part_stats st;
            int64_t missing = 0;
            if (!part || (err = mq_part_stats(part, &st)) != MQ_OK ||
                (err = mq_part_missing_offsets(part, &missing)) != MQ_OK) {
                if (part)
                    mq_tool_error("partition %s-%d: %s", t->name, (int)p, mq_strerror(err));
                rc = MQ_EXIT_FAIL; /* reported; list the others */
                continue;
            }
            if (json) {
                mq_out_str(&out, first ? "{\"partition\":" : ",{\"partition\":");
                first = false;
                mq_out_int(&out, p);
                mq_out_str(&out, ",\"start_offset\":");
                mq_out_int(&out, st.start_offset);
                mq_out_str(&out, ",\"end_offset\":");
                mq_out_int(&out, st.end_offset);
                mq_out_str(&out, ",\"missing_offsets\":");
                mq_out_int(&out, missing);
                mq_out_str(&out, ",\"bytes\":");
                mq_out_int(&out, st.bytes);
                mq_out_str(&out, ",\"segments\":");
                mq_out_int(&out, st.segments);
                mq_out_str(&out, ",\"oldest_timestamp\":");
                mq_out_ts(&out, st.oldest_timestamp);
                mq_out_str(&out, ",\"newest_timestamp\":");
                mq_out_ts(&out, st.newest_timestamp);
                mq_out_char(&out, '}');
            } else {
                snprintf(line, sizeof line,
                         "%-*s %5d %12" PRId64 " %12" PRId64 " %8" PRId64 " %14" PRId64 " %8d  %-24s  %s\n",
                         width, t->name, (int)p, st.start_offset, st.end_offset, missing, st.bytes,
                         (int)st.segments, mq_tool_iso8601(st.oldest_timestamp, ts1, sizeof ts1),
                         mq_tool_iso8601(st.newest_timestamp, ts2, sizeof ts2));
                mq_out_str(&out, line);
            }
        }
        if (json)
            mq_out_str(&out, "]}");
    }
    if (json)
        mq_out_str(&out, "]}\n");
    int werr = mq_out_flush(&out);
    if (werr) {
        mq_tool_error("writing output: %s", strerror(werr));
        rc = MQ_EXIT_FAIL;
    }
    mq_out_free(&out);
    free(topics);
    mq_store_close(store);
    return rc;
}
