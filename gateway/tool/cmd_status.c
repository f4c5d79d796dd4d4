/*
 * cmd_status.c - `mqlog status`: a running mqlogd's status, read from its HTTP endpoint (http.listen) and
 * shown as terminal tables (brokers, rates per mapping, topics, consumer-group lag, forwarders), or as the
 * daemon's own JSON document. The exit status says whether the daemon is ready, so that monitoring scripts
 * can use it.
 *
 * One GET of /status.json: that document carries the readiness verdict and its reasons (the same that
 * /readyz answers, from the same snapshot), so the tables and the exit status cannot disagree.
 *
 * The HTTP client is a plain HTTP/1.1 GET over a TCP socket rather than libcurl, which mqlog does not link:
 * one request to a daemon on this host or a management network, no TLS, no redirects, no proxies. It
 * accepts a Content-Length, a chunked or a closed-connection body.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "tool/json.h"
#include "tool/tool.h"
#include "util/parse.h"
#include "util/url.h"

#define MQ_STATUS_TIMEOUT_MS 5000        /* connect, send and receive, in all */
#define MQ_STATUS_MAX_BODY   (64u << 20) /* a status document is kilobytes; this is a sanity bound */
#define MQ_STATUS_HTTP_PORT  80          /* a URL without a port */

static void mq_status_help(void)
{
    printf(
        "usage: mqlog status (-c FILE | --url URL) [--json]\n"
        "\n"
        "Shows a running mqlogd's status from its HTTP endpoint (the configuration's http.listen): whether\n"
        "it is ready and why not, its brokers and their connections, the message rate per mapping, the\n"
        "topics with their size and oldest record (the retention horizon), consumer-group lag and the\n"
        "forwarders. Reads GET /status.json; needs no access to the data directory.\n"
        "\n"
        "  -c, --config FILE   the daemon's configuration: its http.listen address (a wildcard address\n"
        "                      such as 0.0.0.0 is reached on loopback)\n"
        "      --url URL       the endpoint instead, e.g. http://127.0.0.1:9108\n"
        "  -j, --json          print the daemon's status document (/status.json) as it came\n"
        "  -h, --help          this text\n"
        "\n"
        "Exit status: 0 ready, 4 reachable but not ready (the reasons are printed), 1 the daemon could not\n"
        "be reached or answered badly, 2 usage error.\n");
}

/* ---- the HTTP GET ---- */

struct mq_status_resp {
    int status;
    char *body; /* NUL-terminated */
    size_t len;
};

static int64_t mq_status_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes. Returns false with errno set on timeout. */
static bool mq_status_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mq_status_mono_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return false;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/* A non-blocking TCP connection to host:port, or -1 with why. */
static int mq_status_connect(const char *host, int port, int64_t deadline, char *why, size_t why_size)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        mq_clause(gai_strerror(rc), why, why_size);
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            socklen_t len = sizeof err;
            err = errno;
            if (err == EINPROGRESS && mq_status_wait(fd, POLLOUT, deadline))
                err = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? err : errno;
            else if (err == EINPROGRESS)
                err = errno;
            if (err != 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, why_size, "%s", MQ_STRERROR(err ? err : ECONNREFUSED));
    return fd;
}

/* Decodes a chunked body in place (RFC 9112 7.1: size lines, data, an empty last chunk); false when
 * malformed or cut short. */
static bool mq_status_dechunk(char *body, size_t *len)
{
    char *in = body, *end = body + *len, *out = body;
    for (;;) {
        char *eol = memmem(in, (size_t)(end - in), "\r\n", 2);
        if (!eol)
            return false;
        char *endp;
        errno = 0;
        unsigned long long n = strtoull(in, &endp, 16);
        if (endp == in || errno || (*endp != '\r' && *endp != ';'))
            return false;
        in = eol + 2;
        if (n == 0) {
            *len = (size_t)(out - body);
            return true;
        }
        if (n > (unsigned long long)(end - in) || (size_t)(end - in) - n < 2)
            return false;
        memmove(out, in, n);
        out += n;
        in += n + 2; /* the CRLF after the data */
    }
}

/* GET path from host:port into *resp (the caller frees resp->body). False with why when there is no
 * HTTP answer. */
