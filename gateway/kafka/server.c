/*
 * server.c - the Kafka endpoint's event loop, connections and lifecycle (see server.h). The requests are
 * handled in fetch.c (Fetch and its long poll) and handlers.c (every other API, and dispatch).
 *
 * Layout: one epoll instance watches the listening socket, an eventfd (woken by other threads: new durable
 * records, stop) and every connection. A connection reads into its input buffer; once a whole request is
 * there and no earlier request of that connection is still being served, the request is copied out and
 * handled. Handlers answer at once or park the request (a Fetch waiting for data, a JoinGroup or SyncGroup
 * waiting for other members); a parked request blocks the connection's later requests, as in Kafka.
 * Answers are queued on the connection as struct mq_kafka_out (bytes plus segment file ranges) and written
 * as the socket accepts them, through the connection's transport (transport.c): send() and sendfile() on
 * plaintext listeners, SSL_write() on TLS ones. The listening sockets are set up in listeners.c.
 *
 * Limits (finding 7 and 8 of issue 11: one client must not take the loop, the memory or the connection
 * slots): a connection gets at most REQS_PER_TURN requests handled per loop iteration, then waits for the
 * others' turn; none is handled while its unsent answers hold max_queued_bytes (its socket is then not
 * read either, so TCP pushes back); one that makes no sending progress for send_timeout is closed. Each
 * client address holds at most max_connections_per_ip of the max_connections slots, a connection must send
 * a whole request within handshake_timeout, refusals are logged at most every 10 s with their count, and
 * malloc_trim() gives the memory of a burst back to the system.
 *
 * Reentrancy: the group coordinator may deliver a response for any connection while handling another's
 * request. Its callbacks only queue the response, mark the request done and put the connection on the
 * ready list; the loop frees finished requests and handles further input afterwards. Connections are
 * closed only at the end of a loop iteration, so no callback ever sees a freed connection.
 */
#include "kafka/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
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
#include <sys/socket.h>
#include <unistd.h>

#include "kafka/proto.h"
#include "kafka/wire.h"
#include "sasl/sasl.h"
#include "util/diag.h"
#include "util/nofile.h"

#define IN_CHUNK      (64 * 1024)   /* read ahead this much input beyond the current request */
#define OUT_ITEMS_MAX 8             /* stop handling requests while this many responses are unsent */
#define REQS_PER_TURN 4             /* requests of one connection handled before the others get a turn */
#define SWEEP_MS      1000          /* how often the timeouts are checked */
#define BIG_BUFFER    (64 * 1024)   /* freeing at least this much counts towards a malloc_trim() */
#define TRIM_BYTES    (1024 * 1024) /* ask for a trim once this much was freed in large buffers, */
#define TRIM_EVERY_MS 500           /* at most this often (the trim walks the allocator's free lists) */
#define FD_RESERVE    256           /* descriptors beyond max_connections: store files, catalog, connectors */

/* ---- small helpers ---- */

static const char *fmt_ms(int64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf(buf, size, "%" PRId64 " s", ms / 1000);
    else
        snprintf(buf, size, "%" PRId64 " ms", ms);
    return buf;
}

/*
 * Logs one event of a kind that a client can repeat at will (refused connections, timeouts): the first at
 * once, then at most one line every MQ_KSRV_RATELOG_MS that counts those held back (ratelog_flush() writes
 * it when no further event comes). what says it all ("refused a connection from ...: reason"); noun names
 * the kind in the summary ("refused connections").
 */
void mq_ksrv_ratelog(struct ratelog *rl, enum mq_level level, int64_t now, const char *noun, const char *what)
{
    if (rl->last != 0 && now - rl->last < MQ_KSRV_RATELOG_MS) {
        rl->held++;
        snprintf(rl->example, sizeof rl->example, "%s", what);
        return;
    }
    if (rl->held)
        MQ_DIAG(level, "kafka: %" PRIu64 " %s in the last %" PRId64 " s; the latest: %s", rl->held + 1, noun,
                (now - rl->last) / 1000, what);
    else
        MQ_DIAG(level, "kafka: %s (more %s are counted and logged at most every %d s)", what, noun,
                MQ_KSRV_RATELOG_MS / 1000);
    rl->held = 0;
    rl->last = now;
}

