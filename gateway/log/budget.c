/*
 * budget.c - the disk budget: the one place that decides how many bytes the log may keep on disk, and what
 * goes first when it holds more.
 *
 * The budget has two limits, either or both set:
 *   log.max_disk_bytes  the total of the segment (.log) files of every partition open in this log
 *                       (partitions never opened since the start are not counted; mqlogd opens a partition
 *                       when it first writes or serves it). Index files and recovery points are not counted.
 *   log.min_free_bytes  the space left free on the file system of the data directory (statvfs f_bavail *
 *                       f_frsize: what an unprivileged writer may still use).
 *
 * It holds at every write, not on a timer: before the writer puts a batch into a segment file it asks
 * mq_budget_admit(), which admits the batch only if the segment bytes stay at or below max_disk_bytes and
 * the free space, asked of the file system right then, stays at or above min_free_bytes plus a reserve of
 * MQ_BUDGET_RESERVE_BLOCKS blocks (64 KiB with 4 KiB blocks). The reserve is the budget's one slack and it is
 * on the safe side: it covers what comes after a batch without its own check (the partial block at the end
 * of the file, the index entries and the recovery point the next flush writes, the ingest guard's ring,
 * the catalog), so free space stays at or above min_free_bytes. A batch that does not fit is refused as
 * a full disk refuses it (MQ_ERR_NOSPC): the partition keeps it in its backlog, and the flusher thread
 * makes a pass at once that deletes the oldest segments until the refused batches fit; then the backlogs are
 * written. Readers and the holder see the same log as ever, only shorter at the front. A rewrite of a closed
 * segment (recompact.c) is a second copy until its swap: it reserves room for it the same way
 * (mq_budget_reserve()), and waits for a later pass when there is none; nothing is deleted for it.
 *
 * A pass (also every second, and after retention) deletes whole segments, one at a time, oldest first across
 * all partitions by their newest record's timestamp (a partition's only segment is rolled first, as time
 * retention does, once everything written to it is durable: the pass flushes it first rather than pass it
 * over for newer data):
 *   1. segments that no retention hold needs (mq_log_set_hold()), then
 *   2. only when none of those is left, segments still held for a forwarder. Their records are lost to it:
 *      each such deletion is logged as an error naming the partition, the offsets and the count of records
 *      dropped unforwarded, and counted in mq_log_stats(), never hidden.
 * Each deletion is counted under the limit that asked for it (max_disk_bytes first when both do). Segments
 * can only go from the front of a partition, so within one partition the unheld ones (those wholly below
 * the hold) always come first.
 *
 * When nothing can be deleted (every partition holds only an active segment that is empty or not yet
 * durable, or the file system is filled by others), refused batches stay in the backlogs, the partitions
 * fill up to max_pending_bytes and ingestion is pushed back exactly as on a full disk; the backlogs are
 * retried at every flush tick, so writing resumes by itself as soon as room returns. Both are logged once.
 *
 * Locks: space_mu guards the counts of the write-time check and is taken under part->mu (by the writer) or
 * alone; budget_mu serialises passes, which take each partition's mu in turn and never hold space_mu then.
 */
#include "log/log_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "util/diag.h"

void mq_log_stats(struct mq_log *log, struct mq_log_stats *st)
{
    st->disk_bytes = atomic_load(&log->disk_bytes);
    st->cap_deleted_segments = atomic_load(&log->early_deleted[MQ_BUDGET_CAP]);
    st->free_deleted_segments = atomic_load(&log->early_deleted[MQ_BUDGET_FREE]);
    st->early_deleted_segments = st->cap_deleted_segments + st->free_deleted_segments;
    st->cap_deleted_bytes = atomic_load(&log->early_deleted_bytes[MQ_BUDGET_CAP]);
    st->free_deleted_bytes = atomic_load(&log->early_deleted_bytes[MQ_BUDGET_FREE]);
    st->dropped_unforwarded = atomic_load(&log->dropped_unforwarded);
    st->budget_refused_writes = atomic_load(&log->budget_refused);
    st->budget_blocked = atomic_load(&log->budget_stuck);
    st->fsyncs = atomic_load(&log->fsyncs);
    st->retention_deleted_segments = atomic_load(&log->retention_deleted_segments);
    st->heartbeat_ms = atomic_load(&log->heartbeat_ms);
    st->recompacted_segments = atomic_load(&log->recompacted_segments);
    st->recompact_saved_bytes = atomic_load(&log->recompact_saved_bytes);
    mq_log_usage(log, &st->open_bytes, &st->durable_lag);
}

