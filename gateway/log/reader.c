/*
 * reader.c - a reader process following the writer: the refresh by which `mqlog consume -f`, replay and other
 * processes that open a data directory for reading see the batches and segments mqlogd adds, the segments
 * retention deletes, and a segment file the writer replaced after a crash.
 *
 * Only this process's readers see the state kept here (seg->size, next_offset, reader_seen/complete); the
 * writer's own view comes from recovery (recover.c) and its appends. Refresh runs under part->mu, so only one
 * thread changes the segment list at a time, and publishes new segments under segs_lock once scanned.
 */
#include "log/log_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/parse.h"

/*
 * Read mode: the whole batch at `at`, header *bi, failed its CRC (sc just read it). The writer appends whole
 * batches with pwrite, and a file's size covers only bytes already written, so a batch whose full length
 * lies in the file is damage, not a write in progress. The reader goes past it (reads skip and report it,
 * read.c) when the segment is sealed or a whole batch follows it; while it is the file's last batch the
 * reader stops before it, as it would for a write in progress: nothing after it is lost by waiting. Returns
 * true with sc past it, or false with sc unchanged.
 */
static bool mq_seg_bad_batch_done(struct mq_scan *sc, int64_t at, const struct mq_batch_info *bi, bool sealed)
{
    int64_t after = at + (int64_t)mq_batch_size(bi);
    sc->pos = after;
    struct mq_batch_info next;
    if (sealed || mq_scan_next(sc, false, &next, NULL) == MQ_SCAN_BATCH) {
        sc->pos = after;
        return true;
    }
    sc->pos = at;
    return false;
}

/*
 * Read mode: scans every segment of segs[0..n) whose validated size is behind its file (normally only the
 * last one or two). after_last: the base offset of the segment the directory listing found after the last
 * one in segs (-1 when none), which seals the last one.
 */
static void mq_reader_scan(struct mq_segment *const *segs, size_t n, int64_t after_last)
{
    for (size_t i = 0; i < n; i++) {
        struct mq_segment *seg = segs[i];
        if (seg->reader_complete)
            continue;
        /* the writer has moved on: this file no longer grows */
        int64_t next_base = i + 1 < n ? segs[i + 1]->base_offset : after_last;
        bool sealed = next_base >= 0;
        int fd = mq_seg_fd(seg);
        if (fd < 0)
            continue;
        int64_t size = atomic_load(&seg->size), file_size = mq_fd_size(fd);
        if (sealed && file_size <= size)
            seg->reader_complete = true;
        if (file_size <= size)
            continue;
        int64_t from = size;
        int64_t next = atomic_load(&seg->next_offset), entry_last = -1;
        if (!seg->reader_seen) {
            /* First look at this segment: a sealed one is complete; jump close to the end of the last one
             * through the index. */
            seg->reader_seen = true;
            if (sealed) {
                seg->reader_complete = true;
                atomic_store(&seg->size, file_size);
                atomic_store(&seg->durable_size, file_size);
                atomic_store(&seg->next_offset, next_base);
                continue;
            }
            int64_t ts;
            if (mq_seg_read_last_time(seg, &ts))
                atomic_store(&seg->max_ts, ts);
            atomic_store(&seg->max_ts_loaded, true);
            from = mq_seg_last_entry(seg, file_size, INT64_MAX, &entry_last);
            next = from > 0 ? -1 : seg->base_offset;
        }
        int64_t pos;
        for (;;) {
            struct mq_scan sc;
            mq_scan_init(&sc, fd, from, file_size);
            struct mq_batch_info bi;
            const uint8_t *body;
            pos = from;
            enum mq_scan_res r;
            while ((r = mq_scan_next(&sc, true, &bi, &body)) == MQ_SCAN_BATCH ||
                   (r == MQ_SCAN_BAD && sc.bad_crc)) {
                /* After the jump the batch must be the one the index entry names: its base offset lies
                 * outside the CRC, and a damaged one would make up the partition's end. */
                if (next >= 0 ? bi.base_offset != next : mq_batch_last_offset(&bi) != entry_last)
                    break;
                if (r == MQ_SCAN_BAD && !mq_seg_bad_batch_done(&sc, pos, &bi, sealed))
                    break;
                next = mq_batch_last_offset(&bi) + 1;
                if (r == MQ_SCAN_BATCH && bi.max_timestamp > atomic_load(&seg->max_ts))
                    atomic_store(&seg->max_ts, bi.max_timestamp);
                pos = sc.pos;
            }
            mq_scan_free(&sc);
            if (next >= 0 || from == 0)
                break;
            from = 0; /* no batch of the index where it pointed: scan the segment from its start */
            next = seg->base_offset;
        }
        /* The size first: a reader that sees the new end must find the bytes that hold it. */
        atomic_store(&seg->durable_size, pos);
        atomic_store(&seg->size, pos);
        atomic_store(&seg->next_offset, next);
        if (sealed)
            seg->reader_complete = true;
    }
}

