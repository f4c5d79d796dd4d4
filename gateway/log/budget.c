/*
 * budget.c - the disk budget: the one place that decides how many bytes the log may keep on disk, and what
 * goes first when it holds more.
 *
 * The budget has two limits, either or both set:
 *   log.max_disk_bytes  the total of the segment (.log) files of every partition of the data directory,
 *                       open or not. Index files and recovery points are not counted.
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
 * Partitions are opened lazily (mqlogd opens one when it first writes or serves it), and 10,000 of them must
 * stay cheap, so the log does not open them all to count them: at open it lists the partition directories
 * and stats their segment files (mq_budget_scan(); nothing stays open), and keeps one small "cold" entry per
 * partition not opened since: its bytes and the base offset of its oldest segment. A pass counts the cold
 * bytes with the open partitions'. When it must delete and the oldest segment of all is a cold partition's
 * (by the newest timestamp of that segment, read from its time index the first time a pass needs it, or its
 * file's mtime when the index has no entry), it opens that partition then (mq_log_part_for_budget()), which
 * turns the entry into an open partition whose forwarder hold is asked as for any other, and weighs again.
 * A cold entry is assumed unheld until then: opening it is what lets the hold be asked.
 *
 * Locks: space_mu guards the counts of the write-time check and is taken under part->mu (by the writer) or
 * alone; budget_mu serialises passes, which take each partition's mu in turn and never hold space_mu then.
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
#include <sys/statvfs.h>
#include <unistd.h>

#include "log/batch.h"
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
    st->unread_partitions = mq_log_usage(log, &st->open_bytes, &st->durable_lag, MQ_LOG_STATS_WAIT_MS);
}

int64_t mq_log_heartbeat_ms(struct mq_log *log)
{
    return atomic_load(&log->heartbeat_ms);
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

/* ---- the partitions not open: cold entries ---- */

