/*
 * out.h - the output buffer of the `mqlog` commands: a large buffer written to a file descriptor with few
 * write() calls, plus the encoders the JSON formats need (escaped strings with UTF-8 validation, base64,
 * integers).
 *
 * Why not stdio: `mqlog consume` writes a million records per second; appending into one buffer with
 * memcpy and writing it in 1 MiB pieces costs no locking and no per-record call. A write error (EPIPE when
 * the reader of a pipe went away, ENOSPC) is sticky: later writes are dropped and mq_out_flush() reports it.
 */
#ifndef MQ_OUT_H
#define MQ_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct mq_out {
    int fd;
    char *buf;
    size_t len, cap;
    int err; /* errno of the first failed write, 0 when none */
};

/* Sets up a buffer of cap bytes for fd. Returns false when out of memory. Free with mq_out_free(). */
bool mq_out_init(struct mq_out *out, int fd, size_t cap);
void mq_out_free(struct mq_out *out);

/* Writes the buffered bytes. Returns 0 or the errno of the (first) failed write; the buffer is emptied
 * either way. */
int mq_out_flush(struct mq_out *out);

/* Makes room for n more bytes (flushing, or growing the buffer when n is larger than it). Returns a pointer
 * to the free space, or NULL when out of memory. */
char *mq_out_reserve(struct mq_out *out, size_t n);

static inline void mq_out_bytes(struct mq_out *out, const void *p, size_t n)
{
    if (out->cap - out->len >= n) {
        memcpy(out->buf + out->len, p, n);
        out->len += n;
        return;
    }
    char *d = mq_out_reserve(out, n);
    if (d) {
        memcpy(d, p, n);
        out->len += n;
    }
}

static inline void mq_out_char(struct mq_out *out, char c)
{
    if (out->len == out->cap && !mq_out_reserve(out, 1))
        return;
    out->buf[out->len++] = c;
}

static inline void mq_out_str(struct mq_out *out, const char *s)
{
    mq_out_bytes(out, s, strlen(s));
}

/* A signed decimal integer. */
void mq_out_int(struct mq_out *out, int64_t v);

/* True when p[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF). */
bool mq_out_utf8_valid(const uint8_t *p, size_t n);

/* Appends p[0..n) as a quoted JSON string when it is valid UTF-8 and returns true; otherwise appends
 * nothing and returns false. */
bool mq_out_json_string(struct mq_out *out, const uint8_t *p, size_t n);

/* Appends p[0..n) in standard base64 with padding (RFC 4648), unquoted. */
void mq_out_base64(struct mq_out *out, const uint8_t *p, size_t n);

/*
 * Appends the JSON member for bytes that may be text: `"name":"text"` when p is valid UTF-8,
 * `"name_base64":"..."` otherwise, `"name":null` when n < 0 (a null key or value). No leading comma.
 */
void mq_out_json_bytes(struct mq_out *out, const char *name, const uint8_t *p, int32_t n);

#endif
