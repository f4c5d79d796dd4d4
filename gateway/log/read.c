/*
 * read.c - one partition's read side: slices of whole batches, offsets, time lookups and statistics.
 *
 * Readers take no writer lock: they find and reference a segment under segs_lock for reading and bound what
 * they scan by the segment's durable size (see log_int.h). A reader process first refreshes its view of the
 * files (recover.c).
 *
 * Damage hides only itself (issue 11): a read skips batches that fail their CRC and the unreadable rest of a
 * segment, reporting each once, so that every reader (Kafka fetches served by sendfile, the cursor under
 * consume, replay and the forwarder) sees the same records. A batch's CRC is checked once per open log:
 * the writer marks what it writes as good, a read checks what is not marked yet and marks it.
 */
#include "log/log_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/diag.h"
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

/* ---- the CRC cache of a segment (struct mq_segment) ---- */

#define MQ_CHECKED_MAX 4096 /* ranges remembered per segment; past it, batches are checked again */

/* The range of v[0..n) (sorted, disjoint) that holds pos, or -1. */
static ssize_t mq_ranges_find(const struct mq_seg_range *v, size_t n, int64_t pos)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].hi <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].lo <= pos ? (ssize_t)lo : -1;
}

/* Adds [lo, hi) to v[0..n), merging it with the ranges it touches. false when it could not be remembered
 * (no memory, or too many ranges): the bytes are then simply checked again by a later read. */
static bool mq_ranges_add(struct mq_seg_range **v, size_t *n, size_t *cap, int64_t lo, int64_t hi)
{
    if (*n > 0 && (*v)[*n - 1].hi == lo) { /* the writer's append, and a reader going forward */
        (*v)[*n - 1].hi = hi;
        return true;
    }
    size_t i = 0;
    while (i < *n && (*v)[i].hi < lo)
        i++;
    size_t j = i;
    while (j < *n && (*v)[j].lo <= hi) {
        if ((*v)[j].lo < lo)
            lo = (*v)[j].lo;
        if ((*v)[j].hi > hi)
            hi = (*v)[j].hi;
        j++;
    }
    if (j > i) { /* ranges i..j-1 become one */
        (*v)[i] = (struct mq_seg_range){lo, hi};
        memmove(*v + i + 1, *v + j, (*n - j) * sizeof **v);
        *n -= j - i - 1;
        return true;
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1; /* one range is the usual case: the writer appends */
        struct mq_seg_range *nv = ncap <= MQ_CHECKED_MAX ? realloc(*v, ncap * sizeof *nv) : NULL;
        if (!nv)
            return false;
        *v = nv;
        *cap = ncap;
    }
    memmove(*v + i + 1, *v + i, (*n - i) * sizeof **v);
    (*v)[i] = (struct mq_seg_range){lo, hi};
    (*n)++;
    return true;
}

void mq_seg_mark_checked(struct mq_segment *seg, int64_t lo, int64_t hi)
{
    pthread_mutex_lock(&seg->check_mu);
    mq_ranges_add(&seg->checked, &seg->nchecked, &seg->checked_cap, lo, hi);
    pthread_mutex_unlock(&seg->check_mu);
}

void mq_seg_check_free(struct mq_segment *seg)
{
    free(seg->checked);
    free(seg->bad);
    seg->checked = seg->bad = NULL;
    seg->nchecked = seg->nbad = seg->checked_cap = seg->bad_cap = 0;
}

/*
 * Decides whether the batch at bstart (header *bi, the scanner just past it) may be served: 1 when it is
 * known good or its CRC checks out now, 0 when its CRC fails (reported the first time, then skipped for
 * good), -1 on a read error. *ok gets the cached good range that holds it, so that the batches after it need
 * no lock; *run gathers the batches this walk checked, remembered at its end (mq_seg_mark_checked()).
 */
