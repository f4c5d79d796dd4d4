/*
 * daemon.c - mqlogd's two modes: --check, and the run loop.
 *
 * Signals: SIGTERM, SIGINT, SIGHUP and SIGUSR1 are blocked before the first thread exists (so every thread
 * inherits the mask and none of them is interrupted) and the main thread takes them with sigtimedwait(): no
 * handler runs at all, and everything a signal asks for (stop, reload, print counters) happens on the main
 * thread between waits. The one-second wait timeout also paces the systemd watchdog, the STATUS= line and
 * the periodic counters.
 *
 * The watchdog: WATCHDOG=1 says that the daemon works, so the main loop sends it only while every loop
 * that matters turns: itself (it is the sender), the log's flusher (which also applies retention and the
 * disk cap) and the Kafka endpoint's event loop, each stamping a heartbeat every turn (at least once a
 * second; the same heartbeats /healthz reads). A loop silent for longer than the stale limit withholds the
 * keep-alive, with a warning, until it turns again; one that stays hung lets WatchdogSec= pass, and
 * systemd restarts mqlogd. The STATUS= line (systemctl status) shows the ingest rate, the broker
 * connections and the forwarders' lag, renewed every MQ_DAEMON_STATUS_MS.
 *
 * Start-up order: configuration, store (its recovery happens here), ingest, the Kafka endpoint, the
 * forwarders, the connectors, the control socket, the HTTP endpoints (which read all of them), then READY=1.
 * Stop order is the reverse, so that nothing reaches a module after it is gone: the HTTP endpoints stop, the
 * control socket closes, the connectors stop
 * (unacknowledged messages stay with the brokers), the forwarders stop (an
 * open transaction commits if the cluster answers), the endpoint stops, and closing the store flushes
 * everything produced.
 */
#include "daemon/daemon.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "forward/forward.h"
#include "kafka/server.h"
#include "store/store.h"
#include "util/diag.h"
#include "util/nofile.h"
#include "util/parse.h"

#define MQ_DAEMON_STATS_MS  60000 /* counters at debug level this often (SIGUSR1: at once, at info level) */
#define MQ_DAEMON_STATUS_MS 3000  /* the STATUS= line is renewed this often */
/* A loop silent longer than this withholds the watchdog keep-alive: half the watchdog interval, within these
 * bounds (each loop turns at least once a second; a loaded machine delays a turn by a second or so). */
#define MQ_DAEMON_STALE_MIN_MS 2000
#define MQ_DAEMON_STALE_MAX_MS 10000

struct mq_daemon {
    const char *config_path;
    struct mq_daemon_cfg *dc; /* the configuration in force */
    struct mq_store *store;
    struct mq_ingest *ingest;
    struct mq_sup *sup;
    struct mq_kafka_server *kafka;
    struct mq_fwd_set *fwd;
    struct mq_observe *observe;   /* the HTTP endpoints, NULL when not configured */
    struct mq_ctl_server *ctl;    /* the control socket, NULL when it could not be made */
    _Atomic int64_t heartbeat_ms; /* the main loop's last turn (/healthz) */
    const char *note;             /* static: what the STATUS= line adds (a rejected reload), or NULL */
    int64_t status_mono;          /* when the STATUS= line was last renewed, and the count then */
    uint64_t status_received;
};

/* ---- systemd notifications that never block ---- */

/*
 * Sends msg to the service manager ($NOTIFY_SOCKET) like sd_notify(), but never waits: sd_notify() blocks
 * while the manager's socket queue is full (10 datagrams by default), and a manager that stopped reading
 * must not stop the main loop (no signal taken, no stop). A message that does not fit is dropped: the
 * periodic ones are renewed, and the manager learns of a stop from the exit. READY=1 after the start is
 * still sent by sd_notify(): nothing came before it.
 */
