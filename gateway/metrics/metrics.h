/*
 * metrics.h - every metric mqlogd exposes, described once, and the writer of the Prometheus text
 * exposition format (version 0.0.4) that emits them.
 *
 * The table (names.c) gives each metric its name, type, label names and meaning; the writer takes only
 * metrics of the table, with exactly the label values its row names, so what /metrics serves cannot drift
 * from docs/metrics.md, which gateway/metrics/doc/metricsdoc.c renders from the same table (the
 * metrics_doc test fails while the two disagree).
 *
 * Nothing here reads a counter: the daemon's collector (gateway/daemon/observe.c) reads each owner's
 * counters (atomics, or copies the owner publishes) and hands the values to the writer, so the hot paths
 * never learn that metrics exist.
 *
 * Naming follows Prometheus' conventions: the mqlog_ prefix, base units (seconds, bytes), _total on
 * counters, _info for facts carried in labels. Label values come from the configuration (broker,
 * mapping, forwarder names), from fixed lists (reasons, API names, states) or from the store (topics,
 * partitions, groups: the per-partition families can be switched off with http.partition_metrics).
 */
#ifndef MQ_METRICS_H
#define MQ_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/histo.h"

enum mq_metric_type { MQ_MT_COUNTER, MQ_MT_GAUGE, MQ_MT_HISTOGRAM };

#define MQ_METRIC_LABELS_MAX 4

struct mq_metric_def {
    const char *name;
    enum mq_metric_type type;
    const char *labels[MQ_METRIC_LABELS_MAX + 1]; /* label names, NULL-terminated */
    const char *group;                            /* the docs' section */
    const char *help;                             /* one line: # HELP and the docs */
};

/* The metrics, in the order the docs list them and /metrics serves them. */
enum mq_metric {
    MQ_M_BUILD_INFO,
    MQ_M_START_TIME,
    MQ_M_READY,
    MQ_M_LOOP_HEARTBEAT_AGE,
    MQ_M_RECEIVED,
    MQ_M_STORED,
    MQ_M_UNMATCHED,
    MQ_M_REJECTED,
    MQ_M_PENDING,
    MQ_M_RECORDS,
    MQ_M_PAYLOAD_BYTES,
    MQ_M_BACKPRESSURE,
    MQ_M_REDELIVERED,
    MQ_M_BROKER_SESSIONS,
    MQ_M_BROKER_CONNECTED,
    MQ_M_BROKER_CONNECTS,
    MQ_M_BROKER_DISCONNECTS,
    MQ_M_BROKER_MESSAGES,
    MQ_M_BROKER_BYTES,
    MQ_M_BROKER_PAUSED,
    MQ_M_MAPPING_RECORDS,
    MQ_M_STORE_FLUSH_DURATION,
    MQ_M_STORE_FSYNCS,
    MQ_M_STORE_DURABLE_LAG,
    MQ_M_STORE_RETENTION_DELETED,
    MQ_M_STORE_BUDGET_DELETED,
    MQ_M_STORE_BUDGET_DELETED_BYTES,
    MQ_M_STORE_BUDGET_WAITS,
    MQ_M_STORE_BUDGET_BLOCKED,
    MQ_M_STORE_DROPPED_UNFORWARDED,
    MQ_M_STORE_RECOMPACTED,
    MQ_M_STORE_RECOMPACT_SAVED,
    MQ_M_STORE_DISK_BYTES,
    MQ_M_STORE_FREE_BYTES,
    MQ_M_STORE_PARTITIONS,
    MQ_M_PART_START_OFFSET,
    MQ_M_PART_END_OFFSET,
    MQ_M_PART_BYTES,
    MQ_M_PART_SEGMENTS,
    MQ_M_PART_OLDEST_TS,
    MQ_M_KAFKA_CONNECTIONS,
    MQ_M_KAFKA_ACCEPTED,
    MQ_M_KAFKA_REFUSED,
    MQ_M_KAFKA_TIMED_OUT,
    MQ_M_KAFKA_REQUESTS,
    MQ_M_KAFKA_REQUEST_ERRORS,
    MQ_M_KAFKA_SENT_BYTES,
    MQ_M_KAFKA_ACL_DENIED,
    MQ_M_KAFKA_FETCH_WAITING,
    MQ_M_GROUP_LAG,
    MQ_M_FWD_UP,
    MQ_M_FWD_STATE,
    MQ_M_FWD_RECORDS,
    MQ_M_FWD_BYTES,
    MQ_M_FWD_LAG_RECORDS,
    MQ_M_FWD_LAG_BYTES,
    MQ_M_FWD_LAG_SECONDS,
    MQ_M_COUNT
};

extern const struct mq_metric_def mq_metric_defs[MQ_M_COUNT];

/* The number of labels of metric m. */
size_t mq_metric_nlabels(enum mq_metric m);

/*
 * The writer: samples go to f (an open_memstream() in the daemon) family by family. The first sample of a
 * family writes its # HELP and # TYPE lines; the samples of one family must be written together (the
 * format requires it): starting a family a second time, or giving a metric of another type than its row
 * says, marks the writer failed (mq_expo_failed()) rather than write an invalid exposition.
 * values[] holds the label values in the order the row names them (mq_metric_nlabels() of them), escaped
 * here (backslash, double quote, line feed).
 */
struct mq_expo {
    FILE *f;
    int current;                       /* the family being written, -1 before the first */
    unsigned char started[MQ_M_COUNT]; /* families written (or begun) */
    bool failed;
};

void mq_expo_init(struct mq_expo *e, FILE *f);

/* Writes the family's header lines without any sample (a family whose series do not exist right now). */
void mq_expo_family(struct mq_expo *e, enum mq_metric m);

/* One sample of a counter or gauge: an integer (exact beyond 2^53), or a double (NaN, +Inf, -Inf too). */
void mq_expo_u64(struct mq_expo *e, enum mq_metric m, const char *const *values, uint64_t v);
void mq_expo_i64(struct mq_expo *e, enum mq_metric m, const char *const *values, int64_t v);
void mq_expo_double(struct mq_expo *e, enum mq_metric m, const char *const *values, double v);

/* A histogram's series: one _bucket per bound (le in seconds) and +Inf, then _sum (seconds) and _count. */
void mq_expo_histo(struct mq_expo *e, enum mq_metric m, const char *const *values,
                   const struct mq_histo_snap *h);

/* True when a sample broke the rules above or f failed. */
bool mq_expo_failed(const struct mq_expo *e);

/* Writes s as a label value would carry it (without the quotes). */
void mq_expo_escape(FILE *f, const char *s);

#endif