/*
 * Read mode: a segment this reader has not seen complete whose file is no longer the one at its path gets a
 * fresh entry, read from the new file. The writer replaces a segment file when a kill -9 followed its roll:
 * recovery removes the new, empty segment and a later roll creates it again; a reader that opened the first
 * one would take it for empty once a newer segment appears, and skip its records. Slices of the old entry
 * keep its descriptor. (A recompacted segment is replaced too, but this reader saw it complete: it keeps
 * reading the old file, which holds the same records.)
 */
static void mq_part_reader_reopen(struct mq_part *part, int64_t after_last)
{
    for (size_t i = 0; i < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        if (seg->reader_complete || seg->fd < 0)
            continue;
        struct stat now, had;
        if (stat(seg->path_log, &now) != 0 || fstat(seg->fd, &had) != 0 ||
            (now.st_ino == had.st_ino && now.st_dev == had.st_dev))
            continue;
        struct mq_segment *fresh = mq_seg_new(part->dir, seg->base_offset);
        if (!fresh)
            continue; /* out of memory: the next refresh tries again */
        /* scanned before readers can find it, as new segments are (mq_part_reader_refresh()) */
        mq_reader_scan(&fresh, 1, i + 1 < part->nsegs ? part->segs[i + 1]->base_offset : after_last);
        pthread_rwlock_wrlock(&part->segs_lock);
        part->segs[i] = fresh;
        pthread_rwlock_unlock(&part->segs_lock);
        mq_seg_unref(seg);
    }
}

/* Read mode: follow the data the writer has added since the last look (new batches, new segments). */
enum mq_err mq_part_reader_refresh(struct mq_part *part, bool list)
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
    /* The segments known so far are scanned to their final size before a newer one is listed: a reader
     * that finds a later segment takes the bytes before it for all there is (and skips what it cannot
     * read there as damage), so it must never see the new segment while the old one's size still lags. */
    int64_t last_base = part->nsegs ? mq_part_active(part)->base_offset : -1, after_last = -1;
    for (size_t j = 0; j < bases.n && after_last < 0; j++)
        if (bases.v[j] > last_base)
            after_last = bases.v[j];
    if (list)
        mq_part_reader_reopen(part, after_last);
    mq_reader_scan(part->segs, part->nsegs, after_last); /* under mu: only this function changes segs */
    /* New segments are scanned before readers can find them: one listed with nothing known of its bytes
     * would look empty, and a reader would skip it for the next one, as it skips damage. So would the end
     * it moves: the newest segment's base. They are published together, under one write lock. */
    size_t nfresh = 0;
    for (size_t j = 0; j < bases.n; j++)
        nfresh += bases.v[j] > last_base;
    struct mq_segment **fresh = nfresh ? calloc(nfresh, sizeof *fresh) : NULL;
    if (nfresh && !fresh) {
        err = MQ_ERR_NOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t j = 0; j < bases.n && err == MQ_OK; j++)
        if (bases.v[j] > last_base && !(fresh[k++] = mq_seg_new(part->dir, bases.v[j])))
            err = MQ_ERR_NOMEM;
    if (err == MQ_OK) {
        mq_reader_scan(fresh, nfresh, -1);
        pthread_rwlock_wrlock(&part->segs_lock);
        for (k = 0; k < nfresh && err == MQ_OK; k++)
            if ((err = mq_part_segs_push(part, fresh[k])) == MQ_OK)
                fresh[k] = NULL;
        pthread_rwlock_unlock(&part->segs_lock);
    }
    for (k = 0; k < nfresh; k++)
        mq_seg_unref(fresh[k]); /* those not published; NULL is a no-op */
    free(fresh);
    if (err != MQ_OK)
        goto out;
    if (list)
        atomic_store(&part->reader_refresh_mono, mq_mono_ms()); /* when the directory was last listed */
out:
    free(bases.v);
    pthread_mutex_unlock(&part->mu);
    return err;
}