static void mq_daemon_notify(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = path ? strlen(path) : 0;
    if (len == 0 || len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    if (sendto(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        MQ_DEBUG("sd_notify: %s dropped: %s", strncmp(msg, "STATUS=", 7) == 0 ? "a STATUS= line" : msg,
                 MQ_STRERROR(errno));
    close(fd);
}

/* ---- --check ---- */

static void mq_report_stderr(void *opaque, const char *msg)
{
    int *count = opaque;
    fprintf(stderr, "%s\n", msg);
    (*count)++;
}

int mq_daemon_check(const char *config_path)
{
    int count = 0;
    struct mq_config *cfg = NULL;
    struct mq_ingest_routes *routes = NULL;
    enum mq_err err = mq_daemon_load(config_path, &cfg, &routes, mq_report_stderr, &count);
    if (err != MQ_OK) {
        if (count == 0)
            fprintf(stderr, "%s: %s\n", config_path, mq_strerror(err));
        return 1;
    }
    printf("%s: OK (%zu file%s, %zu broker%s, %zu mapping%s, %zu route%s, %zu forwarder%s)\n", config_path,
           cfg->nfiles, cfg->nfiles == 1 ? "" : "s", cfg->nbrokers, cfg->nbrokers == 1 ? "" : "s",
           cfg->nmappings, cfg->nmappings == 1 ? "" : "s", mq_route_count(mq_ingest_routes_table(routes)),
           mq_route_count(mq_ingest_routes_table(routes)) == 1 ? "" : "s", cfg->nforwards,
           cfg->nforwards == 1 ? "" : "s");
    mq_ingest_routes_free(routes);
    mq_config_free(cfg);
    return 0;
}

/* ---- run ---- */

static void mq_report_log(void *opaque, const char *msg)
{
    (void)opaque;
    MQ_ERROR("%s", msg);
}

static void mq_log_conf_from(const struct mq_config *cfg, struct mq_log_conf *lc)
{
    mq_log_conf_defaults(lc);
    lc->flush_interval_ms = cfg->log.flush_interval_ms;
    lc->flush_bytes = cfg->log.flush_bytes;
    lc->segment_bytes = cfg->log.segment_bytes;
    lc->segment_ms = cfg->log.segment_ms;
    lc->index_interval_bytes = cfg->log.index_interval_bytes;
    lc->batch_bytes = cfg->log.batch_bytes;
    lc->max_pending_bytes = cfg->log.max_pending_bytes;
    lc->checkpoint_bytes = cfg->log.checkpoint_bytes;
    lc->retention_check_ms = cfg->log.retention_check_ms;
    lc->max_disk_bytes = cfg->log.max_disk_bytes;
    lc->recompact_after_ms = cfg->log.recompact_after_ms;
    lc->min_free_bytes = cfg->log.min_free_bytes;
}

/* The authorization rules of cfg's kafka.acls into *aclp: NULL when there are none (every request is
 * allowed), else a set the caller owns. */
static enum mq_err mq_daemon_acl(const struct mq_config *cfg, struct mq_acl **aclp)
{
    *aclp = NULL;
    const struct mq_config_kafka *k = &cfg->kafka;
    if (!k->acls_given)
        return MQ_OK;
    size_t n = 0;
    for (size_t i = 0; i < k->nacls; i++)
        n += k->acls[i].ntopics + k->acls[i].ngroups;
    struct mq_acl_rule *rules = calloc(n ? n : 1, sizeof *rules);
    if (!rules)
        return MQ_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < k->nacls; i++) {
        const struct mq_config_kafka_acl *a = &k->acls[i];
        for (size_t j = 0; j < a->ntopics; j++)
            rules[m++] = (struct mq_acl_rule){a->principal, MQ_ACL_TOPIC, a->topics[j], a->topic_ops[j]};
        for (size_t j = 0; j < a->ngroups; j++)
            rules[m++] = (struct mq_acl_rule){a->principal, MQ_ACL_GROUP, a->groups[j], a->group_ops[j]};
    }
    enum mq_err err = mq_acl_new(rules, m, aclp);
    free(rules);
    return err;
}

/* DescribeConfigs' compression.type: what ingest writes the topic with (the server stops before ingest). */
static int mq_daemon_topic_codec(void *opaque, const char *topic)
{
    struct mq_daemon *d = opaque;
    return mq_ingest_topic_codec(d->ingest, topic);
}

static enum mq_err mq_daemon_kafka_start(struct mq_daemon *d)
{
    const struct mq_config *cfg = d->dc->cfg;
    size_t n = cfg->kafka.nlisteners;
    if (n == 0)
        return MQ_OK;
    struct mq_kafka_listener_conf *lc = calloc(n, sizeof *lc);
    if (!lc)
        return MQ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct mq_config_kafka_listener *l = &cfg->kafka.listeners[i];
        lc[i].listen_host = l->listen_host;
        lc[i].port = l->listen_port;
        lc[i].advertised_host = l->advertised_host;
        lc[i].advertised_port = l->advertised_port;
        lc[i].sasl_mechanisms = l->sasl;
        if (l->tls) {
            lc[i].tls.cert = l->tls_opts.cert;
            lc[i].tls.key = l->tls_opts.key;
            lc[i].tls.ca = l->tls_opts.ca;
            lc[i].tls.require_client_cert = l->tls_opts.require_client_cert;
            lc[i].tls.principal_cn = l->tls_opts.principal == MQ_PRINCIPAL_CN;
        }
    }
    struct mq_kafka_server_conf kc;
    mq_kafka_server_conf_defaults(&kc);
    kc.listeners = lc;
    kc.n_listeners = n;
    kc.max_connections = (int)cfg->kafka.max_connections;
    kc.max_connections_per_ip = (int)cfg->kafka.max_connections_per_ip;
    kc.idle_timeout_ms = cfg->kafka.idle_timeout_ms;
    kc.handshake_timeout_ms = cfg->kafka.handshake_timeout_ms;
    kc.send_timeout_ms = cfg->kafka.send_timeout_ms;
    kc.max_request_partitions = (int32_t)cfg->kafka.max_request_partitions;
    kc.fetch_max_bytes = (int32_t)cfg->kafka.fetch_max_bytes;
    kc.topic_codec = mq_daemon_topic_codec;
    kc.topic_codec_opaque = d;
    enum mq_err err = mq_daemon_acl(cfg, &kc.acl);
    if (err != MQ_OK) {
        free(lc);
        return err;
    }
    /* Kafka clients can make the endpoint allocate request and response buffers of many MiB. glibc raises
     * its mmap threshold after freeing such a buffer, so later ones come from the heap and a burst stays in
     * the RSS (the endpoint's malloc_trim() cannot shrink a thread arena's top). A fixed threshold keeps
     * buffers of 1 MiB and more mmapped: they go back to the system when freed. Fixing it also fixes the
     * trim threshold, at 128 KiB by default: every free of a 256 KiB scan buffer would then give pages
     * back that the next read faults in again. 4 MiB of free heap top may stay. */
    if (mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1 || mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024) != 1)
        MQ_DEBUG("mallopt(M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) refused");
    char why[512] = "";
    err = mq_kafka_server_start(d->store, &kc, &d->kafka, why, sizeof why);
    free(lc); /* the server copied what it keeps, and took the rules */
    if (err != MQ_OK) {
        mq_acl_free(kc.acl);
        MQ_ERROR("kafka endpoint: %s", why[0] ? why : mq_strerror(err));
        return err;
    }
    if (cfg->kafka.acls_given)
        MQ_NOTICE("kafka endpoint: %zu acls entr%s in force: clients may do only what they allow",
                  cfg->kafka.nacls, cfg->kafka.nacls == 1 ? "y" : "ies");
    for (size_t i = 0; i < n; i++)
        MQ_NOTICE("kafka endpoint listening on %s:%d%s", cfg->kafka.listeners[i].listen_host,
                  mq_kafka_server_listener_port(d->kafka, i), cfg->kafka.listeners[i].tls ? " (TLS)" : "");
    return MQ_OK;
}

