/*
 * route.c - the compiled route table: templates, key strategies, partition choice, subscriptions.
 *
 * Per message the work is a linear walk over the mappings (a gateway has tens of them, not thousands), each
 * filter matched in place, templates expanded into stack buffers and keys pointing into the topic or the
 * payload: the common case allocates nothing.
 */
#include "route/route.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/json.h"
#include "route/placement.h"
#include "util/diag.h"
#include "util/parse.h"

enum mq_key_kind { MQ_KEY_TOPIC, MQ_KEY_LEVEL, MQ_KEY_JSON, MQ_KEY_NONE };

/* One piece of a template: literal text, or a reference to a wildcard's match. */
struct mq_tpl_part {
    int ref; /* 0 for literal text, else N of {N} */
    const char *lit;
    size_t len;
};

struct mq_route_map {
    char **filters;
    size_t nfilters;
    char *broker;
    int qos;
    int32_t partitions;
    char *to;
    struct mq_tpl_part *parts;
    size_t nparts;
    int max_ref;
    enum mq_key_kind key_kind;
    int key_level;
    struct mq_json_pointer *json;
    atomic_uint rr; /* the round-robin position for null keys */
};

struct mq_route_table {
    struct mq_route_map *maps;
    size_t nmaps;
    char *unmatched;
    atomic_int_fast64_t refused_log_ms; /* rate limit of the "template gave no topic name" warning */
};

#define MQ_ROUTE_WARN_EVERY_MS 10000

/* Walks a template, calling part() for each literal run and reference. Returns MQ_OK or MQ_ERR_INVAL with
 * the reason. part may be NULL (check only). */
static enum mq_err mq_tpl_walk(const char *tmpl, void (*part)(void *opaque, const struct mq_tpl_part *p),
                               void *opaque, int *max_ref, size_t *lit_len, char *errstr, size_t errstr_size)
{
    int maxr = 0;
    size_t lits = 0;
    const char *p = tmpl;
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            char num[8];
            size_t n = close ? (size_t)(close - p - 1) : 0;
            int64_t v = 0;
            if (!close || n == 0 || n >= sizeof(num))
                return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                               "template '%s': '{' must start a reference {N} with N from 1 to %d", tmpl,
                               MQ_ROUTE_MAX_REFS);
            memcpy(num, p + 1, n);
            num[n] = '\0';
            if (num[0] < '1' || num[0] > '9' || mq_parse_int64(num, 1, MQ_ROUTE_MAX_REFS, &v) != MQ_OK)
                return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                               "template '%s': {%s} is not a reference {N} with N from 1 to %d", tmpl, num,
                               MQ_ROUTE_MAX_REFS);
            if (part)
                part(opaque, &(struct mq_tpl_part){.ref = (int)v});
            if (v > maxr)
                maxr = (int)v;
            p = close + 1;
            continue;
        }
        const char *start = p;
        while (*p && *p != '{') {
            if (!mq_topic_name_char((unsigned char)*p))
                return mq_errf(
                    MQ_ERR_INVAL, errstr, errstr_size,
                    "template '%s': '%c' is not allowed in a log topic name (only a-z A-Z 0-9 . _ -)", tmpl,
                    *p);
            p++;
        }
        lits += (size_t)(p - start);
        if (part)
            part(opaque, &(struct mq_tpl_part){.lit = start, .len = (size_t)(p - start)});
    }
    if (max_ref)
        *max_ref = maxr;
    if (lit_len)
        *lit_len = lits;
    return MQ_OK;
}

enum mq_err mq_route_template_check(const char *tmpl, int *max_ref, char *errstr, size_t errstr_size)
{
    if (!tmpl || !*tmpl)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "empty log topic");
    int maxr = 0;
    size_t lits = 0;
    enum mq_err err = mq_tpl_walk(tmpl, NULL, NULL, &maxr, &lits, errstr, errstr_size);
    if (err)
        return err;
    if (lits > MQ_TOPIC_NAME_MAX)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "log topic '%.40s...' is longer than %d characters",
                       tmpl, MQ_TOPIC_NAME_MAX);
    if (maxr == 0 && !mq_topic_name_valid_len(tmpl, strlen(tmpl)))
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "'%s' is not a valid log topic name", tmpl);
    if (max_ref)
        *max_ref = maxr;
    return MQ_OK;
}

