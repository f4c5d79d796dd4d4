/*
 * downconv.c - stored batches as message format v0/v1 for Fetch v0-3 (see downconv.h).
 */
#include "kafka/downconv.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/batch.h"

int8_t mq_kafka_fetch_magic(int16_t v)
{
    return v <= 1 ? 0 : v <= 3 ? 1 : -1;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    return put32(put32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

/* A key or value: its length (-1: null) and bytes. */
static uint8_t *put_bytes(uint8_t *p, const uint8_t *b, int32_t len)
{
    p = put32(p, (uint32_t)len);
    if (len > 0) {
        memcpy(p, b, (size_t)len);
        p += len;
    }
    return p;
}

static bool reserve(struct mq_kafka_msgs *out, size_t more)
{
    if (out->cap - out->len >= more)
        return true;
    size_t cap = out->cap ? out->cap : 4096;
    while (cap - out->len < more)
        cap *= 2;
    uint8_t *n = realloc(out->p, cap);
    if (!n)
        return false;
    out->p = n;
    out->cap = cap;
    return true;
}

/* Appends one record as a message. */
static enum mq_err put_message(struct mq_kafka_msgs *out, const struct mq_record_view *rv, int8_t magic,
                               bool log_append_time, int64_t timestamp)
{
    size_t key = rv->key_len > 0 ? (size_t)rv->key_len : 0,
           value = rv->value_len > 0 ? (size_t)rv->value_len : 0;
    /* CRC, magic, attributes, (v1) timestamp, key length, key, value length, value */
    size_t size = 4 + 1 + 1 + (magic >= 1 ? 8 : 0) + 4 + key + 4 + value;
    if (!reserve(out, 8 + 4 + size))
        return MQ_ERR_NOMEM;
    uint8_t *start = out->p + out->len, *p = start;
    p = put64(p, (uint64_t)rv->offset);
    p = put32(p, (uint32_t)size);
    uint8_t *crc_at = p;
    p += 4;
    *p++ = (uint8_t)magic;
    *p++ = magic >= 1 && log_append_time ? 0x08 : 0; /* no compression; bit 3: the timestamp type */
    if (magic >= 1)
        p = put64(p, (uint64_t)timestamp);
    p = put_bytes(p, rv->key, rv->key_len);
    p = put_bytes(p, rv->value, rv->value_len);
    put32(crc_at, crc32_gzip_refl(0, crc_at + 4, (uint64_t)(p - (crc_at + 4))));
    out->len += (size_t)(p - start);
    return MQ_OK;
}

enum mq_err mq_kafka_downconvert(const uint8_t *buf, size_t len, int64_t from, int8_t magic,
                                 struct mq_kafka_msgs *out)
{
    struct mq_codec_buf inflated = {0};
    enum mq_err err = mq_kafka_downconvert_with(buf, len, from, magic, out, &inflated);
    mq_codec_buf_free(&inflated);
    return err;
}

enum mq_err mq_kafka_downconvert_with(const uint8_t *buf, size_t len, int64_t from, int8_t magic,
                                      struct mq_kafka_msgs *out, struct mq_codec_buf *inflated)
{
    size_t pos = 0;
    while (pos < len) {
        struct mq_batch_info bi;
        enum mq_err err = mq_batch_parse_header(buf + pos, len - pos, &bi);
        if (err != MQ_OK || mq_batch_size(&bi) > len - pos)
            return MQ_ERR_CORRUPT; /* slices hold whole batches only */
        const uint8_t *batch = buf + pos;
        pos += mq_batch_size(&bi);
        if ((bi.attributes & MQ_BATCH_ATTR_CONTROL) || mq_batch_last_offset(&bi) < from)
            continue;
        /* Kafka refuses zstd to a client whose Fetch predates it (v10) rather than convert it; other codecs
         * are decompressed and the records converted (written uncompressed: every client reads that). */
        if ((bi.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK) == MQ_CODEC_ZSTD)
            return MQ_ERR_INVAL;
        struct mq_record_iter it;
        if ((err = mq_record_iter_open(&it, batch, &bi, inflated)) != MQ_OK)
            return err;
        bool append_time = (bi.attributes & MQ_BATCH_ATTR_LOG_APPEND_TIME) != 0;
        struct mq_record_view rv;
        int r;
        while ((r = mq_record_next(&it, &rv)) == 1) {
            if (rv.offset < from)
                continue;
            /* With LogAppendTime the batch's MaxTimestamp is every record's timestamp. */
            if ((err = put_message(out, &rv, magic, append_time,
                                   append_time ? bi.max_timestamp : rv.timestamp)) != MQ_OK)
                return err;
        }
        if (r < 0)
            return (enum mq_err) - r;
    }
    return MQ_OK;
}

enum mq_err mq_kafka_downconvert_slice(const struct mq_slice *s, int64_t from, int8_t magic,
                                       struct mq_kafka_msgs *out)
{
    uint8_t *buf = malloc(s->len ? s->len : 1);
    if (!buf)
        return MQ_ERR_NOMEM;
    size_t got = 0;
    while (got < s->len) {
        ssize_t n = pread(s->fd, buf + got, s->len - got, (off_t)(s->pos + (int64_t)got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return MQ_ERR_IO;
        }
        got += (size_t)n;
    }
    enum mq_err err = mq_kafka_downconvert(buf, s->len, from, magic, out);
    free(buf);
    return err;
}
