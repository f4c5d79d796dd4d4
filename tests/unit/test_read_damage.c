/*
 * test_read_damage.c - what readers of the log do with damaged segment files (issue 11): a segment emptied
 * or cut in the middle of the partition, or the first one emptied, hides only its own records (a read at an
 * offset inside the gap gets the batches after it); a batch that fails its CRC is never handed out, and the
 * records around it are; a lookup by time lands after the damage; and each batch's CRC is checked once per
 * open log, when it is written or first read, then remembered (a batch changed on disk after that is not
 * checked again: that is the cost saved); a reader beside the writer skips such a batch in the active
 * segment once whole batches follow it.
 *
 * Records written here have value "v<offset>"; segments are 16 KiB, batches 5 records.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "log_test.h"
#include "testutil.h"
#include "util/parse.h"

#define N_RECORDS 5000

/* A data directory whose partition t-0 holds records 0..N_RECORDS-1 in batches of 5, over several
 * segments; the log is closed again. *c gets the configuration. */
static char *make_dir(struct mq_log_conf *c)
{
    char *dir = mq_test_tmpdir("rdmg");
    *c = small_conf();
    c->segment_bytes = 16 * 1024;
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *part = get_part(log, "t", 0);
    char vals[5][16];
    struct mq_record recs[5];
    for (int64_t off = 0; off < N_RECORDS; off += 5) {
        for (int k = 0; k < 5; k++) {
            int vl = snprintf(vals[k], sizeof vals[k], "v%" PRId64, off + k);
            recs[k] = (struct mq_record){1700000000000LL + off + k, NULL, -1, vals[k], vl, NULL, 0};
        }
        CU_ASSERT_FATAL(mq_part_append(part, recs, 5, NULL) == MQ_OK);
    }
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    return dir;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The base offsets of t-0's segments, ascending, from the file names; returns how many (at most max). */
static int seg_bases(const char *dir, int64_t *bases, int max)
{
    char *pdir = NULL;
    CU_ASSERT_FATAL(asprintf(&pdir, "%s/t-0", dir) > 0);
    DIR *d = opendir(pdir);
    CU_ASSERT_FATAL(d != NULL);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max)
        if (strlen(de->d_name) == 24 && strcmp(de->d_name + 20, ".log") == 0)
            bases[n++] = strtoll(de->d_name, NULL, 10);
    closedir(d);
    free(pdir);
    qsort(bases, (size_t)n, sizeof *bases, cmp_i64);
    return n;
}

static char *seg_file(const char *dir, int64_t base)
{
    char *p = NULL;
    CU_ASSERT_FATAL(asprintf(&p, "%s/t-0/%020" PRId64 ".log", dir, base) > 0);
    return p;
}

/* Reads t-0 from `from` with a cursor: the offsets read are marked in seen[]; returns how many, or -1 on an
 * error or a wrong value. */
static int64_t read_all(struct mq_part *part, int64_t from, bool *seen)
{
    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(part, from, &cur) == MQ_OK);
    struct mq_record_view rv;
    int64_t n = 0;
    int r;
    while ((r = mq_cursor_next(cur, &rv)) == 1) {
        char want[16];
        int wl = snprintf(want, sizeof want, "v%" PRId64, rv.offset);
        if (rv.value_len != wl || memcmp(rv.value, want, (size_t)wl) != 0 || rv.offset >= N_RECORDS + 100)
            return -1;
        if (seen)
            seen[rv.offset] = true;
        n++;
    }
    mq_cursor_close(cur);
    return r == 0 ? n : -1;
}

/* Checks, in both modes, that every record outside [lost_from, lost_to] is read, and none inside; and that a
 * read at lost_from gets the batches after the damage. */
