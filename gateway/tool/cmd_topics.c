/*
 * cmd_topics.c - `mqlog topics`: every topic and partition of a data directory with its offsets, size and
 * timestamps, as a table or as JSON, then the disk budget: the limits (from mqlogd's configuration, -c),
 * what is used and free, and how many days of data the budget keeps at the rate the stored timestamps
 * show. Opens the store read-only, so it works beside a running mqlogd.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config/config.h"
#include "tool/out.h"
#include "tool/tool.h"

/* A partition's rate counts only when its records span at least this much time: below it, a burst says
 * little about a day. */
#define MQ_TOPICS_RATE_MIN_SPAN_MS 1000
#define MQ_DAY_MS                  (24.0 * 3600 * 1000)

static void mq_topics_help(void)
{
    printf(
        "usage: mqlog topics (-d DATA_DIR | -c CONFIG_FILE) [--json]\n"
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
        "Then the disk budget: log.max_disk_bytes and log.min_free_bytes (read from CONFIG_FILE; unknown\n"
        "without -c, 0 is off), the bytes used by segment files and free on the file system, and how many\n"
        "days of data the budget keeps at the current rate: the room (the cap, or the segments plus the\n"
        "free space above min_free_bytes, whichever is less) over the bytes a day the stored data shows\n"
        "(each partition's bytes over the time between its oldest and newest record; partitions with\n"
        "less than a second of data do not count; n/a when none has more). Retention may keep less.\n"
        "\n"
        "  -d, --dir DATA_DIR      the data directory (default: data_dir of CONFIG_FILE)\n"
        "  -c, --config FILE       mqlogd's configuration: the budget's limits, and the data directory\n"
        "  -j, --json              one JSON document: "
        "{\"topics\":[{\"topic\",\"partitions\",\"retention_ms\",\n"
        "                          \"retention_bytes\",\"partition_list\":[{\"partition\",\"start_offset\",\n"
        "                          \"end_offset\",\"missing_offsets\",\"bytes\",\"segments\",\n"
        "                          "
        "\"oldest_timestamp\",\"newest_timestamp\"}]}],\"budget\":{\"max_disk_bytes\",\n"
        "                          "
        "\"min_free_bytes\",\"used_bytes\",\"free_bytes\",\"bytes_per_day\",\"days\"}}\n"
        "                          (limits null without -c; free_bytes, bytes_per_day, days null when "
        "unknown)\n"
        "  -h, --help              this text\n");
}

static void mq_out_ts(struct mq_out *out, int64_t ts)
{
    if (ts < 0)
        mq_out_str(out, "null");
    else
        mq_out_int(out, ts);
}

/* What the budget section shows, gathered while the partitions are listed. */
struct mq_topics_budget {
    bool limits;                /* read from a configuration */
    int64_t max_disk, min_free; /* 0: off */
    int64_t used;               /* segment bytes of every partition listed */
    int64_t free;               /* -1: unknown */
    double per_day;             /* bytes a day; < 0: too little data */
};

/* Adds a partition's bytes and, when its records span long enough, its rate. */
static void mq_topics_budget_add(struct mq_topics_budget *b, const struct mq_part_stats *st)
{
    b->used += st->bytes;
    int64_t span = st->newest_timestamp - st->oldest_timestamp;
    if (st->oldest_timestamp < 0 || st->newest_timestamp < 0 || span < MQ_TOPICS_RATE_MIN_SPAN_MS)
        return;
    b->per_day = (b->per_day < 0 ? 0 : b->per_day) + (double)st->bytes * MQ_DAY_MS / (double)span;
}

/* The days of data the budget keeps at b->per_day, or -1 when it cannot be told. */
static double mq_topics_budget_days(const struct mq_topics_budget *b)
{
    if (b->per_day <= 0)
        return -1;
    bool known = false;
    double room = 0;
    if (b->free >= 0) { /* the file system's limit holds in any case */
        known = true;
        room = (double)(b->used + b->free - (b->limits ? b->min_free : 0));
    }
    if (b->limits && b->max_disk > 0 && (!known || (double)b->max_disk < room)) {
        known = true;
        room = (double)b->max_disk;
    }
    if (!known)
        return -1;
    return room > 0 ? room / b->per_day : 0;
}

static void mq_out_num(struct mq_out *out, int64_t v, bool known)
{
    if (known)
        mq_out_int(out, v);
    else
        mq_out_str(out, "null");
}