static int mq_seg_check(struct mq_segment *seg, struct mq_scan *sc, int64_t bstart,
                        const struct mq_batch_info *bi, struct mq_seg_range *ok, struct mq_seg_range *run)
{
    int64_t bend = bstart + (int64_t)mq_batch_size(bi);
    pthread_mutex_lock(&seg->check_mu);
    ssize_t k = mq_ranges_find(seg->checked, seg->nchecked, bstart);
    if (k >= 0)
        *ok = seg->checked[k];
    bool bad = mq_ranges_find(seg->bad, seg->nbad, bstart) >= 0;
    pthread_mutex_unlock(&seg->check_mu);
    if (k >= 0 && bend <= ok->hi)
        return 1;
    if (bad)
        return 0;
    int64_t after = sc->pos;
    sc->pos = bstart;
    struct mq_batch_info again;
    enum mq_scan_res r = mq_scan_next(sc, true, &again, NULL);
    if (r == MQ_SCAN_BATCH) {
        if (run->hi != bstart) {
            if (run->lo >= 0)
                mq_seg_mark_checked(seg, run->lo, run->hi);
            run->lo = bstart;
        }
        run->hi = bend;
        return 1;
    }
    sc->pos = after;
    if (r != MQ_SCAN_BAD || !sc->bad_crc)
        return -1; /* the header parsed a moment ago: the file changed or cannot be read */
    uint32_t computed = sc->crc_computed;
    pthread_mutex_lock(&seg->check_mu);
    bool fresh = mq_ranges_find(seg->bad, seg->nbad, bstart) < 0;
    if (fresh)
        mq_ranges_add(&seg->bad, &seg->nbad, &seg->bad_cap, bstart, bend);
    pthread_mutex_unlock(&seg->check_mu);
    if (fresh)
        MQ_ERROR("%s:%" PRId64 ": CRC mismatch in the batch of offsets %" PRId64 "..%" PRId64
                 " (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 "); it is never served, readers skip it",
                 seg->path_log, bstart, bi->base_offset, mq_batch_last_offset(bi), bi->crc, computed);
    return 0;
}

/* What one segment offered a read. */
struct mq_seg_found {
    int64_t first_pos, stop;     /* the good batches found: [first_pos, stop), first_pos -1 when none */
    int64_t first_off, next_off; /* their offsets */
    int64_t walked_next;         /* the offset after the last batch whose header was read, -1 when none */
    unsigned codecs;             /* 1 << codec for each codec of the good batches found */
};

/* Walks seg from the batch that holds offset (through the read hint or the index) to its visible end,
 * gathering whole good batches up to max_bytes (always at least one). Returns how the walk ended. */
static enum mq_scan_res mq_seg_read(struct mq_part *part, struct mq_segment *seg, int fd, int64_t offset,
                                    size_t max_bytes, struct mq_scan *sc, struct mq_seg_found *f)
{
    int64_t limit = atomic_load(&seg->durable_size);
    int64_t pos = -1;
    pthread_mutex_lock(&part->hint_mu);
    if (part->hint_offset == offset && part->hint_seg == seg->uid)
        pos = part->hint_pos;
    pthread_mutex_unlock(&part->hint_mu);
    if (pos < 0)
        pos = mq_seg_index_lookup(seg, -1, offset, limit);

    mq_scan_reset(sc, fd, pos, limit);
    *f = (struct mq_seg_found){.first_pos = -1,
                               .stop = pos,
                               .first_off = offset,
                               .next_off = offset,
                               .walked_next = pos == 0 ? seg->base_offset : -1};
    struct mq_seg_range ok = {0, 0}, run = {-1, -1};
    struct mq_batch_info bi;
    enum mq_scan_res r;
    while ((r = mq_scan_next(sc, false, &bi, NULL)) == MQ_SCAN_BATCH) {
        int64_t bend = sc->pos, bstart = bend - (int64_t)mq_batch_size(&bi);
        if (bi.base_offset < 0 || bi.base_offset > INT64_MAX - 1 - bi.last_offset_delta) {
            sc->pos = bstart; /* offsets no reader can count past: damage, not data */
            r = MQ_SCAN_BAD;
            break;
        }
        f->walked_next = mq_batch_last_offset(&bi) + 1;
        if (mq_batch_last_offset(&bi) < offset)
            continue;
        if (f->first_pos >= 0 && (size_t)(bend - f->first_pos) > max_bytes)
            break;
        if (bstart < ok.lo || bend > ok.hi) {
            int v = mq_seg_check(seg, sc, bstart, &bi, &ok, &run);
            if (v < 0) {
                r = MQ_SCAN_IOERR;
                break;
            }
            if (v == 0) {
                if (f->first_pos >= 0)
                    break; /* the slice ends before it; the read that starts there skips it */
                continue;
            }
        }
        if (f->first_pos < 0) {
            f->first_pos = bstart;
            f->first_off = bi.base_offset;
        }
        f->stop = bend;
        f->next_off = mq_batch_last_offset(&bi) + 1;
        f->codecs |= 1u << (bi.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK);
    }
    if (run.lo >= 0)
        mq_seg_mark_checked(seg, run.lo, run.hi);
    return r;
}

