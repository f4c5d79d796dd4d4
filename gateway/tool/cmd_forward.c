/*
 * cmd_forward.c - `mqlog forward status`: how far each forwarder (issue 9) is behind the local log, per
 * partition, from the checkpoints it keeps in the catalog. Opens the store read-only, so it works beside a
 * running mqlogd.
 *
 * A forwarder NAME keeps its checkpoints under connector "forward.NAME": key "TOPIC:PARTITION" holds the
 * decimal next local offset known to be on the remote cluster (everything below it is forwarded), key
 * "state" one line saying what it is doing ("delivering", "outage since ..."). The lag is computed here
 * from the log: records (end offset minus checkpoint), bytes (from the checkpoint's batch to the end, see
 * mq_part_bytes_from()) and seconds (newest record's timestamp minus that of the first record not
 * forwarded).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool/out.h"
#include "tool/tool.h"
#include "util/parse.h"

#define MQ_FORWARD_PREFIX "forward." /* the connector name of forwarder NAME is "forward.NAME" */

static void mq_forward_help(void)
{
    printf("usage: mqlog forward status -d DATA_DIR [--json] [NAME]\n"
           "\n"
           "Shows every forwarder (or only NAME) with its state and, per partition it forwards, its\n"
           "checkpoint (the next offset not yet known to be on the remote cluster), the partition's end\n"
           "offset and how far it is behind: records, bytes of log and seconds (newest record's timestamp\n"
           "minus that of the first record not forwarded; 0 when caught up). Read from the checkpoints the\n"
           "forwarders store in the catalog; read-only: safe beside mqlogd.\n"
           "\n"
           "  -d, --dir DATA_DIR  the data directory\n"
           "  -j, --json          one JSON document: {\"forwarders\":[{\"name\",\"state\",\"partitions\":\n"
           "                      [{\"topic\",\"partition\",\"checkpoint\",\"start_offset\",\"end_offset\",\n"
           "                      \"records_behind\",\"bytes_behind\",\"seconds_behind\",\"status\",\n"
           "                      \"records_lost\"}]}]}; status is ok, topic_deleted, partition_deleted,\n"
           "                      records_lost (deleted before they were forwarded), beyond_end or\n"
           "                      bad_checkpoint; figures the status leaves unknown are null\n"
           "  -h, --help          this text\n");
}

enum mq_fwd_status {
    MQ_FWD_OK,
    MQ_FWD_TOPIC_DELETED,
    MQ_FWD_PARTITION_DELETED,
    MQ_FWD_RECORDS_LOST, /* the log starts after the checkpoint: the disk cap deleted unforwarded records */
    MQ_FWD_BEYOND_END,   /* the checkpoint is past the log's end (the topic was recreated?) */
    MQ_FWD_BAD_CHECKPOINT,
};

static const char *const mq_fwd_status_name[] = {"ok",           "topic_deleted", "partition_deleted",
                                                 "records_lost", "beyond_end",    "bad_checkpoint"};

