/*
 * test_log.c - the log store: append and read back, reopen, index and time lookups across segments,
 * retention and its hold, the disk cap, recovery from cut and damaged tails, a writer killed with SIGKILL, a
 * reader process following a writer process, group commit across many rolls, removing the durable callback
 * while it runs, readers and retention beside a writer in one process, a full disk (a small tmpfs), and an
 * idle partition giving back its write buffers.
 *
 * Every record's value is "v<offset>" (padded), so any record read back can be checked against its offset.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "gate.h"
#include "log/log_int.h"
#include "log_test.h"
#include "testutil.h"
#include "util/diag.h"
#include "util/parse.h"

/* Record `off` of the test stream: value "v<off>" padded to a length that varies with off. */
static int make_value(int64_t off, char *buf, size_t size)
{
    int n = snprintf(buf, size, "v%" PRId64 "-", off);
    int pad = (int)(off % 37);
    for (int i = 0; i < pad && (size_t)n + 1 < size; i++)
        buf[n++] = (char)('a' + (off + i) % 26);
    buf[n] = '\0';
    return n;
}

static int64_t ts_of(int64_t off)
{
    /* increasing on the whole, with a small step back every 7th record */
    return 1700000000000LL + off * 10 - (off % 7 == 3 ? 15 : 0);
}

static enum mq_err produce_n(struct mq_part *part, int64_t from, int64_t n)
{
    char v[128], k[32];
    struct mq_header h = {"h", 1, "x", 1};
    for (int64_t off = from; off < from + n; off++) {
        int vl = make_value(off, v, sizeof v);
        int kl = snprintf(k, sizeof k, "k%" PRId64, off % 13);
        struct mq_record r = {ts_of(off), k, kl, v, vl, &h, off % 2 ? 1 : 0};
        int64_t got;
        enum mq_err e = mq_part_produce(part, &r, &got);
        if (e != MQ_OK)
            return e;
        if (got != off)
            return MQ_ERR_RANGE;
    }
    return MQ_OK;
}

/* Reads every visible record from `from`, checks each against its offset; returns the count, -1 on a
 * mismatch. *next gets the offset after the last record. */
static int64_t read_check(struct mq_part *part, int64_t from, int64_t *next)
{
    int64_t off = from, count = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (;;) {
        struct mq_slice s;
        enum mq_err e = mq_part_read(part, off, 64 * 1024, &s);
        if (e != MQ_OK) {
            fprintf(stderr, "read at %" PRId64 ": %s\n", off, mq_strerror(e));
            count = -1;
            break;
        }
        if (s.len == 0)
            break;
        if (s.len > cap) {
            cap = s.len;
            buf = realloc(buf, cap);
        }
        if (pread(s.fd, buf, s.len, s.pos) != (ssize_t)s.len) {
            mq_slice_release(&s);
            count = -1;
            break;
        }
        mq_slice_release(&s);
        size_t p = 0;
        while (p < s.len) {
            struct mq_batch_info bi;
            if (mq_batch_parse_header(buf + p, s.len - p, &bi) != MQ_OK || !mq_batch_crc_ok(buf + p, &bi)) {
                fprintf(stderr, "bad batch in slice at %" PRId64 "\n", off);
                free(buf);
                return -1;
            }
            struct mq_record_iter it;
            struct mq_record_view rv;
            mq_record_iter_init(&it, buf + p, &bi);
            while (mq_record_next(&it, &rv) == 1) {
                if (rv.offset < off)
                    continue;
                char v[128];
                int vl = make_value(rv.offset, v, sizeof v);
                if (rv.offset != off || rv.value_len != vl || memcmp(rv.value, v, (size_t)vl) != 0 ||
                    rv.timestamp != ts_of(rv.offset)) {
                    fprintf(stderr, "record mismatch at %" PRId64 " (got offset %" PRId64 ")\n", off,
                            rv.offset);
                    free(buf);
                    return -1;
                }
                off++;
                count++;
            }
            p += mq_batch_size(&bi);
        }
    }
    free(buf);
    if (next)
        *next = off;
    return count;
}

static void test_produce_read_reopen(void)
{
    char *dir = mq_test_tmpdir("log");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 2) == MQ_OK);
    struct mq_part *p0 = get_part(log, "t", 0);
    CU_ASSERT(produce_n(p0, 0, 5000) == MQ_OK);
    CU_ASSERT(mq_part_wait_durable(p0, 4999, 5000) == MQ_OK);
    int64_t next;
    CU_ASSERT(read_check(p0, 0, &next) == 5000);
    CU_ASSERT(next == 5000);
    /* append() after produce() keeps the order */
    char v[128];
    struct mq_record recs[3];
    char vals[3][128];
    for (int i = 0; i < 3; i++) {
        int vl = make_value(5000 + i, vals[i], sizeof vals[i]);
        recs[i] = (struct mq_record){ts_of(5000 + i), NULL, -1, vals[i], vl, NULL, 0};
    }
    int64_t first;
    CU_ASSERT(mq_part_append(p0, recs, 3, &first) == MQ_OK);
    CU_ASSERT(first == 5000);
    (void)v;
    CU_ASSERT(mq_part_flush(p0) == MQ_OK);
    CU_ASSERT(mq_part_durable_end(p0) == 5003);
    struct mq_part_stats st;
    CU_ASSERT(mq_part_stats(p0, &st) == MQ_OK);
    CU_ASSERT(st.start_offset == 0 && st.end_offset == 5003 && st.segments > 1);
    CU_ASSERT(st.newest_timestamp == ts_of(5002));
    CU_ASSERT(mq_part_read(p0, 5004, 100, &(struct mq_slice){0}) == MQ_ERR_RANGE);
    /* the other partition is empty */
    struct mq_part *p1 = get_part(log, "t", 1);
    CU_ASSERT(read_check(p1, 0, &next) == 0);
    CU_ASSERT(mq_log_part(log, "nosuch", 0, &p1) == MQ_ERR_NOENT);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* a second writer is refused while one is open */
    log = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_log *log2 = NULL;
    char err[200];
    CU_ASSERT(mq_log_open(dir, MQ_LOG_WRITE, &c, &log2, err, sizeof err) == MQ_ERR_BUSY);
    p0 = get_part(log, "t", 0);
    CU_ASSERT(mq_part_durable_end(p0) == 5003);
    CU_ASSERT(read_check(p0, 0, &next) == 5003);
    CU_ASSERT(produce_n(p0, 5003, 10) == MQ_OK);
    CU_ASSERT(mq_part_flush(p0) == MQ_OK);
    CU_ASSERT(read_check(p0, 4990, &next) == 23);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    int64_t problems = -1, batches = 0;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, &batches) == MQ_OK);
    CU_ASSERT(problems == 0);
    CU_ASSERT(batches > 10);
    mq_test_rmdir(dir);
}

