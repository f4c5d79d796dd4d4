/*
 * fdcache.c - a bound on the descriptors the partitions keep open.
 *
 * A partition holds up to four descriptors while it is in use: its directory, the active segment's .log and
 * its two index files (plus the .log of each sealed segment a reader went through). With one log topic per
 * device, 10,000 partitions would hold 40,000: far past the usual limits. So the partitions that hold
 * descriptors are kept in a list, most recently used first, and once more than max_hot of them are on it
 * the least recently used are closed down; whatever is needed again is reopened on demand (mq_seg_fd(),
 * mq_seg_write_index(), mq_part_dir_fd()).
 *
 * Closing a partition's descriptors needs nobody using them, and the evictor never waits for that: it
 * try-locks the partition's flush_mu (no flush in progress), mu (no writer, no reader refresh), segs_lock
 * for writing (no reader is picking a segment) and each segment's fd_mu, and closes a segment's .log only
 * when the segment list holds the only reference (a reader that holds a slice holds a reference and keeps
 * its descriptor). Unsynced data does not need its descriptor: the flush syncs through a reopened one (a
 * writeback error not yet reported is reported to a descriptor opened after it, and syncfs needs none). So
 * a sealed segment's index files not yet synced are closed too, marked idx_evicted, which keeps them on the
 * next flush's list (with frequent rolls, the partitions waiting for a flush would hold them otherwise).
 *
 * The directory is closed only while no rewrite uses it: the partition's rewrite_mu, not recompact.c's
 * process-wide lock, which a pass holds across thousands of partitions; while a preempted recompactor held
 * that one, the cache closed no directory at all, and 10,000 partitions opening under a hard limit of 4,096
 * ended in EMFILE. A partition it cannot close now stays on the list and is tried again later; the bound is
 * soft by that much, and the excess is bounded by what is busy at once: the flusher's chunk (log.c), one
 * rewrite, the writers and the readers' slices.
 */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util/diag.h"

/* Partitions tried per touch when over the bound: enough to catch up, few enough to keep a touch cheap. */
#define MQ_FDC_TRIES 8

void mq_fdc_init(struct mq_log *log)
{
    pthread_mutex_init(&log->fdc_mu, NULL);
    int64_t files = log->conf.max_open_files;
    if (files <= 0) {
        /* Half the soft limit, read at open (mqlogd raises it to the hard limit first): the other half is
         * for connections, the catalog and everything else. */
        struct rlimit rl;
        files = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (int64_t)rl.rlim_cur / 2
                                                                                   : 1 << 16;
    }
    /* A partition in use holds about four. */
    log->fdc_max = files / 4 > 8 ? (size_t)(files / 4) : 8;
}

static void mq_fdc_unlink(struct mq_log *log, struct mq_part *part)
{
    if (part->fdc_prev)
        part->fdc_prev->fdc_next = part->fdc_next;
    else
        log->fdc_head = part->fdc_next;
    if (part->fdc_next)
        part->fdc_next->fdc_prev = part->fdc_prev;
    else
        log->fdc_tail = part->fdc_prev;
    part->fdc_prev = part->fdc_next = NULL;
    part->fdc_in = false;
    log->fdc_n--;
}

static void mq_fdc_push(struct mq_log *log, struct mq_part *part)
{
    part->fdc_prev = NULL;
    part->fdc_next = log->fdc_head;
    if (log->fdc_head)
        log->fdc_head->fdc_prev = part;
    else
        log->fdc_tail = part;
    log->fdc_head = part;
    part->fdc_in = true;
    log->fdc_n++;
}

