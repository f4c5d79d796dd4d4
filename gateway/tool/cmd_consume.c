/*
 * cmd_consume.c - `mqlog consume`: prints the records of a topic, raw or as JSON lines, from an offset or a
 * point in time, optionally following new records and committing a consumer group's position.
 *
 * The store is opened read-only (MQ_LOG_READ), so consume works beside a running mqlogd. Each partition is
 * read through a log cursor (log.h), which checks every batch's CRC and decodes records in place; they go
 * into a large output buffer: no allocation and no system call per record. A batch whose CRC fails is never
 * printed as data: it is skipped, as are the unreadable parts of damaged segments, with one warning on
 * stderr naming the file and the offsets (the log layer's, the same view the Kafka endpoint serves).
 *
 * Order: records of one partition come in offset order. Without -p the partitions are visited in turn, one
 * chunk (up to 1 MiB of batches) at a time, so a large backlog in one partition does not hide the others.
 *
 * Group offsets: with --group the committed offset of a partition is the offset after the last record of it
 * that was written to stdout successfully (not merely buffered). Commits happen every second while running
 * and once at exit (end of data, -n reached, SIGINT/SIGTERM, or the reader of a pipe going away).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "tool/out.h"
#include "tool/tool.h"
#include "util/parse.h"

#define MQ_CONSUME_OUT_BUF   (1024 * 1024)
#define MQ_CONSUME_WAIT_MS   100  /* longest sleep when following (a backstop for missed notifications) */
#define MQ_CONSUME_COMMIT_MS 1000 /* group commit period */

static void mq_consume_help(void)
{
    printf(
        "usage: mqlog consume -d DATA_DIR TOPIC [-p PARTITION] [-o WHERE] [--until WHERE] [-n COUNT]\n"
        "                     [-f] [-g GROUP] [--format raw|json]\n"
        "\n"
        "Prints records of TOPIC. Read-only: safe beside a running mqlogd.\n"
        "\n"
        "  -d, --dir DATA_DIR      the data directory\n"
        "  -p, --partition N       only this partition (default: all, visited in turn, 1 MiB at a time;\n"
        "                          records of one partition are always in offset order)\n"
        "  -o, --offset WHERE      where to start in each partition: beginning (default), end (only records\n"
        "                          that arrive later, with -f), an offset or a time (see below). An OFFSET\n"
        "                          past a partition's end is an error (exit 3) unless -f waits for it\n"
        "  -u, --until WHERE       stop each partition before the record at an offset (or -N), or before "
        "its\n"
        "                          first record with a timestamp at or after a time; with -f the command\n"
        "                          ends once every partition got there\n"
        "  -n, --count COUNT       stop after COUNT records in total\n"
        "  -f, --follow            at the end, wait for new records (until SIGINT/SIGTERM or -n)\n"
        "  -g, --group GROUP       start from GROUP's committed offset where it has one (else from -o),\n"
        "                          and commit the position after what was printed (every second and at "
        "exit)\n"
        "  -F, --format FORMAT     raw (default): each value on a line of its own (a null value is an empty\n"
        "                          line); json: one object per line:\n"
        "                          "
        "{\"topic\":T,\"partition\":P,\"offset\":O,\"timestamp\":MS,\"key\":K,\"value\":V,\n"
        "                           \"headers\":[{\"key\":HK,\"value\":HV}]}\n"
        "                          where keys and values are JSON strings when they are valid UTF-8, null "
        "when\n"
        "                          null, and otherwise appear as \"key_base64\"/\"value_base64\" (standard "
        "base64)\n"
        "                          instead of \"key\"/\"value\"\n"
        "  -h, --help              this text\n"
        "\n" MQ_TOOL_WHERE_HELP "\n"
        "Exit status: 0 success, 1 runtime error, 2 usage error, 3 an OFFSET past the end of a partition.\n");
}

/* The state of one partition being consumed. */
struct mq_cpart {
    int32_t id;
    struct mq_part *part;
    struct mq_cursor *cur;
    char *dir;            /* the partition directory, for inotify and messages */
    int64_t want;         /* records below this are skipped (a start beyond the end, reached later) */
    int64_t stop;         /* records at or after this offset are not printed (--until), else INT64_MAX */
    bool done;            /* --until reached: the partition is not read any more */
    int64_t pending_next; /* offset after the last record put into the output buffer, -1 when none */
    int64_t flushed_next; /* offset after the last record written to stdout, -1 when none */
    int64_t committed;    /* the group offset last committed (or fetched), -1 when none */
    char *json_prefix;    /* {"topic":"T","partition":P,"offset": */
    size_t json_prefix_len;
};