static bool mq_str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* True when the two lists of listeners differ in anything the endpoint uses. */
static bool mq_listeners_differ(const struct mq_config_kafka *a, const struct mq_config_kafka *b)
{
    if (a->nlisteners != b->nlisteners)
        return true;
    for (size_t i = 0; i < a->nlisteners; i++) {
        const struct mq_config_kafka_listener *x = &a->listeners[i], *y = &b->listeners[i];
        if (!mq_str_same(x->listen, y->listen) || !mq_str_same(x->advertised, y->advertised) ||
            x->tls != y->tls || x->allow_anonymous != y->allow_anonymous || x->sasl != y->sasl ||
            x->allow_plain_without_tls != y->allow_plain_without_tls ||
            !mq_str_same(x->tls_opts.cert, y->tls_opts.cert) ||
            !mq_str_same(x->tls_opts.key, y->tls_opts.key) || !mq_str_same(x->tls_opts.ca, y->tls_opts.ca) ||
            x->tls_opts.require_client_cert != y->tls_opts.require_client_cert ||
            x->tls_opts.principal != y->tls_opts.principal)
            return true;
    }
    return false;
}

/* Settings a reload cannot change without reopening the store or the listener: say so instead of
 * pretending. */
static void mq_daemon_reload_warnings(const struct mq_config *old, const struct mq_config *cfg)
{
    if (!mq_str_same(old->data_dir, cfg->data_dir))
        MQ_WARN("reload: data_dir changed to %s: it takes effect at the next start (still writing %s)",
                cfg->data_dir, old->data_dir);
    struct mq_log_conf a, b;
    mq_log_conf_from(old, &a);
    mq_log_conf_from(cfg, &b);
    if (memcmp(&a, &b, sizeof a) != 0)
        MQ_WARN("reload: the log section changed: its store settings take effect at the next start");
    if (mq_listeners_differ(&old->kafka, &cfg->kafka) ||
        old->kafka.max_connections != cfg->kafka.max_connections ||
        old->kafka.max_connections_per_ip != cfg->kafka.max_connections_per_ip ||
        old->kafka.idle_timeout_ms != cfg->kafka.idle_timeout_ms ||
        old->kafka.handshake_timeout_ms != cfg->kafka.handshake_timeout_ms ||
        old->kafka.send_timeout_ms != cfg->kafka.send_timeout_ms ||
        old->kafka.max_request_partitions != cfg->kafka.max_request_partitions ||
        old->kafka.fetch_max_bytes != cfg->kafka.fetch_max_bytes)
        MQ_WARN("reload: the kafka section changed: it takes effect at the next start");
    if (!mq_str_same(old->http.listen, cfg->http.listen) ||
        old->http.partition_metrics != cfg->http.partition_metrics)
        MQ_WARN("reload: the http section changed: it takes effect at the next start");
}

