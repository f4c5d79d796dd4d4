/*
 * test_log_damage.c - what opening a damaged partition does: the cheap check of the recovery point's segment
 * after a clean stop (a changed Length, a base offset near INT64_MAX, a flipped CRC byte, a cut file, a
 * damaged index, a directory in place of the active segment's index), the bytes recovery keeps aside, the
 * intact batches it salvages, the offsets it never hands out twice, a reader's view before any writer
 * repaired the damage, and `verify` on a base offset near INT64_MAX (run under UBSan: no overflow may happen
 * on the way).
 *
 * Every partition here is written by one process and closed cleanly, so its recovery point vouches for the
 * whole segment: whatever damage the test then makes happened while no writer ran.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/batch.h"
#include "log/log.h"
#include "log_test.h"
#include "testutil.h"
#include "util/diag.h"

#define BATCHES  6 /* of 3 records each: offsets 0..17 */
#define PER      3
#define RECORDS  (BATCHES * PER)
#define SEG_NAME "%s/t-0/00000000000000000000.log"

/* Writes BATCHES batches of PER records ("r<offset>") to topic t and closes cleanly. index_interval: 100
 * gives the segment index entries (the cheap check then reads less), 0 one for every batch after the first,
 * NO_INDEX none. */
#define NO_INDEX (1 << 20)
static void write_clean(const char *dir, int index_interval)
{
    struct mq_log_conf c = small_conf();
    c.index_interval_bytes = index_interval;
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    for (int b = 0; b < BATCHES; b++) {
        char vals[PER][32];
        struct mq_record recs[PER];
        for (int i = 0; i < PER; i++) {
            int n = snprintf(vals[i], sizeof vals[i], "r%d", b * PER + i);
            recs[i] = (struct mq_record){1700000000000LL + b, NULL, -1, vals[i], n, NULL, 0};
        }
        CU_ASSERT_FATAL(mq_part_append(p, recs, PER, NULL) == MQ_OK && mq_part_flush(p) == MQ_OK);
    }
    CU_ASSERT_FATAL(mq_log_close(log) == MQ_OK);
}

/* Byte positions of the batches of the segment file. */
static int batch_positions(const char *path, int64_t *pos, int max)
{
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t h[MQ_BATCH_HEADER_SIZE];
    int n = 0;
    int64_t at = 0;
    while (n < max && pread(fd, h, sizeof h, at) == (ssize_t)sizeof h) {
        struct mq_batch_info bi;
        CU_ASSERT_FATAL(mq_batch_parse_header(h, sizeof h, &bi) == MQ_OK);
        pos[n++] = at;
        at += (int64_t)mq_batch_size(&bi);
    }
    close(fd);
    return n;
}

static void poke(const char *path, int64_t at, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pwrite(fd, bytes, len, at) == (ssize_t)len);
    close(fd);
}

static void poke_be64(const char *path, int64_t at, int64_t v)
{
    uint8_t b[8];
    mq_be64_put(b, (uint64_t)v);
    poke(path, at, b, sizeof b);
}

/* Reads the records from `from` up to `limit` (exclusive); checks each value against its offset. Returns the
 * count, -1 on a mismatch or read error; *next gets the offset after the last one. A gap in the offsets may
 * or may not be stepped over by the reader: stopping at `limit` makes the count the same either way. */
static int64_t read_upto(struct mq_part *part, int64_t from, int64_t limit, int64_t *next)
{
    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(part, from, &cur) == MQ_OK);
    int64_t count = 0, off = from;
    struct mq_record_view rv;
    int r;
    while ((r = mq_cursor_next(cur, &rv)) == 1 && rv.offset < limit) {
        char want[32];
        int n = snprintf(want, sizeof want, "r%" PRId64, rv.offset);
        if (rv.value_len != n || memcmp(rv.value, want, (size_t)n) != 0) {
            count = -1;
            break;
        }
        off = rv.offset + 1;
        count++;
    }
    mq_cursor_close(cur);
    if (next)
        *next = off;
    return r < 0 ? -1 : count;
}

static int64_t read_from(struct mq_part *part, int64_t from, int64_t *next)
{
    return read_upto(part, from, INT64_MAX, next);
}

