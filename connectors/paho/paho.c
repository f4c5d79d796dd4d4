/*
 * paho.c - the MQTT source connector on Eclipse Paho MQTT C (MQTTAsync): the connector vtable and the
 * instance's lifecycle (create, start, stop, destroy, stats).
 *
 * The connection state machine and reconnect backoff live in paho_conn.c, message arrival and the
 * acknowledgement policy in paho_msg.c; paho_int.h explains Paho's threading, which decides most of the
 * design. Paho's own persistence is not used (MQTTCLIENT_PERSISTENCE_NONE): its file store never fsyncs and
 * is wiped on a clean start, and our durability comes from acknowledging only stored records.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paho.h"
#include "paho_int.h"
#include "util/diag.h"
#include "util/parse.h"

const char *mq_paho_strerror(int rc)
{
    const char *s = MQTTAsync_strerror(rc);
    return s ? s : "unknown Paho error";
}

static enum mq_err mq_paho_build_uri(struct mq_paho *p, char *errstr, size_t errstr_size)
{
    const struct mq_config_broker *b = p->broker;
    if (!b->host || b->port <= 0 || b->port > 65535)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "broker %s: no host or port", b->name);
    bool v6 = strchr(b->host, ':') != NULL;
    size_t len = strlen(b->host) + 32;
    p->uri = malloc(len);
    if (!p->uri)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    snprintf(p->uri, len, "%s://%s%s%s:%d", b->tls ? "ssl" : "tcp", v6 ? "[" : "", b->host, v6 ? "]" : "",
             b->port);
    return MQ_OK;
}

static void mq_paho_destroy(void *instance);

/*
 * Paho as Debian builds it (without PAHO_HIGH_PERFORMANCE) records every entry to and exit from its internal
 * functions in an in-memory trace ring, under a global mutex and with a strcpy of the function name, unless
 * the trace level is above TRACE_MINIMUM. On the receive thread that was about 40% of the time per message
 * (perf, tests/bench/ingest at QoS 0). TRACE_ERROR is the highest level Paho accepts; it keeps errors in the
 * ring. Someone who asks for Paho's trace (MQTT_C_CLIENT_TRACE, MQTT_C_CLIENT_TRACE_LEVEL) keeps it. Done
 * once, before the first client exists, so that no Paho thread reads the level while it changes.
 */
static void mq_paho_trace_off(void)
{
    if (!getenv("MQTT_C_CLIENT_TRACE") && !getenv("MQTT_C_CLIENT_TRACE_LEVEL"))
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
}