static bool mq_status_get(const char *host, int port, const char *path, struct mq_status_resp *resp,
                          char *why, size_t why_size)
{
    int64_t deadline = mq_status_mono_ms() + MQ_STATUS_TIMEOUT_MS;
    memset(resp, 0, sizeof *resp);
    int fd = mq_status_connect(host, port, deadline, why, why_size);
    if (fd < 0)
        return false;
    bool v6 = strchr(host, ':') != NULL;
    char req[1024];
    int rlen = snprintf(req, sizeof req,
                        "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: mqlog-status\r\n"
                        "Accept: application/json\r\nConnection: close\r\n\r\n",
                        path, v6 ? "[" : "", host, v6 ? "]" : "", port);
    size_t sent = 0;
    while (sent < (size_t)rlen) {
        ssize_t n = send(fd, req + sent, (size_t)rlen - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!mq_status_wait(fd, POLLOUT, deadline))
                break;
        } else {
            break;
        }
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool eof = false;
    while (sent == (size_t)rlen && !eof) {
        if (cap - len < 16384) {
            if (cap > MQ_STATUS_MAX_BODY) {
                errno = EFBIG;
                break;
            }
            char *nb = realloc(buf, cap ? cap * 2 : 65536);
            if (!nb)
                break;
            buf = nb;
            cap = cap ? cap * 2 : 65536;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n > 0)
            len += (size_t)n;
        else if (n == 0)
            eof = true;
        else if ((errno != EAGAIN && errno != EINTR) || !mq_status_wait(fd, POLLIN, deadline))
            break;
    }
    int err = errno;
    close(fd);
    if (sent != (size_t)rlen || !eof) {
        snprintf(why, why_size, "%s", MQ_STRERROR(err ? err : EIO));
        free(buf);
        return false;
    }
    buf[len] = '\0';
    /* status line, headers, body */
    char *hend = strstr(buf, "\r\n\r\n");
    int major, minor, status;
    if (!hend || sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        snprintf(why, why_size, "the answer is not HTTP");
        free(buf);
        return false;
    }
    *hend = '\0';
    char *body = hend + 4;
    size_t blen = len - (size_t)(body - buf);
    bool chunked = false;
    int64_t clen = -1;
    for (char *line = strstr(buf, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            char *v = line + 15, *e = strstr(v, "\r\n");
            char num[32];
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            while (vl && *v == ' ') {
                v++;
                vl--;
            }
            snprintf(num, sizeof num, "%.*s", (int)vl, v);
            if (mq_parse_int64(num, 0, INT64_MAX, &clen) != MQ_OK)
                clen = -1;
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
            char *e = strstr(line, "\r\n");
            size_t ll = e ? (size_t)(e - line) : strlen(line);
            chunked = memmem(line, ll, "chunked", 7) != NULL;
        }
    }
    if (chunked && !mq_status_dechunk(body, &blen)) {
        snprintf(why, why_size, "a malformed chunked answer");
        free(buf);
        return false;
    }
    if (!chunked && clen >= 0) {
        if ((size_t)clen > blen) {
            snprintf(why, why_size, "the answer was cut short (%zu of %" PRId64 " bytes)", blen, clen);
            free(buf);
            return false;
        }
        blen = (size_t)clen;
    }
    memmove(buf, body, blen);
    buf[blen] = '\0';
    resp->status = status;
    resp->body = buf;
    resp->len = blen;
    return true;
}

/* ---- where the endpoint is ---- */

/* host:port from --url URL ("http://HOST[:PORT][/]"); false after a usage error. */
static bool mq_status_from_url(const char *url, char **host, int *port)
{
    const char *p = url;
    if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://")) {
        mq_tool_usage_error("status", "--url %s: only http:// is served by mqlogd", url);
        return false;
    }
    char hostport[512];
    size_t n = strcspn(p, "/");
    if (n >= sizeof hostport || (p[n] == '/' && p[n + 1] != '\0')) {
        mq_tool_usage_error("status", "--url %s: give the endpoint only (http://HOST:PORT), no path", url);
        return false;
    }
    memcpy(hostport, p, n);
    hostport[n] = '\0';
    char why[256];
    *port = MQ_STATUS_HTTP_PORT;
    if (mq_url_hostport(hostport, true, 1, 65535, host, port, NULL, why, sizeof why) != MQ_OK) {
        mq_tool_usage_error("status", "--url %s: %s", url, why);
        return false;
    }
    return true;
}

static void mq_status_report(void *opaque, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "%s\n", msg);
}

