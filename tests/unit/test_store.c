/*
 * test_store.c - the data directory facade: open modes (write creates, read never does, one writer at a
 * time), topic creation with its validation and its crash repair, partition lookup through the catalog with
 * the topic's retention applied, topic deletion, the catalog/directory consistency check, and rebuilding the
 * topic rows of a lost or emptied catalog from the directories.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/parse.h"
#include "testutil.h"

static char *tdir;
static char dir[4096];

static void setup(const char *tag)
{
    tdir = mq_test_tmpdir(tag);
    snprintf(dir, sizeof dir, "%s/data/sub", tdir); /* two levels that do not exist yet */
}

static void teardown(void)
{
    mq_test_rmdir(tdir);
    tdir = NULL;
}

static bool exists_path(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether the directory of partition p of topic exists in dir. */
static bool exists_part(const char *topic, int p)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s-%d", dir, topic, p);
    return exists_path(path);
}

/* Whether base holds a catalog file. */
static bool exists_catalog(const char *base)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/" MQ_CATALOG_FILE, base);
    return exists_path(path);
}

static struct mq_log_conf conf_flush_always(void)
{
    struct mq_log_conf conf;
    mq_log_conf_defaults(&conf);
    conf.flush_interval_ms = 0; /* every append is durable when it returns: readers see it at once */
    return conf;
}

static struct mq_store *open_store(int flags, const struct mq_log_conf *conf)
{
    char errstr[512] = "";
    struct mq_store *store = NULL;
    enum mq_err err = mq_store_open(dir, flags, conf, &store, errstr, sizeof errstr);
    if (err != MQ_OK)
        fprintf(stderr, "mq_store_open %s: %s\n", dir, errstr);
    CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(store);
    return store;
}

/* Collects mq_store_check() issues. */
struct issues {
    int n;
    char last_path[4300];
    char last_what[600];
};

static void on_issue(void *opaque, const struct mq_verify_issue *issue)
{
    struct issues *is = opaque;
    is->n++;
    snprintf(is->last_path, sizeof is->last_path, "%s", issue->path);
    snprintf(is->last_what, sizeof is->last_what, "%s", issue->what);
    CU_ASSERT_EQUAL(issue->position, -1);
}

static int64_t check(struct mq_store *store, struct issues *is)
{
    memset(is, 0, sizeof *is);
    int64_t problems = -1;
    CU_ASSERT_EQUAL(mq_store_check(store, on_issue, is, &problems), MQ_OK);
    CU_ASSERT_EQUAL(problems, is->n);
    return problems;
}

