/*
 * test_ingest.c - the ingest layer over a real store in a temporary directory: routing one message into
 * several log topics, topic creation on first use (partitions, retention), the record (key, value,
 * timestamp, headers), tickets and durability, backpressure when the disk is full (a message is stored in
 * all of its topics or none, nothing is lost or doubled once space returns), an existing topic with another
 * partition count, invalid topics, and several threads ingesting while the routes are swapped.
 *
 * The full disk is simulated with RLIMIT_FSIZE: writes past the limit fail with EFBIG, which the log treats
 * as ENOSPC (no root needed, unlike a tmpfs).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "ingest/ingest.h"
#include "route/placement.h"
#include "store/store.h"
#include "testutil.h"
#include "util/diag.h"
#include "util/parse.h"

/* ---- helpers ---- */

static char *write_config(const char *dir, const char *text)
{
    char *path;
    CU_ASSERT_FATAL(asprintf(&path, "%s/mqlogd.yaml", dir) > 0);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
    return path;
}

static void report(void *opaque, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "config: %s\n", msg);
}

static struct mq_ingest_routes *routes_from(const char *dir, const char *yaml)
{
    char *path = write_config(dir, yaml);
    struct mq_config *cfg = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_config_load(path, &cfg, report, NULL), MQ_OK);
    struct mq_ingest_routes *r = NULL;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(mq_ingest_routes_new(cfg, &r, why, sizeof why), MQ_OK);
    mq_config_free(cfg);
    free(path);
    return r;
}

struct env {
    char *dir;
    struct mq_store *store;
    struct mq_ingest *in;
};

static void env_open(struct env *e, const struct mq_log_conf *lc, const char *yaml)
{
    e->dir = mq_test_tmpdir("ingest");
    char data[1024];
    snprintf(data, sizeof data, "%s/data", e->dir);
    char why[256];
    CU_ASSERT_EQUAL_FATAL(mq_store_open(data, MQ_STORE_WRITE, lc, &e->store, why, sizeof why), MQ_OK);
    struct mq_ingest_routes *r = routes_from(e->dir, yaml);
    CU_ASSERT_EQUAL_FATAL(mq_ingest_new(e->store, r, &e->in, why, sizeof why), MQ_OK);
}

static void env_close(struct env *e)
{
    mq_ingest_free(e->in);
    CU_ASSERT_EQUAL(mq_store_close(e->store), MQ_OK);
    mq_test_rmdir(e->dir);
}

static enum mq_err msg_send(struct mq_ingest *in, const char *broker, const char *topic, const char *payload,
                            int qos, bool retain, struct mq_ticket *t)
{
    struct mq_source_msg m = {
        .topic = topic,
        .topic_len = strlen(topic),
        .payload = payload,
        .payload_len = strlen(payload),
        .qos = qos,
        .retain = retain,
        .timestamp = 1700000000123,
    };
    return mq_ingest_message(in, broker, &m, t);
}

/* A record read back, copied. */
struct rec {
    int64_t offset, timestamp;
    char *key; /* NULL: null key */
    char *value;
    int nh;
    char *hk[8], *hv[8];
};

static char *dupn(const void *p, int32_t n)
{
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    return s;
}

static unsigned codecs_read; /* 1 << codec of every batch read_all() read */