/* Files of the partition directory whose name contains `part`. */
static int count_files(const char *dir, const char *part)
{
    char pdir[512];
    snprintf(pdir, sizeof pdir, "%s/t-0", dir);
    DIR *d = opendir(pdir);
    CU_ASSERT_FATAL(d != NULL);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, part) != NULL;
    closedir(d);
    return n;
}

struct issues {
    int n;
    char what[8][256];
    int64_t pos[8];
};

static void collect(void *opaque, const struct mq_verify_issue *issue)
{
    struct issues *is = opaque;
    if (is->n < 8) {
        snprintf(is->what[is->n], sizeof is->what[0], "%s", issue->what);
        is->pos[is->n] = issue->position;
    }
    is->n++;
}

/*
 * Reopens for writing after damage: records [0, intact) and [salvaged, RECORDS) (salvaged -1: none) must
 * read back, the partition's end must be RECORDS (offsets are never handed out twice), an append must get
 * offset RECORDS and read back; `kept` files of set-aside bytes must exist. A second open changes nothing.
 */
static void expect_reopen(const char *dir, int64_t intact, int64_t salvaged, int kept)
{
    struct mq_log_conf c = small_conf();
    int64_t first_kept = intact > 0 ? 0 : salvaged >= 0 ? salvaged : RECORDS;
    for (int round = 0; round < 3; round++) {
        /* rounds 0 and 1 write, round 2 is a reader process's view */
        struct mq_log *log = open_log(dir, round < 2 ? MQ_LOG_WRITE : MQ_LOG_READ, &c);
        struct mq_part *p = get_part(log, "t", 0);
        int64_t start = -1, end = -1, next = -1;
        CU_ASSERT(mq_part_offsets(p, &start, &end) == MQ_OK);
        CU_ASSERT_EQUAL(end, RECORDS + (round > 0));
        CU_ASSERT_EQUAL(start, first_kept);
        if (intact > 0) {
            CU_ASSERT_EQUAL(read_upto(p, 0, intact, &next), intact);
            CU_ASSERT_EQUAL(next, intact);
        }
        if (salvaged >= 0) {
            CU_ASSERT_EQUAL(read_upto(p, salvaged, RECORDS, &next), RECORDS - salvaged);
            CU_ASSERT_EQUAL(next, RECORDS);
        }
        if (round == 0) {
            char v[32];
            int n = snprintf(v, sizeof v, "r%d", RECORDS);
            struct mq_record r = {1700000001000LL, NULL, -1, v, n, NULL, 0};
            int64_t first = -1;
            CU_ASSERT(mq_part_append(p, &r, 1, &first) == MQ_OK && mq_part_flush(p) == MQ_OK);
            CU_ASSERT_EQUAL(first, RECORDS);
        }
        CU_ASSERT_EQUAL(read_from(p, RECORDS, &next), 1);
        CU_ASSERT_EQUAL(next, RECORDS + 1);
        CU_ASSERT(mq_log_close(log) == MQ_OK);
        CU_ASSERT_EQUAL(count_files(dir, ".damaged-"), kept);
    }
    /* verify names the kept bytes and the gap of lost offsets (none when nothing came before the damage) */
    struct issues is = {0};
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, collect, &is, &problems, NULL) == MQ_OK);
    CU_ASSERT_EQUAL(problems, kept + (intact > 0));
    int named = 0;
    for (int k = 0; k < is.n && k < 8; k++)
        named += strstr(is.what[k], "damaged segment") != NULL;
    CU_ASSERT_EQUAL(named, kept);
}

/* One case: a fresh clean partition, damage(), reopen. */
static void damage_case(int index_interval, void (*damage)(const char *seg, const int64_t *pos),
                        int64_t intact, int64_t salvaged, int kept)
{
    char *dir = mq_test_tmpdir("damage");
    write_clean(dir, index_interval);
    char seg[512];
    snprintf(seg, sizeof seg, SEG_NAME, dir);
    int64_t pos[BATCHES + 1];
    CU_ASSERT_FATAL(batch_positions(seg, pos, BATCHES + 1) == BATCHES);
    struct stat st;
    CU_ASSERT_FATAL(stat(seg, &st) == 0);
    pos[BATCHES] = st.st_size;
    damage(seg, pos);
    expect_reopen(dir, intact, salvaged, kept);
    mq_test_rmdir(dir);
}

