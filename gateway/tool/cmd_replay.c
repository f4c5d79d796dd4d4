/*
 * cmd_replay.c - `mqlog replay`: republishes stored records to an MQTT broker, on the MQTT topic each record
 * arrived on (its "mqtt.topic" header) or on a topic built from a template, at full speed, at a fixed rate,
 * or at the pace the records were stored at, scaled.
 *
 * The store is opened read-only (MQ_LOG_READ), so replay works beside a running mqlogd. What is replayed is
 * fixed when the command starts: every partition's end offset is taken then, so records that arrive during
 * the replay are not part of it and the command always ends.
 *
 * Order: the records of one partition go out in offset order. With several partitions their records are
 * merged by timestamp (the head record with the smallest timestamp goes next; ties go to the lower
 * partition), which is the order they arrived in when they came from one MQTT source, and the only order in
 * which "the original pacing" means something.
 *
 * MQTT side: replay_mqtt.c parses the --to URL and drives one libmosquitto client from this thread; what
 * the two files share is replay_int.h. No more than --inflight publishes are outstanding, which bounds the
 * memory libmosquitto queues, and the command ends only once every publish is acknowledged.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "tool/replay_int.h"
#include "tool/tool.h"
#include "util/parse.h"

static void mq_replay_help(void)
{
    printf(
        "usage: mqlog replay -d DATA_DIR TOPIC --to mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT] [-p PARTITION]\n"
        "                    [-o WHERE] [--until WHERE] [-n COUNT]\n"
        "                    [--username USER] [--password-file F] [--cafile F] [--cert F --key F]\n"
        "                    [--topic TEMPLATE] [--qos 0|1|2] [--rate MSGS_PER_S | --speed X]\n"
        "                    [--client-id ID] [--inflight N]\n"
        "\n"
        "Publishes the stored records of TOPIC to an MQTT broker: each record's value is the payload, sent\n"
        "on the MQTT topic it arrived on (its mqtt.topic header). Read-only: safe beside a running mqlogd.\n"
        "Records stored after the command starts are not replayed. The retain flag is never set.\n"
        "\n"
        "  -d, --dir DATA_DIR      the data directory\n"
        "  -t, --to URL            the broker: mqtt://HOST[:PORT] (port 1883 by default) or mqtts:// (TLS,\n"
        "                          port 8883); USER[:PASSWORD]@ before HOST logs in (percent-encoded)\n"
        "      --username USER     log in as USER (instead of the URL's)\n"
        "      --password-file F   the password is the first line of F (keeps it out of ps and history)\n"
        "      --cafile F          TLS: trust the CAs in F (default: the system's trust store)\n"
        "      --cert F, --key F   TLS: the client certificate and its key\n"
        "  -p, --partition N       only this partition (default: all, merged in timestamp order; the\n"
        "                          records of one partition always go out in offset order)\n"
        "  -o, --offset WHERE      where to start in each partition (default: beginning)\n"
        "  -n, --limit COUNT       replay at most COUNT records in total\n"
        "  -u, --until WHERE       stop each partition before the record WHERE names (an offset or -N), or\n"
        "                          before its first record with a timestamp at or after a time (default: "
        "the\n"
        "                          end)\n"
        "  -T, --topic TEMPLATE    publish on TEMPLATE instead, where {topic} is the stored MQTT topic,\n"
        "                          {partition} and {offset} the record's, {key} its key (empty when null)\n"
        "  -q, --qos N             QoS of the publishes (default 1); with 1 and 2 the command ends once the\n"
        "                          broker acknowledged every one; QoS 0 messages are only sent\n"
        "  -r, --rate N            publish N messages per second (N may have a fraction)\n"
        "  -s, --speed X           keep the stored pacing (timestamp differences) scaled by X: 1 as stored,\n"
        "                          2 twice as fast (default without --rate/--speed: as fast as possible)\n"
        "  -i, --client-id ID      MQTT client id (default mqlog-replay-PID)\n"
        "  -I, --inflight N        at most N publishes awaiting acknowledgement (default %d)\n"
        "      --quiet             no progress bar\n"
        "  -h, --help              this text\n"
        "\n" MQ_TOOL_WHERE_HELP "\n"
        "A progress bar (with rate and time left) is drawn on stderr when it is a terminal, unless --quiet; "
        "a\n"
        "summary line ends the run either way.\n",
        MQ_REPLAY_INFLIGHT);
}

/* ---- the topic template ---- */

