/*
 * catalog.c - the SQLite catalog: opening and migrating the schema, prepared statements, transactions, the
 * translation of SQLite result codes into enum mq_err, and topics. Group offsets, connector checkpoints and
 * users are in offsets.c, checkpoints.c and users.c, on the machinery catalog_int.h shares.
 *
 * Every statement is prepared once at open (SQLITE_PREPARE_PERSISTENT) and reset after each use, so a call
 * costs no parsing. A mutex around every public function lets the daemon's threads share one handle; the
 * connection itself is opened without SQLite's own mutex because ours already serialises it.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

/* "mqlg": marks the file as an mqlog catalog, so that opening some other SQLite database is refused. */
#define MQ_CATALOG_APP_ID 0x6d716c67

/*
 * The schema, one migration per version: migration i takes user_version i to i + 1. Append new entries,
 * never edit applied ones: a catalog written by an older mqlog is brought forward step by step.
 */
static const char *const mq_catalog_migrations[] = {
    /* 1: topics, group offsets, connector checkpoints. */
    "CREATE TABLE topics ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  partitions INTEGER NOT NULL CHECK (partitions > 0),"
    "  retention_ms INTEGER NOT NULL CHECK (retention_ms >= 0),"
    "  retention_bytes INTEGER NOT NULL CHECK (retention_bytes >= 0),"
    "  created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    /* Offsets go with their topic: deleting a topic deletes them (foreign_keys is on for every connection).
     */
    "CREATE TABLE group_offsets ("
    "  group_id TEXT NOT NULL,"
    "  topic TEXT NOT NULL REFERENCES topics (name) ON DELETE CASCADE,"
    "  \"partition\" INTEGER NOT NULL CHECK (\"partition\" >= 0),"
    "  committed_offset INTEGER NOT NULL,"
    "  metadata TEXT,"
    "  commit_time_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (group_id, topic, \"partition\")"
    ") WITHOUT ROWID;"
    /* The cascade looks offsets up by topic: without this index every topic delete scans the table. */
    "CREATE INDEX group_offsets_topic ON group_offsets (topic);"
    "CREATE TABLE connector_checkpoints ("
    "  connector TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value BLOB NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (connector, key)"
    ") WITHOUT ROWID;",
    /* 2: the SCRAM credentials of the Kafka endpoint's users (catalog.h, users.c). */
    "CREATE TABLE users ("
    "  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),"
    "  mechanism TEXT NOT NULL CHECK (mechanism IN ('SCRAM-SHA-256', 'SCRAM-SHA-512')),"
    "  salt BLOB NOT NULL CHECK (length(salt) BETWEEN 1 AND 64),"
    "  iterations INTEGER NOT NULL CHECK (iterations >= 4096),"
    "  stored_key BLOB NOT NULL,"
    "  server_key BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (name, mechanism)"
    ") WITHOUT ROWID;",
    /* 3: the consumer groups that have members in mqlogd's Kafka endpoint now (offsets.c): a group offset
     * reset beside the daemon is refused for them. owner_pid tells rows a killed daemon left behind. */
    "CREATE TABLE live_groups ("
    "  group_id TEXT PRIMARY KEY NOT NULL,"
    "  owner_pid INTEGER NOT NULL,"
    "  since_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;",
};
#define MQ_CATALOG_VERSION ((int)(sizeof mq_catalog_migrations / sizeof mq_catalog_migrations[0]))
static const char *const mq_catalog_sql[ST__COUNT] = {
    /* IMMEDIATE takes the write lock at once, so a busy database is waited for (busy_timeout) at BEGIN
     * instead of failing at the first write with a lock upgrade the busy handler cannot resolve. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_TOPIC_INSERT] = "INSERT INTO topics (name, partitions, retention_ms, retention_bytes, created_ms) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_TOPIC_GET] = "SELECT name, partitions, retention_ms, retention_bytes, created_ms FROM topics "
                     "WHERE name = ?1",
    [ST_TOPIC_LIST] = "SELECT name, partitions, retention_ms, retention_bytes, created_ms FROM topics "
                      "ORDER BY name",
    [ST_TOPIC_SET_RETENTION] = "UPDATE topics SET retention_ms = ?2, retention_bytes = ?3 WHERE name = ?1",
    [ST_TOPIC_GROW] = "UPDATE topics SET partitions = ?2 WHERE name = ?1 AND partitions < ?2",
    [ST_TOPIC_DELETE] = "DELETE FROM topics WHERE name = ?1",
    [ST_OFFSET_UPSERT] =
        "INSERT INTO group_offsets (group_id, topic, \"partition\", committed_offset, metadata, "
        "commit_time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT (group_id, topic, \"partition\") DO UPDATE SET "
        "committed_offset = excluded.committed_offset, metadata = excluded.metadata, "
        "commit_time_ms = excluded.commit_time_ms",
    [ST_OFFSET_GET] = "SELECT committed_offset, metadata, commit_time_ms FROM group_offsets "
                      "WHERE group_id = ?1 AND topic = ?2 AND \"partition\" = ?3",
    [ST_OFFSET_LIST] =
        "SELECT topic, \"partition\", committed_offset, metadata, commit_time_ms FROM group_offsets "
        "WHERE group_id = ?1 ORDER BY topic, \"partition\"",
    [ST_GROUP_LIST] = "SELECT DISTINCT group_id FROM group_offsets ORDER BY group_id",
    [ST_GROUP_DELETE] = "DELETE FROM group_offsets WHERE group_id = ?1",
    [ST_CKPT_PUT] = "INSERT INTO connector_checkpoints (connector, key, value, updated_ms) "
                    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (connector, key) DO UPDATE SET "
                    "value = excluded.value, updated_ms = excluded.updated_ms",
    [ST_CKPT_GET] = "SELECT value FROM connector_checkpoints WHERE connector = ?1 AND key = ?2",
    [ST_CKPT_DELETE] = "DELETE FROM connector_checkpoints WHERE connector = ?1 AND key = ?2",
    /* substr rather than LIKE: a prefix may hold '%' or '_', and LIKE ignores case. */
    [ST_CKPT_LIST] = "SELECT connector, key, value, updated_ms FROM connector_checkpoints "
                     "WHERE substr(connector, 1, length(?1)) = ?1 ORDER BY connector, key",
    [ST_USER_INSERT] = "INSERT INTO users (name, mechanism, salt, iterations, stored_key, server_key, "
                       "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_USER_GET] = "SELECT name, mechanism, salt, iterations, stored_key, server_key, created_ms FROM users "
                    "WHERE name = ?1 AND mechanism = ?2",
    [ST_USER_LIST] =
        "SELECT name, mechanism, salt, iterations, stored_key, server_key, created_ms FROM users "
        "ORDER BY name, mechanism",
    [ST_USER_DELETE] = "DELETE FROM users WHERE name = ?1",
    [ST_LIVE_UPSERT] = "INSERT INTO live_groups (group_id, owner_pid, since_ms) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT (group_id) DO UPDATE SET owner_pid = excluded.owner_pid, "
                       "since_ms = excluded.since_ms",
    [ST_LIVE_DELETE] = "DELETE FROM live_groups WHERE group_id = ?1",
    [ST_LIVE_CLEAR] = "DELETE FROM live_groups",
    [ST_LIVE_GET] = "SELECT owner_pid FROM live_groups WHERE group_id = ?1",
};

