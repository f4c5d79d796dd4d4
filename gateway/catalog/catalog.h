/*
 * catalog.h - mqlog's catalog: the small, transactional metadata that sits beside the log in
 * "<data_dir>/catalog.db" (SQLite): topics and their settings, consumer group offsets, connector checkpoints,
 * and the SCRAM credentials of the Kafka endpoint's users.
 *
 * The log (log/log.h) holds the records; the catalog holds what must change atomically and be queried by
 * key. Several processes open the same catalog at once (the daemon, `mqlog consume --group`, `mqlog topic`),
 * so the database runs in WAL mode with a busy timeout, and every write is one BEGIN IMMEDIATE transaction.
 *
 * Durability: group offsets and connector checkpoints are committed with synchronous=NORMAL (durable across
 * process crashes; a power loss may roll back the last commits, which at worst redelivers records). Topic
 * changes are committed with synchronous=FULL, because a lost topic row would hide durable records.
 *
 * Threads: one struct mq_catalog may be shared by any number of threads; an internal mutex serialises calls.
 * Processes: any number; SQLite's locks serialise writers, waiting up to MQ_CATALOG_BUSY_TIMEOUT_MS before a
 * call fails with MQ_ERR_BUSY.
 *
 * Errors: every function returns an enum mq_err. SQLite errors become MQ_ERR_DB unless a more precise code
 * fits (MQ_ERR_BUSY, MQ_ERR_NOSPC, MQ_ERR_IO, MQ_ERR_CORRUPT, MQ_ERR_READONLY, MQ_ERR_NOMEM); the SQLite
 * message of the last failure is kept for mq_catalog_errmsg().
 */
#ifndef MQ_CATALOG_H
#define MQ_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/topic.h"

#define MQ_CATALOG_FILE            "catalog.db" /* its name inside a data directory */
#define MQ_CATALOG_BUSY_TIMEOUT_MS 5000
#define MQ_CATALOG_PARTITIONS_MAX  10000

struct mq_catalog;

/* Flags of mq_catalog_open(). */
enum {
    MQ_CATALOG_CREATE = 1 << 0,   /* create the file (and its schema) when it does not exist */
    MQ_CATALOG_READONLY = 1 << 1, /* never write: every modifying call returns MQ_ERR_READONLY */
};

/*
 * Opens (with MQ_CATALOG_CREATE: creates) the catalog database at path and brings its schema up to date.
 * Without MQ_CATALOG_CREATE a missing file is MQ_ERR_NOENT. A file that is not an mqlog catalog, or whose
 * schema is newer than this program knows, is refused. A read-only open of a catalog with an older schema
 * fails (it cannot migrate). On failure *catp is untouched and errstr says why. The caller owns the result
 * and releases it with mq_catalog_close().
 */
enum mq_err mq_catalog_open(const char *path, int flags, struct mq_catalog **catp, char *errstr,
                            size_t errstr_size);

/* Finalises the statements and closes the database. Accepts NULL. */
void mq_catalog_close(struct mq_catalog *cat);

/* The SQLite message of the last failed call on this handle (any thread), "" when none. Valid until the
 * next call on the handle. */
const char *mq_catalog_errmsg(struct mq_catalog *cat);

/* The schema version the open catalog has (PRAGMA user_version). */
int mq_catalog_schema_version(struct mq_catalog *cat);

/* ---- topics ---- */

struct mq_catalog_topic {
    char name[MQ_TOPIC_NAME_MAX + 1];
    int32_t partitions;
    int64_t retention_ms;    /* 0: no time limit */
    int64_t retention_bytes; /* 0: no size limit */
    int64_t created_ms;      /* wall clock, ms since the epoch */
};

/*
 * Inserts topic `name` with `partitions` partitions (1..MQ_CATALOG_PARTITIONS_MAX) and the given retention
 * (both >= 0). MQ_ERR_EXISTS when the topic is already there, MQ_ERR_INVAL for a bad argument (the name is
 * only checked for length here: the store checks the character set). Only the catalog row: the store
 * (store/store.h) also creates the partition directories.
 */
enum mq_err mq_catalog_topic_create(struct mq_catalog *cat, const char *name, int32_t partitions,
                                    int64_t retention_ms, int64_t retention_bytes);

/* Copies topic `name` into *topic. MQ_ERR_NOENT when there is no such topic. */
enum mq_err mq_catalog_topic_get(struct mq_catalog *cat, const char *name, struct mq_catalog_topic *topic);

/* All topics in name order: *topics is a malloc'd array of *count entries (NULL when 0) the caller frees
 * with free(). */
enum mq_err mq_catalog_topic_list(struct mq_catalog *cat, struct mq_catalog_topic **topics, size_t *count);

/* Changes a topic's retention (both >= 0). MQ_ERR_NOENT when there is no such topic. */
enum mq_err mq_catalog_topic_set_retention(struct mq_catalog *cat, const char *name, int64_t retention_ms,
                                           int64_t retention_bytes);