/* The segment after seg, referenced, or NULL when seg is the last. */
static struct mq_segment *mq_part_next_seg(struct mq_part *part, const struct mq_segment *seg)
{
    struct mq_segment *next = NULL;
    pthread_rwlock_rdlock(&part->segs_lock);
    for (size_t i = 0; i < part->nsegs && !next; i++)
        if (part->segs[i]->base_offset > seg->base_offset) {
            next = part->segs[i];
            mq_seg_ref(next);
        }
    pthread_rwlock_unlock(&part->segs_lock);
    return next;
}

/* Reports, once per segment and process, the offsets a read had to skip at the end of seg to reach next.
 * r and at: how and where the walk of seg ended. */
static void mq_seg_report_gap(struct mq_segment *seg, const struct mq_segment *next, int64_t from,
                              enum mq_scan_res r, int64_t at)
{
    int64_t to = next->base_offset - 1;
    if (from > to || atomic_exchange(&seg->gap_reported, true))
        return; /* nothing missing (a bad batch at its end, reported on its own), or said already */
    if (r == MQ_SCAN_END)
        MQ_WARN("%s: offsets %" PRId64 "..%" PRId64 " are missing: %s, and the next segment, %s, starts at "
                "offset %" PRId64 "; readers skip to it",
                seg->path_log, from, to,
                at == 0 ? "the segment holds no batch" : "its batches stop before them", next->path_log,
                next->base_offset);
    else
        MQ_WARN("%s:%" PRId64 ": %s: offsets %" PRId64 "..%" PRId64 " cannot be read; readers skip to offset "
                "%" PRId64 " in %s",
                seg->path_log, at, r == MQ_SCAN_PARTIAL ? "partial batch" : "invalid batch header", from, to,
                next->base_offset, next->path_log);
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
    /* Damage (an emptied, cut or missing segment, a batch that fails its CRC) hides only itself: a segment
     * that has nothing readable at or after offset although offset lies below the visible end, and a later
     * segment exists, is skipped, and the read goes on in the next one, as Kafka serves a range removed by
     * compaction: the batches after it, whose base offsets tell the client where it is. */
    struct mq_seg_found f;
    for (;;) {
        int fd = mq_seg_fd(seg);
        if (fd < 0) {
            enum mq_err err = mq_err_from_errno(errno);
            mq_seg_unref(seg);
            return err;
        }
        enum mq_scan_res r = mq_seg_read(part, seg, fd, offset, max_bytes, scratch, &f);
        if (f.first_pos >= 0)
            break;
        if (r == MQ_SCAN_IOERR) {
            mq_seg_unref(seg);
            return MQ_ERR_IO;
        }
        struct mq_segment *next = mq_part_next_seg(part, seg);
        if (!next) {
            /* nothing visible at or after offset yet; an invalid header before the end is damage */
            bool bad = r == MQ_SCAN_BAD;
            mq_seg_unref(seg);
            if (bad)
                return MQ_ERR_CORRUPT;
            slice->first_offset = slice->next_offset = offset;
            return MQ_OK;
        }
        mq_seg_report_gap(seg, next, f.walked_next >= 0 ? f.walked_next : offset, r, scratch->pos);
        mq_seg_unref(seg);
        seg = next;
        if (offset < seg->base_offset)
            offset = seg->base_offset;
        if (offset >= end) {
            mq_seg_unref(seg);
            slice->first_offset = slice->next_offset = offset;
            return MQ_OK;
        }
    }
    slice->fd = mq_seg_fd(seg);
    slice->pos = f.first_pos;
    slice->len = (size_t)(f.stop - f.first_pos);
    slice->first_offset = f.first_off;
    slice->next_offset = f.next_off;
    slice->codecs = f.codecs;
    slice->ref = seg;
    pthread_mutex_lock(&part->hint_mu);
    part->hint_offset = f.next_off;
    part->hint_seg = seg->uid;
    part->hint_pos = f.stop;
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
    struct mq_codec_buf inflated = {0}; /* a compressed batch's records: decoded as Kafka decodes them */
    for (size_t i = 0; i < n && *offset < 0 && err == MQ_OK; i++) {
        struct mq_segment *seg = segs[i];
        bool last = i + 1 == n;
        /* -1: no batch, or no usable time index to tell (a reader process then scans the segment) */
        int64_t mts = mq_seg_max_ts(seg);
        if (!last && mts >= 0 && mts < ts)
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
            int64_t bend = sc.pos, bstart = bend - (int64_t)mq_batch_size(&bi);
            if (bi.base_offset < 0 || bi.base_offset > INT64_MAX - 1 - bi.last_offset_delta) {
                r = MQ_SCAN_BAD; /* offsets no reader can count past: damage, as mq_seg_read() says */
                break;
            }
            if (bi.max_timestamp < ts || bi.base_offset >= vis_end)
                continue;
            /* decode this batch to find the first record at or after ts */
            sc.pos = bstart;
            if ((r = mq_scan_next(&sc, true, &bi, &body)) != MQ_SCAN_BATCH) {
                if (r != MQ_SCAN_BAD || !sc.bad_crc)
                    break;
                /* Never served (reads skip it and report it): the answer lies in a batch after it. */
                sc.pos = bend;
                continue;
            }
            struct mq_record_iter it;
            struct mq_record_view rv;
            enum mq_err ierr = mq_record_iter_open(&it, body, &bi, &inflated);
            if (ierr == MQ_ERR_NOMEM) {
                err = ierr;
                break;
            }
            if (ierr != MQ_OK) {
                *offset = bi.base_offset; /* records that cannot be decoded: the batch is the answer */
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
            if (*offset >= 0 || err != MQ_OK)
                break;
        }
        /* As reads do: the unreadable rest of a segment is skipped when a later one exists, and is an error
         * only in the last one (where a write in progress is not damage: the scan stops at the durable
         * end). */
        if (r == MQ_SCAN_IOERR && err == MQ_OK)
            err = MQ_ERR_IO;
        else if (r == MQ_SCAN_BAD && last && *offset < 0 && err == MQ_OK)
            err = MQ_ERR_CORRUPT;
        mq_scan_free(&sc);
    }
    mq_codec_buf_free(&inflated);
    for (size_t i = 0; i < n; i++)
        mq_seg_unref(segs[i]);
    free(segs);
    return err;
}

