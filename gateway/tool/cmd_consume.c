/*
 * cmd_consume.c - `mqlog consume`: prints the records of one topic or of every topic a glob matches (raw,
 * JSON lines, CSV or a template, see recfmt.h), from an offset or a point in time up to another, filtered
 * by key and headers, optionally following new records and committing a consumer group's position.
 *
 * The store is opened read-only (MQ_LOG_READ), so consume works beside a running mqlogd. Each partition is
 * read through a log cursor (log.h), which checks every batch's CRC and decodes records in place; they go
 * into a large output buffer: no allocation and no system call per record. A batch whose CRC fails is never
 * printed as data: it is skipped, as are the unreadable parts of damaged segments, with one warning on
 * stderr naming the file and the offsets (the log layer's, the same view the Kafka endpoint serves).
 *
 * Order: records of one partition come in offset order. Without -p the partitions (of every topic matched)
 * are visited in turn, one chunk (up to 1 MiB of batches) at a time, so a large backlog in one partition does
 * not hide the others.
 *
 * Group offsets: with --group the committed offset of a partition is the offset after the last record of it
 * that was written to stdout successfully (not merely buffered). Commits happen every second while running
 * and once at exit (end of data, -n reached, SIGINT/SIGTERM, or the reader of a pipe going away).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
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
#include "tool/recfmt.h"
#include "tool/tool.h"
#include "util/parse.h"

#define MQ_CONSUME_OUT_BUF   (1024 * 1024)
#define MQ_CONSUME_WAIT_MS   100  /* longest sleep when following (a backstop for missed notifications) */
#define MQ_CONSUME_COMMIT_MS 1000 /* group commit period */

static void mq_consume_help(void)
{
    printf(
        "usage: mqlog consume -d DATA_DIR TOPIC|'GLOB' [-p PARTITION] [-o WHERE] [--until WHERE] [-n COUNT]\n"
        "                     [-f] [-g GROUP] [--key GLOB] [--header KEY=GLOB]... [--format FORMAT] "
        "[--count]\n"
        "\n"
        "Prints records of TOPIC, or of every topic the glob matches ('energy.*'). Read-only: safe beside a\n"
        "running mqlogd.\n"
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
        "  -n, --limit COUNT       stop after COUNT matching records in total\n"
        "  -f, --follow            at the end, wait for new records (until SIGINT/SIGTERM, -n or --until)\n"
        "  -g, --group GROUP       start from GROUP's committed offset where it has one (else from -o),\n"
        "                          and commit the position after what was printed (every second and at "
        "exit)\n"
        "  -k, --key GLOB          only records whose key matches GLOB (a null key matches nothing)\n"
        "  -H, --header KEY=GLOB   only records with a header KEY whose value matches GLOB; repeatable, all\n"
        "                          must match (e.g. --header 'mqtt.topic=plant/hall1/*')\n"
        "  -F, --format FORMAT     raw (default): each value on a line of its own (a null value is an empty\n"
        "                          line);\n"
        "                          json: one object per line:\n"
        "                          "
        "{\"topic\":T,\"partition\":P,\"offset\":O,\"timestamp\":MS,\"key\":K,\"value\":V,\n"
        "                           \"headers\":[{\"key\":HK,\"value\":HV}]}\n"
        "                          where keys and values are JSON strings when they are valid UTF-8, null "
        "when\n"
        "                          null, and otherwise appear as \"key_base64\"/\"value_base64\" (standard "
        "base64)\n"
        "                          instead of \"key\"/\"value\";\n"
        "                          csv: a header line, then topic,partition,offset,timestamp,key,value (RFC\n"
        "                          4180 quoting, LF line ends);\n"
        "                          a template, as kcat -f: %%t topic, %%p partition, %%o offset, %%T "
        "timestamp\n"
        "                          (ms), %%k key, %%s value, %%K/%%S their lengths (-1: null), %%h headers "
        "as\n"
        "                          k=v,k=v, %%{NAME} the value of header NAME, %%%% a percent sign; \\n \\t "
        "\\\\\n"
        "                          escapes; nothing is appended (end it with \\n), e.g. '%%t %%o "
        "%%{mqtt.topic} %%s\\n'\n"
        "      --count             print only the number of matching records\n"
        "  -h, --help              this text\n"
        "\n" MQ_TOOL_WHERE_HELP "\n"
        "Exit status: 0 success, 1 runtime error, 2 usage error, 3 an OFFSET past the end of a partition.\n");
}

