/*
 * recfmt.c - record filters (fnmatch globs on key and header values) and output formats (raw, JSON lines,
 * RFC 4180 CSV, kcat-like templates).
 */
#include "tool/recfmt.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- filters ---- */

bool mq_rfilter_add_header(struct mq_rfilter *f, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        snprintf(err, errlen, "--header '%s': expected KEY=VALUE (VALUE may be a glob)", arg);
        return false;
    }
    struct mq_rfilter_header *h = realloc(f->headers, (size_t)(f->nheaders + 1) * sizeof *h);
    char *key = strndup(arg, (size_t)(eq - arg));
    if (!h || !key) {
        free(key);
        if (h)
            f->headers = h;
        snprintf(err, errlen, "out of memory");
        return false;
    }
    f->headers = h;
    h[f->nheaders++] = (struct mq_rfilter_header){.key = key, .value = eq + 1};
    return true;
}

/* fnmatch on bytes that need not be NUL-terminated (nor free of NULs: such bytes never match). */
static bool mq_glob_bytes(const char *pattern, const void *p, int32_t n)
{
    if (n < 0 || memchr(p, 0, (size_t)n))
        return false;
    char small[256];
    char *s = (size_t)n < sizeof small ? small : malloc((size_t)n + 1);
    if (!s)
        return false;
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    bool ok = fnmatch(pattern, s, 0) == 0;
    if (s != small)
        free(s);
    return ok;
}

bool mq_rfilter_match(const struct mq_rfilter *f, const struct mq_record_view *rv)
{
    if (f->key && !mq_glob_bytes(f->key, rv->key, rv->key_len))
        return false;
    for (int i = 0; i < f->nheaders; i++) {
        size_t klen = strlen(f->headers[i].key);
        const uint8_t *cur = rv->headers;
        struct mq_header h;
        bool found = false;
        while (!found && mq_header_next(&cur, rv->headers_end, &h) == 1)
            found = (size_t)h.key_len == klen && memcmp(h.key, f->headers[i].key, klen) == 0 &&
                    mq_glob_bytes(f->headers[i].value, h.value, h.value_len);
        if (!found)
            return false;
    }
    return true;
}

void mq_rfilter_free(struct mq_rfilter *f)
{
    for (int i = 0; i < f->nheaders; i++)
        free((char *)f->headers[i].key);
    free(f->headers);
    f->headers = NULL;
    f->nheaders = 0;
}

/* ---- formats ---- */

enum mq_piece_kind {
    MQ_P_TEXT,
    MQ_P_TOPIC,
    MQ_P_PARTITION,
    MQ_P_OFFSET,
    MQ_P_TIMESTAMP,
    MQ_P_KEY,
    MQ_P_VALUE,
    MQ_P_KEY_LEN,
    MQ_P_VALUE_LEN,
    MQ_P_HEADERS,
    MQ_P_HEADER, /* %{NAME} */
};

struct mq_rfmt_piece {
    enum mq_piece_kind kind;
    char *text; /* MQ_P_TEXT: the literal (escapes resolved); MQ_P_HEADER: the header name */
    size_t len;
};

static bool mq_rfmt_push(struct mq_rfmt *fmt, enum mq_piece_kind kind, const char *text, size_t len)
{
    if (kind == MQ_P_TEXT && fmt->npieces && fmt->pieces[fmt->npieces - 1].kind == MQ_P_TEXT) {
        struct mq_rfmt_piece *last = &fmt->pieces[fmt->npieces - 1];
        char *t = realloc(last->text, last->len + len + 1);
        if (!t)
            return false;
        memcpy(t + last->len, text, len);
        last->len += len;
        t[last->len] = 0;
        last->text = t;
        return true;
    }
    struct mq_rfmt_piece *p = realloc(fmt->pieces, (size_t)(fmt->npieces + 1) * sizeof *p);
    if (!p)
        return false;
    fmt->pieces = p;
    char *t = NULL;
    if (text && !(t = strndup(text, len)))
        return false;
    p[fmt->npieces++] = (struct mq_rfmt_piece){.kind = kind, .text = t, .len = len};
    return true;
}

