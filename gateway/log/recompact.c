/*
 * recompact.c - rewriting closed segments as large compressed batches, and finishing or discarding a
 * rewrite that a stop interrupted.
 *
 * At the edge, ingest writes tiny batches (often one record each): their 61-byte headers and the records
 * compressed one batch at a time cost most of the bytes on disk. Once a segment of a partition that has a
 * codec is closed (rolled, checkpointed and synced) and its newest record is recompact_after_ms old, the
 * recompactor thread rewrites it: the records of consecutive plain batches (no producer id, not
 * transactional, no control, CreateTime, offsets without holes) are packed into batches of up to
 * MQ_RECOMPACT_BATCH_BYTES of records, compressed with the partition's codec; any other batch is copied
 * byte for byte. Offsets, record timestamps, keys, values and headers are the same, so every reader gets the
 * same records; the sparse indexes are built for the new file.
 *
 * The swap (B is the segment's 20-digit base offset), each step durable before the next:
 *   1. B.log.cleaned, B.index.cleaned, B.timeindex.cleaned are written and fsynced, then the directory;
 *   2. B.log.cleaned is renamed B.log.swap: the commit point;
 *   3. under the writer's lock: B.index.cleaned -> B.index and B.timeindex.cleaned -> B.timeindex, then
 *      B.log.swap -> B.log (replacing the old file in one step), each followed by a directory fsync; the
 *      segment list then holds the new segment.
 * Opening a partition for writing (mq_recompact_recover()) completes a rewrite that has a B.log.swap next to
 * a B.log, and removes every other leftover (*.cleaned; a .swap whose B.log retention deleted). So a kill
 * at any point leaves the old segment or the new one, never neither and never both.
 *
 * Readers keep working across the swap: one that holds the old segment holds its open descriptor (the old
 * file stays readable after the rename), new readers find the new segment. An index lookup checks the
 * batch an entry names (segment.c), so a reader that pairs the old file with the new index, or the other
 * way round, scans from the start of the segment instead of landing inside a batch.
 *
 * Progress: "recompact-point" in the partition directory holds the base offset below which every segment
 * was rewritten or examined, so that a restart does not rewrite segments again.
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

#define MQ_RECOMPACT_POLL_MS 1000        /* how often the recompactor thread looks for closed segments */
#define MQ_RCP_MAGIC         0x4d515243u /* "MQRC" */
#define MQ_RCP_SIZE          16          /* magic, base offset, CRC-32C of the first 12 bytes */

/* One rewrite at a time in the process: the recompactor thread, or a caller of mq_part_recompact(). The
 * partition's own rewrite_mu (taken after it) is what keeps the fd cache off its directory meanwhile: this
 * lock is held across a whole pass, and a cache that had to wait for it could close no directory at all. */
static pthread_mutex_t mq_rc_mu = PTHREAD_MUTEX_INITIALIZER;

static char *mq_path_cat(const char *a, const char *b)
{
    char *p = NULL;
    if (asprintf(&p, "%s%s", a, b) < 0)
        return NULL;
    return p;
}

static enum mq_err mq_dir_sync(struct mq_part *part)
{
    return fsync(part->dir_fd) == 0 ? MQ_OK : mq_err_from_errno(errno);
}

/* ---- the recompact point ---- */

static int64_t mq_rcp_read(struct mq_part *part)
{
    uint8_t b[MQ_RCP_SIZE];
    int fd = openat(part->dir_fd, "recompact-point", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, b, sizeof b, 0);
    close(fd);
    if (n != MQ_RCP_SIZE || mq_be32_get(b) != MQ_RCP_MAGIC || mq_be32_get(b + 12) != mq_crc32c(0, b, 12))
        return 0; /* unreadable: segments are examined again, which costs time, never records */
    int64_t below = (int64_t)mq_be64_get(b + 4);
    return below > 0 ? below : 0;
}

