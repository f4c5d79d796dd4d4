/*
 * server.c - the Kafka endpoint's event loop, connections and request handlers (see server.h).
 *
 * Layout: one epoll instance watches the listening socket, an eventfd (woken by other threads: new durable
 * records, stop) and every connection. A connection reads into its input buffer; once a whole request is
 * there and no earlier request of that connection is still being served, the request is copied out and
 * handled. Handlers answer at once or park the request (a Fetch waiting for data, a JoinGroup or SyncGroup
 * waiting for other members); a parked request blocks the connection's later requests, as in Kafka.
 * Answers are queued on the connection as struct mq_kafka_out (bytes plus segment file ranges) and written
 * with send() and sendfile() as the socket accepts them.
 *
 * Reentrancy: the group coordinator may deliver a response for any connection while handling another's
 * request. Its callbacks only queue the response, mark the request done and put the connection on the
 * ready list; the loop frees finished requests and handles further input afterwards. Connections are
 * closed only at the end of a loop iteration, so no callback ever sees a freed connection.
 */
#include "kafka/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kafka/proto.h"
#include "kafka/wire.h"
#include "log/batch.h"
#include "util/diag.h"
#include "util/parse.h"

#define IN_CHUNK           (64 * 1024) /* read ahead this much input beyond the current request */
#define OUT_ITEMS_MAX      8           /* stop handling requests while this many responses are unsent */
#define METADATA_MAX_BYTES 4096        /* Kafka's offset.metadata.max.bytes */
#define TOPIC_NAME_MAX     249

struct out_item {
    struct out_item *next;
    struct mq_kafka_out out;
    size_t piece; /* 2k: the bytes before splice k (k == n_splices: after the last); 2k+1: splice k */
    size_t off;   /* bytes of that piece already sent */
};

enum req_state { REQ_NEW, REQ_FETCH_WAIT, REQ_GROUP_WAIT };

struct conn;

struct req {
    struct conn *conn;
    uint8_t *body; /* the request after its size prefix; decoded views point into it */
    size_t len;
    struct mq_kafka_req_hdr hdr;
    struct mq_kafka_arena arena;
    enum req_state state;
    bool done;        /* answered (by a group callback); the loop frees it */
    int64_t deadline; /* a parked Fetch is answered by then with whatever there is */
    struct mq_kafka_fetch_req fetch;
    struct mq_part ***parts; /* [topic][partition], resolved once, NULL where unknown */
    bool parts_resolved;
    struct req *wait_prev, *wait_next; /* the server's list of parked fetches */
};

struct conn {
    struct conn *prev, *next;
    struct mq_kafka_server *srv;
    int fd;
    uint32_t events; /* the epoll interest set registered now */
    bool want_out;   /* the socket refused bytes: wait for EPOLLOUT */
    uint8_t *in;
    size_t in_len, in_cap;
    struct req *cur; /* the request being served; later ones wait in `in` */
    struct out_item *out_head, *out_tail;
    size_t out_items;
    bool dead;
    bool ready;
    struct conn *ready_next;
    int64_t last_active; /* mono ms of the last byte received or sent */
    char peer[64];
};

struct mq_kafka_server {
    struct mq_store *store;
    struct mq_log *log;
    struct mq_catalog *cat;
    struct mq_kafka_server_conf conf;
    char *listen_host, *advertised_host, *cluster_id;
    int listen_fd, epoll_fd, wake_fd;
    int port;
    bool read_mode;
    bool durable_cb_set;
    struct mq_kafka_server *live_next; /* in live_servers while the durable callback may name it */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_bool data_ready;
    struct conn *conns;
    struct conn *ready;
    struct req *waiting;
    int64_t last_poll;
    int64_t last_idle_sweep;
    struct mq_kafka_groups *groups;
    _Atomic uint64_t st_accepted, st_open, st_requests, st_protocol_errors, st_unsupported, st_waiting;
};

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
    return mq_mono_ms();
}

static void mq_ksrv_conn_set_ready(struct conn *c)
{
    if (c->ready || c->dead)
        return;
    c->ready = true;
    c->ready_next = c->srv->ready;
    c->srv->ready = c;
}

static void mq_ksrv_conn_kill(struct conn *c, const char *why)
{
    if (!c->dead && why)
        MQ_INFO("kafka: closing connection from %s: %s", c->peer, why);
    c->dead = true;
}

static void mq_ksrv_protocol_error(struct conn *c, const char *why)
{
    atomic_fetch_add(&c->srv->st_protocol_errors, 1);
    if (!c->dead)
        MQ_WARN("kafka: closing connection from %s: %s", c->peer, why);
    c->dead = true;
}

static void conn_update_events(struct conn *c)
{
    if (c->dead)
        return;
    size_t limit = IN_CHUNK;
    size_t frame;
    if (mq_kafka_frame_size(c->in, c->in_len, c->srv->conf.max_request_bytes, &frame) == MQ_OK &&
        frame > limit)
        limit = frame;
    uint32_t ev = 0;
    if (c->in_len < limit)
        ev |= EPOLLIN;
    if (c->want_out)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_MOD, c->fd, &e) != 0) {
        mq_ksrv_conn_kill(c, strerror(errno));
        return;
    }
    c->events = ev;
}

static void mq_ksrv_req_free(struct req *r)
{
    if (!r)
        return;
    mq_kafka_fetch_req_release(&r->fetch);
    mq_kafka_arena_free(&r->arena);
    free(r->body);
    free(r);
}

/* ---- responses ---- */

static struct out_item *mq_ksrv_resp_begin(struct req *r)
{
    struct out_item *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    mq_kafka_out_init(&it->out);
    mq_kafka_out_begin(&it->out, r->hdr.correlation_id,
                       mq_kafka_resp_hdr_version(r->hdr.api_key, r->hdr.api_version));
    return it;
}

/* Queues the response (taking it), or kills the connection when it could not be built. */
static void mq_ksrv_resp_end(struct req *r, struct out_item *it)
{
    struct conn *c = r->conn;
    atomic_fetch_add(&c->srv->st_requests, 1);
    if (!it || mq_kafka_out_end(&it->out) != MQ_OK) {
        if (it) {
            mq_kafka_out_free(&it->out);
            free(it);
        }
        mq_ksrv_conn_kill(c, "could not build a response (out of memory)");
        return;
    }
    if (c->out_tail)
        c->out_tail->next = it;
    else
        c->out_head = it;
    c->out_tail = it;
    c->out_items++;
}

