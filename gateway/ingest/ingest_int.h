/*
 * ingest_int.h - the ingest layer's internals, shared by the files of gateway/ingest/ only.
 *
 * Files: ingest.c (the routes, the hot path of a message, the route swap, the lifecycle and counters),
 * topics.c (the topic map: the log topics in use, their slow path, and what a reload, a topic alter or a
 * topic delete changes in them), session.c (a broker session's redelivery guard).
 *
 * The structures are here because both sides touch them: the hot path probes the topic map without a lock
 * (mq_tmap_find() is inline for it), the slow path fills it under map_mu.
 */
#ifndef MQ_INGEST_INT_H
#define MQ_INGEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ingest/ingest.h"

struct mq_ingest_routes {
    struct mq_route_table *table;
    struct mq_retention *rets;     /* per mapping */
    struct mq_ingest_policy *pols; /* per mapping */
    size_t nrets;
    struct mq_retention unmatched_ret;
    struct mq_ingest_policy unmatched_pol;
    unsigned gen; /* set when installed: which routes generation a topic's retention was checked against */
    /* per mapping (nrets): its name for the metrics (the to template; NULL: unnamed) and the records it
     * stored, carried over to the mapping of the same name when the routes are replaced */
    char **names;
    _Atomic uint64_t *records;
    char **locs; /* per mapping (nrets): "FILE:LINE:COL" of its definition (NULL: unknown) */
};

/* The partitions of a log topic in use, filled as they are first produced to. When the routes give the topic
 * more partitions, a bigger copy replaces it (readers load the pointer once per message); the old one stays
 * on the retired list until mq_ingest_free(), as a reader may still hold it. */
struct mq_iparts {
    struct mq_iparts *retired;
    int32_t n; /* the topic's real partition count (catalog) */
    _Atomic(struct mq_part *) p[];
};

/* A log topic in use. */
struct mq_itopic {
    uint64_t hash;
    atomic_uint checked_gen; /* routes generation whose settings this topic was checked against */
    int codec;               /* what its partitions compress with (under map_mu) */
    int64_t recompact_after; /* and when their closed segments are recompacted (under map_mu) */
    _Atomic(struct mq_iparts *) parts;
    atomic_uint rr; /* round-robin of null keys when the topic has another partition count than its mapping */
    bool gone; /* deleted (mq_ingest_topic_delete()): the next slow path creates it again (under map_mu) */
    char *sample_topic; /* an MQTT topic routed to it, and its broker: at a reload the new routes are asked */
    char *sample_broker; /* where that topic goes now, so the topic's settings change at once (may be NULL) */
    char name[];
};

/* The topic map: open addressing, linear probing, at most half full. Readers probe it without a lock; the
 * writer (under map_mu) fills empty slots or publishes a bigger copy. Old maps stay until mq_ingest_free()
 * because a reader may still be probing one (they add up to less than the current one). */
struct mq_tmap {
    struct mq_tmap *retired; /* the map this one replaced */
    size_t cap;              /* a power of two */
    size_t n;
    _Atomic(struct mq_itopic *) slot[];
};

/* A counter on a cache line of its own, so that threads counting in different ones do not share a line. */
struct mq_padded_counter {
    atomic_long v;
    char pad[64 - sizeof(atomic_long)];
};

struct mq_ingest {
    struct mq_store *store;

    _Atomic(struct mq_ingest_routes *) routes;
    atomic_uint epoch;
    struct mq_padded_counter readers[2];
    unsigned gen; /* last routes generation handed out (swapper only) */

    pthread_mutex_t map_mu; /* topic creation, partition opening, map growth */
    _Atomic(struct mq_tmap *) map;

    atomic_uint_fast64_t messages, records, bytes, unmatched, invalid, too_large, full, topics, redelivered;
    atomic_uint_fast64_t received, pending, left; /* the connectors' side (mq_ingest_received()) */

    pthread_mutex_t
        sess_mu; /* the redelivery guards (session.h), shared by a session's connector instances */
    struct mq_ingest_sess {
        struct mq_rx_session *s;
        struct mq_ingest_sess *next;
    } * sessions;
    atomic_int_fast64_t last_log_ms; /* rate limit of repeated warnings */
};

/* ---- the topic map (topics.c) ---- */

static inline uint64_t mq_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static inline struct mq_itopic *mq_tmap_find(struct mq_tmap *m, const char *name, uint64_t hash)
{
    for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct mq_itopic *t = atomic_load_explicit(&m->slot[i], memory_order_acquire);
        if (!t)
            return NULL;
        if (t->hash == hash && strcmp(t->name, name) == 0)
            return t;
    }
}

/* A map of cap slots (a power of two), empty; NULL when out of memory. */
struct mq_tmap *mq_tmap_new(size_t cap);
/* Frees m, every topic in it and the maps it retired (at mq_ingest_free(), with no reader left). */
void mq_tmap_free(struct mq_tmap *m);
/*
 * The slow path of a topic: creates it in the store when missing (with the hit's partition count and
 * retention), brings its catalog retention in line with the routes, and adds it to the map. Under map_mu.
 */
enum mq_err mq_ingest_topic_open(struct mq_ingest *in, const char *name, uint64_t hash, int32_t partitions,
                                 const struct mq_retention *ret, const char *mqtt_topic,
                                 size_t mqtt_topic_len, const char *broker, struct mq_itopic **tp);
/*
 * Brings t in line with the routes of generation gen (under map_mu): its partitions' codec and
 * recompaction delay, the catalog's
 * retention, and the partition count when the mapping asks for more (never fewer: a partition is never
 * taken away, and a reload asking for fewer is refused before it gets here, see mq_ingest_routes_check()).
 */
enum mq_err mq_ingest_topic_sync(struct mq_ingest *in, struct mq_itopic *t, unsigned gen,
                                 const struct mq_retention *ret, const struct mq_ingest_policy *pol,
                                 int32_t partitions);
/* Opens partition p of t (under map_mu). */
enum mq_err mq_ingest_part_open(struct mq_ingest *in, struct mq_itopic *t, int32_t p, struct mq_part **partp);
/* Brings every topic in use in line with routes, just installed (the end of mq_ingest_set_routes()). */
void mq_ingest_topics_sync(struct mq_ingest *in, const struct mq_ingest_routes *routes);

/* ---- ingest.c ---- */

/* Logs at most one line per MQ_INGEST_LOG_EVERY_MS for repeated conditions (full store, bad topics). */
bool mq_ingest_log_due(struct mq_ingest *in);

#endif
