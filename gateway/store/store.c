/*
 * store.c - the data directory facade: opening log and catalog together, topic creation and deletion in a
 * crash-safe order, partition lookup through the catalog, the catalog/directory consistency check, and the
 * rebuild of topic rows a lost catalog no longer holds.
 */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/diag.h"
#include "util/topic.h"

struct mq_store {
    char *dir;
    int flags;
    struct mq_log *log;
    struct mq_catalog *cat;
    /* Topic creation and deletion touch catalog and directories in two steps; two threads interleaving
     * them (the Kafka endpoint auto-creating a topic while the daemon creates it from the configuration)
     * could leave directories no row describes. */
    pthread_mutex_t ddl_lock;
    bool catalog_new; /* write mode: catalog.db was missing or empty at open */
};

/* mkdir -p: creates path and its missing parents. */
static int mq_store_mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0755);
    if (rc != 0 && errno == EEXIST) {
        struct stat st;
        rc = (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
        if (rc != 0)
            errno = ENOTDIR;
    }
    free(p);
    return rc;
}

static enum mq_err mq_store_finish_deletes(struct mq_store *store);

enum mq_err mq_store_open(const char *dir, int flags, const struct mq_log_conf *conf,
                          struct mq_store **storep, char *errstr, size_t errstr_size)
{
    if (!dir || !*dir || !storep || !(flags & (MQ_STORE_READ | MQ_STORE_WRITE)))
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "mq_store_open: no directory or no mode");
    bool write = (flags & MQ_STORE_WRITE) != 0;

    size_t plen = strlen(dir) + sizeof("/" MQ_CATALOG_FILE);
    char *catpath = malloc(plen);
    struct mq_store *store = calloc(1, sizeof *store);
    if (!catpath || !store || !(store->dir = strdup(dir))) {
        free(catpath);
        if (store)
            free(store->dir);
        free(store);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "%s: out of memory", dir);
    }
    snprintf(catpath, plen, "%s/" MQ_CATALOG_FILE, dir);
    store->flags = write ? (MQ_STORE_WRITE | MQ_STORE_READ) : MQ_STORE_READ;
    if (pthread_mutex_init(&store->ddl_lock, NULL) != 0) {
        free(catpath);
        free(store->dir);
        free(store);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "%s: cannot create a mutex", dir);
    }

    enum mq_err err;
    struct stat st;
    if (write) {
        if (mq_store_mkdirs(dir) != 0) {
            int e = errno;
            err = mq_errf(mq_err_from_errno(e), errstr, errstr_size, "cannot create data directory %s: %s",
                          dir, MQ_STRERROR(e));
            goto fail;
        }
    } else {
        /* A reader creates nothing: a mistyped directory must be an error, not a new empty store. */
        if (stat(dir, &st) != 0) {
            int e = errno;
            err = mq_errf(mq_err_from_errno(e), errstr, errstr_size, "data directory %s: %s", dir,
                          MQ_STRERROR(e));
            goto fail;
        }
        if (!S_ISDIR(st.st_mode)) {
            err = mq_errf(MQ_ERR_NOENT, errstr, errstr_size, "data directory %s is not a directory", dir);
            goto fail;
        }
        if (stat(catpath, &st) != 0) {
            int e = errno;
            err = mq_errf(mq_err_from_errno(e), errstr, errstr_size,
                          "%s: %s (not an mqlog data directory, or mqlogd has not run there yet)", catpath,
                          MQ_STRERROR(e));
            goto fail;
        }
    }

    /* A catalog that is about to be created (or is empty) beside existing partitions has been lost: the
     * caller is told (mq_store_catalog_was_new()) and mq_store_rebuild_topics() restores its topics. */
    if (write)
        store->catalog_new = stat(catpath, &st) != 0 || st.st_size == 0;
    /* The log first: in write mode it takes the writer lock, so a second writer stops before the catalog. */
    err = mq_log_open(dir, write ? MQ_LOG_WRITE : MQ_LOG_READ, conf, &store->log, errstr, errstr_size);
    if (err != MQ_OK)
        goto fail;
    err = mq_catalog_open(catpath, write ? MQ_CATALOG_CREATE : 0, &store->cat, errstr, errstr_size);
    if (err != MQ_OK)
        goto fail;
    if (write && (err = mq_store_finish_deletes(store)) != MQ_OK) {
        mq_errf(err, errstr, errstr_size, "%s: finishing an interrupted topic delete: %s", dir,
                mq_strerror(err));
        goto fail;
    }
    free(catpath);
    *storep = store;
    return MQ_OK;