static enum mq_err mq_paho_create(const struct mq_connector_ctx *ctx, void **instance, char *errstr,
                                  size_t errstr_size)
{
    if (!ctx || !ctx->broker || !ctx->ingest || (ctx->nsubs > 0 && !ctx->subs) || ctx->nsubs > 100000)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "paho: incomplete connector context");
    const struct mq_config_broker *b = ctx->broker;
    if (b->protocol != 4 && b->protocol != 5)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "broker %s: unsupported MQTT protocol level %d",
                       b->name, b->protocol);

    struct mq_paho *p = calloc(1, sizeof *p);
    if (!p)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    enum mq_err err = MQ_OK;
    p->ctx = *ctx;
    p->broker = b;
    p->v5 = b->protocol == 5;
    p->state = MQ_PAHO_IDLE;
    mq_reconnect_init(&p->reconnect, b->reconnect_min_ms, b->reconnect_max_ms,
                      (uint64_t)mq_mono_us() ^ (uint64_t)(uintptr_t)p ^ ((uint64_t)ctx->session << 32));
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "paho: cannot create a mutex");
    }
    pthread_condattr_t ca; /* the supervisor waits for monotonic deadlines */
    bool cond_ok = pthread_condattr_init(&ca) == 0;
    if (cond_ok) {
        cond_ok =
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&p->cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond_ok) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "paho: cannot create a condition variable");
    }
    p->lock_init = true;

    /* Client id: the configured one, "-<session>" for connections after the first. */
    const char *base = b->client_id ? b->client_id : b->name;
    size_t idlen = strlen(base) + 24;
    p->client_id = malloc(idlen);
    if (!p->client_id) {
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (ctx->session > 0)
        snprintf(p->client_id, idlen, "%s-%d", base, ctx->session);
    else
        snprintf(p->client_id, idlen, "%s", base);

    size_t taglen = strlen(b->name) + strlen(p->client_id) + 4;
    p->tag = malloc(taglen);
    if (!p->tag) {
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    snprintf(p->tag, taglen, "%s (%s)", b->name, p->client_id);
    p->hold = (struct mq_hold){.ingest = ctx->ingest,
                               .broker = b->name,
                               .tag = p->tag,
                               .counters = &p->st,
                               .give_up = mq_paho_give_up,
                               .opaque = p};

    if ((err = mq_paho_build_uri(p, errstr, errstr_size)) != MQ_OK)
        goto fail;
    if ((err = mq_config_broker_password(b, &p->password, errstr, errstr_size)) != MQ_OK)
        goto fail;

    p->nsubs = (int)ctx->nsubs;
    if (p->nsubs > 0) {
        p->filters = calloc((size_t)p->nsubs, sizeof *p->filters);
        p->qos = calloc((size_t)p->nsubs, sizeof *p->qos);
        if (!p->filters || !p->qos) {
            err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto fail;
        }
    }
    bool qos2 = false, any_qos = false;
    for (int i = 0; i < p->nsubs; i++)
        any_qos |= ctx->subs[i].qos > 0;
    /* exactly once: with a persistent session and durable acknowledgement, the session's redelivery guard
     * (ingest.h) keeps redeliveries of stored messages from being stored again */
    bool guarded = any_qos && b->durable_ack && !b->clean_session && b->dedup != MQ_DEDUP_OFF;
    for (int i = 0; i < p->nsubs; i++) {
        int q = ctx->subs[i].qos;
        if (!ctx->subs[i].filter || q < 0 || q > 2) {
            err =
                mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "broker %s: invalid subscription %d", b->name, i);
            goto fail;
        }
        p->filters[i] = strdup(ctx->subs[i].filter);
        if (!p->filters[i]) {
            err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto fail;
        }
        /* QoS 2 with durable_ack is subscribed at QoS 1, whose PUBACK waits for the record, and the guard
         * makes the outcome exactly once, as QoS 2 promises. MQTT 3.1.1: Paho answers PUBREC before it hands
         * a QoS 2 message over, which ends the broker's responsibility for it. MQTT 5: Paho holds PUBREC
         * back, but mosquitto 2.0.11 resends messages answered with PUBREC as new PUBLISHes after a
         * reconnect, as far back as its QoS 2 exchanges are unfinished (test_e2e_crash): beyond any
         * window a guard could keep. Without the guard MQTT 5 keeps QoS 2 (crash-safe, not duplicate-free).
         */
        p->qos[i] = q == 2 && b->durable_ack && (!p->v5 || guarded) ? 1 : q;
        qos2 |= p->qos[i] == 2;
    }
    bool downgraded = false;
    for (int i = 0; i < p->nsubs; i++)
        downgraded |= p->qos[i] != ctx->subs[i].qos;
    if (downgraded)
        MQ_INFO("broker %s: QoS 2 filters are subscribed at QoS 1; %s", b->name,
                guarded ? "with durable acknowledgement and the redelivery guard that gives the same "
                          "exactly-once outcome"
                        : "without the redelivery guard (no persistent session or dedup: off) a redelivery "
                          "after a crash or reconnect can store a message twice");
    if (guarded && (err = mq_ingest_session_get(ctx->ingest, b->name, p->client_id, b->max_inflight, b->dedup,
                                                &p->rx, errstr, errstr_size)) != MQ_OK)
        goto fail;

    static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
    pthread_once(&trace_once, mq_paho_trace_off);
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer;
    copts.MQTTVersion = p->v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    int rc = MQTTAsync_createWithOptions(&p->client, p->uri, p->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                         &copts);
    if (rc != MQTTASYNC_SUCCESS) {
        p->client = NULL;
        err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "broker %s: MQTTAsync_create(%s): %s", b->name,
                      p->uri, MQ_CLAUSE(mq_paho_strerror(rc)));
        goto fail;
    }
    rc = MQTTAsync_setCallbacks(p->client, p, mq_paho_on_connection_lost, mq_paho_on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS && p->v5)
        rc = MQTTAsync_setDisconnected(p->client, p, mq_paho_on_disconnected);
    if (rc != MQTTASYNC_SUCCESS) {
        err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "broker %s: MQTTAsync_setCallbacks: %s", b->name,
                      MQ_CLAUSE(mq_paho_strerror(rc)));
        goto fail;
    }

    /* mosquitto 2.0.11 does not keep to its in-flight limit (max_inflight_messages for MQTT 3.1.1, our
     * receive maximum for MQTT 5): each PUBCOMP can move up to that many queued messages into flight
     * (db__message_delete_outgoing, mosquitto issue #2301). With more than 65535 QoS 2 messages in flight it
     * then hands out packet identifiers that are still in use, and drops the connection ("protocol error") on
     * a PUBCOMP that no longer matches. Under MQTT 3.1.1 Paho sends PUBREC at once and delivers on PUBREL,
     * and a new PUBLISH with a pending identifier replaces the undelivered one
     * (MQTTProtocol_handlePublishes): the older message is acknowledged but never stored, and redelivery
     * after the reconnect adds duplicates. Under MQTT 5 the message is stored before PUBREC, so the replaced
     * entry was already stored (observed: 100000 messages exactly once despite the broker's protocol error).
     * Such a backlog builds up when the broker queues faster than the callback stores (one flush per message
     * with durable_ack) or when a persistent session resumes after a long absence. */
    if (qos2 && !p->v5)
        MQ_WARN("broker %s: QoS 2 over MQTT 3.1.1: a broker that reuses packet identifiers still in flight "
                "(mosquitto 2.0.11 with a backlog of more than 65535 QoS 2 messages for this session) makes "
                "Paho drop messages it has acknowledged; use protocol 5",
                b->name);
    *instance = p;
    return MQ_OK;

