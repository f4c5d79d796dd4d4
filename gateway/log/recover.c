/*
 * recover.c - recovery when the writer opens a partition: its view brought up to date with its files, the
 * tail checked and repaired, damage set aside. (A reader process follows the writer in reader.c.)
 *
 * Recovery point: "recovery-point" records a segment, a byte position in it and the state there. Everything
 * before that position is durable and indexed. It is written after the indexes are synced, every
 * checkpoint_bytes, after a roll, and on a clean close (then at the very end, so reopening scans nothing).
 * Opening for writing scans only from there, so opening time does not grow with the size of the log; the
 * scan truncates at the first partial or invalid batch and rebuilds the tail's index entries.
 */
#include "log/log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/diag.h"
#include "util/parse.h"

#define MQ_RP_MAGIC   0x4d515250u /* "MQRP" */
#define MQ_RP_VERSION 1
#define MQ_RP_SIZE    56

/* Seals a recovered sealed segment's rebuilt indexes, makes them durable and closes them. */
static enum mq_err mq_seg_seal_sync(struct mq_segment *seg)
{
    enum mq_err err = mq_seg_seal_index(seg);
    if (err == MQ_OK)
        err = mq_seg_sync_index(seg);
    if (err != MQ_OK)
        return err;
    mq_seg_close_index(seg);
    return MQ_OK;
}

static char *mq_part_path(const struct mq_part *part, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", part->dir, name) < 0)
        return NULL;
    return p;
}

/* ---- recovery point ---- */

static bool mq_rp_read(struct mq_part *part, struct mq_rp *rp)
{
    char *path = mq_part_path(part, "recovery-point");
    if (!path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return false;
    uint8_t b[MQ_RP_SIZE];
    ssize_t n = pread(fd, b, sizeof b, 0);
    close(fd);
    if (n != MQ_RP_SIZE || mq_be32_get(b) != MQ_RP_MAGIC || mq_be32_get(b + 4) != MQ_RP_VERSION ||
        mq_be32_get(b + 52) != mq_crc32c(0, b, 52))
        return false;
    rp->flags = mq_be32_get(b + 8);
    rp->seg_base = (int64_t)mq_be64_get(b + 12);
    rp->pos = (int64_t)mq_be64_get(b + 20);
    rp->next_offset = (int64_t)mq_be64_get(b + 28);
    rp->max_ts = (int64_t)mq_be64_get(b + 36);
    rp->max_ts_offset = (int64_t)mq_be64_get(b + 44);
    if (rp->seg_base < 0 || rp->pos < 0 || rp->next_offset < rp->seg_base)
        return false;
    atomic_store(&part->rp_seg_base, rp->seg_base); /* segments before it are closed (recompact.c) */
    return true;
}

/* Said once until a write succeeds again: a directory in its place would otherwise fill the log at every
 * checkpoint. The data does not depend on it; the next open only scans further. */
static void mq_rp_report(struct mq_part *part, enum mq_err err)
{
    if (err != MQ_OK && !atomic_exchange(&part->rp_failing, true)) {
        char *dst = mq_part_path(part, "recovery-point");
        struct stat st;
        MQ_WARN("%s: cannot write the recovery point (%s); the partition works on, and its next open "
                "scans it from an older point or the start",
                dst ? dst : part->dir,
                dst && lstat(dst, &st) == 0 && !S_ISREG(st.st_mode) ? "not a regular file"
                                                                    : mq_strerror(err));
        free(dst);
    } else if (err == MQ_OK) {
        atomic_store(&part->rp_failing, false);
    }
}

/* Writes the temporary file; with sync, makes it durable. On failure it is removed. */
static enum mq_err mq_rp_write_tmp(struct mq_part *part, const struct mq_rp *rp, bool sync)
{
    uint8_t b[MQ_RP_SIZE];
    mq_be32_put(b, MQ_RP_MAGIC);
    mq_be32_put(b + 4, MQ_RP_VERSION);
    mq_be32_put(b + 8, rp->flags);
    mq_be64_put(b + 12, (uint64_t)rp->seg_base);
    mq_be64_put(b + 20, (uint64_t)rp->pos);
    mq_be64_put(b + 28, (uint64_t)rp->next_offset);
    mq_be64_put(b + 36, (uint64_t)rp->max_ts);
    mq_be64_put(b + 44, (uint64_t)rp->max_ts_offset);
    mq_be32_put(b + 52, mq_crc32c(0, b, 52));
    char *tmp = mq_part_path(part, "recovery-point.tmp");
    if (!tmp)
        return MQ_ERR_NOMEM;
    enum mq_err err;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = mq_err_from_errno(errno);
    } else {
        err = mq_pwrite_full(fd, b, sizeof b, 0);
        if (err == MQ_OK && sync && fdatasync(fd) != 0)
            err = mq_err_from_errno(errno);
        close(fd);
    }
    if (err != MQ_OK)
        unlink(tmp);
    free(tmp);
    return err;
}