static void test_open_modes(void)
{
    setup("store-open");
    char errstr[512] = "";
    struct mq_store *store = NULL;

    /* A reader creates nothing and says what is missing. */
    CU_ASSERT_EQUAL(mq_store_open(dir, MQ_STORE_READ, NULL, &store, errstr, sizeof errstr), MQ_ERR_NOENT);
    CU_ASSERT_PTR_NULL(store);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, dir));
    CU_ASSERT_FALSE(exists_path(dir));
    char parent[4200];
    snprintf(parent, sizeof parent, "%s/data", tdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(parent, 0755), 0);
    CU_ASSERT_EQUAL(mq_store_open(parent, MQ_STORE_READ, NULL, &store, errstr, sizeof errstr), MQ_ERR_NOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, MQ_CATALOG_FILE));
    CU_ASSERT_FALSE(exists_catalog(parent));

    /* The writer creates the directory (parents included) and the catalog. */
    struct mq_store *w = open_store(MQ_STORE_WRITE, NULL);
    CU_ASSERT_TRUE(exists_catalog(dir));
    CU_ASSERT_PTR_NOT_NULL(mq_store_log(w));
    CU_ASSERT_PTR_NOT_NULL(mq_store_catalog(w));
    CU_ASSERT_STRING_EQUAL(mq_store_dir(w), dir);
    CU_ASSERT_EQUAL(mq_log_mode(mq_store_log(w)), MQ_LOG_WRITE);

    /* One writer at a time; readers beside it. */
    CU_ASSERT_EQUAL(mq_store_open(dir, MQ_STORE_WRITE | MQ_STORE_READ, NULL, &store, errstr, sizeof errstr),
                    MQ_ERR_BUSY);
    CU_ASSERT_PTR_NULL(store);
    struct mq_store *r = open_store(MQ_STORE_READ, NULL);
    CU_ASSERT_EQUAL(mq_log_mode(mq_store_log(r)), MQ_LOG_READ);

    CU_ASSERT_EQUAL(mq_store_close(r), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_close(w), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_close(NULL), MQ_OK);

    /* A data directory that cannot be created (under a regular file: fails even for root). */
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/file", tdir);
    FILE *f = fopen(bad, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    snprintf(bad, sizeof bad, "%s/file/data", tdir);
    CU_ASSERT_NOT_EQUAL(mq_store_open(bad, MQ_STORE_WRITE, NULL, &store, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_PTR_NULL(store);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, bad));
    CU_ASSERT_NOT_EQUAL(mq_store_open(bad, MQ_STORE_READ, NULL, &store, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_open(dir, 0, NULL, &store, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_store_open(NULL, MQ_STORE_READ, NULL, &store, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_PTR_NULL(store);
    teardown();
}

static void test_topic_create(void)
{
    setup("store-topic");
    char errstr[512] = "";
    struct mq_store *w = open_store(MQ_STORE_WRITE, NULL);

    CU_ASSERT_EQUAL(mq_store_topic_create(w, "bad name", 1, NULL, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "bad name"));
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "..", 1, NULL, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "", 1, NULL, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "a/b", 1, NULL, NULL, 0), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "t", 0, NULL, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "t", 10001, NULL, errstr, sizeof errstr), MQ_ERR_INVAL);
    struct mq_retention neg = {.ms = -1, .bytes = 0};
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "t", 1, &neg, errstr, sizeof errstr), MQ_ERR_INVAL);
    struct mq_catalog_topic *list = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(mq_store_topic_list(w, &list, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 0); /* nothing of the failed calls was stored */
    free(list);

    CU_ASSERT_EQUAL(mq_store_topic_create(w, "sensors.temp", 3, NULL, errstr, sizeof errstr), MQ_OK);
    for (int p = 0; p < 3; p++)
        CU_ASSERT_TRUE(exists_part("sensors.temp", p));
    CU_ASSERT_FALSE(exists_part("sensors.temp", 3));
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "sensors.temp", &t), MQ_OK);
    CU_ASSERT_EQUAL(t.partitions, 3);
    CU_ASSERT_EQUAL(t.retention_ms, MQ_RETENTION_MS_DEFAULT);
    CU_ASSERT_EQUAL(t.retention_bytes, 0);

    struct mq_retention ret = {.ms = 3600000, .bytes = 1 << 30};
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "b", 1, &ret, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "b", &t), MQ_OK);
    CU_ASSERT_EQUAL(t.retention_ms, 3600000);
    CU_ASSERT_EQUAL(t.retention_bytes, 1 << 30);

    /* Again: exists, and the partition count stays. */
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "sensors.temp", 5, NULL, errstr, sizeof errstr), MQ_ERR_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "exists"));
    CU_ASSERT_FALSE(exists_part("sensors.temp", 3));
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "sensors.temp", &t), MQ_OK);
    CU_ASSERT_EQUAL(t.partitions, 3);
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "nope", &t), MQ_ERR_NOENT);

    CU_ASSERT_EQUAL(mq_store_topic_list(w, &list, &n), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(list[0].name, "b");
    CU_ASSERT_STRING_EQUAL(list[1].name, "sensors.temp");
    free(list);

    /* A reader sees the topics but may not create any. */
    struct mq_store *r = open_store(MQ_STORE_READ, NULL);
    CU_ASSERT_EQUAL(mq_store_topic_get(r, "b", &t), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_create(r, "c", 1, NULL, errstr, sizeof errstr), MQ_ERR_READONLY);
    CU_ASSERT_EQUAL(mq_store_topic_delete(r, "b"), MQ_ERR_READONLY);
    CU_ASSERT_FALSE(exists_part("c", 0));
    CU_ASSERT_EQUAL(mq_store_topic_get(r, "c", &t), MQ_ERR_NOENT);

    struct issues is;
    CU_ASSERT_EQUAL(check(w, &is), 0);
    CU_ASSERT_EQUAL(check(r, &is), 0);
    mq_store_close(r);
    mq_store_close(w);
    teardown();
}