static void ratelog_flush(struct ratelog *rl, enum mq_level level, int64_t now, const char *noun)
{
    if (!rl->held || now - rl->last < MQ_KSRV_RATELOG_MS)
        return;
    MQ_DIAG(level, "kafka: %" PRIu64 " %s in the last %" PRId64 " s; the latest: %s", rl->held, noun,
            (now - rl->last) / 1000, rl->example);
    rl->held = 0;
    rl->last = now;
}

void mq_ksrv_freed(struct mq_kafka_server *srv, size_t bytes)
{
    if (bytes >= BIG_BUFFER)
        srv->trim_bytes += bytes;
}

/* Gives the memory of large freed buffers back to the system: glibc keeps freed heap memory (and raises its
 * mmap threshold after large frees), so a burst of big requests would otherwise stay in the RSS. */
static void maybe_trim(struct mq_kafka_server *srv, int64_t now)
{
    if (srv->trim_bytes < TRIM_BYTES || now - srv->last_trim < TRIM_EVERY_MS)
        return;
    malloc_trim(0);
    srv->trim_bytes = 0;
    srv->last_trim = now;
}

void mq_ksrv_too_large(struct req *r, bool answered)
{
    struct conn *c = r->conn;
    atomic_fetch_add(&c->srv->st_too_large, 1);
    char what[256];
    snprintf(
        what, sizeof what,
        "%s v%d from %s lists more than %" PRId32 " topics or topic-partitions (max_request_partitions): %s",
        mq_kafka_api_name(r->hdr.api_key), r->hdr.api_version, c->peer, c->srv->conf.max_request_partitions,
        answered ? "answered INVALID_REQUEST"
                 : "closing the connection (this version cannot carry the error)");
    mq_ksrv_ratelog(&c->srv->too_large, MQ_LV_WARN, now_ms(), "requests over max_request_partitions", what);
    if (!answered)
        mq_ksrv_conn_kill(c, NULL);
}

void mq_ksrv_conn_set_ready(struct conn *c)
{
    if (c->ready || c->dead)
        return;
    c->ready = true;
    c->ready_next = c->srv->ready;
    c->srv->ready = c;
}

void mq_ksrv_conn_kill(struct conn *c, const char *why)
{
    if (!c->dead && why)
        MQ_INFO("kafka: closing connection from %s: %s", c->peer, why);
    c->dead = true;
}

void mq_ksrv_protocol_error(struct conn *c, const char *why)
{
    atomic_fetch_add(&c->srv->st_protocol_errors, 1);
    if (!c->dead)
        MQ_WARN("kafka: closing connection from %s: %s", c->peer, why);
    c->dead = true;
}

/* How much input c may hold: IN_CHUNK, or the whole of a larger request that is arriving. */
static size_t conn_in_limit(const struct conn *c)
{
    size_t frame;
    if (mq_kafka_frame_size(c->in, c->in_len, c->srv->conf.max_request_bytes, &frame) == MQ_OK &&
        frame > IN_CHUNK)
        return frame;
    return IN_CHUNK;
}

static void conn_update_events(struct conn *c)
{
    if (c->dead)
        return;
    uint32_t ev = 0;
    if (c->in_len < conn_in_limit(c))
        ev |= EPOLLIN;
    if (c->want_out || c->read_wants_out)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_MOD, c->fd, &e) != 0) {
        mq_ksrv_conn_kill(c, MQ_STRERROR(errno));
        return;
    }
    c->events = ev;
}

void mq_ksrv_req_free(struct req *r)
{
    if (!r)
        return;
    mq_ksrv_freed(r->conn->srv, r->len);
    mq_kafka_fetch_req_release(&r->fetch);
    mq_kafka_arena_free(&r->arena);
    free(r->body);
    free(r);
}

/* ---- responses ---- */

/* What a queued answer counts against max_queued_bytes: its bytes in memory and in files. */
static size_t item_bytes(const struct out_item *it)
{
    return it->out.wr.len + (size_t)it->out.file_bytes;
}

static void item_free(struct mq_kafka_server *srv, struct out_item *it)
{
    mq_ksrv_freed(srv, it->out.wr.cap);
    mq_kafka_out_free(&it->out);
    free(it);
}

