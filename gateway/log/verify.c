/*
 * verify.c - the offline check behind `mqlog verify`: every batch's size, CRC and offset continuity, and
 * every index entry, in every partition of a data directory. It only reads.
 */
#include "log/log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mq_verify {
    void (*fn)(void *opaque, const struct mq_verify_issue *issue);
    void *opaque;
    int64_t problems, batches;
    const char *dir;
    struct mq_codec_buf inflated; /* compressed records, decompressed to be checked */
};

static void mq_verify_report(struct mq_verify *v, const char *path, int64_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void mq_verify_report(struct mq_verify *v, const char *path, int64_t pos, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    v->problems++;
    struct mq_verify_issue issue = {path, pos, what};
    if (v->fn)
        v->fn(v->opaque, &issue);
}

/* Batch positions of a segment, to check index entries against. */
struct mq_posmap {
    int64_t *pos, *last;
    size_t n, cap;
};

static bool mq_posmap_add(struct mq_posmap *m, int64_t pos, int64_t last)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        int64_t *np = realloc(m->pos, cap * sizeof *np);
        if (!np)
            return false;
        m->pos = np;
        int64_t *nl = realloc(m->last, cap * sizeof *nl);
        if (!nl)
            return false;
        m->last = nl;
        m->cap = cap;
    }
    m->pos[m->n] = pos;
    m->last[m->n++] = last;
    return true;
}

static ssize_t mq_posmap_find(const struct mq_posmap *m, int64_t pos)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->pos[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->pos[lo] == pos ? (ssize_t)lo : -1;
}

/* Checks one segment. *expect_next: where the previous one ended (-1 for the first segment), updated;
 * next_seg: the segment after it, NULL for the last. */