static void mq_daemon_reload(struct mq_daemon *d)
{
    mq_daemon_notify("RELOADING=1\nSTATUS=Reloading the configuration");
    MQ_NOTICE("SIGHUP: reloading %s", d->config_path);
    struct mq_config *cfg = NULL;
    struct mq_ingest_routes *routes = NULL;
    enum mq_err err = mq_daemon_load(d->config_path, &cfg, &routes, mq_report_log, NULL);
    if (err != MQ_OK) {
        MQ_ERROR("reload rejected (%s): the running configuration stays in force", mq_strerror(err));
        d->note = "reload rejected: configuration errors";
        mq_daemon_notify("READY=1\nSTATUS=Running (reload rejected: configuration errors)");
        return;
    }
    mq_daemon_reload_warnings(d->dc->cfg, cfg);
    int bad = -1;
    char fewer[512] = "";
    if (mq_ingest_routes_check(d->ingest, routes, &bad, fewer, sizeof fewer) != MQ_OK) {
        const struct mq_config_loc *loc =
            bad >= 0 && (size_t)bad < cfg->nmappings ? &cfg->mappings[bad].loc : NULL;
        if (loc)
            MQ_ERROR("%s:%d:%d: mapping %d: %s", loc->file, loc->line, loc->col, bad + 1, fewer);
        MQ_ERROR(
            "reload rejected: a mapping asks for fewer partitions: the running configuration stays in force");
        mq_ingest_routes_free(routes);
        mq_config_free(cfg);
        d->note = "reload rejected: fewer partitions";
        mq_daemon_notify("READY=1\nSTATUS=Running (reload rejected: fewer partitions)");
        return;
    }
    struct mq_daemon_cfg *dc = mq_daemon_cfg_new(cfg);
    if (!dc) {
        mq_ingest_routes_free(routes);
        mq_config_free(cfg);
        MQ_ERROR("reload rejected: out of memory");
        mq_daemon_notify("READY=1");
        return;
    }
    char why[512] = "";
    err = mq_sup_apply(d->sup, dc, mq_ingest_routes_table(routes), routes, why, sizeof why);
    if (err != MQ_OK) {
        mq_ingest_routes_free(routes);
        mq_daemon_cfg_unref(dc);
        MQ_ERROR("reload rejected: %s: the running configuration stays in force", why);
        d->note = "reload rejected";
        mq_daemon_notify("READY=1\nSTATUS=Running (reload rejected)");
        return;
    }
    err = mq_fwd_set_apply(d->fwd, cfg, why, sizeof why);
    if (err != MQ_OK)
        MQ_ERROR("reload: %s: the forwarders keep their previous settings", why);
    if (d->kafka) {
        /* The rules apply to the requests that follow, on open connections too (kafka/server.h). */
        struct mq_acl *acl = NULL;
        if (mq_daemon_acl(cfg, &acl) == MQ_OK)
            mq_kafka_server_set_acl(d->kafka, acl);
        else
            MQ_ERROR("reload: out of memory: the kafka endpoint keeps its previous acls");
    }
    mq_daemon_cfg_unref(d->dc);
    d->dc = dc;
    MQ_NOTICE("reloaded %s: %zu broker%s, %zu mapping%s", d->config_path, cfg->nbrokers,
              cfg->nbrokers == 1 ? "" : "s", cfg->nmappings, cfg->nmappings == 1 ? "" : "s");
    d->note = NULL;
    mq_daemon_notify("READY=1\nSTATUS=Running");
}