struct out_item *mq_ksrv_resp_begin(struct req *r)
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
void mq_ksrv_resp_end(struct req *r, struct out_item *it)
{
    struct conn *c = r->conn;
    atomic_fetch_add(&c->srv->st_requests, 1);
    if (r->hdr.api_key >= 0 && r->hdr.api_key < MQ_KSRV_API_KEYS)
        atomic_fetch_add_explicit(&c->srv->st_api[r->hdr.api_key], 1, memory_order_relaxed);
    enum mq_err err = it ? mq_kafka_out_end(&it->out) : MQ_ERR_NOMEM;
    if (err != MQ_OK) {
        if (it) {
            mq_kafka_out_free(&it->out);
            free(it);
        }
        mq_ksrv_conn_kill(c, err == MQ_ERR_RANGE   ? "the response would pass Kafka's 2 GiB frame limit"
                             : err == MQ_ERR_NOMEM ? "could not build a response (out of memory)"
                                                   : mq_strerror(err));
        return;
    }
    if (c->out_tail) {
        c->out_tail->next = it;
    } else {
        c->out_head = it;
        c->last_sent = now_ms(); /* the send timeout counts from here */
    }
    c->out_tail = it;
    c->out_items++;
    c->out_bytes += item_bytes(it);
}

/* Writes queued responses until done or the socket is full (through c's transport: a plaintext connection
 * sends file ranges with sendfile(), TLS reads and encrypts them). */
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
                ssize_t w = c->io->send(c, o->wr.buf + from + it->off, to - from - it->off, k < n);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        c->want_out = c->io_wait == EPOLLOUT; /* else the input event retries */
                        return;
                    }
                    if (errno == EINTR)
                        continue;
                    mq_ksrv_conn_kill(c, MQ_STRERROR(errno));
                    return;
                }
                it->off += (size_t)w;
                atomic_fetch_add_explicit(&c->srv->st_sent_bytes, (uint64_t)w, memory_order_relaxed);
                c->last_active = c->last_sent = now_ms();
                if (from + it->off < to)
                    continue;
            }
        } else {
            struct mq_slice *s = &o->splices[it->piece / 2].slice;
            if (it->off < s->len) {
                size_t want = s->len - it->off;
                if (want > (1u << 30))
                    want = 1u << 30;
                ssize_t w = c->io->send_file(c, s->fd, s->pos + (int64_t)it->off, want);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        c->want_out = c->io_wait == EPOLLOUT;
                        return;
                    }
                    if (errno == EINTR)
                        continue;
                    mq_ksrv_conn_kill(c, MQ_STRERROR(errno));
                    return;
                }
                if (w == 0) {
                    /* The file is shorter than the batches it held: the response can no longer be
                     * completed, and a short one would desynchronise the client. */
                    mq_ksrv_conn_kill(c, "segment file shrank while sending");
                    return;
                }
                it->off += (size_t)w;
                atomic_fetch_add_explicit(&c->srv->st_sent_bytes, (uint64_t)w, memory_order_relaxed);
                c->last_active = c->last_sent = now_ms();
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
            c->out_bytes -= item_bytes(it);
            item_free(c->srv, it);
        }
    }
    c->want_out = false;
    if (c->close_when_sent)
        mq_ksrv_conn_kill(c, NULL); /* its last answer (a failed authentication) is out */
}

/* ---- connections ---- */

/* True when c's input holds a whole request (or a size prefix that must close the connection). */
static bool conn_has_request(const struct conn *c)
{
    size_t frame;
    enum mq_err err = mq_kafka_frame_size(c->in, c->in_len, c->srv->conf.max_request_bytes, &frame);
    return err == MQ_ERR_PROTOCOL || (err == MQ_OK && c->in_len >= frame);
}

/* True while c's unsent answers leave room for one more. */
static bool conn_may_queue(const struct conn *c)
{
    return c->out_items < OUT_ITEMS_MAX && c->out_bytes < c->srv->conf.max_queued_bytes;
}

static void conn_read(struct conn *c);

/*
 * Handles the complete requests in c's input, one at a time, while nothing is parked and not too many
 * answers wait to be sent, REQS_PER_TURN at most (then c is put on the ready list for the next loop
 * iteration, after the other connections); writes the answers.
 */