/* Parses a key strategy; with json non-NULL the pointer is compiled into *json (caller frees). */
static enum mq_err mq_key_parse(const char *key, enum mq_key_kind *kind, int *level,
                                struct mq_json_pointer **json, char *errstr, size_t errstr_size)
{
    *level = 0;
    if (!key || strcmp(key, "topic") == 0) {
        *kind = MQ_KEY_TOPIC;
        return MQ_OK;
    }
    if (strcmp(key, "none") == 0) {
        *kind = MQ_KEY_NONE;
        return MQ_OK;
    }
    if (strncmp(key, "level:", 6) == 0) {
        int64_t n;
        if (key[6] < '1' || key[6] > '9' || mq_parse_int64(key + 6, 1, MQ_MQTT_TOPIC_MAX, &n) != MQ_OK)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "key '%s': level:N needs N from 1 to %d", key,
                           MQ_MQTT_TOPIC_MAX);
        *kind = MQ_KEY_LEVEL;
        *level = (int)n;
        return MQ_OK;
    }
    if (strncmp(key, "json:", 5) == 0) {
        struct mq_json_pointer *jp = NULL;
        char why[200];
        enum mq_err err = mq_json_pointer_compile(key + 5, &jp, why, sizeof(why));
        if (err)
            return mq_errf(err, errstr, errstr_size, "key '%s': %s", key, why);
        *kind = MQ_KEY_JSON;
        if (json)
            *json = jp;
        else
            mq_json_pointer_free(jp);
        return MQ_OK;
    }
    return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                   "unknown key strategy '%s' (expected topic, level:N, json:/POINTER or none)", key);
}

enum mq_err mq_route_key_check(const char *key, int *level, char *errstr, size_t errstr_size)
{
    enum mq_key_kind kind;
    int lv;
    enum mq_err err = mq_key_parse(key, &kind, &lv, NULL, errstr, errstr_size);
    if (!err && level)
        *level = lv;
    return err;
}

static void mq_route_map_clear(struct mq_route_map *m)
{
    for (size_t i = 0; i < m->nfilters; i++)
        free(m->filters[i]);
    free(m->filters);
    free(m->broker);
    free(m->to);
    free(m->parts);
    mq_json_pointer_free(m->json);
}

void mq_route_table_free(struct mq_route_table *table)
{
    if (!table)
        return;
    for (size_t i = 0; i < table->nmaps; i++)
        mq_route_map_clear(&table->maps[i]);
    free(table->maps);
    free(table->unmatched);
    free(table);
}

size_t mq_route_count(const struct mq_route_table *table)
{
    return table ? table->nmaps : 0;
}

static char *mq_strdup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

struct mq_tpl_build {
    struct mq_tpl_part *parts;
    size_t n;
};

static void mq_tpl_collect(void *opaque, const struct mq_tpl_part *p)
{
    struct mq_tpl_build *b = opaque;
    b->parts[b->n++] = *p;
}