/* ---- systemd: the watchdog and the STATUS= line ---- */

/* The name of a loop that has not turned for longer than stale_ms (its silence in *age_ms), or NULL when
 * every loop that matters turns (see the top of the file). */
static const char *mq_daemon_stale_loop(struct mq_daemon *d, int64_t stale_ms, int64_t *age_ms)
{
    int64_t now = mq_mono_ms();
    /* the heartbeat alone: a flusher stuck holding a partition's lock must not stall this loop too */
    if ((*age_ms = now - mq_log_heartbeat_ms(mq_store_log(d->store))) > stale_ms)
        return "store flusher";
    if (d->kafka) {
        struct mq_kafka_server_stats ks;
        mq_kafka_server_stats(d->kafka, &ks);
        if ((*age_ms = now - ks.heartbeat_ms) > stale_ms)
            return "kafka endpoint";
    }
    return NULL;
}

static void mq_daemon_fwd_lag(void *opaque, const struct mq_fwd_stats *st)
{
    *(int64_t *)opaque += st->lag_records > 0 ? st->lag_records : 0;
}

/* Renews the STATUS= line: "ingest 812.0 msg/s, 3 of 3 broker connections up, forward lag 0 records". */
static void mq_daemon_status_line(struct mq_daemon *d)
{
    int64_t now = mq_mono_ms();
    struct mq_ingest_stats st;
    mq_ingest_stats(d->ingest, &st);
    double dt = (double)(now - d->status_mono) / 1000.0;
    double rate =
        dt > 0 && st.received >= d->status_received ? (double)(st.received - d->status_received) / dt : 0;
    d->status_mono = now;
    d->status_received = st.received;
    size_t n, connected;
    mq_sup_count(d->sup, &n, &connected);
    char fwd[64] = "";
    if (mq_fwd_set_count(d->fwd) > 0) {
        int64_t lag = 0;
        mq_fwd_set_stats(d->fwd, mq_daemon_fwd_lag, &lag);
        snprintf(fwd, sizeof fwd, ", forward lag %lld records", (long long)lag);
    }
    char msg[512];
    snprintf(msg, sizeof msg, "STATUS=ingest %.1f msg/s, %zu of %zu broker connections up%s%s%s%s", rate,
             connected, n, fwd, d->note ? " (" : "", d->note ? d->note : "", d->note ? ")" : "");
    mq_daemon_notify(msg);
}