static void test_index_boundaries(void)
{
    char *dir = mq_test_tmpdir("idx");
    struct mq_log_conf c = small_conf();
    c.batch_bytes = 300; /* many small batches: several per index interval and per segment */
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    const int64_t n = 6000;
    CU_ASSERT(produce_n(p, 0, n) == MQ_OK);
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    struct mq_part_stats st;
    mq_part_stats(p, &st);
    CU_ASSERT(st.segments >= 4);
    /* every offset: the slice starts with the batch that holds it and never spans segments */
    int bad = 0;
    for (int64_t off = 0; off < n; off++) {
        struct mq_slice s;
        if (mq_part_read(p, off, 1, &s) != MQ_OK || s.len == 0 || s.first_offset > off ||
            s.next_offset <= off) {
            bad++;
            continue;
        }
        mq_slice_release(&s);
    }
    CU_ASSERT(bad == 0);
    /* by time: the first offset whose timestamp is >= T, compared with a brute-force answer */
    int tbad = 0;
    for (int64_t t = ts_of(0) - 5; t <= ts_of(n - 1) + 5; t += 7) {
        int64_t expect = -1;
        for (int64_t off = 0; off < n; off++)
            if (ts_of(off) >= t) {
                expect = off;
                break;
            }
        int64_t got;
        if (mq_part_offset_for_time(p, t, &got) != MQ_OK || got != expect) {
            if (tbad++ < 5)
                fprintf(stderr, "time %" PRId64 ": expected %" PRId64 " got %" PRId64 "\n", t, expect, got);
        }
    }
    CU_ASSERT(tbad == 0);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* the same lookups from a reader (read-only open) */
    log = open_log(dir, MQ_LOG_READ, &c);
    p = get_part(log, "t", 0);
    int64_t got;
    CU_ASSERT(mq_part_offset_for_time(p, ts_of(4321), &got) == MQ_OK);
    CU_ASSERT(got == 4321);
    CU_ASSERT(read_check(p, 1234, NULL) == n - 1234);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

static void test_retention(void)
{
    char *dir = mq_test_tmpdir("ret");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    CU_ASSERT(produce_n(p, 0, 20000) == MQ_OK);
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    struct mq_part_stats st;
    mq_part_stats(p, &st);
    int32_t segs = st.segments;
    CU_ASSERT(segs > 10);
    /* by bytes: keep at most 200 KiB */
    struct mq_retention r = {0, 200 * 1024};
    mq_part_set_retention(p, &r);
    int deleted = 0;
    CU_ASSERT(mq_part_apply_retention(p, mq_now_ms(), &deleted) == MQ_OK);
    mq_part_stats(p, &st);
    CU_ASSERT(deleted > 0 && st.segments == segs - deleted);
    /* Kafka's rule: whole segments go while the rest stays at or above the limit */
    CU_ASSERT(st.bytes >= 200 * 1024 && st.bytes < 200 * 1024 + c.segment_bytes);
    CU_ASSERT(st.start_offset > 0 && st.end_offset == 20000);
    struct mq_slice s;
    CU_ASSERT(mq_part_read(p, st.start_offset - 1, 100, &s) == MQ_ERR_RANGE);
    CU_ASSERT(read_check(p, st.start_offset, NULL) == 20000 - st.start_offset);
    int64_t got;
    CU_ASSERT(mq_part_offset_for_time(p, ts_of(0), &got) == MQ_OK);
    CU_ASSERT(got == st.start_offset);
    CU_ASSERT(mq_part_offset_for_time(p, ts_of(19000), &got) == MQ_OK && got == 19000);
    /* by time: records are from 2023; a 7-day retention at "now" removes all but the active segment, which is
     * rolled away too because all of it expired */
    r = (struct mq_retention){MQ_RETENTION_MS_DEFAULT, 0};
    mq_part_set_retention(p, &r);
    int64_t before = st.start_offset;
    CU_ASSERT(mq_part_apply_retention(p, ts_of(17000) + MQ_RETENTION_MS_DEFAULT, &deleted) == MQ_OK);
    mq_part_stats(p, &st);
    if (!(st.start_offset > before && st.start_offset <= 17000))
        fprintf(stderr, "after time retention: start %" PRId64 " deleted %d\n", st.start_offset, deleted);
    CU_ASSERT(read_check(p, st.start_offset, NULL) == 20000 - st.start_offset);
    CU_ASSERT(deleted > 0 && st.start_offset > before && st.start_offset <= 17000);
    CU_ASSERT(mq_part_apply_retention(p, mq_now_ms(), &deleted) == MQ_OK);
    mq_part_stats(p, &st);
    CU_ASSERT(st.start_offset == 20000 && st.end_offset == 20000 && st.segments == 1);
    enum mq_err pe = produce_n(p, 20000, 5);
    if (pe != MQ_OK)
        fprintf(stderr, "produce after retention: %s (start %" PRId64 " end %" PRId64 " segs %d)\n",
                mq_strerror(pe), st.start_offset, st.end_offset, st.segments);
    CU_ASSERT(pe == MQ_OK);
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    CU_ASSERT(read_check(p, 20000, NULL) == 5);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    /* reopen after retention */
    log = open_log(dir, MQ_LOG_WRITE, &c);
    p = get_part(log, "t", 0);
    mq_part_stats(p, &st);
    CU_ASSERT(st.start_offset == 20000 && st.end_offset == 20005);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    mq_test_rmdir(dir);
}

/* ---- crash safety ---- */

/* In a child process: writes `batches` batches of 3 records and exits without closing (no clean recovery
 * point). The first batch is covered by a recovery point, the rest form the tail that recovery scans. */
static void write_unclean(const char *dir, int batches)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct mq_log_conf c = small_conf();
        c.checkpoint_bytes = 1LL << 40;
        struct mq_log *log = NULL;
        if (mq_log_open(dir, MQ_LOG_WRITE, &c, &log, NULL, 0) != MQ_OK || mq_log_topic_create(log, "t", 1))
            _exit(2);
        struct mq_part *p;
        if (mq_log_part(log, "t", 0, &p) != MQ_OK)
            _exit(3);
        for (int b = 0; b < batches; b++) {
            char vals[3][128];
            struct mq_record recs[3];
            for (int i = 0; i < 3; i++) {
                int64_t off = b * 3 + i;
                int vl = make_value(off, vals[i], sizeof vals[i]);
                recs[i] = (struct mq_record){ts_of(off), "k", 1, vals[i], vl, NULL, 0};
            }
            if (mq_part_append(p, recs, 3, NULL) != MQ_OK || mq_part_flush(p) != MQ_OK)
                _exit(4);
        }
        _exit(0); /* no mq_log_close: as if killed */
    }
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    *len = (size_t)pread(fd, b, (size_t)st.st_size, 0);
    close(fd);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, b, len) == (ssize_t)len);
    close(fd);
}

/* Reopens dir after damage; expects exactly `expect` records (0..expect-1), then appends one record that
 * must get offset `expect`. */
static bool reopen_expect(const char *dir, int64_t expect)
{
    struct mq_log_conf c = small_conf();
    struct mq_log *log = NULL;
    if (mq_log_open(dir, MQ_LOG_WRITE, &c, &log, NULL, 0) != MQ_OK)
        return false;
    struct mq_part *p;
    bool ok = mq_log_part(log, "t", 0, &p) == MQ_OK;
    int64_t next = -1;
    ok = ok && read_check(p, 0, &next) == expect && next == expect;
    char v[128];
    int vl = make_value(expect, v, sizeof v);
    struct mq_record r = {ts_of(expect), NULL, -1, v, vl, NULL, 0};
    int64_t first = -1;
    ok = ok && mq_part_append(p, &r, 1, &first) == MQ_OK && first == expect && mq_part_flush(p) == MQ_OK;
    ok = ok && read_check(p, 0, &next) == expect + 1;
    mq_log_close(log);
    return ok;
}

static void test_crash_cut_and_flip(void)
{
    char *dir = mq_test_tmpdir("crash");
    const int batches = 6;
    int level = mq_diag_level;
    mq_diag_level = MQ_LV_ERROR; /* hundreds of expected "truncating" warnings */
    write_unclean(dir, batches);
    char seg[512], idx[512], tidx[512], rp[512];
    snprintf(seg, sizeof seg, "%s/t-0/%020d.log", dir, 0);
    snprintf(idx, sizeof idx, "%s/t-0/%020d.index", dir, 0);
    snprintf(tidx, sizeof tidx, "%s/t-0/%020d.timeindex", dir, 0);
    snprintf(rp, sizeof rp, "%s/t-0/recovery-point", dir);
    size_t llen, ilen, tlen, rlen;
    uint8_t *lb = slurp(seg, &llen), *ib = slurp(idx, &ilen), *tb = slurp(tidx, &tlen),
            *rb = slurp(rp, &rlen);
    CU_ASSERT_FATAL(lb && ib && tb && rb);
    /* batch boundaries */
    size_t pos[16] = {0}, nb = 0, p = 0;
    while (p < llen && nb < 16) {
        struct mq_batch_info bi;
        CU_ASSERT_FATAL(mq_batch_parse_header(lb + p, llen - p, &bi) == MQ_OK);
        pos[nb++] = p;
        p += mq_batch_size(&bi);
    }
    CU_ASSERT_FATAL(nb == (size_t)batches && p == llen);

    /* 1. cut inside the last batch at every byte position */
    int fails = 0;
    for (size_t cut = pos[batches - 1]; cut < llen; cut++) {
        spit(seg, lb, cut);
        spit(idx, ib, ilen);
        spit(tidx, tb, tlen);
        spit(rp, rb, rlen);
        if (!reopen_expect(dir, (batches - 1) * 3) && fails++ < 3)
            fprintf(stderr, "cut at %zu failed\n", cut);
    }
    CU_ASSERT(fails == 0);

    /* 2. flip each byte of the next-to-last batch: records before it survive, nothing from it on */
    fails = 0;
    size_t b = (size_t)batches - 2;
    for (size_t at = pos[b]; at < pos[b + 1]; at++) {
        uint8_t *copy = malloc(llen);
        memcpy(copy, lb, llen);
        copy[at] ^= 0x5a;
        spit(seg, copy, llen);
        free(copy);
        spit(idx, ib, ilen);
        spit(tidx, tb, tlen);
        spit(rp, rb, rlen);
        if (!reopen_expect(dir, (int64_t)b * 3) && fails++ < 3)
            fprintf(stderr, "flip at %zu (byte %zu of the batch) failed\n", at, at - pos[b]);
    }
    CU_ASSERT(fails == 0);

    /* 3. a clean log damaged later: verify reports the file and position */
    spit(seg, lb, llen);
    spit(idx, ib, ilen);
    spit(tidx, tb, tlen);
    spit(rp, rb, rlen);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    uint8_t *copy = malloc(llen);
    memcpy(copy, lb, llen);
    copy[pos[2] + 70] ^= 1;
    spit(seg, copy, llen);
    free(copy);
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK && problems >= 1);
    free(lb);
    free(ib);
    free(tb);
    free(rb);
    mq_diag_level = level;
    mq_test_rmdir(dir);
}

