/*
 * topics.c - the topic map: the log topics ingest writes to, and what changes them besides a message.
 *
 * The map is open addressing with linear probing, at most half full; the hot path (ingest.c) probes it
 * without a lock, everything here runs under map_mu. A topic's first message takes the slow path here:
 * create the topic in the store, check it against the routes of the current generation (codec, recompaction
 * delay, retention, partition count), open a partition. The same check runs for every topic in use when new
 * routes are installed (a reload), and a topic alter (more partitions) or delete beside the running daemon
 * (the control socket) changes the topic's partition set here: a new copy is published and the old one
 * retired, never freed while a reader may hold it.
 *
 * Topic and partition counts: a topic that already exists with another partition count than its mapping
 * says (the mapping was edited) keeps its count: Kafka's partitioner is applied with the topic's real count,
 * so keys still land where Kafka would put them, and a warning says so once.
 */
#include "ingest/ingest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route.h"
#include "store/store.h"
#include "util/diag.h"

/* ---- the topic map ---- */

struct mq_tmap *mq_tmap_new(size_t cap)
{
    struct mq_tmap *m = calloc(1, sizeof *m + cap * sizeof m->slot[0]);
    if (m)
        m->cap = cap;
    return m;
}

static void mq_tmap_put(struct mq_tmap *m, struct mq_itopic *t)
{
    size_t i = t->hash & (m->cap - 1);
    while (atomic_load_explicit(&m->slot[i], memory_order_relaxed))
        i = (i + 1) & (m->cap - 1);
    atomic_store_explicit(&m->slot[i], t, memory_order_release);
    m->n++;
}

static struct mq_iparts *mq_iparts_new(int32_t n)
{
    struct mq_iparts *ps = calloc(1, sizeof *ps + (size_t)n * sizeof ps->p[0]);
    if (ps)
        ps->n = n;
    return ps;
}

static void mq_itopic_free(struct mq_itopic *t)
{
    if (!t)
        return;
    for (struct mq_iparts *ps = atomic_load(&t->parts), *next; ps; ps = next) {
        next = ps->retired;
        free(ps);
    }
    free(t->sample_topic);
    free(t->sample_broker);
    free(t);
}

/* Adds t to the map, growing it first when it would become more than half full (under map_mu). */
static enum mq_err mq_ingest_map_add(struct mq_ingest *in, struct mq_itopic *t)
{
    struct mq_tmap *m = atomic_load(&in->map);
    if ((m->n + 1) * 2 > m->cap) {
        struct mq_tmap *bigger = mq_tmap_new(m->cap * 2);
        if (!bigger)
            return MQ_ERR_NOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            struct mq_itopic *old = atomic_load_explicit(&m->slot[i], memory_order_relaxed);
            if (old)
                mq_tmap_put(bigger, old);
        }
        bigger->retired = m;
        atomic_store(&in->map, bigger);
        m = bigger;
    }
    mq_tmap_put(m, t);
    return MQ_OK;
}

void mq_tmap_free(struct mq_tmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        mq_itopic_free(atomic_load(&m->slot[i]));
    while (m) {
        struct mq_tmap *next = m->retired;
        free(m);
        m = next;
    }
}

/* ---- the slow path ---- */

/*
 * The slow path of a topic: creates it in the store when missing (with the hit's partition count and
 * retention), brings its catalog retention in line with the routes, and adds it to the map. Under map_mu.
 */