/* Reads every durable record of topic/partition into *out (count returned). */
static size_t read_all(struct mq_store *store, const char *topic, int32_t p, struct rec **out)
{
    struct mq_codec_buf scratch = {0};
    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_part(store, topic, p, &part), MQ_OK);
    size_t n = 0, cap = 0;
    struct rec *v = NULL;
    int64_t off = 0;
    for (;;) {
        struct mq_slice sl;
        CU_ASSERT_EQUAL_FATAL(mq_part_read(part, off, 1 << 20, &sl), MQ_OK);
        if (sl.len == 0) {
            mq_slice_release(&sl);
            break;
        }
        uint8_t *buf = malloc(sl.len);
        CU_ASSERT_EQUAL_FATAL(pread(sl.fd, buf, sl.len, sl.pos), (ssize_t)sl.len);
        size_t pos = 0;
        while (pos < sl.len) {
            struct mq_batch_info bi;
            CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(buf + pos, sl.len - pos, &bi), MQ_OK);
            CU_ASSERT_FATAL(mq_batch_crc_ok(buf + pos, &bi));
            struct mq_record_iter it;
            CU_ASSERT_EQUAL_FATAL(mq_record_iter_open(&it, buf + pos, &bi, &scratch), MQ_OK);
            codecs_read |= 1u << (bi.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK);
            struct mq_record_view rv;
            while (mq_record_next(&it, &rv) == 1) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    v = realloc(v, cap * sizeof *v);
                }
                struct rec *r = &v[n++];
                memset(r, 0, sizeof *r);
                r->offset = rv.offset;
                r->timestamp = rv.timestamp;
                r->key = dupn(rv.key, rv.key_len);
                r->value = dupn(rv.value, rv.value_len);
                const uint8_t *c = rv.headers;
                struct mq_header h;
                while (r->nh < 8 && mq_header_next(&c, rv.headers_end, &h) == 1) {
                    r->hk[r->nh] = dupn(h.key, h.key_len);
                    r->hv[r->nh] = dupn(h.value, h.value_len);
                    r->nh++;
                }
            }
            pos += mq_batch_size(&bi);
        }
        free(buf);
        off = sl.next_offset;
        mq_slice_release(&sl);
    }
    mq_codec_buf_free(&scratch);
    *out = v;
    return n;
}

static void recs_free(struct rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
        for (int k = 0; k < v[i].nh; k++) {
            free(v[i].hk[k]);
            free(v[i].hv[k]);
        }
    }
    free(v);
}

static const char *header(const struct rec *r, const char *key)
{
    for (int i = 0; i < r->nh; i++)
        if (strcmp(r->hk[i], key) == 0)
            return r->hv[i] ? r->hv[i] : "(null)";
    return NULL;
}

/* The leading decimal number of one of our payloads, -1 when there is none. */
static long num(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return end == s || errno ? -1 : v;
}

static void wait_ok(struct mq_ingest *in, const struct mq_ticket *t)
{
    CU_ASSERT_EQUAL_FATAL(mq_ingest_wait(in, t, 10000), MQ_OK);
    CU_ASSERT(mq_ingest_durable(in, t));
}

/* ---- routing, creation, records ---- */

static const char *ROUTING_YAML = "brokers:\n"
                                  "  - {name: b1, url: \"mqtt://127.0.0.1:1\"}\n"
                                  "  - {name: b2, url: \"mqtt://127.0.0.1:2\"}\n"
                                  "log: {retention: 7d}\n"
                                  "mappings:\n"
                                  "  - from: \"s/+/temp\"\n"
                                  "    to: temp\n"
                                  "    partitions: 4\n"
                                  "    key: level:2\n"
                                  "    retention: 1d\n"
                                  "  - from: \"s/#\"\n"
                                  "    to: all\n"
                                  "    partitions: 2\n"
                                  "  - from: \"x/+\"\n"
                                  "    to: \"x.{1}\"\n"
                                  "    key: none\n"
                                  "  - from: \"only2/#\"\n"
                                  "    broker: b2\n"
                                  "    to: only2\n"
                                  "unmatched: rest\n";

