/*
 * wire.c - the Kafka protocol's primitive types (see wire.h). The reader checks every length against the
 * bytes left before it moves; the writer grows geometrically and records the first allocation failure.
 */
#include "kafka/wire.h"

#include <stdlib.h>
#include <string.h>

bool mq_kafka_str_eq(struct mq_kafka_str s, const char *c)
{
    if (s.len < 0 || !c)
        return false;
    size_t n = strlen(c);
    return (size_t)s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

bool mq_kafka_str_copy(struct mq_kafka_str s, char *dst, size_t dst_size)
{
    if (dst_size == 0)
        return false;
    dst[0] = '\0';
    if (s.len < 0 || (size_t)s.len >= dst_size)
        return false;
    if (s.len > 0 && memchr(s.ptr, '\0', (size_t)s.len))
        return false;
    if (s.len > 0)
        memcpy(dst, s.ptr, (size_t)s.len);
    dst[s.len] = '\0';
    return true;
}

/* ---- reading ---- */

void mq_kafka_rd_init(struct mq_kafka_rd *rd, const void *buf, size_t len)
{
    rd->p = buf;
    rd->end = rd->p + len;
    rd->err = MQ_OK;
    rd->max_parts = rd->parts_left = INT32_MAX;
}

enum mq_err mq_kafka_rd_fail(struct mq_kafka_rd *rd)
{
    if (rd->err == MQ_OK)
        rd->err = MQ_ERR_PROTOCOL;
    /* Nothing more is read once a field was bad: a later read cannot resynchronise. */
    rd->p = rd->end;
    return rd->err;
}

/* Returns a pointer to n readable bytes and moves past them, or NULL (and fails the reader). */
static const uint8_t *take(struct mq_kafka_rd *rd, size_t n)
{
    if (rd->err != MQ_OK || mq_kafka_rd_left(rd) < n) {
        mq_kafka_rd_fail(rd);
        return NULL;
    }
    const uint8_t *p = rd->p;
    rd->p += n;
    return p;
}

int8_t mq_kafka_rd_i8(struct mq_kafka_rd *rd)
{
    const uint8_t *p = take(rd, 1);
    return p ? (int8_t)p[0] : 0;
}

int16_t mq_kafka_rd_i16(struct mq_kafka_rd *rd)
{
    const uint8_t *p = take(rd, 2);
    return p ? (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]) : 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int32_t mq_kafka_rd_i32(struct mq_kafka_rd *rd)
{
    const uint8_t *p = take(rd, 4);
    return p ? (int32_t)be32(p) : 0;
}

int64_t mq_kafka_rd_i64(struct mq_kafka_rd *rd)
{
    const uint8_t *p = take(rd, 8);
    return p ? (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)) : 0;
}

bool mq_kafka_rd_bool(struct mq_kafka_rd *rd)
{
    return mq_kafka_rd_i8(rd) != 0;
}

/* An unsigned base-128 varint of at most max_bytes bytes; rejects truncated and overlong encodings. */
static uint64_t rd_uvar(struct mq_kafka_rd *rd, int max_bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        const uint8_t *p = take(rd, 1);
        if (!p)
            return 0;
        v |= (uint64_t)(*p & 0x7f) << (7 * i);
        if (!(*p & 0x80)) {
            /* The last byte of a maximal encoding may only hold the bits the type has. */
            if (i == max_bytes - 1 && max_bytes == 5 && (*p & 0x70))
                break;
            if (i == max_bytes - 1 && max_bytes == 10 && (*p & 0x7e))
                break;
            return v;
        }
    }
    mq_kafka_rd_fail(rd);
    return 0;
}

uint32_t mq_kafka_rd_uvarint(struct mq_kafka_rd *rd)
{
    return (uint32_t)rd_uvar(rd, 5);
}