static void flip_first_length(const char *seg, const int64_t *pos)
{
    uint8_t b = 0x01; /* Length 0x000000xx -> 0x010000xx: 16 MiB, past the end of the file */
    poke(seg, pos[0] + 8, &b, 1);
}

static void flip_second_length(const char *seg, const int64_t *pos)
{
    uint8_t b = 0x01;
    poke(seg, pos[1] + 8, &b, 1);
}

static void last_base_near_max(const char *seg, const int64_t *pos)
{
    poke_be64(seg, pos[BATCHES - 1], INT64_MAX - PER); /* last offset INT64_MAX - 1: a parseable header */
}

static void last_base_at_max(const char *seg, const int64_t *pos)
{
    poke_be64(seg, pos[BATCHES - 1], INT64_MAX - (PER - 1)); /* last offset INT64_MAX */
}

static void flip_last_crc_byte(const char *seg, const int64_t *pos)
{
    uint8_t b;
    int fd = open(seg, O_RDONLY);
    CU_ASSERT_FATAL(pread(fd, &b, 1, pos[BATCHES] - 1) == 1);
    close(fd);
    b ^= 0x20;
    poke(seg, pos[BATCHES] - 1, &b, 1);
}

static void cut_last(const char *seg, const int64_t *pos)
{
    CU_ASSERT_FATAL(truncate(seg, pos[BATCHES] - 5) == 0);
}

static void test_first_length(void)
{
    damage_case(NO_INDEX, flip_first_length, 0, PER, 1); /* batches 1.. salvaged */
}

static void test_second_length(void)
{
    damage_case(NO_INDEX, flip_second_length, PER, 2 * PER, 1);
}

static void test_base_offset_near_max(void)
{
    damage_case(NO_INDEX, last_base_near_max, RECORDS - PER, -1, 1);
    damage_case(NO_INDEX, last_base_at_max, RECORDS - PER, -1, 1);
    damage_case(100, last_base_near_max, RECORDS - PER, -1, 1); /* found from the last index entry */
}

static void test_crc_and_cut(void)
{
    damage_case(100, flip_last_crc_byte, RECORDS - PER, -1, 1);
    damage_case(NO_INDEX, cut_last, RECORDS - PER, -1, 1);
}

/* A reader process before any writer repaired the damage: a base offset near INT64_MAX in the last batch,
 * reached through the index or by scanning, must not become the partition's end. */
static void test_reader_before_repair(void)
{
    const int intervals[] = {NO_INDEX, 100, 0};
    for (size_t k = 0; k < sizeof intervals / sizeof intervals[0]; k++) {
        char *dir = mq_test_tmpdir("damage");
        write_clean(dir, intervals[k]);
        char seg[512];
        snprintf(seg, sizeof seg, SEG_NAME, dir);
        int64_t pos[BATCHES + 1];
        CU_ASSERT_FATAL(batch_positions(seg, pos, BATCHES + 1) == BATCHES);
        last_base_near_max(seg, pos);
        struct mq_log_conf c = small_conf();
        struct mq_log *log = open_log(dir, MQ_LOG_READ, &c);
        struct mq_part *p = get_part(log, "t", 0);
        int64_t start = -1, end = -1, next = -1;
        CU_ASSERT(mq_part_offsets(p, &start, &end) == MQ_OK);
        CU_ASSERT_EQUAL(end, RECORDS - PER);
        CU_ASSERT_EQUAL(read_from(p, 0, &next), RECORDS - PER);
        mq_log_close(log);
        mq_test_rmdir(dir);
    }
}

/* A crash after a salvage, before the recovery point moved on: the next open meets the cut segment and the
 * salvaged one behind a gap the old recovery point vouches for, and keeps both. */
