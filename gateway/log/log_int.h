/*
 * log_int.h - the log store's internals, shared by the files of gateway/log/ only.
 *
 * Files: log.c (the data directory and the flusher), partition.c (write path, group commit, retention,
 * open/close), read.c (reads), cursor.c (the record cursor and the batch scanner under it), recover.c
 * (recovery), reader.c (a reader process's refresh), segment.c (a segment's files and index bookkeeping),
 * verify.c (offline check).
 *
 * Locking (why there are three kinds):
 *   part->mu        the writer's lock: the open batch, the backlog, the active segment's file position and
 *                   the unwritten index entries. Held while a batch is written (a memcpy into the page
 *                   cache), never across fdatasync. Readers never take it.
 *   part->segs_lock a read/write lock over the segment list. Readers hold it for reading just long enough to
 *                   find and reference a segment; the writer takes it for writing only to roll a segment or
 *                   to drop segments for retention, so it is off the append hot path.
 *   atomics         what readers need to know about the data, without a lock: the durable end offset, each
 *                   segment's durable size and next offset.
 * Segments are reference counted: a slice handed to a reader keeps its segment's file descriptor open even if
 * retention deletes the segment meanwhile.
 */
#ifndef MQ_LOG_INT_H
#define MQ_LOG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "log/log.h"
#include "util/histo.h"

#define MQ_IDX_ENTRY  8  /* .index: int32 relative offset, int32 position */
#define MQ_TIDX_ENTRY 12 /* .timeindex: int64 timestamp, int32 relative offset */

struct mq_idx_pending {
    uint8_t *buf; /* encoded entries not yet written to the file */
    size_t len, cap;
};

struct mq_seg_range {
    int64_t lo, hi; /* byte positions [lo, hi) */
};

struct mq_segment {
    int64_t base_offset;
    uint64_t uid; /* unique in the process: a recompacted segment replaces another of the same base */
    char *path_log, *path_idx, *path_tidx;
    int fd;                /* .log: O_RDWR for the active segment, else O_RDONLY; opened lazily */
    int idx_fd, tidx_fd;   /* writer only: the index files, open while the segment is active (-1: unusable) */
    bool idx_evicted;      /* the fd cache closed the index files: reopened by the next index write/sync */
    atomic_bool writable;  /* the writer's active segment: mq_seg_fd() opens it O_RDWR */
    struct mq_part *owner; /* the partition whose list holds it (mq_part_segs_push()), for the fd cache */
    atomic_int refs;       /* the segment list holds one; each slice one */
    pthread_mutex_t fd_mu; /* guards the lazy open of fd */
    _Atomic int64_t size;  /* bytes of complete batches written (writer) or validated (reader) */
    _Atomic int64_t durable_size; /* bytes known durable: what readers in the writer's process may see */
    _Atomic int64_t next_offset;  /* the offset after the last batch in [0, size) */
    _Atomic int64_t max_ts;       /* largest record timestamp, -1 unknown/empty */
    int64_t max_ts_offset;        /* offset of the record that has max_ts (writer) */
    int64_t first_ts;             /* max timestamp of the first batch (for segment_ms), -1 when empty */
    atomic_bool max_ts_loaded;    /* sealed segments read max_ts lazily from the time index */
    bool reader_seen;             /* reader mode: the segment's size was established once */
    bool reader_complete;         /* reader mode: scanned to its end after a newer segment appeared */
    /* writer state of the active segment (under part->mu) */
    int64_t bytes_since_index;
    int64_t idx_written;  /* bytes of .index on disk */
    int64_t tidx_written; /* bytes of .timeindex on disk */
    int64_t last_tidx_ts; /* timestamp of the last time index entry, or -1 */
    struct mq_idx_pending idx_pend, tidx_pend;
    int64_t synced_idx; /* bookkeeping for checkpoints: index bytes fdatasynced */
    /* What readers found out about the bytes (read.c): batches are CRC-checked once, when this process
     * writes them or when they are first read, and the answer kept here, so that a fetch served by
     * sendfile does not check them again. */
    pthread_mutex_t check_mu;
    struct mq_seg_range *checked; /* byte ranges of whole batches known good, sorted, disjoint */
    size_t nchecked, checked_cap;
    struct mq_seg_range *bad; /* batches that failed their CRC: never served, reported once each */
    size_t nbad, bad_cap;
    atomic_bool gap_reported; /* the unreadable end of this segment was reported (once per process) */
};

