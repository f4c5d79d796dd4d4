/*
 * paho_msg.c - message arrival for the Paho connector: MQTT 5 properties become record headers, the
 * message goes to the ingest layer, and the callback returns (which is when Paho acknowledges it) only once
 * the message is stored, and with durable_ack once its records are durable.
 *
 * Why the callback blocks. Paho writes the acknowledgement right after messageArrived returns: PUBACK for
 * QoS 1 and PUBREC for QoS 2 under MQTT 5 (MQTTProtocol_handlePublishes), PUBCOMP for QoS 2 under MQTT 3.1.1,
 * where PUBREC already went out on receipt and the callback runs on PUBREL (MQTTProtocol_handlePubrels).
 * Returning 0 does not hold the acknowledgement back: Paho queues the message in memory and acknowledges it
 * all the same. So nothing is returned before the message is stored:
 *  - backpressure (the store answers MQ_ERR_FULL or fails to write): retry inside the callback with a short
 *    capped backoff. Paho's receive thread stops reading, the broker's in-flight window fills and it stops
 *    sending; its session queues the rest. The time is counted in stats paused_ms.
 *  - durable_ack and QoS >= 1: mq_ingest_wait() (which asks the log to flush at once) before returning.
 *    QoS 0 never waits; without durable_ack nothing waits for the disk.
 * An invalid topic (MQ_ERR_INVAL) is logged and acknowledged: the broker would only send it again.
 *
 * The cost: Paho has one receive thread per process and holds its global mutex while the callback runs, so a
 * durable-ack wait (one group commit, typically an fdatasync) stalls every Paho client of the process; see
 * paho_int.h and the connector's report for the measured throughput.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/ingest.h"
#include "paho_int.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_PAHO_HEADERS_ON_STACK 16
#define MQ_PAHO_RETRY_MAX_MS     100   /* backoff cap while the store pushes back */
#define MQ_PAHO_WAIT_SLICE_MS    1000  /* one mq_ingest_wait(); loop so that long waits get logged */
#define MQ_PAHO_WARN_EVERY_MS    10000 /* repeat "still paused" warnings this often */

static void mq_paho_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Header slots a message's MQTT 5 properties need. */
static int mq_paho_header_count(const MQTTProperties *props)
{
    int n = 0;
    for (int i = 0; i < props->count; i++) {
        switch (props->array[i].identifier) {
        case MQTTPROPERTY_CODE_USER_PROPERTY:
        case MQTTPROPERTY_CODE_CONTENT_TYPE:
        case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
        case MQTTPROPERTY_CODE_CORRELATION_DATA:
            n++;
            break;
        default:
            break;
        }
    }
    return n;
}

static void mq_paho_header_set(struct mq_header *h, const char *key, int32_t key_len, const MQTTLenString *v)
{
    h->key = key;
    h->key_len = key_len;
    h->value = v->data ? v->data : "";
    h->value_len = v->data ? v->len : 0;
}

/* Fills hdrs (room for mq_paho_header_count() entries) from props; the headers point into props. */
static int32_t mq_paho_headers(const MQTTProperties *props, struct mq_header *hdrs)
{
    int32_t n = 0;
    for (int i = 0; i < props->count; i++) {
        const MQTTProperty *pr = &props->array[i];
        switch (pr->identifier) {
        case MQTTPROPERTY_CODE_USER_PROPERTY:
            mq_paho_header_set(&hdrs[n], pr->value.data.data ? pr->value.data.data : "",
                               pr->value.data.data ? pr->value.data.len : 0, &pr->value.value);
            n++;
            break;
        case MQTTPROPERTY_CODE_CONTENT_TYPE:
            mq_paho_header_set(&hdrs[n++], "mqtt.content_type", 17, &pr->value.data);
            break;
        case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
            mq_paho_header_set(&hdrs[n++], "mqtt.response_topic", 19, &pr->value.data);
            break;
        case MQTTPROPERTY_CODE_CORRELATION_DATA:
            mq_paho_header_set(&hdrs[n++], "mqtt.correlation_data", 21, &pr->value.data);
            break;
        default:
            break;
        }
    }
    return n;
}

/* Pause bookkeeping shared by the two retry loops. */
struct mq_paho_pause {
    int64_t since;     /* monotonic ms when the pause began, -1: not paused */
    int64_t accounted; /* up to when paused_ms has been credited */
    int64_t warned;
    int64_t backoff_ms;
};

static void mq_paho_pause_tick(struct mq_paho *p, struct mq_paho_pause *ps, const char *what, enum mq_err err,
                               const struct mq_source_msg *msg)
{
    int64_t now = mq_mono_ms();
    if (ps->since < 0) {
        ps->since = ps->accounted = ps->warned = now;
        ps->backoff_ms = 1;
        MQ_WARN("broker %s (%s): %s (%s): not reading from the broker until the store takes message on %.*s",
                p->broker->name, p->client_id, what, mq_strerror(err), (int)msg->topic_len, msg->topic);
    } else if (now - ps->warned >= MQ_PAHO_WARN_EVERY_MS) {
        ps->warned = now;
        MQ_WARN("broker %s (%s): still paused after %lld ms: %s (%s)%s", p->broker->name, p->client_id,
                (long long)(now - ps->since), what, mq_strerror(err),
                atomic_load(&p->stop_flag) ? "; stopping: the message is not acknowledged, so ending mqlogd "
                                             "now loses nothing (the broker sends it again)"
                                           : "");
    }
    mq_paho_sleep_ms(ps->backoff_ms);
    ps->backoff_ms = ps->backoff_ms * 2 > MQ_PAHO_RETRY_MAX_MS ? MQ_PAHO_RETRY_MAX_MS : ps->backoff_ms * 2;
    now = mq_mono_ms();
    atomic_fetch_add(&p->st.paused_ms, (uint64_t)(now - ps->accounted));
    ps->accounted = now;
}