/* ---- result codes ---- */

/* Translates a SQLite result code (extended codes are on) into enum mq_err. */
static enum mq_err mq_catalog_err(sqlite3 *db, int rc)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return MQ_OK;
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return MQ_ERR_EXISTS;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return MQ_ERR_NOENT;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return MQ_ERR_INVAL;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return MQ_ERR_BUSY;
    case SQLITE_NOMEM:
        return MQ_ERR_NOMEM;
    case SQLITE_FULL:
        return MQ_ERR_NOSPC;
    case SQLITE_IOERR:
        return (rc == SQLITE_IOERR_NOMEM) ? MQ_ERR_NOMEM : MQ_ERR_IO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return MQ_ERR_CORRUPT;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return MQ_ERR_READONLY;
    case SQLITE_CANTOPEN: {
        /* The operating system's reason says more than "unable to open database file". */
        int sys = db ? sqlite3_system_errno(db) : 0;
        return sys ? mq_err_from_errno(sys) : MQ_ERR_IO;
    }
    default:
        return MQ_ERR_DB;
    }
}

/* Records the failure of `what` with SQLite code rc in cat->errmsg and returns its enum mq_err. */
enum mq_err mq_catalog__fail(struct mq_catalog *cat, int rc, const char *what)
{
    snprintf(cat->errmsg, sizeof cat->errmsg, "%s: %s", what, MQ_CLAUSE(sqlite3_errmsg(cat->db)));
    return mq_catalog_err(cat->db, rc);
}