/* The offset after the last batch of seg that readers reach before its end (limit), walking from the last
 * index entry (from its start when the entry names no such batch); seg->base_offset when there is none. */
static int64_t mq_seg_readable_end(struct mq_segment *seg, int fd, int64_t limit, int64_t next_base,
                                   struct mq_scan *sc)
{
    int64_t entry_last = -1;
    int64_t pos = mq_seg_last_entry(seg, limit, next_base, &entry_last);
    for (;;) {
        int64_t next = pos == 0 ? seg->base_offset : -1;
        mq_scan_reset(sc, fd, pos, limit);
        struct mq_batch_info bi;
        while (mq_scan_next(sc, false, &bi, NULL) == MQ_SCAN_BATCH) {
            /* compare before any arithmetic: the base offset lies outside the CRC (as mq_seg_read()) */
            if (bi.base_offset < (next >= 0 ? next : seg->base_offset) ||
                bi.base_offset > INT64_MAX - 1 - bi.last_offset_delta ||
                (next < 0 && mq_batch_last_offset(&bi) != entry_last))
                break;
            next = mq_batch_last_offset(&bi) + 1;
        }
        if (next >= 0 || pos == 0)
            return next >= 0 ? next : seg->base_offset;
        pos = 0; /* the entry names no batch: walk the segment from its start */
    }
}

enum mq_err mq_part_missing_offsets(struct mq_part *part, int64_t *missing)
{
    *missing = 0;
    if (!mq_part_writer(part)) {
        enum mq_err err = mq_part_reader_refresh(part, true);
        if (err != MQ_OK)
            return err;
    }
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
    struct mq_scan sc;
    mq_scan_init(&sc, -1, 0, 0);
    sc.chunk = 16 * 1024; /* about one index interval is read per segment */
    for (size_t i = 0; i + 1 < n; i++) {
        int64_t next_base = segs[i + 1]->base_offset;
        int fd = mq_seg_fd(segs[i]);
        int64_t end =
            fd < 0 ? segs[i]->base_offset
                   : mq_seg_readable_end(segs[i], fd, atomic_load(&segs[i]->durable_size), next_base, &sc);
        if (end < next_base)
            *missing += next_base - end;
    }
    mq_scan_free(&sc);
    for (size_t i = 0; i < n; i++)
        mq_seg_unref(segs[i]);
    free(segs);
    return MQ_OK;
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