static void test_part(void)
{
    setup("store-part");
    struct mq_log_conf conf = conf_flush_always();
    struct mq_store *w = open_store(MQ_STORE_WRITE, &conf);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "t", 2, NULL, NULL, 0), MQ_OK);

    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL(mq_store_part(w, "nope", 0, &part), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_store_part(w, "t", 2, &part), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_store_part(w, "t", -1, &part), MQ_ERR_NOENT);
    CU_ASSERT_PTR_NULL(part);

    CU_ASSERT_EQUAL_FATAL(mq_store_part(w, "t", 1, &part), MQ_OK);
    CU_ASSERT_STRING_EQUAL(mq_part_topic(part), "t");
    CU_ASSERT_EQUAL(mq_part_id(part), 1);
    struct mq_part *again = NULL;
    CU_ASSERT_EQUAL(mq_store_part(w, "t", 1, &again), MQ_OK);
    CU_ASSERT_PTR_EQUAL(again, part); /* the log's own partition, not a second copy */

    struct mq_record recs[3];
    for (int i = 0; i < 3; i++)
        recs[i] = (struct mq_record){
            .timestamp = mq_now_ms(), .key = NULL, .key_len = -1, .value = "hello", .value_len = 5};
    int64_t first = -1;
    CU_ASSERT_EQUAL(mq_part_append(part, recs, 3, &first), MQ_OK);
    CU_ASSERT_EQUAL(first, 0);

    /* A reader store sees the durable records. */
    struct mq_store *r = open_store(MQ_STORE_READ, NULL);
    struct mq_part *rpart = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_part(r, "t", 1, &rpart), MQ_OK);
    struct mq_part_stats st;
    CU_ASSERT_EQUAL(mq_part_stats(rpart, &st), MQ_OK);
    CU_ASSERT_EQUAL(st.end_offset, 3);
    CU_ASSERT_EQUAL(mq_store_part(r, "t", 2, &rpart), MQ_ERR_NOENT);
    mq_store_close(r);
    mq_store_close(w);

    /* Reopened (read mode), the topic and its records are still there. */
    r = open_store(MQ_STORE_READ, NULL);
    CU_ASSERT_EQUAL_FATAL(mq_store_part(r, "t", 1, &rpart), MQ_OK);
    CU_ASSERT_EQUAL(mq_part_stats(rpart, &st), MQ_OK);
    CU_ASSERT_EQUAL(st.end_offset, 3);
    mq_store_close(r);
    teardown();
}

/* Appends one record of ~3000 bytes with timestamp ts. */
static void append_old(struct mq_part *part, int64_t ts)
{
    static char value[3000];
    struct mq_record rec = {.timestamp = ts, .key_len = -1, .value = value, .value_len = sizeof value};
    CU_ASSERT_EQUAL(mq_part_append(part, &rec, 1, NULL), MQ_OK);
}