/* cursor.c, its file-level layer: walks the batches of one segment file from a position, buffering reads.
 * Recovery, reader refresh, reads and verify use it on files; the cursor (log.h) on a slice of a segment.
 * It is the one batch walker of the tree: batch validation happens here. */
struct mq_scan {
    int fd;
    int64_t pos; /* the next batch starts here */
    int64_t end; /* scan no further than this */
    uint8_t *buf;
    size_t cap;
    int64_t buf_pos;
    size_t buf_len;
    size_t chunk; /* bytes read at a time, at least (0: 256 KiB) */
    /* after MQ_SCAN_BAD: whether the header parsed (then *bi holds it) and the CRC the bytes have */
    bool bad_crc;
    uint32_t crc_computed;
};

enum mq_scan_res {
    MQ_SCAN_BATCH = 1,    /* a batch: *bi, and *body when asked for */
    MQ_SCAN_END = 0,      /* pos == end */
    MQ_SCAN_PARTIAL = -1, /* fewer bytes than the header or batch needs */
    MQ_SCAN_BAD = -2,     /* impossible header or CRC mismatch (sc->bad_crc) */
    MQ_SCAN_IOERR = -3,   /* errno says why */
};

/* mq_part_read() with the caller's scanner for the batch headers it walks (its buffer is kept between
 * calls: a cursor reads slice after slice without allocating one each time). */
enum mq_err mq_part_read_with(struct mq_part *part, int64_t offset, size_t max_bytes, struct mq_slice *slice,
                              struct mq_scan *scratch);

void mq_scan_init(struct mq_scan *sc, int fd, int64_t pos, int64_t end);
/* Points sc at another range, keeping its buffer. */
void mq_scan_reset(struct mq_scan *sc, int fd, int64_t pos, int64_t end);
void mq_scan_free(struct mq_scan *sc);
/* Returns the next batch; with want_body the whole batch is buffered, *body points at it (valid until the
 * next call) and its CRC is checked. sc->pos moves past the batch only on MQ_SCAN_BATCH. */
enum mq_scan_res mq_scan_next(struct mq_scan *sc, bool want_body, struct mq_batch_info *bi,
                              const uint8_t **body);

/* read.c: the CRC cache of a segment (see struct mq_segment) */
/* Records [lo, hi), whole batches, as known good: the writer calls it for each batch it writes. */
void mq_seg_mark_checked(struct mq_segment *seg, int64_t lo, int64_t hi);
/* Frees the cache (segment.c, when the segment is freed). */
void mq_seg_check_free(struct mq_segment *seg);

/* segment.c */
/* The size of the open file fd, or -1 (errno set). */
int64_t mq_fd_size(int fd);
struct mq_segment *mq_seg_new(const char *dir, int64_t base_offset);
void mq_seg_ref(struct mq_segment *seg);
void mq_seg_unref(struct mq_segment *seg);
/* Opens seg->fd read-only if it is not open; returns the fd or -1 (errno set). */
int mq_seg_fd(struct mq_segment *seg);
/* Largest entry of the .index file with offset <= target: returns the batch position to scan from (0 when
 * none), reading at most `max_entries` entries (the valid part of the file). */
int64_t mq_seg_index_lookup(struct mq_segment *seg, int fd_idx, int64_t target, int64_t limit_pos);
/* Largest .timeindex entry with timestamp < ts: returns its offset, or base_offset when none. */
int64_t mq_seg_timeindex_lookup(struct mq_segment *seg, int fd_tidx, int64_t ts);
/* Appends an entry to a pending index buffer. */
enum mq_err mq_idx_pend_add(struct mq_idx_pending *p, const void *entry, size_t len);
/* Frees the pending index buffers that hold nothing (writer, under part->mu): the next entry allocates
 * them again. Returns the bytes freed. */
size_t mq_seg_release_pending(struct mq_segment *seg);
/* Reads the last entry of the .timeindex file: sets *ts and returns true when there is one. */
bool mq_seg_read_last_time(const struct mq_segment *seg, int64_t *ts);

/* Names "<20 digits>.log" etc.; returns true and *base for a segment file name with that extension. */
bool mq_seg_name_parse(const char *name, const char *ext, int64_t *base);

