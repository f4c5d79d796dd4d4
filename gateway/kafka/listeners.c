/*
 * listeners.c - the Kafka endpoint's listening sockets: one per configured listener, each with the address
 * it advertises to the clients that connect through it and, for TLS, its OpenSSL context. The single
 * plaintext listener of mq_kafka_server_conf's listen fields is the one-element case.
 */
#include "kafka/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
                       MQ_CLAUSE(gai_strerror(rc)));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka listener: socket: %s",
                       MQ_STRERROR(errno));
        freeaddrinfo(ai);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
        int e = errno;
        *err = mq_errf(e == EADDRINUSE ? MQ_ERR_BUSY : mq_err_from_errno(e), errstr, errstr_size,
                       "kafka listener %s:%d: %s", host, port, MQ_STRERROR(e));
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        *err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "kafka listener: getsockname: %s",
                       MQ_STRERROR(errno));
        close(fd);
        return -1;
    }
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* A wildcard bind cannot be advertised: clients on the same host are told 127.0.0.1 (the configuration
 * refuses a wildcard without advertised; this default serves library users and tests). */
static const char *advertised_default(const char *listen_host)
{
    bool wildcard = !*listen_host || strcmp(listen_host, "0.0.0.0") == 0 || strcmp(listen_host, "::") == 0;
    return wildcard ? "127.0.0.1" : listen_host;
}

enum mq_err mq_ksrv_listeners_open(struct mq_kafka_server *srv, const struct mq_kafka_server_conf *conf,
                                   char *errstr, size_t errstr_size)
{
    struct mq_kafka_listener_conf single = {
        .listen_host = conf->listen_host,
        .port = conf->port,
        .advertised_host = conf->advertised_host,
        .advertised_port = conf->advertised_port,
        .sasl_mechanisms = conf->sasl_mechanisms,
    };
    if (conf->n_listeners && !conf->listeners)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "kafka: n_listeners without listeners");
    const struct mq_kafka_listener_conf *confs = conf->n_listeners ? conf->listeners : &single;
    size_t n = conf->n_listeners ? conf->n_listeners : 1;
    srv->listeners = calloc(n, sizeof *srv->listeners);
    if (!srv->listeners)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    bool any_tls = false;
    for (size_t i = 0; i < n; i++) {
        const struct mq_kafka_listener_conf *lc = &confs[i];
        struct mq_ksrv_listener *l = &srv->listeners[i];
        l->srv = srv;
        l->fd = -1;
        l->sasl_mechs = lc->sasl_mechanisms;
        l->principal_cn = lc->tls.principal_cn;
        srv->n_listeners++;
        if (lc->port < 0 || lc->port > 65535 || lc->advertised_port < 0 || lc->advertised_port > 65535)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "kafka listener: invalid port");
        const char *lh = lc->listen_host ? lc->listen_host : "127.0.0.1";
        l->listen_host = strdup(lh);
        l->advertised_host = strdup(lc->advertised_host ? lc->advertised_host : advertised_default(lh));
        if (!l->listen_host || !l->advertised_host)
            return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        if (lc->tls.cert) {
            enum mq_err err = mq_ksrv_tls_listener_init(l, &lc->tls, errstr, errstr_size);
            if (err != MQ_OK)
                return err;
            any_tls = true;
        }
        enum mq_err err = MQ_OK;
        l->fd = listen_on(lh, lc->port, &l->port, errstr, errstr_size, &err);
        if (l->fd < 0)
            return err;
        l->advertised_port = lc->advertised_port > 0 ? lc->advertised_port : l->port;
    }
    if (any_tls && !(srv->file_buf = malloc(MQ_KSRV_FILE_BUF)))
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    return MQ_OK;
}

void mq_ksrv_listeners_close(struct mq_kafka_server *srv)
{
    for (size_t i = 0; i < srv->n_listeners; i++) {
        struct mq_ksrv_listener *l = &srv->listeners[i];
        if (l->fd >= 0)
            close(l->fd);
        mq_ksrv_tls_listener_free(l);
        free(l->listen_host);
        free(l->advertised_host);
    }
    free(srv->listeners);
    srv->listeners = NULL;
    srv->n_listeners = 0;
    free(srv->file_buf);
    srv->file_buf = NULL;
}
