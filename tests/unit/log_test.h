/*
 * log_test.h - what the log's unit tests (test_log.c, test_cursor.c) share: a small configuration that
 * rolls segments and indexes often, and opening a log and a partition with the failure asserted.
 */
#ifndef MQ_LOG_TEST_H
#define MQ_LOG_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "testutil.h"

static inline struct mq_log_conf small_conf(void)
{
    struct mq_log_conf c;
    mq_log_conf_defaults(&c);
    c.segment_bytes = 64 * 1024;
    c.index_interval_bytes = 512;
    c.batch_bytes = 4096;
    c.max_pending_bytes = 1 << 20;
    c.flush_interval_ms = 2;
    return c;
}

static inline struct mq_log *open_log(const char *dir, enum mq_log_mode mode, const struct mq_log_conf *c)
{
    struct mq_log *log = NULL;
    char err[256];
    enum mq_err e = mq_log_open(dir, mode, c, &log, err, sizeof err);
    if (e != MQ_OK)
        fprintf(stderr, "mq_log_open: %s\n", err);
    CU_ASSERT_FATAL(e == MQ_OK);
    return log;
}

static inline struct mq_part *get_part(struct mq_log *log, const char *topic, int32_t p)
{
    struct mq_part *part = NULL;
    CU_ASSERT_FATAL(mq_log_part(log, topic, p, &part) == MQ_OK);
    return part;
}

/* Rewrites the uncompressed batch in b (finished, codec none) with its records compressed by codec, whether
 * that makes it smaller or not (the builder would keep a batch that does not shrink uncompressed), and
 * recomputes its Length and CRC: the batch another Kafka tool could have written. */
static inline void compress_built(struct mq_batch_builder *b, int codec)
{
    struct mq_codec_buf z = {0};
    CU_ASSERT_FATAL(mq_codec_buf_reserve(&z, MQ_BATCH_HEADER_SIZE) == MQ_OK);
    memcpy(z.p, b->buf, MQ_BATCH_HEADER_SIZE);
    z.len = MQ_BATCH_HEADER_SIZE;
    CU_ASSERT_FATAL(
        mq_codec_compress(codec, b->buf + MQ_BATCH_HEADER_SIZE, b->len - MQ_BATCH_HEADER_SIZE, &z) == MQ_OK);
    free(b->buf);
    b->buf = z.p;
    b->len = z.len;
    b->cap = z.cap;
    b->out = b->buf;
    b->out_len = b->len;
    mq_be32_put(b->buf + 8, (uint32_t)(b->len - MQ_BATCH_LOG_OVERHEAD));
    mq_be16_put(b->buf + 21,
                (uint16_t)((mq_be16_get(b->buf + 21) & ~MQ_BATCH_ATTR_COMPRESSION_MASK) | codec));
    mq_be32_put(b->buf + 17, mq_crc32c(0, b->buf + MQ_BATCH_CRC_START, b->len - MQ_BATCH_CRC_START));
}

#endif