static void conn_process(struct conn *c)
{
    if (c->cur && c->cur->done) {
        mq_ksrv_req_free(c->cur);
        c->cur = NULL;
    }
    int quota = REQS_PER_TURN;
    for (;;) {
        while (!c->dead && !c->cur && !c->close_when_sent && conn_may_queue(c) && quota > 0 &&
               conn_has_request(c)) {
            size_t frame;
            if (mq_kafka_frame_size(c->in, c->in_len, c->srv->conf.max_request_bytes, &frame) != MQ_OK) {
                mq_ksrv_protocol_error(c, "request size out of bounds (oversized or garbage)");
                break;
            }
            size_t len = frame - MQ_KAFKA_FRAME_PREFIX;
            uint8_t *body;
            if (c->in_len == frame && c->in_cap > IN_CHUNK) {
                /* A large request alone in its buffer: the buffer becomes the body, so that a request of
                 * max_request_bytes is not held twice. */
                body = c->in;
                memmove(body, body + MQ_KAFKA_FRAME_PREFIX, len);
                c->in = NULL;
                c->in_cap = 0;
            } else {
                body = malloc(len);
                if (!body) {
                    mq_ksrv_conn_kill(c, "out of memory");
                    break;
                }
                memcpy(body, c->in + MQ_KAFKA_FRAME_PREFIX, len);
                memmove(c->in, c->in + frame, c->in_len - frame);
            }
            c->in_len -= frame;
            c->greeted = true;
            quota--;
            mq_ksrv_handle_request(c, body, len);
            if (c->cur && c->cur->done) {
                mq_ksrv_req_free(c->cur);
                c->cur = NULL;
            }
        }
        conn_flush(c);
        /* Sending may have made room for the answers of requests already buffered. */
        if (c->dead || c->cur || c->close_when_sent || !conn_may_queue(c) || !conn_has_request(c))
            break;
        if (quota == 0) {
            mq_ksrv_conn_set_ready(c); /* the rest in its next turn */
            break;
        }
    }
    if (c->in_len == 0 && c->in_cap > IN_CHUNK) {
        /* A large request is done with: do not keep its buffer for the connection's lifetime. */
        mq_ksrv_freed(c->srv, c->in_cap);
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    /* Input TLS decrypted ahead of the room in c->in is no longer on the socket: epoll cannot report it. */
    if (c->ssl && !c->dead && c->in_len < conn_in_limit(c) && mq_ksrv_tls_pending(c))
        conn_read(c);
    conn_update_events(c);
}

static void conn_read(struct conn *c)
{
    c->read_wants_out = false;
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
        ssize_t n = c->io->recv(c, c->in + c->in_len, c->in_cap - c->in_len);
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
            mq_ksrv_conn_kill(c, MQ_STRERROR(errno));
        else if (c->io_wait == EPOLLOUT)
            c->read_wants_out = true; /* TLS must send before it can read on */
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
        item_free(srv, it);
    }
    if (c->ip)
        mq_ksrv_ip_release(srv, c->ip);
    /* Counted before the close, so that a client seeing its connection end also sees the count drop. */
    atomic_fetch_sub(&srv->st_open, 1);
    epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    c->io->close(c);
    close(c->fd);
    mq_ksrv_freed(srv, c->in_cap);
    free(c->in);
    mq_sasl_free(c->sasl);
    free(c->principal);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    MQ_DEBUG("kafka: connection from %s closed", c->peer);
    free(c);
}

/* Counts and logs (rate limited) a connection closed as soon as it was accepted. */
static void refuse(struct mq_kafka_server *srv, int fd, const char *peer, const char *why)
{
    if (fd >= 0)
        close(fd);
    atomic_fetch_add(&srv->st_refused, 1);
    char what[256];
    snprintf(what, sizeof what, "refused a connection from %s: %s", peer, why);
    mq_ksrv_ratelog(&srv->refusals, MQ_LV_WARN, now_ms(), "refused connections", what);
}

/* accept() failed for want of descriptors: the pending connection would make the listener report readable
 * forever (a busy loop). Give up the spare descriptor to accept it and close it, then take the spare back. */