static void mq_daemon_stats(struct mq_daemon *d, enum mq_level level)
{
    if ((int)level > mq_diag_level)
        return;
    struct mq_ingest_stats st;
    mq_ingest_stats(d->ingest, &st);
    size_t n, connected;
    mq_sup_count(d->sup, &n, &connected);
    /* the four kinds of messages add up to the first figure (ingest.h) */
    mq_diag_printf(level,
                   "%llu messages: %llu mapped, %llu unmatched, %llu with an invalid topic, %llu too large; "
                   "%llu records, %llu payload bytes stored; %llu pushed back, %llu redeliveries of stored "
                   "messages not stored again; %zu of %zu connections up",
                   (unsigned long long)(st.messages + st.invalid + st.too_large),
                   (unsigned long long)(st.messages - st.unmatched), (unsigned long long)st.unmatched,
                   (unsigned long long)st.invalid, (unsigned long long)st.too_large,
                   (unsigned long long)st.records, (unsigned long long)st.bytes, (unsigned long long)st.full,
                   (unsigned long long)st.redelivered, connected, n);
    struct mq_log_stats ls;
    mq_log_stats(mq_store_log(d->store), &ls);
    mq_diag_printf(
        level,
        "store: %lld bytes in segments; the disk budget deleted %lld segments early (%lld for "
        "log.max_disk_bytes, %lld for log.min_free_bytes), dropping %lld records unforwarded; %lld writes "
        "waited for room",
        (long long)ls.disk_bytes, (long long)ls.early_deleted_segments, (long long)ls.cap_deleted_segments,
        (long long)ls.free_deleted_segments, (long long)ls.dropped_unforwarded,
        (long long)ls.budget_refused_writes);
    if (d->kafka) {
        struct mq_kafka_server_stats ks;
        mq_kafka_server_stats(d->kafka, &ks);
        mq_diag_printf(
            level,
            "kafka: %llu connections open, %llu accepted, %llu refused, %llu closed by a timeout; "
            "%llu requests, %llu protocol errors, %llu over max_request_partitions, %llu for an API or "
            "version not served, %llu failed TLS handshakes, %llu failed authentications, %llu denied by "
            "the acls",
            (unsigned long long)ks.open, (unsigned long long)ks.accepted, (unsigned long long)ks.refused,
            (unsigned long long)ks.timed_out, (unsigned long long)ks.requests,
            (unsigned long long)ks.protocol_errors, (unsigned long long)ks.too_large,
            (unsigned long long)ks.unsupported, (unsigned long long)ks.tls_failed,
            (unsigned long long)ks.auth_failed, (unsigned long long)ks.denied);
    }
    if (level == MQ_LV_INFO) {
        mq_sup_log_stats(d->sup);
        mq_fwd_set_log_stats(d->fwd);
    }
}

/* Frees what mq_daemon_start built, in reverse order. Returns the store's close error. */
static enum mq_err mq_daemon_teardown(struct mq_daemon *d)
{
    mq_observe_stop(d->observe);
    d->observe = NULL;
    mq_ctl_server_stop(d->ctl);
    d->ctl = NULL;
    mq_sup_free(d->sup);
    d->sup = NULL;
    mq_fwd_set_free(d->fwd);
    d->fwd = NULL;
    mq_kafka_server_stop(d->kafka);
    d->kafka = NULL;
    mq_ingest_free(d->ingest);
    d->ingest = NULL;
    enum mq_err err = mq_store_close(d->store);
    d->store = NULL;
    mq_daemon_cfg_unref(d->dc);
    d->dc = NULL;
    return err;
}

static void mq_daemon_rebuilt(void *opaque, const struct mq_verify_issue *issue)
{
    MQ_WARN("%s: %s", issue->path, issue->what);
    (*(int *)opaque)++;
}

/* Topics whose records the catalog no longer describes (catalog.db lost or emptied) would be invisible to
 * every client: their rows are rebuilt from the partition directories, loudly, or the daemon does not start.
 */
static enum mq_err mq_daemon_catalog_rebuild(struct mq_store *store)
{
    char why[512] = "";
    int n = 0;
    enum mq_err err = mq_store_rebuild_topics(store, mq_daemon_rebuilt, &n, NULL, why, sizeof why);
    if (err != MQ_OK) {
        MQ_ERROR("%s/" MQ_CATALOG_FILE
                 " does not describe stored records and cannot be rebuilt: %s; not starting "
                 "(fix it, or run 'mqlog verify --repair -d %s')",
                 mq_store_dir(store), why, mq_store_dir(store));
        return err;
    }
    if (n > 0)
        MQ_WARN(
            "%s/" MQ_CATALOG_FILE "%s: rebuilt %d topic row%s from the partition directories; consumer-group "
            "offsets and connector checkpoints that were in the catalog cannot be rebuilt and are gone: "
            "consumer groups restart from their offset reset policy",
            mq_store_dir(store), mq_store_catalog_was_new(store) ? " was missing or empty" : " lacked topics",
            n, n == 1 ? "" : "s");
    return MQ_OK;
}

