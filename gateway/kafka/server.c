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
 * with send() and sendfile() as the socket accepts them.
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
#include "util/diag.h"

#define IN_CHUNK      (64 * 1024) /* read ahead this much input beyond the current request */
#define OUT_ITEMS_MAX 8           /* stop handling requests while this many responses are unsent */

/* ---- small helpers ---- */

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

void mq_ksrv_req_free(struct req *r)
{
    if (!r)
        return;
    mq_kafka_fetch_req_release(&r->fetch);
    mq_kafka_arena_free(&r->arena);
    free(r->body);
    free(r);
}

/* ---- responses ---- */

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
        mq_ksrv_fetch_tick(srv, now, woken);
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
        mq_log_set_durable_cb(srv->log, mq_ksrv_on_durable, srv);
        srv->durable_cb_set = true;
    }
    int rc = pthread_create(&srv->thread, NULL, loop_main, srv);
    if (rc != 0) {
        if (srv->durable_cb_set)
            mq_log_set_durable_cb(srv->log, NULL, NULL); /* returns once no call is running */
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