static void test_routing(void)
{
    struct env e;
    env_open(&e, NULL, ROUTING_YAML);
    struct mq_ticket t;

    /* one message, two topics */
    CU_ASSERT_EQUAL(msg_send(e.in, "b1", "s/a/temp", "21.5", 1, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 2);
    wait_ok(e.in, &t);
    CU_ASSERT_STRING_EQUAL(mq_part_topic(t.at[0].part), "temp");
    CU_ASSERT_EQUAL(mq_part_id(t.at[0].part), mq_partition_for_key("a", 1, 4));
    CU_ASSERT_STRING_EQUAL(mq_part_topic(t.at[1].part), "all");
    CU_ASSERT_EQUAL(mq_part_id(t.at[1].part), mq_partition_for_key("s/a/temp", 8, 2));
    CU_ASSERT_EQUAL(t.at[0].offset, 0);

    /* one topic; a templated topic; the unmatched topic; a mapping of another broker */
    CU_ASSERT_EQUAL(msg_send(e.in, "b1", "s/b/hum", "40", 0, true, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_EQUAL(msg_send(e.in, "b2", "x/q-1", "v", 2, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_STRING_EQUAL(mq_part_topic(t.at[0].part), "x.q-1");
    CU_ASSERT_EQUAL(msg_send(e.in, "b1", "only2/z", "w", 0, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_STRING_EQUAL(mq_part_topic(t.at[0].part), "rest");
    CU_ASSERT_EQUAL(msg_send(e.in, "b2", "only2/z", "w2", 0, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_STRING_EQUAL(mq_part_topic(t.at[0].part), "only2");
    wait_ok(e.in, &t);

    /* extra headers from the connector come after ours */
    struct mq_header extra[2] = {{"color", 5, "red", 3}, {"mqtt.content_type", 17, "text/plain", 10}};
    struct mq_source_msg m = {.topic = "s/c/temp",
                              .topic_len = 8,
                              .payload = "x",
                              .payload_len = 1,
                              .qos = 2,
                              .retain = true,
                              .timestamp = 42,
                              .headers = extra,
                              .header_count = 2};
    CU_ASSERT_EQUAL(mq_ingest_message(e.in, "b2", &m, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 2);
    wait_ok(e.in, &t);

    /* the catalog: created on first use with each mapping's partitions and retention */
    struct mq_catalog_topic ct;
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_get(e.store, "temp", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.partitions, 4);
    CU_ASSERT_EQUAL(ct.retention_ms, 86400000);
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_get(e.store, "all", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.partitions, 2);
    CU_ASSERT_EQUAL(ct.retention_ms, 7LL * 86400000);
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "x.q-1", &ct), MQ_OK);
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "rest", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.partitions, 1);
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "only2", &ct), MQ_OK);

    /* the records */
    struct rec *v;
    size_t n = read_all(e.store, "temp", mq_partition_for_key("a", 1, 4), &v);
    CU_ASSERT_EQUAL_FATAL(n >= 1, true);
    CU_ASSERT_STRING_EQUAL(v[0].key, "a");
    CU_ASSERT_STRING_EQUAL(v[0].value, "21.5");
    CU_ASSERT_EQUAL(v[0].timestamp, 1700000000123);
    CU_ASSERT_EQUAL_FATAL(v[0].nh, 4);
    CU_ASSERT_STRING_EQUAL(v[0].hk[0], "mqtt.topic");
    CU_ASSERT_STRING_EQUAL(v[0].hv[0], "s/a/temp");
    CU_ASSERT_STRING_EQUAL(header(&v[0], "mqtt.qos"), "1");
    CU_ASSERT_STRING_EQUAL(header(&v[0], "mqtt.retain"), "false");
    CU_ASSERT_STRING_EQUAL(header(&v[0], "mqtt.broker"), "b1");
    recs_free(v, n);

    n = read_all(e.store, "all", mq_partition_for_key("s/c/temp", 8, 2), &v);
    const struct rec *rc = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].value, "x") == 0)
            rc = &v[i];
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    CU_ASSERT_EQUAL(rc->nh, 6);
    CU_ASSERT_STRING_EQUAL(header(rc, "mqtt.qos"), "2");
    CU_ASSERT_STRING_EQUAL(header(rc, "mqtt.retain"), "true");
    CU_ASSERT_STRING_EQUAL(header(rc, "mqtt.broker"), "b2");
    CU_ASSERT_STRING_EQUAL(rc->hk[4], "color");
    CU_ASSERT_STRING_EQUAL(rc->hv[4], "red");
    CU_ASSERT_STRING_EQUAL(header(rc, "mqtt.content_type"), "text/plain");
    CU_ASSERT_EQUAL(rc->timestamp, 42);
    CU_ASSERT_STRING_EQUAL(rc->key, "s/c/temp");
    recs_free(v, n);

    n = read_all(e.store, "x.q-1", 0, &v);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_PTR_NULL(v[0].key); /* key: none */
    recs_free(v, n);
    n = read_all(e.store, "rest", 0, &v);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(v[0].key, "only2/z"); /* the unmatched topic is keyed by the MQTT topic */
    recs_free(v, n);

    /* invalid topics are refused; counters */
    CU_ASSERT_EQUAL(msg_send(e.in, "b1", "s/+/temp", "x", 0, false, &t), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(t.n, 0);
    CU_ASSERT_EQUAL(msg_send(e.in, "b1", "", "x", 0, false, &t), MQ_ERR_INVAL);
    struct mq_ingest_stats st;
    mq_ingest_stats(e.in, &st);
    CU_ASSERT_EQUAL(st.messages, 6);
    CU_ASSERT_EQUAL(st.records, 8);
    CU_ASSERT_EQUAL(st.invalid, 2);
    CU_ASSERT_EQUAL(st.topics, 5);
    CU_ASSERT_EQUAL(st.unmatched, 1); /* only2/z from b1, in the unmatched topic */
    env_close(&e);
}

/*
 * What ingest counts (issue 11, finding 10): a message in the unmatched topic is unmatched (it was counted
 * only when dropped); a record larger than the log takes, by its payload or by its headers (MQTT 5 user
 * properties), is refused with MQ_ERR_RANGE, stores nothing and counts as too large; the counters add up.
 */
/* compression and the header policy, per mapping: the codecs reach the batches, the headers kept are those
 * listed, and header_defaults: omit leaves out the ones at their default value. */
static void test_compression_and_headers(void)
{
    struct env e;
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = 60000; /* one batch per topic, whatever the load: the wait below flushes */
    env_open(&e, &lc,
             "brokers:\n"
             "  - {name: b1, url: \"mqtt://127.0.0.1:1\"}\n"
             "log: {compression: zstd}\n"
             "mappings:\n"
             "  - {from: \"a/#\", to: ta, qos: 1}\n"
             "  - {from: \"a/#\", to: tb, compression: lz4, headers: [topic, qos, retain], header_defaults: "
             "omit}\n"
             "  - {from: \"a/#\", to: tc, compression: none, headers: none}\n");
    struct mq_ticket t;
    char payload[64];
    for (int i = 0; i < 40; i++) {
        snprintf(payload, sizeof payload, "{\"t\":21.%d,\"h\":40}", i % 10);
        /* message 0 at QoS 0 and retained: its qos and retain headers are not the defaults */
        CU_ASSERT_EQUAL_FATAL(msg_send(e.in, "b1", "a/x", payload, i == 0 ? 0 : 1, i == 0, &t), MQ_OK);
    }
    wait_ok(e.in, &t);
    struct rec *r;
    codecs_read = 0;
    size_t n = read_all(e.store, "ta", 0, &r);
    CU_ASSERT_EQUAL(n, 40);
    CU_ASSERT(codecs_read & (1u << 4)); /* zstd, the log section's */
    CU_ASSERT(n > 1 && r[1].nh == 4 && header(&r[1], "mqtt.broker") && header(&r[1], "mqtt.retain"));
    recs_free(r, n);
    codecs_read = 0;
    n = read_all(e.store, "tb", 0, &r);
    CU_ASSERT_EQUAL(n, 40);
    CU_ASSERT(codecs_read & (1u << 3)); /* lz4 */
    CU_ASSERT_FATAL(n == 40);
    /* the first keeps qos 0 and retain true; the rest only their topic */
    CU_ASSERT(r[0].nh == 3 && strcmp(header(&r[0], "mqtt.qos"), "0") == 0 &&
              strcmp(header(&r[0], "mqtt.retain"), "true") == 0);
    CU_ASSERT(r[1].nh == 1 && strcmp(header(&r[1], "mqtt.topic"), "a/x") == 0);
    recs_free(r, n);
    codecs_read = 0;
    n = read_all(e.store, "tc", 0, &r);
    CU_ASSERT(n == 40 && codecs_read == 1u && r[0].nh == 0 && r[39].nh == 0);
    recs_free(r, n);
    env_close(&e);
}

static void test_counters(void)
{
    struct env e;
    env_open(&e, NULL,
             "mappings: [{from: \"a/#\", to: a}, {from: \"j/#\", to: j, key: \"json:/k\"}]\n"
             "unmatched: rest\n");
    struct mq_ticket t;
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "a/1", "x", 1, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "x/1", "stray-1", 1, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_STRING_EQUAL(mq_part_topic(t.at[0].part), "rest");
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "x/2", "stray-2", 1, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "a/+", "x", 1, false, &t), MQ_ERR_INVAL);

    /* 70 MiB: MQTT allows it, a record of the log cannot be more than a 64 MiB batch */
    size_t big = (size_t)70 << 20;
    char *payload = calloc(1, big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
    struct mq_source_msg m = {
        .topic = "a/big", .topic_len = 5, .payload = payload, .payload_len = big, .qos = 1};
    CU_ASSERT_EQUAL(mq_ingest_message(e.in, "b", &m, &t), MQ_ERR_RANGE);
    CU_ASSERT_EQUAL(t.n, 0);
    /* the same to the unmatched topic */
    m.topic = "x/big";
    CU_ASSERT_EQUAL(mq_ingest_message(e.in, "b", &m, &t), MQ_ERR_RANGE);
    /* just below a batch, the key taken from the JSON payload doubles it */
    size_t half = (size_t)40 << 20;
    memcpy(payload, "{\"k\":\"", 6);
    memset(payload + 6, 'k', half - 8);
    memcpy(payload + half - 2, "\"}", 2);
    struct mq_source_msg j = {
        .topic = "j/1", .topic_len = 3, .payload = payload, .payload_len = half, .qos = 1};
    CU_ASSERT_EQUAL(mq_ingest_message(e.in, "b", &j, &t), MQ_ERR_RANGE);
    /* small payload, large headers */
    struct mq_header hdr[2] = {{"k1", 2, payload, 35 << 20}, {"k2", 2, payload, 35 << 20}};
    struct mq_source_msg h = {.topic = "a/h",
                              .topic_len = 3,
                              .payload = "x",
                              .payload_len = 1,
                              .qos = 1,
                              .headers = hdr,
                              .header_count = 2};
    CU_ASSERT_EQUAL(mq_ingest_message(e.in, "b", &h, &t), MQ_ERR_RANGE);
    /* a large record that fits is stored */
    m.topic = "a/fits";
    m.payload_len = (size_t)60 << 20;
    CU_ASSERT_EQUAL(mq_ingest_message(e.in, "b", &m, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    wait_ok(e.in, &t);
    free(payload);

    struct mq_ingest_stats st;
    mq_ingest_stats(e.in, &st);
    CU_ASSERT_EQUAL(st.messages, 4);
    CU_ASSERT_EQUAL(st.unmatched, 2);
    CU_ASSERT_EQUAL(st.invalid, 1);
    CU_ASSERT_EQUAL(st.too_large, 4);
    CU_ASSERT_EQUAL(st.records, 4);
    /* answered = mapped + unmatched + invalid + too large */
    CU_ASSERT_EQUAL(st.messages + st.invalid + st.too_large, 9);
    CU_ASSERT_EQUAL(st.messages - st.unmatched, 2);
    env_close(&e);
}

/* No unmatched topic: a message no mapping takes is dropped (MQ_OK, empty ticket). */
static void test_unmatched_dropped(void)
{
    struct env e;
    env_open(&e, NULL, "mappings: [{from: \"a/#\", to: a}]\n");
    struct mq_ticket t;
    CU_ASSERT_EQUAL(msg_send(e.in, "any", "b/c", "x", 1, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 0);
    CU_ASSERT(mq_ingest_durable(e.in, &t));
    CU_ASSERT_EQUAL(mq_ingest_wait(e.in, &t, 0), MQ_OK);
    CU_ASSERT_EQUAL(msg_send(e.in, "any", "a/c", "x", 1, false, NULL), MQ_OK); /* ticket may be NULL */
    struct mq_ingest_stats st;
    mq_ingest_stats(e.in, &st);
    CU_ASSERT_EQUAL(st.unmatched, 1);
    CU_ASSERT_EQUAL(st.messages, 2);
    CU_ASSERT_EQUAL(st.records, 1);
    struct mq_catalog_topic ct;
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "b", &ct), MQ_ERR_NOENT);
    env_close(&e);
}

/* A topic that exists with fewer partitions than its mapping says keeps them; keys go where Kafka would put
 * them for the real count. */
static void test_existing_partition_count(void)
{
    struct env e;
    /* k exists with 3 partitions, its mapping says 8: raised to 8 at the first message (the mapping and
     * `mqlog route` agree from then on). m exists with 12, its mapping says 8: a partition is never taken
     * away, so m keeps 12 and records are placed by Kafka's partitioner for 12. */
    env_open(&e, NULL,
             "mappings: [{from: \"k/+\", to: k, partitions: 8, key: level:2},\n"
             "           {from: \"m/+\", to: m, partitions: 8, key: level:2}]\n");
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_create(e.store, "k", 3, NULL, NULL, 0), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_create(e.store, "m", 12, NULL, NULL, 0), MQ_OK);
    char topic[32];
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "dev%d", i);
        struct mq_ticket t;
        snprintf(topic, sizeof topic, "k/dev%d", i);
        CU_ASSERT_EQUAL_FATAL(msg_send(e.in, "b", topic, "v", 0, false, &t), MQ_OK);
        CU_ASSERT_EQUAL_FATAL(t.n, 1);
        CU_ASSERT_EQUAL(mq_part_id(t.at[0].part), mq_partition_for_key(key, strlen(key), 8));
        snprintf(topic, sizeof topic, "m/dev%d", i);
        CU_ASSERT_EQUAL_FATAL(msg_send(e.in, "b", topic, "v", 0, false, &t), MQ_OK);
        CU_ASSERT_EQUAL_FATAL(t.n, 1);
        CU_ASSERT_EQUAL(mq_part_id(t.at[0].part), mq_partition_for_key(key, strlen(key), 12));
    }
    struct mq_catalog_topic ct;
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "k", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.partitions, 8);
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "m", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.partitions, 12);

    /* A reload that gives k fewer partitions than the routes in force is refused, naming the mapping; more
     * are applied at once, before any message. */
    struct mq_ingest_routes *fewer =
        routes_from(e.dir, "mappings: [{from: \"m/+\", to: m, partitions: 8},\n"
                           "           {from: \"k/+\", to: k, partitions: 4}]\n");
    int bad = -1;
    char why[256] = "";
    CU_ASSERT_EQUAL(mq_ingest_routes_check(e.in, fewer, &bad, why, sizeof why), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(bad, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "log topic k 4 partitions, fewer than the 8 it has"));
    mq_ingest_routes_free(fewer);
    struct mq_ingest_routes *more =
        routes_from(e.dir, "mappings: [{from: \"k/+\", to: k, partitions: 16, key: level:2},\n"
                           "           {from: \"m/+\", to: m, partitions: 8}]\n");
    CU_ASSERT_EQUAL(mq_ingest_routes_check(e.in, more, &bad, why, sizeof why), MQ_OK); /* m: 8 as before */
    mq_ingest_set_routes(e.in, more);
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "k", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.partitions, 16);
    struct mq_ticket t;
    CU_ASSERT_EQUAL_FATAL(msg_send(e.in, "b", "k/dev7", "v", 0, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(mq_part_id(t.at[0].part), mq_partition_for_key("dev7", 4, 16));
    env_close(&e);
}

/* A reload with another retention updates the catalog of a topic in use at once. */
static void test_swap_retention(void)
{
    struct env e;
    env_open(&e, NULL, "mappings: [{from: \"r/#\", to: r, retention: 1h}]\n");
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "r/1", "v", 0, false, NULL), MQ_OK);
    struct mq_catalog_topic ct;
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "r", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.retention_ms, 3600000);
    mq_ingest_set_routes(e.in, routes_from(e.dir, "mappings: [{from: \"r/#\", to: r, retention: 2h, "
                                                  "retention_bytes: 1MiB}]\n"));
    CU_ASSERT_EQUAL(mq_store_topic_get(e.store, "r", &ct), MQ_OK);
    CU_ASSERT_EQUAL(ct.retention_ms, 7200000);
    CU_ASSERT_EQUAL(ct.retention_bytes, 1 << 20);
    /* and the new routes route: a new mapping works at once */
    mq_ingest_set_routes(e.in, routes_from(e.dir, "mappings: [{from: \"n/#\", to: n}]\n"));
    struct mq_ticket t;
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "r/1", "v", 0, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 0);
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "n/1", "v", 0, false, &t), MQ_OK);
    CU_ASSERT_EQUAL(t.n, 1);
    env_close(&e);
}