static int mq_cold_cmp(const void *a, const void *b)
{
    const struct mq_cold_part *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* Whether name is a segment file name ("%020d.log"); its base offset in *base. */
static bool mq_cold_seg_name(const char *name, int64_t *base)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

struct mq_cold_scan {
    struct mq_log *log;
    size_t cap;
    enum mq_err err;
};

static void mq_cold_scan_one(void *opaque, const char *topic, int32_t id)
{
    struct mq_cold_scan *sc = opaque;
    struct mq_log *log = sc->log;
    if (sc->err != MQ_OK)
        return;
    char *path = NULL;
    if (asprintf(&path, "%s/%s-%d", log->dir, topic, (int)id) < 0) {
        sc->err = MQ_ERR_NOMEM;
        return;
    }
    DIR *d = opendir(path);
    free(path);
    if (!d)
        return; /* gone meanwhile, or not readable: opening it would fail too, and report why */
    struct mq_cold_part c = {.id = id, .first = -1};
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t base;
        struct stat st;
        if (!mq_cold_seg_name(de->d_name, &base) || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        c.bytes += (int64_t)st.st_size;
        if (c.first < 0 || base < c.first)
            c.first = base;
    }
    closedir(d);
    if (log->ncold == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        struct mq_cold_part *nc = realloc(log->cold, cap * sizeof *nc);
        if (!nc) {
            sc->err = MQ_ERR_NOMEM;
            return;
        }
        log->cold = nc;
        sc->cap = cap;
    }
    if (!(c.topic = strdup(topic))) {
        sc->err = MQ_ERR_NOMEM;
        return;
    }
    log->cold[log->ncold++] = c;
    log->cold_bytes += c.bytes;
}

enum mq_err mq_budget_scan(struct mq_log *log)
{
    struct mq_cold_scan sc = {log, 0, MQ_OK};
    enum mq_err err = mq_log_scan_dirs(log->dir, mq_cold_scan_one, &sc);
    if (err == MQ_OK)
        err = sc.err;
    if (err != MQ_OK) {
        mq_budget_cold_free(log);
        return err;
    }
    if (log->ncold > 1)
        qsort(log->cold, log->ncold, sizeof *log->cold, mq_cold_cmp);
    log->budget_used = log->cold_bytes;
    atomic_store(&log->disk_bytes, log->cold_bytes);
    return MQ_OK;
}

/* The entry of topic-id (cold_mu held), gone or not; NULL when there is none. */
static struct mq_cold_part *mq_cold_find(struct mq_log *log, const char *topic, int32_t id)
{
    struct mq_cold_part key = {.topic = (char *)topic, .id = id};
    return log->ncold ? bsearch(&key, log->cold, log->ncold, sizeof *log->cold, mq_cold_cmp) : NULL;
}

/* Marks c gone (cold_mu held); returns the bytes it counted. */
static int64_t mq_cold_gone(struct mq_log *log, struct mq_cold_part *c)
{
    if (c->gone)
        return 0;
    c->gone = true;
    log->cold_bytes -= c->bytes;
    return c->bytes;
}

int64_t mq_budget_cold_take(struct mq_log *log, const char *topic, int32_t id)
{
    pthread_mutex_lock(&log->cold_mu);
    struct mq_cold_part *c = mq_cold_find(log, topic, id);
    int64_t bytes = c ? mq_cold_gone(log, c) : 0;
    pthread_mutex_unlock(&log->cold_mu);
    return bytes;
}

void mq_budget_cold_forget(struct mq_log *log, const char *topic)
{
    pthread_mutex_lock(&log->cold_mu);
    for (size_t i = 0; i < log->ncold; i++)
        if (strcmp(log->cold[i].topic, topic) == 0)
            (void)mq_cold_gone(log, &log->cold[i]); /* the next pass counts without them */
    pthread_mutex_unlock(&log->cold_mu);
}

void mq_budget_cold_free(struct mq_log *log)
{
    for (size_t i = 0; i < log->ncold; i++)
        free(log->cold[i].topic);
    free(log->cold);
    log->cold = NULL;
    log->ncold = 0;
    log->cold_bytes = 0;
}

/* The newest timestamp of the oldest segment of c: the last entry of its time index, as an open partition's
 * closed segment tells it (mq_seg_max_ts()), or the mtime of its file when the index has none (a small or
 * active segment), which is when its newest record was written. */
static int64_t mq_cold_first_ts(struct mq_log *log, const struct mq_cold_part *c)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s-%d/%020" PRId64 ".timeindex", log->dir, c->topic, (int)c->id, c->first) < 0)
        return -1;
    int64_t ts = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        int64_t n = mq_fd_size(fd) / MQ_TIDX_ENTRY;
        uint8_t e[MQ_TIDX_ENTRY];
        if (n > 0 && pread(fd, e, sizeof e, (off_t)((n - 1) * MQ_TIDX_ENTRY)) == (ssize_t)sizeof e)
            ts = (int64_t)mq_be64_get(e);
        close(fd);
    }
    struct stat st;
    size_t len = strlen(path);
    memcpy(path + len - strlen(".timeindex"), ".log", sizeof ".log");
    if (ts < 0 && stat(path, &st) == 0)
        ts = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    free(path);
    return ts;
}

/* The cold entry whose oldest segment is the oldest (its topic copied into *topic, which the caller frees);
 * false when no cold entry has a segment that could go. */
static bool mq_cold_pick(struct mq_log *log, char **topic, int32_t *id, int64_t *max_ts)
{
    pthread_mutex_lock(&log->cold_mu);
    struct mq_cold_part *best = NULL;
    for (size_t i = 0; i < log->ncold; i++) {
        struct mq_cold_part *c = &log->cold[i];
        if (c->gone || c->stuck || c->bytes <= 0 || c->first < 0)
            continue;
        if (!c->ts_known) { /* once per entry: a cold partition does not change */
            c->first_ts = mq_cold_first_ts(log, c);
            c->ts_known = true;
        }
        if (!best || c->first_ts < best->first_ts)
            best = c;
    }
    bool ok = best && (*topic = strdup(best->topic)) != NULL;
    if (ok) {
        *id = best->id;
        *max_ts = best->first_ts;
    }
    pthread_mutex_unlock(&log->cold_mu);
    return ok;
}

/* A cold entry that could not be opened is not picked again; one whose directory is gone no longer counts
 * (returns its bytes). */
