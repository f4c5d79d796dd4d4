/*
 * forward_int.h - the forward module's internals: one forwarder (forwarder.c), its librdkafka settings
 * (conf.c), its send path and delivery reports (send.c), its remote tail scan (tail.c) and the set the
 * daemon drives (set.c).
 */
#ifndef MQ_FORWARD_INT_H
#define MQ_FORWARD_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "forward/forward.h"
#include "log/log.h"

#define MQ_FWD_STATE_MAX 1024

struct mq_fwd_topic;

/* One local partition a forwarder reads. */
struct mq_fwd_part {
    struct mq_fwd_topic *ft;
    int32_t id;
    char id_text[12]; /* id in decimal, for the mqlog.partition header */
    struct mq_part *part;
    struct mq_cursor *cur; /* NULL until the first read after a (re)sync */
    int64_t next;          /* the next local offset to send */
    _Atomic int64_t acked; /* offsets below it are on the remote cluster; -1: not known yet (hold all) */
    int64_t ckpt_stored;   /* the checkpoint value last written to the catalog */
    bool in_txn;           /* exactly_once: sent records in the open transaction */
    /* at_least_once: the offsets produced and not yet reported, in order, with their outcome */
    int64_t *fly;
    uint8_t *fly_done;
    size_t fly_head, fly_len, fly_cap;
    int64_t dropped; /* records retention removed before they were forwarded */
};

/* One local topic a forwarder's patterns matched. */
struct mq_fwd_topic {
    char local[MQ_TOPIC_NAME_MAX + 1];
    size_t local_len;
    char remote[MQ_TOPIC_NAME_MAX + 1];
    int32_t nlocal;                 /* local partitions (parts[0..nlocal)) */
    int32_t nremote;                /* remote partitions, 0 until the remote topic is known to be usable */
    struct mq_fwd_part **parts;     /* each allocated apart: delivery reports point at them */
    rd_kafka_topic_t *rkt;          /* of the current producer, NULL until first used */
    bool synced;                    /* the resume positions have been read */
    char problem[MQ_FWD_STATE_MAX]; /* why the topic is not being forwarded, "" when it is */
};

struct mq_fwd {
    /* settings, copied from the configuration */
    char *name;
    char *site;
    size_t site_len;
    char **patterns;
    size_t npatterns;
    char *to;
    enum mq_forward_partitioning partitioning;
    enum mq_forward_mode mode;
    enum mq_forward_start start;
    int64_t start_ms;
    int64_t max_bytes_per_s;
    bool hold_retention;
    char *signature; /* every setting as text: a reload restarts the forwarder when it differs */
    char ckpt_name[MQ_TOPIC_NAME_MAX + 32];

    struct mq_store *store;
    rd_kafka_conf_t *conf;  /* the producer's settings (a template; each producer gets a copy) */
    rd_kafka_conf_t *cconf; /* the tail scan consumer's settings */

    pthread_t thread;
    bool started;
    atomic_bool stop;

    /* the forwarder's thread only */
    rd_kafka_t *rk;
    bool need_sync; /* resume positions must be (re)read from the remote cluster */
    bool txn_ready; /* exactly_once: init_transactions succeeded on this producer */
    bool txn_open;
    uint64_t txn_records, txn_bytes; /* sent in the open transaction */
    bool rewind; /* at_least_once: a delivery failed: resend from the checkpoint positions */
    int64_t backoff_ms;
    int64_t next_discover_ms;
    int64_t next_ckpt_ms;
    int64_t next_state_ms;    /* an outage's reworded reason reaches the catalog at most this often */
    int64_t last_delivery_ms; /* when the last delivery report said "stored" (at most a round late) */
    uint64_t deliveries;      /* delivery reports that said "stored" (counted by the callback) */
    uint64_t deliveries_seen; /* ... when last_delivery_ms was last set */
    int64_t queued_since_ms;  /* librdkafka's queue has not been empty since (0: it is empty) */
    int64_t pump_start_ms;    /* when the current (last) round began */
    int64_t busy_since_ms;    /* the forwarder has been sending since (0: idle) */
    int64_t busy_records;
    bool had_data; /* the last round found records to send (it may have sent none: a full queue) */
    double tokens; /* max_bytes_per_s bucket */
    int64_t tokens_at_us;
    char last_error[MQ_FWD_STATE_MAX]; /* from librdkafka's error callback */
    atomic_bool fatal;                 /* librdkafka raised a fatal error */

