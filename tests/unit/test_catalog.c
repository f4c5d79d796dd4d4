/*
 * test_catalog.c - the SQLite catalog: topic CRUD and its constraint errors, group offsets (one and many per
 * transaction), two handles on one file as two processes would use it, concurrent writers, connector
 * checkpoints with binary values, persistence across reopen, read-only opens and failing opens.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "testutil.h"

static char *tdir;
static char dbpath[4096];

/* A fresh temporary directory and the catalog path in it. */
static void setup(const char *tag)
{
    tdir = mq_test_tmpdir(tag);
    snprintf(dbpath, sizeof dbpath, "%s/" MQ_CATALOG_FILE, tdir);
}

static void teardown(void)
{
    mq_test_rmdir(tdir);
    tdir = NULL;
}

static struct mq_catalog *open_rw(void)
{
    char errstr[256] = "";
    struct mq_catalog *cat = NULL;
    enum mq_err err = mq_catalog_open(dbpath, MQ_CATALOG_CREATE, &cat, errstr, sizeof errstr);
    if (err != MQ_OK)
        fprintf(stderr, "open %s: %s\n", dbpath, errstr);
    CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cat);
    return cat;
}

static void test_open_create(void)
{
    setup("cat-open");
    char errstr[256] = "";
    struct mq_catalog *cat = NULL;

    /* Without CREATE a missing file is an error that names the file, and nothing is created. */
    CU_ASSERT_EQUAL(mq_catalog_open(dbpath, 0, &cat, errstr, sizeof errstr), MQ_ERR_NOENT);
    CU_ASSERT_PTR_NULL(cat);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, dbpath));
    FILE *f = fopen(dbpath, "r");
    CU_ASSERT_PTR_NULL(f);
    if (f)
        fclose(f);

    cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_schema_version(cat), 3);
    CU_ASSERT_STRING_EQUAL(mq_catalog_errmsg(cat), "");
    mq_catalog_close(cat);

    /* Now it exists, and reopening without CREATE works. */
    cat = NULL;
    CU_ASSERT_EQUAL(mq_catalog_open(dbpath, 0, &cat, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_schema_version(cat), 3);

    /* The database is in WAL mode with foreign keys on (checked from a plain connection). */
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    mq_catalog_close(cat);
    mq_catalog_close(NULL);
    teardown();
}

