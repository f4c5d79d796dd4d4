/*
 * connector.h - the one interface every source connector fills in (connectors/<name>/).
 *
 * A connector is a `const struct mq_connector` of callbacks with a version field; fields are only ever
 * appended. The daemon creates one connector instance per configured broker and session (a broker with
 * `sessions: N` gets N instances, session 0..N-1, sharing the subscriptions through $share/<group>/...).
 * A connector knows nothing of the log's files: it hands every message to the gateway's ingest layer
 * (gateway/ingest/ingest.h), which routes and stores it, and it acknowledges QoS 1/2 messages to its broker
 * no earlier than the ingest layer allows.
 *
 * Threads: a connector runs its client library's threads; ingest functions may be called from any of them.
 *
 * What every connector does the same way is written once in gateway/connector/: when to reconnect and what
 * to log about it (reconnect.h), how to hold a message the store cannot take yet (hold.h), and which TLS file
 * makes connecting fail (why.h). A connector keeps only what depends on its client library.
 *
 * Lifecycle: create -> start -> (running; reconnects on its own) -> stop -> destroy. stop() returns only
 * when no callback of the connector can reach the ingest layer any more. destroy() accepts a half-built
 * instance (create failed half-way) and NULL.
 */
#ifndef MQ_CONNECTOR_H
#define MQ_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/err.h"

#define MQ_CONNECTOR_VERSION 1

struct mq_ingest;

/* One subscription of an instance: an MQTT filter (already wrapped in $share/<group>/ when sessions > 1). */
struct mq_subscription {
    const char *filter;
    int qos;
};

/* What the daemon gives an instance. Everything it points to outlives the instance. */
struct mq_connector_ctx {
    const struct mq_config_broker *broker;
    int session; /* 0..broker->sessions-1; the client id gets "-<session>" appended when > 0 */
    const struct mq_subscription *subs;
    size_t nsubs;
    struct mq_ingest *ingest;
    int64_t flush_interval_ms; /* the log's flush interval (log.flush_interval_ms); 0: unknown. A connector
                                  that acknowledges before records are durable names it as its loss window */
};

/* Counters an instance keeps (read with stats(); fields only appended). */
struct mq_connector_stats {
    uint64_t messages;    /* handed to the ingest layer and accepted */
    uint64_t bytes;       /* payload bytes of those */
    uint64_t connects;    /* successful connections (first one included) */
    uint64_t disconnects; /* connections lost */
    uint64_t paused_ms;   /* time spent not reading because the store pushed back */
    bool connected;
    char last_error[256]; /* while not connected: why the last attempt failed or the connection was lost,
                             as logged; "" while connected (filled by stats() itself, under its lock) */
};

/* The live form of those counters, kept by an instance's threads and read by stats() from any thread. */
struct mq_connector_counters {
    _Atomic uint64_t messages, bytes, connects, disconnects, paused_ms;
    _Atomic bool connected;
};

static inline void mq_connector_counters_read(struct mq_connector_counters *c, struct mq_connector_stats *st)
{
    st->messages = c->messages;
    st->bytes = c->bytes;
    st->connects = c->connects;
    st->disconnects = c->disconnects;
    st->paused_ms = c->paused_ms;
    st->connected = c->connected;
}

struct mq_connector {
    int version;      /* MQ_CONNECTOR_VERSION */
    const char *name; /* as written in the configuration's `client:` */
    /* Allocates an instance; connects nothing yet. On failure writes why into errstr. */
    enum mq_err (*create)(const struct mq_connector_ctx *ctx, void **instance, char *errstr,
                          size_t errstr_size);
    /* Starts connecting (asynchronously): returns at once; connection failures are retried under the shared
     * reconnect policy (connector/reconnect.h: broker->reconnect_min_ms .. reconnect_max_ms) and logged
     * once per change of reason (mq_reconnect_news()), a TLS failure naming the file at fault (why.h). A
     * connector that cannot connect never stops trying: only stop() ends it. */
    enum mq_err (*start)(void *instance);
    /* Disconnects and waits until no callback runs; messages not yet acknowledged stay with the broker
     * (persistent session) so that nothing is lost. */
    void (*stop)(void *instance);
    void (*destroy)(void *instance);
    void (*stats)(void *instance, struct mq_connector_stats *stats);
};

/* The registry: the connectors built into this binary (NULL-terminated), and lookup by name (NULL when not
 * built in). Generated from connectors/CMakeLists.txt's MQ_CONNECTORS (connectors/registry.c.in); a
 * program that uses it links mq_connector_registry. */
extern const struct mq_connector *const mq_connectors[];
const struct mq_connector *mq_connector_find(const char *name);

#endif
