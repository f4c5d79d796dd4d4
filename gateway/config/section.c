/*
 * section.c - walks one YAML mapping with its section's key table (table.c): collects the keys (reporting
 * unknown ones, with a "did you mean", and duplicates), then parses each value in table order by its key's
 * type into the struct the section fills, with the key's default where the key is absent, and runs the
 * section's check hook. Also frees what a section's keys allocated.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl.h"
#include "config/config_int.h"
#include "route/route.h"
#include "util/parse.h"
#include "util/suggest.h"
#include "util/topic.h"
#include "util/url.h"

#define MQ_CFG_MAX_KEYS   32     /* keys in one section table */
#define MQ_CFG_MAX_VISITS 200000 /* nodes walked per load: aliases can make a small file huge */

static const char *mq_cnode_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "a value";
    }
}

/* YAML's spellings of null in a plain scalar (including the empty value of "key:"). */
bool mq_cnode_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)node->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static const yaml_node_t *mq_cnode(struct mq_cctx *ctx, yaml_node_item_t id)
{
    return yaml_document_get_node(ctx->doc, id);
}

/* Counts a node walked; false (reported once) when the document is unreasonably large. */
static bool mq_cvisit(struct mq_cctx *ctx, const yaml_node_t *node)
{
    if (++ctx->visits <= MQ_CFG_MAX_VISITS)
        return true;
    if (!ctx->too_big) {
        ctx->too_big = true;
        mq_cctx_error(ctx, node, "the configuration is too large (more than %d YAML nodes, counting aliases)",
                      MQ_CFG_MAX_VISITS);
    }
    return false;
}

/* What a key expects, for "expected ..." messages. */
static const char *mq_ctype_expect(const struct mq_ckey *k)
{
    switch (k->type) {
    case MQ_CT_STRING:
        return "a string";
    case MQ_CT_NAME:
        return "a name";
    case MQ_CT_PATH:
        return "a file name";
    case MQ_CT_INT:
        return "an integer";
    case MQ_CT_BOOL:
        return "true or false";
    case MQ_CT_SIZE:
        return "a size such as 4096, 512KiB or 256MiB";
    case MQ_CT_DURATION:
        return "a duration such as 500ms, 30s, 5m, 12h or 7d";
    case MQ_CT_SECONDS:
        return "whole seconds such as 60, 30s or 5m";
    case MQ_CT_ENUM:
        return "one of its values";
    case MQ_CT_URL:
        return "an mqtt:// or mqtts:// URL";
    case MQ_CT_HOSTPORT:
        return "HOST:PORT";
    case MQ_CT_FILTERS:
        return "a topic filter or a list of them";
    case MQ_CT_TEMPLATE:
        return "a log topic";
    case MQ_CT_KEY:
        return "a key strategy";
    case MQ_CT_UNMATCHED:
        return "drop or a log topic name";
    case MQ_CT_INCLUDE:
        return "a file name pattern or a list of them";
    case MQ_CT_MAP:
        return "a mapping of KEY: VALUE";
    case MQ_CT_LIST:
        return "a list";
    case MQ_CT_CHOICE:
        return "one of its values";
    case MQ_CT_SERVERS:
        return "HOST:PORT or a comma-separated list of them";
    case MQ_CT_GLOBS:
        return "a topic pattern or a list of them";
    case MQ_CT_REMOTE:
        return "a remote topic template";
    case MQ_CT_START:
        return "earliest, latest or @EPOCH_MS";
    case MQ_CT_PROPS:
        return "a mapping of NAME: VALUE";
    case MQ_CT_CHOICES:
        return "one of its values or a list of them";
    case MQ_CT_GRANTS:
        return "a mapping of PATTERN: [OPERATION, ...]";
    }
    return "a value";
}

/*
 * The text of a scalar value for key k, or NULL after reporting why there is none. *plain tells whether it
 * was written unquoted (integers and booleans must be, as YAML would otherwise make them strings).
 */
static const char *mq_cscalar(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                              bool *plain)
{
    if (node->type != YAML_SCALAR_NODE) {
        mq_cctx_error(ctx, node, "%s: expected %s, got %s", k->name, mq_ctype_expect(k), mq_cnode_kind(node));
        return NULL;
    }
    if (mq_cnode_null(node)) {
        mq_cctx_error(ctx, node, "%s: no value given (expected %s)", k->name, mq_ctype_expect(k));
        return NULL;
    }
    const char *v = (const char *)node->data.scalar.value;
    if (strlen(v) != node->data.scalar.length) {
        mq_cctx_error(ctx, node, "%s: the value contains a NUL character", k->name);
        return NULL;
    }
    *plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return v;
}