static void test_topics(void)
{
    setup("cat-topics");
    struct mq_catalog *cat = open_rw();
    struct mq_catalog_topic t;

    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "beta", 3, 1000, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "alpha", 1, 0, 4096), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "gamma.x-y_z", 10000, 7, 8), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "beta", 5, 0, 0), MQ_ERR_EXISTS);

    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, "beta", &t), MQ_OK);
    CU_ASSERT_STRING_EQUAL(t.name, "beta");
    CU_ASSERT_EQUAL(t.partitions, 3); /* the failed second create changed nothing */
    CU_ASSERT_EQUAL(t.retention_ms, 1000);
    CU_ASSERT_EQUAL(t.retention_bytes, 0);
    CU_ASSERT(t.created_ms > 1600000000000LL);
    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, "nope", &t), MQ_ERR_NOENT);

    /* Bad arguments. */
    char longname[MQ_TOPIC_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, longname, 1, 0, 0), MQ_ERR_INVAL);
    longname[MQ_TOPIC_NAME_MAX] = 0; /* exactly the longest allowed */
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, longname, 1, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, longname, &t), MQ_OK);
    CU_ASSERT_STRING_EQUAL(t.name, longname);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "", 1, 0, 0), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, NULL, 1, 0, 0), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "p0", 0, 0, 0), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "p1", MQ_CATALOG_PARTITIONS_MAX + 1, 0, 0), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "r", 1, -1, 0), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "r", 1, 0, -1), MQ_ERR_INVAL);

    /* The list is in name order and complete. */
    struct mq_catalog_topic *list = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(mq_catalog_topic_list(cat, &list, &n), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_STRING_EQUAL(list[0].name, longname);
    CU_ASSERT_STRING_EQUAL(list[1].name, "alpha");
    CU_ASSERT_STRING_EQUAL(list[2].name, "beta");
    CU_ASSERT_STRING_EQUAL(list[3].name, "gamma.x-y_z");
    CU_ASSERT_EQUAL(list[3].partitions, 10000);
    CU_ASSERT_EQUAL(list[1].retention_bytes, 4096);
    free(list);

    CU_ASSERT_EQUAL(mq_catalog_topic_set_retention(cat, "beta", 60000, 1 << 20), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, "beta", &t), MQ_OK);
    CU_ASSERT_EQUAL(t.retention_ms, 60000);
    CU_ASSERT_EQUAL(t.retention_bytes, 1 << 20);
    CU_ASSERT_EQUAL(mq_catalog_topic_set_retention(cat, "nope", 1, 1), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_topic_set_retention(cat, "beta", -5, 1), MQ_ERR_INVAL);

    CU_ASSERT_EQUAL(mq_catalog_topic_delete(cat, "beta"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, "beta", &t), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_topic_delete(cat, "beta"), MQ_ERR_NOENT);
    /* ... and can be created again. */
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "beta", 2, 0, 0), MQ_OK);

    mq_catalog_close(cat);

    /* An empty catalog lists nothing. */
    teardown();
    setup("cat-topics-empty");
    cat = open_rw();
    list = (struct mq_catalog_topic *)1;
    CU_ASSERT_EQUAL(mq_catalog_topic_list(cat, &list, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(list);
    mq_catalog_close(cat);
    teardown();
}

static void test_offsets(void)
{
    setup("cat-offsets");
    struct mq_catalog *cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "t", 4, 0, 0), MQ_OK);

    int64_t off = -7, when = 0;
    char *md = (char *)"untouched";
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, &md, &when), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(off, -7);

    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 0, 42, "meta"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, &md, &when), MQ_OK);
    CU_ASSERT_EQUAL(off, 42);
    CU_ASSERT_STRING_EQUAL(md, "meta");
    CU_ASSERT(when > 1600000000000LL);
    free(md);

    /* Overwrite, with no metadata. */
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 0, 1000, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, &md, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 1000);
    CU_ASSERT_PTR_NULL(md);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, NULL, NULL), MQ_OK);

    /* Other groups and partitions are separate. */
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "h", "t", 0, &off, NULL, NULL), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 1, &off, NULL, NULL), MQ_ERR_NOENT);

    /* Unknown topic, partition outside the topic. */
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "nope", 0, 1, NULL), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 4, 1, NULL), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", -1, 1, NULL), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, NULL, "t", 0, 1, NULL), MQ_ERR_INVAL);

    /* Deleting the topic deletes its offsets; a re-created topic starts without any. */
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 3, 9, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "u", 1, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "u", 0, 5, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_delete(cat, "t"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "t", 4, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, NULL, NULL), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 3, &off, NULL, NULL), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "u", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 5);

    mq_catalog_close(cat);
    teardown();
}

#define MANY 300

/* A reset writes every partition or none, and is refused for a group live in the running daemon only. */
static void test_offset_reset_and_live_groups(void)
{
    setup("cat-reset");
    struct mq_catalog *cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "t", 2, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 0, 9, NULL), MQ_OK);
    struct mq_offset_commit c[2] = {{.topic = "t", .partition = 0, .offset = 3},
                                    {.topic = "t", .partition = 1, .offset = 4}};
    int64_t off = 0;

    CU_ASSERT_EQUAL(mq_catalog_group_set_live(cat, "g", 4242, true), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_reset(cat, "g", c, 2, 4242), MQ_ERR_BUSY); /* live in that daemon */
    CU_ASSERT_EQUAL(mq_catalog_offset_reset(cat, "g", c, 2, -1), MQ_ERR_BUSY);   /* a daemon of unknown pid */
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 9);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 1, &off, NULL, NULL), MQ_ERR_NOENT);

    /* A row left by another (dead) daemon, or with no daemon running, does not block. */
    CU_ASSERT_EQUAL(mq_catalog_offset_reset(cat, "g", c, 2, 777), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 1, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 4);
    c[0].offset = 1;
    CU_ASSERT_EQUAL(mq_catalog_offset_reset(cat, "g", c, 2, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 1);

    /* Empty again, or cleared at daemon start: the reset goes through. */
    CU_ASSERT_EQUAL(mq_catalog_group_set_live(cat, "g", 4242, false), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_group_set_live(cat, "g", 4242, false), MQ_OK); /* idempotent */
    CU_ASSERT_EQUAL(mq_catalog_offset_reset(cat, "g", c, 2, 4242), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_group_set_live(cat, "h", 4242, true), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_groups_clear_live(cat), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_reset(cat, "h", c, 2, 4242), MQ_OK);

    /* One bad partition rolls the whole reset back. */
    struct mq_offset_commit bad[2] = {{.topic = "t", .partition = 0, .offset = 8},
                                      {.topic = "t", .partition = 5, .offset = 8}};
    CU_ASSERT_EQUAL(mq_catalog_offset_reset(cat, "g", bad, 2, 0), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 1);

    mq_catalog_close(cat);
    teardown();
}

