/*
 * http.h - a small HTTP/1.1 server for mqlogd's operator endpoints (/, /metrics, /healthz, /readyz,
 * /status.json): GET and HEAD only, answered by one callback, on a thread of its own.
 *
 * It runs on libmicrohttpd (Debian's libmicrohttpd-dev) rather than on the Kafka endpoint's event loop:
 * HTTP parsing (keep-alive, pipelining, chunked uploads, slow clients, HEAD) is done by a library that
 * does nothing else, and a scrape that walks the catalog can never delay a Kafka fetch, nor a busy Kafka
 * loop a health check. The one thread (libmicrohttpd's internal polling thread) serves at most
 * MQ_HTTP_MAX_CONNECTIONS clients at a time and drops one silent for MQ_HTTP_TIMEOUT_S.
 *
 * The module knows nothing of what it serves: the daemon's callback builds each answer.
 */
#ifndef MQ_HTTP_H
#define MQ_HTTP_H

#include <stddef.h>

#include "util/err.h"

#define MQ_HTTP_MAX_CONNECTIONS 32
#define MQ_HTTP_TIMEOUT_S       10

/* One answer. The callback sets status and content_type (a static string) and gives body, which it
 * allocated with malloc (or NULL for an empty body): the server frees it. */
struct mq_http_resp {
    int status;
    const char *content_type;
    char *body;
    size_t len;
};

/* Answers a GET (or HEAD: the body is then not sent) of path (without the query string). Runs on the
 * server's thread, one request at a time. */
typedef void mq_http_fn(void *opaque, const char *path, struct mq_http_resp *resp);

struct mq_http;

/*
 * Listens on host:port (a numeric IPv4 or IPv6 address, or a name that resolves to one; port 0 picks a
 * free port) and serves fn until mq_http_stop(). On failure *out is untouched and errstr says why
 * (MQ_ERR_IO for an address in use or not resolvable).
 */
enum mq_err mq_http_start(const char *host, int port, mq_http_fn *fn, void *opaque, struct mq_http **out,
                          char *errstr, size_t errstr_size);

/* The port it listens on (the one picked for port 0). */
int mq_http_port(const struct mq_http *http);

/* Stops serving (a request being answered finishes first) and frees the server. Accepts NULL. */
void mq_http_stop(struct mq_http *http);

#endif