static void mq_cset_str(struct mq_cctx *ctx, char **field, const char *v)
{
    char *d = strdup(v);
    if (!d) {
        ctx->oom = true;
        return;
    }
    free(*field);
    *field = d;
}

/* Reports v outside [k->min, k->max], formatted as the key's type is written. */
static bool mq_cbounds(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                       const char *text, int64_t v, bool range_err)
{
    if (!range_err && v >= k->min && v <= k->max)
        return true;
    char lo[48], hi[48];
    if (k->type == MQ_CT_SIZE) {
        mq_config_fmt_size(k->min, lo, sizeof(lo));
        mq_config_fmt_size(k->max, hi, sizeof(hi));
    } else if (k->type == MQ_CT_DURATION || k->type == MQ_CT_SECONDS) {
        int64_t unit = k->type == MQ_CT_SECONDS ? 1000 : 1;
        mq_config_fmt_duration(k->min * unit, lo, sizeof(lo));
        mq_config_fmt_duration(k->max > INT64_MAX / 1000 ? k->max : k->max * unit, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%" PRId64, k->min);
        snprintf(hi, sizeof(hi), "%" PRId64, k->max);
    }
    mq_cctx_error(ctx, node, "%s: %s is out of range (%s to %s)", k->name, text, lo, hi);
    return false;
}

/*
 * Makes room for element n of the array at *arrp (elements of size bytes), which grows by one element at a
 * time: the capacity is the next power of two, so that n appends copy O(n) bytes in all (growing by one
 * element copied the whole array each time wherever realloc() cannot grow in place, as under ASan). False
 * when out of memory; *arrp is unchanged then.
 */
static bool mq_cgrow(void *arrp, size_t n, size_t size)
{
    if (n & (n - 1))
        return true; /* not a power of two (nor 0): the capacity is above n */
    size_t ncap = n ? n * 2 : 1;
    if (ncap > SIZE_MAX / size)
        return false;
    void *na = realloc(*(void **)arrp, ncap * size);
    if (!na)
        return false;
    *(void **)arrp = na;
    return true;
}

typedef void mq_cscalar_fn(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                           const char *v, void *base, struct mq_cset *seen);

/* Calls one() for a scalar node or each item of a list node (FILTERS, GLOBS and INCLUDE), with the set of
 * the list's values taken so far. */
static void mq_cscalar_list(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, void *base,
                            mq_cscalar_fn *one)
{
    struct mq_cset seen = {0};
    if (node->type == YAML_SEQUENCE_NODE) {
        if (node->data.sequence.items.start == node->data.sequence.items.top) {
            mq_cctx_error(ctx, node, "%s: empty list (expected %s)", k->name, mq_ctype_expect(k));
            return;
        }
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
             it++) {
            const yaml_node_t *item = mq_cnode(ctx, *it);
            bool plain;
            const char *v;
            if (!mq_cvisit(ctx, item))
                break;
            if (item->type != YAML_SCALAR_NODE)
                mq_cctx_error(ctx, item, "%s: expected %s, got a list item that is %s", k->name,
                              mq_ctype_expect(k), mq_cnode_kind(item));
            else if ((v = mq_cscalar(ctx, k, item, &plain)))
                one(ctx, k, item, v, base, &seen);
        }
        mq_cset_free(&seen);
        return;
    }
    bool plain;
    const char *v = mq_cscalar(ctx, k, node, &plain);
    if (v)
        one(ctx, k, node, v, base, &seen);
    mq_cset_free(&seen);
}

/* Appends v to the string list of key k (array at k->off, count at k->off2), refusing a repeat of what seen
 * holds (`what` names an element in the message). */
static void mq_clist_add(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, const char *v,
                         void *base, struct mq_cset *seen, const char *what)
{
    char ***arr = (char ***)((char *)base + k->off);
    size_t *n = (size_t *)((char *)base + k->off2);
    int added = mq_cset_add(seen, v, 0, NULL); /* v is the node's: it outlives the set */
    if (added < 0) {
        ctx->oom = true;
        return;
    }
    if (added == 0) {
        mq_cctx_error(ctx, node, "%s: %s '%s' is listed twice", k->name, what, v);
        return;
    }
    if (!mq_cgrow(arr, *n, sizeof(**arr))) {
        ctx->oom = true;
        return;
    }
    if (!((*arr)[*n] = strdup(v))) {
        ctx->oom = true;
        return;
    }
    (*n)++;
}

