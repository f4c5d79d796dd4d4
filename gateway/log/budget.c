/*
 * budget.c - the disk budget: the one place that decides how many bytes the log may keep on disk, and what
 * goes first when it holds more.
 *
 * The budget is log.max_disk_bytes: the total of the segment files of every partition open in this log
 * (partitions never opened since the start are not counted; mqlogd opens a partition when it first writes
 * or serves it). Retention (partition.c) deletes what is old; the budget deletes what does not fit. When the
 * total passes the cap, the maintenance thread deletes whole segments, one at a time, oldest first across
 * all partitions by their newest record's timestamp (a partition's only segment is rolled first, as time
 * retention does):
 *   1. segments that no retention hold needs (mq_log_set_hold()), then
 *   2. only when none of those is left, segments still held for a forwarder. Their records are lost to it:
 *      each such deletion is logged as an error naming the partition, the offsets and the count of records
 *      dropped unforwarded, and counted in mq_log_stats(), never hidden.
 * Segments can only go from the front of a partition, so within one partition the unheld ones (those
 * wholly below the hold) always come first.
 */
#include "log/log_int.h"

#include <inttypes.h>
#include <stdlib.h>

#include "util/diag.h"

void mq_log_stats(struct mq_log *log, struct mq_log_stats *st)
{
    st->disk_bytes = atomic_load(&log->disk_bytes);
    st->early_deleted_segments = atomic_load(&log->early_deleted_segments);
    st->dropped_unforwarded = atomic_load(&log->dropped_unforwarded);
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

void mq_log_budget(struct mq_log *log, struct mq_part **parts, size_t n)
{
    int64_t cap = log->conf.max_disk_bytes;
    pthread_mutex_lock(&log->budget_mu);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += mq_part_disk_bytes(parts[i]);
    atomic_store(&log->disk_bytes, total);
    if (cap <= 0 || total <= cap) {
        log->budget_stuck = false;
        pthread_mutex_unlock(&log->budget_mu);
        return;
    }
    /* The holds are asked once per pass: a forwarder that moves on meanwhile only makes the count of
     * dropped records an upper bound. */
    int64_t *holds = malloc((n ? n : 1) * sizeof *holds);
    bool *skip = calloc(n ? n : 1, sizeof *skip);
    if (!holds || !skip) {
        free(holds);
        free(skip);
        pthread_mutex_unlock(&log->budget_mu);
        return; /* the next check tries again */
    }
    for (size_t i = 0; i < n; i++)
        holds[i] = mq_log_hold(log, parts[i]);
    while (total > cap) {
        struct mq_seg_facts f;
        ssize_t i = mq_budget_pick(parts, n, holds, skip, &f);
        if (i < 0)
            break;
        struct mq_part *part = parts[i];
        enum mq_err err = mq_part_drop_first(part, f.base, &f);
        if (err != MQ_OK) {
            skip[i] = true; /* changed meanwhile or cannot roll now: the next check sees it again */
            continue;
        }
        total -= f.size;
        atomic_fetch_add(&log->early_deleted_segments, 1);
        int64_t from = holds[i] > f.base ? holds[i] : f.base;
        if (f.next > from) {
            int64_t dropped = f.next - from;
            atomic_fetch_add(&log->dropped_unforwarded, dropped);
            MQ_ERROR("%s: disk cap log.max_disk_bytes=%" PRId64 " reached: deleted segment %020" PRId64
                     " (offsets %" PRId64 "-%" PRId64 ") holding %" PRId64 " records not yet forwarded;"
                     " they are lost to the forwarder",
                     part->dir, cap, f.base, f.base, f.next - 1, dropped);
        } else {
            MQ_WARN("%s: disk cap log.max_disk_bytes=%" PRId64 " reached: deleted segment %020" PRId64
                    " (offsets %" PRId64 "-%" PRId64 ") before its retention",
                    part->dir, cap, f.base, f.base, f.next - 1);
        }
    }
    atomic_store(&log->disk_bytes, total);
    bool stuck = total > cap;
    if (stuck && !log->budget_stuck)
        MQ_ERROR("disk cap log.max_disk_bytes=%" PRId64 " exceeded (%" PRId64
                 " bytes) with no segment left that can be deleted now",
                 cap, total);
    log->budget_stuck = stuck;
    free(holds);
    free(skip);
    pthread_mutex_unlock(&log->budget_mu);
}
