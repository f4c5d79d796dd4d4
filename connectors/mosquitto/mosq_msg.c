/*
 * mosq_msg.c - the libmosquitto connector's message path: on_message turns a received message (and its
 * MQTT 5 properties) into a struct mq_source_msg and hands it to the ingest layer.
 *
 * Acknowledgement. By the time on_message runs, libmosquitto has queued the message's acknowledgement (QoS 1
 * PUBACK, QoS 2 PUBCOMP). Without durable_ack the loop writes it at once, the broker forgets the message,
 * and from here until the log's next flush (at most log.flush_interval_ms later) the record exists only in
 * this process: a crash in that window loses it. With durable_ack the instance runs libmosquitto in
 * threaded mode, where queued packets are written only by the loop's write phase; on_message adds the
 * record's place to m->pending and the network thread (mosq_conn.c) writes the acknowledgements of a whole
 * read batch once mq_mosq_pending_wait() has seen those records durable: one group commit per batch, and a
 * crash loses nothing the broker handed over at QoS 1 (QoS 2 is delivered only after our PUBREC, which the
 * broker takes as the hand-over, so durable_ack subscribes QoS 2 filters at QoS 1: mosq.c). A redelivery of
 * a message stored before the crash is recognised by the session's guard (ingest.h) and not stored
 * again. Either way this
 * callback never drops a message the store refuses for lack of room.
 *
 * Backpressure: when mq_ingest_message() says MQ_ERR_FULL, on_message keeps the message and retries with a
 * short, growing sleep (mq_hold_store(), gateway/connector/hold.h). Blocking here is what we want: the
 * network thread stops reading, so the socket's receive buffer fills, TCP closes its window, and the broker
 * queues the rest in our session. Nothing that was acknowledged is dropped.
 *
 * Keep-alive while blocked: mosquitto_loop() is not running, so no PINGREQ goes out and the broker closes
 * the connection after 1.5 x keepalive without traffic from us. We let that happen rather than work around
 * it: the held message stays in memory and is stored once the store takes it; everything the broker sent
 * after it is unacknowledged (still in our socket buffer), so with a persistent session (clean_session
 * false) the broker keeps it and delivers it again after we reconnect. A longer keepalive keeps the
 * connection through longer stalls; with a clean session a stall longer than that loses the broker's queue,
 * as a clean session always may. (Reading on while not storing would either drop acknowledged messages or
 * need an unbounded queue in memory; pinging from here is not possible with libmosquitto's public API.)
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "ingest/ingest.h"
#include "mosq_int.h"
#include "util/diag.h"
#include "util/parse.h"

void mq_mosq_msg_free(struct mq_mosq *m)
{
    free(m->hdrs);
    free(m->hdr_allocs);
    m->hdrs = NULL;
    m->hdr_allocs = NULL;
    m->cap_hdrs = m->cap_allocs = m->nhdrs = m->nallocs = 0;
}

static void mq_mosq_hdr_release(struct mq_mosq *m)
{
    for (int32_t i = 0; i < m->nallocs; i++)
        free(m->hdr_allocs[i]);
    m->nallocs = 0;
    m->nhdrs = 0;
}

/* Takes ownership of the libmosquitto-allocated strings a and b (either may be NULL) in every case. */
static bool mq_mosq_hdr_add(struct mq_mosq *m, const char *key, size_t key_len, void *value, size_t value_len,
                            void *a, void *b)
{
    if (m->nallocs + 2 > m->cap_allocs) {
        int32_t cap = m->cap_allocs ? m->cap_allocs * 2 : 16;
        void **p = realloc(m->hdr_allocs, (size_t)cap * sizeof *p);
        if (!p) {
            free(a);
            free(b);
            return false;
        }
        m->hdr_allocs = p;
        m->cap_allocs = cap;
    }
    if (a)
        m->hdr_allocs[m->nallocs++] = a;
    if (b)
        m->hdr_allocs[m->nallocs++] = b;
    if (m->nhdrs == m->cap_hdrs) {
        int32_t cap = m->cap_hdrs ? m->cap_hdrs * 2 : 8;
        struct mq_header *h = realloc(m->hdrs, (size_t)cap * sizeof *h);
        if (!h)
            return false;
        m->hdrs = h;
        m->cap_hdrs = cap;
    }
    /* MQTT strings and binary data are at most 65535 bytes: the int32 lengths cannot overflow */
    m->hdrs[m->nhdrs++] = (struct mq_header){
        .key = key, .key_len = (int32_t)key_len, .value = value, .value_len = (int32_t)value_len};
    return true;
}

/* MQTT 5 properties that become record headers: each user property under its own name, and content type,
 * response topic and correlation data under mqtt.*. Returns false when memory ran out. */
