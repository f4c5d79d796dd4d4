/*
 * paho_conn.c - connecting, subscribing, reconnecting (with the backoff every connector shares,
 * gateway/connector/reconnect.h) and disconnecting, for one Paho connector instance.
 *
 * A supervisor thread per instance owns the state machine (paho_int.h): it issues MQTTAsync_connect() when
 * the backoff delay has passed and MQTTAsync_disconnect() when the instance stops. Paho's callbacks (on its
 * process-wide receive thread) only record what happened and wake the supervisor; they never sleep. Paho's
 * automatic reconnect is not used: its intervals are whole seconds, while reconnect_min/max are milliseconds.
 *
 * Every successful connection subscribes to all of the instance's filters again, even when the broker kept
 * the persistent session (CONNACK session present): resubscribing is harmless and repairs a session the
 * broker lost or expired.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connector/why.h"
#include "paho_int.h"
#include "util/diag.h"
#include "util/parse.h"

/* MQTT 5 session expiry interval meaning "never expires" (MQTT 5, 3.1.2.11.2). */
#define MQ_PAHO_SESSION_NEVER_EXPIRES 0xFFFFFFFFu

/* How long stop() waits beyond Paho's own timeouts for a connect or disconnect outcome. */
#define MQ_PAHO_STOP_MARGIN_MS        2000
#define MQ_PAHO_DISCONNECT_TIMEOUT_MS 1000

/* With p->lock held: the connection is gone (or never came); plan the next attempt. permanent: the broker
 * refused for a reason only an operator can cure (reconnect.h). */
static void mq_paho_schedule_locked(struct mq_paho *p, bool permanent)
{
    p->next_attempt_ms = mq_mono_ms() + mq_reconnect_failed(&p->reconnect, permanent);
    p->state = p->stopping ? MQ_PAHO_CLOSED : MQ_PAHO_WAITING;
    pthread_cond_broadcast(&p->cond);
}

static void mq_paho_log_retry(struct mq_paho *p, const char *what, const char *why)
{
    int64_t in = p->next_attempt_ms - mq_mono_ms();
    /* Paho's reasons are sentences ("The connection was lost."): their period would end ours midway. */
    char reason[600];
    mq_clause(why ? why : "no reason given", reason, sizeof reason);
    /* once per change of reason, not at every retry (reconnect.h) */
    char key[sizeof reason + 64];
    snprintf(key, sizeof key, "%s: %s", what, reason);
    bool news = mq_reconnect_news(&p->reconnect, key);
    size_t kn = strnlen(key, sizeof p->last_error - 1); /* /readyz shows it: the start is enough */
    memcpy(p->last_error, key, kn);
    p->last_error[kn] = '\0';
    MQ_DIAG(news ? MQ_LV_WARN : MQ_LV_DEBUG, "broker %s (%s): %s: %s; reconnecting in %lld ms (attempt %d)%s",
            p->broker->name, p->client_id, what, reason, (long long)(in > 0 ? in : 0), p->reconnect.attempts,
            news ? "" : ", the same failure again");
}

/* ---- subscribing ---- */

static void mq_paho_log_granted(struct mq_paho *p, int i, int code)
{
    if (code >= 0x80)
        MQ_ERROR("broker %s (%s): subscription to %s refused (reason code 0x%02x)", p->broker->name,
                 p->client_id, p->filters[i], (unsigned)code);
    else if (code < p->qos[i])
        MQ_WARN("broker %s (%s): subscription to %s granted QoS %d instead of %d", p->broker->name,
                p->client_id, p->filters[i], code, p->qos[i]);
}

