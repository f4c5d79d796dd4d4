/*
 * batch.c - encoding and decoding Kafka RecordBatch v2 and its records.
 *
 * The builder is on the append hot path: it reserves the 61-byte header, then encodes each record straight
 * into one geometrically growing buffer (no allocation per record), and fills in the header and CRC once
 * per batch. The reader runs over bytes read back from disk that may be torn or corrupted, so every length
 * and varint it decodes is checked against the end of the buffer before it is used.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log/batch.h"

/* The first allocation of a builder's buffer: a header and a few small records. A partition's open batch
 * keeps its buffer while the partition is busy, and 10,000 partitions of a record or two each must not hold
 * 16 KiB apiece; a hot partition's buffer doubles up to its batch size in its first batch and stays. */
#define MQ_BATCH_INITIAL_CAP 512
#define MQ_VARINT_MAX        10 /* bytes of a zig-zag encoded int64 */
#define MQ_RECORD_MIN_SIZE   7  /* length, attributes, ts delta, offset delta, key, value, header count */

/* Kafka's zig-zag mapping: small magnitudes of either sign become small unsigned numbers. Done in unsigned
 * arithmetic so that INT64_MIN and INT64_MAX do not overflow. */
static inline uint64_t zigzag(int64_t v)
{
    uint64_t u = (uint64_t)v;
    return (u << 1) ^ (0 - (u >> 63));
}

static inline int64_t unzigzag(uint64_t u)
{
    return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

size_t mq_varint_size(int64_t v)
{
    uint64_t u = zigzag(v) | 1;
    unsigned bits = 64 - (unsigned)__builtin_clzll(u);
    return (bits + 6) / 7;
}

size_t mq_varint_put(uint8_t *p, int64_t v)
{
    uint64_t u = zigzag(v);
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    return n;
}

size_t mq_varint_get(const uint8_t *p, const uint8_t *end, int64_t *v)
{
    uint64_t u = 0;
    for (size_t i = 0; i < MQ_VARINT_MAX; i++) {
        if (p + i >= end)
            return 0; /* truncated */
        uint8_t b = p[i];
        if (i == MQ_VARINT_MAX - 1 && b > 1)
            return 0; /* the tenth byte may only hold bit 63: anything else overflows or goes on */
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = unzigzag(u);
            return i + 1;
        }
    }
    return 0; /* not reached: the tenth byte either ends the varint or was rejected above */
}

/* Size of a length-prefixed byte field (-1 = null, encoded as the single varint -1). */
static inline size_t bytes_field_size(int32_t len)
{
    return len < 0 ? 1 : mq_varint_size(len) + (size_t)len;
}

/* Everything of a record after its Length varint, given the two deltas that depend on the batch. */
static size_t record_body_size(const struct mq_record *r, int64_t ts_delta, int32_t offset_delta)
{
    size_t n = 1 + mq_varint_size(ts_delta) + mq_varint_size(offset_delta) + bytes_field_size(r->key_len) +
               bytes_field_size(r->value_len) + mq_varint_size(r->header_count);
    for (int32_t i = 0; i < r->header_count; i++)
        n += bytes_field_size(r->headers[i].key_len) + bytes_field_size(r->headers[i].value_len);
    return n;
}

size_t mq_record_encoded_size(const struct mq_record *r)
{
    /* Upper bound valid in any batch: the widest timestamp delta (10 bytes) and offset delta (5 bytes). */
    size_t body = record_body_size(r, INT64_MIN, INT32_MIN);
    return mq_varint_size((int64_t)body) + body;
}

/* Timestamp deltas wrap like Kafka's long arithmetic; the reader adds them back with the same wrap. */
static inline int64_t ts_sub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

static inline int64_t ts_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

size_t mq_batch_record_size(const struct mq_batch_builder *b, const struct mq_record *r)
{
    int64_t ts_delta = b->count == 0 ? 0 : ts_sub(r->timestamp, b->base_timestamp);
    size_t body = record_body_size(r, ts_delta, b->count);
    return mq_varint_size((int64_t)body) + body;
}