fail:
    free(catpath);
    mq_store_close(store);
    return err;
}

enum mq_err mq_store_close(struct mq_store *store)
{
    if (!store)
        return MQ_OK;
    enum mq_err err = mq_log_close(store->log);
    mq_catalog_close(store->cat);
    pthread_mutex_destroy(&store->ddl_lock);
    free(store->dir);
    free(store);
    return err;
}

struct mq_log *mq_store_log(struct mq_store *store)
{
    return store->log;
}

struct mq_catalog *mq_store_catalog(struct mq_store *store)
{
    return store->cat;
}

const char *mq_store_dir(const struct mq_store *store)
{
    return store->dir;
}

/* ---- topics ---- */

enum mq_err mq_store_topic_create(struct mq_store *store, const char *name, int32_t partitions,
                                  const struct mq_retention *ret, char *errstr, size_t errstr_size)
{
    if (!name || !mq_topic_name_valid(name))
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                       "invalid topic name \"%s\" (" MQ_TOPIC_NAME_RULE ")", name ? name : "(null)");
    if (partitions < 1 || partitions > MQ_CATALOG_PARTITIONS_MAX)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "topic %s: partitions must be 1..%d, not %d", name,
                       MQ_CATALOG_PARTITIONS_MAX, (int)partitions);
    struct mq_retention r = {.ms = MQ_RETENTION_MS_DEFAULT, .bytes = 0};
    if (ret)
        r = *ret;
    if (r.ms < 0 || r.bytes < 0)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "topic %s: retention must not be negative", name);
    if (!(store->flags & MQ_STORE_WRITE))
        return mq_errf(MQ_ERR_READONLY, errstr, errstr_size,
                       "topic %s: topics are created by the writer of %s (mqlogd), not by a reader", name,
                       store->dir);

    pthread_mutex_lock(&store->ddl_lock);
    struct mq_catalog_topic t;
    enum mq_err err = mq_catalog_topic_get(store->cat, name, &t);
    if (err == MQ_OK) {
        /* The topic exists: make sure its directories do too (they may have been lost or never made). */
        err = mq_log_topic_create(store->log, name, t.partitions);
        if (err != MQ_OK)
            mq_errf(err, errstr, errstr_size, "topic %s: creating missing partition directories: %s", name,
                    mq_strerror(err));
        else
            err = mq_errf(MQ_ERR_EXISTS, errstr, errstr_size, "topic %s already exists (%d partitions)", name,
                          (int)t.partitions);
    } else if (err == MQ_ERR_NOENT) {
        /* Directories first, row second: until the row commits the topic does not exist for anyone. */
        err = mq_log_topic_create(store->log, name, partitions);
        if (err != MQ_OK) {
            mq_errf(err, errstr, errstr_size, "topic %s: creating partition directories: %s", name,
                    mq_strerror(err));
        } else {
            err = mq_catalog_topic_create(store->cat, name, partitions, r.ms, r.bytes);
            if (err != MQ_OK)
                mq_errf(err, errstr, errstr_size, "topic %s: catalog: %s (%s)", name, mq_strerror(err),
                        mq_catalog_errmsg(store->cat));
        }
    } else {
        mq_errf(err, errstr, errstr_size, "topic %s: catalog: %s (%s)", name, mq_strerror(err),
                mq_catalog_errmsg(store->cat));
    }
    pthread_mutex_unlock(&store->ddl_lock);
    return err;
}

enum mq_err mq_store_topic_get(struct mq_store *store, const char *name, struct mq_catalog_topic *topic)
{
    return mq_catalog_topic_get(store->cat, name, topic);
}

enum mq_err mq_store_topic_list(struct mq_store *store, struct mq_catalog_topic **topics, size_t *count)
{
    return mq_catalog_topic_list(store->cat, topics, count);
}