static void mq_paho_pause_end(struct mq_paho *p, struct mq_paho_pause *ps)
{
    if (ps->since < 0)
        return;
    int64_t now = mq_mono_ms();
    atomic_fetch_add(&p->st.paused_ms, (uint64_t)(now - ps->accounted));
    MQ_INFO("broker %s (%s): resumed after %lld ms", p->broker->name, p->client_id,
            (long long)(now - ps->since));
    ps->since = -1;
}

/* Errors after which the same message can never be stored: drop (acknowledge) it. */
static bool mq_paho_permanent(enum mq_err err)
{
    return err == MQ_ERR_INVAL || err == MQ_ERR_RANGE || err == MQ_ERR_CONFIG;
}

/*
 * True when the message was stored (or deliberately dropped: no mapping, invalid topic); false only when a
 * clean session is being stopped and the message is given up (the broker forgets it with the session).
 */
static bool mq_paho_store(struct mq_paho *p, const struct mq_source_msg *msg, struct mq_ticket *ticket,
                          bool *stored)
{
    struct mq_paho_pause ps = {.since = -1};
    *stored = false;
    for (;;) {
        enum mq_err err = mq_ingest_message(p->ctx.ingest, p->broker->name, msg, ticket);
        if (err == MQ_OK) {
            mq_paho_pause_end(p, &ps);
            *stored = true;
            return true;
        }
        if (mq_paho_permanent(err)) {
            mq_paho_pause_end(p, &ps);
            atomic_fetch_add(&p->dropped, 1);
            MQ_WARN("broker %s (%s): message on %.*s dropped: %s", p->broker->name, p->client_id,
                    (int)msg->topic_len, msg->topic, mq_strerror(err));
            return true;
        }
        if (atomic_load(&p->stop_flag) && p->broker->clean_session) {
            mq_paho_pause_end(p, &ps);
            MQ_WARN("broker %s (%s): stopping a clean session: message on %.*s given up (%s)",
                    p->broker->name, p->client_id, (int)msg->topic_len, msg->topic, mq_strerror(err));
            return false;
        }
        mq_paho_pause_tick(p, &ps, "the store pushes back", err, msg);
    }
}

static void mq_paho_wait_durable(struct mq_paho *p, const struct mq_source_msg *msg,
                                 const struct mq_ticket *t)
{
    struct mq_ingest *in = p->ctx.ingest;
    if (mq_ingest_durable(in, t))
        return; /* a group commit already covered it: acknowledge without asking for a flush */
    struct mq_paho_pause ps = {.since = -1};
    int64_t start = mq_mono_ms(), warned = start;
    for (;;) {
        enum mq_err err = mq_ingest_wait(in, t, MQ_PAHO_WAIT_SLICE_MS);
        if (err == MQ_OK) {
            mq_paho_pause_end(p, &ps);
            return;
        }
        if (err == MQ_ERR_TIMEDOUT) {
            int64_t now = mq_mono_ms();
            if (now - warned >= MQ_PAHO_WARN_EVERY_MS) {
                warned = now;
                MQ_WARN("broker %s (%s): a record has not become durable after %lld ms; still waiting",
                        p->broker->name, p->client_id, (long long)(now - start));
            }
            continue;
        }
        if (atomic_load(&p->stop_flag) && p->broker->clean_session) {
            mq_paho_pause_end(p, &ps);
            return;
        }
        /* The store failed to write (e.g. disk full): the record may still become durable once it can. */
        mq_paho_pause_tick(p, &ps, "the store cannot make records durable", err, msg);
    }
}

int mq_paho_on_message(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct mq_paho *p = context;
    atomic_fetch_add(&p->in_callback, 1);

    struct mq_source_msg msg = {
        .topic = topic,
        .topic_len = topic_len > 0 ? (size_t)topic_len : strlen(topic),
        .payload = m->payload ? m->payload : "",
        .payload_len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0,
        .qos = m->qos,
        .retain = m->retained != 0,
        .timestamp = mq_now_ms(),
    };
    struct mq_header stack_hdrs[MQ_PAHO_HEADERS_ON_STACK];
    struct mq_header *hdrs = NULL;
    int nh = p->v5 ? mq_paho_header_count(&m->properties) : 0;
    if (nh > 0) {
        hdrs = nh <= MQ_PAHO_HEADERS_ON_STACK ? stack_hdrs : malloc((size_t)nh * sizeof *hdrs);
        while (!hdrs) { /* out of memory: not acknowledging is the only safe answer; wait for memory */
            mq_paho_sleep_ms(10);
            hdrs = malloc((size_t)nh * sizeof *hdrs);
        }
        msg.headers = hdrs;
        msg.header_count = mq_paho_headers(&m->properties, hdrs);
    }

    struct mq_ticket ticket = {.n = 0};
    bool stored = false;
    if (mq_paho_store(p, &msg, &ticket, &stored) && stored) {
        if (p->broker->durable_ack && msg.qos >= 1 && ticket.n > 0)
            mq_paho_wait_durable(p, &msg, &ticket);
        atomic_fetch_add(&p->st.messages, 1);
        atomic_fetch_add(&p->st.bytes, msg.payload_len);
    }

    if (hdrs && hdrs != stack_hdrs)
        free(hdrs);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    atomic_fetch_sub(&p->in_callback, 1);
    return 1; /* Paho acknowledges now */
}
