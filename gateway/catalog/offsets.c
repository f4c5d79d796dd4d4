/*
 * offsets.c - the committed offsets of consumer groups in the catalog (see catalog.h): commits of many
 * partitions in one transaction, fetches, listings and deletion, and which groups have live members in
 * mqlogd, so that a reset beside it can be refused for them.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "util/parse.h"

/* ---- group offsets ---- */

/* Checks within the open transaction that topic exists and has partition. */
static enum mq_err mq_catalog_check_partition(struct mq_catalog *cat, const char *topic, int32_t partition)
{
    if (!topic || partition < 0)
        return MQ_ERR_INVAL;
    sqlite3_stmt *st = cat->st[ST_TOPIC_GET];
    mq_catalog__bind_text(st, 1, topic);
    int rc = sqlite3_step(st);
    enum mq_err err = MQ_OK;
    if (rc == SQLITE_ROW)
        err = partition < sqlite3_column_int(st, 1) ? MQ_OK : MQ_ERR_NOENT;
    else if (rc == SQLITE_DONE)
        err = MQ_ERR_NOENT;
    else
        err = mq_catalog__fail(cat, rc, "reading a topic");
    mq_catalog__done(st);
    return err;
}

/* Writes one partition's offset within the open transaction (commits and resets alike). */
static enum mq_err mq_catalog_offset_upsert(struct mq_catalog *cat, const char *group,
                                            const struct mq_offset_commit *c, int64_t now)
{
    sqlite3_stmt *st = cat->st[ST_OFFSET_UPSERT];
    mq_catalog__bind_text(st, 1, group);
    mq_catalog__bind_text(st, 2, c->topic);
    sqlite3_bind_int(st, 3, c->partition);
    sqlite3_bind_int64(st, 4, c->offset);
    mq_catalog__bind_text(st, 5, c->metadata);
    sqlite3_bind_int64(st, 6, now);
    return mq_catalog__exec(cat, ST_OFFSET_UPSERT, "writing an offset");
}

enum mq_err mq_catalog_offset_commit_many(struct mq_catalog *cat, const char *group,
                                          struct mq_offset_commit *commits, size_t n)
{
    if (!group || (!commits && n > 0))
        return MQ_ERR_INVAL;
    int64_t now = mq_now_ms();
    pthread_mutex_lock(&cat->lock);
    enum mq_err err = mq_catalog__begin(cat, false);
    if (err == MQ_OK) {
        for (size_t i = 0; err == MQ_OK && i < n; i++) {
            struct mq_offset_commit *c = &commits[i];
            c->err = mq_catalog_check_partition(cat, c->topic, c->partition);
            if (c->err == MQ_ERR_NOENT || c->err == MQ_ERR_INVAL)
                continue; /* this partition's answer; the others go on */
            if (c->err == MQ_OK)
                c->err = mq_catalog_offset_upsert(cat, group, c, now);
            err = c->err;
        }
        err = mq_catalog__end(cat, err, false);
    }
    pthread_mutex_unlock(&cat->lock);
    if (err != MQ_OK)
        for (size_t i = 0; i < n; i++)
            commits[i].err = err;
    return err;
}

enum mq_err mq_catalog_offset_commit(struct mq_catalog *cat, const char *group, const char *topic,
                                     int32_t partition, int64_t offset, const char *metadata)
{
    struct mq_offset_commit c = {
        .topic = topic, .partition = partition, .offset = offset, .metadata = metadata};
    enum mq_err err = mq_catalog_offset_commit_many(cat, group, &c, 1);
    return err != MQ_OK ? err : c.err;
}

