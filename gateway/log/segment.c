/*
 * segment.c - one segment: its files and its sparse indexes.
 *
 * Index entries follow Kafka: an .index entry (offset of the batch's last record relative to the segment's
 * base, batch position) is added once more than index_interval_bytes were appended since the previous one; a
 * .timeindex entry (largest timestamp so far, offset relative to base) is added with it when the largest
 * timestamp grew, and once more when the segment stops being active. Lookups read the files with pread so
 * that readers in any process share one source of truth and the writer keeps no index in memory.
 */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/diag.h"

static char *mq_seg_path(const char *dir, int64_t base, const char *ext)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%020" PRId64 "%s", dir, base, ext) < 0)
        return NULL;
    return p;
}

bool mq_seg_name_parse(const char *name, const char *ext, int64_t *base)
{
    size_t n = strlen(name), e = strlen(ext);
    if (n != 20 + e || strcmp(name + 20, ext) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (INT64_MAX - (name[i] - '0')) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    /* Index entries hold offsets relative to the base as int32: base + any such value (and the offset
     * after it) must fit an int64 before anyone adds them. No segment mqlog writes comes near this. */
    if (v > INT64_MAX - INT32_MAX - 1)
        return false;
    *base = v;
    return true;
}

struct mq_segment *mq_seg_new(const char *dir, int64_t base_offset)
{
    struct mq_segment *seg = calloc(1, sizeof *seg);
    if (!seg)
        return NULL;
    static _Atomic uint64_t uids;
    seg->base_offset = base_offset;
    seg->uid = atomic_fetch_add(&uids, 1) + 1;
    seg->fd = seg->idx_fd = seg->tidx_fd = -1;
    seg->path_log = mq_seg_path(dir, base_offset, ".log");
    seg->path_idx = mq_seg_path(dir, base_offset, ".index");
    seg->path_tidx = mq_seg_path(dir, base_offset, ".timeindex");
    if (!seg->path_log || !seg->path_idx || !seg->path_tidx || pthread_mutex_init(&seg->fd_mu, NULL) != 0 ||
        pthread_mutex_init(&seg->check_mu, NULL) != 0) {
        free(seg->path_log);
        free(seg->path_idx);
        free(seg->path_tidx);
        free(seg);
        return NULL;
    }
    atomic_init(&seg->refs, 1);
    atomic_init(&seg->size, 0);
    atomic_init(&seg->durable_size, 0);
    atomic_init(&seg->next_offset, base_offset);
    atomic_init(&seg->max_ts, -1);
    atomic_init(&seg->gap_reported, false);
    seg->first_ts = -1;
    seg->last_tidx_ts = -1;
    seg->max_ts_offset = -1;
    return seg;
}

void mq_seg_ref(struct mq_segment *seg)
{
    atomic_fetch_add(&seg->refs, 1);
}

void mq_seg_unref(struct mq_segment *seg)
{
    if (!seg || atomic_fetch_sub(&seg->refs, 1) != 1)
        return;
    if (seg->fd >= 0)
        close(seg->fd);
    mq_seg_close_index(seg);
    free(seg->idx_pend.buf);
    free(seg->tidx_pend.buf);
    pthread_mutex_destroy(&seg->fd_mu);
    mq_seg_check_free(seg);
    pthread_mutex_destroy(&seg->check_mu);
    free(seg->path_log);
    free(seg->path_idx);
    free(seg->path_tidx);
    free(seg);
}

int mq_seg_fd(struct mq_segment *seg)
{
    pthread_mutex_lock(&seg->fd_mu);
    bool opened = false;
    if (seg->fd < 0) {
        seg->fd = open(seg->path_log, (atomic_load(&seg->writable) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        opened = seg->fd >= 0;
    }
    int fd = seg->fd;
    int e = errno;
    pthread_mutex_unlock(&seg->fd_mu);
    if (opened && seg->owner)
        mq_fdc_touch(seg->owner); /* with no fd_mu held: it try-locks other segments' */
    errno = e;
    return fd;
}

enum mq_err mq_seg_reopen_index(struct mq_segment *seg)
{
    if (!seg->idx_evicted)
        return MQ_OK;
    seg->idx_fd = open(seg->path_idx, O_RDWR | O_CLOEXEC);
    seg->tidx_fd = seg->idx_fd >= 0 ? open(seg->path_tidx, O_RDWR | O_CLOEXEC) : -1;
    if (seg->idx_fd < 0 || seg->tidx_fd < 0) {
        int e = errno;
        mq_seg_close_index(seg); /* still evicted: tried again by the next write or sync */
        return mq_err_from_errno(e);
    }
    seg->idx_evicted = false;
    if (seg->owner)
        mq_fdc_touch(seg->owner);
    return MQ_OK;
}

enum mq_err mq_idx_pend_add(struct mq_idx_pending *p, const void *entry, size_t len)
{
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        while (cap < p->len + len)
            cap *= 2;
        uint8_t *nb = realloc(p->buf, cap);
        if (!nb)
            return MQ_ERR_NOMEM;
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, entry, len);
    p->len += len;
    return MQ_OK;
}

size_t mq_seg_release_pending(struct mq_segment *seg)
{
    size_t freed = 0;
    struct mq_idx_pending *ps[] = {&seg->idx_pend, &seg->tidx_pend};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        if (ps[i]->len || !ps[i]->buf)
            continue;
        freed += ps[i]->cap;
        free(ps[i]->buf);
        *ps[i] = (struct mq_idx_pending){0};
    }
    return freed;
}

static bool mq_pread_full(int fd, void *buf, size_t len, int64_t pos)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
        pos += n;
    }
    return true;
}

