/*
 * hold.h - what a connector does with a message the store cannot take yet: it holds the message and tries
 * again until it is stored (or the connector is stopping), and with durable_ack it waits until the records
 * are durable before it lets the acknowledgement go. Written once here for every connector.
 *
 * The policy, and why:
 *  - Backpressure (MQ_ERR_FULL, or any other error the store may recover from: a failed write, no memory)
 *    is retried with a sleep that starts at 1 ms and doubles up to MQ_HOLD_RETRY_MAX_MS. Blocking is the
 *    point: the connector's network thread stops reading, TCP closes its window, and the broker keeps the
 *    rest in our session. Nothing acknowledged is dropped. The time counts as paused_ms in the stats.
 *  - Permanent errors (mq_hold_permanent(): an invalid topic, a record no batch can hold, a mapping that
 *    cannot produce a valid log topic) can never succeed: the message is dropped (ingest logs the cause),
 *    so that one bad message does not stall the whole connection. The connector acknowledges it; the broker
 * would only send it again.
 *  - Stopping: the connector's give_up() decides when to stop retrying, because only it knows whether its
 *    library can leave the message unacknowledged (libmosquitto can; Paho acknowledges whatever the
 *    callback does, so it holds on while the session is persistent).
 *  - Operators see one warning when a pause starts, one every MQ_HOLD_WARN_EVERY_MS while it lasts, and
 *    one line when it ends.
 */
#ifndef MQ_CONNECTOR_HOLD_H
#define MQ_CONNECTOR_HOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "connector.h"
#include "ingest/ingest.h"

#define MQ_HOLD_RETRY_MAX_MS  50    /* longest sleep between two attempts while the store pushes back */
#define MQ_HOLD_WAIT_SLICE_MS 200   /* one mq_ingest_wait(): bounds how late give_up() is asked */
#define MQ_HOLD_WARN_EVERY_MS 10000 /* how often a pause or a long wait for durability is logged */

/* How one connector instance holds messages. Everything it points to outlives the calls. */
struct mq_hold {
    struct mq_ingest *ingest;
    const char *broker;                     /* the broker's configured name (mq_ingest_message) */
    const char *tag;                        /* names the instance in log lines ("b1/0") */
    struct mq_connector_counters *counters; /* paused_ms grows while a pause lasts */
    /* True when retrying should end (the instance is stopping and may leave the message unacknowledged). */
    bool (*give_up)(void *opaque);
    /* Sleeps ms, or less when the instance is stopping; NULL: mq_sleep_ms(). */
    void (*sleep)(void *opaque, int64_t ms);
    void *opaque;
};

/* Errors after which the same message can never be stored. */
bool mq_hold_permanent(enum mq_err err);

/*
 * Stores msg, retrying while the store pushes back. MQ_OK: stored (*ticket, which may be NULL, says where).
 * A permanent error: the message was dropped (and ingest logged why). Any other error: give_up() ended the
 * retries and nothing was stored.
 */
enum mq_err mq_hold_store(const struct mq_hold *h, const struct mq_source_msg *msg, struct mq_ticket *ticket);

/*
 * Waits until every record of the ticket is durable (asking the log to flush now). MQ_OK: durable. Any other
 * error: give_up() ended the wait before (the last error the store gave).
 */
enum mq_err mq_hold_durable(const struct mq_hold *h, const struct mq_ticket *ticket);

#endif
