/*
 * test_tool_forward.c - `mqlog forward status` beside a live writer: checkpoints written with the catalog
 * API as a forwarder writes them, the lag figures (records, bytes exact to the batch, seconds) checked
 * against what the test appended, forwarders of deleted topics and partitions, records deleted before they
 * were forwarded, a forwarder picked by NAME, and the log's mq_part_bytes_from() under it.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "testutil.h"
#include "tool/tool.h"

#define TS0 1700000000000LL /* record i of a partition has timestamp TS0 + i seconds */

static char *g_dir;
static struct mq_store *g_store;

/* Appends records [from, to) to part, one batch each; returns the partition's bytes after. */
static int64_t append(struct mq_part *part, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        char v[64];
        int n = snprintf(v, sizeof v, "value-%" PRId64, i);
        struct mq_record r = {TS0 + i * 1000, NULL, -1, v, n, NULL, 0};
        CU_ASSERT_EQUAL(mq_part_append(part, &r, 1, NULL), MQ_OK);
    }
    CU_ASSERT_EQUAL(mq_part_flush(part), MQ_OK);
    struct mq_part_stats st;
    CU_ASSERT_EQUAL(mq_part_stats(part, &st), MQ_OK);
    return st.bytes;
}

static void put(const char *connector, const char *key, const char *value)
{
    CU_ASSERT_EQUAL(
        mq_catalog_checkpoint_put(mq_store_catalog(g_store), connector, key, value, strlen(value)), MQ_OK);
}

