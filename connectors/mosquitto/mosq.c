/*
 * mosq.c - the libmosquitto source connector: its entry in the connector interface and the lifecycle of an
 * instance (create, start, stop, destroy, stats).
 *
 * Acknowledgement: libmosquitto 2.0 queues the PUBACK of a QoS 1 message before it calls on_message, and
 * completes a QoS 2 exchange (PUBCOMP) before on_message as well (see ../shared/REFERENCE.md). Queued is
 * not sent, though: in threaded mode (mosquitto_threaded_set) libmosquitto writes queued packets only in
 * the loop's write phase. With durable_ack (the default) the network thread runs the read and the write
 * phase itself and waits between them until the records of what it read are durable (mosq_conn.c,
 * mosq_msg.c): a QoS 1 message is acknowledged only once durable, one group commit per read batch.
 * Without durable_ack the loss window in a crash is the time a record waits in the log for its flush
 * (log.flush_interval_ms, or a backlog the log has not written yet); start() says so in a notice.
 *
 * Receive maximum (MQTT 5): libmosquitto 2.0 counts its receive quota down for every QoS 1/2 PUBLISH and
 * back up when it sends the PUBACK (at once) or the PUBCOMP (a round trip later, after the broker's PUBREL).
 * A QoS 1/2 PUBLISH that arrives while the quota is 0 makes mosquitto_loop() return MOSQ_ERR_PROTOCOL and
 * drop the connection. The broker is supposed to make that impossible, but mosquitto 2.0.11 (Debian 12)
 * does not keep to the receive maximum once it has messages queued for the client: every PUBACK/PUBCOMP
 * moves up to receive-maximum more queued messages into flight (db__message_delete_outgoing() counts the
 * acknowledged message's position in the in-flight list instead of the in-flight total). At QoS 1 that is
 * harmless, the quota comes back with each PUBACK; at QoS 2 the quota is held until the PUBREL, so as soon
 * as we lag by receive-maximum messages (a slow or paused store, a backlog after a reconnect) the broker
 * overruns it and every connection dies the same way, with duplicates from the QoS 2 exchanges cut off.
 * libmosquitto enforces exactly the value it advertises, so the only remedy is a larger value: an instance
 * with a QoS 2 subscription advertises the largest, 65535, whatever max_inflight says. (That only limits
 * what this client lets the broker hold unacknowledged, which is little here: see above. A broker with
 * this bug could still overrun it with more than about twice 65535 QoS 2 messages queued for us.)
 *
 * Threads: the instance has one network thread (mosq_conn.c) that alone drives libmosquitto; stop() asks
 * it to disconnect and joins it, so no callback runs once stop() has returned.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "connector.h"
#include "mosq.h"
#include "mosq_int.h"
#include "util/diag.h"
#include "util/err.h"
#include "util/parse.h"

/* mosquitto_lib_init/cleanup are process-wide and not counted by libmosquitto 2.0.11 (mosq.h): the first
 * reference initialises, the last one cleans up. */
static pthread_mutex_t mq_mosq_lib_mu = PTHREAD_MUTEX_INITIALIZER;
static int mq_mosq_lib_refs;

int mq_mosq_lib_ref(void)
{
    int rc = MOSQ_ERR_SUCCESS;
    pthread_mutex_lock(&mq_mosq_lib_mu);
    if (mq_mosq_lib_refs == 0)
        rc = mosquitto_lib_init();
    if (rc == MOSQ_ERR_SUCCESS)
        mq_mosq_lib_refs++;
    pthread_mutex_unlock(&mq_mosq_lib_mu);
    return rc;
}

void mq_mosq_lib_unref(void)
{
    pthread_mutex_lock(&mq_mosq_lib_mu);
    if (mq_mosq_lib_refs > 0 && --mq_mosq_lib_refs == 0)
        mosquitto_lib_cleanup();
    pthread_mutex_unlock(&mq_mosq_lib_mu);
}

