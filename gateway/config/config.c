/*
 * config.c - loads the YAML configuration with libyaml's document API and walks it with the key tables of
 * table.c.
 *
 * Each section's keys are collected first (unknown and duplicate keys are reported there), then parsed in
 * table order rather than file order: brokers are known before mappings refer to them, and included
 * mapping files load after the file's own mappings. Every error is collected with its file and position and
 * reported at the end, sorted, so that one run shows everything that is wrong.
 */
#include "config/config.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config/table.h"
#include "route/route.h"
#include "util/diag.h"
#include "util/parse.h"
#include "util/topic.h"
#include "util/url.h"

#define MQ_CFG_MAX_ERRORS  1000   /* stop collecting after this many */
#define MQ_CFG_MAX_DEPTH   8      /* include nesting */
#define MQ_CFG_MAX_KEYS    32     /* keys in one section table */
#define MQ_CFG_MAX_VISITS  200000 /* nodes walked per load: aliases can make a small file huge */
#define MQ_CFG_MAX_NAME    64
#define MQ_CFG_MAX_PATTERN 1024 /* a log topic pattern (a topic name is shorter, a pattern can be longer) */

struct mq_cerr {
    size_t file;   /* index into cfg->files */
    int line, col; /* 1-based; line 0: no position */
    size_t seq;
    char *msg;
};

struct mq_cctx {
    struct mq_config *cfg;
    size_t file;     /* the file being read */
    const char *dir; /* its directory, absolute */
    yaml_document_t *doc;
    struct mq_cerr *errs;
    size_t nerrs, cap, dropped;
    bool oom;
    bool too_big;
    int depth;
    char **seen; /* real paths of the files loaded, to refuse cycles and double includes */
    size_t nseen;
    size_t visits;
};

/* ---- errors ---- */

static void mq_cctx_verror(struct mq_cctx *ctx, size_t file, int line, int col, const char *fmt, va_list ap)
{
    if (ctx->nerrs >= MQ_CFG_MAX_ERRORS) {
        ctx->dropped++;
        return;
    }
    if (ctx->nerrs == ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap * 2 : 16;
        struct mq_cerr *e = realloc(ctx->errs, ncap * sizeof(*e));
        if (!e) {
            ctx->oom = true;
            return;
        }
        ctx->errs = e;
        ctx->cap = ncap;
    }
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0) {
        ctx->oom = true;
        return;
    }
    ctx->errs[ctx->nerrs] =
        (struct mq_cerr){.file = file, .line = line, .col = col, .seq = ctx->nerrs, .msg = msg};
    ctx->nerrs++;
}

static void mq_cctx_error_at(struct mq_cctx *ctx, size_t file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void mq_cctx_error_at(struct mq_cctx *ctx, size_t file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mq_cctx_verror(ctx, file, line, col, fmt, ap);
    va_end(ap);
}

void mq_cctx_error(struct mq_cctx *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int line = node ? (int)node->start_mark.line + 1 : 0;
    int col = node ? (int)node->start_mark.column + 1 : 0;
    mq_cctx_verror(ctx, ctx->file, line, col, fmt, ap);
    va_end(ap);
}

void mq_cctx_oom(struct mq_cctx *ctx)
{
    ctx->oom = true;
}

struct mq_config *mq_cctx_config(struct mq_cctx *ctx)
{
    return ctx->cfg;
}

void mq_cctx_loc(struct mq_cctx *ctx, const yaml_node_t *node, struct mq_config_loc *loc)
{
    loc->file = ctx->cfg->files[ctx->file];
    loc->line = node ? (int)node->start_mark.line + 1 : 0;
    loc->col = node ? (int)node->start_mark.column + 1 : 0;
}

const yaml_node_t *mq_cctx_value(const struct mq_csection *sec, const yaml_node_t *const *vals,
                                 const char *name)
{
    for (size_t i = 0; sec->keys[i].name; i++)
        if (strcmp(sec->keys[i].name, name) == 0)
            return vals[i];
    return NULL;
}

static int mq_cerr_cmp(const void *a, const void *b)
{
    const struct mq_cerr *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- nodes ---- */

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
static bool mq_cnode_null(const yaml_node_t *node)
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

static bool mq_cname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MQ_CFG_MAX_NAME)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return true;
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
    } else if (k->type == MQ_CT_DURATION) {
        mq_config_fmt_duration(k->min, lo, sizeof(lo));
        mq_config_fmt_duration(k->max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%" PRId64, k->min);
        snprintf(hi, sizeof(hi), "%" PRId64, k->max);
    }
    mq_cctx_error(ctx, node, "%s: %s is out of range (%s to %s)", k->name, text, lo, hi);
    return false;
}

