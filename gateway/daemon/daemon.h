/*
 * daemon.h - mqlogd's internals: loading and checking a configuration the way the daemon uses it, the
 * connector instances it supervises, and the run loop (signals, reload, systemd notification).
 *
 * mqlogd.c only parses its command line and calls mq_daemon_check() or mq_daemon_run().
 */
#ifndef MQ_DAEMON_H
#define MQ_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "connector.h"
#include "ingest/ingest.h"
#include "util/err.h"

/* ---- load.c: configuration + routes, as the daemon (and --check) takes them ---- */

/*
 * Loads the configuration at path, builds its routes (mq_ingest_routes_new) and checks that every broker's
 * client is built into this binary. Every problem goes to report (one "FILE:LINE:COL: message" line, or
 * "FILE: message" when there is no position). On MQ_OK the caller owns *cfgp and *routesp (either pointer
 * may be NULL when not wanted: what it would get is freed); on failure both are untouched.
 */
enum mq_err mq_daemon_load(const char *path, struct mq_config **cfgp, struct mq_ingest_routes **routesp,
                           mq_config_report_fn *report, void *opaque);

/* ---- supervise.c: the connector instances ---- */

/* A configuration shared by the instances created from it; freed with its last reference. */
struct mq_daemon_cfg {
    struct mq_config *cfg;
    int refs;
};
struct mq_daemon_cfg *mq_daemon_cfg_new(struct mq_config *cfg); /* takes cfg over, refs = 1 */
void mq_daemon_cfg_unref(struct mq_daemon_cfg *dc);             /* accepts NULL */

struct mq_sup; /* every connector instance of the daemon */

/* An empty set of instances feeding ingest (which must outlive it). */
enum mq_err mq_sup_new(struct mq_ingest *ingest, struct mq_sup **out);

/*
 * Brings the instances in line with configuration dc and route table table: one instance per broker and
 * session, subscribed to what mq_route_subscriptions() gives for its broker. An instance whose broker
 * settings, session and subscriptions are unchanged keeps running (and keeps its reference on the
 * configuration it was made from); the others are created first (so that a failure changes nothing:
 * MQ_ERR_* with errstr, and install is still the caller's), then install (when not NULL; table must be its
 * table) becomes ingest's routes, then the outdated instances are stopped and the new ones started. Each
 * instance takes a reference on dc. A broker that is down stops nothing: connectors retry on their own.
 */
enum mq_err mq_sup_apply(struct mq_sup *sup, struct mq_daemon_cfg *dc, const struct mq_route_table *table,
                         struct mq_ingest_routes *install, char *errstr, size_t errstr_size);

/* Logs one line per instance with its counters (level info). */
void mq_sup_log_stats(struct mq_sup *sup);

/* One broker's instances summed (their counters restart when a reload replaces them). */
struct mq_sup_broker {
    const char *name, *url; /* valid during the callback */
    size_t sessions, connected;
    uint64_t messages, bytes, connects, disconnects, paused_ms;
    char last_error[256]; /* why a session that is down is down (its connector's last_error), or "" */
};

/* Calls fn once per broker that has instances, in configuration order. Any thread; a reload waits. */
void mq_sup_brokers(struct mq_sup *sup, void (*fn)(void *opaque, const struct mq_sup_broker *b),
                    void *opaque);

/* Number of instances, and how many of them are connected now. */
void mq_sup_count(struct mq_sup *sup, size_t *instances, size_t *connected);

/* Stops every instance (each stop() returns once its callbacks are done) and frees everything. Accepts
 * NULL. */
void mq_sup_free(struct mq_sup *sup);

/* ---- observe.c: the operator endpoints (/, /metrics, /healthz, /readyz, /status.json) ---- */

struct mq_store;
struct mq_kafka_server;
struct mq_fwd_set;

/* What the endpoints read; every module outlives the endpoints (mq_observe_stop() comes first). */
struct mq_observe_src {
    struct mq_store *store;
    struct mq_ingest *ingest;
    struct mq_sup *sup;
    struct mq_kafka_server *kafka; /* NULL: no Kafka endpoint */
    struct mq_fwd_set *fwd;
    _Atomic int64_t *main_heartbeat_ms; /* mq_mono_ms() of the main loop's last turn */
    bool partition_metrics;             /* http.partition_metrics */
};

struct mq_observe;

/* Serves the endpoints on host:port (0: a free port) from a thread of the HTTP server. On failure errstr
 * says why and *out is untouched. */
enum mq_err mq_observe_start(const char *host, int port, const struct mq_observe_src *src,
                             struct mq_observe **out, char *errstr, size_t errstr_size);
int mq_observe_port(const struct mq_observe *o);
/* Stops serving (a request in progress finishes first). Accepts NULL. */
void mq_observe_stop(struct mq_observe *o);
/* Samples the ingest counters for the status page's history (at most once a second; the main loop calls
 * it every turn). Accepts NULL. */
void mq_observe_tick(struct mq_observe *o);

/* ---- control.c: the control socket `mqlog` writes through beside the daemon (control/control.h) ---- */

struct mq_ctl_server;

/* Serves "<store's dir>/.control" from a thread of its own, applying requests to store and telling ingest
 * (both must outlive the server). On failure errstr says why and *out is untouched. */
enum mq_err mq_ctl_server_start(struct mq_store *store, struct mq_ingest *ingest, struct mq_ctl_server **out,
                                char *errstr, size_t errstr_size);
/* Stops serving (a request in progress finishes first, a connection is closed within half a second) and
 * removes the socket file. Accepts NULL. */
void mq_ctl_server_stop(struct mq_ctl_server *srv);

/* ---- daemon.c: the two modes of mqlogd ---- */

/* --check: loads and checks config_path, prints each problem on stderr, connects nowhere. Exit status. */
int mq_daemon_check(const char *config_path);

/* Runs until SIGTERM/SIGINT (SIGHUP reloads). Returns the process exit status. */
int mq_daemon_run(const char *config_path);

#endif
