/*
 * mosq_conn.c - the libmosquitto connector's network thread: connect, run mosquitto_loop(), subscribe on
 * every connection, and reconnect with the backoff every connector shares (gateway/connector/reconnect.h).
 *
 * Why our own loop instead of mosquitto_loop_start(): libmosquitto's reconnect delay doubles but has no
 * jitter (many gateways restarted together would hammer a broker in step), it has no connect timeout, and
 * stop() must be able to interrupt a backoff wait at once. mosquitto_loop() is called with a short timeout
 * so the thread notices stop() within about 100 ms even on an idle connection.
 *
 * Connecting without blocking: MQTT 5 CONNECT properties (the session expiry interval of a persistent
 * session) can only be given through mosquitto_connect_bind_v5(), which connects the TCP socket blocking.
 * libmosquitto keeps those properties for later reconnects, so only the very first attempt of a persistent
 * MQTT 5 instance uses it; every other attempt is mosquitto_reconnect_async()/connect_bind_async(). (Name
 * resolution blocks in libmosquitto 2.0 on every attempt.)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/ssl.h>

#include "connector/why.h"
#include "mosq_int.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_MOSQ_LOOP_MS    100  /* mosquitto_loop() timeout: bounds how long stop() waits on an idle link */
#define MQ_MOSQ_BYE_MS     1000 /* how long a graceful DISCONNECT may take on stop() */
#define MQ_MOSQ_READ_BATCH 4096 /* durable_ack: most packets read before the acknowledgements go out */

/* MQTT 5 session expiry for persistent sessions: "never", as a 3.1.1 persistent session. */
#define MQ_MOSQ_SESSION_EXPIRY 0xFFFFFFFFu

/* Sleeps ms unless stop() is called meanwhile. */
void mq_mosq_wait(void *opaque, int64_t ms)
{
    struct mq_mosq *m = opaque;
    struct timespec ts;
    mq_mono_abstime(ms, &ts);
    pthread_mutex_lock(&m->mu);
    while (!atomic_load(&m->stopping))
        if (pthread_cond_timedwait(&m->cond, &m->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&m->mu);
}

bool mq_mosq_stopping(void *opaque)
{
    struct mq_mosq *m = opaque;
    return atomic_load(&m->stopping);
}

static int mq_mosq_keepalive(const struct mq_mosq *m)
{
    /* libmosquitto refuses keep-alive intervals of 1-4 s; 0 (off) is passed on as is */
    int64_t k = m->broker->keepalive_s;
    if (k > 0 && k < 5)
        return 5;
    return (int)k;
}

/* libmosquitto 2.0.11 sets up its process-wide TLS state (an OpenSSL UI method) lazily, inside the first
 * connect call of a TLS client, behind an unlocked "initialised" flag: two instances connecting at once
 * both set it up and one copy leaks (LeakSanitizer saw it). Connect calls are rare, so all of them are
 * serialised. */
static pthread_mutex_t mq_mosq_connect_mu = PTHREAD_MUTEX_INITIALIZER;

static int mq_mosq_connect_locked(struct mq_mosq *m);

/* Starts one connection attempt. MOSQ_ERR_SUCCESS: the loop completes it (or reports why not). */
static int mq_mosq_connect(struct mq_mosq *m)
{
    pthread_mutex_lock(&mq_mosq_connect_mu);
    int rc = mq_mosq_connect_locked(m);
    pthread_mutex_unlock(&mq_mosq_connect_mu);
    return rc;
}

static int mq_mosq_connect_locked(struct mq_mosq *m)
{
    const struct mq_config_broker *b = m->broker;
    if (m->first_connect_done)
        return mosquitto_reconnect_async(m->mosq);
    m->first_connect_done = true;
    if (b->protocol == 5 && !b->clean_session) {
        /* Without a session expiry interval an MQTT 5 broker drops the session when the connection ends. */
        mosquitto_property *props = NULL;
        int rc =
            mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, MQ_MOSQ_SESSION_EXPIRY);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_connect_bind_v5(m->mosq, b->host, b->port, mq_mosq_keepalive(m), NULL, props);
        mosquitto_property_free_all(&props);
        return rc;
    }
    return mosquitto_connect_bind_async(m->mosq, b->host, b->port, mq_mosq_keepalive(m), NULL);
}