enum mq_err mq_store_topic_set_retention(struct mq_store *store, const char *name,
                                         const struct mq_retention *ret)
{
    if (!name || !ret)
        return MQ_ERR_INVAL;
    pthread_mutex_lock(&store->ddl_lock);
    enum mq_err err = mq_catalog_topic_set_retention(store->cat, name, ret->ms, ret->bytes);
    struct mq_catalog_topic t;
    if (err == MQ_OK && (store->flags & MQ_STORE_WRITE))
        err = mq_catalog_topic_get(store->cat, name, &t);
    if (err == MQ_OK && (store->flags & MQ_STORE_WRITE)) {
        for (int32_t p = 0; p < t.partitions; p++) {
            struct mq_part *part = NULL;
            enum mq_err e = mq_log_part(store->log, name, p, &part);
            if (e == MQ_OK)
                mq_part_set_retention(part, ret);
            else if (err == MQ_OK && e != MQ_ERR_NOENT) /* a missing directory is mq_store_check()'s report */
                err = e;
        }
    }
    pthread_mutex_unlock(&store->ddl_lock);
    return err;
}

enum mq_err mq_store_topic_grow(struct mq_store *store, const char *name, int32_t partitions, char *errstr,
                                size_t errstr_size)
{
    if (!name || partitions < 1 || partitions > MQ_CATALOG_PARTITIONS_MAX)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "topic %s: partitions must be 1..%d",
                       name ? name : "", MQ_CATALOG_PARTITIONS_MAX);
    if (!(store->flags & MQ_STORE_WRITE))
        return mq_errf(MQ_ERR_READONLY, errstr, errstr_size, "topic %s: only the writer adds partitions",
                       name);
    pthread_mutex_lock(&store->ddl_lock);
    struct mq_catalog_topic t;
    enum mq_err err = mq_catalog_topic_get(store->cat, name, &t);
    if (err != MQ_OK) {
        mq_errf(err, errstr, errstr_size, "topic %s: catalog: %s", name, mq_strerror(err));
    } else if (partitions < t.partitions) {
        err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                      "topic %s has %d partitions: a partition count only grows, as in Kafka", name,
                      (int)t.partitions);
    } else if (partitions > t.partitions) {
        /* Directories first, row second: a reader never sees a partition without its directory. */
        err = mq_log_topic_create(store->log, name, partitions);
        if (err != MQ_OK)
            mq_errf(err, errstr, errstr_size, "topic %s: creating partition directories: %s", name,
                    mq_strerror(err));
        else if ((err = mq_catalog_topic_grow(store->cat, name, partitions)) != MQ_OK)
            mq_errf(err, errstr, errstr_size, "topic %s: catalog: %s (%s)", name, mq_strerror(err),
                    mq_catalog_errmsg(store->cat));
    }
    pthread_mutex_unlock(&store->ddl_lock);
    return err;
}

enum mq_err mq_store_topic_alter(struct mq_store *store, const char *name, int32_t partitions,
                                 int64_t retention_ms, int64_t retention_bytes, char *msg, size_t msg_size)
{
    struct mq_catalog_topic t;
    enum mq_err err = name ? mq_catalog_topic_get(store->cat, name, &t) : MQ_ERR_INVAL;
    if (err == MQ_ERR_NOENT)
        return mq_errf(err, msg, msg_size, "unknown topic '%s' in %s", name, store->dir);
    if (err != MQ_OK)
        return mq_errf(err, msg, msg_size, "topic %s: catalog: %s (%s)", name ? name : "", mq_strerror(err),
                       mq_catalog_errmsg(store->cat));
    if (!(store->flags & MQ_STORE_WRITE))
        return mq_errf(MQ_ERR_READONLY, msg, msg_size, "topic %s: only the writer changes a topic", name);
    char done[256] = "";
    size_t used = 0;
    if (partitions >= 0 && partitions != t.partitions) {
        err = mq_store_topic_grow(store, name, partitions, msg, msg_size);
        if (err != MQ_OK)
            return err;
        used += (size_t)snprintf(done + used, sizeof done - used, "; partitions %d -> %d", (int)t.partitions,
                                 (int)partitions);
    }
    struct mq_retention r = {.ms = t.retention_ms, .bytes = t.retention_bytes};
    if (retention_ms >= 0)
        r.ms = retention_ms;
    if (retention_bytes >= 0)
        r.bytes = retention_bytes;
    if (r.ms != t.retention_ms || r.bytes != t.retention_bytes) {
        err = mq_store_topic_set_retention(store, name, &r);
        if (err != MQ_OK)
            return mq_errf(err, msg, msg_size, "topic %s: setting its retention: %s%s", name,
                           mq_strerror(err), used ? " (its partitions were raised)" : "");
        if (r.ms != t.retention_ms && used < sizeof done)
            used += (size_t)snprintf(done + used, sizeof done - used, "; retention.ms %lld -> %lld",
                                     (long long)t.retention_ms, (long long)r.ms);
        if (r.bytes != t.retention_bytes && used < sizeof done)
            used += (size_t)snprintf(done + used, sizeof done - used, "; retention.bytes %lld -> %lld",
                                     (long long)t.retention_bytes, (long long)r.bytes);
    }
    if (msg)
        snprintf(msg, msg_size, "topic %s: %s", name, used ? done + 2 : "unchanged");
    return MQ_OK;
}

