/*
 * transport.c - how a Kafka connection's bytes travel (struct mq_ksrv_transport in server_int.h): plain
 * TCP, where segment file ranges go out with sendfile() and never pass through user space, and TLS with
 * OpenSSL, where they cannot: they are read (MQ_KSRV_FILE_BUF at a time, into one buffer of the loop) and
 * encrypted with SSL_write().
 *
 * TLS runs non-blocking inside the event loop. The handshake happens on the connection's first input;
 * OpenSSL's SSL_ERROR_WANT_READ / WANT_WRITE become EAGAIN with c->io_wait naming the event to wait for,
 * so that the loop registers that interest. SSL_write() is used in partial-write mode (it returns after
 * each record) and a call that had to wait is repeated with the same bytes, as OpenSSL requires: a memory
 * piece or file range is resent from the same offset, and a file range is read again into the shared
 * buffer (segment bytes do not change). A failed handshake (no or an untrusted client certificate, no
 * common version, not TLS at all) is logged with the peer and OpenSSL's reason, rate limited like the
 * other events a client can repeat, counted, and closes that connection only.
 */
#include "kafka/server_int.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "tls/tls.h"

/* ---- plain TCP ---- */

static ssize_t plain_recv(struct conn *c, void *buf, size_t len)
{
    c->io_wait = EPOLLIN;
    return recv(c->fd, buf, len, 0);
}

static ssize_t plain_send(struct conn *c, const void *buf, size_t len, bool more)
{
    c->io_wait = EPOLLOUT;
    return send(c->fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
}

static ssize_t plain_send_file(struct conn *c, int fd, int64_t pos, size_t len)
{
    c->io_wait = EPOLLOUT;
    off_t off = (off_t)pos;
    return sendfile(c->fd, fd, &off, len);
}

static void plain_close(struct conn *c)
{
    (void)c;
}

const struct mq_ksrv_transport mq_ksrv_plain = {
    .recv = plain_recv,
    .send = plain_send,
    .send_file = plain_send_file,
    .close = plain_close,
};

/* ---- TLS ---- */

enum mq_err mq_ksrv_tls_listener_init(struct mq_ksrv_listener *l, const struct mq_kafka_tls_conf *tls,
                                      char *errstr, size_t errstr_size)
{
    SSL_CTX *ctx = NULL;
    char why[600];
    enum mq_err err = mq_tls_server_ctx_new(tls->cert, tls->key, tls->ca, tls->require_client_cert, &ctx,
                                            NULL, why, sizeof why);
    if (err != MQ_OK)
        return mq_errf(err, errstr, errstr_size, "kafka listener %s: TLS: %s", l->listen_host, why);
    /* Kafka clients close the socket without a close_notify: that is an end of stream, not an attack. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes: each SSL_write() returns after a record, so progress is counted as on a socket.
     * Released buffers: an idle connection does not keep 34 KiB of OpenSSL buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    l->tls = ctx;
    l->require_client_cert = tls->require_client_cert;
    return MQ_OK;
}

void mq_ksrv_tls_listener_free(struct mq_ksrv_listener *l)
{
    SSL_CTX_free(l->tls); /* accepts NULL */
    l->tls = NULL;
}

/* The verified client certificate's subject as RFC 2253 text ("CN=reader,O=plant-7") into *dn, and its
 * most specific common name (the first in that text) into *cn (NULL when it has none, or one with a NUL
 * or control character); both NULL without a certificate. The caller frees both. */
static void peer_subject(SSL *ssl, char **dn, char **cn)
{
    *dn = *cn = NULL;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    X509 *cert = SSL_get1_peer_certificate(ssl);
#else
    X509 *cert = SSL_get_peer_certificate(ssl);
#endif
    if (!cert)
        return;
    X509_NAME *name = X509_get_subject_name(cert);
    BIO *b = BIO_new(BIO_s_mem());
    if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        if (n >= 0)
            *dn = strndup(p, (size_t)n);
    }
    BIO_free(b);
    int last = -1;
    for (int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(name, NID_commonName, i))
        last = i;
    unsigned char *utf8 = NULL;
    int len = last >= 0
                  ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)))
                  : -1;
    bool clean = len > 0;
    for (int i = 0; clean && i < len; i++)
        clean = utf8[i] >= 0x20 && utf8[i] != 0x7f;
    if (clean)
        *cn = strndup((const char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
    X509_free(cert);
    ERR_clear_error();
}

/* On a listener without SASL the certificate names the client (the DN, or CN as configured); none makes it
 * anonymous. On a SASL listener the SASL user will (auth.c). */
static void name_principal(struct conn *c, char *cn)
{
    if (c->sasl_mechs)
        return;
    if (!c->peer_dn) {
        mq_ksrv_principal_set(c, "ANONYMOUS", "TLS without a client certificate");
        return;
    }
    char how[512];
    if (c->lsn->principal_cn && cn) {
        snprintf(how, sizeof how, "the CN of client certificate %s", c->peer_dn);
        mq_ksrv_principal_set(c, cn, how);
    } else {
        snprintf(how, sizeof how, "client certificate%s", c->lsn->principal_cn ? " without a CN" : "");
        mq_ksrv_principal_set(c, c->peer_dn, how);
    }
}

/* A handshake that failed: logged (rate limited) with the peer and the reason, counted, and c closed. */
static void handshake_failed(struct conn *c)
{
    char reason[256];
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK) {
        snprintf(reason, sizeof reason, "client certificate: %s",
                 MQ_CLAUSE(X509_verify_cert_error_string(vr)));
        ERR_clear_error();
    } else {
        mq_tls_last_error("the connection failed", reason, sizeof reason);
    }
    char what[400];
    snprintf(what, sizeof what, "TLS handshake with %s on %s:%d failed: %s", c->peer, c->lsn->listen_host,
             c->lsn->port, reason);
    atomic_fetch_add(&c->srv->st_tls_failed, 1);
    mq_ksrv_ratelog(&c->srv->tls_failures, MQ_LV_WARN, now_ms(), "failed TLS handshakes", what);
    mq_ksrv_conn_kill(c, NULL);
}

