/*
 * acl.c - the rules of acl.h: operation names, glob patterns, and the rule set grouped by principal, so
 * that a request finds its principal's rules once and then tests each resource it names against those
 * only.
 */
#include "acl/acl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- operations ---- */

struct op_name {
    const char *name;
    unsigned ops;
};

static const struct op_name topic_ops[] = {
    {"describe", MQ_ACL_DESCRIBE},
    {"read", MQ_ACL_READ},
    {"describe_configs", MQ_ACL_DESCRIBE_CONFIGS},
    {"all", MQ_ACL_DESCRIBE | MQ_ACL_READ | MQ_ACL_DESCRIBE_CONFIGS},
    {NULL, 0},
};

static const struct op_name group_ops[] = {
    {"describe", MQ_ACL_DESCRIBE},
    {"read", MQ_ACL_READ},
    {"delete", MQ_ACL_DELETE},
    {"all", MQ_ACL_DESCRIBE | MQ_ACL_READ | MQ_ACL_DELETE},
    {NULL, 0},
};

unsigned mq_acl_op_parse(enum mq_acl_resource res, const char *name)
{
    for (const struct op_name *o = res == MQ_ACL_TOPIC ? topic_ops : group_ops; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o->ops;
    return 0;
}

const char *mq_acl_op_names(enum mq_acl_resource res)
{
    return res == MQ_ACL_TOPIC ? "describe, read, describe_configs, all" : "describe, read, delete, all";
}

/* ops with what they imply (acl.h). */
static unsigned implied(enum mq_acl_resource res, unsigned ops)
{
    if (ops & (MQ_ACL_READ | MQ_ACL_DELETE))
        ops |= MQ_ACL_DESCRIBE;
    if (res == MQ_ACL_TOPIC && (ops & MQ_ACL_DESCRIBE))
        ops |= MQ_ACL_DESCRIBE_CONFIGS;
    return ops;
}

/* ---- patterns ---- */

/* The end of the set whose '[' is at p[i]: the index of its ']', or 0 when it is not closed (the '[' is then
 * an ordinary character). A ']' right after the '[' (or after its '!' or '^') belongs to the set. */
static size_t set_end(const char *p, size_t i)
{
    size_t j = i + 1;
    if (p[j] == '!' || p[j] == '^')
        j++;
    if (p[j] == ']')
        j++;
    for (; p[j]; j++)
        if (p[j] == ']')
            return j;
    return 0;
}

/* True when c is in the set p[i..end] ('[' at i, ']' at end). */
static bool set_has(const char *p, size_t i, size_t end, unsigned char c)
{
    size_t j = i + 1;
    bool neg = p[j] == '!' || p[j] == '^';
    if (neg)
        j++;
    bool in = false;
    for (; j < end; j++) {
        unsigned char lo = (unsigned char)p[j], hi = lo;
        if (p[j + 1] == '-' && j + 2 < end) { /* a range a-z; a '-' first or last is itself */
            hi = (unsigned char)p[j + 2];
            j += 2;
        }
        if (c >= lo && c <= hi)
            in = true;
    }
    return in != neg;
}

bool mq_acl_glob_valid(const char *p, char *why, size_t size)
{
    if (!*p) {
        snprintf(why, size, "an empty pattern matches nothing");
        return false;
    }
    for (size_t i = 0; p[i]; i++) {
        if (p[i] == '\\') {
            if (!p[i + 1]) {
                snprintf(why, size, "'%s': the '\\' at its end escapes nothing", p);
                return false;
            }
            i++;
        } else if (p[i] == '[') {
            size_t end = set_end(p, i);
            if (!end) {
                snprintf(why, size, "'%s': the '[' at position %zu has no closing ']'", p, i + 1);
                return false;
            }
            i = end;
        }
    }
    return true;
}

/* Matches one character c against the pattern element at p[*i]; on a match *i moves past the element. */
static bool match_one(const char *p, size_t *i, unsigned char c)
{
    size_t k = *i;
    switch (p[k]) {
    case '?':
        *i = k + 1;
        return true;
    case '[': {
        size_t end = set_end(p, k);
        if (end) {
            if (!set_has(p, k, end, c))
                return false;
            *i = end + 1;
            return true;
        }
        break; /* an unclosed '[' is itself */
    }
    case '\\':
        if (p[k + 1]) {
            if ((unsigned char)p[k + 1] != c)
                return false;
            *i = k + 2;
            return true;
        }
        break;
    default:
        break;
    }
    if ((unsigned char)p[k] != c)
        return false;
    *i = k + 1;
    return true;
}

/* The usual linear matcher: on a mismatch, go back to the last '*' and let it take one more character. */
bool mq_acl_glob_match(const char *p, const char *s, size_t len)
{
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < len) {
        if (p[pi] == '*') {
            star_p = ++pi;
            star_s = si;
            continue;
        }
        if (p[pi] && match_one(p, &pi, (unsigned char)s[si])) {
            si++;
            continue;
        }
        if (star_p == SIZE_MAX)
            return false;
        pi = star_p;
        si = ++star_s;
    }
    while (p[pi] == '*')
        pi++;
    return !p[pi];
}

bool mq_acl_principal_valid(const char *s, char *why, size_t size)
{
    if (strncmp(s, "User:", 5) != 0 || !s[5]) {
        snprintf(why, size, "'%s' is not a principal: expected User:NAME (User:* for anyone)", s);
        return false;
    }
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(why, size, "a principal cannot hold control characters");
            return false;
        }
    return true;
}

