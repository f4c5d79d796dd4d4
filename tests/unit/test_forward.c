/*
 * test_forward.c - the forwarder against librdkafka's mock cluster, in process: records of a local log
 * reach the remote topic once each, with their key, value, timestamp and headers plus the mqlog.*
 * coordinates; a restart resumes from the remote tail (exactly_once) or the checkpoint (at_least_once);
 * a remote topic with too few partitions is reported in the state line. The crash, outage and backfill
 * cases with a real mqlogd are in tests/integration/forward/.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/forward.h"
#include "route/placement.h"
#include "store/store.h"
#include "testutil.h"
#include "util/diag.h"
#include "util/parse.h"

#define NPART 2

/* partitioning: key runs use a remote topic with a different partition count */
static int g_remote_parts = NPART;
static bool g_key_mode;

struct mock {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
};

static void mock_start(struct mock *m, const char *topic, int partitions)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    CU_ASSERT_FATAL(m->rk != NULL);
    m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
    CU_ASSERT_FATAL(m->mc != NULL);
    m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->mc);
    CU_ASSERT_FATAL(rd_kafka_mock_topic_create(m->mc, topic, partitions, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void mock_stop(struct mock *m)
{
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->rk);
}

/* The codec of the local batches append() writes: with one, records go 10 to a batch (so that they shrink).
 */
static int g_local_codec = MQ_CODEC_NONE;

static void append(struct mq_store *store, int32_t partition, int64_t first, int n)
{
    struct mq_part *part;
    CU_ASSERT_FATAL(mq_store_part(store, "t", partition, &part) == MQ_OK);
    mq_part_set_compression(part, g_local_codec);
    int per = g_local_codec == MQ_CODEC_NONE ? 1 : 10;
    struct mq_header h = {.key = "mqtt.topic", .key_len = 10, .value = "a/b", .value_len = 3};
    for (int i = 0; i < n; i += per) {
        char key[10][32], value[10][64];
        struct mq_record r[10];
        int k = 0;
        for (; k < per && i + k < n; k++) {
            snprintf(key[k], sizeof key[k], "k%" PRId64, first + i + k);
            snprintf(value[k], sizeof value[k], "value %d/%" PRId64, partition, first + i + k);
            r[k] = (struct mq_record){.timestamp = 1700000000000 + first + i + k,
                                      .key = (const uint8_t *)key[k],
                                      .key_len = (int32_t)strlen(key[k]),
                                      .value = (const uint8_t *)value[k],
                                      .value_len = (int32_t)strlen(value[k]),
                                      .headers = &h,
                                      .header_count = 1};
        }
        CU_ASSERT_FATAL(mq_part_append(part, r, (size_t)k, NULL) == MQ_OK);
    }
    CU_ASSERT(mq_part_flush(part) == MQ_OK);
}

static const char *hdr(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v;
    size_t n;
    if (rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || n >= size)
        return NULL;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

/* Reads the remote topic until `want` records arrived (or 60 s passed); counts[p][offset] gets how often
 * local offset `offset` of partition p arrived, and every record is checked against what append() wrote. */
static int consume(const char *bootstrap, const char *topic, int want, int (*counts)[4096])
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "test", NULL, 0);
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    CU_ASSERT_FATAL(c != NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(g_remote_parts);
    for (int p = 0; p < g_remote_parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    int got = 0;
    int64_t deadline = mq_mono_ms() + 60000;
    while (got < want && mq_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m)
            continue;
        if (!m->err) {
            rd_kafka_headers_t *h = NULL;
            char site[64], ltopic[64], part[16], off[32], mt[16];
            CU_ASSERT_FATAL(rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR);
            CU_ASSERT(hdr(h, "mqlog.site", site, sizeof site) && strcmp(site, "plant-7") == 0);
            CU_ASSERT(hdr(h, "mqlog.topic", ltopic, sizeof ltopic) && strcmp(ltopic, "t") == 0);
            CU_ASSERT(hdr(h, "mqtt.topic", mt, sizeof mt) && strcmp(mt, "a/b") == 0);
            CU_ASSERT_FATAL(hdr(h, "mqlog.partition", part, sizeof part) &&
                            hdr(h, "mqlog.offset", off, sizeof off));
            int p = atoi(part);
            int64_t o = atoll(off);
            int want_partition = g_key_mode ? mq_partition_for_key(m->key, m->key_len, g_remote_parts) : p;
            CU_ASSERT(m->partition == want_partition); /* key: Kafka's default partitioner; same: p */
            CU_ASSERT_FATAL(p >= 0 && p < NPART && o >= 0 && o < 4096);
            counts[p][o]++;
            char key[32], value[64];
            snprintf(key, sizeof key, "k%" PRId64, o);
            snprintf(value, sizeof value, "value %d/%" PRId64, p, o);
            CU_ASSERT(m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0);
            CU_ASSERT(m->len == strlen(value) && memcmp(m->payload, value, m->len) == 0);
            rd_kafka_timestamp_type_t tt;
            CU_ASSERT(rd_kafka_message_timestamp(m, &tt) == 1700000000000 + o);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return got;
}

static struct mq_config *config(const char *bootstrap, enum mq_forward_mode mode)
{
    static char *topics[] = {"t*"};
    struct mq_config *cfg = calloc(1, sizeof *cfg);
    struct mq_config_forward *fc = calloc(1, sizeof *fc);
    cfg->site = "plant-7";
    cfg->forwards = fc;
    cfg->nforwards = 1;
    fc->name = "central";
    fc->bootstrap = (char *)bootstrap;
    fc->topics = topics;
    fc->ntopics = 1;
    fc->to = "{site}.{topic}";
    fc->mode = mode;
    fc->compression = "zstd";
    fc->hold_retention = true;
    static char *dbg_names[] = {"debug"};
    static char *dbg_values[1];
    if ((dbg_values[0] = getenv("MQ_TEST_RDKAFKA_DEBUG")) != NULL) { /* e.g. eos,msg,broker */
        fc->prop_names = dbg_names;
        fc->prop_values = dbg_values;
        fc->nprops = 1;
        mq_diag_level = MQ_LV_DEBUG;
    }
    return cfg;
}

static void config_free(struct mq_config *cfg)
{
    free(cfg->forwards);
    free(cfg);
}

static int64_t checkpoint(struct mq_store *store, const char *key)
{
    void *v = NULL;
    size_t n;
    int64_t x = -1;
    if (mq_catalog_checkpoint_get(mq_store_catalog(store), "forward.central", key, &v, &n) == MQ_OK)
        mq_parse_int64(v, 0, INT64_MAX, &x);
    free(v);
    return x;
}

struct ckpt_wait {
    struct mq_store *store;
    int64_t want;
};

static bool ckpts_reached(void *opaque)
{
    struct ckpt_wait *w = opaque;
    return checkpoint(w->store, "t:0") == w->want && checkpoint(w->store, "t:1") == w->want;
}

struct state_wait {
    struct mq_store *store;
    const char *needle;
};

static bool state_has(void *opaque)
{
    struct state_wait *w = opaque;
    void *v = NULL;
    size_t n;
    bool yes =
        mq_catalog_checkpoint_get(mq_store_catalog(w->store), "forward.central", "state", &v, &n) == MQ_OK &&
        strstr(v, w->needle) != NULL;
    free(v);
    return yes;
}

/* What every test sets up: the mock cluster with remote topic plant-7.t (remote_parts partitions; 0: no
 * cluster, bootstrap instead), a data directory with local topic t, a forwarder configuration and a set. */
struct fx {
    struct mock m;
    bool cluster;
    char *dir;
    struct mq_store *store;
    struct mq_config *cfg;
    struct mq_fwd_set *set;
    char why[512];
};

static void fx_open(struct fx *x, int remote_parts, const char *bootstrap, enum mq_forward_mode mode)
{
    memset(x, 0, sizeof *x);
    x->cluster = remote_parts > 0;
    if (x->cluster) {
        mock_start(&x->m, "plant-7.t", remote_parts);
        bootstrap = x->m.bootstrap;
    }
    x->dir = mq_test_tmpdir("fwd");
    CU_ASSERT_FATAL(mq_store_open(x->dir, MQ_STORE_WRITE, NULL, &x->store, x->why, sizeof x->why) == MQ_OK);
    CU_ASSERT_FATAL(mq_store_topic_create(x->store, "t", NPART, NULL, x->why, sizeof x->why) == MQ_OK);
    x->cfg = config(bootstrap, mode);
    CU_ASSERT_FATAL(mq_fwd_set_new(x->store, &x->set) == MQ_OK);
}

static void fx_apply(struct fx *x)
{
    CU_ASSERT_FATAL(mq_fwd_set_apply(x->set, x->cfg, x->why, sizeof x->why) == MQ_OK);
}

static void fx_append_all(struct fx *x, int64_t first, int n)
{
    for (int p = 0; p < NPART; p++)
        append(x->store, p, first, n);
}

static void fx_wait_ckpts(struct fx *x, int64_t want)
{
    struct ckpt_wait w = {x->store, want};
    CU_ASSERT(mq_test_wait(ckpts_reached, &w, 60000));
}

/* Reads the remote topic and checks that offsets [0, per_part) of every local partition arrived once. */
static void fx_expect_once(struct fx *x, int per_part)
{
    static int counts[NPART][4096];
    memset(counts, 0, sizeof counts);
    CU_ASSERT(consume(x->m.bootstrap, "plant-7.t", per_part * NPART, counts) == per_part * NPART);
    for (int p = 0; p < NPART; p++)
        for (int o = 0; o < per_part; o++)
            if (counts[p][o] != 1) {
                fprintf(stderr, "partition %d offset %d arrived %d times\n", p, o, counts[p][o]);
                CU_FAIL("a record did not arrive exactly once");
                return;
            }
}

static void fx_close(struct fx *x)
{
    mq_fwd_set_free(x->set);
    config_free(x->cfg);
    CU_ASSERT(mq_store_close(x->store) == MQ_OK);
    mq_test_rmdir(x->dir);
    if (x->cluster)
        mock_stop(&x->m);
}

/* Forwards 2 x 300 records, stops, appends 2 x 200, starts again: every record arrives exactly once. */
static void run_round_trip(enum mq_forward_mode mode, bool key)
{
    struct fx x;
    g_key_mode = key;
    g_remote_parts = key ? 3 : NPART;
    fx_open(&x, g_remote_parts, NULL, mode);
    x.cfg->forwards[0].partitioning = key ? MQ_FWD_PART_KEY : MQ_FWD_PART_SAME;
    fx_append_all(&x, 0, 300);
    fx_apply(&x);
    fx_wait_ckpts(&x, 300);
    mq_fwd_set_free(x.set);

    fx_append_all(&x, 300, 200);
    CU_ASSERT_FATAL(mq_fwd_set_new(x.store, &x.set) == MQ_OK);
    fx_apply(&x);
    fx_wait_ckpts(&x, 500);
    fx_expect_once(&x, 500);
    fx_close(&x);
    g_key_mode = false;
    g_remote_parts = NPART;
}

static void test_exactly_once_round_trip(void)
{
    run_round_trip(MQ_FWD_EXACTLY_ONCE, false);
}

static void test_at_least_once_round_trip(void)
{
    run_round_trip(MQ_FWD_AT_LEAST_ONCE, false);
}

/* Local batches compressed with lz4 (partition 0) and zstd (partition 1): the forwarder reads their records
 * through the cursor and librdkafka compresses them again with the forwarder's own codec (zstd, then gzip).
 */
static void test_compressed_local_batches(void)
{
    struct fx x;
    fx_open(&x, NPART, NULL, MQ_FWD_EXACTLY_ONCE);
    g_local_codec = MQ_CODEC_LZ4;
    append(x.store, 0, 0, 300);
    g_local_codec = MQ_CODEC_ZSTD;
    append(x.store, 1, 0, 300);
    g_local_codec = MQ_CODEC_NONE;
    for (int p = 0; p < NPART; p++) {
        struct mq_part *part;
        CU_ASSERT_FATAL(mq_store_part(x.store, "t", p, &part) == MQ_OK);
        struct mq_cursor *cur;
        CU_ASSERT_FATAL(mq_cursor_open(part, 0, &cur) == MQ_OK);
        struct mq_cursor_batch b;
        int compressed = 0;
        while (mq_cursor_next_batch(cur, &b) == 1)
            compressed += (b.info.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK) ==
                          (p == 0 ? MQ_CODEC_LZ4 : MQ_CODEC_ZSTD);
        CU_ASSERT(compressed == 30);
        mq_cursor_close(cur);
    }
    x.cfg->forwards[0].compression = "gzip";
    fx_apply(&x);
    fx_wait_ckpts(&x, 300);
    fx_expect_once(&x, 300);
    fx_close(&x);
}

/* partitioning: key spreads each local partition over the 3 remote partitions, so the restart's tail scan
 * has to find each local partition's last record among the others. */
static void test_exactly_once_by_key(void)
{
    run_round_trip(MQ_FWD_EXACTLY_ONCE, true);
}

/* The broker goes down while records are being forwarded, 10 Produce requests fail with transport
 * errors (each closes the connection: the integration test injects 50), and the broker comes back: every
 * record arrives exactly once. */
static void test_exactly_once_through_outage(void)
{
    struct fx x;
    fx_open(&x, NPART, NULL, MQ_FWD_EXACTLY_ONCE);
    fx_apply(&x);
    fx_append_all(&x, 0, 500);
    fx_wait_ckpts(&x, 500);

    rd_kafka_mock_broker_set_down(x.m.mc, 1);
    fx_append_all(&x, 500, 500);
    struct state_wait sw = {x.store, "outage since"};
    CU_ASSERT(mq_test_wait(state_has, &sw, 30000));
    rd_kafka_mock_push_request_errors(
        x.m.mc, 0 /* Produce */, 10, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TRANSPORT);
    rd_kafka_mock_broker_set_up(x.m.mc, 1);
    fx_append_all(&x, 1000, 500);
    fx_wait_ckpts(&x, 1500);
    fx_expect_once(&x, 1500);
    fx_close(&x);
}

/* Reloads: a changed forwarder restarts, a removed one stops and keeps its checkpoints, and coming back it
 * resumes where it was: every record arrives exactly once. */
static void test_reload(void)
{
    struct fx x;
    fx_open(&x, NPART, NULL, MQ_FWD_EXACTLY_ONCE);
    fx_apply(&x);
    CU_ASSERT(mq_fwd_set_count(x.set) == 1);
    fx_append_all(&x, 0, 100);
    fx_wait_ckpts(&x, 100);

    x.cfg->forwards[0].compression = "lz4"; /* changed: restarted */
    fx_apply(&x);
    fx_append_all(&x, 100, 100);
    fx_wait_ckpts(&x, 200);

    size_t n = x.cfg->nforwards;
    x.cfg->nforwards = 0; /* removed: stopped, checkpoints kept */
    fx_apply(&x);
    CU_ASSERT(mq_fwd_set_count(x.set) == 0);
    fx_append_all(&x, 200, 100);
    CU_ASSERT(checkpoint(x.store, "t:0") == 200 && checkpoint(x.store, "t:1") == 200);

    x.cfg->nforwards = n; /* back: resumes */
    fx_apply(&x);
    fx_wait_ckpts(&x, 300);
    fx_expect_once(&x, 300);
    fx_close(&x);
}

/* A remote topic with fewer partitions than the local one is an error in the state line, and nothing of
 * the topic is sent. */
static void test_too_few_remote_partitions(void)
{
    struct fx x;
    fx_open(&x, 1, NULL, MQ_FWD_EXACTLY_ONCE);
    append(x.store, 0, 0, 10);
    fx_apply(&x);
    struct state_wait w = {x.store, "has 1 partition, fewer than the 2 of local topic t"};
    CU_ASSERT(mq_test_wait(state_has, &w, 30000));
    fx_close(&x);
}

/* A cluster whose name does not resolve is an outage in the state line, not an error that stops anything;
 * the forwarder stops promptly. */
static void test_unresolvable_cluster(void)
{
    struct fx x;
    fx_open(&x, 0, "no-such-host.invalid:9092", MQ_FWD_EXACTLY_ONCE);
    append(x.store, 0, 0, 10);
    fx_apply(&x);
    struct state_wait w = {x.store, "outage since"};
    CU_ASSERT(mq_test_wait(state_has, &w, 30000));
    int64_t t0 = mq_mono_ms();
    mq_fwd_set_free(x.set);
    x.set = NULL;
    CU_ASSERT(mq_mono_ms() - t0 < 15000);
    fx_close(&x);
}

static void test_remote_name(void)
{
    char buf[256];
    CU_ASSERT(mq_fwd_remote_name("{site}.{topic}", "plant-7", "telemetry.hall", buf, sizeof buf) == MQ_OK);
    CU_ASSERT_STRING_EQUAL(buf, "plant-7.telemetry.hall");
    CU_ASSERT(mq_fwd_remote_name("edge-{topic}", "s", "a", buf, sizeof buf) == MQ_OK);
    CU_ASSERT_STRING_EQUAL(buf, "edge-a");
    CU_ASSERT(mq_fwd_remote_name("{site}/{topic}", "s", "a", buf, sizeof buf) == MQ_ERR_INVAL);
    CU_ASSERT(mq_fwd_remote_name("{site}.{topic}", "s", "a", buf, 3) == MQ_ERR_INVAL); /* "s.a" needs 4 */
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_remote_name),
        MQ_TEST(test_exactly_once_round_trip),
        MQ_TEST(test_at_least_once_round_trip),
        MQ_TEST(test_exactly_once_by_key),
        MQ_TEST(test_compressed_local_batches),
        MQ_TEST(test_reload),
        MQ_TEST(test_too_few_remote_partitions),
        MQ_TEST(test_unresolvable_cluster),
        MQ_TEST(test_exactly_once_through_outage),
        MQ_TEST_END,
    };
    return mq_test_run("forward", tests);
}