void mq_log_flush_histo(struct mq_log *log, struct mq_histo_snap *snap)
{
    mq_histo_read(&log->flush_histo, snap);
}

/* Free bytes of the data directory's file system and its reserve (MQ_BUDGET_RESERVE_BLOCKS blocks); false
 * when statvfs fails (errno set). */
static bool mq_budget_free(struct mq_log *log, int64_t *free_bytes, int64_t *reserve)
{
    struct statvfs vfs;
    int r = log->lock_fd >= 0 ? fstatvfs(log->lock_fd, &vfs) : statvfs(log->dir, &vfs);
    if (r != 0)
        return false;
    *free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    *reserve = MQ_BUDGET_RESERVE_BLOCKS * (int64_t)(vfs.f_frsize ? vfs.f_frsize : 4096);
    return true;
}

static void mq_log_kick(struct mq_log *log)
{
    pthread_mutex_lock(&log->mu);
    log->kick = true;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

/* Whether `size` more bytes fit in the budget now (under space_mu). */
static bool mq_budget_fits(struct mq_log *log, int64_t size)
{
    const struct mq_log_conf *conf = &log->conf;
    bool fits =
        conf->max_disk_bytes <= 0 || log->budget_used + log->budget_inflight + size <= conf->max_disk_bytes;
    if (fits && conf->min_free_bytes > 0) {
        /* Asked of the file system at every write (a cheap call next to the write): other writers on it
         * count too. Writes admitted but not yet made are not in its answer. */
        int64_t free_bytes, reserve;
        if (!mq_budget_free(log, &free_bytes, &reserve))
            MQ_DEBUG("%s: statvfs: %s; free space not checked for this write", log->dir, MQ_STRERROR(errno));
        else
            fits = free_bytes - log->budget_inflight - size - reserve >= conf->min_free_bytes;
    }
    return fits;
}

bool mq_budget_reserve(struct mq_log *log, int64_t size)
{
    pthread_mutex_lock(&log->space_mu);
    bool fits = mq_budget_fits(log, size);
    if (fits)
        log->budget_inflight += size;
    pthread_mutex_unlock(&log->space_mu);
    return fits;
}

enum mq_err mq_budget_admit(struct mq_log *log, int64_t size)
{
    pthread_mutex_lock(&log->space_mu);
    bool fits = mq_budget_fits(log, size);
    bool resumed = false;
    if (fits) {
        log->budget_inflight += size;
        resumed = log->budget_refusing;
        log->budget_refusing = false;
    } else {
        log->budget_want += size;
        log->budget_refusing = log->budget_refusing || atomic_load(&log->budget_stuck);
    }
    pthread_mutex_unlock(&log->space_mu);
    if (resumed)
        MQ_INFO("%s: disk budget: room again, writes resume", log->dir);
    if (fits)
        return MQ_OK;
    atomic_fetch_add(&log->budget_refused, 1);
    atomic_store(&log->budget_due, true);
    mq_log_kick(log);
    return MQ_ERR_NOSPC;
}

void mq_budget_wrote(struct mq_log *log, int64_t size, bool written)
{
    pthread_mutex_lock(&log->space_mu);
    log->budget_inflight -= size;
    if (written)
        log->budget_used += size;
    pthread_mutex_unlock(&log->space_mu);
}

void mq_budget_add(struct mq_log *log, int64_t bytes)
{
    if (!mq_budget_on(&log->conf))
        return;
    pthread_mutex_lock(&log->space_mu);
    log->budget_used += bytes;
    pthread_mutex_unlock(&log->space_mu);
}

/* The partition whose first segment goes next: unheld before held, then the oldest newest record. -1 when
 * no partition has a segment that can go now. */
static ssize_t mq_budget_pick(struct mq_part **parts, size_t n, const int64_t *holds, const bool *skip,
                              struct mq_seg_facts *best)
{
    ssize_t pick = -1;
    bool pick_held = false;
    for (size_t i = 0; i < n; i++) {
        struct mq_seg_facts f;
        if (skip[i] || !mq_part_first_segment(parts[i], &f))
            continue;
        bool held = f.next > holds[i];
        if (pick < 0 || (pick_held && !held) || (held == pick_held && f.max_ts < best->max_ts)) {
            pick = (ssize_t)i;
            pick_held = held;
            *best = f;
        }
    }
    return pick;
}

/* What a pass has to achieve, and how far it is. */
struct mq_budget_goal {
    int64_t cap, min_free;
    int64_t used;      /* segment bytes, with those admitted and not yet written */
    int64_t free;      /* free bytes (-1: unknown), less those admitted and not yet written */
    int64_t reserve;   /* see MQ_BUDGET_RESERVE_BLOCKS */
    int64_t want;      /* bytes refused since the last pass */
    int64_t want_free; /* the part of want the free space must take too */
};

/* The limit that asks for a deletion now, or -1 when the budget holds (with room for the refused writes). */
static int mq_budget_over(const struct mq_budget_goal *g)
{
    if (g->cap > 0 && g->used + g->want > g->cap)
        return MQ_BUDGET_CAP;
    if (g->min_free > 0 && g->free >= 0 && g->free - g->want_free - g->reserve < g->min_free)
        return MQ_BUDGET_FREE;
    return -1;
}

static void mq_budget_log_deletion(struct mq_log *log, struct mq_part *part, int cause,
                                   const struct mq_budget_goal *g, const struct mq_seg_facts *f, int64_t hold)
{
    char why[160];
    if (cause == MQ_BUDGET_CAP)
        snprintf(why, sizeof why, "disk cap log.max_disk_bytes=%" PRId64 " reached", g->cap);
    else
        snprintf(why, sizeof why,
                 "free space below log.min_free_bytes=%" PRId64 " (%" PRId64 " bytes free, %" PRId64
                 " wanted)",
                 g->min_free, g->free, g->want_free);
    int64_t from = hold > f->base ? hold : f->base;
    if (f->next > from) {
        int64_t dropped = f->next - from;
        atomic_fetch_add(&log->dropped_unforwarded, dropped);
        MQ_ERROR("%s: %s: deleted segment %020" PRId64 " (offsets %" PRId64 "-%" PRId64 ") holding %" PRId64
                 " records not yet forwarded; they are lost to the forwarder (%" PRId64
                 " bytes, newest timestamp %" PRId64 ")",
                 part->dir, why, f->base, f->base, f->next - 1, dropped, f->size, f->max_ts);
    } else {
        MQ_WARN("%s: %s: deleted segment %020" PRId64 " (offsets %" PRId64 "-%" PRId64 ", %" PRId64
                " bytes, newest timestamp %" PRId64 ") before its retention",
                part->dir, why, f->base, f->base, f->next - 1, f->size, f->max_ts);
    }
}

bool mq_log_budget(struct mq_log *log, struct mq_part **parts, size_t n)
{
    const struct mq_log_conf *conf = &log->conf;
    if (!mq_budget_on(conf))
        return false;
    pthread_mutex_lock(&log->budget_mu);
    /* Count anew, under space_mu so that no write is counted twice or lost: a write admitted before is in
     * budget_inflight until mq_budget_wrote(), and in the segment sizes from a moment before that; the
     * overlap counts it twice for a moment, which only keeps more room. */
    struct mq_budget_goal g = {conf->max_disk_bytes, conf->min_free_bytes, 0, -1, 0, 0, 0};
    pthread_mutex_lock(&log->space_mu);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += mq_part_disk_bytes(parts[i]);
    log->budget_used = total;
    g.used = total + log->budget_inflight;
    g.want = log->budget_want;
    log->budget_want = 0;
    int64_t inflight = log->budget_inflight;
    pthread_mutex_unlock(&log->space_mu);
    atomic_store(&log->disk_bytes, total);
    if (g.min_free > 0 && mq_budget_free(log, &g.free, &g.reserve)) {
        g.free -= inflight;
        g.want_free = g.want;
    }
    int cause = mq_budget_over(&g);
    if (cause < 0) {
        atomic_store(&log->budget_stuck, false);
        pthread_mutex_unlock(&log->budget_mu);
        return g.want > 0;
    }
    /* The holds are asked once per pass: a forwarder that moves on meanwhile only makes the count of
     * dropped records an upper bound. */
    int64_t *holds = malloc((n ? n : 1) * sizeof *holds);
    bool *skip = calloc(n ? n : 1, sizeof *skip);
    if (!holds || !skip) {
        free(holds);
        free(skip);
        pthread_mutex_unlock(&log->budget_mu);
        return false; /* the next check tries again */
    }
    for (size_t i = 0; i < n; i++)
        holds[i] = mq_log_hold(log, parts[i]);
    bool deleted = false;
    while ((cause = mq_budget_over(&g)) >= 0) {
        struct mq_seg_facts f;
        ssize_t i = mq_budget_pick(parts, n, holds, skip, &f);
        if (i < 0)
            break;
        struct mq_part *part = parts[i];
        bool active = f.active;
        enum mq_err err = mq_part_drop_first(part, f.base, &f);
        if (err == MQ_ERR_BUSY && active) {
            /* The oldest data is a partition's only segment, written but not yet durable: passing it over
             * would delete newer data elsewhere. A flush makes it durable (and tries the backlog, which
             * waits again if it still does not fit). */
            (void)mq_part_flush_tick(part);
            err = mq_part_drop_first(part, f.base, &f);
        }
        if (err != MQ_OK) {
            skip[i] = true; /* changed meanwhile or cannot roll now: the next check sees it again */
            continue;
        }
        deleted = true;
        mq_budget_add(log, -f.size);
        atomic_fetch_add(&log->early_deleted[cause], 1);
        atomic_fetch_add(&log->early_deleted_bytes[cause], f.size);
        mq_budget_log_deletion(log, part, cause, &g, &f, holds[i]);
        total -= f.size;
        g.used -= f.size;
        /* Freed once no reader holds the file open any more; counted as freed now, so that a pinned file
         * does not make the pass delete on and on. The next write asks the file system again. */
        if (g.free >= 0)
            g.free += f.size;
    }
    atomic_store(&log->disk_bytes, total);
    bool stuck = cause >= 0;
    bool was_stuck = atomic_exchange(&log->budget_stuck, stuck);
    if (stuck && !was_stuck) {
        if (cause == MQ_BUDGET_CAP)
            MQ_ERROR("disk cap log.max_disk_bytes=%" PRId64 " reached (%" PRId64 " bytes, %" PRId64
                     " more wanted) with no segment left that can be deleted now: writes wait, ingestion "
                     "is pushed back",
                     g.cap, g.used, g.want);
        else
            MQ_ERROR("%s: free space below log.min_free_bytes=%" PRId64 " (%" PRId64
                     " bytes free) with no segment left that can be deleted now: writes wait, ingestion "
                     "is pushed back",
                     log->dir, g.min_free, g.free);
    }
    free(holds);
    free(skip);
    pthread_mutex_unlock(&log->budget_mu);
    return g.want > 0 && deleted && !stuck;
}