static void test_salvage_interrupted(void)
{
    char *dir = mq_test_tmpdir("damage");
    write_clean(dir, NO_INDEX);
    char seg[512], rp[512];
    snprintf(seg, sizeof seg, SEG_NAME, dir);
    snprintf(rp, sizeof rp, "%s/t-0/recovery-point", dir);
    int64_t pos[BATCHES + 1];
    CU_ASSERT_FATAL(batch_positions(seg, pos, BATCHES + 1) == BATCHES);
    flip_second_length(seg, pos);
    uint8_t old_rp[256];
    int fd = open(rp, O_RDONLY);
    ssize_t rp_len = read(fd, old_rp, sizeof old_rp);
    close(fd);
    CU_ASSERT_FATAL(rp_len > 0);
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c); /* salvages batches 2.. into their own segment */
    get_part(log, "t", 0);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    fd = open(rp, O_WRONLY | O_TRUNC);
    CU_ASSERT_FATAL(fd >= 0 && write(fd, old_rp, (size_t)rp_len) == rp_len);
    close(fd);
    expect_reopen(dir, PER, 2 * PER, 1);
    mq_test_rmdir(dir);
}

/* A damaged index entry fails the cheap check too; the whole-segment scan then finds every batch intact:
 * nothing is lost or kept aside, and appends continue right after the data. */
static void test_index_damage_loses_nothing(void)
{
    char *dir = mq_test_tmpdir("damage");
    write_clean(dir, 100);
    char idx[512];
    snprintf(idx, sizeof idx, "%s/t-0/00000000000000000000.index", dir);
    struct stat st;
    CU_ASSERT_FATAL(stat(idx, &st) == 0 && st.st_size >= 8);
    uint8_t junk[4] = {0, 0, 0, 3}; /* the last entry now points at byte 3, inside the first batch */
    poke(idx, st.st_size - 4, junk, sizeof junk);
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_part *p = get_part(log, "t", 0);
    int64_t next = -1;
    CU_ASSERT_EQUAL(read_from(p, 0, &next), RECORDS);
    char v[32];
    int n = snprintf(v, sizeof v, "r%d", RECORDS);
    struct mq_record r = {1700000001000LL, NULL, -1, v, n, NULL, 0};
    int64_t first = -1;
    CU_ASSERT(mq_part_append(p, &r, 1, &first) == MQ_OK && mq_part_flush(p) == MQ_OK);
    CU_ASSERT_EQUAL(first, RECORDS);
    CU_ASSERT_EQUAL(read_from(p, 0, &next), RECORDS + 1);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    CU_ASSERT_EQUAL(count_files(dir, ".damaged-"), 0);
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, NULL) == MQ_OK);
    CU_ASSERT_EQUAL(problems, 0);
    mq_test_rmdir(dir);
}

/* Replaces path (a file) by an empty directory. */
static void replace_by_dir(const char *path)
{
    CU_ASSERT_FATAL(unlink(path) == 0 && mkdir(path, 0755) == 0);
}

/* A directory in place of the active segment's index files: the partition opens, every record reads back in
 * both modes (the segment scanned from its start), appends go to a new segment and read back, and verify
 * names each non-file. With which: 1 the .index, 2 the .timeindex, 3 both. */
static void test_active_index_dir(void)
{
    for (int which = 1; which <= 3; which++) {
        char *dir = mq_test_tmpdir("damage");
        write_clean(dir, 100);
        char idx[512], tidx[512];
        snprintf(idx, sizeof idx, "%s/t-0/00000000000000000000.index", dir);
        snprintf(tidx, sizeof tidx, "%s/t-0/00000000000000000000.timeindex", dir);
        if (which & 1)
            replace_by_dir(idx);
        if (which & 2)
            replace_by_dir(tidx);
        struct mq_log_conf c = small_conf();
        for (int round = 0; round < 3; round++) {
            /* rounds 0 and 1 write (the first one rolls), round 2 is a reader process's view */
            struct mq_log *log = open_log(dir, round < 2 ? MQ_LOG_WRITE : MQ_LOG_READ, &c);
            struct mq_part *p = get_part(log, "t", 0);
            int64_t start = -1, end = -1, next = -1;
            CU_ASSERT(mq_part_offsets(p, &start, &end) == MQ_OK);
            CU_ASSERT(start == 0 && end == RECORDS + (round > 0));
            CU_ASSERT_EQUAL(read_from(p, 0, &next), RECORDS + (round > 0));
            CU_ASSERT_EQUAL(read_from(p, PER + 1, &next), RECORDS - PER - 1 + (round > 0));
            int64_t off = -1;
            CU_ASSERT(mq_part_offset_for_time(p, 1700000000000LL + 2, &off) == MQ_OK && off == 2 * PER);
            if (round == 0) {
                char v[32];
                int n = snprintf(v, sizeof v, "r%d", RECORDS);
                struct mq_record r = {1700000001000LL, NULL, -1, v, n, NULL, 0};
                int64_t first = -1;
                CU_ASSERT(mq_part_append(p, &r, 1, &first) == MQ_OK && mq_part_flush(p) == MQ_OK);
                CU_ASSERT_EQUAL(first, RECORDS);
                CU_ASSERT_EQUAL(read_from(p, RECORDS, &next), 1);
            }
            CU_ASSERT(mq_log_close(log) == MQ_OK);
        }
        struct issues is = {0};
        int64_t problems = -1;
        CU_ASSERT(mq_log_verify(dir, collect, &is, &problems, NULL) == MQ_OK);
        CU_ASSERT_EQUAL(problems, (which & 1) + (which >> 1));
        for (int k = 0; k < is.n && k < 8; k++)
            CU_ASSERT(strstr(is.what[k], "not a regular file") != NULL);
        mq_test_rmdir(dir);
    }
}