static void check_readable(const char *dir, int64_t lost_from, int64_t lost_to)
{
    struct mq_log_conf c = small_conf();
    c.segment_bytes = 16 * 1024;
    for (int mode = 0; mode < 2; mode++) {
        struct mq_log *log = open_log(dir, mode ? MQ_LOG_WRITE : MQ_LOG_READ, &c);
        struct mq_part *part = get_part(log, "t", 0);
        static bool seen[N_RECORDS + 100];
        memset(seen, 0, sizeof seen);
        int64_t n = read_all(part, 0, seen);
        CU_ASSERT(n == N_RECORDS - (lost_to - lost_from + 1));
        for (int64_t o = 0; o < N_RECORDS; o++)
            if (seen[o] != (o < lost_from || o > lost_to)) {
                fprintf(stderr, "mode %d: offset %" PRId64 " %s\n", mode, o, seen[o] ? "read" : "missing");
                CU_FAIL("wrong records");
                break;
            }
        struct mq_slice s;
        CU_ASSERT_FATAL(mq_part_read(part, lost_from, 1, &s) == MQ_OK);
        CU_ASSERT(s.len > 0 && s.first_offset == lost_to + 1);
        mq_slice_release(&s);
        CU_ASSERT(read_all(part, lost_from, NULL) == N_RECORDS - lost_to - 1);
        /* the end counts the lost offsets, and mq_part_missing_offsets() says how many they are */
        int64_t start = -1, end = -1, missing = -1;
        CU_ASSERT(mq_part_offsets(part, &start, &end) == MQ_OK && end == N_RECORDS);
        CU_ASSERT(mq_part_missing_offsets(part, &missing) == MQ_OK);
        CU_ASSERT_EQUAL(missing, lost_to - lost_from + 1);
        /* a lookup by time (ListOffsets, kcat -o s@TS) lands after the damage as well */
        int64_t off = -1;
        CU_ASSERT(mq_part_offset_for_time(part, 1700000000000LL + lost_from, &off) == MQ_OK);
        CU_ASSERT_EQUAL(off, lost_to + 1);
        CU_ASSERT(mq_part_offset_for_time(part, 1700000000000LL + lost_to + 1, &off) == MQ_OK);
        CU_ASSERT_EQUAL(off, lost_to + 1);
        CU_ASSERT(mq_log_close(log) == MQ_OK);
    }
}

/* The file position of batch number i of a segment file (batch sizes vary with the value lengths). */
static int64_t batch_pos(const char *path, int i)
{
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    int64_t pos = 0;
    for (int k = 0; k < i; k++) {
        uint8_t h[12];
        CU_ASSERT_FATAL(pread(fd, h, sizeof h, pos) == (ssize_t)sizeof h);
        pos += 12 + (int64_t)mq_be32_get(h + 8);
    }
    close(fd);
    return pos;
}

static void test_middle_segment_emptied(void)
{
    struct mq_log_conf c;
    char *dir = make_dir(&c);
    int64_t bases[64];
    int n = seg_bases(dir, bases, 64);
    CU_ASSERT_FATAL(n >= 4);
    char *path = seg_file(dir, bases[n / 2]);
    CU_ASSERT_FATAL(truncate(path, 0) == 0);
    check_readable(dir, bases[n / 2], bases[n / 2 + 1] - 1);

    /* appends after the damage are readable */
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_part *part = get_part(log, "t", 0);
    struct mq_record r = {1800000000000LL, NULL, -1, "v5000", 5, NULL, 0};
    int64_t off = -1;
    CU_ASSERT(mq_part_append(part, &r, 1, &off) == MQ_OK && off == N_RECORDS);
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
    CU_ASSERT(read_all(part, 0, NULL) == N_RECORDS - (bases[n / 2 + 1] - bases[n / 2]) + 1);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    free(path);
    mq_test_rmdir(dir);
}

static void test_middle_segment_cut(void)
{
    struct mq_log_conf c;
    char *dir = make_dir(&c);
    int64_t bases[64];
    int n = seg_bases(dir, bases, 64);
    CU_ASSERT_FATAL(n >= 4);
    /* Cut inside the fourth batch: the three before the cut stay readable. */
    char *path = seg_file(dir, bases[n / 2]);
    CU_ASSERT_FATAL(truncate(path, batch_pos(path, 3) + 30) == 0);
    check_readable(dir, bases[n / 2] + 15, bases[n / 2 + 1] - 1);
    free(path);
    mq_test_rmdir(dir);
}