static void test_offsets_many(void)
{
    setup("cat-many");
    struct mq_catalog *cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "a", MANY, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "b", 2, 0, 0), MQ_OK);

    /* MANY partitions of a, one of b, and two bad entries, in one call. */
    struct mq_offset_commit c[MANY + 3];
    char md[MANY][16];
    for (int i = 0; i < MANY; i++) {
        snprintf(md[i], sizeof md[i], "m%d", i);
        /* reversed, so that the list's order is the catalog's doing */
        c[i] = (struct mq_offset_commit){
            .topic = "a", .partition = MANY - 1 - i, .offset = 10LL * i, .metadata = md[i], .err = MQ_ERR_IO};
    }
    c[MANY] = (struct mq_offset_commit){.topic = "zz", .partition = 0, .offset = 1, .err = MQ_ERR_IO};
    c[MANY + 1] = (struct mq_offset_commit){.topic = "b", .partition = 1, .offset = 77, .err = MQ_ERR_IO};
    c[MANY + 2] = (struct mq_offset_commit){.topic = "b", .partition = 2, .offset = 1, .err = MQ_ERR_IO};
    CU_ASSERT_EQUAL(mq_catalog_offset_commit_many(cat, "grp", c, MANY + 3), MQ_OK);
    for (int i = 0; i < MANY; i++)
        CU_ASSERT_EQUAL(c[i].err, MQ_OK);
    CU_ASSERT_EQUAL(c[MANY].err, MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(c[MANY + 1].err, MQ_OK);
    CU_ASSERT_EQUAL(c[MANY + 2].err, MQ_ERR_NOENT);

    struct mq_group_offset *offs = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(mq_catalog_offset_list(cat, "grp", &offs, &n), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(n, MANY + 1);
    for (int p = 0; p < MANY; p++) {
        CU_ASSERT_STRING_EQUAL(offs[p].topic, "a");
        CU_ASSERT_EQUAL(offs[p].partition, p);
        CU_ASSERT_EQUAL(offs[p].offset, 10LL * (MANY - 1 - p));
        char want[16];
        snprintf(want, sizeof want, "m%d", MANY - 1 - p);
        CU_ASSERT_STRING_EQUAL(offs[p].metadata, want);
    }
    CU_ASSERT_STRING_EQUAL(offs[MANY].topic, "b");
    CU_ASSERT_EQUAL(offs[MANY].partition, 1);
    CU_ASSERT_EQUAL(offs[MANY].offset, 77);
    CU_ASSERT_PTR_NULL(offs[MANY].metadata);
    mq_catalog_offsets_free(offs, n);
    mq_catalog_offsets_free(NULL, 0);

    /* Empty commits and lists. */
    CU_ASSERT_EQUAL(mq_catalog_offset_commit_many(cat, "grp", NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_list(cat, "nobody", &offs, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(offs);

    /* Groups. */
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "another", "b", 0, 3, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "", "b", 0, 4, NULL), MQ_OK);
    char **groups = NULL;
    CU_ASSERT_EQUAL(mq_catalog_group_list(cat, &groups, &n), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(groups[0], "");
    CU_ASSERT_STRING_EQUAL(groups[1], "another");
    CU_ASSERT_STRING_EQUAL(groups[2], "grp");
    mq_catalog_strings_free(groups, n);

    CU_ASSERT_EQUAL(mq_catalog_group_delete(cat, "grp"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_group_delete(cat, "grp"), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_group_list(cat, &groups, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 2);
    mq_catalog_strings_free(groups, n);
    int64_t off;
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "grp", "a", 0, &off, NULL, NULL), MQ_ERR_NOENT);

    mq_catalog_close(cat);
    teardown();
}

/* Two handles on one file, as the daemon and `mqlog consume --group` in another process have. */
static void test_two_handles(void)
{
    setup("cat-two");
    struct mq_catalog *a = open_rw();
    struct mq_catalog *b = open_rw();
    struct mq_catalog_topic t;
    int64_t off;

    CU_ASSERT_EQUAL(mq_catalog_topic_create(a, "t", 2, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_get(b, "t", &t), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(b, "t", 2, 0, 0), MQ_ERR_EXISTS);

    CU_ASSERT_EQUAL(mq_catalog_offset_commit(a, "g", "t", 0, 5, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(b, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 5);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(b, "g", "t", 0, 6, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(a, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 6);

    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(b, "c", "k", "v", 1), MQ_OK);
    void *v = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(a, "c", "k", &v, &len), MQ_OK);
    CU_ASSERT_EQUAL(len, 1);
    free(v);

    CU_ASSERT_EQUAL(mq_catalog_topic_delete(b, "t"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_get(a, "t", &t), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(a, "g", "t", 0, &off, NULL, NULL), MQ_ERR_NOENT);

    mq_catalog_close(a);
    mq_catalog_close(b);
    teardown();
}

#define ROUNDS 150

struct writer {
    struct mq_catalog *cat;
    int32_t partition;
    int failures;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 1; i <= ROUNDS; i++) {
        struct mq_offset_commit c[2] = {
            {.topic = "t", .partition = w->partition, .offset = i},
            {.topic = "t", .partition = w->partition + 2, .offset = i},
        };
        if (mq_catalog_offset_commit_many(w->cat, "g", c, 2) != MQ_OK || c[0].err || c[1].err)
            w->failures++;
        if (mq_catalog_checkpoint_put(w->cat, "conn", w->partition ? "k1" : "k0", &i, sizeof i) != MQ_OK)
            w->failures++;
    }
    return NULL;
}

/*
 * Concurrent writers: two handles (two "processes") and two threads sharing a third handle all commit at
 * once. The busy timeout and BEGIN IMMEDIATE must make every commit succeed, none fail with MQ_ERR_BUSY.
 */
static void test_concurrent_writers(void)
{
    setup("cat-conc");
    struct mq_catalog *a = open_rw();
    struct mq_catalog *b = open_rw();
    struct mq_catalog *shared = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(a, "t", 8, 0, 0), MQ_OK);

    struct writer w[4] = {{a, 0, 0}, {b, 1, 0}, {shared, 4, 0}, {shared, 5, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(w[i].failures, 0);

    struct mq_group_offset *offs = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(mq_catalog_offset_list(b, "g", &offs, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 8);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(offs[i].offset, ROUNDS);
    mq_catalog_offsets_free(offs, n);

    mq_catalog_close(a);
    mq_catalog_close(b);
    mq_catalog_close(shared);
    teardown();
}

static void test_checkpoints(void)
{
    setup("cat-ckpt");
    struct mq_catalog *cat = open_rw();
    unsigned char blob[1000];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)(i * 7); /* includes zeros and 0xff */
    void *v = NULL;
    size_t len = 0;

    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "mqtt1", "session", &v, &len), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "mqtt1", "session", blob, sizeof blob), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "mqtt1", "session", &v, &len), MQ_OK);
    CU_ASSERT_EQUAL(len, sizeof blob);
    CU_ASSERT(v && memcmp(v, blob, sizeof blob) == 0);
    free(v);

    /* Replacing, an empty value, keys per connector. */
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "mqtt1", "session", "\0x\0", 3), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "mqtt1", "session", &v, &len), MQ_OK);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT(v && memcmp(v, "\0x\0", 3) == 0);
    free(v);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "mqtt1", "empty", NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "mqtt1", "empty", &v, &len), MQ_OK);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NOT_NULL(v);
    CU_ASSERT_STRING_EQUAL(v, ""); /* values come NUL-terminated */
    free(v);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "mqtt2", "session", &v, &len), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, NULL, "k", "x", 1), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "c", "k", NULL, 1), MQ_ERR_INVAL);

    /* Listing by connector prefix, ordered by connector and key; '_' and '%' are plain characters. */
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "forward.b", "t:0", "12", 2), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "forward.a", "state", "delivering", 10), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "forward.a", "t:1", "7", 1), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "forwardXa", "t:1", "7", 1), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "FORWARD.c", "t:1", "7", 1), MQ_OK);
    struct mq_checkpoint *cps = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_list(cat, "forward.", &cps, &n), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(cps[0].connector, "forward.a");
    CU_ASSERT_STRING_EQUAL(cps[0].key, "state");
    CU_ASSERT_STRING_EQUAL(cps[0].value, "delivering");
    CU_ASSERT_EQUAL(cps[0].len, 10);
    CU_ASSERT(cps[0].updated_ms > 0);
    CU_ASSERT_STRING_EQUAL(cps[1].key, "t:1");
    CU_ASSERT_STRING_EQUAL(cps[2].connector, "forward.b");
    CU_ASSERT_STRING_EQUAL(cps[2].value, "12");
    mq_catalog_checkpoints_free(cps, n);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_list(cat, "forward_", &cps, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(cps);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_list(cat, "", &cps, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 7); /* and the empty value comes back as "" */
    CU_ASSERT(n == 7 && strcmp(cps[6].key, "session") == 0 && cps[5].len == 0 && cps[5].value[0] == 0);
    mq_catalog_checkpoints_free(cps, n);

    CU_ASSERT_EQUAL(mq_catalog_checkpoint_delete(cat, "mqtt1", "session"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_delete(cat, "mqtt1", "session"), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "mqtt1", "session", &v, &len), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "mqtt1", "empty", &v, &len), MQ_OK);
    free(v);

    mq_catalog_close(cat);
    teardown();
}