static void mq_cfilter_one(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                           const char *v, void *base, struct mq_cset *seen)
{
    char why[300];
    if (mq_filter_check(v, why, sizeof(why)) != MQ_OK) {
        mq_cctx_error(ctx, node, "%s: %s", k->name, why);
        return;
    }
    mq_clist_add(ctx, k, node, v, base, seen, "filter");
}

static void mq_cglob_one(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, const char *v,
                         void *base, struct mq_cset *seen)
{
    char why[400];
    if (!mq_cglob_valid(v, why, sizeof(why))) {
        mq_cctx_error(ctx, node, "%s: %s", k->name, why);
        return;
    }
    mq_clist_add(ctx, k, node, v, base, seen, "pattern");
}

/*
 * Parses a mapping of NAME: VALUE pairs (key k, type PROPS) in file order. A value is any scalar: numbers
 * and booleans written without quotes are taken as their text. Each pair passes k->prop.
 */
static void mq_cprops(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, void *base)
{
    if (node->type != YAML_MAPPING_NODE) {
        mq_cctx_error(ctx, node, "%s: expected %s, got %s", k->name, mq_ctype_expect(k),
                      mq_cnode_null(node) ? "no value" : mq_cnode_kind(node));
        return;
    }
    char ***names = (char ***)((char *)base + k->off);
    char ***values = (char ***)((char *)base + k->off2);
    size_t *n = (size_t *)((char *)base + k->off3);
    struct mq_cset seen = {0}; /* the names so far, each with its pair's index */
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        const yaml_node_t *key = mq_cnode(ctx, p->key), *val = mq_cnode(ctx, p->value);
        if (!mq_cvisit(ctx, key) || !mq_cvisit(ctx, val))
            break;
        if (key->type != YAML_SCALAR_NODE || mq_cnode_null(key) ||
            strlen((const char *)key->data.scalar.value) != key->data.scalar.length) {
            mq_cctx_error(ctx, key, "%s: expected a property name, got %s", k->name,
                          key->type == YAML_SCALAR_NODE ? "no name" : mq_cnode_kind(key));
            continue;
        }
        const char *name = (const char *)key->data.scalar.value;
        size_t first;
        int added = mq_cset_add(&seen, name, (size_t)(p - node->data.mapping.pairs.start), &first);
        if (added < 0) {
            ctx->oom = true;
            break;
        }
        if (added == 0) {
            const yaml_node_t *qk = mq_cnode(ctx, node->data.mapping.pairs.start[first].key);
            mq_cctx_error(ctx, key, "%s: duplicate property '%s' (first given at line %zu, column %zu)",
                          k->name, name, qk->start_mark.line + 1, qk->start_mark.column + 1);
            continue;
        }
        if (val->type != YAML_SCALAR_NODE) {
            mq_cctx_error(ctx, val, "%s: '%s': expected a string, a number or a boolean, got %s", k->name,
                          name, mq_cnode_kind(val));
            continue;
        }
        if (mq_cnode_null(val)) {
            mq_cctx_error(ctx, val, "%s: '%s': no value given", k->name, name);
            continue;
        }
        const char *v = (const char *)val->data.scalar.value;
        if (strlen(v) != val->data.scalar.length) {
            mq_cctx_error(ctx, val, "%s: '%s': the value contains a NUL character", k->name, name);
            continue;
        }
        char why[512];
        bool at_value = false;
        if (k->prop && !k->prop(name, v, &at_value, why, sizeof(why))) {
            mq_cctx_error(ctx, at_value ? val : key, "%s: %s", k->name, why);
            continue;
        }
        if (!mq_cgrow(names, *n, sizeof(**names)) || !mq_cgrow(values, *n, sizeof(**values))) {
            ctx->oom = true;
            break;
        }
        char **nn = *names, **nv = *values;
        nn[*n] = strdup(name);
        nv[*n] = strdup(v);
        (*n)++; /* counted even when a copy failed, so that mq_csection_free frees the other */
        if (!nn[*n - 1] || !nv[*n - 1]) {
            ctx->oom = true;
            break;
        }
    }
    mq_cset_free(&seen);
}

static void mq_cinclude_one(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                            const char *v, void *base, struct mq_cset *seen)
{
    (void)k;
    (void)base;
    (void)seen; /* a repeated include is refused by the loader, which knows the files' real names */
    mq_cinclude(ctx, node, v);
}

