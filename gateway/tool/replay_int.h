/*
 * replay_int.h - what the two files of `mqlog replay` share: cmd_replay.c (the command, the topic template,
 * reading and merging the partitions, pacing) and replay_mqtt.c (the broker URL and the libmosquitto client).
 *
 * One struct mq_replay holds the whole run; it is driven from one thread, so nothing in it is locked.
 */
#ifndef MQ_REPLAY_INT_H
#define MQ_REPLAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/batch.h"
#include "store/store.h"

#define MQ_REPLAY_INFLIGHT     100   /* default bound on unacknowledged publishes */
#define MQ_REPLAY_CONNECT_MS   10000 /* TCP connect + CONNACK */
#define MQ_REPLAY_ACK_STALL_MS 30000 /* give up when no acknowledgement arrives for this long */
#define MQ_REPLAY_KEEPALIVE_S  30
#define MQ_REPLAY_BAR_MS       100 /* progress bar refresh period */
#define MQ_REPLAY_TOPIC_HDR    "mqtt.topic"

/* ---- the topic template ---- */

enum mq_tpl_kind { MQ_TPL_TEXT, MQ_TPL_TOPIC, MQ_TPL_PARTITION, MQ_TPL_OFFSET, MQ_TPL_KEY };

struct mq_tpl_piece {
    enum mq_tpl_kind kind;
    const char *text; /* MQ_TPL_TEXT: points into the template string */
    size_t len;
};

struct mq_tpl {
    struct mq_tpl_piece *pieces;
    size_t n;
    bool uses_topic;
};

/* A growing string for the topic of one publish. */
struct mq_sbuf {
    char *p;
    size_t len, cap;
};

/* ---- the run ---- */

/* One partition being replayed: a cursor over its records with the next one to send decoded (the head). */
struct mq_rpart {
    int32_t id;
    struct mq_part *part;
    struct mq_cursor *cur;
    int64_t end; /* records at or after this offset are not replayed (the end at start, or --until) */
    bool has_head;
    struct mq_record_view head; /* points into cur's buffer: valid until cur's next call */
    bool done;
};

struct mq_replay {
    const char *topic; /* the log topic */
    struct mq_store *store;
    struct mq_rpart *parts;
    int32_t nparts;
    int64_t until_ts; /* --until @EPOCH_MS, or -1 */
    struct mq_tpl tpl;
    bool have_tpl;
    struct mq_sbuf mtopic;
    /* MQTT */
    const char *url; /* as given, credentials removed, for messages */
    char *host;
    int port;
    bool tls;
    char *username, *password;
    const char *cafile, *certfile, *keyfile;
    int qos;
    int inflight_max;
    struct mosquitto *mosq;
    bool lib_init;
    bool connected; /* CONNACK accepted */
    int connack_rc; /* -1 until a CONNACK arrived */
    bool conn_lost; /* on_disconnect after a successful connect */
    int64_t inflight;
    int64_t published, acked;
    int64_t last_ack_us; /* mono time of the last acknowledgement */
    /* progress */
    bool bar;
    int64_t total; /* records expected (an upper bound when --until is a time) */
    int64_t limit; /* -n, or -1 */
    int64_t bar_last_ms;
    int64_t t0_ms; /* when publishing started, for the rate and the time left */
};

/* ---- MQTT (replay_mqtt.c) ---- */

/* Splits "mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT][/]" into rs's host, port, TLS flag and credentials
 * (util/url.h parses the address), with replay's own messages. *shown gets the URL without credentials,
 * which messages name (rs->url points to it). */
bool mq_replay_parse_url(struct mq_replay *rs, const char *url, char **shown);
/* Describes a libmosquitto error code (its errno for MOSQ_ERR_ERRNO). */
const char *mq_replay_mosq_str(int rc, int saved_errno);
/* Runs the client's network loop for up to timeout_ms. False (after a message) when the connection is gone;
 * a signal only cuts the wait short. */
bool mq_replay_pump(struct mq_replay *rs, int timeout_ms);
/* Connects and waits for the broker's CONNACK. False after one message. */
bool mq_replay_connect(struct mq_replay *rs, const char *client_id);

#endif