static void test_reopen(void)
{
    setup("cat-reopen");
    struct mq_catalog *cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "t", 3, 123, 456), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 2, 99, "x"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(cat, "c", "k", "\x01\x02", 2), MQ_OK);
    mq_catalog_close(cat);

    cat = open_rw();
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, "t", &t), MQ_OK);
    CU_ASSERT_EQUAL(t.partitions, 3);
    CU_ASSERT_EQUAL(t.retention_ms, 123);
    CU_ASSERT_EQUAL(t.retention_bytes, 456);
    int64_t off = 0;
    char *md = NULL;
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(cat, "g", "t", 2, &off, &md, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 99);
    CU_ASSERT_STRING_EQUAL(md, "x");
    free(md);
    void *v = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_get(cat, "c", "k", &v, &len), MQ_OK);
    CU_ASSERT(len == 2 && memcmp(v, "\x01\x02", 2) == 0);
    free(v);
    mq_catalog_close(cat);
    teardown();
}

static void test_readonly(void)
{
    setup("cat-ro");
    char errstr[256] = "";
    struct mq_catalog *ro = NULL;
    /* Read-only never creates. */
    CU_ASSERT_EQUAL(
        mq_catalog_open(dbpath, MQ_CATALOG_READONLY | MQ_CATALOG_CREATE, &ro, errstr, sizeof errstr),
        MQ_ERR_NOENT);
    CU_ASSERT_PTR_NULL(ro);

    struct mq_catalog *rw = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(rw, "t", 1, 0, 0), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(rw, "g", "t", 0, 1, NULL), MQ_OK);

    CU_ASSERT_EQUAL_FATAL(mq_catalog_open(dbpath, MQ_CATALOG_READONLY, &ro, errstr, sizeof errstr), MQ_OK);
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_catalog_topic_get(ro, "t", &t), MQ_OK);
    int64_t off = 0;
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(ro, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 1);

    /* Every write is refused, with a message. */
    CU_ASSERT_EQUAL(mq_catalog_topic_create(ro, "u", 1, 0, 0), MQ_ERR_READONLY);
    CU_ASSERT(strlen(mq_catalog_errmsg(ro)) > 0);
    CU_ASSERT_EQUAL(mq_catalog_topic_set_retention(ro, "t", 1, 1), MQ_ERR_READONLY);
    CU_ASSERT_EQUAL(mq_catalog_topic_delete(ro, "t"), MQ_ERR_READONLY);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(ro, "g", "t", 0, 2, NULL), MQ_ERR_READONLY);
    CU_ASSERT_EQUAL(mq_catalog_group_delete(ro, "g"), MQ_ERR_READONLY);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_put(ro, "c", "k", "v", 1), MQ_ERR_READONLY);
    CU_ASSERT_EQUAL(mq_catalog_checkpoint_delete(ro, "c", "k"), MQ_ERR_READONLY);

    /* The read-only handle sees what the writer commits afterwards. */
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(rw, "g", "t", 0, 2, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(ro, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 2);
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(rw, "g", "t", 0, &off, NULL, NULL), MQ_OK);
    CU_ASSERT_EQUAL(off, 2);

    mq_catalog_close(ro);
    mq_catalog_close(rw);
    teardown();
}

