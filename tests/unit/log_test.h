/*
 * log_test.h - what the log's unit tests (test_log.c, test_cursor.c) share: a small configuration that
 * rolls segments and indexes often, and opening a log and a partition with the failure asserted.
 */
#ifndef MQ_LOG_TEST_H
#define MQ_LOG_TEST_H

#include <stdio.h>

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

#endif