static void mq_csection_parse(struct mq_cctx *ctx, const struct mq_csection *sec, const yaml_node_t *node,
                              void *obj);
static void mq_cinclude(struct mq_cctx *ctx, const yaml_node_t *node, const char *pattern);

/* Calls one() for a scalar node or each item of a list node (FILTERS and INCLUDE). */
static void mq_cscalar_list(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, void *base,
                            void (*one)(struct mq_cctx *, const struct mq_ckey *, const yaml_node_t *,
                                        const char *, void *))
{
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
                return;
            if (item->type != YAML_SCALAR_NODE)
                mq_cctx_error(ctx, item, "%s: expected %s, got a list item that is %s", k->name,
                              mq_ctype_expect(k), mq_cnode_kind(item));
            else if ((v = mq_cscalar(ctx, k, item, &plain)))
                one(ctx, k, item, v, base);
        }
        return;
    }
    bool plain;
    const char *v = mq_cscalar(ctx, k, node, &plain);
    if (v)
        one(ctx, k, node, v, base);
}

/* Appends v to the string list of key k (array at k->off, count at k->off2), refusing a repeat (`what`
 * names an element in the message). */
static void mq_clist_add(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, const char *v,
                         void *base, const char *what)
{
    char ***arr = (char ***)((char *)base + k->off);
    size_t *n = (size_t *)((char *)base + k->off2);
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*arr)[i], v) == 0) {
            mq_cctx_error(ctx, node, "%s: %s '%s' is listed twice", k->name, what, v);
            return;
        }
    char **na = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (!na) {
        ctx->oom = true;
        return;
    }
    *arr = na;
    if (!(na[*n] = strdup(v))) {
        ctx->oom = true;
        return;
    }
    (*n)++;
}

static void mq_cfilter_one(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                           const char *v, void *base)
{
    char why[300];
    if (mq_filter_check(v, why, sizeof(why)) != MQ_OK) {
        mq_cctx_error(ctx, node, "%s: %s", k->name, why);
        return;
    }
    mq_clist_add(ctx, k, node, v, base, "filter");
}

/* Names a character for a message: 'x', or its code when it would not print. */
static const char *mq_cchar(unsigned char c, char *buf, size_t size)
{
    if (c > ' ' && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "character 0x%02x", c);
    return buf;
}

/*
 * A log topic pattern as fnmatch() reads it, restricted to what can match a topic name: topic characters
 * and the wildcards * ? and [SET] ([!SET] or [^SET] negates; a-z in a set is a range). A pattern without
 * wildcards must be a valid topic name itself.
 */