static void refuse_no_fd(struct mq_ksrv_listener *lsn, int err)
{
    struct mq_kafka_server *srv = lsn->srv;
    char why[128];
    snprintf(why, sizeof why, "%s (RLIMIT_NOFILE; max_connections %d)", MQ_STRERROR(err),
             srv->conf.max_connections);
    if (srv->spare_fd >= 0) {
        close(srv->spare_fd);
        srv->spare_fd = -1;
    }
    int fd = accept4(lsn->fd, NULL, NULL, SOCK_CLOEXEC);
    refuse(srv, fd, "?", why);
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_all(struct mq_ksrv_listener *lsn)
{
    struct mq_kafka_server *srv = lsn->srv;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lsn->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                refuse_no_fd(lsn, errno);
                return;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                MQ_WARN("kafka: accept: %s", MQ_STRERROR(errno));
            return;
        }
        atomic_fetch_add(&srv->st_accepted, 1);
        char host[INET6_ADDRSTRLEN] = "?", serv[16] = "?", peer[64];
        (void)getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
                          NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(peer, sizeof peer, "%s:%s", host, serv);
        uint8_t addr[16];
        uint8_t alen = mq_ksrv_ip_key(&ss, addr);
        struct ip_slot *slot = mq_ksrv_ip_find(srv, addr, alen);
        char why[160];
        if (atomic_load(&srv->st_open) >= (uint64_t)srv->conf.max_connections) {
            snprintf(why, sizeof why, "max_connections (%d) reached", srv->conf.max_connections);
            refuse(srv, fd, peer, why);
            continue;
        }
        if (srv->conf.max_connections_per_ip > 0 && slot && slot->conns >= srv->conf.max_connections_per_ip) {
            snprintf(why, sizeof why, "max_connections_per_ip (%d) reached for %s",
                     srv->conf.max_connections_per_ip, host);
            refuse(srv, fd, peer, why);
            continue;
        }
        struct conn *c = calloc(1, sizeof *c);
        slot = c ? mq_ksrv_ip_get(srv, addr, alen) : NULL;
        if (!slot) {
            free(c);
            refuse(srv, fd, peer, "out of memory");
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        c->srv = srv;
        c->lsn = lsn;
        c->io = &mq_ksrv_plain;
        c->fd = fd;
        if (lsn->tls && !mq_ksrv_tls_accept(c)) {
            mq_ksrv_ip_release(srv, slot);
            free(c);
            refuse(srv, fd, peer, "out of memory (TLS)");
            continue;
        }
        c->events = EPOLLIN;
        c->accepted_at = c->last_active = now_ms();
        c->sasl_mechs = lsn->sasl_mechs;
        slot->conns++;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &e) != 0) {
            MQ_WARN("kafka: epoll_ctl: %s", MQ_STRERROR(errno));
            mq_ksrv_ip_release(srv, slot);
            c->io->close(c);
            close(fd);
            free(c);
            continue;
        }
        c->ip = slot;
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        atomic_fetch_add(&srv->st_open, 1);
        MQ_DEBUG("kafka: connection from %s", c->peer);
        /* Without SASL or TLS nothing will say who the client is (TLS: the handshake may, transport.c). */
        if (!lsn->tls && !lsn->sasl_mechs)
            mq_ksrv_principal_set(c, "ANONYMOUS", "no authentication");
    }
}

/* ---- the loop ---- */

/* Closes a connection that ran into a timeout; logged (rate limited) and counted. */
static void timed_out(struct conn *c, int64_t now, const char *why, int64_t ms)
{
    char dur[32], what[256];
    snprintf(what, sizeof what, "closing the connection from %s: %s (%s)", c->peer, why,
             fmt_ms(ms, dur, sizeof dur));
    atomic_fetch_add(&c->srv->st_timed_out, 1);
    mq_ksrv_ratelog(&c->srv->timeouts, MQ_LV_INFO, now, "connections closed by a timeout", what);
    mq_ksrv_conn_kill(c, NULL);
}

/* The handshake, idle and send timeouts. Until its first whole request, and on a SASL listener until it
 * authenticated, a connection has the handshake timeout alone. */
static void sweep_timeouts(struct mq_kafka_server *srv, int64_t now)
{
    const struct mq_kafka_server_conf *k = &srv->conf;
    for (struct conn *c = srv->conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (!c->greeted && now - c->accepted_at > k->handshake_timeout_ms)
            timed_out(c, now, "no whole request within handshake_timeout", k->handshake_timeout_ms);
        else if (c->sasl_mechs && !c->principal && now - c->accepted_at > k->handshake_timeout_ms)
            timed_out(c, now, "not authenticated within handshake_timeout", k->handshake_timeout_ms);
        else if (c->greeted && k->idle_timeout_ms > 0 && !c->cur && !c->out_head &&
                 now - c->last_active > k->idle_timeout_ms)
            timed_out(c, now, "idle for idle_timeout", k->idle_timeout_ms);
        else if (c->out_head && now - c->last_sent > k->send_timeout_ms)
            timed_out(c, now, "the client read nothing of its answers for send_timeout", k->send_timeout_ms);
    }
}

