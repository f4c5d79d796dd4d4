/*
 * log.c - a data directory: the writer lock, the partition table and the flusher thread.
 *
 * The flusher is the group commit: it wakes every flush_interval_ms (or at once when a producer passes
 * flush_bytes, or, with flush always, as soon as there is anything to write), writes each partition's open
 * batch and fdatasyncs it, so that many records share one sync. It also applies retention every
 * retention_check_ms and makes the disk budget's passes (budget.c): every second, and at once when the budget
 * refused a write. Every MQ_TRIM_MS it lets the partitions that went idle give back their write buffers
 * (mq_part_trim()).
 */
#include "log/log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "util/diag.h"
#include "util/lockwait.h"
#include "util/parse.h"

void mq_log_conf_defaults(struct mq_log_conf *conf)
{
    conf->flush_interval_ms = 5;
    conf->flush_bytes = 1 << 20;
    conf->segment_bytes = 1LL << 30;
    conf->segment_ms = 7LL * 24 * 3600 * 1000;
    conf->index_interval_bytes = 4096;
    conf->batch_bytes = 256 * 1024;
    conf->max_pending_bytes = 64LL << 20;
    conf->checkpoint_bytes = 64LL << 20;
    conf->retention_check_ms = 5 * 60 * 1000;
    conf->max_disk_bytes = 0;
    conf->recompact_after_ms = 0;
    conf->min_free_bytes = 0;
    conf->max_open_files = 0;
}

const char *mq_log_dir(const struct mq_log *log)
{
    return log->dir;
}

enum mq_log_mode mq_log_mode(const struct mq_log *log)
{
    return log->mode;
}

/* Whether the running kernel is at least major.minor. */
static bool mq_kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma, mi;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

/* A maintenance pass over parts[0..n): retention of each, then the disk budget over them all. */
static enum mq_err mq_log_maintain(struct mq_log *log, struct mq_part **parts, size_t n, int64_t now_ms)
{
    enum mq_err first = MQ_OK;
    for (size_t i = 0; i < n; i++) {
        enum mq_err err = mq_part_apply_retention(parts[i], now_ms, NULL);
        if (err != MQ_OK && first == MQ_OK)
            first = err;
    }
    mq_log_budget(log);
    return first;
}

/* Partitions are never freed before the log closes (a deleted topic's are retired, not freed), so the
 * pointers of a copy stay valid once the table lock is released. */
struct mq_part **mq_log_parts_copy(struct mq_log *log, size_t *n)
{
    *n = log->nparts;
    struct mq_part **parts = malloc((*n ? *n : 1) * sizeof *parts);
    if (parts && *n)
        memcpy(parts, log->parts, *n * sizeof *parts);
    return parts;
}

int64_t mq_log_usage(struct mq_log *log, int64_t *bytes, int64_t *durable_lag, int64_t wait_ms)
{
    /* One deadline for the whole count: once it has passed, each lock is only tried. The table lock too:
     * the flusher holds it only between turns, but an opening partition's recovery holds it longer. */
    struct timespec deadline = mq_deadline_in_ms(wait_ms);
    *bytes = *durable_lag = 0;
    if (!mq_mutex_lock_before(&log->mu, &deadline))
        return (int64_t)log->nparts; /* a racy read, for the count only */
    size_t n;
    struct mq_part **parts = mq_log_parts_copy(log, &n);
    pthread_mutex_unlock(&log->mu);
    int64_t unread = 0;
    for (size_t i = 0; parts && i < n; i++) {
        int64_t b, lag;
        if (mq_part_usage_within(parts[i], &deadline, &b, &lag)) {
            *bytes += b;
            *durable_lag += lag;
        } else {
            unread++;
        }
    }
    free(parts);
    return unread;
}

enum mq_err mq_log_apply_retention(struct mq_log *log, int64_t now_ms)
{
    if (log->mode != MQ_LOG_WRITE)
        return MQ_ERR_READONLY;
    size_t n;
    pthread_mutex_lock(&log->mu);
    struct mq_part **parts = mq_log_parts_copy(log, &n);
    pthread_mutex_unlock(&log->mu);
    if (!parts)
        return MQ_ERR_NOMEM;
    enum mq_err err = mq_log_maintain(log, parts, n, now_ms);
    free(parts);
    return err;
}

