/*
 * json.c - the JSON reader of json.h: recursive descent over one buffer, each value a struct mq_json whose
 * array items and object members are held by value in one array (kids).
 */
#include "tool/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mq_jp {
    const char *p, *start, *end;
    char *err;
    size_t err_size;
    bool failed;
};

static bool mq_jp_fail(struct mq_jp *jp, const char *what)
{
    if (!jp->failed)
        snprintf(jp->err, jp->err_size, "%s at byte %zu", what, (size_t)(jp->p - jp->start));
    jp->failed = true;
    return false;
}

static void mq_jp_ws(struct mq_jp *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static bool mq_jp_word(struct mq_jp *jp, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
        return mq_jp_fail(jp, "unexpected character");
    jp->p += n;
    return true;
}

static int mq_jp_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static size_t mq_jp_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at jp->p (the opening quote), unescaped into a malloc'd C string. */
static char *mq_jp_string(struct mq_jp *jp)
{
    jp->p++; /* the opening quote */
    /* the unescaped string is never longer than its escaped form */
    const char *close = jp->p;
    while (close < jp->end && *close != '"')
        close += *close == '\\' && close + 1 < jp->end ? 2 : 1;
    if (close >= jp->end) {
        mq_jp_fail(jp, "unterminated string");
        return NULL;
    }
    char *s = malloc((size_t)(close - jp->p) + 1), *o = s;
    if (!s) {
        mq_jp_fail(jp, "out of memory");
        return NULL;
    }
    while (jp->p < close) {
        unsigned char c = (unsigned char)*jp->p;
        if (c < 0x20) {
            mq_jp_fail(jp, "control character in a string");
            break;
        }
        if (c != '\\') {
            *o++ = (char)c;
            jp->p++;
            continue;
        }
        char e = jp->p[1];
        jp->p += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char to[] = "\"\\/\b\f\n\r\t";
            *o++ = to[simple - "\"\\/bfnrt"];
            continue;
        }
        if (e != 'u' || close - jp->p < 4) {
            mq_jp_fail(jp, "bad escape in a string");
            break;
        }
        int cp = mq_jp_hex4(jp->p);
        jp->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && close - jp->p >= 6 && jp->p[0] == '\\' && jp->p[1] == 'u') {
            int lo = mq_jp_hex4(jp->p + 2);
            if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                jp->p += 6;
            }
        }
        if (cp <= 0 || (cp >= 0xD800 && cp < 0xE000)) {
            mq_jp_fail(jp, cp == 0 ? "\\u0000 in a string" : "bad \\u escape in a string");
            break;
        }
        o += mq_jp_utf8((unsigned)cp, o);
    }
    if (jp->failed) {
        free(s);
        return NULL;
    }
    *o = '\0';
    jp->p = close + 1;
    return s;
}

static bool mq_jp_number(struct mq_jp *jp, struct mq_json *v)
{
    const char *q = jp->p;
    bool integral = true;
    if (q < jp->end && *q == '-')
        q++;
    if (q >= jp->end || *q < '0' || *q > '9')
        return mq_jp_fail(jp, "unexpected character");
    if (*q == '0' && q + 1 < jp->end && q[1] >= '0' && q[1] <= '9')
        return mq_jp_fail(jp, "leading zero in a number");
    while (q < jp->end && ((*q >= '0' && *q <= '9') || strchr(".eE+-", *q))) {
        if (strchr(".eE", *q))
            integral = false;
        q++;
    }
    char buf[64];
    if ((size_t)(q - jp->p) >= sizeof buf)
        return mq_jp_fail(jp, "number too long");
    memcpy(buf, jp->p, (size_t)(q - jp->p));
    buf[q - jp->p] = '\0';
    char *endp;
    errno = 0;
    v->d = strtod(buf, &endp);
    if (*endp || !isfinite(v->d))
        return mq_jp_fail(jp, "malformed number");
    if (integral) {
        errno = 0;
        long long i = strtoll(buf, &endp, 10);
        v->integral = errno == 0 && *endp == '\0';
        v->i = v->integral ? (int64_t)i : (int64_t)v->d;
    } else {
        v->i = v->d >= 9.2e18 ? INT64_MAX : v->d <= -9.2e18 ? INT64_MIN : (int64_t)v->d;
    }
    v->type = MQ_JSON_NUMBER;
    jp->p = q;
    return true;
}

static void mq_json_clear(struct mq_json *v);

static bool mq_jp_value(struct mq_jp *jp, struct mq_json *v, int depth);