/* Parses the list of sections at node into the element array of key k. */
static void mq_clist(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, void *base)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        mq_cctx_error(ctx, node, "%s: expected a list (entries starting with '- '), got %s", k->name,
                      mq_cnode_null(node) ? "no value" : mq_cnode_kind(node));
        return;
    }
    char **arr = (char **)((char *)base + k->off);
    size_t *n = (size_t *)((char *)base + k->off2);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        const yaml_node_t *item = mq_cnode(ctx, *it);
        if (!mq_cgrow(arr, *n, k->sub->size)) {
            ctx->oom = true;
            return;
        }
        void *elem = *arr + *n * k->sub->size;
        memset(elem, 0, k->sub->size);
        (*n)++; /* counted before parsing, so that a half-parsed element is freed */
        mq_csection_parse(ctx, k->sub, item, elem);
        if (ctx->too_big)
            return;
    }
}

/* One operation name of a pattern of a GRANTS key (item), ORed into *ops unless listed before. */
static void mq_cgrant_op(struct mq_cctx *ctx, const struct mq_ckey *k, const char *pattern,
                         const yaml_node_t *item, unsigned *ops)
{
    enum mq_acl_resource res = (enum mq_acl_resource)k->res;
    if (item->type != YAML_SCALAR_NODE || mq_cnode_null(item)) {
        mq_cctx_error(ctx, item, "%s: '%s': expected an operation (%s), got %s", k->name, pattern,
                      mq_acl_op_names(res),
                      item->type == YAML_SCALAR_NODE ? "no value" : mq_cnode_kind(item));
        return;
    }
    const char *v = (const char *)item->data.scalar.value;
    unsigned op = mq_acl_op_parse(res, v);
    if (!op)
        mq_cctx_error(ctx, item, "%s: '%s': unknown operation '%s' (expected %s)", k->name, pattern, v,
                      mq_acl_op_names(res));
    else if ((*ops & op) == op)
        mq_cctx_error(ctx, item, "%s: '%s': operation '%s' is listed twice", k->name, pattern, v);
    else
        *ops |= op;
}

/* The operations of one pattern of a GRANTS key: a name or a list of names (node), each once. */
static unsigned mq_cgrant_ops(struct mq_cctx *ctx, const struct mq_ckey *k, const char *pattern,
                              const yaml_node_t *node)
{
    unsigned ops = 0;
    if (node->type != YAML_SEQUENCE_NODE) {
        mq_cgrant_op(ctx, k, pattern, node, &ops);
        return ops;
    }
    if (node->data.sequence.items.start == node->data.sequence.items.top)
        mq_cctx_error(ctx, node, "%s: '%s': empty list of operations (expected some of %s)", k->name, pattern,
                      mq_acl_op_names((enum mq_acl_resource)k->res));
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        const yaml_node_t *item = mq_cnode(ctx, *it);
        if (!mq_cvisit(ctx, item))
            break;
        mq_cgrant_op(ctx, k, pattern, item, &ops);
    }
    return ops;
}

/*
 * Parses a mapping of PATTERN: OPERATIONS (key k, type GRANTS) in file order: each pattern checked for
 * k->res (topic patterns: topic characters and wildcards; group patterns: any text with well-formed sets),
 * each once.
 */
