/*
 * test_log_fds.c - the log with many partitions: 10,000 partitions written and read back under a hard
 * RLIMIT_NOFILE of 4,096 (the fd cache closes idle partitions' descriptors and reopens them on demand),
 * writing again to partitions whose descriptors were closed, a reader process's view of them, and a small
 * explicit bound (max_open_files) that the process's descriptor count stays near, also across a
 * recompaction pass.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "log_test.h"
#include "testutil.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Open descriptors of this process. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own */
}

static enum mq_err produce_tagged(struct mq_part *part, int32_t p, int64_t k)
{
    char v[64];
    int vl = snprintf(v, sizeof v, "p%" PRId32 "-%" PRId64, p, k);
    struct mq_record r = {1700000000000LL + k, NULL, -1, v, vl, NULL, 0};
    return mq_part_produce(part, &r, NULL);
}

/* Reads partition p from offset 0 and checks it holds exactly records p-0 .. p-(n-1). */
static bool check_part(struct mq_log *log, const char *topic, int32_t p, int64_t n)
{
    struct mq_part *part = NULL;
    if (mq_log_part(log, topic, p, &part) != MQ_OK)
        return false;
    struct mq_cursor *cur = NULL;
    if (mq_cursor_open(part, 0, &cur) != MQ_OK)
        return false;
    int64_t k = 0;
    bool ok = true;
    struct mq_record_view rv;
    int r;
    while (ok && (r = mq_cursor_next(cur, &rv)) == 1) {
        char v[64];
        int vl = snprintf(v, sizeof v, "p%" PRId32 "-%" PRId64, p, k);
        ok = rv.offset == k && rv.value_len == vl && memcmp(rv.value, v, (size_t)vl) == 0;
        k++;
    }
    mq_cursor_close(cur);
    if (!ok || k != n)
        fprintf(stderr, "partition %d: %" PRId64 " records read, %" PRId64 " expected\n", (int)p, k, n);
    return ok && k == n;
}

static void test_ten_thousand(void)
{
    const int32_t np = 10000;
    struct rlimit rl;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 4096)
        rl.rlim_max = 4096;
    rl.rlim_cur = rl.rlim_max; /* as mqlogd does at start */
    CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &rl) == 0);

    char *dir = mq_test_tmpdir("fds");
    struct mq_log_conf c;
    mq_log_conf_defaults(&c);
    c.flush_interval_ms = 2;
    double t0 = now_s();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "dev", np) == MQ_OK);
    int most = 0;
    for (int32_t p = 0; p < np; p++) {
        struct mq_part *part = NULL;
        enum mq_err perr = mq_log_part(log, "dev", p, &part);
        if (perr != MQ_OK)
            fprintf(stderr, "partition %d: %s (%d descriptors open)\n", (int)p, mq_strerror(perr),
                    open_fds());
        CU_ASSERT_FATAL(perr == MQ_OK);
        for (int64_t k = 0; k < 3; k++)
            CU_ASSERT_FATAL(produce_tagged(part, p, k) == MQ_OK);
        if (p % 500 == 0) {
            int n = open_fds();
            most = n > most ? n : most;
        }
    }
    /* every partition durable: the flusher wrote and synced them all through the cache */
    for (int32_t p = 0; p < np; p++) {
        struct mq_part *part = NULL;
        CU_ASSERT_FATAL(mq_log_part(log, "dev", p, &part) == MQ_OK);
        CU_ASSERT_FATAL(mq_part_wait_durable(part, 2, 60000) == MQ_OK);
    }
    int n = open_fds();
    most = n > most ? n : most;
    fprintf(stderr, "10,000 partitions written in %.1f s: at most %d descriptors seen (hard limit %llu)\n",
            now_s() - t0, most, (unsigned long long)rl.rlim_max);
    CU_ASSERT(most < (int)rl.rlim_max);
    /* writing again where the descriptors were closed long ago, then reading everything back */
    for (int32_t p = 0; p < np; p += 97) {
        struct mq_part *part = NULL;
        CU_ASSERT_FATAL(mq_log_part(log, "dev", p, &part) == MQ_OK);
        CU_ASSERT_FATAL(produce_tagged(part, p, 3) == MQ_OK);
        CU_ASSERT_FATAL(mq_part_flush(part) == MQ_OK);
    }
    bool all = true;
    for (int32_t p = 0; p < np && all; p++)
        all = check_part(log, "dev", p, p % 97 == 0 ? 4 : 3);
    CU_ASSERT(all);
    CU_ASSERT(open_fds() < (int)rl.rlim_max);
    fprintf(stderr, "read back at %.1f s\n", now_s() - t0);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    fprintf(stderr, "closed at %.1f s\n", now_s() - t0);

    /* a reader (as mqlog consume opens the store) under the same limit */
    log = open_log(dir, MQ_LOG_READ, NULL);
    all = true;
    for (int32_t p = np - 1; p >= 0 && all; p -= 7)
        all = check_part(log, "dev", p, p % 97 == 0 ? 4 : 3);
    CU_ASSERT(all);
    CU_ASSERT(open_fds() < (int)rl.rlim_max);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    fprintf(stderr, "read again at %.1f s\n", now_s() - t0);
    mq_test_rmdir(dir);
}

