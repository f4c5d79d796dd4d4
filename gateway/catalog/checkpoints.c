/*
 * checkpoints.c - connectors' checkpoints in the catalog (see catalog.h): small binary values keyed by
 * (connector, key).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "util/parse.h"

/* ---- connector checkpoints ---- */

enum mq_err mq_catalog_checkpoint_put(struct mq_catalog *cat, const char *connector, const char *key,
                                      const void *value, size_t len)
{
    if (!connector || !key || (!value && len > 0) || len > INT32_MAX)
        return MQ_ERR_INVAL;
    static const char empty[1];
    pthread_mutex_lock(&cat->lock);
    enum mq_err err = mq_catalog__begin(cat, false);
    if (err == MQ_OK) {
        sqlite3_stmt *st = cat->st[ST_CKPT_PUT];
        mq_catalog__bind_text(st, 1, connector);
        mq_catalog__bind_text(st, 2, key);
        /* A NULL pointer would bind SQL NULL: an empty value is a zero-length blob. */
        sqlite3_bind_blob(st, 3, len ? value : empty, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, mq_now_ms());
        err = mq_catalog__exec(cat, ST_CKPT_PUT, "storing a checkpoint");
        err = mq_catalog__end(cat, err, false);
    }
    pthread_mutex_unlock(&cat->lock);
    return err;
}

enum mq_err mq_catalog_checkpoint_get(struct mq_catalog *cat, const char *connector, const char *key,
                                      void **value, size_t *len)
{
    if (!connector || !key || !value || !len)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_CKPT_GET];
    mq_catalog__bind_text(st, 1, connector);
    mq_catalog__bind_text(st, 2, key);
    int rc = sqlite3_step(st);
    enum mq_err err = MQ_OK;
    if (rc == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0); /* after column_blob, as SQLite's documentation asks */
        if (!blob && n == 0 && sqlite3_errcode(cat->db) == SQLITE_NOMEM) {
            err = MQ_ERR_NOMEM;
        } else {
            char *copy = malloc((size_t)n + 1);
            if (!copy) {
                err = MQ_ERR_NOMEM;
            } else {
                if (n > 0)
                    memcpy(copy, blob, (size_t)n);
                copy[n] = 0;
                *value = copy;
                *len = (size_t)n;
            }
        }
    } else if (rc == SQLITE_DONE) {
        err = MQ_ERR_NOENT;
    } else {
        err = mq_catalog__fail(cat, rc, "reading a checkpoint");
    }
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

enum mq_err mq_catalog_checkpoint_delete(struct mq_catalog *cat, const char *connector, const char *key)
{
    if (!connector || !key)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_CKPT_DELETE];
    mq_catalog__bind_text(st, 1, connector);
    mq_catalog__bind_text(st, 2, key);
    enum mq_err err = mq_catalog__modify(cat, ST_CKPT_DELETE, "deleting a checkpoint", false);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

void mq_catalog_checkpoints_free(struct mq_checkpoint *checkpoints, size_t count)
{
    if (!checkpoints)
        return;
    for (size_t i = 0; i < count; i++) {
        free(checkpoints[i].connector);
        free(checkpoints[i].key);
        free(checkpoints[i].value);
    }
    free(checkpoints);
}

enum mq_err mq_catalog_checkpoint_list(struct mq_catalog *cat, const char *prefix,
                                       struct mq_checkpoint **checkpoints, size_t *count)
{
    if (!prefix || !checkpoints || !count)
        return MQ_ERR_INVAL;
    struct mq_checkpoint *arr = NULL;
    size_t n = 0, cap = 0;
    enum mq_err err = MQ_OK;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_CKPT_LIST];
    mq_catalog__bind_text(st, 1, prefix);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mq_checkpoint *grown = realloc(arr, ncap * sizeof *arr);
            if (!grown) {
                err = MQ_ERR_NOMEM;
                break;
            }
            arr = grown;
            cap = ncap;
        }
        struct mq_checkpoint *c = &arr[n++];
        memset(c, 0, sizeof *c);
        bool oom = false;
        c->connector = mq_catalog__strdup_col(st, 0, &oom);
        c->key = mq_catalog__strdup_col(st, 1, &oom);
        const void *blob = sqlite3_column_blob(st, 2);
        int len = sqlite3_column_bytes(st, 2); /* after column_blob, as SQLite's documentation asks */
        c->value = malloc((size_t)len + 1);
        c->updated_ms = sqlite3_column_int64(st, 3);
        if (oom || !c->connector || !c->key || !c->value || (!blob && len > 0)) {
            err = MQ_ERR_NOMEM;
            break;
        }
        if (len > 0)
            memcpy(c->value, blob, (size_t)len);
        c->value[len] = 0;
        c->len = (size_t)len;
    }
    if (err == MQ_OK && rc != SQLITE_DONE)
        err = mq_catalog__fail(cat, rc, "listing checkpoints");
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    if (err != MQ_OK) {
        mq_catalog_checkpoints_free(arr, n);
        return err;
    }
    *checkpoints = arr;
    *count = n;
    return MQ_OK;
}
