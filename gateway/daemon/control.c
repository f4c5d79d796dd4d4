/*
 * control.c - mqlogd's control socket (control/control.h): `mqlog create`, `produce`, `topic alter` and
 * `topic delete` beside the running daemon. The daemon holds the data directory's writer lock, so these
 * commands cannot open it; they send their request here and the daemon applies it on its own writer, with
 * the same store functions the tool calls without a daemon, and tells ingest at once (a raised partition
 * count is used by the next message).
 *
 * Why a socket rather than the catalog alone: produce needs the writer (records go through the log), and a
 * request applied by the daemon is in force when the command returns, with no polling.
 *
 * One thread serves one connection at a time: these are an operator's commands, not traffic. Whatever a
 * client sends, the daemon stays up: a line is at most MQ_CTL_LINE_MAX bytes, every field is checked by
 * mq_ctl_parse(), a malformed request gets an error reply and its connection is closed, and a client that
 * stays silent is dropped after MQ_CTL_IDLE_MS. Only the data directory's owner (or root) may connect: the
 * socket file is mode 0600 and the peer's uid is checked too.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/control.h"
#include "daemon/daemon.h"
#include "store/store.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_CTL_IDLE_MS 30000 /* a connection silent this long is closed */
#define MQ_CTL_TICK_MS 500   /* how often a wait looks at the stop flag */

struct mq_ctl_server {
    struct mq_store *store;
    struct mq_ingest *ingest;
    char *path; /* the socket file, removed at stop */
    int lfd;
    pthread_t thread;
    atomic_bool stop;
};

/* One partition a produce request wrote to. */
struct mq_ctl_out {
    struct mq_part *part;
    int64_t first, last, count;
};

/* A connection: its input buffer and, during a produce request, what the records share. */
struct mq_ctl_conn {
    struct mq_ctl_server *srv;
    int fd;
    char *buf;
    size_t used;
    char *
        prod_bytes; /* a copy of the produce request's key and headers, which prod's byte fields point into */
    struct mq_ctl_req prod;
    bool producing;
    struct mq_header headers[MQ_CTL_HEADERS_MAX];
    struct mq_ctl_out *out; /* [partition] */
    int32_t nout;
};

static bool mq_ctl_reply(struct mq_ctl_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool mq_ctl_reply(struct mq_ctl_conn *c, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += (size_t)w;
    }
    return true;
}

static void mq_ctl_produce_reset(struct mq_ctl_conn *c)
{
    free(c->prod_bytes);
    c->prod_bytes = NULL;
    free(c->out);
    c->out = NULL;
    c->nout = 0;
    c->producing = false;
}

/* Copies b to *at and points b there. */
static void mq_ctl_keep(struct mq_ctl_bytes *b, char **at)
{
    if (!b->p)
        return;
    memcpy(*at, b->p, b->n);
    b->p = *at;
    *at += b->n;
}

/* "produce": the topic must exist; its key and headers are copied, as the next lines replace the line. */
static bool mq_ctl_produce_begin(struct mq_ctl_conn *c, const struct mq_ctl_req *req)
{
    struct mq_catalog_topic t;
    enum mq_err err = mq_store_topic_get(c->srv->store, req->topic, &t);
    if (err != MQ_OK) {
        mq_ctl_reply(c, "error %s", err == MQ_ERR_NOENT ? "unknown topic" : mq_strerror(err));
        return false;
    }
    mq_ctl_produce_reset(c);
    c->out = calloc((size_t)t.partitions, sizeof *c->out);
    if (!c->out) {
        mq_ctl_reply(c, "error out of memory");
        return false;
    }
    c->nout = t.partitions;
    c->prod = *req;
    size_t total = req->key.n + 1;
    for (int i = 0; i < req->nheaders; i++)
        total += req->hkey[i].n + req->hvalue[i].n;
    char *at = c->prod_bytes = malloc(total);
    if (!at) {
        mq_ctl_reply(c, "error out of memory");
        return false;
    }
    mq_ctl_keep(&c->prod.key, &at);
    for (int i = 0; i < req->nheaders; i++) {
        mq_ctl_keep(&c->prod.hkey[i], &at);
        mq_ctl_keep(&c->prod.hvalue[i], &at);
    }
    for (int i = 0; i < req->nheaders; i++)
        c->headers[i] = (struct mq_header){.key = c->prod.hkey[i].p,
                                           .key_len = (int32_t)c->prod.hkey[i].n,
                                           .value = c->prod.hvalue[i].p,
                                           .value_len = (int32_t)c->prod.hvalue[i].n};
    c->producing = true;
    return true;
}