/* Writes a plain SQLite database at dbpath with the given SQL. */
static void make_db(const char *sql)
{
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(dbpath, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_open_errors(void)
{
    setup("cat-err");
    char errstr[256] = "";
    struct mq_catalog *cat = NULL;
    char path[4200];

    /* A directory that cannot hold the file (its "parent" is a regular file: fails even for root). */
    snprintf(path, sizeof path, "%s/plain", tdir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("not a directory\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/plain/" MQ_CATALOG_FILE, tdir);
    enum mq_err err = mq_catalog_open(path, MQ_CATALOG_CREATE, &cat, errstr, sizeof errstr);
    CU_ASSERT_NOT_EQUAL(err, MQ_OK);
    CU_ASSERT_PTR_NULL(cat);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, path));

    /* A directory where the file should be. */
    err = mq_catalog_open(tdir, MQ_CATALOG_CREATE, &cat, errstr, sizeof errstr);
    CU_ASSERT_NOT_EQUAL(err, MQ_OK);
    CU_ASSERT_PTR_NULL(cat);
    CU_ASSERT(strlen(errstr) > 0);

    /* Not a database at all. */
    f = fopen(dbpath, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 200; i++)
        fputs("this is a text file, not a SQLite database\n", f);
    fclose(f);
    err = mq_catalog_open(dbpath, MQ_CATALOG_CREATE, &cat, errstr, sizeof errstr);
    CU_ASSERT_EQUAL(err, MQ_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(cat);
    remove(dbpath);

    /* Some other application's database. */
    make_db("PRAGMA application_id = 1234; CREATE TABLE x (y)");
    err = mq_catalog_open(dbpath, MQ_CATALOG_CREATE, &cat, errstr, sizeof errstr);
    CU_ASSERT_EQUAL(err, MQ_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "not an mqlog catalog"));
    CU_ASSERT_PTR_NULL(cat);
    remove(dbpath);

    /* A catalog from a newer mqlog. */
    cat = open_rw();
    mq_catalog_close(cat);
    cat = NULL;
    make_db("PRAGMA user_version = 99");
    err = mq_catalog_open(dbpath, MQ_CATALOG_CREATE, &cat, errstr, sizeof errstr);
    CU_ASSERT_EQUAL(err, MQ_ERR_DB);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "newer"));
    CU_ASSERT_PTR_NULL(cat);
    err = mq_catalog_open(dbpath, MQ_CATALOG_READONLY, &cat, errstr, sizeof errstr);
    CU_ASSERT_NOT_EQUAL(err, MQ_OK);
    CU_ASSERT_PTR_NULL(cat);

    CU_ASSERT_EQUAL(mq_catalog_open(NULL, 0, &cat, errstr, sizeof errstr), MQ_ERR_INVAL);
    teardown();
}

