/*
 * out.c - the buffered output of the `mqlog` commands and its JSON encoders (see out.h).
 */
#include "tool/out.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

bool mq_out_init(struct mq_out *out, int fd, size_t cap)
{
    out->fd = fd;
    out->len = 0;
    out->err = 0;
    out->cap = cap;
    out->buf = malloc(cap);
    return out->buf != NULL;
}

void mq_out_free(struct mq_out *out)
{
    free(out->buf);
    out->buf = NULL;
    out->len = out->cap = 0;
}

int mq_out_flush(struct mq_out *out)
{
    size_t done = 0;
    while (done < out->len && !out->err) {
        ssize_t w = write(out->fd, out->buf + done, out->len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue; /* a signal handler only sets a flag: finish the write */
            out->err = errno;
            break;
        }
        done += (size_t)w;
    }
    out->len = 0;
    return out->err;
}

char *mq_out_reserve(struct mq_out *out, size_t n)
{
    if (out->cap - out->len >= n)
        return out->buf + out->len;
    mq_out_flush(out);
    if (out->cap < n) {
        /* one item larger than the whole buffer (a big record value): grow rather than split it */
        char *nb = realloc(out->buf, n);
        if (!nb)
            return NULL;
        out->buf = nb;
        out->cap = n;
    }
    return out->buf;
}

void mq_out_int(struct mq_out *out, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    /* work on the magnitude as unsigned so that INT64_MIN does not overflow */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    mq_out_bytes(out, p, (size_t)(e - p));
}

/* Length of the well-formed UTF-8 sequence at p (at most end - p bytes), 0 when it is not one. Only
 * called for a lead byte >= 0x80. The ranges are those of the Unicode standard's table of well-formed
 * byte sequences. */
static size_t mq_utf8_seq(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xc2 && c <= 0xdf)
        return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (avail < 3 || (p[2] & 0xc0) != 0x80)
            return 0;
        uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf; /* no overlong, no surrogate */
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (avail < 4 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf; /* no overlong, <= U+10FFFF */
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

bool mq_out_utf8_valid(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = mq_utf8_seq(p, end);
        if (!k)
            return false;
        p += k;
    }
    return true;
}

bool mq_out_json_string(struct mq_out *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX: reserve once, then write without checks. */
    size_t need = 6 * n + 2;
    char *d = mq_out_reserve(out, need);
    if (!d)
        return true; /* out of memory: nothing written, but the bytes were not the problem */
    char *start = d;
    const uint8_t *end = p + n;
    *d++ = '"';
    while (p < end) {
        uint8_t c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *d++ = (char)c;
            p++;
        } else if (c < 0x80) {
            *d++ = '\\';
            switch (c) {
            case '"':
                *d++ = '"';
                break;
            case '\\':
                *d++ = '\\';
                break;
            case '\n':
                *d++ = 'n';
                break;
            case '\r':
                *d++ = 'r';
                break;
            case '\t':
                *d++ = 't';
                break;
            case '\b':
                *d++ = 'b';
                break;
            case '\f':
                *d++ = 'f';
                break;
            default:
                *d++ = 'u';
                *d++ = '0';
                *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 15];
                break;
            }
            p++;
        } else {
            size_t k = mq_utf8_seq(p, end);
            if (!k)
                return false; /* nothing was committed: out->len is unchanged */
            memcpy(d, p, k);
            d += k;
            p += k;
        }
    }
    *d++ = '"';
    out->len += (size_t)(d - start);
    return true;
}

void mq_out_base64(struct mq_out *out, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *d = mq_out_reserve(out, (n + 2) / 3 * 4);
    if (!d)
        return;
    char *start = d;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *d++ = tab[v >> 18];
        *d++ = tab[(v >> 12) & 63];
        *d++ = tab[(v >> 6) & 63];
        *d++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *d++ = tab[v >> 18];
        *d++ = tab[(v >> 12) & 63];
        *d++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *d++ = '=';
    }
    out->len += (size_t)(d - start);
}

void mq_out_json_bytes(struct mq_out *out, const char *name, const uint8_t *p, int32_t n)
{
    size_t nlen = strlen(name);
    if (n < 0) {
        mq_out_char(out, '"');
        mq_out_bytes(out, name, nlen);
        mq_out_str(out, "\":null");
        return;
    }
    /* Room for the member at its largest (every byte escaped as \u00XX) before writing its name, so that
     * no flush happens between the name and the string: the name can still be changed when the bytes
     * turn out not to be text. */
    if (!mq_out_reserve(out, nlen + 16 + 6 * (size_t)n))
        return;
    size_t mark = out->len;
    mq_out_char(out, '"');
    mq_out_bytes(out, name, nlen);
    mq_out_str(out, "\":");
    if (mq_out_json_string(out, p, (size_t)n))
        return;
    out->len = mark;
    mq_out_char(out, '"');
    mq_out_bytes(out, name, nlen);
    mq_out_str(out, "_base64\":\"");
    mq_out_base64(out, p, (size_t)n);
    mq_out_char(out, '"');
}
