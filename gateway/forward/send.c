/*
 * send.c - a forwarder's send path: one round reads each usable partition with the log's cursor and hands
 * its records to librdkafka (the record's own headers plus its edge coordinates), paced by the
 * max_bytes_per_s token bucket, inside a transaction that the round commits (exactly_once); and the
 * delivery reports that advance each partition's delivered prefix (at_least_once), with the rewind that
 * resends from that prefix after a failed delivery.
 *
 * Everything here runs on the forwarder's thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/forward_int.h"
#include "route/placement.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_FWD_TXN_MS      500 /* a transaction gathers records this long while there is a backlog */
#define MQ_FWD_CLOCK_EVERY 64  /* the send loop looks at the clock once per this many records */

/* ---- at_least_once: delivery reports ---- */

static bool mq_fwd_fly_push(struct mq_fwd_part *p, int64_t offset)
{
    if (p->fly_len == p->fly_cap) {
        size_t cap = p->fly_cap ? p->fly_cap * 2 : 1024;
        int64_t *fly = malloc(cap * sizeof *fly);
        uint8_t *done = malloc(cap);
        if (!fly || !done) {
            free(fly);
            free(done);
            return false;
        }
        for (size_t i = 0; i < p->fly_len; i++) {
            fly[i] = p->fly[(p->fly_head + i) % p->fly_cap];
            done[i] = p->fly_done[(p->fly_head + i) % p->fly_cap];
        }
        free(p->fly);
        free(p->fly_done);
        p->fly = fly;
        p->fly_done = done;
        p->fly_cap = cap;
        p->fly_head = 0;
    }
    size_t at = (p->fly_head + p->fly_len) % p->fly_cap;
    p->fly[at] = offset;
    p->fly_done[at] = 0;
    p->fly_len++;
    return true;
}

/* Marks offset delivered and advances acked over the delivered prefix. */
static void mq_fwd_fly_done(struct mq_fwd_part *p, int64_t offset)
{
    size_t lo = 0, hi = p->fly_len; /* the ring holds increasing offsets: binary search */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->fly[(p->fly_head + mid) % p->fly_cap] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->fly_len || p->fly[(p->fly_head + lo) % p->fly_cap] != offset)
        return; /* a report from before a rewind */
    p->fly_done[(p->fly_head + lo) % p->fly_cap] = 1;
    while (p->fly_len > 0 && p->fly_done[p->fly_head]) {
        atomic_store(&p->acked, p->fly[p->fly_head] + 1);
        p->fly_head = (p->fly_head + 1) % p->fly_cap;
        p->fly_len--;
    }
}

int64_t mq_fwd_header_int(rd_kafka_headers_t *h, const char *name)
{
    const void *v;
    size_t n;
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v || n == 0 ||
        n > 20)
        return -1;
    char buf[24];
    memcpy(buf, v, n);
    buf[n] = '\0';
    int64_t x;
    return mq_parse_int64(buf, 0, INT64_MAX, &x) == MQ_OK ? x : -1;
}

/* Runs on the forwarder's thread, from rd_kafka_poll() and the transactional calls. */
void mq_fwd_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct mq_fwd *f = opaque;
    struct mq_fwd_part *p = m->_private;
    if (m->err) {
        snprintf(f->last_error, sizeof f->last_error, "delivery failed: %s",
                 MQ_CLAUSE(rd_kafka_err2str(m->err)));
        if (f->mode == MQ_FWD_AT_LEAST_ONCE)
            f->rewind = true; /* exactly_once: the commit fails and the transaction is aborted */
        return;
    }
    f->deliveries++; /* the time is taken once per round (mq_fwd_note_deliveries()), not per record */
    if (f->mode == MQ_FWD_EXACTLY_ONCE)
        return; /* counted at commit: a delivered record of an aborted transaction is not forwarded */
    atomic_fetch_add(&f->records_sent, 1);
    atomic_fetch_add(&f->bytes_sent, m->len + m->key_len);
    if (p) {
        rd_kafka_headers_t *h = NULL;
        int64_t off = rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR
                          ? mq_fwd_header_int(h, "mqlog.offset")
                          : -1;
        if (off >= 0)
            mq_fwd_fly_done(p, off);
    }
}