/* Runs `mqlog forward ARGS...` with its stdout in a buffer; returns the exit status. */
static int run(char **out, int argc, ...)
{
    char *argv[16] = {"forward"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    char path[4096];
    snprintf(path, sizeof path, "%s/out", g_dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    optind = 0; /* getopt_long starts afresh */
    int rc = mq_cmd_forward(argc + 1, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    *out = calloc(1, (size_t)len + 1);
    CU_ASSERT_FATAL(*out != NULL);
    CU_ASSERT(pread(fd, *out, (size_t)len, 0) == len);
    close(fd);
    return rc;
}

static bool has(const char *out, const char *s)
{
    if (strstr(out, s))
        return true;
    fprintf(stderr, "missing '%s' in:\n%s\n", s, out);
    return false;
}

static void test_forward_status(void)
{
    g_dir = mq_test_tmpdir("fwdstatus");
    struct mq_log_conf conf;
    mq_log_conf_defaults(&conf);
    conf.segment_bytes = 4096; /* several segments, so that bytes are summed across them */
    char errstr[512];
    CU_ASSERT_FATAL(mq_store_open(g_dir, MQ_STORE_WRITE, &conf, &g_store, errstr, sizeof errstr) == MQ_OK);
    CU_ASSERT_FATAL(mq_store_topic_create(g_store, "t", 2, NULL, errstr, sizeof errstr) == MQ_OK);
    CU_ASSERT_FATAL(mq_store_topic_create(g_store, "u", 1, NULL, errstr, sizeof errstr) == MQ_OK);
    struct mq_part *t0, *t1, *u0;
    CU_ASSERT_FATAL(mq_store_part(g_store, "t", 0, &t0) == MQ_OK);
    CU_ASSERT_FATAL(mq_store_part(g_store, "t", 1, &t1) == MQ_OK);
    CU_ASSERT_FATAL(mq_store_part(g_store, "u", 0, &u0) == MQ_OK);
    int64_t b40 = append(t0, 0, 40), b100 = append(t0, 40, 100);
    append(t1, 0, 50);
    append(u0, 0, 200);
    struct mq_retention r = {0, 4096};
    mq_part_set_retention(u0, &r);
    CU_ASSERT(mq_part_apply_retention(u0, TS0, NULL) == MQ_OK);
    struct mq_part_stats ust;
    CU_ASSERT(mq_part_stats(u0, &ust) == MQ_OK && ust.start_offset > 10);

    /* the log's side: bytes from an offset are exact to the batch, and a batch counts whole */
    int64_t bytes = -1, bytes2 = -1;
    CU_ASSERT(mq_part_bytes_from(t0, 40, &bytes) == MQ_OK && bytes == b100 - b40);
    CU_ASSERT(mq_part_bytes_from(t0, 0, &bytes) == MQ_OK && bytes == b100);
    CU_ASSERT(mq_part_bytes_from(t0, 100, &bytes) == MQ_OK && bytes == 0);
    CU_ASSERT(mq_part_bytes_from(t0, 101, &bytes) == MQ_ERR_RANGE);
    CU_ASSERT(mq_part_bytes_from(u0, ust.start_offset - 1, &bytes) == MQ_ERR_RANGE);
    struct mq_record batch[10];
    for (int i = 0; i < 10; i++)
        batch[i] = (struct mq_record){TS0 + (100 + i) * 1000, NULL, -1, "x", 1, NULL, 0};
    CU_ASSERT(mq_part_append(t0, batch, 10, NULL) == MQ_OK && mq_part_flush(t0) == MQ_OK);
    CU_ASSERT(mq_part_bytes_from(t0, 100, &bytes) == MQ_OK && mq_part_bytes_from(t0, 105, &bytes2) == MQ_OK);
    CU_ASSERT(bytes > 0 && bytes == bytes2);
    int64_t behind40 = b100 - b40 + bytes; /* t-0 from 40: 60 single batches and the batch of 10 */

    /* checkpoints as forwarders write them */
    put("forward.central", "state", "delivering");
    put("forward.central", "t:0", "40");
    put("forward.central", "t:1", "50");
    put("forward.central", "gone:0", "5");
    put("forward.central", "t:7", "3");
    put("forward.backup", "state", "outage since 2026-12-06T20:11:02Z: Local: Broker transport failure");
    put("forward.backup", "u:0", "0");
    put("forward.backup", "t:0", "oops");
    put("forward.centralx", "t:0", "110");
    put("mqtt.site", "session", "x"); /* not a forwarder */

    /* JSON: every figure */
    char *out = NULL, expect[512];
    CU_ASSERT_EQUAL(run(&out, 4, "status", "-d", g_dir, "--json"), MQ_EXIT_OK);
    CU_ASSERT(has(out, "{\"forwarders\":[{\"name\":\"backup\",\"state\":\"outage since 2026-12-06T20:11:02Z: "
                       "Local: Broker transport failure\",\"partitions\":[{\"topic\":\"t\",\"partition\":0,"
                       "\"checkpoint\":null,"));
    CU_ASSERT(has(out, "\"status\":\"bad_checkpoint\""));
    snprintf(expect, sizeof expect,
             "{\"topic\":\"u\",\"partition\":0,\"checkpoint\":0,\"start_offset\":%" PRId64
             ",\"end_offset\":200,\"records_behind\":%" PRId64 ",",
             ust.start_offset, 200 - ust.start_offset);
    CU_ASSERT(has(out, expect));
    snprintf(expect, sizeof expect,
             "\"seconds_behind\":%" PRId64 ".000,\"status\":\"records_lost\",\"records_lost\":%" PRId64 "}",
             199 - ust.start_offset, ust.start_offset);
    CU_ASSERT(has(out, expect));
    CU_ASSERT(has(out, "{\"name\":\"central\",\"state\":\"delivering\",\"partitions\":[{\"topic\":\"gone\","
                       "\"partition\":0,\"checkpoint\":5,\"start_offset\":null,\"end_offset\":null,"
                       "\"records_behind\":null,\"bytes_behind\":null,\"seconds_behind\":null,\"status\":"
                       "\"topic_deleted\",\"records_lost\":0}"));
    snprintf(expect, sizeof expect,
             ",{\"topic\":\"t\",\"partition\":0,\"checkpoint\":40,\"start_offset\":0,\"end_offset\":110,"
             "\"records_behind\":70,\"bytes_behind\":%" PRId64 ",\"seconds_behind\":69.000,\"status\":\"ok\"",
             behind40);
    CU_ASSERT(has(out, expect));
    CU_ASSERT(has(out,
                  "{\"topic\":\"t\",\"partition\":1,\"checkpoint\":50,\"start_offset\":0,\"end_offset\":50,"
                  "\"records_behind\":0,\"bytes_behind\":0,\"seconds_behind\":0.000,\"status\":\"ok\""));
    /* partitions in numeric order: t:7 after t:1 */
    CU_ASSERT(has(out, "{\"topic\":\"t\",\"partition\":7,\"checkpoint\":3,\"start_offset\":null"));
    CU_ASSERT(has(out, "\"status\":\"partition_deleted\",\"records_lost\":0}]}"));
    CU_ASSERT(has(out, "{\"name\":\"centralx\""));
    CU_ASSERT(strstr(out, "mqtt") == NULL);
    free(out);

    /* the table, one forwarder by NAME */
    CU_ASSERT_EQUAL(run(&out, 4, "status", "-d", g_dir, "central"), MQ_EXIT_OK);
    CU_ASSERT(has(out, "FORWARDER  STATE\ncentral    delivering\n"));
    CU_ASSERT(has(out, "FORWARDER TOPIC  PART   CHECKPOINT          END RECORDS_BEHIND   BYTES_BEHIND "
                       "SECONDS_BEHIND  NOTE\n"));
    snprintf(expect, sizeof expect,
             "central   t         0           40          110             70 %14" PRId64 "           69.0\n",
             behind40);
    CU_ASSERT(has(out, expect));
    CU_ASSERT(has(out, "central   gone      0            5            -              -              -"
                       "              -  topic no longer exists\n"));
    CU_ASSERT(has(out, "partition no longer exists\n"));
    CU_ASSERT(strstr(out, "centralx") == NULL && strstr(out, "backup") == NULL);
    free(out);
    CU_ASSERT_EQUAL(run(&out, 4, "status", "-d", g_dir, "backup"), MQ_EXIT_OK);
    snprintf(expect, sizeof expect, "%" PRId64 " records deleted before they were forwarded\n",
             ust.start_offset);
    CU_ASSERT(has(out, expect));
    CU_ASSERT(has(out, "checkpoint is not an offset: 'oops'\n"));
    free(out);

    /* errors */
    CU_ASSERT_EQUAL(run(&out, 4, "status", "-d", g_dir, "nosuch"), MQ_EXIT_FAIL);
    free(out);
    CU_ASSERT_EQUAL(run(&out, 2, "status", "central"), MQ_EXIT_USAGE);
    free(out);
    CU_ASSERT_EQUAL(run(&out, 1, "stats"), MQ_EXIT_USAGE);
    free(out);
    CU_ASSERT_EQUAL(run(&out, 5, "status", "-d", g_dir, "a", "b"), MQ_EXIT_USAGE);
    free(out);

    CU_ASSERT(mq_store_close(g_store) == MQ_OK);
    mq_test_rmdir(g_dir);
}

/* A data directory no forwarder has written to: an empty list, not an error. */
static void test_forward_status_none(void)
{
    g_dir = mq_test_tmpdir("fwdnone");
    char errstr[512];
    CU_ASSERT_FATAL(mq_store_open(g_dir, MQ_STORE_WRITE, NULL, &g_store, errstr, sizeof errstr) == MQ_OK);
    char *out = NULL;
    CU_ASSERT_EQUAL(run(&out, 4, "status", "-d", g_dir, "--json"), MQ_EXIT_OK);
    CU_ASSERT_STRING_EQUAL(out, "{\"forwarders\":[]}\n");
    free(out);
    CU_ASSERT_EQUAL(run(&out, 3, "status", "-d", g_dir), MQ_EXIT_OK);
    CU_ASSERT_STRING_EQUAL(out, "no forwarder has stored a checkpoint yet\n");
    free(out);
    CU_ASSERT(mq_store_close(g_store) == MQ_OK);
    mq_test_rmdir(g_dir);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_forward_status),
        MQ_TEST(test_forward_status_none),
        MQ_TEST_END,
    };
    return mq_test_run("tool_forward", tests);
}
