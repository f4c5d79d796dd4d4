/*
 * batch.h - Kafka RecordBatch v2: building batches from records and reading them back.
 *
 * This is the unit the store writes (one write per batch) and, later, the unit the Kafka endpoint sends to
 * consumers unchanged. The layout is Kafka's, all integers big-endian (see ../shared/REFERENCE.md):
 *
 *   0 BaseOffset i64 | 8 Length i32 | 12 PartitionLeaderEpoch i32 | 16 Magic=2 i8 | 17 CRC-32C u32 of bytes
 *   21..end | 21 Attributes i16 | 23 LastOffsetDelta i32 | 27 BaseTimestamp i64 | 35 MaxTimestamp i64 |
 *   43 ProducerId i64 | 51 ProducerEpoch i16 | 53 BaseSequence i32 | 57 RecordsCount i32 | 61 Records
 *
 * mqlog writes batches with ProducerId -1, ProducerEpoch -1, BaseSequence -1, leader epoch 0, CreateTime
 * timestamps, uncompressed or with the records section compressed (codec.h): then the Attributes name the
 * codec and the CRC covers the compressed bytes, as in Kafka. The reader accepts any attributes;
 * mq_record_iter_open() decodes the records of every codec.
 */
#ifndef MQ_BATCH_H
#define MQ_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/codec.h"
#include "util/err.h"

#define MQ_BATCH_HEADER_SIZE  61 /* bytes before the first record */
#define MQ_BATCH_LOG_OVERHEAD 12 /* BaseOffset + Length: Length counts the bytes after these */
#define MQ_BATCH_MAGIC        2
#define MQ_BATCH_CRC_START    21                 /* the CRC covers [21, 12 + Length) */
#define MQ_BATCH_MAX_SIZE     (64 * 1024 * 1024) /* larger Length fields are treated as corruption */

/* Bits of the batch Attributes field (Kafka's RecordBatch v2). Compression codecs (values of the masked
 * field): 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
#define MQ_BATCH_ATTR_COMPRESSION_MASK 0x07
#define MQ_BATCH_ATTR_LOG_APPEND_TIME  0x08 /* timestamps are the broker's: MaxTimestamp applies to all */
#define MQ_BATCH_ATTR_TRANSACTIONAL    0x10
#define MQ_BATCH_ATTR_CONTROL          0x20 /* a transaction marker, not data */

/* CRC-32C (Castagnoli) of len bytes, continuing from crc (start with 0). ISA-L's accelerated routine. */
uint32_t mq_crc32c(uint32_t crc, const void *buf, size_t len);

/* One record header; value_len -1 means a null value. */
struct mq_header {
    const char *key;
    int32_t key_len;
    const void *value;
    int32_t value_len;
};

/* One record to append. key_len/value_len -1 mean null. headers may be NULL when header_count is 0. */
struct mq_record {
    int64_t timestamp; /* ms since the epoch */
    const void *key;
    int32_t key_len;
    const void *value;
    int32_t value_len;
    const struct mq_header *headers;
    int32_t header_count;
};

/* Bytes mq_batch_add() will append for r (the record's length varint included), at most: the timestamp and
 * offset deltas depend on the batch, so they are counted at their widest (10 and 5 bytes). For the exact
 * size in a given batch use mq_batch_record_size(). */
size_t mq_record_encoded_size(const struct mq_record *r);

/*
 * Builds one batch in a growing heap buffer. Usage: mq_batch_builder_init(); mq_batch_reset(b, base);
 * mq_batch_add() per record; mq_batch_finish() fills in the header and CRC; then b->out[0..b->out_len) is the
 * complete batch (b->buf itself when uncompressed). reset() starts the next batch reusing the buffers;
 * mq_batch_builder_free() releases them.
 *
 * Compression: set b->codec (MQ_CODEC_LZ4 or MQ_CODEC_ZSTD; default none) before finish(). The records stay
 * uncompressed in buf, so more may be added and finish() called again; the compressed batch is built in the
 * calling thread's buffer (mq_codec_thread_buf()), so b->out is then valid only until that thread's next
 * finish() of a compressed batch: write or copy it at once. A batch whose records do not get smaller (a
 * single tiny record), or that cannot be compressed (out of memory), is written uncompressed: every reader
 * takes both.
 */
struct mq_batch_builder {
    uint8_t *buf; /* the header and the uncompressed records */
    size_t len;   /* bytes used, header included */
    size_t cap;
    int64_t base_offset;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t count;
    int codec;          /* enum mq_codec for finish() */
    const uint8_t *out; /* after finish(): the complete batch, buf or the thread's buffer */
    size_t out_len;
};

void mq_batch_builder_init(struct mq_batch_builder *b);
void mq_batch_builder_free(struct mq_batch_builder *b);
/* Frees the buffer of a builder that holds no record (count 0), which stays usable: the next add allocates
 * it again. Returns the bytes freed (0 when it held records or no buffer). */
size_t mq_batch_builder_release(struct mq_batch_builder *b);
void mq_batch_reset(struct mq_batch_builder *b, int64_t base_offset);
/* MQ_ERR_NOMEM when the buffer cannot grow, MQ_ERR_INVAL for negative lengths other than -1 (or a null
 * header key), MQ_ERR_RANGE when the batch would pass MQ_BATCH_MAX_SIZE (finish it and add r to the next;
 * if r is alone in its batch it can never be stored). On error the batch is unchanged. */