/* One partition of one forwarder, with its lag. Figures are -1 when unknown. */
struct mq_fwd_row {
    const struct mq_checkpoint *cp;
    char topic[MQ_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int64_t checkpoint, start, end, records, bytes, lost;
    double seconds; /* < 0: unknown */
    enum mq_fwd_status status;
};

/* Splits a "TOPIC:PARTITION" key; false for any other key. */
static bool mq_fwd_key(const char *key, struct mq_fwd_row *row)
{
    const char *colon = strrchr(key, ':');
    size_t tl = colon ? (size_t)(colon - key) : 0;
    int64_t p;
    if (!colon || tl == 0 || tl > MQ_TOPIC_NAME_MAX || mq_parse_int64(colon + 1, 0, INT32_MAX, &p) != MQ_OK)
        return false;
    memcpy(row->topic, key, tl);
    row->topic[tl] = '\0';
    row->partition = (int32_t)p;
    return mq_topic_name_valid(row->topic);
}

static int mq_fwd_row_cmp(const void *a, const void *b)
{
    const struct mq_fwd_row *x = a, *y = b;
    int c = strcmp(x->cp->connector, y->cp->connector);
    if (c == 0)
        c = strcmp(x->topic, y->topic);
    if (c == 0)
        c = (x->partition > y->partition) - (x->partition < y->partition);
    return c;
}

/* The timestamp of the record at offset (the first at or after it), -1 when there is none. */
static int64_t mq_fwd_record_ts(struct mq_part *part, int64_t offset)
{
    struct mq_cursor *cur = NULL;
    if (mq_cursor_open(part, offset, &cur) != MQ_OK)
        return -1;
    struct mq_record_view rv;
    int64_t ts = mq_cursor_next(cur, &rv) == 1 ? rv.timestamp : -1;
    mq_cursor_close(cur);
    return ts;
}

/* Fills in the lag of row from the log. Returns false after an error message (a failed read). */
static bool mq_fwd_lag(struct mq_store *store, struct mq_fwd_row *row)
{
    row->start = row->end = row->records = row->bytes = row->lost = -1;
    row->seconds = -1;
    if (mq_parse_int64(row->cp->value, 0, INT64_MAX, &row->checkpoint) != MQ_OK) {
        row->checkpoint = -1;
        row->status = MQ_FWD_BAD_CHECKPOINT;
        return true;
    }
    struct mq_part *part = NULL;
    enum mq_err err = mq_store_part(store, row->topic, row->partition, &part);
    if (err == MQ_ERR_NOENT) {
        struct mq_catalog_topic t;
        row->status = mq_store_topic_get(store, row->topic, &t) == MQ_ERR_NOENT ? MQ_FWD_TOPIC_DELETED
                                                                                : MQ_FWD_PARTITION_DELETED;
        return true;
    }
    struct mq_part_stats st;
    if (err == MQ_OK)
        err = mq_part_stats(part, &st);
    if (err != MQ_OK) {
        mq_tool_error("partition %s-%d: %s", row->topic, (int)row->partition, mq_strerror(err));
        return false;
    }
    row->start = st.start_offset;
    row->end = st.end_offset;
    if (row->checkpoint > st.end_offset) {
        row->status = MQ_FWD_BEYOND_END;
        row->records = row->bytes = 0;
        row->seconds = 0;
        return true;
    }
    /* What was deleted before it was forwarded is lost, not behind: the forwarder resumes at the start. */
    int64_t from = row->checkpoint;
    if (from < st.start_offset) {
        row->status = MQ_FWD_RECORDS_LOST;
        row->lost = st.start_offset - from;
        from = st.start_offset;
    }
    row->records = st.end_offset - from;
    row->bytes = 0;
    row->seconds = 0;
    if (row->records > 0) {
        if (mq_part_bytes_from(part, from, &row->bytes) != MQ_OK)
            row->bytes = -1; /* retention moved the start meanwhile */
        int64_t ts = mq_fwd_record_ts(part, from);
        if (ts < 0 || st.newest_timestamp < 0)
            row->seconds = -1;
        else if (st.newest_timestamp > ts)
            row->seconds = (double)(st.newest_timestamp - ts) / 1000.0;
    }
    return true;
}

static void mq_fwd_num(char *buf, size_t size, int64_t v)
{
    if (v < 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%" PRId64, v);
}

static void mq_fwd_json_num(struct mq_out *out, const char *member, int64_t v)
{
    mq_out_str(out, member);
    if (v < 0)
        mq_out_str(out, "null");
    else
        mq_out_int(out, v);
}

/* The note of the table's last column. */
static void mq_fwd_note(const struct mq_fwd_row *row, char *buf, size_t size)
{
    switch (row->status) {
    case MQ_FWD_OK:
        buf[0] = '\0';
        break;
    case MQ_FWD_TOPIC_DELETED:
        snprintf(buf, size, "topic no longer exists");
        break;
    case MQ_FWD_PARTITION_DELETED:
        snprintf(buf, size, "partition no longer exists");
        break;
    case MQ_FWD_RECORDS_LOST:
        snprintf(buf, size, "%" PRId64 " records deleted before they were forwarded", row->lost);
        break;
    case MQ_FWD_BEYOND_END:
        snprintf(buf, size, "checkpoint beyond the log end");
        break;
    case MQ_FWD_BAD_CHECKPOINT:
        snprintf(buf, size, "checkpoint is not an offset: '%.40s'", row->cp->value);
        break;
    }
}

static const char *mq_fwd_name(const struct mq_checkpoint *cp)
{
    return cp->connector + strlen(MQ_FORWARD_PREFIX);
}

/* The "state" checkpoint of forwarder connector, or NULL. */
static const struct mq_checkpoint *mq_fwd_state(const struct mq_checkpoint *cps, size_t n,
                                                const char *connector)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cps[i].connector, connector) == 0 && strcmp(cps[i].key, "state") == 0)
            return &cps[i];
    return NULL;
}