/* Raises a topic's partition count to partitions (1..MQ_CATALOG_PARTITIONS_MAX). MQ_ERR_NOENT when there is
 * no such topic or it already has that many or more: partitions are never taken away, as in Kafka. */
enum mq_err mq_catalog_topic_grow(struct mq_catalog *cat, const char *name, int32_t partitions);

/* Deletes a topic and, in the same transaction, every group offset committed for it. MQ_ERR_NOENT when
 * there is no such topic. */
enum mq_err mq_catalog_topic_delete(struct mq_catalog *cat, const char *name);

/* ---- consumer group offsets ---- */

/* One partition of an offset commit (Kafka's OffsetCommit carries many). */
struct mq_offset_commit {
    const char *topic;
    int32_t partition;
    int64_t offset;       /* the next offset the group will consume */
    const char *metadata; /* may be NULL */
    enum mq_err err;      /* out: MQ_OK, or MQ_ERR_NOENT (unknown topic or partition), MQ_ERR_INVAL */
};

/*
 * Commits the offsets of group for commits[0..n) in one transaction, stamped with the current time. An
 * entry for an unknown topic or a partition outside the topic gets its err set and is skipped, while the
 * others are committed (Kafka answers per partition). Returns MQ_OK when the transaction committed (check
 * each err), or the error that made the whole transaction fail (then nothing was committed; every err is
 * set to it).
 */
enum mq_err mq_catalog_offset_commit_many(struct mq_catalog *cat, const char *group,
                                          struct mq_offset_commit *commits, size_t n);

/* Commits one offset; MQ_ERR_NOENT for an unknown topic or partition. */
enum mq_err mq_catalog_offset_commit(struct mq_catalog *cat, const char *group, const char *topic,
                                     int32_t partition, int64_t offset, const char *metadata);

/*
 * Fetches the committed offset of group for topic/partition into *offset. *metadata (when metadata is not
 * NULL) gets a malloc'd copy the caller frees, or NULL when none was committed; *commit_time_ms (may be
 * NULL) the commit time. MQ_ERR_NOENT when the group committed nothing for that partition.
 */
enum mq_err mq_catalog_offset_fetch(struct mq_catalog *cat, const char *group, const char *topic,
                                    int32_t partition, int64_t *offset, char **metadata,
                                    int64_t *commit_time_ms);

/* One committed offset as listed by mq_catalog_offset_list(). */
struct mq_group_offset {
    char *topic;
    int32_t partition;
    int64_t offset;
    char *metadata; /* NULL when none */
    int64_t commit_time_ms;
};

/* Every offset committed by group, ordered by topic and partition. *offsets is an array of *count entries
 * (NULL when 0) the caller frees with mq_catalog_offsets_free(). */
enum mq_err mq_catalog_offset_list(struct mq_catalog *cat, const char *group,
                                   struct mq_group_offset **offsets, size_t *count);
void mq_catalog_offsets_free(struct mq_group_offset *offsets, size_t count);

/* The ids of the groups that committed at least one offset, in order: *groups is an array of *count
 * malloc'd strings the caller frees with mq_catalog_strings_free(). */
enum mq_err mq_catalog_group_list(struct mq_catalog *cat, char ***groups, size_t *count);
void mq_catalog_strings_free(char **strings, size_t count);

/* Records that group has members in the Kafka endpoint of process owner_pid (live), or no longer has
 * (not live). mqlogd keeps this so that a reset beside it can refuse a group in use. */
enum mq_err mq_catalog_group_set_live(struct mq_catalog *cat, const char *group, long owner_pid, bool live);

/* Forgets every live group: mqlogd at start, when no member can be connected yet. */
enum mq_err mq_catalog_groups_clear_live(struct mq_catalog *cat);

/*
 * Sets group's offsets to commits[0..n) in one transaction, as `mqlog groups reset` does, unless the group
 * is live in the running mqlogd whose pid is daemon_pid (0: no daemon runs, so no group is live; -1: one
 * runs whose pid is unknown): then MQ_ERR_BUSY and nothing is written. Each commit's err is set as by
 * mq_catalog_offset_commit_many, but one failing partition fails (and rolls back) the whole reset.
 */
enum mq_err mq_catalog_offset_reset(struct mq_catalog *cat, const char *group,
                                    struct mq_offset_commit *commits, size_t n, long daemon_pid);

/* Deletes every offset of group. MQ_ERR_NOENT when it had none. */
enum mq_err mq_catalog_group_delete(struct mq_catalog *cat, const char *group);

/* ---- connector checkpoints ----
 *
 * Small values a connector keeps across restarts, keyed by (connector name, key). Only the tests use them
 * today; they are kept for issue 9's forwarder, which stores per forwarder and partition the last local
 * offset it knows the remote cluster holds: a resume hint (the remote tail is the truth in exactly-once
 * mode, the checkpoint in at-least-once mode) and the base of the lag figures `mqlog forward status` shows.
 */

