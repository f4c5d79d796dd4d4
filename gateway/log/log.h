/*
 * log.h - the durable log store: topics, partitions, segments, group commit, reads, retention, recovery.
 *
 * A data directory holds one directory per partition, "<topic>-<partition>/", laid out as Kafka lays them
 * out: "<20-digit base offset>.log" segments of RecordBatch v2 batches back to back, sparse ".index" and
 * ".timeindex" files, plus mqlog's "recovery-point" file (the position up to which the partition is known to
 * be durable and indexed, and whether the last stop was clean).
 *
 * Writing. One process writes a data directory (mq_log_open(MQ_LOG_WRITE) takes an exclusive lock on
 * "<dir>/.lock"); within it every mq_part_* function is thread-safe. Records become batches either through
 * mq_part_append() (the caller's records become one batch, written at once) or mq_part_produce() (records
 * gather in an open batch that is written when it reaches batch_bytes or at the next flush tick). Each batch
 * is written with one write(). A flusher thread makes data durable by group commit: fdatasync at most every
 * flush_interval_ms, or sooner when flush_bytes are unflushed; flush_interval_ms 0 means "flush always":
 * every append returns only when its batch is durable. Per partition, mq_part_durable_end() is the offset
 * below which every record is on stable storage; mq_part_wait_durable() and the durable callback let a
 * connector acknowledge only durable records.
 *
 * Reading. Any number of threads, and other processes that open the directory with MQ_LOG_READ, read while
 * the writer writes. In the writer's process readers see durable records only; in a reader process they see
 * complete batches whose size and CRC check out. mq_part_read() hands out whole batches as a byte range of
 * a segment file (for pread or sendfile), never a partial batch; a cursor (mq_cursor_open()) walks them
 * batch by batch or record by record, checking every batch's CRC.
 *
 * Recovery. Opening a partition for writing scans only the tail after its recovery point, checks each
 * batch's size and CRC, truncates at the first partial or invalid batch and rebuilds the tail's indexes;
 * after a clean close it scans nothing.
 */
#ifndef MQ_LOG_H
#define MQ_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/batch.h"
#include "util/err.h"
#include "util/topic.h" /* mq_topic_name_valid(): every topic argument must pass it */

struct mq_log;  /* an open data directory */
struct mq_part; /* one partition of one topic; owned by its mq_log */

struct mq_log_conf {
    int64_t flush_interval_ms; /* group commit interval; 0 = flush always (default 5) */
    int64_t flush_bytes;       /* flush early once this many bytes are unflushed; 0 = off (default 1 MiB) */
    int64_t segment_bytes;     /* roll a segment before it would exceed this (default 1 GiB) */
    int64_t segment_ms;        /* roll a segment whose first record is older than this (default 7 d) */
    int64_t index_interval_bytes; /* an .index entry after this many bytes (default 4096) */
    int64_t batch_bytes;          /* produce(): write the open batch once it reaches this (default 256 KiB) */
    int64_t max_pending_bytes;    /* produce()/append() return MQ_ERR_FULL above this much unwritten data
                                     per partition (default 64 MiB) */
    int64_t checkpoint_bytes;     /* write a recovery point after this many bytes (default 64 MiB) */
    int64_t retention_check_ms;   /* how often the maintenance thread applies retention (default 5 min) */
    int64_t
        recompact_after_ms; /* rewrite a closed segment of a partition with a codec as large
                               compressed batches once its newest record is this old (mq_part_recompact());
                               0: as soon as it is closed (default); -1: only when asked */
    int64_t max_disk_bytes; /* the disk cap: total bytes of the segment files of the open partitions
                               may not pass it (0 = off, the default) */
    int64_t min_free_bytes; /* free space the log leaves on the data directory's file system (statvfs
                               f_bavail * f_frsize; 0 = off, the default). Both make the disk budget
                               (budget.c): a batch is written only if it fits, the oldest segments across
                               all partitions are deleted to make room (held ones last, see
                               mq_log_stats()), and when nothing can go, writes wait as on a full disk */
    int64_t max_open_files; /* about how many descriptors the partitions keep open; those of the least
                               recently used are closed and reopened on demand; 0: half the soft
                               RLIMIT_NOFILE at open (default) */
};

/* Fills conf with the defaults above. */
void mq_log_conf_defaults(struct mq_log_conf *conf);