static bool mq_mosq_props_to_headers(struct mq_mosq *m, const mosquitto_property *props)
{
    for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
        int id = mosquitto_property_identifier(p);
        char *name = NULL, *value = NULL;
        void *bin = NULL;
        uint16_t bin_len = 0;
        bool ok = true;
        switch (id) {
        case MQTT_PROP_USER_PROPERTY:
            if (mosquitto_property_read_string_pair(p, id, &name, &value, false))
                ok = mq_mosq_hdr_add(m, name, strlen(name), value, strlen(value), name, value);
            break;
        case MQTT_PROP_CONTENT_TYPE:
            if (mosquitto_property_read_string(p, id, &value, false))
                ok = mq_mosq_hdr_add(m, MQ_HDR_CONTENT_TYPE, MQ_HDR_LEN(MQ_HDR_CONTENT_TYPE), value,
                                     strlen(value), value, NULL);
            break;
        case MQTT_PROP_RESPONSE_TOPIC:
            if (mosquitto_property_read_string(p, id, &value, false))
                ok = mq_mosq_hdr_add(m, MQ_HDR_RESPONSE_TOPIC, MQ_HDR_LEN(MQ_HDR_RESPONSE_TOPIC), value,
                                     strlen(value), value, NULL);
            break;
        case MQTT_PROP_CORRELATION_DATA:
            if (mosquitto_property_read_binary(p, id, &bin, &bin_len, false))
                ok = mq_mosq_hdr_add(m, MQ_HDR_CORRELATION_DATA, MQ_HDR_LEN(MQ_HDR_CORRELATION_DATA), bin,
                                     bin_len, bin, NULL);
            break;
        default: /* payload format, expiry, subscription identifiers, topic alias: not part of the record */
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* Adds a stored message's records to the pending set (highest offset per partition). */
static void mq_mosq_pending_add(struct mq_mosq *m, const struct mq_ticket *t)
{
    for (int i = 0; i < t->n; i++) {
        int j = 0;
        while (j < m->npending && m->pending[j].part != t->at[i].part)
            j++;
        if (j < m->npending) {
            if (t->at[i].offset > m->pending[j].offset)
                m->pending[j].offset = t->at[i].offset;
            continue;
        }
        if (m->npending == MQ_MOSQ_PENDING_MAX) /* rare: a batch over many partitions; wait for it now */
            mq_mosq_pending_wait(m);
        if (m->npending == MQ_MOSQ_PENDING_MAX)
            return; /* stopping: this message will not be acknowledged either */
        m->pending[m->npending].part = t->at[i].part;
        m->pending[m->npending].offset = t->at[i].offset;
        m->npending++;
    }
}

bool mq_mosq_pending_wait(struct mq_mosq *m)
{
    int done = 0;
    while (done < m->npending) {
        struct mq_ticket t = {.n = 0};
        for (int j = done; j < m->npending && t.n < MQ_TICKET_MAX; j++, t.n++) {
            t.at[t.n].part = m->pending[j].part;
            t.at[t.n].offset = m->pending[j].offset;
        }
        if (mq_hold_durable(&m->hold, &t) != MQ_OK) {
            /* stop() came first: keep what is not durable yet, its acknowledgements must not go out */
            m->withhold_acks = true;
            memmove(m->pending, m->pending + done, (size_t)(m->npending - done) * sizeof m->pending[0]);
            m->npending -= done;
            return false;
        }
        done += t.n;
    }
    if (m->npending > 0)
        mq_ingest_session_sync(m->rx); /* the guard's notes as durable as the records before the acks */
    m->npending = 0;
    return true;
}

void mq_mosq_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                        const mosquitto_property *props)
{
    (void)mosq;
    struct mq_mosq *m = obj;
    m->delivered++;
    struct mq_source_msg sm = {
        .topic = msg->topic,
        .topic_len = msg->topic ? strlen(msg->topic) : 0,
        .payload = msg->payload,
        .payload_len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
        .qos = msg->qos,
        .retain = msg->retain,
        .timestamp = mq_now_ms(),
        .session = m->rx,
        .packet_id = msg->mid,
        .dup = -1, /* libmosquitto does not pass the DUP flag on */
    };
    if (props) {
        if (!mq_mosq_props_to_headers(m, props))
            MQ_ERROR(
                "broker %s: out of memory reading the MQTT 5 properties of a message on '%s': storing it "
                "with %d of its headers",
                m->tag, msg->topic, (int)m->nhdrs);
        sm.headers = m->nhdrs ? m->hdrs : NULL;
        sm.header_count = m->nhdrs;
    }

    struct mq_ticket ticket = {.n = 0};
    struct mq_ticket *tp = m->durable && msg->qos > 0 ? &ticket : NULL;
    enum mq_err err = mq_hold_store(&m->hold, &sm, tp); /* returns early only when stop() is called */
    if (err == MQ_OK && tp) {
        mq_mosq_pending_add(m, tp);
        if (m->in_libmosquitto_loop) /* its write phase follows at once (mosq_conn.c): durable first */
            mq_mosq_pending_wait(m);
    }
    if (err == MQ_OK) {
        atomic_fetch_add_explicit(&m->st.messages, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->st.bytes, sm.payload_len, memory_order_relaxed);
    } else if (mq_hold_permanent(err)) {
        /* dropped (ingest logged why): acknowledged, the broker would only send it again */
    } else if (m->durable) {
        /* stop() came while the store refused it: its acknowledgement is queued, and must stay unsent */
        m->withhold_acks = true;
        MQ_WARN("broker %s: stopping while the store refuses messages (%s): the message on '%s' is not "
                "acknowledged; the broker keeps it for the next session",
                m->tag, mq_strerror(err), msg->topic ? msg->topic : "");
    } else {
        /* only when stop() came while the store refused it: libmosquitto acknowledged it already */
        MQ_ERROR(
            "broker %s: stopping while the store refuses messages (%s): one acknowledged message on '%s' "
            "is lost",
            m->tag, mq_strerror(err), msg->topic ? msg->topic : "");
    }
    if (props)
        mq_mosq_hdr_release(m);
}