/* After a failed delivery: wait until nothing is in flight, then resend everything after the delivered
 * prefix of each partition. */
void mq_fwd_rewind(struct mq_fwd *f)
{
    while (f->rk && rd_kafka_outq_len(f->rk) > 0 && !atomic_load(&f->stop))
        rd_kafka_flush(f->rk, 100);
    for (size_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i]->nlocal; j++) {
            struct mq_fwd_part *p = f->topics[i]->parts[j];
            int64_t acked = atomic_load(&p->acked);
            if (acked >= 0 && p->next != acked) {
                p->next = acked;
                if (p->cur)
                    mq_cursor_seek(p->cur, acked);
            }
            p->fly_head = p->fly_len = 0;
        }
    mq_fwd_outage(f, "delivering", f->last_error);
    f->rewind = false;
}

/* ---- reading and sending ---- */

/* Takes bytes from the max_bytes_per_s bucket, waiting until it holds them. */
static void mq_fwd_pace(struct mq_fwd *f, size_t bytes)
{
    if (f->max_bytes_per_s <= 0)
        return;
    /* Half a second worth: what a commit's pause leaves unsent is sent after it, so the rate holds over a
     * few seconds, while no burst exceeds the cap by more than that. */
    double burst = (double)f->max_bytes_per_s / 2;
    for (;;) {
        int64_t now = mq_mono_us();
        if (f->tokens_at_us == 0)
            f->tokens_at_us = now;
        f->tokens += (double)(now - f->tokens_at_us) * (double)f->max_bytes_per_s / 1e6;
        f->tokens_at_us = now;
        if (f->tokens > burst)
            f->tokens = burst;
        if (f->tokens >= (double)bytes || f->tokens >= burst || atomic_load(&f->stop))
            break;
        int64_t ms = (int64_t)(((double)bytes - f->tokens) * 1000 / (double)f->max_bytes_per_s) + 1;
        rd_kafka_poll(f->rk, (int)(ms > 50 ? 50 : ms));
    }
    f->tokens -= (double)bytes;
}

/* Writes v in decimal at the end of buf[0..size) and returns where it starts (no snprintf per record). */
static const char *mq_fwd_itoa(int64_t v, char *buf, size_t size)
{
    char *p = buf + size;
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    return p;
}

/* The record's own headers, then its coordinates at the edge. *bytes gets the record's size as
 * max_bytes_per_s counts it: key, value, and every header's name and value, before compression. */
static rd_kafka_headers_t *mq_fwd_headers(struct mq_fwd *f, struct mq_fwd_part *p,
                                          const struct mq_record_view *rv, size_t *bytes)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new((size_t)rv->header_count + 4);
    size_t n = (size_t)(rv->key_len > 0 ? rv->key_len : 0) + (size_t)(rv->value_len > 0 ? rv->value_len : 0);
    const uint8_t *cur = rv->headers;
    struct mq_header hd;
    while (mq_header_next(&cur, rv->headers_end, &hd) > 0) {
        rd_kafka_header_add(h, hd.key, hd.key_len, hd.value_len < 0 ? NULL : hd.value,
                            hd.value_len < 0 ? 0 : hd.value_len);
        n += (size_t)hd.key_len + (size_t)(hd.value_len > 0 ? hd.value_len : 0);
    }
    char num[24];
    const char *off = mq_fwd_itoa(rv->offset, num, sizeof num);
    size_t off_len = (size_t)(num + sizeof num - off), id_len = strlen(p->id_text);
    rd_kafka_header_add(h, "mqlog.site", 10, f->site, (ssize_t)f->site_len);
    rd_kafka_header_add(h, "mqlog.topic", 11, p->ft->local, (ssize_t)p->ft->local_len);
    rd_kafka_header_add(h, "mqlog.partition", 15, p->id_text, (ssize_t)id_len);
    rd_kafka_header_add(h, "mqlog.offset", 12, off, (ssize_t)off_len);
    *bytes = n + 10 + f->site_len + 11 + p->ft->local_len + 15 + id_len + 12 + off_len;
    return h;
}