/* A missing or garbage index is rebuilt; a stale recovery point is harmless. */
static void test_index_rebuild(void)
{
    char *dir = mq_test_tmpdir("rebuild");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    mq_log_topic_create(log, "t", 1);
    struct mq_part *p = get_part(log, "t", 0);
    CU_ASSERT(produce_n(p, 0, 8000) == MQ_OK);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/t-0/%020d.index", dir, 0);
    CU_ASSERT(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/t-0/%020d.timeindex", dir, 0);
    spit(path, (const uint8_t *)"garbage", 7);
    log = open_log(dir, MQ_LOG_WRITE, &c);
    p = get_part(log, "t", 0);
    CU_ASSERT(read_check(p, 0, NULL) == 8000);
    int64_t got;
    CU_ASSERT(mq_part_offset_for_time(p, ts_of(77), &got) == MQ_OK && got == 77);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    mq_test_rmdir(dir);
}

/* ---- a writer killed with SIGKILL ---- */

static void test_sigkill_writer(void)
{
    char *dir = mq_test_tmpdir("kill");
    int64_t produced = 0;
    for (int round = 0; round < 4; round++) {
        int fds[2];
        CU_ASSERT_FATAL(pipe(fds) == 0);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            struct mq_log_conf c = small_conf();
            c.segment_bytes = 256 * 1024;
            struct mq_log *log = NULL;
            if (mq_log_open(dir, MQ_LOG_WRITE, &c, &log, NULL, 0) != MQ_OK ||
                mq_log_topic_create(log, "t", 1))
                _exit(2);
            struct mq_part *p;
            if (mq_log_part(log, "t", 0, &p) != MQ_OK)
                _exit(3);
            struct mq_part_stats st;
            mq_part_stats(p, &st);
            for (int64_t off = st.end_offset;; off += 50) {
                if (produce_n(p, off, 50) != MQ_OK || mq_part_wait_durable(p, off + 49, 10000) != MQ_OK)
                    _exit(4);
                int64_t d = mq_part_durable_end(p);
                if (write(fds[1], &d, sizeof d) != sizeof d)
                    _exit(5);
            }
        }
        close(fds[1]);
        /* let it report a few hundred durable points, then kill it mid-stream */
        int64_t d = 0, last = 0;
        int reports = 0;
        while (reports < 200 + round * 100 && read(fds[0], &d, sizeof d) == sizeof d) {
            last = d;
            reports++;
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        while (read(fds[0], &d, sizeof d) == sizeof d)
            last = d; /* reports written before the kill */
        close(fds[0]);
        CU_ASSERT(WIFSIGNALED(status));
        CU_ASSERT(last > produced);
        produced = last;
        /* everything reported durable is there, intact and in order */
        struct mq_log_conf c = small_conf();
        struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
        struct mq_part *p = get_part(log, "t", 0);
        int64_t next = 0;
        int64_t n = read_check(p, 0, &next);
        CU_ASSERT(n >= last);
        CU_ASSERT(next == n);
        CU_ASSERT(mq_log_close(log) == MQ_OK);
    }
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    mq_test_rmdir(dir);
}

/* ---- a reader process following a writer process ---- */

static void test_reader_follows_writer(void)
{
    char *dir = mq_test_tmpdir("follow");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    mq_log_topic_create(log, "t", 1);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    const int64_t total = 30000;
    int go[2];
    CU_ASSERT_FATAL(pipe(go) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* the writer: produces in bursts, rolling many segments, while the parent reads */
        close(go[1]);
        struct mq_log *w = NULL;
        if (mq_log_open(dir, MQ_LOG_WRITE, &c, &w, NULL, 0) != MQ_OK)
            _exit(2);
        struct mq_part *p;
        if (mq_log_part(w, "t", 0, &p) != MQ_OK)
            _exit(3);
        char ch;
        if (read(go[0], &ch, 1) != 1)
            _exit(4);
        for (int64_t off = 0; off < total; off += 100)
            if (produce_n(p, off, 100) != MQ_OK)
                _exit(5);
        _exit(mq_log_close(w) == MQ_OK ? 0 : 6);
    }
    close(go[0]);
    struct mq_log *r = open_log(dir, MQ_LOG_READ, &c);
    struct mq_part *p = get_part(r, "t", 0);
    CU_ASSERT(write(go[1], "x", 1) == 1);
    close(go[1]);
    int64_t next = 0, seen = 0;
    int64_t deadline = mq_mono_ms() + 60000;
    bool ok = true;
    while (seen < total && mq_mono_ms() < deadline) {
        int64_t n = read_check(p, next, &next);
        if (n < 0) {
            ok = false;
            break;
        }
        seen += n;
    }
    CU_ASSERT(ok);
    if (seen != total)
        fprintf(stderr, "reader saw %" PRId64 " of %" PRId64 " records\n", seen, total);
    CU_ASSERT(seen == total);
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct mq_part_stats st;
    CU_ASSERT(mq_part_stats(p, &st) == MQ_OK);
    CU_ASSERT(st.end_offset == total && st.segments > 5);
    CU_ASSERT(mq_log_close(r) == MQ_OK);
    mq_test_rmdir(dir);
}

/* ---- group commit across many rolls ---- */

/* While one tick waits in fdatasync, the writer rolls more segments than a tick used to take (8): the next
 * ticks must sync them all before they publish the durable end, and readers must see every record. */
static void test_flush_many_rolls(void)
{
    char *dir = mq_test_tmpdir("rolls");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    mq_log_topic_create(log, "t", 1);
    struct mq_part *part = get_part(log, "t", 0);
    CU_ASSERT(produce_n(part, 0, 100) == MQ_OK);
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
    mq_test_gate_set(true);
    CU_ASSERT(produce_n(part, 100, 100) == MQ_OK);
    mq_part_request_flush(part);
    CU_ASSERT_FATAL(mq_test_wait(mq_test_gate_has_waiter, NULL, 10000)); /* a tick waits in fdatasync */
    const int64_t total = 20000;                                         /* about 12 segments of 64 KiB */
    CU_ASSERT(produce_n(part, 200, total - 200) == MQ_OK);
    mq_test_gate_set(false);
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
    CU_ASSERT(mq_part_durable_end(part) == total);
    int64_t next = -1;
    CU_ASSERT(read_check(part, 0, &next) == total);
    CU_ASSERT(next == total);
    struct mq_part_stats st;
    CU_ASSERT(mq_part_stats(part, &st) == MQ_OK);
    CU_ASSERT(st.segments > 9);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

/* ---- the durable callback's removal ---- */

/* A callback that blocks on its first call until the test opens the gate. */
struct cb_gate {
    atomic_int calls;
    atomic_bool entered;  /* the first call has started */
    atomic_bool release;  /* the test lets the first call return */
    atomic_bool finished; /* the first call is about to return */
    atomic_bool set_returned;
    atomic_bool finished_when_set_returned;
    struct mq_log *log;
};

static bool cb_gate_entered(void *opaque)
{
    return atomic_load(&((struct cb_gate *)opaque)->entered);
}

static bool cb_gate_released(void *opaque)
{
    return atomic_load(&((struct cb_gate *)opaque)->release);
}

static bool cb_gate_set_returned(void *opaque)
{
    return atomic_load(&((struct cb_gate *)opaque)->set_returned);
}

static void gated_durable_cb(void *opaque, struct mq_part *part, int64_t durable_end)
{
    (void)part;
    (void)durable_end;
    struct cb_gate *g = opaque;
    if (atomic_fetch_add(&g->calls, 1) == 0) {
        atomic_store(&g->entered, true);
        mq_test_wait(cb_gate_released, g, 10000);
        atomic_store(&g->finished, true);
    }
}

static void *remove_cb_thread(void *arg)
{
    struct cb_gate *g = arg;
    mq_log_set_durable_cb(g->log, NULL, NULL);
    atomic_store(&g->finished_when_set_returned, atomic_load(&g->finished));
    atomic_store(&g->set_returned, true);
    return NULL;
}

/* mq_log_set_durable_cb(NULL) returns only after a call of the old callback in progress has returned, and
 * no call starts afterwards: a caller may free the opaque right away. */
static void test_durable_cb_removal(void)
{
    char *dir = mq_test_tmpdir("durcb");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    mq_log_topic_create(log, "t", 1);
    struct mq_part *part = get_part(log, "t", 0);
    struct cb_gate g = {.log = log};
    mq_log_set_durable_cb(log, gated_durable_cb, &g);
    CU_ASSERT(produce_n(part, 0, 10) == MQ_OK);
    mq_part_request_flush(part);
    CU_ASSERT_FATAL(mq_test_wait(cb_gate_entered, &g, 10000)); /* the flusher is inside the callback */

    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, remove_cb_thread, &g) == 0);
    /* While the callback is blocked, the setter must not return (this wait is expected to time out). */
    CU_ASSERT(!mq_test_wait(cb_gate_set_returned, &g, 300));
    atomic_store(&g.release, true);
    CU_ASSERT(mq_test_wait(cb_gate_set_returned, &g, 10000));
    pthread_join(th, NULL);
    CU_ASSERT(atomic_load(&g.finished_when_set_returned));

    /* Removed: new durable data calls nothing. */
    int calls = atomic_load(&g.calls);
    CU_ASSERT(produce_n(part, 10, 10) == MQ_OK);
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
    CU_ASSERT(mq_part_durable_end(part) == 20);
    CU_ASSERT(atomic_load(&g.calls) == calls);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

/* ---- readers and retention beside the writer, in one process ---- */

struct rw_shared {
    struct mq_part *w0, *w1; /* the writer's partitions 0 and 1 */
    struct mq_part *r0;      /* partition 0 through a second, read-mode log */
    int64_t total;           /* records the writer produces into each partition */
    atomic_bool writer_done;
    atomic_bool failed;
};

static void rw_fail(struct rw_shared *sh, const char *what)
{
    fprintf(stderr, "concurrent: %s\n", what);
    atomic_store(&sh->failed, true);
}

static void *rw_writer(void *arg)
{
    struct rw_shared *sh = arg;
    for (int64_t off = 0; off < sh->total && !atomic_load(&sh->failed); off += 100)
        if (produce_n(sh->w0, off, 100) != MQ_OK || produce_n(sh->w1, off, 100) != MQ_OK)
            rw_fail(sh, "produce");
    if (mq_part_flush(sh->w0) != MQ_OK || mq_part_flush(sh->w1) != MQ_OK)
        rw_fail(sh, "flush");
    atomic_store(&sh->writer_done, true);
    return NULL;
}

/* Reads every record of a partition as it becomes visible, with time lookups and stats in between. */
static void rw_read_all(struct rw_shared *sh, struct mq_part *part, bool reader_log)
{
    int64_t next = 0, seen = 0, deadline = mq_mono_ms() + 120000;
    while (seen < sh->total && mq_mono_ms() < deadline && !atomic_load(&sh->failed)) {
        int64_t n = read_check(part, next, &next);
        if (n < 0) {
            rw_fail(sh, "read_check");
            break;
        }
        seen += n;
        int64_t off = -1, start = -1, end = -1;
        struct mq_part_stats st;
        enum mq_err et = mq_part_offset_for_time(part, ts_of(next / 2), &off);
        enum mq_err es = et == MQ_OK ? mq_part_stats(part, &st) : MQ_OK;
        enum mq_err eo = et == MQ_OK && es == MQ_OK ? mq_part_offsets(part, &start, &end) : MQ_OK;
        if (et != MQ_OK || (next > 0 && (off < 0 || off > next / 2)) || es != MQ_OK || eo != MQ_OK ||
            end < next) {
            /* say which, with the figures: a rare failure must be diagnosable from the CI log */
            fprintf(stderr,
                    "concurrent: %s reader at %" PRId64 ": offset_for_time %s (off %" PRId64 "), stats %s, "
                    "offsets %s (start %" PRId64 ", end %" PRId64 ")\n",
                    reader_log ? "read-mode" : "writer-process", next, mq_strerror(et), off, mq_strerror(es),
                    mq_strerror(eo), start, end);
            rw_fail(sh, "offset_for_time, stats or offsets");
            break;
        }
        if (n == 0 && !reader_log)
            mq_part_wait_durable(part, next, 100);
        else if (n == 0)
            nanosleep(&(struct timespec){0, 1000000}, NULL); /* a reader process polls: pace the loop */
    }
    if (seen != sh->total) {
        fprintf(stderr, "concurrent: %s read %" PRId64 " of %" PRId64 " records\n",
                reader_log ? "read-mode reader" : "reader", seen, sh->total);
        rw_fail(sh, "not every record was read");
    }
}

static void *rw_reader_w(void *arg)
{
    struct rw_shared *sh = arg;
    rw_read_all(sh, sh->w0, false);
    return NULL;
}

static void *rw_reader_r(void *arg)
{
    struct rw_shared *sh = arg;
    rw_read_all(sh, sh->r0, true);
    return NULL;
}

/* Applies retention to partition 1 while another thread reads its oldest batches. */
static void *rw_retention(void *arg)
{
    struct rw_shared *sh = arg;
    int deleted = 0;
    while (!atomic_load(&sh->failed)) {
        bool done = atomic_load(&sh->writer_done); /* one more pass once everything is durable */
        int d;
        if (mq_part_apply_retention(sh->w1, mq_now_ms(), &d) != MQ_OK)
            rw_fail(sh, "retention");
        deleted += d;
        if (done)
            break;
        mq_part_wait_durable(sh->w1, mq_part_durable_end(sh->w1), 100);
    }
    if (deleted == 0)
        rw_fail(sh, "retention deleted nothing");
    return NULL;
}

static void *rw_reader_oldest(void *arg)
{
    struct rw_shared *sh = arg;
    uint8_t buf[64 * 1024];
    while (!atomic_load(&sh->writer_done) && !atomic_load(&sh->failed)) {
        int64_t start, end, off;
        struct mq_slice s;
        struct mq_part_stats st;
        if (mq_part_offsets(sh->w1, &start, &end) != MQ_OK || mq_part_stats(sh->w1, &st) != MQ_OK ||
            mq_part_offset_for_time(sh->w1, ts_of(start), &off) != MQ_OK) {
            rw_fail(sh, "offsets, stats or offset_for_time of partition 1");
            break;
        }
        enum mq_err e = mq_part_read(sh->w1, start, sizeof buf, &s);
        if (e == MQ_ERR_RANGE)
            continue; /* retention took it meanwhile */
        if (e != MQ_OK) {
            rw_fail(sh, "read partition 1");
            break;
        }
        /* The slice stays readable even when retention unlinks its segment now. */
        struct mq_batch_info bi;
        if (s.len > 0 && (s.len > sizeof buf || pread(s.fd, buf, s.len, s.pos) != (ssize_t)s.len ||
                          mq_batch_parse_header(buf, s.len, &bi) != MQ_OK || !mq_batch_crc_ok(buf, &bi)))
            rw_fail(sh, "slice of partition 1");
        mq_slice_release(&s);
        mq_part_wait_durable(sh->w1, end, 100);
    }
    return NULL;
}

/* Readers in the writer's process and in a read-mode log, and retention, while the writer writes and rolls:
 * every record arrives intact. Mostly for ThreadSanitizer, which sees the log's threads only here. */
static void test_concurrent(void)
{
    char *dir = mq_test_tmpdir("concurrent");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 2) == MQ_OK);
    struct rw_shared sh = {.w0 = get_part(log, "t", 0), .w1 = get_part(log, "t", 1), .total = 20000};
    struct mq_retention r = {0, 128 * 1024};
    mq_part_set_retention(sh.w1, &r);
    struct mq_log *rlog = open_log(dir, MQ_LOG_READ, &c);
    sh.r0 = get_part(rlog, "t", 0);
    void *(*fns[])(void *) = {rw_writer,   rw_reader_w,  rw_reader_w,     rw_reader_r,
                              rw_reader_r, rw_retention, rw_reader_oldest};
    pthread_t th[sizeof fns / sizeof fns[0]];
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, fns[i], &sh) == 0);
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT(!atomic_load(&sh.failed));
    CU_ASSERT(mq_log_close(rlog) == MQ_OK);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

