/*
 * ingest.c - routes each message a connector hands over and produces its records into the log.
 *
 * The hot path (a message to a topic already in use) takes no lock of its own, makes no catalog query and
 * allocates nothing: the route table is read under an epoch counter (below), the log topics in use sit in an
 * open-addressing hash map that readers probe without locking, and the partitions each topic has opened are
 * atomic pointers. Only the first message to a topic or partition takes the slow path, under one mutex:
 * create the topic in the store (catalog + directories), open the partition, publish both.
 *
 * Backpressure without duplicates: a message that matches several log topics is stored in all or in none.
 * The hits are collected first, every partition is asked whether it takes data (mq_part_can_produce), and
 * only then is anything produced. Another thread can fill a partition between the check and the produce;
 * then the remaining records wait for room (a short, bounded wait) rather than leave the message half stored.
 *
 * Route table swap (SIGHUP), an RCU of two counters: a reader adds itself to readers[epoch & 1] before it
 * loads the routes pointer and leaves that counter when done. The swapper publishes the new pointer, then
 * twice flips the epoch and waits for the counter of the previous parity to drain. A reader that could still
 * see the old pointer counted itself before the publication, in one of the two counters, so after both
 * drains none is left; after a flip only readers that read the epoch before it join the drained counter,
 * so the wait ends even under constant traffic.
 *
 * The topic map and its slow path (a topic's first message, reloads, topic alter and delete) are topics.c;
 * what both files share is ingest_int.h.
 */
#include "ingest/ingest_int.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "ingest/session.h"
#include "route/placement.h"
#include "route/route.h"
#include "store/store.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_INGEST_HITS_STACK   16   /* hits kept on the stack; more are rare (a message in many topics) */
#define MQ_INGEST_KEYBUF       1024 /* key bytes copied on the stack; longer keys are allocated */
#define MQ_INGEST_HEADERS      16   /* headers on the stack: ours plus the connector's */
#define MQ_INGEST_RACE_WAIT_MS 5000 /* how long a half-produced message waits for room (see above) */
#define MQ_INGEST_LOG_EVERY_MS 10000
/* The largest record the log stores: one alone in a batch (mq_record_encoded_size() counts the widest
 * deltas, so this errs by a few bytes on the safe side). */
#define MQ_INGEST_RECORD_MAX (MQ_BATCH_MAX_SIZE - MQ_BATCH_HEADER_SIZE)

/* ---- routes ---- */

enum mq_err mq_ingest_routes_from_table(struct mq_route_table *table, const struct mq_retention *rets,
                                        size_t nrets, const struct mq_retention *unmatched_ret,
                                        struct mq_ingest_routes **out)
{
    size_t n = mq_route_count(table);
    if (rets && nrets != n)
        return MQ_ERR_INVAL;
    struct mq_ingest_routes *r = calloc(1, sizeof *r);
    if (!r)
        return MQ_ERR_NOMEM;
    r->rets = calloc(n ? n : 1, sizeof *r->rets);
    r->pols = calloc(n ? n : 1, sizeof *r->pols);
    r->names = calloc(n ? n : 1, sizeof *r->names);
    r->records = calloc(n ? n : 1, sizeof *r->records);
    r->locs = calloc(n ? n : 1, sizeof *r->locs);
    if (!r->rets || !r->pols || !r->names || !r->records || !r->locs) {
        free(r->rets);
        free(r->pols);
        free(r->names);
        free(r->records);
        free(r->locs);
        free(r);
        return MQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        r->rets[i] = rets ? rets[i] : (struct mq_retention){.ms = MQ_RETENTION_MS_DEFAULT, .bytes = 0};
        r->pols[i] = MQ_INGEST_POLICY_DEFAULT;
    }
    r->unmatched_pol = MQ_INGEST_POLICY_DEFAULT;
    r->nrets = n;
    r->unmatched_ret =
        unmatched_ret ? *unmatched_ret : (struct mq_retention){.ms = MQ_RETENTION_MS_DEFAULT, .bytes = 0};
    r->table = table;
    *out = r;
    return MQ_OK;
}

