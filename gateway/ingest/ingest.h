/*
 * ingest.h - the gateway's side of a connector: route a received MQTT message and store it durably.
 *
 * For each message, mq_ingest_message() applies the route table (gateway/route/route.h) and produces one
 * record into each matching log topic's partition (created on first use with the mapping's partition count
 * and retention), adding the headers mqtt.topic, mqtt.qos, mqtt.retain, mqtt.broker and those the connector
 * supplies (MQTT 5 user properties, mqtt.content_type, mqtt.response_topic, mqtt.correlation_data). It
 * returns a ticket: the partitions and offsets of the records. A connector that acknowledges only durable
 * records waits on the ticket with mq_ingest_wait() (or polls mq_ingest_durable()) before the ack.
 * Header values: mqtt.topic the topic as received, mqtt.qos "0", "1" or "2", mqtt.retain "true" or "false",
 * mqtt.broker the broker's configured name; the connector's headers follow in the order it gives them.
 *
 * Thread-safe: any connector thread may call any function. The route table can be swapped (SIGHUP) while
 * connectors run: messages already inside mq_ingest_message() finish with the table they started with.
 */
#ifndef MQ_INGEST_H
#define MQ_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h" /* MQ_CONFIG_HDR_ALL */
#include "log/batch.h"
#include "log/log.h"
#include "util/err.h"

struct mq_ingest;
struct mq_part;
struct mq_config;
struct mq_route_table;
struct mq_store;

/* The names of the headers a record gets from its MQTT message (the first four added here, the others from
 * MQTT 5 properties by the connector); MQ_HDR_LEN is a name's length, as struct mq_header wants it. */
#define MQ_HDR_TOPIC            "mqtt.topic"
#define MQ_HDR_QOS              "mqtt.qos"
#define MQ_HDR_RETAIN           "mqtt.retain"
#define MQ_HDR_BROKER           "mqtt.broker"
#define MQ_HDR_CONTENT_TYPE     "mqtt.content_type"
#define MQ_HDR_RESPONSE_TOPIC   "mqtt.response_topic"
#define MQ_HDR_CORRELATION_DATA "mqtt.correlation_data"
#define MQ_HDR_LEN(name)        ((int32_t)(sizeof(name) - 1))

/* A received message, as a connector hands it over. Pointers are only read during the call. */
struct mq_source_msg {
    const char *topic; /* the MQTT topic name (not NUL-terminated necessarily) */
    size_t topic_len;
    const void *payload;
    size_t payload_len;
    int qos;
    bool retain;
    int64_t timestamp;               /* receive time, ms since the epoch */
    const struct mq_header *headers; /* extra headers (MQTT 5 properties), may be NULL */
    int32_t header_count;
    /* The redelivery guard of the session it came on (NULL: none), with the message's packet identifier
     * (QoS 1/2: 1..65535) and DUP flag (-1 when the client library does not tell). See below. */
    struct mq_rx_session *session;
    int32_t packet_id;
    int dup;
};

#define MQ_TICKET_MAX 8 /* a message stored in more log topics than this is waited for in part */

/* Where one message's records went. */
struct mq_ticket {
    int n;
    struct {
        struct mq_part *part;
        int64_t offset;
    } at[MQ_TICKET_MAX];
};

/*
 * Routes and stores one message from broker `broker` (its configured name). On MQ_OK the records are
 * written or queued and *ticket (may be NULL) tells where. MQ_ERR_FULL: the store cannot take more right now
 * (disk full or slow): nothing of this message was stored; the connector stops reading from its broker and
 * calls again later with the same message. A message that matches no mapping (and no unmatched topic) is
 * dropped: MQ_OK with ticket->n == 0. MQ_ERR_INVAL: not a valid MQTT topic; MQ_ERR_RANGE: its record would
 * be larger than the log takes (payload, key and headers together); in both cases the message is dropped
 * and logged (at most once every 10 s) with its cause, and counted.
 */
enum mq_err mq_ingest_message(struct mq_ingest *in, const char *broker, const struct mq_source_msg *msg,
                              struct mq_ticket *ticket);

/* True when every record of the ticket is durable. */
bool mq_ingest_durable(struct mq_ingest *in, const struct mq_ticket *ticket);

/* Waits until every record of the ticket is durable, asking the log to flush now rather than at its next
 * tick (a connector holding back an ack is waiting). MQ_ERR_TIMEDOUT, or the store's write error. */
enum mq_err mq_ingest_wait(struct mq_ingest *in, const struct mq_ticket *ticket, int64_t timeout_ms);

/* ---- redelivery guards: exactly once across crashes and reconnects ---- */