static bool mq_cglob_valid(const char *p, char *why, size_t size)
{
    char c1[24];
    bool wild = false;
    for (size_t i = 0; p[i]; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '*' || c == '?') {
            wild = true;
        } else if (c == '[') {
            size_t j = i + 1;
            if (p[j] == '!' || p[j] == '^')
                j++;
            size_t first = j;
            for (; p[j] && p[j] != ']'; j++)
                if (!mq_topic_name_char((unsigned char)p[j])) {
                    snprintf(why, size, "'%s': %s cannot be in a [set] of topic characters", p,
                             mq_cchar((unsigned char)p[j], c1, sizeof(c1)));
                    return false;
                }
            if (!p[j]) {
                snprintf(why, size, "'%s': the '[' at position %zu has no closing ']'", p, i + 1);
                return false;
            }
            if (j == first) {
                snprintf(why, size, "'%s': the set at position %zu is empty", p, i + 1);
                return false;
            }
            wild = true;
            i = j;
        } else if (c == ']') {
            snprintf(why, size, "'%s': ']' at position %zu without '['", p, i + 1);
            return false;
        } else if (!mq_topic_name_char(c)) {
            snprintf(why, size,
                     "'%s': %s cannot be in a topic pattern (a-z A-Z 0-9 . _ - and the wildcards * ? [ ])", p,
                     mq_cchar(c, c1, sizeof(c1)));
            return false;
        }
    }
    if (!wild && !mq_topic_name_valid(p)) {
        snprintf(why, size, "'%s' is not a valid topic name (" MQ_TOPIC_NAME_RULE ")", p);
        return false;
    }
    if (strlen(p) > MQ_CFG_MAX_PATTERN) {
        snprintf(why, size, "a pattern of %zu characters is too long (at most %d)", strlen(p),
                 MQ_CFG_MAX_PATTERN);
        return false;
    }
    return true;
}

static void mq_cglob_one(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node, const char *v,
                         void *base)
{
    char why[400];
    if (!mq_cglob_valid(v, why, sizeof(why))) {
        mq_cctx_error(ctx, node, "%s: %s", k->name, why);
        return;
    }
    mq_clist_add(ctx, k, node, v, base, "pattern");
}

/* Kafka's bootstrap.servers as the forwarder hands it over: HOST:PORT entries separated by commas (spaces
 * around an entry are allowed, as librdkafka allows them). */
static bool mq_cservers_valid(const char *s, char *why, size_t size)
{
    for (const char *p = s;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end == 0) {
            snprintf(why, size, "'%s': an empty entry (expected HOST:PORT[,HOST:PORT...])", s);
            return false;
        }
        char entry[300];
        if (end >= sizeof(entry)) {
            snprintf(why, size, "an entry of %zu characters is too long for a HOST:PORT", end);
            return false;
        }
        memcpy(entry, p, end);
        entry[end] = '\0';
        if (mq_url_hostport(entry, false, 1, 65535, NULL, NULL, NULL, why, size) != MQ_OK)
            return false;
        if (!p[len])
            return true;
        p += len + 1;
    }
}

/*
 * A remote topic template: topic characters and the placeholders {site} and {topic}. What it gives for a
 * sample site and topic must be a valid topic name (a longer site or topic name may still make a name too
 * long: that is known per topic only, and the forwarder reports it).
 */
