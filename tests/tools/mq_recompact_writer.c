/*
 * mq_recompact_writer.c - drives the log for the recompaction crash test (tests/integration/
 * test_recompact_crash.py): appends numbered records to topic "rc" (partition 0, zstd) in small segments
 * while a second thread recompacts every closed segment as soon as it can, so that a kill -9 at a random
 * moment is likely to land inside a rewrite or its swap.
 *
 *   mq_recompact_writer DATA_DIR [UNTIL]
 *
 * Record n (its offset) has key "k<n % 17>", value "r<n>", timestamp 1700000000000 + n and a header
 * mqtt.topic "sensors/<n % 17>/temp": a reader checks each record against its offset. A restarted writer
 * continues at the partition's end offset. After each flush it prints "durable N recompacted K" (N: the
 * durable end offset, K: segments this process rewrote). With UNTIL it stops once N >= UNTIL, closes the
 * log cleanly and exits 0; without, it runs until killed (at most 5 minutes).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "util/parse.h"

static atomic_bool stop;
static struct mq_log *log_;

static void *recompactor(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        mq_log_recompact(log_, mq_now_ms());
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* a poll: recompact what closed since the last pass, 1 ms later */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mq_recompact_writer DATA_DIR [UNTIL]\n");
        return 2;
    }
    int64_t until = argc > 2 ? strtoll(argv[2], NULL, 10) : INT64_MAX;
    struct mq_log_conf conf;
    mq_log_conf_defaults(&conf);
    conf.segment_bytes = 64 * 1024; /* a roll every few hundred records: rewrites all the time */
    conf.index_interval_bytes = 1024;
    conf.flush_interval_ms = 2;
    conf.recompact_after_ms = -1; /* the thread below does it, without the thread's 1 s poll */
    char err[256];
    if (mq_log_open(argv[1], MQ_LOG_WRITE, &conf, &log_, err, sizeof err) != MQ_OK) {
        fprintf(stderr, "mq_log_open: %s\n", err);
        return 1;
    }
    struct mq_part *part;
    if (mq_log_topic_create(log_, "rc", 1) != MQ_OK || mq_log_part(log_, "rc", 0, &part) != MQ_OK) {
        fprintf(stderr, "cannot open rc-0\n");
        return 1;
    }
    mq_part_set_compression(part, MQ_CODEC_ZSTD);
    int64_t start, n;
    if (mq_part_offsets(part, &start, &n) != MQ_OK)
        return 1;
    pthread_t th;
    if (pthread_create(&th, NULL, recompactor, NULL) != 0)
        return 1;
    int64_t deadline = mq_mono_ms() + 5 * 60 * 1000;
    int rc = 0;
    while (n < until && mq_mono_ms() < deadline) {
        for (int i = 0; i < 100; i++, n++) {
            char key[16], val[32], topic[32];
            snprintf(key, sizeof key, "k%" PRId64, n % 17);
            snprintf(val, sizeof val, "r%" PRId64, n);
            snprintf(topic, sizeof topic, "sensors/%" PRId64 "/temp", n % 17);
            struct mq_header h = {"mqtt.topic", 10, topic, (int32_t)strlen(topic)};
            struct mq_record r = {
                1700000000000LL + n, key, (int32_t)strlen(key), val, (int32_t)strlen(val), &h, 1};
            int64_t off;
            if (mq_part_append(part, &r, 1, &off) != MQ_OK || off != n) {
                fprintf(stderr, "append at %" PRId64 " failed\n", n);
                rc = 1;
                goto out;
            }
        }
        if (mq_part_flush(part) != MQ_OK) {
            rc = 1;
            break;
        }
        struct mq_log_stats ls;
        mq_log_stats(log_, &ls);
        printf("durable %" PRId64 " recompacted %" PRId64 "\n", mq_part_durable_end(part),
               ls.recompacted_segments);
        fflush(stdout);
    }
out:
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    if (mq_log_close(log_) != MQ_OK)
        rc = 1;
    return rc;
}