static void test_first_segment_emptied(void)
{
    struct mq_log_conf c;
    char *dir = make_dir(&c);
    int64_t bases[64];
    int n = seg_bases(dir, bases, 64);
    CU_ASSERT_FATAL(n >= 3);
    char *path = seg_file(dir, 0);
    CU_ASSERT_FATAL(truncate(path, 0) == 0);
    check_readable(dir, 0, bases[1] - 1);
    free(path);
    mq_test_rmdir(dir);
}

/* Flips one byte inside the records of the batch at file position pos. */
static void flip(const char *path, int64_t pos)
{
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t b;
    CU_ASSERT(pread(fd, &b, 1, pos + 70) == 1);
    b ^= 0x40;
    CU_ASSERT(pwrite(fd, &b, 1, pos + 70) == 1);
    close(fd);
}

static void test_crc_checked_once(void)
{
    struct mq_log_conf c;
    char *dir = make_dir(&c);
    char *path = seg_file(dir, 0);
    int64_t b2 = batch_pos(path, 2), b3 = batch_pos(path, 3), b4 = batch_pos(path, 4);

    /* The third batch (offsets 10..14) fails its CRC: never handed out, neither by mq_part_read() (the
     * Kafka endpoint's sendfile path) nor by a cursor; the slices stop before it and resume after it. */
    flip(path, b2);
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_part *part = get_part(log, "t", 0);
    struct mq_slice s;
    CU_ASSERT_FATAL(mq_part_read(part, 0, 1 << 20, &s) == MQ_OK);
    CU_ASSERT(s.first_offset == 0 && s.next_offset == 10 && s.len == (size_t)b2);
    mq_slice_release(&s);
    CU_ASSERT_FATAL(mq_part_read(part, 10, 1 << 20, &s) == MQ_OK);
    CU_ASSERT(s.first_offset == 15 && s.pos == b3);
    int64_t seg_end = s.pos + (int64_t)s.len;
    mq_slice_release(&s);
    CU_ASSERT(read_all(part, 0, NULL) == N_RECORDS - 5);
    int64_t missing = -1; /* not counted: only reading every byte finds it (verify does) */
    CU_ASSERT(mq_part_missing_offsets(part, &missing) == MQ_OK && missing == 0);
    int64_t t_off = -1; /* a lookup by time skips it too (record timestamps are base + offset) */
    CU_ASSERT(mq_part_offset_for_time(part, 1700000000000LL + 12, &t_off) == MQ_OK && t_off == 15);
    CU_ASSERT(mq_part_offset_for_time(part, 1700000000000LL + 9, &t_off) == MQ_OK && t_off == 9);

    /* Checked once: the fourth batch, read (and found good) above, is not checked again while the log
     * stays open, so damage done to it since is not seen; the damaged third stays skipped. */
    flip(path, b3);
    CU_ASSERT_FATAL(mq_part_read(part, 10, 1 << 20, &s) == MQ_OK);
    CU_ASSERT(s.first_offset == 15 && s.pos == b3 && s.pos + (int64_t)s.len == seg_end);
    mq_slice_release(&s);

    /* Batches this process writes are known good: appended, then damaged on disk, they are still served. */
    struct mq_record r = {1800000000000LL, NULL, -1, "v5000", 5, NULL, 0};
    int64_t off = -1;
    CU_ASSERT(mq_part_append(part, &r, 1, &off) == MQ_OK && off == N_RECORDS);
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* A new open checks again: now the fourth batch is skipped too. */
    log = open_log(dir, MQ_LOG_READ, &c);
    part = get_part(log, "t", 0);
    CU_ASSERT_FATAL(mq_part_read(part, 10, 1 << 20, &s) == MQ_OK);
    CU_ASSERT(s.first_offset == 20 && s.pos == b4);
    mq_slice_release(&s);
    CU_ASSERT(read_all(part, 0, NULL) == N_RECORDS + 1 - 10);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    free(path);
    mq_test_rmdir(dir);
}