/* Compiles defs[i] into m (zeroed by the caller). */
static enum mq_err mq_route_map_build(struct mq_route_map *m, const struct mq_route_def *d, size_t i,
                                      char *errstr, size_t errstr_size)
{
    char why[300];
    if (!d->from || d->nfrom == 0)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mapping %zu: no topic filter", i + 1);
    if (d->partitions < 1)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mapping %zu: partitions must be at least 1",
                       i + 1);
    if (d->qos < 0 || d->qos > 2)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mapping %zu: qos must be 0, 1 or 2", i + 1);
    int max_ref;
    if (mq_route_template_check(d->to, &max_ref, why, sizeof(why)) != MQ_OK)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mapping %zu: %s", i + 1, why);
    m->max_ref = max_ref;
    for (size_t f = 0; f < d->nfrom; f++) {
        if (mq_filter_check(d->from[f], why, sizeof(why)) != MQ_OK)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mapping %zu: %s", i + 1, why);
        int wild;
        mq_filter_shape(d->from[f], &wild, NULL, NULL);
        if (max_ref > wild)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                           "mapping %zu: template '%s' uses {%d} but filter '%s' has %d wildcard%s", i + 1,
                           d->to, max_ref, d->from[f], wild, wild == 1 ? "" : "s");
    }
    enum mq_err err = mq_key_parse(d->key, &m->key_kind, &m->key_level, &m->json, why, sizeof(why));
    if (err)
        return mq_errf(err, errstr, errstr_size, "mapping %zu: %s", i + 1, why);
    bool oom = false;
    m->filters = calloc(d->nfrom, sizeof(*m->filters));
    if (!m->filters)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    m->nfilters = d->nfrom;
    for (size_t f = 0; f < d->nfrom; f++)
        m->filters[f] = mq_strdup_or_null(d->from[f], &oom);
    m->broker = mq_strdup_or_null(d->broker, &oom);
    m->to = mq_strdup_or_null(d->to, &oom);
    m->qos = d->qos;
    m->partitions = d->partitions;
    atomic_init(&m->rr, 0);
    if (oom)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    if (max_ref > 0) {
        /* At most one part per character; parts point into m->to, which lives as long as the table. */
        struct mq_tpl_build b = {.parts = calloc(strlen(m->to), sizeof(*b.parts))};
        if (!b.parts)
            return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        m->parts = b.parts;
        mq_tpl_walk(m->to, mq_tpl_collect, &b, NULL, NULL, NULL, 0);
        m->nparts = b.n;
    }
    return MQ_OK;
}

enum mq_err mq_route_table_new(const struct mq_route_def *defs, size_t ndefs, const char *unmatched,
                               struct mq_route_table **out, char *errstr, size_t errstr_size)
{
    if (unmatched && !mq_topic_name_valid_len(unmatched, strlen(unmatched)))
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                       "'%s' is not a valid log topic name for unmatched messages", unmatched);
    struct mq_route_table *t = calloc(1, sizeof(*t));
    if (!t)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    atomic_init(&t->refused_log_ms, INT64_MIN / 2);
    if (ndefs > 0) {
        t->maps = calloc(ndefs, sizeof(*t->maps));
        if (!t->maps) {
            free(t);
            return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        }
    }
    enum mq_err err = MQ_OK;
    for (size_t i = 0; i < ndefs && !err; i++) {
        t->nmaps = i + 1; /* so that a half-built mapping is freed too */
        err = mq_route_map_build(&t->maps[i], &defs[i], i, errstr, errstr_size);
    }
    if (!err && unmatched && !(t->unmatched = strdup(unmatched)))
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    if (err) {
        mq_route_table_free(t);
        return err;
    }
    *out = t;
    return MQ_OK;
}

/* Appends what a wildcard matched, made legal for a topic name; returns false when buf would overflow. */
static bool mq_tpl_put_capture(char *buf, size_t *n, const char *s, size_t len)
{
    if (len == 0)
        return false; /* an empty level would leave a name like "env.hall1." or "env..t": no topic */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char o;
        if (c == '/')
            o = '.';
        else if (mq_topic_name_char(c))
            o = (char)c;
        else if (c >= 0x80 && c < 0xc0)
            continue; /* a UTF-8 continuation byte: its character already became one '_' */
        else
            o = '_';
        if (*n >= MQ_TOPIC_NAME_MAX)
            return false;
        buf[(*n)++] = o;
    }
    return true;
}

