/*
 * partition.c - one partition: recovery on open, appends and group commit, reads, time lookups, retention.
 *
 * Write path: records gather in the open batch (produce) or arrive as a batch (append); a batch is written
 * with one pwrite at the end of the active segment while part->mu is held; the flusher thread (log.c) calls
 * mq_part_flush_tick() which writes what is open, fdatasyncs outside the lock and then publishes the new
 * durable end. A write that fails (disk full) is undone with ftruncate and its batch kept in a backlog that
 * is retried on every tick, so a full disk never leaves a damaged segment and nothing accepted is dropped.
 *
 * Recovery point: "recovery-point" records a segment, a byte position in it and the state there. Everything
 * before that position is durable and indexed. It is written after the indexes are synced, every
 * checkpoint_bytes, after a roll, and on a clean close (then at the very end, so reopening scans nothing).
 * Opening for writing scans only from there, so opening time does not grow with the size of the log.
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
#include <time.h>
#include <unistd.h>

#include "util/diag.h"
#include "util/parse.h"

#define MQ_RP_MAGIC   0x4d515250u /* "MQRP" */
#define MQ_RP_VERSION 1
#define MQ_RP_SIZE    56
#define MQ_RP_CLEAN   1u

struct mq_rp {
    uint32_t flags;
    int64_t seg_base, pos, next_offset, max_ts, max_ts_offset;
};

static enum mq_err mq_part_reader_refresh(struct mq_part *part, bool list);
static int64_t mq_part_visible_end(struct mq_part *part);

static bool mq_part_writer(const struct mq_part *part)
{
    return mq_log_mode(part->log) == MQ_LOG_WRITE;
}

static struct mq_segment *mq_part_active(struct mq_part *part)
{
    return part->segs[part->nsegs - 1];
}

/* ---- small file helpers ---- */

static enum mq_err mq_pwrite_full(int fd, const void *buf, size_t len, int64_t pos)
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

static int64_t mq_fd_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
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
    return rp->seg_base >= 0 && rp->pos >= 0 && rp->next_offset >= rp->seg_base;
}

/* Writes the recovery point atomically: temporary file, fdatasync, rename, fsync of the directory. */
static enum mq_err mq_rp_write(struct mq_part *part, const struct mq_rp *rp)
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
    char *dst = mq_part_path(part, "recovery-point");
    enum mq_err err = MQ_ERR_NOMEM;
    if (!tmp || !dst)
        goto out;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = mq_err_from_errno(errno);
        goto out;
    }
    err = mq_pwrite_full(fd, b, sizeof b, 0);
    if (err == MQ_OK && fdatasync(fd) != 0)
        err = mq_err_from_errno(errno);
    close(fd);
    if (err == MQ_OK && rename(tmp, dst) != 0)
        err = mq_err_from_errno(errno);
    if (err == MQ_OK && fsync(part->dir_fd) != 0)
        err = mq_err_from_errno(errno);
    if (err != MQ_OK)
        unlink(tmp);
out:
    free(tmp);
    free(dst);
    return err;
}

/* ---- index bookkeeping, shared by the writer and the recovery ---- */

/* Accounts one batch written at pos of seg: index entries and timestamps (writer, or recovery). */
static enum mq_err mq_seg_account(struct mq_segment *seg, int64_t pos, const struct mq_batch_info *bi,
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
    if (pend->len == 0 || fd < 0)
        return MQ_OK;
    enum mq_err err = mq_pwrite_full(fd, pend->buf, pend->len, *written);
    if (err != MQ_OK) {
        if (ftruncate(fd, *written) != 0)
            MQ_WARN("%s: truncate after failed write: %s", path, strerror(errno));
        return err;
    }
    *written += (int64_t)pend->len;
    pend->len = 0;
    return MQ_OK;
}

/* Writes pending index entries to the index files. */
static enum mq_err mq_seg_write_index(struct mq_segment *seg)
{
    enum mq_err err = mq_idx_flush(seg->idx_fd, &seg->idx_pend, &seg->idx_written, seg->path_idx);
    if (err == MQ_OK)
        err = mq_idx_flush(seg->tidx_fd, &seg->tidx_pend, &seg->tidx_written, seg->path_tidx);
    return err;
}

/* The last time index entry of a segment that stops being active carries its largest timestamp. */
static enum mq_err mq_seg_seal_index(struct mq_segment *seg)
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
    seg->max_ts_loaded = true;
    return mq_seg_write_index(seg);
}

/* Largest timestamp of a segment: known for the active one, read lazily from the time index otherwise. */
static int64_t mq_seg_max_ts(struct mq_segment *seg)
{
    pthread_mutex_lock(&seg->fd_mu);
    if (!seg->max_ts_loaded) {
        int64_t ts;
        if (mq_seg_read_last_time(seg, &ts) && ts > atomic_load(&seg->max_ts))
            atomic_store(&seg->max_ts, ts);
        seg->max_ts_loaded = true;
    }
    pthread_mutex_unlock(&seg->fd_mu);
    return atomic_load(&seg->max_ts);
}