int64_t mq_fd_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
}

int64_t mq_seg_index_lookup(struct mq_segment *seg, int fd_idx, int64_t target, int64_t limit_pos)
{
    bool own = false;
    if (fd_idx < 0) {
        fd_idx = open(seg->path_idx, O_RDONLY | O_CLOEXEC);
        own = true;
    }
    if (fd_idx < 0)
        return 0;
    int64_t n = mq_fd_size(fd_idx) / MQ_IDX_ENTRY;
    int64_t lo = 0, hi = n - 1, best = 0, best_off = -1;
    uint8_t e[MQ_IDX_ENTRY];
    /* Entries are ascending in both fields; an entry past limit_pos (data not visible or truncated) or out
     * of order ends the usable part, which binary search handles by treating it as "too large". */
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (!mq_pread_full(fd_idx, e, sizeof e, mid * MQ_IDX_ENTRY))
            break;
        int64_t off = seg->base_offset + (int32_t)mq_be32_get(e);
        int64_t pos = (int32_t)mq_be32_get(e + 4);
        if (off <= target && pos >= 0 && pos < limit_pos) {
            best = pos;
            best_off = off;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (own)
        close(fd_idx);
    /* The entry must name a batch of this file: the one whose last offset it holds. A reader that holds a
     * segment recompaction replaced pairs the old file with the new index (recompact.c), and a damaged
     * entry points anywhere: both scan from the start rather than from inside a batch. */
    int fd = best > 0 ? mq_seg_fd(seg) : -1;
    uint8_t h[MQ_BATCH_HEADER_SIZE];
    struct mq_batch_info bi;
    if (best > 0 &&
        (fd < 0 || !mq_pread_full(fd, h, sizeof h, best) ||
         mq_batch_parse_header(h, sizeof h, &bi) != MQ_OK || mq_batch_last_offset(&bi) != best_off))
        best = 0;
    return best;
}

int64_t mq_seg_timeindex_lookup(struct mq_segment *seg, int fd_tidx, int64_t ts)
{
    bool own = false;
    if (fd_tidx < 0) {
        fd_tidx = open(seg->path_tidx, O_RDONLY | O_CLOEXEC);
        own = true;
    }
    if (fd_tidx < 0)
        return seg->base_offset;
    int64_t n = mq_fd_size(fd_tidx) / MQ_TIDX_ENTRY;
    int64_t lo = 0, hi = n - 1, best = seg->base_offset;
    uint8_t e[MQ_TIDX_ENTRY];
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (!mq_pread_full(fd_tidx, e, sizeof e, mid * MQ_TIDX_ENTRY))
            break;
        int64_t t = (int64_t)mq_be64_get(e);
        int64_t off = seg->base_offset + (int32_t)mq_be32_get(e + 8);
        if (t < ts) {
            best = off;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (own)
        close(fd_tidx);
    return best;
}

bool mq_seg_read_last_time(const struct mq_segment *seg, int64_t *ts)
{
    int fd = open(seg->path_tidx, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int64_t n = mq_fd_size(fd) / MQ_TIDX_ENTRY;
    uint8_t e[MQ_TIDX_ENTRY];
    bool ok = n > 0 && mq_pread_full(fd, e, sizeof e, (n - 1) * MQ_TIDX_ENTRY);
    close(fd);
    if (ok)
        *ts = (int64_t)mq_be64_get(e);
    return ok;
}

/* ---- writing files ---- */

enum mq_err mq_pwrite_full(int fd, const void *buf, size_t len, int64_t pos)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mq_err_from_errno(errno);
        if (n == 0)
            return MQ_ERR_NOSPC;
        p += n;
        len -= (size_t)n;
        pos += n;
    }
    return MQ_OK;
}

/* ---- index bookkeeping, shared by the writer and the recovery ---- */

/* Accounts one batch written at pos of seg: index entries and timestamps (writer, or recovery). */
enum mq_err mq_seg_account(struct mq_segment *seg, int64_t pos, const struct mq_batch_info *bi,
                           int64_t interval)
{
    int64_t last = mq_batch_last_offset(bi);
    if (bi->max_timestamp > atomic_load(&seg->max_ts)) {
        atomic_store(&seg->max_ts, bi->max_timestamp);
        seg->max_ts_offset = last;
    }
    if (seg->first_ts < 0)
        seg->first_ts = bi->max_timestamp;
    if (seg->bytes_since_index > interval) {
        uint8_t e[MQ_TIDX_ENTRY];
        mq_be32_put(e, (uint32_t)(last - seg->base_offset));
        mq_be32_put(e + 4, (uint32_t)pos);
        enum mq_err err = mq_idx_pend_add(&seg->idx_pend, e, MQ_IDX_ENTRY);
        if (err != MQ_OK)
            return err;
        int64_t mts = atomic_load(&seg->max_ts);
        if (mts > seg->last_tidx_ts) {
            mq_be64_put(e, (uint64_t)mts);
            mq_be32_put(e + 8, (uint32_t)(seg->max_ts_offset - seg->base_offset));
            if ((err = mq_idx_pend_add(&seg->tidx_pend, e, MQ_TIDX_ENTRY)) != MQ_OK)
                return err;
            seg->last_tidx_ts = mts;
        }
        seg->bytes_since_index = 0;
    }
    seg->bytes_since_index += (int64_t)mq_batch_size(bi);
    atomic_store(&seg->next_offset, last + 1);
    return MQ_OK;
}

/* Appends one index file's pending entries; a failed write is cut back so the file keeps whole entries. */
static enum mq_err mq_idx_flush(int fd, struct mq_idx_pending *pend, int64_t *written, const char *path)
{
    if (fd < 0)
        pend->len = 0; /* the file is unusable (recover.c went on without it): readers scan instead */
    if (pend->len == 0)
        return MQ_OK;
    enum mq_err err = mq_pwrite_full(fd, pend->buf, pend->len, *written);
    if (err != MQ_OK) {
        if (ftruncate(fd, *written) != 0)
            MQ_WARN("%s: truncate after failed write: %s", path, MQ_STRERROR(errno));
        return err;
    }
    *written += (int64_t)pend->len;
    pend->len = 0;
    return MQ_OK;
}

/* Writes pending index entries to the index files. */
enum mq_err mq_seg_write_index(struct mq_segment *seg)
{
    if ((seg->idx_pend.len || seg->tidx_pend.len) && mq_seg_reopen_index(seg) != MQ_OK)
        return MQ_ERR_IO; /* the entries wait in memory */
    enum mq_err err = mq_idx_flush(seg->idx_fd, &seg->idx_pend, &seg->idx_written, seg->path_idx);
    if (err == MQ_OK)
        err = mq_idx_flush(seg->tidx_fd, &seg->tidx_pend, &seg->tidx_written, seg->path_tidx);
    return err;
}

/* The last time index entry of a segment that stops being active carries its largest timestamp. */
enum mq_err mq_seg_seal_index(struct mq_segment *seg)
{
    int64_t mts = atomic_load(&seg->max_ts);
    if (mts > seg->last_tidx_ts && seg->max_ts_offset >= 0) {
        uint8_t e[MQ_TIDX_ENTRY];
        mq_be64_put(e, (uint64_t)mts);
        mq_be32_put(e + 8, (uint32_t)(seg->max_ts_offset - seg->base_offset));
        enum mq_err err = mq_idx_pend_add(&seg->tidx_pend, e, MQ_TIDX_ENTRY);
        if (err != MQ_OK)
            return err;
        seg->last_tidx_ts = mts;
    }
    atomic_store(&seg->max_ts_loaded, true);
    return mq_seg_write_index(seg);
}

/* Largest timestamp of a segment: known for the active one, read lazily from the time index otherwise. */
int64_t mq_seg_max_ts(struct mq_segment *seg)
{
    pthread_mutex_lock(&seg->fd_mu);
    if (!atomic_load(&seg->max_ts_loaded)) {
        int64_t ts;
        if (mq_seg_read_last_time(seg, &ts) && ts > atomic_load(&seg->max_ts))
            atomic_store(&seg->max_ts, ts);
        atomic_store(&seg->max_ts_loaded, true);
    }
    pthread_mutex_unlock(&seg->fd_mu);
    return atomic_load(&seg->max_ts);
}

/* Opens the index files of the segment becoming active and truncates them to what is trusted. Both or
 * neither: on failure both are closed (fd -1) and errno says why. */
enum mq_err mq_seg_open_index(struct mq_segment *seg, int64_t idx_keep, int64_t tidx_keep)
{
    seg->idx_fd = open(seg->path_idx, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    seg->tidx_fd = seg->idx_fd >= 0 ? open(seg->path_tidx, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (seg->idx_fd < 0 || seg->tidx_fd < 0 || ftruncate(seg->idx_fd, idx_keep) != 0 ||
        ftruncate(seg->tidx_fd, tidx_keep) != 0) {
        int e = errno;
        mq_seg_close_index(seg);
        errno = e; /* for the caller's message: "Is a directory" says more than MQ_ERR_IO */
        return mq_err_from_errno(e);
    }
    seg->idx_written = idx_keep;
    seg->tidx_written = tidx_keep;
    return MQ_OK;
}

enum mq_err mq_seg_sync_index(struct mq_segment *seg)
{
    /* closed by the fd cache: what was written through them may still be in the page cache */
    enum mq_err err = mq_seg_reopen_index(seg);
    if (err != MQ_OK)
        return err;
    if ((seg->idx_fd >= 0 && fdatasync(seg->idx_fd) != 0) ||
        (seg->tidx_fd >= 0 && fdatasync(seg->tidx_fd) != 0))
        return mq_err_from_errno(errno);
    return MQ_OK;
}

void mq_seg_close_index(struct mq_segment *seg)
{
    if (seg->idx_fd >= 0)
        close(seg->idx_fd);
    if (seg->tidx_fd >= 0)
        close(seg->tidx_fd);
    seg->idx_fd = seg->tidx_fd = -1;
}

void mq_seg_unlink(struct mq_segment *seg)
{
    /* The data first: a crash in between leaves orphan index files, which the next open removes. */
    unlink(seg->path_log);
    unlink(seg->path_idx);
    unlink(seg->path_tidx);
}