static void mq_cgrants(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, void *base)
{
    if (node->type != YAML_MAPPING_NODE) {
        mq_cctx_error(ctx, node, "%s: expected %s, got %s", k->name, mq_ctype_expect(k),
                      mq_cnode_null(node) ? "no value" : mq_cnode_kind(node));
        return;
    }
    char ***patterns = (char ***)((char *)base + k->off);
    unsigned **ops = (unsigned **)((char *)base + k->off2);
    size_t *n = (size_t *)((char *)base + k->off3);
    struct mq_cset seen = {0};
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        const yaml_node_t *key = mq_cnode(ctx, p->key), *val = mq_cnode(ctx, p->value);
        if (!mq_cvisit(ctx, key) || !mq_cvisit(ctx, val))
            break;
        if (key->type != YAML_SCALAR_NODE || mq_cnode_null(key) ||
            strlen((const char *)key->data.scalar.value) != key->data.scalar.length) {
            mq_cctx_error(ctx, key, "%s: expected a pattern, got %s", k->name,
                          key->type == YAML_SCALAR_NODE ? "no pattern" : mq_cnode_kind(key));
            continue;
        }
        const char *pat = (const char *)key->data.scalar.value;
        char why[400];
        if (k->res == MQ_ACL_TOPIC ? !mq_cglob_valid(pat, why, sizeof why)
                                   : !mq_acl_glob_valid(pat, why, sizeof why)) {
            mq_cctx_error(ctx, key, "%s: %s", k->name, why);
            continue;
        }
        size_t first;
        int added = mq_cset_add(&seen, pat, (size_t)(p - node->data.mapping.pairs.start), &first);
        if (added < 0) {
            ctx->oom = true;
            break;
        }
        if (added == 0) {
            const yaml_node_t *qk = mq_cnode(ctx, node->data.mapping.pairs.start[first].key);
            mq_cctx_error(ctx, key, "%s: pattern '%s' is given twice (first at line %zu, column %zu)",
                          k->name, pat, qk->start_mark.line + 1, qk->start_mark.column + 1);
            continue;
        }
        unsigned granted = mq_cgrant_ops(ctx, k, pat, val);
        if (!granted)
            continue; /* reported */
        if (!mq_cgrow(patterns, *n, sizeof **patterns) || !mq_cgrow(ops, *n, sizeof **ops)) {
            ctx->oom = true;
            break;
        }
        (*ops)[*n] = granted;
        (*patterns)[*n] = strdup(pat);
        (*n)++; /* counted even when the copy failed, so that mq_csection_free frees the arrays */
        if (!(*patterns)[*n - 1]) {
            ctx->oom = true;
            break;
        }
    }
    mq_cset_free(&seen);
}

/* The entry of k's enums named v, or NULL after reporting the names it could have been (ENUM, CHOICE). */
static const struct mq_cenum *mq_cenum_find(struct mq_cctx *ctx, const struct mq_ckey *k,
                                            const yaml_node_t *node, const char *v)
{
    for (const struct mq_cenum *e = k->enums; e->name; e++)
        if (strcmp(e->name, v) == 0)
            return e;
    char list[200] = "";
    for (const struct mq_cenum *e = k->enums; e->name; e++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", e == k->enums ? "" : ", ",
                 e->name);
    mq_cctx_error(ctx, node, "%s: expected one of %s; got '%s'", k->name, list, v);
    return NULL;
}

/* One name of a CHOICES list: its bit joins the set at k->off. */
static void mq_cchoice_one(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                           const char *v, void *base, struct mq_cset *seen)
{
    const struct mq_cenum *e = mq_cenum_find(ctx, k, node, v);
    if (!e)
        return;
    int added = mq_cset_add(seen, v, 0, NULL); /* v is the node's: it outlives the set */
    if (added < 0)
        ctx->oom = true;
    else if (added == 0)
        mq_cctx_error(ctx, node, "%s: '%s' is listed twice", k->name, v);
    else
        *(unsigned *)((char *)base + k->off) |= 1u << e->value;
}