/* The state of one partition being consumed. */
struct mq_cpart {
    const char *topic; /* the topic's name (in mq_consume.topics) */
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
};

struct mq_consume {
    struct mq_catalog_topic *topics; /* the topics matched */
    size_t ntopics;
    struct mq_store *store;
    struct mq_cpart *parts;
    int32_t nparts;
    struct mq_rfmt fmt;
    struct mq_rfilter filter;
    bool count_only;  /* --count */
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
                .topic = cp->topic, .partition = cp->id, .offset = cp->flushed_next, .metadata = NULL};
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
            cp->pending_next = rv.offset + 1;
            if (mq_rfilter_match(&cs->filter, &rv)) {
                if (!cs->count_only)
                    mq_rfmt_emit(&cs->fmt, &cs->out, cp->topic, cp->id, &rv);
                if (++cs->printed == cs->limit)
                    return MQ_TURN_LIMIT;
            }
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
                              cp->topic, (int)cp->id, pos, st.start_offset - 1);
            mq_cursor_seek(cp->cur, pos < st.start_offset ? st.start_offset : st.end_offset);
            return MQ_TURN_DATA; /* try again at once */
        }
        if (err != MQ_OK)
            r = -(int)err;
    }
    const struct mq_cursor_fault *f = mq_cursor_fault(cp->cur);
    if (f->position >= 0)
        mq_tool_error("%s:%" PRId64 ": %s (partition %s-%d, batch at offset %" PRId64 "); not printed",
                      f->path, f->position, f->what, cp->topic, (int)cp->id, f->base_offset);
    else
        mq_tool_error("reading %s-%d at offset %" PRId64 ": %s", cp->topic, (int)cp->id, pos,
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
        mq_tool_error("partition %s-%d: %s", cp->topic, (int)cp->id, mq_strerror(err));
        return false;
    }
    cp->stop = ukind == MQ_WHERE_TIME ? INT64_MAX
                                      : mq_tool_where_offset(ukind, uarg, st.start_offset, st.end_offset);
    bool from_group = false;
    if (cs->group) {
        int64_t off;
        err = mq_catalog_offset_fetch(mq_store_catalog(cs->store), cs->group, cp->topic, cp->id, &off, NULL,
                                      NULL);
        if (err == MQ_OK) {
            cp->committed = off;
            kind = MQ_WHERE_OFFSET;
            arg = off;
            from_group = true;
        } else if (err != MQ_ERR_NOENT) {
            mq_tool_error("group %s: fetching the offset of %s-%d: %s (%s)", cs->group, cp->topic,
                          (int)cp->id, mq_strerror(err), mq_catalog_errmsg(mq_store_catalog(cs->store)));
            return false;
        }
    }
    if (kind == MQ_WHERE_TIME) {
        err = mq_cursor_open_time(cp->part, arg, &cp->cur);
        if (err != MQ_OK) {
            mq_tool_error("partition %s-%d: looking up time %" PRId64 ": %s", cp->topic, (int)cp->id, arg,
                          mq_strerror(err));
            return false;
        }
        return true;
    }
    int64_t want = mq_tool_where_offset(kind, arg, st.start_offset, st.end_offset);
    if (want > st.end_offset && !cs->follow && !from_group) {
        mq_tool_error("offset %" PRId64 " is past the end of %s-%d (its next offset is %" PRId64 ")", want,
                      cp->topic, (int)cp->id, st.end_offset);
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
        mq_tool_error("partition %s-%d: opening at offset %" PRId64 ": %s", cp->topic, (int)cp->id, want,
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
        }
    free(cs->parts);
    mq_out_free(&cs->out);
    mq_rfmt_free(&cs->fmt);
    mq_rfilter_free(&cs->filter);
    free(cs->topics);
    if (cs->ifd >= 0)
        close(cs->ifd);
    mq_store_close(cs->store);
}

/* Finds the topics pattern names: the one topic, or every topic a glob (with * ? or [) matches, in name
 * order. Prints an error and returns false when there is none. */