enum mq_err mq_catalog_offset_fetch(struct mq_catalog *cat, const char *group, const char *topic,
                                    int32_t partition, int64_t *offset, char **metadata,
                                    int64_t *commit_time_ms)
{
    if (!group || !topic || !offset)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_OFFSET_GET];
    mq_catalog__bind_text(st, 1, group);
    mq_catalog__bind_text(st, 2, topic);
    sqlite3_bind_int(st, 3, partition);
    int rc = sqlite3_step(st);
    enum mq_err err = MQ_OK;
    if (rc == SQLITE_ROW) {
        bool oom = false;
        char *md = metadata ? mq_catalog__strdup_col(st, 1, &oom) : NULL;
        if (oom) {
            err = MQ_ERR_NOMEM;
        } else {
            *offset = sqlite3_column_int64(st, 0);
            if (metadata)
                *metadata = md;
            if (commit_time_ms)
                *commit_time_ms = sqlite3_column_int64(st, 2);
        }
    } else if (rc == SQLITE_DONE) {
        err = MQ_ERR_NOENT;
    } else {
        err = mq_catalog__fail(cat, rc, "fetching an offset");
    }
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

void mq_catalog_offsets_free(struct mq_group_offset *offsets, size_t count)
{
    if (!offsets)
        return;
    for (size_t i = 0; i < count; i++) {
        free(offsets[i].topic);
        free(offsets[i].metadata);
    }
    free(offsets);
}

enum mq_err mq_catalog_offset_list(struct mq_catalog *cat, const char *group,
                                   struct mq_group_offset **offsets, size_t *count)
{
    if (!group || !offsets || !count)
        return MQ_ERR_INVAL;
    struct mq_group_offset *arr = NULL;
    size_t n = 0, cap = 0;
    enum mq_err err = MQ_OK;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_OFFSET_LIST];
    mq_catalog__bind_text(st, 1, group);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mq_group_offset *grown = realloc(arr, ncap * sizeof *arr);
            if (!grown) {
                err = MQ_ERR_NOMEM;
                break;
            }
            arr = grown;
            cap = ncap;
        }
        bool oom = false;
        struct mq_group_offset *o = &arr[n++];
        o->topic = mq_catalog__strdup_col(st, 0, &oom);
        o->partition = sqlite3_column_int(st, 1);
        o->offset = sqlite3_column_int64(st, 2);
        o->metadata = mq_catalog__strdup_col(st, 3, &oom);
        o->commit_time_ms = sqlite3_column_int64(st, 4);
        if (oom || !o->topic) {
            err = MQ_ERR_NOMEM;
            break;
        }
    }
    if (err == MQ_OK && rc != SQLITE_DONE)
        err = mq_catalog__fail(cat, rc, "listing offsets");
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    if (err != MQ_OK) {
        mq_catalog_offsets_free(arr, n);
        return err;
    }
    *offsets = arr;
    *count = n;
    return MQ_OK;
}

void mq_catalog_strings_free(char **strings, size_t count)
{
    if (!strings)
        return;
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

enum mq_err mq_catalog_group_list(struct mq_catalog *cat, char ***groups, size_t *count)
{
    if (!groups || !count)
        return MQ_ERR_INVAL;
    char **arr = NULL;
    size_t n = 0, cap = 0;
    enum mq_err err = MQ_OK;
    pthread_mutex_lock(&cat->lock);
    sqlite3_stmt *st = cat->st[ST_GROUP_LIST];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(arr, ncap * sizeof *arr);
            if (!grown) {
                err = MQ_ERR_NOMEM;
                break;
            }
            arr = grown;
            cap = ncap;
        }
        bool oom = false;
        arr[n] = mq_catalog__strdup_col(st, 0, &oom);
        if (!arr[n]) {
            err = MQ_ERR_NOMEM;
            break;
        }
        n++;
    }
    if (err == MQ_OK && rc != SQLITE_DONE)
        err = mq_catalog__fail(cat, rc, "listing groups");
    mq_catalog__done(st);
    pthread_mutex_unlock(&cat->lock);
    if (err != MQ_OK) {
        mq_catalog_strings_free(arr, n);
        return err;
    }
    *groups = arr;
    *count = n;
    return MQ_OK;
}