/*
 * A connector that acknowledges only durable records still gets a message again when the connection (or
 * the process) ends between the record becoming durable and the acknowledgement reaching the broker: the
 * broker redelivers it on the resumed session with the same packet identifier. The session's guard
 * (gateway/ingest/session.h) notes every record produced for a QoS 1/2 message of the session, durably in
 * step with the records, and recognises such a redelivery (same packet id, same topic and payload): ingest
 * then stores nothing again and returns a ticket for the records stored before, so the connector
 * acknowledges it like any other message.
 *
 * mq_ingest_session_get() opens the guard of client client_id at broker `broker` (the same one for every
 * instance of that session, counted) and checks what a previous process noted against the log; window is
 * the broker's in-flight window (max_inflight), mode how a redelivery is recognised (enum mq_dedup,
 * config.h). The connector puts it into every mq_source_msg it hands
 * over, calls mq_ingest_session_connected() from each CONNACK with its session-present flag, and gives the
 * guard back with mq_ingest_session_put().
 */
struct mq_rx_session;
enum mq_err mq_ingest_session_get(struct mq_ingest *in, const char *broker, const char *client_id,
                                  int64_t window, int mode, struct mq_rx_session **out, char *errstr,
                                  size_t errstr_size);
void mq_ingest_session_put(struct mq_ingest *in, struct mq_rx_session *s);
void mq_ingest_session_connected(struct mq_rx_session *s, bool session_present);
/* Makes what the guard noted so far durable; a connector that acknowledges a batch of durable records calls
 * it before the acknowledgements go out, so that a power loss cannot separate a record from its note (see
 * gateway/ingest/session.h for the cost and the one moment left). Accepts NULL. */
void mq_ingest_session_sync(struct mq_rx_session *s);

/* ---- building and running the ingest layer (the daemon's side) ---- */

/*
 * What ingest routes with: a route table plus the retention of the log topics each of its mappings creates
 * (and of the unmatched topic). The daemon and `mqlog route` build it with the same function, so the tool
 * shows exactly what the daemon does.
 */
struct mq_ingest_routes;

/* Builds the routes of a loaded configuration (mq_config_route_table() plus each mapping's retention, see
 * mq_config_mapping_retention()). The result does not refer to cfg; the caller owns it until it hands it to
 * mq_ingest_new() or mq_ingest_set_routes(). On failure *out is untouched and errstr says why. */
enum mq_err mq_ingest_routes_new(const struct mq_config *cfg, struct mq_ingest_routes **out, char *errstr,
                                 size_t errstr_size);

/* Wraps an already built table. rets[i] (rets may be NULL: the store's default retention) is the retention of
 * the topics mapping i creates, nrets must then be mq_route_count(table); unmatched_ret (may be NULL) that of
 * the unmatched topic. On MQ_OK the routes own table; on failure the caller still does. */
enum mq_err mq_ingest_routes_from_table(struct mq_route_table *table, const struct mq_retention *rets,
                                        size_t nrets, const struct mq_retention *unmatched_ret,
                                        struct mq_ingest_routes **out);

/*
 * What a mapping asks of the records it stores, beside retention: the codec of its topics' batches, when
 * their closed segments are recompacted, and the headers each record keeps (config.h:
 * mappings[].compression, recompact_after, headers, header_defaults).
 */
struct mq_ingest_policy {
    int codec;                  /* enum mq_codec of its topics' batches */
    int64_t recompact_after_ms; /* mq_part_set_recompact_after(): -1 the log's setting */
    unsigned headers;           /* 1 << enum mq_config_header for each header kept */
    bool omit_defaults;         /* leave out the headers that carry their default value: */
    char qos_default;           /*   mqtt.qos when it is this ('0'..'2'), */
    bool broker_implied; /*   mqtt.broker when only one broker delivers to the mapping, mqtt.retain false */
};
/* No compression, every header. */
#define MQ_INGEST_POLICY_DEFAULT                                                                             \
    ((struct mq_ingest_policy){                                                                              \
        .codec = 0, .recompact_after_ms = -1, .headers = MQ_CONFIG_HDR_ALL, .omit_defaults = false})

/* Sets the policy of mapping i of routes not yet handed over (-1: the unmatched topic's). Routes built by
 * mq_ingest_routes_new() have the configuration's; mq_ingest_routes_from_table() gives
 * MQ_INGEST_POLICY_DEFAULT. */
void mq_ingest_routes_set_policy(struct mq_ingest_routes *routes, int mapping,
                                 const struct mq_ingest_policy *pol);

/* The route table inside (owned by the routes). */
struct mq_route_table *mq_ingest_routes_table(const struct mq_ingest_routes *routes);

/* Frees routes not handed over. Accepts NULL. */
void mq_ingest_routes_free(struct mq_ingest_routes *routes);

/*
 * Creates the ingest layer over a store opened with MQ_STORE_WRITE (which must outlive it). On MQ_OK it owns
 * routes; on failure the caller still does and errstr says why. Free with mq_ingest_free().
 */
enum mq_err mq_ingest_new(struct mq_store *store, struct mq_ingest_routes *routes, struct mq_ingest **out,
                          char *errstr, size_t errstr_size);

