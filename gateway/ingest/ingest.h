/*
 * ingest.h - the gateway's side of a connector: route a received MQTT message and store it durably.
 *
 * For each message, mq_ingest_message() applies the route table (gateway/route/route.h) and produces one
 * record into each matching log topic's partition (created on first use with the mapping's partition count
 * and retention), adding the headers mqtt.topic, mqtt.qos, mqtt.retain, mqtt.broker and those the connector
 * supplies (MQTT 5 user properties, mqtt.content_type, mqtt.response_topic, mqtt.correlation_data). It
 * returns a ticket: the partitions and offsets of the records. A connector that acknowledges only durable
 * records waits on the ticket with mq_ingest_wait() (or polls mq_ingest_durable()) before the ack.
 *
 * Thread-safe: any connector thread may call any function. The route table can be swapped (SIGHUP) while
 * connectors run: messages already inside mq_ingest_message() finish with the table they started with.
 */
#ifndef MQ_INGEST_H
#define MQ_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/batch.h"
#include "util/err.h"

struct mq_ingest;
struct mq_part;

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
 * dropped: MQ_OK with ticket->n == 0. MQ_ERR_INVAL: not a valid MQTT topic; the message is dropped and logged.
 */
enum mq_err mq_ingest_message(struct mq_ingest *in, const char *broker, const struct mq_source_msg *msg,
                              struct mq_ticket *ticket);

/* True when every record of the ticket is durable. */
bool mq_ingest_durable(struct mq_ingest *in, const struct mq_ticket *ticket);

/* Waits until every record of the ticket is durable, asking the log to flush now rather than at its next
 * tick (a connector holding back an ack is waiting). MQ_ERR_TIMEDOUT, or the store's write error. */
enum mq_err mq_ingest_wait(struct mq_ingest *in, const struct mq_ticket *ticket, int64_t timeout_ms);

#endif