/* ---- a full disk ---- */

static off_t dir_max_file(const char *dir)
{
    /* the largest .log file under dir/<topic>-0 for the two topics of the test */
    off_t max = 0;
    const char *topics[] = {"fa-0", "fb-0"};
    for (int i = 0; i < 2; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/data/%s/00000000000000000000.log", dir, topics[i]);
        struct stat sb;
        if (stat(path, &sb) == 0 && sb.st_size > max)
            max = sb.st_size;
    }
    return max;
}

static void test_full_disk(void)
{
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.batch_bytes = 8192;
    lc.max_pending_bytes = 16384;
    lc.flush_interval_ms = 2;
    struct env e;
    env_open(&e, &lc,
             "mappings:\n"
             "  - {from: \"f/#\", to: fa, key: none}\n"
             "  - {from: \"f/#\", to: fb, key: none}\n");
    char payload[600];
    int seq = 0;
    struct mq_ticket t;
    for (; seq < 100; seq++) {
        snprintf(payload, sizeof payload, "%06d %0500d", seq, 0);
        CU_ASSERT_EQUAL_FATAL(msg_send(e.in, "b", "f/x", payload, 1, false, &t), MQ_OK);
    }
    wait_ok(e.in, &t);

    /* the disk "fills": writes past the current size + 20 KiB fail */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit lim = old;
    lim.rlim_cur = (rlim_t)dir_max_file(e.dir) + 20000;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    enum mq_err err = MQ_OK;
    int attempts = 0;
    for (; attempts < 100000; attempts++) {
        snprintf(payload, sizeof payload, "%06d %0500d", seq, 0);
        err = msg_send(e.in, "b", "f/x", payload, 1, false, &t);
        if (err != MQ_OK)
            break;
        seq++;
    }
    CU_ASSERT_EQUAL_FATAL(err, MQ_ERR_FULL);
    CU_ASSERT(seq > 100);
    /* it stays full while the disk is: the connector retries the same message and gets the same answer */
    CU_ASSERT_EQUAL(msg_send(e.in, "b", "f/x", payload, 1, false, &t), MQ_ERR_FULL);
    struct mq_ingest_stats st;
    mq_ingest_stats(e.in, &st);
    CU_ASSERT(st.full >= 2);

    /* space returns: the same message goes in, then more */
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &old), 0);
    int64_t deadline = mq_mono_ms() + 10000;
    while ((err = msg_send(e.in, "b", "f/x", payload, 1, false, &t)) == MQ_ERR_FULL &&
           mq_mono_ms() < deadline)
        usleep(1000); // retry interval of this deadline loop
    CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    seq++;
    for (int i = 0; i < 50; i++, seq++) {
        snprintf(payload, sizeof payload, "%06d %0500d", seq, 0);
        /* the backlog kept in memory is still being written: a slow machine (TSan) may push back a while */
        deadline = mq_mono_ms() + 10000;
        while ((err = msg_send(e.in, "b", "f/x", payload, 1, false, &t)) == MQ_ERR_FULL &&
               mq_mono_ms() < deadline)
            usleep(1000); // retry interval of this deadline loop
        CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    }
    wait_ok(e.in, &t);

    /* both topics hold every message once, in order */
    const char *topics[] = {"fa", "fb"};
    for (int k = 0; k < 2; k++) {
        struct rec *v;
        size_t n = read_all(e.store, topics[k], 0, &v);
        CU_ASSERT_EQUAL(n, (size_t)seq);
        int bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += num(v[i].value) != (int)i;
        CU_ASSERT_EQUAL(bad, 0);
        recs_free(v, n);
    }
    env_close(&e);
}