/*
 * Group commit over many partitions. One fdatasync per dirty file costs a journal commit each on ext4, so a
 * flush of 1,000 partitions took ~200 ms; syncfs(2) makes the whole filesystem durable with one commit
 * (~15 ms for 1,000 files, ~4 ms for 16 to 256; measured on this project's ext4 virtual disk). From a few
 * files on it wins; below, one or two fdatasyncs are cheaper than a syncfs. But syncfs also waits for every
 * other process's dirty pages on the filesystem: with another writer's gigabytes in the page cache a syncfs
 * took 200-600 ms. So between MQ_SYNCFS_MIN_FILES and MQ_SYNCFS_ANY_DIRTY files it is used only while the
 * machine's dirty page cache is mostly ours; from MQ_SYNCFS_ANY_DIRTY files on, one fdatasync each costs
 * more than such a wait. Its error reporting (the filesystem's writeback error since sync_fd was opened)
 * covers every file we wrote, so the durability contract holds: nothing is published before it returns 0.
 */
#define MQ_SYNCFS_MIN_FILES     4
#define MQ_SYNCFS_ANY_DIRTY     64
#define MQ_SYNCFS_FOREIGN_DIRTY (64LL << 20)
#define MQ_FLUSH_CHUNK          512 /* partitions flushed together: each holds its active segment open */

/* Dirty and under-writeback page cache of the whole machine, bytes (-1 when unknown). */
static int64_t mq_dirty_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return -1;
    char line[128];
    int64_t total = 0;
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (sscanf(line, "Dirty: %lld kB", &kb) == 1 || sscanf(line, "Writeback: %lld kB", &kb) == 1) {
            total += kb * 1024;
            seen++;
        }
    }
    fclose(f);
    return seen == 2 ? total : -1;
}

/* Whether one syncfs beats `files` fdatasyncs of `ours` bytes now. */
static bool mq_log_syncfs_worth(const struct mq_log *log, size_t files, int64_t ours)
{
    if (!log->syncfs_ok || files < MQ_SYNCFS_MIN_FILES)
        return false;
    if (files >= MQ_SYNCFS_ANY_DIRTY)
        return true;
    int64_t dirty = mq_dirty_bytes();
    return dirty >= 0 && dirty - ours <= MQ_SYNCFS_FOREIGN_DIRTY;
}

static enum mq_err mq_log_syncfs(struct mq_log *log)
{
    atomic_fetch_add(&log->fsyncs, 1);
    return syncfs(log->sync_fd) == 0 ? MQ_OK : mq_err_from_errno(errno);
}

/* Syncs the partitions' staged flushes fl[0..k) with syncfs: the recovery points' temporary files are
 * written first so that the one syncfs covers them, renamed after it, and the renames synced by a second
 * syncfs (rare: checkpoints are due after a roll and every checkpoint_bytes). */
static enum mq_err mq_log_flush_fs(struct mq_log *log, struct mq_flush *fl, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (fl[i].ckpt && mq_rp_stage(fl[i].part, &fl[i].rp) == MQ_OK)
            fl[i].rp_staged = true;
    enum mq_err serr = mq_log_syncfs(log);
    if (serr != MQ_OK)
        return serr;
    bool installed = false;
    for (size_t i = 0; i < k; i++) {
        if (!fl[i].rp_staged)
            continue;
        if (mq_rp_install(fl[i].part) == MQ_OK)
            installed = true;
        else
            fl[i].ckpt = false;
    }
    if (!installed || (serr = mq_log_syncfs(log)) != MQ_OK)
        return serr;
    for (size_t i = 0; i < k; i++)
        if (fl[i].rp_staged && fl[i].ckpt)
            atomic_store(&fl[i].part->rp_seg_base, fl[i].rp.seg_base); /* durable now (recompact.c) */
    return MQ_OK;
}