static void mq_paho_on_subscribe(void *context, MQTTAsync_successData *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    if (p->nsubs == 1)
        mq_paho_log_granted(p, 0, data->alt.qos);
    else
        for (int i = 0; i < p->nsubs && data->alt.qosList; i++)
            mq_paho_log_granted(p, i, data->alt.qosList[i]);
    MQ_DEBUG("broker %s (%s): subscribed to %d filter(s)", p->broker->name, p->client_id, p->nsubs);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_subscribe5(void *context, MQTTAsync_successData5 *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    if (data->alt.sub.reasonCodeCount <= 1 || !data->alt.sub.reasonCodes)
        mq_paho_log_granted(p, 0, (int)data->reasonCode);
    else
        for (int i = 0; i < p->nsubs && i < data->alt.sub.reasonCodeCount; i++)
            mq_paho_log_granted(p, i, (int)data->alt.sub.reasonCodes[i]);
    MQ_DEBUG("broker %s (%s): subscribed to %d filter(s)", p->broker->name, p->client_id, p->nsubs);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_subscribe_failure(void *context, MQTTAsync_failureData *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    MQ_ERROR("broker %s (%s): subscribing failed: %s (code %d)", p->broker->name, p->client_id,
             MQ_CLAUSE(data && data->message ? data->message : mq_paho_strerror(data ? data->code : 0)),
             data ? data->code : 0);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_subscribe_failure5(void *context, MQTTAsync_failureData5 *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    if (p->nsubs == 1 && data)
        mq_paho_log_granted(p, 0, (int)data->reasonCode);
    else
        MQ_ERROR("broker %s (%s): subscribing failed: %s (reason code 0x%02x)", p->broker->name, p->client_id,
                 MQ_CLAUSE(data && data->message ? data->message : "refused"),
                 data ? (unsigned)data->reasonCode : 0u);
    atomic_fetch_sub(&p->in_callback, 1);
}

/* Called on Paho's receive thread from the connect success callback (API calls are allowed there). */
static void mq_paho_subscribe(struct mq_paho *p)
{
    if (p->nsubs == 0)
        return;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = p;
    if (p->v5) {
        ro.onSuccess5 = mq_paho_on_subscribe5;
        ro.onFailure5 = mq_paho_on_subscribe_failure5;
    } else {
        ro.onSuccess = mq_paho_on_subscribe;
        ro.onFailure = mq_paho_on_subscribe_failure;
    }
    int rc = MQTTAsync_subscribeMany(p->client, p->nsubs, p->filters, p->qos, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        MQ_ERROR("broker %s (%s): cannot subscribe: %s", p->broker->name, p->client_id,
                 MQ_CLAUSE(mq_paho_strerror(rc)));
}

/* ---- connecting ---- */

static void mq_paho_connected(struct mq_paho *p, int session_present)
{
    pthread_mutex_lock(&p->lock);
    bool stopping = p->stopping;
    if (p->state == MQ_PAHO_CONNECTING)
        p->state = MQ_PAHO_CONNECTED;
    int failed = p->reconnect.attempts;
    mq_reconnect_connected(&p->reconnect);
    p->last_error[0] = '\0';
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_add(&p->st.connects, 1);
    atomic_store(&p->st.connected, true);
    char after[64] = "";
    if (failed > 1) /* the failures were logged once: say how long it went on */
        snprintf(after, sizeof after, ", after %d failed attempts", failed);
    MQ_INFO("broker %s (%s): connected to %s, MQTT %s, %s session%s%s", p->broker->name, p->client_id, p->uri,
            p->v5 ? "5" : "3.1.1", p->broker->clean_session ? "clean" : "persistent",
            session_present ? " resumed" : "", after);
    mq_ingest_session_connected(p->rx, session_present != 0);
    if (!stopping)
        mq_paho_subscribe(p);
}

/* code: Paho's (negative) or, for a refusal, the CONNACK return code (MQTT 3.1.1); reason: the MQTT 5 reason
 * code of a refusal, or 0. */
static void mq_paho_connect_failed(struct mq_paho *p, const char *why, int code, int reason)
{
    bool permanent = p->v5 ? reason >= 0x80 && mq_reconnect_refusal_permanent(5, reason)
                           : code > 0 && mq_reconnect_refusal_permanent(4, code);
    /* Paho says "TCP/TLS connect failure" whatever went wrong: a TLS file that is gone or broken (Paho reads
     * them at every attempt) is named instead (why.h); read before the lock, it touches the disk */
    char files[512];
    bool file_bad = !permanent && code < 0 && mq_connector_tls_why(p->broker, files, sizeof files);
    pthread_mutex_lock(&p->lock);
    if (p->state == MQ_PAHO_CONNECTING) {
        mq_paho_schedule_locked(p, permanent);
        if (p->state == MQ_PAHO_WAITING) {
            char buf[600];
            /* an MQTT 5 refusal's why names its reason code already */
            int n = file_bad         ? snprintf(buf, sizeof buf, "%s", files)
                    : reason >= 0x80 ? snprintf(buf, sizeof buf, "%s", MQ_CLAUSE(why ? why : "refused"))
                                     : snprintf(buf, sizeof buf, "%s (code %d)%s%s",
                                                MQ_CLAUSE(why ? why : mq_paho_strerror(code)), code,
                                                p->tls_error[0] ? ": TLS: " : "", p->tls_error);
            if (n >= (int)sizeof buf)
                buf[sizeof buf - 2] = '~'; /* cut: say so, but a log line is enough */
            mq_paho_log_retry(p, "connection failed", buf);
        }
    }
    pthread_mutex_unlock(&p->lock);
}

static void mq_paho_on_connect(void *context, MQTTAsync_successData *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    mq_paho_connected(p, data ? data->alt.connect.sessionPresent : 0);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_connect5(void *context, MQTTAsync_successData5 *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    mq_paho_connected(p, data ? data->alt.connect.sessionPresent : 0);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_connect_failure(void *context, MQTTAsync_failureData *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    mq_paho_connect_failed(p, data ? data->message : NULL, data ? data->code : 0, 0);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_connect_failure5(void *context, MQTTAsync_failureData5 *data)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    char why[160];
    /* Paho 1.3.12 reports a CONNACK refusal with reasonCode 0 and the reason code in code (135 for "Not
     * authorized"), and message "CONNACK return code", which says nothing: name the reason instead. */
    int reason = !data                                        ? 0
                 : data->reasonCode != MQTTREASONCODE_SUCCESS ? (int)data->reasonCode
                 : data->code >= 0x80 && data->code <= 0xff   ? data->code
                                                              : 0;
    if (reason)
        snprintf(why, sizeof why, "%s (reason code 0x%02x)",
                 MQ_CLAUSE(MQTTReasonCode_toString((enum MQTTReasonCodes)reason)), (unsigned)reason);
    else
        snprintf(why, sizeof why, "%s", data && data->message ? data->message : "connect failed");
    mq_paho_connect_failed(p, why, data ? data->code : 0, reason);
    atomic_fetch_sub(&p->in_callback, 1);
}

/* OpenSSL's error lines of a failed attempt, from Paho's thread: the first goes into the attempt's failure
 * line (logged once per change of reason), all of them to debug level. */
static int mq_paho_ssl_error(const char *str, size_t len, void *u)
{
    struct mq_paho *p = u;
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    MQ_DEBUG("broker %s (%s): TLS: %.*s", p->broker->name, p->client_id, (int)len, str);
    pthread_mutex_lock(&p->lock);
    if (!p->tls_error[0]) {
        char line[sizeof p->tls_error];
        snprintf(line, sizeof line, "%.*s", (int)len, str);
        mq_clause(line, p->tls_error, sizeof p->tls_error);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* Issues one connect attempt (from the supervisor, without p->lock). Returns Paho's code. */
static int mq_paho_connect(struct mq_paho *p)
{
    const struct mq_config_broker *b = p->broker;
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
    if (p->v5)
        o = o5;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;

    o.keepAliveInterval = (int)b->keepalive_s;
    o.connectTimeout = (int)((b->connect_timeout_ms + 999) / 1000);
    if (o.connectTimeout < 1)
        o.connectTimeout = 1;
    o.retryInterval = 0;
    o.automaticReconnect = 0;
    o.username = b->username;
    if (p->password) { /* binary: Paho would reject a password that is not valid UTF-8 */
        o.password = NULL;
        o.binarypwd.len = (int)strlen(p->password);
        o.binarypwd.data = p->password;
    }
    o.context = p;
    int rc = MQTTASYNC_SUCCESS;
    if (p->v5) {
        o.MQTTVersion = MQTTVERSION_5;
        o.cleansession = 0;
        o.cleanstart = b->clean_session ? 1 : 0;
        o.onSuccess5 = mq_paho_on_connect5;
        o.onFailure5 = mq_paho_on_connect_failure5;
        /* Without a session expiry interval an MQTT 5 broker drops the session when the connection ends,
         * whatever clean start says: ask it to keep a persistent session indefinitely. */
        MQTTProperty exp = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
        exp.value.integer4 = b->clean_session ? 0 : MQ_PAHO_SESSION_NEVER_EXPIRES;
        MQTTProperty rmax = {.identifier = MQTTPROPERTY_CODE_RECEIVE_MAXIMUM};
        rmax.value.integer2 = (unsigned short)(b->max_inflight < 1       ? 1
                                               : b->max_inflight > 65535 ? 65535
                                                                         : b->max_inflight);
        if (MQTTProperties_add(&props, &exp) != 0 || MQTTProperties_add(&props, &rmax) != 0) {
            MQTTProperties_free(&props);
            return MQTTASYNC_FAILURE;
        }
        o.connectProperties = &props;
    } else {
        o.MQTTVersion = MQTTVERSION_3_1_1;
        o.cleansession = b->clean_session ? 1 : 0;
        o.onSuccess = mq_paho_on_connect;
        o.onFailure = mq_paho_on_connect_failure;
    }
    if (b->tls) {
        ssl.trustStore = b->tls_opts.ca;
        ssl.keyStore = b->tls_opts.cert;
        ssl.privateKey = b->tls_opts.key;
        ssl.enableServerCertAuth = b->tls_opts.insecure ? 0 : 1;
        ssl.verify = b->tls_opts.insecure ? 0 : 1; /* host name check */
        ssl.ssl_error_cb = mq_paho_ssl_error;
        ssl.ssl_error_context = p;
        o.ssl = &ssl;
    }
    rc = MQTTAsync_connect(p->client, &o); /* copies everything it keeps */
    MQTTProperties_free(&props);
    return rc;
}

void mq_paho_on_connection_lost(void *context, char *cause)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);
    pthread_mutex_lock(&p->lock);
    if (p->state == MQ_PAHO_CONNECTED) {
        atomic_fetch_add(&p->st.disconnects, 1);
        atomic_store(&p->st.connected, false);
        mq_paho_schedule_locked(p, false);
        if (p->state == MQ_PAHO_WAITING)
            mq_paho_log_retry(p, "connection lost", cause);
    }
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_sub(&p->in_callback, 1);
}

void mq_paho_on_disconnected(void *context, MQTTProperties *props, enum MQTTReasonCodes reason)
{
    struct mq_paho *p = context;
    (void)props;
    atomic_fetch_add(&p->in_callback, 1);
    /* Paho closes the connection after this and calls connectionLost, which schedules the reconnect. */
    MQ_WARN("broker %s (%s): the broker disconnected us: %s (reason code 0x%02x)", p->broker->name,
            p->client_id, MQ_CLAUSE(MQTTReasonCode_toString(reason)), (unsigned)reason);
    atomic_fetch_sub(&p->in_callback, 1);
}

/* ---- disconnecting ---- */

static void mq_paho_disconnect_done(struct mq_paho *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == MQ_PAHO_DISCONNECTING)
        p->state = MQ_PAHO_CLOSED;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void mq_paho_on_disconnect(void *context, MQTTAsync_successData *data)
{
    struct mq_paho *p = context;
    (void)data;
    atomic_fetch_add(&p->in_callback, 1);
    mq_paho_disconnect_done(p);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_disconnect5(void *context, MQTTAsync_successData5 *data)
{
    struct mq_paho *p = context;
    (void)data;
    atomic_fetch_add(&p->in_callback, 1);
    mq_paho_disconnect_done(p);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_disconnect_failure(void *context, MQTTAsync_failureData *data)
{
    struct mq_paho *p = context;
    (void)data;
    atomic_fetch_add(&p->in_callback, 1);
    mq_paho_disconnect_done(p);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_on_disconnect_failure5(void *context, MQTTAsync_failureData5 *data)
{
    struct mq_paho *p = context;
    (void)data;
    atomic_fetch_add(&p->in_callback, 1);
    mq_paho_disconnect_done(p);
    atomic_fetch_sub(&p->in_callback, 1);
}

static void mq_paho_disconnect(struct mq_paho *p)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
    if (p->v5) {
        d = d5;
        d.onSuccess5 = mq_paho_on_disconnect5;
        d.onFailure5 = mq_paho_on_disconnect_failure5;
    } else {
        d.onSuccess = mq_paho_on_disconnect;
        d.onFailure = mq_paho_on_disconnect_failure;
    }
    d.timeout = MQ_PAHO_DISCONNECT_TIMEOUT_MS;
    d.context = p;
    /* Takes Paho's global mutex: waits for a message callback of any client that is still storing. */
    int rc = MQTTAsync_disconnect(p->client, &d);
    if (rc != MQTTASYNC_SUCCESS) {
        MQ_DEBUG("broker %s (%s): disconnect: %s", p->broker->name, p->client_id,
                 MQ_CLAUSE(mq_paho_strerror(rc)));
        mq_paho_disconnect_done(p);
    }
}

/* ---- the supervisor ---- */

static void mq_paho_wait_until(struct mq_paho *p, int64_t deadline_ms)
{
    int64_t now = mq_mono_ms();
    if (deadline_ms <= now)
        return;
    struct timespec ts;
    mq_mono_abstime(deadline_ms - now, &ts);
    pthread_cond_timedwait(&p->cond, &p->lock, &ts);
}

static void *mq_paho_supervisor(void *arg)
{
    struct mq_paho *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        if (p->state == MQ_PAHO_WAITING && mq_mono_ms() >= p->next_attempt_ms) {
            p->state = MQ_PAHO_CONNECTING;
            p->tls_error[0] = '\0';
            pthread_mutex_unlock(&p->lock);
            MQ_DEBUG("broker %s (%s): connecting to %s", p->broker->name, p->client_id, p->uri);
            int rc = mq_paho_connect(p);
            pthread_mutex_lock(&p->lock);
            if (rc != MQTTASYNC_SUCCESS && p->state == MQ_PAHO_CONNECTING) {
                mq_paho_schedule_locked(p, false);
                if (p->state == MQ_PAHO_WAITING)
                    mq_paho_log_retry(p, "cannot connect", MQ_CLAUSE(mq_paho_strerror(rc)));
            }
        } else if (p->state == MQ_PAHO_WAITING) {
            mq_paho_wait_until(p, p->next_attempt_ms);
        } else {
            pthread_cond_wait(&p->cond, &p->lock);
        }
    }

    /* Stopping: let a pending connect finish (Paho times it out), then disconnect. */
    int64_t deadline = mq_mono_ms() + p->broker->connect_timeout_ms + MQ_PAHO_STOP_MARGIN_MS;
    while (p->state == MQ_PAHO_CONNECTING && mq_mono_ms() < deadline)
        mq_paho_wait_until(p, deadline);
    if (p->state == MQ_PAHO_CONNECTED) {
        p->state = MQ_PAHO_DISCONNECTING;
        pthread_mutex_unlock(&p->lock);
        mq_paho_disconnect(p);
        pthread_mutex_lock(&p->lock);
        deadline = mq_mono_ms() + MQ_PAHO_DISCONNECT_TIMEOUT_MS + MQ_PAHO_STOP_MARGIN_MS;
        while (p->state == MQ_PAHO_DISCONNECTING && mq_mono_ms() < deadline)
            mq_paho_wait_until(p, deadline);
        MQ_INFO("broker %s (%s): disconnected", p->broker->name, p->client_id);
    }
    p->state = MQ_PAHO_CLOSED;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->st.connected, false);
    return NULL;
}

enum mq_err mq_paho_conn_start(struct mq_paho *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->thread_started || p->state != MQ_PAHO_IDLE) {
        pthread_mutex_unlock(&p->lock);
        return MQ_ERR_INVAL;
    }
    p->state = MQ_PAHO_WAITING;
    p->next_attempt_ms = mq_mono_ms();
    int e = pthread_create(&p->thread, NULL, mq_paho_supervisor, p);
    if (e != 0) {
        p->state = MQ_PAHO_IDLE;
        pthread_mutex_unlock(&p->lock);
        MQ_ERROR("broker %s (%s): cannot start a thread: %s", p->broker->name, p->client_id, MQ_STRERROR(e));
        return mq_err_from_errno(e);
    }
    p->thread_started = true;
    pthread_mutex_unlock(&p->lock);
    if (p->broker->durable_ack)
        MQ_INFO("broker %s (%s): QoS 1/2 messages are acknowledged once their records are durable",
                p->broker->name, p->client_id);
    return MQ_OK;
}

void mq_paho_conn_stop(struct mq_paho *p)
{
    if (!p->lock_init)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    atomic_store(&p->stop_flag, true);
    pthread_cond_broadcast(&p->cond);
    bool join = p->thread_started;
    p->thread_started = false;
    pthread_mutex_unlock(&p->lock);
    if (join)
        pthread_join(p->thread, NULL);
}
