/*
 * fetch.c - Fetch requests (see server_int.h): gathering whole stored batches up to the request's limits,
 * parking a Fetch that found fewer than min_bytes until data becomes durable or its max_wait_ms passes
 * (Kafka's long poll), and the durable wake-up that rechecks the parked ones.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka/proto.h"
#include "kafka/server_int.h"
#include "util/diag.h"

/* ---- Fetch ---- */

static void waiting_add(struct mq_kafka_server *srv, struct req *r)
{
    r->wait_prev = NULL;
    r->wait_next = srv->waiting;
    if (srv->waiting)
        srv->waiting->wait_prev = r;
    srv->waiting = r;
    atomic_fetch_add(&srv->st_waiting, 1);
}

void mq_ksrv_waiting_remove(struct mq_kafka_server *srv, struct req *r)
{
    if (r->wait_prev)
        r->wait_prev->wait_next = r->wait_next;
    else if (srv->waiting == r)
        srv->waiting = r->wait_next;
    if (r->wait_next)
        r->wait_next->wait_prev = r->wait_prev;
    r->wait_prev = r->wait_next = NULL;
    atomic_fetch_sub(&srv->st_waiting, 1);
}

/* Where a (topic, partition) of a Fetch was listed first: i -1 for a free slot of fetch_resolve()'s set. */
struct first_seen {
    int32_t i, j;
};

static size_t entry_hash(struct mq_kafka_str name, int32_t partition)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a over the name, then the partition */
    for (int32_t k = 0; k < name.len; k++)
        h = (h ^ (uint8_t)name.ptr[k]) * 1099511628211u;
    return (size_t)((h ^ (uint32_t)partition) * 1099511628211u);
}

/*
 * Looks up every partition of the fetch once; unknown ones, and those of topics the principal may not
 * read, stay NULL with their error set. An entry that repeats a (topic,
 * partition) listed before shares its lookup and is marked in r->again: no client lists a partition twice,
 * and serving every copy would multiply the work of one request by its length (10,000 copies of a
 * partition, each a catalog lookup and a read up to fetch_max_bytes). A repeat is answered with its offsets
 * and no records.
 */
static bool fetch_resolve(struct mq_kafka_server *srv, struct req *r)
{
    struct mq_kafka_fetch_req *q = &r->fetch;
    r->parts = mq_kafka_arena_calloc(&r->arena, (size_t)q->topic_count, sizeof *r->parts);
    r->again = mq_kafka_arena_calloc(&r->arena, (size_t)q->topic_count, sizeof *r->again);
    if (!r->parts || !r->again)
        return false;
    size_t entries = 0;
    for (int32_t i = 0; i < q->topic_count; i++) {
        struct mq_kafka_fetch_topic *t = &q->topics[i];
        r->parts[i] = mq_kafka_arena_calloc(&r->arena, (size_t)t->part_count, sizeof *r->parts[i]);
        r->again[i] = mq_kafka_arena_calloc(&r->arena, (size_t)t->part_count, sizeof *r->again[i]);
        if (!r->parts[i] || !r->again[i])
            return false;
        entries += (size_t)t->part_count;
    }
    size_t cap = 16;
    while (cap < 2 * entries)
        cap *= 2;
    struct first_seen *seen = malloc(cap * sizeof *seen);
    if (!seen)
        return false;
    for (size_t k = 0; k < cap; k++)
        seen[k].i = -1;
    for (int32_t i = 0; i < q->topic_count; i++) {
        struct mq_kafka_fetch_topic *t = &q->topics[i];
        char name[MQ_TOPIC_NAME_MAX + 1];
        bool valid = mq_ksrv_topic_name(t->name, name);
        /* One check per topic the request lists, before any partition of it is looked up. */
        int16_t denied = valid ? mq_ksrv_topic_denied(r, name, MQ_ACL_READ) : MQ_KC_NONE;
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_kafka_fetch_part *p = &t->parts[j];
            if (denied != MQ_KC_NONE) {
                p->error = denied; /* r->parts[i][j] stays NULL: fetch_try() answers the error */
                continue;
            }
            size_t k = entry_hash(t->name, p->partition) & (cap - 1);
            for (; seen[k].i >= 0; k = (k + 1) & (cap - 1)) {
                const struct mq_kafka_fetch_topic *ft = &q->topics[seen[k].i];
                if (ft->parts[seen[k].j].partition == p->partition && ft->name.len == t->name.len &&
                    (t->name.len <= 0 || memcmp(ft->name.ptr, t->name.ptr, (size_t)t->name.len) == 0))
                    break;
            }
            if (seen[k].i >= 0) {
                r->parts[i][j] = r->parts[seen[k].i][seen[k].j];
                r->again[i][j] = true;
                p->error = q->topics[seen[k].i].parts[seen[k].j].error;
                continue;
            }
            seen[k].i = i;
            seen[k].j = j;
            struct mq_part *part = NULL;
            enum mq_err err = valid ? mq_store_part(srv->store, name, p->partition, &part) : MQ_ERR_NOENT;
            if (err != MQ_OK && err != MQ_ERR_NOENT)
                MQ_WARN("kafka: opening %s/%d: %s", name, p->partition, mq_strerror(err));
            r->parts[i][j] = err == MQ_OK ? part : NULL;
            if (err != MQ_OK)
                p->error = mq_ksrv_code_for(err);
        }
    }
    free(seen);
    r->parts_resolved = true;
    return true;
}