/* A small explicit bound: the descriptors stay near it while 300 partitions are written and read in turn,
 * twice. */
static void test_small_bound(void)
{
    char *dir = mq_test_tmpdir("fds-small");
    struct mq_log_conf c = small_conf();
    c.max_open_files = 64; /* 16 partitions in use at a time */
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    int base = open_fds();
    CU_ASSERT_FATAL(mq_log_topic_create(log, "s", 300) == MQ_OK);
    int most = 0;
    for (int round = 0; round < 2; round++) {
        for (int32_t p = 0; p < 300; p++) {
            struct mq_part *part = NULL;
            CU_ASSERT_FATAL(mq_log_part(log, "s", p, &part) == MQ_OK);
            for (int64_t k = round * 50; k < round * 50 + 50; k++)
                CU_ASSERT_FATAL(produce_tagged(part, p, k) == MQ_OK);
            int n = open_fds() - base;
            most = n > most ? n : most;
        }
        for (int32_t p = 0; p < 300; p++)
            CU_ASSERT_FATAL(mq_part_wait_durable(get_part(log, "s", p), round * 50 + 49, 60000) == MQ_OK);
        for (int32_t p = 0; p < 300; p++) {
            CU_ASSERT_FATAL(check_part(log, "s", p, round * 50 + 50));
            int n = open_fds() - base;
            most = n > most ? n : most;
        }
    }
    fprintf(stderr, "max_open_files 64: at most %d descriptors above the start\n", most);
    CU_ASSERT(most <= 2 * 64);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    /* reopened for writing: recovery finds every record */
    log = open_log(dir, MQ_LOG_WRITE, &c);
    bool all = true;
    for (int32_t p = 0; p < 300 && all; p++)
        all = check_part(log, "s", p, 100);
    CU_ASSERT(all);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

/* The bound of 64 across a recompaction pass over 160 partitions, 40 of them with closed segments to
 * rewrite and 120 without a codec. A pass used to hold a process-wide lock that the fd cache needed to
 * close any partition's directory, and to reopen every partition's directory, codec or not: the pass
 * itself left them all open, and a recompactor preempted while holding the lock kept the cache from
 * closing any, which at 10,000 partitions under a hard limit of 4,096 ended in EMFILE (test_ten_thousand,
 * in a CI run under load). */
static void test_recompaction_pass(void)
{
    const int32_t np = 160, zp = 40; /* partitions 0 .. zp-1 compress */
    char *dir = mq_test_tmpdir("fds-rc");
    struct mq_log_conf c = small_conf();
    c.max_open_files = 64;
    c.segment_ms = 20;         /* a roll every 21 records: closed segments for the pass to rewrite */
    c.recompact_after_ms = -1; /* no recompactor thread: the test's pass instead */
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    int base = open_fds();
    CU_ASSERT_FATAL(mq_log_topic_create(log, "z", np) == MQ_OK);
    for (int32_t p = 0; p < np; p++) {
        struct mq_part *part = get_part(log, "z", p);
        if (p < zp)
            mq_part_set_compression(part, MQ_CODEC_ZSTD);
        for (int64_t k = 0; k < 50; k++) { /* a batch each, for the rewrite to pack */
            char v[64];
            int vl = snprintf(v, sizeof v, "p%" PRId32 "-%" PRId64, p, k);
            struct mq_record r = {1700000000000LL + k, NULL, -1, v, vl, NULL, 0};
            CU_ASSERT_FATAL(mq_part_append(part, &r, 1, NULL) == MQ_OK);
        }
    }
    for (int32_t p = 0; p < np; p++)
        CU_ASSERT_FATAL(mq_part_wait_durable(get_part(log, "z", p), 49, 60000) == MQ_OK);
    int before = open_fds() - base;
    CU_ASSERT(mq_log_recompact(log, 0) == MQ_OK); /* recompact_after_ms -1: every closed segment is due */
    int after = open_fds() - base;
    struct mq_log_stats st;
    mq_log_stats(log, &st);
    fprintf(stderr,
            "max_open_files 64, a pass that rewrote %" PRId64 " segments: %d descriptors above the start "
            "before it, %d after\n",
            st.recompacted_segments, before, after);
    CU_ASSERT(st.recompacted_segments >= zp);
    CU_ASSERT(after <= 2 * 64);
    bool all = true;
    for (int32_t p = 0; p < np && all; p++)
        all = check_part(log, "z", p, 50);
    CU_ASSERT(all);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_small_bound),
        MQ_TEST(test_recompaction_pass),
        MQ_TEST(test_ten_thousand),
        MQ_TEST_END,
    };
    return mq_test_run("log_fds", tests);
}