/* ---- topic deletion ----
 *
 * A delete renames every partition directory "<topic>-<p>" to "<topic>-<p>.deleted" first (no reader or
 * scan takes such a name for a partition), then deletes the catalog row with its group offsets and the
 * forwarders' checkpoints of the topic, and only then removes the renamed directories. A ".deleted"
 * directory is the mark of a delete in progress: the next write-mode open finishes it
 * (mq_store_finish_deletes()), whether the crash came before the row went (the delete is completed) or
 * after (only the directories are left to remove). Without the mark, a crash between removing files and
 * deleting the row would leave a topic whose records are half gone.
 */

#define MQ_STORE_DELETED ".deleted"

/* Splits a directory name "<topic>-<p>.deleted" into topic (MQ_TOPIC_NAME_MAX + 1 bytes); false for any
 * other name. */
static bool mq_store_deleted_name(const char *name, char *topic)
{
    size_t n = strlen(name), sl = sizeof MQ_STORE_DELETED - 1;
    if (n <= sl || strcmp(name + n - sl, MQ_STORE_DELETED) != 0)
        return false;
    n -= sl;
    size_t digits = 0;
    while (digits < n && name[n - 1 - digits] >= '0' && name[n - 1 - digits] <= '9')
        digits++;
    if (digits == 0 || digits + 1 >= n || name[n - 1 - digits] != '-')
        return false;
    size_t tl = n - 1 - digits;
    if (tl > MQ_TOPIC_NAME_MAX)
        return false;
    memcpy(topic, name, tl);
    topic[tl] = '\0';
    return mq_topic_name_valid(topic);
}