static bool mq_consume_topics(struct mq_consume *cs, const char *pattern)
{
    if (!strpbrk(pattern, "*?[")) {
        cs->topics = malloc(sizeof *cs->topics);
        if (!cs->topics) {
            mq_tool_error("out of memory");
            return false;
        }
        if (!mq_tool_topic(cs->store, pattern, cs->topics))
            return false;
        cs->ntopics = 1;
        return true;
    }
    struct mq_catalog_topic *all;
    size_t n, k = 0;
    struct mq_catalog *cat = mq_store_catalog(cs->store);
    enum mq_err err = mq_catalog_topic_list(cat, &all, &n);
    if (err != MQ_OK) {
        mq_tool_error("listing topics: %s (%s)", mq_strerror(err), mq_catalog_errmsg(cat));
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (fnmatch(pattern, all[i].name, 0) == 0)
            all[k++] = all[i];
    if (k == 0) {
        free(all);
        mq_tool_error("no topic matches '%s' in %s", pattern, mq_store_dir(cs->store));
        return false;
    }
    cs->topics = all;
    cs->ntopics = k;
    return true;
}

/* Sets up the partitions to read: -p of each topic that has it, or all of them. */
static bool mq_consume_parts(struct mq_consume *cs, const char *dir, int64_t partition)
{
    if (partition >= 0 && cs->ntopics == 1 && partition >= cs->topics[0].partitions) {
        mq_tool_error("unknown partition %" PRId64 " of topic %s (it has %d: 0..%d)", partition,
                      cs->topics[0].name, (int)cs->topics[0].partitions, (int)cs->topics[0].partitions - 1);
        return false;
    }
    size_t total = 0;
    for (size_t t = 0; t < cs->ntopics; t++)
        total += partition < 0 ? (size_t)cs->topics[t].partitions : partition < cs->topics[t].partitions;
    if (total == 0) {
        mq_tool_error("no topic matched has a partition %" PRId64, partition);
        return false;
    }
    if (total > INT32_MAX || !(cs->parts = calloc(total, sizeof *cs->parts))) {
        mq_tool_error("out of memory");
        return false;
    }
    for (size_t t = 0; t < cs->ntopics; t++) {
        const struct mq_catalog_topic *topic = &cs->topics[t];
        for (int32_t p = 0; p < topic->partitions; p++) {
            if (partition >= 0 && p != partition)
                continue;
            struct mq_cpart *cp = &cs->parts[cs->nparts++];
            cp->topic = topic->name;
            cp->id = p;
            cp->pending_next = cp->flushed_next = cp->committed = -1;
            if (!(cp->part = mq_tool_part(cs->store, topic, p)))
                return false;
            if (asprintf(&cp->dir, "%s/%s-%d", dir, topic->name, (int)p) < 0) {
                cp->dir = NULL;
                mq_tool_error("out of memory");
                return false;
            }
        }
    }
    return true;
}

int mq_cmd_consume(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"partition", required_argument, NULL, 'p'},
        {"offset", required_argument, NULL, 'o'},
        {"until", required_argument, NULL, 'u'},
        {"limit", required_argument, NULL, 'n'},
        {"follow", no_argument, NULL, 'f'},
        {"group", required_argument, NULL, 'g'},
        {"format", required_argument, NULL, 'F'},
        {"key", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'},
        {"count", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *group = NULL, *format = "raw";
    int64_t partition = -1, limit = -1, arg = 0, uarg = 0;
    enum mq_where_kind kind = MQ_WHERE_BEGINNING, ukind = MQ_WHERE_END;
    bool until = false, follow = false, count_only = false;
    struct mq_rfilter filter = {0};
    char err[256];
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:p:o:u:n:fg:F:k:H:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            if (!mq_tool_parse_int("consume", "-p", optarg, 0, MQ_CATALOG_PARTITIONS_MAX - 1, &partition))
                goto usage;
            break;
        case 'o':
            if (!mq_tool_parse_where("consume", "-o", optarg, true, &kind, &arg))
                goto usage;
            break;
        case 'u':
            if (!mq_tool_parse_where("consume", "--until", optarg, false, &ukind, &uarg))
                goto usage;
            until = true;
            break;
        case 'n':
            if (!mq_tool_parse_int("consume", "-n", optarg, 1, INT64_MAX, &limit))
                goto usage;
            break;
        case 'f':
            follow = true;
            break;
        case 'g':
            if (!*optarg) {
                mq_tool_usage_error("consume", "--group: empty group name");
                goto usage;
            }
            group = optarg;
            break;
        case 'F':
            format = optarg;
            break;
        case 'k':
            filter.key = optarg;
            break;
        case 'H':
            if (!mq_rfilter_add_header(&filter, optarg, err, sizeof err)) {
                mq_tool_usage_error("consume", "%s", err);
                goto usage;
            }
            break;
        case 'C':
            count_only = true;
            break;
        case 'h':
            mq_rfilter_free(&filter);
            mq_consume_help();
            return MQ_EXIT_OK;
        default:
            mq_rfilter_free(&filter);
            return mq_tool_bad_option("consume", argc, argv, c);
        }
    }
    struct mq_rfmt fmt;
    if (!mq_rfmt_parse(&fmt, format, err, sizeof err)) {
        mq_tool_usage_error("consume", "%s", err);
        goto usage;
    }
    const char *pattern = optind < argc ? argv[optind] : NULL;
    bool bad = true;
    if (!dir)
        mq_tool_usage_error("consume", "no data directory (-d DIR)");
    else if (!pattern)
        mq_tool_usage_error("consume", "no topic");
    else if (optind + 1 < argc)
        mq_tool_usage_error("consume", "unexpected argument '%s'", argv[optind + 1]);
    else if (count_only && follow)
        mq_tool_usage_error("consume", "--count and -f do not go together: a count needs an end");
    else if (count_only && group)
        mq_tool_usage_error("consume", "--count and -g do not go together: counting commits nothing");
    else
        bad = false;
    if (bad) {
        mq_rfmt_free(&fmt);
        goto usage;
    }
    if (!strpbrk(pattern, "*?[") && !mq_topic_name_valid(pattern)) {
        mq_rfmt_free(&fmt);
        mq_tool_usage_error("consume", "invalid topic name '%s'", pattern);
        goto usage;
    }

    struct mq_consume cs = {.fmt = fmt,
                            .filter = filter,
                            .count_only = count_only,
                            .limit = limit,
                            .until_ts = until && ukind == MQ_WHERE_TIME ? uarg : -1,
                            .follow = follow,
                            .group = group,
                            .ifd = -1};
    if (!until)
        ukind = MQ_WHERE_TIME; /* no offset bound: mq_consume_start sets none, and until_ts is -1 */
    int rc = MQ_EXIT_FAIL;
    cs.store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!cs.store)
        goto out;
    if (!mq_out_init(&cs.out, STDOUT_FILENO, MQ_CONSUME_OUT_BUF)) {
        mq_tool_error("out of memory");
        goto out;
    }
    if (!mq_consume_topics(&cs, pattern) || !mq_consume_parts(&cs, dir, partition))
        goto out;
    if (follow) {
        cs.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC); /* on failure: poll every 5 ms instead */
    }
    for (int32_t i = 0; i < cs.nparts; i++) {
        struct mq_cpart *cp = &cs.parts[i];
        /* Watch before the start is resolved, so that nothing written after it goes unnoticed. */
        if (cs.ifd >= 0 &&
            inotify_add_watch(cs.ifd, cp->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
            close(cs.ifd);
            cs.ifd = -1;
        }
        if (!mq_consume_start(&cs, cp, kind, arg, ukind, uarg))
            goto out;
    }
    if (fmt.kind == MQ_RFMT_CSV && !count_only)
        mq_out_str(&cs.out, MQ_RFMT_CSV_HEADER);
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
        mq_tool_error("writing output: %s", MQ_STRERROR(werr));
        failed = true;
    }
    if (!mq_consume_commit(&cs))
        failed = true;
    if (count_only && !failed) {
        mq_out_int(&cs.out, cs.printed);
        mq_out_char(&cs.out, '\n');
        werr = mq_out_flush(&cs.out);
        if (werr && werr != EPIPE) {
            mq_tool_error("writing output: %s", MQ_STRERROR(werr));
            failed = true;
        }
    }
    rc = failed ? MQ_EXIT_FAIL : cs.past_end ? MQ_EXIT_RANGE : MQ_EXIT_OK;
out:
    mq_consume_free(&cs);
    return rc;
usage:
    mq_rfilter_free(&filter);
    return MQ_EXIT_USAGE;
}