/* A writer holding the database locks past the busy timeout makes calls fail with MQ_ERR_BUSY, cleanly. */
static void test_busy(void)
{
    setup("cat-busy");
    struct mq_catalog *cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "t", 1, 0, 0), MQ_OK);

    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(dbpath, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    /* Reads go on beside the writer (WAL); writes wait for the timeout, then fail. */
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, "t", &t), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 0, 1, NULL), MQ_ERR_BUSY);
    CU_ASSERT(strlen(mq_catalog_errmsg(cat)) > 0);

    /* Once the lock is gone the same handle works (it was not left inside a transaction). */
    CU_ASSERT_EQUAL(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(mq_catalog_offset_commit(cat, "g", "t", 0, 1, NULL), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "u", 1, 0, 0), MQ_OK);
    mq_catalog_close(cat);
    teardown();
}

/* A credential of user name for mechanism whose bytes are derived from seed. */
static struct mq_catalog_user make_user(const char *name, const char *mechanism, uint8_t seed)
{
    struct mq_catalog_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.mechanism, sizeof u.mechanism, "%s", mechanism);
    u.salt_len = 16;
    memset(u.salt, seed, u.salt_len);
    u.iterations = 4096;
    u.key_len = strcmp(mechanism, "SCRAM-SHA-512") == 0 ? 64 : 32;
    memset(u.stored_key, seed + 1, u.key_len);
    memset(u.server_key, seed + 2, u.key_len);
    return u;
}