/* The flusher's tick over parts[0..n): partitions with something to write, MQ_FLUSH_CHUNK at a time. */
static void mq_log_flush_parts(struct mq_log *log, struct mq_part **parts, size_t n)
{
    /* A partition being flushed keeps its descriptors (fdcache.c): at most half the cache's share at once. */
    size_t chunk = log->fdc_max / 2 < MQ_FLUSH_CHUNK ? log->fdc_max / 2 : MQ_FLUSH_CHUNK;
    size_t cap = n < chunk ? n : chunk;
    struct mq_flush *fl = malloc((cap ? cap : 1) * sizeof *fl);
    if (!fl) {
        for (size_t i = 0; i < n; i++)
            if (mq_part_has_unflushed(parts[i]))
                mq_part_flush_tick(parts[i]);
        return;
    }
    for (size_t at = 0; at < n;) {
        size_t k = 0, files = 0;
        int64_t bytes = 0;
        for (; at < n && k < cap; at++) {
            struct mq_part *part = parts[at];
            if (!mq_part_has_unflushed(part))
                continue;
            if (!part->on_log_fs) { /* a partition directory on another filesystem: syncfs misses it */
                mq_part_flush_tick(part);
                continue;
            }
            pthread_mutex_lock(&part->flush_mu);
            mq_part_flush_begin(part, &fl[k]);
            if (fl[k].err != MQ_OK) {
                pthread_mutex_unlock(&part->flush_mu);
                continue;
            }
            files += mq_flush_files(&fl[k]);
            bytes += fl[k].bytes;
            k++;
        }
        bool fs = mq_log_syncfs_worth(log, files, bytes);
        enum mq_err serr = fs ? mq_log_flush_fs(log, fl, k) : MQ_OK;
        for (size_t i = 0; i < k; i++)
            mq_part_flush_end(&fl[i], fs ? serr : mq_part_flush_sync(&fl[i]));
        for (size_t i = 0; i < k; i++)
            pthread_mutex_unlock(&fl[i].part->flush_mu);
        for (size_t i = 0; i < k; i++)
            mq_part_flush_notify(&fl[i]);
    }
    free(fl);
}

/*
 * Closes every partition cleanly. One by one, a clean close syncs the active segment's index files, writes
 * a recovery point and syncs its directory: four syncs a partition, minutes for 10,000 of them. With syncfs
 * (see above) it is a group commit like any other: every partition is flushed, its index sealed and its
 * recovery point staged, then one syncfs, the renames, and one more. A partition that cannot take part
 * (stopped, a backlog on a full disk, on another filesystem) closes the slow way.
 */
static enum mq_err mq_log_close_parts(struct mq_log *log)
{
    enum mq_err first = MQ_OK;
    bool *staged = NULL;
    if (log->mode == MQ_LOG_WRITE && log->syncfs_ok && log->nparts > 1 &&
        (staged = calloc(log->nparts, sizeof *staged)) != NULL) {
        for (size_t i = 0; i < log->nparts; i++)
            mq_fdc_forget(log->parts[i]); /* from here on this thread alone touches them */
        mq_log_flush_parts(log, log->parts, log->nparts);
        for (size_t i = 0; i < log->nparts; i++)
            staged[i] = mq_part_close_stage(log->parts[i]);
        enum mq_err serr = mq_log_syncfs(log);
        for (size_t i = 0; i < log->nparts && serr == MQ_OK; i++)
            if (staged[i] && mq_rp_install(log->parts[i]) != MQ_OK)
                staged[i] = false; /* said why; the next open scans from the previous point */
        if (serr == MQ_OK)
            serr = mq_log_syncfs(log);
        if (serr != MQ_OK) {
            /* the data was made durable by the flush; the indexes and recovery points may not be: the next
             * open checks them and scans */
            MQ_ERROR("%s: syncfs failed at close (%s): the next open recovers by scanning", log->dir,
                     mq_strerror(serr));
            first = MQ_ERR_IO;
        }
    }
    for (size_t i = 0; i < log->nparts; i++) {
        enum mq_err err = MQ_OK;
        if (staged && staged[i])
            mq_part_free(log->parts[i]);
        else
            err = mq_part_close(log->parts[i], true);
        if (err != MQ_OK && first == MQ_OK)
            first = err;
    }
    free(staged);
    return first;
}