/* Splits tmpl into text and placeholders; prints a usage error and returns false when malformed. */
static bool mq_tpl_parse(const char *tmpl, struct mq_tpl *tpl)
{
    static const struct {
        const char *name;
        enum mq_tpl_kind kind;
    } names[] = {
        {"topic", MQ_TPL_TOPIC},
        {"partition", MQ_TPL_PARTITION},
        {"offset", MQ_TPL_OFFSET},
        {"key", MQ_TPL_KEY},
    };
    size_t len = strlen(tmpl);
    if (len == 0) {
        mq_tool_usage_error("replay", "--topic: empty template");
        return false;
    }
    tpl->pieces = calloc(len + 1, sizeof *tpl->pieces); /* never more pieces than characters */
    if (!tpl->pieces) {
        mq_tool_error("out of memory");
        return false;
    }
    const char *p = tmpl;
    while (*p) {
        if (*p == '}') {
            mq_tool_usage_error("replay", "--topic '%s': '}' without '{'", tmpl);
            return false;
        }
        if (*p != '{') {
            size_t n = strcspn(p, "{}");
            tpl->pieces[tpl->n++] = (struct mq_tpl_piece){MQ_TPL_TEXT, p, n};
            p += n;
            continue;
        }
        const char *close = strchr(p, '}');
        size_t nlen = close ? (size_t)(close - p - 1) : 0;
        size_t k = 0;
        for (; close && k < sizeof names / sizeof names[0]; k++)
            if (strlen(names[k].name) == nlen && memcmp(names[k].name, p + 1, nlen) == 0)
                break;
        if (!close || k == sizeof names / sizeof names[0]) {
            mq_tool_usage_error("replay",
                                "--topic '%s': unknown placeholder at '%s' (expected {topic}, {partition}, "
                                "{offset} or {key})",
                                tmpl, p);
            return false;
        }
        tpl->pieces[tpl->n++] = (struct mq_tpl_piece){names[k].kind, NULL, 0};
        if (names[k].kind == MQ_TPL_TOPIC)
            tpl->uses_topic = true;
        p = close + 1;
    }
    return true;
}

static bool mq_sbuf_add(struct mq_sbuf *b, const void *s, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return false;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}

/* ---- reading the partitions ---- */

/*
 * Makes rp's head the next record to replay, or marks rp done (its end, --until). The previous head's
 * pointers are invalid afterwards. False after a message (a damaged batch, an I/O error).
 */
static bool mq_replay_advance(struct mq_replay *rs, struct mq_rpart *rp)
{
    rp->has_head = false;
    while (!rp->done) {
        struct mq_record_view rv;
        int r = mq_cursor_next(rp->cur, &rv);
        if (r == 0) { /* the log ends earlier than it did at the start (truncated by recovery) */
            rp->done = true;
            break;
        }
        int64_t pos = mq_cursor_position(rp->cur);
        if (r == -MQ_ERR_RANGE) {
            /* Retention removed what we were about to read: go on from the new log start. */
            int64_t start, end;
            enum mq_err err = mq_part_offsets(rp->part, &start, &end);
            if (err == MQ_OK && pos < start) {
                mq_tool_error("warning: %s-%d: offsets %" PRId64 "..%" PRId64 " were deleted by retention",
                              rs->topic, (int)rp->id, pos, start - 1);
                mq_cursor_seek(rp->cur, start);
                continue;
            }
            if (err != MQ_OK)
                r = -(int)err;
        }
        if (r < 0) {
            const struct mq_cursor_fault *f = mq_cursor_fault(rp->cur);
            if (f->position >= 0)
                mq_tool_error("%s-%d: %s in the batch at offset %" PRId64 " (file position %" PRId64
                              " of its segment)",
                              rs->topic, (int)rp->id, f->what, f->base_offset, f->position);
            else
                mq_tool_error("reading %s-%d at offset %" PRId64 ": %s", rs->topic, (int)rp->id, pos,
                              mq_strerror((enum mq_err) - r));
            return false;
        }
        if (rv.offset >= rp->end || (rs->until_ts >= 0 && rv.timestamp >= rs->until_ts)) {
            rp->done = true;
            break;
        }
        rp->head = rv;
        rp->has_head = true;
        return true;
    }
    return true;
}