static int loop_timeout(struct mq_kafka_server *srv, int64_t now, int64_t group_next)
{
    if (srv->ready)
        return 0; /* connections wait for their next turn */
    int64_t next = mq_ksrv_fetch_next_due(srv);
    if (group_next < next)
        next = group_next;
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
        atomic_store(&srv->heartbeat_ms, now_ms()); /* /healthz: the loop turns (it waits 1 s at most) */
        int n = epoll_wait(srv->epoll_fd, evs, 64, loop_timeout(srv, now_ms(), group_next));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            MQ_ERROR("kafka: epoll_wait: %s", MQ_STRERROR(errno));
            break;
        }
        bool woken = false;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            struct mq_ksrv_listener *lsn = p;
            if (lsn >= srv->listeners && lsn < srv->listeners + srv->n_listeners) {
                accept_all(lsn);
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
                    if (c->read_wants_out)
                        conn_read(c);
                    conn_flush(c);
                    mq_ksrv_conn_set_ready(c); /* responses drained: more requests may be handled */
                }
            }
        }
        int64_t now = now_ms();
        mq_ksrv_fetch_tick(srv, now, woken);
        group_next = mq_kafka_groups_tick(srv->groups, now);
        /* One turn for each connection ready now; those that put themselves back (more requests than
         * REQS_PER_TURN) or are made ready meanwhile get theirs in the next iteration. */
        struct conn *turn = srv->ready;
        srv->ready = NULL;
        while (turn) {
            struct conn *c = turn;
            turn = c->ready_next;
            c->ready = false;
            if (!c->dead)
                conn_process(c);
        }
        if (now - srv->last_idle_sweep >= SWEEP_MS) {
            srv->last_idle_sweep = now;
            sweep_timeouts(srv, now);
            ratelog_flush(&srv->refusals, MQ_LV_WARN, now, "refused connections");
            ratelog_flush(&srv->too_large, MQ_LV_WARN, now, "requests over max_request_partitions");
            ratelog_flush(&srv->timeouts, MQ_LV_INFO, now, "connections closed by a timeout");
            ratelog_flush(&srv->tls_failures, MQ_LV_WARN, now, "failed TLS handshakes");
            ratelog_flush(&srv->auth_failures, MQ_LV_INFO, now, "failed SASL authentications");
            ratelog_flush(&srv->auth_errors, MQ_LV_WARN, now, "SASL authentications failed by the server");
        }
        for (struct conn *c = srv->conns, *next; c; c = next) {
            next = c->next;
            if (c->dead)
                conn_close(srv, c);
        }
        maybe_trim(srv, now_ms());
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
    conf->max_connections_per_ip = 512;
    conf->fetch_poll_ms = 50;
    conf->idle_timeout_ms = 600000;
    conf->handshake_timeout_ms = 10000;
    conf->send_timeout_ms = 60000;
    conf->max_request_partitions = 10000;
    conf->fetch_max_bytes = 55 * 1024 * 1024;
    conf->max_queued_bytes = 16 * 1024 * 1024;
    conf->install_durable_cb = true;
    mq_kafka_groups_conf_defaults(&conf->groups);
}

int mq_kafka_server_port(const struct mq_kafka_server *srv)
{
    return srv->listeners[0].port;
}

int mq_kafka_server_listener_port(const struct mq_kafka_server *srv, size_t i)
{
    return i < srv->n_listeners ? srv->listeners[i].port : -1;
}

