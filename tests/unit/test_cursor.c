/*
 * test_cursor.c - the log's record cursor (log.h): opening at an offset, at a time and at the end; offsets
 * out of range below the log start and above the end; a damaged batch reported by its CRC with file and
 * position; control batches skipped; LogAppendTime timestamps; compressed batches decoded; raw batches
 * handed out byte for byte; and following a writer, in its process and from a reader process's view.
 *
 * Records written through the log have value "v<offset>" and timestamp ts_of(offset). Batches with
 * attributes mqlog never writes (control, LogAppendTime, compressed) are built here and written into a
 * segment file directly, then recovered by a writer open, as batches from another Kafka tool would be.
 */
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

/* A new data directory with topic "t" of one partition, open for writing; *c gets its configuration:
 * segments of 16 KiB, so that a few thousand small records span several. */
static struct mq_log *fresh_log(char **dir, struct mq_log_conf *c)
{
    *dir = mq_test_tmpdir("cur");
    *c = small_conf();
    c->segment_bytes = 16 * 1024;
    struct mq_log *log = open_log(*dir, MQ_LOG_WRITE, c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    return log;
}

static int64_t ts_of(int64_t off)
{
    return 1700000000000LL + off * 10;
}

/* Appends records [from, from + n) in batches of `per` records, then makes them durable. */
static void append_n(struct mq_part *part, int64_t from, int64_t n, int per)
{
    char vals[64][32];
    struct mq_record recs[64];
    for (int64_t off = from; off < from + n;) {
        int k = 0;
        for (; k < per && off + k < from + n; k++) {
            int vl = snprintf(vals[k], sizeof vals[k], "v%" PRId64, off + k);
            recs[k] = (struct mq_record){ts_of(off + k), NULL, -1, vals[k], vl, NULL, 0};
        }
        int64_t first = -1;
        CU_ASSERT_FATAL(mq_part_append(part, recs, (size_t)k, &first) == MQ_OK);
        CU_ASSERT(first == off);
        off += k;
    }
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
}

/* Reads records until the end; checks offsets are consecutive from `first` and values match. Returns the
 * count, or -1 on an error or mismatch. */
static int64_t drain(struct mq_cursor *cur, int64_t first)
{
    struct mq_record_view rv;
    int64_t n = 0;
    int r;
    while ((r = mq_cursor_next(cur, &rv)) == 1) {
        char want[32];
        int wl = snprintf(want, sizeof want, "v%" PRId64, first + n);
        if (rv.offset != first + n || rv.value_len != wl || memcmp(rv.value, want, (size_t)wl) != 0 ||
            rv.timestamp != ts_of(rv.offset)) {
            fprintf(stderr, "record %" PRId64 ": offset %" PRId64 "\n", first + n, rv.offset);
            return -1;
        }
        n++;
    }
    return r == 0 ? n : -1;
}

static void test_open_offset_time_end(void)
{
    char *dir;
    struct mq_log_conf c;
    struct mq_log *log = fresh_log(&dir, &c);
    struct mq_part *p = get_part(log, "t", 0);
    append_n(p, 0, 3000, 7); /* several segments */

    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
    CU_ASSERT(drain(cur, 0) == 3000);
    CU_ASSERT(mq_cursor_position(cur) == 3000);
    CU_ASSERT(!mq_cursor_buffered(cur));
    mq_cursor_close(cur);

    /* inside a batch: the records before the offset are skipped */
    CU_ASSERT_FATAL(mq_cursor_open(p, 1234, &cur) == MQ_OK);
    CU_ASSERT(!mq_cursor_buffered(cur)); /* nothing read yet */
    struct mq_record_view first;
    CU_ASSERT_FATAL(mq_cursor_next(cur, &first) == 1 && first.offset == 1234);
    CU_ASSERT(mq_cursor_buffered(cur)); /* the rest of the read: at least the batch of 1234 */
    mq_cursor_seek(cur, 1234);
    CU_ASSERT(drain(cur, 1234) == 3000 - 1234);
    /* seek back: the same records again */
    mq_cursor_seek(cur, 2999);
    CU_ASSERT(drain(cur, 2999) == 1);
    mq_cursor_close(cur);

    /* at a time: the first record at or after it */
    CU_ASSERT_FATAL(mq_cursor_open_time(p, ts_of(2000) - 5, &cur) == MQ_OK);
    CU_ASSERT(mq_cursor_position(cur) == 2000);
    CU_ASSERT(drain(cur, 2000) == 1000);
    mq_cursor_close(cur);
    CU_ASSERT_FATAL(mq_cursor_open_time(p, 0, &cur) == MQ_OK);
    CU_ASSERT(mq_cursor_position(cur) == 0);
    mq_cursor_close(cur);
    CU_ASSERT_FATAL(mq_cursor_open_time(p, ts_of(5000), &cur) == MQ_OK); /* newer than all: the end */
    CU_ASSERT(mq_cursor_position(cur) == 3000);
    CU_ASSERT(drain(cur, 3000) == 0);
    mq_cursor_close(cur);

    /* at the end: nothing yet, then what is appended (follow mode in the writer's process) */
    CU_ASSERT_FATAL(mq_cursor_open(p, 3000, &cur) == MQ_OK);
    struct mq_record_view rv;
    CU_ASSERT(mq_cursor_next(cur, &rv) == 0);
    append_n(p, 3000, 10, 3);
    CU_ASSERT(drain(cur, 3000) == 10);
    CU_ASSERT(mq_cursor_next(cur, &rv) == 0);
    mq_cursor_close(cur);

    /* above the end */
    cur = NULL;
    CU_ASSERT(mq_cursor_open(p, 3011, &cur) == MQ_ERR_RANGE);
    CU_ASSERT(cur == NULL);
    mq_cursor_close(NULL);

    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

/* Below the log start: at open, and for a cursor whose records retention deleted. */
static void test_out_of_range_below_start(void)
{
    char *dir;
    struct mq_log_conf c;
    struct mq_log *log = fresh_log(&dir, &c);
    struct mq_part *p = get_part(log, "t", 0);
    append_n(p, 0, 3000, 7);

    struct mq_cursor *old = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &old) == MQ_OK);
    struct mq_retention ret = {0, 20 * 1024}; /* keep about 20 KiB */
    mq_part_set_retention(p, &ret);
    int deleted = 0;
    CU_ASSERT(mq_part_apply_retention(p, mq_now_ms(), &deleted) == MQ_OK);
    CU_ASSERT(deleted > 0);
    int64_t start, end;
    CU_ASSERT(mq_part_offsets(p, &start, &end) == MQ_OK);
    CU_ASSERT_FATAL(start > 0 && end == 3000);

