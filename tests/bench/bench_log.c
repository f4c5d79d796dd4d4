/*
 * bench_log.c - drives the log store for tests/bench/run: append throughput, filling a partition, and
 * reopening one (recovery time). Prints one machine-readable line per measurement: "key=value ...".
 *
 *   bench_log append DIR VALUE_BYTES PARTITIONS FLUSH_MS SECONDS
 *       one thread produces records round-robin over PARTITIONS partitions for SECONDS, then flushes;
 *       FLUSH_MS 0 is flush always. Reports durable records/s and MB/s of record values.
 *   bench_log fill DIR VALUE_BYTES TOTAL_BYTES
 *       writes TOTAL_BYTES of values into topic "fill" partition 0, then keeps writing until killed if
 *       TOTAL_BYTES is followed by "forever" (prints "filled" once the size is reached).
 *   bench_log reopen DIR
 *       opens the data directory and partition "fill"-0 for writing and reports the time it took.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "util/diag.h"
#include "util/parse.h"

static int64_t arg_i64(const char *s)
{
    int64_t v;
    if (mq_parse_size(s, &v) != MQ_OK) {
        fprintf(stderr, "bad number: %s\n", s);
        exit(2);
    }
    return v;
}

static struct mq_log *open_or_die(const char *dir, int64_t flush_ms)
{
    struct mq_log_conf c;
    mq_log_conf_defaults(&c);
    c.flush_interval_ms = flush_ms;
    struct mq_log *log;
    char err[256];
    if (mq_log_open(dir, MQ_LOG_WRITE, &c, &log, err, sizeof err) != MQ_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return log;
}

static int cmd_append(const char *dir, int64_t vsize, int64_t nparts, int64_t flush_ms, int64_t seconds)
{
    struct mq_log *log = open_or_die(dir, flush_ms);
    if (mq_log_topic_create(log, "bench", (int32_t)nparts) != MQ_OK)
        return 1;
    struct mq_part **parts = calloc((size_t)nparts, sizeof *parts);
    for (int32_t p = 0; p < nparts; p++)
        if (mq_log_part(log, "bench", p, &parts[p]) != MQ_OK)
            return 1;
    char *value = malloc((size_t)vsize);
    memset(value, 'x', (size_t)vsize);
    struct mq_record r = {0, NULL, -1, value, (int32_t)vsize, NULL, 0};
    int64_t n = 0, full = 0;
    int64_t t0 = mq_mono_us(), end = t0 + seconds * 1000000;
    while (mq_mono_us() < end) {
        for (int i = 0; i < 1000; i++) {
            r.timestamp = 1700000000000LL + n;
            enum mq_err e = mq_part_produce(parts[n % nparts], &r, NULL);
            if (e == MQ_ERR_FULL) {
                full++;
                mq_part_wait_durable(parts[n % nparts], mq_part_durable_end(parts[n % nparts]), 10);
                continue;
            }
            if (e != MQ_OK) {
                fprintf(stderr, "produce: %s\n", mq_strerror(e));
                return 1;
            }
            n++;
        }
    }
    for (int32_t p = 0; p < nparts; p++)
        if (mq_part_flush(parts[p]) != MQ_OK)
            return 1;
    double secs = (double)(mq_mono_us() - t0) / 1e6;
    printf("append value_bytes=%" PRId64 " partitions=%" PRId64 " flush_ms=%" PRId64 " records=%" PRId64
           " seconds=%.3f records_per_s=%.0f value_mb_per_s=%.1f backpressure_waits=%" PRId64 "\n",
           vsize, nparts, flush_ms, n, secs, (double)n / secs, (double)n * (double)vsize / secs / 1e6, full);
    free(value);
    free(parts);
    return mq_log_close(log) == MQ_OK ? 0 : 1;
}

static int cmd_fill(const char *dir, int64_t vsize, int64_t total, bool forever)
{
    struct mq_log *log = open_or_die(dir, 5);
    struct mq_part *p;
    if (mq_log_topic_create(log, "fill", 1) != MQ_OK || mq_log_part(log, "fill", 0, &p) != MQ_OK)
        return 1;
    char *value = malloc((size_t)vsize);
    memset(value, 'y', (size_t)vsize);
    struct mq_record r = {0, NULL, -1, value, (int32_t)vsize, NULL, 0};
    int64_t written = 0;
    bool said = false;
    for (int64_t n = 0;; n++) {
        r.timestamp = 1700000000000LL + n;
        enum mq_err e = mq_part_produce(p, &r, NULL);
        if (e == MQ_ERR_FULL) {
            mq_part_wait_durable(p, mq_part_durable_end(p), 10);
            continue;
        }
        if (e != MQ_OK)
            return 1;
        written += vsize;
        if (written >= total && !said) {
            if (mq_part_flush(p) != MQ_OK)
                return 1;
            printf("filled bytes=%" PRId64 " records=%" PRId64 "\n", written, n + 1);
            fflush(stdout);
            said = true;
            if (!forever)
                break;
        }
    }
    free(value);
    return mq_log_close(log) == MQ_OK ? 0 : 1;
}

static int cmd_reopen(const char *dir)
{
    int64_t t0 = mq_mono_us();
    struct mq_log *log = open_or_die(dir, 5);
    struct mq_part *p;
    if (mq_log_part(log, "fill", 0, &p) != MQ_OK)
        return 1;
    int64_t t1 = mq_mono_us();
    struct mq_part_stats st;
    mq_part_stats(p, &st);
    printf("reopen ms=%.2f end_offset=%" PRId64 " bytes=%" PRId64 " segments=%d\n",
           (double)(t1 - t0) / 1000.0, st.end_offset, st.bytes, st.segments);
    return mq_log_close(log) == MQ_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    mq_diag_level = MQ_LV_WARN;
    if (argc == 7 && strcmp(argv[1], "append") == 0)
        return cmd_append(argv[2], arg_i64(argv[3]), arg_i64(argv[4]), arg_i64(argv[5]), arg_i64(argv[6]));
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "fill") == 0)
        return cmd_fill(argv[2], arg_i64(argv[3]), arg_i64(argv[4]),
                        argc == 6 && strcmp(argv[5], "forever") == 0);
    if (argc == 3 && strcmp(argv[1], "reopen") == 0)
        return cmd_reopen(argv[2]);
    fprintf(stderr, "usage: bench_log append DIR VALUE_BYTES PARTITIONS FLUSH_MS SECONDS\n"
                    "       bench_log fill DIR VALUE_BYTES TOTAL_BYTES [forever]\n"
                    "       bench_log reopen DIR\n");
    return 2;
}
