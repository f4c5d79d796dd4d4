/*
 * store.h - a data directory as the rest of mqlog sees it: the log (log/log.h) and its catalog
 * (catalog/catalog.h) opened together, with the operations that must touch both in a safe order.
 *
 * The catalog is the authority on which topics exist, how many partitions they have and their retention; the
 * log holds the partition directories and the records. mq_store_topic_create() writes both so that a crash
 * in between leaves a state mq_store_check() reports and a repeated create repairs. mq_store_part() is the
 * way to reach a partition: it checks the catalog and applies the topic's retention.
 *
 * Threads: every function may be called from any thread on one store (the catalog has a mutex, the log is
 * thread-safe, topic creation and deletion are serialised by the store).
 */
#ifndef MQ_STORE_H
#define MQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "log/log.h"
#include "util/err.h"

struct mq_store;

/* Flags of mq_store_open(). */
enum {
    MQ_STORE_READ = 1 << 0,  /* a reader beside the daemon: log in MQ_LOG_READ, catalog read-write */
    MQ_STORE_WRITE = 1 << 1, /* the single writer (implies READ): takes the log's writer lock */
};

/*
 * Opens the data directory dir.
 *  - MQ_STORE_WRITE: creates dir (and its parents) when missing, opens the log with MQ_LOG_WRITE (which
 *    fails with MQ_ERR_BUSY when another process writes the directory) and creates or opens
 *    "<dir>/catalog.db".
 *  - MQ_STORE_READ alone: creates nothing; fails with MQ_ERR_NOENT when dir or its catalog is missing.
 *    Opens the log with MQ_LOG_READ; the catalog is opened read-write because readers commit group offsets.
 * conf (may be NULL for defaults) is passed to mq_log_open(). On failure *storep is untouched and errstr
 * says why. The caller owns the store and releases it with mq_store_close().
 */
enum mq_err mq_store_open(const char *dir, int flags, const struct mq_log_conf *conf,
                          struct mq_store **storep, char *errstr, size_t errstr_size);

/* Closes the log (flushing it, see mq_log_close()) and the catalog, and frees the store. Accepts NULL.
 * Returns the log's close error; the store is freed anyway. */
enum mq_err mq_store_close(struct mq_store *store);

/* The parts, owned by the store (do not close them). */
struct mq_log *mq_store_log(struct mq_store *store);
struct mq_catalog *mq_store_catalog(struct mq_store *store);
const char *mq_store_dir(const struct mq_store *store);

/*
 * Creates topic `name` (mq_topic_name_valid()) with `partitions` partitions (1..MQ_CATALOG_PARTITIONS_MAX)
 * and retention ret (NULL: MQ_RETENTION_MS_DEFAULT and no size limit). Write mode only (else
 * MQ_ERR_READONLY). The partition directories are created first and the catalog row is committed after
 * them, so a crash in between leaves directories without a row (mq_store_check() reports them) and calling
 * create again completes the topic. When the topic exists, any of its missing partition directories are
 * created and MQ_ERR_EXISTS is returned (its partition count and retention are left as they are). errstr
 * (may be NULL) says why on failure.
 */
enum mq_err mq_store_topic_create(struct mq_store *store, const char *name, int32_t partitions,
                                  const struct mq_retention *ret, char *errstr, size_t errstr_size);

/* Topic `name` from the catalog; MQ_ERR_NOENT when there is none. */
enum mq_err mq_store_topic_get(struct mq_store *store, const char *name, struct mq_catalog_topic *topic);

/* All topics in name order; free *topics with free() (see mq_catalog_topic_list()). */
enum mq_err mq_store_topic_list(struct mq_store *store, struct mq_catalog_topic **topics, size_t *count);

/*
 * Changes a topic's retention in the catalog. Write mode: also applies it at once to the topic's partitions
 * (opening them). A reader store only updates the catalog: the writer applies the new retention to a
 * partition at its next mq_store_part() call for it.
 */
enum mq_err mq_store_topic_set_retention(struct mq_store *store, const char *name,
                                         const struct mq_retention *ret);