int32_t mq_kafka_rd_varint(struct mq_kafka_rd *rd)
{
    uint32_t u = (uint32_t)rd_uvar(rd, 5);
    return (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
}

int64_t mq_kafka_rd_varlong(struct mq_kafka_rd *rd)
{
    uint64_t u = rd_uvar(rd, 10);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static const struct mq_kafka_str null_str = {NULL, -1};
static const struct mq_kafka_str empty_str = {"", 0};

/* A view of len bytes (len -1: null when nullable, else an error). */
static struct mq_kafka_str rd_view(struct mq_kafka_rd *rd, int64_t len, bool nullable)
{
    if (rd->err != MQ_OK)
        return nullable ? null_str : empty_str;
    if (len == -1 && nullable)
        return null_str;
    if (len < 0 || (uint64_t)len > mq_kafka_rd_left(rd)) {
        mq_kafka_rd_fail(rd);
        return nullable ? null_str : empty_str;
    }
    struct mq_kafka_str s = {(const char *)rd->p, (int32_t)len};
    rd->p += len;
    return s;
}

struct mq_kafka_str mq_kafka_rd_string(struct mq_kafka_rd *rd)
{
    return rd_view(rd, mq_kafka_rd_i16(rd), false);
}

struct mq_kafka_str mq_kafka_rd_nstring(struct mq_kafka_rd *rd)
{
    return rd_view(rd, mq_kafka_rd_i16(rd), true);
}

struct mq_kafka_str mq_kafka_rd_cstring(struct mq_kafka_rd *rd)
{
    return rd_view(rd, (int64_t)mq_kafka_rd_uvarint(rd) - 1, false);
}

struct mq_kafka_str mq_kafka_rd_cnstring(struct mq_kafka_rd *rd)
{
    return rd_view(rd, (int64_t)mq_kafka_rd_uvarint(rd) - 1, true);
}

struct mq_kafka_str mq_kafka_rd_bytes(struct mq_kafka_rd *rd)
{
    return rd_view(rd, mq_kafka_rd_i32(rd), false);
}

struct mq_kafka_str mq_kafka_rd_nbytes(struct mq_kafka_rd *rd)
{
    return rd_view(rd, mq_kafka_rd_i32(rd), true);
}

struct mq_kafka_str mq_kafka_rd_cbytes(struct mq_kafka_rd *rd)
{
    return rd_view(rd, (int64_t)mq_kafka_rd_uvarint(rd) - 1, false);
}

struct mq_kafka_str mq_kafka_rd_cnbytes(struct mq_kafka_rd *rd)
{
    return rd_view(rd, (int64_t)mq_kafka_rd_uvarint(rd) - 1, true);
}

static int32_t rd_count(struct mq_kafka_rd *rd, int64_t n, size_t min_elem_size, bool nullable)
{
    if (rd->err != MQ_OK)
        return 0;
    if (n == -1 && nullable)
        return -1;
    if (min_elem_size == 0)
        min_elem_size = 1;
    if (n < 0 || (uint64_t)n > mq_kafka_rd_left(rd) / min_elem_size) {
        mq_kafka_rd_fail(rd);
        return 0;
    }
    return (int32_t)n;
}

int32_t mq_kafka_rd_array(struct mq_kafka_rd *rd, size_t min_elem_size, bool nullable)
{
    return rd_count(rd, mq_kafka_rd_i32(rd), min_elem_size, nullable);
}

int32_t mq_kafka_rd_carray(struct mq_kafka_rd *rd, size_t min_elem_size, bool nullable)
{
    return rd_count(rd, (int64_t)mq_kafka_rd_uvarint(rd) - 1, min_elem_size, nullable);
}

void mq_kafka_rd_tags(struct mq_kafka_rd *rd)
{
    /* Each tagged field takes at least 2 bytes (tag, size). */
    uint32_t n = mq_kafka_rd_uvarint(rd);
    if (rd->err != MQ_OK)
        return;
    if (n > mq_kafka_rd_left(rd) / 2) {
        mq_kafka_rd_fail(rd);
        return;
    }
    for (uint32_t i = 0; i < n && rd->err == MQ_OK; i++) {
        (void)mq_kafka_rd_uvarint(rd); /* tag */
        uint32_t size = mq_kafka_rd_uvarint(rd);
        (void)take(rd, size);
    }
}

/* ---- writing ---- */

void mq_kafka_wr_init(struct mq_kafka_wr *wr)
{
    wr->buf = NULL;
    wr->len = 0;
    wr->cap = 0;
    wr->err = MQ_OK;
}

void mq_kafka_wr_free(struct mq_kafka_wr *wr)
{
    if (!wr)
        return;
    free(wr->buf);
    mq_kafka_wr_init(wr);
}

void mq_kafka_wr_reset(struct mq_kafka_wr *wr)
{
    wr->len = 0;
    wr->err = MQ_OK;
}

uint8_t *mq_kafka_wr_take(struct mq_kafka_wr *wr, size_t *len)
{
    uint8_t *b = wr->buf;
    *len = wr->len;
    mq_kafka_wr_init(wr);
    return b;
}

/* Makes room for n more bytes; returns where they go, or NULL after recording MQ_ERR_NOMEM. */
static uint8_t *room(struct mq_kafka_wr *wr, size_t n)
{
    if (wr->err != MQ_OK)
        return NULL;
    if (n > SIZE_MAX / 2 - wr->len) {
        wr->err = MQ_ERR_NOMEM;
        return NULL;
    }
    if (wr->len + n > wr->cap) {
        size_t cap = wr->cap ? wr->cap : 256;
        while (cap < wr->len + n)
            cap *= 2;
        uint8_t *b = realloc(wr->buf, cap);
        if (!b) {
            wr->err = MQ_ERR_NOMEM;
            return NULL;
        }
        wr->buf = b;
        wr->cap = cap;
    }
    uint8_t *p = wr->buf + wr->len;
    wr->len += n;
    return p;
}

void mq_kafka_wr_raw(struct mq_kafka_wr *wr, const void *p, size_t n)
{
    uint8_t *d = room(wr, n);
    if (d && n)
        memcpy(d, p, n);
}

void mq_kafka_wr_i8(struct mq_kafka_wr *wr, int8_t v)
{
    uint8_t *d = room(wr, 1);
    if (d)
        d[0] = (uint8_t)v;
}

void mq_kafka_wr_i16(struct mq_kafka_wr *wr, int16_t v)
{
    uint8_t *d = room(wr, 2);
    if (d) {
        d[0] = (uint8_t)((uint16_t)v >> 8);
        d[1] = (uint8_t)v;
    }
}

static void put32(uint8_t *d, uint32_t v)
{
    d[0] = (uint8_t)(v >> 24);
    d[1] = (uint8_t)(v >> 16);
    d[2] = (uint8_t)(v >> 8);
    d[3] = (uint8_t)v;
}

void mq_kafka_wr_i32(struct mq_kafka_wr *wr, int32_t v)
{
    uint8_t *d = room(wr, 4);
    if (d)
        put32(d, (uint32_t)v);
}

void mq_kafka_wr_i64(struct mq_kafka_wr *wr, int64_t v)
{
    uint8_t *d = room(wr, 8);
    if (d) {
        put32(d, (uint32_t)((uint64_t)v >> 32));
        put32(d + 4, (uint32_t)v);
    }
}

void mq_kafka_wr_bool(struct mq_kafka_wr *wr, bool v)
{
    mq_kafka_wr_i8(wr, v ? 1 : 0);
}

static void wr_uvar(struct mq_kafka_wr *wr, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    mq_kafka_wr_raw(wr, tmp, n);
}

void mq_kafka_wr_uvarint(struct mq_kafka_wr *wr, uint32_t v)
{
    wr_uvar(wr, v);
}

void mq_kafka_wr_varint(struct mq_kafka_wr *wr, int32_t v)
{
    wr_uvar(wr, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

void mq_kafka_wr_varlong(struct mq_kafka_wr *wr, int64_t v)
{
    wr_uvar(wr, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void mq_kafka_wr_str(struct mq_kafka_wr *wr, struct mq_kafka_str s)
{
    if (s.len < 0 || !s.ptr) {
        mq_kafka_wr_i16(wr, -1);
        return;
    }
    int32_t n = s.len > INT16_MAX ? INT16_MAX : s.len;
    mq_kafka_wr_i16(wr, (int16_t)n);
    mq_kafka_wr_raw(wr, s.ptr, (size_t)n);
}

void mq_kafka_wr_string(struct mq_kafka_wr *wr, const char *s)
{
    struct mq_kafka_str v = {s, s ? (int32_t)strnlen(s, INT16_MAX) : -1};
    mq_kafka_wr_str(wr, v);
}

void mq_kafka_wr_cstr(struct mq_kafka_wr *wr, struct mq_kafka_str s)
{
    if (s.len < 0 || !s.ptr) {
        mq_kafka_wr_uvarint(wr, 0);
        return;
    }
    mq_kafka_wr_uvarint(wr, (uint32_t)s.len + 1);
    mq_kafka_wr_raw(wr, s.ptr, (size_t)s.len);
}

void mq_kafka_wr_cstring(struct mq_kafka_wr *wr, const char *s)
{
    struct mq_kafka_str v = {s, s ? (int32_t)strnlen(s, INT16_MAX) : -1};
    mq_kafka_wr_cstr(wr, v);
}

void mq_kafka_wr_bytes(struct mq_kafka_wr *wr, const void *p, int32_t len)
{
    if (len < 0 || (!p && len > 0)) {
        mq_kafka_wr_i32(wr, -1);
        return;
    }
    mq_kafka_wr_i32(wr, len);
    mq_kafka_wr_raw(wr, p, (size_t)len);
}

void mq_kafka_wr_cbytes(struct mq_kafka_wr *wr, const void *p, int32_t len)
{
    if (len < 0 || (!p && len > 0)) {
        mq_kafka_wr_uvarint(wr, 0);
        return;
    }
    mq_kafka_wr_uvarint(wr, (uint32_t)len + 1);
    mq_kafka_wr_raw(wr, p, (size_t)len);
}

void mq_kafka_wr_array(struct mq_kafka_wr *wr, int32_t n)
{
    mq_kafka_wr_i32(wr, n < 0 ? -1 : n);
}

void mq_kafka_wr_carray(struct mq_kafka_wr *wr, int32_t n)
{
    mq_kafka_wr_uvarint(wr, n < 0 ? 0 : (uint32_t)n + 1);
}

void mq_kafka_wr_tags(struct mq_kafka_wr *wr)
{
    mq_kafka_wr_uvarint(wr, 0);
}

size_t mq_kafka_wr_reserve_i32(struct mq_kafka_wr *wr)
{
    size_t pos = wr->len;
    mq_kafka_wr_i32(wr, 0);
    return pos;
}

void mq_kafka_wr_patch_i32(struct mq_kafka_wr *wr, size_t pos, int32_t v)
{
    if (wr->err == MQ_OK && pos + 4 <= wr->len)
        put32(wr->buf + pos, (uint32_t)v);
}

/* ---- framing and the request header ---- */

enum mq_err mq_kafka_frame_size(const uint8_t *buf, size_t avail, size_t max_request, size_t *frame_len)
{
    if (avail < MQ_KAFKA_FRAME_PREFIX)
        return MQ_ERR_RANGE;
    int32_t size = (int32_t)be32(buf);
    if (size < MQ_KAFKA_MIN_REQUEST || (uint64_t)size > max_request)
        return MQ_ERR_PROTOCOL;
    *frame_len = MQ_KAFKA_FRAME_PREFIX + (size_t)size;
    return MQ_OK;
}

enum mq_err mq_kafka_req_hdr_peek(const uint8_t *body, size_t len, struct mq_kafka_req_hdr *h)
{
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, body, len);
    h->api_key = mq_kafka_rd_i16(&rd);
    h->api_version = mq_kafka_rd_i16(&rd);
    h->correlation_id = mq_kafka_rd_i32(&rd);
    h->client_id = null_str;
    return rd.err;
}

enum mq_err mq_kafka_req_hdr_parse(struct mq_kafka_rd *rd, int hdr_version, struct mq_kafka_req_hdr *h)
{
    if (hdr_version < 0 || hdr_version > 2)
        return MQ_ERR_INVAL;
    h->api_key = mq_kafka_rd_i16(rd);
    h->api_version = mq_kafka_rd_i16(rd);
    h->correlation_id = mq_kafka_rd_i32(rd);
    h->client_id = null_str;
    if (hdr_version >= 1)
        h->client_id = mq_kafka_rd_nstring(rd);
    if (hdr_version >= 2)
        mq_kafka_rd_tags(rd);
    return rd->err;
}
