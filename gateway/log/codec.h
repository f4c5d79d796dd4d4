/*
 * codec.h - the compression codecs of Kafka's RecordBatch v2: what the records section of a batch is
 * compressed with (the low three bits of its Attributes, see batch.h).
 *
 * mqlog writes lz4 and zstd (a topic's `compression:`) and reads those plus gzip and snappy, which a segment
 * copied in from a Kafka broker may hold. The encodings are Kafka's:
 *  - gzip: RFC 1952 members (one or more, back to back);
 *  - snappy: the framing of Java's snappy-java (an 8-byte magic, two 4-byte versions, then blocks each led by
 *    a 4-byte big-endian length) or, as librdkafka writes it, one raw snappy block;
 *  - lz4: one LZ4 frame (the format of lz4's lz4frame.h) with independent blocks and a header checksum over
 *    the frame descriptor. Magic 0/1 message sets of Kafka before 0.10 computed that checksum over the wrong
 *    bytes; batches of magic 2 never did, so no fix-up is needed here;
 *  - zstd: one or more zstd frames.
 *
 * Decompression is bounded: a caller says how many bytes it accepts, and an input that would inflate past it
 * (a decompression bomb) fails as MQ_ERR_CORRUPT like any malformed or truncated frame, without ever holding
 * more than the limit (plus one growth step) in memory.
 *
 * Threads: any thread may call these functions. Each thread keeps its own zstd and lz4 contexts (allocated on
 * first use, freed when the thread exits), so that a batch costs no context allocation.
 */
#ifndef MQ_CODEC_H
#define MQ_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Values of the batch Attributes' compression field. */
enum mq_codec {
    MQ_CODEC_NONE = 0,
    MQ_CODEC_GZIP = 1,
    MQ_CODEC_SNAPPY = 2,
    MQ_CODEC_LZ4 = 3,
    MQ_CODEC_ZSTD = 4,
};
#define MQ_CODEC_COUNT 5 /* values 5-7 of the field are not defined by Kafka */

/* "none", "gzip", "snappy", "lz4", "zstd", or "unknown". */
const char *mq_codec_name(int codec);

/* A growing byte buffer (malloc'd). Zero-initialise it; release with mq_codec_buf_free(). */
struct mq_codec_buf {
    uint8_t *p;
    size_t len, cap;
};
void mq_codec_buf_free(struct mq_codec_buf *b);
/* Makes room for `more` bytes after len. MQ_ERR_NOMEM when it cannot. */
enum mq_err mq_codec_buf_reserve(struct mq_codec_buf *b, size_t more);

/*
 * A buffer of the calling thread, for output that is used before the thread needs it again (the batch
 * builder compresses into it: a partition writes the batch at once, so 10,000 partitions share one buffer
 * per writing thread instead of keeping one each). Freed when the thread exits. NULL when out of memory.
 */
struct mq_codec_buf *mq_codec_thread_buf(void);

/*
 * Appends src[0, len) compressed with codec to out (after out->len). MQ_ERR_INVAL for MQ_CODEC_NONE or an
 * unknown codec, MQ_ERR_NOMEM; on failure out->len is unchanged.
 */
enum mq_err mq_codec_compress(int codec, const void *src, size_t len, struct mq_codec_buf *out);

/*
 * Replaces out's contents with src[0, len) decompressed. MQ_ERR_CORRUPT when src is not a complete, valid
 * stream of the codec or inflates to more than limit bytes; MQ_ERR_INVAL for MQ_CODEC_NONE or an unknown
 * codec; MQ_ERR_NOMEM. On failure out->len is 0 (its buffer is kept for reuse).
 */
enum mq_err mq_codec_decompress(int codec, const void *src, size_t len, size_t limit,
                                struct mq_codec_buf *out);

#endif