/* Expands m's template into buf (MQ_TOPIC_NAME_MAX + 1 bytes); false when the result is not a legal name. */
static bool mq_tpl_expand(const struct mq_route_map *m, const char *topic, const struct mq_span *caps,
                          char *buf)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nparts; i++) {
        const struct mq_tpl_part *p = &m->parts[i];
        if (p->ref) {
            if (!mq_tpl_put_capture(buf, &n, topic + caps[p->ref - 1].off, caps[p->ref - 1].len))
                return false;
        } else {
            if (p->len > MQ_TOPIC_NAME_MAX - n)
                return false;
            memcpy(buf + n, p->lit, p->len);
            n += p->len;
        }
    }
    buf[n] = '\0';
    return mq_topic_name_valid_len(buf, n);
}

/* The N-th level (1-based) of topic, or false when the topic has fewer levels. */
static bool mq_topic_level(const char *topic, size_t len, int level, const char **start, size_t *llen)
{
    size_t pos = 0;
    for (int l = 1; l < level; l++) {
        const char *slash = memchr(topic + pos, '/', len - pos);
        if (!slash)
            return false;
        pos = (size_t)(slash - topic) + 1;
    }
    const char *slash = memchr(topic + pos, '/', len - pos);
    *start = topic + pos;
    *llen = (slash ? (size_t)(slash - topic) : len) - pos;
    return true;
}

#define MQ_ROUTE_STACK_NAMES 16
#define MQ_ROUTE_STACK_KEY   256

/* Per-call state: the names already handed out (for the one-hit-per-topic rule) and their buffers. */
struct mq_route_call {
    const char *names_stack[MQ_ROUTE_STACK_NAMES];
    char bufs_stack[MQ_ROUTE_STACK_NAMES][MQ_TOPIC_NAME_MAX + 1];
    const char **names;
    char (*bufs)[MQ_TOPIC_NAME_MAX + 1];
    size_t nnames, cap;
    char key_stack[MQ_ROUTE_STACK_KEY];
    char *key_heap;
};

static bool mq_route_seen(const struct mq_route_call *c, const char *name)
{
    for (size_t i = 0; i < c->nnames; i++)
        if (strcmp(c->names[i], name) == 0)
            return true;
    return false;
}

/* A buffer for the next expanded name; NULL on allocation failure. */
static char *mq_route_next_buf(struct mq_route_call *c)
{
    if (c->nnames == c->cap) {
        size_t ncap = c->cap * 2;
        const char **names = malloc(ncap * sizeof(*names));
        char(*bufs)[MQ_TOPIC_NAME_MAX + 1] = malloc(ncap * sizeof(*bufs));
        if (!names || !bufs) {
            free(names);
            free(bufs);
            return NULL;
        }
        /* Names may point into the old buffers: rebase them. */
        for (size_t i = 0; i < c->nnames; i++) {
            memcpy(bufs[i], c->bufs[i], sizeof(bufs[i]));
            names[i] = c->names[i] == c->bufs[i] ? bufs[i] : c->names[i];
        }
        if (c->names != c->names_stack) {
            free(c->names);
            free(c->bufs);
        }
        c->names = names;
        c->bufs = bufs;
        c->cap = ncap;
    }
    return c->bufs[c->nnames];
}

/* Fills hit->key for m. Returns MQ_ERR_NOMEM when an unescaped json string needs a buffer it cannot get. */
static enum mq_err mq_route_key(struct mq_route_call *c, const struct mq_route_map *m, const char *topic,
                                size_t topic_len, const void *payload, size_t payload_len,
                                struct mq_route_hit *hit)
{
    hit->key = NULL;
    hit->key_len = 0;
    switch (m->key_kind) {
    case MQ_KEY_TOPIC:
        hit->key = topic;
        hit->key_len = topic_len;
        break;
    case MQ_KEY_LEVEL: {
        const char *s;
        size_t n;
        if (mq_topic_level(topic, topic_len, m->key_level, &s, &n)) {
            hit->key = s;
            hit->key_len = n;
        }
        break;
    }
    case MQ_KEY_JSON: {
        struct mq_json_value v;
        if (!mq_json_pointer_eval(m->json, payload, payload_len, &v) || v.kind == MQ_JSON_NULL)
            break;
        if (v.kind != MQ_JSON_STRING) {
            hit->key = v.text;
            hit->key_len = v.len;
        } else if (!mq_json_string_escaped(&v)) {
            hit->key = v.text + 1;
            hit->key_len = v.len - 2;
        } else {
            char *buf = c->key_stack;
            if (v.len > sizeof(c->key_stack)) {
                free(c->key_heap);
                if (!(c->key_heap = malloc(v.len)))
                    return MQ_ERR_NOMEM;
                buf = c->key_heap;
            }
            hit->key = buf;
            hit->key_len = mq_json_string_decode(&v, buf);
        }
        break;
    }
    case MQ_KEY_NONE:
        break;
    }
    return MQ_OK;
}