static void *mq_log_flusher(void *arg)
{
    struct mq_log *log = arg;
    int64_t next_retention = mq_mono_ms() + log->conf.retention_check_ms;
    int64_t next_budget = mq_mono_ms() + MQ_BUDGET_CHECK_MS;
    int64_t next_trim = mq_mono_ms() + MQ_TRIM_MS;
    int64_t last_budget = 0;
    pthread_mutex_lock(&log->mu);
    while (!log->stop) {
        atomic_store(&log->heartbeat_ms, mq_mono_ms()); /* /healthz: the flusher turns */
        if (!log->kick) {
            int64_t wait_ms = log->conf.flush_interval_ms > 0 ? log->conf.flush_interval_ms : 1000;
            struct timespec ts = mq_deadline_in_ms(wait_ms);
            pthread_cond_timedwait(&log->cv, &log->mu, &ts);
        }
        if (log->stop)
            break;
        log->kick = false;
        size_t n;
        struct mq_part **parts = mq_log_parts_copy(log, &n);
        pthread_mutex_unlock(&log->mu);
        if (parts) {
            mq_log_flush_parts(log, parts, n);
            /* Retention is slow to matter. The disk budget refuses writes that do not fit (budget.c); a
             * refusal asks for a pass at once, to make room, which the backlogs then take at once (the
             * kick). A pass every second also catches others filling the file system. While nothing can
             * be deleted, refusals ask for a pass at most every MQ_BUDGET_STUCK_MS. */
            int64_t mono = mq_mono_ms();
            if (mono >= next_trim) {
                next_trim = mono + MQ_TRIM_MS;
                for (size_t i = 0; i < n; i++)
                    mq_part_trim(parts[i]);
            }
            bool due = mq_budget_on(&log->conf) && atomic_load(&log->budget_due) &&
                       (!atomic_load(&log->budget_stuck) || mono >= last_budget + MQ_BUDGET_STUCK_MS);
            bool room = false;
            if (mono >= next_retention) {
                next_retention = mono + log->conf.retention_check_ms;
                next_budget = mono + MQ_BUDGET_CHECK_MS;
                last_budget = mono;
                atomic_store(&log->budget_due, false);
                mq_log_maintain(log, parts, n, mq_now_ms());
            } else if (mq_budget_on(&log->conf) && (due || mono >= next_budget)) {
                next_budget = mono + MQ_BUDGET_CHECK_MS;
                last_budget = mono;
                atomic_store(&log->budget_due, false);
                room = mq_log_budget(log);
            }
            free(parts);
            if (room) {
                pthread_mutex_lock(&log->mu);
                log->kick = true;
                pthread_mutex_unlock(&log->mu);
            }
        }
        pthread_mutex_lock(&log->mu);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

static enum mq_err mq_mkdir_p(const char *dir)
{
    char *tmp = strdup(dir);
    if (!tmp)
        return MQ_ERR_NOMEM;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free(tmp);
            return mq_err_from_errno(e);
        }
        *p = '/';
    }
    enum mq_err err = MQ_OK;
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        err = mq_err_from_errno(errno);
    free(tmp);
    return err;
}

void mq_log_conf_get(const struct mq_log *log, struct mq_log_conf *conf)
{
    *conf = log->conf;
}

