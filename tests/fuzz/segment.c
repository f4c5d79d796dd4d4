/*
 * segment.c - fuzz target: the log's reading of damaged data (gateway/log/): the input is written as the
 * only segment file of partition t-0 in a private directory, then
 *  - a reader (MQ_LOG_READ, as `mqlog consume` beside a live mqlogd) opens the partition and reads every
 *    record and header through a cursor, from the start offset and again from offsets that stop inside
 *    batches, as far as the cursor goes;
 *  - `mqlog verify` checks the directory;
 *  - the writer (MQ_LOG_WRITE) opens it, which runs recovery, appends one record behind whatever recovery
 *    kept, makes it durable and reads the partition again: an append after damage must stay readable.
 * The seed corpus holds small valid segments written by `mqlog produce` (tests/fuzz/corpus/segment/).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "log/batch.h"
#include "log/log.h"
#include "util/diag.h"

static char mq_fuzz_dir[64];

/* Removes every file of dir/t-0 (the directory stays). */
static void mq_fuzz_clean(const char *part_dir)
{
    DIR *d = opendir(part_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", part_dir, de->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
}

/* Reads everything from offset through a cursor, every header walked; returns a checksum of what came out. */
static uint64_t mq_fuzz_read(struct mq_part *part, int64_t offset)
{
    struct mq_cursor *cur = NULL;
    if (mq_cursor_open(part, offset, &cur) != MQ_OK)
        return 0;
    uint64_t sum = 0;
    struct mq_record_view rv;
    int rc;
    for (int n = 0; n < 100000 && (rc = mq_cursor_next(cur, &rv)) != 0; n++) {
        if (rc < 0) {
            const struct mq_cursor_fault *f = mq_cursor_fault(cur);
            sum += f && f->what ? strlen(f->what) : 0;
            break;
        }
        sum += (uint64_t)rv.offset + (uint64_t)rv.key_len + (uint64_t)rv.value_len;
        if (rv.value_len > 0)
            sum += rv.value[rv.value_len - 1];
        struct mq_header h;
        const uint8_t *hp = rv.headers;
        for (int32_t i = 0; i < rv.header_count && mq_header_next(&hp, rv.headers_end, &h) > 0; i++)
            sum += (uint64_t)h.key_len + (uint64_t)h.value_len;
    }
    mq_cursor_close(cur);
    return sum;
}

static uint64_t mq_fuzz_read_part(struct mq_log *log)
{
    struct mq_part *part = NULL;
    if (mq_log_part(log, "t", 0, &part) != MQ_OK)
        return 0;
    int64_t start = 0, end = 0;
    if (mq_part_offsets(part, &start, &end) != MQ_OK)
        return 0;
    uint64_t sum = mq_fuzz_read(part, start);
    if (end > start + 1)
        sum += mq_fuzz_read(part, start + (end - start) / 2);
    return sum;
}

static void mq_fuzz_issue(void *opaque, const struct mq_verify_issue *issue)
{
    *(uint64_t *)opaque += strlen(issue->what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char part_dir[128], path[192], why[256];
    if (!mq_fuzz_dir[0]) {
        mq_diag_level = -1; /* recovery's warnings would drown the fuzzer's output */
        const char *tmp = getenv("TMPDIR");
        snprintf(mq_fuzz_dir, sizeof(mq_fuzz_dir), "%s/mqlog-fuzz-XXXXXX",
                 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
        if (!mkdtemp(mq_fuzz_dir))
            abort();
    }
    snprintf(part_dir, sizeof(part_dir), "%s/t-0", mq_fuzz_dir);
    mkdir(part_dir, 0700);
    mq_fuzz_clean(part_dir);
    snprintf(path, sizeof(path), "%s/00000000000000000000.log", part_dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();

    uint64_t sum = 0;
    struct mq_log *log = NULL;
    if (mq_log_open(mq_fuzz_dir, MQ_LOG_READ, NULL, &log, why, sizeof(why)) == MQ_OK) {
        sum += mq_fuzz_read_part(log);
        mq_log_close(log);
    }
    int64_t problems = 0, batches = 0;
    mq_log_verify(mq_fuzz_dir, mq_fuzz_issue, &sum, &problems, &batches);

    struct mq_log_conf conf;
    mq_log_conf_defaults(&conf);
    conf.flush_interval_ms = 0;
    if (mq_log_open(mq_fuzz_dir, MQ_LOG_WRITE, &conf, &log, why, sizeof(why)) == MQ_OK) {
        struct mq_part *part = NULL;
        if (mq_log_part(log, "t", 0, &part) == MQ_OK) {
            struct mq_record rec = {
                .timestamp = 1700000000000, .key = "k", .key_len = 1, .value = "after", .value_len = 5};
            int64_t offset;
            if (mq_part_produce(part, &rec, &offset) == MQ_OK && mq_part_flush(part) == MQ_OK)
                sum += mq_fuzz_read(part, offset);
            sum += mq_fuzz_read_part(log);
        }
        mq_log_close(log);
    }
    return sum == UINT64_MAX; /* keeps sum alive; never true */
}