static bool mq_cremote_valid(const char *t, char *why, size_t size)
{
    char sample[MQ_TOPIC_NAME_MAX + 2], c1[24];
    size_t n = 0;
    for (const char *p = t; *p; p++) {
        const char *add;
        if (*p == '{') {
            size_t len = strcspn(p + 1, "{}");
            if (p[1 + len] != '}') {
                snprintf(why, size, "'%s': the '{' at position %zu has no closing '}'", t,
                         (size_t)(p - t) + 1);
                return false;
            }
            if (len == 4 && strncmp(p + 1, "site", 4) == 0) {
                add = "s";
            } else if (len == 5 && strncmp(p + 1, "topic", 5) == 0) {
                add = "t";
            } else {
                snprintf(why, size, "'%s': unknown placeholder '{%.*s}' (there are {site} and {topic})", t,
                         (int)len, p + 1);
                return false;
            }
            p += len + 1;
        } else if (*p == '}') {
            snprintf(why, size, "'%s': '}' at position %zu without '{'", t, (size_t)(p - t) + 1);
            return false;
        } else if (!mq_topic_name_char((unsigned char)*p)) {
            snprintf(why, size, "'%s': %s cannot be in a topic name (" MQ_TOPIC_NAME_RULE ")", t,
                     mq_cchar((unsigned char)*p, c1, sizeof(c1)));
            return false;
        } else {
            add = NULL;
        }
        size_t alen = add ? strlen(add) : 1;
        if (n + alen < sizeof(sample)) {
            memcpy(sample + n, add ? add : p, alen);
            n += alen;
        } else {
            n = sizeof(sample); /* too long already */
        }
    }
    if (!mq_topic_name_valid_len(sample, n < sizeof(sample) ? n : sizeof(sample))) {
        snprintf(why, size, "'%s' does not give a valid topic name (" MQ_TOPIC_NAME_RULE ")", t);
        return false;
    }
    return true;
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
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        const yaml_node_t *key = mq_cnode(ctx, p->key), *val = mq_cnode(ctx, p->value);
        if (!mq_cvisit(ctx, key) || !mq_cvisit(ctx, val))
            return;
        if (key->type != YAML_SCALAR_NODE || mq_cnode_null(key) ||
            strlen((const char *)key->data.scalar.value) != key->data.scalar.length) {
            mq_cctx_error(ctx, key, "%s: expected a property name, got %s", k->name,
                          key->type == YAML_SCALAR_NODE ? "no name" : mq_cnode_kind(key));
            continue;
        }
        const char *name = (const char *)key->data.scalar.value;
        const yaml_node_pair_t *q;
        for (q = node->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *qk = mq_cnode(ctx, q->key);
            if (qk->type == YAML_SCALAR_NODE && strcmp((const char *)qk->data.scalar.value, name) == 0)
                break;
        }
        if (q < p) {
            const yaml_node_t *qk = mq_cnode(ctx, q->key);
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
        char **nn = realloc(*names, (*n + 1) * sizeof(*nn));
        if (nn)
            *names = nn;
        char **nv = realloc(*values, (*n + 1) * sizeof(*nv));
        if (nv)
            *values = nv;
        if (!nn || !nv) {
            ctx->oom = true;
            return;
        }
        nn[*n] = strdup(name);
        nv[*n] = strdup(v);
        (*n)++; /* counted even when a copy failed, so that mq_csection_free frees the other */
        if (!nn[*n - 1] || !nv[*n - 1]) {
            ctx->oom = true;
            return;
        }
    }
}

static void mq_cinclude_one(struct mq_cctx *ctx, const struct mq_ckey *k, const yaml_node_t *node,
                            const char *v, void *base)
{
    (void)k;
    (void)base;
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
        char *na = realloc(*arr, (*n + 1) * k->sub->size);
        if (!na) {
            ctx->oom = true;
            return;
        }
        *arr = na;
        void *elem = na + *n * k->sub->size;
        memset(elem, 0, k->sub->size);
        (*n)++; /* counted before parsing, so that a half-parsed element is freed */
        mq_csection_parse(ctx, k->sub, item, elem);
        if (ctx->too_big)
            return;
    }
}

/* Parses the value of key k (node) into the struct at base; node NULL parses the key's default text. */
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

/* Edit distance of two short names, for "did you mean" hints. */
static size_t mq_cdistance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MQ_CFG_MAX_NAME || lb > MQ_CFG_MAX_NAME)
        return SIZE_MAX;
    size_t row[MQ_CFG_MAX_NAME + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void mq_cunknown(struct mq_cctx *ctx, const struct mq_csection *sec, const yaml_node_t *key)
{
    const char *name = (const char *)key->data.scalar.value;
    const char *best = NULL;
    size_t bestd = 3; /* suggest only close names */
    for (const struct mq_ckey *k = sec->keys; k->name; k++) {
        size_t d = mq_cdistance(name, k->name);
        if (d < bestd) {
            bestd = d;
            best = k->name;
        }
    }
    if (best)
        mq_cctx_error(ctx, key, "unknown key '%s' in %s (did you mean '%s'?)", name, sec->what, best);
    else
        mq_cctx_error(ctx, key, "unknown key '%s' in %s", name, sec->what);
}

static void mq_csection_parse(struct mq_cctx *ctx, const struct mq_csection *sec, const yaml_node_t *node,
                              void *obj)
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

static void mq_csection_free(const struct mq_csection *sec, void *obj)
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

/* ---- files ---- */

static bool mq_cfiles_add(struct mq_cctx *ctx, const char *path, size_t *index)
{
    struct mq_config *cfg = ctx->cfg;
    char **nf = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*nf));
    if (!nf) {
        ctx->oom = true;
        return false;
    }
    cfg->files = nf;
    if (!(nf[cfg->nfiles] = strdup(path))) {
        ctx->oom = true;
        return false;
    }
    *index = cfg->nfiles++;
    return true;
}