static void mq_verify_segment(struct mq_verify *v, struct mq_segment *seg, int64_t *expect_next,
                              const struct mq_segment *next_seg)
{
    bool last = next_seg == NULL;
    int fd = open(seg->path_log, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mq_verify_report(v, seg->path_log, -1, "cannot open: %s", MQ_STRERROR(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mq_verify_report(v, seg->path_log, -1, "not a regular file");
        close(fd);
        return;
    }
    struct mq_scan sc;
    mq_scan_init(&sc, fd, 0, st.st_size);
    struct mq_posmap map = {0};
    struct mq_batch_info bi;
    const uint8_t *body;
    enum mq_scan_res r;
    int64_t next = seg->base_offset, max_ts = -1;
    /* A gap before this segment was reported with the previous one, which names both files. */
    if (*expect_next > seg->base_offset)
        mq_verify_report(v, seg->path_log, 0,
                         "segment starts at offset %" PRId64 ", previous one ends at %" PRId64,
                         seg->base_offset, *expect_next);
    for (;;) {
        int64_t pos = sc.pos;
        r = mq_scan_next(&sc, true, &bi, &body);
        if (r != MQ_SCAN_BATCH) {
            if (r == MQ_SCAN_PARTIAL)
                mq_verify_report(v, seg->path_log, pos,
                                 "partial batch at the end of the file (%" PRId64 " bytes)",
                                 (int64_t)st.st_size - pos);
            else if (r == MQ_SCAN_BAD && sc.bad_crc) {
                /* Readers skip such a batch and read on: so does the check, to find all of them. */
                mq_verify_report(v, seg->path_log, pos,
                                 "CRC mismatch in batch at offset %" PRId64 " (readers skip it)",
                                 bi.base_offset);
                sc.pos += (int64_t)mq_batch_size(&bi);
                next = mq_batch_last_offset(&bi) + 1; /* below INT64_MAX: the header parsed */
                continue;
            } else if (r == MQ_SCAN_BAD)
                mq_verify_report(v, seg->path_log, pos, "invalid batch header");
            else if (r == MQ_SCAN_IOERR)
                mq_verify_report(v, seg->path_log, pos, "read error: %s", MQ_STRERROR(errno));
            break;
        }
        v->batches++;
        if (bi.base_offset != next)
            mq_verify_report(v, seg->path_log, pos, "batch offset %" PRId64 ", expected %" PRId64,
                             bi.base_offset, next);
        if (bi.leader_epoch != 0)
            mq_verify_report(v, seg->path_log, pos,
                             "batch at offset %" PRId64 " has leader epoch %d, mqlog writes 0",
                             bi.base_offset, (int)bi.leader_epoch);
        struct mq_record_iter it;
        struct mq_record_view rv;
        int codec = bi.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK;
        enum mq_err ierr = mq_record_iter_open(&it, body, &bi, &v->inflated);
        if (ierr == MQ_OK) {
            int rr;
            int64_t count = 0;
            while ((rr = mq_record_next(&it, &rv)) == 1)
                count++;
            if (rr < 0 || count != bi.count)
                mq_verify_report(v, seg->path_log, pos, "malformed records in batch at offset %" PRId64,
                                 bi.base_offset);
        } else if (ierr == MQ_ERR_INVAL) {
            mq_verify_report(v, seg->path_log, pos,
                             "batch at offset %" PRId64
                             " is compressed with codec %d, which mqlog cannot decode",
                             bi.base_offset, codec);
        } else if (ierr == MQ_ERR_CORRUPT) {
            mq_verify_report(v, seg->path_log, pos,
                             "%s records of batch at offset %" PRId64
                             " do not decompress (corrupt, truncated or over %zu bytes)",
                             mq_codec_name(codec), bi.base_offset, MQ_BATCH_MAX_RECORDS_SIZE);
        } else {
            mq_verify_report(v, seg->path_log, pos, "batch at offset %" PRId64 ": %s", bi.base_offset,
                             mq_strerror(ierr));
        }
        if (bi.max_timestamp > max_ts)
            max_ts = bi.max_timestamp;
        next = mq_batch_last_offset(&bi) + 1; /* below INT64_MAX: mq_batch_parse_header() refuses more */
        if (!mq_posmap_add(&map, pos, mq_batch_last_offset(&bi)))
            break;
    }
    mq_scan_free(&sc);
    close(fd);
    *expect_next = next;
    if (next_seg && next < next_seg->base_offset)
        mq_verify_report(v, seg->path_log, -1,
                         "offsets %" PRId64 "..%" PRId64
                         " are missing: %s, and the next segment, %s, starts at %" PRId64
                         " (readers skip them)",
                         next, next_seg->base_offset - 1,
                         map.n == 0 ? "the segment holds no batch" : "its batches stop before them",
                         next_seg->path_log, next_seg->base_offset);

    /* .index: ascending entries, each at a batch boundary and naming that batch's last offset. */
    fd = open(seg->path_idx, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mq_verify_report(v, seg->path_idx, -1, "missing offset index");
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mq_verify_report(v, seg->path_idx, -1,
                         "not a regular file (readers scan the segment without its index)");
        close(fd);
    } else {
        if (st.st_size % MQ_IDX_ENTRY)
            mq_verify_report(v, seg->path_idx, -1, "size %" PRId64 " is not a multiple of 8",
                             (int64_t)st.st_size);
        uint8_t e[MQ_IDX_ENTRY];
        int64_t prev = -1;
        for (int64_t i = 0; i < st.st_size / MQ_IDX_ENTRY; i++) {
            if (pread(fd, e, sizeof e, i * MQ_IDX_ENTRY) != MQ_IDX_ENTRY)
                break;
            int64_t off = seg->base_offset + (int32_t)mq_be32_get(e), pos = (int32_t)mq_be32_get(e + 4);
            ssize_t k = mq_posmap_find(&map, pos);
            if (k < 0 || map.last[k] != off || pos <= prev) {
                mq_verify_report(v, seg->path_idx, i * MQ_IDX_ENTRY,
                                 "entry (offset %" PRId64 ", position %" PRId64 ") does not match a batch",
                                 off, pos);
                break;
            }
            prev = pos;
        }
        close(fd);
    }
    /* .timeindex: ascending timestamps, offsets inside the segment, never above the batches' timestamps. */
    fd = open(seg->path_tidx, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mq_verify_report(v, seg->path_tidx, -1, "missing time index");
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mq_verify_report(v, seg->path_tidx, -1, "not a regular file (lookups by time scan the segment)");
        close(fd);
    } else {
        if (st.st_size % MQ_TIDX_ENTRY)
            mq_verify_report(v, seg->path_tidx, -1, "size %" PRId64 " is not a multiple of 12",
                             (int64_t)st.st_size);
        uint8_t e[MQ_TIDX_ENTRY];
        int64_t prev = INT64_MIN, n = st.st_size / MQ_TIDX_ENTRY;
        for (int64_t i = 0; i < n; i++) {
            if (pread(fd, e, sizeof e, i * MQ_TIDX_ENTRY) != MQ_TIDX_ENTRY)
                break;
            int64_t ts = (int64_t)mq_be64_get(e), off = seg->base_offset + (int32_t)mq_be32_get(e + 8);
            if (ts <= prev || off < seg->base_offset || off >= next || ts > max_ts) {
                mq_verify_report(v, seg->path_tidx, i * MQ_TIDX_ENTRY,
                                 "entry (timestamp %" PRId64 ", offset %" PRId64 ") is inconsistent", ts,
                                 off);
                break;
            }
            prev = ts;
        }
        if (!last && map.n > 0 && prev != max_ts)
            mq_verify_report(v, seg->path_tidx, -1,
                             "last entry %" PRId64 " is not the segment's largest timestamp %" PRId64, prev,
                             max_ts);
        close(fd);
    }
    free(map.pos);
    free(map.last);
}

static void mq_verify_part(void *opaque, const char *topic, int32_t partition)
{
    struct mq_verify *v = opaque;
    char *pdir = NULL;
    if (asprintf(&pdir, "%s/%s-%d", v->dir, topic, (int)partition) < 0)
        return;
    DIR *d = opendir(pdir);
    if (!d) {
        mq_verify_report(v, pdir, -1, "cannot open: %s", MQ_STRERROR(errno));
        free(pdir);
        return;
    }
    /* The recovery point is optional (a missing one only makes the next open scan more), but a directory or
     * other non-file in its place keeps the writer from ever recording one. */
    char *rp = NULL;
    struct stat st;
    if (asprintf(&rp, "%s/recovery-point", pdir) >= 0 && lstat(rp, &st) == 0 && !S_ISREG(st.st_mode))
        mq_verify_report(v, rp, -1, "not a regular file (the writer cannot record its recovery point)");
    free(rp);
    int64_t *bases = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t b;
        if (strstr(de->d_name, ".log.damaged-")) {
            /* Recovery cut a damaged segment here and kept the bytes it cut (recover.c). */
            char *path = NULL;
            if (asprintf(&path, "%s/%s", pdir, de->d_name) >= 0)
                mq_verify_report(v, path, -1,
                                 "bytes cut from a damaged segment at open: their records are not in the log "
                                 "(see the writer's log); remove the file once dealt with");
            free(path);
            continue;
        }
        if (!mq_seg_name_parse(de->d_name, ".log", &b)) {
            size_t len = strlen(de->d_name);
            char *path = NULL;
            if (len > 4 && strcmp(de->d_name + len - 4, ".log") == 0 &&
                asprintf(&path, "%s/%s", pdir, de->d_name) >= 0)
                mq_verify_report(v, path, -1,
                                 "not a segment name (20 digits of a base offset below 2^63 - 2^31): "
                                 "no reader looks at this file");
            free(path);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nb = realloc(bases, cap * sizeof *nb);
            if (!nb)
                break;
            bases = nb;
        }
        bases[n++] = b;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && bases[j - 1] > bases[j]; j--) {
            int64_t t = bases[j];
            bases[j] = bases[j - 1];
            bases[j - 1] = t;
        }
    int64_t next = -1;
    for (size_t i = 0; i < n; i++) {
        struct mq_segment *seg = mq_seg_new(pdir, bases[i]);
        struct mq_segment *after = i + 1 < n ? mq_seg_new(pdir, bases[i + 1]) : NULL;
        if (!seg || (i + 1 < n && !after)) {
            mq_seg_unref(seg);
            break;
        }
        mq_verify_segment(v, seg, &next, after);
        mq_seg_unref(seg);
        mq_seg_unref(after);
    }
    free(bases);
    free(pdir);
}

enum mq_err mq_log_verify(const char *dir, void (*fn)(void *opaque, const struct mq_verify_issue *issue),
                          void *opaque, int64_t *problems, int64_t *batches)
{
    struct mq_verify v = {fn, opaque, 0, 0, dir, {0}};
    enum mq_err err = mq_log_scan_dirs(dir, mq_verify_part, &v);
    mq_codec_buf_free(&v.inflated);
    if (problems)
        *problems = v.problems;
    if (batches)
        *batches = v.batches;
    return err;
}
