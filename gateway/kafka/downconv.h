/*
 * downconv.h - stored RecordBatch v2 batches rewritten as a message set of format v0 or v1, for clients whose
 * Fetch version (0-3) predates record batches (sarama at its default Version, kafka-go 0.2, old librdkafka).
 * Kafka down-converts for such clients; mqlog does the same, so they read every record instead of nothing.
 *
 * Fetch v0 and v1 get magic 0 (no timestamps), v2 and v3 magic 1 (a timestamp and its type per message), as
 * Kafka chooses. Each record becomes one message: offset, size, CRC-32 (IEEE, reflected: java.util.zip.CRC32)
 * over magic to the end, magic, attributes, (v1) timestamp, key, value. Record headers are dropped, as Kafka
 * drops them: neither format can carry them. Control batches (transaction markers) carry no data and are
 * skipped. Compressed batches are decompressed and their records converted like any others, as Kafka does;
 * the messages are written uncompressed (Kafka would compress them again: uncompressed costs no CPU and every
 * client reads it). zstd is the exception: Kafka answers UNSUPPORTED_COMPRESSION_TYPE to a Fetch below v10
 * (KIP-110) instead of converting, and so does mqlog (MQ_ERR_INVAL here).
 */
#ifndef MQ_KAFKA_DOWNCONV_H
#define MQ_KAFKA_DOWNCONV_H

#include <stddef.h>
#include <stdint.h>

#include "log/log.h"
#include "util/err.h"

/* A growing message set (malloc'd; free p). */
struct mq_kafka_msgs {
    uint8_t *p;
    size_t len, cap;
};

/* The message format a Fetch of version v gets: 0 for v0-1, 1 for v2-3 (and -1 for v4+, which get batches).
 */
int8_t mq_kafka_fetch_magic(int16_t v);

/*
 * Appends to out the records with offsets >= from of the whole batches in buf[0, len), as messages of format
 * magic (0 or 1). Batches whose header or CRC is bad are not expected here (the log serves checked batches
 * only); such bytes fail with MQ_ERR_CORRUPT, as do compressed records that do not decompress; a zstd batch
 * or one of a codec mqlog cannot decode fails with MQ_ERR_INVAL; MQ_ERR_NOMEM. On failure out keeps the
 * messages of the batches before the failing one.
 */
enum mq_err mq_kafka_downconvert(const uint8_t *buf, size_t len, int64_t from, int8_t magic,
                                 struct mq_kafka_msgs *out);
/* The same, decompressing into the caller's buffer inflated (kept for reuse; the caller frees it). */
enum mq_err mq_kafka_downconvert_with(const uint8_t *buf, size_t len, int64_t from, int8_t magic,
                                      struct mq_kafka_msgs *out, struct mq_codec_buf *inflated);

/* The same for the batches of a slice of the log (read with pread). MQ_ERR_IO when the read fails. */
enum mq_err mq_kafka_downconvert_slice(const struct mq_slice *s, int64_t from, int8_t magic,
                                       struct mq_kafka_msgs *out);

#endif