/* The bytes a Fetch response of version v spends on a partition besides its records: partition, error,
 * high watermark, last stable offset, (v5+) log start, aborted transactions, (v11) preferred read replica,
 * records length. They count against the response's byte budget: a request listing thousands of
 * partitions must not build a response far above its max_bytes. */
static int64_t part_overhead(int16_t v)
{
    if (v < 4)
        return 4 + 2 + 8 + 4;
    return 4 + 2 + 8 + 8 + (v >= 5 ? 8 : 0) + 4 + (v >= 11 ? 4 : 0) + 4;
}

/*
 * Gathers the fetch's data. Answers (and returns true) when there is an error to report, at least min_bytes,
 * no wait allowed, or `force` (the wait is over); otherwise releases what it found and returns false.
 */
static bool fetch_try(struct mq_kafka_server *srv, struct req *r, bool force)
{
    struct mq_kafka_fetch_req *q = &r->fetch;
    mq_kafka_fetch_req_release(q);
    if (!r->parts_resolved && !fetch_resolve(srv, r)) {
        mq_ksrv_conn_kill(r->conn, "out of memory");
        return true;
    }
    bool error = false;
    int64_t total = 0; /* record bytes */
    /* The client's max_bytes, within the server's fetch_max_bytes, less what the response spends besides
     * records (its header, every topic name and partition header). */
    int16_t v = r->hdr.api_version;
    int8_t magic = mq_kafka_fetch_magic(v); /* >= 0: convert to messages of this format */
    int64_t budget = q->max_bytes > 0 ? q->max_bytes : 1;
    if (budget > srv->conf.fetch_max_bytes)
        budget = srv->conf.fetch_max_bytes;
    budget -= 4 + 4 + (v >= 1 ? 4 : 0) + (v >= 7 ? 2 + 4 : 0) +
              4; /* size, correlation id, throttle, error, session, topics */
    for (int32_t i = 0; i < q->topic_count; i++)
        budget -= 2 + (q->topics[i].name.len > 0 ? q->topics[i].name.len : 0) + 4 +
                  (int64_t)q->topics[i].part_count * part_overhead(v);
    for (int32_t i = 0; i < q->topic_count; i++) {
        struct mq_kafka_fetch_topic *t = &q->topics[i];
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_kafka_fetch_part *p = &t->parts[j];
            struct mq_part *part = r->parts[i][j];
            if (!part) {
                error = true;
                continue;
            }
            p->error = MQ_KC_NONE;
            /* mq_part_offsets, not mq_part_stats: every fetch and every recheck of a parked fetch comes
             * here, and the stats walk the segment list and read files. */
            int64_t start = 0, end = 0;
            enum mq_err err = mq_part_offsets(part, &start, &end);
            if (err != MQ_OK) {
                p->error = mq_ksrv_code_for(err);
                error = true;
                continue;
            }
            p->high_watermark = p->last_stable_offset = end;
            p->log_start = start;
            if (p->fetch_offset < start || p->fetch_offset > end) {
                p->error = MQ_KC_OFFSET_OUT_OF_RANGE;
                error = true;
                continue;
            }
            if (r->again[i][j])
                continue; /* a repeat: offsets, no records (fetch_resolve) */
            int64_t pbudget = p->max_bytes > 0 ? p->max_bytes : 1;
            if (pbudget > budget - total)
                pbudget = budget - total;
            int64_t off = p->fetch_offset, got = 0;
            while (off < end) {
                /* Only the response's very first batch may exceed the limits (KIP-74). */
                bool may_exceed = total == 0 && got == 0;
                if (pbudget - got <= 0 && !may_exceed)
                    break;
                struct mq_slice s;
                size_t want = pbudget - got > 0 ? (size_t)(pbudget - got) : 1;
                err = mq_part_read(part, off, want, &s);
                if (err != MQ_OK) {
                    if (got == 0) {
                        p->error = mq_ksrv_code_for(err);
                        error = true;
                    }
                    break;
                }
                if (s.len == 0)
                    break;
                if (got + (int64_t)s.len > pbudget && !may_exceed) {
                    mq_slice_release(&s);
                    break;
                }
                int64_t next = s.next_offset;
                size_t len = s.len;
                if (v < 10 && (s.codecs & (1u << MQ_CODEC_ZSTD))) {
                    /* zstd came with Fetch v10 (KIP-110): older clients get Kafka's answer, not bytes they
                     * cannot decode; what the partition gathered before this slice goes out */
                    mq_slice_release(&s);
                    if (got == 0) {
                        p->error = MQ_KC_UNSUPPORTED_COMPRESSION_TYPE;
                        error = true;
                    }
                    break;
                }
                if (magic >= 0) {
                    /* An old client: the batches as messages (downconv.h), counted at their stored size. */
                    err = mq_kafka_downconvert_slice(&s, p->fetch_offset, magic, &p->msgs);
                    mq_slice_release(&s);
                    if (err == MQ_ERR_NOMEM) {
                        mq_ksrv_conn_kill(r->conn, "out of memory");
                        return true;
                    }
                    if (err != MQ_OK) {
                        if (got == 0) {
                            p->error = err == MQ_ERR_INVAL ? MQ_KC_UNSUPPORTED_COMPRESSION_TYPE
                                                           : mq_ksrv_code_for(err);
                            error = true;
                        }
                        break;
                    }
                } else if (mq_kafka_fetch_part_add(&r->arena, p, &s) != MQ_OK) {
                    mq_ksrv_conn_kill(r->conn, "out of memory");
                    return true;
                }
                got += (int64_t)len;
                off = next;
            }
            total += got;
        }
    }
    if (!(force || error || total >= q->min_bytes || q->max_wait_ms <= 0)) {
        mq_kafka_fetch_req_release(q);
        return false;
    }
    q->error = MQ_KC_NONE;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_fetch_resp_encode(&it->out, r->hdr.api_version, q);
    mq_kafka_fetch_req_release(q);
    mq_ksrv_resp_end(r, it);
    return true;
}