/* Retention of one topic's partitions. 0 disables a limit. */
struct mq_retention {
    int64_t ms;    /* delete segments whose newest record is older than this (default 7 days) */
    int64_t bytes; /* delete oldest segments while the partition is larger than this (default 0: off) */
};
#define MQ_RETENTION_MS_DEFAULT (7LL * 24 * 3600 * 1000)

enum mq_log_mode {
    MQ_LOG_WRITE, /* the single writer: recovery, appends, flushing, retention */
    MQ_LOG_READ,  /* a reader beside a live writer: never modifies a file */
};

/*
 * Opens the data directory dir (created in MQ_LOG_WRITE mode when missing). conf may be NULL for defaults.
 * MQ_ERR_BUSY when another process holds the writer lock. On failure *logp is untouched and errstr says why.
 * The caller owns the result and releases it with mq_log_close().
 */
enum mq_err mq_log_open(const char *dir, enum mq_log_mode mode, const struct mq_log_conf *conf,
                        struct mq_log **logp, char *errstr, size_t errstr_size);

/* Copies the configuration log was opened with (defaults filled in) into *conf: what the Kafka endpoint
 * reports as segment.bytes and the like. */
void mq_log_conf_get(const struct mq_log *log, struct mq_log_conf *conf);

/* Flushes every partition, writes clean-shutdown recovery points, stops the threads and frees everything,
 * partitions included. Accepts NULL. Returns the first error met while flushing (the log is freed anyway). */
enum mq_err mq_log_close(struct mq_log *log);

const char *mq_log_dir(const struct mq_log *log);
enum mq_log_mode mq_log_mode(const struct mq_log *log);

/*
 * Creates the directories of partitions [0, partitions) of topic (those that exist are kept). Write mode.
 */
enum mq_err mq_log_topic_create(struct mq_log *log, const char *topic, int32_t partitions);

/*
 * Returns partition `partition` of `topic`, opening (and in write mode recovering) it on first use.
 * MQ_ERR_NOENT when its directory does not exist. The partition belongs to log: do not free it.
 */
enum mq_err mq_log_part(struct mq_log *log, const char *topic, int32_t partition, struct mq_part **partp);

/*
 * One maintenance pass now, as the maintenance thread makes every retention_check_ms: retention of every
 * open partition (mq_part_apply_retention() with now_ms), then the disk budget. Write mode. Returns the first
 * error met; the pass goes on past it.
 */
enum mq_err mq_log_apply_retention(struct mq_log *log, int64_t now_ms);

/* What the disk budget did since the log was opened. */
struct mq_log_stats {
    int64_t disk_bytes;             /* segment bytes of the open partitions at the last check */
    int64_t early_deleted_segments; /* segments the disk budget deleted before retention would have: */
    int64_t cap_deleted_segments;   /*   for max_disk_bytes */
    int64_t free_deleted_segments;  /*   for min_free_bytes (the two add up to early_deleted_segments) */
    int64_t cap_deleted_bytes;      /* their bytes, by cause */
    int64_t free_deleted_bytes;
    int64_t dropped_unforwarded;   /* records it deleted at or above a retention hold: lost to the holder */
    int64_t budget_refused_writes; /* batch writes the budget held back until room was made (or for good) */
    bool budget_blocked;           /* over the budget with nothing left to delete: writes wait */
    /* since the log was opened, and now (the operator endpoints read these) */
    int64_t fsyncs;                     /* fdatasync and fsync calls of the group commits */
    int64_t retention_deleted_segments; /* segments time or size retention deleted */
    int64_t open_bytes;                 /* segment bytes of the open partitions, counted now */
    int64_t durable_lag;                /* records produced and not yet durable, now */
    int64_t heartbeat_ms;               /* mq_mono_ms() when the flusher thread last turned (writer) */
    int64_t recompacted_segments;       /* closed segments rewritten as large compressed batches */
    int64_t recompact_saved_bytes;      /* bytes those rewrites saved */
    int64_t unread_partitions;          /* open partitions left out of open_bytes and durable_lag: their
                                           locks were held past MQ_LOG_STATS_WAIT_MS */
};
/* Fills st; counting open_bytes and durable_lag takes each open partition's locks briefly, waiting at most
 * MQ_LOG_STATS_WAIT_MS in all (a flusher stuck holding one must not stall an operator's request). */
