/*
 * read.c - one partition's read side: slices of whole batches, offsets, time lookups and statistics.
 *
 * Readers take no writer lock: they find and reference a segment under segs_lock for reading and bound what
 * they scan by the segment's durable size (see log_int.h). A reader process first refreshes its view of the
 * files (recover.c).
 */
#include "log/log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

static int64_t mq_part_visible_end(struct mq_part *part);

enum mq_err mq_part_offsets(struct mq_part *part, int64_t *start, int64_t *end)
{
    if (!mq_part_writer(part) && mq_mono_ms() - atomic_load(&part->reader_refresh_mono) >= 100) {
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
    struct mq_scan scratch;
    mq_scan_init(&scratch, -1, 0, 0);
    enum mq_err err = mq_part_read_with(part, offset, max_bytes, slice, &scratch);
    mq_scan_free(&scratch);
    return err;
}

enum mq_err mq_part_read_with(struct mq_part *part, int64_t offset, size_t max_bytes, struct mq_slice *slice,
                              struct mq_scan *scratch)
{
    memset(slice, 0, sizeof *slice);
    slice->fd = -1;
    int64_t end = mq_part_visible_end(part);
    if (!mq_part_writer(part) && offset >= end) {
        enum mq_err err =
            mq_part_reader_refresh(part, mq_mono_ms() - atomic_load(&part->reader_refresh_mono) >= 100);
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

    struct mq_scan *sc = scratch;
    mq_scan_reset(sc, fd, pos, limit);
    struct mq_batch_info bi;
    int64_t first_pos = -1, stop = pos, first_off = offset, next_off = offset;
    enum mq_scan_res r;
    while ((r = mq_scan_next(sc, false, &bi, NULL)) == MQ_SCAN_BATCH) {
        int64_t bstart = sc->pos - (int64_t)mq_batch_size(&bi);
        if (first_pos < 0) {
            if (mq_batch_last_offset(&bi) < offset)
                continue;
            first_pos = bstart;
            first_off = bi.base_offset;
        } else if ((size_t)(sc->pos - first_pos) > max_bytes) {
            break;
        }
        stop = sc->pos;
        next_off = mq_batch_last_offset(&bi) + 1;
    }
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

enum mq_err mq_part_bytes_from(struct mq_part *part, int64_t offset, int64_t *bytes)
{
    *bytes = 0;
    struct mq_slice s;
    enum mq_err err = mq_part_read(part, offset, 1, &s);
    if (err != MQ_OK || !s.ref)
        return err; /* MQ_OK without a segment: nothing visible at or after offset */
    /* The rest of the slice's segment, then every later one, each as far as readers may see it. */
    struct mq_segment *seg = s.ref;
    int64_t total = atomic_load(&seg->durable_size) - s.pos;
    pthread_rwlock_rdlock(&part->segs_lock);
    for (size_t i = 0; i < part->nsegs; i++)
        if (part->segs[i]->base_offset > seg->base_offset)
            total += atomic_load(&part->segs[i]->durable_size);
    pthread_rwlock_unlock(&part->segs_lock);
    mq_slice_release(&s);
    *bytes = total > 0 ? total : 0;
    return MQ_OK;
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
