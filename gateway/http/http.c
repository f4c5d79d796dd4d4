/*
 * http.c - the operator endpoints' HTTP server on libmicrohttpd (see http.h for why that library).
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/diag.h"

struct mq_http {
    struct MHD_Daemon *mhd;
    mq_http_fn *fn;
    void *opaque;
    int port;
};

static enum MHD_Result mq_http_queue(struct MHD_Connection *conn, int status, const char *type, char *body,
                                     size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : "text/plain; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result mq_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    struct mq_http *http = cls;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        /* a body may follow: answered once it is read (libmicrohttpd calls again with no more data) */
        if (*con_cls == NULL) {
            *con_cls = http;
            return MHD_YES;
        }
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        char *body = strdup("only GET and HEAD are served\n");
        return mq_http_queue(conn, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, body, body ? strlen(body) : 0);
    }
    struct mq_http_resp resp = {.status = 500, .content_type = NULL, .body = NULL, .len = 0};
    http->fn(http->opaque, url, &resp);
    return mq_http_queue(conn, resp.status, resp.content_type, resp.body, resp.len);
}

/* libmicrohttpd's error logger (MHD_OPTION_EXTERNAL_LOGGER): its messages go to our log as warnings. */
static void mq_http_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mq_http_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    MQ_WARN("http: libmicrohttpd: %s", MQ_CLAUSE(line)); /* its lines are sentences: "Failed to bind ...\n" */
}

enum mq_err mq_http_start(const char *host, int port, mq_http_fn *fn, void *opaque, struct mq_http **out,
                          char *errstr, size_t errstr_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0)
        return mq_errf(MQ_ERR_IO, errstr, errstr_size, "http listen %s: %s", host,
                       MQ_CLAUSE(gai_strerror(rc)));
    struct mq_http *http = calloc(1, sizeof *http);
    if (!http) {
        freeaddrinfo(ai);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    http->fn = fn;
    http->opaque = opaque;
    /* poll(), not select(): a store with thousands of partitions holds descriptors past FD_SETSIZE */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* the logger first, so that libmicrohttpd's own messages go to ours too */
    http->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, mq_http_handle, http,
                                 MHD_OPTION_EXTERNAL_LOGGER, mq_http_log, NULL, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MQ_HTTP_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MQ_HTTP_TIMEOUT_S, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!http->mhd) {
        free(http);
        return mq_errf(MQ_ERR_IO, errstr, errstr_size,
                       "http listen %s:%d: cannot listen there (address in use, or not this host's)", host,
                       port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : port;
    *out = http;
    return MQ_OK;
}

int mq_http_port(const struct mq_http *http)
{
    return http->port;
}

void mq_http_stop(struct mq_http *http)
{
    if (!http)
        return;
    MHD_stop_daemon(http->mhd);
    free(http);
}