/* ---- a full disk ---- */

static void test_disk_full(void)
{
    char *dir = mq_test_tmpdir("full");
    char mnt[600];
    snprintf(mnt, sizeof mnt, "%s/mnt", dir);
    CU_ASSERT_FATAL(mkdir(mnt, 0755) == 0);
    /* a 4 MiB tmpfs (the suite runs as root in CI; without the right to mount this test fails) */
    int mr = mount("tmpfs", mnt, "tmpfs", 0, "size=4m");
    if (mr != 0)
        fprintf(stderr, "mount tmpfs on %s: %s (this test needs root)\n", mnt, strerror(errno));
    CU_ASSERT_FATAL(mr == 0);
    char ballast[700], data[700];
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    snprintf(data, sizeof data, "%s/data", mnt);
    int fd = open(ballast, O_WRONLY | O_CREAT, 0644);
    static char chunk[64 * 1024];
    for (int i = 0; i < 40; i++) /* 2.5 MiB */
        CU_ASSERT(write(fd, chunk, sizeof chunk) == sizeof chunk);
    close(fd);
    struct mq_log_conf c = small_conf();
    c.segment_bytes = 1 << 20;
    c.max_pending_bytes = 256 * 1024;
    struct mq_log *log = open_log(data, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    /* produce until the store pushes back */
    int64_t off = 0;
    enum mq_err e = MQ_OK;
    bool saw_nospc = false;
    while (off < 200000) {
        e = produce_n(p, off, 100);
        if (e != MQ_OK)
            break;
        off += 100;
        if (mq_part_flush(p) == MQ_ERR_NOSPC)
            saw_nospc = true;
    }
    CU_ASSERT(e == MQ_ERR_FULL);
    CU_ASSERT(saw_nospc);
    int64_t accepted = off;
    /* a record was accepted only when produce returned MQ_OK; produce_n stops at the first refusal */
    struct mq_part_stats st;
    mq_part_stats(p, &st);
    accepted = st.end_offset;
    CU_ASSERT(st.durable_offset < accepted);
    CU_ASSERT(mq_part_wait_durable(p, accepted - 1, 50) == MQ_ERR_NOSPC);
    /* what is durable reads back intact */
    int64_t next;
    CU_ASSERT(read_check(p, 0, &next) == st.durable_offset);
    /* space returns: everything accepted becomes durable, nothing damaged or lost */
    CU_ASSERT(unlink(ballast) == 0);
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    CU_ASSERT(mq_part_durable_end(p) == accepted);
    CU_ASSERT(read_check(p, 0, &next) == accepted);
    CU_ASSERT(produce_n(p, accepted, 10) == MQ_OK);
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    CU_ASSERT(read_check(p, 0, &next) == accepted + 10);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(data, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    log = open_log(data, MQ_LOG_WRITE, &c);
    p = get_part(log, "t", 0);
    CU_ASSERT(read_check(p, 0, &next) == accepted + 10);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    CU_ASSERT(umount(mnt) == 0);
    mq_test_rmdir(dir);
}

/* A holder for the retention hold tests: per partition id, the lowest offset to keep. */
struct hold_state {
    _Atomic int64_t hold[2];
    atomic_int calls;
};

static int64_t hold_of(void *opaque, struct mq_part *part)
{
    struct hold_state *hs = opaque;
    atomic_fetch_add(&hs->calls, 1);
    return atomic_load(&hs->hold[mq_part_id(part)]);
}

/* The segment that holds `offset` is still there: the log starts at or below it. */
static int64_t start_of(struct mq_part *p)
{
    struct mq_part_stats st;
    CU_ASSERT(mq_part_stats(p, &st) == MQ_OK);
    return st.start_offset;
}

/* Counts the lines of stderr that contain `what` while fn(arg) runs (the log's diagnostics go there). */
static int stderr_lines(const char *what, void (*fn)(void *arg), void *arg)
{
    char path[] = "/tmp/mqlog-stderr-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    int n = 0;
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char line[1024];
    while (fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    fclose(f);
    unlink(path);
    return n;
}

/* Three retention passes of a partition (each with everything expired). */
static void retention_thrice(void *arg)
{
    for (int i = 0; i < 3; i++)
        CU_ASSERT(mq_part_apply_retention(arg, ts_of(100000) + 2 * MQ_RETENTION_MS_DEFAULT, NULL) == MQ_OK);
}

static void test_retention_hold(void)
{
    char *dir = mq_test_tmpdir("hold");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 2) == MQ_OK);
    struct mq_part *p0 = get_part(log, "t", 0), *p1 = get_part(log, "t", 1);
    CU_ASSERT(produce_n(p0, 0, 20000) == MQ_OK && produce_n(p1, 0, 20000) == MQ_OK);
    CU_ASSERT(mq_part_flush(p0) == MQ_OK && mq_part_flush(p1) == MQ_OK);
    struct hold_state hs = {.hold = {5000, INT64_MAX}};
    mq_log_set_hold(log, hold_of, &hs);

    /* size retention: the segments wholly below 5000 go, the one holding 5000 stays; p1 is not held */
    struct mq_retention r = {0, 200 * 1024};
    mq_part_set_retention(p0, &r);
    mq_part_set_retention(p1, &r);
    int deleted = 0;
    CU_ASSERT(mq_part_apply_retention(p0, mq_now_ms(), &deleted) == MQ_OK);
    int64_t s0 = start_of(p0);
    CU_ASSERT(deleted > 0 && s0 > 0 && s0 <= 5000);
    CU_ASSERT(read_check(p0, s0, NULL) == 20000 - s0);
    CU_ASSERT(mq_part_apply_retention(p1, mq_now_ms(), &deleted) == MQ_OK);
    CU_ASSERT(deleted > 0 && start_of(p1) > 5000);
    CU_ASSERT(atomic_load(&hs.calls) == 2);

    /* held back: said once, not per pass */
    CU_ASSERT_EQUAL(stderr_lines("t-0: retention held back", retention_thrice, p0), 0); /* said above */
    /* time retention with everything expired: still stops at the segment holding 5000 */
    r = (struct mq_retention){MQ_RETENTION_MS_DEFAULT, 0};
    mq_part_set_retention(p0, &r);
    int64_t far = ts_of(20000) + 2 * MQ_RETENTION_MS_DEFAULT;
    CU_ASSERT(mq_part_apply_retention(p0, far, &deleted) == MQ_OK);
    CU_ASSERT(deleted == 0 && start_of(p0) == s0);
    /* the hold rises to the end of a segment: only segments wholly below it go */
    atomic_store(&hs.hold[0], 15000);
    CU_ASSERT(mq_part_apply_retention(p0, far, &deleted) == MQ_OK);
    int64_t s1 = start_of(p0);
    CU_ASSERT(deleted > 0 && s1 > 5000 && s1 <= 15000);
    CU_ASSERT(read_check(p0, s1, NULL) == 20000 - s1);
    /* everything forwarded: the active segment is rolled away too */
    atomic_store(&hs.hold[0], 20000);
    CU_ASSERT(mq_part_apply_retention(p0, far, &deleted) == MQ_OK);
    CU_ASSERT(deleted > 0 && start_of(p0) == 20000);

    /* removing the hold releases it */
    CU_ASSERT(produce_n(p0, 20000, 3000) == MQ_OK && mq_part_flush(p0) == MQ_OK);
    atomic_store(&hs.hold[0], 20000);
    CU_ASSERT(mq_part_apply_retention(p0, far, &deleted) == MQ_OK);
    CU_ASSERT(deleted == 0 && start_of(p0) == 20000);
    mq_log_set_hold(log, NULL, NULL);
    int calls = atomic_load(&hs.calls);
    CU_ASSERT_EQUAL(stderr_lines("t-0: retention no longer held back", retention_thrice, p0), 1);
    CU_ASSERT(start_of(p0) == 23000);
    mq_log_set_hold(log, hold_of, &hs);
    CU_ASSERT(produce_n(p0, 23000, 3000) == MQ_OK && mq_part_flush(p0) == MQ_OK);
    CU_ASSERT_EQUAL(stderr_lines("t-0: retention held back", retention_thrice, p0), 1);
    mq_log_set_hold(log, NULL, NULL);
    calls = atomic_load(&hs.calls);
    CU_ASSERT(mq_part_apply_retention(p0, far, &deleted) == MQ_OK);
    CU_ASSERT(deleted > 0 && start_of(p0) == 26000);
    CU_ASSERT(atomic_load(&hs.calls) == calls);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

/* Records with timestamps ts0, ts0 + 10, ... (values as the test stream, by offset). */
static enum mq_err produce_at(struct mq_part *part, int64_t from, int64_t n, int64_t ts0)
{
    char v[128];
    for (int64_t off = from; off < from + n; off++) {
        int vl = make_value(off, v, sizeof v);
        struct mq_record r = {ts0 + (off - from) * 10, NULL, -1, v, vl, NULL, 0};
        enum mq_err e = mq_part_produce(part, &r, NULL);
        if (e != MQ_OK)
            return e;
    }
    return MQ_OK;
}

/* Opens the budget test's log with disk cap `cap` and the holder hs set before any partition is open (so
 * that the maintenance thread never weighs a partition without it); no retention but the cap. */
static struct mq_log *budget_open(const char *dir, int64_t cap, struct hold_state *hs, struct mq_part **p0,
                                  struct mq_part **p1)
{
    struct mq_log_conf c = small_conf();
    c.max_disk_bytes = cap;
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    mq_log_set_hold(log, hold_of, hs);
    *p0 = get_part(log, "t", 0);
    *p1 = get_part(log, "t", 1);
    struct mq_retention off = {0, 0};
    mq_part_set_retention(*p0, &off);
    mq_part_set_retention(*p1, &off);
    return log;
}

static void test_disk_cap(void)
{
    char *dir = mq_test_tmpdir("cap");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 2) == MQ_OK);
    /* partition 0 holds the older records, partition 1 the newer ones */
    struct mq_part *p0 = get_part(log, "t", 0), *p1 = get_part(log, "t", 1);
    CU_ASSERT(produce_at(p0, 0, 10000, 1700000000000LL) == MQ_OK);
    CU_ASSERT(produce_at(p1, 0, 10000, 1800000000000LL) == MQ_OK);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    struct mq_part_stats a, b, a2, b2;
    struct mq_log_stats ls;
    struct hold_state hs = {.hold = {INT64_MAX, INT64_MAX}};

    /* one byte over: the oldest segment of all goes, partition 0's first */
    log = budget_open(dir, 0, &hs, &p0, &p1);
    CU_ASSERT(mq_part_stats(p0, &a) == MQ_OK && mq_part_stats(p1, &b) == MQ_OK);
    CU_ASSERT(a.segments > 3 && b.segments > 3);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    log = budget_open(dir, a.bytes + b.bytes - 1, &hs, &p0, &p1);
    CU_ASSERT(mq_log_apply_retention(log, mq_now_ms()) == MQ_OK);
    CU_ASSERT(mq_part_stats(p0, &a2) == MQ_OK && mq_part_stats(p1, &b2) == MQ_OK);
    CU_ASSERT(a2.segments == a.segments - 1 && a2.start_offset > 0 && b2.start_offset == 0);
    mq_log_stats(log, &ls);
    CU_ASSERT(ls.early_deleted_segments == 1 && ls.dropped_unforwarded == 0);
    CU_ASSERT(ls.disk_bytes == a2.bytes + b2.bytes && ls.disk_bytes <= a.bytes + b.bytes - 1);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* partition 0 wholly held: partition 1's newer but unheld segment goes first */
    a = a2, b = b2;
    atomic_store(&hs.hold[0], a.start_offset);
    log = budget_open(dir, a.bytes + b.bytes - 1, &hs, &p0, &p1);
    CU_ASSERT(mq_log_apply_retention(log, mq_now_ms()) == MQ_OK);
    CU_ASSERT(mq_part_stats(p0, &a2) == MQ_OK && mq_part_stats(p1, &b2) == MQ_OK);
    CU_ASSERT(a2.start_offset == a.start_offset && b2.start_offset > 0 && b2.segments == b.segments - 1);
    mq_log_stats(log, &ls);
    CU_ASSERT(ls.early_deleted_segments == 1 && ls.dropped_unforwarded == 0);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* both held: the oldest held segment goes, and the records at or above the hold in it are counted */
    a = a2, b = b2;
    int64_t hold0 = a.start_offset + 7;
    atomic_store(&hs.hold[0], hold0);
    atomic_store(&hs.hold[1], b.start_offset);
    log = budget_open(dir, a.bytes + b.bytes - 1, &hs, &p0, &p1);
    CU_ASSERT(mq_log_apply_retention(log, mq_now_ms()) == MQ_OK);
    CU_ASSERT(mq_part_stats(p0, &a2) == MQ_OK && mq_part_stats(p1, &b2) == MQ_OK);
    CU_ASSERT(a2.start_offset > hold0 && b2.start_offset == b.start_offset);
    mq_log_stats(log, &ls);
    CU_ASSERT(ls.early_deleted_segments == 1 && ls.dropped_unforwarded == a2.start_offset - hold0);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* a cap of one byte: everything goes, active segments rolled; every held record is counted */
    a = a2, b = b2;
    atomic_store(&hs.hold[0], 9000);
    atomic_store(&hs.hold[1], INT64_MAX);
    log = budget_open(dir, 1, &hs, &p0, &p1);
    CU_ASSERT(mq_log_apply_retention(log, mq_now_ms()) == MQ_OK);
    CU_ASSERT(mq_part_stats(p0, &a2) == MQ_OK && mq_part_stats(p1, &b2) == MQ_OK);
    CU_ASSERT(a2.start_offset == 10000 && a2.end_offset == 10000 && a2.bytes == 0 && a2.segments == 1);
    CU_ASSERT(b2.start_offset == 10000 && b2.bytes == 0);
    mq_log_stats(log, &ls);
    CU_ASSERT(ls.early_deleted_segments == a.segments + b.segments && ls.dropped_unforwarded == 1000);
    CU_ASSERT(ls.disk_bytes == 0);
    /* no batch fits in one byte: new records are taken, and wait (as on a full disk) */
    CU_ASSERT(produce_at(p0, 10000, 5, 1900000000000LL) == MQ_OK && mq_part_flush(p0) == MQ_ERR_NOSPC);
    CU_ASSERT(mq_part_stats(p0, &a2) == MQ_OK);
    CU_ASSERT(a2.start_offset == 10000 && a2.durable_offset == 10000 && a2.bytes == 0);
    mq_log_stats(log, &ls);
    CU_ASSERT(ls.budget_refused_writes > 0 && ls.cap_deleted_segments == ls.early_deleted_segments);
    CU_ASSERT(mq_log_close(log) == MQ_ERR_NOSPC);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    mq_test_rmdir(dir);
}