/* The topic's retention from the catalog reaches the partition: old segments are deleted by it. */
static void test_part_retention(void)
{
    setup("store-ret");
    struct mq_log_conf conf = conf_flush_always();
    conf.segment_bytes = 4096; /* the smallest allowed: one record per segment */
    struct mq_store *w = open_store(MQ_STORE_WRITE, &conf);
    struct mq_retention keep = {.ms = 0, .bytes = 0}; /* no limits */
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "old", 1, &keep, NULL, 0), MQ_OK);

    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_part(w, "old", 0, &part), MQ_OK);
    int64_t long_ago = mq_now_ms() - 30LL * 24 * 3600 * 1000;
    for (int i = 0; i < 4; i++)
        append_old(part, long_ago);
    int deleted = -1;
    CU_ASSERT_EQUAL(mq_part_apply_retention(part, mq_now_ms(), &deleted), MQ_OK);
    CU_ASSERT_EQUAL(deleted, 0); /* no limit: nothing goes */

    /* One day: the month-old segments go (the active one may stay). */
    struct mq_retention day = {.ms = 24LL * 3600 * 1000, .bytes = 0};
    CU_ASSERT_EQUAL(mq_store_topic_set_retention(w, "old", &day), MQ_OK);
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "old", &t), MQ_OK);
    CU_ASSERT_EQUAL(t.retention_ms, day.ms);
    CU_ASSERT_EQUAL(mq_part_apply_retention(part, mq_now_ms(), &deleted), MQ_OK);
    CU_ASSERT(deleted >= 3);
    struct mq_part_stats st;
    CU_ASSERT_EQUAL(mq_part_stats(part, &st), MQ_OK);
    CU_ASSERT(st.start_offset >= 3);

    /* A retention changed in the catalog by someone else reaches the partition at the next mq_store_part().
     */
    for (int i = 0; i < 4; i++)
        append_old(part, long_ago);
    CU_ASSERT_EQUAL(mq_catalog_topic_set_retention(mq_store_catalog(w), "old", 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_part(w, "old", 0, &part), MQ_OK);
    CU_ASSERT_EQUAL(mq_part_apply_retention(part, mq_now_ms(), &deleted), MQ_OK);
    CU_ASSERT_EQUAL(deleted, 0);
    CU_ASSERT_EQUAL(mq_catalog_topic_set_retention(mq_store_catalog(w), "old", day.ms, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_part(w, "old", 0, &part), MQ_OK);
    CU_ASSERT_EQUAL(mq_part_apply_retention(part, mq_now_ms(), &deleted), MQ_OK);
    CU_ASSERT(deleted >= 3);

    CU_ASSERT_EQUAL(mq_store_topic_set_retention(w, "nope", &day), MQ_ERR_NOENT);
    mq_store_close(w);
    teardown();
}

/* What a crash between the two steps of create leaves, what check says about it, and how create repairs it.
 */
static void test_check_and_repair(void)
{
    setup("store-check");
    char errstr[512] = "";
    struct mq_store *w = open_store(MQ_STORE_WRITE, NULL);
    struct issues is;
    CU_ASSERT_EQUAL(check(w, &is), 0);

    /* Crash after the directories, before the row: the directories are reported... */
    CU_ASSERT_EQUAL(mq_log_topic_create(mq_store_log(w), "half", 2), MQ_OK);
    CU_ASSERT_EQUAL(check(w, &is), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(is.last_what, "without a catalog row"));
    CU_ASSERT_PTR_NOT_NULL(strstr(is.last_path, "half-1"));
    /* ... the topic does not exist for readers of the catalog ... */
    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL(mq_store_part(w, "half", 0, &part), MQ_ERR_NOENT);
    /* ... and creating it again completes it. */
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "half", 2, NULL, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL(check(w, &is), 0);
    CU_ASSERT_EQUAL(mq_store_part(w, "half", 1, &part), MQ_OK);

    /* A row whose directories are missing (lost, or written by an older create order). */
    CU_ASSERT_EQUAL(mq_catalog_topic_create(mq_store_catalog(w), "rowonly", 3, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(check(w, &is), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(is.last_what, "missing"));
    CU_ASSERT_PTR_NOT_NULL(strstr(is.last_path, "rowonly-2"));
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "rowonly", 3, NULL, errstr, sizeof errstr), MQ_ERR_EXISTS);
    CU_ASSERT_EQUAL(check(w, &is), 0);
    for (int p = 0; p < 3; p++)
        CU_ASSERT_TRUE(exists_part("rowonly", p));

    /* Directories beyond the topic's partition count. */
    CU_ASSERT_EQUAL(mq_log_topic_create(mq_store_log(w), "rowonly", 5), MQ_OK);
    CU_ASSERT_EQUAL(check(w, &is), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(is.last_what, "beyond"));

    /* A reader runs the same check (mqlog verify beside the daemon). */
    struct mq_store *r = open_store(MQ_STORE_READ, NULL);
    CU_ASSERT_EQUAL(check(r, &is), 2);
    int64_t problems = -1;
    CU_ASSERT_EQUAL(mq_store_check(r, NULL, NULL, &problems), MQ_OK);
    CU_ASSERT_EQUAL(problems, 2);
    mq_store_close(r);
    mq_store_close(w);
    teardown();
}

/* A lost or emptied catalog beside partitions that hold records: the check names them, the writer rebuilds
 * their rows (partition count from the directories, default retention), and topics without records are
 * left alone. */
static void test_rebuild_lost_catalog(void)
{
    setup("store-rebuild");
    char errstr[512] = "";
    struct mq_log_conf conf = conf_flush_always();
    struct mq_store *w = open_store(MQ_STORE_WRITE, &conf);
    struct mq_retention ret = {.ms = 0, .bytes = 0};
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "kept", 3, &ret, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "empty", 2, NULL, errstr, sizeof errstr), MQ_OK);
    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_part(w, "kept", 2, &part), MQ_OK);
    struct mq_record rec = {1700000000000LL, NULL, -1, "x", 1, NULL, 0};
    int64_t off = -1;
    CU_ASSERT_EQUAL(mq_part_produce(part, &rec, &off), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_close(w), MQ_OK);

    for (int round = 0; round < 2; round++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/" MQ_CATALOG_FILE, dir);
        if (round == 0) {
            CU_ASSERT_EQUAL(truncate(path, 0), 0); /* emptied */
        } else {
            CU_ASSERT_EQUAL(unlink(path), 0); /* deleted */
        }
        snprintf(path, sizeof path, "%s/" MQ_CATALOG_FILE "-wal", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/" MQ_CATALOG_FILE "-shm", dir);
        unlink(path);
        w = open_store(MQ_STORE_WRITE, &conf);
        CU_ASSERT_TRUE(mq_store_catalog_was_new(w));
        struct issues is;
        CU_ASSERT_EQUAL(check(w, &is), 5); /* every directory of both topics */
        CU_ASSERT_PTR_NOT_NULL(strstr(is.last_what, "holds records"));
        memset(&is, 0, sizeof is);
        int64_t n = -1;
        CU_ASSERT_EQUAL(mq_store_rebuild_topics(w, on_issue, &is, &n, errstr, sizeof errstr), MQ_OK);
        CU_ASSERT_EQUAL(n, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(is.last_what, "topic kept"));
        CU_ASSERT_PTR_NOT_NULL(strstr(is.last_path, "kept-0"));
        struct mq_catalog_topic t;
        CU_ASSERT_EQUAL(mq_store_topic_get(w, "kept", &t), MQ_OK);
        CU_ASSERT_EQUAL(t.partitions, 3);
        CU_ASSERT_EQUAL(t.retention_ms, MQ_RETENTION_MS_DEFAULT);
        CU_ASSERT_EQUAL(mq_store_topic_get(w, "empty", &t), MQ_ERR_NOENT);
        CU_ASSERT_EQUAL(check(w, &is), 2); /* the empty topic: an interrupted create, as before */
        CU_ASSERT_PTR_NOT_NULL(strstr(is.last_what, "without a catalog row"));
        CU_ASSERT_EQUAL_FATAL(mq_store_part(w, "kept", 2, &part), MQ_OK);
        int64_t start = -1, end = -1;
        CU_ASSERT_EQUAL(mq_part_offsets(part, &start, &end), MQ_OK);
        CU_ASSERT_EQUAL(end, 1);
        /* Nothing more to do the second time; a reader may not rebuild. */
        CU_ASSERT_EQUAL(mq_store_rebuild_topics(w, on_issue, &is, &n, errstr, sizeof errstr), MQ_OK);
        CU_ASSERT_EQUAL(n, 0);
        CU_ASSERT_EQUAL(mq_store_close(w), MQ_OK);
        struct mq_store *r = open_store(MQ_STORE_READ, NULL);
        CU_ASSERT_EQUAL(mq_store_rebuild_topics(r, NULL, NULL, NULL, NULL, 0), MQ_ERR_READONLY);
        mq_store_close(r);
    }
    teardown();
}