/* Removes directory name of dirfd with the files in it (a partition directory has no subdirectories). */
static int mq_store_remove_dir(int dfd, const char *name)
{
    int pfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *pd = pfd >= 0 ? fdopendir(pfd) : NULL;
    if (!pd) {
        if (pfd >= 0)
            close(pfd);
        return errno == ENOENT ? 0 : -1;
    }
    struct dirent *de;
    while ((de = readdir(pd)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            unlinkat(dirfd(pd), de->d_name, 0);
    closedir(pd);
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* Whether topic has ".deleted" directories (topic NULL: any topic); their topic names, when topics is not
 * NULL, as a malloc'd array of *n malloc'd names (duplicates possible). */
static enum mq_err mq_store_deleted_scan(const struct mq_store *store, const char *topic, char ***topics,
                                         size_t *n, bool remove)
{
    DIR *d = opendir(store->dir);
    if (!d)
        return mq_err_from_errno(errno);
    enum mq_err err = MQ_OK;
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char t[MQ_TOPIC_NAME_MAX + 1];
        if (!mq_store_deleted_name(de->d_name, t) || (topic && strcmp(t, topic) != 0))
            continue;
        if (remove) {
            if (mq_store_remove_dir(dirfd(d), de->d_name) != 0 && err == MQ_OK)
                err = mq_err_from_errno(errno);
            continue;
        }
        if (topics) {
            char **grown = realloc(*topics, (count + 1) * sizeof *grown);
            if (!grown || !(grown[count] = strdup(t))) {
                if (grown)
                    *topics = grown;
                err = MQ_ERR_NOMEM;
                break;
            }
            *topics = grown;
        }
        count++;
    }
    closedir(d);
    if (n)
        *n = count;
    return err;
}

/* mq_log_scan_dirs() callback: collects the partitions of one topic. */
struct mq_store_parts_of {
    const char *topic;
    int32_t *v;
    size_t n;
    bool oom;
};

static void mq_store_part_of(void *opaque, const char *topic, int32_t partition)
{
    struct mq_store_parts_of *c = opaque;
    if (c->oom || strcmp(topic, c->topic) != 0)
        return;
    int32_t *grown = realloc(c->v, (c->n + 1) * sizeof *grown);
    if (!grown) {
        c->oom = true;
        return;
    }
    c->v = grown;
    c->v[c->n++] = partition;
}

/* fsync of the data directory, so that renames and removals in it survive a power loss. */
static enum mq_err mq_store_sync_dir(const struct mq_store *store)
{
    int fd = open(store->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return mq_err_from_errno(errno);
    enum mq_err err = fsync(fd) == 0 ? MQ_OK : mq_err_from_errno(errno);
    close(fd);
    return err;
}

/* Renames every partition directory of topic to its ".deleted" name; *n gets how many there were. */
static enum mq_err mq_store_mark_deleted(struct mq_store *store, const char *topic, size_t *n)
{
    struct mq_store_parts_of c = {.topic = topic};
    enum mq_err err = mq_log_scan_dirs(store->dir, mq_store_part_of, &c);
    if (err == MQ_OK && c.oom)
        err = MQ_ERR_NOMEM;
    for (size_t i = 0; err == MQ_OK && i < c.n; i++) {
        char *from = NULL, *to = NULL;
        if (asprintf(&from, "%s/%s-%d", store->dir, topic, (int)c.v[i]) < 0)
            from = NULL;
        if (asprintf(&to, "%s/%s-%d" MQ_STORE_DELETED, store->dir, topic, (int)c.v[i]) < 0)
            to = NULL;
        if (!from || !to) {
            err = MQ_ERR_NOMEM;
        } else if (rename(from, to) != 0) {
            /* a mark left by an earlier delete of the same name goes first: rename() cannot replace it */
            bool retried = (errno == ENOTEMPTY || errno == EEXIST) &&
                           mq_store_remove_dir(AT_FDCWD, to) == 0 && rename(from, to) == 0;
            if (!retried)
                err = mq_err_from_errno(errno);
        }
        free(from);
        free(to);
    }
    if (err == MQ_OK && c.n > 0)
        err = mq_store_sync_dir(store);
    if (n)
        *n = c.n;
    free(c.v);
    return err;
}

/* Deletes the checkpoints every forwarder keeps for the partitions of topic ("TOPIC:P" keys): a topic made
 * again under the name starts with nothing forwarded. */
static enum mq_err mq_store_forget_forwarded(struct mq_store *store, const char *topic)
{
    struct mq_checkpoint *cps = NULL;
    size_t n = 0;
    enum mq_err err = mq_catalog_checkpoint_list(store->cat, "forward.", &cps, &n);
    size_t tl = strlen(topic);
    for (size_t i = 0; err == MQ_OK && i < n; i++) {
        if (strncmp(cps[i].key, topic, tl) != 0 || cps[i].key[tl] != ':')
            continue;
        err = mq_catalog_checkpoint_delete(store->cat, cps[i].connector, cps[i].key);
        if (err == MQ_ERR_NOENT)
            err = MQ_OK;
    }
    mq_catalog_checkpoints_free(cps, n);
    return err;
}

/* The steps after the mark (under ddl_lock): the row, its offsets and checkpoints, then the directories. */
static enum mq_err mq_store_delete_rest(struct mq_store *store, const char *name)
{
    enum mq_err err = mq_catalog_topic_delete(store->cat, name); /* its group offsets go with it */
    if (err == MQ_ERR_NOENT)
        err = MQ_OK;
    if (err == MQ_OK)
        err = mq_store_forget_forwarded(store, name);
    if (err == MQ_OK)
        err = mq_store_deleted_scan(store, name, NULL, NULL, true);
    if (err == MQ_OK)
        err = mq_store_sync_dir(store);
    return err;
}

static int mq_store_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Finishes the deletes a crash interrupted (see above): write-mode open. */
static enum mq_err mq_store_finish_deletes(struct mq_store *store)
{
    char **topics = NULL;
    size_t n = 0;
    enum mq_err err = mq_store_deleted_scan(store, NULL, &topics, &n, false);
    if (n > 1)
        qsort(topics, n, sizeof *topics, mq_store_str_cmp);
    for (size_t i = 0; err == MQ_OK && i < n; i++) {
        if (i > 0 && strcmp(topics[i], topics[i - 1]) == 0)
            continue;
        MQ_NOTICE("%s: finishing the delete of topic %s that was interrupted", store->dir, topics[i]);
        err = mq_store_mark_deleted(store, topics[i], NULL);
        if (err == MQ_OK)
            err = mq_store_delete_rest(store, topics[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(topics[i]);
    free(topics);
    return err;
}

enum mq_err mq_store_topic_delete(struct mq_store *store, const char *name)
{
    if (!name || !mq_topic_name_valid(name))
        return MQ_ERR_INVAL;
    if (!(store->flags & MQ_STORE_WRITE))
        return MQ_ERR_READONLY;
    pthread_mutex_lock(&store->ddl_lock);
    struct mq_catalog_topic t;
    enum mq_err err = mq_catalog_topic_get(store->cat, name, &t);
    bool row = (err == MQ_OK);
    size_t dirs = 0, marked = 0;
    /* partitions this process has open (mqlogd deleting for `mqlog topic delete`) leave the log first */
    if (err == MQ_OK || err == MQ_ERR_NOENT)
        err = mq_log_topic_retire(store->log, name);
    if (err == MQ_OK)
        err = mq_store_deleted_scan(store, name, NULL, &marked, false);
    if (err == MQ_OK)
        err = mq_store_mark_deleted(store, name, &dirs);
    if (err == MQ_OK && !row && dirs == 0 && marked == 0)
        err = MQ_ERR_NOENT;
    if (err == MQ_OK)
        err = mq_store_delete_rest(store, name);
    pthread_mutex_unlock(&store->ddl_lock);
    return err;
}

enum mq_err mq_store_part(struct mq_store *store, const char *topic, int32_t partition,
                          struct mq_part **partp)
{
    if (!topic || !partp)
        return MQ_ERR_INVAL;
    struct mq_catalog_topic t;
    enum mq_err err = mq_catalog_topic_get(store->cat, topic, &t);
    if (err != MQ_OK)
        return err;
    if (partition < 0 || partition >= t.partitions)
        return MQ_ERR_NOENT;
    struct mq_part *part = NULL;
    err = mq_log_part(store->log, topic, partition, &part);
    if (err != MQ_OK)
        return err;
    /* Every time, so that a retention changed by another process reaches the writer's partitions. */
    struct mq_retention r = {.ms = t.retention_ms, .bytes = t.retention_bytes};
    mq_part_set_retention(part, &r);
    *partp = part;
    return MQ_OK;
}

/* ---- consistency check ---- */

/* True when partition directory topic-partition holds a non-empty segment file: records the catalog must
 * not hide. */
static bool mq_store_dir_has_records(const struct mq_store *store, const char *topic, int32_t partition)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s-%d", store->dir, topic, (int)partition) < 0)
        return false;
    DIR *d = opendir(path);
    free(path);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        struct stat st;
        if (n == 24 && strcmp(de->d_name + 20, ".log") == 0 && fstatat(dirfd(d), de->d_name, &st, 0) == 0)
            found = S_ISREG(st.st_mode) && st.st_size > 0;
    }
    closedir(d);
    return found;
}

struct mq_store_dirent {
    char *topic;
    int32_t partition;
};

struct mq_store_dirs {
    struct mq_store_dirent *v;
    size_t n, cap;
    bool oom;
};

/* True when any partition directory of dirs->v[i]'s topic holds records (dirs sorted by topic). */
static bool mq_store_topic_has_records(const struct mq_store *store, const struct mq_store_dirs *dirs,
                                       size_t i)
{
    const char *topic = dirs->v[i].topic;
    while (i > 0 && strcmp(dirs->v[i - 1].topic, topic) == 0)
        i--;
    for (; i < dirs->n && strcmp(dirs->v[i].topic, topic) == 0; i++)
        if (mq_store_dir_has_records(store, topic, dirs->v[i].partition))
            return true;
    return false;
}

static void mq_store_collect_dir(void *opaque, const char *topic, int32_t partition)
{
    struct mq_store_dirs *d = opaque;
    if (d->oom)
        return;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 64;
        struct mq_store_dirent *grown = realloc(d->v, ncap * sizeof *grown);
        if (!grown) {
            d->oom = true;
            return;
        }
        d->v = grown;
        d->cap = ncap;
    }
    char *copy = strdup(topic);
    if (!copy) {
        d->oom = true;
        return;
    }
    d->v[d->n].topic = copy;
    d->v[d->n].partition = partition;
    d->n++;
}

static int mq_store_dirent_cmp(const void *a, const void *b)
{
    const struct mq_store_dirent *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c)
        return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static int mq_store_topic_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mq_catalog_topic *)a)->name, ((const struct mq_catalog_topic *)b)->name);
}