static bool mq_ctl_record(struct mq_ctl_conn *c, const struct mq_ctl_req *req)
{
    if (!c->producing) {
        mq_ctl_reply(c, "error a record outside a produce request");
        return false;
    }
    if (req->partition >= c->nout) {
        mq_ctl_reply(c, "error unknown partition %d of topic %s (it has %d)", (int)req->partition,
                     c->prod.topic, (int)c->nout);
        return false;
    }
    struct mq_ctl_out *o = &c->out[req->partition];
    enum mq_err err = MQ_OK;
    if (!o->part)
        err = mq_store_part(c->srv->store, c->prod.topic, req->partition, &o->part);
    struct mq_record rec = {
        .timestamp = mq_now_ms(),
        .key = c->prod.key.p,
        .key_len = c->prod.key.p ? (int32_t)c->prod.key.n : -1,
        .value = req->value.p,
        .value_len = (int32_t)req->value.n,
        .headers = c->prod.nheaders ? c->headers : NULL,
        .header_count = c->prod.nheaders,
    };
    int64_t off = -1;
    if (err == MQ_OK)
        err = mq_part_produce(o->part, &rec, &off);
    /* as the tool does alone: write out what is pending (backpressure, or a full batch), then once more */
    if (err == MQ_ERR_FULL || err == MQ_ERR_RANGE) {
        enum mq_err ferr = mq_part_flush(o->part);
        err = ferr != MQ_OK ? ferr : mq_part_produce(o->part, &rec, &off);
    }
    if (err != MQ_OK) {
        mq_ctl_reply(c, "error appending to %s-%d failed: %s%s", c->prod.topic, (int)req->partition,
                     mq_strerror(err), err == MQ_ERR_RANGE ? " (record too large)" : "");
        return false;
    }
    if (!o->count++)
        o->first = off;
    o->last = off;
    return true;
}

/* "end": every record of the request made durable, then the offsets. */
static bool mq_ctl_produce_end(struct mq_ctl_conn *c)
{
    if (!c->producing) {
        mq_ctl_reply(c, "error end outside a produce request");
        return false;
    }
    char text[2048] = "ok";
    size_t used = 2;
    for (int32_t p = 0; p < c->nout; p++) {
        struct mq_ctl_out *o = &c->out[p];
        if (!o->count)
            continue;
        enum mq_err err = mq_part_flush(o->part);
        if (err != MQ_OK) {
            mq_ctl_reply(c, "error flushing %s-%d: %s", c->prod.topic, (int)p, mq_strerror(err));
            return false;
        }
        int n = snprintf(text + used, sizeof text - used, " %d:%" PRId64 ":%" PRId64 ":%" PRId64, (int)p,
                         o->first, o->last, o->count);
        if (n > 0 && (size_t)n < sizeof text - used)
            used += (size_t)n;
    }
    mq_ctl_produce_reset(c);
    return mq_ctl_reply(c, "%s", text);
}

static bool mq_ctl_create(struct mq_ctl_conn *c, const struct mq_ctl_req *req)
{
    struct mq_retention ret = {.ms = req->retention_ms, .bytes = req->retention_bytes};
    char why[512] = "";
    enum mq_err err =
        mq_store_topic_create(c->srv->store, req->topic, req->partitions, &ret, why, sizeof why);
    if (err != MQ_OK)
        return mq_ctl_reply(c, "error %s", why[0] ? why : mq_strerror(err));
    MQ_NOTICE("control: created log topic %s with %d partition%s", req->topic, (int)req->partitions,
              req->partitions == 1 ? "" : "s");
    return mq_ctl_reply(c, "ok created topic %s with %d partition%s", req->topic, (int)req->partitions,
                        req->partitions == 1 ? "" : "s");
}