/* Translates a libmosquitto error code where it enters mqlog. */
static enum mq_err mq_mosq_err(int rc)
{
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        return MQ_OK;
    case MOSQ_ERR_NOMEM:
        return MQ_ERR_NOMEM;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_NOT_SUPPORTED:
        return MQ_ERR_INVAL;
    case MOSQ_ERR_ERRNO:
        return mq_err_from_errno(errno);
    default:
        return MQ_ERR_IO;
    }
}

/* OpenSSL would prompt on the terminal for an encrypted key's passphrase: a daemon has none to give. */
static int mq_mosq_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return 0;
}

static enum mq_err mq_mosq_setup_tls(struct mq_mosq *m, char *errstr, size_t errstr_size)
{
    const struct mq_config_tls *t = &m->broker->tls_opts;
    const char *capath = NULL;
    if (!t->ca) {
        /* No CA file: trust the system's store (Debian keeps the hashed certificates in /etc/ssl/certs). */
        int rc = mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        if (rc != MOSQ_ERR_SUCCESS)
            return mq_errf(mq_mosq_err(rc), errstr, errstr_size, "broker %s: TLS system trust store: %s",
                           m->broker->name, MQ_CLAUSE(mosquitto_strerror(rc)));
        capath = "/etc/ssl/certs";
    }
    int rc = mosquitto_tls_set(m->mosq, t->ca, capath, t->cert, t->key, mq_mosq_no_passphrase);
    if (rc != MOSQ_ERR_SUCCESS)
        return mq_errf(mq_mosq_err(rc), errstr, errstr_size,
                       "broker %s: TLS setup (ca %s, cert %s, key %s): %s (are the files readable?)",
                       m->broker->name, t->ca ? t->ca : "system", t->cert ? t->cert : "none",
                       t->key ? t->key : "none", MQ_CLAUSE(mosquitto_strerror(rc)));
    if (t->insecure) {
        rc = mosquitto_tls_insecure_set(m->mosq, true);
        if (rc != MOSQ_ERR_SUCCESS)
            return mq_errf(mq_mosq_err(rc), errstr, errstr_size, "broker %s: tls insecure: %s",
                           m->broker->name, MQ_CLAUSE(mosquitto_strerror(rc)));
    }
    return MQ_OK;
}

/* The QoS a subscription is made with. libmosquitto answers PUBREC before it hands a QoS 2 message over, and
 * the broker's responsibility for the message ends there: a crash before the record is durable would lose
 * it. With durable_ack a QoS 2 mapping is therefore subscribed at QoS 1, whose PUBACK waits for the record;
 * the redelivery guard makes the outcome exactly once, as QoS 2 promises (records say mqtt.qos 1, the QoS
 * they were delivered with). */
static int mq_mosq_sub_qos(const struct mq_mosq *m, int qos)
{
    return qos == 2 && m->durable ? 1 : qos;
}

/* Groups the subscriptions by QoS: libmosquitto subscribes a list of filters with one QoS per call. */
static enum mq_err mq_mosq_group_subs(struct mq_mosq *m, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < m->ctx.nsubs; i++) {
        const struct mq_subscription *s = &m->ctx.subs[i];
        if (!s->filter || s->qos < 0 || s->qos > 2)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                           "broker %s: subscription %zu: bad filter or QoS", m->broker->name, i);
        if (mosquitto_sub_topic_check2(s->filter, strlen(s->filter)) != MOSQ_ERR_SUCCESS)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "broker %s: invalid subscription filter '%s'",
                           m->broker->name, s->filter);
        m->nsubs_by_qos[mq_mosq_sub_qos(m, s->qos)]++;
    }
    for (int q = 0; q < 3; q++) {
        if (m->nsubs_by_qos[q] == 0)
            continue;
        m->subs_by_qos[q] = calloc((size_t)m->nsubs_by_qos[q], sizeof(char *));
        if (!m->subs_by_qos[q])
            return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        m->nsubs_by_qos[q] = 0;
    }
    for (size_t i = 0; i < m->ctx.nsubs; i++) {
        const struct mq_subscription *s = &m->ctx.subs[i];
        int q = mq_mosq_sub_qos(m, s->qos);
        m->subs_by_qos[q][m->nsubs_by_qos[q]++] = (char *)s->filter;
    }
    return MQ_OK;
}