/* Bytes TLS has already read off the socket and decrypted, which poll() on the socket cannot see.
 * libmosquitto reads through SSL_read(), so a record holding several MQTT packets (brokers may coalesce
 * them) leaves the rest buffered in OpenSSL after the first: without this, those messages would wait for
 * the broker's next bytes, as late as the next keep-alive answer. */
static bool mq_mosq_tls_pending(struct mq_mosq *m)
{
    SSL *ssl = mosquitto_ssl_get(m->mosq);
    return ssl && SSL_pending(ssl) > 0;
}

static bool mq_mosq_readable(struct mq_mosq *m, int sock)
{
    if (mq_mosq_tls_pending(m))
        return true;
    struct pollfd p = {.fd = sock, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* libmosquitto's strings are sentences ("The connection was lost."): mq_clause() makes them part of ours. */
static void mq_mosq_describe(int rc, int saved_errno, char *buf, size_t size)
{
    mq_clause(rc == MOSQ_ERR_ERRNO ? strerror(saved_errno) : mosquitto_strerror(rc), buf, size);
}

/*
 * One round of the loop, once connected. With durable_ack: read what the broker has sent (up to
 * MQ_MOSQ_READ_BATCH packets, as long as more is waiting), wait until the records of those messages are
 * durable, then write what libmosquitto queued meanwhile (their PUBACKs among it), then its housekeeping
 * (keep-alive). It is mosquitto_loop() with the wait between the read and the write phase; libmosquitto's
 * threaded mode (mosq.c) guarantees that nothing queued is written before it. The same MQTT
 * conversation, with one group commit per batch instead of one per message. Without durable_ack nothing
 * waits: it is mosquitto_loop() reading a whole batch per poll instead of one packet.
 */
static int mq_mosq_loop_session(struct mq_mosq *m)
{
    int sock = mosquitto_socket(m->mosq);
    if (sock < 0)
        return MOSQ_ERR_NO_CONN;
    struct pollfd p = {.fd = sock, .events = POLLIN | (mosquitto_want_write(m->mosq) ? POLLOUT : 0)};
    bool buffered = mq_mosq_tls_pending(m);
    int n = poll(&p, 1, buffered ? 0 : MQ_MOSQ_LOOP_MS);
    if (n < 0)
        return errno == EINTR ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ERRNO;
    if (buffered)
        p.revents |= POLLIN;
    int rc = MOSQ_ERR_SUCCESS;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        for (int i = 0; i < MQ_MOSQ_READ_BATCH && !atomic_load(&m->stopping); i++) {
            /* Is more waiting? libmosquitto returns success both after a whole packet and when the socket
             * had no more bytes, and then errno is EAGAIN (which also ends its own mosquitto_loop_read()
             * batch). But in threaded mode every packet it queues (a PUBACK) also pokes its internal wake-up
             * pipe, which nobody drains in this loop: once full, that write leaves EAGAIN as well. So: a
             * read that delivered a message goes on (no system call; the read after the last one finds the
             * socket empty), and only an EAGAIN without a delivery asks the socket. At QoS 0 this saves a
             * poll() per message, a quarter of the system calls. */
            uint64_t before = m->delivered;
            errno = 0;
            rc = mosquitto_loop_read(m->mosq, 1);
            if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(m->mosq) < 0)
                break;
            if (m->delivered == before && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                !mq_mosq_readable(m, sock))
                break;
        }
    }
    /* what was read is acknowledged only once durable (also what an earlier call read: nothing is ever
     * written before this); on a lost connection there is nothing to acknowledge (the broker sends those
     * messages again), but they were stored all the same */
    if (m->npending > 0 && !mq_mosq_pending_wait(m))
        return MOSQ_ERR_SUCCESS; /* stop() came first: the acknowledgements stay unwritten */
    if (rc != MOSQ_ERR_SUCCESS)
        return rc;
    if (m->withhold_acks)
        return MOSQ_ERR_SUCCESS;
    if (mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq) &&
        (rc = mosquitto_loop_write(m->mosq, 1)) != MOSQ_ERR_SUCCESS)
        return rc;
    return mosquitto_loop_misc(m->mosq);
}