static void mq_topics_budget_json(struct mq_out *out, const struct mq_topics_budget *b)
{
    char num[64];
    double days = mq_topics_budget_days(b);
    mq_out_str(out, ",\"budget\":{\"max_disk_bytes\":");
    mq_out_num(out, b->max_disk, b->limits);
    mq_out_str(out, ",\"min_free_bytes\":");
    mq_out_num(out, b->min_free, b->limits);
    mq_out_str(out, ",\"used_bytes\":");
    mq_out_int(out, b->used);
    mq_out_str(out, ",\"free_bytes\":");
    mq_out_num(out, b->free, b->free >= 0);
    mq_out_str(out, ",\"bytes_per_day\":");
    mq_out_num(out, (int64_t)(b->per_day + 0.5), b->per_day >= 0);
    snprintf(num, sizeof num, "%.6g", days);
    mq_out_str(out, ",\"days\":");
    mq_out_str(out, days >= 0 ? num : "null");
    mq_out_char(out, '}');
}

/* The limit in bytes, "off" for 0, "unknown" without a configuration. */
static const char *mq_topics_limit(const struct mq_topics_budget *b, int64_t v, char *buf, size_t size)
{
    if (!b->limits)
        return "unknown (-c FILE)";
    if (v == 0)
        return "off";
    snprintf(buf, size, "%" PRId64 " bytes", v);
    return buf;
}

static void mq_topics_budget_table(struct mq_out *out, const struct mq_topics_budget *b)
{
    char line[512], l1[64], l2[64], fr[32];
    snprintf(line, sizeof line, "\ndisk budget: max_disk_bytes %s, min_free_bytes %s\n",
             mq_topics_limit(b, b->max_disk, l1, sizeof l1), mq_topics_limit(b, b->min_free, l2, sizeof l2));
    mq_out_str(out, line);
    if (b->free >= 0)
        snprintf(fr, sizeof fr, "%" PRId64, b->free);
    else
        snprintf(fr, sizeof fr, "unknown");
    snprintf(line, sizeof line,
             "used: %" PRId64 " bytes in segment files; free: %s bytes on the file system\n", b->used, fr);
    mq_out_str(out, line);
    double days = mq_topics_budget_days(b);
    if (b->per_day < 0)
        snprintf(line, sizeof line, "rate: n/a (too little data); days kept at this rate: n/a\n");
    else if (days < 0)
        snprintf(line, sizeof line, "rate: %.0f bytes a day; days kept at this rate: n/a\n", b->per_day);
    else
        snprintf(line, sizeof line, "rate: %.0f bytes a day; days kept at this rate: %.3g\n", b->per_day,
                 days);
    mq_out_str(out, line);
}

static void mq_topics_report(void *opaque, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "%s\n", msg);
}

int mq_cmd_topics(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *config = NULL;
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            config = optarg;
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
    if (!dir && !config)
        return mq_tool_usage_error("topics", "no data directory (-d DIR or -c FILE)");
    if (optind < argc)
        return mq_tool_usage_error("topics", "unexpected argument '%s'", argv[optind]);

    struct mq_topics_budget budget = {.free = -1, .per_day = -1};
    struct mq_config *cfg = NULL;
    if (config) {
        if (mq_config_load(config, &cfg, mq_topics_report, NULL) != MQ_OK)
            return MQ_EXIT_FAIL;
        budget.limits = true;
        budget.max_disk = cfg->log.max_disk_bytes;
        budget.min_free = cfg->log.min_free_bytes;
        if (!dir)
            dir = cfg->data_dir;
    }
    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!store) {
        mq_config_free(cfg);
        return MQ_EXIT_FAIL;
    }
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0)
        budget.free = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    struct mq_catalog_topic *topics = NULL;
    size_t ntopics = 0;
    enum mq_err err = mq_store_topic_list(store, &topics, &ntopics);
    if (err != MQ_OK) {
        mq_tool_error("%s: listing topics: %s (%s)", dir, mq_strerror(err),
                      mq_catalog_errmsg(mq_store_catalog(store)));
        mq_store_close(store);
        mq_config_free(cfg);
        return MQ_EXIT_FAIL;
    }

    struct mq_out out;
    if (!mq_out_init(&out, STDOUT_FILENO, 64 * 1024)) {
        mq_tool_error("out of memory");
        free(topics);
        mq_store_close(store);
        mq_config_free(cfg);
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
            mq_topics_budget_add(&budget, &st);
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
    if (json) {
        mq_out_char(&out, ']');
        mq_topics_budget_json(&out, &budget);
        mq_out_str(&out, "}\n");
    } else {
        mq_topics_budget_table(&out, &budget);
    }
    int werr = mq_out_flush(&out);
    if (werr) {
        mq_tool_error("writing output: %s", MQ_STRERROR(werr));
        rc = MQ_EXIT_FAIL;
    }
    mq_out_free(&out);
    free(topics);
    mq_store_close(store);
    mq_config_free(cfg);
    return rc;
}
