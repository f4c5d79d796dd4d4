/*
 * partition.c - one partition's write side: appends and group commit, retention, open and close.
 *
 * Write path: records gather in the open batch (produce) or arrive as a batch (append); a batch is written
 * with one pwrite at the end of the active segment while part->mu is held; the flusher thread (log.c) calls
 * mq_part_flush_tick() which writes what is open, fdatasyncs outside the lock and then publishes the new
 * durable end. A write that fails (disk full) is undone with ftruncate and its batch kept in a backlog that
 * is retried on every tick, so a full disk never leaves a damaged segment and nothing accepted is dropped.
 *
 * Opening a partition recovers it (recover.c) in write mode or lists what the writer wrote (recover.c) in
 * read mode; reads are in read.c, the index files' bookkeeping in segment.c.
 */
#include "log/log_int.h"

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
#include "util/lockwait.h"
#include "util/parse.h"

/* ---- segment list ---- */

enum mq_err mq_part_segs_push(struct mq_part *part, struct mq_segment *seg)
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
    seg->owner = part;
    return MQ_OK;
}

/* Creates the files of a new active segment at the partition's next offset (writer, under mu). */
enum mq_err mq_part_new_segment(struct mq_part *part, int64_t base)
{
    struct mq_segment *seg = mq_seg_new(part->dir, base);
    if (!seg)
        return MQ_ERR_NOMEM;
    seg->fd = open(seg->path_log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    enum mq_err err = seg->fd < 0 ? mq_err_from_errno(errno) : mq_seg_open_index(seg, 0, 0);
    if (err == MQ_OK) {
        atomic_store(&seg->max_ts_loaded, true);
        atomic_store(&seg->writable, true);
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
    /* Three files opened: a partition the fd cache closed while it was idle is on its list again (a no-op
     * while the partition opens) */
    mq_fdc_touch(part);
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
    err = mq_part_new_segment(part, part->written_end);
    if (err == MQ_OK) {
        atomic_store(&old->writable, false);
        mq_seg_release_pending(old); /* written by the seal: a sealed segment takes no more entries */
    }
    return err;
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
    /* The disk budget admits the batch before anything happens, a roll included: a refusal is a full disk
     * (the caller keeps the batch in its backlog), and budget.c makes room. */
    bool budget = mq_budget_on(conf);
    enum mq_err err = budget ? mq_budget_admit(part->log, (int64_t)size) : MQ_OK;
    if (err != MQ_OK) {
        part->write_err = err;
        return err;
    }
    if (roll) {
        err = mq_part_roll(part);
        if (err != MQ_OK) {
            if (budget)
                mq_budget_wrote(part->log, (int64_t)size, false);
            return err;
        }
        seg = mq_part_active(part);
        cur = 0;
    }
    int fd = mq_seg_fd(seg); /* reopened if the fd cache closed it */
    err = fd < 0 ? mq_err_from_errno(errno) : mq_pwrite_full(fd, buf, size, cur);
    if (err != MQ_OK) {
        if (fd >= 0 && ftruncate(fd, cur) != 0)
            MQ_ERROR("%s: cannot cut back a failed write: %s", seg->path_log, MQ_STRERROR(errno));
        if (budget)
            mq_budget_wrote(part->log, (int64_t)size, false);
        part->write_err = err;
        return err;
    }
    err = mq_seg_account(seg, cur, bi, conf->index_interval_bytes);
    mq_seg_mark_checked(seg, cur, cur + (int64_t)size); /* its CRC was computed here: no reader checks it */
    atomic_store(&seg->size, cur + (int64_t)size);
    if (budget)
        mq_budget_wrote(part->log, (int64_t)size, true);
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
    part->open.codec = part->codec;
    mq_batch_finish(&part->open);
    struct mq_batch_info bi;
    enum mq_err err = mq_batch_parse_header(part->open.out, part->open.out_len, &bi);
    if (err == MQ_OK && part->backlog_len == 0)
        err = mq_part_write_batch(part, part->open.out, &bi);
    else
        err = MQ_ERR_FULL;
    if (err != MQ_OK) {
        enum mq_err e2 = mq_part_backlog_add(part, part->open.out, part->open.out_len);
        if (e2 != MQ_OK)
            return e2; /* the open batch is kept as it is: the next seal retries */
        err = part->backlog_len == part->open.out_len ? err : mq_part_write_backlog(part);
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
    return mq_part_produce_noted(part, rec, NULL, NULL, offset);
}

enum mq_err mq_part_produce_noted(struct mq_part *part, const struct mq_record *rec, mq_produce_note_fn *note,
                                  void *opaque, int64_t *offset)
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
    part->busy = true;
    err = mq_batch_add(&part->open, rec);
    if (err == MQ_OK && note)
        note(opaque, part, part->next_offset); /* before any write can take the record to the file */
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
    part->busy = true;
    if (err == MQ_OK) {
        mq_batch_reset(&b, part->next_offset);
        for (size_t i = 0; i < n && err == MQ_OK; i++)
            err = mq_batch_add(&b, &recs[i]);
        if (err == MQ_OK && b.len > MQ_BATCH_MAX_SIZE)
            err = MQ_ERR_INVAL;
    }
    if (err == MQ_OK) {
        b.codec = part->codec;
        mq_batch_finish(&b);
        struct mq_batch_info bi;
        err = mq_batch_parse_header(b.out, b.out_len, &bi);
        if (err == MQ_OK)
            err = mq_part_write_batch(part, b.out, &bi);
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
        return mq_part_flush_tick(part);
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

size_t mq_part_trim(struct mq_part *part)
{
    if (!mq_part_writer(part))
        return 0;
    size_t freed = 0;
    pthread_mutex_lock(&part->mu);
    if (!part->busy && part->open.count == 0 && part->nsegs > 0) {
        freed += mq_batch_builder_release(&part->open);
        if (part->backlog && part->backlog_len == 0) {
            freed += part->backlog_cap;
            free(part->backlog);
            part->backlog = NULL;
            part->backlog_cap = 0;
        }
        freed += mq_seg_release_pending(mq_part_active(part));
    }
    part->busy = false;
    pthread_mutex_unlock(&part->mu);
    return freed;
}

/* Whether seg has bytes to fdatasync, or (sealed) index files still to sync and close: open, or closed by
 * the fd cache before they were synced (idx_evicted). Under mu. */
static bool mq_seg_unsynced(const struct mq_segment *seg, bool sealed)
{
    return atomic_load(&seg->durable_size) != atomic_load(&seg->size) ||
           (sealed && (seg->idx_fd >= 0 || seg->tidx_fd >= 0 || seg->idx_evicted));
}

enum mq_err mq_part_flush_tick(struct mq_part *part)
{
    if (!mq_part_writer(part))
        return MQ_OK;
    /* Ticks are serialised: a tick closes the index files of segments it synced, which another tick
     * running at the same time could still be syncing. A caller that waits here usually finds its data
     * already made durable by the tick it waited for. */
    pthread_mutex_lock(&part->flush_mu);
    struct mq_flush f;
    mq_part_flush_begin(part, &f);
    enum mq_err err = f.err;
    if (err == MQ_OK) {
        err = mq_part_flush_end(&f, mq_part_flush_sync(&f));
        mq_part_flush_notify(&f);
    }
    pthread_mutex_unlock(&part->flush_mu);
    return err;
}

void mq_part_flush_begin(struct mq_part *part, struct mq_flush *f)
{
    const struct mq_log_conf *conf = &part->log->conf;
    memset(f, 0, sizeof *f);
    f->part = part;
    f->items = f->few;
    f->ckpt_idx_fd = f->ckpt_tidx_fd = -1;
    mq_fdc_touch(part); /* in use: the last the fd cache closes */

    pthread_mutex_lock(&part->mu);
    if (part->fatal_err != MQ_OK) {
        f->err = part->fatal_err;
        pthread_mutex_unlock(&part->mu);
        return;
    }
    enum mq_err err = mq_part_seal_open(part);
    if (err == MQ_OK && part->backlog_len)
        err = mq_part_write_backlog(part);
    f->write_err = err;
    f->end = part->written_end;
    /* Segments with unsynced bytes: the active one and any sealed since the last tick. A synced sealed
     * segment ends the search, as every older one was synced by the same tick or an earlier one; so a tick
     * must take every unsynced segment, however many the writer rolled during one slow fdatasync. */
    size_t oldest = part->nsegs, nunsynced = 0;
    while (oldest > 0) {
        bool sealed = oldest < part->nsegs;
        bool unsynced = mq_seg_unsynced(part->segs[oldest - 1], sealed);
        if (!unsynced && sealed)
            break;
        nunsynced += unsynced;
        oldest--;
    }
    if (nunsynced > sizeof f->few / sizeof f->few[0] && !(f->items = malloc(nunsynced * sizeof *f->items))) {
        pthread_mutex_unlock(&part->mu);
        f->items = f->few;
        f->err = MQ_ERR_NOMEM; /* nothing was published: the next tick tries again */
        return;
    }
    for (size_t i = part->nsegs; i-- > oldest;) { /* newest first */
        struct mq_segment *seg = part->segs[i];
        bool sealed = i + 1 < part->nsegs;
        if (!mq_seg_unsynced(seg, sealed))
            continue;
        mq_seg_ref(seg);
        f->items[f->nitems++] = (struct mq_sync_item){seg, atomic_load(&seg->size), sealed};
    }
    struct mq_segment *act = mq_part_active(part);
    if (mq_seg_write_index(act) != MQ_OK)
        MQ_WARN("%s: index write failed; it is rebuilt on the next open", act->path_idx);
    f->sync_dir = part->dir_dirty;
    part->dir_dirty = false;
    f->ckpt = part->checkpoint_due || part->bytes_since_checkpoint >= conf->checkpoint_bytes;
    if (f->ckpt) {
        f->rp = (struct mq_rp){0,
                               act->base_offset,
                               atomic_load(&act->size),
                               atomic_load(&act->next_offset),
                               atomic_load(&act->max_ts),
                               act->max_ts_offset};
        /* The recovery point vouches for the index entries written so far, so they are synced first, through
         * descriptors of the flush's own. Index files the fd cache closed are reopened for it (a writeback
         * error not yet reported reaches a descriptor opened later); one that is not open for another reason
         * (unusable, see mq_seg_open_index()) has nothing to sync. */
        enum mq_err cerr = mq_seg_reopen_index(act);
        if (cerr == MQ_OK && ((act->idx_fd >= 0 && (f->ckpt_idx_fd = dup(act->idx_fd)) < 0) ||
                              (act->tidx_fd >= 0 && (f->ckpt_tidx_fd = dup(act->tidx_fd)) < 0)))
            cerr = mq_err_from_errno(errno);
        f->ckpt_err = cerr;
    }
    f->ckpt_bytes = part->bytes_since_checkpoint;
    f->bytes = part->unflushed_bytes;
    part->unflushed_bytes = 0;
    pthread_mutex_unlock(&part->mu);
    f->sync_start_us = mq_mono_us();
}

size_t mq_flush_files(const struct mq_flush *f)
{
    if (f->err != MQ_OK)
        return 0;
    size_t n = f->sync_dir + (f->ckpt ? 2 + (f->ckpt_idx_fd >= 0) + (f->ckpt_tidx_fd >= 0) : 0);
    for (size_t i = 0; i < f->nitems; i++)
        n += 1 + (f->items[i].sealed ? 2 : 0);
    return n;
}

enum mq_err mq_part_flush_sync(struct mq_flush *f)
{
    /* fdatasync without the writer's lock: appends continue meanwhile. Oldest first. */
    struct mq_part *part = f->part;
    atomic_fetch_add(&part->log->fsyncs, (int64_t)f->nitems + f->sync_dir);
    if (f->sync_dir && fsync(mq_part_dir_fd(part)) != 0)
        return mq_err_from_errno(errno);
    for (size_t i = f->nitems; i-- > 0;) {
        struct mq_segment *seg = f->items[i].seg;
        if (fdatasync(mq_seg_fd(seg)) != 0)
            return mq_err_from_errno(errno);
        enum mq_err err = f->items[i].sealed ? mq_seg_sync_index(seg) : MQ_OK;
        if (err != MQ_OK)
            return err;
    }
    return MQ_OK;
}

enum mq_err mq_part_flush_end(struct mq_flush *f, enum mq_err serr)
{
    struct mq_part *part = f->part;
    bool ckpt = f->ckpt;
    if (serr == MQ_OK && ckpt && !f->rp_staged) {
        /* A failure leaves the data durable, only the checkpoint older; mq_rp_write() says why itself, and
         * this says it once until a recovery point is written again (as mq_rp_write()). */
        enum mq_err cerr = f->ckpt_err;
        if (cerr == MQ_OK && ((f->ckpt_idx_fd >= 0 && fdatasync(f->ckpt_idx_fd) != 0) ||
                              (f->ckpt_tidx_fd >= 0 && fdatasync(f->ckpt_tidx_fd) != 0)))
            cerr = mq_err_from_errno(errno);
        if (cerr != MQ_OK) {
            if (!atomic_exchange(&part->rp_failing, true))
                MQ_WARN("%s: recovery point not written: its index files could not be synced (%s); the next "
                        "open scans further",
                        part->dir, mq_strerror(cerr));
            ckpt = false;
        } else if (mq_rp_write(part, &f->rp) != MQ_OK) {
            ckpt = false;
        }
    }
    if (f->ckpt_idx_fd >= 0)
        close(f->ckpt_idx_fd);
    if (f->ckpt_tidx_fd >= 0)
        close(f->ckpt_tidx_fd);
    if (f->nitems || f->sync_dir)
        mq_histo_add(&part->log->flush_histo, mq_mono_us() - f->sync_start_us);

    pthread_mutex_lock(&part->mu);
    if (serr != MQ_OK) {
        /* After a failed fdatasync the kernel may have dropped the dirty pages: the only safe answer is to
         * stop writing this partition; the next open recovers from what is on disk. */
        part->fatal_err = MQ_ERR_IO;
        MQ_ERROR("%s: fdatasync failed (%s): partition stopped; restart to recover", part->dir,
                 mq_strerror(serr));
    } else {
        for (size_t i = 0; i < f->nitems; i++) {
            struct mq_segment *seg = f->items[i].seg;
            if (f->items[i].size > atomic_load(&seg->durable_size))
                atomic_store(&seg->durable_size, f->items[i].size);
            if (f->items[i].sealed) {
                mq_seg_close_index(seg);
                seg->idx_evicted = false; /* synced: by the files reopened, or by the syncfs */
            }
        }
        if (f->end > atomic_load(&part->durable_end))
            atomic_store(&part->durable_end, f->end);
        if (ckpt) {
            part->bytes_since_checkpoint -= f->ckpt_bytes;
            /* a roll since the capture asks for a checkpoint in its new segment: keep asking */
            part->checkpoint_due = mq_part_active(part)->base_offset != f->rp.seg_base;
        }
    }
    pthread_cond_broadcast(&part->durable_cv);
    int64_t durable = atomic_load(&part->durable_end);
    pthread_mutex_unlock(&part->mu);
    for (size_t i = 0; i < f->nitems; i++)
        mq_seg_unref(f->items[i].seg);
    if (f->items != f->few)
        free(f->items);

    f->notify = serr == MQ_OK && f->nitems > 0;
    f->durable = durable;
    if (serr != MQ_OK)
        return MQ_ERR_IO;
    return f->write_err;
}

void mq_part_flush_notify(struct mq_flush *f)
{
    if (f->notify)
        mq_log_durable_notify(f->part->log, f->part, f->durable);
}

enum mq_err mq_part_flush(struct mq_part *part)
{
    return mq_part_flush_tick(part);
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

void mq_part_set_compression(struct mq_part *part, int codec)
{
    pthread_mutex_lock(&part->mu);
    part->codec = codec;
    pthread_mutex_unlock(&part->mu);
}

void mq_part_set_recompact_after(struct mq_part *part, int64_t ms)
{
    pthread_mutex_lock(&part->mu);
    part->rc_after = ms;
    pthread_mutex_unlock(&part->mu);
}

int mq_part_compression(struct mq_part *part)
{
    pthread_mutex_lock(&part->mu);
    int codec = part->codec;
    pthread_mutex_unlock(&part->mu);
    return codec;
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
    /* Asked before the writer's lock: the holder may take its own locks. The hold only rises, so one read
     * a moment early keeps at most a little more. */
    int64_t hold = mq_log_hold(part->log, part);
    pthread_mutex_lock(&part->mu);
    struct mq_retention ret = part->ret;
    if (ret.ms <= 0 && ret.bytes <= 0) {
        bool was_held = part->ret_held;
        part->ret_held = false;
        pthread_mutex_unlock(&part->mu);
        if (was_held)
            MQ_INFO("%s: retention no longer held back (retention is off)", part->dir);
        return MQ_OK;
    }
    int64_t total = 0;
    for (size_t i = 0; i < part->nsegs; i++)
        total += atomic_load(&part->segs[i]->size);
    size_t ndel = 0;
    bool held = false;
    int64_t held_base = -1;
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
        if (atomic_load(&seg->next_offset) > hold) {
            /* It holds records the holder still needs: this and every later segment stay. */
            held = true;
            held_base = seg->base_offset;
            break;
        }
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
    bool was_held = part->ret_held;
    part->ret_held = held;
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
    /* Once per change, not per check: a forwarder in a long outage would otherwise repeat it every pass. */
    if (held && !was_held)
        MQ_WARN("%s: retention held back at segment %020" PRId64 ": records from offset %" PRId64
                " are not forwarded yet",
                part->dir, held_base, hold);
    else if (!held && was_held)
        MQ_INFO("%s: retention no longer held back", part->dir);
    /* Unlinking happens outside both locks: appends and reads go on. Open slices keep their fds. */
    for (size_t i = 0; i < ndel; i++) {
        MQ_INFO("%s: retention deleted segment %020" PRId64, part->dir, gone[i]->base_offset);
        mq_budget_add(part->log, -atomic_load(&gone[i]->size));
        mq_seg_unlink(gone[i]);
        mq_seg_unref(gone[i]);
    }
    free(gone);
    if (deleted)
        *deleted = (int)ndel;
    atomic_fetch_add(&part->log->retention_deleted_segments, (int64_t)ndel);
    return err;
}

/* ---- the disk budget's view (budget.c decides) ---- */

int64_t mq_part_disk_bytes(struct mq_part *part)
{
    int64_t total = 0;
    pthread_rwlock_rdlock(&part->segs_lock);
    for (size_t i = 0; i < part->nsegs; i++)
        total += atomic_load(&part->segs[i]->size);
    pthread_rwlock_unlock(&part->segs_lock);
    return total;
}

bool mq_part_usage_within(struct mq_part *part, const struct timespec *deadline, int64_t *bytes, int64_t *lag)
{
    if (!mq_rwlock_rdlock_before(&part->segs_lock, deadline))
        return false;
    int64_t total = 0;
    for (size_t i = 0; i < part->nsegs; i++)
        total += atomic_load(&part->segs[i]->size);
    pthread_rwlock_unlock(&part->segs_lock);
    if (!mq_mutex_lock_before(&part->mu, deadline))
        return false;
    int64_t l = part->next_offset - atomic_load(&part->durable_end);
    pthread_mutex_unlock(&part->mu);
    *bytes = total;
    *lag = l > 0 ? l : 0;
    return true;
}

int64_t mq_part_durable_lag(struct mq_part *part)
{
    pthread_mutex_lock(&part->mu);
    int64_t lag = part->next_offset - atomic_load(&part->durable_end);
    pthread_mutex_unlock(&part->mu);
    return lag > 0 ? lag : 0;
}

/* Whether the active segment may be rolled away: everything written to it is durable (as retention asks).
 * A backlog does not stop it: its batches follow written_end and go to the new segment; it is often the
 * very batch the budget refused that waits there for the room. */
static bool mq_part_active_droppable(struct mq_part *part)
{
    return atomic_load(&mq_part_active(part)->size) > 0 &&
           atomic_load(&part->durable_end) >= part->written_end;
}

static void mq_seg_facts_of(struct mq_part *part, struct mq_seg_facts *f)
{
    struct mq_segment *seg = part->segs[0];
    f->base = seg->base_offset;
    f->next = atomic_load(&seg->next_offset);
    f->size = atomic_load(&seg->size);
    f->max_ts = mq_seg_max_ts(seg);
    f->active = part->nsegs == 1;
}

bool mq_part_first_segment(struct mq_part *part, struct mq_seg_facts *f)
{
    if (!mq_part_writer(part))
        return false;
    pthread_mutex_lock(&part->mu);
    bool ok = part->nsegs > 1 || (part->nsegs == 1 && atomic_load(&mq_part_active(part)->size) > 0);
    if (ok)
        mq_seg_facts_of(part, f);
    pthread_mutex_unlock(&part->mu);
    return ok;
}

enum mq_err mq_part_drop_first(struct mq_part *part, int64_t base, struct mq_seg_facts *f)
{
    pthread_mutex_lock(&part->mu);
    enum mq_err err = MQ_OK;
    if (part->nsegs == 0 || part->segs[0]->base_offset != base ||
        (part->nsegs == 1 && !mq_part_active_droppable(part)))
        err = MQ_ERR_BUSY;
    if (err == MQ_OK) {
        mq_seg_facts_of(part, f);
        if (part->nsegs == 1)
            err = mq_part_roll(part);
    }
    struct mq_segment *gone = NULL;
    if (err == MQ_OK) {
        pthread_rwlock_wrlock(&part->segs_lock);
        gone = part->segs[0];
        memmove(part->segs, part->segs + 1, (part->nsegs - 1) * sizeof *part->segs);
        part->nsegs--;
        pthread_rwlock_unlock(&part->segs_lock);
    }
    pthread_mutex_unlock(&part->mu);
    if (gone) { /* as retention: outside the locks, open slices keep their fds */
        mq_seg_unlink(gone);
        mq_seg_unref(gone);
    }
    return err;
}

/* ---- opening and closing ---- */

void mq_part_free(struct mq_part *part)
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
    pthread_mutex_destroy(&part->dir_mu);
    pthread_mutex_destroy(&part->rewrite_mu);
    pthread_rwlock_destroy(&part->segs_lock);
    pthread_mutex_destroy(&part->mu);
    pthread_mutex_destroy(&part->flush_mu);
    pthread_mutex_destroy(&part->hint_mu);
    pthread_cond_destroy(&part->durable_cv);
    free(part->topic);
    free(part->dir);
    free(part);
}

enum mq_err mq_part_open(struct mq_log *log, const char *topic, int32_t id, struct mq_part **partp)
{
    struct mq_part *part = calloc(1, sizeof *part);
    if (!part)
        return MQ_ERR_NOMEM;
    part->log = log;
    part->id = id;
    part->dir_fd = -1;
    pthread_mutex_init(&part->dir_mu, NULL);
    pthread_mutex_init(&part->rewrite_mu, NULL);
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
    atomic_init(&part->rp_seg_base, -1);
    part->rc_after = -1;
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
    struct stat st_part, st_log;
    part->on_log_fs = fstat(part->dir_fd, &st_part) == 0 && log->sync_fd >= 0 &&
                      fstat(log->sync_fd, &st_log) == 0 && st_part.st_dev == st_log.st_dev;
    enum mq_err err;
    if (mq_part_writer(part)) {
        struct mq_bases bases = {0};
        err = mq_recompact_recover(part);
        if (err == MQ_OK)
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
    if (mq_part_writer(part))
        atomic_store(&mq_part_active(part)->writable, true);
    pthread_mutex_lock(&log->fdc_mu);
    part->fdc_ready = true;
    pthread_mutex_unlock(&log->fdc_mu);
    mq_fdc_touch(part);
    *partp = part;
    return MQ_OK;
}

bool mq_part_close_stage(struct mq_part *part)
{
    if (!mq_part_writer(part) || part->nsegs == 0 || !part->on_log_fs || part->fatal_err != MQ_OK ||
        mq_part_has_unflushed(part))
        return false;
    struct mq_segment *act = mq_part_active(part);
    /* the final time entry is an ordinary entry for an active segment: harmless if writing resumes */
    bool ok = mq_seg_seal_index(act) == MQ_OK;
    if (ok) {
        struct mq_rp rp = {MQ_RP_CLEAN,       act->base_offset,          atomic_load(&act->size),
                           part->next_offset, atomic_load(&act->max_ts), act->max_ts_offset};
        ok = mq_rp_stage(part, &rp) == MQ_OK;
    }
    /* 10,000 partitions must not all hold theirs until the syncfs: it syncs the files by inode anyway */
    for (size_t i = 0; i < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        if (atomic_load(&seg->refs) != 1)
            continue; /* a reader's slice still uses it (closed when released) */
        if (seg->fd >= 0)
            close(seg->fd);
        seg->fd = -1;
        if (seg->idx_fd >= 0 || seg->tidx_fd >= 0) {
            mq_seg_close_index(seg);
            seg->idx_evicted = true; /* reopened if the slow close below still needs them */
        }
    }
    if (part->dir_fd >= 0)
        close(part->dir_fd);
    part->dir_fd = -1;
    return ok;
}

enum mq_err mq_part_close(struct mq_part *part, bool clean)
{
    if (!part)
        return MQ_OK;
    mq_fdc_forget(part); /* closing: the fd cache must not close what the close still uses */
    enum mq_err err = MQ_OK;
    if (mq_part_writer(part) && part->nsegs > 0) {
        err = mq_part_flush_tick(part);
        if (err == MQ_OK && part->backlog_len == 0 && clean) {
            struct mq_segment *act = mq_part_active(part);
            err = mq_seg_seal_index(act);
            /* the final time entry is an ordinary entry for an active segment: harmless if writing resumes */
            if (err == MQ_OK)
                err = mq_seg_sync_index(act);
            if (err == MQ_OK) {
                struct mq_rp rp = {MQ_RP_CLEAN,       act->base_offset,          atomic_load(&act->size),
                                   part->next_offset, atomic_load(&act->max_ts), act->max_ts_offset};
                /* a failure is logged there; the data is durable, only the next open scans more */
                mq_rp_write(part, &rp);
            }
        }
    }
    mq_part_free(part);
    return err;
}