void mq_log_stats(struct mq_log *log, struct mq_log_stats *st);
#define MQ_LOG_STATS_WAIT_MS 200
/* mq_mono_ms() when the flusher thread last turned (writer): an atomic read, no lock (/healthz, watchdog). */
int64_t mq_log_heartbeat_ms(struct mq_log *log);
/* The durations of the group commits (each partition's flush with its syncs). */
struct mq_histo_snap;
void mq_log_flush_histo(struct mq_log *log, struct mq_histo_snap *snap);

/* Lists the partition directories found in the data directory: calls fn for each, in name order. */
enum mq_err mq_log_scan_dirs(const char *dir, void (*fn)(void *opaque, const char *topic, int32_t partition),
                             void *opaque);

/* Deletes a topic's partition directories (partitions must not be in use). */
enum mq_err mq_log_topic_delete(struct mq_log *log, const char *topic);

/*
 * Takes the open partitions of topic out of the log, for a topic being deleted while this process runs:
 * mq_log_part() opens a new partition for the name from then on, and the flusher, retention and the disk
 * cap no longer see the old ones. A pointer to an old partition held elsewhere (a reader in progress) stays
 * valid until mq_log_close(), which frees them without writing anything: what is still written to them is
 * lost with the topic. Write mode (else MQ_ERR_READONLY).
 */
enum mq_err mq_log_topic_retire(struct mq_log *log, const char *topic);

/*
 * Called after records of `part` became durable, with the new durable end, by the thread that made them
 * durable: the flusher thread, or a caller of mq_part_flush() or of a flush-always mq_part_append(). Calls
 * for different partitions may run at the same time. The callback runs with none of the log's locks held;
 * it must not block long, must not call back into the log's write functions and must not call
 * mq_log_set_durable_cb() (that would wait for itself).
 *
 * mq_log_set_durable_cb() sets the one callback of the log (NULL removes it). When it returns, no call of
 * the callback it replaced is running or will start, so the caller may free the old opaque at once (as a
 * connector's stop() guarantees for its callbacks). It waits for calls in progress: do not call it while
 * holding a lock the callback takes.
 */
typedef void mq_durable_cb(void *opaque, struct mq_part *part, int64_t durable_end);
void mq_log_set_durable_cb(struct mq_log *log, mq_durable_cb *cb, void *opaque);

/*
 * A retention hold: the lowest offset of `part` that retention must keep for a holder (a forwarder that has
 * not yet forwarded the records from there on), or INT64_MAX when it holds nothing of part. Time and size
 * retention stop at the first segment that holds an offset >= the hold; only the disk budget
 * (max_disk_bytes, min_free_bytes) deletes such segments, counting what it drops in mq_log_stats(). Called by
 * the maintenance thread (or a caller of mq_part_apply_retention() or mq_log_apply_retention()) with none of
 * the log's locks held, once per partition and pass; it must not block long and must not call
 * mq_log_set_hold(). A hold that is too low only keeps more; the holder may answer from a cached value.
 *
 * mq_log_set_hold() sets the one hold of the log (NULL removes it). As mq_log_set_durable_cb(), it returns
 * only when no call of the function it replaced is running or will start.
 */
typedef int64_t mq_hold_fn(void *opaque, struct mq_part *part);
void mq_log_set_hold(struct mq_log *log, mq_hold_fn *fn, void *opaque);

/* ---- partitions: writing ---- */

void mq_part_set_retention(struct mq_part *part, const struct mq_retention *ret);
/* The codec (enum mq_codec: none, lz4, zstd; gzip works too) the partition's batches are written with from
 * now on, the batch open now included. A batch whose records would not shrink is written uncompressed. The
 * default is none. */
void mq_part_set_compression(struct mq_part *part, int codec);
int mq_part_compression(struct mq_part *part);
/* When the partition's closed segments are recompacted (mq_part_recompact()): once their newest record is
 * ms old; -1 (the default) takes the log's recompact_after_ms. */
void mq_part_set_recompact_after(struct mq_part *part, int64_t ms);
const char *mq_part_topic(const struct mq_part *part);
int32_t mq_part_id(const struct mq_part *part);

/*
 * Appends recs[0..n) as one batch (split only if it would pass batch_bytes) after any records produced
 * before. *first_offset (may be NULL) gets the offset of recs[0]. With flush always, returns once durable.
 * Errors: MQ_ERR_NOSPC (nothing of this call was stored; retry once space returns), MQ_ERR_FULL, MQ_ERR_IO.
 */
enum mq_err mq_part_append(struct mq_part *part, const struct mq_record *recs, size_t n,
                           int64_t *first_offset);