enum mq_err mq_ingest_routes_new(const struct mq_config *cfg, struct mq_ingest_routes **out, char *errstr,
                                 size_t errstr_size)
{
    struct mq_route_table *table = NULL;
    enum mq_err err = mq_config_route_table(cfg, &table, errstr, errstr_size);
    if (err != MQ_OK)
        return err;
    struct mq_retention *rets = calloc(cfg->nmappings ? cfg->nmappings : 1, sizeof *rets);
    if (!rets) {
        mq_route_table_free(table);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    for (size_t i = 0; i < cfg->nmappings; i++)
        mq_config_mapping_retention(cfg, &cfg->mappings[i], &rets[i].ms, &rets[i].bytes);
    struct mq_retention um = {.ms = cfg->log.retention_ms, .bytes = cfg->log.retention_bytes};
    err = mq_ingest_routes_from_table(table, rets, cfg->nmappings, &um, out);
    free(rets);
    if (err != MQ_OK) {
        mq_route_table_free(table);
        return mq_errf(err, errstr, errstr_size, "route table: %s", mq_strerror(err));
    }
    for (size_t i = 0; i < cfg->nmappings; i++) {
        const struct mq_config_mapping *m = &cfg->mappings[i];
        (*out)->pols[i] = (struct mq_ingest_policy){
            .codec = mq_config_mapping_compression(cfg, m),
            .recompact_after_ms = mq_config_mapping_recompact_after(cfg, m),
            .headers = m->headers,
            .omit_defaults = m->omit_default_headers != 0,
            .qos_default = (char)('0' + m->qos),
            .broker_implied = m->broker != NULL || cfg->nbrokers == 1,
        };
        bool nomem = m->to && !((*out)->names[i] = strdup(m->to));
        if (!nomem && m->loc.file &&
            asprintf(&(*out)->locs[i], "%s:%d:%d", m->loc.file, m->loc.line, m->loc.col) < 0) {
            (*out)->locs[i] = NULL; /* undefined after a failure */
            nomem = true;
        }
        if (nomem) {
            mq_ingest_routes_free(*out);
            *out = NULL;
            return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        }
    }
    (*out)->unmatched_pol.codec = cfg->log.compression; /* and every header: nothing is known about it */
    (*out)->unmatched_pol.recompact_after_ms = cfg->log.recompact_after_ms;
    return MQ_OK;
}

void mq_ingest_routes_set_policy(struct mq_ingest_routes *routes, int mapping,
                                 const struct mq_ingest_policy *pol)
{
    if (mapping < 0)
        routes->unmatched_pol = *pol;
    else if ((size_t)mapping < routes->nrets)
        routes->pols[mapping] = *pol;
}

struct mq_route_table *mq_ingest_routes_table(const struct mq_ingest_routes *routes)
{
    return routes->table;
}

void mq_ingest_routes_free(struct mq_ingest_routes *routes)
{
    if (!routes)
        return;
    mq_route_table_free(routes->table);
    for (size_t i = 0; i < routes->nrets; i++) {
        free(routes->names[i]);
        free(routes->locs[i]);
    }
    free(routes->names);
    free(routes->locs);
    free(routes->records);
    free(routes->rets);
    free(routes->pols);
    free(routes);
}

/* ---- the hot path ---- */

/* Logs at most one line per MQ_INGEST_LOG_EVERY_MS for repeated conditions (full store, bad topics). */
bool mq_ingest_log_due(struct mq_ingest *in)
{
    int64_t now = mq_mono_ms();
    int64_t last = atomic_load_explicit(&in->last_log_ms, memory_order_relaxed);
    return now - last >= MQ_INGEST_LOG_EVERY_MS &&
           atomic_compare_exchange_strong(&in->last_log_ms, &last, now);
}

struct mq_ingest_hit {
    struct mq_part *part;
    int mapping;     /* the route hit's: -1 for the unmatched topic */
    const void *key; /* NULL: null key */
    size_t key_len;
    const struct mq_ingest_policy *pol; /* the mapping's: which headers the record keeps */
};

/* What mq_route_match's callback collects for one message. */
struct mq_ingest_collect {
    struct mq_ingest *in;
    const struct mq_ingest_routes *routes;
    struct mq_ingest_hit stack[MQ_INGEST_HITS_STACK];
    struct mq_ingest_hit *hits;
    size_t n, cap;
    unsigned char keybuf[MQ_INGEST_KEYBUF];
    size_t keyused;
    void **heap; /* keys that did not fit keybuf */
    size_t nheap;
    const char *mqtt_topic; /* the message's topic and broker, kept by new topics as their sample */
    size_t mqtt_topic_len;
    const char *broker;
    bool called;       /* the route table accepted the topic and called back */
    bool to_unmatched; /* ...for the unmatched topic */
    size_t too_large;  /* MQ_ERR_RANGE from mq_ingest_store(): the record's size */
};

static void mq_collect_release(struct mq_ingest_collect *c)
{
    for (size_t i = 0; i < c->nheap; i++)
        free(c->heap[i]);
    free(c->heap);
    if (c->hits != c->stack)
        free(c->hits);
}

/* Keeps a copy of the key: the hit's key may point into a buffer that lives only during the callback. */
static enum mq_err mq_collect_key(struct mq_ingest_collect *c, const struct mq_route_hit *hit,
                                  struct mq_ingest_hit *h)
{
    h->key = NULL;
    h->key_len = 0;
    if (!hit->key)
        return MQ_OK;
    h->key_len = hit->key_len;
    if (hit->key_len <= sizeof c->keybuf - c->keyused) {
        unsigned char *k = c->keybuf + c->keyused;
        if (hit->key_len)
            memcpy(k, hit->key, hit->key_len);
        c->keyused += hit->key_len;
        h->key = k;
        return MQ_OK;
    }
    void **nh = realloc(c->heap, (c->nheap + 1) * sizeof *nh);
    if (!nh)
        return MQ_ERR_NOMEM;
    c->heap = nh;
    void *k = malloc(hit->key_len);
    if (!k)
        return MQ_ERR_NOMEM;
    memcpy(k, hit->key, hit->key_len);
    c->heap[c->nheap++] = k;
    h->key = k;
    return MQ_OK;
}

static enum mq_err mq_collect_hit(void *opaque, const struct mq_route_hit *hit)
{
    struct mq_ingest_collect *c = opaque;
    struct mq_ingest *in = c->in;
    c->called = true;
    c->to_unmatched = c->to_unmatched || hit->mapping < 0;
    bool mapped = hit->mapping >= 0 && (size_t)hit->mapping < c->routes->nrets;
    const struct mq_retention *ret = mapped ? &c->routes->rets[hit->mapping] : &c->routes->unmatched_ret;
    const struct mq_ingest_policy *pol = mapped ? &c->routes->pols[hit->mapping] : &c->routes->unmatched_pol;
    uint64_t hash = mq_hash(hit->topic);
    struct mq_itopic *t =
        mq_tmap_find(atomic_load_explicit(&in->map, memory_order_acquire), hit->topic, hash);
    enum mq_err err = MQ_OK;
    if (!t || atomic_load_explicit(&t->checked_gen, memory_order_acquire) != c->routes->gen) {
        pthread_mutex_lock(&in->map_mu);
        err = mq_ingest_topic_open(in, hit->topic, hash, hit->partitions, ret, c->mqtt_topic,
                                   c->mqtt_topic_len, c->broker, &t);
        if (err == MQ_OK)
            err = mq_ingest_topic_sync(in, t, c->routes->gen, ret, pol, hit->partitions);
        pthread_mutex_unlock(&in->map_mu);
        if (err != MQ_OK)
            return err;
    }
    struct mq_iparts *ps = atomic_load_explicit(&t->parts, memory_order_acquire);
    int32_t p = hit->partition;
    /* The topic's real count differs from its mapping's (an alter, or a mapping edited since): Kafka's
     * partitioner with the real count, and null keys round-robin over every partition (mqlog route says the
     * same, tool/cmd_route.c). */
    if (ps->n != hit->partitions)
        p = hit->key
                ? mq_partition_for_key(hit->key, hit->key_len, ps->n)
                : (int32_t)(atomic_fetch_add_explicit(&t->rr, 1, memory_order_relaxed) % (unsigned)ps->n);
    struct mq_part *part = atomic_load_explicit(&ps->p[p], memory_order_acquire);
    if (!part) {
        pthread_mutex_lock(&in->map_mu);
        err = mq_ingest_part_open(in, t, p, &part);
        pthread_mutex_unlock(&in->map_mu);
        if (err != MQ_OK)
            return err;
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap * 2;
        struct mq_ingest_hit *nh =
            c->hits == c->stack ? malloc(ncap * sizeof *nh) : realloc(c->hits, ncap * sizeof *nh);
        if (!nh)
            return MQ_ERR_NOMEM;
        if (c->hits == c->stack)
            memcpy(nh, c->stack, sizeof c->stack);
        c->hits = nh;
        c->cap = ncap;
    }
    struct mq_ingest_hit *h = &c->hits[c->n];
    h->part = part;
    h->pol = pol;
    h->mapping = hit->mapping;
    err = mq_collect_key(c, hit, h);
    if (err == MQ_OK)
        c->n++;
    return err;
}

/* Produces one record; a partition that just said it had room but filled meanwhile is waited for. */
static enum mq_err mq_ingest_produce_one(struct mq_ingest *in, struct mq_part *part,
                                         const struct mq_record *rec, bool must, struct mq_rx_note *note,
                                         int64_t *offset)
{
    mq_produce_note_fn *fn = note ? mq_rx_session_note : NULL;
    enum mq_err err = mq_part_produce_noted(part, rec, fn, note, offset);
    if (err == MQ_ERR_RANGE) {
        /* the open batch cannot take this (large) record on top of what it holds: it fits in a batch of its
         * own once the flusher has sealed the open one */
        mq_part_request_flush(part);
        err = MQ_ERR_FULL;
    }
    if (err != MQ_ERR_FULL || !must)
        return err;
    int64_t deadline = mq_mono_ms() + MQ_INGEST_RACE_WAIT_MS;
    while (err == MQ_ERR_FULL && mq_mono_ms() < deadline) {
        mq_part_request_flush(part);
        mq_sleep_ms(1);
        err = mq_part_produce_noted(part, rec, fn, note, offset);
        if (err == MQ_ERR_RANGE)
            err = MQ_ERR_FULL;
    }
    if (err == MQ_ERR_FULL)
        MQ_WARN(
            "log topic %s partition %d stayed full for %d ms with a message half stored: it will be stored "
            "again in the topics it already reached when it is retried",
            mq_part_topic(part), (int)mq_part_id(part), MQ_INGEST_RACE_WAIT_MS);
    (void)in;
    return err;
}

/* Whether a redelivery's earlier copy is in part already (its offset into *offset). */
static bool mq_ingest_stored_in(const struct mq_rx_match *m, const struct mq_part *part, int64_t *offset)
{
    for (int i = 0; m && i < m->n; i++) {
        if (m->at[i].part == part) {
            *offset = m->at[i].offset;
            return true;
        }
    }
    return false;
}

/* Copies into sel the headers of hdr[0, nh) that pol keeps: hdr holds topic, qos, retain and broker, then the
 * connector's (the properties). Returns how many. */
static size_t mq_ingest_select_headers(const struct mq_ingest_policy *pol, const struct mq_source_msg *msg,
                                       const struct mq_header *hdr, size_t nh, struct mq_header *sel)
{
    size_t n = 0;
    bool omit = pol->omit_defaults;
    if (pol->headers & (1u << MQ_CONFIG_HDR_TOPIC))
        sel[n++] = hdr[0];
    if ((pol->headers & (1u << MQ_CONFIG_HDR_QOS)) &&
        !(omit && *(const char *)hdr[1].value == pol->qos_default))
        sel[n++] = hdr[1];
    if ((pol->headers & (1u << MQ_CONFIG_HDR_RETAIN)) && !(omit && !msg->retain))
        sel[n++] = hdr[2];
    if ((pol->headers & (1u << MQ_CONFIG_HDR_BROKER)) && !(omit && pol->broker_implied))
        sel[n++] = hdr[3];
    if (pol->headers & (1u << MQ_CONFIG_HDR_PROPERTIES))
        for (size_t i = 4; i < nh; i++)
            sel[n++] = hdr[i];
    return n;
}

static enum mq_err mq_ingest_store(struct mq_ingest *in, const char *broker, const struct mq_source_msg *msg,
                                   struct mq_ingest_collect *c, const struct mq_rx_match *m,
                                   struct mq_rx_note *note, struct mq_ticket *ticket)
{
    /* a record no batch can hold (MQTT allows 256 MiB payloads, a batch 64 MiB) is refused before anything
     * is stored: retrying could never help (the log would answer MQ_ERR_RANGE, taken for a full batch) */
    if (msg->payload_len > MQ_INGEST_RECORD_MAX || msg->topic_len > MQ_INGEST_RECORD_MAX) {
        c->too_large = msg->payload_len + msg->topic_len;
        return MQ_ERR_RANGE;
    }
    /* all or nothing: ask every partition first (a partition named twice is asked twice, harmlessly) */
    int64_t off = -1;
    for (size_t i = 0; i < c->n; i++) {
        if (!mq_ingest_stored_in(m, c->hits[i].part, &off) && !mq_part_can_produce(c->hits[i].part)) {
            atomic_fetch_add_explicit(&in->full, 1, memory_order_relaxed);
            return MQ_ERR_FULL;
        }
    }
    char qos[2] = {(char)('0' + (msg->qos >= 0 && msg->qos <= 2 ? msg->qos : 0)), 0};
    const char *retain = msg->retain ? "true" : "false";
    struct mq_header hstack[MQ_INGEST_HEADERS];
    struct mq_header *hdr = hstack;
    size_t nextra = msg->headers && msg->header_count > 0 ? (size_t)msg->header_count : 0;
    size_t nh = 4 + nextra;
    if (nh > MQ_INGEST_HEADERS) {
        hdr = malloc(nh * sizeof *hdr);
        if (!hdr)
            return MQ_ERR_NOMEM;
    }
    hdr[0] = (struct mq_header){MQ_HDR_TOPIC, MQ_HDR_LEN(MQ_HDR_TOPIC), msg->topic, (int32_t)msg->topic_len};
    hdr[1] = (struct mq_header){MQ_HDR_QOS, MQ_HDR_LEN(MQ_HDR_QOS), qos, 1};
    hdr[2] = (struct mq_header){MQ_HDR_RETAIN, MQ_HDR_LEN(MQ_HDR_RETAIN), retain, (int32_t)strlen(retain)};
    hdr[3] = (struct mq_header){MQ_HDR_BROKER, MQ_HDR_LEN(MQ_HDR_BROKER), broker, (int32_t)strlen(broker)};
    if (nextra)
        memcpy(hdr + 4, msg->headers, nextra * sizeof *hdr);

    struct mq_record rec = {
        .timestamp = msg->timestamp,
        .value = msg->payload,
        .value_len = (int32_t)msg->payload_len,
        .headers = hdr,
        .header_count = (int32_t)nh,
    };
    /* a mapping that keeps fewer headers gets a selection of hdr (no allocation: it is never longer) */
    struct mq_header selstack[MQ_INGEST_HEADERS];
    struct mq_header *sel = nh > MQ_INGEST_HEADERS ? malloc(nh * sizeof *sel) : selstack;
    if (!sel) {
        if (hdr != hstack)
            free(hdr);
        return MQ_ERR_NOMEM;
    }
    enum mq_err err = MQ_OK;
    /* the headers (MQTT 5 user properties) and the key (a payload's JSON member) count too */
    for (size_t i = 0; i < c->n; i++) {
        rec.key = c->hits[i].key;
        rec.key_len = c->hits[i].key ? (int32_t)c->hits[i].key_len : -1;
        size_t size = mq_record_encoded_size(&rec);
        if (size > MQ_INGEST_RECORD_MAX) {
            c->too_large = size;
            err = MQ_ERR_RANGE;
        }
    }
    size_t done = 0, produced = 0;
    for (; done < c->n && err == MQ_OK; done++) {
        const struct mq_ingest_hit *h = &c->hits[done];
        rec.key = h->key;
        rec.key_len = h->key ? (int32_t)h->key_len : -1;
        rec.headers = hdr;
        rec.header_count = (int32_t)nh;
        if (h->pol->headers != MQ_CONFIG_HDR_ALL || h->pol->omit_defaults) {
            rec.headers = sel;
            rec.header_count = (int32_t)mq_ingest_select_headers(h->pol, msg, hdr, nh, sel);
        }
        off = -1;
        if (!mq_ingest_stored_in(m, h->part, &off)) {
            err = mq_ingest_produce_one(in, h->part, &rec, produced > 0, note, &off);
            if (err != MQ_OK)
                break;
            produced++;
            if (h->mapping >= 0 && (size_t)h->mapping < c->routes->nrets)
                atomic_fetch_add_explicit(&c->routes->records[h->mapping], 1, memory_order_relaxed);
        }
        if (ticket && ticket->n < MQ_TICKET_MAX) {
            ticket->at[ticket->n].part = h->part;
            ticket->at[ticket->n].offset = off;
            ticket->n++;
        }
    }
    if (hdr != hstack)
        free(hdr);
    if (sel != selstack)
        free(sel);
    atomic_fetch_add_explicit(&in->records, produced, memory_order_relaxed);
    atomic_fetch_add_explicit(&in->bytes, produced * msg->payload_len, memory_order_relaxed);
    if (err == MQ_ERR_FULL) {
        atomic_fetch_add_explicit(&in->full, 1, memory_order_relaxed);
    } else if (err != MQ_OK && err != MQ_ERR_INVAL && err != MQ_ERR_RANGE && mq_ingest_log_due(in)) {
        MQ_ERROR("cannot store a message from %s on %.*s: %s", broker, (int)msg->topic_len, msg->topic,
                 mq_strerror(err));
    }
    return err;
}

enum mq_err mq_ingest_message(struct mq_ingest *in, const char *broker, const struct mq_source_msg *msg,
                              struct mq_ticket *ticket)
{
    if (ticket)
        ticket->n = 0;
    /* enter the read side: count ourselves before loading the routes (see the top of the file) */
    unsigned e = atomic_load(&in->epoch) & 1;
    atomic_fetch_add(&in->readers[e].v, 1);
    struct mq_ingest_routes *routes = atomic_load(&in->routes);

    struct mq_ingest_collect c;
    c.in = in;
    c.routes = routes;
    c.hits = c.stack;
    c.n = 0;
    c.cap = MQ_INGEST_HITS_STACK;
    c.keyused = 0;
    c.heap = NULL;
    c.nheap = 0;
    c.mqtt_topic = msg->topic;
    c.mqtt_topic_len = msg->topic_len;
    c.broker = broker;
    c.called = false;
    c.to_unmatched = false;
    c.too_large = 0;
    int nhits = 0;
    enum mq_err err = mq_route_match(routes->table, broker, msg->topic, msg->topic_len, msg->payload,
                                     msg->payload_len, mq_collect_hit, &c, &nhits);
    /* a QoS 1/2 message of a guarded session: a redelivery of one stored before is not stored again where
     * it is; every record produced is noted in the guard first (session.h) */
    struct mq_rx_session *sess = msg->session && msg->qos > 0 && msg->packet_id > 0 ? msg->session : NULL;
    struct mq_rx_match match;
    struct mq_rx_note note;
    bool matched = false;
    if (sess && err == MQ_OK && c.n > 0) {
        uint64_t digest = mq_rx_digest(msg->topic, msg->topic_len, msg->payload, msg->payload_len);
        matched = mq_rx_session_match(sess, msg->packet_id, digest, msg->dup, &match);
        mq_rx_session_begin(sess, msg->packet_id, msg->qos, digest, msg->timestamp, &note);
    }
    if (err == MQ_OK && c.n > 0)
        err = mq_ingest_store(in, broker, msg, &c, matched ? &match : NULL, sess ? &note : NULL, ticket);
    mq_collect_release(&c);
    atomic_fetch_sub(&in->readers[e].v, 1);
    if (sess && (err == MQ_OK || err == MQ_ERR_INVAL || err == MQ_ERR_RANGE))
        mq_rx_session_done(sess, msg->packet_id, matched && err == MQ_OK ? &match : NULL);
    if (matched && err == MQ_OK)
        atomic_fetch_add_explicit(&in->redelivered, 1, memory_order_relaxed);

    if (err == MQ_OK) {
        /* unmatched: no mapping took it, whether it went to the unmatched topic or was dropped */
        atomic_fetch_add_explicit(&in->messages, 1, memory_order_relaxed);
        if (nhits == 0 || c.to_unmatched)
            atomic_fetch_add_explicit(&in->unmatched, 1, memory_order_relaxed);
        return MQ_OK;
    }
    /* A topic the route table refuses, or a record the log can never take: retrying cannot help, so the
     * message is dropped, loudly (the connector acknowledges it: the broker would only send it again). */
    int topic_len = (int)(msg->topic_len > 200 ? 200 : msg->topic_len);
    if (err == MQ_ERR_RANGE) {
        atomic_fetch_add_explicit(&in->too_large, 1, memory_order_relaxed);
        if (mq_ingest_log_due(in))
            MQ_WARN(
                "dropped a message from %s on '%.*s': its record would be %zu bytes (a payload of %zu "
                "bytes), more than the %d bytes the log takes in one record (a batch holds at most %d MiB)",
                broker, topic_len, msg->topic, c.too_large, msg->payload_len, MQ_INGEST_RECORD_MAX,
                MQ_BATCH_MAX_SIZE >> 20);
        return MQ_ERR_RANGE;
    }
    if (err == MQ_ERR_INVAL) {
        atomic_fetch_add_explicit(&in->invalid, 1, memory_order_relaxed);
        if (mq_ingest_log_due(in))
            MQ_WARN("dropped a message from %s on '%.*s': %s", broker, topic_len, msg->topic,
                    c.called ? "the log refused its record as invalid" : "not a valid MQTT topic name");
        return MQ_ERR_INVAL;
    }
    if (err == MQ_ERR_NOMEM)
        return MQ_ERR_FULL; /* nothing stored; the connector retries after a pause */
    /* the store could not create or open a topic, or write: nothing (or, after a long race, part) of the
     * message was stored; the connector holds its input and retries, so nothing is lost */
    if (err != MQ_ERR_FULL)
        atomic_fetch_add_explicit(&in->full, 1, memory_order_relaxed);
    return MQ_ERR_FULL;
}

bool mq_ingest_durable(struct mq_ingest *in, const struct mq_ticket *ticket)
{
    (void)in;
    for (int i = 0; i < ticket->n; i++)
        if (mq_part_durable_end(ticket->at[i].part) <= ticket->at[i].offset)
            return false;
    return true;
}

enum mq_err mq_ingest_wait(struct mq_ingest *in, const struct mq_ticket *ticket, int64_t timeout_ms)
{
    (void)in;
    int64_t deadline = timeout_ms >= 0 ? mq_mono_ms() + timeout_ms : -1;
    for (int i = 0; i < ticket->n; i++)
        if (mq_part_durable_end(ticket->at[i].part) <= ticket->at[i].offset)
            mq_part_request_flush(ticket->at[i].part);
    for (int i = 0; i < ticket->n; i++) {
        for (;;) {
            int64_t left = deadline < 0 ? -1 : deadline - mq_mono_ms();
            if (deadline >= 0 && left < 0)
                left = 0;
            enum mq_err err = mq_part_wait_durable(ticket->at[i].part, ticket->at[i].offset, left);
            if (err == MQ_OK)
                break;
            /* a full disk is a state the log recovers from by itself (the record waits in its backlog):
             * keep waiting for it like for a slow disk, until the deadline */
            if (err != MQ_ERR_NOSPC || (deadline >= 0 && mq_mono_ms() >= deadline))
                return err;
            mq_sleep_ms(10);
            mq_part_request_flush(ticket->at[i].part);
        }
    }
    return MQ_OK;
}

/* ---- lifecycle ---- */

enum mq_err mq_ingest_new(struct mq_store *store, struct mq_ingest_routes *routes, struct mq_ingest **out,
                          char *errstr, size_t errstr_size)
{
    if (!store || !routes || !out)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mq_ingest_new: missing argument");
    struct mq_ingest *in = calloc(1, sizeof *in);
    if (!in)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    struct mq_tmap *map = mq_tmap_new(64);
    if (!map) {
        free(in);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    int rc = pthread_mutex_init(&in->map_mu, NULL);
    if (rc != 0) {
        free(map);
        free(in);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "pthread_mutex_init: %s", MQ_STRERROR(rc));
    }
    pthread_mutex_init(&in->sess_mu, NULL);
    in->store = store;
    atomic_init(&in->map, map);
    in->gen = 1;
    routes->gen = in->gen;
    atomic_init(&in->routes, routes);
    atomic_init(&in->epoch, 0);
    atomic_init(&in->readers[0].v, 0);
    atomic_init(&in->readers[1].v, 0);
    atomic_init(&in->last_log_ms, INT64_MIN / 2);
    *out = in;
    return MQ_OK;
}

/* Flips the epoch and waits until the readers that counted themselves under the previous one are gone. */
static void mq_ingest_flip_and_drain(struct mq_ingest *in)
{
    unsigned old = atomic_fetch_add(&in->epoch, 1) & 1;
    while (atomic_load(&in->readers[old].v) != 0)
        sched_yield();
}

void mq_ingest_set_routes(struct mq_ingest *in, struct mq_ingest_routes *routes)
{
    routes->gen = ++in->gen;
    if (in->gen == 0) /* 0 marks "never checked" in the topics */
        routes->gen = in->gen = 1;
    struct mq_ingest_routes *old = atomic_exchange(&in->routes, routes);
    mq_ingest_flip_and_drain(in);
    mq_ingest_flip_and_drain(in);
    /* no message counts into old any more: its mappings' counts go on in the new mappings of their name */
    for (size_t i = 0; i < old->nrets; i++) {
        for (size_t j = 0; old->names[i] && j < routes->nrets; j++) {
            if (routes->names[j] && strcmp(old->names[i], routes->names[j]) == 0) {
                atomic_fetch_add(&routes->records[j], atomic_load(&old->records[i]));
                break;
            }
        }
    }
    mq_ingest_routes_free(old);
    /* Every topic in use takes its new settings now rather than at its next message. */
    mq_ingest_topics_sync(in, routes);
}

void mq_ingest_free(struct mq_ingest *in)
{
    if (!in)
        return;
    mq_tmap_free(atomic_load(&in->map));
    mq_ingest_routes_free(atomic_load(&in->routes));
    while (in->sessions) { /* a connector that forgot its put(): its guard goes with the ingest layer */
        struct mq_ingest_sess *next = in->sessions->next;
        mq_rx_session_close(in->sessions->s);
        free(in->sessions);
        in->sessions = next;
    }
    pthread_mutex_destroy(&in->sess_mu);
    pthread_mutex_destroy(&in->map_mu);
    free(in);
}

void mq_ingest_stats(struct mq_ingest *in, struct mq_ingest_stats *st)
{
    st->messages = atomic_load(&in->messages);
    st->records = atomic_load(&in->records);
    st->bytes = atomic_load(&in->bytes);
    st->unmatched = atomic_load(&in->unmatched);
    st->invalid = atomic_load(&in->invalid);
    st->too_large = atomic_load(&in->too_large);
    st->full = atomic_load(&in->full);
    st->topics = atomic_load(&in->topics);
    st->redelivered = atomic_load(&in->redelivered);
    st->pending = atomic_load(&in->pending);
    st->left = atomic_load(&in->left);
    /* read last: a message counts in received before anything else (see ingest.h) */
    st->received = atomic_load(&in->received);
}

void mq_ingest_received(struct mq_ingest *in)
{
    if (!in)
        return;
    atomic_fetch_add_explicit(&in->received, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&in->pending, 1, memory_order_relaxed);
}

void mq_ingest_settled(struct mq_ingest *in, enum mq_err err)
{
    if (!in)
        return;
    /* answered with MQ_OK, MQ_ERR_INVAL or MQ_ERR_RANGE: ingest counted it already */
    if (err != MQ_OK && err != MQ_ERR_INVAL && err != MQ_ERR_RANGE)
        atomic_fetch_add_explicit(&in->left, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&in->pending, 1, memory_order_relaxed);
}

void mq_ingest_mapping_stats(struct mq_ingest *in,
                             void (*fn)(void *opaque, size_t mapping, const char *name, uint64_t records),
                             void *opaque)
{
    /* the read side of the routes, as a message takes it (see the top of the file) */
    unsigned e = atomic_load(&in->epoch) & 1;
    atomic_fetch_add(&in->readers[e].v, 1);
    struct mq_ingest_routes *routes = atomic_load(&in->routes);
    for (size_t i = 0; i < routes->nrets; i++)
        fn(opaque, i, routes->names[i], atomic_load(&routes->records[i]));
    atomic_fetch_sub(&in->readers[e].v, 1);
}

enum mq_err mq_ingest_session_get(struct mq_ingest *in, const char *broker, const char *client_id,
                                  int64_t window, int mode, struct mq_rx_session **out, char *errstr,
                                  size_t errstr_size)
{
    pthread_mutex_lock(&in->sess_mu);
    enum mq_err err = MQ_OK;
    struct mq_ingest_sess *e = in->sessions;
    while (e && !mq_rx_session_is(e->s, broker, client_id))
        e = e->next;
    if (e) {
        mq_rx_session_ref(e->s, 1);
        *out = e->s;
    } else if (!(e = calloc(1, sizeof *e))) {
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    } else if ((err = mq_rx_session_open(in->store, broker, client_id, window, mode, &e->s, errstr,
                                         errstr_size)) != MQ_OK) {
        free(e);
    } else {
        e->next = in->sessions;
        in->sessions = e;
        *out = e->s;
    }
    pthread_mutex_unlock(&in->sess_mu);
    return err;
}

void mq_ingest_session_put(struct mq_ingest *in, struct mq_rx_session *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&in->sess_mu);
    if (mq_rx_session_ref(s, -1) == 0) {
        for (struct mq_ingest_sess **pp = &in->sessions; *pp; pp = &(*pp)->next) {
            if ((*pp)->s == s) {
                struct mq_ingest_sess *e = *pp;
                *pp = e->next;
                free(e);
                break;
            }
        }
        mq_rx_session_close(s);
    }
    pthread_mutex_unlock(&in->sess_mu);
}

void mq_ingest_session_sync(struct mq_rx_session *s)
{
    if (s)
        mq_rx_session_sync(s);
}

void mq_ingest_session_connected(struct mq_rx_session *s, bool session_present)
{
    if (s)
        mq_rx_session_connected(s, session_present);
}