static int32_t mq_route_partition(struct mq_route_map *m, const struct mq_route_hit *hit)
{
    if (hit->key)
        return mq_partition_for_key(hit->key, hit->key_len, m->partitions);
    unsigned pos = atomic_fetch_add_explicit(&m->rr, 1u, memory_order_relaxed);
    return (int32_t)(pos % (unsigned)m->partitions);
}

enum mq_err mq_route_match(struct mq_route_table *table, const char *broker, const char *topic,
                           size_t topic_len, const void *payload, size_t payload_len, mq_route_fn *fn,
                           void *opaque, int *nhits)
{
    if (nhits)
        *nhits = 0;
    if (!mq_topic_valid(topic, topic_len))
        return MQ_ERR_INVAL;
    struct mq_route_call c;
    c.names = c.names_stack;
    c.bufs = c.bufs_stack;
    c.nnames = 0;
    c.cap = MQ_ROUTE_STACK_NAMES;
    c.key_heap = NULL;
    enum mq_err err = MQ_OK;
    int hits = 0;
    for (size_t i = 0; i < table->nmaps && !err; i++) {
        struct mq_route_map *m = &table->maps[i];
        if (broker && m->broker && strcmp(broker, m->broker) != 0)
            continue;
        struct mq_span caps[MQ_ROUTE_MAX_REFS];
        bool matched = false;
        for (size_t f = 0; f < m->nfilters && !matched; f++)
            matched = mq_filter_match(m->filters[f], topic, topic_len, caps, m->max_ref);
        if (!matched)
            continue;
        const char *name = m->to;
        if (m->nparts > 0) {
            char *buf = mq_route_next_buf(&c);
            if (!buf) {
                err = MQ_ERR_NOMEM;
                break;
            }
            if (!mq_tpl_expand(m, topic, caps, buf)) {
                /* This message would give the mapping an empty level or an illegal topic name: the mapping
                 * does not take it (it goes to unmatched if no other does), and the operator hears of it. */
                int64_t now = mq_mono_ms();
                int64_t last = atomic_load_explicit(&table->refused_log_ms, memory_order_relaxed);
                if (now - last >= MQ_ROUTE_WARN_EVERY_MS &&
                    atomic_compare_exchange_strong(&table->refused_log_ms, &last, now))
                    MQ_WARN(
                        "mapping %zu (to: %s) gives no valid log topic name for MQTT topic '%.*s' (an empty "
                        "level, or too long): it does not take the message (this warning: at most every %d "
                        "s)",
                        i + 1, m->to, (int)(topic_len > 200 ? 200 : topic_len), topic,
                        MQ_ROUTE_WARN_EVERY_MS / 1000);
                continue;
            }
            name = buf;
        } else if (c.nnames == c.cap && !mq_route_next_buf(&c)) {
            err = MQ_ERR_NOMEM;
            break;
        }
        if (mq_route_seen(&c, name))
            continue;
        c.names[c.nnames++] = name;
        struct mq_route_hit hit = {.mapping = (int)i, .topic = name, .partitions = m->partitions};
        err = mq_route_key(&c, m, topic, topic_len, payload, payload_len, &hit);
        if (err)
            break;
        hit.partition = mq_route_partition(m, &hit);
        err = fn(opaque, &hit);
        hits++;
    }
    if (!err && hits == 0 && table->unmatched) {
        struct mq_route_hit hit = {.mapping = -1,
                                   .topic = table->unmatched,
                                   .partition = 0,
                                   .partitions = 1,
                                   .key = topic,
                                   .key_len = topic_len};
        err = fn(opaque, &hit);
        hits++;
    }
    if (c.names != c.names_stack) {
        free(c.names);
        free(c.bufs);
    }
    free(c.key_heap);
    if (nhits)
        *nhits = hits;
    return err;
}