/* Appends records [from, from + n) of the test stream as one batch, retrying while the disk budget makes
 * room (MQ_ERR_NOSPC: nothing of the call was stored) for up to 10 s. */
static enum mq_err append_waiting(struct mq_part *part, int64_t from, int n)
{
    char v[64][128], k[64][32];
    struct mq_header h = {"h", 1, "x", 1};
    struct mq_record recs[64];
    for (int i = 0; i < n && i < 64; i++) {
        int64_t off = from + i;
        int vl = make_value(off, v[i], sizeof v[i]);
        int kl = snprintf(k[i], sizeof k[i], "k%" PRId64, off % 13);
        recs[i] = (struct mq_record){ts_of(off), k[i], kl, v[i], vl, &h, off % 2 ? 1 : 0};
    }
    int64_t deadline = mq_mono_ms() + 10000, first = -1;
    for (;;) {
        enum mq_err e = mq_part_append(part, recs, (size_t)n, &first);
        if (e == MQ_OK && first != from)
            return MQ_ERR_RANGE;
        if (e != MQ_ERR_NOSPC || mq_mono_ms() > deadline)
            return e;
        mq_sleep_ms(1); /* the flusher thread makes room: poll for it */
    }
}

/* The bytes of the segment (.log) files of partition directory dir/name, and the base offset of its oldest
 * one in *first (-1: none). */