/* What an SSL_read/SSL_write/SSL_do_handshake result rc < 1 means for the caller: -1 with errno (EAGAIN
 * and c->io_wait when it must wait), or 0 at the peer's end of the session. */
static ssize_t tls_result(struct conn *c, int rc, bool handshake)
{
    int e = SSL_get_error(c->ssl, rc);
    int saved = errno;
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->io_wait = EPOLLIN;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->io_wait = EPOLLOUT;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        c->tls_ready = false;
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            /* The socket failed or ended under TLS (a reset, a port probe that closed): no TLS fault. */
            if (saved == 0)
                return 0;
            errno = saved;
            return -1;
        }
        if (handshake) {
            handshake_failed(c);
        } else {
            char reason[256], why[300];
            snprintf(why, sizeof why, "TLS: %s", mq_tls_last_error("error", reason, sizeof reason));
            mq_ksrv_conn_kill(c, why);
        }
        errno = EPROTO;
        return -1;
    }
}

/* Drives the handshake: 1 once done, else what recv returns meanwhile (tls_result()). */
static ssize_t tls_handshake(struct conn *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1)
        return tls_result(c, rc, true);
    c->tls_ready = true;
    char *cn = NULL;
    peer_subject(c->ssl, &c->peer_dn, &cn);
    MQ_DEBUG("kafka: TLS from %s: %s, %s%s%s", c->peer, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
             c->peer_dn ? ", client certificate " : "", c->peer_dn ? c->peer_dn : "");
    name_principal(c, cn);
    free(cn);
    if (c->dead) {
        errno = ENOMEM; /* naming the principal ran out of memory: closing */
        return -1;
    }
    return 1;
}

static ssize_t tls_recv(struct conn *c, void *buf, size_t len)
{
    if (!c->tls_ready) {
        ssize_t h = tls_handshake(c);
        if (h != 1)
            return h;
    }
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return n > 0 ? n : tls_result(c, n, false);
}

static ssize_t tls_send(struct conn *c, const void *buf, size_t len, bool more)
{
    (void)more; /* records are sent as they fill: the kernel's MSG_MORE would only delay the last one */
    if (!c->tls_ready) {
        /* Answers exist only after a request, which follows the handshake: a broken invariant. */
        errno = EPROTO;
        return -1;
    }
    ERR_clear_error();
    int n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    ssize_t r = tls_result(c, n, false);
    if (r == 0)
        errno = EPIPE; /* the client ended the session: its answers cannot be delivered */
    return r == 0 ? -1 : r;
}

static ssize_t tls_send_file(struct conn *c, int fd, int64_t pos, size_t len)
{
    if (len > MQ_KSRV_FILE_BUF)
        len = MQ_KSRV_FILE_BUF;
    ssize_t got = pread(fd, c->srv->file_buf, len, (off_t)pos);
    if (got <= 0)
        return got; /* 0: the file shrank; the caller closes */
    return tls_send(c, c->srv->file_buf, (size_t)got, true);
}

static void tls_close(struct conn *c)
{
    if (c->ssl) {
        if (c->tls_ready)
            (void)SSL_shutdown(c->ssl); /* one try at close_notify; the socket closes anyway */
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    free(c->peer_dn);
    c->peer_dn = NULL;
}

static const struct mq_ksrv_transport tls_transport = {
    .recv = tls_recv,
    .send = tls_send,
    .send_file = tls_send_file,
    .close = tls_close,
};

bool mq_ksrv_tls_accept(struct conn *c)
{
    SSL *ssl = SSL_new(c->lsn->tls);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return false;
    }
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    c->io = &tls_transport;
    return true;
}

bool mq_ksrv_tls_pending(const struct conn *c)
{
    return c->ssl && SSL_pending(c->ssl) > 0;
}