void mq_ksrv_handle_fetch(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    enum mq_err err = mq_kafka_fetch_req_decode(rd, r->hdr.api_version, &r->arena, &r->fetch);
    if (err == MQ_ERR_RANGE && r->hdr.api_version >= 7) {
        /* Too many partitions: v7+ has a top-level error code to refuse the request with, as Kafka does. */
        mq_ksrv_too_large(r, true);
        r->fetch.error = MQ_KC_INVALID_REQUEST;
        r->fetch.topic_count = 0;
        struct out_item *it = mq_ksrv_resp_begin(r);
        if (it)
            mq_kafka_fetch_resp_encode(&it->out, r->hdr.api_version, &r->fetch);
        mq_ksrv_resp_end(r, it);
        return;
    }
    if (!mq_ksrv_decoded(r, err))
        return;
    if (fetch_try(srv, r, false))
        return;
    r->state = REQ_FETCH_WAIT;
    r->deadline = now_ms() + r->fetch.max_wait_ms;
    r->conn->cur = r;
    waiting_add(srv, r);
}

/* A parked fetch was answered: the connection may go on with its next request. */
static void fetch_finish(struct mq_kafka_server *srv, struct req *r)
{
    struct conn *c = r->conn;
    mq_ksrv_waiting_remove(srv, r);
    c->cur = NULL;
    mq_ksrv_req_free(r);
    mq_ksrv_conn_set_ready(c);
}

/* Re-examines parked fetches: all of them (new data) or only those past their deadline. */
static void fetch_recheck(struct mq_kafka_server *srv, int64_t now, bool all)
{
    struct req *r = srv->waiting;
    while (r) {
        struct req *next = r->wait_next;
        bool due = now >= r->deadline;
        if ((all || due) && !r->conn->dead && fetch_try(srv, r, due))
            fetch_finish(srv, r);
        r = next;
    }
}

void mq_ksrv_fetch_tick(struct mq_kafka_server *srv, int64_t now, bool woken)
{
    bool all = false;
    if (woken && atomic_exchange(&srv->data_ready, false))
        all = true;
    if (srv->read_mode && now - srv->last_poll >= srv->conf.fetch_poll_ms) {
        srv->last_poll = now;
        all = true;
    }
    if (srv->waiting)
        fetch_recheck(srv, now, all);
}

int64_t mq_ksrv_fetch_next_due(const struct mq_kafka_server *srv)
{
    int64_t next = INT64_MAX;
    for (const struct req *r = srv->waiting; r; r = r->wait_next)
        if (r->deadline < next)
            next = r->deadline;
    if (srv->read_mode && srv->waiting && srv->last_poll + srv->conf.fetch_poll_ms < next)
        next = srv->last_poll + srv->conf.fetch_poll_ms;
    return next;
}

/* ---- the durable wake-up ---- */

/* Runs on the thread that made records durable. mq_kafka_server_stop() removes the callback before it frees
 * the server, and mq_log_set_durable_cb() returns only once no call of it is running (log.h), so srv is
 * always alive here. */
void mq_ksrv_on_durable(void *opaque, struct mq_part *part, int64_t durable_end)
{
    (void)part;
    (void)durable_end;
    mq_kafka_server_notify(opaque);
}

void mq_kafka_server_notify(struct mq_kafka_server *srv)
{
    if (!atomic_exchange(&srv->data_ready, true)) {
        uint64_t one = 1;
        ssize_t w = write(srv->wake_fd, &one, sizeof one);
        (void)w; /* a full eventfd counter already means "wake up" */
    }
}