void mq_kafka_server_stats(const struct mq_kafka_server *srv, struct mq_kafka_server_stats *st)
{
    st->accepted = atomic_load(&srv->st_accepted);
    st->open = atomic_load(&srv->st_open);
    st->requests = atomic_load(&srv->st_requests);
    st->protocol_errors = atomic_load(&srv->st_protocol_errors);
    st->unsupported = atomic_load(&srv->st_unsupported);
    st->fetch_waiting = atomic_load(&srv->st_waiting);
    st->refused = atomic_load(&srv->st_refused);
    st->timed_out = atomic_load(&srv->st_timed_out);
    st->too_large = atomic_load(&srv->st_too_large);
    st->tls_failed = atomic_load(&srv->st_tls_failed);
    st->auth_failed = atomic_load(&srv->st_auth_failed);
    st->denied = atomic_load(&srv->st_denied);
    struct mq_sasl_cache_stats cs = {0};
    if (srv->sasl_cache)
        mq_sasl_cache_stats(srv->sasl_cache, &cs);
    st->auth_cached = cs.hits;
    st->auth_derived = cs.misses;
    st->sent_bytes = atomic_load(&srv->st_sent_bytes);
    st->heartbeat_ms = atomic_load(&srv->heartbeat_ms);
}

void mq_kafka_server_api_requests(const struct mq_kafka_server *srv,
                                  void (*fn)(void *opaque, const char *api, uint64_t requests), void *opaque)
{
    size_t n;
    const struct mq_ksrv_api *apis = mq_ksrv_apis(&n);
    for (size_t i = 0; i < n; i++)
        if (apis[i].key >= 0 && apis[i].key < MQ_KSRV_API_KEYS)
            fn(opaque, mq_kafka_api_name(apis[i].key), atomic_load(&srv->st_api[apis[i].key]));
}

static void server_free(struct mq_kafka_server *srv)
{
    mq_ksrv_listeners_close(srv);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    if (srv->epoll_fd >= 0)
        close(srv->epoll_fd);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    mq_ksrv_ips_free(srv);
    mq_kafka_groups_free(srv->groups);
    mq_ksrv_authz_free(srv);
    pthread_mutex_destroy(&srv->acl_lock);
    mq_sasl_cache_free(srv->sasl_cache);
    free(srv->cluster_id);
    free(srv);
}

/* Every connection is a descriptor: say so when the open files limit (which mqlogd raised to the hard limit
 * at start, util/nofile.h) is too low for max_connections. */
static void check_nofile(int max_connections)
{
    int64_t limit = mq_nofile_limit();
    int64_t need = (int64_t)max_connections + FD_RESERVE;
    if (limit >= 0 && limit < need)
        MQ_WARN("kafka: max_connections %d needs about %lld open files but RLIMIT_NOFILE allows %lld: "
                "connections will be refused before max_connections is reached",
                max_connections, (long long)need, (long long)limit);
}