static int64_t seg_bytes_of(const char *dir, const char *name, int64_t *first)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    DIR *d = opendir(path);
    CU_ASSERT_FATAL(d != NULL);
    int64_t total = 0;
    *first = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        size_t len = strlen(de->d_name);
        if (len != 24 || strcmp(de->d_name + 20, ".log") != 0 || fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue;
        total += st.st_size;
        int64_t base = strtoll(de->d_name, NULL, 10);
        if (*first < 0 || base < *first)
            *first = base;
    }
    closedir(d);
    return total;
}

/* The disk cap covers the partitions not opened since the start: after a restart with a cap below what is
 * on disk, writes to one topic delete the oldest segments of the others, which are never opened by the
 * writer, and the segment bytes on disk stay at or below the cap after every write. */
static void test_disk_cap_cold(void)
{
    char *dir = mq_test_tmpdir("capcold");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    /* "old" holds the oldest records, "mid" newer ones, "new" the newest: the topic written after */
    CU_ASSERT(mq_log_topic_create(log, "old", 1) == MQ_OK && mq_log_topic_create(log, "mid", 1) == MQ_OK &&
              mq_log_topic_create(log, "new", 1) == MQ_OK);
    CU_ASSERT(produce_at(get_part(log, "old", 0), 0, 10000, 1700000000000LL) == MQ_OK);
    CU_ASSERT(produce_at(get_part(log, "mid", 0), 0, 10000, 1800000000000LL) == MQ_OK);
    CU_ASSERT(produce_at(get_part(log, "new", 0), 0, 2000, 1900000000000LL) == MQ_OK);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    int64_t old_first, mid_first, new_first;
    int64_t old0 = seg_bytes_of(dir, "old-0", &old_first), mid0 = seg_bytes_of(dir, "mid-0", &mid_first);
    int64_t total = old0 + mid0 + seg_bytes_of(dir, "new-0", &new_first);
    CU_ASSERT(old_first == 0 && mid_first == 0 && old0 > 3 * c.segment_bytes);

    c.max_disk_bytes = total - 1;
    log = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_log_stats ls;
    mq_log_stats(log, &ls);
    CU_ASSERT_EQUAL(ls.disk_bytes, total); /* counted from the start, no partition open */
    struct mq_part *p = get_part(log, "new", 0);
    char v[128];
    struct mq_record recs[50];
    int64_t most = 0;
    for (int64_t off = 2000; off < 6000; off += 50) {
        for (int i = 0; i < 50; i++) {
            int vl = make_value(off + i, v, sizeof v);
            recs[i] = (struct mq_record){1950000000000LL + (off + i) * 10, NULL, -1, v, vl, NULL, 0};
        }
        int64_t deadline = mq_mono_ms() + 10000, first = -1;
        enum mq_err e;
        while ((e = mq_part_append(p, recs, 50, &first)) == MQ_ERR_NOSPC && mq_mono_ms() < deadline)
            mq_sleep_ms(1); /* the flusher thread makes room: poll for it */
        CU_ASSERT_FATAL(e == MQ_OK && first == off);
        int64_t f, now = seg_bytes_of(dir, "old-0", &f) + seg_bytes_of(dir, "mid-0", &f) +
                         seg_bytes_of(dir, "new-0", &f);
        most = now > most ? now : most;
    }
    CU_ASSERT(most <= c.max_disk_bytes);
    /* the oldest segments went, and they were the unopened "old"'s; "mid" and "new" kept all of theirs */
    int64_t old1 = seg_bytes_of(dir, "old-0", &old_first), mid1 = seg_bytes_of(dir, "mid-0", &mid_first);
    seg_bytes_of(dir, "new-0", &new_first);
    CU_ASSERT(old_first > 0 && old1 < old0 && mid_first == 0 && mid1 == mid0 && new_first == 0);
    mq_log_stats(log, &ls);
    CU_ASSERT(ls.cap_deleted_segments > 0 && ls.dropped_unforwarded == 0 &&
              ls.disk_bytes <= c.max_disk_bytes);
    /* "mid" was never opened by the pass: it stays a cold entry */
    pthread_mutex_lock(&log->mu);
    bool mid_open = false;
    for (size_t i = 0; i < log->nparts; i++)
        mid_open = mid_open || strcmp(log->parts[i]->topic, "mid") == 0;
    pthread_mutex_unlock(&log->mu);
    CU_ASSERT(!mid_open);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    mq_test_rmdir(dir);
}