/*
 * Raises topic `name` to `partitions` partitions: the new partition directories first, then the catalog row
 * (a crash in between leaves directories beyond the count, which mq_store_check() reports and a repeated
 * call completes). Write mode only. MQ_ERR_INVAL (with errstr) when the topic has more partitions than
 * that: Kafka never removes partitions, and neither does mqlog. MQ_OK when it has exactly that many.
 */
enum mq_err mq_store_topic_grow(struct mq_store *store, const char *name, int32_t partitions, char *errstr,
                                size_t errstr_size);

/*
 * `mqlog topic alter`, done by the writer (the tool, or mqlogd for it): raises the partition count to
 * partitions (-1: leaves it; fewer than now is MQ_ERR_INVAL, as mq_store_topic_grow()) and replaces the
 * retention's time and size limits given (-1: leaves that one). On MQ_OK, msg says what changed ("topic t:
 * partitions 1 -> 3; retention.ms 604800000 -> 86400000"); on failure, why. Write mode only.
 */
enum mq_err mq_store_topic_alter(struct mq_store *store, const char *name, int32_t partitions,
                                 int64_t retention_ms, int64_t retention_bytes, char *msg, size_t msg_size);

/*
 * Deletes topic `name`: its partition directories are renamed to "<topic>-<p>.deleted" first, then its
 * catalog row goes with its group offsets and the forwarders' checkpoints for it, then the renamed
 * directories are removed. A crash anywhere in between leaves ".deleted" directories, and the next
 * write-mode mq_store_open() finishes the delete. Partitions of the topic this process has open are retired
 * from the log first (mq_log_topic_retire()): whoever caches them must drop them (ingest does, see
 * mq_ingest_topic_drop()). Write mode only. MQ_ERR_NOENT when neither a row
 * nor a directory existed.
 */
enum mq_err mq_store_topic_delete(struct mq_store *store, const char *name);

/*
 * Returns partition `partition` of `topic` in *partp after checking that the catalog has the topic and the
 * partition is below its partition count (else MQ_ERR_NOENT, Kafka's UNKNOWN_TOPIC_OR_PARTITION), opening
 * it through mq_log_part() and applying the topic's current retention. The partition belongs to the log.
 */
enum mq_err mq_store_part(struct mq_store *store, const char *topic, int32_t partition,
                          struct mq_part **partp);

/*
 * Rebuilds the catalog rows of topics whose partition directories hold records but which the catalog does
 * not know (catalog.db lost, emptied or replaced): the topic, its partition count (the highest partition
 * directory + 1, missing directories below it created empty) and the default retention (the routes of
 * mqlogd set theirs again at the topic's first message). Without it every stored record of such a topic is
 * invisible. Topics whose directories hold no record (an interrupted create) are left to
 * mq_store_check(). Write mode only (MQ_ERR_READONLY). Calls fn once per topic rebuilt, issue->path its
 * partition 0 directory, position -1. *rebuilt (may be NULL) gets the count. An error means some row
 * could not be made (errstr says which): the store then still hides records, and a daemon must not start.
 * Consumer-group offsets and connector checkpoints cannot be rebuilt from the directories.
 */
enum mq_err mq_store_rebuild_topics(struct mq_store *store,
                                    void (*fn)(void *opaque, const struct mq_verify_issue *issue),
                                    void *opaque, int64_t *rebuilt, char *errstr, size_t errstr_size);

/* True when the write-mode open found catalog.db missing or empty (0 bytes) and started a new one. */
bool mq_store_catalog_was_new(const struct mq_store *store);

/*
 * The consistency check of catalog and directories, for `mqlog verify`: calls fn once per partition
 * directory without a catalog row (or beyond its topic's partition count) and once per partition of a
 * catalog topic whose directory is missing. issue->path is the partition directory, position -1. *problems
 * (may be NULL) gets the count. MQ_OK even when problems were found; an error only when the check could
 * not run.
 */
enum mq_err mq_store_check(struct mq_store *store,
                           void (*fn)(void *opaque, const struct mq_verify_issue *issue), void *opaque,
                           int64_t *problems);

#endif