/* The HTTP endpoints, when configured; they read every module, so they start last. */
static enum mq_err mq_daemon_observe_start(struct mq_daemon *d)
{
    const struct mq_config_http *h = &d->dc->cfg->http;
    if (!h->listen)
        return MQ_OK;
    atomic_store(&d->heartbeat_ms, mq_mono_ms());
    struct mq_observe_src src = {.store = d->store,
                                 .ingest = d->ingest,
                                 .sup = d->sup,
                                 .kafka = d->kafka,
                                 .fwd = d->fwd,
                                 .main_heartbeat_ms = &d->heartbeat_ms,
                                 .partition_metrics = h->partition_metrics};
    char why[512] = "";
    enum mq_err err = mq_observe_start(h->listen_host, h->listen_port, &src, &d->observe, why, sizeof why);
    if (err != MQ_OK) {
        MQ_ERROR("http endpoint: %s", why[0] ? why : mq_strerror(err));
        return err;
    }
    MQ_NOTICE("http endpoint listening on %s:%d (/metrics, /healthz, /readyz, /status.json)", h->listen_host,
              mq_observe_port(d->observe));
    return MQ_OK;
}

static enum mq_err mq_daemon_start(struct mq_daemon *d)
{
    struct mq_config *cfg = NULL;
    struct mq_ingest_routes *routes = NULL;
    enum mq_err err = mq_daemon_load(d->config_path, &cfg, &routes, mq_report_log, NULL);
    if (err != MQ_OK)
        return err;
    d->dc = mq_daemon_cfg_new(cfg);
    if (!d->dc) {
        mq_config_free(cfg);
        mq_ingest_routes_free(routes);
        return MQ_ERR_NOMEM;
    }
    struct mq_log_conf lc;
    mq_log_conf_from(cfg, &lc);
    /* Before the store opens: its descriptor cache sizes itself from the soft limit (one log topic per
     * device means thousands of partitions), and the Kafka endpoint checks max_connections against it. */
    mq_nofile_raise();
    char why[512] = "";
    err = mq_store_open(cfg->data_dir, MQ_STORE_WRITE, &lc, &d->store, why, sizeof why);
    if (err != MQ_OK) {
        mq_ingest_routes_free(routes);
        if (err == MQ_ERR_BUSY)
            MQ_ERROR("data directory %s is being written by another process (another mqlogd?): %s",
                     cfg->data_dir, why);
        else
            MQ_ERROR("cannot open the data directory %s: %s", cfg->data_dir, why[0] ? why : mq_strerror(err));
        return err;
    }
    err = mq_daemon_catalog_rebuild(d->store);
    if (err != MQ_OK) {
        mq_ingest_routes_free(routes);
        return err;
    }
    err = mq_ingest_new(d->store, routes, &d->ingest, why, sizeof why);
    if (err != MQ_OK) {
        mq_ingest_routes_free(routes);
        MQ_ERROR("ingest: %s", why);
        return err;
    }
    err = mq_daemon_kafka_start(d);
    if (err != MQ_OK)
        return err;
    err = mq_fwd_set_new(d->store, &d->fwd);
    if (err == MQ_OK)
        err = mq_fwd_set_apply(d->fwd, cfg, why, sizeof why);
    if (err != MQ_OK) {
        MQ_ERROR("%s", why[0] ? why : mq_strerror(err));
        return err;
    }
    err = mq_sup_new(d->ingest, &d->sup);
    if (err != MQ_OK)
        return err;
    err = mq_sup_apply(d->sup, d->dc, mq_ingest_routes_table(routes), NULL, why, sizeof why);
    if (err != MQ_OK) {
        MQ_ERROR("%s", why);
        return err;
    }
    /* Without it the daemon still does its work; only the writing commands of mqlog cannot run beside it. */
    if (mq_ctl_server_start(d->store, d->ingest, &d->ctl, why, sizeof why) != MQ_OK)
        MQ_WARN("%s: mqlog create, produce and topic cannot run beside this mqlogd", why);
    return mq_daemon_observe_start(d);
}

