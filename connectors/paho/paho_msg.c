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
 *  - backpressure (the store answers MQ_ERR_FULL or fails to write): the message is held and retried inside
 *    the callback (mq_hold_store(), gateway/connector/hold.h). Paho's receive thread stops reading, the
 *    broker's in-flight window fills and it stops sending; its session queues the rest. The time is counted
 *    in stats paused_ms.
 *  - durable_ack and QoS >= 1: mq_hold_durable() (which asks the log to flush at once) before returning.
 *    QoS 0 never waits; without durable_ack nothing waits for the disk.
 * A message that can never be stored (an invalid topic, a record larger than the log takes) is logged by
 * ingest, with its cause, and acknowledged: the broker would only send it again.
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
            mq_paho_header_set(&hdrs[n++], MQ_HDR_CONTENT_TYPE, MQ_HDR_LEN(MQ_HDR_CONTENT_TYPE),
                               &pr->value.data);
            break;
        case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
            mq_paho_header_set(&hdrs[n++], MQ_HDR_RESPONSE_TOPIC, MQ_HDR_LEN(MQ_HDR_RESPONSE_TOPIC),
                               &pr->value.data);
            break;
        case MQTTPROPERTY_CODE_CORRELATION_DATA:
            mq_paho_header_set(&hdrs[n++], MQ_HDR_CORRELATION_DATA, MQ_HDR_LEN(MQ_HDR_CORRELATION_DATA),
                               &pr->value.data);
            break;
        default:
            break;
        }
    }
    return n;
}

bool mq_paho_give_up(void *opaque)
{
    /* Paho acknowledges whatever the callback returns: only a clean session, which the broker forgets
     * anyway, may give a message up; a persistent one holds on until the store takes it */
    struct mq_paho *p = opaque;
    return atomic_load(&p->stop_flag) && p->broker->clean_session;
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
        .session = p->rx,
        .packet_id = m->msgid,
        .dup = m->dup != 0,
    };
    struct mq_header stack_hdrs[MQ_PAHO_HEADERS_ON_STACK];
    struct mq_header *hdrs = NULL;
    int nh = p->v5 ? mq_paho_header_count(&m->properties) : 0;
    if (nh > 0) {
        hdrs = nh <= MQ_PAHO_HEADERS_ON_STACK ? stack_hdrs : malloc((size_t)nh * sizeof *hdrs);
        while (!hdrs) { /* out of memory: not acknowledging is the only safe answer; wait for memory */
            mq_sleep_ms(10);
            hdrs = malloc((size_t)nh * sizeof *hdrs);
        }
        msg.headers = hdrs;
        msg.header_count = mq_paho_headers(&m->properties, hdrs);
    }

    struct mq_ticket ticket = {.n = 0};
    enum mq_err err = mq_hold_store(&p->hold, &msg, &ticket);
    if (err == MQ_OK) {
        if (p->broker->durable_ack && msg.qos >= 1 && ticket.n > 0)
            mq_hold_durable(&p->hold, &ticket); /* only a stopping clean session gives up */
        atomic_fetch_add(&p->st.messages, 1);
        atomic_fetch_add(&p->st.bytes, msg.payload_len);
    } else if (mq_hold_permanent(err)) {
        atomic_fetch_add(&p->dropped, 1);
    } else {
        MQ_WARN("broker %s: stopping a clean session: message on %.*s given up (%s)", p->tag,
                (int)msg.topic_len, msg.topic, mq_strerror(err));
    }

    if (hdrs && hdrs != stack_hdrs)
        free(hdrs);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    atomic_fetch_sub(&p->in_callback, 1);
    return 1; /* Paho acknowledges now */
}