enum mq_err mq_catalog_group_delete(struct mq_catalog *cat, const char *group)
{
    if (!group)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    mq_catalog__bind_text(cat->st[ST_GROUP_DELETE], 1, group);
    enum mq_err err = mq_catalog__modify(cat, ST_GROUP_DELETE, "deleting a group's offsets", false);
    pthread_mutex_unlock(&cat->lock);
    return err;
}

/* ---- live groups ---- */

enum mq_err mq_catalog_group_set_live(struct mq_catalog *cat, const char *group, long owner_pid, bool live)
{
    if (!group)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&cat->lock);
    enum mq_err err;
    if (live) {
        sqlite3_stmt *st = cat->st[ST_LIVE_UPSERT];
        mq_catalog__bind_text(st, 1, group);
        sqlite3_bind_int64(st, 2, owner_pid);
        sqlite3_bind_int64(st, 3, mq_now_ms());
        err = mq_catalog__modify(cat, ST_LIVE_UPSERT, "recording a live group", false);
    } else {
        mq_catalog__bind_text(cat->st[ST_LIVE_DELETE], 1, group);
        err = mq_catalog__modify(cat, ST_LIVE_DELETE, "forgetting a live group", false);
        if (err == MQ_ERR_NOENT)
            err = MQ_OK;
    }
    pthread_mutex_unlock(&cat->lock);
    return err;
}

enum mq_err mq_catalog_groups_clear_live(struct mq_catalog *cat)
{
    pthread_mutex_lock(&cat->lock);
    enum mq_err err = mq_catalog__modify(cat, ST_LIVE_CLEAR, "forgetting live groups", false);
    pthread_mutex_unlock(&cat->lock);
    return err == MQ_ERR_NOENT ? MQ_OK : err;
}

/* Within the open transaction: MQ_ERR_BUSY when group is live in the daemon daemon_pid (-1: a daemon runs
 * whose pid is unknown, so any record counts). */
static enum mq_err mq_catalog_check_not_live(struct mq_catalog *cat, const char *group, long daemon_pid)
{
    if (daemon_pid == 0)
        return MQ_OK;
    sqlite3_stmt *st = cat->st[ST_LIVE_GET];
    mq_catalog__bind_text(st, 1, group);
    int rc = sqlite3_step(st);
    enum mq_err err = MQ_OK;
    if (rc == SQLITE_ROW)
        err = daemon_pid < 0 || sqlite3_column_int64(st, 0) == daemon_pid
                  ? MQ_ERR_BUSY
                  : MQ_OK; /* else a dead daemon's row */
    else if (rc != SQLITE_DONE)
        err = mq_catalog__fail(cat, rc, "reading live groups");
    mq_catalog__done(st);
    return err;
}

enum mq_err mq_catalog_offset_reset(struct mq_catalog *cat, const char *group,
                                    struct mq_offset_commit *commits, size_t n, long daemon_pid)
{
    if (!group || (!commits && n > 0))
        return MQ_ERR_INVAL;
    int64_t now = mq_now_ms();
    pthread_mutex_lock(&cat->lock);
    enum mq_err err = mq_catalog__begin(cat, false);
    if (err == MQ_OK) {
        /* Checked in the write transaction: a member that joins after the commit fetches the new offsets. */
        err = mq_catalog_check_not_live(cat, group, daemon_pid);
        for (size_t i = 0; err == MQ_OK && i < n; i++) {
            struct mq_offset_commit *c = &commits[i];
            c->err = mq_catalog_check_partition(cat, c->topic, c->partition);
            if (c->err == MQ_OK)
                c->err = mq_catalog_offset_upsert(cat, group, c, now);
            err = c->err;
        }
        err = mq_catalog__end(cat, err, false);
    }
    pthread_mutex_unlock(&cat->lock);
    return err;
}