/* Writes queued responses until done or the socket is full. */
static void conn_flush(struct conn *c)
{
    while (!c->dead && c->out_head) {
        struct out_item *it = c->out_head;
        struct mq_kafka_out *o = &it->out;
        size_t n = o->n_splices;
        if (it->piece % 2 == 0) {
            size_t k = it->piece / 2;
            size_t from = k == 0 ? 0 : o->splices[k - 1].at;
            size_t to = k < n ? o->splices[k].at : o->wr.len;
            if (from + it->off < to) {
                int flags = MSG_NOSIGNAL | (k < n ? MSG_MORE : 0);
                ssize_t w = send(c->fd, o->wr.buf + from + it->off, to - from - it->off, flags);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        c->want_out = true;
                        return;
                    }
                    if (errno == EINTR)
                        continue;
                    mq_ksrv_conn_kill(c, strerror(errno));
                    return;
                }
                it->off += (size_t)w;
                c->last_active = now_ms();
                if (from + it->off < to)
                    continue;
            }
        } else {
            struct mq_slice *s = &o->splices[it->piece / 2].slice;
            if (it->off < s->len) {
                off_t pos = (off_t)(s->pos + (int64_t)it->off);
                size_t want = s->len - it->off;
                if (want > (1u << 30))
                    want = 1u << 30;
                ssize_t w = sendfile(c->fd, s->fd, &pos, want);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        c->want_out = true;
                        return;
                    }
                    if (errno == EINTR)
                        continue;
                    mq_ksrv_conn_kill(c, strerror(errno));
                    return;
                }
                if (w == 0) {
                    /* The file is shorter than the batches it held: the response can no longer be
                     * completed, and a short one would desynchronise the client. */
                    mq_ksrv_conn_kill(c, "segment file shrank while sending");
                    return;
                }
                it->off += (size_t)w;
                c->last_active = now_ms();
                if (it->off < s->len)
                    continue;
            }
        }
        it->piece++;
        it->off = 0;
        if (it->piece > 2 * n) {
            c->out_head = it->next;
            if (!c->out_head)
                c->out_tail = NULL;
            c->out_items--;
            mq_kafka_out_free(&it->out);
            free(it);
        }
    }
    c->want_out = false;
}

/* ---- handlers ---- */

/* Copies a topic name view into buf (TOPIC_NAME_MAX + 1 bytes); false when it cannot be a topic. */
static bool mq_ksrv_topic_name(struct mq_kafka_str s, char *buf)
{
    return mq_kafka_str_copy(s, buf, TOPIC_NAME_MAX + 1) && mq_topic_name_valid(buf);
}

static int16_t mq_ksrv_code_for(enum mq_err err)
{
    switch (err) {
    case MQ_OK:
        return MQ_KC_NONE;
    case MQ_ERR_NOENT:
        return MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
    case MQ_ERR_RANGE:
        return MQ_KC_OFFSET_OUT_OF_RANGE;
    case MQ_ERR_IO:
    case MQ_ERR_CORRUPT:
        return MQ_KC_KAFKA_STORAGE_ERROR;
    default:
        return MQ_KC_UNKNOWN_SERVER_ERROR;
    }
}