/* Appends records [from, from + n) as one batch with values "v<offset>" and makes them durable. */
static void append_batch(struct mq_part *part, int64_t from, int n)
{
    char vals[8][16];
    struct mq_record recs[8];
    for (int k = 0; k < n && k < 8; k++) {
        int vl = snprintf(vals[k], sizeof vals[k], "v%" PRId64, from + k);
        recs[k] = (struct mq_record){1700000000000LL + from + k, NULL, -1, vals[k], vl, NULL, 0};
    }
    int64_t off = -1;
    CU_ASSERT_FATAL(mq_part_append(part, recs, (size_t)n, &off) == MQ_OK && off == from);
    CU_ASSERT_FATAL(mq_part_flush(part) == MQ_OK);
}

/* The file position of the last batch of a segment file. */
static int64_t last_batch_pos(const char *path)
{
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    int64_t pos = 0, last = -1;
    uint8_t h[12];
    while (pread(fd, h, sizeof h, pos) == (ssize_t)sizeof h) {
        last = pos;
        pos += 12 + (int64_t)mq_be32_get(h + 8);
    }
    close(fd);
    return last;
}

/* A reader process beside the writer, following the active segment: a whole batch that fails its CRC is
 * damage, not a write in progress, once whole batches follow it: the reader skips it and reads on. While it
 * is the last thing in the file the reader stops before it (the writer appends whole batches, so nothing
 * is lost by waiting). */
static void test_reader_skips_bad_batch_beside_writer(void)
{
    struct mq_log_conf c;
    char *dir = make_dir(&c);
    c.segment_bytes = 1 << 20; /* the appends stay in the active segment, which the reader follows */
    struct mq_log *w = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_part *wp = get_part(w, "t", 0);
    struct mq_log *r = open_log(dir, MQ_LOG_READ, &c);
    struct mq_part *rp = get_part(r, "t", 0);
    CU_ASSERT(read_all(rp, 0, NULL) == N_RECORDS);

    append_batch(wp, N_RECORDS, 5);
    append_batch(wp, N_RECORDS + 5, 5);
    int64_t bases[64];
    int n = seg_bases(dir, bases, 64);
    char *path = seg_file(dir, bases[n - 1]);
    flip(path, last_batch_pos(path)); /* offsets N_RECORDS + 5 .. + 9, the file's tail */
    CU_ASSERT(read_all(rp, 0, NULL) == N_RECORDS + 5);

    append_batch(wp, N_RECORDS + 10, 5);
    static bool seen[N_RECORDS + 100];
    memset(seen, 0, sizeof seen);
    CU_ASSERT(read_all(rp, 0, seen) == N_RECORDS + 10);
    CU_ASSERT(seen[N_RECORDS + 4] && !seen[N_RECORDS + 5] && !seen[N_RECORDS + 9] && seen[N_RECORDS + 10]);
    int64_t start = -1, end = -1;
    CU_ASSERT(mq_part_offsets(rp, &start, &end) == MQ_OK && end == N_RECORDS + 15);

    CU_ASSERT(mq_log_close(r) == MQ_OK);
    CU_ASSERT(mq_log_close(w) == MQ_OK);
    free(path);
    mq_test_rmdir(dir);
}

int main(void)
{
    const struct mq_test tests[] = {
        MQ_TEST(test_middle_segment_emptied),
        MQ_TEST(test_middle_segment_cut),
        MQ_TEST(test_first_segment_emptied),
        MQ_TEST(test_crc_checked_once),
        MQ_TEST(test_reader_skips_bad_batch_beside_writer),
        MQ_TEST_END,
    };
    return mq_test_run("read_damage", tests);
}