static void test_users(void)
{
    setup("cat-users");
    struct mq_catalog *cat = open_rw();
    struct mq_catalog_user both[2] = {make_user("alice", "SCRAM-SHA-256", 1),
                                      make_user("alice", "SCRAM-SHA-512", 2)};
    bool created = false;
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "alice", both, 2, &created), MQ_OK);
    CU_ASSERT(created);
    struct mq_catalog_user bob = make_user("bob", "SCRAM-SHA-256", 7);
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "bob", &bob, 1, NULL), MQ_OK);

    struct mq_catalog_user u;
    CU_ASSERT_EQUAL(mq_catalog_user_get(cat, "alice", "SCRAM-SHA-512", &u), MQ_OK);
    CU_ASSERT_STRING_EQUAL(u.name, "alice");
    CU_ASSERT_EQUAL(u.key_len, 64);
    CU_ASSERT_EQUAL(u.salt_len, 16);
    CU_ASSERT_EQUAL(u.iterations, 4096);
    CU_ASSERT(u.stored_key[63] == 3 && u.server_key[0] == 4 && u.salt[15] == 2);
    CU_ASSERT(u.created_ms > 1600000000000LL);
    CU_ASSERT_EQUAL(mq_catalog_user_get(cat, "bob", "SCRAM-SHA-512", &u), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_user_get(cat, "carol", "SCRAM-SHA-256", &u), MQ_ERR_NOENT);

    struct mq_catalog_user *all = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(mq_catalog_user_list(cat, &all, &n), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT(strcmp(all[0].name, "alice") == 0 && strcmp(all[0].mechanism, "SCRAM-SHA-256") == 0);
    CU_ASSERT(strcmp(all[1].name, "alice") == 0 && strcmp(all[1].mechanism, "SCRAM-SHA-512") == 0);
    CU_ASSERT_STRING_EQUAL(all[2].name, "bob");
    free(all);

    /* A new password replaces every credential of the user: the SHA-512 one set before is gone. */
    struct mq_catalog_user again = make_user("alice", "SCRAM-SHA-256", 9);
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "alice", &again, 1, &created), MQ_OK);
    CU_ASSERT(!created);
    CU_ASSERT_EQUAL(mq_catalog_user_get(cat, "alice", "SCRAM-SHA-512", &u), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_user_get(cat, "alice", "SCRAM-SHA-256", &u), MQ_OK);
    CU_ASSERT_EQUAL(u.salt[0], 9);

    /* Refused: too few iterations, a key that does not fit the mechanism, another user's entry, an unknown
     * mechanism, a mechanism twice. Nothing changed. */
    struct mq_catalog_user bad = make_user("alice", "SCRAM-SHA-256", 5);
    bad.iterations = 4095;
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "alice", &bad, 1, NULL), MQ_ERR_INVAL);
    bad = make_user("alice", "SCRAM-SHA-256", 5);
    bad.key_len = 64;
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "alice", &bad, 1, NULL), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "bob", &again, 1, NULL), MQ_ERR_INVAL);
    bad = make_user("alice", "PLAIN", 5);
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "alice", &bad, 1, NULL), MQ_ERR_INVAL);
    struct mq_catalog_user twice[2] = {again, again};
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "alice", twice, 2, NULL), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "", &again, 1, NULL), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_catalog_user_get(cat, "alice", "SCRAM-SHA-256", &u), MQ_OK);
    CU_ASSERT_EQUAL(u.salt[0], 9);

    CU_ASSERT_EQUAL(mq_catalog_user_delete(cat, "alice"), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_user_delete(cat, "alice"), MQ_ERR_NOENT);
    CU_ASSERT_EQUAL(mq_catalog_user_get(cat, "alice", "SCRAM-SHA-256", &u), MQ_ERR_NOENT);
    mq_catalog_close(cat);

    /* A read-only handle reads users and refuses changes. */
    char errstr[256] = "";
    struct mq_catalog *ro = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_catalog_open(dbpath, MQ_CATALOG_READONLY, &ro, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_user_get(ro, "bob", "SCRAM-SHA-256", &u), MQ_OK);
    CU_ASSERT_EQUAL(mq_catalog_user_set(ro, "bob", &bob, 1, NULL), MQ_ERR_READONLY);
    CU_ASSERT_EQUAL(mq_catalog_user_delete(ro, "bob"), MQ_ERR_READONLY);
    mq_catalog_close(ro);
    teardown();
}