    struct mq_cursor *cur = NULL;
    CU_ASSERT(mq_cursor_open(p, start - 1, &cur) == MQ_ERR_RANGE);
    CU_ASSERT_FATAL(mq_cursor_open(p, start, &cur) == MQ_OK);
    CU_ASSERT(drain(cur, start) == 3000 - start);
    mq_cursor_close(cur);

    /* the cursor opened before retention ran finds its position gone, says so, and can move on */
    struct mq_record_view rv;
    CU_ASSERT(mq_cursor_next(old, &rv) == -MQ_ERR_RANGE);
    CU_ASSERT(mq_cursor_position(old) == 0);
    CU_ASSERT(mq_cursor_fault(old)->position == -1);
    mq_cursor_seek(old, start);
    CU_ASSERT(drain(old, start) == 3000 - start);
    mq_cursor_close(old);

    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

static char *seg_path(const char *dir, const char *topic, int64_t base)
{
    char *path = NULL;
    CU_ASSERT_FATAL(asprintf(&path, "%s/%s-0/%020" PRId64 ".log", dir, topic, base) > 0);
    return path;
}

/* A flipped byte inside a batch: the cursor reports the CRC, the file and the position, in a reader
 * process's view (a writer would have truncated the damage away on open, and a reader only checks the tail
 * after the last index entry when it looks for new data: damage before it shows when read). */
static void test_corrupt_batch(void)
{
    char *dir;
    struct mq_log_conf c;
    struct mq_log *log = fresh_log(&dir, &c);
    append_n(get_part(log, "t", 0), 0, 200, 5); /* 40 batches in one segment, indexed every 512 bytes */
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* the second batch starts where the first ends */
    log = open_log(dir, MQ_LOG_READ, &c);
    struct mq_part *p = get_part(log, "t", 0);
    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
    struct mq_cursor_batch b;
    CU_ASSERT_FATAL(mq_cursor_next_batch(cur, &b) == 1);
    int64_t second = (int64_t)mq_batch_size(&b.info);
    mq_cursor_close(cur);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    char *path = seg_path(dir, "t", 0);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t byte;
    CU_ASSERT(pread(fd, &byte, 1, second + 70) == 1); /* inside the records, covered by the CRC */
    byte ^= 0x40;
    CU_ASSERT(pwrite(fd, &byte, 1, second + 70) == 1);
    close(fd);

    log = open_log(dir, MQ_LOG_READ, &c);
    p = get_part(log, "t", 0);
    /* The damaged batch is never handed out: the records around it are (issue 11). */
    for (int pass = 0; pass < 2; pass++) { /* the second time from what the segment remembers */
        CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
        struct mq_record_view rv;
        for (int i = 0; i < 5; i++)
            CU_ASSERT(mq_cursor_next(cur, &rv) == 1 && rv.offset == i);
        CU_ASSERT(mq_cursor_next(cur, &rv) == 1 && rv.offset == 10);
        CU_ASSERT(drain(cur, 11) == 189);
        mq_cursor_seek(cur, 7); /* inside it: the batch after it comes out */
        CU_ASSERT(mq_cursor_next_batch(cur, &b) == 1 && b.info.base_offset == 10);
        mq_cursor_close(cur);
    }
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    free(path);
    mq_test_rmdir(dir);
}

/* Builds one batch of n records at base: value "v<offset>", timestamp ts_of(offset); then sets the
 * attributes and, for LogAppendTime, MaxTimestamp, and recomputes the CRC. */
static void build(struct mq_batch_builder *bb, int64_t base, int n, int16_t attributes, int64_t max_ts)
{
    char vals[16][32];
    mq_batch_reset(bb, base);
    for (int i = 0; i < n; i++) {
        int vl = snprintf(vals[i], sizeof vals[i], "v%" PRId64, base + i);
        struct mq_record r = {ts_of(base + i), NULL, -1, vals[i], vl, NULL, 0};
        CU_ASSERT_FATAL(mq_batch_add(bb, &r) == MQ_OK);
    }
    mq_batch_finish(bb);
    if (attributes & MQ_BATCH_ATTR_COMPRESSION_MASK)
        compress_built(bb, attributes & MQ_BATCH_ATTR_COMPRESSION_MASK);
    mq_be16_put(bb->buf + 21, (uint16_t)attributes);
    if (max_ts >= 0)
        mq_be64_put(bb->buf + 35, (uint64_t)max_ts);
    mq_be32_put(bb->buf + 17, mq_crc32c(0, bb->buf + MQ_BATCH_CRC_START, bb->len - MQ_BATCH_CRC_START));
}

/* Control batches, LogAppendTime and a compressed batch, as another Kafka tool could have stored them. */
static void test_batch_kinds(void)
{
    char *dir;
    struct mq_log_conf c;
    struct mq_log *log = fresh_log(&dir, &c);
    get_part(log, "t", 0);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    /* offsets 0-2 data, 3 a control batch, 4-5 LogAppendTime, 6-7 data, 8-9 gzip */
    const int64_t append_ts = 1800000000000LL;
    struct mq_batch_builder bb;
    mq_batch_builder_init(&bb);
    char *path = seg_path(dir, "t", 0);
    int fd = open(path, O_WRONLY | O_TRUNC);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t *file = NULL;
    size_t flen = 0;
    struct {
        int64_t base;
        int n;
        int16_t attr;
        int64_t max_ts;
    } spec[] = {{0, 3, 0, -1},
                {3, 1, MQ_BATCH_ATTR_CONTROL | MQ_BATCH_ATTR_TRANSACTIONAL, -1},
                {4, 2, MQ_BATCH_ATTR_LOG_APPEND_TIME, append_ts},
                {6, 2, 0, -1},
                {8, 2, 1 /* gzip */, -1}};
    size_t sizes[5];
    for (int i = 0; i < 5; i++) {
        build(&bb, spec[i].base, spec[i].n, spec[i].attr, spec[i].max_ts);
        file = realloc(file, flen + bb.len);
        memcpy(file + flen, bb.buf, bb.len);
        sizes[i] = bb.len;
        flen += bb.len;
    }
    CU_ASSERT_FATAL(write(fd, file, flen) == (ssize_t)flen);
    close(fd);
    mq_batch_builder_free(&bb);
    /* make the writer scan the file (there is no recovery point to trust) */
    char *rp = NULL;
    CU_ASSERT_FATAL(asprintf(&rp, "%s/t-0/recovery-point", dir) > 0);
    unlink(rp);
    free(rp);

    log = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_part *p = get_part(log, "t", 0);
    int64_t start, end;
    CU_ASSERT(mq_part_offsets(p, &start, &end) == MQ_OK);
    CU_ASSERT_FATAL(start == 0 && end == 10);

    /* batches: every one, byte for byte, the control and the compressed one included */
    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
    struct mq_cursor_batch b;
    size_t at = 0;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(mq_cursor_next_batch(cur, &b) == 1);
        CU_ASSERT(b.info.base_offset == spec[i].base && b.info.attributes == spec[i].attr);
        CU_ASSERT(mq_batch_size(&b.info) == sizes[i] && memcmp(b.data, file + at, sizes[i]) == 0);
        at += sizes[i];
    }
    CU_ASSERT(mq_cursor_next_batch(cur, &b) == 0);
    mq_cursor_close(cur);