/* Opens rp's cursor at -o and sets its end (the end now, or --until's offset when smaller; a --until time
 * is checked record by record). */
static bool mq_replay_start(struct mq_replay *rs, struct mq_rpart *rp, enum mq_where_kind kind, int64_t arg,
                            enum mq_where_kind ukind, int64_t uarg)
{
    int64_t start, end;
    enum mq_err err = mq_part_offsets(rp->part, &start, &end);
    if (err != MQ_OK) {
        mq_tool_error("partition %s-%d: %s", rs->topic, (int)rp->id, mq_strerror(err));
        return false;
    }
    if (kind == MQ_WHERE_TIME) {
        err = mq_cursor_open_time(rp->part, arg, &rp->cur);
        if (err != MQ_OK) {
            mq_tool_error("partition %s-%d: looking up time %" PRId64 ": %s", rs->topic, (int)rp->id, arg,
                          mq_strerror(err));
            return false;
        }
    } else {
        int64_t want = mq_tool_where_offset(kind, arg, start, end);
        if (want < start)
            want = start;
        if (want > end)
            want = end;
        err = mq_cursor_open(rp->part, want, &rp->cur);
        if (err != MQ_OK) {
            mq_tool_error("partition %s-%d: opening at offset %" PRId64 ": %s", rs->topic, (int)rp->id, want,
                          mq_strerror(err));
            return false;
        }
    }
    int64_t want = mq_cursor_position(rp->cur);
    int64_t until_off = ukind == MQ_WHERE_TIME ? end : mq_tool_where_offset(ukind, uarg, start, end);
    rp->end = until_off < end ? until_off : end;
    if (rp->end > want)
        rs->total += rp->end - want;
    return true;
}

/* ---- the MQTT topic of a record ---- */

/* Builds the MQTT topic of rp's head into rs->mtopic. False after a message. */
static bool mq_replay_topic(struct mq_replay *rs, const struct mq_rpart *rp)
{
    const struct mq_record_view *rv = &rp->head;
    const void *stored = NULL;
    int32_t stored_len = -1;
    const uint8_t *cur = rv->headers;
    struct mq_header h;
    int r;
    while ((r = mq_header_next(&cur, rv->headers_end, &h)) == 1)
        if (h.key_len == (int32_t)sizeof MQ_REPLAY_TOPIC_HDR - 1 &&
            memcmp(h.key, MQ_REPLAY_TOPIC_HDR, sizeof MQ_REPLAY_TOPIC_HDR - 1) == 0) {
            stored = h.value;
            stored_len = h.value_len;
        }
    if (r < 0) {
        mq_tool_error("%s-%d offset %" PRId64 ": malformed headers", rs->topic, (int)rp->id, rv->offset);
        return false;
    }
    if ((!rs->have_tpl || rs->tpl.uses_topic) && stored_len < 0) {
        mq_tool_error("%s-%d offset %" PRId64 ": the record has no " MQ_REPLAY_TOPIC_HDR " header%s",
                      rs->topic, (int)rp->id, rv->offset,
                      rs->have_tpl ? " for {topic}" : " (name a topic with --topic TEMPLATE)");
        return false;
    }
    rs->mtopic.len = 0;
    bool ok = true;
    if (!rs->have_tpl) {
        ok = mq_sbuf_add(&rs->mtopic, stored, (size_t)stored_len);
    } else {
        for (size_t i = 0; i < rs->tpl.n && ok; i++) {
            const struct mq_tpl_piece *pc = &rs->tpl.pieces[i];
            char num[24];
            switch (pc->kind) {
            case MQ_TPL_TEXT:
                ok = mq_sbuf_add(&rs->mtopic, pc->text, pc->len);
                break;
            case MQ_TPL_TOPIC:
                ok = mq_sbuf_add(&rs->mtopic, stored, (size_t)stored_len);
                break;
            case MQ_TPL_PARTITION:
                snprintf(num, sizeof num, "%d", (int)rp->id);
                ok = mq_sbuf_add(&rs->mtopic, num, strlen(num));
                break;
            case MQ_TPL_OFFSET:
                snprintf(num, sizeof num, "%" PRId64, rv->offset);
                ok = mq_sbuf_add(&rs->mtopic, num, strlen(num));
                break;
            case MQ_TPL_KEY:
                if (rv->key_len > 0)
                    ok = mq_sbuf_add(&rs->mtopic, rv->key, (size_t)rv->key_len);
                break;
            }
        }
    }
    if (ok && !rs->mtopic.p)
        ok = mq_sbuf_add(&rs->mtopic, "", 0);
    if (!ok) {
        mq_tool_error("out of memory");
        return false;
    }
    const char *why = NULL;
    if (rs->mtopic.len == 0)
        why = "empty";
    else if (memchr(rs->mtopic.p, 0, rs->mtopic.len))
        why = "contains a NUL byte";
    else if (rs->mtopic.len > 65535)
        why = "longer than 65535 bytes";
    else if (mosquitto_validate_utf8(rs->mtopic.p, (int)rs->mtopic.len) != MOSQ_ERR_SUCCESS)
        why = "not valid UTF-8";
    else if (mosquitto_pub_topic_check2(rs->mtopic.p, rs->mtopic.len) != MOSQ_ERR_SUCCESS)
        why = "contains a wildcard (+ or #)";
    if (why) {
        mq_tool_error("%s-%d offset %" PRId64 ": cannot publish on MQTT topic '%.*s': %s", rs->topic,
                      (int)rp->id, rv->offset, (int)(rs->mtopic.len > 200 ? 200 : rs->mtopic.len),
                      rs->mtopic.p, why);
        return false;
    }
    return true;
}