enum mq_err mq_ingest_topic_open(struct mq_ingest *in, const char *name, uint64_t hash, int32_t partitions,
                                 const struct mq_retention *ret, const char *mqtt_topic,
                                 size_t mqtt_topic_len, const char *broker, struct mq_itopic **tp)
{
    struct mq_itopic *t = mq_tmap_find(atomic_load(&in->map), name, hash);
    if (t && !t->gone) {
        *tp = t;
        return MQ_OK;
    }
    char why[256] = "";
    struct mq_catalog_topic ct;
    enum mq_err err = mq_store_topic_get(in->store, name, &ct);
    if (err == MQ_ERR_NOENT) {
        err = mq_store_topic_create(in->store, name, partitions, ret, why, sizeof why);
        if (err == MQ_OK) {
            MQ_INFO("created log topic %s with %d partition%s", name, (int)partitions,
                    partitions == 1 ? "" : "s");
            atomic_fetch_add_explicit(&in->topics, 1, memory_order_relaxed);
        }
        if (err == MQ_OK || err == MQ_ERR_EXISTS)
            err = mq_store_topic_get(in->store, name, &ct);
    }
    if (err != MQ_OK) {
        if (mq_ingest_log_due(in))
            MQ_ERROR("cannot create log topic %s: %s", name, why[0] ? why : mq_strerror(err));
        return err;
    }
    if (t) {
        /* deleted and now made again: a fresh set of partitions (the map keeps its entry) */
        struct mq_iparts *fresh = mq_iparts_new(ct.partitions);
        if (!fresh)
            return MQ_ERR_NOMEM;
        fresh->retired = atomic_load(&t->parts);
        atomic_store_explicit(&t->parts, fresh, memory_order_release);
        t->gone = false;
        *tp = t;
        return MQ_OK;
    }
    size_t len = strlen(name);
    t = calloc(1, sizeof *t + len + 1);
    struct mq_iparts *ps = t ? mq_iparts_new(ct.partitions) : NULL;
    if (t)
        atomic_init(&t->parts, ps);
    if (!ps || !(t->sample_topic = strndup(mqtt_topic, mqtt_topic_len)) ||
        (broker && !(t->sample_broker = strdup(broker)))) {
        mq_itopic_free(t);
        return MQ_ERR_NOMEM;
    }
    memcpy(t->name, name, len + 1);
    t->hash = hash;
    /* generation 0 is never handed out: the first message checks retention and partitions */
    atomic_init(&t->checked_gen, 0);
    atomic_init(&t->rr, 0);
    err = mq_ingest_map_add(in, t);
    if (err != MQ_OK) {
        mq_itopic_free(t);
        return err;
    }
    *tp = t;
    return MQ_OK;
}

/*
 * Brings t in line with the routes of generation gen (under map_mu): its partitions' codec and
 * recompaction delay, the catalog's
 * retention, and the partition count when the mapping asks for more (never fewer: a partition is never
 * taken away, and a reload asking for fewer is refused before it gets here, see mq_ingest_routes_check()).
 */
enum mq_err mq_ingest_topic_sync(struct mq_ingest *in, struct mq_itopic *t, unsigned gen,
                                 const struct mq_retention *ret, const struct mq_ingest_policy *pol,
                                 int32_t partitions)
{
    if (atomic_load(&t->checked_gen) == gen)
        return MQ_OK;
    int codec = pol->codec;
    if (t->recompact_after != pol->recompact_after_ms) {
        t->recompact_after = pol->recompact_after_ms;
        struct mq_iparts *cur = atomic_load(&t->parts);
        for (int32_t p = 0; p < cur->n; p++) {
            struct mq_part *part = atomic_load(&cur->p[p]);
            if (part)
                mq_part_set_recompact_after(part, t->recompact_after);
        }
    }
    if (t->codec != codec) {
        t->codec = codec;
        struct mq_iparts *cur = atomic_load(&t->parts);
        for (int32_t p = 0; p < cur->n; p++) {
            struct mq_part *part = atomic_load(&cur->p[p]);
            if (part)
                mq_part_set_compression(part, codec);
        }
    }
    struct mq_catalog_topic ct;
    enum mq_err err = mq_store_topic_get(in->store, t->name, &ct);
    if (err == MQ_OK && (ct.retention_ms != ret->ms || ct.retention_bytes != ret->bytes)) {
        err = mq_store_topic_set_retention(in->store, t->name, ret);
        if (err == MQ_OK)
            MQ_NOTICE(
                "log topic %s: retention set to %lld ms, %lld bytes per partition (was %lld ms, %lld bytes)",
                t->name, (long long)ret->ms, (long long)ret->bytes, (long long)ct.retention_ms,
                (long long)ct.retention_bytes);
    }
    if (err != MQ_OK) {
        MQ_ERROR("log topic %s: cannot update its retention: %s", t->name, mq_strerror(err));
        return err;
    }
    struct mq_iparts *ps = atomic_load(&t->parts);
    if (partitions > ps->n) {
        char why[256] = "";
        struct mq_iparts *bigger = mq_iparts_new(partitions);
        err = bigger ? mq_store_topic_grow(in->store, t->name, partitions, why, sizeof why) : MQ_ERR_NOMEM;
        if (err != MQ_OK) {
            free(bigger);
            MQ_ERROR("log topic %s: cannot add partitions (%d -> %d): %s", t->name, (int)ps->n,
                     (int)partitions, why[0] ? why : mq_strerror(err));
            return err;
        }
        for (int32_t p = 0; p < ps->n; p++)
            atomic_init(&bigger->p[p], atomic_load(&ps->p[p]));
        bigger->retired = ps;
        atomic_store_explicit(&t->parts, bigger, memory_order_release);
        MQ_NOTICE("log topic %s: partitions raised from %d to %d, as its mapping says (keyed records of new "
                  "messages may go to other partitions than before)",
                  t->name, (int)ps->n, (int)partitions);
    } else if (partitions < ps->n) {
        MQ_WARN("log topic %s has %d partitions, its mapping says %d: keeping %d (a partition is never taken "
                "away; records go where Kafka's partitioner puts them for %d)",
                t->name, (int)ps->n, (int)partitions, (int)ps->n, (int)ps->n);
    }
    atomic_store(&t->checked_gen, gen);
    return MQ_OK;
}