/* One candidate subscription while computing a broker's set. */
struct mq_sub {
    const char *filter; /* as configured */
    const char *group;  /* the subscription group ("" for none) and its length */
    size_t group_len;
    const char *inner;
    int qos;
    bool dropped;
};

enum mq_err mq_route_subscriptions(const struct mq_route_table *table, const char *broker,
                                   const char *share_group, mq_route_sub_fn *fn, void *opaque)
{
    size_t n = table->unmatched ? 1 : 0;
    for (size_t i = 0; i < table->nmaps; i++)
        n += table->maps[i].nfilters;
    if (n == 0)
        return MQ_OK;
    struct mq_sub *subs = calloc(n, sizeof(*subs));
    if (!subs)
        return MQ_ERR_NOMEM;
    size_t k = 0;
    int max_qos = 0;
    for (size_t i = 0; i < table->nmaps; i++) {
        const struct mq_route_map *m = &table->maps[i];
        if (broker && m->broker && strcmp(broker, m->broker) != 0)
            continue;
        if (m->qos > max_qos)
            max_qos = m->qos;
        for (size_t f = 0; f < m->nfilters; f++) {
            struct mq_sub *s = &subs[k++];
            s->filter = m->filters[f];
            s->inner = mq_filter_inner(s->filter);
            s->qos = m->qos;
            if (s->inner != s->filter) {
                s->group = s->filter + 7; /* after "$share/" */
                s->group_len = (size_t)(s->inner - 1 - s->group);
            } else if (share_group) {
                s->group = share_group;
                s->group_len = strlen(share_group);
            } else {
                s->group = "";
            }
        }
    }
    /* Collecting unmatched messages means receiving every message: "#" (which the broker does not match
     * against its own $-topics), last, so that it covers the mappings' filters of its group and takes
     * their highest QoS. Messages arrive at that QoS or the publisher's, whichever is lower. */
    if (table->unmatched) {
        struct mq_sub *s = &subs[k++];
        s->filter = s->inner = "#";
        s->qos = max_qos;
        s->group = share_group ? share_group : "";
        s->group_len = strlen(s->group);
    }
    /* Identical subscriptions first, then covered ones: the survivor takes the highest QoS. */
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j < k; j++) {
            struct mq_sub *a = &subs[i], *b = &subs[j];
            if (i == j || a->dropped || b->dropped || a->group_len != b->group_len ||
                memcmp(a->group, b->group, a->group_len) != 0)
                continue;
            bool same = strcmp(a->inner, b->inner) == 0;
            if ((same && j > i) || (!same && mq_filter_covers(a->inner, b->inner))) {
                if (b->qos > a->qos)
                    a->qos = b->qos;
                b->dropped = true;
            }
        }
    }
    enum mq_err err = MQ_OK;
    for (size_t i = 0; i < k && !err; i++) {
        struct mq_sub *s = &subs[i];
        if (s->dropped)
            continue;
        if (s->inner != s->filter || !share_group) {
            err = fn(opaque, s->filter, s->qos);
            continue;
        }
        size_t len = strlen(share_group) + strlen(s->filter) + 9;
        char *shared = malloc(len);
        if (!shared) {
            err = MQ_ERR_NOMEM;
            break;
        }
        snprintf(shared, len, "$share/%s/%s", share_group, s->filter);
        err = fn(opaque, shared, s->qos);
        free(shared);
    }
    free(subs);
    return err;
}