/* Renames the temporary file into place; with sync, fsyncs the directory. */
static enum mq_err mq_rp_rename(struct mq_part *part, bool sync)
{
    char *tmp = mq_part_path(part, "recovery-point.tmp");
    char *dst = mq_part_path(part, "recovery-point");
    enum mq_err err = MQ_ERR_NOMEM;
    if (tmp && dst) {
        err = rename(tmp, dst) == 0 ? MQ_OK : mq_err_from_errno(errno);
        if (err == MQ_OK && sync && fsync(mq_part_dir_fd(part)) != 0)
            err = mq_err_from_errno(errno);
        if (err != MQ_OK)
            unlink(tmp);
    }
    free(tmp);
    free(dst);
    return err;
}

/* Writes the recovery point atomically: temporary file, fdatasync, rename, fsync of the directory. */
enum mq_err mq_rp_write(struct mq_part *part, const struct mq_rp *rp)
{
    enum mq_err err = mq_rp_write_tmp(part, rp, true);
    if (err == MQ_OK)
        err = mq_rp_rename(part, true);
    mq_rp_report(part, err);
    if (err == MQ_OK)
        atomic_store(&part->rp_seg_base, rp->seg_base);
    return err;
}

enum mq_err mq_rp_stage(struct mq_part *part, const struct mq_rp *rp)
{
    enum mq_err err = mq_rp_write_tmp(part, rp, false);
    if (err != MQ_OK)
        mq_rp_report(part, err);
    return err;
}

enum mq_err mq_rp_install(struct mq_part *part)
{
    enum mq_err err = mq_rp_rename(part, false);
    mq_rp_report(part, err);
    return err;
}

/* ---- opening and recovery ---- */

