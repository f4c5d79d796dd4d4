/*
 * mosq_int.h - the libmosquitto connector's internals, shared by mosq.c (interface, lifecycle),
 * mosq_conn.c (the network thread: connect, backoff, subscribe) and mosq_msg.c (messages into ingest).
 *
 * Threads: one network thread per instance (mosq_conn.c) owns the struct mosquitto: it alone calls
 * libmosquitto between start() and stop(), and every libmosquitto callback runs on it (mosquitto_loop() is
 * called from that thread only). Other threads only touch the atomics below (stats, stopping) and the
 * stop condition variable.
 */
#ifndef MQ_MOSQ_INT_H
#define MQ_MOSQ_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>

#include "connector.h"
#include "connector/hold.h"
#include "connector/reconnect.h"
#include "log/batch.h"

#define MQ_MOSQ_PENDING_MAX 64 /* partitions a read batch may touch before it waits for durability early */

struct mq_mosq {
    struct mq_connector_ctx ctx; /* a copy; what it points to outlives the instance */
    const struct mq_config_broker *broker;
    char *client_id; /* broker->client_id, plus "-<session>" for session > 0 */
    char *tag;       /* "broker/session" for log lines */
    struct mosquitto *mosq;
    bool lib_ref; /* holds a reference on mosquitto_lib_init */

    /* lifecycle (stop() vs the network thread) */
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    pthread_mutex_t mu; /* with cond: interruptible backoff waits */
    pthread_cond_t cond;
    bool sync_ready; /* mu and cond initialised */

    /* subscriptions grouped by QoS (one SUBSCRIBE per group); the strings belong to ctx.subs */
    char **subs_by_qos[3];
    int nsubs_by_qos[3];
    int sub_mid[3]; /* message id of each group's SUBSCRIBE on the current connection */

    /* network thread state */
    bool connack_ok;               /* CONNACK accepted on the current connection */
    int connack_rc;                /* the last CONNACK's refusal code, 0 if accepted */
    int disconnect_rc;             /* reason libmosquitto gave for the last disconnect */
    bool first_connect_done;       /* CONNECT properties (MQTT 5) were handed to libmosquitto */
    struct mq_reconnect reconnect; /* the backoff (gateway/connector/reconnect.h) */
    char lib_error[256];           /* libmosquitto's first error line of the current connection attempt */
    char last_error[256];          /* stats' last_error; under mu (stats() reads it from other threads) */

    /* durable_ack (mosq_msg.c fills it, mosq_conn.c drains it): for the messages read since the last write
     * phase, the highest offset stored in each partition. Their PUBACKs wait in libmosquitto's output
     * queue (threaded mode: nothing is written from inside the read phase) until these are durable. */
    bool durable;
    struct mq_rx_session *rx; /* the session's redelivery guard (persistent session + durable_ack), or NULL */
    struct {
        struct mq_part *part;
        int64_t offset;
    } pending[MQ_MOSQ_PENDING_MAX];
    int npending;
    bool in_libmosquitto_loop; /* inside mosquitto_loop(), whose write phase we cannot hold back */
    uint64_t delivered;        /* on_message calls so far (network thread only): did a read deliver one */
    bool withhold_acks; /* stop() came before some acknowledged-to-be records were stored or durable: the
                           queued acknowledgements must never be written (no DISCONNECT either) */

    /* mosq_msg.c: header scratch, reused per message */
    struct mq_header *hdrs;
    int32_t nhdrs, cap_hdrs;
    void **hdr_allocs; /* strings libmosquitto allocated for the current message's headers */
    int32_t nallocs, cap_allocs;

    /* stats (read by other threads) */
    struct mq_connector_counters st;
    struct mq_hold hold; /* how messages are held while the store pushes back (mosq_msg.c) */
};

/* mosq_conn.c */
void *mq_mosq_thread(void *arg);
void mq_mosq_on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                        const mosquitto_property *props);
void mq_mosq_on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props);
void mq_mosq_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted_qos,
                          const mosquitto_property *props);
void mq_mosq_on_log(struct mosquitto *mosq, void *obj, int level, const char *str);
/* Sleeps ms, returning early when stop() is called (the hold's sleep, as mq_mosq_stopping is its give_up). */
void mq_mosq_wait(void *opaque, int64_t ms);
bool mq_mosq_stopping(void *opaque);

/* mosq_msg.c */
void mq_mosq_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                        const mosquitto_property *props);
void mq_mosq_msg_free(struct mq_mosq *m);
/* durable_ack: waits until every pending record is durable and empties the set. False when stop() came
 * first (the set is kept: those messages must not be acknowledged). */
bool mq_mosq_pending_wait(struct mq_mosq *m);

#endif