static void mq_cyaml_error(struct mq_cctx *ctx, size_t file, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        ctx->oom = true;
        return;
    }
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    if (parser->error == YAML_READER_ERROR) {
        mq_cctx_error_at(ctx, file, 0, 0, "YAML syntax error: %s at byte %zu", problem,
                         parser->problem_offset);
        return;
    }
    int line = (int)parser->problem_mark.line + 1, col = (int)parser->problem_mark.column + 1;
    if (parser->context)
        mq_cctx_error_at(ctx, file, line, col, "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
                         parser->context, parser->context_mark.line + 1, parser->context_mark.column + 1);
    else
        mq_cctx_error_at(ctx, file, line, col, "YAML syntax error: %s", problem);
}

/*
 * Loads the file at path with the section table sec. from is the include entry that named it (errors about
 * opening it are reported there), NULL for the main file.
 */
static void mq_cload(struct mq_cctx *ctx, const char *path, const yaml_node_t *from,
                     const struct mq_csection *sec)
{
    size_t parent = ctx->file;
    const char *parent_dir = ctx->dir;
    yaml_document_t *parent_doc = ctx->doc;
    size_t file = 0;
    char *real = NULL, *dir = NULL;
    FILE *f = NULL;
    if (!from && !mq_cfiles_add(ctx, path, &file))
        return;
    struct stat st;
    const char *why = NULL;
    if (stat(path, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (!(real = realpath(path, NULL)) || !(f = fopen(path, "rb")))
        why = strerror(errno);
    if (why) {
        if (from)
            mq_cctx_error(ctx, from, "cannot read included file '%s': %s", path, why);
        else
            mq_cctx_error_at(ctx, file, 0, 0, "cannot read the configuration file: %s", why);
        goto out;
    }
    for (size_t i = 0; i < ctx->nseen; i++)
        if (strcmp(ctx->seen[i], real) == 0) {
            mq_cctx_error(ctx, from, "'%s' is included more than once (or includes itself)", path);
            goto out;
        }
    char **ns = realloc(ctx->seen, (ctx->nseen + 1) * sizeof(*ns));
    if (!ns) {
        ctx->oom = true;
        goto out;
    }
    ctx->seen = ns;
    ns[ctx->nseen++] = real;
    dir = strdup(real);
    if (!dir) {
        real = NULL;
        ctx->oom = true;
        goto out;
    }
    *strrchr(dir, '/') = '\0'; /* realpath() gives an absolute name: there is a '/' */
    if (!*dir)
        strcpy(dir, "/");
    real = NULL; /* owned by ctx->seen now */
    if (from && !mq_cfiles_add(ctx, path, &file))
        goto out;

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        ctx->oom = true;
        goto out;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        mq_cyaml_error(ctx, file, &parser);
        yaml_parser_delete(&parser);
        goto out;
    }
    ctx->file = file;
    ctx->dir = dir;
    ctx->doc = &doc;
    ctx->depth++;
    /* An empty file is an empty mapping: the defaults. */
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && mq_cnode_null(root))
        root = NULL; /* "---" alone: a null document */
    mq_csection_parse(ctx, sec, root, ctx->cfg);
    ctx->depth--;
    if (root) {
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            mq_cyaml_error(ctx, file, &parser);
        } else {
            yaml_node_t *nroot = yaml_document_get_root_node(&next);
            if (nroot)
                mq_cctx_error(ctx, nroot,
                              "a configuration file holds one YAML document; this is a second one");
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
out:
    if (f)
        fclose(f);
    free(real);
    free(dir);
    ctx->file = parent;
    ctx->dir = parent_dir;
    ctx->doc = parent_doc;
}

/* A directory a glob passes through that does not exist simply matches nothing; other errors count. */
static int mq_cglob_error(const char *path, int errnum)
{
    (void)path;
    return errnum != ENOENT && errnum != ENOTDIR;
}

static void mq_cinclude(struct mq_cctx *ctx, const yaml_node_t *node, const char *pattern)
{
    if (ctx->depth >= MQ_CFG_MAX_DEPTH) {
        mq_cctx_error(ctx, node, "include: mapping files nest more than %d deep", MQ_CFG_MAX_DEPTH);
        return;
    }
    char *full;
    if (pattern[0] == '/')
        full = strdup(pattern);
    else if (asprintf(&full, "%s/%s", ctx->dir, pattern) < 0)
        full = NULL;
    if (!full) {
        ctx->oom = true;
        return;
    }
    glob_t g;
    int rc = glob(full, 0, mq_cglob_error, &g);
    if (rc == GLOB_NOMATCH) {
        if (!strpbrk(pattern, "*?["))
            mq_cctx_error(ctx, node, "include: '%s' does not exist", full);
    } else if (rc == GLOB_NOSPACE) {
        ctx->oom = true;
    } else if (rc != 0) {
        mq_cctx_error(ctx, node, "include: cannot read the directories of '%s'", full);
    } else {
        /* glob() sorts the names, so files load in name order. */
        for (size_t i = 0; i < g.gl_pathc; i++)
            mq_cload(ctx, g.gl_pathv[i], node, &mq_csection_mapfile);
    }
    globfree(&g); /* glibc's glob() initialises g even when it fails */
    free(full);
}

/* ---- public API ---- */

void mq_config_free(struct mq_config *cfg)
{
    if (!cfg)
        return;
    mq_csection_free(&mq_csection_top, cfg);
    for (size_t i = 0; i < cfg->nfiles; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg);
}

enum mq_err mq_config_load(const char *path, struct mq_config **cfgp, mq_config_report_fn *report,
                           void *opaque)
{
    struct mq_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        if (report)
            report(opaque, "out of memory");
        else
            MQ_ERROR("%s: out of memory", path);
        return MQ_ERR_NOMEM;
    }
    struct mq_cctx ctx = {.cfg = cfg};
    mq_cload(&ctx, path, NULL, &mq_csection_top);
    if (ctx.nerrs > 1)
        qsort(ctx.errs, ctx.nerrs, sizeof(*ctx.errs), mq_cerr_cmp);
    for (size_t i = 0; i < ctx.nerrs; i++) {
        const struct mq_cerr *e = &ctx.errs[i];
        /* A node reached through several YAML aliases is reported at its anchor once, not once per alias. */
        if (i > 0 && e->file == e[-1].file && e->line == e[-1].line && e->col == e[-1].col &&
            strcmp(e->msg, e[-1].msg) == 0) {
            continue;
        }
        const char *file = e->file < cfg->nfiles ? cfg->files[e->file] : path;
        char *line;
        int n = e->line ? asprintf(&line, "%s:%d:%d: %s", file, e->line, e->col, e->msg)
                        : asprintf(&line, "%s: %s", file, e->msg);
        if (n < 0) {
            ctx.oom = true;
        } else {
            if (report)
                report(opaque, line);
            else
                MQ_ERROR("%s", line);
            free(line);
        }
    }
    for (size_t i = 0; i < ctx.nerrs; i++)
        free(ctx.errs[i].msg);
    if (ctx.dropped) {
        char line[128];
        snprintf(line, sizeof(line), "%s: %zu more errors not shown", path, ctx.dropped);
        if (report)
            report(opaque, line);
        else
            MQ_ERROR("%s", line);
    }
    if (ctx.oom) {
        if (report)
            report(opaque, "out of memory while loading the configuration");
        else
            MQ_ERROR("%s: out of memory while loading the configuration", path);
    }
    bool failed = ctx.nerrs > 0 || ctx.oom;
    enum mq_err err = ctx.oom ? MQ_ERR_NOMEM : failed ? MQ_ERR_CONFIG : MQ_OK;
    free(ctx.errs);
    for (size_t i = 0; i < ctx.nseen; i++)
        free(ctx.seen[i]);
    free(ctx.seen);
    if (failed) {
        mq_config_free(cfg);
        return err;
    }
    *cfgp = cfg;
    return MQ_OK;
}