enum mq_err mq_kafka_server_start(struct mq_store *store, const struct mq_kafka_server_conf *conf,
                                  struct mq_kafka_server **srvp, char *errstr, size_t errstr_size)
{
    struct mq_kafka_server_conf defaults;
    if (!conf) {
        mq_kafka_server_conf_defaults(&defaults);
        conf = &defaults;
    }
    if (!store || conf->max_request_bytes < MQ_KAFKA_MIN_REQUEST || conf->max_request_bytes > INT32_MAX ||
        conf->max_connections < 1 || conf->max_connections_per_ip < 0 || conf->fetch_poll_ms < 1 ||
        conf->idle_timeout_ms < 0 || conf->handshake_timeout_ms < 1 || conf->send_timeout_ms < 1 ||
        conf->max_request_partitions < 1 || conf->fetch_max_bytes < 1 || conf->max_queued_bytes < 1)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "kafka listener: invalid configuration");
    struct mq_kafka_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    srv->epoll_fd = srv->wake_fd = srv->spare_fd = -1;
    pthread_mutex_init(&srv->acl_lock, NULL);
    srv->store = store;
    srv->log = mq_store_log(store);
    srv->cat = mq_store_catalog(store);
    srv->conf = *conf;
    srv->read_mode = mq_log_mode(srv->log) == MQ_LOG_READ;
    srv->cluster_id = strdup(conf->cluster_id ? conf->cluster_id : "mqlog");
    if (!srv->cluster_id) {
        server_free(srv);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    srv->conf.cluster_id = srv->cluster_id;
    /* The copies in srv->listeners are what counts; conf's pointers may not outlive this call. */
    srv->conf.listen_host = srv->conf.advertised_host = NULL;
    srv->conf.listeners = NULL;
    srv->ip_nbuckets = 64;
    while (srv->ip_nbuckets < (size_t)conf->max_connections && srv->ip_nbuckets < 65536)
        srv->ip_nbuckets *= 2;
    srv->ip_buckets = calloc(srv->ip_nbuckets, sizeof *srv->ip_buckets);
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!srv->ip_buckets || srv->spare_fd < 0) {
        server_free(srv);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory or descriptors");
    }
    check_nofile(conf->max_connections);
    enum mq_err err = mq_kafka_groups_new(&conf->groups, mq_ksrv_on_join, mq_ksrv_on_sync, srv, &srv->groups);
    if (err != MQ_OK) {
        server_free(srv);
        return mq_errf(err, errstr, errstr_size, "kafka: %s", mq_strerror(err));
    }
    mq_kafka_groups_on_live(srv->groups, mq_ksrv_on_live);
    /* No member is connected yet: rows left by a daemon that was killed would only block resets. */
    if ((err = mq_catalog_groups_clear_live(srv->cat)) != MQ_OK && err != MQ_ERR_READONLY)
        MQ_WARN("kafka: clearing the catalog's live groups: %s (%s)", mq_strerror(err),
                mq_catalog_errmsg(srv->cat));
    if ((err = mq_ksrv_listeners_open(srv, conf, errstr, errstr_size)) != MQ_OK) {
        server_free(srv);
        return err;
    }
    if ((err = mq_ksrv_auth_init(srv)) != MQ_OK) {
        server_free(srv);
        return mq_errf(err, errstr, errstr_size, "kafka: %s", mq_strerror(err));
    }
    srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->epoll_fd < 0 || srv->wake_fd < 0) {
        err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka: epoll/eventfd: %s",
                      MQ_STRERROR(errno));
        server_free(srv);
        return err;
    }
    struct epoll_event w = {.events = EPOLLIN, .data.ptr = &srv->wake_fd};
    int rc = epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->wake_fd, &w);
    for (size_t i = 0; i < srv->n_listeners && rc == 0; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &srv->listeners[i]};
        rc = epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listeners[i].fd, &e);
    }
    if (rc != 0) {
        err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka: epoll_ctl: %s",
                      MQ_STRERROR(errno));
        server_free(srv);
        return err;
    }
    if (conf->install_durable_cb && !srv->read_mode) {
        mq_log_set_durable_cb(srv->log, mq_ksrv_on_durable, srv);
        srv->durable_cb_set = true;
    }
    srv->acl = conf->acl; /* in force before the first request */
    srv->conf.acl = NULL;
    rc = pthread_create(&srv->thread, NULL, loop_main, srv);
    if (rc != 0) {
        srv->acl = NULL; /* on failure the caller still owns the rules (server.h) */
        if (srv->durable_cb_set)
            mq_log_set_durable_cb(srv->log, NULL, NULL); /* returns once no call is running */
        server_free(srv);
        return mq_errf(mq_err_from_errno(rc), errstr, errstr_size, "kafka: pthread_create: %s",
                       MQ_STRERROR(rc));
    }
    srv->thread_started = true;
    pthread_setname_np(srv->thread, "mqlog-kafka"); /* for top -H and /proc */
    for (size_t i = 0; i < srv->n_listeners; i++) {
        const struct mq_ksrv_listener *l = &srv->listeners[i];
        MQ_INFO("kafka: listening on %s:%d (advertised as %s:%d)%s%s", l->listen_host, l->port,
                l->advertised_host, l->advertised_port,
                !l->tls                  ? ""
                : l->require_client_cert ? " with TLS and client certificates"
                                         : " with TLS",
                l->sasl_mechs ? ", SASL required" : "");
    }
    *srvp = srv;
    return MQ_OK;
}

void mq_kafka_server_stop(struct mq_kafka_server *srv)
{
    if (!srv)
        return;
    /* After this no durable callback is running or will start (log.h), so srv may be freed below. */
    if (srv->durable_cb_set)
        mq_log_set_durable_cb(srv->log, NULL, NULL);
    atomic_store(&srv->stop, true);
    uint64_t one = 1;
    ssize_t w = write(srv->wake_fd, &one, sizeof one);
    (void)w;
    if (srv->thread_started)
        pthread_join(srv->thread, NULL);
    server_free(srv);
}
