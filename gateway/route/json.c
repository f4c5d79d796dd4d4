/*
 * json.c - a strict recursive-descent JSON scanner that follows one compiled JSON pointer.
 *
 * The scanner never builds a tree: it validates the document in one pass and remembers the byte range of
 * the value the pointer names. Member names are compared with the pointer's tokens while they are decoded,
 * so escaped names ("\u0061") match their unescaped tokens without a buffer.
 */
#include "route/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mq_json_token {
    const char *s; /* unescaped, not NUL-terminated */
    size_t len;
    long index; /* the array index the token names, or -1 when it is not a canonical index */
};

struct mq_json_pointer {
    size_t ntok;
    struct mq_json_token tok[]; /* followed by the unescaped token bytes */
};

enum mq_err mq_json_pointer_compile(const char *ptr, struct mq_json_pointer **out, char *errstr,
                                    size_t errstr_size)
{
    if (!ptr)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "missing JSON pointer");
    if (*ptr && *ptr != '/')
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "JSON pointer '%s' must be empty or start with '/'",
                       ptr);
    size_t ntok = 0, len = strlen(ptr);
    for (const char *p = ptr; *p; p++) {
        if (*p == '/')
            ntok++;
        else if (*p == '~' && p[1] != '0' && p[1] != '1')
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                           "JSON pointer '%s': '~' must be followed by 0 or 1 (~0 is '~', ~1 is '/')", ptr);
    }
    struct mq_json_pointer *jp = malloc(sizeof(*jp) + ntok * sizeof(jp->tok[0]) + len + 1);
    if (!jp)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    jp->ntok = ntok;
    char *w = (char *)&jp->tok[ntok];
    size_t t = 0;
    for (const char *p = ptr; *p;) {
        p++; /* the '/' */
        struct mq_json_token *tok = &jp->tok[t++];
        tok->s = w;
        while (*p && *p != '/') {
            if (*p == '~') {
                *w++ = p[1] == '0' ? '~' : '/';
                p += 2;
            } else {
                *w++ = *p++;
            }
        }
        tok->len = (size_t)(w - tok->s);
        /* RFC 6901: an array index is "0" or digits without a leading zero. */
        tok->index = -1;
        if (tok->len > 0 && tok->len <= 9 && (tok->s[0] != '0' || tok->len == 1)) {
            long v = 0;
            size_t i;
            for (i = 0; i < tok->len && tok->s[i] >= '0' && tok->s[i] <= '9'; i++)
                v = v * 10 + (tok->s[i] - '0');
            if (i == tok->len)
                tok->index = v;
        }
    }
    *out = jp;
    return MQ_OK;
}

void mq_json_pointer_free(struct mq_json_pointer *ptr)
{
    free(ptr);
}

struct mq_json_scan {
    const char *p, *end;
    const struct mq_json_pointer *ptr;
    int depth;
    bool found;
    struct mq_json_value value;
};

static int mq_json_hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes one character of a string body at *pp (which is not the closing quote) into out as UTF-8 (raw
 * bytes are passed through one at a time). Returns the number of bytes written, or -1 for invalid input. */