/* A catalog of schema version 1 (before users) gains the users table at its next read-write open and keeps
 * its rows; a read-only open asks for that first. */
static void test_migrate_v1(void)
{
    setup("cat-v1");
    struct mq_catalog *cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_topic_create(cat, "t", 2, 0, 0), MQ_OK);
    mq_catalog_close(cat);
    make_db("DROP TABLE users; DROP TABLE live_groups; PRAGMA user_version = 1");

    char errstr[256] = "";
    struct mq_catalog *ro = NULL;
    CU_ASSERT_EQUAL(mq_catalog_open(dbpath, MQ_CATALOG_READONLY, &ro, errstr, sizeof errstr), MQ_ERR_DB);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "read-write"));

    cat = open_rw();
    CU_ASSERT_EQUAL(mq_catalog_schema_version(cat), 3);
    struct mq_catalog_topic t;
    CU_ASSERT_EQUAL(mq_catalog_topic_get(cat, "t", &t), MQ_OK);
    CU_ASSERT_EQUAL(t.partitions, 2);
    struct mq_catalog_user bob = make_user("bob", "SCRAM-SHA-256", 7);
    CU_ASSERT_EQUAL(mq_catalog_user_set(cat, "bob", &bob, 1, NULL), MQ_OK);
    mq_catalog_close(cat);
    teardown();
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_open_create),
        MQ_TEST(test_topics),
        MQ_TEST(test_offsets),
        MQ_TEST(test_offsets_many),
        MQ_TEST(test_two_handles),
        MQ_TEST(test_concurrent_writers),
        MQ_TEST(test_checkpoints),
        MQ_TEST(test_reopen),
        MQ_TEST(test_readonly),
        MQ_TEST(test_open_errors),
        MQ_TEST(test_busy),
        MQ_TEST(test_users),
        MQ_TEST(test_migrate_v1),
        MQ_TEST(test_offset_reset_and_live_groups),
        MQ_TEST_END,
    };
    return mq_test_run("catalog", tests);
}
