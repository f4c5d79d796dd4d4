/*
 * observe.c - the daemon's operator endpoints: /metrics, /healthz, /readyz and /status.json, served by
 * the HTTP server (http/http.h) on its own thread.
 *
 * Each request takes one snapshot (struct mq_snap) of what the modules publish for other threads: the
 * ingest layer's and the connectors' atomic counters, the log's counters and histogram, the Kafka
 * endpoint's counters, the forwarders' figures (under the forward set's lock), the supervisor's instances
 * (under its lock, which a reload takes only while it swaps them) and the catalog. Nothing on a hot path
 * waits for a scrape: the connectors and the flusher only ever add to atomics. /metrics and /status.json
 * render the same snapshot, so they cannot tell different stories.
 *
 * The page at / (status_page.html, compiled in) renders /status.json in a browser; for its sparkline the
 * main loop samples the received count once a second (mq_observe_tick()) into a ring of the last
 * MQ_OBS_HISTORY seconds, which status.json carries as history. For the rates in status.json (messages
 * received, records per mapping) the same tick keeps two samples of the counters, MQ_OBS_RATE_MS apart: a
 * rate is the counter now minus the older sample, over its age (5 to 10 s), so one request is enough.
 *
 * Health is about the process: every event loop that matters (the daemon's main loop, the log's flusher,
 * the Kafka endpoint's loop) stamps a heartbeat each turn, at least once a second; one older than
 * MQ_OBS_STALE_MS fails /healthz. Readiness is about the service: the store open, every broker connection
 * up, every forwarder delivering; /readyz names what is not.
 */
#include "daemon/daemon.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "forward/forward.h"
#include "http/http.h"
#include "kafka/server.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_OBS_STALE_MS 10000 /* a loop silent this long is hung: each turns at least once a second */
#define MQ_OBS_HISTORY  300   /* seconds of ingest history for the status page's sparkline */
#define MQ_OBS_RATE_MS  5000  /* the rate samples' spacing (see the top of the file) */

extern const char mq_status_page[]; /* status_page.c, generated from status_page.html */
extern const size_t mq_status_page_len;

struct mq_obs_sample {
    int64_t wall_ms;
    uint64_t received;
};

/* The counters the rates are taken from, at one time. */
struct mq_obs_rate_sample {
    int64_t mono; /* 0: not taken */
    uint64_t received;
    struct mq_obs_map_count {
        char *name;
        uint64_t records;
    } * maps;
    size_t nmaps;
};

struct mq_observe {
    struct mq_observe_src src;
    struct mq_http *http;
    int64_t start_wall_ms;
    pthread_mutex_t hist_mu; /* the ring: the main loop adds, requests copy */
    struct mq_obs_sample hist[MQ_OBS_HISTORY];
    size_t hist_n, hist_next;
    int64_t hist_last_mono;
    struct mq_obs_rate_sample rate_old, rate_new; /* under hist_mu */
};

/* ---- the snapshot ---- */

struct mq_snap_part {
    int32_t id;
    bool ok; /* stats read */
    struct mq_part_stats st;
};

struct mq_snap_lag {
    char *group, *topic;
    int32_t partition;
    int64_t committed; /* -1: never committed */
    int64_t lag;
};

struct mq_snap_api {
    const char *name; /* static */
    uint64_t requests;
};

struct mq_snap {
    int64_t now_mono, now_wall;
    struct mq_ingest_stats in;
    struct mq_sup_broker *brokers; /* names copied */
    size_t nbrokers;
    struct {
        char *name;
        uint64_t records;
        double per_s; /* < 0: not known yet */
    } * mappings;
    size_t nmappings;
    double received_per_s; /* < 0: not known yet */
    struct mq_log_stats log;
    struct mq_histo_snap flush;
    int64_t free_bytes;              /* -1: unknown */
    struct mq_catalog_topic *topics; /* the catalog's, in name order */
    struct mq_snap_part **parts;     /* per topic: its partitions' figures (partition_metrics), or NULL */
    size_t ntopics;
    int64_t npartitions;
    bool kafka;
    struct mq_kafka_server_stats ks;
    struct mq_snap_api apis[64];
    size_t napis;
    struct mq_snap_lag *lags;
    size_t nlags;
    struct mq_fwd_stats *fwds; /* names copied */
    size_t nfwds;
    struct mq_obs_sample hist[MQ_OBS_HISTORY]; /* oldest first */
    size_t hist_n;
    /* health and readiness */
    const char *loop_names[3];
    int64_t loop_age_ms[3];
    size_t nloops;
    bool healthy, ready;
    char *not_ready; /* lines, "" when ready */
    size_t not_ready_len;
};

static void mq_snap_broker(void *opaque, const struct mq_sup_broker *b)
{
    struct mq_snap *s = opaque;
    void *n = realloc(s->brokers, (s->nbrokers + 1) * sizeof *s->brokers);
    if (!n)
        return;
    s->brokers = n;
    struct mq_sup_broker *c = &s->brokers[s->nbrokers];
    *c = *b;
    c->name = strdup(b->name);
    c->url = strdup(b->url ? b->url : "");
    if (!c->name || !c->url) {
        free((char *)c->name);
        free((char *)c->url);
        return;
    }
    s->nbrokers++;
}