/* Parses the value of key k (node) into the struct at base; node NULL parses the key's default text. */
static void mq_ckey_parse(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, void *base)
{
    void *field = (char *)base + k->off;
    switch (k->type) {
    case MQ_CT_MAP:
        mq_csection_parse(ctx, k->sub, node, field);
        return;
    case MQ_CT_LIST:
        if (node)
            mq_clist(ctx, k, node, base);
        return;
    case MQ_CT_FILTERS:
        if (node)
            mq_cscalar_list(ctx, k, node, base, mq_cfilter_one);
        return;
    case MQ_CT_INCLUDE:
        if (node)
            mq_cscalar_list(ctx, k, node, base, mq_cinclude_one);
        return;
    case MQ_CT_GLOBS:
        if (node)
            mq_cscalar_list(ctx, k, node, base, mq_cglob_one);
        return;
    case MQ_CT_PROPS:
        if (node)
            mq_cprops(ctx, k, node, base);
        return;
    case MQ_CT_CHOICES:
        if (node)
            mq_cscalar_list(ctx, k, node, base, mq_cchoice_one);
        return;
    case MQ_CT_GRANTS:
        if (node)
            mq_cgrants(ctx, k, node, base);
        return;
    default:
        break;
    }
    bool plain = true;
    const char *v = node ? mq_cscalar(ctx, k, node, &plain) : k->def;
    if (!v)
        return;
    char why[400];
    int64_t num = 0;
    enum mq_err err;
    switch (k->type) {
    case MQ_CT_INT:
        if (!plain) {
            mq_cctx_error(ctx, node, "%s: expected an integer, got the quoted string \"%s\"", k->name, v);
            return;
        }
        err = mq_parse_int64(v, INT64_MIN, INT64_MAX, &num);
        if (err == MQ_ERR_INVAL) {
            mq_cctx_error(ctx, node, "%s: expected an integer, got '%s'", k->name, v);
            return;
        }
        if (mq_cbounds(ctx, k, node, v, num, err != MQ_OK))
            *(int64_t *)field = num;
        return;
    case MQ_CT_SIZE:
    case MQ_CT_DURATION:
        err = k->type == MQ_CT_SIZE ? mq_parse_size(v, &num) : mq_parse_duration_ms(v, &num);
        if (err == MQ_ERR_INVAL) {
            mq_cctx_error(ctx, node, "%s: expected %s, got '%s'", k->name, mq_ctype_expect(k), v);
            return;
        }
        if (mq_cbounds(ctx, k, node, v, num, err != MQ_OK))
            *(int64_t *)field = num;
        return;
    case MQ_CT_SECONDS:
        /* A bare number keeps meaning seconds, as it always did for these keys; units are converted. */
        err = mq_parse_int64(v, 0, INT64_MAX, &num);
        if (err == MQ_ERR_INVAL) {
            err = mq_parse_duration_ms(v, &num);
            if (err == MQ_OK && num % 1000 != 0) {
                mq_cctx_error(ctx, node, "%s: %s is not a whole number of seconds", k->name, v);
                return;
            }
            num /= 1000;
        }
        if (err == MQ_ERR_INVAL) {
            mq_cctx_error(ctx, node, "%s: expected %s, got '%s'", k->name, mq_ctype_expect(k), v);
            return;
        }
        if (mq_cbounds(ctx, k, node, v, num, err != MQ_OK))
            *(int64_t *)field = num;
        return;
    case MQ_CT_BOOL:
        if (plain && strcmp(v, "true") == 0)
            *(bool *)field = true;
        else if (plain && strcmp(v, "false") == 0)
            *(bool *)field = false;
        else
            mq_cctx_error(ctx, node, "%s: expected true or false, got %s'%s'", k->name,
                          plain ? "" : "the quoted string ", v);
        return;
    case MQ_CT_ENUM: {
        const struct mq_cenum *e = mq_cenum_find(ctx, k, node, v);
        if (e)
            *(int *)field = e->value;
        return;
    }
    case MQ_CT_CHOICE:
        if (mq_cenum_find(ctx, k, node, v))
            mq_cset_str(ctx, (char **)field, v);
        return;
    case MQ_CT_START:
        if (strcmp(v, "earliest") == 0) {
            *(int *)field = MQ_FWD_START_EARLIEST;
        } else if (strcmp(v, "latest") == 0) {
            *(int *)field = MQ_FWD_START_LATEST;
        } else if (v[0] == '@' && v[1] >= '0' && v[1] <= '9' &&
                   mq_parse_int64(v + 1, 0, INT64_MAX, &num) == MQ_OK) {
            *(int *)field = MQ_FWD_START_TIME;
            *(int64_t *)((char *)base + k->off2) = num;
        } else {
            mq_cctx_error(ctx, node,
                          "%s: expected earliest, latest or @EPOCH_MS (milliseconds since 1970, quoted: "
                          "\"@1700000000000\"), got '%s'",
                          k->name, v);
        }
        return;
    case MQ_CT_STRING:
        if (!*v) {
            mq_cctx_error(ctx, node, "%s: must not be empty", k->name);
            return;
        }
        break;
    case MQ_CT_NAME:
        if (!mq_cname_valid(v)) {
            mq_cctx_error(ctx, node, "%s: '%s' is not a valid name (1 to %d of a-z A-Z 0-9 . _ -)", k->name,
                          v, MQ_CFG_MAX_NAME);
            return;
        }
        break;
    case MQ_CT_PATH:
        if (!*v) {
            mq_cctx_error(ctx, node, "%s: empty file name", k->name);
            return;
        }
        if (v[0] != '/' && node) {
            /* Relative to the directory of the file the name is written in, not to mqlogd's cwd. */
            char *abs;
            if (asprintf(&abs, "%s/%s", ctx->dir, v) < 0) {
                ctx->oom = true;
                return;
            }
            free(*(char **)field);
            *(char **)field = abs;
            return;
        }
        break;
    case MQ_CT_URL:
        if (mq_url_parse(v, NULL, NULL, NULL, NULL, why, sizeof(why)) != MQ_OK) {
            mq_cctx_error(ctx, node, "%s: %s", k->name, why);
            return;
        }
        break;
    case MQ_CT_HOSTPORT:
        if (mq_url_hostport(v, false, k->min, k->max, NULL, NULL, NULL, why, sizeof(why)) != MQ_OK) {
            mq_cctx_error(ctx, node, "%s: %s", k->name, why);
            return;
        }
        break;
    case MQ_CT_TEMPLATE:
        if (mq_route_template_check(v, NULL, why, sizeof(why)) != MQ_OK) {
            mq_cctx_error(ctx, node, "%s: %s", k->name, why);
            return;
        }
        break;
    case MQ_CT_KEY:
        if (mq_route_key_check(v, NULL, why, sizeof(why)) != MQ_OK) {
            mq_cctx_error(ctx, node, "%s", why); /* why starts with "key '...'" already */
            return;
        }
        break;
    case MQ_CT_SERVERS:
        if (!mq_cservers_valid(v, why, sizeof(why))) {
            mq_cctx_error(ctx, node, "%s: %s", k->name, why);
            return;
        }
        break;
    case MQ_CT_REMOTE:
        if (!mq_cremote_valid(v, why, sizeof(why))) {
            mq_cctx_error(ctx, node, "%s: %s", k->name, why);
            return;
        }
        break;
    case MQ_CT_UNMATCHED:
        if (strcmp(v, "drop") == 0) {
            free(*(char **)field);
            *(char **)field = NULL;
            return;
        }
        if (!mq_topic_name_valid(v)) {
            mq_cctx_error(ctx, node,
                          "%s: expected drop or a log topic name (1 to %d of a-z A-Z 0-9 . _ -), got '%s'",
                          k->name, MQ_TOPIC_NAME_MAX, v);
            return;
        }
        break;
    default:
        return;
    }
    mq_cset_str(ctx, (char **)field, v);
}