int mq_daemon_run(const char *config_path)
{
    /* before any thread exists: see the top of the file */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) {
        MQ_ERROR("pthread_sigmask: %s", MQ_STRERROR(rc));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer closing a socket is an EPIPE error, not the end of the daemon */

    struct mq_daemon d = {.config_path = config_path};
    enum mq_err err = mq_daemon_start(&d);
    if (err != MQ_OK) {
        MQ_ERROR("mqlogd not started: %s", mq_strerror(err));
        sd_notifyf(0, "STATUS=Failed to start: %s", mq_strerror(err));
        mq_daemon_teardown(&d);
        return 1;
    }
    size_t n, connected;
    mq_sup_count(d.sup, &n, &connected);
    MQ_NOTICE("mqlogd running: data in %s, %zu broker%s, %zu connection%s, %zu mapping%s, %zu forwarder%s",
              d.dc->cfg->data_dir, d.dc->cfg->nbrokers, d.dc->cfg->nbrokers == 1 ? "" : "s", n,
              n == 1 ? "" : "s", d.dc->cfg->nmappings, d.dc->cfg->nmappings == 1 ? "" : "s",
              mq_fwd_set_count(d.fwd), mq_fwd_set_count(d.fwd) == 1 ? "" : "s");
    sd_notify(0, "READY=1\nSTATUS=Running");
    d.status_mono = mq_mono_ms();

    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    int64_t wd_every_ms = watchdog ? (int64_t)(wd_usec / 2000) : 0;
    int64_t stale_ms = wd_every_ms < MQ_DAEMON_STALE_MIN_MS   ? MQ_DAEMON_STALE_MIN_MS
                       : wd_every_ms > MQ_DAEMON_STALE_MAX_MS ? MQ_DAEMON_STALE_MAX_MS
                                                              : wd_every_ms;
    bool withheld = false;
    int64_t next_wd = mq_mono_ms(), next_stats = mq_mono_ms() + MQ_DAEMON_STATS_MS;
    int64_t next_status = mq_mono_ms() + MQ_DAEMON_STATUS_MS;
    int exit_status = 0;
    for (;;) {
        atomic_store(&d.heartbeat_ms, mq_mono_ms()); /* /healthz: the main loop turns, once a second */
        mq_observe_tick(d.observe);
        struct timespec ts = {.tv_sec = 1, .tv_nsec = 0};
        if (watchdog && wd_every_ms < 1000) {
            ts.tv_sec = 0;
            ts.tv_nsec = (wd_every_ms > 0 ? wd_every_ms : 1) * 1000000L;
        }
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            MQ_NOTICE("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP)
            mq_daemon_reload(&d);
        else if (sig == SIGUSR1)
            mq_daemon_stats(&d, MQ_LV_INFO);
        else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            MQ_ERROR("sigtimedwait: %s", MQ_STRERROR(errno));
            exit_status = 1;
            break;
        }
        int64_t now = mq_mono_ms();
        if (watchdog && now >= next_wd) {
            /* a stale loop withholds the keep-alive; it is tried again each turn, and sent once it turns */
            int64_t age = 0;
            const char *stale = mq_daemon_stale_loop(&d, stale_ms, &age);
            if (!stale) {
                mq_daemon_notify("WATCHDOG=1");
                next_wd = now + wd_every_ms;
                if (withheld)
                    MQ_NOTICE("watchdog: every loop turns again; keep-alives resumed");
                withheld = false;
            } else if (!withheld) {
                MQ_WARN("watchdog: the %s has not turned for %.1f s: keep-alives withheld (systemd restarts "
                        "mqlogd once WatchdogSec passes without one)",
                        stale, (double)age / 1000.0);
                withheld = true;
            }
        }
        if (now >= next_status) {
            mq_daemon_status_line(&d);
            next_status = now + MQ_DAEMON_STATUS_MS;
        }
        if (now >= next_stats) {
            mq_daemon_stats(&d, MQ_LV_DEBUG);
            next_stats = now + MQ_DAEMON_STATS_MS;
        }
    }
    mq_daemon_notify("STOPPING=1\nSTATUS=Stopping: flushing the log");
    mq_daemon_stats(&d, MQ_LV_INFO);
    err = mq_daemon_teardown(&d);
    if (err != MQ_OK) {
        MQ_ERROR("closing the store: %s", mq_strerror(err));
        return 1;
    }
    MQ_NOTICE("mqlogd stopped: everything received is stored");
    return exit_status;
}