static void mq_snap_mapping(void *opaque, size_t i, const char *name, uint64_t records)
{
    struct mq_snap *s = opaque;
    char fallback[32];
    if (!name) {
        snprintf(fallback, sizeof fallback, "mapping-%zu", i);
        name = fallback;
    }
    /* mappings with the same template share a series (metrics.h) */
    for (size_t k = 0; k < s->nmappings; k++) {
        if (strcmp(s->mappings[k].name, name) == 0) {
            s->mappings[k].records += records;
            return;
        }
    }
    void *n = realloc(s->mappings, (s->nmappings + 1) * sizeof *s->mappings);
    if (!n)
        return;
    s->mappings = n;
    if (!(s->mappings[s->nmappings].name = strdup(name)))
        return;
    s->mappings[s->nmappings].per_s = -1;
    s->mappings[s->nmappings++].records = records;
}

static void mq_snap_fwd(void *opaque, const struct mq_fwd_stats *st)
{
    struct mq_snap *s = opaque;
    void *n = realloc(s->fwds, (s->nfwds + 1) * sizeof *s->fwds);
    if (!n)
        return;
    s->fwds = n;
    s->fwds[s->nfwds] = *st;
    if (!(s->fwds[s->nfwds].name = strdup(st->name)))
        return;
    s->nfwds++;
}

static void mq_snap_api(void *opaque, const char *api, uint64_t requests)
{
    struct mq_snap *s = opaque;
    if (s->napis < sizeof s->apis / sizeof s->apis[0])
        s->apis[s->napis++] = (struct mq_snap_api){api, requests};
}

/* The end offset of topic/p (what consumers can reach), or -1. */
static int64_t mq_snap_end(struct mq_store *store, const char *topic, int32_t p, int64_t *start)
{
    struct mq_part *part;
    int64_t s, e;
    if (mq_log_part(mq_store_log(store), topic, p, &part) != MQ_OK || mq_part_offsets(part, &s, &e) != MQ_OK)
        return -1;
    if (start)
        *start = s;
    return e;
}

/* Every partition of each topic a group committed on: lag from its commit, or from the log start. */
static void mq_snap_groups(struct mq_observe *o, struct mq_snap *s)
{
    struct mq_catalog *cat = mq_store_catalog(o->src.store);
    char **groups = NULL;
    size_t ngroups = 0;
    if (mq_catalog_group_list(cat, &groups, &ngroups) != MQ_OK)
        return;
    for (size_t g = 0; g < ngroups; g++) {
        struct mq_group_offset *offs = NULL;
        size_t noffs = 0;
        if (mq_catalog_offset_list(cat, groups[g], &offs, &noffs) != MQ_OK)
            continue;
        for (size_t t = 0; t < s->ntopics; t++) {
            const struct mq_catalog_topic *ct = &s->topics[t];
            bool committed_here = false;
            for (size_t k = 0; k < noffs && !committed_here; k++)
                committed_here = strcmp(offs[k].topic, ct->name) == 0;
            if (!committed_here)
                continue;
            for (int32_t p = 0; p < ct->partitions; p++) {
                int64_t committed = -1, start = 0;
                for (size_t k = 0; k < noffs; k++)
                    if (offs[k].partition == p && strcmp(offs[k].topic, ct->name) == 0)
                        committed = offs[k].offset;
                int64_t end = mq_snap_end(o->src.store, ct->name, p, &start);
                if (end < 0)
                    continue;
                int64_t from = committed >= start ? committed : start;
                void *n = realloc(s->lags, (s->nlags + 1) * sizeof *s->lags);
                if (!n)
                    break;
                s->lags = n;
                struct mq_snap_lag *l = &s->lags[s->nlags];
                l->group = strdup(groups[g]);
                l->topic = strdup(ct->name);
                if (!l->group || !l->topic) {
                    free(l->group);
                    free(l->topic);
                    break;
                }
                l->partition = p;
                l->committed = committed;
                l->lag = end > from ? end - from : 0;
                s->nlags++;
            }
        }
        mq_catalog_offsets_free(offs, noffs);
    }
    mq_catalog_strings_free(groups, ngroups);
}

static void mq_snap_topics(struct mq_observe *o, struct mq_snap *s)
{
    if (mq_store_topic_list(o->src.store, &s->topics, &s->ntopics) != MQ_OK) {
        s->topics = NULL;
        s->ntopics = 0;
        return;
    }
    for (size_t t = 0; t < s->ntopics; t++)
        s->npartitions += s->topics[t].partitions;
    if (!o->src.partition_metrics || !(s->parts = calloc(s->ntopics ? s->ntopics : 1, sizeof *s->parts)))
        return;
    for (size_t t = 0; t < s->ntopics; t++) {
        const struct mq_catalog_topic *ct = &s->topics[t];
        if (!(s->parts[t] = calloc((size_t)ct->partitions, sizeof *s->parts[t])))
            continue;
        for (int32_t p = 0; p < ct->partitions; p++) {
            struct mq_snap_part *sp = &s->parts[t][p];
            struct mq_part *part;
            sp->id = p;
            sp->ok = mq_log_part(mq_store_log(o->src.store), ct->name, p, &part) == MQ_OK &&
                     mq_part_stats(part, &sp->st) == MQ_OK;
        }
    }
}

