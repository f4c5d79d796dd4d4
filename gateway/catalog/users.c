/*
 * users.c - the SCRAM credentials of the Kafka endpoint's users in the catalog (see catalog.h): salt,
 * iteration count, StoredKey and ServerKey per user and mechanism, never a password.
 *
 * Changes are committed with synchronous=FULL, as topic changes are: a removed user or a replaced password
 * must not come back after a power loss.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "util/parse.h"

/* The hash size of a mechanism, 0 for one the catalog does not store. */
static size_t mq_catalog_user_key_len(const char *mechanism)
{
    if (strcmp(mechanism, "SCRAM-SHA-256") == 0)
        return 32;
    if (strcmp(mechanism, "SCRAM-SHA-512") == 0)
        return 64;
    return 0;
}

static bool mq_catalog_user_name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len > 0 && len <= MQ_CATALOG_USER_NAME_MAX;
}

static bool mq_catalog_user_ok(const char *name, const struct mq_catalog_user *u)
{
    return strcmp(u->name, name) == 0 && memchr(u->mechanism, 0, sizeof u->mechanism) &&
           u->key_len == mq_catalog_user_key_len(u->mechanism) && u->key_len > 0 && u->salt_len > 0 &&
           u->salt_len <= MQ_CATALOG_SALT_MAX && u->iterations >= MQ_SCRAM_ITERATIONS_MIN &&
           u->iterations <= MQ_SCRAM_ITERATIONS_MAX;
}

enum mq_err mq_catalog_user_set(struct mq_catalog *cat, const char *name, const struct mq_catalog_user *creds,
                                size_t n, bool *created)
{
    if (!mq_catalog_user_name_ok(name) || !creds || n == 0)
        return MQ_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (!mq_catalog_user_ok(name, &creds[i]))
            return MQ_ERR_INVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(creds[i].mechanism, creds[j].mechanism) == 0)
                return MQ_ERR_INVAL;
    }
    int64_t now = mq_now_ms();
    pthread_mutex_lock(&cat->lock);
    enum mq_err err = mq_catalog__begin(cat, true);
    if (err == MQ_OK) {
        mq_catalog__bind_text(cat->st[ST_USER_DELETE], 1, name);
        err = mq_catalog__exec(cat, ST_USER_DELETE, "replacing a user's credentials");
        if (err == MQ_OK && created)
            *created = sqlite3_changes(cat->db) == 0;
        for (size_t i = 0; err == MQ_OK && i < n; i++) {
            const struct mq_catalog_user *u = &creds[i];
            sqlite3_stmt *st = cat->st[ST_USER_INSERT];
            mq_catalog__bind_text(st, 1, name);
            mq_catalog__bind_text(st, 2, u->mechanism);
            sqlite3_bind_blob(st, 3, u->salt, (int)u->salt_len, SQLITE_STATIC);
            sqlite3_bind_int(st, 4, u->iterations);
            sqlite3_bind_blob(st, 5, u->stored_key, (int)u->key_len, SQLITE_STATIC);
            sqlite3_bind_blob(st, 6, u->server_key, (int)u->key_len, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, now);
            err = mq_catalog__exec(cat, ST_USER_INSERT, "storing a user's credential");
        }
        err = mq_catalog__end(cat, err, true);
    }
    pthread_mutex_unlock(&cat->lock);
    return err;
}

/* Copies a blob column of at most max bytes into dst; false when it is longer (or missing). */
static bool mq_catalog_user_blob(sqlite3_stmt *st, int col, uint8_t *dst, size_t max, size_t *len)
{
    const void *blob = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col); /* after column_blob, as SQLite's documentation asks */
    if (!blob || n <= 0 || (size_t)n > max)
        return false;
    memcpy(dst, blob, (size_t)n);
    *len = (size_t)n;
    return true;
}

/* Reads the current row into *u; MQ_ERR_CORRUPT when its sizes do not fit its mechanism. */
static enum mq_err mq_catalog_row_user(struct mq_catalog *cat, sqlite3_stmt *st, struct mq_catalog_user *u)
{
    memset(u, 0, sizeof *u);
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *mech = (const char *)sqlite3_column_text(st, 1);
    if (name)
        snprintf(u->name, sizeof u->name, "%s", name);
    if (mech)
        snprintf(u->mechanism, sizeof u->mechanism, "%s", mech);
    u->iterations = sqlite3_column_int(st, 3);
    u->created_ms = sqlite3_column_int64(st, 6);
    size_t server_len = 0;
    if (!name || !mech || !mq_catalog_user_blob(st, 2, u->salt, sizeof u->salt, &u->salt_len) ||
        !mq_catalog_user_blob(st, 4, u->stored_key, sizeof u->stored_key, &u->key_len) ||
        !mq_catalog_user_blob(st, 5, u->server_key, sizeof u->server_key, &server_len) ||
        server_len != u->key_len || u->key_len != mq_catalog_user_key_len(u->mechanism)) {
        snprintf(cat->errmsg, sizeof cat->errmsg, "user %s: a malformed %s credential", u->name,
                 u->mechanism);
        return MQ_ERR_CORRUPT;
    }
    return MQ_OK;
}

enum mq_err mq_catalog_user_get(struct mq_catalog *cat, const char *name, const char *mechanism,
                                struct mq_catalog_user *user)
{
    if (!mq_catalog_user_name_ok(name) || !mechanism || !user)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_USER_GET];
    mq_catalog__bind_text(st, 1, name);
    mq_catalog__bind_text(st, 2, mechanism);
    int rc = sqlite3_step(st);
    enum mq_err err;
    if (rc == SQLITE_ROW)
        err = mq_catalog_row_user(cat, st, user);
    else if (rc == SQLITE_DONE)
        err = MQ_ERR_NOENT;
    else
        err = mq_catalog__fail(cat, rc, "reading a user");
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

enum mq_err mq_catalog_user_list(struct mq_catalog *cat, struct mq_catalog_user **users, size_t *count)
{
    if (!users || !count)
        return MQ_ERR_INVAL;
    struct mq_catalog_user *arr = NULL;
    size_t n = 0, cap = 0;
    enum mq_err err = MQ_OK;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_USER_LIST];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mq_catalog_user *grown = realloc(arr, ncap * sizeof *arr);
            if (!grown) {
                err = MQ_ERR_NOMEM;
                break;
            }
            arr = grown;
            cap = ncap;
        }
        err = mq_catalog_row_user(cat, st, &arr[n++]);
        if (err != MQ_OK)
            break;
    }
    if (err == MQ_OK && rc != SQLITE_DONE)
        err = mq_catalog__fail(cat, rc, "listing users");
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    if (err != MQ_OK) {
        free(arr);
        return err;
    }
    *users = arr;
    *count = n;
    return MQ_OK;
}

enum mq_err mq_catalog_user_delete(struct mq_catalog *cat, const char *name)
{
    if (!mq_catalog_user_name_ok(name))
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    mq_catalog__bind_text(cat->st[ST_USER_DELETE], 1, name);
    enum mq_err err = mq_catalog__modify(cat, ST_USER_DELETE, "deleting a user", true);
    pthread_mutex_unlock(&cat->lock);
    return err;
}