/* The segment files of partition dir "<dir>/t-<p>" added to seen[0..*n) (base offsets, no repeats); returns
 * how many there are now. */
static int segs_seen(const char *dir, int p, int64_t *seen, int *n, int cap)
{
    char path[700];
    snprintf(path, sizeof path, "%s/t-%d", dir, p);
    DIR *d = opendir(path);
    CU_ASSERT_FATAL(d != NULL);
    int now = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len != 24 || strcmp(de->d_name + 20, ".log") != 0)
            continue;
        int64_t base = strtoll(de->d_name, NULL, 10);
        now++;
        bool known = false;
        for (int i = 0; i < *n && !known; i++)
            known = seen[i] == base;
        if (!known && *n < cap)
            seen[(*n)++] = base;
    }
    closedir(d);
    return now;
}

static int64_t free_of(const char *dir)
{
    struct statvfs vfs;
    CU_ASSERT_FATAL(statvfs(dir, &vfs) == 0);
    return (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

/* Streams `rounds` batches of 50 records into each of partitions 0 and 1 of topic t (the same offsets and
 * timestamps in both) under the budget of log: after every write the segment bytes are at most cap and the
 * free space at least min_free (those set). Then checks that each partition holds a suffix of the stream,
 * that the two lost about as much (oldest first across them), and that the counters name every segment
 * that is gone. */
static void budget_stream(struct mq_log *log, const char *dir, int rounds, int64_t cap, int64_t min_free)
{
    struct mq_part *p[2] = {get_part(log, "t", 0), get_part(log, "t", 1)};
    struct mq_retention off = {0, 0};
    static int64_t seen[2][4096];
    int nseen[2] = {0, 0}, now[2] = {0, 0};
    int64_t most = 0, least = INT64_MAX;
    mq_part_set_retention(p[0], &off);
    mq_part_set_retention(p[1], &off);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_FATAL(append_waiting(p[i], (int64_t)r * 50, 50) == MQ_OK);
            struct mq_part_stats a, b;
            CU_ASSERT(mq_part_stats(p[0], &a) == MQ_OK && mq_part_stats(p[1], &b) == MQ_OK);
            if (a.bytes + b.bytes > most)
                most = a.bytes + b.bytes;
            if (min_free > 0 && free_of(dir) < least)
                least = free_of(dir);
        }
        for (int i = 0; i < 2; i++)
            now[i] = segs_seen(dir, i, seen[i], &nseen[i], 4096);
    }
    if (cap > 0)
        CU_ASSERT(most <= cap);
    if (min_free > 0)
        CU_ASSERT(least >= min_free);
    int64_t starts[2];
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(mq_part_flush(p[i]) == MQ_OK);
        struct mq_part_stats st;
        int64_t next;
        CU_ASSERT(mq_part_stats(p[i], &st) == MQ_OK && st.end_offset == (int64_t)rounds * 50);
        CU_ASSERT(st.start_offset > 0 &&
                  read_check(p[i], st.start_offset, &next) == st.end_offset - st.start_offset);
        starts[i] = st.start_offset;
    }
    /* a segment holds about 900 records: the partition that lost less is at most a segment behind */
    CU_ASSERT(llabs(starts[0] - starts[1]) < 2000);
    struct mq_log_stats ls;
    mq_log_stats(log, &ls);
    int64_t gone = nseen[0] - now[0] + nseen[1] - now[1];
    CU_ASSERT(ls.early_deleted_segments == gone && gone > 0);
    CU_ASSERT((cap > 0 ? ls.cap_deleted_segments : ls.free_deleted_segments) == gone);
    CU_ASSERT(ls.budget_refused_writes > 0 && !ls.budget_blocked);
    fprintf(stderr,
            "budget: %d rounds, %" PRId64 " segments deleted, most %" PRId64 " bytes, least free %" PRId64
            ", %" PRId64 " writes waited\n",
            rounds, gone, most, least, ls.budget_refused_writes);
}