enum mq_err mq_batch_add(struct mq_batch_builder *b, const struct mq_record *r);
/* Exact bytes mq_batch_add(b, r) would append now (r's deltas computed against b's current state). */
size_t mq_batch_record_size(const struct mq_batch_builder *b, const struct mq_record *r);
/* Writes the header and CRC (compressing the records when b->codec says so) and sets b->out, b->out_len.
 * The batch must hold at least one record. */
void mq_batch_finish(struct mq_batch_builder *b);

/* The fixed header of a stored batch. */
struct mq_batch_info {
    int64_t base_offset;
    int32_t length; /* bytes after the Length field */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t count;
};

/* Total bytes of the batch on disk: MQ_BATCH_LOG_OVERHEAD + length. */
static inline size_t mq_batch_size(const struct mq_batch_info *bi)
{
    return (size_t)MQ_BATCH_LOG_OVERHEAD + (size_t)bi->length;
}
static inline int64_t mq_batch_last_offset(const struct mq_batch_info *bi)
{
    return bi->base_offset + bi->last_offset_delta;
}

/*
 * Parses the header at p (avail bytes readable). Returns MQ_OK, MQ_ERR_RANGE when avail < 61 (need more
 * bytes: a partial header), or MQ_ERR_CORRUPT when the fields are impossible (magic != 2, Length < 49 or
 * > MQ_BATCH_MAX_SIZE, negative counts, LastOffsetDelta < RecordsCount - 1, BaseOffset < 0, a last offset
 * of INT64_MAX (the offset after the batch must be representable), more uncompressed records than Length
 * can hold ...). It does not check the CRC.
 */
enum mq_err mq_batch_parse_header(const uint8_t *p, size_t avail, struct mq_batch_info *bi);

/* True when the stored CRC matches the bytes [21, size) of the complete batch at p. */
bool mq_batch_crc_ok(const uint8_t *p, const struct mq_batch_info *bi);

/* A decoded record: pointers into the batch buffer, valid while the buffer is. */
struct mq_record_view {
    int64_t offset;
    int64_t timestamp;
    const uint8_t *key;
    int32_t key_len; /* -1: null */
    const uint8_t *value;
    int32_t value_len; /* -1: null */
    int32_t header_count;
    const uint8_t *headers; /* encoded headers, walk with mq_header_next() */
    const uint8_t *headers_end;
};

/* Walks the records of one complete batch. */
struct mq_record_iter {
    const uint8_t *p;
    const uint8_t *end;
    struct mq_batch_info info;
    int32_t remaining;
};

/* The most bytes the records of one batch may inflate to: more is a decompression bomb, reported as damage.
 * As much as one uncompressed batch may hold. */
#define MQ_BATCH_MAX_RECORDS_SIZE ((size_t)MQ_BATCH_MAX_SIZE)

/* Over the records of an uncompressed batch only: MQ_ERR_INVAL for a compressed one (attributes &
 * MQ_BATCH_ATTR_COMPRESSION_MASK). */
enum mq_err mq_record_iter_init(struct mq_record_iter *it, const uint8_t *batch,
                                const struct mq_batch_info *bi);

/*
 * Over the records of any batch: a compressed batch's records are decompressed into scratch (a caller's
 * buffer, reused from batch to batch; the records point into it until its next use), at most
 * MQ_BATCH_MAX_RECORDS_SIZE bytes. MQ_ERR_CORRUPT when the records do not decompress (a corrupt or truncated
 * frame, or a bomb), MQ_ERR_INVAL for a codec mqlog cannot decode (undefined values 5-7, or snappy in a build
 * without libsnappy), MQ_ERR_NOMEM.
 */
enum mq_err mq_record_iter_open(struct mq_record_iter *it, const uint8_t *batch,
                                const struct mq_batch_info *bi, struct mq_codec_buf *scratch);
/* 1 and *rv filled, 0 at the end, or -MQ_ERR_CORRUPT when a record is malformed (never reads outside the
 * batch) or bytes remain after the last record. */
int mq_record_next(struct mq_record_iter *it, struct mq_record_view *rv);
/* Walks rv's headers: 1 and *h filled (key/value point into the batch), 0 at the end, <0 when malformed. */
int mq_header_next(const uint8_t **cursor, const uint8_t *end, struct mq_header *h);

/* Zig-zag varints as Kafka encodes them. put returns bytes written (<= 10); get returns bytes read or 0 on
 * truncated/overlong input. */
size_t mq_varint_put(uint8_t *p, int64_t v);
size_t mq_varint_get(const uint8_t *p, const uint8_t *end, int64_t *v);
size_t mq_varint_size(int64_t v);

/* Big-endian helpers. */
static inline void mq_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void mq_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void mq_be64_put(uint8_t *p, uint64_t v)
{
    mq_be32_put(p, (uint32_t)(v >> 32));
    mq_be32_put(p + 4, (uint32_t)v);
}
static inline uint16_t mq_be16_get(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t mq_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t mq_be64_get(const uint8_t *p)
{
    return (uint64_t)mq_be32_get(p) << 32 | mq_be32_get(p + 4);
}

#endif