/* ---- threads and route swaps ---- */

#define THREADS    4
#define PER_THREAD 20000
#define SUBTOPICS  8

struct worker {
    struct mq_ingest *in;
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char topic[64], payload[64];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(topic, sizeof topic, "t/%d/%d", w->id, i % SUBTOPICS);
        snprintf(payload, sizeof payload, "%d", i);
        struct mq_source_msg m = {.topic = topic,
                                  .topic_len = strlen(topic),
                                  .payload = payload,
                                  .payload_len = strlen(payload),
                                  .qos = 1,
                                  .timestamp = mq_now_ms()};
        enum mq_err err;
        while ((err = mq_ingest_message(w->in, "b", &m, NULL)) == MQ_ERR_FULL)
            usleep(100); // retry interval while the store pushes back
        if (err != MQ_OK)
            w->failures++;
    }
    return NULL;
}

static void test_threads_and_swaps(void)
{
    struct env e;
    static const char *yaml[2] = {
        "mappings: [{from: \"t/#\", to: c, partitions: 4, retention: 1d}]\n",
        "mappings: [{from: \"t/+/+\", to: c, partitions: 4, retention: 2d}, {from: \"zz\", to: zz}]\n",
    };
    env_open(&e, NULL, yaml[0]);
    struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.in = e.in, .id = i};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    /* swap the routes as fast as the readers let us while they run */
    struct mq_config *cfg[2];
    for (int i = 0; i < 2; i++) {
        char *path = write_config(e.dir, yaml[i]);
        CU_ASSERT_EQUAL_FATAL(mq_config_load(path, &cfg[i], report, NULL), MQ_OK);
        free(path);
    }
    int swaps = 0;
    for (;;) {
        struct mq_ingest_stats st;
        mq_ingest_stats(e.in, &st);
        if (st.messages >= (uint64_t)THREADS * PER_THREAD)
            break;
        struct mq_ingest_routes *r = NULL;
        CU_ASSERT_EQUAL_FATAL(mq_ingest_routes_new(cfg[++swaps % 2], &r, NULL, 0), MQ_OK);
        mq_ingest_set_routes(e.in, r);
    }
    mq_config_free(cfg[0]);
    mq_config_free(cfg[1]);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(w[i].failures, 0);
    }
    CU_ASSERT(swaps >= 2);
    fprintf(stderr, "(%d route swaps during %d messages) ", swaps, THREADS * PER_THREAD);

    /* every message once, each MQTT topic in order */
    static int next[THREADS][SUBTOPICS];
    memset(next, 0, sizeof next);
    size_t total = 0;
    int bad = 0;
    for (int p = 0; p < 4; p++) {
        struct mq_part *part;
        CU_ASSERT_EQUAL_FATAL(mq_store_part(e.store, "c", p, &part), MQ_OK);
        CU_ASSERT_EQUAL(mq_part_flush(part), MQ_OK);
        struct rec *v;
        size_t n = read_all(e.store, "c", p, &v);
        for (size_t i = 0; i < n; i++) {
            int tid, sub;
            const char *mt = header(&v[i], "mqtt.topic");
            if (!mt || sscanf(mt, "t/%d/%d", &tid, &sub) != 2 || tid < 0 || tid >= THREADS || sub < 0 ||
                sub >= SUBTOPICS) {
                bad++;
                continue;
            }
            int want = next[tid][sub] * SUBTOPICS + sub;
            if (num(v[i].value) != want)
                bad++;
            next[tid][sub]++;
        }
        total += n;
        recs_free(v, n);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(total, (size_t)THREADS * PER_THREAD);
    env_close(&e);
}

int main(void)
{
    mq_diag_level = MQ_LV_WARN;
    static const struct mq_test tests[] = {
        MQ_TEST(test_routing),
        MQ_TEST(test_unmatched_dropped),
        MQ_TEST(test_counters),
        MQ_TEST(test_existing_partition_count),
        MQ_TEST(test_swap_retention),
        MQ_TEST(test_full_disk),
        MQ_TEST(test_threads_and_swaps),
        MQ_TEST(test_compression_and_headers),
        MQ_TEST_END,
    };
    return mq_test_run("ingest", tests);
}