/* ---- progress ---- */

static void mq_replay_bar(struct mq_replay *rs, bool force)
{
    if (!rs->bar)
        return;
    int64_t now = mq_mono_ms();
    if (!force && now - rs->bar_last_ms < MQ_REPLAY_BAR_MS)
        return;
    rs->bar_last_ms = now;
    enum { WIDTH = 30 };
    double frac = rs->total > 0 ? (double)rs->published / (double)rs->total : 1.0;
    if (frac > 1.0)
        frac = 1.0;
    char bar[WIDTH + 1];
    int full = (int)(frac * WIDTH);
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < full ? '#' : '.';
    bar[WIDTH] = 0;
    double secs = (double)(now - rs->t0_ms) / 1000.0;
    double rate = secs > 0.2 ? (double)rs->published / secs : 0;
    char eta[32] = "--:--";
    if (rate > 0 && rs->total >= rs->published) {
        int64_t left = (int64_t)((double)(rs->total - rs->published) / rate + 0.5);
        if (left < 3600 * 100)
            snprintf(eta, sizeof eta, "%02d:%02d:%02d", (int)(left / 3600), (int)(left / 60 % 60),
                     (int)(left % 60));
    }
    fprintf(stderr, "\r[%s] %3d%% %" PRId64 "/%" PRId64 " sent, %" PRId64 " acked, %.0f msg/s, %s left ", bar,
            (int)(frac * 100), rs->published, rs->total, rs->acked, rate, eta);
    fflush(stderr);
}

/* ---- the run ---- */

/* Sleeps (serving the connection) until mono time due_us. False when the connection failed. */
static bool mq_replay_wait_until(struct mq_replay *rs, int64_t due_us)
{
    for (;;) {
        int64_t left = due_us - mq_mono_us();
        if (left <= 0 || mq_tool_stop_requested())
            return true;
        int ms = left >= 1000000 ? 1000 : (int)((left + 999) / 1000);
        /* mosquitto_loop waits whole milliseconds: the last fraction of one is spent polling, so that a
         * fixed rate is kept to the microsecond on average rather than rounded up per message. */
        if (!mq_replay_pump(rs, left < 1000 ? 0 : ms - 1))
            return false;
        mq_replay_bar(rs, false);
    }
}

