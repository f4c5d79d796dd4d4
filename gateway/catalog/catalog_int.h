/*
 * catalog_int.h - the catalog's internals, shared by catalog.c (opening, schema, statements, transactions,
 * topics) and the files that keep one kind of row each (offsets.c, checkpoints.c, users.c).
 *
 * Every statement is prepared once at open from catalog.c's table; a file that adds rows adds its
 * statements to the enum below and their SQL to that table. Every mq_catalog__ function is called with
 * cat->lock held.
 */
#ifndef MQ_CATALOG_INT_H
#define MQ_CATALOG_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "catalog/catalog.h"

/* The prepared statements, by purpose. */
enum mq_catalog_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_TOPIC_INSERT,
    ST_TOPIC_GET,
    ST_TOPIC_LIST,
    ST_TOPIC_SET_RETENTION,
    ST_TOPIC_GROW,
    ST_TOPIC_DELETE,
    ST_OFFSET_UPSERT,
    ST_OFFSET_GET,
    ST_OFFSET_LIST,
    ST_GROUP_LIST,
    ST_GROUP_DELETE,
    ST_CKPT_PUT,
    ST_CKPT_GET,
    ST_CKPT_DELETE,
    ST_CKPT_LIST,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_LIST,
    ST_USER_DELETE,
    ST_LIVE_UPSERT,
    ST_LIVE_DELETE,
    ST_LIVE_CLEAR,
    ST_LIVE_GET,
    ST__COUNT
};

struct mq_catalog {
    pthread_mutex_t lock; /* serialises every call: the connection has no mutex of its own */
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    bool readonly;
    int version;      /* user_version after migration */
    char errmsg[512]; /* the message of the last failure */
};
/* Records the failure of `what` with SQLite code rc in cat->errmsg and returns its enum mq_err. */
enum mq_err mq_catalog__fail(struct mq_catalog *cat, int rc, const char *what);
/* Resets a statement after use: releases its read snapshot and its bindings. */
void mq_catalog__done(sqlite3_stmt *st);
/* Steps a statement that returns no rows (or whose rows are ignored) once and resets it. */
enum mq_err mq_catalog__exec(struct mq_catalog *cat, enum mq_catalog_stmt id, const char *what);
/* Binds a text or NULL (SQLITE_STATIC: the caller's string outlives the step). */
int mq_catalog__bind_text(sqlite3_stmt *st, int idx, const char *s);
/* Begins a write transaction (BEGIN IMMEDIATE; full_sync: with synchronous=FULL); MQ_ERR_READONLY on a
 * read-only handle. */
enum mq_err mq_catalog__begin(struct mq_catalog *cat, bool full_sync);
/* Ends it: COMMIT when err is MQ_OK, else ROLLBACK; returns err or the COMMIT's error. */
enum mq_err mq_catalog__end(struct mq_catalog *cat, enum mq_err err, bool full_sync);
/* Runs a one-statement modification (bound by the caller) in a transaction; MQ_ERR_NOENT when it changed
 * no row. */
enum mq_err mq_catalog__modify(struct mq_catalog *cat, enum mq_catalog_stmt id, const char *what,
                               bool full_sync);
/* A malloc'd copy of a text column, NULL for SQL NULL; sets *oom when the copy failed. */
char *mq_catalog__strdup_col(sqlite3_stmt *st, int col, bool *oom);

#endif