/* Runs the loop on one connection until it fails, stop() is called, or the CONNACK does not come in time.
 * Writes the reason into why and returns libmosquitto's code of the failure (MOSQ_ERR_SUCCESS: stopped or
 * timed out). */
static int mq_mosq_run(struct mq_mosq *m, int64_t t0, char *why, size_t why_size)
{
    const int64_t timeout = m->broker->connect_timeout_ms;
    m->npending = 0; /* acknowledgements of a lost connection cannot be sent any more */
    while (!atomic_load(&m->stopping)) {
        /* The connect phase (TCP, TLS handshake, CONNACK) always runs through mosquitto_loop(), which
         * alone continues a TLS handshake; a connected session runs our loop, which reads a batch per
         * poll. Without durable_ack nothing is pending there and libmosquitto (not in threaded mode)
         * writes each acknowledgement as soon as it handles the message. */
        int rc;
        if (m->connack_ok) {
            rc = mq_mosq_loop_session(m);
        } else {
            /* a message read in the same call as the CONNACK (a persistent session's backlog) may have
             * its PUBACK written by this very call: on_message waits for its durability itself */
            m->in_libmosquitto_loop = true;
            rc = mosquitto_loop(m->mosq, MQ_MOSQ_LOOP_MS, 1);
            m->in_libmosquitto_loop = false;
        }
        int saved_errno = errno;
        if (rc != MOSQ_ERR_SUCCESS) {
            if (m->connack_rc != 0)
                snprintf(why, why_size, "connection refused: %s",
                         m->broker->protocol == 5 ? MQ_CLAUSE(mosquitto_reason_string(m->connack_rc))
                                                  : mq_connack_reason(m->connack_rc));
            else if (m->disconnect_rc >= 0x80 && m->broker->protocol == 5 && m->connack_ok)
                /* an MQTT 5 DISCONNECT from the broker (reason codes >= 0x80; below are libmosquitto's own
                 * error codes for a broken connection) */
                snprintf(why, why_size, "the broker disconnected us: %s",
                         MQ_CLAUSE(mosquitto_reason_string(m->disconnect_rc)));
            else
                mq_mosq_describe(rc, saved_errno, why, why_size);
            return rc;
        }
        if (!m->connack_ok && timeout > 0 && mq_mono_ms() - t0 > timeout) {
            snprintf(why, why_size, "no CONNACK within connect_timeout (%lld ms)", (long long)timeout);
            return MOSQ_ERR_SUCCESS;
        }
    }
    return MOSQ_ERR_SUCCESS;
}

/* A connection attempt failed with rc before its CONNACK: makes why name what to fix where libmosquitto's
 * code does not. A TLS failure is mostly a file (libmosquitto reads the CA, certificate and key at every
 * attempt): why.h names it; otherwise libmosquitto's own first error line of the attempt is added. */
static void mq_mosq_explain(struct mq_mosq *m, int rc, char *why, size_t why_size)
{
    if (rc == MOSQ_ERR_TLS && mq_connector_tls_why(m->broker, why, why_size))
        return;
    if (m->lib_error[0] && m->connack_rc == 0) {
        char base[256];
        snprintf(base, sizeof base, "%s", why);
        snprintf(why, why_size, "%s (libmosquitto: %s)", base, m->lib_error);
    }
}