static int mq_json_char(const char **pp, const char *end, unsigned char out[4])
{
    const char *p = *pp;
    unsigned char c = (unsigned char)*p;
    if (c < 0x20)
        return -1;
    if (c != '\\') {
        out[0] = c;
        *pp = p + 1;
        return 1;
    }
    if (end - p < 2)
        return -1;
    char e = p[1];
    const char *simple = "\"\\/bfnrt", *as = "\"\\/\b\f\n\r\t";
    const char *hit = e ? strchr(simple, e) : NULL;
    if (hit) {
        out[0] = (unsigned char)as[hit - simple];
        *pp = p + 2;
        return 1;
    }
    if (e != 'u')
        return -1;
    int32_t cp = mq_json_hex4(p + 2, end);
    if (cp < 0)
        return -1;
    p += 6;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return -1; /* a low surrogate without its high half */
    if (cp >= 0xd800 && cp <= 0xdbff) {
        int lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? mq_json_hex4(p + 2, end) : -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
    }
    *pp = p;
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Scans a string at s->p (an opening quote). When cmp is given, *eq tells whether its decoded bytes equal
 * the token. */
static bool mq_json_string(struct mq_json_scan *s, const struct mq_json_token *cmp, bool *eq)
{
    const char *p = s->p + 1;
    size_t matched = 0;
    bool same = cmp != NULL;
    while (p < s->end && *p != '"') {
        unsigned char buf[4];
        int n = mq_json_char(&p, s->end, buf);
        if (n < 0)
            return false;
        if (same) {
            if (matched + (size_t)n > cmp->len || memcmp(cmp->s + matched, buf, (size_t)n) != 0)
                same = false;
            else
                matched += (size_t)n;
        }
    }
    if (p >= s->end)
        return false;
    s->p = p + 1;
    if (eq)
        *eq = same && matched == cmp->len;
    return true;
}

static void mq_json_ws(struct mq_json_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool mq_json_digits(struct mq_json_scan *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool mq_json_number(struct mq_json_scan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!mq_json_digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!mq_json_digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!mq_json_digits(s))
            return false;
    }
    return true;
}

static bool mq_json_literal(struct mq_json_scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* Scans one value at s->p (whitespace skipped before it). tok is the index of the pointer token the value's
 * children are compared with, or -1 when the value is off the pointer's path. */
static bool mq_json_value(struct mq_json_scan *s, long tok);

static bool mq_json_object(struct mq_json_scan *s, long tok)
{
    s->p++;
    mq_json_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    bool taken = false; /* the pointer follows the first member of a repeated name */
    for (;;) {
        if (s->p >= s->end || *s->p != '"')
            return false;
        bool eq = false;
        if (!mq_json_string(s, tok >= 0 && !taken ? &s->ptr->tok[tok] : NULL, &eq))
            return false;
        mq_json_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        if (!mq_json_value(s, eq ? tok + 1 : -1))
            return false;
        taken = taken || eq;
        mq_json_ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == '}') {
            s->p++;
            return true;
        }
        if (*s->p != ',')
            return false;
        s->p++;
        mq_json_ws(s);
    }
}

static bool mq_json_array(struct mq_json_scan *s, long tok)
{
    s->p++;
    mq_json_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return true;
    }
    long want = tok >= 0 ? s->ptr->tok[tok].index : -1;
    for (long i = 0;; i++) {
        if (!mq_json_value(s, want >= 0 && i == want ? tok + 1 : -1))
            return false;
        mq_json_ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == ']') {
            s->p++;
            return true;
        }
        if (*s->p != ',')
            return false;
        s->p++;
    }
}

static bool mq_json_value(struct mq_json_scan *s, long tok)
{
    mq_json_ws(s);
    if (s->p >= s->end)
        return false;
    bool target = tok >= 0 && (size_t)tok == s->ptr->ntok;
    if (target)
        tok = -1; /* below the target nothing is compared any more */
    const char *start = s->p;
    enum mq_json_kind kind;
    bool ok;
    switch (*s->p) {
    case '{':
    case '[':
        if (++s->depth > MQ_JSON_MAX_DEPTH)
            return false;
        kind = *s->p == '{' ? MQ_JSON_OBJECT : MQ_JSON_ARRAY;
        ok = kind == MQ_JSON_OBJECT ? mq_json_object(s, tok) : mq_json_array(s, tok);
        s->depth--;
        break;
    case '"':
        kind = MQ_JSON_STRING;
        ok = mq_json_string(s, NULL, NULL);
        break;
    case 't':
        kind = MQ_JSON_TRUE;
        ok = mq_json_literal(s, "true");
        break;
    case 'f':
        kind = MQ_JSON_FALSE;
        ok = mq_json_literal(s, "false");
        break;
    case 'n':
        kind = MQ_JSON_NULL;
        ok = mq_json_literal(s, "null");
        break;
    default:
        kind = MQ_JSON_NUMBER;
        ok = (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && mq_json_number(s);
        break;
    }
    if (ok && target) {
        s->found = true;
        s->value.kind = kind;
        s->value.text = start;
        s->value.len = (size_t)(s->p - start);
    }
    return ok;
}

bool mq_json_pointer_eval(const struct mq_json_pointer *ptr, const void *doc, size_t len,
                          struct mq_json_value *out)
{
    if (!doc)
        return false;
    struct mq_json_scan s = {.p = doc, .end = (const char *)doc + len, .ptr = ptr};
    if (!mq_json_value(&s, 0))
        return false;
    mq_json_ws(&s);
    if (s.p != s.end || !s.found)
        return false;
    *out = s.value;
    return true;
}

bool mq_json_string_escaped(const struct mq_json_value *v)
{
    return memchr(v->text, '\\', v->len) != NULL;
}

size_t mq_json_string_decode(const struct mq_json_value *v, char *buf)
{
    const char *p = v->text + 1, *end = v->text + v->len - 1;
    size_t n = 0;
    while (p < end) {
        unsigned char c[4];
        int k = mq_json_char(&p, end, c);
        if (k < 0)
            break; /* cannot happen for a value the scanner accepted */
        memcpy(buf + n, c, (size_t)k);
        n += (size_t)k;
    }
    return n;
}