bool mq_rfmt_parse(struct mq_rfmt *fmt, const char *spec, char *err, size_t errlen)
{
    *fmt = (struct mq_rfmt){0};
    if (strcmp(spec, "raw") == 0 || strcmp(spec, "json") == 0 || strcmp(spec, "csv") == 0) {
        fmt->kind = spec[0] == 'r' ? MQ_RFMT_RAW : spec[0] == 'j' ? MQ_RFMT_JSON : MQ_RFMT_CSV;
        return true;
    }
    if (!strchr(spec, '%')) {
        snprintf(err, errlen,
                 "--format '%s': expected raw, json, csv or a template with %%-fields such as "
                 "'%%t %%o %%s\\n'",
                 spec);
        return false;
    }
    fmt->kind = MQ_RFMT_TEMPLATE;
    static const char fields[] = "tpoTksKSh";
    static const enum mq_piece_kind kinds[] = {MQ_P_TOPIC,     MQ_P_PARTITION, MQ_P_OFFSET,
                                               MQ_P_TIMESTAMP, MQ_P_KEY,       MQ_P_VALUE,
                                               MQ_P_KEY_LEN,   MQ_P_VALUE_LEN, MQ_P_HEADERS};
    for (const char *p = spec; *p;) {
        bool ok = true;
        if (*p == '%') {
            const char *f = p[1] ? strchr(fields, p[1]) : NULL;
            if (p[1] == '%') {
                ok = mq_rfmt_push(fmt, MQ_P_TEXT, "%", 1);
                p += 2;
            } else if (p[1] == '{') {
                const char *close = strchr(p + 2, '}');
                if (!close || close == p + 2) {
                    snprintf(err, errlen, "--format: '%%{' at column %d needs a header name and '}'",
                             (int)(p - spec) + 1);
                    mq_rfmt_free(fmt);
                    return false;
                }
                ok = mq_rfmt_push(fmt, MQ_P_HEADER, p + 2, (size_t)(close - p - 2));
                p = close + 1;
            } else if (f) {
                ok = mq_rfmt_push(fmt, kinds[f - fields], NULL, 0);
                p += 2;
            } else {
                snprintf(
                    err, errlen,
                    "--format: unknown field '%%%.1s' at column %d (known: %%t %%p %%o %%T %%k %%s %%K %%S "
                    "%%h %%{NAME} %%%%)",
                    p[1] ? p + 1 : "", (int)(p - spec) + 1);
                mq_rfmt_free(fmt);
                return false;
            }
        } else if (*p == '\\' && p[1]) {
            char c = p[1] == 'n' ? '\n' : p[1] == 't' ? '\t' : p[1] == 'r' ? '\r' : p[1] == '0' ? '\0' : p[1];
            ok = mq_rfmt_push(fmt, MQ_P_TEXT, &c, 1);
            p += 2;
        } else {
            size_t n = strcspn(p, "%\\");
            if (n == 0)
                n = 1; /* a trailing backslash */
            ok = mq_rfmt_push(fmt, MQ_P_TEXT, p, n);
            p += n;
        }
        if (!ok) {
            snprintf(err, errlen, "out of memory");
            mq_rfmt_free(fmt);
            return false;
        }
    }
    return true;
}