static void mq_fwd_print_table(struct mq_out *out, const struct mq_checkpoint *cps, size_t ncps,
                               const struct mq_fwd_row *rows, size_t nrows)
{
    char line[2048];
    int nw = 9, tw = 5; /* FORWARDER, TOPIC */
    for (size_t i = 0; i < ncps; i++)
        if ((int)strlen(mq_fwd_name(&cps[i])) > nw)
            nw = (int)strlen(mq_fwd_name(&cps[i]));
    for (size_t i = 0; i < nrows; i++)
        if ((int)strlen(rows[i].topic) > tw)
            tw = (int)strlen(rows[i].topic);
    /* The state of every forwarder first: a forwarder in an outage may have no partition rows yet. */
    snprintf(line, sizeof line, "%-*s  %s\n", nw, "FORWARDER", "STATE");
    mq_out_str(out, line);
    for (size_t i = 0; i < ncps; i++) {
        if (i > 0 && strcmp(cps[i].connector, cps[i - 1].connector) == 0)
            continue;
        const struct mq_checkpoint *state = mq_fwd_state(cps, ncps, cps[i].connector);
        /* the state is one line; a stray newline would break the table */
        int len = state ? (int)strcspn(state->value, "\r\n") : 1;
        snprintf(line, sizeof line, "%-*s  %.*s\n", nw, mq_fwd_name(&cps[i]), len,
                 state ? state->value : "-");
        mq_out_str(out, line);
    }
    if (nrows == 0)
        return;
    snprintf(line, sizeof line, "\n%-*s %-*s %5s %12s %12s %14s %14s %14s  %s\n", nw, "FORWARDER", tw,
             "TOPIC", "PART", "CHECKPOINT", "END", "RECORDS_BEHIND", "BYTES_BEHIND", "SECONDS_BEHIND",
             "NOTE");
    mq_out_str(out, line);
    for (size_t i = 0; i < nrows; i++) {
        const struct mq_fwd_row *r = &rows[i];
        char ck[24], end[24], rec[24], bytes[24], secs[32], note[128];
        mq_fwd_num(ck, sizeof ck, r->checkpoint);
        mq_fwd_num(end, sizeof end, r->end);
        mq_fwd_num(rec, sizeof rec, r->records);
        mq_fwd_num(bytes, sizeof bytes, r->bytes);
        if (r->seconds < 0)
            snprintf(secs, sizeof secs, "-");
        else
            snprintf(secs, sizeof secs, "%.1f", r->seconds);
        mq_fwd_note(r, note, sizeof note);
        int n =
            snprintf(line, sizeof line, "%-*s %-*s %5d %12s %12s %14s %14s %14s  %s", nw, mq_fwd_name(r->cp),
                     tw, r->topic, (int)r->partition, ck, end, rec, bytes, secs, note);
        while (n > 0 && line[n - 1] == ' ') /* no trailing blanks when there is no note */
            line[--n] = '\0';
        mq_out_str(out, line);
        mq_out_char(out, '\n');
    }
}

static void mq_fwd_print_json(struct mq_out *out, const struct mq_checkpoint *cps, size_t ncps,
                              const struct mq_fwd_row *rows, size_t nrows)
{
    mq_out_str(out, "{\"forwarders\":[");
    bool first_fwd = true;
    for (size_t i = 0; i < ncps; i++) {
        if (i > 0 && strcmp(cps[i].connector, cps[i - 1].connector) == 0)
            continue;
        const char *name = mq_fwd_name(&cps[i]);
        mq_out_str(out, first_fwd ? "{" : ",{");
        first_fwd = false;
        mq_out_json_bytes(out, "name", (const uint8_t *)name, (int32_t)strlen(name));
        mq_out_char(out, ',');
        const struct mq_checkpoint *state = mq_fwd_state(cps, ncps, cps[i].connector);
        mq_out_json_bytes(out, "state", state ? (const uint8_t *)state->value : NULL,
                          state ? (int32_t)state->len : -1);
        mq_out_str(out, ",\"partitions\":[");
        bool first = true;
        for (size_t j = 0; j < nrows; j++) {
            const struct mq_fwd_row *r = &rows[j];
            if (strcmp(r->cp->connector, cps[i].connector) != 0)
                continue;
            mq_out_str(out, first ? "{\"topic\":\"" : ",{\"topic\":\"");
            first = false;
            mq_out_str(out, r->topic); /* topic names need no escaping: [a-zA-Z0-9._-] */
            mq_out_str(out, "\",\"partition\":");
            mq_out_int(out, r->partition);
            mq_fwd_json_num(out, ",\"checkpoint\":", r->checkpoint);
            mq_fwd_json_num(out, ",\"start_offset\":", r->start);
            mq_fwd_json_num(out, ",\"end_offset\":", r->end);
            mq_fwd_json_num(out, ",\"records_behind\":", r->records);
            mq_fwd_json_num(out, ",\"bytes_behind\":", r->bytes);
            mq_out_str(out, ",\"seconds_behind\":");
            if (r->seconds < 0) {
                mq_out_str(out, "null");
            } else {
                char secs[32];
                snprintf(secs, sizeof secs, "%.3f", r->seconds);
                mq_out_str(out, secs);
            }
            mq_out_str(out, ",\"status\":\"");
            mq_out_str(out, mq_fwd_status_name[r->status]);
            mq_out_char(out, '"');
            mq_fwd_json_num(out, ",\"records_lost\":", r->status == MQ_FWD_RECORDS_LOST ? r->lost : 0);
            mq_out_char(out, '}');
        }
        mq_out_str(out, "]}");
    }
    mq_out_str(out, "]}\n");
}