/* The MQTT 5 receive maximum to advertise: max_inflight, or 65535 with a QoS 2 subscription (see the top of
 * this file for why). Call after mq_mosq_group_subs(). */
static int mq_mosq_receive_maximum(const struct mq_mosq *m)
{
    const int64_t largest = 65535; /* the protocol's limit */
    int64_t want = m->broker->max_inflight;
    if (m->nsubs_by_qos[2] == 0 || want >= largest)
        return (int)want;
    MQ_INFO("broker %s: MQTT 5 receive maximum %lld instead of max_inflight %lld: with a QoS 2 subscription, "
            "libmosquitto drops the connection when a broker exceeds it, as mosquitto 2.0 does",
            m->tag, (long long)largest, (long long)want);
    return (int)largest;
}

static void mq_mosq_destroy(void *instance);

static enum mq_err mq_mosq_create(const struct mq_connector_ctx *ctx, void **instance, char *errstr,
                                  size_t errstr_size)
{
    if (!ctx || !ctx->broker || !ctx->ingest || (ctx->nsubs > 0 && !ctx->subs) || !instance)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mosquitto connector: incomplete context");
    const struct mq_config_broker *b = ctx->broker;
    if (!b->name || !b->host || b->port <= 0 || (b->protocol != 4 && b->protocol != 5))
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mosquitto connector: incomplete broker settings");

    struct mq_mosq *m = calloc(1, sizeof *m);
    if (!m)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    m->ctx = *ctx;
    m->broker = b;
    enum mq_err err = MQ_OK;
    int rc;

    /* the client id: a persistent session is found again by it, so it is derived, never random */
    const char *base = b->client_id;
    char defid[300];
    if (!base) {
        snprintf(defid, sizeof defid, "mqlog-%s", b->name);
        base = defid;
    }
    size_t idlen = strlen(base) + 24;
    m->client_id = malloc(idlen);
    m->tag = malloc(strlen(b->name) + 24);
    if (!m->client_id || !m->tag) {
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (ctx->session > 0)
        snprintf(m->client_id, idlen, "%s-%d", base, ctx->session);
    else
        snprintf(m->client_id, idlen, "%s", base);
    snprintf(m->tag, strlen(b->name) + 24, "%s/%d", b->name, ctx->session);

    m->hold = (struct mq_hold){.ingest = ctx->ingest,
                               .broker = b->name,
                               .tag = m->tag,
                               .counters = &m->st,
                               .give_up = mq_mosq_stopping,
                               .sleep = mq_mosq_wait,
                               .opaque = m};

    m->durable = b->durable_ack;
    if ((err = mq_mosq_group_subs(m, errstr, errstr_size)) != MQ_OK)
        goto fail;
    /* exactly once: with a persistent session and durable acknowledgement, the session's redelivery guard
     * (ingest.h) keeps redeliveries of stored messages from being stored again */
    if (m->durable && !b->clean_session && b->dedup != MQ_DEDUP_OFF &&
        (m->nsubs_by_qos[1] || m->nsubs_by_qos[2]) &&
        (err = mq_ingest_session_get(ctx->ingest, b->name, m->client_id, b->max_inflight, b->dedup, &m->rx,
                                     errstr, errstr_size)) != MQ_OK)
        goto fail;

    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "pthread_condattr_init failed");
        goto fail;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        pthread_condattr_destroy(&ca);
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "pthread_mutex_init failed");
        goto fail;
    }
    if (pthread_cond_init(&m->cond, &ca) != 0) {
        pthread_mutex_destroy(&m->mu);
        pthread_condattr_destroy(&ca);
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "pthread_cond_init failed");
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    m->sync_ready = true;

    if ((rc = mq_mosq_lib_ref()) != MOSQ_ERR_SUCCESS) {
        err = mq_errf(mq_mosq_err(rc), errstr, errstr_size, "mosquitto_lib_init: %s",
                      MQ_CLAUSE(mosquitto_strerror(rc)));
        goto fail;
    }
    m->lib_ref = true;

    m->mosq = mosquitto_new(m->client_id, b->clean_session, m);
    if (!m->mosq) {
        err = mq_errf(errno == ENOMEM ? MQ_ERR_NOMEM : MQ_ERR_INVAL, errstr, errstr_size,
                      "broker %s: mosquitto_new(%s): %s", b->name, m->client_id, MQ_STRERROR(errno));
        goto fail;
    }
    rc = mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                              b->protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    if (rc == MOSQ_ERR_SUCCESS && b->protocol == 5) /* bounds what the broker sends before our PUBACKs */
        rc = mosquitto_int_option(m->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, mq_mosq_receive_maximum(m));
    if (rc != MOSQ_ERR_SUCCESS) {
        err = mq_errf(mq_mosq_err(rc), errstr, errstr_size, "broker %s: protocol options: %s", b->name,
                      MQ_CLAUSE(mosquitto_strerror(rc)));
        goto fail;
    }

    if (b->username || b->password_file) {
        char *password = NULL;
        if ((err = mq_config_broker_password(b, &password, errstr, errstr_size)) != MQ_OK)
            goto fail;
        rc = mosquitto_username_pw_set(m->mosq, b->username, password);
        if (password) {
            /* libmosquitto keeps its own copy; ours leaves memory now */
            memset(password, 0, strlen(password));
            free(password);
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            err = mq_errf(mq_mosq_err(rc), errstr, errstr_size, "broker %s: username/password: %s", b->name,
                          MQ_CLAUSE(mosquitto_strerror(rc)));
            goto fail;
        }
    }
    if (b->tls && (err = mq_mosq_setup_tls(m, errstr, errstr_size)) != MQ_OK)
        goto fail;

    /* durable_ack: threaded mode makes libmosquitto queue every packet it sends (PUBACKs included) for the
     * loop's write phase instead of writing it from inside the read phase, which is what lets the network
     * thread hold acknowledgements back until the records are durable (mosq_conn.c). The network thread
     * remains the only one that calls libmosquitto. */
    if (m->durable && (rc = mosquitto_threaded_set(m->mosq, true)) != MOSQ_ERR_SUCCESS) {
        err = mq_errf(mq_mosq_err(rc), errstr, errstr_size, "broker %s: mosquitto_threaded_set: %s", b->name,
                      MQ_CLAUSE(mosquitto_strerror(rc)));
        goto fail;
    }
    mosquitto_connect_v5_callback_set(m->mosq, mq_mosq_on_connect);
    mosquitto_disconnect_v5_callback_set(m->mosq, mq_mosq_on_disconnect);
    mosquitto_subscribe_v5_callback_set(m->mosq, mq_mosq_on_subscribe);
    mosquitto_message_v5_callback_set(m->mosq, mq_mosq_on_message);
    mosquitto_log_callback_set(m->mosq, mq_mosq_on_log);

    *instance = m;
    return MQ_OK;
