/*
 * test_recompact.c - recompaction of closed segments (recompact.c): the rewrite keeps every record as it
 * was, readers keep reading across the swap, and an open after a crash at any step of the swap finds either
 * the old segment or the new one, complete.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_test.h"
#include "util/parse.h"

#define NRECORDS 3000

static struct mq_log_conf rc_conf(void)
{
    struct mq_log_conf c = small_conf();
    c.recompact_after_ms = -1; /* the tests recompact when they choose; one test runs the thread */
    return c;
}

/* Sensor-like records, one batch each, as ingest writes them at the edge. */
static void fill(struct mq_part *p, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char key[32], val[64], topic[48];
        snprintf(key, sizeof key, "sensor-%d", i % 17);
        snprintf(val, sizeof val, "{\"t\":%d.%d,\"seq\":%d}", 20 + i % 7, i % 10, i);
        snprintf(topic, sizeof topic, "sensors/%d/temp", i % 17);
        struct mq_header h[2] = {{"mqtt.topic", 10, topic, (int32_t)strlen(topic)}, {"mqtt.qos", 8, "1", 1}};
        struct mq_record r = {1700000000000LL + i * 1000LL - (i % 3) * 10,
                              key,
                              (int32_t)strlen(key),
                              val,
                              (int32_t)strlen(val),
                              h,
                              i % 5 == 0 ? 1 : 2};
        if (i % 11 == 0)
            r.key_len = -1; /* a null key now and then */
        CU_ASSERT_FATAL(mq_part_append(p, &r, 1, NULL) == MQ_OK);
    }
    CU_ASSERT_FATAL(mq_part_flush(p) == MQ_OK);
}

/* A digest of every record from offset 0: offsets, timestamps, keys, values and headers. */
struct digest {
    int64_t count, last;
    uint32_t crc;
    int64_t batches;
};

static void digest_add(struct digest *d, const struct mq_record_view *rv)
{
    d->count++;
    d->last = rv->offset;
    d->crc = mq_crc32c(d->crc, &rv->offset, sizeof rv->offset);
    d->crc = mq_crc32c(d->crc, &rv->timestamp, sizeof rv->timestamp);
    d->crc = mq_crc32c(d->crc, &rv->key_len, sizeof rv->key_len);
    if (rv->key_len > 0)
        d->crc = mq_crc32c(d->crc, rv->key, (size_t)rv->key_len);
    d->crc = mq_crc32c(d->crc, rv->value, (size_t)rv->value_len);
    d->crc = mq_crc32c(d->crc, &rv->header_count, sizeof rv->header_count);
    d->crc = mq_crc32c(d->crc, rv->headers, (size_t)(rv->headers_end - rv->headers));
}

static struct digest digest_of(struct mq_part *p)
{
    struct digest d = {0};
    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
    struct mq_cursor_batch b;
    int r;
    while ((r = mq_cursor_next_batch(cur, &b)) == 1)
        d.batches++;
    CU_ASSERT_EQUAL(r, 0);
    mq_cursor_seek(cur, 0);
    struct mq_record_view rv;
    while ((r = mq_cursor_next(cur, &rv)) == 1)
        digest_add(&d, &rv);
    CU_ASSERT_EQUAL(r, 0);
    mq_cursor_close(cur);
    return d;
}

static void same_records(const struct digest *a, const struct digest *b)
{
    CU_ASSERT_EQUAL(a->count, b->count);
    CU_ASSERT_EQUAL(a->last, b->last);
    CU_ASSERT_EQUAL(a->crc, b->crc);
}

static void on_issue(void *opaque, const struct mq_verify_issue *issue)
{
    (void)opaque;
    fprintf(stderr, "verify: %s:%" PRId64 ": %s\n", issue->path, issue->position, issue->what);
}

static void verify_clean(const char *dir)
{
    int64_t problems = -1, batches = 0;
    CU_ASSERT_EQUAL(mq_log_verify(dir, on_issue, NULL, &problems, &batches), MQ_OK);
    CU_ASSERT_EQUAL(problems, 0);
}

static int64_t part_bytes(struct mq_part *p)
{
    struct mq_part_stats st;
    CU_ASSERT_FATAL(mq_part_stats(p, &st) == MQ_OK);
    return st.bytes;
}