static void mq_rcp_write(struct mq_part *part, int64_t below)
{
    uint8_t b[MQ_RCP_SIZE];
    mq_be32_put(b, MQ_RCP_MAGIC);
    mq_be64_put(b + 4, (uint64_t)below);
    mq_be32_put(b + 12, mq_crc32c(0, b, 12));
    int fd = openat(part->dir_fd, "recompact-point.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    enum mq_err err = fd < 0 ? mq_err_from_errno(errno) : mq_pwrite_full(fd, b, sizeof b, 0);
    if (err == MQ_OK && fdatasync(fd) != 0)
        err = mq_err_from_errno(errno);
    if (fd >= 0)
        close(fd);
    if (err == MQ_OK && renameat(part->dir_fd, "recompact-point.tmp", part->dir_fd, "recompact-point") != 0)
        err = mq_err_from_errno(errno);
    if (err != MQ_OK) {
        unlinkat(part->dir_fd, "recompact-point.tmp", 0);
        MQ_WARN("%s: cannot record the recompaction progress (%s): a restart examines the segments again",
                part->dir, mq_strerror(err));
    }
}

/* ---- finishing an interrupted swap at open ---- */

/* True when name is "<20 digits><ext>" and then sets *base. */
static bool mq_rc_name(const char *name, const char *ext, int64_t *base)
{
    char seg[64];
    size_t n = strlen(name), e = strlen(ext);
    if (n <= e || n - e + 4 >= sizeof seg || strcmp(name + n - e, ext) != 0)
        return false;
    memcpy(seg, name, n - e);
    strcpy(seg + n - e, ".log");
    return mq_seg_name_parse(seg, ".log", base);
}

/* Puts a rewritten index file in place. A failure is not fatal: the index is derived data, so the old one
 * is removed instead (a missing index is rebuilt at the next open) and lookups meanwhile scan. A missing
 * `from` was put in place already, before a crash. */
static void mq_rc_place_index(int dir_fd, const char *from, const char *to)
{
    if (renameat(dir_fd, from, dir_fd, to) == 0 || errno == ENOENT)
        return;
    MQ_WARN("cannot put the rewritten index %s in place (%s): it is rebuilt at the next start", to,
            MQ_STRERROR(errno));
    unlinkat(dir_fd, to, 0);
    unlinkat(dir_fd, from, 0);
}

/* Completes the committed swap of segment base: its .cleaned indexes, then B.log.swap, take their places. */
static enum mq_err mq_rc_complete(struct mq_part *part, int64_t base)
{
    char log[48], swap[48], idx[48], tidx[48], cidx[48], ctidx[48]; /* 20 digits and an extension */
    snprintf(log, sizeof log, "%020" PRId64 ".log", base);
    snprintf(swap, sizeof swap, "%020" PRId64 ".log.swap", base);
    snprintf(idx, sizeof idx, "%020" PRId64 ".index", base);
    snprintf(tidx, sizeof tidx, "%020" PRId64 ".timeindex", base);
    snprintf(cidx, sizeof cidx, "%020" PRId64 ".index.cleaned", base);
    snprintf(ctidx, sizeof ctidx, "%020" PRId64 ".timeindex.cleaned", base);
    if (faccessat(part->dir_fd, log, F_OK, 0) != 0) {
        /* Retention deleted the segment after the commit: its rewrite goes with it. */
        unlinkat(part->dir_fd, swap, 0);
        return MQ_OK;
    }
    mq_rc_place_index(part->dir_fd, cidx, idx);
    mq_rc_place_index(part->dir_fd, ctidx, tidx);
    enum mq_err err = mq_dir_sync(part);
    if (err == MQ_OK && renameat(part->dir_fd, swap, part->dir_fd, log) != 0)
        err = mq_err_from_errno(errno);
    if (err == MQ_OK)
        err = mq_dir_sync(part);
    if (err == MQ_OK)
        MQ_INFO("%s/%s: completed its recompaction, which a stop interrupted", part->dir, log);
    return err;
}

enum mq_err mq_recompact_recover(struct mq_part *part)
{
    DIR *d = opendir(part->dir);
    if (!d)
        return mq_err_from_errno(errno);
    struct dirent *de;
    int64_t *swaps = NULL;
    size_t nswaps = 0, cap = 0;
    enum mq_err err = MQ_OK;
    while ((de = readdir(d)) != NULL && err == MQ_OK) {
        int64_t base;
        if (!mq_rc_name(de->d_name, ".log.swap", &base))
            continue;
        if (nswaps == cap) {
            cap = cap ? cap * 2 : 4;
            int64_t *nv = realloc(swaps, cap * sizeof *nv);
            if (!nv) {
                err = MQ_ERR_NOMEM;
                break;
            }
            swaps = nv;
        }
        swaps[nswaps++] = base;
    }
    for (size_t i = 0; i < nswaps && err == MQ_OK; i++)
        err = mq_rc_complete(part, swaps[i]);
    free(swaps);
    /* What is left of rewrites that never reached their commit point. */
    bool removed = false;
    rewinddir(d);
    while (err == MQ_OK && (de = readdir(d)) != NULL) {
        int64_t base;
        if (mq_rc_name(de->d_name, ".log.cleaned", &base) ||
            mq_rc_name(de->d_name, ".index.cleaned", &base) ||
            mq_rc_name(de->d_name, ".timeindex.cleaned", &base) ||
            strcmp(de->d_name, "recompact-point.tmp") == 0) {
            unlinkat(dirfd(d), de->d_name, 0);
            removed = true;
        }
    }
    closedir(d);
    if (err == MQ_OK && removed)
        err = mq_dir_sync(part);
    return err;
}

/* ---- the rewrite ---- */

/* The new file of one rewrite and what is being packed into it. */
struct mq_rc_out {
    struct mq_part *part;
    struct mq_segment *ns; /* final paths; fd, idx_fd, tidx_fd on the .cleaned files */
    int64_t pos;           /* bytes written */
    struct mq_batch_builder b;
    bool open; /* b holds records */
    struct mq_header *hdrs;
    size_t hdrs_cap;
    struct mq_codec_buf scratch; /* a compressed batch's records, decoded */
};

/* Appends one complete batch to the new file. */
static enum mq_err mq_rc_put(struct mq_rc_out *o, const uint8_t *buf, size_t len)
{
    struct mq_batch_info bi;
    enum mq_err err = mq_batch_parse_header(buf, len, &bi);
    if (err == MQ_OK)
        err = mq_pwrite_full(o->ns->fd, buf, len, o->pos);
    if (err == MQ_OK)
        err = mq_seg_account(o->ns, o->pos, &bi, o->part->log->conf.index_interval_bytes);
    if (err == MQ_OK)
        err = mq_seg_write_index(o->ns);
    o->pos += (int64_t)len;
    return err;
}

static enum mq_err mq_rc_flush(struct mq_rc_out *o)
{
    if (!o->open)
        return MQ_OK;
    o->open = false;
    mq_batch_finish(&o->b); /* compressed into this thread's buffer: written at once */
    return mq_rc_put(o, o->b.out, o->b.out_len);
}

/* Whether the records of a batch may be packed with others: nothing but the records means anything. */
static bool mq_rc_packable(const struct mq_batch_info *bi)
{
    return bi->producer_id == -1 && bi->count > 0 && bi->last_offset_delta == bi->count - 1 &&
           !(bi->attributes &
             (MQ_BATCH_ATTR_TRANSACTIONAL | MQ_BATCH_ATTR_CONTROL | MQ_BATCH_ATTR_LOG_APPEND_TIME));
}

/* Adds the records of one packable batch to the batches being built. */
static enum mq_err mq_rc_pack(struct mq_rc_out *o, const uint8_t *body, const struct mq_batch_info *bi)
{
    if (o->open && o->b.base_offset + o->b.count != bi->base_offset) {
        enum mq_err err = mq_rc_flush(o); /* a hole in the offsets: a new batch starts after it */
        if (err != MQ_OK)
            return err;
    }
    struct mq_record_iter it;
    enum mq_err err = mq_record_iter_open(&it, body, bi, &o->scratch);
    if (err != MQ_OK)
        return err;
    struct mq_record_view rv;
    int r;
    while ((r = mq_record_next(&it, &rv)) == 1) {
        if ((size_t)rv.header_count > o->hdrs_cap) {
            struct mq_header *nh = realloc(o->hdrs, (size_t)rv.header_count * sizeof *nh);
            if (!nh)
                return MQ_ERR_NOMEM;
            o->hdrs = nh;
            o->hdrs_cap = (size_t)rv.header_count;
        }
        const uint8_t *hp = rv.headers;
        for (int32_t i = 0; i < rv.header_count; i++)
            if (mq_header_next(&hp, rv.headers_end, &o->hdrs[i]) != 1)
                return MQ_ERR_CORRUPT;
        struct mq_record rec = {rv.timestamp, rv.key,  rv.key_len,     rv.value,
                                rv.value_len, o->hdrs, rv.header_count};
        if (o->open && o->b.len + mq_batch_record_size(&o->b, &rec) > MQ_RECOMPACT_BATCH_BYTES &&
            (err = mq_rc_flush(o)) != MQ_OK)
            return err;
        if (!o->open) {
            mq_batch_reset(&o->b, rv.offset);
            o->open = true;
        }
        if (rv.offset != o->b.base_offset + o->b.count)
            return MQ_ERR_CORRUPT; /* offset deltas out of order: the batch lied about itself */
        if ((err = mq_batch_add(&o->b, &rec)) != MQ_OK)
            return err;
    }
    return r < 0 ? MQ_ERR_CORRUPT : MQ_OK;
}

/* Removes the files of a rewrite that will not be committed. */
static void mq_rc_discard(struct mq_part *part, const struct mq_segment *ns, bool swapped)
{
    char *l = mq_path_cat(ns->path_log, swapped ? ".swap" : ".cleaned");
    char *i = mq_path_cat(ns->path_idx, ".cleaned");
    char *t = mq_path_cat(ns->path_tidx, ".cleaned");
    /* the data first, as mq_seg_unlink(): an index without it is removed at the next open */
    if (l)
        unlink(l);
    if (i)
        unlink(i);
    if (t)
        unlink(t);
    free(l);
    free(i);
    free(t);
    (void)mq_dir_sync(part);
}

enum mq_rc_result {
    MQ_RC_DONE,    /* the new segment replaced the old one */
    MQ_RC_KEPT,    /* examined and kept as it is (not smaller, or damaged) */
    MQ_RC_GONE,    /* retention deleted it meanwhile */
    MQ_RC_STOPPED, /* the log is closing, or the disk budget has no room for the rewrite now */
    MQ_RC_FAILED,  /* an error: try again at the next pass */
};

/* Opens the .cleaned files of ns for writing. */
static enum mq_err mq_rc_create(struct mq_segment *ns)
{
    char *l = mq_path_cat(ns->path_log, ".cleaned");
    char *i = mq_path_cat(ns->path_idx, ".cleaned");
    char *t = mq_path_cat(ns->path_tidx, ".cleaned");
    enum mq_err err = MQ_OK;
    if (!l || !i || !t)
        err = MQ_ERR_NOMEM;
    if (err == MQ_OK && (ns->fd = open(l, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        err = mq_err_from_errno(errno);
    if (err == MQ_OK && (ns->idx_fd = open(i, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        err = mq_err_from_errno(errno);
    if (err == MQ_OK && (ns->tidx_fd = open(t, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        err = mq_err_from_errno(errno);
    free(l);
    free(i);
    free(t);
    return err;
}

/* Writes the rewrite of old (bytes [0, size) of fd) into o->ns's .cleaned files and makes them durable. */
static enum mq_err mq_rc_write(struct mq_rc_out *o, int fd, int64_t size, const atomic_bool *stop,
                               bool *damaged)
{
    struct mq_scan sc;
    mq_scan_init(&sc, fd, 0, size);
    struct mq_batch_info bi;
    const uint8_t *body;
    enum mq_scan_res r = MQ_SCAN_END;
    enum mq_err err = MQ_OK;
    while (err == MQ_OK && (r = mq_scan_next(&sc, true, &bi, &body)) == MQ_SCAN_BATCH) {
        if (stop && atomic_load(stop)) {
            err = MQ_ERR_BUSY;
            break;
        }
        if (mq_rc_packable(&bi)) {
            err = mq_rc_pack(o, body, &bi);
        } else if ((err = mq_rc_flush(o)) == MQ_OK) {
            err = mq_rc_put(o, body, mq_batch_size(&bi));
        }
    }
    mq_scan_free(&sc);
    if (err == MQ_OK && r != MQ_SCAN_END) {
        *damaged = true; /* a segment that does not read clean stays as it is: readers skip its damage */
        return MQ_ERR_CORRUPT;
    }
    if (err == MQ_ERR_CORRUPT || err == MQ_ERR_INVAL)
        *damaged = true; /* records that do not decode (or a codec mqlog cannot read) */
    if (err == MQ_OK)
        err = mq_rc_flush(o);
    if (err == MQ_OK)
        err = mq_seg_seal_index(o->ns);
    if (err == MQ_OK && (fdatasync(o->ns->fd) != 0 || mq_seg_sync_index(o->ns) != MQ_OK))
        err = mq_err_from_errno(errno);
    return err;
}

/* Swaps ns in for old in the partition (steps 2 and 3 at the top of this file). */
static enum mq_rc_result mq_rc_commit(struct mq_part *part, struct mq_segment *old, struct mq_segment *ns)
{
    char *cl = mq_path_cat(ns->path_log, ".cleaned"), *sw = mq_path_cat(ns->path_log, ".swap");
    char *ci = mq_path_cat(ns->path_idx, ".cleaned"), *ct = mq_path_cat(ns->path_tidx, ".cleaned");
    enum mq_rc_result res = MQ_RC_FAILED;
    if (!cl || !sw || !ci || !ct)
        goto out;
    if (mq_dir_sync(part) != MQ_OK || rename(cl, sw) != 0 || mq_dir_sync(part) != MQ_OK) {
        MQ_WARN("%s: cannot commit its recompaction: %s", old->path_log, MQ_STRERROR(errno));
        mq_rc_discard(part, ns, access(sw, F_OK) == 0);
        goto out;
    }
    /* Under the writer's lock: retention and the disk cap delete segments under it, so the old one is
     * either still listed here (and stays so until the swap is done) or gone (and the rewrite with it). */
    pthread_mutex_lock(&part->mu);
    size_t i = 0;
    while (i + 1 < part->nsegs && part->segs[i] != old)
        i++;
    if (i + 1 >= part->nsegs) {
        pthread_mutex_unlock(&part->mu);
        mq_rc_discard(part, ns, true);
        res = MQ_RC_GONE;
        goto out;
    }
    mq_rc_place_index(AT_FDCWD, ci, ns->path_idx);
    mq_rc_place_index(AT_FDCWD, ct, ns->path_tidx);
    bool ok = mq_dir_sync(part) == MQ_OK && rename(sw, ns->path_log) == 0 && mq_dir_sync(part) == MQ_OK;
    if (!ok) {
        /* Committed but not in place: the next open completes it. Until then readers keep the old
         * segment's descriptor, and index lookups that do not match it fall back to scanning. */
        MQ_ERROR("%s: recompaction committed but not completed (%s): it completes at the next start",
                 old->path_log, MQ_STRERROR(errno));
        pthread_mutex_unlock(&part->mu);
        goto out;
    }
    ns->owner = part; /* its reopens count in the fd cache, as the other segments' */
    pthread_rwlock_wrlock(&part->segs_lock);
    part->segs[i] = ns;
    pthread_rwlock_unlock(&part->segs_lock);
    pthread_mutex_unlock(&part->mu);
    pthread_mutex_lock(&part->hint_mu);
    part->hint_offset = -1; /* a position in the old file */
    pthread_mutex_unlock(&part->hint_mu);
    mq_seg_unref(old);  /* the list's reference */
    mq_fdc_touch(part); /* the new file is open: the cache may have closed the partition meanwhile */
    res = MQ_RC_DONE;
out:
    free(cl);
    free(sw);
    free(ci);
    free(ct);
    return res;
}

/* Rewrites the closed segment old, whose successor starts at next_base. *saved gets the bytes saved. */
static enum mq_rc_result mq_rc_segment(struct mq_part *part, struct mq_segment *old, int64_t next_base,
                                       int codec, const atomic_bool *stop, int64_t *saved)
{
    *saved = 0;
    /* Opened now if it was not: whoever holds the old segment must keep reading the old file after the
     * swap, never open the new one under the old one's sizes. */
    int64_t size = atomic_load(&old->durable_size);
    /* Until the swap the rewrite is a second copy: the disk budget must have room for it beside the
     * batches it admits, or the segment waits for a later pass (budget.c never deletes for it). */
    bool budget = mq_budget_on(&part->log->conf);
    if (budget && !mq_budget_reserve(part->log, size))
        return MQ_RC_STOPPED;
    int fd = mq_seg_fd(old);
    struct mq_rc_out o = {.part = part};
    mq_batch_builder_init(&o.b);
    o.b.codec = codec;
    o.ns = mq_seg_new(part->dir, old->base_offset);
    enum mq_rc_result res = MQ_RC_FAILED;
    bool damaged = false, committing = false; /* mq_rc_commit() cleans up after itself */
    enum mq_err err = fd < 0 ? mq_err_from_errno(errno) : !o.ns ? MQ_ERR_NOMEM : mq_rc_create(o.ns);
    if (err == MQ_OK)
        err = mq_rc_write(&o, fd, size, stop, &damaged);
    if (err == MQ_OK && o.pos >= size) {
        res = MQ_RC_KEPT; /* nothing to gain: already packed, or records that do not compress */
    } else if (err == MQ_OK) {
        mq_seg_close_index(o.ns);
        atomic_store(&o.ns->size, o.pos);
        atomic_store(&o.ns->durable_size, o.pos);
        atomic_store(&o.ns->next_offset, next_base); /* as for every sealed segment */
        atomic_store(&o.ns->max_ts_loaded, true);
        mq_seg_mark_checked(o.ns, 0, o.pos); /* its CRCs were computed here */
        committing = true;
        res = mq_rc_commit(part, old, o.ns);
        if (res == MQ_RC_DONE) {
            *saved = size - o.pos;
            MQ_INFO("%s: recompacted with %s: %" PRId64 " -> %" PRId64 " bytes", old->path_log,
                    mq_codec_name(codec), size, o.pos);
            o.ns = NULL; /* the partition's now */
        }
    } else if (err == MQ_ERR_BUSY) {
        res = MQ_RC_STOPPED;
    } else if (damaged) {
        MQ_WARN("%s: not recompacted: %s; it stays as it is", old->path_log,
                err == MQ_ERR_INVAL ? "it holds a codec mqlog cannot decode" : "it does not read clean");
        res = MQ_RC_KEPT;
    } else {
        MQ_WARN("%s: recompaction failed (%s); it is tried again later", old->path_log, mq_strerror(err));
    }
    if (o.ns && !committing && o.ns->fd >= 0)
        mq_rc_discard(part, o.ns, false);
    mq_seg_unref(o.ns);
    mq_batch_builder_free(&o.b);
    free(o.hdrs);
    mq_codec_buf_free(&o.scratch);
    if (budget)
        mq_budget_wrote(part->log, size, false); /* the next pass counts what the swap left */
    return res;
}

/* The next segment due for recompaction (referenced) and its successor's base, or NULL. */
static struct mq_segment *mq_rc_due(struct mq_part *part, int64_t now_ms, int *codec, int64_t *next_base)
{
    struct mq_segment *due = NULL;
    pthread_mutex_lock(&part->mu);
    *codec = part->codec;
    /* the log's -1 (off) stops the thread only: a caller of mq_part_recompact() asks for it */
    int64_t after = part->rc_after >= 0 ? part->rc_after : part->log->conf.recompact_after_ms;
    if (after < 0)
        after = 0;
    for (size_t i = 0; *codec != MQ_CODEC_NONE && i + 1 < part->nsegs; i++) {
        struct mq_segment *seg = part->segs[i];
        if (seg->base_offset < part->rc_below)
            continue;
        /* Closed means: a recovery point lies in a later segment, and its bytes and indexes are synced
         * (the flusher closes a sealed segment's index files once it synced them). */
        if (seg->base_offset >= atomic_load(&part->rp_seg_base) ||
            atomic_load(&seg->durable_size) != atomic_load(&seg->size) || seg->idx_fd >= 0 ||
            seg->tidx_fd >= 0 || seg->idx_evicted)
            break;
        int64_t mts = mq_seg_max_ts(seg);
        if (after > 0 && (mts < 0 || now_ms - mts < after))
            break;
        due = seg;
        mq_seg_ref(due);
        *next_base = part->segs[i + 1]->base_offset;
        break;
    }
    pthread_mutex_unlock(&part->mu);
    return due;
}

static enum mq_err mq_part_recompact_stop(struct mq_part *part, int64_t now_ms, int *segments,
                                          const atomic_bool *stop)
{
    if (segments)
        *segments = 0;
    if (!mq_part_writer(part))
        return MQ_ERR_READONLY;
    /* Nothing to rewrite without a codec or a closed segment: such a partition is not touched at all, so
     * that a pass over thousands of idle partitions reopens none of the directories the fd cache closed. */
    pthread_mutex_lock(&part->mu);
    bool maybe = part->codec != MQ_CODEC_NONE && part->nsegs > 1;
    pthread_mutex_unlock(&part->mu);
    if (!maybe)
        return MQ_OK;
    pthread_mutex_lock(&mq_rc_mu);
    pthread_mutex_lock(&part->rewrite_mu);
    if (!part->rc_loaded) {
        mq_part_dir_fd(part); /* the fd cache may have closed it; reopened under rewrite_mu, which it needs */
        part->rc_below = mq_rcp_read(part);
        part->rc_loaded = true;
    }
    enum mq_err err = MQ_OK;
    int codec;
    int64_t next_base;
    struct mq_segment *seg;
    while (!(stop && atomic_load(stop)) && (seg = mq_rc_due(part, now_ms, &codec, &next_base)) != NULL) {
        int64_t saved = 0;
        mq_part_dir_fd(part); /* as above; a failure shows in the rewrite's own directory calls */
        enum mq_rc_result res = mq_rc_segment(part, seg, next_base, codec, stop, &saved);
        mq_seg_unref(seg);
        if (res == MQ_RC_STOPPED)
            break;
        if (res == MQ_RC_FAILED) {
            err = MQ_ERR_IO;
            break;
        }
        if (res == MQ_RC_DONE) {
            if (segments)
                (*segments)++;
            atomic_fetch_add(&part->log->recompacted_segments, 1);
            atomic_fetch_add(&part->log->recompact_saved_bytes, saved);
        }
        part->rc_below = next_base;
        mq_rcp_write(part, next_base);
    }
    pthread_mutex_unlock(&part->rewrite_mu);
    pthread_mutex_unlock(&mq_rc_mu);
    return err;
}

enum mq_err mq_part_recompact(struct mq_part *part, int64_t now_ms, int *segments)
{
    return mq_part_recompact_stop(part, now_ms, segments, NULL);
}

/* ---- the recompactor thread ---- */

enum mq_err mq_log_recompact(struct mq_log *log, int64_t now_ms)
{
    if (log->mode != MQ_LOG_WRITE)
        return MQ_ERR_READONLY;
    pthread_mutex_lock(&log->mu);
    size_t n = log->nparts;
    struct mq_part **parts = malloc((n ? n : 1) * sizeof *parts);
    if (parts && n)
        memcpy(parts, log->parts, n * sizeof *parts);
    pthread_mutex_unlock(&log->mu);
    if (!parts)
        return MQ_ERR_NOMEM;
    enum mq_err first = MQ_OK;
    for (size_t i = 0; i < n && !atomic_load(&log->rc_stop); i++) {
        enum mq_err err = mq_part_recompact_stop(parts[i], now_ms, NULL, &log->rc_stop);
        if (err != MQ_OK && first == MQ_OK)
            first = err;
    }
    free(parts);
    return first;
}

static void *mq_recompactor(void *arg)
{
    struct mq_log *log = arg;
    pthread_mutex_lock(&log->rc_mu);
    while (!atomic_load(&log->rc_stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += MQ_RECOMPACT_POLL_MS / 1000;
        pthread_cond_timedwait(&log->rc_cv, &log->rc_mu, &ts);
        if (atomic_load(&log->rc_stop))
            break;
        pthread_mutex_unlock(&log->rc_mu);
        (void)mq_log_recompact(log, mq_now_ms()); /* failures are logged per segment and retried */
        pthread_mutex_lock(&log->rc_mu);
    }
    pthread_mutex_unlock(&log->rc_mu);
    return NULL;
}

enum mq_err mq_recompactor_start(struct mq_log *log)
{
    pthread_mutex_init(&log->rc_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&log->rc_cv, &ca);
    pthread_condattr_destroy(&ca);
    log->rc_inited = true;
    if (log->conf.recompact_after_ms < 0)
        return MQ_OK; /* off: mq_log_recompact() still works for a caller */
    if (pthread_create(&log->rc_thread, NULL, mq_recompactor, log) != 0)
        return MQ_ERR_NOMEM;
    pthread_setname_np(log->rc_thread, "mqlog-recompact"); /* for top -H and /proc */
    log->rc_started = true;
    return MQ_OK;
}

void mq_recompactor_stop(struct mq_log *log)
{
    if (!log->rc_inited)
        return;
    pthread_mutex_lock(&log->rc_mu);
    atomic_store(&log->rc_stop, true);
    pthread_cond_signal(&log->rc_cv);
    pthread_mutex_unlock(&log->rc_mu);
    if (log->rc_started)
        pthread_join(log->rc_thread, NULL);
    log->rc_started = false;
}

void mq_recompactor_free(struct mq_log *log)
{
    if (!log->rc_inited)
        return;
    pthread_mutex_destroy(&log->rc_mu);
    pthread_cond_destroy(&log->rc_cv);
    log->rc_inited = false;
}