fail:
    mq_mosq_destroy(m);
    return err;
}

static enum mq_err mq_mosq_start(void *instance)
{
    struct mq_mosq *m = instance;
    if (!m || m->thread_started || atomic_load(&m->stopping))
        return MQ_ERR_INVAL;
    const struct mq_config_broker *b = m->broker;
    /* The one thing an operator must know about this client (see the comment at the top of this file). */
    if (m->durable) {
        MQ_INFO("broker %s: QoS 1/2 messages are acknowledged once their records are durable", m->tag);
        if (m->rx)
            MQ_INFO("broker %s: redeliveries of stored messages are recognised and not stored again", m->tag);
        for (size_t i = 0; i < m->ctx.nsubs; i++) {
            if (m->ctx.subs[i].qos == 2) {
                MQ_INFO(
                    "broker %s: QoS 2 filters are subscribed at QoS 1 (libmosquitto answers PUBREC before "
                    "the record is durable); %s",
                    m->tag,
                    m->rx ? "with the redelivery guard that gives the same exactly-once outcome"
                          : "without the redelivery guard (no persistent session or dedup: off) a "
                            "redelivery after a crash or reconnect can store a message twice");
                break;
            }
        }
    } else if (m->ctx.flush_interval_ms > 0)
        MQ_NOTICE("broker %s: client mosquitto acknowledges QoS 1/2 messages on receipt, before they are "
                  "durable: a crash can lose up to log.flush_interval_ms = %lld ms of received messages "
                  "(durable_ack: true closes this window)",
                  m->tag, (long long)m->ctx.flush_interval_ms);
    else
        MQ_NOTICE("broker %s: client mosquitto acknowledges QoS 1/2 messages on receipt, before they are "
                  "durable: a crash can lose the messages received within the log's flush interval "
                  "(durable_ack: true closes this window)",
                  m->tag);
    MQ_INFO("broker %s: connecting to %s:%d as %s (MQTT %s, %s session%s)", m->tag, b->host, b->port,
            m->client_id, b->protocol == 5 ? "5" : "3.1.1", b->clean_session ? "clean" : "persistent",
            b->tls ? ", TLS" : "");
    mq_reconnect_init(&m->reconnect, b->reconnect_min_ms, b->reconnect_max_ms,
                      (uint64_t)mq_mono_us() ^ (uint64_t)(uintptr_t)m ^ ((uint64_t)m->ctx.session << 32));
    int e = pthread_create(&m->thread, NULL, mq_mosq_thread, m);
    if (e != 0) {
        MQ_ERROR("broker %s: cannot start the network thread: %s", m->tag, MQ_STRERROR(e));
        return mq_err_from_errno(e);
    }
    m->thread_started = true;
    return MQ_OK;
}