enum mq_err mq_log_open(const char *dir, enum mq_log_mode mode, const struct mq_log_conf *conf,
                        struct mq_log **logp, char *errstr, size_t errstr_size)
{
    struct mq_log *log = calloc(1, sizeof *log);
    if (!log)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    log->lock_fd = log->sync_fd = -1;
    log->mode = mode;
    if (conf)
        log->conf = *conf;
    else
        mq_log_conf_defaults(&log->conf);
    pthread_mutex_init(&log->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&log->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&log->cb_cv, NULL);
    pthread_mutex_init(&log->budget_mu, NULL);
    pthread_mutex_init(&log->space_mu, NULL);
    pthread_mutex_init(&log->cold_mu, NULL);
    mq_fdc_init(log);
    log->dir = strdup(dir);
    enum mq_err err = MQ_OK;
    if (!log->dir) {
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    const struct mq_log_conf *c = &log->conf;
    if (c->flush_interval_ms < 0 || c->flush_bytes < 0 || c->segment_bytes < 4096 ||
        c->segment_bytes > INT32_MAX || c->index_interval_bytes < 0 || c->batch_bytes < 1 ||
        c->batch_bytes > MQ_BATCH_MAX_SIZE || c->max_pending_bytes < c->batch_bytes ||
        c->checkpoint_bytes < 1 || c->retention_check_ms < 1 || c->max_disk_bytes < 0 ||
        c->recompact_after_ms < -1 || c->min_free_bytes < 0) {
        err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid log settings");
        goto fail;
    }
    struct stat st;
    if (mode == MQ_LOG_WRITE) {
        if ((err = mq_mkdir_p(dir)) != MQ_OK) {
            mq_errf(err, errstr, errstr_size, "cannot create data directory %s: %s", dir, MQ_STRERROR(errno));
            goto fail;
        }
        char *lock_path = NULL;
        if (asprintf(&lock_path, "%s/.lock", dir) < 0) {
            err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto fail;
        }
        log->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        free(lock_path);
        if (log->lock_fd < 0) {
            err = mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "cannot open %s/.lock: %s", dir,
                          MQ_STRERROR(errno));
            goto fail;
        }
        if (flock(log->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            err = mq_errf(errno == EWOULDBLOCK ? MQ_ERR_BUSY : MQ_ERR_IO, errstr, errstr_size,
                          "data directory %s is in use by another writer (mqlogd?)", dir);
            goto fail;
        }
        char pid[32];
        int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(log->lock_fd, 0) != 0 || pwrite(log->lock_fd, pid, (size_t)len, 0) != len)
            MQ_DEBUG("%s/.lock: could not record the pid", dir);
        /* Before the flusher starts: the budget counts every partition on disk from its first pass. */
        if (mq_budget_on(c) && (err = mq_budget_scan(log)) != MQ_OK) {
            mq_errf(err, errstr, errstr_size, "cannot list the partitions of %s for the disk budget: %s", dir,
                    mq_strerror(err));
            goto fail;
        }
        log->sync_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        log->syncfs_ok = log->sync_fd >= 0 && mq_kernel_at_least(5, 8);
        if (pthread_create(&log->flusher, NULL, mq_log_flusher, log) != 0) {
            err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "cannot start the flusher thread");
            goto fail;
        }
        log->flusher_started = true;
        /* named for top -H and /proc; the watchdog test freezes this thread by its name */
        pthread_setname_np(log->flusher, "mqlog-flusher");
        if (mq_recompactor_start(log) != MQ_OK) {
            err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "cannot start the recompactor thread");
            goto fail;
        }
    } else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err = mq_errf(MQ_ERR_NOENT, errstr, errstr_size, "data directory %s does not exist", dir);
        goto fail;
    }
    *logp = log;
    return MQ_OK;
fail:
    mq_log_close(log);
    return err;
}

enum mq_err mq_log_close(struct mq_log *log)
{
    if (!log)
        return MQ_OK;
    mq_recompactor_stop(log); /* a rewrite in progress is abandoned: its files go at the next open */
    if (log->flusher_started) {
        pthread_mutex_lock(&log->mu);
        log->stop = true;
        pthread_cond_signal(&log->cv);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->flusher, NULL);
    }
    enum mq_err first = mq_log_close_parts(log);
    free(log->parts);
    /* their files are gone or going: nothing is flushed or checkpointed into a directory of that name, which
     * may hold a new topic by now */
    for (size_t i = 0; i < log->nretired; i++)
        mq_part_free(log->retired[i]);
    free(log->retired);
    if (log->sync_fd >= 0)
        close(log->sync_fd);
    if (log->lock_fd >= 0)
        close(log->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    pthread_cond_destroy(&log->cb_cv);
    pthread_mutex_destroy(&log->budget_mu);
    pthread_mutex_destroy(&log->fdc_mu);
    mq_recompactor_free(log);
    pthread_mutex_destroy(&log->space_mu);
    mq_budget_cold_free(log);
    pthread_mutex_destroy(&log->cold_mu);
    free(log->dir);
    free(log);
    return first;
}

/* Replaces a hook and waits for the calls of the replaced function in progress, and only for them (calls of
 * the new one count under the new generation). */
static void mq_log_hook_set(struct mq_log *log, struct mq_log_hook *h, void (*fn)(void), void *opaque)
{
    pthread_mutex_lock(&log->mu);
    h->fn = fn;
    h->opaque = opaque;
    h->gen++;
    h->old_calls += h->calls;
    h->calls = 0;
    while (h->old_calls > 0)
        pthread_cond_wait(&log->cb_cv, &log->mu);
    pthread_mutex_unlock(&log->mu);
}

/* Starts a call: returns the function (NULL when none is set) and counts the call under *gen. */
static void (*mq_log_hook_enter(struct mq_log *log, struct mq_log_hook *h, void **opaque,
                                uint64_t *gen))(void)
{
    pthread_mutex_lock(&log->mu);
    void (*fn)(void) = h->fn;
    *opaque = h->opaque;
    *gen = h->gen;
    if (fn)
        h->calls++;
    pthread_mutex_unlock(&log->mu);
    return fn;
}