static int mq_forward_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *name = NULL;
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
            mq_forward_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("forward status", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("forward status", "no data directory (-d DIR)");
    if (optind < argc)
        name = argv[optind++];
    if (optind < argc)
        return mq_tool_usage_error("forward status", "unexpected argument '%s'", argv[optind]);
    if (name && !name[0])
        return mq_tool_usage_error("forward status", "empty forwarder name");

    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!store)
        return MQ_EXIT_FAIL;
    struct mq_catalog *cat = mq_store_catalog(store);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s%s", MQ_FORWARD_PREFIX, name ? name : "");
    struct mq_checkpoint *all = NULL;
    size_t nall = 0;
    enum mq_err err = mq_catalog_checkpoint_list(cat, prefix, &all, &nall);
    if (err != MQ_OK) {
        mq_tool_error("%s: listing checkpoints: %s (%s)", dir, mq_strerror(err), mq_catalog_errmsg(cat));
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }
    /* With NAME only that forwarder: the prefix also matches "forward.NAME2". */
    size_t ncps = 0;
    for (size_t i = 0; i < nall; i++)
        if (!name || strcmp(all[i].connector, prefix) == 0)
            all[ncps++] = all[i];
        else {
            free(all[i].connector);
            free(all[i].key);
            free(all[i].value);
        }
    nall = ncps;
    int rc = MQ_EXIT_OK;
    if (name && ncps == 0) {
        mq_tool_error("no forwarder '%s' in %s (it has stored no checkpoint)", name, dir);
        mq_catalog_checkpoints_free(all, nall);
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }

    struct mq_fwd_row *rows = calloc(ncps ? ncps : 1, sizeof *rows);
    struct mq_out out;
    if (!rows || !mq_out_init(&out, STDOUT_FILENO, 64 * 1024)) {
        mq_tool_error("out of memory");
        free(rows);
        mq_catalog_checkpoints_free(all, nall);
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }
    size_t nrows = 0;
    for (size_t i = 0; i < ncps; i++) {
        struct mq_fwd_row *r = &rows[nrows];
        r->cp = &all[i];
        if (!mq_fwd_key(all[i].key, r))
            continue; /* "state", or a key this version does not know */
        if (!mq_fwd_lag(store, r))
            rc = MQ_EXIT_FAIL; /* reported; show the others */
        nrows++;
    }
    if (nrows > 1)
        qsort(rows, nrows, sizeof *rows, mq_fwd_row_cmp);
    if (json)
        mq_fwd_print_json(&out, all, ncps, rows, nrows);
    else if (ncps == 0)
        mq_out_str(&out, "no forwarder has stored a checkpoint yet\n");
    else
        mq_fwd_print_table(&out, all, ncps, rows, nrows);
    int werr = mq_out_flush(&out);
    if (werr) {
        mq_tool_error("writing output: %s", MQ_STRERROR(werr));
        rc = MQ_EXIT_FAIL;
    }
    mq_out_free(&out);
    free(rows);
    mq_catalog_checkpoints_free(all, nall);
    mq_store_close(store);
    return rc;
}

int mq_cmd_forward(int argc, char **argv)
{
    if (argc < 2)
        return mq_tool_usage_error("forward", "no subcommand (only 'status')");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        mq_forward_help();
        return MQ_EXIT_OK;
    }
    if (strcmp(argv[1], "status") == 0)
        return mq_forward_status(argc - 1, argv + 1);
    return mq_tool_usage_error("forward", "unknown subcommand '%s' (only 'status')", argv[1]);
}