/* Produces one record with headers h. Returns 0 when librdkafka took it (and h with it),
 * RD_KAFKA_RESP_ERR__QUEUE_FULL when its queue is full (try again after polling), another error otherwise
 * (h stays the caller's either way). */
static rd_kafka_resp_err_t mq_fwd_produce(struct mq_fwd *f, struct mq_fwd_part *p,
                                          const struct mq_record_view *rv, rd_kafka_headers_t *h)
{
    struct mq_fwd_topic *ft = p->ft;
    if (!ft->rkt) {
        ft->rkt = rd_kafka_topic_new(f->rk, ft->remote, NULL);
        if (!ft->rkt)
            return rd_kafka_last_error();
    }
    int32_t partition = p->id % ft->nremote;
    if (f->partitioning == MQ_FWD_PART_KEY && rv->key_len >= 0)
        partition = mq_partition_for_key(rv->key, (size_t)rv->key_len, ft->nremote);
    const void *key = rv->key_len < 0 ? NULL : rv->key; /* null stays null, empty stays empty */
    size_t key_len = rv->key_len < 0 ? 0 : (size_t)rv->key_len;
    void *value = rv->value_len < 0 ? NULL : (void *)rv->value;
    size_t value_len = rv->value_len < 0 ? 0 : (size_t)rv->value_len;
    rd_kafka_resp_err_t err =
        rd_kafka_producev(f->rk, RD_KAFKA_V_RKT(ft->rkt), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_TIMESTAMP(rv->timestamp),
                          RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
    return err;
}

/* Opens p's cursor at p->next; a position retention already removed is reported and skipped. */
static enum mq_err mq_fwd_open_cursor(struct mq_fwd *f, struct mq_fwd_part *p)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        enum mq_err err = mq_cursor_open(p->part, p->next, &p->cur);
        if (err != MQ_ERR_RANGE)
            return err;
        int64_t start, end;
        err = mq_part_offsets(p->part, &start, &end);
        if (err != MQ_OK)
            return err;
        if (p->next < start) {
            int64_t lost = start - p->next;
            p->dropped += lost;
            atomic_fetch_add(&f->dropped, (uint64_t)lost);
            MQ_ERROR("forward %s: %s/%" PRId32 ": %" PRId64 " records (offsets %" PRId64 "..%" PRId64
                     ") were deleted from the local log before they were forwarded",
                     f->name, p->ft->local, p->id, lost, p->next, start - 1);
            p->next = start;
        } else if (p->next > end) {
            MQ_ERROR("forward %s: %s/%" PRId32 ": the remote cluster holds offsets up to %" PRId64
                     " but the local log ends at %" PRId64 ": continuing at the local end",
                     f->name, p->ft->local, p->id, p->next - 1, end);
            p->next = end;
        }
        atomic_store(&p->acked, p->next);
    }
    return MQ_ERR_RANGE;
}

/* True when p has records after p->next. */
static bool mq_fwd_has_data(struct mq_fwd_part *p)
{
    if (p->cur && mq_cursor_buffered(p->cur))
        return true;
    int64_t start, end;
    return mq_part_offsets(p->part, &start, &end) == MQ_OK && (end > p->next || start > p->next);
}

/*
 * Sends up to `budget` records of p. Returns how many were sent; sets *halt when the caller must end this
 * round (a full queue that did not drain, a producer error).
 */