/* host:port from the configuration's http.listen; returns an exit status (MQ_EXIT_OK: found). */
static int mq_status_from_config(const char *path, char **host, int *port)
{
    struct mq_config *cfg = NULL;
    if (mq_config_load(path, &cfg, mq_status_report, NULL) != MQ_OK)
        return MQ_EXIT_FAIL;
    int rc = MQ_EXIT_OK;
    const struct mq_config_http *h = &cfg->http;
    if (!h->listen) {
        mq_tool_error("%s has no http.listen, so mqlogd serves no status (add http: {listen: "
                      "127.0.0.1:9108})",
                      path);
        rc = MQ_EXIT_FAIL;
    } else if (h->listen_port == 0) {
        mq_tool_error("%s: http.listen %s picks a free port at each start: give it with --url", path,
                      h->listen);
        rc = MQ_EXIT_FAIL;
    } else {
        /* a wildcard listener is reached on loopback */
        const char *hs = h->listen_host;
        if (!hs[0] || strcmp(hs, "0.0.0.0") == 0)
            hs = "127.0.0.1";
        else if (strcmp(hs, "::") == 0)
            hs = "::1";
        *port = h->listen_port;
        if (!(*host = strdup(hs))) {
            mq_tool_error("out of memory");
            rc = MQ_EXIT_FAIL;
        }
    }
    mq_config_free(cfg);
    return rc;
}

/* ---- the tables ---- */

#define MQ_TAB_MAX_COLS 10

struct mq_tab {
    size_t ncols, nrows;
    const char *head[MQ_TAB_MAX_COLS];
    bool right[MQ_TAB_MAX_COLS]; /* numbers align right */
    char **cells;                /* nrows * ncols, malloc'd */
};

/* A table with the headers given; a header starting with '>' is a right-aligned column. */
static void mq_tab_init(struct mq_tab *t, const char *const *head, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    for (size_t c = 0; c < ncols; c++) {
        t->right[c] = head[c][0] == '>';
        t->head[c] = head[c] + t->right[c];
    }
}

/* Appends a row of ncols cells (copied). */
static void mq_tab_row(struct mq_tab *t, const char *const *cells)
{
    char **n = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *n);
    if (!n)
        return;
    t->cells = n;
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = strdup(cells[c] ? cells[c] : "-");
    t->nrows++;
}