static int64_t mq_cold_failed(struct mq_log *log, const char *topic, int32_t id, enum mq_err err)
{
    pthread_mutex_lock(&log->cold_mu);
    struct mq_cold_part *c = mq_cold_find(log, topic, id);
    int64_t gone = 0;
    if (c && err == MQ_ERR_NOENT)
        gone = mq_cold_gone(log, c);
    else if (c)
        c->stuck = true;
    pthread_mutex_unlock(&log->cold_mu);
    if (err != MQ_ERR_NOENT)
        MQ_WARN("%s/%s-%d: disk budget: cannot open the partition to delete its oldest segment: %s", log->dir,
                topic, (int)id, mq_strerror(err));
    return gone;
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

/* Grows the pass's arrays to hold one partition more. */
static bool mq_budget_grow(struct mq_part ***parts, int64_t **holds, bool **skip, size_t n, size_t *cap)
{
    if (n < *cap)
        return true;
    size_t cap2 = *cap * 2;
    struct mq_part **p = realloc(*parts, cap2 * sizeof *p);
    if (p)
        *parts = p;
    int64_t *h = p ? realloc(*holds, cap2 * sizeof *h) : NULL;
    if (h)
        *holds = h;
    bool *s = h ? realloc(*skip, cap2 * sizeof *s) : NULL;
    if (s)
        *skip = s;
    if (s)
        *cap = cap2;
    return s != NULL;
}

bool mq_log_budget(struct mq_log *log)
{
    const struct mq_log_conf *conf = &log->conf;
    if (!mq_budget_on(conf))
        return false;
    pthread_mutex_lock(&log->budget_mu);
    /* Count anew, under space_mu so that no write is counted twice or lost: a write admitted before is in
     * budget_inflight until mq_budget_wrote(), and in the segment sizes from a moment before that; the
     * overlap counts it twice for a moment, which only keeps more room. The table, the cold bytes and
     * space_mu are taken together: a partition opened meanwhile moves its bytes from the cold entry to the
     * open ones under space_mu after this count (mq_log_part()). */
    struct mq_budget_goal g = {conf->max_disk_bytes, conf->min_free_bytes, 0, -1, 0, 0, 0};
    size_t n;
    pthread_mutex_lock(&log->mu);
    struct mq_part **parts = mq_log_parts_copy(log, &n);
    pthread_mutex_lock(&log->cold_mu);
    int64_t total = log->cold_bytes;
    pthread_mutex_lock(&log->space_mu);
    pthread_mutex_unlock(&log->cold_mu);
    pthread_mutex_unlock(&log->mu);
    for (size_t i = 0; parts && i < n; i++)
        total += mq_part_disk_bytes(parts[i]);
    if (!parts) {
        pthread_mutex_unlock(&log->space_mu);
        pthread_mutex_unlock(&log->budget_mu);
        return false; /* the next check tries again */
    }
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
        free(parts);
        pthread_mutex_unlock(&log->budget_mu);
        return g.want > 0;
    }
    /* The holds are asked once per pass: a forwarder that moves on meanwhile only makes the count of
     * dropped records an upper bound. */
    size_t cap = n + 8;
    struct mq_part **grown = realloc(parts, cap * sizeof *grown);
    if (grown)
        parts = grown;
    int64_t *holds = malloc(cap * sizeof *holds);
    bool *skip = calloc(cap, sizeof *skip);
    if (!grown || !holds || !skip) {
        free(parts);
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
        char *ctopic = NULL;
        int32_t cid;
        int64_t cts;
        bool cold = mq_cold_pick(log, &ctopic, &cid, &cts) && (i < 0 || f.next > holds[i] || cts < f.max_ts);
        if (!cold)
            free(ctopic); /* an open partition's segment goes first */
        if (cold) {
            /* The oldest segment is a cold partition's (or the oldest open one is held): open it, ask its
             * hold and weigh again. */
            struct mq_part *part = NULL;
            enum mq_err err = mq_budget_grow(&parts, &holds, &skip, n, &cap)
                                  ? mq_log_part_for_budget(log, ctopic, cid, &part)
                                  : MQ_ERR_NOMEM;
            if (err != MQ_OK) {
                int64_t gone = mq_cold_failed(log, ctopic, cid, err);
                total -= gone;
                g.used -= gone;
            } else {
                bool known = false;
                for (size_t j = 0; j < n && !known; j++)
                    known = parts[j] == part;
                if (!known) {
                    parts[n] = part;
                    holds[n] = mq_log_hold(log, part);
                    skip[n] = false;
                    n++;
                }
            }
            free(ctopic);
            continue;
        }
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
    free(parts);
    free(holds);
    free(skip);
    pthread_mutex_unlock(&log->budget_mu);
    return g.want > 0 && deleted && !stuck;
}