static long mq_fwd_send_part(struct mq_fwd *f, struct mq_fwd_part *p, long budget, int64_t deadline,
                             bool *halt)
{
    if (!p->cur) {
        enum mq_err err = mq_fwd_open_cursor(f, p);
        if (err != MQ_OK) {
            MQ_ERROR("forward %s: %s/%" PRId32 ": cannot read offset %" PRId64 ": %s", f->name, p->ft->local,
                     p->id, p->next, mq_strerror(err));
            return 0;
        }
    }
    long sent = 0;
    /* The deadline ends the transaction's round even when every record fits the queue: with
     * max_bytes_per_s the pacing, not a full queue, is what takes the time. The clock is read every
     * MQ_FWD_CLOCK_EVERY records: a read costs as much as a tenth of a record's whole path. */
    while (sent < budget && !atomic_load(&f->stop) &&
           ((sent & (MQ_FWD_CLOCK_EVERY - 1)) != 0 || mq_mono_ms() < deadline)) {
        struct mq_record_view rv;
        int rc = mq_cursor_next(p->cur, &rv);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (-rc == MQ_ERR_RANGE) { /* retention went past us: reopen, which reports the loss */
                mq_cursor_close(p->cur);
                p->cur = NULL;
                break;
            }
            const struct mq_cursor_fault *fault = mq_cursor_fault(p->cur);
            MQ_ERROR("forward %s: %s/%" PRId32 ": %s at %s:%" PRId64 ": not forwarding past offset %" PRId64,
                     f->name, p->ft->local, p->id, fault->what, fault->path, fault->position, p->next);
            break;
        }
        if (f->mode == MQ_FWD_EXACTLY_ONCE && !f->txn_open) {
            rd_kafka_error_t *e = rd_kafka_begin_transaction(f->rk);
            if (e) {
                mq_fwd_txn_error(f, e, "beginning a transaction");
                mq_fwd_reset(f);
                *halt = true;
                return sent;
            }
            f->txn_open = true;
        }
        size_t bytes;
        rd_kafka_headers_t *h = mq_fwd_headers(f, p, &rv, &bytes);
        mq_fwd_pace(f, bytes);
        rd_kafka_resp_err_t err;
        while ((err = mq_fwd_produce(f, p, &rv, h)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(f->rk, 10); /* a delivery report wakes it as soon as the queue has room */
            if (atomic_load(&f->stop) || f->rewind || atomic_load(&f->fatal) || mq_mono_ms() >= deadline)
                break;
        }
        if (err) {
            rd_kafka_headers_destroy(h);
            mq_cursor_seek(p->cur, rv.offset); /* not sent: read it again next round */
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                snprintf(f->last_error, sizeof f->last_error, "produce: %s",
                         MQ_CLAUSE(rd_kafka_err2str(err)));
                if (f->mode == MQ_FWD_AT_LEAST_ONCE)
                    f->rewind = true;
            }
            *halt = true;
            return sent;
        }
        p->next = rv.offset + 1;
        p->in_txn = true;
        f->txn_records++;
        f->txn_bytes +=
            (uint64_t)(rv.key_len > 0 ? rv.key_len : 0) + (uint64_t)(rv.value_len > 0 ? rv.value_len : 0);
        if (f->mode == MQ_FWD_AT_LEAST_ONCE && !mq_fwd_fly_push(p, rv.offset)) {
            f->rewind = true; /* out of memory for the bookkeeping: resend rather than lose track */
            *halt = true;
            return sent;
        }
        sent++;
    }
    return sent;
}

/* One round over every usable partition: sends what is there (a transaction's worth in exactly_once
 * mode, then commits). Returns the number of records sent. */
long mq_fwd_pump(struct mq_fwd *f)
{
    f->pump_start_ms = mq_mono_ms();
    int64_t deadline = f->pump_start_ms + MQ_FWD_TXN_MS;
    long total = 0;
    f->had_data = false;
    bool more = true;
    while (more && !atomic_load(&f->stop) && mq_mono_ms() < deadline && !f->rewind &&
           !atomic_load(&f->fatal)) {
        more = false;
        for (size_t i = 0; i < f->ntopics && f->rk; i++) {
            struct mq_fwd_topic *ft = f->topics[i];
            if (ft->nremote == 0 || !ft->synced)
                continue;
            for (int32_t j = 0; j < ft->nlocal; j++) {
                struct mq_fwd_part *p = ft->parts[j];
                if (!mq_fwd_has_data(p))
                    continue;
                f->had_data = true;
                bool halt = false;
                long n = mq_fwd_send_part(f, p, 10000, deadline, &halt);
                total += n;
                more |= n > 0;
                if (halt) {
                    more = false;
                    i = f->ntopics;
                    break;
                }
            }
        }
        if (f->rk)
            rd_kafka_poll(f->rk, 0);
    }
    if (f->mode == MQ_FWD_EXACTLY_ONCE && f->txn_open && f->rk) {
        if (atomic_load(&f->fatal))
            mq_fwd_reset(f);
        else
            mq_fwd_commit(f);
    }
    return total;
}