/*
 * Adds one record to the partition's open batch and returns its offset in *offset (may be NULL). The batch
 * is written when full or at the next flush tick; wait for durability with mq_part_wait_durable().
 * MQ_ERR_FULL when max_pending_bytes are waiting to be written (disk full or slow): stop reading input.
 */
enum mq_err mq_part_produce(struct mq_part *part, const struct mq_record *rec, int64_t *offset);

/*
 * mq_part_produce() that first tells the caller the record's offset: note(opaque, part, offset) runs under
 * the partition's lock after the record is in the open batch and before any write can take it to the segment
 * file. A caller that keeps its own account of where records went (the redelivery guard of ingest) writes
 * it there, so that no kill of the process can leave the record in the file without the account. note must
 * not block or fail, and must not call into the partition.
 */
typedef void mq_produce_note_fn(void *opaque, struct mq_part *part, int64_t offset);
enum mq_err mq_part_produce_noted(struct mq_part *part, const struct mq_record *rec, mq_produce_note_fn *note,
                                  void *opaque, int64_t *offset);

/* True when mq_part_produce() would take a record now (no fatal error, less than max_pending_bytes waiting).
 * For a caller storing one message into several partitions: it checks them all before producing into any,
 * so that backpressure never leaves the message stored in some of them only. */
bool mq_part_can_produce(struct mq_part *part);

/* Asks the flusher thread to write and sync this partition now instead of at its next tick (for a caller that
 * is about to wait for durability). Returns at once. */
void mq_part_request_flush(struct mq_part *part);

/* Writes the open batch and fdatasyncs now; on MQ_OK every record produced before the call is durable. */
enum mq_err mq_part_flush(struct mq_part *part);

/* Waits until the record at `offset` is durable (durable_end > offset). timeout_ms < 0 waits forever.
 * MQ_ERR_TIMEDOUT, or the partition's write error (e.g. MQ_ERR_NOSPC) if it is failing. */
enum mq_err mq_part_wait_durable(struct mq_part *part, int64_t offset, int64_t timeout_ms);

/* Applies retention now with `now_ms` as the current time; *deleted (may be NULL) gets the segment count.
 * Stops at the first segment that holds an offset at or above the log's retention hold (mq_log_set_hold()).
 */
enum mq_err mq_part_apply_retention(struct mq_part *part, int64_t now_ms, int *deleted);

/*
 * Rewrites the closed segments of the partition that are due (newest record at least recompact_after_ms
 * older than now_ms; -1 counts as 0 here) as batches of up to MQ_RECOMPACT_BATCH_BYTES of records compressed
 * with the partition's codec (mq_part_set_compression(); nothing happens with none). Offsets, timestamps,
 * keys, values and headers stay; batches with a producer id, transactional, control or LogAppendTime batches
 * are copied unchanged. A closed segment: rolled, synced and behind the recovery point. Each segment is
 * swapped in crash-safe (see recompact.c) and only when it got smaller; readers holding the old one keep
 * reading it. The recompactor thread calls this every second for every open partition. *segments (may be
 * NULL) gets the count rewritten. Write mode.
 */
#define MQ_RECOMPACT_BATCH_BYTES (1024 * 1024)
enum mq_err mq_part_recompact(struct mq_part *part, int64_t now_ms, int *segments);
/* mq_part_recompact() over every open partition. */
enum mq_err mq_log_recompact(struct mq_log *log, int64_t now_ms);

/* ---- partitions: reading ---- */

struct mq_part_stats {
    int64_t start_offset; /* log start offset: the first offset still stored */
    int64_t end_offset; /* the next offset to be assigned (writer) / after the last complete batch (reader) */
    int64_t durable_offset; /* offsets below this are durable (reader: same as end_offset) */
    int64_t bytes;          /* bytes in segment files */
    int32_t segments;
    int64_t oldest_timestamp; /* max timestamp of the first batch, -1 when empty */
    int64_t newest_timestamp; /* largest timestamp stored, -1 when empty */
};
/* In read mode, first looks for data the writer added since the last call. */
enum mq_err mq_part_stats(struct mq_part *part, struct mq_part_stats *st);
/*
 * Offsets below the end that no reader gets because a segment's batches stop short of the next segment (a
 * segment emptied, cut or removed): what `mqlog verify` reports as missing, and what the end offset counts
 * as Kafka's log-end offset counts a range removed by compaction. Batches that fail their CRC are not
 * counted (finding them takes reading every byte: verify does). Reads about one index interval at the end
 * of each sealed segment.
 */