/* Closes what part holds if it can now without waiting; true when nothing is left open. */
static bool mq_fdc_close(struct mq_part *part)
{
    if (pthread_mutex_trylock(&part->flush_mu) != 0)
        return false;
    bool all = false;
    if (pthread_mutex_trylock(&part->mu) == 0) {
        if (pthread_rwlock_trywrlock(&part->segs_lock) == 0) {
            all = true;
            for (size_t i = 0; i < part->nsegs; i++) { /* what can be closed is, whatever else cannot */
                struct mq_segment *seg = part->segs[i];
                if (pthread_mutex_trylock(&seg->fd_mu) != 0) {
                    all = false;
                    continue;
                }
                if (atomic_load(&seg->refs) == 1) {
                    if (seg->fd >= 0)
                        close(seg->fd);
                    seg->fd = -1;
                } else if (seg->fd >= 0) {
                    all = false; /* a reader uses it: closed on a later try */
                }
                /* The writer's alone (readers open the files by name), used under mu or flush_mu. A sealed
                 * segment's that are not synced yet stay marked so: the next flush syncs them through
                 * reopened ones (mq_seg_unsynced()). */
                if (seg->idx_fd >= 0 || seg->tidx_fd >= 0) {
                    mq_seg_close_index(seg);
                    seg->idx_evicted = true;
                }
                pthread_mutex_unlock(&seg->fd_mu);
            }
            pthread_rwlock_unlock(&part->segs_lock);
        }
        pthread_mutex_unlock(&part->mu);
    }
    pthread_mutex_unlock(&part->flush_mu);
    if (all && part->dir_fd >= 0) {
        all = false;
        if (pthread_mutex_trylock(&part->rewrite_mu) == 0) {
            if (pthread_mutex_trylock(&part->flush_mu) == 0) {
                if (pthread_mutex_trylock(&part->dir_mu) == 0) {
                    close(part->dir_fd);
                    part->dir_fd = -1;
                    all = true;
                    pthread_mutex_unlock(&part->dir_mu);
                }
                pthread_mutex_unlock(&part->flush_mu);
            }
            pthread_mutex_unlock(&part->rewrite_mu);
        }
    }
    return all;
}

void mq_fdc_touch(struct mq_part *part)
{
    struct mq_log *log = part->log;
    pthread_mutex_lock(&log->fdc_mu);
    if (!part->fdc_ready) { /* opening, or closing (its own flush) */
        pthread_mutex_unlock(&log->fdc_mu);
        return;
    }
    if (log->fdc_head != part) {
        if (part->fdc_in)
            mq_fdc_unlink(log, part);
        mq_fdc_push(log, part);
    }
    /* Closing from the least recently used end; a partition that is busy goes to the front (it is in use,
     * after all) so that the next tries look at others. Every lock taken under fdc_mu is a try-lock: a
     * caller may hold any partition lock of its own. */
    for (int tries = 0; log->fdc_n > log->fdc_max && tries < MQ_FDC_TRIES; tries++) {
        struct mq_part *victim = log->fdc_tail;
        if (victim == part)
            break;
        mq_fdc_unlink(log, victim);
        if (!mq_fdc_close(victim))
            mq_fdc_push(log, victim);
        else
            atomic_fetch_add(&log->fdc_evictions, 1);
    }
    pthread_mutex_unlock(&log->fdc_mu);
}

void mq_fdc_forget(struct mq_part *part)
{
    struct mq_log *log = part->log;
    pthread_mutex_lock(&log->fdc_mu);
    part->fdc_ready = false;
    if (part->fdc_in)
        mq_fdc_unlink(log, part);
    pthread_mutex_unlock(&log->fdc_mu);
}

int mq_part_dir_fd(struct mq_part *part)
{
    /* The flusher (under flush_mu) and the recompactor (under rewrite_mu) may both reopen it at once; the
     * evictor closes it only holding both, so once open it stays open while either is held. */
    pthread_mutex_lock(&part->dir_mu);
    bool opened = false;
    if (part->dir_fd < 0) {
        part->dir_fd = open(part->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        opened = part->dir_fd >= 0;
    }
    int fd = part->dir_fd;
    int e = errno;
    pthread_mutex_unlock(&part->dir_mu);
    if (opened)
        mq_fdc_touch(part);
    errno = e;
    return fd;
}