static void handle_api_versions(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_api_versions_req q;
    if (mq_kafka_api_versions_req_decode(rd, r->hdr.api_version, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed ApiVersions request");
        return;
    }
    q.error = MQ_KC_NONE;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_api_versions_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_metadata(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_metadata_req q;
    if (mq_kafka_metadata_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed Metadata request");
        return;
    }
    struct mq_catalog_topic *all = NULL;
    if (q.topic_count < 0) {
        size_t n = 0;
        enum mq_err err = mq_store_topic_list(srv->store, &all, &n);
        if (err != MQ_OK) {
            MQ_WARN("kafka: listing topics: %s", mq_strerror(err));
            n = 0;
        }
        q.topics = mq_kafka_arena_calloc(&r->arena, n, sizeof *q.topics);
        if (!q.topics) {
            free(all);
            mq_ksrv_conn_kill(r->conn, "out of memory");
            return;
        }
        q.topic_count = (int32_t)n;
        for (size_t i = 0; i < n; i++) {
            q.topics[i].name.ptr = all[i].name;
            q.topics[i].name.len = (int32_t)strlen(all[i].name);
            q.topics[i].partitions = all[i].partitions;
        }
    } else {
        for (int32_t i = 0; i < q.topic_count; i++) {
            char name[TOPIC_NAME_MAX + 1];
            struct mq_catalog_topic t;
            if (!mq_ksrv_topic_name(q.topics[i].name, name)) {
                q.topics[i].error = MQ_KC_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            enum mq_err err = mq_store_topic_get(srv->store, name, &t);
            q.topics[i].error = err == MQ_OK ? MQ_KC_NONE : mq_ksrv_code_for(err);
            q.topics[i].partitions = err == MQ_OK ? t.partitions : 0;
        }
    }
    q.node_id = srv->conf.node_id;
    q.host = srv->advertised_host;
    q.port = srv->conf.advertised_port;
    q.cluster_id = srv->cluster_id;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_metadata_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
    free(all);
}

/* The timestamp of the record at `offset` (for ListOffsets by time), or fallback when it cannot be read. */
static int64_t record_timestamp(struct mq_part *part, int64_t offset, int64_t fallback)
{
    struct mq_slice s;
    if (mq_part_read(part, offset, 1, &s) != MQ_OK || s.len < MQ_BATCH_HEADER_SIZE) {
        mq_slice_release(&s);
        return fallback;
    }
    int64_t ts = fallback;
    uint8_t hdr[MQ_BATCH_HEADER_SIZE];
    struct mq_batch_info bi;
    if (pread(s.fd, hdr, sizeof hdr, s.pos) == (ssize_t)sizeof hdr &&
        mq_batch_parse_header(hdr, sizeof hdr, &bi) == MQ_OK && mq_batch_size(&bi) <= s.len) {
        if (bi.attributes & 0x08) {
            ts = bi.max_timestamp; /* LogAppendTime: every record has the batch's time */
        } else if (!(bi.attributes & 0x07)) {
            uint8_t *b = malloc(mq_batch_size(&bi));
            if (b && pread(s.fd, b, mq_batch_size(&bi), s.pos) == (ssize_t)mq_batch_size(&bi)) {
                struct mq_record_iter iter;
                struct mq_record_view rv;
                if (mq_record_iter_init(&iter, b, &bi) == MQ_OK)
                    while (mq_record_next(&iter, &rv) == 1)
                        if (rv.offset >= offset) {
                            ts = rv.timestamp;
                            break;
                        }
            }
            free(b);
        }
    }
    mq_slice_release(&s);
    return ts;
}

static void handle_list_offsets(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_list_offsets_req q;
    if (mq_kafka_list_offsets_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed ListOffsets request");
        return;
    }
    for (int32_t i = 0; i < q.topic_count; i++) {
        struct mq_kafka_lo_topic *t = &q.topics[i];
        char name[TOPIC_NAME_MAX + 1];
        bool valid = mq_ksrv_topic_name(t->name, name);
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_kafka_lo_part *p = &t->parts[j];
            struct mq_part *part = NULL;
            enum mq_err err = valid ? mq_store_part(srv->store, name, p->partition, &part) : MQ_ERR_NOENT;
            int64_t start = 0, end = 0;
            if (err == MQ_OK)
                err = mq_part_offsets(part, &start, &end);
            if (err != MQ_OK) {
                p->error = mq_ksrv_code_for(err);
                continue;
            }
            p->out_timestamp = -1;
            if (p->timestamp == MQ_KAFKA_TS_LATEST) {
                p->offset = end;
            } else if (p->timestamp == MQ_KAFKA_TS_EARLIEST) {
                p->offset = start;
            } else if (p->timestamp < 0) {
                /* -3 (max timestamp) and others belong to versions not served. */
                p->error = MQ_KC_INVALID_REQUEST;
            } else {
                int64_t off = -1;
                err = mq_part_offset_for_time(part, p->timestamp, &off);
                if (err != MQ_OK) {
                    p->error = mq_ksrv_code_for(err);
                } else if (off < 0 || off >= end) {
                    p->offset = -1; /* no record that new: clients read this as "the end" */
                } else {
                    p->offset = off;
                    p->out_timestamp = record_timestamp(part, off, p->timestamp);
                }
            }
        }
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_list_offsets_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

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

static void mq_ksrv_waiting_remove(struct mq_kafka_server *srv, struct req *r)
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

/* Looks up every partition of the fetch once; unknown ones stay NULL. */
static bool fetch_resolve(struct mq_kafka_server *srv, struct req *r)
{
    struct mq_kafka_fetch_req *q = &r->fetch;
    r->parts = mq_kafka_arena_calloc(&r->arena, (size_t)q->topic_count, sizeof *r->parts);
    if (!r->parts)
        return false;
    for (int32_t i = 0; i < q->topic_count; i++) {
        struct mq_kafka_fetch_topic *t = &q->topics[i];
        r->parts[i] = mq_kafka_arena_calloc(&r->arena, (size_t)t->part_count, sizeof *r->parts[i]);
        if (!r->parts[i])
            return false;
        char name[TOPIC_NAME_MAX + 1];
        bool valid = mq_ksrv_topic_name(t->name, name);
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_part *part = NULL;
            enum mq_err err =
                valid ? mq_store_part(srv->store, name, t->parts[j].partition, &part) : MQ_ERR_NOENT;
            if (err != MQ_OK && err != MQ_ERR_NOENT)
                MQ_WARN("kafka: opening %s/%d: %s", name, t->parts[j].partition, mq_strerror(err));
            r->parts[i][j] = err == MQ_OK ? part : NULL;
            if (err != MQ_OK)
                t->parts[j].error = mq_ksrv_code_for(err);
        }
    }
    r->parts_resolved = true;
    return true;
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
    int64_t total = 0;
    int64_t budget = q->max_bytes > 0 ? q->max_bytes : 1;
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
                if (mq_kafka_fetch_part_add(&r->arena, p, &s) != MQ_OK) {
                    mq_ksrv_conn_kill(r->conn, "out of memory");
                    return true;
                }
                got += (int64_t)s.len;
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

static void mq_ksrv_handle_fetch(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    if (mq_kafka_fetch_req_decode(rd, r->hdr.api_version, &r->arena, &r->fetch) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed Fetch request");
        return;
    }
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
static void mq_ksrv_fetch_recheck(struct mq_kafka_server *srv, int64_t now, bool all)
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

/* ---- groups ---- */

static void mq_ksrv_on_join(void *opaque, void *waiter, const struct mq_kafka_join_group_resp *resp)
{
    (void)opaque;
    struct req *r = waiter;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_join_group_resp_encode(&it->out.wr, r->hdr.api_version, resp);
    mq_ksrv_resp_end(r, it);
    r->done = true;
    mq_ksrv_conn_set_ready(r->conn);
}

static void mq_ksrv_on_sync(void *opaque, void *waiter, int16_t error, struct mq_kafka_str assignment)
{
    (void)opaque;
    struct req *r = waiter;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_sync_group_resp_encode(&it->out.wr, r->hdr.api_version, error, assignment);
    mq_ksrv_resp_end(r, it);
    r->done = true;
    mq_ksrv_conn_set_ready(r->conn);
}

static void handle_find_coordinator(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_find_coordinator_req q;
    if (mq_kafka_find_coordinator_req_decode(rd, r->hdr.api_version, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed FindCoordinator request");
        return;
    }
    if (q.key_type == 0) {
        q.error = MQ_KC_NONE;
        q.node_id = srv->conf.node_id;
        q.host = srv->advertised_host;
        q.port = srv->conf.advertised_port;
    } else {
        /* Transactions need a transaction coordinator, which a read-only endpoint does not have. */
        q.error = MQ_KC_COORDINATOR_NOT_AVAILABLE;
        q.error_message = "mqlog has no transaction coordinator";
        q.node_id = -1;
        q.host = "";
        q.port = -1;
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_find_coordinator_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_join_group(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_join_group_req q;
    if (mq_kafka_join_group_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed JoinGroup request");
        return;
    }
    /* Park first: the answer may come back from inside the call. */
    r->state = REQ_GROUP_WAIT;
    r->conn->cur = r;
    mq_kafka_groups_join(srv->groups, now_ms(), &q, r->hdr.client_id, r);
}

static void handle_sync_group(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_sync_group_req q;
    if (mq_kafka_sync_group_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed SyncGroup request");
        return;
    }
    r->state = REQ_GROUP_WAIT;
    r->conn->cur = r;
    mq_kafka_groups_sync(srv->groups, now_ms(), &q, r);
}

static void handle_heartbeat(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_heartbeat_req q;
    if (mq_kafka_heartbeat_req_decode(rd, r->hdr.api_version, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed Heartbeat request");
        return;
    }
    q.error =
        mq_kafka_groups_heartbeat(r->conn->srv->groups, now_ms(), q.group_id, q.generation_id, q.member_id);
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_heartbeat_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_leave_group(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_leave_group_req q;
    if (mq_kafka_leave_group_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed LeaveGroup request");
        return;
    }
    q.error = MQ_KC_NONE;
    for (int32_t i = 0; i < q.member_count; i++)
        q.members[i].error =
            mq_kafka_groups_leave(r->conn->srv->groups, now_ms(), q.group_id, q.members[i].member_id);
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_leave_group_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

/* ---- offsets ---- */

static int16_t catalog_code(enum mq_err err)
{
    switch (err) {
    case MQ_OK:
        return MQ_KC_NONE;
    case MQ_ERR_NOENT:
        return MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
    case MQ_ERR_INVAL:
        return MQ_KC_INVALID_REQUEST;
    default:
        return MQ_KC_COORDINATOR_NOT_AVAILABLE; /* retriable: the client tries again */
    }
}

/* A NUL-terminated copy of a view in the arena (NULL for a null view or when out of memory). */
static char *arena_cstr(struct mq_kafka_arena *a, struct mq_kafka_str s)
{
    if (s.len < 0)
        return NULL;
    char *d = mq_kafka_arena_calloc(a, (size_t)s.len + 1, 1);
    if (d && s.len > 0)
        memcpy(d, s.ptr, (size_t)s.len);
    return d;
}

static void handle_offset_commit(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_offset_commit_req q;
    if (mq_kafka_offset_commit_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed OffsetCommit request");
        return;
    }
    char group[256];
    int16_t gerr = MQ_KC_NONE;
    if (q.group_id.len <= 0 || !mq_kafka_str_copy(q.group_id, group, sizeof group))
        gerr = MQ_KC_INVALID_GROUP_ID;
    else
        gerr = mq_kafka_groups_check_commit(srv->groups, q.group_id, q.generation_id, q.member_id);

    size_t n = 0;
    for (int32_t i = 0; i < q.topic_count; i++)
        n += (size_t)q.topics[i].part_count;
    struct mq_offset_commit *commits = mq_kafka_arena_calloc(&r->arena, n, sizeof *commits);
    struct mq_kafka_oc_part **back = mq_kafka_arena_calloc(&r->arena, n, sizeof *back);
    if (!commits || !back) {
        mq_ksrv_conn_kill(r->conn, "out of memory");
        return;
    }
    size_t m = 0;
    for (int32_t i = 0; i < q.topic_count; i++) {
        struct mq_kafka_oc_topic *t = &q.topics[i];
        char name[TOPIC_NAME_MAX + 1];
        bool valid = mq_ksrv_topic_name(t->name, name);
        char *cname = valid ? arena_cstr(&r->arena, t->name) : NULL;
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_kafka_oc_part *p = &t->parts[j];
            if (gerr != MQ_KC_NONE) {
                p->error = gerr;
            } else if (!valid || !cname) {
                p->error = MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (p->metadata.len > METADATA_MAX_BYTES ||
                       (p->metadata.len > 0 && memchr(p->metadata.ptr, '\0', (size_t)p->metadata.len))) {
                p->error = MQ_KC_OFFSET_METADATA_TOO_LARGE;
            } else {
                commits[m].topic = cname;
                commits[m].partition = p->partition;
                commits[m].offset = p->offset;
                commits[m].metadata = arena_cstr(&r->arena, p->metadata);
                back[m++] = p;
            }
        }
    }
    if (m > 0) {
        enum mq_err err = mq_catalog_offset_commit_many(srv->cat, group, commits, m);
        if (err != MQ_OK)
            MQ_WARN("kafka: committing offsets of group %s: %s (%s)", group, mq_strerror(err),
                    mq_catalog_errmsg(srv->cat));
        for (size_t k = 0; k < m; k++)
            back[k]->error = catalog_code(err != MQ_OK ? err : commits[k].err);
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_offset_commit_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

/* Fills one partition of an OffsetFetch from the catalog. */
static void offset_fetch_one(struct mq_kafka_server *srv, struct req *r, const char *group, const char *topic,
                             struct mq_kafka_of_part *p)
{
    int64_t off = -1;
    char *md = NULL;
    enum mq_err err =
        topic ? mq_catalog_offset_fetch(srv->cat, group, topic, p->partition, &off, &md, NULL) : MQ_ERR_NOENT;
    p->leader_epoch = -1;
    if (err == MQ_OK) {
        p->offset = off;
        struct mq_kafka_str v = {md, md ? (int32_t)strlen(md) : 0};
        char *copy = arena_cstr(&r->arena, v);
        p->metadata.ptr = copy ? copy : "";
        p->metadata.len = copy ? v.len : 0;
        p->error = MQ_KC_NONE;
    } else {
        /* Nothing committed (or an unknown topic): offset -1, as Kafka answers. */
        p->offset = -1;
        p->metadata.ptr = "";
        p->metadata.len = 0;
        p->error = err == MQ_ERR_NOENT ? MQ_KC_NONE : catalog_code(err);
    }
    free(md);
}

static void handle_offset_fetch(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_offset_fetch_req q;
    if (mq_kafka_offset_fetch_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed OffsetFetch request");
        return;
    }
    char group[256];
    q.error = MQ_KC_NONE;
    if (q.group_id.len <= 0 || !mq_kafka_str_copy(q.group_id, group, sizeof group)) {
        q.error = MQ_KC_INVALID_GROUP_ID;
        if (q.topic_count < 0)
            q.topic_count = 0;
    } else if (q.topic_count < 0) {
        /* Every partition the group committed, grouped by topic (the catalog lists them in order). */
        struct mq_group_offset *offs = NULL;
        size_t n = 0;
        enum mq_err err = mq_catalog_offset_list(srv->cat, group, &offs, &n);
        q.topic_count = 0;
        if (err != MQ_OK) {
            q.error = catalog_code(err);
            n = 0;
        }
        q.topics = mq_kafka_arena_calloc(&r->arena, n, sizeof *q.topics);
        for (size_t k = 0; q.topics && k < n;) {
            size_t e = k;
            while (e < n && strcmp(offs[e].topic, offs[k].topic) == 0)
                e++;
            struct mq_kafka_of_topic *t = &q.topics[q.topic_count++];
            struct mq_kafka_str tn = {offs[k].topic, (int32_t)strlen(offs[k].topic)};
            char *name = arena_cstr(&r->arena, tn);
            t->name.ptr = name ? name : "";
            t->name.len = name ? tn.len : 0;
            t->parts = mq_kafka_arena_calloc(&r->arena, e - k, sizeof *t->parts);
            t->part_count = t->parts ? (int32_t)(e - k) : 0;
            for (int32_t j = 0; j < t->part_count; j++) {
                const struct mq_group_offset *o = &offs[k + (size_t)j];
                struct mq_kafka_of_part *p = &t->parts[j];
                p->partition = o->partition;
                p->offset = o->offset;
                p->leader_epoch = -1;
                struct mq_kafka_str mv = {o->metadata, o->metadata ? (int32_t)strlen(o->metadata) : 0};
                char *md = arena_cstr(&r->arena, mv);
                p->metadata.ptr = md ? md : "";
                p->metadata.len = md ? mv.len : 0;
            }
            k = e;
        }
        mq_catalog_offsets_free(offs, n);
    } else {
        for (int32_t i = 0; i < q.topic_count; i++) {
            struct mq_kafka_of_topic *t = &q.topics[i];
            char name[TOPIC_NAME_MAX + 1];
            bool valid = mq_ksrv_topic_name(t->name, name);
            for (int32_t j = 0; j < t->part_count; j++)
                offset_fetch_one(srv, r, group, valid ? name : NULL, &t->parts[j]);
        }
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_offset_fetch_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_produce(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_produce_req q;
    if (mq_kafka_produce_req_decode(rd, r->hdr.api_version, &r->arena, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed Produce request");
        return;
    }
    int16_t code = q.transactional_id.len >= 0 ? MQ_KC_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                                               : MQ_KC_TOPIC_AUTHORIZATION_FAILED;
    for (int32_t i = 0; i < q.topic_count; i++)
        for (int32_t j = 0; j < q.topics[i].part_count; j++)
            q.topics[i].parts[j].error = code;
    if (q.acks == 0) {
        /* acks=0: the producer reads no response at all. */
        atomic_fetch_add(&r->conn->srv->st_requests, 1);
        return;
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_produce_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_init_producer_id(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_init_producer_id_req q;
    if (mq_kafka_init_producer_id_req_decode(rd, r->hdr.api_version, &q) != MQ_OK) {
        mq_ksrv_protocol_error(r->conn, "malformed InitProducerId request");
        return;
    }
    /* Idempotent producers need cluster-level write rights, transactional ones their transactional id's. */
    q.error = q.transactional_id.len >= 0 ? MQ_KC_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                                          : MQ_KC_CLUSTER_AUTHORIZATION_FAILED;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_init_producer_id_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

/* Answers a request whose API or version is not served. */
static void handle_unsupported(struct req *r)
{
    atomic_fetch_add(&r->conn->srv->st_unsupported, 1);
    MQ_DEBUG("kafka: %s: unsupported %s (key %d) v%d", r->conn->peer, mq_kafka_api_name(r->hdr.api_key),
             r->hdr.api_key, r->hdr.api_version);
    struct out_item *it = calloc(1, sizeof *it);
    if (it) {
        mq_kafka_out_init(&it->out);
        mq_kafka_out_begin(&it->out, r->hdr.correlation_id, 0);
        if (r->hdr.api_key == MQ_KAPI_API_VERSIONS) {
            /* Kafka's rule: a v0 response the client can always parse, listing what is served. */
            struct mq_kafka_api_versions_req q = {.error = MQ_KC_UNSUPPORTED_VERSION};
            mq_kafka_api_versions_resp_encode(&it->out.wr, 0, &q);
        } else {
            mq_kafka_error_resp_encode(&it->out.wr, MQ_KC_UNSUPPORTED_VERSION);
        }
    }
    mq_ksrv_resp_end(r, it);
}

/* Handles one whole request; takes body. */
static void mq_ksrv_handle_request(struct conn *c, uint8_t *body, size_t len)
{
    struct req *r = calloc(1, sizeof *r);
    if (!r) {
        free(body);
        mq_ksrv_conn_kill(c, "out of memory");
        return;
    }
    r->conn = c;
    r->body = body;
    r->len = len;
    mq_kafka_arena_init(&r->arena);
    if (mq_kafka_req_hdr_peek(body, len, &r->hdr) != MQ_OK) {
        mq_ksrv_protocol_error(c, "truncated request header");
        mq_ksrv_req_free(r);
        return;
    }
    if (!mq_kafka_api_supported(r->hdr.api_key, r->hdr.api_version)) {
        handle_unsupported(r);
        mq_ksrv_req_free(r);
        return;
    }
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, body, len);
    int hv = mq_kafka_req_hdr_version(r->hdr.api_key, r->hdr.api_version);
    if (mq_kafka_req_hdr_parse(&rd, hv, &r->hdr) != MQ_OK) {
        mq_ksrv_protocol_error(c, "malformed request header");
        mq_ksrv_req_free(r);
        return;
    }
    MQ_DEBUG("kafka: %s: %s v%d correlation %d", c->peer, mq_kafka_api_name(r->hdr.api_key),
             r->hdr.api_version, r->hdr.correlation_id);
    switch (r->hdr.api_key) {
    case MQ_KAPI_API_VERSIONS:
        handle_api_versions(r, &rd);
        break;
    case MQ_KAPI_METADATA:
        handle_metadata(r, &rd);
        break;
    case MQ_KAPI_LIST_OFFSETS:
        handle_list_offsets(r, &rd);
        break;
    case MQ_KAPI_FETCH:
        mq_ksrv_handle_fetch(r, &rd);
        break;
    case MQ_KAPI_FIND_COORDINATOR:
        handle_find_coordinator(r, &rd);
        break;
    case MQ_KAPI_JOIN_GROUP:
        handle_join_group(r, &rd);
        break;
    case MQ_KAPI_SYNC_GROUP:
        handle_sync_group(r, &rd);
        break;
    case MQ_KAPI_HEARTBEAT:
        handle_heartbeat(r, &rd);
        break;
    case MQ_KAPI_LEAVE_GROUP:
        handle_leave_group(r, &rd);
        break;
    case MQ_KAPI_OFFSET_COMMIT:
        handle_offset_commit(r, &rd);
        break;
    case MQ_KAPI_OFFSET_FETCH:
        handle_offset_fetch(r, &rd);
        break;
    case MQ_KAPI_PRODUCE:
        handle_produce(r, &rd);
        break;
    case MQ_KAPI_INIT_PRODUCER_ID:
        handle_init_producer_id(r, &rd);
        break;
    default:
        handle_unsupported(r);
        break;
    }
    /* A handler that parked r made it c->cur; a group request may already be answered (done). */
    if (c->cur != r)
        mq_ksrv_req_free(r);
}

/* ---- connections ---- */

/* True when c's input holds a whole request (or a size prefix that must close the connection). */
static bool conn_has_request(const struct conn *c)
{
    size_t frame;
    enum mq_err err = mq_kafka_frame_size(c->in, c->in_len, c->srv->conf.max_request_bytes, &frame);
    return err == MQ_ERR_PROTOCOL || (err == MQ_OK && c->in_len >= frame);
}

/*
 * Handles the complete requests in c's input, one at a time, while nothing is parked and not too many
 * answers wait to be sent; writes the answers.
 */
static void conn_process(struct conn *c)
{
    if (c->cur && c->cur->done) {
        mq_ksrv_req_free(c->cur);
        c->cur = NULL;
    }
    for (;;) {
        while (!c->dead && !c->cur && c->out_items < OUT_ITEMS_MAX && conn_has_request(c)) {
            size_t frame;
            if (mq_kafka_frame_size(c->in, c->in_len, c->srv->conf.max_request_bytes, &frame) != MQ_OK) {
                mq_ksrv_protocol_error(c, "request size out of bounds (oversized or garbage)");
                break;
            }
            size_t len = frame - MQ_KAFKA_FRAME_PREFIX;
            uint8_t *body = malloc(len);
            if (!body) {
                mq_ksrv_conn_kill(c, "out of memory");
                break;
            }
            memcpy(body, c->in + MQ_KAFKA_FRAME_PREFIX, len);
            memmove(c->in, c->in + frame, c->in_len - frame);
            c->in_len -= frame;
            mq_ksrv_handle_request(c, body, len);
            if (c->cur && c->cur->done) {
                mq_ksrv_req_free(c->cur);
                c->cur = NULL;
            }
        }
        conn_flush(c);
        /* Sending may have made room for the answers of requests already buffered. */
        if (c->dead || c->cur || c->out_items >= OUT_ITEMS_MAX || !conn_has_request(c))
            break;
    }
    if (c->in_len == 0 && c->in_cap > IN_CHUNK) {
        /* A large request is done with: do not keep its buffer for the connection's lifetime. */
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    conn_update_events(c);
}

static void conn_read(struct conn *c)
{
    for (;;) {
        size_t limit = IN_CHUNK;
        size_t frame;
        enum mq_err ferr = mq_kafka_frame_size(c->in, c->in_len, c->srv->conf.max_request_bytes, &frame);
        if (ferr == MQ_ERR_PROTOCOL) {
            mq_ksrv_protocol_error(c, "request size out of bounds (oversized or garbage)");
            return;
        }
        if (ferr == MQ_OK && frame > limit)
            limit = frame;
        if (c->in_len >= limit)
            break;
        if (c->in_cap < limit) {
            uint8_t *b = realloc(c->in, limit);
            if (!b) {
                mq_ksrv_conn_kill(c, "out of memory");
                return;
            }
            c->in = b;
            c->in_cap = limit;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->last_active = now_ms();
            continue;
        }
        if (n == 0) {
            mq_ksrv_conn_kill(c, NULL); /* the client closed */
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            mq_ksrv_conn_kill(c, strerror(errno));
        break;
    }
    mq_ksrv_conn_set_ready(c);
}

static void conn_close(struct mq_kafka_server *srv, struct conn *c)
{
    if (c->cur) {
        if (c->cur->state == REQ_FETCH_WAIT)
            mq_ksrv_waiting_remove(srv, c->cur);
        else if (c->cur->state == REQ_GROUP_WAIT && !c->cur->done)
            mq_kafka_groups_cancel(srv->groups, now_ms(), c->cur);
        mq_ksrv_req_free(c->cur);
    }
    while (c->out_head) {
        struct out_item *it = c->out_head;
        c->out_head = it->next;
        mq_kafka_out_free(&it->out);
        free(it);
    }
    /* Counted before the close, so that a client seeing its connection end also sees the count drop. */
    atomic_fetch_sub(&srv->st_open, 1);
    epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    MQ_DEBUG("kafka: connection from %s closed", c->peer);
    free(c);
}

static void accept_all(struct mq_kafka_server *srv)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                MQ_WARN("kafka: accept: %s", strerror(errno));
            return;
        }
        atomic_fetch_add(&srv->st_accepted, 1);
        if (atomic_load(&srv->st_open) >= (uint64_t)srv->conf.max_connections) {
            MQ_WARN("kafka: refusing a connection: %d connections open", srv->conf.max_connections);
            close(fd);
            continue;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char host[INET6_ADDRSTRLEN] = "?", serv[16] = "?";
        (void)getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
                          NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->peer, sizeof c->peer, "%s:%s", host, serv);
        c->srv = srv;
        c->fd = fd;
        c->events = EPOLLIN;
        c->last_active = now_ms();
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &e) != 0) {
            MQ_WARN("kafka: epoll_ctl: %s", strerror(errno));
            close(fd);
            free(c);
            continue;
        }
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        atomic_fetch_add(&srv->st_open, 1);
        MQ_DEBUG("kafka: connection from %s", c->peer);
    }
}

/* ---- the loop ---- */

static int loop_timeout(struct mq_kafka_server *srv, int64_t now, int64_t group_next)
{
    int64_t next = group_next;
    for (struct req *r = srv->waiting; r; r = r->wait_next)
        if (r->deadline < next)
            next = r->deadline;
    if (srv->read_mode && srv->waiting && srv->last_poll + srv->conf.fetch_poll_ms < next)
        next = srv->last_poll + srv->conf.fetch_poll_ms;
    if (next == INT64_MAX)
        return 1000;
    int64_t d = next - now;
    if (d < 0)
        d = 0;
    return d > 1000 ? 1000 : (int)d;
}

static void *loop_main(void *arg)
{
    struct mq_kafka_server *srv = arg;
    struct epoll_event evs[64];
    int64_t group_next = INT64_MAX;
    srv->last_poll = now_ms();
    while (!atomic_load(&srv->stop)) {
        int n = epoll_wait(srv->epoll_fd, evs, 64, loop_timeout(srv, now_ms(), group_next));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            MQ_ERROR("kafka: epoll_wait: %s", strerror(errno));
            break;
        }
        bool woken = false;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &srv->listen_fd) {
                accept_all(srv);
            } else if (p == &srv->wake_fd) {
                uint64_t v;
                while (read(srv->wake_fd, &v, sizeof v) > 0) {
                }
                woken = true;
            } else {
                struct conn *c = p;
                if (c->dead)
                    continue;
                if (evs[i].events & EPOLLIN)
                    conn_read(c);
                else if (evs[i].events & (EPOLLERR | EPOLLHUP))
                    mq_ksrv_conn_kill(c, NULL);
                if (!c->dead && (evs[i].events & EPOLLOUT)) {
                    conn_flush(c);
                    mq_ksrv_conn_set_ready(c); /* responses drained: more requests may be handled */
                }
            }
        }
        int64_t now = now_ms();
        bool all = false;
        if (woken && atomic_exchange(&srv->data_ready, false))
            all = true;
        if (srv->read_mode && now - srv->last_poll >= srv->conf.fetch_poll_ms) {
            srv->last_poll = now;
            all = true;
        }
        if (srv->waiting)
            mq_ksrv_fetch_recheck(srv, now, all);
        group_next = mq_kafka_groups_tick(srv->groups, now);
        while (srv->ready) {
            struct conn *c = srv->ready;
            srv->ready = c->ready_next;
            c->ready = false;
            if (!c->dead)
                conn_process(c);
        }
        if (srv->conf.idle_timeout_ms > 0 && now - srv->last_idle_sweep >= 1000) {
            /* Connections with nothing parked and nothing to send that stayed silent too long. */
            srv->last_idle_sweep = now;
            for (struct conn *c = srv->conns; c; c = c->next)
                if (!c->cur && !c->out_head && now - c->last_active > srv->conf.idle_timeout_ms)
                    mq_ksrv_conn_kill(c, "idle");
        }
        for (struct conn *c = srv->conns, *next; c; c = next) {
            next = c->next;
            if (c->dead)
                conn_close(srv, c);
        }
    }
    while (srv->conns)
        conn_close(srv, srv->conns);
    return NULL;
}

/* ---- lifecycle ---- */

void mq_kafka_server_conf_defaults(struct mq_kafka_server_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->listen_host = "127.0.0.1";
    conf->port = 9092;
    conf->node_id = 0;
    conf->cluster_id = "mqlog";
    conf->max_request_bytes = 16 * 1024 * 1024;
    conf->max_connections = 1024;
    conf->fetch_poll_ms = 50;
    conf->idle_timeout_ms = 600000;
    conf->install_durable_cb = true;
    mq_kafka_groups_conf_defaults(&conf->groups);
}

/*
 * The log may still run a durable callback it read just before mq_kafka_server_stop() removed it, after the
 * server is gone. So the callback only touches a server found in this list, under its lock, and stop()
 * takes the server out (waiting for a callback in progress) before freeing it.
 */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mq_kafka_server *live_servers;

static void mq_ksrv_on_durable(void *opaque, struct mq_part *part, int64_t durable_end)
{
    (void)part;
    (void)durable_end;
    pthread_mutex_lock(&live_mu);
    for (struct mq_kafka_server *s = live_servers; s; s = s->live_next)
        if (s == opaque) {
            mq_kafka_server_notify(s);
            break;
        }
    pthread_mutex_unlock(&live_mu);
}

static void mq_ksrv_live_add(struct mq_kafka_server *srv)
{
    pthread_mutex_lock(&live_mu);
    srv->live_next = live_servers;
    live_servers = srv;
    pthread_mutex_unlock(&live_mu);
}

static void mq_ksrv_live_remove(struct mq_kafka_server *srv)
{
    pthread_mutex_lock(&live_mu);
    for (struct mq_kafka_server **pp = &live_servers; *pp; pp = &(*pp)->live_next)
        if (*pp == srv) {
            *pp = srv->live_next;
            break;
        }
    pthread_mutex_unlock(&live_mu);
}

void mq_kafka_server_notify(struct mq_kafka_server *srv)
{
    if (!atomic_exchange(&srv->data_ready, true)) {
        uint64_t one = 1;
        ssize_t w = write(srv->wake_fd, &one, sizeof one);
        (void)w; /* a full eventfd counter already means "wake up" */
    }
}

int mq_kafka_server_port(const struct mq_kafka_server *srv)
{
    return srv->port;
}

void mq_kafka_server_stats(const struct mq_kafka_server *srv, struct mq_kafka_server_stats *st)
{
    st->accepted = atomic_load(&srv->st_accepted);
    st->open = atomic_load(&srv->st_open);
    st->requests = atomic_load(&srv->st_requests);
    st->protocol_errors = atomic_load(&srv->st_protocol_errors);
    st->unsupported = atomic_load(&srv->st_unsupported);
    st->fetch_waiting = atomic_load(&srv->st_waiting);
}

static void server_free(struct mq_kafka_server *srv)
{
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    if (srv->epoll_fd >= 0)
        close(srv->epoll_fd);
    mq_kafka_groups_free(srv->groups);
    free(srv->listen_host);
    free(srv->advertised_host);
    free(srv->cluster_id);
    free(srv);
}

/* Binds and listens on host:port; returns the socket or -1 with errstr set. */
static int listen_on(const char *host, int port, int *bound_port, char *errstr, size_t errstr_size,
                     enum mq_err *err)
{
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, ports, &hints, &ai);
    if (rc != 0) {
        *err = mq_errf(MQ_ERR_CONFIG, errstr, errstr_size, "kafka listener %s:%d: %s", host, port,
                       gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka listener: socket: %s",
                       strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
        int e = errno;
        *err = mq_errf(e == EADDRINUSE ? MQ_ERR_BUSY : mq_err_from_errno(e), errstr, errstr_size,
                       "kafka listener %s:%d: %s", host, port, strerror(e));
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        *err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka listener: getsockname: %s",
                       strerror(errno));
        close(fd);
        return -1;
    }
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

enum mq_err mq_kafka_server_start(struct mq_store *store, const struct mq_kafka_server_conf *conf,
                                  struct mq_kafka_server **srvp, char *errstr, size_t errstr_size)
{
    struct mq_kafka_server_conf defaults;
    if (!conf) {
        mq_kafka_server_conf_defaults(&defaults);
        conf = &defaults;
    }
    if (!store || conf->port < 0 || conf->port > 65535 || conf->max_request_bytes < MQ_KAFKA_MIN_REQUEST ||
        conf->max_request_bytes > INT32_MAX || conf->max_connections < 1 || conf->fetch_poll_ms < 1 ||
        conf->idle_timeout_ms < 0)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "kafka listener: invalid configuration");
    struct mq_kafka_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    srv->listen_fd = srv->epoll_fd = srv->wake_fd = -1;
    srv->store = store;
    srv->log = mq_store_log(store);
    srv->cat = mq_store_catalog(store);
    srv->conf = *conf;
    srv->read_mode = mq_log_mode(srv->log) == MQ_LOG_READ;
    const char *lh = conf->listen_host ? conf->listen_host : "127.0.0.1";
    bool wildcard = strcmp(lh, "0.0.0.0") == 0 || strcmp(lh, "::") == 0;
    const char *ah = conf->advertised_host ? conf->advertised_host : wildcard ? "127.0.0.1" : lh;
    srv->listen_host = strdup(lh);
    srv->advertised_host = strdup(ah);
    srv->cluster_id = strdup(conf->cluster_id ? conf->cluster_id : "mqlog");
    if (!srv->listen_host || !srv->advertised_host || !srv->cluster_id) {
        server_free(srv);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    srv->conf.listen_host = srv->listen_host;
    srv->conf.advertised_host = srv->advertised_host;
    srv->conf.cluster_id = srv->cluster_id;
    enum mq_err err = mq_kafka_groups_new(&conf->groups, mq_ksrv_on_join, mq_ksrv_on_sync, srv, &srv->groups);
    if (err != MQ_OK) {
        server_free(srv);
        return mq_errf(err, errstr, errstr_size, "kafka: %s", mq_strerror(err));
    }
    srv->listen_fd = listen_on(lh, conf->port, &srv->port, errstr, errstr_size, &err);
    if (srv->listen_fd < 0) {
        server_free(srv);
        return err;
    }
    if (srv->conf.advertised_port <= 0)
        srv->conf.advertised_port = srv->port;
    srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->epoll_fd < 0 || srv->wake_fd < 0) {
        err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka: epoll/eventfd: %s",
                      strerror(errno));
        server_free(srv);
        return err;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &srv->listen_fd};
    struct epoll_event w = {.events = EPOLLIN, .data.ptr = &srv->wake_fd};
    if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listen_fd, &e) != 0 ||
        epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->wake_fd, &w) != 0) {
        err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka: epoll_ctl: %s", strerror(errno));
        server_free(srv);
        return err;
    }
    if (conf->install_durable_cb && !srv->read_mode) {
        mq_ksrv_live_add(srv);
        mq_log_set_durable_cb(srv->log, mq_ksrv_on_durable, srv);
        srv->durable_cb_set = true;
    }
    int rc = pthread_create(&srv->thread, NULL, loop_main, srv);
    if (rc != 0) {
        if (srv->durable_cb_set) {
            mq_log_set_durable_cb(srv->log, NULL, NULL);
            mq_ksrv_live_remove(srv);
        }
        server_free(srv);
        return mq_errf(mq_err_from_errno(rc), errstr, errstr_size, "kafka: pthread_create: %s", strerror(rc));
    }
    srv->thread_started = true;
    MQ_INFO("kafka: listening on %s:%d (advertised as %s:%d)", lh, srv->port, srv->advertised_host,
            srv->conf.advertised_port);
    *srvp = srv;
    return MQ_OK;
}

void mq_kafka_server_stop(struct mq_kafka_server *srv)
{
    if (!srv)
        return;
    if (srv->durable_cb_set) {
        mq_log_set_durable_cb(srv->log, NULL, NULL);
        mq_ksrv_live_remove(srv);
    }
    atomic_store(&srv->stop, true);
    uint64_t one = 1;
    ssize_t w = write(srv->wake_fd, &one, sizeof one);
    (void)w;
    if (srv->thread_started)
        pthread_join(srv->thread, NULL);
    server_free(srv);
}