/* verify on a last batch whose base offset is near INT64_MAX: one problem at that batch, no arithmetic on
 * the bogus offset (UBSan stops the test on a signed overflow). */
static void test_verify_base_offset_near_max(void)
{
    const int64_t bases[] = {INT64_MAX - (PER - 1), INT64_MAX - PER, INT64_MAX - 100};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        char *dir = mq_test_tmpdir("damage");
        write_clean(dir, NO_INDEX);
        char seg[512];
        snprintf(seg, sizeof seg, SEG_NAME, dir);
        int64_t pos[BATCHES + 1];
        CU_ASSERT_FATAL(batch_positions(seg, pos, BATCHES + 1) == BATCHES);
        poke_be64(seg, pos[BATCHES - 1], bases[i]);
        struct issues is = {0};
        int64_t problems = -1, batches = -1;
        CU_ASSERT(mq_log_verify(dir, collect, &is, &problems, &batches) == MQ_OK);
        CU_ASSERT(problems >= 1 && problems <= 2); /* the batch, and the time index entry pointing into it */
        CU_ASSERT_EQUAL(is.pos[0], pos[BATCHES - 1]);
        if (problems < 1 || problems > 2 || is.pos[0] != pos[BATCHES - 1])
            for (int k = 0; k < is.n && k < 8; k++)
                fprintf(stderr, "base %" PRId64 ": %" PRId64 ": %s\n", bases[i], is.pos[k], is.what[k]);
        mq_test_rmdir(dir);
    }
}

/* A segment name whose base offset leaves no room for the int32 relative offsets of its index: every reader
 * ignores it (no arithmetic on it), and verify says so. */
static void test_segment_name_near_max(void)
{
    char *dir = mq_test_tmpdir("damage");
    write_clean(dir, NO_INDEX);
    char path[512];
    snprintf(path, sizeof path, "%s/t-0/09223372036854775807.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    struct issues is = {0};
    int64_t problems = -1;
    CU_ASSERT(mq_log_verify(dir, collect, &is, &problems, NULL) == MQ_OK);
    CU_ASSERT_EQUAL(problems, 1);
    CU_ASSERT(strstr(is.what[0], "not a segment name") != NULL);
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    struct mq_part *p = get_part(log, "t", 0);
    int64_t start = -1, end = -1;
    CU_ASSERT(mq_part_offsets(p, &start, &end) == MQ_OK);
    CU_ASSERT(start == 0 && end == RECORDS);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

int main(void)
{
    mq_diag_level = MQ_LV_NOTICE; /* the expected damage reports are warnings and errors: keep them */
    static const struct mq_test tests[] = {
        MQ_TEST(test_first_length),
        MQ_TEST(test_second_length),
        MQ_TEST(test_base_offset_near_max),
        MQ_TEST(test_crc_and_cut),
        MQ_TEST(test_salvage_interrupted),
        MQ_TEST(test_reader_before_repair),
        MQ_TEST(test_index_damage_loses_nothing),
        MQ_TEST(test_active_index_dir),
        MQ_TEST(test_verify_base_offset_near_max),
        MQ_TEST(test_segment_name_near_max),
        MQ_TEST_END,
    };
    return mq_test_run("log_damage", tests);
}