    /* records: the control batch skipped, LogAppendTime applied, the gzip batch decompressed */
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
    struct mq_record_view rv;
    const int64_t want[] = {0, 1, 2, 4, 5, 6, 7, 8, 9};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CU_ASSERT_FATAL(mq_cursor_next(cur, &rv) == 1);
        CU_ASSERT(rv.offset == want[i]);
        CU_ASSERT(rv.timestamp == (want[i] == 4 || want[i] == 5 ? append_ts : ts_of(want[i])));
        char v[32];
        int vl = snprintf(v, sizeof v, "v%" PRId64, want[i]);
        CU_ASSERT(rv.value_len == vl && memcmp(rv.value, v, (size_t)vl) == 0);
    }
    CU_ASSERT(mq_cursor_next(cur, &rv) == 0);
    mq_cursor_close(cur);

    /* a time lookup lands on the LogAppendTime batch: its records all carry the broker's time */
    CU_ASSERT_FATAL(mq_cursor_open_time(p, append_ts, &cur) == MQ_OK);
    CU_ASSERT(mq_cursor_next(cur, &rv) == 1 && rv.offset == 4);
    mq_cursor_close(cur);

    CU_ASSERT(mq_log_close(log) == MQ_OK);
    free(file);
    free(path);
    mq_test_rmdir(dir);
}