static void mq_mosq_stop(void *instance)
{
    struct mq_mosq *m = instance;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    atomic_store(&m->stopping, true);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    if (m->thread_started) {
        pthread_join(m->thread, NULL);
        m->thread_started = false;
        MQ_INFO("broker %s: stopped", m->tag);
    }
}

static void mq_mosq_destroy(void *instance)
{
    struct mq_mosq *m = instance;
    if (!m)
        return;
    if (m->sync_ready)
        mq_mosq_stop(m);
    if (m->mosq)
        mosquitto_destroy(m->mosq);
    if (m->lib_ref)
        mq_mosq_lib_unref();
    if (m->sync_ready) {
        pthread_cond_destroy(&m->cond);
        pthread_mutex_destroy(&m->mu);
    }
    for (int q = 0; q < 3; q++)
        free(m->subs_by_qos[q]);
    mq_ingest_session_put(m->ctx.ingest, m->rx);
    mq_mosq_msg_free(m);
    free(m->client_id);
    free(m->tag);
    free(m);
}

static void mq_mosq_stats(void *instance, struct mq_connector_stats *st)
{
    struct mq_mosq *m = instance;
    memset(st, 0, sizeof *st);
    if (!m)
        return;
    mq_connector_counters_read(&m->st, st);
    if (m->sync_ready) {
        pthread_mutex_lock(&m->mu);
        snprintf(st->last_error, sizeof st->last_error, "%s", m->last_error);
        pthread_mutex_unlock(&m->mu);
    }
}

const struct mq_connector mq_connector_mosquitto = {
    .version = MQ_CONNECTOR_VERSION,
    .name = "mosquitto",
    .create = mq_mosq_create,
    .start = mq_mosq_start,
    .stop = mq_mosq_stop,
    .destroy = mq_mosq_destroy,
    .stats = mq_mosq_stats,
};