static void mq_log_hook_leave(struct mq_log *log, struct mq_log_hook *h, uint64_t gen)
{
    pthread_mutex_lock(&log->mu);
    if (gen == h->gen)
        h->calls--;
    else if (--h->old_calls == 0)
        pthread_cond_broadcast(&log->cb_cv);
    pthread_mutex_unlock(&log->mu);
}

void mq_log_set_durable_cb(struct mq_log *log, mq_durable_cb *cb, void *opaque)
{
    mq_log_hook_set(log, &log->durable, (void (*)(void))cb, opaque);
}

void mq_log_durable_notify(struct mq_log *log, struct mq_part *part, int64_t durable_end)
{
    void *opaque;
    uint64_t gen;
    mq_durable_cb *cb = (mq_durable_cb *)mq_log_hook_enter(log, &log->durable, &opaque, &gen);
    if (!cb)
        return;
    /* No lock held: the callback may take its own locks, and a caller of mq_log_set_durable_cb may hold
     * them while it waits here for the callback to return. */
    cb(opaque, part, durable_end);
    mq_log_hook_leave(log, &log->durable, gen);
}

void mq_log_set_hold(struct mq_log *log, mq_hold_fn *fn, void *opaque)
{
    mq_log_hook_set(log, &log->hold, (void (*)(void))fn, opaque);
}

int64_t mq_log_hold(struct mq_log *log, struct mq_part *part)
{
    void *opaque;
    uint64_t gen;
    mq_hold_fn *fn = (mq_hold_fn *)mq_log_hook_enter(log, &log->hold, &opaque, &gen);
    if (!fn)
        return INT64_MAX;
    int64_t hold = fn(opaque, part);
    mq_log_hook_leave(log, &log->hold, gen);
    return hold;
}

enum mq_err mq_log_topic_create(struct mq_log *log, const char *topic, int32_t partitions)
{
    if (log->mode != MQ_LOG_WRITE)
        return MQ_ERR_READONLY;
    if (!mq_topic_name_valid(topic) || partitions < 1)
        return MQ_ERR_INVAL;
    for (int32_t p = 0; p < partitions; p++) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s-%d", log->dir, topic, (int)p) < 0)
            return MQ_ERR_NOMEM;
        int r = mkdir(path, 0755);
        int e = errno;
        free(path);
        if (r != 0 && e != EEXIST)
            return mq_err_from_errno(e);
    }
    int dfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        int r = fsync(dfd);
        close(dfd);
        if (r != 0)
            return mq_err_from_errno(errno);
    }
    return MQ_OK;
}

static enum mq_err mq_log_part_get(struct mq_log *log, const char *topic, int32_t partition, bool budget,
                                   struct mq_part **partp)
{
    if (!mq_topic_name_valid(topic) || partition < 0)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->nparts; i++) {
        struct mq_part *p = log->parts[i];
        if (p->id == partition && strcmp(p->topic, topic) == 0) {
            pthread_mutex_unlock(&log->mu);
            *partp = p;
            return MQ_OK;
        }
    }
    /* Opening (recovery) happens under the table lock: simple, and it is rare. */
    enum mq_err err = MQ_OK;
    if (log->nparts == log->parts_cap) {
        size_t cap = log->parts_cap ? log->parts_cap * 2 : 16;
        struct mq_part **np = realloc(log->parts, cap * sizeof *np);
        if (!np)
            err = MQ_ERR_NOMEM;
        else {
            log->parts = np;
            log->parts_cap = cap;
        }
    }
    struct mq_part *part = NULL;
    if (err == MQ_OK)
        err = mq_part_open(log, topic, partition, &part);
    if (err == MQ_OK) {
        if (budget) {
            struct mq_retention keep = {0, 0};
            mq_part_set_retention(part, &keep);
        }
        log->parts[log->nparts++] = part;
        *partp = part;
        /* its bytes count as an open partition's from now on, no longer as a cold entry's */
        if (log->mode == MQ_LOG_WRITE)
            mq_budget_add(log, mq_part_disk_bytes(part) - mq_budget_cold_take(log, topic, partition));
    }
    pthread_mutex_unlock(&log->mu);
    return err;
}