static void mq_tab_print(struct mq_tab *t)
{
    int w[MQ_TAB_MAX_COLS];
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = (int)strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            const char *s = t->cells[r * t->ncols + c];
            if (s && (int)strlen(s) > w[c])
                w[c] = (int)strlen(s);
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        char line[4096];
        int n = 0;
        for (size_t c = 0; c < t->ncols && n < (int)sizeof line; c++) {
            const char *s = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
            n += snprintf(line + n, sizeof line - (size_t)n, "%s%*s", c ? "  " : "",
                          t->right[c] ? w[c] : -w[c], s ? s : "-");
        }
        if (n >= (int)sizeof line)
            n = (int)sizeof line - 1;
        while (n > 0 && line[n - 1] == ' ')
            n--;
        printf("%.*s\n", n, line);
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* ---- formatting ---- */

static char *mq_fmt_int(char *buf, size_t size, int64_t v)
{
    snprintf(buf, size, "%" PRId64, v);
    return buf;
}

static char *mq_fmt_bytes(char *buf, size_t size, int64_t v)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (v < 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    double d = (double)v;
    size_t u = 0;
    while (d >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRId64 " B", v);
    else
        snprintf(buf, size, "%.1f %s", d, unit[u]);
    return buf;
}

/* A duration in ms as "3d 4h", "2h 13m", "5m 10s" or "12.3s" (a zero second unit left out: "7d");
 * "-" when negative. */
static char *mq_fmt_dur(char *buf, size_t size, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *name;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (ms < 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    if (ms < 60000) {
        snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
        return buf;
    }
    size_t u = 0;
    while (ms < units[u].ms)
        u++;
    int64_t small = ms % units[u].ms / units[u + 1].ms;
    if (small)
        snprintf(buf, size, "%" PRId64 "%s %" PRId64 "%s", ms / units[u].ms, units[u].name, small,
                 units[u + 1].name);
    else
        snprintf(buf, size, "%" PRId64 "%s", ms / units[u].ms, units[u].name);
    return buf;
}

static char *mq_fmt_rate(char *buf, size_t size, double per_s)
{
    if (per_s < 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.1f/s", per_s);
    return buf;
}

/* ---- the report ---- */

static void mq_status_brokers(const struct mq_json *doc)
{
    const struct mq_json *brokers = mq_json_get(doc, "brokers");
    if (mq_json_len(brokers) == 0)
        return;
    static const char *const head[] = {"BROKER",       "URL",       ">CONNECTED", ">CONNECTS",
                                       ">DISCONNECTS", ">MESSAGES", ">PAYLOAD",   ">PAUSED"};
    struct mq_tab t;
    mq_tab_init(&t, head, 8);
    for (size_t i = 0; i < mq_json_len(brokers); i++) {
        const struct mq_json *b = mq_json_at(brokers, i);
        char conn[48], connects[24], disc[24], msgs[24], bytes[32], paused[32];
        snprintf(conn, sizeof conn, "%" PRId64 "/%" PRId64, mq_json_int(b, "connected", 0),
                 mq_json_int(b, "sessions", 0));
        const char *row[] = {mq_json_str(b, "name", "?"),
                             mq_json_str(b, "url", "-"),
                             conn,
                             mq_fmt_int(connects, sizeof connects, mq_json_int(b, "connects", 0)),
                             mq_fmt_int(disc, sizeof disc, mq_json_int(b, "disconnects", 0)),
                             mq_fmt_int(msgs, sizeof msgs, mq_json_int(b, "messages", 0)),
                             mq_fmt_bytes(bytes, sizeof bytes, mq_json_int(b, "payload_bytes", 0)),
                             mq_fmt_dur(paused, sizeof paused, mq_json_int(b, "paused_ms", 0))};
        mq_tab_row(&t, row);
    }
    putchar('\n');
    mq_tab_print(&t);
}

static void mq_status_mappings(const struct mq_json *doc)
{
    const struct mq_json *maps = mq_json_get(doc, "mappings");
    if (mq_json_len(maps) == 0)
        return;
    static const char *const head[] = {"MAPPING", ">STORED", ">RATE"};
    struct mq_tab t;
    mq_tab_init(&t, head, 3);
    for (size_t i = 0; i < mq_json_len(maps); i++) {
        const struct mq_json *m = mq_json_at(maps, i);
        char rec[24], rate[32];
        const char *row[] = {mq_json_str(m, "name", "?"),
                             mq_fmt_int(rec, sizeof rec, mq_json_int(m, "records", 0)),
                             mq_fmt_rate(rate, sizeof rate, mq_json_num(m, "records_per_s", -1))};
        mq_tab_row(&t, row);
    }
    putchar('\n');
    mq_tab_print(&t);
}

static void mq_status_topics(const struct mq_json *doc, int64_t now_ms)
{
    const struct mq_json *topics = mq_json_get(doc, "topics");
    if (mq_json_len(topics) == 0)
        return;
    static const char *const head[] = {"TOPIC",      ">PARTITIONS",   ">RECORDS", ">SIZE",
                                       ">RETENTION", ">RETAIN_BYTES", ">OLDEST"};
    struct mq_tab t;
    mq_tab_init(&t, head, 7);
    for (size_t i = 0; i < mq_json_len(topics); i++) {
        const struct mq_json *tp = mq_json_at(topics, i);
        char parts[24], rec[24], size[32], ret[32], retb[32], oldest[32];
        int64_t rms = mq_json_int(tp, "retention_ms", -1), rb = mq_json_int(tp, "retention_bytes", -1);
        int64_t old = mq_json_int(tp, "oldest_timestamp_ms", -1);
        bool per_part = mq_json_get(tp, "records") != NULL; /* only with http.partition_metrics */
        const char *row[] = {
            mq_json_str(tp, "name", "?"),
            mq_fmt_int(parts, sizeof parts, mq_json_int(tp, "partition_count", 0)),
            per_part ? mq_fmt_int(rec, sizeof rec, mq_json_int(tp, "records", 0)) : NULL,
            per_part ? mq_fmt_bytes(size, sizeof size, mq_json_int(tp, "bytes", 0)) : NULL,
            rms <= 0 ? "forever" : mq_fmt_dur(ret, sizeof ret, rms),     /* 0: no time limit */
            rb <= 0 ? "unlimited" : mq_fmt_bytes(retb, sizeof retb, rb), /* 0: no size limit */
            /* the retention horizon: how far back the topic reaches now */
            old < 0 ? NULL : (mq_fmt_dur(oldest, sizeof oldest - 4, now_ms - old), strcat(oldest, " ago"))};
        mq_tab_row(&t, row);
    }
    putchar('\n');
    mq_tab_print(&t);
}

/* Consumer-group lag summed per group and topic (the document has it per partition). */
static void mq_status_groups(const struct mq_json *doc)
{
    const struct mq_json *groups = mq_json_get(doc, "groups");
    size_t n = mq_json_len(groups);
    if (n == 0)
        return;
    static const char *const head[] = {"GROUP", "TOPIC", ">PARTITIONS", ">UNCOMMITTED", ">LAG"};
    struct mq_tab t;
    mq_tab_init(&t, head, 5);
    bool *done = calloc(n, sizeof *done);
    for (size_t i = 0; done && i < n; i++) {
        if (done[i])
            continue;
        const struct mq_json *g = mq_json_at(groups, i);
        const char *group = mq_json_str(g, "group", "?"), *topic = mq_json_str(g, "topic", "?");
        int64_t parts = 0, never = 0, lag = 0;
        for (size_t j = i; j < n; j++) {
            const struct mq_json *h = mq_json_at(groups, j);
            if (strcmp(mq_json_str(h, "group", "?"), group) != 0 ||
                strcmp(mq_json_str(h, "topic", "?"), topic) != 0)
                continue;
            done[j] = true;
            parts++;
            never += mq_json_int(h, "committed", -1) < 0;
            lag += mq_json_int(h, "lag", 0);
        }
        char p[24], u[24], l[24];
        const char *row[] = {group, topic, mq_fmt_int(p, sizeof p, parts), mq_fmt_int(u, sizeof u, never),
                             mq_fmt_int(l, sizeof l, lag)};
        mq_tab_row(&t, row);
    }
    free(done);
    putchar('\n');
    mq_tab_print(&t);
}

static void mq_status_forwarders(const struct mq_json *doc)
{
    const struct mq_json *fwds = mq_json_get(doc, "forwarders");
    if (mq_json_len(fwds) == 0)
        return;
    static const char *const head[] = {"FORWARDER",  "STATE",        ">SENT", ">LAG_RECORDS",
                                       ">LAG_BYTES", ">LAG_SECONDS", "DETAIL"};
    struct mq_tab t;
    mq_tab_init(&t, head, 7);
    for (size_t i = 0; i < mq_json_len(fwds); i++) {
        const struct mq_json *f = mq_json_at(fwds, i);
        char sent[24], lr[24], lb[32], ls[32], detail[256];
        const char *text = mq_json_str(f, "state_text", "");
        snprintf(detail, sizeof detail, "%.*s", (int)strcspn(text, "\r\n"), text);
        snprintf(ls, sizeof ls, "%.1f", mq_json_num(f, "lag_seconds", 0));
        const char *row[] = {mq_json_str(f, "name", "?"),
                             mq_json_str(f, "state", "?"),
                             mq_fmt_int(sent, sizeof sent, mq_json_int(f, "records_sent", 0)),
                             mq_fmt_int(lr, sizeof lr, mq_json_int(f, "lag_records", 0)),
                             mq_fmt_bytes(lb, sizeof lb, mq_json_int(f, "lag_bytes", 0)),
                             ls,
                             detail[0] ? detail : "-"};
        mq_tab_row(&t, row);
    }
    putchar('\n');
    mq_tab_print(&t);
}

static void mq_status_print(const struct mq_json *doc, const char *where)
{
    bool ready = mq_json_bool(doc, "ready", false), healthy = mq_json_bool(doc, "healthy", false);
    int64_t now = mq_json_int(doc, "now_ms", 0), start = mq_json_int(doc, "start_time_ms", now);
    char up[32], b1[32], b2[32];
    printf("mqlogd %s at %s: %s, %s, up %s\n", mq_json_str(doc, "version", "?"), where,
           ready ? "ready" : "NOT READY", healthy ? "healthy" : "UNHEALTHY",
           mq_fmt_dur(up, sizeof up, now - start));
    const struct mq_json *nr = mq_json_get(doc, "not_ready");
    for (size_t i = 0; i < mq_json_len(nr); i++)
        printf("  not ready: %s\n", mq_json_at(nr, i)->type == MQ_JSON_STRING ? mq_json_at(nr, i)->s : "?");
    const struct mq_json *loops = mq_json_get(doc, "loops");
    for (size_t i = 0; !healthy && loops && loops->type == MQ_JSON_OBJECT && i < loops->n; i++)
        printf("  loop %s last turned %s ago\n", loops->kids[i].key,
               mq_fmt_dur(b1, sizeof b1, mq_json_int(&loops->kids[i], "age_ms", -1)));

    const struct mq_json *m = mq_json_get(doc, "messages"), *rej = mq_json_get(m, "rejected");
    int64_t rejected = 0;
    for (size_t i = 0; rej && rej->type == MQ_JSON_OBJECT && i < rej->n; i++)
        rejected += rej->kids[i].type == MQ_JSON_NUMBER ? rej->kids[i].i : 0;
    char rate[32];
    printf("messages: %s received; %" PRId64 " received, %" PRId64 " stored, %" PRId64 " unmatched, %" PRId64
           " rejected, %" PRId64 " pending\n",
           mq_fmt_rate(rate, sizeof rate, mq_json_num(m, "received_per_s", -1)),
           mq_json_int(m, "received", 0), mq_json_int(m, "stored", 0), mq_json_int(m, "unmatched", 0),
           rejected, mq_json_int(m, "pending", 0));
    const struct mq_json *st = mq_json_get(doc, "store");
    printf("store %s: %s on disk, %s free, %" PRId64 " partitions, %" PRId64 " records not yet durable\n",
           mq_json_str(st, "dir", "?"), mq_fmt_bytes(b1, sizeof b1, mq_json_int(st, "disk_bytes", -1)),
           mq_fmt_bytes(b2, sizeof b2, mq_json_int(st, "free_bytes", -1)), mq_json_int(st, "partitions", 0),
           mq_json_int(st, "durable_lag_records", 0));
    const struct mq_json *k = mq_json_get(doc, "kafka");
    if (k && k->type == MQ_JSON_OBJECT)
        printf("kafka endpoint: %" PRId64 " connections open, %" PRId64 " accepted, %s sent\n",
               mq_json_int(k, "connections", 0), mq_json_int(k, "accepted", 0),
               mq_fmt_bytes(b1, sizeof b1, mq_json_int(k, "sent_bytes", 0)));
    mq_status_brokers(doc);
    mq_status_mappings(doc);
    mq_status_topics(doc, now);
    mq_status_groups(doc);
    mq_status_forwarders(doc);
}

int mq_cmd_status(int argc, char **argv)
{
    enum { OPT_URL = 256 };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"url", required_argument, NULL, OPT_URL},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *url = NULL;
    bool json = false;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case OPT_URL:
            url = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            mq_status_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("status", argc, argv, c);
        }
    }
    if (optind < argc)
        return mq_tool_usage_error("status", "unexpected argument '%s'", argv[optind]);
    if (!config == !url)
        return mq_tool_usage_error("status", config ? "give -c FILE or --url URL, not both"
                                                    : "where is mqlogd? give -c FILE or --url URL");
    char *host = NULL;
    int port = 0;
    if (url && !mq_status_from_url(url, &host, &port))
        return MQ_EXIT_USAGE;
    if (config) {
        int rc = mq_status_from_config(config, &host, &port);
        if (rc != MQ_EXIT_OK)
            return rc;
    }
    char where[600], why[256];
    snprintf(where, sizeof where, "http://%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", port);
    struct mq_status_resp resp;
    if (!mq_status_get(host, port, "/status.json", &resp, why, sizeof why)) {
        mq_tool_error("cannot reach mqlogd at %s: %s (is it running, with http.listen set?)", where, why);
        free(host);
        return MQ_EXIT_FAIL;
    }
    free(host);
    int rc = MQ_EXIT_FAIL;
    struct mq_json *doc = NULL;
    if (resp.status != 200) {
        mq_tool_error("%s/status.json answered HTTP %d: %.200s", where, resp.status, resp.body);
    } else if (!mq_json_parse(resp.body, resp.len, &doc, why, sizeof why) || doc->type != MQ_JSON_OBJECT ||
               !mq_json_get(doc, "ready")) {
        mq_tool_error("%s/status.json is not mqlogd's status document: %s", where,
                      doc ? "no \"ready\" member" : why);
    } else {
        if (json)
            fwrite(resp.body, 1, resp.len, stdout);
        else
            mq_status_print(doc, where);
        rc = mq_json_bool(doc, "ready", false) ? MQ_EXIT_OK : MQ_EXIT_NOT_READY;
        if (fflush(stdout) != 0) {
            mq_tool_error("writing output: %s", MQ_STRERROR(errno));
            rc = MQ_EXIT_FAIL;
        }
    }
    mq_json_free(doc);
    free(resp.body);
    return rc;
}