/* Opens partition p of t (under map_mu). */
enum mq_err mq_ingest_part_open(struct mq_ingest *in, struct mq_itopic *t, int32_t p, struct mq_part **partp)
{
    struct mq_iparts *ps = atomic_load(&t->parts); /* the current one */
    if (p >= ps->n) /* a copy made by a delete and a new create may have fewer partitions than the caller's */
        return MQ_ERR_NOENT;
    struct mq_part *part = atomic_load(&ps->p[p]);
    if (part) {
        *partp = part;
        return MQ_OK;
    }
    enum mq_err err = mq_store_part(in->store, t->name, p, &part);
    if (err != MQ_OK) {
        if (mq_ingest_log_due(in))
            MQ_ERROR("cannot open partition %d of log topic %s: %s", (int)p, t->name, mq_strerror(err));
        return err;
    }
    mq_part_set_compression(part, t->codec); /* before any record can reach it */
    mq_part_set_recompact_after(part, t->recompact_after);
    atomic_store(&ps->p[p], part);
    *partp = part;
    return MQ_OK;
}

/* ---- reloads, alter and delete ---- */

/* Where a topic's sample MQTT topic goes under some routes: the hit naming that topic. */
struct mq_ingest_probe {
    const struct mq_itopic *t;
    bool found;
    int mapping;
    int32_t partitions;
};

static enum mq_err mq_ingest_probe_hit(void *opaque, const struct mq_route_hit *hit)
{
    struct mq_ingest_probe *pr = opaque;
    if (!pr->found && strcmp(hit->topic, pr->t->name) == 0) {
        pr->found = true;
        pr->mapping = hit->mapping;
        pr->partitions = hit->partitions;
    }
    return MQ_OK;
}

static bool mq_ingest_probe(const struct mq_ingest_routes *routes, const struct mq_itopic *t,
                            struct mq_ingest_probe *pr)
{
    *pr = (struct mq_ingest_probe){.t = t, .mapping = -1};
    (void)mq_route_match(routes->table, t->sample_broker, t->sample_topic, strlen(t->sample_topic), NULL, 0,
                         mq_ingest_probe_hit, pr, NULL);
    return pr->found;
}

bool mq_ingest_topic_mapping(struct mq_ingest *in, const char *name, char *where, size_t where_size)
{
    pthread_mutex_lock(&in->map_mu);
    struct mq_itopic *t = mq_tmap_find(atomic_load(&in->map), name, mq_hash(name));
    bool known = t && !t->gone;
    pthread_mutex_unlock(&in->map_mu);
    if (!known) /* an itopic, once in the map, lives as long as ingest: t stays valid */
        return false;
    /* the read side of the routes, as a message takes it (see the top of the file) */
    unsigned e = atomic_load(&in->epoch) & 1;
    atomic_fetch_add(&in->readers[e].v, 1);
    struct mq_ingest_routes *routes = atomic_load(&in->routes);
    struct mq_ingest_probe pr;
    bool found = mq_ingest_probe(routes, t, &pr) && pr.mapping >= 0 && (size_t)pr.mapping < routes->nrets;
    if (found)
        snprintf(where, where_size, "%s",
                 routes->locs[pr.mapping] ? routes->locs[pr.mapping] : "its configuration");
    atomic_fetch_sub(&in->readers[e].v, 1);
    return found;
}

int mq_ingest_topic_codec(struct mq_ingest *in, const char *name)
{
    pthread_mutex_lock(&in->map_mu);
    struct mq_itopic *t = mq_tmap_find(atomic_load(&in->map), name, mq_hash(name));
    bool known = t && !t->gone;
    pthread_mutex_unlock(&in->map_mu);
    unsigned e =
        atomic_load(&in->epoch) & 1; /* the read side of the routes, as in mq_ingest_topic_mapping() */
    atomic_fetch_add(&in->readers[e].v, 1);
    struct mq_ingest_routes *routes = atomic_load(&in->routes);
    struct mq_ingest_probe pr;
    int codec = -1;
    if (known && mq_ingest_probe(routes, t, &pr))
        codec = pr.mapping >= 0 && (size_t)pr.mapping < routes->nrets ? routes->pols[pr.mapping].codec
                                                                      : routes->unmatched_pol.codec;
    else {
        /* a topic not written since the start: only a codec all mappings share says which it gets */
        codec = routes->unmatched_pol.codec;
        for (size_t i = 0; i < routes->nrets && codec >= 0; i++)
            if (routes->pols[i].codec != codec)
                codec = -1;
    }
    atomic_fetch_sub(&in->readers[e].v, 1);
    return codec;
}