static void rewrite_keeps_records(int codec)
{
    char *dir = mq_test_tmpdir("recompact");
    struct mq_log_conf c = rc_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    mq_part_set_compression(p, codec);
    fill(p, 0, NRECORDS);
    struct digest before = digest_of(p);
    CU_ASSERT_EQUAL(before.count, NRECORDS);
    int64_t t_off = -1, t_after = -1;
    CU_ASSERT(mq_part_offset_for_time(p, 1700000000000LL + 1234 * 1000LL, &t_off) == MQ_OK);
    int64_t bytes_before = part_bytes(p);

    int n = 0;
    CU_ASSERT_EQUAL(mq_part_recompact(p, mq_now_ms(), &n), MQ_OK);
    CU_ASSERT(n >= 3);
    struct digest after = digest_of(p);
    same_records(&before, &after);
    CU_ASSERT(after.batches < before.batches / 10);
    int64_t bytes_after = part_bytes(p);
    CU_ASSERT(bytes_after < bytes_before / 2);
    CU_ASSERT(mq_part_offset_for_time(p, 1700000000000LL + 1234 * 1000LL, &t_after) == MQ_OK);
    CU_ASSERT_EQUAL(t_off, t_after);
    for (int64_t o = 0; o < NRECORDS; o += 97) { /* every offset through the new indexes */
        struct mq_cursor *cur = NULL;
        struct mq_record_view rv;
        CU_ASSERT_FATAL(mq_cursor_open(p, o, &cur) == MQ_OK);
        CU_ASSERT_EQUAL(mq_cursor_next(cur, &rv), 1);
        CU_ASSERT_EQUAL(rv.offset, o);
        mq_cursor_close(cur);
    }
    struct mq_log_stats ls;
    mq_log_stats(log, &ls);
    CU_ASSERT_EQUAL(ls.recompacted_segments, n);
    CU_ASSERT_EQUAL(ls.recompact_saved_bytes, bytes_before - bytes_after);
    /* nothing more to do, and new records go on after the rewritten segments */
    CU_ASSERT_EQUAL(mq_part_recompact(p, mq_now_ms(), &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 0);
    fill(p, NRECORDS, 10);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    verify_clean(dir);

    /* Reopened: the same records; the recompact point keeps the rewritten segments from a second rewrite. */
    log = open_log(dir, MQ_LOG_WRITE, &c);
    p = get_part(log, "t", 0);
    mq_part_set_compression(p, codec);
    struct digest again = digest_of(p);
    CU_ASSERT_EQUAL(again.count, NRECORDS + 10);
    CU_ASSERT_EQUAL(mq_part_recompact(p, mq_now_ms(), &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    mq_test_rmdir(dir);
}

static void test_rewrite_zstd(void)
{
    rewrite_keeps_records(MQ_CODEC_ZSTD);
}

static void test_rewrite_lz4(void)
{
    rewrite_keeps_records(MQ_CODEC_LZ4);
}

/* A partition without a codec is left alone. */
static void test_no_codec_no_rewrite(void)
{
    char *dir = mq_test_tmpdir("recompact");
    struct mq_log_conf c = rc_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    fill(p, 0, 1000);
    int n = -1;
    CU_ASSERT_EQUAL(mq_part_recompact(p, mq_now_ms(), &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    mq_test_rmdir(dir);
}

/* Readers in the middle of a partition keep reading across the swap: a cursor, and a slice (its file
 * descriptor) taken before it; a reader process opened before it too. */
static void test_readers_across_swap(void)
{
    char *dir = mq_test_tmpdir("recompact");
    struct mq_log_conf c = rc_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    mq_part_set_compression(p, MQ_CODEC_ZSTD);
    fill(p, 0, NRECORDS);
    struct digest whole = digest_of(p);

    struct mq_log *rlog = open_log(dir, MQ_LOG_READ, &c);
    struct mq_part *rp = get_part(rlog, "t", 0);
    struct mq_cursor *cur = NULL, *rcur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
    CU_ASSERT_FATAL(mq_cursor_open(rp, 0, &rcur) == MQ_OK);
    struct digest d = {0}, rd = {0};
    struct mq_record_view rv;
    for (int i = 0; i < 700; i++) {
        CU_ASSERT_FATAL(mq_cursor_next(cur, &rv) == 1);
        digest_add(&d, &rv);
        CU_ASSERT_FATAL(mq_cursor_next(rcur, &rv) == 1);
        digest_add(&rd, &rv);
    }
    struct mq_slice s;
    CU_ASSERT_FATAL(mq_part_read(p, 100, 4096, &s) == MQ_OK);
    uint8_t *held = malloc(s.len), *again = malloc(s.len);
    CU_ASSERT_FATAL(held && again);
    CU_ASSERT_FATAL(pread(s.fd, held, s.len, s.pos) == (ssize_t)s.len);

    int n = 0;
    CU_ASSERT_EQUAL(mq_part_recompact(p, mq_now_ms(), &n), MQ_OK);
    CU_ASSERT(n >= 3);
    /* the slice's descriptor still reads the old file's bytes */
    CU_ASSERT_FATAL(pread(s.fd, again, s.len, s.pos) == (ssize_t)s.len);
    CU_ASSERT(memcmp(held, again, s.len) == 0);
    mq_slice_release(&s);
    free(held);
    free(again);
    int r;
    while ((r = mq_cursor_next(cur, &rv)) == 1)
        digest_add(&d, &rv);
    CU_ASSERT_EQUAL(r, 0);
    while ((r = mq_cursor_next(rcur, &rv)) == 1)
        digest_add(&rd, &rv);
    CU_ASSERT_EQUAL(r, 0);
    same_records(&whole, &d);
    same_records(&whole, &rd);
    mq_cursor_close(cur);
    mq_cursor_close(rcur);
    /* a reader opened after the swap, and one that reads from the middle through the indexes */
    struct digest later = digest_of(rp);
    same_records(&whole, &later);
    struct mq_log *rlog2 = open_log(dir, MQ_LOG_READ, &c);
    struct digest fresh = digest_of(get_part(rlog2, "t", 0));
    same_records(&whole, &fresh);
    mq_log_close(rlog2);
    mq_log_close(rlog);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    mq_test_rmdir(dir);
}

/* Reads on from cur: every record must be the next offset, from `next`, up to `end`. A reader process sees
 * segments the writer added once its refresh has listed them, so the end it reports may lag for a moment:
 * the reading goes on, under a deadline, until `end`. Returns where it stopped. */
static int64_t read_on_in_sequence(struct mq_cursor *cur, int64_t next, int64_t end)
{
    struct mq_record_view rv;
    int64_t deadline = mq_mono_ms() + 10000;
    for (;;) {
        int r = mq_cursor_next(cur, &rv);
        if (r == 1) {
            if (rv.offset != next) {
                CU_FAIL("a record out of sequence");
                fprintf(stderr, "  record %" PRId64 " where %" PRId64 " was next\n", rv.offset, next);
                return -1;
            }
            next++;
            continue;
        }
        CU_ASSERT_EQUAL(r, 0);
        if (r != 0 || next >= end || mq_mono_ms() > deadline)
            return next;
        usleep(10000); /* the reader's next refresh, under the deadline */
    }
}

/* A cursor that stopped in the middle of the then active segment, at the end visible then, goes on after
 * that segment was closed and rewritten into large batches: the batch that holds its next offset now begins
 * before it, and the records the cursor returned already must not come again. The writer's cursor and a
 * reader process's. (It found 428 records twice in test_recompact_crash's follower.) */
static void test_cursor_resumes_inside_a_rewritten_batch(void)
{
    char *dir = mq_test_tmpdir("recompact");
    struct mq_log_conf c = rc_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    mq_part_set_compression(p, MQ_CODEC_ZSTD);
    fill(p, 0, 50);
    struct mq_log *rlog = open_log(dir, MQ_LOG_READ, &c);
    struct mq_part *rp = get_part(rlog, "t", 0);
    struct mq_cursor *cur = NULL, *rcur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(p, 0, &cur) == MQ_OK);
    CU_ASSERT_FATAL(mq_cursor_open(rp, 0, &rcur) == MQ_OK);
    CU_ASSERT_EQUAL(read_on_in_sequence(cur, 0, 50), 50);
    CU_ASSERT_EQUAL(read_on_in_sequence(rcur, 0, 50), 50);

    fill(p, 50, NRECORDS); /* the first segment closes with more records after the cursors' position */
    int n = 0;
    CU_ASSERT_EQUAL(mq_part_recompact(p, mq_now_ms(), &n), MQ_OK);
    CU_ASSERT_FATAL(n >= 1);
    CU_ASSERT_EQUAL(read_on_in_sequence(cur, 50, 50 + NRECORDS), 50 + NRECORDS);
    CU_ASSERT_EQUAL(read_on_in_sequence(rcur, 50, 50 + NRECORDS), 50 + NRECORDS);
    mq_cursor_close(cur);
    mq_cursor_close(rcur);
    mq_log_close(rlog);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    mq_test_rmdir(dir);
}

/* The recompactor thread rewrites a segment soon after it closes. */
static bool recompacted(void *opaque)
{
    struct mq_log_stats ls;
    mq_log_stats(opaque, &ls);
    return ls.recompacted_segments >= 3;
}

static void test_thread(void)
{
    char *dir = mq_test_tmpdir("recompact");
    struct mq_log_conf c = small_conf(); /* recompact_after_ms 0: as soon as a segment is closed */
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    mq_part_set_compression(p, MQ_CODEC_ZSTD);
    fill(p, 0, NRECORDS);
    CU_ASSERT(mq_test_wait(recompacted, log, 20000));
    struct digest d = digest_of(p);
    CU_ASSERT_EQUAL(d.count, NRECORDS);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    verify_clean(dir);
    mq_test_rmdir(dir);
}

/* ---- crash steps of the swap ---- */

static void copy_file(const char *from, const char *to, off_t len)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    off_t done = 0;
    while ((len < 0 || done < len) && (n = read(in, buf, sizeof buf)) > 0) {
        if (len >= 0 && done + n > len)
            n = (ssize_t)(len - done);
        CU_ASSERT_FATAL(write(out, buf, (size_t)n) == n);
        done += n;
    }
    close(in);
    close(out);
}

/* Copies every file of directory from (one level, plus partition directories) into to. */
static void copy_tree(const char *from, const char *to)
{
    mkdir(to, 0755);
    DIR *d = opendir(from);
    CU_ASSERT_FATAL(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", from, de->d_name);
        snprintf(b, sizeof b, "%s/%s", to, de->d_name);
        struct stat st;
        CU_ASSERT_FATAL(stat(a, &st) == 0);
        if (S_ISDIR(st.st_mode))
            copy_tree(a, b);
        else
            copy_file(a, b, -1);
    }
    closedir(d);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Files of a partition directory whose name ends with suffix. */
static int count_suffix(const char *pdir, const char *suffix)
{
    DIR *d = opendir(pdir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        n += l > s && strcmp(de->d_name + l - s, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

/* The base offset of the i-th segment (in name order) of dir/t-0. */
static int64_t seg_base(const char *dir, int i)
{
    char pdir[1024];
    snprintf(pdir, sizeof pdir, "%s/t-0", dir);
    struct dirent **names = NULL;
    int n = scandir(pdir, &names, NULL, alphasort), k = 0;
    int64_t base = -1;
    for (int j = 0; j < n; j++) {
        size_t l = strlen(names[j]->d_name);
        if (l == 24 && strcmp(names[j]->d_name + 20, ".log") == 0 && k++ == i)
            base = strtoll(names[j]->d_name, NULL, 10);
        free(names[j]);
    }
    free(names);
    CU_ASSERT_FATAL(base >= 0);
    return base;
}

enum step {
    STEP_CLEANED_PARTIAL, /* killed while writing the .cleaned files */
    STEP_CLEANED,         /* all written and synced, before the commit */
    STEP_SWAP,            /* B.log.swap: committed, nothing in place yet */
    STEP_SWAP_INDEXED,    /* the indexes in place, B.log.swap not yet */
    STEP_DONE,            /* all in place */
    STEP_SWAP_DELETED,    /* committed, then retention deleted B.log */
};

/* The old files of segment `base` are in olddir/t-0, the rewritten ones in newdir/t-0; builds the partition
 * directory a kill at `step` leaves in crashdir, opens it and checks that the segment is whole. */
static void crash_at(const char *olddir, const char *newdir, const char *crashdir, int64_t base,
                     enum step step, const struct digest *whole)
{
    copy_tree(olddir, crashdir);
    char o[1024], n[1024], c[1024], pdir[1024];
    snprintf(pdir, sizeof pdir, "%s/t-0", crashdir);
#define SEG(buf, dir, ext) snprintf(buf, sizeof buf, "%s/t-0/%020" PRId64 "%s", dir, base, ext)
    SEG(o, olddir, ".log");
    off_t old_size = file_size(o);
    SEG(n, newdir, ".log");
    off_t new_size = file_size(n);
    CU_ASSERT_FATAL(new_size > 0 && new_size < old_size);
    switch (step) {
    case STEP_CLEANED_PARTIAL:
        SEG(c, crashdir, ".log.cleaned");
        copy_file(n, c, new_size / 2);
        break;
    case STEP_CLEANED:
    case STEP_SWAP:
    case STEP_SWAP_DELETED:
        SEG(c, crashdir, step == STEP_CLEANED ? ".log.cleaned" : ".log.swap");
        copy_file(n, c, -1);
        SEG(n, newdir, ".index");
        SEG(c, crashdir, ".index.cleaned");
        copy_file(n, c, -1);
        SEG(n, newdir, ".timeindex");
        SEG(c, crashdir, ".timeindex.cleaned");
        copy_file(n, c, -1);
        if (step == STEP_SWAP_DELETED) { /* as retention deletes: the data first */
            SEG(c, crashdir, ".log");
            unlink(c);
            SEG(c, crashdir, ".index");
            unlink(c);
            SEG(c, crashdir, ".timeindex");
            unlink(c);
        }
        break;
    case STEP_SWAP_INDEXED:
    case STEP_DONE:
        SEG(c, crashdir, step == STEP_DONE ? ".log" : ".log.swap");
        copy_file(n, c, -1);
        SEG(n, newdir, ".index");
        SEG(c, crashdir, ".index");
        copy_file(n, c, -1);
        SEG(n, newdir, ".timeindex");
        SEG(c, crashdir, ".timeindex");
        copy_file(n, c, -1);
        break;
    }
    struct mq_log_conf conf = rc_conf();
    struct mq_log *log = open_log(crashdir, MQ_LOG_WRITE, &conf);
    struct mq_part *p = get_part(log, "t", 0);
    CU_ASSERT_EQUAL(count_suffix(pdir, ".cleaned"), 0);
    CU_ASSERT_EQUAL(count_suffix(pdir, ".swap"), 0);
    SEG(c, crashdir, ".log");
    off_t want = step <= STEP_CLEANED ? old_size : step == STEP_SWAP_DELETED ? -1 : new_size;
    CU_ASSERT_EQUAL(file_size(c), want);
    if (step != STEP_SWAP_DELETED) {
        struct digest d = digest_of(p);
        same_records(whole, &d);
    } else {
        struct mq_part_stats st;
        CU_ASSERT_FATAL(mq_part_stats(p, &st) == MQ_OK);
        CU_ASSERT(st.start_offset > base);
    }
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    verify_clean(crashdir);
#undef SEG
}

static void test_swap_recovery(void)
{
    char *olddir = mq_test_tmpdir("recompact-old");
    char *newdir = mq_test_tmpdir("recompact-new");
    struct mq_log_conf c = rc_conf();
    struct mq_log *log = open_log(olddir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *p = get_part(log, "t", 0);
    fill(p, 0, NRECORDS);
    struct digest whole = digest_of(p);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);
    rmdir(newdir);
    copy_tree(olddir, newdir);
    log = open_log(newdir, MQ_LOG_WRITE, &c);
    p = get_part(log, "t", 0);
    mq_part_set_compression(p, MQ_CODEC_ZSTD);
    int n = 0;
    CU_ASSERT_EQUAL(mq_part_recompact(p, mq_now_ms(), &n), MQ_OK);
    CU_ASSERT_FATAL(n >= 3);
    CU_ASSERT_EQUAL(mq_log_close(log), MQ_OK);

    for (int step = STEP_CLEANED_PARTIAL; step <= STEP_SWAP_DELETED; step++) {
        char *crashdir = mq_test_tmpdir("recompact-crash");
        rmdir(crashdir);
        /* the second segment, or the first for the case where retention deleted it */
        crash_at(olddir, newdir, crashdir, seg_base(olddir, step == STEP_SWAP_DELETED ? 0 : 1),
                 (enum step)step, &whole);
        mq_test_rmdir(crashdir);
    }
    mq_test_rmdir(olddir);
    mq_test_rmdir(newdir);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_rewrite_zstd),
        MQ_TEST(test_rewrite_lz4),
        MQ_TEST(test_no_codec_no_rewrite),
        MQ_TEST(test_readers_across_swap),
        MQ_TEST(test_cursor_resumes_inside_a_rewritten_batch),
        MQ_TEST(test_thread),
        MQ_TEST(test_swap_recovery),
        MQ_TEST_END,
    };
    return mq_test_run("recompact", tests);
}