/* The disk budget holds at every write, on a small tmpfs: log.max_disk_bytes, then log.min_free_bytes, and
 * with nothing left to delete the store pushes back until space returns. */
static void test_disk_budget(void)
{
    char *dir = mq_test_tmpdir("budget");
    char mnt[600], data[700], ballast[700];
    snprintf(mnt, sizeof mnt, "%s/mnt", dir);
    CU_ASSERT_FATAL(mkdir(mnt, 0755) == 0);
    int mr = mount("tmpfs", mnt, "tmpfs", 0, "size=4m");
    if (mr != 0)
        fprintf(stderr, "mount tmpfs on %s: %s (this test needs root)\n", mnt, strerror(errno));
    CU_ASSERT_FATAL(mr == 0);
    struct mq_log_conf c = small_conf();
    c.max_pending_bytes = 256 * 1024;

    /* the cap: 256 KiB of segments, about 4 of 64 KiB */
    snprintf(data, sizeof data, "%s/cap", mnt);
    c.max_disk_bytes = 256 * 1024;
    struct mq_log *log = open_log(data, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 2) == MQ_OK);
    budget_stream(log, data, 200, c.max_disk_bytes, 0);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(strdup(data)); /* its space is the next case's */

    /* the free space: 2.5 of the 4 MiB stay free; the stream is about 3 MiB */
    snprintf(data, sizeof data, "%s/free", mnt);
    c.max_disk_bytes = 0;
    c.min_free_bytes = 2560 * 1024;
    log = open_log(data, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 2) == MQ_OK);
    budget_stream(log, data, 400, 0, c.min_free_bytes);

    /* others take the space: the oldest segments go first, then nothing is left and the store pushes back */
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    int fd = open(ballast, O_WRONLY | O_CREAT, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(posix_fallocate(fd, 0, free_of(mnt) - 64 * 1024) == 0);
    close(fd);
    struct mq_part *p0 = get_part(log, "t", 0);
    int64_t end = 400 * 50, at = end;
    enum mq_err e = MQ_OK;
    int64_t deadline = mq_mono_ms() + 10000;
    while ((e = produce_n(p0, at, 50)) == MQ_OK && mq_mono_ms() < deadline) {
        at += 50;
        mq_part_request_flush(p0);
    }
    CU_ASSERT(e == MQ_ERR_FULL);
    /* the pass that finds nothing left may come after the backlog filled: poll for it */
    struct mq_log_stats ls;
    deadline = mq_mono_ms() + 10000;
    for (mq_log_stats(log, &ls); !ls.budget_blocked && mq_mono_ms() < deadline; mq_log_stats(log, &ls))
        mq_sleep_ms(5); /* poll: the flusher thread makes the pass */
    CU_ASSERT(ls.budget_blocked && ls.free_deleted_segments > 0);
    struct mq_part_stats st;
    CU_ASSERT(mq_part_stats(p0, &st) == MQ_OK && st.durable_offset < st.end_offset);
    /* space returns: everything taken is written, and the budget is unblocked */
    CU_ASSERT(unlink(ballast) == 0);
    deadline = mq_mono_ms() + 10000;
    while (mq_part_flush(p0) != MQ_OK && mq_mono_ms() < deadline)
        mq_sleep_ms(5); /* the budget's next pass counts the space anew: poll for it */
    CU_ASSERT(mq_part_stats(p0, &st) == MQ_OK && st.durable_offset == st.end_offset);
    int64_t next;
    CU_ASSERT(read_check(p0, st.start_offset, &next) == st.end_offset - st.start_offset);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(data, NULL, NULL, &problems, NULL) == MQ_OK && problems == 0);
    CU_ASSERT(umount(mnt) == 0);
    mq_test_rmdir(dir);
}

/* The idle pass (mq_part_trim()): a partition keeps its write buffers while it takes records or holds some
 * unwritten, gives them back after a pass with none, and writes on as before once records come again. */
static void test_idle_trim(void)
{
    char *dir = mq_test_tmpdir("trim");
    struct mq_log_conf c = small_conf();
    c.flush_interval_ms = 60000; /* the flusher's own idle pass stays out of the way: the test makes them */
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    CU_ASSERT(produce_n(p, 0, 100) == MQ_OK);
    CU_ASSERT(mq_part_trim(p) == 0); /* busy, and the open batch holds records */
    CU_ASSERT(mq_part_trim(p) == 0); /* idle now, but the records are not written yet */
    CU_ASSERT(p->open.count > 0 && p->open.buf != NULL);
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    CU_ASSERT(produce_n(p, 100, 100) == MQ_OK); /* more than an index interval: entries pending */
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    CU_ASSERT(mq_part_trim(p) == 0); /* it took records since the last pass */
    CU_ASSERT(p->open.buf != NULL && mq_part_active(p)->idx_pend.buf != NULL);
    CU_ASSERT(mq_part_trim(p) > 0);
    CU_ASSERT(p->open.buf == NULL && p->open.cap == 0);
    CU_ASSERT(mq_part_active(p)->idx_pend.buf == NULL && mq_part_active(p)->tidx_pend.buf == NULL);
    CU_ASSERT(mq_part_trim(p) == 0); /* nothing left to give */
    CU_ASSERT(produce_n(p, 200, 300) == MQ_OK);
    CU_ASSERT(mq_part_flush(p) == MQ_OK);
    int64_t next;
    CU_ASSERT(read_check(p, 0, &next) == 500 && next == 500);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    log = open_log(dir, MQ_LOG_WRITE, &c);
    p = get_part(log, "t", 0);
    CU_ASSERT(read_check(p, 0, &next) == 500 && next == 500);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK);
    CU_ASSERT(problems == 0);
    mq_test_rmdir(dir);
}

static void test_args(void)
{
    CU_ASSERT(mq_topic_name_valid("telemetry.temperature_1-a"));
    CU_ASSERT(!mq_topic_name_valid(""));
    CU_ASSERT(!mq_topic_name_valid("."));
    CU_ASSERT(!mq_topic_name_valid(".."));
    CU_ASSERT(!mq_topic_name_valid("a/b"));
    CU_ASSERT(!mq_topic_name_valid("a b"));
    char longname[251];
    memset(longname, 'x', 250);
    longname[250] = 0;
    CU_ASSERT(!mq_topic_name_valid(longname));
    longname[249] = 0;
    CU_ASSERT(mq_topic_name_valid(longname));
    struct mq_log *log = NULL;
    char err[256] = "";
    CU_ASSERT(mq_log_open("/nonexistent/mqlog", MQ_LOG_READ, NULL, &log, err, sizeof err) == MQ_ERR_NOENT);
    CU_ASSERT(strstr(err, "/nonexistent/mqlog") != NULL);
    struct mq_log_conf c;
    mq_log_conf_defaults(&c);
    c.segment_bytes = 10;
    char *dir = mq_test_tmpdir("args");
    CU_ASSERT(mq_log_open(dir, MQ_LOG_WRITE, &c, &log, err, sizeof err) == MQ_ERR_INVAL);
    mq_test_rmdir(dir);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_args),
        MQ_TEST(test_produce_read_reopen),
        MQ_TEST(test_index_boundaries),
        MQ_TEST(test_retention),
        MQ_TEST(test_retention_hold),
        MQ_TEST(test_disk_cap),
        MQ_TEST(test_disk_cap_cold),
        MQ_TEST(test_disk_budget),
        MQ_TEST(test_crash_cut_and_flip),
        MQ_TEST(test_index_rebuild),
        MQ_TEST(test_sigkill_writer),
        MQ_TEST(test_reader_follows_writer),
        MQ_TEST(test_flush_many_rolls),
        MQ_TEST(test_durable_cb_removal),
        MQ_TEST(test_concurrent),
        MQ_TEST(test_disk_full),
        MQ_TEST(test_idle_trim),
        MQ_TEST_END,
    };
    return mq_test_run("log", tests);
}