/* Resets a statement after use: releases its read snapshot and its bindings. */
void mq_catalog__done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows (or whose rows are ignored) once and resets it. */
enum mq_err mq_catalog__exec(struct mq_catalog *cat, enum mq_catalog_stmt id, const char *what)
{
    sqlite3_stmt *st = cat->st[id];
    int rc = sqlite3_step(st);
    enum mq_err err = MQ_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = mq_catalog__fail(cat, rc, what);
    mq_catalog__done(st);
    return err;
}

/* Binds a text or NULL; the statement copies nothing (SQLITE_STATIC): the caller's strings outlive the step.
 */
int mq_catalog__bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    return s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, idx);
}

/* ---- transactions ---- */

/*
 * Runs "PRAGMA synchronous=..." outside any transaction. Such pragmas take effect when they are prepared, so
 * a statement prepared once could not toggle the setting again; sqlite3_exec prepares it each time.
 */
static enum mq_err mq_catalog_set_sync(struct mq_catalog *cat, bool full)
{
    int rc = sqlite3_exec(cat->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, NULL,
                          NULL);
    return rc == SQLITE_OK ? MQ_OK : mq_catalog__fail(cat, rc, "PRAGMA synchronous");
}

enum mq_err mq_catalog__begin(struct mq_catalog *cat, bool full_sync)
{
    if (cat->readonly) {
        snprintf(cat->errmsg, sizeof cat->errmsg, "the catalog was opened read-only");
        return MQ_ERR_READONLY;
    }
    if (full_sync) {
        enum mq_err err = mq_catalog_set_sync(cat, true);
        if (err != MQ_OK)
            return err;
    }
    enum mq_err err = mq_catalog__exec(cat, ST_BEGIN, "BEGIN IMMEDIATE");
    if (err != MQ_OK && full_sync)
        (void)mq_catalog_set_sync(cat, false); /* the BEGIN error is the one to report */
    return err;
}

/*
 * Ends the transaction begun by mq_catalog__begin(): COMMIT when err is MQ_OK, else ROLLBACK. Returns err, or
 * the COMMIT's error. A failed COMMIT may leave the transaction open (SQLITE_BUSY); it is rolled back then,
 * so that the handle is never left inside a transaction.
 */
enum mq_err mq_catalog__end(struct mq_catalog *cat, enum mq_err err, bool full_sync)
{
    if (err == MQ_OK)
        err = mq_catalog__exec(cat, ST_COMMIT, "COMMIT");
    if (!sqlite3_get_autocommit(cat->db)) {
        char keep[sizeof cat->errmsg];
        memcpy(keep, cat->errmsg, sizeof keep);
        int rc = sqlite3_step(cat->st[ST_ROLLBACK]);
        mq_catalog__done(cat->st[ST_ROLLBACK]);
        /* A failed ROLLBACK is left to SQLite's automatic rollback; the first error is the one to report. */
        (void)rc;
        memcpy(cat->errmsg, keep, sizeof keep);
    }
    if (full_sync) {
        enum mq_err e2 = mq_catalog_set_sync(cat, false);
        if (err == MQ_OK)
            err = e2;
    }
    return err;
}

/* Runs a one-statement modification (bound by the caller) in a transaction; MQ_ERR_NOENT when it changed
 * no row. Called with the lock held. */
enum mq_err mq_catalog__modify(struct mq_catalog *cat, enum mq_catalog_stmt id, const char *what,
                               bool full_sync)
{
    enum mq_err err = mq_catalog__begin(cat, full_sync);
    if (err != MQ_OK) {
        mq_catalog__done(cat->st[id]);
        return err;
    }
    err = mq_catalog__exec(cat, id, what);
    if (err == MQ_OK && sqlite3_changes(cat->db) == 0)
        err = MQ_ERR_NOENT;
    return mq_catalog__end(cat, err, full_sync);
}