    /* the topics; the array is replaced under mu (the hold callback reads it from another thread) */
    pthread_mutex_t mu;
    struct mq_fwd_topic **topics;
    size_t ntopics;
    char state[MQ_FWD_STATE_MAX];

    /* counters (any thread reads them) */
    _Atomic uint64_t records_sent, bytes_sent, txns, aborts, syncs, dropped;
    _Atomic uint64_t wire_bytes;     /* bytes sent to the cluster by earlier producers */
    _Atomic uint64_t wire_bytes_cur; /* by the current producer, from its last statistics */
    _Atomic int64_t delivered_ms;    /* mq_mono_ms() of the last delivery, or of the start (lag_seconds) */
};

/* forwarder.c */
enum mq_err mq_fwd_new(struct mq_store *store, const char *site, const struct mq_config_forward *fc,
                       struct mq_fwd **out, char *errstr, size_t errstr_size);
enum mq_err mq_fwd_start(struct mq_fwd *f);
void mq_fwd_free(struct mq_fwd *f); /* stops the thread first */
bool mq_fwd_matches(const struct mq_fwd *f, const char *topic);
void mq_fwd_set_state(struct mq_fwd *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mq_fwd_log_stats(struct mq_fwd *f);
/* stats.c: f's figures for the operator endpoints (mq_fwd_set_stats()). */
void mq_fwd_stats(struct mq_fwd *f, struct mq_fwd_stats *st);
/* The lowest offset of (topic, partition) f still needs, INT64_MAX when none (hold callback). */
int64_t mq_fwd_hold(struct mq_fwd *f, const char *topic, int32_t partition);
/* The forwarder's thread only. An outage: logged when it begins and when `what` changes. */
void mq_fwd_outage(struct mq_fwd *f, const char *what, const char *why);
/* Drops the producer (what it had not delivered is forgotten); the positions are read again. */
void mq_fwd_reset(struct mq_fwd *f);
/* Sorts a transactional API error: returns 0 retriable, 1 abortable, 2 fatal; destroys e. */
int mq_fwd_txn_error(struct mq_fwd *f, rd_kafka_error_t *e, const char *what);
/* Sets last_delivery_ms and delivered_ms to now if a delivery was reported since the last call. */
void mq_fwd_note_deliveries(struct mq_fwd *f);
/* Commits the open transaction; on failure aborts it or resets the producer. */
void mq_fwd_commit(struct mq_fwd *f);

/* conf.c: builds f->conf (producer) and f->cconf (tail-scan consumer) from fc; on failure errstr says why
 * and whatever was built stays for mq_fwd_free(). */
enum mq_err mq_fwd_conf_build(struct mq_fwd *f, const struct mq_config_forward *fc, char *errstr,
                              size_t errstr_size);
/* Every setting as text (malloc'ed, the caller frees it; NULL when out of memory). */
char *mq_fwd_signature(const char *site, const struct mq_config_forward *fc);

/* send.c, the forwarder's thread only: one round over every usable partition (a transaction's worth in
 * exactly_once mode, then commits); returns the number of records sent. */
long mq_fwd_pump(struct mq_fwd *f);
/* After a failed delivery: resends everything after each partition's delivered prefix. */
void mq_fwd_rewind(struct mq_fwd *f);
/* The producer's delivery report callback (runs from rd_kafka_poll() and the transactional calls). */
void mq_fwd_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* A header's value as a decimal offset, -1 when it is missing or not one. */
int64_t mq_fwd_header_int(rd_kafka_headers_t *h, const char *name);

/* tail.c: reads where to resume each partition of every usable topic; sets next (and acked). */
enum mq_err mq_fwd_sync(struct mq_fwd *f, char *errstr, size_t errstr_size);
/* The checkpoint stored for a partition, or -1. */
int64_t mq_fwd_ckpt_get(struct mq_fwd *f, const struct mq_fwd_part *p);

#endif