void mq_batch_builder_init(struct mq_batch_builder *b)
{
    memset(b, 0, sizeof(*b));
    mq_batch_reset(b, 0);
}

void mq_batch_builder_free(struct mq_batch_builder *b)
{
    if (!b)
        return;
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

size_t mq_batch_builder_release(struct mq_batch_builder *b)
{
    if (b->count != 0 || !b->buf)
        return 0;
    size_t freed = b->cap;
    free(b->buf);
    b->buf = NULL;
    b->cap = 0;
    b->out = NULL;
    b->out_len = 0;
    return freed;
}

void mq_batch_reset(struct mq_batch_builder *b, int64_t base_offset)
{
    b->len = MQ_BATCH_HEADER_SIZE; /* the header is written by mq_batch_finish() */
    b->base_offset = base_offset;
    b->base_timestamp = -1;
    b->max_timestamp = -1;
    b->count = 0;
}

static enum mq_err reserve(struct mq_batch_builder *b, size_t need)
{
    if (b->cap >= need)
        return MQ_OK;
    size_t cap = b->cap ? b->cap : MQ_BATCH_INITIAL_CAP;
    while (cap < need)
        cap *= 2;
    uint8_t *buf = realloc(b->buf, cap);
    if (!buf)
        return MQ_ERR_NOMEM;
    b->buf = buf;
    b->cap = cap;
    return MQ_OK;
}

static inline uint8_t *put_bytes(uint8_t *p, const void *data, int32_t len)
{
    p += mq_varint_put(p, len);
    if (len > 0) {
        memcpy(p, data, (size_t)len);
        p += len;
    }
    return p;
}

static bool bytes_arg_ok(const void *data, int32_t len)
{
    return len >= -1 && (len <= 0 || data != NULL);
}

enum mq_err mq_batch_add(struct mq_batch_builder *b, const struct mq_record *r)
{
    if (!bytes_arg_ok(r->key, r->key_len) || !bytes_arg_ok(r->value, r->value_len) || r->header_count < 0 ||
        (r->header_count > 0 && !r->headers))
        return MQ_ERR_INVAL;
    /* Sum the size while validating the headers, stopping as soon as the batch would be too large so that
     * absurd header counts cannot overflow the sum. */
    int64_t ts_delta = b->count == 0 ? 0 : ts_sub(r->timestamp, b->base_timestamp);
    size_t room = MQ_BATCH_MAX_SIZE - b->len;
    size_t body = 1 + mq_varint_size(ts_delta) + mq_varint_size(b->count) + bytes_field_size(r->key_len) +
                  bytes_field_size(r->value_len) + mq_varint_size(r->header_count);
    for (int32_t i = 0; i < r->header_count && body <= room; i++) {
        const struct mq_header *h = &r->headers[i];
        if (h->key_len < 0 || !bytes_arg_ok(h->key, h->key_len) || !bytes_arg_ok(h->value, h->value_len))
            return MQ_ERR_INVAL; /* header keys are non-null strings in Kafka */
        body += bytes_field_size(h->key_len) + bytes_field_size(h->value_len);
    }
    size_t total = mq_varint_size((int64_t)body) + body;
    if (total > room)
        return MQ_ERR_RANGE;
    enum mq_err err = reserve(b, b->len + total);
    if (err != MQ_OK)
        return err;

    uint8_t *p = b->buf + b->len;
    p += mq_varint_put(p, (int64_t)body);
    *p++ = 0; /* record attributes: unused by Kafka */
    p += mq_varint_put(p, ts_delta);
    p += mq_varint_put(p, b->count);
    p = put_bytes(p, r->key, r->key_len);
    p = put_bytes(p, r->value, r->value_len);
    p += mq_varint_put(p, r->header_count);
    for (int32_t i = 0; i < r->header_count; i++) {
        p = put_bytes(p, r->headers[i].key, r->headers[i].key_len);
        p = put_bytes(p, r->headers[i].value, r->headers[i].value_len);
    }
    b->len += total;

    if (b->count == 0) {
        b->base_timestamp = r->timestamp;
        b->max_timestamp = r->timestamp;
    } else if (r->timestamp > b->max_timestamp) {
        b->max_timestamp = r->timestamp;
    }
    b->count++;
    return MQ_OK;
}

/* Builds the compressed batch in this thread's buffer: the header's room, then the records compressed.
 * NULL when that is not worth it (no smaller) or not possible; the batch is then written uncompressed. */
static struct mq_codec_buf *mq_batch_compress(struct mq_batch_builder *b)
{
    struct mq_codec_buf *z = mq_codec_thread_buf();
    if (!z)
        return NULL;
    z->len = 0;
    if (mq_codec_buf_reserve(z, MQ_BATCH_HEADER_SIZE) != MQ_OK)
        return NULL;
    z->len = MQ_BATCH_HEADER_SIZE;
    size_t records = b->len - MQ_BATCH_HEADER_SIZE;
    if (mq_codec_compress(b->codec, b->buf + MQ_BATCH_HEADER_SIZE, records, z) != MQ_OK)
        return NULL;
    return z->len < b->len ? z : NULL;
}

void mq_batch_finish(struct mq_batch_builder *b)
{
    if (!b->buf)
        return; /* no record was ever added: nothing to describe */
    struct mq_codec_buf *z = b->codec != MQ_CODEC_NONE ? mq_batch_compress(b) : NULL;
    int codec = z ? b->codec : MQ_CODEC_NONE;
    uint8_t *p = z ? z->p : b->buf;
    size_t len = z ? z->len : b->len;
    b->out = p;
    b->out_len = len;
    mq_be64_put(p + 0, (uint64_t)b->base_offset);
    mq_be32_put(p + 8, (uint32_t)(len - MQ_BATCH_LOG_OVERHEAD));
    mq_be32_put(p + 12, 0);                        /* partition leader epoch */
    p[16] = MQ_BATCH_MAGIC;                        /* CRC at 17 is written last */
    mq_be16_put(p + 21, (uint16_t)codec);          /* attributes: the codec, CreateTime, not transactional */
    mq_be32_put(p + 23, (uint32_t)(b->count - 1)); /* LastOffsetDelta */
    mq_be64_put(p + 27, (uint64_t)b->base_timestamp);
    mq_be64_put(p + 35, (uint64_t)b->max_timestamp);
    mq_be64_put(p + 43, UINT64_MAX); /* producer id -1: no idempotent producer */
    mq_be16_put(p + 51, UINT16_MAX); /* producer epoch -1 */
    mq_be32_put(p + 53, UINT32_MAX); /* base sequence -1 */
    mq_be32_put(p + 57, (uint32_t)b->count);
    mq_be32_put(p + 17, mq_crc32c(0, p + MQ_BATCH_CRC_START, len - MQ_BATCH_CRC_START));
}

enum mq_err mq_batch_parse_header(const uint8_t *p, size_t avail, struct mq_batch_info *bi)
{
    if (avail < MQ_BATCH_HEADER_SIZE)
        return MQ_ERR_RANGE;
    bi->base_offset = (int64_t)mq_be64_get(p + 0);
    bi->length = (int32_t)mq_be32_get(p + 8);
    bi->leader_epoch = (int32_t)mq_be32_get(p + 12);
    bi->magic = (int8_t)p[16];
    bi->crc = mq_be32_get(p + 17);
    bi->attributes = (int16_t)mq_be16_get(p + 21);
    bi->last_offset_delta = (int32_t)mq_be32_get(p + 23);
    bi->base_timestamp = (int64_t)mq_be64_get(p + 27);
    bi->max_timestamp = (int64_t)mq_be64_get(p + 35);
    bi->producer_id = (int64_t)mq_be64_get(p + 43);
    bi->producer_epoch = (int16_t)mq_be16_get(p + 51);
    bi->base_sequence = (int32_t)mq_be32_get(p + 53);
    bi->count = (int32_t)mq_be32_get(p + 57);

    if (bi->magic != MQ_BATCH_MAGIC)
        return MQ_ERR_CORRUPT;
    if (bi->length < MQ_BATCH_HEADER_SIZE - MQ_BATCH_LOG_OVERHEAD || bi->length > MQ_BATCH_MAX_SIZE)
        return MQ_ERR_CORRUPT;
    if (bi->count < 0 || bi->last_offset_delta < 0)
        return MQ_ERR_CORRUPT;
    /* Offset deltas are distinct and within [0, LastOffsetDelta], so there cannot be more records than
     * LastOffsetDelta + 1 (fewer is legal: compaction removes records but keeps LastOffsetDelta). */
    if ((int64_t)bi->count - 1 > bi->last_offset_delta)
        return MQ_ERR_CORRUPT;
    /* Kafka offsets are never negative. The last offset stays below INT64_MAX so that every reader may
     * compute the offset after the batch (last + 1) without overflowing: the base offset lies outside the
     * CRC, so a damaged one must be caught here, before any arithmetic. */
    if (bi->base_offset < 0 || bi->base_offset >= INT64_MAX - bi->last_offset_delta)
        return MQ_ERR_CORRUPT;
    /* Uncompressed records take at least 7 bytes each; compressed ones may be smaller than their count. */
    if ((bi->attributes & MQ_BATCH_ATTR_COMPRESSION_MASK) == 0 &&
        (int64_t)bi->count * MQ_RECORD_MIN_SIZE >
            (int64_t)bi->length - (MQ_BATCH_HEADER_SIZE - MQ_BATCH_LOG_OVERHEAD))
        return MQ_ERR_CORRUPT;
    return MQ_OK;
}

bool mq_batch_crc_ok(const uint8_t *p, const struct mq_batch_info *bi)
{
    if (bi->length < MQ_BATCH_HEADER_SIZE - MQ_BATCH_LOG_OVERHEAD)
        return false;
    size_t size = mq_batch_size(bi);
    return mq_crc32c(0, p + MQ_BATCH_CRC_START, size - MQ_BATCH_CRC_START) == mq_be32_get(p + 17);
}

enum mq_err mq_record_iter_init(struct mq_record_iter *it, const uint8_t *batch,
                                const struct mq_batch_info *bi)
{
    if (bi->attributes & MQ_BATCH_ATTR_COMPRESSION_MASK)
        return MQ_ERR_INVAL;
    if (bi->length < MQ_BATCH_HEADER_SIZE - MQ_BATCH_LOG_OVERHEAD || bi->count < 0)
        return MQ_ERR_CORRUPT; /* bi was not produced by a successful mq_batch_parse_header() */
    it->p = batch + MQ_BATCH_HEADER_SIZE;
    it->end = batch + mq_batch_size(bi);
    it->info = *bi;
    it->remaining = bi->count;
    return MQ_OK;
}

enum mq_err mq_record_iter_open(struct mq_record_iter *it, const uint8_t *batch,
                                const struct mq_batch_info *bi, struct mq_codec_buf *scratch)
{
    int codec = bi->attributes & MQ_BATCH_ATTR_COMPRESSION_MASK;
    if (codec == MQ_CODEC_NONE)
        return mq_record_iter_init(it, batch, bi);
    if (bi->length < MQ_BATCH_HEADER_SIZE - MQ_BATCH_LOG_OVERHEAD || bi->count < 0)
        return MQ_ERR_CORRUPT; /* bi was not produced by a successful mq_batch_parse_header() */
    enum mq_err err =
        mq_codec_decompress(codec, batch + MQ_BATCH_HEADER_SIZE, mq_batch_size(bi) - MQ_BATCH_HEADER_SIZE,
                            MQ_BATCH_MAX_RECORDS_SIZE, scratch);
    if (err != MQ_OK)
        return err;
    if (!scratch->p)
        return MQ_ERR_CORRUPT; /* nothing came out: not even one record */
    it->p = scratch->p;
    it->end = scratch->p + scratch->len;
    it->info = *bi;
    it->remaining = bi->count;
    return MQ_OK;
}

/* Reads a varint that must fit an int32 and lie in [lo, INT32_MAX]. Returns the new cursor or NULL. */
static inline const uint8_t *get_i32(const uint8_t *p, const uint8_t *end, int32_t lo, int32_t *out)
{
    int64_t v;
    size_t n = mq_varint_get(p, end, &v);
    if (n == 0 || v < lo || v > INT32_MAX)
        return NULL;
    *out = (int32_t)v;
    return p + n;
}

/* Reads a nullable byte field (varint length, -1 = null, then the bytes) lying entirely before end. */
static inline const uint8_t *get_bytes(const uint8_t *p, const uint8_t *end, int32_t lo, const uint8_t **data,
                                       int32_t *len)
{
    p = get_i32(p, end, lo, len);
    if (!p)
        return NULL;
    if (*len < 0) {
        *data = NULL;
        return p;
    }
    if ((size_t)*len > (size_t)(end - p))
        return NULL;
    *data = p;
    return p + *len;
}

int mq_header_next(const uint8_t **cursor, const uint8_t *end, struct mq_header *h)
{
    const uint8_t *p = *cursor;
    if (p >= end)
        return 0;
    const uint8_t *key, *value;
    p = get_bytes(p, end, 0, &key, &h->key_len); /* header keys are never null */
    if (p)
        p = get_bytes(p, end, -1, &value, &h->value_len);
    if (!p)
        return -MQ_ERR_CORRUPT;
    h->key = (const char *)key;
    h->value = value;
    *cursor = p;
    return 1;
}

int mq_record_next(struct mq_record_iter *it, struct mq_record_view *rv)
{
    if (it->remaining <= 0)
        return it->p == it->end ? 0 : -MQ_ERR_CORRUPT; /* bytes left over after the last record */

    int32_t len;
    const uint8_t *p = get_i32(it->p, it->end, 0, &len);
    if (!p || (size_t)len > (size_t)(it->end - p))
        return -MQ_ERR_CORRUPT;
    const uint8_t *end = p + len; /* from here on nothing may be read past the record's own end */

    if (p >= end)
        return -MQ_ERR_CORRUPT;
    p++; /* record attributes: unused */
    int64_t ts_delta;
    size_t n = mq_varint_get(p, end, &ts_delta);
    if (n == 0)
        return -MQ_ERR_CORRUPT;
    p += n;
    int32_t offset_delta;
    p = get_i32(p, end, 0, &offset_delta);
    if (!p || offset_delta > it->info.last_offset_delta)
        return -MQ_ERR_CORRUPT;
    p = get_bytes(p, end, -1, &rv->key, &rv->key_len);
    if (p)
        p = get_bytes(p, end, -1, &rv->value, &rv->value_len);
    if (p)
        p = get_i32(p, end, 0, &rv->header_count);
    if (!p)
        return -MQ_ERR_CORRUPT;

    /* Walk the headers once now, so that the caller's mq_header_next() loop over [headers, headers_end)
     * sees exactly header_count well-formed headers. */
    rv->headers = p;
    struct mq_header h;
    for (int32_t i = 0; i < rv->header_count; i++)
        if (mq_header_next(&p, end, &h) != 1)
            return -MQ_ERR_CORRUPT;
    rv->headers_end = p;
    if (p != end)
        return -MQ_ERR_CORRUPT; /* the record's Length does not match what it contains */

    rv->offset = it->info.base_offset + offset_delta; /* no overflow: parse_header bounded base_offset */
    if (it->info.attributes & MQ_BATCH_ATTR_LOG_APPEND_TIME)
        rv->timestamp = it->info.max_timestamp; /* LogAppendTime: the broker's time applies to all */
    else
        rv->timestamp = ts_add(it->info.base_timestamp, ts_delta);
    it->p = end;
    it->remaining--;
    return 1;
}