/* pwrite of all of buf; a zero-length write (no space) is MQ_ERR_NOSPC. */
enum mq_err mq_pwrite_full(int fd, const void *buf, size_t len, int64_t pos);
/* Accounts one batch written at pos of seg: index entries and timestamps (writer, or recovery). */
enum mq_err mq_seg_account(struct mq_segment *seg, int64_t pos, const struct mq_batch_info *bi,
                           int64_t interval);
/* Writes pending index entries to the index files. */
enum mq_err mq_seg_write_index(struct mq_segment *seg);
/* The last time index entry of a segment that stops being active carries its largest timestamp. */
enum mq_err mq_seg_seal_index(struct mq_segment *seg);
/* Largest timestamp of a segment: known for the active one, read lazily from the time index otherwise. */
int64_t mq_seg_max_ts(struct mq_segment *seg);
/* Reopens the index files the fd cache closed (idx_evicted), for a write or a sync through them (writer,
 * under part->mu or alone). */
enum mq_err mq_seg_reopen_index(struct mq_segment *seg);
/* Opens the index files of the segment becoming active and truncates them to what is trusted. Both or
 * neither: on failure both are closed (fd -1) and errno says why. A segment whose index files cannot be
 * opened (a directory in their place) works without them: entries for a closed file are dropped, and lookups
 * that find no usable file scan the segment from its start. */
enum mq_err mq_seg_open_index(struct mq_segment *seg, int64_t idx_keep, int64_t tidx_keep);
/* fdatasyncs the index files that are open. */
enum mq_err mq_seg_sync_index(struct mq_segment *seg);
/* Closes the index files that are open. */
void mq_seg_close_index(struct mq_segment *seg);
/* Deletes a segment's files, the data first. */
void mq_seg_unlink(struct mq_segment *seg);

/* A partition. */
struct mq_part {
    struct mq_log *log;
    char *topic;
    int32_t id;
    char *dir;
    int dir_fd; /* opened on demand (mq_part_dir_fd()); the fd cache closes it while the partition is idle */
    pthread_mutex_t dir_mu;     /* the reopen of dir_fd */
    pthread_mutex_t rewrite_mu; /* held while recompact.c uses dir_fd: the fd cache leaves it open then */
    bool on_log_fs; /* the directory is on the data directory's filesystem (which the flusher syncfs's) */

    pthread_rwlock_t segs_lock;
    struct mq_segment **segs; /* ascending base offsets; the last one is active */
    size_t nsegs, segs_cap;

    pthread_mutex_t
        flush_mu;       /* one flush at a time (the flusher thread, mq_part_flush, flush-always appends) */
    pthread_mutex_t mu; /* the writer's lock, see the top of this file */
    pthread_cond_t durable_cv;
    struct mq_batch_builder open; /* records produced, not yet written */
    uint8_t *backlog;             /* complete batches that could not be written yet (disk full) */
    size_t backlog_len, backlog_cap;
    int64_t next_offset;         /* the next offset to assign */
    int64_t written_end;         /* offset after the last batch written to a file */
    _Atomic int64_t durable_end; /* offsets below are durable */
    int64_t unflushed_bytes;
    int64_t bytes_since_checkpoint;
    bool busy;      /* records were produced since the last idle pass (mq_part_trim()) */
    bool dir_dirty; /* a segment file was created: fsync the directory */
    bool checkpoint_due;
    enum mq_err write_err; /* the last write's error (NOSPC is cleared once a write succeeds) */
    enum mq_err fatal_err; /* fdatasync failed: data may be lost, refuse further writes */
    struct mq_retention ret;
    int codec;     /* enum mq_codec the batches are written with (mq_part_set_compression()) */
    bool ret_held; /* the last retention pass stopped at the hold: logged once when it starts and ends */
    atomic_bool rp_failing; /* the last recovery point write failed (logged once until one succeeds) */
    int64_t mtime_of_last_flush;

    pthread_mutex_t hint_mu; /* a reader hint: where the last slice ended */
    int64_t hint_offset, hint_pos;
    uint64_t hint_seg; /* the uid of the segment hint_pos lies in */

    _Atomic int64_t reader_refresh_mono; /* reader mode: when the directory was last listed */

    /* fdcache.c: the list of partitions that hold descriptors (under log->fdc_mu) */
    struct mq_part *fdc_prev, *fdc_next;
    bool fdc_in;
    bool fdc_ready; /* opened: the fd cache may list it */