/* Reports one problem with the directory of topic/partition. */
static void mq_store_report(const struct mq_store *store, void (*fn)(void *, const struct mq_verify_issue *),
                            void *opaque, const char *topic, int32_t partition, const char *what)
{
    size_t n = strlen(store->dir) + strlen(topic) + 16;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s/%s-%d", store->dir, topic, (int)partition);
    struct mq_verify_issue issue = {.path = path ? path : topic, .position = -1, .what = what};
    if (fn)
        fn(opaque, &issue);
    free(path);
}

enum mq_err mq_store_check(struct mq_store *store,
                           void (*fn)(void *opaque, const struct mq_verify_issue *issue), void *opaque,
                           int64_t *problems)
{
    struct mq_store_dirs dirs = {0};
    struct mq_catalog_topic *topics = NULL;
    size_t ntopics = 0;
    int64_t count = 0;
    char what[512];

    enum mq_err err = mq_log_scan_dirs(store->dir, mq_store_collect_dir, &dirs);
    if (err == MQ_OK && dirs.oom)
        err = MQ_ERR_NOMEM;
    if (err == MQ_OK)
        err = mq_catalog_topic_list(store->cat, &topics, &ntopics);
    if (err != MQ_OK)
        goto out;
    if (dirs.n > 1)
        qsort(dirs.v, dirs.n, sizeof *dirs.v, mq_store_dirent_cmp);
    if (ntopics > 1)
        qsort(topics, ntopics, sizeof *topics, mq_store_topic_cmp);

    /* Directories the catalog does not describe. */
    for (size_t i = 0; i < dirs.n; i++) {
        struct mq_catalog_topic key = {0};
        snprintf(key.name, sizeof key.name, "%s", dirs.v[i].topic);
        const struct mq_catalog_topic *t =
            ntopics ? bsearch(&key, topics, ntopics, sizeof *topics, mq_store_topic_cmp) : NULL;
        if ((!t || strcmp(t->name, dirs.v[i].topic) != 0) && mq_store_topic_has_records(store, &dirs, i)) {
            snprintf(what, sizeof what,
                     "partition directory holds records but topic %s is not in the catalog (catalog.db lost, "
                     "emptied or replaced?): they are invisible until 'mqlog verify --repair' or mqlogd's "
                     "start rebuilds the row",
                     dirs.v[i].topic);
        } else if (!t || strcmp(t->name, dirs.v[i].topic) != 0) {
            snprintf(
                what, sizeof what,
                "partition directory without a catalog row: topic %s is not in the catalog (an interrupted "
                "topic create or delete: create or delete the topic again)",
                dirs.v[i].topic);
        } else if (dirs.v[i].partition >= t->partitions) {
            snprintf(what, sizeof what, "partition directory beyond topic %s's %d partitions in the catalog",
                     t->name, (int)t->partitions);
        } else {
            continue;
        }
        mq_store_report(store, fn, opaque, dirs.v[i].topic, dirs.v[i].partition, what);
        count++;
    }

    /* Catalog partitions without a directory. */
    for (size_t i = 0; i < ntopics; i++) {
        for (int32_t p = 0; p < topics[i].partitions; p++) {
            struct mq_store_dirent key = {topics[i].name, p};
            if (dirs.n && bsearch(&key, dirs.v, dirs.n, sizeof *dirs.v, mq_store_dirent_cmp))
                continue;
            snprintf(
                what, sizeof what,
                "partition directory missing: topic %s has %d partitions in the catalog (create the topic "
                "again to restore empty directories)",
                topics[i].name, (int)topics[i].partitions);
            mq_store_report(store, fn, opaque, topics[i].name, p, what);
            count++;
        }
    }

out:
    for (size_t i = 0; i < dirs.n; i++)
        free(dirs.v[i].topic);
    free(dirs.v);
    free(topics);
    if (problems)
        *problems = count;
    return err;
}