struct mq_consume {
    const char *topic;
    struct mq_store *store;
    struct mq_cpart *parts;
    int32_t nparts;
    bool json;
    int64_t limit;    /* -n, or -1 */
    int64_t until_ts; /* --until as a time, or -1 */
    bool follow;      /* -f */
    bool past_end;    /* an -o OFFSET lay past a partition's end (without -f): exit 3 */
    int64_t printed;
    const char *group;
    struct mq_out out;
    int ifd; /* inotify, -1 when unavailable */
};

/* Writes the buffered output and marks every record in it as printed. Returns 0 or the write's errno. */
static int mq_consume_flush(struct mq_consume *cs)
{
    int err = mq_out_flush(&cs->out);
    if (err)
        return err;
    for (int32_t i = 0; i < cs->nparts; i++)
        cs->parts[i].flushed_next = cs->parts[i].pending_next;
    return 0;
}

/* Commits the flushed position of every partition that moved. Returns false (after a message) on error. */
static bool mq_consume_commit(struct mq_consume *cs)
{
    if (!cs->group)
        return true;
    struct mq_offset_commit *cm = calloc((size_t)cs->nparts, sizeof *cm);
    if (!cm) {
        mq_tool_error("out of memory");
        return false;
    }
    size_t n = 0;
    for (int32_t i = 0; i < cs->nparts; i++) {
        struct mq_cpart *cp = &cs->parts[i];
        if (cp->flushed_next >= 0 && cp->flushed_next != cp->committed)
            cm[n++] = (struct mq_offset_commit){
                .topic = cs->topic, .partition = cp->id, .offset = cp->flushed_next, .metadata = NULL};
    }
    bool ok = true;
    if (n) {
        enum mq_err err = mq_catalog_offset_commit_many(mq_store_catalog(cs->store), cs->group, cm, n);
        for (size_t k = 0; k < n && err == MQ_OK; k++)
            if (cm[k].err != MQ_OK)
                err = cm[k].err;
        if (err != MQ_OK) {
            mq_tool_error("committing offsets of group %s: %s (%s)", cs->group, mq_strerror(err),
                          mq_catalog_errmsg(mq_store_catalog(cs->store)));
            ok = false;
        } else {
            for (size_t k = 0; k < n; k++)
                for (int32_t i = 0; i < cs->nparts; i++)
                    if (cs->parts[i].id == cm[k].partition)
                        cs->parts[i].committed = cm[k].offset;
        }
    }
    free(cm);
    return ok;
}

/* Appends one record in the chosen format. */
static void mq_consume_emit(struct mq_consume *cs, const struct mq_cpart *cp, const struct mq_record_view *rv)
{
    struct mq_out *out = &cs->out;
    if (!cs->json) {
        if (rv->value_len > 0)
            mq_out_bytes(out, rv->value, (size_t)rv->value_len);
        mq_out_char(out, '\n');
        return;
    }
    mq_out_bytes(out, cp->json_prefix, cp->json_prefix_len);
    mq_out_int(out, rv->offset);
    mq_out_str(out, ",\"timestamp\":");
    mq_out_int(out, rv->timestamp);
    mq_out_char(out, ',');
    mq_out_json_bytes(out, "key", rv->key, rv->key_len);
    mq_out_char(out, ',');
    mq_out_json_bytes(out, "value", rv->value, rv->value_len);
    mq_out_str(out, ",\"headers\":[");
    const uint8_t *cur = rv->headers;
    struct mq_header h;
    for (int32_t i = 0; mq_header_next(&cur, rv->headers_end, &h) == 1; i++) {
        mq_out_str(out, i ? ",{" : "{");
        mq_out_json_bytes(out, "key", (const uint8_t *)h.key, h.key_len);
        mq_out_char(out, ',');
        mq_out_json_bytes(out, "value", h.value, h.value_len);
        mq_out_char(out, '}');
    }
    mq_out_str(out, "]}\n");
}

/* Outcome of one read turn on a partition. */
enum mq_turn { MQ_TURN_DATA, MQ_TURN_IDLE, MQ_TURN_LIMIT, MQ_TURN_FAIL };