    _Atomic int64_t rp_seg_base; /* the segment of the last recovery point read or written, -1 none */
    int64_t rc_after;            /* mq_part_set_recompact_after() (under mu) */
    int64_t rc_below;            /* recompact.c: segments below this base were examined */
    bool rc_loaded;              /* rc_below was read from the partition's recompact-point */
};

/* A callback the log calls from its threads (the durable callback, the retention hold), replaceable at any
 * time. Calls in progress are counted (under log->mu) so that setting a new one can wait for the calls of
 * the one it replaces, and for none of the new one's, which could go on forever. */
struct mq_log_hook {
    void (*fn)(void); /* the callback, cast back to its own type by its caller */
    void *opaque;
    uint64_t gen;  /* bumped by every set */
    int calls;     /* calls in progress that started under the current gen */
    int old_calls; /* calls in progress of replaced callbacks */
};

/* A partition directory on disk that the log has not opened (budget.c): what the disk budget needs to count
 * it and to weigh its oldest segment, and nothing more (no descriptor; 48 bytes and the topic's name). */
struct mq_cold_part {
    char *topic;
    int32_t id;
    bool gone;        /* opened since, or its topic deleted: no longer counted here */
    bool stuck;       /* it could not be opened: counted, but not picked for deletion again */
    bool ts_known;    /* first_ts has been read */
    int64_t bytes;    /* its segment (.log) files, by stat(2) when the log opened */
    int64_t first;    /* the base offset of its oldest segment (-1: none) */
    int64_t first_ts; /* the newest timestamp of its oldest segment, read when a pass first needs it */
};

struct mq_log {
    char *dir;
    enum mq_log_mode mode;
    struct mq_log_conf conf;
    int lock_fd;

    pthread_mutex_t mu; /* the partition table and the flusher's wake-up */
    pthread_cond_t cv;
    struct mq_part **parts;
    size_t nparts, parts_cap;
    struct mq_part **retired; /* partitions of deleted topics (mq_log_topic_retire()), freed at close */
    size_t nretired;
    bool stop;
    bool kick;
    pthread_t flusher;
    bool flusher_started;
    int sync_fd;               /* the data directory, for syncfs(2) (-1 in read mode) */
    bool syncfs_ok;            /* the kernel reports writeback errors through syncfs (Linux 5.8 on) */
    pthread_mutex_t budget_mu; /* one disk budget pass at a time (budget.c) */
    atomic_bool budget_stuck;  /* over the budget with nothing left to delete: logged once */
    atomic_bool budget_due;    /* a write was refused: the flusher makes a pass at once */
    /* The budget's write-time check (budget.c), under space_mu: */
    pthread_mutex_t space_mu;
    int64_t budget_used;     /* segment bytes: counted at each pass, plus what was written or opened since,
                                less what was deleted */
    int64_t budget_inflight; /* bytes admitted and not yet counted in budget_used */
    int64_t budget_want;     /* bytes of the writes refused since the last pass: room it makes */
    bool budget_refusing;    /* writes were refused while stuck: the first admitted one logs the resume */
    /* The partition directories not opened since the start (budget.c), sorted by topic and partition: the
     * budget counts their segments from the start and deletes from them as from the open ones. Under
     * cold_mu, taken after mu and before space_mu. */
    pthread_mutex_t cold_mu;
    struct mq_cold_part *cold;
    size_t ncold;
    int64_t cold_bytes;                                              /* the bytes of the entries not gone */
    _Atomic int64_t disk_bytes, dropped_unforwarded, budget_refused; /* mq_log_stats() */
    _Atomic int64_t early_deleted[2], early_deleted_bytes[2];        /* by enum mq_budget_cause */
    /* read by the operator endpoints (mq_log_stats(), mq_log_flush_histo()) */
    _Atomic int64_t fsyncs, retention_deleted_segments, heartbeat_ms;
    struct mq_histo flush_histo;
    struct mq_log_hook durable; /* mq_durable_cb */
    struct mq_log_hook hold;    /* mq_hold_fn */
    pthread_cond_t cb_cv;       /* signalled when a hook's old_calls drops to 0 */
    /* fdcache.c: the partitions holding descriptors, most recently used first */
    pthread_mutex_t fdc_mu;
    struct mq_part *fdc_head, *fdc_tail;
    size_t fdc_n, fdc_max;
    _Atomic int64_t fdc_evictions;
    /* the recompactor thread (recompact.c) */
    pthread_t rc_thread;
    pthread_mutex_t rc_mu;
    pthread_cond_t rc_cv;
    bool rc_inited, rc_started;
    atomic_bool rc_stop;
    _Atomic int64_t recompacted_segments, recompact_saved_bytes; /* mq_log_stats() */
};