/* An array or object at jp->p; members get their key. */
static bool mq_jp_container(struct mq_jp *jp, struct mq_json *v, int depth)
{
    bool object = *jp->p == '{';
    char close = object ? '}' : ']';
    v->type = object ? MQ_JSON_OBJECT : MQ_JSON_ARRAY;
    if (depth >= MQ_JSON_MAX_DEPTH)
        return mq_jp_fail(jp, "nested too deep");
    jp->p++;
    mq_jp_ws(jp);
    if (jp->p < jp->end && *jp->p == close) {
        jp->p++;
        return true;
    }
    size_t cap = 0;
    for (;;) {
        struct mq_json item = {0};
        mq_jp_ws(jp);
        if (object) {
            if (jp->p >= jp->end || *jp->p != '"')
                return mq_jp_fail(jp, "expected a member name");
            if (!(item.key = mq_jp_string(jp)))
                return false;
            mq_jp_ws(jp);
            if (jp->p >= jp->end || *jp->p != ':') {
                free(item.key);
                return mq_jp_fail(jp, "expected ':'");
            }
            jp->p++;
        }
        if (!mq_jp_value(jp, &item, depth + 1)) {
            mq_json_clear(&item);
            return false;
        }
        if (v->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct mq_json *k = realloc(v->kids, ncap * sizeof *k);
            if (!k) {
                mq_json_clear(&item);
                return mq_jp_fail(jp, "out of memory");
            }
            v->kids = k;
            cap = ncap;
        }
        v->kids[v->n++] = item;
        mq_jp_ws(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == close) {
            jp->p++;
            return true;
        }
        return mq_jp_fail(jp, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool mq_jp_value(struct mq_jp *jp, struct mq_json *v, int depth)
{
    mq_jp_ws(jp);
    if (jp->p >= jp->end)
        return mq_jp_fail(jp, "unexpected end");
    switch (*jp->p) {
    case '{':
    case '[':
        return mq_jp_container(jp, v, depth);
    case '"':
        v->type = MQ_JSON_STRING;
        return (v->s = mq_jp_string(jp)) != NULL;
    case 't':
        v->type = MQ_JSON_BOOL;
        v->b = true;
        return mq_jp_word(jp, "true");
    case 'f':
        v->type = MQ_JSON_BOOL;
        return mq_jp_word(jp, "false");
    case 'n':
        v->type = MQ_JSON_NULL;
        return mq_jp_word(jp, "null");
    default:
        return mq_jp_number(jp, v);
    }
}

static void mq_json_clear(struct mq_json *v)
{
    for (size_t i = 0; i < v->n; i++)
        mq_json_clear(&v->kids[i]);
    free(v->kids);
    free(v->s);
    free(v->key);
}

bool mq_json_parse(const char *text, size_t len, struct mq_json **out, char *errstr, size_t errstr_size)
{
    struct mq_jp jp = {.p = text, .start = text, .end = text + len, .err = errstr, .err_size = errstr_size};
    struct mq_json *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    if (mq_jp_value(&jp, v, 0)) {
        mq_jp_ws(&jp);
        if (jp.p == jp.end) {
            *out = v;
            return true;
        }
        mq_jp_fail(&jp, "text after the value");
    }
    mq_json_free(v);
    return false;
}

void mq_json_free(struct mq_json *v)
{
    if (!v)
        return;
    mq_json_clear(v);
    free(v);
}

const struct mq_json *mq_json_get(const struct mq_json *v, const char *key)
{
    if (!v || v->type != MQ_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->kids[i].key, key) == 0)
            return &v->kids[i];
    return NULL;
}

const struct mq_json *mq_json_at(const struct mq_json *v, size_t i)
{
    return v && v->type == MQ_JSON_ARRAY && i < v->n ? &v->kids[i] : NULL;
}

size_t mq_json_len(const struct mq_json *v)
{
    return v && v->type == MQ_JSON_ARRAY ? v->n : 0;
}

int64_t mq_json_int(const struct mq_json *v, const char *key, int64_t dflt)
{
    const struct mq_json *m = mq_json_get(v, key);
    return m && m->type == MQ_JSON_NUMBER ? m->i : dflt;
}

double mq_json_num(const struct mq_json *v, const char *key, double dflt)
{
    const struct mq_json *m = mq_json_get(v, key);
    return m && m->type == MQ_JSON_NUMBER ? m->d : dflt;
}

bool mq_json_bool(const struct mq_json *v, const char *key, bool dflt)
{
    const struct mq_json *m = mq_json_get(v, key);
    return m && m->type == MQ_JSON_BOOL ? m->b : dflt;
}

const char *mq_json_str(const struct mq_json *v, const char *key, const char *dflt)
{
    const struct mq_json *m = mq_json_get(v, key);
    return m && m->type == MQ_JSON_STRING ? m->s : dflt;
}