/* A line of the /readyz body (and of status.json's not_ready). */
static void mq_snap_not_ready(struct mq_snap *s, FILE *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mq_snap_not_ready(struct mq_snap *s, FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    s->ready = false;
}

static void mq_snap_verdicts(struct mq_observe *o, struct mq_snap *s)
{
    s->loop_names[0] = "main";
    s->loop_age_ms[0] = s->now_mono - atomic_load(o->src.main_heartbeat_ms);
    s->loop_names[1] = "store";
    s->loop_age_ms[1] = s->now_mono - s->log.heartbeat_ms;
    s->nloops = 2;
    if (s->kafka) {
        s->loop_names[2] = "kafka";
        s->loop_age_ms[2] = s->now_mono - s->ks.heartbeat_ms;
        s->nloops = 3;
    }
    s->healthy = true;
    for (size_t i = 0; i < s->nloops; i++)
        if (s->loop_age_ms[i] > MQ_OBS_STALE_MS)
            s->healthy = false;

    s->ready = true;
    FILE *f = open_memstream(&s->not_ready, &s->not_ready_len);
    if (!f) {
        s->ready = false;
        return;
    }
    /* the store is open for as long as the daemon runs; a partition stopped by a failed sync shows in
     * the log, and a full disk here */
    if (s->free_bytes == 0)
        mq_snap_not_ready(s, f, "store: no free space left in %s", mq_store_dir(o->src.store));
    for (size_t i = 0; i < s->nbrokers; i++)
        if (s->brokers[i].connected < s->brokers[i].sessions)
            mq_snap_not_ready(s, f, "broker %s: %zu of %zu connections up%s%s", s->brokers[i].name,
                              s->brokers[i].connected, s->brokers[i].sessions,
                              s->brokers[i].last_error[0] ? ": " : "", s->brokers[i].last_error);
    for (size_t i = 0; i < s->nfwds; i++)
        if (s->fwds[i].state != MQ_FWD_DELIVERING)
            mq_snap_not_ready(s, f, "forwarder %s: %s", s->fwds[i].name, s->fwds[i].state_text);
    if (fclose(f) != 0)
        s->ready = false;
}

/* The rates of s's counters against the older rate sample (o->hist_mu held). A mapping that was not in
 * the sample (new since, or renamed by a reload) has none yet. */
static void mq_snap_rates(struct mq_observe *o, struct mq_snap *s)
{
    const struct mq_obs_rate_sample *base = o->rate_old.mono ? &o->rate_old : &o->rate_new;
    double dt = (double)(s->now_mono - base->mono) / 1000.0;
    s->received_per_s = -1;
    if (!base->mono || dt < 1.0)
        return;
    s->received_per_s = s->in.received >= base->received ? (double)(s->in.received - base->received) / dt : 0;
    for (size_t i = 0; i < s->nmappings; i++)
        for (size_t k = 0; k < base->nmaps; k++)
            if (strcmp(base->maps[k].name, s->mappings[i].name) == 0) {
                uint64_t now = s->mappings[i].records, then = base->maps[k].records;
                s->mappings[i].per_s = now >= then ? (double)(now - then) / dt : 0;
                break;
            }
}

/* Only the heartbeats, for /healthz: atomics, no lock that a stuck loop could hold, so that the answer
 * (503 naming the stale loop) comes at once whatever hangs. */
static void mq_snap_health(struct mq_observe *o, struct mq_snap *s)
{
    memset(s, 0, sizeof *s);
    s->now_mono = mq_mono_ms();
    s->now_wall = mq_now_ms();
    s->free_bytes = -1;
    s->log.heartbeat_ms = mq_log_heartbeat_ms(mq_store_log(o->src.store));
    if (o->src.kafka) {
        s->kafka = true;
        mq_kafka_server_stats(o->src.kafka, &s->ks);
    }
    mq_snap_verdicts(o, s);
}

/* Takes the snapshot; full: everything (metrics, status), else only what health and readiness need. The
 * log's figures wait at most MQ_LOG_STATS_WAIT_MS for partition locks (mq_log_stats()). */
static void mq_snap_take(struct mq_observe *o, struct mq_snap *s, bool full)
{
    memset(s, 0, sizeof *s);
    s->now_mono = mq_mono_ms();
    s->now_wall = mq_now_ms();
    s->free_bytes = -1;
    mq_sup_brokers(o->src.sup, mq_snap_broker, s);
    if (o->src.fwd)
        mq_fwd_set_stats(o->src.fwd, mq_snap_fwd, s);
    mq_log_stats(mq_store_log(o->src.store), &s->log);
    struct statvfs vfs;
    if (statvfs(mq_store_dir(o->src.store), &vfs) == 0)
        s->free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    if (o->src.kafka) {
        s->kafka = true;
        mq_kafka_server_stats(o->src.kafka, &s->ks);
    }
    if (full) {
        mq_ingest_stats(o->src.ingest, &s->in);
        mq_ingest_mapping_stats(o->src.ingest, mq_snap_mapping, s);
        mq_log_flush_histo(mq_store_log(o->src.store), &s->flush);
        if (o->src.kafka)
            mq_kafka_server_api_requests(o->src.kafka, mq_snap_api, s);
        mq_snap_topics(o, s);
        if (o->src.partition_metrics)
            mq_snap_groups(o, s);
        pthread_mutex_lock(&o->hist_mu);
        for (size_t i = 0; i < o->hist_n; i++)
            s->hist[i] = o->hist[(o->hist_next + MQ_OBS_HISTORY - o->hist_n + i) % MQ_OBS_HISTORY];
        s->hist_n = o->hist_n;
        mq_snap_rates(o, s);
        pthread_mutex_unlock(&o->hist_mu);
    }
    mq_snap_verdicts(o, s);
}

static void mq_snap_free(struct mq_snap *s)
{
    for (size_t i = 0; i < s->nbrokers; i++) {
        free((char *)s->brokers[i].name);
        free((char *)s->brokers[i].url);
    }
    free(s->brokers);
    for (size_t i = 0; i < s->nmappings; i++)
        free(s->mappings[i].name);
    free(s->mappings);
    for (size_t t = 0; s->parts && t < s->ntopics; t++)
        free(s->parts[t]);
    free(s->parts);
    free(s->topics);
    for (size_t i = 0; i < s->nlags; i++) {
        free(s->lags[i].group);
        free(s->lags[i].topic);
    }
    free(s->lags);
    for (size_t i = 0; i < s->nfwds; i++)
        free((char *)s->fwds[i].name);
    free(s->fwds);
    free(s->not_ready);
}

/* ---- /metrics ---- */

static void mq_obs_metrics(struct mq_observe *o, const struct mq_snap *s, FILE *f)
{
    struct mq_expo e;
    mq_expo_init(&e, f);
    mq_expo_u64(&e, MQ_M_BUILD_INFO, (const char *[]){MQ_VERSION}, 1);
    mq_expo_double(&e, MQ_M_START_TIME, NULL, (double)o->start_wall_ms / 1000.0);
    mq_expo_u64(&e, MQ_M_READY, NULL, s->ready);
    for (size_t i = 0; i < s->nloops; i++)
        mq_expo_double(&e, MQ_M_LOOP_HEARTBEAT_AGE, (const char *[]){s->loop_names[i]},
                       (double)s->loop_age_ms[i] / 1000.0);

    const struct mq_ingest_stats *in = &s->in;
    mq_expo_u64(&e, MQ_M_RECEIVED, NULL, in->received);
    mq_expo_u64(&e, MQ_M_STORED, NULL, in->messages - in->unmatched);
    mq_expo_u64(&e, MQ_M_UNMATCHED, NULL, in->unmatched);
    mq_expo_u64(&e, MQ_M_REJECTED, (const char *[]){"invalid_topic"}, in->invalid);
    mq_expo_u64(&e, MQ_M_REJECTED, (const char *[]){"too_large"}, in->too_large);
    mq_expo_u64(&e, MQ_M_REJECTED, (const char *[]){"left_with_broker"}, in->left);
    mq_expo_u64(&e, MQ_M_PENDING, NULL, in->pending);
    mq_expo_u64(&e, MQ_M_RECORDS, NULL, in->records);
    mq_expo_u64(&e, MQ_M_PAYLOAD_BYTES, NULL, in->bytes);
    mq_expo_u64(&e, MQ_M_BACKPRESSURE, NULL, in->full);
    mq_expo_u64(&e, MQ_M_REDELIVERED, NULL, in->redelivered);

    static const enum mq_metric per_broker[] = {
        MQ_M_BROKER_SESSIONS, MQ_M_BROKER_CONNECTED, MQ_M_BROKER_CONNECTS, MQ_M_BROKER_DISCONNECTS,
        MQ_M_BROKER_MESSAGES, MQ_M_BROKER_BYTES,     MQ_M_BROKER_PAUSED};
    for (size_t m = 0; m < sizeof per_broker / sizeof per_broker[0]; m++) {
        mq_expo_family(&e, per_broker[m]);
        for (size_t i = 0; i < s->nbrokers; i++) {
            const struct mq_sup_broker *b = &s->brokers[i];
            const char *l[] = {b->name};
            switch (per_broker[m]) {
            case MQ_M_BROKER_SESSIONS:
                mq_expo_u64(&e, per_broker[m], l, b->sessions);
                break;
            case MQ_M_BROKER_CONNECTED:
                mq_expo_u64(&e, per_broker[m], l, b->connected);
                break;
            case MQ_M_BROKER_CONNECTS:
                mq_expo_u64(&e, per_broker[m], l, b->connects);
                break;
            case MQ_M_BROKER_DISCONNECTS:
                mq_expo_u64(&e, per_broker[m], l, b->disconnects);
                break;
            case MQ_M_BROKER_MESSAGES:
                mq_expo_u64(&e, per_broker[m], l, b->messages);
                break;
            case MQ_M_BROKER_BYTES:
                mq_expo_u64(&e, per_broker[m], l, b->bytes);
                break;
            default:
                mq_expo_double(&e, per_broker[m], l, (double)b->paused_ms / 1000.0);
                break;
            }
        }
    }
    mq_expo_family(&e, MQ_M_MAPPING_RECORDS);
    for (size_t i = 0; i < s->nmappings; i++)
        mq_expo_u64(&e, MQ_M_MAPPING_RECORDS, (const char *[]){s->mappings[i].name}, s->mappings[i].records);

    mq_expo_histo(&e, MQ_M_STORE_FLUSH_DURATION, NULL, &s->flush);
    mq_expo_i64(&e, MQ_M_STORE_FSYNCS, NULL, s->log.fsyncs);
    mq_expo_i64(&e, MQ_M_STORE_DURABLE_LAG, NULL, s->log.durable_lag);
    mq_expo_i64(&e, MQ_M_STORE_RETENTION_DELETED, NULL, s->log.retention_deleted_segments);
    mq_expo_i64(&e, MQ_M_STORE_BUDGET_DELETED, (const char *[]){"max_disk_bytes"},
                s->log.cap_deleted_segments);
    mq_expo_i64(&e, MQ_M_STORE_BUDGET_DELETED, (const char *[]){"min_free_bytes"},
                s->log.free_deleted_segments);
    mq_expo_i64(&e, MQ_M_STORE_BUDGET_DELETED_BYTES, (const char *[]){"max_disk_bytes"},
                s->log.cap_deleted_bytes);
    mq_expo_i64(&e, MQ_M_STORE_BUDGET_DELETED_BYTES, (const char *[]){"min_free_bytes"},
                s->log.free_deleted_bytes);
    mq_expo_i64(&e, MQ_M_STORE_BUDGET_WAITS, NULL, s->log.budget_refused_writes);
    mq_expo_i64(&e, MQ_M_STORE_BUDGET_BLOCKED, NULL, s->log.budget_blocked);
    mq_expo_i64(&e, MQ_M_STORE_DROPPED_UNFORWARDED, NULL, s->log.dropped_unforwarded);
    mq_expo_i64(&e, MQ_M_STORE_RECOMPACTED, NULL, s->log.recompacted_segments);
    mq_expo_i64(&e, MQ_M_STORE_RECOMPACT_SAVED, NULL, s->log.recompact_saved_bytes);
    mq_expo_i64(&e, MQ_M_STORE_DISK_BYTES, NULL, s->log.open_bytes);
    mq_expo_family(&e, MQ_M_STORE_FREE_BYTES);
    if (s->free_bytes >= 0)
        mq_expo_i64(&e, MQ_M_STORE_FREE_BYTES, NULL, s->free_bytes);
    mq_expo_i64(&e, MQ_M_STORE_PARTITIONS, NULL, s->npartitions);

    if (s->parts) {
        static const enum mq_metric per_part[] = {MQ_M_PART_START_OFFSET, MQ_M_PART_END_OFFSET,
                                                  MQ_M_PART_BYTES, MQ_M_PART_SEGMENTS, MQ_M_PART_OLDEST_TS};
        for (size_t m = 0; m < sizeof per_part / sizeof per_part[0]; m++) {
            mq_expo_family(&e, per_part[m]);
            for (size_t t = 0; t < s->ntopics; t++) {
                for (int32_t p = 0; s->parts[t] && p < s->topics[t].partitions; p++) {
                    const struct mq_snap_part *sp = &s->parts[t][p];
                    if (!sp->ok)
                        continue;
                    char pid[16];
                    snprintf(pid, sizeof pid, "%" PRId32, p);
                    const char *l[] = {s->topics[t].name, pid};
                    switch (per_part[m]) {
                    case MQ_M_PART_START_OFFSET:
                        mq_expo_i64(&e, per_part[m], l, sp->st.start_offset);
                        break;
                    case MQ_M_PART_END_OFFSET:
                        mq_expo_i64(&e, per_part[m], l, sp->st.end_offset);
                        break;
                    case MQ_M_PART_BYTES:
                        mq_expo_i64(&e, per_part[m], l, sp->st.bytes);
                        break;
                    case MQ_M_PART_SEGMENTS:
                        mq_expo_i64(&e, per_part[m], l, sp->st.segments);
                        break;
                    default:
                        if (sp->st.oldest_timestamp >= 0)
                            mq_expo_double(&e, per_part[m], l, (double)sp->st.oldest_timestamp / 1000.0);
                        break;
                    }
                }
            }
        }
    }

    if (s->kafka) {
        mq_expo_u64(&e, MQ_M_KAFKA_CONNECTIONS, NULL, s->ks.open);
        mq_expo_u64(&e, MQ_M_KAFKA_ACCEPTED, NULL, s->ks.accepted);
        mq_expo_u64(&e, MQ_M_KAFKA_REFUSED, NULL, s->ks.refused);
        mq_expo_u64(&e, MQ_M_KAFKA_TIMED_OUT, NULL, s->ks.timed_out);
        for (size_t i = 0; i < s->napis; i++)
            mq_expo_u64(&e, MQ_M_KAFKA_REQUESTS, (const char *[]){s->apis[i].name}, s->apis[i].requests);
        mq_expo_u64(&e, MQ_M_KAFKA_REQUEST_ERRORS, (const char *[]){"UNSUPPORTED_VERSION"},
                    s->ks.unsupported);
        mq_expo_u64(&e, MQ_M_KAFKA_REQUEST_ERRORS, (const char *[]){"POLICY_VIOLATION"}, s->ks.too_large);
        mq_expo_u64(&e, MQ_M_KAFKA_REQUEST_ERRORS, (const char *[]){"CORRUPT_MESSAGE"},
                    s->ks.protocol_errors);
        mq_expo_u64(&e, MQ_M_KAFKA_REQUEST_ERRORS, (const char *[]){"SASL_AUTHENTICATION_FAILED"},
                    s->ks.auth_failed);
        mq_expo_u64(&e, MQ_M_KAFKA_REQUEST_ERRORS, (const char *[]){"SSL_HANDSHAKE_FAILED"},
                    s->ks.tls_failed);
        mq_expo_u64(&e, MQ_M_KAFKA_SENT_BYTES, NULL, s->ks.sent_bytes);
        mq_expo_u64(&e, MQ_M_KAFKA_ACL_DENIED, NULL, s->ks.denied);
        mq_expo_u64(&e, MQ_M_KAFKA_FETCH_WAITING, NULL, s->ks.fetch_waiting);
    }

    if (o->src.partition_metrics) {
        mq_expo_family(&e, MQ_M_GROUP_LAG);
        for (size_t i = 0; i < s->nlags; i++) {
            char pid[16];
            snprintf(pid, sizeof pid, "%" PRId32, s->lags[i].partition);
            mq_expo_i64(&e, MQ_M_GROUP_LAG, (const char *[]){s->lags[i].group, s->lags[i].topic, pid},
                        s->lags[i].lag);
        }
    }

    static const enum mq_metric per_fwd[] = {MQ_M_FWD_UP,         MQ_M_FWD_STATE,       MQ_M_FWD_RECORDS,
                                             MQ_M_FWD_BYTES,      MQ_M_FWD_LAG_RECORDS, MQ_M_FWD_LAG_BYTES,
                                             MQ_M_FWD_LAG_SECONDS};
    for (size_t m = 0; m < sizeof per_fwd / sizeof per_fwd[0]; m++) {
        mq_expo_family(&e, per_fwd[m]);
        for (size_t i = 0; i < s->nfwds; i++) {
            const struct mq_fwd_stats *fs = &s->fwds[i];
            const char *l[] = {fs->name, NULL};
            switch (per_fwd[m]) {
            case MQ_M_FWD_UP:
                mq_expo_u64(&e, per_fwd[m], l, fs->state == MQ_FWD_DELIVERING);
                break;
            case MQ_M_FWD_STATE:
                for (int k = 0; k < MQ_FWD_NSTATES; k++)
                    mq_expo_u64(&e, per_fwd[m], (const char *[]){fs->name, mq_fwd_state_names[k]},
                                fs->state == (enum mq_fwd_state_class)k);
                break;
            case MQ_M_FWD_RECORDS:
                mq_expo_u64(&e, per_fwd[m], l, fs->records_sent);
                break;
            case MQ_M_FWD_BYTES:
                mq_expo_u64(&e, per_fwd[m], l, fs->bytes_sent);
                break;
            case MQ_M_FWD_LAG_RECORDS:
                mq_expo_i64(&e, per_fwd[m], l, fs->lag_records);
                break;
            case MQ_M_FWD_LAG_BYTES:
                mq_expo_i64(&e, per_fwd[m], l, fs->lag_bytes);
                break;
            default:
                mq_expo_double(&e, per_fwd[m], l, fs->lag_seconds);
                break;
            }
        }
    }
    if (mq_expo_failed(&e))
        MQ_ERROR("http: /metrics broke the exposition format's rules (a bug): the answer is incomplete");
}

/* ---- /status.json ---- */

static void mq_json_strn(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)s + n; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void mq_json_str(FILE *f, const char *s)
{
    mq_json_strn(f, s, strlen(s));
}

/* A rate for status.json: null when not known yet. */
static const char *mq_json_rate(char *buf, size_t size, double per_s)
{
    if (per_s < 0)
        snprintf(buf, size, "null");
    else
        snprintf(buf, size, "%.3f", per_s);
    return buf;
}

static void mq_obs_status(struct mq_observe *o, const struct mq_snap *s, FILE *f)
{
    const struct mq_ingest_stats *in = &s->in;
    char rate[32];
    mq_json_rate(rate, sizeof rate, s->received_per_s);
    fprintf(f, "{\"version\":");
    mq_json_str(f, MQ_VERSION);
    fprintf(f,
            ",\"now_ms\":%" PRId64 ",\"start_time_ms\":%" PRId64
            ",\"healthy\":%s,\"ready\":%s,\"not_ready\":[",
            s->now_wall, o->start_wall_ms, s->healthy ? "true" : "false", s->ready ? "true" : "false");
    for (const char *line = s->not_ready; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        fputs(line == s->not_ready ? "" : ",", f);
        mq_json_strn(f, line, n);
        line += n + (end != NULL);
    }
    fputs("],\"loops\":{", f);
    for (size_t i = 0; i < s->nloops; i++)
        fprintf(f, "%s\"%s\":{\"age_ms\":%" PRId64 "}", i ? "," : "", s->loop_names[i], s->loop_age_ms[i]);
    fprintf(f,
            "},\"messages\":{\"received_per_s\":%s,\"received\":%" PRIu64 ",\"stored\":%" PRIu64
            ",\"unmatched\":%" PRIu64 ",\"rejected\":{\"invalid_topic\":%" PRIu64 ",\"too_large\":%" PRIu64
            ",\"left_with_broker\":%" PRIu64 "},\"pending\":%" PRIu64 ",\"records\":%" PRIu64
            ",\"payload_bytes\":%" PRIu64 ",\"backpressure_answers\":%" PRIu64 "},\"brokers\":[",
            rate, in->received, in->messages - in->unmatched, in->unmatched, in->invalid, in->too_large,
            in->left, in->pending, in->records, in->bytes, in->full);
    for (size_t i = 0; i < s->nbrokers; i++) {
        const struct mq_sup_broker *b = &s->brokers[i];
        fprintf(f, "%s{\"name\":", i ? "," : "");
        mq_json_str(f, b->name);
        fputs(",\"url\":", f);
        mq_json_str(f, b->url);
        fprintf(f,
                ",\"sessions\":%zu,\"connected\":%zu,\"connects\":%" PRIu64 ",\"disconnects\":%" PRIu64
                ",\"messages\":%" PRIu64 ",\"payload_bytes\":%" PRIu64 ",\"paused_ms\":%" PRIu64,
                b->sessions, b->connected, b->connects, b->disconnects, b->messages, b->bytes, b->paused_ms);
        if (b->last_error[0]) { /* why a session is down, as logged */
            fputs(",\"last_error\":", f);
            mq_json_str(f, b->last_error);
        }
        fputc('}', f);
    }
    fputs("],\"mappings\":[", f);
    for (size_t i = 0; i < s->nmappings; i++) {
        fprintf(f, "%s{\"name\":", i ? "," : "");
        mq_json_str(f, s->mappings[i].name);
        fprintf(f, ",\"records\":%" PRIu64 ",\"records_per_s\":%s}", s->mappings[i].records,
                mq_json_rate(rate, sizeof rate, s->mappings[i].per_s));
    }
    fprintf(f, "],\"store\":{\"dir\":");
    mq_json_str(f, mq_store_dir(o->src.store));
    fprintf(f,
            ",\"disk_bytes\":%" PRId64 ",\"free_bytes\":%" PRId64 ",\"durable_lag_records\":%" PRId64
            ",\"fsyncs\":%" PRId64 ",\"flushes\":%" PRIu64 ",\"retention_deleted_segments\":%" PRId64
            ",\"partitions\":%" PRId64 "},\"topics\":[",
            s->log.open_bytes, s->free_bytes, s->log.durable_lag, s->log.fsyncs,
            s->flush.cumulative[MQ_HISTO_N], s->log.retention_deleted_segments, s->npartitions);
    for (size_t t = 0; t < s->ntopics; t++) {
        const struct mq_catalog_topic *ct = &s->topics[t];
        fprintf(f, "%s{\"name\":", t ? "," : "");
        mq_json_str(f, ct->name);
        fprintf(f,
                ",\"partition_count\":%" PRId32 ",\"retention_ms\":%" PRId64 ",\"retention_bytes\":%" PRId64,
                ct->partitions, ct->retention_ms, ct->retention_bytes);
        if (s->parts && s->parts[t]) {
            int64_t bytes = 0, records = 0, oldest = -1;
            fputs(",\"partitions\":[", f);
            for (int32_t p = 0; p < ct->partitions; p++) {
                const struct mq_snap_part *sp = &s->parts[t][p];
                fprintf(f, "%s{\"partition\":%" PRId32, p ? "," : "", p);
                if (sp->ok) {
                    fprintf(f,
                            ",\"start_offset\":%" PRId64 ",\"end_offset\":%" PRId64 ",\"bytes\":%" PRId64
                            ",\"segments\":%" PRId32 ",\"oldest_timestamp_ms\":%" PRId64,
                            sp->st.start_offset, sp->st.end_offset, sp->st.bytes, sp->st.segments,
                            sp->st.oldest_timestamp);
                    bytes += sp->st.bytes;
                    records += sp->st.end_offset - sp->st.start_offset;
                    if (sp->st.oldest_timestamp >= 0 && (oldest < 0 || sp->st.oldest_timestamp < oldest))
                        oldest = sp->st.oldest_timestamp;
                }
                fputc('}', f);
            }
            fprintf(f, "],\"bytes\":%" PRId64 ",\"records\":%" PRId64 ",\"oldest_timestamp_ms\":%" PRId64,
                    bytes, records, oldest);
        }
        fputc('}', f);
    }
    fputs("],\"groups\":[", f);
    for (size_t i = 0; i < s->nlags; i++) {
        fprintf(f, "%s{\"group\":", i ? "," : "");
        mq_json_str(f, s->lags[i].group);
        fputs(",\"topic\":", f);
        mq_json_str(f, s->lags[i].topic);
        fprintf(f, ",\"partition\":%" PRId32 ",\"committed\":%" PRId64 ",\"lag\":%" PRId64 "}",
                s->lags[i].partition, s->lags[i].committed, s->lags[i].lag);
    }
    fputs("],\"kafka\":", f);
    if (s->kafka) {
        fprintf(f,
                "{\"connections\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"refused\":%" PRIu64
                ",\"sent_bytes\":%" PRIu64 ",\"fetch_waiting\":%" PRIu64 ",\"requests\":{",
                s->ks.open, s->ks.accepted, s->ks.refused, s->ks.sent_bytes, s->ks.fetch_waiting);
        for (size_t i = 0; i < s->napis; i++) {
            fputs(i ? "," : "", f);
            mq_json_str(f, s->apis[i].name);
            fprintf(f, ":%" PRIu64, s->apis[i].requests);
        }
        fputs("}}", f);
    } else {
        fputs("null", f);
    }
    fputs(",\"forwarders\":[", f);
    for (size_t i = 0; i < s->nfwds; i++) {
        const struct mq_fwd_stats *fs = &s->fwds[i];
        fprintf(f, "%s{\"name\":", i ? "," : "");
        mq_json_str(f, fs->name);
        fprintf(f, ",\"state\":\"%s\",\"state_text\":", mq_fwd_state_names[fs->state]);
        mq_json_str(f, fs->state_text);
        fprintf(f,
                ",\"records_sent\":%" PRIu64 ",\"bytes_sent\":%" PRIu64 ",\"lag_records\":%" PRId64
                ",\"lag_bytes\":%" PRId64 ",\"lag_seconds\":%.3f}",
                fs->records_sent, fs->bytes_sent, fs->lag_records, fs->lag_bytes, fs->lag_seconds);
    }
    fputs("],\"history\":[", f);
    for (size_t i = 0; i < s->hist_n; i++)
        fprintf(f, "%s{\"t_ms\":%" PRId64 ",\"received\":%" PRIu64 "}", i ? "," : "", s->hist[i].wall_ms,
                s->hist[i].received);
    fputs("]}\n", f);
}

/* ---- the endpoints ---- */

static void mq_obs_answer(void *opaque, const char *path, struct mq_http_resp *resp)
{
    struct mq_observe *o = opaque;
    enum { METRICS, HEALTH, READY, STATUS, OTHER } what = OTHER;
    if (strcmp(path, "/") == 0) {
        resp->status = 200;
        resp->content_type = "text/html; charset=utf-8";
        resp->body = malloc(mq_status_page_len);
        resp->len = resp->body ? mq_status_page_len : 0;
        if (resp->body)
            memcpy(resp->body, mq_status_page, mq_status_page_len);
        else
            resp->status = 500;
        return;
    }
    if (strcmp(path, "/metrics") == 0)
        what = METRICS;
    else if (strcmp(path, "/healthz") == 0)
        what = HEALTH;
    else if (strcmp(path, "/readyz") == 0)
        what = READY;
    else if (strcmp(path, "/status.json") == 0)
        what = STATUS;
    FILE *f = open_memstream(&resp->body, &resp->len);
    if (!f) {
        resp->status = 500;
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
    if (what == OTHER) {
        resp->status = 404;
        fputs("not found: mqlogd serves /, /metrics, /healthz, /readyz and /status.json\n", f);
    } else {
        struct mq_snap s;
        if (what == HEALTH)
            mq_snap_health(o, &s);
        else
            mq_snap_take(o, &s, what == METRICS || what == STATUS);
        if (what == METRICS) {
            resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
            mq_obs_metrics(o, &s, f);
        } else if (what == STATUS) {
            resp->content_type = "application/json";
            mq_obs_status(o, &s, f);
        } else if (what == HEALTH) {
            resp->status = s.healthy ? 200 : 503;
            if (s.healthy)
                fputs("ok\n", f);
            for (size_t i = 0; i < s.nloops; i++)
                if (s.loop_age_ms[i] > MQ_OBS_STALE_MS)
                    fprintf(f, "stale: the %s loop last turned %.1f s ago\n", s.loop_names[i],
                            (double)s.loop_age_ms[i] / 1000.0);
        } else {
            resp->status = s.ready ? 200 : 503;
            fputs(s.ready ? "ready\n" : s.not_ready, f);
        }
        mq_snap_free(&s);
    }
    if (fclose(f) != 0) {
        free(resp->body);
        resp->body = NULL;
        resp->len = 0;
        resp->status = 500;
    }
}

static void mq_obs_rate_sample_free(struct mq_obs_rate_sample *rs)
{
    for (size_t i = 0; i < rs->nmaps; i++)
        free(rs->maps[i].name);
    free(rs->maps);
}

enum mq_err mq_observe_start(const char *host, int port, const struct mq_observe_src *src,
                             struct mq_observe **out, char *errstr, size_t errstr_size)
{
    struct mq_observe *o = calloc(1, sizeof *o);
    if (!o)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    o->src = *src;
    o->start_wall_ms = mq_now_ms();
    pthread_mutex_init(&o->hist_mu, NULL);
    mq_observe_tick(o);
    enum mq_err err = mq_http_start(host, port, mq_obs_answer, o, &o->http, errstr, errstr_size);
    if (err != MQ_OK) {
        mq_obs_rate_sample_free(&o->rate_new);
        pthread_mutex_destroy(&o->hist_mu);
        free(o);
        return err;
    }
    *out = o;
    return MQ_OK;
}

int mq_observe_port(const struct mq_observe *o)
{
    return mq_http_port(o->http);
}

void mq_observe_stop(struct mq_observe *o)
{
    if (!o)
        return;
    mq_http_stop(o->http);
    mq_obs_rate_sample_free(&o->rate_old);
    mq_obs_rate_sample_free(&o->rate_new);
    pthread_mutex_destroy(&o->hist_mu);
    free(o);
}

void mq_observe_tick(struct mq_observe *o)
{
    if (!o)
        return;
    int64_t now = mq_mono_ms();
    if (o->hist_n > 0 && now - o->hist_last_mono < 1000)
        return;
    struct mq_ingest_stats st;
    mq_ingest_stats(o->src.ingest, &st);
    struct mq_obs_rate_sample rs = {0};
    bool rate_due = now - o->rate_new.mono >= MQ_OBS_RATE_MS || !o->rate_new.mono;
    if (rate_due) {
        /* the counters of the mappings, as a snapshot lists them (same-named mappings summed) */
        struct mq_snap tmp;
        memset(&tmp, 0, sizeof tmp);
        mq_ingest_mapping_stats(o->src.ingest, mq_snap_mapping, &tmp);
        rs.mono = now;
        rs.received = st.received;
        rs.maps = calloc(tmp.nmappings ? tmp.nmappings : 1, sizeof *rs.maps);
        for (size_t i = 0; rs.maps && i < tmp.nmappings; i++)
            rs.maps[rs.nmaps++] = (struct mq_obs_map_count){tmp.mappings[i].name, tmp.mappings[i].records};
        if (!rs.maps)
            for (size_t i = 0; i < tmp.nmappings; i++)
                free(tmp.mappings[i].name);
        free(tmp.mappings);
    }
    pthread_mutex_lock(&o->hist_mu);
    struct mq_obs_rate_sample gone = {0};
    if (rate_due) {
        gone = o->rate_old;
        o->rate_old = o->rate_new;
        o->rate_new = rs;
    }
    o->hist[o->hist_next] = (struct mq_obs_sample){mq_now_ms(), st.received};
    o->hist_next = (o->hist_next + 1) % MQ_OBS_HISTORY;
    if (o->hist_n < MQ_OBS_HISTORY)
        o->hist_n++;
    o->hist_last_mono = now;
    pthread_mutex_unlock(&o->hist_mu);
    mq_obs_rate_sample_free(&gone);
}