/* log.c */
/* A copy of the partition table (log->mu held); the caller frees it. NULL when out of memory. */
struct mq_part **mq_log_parts_copy(struct mq_log *log, size_t *n);
/* mq_log_part() for the disk budget: a partition it opens gets no time retention until its owner sets
 * one (mq_part_set_retention()), so that opening it only to delete its oldest segment deletes nothing
 * else. */
enum mq_err mq_log_part_for_budget(struct mq_log *log, const char *topic, int32_t partition,
                                   struct mq_part **partp);
#define MQ_TRIM_MS 1000 /* how often the flusher looks for idle partitions (mq_part_trim()) */
/* Segment bytes and records not yet durable over the open partitions, now (mq_log_stats()), waiting at most
 * wait_ms in all for their locks; returns how many partitions were left out for it. */
int64_t mq_log_usage(struct mq_log *log, int64_t *bytes, int64_t *durable_lag, int64_t wait_ms);
/* Calls the durable callback, if one is set, with no lock held, counting the call in progress. */
void mq_log_durable_notify(struct mq_log *log, struct mq_part *part, int64_t durable_end);
/* The retention hold of part (INT64_MAX when none is set), asked with no lock held. */
int64_t mq_log_hold(struct mq_log *log, struct mq_part *part);

static inline bool mq_part_writer(const struct mq_part *part)
{
    return mq_log_mode(part->log) == MQ_LOG_WRITE;
}

static inline struct mq_segment *mq_part_active(struct mq_part *part)
{
    return part->segs[part->nsegs - 1];
}

/* budget.c */
#define MQ_BUDGET_CHECK_MS 1000 /* how often the maintenance thread checks the disk budget */
#define MQ_BUDGET_STUCK_MS 100  /* while stuck, refused writes ask for a pass at most this often */
#define MQ_BUDGET_RESERVE_BLOCKS                                                                             \
    16 /* file system blocks a batch write leaves free beyond min_free_bytes: what comes with it */

enum mq_budget_cause {
    MQ_BUDGET_CAP = 0,  /* log.max_disk_bytes */
    MQ_BUDGET_FREE = 1, /* log.min_free_bytes */
};

static inline bool mq_budget_on(const struct mq_log_conf *conf)
{
    return conf->max_disk_bytes > 0 || conf->min_free_bytes > 0;
}
/* The budget over every partition of the data directory, open or not: counts their bytes anew and deletes
 * the oldest segments while the budget is exceeded (opening a partition not open yet when its oldest segment
 * goes next), making room for the writes refused since the last pass. Returns true when
 * writes were waiting and room was made for them (the caller writes its backlogs at once). */
bool mq_log_budget(struct mq_log *log);
/* Lists the partition directories of the data directory with the sizes of their segment files (stat only,
 * nothing kept open), as the budget's cold entries; at open, before any partition is opened. */
enum mq_err mq_budget_scan(struct mq_log *log);
/* The cold entry of topic-id leaves the cold list (log->mu held: the partition is being opened); returns
 * the bytes it counted (0 when there was none). */
int64_t mq_budget_cold_take(struct mq_log *log, const char *topic, int32_t id);
/* Every cold entry of topic leaves the cold list (the topic is deleted). */
void mq_budget_cold_forget(struct mq_log *log, const char *topic);
void mq_budget_cold_free(struct mq_log *log);
/* The write-time check, by the writer under part->mu before a batch of `size` bytes goes to a segment file
 * (only when mq_budget_on()). MQ_OK: the bytes are admitted; call mq_budget_wrote() once the write is done or
 * failed. MQ_ERR_NOSPC: the batch does not fit; nothing is admitted, and a pass is asked for. */
enum mq_err mq_budget_admit(struct mq_log *log, int64_t size);
void mq_budget_wrote(struct mq_log *log, int64_t size, bool written);
/* Admits `size` bytes of a temporary file (a rewrite beside its original) if they fit now, as
 * mq_budget_admit() but without asking a pass for them: nothing is deleted to make room. Release them with
 * mq_budget_wrote(log, size, false). */