bool mq_store_catalog_was_new(const struct mq_store *store)
{
    return store->catalog_new;
}

enum mq_err mq_store_rebuild_topics(struct mq_store *store,
                                    void (*fn)(void *opaque, const struct mq_verify_issue *issue),
                                    void *opaque, int64_t *rebuilt, char *errstr, size_t errstr_size)
{
    if (rebuilt)
        *rebuilt = 0;
    if (!(store->flags & MQ_STORE_WRITE))
        return mq_errf(MQ_ERR_READONLY, errstr, errstr_size, "%s: topic rows are rebuilt by the writer",
                       store->dir);
    struct mq_store_dirs dirs = {0};
    enum mq_err err = mq_log_scan_dirs(store->dir, mq_store_collect_dir, &dirs);
    if (err == MQ_OK && dirs.oom)
        err = MQ_ERR_NOMEM;
    if (err != MQ_OK) {
        mq_errf(err, errstr, errstr_size, "%s: listing partition directories: %s", store->dir,
                mq_strerror(err));
        goto out;
    }
    if (dirs.n > 1)
        qsort(dirs.v, dirs.n, sizeof *dirs.v, mq_store_dirent_cmp);
    pthread_mutex_lock(&store->ddl_lock);
    /* dirs is sorted by topic, then partition: each topic is one run, its last entry the highest partition */
    for (size_t i = 0; i < dirs.n && err == MQ_OK;) {
        size_t j = i;
        bool records = false;
        for (; j < dirs.n && strcmp(dirs.v[j].topic, dirs.v[i].topic) == 0; j++)
            records = records || mq_store_dir_has_records(store, dirs.v[j].topic, dirs.v[j].partition);
        const char *name = dirs.v[i].topic;
        int64_t partitions = (int64_t)dirs.v[j - 1].partition + 1;
        i = j;
        struct mq_catalog_topic t;
        err = mq_catalog_topic_get(store->cat, name, &t);
        if (err == MQ_OK || (err == MQ_ERR_NOENT && !records)) {
            err = MQ_OK;
            continue;
        }
        if (err != MQ_ERR_NOENT) {
            mq_errf(err, errstr, errstr_size, "topic %s: catalog: %s (%s)", name, mq_strerror(err),
                    mq_catalog_errmsg(store->cat));
            break;
        }
        if (!mq_topic_name_valid(name) || partitions > MQ_CATALOG_PARTITIONS_MAX) {
            err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                          "topic %s: its directories hold records but cannot be described in the catalog "
                          "(%" PRId64 " partitions; at most %d)",
                          name, partitions, MQ_CATALOG_PARTITIONS_MAX);
            break;
        }
        err = mq_log_topic_create(store->log, name, (int32_t)partitions); /* fills holes with empty ones */
        if (err == MQ_OK)
            err = mq_catalog_topic_create(store->cat, name, (int32_t)partitions, MQ_RETENTION_MS_DEFAULT, 0);
        if (err != MQ_OK) {
            mq_errf(err, errstr, errstr_size, "topic %s: rebuilding its catalog row: %s (%s)", name,
                    mq_strerror(err), mq_catalog_errmsg(store->cat));
            break;
        }
        if (rebuilt)
            (*rebuilt)++;
        char what[512];
        snprintf(what, sizeof what,
                 "topic %s was not in the catalog although its partition directories hold records: rebuilt "
                 "its row with %" PRId64 " partition%s and the default retention (%lld days)",
                 name, partitions, partitions == 1 ? "" : "s",
                 (long long)(MQ_RETENTION_MS_DEFAULT / (24LL * 3600 * 1000)));
        mq_store_report(store, fn, opaque, name, 0, what);
    }
    pthread_mutex_unlock(&store->ddl_lock);
out:
    for (size_t i = 0; i < dirs.n; i++)
        free(dirs.v[i].topic);
    free(dirs.v);
    return err;
}