/* Waits while `limit` or more publishes are unacknowledged. False on connection loss or a stall. */
static bool mq_replay_drain(struct mq_replay *rs, int64_t limit, bool interruptible)
{
    rs->last_ack_us = mq_mono_us();
    while (rs->inflight >= limit && rs->inflight > 0) {
        if (interruptible && mq_tool_stop_requested())
            return true;
        if (mq_mono_us() - rs->last_ack_us > (int64_t)MQ_REPLAY_ACK_STALL_MS * 1000) {
            mq_tool_error("%s acknowledged nothing for %d s: %" PRId64 " of %" PRId64
                          " published messages unacknowledged",
                          rs->url, MQ_REPLAY_ACK_STALL_MS / 1000, rs->inflight, rs->published);
            return false;
        }
        /* Brokers that keep Nagle on hold a PUBACK back until the previous one's TCP ACK arrives, which
         * delayed ACK postpones by up to 40 ms while we have nothing to send: acknowledge at once. */
        int one = 1;
        (void)setsockopt(mosquitto_socket(rs->mosq), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        if (!mq_replay_pump(rs, 100))
            return false;
        mq_replay_bar(rs, false);
    }
    return true;
}

/* The partition whose head goes next: the smallest timestamp, ties to the lower partition; NULL at the end.
 */
static struct mq_rpart *mq_replay_pick(struct mq_replay *rs)
{
    struct mq_rpart *best = NULL;
    for (int32_t i = 0; i < rs->nparts; i++) {
        struct mq_rpart *rp = &rs->parts[i];
        if (rp->has_head && (!best || rp->head.timestamp < best->head.timestamp))
            best = rp;
    }
    return best;
}

/* Publishes every selected record. False after a message. */
static bool mq_replay_run(struct mq_replay *rs, double rate, double speed)
{
    int64_t t0_us = mq_mono_us(), ts0 = -1;
    struct mq_rpart *rp;
    while ((rp = mq_replay_pick(rs)) != NULL && rs->published != rs->limit) {
        if (mq_tool_stop_requested())
            return true;
        if (!mq_replay_topic(rs, rp))
            return false;
        if (ts0 < 0) {
            ts0 = rp->head.timestamp;
            t0_us = mq_mono_us();
        }
        int64_t due = 0;
        if (rate > 0)
            due = t0_us + (int64_t)((double)rs->published * 1e6 / rate);
        else if (speed > 0 && rp->head.timestamp > ts0)
            due = t0_us + (int64_t)((double)(rp->head.timestamp - ts0) * 1000.0 / speed);
        if (due > 0 && !mq_replay_wait_until(rs, due))
            return false;
        if (!mq_replay_drain(rs, rs->inflight_max, true))
            return false;
        if (mq_tool_stop_requested())
            return true;
        const struct mq_record_view *rv = &rp->head;
        int mid;
        errno = 0;
        int rc = mosquitto_publish(rs->mosq, &mid, rs->mtopic.p, rv->value_len > 0 ? rv->value_len : 0,
                                   rv->value_len > 0 ? rv->value : NULL, rs->qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            int e = errno;
            if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rs->conn_lost)
                mq_tool_error("connection to %s lost after %" PRId64 " of %" PRId64
                              " published messages were acknowledged",
                              rs->url, rs->acked, rs->published);
            else
                mq_tool_error("%s-%d offset %" PRId64 ": publishing: %s", rs->topic, (int)rp->id, rv->offset,
                              MQ_CLAUSE(mq_replay_mosq_str(rc, e)));
            return false;
        }
        /* Counted after the call: for QoS 0 libmosquitto may already have reported the publish as sent. */
        rs->inflight++;
        rs->published++;
        if (!mq_replay_advance(rs, rp))
            return false;
        mq_replay_bar(rs, false);
    }
    return true;
}

static void mq_replay_free(struct mq_replay *rs)
{
    if (rs->mosq)
        mosquitto_destroy(rs->mosq);
    if (rs->lib_init)
        mosquitto_lib_cleanup();
    if (rs->parts)
        for (int32_t i = 0; i < rs->nparts; i++)
            mq_cursor_close(rs->parts[i].cur);
    free(rs->parts);
    free(rs->tpl.pieces);
    free(rs->mtopic.p);
    free(rs->host);
    free(rs->username);
    if (rs->password) {
        explicit_bzero(rs->password, strlen(rs->password));
        free(rs->password);
    }
    mq_store_close(rs->store);
}

/* Parses a positive finite number (--rate, --speed). */
static bool mq_replay_parse_positive(const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v) || v <= 0) {
        mq_tool_usage_error("replay", "%s '%s': expected a number > 0", opt, s);
        return false;
    }
    *out = v;
    return true;
}