bool mq_budget_reserve(struct mq_log *log, int64_t size);
/* Bytes that started (a partition opened) or stopped (retention deleted them) counting. */
void mq_budget_add(struct mq_log *log, int64_t bytes);

/* fdcache.c: see the top of that file */
/* Sets the bound from conf.max_open_files (0: half the soft RLIMIT_NOFILE). */
void mq_fdc_init(struct mq_log *log);
/* The partition is in use: to the front of the list; closes the least recently used over the bound. */
void mq_fdc_touch(struct mq_part *part);
/* Takes a partition that closes off the list. */
void mq_fdc_forget(struct mq_part *part);
/* The directory's descriptor, reopened if the fd cache closed it; -1 with errno when it cannot be. The
 * caller holds flush_mu or rewrite_mu (or the partition is not open yet), which the fd cache needs to close
 * it, so it stays valid while they are held. */
int mq_part_dir_fd(struct mq_part *part);

/* recompact.c */
/* Write mode, before the segments are listed: completes a committed rewrite, removes unfinished ones. */
enum mq_err mq_recompact_recover(struct mq_part *part);
/* Starts the recompactor thread (unless recompact_after_ms is -1); stop joins it, free releases it. */
enum mq_err mq_recompactor_start(struct mq_log *log);
void mq_recompactor_stop(struct mq_log *log);
void mq_recompactor_free(struct mq_log *log);

/* partition.c */
/* The first segment of a partition, as the disk budget weighs it. */
struct mq_seg_facts {
    int64_t base, next; /* its offsets: [base, next) */
    int64_t size;       /* bytes */
    int64_t max_ts;     /* its newest record's timestamp, -1 when unknown */
    bool active;        /* the partition's only segment: deleting it means rolling it first */
};
/* Bytes of the partition's segment files. */
int64_t mq_part_disk_bytes(struct mq_part *part);
/* mq_part_disk_bytes() and mq_part_durable_lag() waiting for the partition's locks until deadline
 * (CLOCK_MONOTONIC) at most; false when they stayed held. */
bool mq_part_usage_within(struct mq_part *part, const struct timespec *deadline, int64_t *bytes,
                          int64_t *lag);
/* Records produced into the partition and not yet durable. */
int64_t mq_part_durable_lag(struct mq_part *part);
/* Fills *f with the partition's first segment; false when there is nothing to delete: the only segment is
 * the active one and it is empty. (An active segment goes only once wholly durable: see drop_first.) */
bool mq_part_first_segment(struct mq_part *part, struct mq_seg_facts *f);
/* Deletes the first segment if it still starts at `base`, rolling it first when it is the active one;
 * *f gets what was deleted. MQ_ERR_BUSY when it changed meanwhile or cannot roll now (an active segment
 * with bytes not yet durable: a flush makes them so). */
enum mq_err mq_part_drop_first(struct mq_part *part, int64_t base, struct mq_seg_facts *f);
enum mq_err mq_part_open(struct mq_log *log, const char *topic, int32_t id, struct mq_part **partp);
/* The first half of a clean close, for mq_log_close() to batch (the partition is flushed and off the fd
 * cache): seals the active segment's index files and stages the clean recovery point, unsynced, and closes
 * every descriptor the partition holds. The caller syncs, installs the recovery point, syncs and frees.
 * false: nothing staged; close it with mq_part_close(). */
bool mq_part_close_stage(struct mq_part *part);
/* Flushes (writer) and frees. clean: write a clean recovery point. */
enum mq_err mq_part_close(struct mq_part *part, bool clean);
/* The flusher's work for one partition: write the open batch and backlog, fdatasync, publish. Also what
 * mq_part_flush(), a flush-always append and close do; ticks of one partition run one at a time. */
enum mq_err mq_part_flush_tick(struct mq_part *part);

bool mq_part_has_unflushed(struct mq_part *part);
/* The idle pass, once every MQ_TRIM_MS: a partition that took no record since the previous pass and holds
 * none unwritten gives back its write buffers (the open batch's, the backlog's, the active segment's
 * pending index entries), which its next record allocates again. So 10,000 partitions that each write now
 * and then hold only their fixed state, while a busy one keeps its buffers. Returns the bytes freed. */