/* Whether name is a word of key: "dir" of "data_dir", "retention" of "retention_bytes" is not (a prefix). */
static bool mq_cword_of(const char *key, const char *name)
{
    size_t lk = strlen(key), ln = strlen(name);
    return ln >= 3 && lk > ln + 1 && key[lk - ln - 1] == '_' && strcmp(key + lk - ln, name) == 0;
}

/*
 * A key that is misplaced rather than misspelt: the section (other than the one being parsed) under top
 * that has a key named name, or failing that a key name is the last word of; its key in *found. Depth
 * first; the table is a tree a few levels deep.
 */
static const struct mq_csection *mq_celsewhere(const struct mq_csection *top, const struct mq_csection * not,
                                               const char *name, bool exact, const char **found, int depth)
{
    if (depth > 8)
        return NULL;
    for (const struct mq_ckey *k = top->keys; k->name; k++) {
        if (top != not &&(exact ? strcmp(k->name, name) == 0 : mq_cword_of(k->name, name))) {
            *found = k->name;
            return top;
        }
    }
    for (const struct mq_ckey *k = top->keys; k->name; k++) {
        const struct mq_csection *in;
        if (k->sub && (in = mq_celsewhere(k->sub, not, name, exact, found, depth + 1)))
            return in;
    }
    return NULL;
}

static void mq_cunknown(struct mq_cctx *ctx, const struct mq_csection *sec, const yaml_node_t *key)
{
    const char *name = (const char *)key->data.scalar.value;
    struct mq_suggest sg;
    mq_suggest_init(&sg, name);
    sg.best_distance = 3; /* keys are long words: two edits away is still a typo (as before) */
    for (const struct mq_ckey *k = sec->keys; k->name; k++)
        mq_suggest_feed(&sg, k->name);
    const char *best = sg.best;
    const struct mq_csection *in = NULL;
    const char *found = NULL;
    if (!best && !(in = mq_celsewhere(&mq_csection_top, sec, name, true, &found, 0)))
        in = mq_celsewhere(&mq_csection_top, sec, name, false, &found, 0);
    if (best)
        mq_cctx_error(ctx, key, "unknown key '%s' in %s (did you mean '%s'?)", name, sec->what, best);
    else if (in == &mq_csection_top && sec == &mq_csection_mapfile)
        mq_cctx_error(ctx, key, "unknown key '%s' in %s ('%s' is a key of the main configuration file)", name,
                      sec->what, found);
    else if (in == &mq_csection_top)
        mq_cctx_error(ctx, key, "unknown key '%s' in %s (did you mean the top-level key '%s'?)", name,
                      sec->what, found);
    else if (in)
        mq_cctx_error(ctx, key, "unknown key '%s' in %s (did you mean '%s' in %s?)", name, sec->what, found,
                      in->what);
    else
        mq_cctx_error(ctx, key, "unknown key '%s' in %s", name, sec->what);
}