static int mq_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment base offsets; in write mode also removes leftovers (orphan indexes, temporary files). */
enum mq_err mq_part_list(struct mq_part *part, struct mq_bases *bases, bool cleanup)
{
    DIR *d = opendir(part->dir);
    if (!d)
        return mq_err_from_errno(errno);
    struct dirent *de;
    enum mq_err err = MQ_OK;
    while ((de = readdir(d)) != NULL) {
        int64_t base;
        if (mq_seg_name_parse(de->d_name, ".log", &base)) {
            if (bases->n == bases->cap) {
                size_t cap = bases->cap ? bases->cap * 2 : 16;
                int64_t *nv = realloc(bases->v, cap * sizeof *nv);
                if (!nv) {
                    err = MQ_ERR_NOMEM;
                    break;
                }
                bases->v = nv;
                bases->cap = cap;
            }
            bases->v[bases->n++] = base;
        } else if (cleanup && (mq_seg_name_parse(de->d_name, ".index", &base) ||
                               mq_seg_name_parse(de->d_name, ".timeindex", &base))) {
            char name[32];
            snprintf(name, sizeof name, "%020" PRId64 ".log", base);
            if (faccessat(dirfd(d), name, F_OK, 0) != 0 && errno == ENOENT)
                unlinkat(dirfd(d), de->d_name, 0);
        } else if (cleanup && strcmp(de->d_name, "recovery-point.tmp") == 0) {
            unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    closedir(d);
    if (err == MQ_OK && bases->n > 1)
        qsort(bases->v, bases->n, sizeof *bases->v, mq_cmp_i64);
    return err;
}

/* Reads the index files' trusted prefix for a segment recovered from position `from`: entries with a
 * position below `from` (and offsets below next_at_from for the time index). */
static void mq_seg_trusted_index(struct mq_segment *seg, int64_t from, int64_t next_at_from,
                                 int64_t *idx_keep, int64_t *tidx_keep, int64_t *last_idx_pos,
                                 int64_t *last_tidx_ts)
{
    *idx_keep = *tidx_keep = 0;
    *last_idx_pos = -1;
    *last_tidx_ts = -1;
    if (from == 0)
        return;
    int fd = open(seg->path_idx, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        int64_t n = mq_fd_size(fd) / MQ_IDX_ENTRY;
        uint8_t e[MQ_IDX_ENTRY];
        int64_t prev_off = -1, prev_pos = -1;
        for (int64_t i = 0; i < n; i++) {
            if (pread(fd, e, sizeof e, i * MQ_IDX_ENTRY) != MQ_IDX_ENTRY)
                break;
            int64_t off = (int32_t)mq_be32_get(e), pos = (int32_t)mq_be32_get(e + 4);
            if (pos >= from || pos <= prev_pos || off <= prev_off || off < 0)
                break;
            prev_off = off;
            prev_pos = pos;
            *idx_keep = (i + 1) * MQ_IDX_ENTRY;
            *last_idx_pos = pos;
        }
        close(fd);
    }
    fd = open(seg->path_tidx, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        int64_t n = mq_fd_size(fd) / MQ_TIDX_ENTRY;
        uint8_t e[MQ_TIDX_ENTRY];
        int64_t prev_ts = INT64_MIN;
        for (int64_t i = 0; i < n; i++) {
            if (pread(fd, e, sizeof e, i * MQ_TIDX_ENTRY) != MQ_TIDX_ENTRY)
                break;
            int64_t ts = (int64_t)mq_be64_get(e), off = (int32_t)mq_be32_get(e + 8);
            if (seg->base_offset + off >= next_at_from || off < 0 || ts <= prev_ts)
                break;
            prev_ts = ts;
            *tidx_keep = (i + 1) * MQ_TIDX_ENTRY;
            *last_tidx_ts = ts;
        }
        close(fd);
    }
}

/* Quick consistency test of a sealed segment's indexes (O(1)): sizes are whole entries and the last
 * entries point inside the segment. */
static bool mq_seg_index_plausible(const struct mq_segment *seg, int64_t log_size)
{
    struct stat si, st;
    if (stat(seg->path_idx, &si) != 0 || stat(seg->path_tidx, &st) != 0)
        return false;
    if (si.st_size % MQ_IDX_ENTRY || st.st_size % MQ_TIDX_ENTRY)
        return false;
    if (log_size > 0 && st.st_size == 0)
        return false; /* a sealed, non-empty segment always has its final time entry */
    if (si.st_size == 0)
        return true;
    int fd = open(seg->path_idx, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uint8_t e[MQ_IDX_ENTRY];
    bool ok = pread(fd, e, sizeof e, si.st_size - MQ_IDX_ENTRY) == MQ_IDX_ENTRY &&
              (int32_t)mq_be32_get(e + 4) < log_size && (int32_t)mq_be32_get(e + 4) >= 0;
    close(fd);
    return ok;
}

/*
 * Scans seg from `from` (expected next offset `next`) to the end of its file, checking size, CRC and offset
 * continuity of each batch, accounting index entries. Returns the valid end position; *truncated says the
 * file held more (a partial or invalid tail), which it logs unless the end lies below `vouched` (the
 * recovery point's position: the caller reports damage there).
 */
static int64_t mq_seg_recover(struct mq_part *part, struct mq_segment *seg, int64_t from, int64_t next,
                              bool *truncated, int64_t *batches, int64_t vouched)
{
    int64_t file_size = mq_fd_size(seg->fd);
    struct mq_scan sc;
    mq_scan_init(&sc, seg->fd, from, file_size);
    struct mq_batch_info bi;
    const uint8_t *body;
    enum mq_scan_res r;
    int64_t pos = from;
    while ((r = mq_scan_next(&sc, true, &bi, &body)) == MQ_SCAN_BATCH) {
        /* Offsets must continue and mqlog writes leader epoch 0: both fields lie outside the CRC. */
        if (bi.base_offset != next || bi.leader_epoch != 0) {
            r = MQ_SCAN_BAD;
            break;
        }
        if (mq_seg_account(seg, pos, &bi, part->log->conf.index_interval_bytes) != MQ_OK) {
            r = MQ_SCAN_IOERR;
            break;
        }
        next = mq_batch_last_offset(&bi) + 1;
        pos = sc.pos;
        (*batches)++;
    }
    mq_scan_free(&sc);
    *truncated = pos < file_size;
    if (*truncated && pos >= vouched) /* below it the caller reports the damage */
        MQ_WARN("%s: %s at byte %" PRId64 " of %" PRId64 "; truncating the tail after offset %" PRId64,
                seg->path_log,
                r == MQ_SCAN_BAD     ? "invalid batch"
                : r == MQ_SCAN_IOERR ? "read error"
                                     : "partial batch",
                pos, file_size, next - 1);
    atomic_store(&seg->next_offset, next);
    return pos;
}

/*
 * The last entry of seg's offset index that points below byte `limit` at a batch whose last offset is below
 * `below`: returns the batch's position and *last its last offset, or 0 and *last -1 when there is none.
 * Read from the end: entries are few, and a damaged one only makes the caller's check of the batch fail.
 */
int64_t mq_seg_last_entry(const struct mq_segment *seg, int64_t limit, int64_t below, int64_t *last)
{
    *last = -1;
    int fd = open(seg->path_idx, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int64_t pos = 0;
    uint8_t e[MQ_IDX_ENTRY];
    for (int64_t i = mq_fd_size(fd) / MQ_IDX_ENTRY - 1; i >= 0; i--) {
        if (pread(fd, e, sizeof e, i * MQ_IDX_ENTRY) != MQ_IDX_ENTRY)
            break;
        int64_t rel = (int32_t)mq_be32_get(e), epos = (int32_t)mq_be32_get(e + 4);
        if (epos >= 0 && epos < limit && rel >= 0 && rel < below - seg->base_offset) {
            pos = epos;
            *last = seg->base_offset + rel;
            break;
        }
    }
    close(fd);
    return pos;
}

/*
 * The cheap check of the recovery point's segment at open: the batches from the last index entry before the
 * recovery point up to it are whole, pass their CRC, carry leader epoch 0 and continue each other's
 * offsets, and the last one ends exactly at the recovery point's position with its next offset. That is
 * about index_interval_bytes of reading. Scanning only from the recovery point, as a clean stop allows,
 * would miss damage done to the tail while the writer was stopped (a changed Length or base offset, a cut
 * file), and appends would then continue behind data no reader can get past.
 */
static bool mq_seg_tail_matches(struct mq_segment *seg, const struct mq_rp *rp)
{
    if (mq_fd_size(seg->fd) < rp->pos)
        return false;
    int64_t entry_last = -1;
    int64_t pos = mq_seg_last_entry(seg, rp->pos, rp->next_offset, &entry_last);
    struct mq_scan sc;
    mq_scan_init(&sc, seg->fd, pos, rp->pos);
    struct mq_batch_info bi;
    const uint8_t *body;
    enum mq_scan_res r;
    int64_t next = entry_last >= 0 ? -1 : seg->base_offset;
    bool ok = true;
    while (ok && (r = mq_scan_next(&sc, true, &bi, &body)) == MQ_SCAN_BATCH) {
        /* Compare before any arithmetic: the base offset lies outside the CRC. */
        if (next >= 0)
            ok = bi.base_offset == next;
        else
            ok = mq_batch_last_offset(&bi) == entry_last;
        ok = ok && bi.leader_epoch == 0;
        next = mq_batch_last_offset(&bi) + 1; /* cannot overflow: mq_batch_parse_header() bounds it */
    }
    mq_scan_free(&sc);
    return ok && r == MQ_SCAN_END && next == rp->next_offset;
}

/*
 * Rebuilds the indexes of a sealed segment (seg->fd open) from its batch headers, walking it as readers do
 * (read.c): up to the first header that is partial or impossible, or a batch out of offset order. A batch
 * that fails its CRC is indexed like any other: readers skip it on their own. With the index files not open
 * (unusable) the walk only learns the largest timestamp. Says once which segment it rebuilt and why, and
 * when its batches stop short of next_base (the next segment's), which offsets readers cannot get: reads
 * then do not say it again.
 */
static void mq_seg_rebuild(struct mq_part *part, struct mq_segment *seg, int64_t next_base, int64_t *batches,
                           const char *why)
{
    int64_t size = mq_fd_size(seg->fd), at = 0, next = seg->base_offset;
    struct mq_scan sc;
    mq_scan_init(&sc, seg->fd, 0, size);
    struct mq_batch_info bi;
    enum mq_scan_res r;
    while ((r = mq_scan_next(&sc, false, &bi, NULL)) == MQ_SCAN_BATCH) {
        /* Compare before any arithmetic: the base offset lies outside the CRC. The index holds offsets
         * relative to the segment's base as int32. */
        if (bi.base_offset < next || mq_batch_last_offset(&bi) >= next_base ||
            mq_batch_last_offset(&bi) - seg->base_offset > INT32_MAX) {
            r = MQ_SCAN_BAD;
            break;
        }
        if (mq_seg_account(seg, at, &bi, part->log->conf.index_interval_bytes) != MQ_OK) {
            r = MQ_SCAN_IOERR;
            break;
        }
        next = mq_batch_last_offset(&bi) + 1;
        at = sc.pos;
        (*batches)++;
    }
    mq_scan_free(&sc);
    atomic_store(&seg->next_offset, next_base); /* as for every sealed segment */
    bool indexed = seg->idx_fd >= 0;
    if (r == MQ_SCAN_END && next == next_base) {
        MQ_WARN("%s: %s; %s", seg->path_log, why,
                indexed ? "rebuilt it from the batches" : "its batches are whole");
        return;
    }
    atomic_store(&seg->gap_reported, true);
    MQ_WARN("%s: %s; %s up to byte %" PRId64 " of %" PRId64 " (%s): offsets %" PRId64 "..%" PRId64
            " cannot be read, readers skip to offset %" PRId64 " in the next segment",
            seg->path_log, why, indexed ? "rebuilt it" : "batches found", at, size,
            r == MQ_SCAN_END       ? (at == 0 ? "the segment holds no batch" : "its batches stop before them")
            : r == MQ_SCAN_PARTIAL ? "partial batch"
            : r == MQ_SCAN_BAD     ? "invalid batch header"
                                   : "read error",
            next, next_base - 1, next_base);
}

/* Copies bytes [from, to) of file `in` to the start of file `out` and makes them durable. */
static enum mq_err mq_copy_range(int in, int64_t from, int64_t to, int out)
{
    enum mq_err err = MQ_OK;
    uint8_t buf[64 * 1024];
    for (int64_t at = from; err == MQ_OK && at < to;) {
        size_t want = to - at < (int64_t)sizeof buf ? (size_t)(to - at) : sizeof buf;
        ssize_t n = pread(in, buf, want, at);
        if (n <= 0)
            return n < 0 ? mq_err_from_errno(errno) : MQ_ERR_IO;
        err = mq_pwrite_full(out, buf, (size_t)n, at - from);
        at += n;
    }
    if (err == MQ_OK && fdatasync(out) != 0)
        err = mq_err_from_errno(errno);
    return err;
}

/* True when whole batches with their CRC, leader epoch 0 and continuing offsets from `base` fill [pos,
 * rp->pos) of fd exactly and end at rp->next_offset. */
static bool mq_chain_ok(int fd, int64_t pos, int64_t base, const struct mq_rp *rp)
{
    struct mq_scan sc;
    mq_scan_init(&sc, fd, pos, rp->pos);
    struct mq_batch_info bi;
    const uint8_t *body;
    enum mq_scan_res r;
    int64_t next = base;
    bool ok = true;
    while (ok && (r = mq_scan_next(&sc, true, &bi, &body)) == MQ_SCAN_BATCH) {
        ok = bi.base_offset == next && bi.leader_epoch == 0;
        next = mq_batch_last_offset(&bi) + 1;
    }
    mq_scan_free(&sc);
    return ok && r == MQ_SCAN_END && next == rp->next_offset;
}

/*
 * After damage at byte `from` of the recovery point's segment, where offset `lost` was expected: finds the
 * intact batches after the damaged bytes. A candidate position holds a header that parses, with leader
 * epoch 0 and a base offset in (lost, rp->next_offset); from it whole batches with their CRC and continuing
 * offsets must fill the file exactly up to the recovery point and end at its next offset, a chain random
 * bytes do not make. Returns the first such position and *base its base offset, or -1. Reads the rest of
 * the segment once, in chunks, and each plausible candidate's chain.
 */
static int64_t mq_seg_resync(struct mq_segment *seg, int64_t from, int64_t lost, const struct mq_rp *rp,
                             int64_t *base)
{
    enum { CHUNK = 1 << 20 };
    if (mq_fd_size(seg->fd) < rp->pos)
        return -1; /* the end the chain must reach is gone */
    uint8_t *buf = malloc(CHUNK + MQ_BATCH_HEADER_SIZE);
    if (!buf)
        return -1;
    int64_t found = -1;
    for (int64_t at = from + 1; found < 0 && at + MQ_BATCH_HEADER_SIZE <= rp->pos; at += CHUNK) {
        int64_t want =
            rp->pos - at < CHUNK + MQ_BATCH_HEADER_SIZE ? rp->pos - at : CHUNK + MQ_BATCH_HEADER_SIZE;
        ssize_t n = pread(seg->fd, buf, (size_t)want, at);
        if (n < MQ_BATCH_HEADER_SIZE)
            break;
        for (ssize_t i = 0; found < 0 && i < CHUNK && i + MQ_BATCH_HEADER_SIZE <= n; i++) {
            struct mq_batch_info bi;
            if (buf[i + 16] != MQ_BATCH_MAGIC ||
                mq_batch_parse_header(buf + i, (size_t)(n - i), &bi) != MQ_OK || bi.leader_epoch != 0 ||
                bi.base_offset <= lost || bi.base_offset >= rp->next_offset)
                continue;
            if (mq_chain_ok(seg->fd, at + i, bi.base_offset, rp)) {
                found = at + i;
                *base = bi.base_offset;
            }
        }
    }
    free(buf);
    return found;
}

/*
 * Makes bytes [pos, rp->pos) of seg, intact batches from offset `base` on, a segment of their own
 * ("<base>.log", indexes rebuilt) and appends it to the partition's list: the records after a damaged batch
 * stay readable. Returns the new segment or NULL (errno-free: the caller only loses the salvage).
 */
static struct mq_segment *mq_seg_salvage(struct mq_part *part, struct mq_segment *seg, int64_t pos,
                                         int64_t base, const struct mq_rp *rp, int64_t *batches)
{
    struct mq_segment *ns = mq_seg_new(part->dir, base);
    if (!ns)
        return NULL;
    ns->fd = open(ns->path_log, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    bool ok = ns->fd >= 0;
    if (ok && (mq_copy_range(seg->fd, pos, rp->pos, ns->fd) != MQ_OK || mq_seg_open_index(ns, 0, 0) != MQ_OK))
        ok = false;
    bool truncated = false;
    int64_t end = ok ? mq_seg_recover(part, ns, 0, base, &truncated, batches, 0) : 0;
    if (ok && (truncated || end != rp->pos - pos || mq_part_segs_push(part, ns) != MQ_OK))
        ok = false;
    if (!ok) {
        if (ns->fd >= 0)
            mq_seg_unlink(ns);
        mq_seg_unref(ns);
        return NULL;
    }
    atomic_store(&ns->max_ts_loaded, true);
    atomic_store(&ns->size, end);
    atomic_store(&ns->durable_size, end);
    return ns;
}

/*
 * Keeps bytes [from, end of file) of seg in "<segment>.log.damaged-<from>" before recovery cuts them off.
 * Called only when the cut removes data the recovery point vouched for (damage, not a crash's torn tail):
 * the damaged batch and whatever intact batches follow it are then out of the log's reach, but not
 * destroyed. Returns the file's name (the caller frees it), or NULL with *err set; the segment must not be
 * cut then.
 */
static char *mq_seg_set_aside(struct mq_segment *seg, int64_t from, enum mq_err *err)
{
    char *path = NULL;
    int out = -1;
    for (int n = 0; n < 100 && out < 0; n++) {
        free(path);
        path = NULL;
        int rc = n ? asprintf(&path, "%s.damaged-%" PRId64 ".%d", seg->path_log, from, n)
                   : asprintf(&path, "%s.damaged-%" PRId64, seg->path_log, from);
        if (rc < 0) {
            *err = MQ_ERR_NOMEM;
            return NULL;
        }
        out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0 && errno != EEXIST)
            break;
    }
    if (out < 0) {
        *err = mq_err_from_errno(errno);
        free(path);
        return NULL;
    }
    *err = mq_copy_range(seg->fd, from, mq_fd_size(seg->fd), out);
    close(out);
    if (*err != MQ_OK) {
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

/* Write mode: recover from the recovery point and prepare the active segment. */
enum mq_err mq_part_recover(struct mq_part *part, const struct mq_bases *bases)
{
    struct mq_rp rp = {0};
    bool have_rp = mq_rp_read(part, &rp);
    int64_t t0 = mq_mono_us();
    if (bases->n == 0)
        return mq_part_new_segment(part, have_rp ? rp.next_offset : 0);

    /* k: the first segment to scan, from byte `from`. */
    size_t k = 0;
    int64_t from = 0;
    if (have_rp) {
        for (k = 0; k < bases->n && bases->v[k] < rp.seg_base; k++)
            ;
        if (k < bases->n && bases->v[k] == rp.seg_base)
            from = rp.pos;
        if (k == bases->n)
            k = bases->n - 1; /* the recovery point's segment vanished: rescan the last one */
    }
    enum mq_err err = MQ_OK;
    for (size_t i = 0; i < bases->n && err == MQ_OK; i++) {
        struct mq_segment *seg = mq_seg_new(part->dir, bases->v[i]);
        if (!seg)
            return MQ_ERR_NOMEM;
        err = mq_part_segs_push(part, seg);
        if (err != MQ_OK)
            mq_seg_unref(seg);
    }
    if (err != MQ_OK)
        return err;

    int64_t batches = 0;
    /* Sealed segments before k are trusted: size from the file, indexes checked in O(1), rebuilt if bad. */
    for (size_t i = 0; i < k; i++) {
        struct mq_segment *seg = part->segs[i];
        struct stat st;
        if (stat(seg->path_log, &st) != 0)
            return mq_err_from_errno(errno);
        atomic_store(&seg->size, st.st_size);
        atomic_store(&seg->durable_size, st.st_size);
        atomic_store(&seg->next_offset, part->segs[i + 1]->base_offset);
        if (!mq_seg_index_plausible(seg, st.st_size)) {
            seg->fd = open(seg->path_log, O_RDONLY | O_CLOEXEC);
            if (seg->fd < 0)
                return mq_err_from_errno(errno);
            char why[1024];
            if (mq_seg_open_index(seg, 0, 0) != MQ_OK)
                /* e.g. a directory in its place: the segment stays readable by a scan from its start, and
                 * the walk below still learns its largest timestamp, which time retention needs */
                snprintf(why, sizeof why, "its index files %s and %s cannot be opened (%s): reads scan it",
                         seg->path_idx, seg->path_tidx, MQ_STRERROR(errno));
            else
                snprintf(why, sizeof why, "its index %s is missing or inconsistent", seg->path_idx);
            mq_seg_rebuild(part, seg, part->segs[i + 1]->base_offset, &batches, why);
            if ((err = mq_seg_seal_sync(seg)) != MQ_OK)
                return err;
        }
    }
    /* From k on: scan, truncate at the first bad batch, drop whatever follows it. */
    int64_t next = have_rp && from > 0 ? rp.next_offset : part->segs[k]->base_offset;
    size_t keep = part->nsegs;
    for (size_t i = k; i < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        int64_t start = i == k ? from : 0;
        /* A gap inside what the recovery point vouches for is the trace of a salvage (below) that a crash
         * interrupted before the recovery point moved on: the segment after it holds durable records. */
        bool vouched_gap = have_rp && seg->base_offset > next && seg->base_offset < rp.next_offset;
        if (i > k && seg->base_offset != next && !vouched_gap) {
            keep = i; /* a gap or overlap between segments: what follows cannot be trusted */
            break;
        }
        seg->fd = open(seg->path_log, O_RDWR | O_CLOEXEC);
        if (seg->fd < 0)
            return mq_err_from_errno(errno);
        int64_t idx_keep, tidx_keep, last_idx_pos, last_tidx_ts;
        int64_t seg_next = i == k ? next : seg->base_offset;
        /* What the recovery point vouches for in this segment: below it, damage is not a crash's tail. */
        int64_t vouched = i == k && have_rp && rp.seg_base == seg->base_offset ? rp.pos : 0;
        if (start > 0 && !mq_seg_tail_matches(seg, &rp)) {
            MQ_WARN("%s: the batches before the recovery point (byte %" PRId64 ", next offset %" PRId64
                    ") do not match it: checking the whole segment",
                    seg->path_log, rp.pos, rp.next_offset);
            start = 0;
            seg_next = seg->base_offset;
        }
        mq_seg_trusted_index(seg, start, seg_next, &idx_keep, &tidx_keep, &last_idx_pos, &last_tidx_ts);
        if ((err = mq_seg_open_index(seg, idx_keep, tidx_keep)) != MQ_OK) {
            /* e.g. a directory in place of one: the segment is recovered without them (their entries are
             * dropped) and read by scanning it from its start; below, new records go to a new segment. */
            MQ_WARN("%s: index files %s and %s cannot be opened (%s); reads scan the segment from its start",
                    seg->path_log, seg->path_idx, seg->path_tidx, MQ_STRERROR(errno));
            err = MQ_OK;
        }
        seg->bytes_since_index = last_idx_pos >= 0 ? start - last_idx_pos : start;
        seg->last_tidx_ts = last_tidx_ts;
        if (start > 0 && have_rp && i == k) {
            atomic_store(&seg->max_ts, rp.max_ts);
            seg->max_ts_offset = rp.max_ts_offset;
        }
        atomic_store(&seg->max_ts_loaded, true);
        if (start > 0) {
            /* the first batch's timestamp, for age-based rolling */
            struct mq_scan sc;
            struct mq_batch_info bi;
            mq_scan_init(&sc, seg->fd, 0, start);
            if (mq_scan_next(&sc, false, &bi, NULL) == MQ_SCAN_BATCH)
                seg->first_ts = bi.max_timestamp;
            mq_scan_free(&sc);
        }
        bool truncated = false;
        int64_t file_size = mq_fd_size(seg->fd);
        int64_t end = mq_seg_recover(part, seg, start, seg_next, &truncated, &batches, vouched);
        struct mq_segment *salvaged = NULL;
        if (end < vouched) {
            /* Durable data is damaged (or the file was cut): keep every byte from the damage on before
             * cutting, move the intact batches after the damage to a segment of their own, and say which
             * records are gone. */
            int64_t from_off = atomic_load(&seg->next_offset), lost_to = rp.next_offset, base = -1;
            char *kept = NULL;
            if (truncated && !(kept = mq_seg_set_aside(seg, end, &err))) {
                MQ_ERROR("%s: damaged at byte %" PRId64
                         " but cannot keep its bytes aside (%s): not recovering "
                         "this partition",
                         seg->path_log, end, mq_strerror(err));
                return err;
            }
            if (i + 1 < part->nsegs && part->segs[i + 1]->base_offset < lost_to)
                lost_to = part->segs[i + 1]->base_offset; /* an earlier salvage's segment follows */
            int64_t at = i + 1 == part->nsegs ? mq_seg_resync(seg, end, from_off, &rp, &base) : -1;
            if (at >= 0 && (salvaged = mq_seg_salvage(part, seg, at, base, &rp, &batches)) != NULL)
                lost_to = base;
            MQ_ERROR("%s: damaged at byte %" PRId64 " of %" PRId64 ", below the recovery point (byte %" PRId64
                     "): records from offset %" PRId64 " to %" PRId64 " cannot be read%s%s%s%s%s",
                     seg->path_log, end, file_size, rp.pos, from_off, lost_to - 1,
                     kept ? "; the bytes from there on are kept in " : " (the file is shorter than it was)",
                     kept ? kept : "", kept ? " and the segment is cut there" : "",
                     salvaged ? "; the intact batches after the damage now form " : "",
                     salvaged ? salvaged->path_log : "");
            free(kept);
            /* The kept bytes and the salvaged segment must outlast a crash before the cut below. */
            if (fsync(mq_part_dir_fd(part)) != 0)
                return mq_err_from_errno(errno);
        }
        if (truncated && (ftruncate(seg->fd, end) != 0 || fdatasync(seg->fd) != 0))
            return mq_err_from_errno(errno);
        if (salvaged && end == 0) {
            /* Nothing before the damage: the salvaged segment replaces this one. */
            mq_seg_unlink(seg);
            memmove(part->segs + i, part->segs + i + 1, (part->nsegs - i - 1) * sizeof *part->segs);
            part->nsegs--;
            mq_seg_unref(seg);
            keep = part->nsegs;
            break;
        }
        atomic_store(&seg->size, end);
        atomic_store(&seg->durable_size, end);
        next = atomic_load(&seg->next_offset);
        if (truncated) {
            keep = salvaged ? part->nsegs : i + 1; /* the salvaged segment comes last */
            break;
        }
    }
    /* Drop segments after a damaged one, and empty trailing segments (the previous one becomes active). */
    while (part->nsegs > keep || (part->nsegs > 1 && atomic_load(&mq_part_active(part)->size) == 0)) {
        struct mq_segment *seg = part->segs[--part->nsegs];
        MQ_WARN("%s: removing segment after the recovered end", seg->path_log);
        mq_seg_unlink(seg);
        mq_seg_unref(seg);
    }
    /* Segments between k and the active one are sealed now. */
    for (size_t i = k; i + 1 < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        if ((err = mq_seg_seal_sync(seg)) != MQ_OK)
            return err;
    }
    struct mq_segment *act = mq_part_active(part);
    if (act->fd < 0) {
        /* the active segment was before k (cannot normally happen): open it for writing */
        act->fd = open(act->path_log, O_RDWR | O_CLOEXEC);
        if (act->fd < 0)
            return mq_err_from_errno(errno);
        int64_t idx_keep, tidx_keep, lp, lt;
        mq_seg_trusted_index(act, atomic_load(&act->size), atomic_load(&act->next_offset), &idx_keep,
                             &tidx_keep, &lp, &lt);
        if ((err = mq_seg_open_index(act, idx_keep, tidx_keep)) != MQ_OK)
            return err;
        act->last_tidx_ts = lt;
    }
    if ((err = mq_seg_write_index(act)) != MQ_OK)
        return err;
    /* Offsets below the recovery point's were durable, so readers may have had them (and consumers committed
     * past them). When recovery ends below it those records are lost, and handing their offsets out again
     * would make such readers skip new records: new records start at the recovery point's offset, in a new
     * segment, and the offsets between stay a gap. */
    int64_t recovered = atomic_load(&act->next_offset);
    if (have_rp && recovered < rp.next_offset) {
        MQ_ERROR("%s: recovered up to offset %" PRId64 " only, but offsets up to %" PRId64
                 " were durable: offsets %" PRId64 "..%" PRId64
                 " are lost; new records start at offset %" PRId64 " in a new segment",
                 part->dir, recovered, rp.next_offset - 1, recovered, rp.next_offset - 1, rp.next_offset);
        if (atomic_load(&act->size) == 0) {
            part->nsegs--; /* nothing left in it: the new segment replaces it */
            mq_seg_unlink(act);
            mq_seg_unref(act);
        } else if ((err = mq_seg_seal_sync(act)) != MQ_OK) {
            return err;
        }
        if ((err = mq_part_new_segment(part, rp.next_offset)) != MQ_OK)
            return err;
        act = mq_part_active(part);
    }
    if (act->idx_fd < 0 && atomic_load(&act->size) > 0) {
        /* Its index files are unusable (above): it is sealed as it is, and new records go to a new segment
         * with working ones, so that only the damaged segment's reads have to scan. */
        if ((err = mq_seg_seal_sync(act)) != MQ_OK ||
            (err = mq_part_new_segment(part, atomic_load(&act->next_offset))) != MQ_OK)
            return err;
        act = mq_part_active(part);
        MQ_INFO("%s: new records go to a new segment, %s", part->dir, act->path_log);
    }
    part->next_offset = part->written_end = atomic_load(&act->next_offset);
    atomic_store(&part->durable_end, part->next_offset);
    bool scanned =
        batches > 0 || !have_rp || rp.seg_base != act->base_offset || rp.pos != atomic_load(&act->size);
    if (scanned) {
        /* Make what the scan found durable and record it, so that the next open starts from here. */
        if (fdatasync(act->fd) != 0 || mq_seg_sync_index(act) != MQ_OK || fsync(mq_part_dir_fd(part)) != 0)
            return mq_err_from_errno(errno);
        struct mq_rp nrp = {0,
                            act->base_offset,
                            atomic_load(&act->size),
                            part->next_offset,
                            atomic_load(&act->max_ts),
                            act->max_ts_offset};
        mq_rp_write(part, &nrp); /* a failure is logged there and only makes the next open scan more */
        MQ_INFO("%s: recovered %" PRId64 " batches after the recovery point in %.1f ms, next offset %" PRId64,
                part->dir, batches, (double)(mq_mono_us() - t0) / 1000.0, part->next_offset);
    }
    return MQ_OK;
}