/* Stores value[0..len) (binary, may be empty) under (connector, key), replacing any previous value. */
enum mq_err mq_catalog_checkpoint_put(struct mq_catalog *cat, const char *connector, const char *key,
                                      const void *value, size_t len);

/* Copies the value of (connector, key) into a malloc'd *value of *len bytes the caller frees (one more
 * byte is allocated and set to 0, so text values are strings). MQ_ERR_NOENT when there is none. */
enum mq_err mq_catalog_checkpoint_get(struct mq_catalog *cat, const char *connector, const char *key,
                                      void **value, size_t *len);

/* Deletes (connector, key). MQ_ERR_NOENT when there was none. */
enum mq_err mq_catalog_checkpoint_delete(struct mq_catalog *cat, const char *connector, const char *key);

/* One checkpoint as listed by mq_catalog_checkpoint_list(). */
struct mq_checkpoint {
    char *connector;
    char *key;
    char *value; /* len bytes plus a terminating 0, so that text values are strings */
    size_t len;
    int64_t updated_ms; /* when it was last stored (wall clock, ms since the epoch) */
};

/* Every checkpoint whose connector name starts with prefix ("" for all; "forward." for every forwarder's),
 * ordered by connector and key. *checkpoints is an array of *count entries (NULL when 0) the caller frees
 * with mq_catalog_checkpoints_free(). */
enum mq_err mq_catalog_checkpoint_list(struct mq_catalog *cat, const char *prefix,
                                       struct mq_checkpoint **checkpoints, size_t *count);
void mq_catalog_checkpoints_free(struct mq_checkpoint *checkpoints, size_t count);

/* ---- users (SASL credentials of the Kafka endpoint) ----
 *
 * Only what SCRAM (RFC 5802) needs to verify a client is stored, never a password: per user and mechanism
 * the salt, the iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
 * HMAC(SaltedPassword, "Server Key"). PLAIN is verified against the same entries. Each mechanism has its own
 * entry because its hash differs. The endpoint reads the entries at every authentication, so a change
 * applies to the next connection of any process that has the catalog open.
 */

#define MQ_CATALOG_USER_NAME_MAX 255
#define MQ_CATALOG_SALT_MAX      64
#define MQ_CATALOG_KEY_MAX       64 /* SHA-512 */
#define MQ_SCRAM_ITERATIONS_MIN  4096
/* Kafka's bounds. The endpoint runs PBKDF2 on its loop thread for every PLAIN login: 16384 iterations of
 * SHA-512 take milliseconds, a million would stall every client for most of a second. */
#define MQ_SCRAM_ITERATIONS_MAX 16384

/* One user's credential for one mechanism. */
struct mq_catalog_user {
    char name[MQ_CATALOG_USER_NAME_MAX + 1];
    char mechanism[16]; /* "SCRAM-SHA-256" or "SCRAM-SHA-512" */
    uint8_t salt[MQ_CATALOG_SALT_MAX];
    size_t salt_len; /* 1..MQ_CATALOG_SALT_MAX */
    int32_t iterations;
    uint8_t stored_key[MQ_CATALOG_KEY_MAX];
    uint8_t server_key[MQ_CATALOG_KEY_MAX];
    size_t key_len;     /* the hash's size: 32 for SCRAM-SHA-256, 64 for SCRAM-SHA-512 */
    int64_t created_ms; /* wall clock, ms since the epoch (set by mq_catalog_user_set()) */
};

/*
 * Replaces every credential of user `name` with creds[0..n) (n >= 1, each with this name, a distinct
 * mechanism, a key length that fits it and iterations in [MQ_SCRAM_ITERATIONS_MIN,
 * MQ_SCRAM_ITERATIONS_MAX]) in one transaction. *created (may be NULL) is set to whether the user had no
 * credential before. MQ_ERR_INVAL for a bad argument.
 */
enum mq_err mq_catalog_user_set(struct mq_catalog *cat, const char *name, const struct mq_catalog_user *creds,
                                size_t n, bool *created);

/* Copies the credential of user `name` for mechanism into *user. MQ_ERR_NOENT when there is none. */
enum mq_err mq_catalog_user_get(struct mq_catalog *cat, const char *name, const char *mechanism,
                                struct mq_catalog_user *user);

/* Every credential ordered by name and mechanism: *users is a malloc'd array of *count entries (NULL when
 * 0) the caller frees with free(). */
enum mq_err mq_catalog_user_list(struct mq_catalog *cat, struct mq_catalog_user **users, size_t *count);

/* Deletes every credential of user `name`. MQ_ERR_NOENT when it had none. */
enum mq_err mq_catalog_user_delete(struct mq_catalog *cat, const char *name);

#endif