int mq_cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"to", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"offset", required_argument, NULL, 'o'},
        {"until", required_argument, NULL, 'u'},
        {"topic", required_argument, NULL, 'T'},
        {"qos", required_argument, NULL, 'q'},
        {"rate", required_argument, NULL, 'r'},
        {"speed", required_argument, NULL, 's'},
        {"client-id", required_argument, NULL, 'i'},
        {"inflight", required_argument, NULL, 'I'},
        {"limit", required_argument, NULL, 'n'},
        {"username", required_argument, NULL, 'U'},
        {"password-file", required_argument, NULL, 'P'},
        {"cafile", required_argument, NULL, 'A'},
        {"cert", required_argument, NULL, 'C'},
        {"key", required_argument, NULL, 'K'},
        {"quiet", no_argument, NULL, 'Q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mq_replay rs = {.until_ts = -1, .qos = 1, .inflight_max = MQ_REPLAY_INFLIGHT, .limit = -1};
    const char *dir = NULL, *to = NULL, *tmpl = NULL, *client_id = NULL, *username = NULL, *pwfile = NULL;
    char *shown_url = NULL;
    bool quiet = false;
    int64_t partition = -1, arg = 0, uarg = 0, v;
    enum mq_where_kind kind = MQ_WHERE_BEGINNING, ukind = MQ_WHERE_END;
    double rate = 0, speed = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:t:p:o:u:n:T:q:r:s:i:I:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'p':
            if (!mq_tool_parse_int("replay", "-p", optarg, 0, MQ_CATALOG_PARTITIONS_MAX - 1, &partition))
                return MQ_EXIT_USAGE;
            break;
        case 'o':
            if (!mq_tool_parse_where("replay", "-o", optarg, true, &kind, &arg))
                return MQ_EXIT_USAGE;
            break;
        case 'u':
            if (!mq_tool_parse_where("replay", "--until", optarg, false, &ukind, &uarg))
                return MQ_EXIT_USAGE;
            rs.until_ts = ukind == MQ_WHERE_TIME ? uarg : -1;
            break;
        case 'T':
            tmpl = optarg;
            break;
        case 'q':
            if (!mq_tool_parse_int("replay", "--qos", optarg, 0, 2, &v))
                return MQ_EXIT_USAGE;
            rs.qos = (int)v;
            break;
        case 'r':
            if (!mq_replay_parse_positive("--rate", optarg, &rate))
                return MQ_EXIT_USAGE;
            break;
        case 's':
            if (!mq_replay_parse_positive("--speed", optarg, &speed))
                return MQ_EXIT_USAGE;
            break;
        case 'i':
            if (!*optarg || strlen(optarg) > 65535)
                return mq_tool_usage_error("replay", "--client-id: must be 1..65535 bytes");
            client_id = optarg;
            break;
        case 'I':
            if (!mq_tool_parse_int("replay", "--inflight", optarg, 1, 65535, &v))
                return MQ_EXIT_USAGE;
            rs.inflight_max = (int)v;
            break;
        case 'n':
            if (!mq_tool_parse_int("replay", "-n", optarg, 1, INT64_MAX, &rs.limit))
                return MQ_EXIT_USAGE;
            break;
        case 'U':
            username = optarg;
            break;
        case 'P':
            pwfile = optarg;
            break;
        case 'A':
            rs.cafile = optarg;
            break;
        case 'C':
            rs.certfile = optarg;
            break;
        case 'K':
            rs.keyfile = optarg;
            break;
        case 'Q':
            quiet = true;
            break;
        case 'h':
            mq_replay_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("replay", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("replay", "no data directory (-d DIR)");
    if (!to)
        return mq_tool_usage_error("replay", "no broker (--to mqtt://HOST:PORT)");
    if (rate > 0 && speed > 0)
        return mq_tool_usage_error("replay", "--rate and --speed exclude each other");
    if (!rs.certfile != !rs.keyfile)
        return mq_tool_usage_error("replay", "--cert and --key go together: give both or neither");
    if (optind >= argc)
        return mq_tool_usage_error("replay", "no topic");
    if (optind + 1 < argc)
        return mq_tool_usage_error("replay", "unexpected argument '%s'", argv[optind + 1]);
    rs.topic = argv[optind];
    if (!mq_topic_name_valid(rs.topic))
        return mq_tool_usage_error("replay", "invalid topic name '%s'", rs.topic);
    int rc = MQ_EXIT_USAGE;
    if (!mq_replay_parse_url(&rs, to, &shown_url))
        goto out;
    if (!rs.tls && (rs.cafile || rs.certfile)) {
        mq_tool_usage_error("replay", "--cafile, --cert and --key need an mqtts:// URL");
        goto out;
    }
    if (username) {
        free(rs.username);
        if (!(rs.username = strdup(username))) {
            mq_tool_error("out of memory");
            goto out;
        }
    }
    if (pwfile) {
        char why[512];
        if (rs.password) {
            explicit_bzero(rs.password, strlen(rs.password));
            free(rs.password);
        }
        if (mq_config_password_file(pwfile, &rs.password, why, sizeof why) != MQ_OK) {
            mq_tool_error("%s", why);
            rc = MQ_EXIT_FAIL;
            goto out;
        }
    }
    if (rs.password && !rs.username) {
        mq_tool_usage_error("replay", "a password needs a user name (--username or USER@ in the URL)");
        goto out;
    }

    if (tmpl) {
        if (!mq_tpl_parse(tmpl, &rs.tpl))
            goto out;
        rs.have_tpl = true;
    }
    char default_id[48];
    if (!client_id) {
        snprintf(default_id, sizeof default_id, "mqlog-replay-%ld", (long)getpid());
        client_id = default_id;
    }

    rc = MQ_EXIT_FAIL;
    rs.store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!rs.store)
        goto out;
    struct mq_catalog_topic topic;
    if (!mq_tool_topic(rs.store, rs.topic, &topic))
        goto out;
    if (partition >= topic.partitions) {
        mq_tool_error("unknown partition %" PRId64 " of topic %s (it has %d: 0..%d)", partition, topic.name,
                      (int)topic.partitions, (int)topic.partitions - 1);
        goto out;
    }
    rs.nparts = partition >= 0 ? 1 : topic.partitions;
    rs.parts = calloc((size_t)rs.nparts, sizeof *rs.parts);
    if (!rs.parts) {
        mq_tool_error("out of memory");
        goto out;
    }
    for (int32_t i = 0; i < rs.nparts; i++) {
        struct mq_rpart *rp = &rs.parts[i];
        rp->id = partition >= 0 ? (int32_t)partition : i;
        if (!(rp->part = mq_tool_part(rs.store, &topic, rp->id)) ||
            !mq_replay_start(&rs, rp, kind, arg, ukind, uarg))
            goto out;
    }
    /* Every partition's first record is decoded before connecting, so that the usual mistakes (no
     * mqtt.topic header, a template giving an invalid topic) are reported without touching the broker. */
    for (int32_t i = 0; i < rs.nparts; i++)
        if (!mq_replay_advance(&rs, &rs.parts[i]) ||
            (rs.parts[i].has_head && !mq_replay_topic(&rs, &rs.parts[i])))
            goto out;

    mq_tool_signals();
    if (!mq_replay_connect(&rs, client_id))
        goto out;
    rs.bar = !quiet && isatty(STDERR_FILENO);
    if (rs.limit >= 0 && rs.total > rs.limit)
        rs.total = rs.limit;
    rs.t0_ms = mq_mono_ms();
    int64_t t0 = mq_mono_us();
    bool ok = mq_replay_run(&rs, rate, speed);
    /* Whatever happened, what was published is acknowledged before the summary (unless the link is gone). */
    if (ok)
        ok = mq_replay_drain(&rs, 1, false);
    double secs = (double)(mq_mono_us() - t0) / 1e6;
    if (ok) {
        mq_replay_bar(&rs, true);
        mosquitto_disconnect(rs.mosq);
        /* Let the DISCONNECT go out; a failure here loses nothing. */
        for (int i = 0; i < 10 && rs.connected; i++)
            if (mosquitto_loop(rs.mosq, 10, 1) != MOSQ_ERR_SUCCESS)
                break;
    }
    if (rs.bar)
        fprintf(stderr, "\r\033[K");
    if (!ok)
        goto out;
    if (mq_tool_stop_requested()) {
        mq_tool_error("interrupted: %" PRId64 " of %" PRId64 " records replayed (%s)", rs.published, rs.total,
                      rs.qos ? "all acknowledged" : "sent at QoS 0, not acknowledged");
        goto out;
    }
    fprintf(stderr, "mqlog: replayed %" PRId64 " record%s of %s to %s in %.3f s (%.0f msg/s), QoS %d, %s\n",
            rs.published, rs.published == 1 ? "" : "s", rs.topic, rs.url, secs,
            secs > 0 ? (double)rs.published / secs : 0.0, rs.qos,
            rs.qos ? "all acknowledged" : "all sent (QoS 0: not acknowledged)");
    rc = MQ_EXIT_OK;
out:
    mq_replay_free(&rs);
    free(shown_url);
    return rc;
}