/* Opens the index files of the segment becoming active and truncates them to what is trusted. */
static enum mq_err mq_seg_open_index(struct mq_segment *seg, int64_t idx_keep, int64_t tidx_keep)
{
    seg->idx_fd = open(seg->path_idx, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    seg->tidx_fd = open(seg->path_tidx, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (seg->idx_fd < 0 || seg->tidx_fd < 0)
        return mq_err_from_errno(errno);
    if (ftruncate(seg->idx_fd, idx_keep) != 0 || ftruncate(seg->tidx_fd, tidx_keep) != 0)
        return mq_err_from_errno(errno);
    seg->idx_written = idx_keep;
    seg->tidx_written = tidx_keep;
    return MQ_OK;
}

/* ---- segment list ---- */

static enum mq_err mq_part_segs_push(struct mq_part *part, struct mq_segment *seg)
{
    if (part->nsegs == part->segs_cap) {
        size_t cap = part->segs_cap ? part->segs_cap * 2 : 8;
        struct mq_segment **ns = realloc(part->segs, cap * sizeof *ns);
        if (!ns)
            return MQ_ERR_NOMEM;
        part->segs = ns;
        part->segs_cap = cap;
    }
    part->segs[part->nsegs++] = seg;
    return MQ_OK;
}

static void mq_seg_unlink(struct mq_segment *seg)
{
    /* The data first: a crash in between leaves orphan index files, which the next open removes. */
    unlink(seg->path_log);
    unlink(seg->path_idx);
    unlink(seg->path_tidx);
}

/* Creates the files of a new active segment at the partition's next offset (writer, under mu). */
static enum mq_err mq_part_new_segment(struct mq_part *part, int64_t base)
{
    struct mq_segment *seg = mq_seg_new(part->dir, base);
    if (!seg)
        return MQ_ERR_NOMEM;
    seg->fd = open(seg->path_log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    enum mq_err err = seg->fd < 0 ? mq_err_from_errno(errno) : mq_seg_open_index(seg, 0, 0);
    if (err == MQ_OK) {
        seg->max_ts_loaded = true;
        pthread_rwlock_wrlock(&part->segs_lock);
        err = mq_part_segs_push(part, seg);
        pthread_rwlock_unlock(&part->segs_lock);
    }
    if (err != MQ_OK) {
        mq_seg_unlink(seg);
        mq_seg_unref(seg);
        return err;
    }
    part->dir_dirty = true;
    part->checkpoint_due = true;
    return MQ_OK;
}

/* Rolls: the active segment is sealed (its data and index files are synced by the next flush) and a new
 * one starts at the next offset. Under mu. */
static enum mq_err mq_part_roll(struct mq_part *part)
{
    struct mq_segment *old = mq_part_active(part);
    enum mq_err err = mq_seg_seal_index(old);
    if (err != MQ_OK)
        return err;
    return mq_part_new_segment(part, part->written_end);
}

/* ---- writing ---- */

/* Writes one complete batch at the end of the active segment (under mu). On failure the file is cut back,
 * nothing is accounted, and the error returned. */
static enum mq_err mq_part_write_batch(struct mq_part *part, const uint8_t *buf,
                                       const struct mq_batch_info *bi)
{
    const struct mq_log_conf *conf = &part->log->conf;
    struct mq_segment *seg = mq_part_active(part);
    size_t size = mq_batch_size(bi);
    int64_t cur = atomic_load(&seg->size);
    bool roll = cur > 0 && (cur + (int64_t)size > conf->segment_bytes ||
                            (conf->segment_ms > 0 && seg->first_ts >= 0 &&
                             bi->max_timestamp - seg->first_ts > conf->segment_ms) ||
                            (int64_t)(mq_batch_last_offset(bi) - seg->base_offset) > INT32_MAX);
    if (roll) {
        enum mq_err err = mq_part_roll(part);
        if (err != MQ_OK)
            return err;
        seg = mq_part_active(part);
        cur = 0;
    }
    enum mq_err err = mq_pwrite_full(seg->fd, buf, size, cur);
    if (err != MQ_OK) {
        if (ftruncate(seg->fd, cur) != 0)
            MQ_ERROR("%s: cannot cut back a failed write: %s", seg->path_log, strerror(errno));
        part->write_err = err;
        return err;
    }
    err = mq_seg_account(seg, cur, bi, conf->index_interval_bytes);
    atomic_store(&seg->size, cur + (int64_t)size);
    part->written_end = mq_batch_last_offset(bi) + 1;
    part->unflushed_bytes += (int64_t)size;
    part->bytes_since_checkpoint += (int64_t)size;
    part->write_err = MQ_OK;
    return err;
}

static enum mq_err mq_part_backlog_add(struct mq_part *part, const uint8_t *buf, size_t len)
{
    if (part->backlog_len + len > part->backlog_cap) {
        size_t cap = part->backlog_cap ? part->backlog_cap * 2 : 1 << 20;
        while (cap < part->backlog_len + len)
            cap *= 2;
        uint8_t *nb = realloc(part->backlog, cap);
        if (!nb)
            return MQ_ERR_NOMEM;
        part->backlog = nb;
        part->backlog_cap = cap;
    }
    memcpy(part->backlog + part->backlog_len, buf, len);
    part->backlog_len += len;
    return MQ_OK;
}

/* Writes the backlog batch by batch; what fails stays at the front of the backlog. */
static enum mq_err mq_part_write_backlog(struct mq_part *part)
{
    size_t done = 0;
    enum mq_err err = MQ_OK;
    while (done < part->backlog_len) {
        struct mq_batch_info bi;
        err = mq_batch_parse_header(part->backlog + done, part->backlog_len - done, &bi);
        if (err != MQ_OK)
            break; /* cannot happen: the backlog holds batches we built */
        err = mq_part_write_batch(part, part->backlog + done, &bi);
        if (err != MQ_OK)
            break;
        done += mq_batch_size(&bi);
    }
    memmove(part->backlog, part->backlog + done, part->backlog_len - done);
    part->backlog_len -= done;
    return err;
}

/* Completes the open batch and writes it, or parks it in the backlog if the write fails (under mu). */
static enum mq_err mq_part_seal_open(struct mq_part *part)
{
    if (part->open.count == 0)
        return MQ_OK;
    mq_batch_finish(&part->open);
    struct mq_batch_info bi;
    enum mq_err err = mq_batch_parse_header(part->open.buf, part->open.len, &bi);
    if (err == MQ_OK && part->backlog_len == 0)
        err = mq_part_write_batch(part, part->open.buf, &bi);
    else
        err = MQ_ERR_FULL;
    if (err != MQ_OK) {
        enum mq_err e2 = mq_part_backlog_add(part, part->open.buf, part->open.len);
        if (e2 != MQ_OK)
            return e2; /* the open batch is kept as it is: the next seal retries */
        err = part->backlog_len == part->open.len ? err : mq_part_write_backlog(part);
    }
    part->open.count = 0;
    return err == MQ_ERR_FULL ? MQ_OK : err;
}

static int64_t mq_part_pending_bytes(const struct mq_part *part)
{
    return (int64_t)part->backlog_len + (part->open.count ? (int64_t)part->open.len : 0);
}

static void mq_part_kick(struct mq_part *part)
{
    struct mq_log *log = part->log;
    pthread_mutex_lock(&log->mu);
    log->kick = true;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

void mq_part_request_flush(struct mq_part *part)
{
    mq_part_kick(part);
}

bool mq_part_can_produce(struct mq_part *part)
{
    if (!mq_part_writer(part))
        return false;
    pthread_mutex_lock(&part->mu);
    bool ok = part->fatal_err == MQ_OK && mq_part_pending_bytes(part) < part->log->conf.max_pending_bytes;
    pthread_mutex_unlock(&part->mu);
    return ok;
}

enum mq_err mq_part_produce(struct mq_part *part, const struct mq_record *rec, int64_t *offset)
{
    if (!mq_part_writer(part))
        return MQ_ERR_READONLY;
    const struct mq_log_conf *conf = &part->log->conf;
    bool kick = false;
    pthread_mutex_lock(&part->mu);
    enum mq_err err = part->fatal_err;
    if (err == MQ_OK && mq_part_pending_bytes(part) >= conf->max_pending_bytes)
        err = MQ_ERR_FULL;
    if (err != MQ_OK) {
        pthread_mutex_unlock(&part->mu);
        return err;
    }
    if (part->open.count == 0) {
        mq_batch_reset(&part->open, part->next_offset);
        kick = conf->flush_interval_ms == 0;
    }
    err = mq_batch_add(&part->open, rec);
    if (err == MQ_OK) {
        if (offset)
            *offset = part->next_offset;
        part->next_offset++;
        if ((int64_t)part->open.len >= conf->batch_bytes) {
            int64_t before = part->unflushed_bytes;
            err = mq_part_seal_open(part);
            if (conf->flush_bytes > 0 && before < conf->flush_bytes &&
                part->unflushed_bytes >= conf->flush_bytes)
                kick = true;
            if (err == MQ_ERR_NOSPC)
                err = MQ_OK; /* accepted: it waits in the backlog */
        }
    }
    pthread_mutex_unlock(&part->mu);
    if (kick)
        mq_part_kick(part);
    return err;
}

enum mq_err mq_part_append(struct mq_part *part, const struct mq_record *recs, size_t n,
                           int64_t *first_offset)
{
    if (!mq_part_writer(part))
        return MQ_ERR_READONLY;
    if (n == 0)
        return MQ_ERR_INVAL;
    const struct mq_log_conf *conf = &part->log->conf;
    struct mq_batch_builder b;
    mq_batch_builder_init(&b);
    pthread_mutex_lock(&part->mu);
    enum mq_err err = part->fatal_err;
    if (err == MQ_OK && mq_part_pending_bytes(part) >= conf->max_pending_bytes)
        err = MQ_ERR_FULL;
    if (err == MQ_OK)
        err = mq_part_seal_open(part);
    if (err == MQ_OK && part->backlog_len)
        err = mq_part_write_backlog(part);
    if (err == MQ_OK) {
        mq_batch_reset(&b, part->next_offset);
        for (size_t i = 0; i < n && err == MQ_OK; i++)
            err = mq_batch_add(&b, &recs[i]);
        if (err == MQ_OK && b.len > MQ_BATCH_MAX_SIZE)
            err = MQ_ERR_INVAL;
    }
    if (err == MQ_OK) {
        mq_batch_finish(&b);
        struct mq_batch_info bi;
        err = mq_batch_parse_header(b.buf, b.len, &bi);
        if (err == MQ_OK)
            err = mq_part_write_batch(part, b.buf, &bi);
        if (err == MQ_OK) {
            if (first_offset)
                *first_offset = part->next_offset;
            part->next_offset += (int64_t)n;
        }
    }
    bool kick = err == MQ_OK && conf->flush_bytes > 0 && part->unflushed_bytes >= conf->flush_bytes;
    pthread_mutex_unlock(&part->mu);
    mq_batch_builder_free(&b);
    if (err != MQ_OK)
        return err;
    if (conf->flush_interval_ms == 0)
        return mq_part_flush_tick(part, true);
    if (kick)
        mq_part_kick(part);
    return MQ_OK;
}

bool mq_part_has_unflushed(struct mq_part *part)
{
    pthread_mutex_lock(&part->mu);
    bool r = part->open.count > 0 || part->backlog_len > 0 ||
             part->written_end > atomic_load(&part->durable_end) || part->dir_dirty || part->checkpoint_due;
    pthread_mutex_unlock(&part->mu);
    return r;
}

struct mq_sync_item {
    struct mq_segment *seg;
    int64_t size;
    bool sealed;
};

static enum mq_err mq_part_flush_locked(struct mq_part *part);

enum mq_err mq_part_flush_tick(struct mq_part *part, bool force)
{
    (void)force;
    if (!mq_part_writer(part))
        return MQ_OK;
    /* Ticks are serialised: a tick closes the index files of segments it synced, which another tick
     * running at the same time could still be syncing. A caller that waits here usually finds its data
     * already made durable by the tick it waited for. */
    pthread_mutex_lock(&part->flush_mu);
    enum mq_err err = mq_part_flush_locked(part);
    pthread_mutex_unlock(&part->flush_mu);
    return err;
}

static enum mq_err mq_part_flush_locked(struct mq_part *part)
{
    const struct mq_log_conf *conf = &part->log->conf;
    struct mq_sync_item items[8];
    size_t nitems = 0;
    struct mq_rp rp = {0};
    bool ckpt = false, sync_dir = false;
    int ckpt_idx_fd = -1, ckpt_tidx_fd = -1;

    pthread_mutex_lock(&part->mu);
    if (part->fatal_err != MQ_OK) {
        enum mq_err e = part->fatal_err;
        pthread_mutex_unlock(&part->mu);
        return e;
    }
    enum mq_err err = mq_part_seal_open(part);
    if (err == MQ_OK && part->backlog_len)
        err = mq_part_write_backlog(part);
    enum mq_err write_err = err;
    int64_t end = part->written_end;
    /* Segments with unsynced bytes: the active one and any sealed since the last tick (newest last). */
    for (size_t i = part->nsegs; i-- > 0 && nitems < sizeof items / sizeof items[0];) {
        struct mq_segment *seg = part->segs[i];
        bool sealed = i + 1 < part->nsegs;
        bool synced =
            atomic_load(&seg->durable_size) == atomic_load(&seg->size) && !(sealed && seg->idx_fd >= 0);
        if (synced && sealed)
            break;
        if (synced)
            continue;
        mq_seg_ref(seg);
        items[nitems++] = (struct mq_sync_item){seg, atomic_load(&seg->size), sealed};
    }
    struct mq_segment *act = mq_part_active(part);
    if (mq_seg_write_index(act) != MQ_OK)
        MQ_WARN("%s: index write failed; it is rebuilt on the next open", act->path_idx);
    sync_dir = part->dir_dirty;
    part->dir_dirty = false;
    ckpt = part->checkpoint_due || part->bytes_since_checkpoint >= conf->checkpoint_bytes;
    if (ckpt) {
        rp = (struct mq_rp){0,
                            act->base_offset,
                            atomic_load(&act->size),
                            atomic_load(&act->next_offset),
                            atomic_load(&act->max_ts),
                            act->max_ts_offset};
        ckpt_idx_fd = dup(act->idx_fd);
        ckpt_tidx_fd = dup(act->tidx_fd);
    }
    int64_t ckpt_bytes = part->bytes_since_checkpoint;
    part->unflushed_bytes = 0;
    pthread_mutex_unlock(&part->mu);

    /* fdatasync without the writer's lock: appends continue meanwhile. Oldest first. */
    enum mq_err serr = MQ_OK;
    if (sync_dir && fsync(part->dir_fd) != 0)
        serr = mq_err_from_errno(errno);
    for (size_t i = nitems; i-- > 0 && serr == MQ_OK;) {
        struct mq_segment *seg = items[i].seg;
        if (fdatasync(seg->fd) != 0) {
            serr = mq_err_from_errno(errno);
            break;
        }
        if (items[i].sealed && seg->idx_fd >= 0) {
            if (fdatasync(seg->idx_fd) != 0 || fdatasync(seg->tidx_fd) != 0) {
                serr = mq_err_from_errno(errno);
                break;
            }
        }
    }
    if (serr == MQ_OK && ckpt) {
        if (ckpt_idx_fd < 0 || ckpt_tidx_fd < 0 || fdatasync(ckpt_idx_fd) != 0 ||
            fdatasync(ckpt_tidx_fd) != 0)
            serr = MQ_ERR_IO;
        else
            serr = mq_rp_write(part, &rp);
        if (serr != MQ_OK) {
            MQ_WARN("%s: recovery point not written (%s); the next open scans further", part->dir,
                    mq_strerror(serr));
            serr = MQ_OK; /* the data is durable; only the checkpoint is older */
            ckpt = false;
        }
    }
    if (ckpt_idx_fd >= 0)
        close(ckpt_idx_fd);
    if (ckpt_tidx_fd >= 0)
        close(ckpt_tidx_fd);

    pthread_mutex_lock(&part->mu);
    if (serr != MQ_OK) {
        /* After a failed fdatasync the kernel may have dropped the dirty pages: the only safe answer is to
         * stop writing this partition; the next open recovers from what is on disk. */
        part->fatal_err = MQ_ERR_IO;
        MQ_ERROR("%s: fdatasync failed (%s): partition stopped; restart to recover", part->dir,
                 mq_strerror(serr));
    } else {
        for (size_t i = 0; i < nitems; i++) {
            struct mq_segment *seg = items[i].seg;
            if (items[i].size > atomic_load(&seg->durable_size))
                atomic_store(&seg->durable_size, items[i].size);
            if (items[i].sealed && seg->idx_fd >= 0) {
                close(seg->idx_fd);
                close(seg->tidx_fd);
                seg->idx_fd = seg->tidx_fd = -1;
            }
        }
        if (end > atomic_load(&part->durable_end))
            atomic_store(&part->durable_end, end);
        if (ckpt) {
            part->bytes_since_checkpoint -= ckpt_bytes;
            part->checkpoint_due = false;
        }
    }
    pthread_cond_broadcast(&part->durable_cv);
    int64_t durable = atomic_load(&part->durable_end);
    pthread_mutex_unlock(&part->mu);
    for (size_t i = 0; i < nitems; i++)
        mq_seg_unref(items[i].seg);

    if (serr == MQ_OK && nitems > 0) {
        struct mq_log *log = part->log;
        pthread_mutex_lock(&log->mu);
        mq_durable_cb *cb = log->durable_cb;
        void *opaque = log->durable_opaque;
        pthread_mutex_unlock(&log->mu);
        if (cb)
            cb(opaque, part, durable);
    }
    if (serr != MQ_OK)
        return MQ_ERR_IO;
    return write_err;
}

enum mq_err mq_part_flush(struct mq_part *part)
{
    return mq_part_flush_tick(part, true);
}

enum mq_err mq_part_wait_durable(struct mq_part *part, int64_t offset, int64_t timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    enum mq_err err = MQ_OK;
    pthread_mutex_lock(&part->mu);
    while (atomic_load(&part->durable_end) <= offset) {
        if (part->fatal_err != MQ_OK) {
            err = part->fatal_err;
            break;
        }
        if (part->write_err != MQ_OK) {
            err = part->write_err;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&part->durable_cv, &part->mu);
        } else if (pthread_cond_timedwait(&part->durable_cv, &part->mu, &deadline) == ETIMEDOUT) {
            err = atomic_load(&part->durable_end) > offset ? MQ_OK : MQ_ERR_TIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&part->mu);
    return err;
}

enum mq_err mq_part_offsets(struct mq_part *part, int64_t *start, int64_t *end)
{
    if (!mq_part_writer(part) && mq_mono_ms() - part->reader_refresh_mono >= 100) {
        enum mq_err err = mq_part_reader_refresh(part, true);
        if (err != MQ_OK)
            return err;
    }
    pthread_rwlock_rdlock(&part->segs_lock);
    *start = part->nsegs ? part->segs[0]->base_offset : 0;
    pthread_rwlock_unlock(&part->segs_lock);
    *end = mq_part_visible_end(part);
    return MQ_OK;
}

int64_t mq_part_durable_end(struct mq_part *part)
{
    return atomic_load(&part->durable_end);
}

void mq_part_set_retention(struct mq_part *part, const struct mq_retention *ret)
{
    pthread_mutex_lock(&part->mu);
    part->ret = *ret;
    pthread_mutex_unlock(&part->mu);
}

const char *mq_part_topic(const struct mq_part *part)
{
    return part->topic;
}

int32_t mq_part_id(const struct mq_part *part)
{
    return part->id;
}

/* ---- retention ---- */

enum mq_err mq_part_apply_retention(struct mq_part *part, int64_t now_ms, int *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!mq_part_writer(part))
        return MQ_ERR_READONLY;
    pthread_mutex_lock(&part->mu);
    struct mq_retention ret = part->ret;
    if (ret.ms <= 0 && ret.bytes <= 0) {
        pthread_mutex_unlock(&part->mu);
        return MQ_OK;
    }
    int64_t total = 0;
    for (size_t i = 0; i < part->nsegs; i++)
        total += atomic_load(&part->segs[i]->size);
    size_t ndel = 0;
    enum mq_err err = MQ_OK;
    for (size_t i = 0; i < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        int64_t size = atomic_load(&seg->size);
        bool active = i + 1 == part->nsegs;
        int64_t mts = mq_seg_max_ts(seg);
        bool by_time = ret.ms > 0 && size > 0 && mts >= 0 && now_ms - mts > ret.ms;
        bool by_size = ret.bytes > 0 && size > 0 && total - ret.bytes >= size;
        if (!by_time && !by_size)
            break;
        if (active) {
            /* Everything is expired: roll so that the data can go; the new active segment is empty. Only
             * durable data is dropped this way; an unwritten open batch goes to the new segment. */
            if (atomic_load(&part->durable_end) < part->written_end || part->backlog_len)
                break;
            err = mq_part_roll(part);
            if (err != MQ_OK)
                break;
        }
        total -= size;
        ndel++;
    }
    struct mq_segment **gone = NULL;
    if (ndel > 0 && (gone = malloc(ndel * sizeof *gone)) != NULL) {
        pthread_rwlock_wrlock(&part->segs_lock);
        memcpy(gone, part->segs, ndel * sizeof *gone);
        memmove(part->segs, part->segs + ndel, (part->nsegs - ndel) * sizeof *part->segs);
        part->nsegs -= ndel;
        pthread_rwlock_unlock(&part->segs_lock);
    } else {
        ndel = 0;
    }
    pthread_mutex_unlock(&part->mu);
    /* Unlinking happens outside both locks: appends and reads go on. Open slices keep their fds. */
    for (size_t i = 0; i < ndel; i++) {
        MQ_INFO("%s: retention deleted segment %020" PRId64, part->dir, gone[i]->base_offset);
        mq_seg_unlink(gone[i]);
        mq_seg_unref(gone[i]);
    }
    free(gone);
    if (deleted)
        *deleted = (int)ndel;
    return err;
}

/* ---- opening and recovery ---- */

struct mq_bases {
    int64_t *v;
    size_t n, cap;
};

static int mq_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment base offsets; in write mode also removes leftovers (orphan indexes, temporary files). */
static enum mq_err mq_part_list(struct mq_part *part, struct mq_bases *bases, bool cleanup)
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
 * file held more (a partial or invalid tail).
 */
static int64_t mq_seg_recover(struct mq_part *part, struct mq_segment *seg, int64_t from, int64_t next,
                              bool *truncated, int64_t *batches)
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
    if (*truncated)
        MQ_WARN("%s: %s at byte %" PRId64 " of %" PRId64 "; truncating the tail after offset %" PRId64,
                seg->path_log,
                r == MQ_SCAN_BAD     ? "invalid batch"
                : r == MQ_SCAN_IOERR ? "read error"
                                     : "partial batch",
                pos, file_size, next - 1);
    atomic_store(&seg->next_offset, next);
    return pos;
}

static void mq_part_free(struct mq_part *part)
{
    if (!part)
        return;
    for (size_t i = 0; i < part->nsegs; i++)
        mq_seg_unref(part->segs[i]);
    free(part->segs);
    mq_batch_builder_free(&part->open);
    free(part->backlog);
    if (part->dir_fd >= 0)
        close(part->dir_fd);
    pthread_rwlock_destroy(&part->segs_lock);
    pthread_mutex_destroy(&part->mu);
    pthread_mutex_destroy(&part->flush_mu);
    pthread_mutex_destroy(&part->hint_mu);
    pthread_cond_destroy(&part->durable_cv);
    free(part->topic);
    free(part->dir);
    free(part);
}

/* Write mode: recover from the recovery point and prepare the active segment. */
static enum mq_err mq_part_recover(struct mq_part *part, const struct mq_bases *bases)
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
            MQ_WARN("%s: index missing or inconsistent, rebuilding", seg->path_idx);
            seg->fd = open(seg->path_log, O_RDONLY | O_CLOEXEC);
            if (seg->fd < 0 || (err = mq_seg_open_index(seg, 0, 0)) != MQ_OK)
                return err != MQ_OK ? err : mq_err_from_errno(errno);
            bool trunc;
            mq_seg_recover(part, seg, 0, seg->base_offset, &trunc, &batches);
            if ((err = mq_seg_seal_index(seg)) != MQ_OK)
                return err;
            if (fdatasync(seg->idx_fd) != 0 || fdatasync(seg->tidx_fd) != 0)
                return mq_err_from_errno(errno);
            close(seg->idx_fd);
            close(seg->tidx_fd);
            seg->idx_fd = seg->tidx_fd = -1;
        }
    }
    /* From k on: scan, truncate at the first bad batch, drop whatever follows it. */
    int64_t next = have_rp && from > 0 ? rp.next_offset : part->segs[k]->base_offset;
    size_t keep = part->nsegs;
    for (size_t i = k; i < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        int64_t start = i == k ? from : 0;
        if (seg->base_offset != (i == k ? seg->base_offset : next)) {
            keep = i; /* a gap or overlap between segments: what follows cannot be trusted */
            break;
        }
        seg->fd = open(seg->path_log, O_RDWR | O_CLOEXEC);
        if (seg->fd < 0)
            return mq_err_from_errno(errno);
        int64_t idx_keep, tidx_keep, last_idx_pos, last_tidx_ts;
        int64_t seg_next = i == k ? next : seg->base_offset;
        if (start > mq_fd_size(seg->fd)) {
            start = 0; /* the file is shorter than the recovery point says: scan it whole */
            seg_next = seg->base_offset;
        }
        mq_seg_trusted_index(seg, start, seg_next, &idx_keep, &tidx_keep, &last_idx_pos, &last_tidx_ts);
        if ((err = mq_seg_open_index(seg, idx_keep, tidx_keep)) != MQ_OK)
            return err;
        seg->bytes_since_index = last_idx_pos >= 0 ? start - last_idx_pos : start;
        seg->last_tidx_ts = last_tidx_ts;
        if (start > 0 && have_rp && i == k) {
            atomic_store(&seg->max_ts, rp.max_ts);
            seg->max_ts_offset = rp.max_ts_offset;
        }
        seg->max_ts_loaded = true;
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
        int64_t end = mq_seg_recover(part, seg, start, seg_next, &truncated, &batches);
        if (truncated && ftruncate(seg->fd, end) != 0)
            return mq_err_from_errno(errno);
        atomic_store(&seg->size, end);
        atomic_store(&seg->durable_size, end);
        next = atomic_load(&seg->next_offset);
        if (truncated) {
            keep = i + 1;
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
        if ((err = mq_seg_seal_index(seg)) != MQ_OK)
            return err;
        if (fdatasync(seg->idx_fd) != 0 || fdatasync(seg->tidx_fd) != 0)
            return mq_err_from_errno(errno);
        close(seg->idx_fd);
        close(seg->tidx_fd);
        seg->idx_fd = seg->tidx_fd = -1;
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
    part->next_offset = part->written_end = atomic_load(&act->next_offset);
    atomic_store(&part->durable_end, part->next_offset);
    bool scanned =
        batches > 0 || !have_rp || rp.seg_base != act->base_offset || rp.pos != atomic_load(&act->size);
    if (scanned) {
        /* Make what the scan found durable and record it, so that the next open starts from here. */
        if (fdatasync(act->fd) != 0 || fdatasync(act->idx_fd) != 0 || fdatasync(act->tidx_fd) != 0 ||
            fsync(part->dir_fd) != 0)
            return mq_err_from_errno(errno);
        struct mq_rp nrp = {0,
                            act->base_offset,
                            atomic_load(&act->size),
                            part->next_offset,
                            atomic_load(&act->max_ts),
                            act->max_ts_offset};
        if ((err = mq_rp_write(part, &nrp)) != MQ_OK)
            return err;
        MQ_INFO("%s: recovered %" PRId64 " batches after the recovery point in %.1f ms, next offset %" PRId64,
                part->dir, batches, (double)(mq_mono_us() - t0) / 1000.0, part->next_offset);
    }
    return MQ_OK;
}

/* Read mode: follow the data the writer has added since the last look (new batches, new segments). */
static enum mq_err mq_part_reader_refresh(struct mq_part *part, bool list)
{
    pthread_mutex_lock(&part->mu);
    enum mq_err err = MQ_OK;
    struct mq_bases bases = {0};
    if (list || part->nsegs == 0) {
        err = mq_part_list(part, &bases, false);
        if (err != MQ_OK)
            goto out;
        /* Segments deleted by retention disappear at the front (the writer never deletes the newest). */
        size_t drop = 0;
        while (drop + 1 < part->nsegs && (bases.n == 0 || part->segs[drop]->base_offset < bases.v[0]))
            drop++;
        if (drop) {
            pthread_rwlock_wrlock(&part->segs_lock);
            for (size_t i = 0; i < drop; i++)
                mq_seg_unref(part->segs[i]);
            memmove(part->segs, part->segs + drop, (part->nsegs - drop) * sizeof *part->segs);
            part->nsegs -= drop;
            pthread_rwlock_unlock(&part->segs_lock);
        }
    }
    int64_t last_base = part->nsegs ? mq_part_active(part)->base_offset : -1;
    for (size_t j = 0; j < bases.n; j++) {
        if (bases.v[j] <= last_base)
            continue;
        /* The previous last segment is complete now that a newer one exists: finish scanning it. */
        struct mq_segment *seg = mq_seg_new(part->dir, bases.v[j]);
        if (!seg) {
            err = MQ_ERR_NOMEM;
            goto out;
        }
        pthread_rwlock_wrlock(&part->segs_lock);
        err = mq_part_segs_push(part, seg);
        pthread_rwlock_unlock(&part->segs_lock);
        if (err != MQ_OK) {
            mq_seg_unref(seg);
            goto out;
        }
    }
    /* Scan every segment whose validated size is behind its file (normally only the last one or two). */
    for (size_t i = 0; i < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        if (seg->reader_complete)
            continue;
        bool sealed = i + 1 < part->nsegs; /* the writer has moved on: this file no longer grows */
        int fd = mq_seg_fd(seg);
        if (fd < 0)
            continue;
        int64_t size = atomic_load(&seg->size), file_size = mq_fd_size(fd);
        if (sealed && file_size <= size)
            seg->reader_complete = true;
        if (file_size <= size)
            continue;
        int64_t from = size;
        int64_t next = atomic_load(&seg->next_offset);
        if (!seg->reader_seen) {
            /* First look at this segment: a sealed one is complete; jump close to the end of the last one
             * through the index. */
            seg->reader_seen = true;
            if (sealed) {
                seg->reader_complete = true;
                atomic_store(&seg->size, file_size);
                atomic_store(&seg->durable_size, file_size);
                atomic_store(&seg->next_offset, part->segs[i + 1]->base_offset);
                continue;
            }
            int64_t ts;
            if (mq_seg_read_last_time(seg, &ts))
                atomic_store(&seg->max_ts, ts);
            seg->max_ts_loaded = true;
            from = mq_seg_index_lookup(seg, -1, INT64_MAX, file_size);
            next = from > 0 ? -1 : seg->base_offset;
        }
        struct mq_scan sc;
        mq_scan_init(&sc, fd, from, file_size);
        struct mq_batch_info bi;
        const uint8_t *body;
        int64_t pos = from;
        while (mq_scan_next(&sc, true, &bi, &body) == MQ_SCAN_BATCH) {
            if (next >= 0 && bi.base_offset != next)
                break;
            next = mq_batch_last_offset(&bi) + 1;
            if (bi.max_timestamp > atomic_load(&seg->max_ts))
                atomic_store(&seg->max_ts, bi.max_timestamp);
            pos = sc.pos;
        }
        mq_scan_free(&sc);
        if (next < 0)
            continue; /* no complete batch where the index pointed: look again next time */
        atomic_store(&seg->next_offset, next);
        atomic_store(&seg->durable_size, pos);
        atomic_store(&seg->size, pos);
        if (sealed)
            seg->reader_complete = true;
    }
    if (list)
        part->reader_refresh_mono = mq_mono_ms(); /* when the directory was last listed */
out:
    free(bases.v);
    pthread_mutex_unlock(&part->mu);
    return err;
}

enum mq_err mq_part_open(struct mq_log *log, const char *topic, int32_t id, struct mq_part **partp)
{
    struct mq_part *part = calloc(1, sizeof *part);
    if (!part)
        return MQ_ERR_NOMEM;
    part->log = log;
    part->id = id;
    part->dir_fd = -1;
    part->ret.ms = MQ_RETENTION_MS_DEFAULT;
    pthread_rwlock_init(&part->segs_lock, NULL);
    pthread_mutex_init(&part->mu, NULL);
    pthread_mutex_init(&part->flush_mu, NULL);
    pthread_mutex_init(&part->hint_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&part->durable_cv, &ca);
    pthread_condattr_destroy(&ca);
    mq_batch_builder_init(&part->open);
    part->hint_offset = -1;
    part->topic = strdup(topic);
    if (!part->topic || asprintf(&part->dir, "%s/%s-%d", mq_log_dir(log), topic, (int)id) < 0) {
        part->dir = NULL;
        mq_part_free(part);
        return MQ_ERR_NOMEM;
    }
    part->dir_fd = open(part->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (part->dir_fd < 0) {
        enum mq_err err = mq_err_from_errno(errno);
        mq_part_free(part);
        return err;
    }
    enum mq_err err;
    if (mq_part_writer(part)) {
        struct mq_bases bases = {0};
        err = mq_part_list(part, &bases, true);
        if (err == MQ_OK)
            err = mq_part_recover(part, &bases);
        free(bases.v);
    } else {
        err = mq_part_reader_refresh(part, true);
    }
    if (err != MQ_OK) {
        mq_part_free(part);
        return err;
    }
    *partp = part;
    return MQ_OK;
}

enum mq_err mq_part_close(struct mq_part *part, bool clean)
{
    if (!part)
        return MQ_OK;
    enum mq_err err = MQ_OK;
    if (mq_part_writer(part) && part->nsegs > 0) {
        err = mq_part_flush_tick(part, true);
        if (err == MQ_OK && part->backlog_len == 0 && clean) {
            struct mq_segment *act = mq_part_active(part);
            err = mq_seg_seal_index(act);
            /* the final time entry is an ordinary entry for an active segment: harmless if writing resumes */
            if (err == MQ_OK && (fdatasync(act->idx_fd) != 0 || fdatasync(act->tidx_fd) != 0))
                err = mq_err_from_errno(errno);
            if (err == MQ_OK) {
                struct mq_rp rp = {MQ_RP_CLEAN,       act->base_offset,          atomic_load(&act->size),
                                   part->next_offset, atomic_load(&act->max_ts), act->max_ts_offset};
                err = mq_rp_write(part, &rp);
            }
        }
    }
    mq_part_free(part);
    return err;
}

/* ---- reading ---- */

/* Finds and references the segment that holds `offset` (the last one with base <= offset). */
static struct mq_segment *mq_part_find_seg(struct mq_part *part, int64_t offset, int64_t *start)
{
    pthread_rwlock_rdlock(&part->segs_lock);
    struct mq_segment *seg = NULL;
    *start = part->nsegs ? part->segs[0]->base_offset : 0;
    size_t lo = 0, hi = part->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (part->segs[mid]->base_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        seg = part->segs[lo - 1];
        mq_seg_ref(seg);
    }
    pthread_rwlock_unlock(&part->segs_lock);
    return seg;
}

static int64_t mq_part_visible_end(struct mq_part *part)
{
    if (mq_part_writer(part))
        return atomic_load(&part->durable_end);
    pthread_rwlock_rdlock(&part->segs_lock);
    int64_t end = part->nsegs ? atomic_load(&mq_part_active(part)->next_offset) : 0;
    pthread_rwlock_unlock(&part->segs_lock);
    return end;
}

enum mq_err mq_part_read(struct mq_part *part, int64_t offset, size_t max_bytes, struct mq_slice *slice)
{
    memset(slice, 0, sizeof *slice);
    slice->fd = -1;
    int64_t end = mq_part_visible_end(part);
    if (!mq_part_writer(part) && offset >= end) {
        enum mq_err err = mq_part_reader_refresh(part, mq_mono_ms() - part->reader_refresh_mono >= 100);
        if (err != MQ_OK)
            return err;
        end = mq_part_visible_end(part);
    }
    int64_t start;
    if (offset > end)
        return MQ_ERR_RANGE;
    if (offset == end) {
        slice->first_offset = slice->next_offset = offset;
        return MQ_OK;
    }
    struct mq_segment *seg = mq_part_find_seg(part, offset, &start);
    if (!seg || offset < start) {
        mq_seg_unref(seg);
        return MQ_ERR_RANGE;
    }
    int fd = mq_seg_fd(seg);
    if (fd < 0) {
        mq_seg_unref(seg);
        return mq_err_from_errno(errno);
    }
    int64_t limit = atomic_load(&seg->durable_size);
    int64_t pos = -1;
    pthread_mutex_lock(&part->hint_mu);
    if (part->hint_offset == offset && part->hint_base == seg->base_offset)
        pos = part->hint_pos;
    pthread_mutex_unlock(&part->hint_mu);
    if (pos < 0)
        pos = mq_seg_index_lookup(seg, -1, offset, limit);

    struct mq_scan sc;
    mq_scan_init(&sc, fd, pos, limit);
    struct mq_batch_info bi;
    int64_t first_pos = -1, stop = pos, first_off = offset, next_off = offset;
    enum mq_scan_res r;
    while ((r = mq_scan_next(&sc, false, &bi, NULL)) == MQ_SCAN_BATCH) {
        int64_t bstart = sc.pos - (int64_t)mq_batch_size(&bi);
        if (first_pos < 0) {
            if (mq_batch_last_offset(&bi) < offset)
                continue;
            first_pos = bstart;
            first_off = bi.base_offset;
        } else if ((size_t)(sc.pos - first_pos) > max_bytes) {
            break;
        }
        stop = sc.pos;
        next_off = mq_batch_last_offset(&bi) + 1;
    }
    mq_scan_free(&sc);
    if (r == MQ_SCAN_BAD || r == MQ_SCAN_IOERR) {
        if (first_pos < 0) {
            mq_seg_unref(seg);
            return r == MQ_SCAN_BAD ? MQ_ERR_CORRUPT : MQ_ERR_IO;
        }
    }
    if (first_pos < 0) {
        /* nothing visible at or after offset in this segment yet */
        mq_seg_unref(seg);
        slice->first_offset = slice->next_offset = offset;
        return MQ_OK;
    }
    slice->fd = fd;
    slice->pos = first_pos;
    slice->len = (size_t)(stop - first_pos);
    slice->first_offset = first_off;
    slice->next_offset = next_off;
    slice->ref = seg;
    pthread_mutex_lock(&part->hint_mu);
    part->hint_offset = next_off;
    part->hint_base = seg->base_offset;
    part->hint_pos = stop;
    pthread_mutex_unlock(&part->hint_mu);
    return MQ_OK;
}

void mq_slice_release(struct mq_slice *slice)
{
    if (slice && slice->ref) {
        mq_seg_unref(slice->ref);
        slice->ref = NULL;
        slice->fd = -1;
    }
}

enum mq_err mq_part_offset_for_time(struct mq_part *part, int64_t ts, int64_t *offset)
{
    *offset = -1;
    if (!mq_part_writer(part)) {
        enum mq_err err = mq_part_reader_refresh(part, true);
        if (err != MQ_OK)
            return err;
    }
    int64_t vis_end = mq_part_visible_end(part);
    pthread_rwlock_rdlock(&part->segs_lock);
    size_t n = part->nsegs;
    struct mq_segment **segs = malloc((n ? n : 1) * sizeof *segs);
    if (!segs) {
        pthread_rwlock_unlock(&part->segs_lock);
        return MQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        segs[i] = part->segs[i];
        mq_seg_ref(segs[i]);
    }
    pthread_rwlock_unlock(&part->segs_lock);

    enum mq_err err = MQ_OK;
    for (size_t i = 0; i < n && *offset < 0 && err == MQ_OK; i++) {
        struct mq_segment *seg = segs[i];
        bool last = i + 1 == n;
        int64_t mts = mq_seg_max_ts(seg);
        if (!last && mts < ts)
            continue;
        int fd = mq_seg_fd(seg);
        if (fd < 0)
            continue;
        int64_t limit = atomic_load(&seg->durable_size);
        int64_t from_off = mq_seg_timeindex_lookup(seg, -1, ts);
        int64_t pos = mq_seg_index_lookup(seg, -1, from_off, limit);
        struct mq_scan sc;
        mq_scan_init(&sc, fd, pos, limit);
        struct mq_batch_info bi;
        const uint8_t *body;
        enum mq_scan_res r;
        while ((r = mq_scan_next(&sc, false, &bi, NULL)) == MQ_SCAN_BATCH) {
            if (bi.max_timestamp < ts || bi.base_offset >= vis_end)
                continue;
            /* decode this batch to find the first record at or after ts */
            sc.pos -= (int64_t)mq_batch_size(&bi);
            if (mq_scan_next(&sc, true, &bi, &body) != MQ_SCAN_BATCH) {
                err = MQ_ERR_CORRUPT;
                break;
            }
            struct mq_record_iter it;
            struct mq_record_view rv;
            if (mq_record_iter_init(&it, body, &bi) != MQ_OK) {
                *offset = bi.base_offset; /* compressed: Kafka answers with the batch */
                break;
            }
            int rr;
            while ((rr = mq_record_next(&it, &rv)) == 1)
                if (rv.timestamp >= ts) {
                    *offset = rv.offset;
                    break;
                }
            if (rr < 0)
                err = MQ_ERR_CORRUPT;
            break;
        }
        if (r == MQ_SCAN_BAD)
            err = MQ_ERR_CORRUPT;
        mq_scan_free(&sc);
    }
    for (size_t i = 0; i < n; i++)
        mq_seg_unref(segs[i]);
    free(segs);
    return err;
}

enum mq_err mq_part_stats(struct mq_part *part, struct mq_part_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!mq_part_writer(part)) {
        enum mq_err err = mq_part_reader_refresh(part, true);
        if (err != MQ_OK)
            return err;
    }
    st->oldest_timestamp = st->newest_timestamp = -1;
    pthread_rwlock_rdlock(&part->segs_lock);
    size_t n = part->nsegs;
    struct mq_segment *first = n ? part->segs[0] : NULL;
    if (first)
        mq_seg_ref(first);
    st->start_offset = n ? part->segs[0]->base_offset : 0;
    st->end_offset = n ? atomic_load(&part->segs[n - 1]->next_offset) : 0;
    st->segments = (int32_t)n;
    for (size_t i = 0; i < n; i++) {
        st->bytes += atomic_load(&part->segs[i]->size);
        int64_t mts = atomic_load(&part->segs[i]->max_ts);
        if (mts > st->newest_timestamp)
            st->newest_timestamp = mts;
    }
    struct mq_segment *lastsealed = n >= 2 ? part->segs[n - 2] : NULL;
    if (lastsealed)
        mq_seg_ref(lastsealed);
    pthread_rwlock_unlock(&part->segs_lock);
    if (lastsealed) {
        int64_t mts = mq_seg_max_ts(lastsealed);
        if (mts > st->newest_timestamp)
            st->newest_timestamp = mts;
        mq_seg_unref(lastsealed);
    }
    if (mq_part_writer(part)) {
        pthread_mutex_lock(&part->mu);
        st->end_offset = part->next_offset;
        pthread_mutex_unlock(&part->mu);
        st->durable_offset = atomic_load(&part->durable_end);
    } else {
        st->durable_offset = st->end_offset;
    }
    if (first) {
        int fd = mq_seg_fd(first);
        if (fd >= 0 && atomic_load(&first->size) > 0) {
            struct mq_scan sc;
            struct mq_batch_info bi;
            mq_scan_init(&sc, fd, 0, atomic_load(&first->size));
            if (mq_scan_next(&sc, false, &bi, NULL) == MQ_SCAN_BATCH)
                st->oldest_timestamp = bi.max_timestamp;
            mq_scan_free(&sc);
        }
        mq_seg_unref(first);
    }
    return MQ_OK;
}