/* Prints the records of one read of cp's cursor (up to 1 MiB of batches). */
static enum mq_turn mq_consume_turn(struct mq_consume *cs, struct mq_cpart *cp)
{
    struct mq_record_view rv;
    bool any = false;
    int r;
    while ((r = mq_cursor_next(cp->cur, &rv)) == 1) {
        any = true;
        if (rv.offset >= cp->stop || (cs->until_ts >= 0 && rv.timestamp >= cs->until_ts)) {
            cp->done = true;
            return MQ_TURN_DATA;
        }
        if (rv.offset >= cp->want) {
            mq_consume_emit(cs, cp, &rv);
            cp->pending_next = rv.offset + 1;
            if (++cs->printed == cs->limit)
                return MQ_TURN_LIMIT;
        }
        if (!mq_cursor_buffered(cp->cur))
            return MQ_TURN_DATA; /* the other partitions' turn */
    }
    if (r == 0)
        return any ? MQ_TURN_DATA : MQ_TURN_IDLE;
    int64_t pos = mq_cursor_position(cp->cur);
    if (r == -MQ_ERR_RANGE) {
        /* Retention removed the segment we were in (or the log was truncated): continue at the new start. */
        struct mq_part_stats st;
        enum mq_err err = mq_part_stats(cp->part, &st);
        if (err == MQ_OK && (pos < st.start_offset || pos > st.end_offset)) {
            if (pos < st.start_offset)
                mq_tool_error("warning: %s-%d: offsets %" PRId64 "..%" PRId64 " were deleted by retention",
                              cs->topic, (int)cp->id, pos, st.start_offset - 1);
            mq_cursor_seek(cp->cur, pos < st.start_offset ? st.start_offset : st.end_offset);
            return MQ_TURN_DATA; /* try again at once */
        }
        if (err != MQ_OK)
            r = -(int)err;
    }
    const struct mq_cursor_fault *f = mq_cursor_fault(cp->cur);
    if (f->position >= 0)
        mq_tool_error("%s:%" PRId64 ": %s (partition %s-%d, batch at offset %" PRId64 "); not printed",
                      f->path, f->position, f->what, cs->topic, (int)cp->id, f->base_offset);
    else
        mq_tool_error("reading %s-%d at offset %" PRId64 ": %s", cs->topic, (int)cp->id, pos,
                      mq_strerror((enum mq_err) - r));
    return MQ_TURN_FAIL;
}

/* Resolves where cp starts (the group's committed offset, else -o) and where it stops (--until, given as
 * ukind/uarg), and opens its cursor at the start. */
static bool mq_consume_start(struct mq_consume *cs, struct mq_cpart *cp, enum mq_where_kind kind, int64_t arg,
                             enum mq_where_kind ukind, int64_t uarg)
{
    struct mq_part_stats st;
    enum mq_err err = mq_part_stats(cp->part, &st);
    if (err != MQ_OK) {
        mq_tool_error("partition %s-%d: %s", cs->topic, (int)cp->id, mq_strerror(err));
        return false;
    }
    cp->stop = ukind == MQ_WHERE_TIME ? INT64_MAX
                                      : mq_tool_where_offset(ukind, uarg, st.start_offset, st.end_offset);
    bool from_group = false;
    if (cs->group) {
        int64_t off;
        err = mq_catalog_offset_fetch(mq_store_catalog(cs->store), cs->group, cs->topic, cp->id, &off, NULL,
                                      NULL);
        if (err == MQ_OK) {
            cp->committed = off;
            kind = MQ_WHERE_OFFSET;
            arg = off;
            from_group = true;
        } else if (err != MQ_ERR_NOENT) {
            mq_tool_error("group %s: fetching the offset of %s-%d: %s (%s)", cs->group, cs->topic,
                          (int)cp->id, mq_strerror(err), mq_catalog_errmsg(mq_store_catalog(cs->store)));
            return false;
        }
    }
    if (kind == MQ_WHERE_TIME) {
        err = mq_cursor_open_time(cp->part, arg, &cp->cur);
        if (err != MQ_OK) {
            mq_tool_error("partition %s-%d: looking up time %" PRId64 ": %s", cs->topic, (int)cp->id, arg,
                          mq_strerror(err));
            return false;
        }
        return true;
    }
    int64_t want = mq_tool_where_offset(kind, arg, st.start_offset, st.end_offset);
    if (want > st.end_offset && !cs->follow && !from_group) {
        mq_tool_error("offset %" PRId64 " is past the end of %s-%d (its next offset is %" PRId64 ")", want,
                      cs->topic, (int)cp->id, st.end_offset);
        cs->past_end = true;
        cp->done = true;
    }
    /* Below the log start the records are gone: start at the first one there is. Above the end, wait for
     * the offset to be reached (reading from the end and skipping what lies below it). */
    if (want < st.start_offset)
        want = st.start_offset;
    cp->want = want;
    err = mq_cursor_open(cp->part, want > st.end_offset ? st.end_offset : want, &cp->cur);
    if (err != MQ_OK) {
        mq_tool_error("partition %s-%d: opening at offset %" PRId64 ": %s", cs->topic, (int)cp->id, want,
                      mq_strerror(err));
        return false;
    }
    return true;
}