/* On stop(): a DISCONNECT tells the broker we leave on purpose (no will, session kept as configured). */
static void mq_mosq_goodbye(struct mq_mosq *m)
{
    /* With acknowledgements withheld (durable_ack), the loop must not write them out with the DISCONNECT:
     * the connection is just closed, and the broker keeps those messages in the session. */
    if (!m->connack_ok || m->withhold_acks)
        return;
    if (mosquitto_disconnect(m->mosq) != MOSQ_ERR_SUCCESS)
        return;
    int64_t t0 = mq_mono_ms();
    /* the loop writes the DISCONNECT, then libmosquitto closes the socket and the loop reports NO_CONN.
     * durable_ack: only the write phase runs, so that nothing read now is acknowledged before it is
     * durable (what the broker sends meanwhile stays unread and unacknowledged, for the next session). */
    while (mq_mono_ms() - t0 < MQ_MOSQ_BYE_MS) {
        if (!m->durable) {
            if (mosquitto_loop(m->mosq, 50, 1) != MOSQ_ERR_SUCCESS)
                break;
            continue;
        }
        int sock = mosquitto_socket(m->mosq);
        if (sock < 0 || !mosquitto_want_write(m->mosq))
            break;
        struct pollfd p = {.fd = sock, .events = POLLOUT};
        if (poll(&p, 1, 50) < 0 && errno != EINTR)
            break;
        if ((p.revents & POLLOUT) && mosquitto_loop_write(m->mosq, 1) != MOSQ_ERR_SUCCESS)
            break;
    }
}

void *mq_mosq_thread(void *arg)
{
    struct mq_mosq *m = arg;
    const struct mq_config_broker *b = m->broker;
    while (!atomic_load(&m->stopping)) {
        char why[640] = "";
        int64_t t0 = mq_mono_ms();
        m->connack_ok = false;
        m->connack_rc = 0;
        m->disconnect_rc = 0;
        m->lib_error[0] = '\0';
        int rc = mq_mosq_connect(m);
        int saved_errno = errno;
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mq_mosq_run(m, t0, why, sizeof why);
        else
            mq_mosq_describe(rc, saved_errno, why, sizeof why);
        if (atomic_load(&m->stopping))
            break;
        bool was_connected = m->connack_ok;
        if (!was_connected)
            mq_mosq_explain(m, rc, why, sizeof why);
        if (was_connected) {
            atomic_store(&m->st.connected, false);
            atomic_fetch_add(&m->st.disconnects, 1);
        }
        /* a refusal only an operator can cure is retried at the cap (reconnect.h) */
        bool permanent = !was_connected && m->connack_rc != 0 &&
                         mq_reconnect_refusal_permanent(b->protocol == 5 ? 5 : 4, m->connack_rc);
        int64_t delay = mq_reconnect_failed(&m->reconnect, permanent);
        pthread_mutex_lock(&m->mu);
        size_t wn = strnlen(why, sizeof m->last_error - 1); /* /readyz shows it: the start is enough */
        memcpy(m->last_error, why, wn);
        m->last_error[wn] = '\0';
        pthread_mutex_unlock(&m->mu);
        /* once per change of reason, not at every retry (reconnect.h) */
        int lv = mq_reconnect_news(&m->reconnect, why) ? MQ_LV_WARN : MQ_LV_DEBUG;
        if (was_connected)
            MQ_DIAG(lv, "broker %s: connection to %s:%d lost: %s; reconnecting in %lld ms", m->tag, b->host,
                    b->port, why, (long long)delay);
        else
            MQ_DIAG(lv, "broker %s: cannot connect to %s:%d: %s; retrying in %lld ms (attempt %d)%s", m->tag,
                    b->host, b->port, why, (long long)delay, m->reconnect.attempts,
                    lv == MQ_LV_WARN ? "" : ", the same failure again");
        mq_mosq_wait(m, delay);
        if (!atomic_load(&m->stopping))
            MQ_DIAG(lv == MQ_LV_WARN ? MQ_LV_INFO : MQ_LV_DEBUG, "broker %s: reconnecting to %s:%d", m->tag,
                    b->host, b->port);
    }
    mq_mosq_goodbye(m);
    atomic_store(&m->st.connected, false);
    return NULL;
}

static void mq_mosq_subscribe(struct mq_mosq *m)
{
    /* MQTT 5: retained messages only for a new subscription, so that resubscribing on a reconnect to a
     * persistent session does not store them again. MQTT 3.1.1 has no such option: there the broker resends
     * retained messages on every resubscription (records carry mqtt.retain=1). */
    int options = m->broker->protocol == 5 ? MQTT_SUB_OPT_SEND_RETAIN_NEW : 0;
    for (int q = 0; q < 3; q++) {
        m->sub_mid[q] = -1;
        if (m->nsubs_by_qos[q] == 0)
            continue;
        int rc = mosquitto_subscribe_multiple(m->mosq, &m->sub_mid[q], m->nsubs_by_qos[q], m->subs_by_qos[q],
                                              q, options, NULL);
        if (rc != MOSQ_ERR_SUCCESS)
            MQ_ERROR("broker %s: subscribing %d filter(s) at QoS %d failed: %s", m->tag, m->nsubs_by_qos[q],
                     q, MQ_CLAUSE(mosquitto_strerror(rc)));
    }
}