static bool mq_ctl_alter(struct mq_ctl_conn *c, const struct mq_ctl_req *req)
{
    char msg[512] = "";
    enum mq_err err = mq_store_topic_alter(c->srv->store, req->topic, req->partitions, req->retention_ms,
                                           req->retention_bytes, msg, sizeof msg);
    if (err != MQ_OK)
        return mq_ctl_reply(c, "error %s", msg[0] ? msg : mq_strerror(err));
    mq_ingest_topic_refresh(c->srv->ingest, req->topic);
    MQ_NOTICE("control: altered log topic %s", msg + strlen("topic "));
    /* the configuration stays the description of a topic it maps: say where, after a tab (a note) */
    char where[512];
    if ((req->retention_ms >= 0 || req->retention_bytes >= 0) &&
        mq_ingest_topic_mapping(c->srv->ingest, req->topic, where, sizeof where))
        return mq_ctl_reply(c,
                            "ok %s\tthe mapping at %s writes to %s: its retention applies again at the next "
                            "reload or restart (edit it there to keep this one)",
                            msg, where, req->topic);
    return mq_ctl_reply(c, "ok %s", msg);
}

static bool mq_ctl_delete(struct mq_ctl_conn *c, const struct mq_ctl_req *req)
{
    struct mq_catalog_topic t;
    enum mq_err err = mq_store_topic_get(c->srv->store, req->topic, &t);
    if (err == MQ_OK)
        err = mq_ingest_topic_delete(c->srv->ingest, req->topic);
    if (err == MQ_ERR_NOENT)
        return mq_ctl_reply(c, "error unknown topic '%s'", req->topic);
    if (err != MQ_OK)
        return mq_ctl_reply(c, "error deleting topic %s: %s", req->topic, mq_strerror(err));
    MQ_NOTICE("control: deleted log topic %s (%d partition%s)", req->topic, (int)t.partitions,
              t.partitions == 1 ? "" : "s");
    return mq_ctl_reply(c, "ok topic %s: deleted (%d partition%s)", req->topic, (int)t.partitions,
                        t.partitions == 1 ? "" : "s");
}

/* Handles one request line (its "\n" removed). False: close the connection. */
static bool mq_ctl_handle(struct mq_ctl_conn *c, char *line, size_t len)
{
    struct mq_ctl_req req;
    char why[128] = "";
    if (mq_ctl_parse(line, len, &req, why, sizeof why) != MQ_OK) {
        MQ_WARN("control: refused a malformed request: %s", why);
        mq_ctl_reply(c, "error malformed request: %s", why);
        return false;
    }
    if (c->producing && req.verb != MQ_CTL_RECORD && req.verb != MQ_CTL_END) {
        mq_ctl_reply(c, "error a produce request ends with end");
        return false;
    }
    switch (req.verb) {
    case MQ_CTL_CREATE:
        return mq_ctl_create(c, &req);
    case MQ_CTL_ALTER:
        return mq_ctl_alter(c, &req);
    case MQ_CTL_DELETE:
        return mq_ctl_delete(c, &req);
    case MQ_CTL_PRODUCE:
        return mq_ctl_produce_begin(c, &req);
    case MQ_CTL_RECORD:
        return mq_ctl_record(c, &req);
    case MQ_CTL_END:
        return mq_ctl_produce_end(c);
    }
    return false;
}