/* Sleeps until a partition directory changes, a signal arrives or MQ_CONSUME_WAIT_MS pass. */
static void mq_consume_wait(struct mq_consume *cs)
{
    if (cs->ifd < 0) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        return;
    }
    struct pollfd pfd = {.fd = cs->ifd, .events = POLLIN};
    if (poll(&pfd, 1, MQ_CONSUME_WAIT_MS) > 0) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(cs->ifd, buf, sizeof buf) > 0) {
            /* drain: which file changed does not matter, the next read looks at every partition */
        }
    }
}

static void mq_consume_free(struct mq_consume *cs)
{
    if (cs->parts)
        for (int32_t i = 0; i < cs->nparts; i++) {
            mq_cursor_close(cs->parts[i].cur);
            free(cs->parts[i].dir);
            free(cs->parts[i].json_prefix);
        }
    free(cs->parts);
    mq_out_free(&cs->out);
    if (cs->ifd >= 0)
        close(cs->ifd);
    mq_store_close(cs->store);
}

int mq_cmd_consume(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},    {"partition", required_argument, NULL, 'p'},
        {"offset", required_argument, NULL, 'o'}, {"until", required_argument, NULL, 'u'},
        {"count", required_argument, NULL, 'n'},  {"follow", no_argument, NULL, 'f'},
        {"group", required_argument, NULL, 'g'},  {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *group = NULL;
    int64_t partition = -1, limit = -1, arg = 0, uarg = 0;
    enum mq_where_kind kind = MQ_WHERE_BEGINNING, ukind = MQ_WHERE_END;
    bool until = false;
    bool follow = false, json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:p:o:u:n:fg:F:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            if (!mq_tool_parse_int("consume", "-p", optarg, 0, MQ_CATALOG_PARTITIONS_MAX - 1, &partition))
                return MQ_EXIT_USAGE;
            break;
        case 'o':
            if (!mq_tool_parse_where("consume", "-o", optarg, true, &kind, &arg))
                return MQ_EXIT_USAGE;
            break;
        case 'u':
            if (!mq_tool_parse_where("consume", "--until", optarg, false, &ukind, &uarg))
                return MQ_EXIT_USAGE;
            until = true;
            break;
        case 'n':
            if (!mq_tool_parse_int("consume", "-n", optarg, 1, INT64_MAX, &limit))
                return MQ_EXIT_USAGE;
            break;
        case 'f':
            follow = true;
            break;
        case 'g':
            if (!*optarg)
                return mq_tool_usage_error("consume", "--group: empty group name");
            group = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "raw") == 0)
                json = false;
            else
                return mq_tool_usage_error("consume", "--format '%s': expected raw or json", optarg);
            break;
        case 'h':
            mq_consume_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("consume", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("consume", "no data directory (-d DIR)");
    if (optind >= argc)
        return mq_tool_usage_error("consume", "no topic");
    if (optind + 1 < argc)
        return mq_tool_usage_error("consume", "unexpected argument '%s'", argv[optind + 1]);
    const char *topic_name = argv[optind];
    if (!mq_topic_name_valid(topic_name))
        return mq_tool_usage_error("consume", "invalid topic name '%s'", topic_name);

    struct mq_consume cs = {.topic = topic_name,
                            .json = json,
                            .limit = limit,
                            .until_ts = until && ukind == MQ_WHERE_TIME ? uarg : -1,
                            .follow = follow,
                            .group = group,
                            .ifd = -1};
    if (!until)
        ukind = MQ_WHERE_TIME; /* no offset bound: mq_consume_start sets none, and until_ts is -1 */
    cs.store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!cs.store)
        return MQ_EXIT_FAIL;
    int rc = MQ_EXIT_FAIL;
    struct mq_catalog_topic topic;
    if (!mq_out_init(&cs.out, STDOUT_FILENO, MQ_CONSUME_OUT_BUF)) {
        mq_tool_error("out of memory");
        goto out;
    }
    if (!mq_tool_topic(cs.store, topic_name, &topic))
        goto out;
    if (partition >= topic.partitions) {
        mq_tool_error("unknown partition %" PRId64 " of topic %s (it has %d: 0..%d)", partition, topic.name,
                      (int)topic.partitions, (int)topic.partitions - 1);
        goto out;
    }
    cs.nparts = partition >= 0 ? 1 : topic.partitions;
    cs.parts = calloc((size_t)cs.nparts, sizeof *cs.parts);
    if (!cs.parts) {
        mq_tool_error("out of memory");
        goto out;
    }
    if (follow) {
        cs.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC); /* on failure: poll every 5 ms instead */
    }
    for (int32_t i = 0; i < cs.nparts; i++) {
        struct mq_cpart *cp = &cs.parts[i];
        cp->id = partition >= 0 ? (int32_t)partition : i;
        cp->pending_next = cp->flushed_next = cp->committed = -1;
        if (!(cp->part = mq_tool_part(cs.store, &topic, cp->id)))
            goto out;
        int n = asprintf(&cp->json_prefix, "{\"topic\":\"%s\",\"partition\":%d,\"offset\":", topic.name,
                         (int)cp->id);
        if (n < 0 || asprintf(&cp->dir, "%s/%s-%d", dir, topic.name, (int)cp->id) < 0) {
            if (n < 0)
                cp->json_prefix = NULL;
            cp->dir = NULL;
            mq_tool_error("out of memory");
            goto out;
        }
        cp->json_prefix_len = (size_t)n;
        /* Watch before the start is resolved, so that nothing written after it goes unnoticed. */
        if (cs.ifd >= 0 &&
            inotify_add_watch(cs.ifd, cp->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
            close(cs.ifd);
            cs.ifd = -1;
        }
        if (!mq_consume_start(&cs, cp, kind, arg, ukind, uarg))
            goto out;
    }
    if (follow || group)
        mq_tool_signals();
    else
        signal(SIGPIPE, SIG_IGN);

    bool failed = false;
    int64_t last_commit = mq_mono_ms();
    int32_t next = 0;
    for (;;) {
        bool progressed = false, limit_hit = false, all_done = true;
        for (int32_t k = 0; k < cs.nparts && !failed && !limit_hit; k++) {
            struct mq_cpart *cp = &cs.parts[next];
            next = next + 1 == cs.nparts ? 0 : next + 1;
            if (cp->done)
                continue;
            all_done = false;
            enum mq_turn t = mq_consume_turn(&cs, cp);
            if (t == MQ_TURN_FAIL)
                failed = true;
            else if (t == MQ_TURN_LIMIT)
                limit_hit = true;
            else if (t == MQ_TURN_DATA)
                progressed = true;
            if (cs.out.err)
                break;
        }
        if (failed || limit_hit || all_done || cs.out.err || mq_tool_stop_requested())
            break;
        if (group && mq_mono_ms() - last_commit >= MQ_CONSUME_COMMIT_MS) {
            if (mq_consume_flush(&cs))
                break;
            if (!mq_consume_commit(&cs)) {
                failed = true;
                break;
            }
            last_commit = mq_mono_ms();
        }
        if (!progressed) {
            if (!follow)
                break;
            /* Idle: make what was printed visible to the reader of the pipe before sleeping. */
            if (mq_consume_flush(&cs))
                break;
            mq_consume_wait(&cs);
            if (mq_tool_stop_requested())
                break;
        }
    }
    /* EPIPE: the reader went away (`| head`), which ends a consumer normally, as it ends cat. */
    int werr = mq_consume_flush(&cs);
    if (werr && werr != EPIPE) {
        mq_tool_error("writing output: %s", strerror(werr));
        failed = true;
    }
    if (!mq_consume_commit(&cs))
        failed = true;
    rc = failed ? MQ_EXIT_FAIL : cs.past_end ? MQ_EXIT_RANGE : MQ_EXIT_OK;
out:
    mq_consume_free(&cs);
    return rc;
}
