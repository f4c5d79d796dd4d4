/*
 * paho_int.h - what the three files of the Paho connector share: the instance, its connection state machine
 * and the message callback.
 *
 * Threads. Paho MQTTAsync runs ONE receive thread and ONE send thread for the whole process (static state in
 * MQTTAsync.c / MQTTAsyncUtils.c), shared by every MQTTAsync client, and it calls the receive-side callbacks
 * (messageArrived, connect success/failure, connectionLost) from that receive thread while holding its
 * global mutex. Consequences that shape this connector:
 *  - a callback that blocks stalls every Paho client of the process, and every Paho API call made from
 *    another thread waits until it returns (the API takes the same mutex);
 *  - callbacks must therefore never sleep for long: backoff waits happen in the instance's own supervisor
 *    thread (paho_conn.c), which owns connecting, reconnecting and disconnecting;
 *  - messageArrived does block, on purpose and only as long as needed: Paho writes PUBACK (QoS 1), PUBREC
 *    (QoS 2, MQTT 5) or PUBCOMP (QoS 2, MQTT 3.1.1) when it returns, whatever it returns, so the only way to
 *    acknowledge a message after it is stored (and durable) is to return after that (paho_msg.c).
 *
 * Locking: `lock` guards the state machine fields; counters are atomics so that stats() never waits for a
 * blocked callback.
 */
#ifndef MQ_PAHO_INT_H
#define MQ_PAHO_INT_H

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "connector.h"
#include "connector/hold.h"
#include "connector/reconnect.h"

enum mq_paho_state {
    MQ_PAHO_IDLE,          /* created, not started */
    MQ_PAHO_WAITING,       /* not connected; the supervisor connects at next_attempt_ms */
    MQ_PAHO_CONNECTING,    /* MQTTAsync_connect() issued, waiting for its success or failure callback */
    MQ_PAHO_CONNECTED,     /* CONNACK received */
    MQ_PAHO_DISCONNECTING, /* MQTTAsync_disconnect() issued by stop() */
    MQ_PAHO_CLOSED,        /* stopped: no connection, none will be made */
};

struct mq_paho {
    struct mq_connector_ctx ctx; /* copied; what it points to outlives the instance */
    const struct mq_config_broker *broker;
    char *client_id;
    char *uri;      /* tcp://host:port or ssl://host:port (IPv6 hosts in brackets) */
    char *password; /* first line of broker->password_file, or NULL */
    char **filters; /* ctx.subs[i].filter, as Paho wants them (char *const *) */
    int *qos;
    int nsubs;
    bool v5;
    struct mq_rx_session *rx; /* the session's redelivery guard (persistent session + durable_ack), or NULL */

    MQTTAsync client; /* NULL until create succeeded, and after stop() destroyed it */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool lock_init;
    pthread_t thread; /* the supervisor */
    bool thread_started;
    enum mq_paho_state state;
    bool stopping;
    struct mq_reconnect reconnect; /* the backoff (gateway/connector/reconnect.h) */
    int64_t next_attempt_ms;       /* monotonic */
    char tls_error[256];  /* OpenSSL's first error line of the current attempt (Paho's ssl_error_cb) */
    char last_error[256]; /* stats' last_error: the reason of the last failure logged; under lock */

    atomic_bool stop_flag; /* stopping, readable without the lock from the message callback */
    atomic_int in_callback;
    struct mq_connector_counters st;
    atomic_uint_fast64_t dropped; /* invalid topics, records too large: acknowledged without storing */
    char *tag;                    /* "name (client id)", for log lines */
    struct mq_hold hold;          /* how messages are held while the store pushes back (paho_msg.c) */
};

/* paho_conn.c: the supervisor thread and the connection callbacks. */
enum mq_err mq_paho_conn_start(struct mq_paho *p);
void mq_paho_conn_stop(struct mq_paho *p);
void mq_paho_on_connection_lost(void *context, char *cause);
void mq_paho_on_disconnected(void *context, MQTTProperties *props, enum MQTTReasonCodes reason);
/* paho_msg.c: the messageArrived callback, and the hold's give_up (a clean session being stopped). */
bool mq_paho_give_up(void *opaque);
int mq_paho_on_message(void *context, char *topic, int topic_len, MQTTAsync_message *message);

/* Maps a Paho return code (MQTTASYNC_*) to a short string, never NULL. */
const char *mq_paho_strerror(int rc);

#endif
