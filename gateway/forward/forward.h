/*
 * forward.h - store-and-forward: mqlogd's log topics copied to a central Kafka cluster with librdkafka,
 * straight from the local segments, exactly once across restarts and outages.
 *
 * The local log is the buffer. A forwarder reads its topics' partitions with the log's record cursor and
 * produces each record (key, value, CreateTime, headers, plus the mqlog.site/.topic/.partition/.offset
 * headers that name its edge coordinates) to the remote topic the `to` template names. Nothing is ever
 * acknowledged to anyone by forwarding, so an outage only makes the forwarder fall behind: it keeps
 * retrying with capped backoff and reads the backlog from the log once the cluster answers again.
 *
 * exactly_once: records go out in transactions of a transactional producer whose transactional.id is
 * "mqlog.<site>.<name>" (a second instance fences the first). Where to resume is never taken from local
 * state: on every start, and after every aborted transaction or fatal producer error, the forwarder reads
 * the committed tail of each remote partition it writes (isolation.level=read_committed) and resumes after
 * the mqlog.offset of this site's last record there. The catalog checkpoint is only a hint (used when the
 * remote holds nothing of ours) and the base of the lag figures.
 *
 * at_least_once: an idempotent producer; the checkpoint advances only over records whose delivery report
 * said they are stored, and a record that fails delivery is sent again from the log (so librdkafka's
 * message timeout never silently drops one). A restart resumes at the checkpoint and may repeat records.
 *
 * Checkpoints live in the catalog as connector "forward.<name>", key "<topic>:<partition>", value the
 * decimal next local offset known to be on the remote cluster; key "state" holds the forwarder's state line.
 *
 * Threads: one thread per forwarder (plus librdkafka's own). The set's functions are called from one
 * thread (the daemon's main thread); the retention hold it installs on the log is called by the log's
 * maintenance thread.
 */
#ifndef MQ_FORWARD_H
#define MQ_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"
#include "util/err.h"

/* The catalog connector name of forwarder `name`: "forward.<name>". */
#define MQ_FWD_CKPT_PREFIX "forward."
#define MQ_FWD_CKPT_STATE  "state"

struct mq_fwd_set; /* every forwarder of the daemon */

/* An empty set of forwarders reading from store (which must outlive it). */
enum mq_err mq_fwd_set_new(struct mq_store *store, struct mq_fwd_set **out);

/*
 * Brings the running forwarders in line with cfg's forward list: a forwarder whose settings are unchanged
 * keeps running; a changed one is stopped and started again with its new settings; a removed one is stopped
 * (its checkpoints stay in the catalog); a new one is started. cfg is not referred to after the call.
 * Fails (nothing changed, errstr says why) only when a forwarder cannot be set up at all (e.g. its password
 * file cannot be read); an unreachable cluster is not an error: the forwarder retries on its own.
 */
enum mq_err mq_fwd_set_apply(struct mq_fwd_set *set, const struct mq_config *cfg, char *errstr,
                             size_t errstr_size);

/* Logs one line per forwarder (state, records and bytes sent) and one per partition with its lag. */
void mq_fwd_set_log_stats(struct mq_fwd_set *set);

/* One forwarder's figures for the operator endpoints (docs/metrics.md). */
enum mq_fwd_state_class {
    MQ_FWD_STARTING,
    MQ_FWD_DELIVERING,
    MQ_FWD_OUTAGE,
    MQ_FWD_ERROR,
    MQ_FWD_STOPPED,
    MQ_FWD_NSTATES
};
extern const char *const mq_fwd_state_names[MQ_FWD_NSTATES]; /* "starting", "delivering", ... */
struct mq_fwd_stats {
    const char *name; /* valid during the callback */
    enum mq_fwd_state_class state;
    char state_text[256]; /* the state line, as the catalog keeps it (cut) */
    uint64_t records_sent, bytes_sent;
    int64_t lag_records; /* stored records not yet on the remote cluster */
    int64_t lag_bytes;   /* their bytes, estimated from each partition's mean record size */
    double lag_seconds;  /* since the last delivery while records wait; 0 when none waits */
};

/* Calls fn once per forwarder with its figures (partition statistics are read under its lock). */
void mq_fwd_set_stats(struct mq_fwd_set *set, void (*fn)(void *opaque, const struct mq_fwd_stats *st),
                      void *opaque);

/* Number of forwarders. */
size_t mq_fwd_set_count(struct mq_fwd_set *set);

/* Stops every forwarder (an open transaction is committed if the cluster answers within a few seconds,
 * else left to be aborted by the next start) and frees the set. Accepts NULL. */
void mq_fwd_set_free(struct mq_fwd_set *set);

/* Renders the remote topic name for local topic `topic` from template tmpl ({site}, {topic}) into buf.
 * MQ_ERR_INVAL when the result is not a valid topic name or does not fit. */
enum mq_err mq_fwd_remote_name(const char *tmpl, const char *site, const char *topic, char *buf, size_t size);

#endif