char *mq_catalog__strdup_col(sqlite3_stmt *st, int col, bool *oom)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (!s)
        return NULL;
    char *copy = strdup(s);
    if (!copy)
        *oom = true;
    return copy;
}

/* ---- opening ---- */

/* Reads an integer pragma (user_version, application_id) into *out. */
static int mq_catalog_pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Applies the migrations the file lacks, each in its own BEGIN IMMEDIATE transaction. The version is read
 * again inside the transaction: two processes opening a fresh catalog at once must not both apply one.
 */
static enum mq_err mq_catalog_migrate(struct mq_catalog *cat, const char *path, char *errstr,
                                      size_t errstr_size)
{
    for (;;) {
        int version = 0;
        int rc = sqlite3_exec(cat->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = mq_catalog_pragma_int(cat->db, "PRAGMA user_version", &version);
        if (rc != SQLITE_OK)
            goto fail;
        if (version > MQ_CATALOG_VERSION) {
            sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
            return mq_errf(MQ_ERR_DB, errstr, errstr_size,
                           "%s: catalog schema version %d is newer than this mqlog supports (%d)", path,
                           version, MQ_CATALOG_VERSION);
        }
        if (version == MQ_CATALOG_VERSION) {
            rc = sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL);
            if (rc != SQLITE_OK)
                goto fail;
            cat->version = version;
            return MQ_OK;
        }
        char set[96];
        snprintf(set, sizeof set, "PRAGMA user_version = %d; PRAGMA application_id = %d", version + 1,
                 MQ_CATALOG_APP_ID);
        rc = sqlite3_exec(cat->db, mq_catalog_migrations[version], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(cat->db, set, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto fail;
        continue;
    fail:;
        enum mq_err err = mq_catalog_err(cat->db, rc);
        mq_errf(err, errstr, errstr_size, "%s: migrating the catalog schema to version %d: %s", path,
                version + 1, MQ_CLAUSE(sqlite3_errmsg(cat->db)));
        if (!sqlite3_get_autocommit(cat->db))
            sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
        return err;
    }
}

/* Sets the connection's pragmas. WAL lets readers in other processes run beside a writer. */
static enum mq_err mq_catalog_configure(struct mq_catalog *cat, const char *path, char *errstr,
                                        size_t errstr_size)
{
    int rc = sqlite3_busy_timeout(cat->db, MQ_CATALOG_BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(cat->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;

    int app_id = 0, version = 0;
    rc = mq_catalog_pragma_int(cat->db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK)
        rc = mq_catalog_pragma_int(cat->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        goto fail;
    if (app_id != MQ_CATALOG_APP_ID && (app_id != 0 || version != 0))
        return mq_errf(MQ_ERR_CORRUPT, errstr, errstr_size, "%s: not an mqlog catalog (application_id 0x%x)",
                       path, (unsigned)app_id);

    if (cat->readonly) {
        if (version != MQ_CATALOG_VERSION)
            return mq_errf(version == 0 ? MQ_ERR_NOENT : MQ_ERR_DB, errstr, errstr_size,
                           "%s: catalog schema version %d, this mqlog needs %d (open it once read-write)",
                           path, version, MQ_CATALOG_VERSION);
        cat->version = version;
        return MQ_OK;
    }

    /* journal_mode is stored in the file, so this only does work the first time. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(cat->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(st, 0);
            if (!mode || strcmp(mode, "wal") != 0) {
                sqlite3_finalize(st);
                return mq_errf(
                    MQ_ERR_DB, errstr, errstr_size,
                    "%s: the catalog cannot use WAL mode (journal mode %s; a network file system?)", path,
                    mode ? mode : "unknown");
            }
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK)
        goto fail;
    /*
     * WAL with synchronous=NORMAL: a commit survives a crash of the process (the WAL is in the OS's page
     * cache), a power loss may undo the last commits but never corrupts the file. That is right for offsets
     * and checkpoints (at worst a record is delivered again) and saves an fsync per commit; topic changes
     * switch to FULL for their transaction (mq_catalog__begin).
     */
    rc = sqlite3_exec(cat->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    return mq_catalog_migrate(cat, path, errstr, errstr_size);

fail:
    return mq_errf(mq_catalog_err(cat->db, rc), errstr, errstr_size, "%s: %s", path,
                   MQ_CLAUSE(sqlite3_errmsg(cat->db)));
}

enum mq_err mq_catalog_open(const char *path, int flags, struct mq_catalog **catp, char *errstr,
                            size_t errstr_size)
{
    if (!path || !catp)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mq_catalog_open: no path");
    struct mq_catalog *cat = calloc(1, sizeof *cat);
    if (!cat)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "%s: out of memory", path);
    if (pthread_mutex_init(&cat->lock, NULL) != 0) {
        free(cat);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "%s: cannot create a mutex", path);
    }
    cat->readonly = (flags & MQ_CATALOG_READONLY) != 0;

    int oflags = SQLITE_OPEN_NOMUTEX;
    if (cat->readonly)
        oflags |= SQLITE_OPEN_READONLY;
    else
        oflags |= SQLITE_OPEN_READWRITE | ((flags & MQ_CATALOG_CREATE) ? SQLITE_OPEN_CREATE : 0);
    enum mq_err err;
    int rc = sqlite3_open_v2(path, &cat->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        int sys = cat->db ? sqlite3_system_errno(cat->db) : 0;
        err = mq_catalog_err(cat->db, rc);
        if (sys)
            mq_errf(err, errstr, errstr_size, "cannot open catalog %s: %s", path, MQ_STRERROR(sys));
        else
            mq_errf(err, errstr, errstr_size, "cannot open catalog %s: %s", path,
                    MQ_CLAUSE(cat->db ? sqlite3_errmsg(cat->db) : sqlite3_errstr(rc)));
        goto fail;
    }
    sqlite3_extended_result_codes(cat->db, 1);
    /* A file we may not write is opened read-only by SQLite without an error: say so up front. */
    if (!cat->readonly && sqlite3_db_readonly(cat->db, "main") == 1) {
        err = mq_errf(MQ_ERR_READONLY, errstr, errstr_size, "catalog %s is not writable", path);
        goto fail;
    }
    err = mq_catalog_configure(cat, path, errstr, errstr_size);
    if (err != MQ_OK)
        goto fail;

    for (int i = 0; i < ST__COUNT; i++) {
        rc = sqlite3_prepare_v3(cat->db, mq_catalog_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &cat->st[i], NULL);
        if (rc != SQLITE_OK) {
            err = mq_errf(mq_catalog_err(cat->db, rc), errstr, errstr_size, "%s: preparing \"%s\": %s", path,
                          mq_catalog_sql[i], MQ_CLAUSE(sqlite3_errmsg(cat->db)));
            goto fail;
        }
    }
    *catp = cat;
    return MQ_OK;

fail:
    mq_catalog_close(cat);
    return err;
}

void mq_catalog_close(struct mq_catalog *cat)
{
    if (!cat)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(cat->st[i]);
    /* Every statement is finalised, so close cannot fail with SQLITE_BUSY; the last connection to close
     * checkpoints the WAL into the database file. */
    sqlite3_close(cat->db);
    pthread_mutex_destroy(&cat->lock);
    free(cat);
}

const char *mq_catalog_errmsg(struct mq_catalog *cat)
{
    return cat ? cat->errmsg : "";
}

int mq_catalog_schema_version(struct mq_catalog *cat)
{
    return cat->version;
}

/* ---- topics ---- */

static bool mq_catalog_name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len > 0 && len <= MQ_TOPIC_NAME_MAX;
}

enum mq_err mq_catalog_topic_create(struct mq_catalog *cat, const char *name, int32_t partitions,
                                    int64_t retention_ms, int64_t retention_bytes)
{
    if (!mq_catalog_name_ok(name) || partitions < 1 || partitions > MQ_CATALOG_PARTITIONS_MAX ||
        retention_ms < 0 || retention_bytes < 0)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    enum mq_err err = mq_catalog__begin(cat, true);
    if (err == MQ_OK) {
        sqlite3_stmt *st = cat->st[ST_TOPIC_INSERT];
        mq_catalog__bind_text(st, 1, name);
        sqlite3_bind_int(st, 2, partitions);
        sqlite3_bind_int64(st, 3, retention_ms);
        sqlite3_bind_int64(st, 4, retention_bytes);
        sqlite3_bind_int64(st, 5, mq_now_ms());
        err = mq_catalog__exec(cat, ST_TOPIC_INSERT, "inserting a topic");
        err = mq_catalog__end(cat, err, true);
    }
    pthread_mutex_unlock(&cat->lock);
    return err;
}

static void mq_catalog_row_topic(sqlite3_stmt *st, struct mq_catalog_topic *t)
{
    memset(t, 0, sizeof *t);
    const char *name = (const char *)sqlite3_column_text(st, 0);
    if (name)
        snprintf(t->name, sizeof t->name, "%s", name);
    t->partitions = sqlite3_column_int(st, 1);
    t->retention_ms = sqlite3_column_int64(st, 2);
    t->retention_bytes = sqlite3_column_int64(st, 3);
    t->created_ms = sqlite3_column_int64(st, 4);
}

enum mq_err mq_catalog_topic_get(struct mq_catalog *cat, const char *name, struct mq_catalog_topic *topic)
{
    if (!name || !topic)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_TOPIC_GET];
    mq_catalog__bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    enum mq_err err = MQ_OK;
    if (rc == SQLITE_ROW)
        mq_catalog_row_topic(st, topic);
    else if (rc == SQLITE_DONE)
        err = MQ_ERR_NOENT;
    else
        err = mq_catalog__fail(cat, rc, "reading a topic");
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

enum mq_err mq_catalog_topic_list(struct mq_catalog *cat, struct mq_catalog_topic **topics, size_t *count)
{
    if (!topics || !count)
        return MQ_ERR_INVAL;
    struct mq_catalog_topic *arr = NULL;
    size_t n = 0, cap = 0;
    enum mq_err err = MQ_OK;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_TOPIC_LIST];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mq_catalog_topic *grown = realloc(arr, ncap * sizeof *arr);
            if (!grown) {
                err = MQ_ERR_NOMEM;
                break;
            }
            arr = grown;
            cap = ncap;
        }
        mq_catalog_row_topic(st, &arr[n++]);
    }
    if (err == MQ_OK && rc != SQLITE_DONE)
        err = mq_catalog__fail(cat, rc, "listing topics");
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    if (err != MQ_OK) {
        free(arr);
        return err;
    }
    *topics = arr;
    *count = n;
    return MQ_OK;
}