void mq_rfmt_free(struct mq_rfmt *fmt)
{
    for (int i = 0; i < fmt->npieces; i++)
        free(fmt->pieces[i].text);
    free(fmt->pieces);
    fmt->pieces = NULL;
    fmt->npieces = 0;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF; empty for null. */
static void mq_csv_field(struct mq_out *out, const uint8_t *p, int32_t n)
{
    if (n <= 0)
        return;
    bool quote = false;
    for (int32_t i = 0; i < n && !quote; i++)
        quote = p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n';
    if (!quote) {
        mq_out_bytes(out, p, (size_t)n);
        return;
    }
    mq_out_char(out, '"');
    const uint8_t *start = p, *end = p + n;
    for (const uint8_t *q; (q = memchr(start, '"', (size_t)(end - start))); start = q + 1) {
        mq_out_bytes(out, start, (size_t)(q - start) + 1);
        mq_out_char(out, '"');
    }
    mq_out_bytes(out, start, (size_t)(end - start));
    mq_out_char(out, '"');
}

static void mq_emit_json(struct mq_out *out, const char *topic, int32_t partition,
                         const struct mq_record_view *rv)
{
    mq_out_str(out, "{\"topic\":");
    mq_out_json_string(out, (const uint8_t *)topic, strlen(topic)); /* topic names are ASCII */
    mq_out_str(out, ",\"partition\":");
    mq_out_int(out, partition);
    mq_out_str(out, ",\"offset\":");
    mq_out_int(out, rv->offset);
    mq_out_str(out, ",\"timestamp\":");
    mq_out_int(out, rv->timestamp);
    mq_out_char(out, ',');
    mq_out_json_bytes(out, "key", rv->key, rv->key_len);
    mq_out_char(out, ',');
    mq_out_json_bytes(out, "value", rv->value, rv->value_len);
    mq_out_str(out, ",\"headers\":[");
    const uint8_t *cur = rv->headers;
    struct mq_header h;
    for (int32_t i = 0; mq_header_next(&cur, rv->headers_end, &h) == 1; i++) {
        mq_out_str(out, i ? ",{" : "{");
        mq_out_json_bytes(out, "key", (const uint8_t *)h.key, h.key_len);
        mq_out_char(out, ',');
        mq_out_json_bytes(out, "value", h.value, h.value_len);
        mq_out_char(out, '}');
    }
    mq_out_str(out, "]}\n");
}

static void mq_emit_template(const struct mq_rfmt *fmt, struct mq_out *out, const char *topic,
                             int32_t partition, const struct mq_record_view *rv)
{
    for (int i = 0; i < fmt->npieces; i++) {
        const struct mq_rfmt_piece *pc = &fmt->pieces[i];
        switch (pc->kind) {
        case MQ_P_TEXT:
            mq_out_bytes(out, pc->text, pc->len);
            break;
        case MQ_P_TOPIC:
            mq_out_str(out, topic);
            break;
        case MQ_P_PARTITION:
            mq_out_int(out, partition);
            break;
        case MQ_P_OFFSET:
            mq_out_int(out, rv->offset);
            break;
        case MQ_P_TIMESTAMP:
            mq_out_int(out, rv->timestamp);
            break;
        case MQ_P_KEY:
            if (rv->key_len > 0)
                mq_out_bytes(out, rv->key, (size_t)rv->key_len);
            break;
        case MQ_P_VALUE:
            if (rv->value_len > 0)
                mq_out_bytes(out, rv->value, (size_t)rv->value_len);
            break;
        case MQ_P_KEY_LEN:
            mq_out_int(out, rv->key_len);
            break;
        case MQ_P_VALUE_LEN:
            mq_out_int(out, rv->value_len);
            break;
        case MQ_P_HEADERS:
        case MQ_P_HEADER: {
            const uint8_t *cur = rv->headers;
            struct mq_header h;
            bool first = true;
            while (mq_header_next(&cur, rv->headers_end, &h) == 1) {
                if (pc->kind == MQ_P_HEADER) {
                    if ((size_t)h.key_len != pc->len || memcmp(h.key, pc->text, pc->len) != 0)
                        continue;
                } else {
                    if (!first)
                        mq_out_char(out, ',');
                    mq_out_bytes(out, h.key, (size_t)h.key_len);
                    mq_out_char(out, '=');
                }
                first = false;
                if (h.value_len > 0)
                    mq_out_bytes(out, h.value, (size_t)h.value_len);
                if (pc->kind == MQ_P_HEADER)
                    break; /* the first header of that name: mqlogd writes each MQTT header once */
            }
            break;
        }
        }
    }
}

void mq_rfmt_emit(const struct mq_rfmt *fmt, struct mq_out *out, const char *topic, int32_t partition,
                  const struct mq_record_view *rv)
{
    switch (fmt->kind) {
    case MQ_RFMT_RAW:
        if (rv->value_len > 0)
            mq_out_bytes(out, rv->value, (size_t)rv->value_len);
        mq_out_char(out, '\n');
        break;
    case MQ_RFMT_JSON:
        mq_emit_json(out, topic, partition, rv);
        break;
    case MQ_RFMT_CSV:
        mq_out_str(out, topic);
        mq_out_char(out, ',');
        mq_out_int(out, partition);
        mq_out_char(out, ',');
        mq_out_int(out, rv->offset);
        mq_out_char(out, ',');
        mq_out_int(out, rv->timestamp);
        mq_out_char(out, ',');
        mq_csv_field(out, rv->key, rv->key_len);
        mq_out_char(out, ',');
        mq_csv_field(out, rv->value, rv->value_len);
        mq_out_char(out, '\n'); /* LF, not RFC 4180's CRLF: what shell tools and csv readers take alike */
        break;
    case MQ_RFMT_TEMPLATE:
        mq_emit_template(fmt, out, topic, partition, rv);
        break;
    }
}