static void test_topic_delete(void)
{
    setup("store-del");
    struct mq_log_conf conf = conf_flush_always();
    struct mq_store *w = open_store(MQ_STORE_WRITE, &conf);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "gone", 2, NULL, NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "kept", 1, NULL, NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(mq_store_catalog(w), "g", "gone", 1, 10, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(mq_store_catalog(w), "g", "kept", 0, 11, NULL), MQ_OK);

    CU_ASSERT_EQUAL(mq_store_topic_delete(w, "gone"), MQ_OK);
    CU_ASSERT_FALSE(exists_part("gone", 0));
    CU_ASSERT_FALSE(exists_part("gone", 1));
    CU_ASSERT_TRUE(exists_part("kept", 0));
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "gone", &t), MQ_ERR_NOENT);
    int64_t off;
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(mq_store_catalog(w), "g", "gone", 1, &off, NULL, NULL),
                    MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(mq_store_catalog(w), "g", "kept", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_delete(w, "gone"), MQ_ERR_NOENT);

    /* Directories without a row (an interrupted create) are removed by a delete. */
    CU_ASSERT_EQUAL(mq_log_topic_create(mq_store_log(w), "left", 1), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_delete(w, "left"), MQ_OK);
    CU_ASSERT_FALSE(exists_part("left", 0));

    /* A row whose directories are gone (a delete interrupted after the files) is completed by deleting again.
     */
    CU_ASSERT_EQUAL(mq_catalog_topic_create(mq_store_catalog(w), "rowonly", 2, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_delete(w, "rowonly"), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "rowonly", &t), MQ_ERR_NOENT);

    /* A topic whose partition is open: either refused with nothing changed, or deleted completely. */
    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_part(w, "kept", 0, &part), MQ_OK);
    enum mq_err err = mq_store_topic_delete(w, "kept");
    struct issues is;
    if (err == MQ_ERR_BUSY) {
        CU_ASSERT_EQUAL(mq_store_topic_get(w, "kept", &t), MQ_OK);
        CU_ASSERT_TRUE(exists_part("kept", 0));
        CU_ASSERT_EQUAL(mq_catalog_offset_fetch(mq_store_catalog(w), "g", "kept", 0, &off, NULL, NULL),
                        MQ_OK);
    } else {
        CU_ASSERT_EQUAL(err, MQ_OK);
        CU_ASSERT_EQUAL(mq_store_topic_get(w, "kept", &t), MQ_ERR_NOENT);
        CU_ASSERT_FALSE(exists_part("kept", 0));
    }
    CU_ASSERT_EQUAL(check(w, &is), 0);

    /* And the name can be used again. */
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "gone", 1, NULL, NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(check(w, &is), 0);
    mq_store_close(w);
    teardown();
}