fail:
    mq_paho_destroy(p);
    return err;
}

static enum mq_err mq_paho_start(void *instance)
{
    struct mq_paho *p = instance;
    if (!p || !p->client)
        return MQ_ERR_INVAL;
    return mq_paho_conn_start(p);
}

static void mq_paho_stop(void *instance)
{
    struct mq_paho *p = instance;
    if (!p)
        return;
    mq_paho_conn_stop(p); /* joins the supervisor, which disconnects */
    if (p->client) {
        /* Destroying takes Paho's global mutex, under which the receive thread runs our callbacks: once it
         * returns no callback of this client runs or will run. */
        MQTTAsync_destroy(&p->client);
        p->client = NULL;
    }
    while (atomic_load(&p->in_callback) > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&p->st.connected, false);
}

static void mq_paho_destroy(void *instance)
{
    struct mq_paho *p = instance;
    if (!p)
        return;
    mq_paho_stop(p);
    if (p->lock_init) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
    }
    for (int i = 0; p->filters && i < p->nsubs; i++)
        free(p->filters[i]);
    free(p->filters);
    free(p->qos);
    if (p->rx)
        mq_ingest_session_put(p->hold.ingest, p->rx);
    if (p->password) {
        memset(p->password, 0, strlen(p->password));
        free(p->password);
    }
    free(p->uri);
    free(p->tag);
    free(p->client_id);
    free(p);
}

static void mq_paho_stats(void *instance, struct mq_connector_stats *st)
{
    struct mq_paho *p = instance;
    memset(st, 0, sizeof *st);
    if (!p)
        return;
    mq_connector_counters_read(&p->st, st);
    if (p->lock_init) { /* held only briefly, never across a blocking callback */
        pthread_mutex_lock(&p->lock);
        snprintf(st->last_error, sizeof st->last_error, "%s", p->last_error);
        pthread_mutex_unlock(&p->lock);
    }
}

const struct mq_connector mq_connector_paho = {
    .version = MQ_CONNECTOR_VERSION,
    .name = "paho",
    .create = mq_paho_create,
    .start = mq_paho_start,
    .stop = mq_paho_stop,
    .destroy = mq_paho_destroy,
    .stats = mq_paho_stats,
};