/* A reader process's cursor at the end sees what the writer adds, segment rolls included. */
static void test_follow_from_reader(void)
{
    char *dir;
    struct mq_log_conf c;
    struct mq_log *w = fresh_log(&dir, &c);
    struct mq_part *wp = get_part(w, "t", 0);
    append_n(wp, 0, 100, 10);

    struct mq_log *r = open_log(dir, MQ_LOG_READ, &c);
    struct mq_part *rp = get_part(r, "t", 0);
    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(rp, 100, &cur) == MQ_OK);
    struct mq_record_view rv;
    CU_ASSERT(mq_cursor_next(cur, &rv) == 0);
    int64_t seen = 100;
    for (int round = 0; round < 5; round++) {
        append_n(wp, 100 + round * 1000, 1000, 9); /* each round rolls a segment or more */
        int64_t deadline = mq_mono_ms() + 10000;
        while (seen < 100 + (round + 1) * 1000 && mq_mono_ms() < deadline) {
            int rr = mq_cursor_next(cur, &rv);
            CU_ASSERT_FATAL(rr >= 0);
            if (rr == 1) {
                CU_ASSERT_FATAL(rv.offset == seen);
                seen++;
            } else {
                usleep(1000); // pacing the poll: the reader refreshes at most every 100 ms
            }
        }
    }
    CU_ASSERT(seen == 5100);
    mq_cursor_close(cur);
    CU_ASSERT(mq_log_close(r) == MQ_OK);
    CU_ASSERT(mq_log_close(w) == MQ_OK);
    mq_test_rmdir(dir);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_open_offset_time_end), MQ_TEST(test_out_of_range_below_start),
        MQ_TEST(test_corrupt_batch),        MQ_TEST(test_batch_kinds),
        MQ_TEST(test_follow_from_reader),   MQ_TEST_END,
    };
    return mq_test_run("cursor", tests);
}