void mq_mosq_on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
    (void)props;
    struct mq_mosq *m = obj;
    if (rc != 0) {
        m->connack_rc = rc; /* the loop reports it and backs off */
        return;
    }
    m->connack_ok = true;
    int failed = m->reconnect.attempts;
    mq_reconnect_connected(&m->reconnect);
    pthread_mutex_lock(&m->mu);
    m->last_error[0] = '\0';
    pthread_mutex_unlock(&m->mu);
    atomic_fetch_add(&m->st.connects, 1);
    atomic_store(&m->st.connected, true);
    char after[64] = "";
    if (failed > 1) /* the failures were logged once: say how long it went on */
        snprintf(after, sizeof after, ", after %d failed attempts", failed);
    MQ_INFO("broker %s: connected to %s:%d as %s (session present: %s%s)", m->tag, m->broker->host,
            m->broker->port, m->client_id, (flags & 1) ? "yes" : "no", after);
    mq_ingest_session_connected(m->rx, flags & 1); /* before any message of this connection */
    /* libmosquitto formats a line for every packet (vsnprintf, "received PUBLISH ...") whenever a log
     * callback is set, before the callback can drop it: 15-20% of this thread's time at QoS 0 (perf,
     * tests/bench/ingest). Its error and warning lines matter while connecting (TLS, refusals); once
     * connected, losses come back as return codes, which the loop logs. So the callback stays only at debug
     * level, and on_disconnect sets it again for the next attempt. Both run on this network thread. */
    if (mq_diag_level < MQ_LV_DEBUG)
        mosquitto_log_callback_set(mosq, NULL);
    mq_mosq_subscribe(m);
}

void mq_mosq_on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
    (void)props;
    struct mq_mosq *m = obj;
    m->disconnect_rc = rc; /* the thread logs the loss once mosquitto_loop() returns */
    mosquitto_log_callback_set(mosq, mq_mosq_on_log); /* for the next connection attempt (see on_connect) */
}

void mq_mosq_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted_qos,
                          const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    struct mq_mosq *m = obj;
    for (int q = 0; q < 3; q++) {
        if (m->sub_mid[q] != mid)
            continue;
        for (int i = 0; i < qos_count && i < m->nsubs_by_qos[q]; i++) {
            if (granted_qos[i] >= 0x80)
                MQ_ERROR("broker %s: subscription to '%s' refused: %s", m->tag, m->subs_by_qos[q][i],
                         MQ_CLAUSE(mosquitto_reason_string(granted_qos[i])));
            else if (granted_qos[i] < q)
                MQ_WARN("broker %s: subscription to '%s' granted at QoS %d instead of %d", m->tag,
                        m->subs_by_qos[q][i], granted_qos[i], q);
            else
                MQ_DEBUG("broker %s: subscribed to '%s' at QoS %d", m->tag, m->subs_by_qos[q][i],
                         granted_qos[i]);
        }
    }
}

void mq_mosq_on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    (void)mosq;
    struct mq_mosq *m = obj;
    /* libmosquitto's own lines are protocol chatter (one per packet at DEBUG), and the callback is only set
     * while connecting (see on_connect), where its errors explain a failed attempt ("Unable to load CA
     * certificates, check cafile ..."): the first one goes into the attempt's failure line, which is logged
     * once per change of reason, instead of a warning at every retry. Warnings stay at info level. */
    if ((level & MOSQ_LOG_ERR) && !m->lib_error[0])
        mq_clause(str, m->lib_error, sizeof m->lib_error);
    if (level & MOSQ_LOG_WARNING)
        MQ_INFO("broker %s: libmosquitto: %s", m->tag, MQ_CLAUSE(str));
    else
        MQ_DEBUG("broker %s: libmosquitto: %s", m->tag, str);
}