/* Reads and handles the lines of one connection until it closes, errs, idles or the daemon stops. */
static void mq_ctl_serve(struct mq_ctl_server *srv, int fd)
{
    struct mq_ctl_conn c = {.srv = srv, .fd = fd, .buf = malloc(MQ_CTL_LINE_MAX)};
    int64_t last = mq_mono_ms();
    size_t start = 0; /* buf[start, used) is not handled yet */
    while (c.buf && !atomic_load(&srv->stop)) {
        char *nl = memchr(c.buf + start, '\n', c.used - start);
        if (nl) {
            size_t len = (size_t)(nl - (c.buf + start));
            *nl = '\0';
            bool go_on = mq_ctl_handle(&c, c.buf + start, len);
            start += len + 1;
            if (!go_on)
                break;
            last = mq_mono_ms();
            continue;
        }
        /* no whole line left: the partial one moves to the front before more is read */
        if (start > 0) {
            memmove(c.buf, c.buf + start, c.used - start);
            c.used -= start;
            start = 0;
        }
        if (c.used == MQ_CTL_LINE_MAX) {
            MQ_WARN("control: refused a request longer than %d bytes", MQ_CTL_LINE_MAX);
            mq_ctl_reply(&c, "error malformed request: longer than %d bytes", MQ_CTL_LINE_MAX);
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, MQ_CTL_TICK_MS);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0) {
            if (mq_mono_ms() - last > MQ_CTL_IDLE_MS)
                break;
            continue;
        }
        ssize_t n = recv(fd, c.buf + c.used, MQ_CTL_LINE_MAX - c.used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        c.used += (size_t)n;
        last = mq_mono_ms();
    }
    if (c.producing)
        MQ_WARN("control: a produce request to %s ended without its end: the records sent are stored",
                c.prod.topic);
    mq_ctl_produce_reset(&c);
    free(c.buf);
    close(fd);
}

/* Whether the peer of fd runs as the daemon's user or as root. */
static bool mq_ctl_peer_ok(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    return cred.uid == geteuid() || cred.uid == 0;
}

static void *mq_ctl_main(void *opaque)
{
    struct mq_ctl_server *srv = opaque;
    while (!atomic_load(&srv->stop)) {
        struct pollfd pfd = {.fd = srv->lfd, .events = POLLIN};
        int rc = poll(&pfd, 1, MQ_CTL_TICK_MS);
        if (rc <= 0)
            continue;
        int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                mq_sleep_ms(MQ_CTL_TICK_MS); /* out of descriptors: let the rest of the daemon close some */
            continue;
        }
        if (!mq_ctl_peer_ok(fd)) {
            MQ_WARN("control: refused a connection from another user");
            close(fd);
            continue;
        }
        mq_ctl_serve(srv, fd);
    }
    return NULL;
}

enum mq_err mq_ctl_server_start(struct mq_store *store, struct mq_ingest *ingest, struct mq_ctl_server **out,
                                char *errstr, size_t errstr_size)
{
    const char *dir = mq_store_dir(store);
    struct mq_ctl_server *srv = calloc(1, sizeof *srv);
    size_t plen = strlen(dir) + sizeof "/" MQ_CTL_SOCKET;
    if (!srv || !(srv->path = malloc(plen))) {
        free(srv);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    snprintf(srv->path, plen, "%s/" MQ_CTL_SOCKET, dir);
    srv->store = store;
    srv->ingest = ingest;
    srv->lfd = mq_ctl_listen(dir);
    if (srv->lfd < 0) {
        int e = errno;
        free(srv->path);
        free(srv);
        return mq_errf(mq_err_from_errno(e), errstr, errstr_size, "control socket %s/" MQ_CTL_SOCKET ": %s",
                       dir, MQ_STRERROR(e));
    }
    int rc = pthread_create(&srv->thread, NULL, mq_ctl_main, srv);
    if (rc != 0) {
        close(srv->lfd);
        unlink(srv->path);
        free(srv->path);
        free(srv);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "control socket: cannot start its thread: %s",
                       MQ_STRERROR(rc));
    }
    *out = srv;
    return MQ_OK;
}

void mq_ctl_server_stop(struct mq_ctl_server *srv)
{
    if (!srv)
        return;
    atomic_store(&srv->stop, true);
    pthread_join(srv->thread, NULL);
    close(srv->lfd);
    unlink(srv->path);
    free(srv->path);
    free(srv);
}