enum mq_err mq_ingest_routes_check(struct mq_ingest *in, const struct mq_ingest_routes *routes, int *mapping,
                                   char *why, size_t why_size)
{
    struct mq_ingest_routes *cur = atomic_load(&in->routes);
    pthread_mutex_lock(&in->map_mu);
    struct mq_tmap *m = atomic_load(&in->map);
    enum mq_err err = MQ_OK;
    for (size_t i = 0; i < m->cap && err == MQ_OK; i++) {
        struct mq_itopic *t = atomic_load(&m->slot[i]);
        struct mq_ingest_probe now, next;
        if (!t || !mq_ingest_probe(cur, t, &now) || !mq_ingest_probe(routes, t, &next) || next.mapping < 0 ||
            next.partitions >= now.partitions)
            continue;
        *mapping = next.mapping;
        err = mq_errf(MQ_ERR_INVAL, why, why_size,
                      "it gives log topic %s %d partitions, fewer than the %d it has: a partition count only "
                      "grows, as in Kafka",
                      t->name, (int)next.partitions, (int)atomic_load(&t->parts)->n);
    }
    pthread_mutex_unlock(&in->map_mu);
    return err;
}

void mq_ingest_topics_sync(struct mq_ingest *in, const struct mq_ingest_routes *routes)
{
    pthread_mutex_lock(&in->map_mu);
    struct mq_tmap *m = atomic_load(&in->map);
    for (size_t i = 0; i < m->cap; i++) {
        struct mq_itopic *t = atomic_load(&m->slot[i]);
        struct mq_ingest_probe pr;
        if (!t || !mq_ingest_probe(routes, t, &pr))
            continue;
        bool mapped = pr.mapping >= 0 && (size_t)pr.mapping < routes->nrets;
        const struct mq_retention *ret = mapped ? &routes->rets[pr.mapping] : &routes->unmatched_ret;
        const struct mq_ingest_policy *pol = mapped ? &routes->pols[pr.mapping] : &routes->unmatched_pol;
        (void)mq_ingest_topic_sync(in, t, routes->gen, ret, pol, pr.partitions); /* logs its errors */
    }
    pthread_mutex_unlock(&in->map_mu);
}

void mq_ingest_topic_refresh(struct mq_ingest *in, const char *name)
{
    pthread_mutex_lock(&in->map_mu);
    struct mq_itopic *t = mq_tmap_find(atomic_load(&in->map), name, mq_hash(name));
    struct mq_catalog_topic ct;
    struct mq_iparts *ps = t ? atomic_load(&t->parts) : NULL;
    if (ps && mq_store_topic_get(in->store, name, &ct) == MQ_OK && ct.partitions > ps->n) {
        /* as mq_ingest_topic_sync() raises it: a bigger copy, the old one retired */
        struct mq_iparts *bigger = mq_iparts_new(ct.partitions);
        if (bigger) {
            for (int32_t p = 0; p < ps->n; p++)
                atomic_init(&bigger->p[p], atomic_load(&ps->p[p]));
            bigger->retired = ps;
            atomic_store_explicit(&t->parts, bigger, memory_order_release);
            MQ_NOTICE("log topic %s: ingest now writes to its %d partitions (was %d)", name,
                      (int)ct.partitions, (int)ps->n);
        } else {
            MQ_ERROR("log topic %s: out of memory: ingest keeps writing to %d partitions until a restart",
                     name, (int)ps->n);
        }
    }
    pthread_mutex_unlock(&in->map_mu);
}

enum mq_err mq_ingest_topic_delete(struct mq_ingest *in, const char *name)
{
    pthread_mutex_lock(&in->map_mu);
    enum mq_err err = mq_store_topic_delete(in->store, name);
    struct mq_itopic *t = err == MQ_OK ? mq_tmap_find(atomic_load(&in->map), name, mq_hash(name)) : NULL;
    if (t && !t->gone) {
        /* Empty partitions of the same count, so that a reader of the old copy's count stays in bounds; the
         * old partitions are retired by the log. checked_gen 0 sends the next message down the slow path. */
        struct mq_iparts *ps = atomic_load(&t->parts), *fresh = mq_iparts_new(ps->n);
        if (fresh) {
            fresh->retired = ps;
            atomic_store_explicit(&t->parts, fresh, memory_order_release);
        } else {
            for (int32_t p = 0; p < ps->n; p++)
                atomic_store(&ps->p[p], NULL);
        }
        t->gone = true;
        atomic_store(&t->checked_gen, 0);
    }
    pthread_mutex_unlock(&in->map_mu);
    return err;
}