enum mq_err mq_log_part(struct mq_log *log, const char *topic, int32_t partition, struct mq_part **partp)
{
    return mq_log_part_get(log, topic, partition, false, partp);
}

enum mq_err mq_log_part_for_budget(struct mq_log *log, const char *topic, int32_t partition,
                                   struct mq_part **partp)
{
    return mq_log_part_get(log, topic, partition, true, partp);
}

static int mq_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits "<topic>-<n>" at the last '-'. */
static bool mq_split_part_dir(const char *name, char *topic, size_t topic_size, int32_t *partition)
{
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || !dash[1] || (size_t)(dash - name) >= topic_size)
        return false;
    int64_t v;
    for (const char *p = dash + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    if (mq_parse_int64(dash + 1, 0, INT32_MAX, &v) != MQ_OK)
        return false;
    memcpy(topic, name, (size_t)(dash - name));
    topic[dash - name] = '\0';
    *partition = (int32_t)v;
    return mq_topic_name_valid(topic);
}

enum mq_err mq_log_scan_dirs(const char *dir, void (*fn)(void *opaque, const char *topic, int32_t partition),
                             void *opaque)
{
    DIR *d = opendir(dir);
    if (!d)
        return mq_err_from_errno(errno);
    char **names = NULL;
    size_t n = 0, cap = 0;
    enum mq_err err = MQ_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char topic[256];
        int32_t p;
        struct stat st;
        if (de->d_name[0] == '.' || !mq_split_part_dir(de->d_name, topic, sizeof topic, &p))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                err = MQ_ERR_NOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            err = MQ_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (err == MQ_OK) {
        if (n > 1)
            qsort(names, n, sizeof *names, mq_cmp_str);
        for (size_t i = 0; i < n; i++) {
            char topic[256];
            int32_t p;
            if (mq_split_part_dir(names[i], topic, sizeof topic, &p))
                fn(opaque, topic, p);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return err;
}

enum mq_err mq_log_topic_retire(struct mq_log *log, const char *topic)
{
    if (log->mode != MQ_LOG_WRITE)
        return MQ_ERR_READONLY;
    pthread_mutex_lock(&log->mu);
    size_t n = 0;
    for (size_t i = 0; i < log->nparts; i++)
        n += strcmp(log->parts[i]->topic, topic) == 0;
    struct mq_part **grown = n ? realloc(log->retired, (log->nretired + n) * sizeof *grown) : log->retired;
    if (n && !grown) {
        pthread_mutex_unlock(&log->mu);
        return MQ_ERR_NOMEM;
    }
    log->retired = grown;
    size_t keep = 0;
    for (size_t i = 0; i < log->nparts; i++) {
        if (strcmp(log->parts[i]->topic, topic) == 0)
            log->retired[log->nretired++] = log->parts[i];
        else
            log->parts[keep++] = log->parts[i];
    }
    log->nparts = keep;
    mq_budget_cold_forget(log, topic);
    pthread_mutex_unlock(&log->mu);
    return MQ_OK;
}

enum mq_err mq_log_topic_delete(struct mq_log *log, const char *topic)
{
    if (log->mode != MQ_LOG_WRITE)
        return MQ_ERR_READONLY;
    if (!mq_topic_name_valid(topic))
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->nparts; i++)
        if (strcmp(log->parts[i]->topic, topic) == 0) {
            pthread_mutex_unlock(&log->mu);
            return MQ_ERR_BUSY;
        }
    pthread_mutex_unlock(&log->mu);
    DIR *d = opendir(log->dir);
    if (!d)
        return mq_err_from_errno(errno);
    enum mq_err err = MQ_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char t[256];
        int32_t p;
        if (!mq_split_part_dir(de->d_name, t, sizeof t, &p) || strcmp(t, topic) != 0)
            continue;
        int pfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *pd = pfd >= 0 ? fdopendir(pfd) : NULL;
        if (!pd) {
            if (pfd >= 0)
                close(pfd);
            err = mq_err_from_errno(errno);
            continue;
        }
        struct dirent *fe;
        while ((fe = readdir(pd)) != NULL)
            if (fe->d_name[0] != '.' || (fe->d_name[1] && strcmp(fe->d_name, "..") != 0))
                unlinkat(dirfd(pd), fe->d_name, 0);
        closedir(pd);
        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0)
            err = mq_err_from_errno(errno);
    }
    closedir(d);
    return err;
}