enum mq_err mq_part_missing_offsets(struct mq_part *part, int64_t *missing);
int64_t mq_part_durable_end(struct mq_part *part);
/* The cheap pair a Kafka fetch needs, without the I/O of mq_part_stats: the log start offset and the end of
 * what readers may see (the durable end in the writer's process; a reader process looks for new data at most
 * every 100 ms here). */
enum mq_err mq_part_offsets(struct mq_part *part, int64_t *start, int64_t *end);

/*
 * A byte range of whole batches in one segment file. fd stays open until mq_slice_release(), even if
 * retention deletes the segment meanwhile.
 */
struct mq_slice {
    int fd;
    int64_t pos;          /* file position of the first batch */
    size_t len;           /* bytes of whole batches */
    int64_t first_offset; /* base offset of the first batch */
    int64_t next_offset;  /* the offset after the last batch in the range */
    void *ref;            /* internal */
    unsigned codecs;      /* 1 << codec (enum mq_codec) for each codec its batches use */
};

/*
 * Finds the batch that holds `offset` (or the first batch after it, if records were removed) and returns
 * whole batches from there, up to max_bytes but always at least one batch. Only visible records (see the
 * top of this file). A slice never spans two segments: continue with next_offset.
 *
 * Damage hides only itself. A batch that fails its CRC is never part of a slice (a slice stops before it;
 * a read at its offsets starts after it), and a segment emptied, cut or unreadable from some batch on is
 * skipped to the next segment, as Kafka serves a range removed by compaction: first_offset then lies past
 * `offset`. Each damage is logged once per open log, naming the file. CRCs are checked once: batches this
 * process writes are known good, others are checked when first read and remembered (struct mq_segment).
 *
 * Returns MQ_OK with len 0 when nothing is readable from offset to the visible end (next_offset may then
 * lie past offset, after damage), MQ_ERR_RANGE when offset is below the log start or above the end,
 * MQ_ERR_CORRUPT for an invalid batch header in the last segment with nothing readable after it.
 * Release with mq_slice_release().
 */
enum mq_err mq_part_read(struct mq_part *part, int64_t offset, size_t max_bytes, struct mq_slice *slice);
void mq_slice_release(struct mq_slice *slice);

/*
 * The first offset whose record timestamp is >= ts (Kafka's ListOffsets by time), found through the time
 * index. *offset is -1 when no stored record is that new.
 */
enum mq_err mq_part_offset_for_time(struct mq_part *part, int64_t ts, int64_t *offset);

/*
 * The bytes of the log from the batch that holds `offset` to the visible end: what a reader starting at
 * offset has left to read, exact to the batch (the whole batch holding offset counts; found through the
 * offset index). 0 when offset is the visible end. MQ_ERR_RANGE when offset is below the log start or
 * beyond the visible end.
 */
enum mq_err mq_part_bytes_from(struct mq_part *part, int64_t offset, int64_t *bytes);

/* ---- partitions: reading records (the cursor) ---- */

/*
 * A cursor reads one partition batch by batch or record by record, for every reader of the log (the tool's
 * consume and replay, later the Kafka endpoint and the forwarder). It reads what mq_part_read() makes
 * visible, checks the size and CRC of every batch before handing anything of it out, and never hands out a
 * partial batch. Damaged batches and segments are skipped as mq_part_read() skips them (and logged there,
 * once). At the visible end next() returns 0; calling it again later sees records added meanwhile
 * (follow mode: a reader process looks for the writer's new data on each call at the end).
 *
 * Errors of next() (returned negated): MQ_ERR_RANGE when the cursor's position is no longer stored
 * (retention deleted it: below the log start) or lies beyond the end (the log was truncated): compare
 * mq_cursor_position() with mq_part_offsets() to tell which, then mq_cursor_seek(). MQ_ERR_CORRUPT for a
 * batch that fails its size or CRC check after mq_part_read() let it through (the file changed between
 * the two reads), holds a malformed record or compressed records that do not decompress (a corrupt frame, or
 * a bomb that would inflate past MQ_BATCH_MAX_RECORDS_SIZE); MQ_ERR_INVAL for a batch of a codec mqlog cannot
 * decode; MQ_ERR_IO, MQ_ERR_NOMEM. (Compressed batches are decompressed transparently for next().) After
 * MQ_ERR_CORRUPT, MQ_ERR_INVAL and MQ_ERR_IO, mq_cursor_fault() says where. The cursor stays usable: the same
 * call fails the same way again.
 *
 * A cursor belongs to one thread at a time. It keeps no lock between calls; it holds a reference to one
 * segment (which retention may delete meanwhile: the cursor reads it to its end, then reports
 * MQ_ERR_RANGE). Close it before the partition's log is closed.
 */