void mq_csection_parse(struct mq_cctx *ctx, const struct mq_csection *sec, const yaml_node_t *node, void *obj)
{
    const yaml_node_t *vals[MQ_CFG_MAX_KEYS] = {0}, *keys[MQ_CFG_MAX_KEYS] = {0};
    if (node && !mq_cvisit(ctx, node))
        return;
    if (sec->init)
        sec->init(obj);
    if (node && node->type != YAML_MAPPING_NODE) {
        mq_cctx_error(ctx, node, "%s must be a set of KEY: VALUE lines, got %s", sec->what,
                      mq_cnode_null(node) ? "no value" : mq_cnode_kind(node));
        return;
    }
    if (node) {
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
            const yaml_node_t *key = mq_cnode(ctx, p->key), *val = mq_cnode(ctx, p->value);
            if (key->type != YAML_SCALAR_NODE) {
                mq_cctx_error(ctx, key, "expected a key name in %s, got %s", sec->what, mq_cnode_kind(key));
                continue;
            }
            const char *name = (const char *)key->data.scalar.value;
            size_t i;
            for (i = 0; sec->keys[i].name && strcmp(sec->keys[i].name, name) != 0; i++)
                ;
            if (!sec->keys[i].name) {
                mq_cunknown(ctx, sec, key);
                continue;
            }
            if (keys[i]) {
                mq_cctx_error(ctx, key, "duplicate key '%s' (first given at line %zu, column %zu)", name,
                              keys[i]->start_mark.line + 1, keys[i]->start_mark.column + 1);
                continue;
            }
            keys[i] = key;
            vals[i] = val;
        }
    }
    for (size_t i = 0; sec->keys[i].name && !ctx->too_big; i++) {
        const struct mq_ckey *k = &sec->keys[i];
        if (vals[i] || k->type == MQ_CT_MAP || k->def)
            mq_ckey_parse(ctx, k, vals[i], obj);
        else if ((k->flags & MQ_CK_REQUIRED) && node)
            mq_cctx_error(ctx, node, "missing required key '%s' in %s", k->name, sec->what);
    }
    if (sec->check && !ctx->too_big)
        sec->check(ctx, obj, node, vals);
}

void mq_csection_free(const struct mq_csection *sec, void *obj)
{
    for (const struct mq_ckey *k = sec->keys; k->name; k++) {
        void *field = (char *)obj + k->off;
        switch (k->type) {
        case MQ_CT_STRING:
        case MQ_CT_NAME:
        case MQ_CT_PATH:
        case MQ_CT_URL:
        case MQ_CT_HOSTPORT:
        case MQ_CT_TEMPLATE:
        case MQ_CT_KEY:
        case MQ_CT_UNMATCHED:
        case MQ_CT_CHOICE:
        case MQ_CT_SERVERS:
        case MQ_CT_REMOTE:
            free(*(char **)field);
            break;
        case MQ_CT_PROPS: {
            char **names = *(char ***)field, **values = *(char ***)((char *)obj + k->off2);
            size_t n = *(size_t *)((char *)obj + k->off3);
            for (size_t i = 0; i < n; i++) {
                free(names[i]);
                free(values[i]);
            }
            free(names);
            free(values);
            break;
        }
        case MQ_CT_GRANTS: {
            char **arr = *(char ***)field;
            size_t n = *(size_t *)((char *)obj + k->off3);
            for (size_t i = 0; i < n; i++)
                free(arr[i]);
            free(arr);
            free(*(unsigned **)((char *)obj + k->off2));
            break;
        }
        case MQ_CT_GLOBS:
        case MQ_CT_FILTERS: {
            char **arr = *(char ***)field;
            size_t n = *(size_t *)((char *)obj + k->off2);
            for (size_t i = 0; i < n; i++)
                free(arr[i]);
            free(arr);
            break;
        }
        case MQ_CT_MAP:
            mq_csection_free(k->sub, field);
            break;
        case MQ_CT_LIST: {
            char *arr = *(char **)field;
            size_t n = *(size_t *)((char *)obj + k->off2);
            for (size_t i = 0; i < n; i++)
                mq_csection_free(k->sub, arr + i * k->sub->size);
            free(arr);
            break;
        }
        default:
            break;
        }
    }
    if (sec->fini)
        sec->fini(obj);
}