/*
 * Replaces the routes (SIGHUP) while connectors keep calling mq_ingest_message(): takes routes over, then
 * waits until no message uses the old ones any more and frees them. Messages already being routed finish with
 * the routes they started with; later ones use the new. Call from one thread at a time (the daemon's main
 * thread). Topics the new routes create get the new retention. Every topic already in use is brought in
 * line at once (logged): its retention, and its partition count when its mapping now asks for more (each
 * topic remembers an MQTT topic that reached it, and the new routes are asked where that goes). Topics not
 * used since the start follow when a message first reaches them.
 */
void mq_ingest_set_routes(struct mq_ingest *in, struct mq_ingest_routes *routes);

/*
 * Before mq_ingest_set_routes(): refuses routes that would give a topic in use fewer partitions than the
 * routes in force give it (a partition is never taken away). MQ_ERR_INVAL with *mapping (the index of the
 * new mapping that asks for fewer) and why; MQ_OK otherwise. Same thread as mq_ingest_set_routes().
 */
enum mq_err mq_ingest_routes_check(struct mq_ingest *in, const struct mq_ingest_routes *routes, int *mapping,
                                   char *why, size_t why_size);

/* Frees the ingest layer and its routes. Every connector must be stopped before. Accepts NULL. The store is
 * left open (the caller closes it, which flushes). */
void mq_ingest_free(struct mq_ingest *in);

/* Tells ingest that topic `name` changed in the store (`mqlog topic alter` through mqlogd): a raised
 * partition count is used from the next message on. Any thread. */
void mq_ingest_topic_refresh(struct mq_ingest *in, const char *name);

/* Whether a mapping of the routes in force writes to topic `name` (as far as ingest knows: a topic it stored
 * a message in since the start); where gets the mapping's "FILE:LINE:COL". Any thread. */
bool mq_ingest_topic_mapping(struct mq_ingest *in, const char *name, char *where, size_t where_size);

/* The codec (enum mq_codec) the routes in force write topic `name`'s batches with: its mapping's when ingest
 * stored a message in it since the start, else the one every mapping (and the unmatched topic) shares; -1
 * when neither says. Any thread. */
int mq_ingest_topic_codec(struct mq_ingest *in, const char *name);

/* Deletes topic `name` from the store (mq_store_topic_delete()) with no message of ingest opening it in
 * between, and forgets its partitions: the next message routed to it creates it again, as a first message
 * does. A message being stored at that moment may be lost with the topic, as in Kafka. Any thread. */
enum mq_err mq_ingest_topic_delete(struct mq_ingest *in, const char *name);

/* Counters (read from any thread; each is exact, the set is not a snapshot). Each message counts once
 * when it is answered, in messages, invalid or too_large (an MQ_ERR_FULL answer counts in full, and the
 * message again when the connector retries it): answered = messages + invalid + too_large, of which
 * messages - unmatched went through mappings. */
struct mq_ingest_stats {
    uint64_t messages;    /* accepted messages (stored, or dropped as unmatched) */
    uint64_t records;     /* records produced (a message matching k topics makes k) */
    uint64_t bytes;       /* payload bytes of the records */
    uint64_t unmatched;   /* accepted messages no mapping took: in the unmatched topic, or dropped */
    uint64_t invalid;     /* messages refused: not a valid MQTT topic name */
    uint64_t too_large;   /* messages refused: a record larger than the log takes */
    uint64_t full;        /* MQ_ERR_FULL answers (backpressure) */
    uint64_t topics;      /* log topics created by ingest */
    uint64_t redelivered; /* redeliveries of stored messages recognised and not stored again */
    /* the connectors' accounting (mq_ingest_received()): received = (messages - unmatched) + unmatched
     * + invalid + too_large + left + pending, exactly when nothing is in flight */
    uint64_t received; /* messages connectors received, each once */
    uint64_t pending;  /* received and not settled yet: held while the store pushes back */
    uint64_t left;     /* settled without being stored: the connector stopped; the broker keeps them */
};
void mq_ingest_stats(struct mq_ingest *in, struct mq_ingest_stats *st);

/*
 * The conserved count of messages: a connector calls mq_ingest_received() once per message it receives,
 * before its first mq_ingest_message() for it, and mq_ingest_settled() when it is done with it, with the
 * last answer it got (MQ_OK, MQ_ERR_INVAL and MQ_ERR_RANGE are counted by ingest; any other error means
 * the connector gave up retrying and the message stays with its broker). gateway/connector/hold.c does
 * both for every connector. Both accept NULL.
 */
void mq_ingest_received(struct mq_ingest *in);
void mq_ingest_settled(struct mq_ingest *in, enum mq_err err);

/* Calls fn for each mapping of the routes in force with its name (its to template, NULL for routes built
 * from a bare table) and the records it stored; counts survive a route swap for mappings of the same name. */
void mq_ingest_mapping_stats(struct mq_ingest *in,
                             void (*fn)(void *opaque, size_t mapping, const char *name, uint64_t records),
                             void *opaque);

#endif