/* A delete interrupted after its first step (directories renamed to "<topic>-<p>.deleted", the row still
 * there) or after its second (the row gone, the renamed directories left) is finished by the next
 * write-mode open: the topic, its offsets and forwarder checkpoints go, and no ".deleted" directory stays. */
static void test_topic_delete_interrupted(void)
{
    setup("store-del-crash");
    struct mq_log_conf conf = conf_flush_always();
    struct mq_store *w = open_store(MQ_STORE_WRITE, &conf);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "half", 3, NULL, NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "rowless", 1, NULL, NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_create(w, "kept", 1, NULL, NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(mq_store_catalog(w), "g", "half", 2, 5, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(mq_store_catalog(w), "forward.f", "half:0", "7", 1), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(mq_store_catalog(w), "forward.f", "kept:0", "1", 1), MQ_OK);
    mq_store_close(w);

    /* "half": one directory renamed (the crash came mid-way through the renames), the row kept. */
    char from[4200], to[4300];
    snprintf(from, sizeof from, "%s/half-1", dir);
    snprintf(to, sizeof to, "%s.deleted", from);
    CU_ASSERT_EQUAL(rename(from, to), 0);
    /* "rowless": the row deleted, the renamed directory left. */
    snprintf(from, sizeof from, "%s/rowless-0", dir);
    snprintf(to, sizeof to, "%s.deleted", from);
    CU_ASSERT_EQUAL(rename(from, to), 0);
    struct mq_catalog *cat = NULL;
    char path[4200], errstr[256];
    snprintf(path, sizeof path, "%s/" MQ_CATALOG_FILE, dir);
    CU_ASSERT_EQUAL_FATAL(mq_catalog_open(path, 0, &cat, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_delete(cat, "rowless"), MQ_OK);
    mq_catalog_close(cat);

    w = open_store(MQ_STORE_WRITE, &conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "half", &t), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_store_topic_get(w, "kept", &t), MQ_OK);
    for (int p = 0; p < 3; p++)
        CU_ASSERT_FALSE(exists_part("half", p));
    snprintf(to, sizeof to, "%s/half-1.deleted", dir);
    CU_ASSERT_FALSE(exists_path(to));
    snprintf(to, sizeof to, "%s/rowless-0.deleted", dir);
    CU_ASSERT_FALSE(exists_path(to));
    int64_t off;
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(mq_store_catalog(w), "g", "half", 2, &off, NULL, NULL),
                    MQ_ERR_NOENT);
    void *v = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(mq_store_catalog(w), "forward.f", "half:0", &v, &len),
                    MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(mq_store_catalog(w), "forward.f", "kept:0", &v, &len), MQ_OK);
    free(v);
    struct issues is;
    CU_ASSERT_EQUAL(check(w, &is), 0);
    mq_store_close(w);
    teardown();
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_open_modes),
        MQ_TEST(test_topic_create),
        MQ_TEST(test_part),
        MQ_TEST(test_part_retention),
        MQ_TEST(test_check_and_repair),
        MQ_TEST(test_topic_delete),
        MQ_TEST(test_topic_delete_interrupted),
        MQ_TEST(test_rebuild_lost_catalog),
        MQ_TEST_END,
    };
    return mq_test_run("store", tests);
}