/* ---- the rule set ---- */

struct grant {
    enum mq_acl_resource res;
    const char *pattern; /* in the set's string block */
    size_t len;
    bool literal; /* no wildcard: compared as bytes */
    unsigned ops; /* implied ones included */
};

struct mq_acl_who {
    const char *principal;
    const struct grant **grants; /* the principal's own rules, then User:*'s */
    size_t n;
};

struct mq_acl {
    struct grant *grants;
    size_t n_grants;
    struct mq_acl_who *whos; /* one per principal named, User:* left out */
    size_t n_whos;
    struct mq_acl_who anyone;  /* principals no rule names: User:*'s rules */
    const struct grant **refs; /* the arrays the whos point into */
    char *strings;
};

static bool has_wildcard(const char *p)
{
    return strpbrk(p, "*?[\\") != NULL;
}

void mq_acl_free(struct mq_acl *acl)
{
    if (!acl)
        return;
    free(acl->grants);
    free(acl->whos);
    free(acl->refs);
    free(acl->strings);
    free(acl);
}

enum mq_err mq_acl_new(const struct mq_acl_rule *rules, size_t n, struct mq_acl **aclp)
{
    struct mq_acl *acl = calloc(1, sizeof *acl);
    if (!acl)
        return MQ_ERR_NOMEM;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(rules[i].principal) + 1 + strlen(rules[i].pattern) + 1;
    acl->grants = calloc(n ? n : 1, sizeof *acl->grants);
    acl->whos = calloc(n ? n : 1, sizeof *acl->whos);
    acl->strings = malloc(bytes ? bytes : 1);
    if (!acl->grants || !acl->whos || !acl->strings) {
        mq_acl_free(acl);
        return MQ_ERR_NOMEM;
    }
    /* The grants, and the distinct principals in the order first named. */
    char *sp = acl->strings;
    const char **owner = calloc(n ? n : 1, sizeof *owner); /* grant i's principal, NULL for User:* */
    if (!owner) {
        mq_acl_free(acl);
        return MQ_ERR_NOMEM;
    }
    size_t n_any = 0;
    for (size_t i = 0; i < n; i++) {
        struct grant *g = &acl->grants[i];
        g->res = rules[i].res;
        g->len = strlen(rules[i].pattern);
        memcpy(sp, rules[i].pattern, g->len + 1);
        g->pattern = sp;
        sp += g->len + 1;
        g->literal = !has_wildcard(g->pattern);
        g->ops = implied(g->res, rules[i].ops);
        if (strcmp(rules[i].principal, MQ_ACL_ANYONE) == 0) {
            n_any++;
            continue;
        }
        size_t w;
        for (w = 0; w < acl->n_whos && strcmp(acl->whos[w].principal, rules[i].principal) != 0; w++)
            ;
        if (w == acl->n_whos) {
            size_t pl = strlen(rules[i].principal);
            memcpy(sp, rules[i].principal, pl + 1);
            acl->whos[acl->n_whos++].principal = sp;
            sp += pl + 1;
        }
        owner[i] = acl->whos[w].principal;
        acl->whos[w].n++;
    }
    acl->n_grants = n;
    /* Each principal's grants then User:*'s, in one array of references; User:*'s alone last. */
    size_t total = n_any;
    for (size_t w = 0; w < acl->n_whos; w++)
        total += acl->whos[w].n + n_any;
    acl->refs = calloc(total ? total : 1, sizeof *acl->refs);
    if (!acl->refs) {
        free(owner);
        mq_acl_free(acl);
        return MQ_ERR_NOMEM;
    }
    const struct grant **rp = acl->refs;
    for (size_t w = 0; w < acl->n_whos; w++) {
        struct mq_acl_who *who = &acl->whos[w];
        who->grants = rp;
        who->n = 0;
        for (size_t i = 0; i < n; i++)
            if (owner[i] == who->principal)
                rp[who->n++] = &acl->grants[i];
        for (size_t i = 0; i < n; i++)
            if (!owner[i])
                rp[who->n++] = &acl->grants[i];
        rp += who->n;
    }
    acl->anyone.principal = MQ_ACL_ANYONE;
    acl->anyone.grants = rp;
    for (size_t i = 0; i < n; i++)
        if (!owner[i])
            rp[acl->anyone.n++] = &acl->grants[i];
    free(owner);
    *aclp = acl;
    return MQ_OK;
}

const struct mq_acl_who *mq_acl_who(const struct mq_acl *acl, const char *principal)
{
    for (size_t w = 0; principal && w < acl->n_whos; w++)
        if (strcmp(acl->whos[w].principal, principal) == 0)
            return &acl->whos[w];
    return &acl->anyone;
}

unsigned mq_acl_granted(const struct mq_acl_who *who, enum mq_acl_resource res, const char *name, size_t len)
{
    unsigned ops = 0;
    for (size_t i = 0; i < who->n; i++) {
        const struct grant *g = who->grants[i];
        if (g->res != res || (ops | g->ops) == ops)
            continue; /* another resource type, or nothing this rule could add */
        if (g->literal ? g->len == len && memcmp(g->pattern, name, len) == 0
                       : mq_acl_glob_match(g->pattern, name, len))
            ops |= g->ops;
    }
    return ops;
}