size_t mq_part_trim(struct mq_part *part);
/* Frees a partition, half-built ones included (no flushing). */
void mq_part_free(struct mq_part *part);
/* Appends seg to the segment list (the caller holds segs_lock for writing, or is alone). */
enum mq_err mq_part_segs_push(struct mq_part *part, struct mq_segment *seg);
/* Creates the files of a new active segment at the partition's next offset (writer, under mu). */
enum mq_err mq_part_new_segment(struct mq_part *part, int64_t base);

/* recover.c */
#define MQ_RP_CLEAN 1u /* recovery point flag: written by a clean close */

/* The recovery point: see the top of recover.c. */
struct mq_rp {
    uint32_t flags;
    int64_t seg_base, pos, next_offset, max_ts, max_ts_offset;
};

/* Segment base offsets found in a partition directory, ascending. */
struct mq_bases {
    int64_t *v;
    size_t n, cap;
};

/* Writes the recovery point atomically: temporary file, fdatasync, rename, fsync of the directory. */
enum mq_err mq_rp_write(struct mq_part *part, const struct mq_rp *rp);
/* Lists the segment base offsets; in write mode also removes leftovers (orphan indexes, temporary files). */
enum mq_err mq_part_list(struct mq_part *part, struct mq_bases *bases, bool cleanup);
/* Write mode: recover from the recovery point and prepare the active segment. */
enum mq_err mq_part_recover(struct mq_part *part, const struct mq_bases *bases);
/* reader.c. Read mode: follow the data the writer has added since the last look (new batches, new
 * segments). */
enum mq_err mq_part_reader_refresh(struct mq_part *part, bool list);
/* The last entry of seg's offset index that points below byte `limit` at a batch whose last offset is below
 * `below`: returns the batch's position and *last its last offset, or 0 and *last -1 when there is none. */
int64_t mq_seg_last_entry(const struct mq_segment *seg, int64_t limit, int64_t below, int64_t *last);

/* One partition's share of a flush, in three steps, so that the flusher (log.c) can make many partitions
 * durable with one syncfs instead of one fdatasync per file: mq_part_flush_begin() writes what is open and
 * lists what needs syncing; then either mq_part_flush_sync() syncs those files one by one, or the caller
 * syncs the whole filesystem (fs_synced); mq_part_flush_end() writes the recovery point and publishes. The
 * caller holds part->flush_mu from begin to end. */
struct mq_sync_item {
    struct mq_segment *seg;
    int64_t size;
    bool sealed;
};
struct mq_flush {
    struct mq_part *part;
    enum mq_err err;       /* begin: the partition had stopped (fatal_err): nothing else to do */
    enum mq_err write_err; /* what writing the open batch and backlog said */
    struct mq_sync_item few[4], *items;
    size_t nitems;
    int64_t end;          /* the written end to publish */
    bool sync_dir;        /* a segment file was created */
    bool ckpt;            /* a recovery point is due */
    enum mq_err ckpt_err; /* the index files could not be reopened or duplicated: no recovery point */
    int ckpt_idx_fd, ckpt_tidx_fd;
    int64_t ckpt_bytes;
    struct mq_rp rp;
    bool rp_staged; /* the recovery point's temporary file is written (the caller's syncfs covers it) */
    int64_t bytes;  /* written since the previous flush */
    int64_t sync_start_us;
    bool notify; /* end: the durable callback is due, with `durable` */
    int64_t durable;
};
/* Writes the recovery point's temporary file only (no sync) and renames it into place: the two halves of
 * mq_rp_write() around the caller's syncfs. The caller syncs the rename and then sets part->rp_seg_base. */
enum mq_err mq_rp_stage(struct mq_part *part, const struct mq_rp *rp);
enum mq_err mq_rp_install(struct mq_part *part);
void mq_part_flush_begin(struct mq_part *part, struct mq_flush *f);
/* The fdatasync/fsync calls mq_part_flush_sync() would make (the recovery point's two included). */
size_t mq_flush_files(const struct mq_flush *f);
enum mq_err mq_part_flush_sync(struct mq_flush *f);
/* serr: how syncing went (either way). Returns the flush's error as mq_part_flush_tick() does. */
enum mq_err mq_part_flush_end(struct mq_flush *f, enum mq_err serr);
/* Calls the durable callback when the flush made something durable; the flusher calls it after releasing
 * every flush_mu it holds, as the callback may flush a partition itself. */
void mq_part_flush_notify(struct mq_flush *f);

#endif