struct mq_cursor;

/*
 * Opens a cursor at `offset`: records at or after it come out (a batch holding earlier records comes out
 * whole from next_batch()). MQ_ERR_RANGE when offset is below the log start or above the visible end; the
 * end itself is valid (only records added later come out). On success the caller owns *curp and frees it
 * with mq_cursor_close(); on failure *curp is untouched.
 */
enum mq_err mq_cursor_open(struct mq_part *part, int64_t offset, struct mq_cursor **curp);

/*
 * Opens a cursor at the first record whose timestamp is >= ts (mq_part_offset_for_time()), or at the
 * visible end when no stored record is that new. Ownership as mq_cursor_open().
 */
enum mq_err mq_cursor_open_time(struct mq_part *part, int64_t ts, struct mq_cursor **curp);

/* Releases the cursor and its segment reference. Accepts NULL. */
void mq_cursor_close(struct mq_cursor *cur);

/* Moves the cursor to `offset` (a later next() fails with MQ_ERR_RANGE when it is not stored). */
void mq_cursor_seek(struct mq_cursor *cur, int64_t offset);

/* The offset the cursor reads from next: the offset it was opened or moved to, then the offset after the
 * last batch it read. Records of that batch not yet returned by next() are not counted. */
int64_t mq_cursor_position(const struct mq_cursor *cur);

/* True while next() can return records or batches without reading the segment again: the cursor reads up
 * to 1 MiB of batches at a time. A reader that shares its time among partitions gives each one such read
 * per turn. */
bool mq_cursor_buffered(const struct mq_cursor *cur);

/* One batch as stored. data points into the cursor's buffer, valid until the next call on the cursor. */
struct mq_cursor_batch {
    struct mq_batch_info info;
    const uint8_t *data; /* mq_batch_size(&info) bytes, CRC checked: forward them unchanged */
};

/*
 * The next batch, control batches and compressed batches included: 1 and *batch filled, 0 at the visible
 * end, or a negated error (see above). Records of the previous batch that next() had not returned yet are
 * skipped.
 */
int mq_cursor_next_batch(struct mq_cursor *cur, struct mq_cursor_batch *batch);

/*
 * The next record at or after the open offset: 1 and *rv filled (its absolute offset, and its effective
 * timestamp: the batch's MaxTimestamp for LogAppendTime batches), 0 at the visible end, or a negated error.
 * Control batches (transaction markers) are skipped. rv's pointers point into the cursor's buffer and stay
 * valid until the next call on the cursor.
 */
int mq_cursor_next(struct mq_cursor *cur, struct mq_record_view *rv);

/* Where the last MQ_ERR_CORRUPT, MQ_ERR_INVAL or MQ_ERR_IO of a cursor was found. Strings belong to the
 * cursor and stay valid until its next call. */
struct mq_cursor_fault {
    const char *path;    /* the segment file; "" when no batch was involved */
    int64_t position;    /* the batch's byte position in it; -1 when no batch was involved */
    int64_t base_offset; /* the batch's base offset (the cursor's position when its header is unreadable) */
    const char *what;    /* e.g. "CRC mismatch: stored 0x1234abcd, computed 0x0badf00d" */
};
const struct mq_cursor_fault *mq_cursor_fault(const struct mq_cursor *cur);

/* ---- offline verification (mqlog verify) ---- */

/* One problem found by mq_log_verify(). */
struct mq_verify_issue {
    const char *path; /* the file */
    int64_t position; /* byte position in it, -1 for the whole file */
    const char *what; /* e.g. "CRC mismatch: stored 0x..., computed 0x..." */
};
/*
 * Checks every batch (size, CRC, offsets increasing), every index entry of every partition under dir, the
 * offsets missing between segments and the files that are no regular files, without modifying anything. Calls
 * fn per problem; *problems gets the count. MQ_OK even when problems were found (that is what *problems is
 * for); errors are for when the check itself could not run.
 */
enum mq_err mq_log_verify(const char *dir, void (*fn)(void *opaque, const struct mq_verify_issue *issue),
                          void *opaque, int64_t *problems, int64_t *batches);

#endif