enum mq_err mq_catalog_topic_set_retention(struct mq_catalog *cat, const char *name, int64_t retention_ms,
                                           int64_t retention_bytes)
{
    if (!name || retention_ms < 0 || retention_bytes < 0)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_TOPIC_SET_RETENTION];
    mq_catalog__bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, retention_ms);
    sqlite3_bind_int64(st, 3, retention_bytes);
    enum mq_err err = mq_catalog__modify(cat, ST_TOPIC_SET_RETENTION, "changing a topic's retention", true);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

enum mq_err mq_catalog_topic_grow(struct mq_catalog *cat, const char *name, int32_t partitions)
{
    if (!name || partitions < 1 || partitions > MQ_CATALOG_PARTITIONS_MAX)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_TOPIC_GROW];
    mq_catalog__bind_text(st, 1, name);
    sqlite3_bind_int(st, 2, partitions);
    enum mq_err err = mq_catalog__modify(cat, ST_TOPIC_GROW, "adding partitions to a topic", true);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

enum mq_err mq_catalog_topic_delete(struct mq_catalog *cat, const char *name)
{
    if (!name)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    mq_catalog__bind_text(cat->st[ST_TOPIC_DELETE], 1, name);
    /* The group offsets of the topic go with it (ON DELETE CASCADE), in this transaction. */
    enum mq_err err = mq_catalog__modify(cat, ST_TOPIC_DELETE, "deleting a topic", true);
    pthread_mutex_unlock(&cat->lock);
    return err;
}
