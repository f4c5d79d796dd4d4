/*
 * test_kafka_proto.c - the Kafka request decoders and response encoders, version by version.
 *
 * Requests are built here field by field from Kafka's message definitions (independently of the decoders),
 * decoded, and checked; responses are encoded and read back field by field. Every request is also
 * truncated at every byte and randomly mutated, and must then fail cleanly (run under ASan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka/proto.h"
#include "kafka/proto_sasl.h"
#include "kafka/server_int.h" /* mq_ksrv_apis(): every (API, version) served */
#include "testutil.h"

/* ---- request builders (the client's side, written from the message definitions) ---- */

static void w_str(struct mq_kafka_wr *w, const char *s)
{
    mq_kafka_wr_string(w, s);
}

/* Metadata: topics (NULL + n -1: null array), allow_auto (v4+), two include flags (v8). */
static void build_metadata(struct mq_kafka_wr *w, int16_t v, const char **topics, int n)
{
    mq_kafka_wr_array(w, n);
    for (int i = 0; i < n; i++)
        w_str(w, topics[i]);
    if (v >= 4)
        mq_kafka_wr_bool(w, false);
    if (v >= 8) {
        mq_kafka_wr_bool(w, true);
        mq_kafka_wr_bool(w, false);
    }
}

static void build_list_offsets(struct mq_kafka_wr *w, int16_t v)
{
    mq_kafka_wr_i32(w, -1); /* replica */
    if (v >= 2)
        mq_kafka_wr_i8(w, 1);
    mq_kafka_wr_array(w, 1);
    w_str(w, "t1");
    mq_kafka_wr_array(w, 2);
    mq_kafka_wr_i32(w, 0);
    if (v >= 4)
        mq_kafka_wr_i32(w, 7);
    mq_kafka_wr_i64(w, MQ_KAFKA_TS_EARLIEST);
    if (v == 0)
        mq_kafka_wr_i32(w, 1);
    mq_kafka_wr_i32(w, 3);
    if (v >= 4)
        mq_kafka_wr_i32(w, -1);
    mq_kafka_wr_i64(w, 1700000000000LL);
    if (v == 0)
        mq_kafka_wr_i32(w, 1);
}

static void build_fetch(struct mq_kafka_wr *w, int16_t v)
{
    mq_kafka_wr_i32(w, -1);
    mq_kafka_wr_i32(w, 500); /* max wait */
    mq_kafka_wr_i32(w, 1);   /* min bytes */
    if (v >= 3)
        mq_kafka_wr_i32(w, 52428800);
    if (v >= 4)
        mq_kafka_wr_i8(w, 0);
    if (v >= 7) {
        mq_kafka_wr_i32(w, 0);
        mq_kafka_wr_i32(w, -1);
    }
    mq_kafka_wr_array(w, 2);
    w_str(w, "alpha");
    mq_kafka_wr_array(w, 1);
    mq_kafka_wr_i32(w, 2);
    if (v >= 9)
        mq_kafka_wr_i32(w, 0);
    mq_kafka_wr_i64(w, 42);
    if (v >= 5)
        mq_kafka_wr_i64(w, -1);
    mq_kafka_wr_i32(w, 1048576);
    w_str(w, "beta");
    mq_kafka_wr_array(w, 0);
    if (v >= 7) {
        mq_kafka_wr_array(w, 1); /* forgotten */
        w_str(w, "gamma");
        mq_kafka_wr_array(w, 2);
        mq_kafka_wr_i32(w, 0);
        mq_kafka_wr_i32(w, 1);
    }
    if (v >= 11)
        w_str(w, "rack1");
}

static void build_find_coordinator(struct mq_kafka_wr *w, int16_t v)
{
    w_str(w, "grp");
    if (v >= 1)
        mq_kafka_wr_i8(w, 0);
}

static void build_join_group(struct mq_kafka_wr *w, int16_t v)
{
    w_str(w, "grp");
    mq_kafka_wr_i32(w, 10000);
    if (v >= 1)
        mq_kafka_wr_i32(w, 30000);
    w_str(w, "");
    if (v >= 5)
        mq_kafka_wr_string(w, NULL);
    w_str(w, "consumer");
    mq_kafka_wr_array(w, 2);
    w_str(w, "range");
    mq_kafka_wr_bytes(w, "\x00\x01", 2);
    w_str(w, "roundrobin");
    mq_kafka_wr_bytes(w, "", 0);
}

static void build_sync_group(struct mq_kafka_wr *w, int16_t v)
{
    w_str(w, "grp");
    mq_kafka_wr_i32(w, 3);
    w_str(w, "m-1");
    if (v >= 3)
        mq_kafka_wr_string(w, "inst");
    mq_kafka_wr_array(w, 1);
    w_str(w, "m-1");
    mq_kafka_wr_bytes(w, "abc", 3);
}

static void build_heartbeat(struct mq_kafka_wr *w, int16_t v)
{
    w_str(w, "grp");
    mq_kafka_wr_i32(w, 3);
    w_str(w, "m-1");
    if (v >= 3)
        mq_kafka_wr_string(w, NULL);
}

static void build_leave_group(struct mq_kafka_wr *w, int16_t v)
{
    w_str(w, "grp");
    if (v <= 2) {
        w_str(w, "m-1");
    } else {
        mq_kafka_wr_array(w, 2);
        w_str(w, "m-1");
        mq_kafka_wr_string(w, NULL);
        w_str(w, "m-2");
        mq_kafka_wr_string(w, "i2");
    }
}

static void build_offset_commit(struct mq_kafka_wr *w, int16_t v)
{
    w_str(w, "grp");
    if (v >= 1) {
        mq_kafka_wr_i32(w, 4);
        w_str(w, "m-1");
    }
    if (v >= 7)
        mq_kafka_wr_string(w, NULL);
    if (v >= 2 && v <= 4)
        mq_kafka_wr_i64(w, -1);
    mq_kafka_wr_array(w, 1);
    w_str(w, "t1");
    mq_kafka_wr_array(w, 2);
    for (int p = 0; p < 2; p++) {
        mq_kafka_wr_i32(w, p);
        mq_kafka_wr_i64(w, 100 + p);
        if (v >= 6)
            mq_kafka_wr_i32(w, 0);
        if (v == 1)
            mq_kafka_wr_i64(w, 1234);
        mq_kafka_wr_string(w, p ? NULL : "md");
    }
}

static void build_offset_fetch(struct mq_kafka_wr *w, int16_t v, bool all)
{
    w_str(w, "grp");
    if (all) {
        mq_kafka_wr_array(w, -1);
        return;
    }
    (void)v;
    mq_kafka_wr_array(w, 1);
    w_str(w, "t1");
    mq_kafka_wr_array(w, 3);
    mq_kafka_wr_i32(w, 0);
    mq_kafka_wr_i32(w, 1);
    mq_kafka_wr_i32(w, 2);
}

static void build_produce(struct mq_kafka_wr *w, int16_t v)
{
    if (v >= 3)
        mq_kafka_wr_string(w, NULL);
    mq_kafka_wr_i16(w, -1);
    mq_kafka_wr_i32(w, 5000);
    mq_kafka_wr_array(w, 1);
    w_str(w, "t1");
    mq_kafka_wr_array(w, 1);
    mq_kafka_wr_i32(w, 0);
    mq_kafka_wr_bytes(w, "xyz", 3);
}

static void build_init_producer_id(struct mq_kafka_wr *w, int16_t v)
{
    (void)v;
    mq_kafka_wr_string(w, "txn-1");
    mq_kafka_wr_i32(w, 60000);
}

static void build_api_versions(struct mq_kafka_wr *w, int16_t v)
{
    if (v >= 3) {
        mq_kafka_wr_cstring(w, "librdkafka");
        mq_kafka_wr_cstring(w, "2.0.2");
        mq_kafka_wr_tags(w);
    }
}

/* ---- a generic decode driver, used by the truncation and mutation tests ---- */

/* Decodes buf[0..len) as API key version v. Returns the decoder's result; *used (may be NULL) gets the
 * number of bytes the decoder read. */
static enum mq_err decode_any(int16_t key, int16_t v, const uint8_t *buf, size_t len, size_t *used)
{
    struct mq_kafka_rd rd;
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    mq_kafka_rd_init(&rd, buf, len);
    enum mq_err err = MQ_ERR_INVAL;
    switch (key) {
    case MQ_KAPI_API_VERSIONS: {
        struct mq_kafka_api_versions_req r;
        err = mq_kafka_api_versions_req_decode(&rd, v, &r);
        break;
    }
    case MQ_KAPI_METADATA: {
        struct mq_kafka_metadata_req r;
        err = mq_kafka_metadata_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_LIST_OFFSETS: {
        struct mq_kafka_list_offsets_req r;
        err = mq_kafka_list_offsets_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_FETCH: {
        struct mq_kafka_fetch_req r;
        err = mq_kafka_fetch_req_decode(&rd, v, &a, &r);
        mq_kafka_fetch_req_release(&r);
        break;
    }
    case MQ_KAPI_FIND_COORDINATOR: {
        struct mq_kafka_find_coordinator_req r;
        err = mq_kafka_find_coordinator_req_decode(&rd, v, &r);
        break;
    }
    case MQ_KAPI_JOIN_GROUP: {
        struct mq_kafka_join_group_req r;
        err = mq_kafka_join_group_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_SYNC_GROUP: {
        struct mq_kafka_sync_group_req r;
        err = mq_kafka_sync_group_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_HEARTBEAT: {
        struct mq_kafka_heartbeat_req r;
        err = mq_kafka_heartbeat_req_decode(&rd, v, &r);
        break;
    }
    case MQ_KAPI_LEAVE_GROUP: {
        struct mq_kafka_leave_group_req r;
        err = mq_kafka_leave_group_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_OFFSET_COMMIT: {
        struct mq_kafka_offset_commit_req r;
        err = mq_kafka_offset_commit_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_OFFSET_FETCH: {
        struct mq_kafka_offset_fetch_req r;
        err = mq_kafka_offset_fetch_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_PRODUCE: {
        struct mq_kafka_produce_req r;
        err = mq_kafka_produce_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_INIT_PRODUCER_ID: {
        struct mq_kafka_init_producer_id_req r;
        err = mq_kafka_init_producer_id_req_decode(&rd, v, &r);
        break;
    }
    case MQ_KAPI_SASL_HANDSHAKE: {
        struct mq_kafka_sasl_handshake_req r;
        err = mq_kafka_sasl_handshake_req_decode(&rd, v, &r);
        break;
    }
    case MQ_KAPI_SASL_AUTHENTICATE: {
        struct mq_kafka_sasl_authenticate_req r;
        err = mq_kafka_sasl_authenticate_req_decode(&rd, v, &r);
        break;
    }
    }
    if (used)
        *used = len - mq_kafka_rd_left(&rd);
    mq_kafka_arena_free(&a);
    return err;
}

/* Builds the sample request of (key, v) into w. */
static void build_any(struct mq_kafka_wr *w, int16_t key, int16_t v)
{
    static const char *two[] = {"t1", "t2"};
    switch (key) {
    case MQ_KAPI_API_VERSIONS:
        build_api_versions(w, v);
        break;
    case MQ_KAPI_METADATA:
        build_metadata(w, v, two, 2);
        break;
    case MQ_KAPI_LIST_OFFSETS:
        build_list_offsets(w, v);
        break;
    case MQ_KAPI_FETCH:
        build_fetch(w, v);
        break;
    case MQ_KAPI_FIND_COORDINATOR:
        build_find_coordinator(w, v);
        break;
    case MQ_KAPI_JOIN_GROUP:
        build_join_group(w, v);
        break;
    case MQ_KAPI_SYNC_GROUP:
        build_sync_group(w, v);
        break;
    case MQ_KAPI_HEARTBEAT:
        build_heartbeat(w, v);
        break;
    case MQ_KAPI_LEAVE_GROUP:
        build_leave_group(w, v);
        break;
    case MQ_KAPI_OFFSET_COMMIT:
        build_offset_commit(w, v);
        break;
    case MQ_KAPI_OFFSET_FETCH:
        build_offset_fetch(w, v, false);
        break;
    case MQ_KAPI_PRODUCE:
        build_produce(w, v);
        break;
    case MQ_KAPI_INIT_PRODUCER_ID:
        build_init_producer_id(w, v);
        break;
    case MQ_KAPI_SASL_HANDSHAKE:
        mq_kafka_wr_string(w, "SCRAM-SHA-256");
        break;
    case MQ_KAPI_SASL_AUTHENTICATE:
        if (v >= 2) {
            mq_kafka_wr_cbytes(w, "n,,n=user,r=abc", 15);
            mq_kafka_wr_tags(w);
        } else {
            mq_kafka_wr_bytes(w, "n,,n=user,r=abc", 15);
        }
        break;
    }
}

/* Moves the request built in w into *hold (freeing the previous one) and starts rd on it, so that the
 * decoded views stay valid while w is reused for the response. */
static void rd_from(struct mq_kafka_rd *rd, struct mq_kafka_wr *w, uint8_t **hold)
{
    size_t len;
    free(*hold);
    *hold = mq_kafka_wr_take(w, &len);
    mq_kafka_rd_init(rd, *hold, len);
}

/* ---- tests ---- */

/* Header versions and names. Which APIs and versions are served is the server's table (mq_ksrv_apis()),
 * checked in test_kafka_server. */
static void test_api_headers(void)
{
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_version(MQ_KAPI_API_VERSIONS, 3), 2);
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_version(MQ_KAPI_API_VERSIONS, 2), 1);
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_version(MQ_KAPI_FETCH, 11), 1);
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_version(MQ_KAPI_METADATA, 9), 2);
    CU_ASSERT_EQUAL(mq_kafka_resp_hdr_version(MQ_KAPI_API_VERSIONS, 3), 0);
    CU_ASSERT_STRING_EQUAL(mq_kafka_api_name(MQ_KAPI_FETCH), "Fetch");
}

static void test_api_versions(void)
{
    uint8_t *hold = NULL;
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    build_api_versions(&w, 3);
    struct mq_kafka_rd rd;
    rd_from(&rd, &w, &hold);
    struct mq_kafka_api_versions_req r;
    CU_ASSERT_EQUAL(mq_kafka_api_versions_req_decode(&rd, 3, &r), MQ_OK);
    CU_ASSERT_TRUE(mq_kafka_str_eq(r.client_software_name, "librdkafka"));
    CU_ASSERT_TRUE(mq_kafka_str_eq(r.client_software_version, "2.0.2"));

    /* The list is the handler's (the server's API table); three entries are enough for the layout. */
    static const struct mq_kafka_api_range list[] = {
        {MQ_KAPI_PRODUCE, 0, 8}, {MQ_KAPI_FETCH, 4, 11}, {MQ_KAPI_API_VERSIONS, 0, 3}};
    r.apis = list;
    r.api_count = 3;

    /* v0 response: error, ARRAY of (key, min, max), nothing else. */
    r.error = MQ_KC_NONE;
    mq_kafka_wr_reset(&w);
    mq_kafka_api_versions_resp_encode(&w, 0, &r);
    CU_ASSERT_EQUAL(w.len, 2 + 4 + 3 * 6);
    mq_kafka_rd_init(&rd, w.buf, w.len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 6, false), 3);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KAPI_PRODUCE);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 8);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KAPI_FETCH);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 4);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 11);

    /* v3: COMPACT_ARRAY with a tag section per entry, throttle time, a final tag section. */
    mq_kafka_wr_reset(&w);
    mq_kafka_api_versions_resp_encode(&w, 3, &r);
    CU_ASSERT_EQUAL(w.len, 2 + 1 + 3 * 7 + 4 + 1);
    mq_kafka_rd_init(&rd, w.buf, w.len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
    CU_ASSERT_EQUAL(mq_kafka_rd_carray(&rd, 7, false), 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), list[i].key);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), list[i].min);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), list[i].max);
        mq_kafka_rd_tags(&rd);
    }
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    mq_kafka_rd_tags(&rd);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    mq_kafka_wr_free(&w);
    free(hold);
}

static void test_metadata(void)
{
    uint8_t *hold = NULL;
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    struct mq_kafka_rd rd;
    struct mq_kafka_metadata_req r;

    /* v0: an empty array means every topic. */
    build_metadata(&w, 0, NULL, 0);
    rd_from(&rd, &w, &hold);
    CU_ASSERT_EQUAL(mq_kafka_metadata_req_decode(&rd, 0, &a, &r), MQ_OK);
    CU_ASSERT_EQUAL(r.topic_count, -1);
    /* v1: an empty array means none, null means every topic. */
    mq_kafka_wr_reset(&w);
    build_metadata(&w, 1, NULL, 0);
    rd_from(&rd, &w, &hold);
    CU_ASSERT_EQUAL(mq_kafka_metadata_req_decode(&rd, 1, &a, &r), MQ_OK);
    CU_ASSERT_EQUAL(r.topic_count, 0);
    mq_kafka_wr_reset(&w);
    build_metadata(&w, 1, NULL, -1);
    rd_from(&rd, &w, &hold);
    CU_ASSERT_EQUAL(mq_kafka_metadata_req_decode(&rd, 1, &a, &r), MQ_OK);
    CU_ASSERT_EQUAL(r.topic_count, -1);
    /* v0 refuses a null array. */
    rd_from(&rd, &w, &hold);
    CU_ASSERT_EQUAL(mq_kafka_metadata_req_decode(&rd, 0, &a, &r), MQ_ERR_PROTOCOL);
    /* v8 with names and flags. */
    static const char *names[] = {"t1", "nope"};
    mq_kafka_wr_reset(&w);
    build_metadata(&w, 8, names, 2);
    rd_from(&rd, &w, &hold);
    CU_ASSERT_EQUAL(mq_kafka_metadata_req_decode(&rd, 8, &a, &r), MQ_OK);
    CU_ASSERT_EQUAL(r.topic_count, 2);
    CU_ASSERT_TRUE(mq_kafka_str_eq(r.topics[0].name, "t1"));
    CU_ASSERT_TRUE(mq_kafka_str_eq(r.topics[1].name, "nope"));
    CU_ASSERT_FALSE(r.allow_auto_topic_creation);
    CU_ASSERT_TRUE(r.include_cluster_authorized_operations);
    CU_ASSERT_FALSE(r.include_topic_authorized_operations);

    /* Responses: read back at v0, v1, v5, v7 and v8. */
    r.node_id = 1;
    r.host = "127.0.0.1";
    r.port = 9092;
    r.cluster_id = "mqlog";
    r.topics[0].error = 0;
    r.topics[0].partitions = 2;
    r.topics[1].error = MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
    static const int16_t vs[] = {0, 1, 2, 3, 5, 7, 8};
    /* The request's names are views into w: the responses go to another buffer. */
    struct mq_kafka_wr o;
    mq_kafka_wr_init(&o);
    for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
        int16_t v = vs[k];
        mq_kafka_wr_reset(&o);
        mq_kafka_metadata_resp_encode(&o, v, &r);
        CU_ASSERT_TRUE_FATAL(mq_kafka_wr_ok(&o));
        mq_kafka_rd_init(&rd, o.buf, o.len);
        if (v >= 3)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "127.0.0.1"));
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 9092);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_nstring(&rd).len, -1);
        if (v >= 2)
            CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_nstring(&rd), "mqlog"));
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 1);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
        for (int t = 0; t < 2; t++) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), t == 0 ? 0 : 3);
            CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), names[t]));
            if (v >= 1)
                CU_ASSERT_FALSE(mq_kafka_rd_bool(&rd));
            int32_t np = mq_kafka_rd_array(&rd, 1, false);
            CU_ASSERT_EQUAL(np, t == 0 ? 2 : 0);
            for (int32_t p = 0; p < np; p++) {
                CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), p);
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 1);
                if (v >= 7)
                    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
                CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 4, false), 1);
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 1);
                CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 4, false), 1);
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 1);
                if (v >= 5)
                    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 4, false), 0);
            }
            if (v >= 8)
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), INT32_MIN);
        }
        if (v >= 8)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), INT32_MIN);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    }
    mq_kafka_wr_free(&o);
    mq_kafka_wr_free(&w);
    mq_kafka_arena_free(&a);
    free(hold);
}

static void test_list_offsets(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 5; v++) {
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_list_offsets(&w, v);
        struct mq_kafka_rd rd;
        rd_from(&rd, &w, &hold);
        struct mq_kafka_list_offsets_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_list_offsets_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL(r.replica_id, -1);
        CU_ASSERT_EQUAL(r.isolation_level, v >= 2 ? 1 : 0);
        CU_ASSERT_EQUAL_FATAL(r.topic_count, 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.topics[0].name, "t1"));
        CU_ASSERT_EQUAL_FATAL(r.topics[0].part_count, 2);
        struct mq_kafka_lo_part *p = r.topics[0].parts;
        CU_ASSERT_EQUAL(p[0].partition, 0);
        CU_ASSERT_EQUAL(p[0].current_leader_epoch, v >= 4 ? 7 : -1);
        CU_ASSERT_EQUAL(p[0].timestamp, MQ_KAFKA_TS_EARLIEST);
        CU_ASSERT_EQUAL(p[1].partition, 3);
        CU_ASSERT_EQUAL(p[1].timestamp, 1700000000000LL);

        p[0].offset = 5;
        p[0].out_timestamp = -1;
        p[1].error = MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
        mq_kafka_wr_reset(&w);
        mq_kafka_list_offsets_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 2)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t1"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
        for (int j = 0; j < 2; j++) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), j == 0 ? 0 : 3);
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), j == 0 ? 0 : 3);
            if (v == 0) {
                int32_t n = mq_kafka_rd_array(&rd, 8, false);
                CU_ASSERT_EQUAL(n, j == 0 ? 1 : 0);
                if (n == 1)
                    CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 5);
            } else {
                CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), -1);
                CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), j == 0 ? 5 : -1);
            }
            if (v >= 4)
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), j == 0 ? 0 : -1);
        }
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    free(hold);
}

/* Fetch v0-3: the request without the later fields, and a response whose records are the partition's
 * message set (downconv.h) in memory: no throttle in v0, no last stable offset or transactions. */
static void test_fetch_old(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 3; v++) {
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_fetch(&w, v);
        struct mq_kafka_rd rd;
        rd_from(&rd, &w, &hold);
        struct mq_kafka_fetch_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_fetch_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL(r.max_bytes, v >= 3 ? 52428800 : INT32_MAX);
        CU_ASSERT_EQUAL_FATAL(r.topic_count, 2);
        CU_ASSERT_EQUAL(r.topics[0].parts[0].fetch_offset, 42);
        struct mq_kafka_fetch_part *p = &r.topics[0].parts[0];
        p->high_watermark = 50;
        p->msgs.p = malloc(5);
        CU_ASSERT_FATAL(p->msgs.p != NULL);
        memcpy(p->msgs.p, "abcde", 5);
        p->msgs.len = p->msgs.cap = 5;

        struct mq_kafka_out out;
        mq_kafka_out_init(&out);
        mq_kafka_out_begin(&out, 78, 0);
        mq_kafka_fetch_resp_encode(&out, v, &r);
        CU_ASSERT_EQUAL(mq_kafka_out_end(&out), MQ_OK);
        mq_kafka_fetch_req_release(&r);
        CU_ASSERT_PTR_NULL(p->msgs.p);
        CU_ASSERT_EQUAL(out.n_splices, 0);

        mq_kafka_rd_init(&rd, out.wr.buf, out.wr.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), (int32_t)out.wr.len - 4);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 78);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0); /* throttle */
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "alpha"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 2);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 50);
        struct mq_kafka_str set = mq_kafka_rd_bytes(&rd);
        CU_ASSERT_TRUE(set.len == 5 && memcmp(set.ptr, "abcde", 5) == 0);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "beta"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 0);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_out_free(&out);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    free(hold);
}

static void test_fetch(void)
{
    uint8_t *hold = NULL;
    /* A file standing in for a segment: the response must splice its bytes at the records field. */
    char path[] = "/tmp/mqlog-kafka-proto-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    CU_ASSERT_EQUAL(write(fd, "0123456789", 10), 10);

    for (int16_t v = 4; v <= 11; v++) {
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_fetch(&w, v);
        struct mq_kafka_rd rd;
        rd_from(&rd, &w, &hold);
        struct mq_kafka_fetch_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_fetch_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL(r.max_wait_ms, 500);
        CU_ASSERT_EQUAL(r.min_bytes, 1);
        CU_ASSERT_EQUAL(r.max_bytes, 52428800);
        CU_ASSERT_EQUAL(r.session_epoch, -1);
        CU_ASSERT_EQUAL_FATAL(r.topic_count, 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.topics[0].name, "alpha"));
        CU_ASSERT_EQUAL_FATAL(r.topics[0].part_count, 1);
        CU_ASSERT_EQUAL(r.topics[0].parts[0].partition, 2);
        CU_ASSERT_EQUAL(r.topics[0].parts[0].fetch_offset, 42);
        CU_ASSERT_EQUAL(r.topics[0].parts[0].max_bytes, 1048576);
        CU_ASSERT_EQUAL(r.topics[1].part_count, 0);
        CU_ASSERT_TRUE(v < 11 || mq_kafka_str_eq(r.rack_id, "rack1"));

        struct mq_kafka_fetch_part *p = &r.topics[0].parts[0];
        p->high_watermark = 50;
        p->last_stable_offset = 50;
        p->log_start = 0;
        struct mq_slice s1 = {fd, 2, 3, 42, 44, NULL, 0}, s2 = {fd, 7, 2, 44, 45, NULL, 0};
        CU_ASSERT_EQUAL(mq_kafka_fetch_part_add(&a, p, &s1), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_fetch_part_add(&a, p, &s2), MQ_OK);

        struct mq_kafka_out out;
        mq_kafka_out_init(&out);
        mq_kafka_out_begin(&out, 77, 0);
        mq_kafka_fetch_resp_encode(&out, v, &r);
        CU_ASSERT_EQUAL(mq_kafka_out_end(&out), MQ_OK);
        mq_kafka_fetch_req_release(&r);
        CU_ASSERT_EQUAL(p->n_slices, 0);
        CU_ASSERT_EQUAL_FATAL(out.n_splices, 2);
        CU_ASSERT_EQUAL(out.file_bytes, 5);

        /* Assemble what would go on the wire and read it as a client. */
        size_t total = out.wr.len + 5;
        uint8_t *msg = malloc(total);
        CU_ASSERT_FATAL(msg != NULL);
        size_t m = 0, from = 0;
        for (size_t k = 0; k < out.n_splices; k++) {
            memcpy(msg + m, out.wr.buf + from, out.splices[k].at - from);
            m += out.splices[k].at - from;
            from = out.splices[k].at;
            CU_ASSERT_EQUAL(pread(fd, msg + m, out.splices[k].slice.len, out.splices[k].slice.pos),
                            (ssize_t)out.splices[k].slice.len);
            m += out.splices[k].slice.len;
        }
        memcpy(msg + m, out.wr.buf + from, out.wr.len - from);
        m += out.wr.len - from;
        CU_ASSERT_EQUAL(m, total);

        mq_kafka_rd_init(&rd, msg, total);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), (int32_t)total - 4);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 77);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0); /* throttle */
        if (v >= 7) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        }
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "alpha"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 2);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 50);
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 50);
        if (v >= 5)
            CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 16, true), 0);
        if (v >= 11)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), -1);
        struct mq_kafka_str recs = mq_kafka_rd_nbytes(&rd);
        CU_ASSERT_EQUAL(recs.len, 5);
        CU_ASSERT_TRUE(recs.len == 5 && memcmp(recs.ptr, "23478", 5) == 0);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "beta"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 0);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        free(msg);
        mq_kafka_out_free(&out);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    close(fd);
    free(hold);
}

static void test_group_apis(void)
{
    uint8_t *hold = NULL;
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    struct mq_kafka_rd rd;

    for (int16_t v = 0; v <= 2; v++) {
        mq_kafka_wr_reset(&w);
        build_find_coordinator(&w, v);
        rd_from(&rd, &w, &hold);
        struct mq_kafka_find_coordinator_req fc;
        CU_ASSERT_EQUAL(mq_kafka_find_coordinator_req_decode(&rd, v, &fc), MQ_OK);
        CU_ASSERT_TRUE(mq_kafka_str_eq(fc.key, "grp"));
        fc.node_id = 1;
        fc.host = "h";
        fc.port = 9;
        mq_kafka_wr_reset(&w);
        mq_kafka_find_coordinator_resp_encode(&w, v, &fc);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_nstring(&rd).len, -1);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "h"));
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 9);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    }

    for (int16_t v = 0; v <= 5; v++) {
        mq_kafka_wr_reset(&w);
        build_join_group(&w, v);
        rd_from(&rd, &w, &hold);
        struct mq_kafka_join_group_req j;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_join_group_req_decode(&rd, v, &a, &j), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL(j.session_timeout_ms, 10000);
        CU_ASSERT_EQUAL(j.rebalance_timeout_ms, v >= 1 ? 30000 : 10000);
        CU_ASSERT_EQUAL(j.member_id.len, 0);
        CU_ASSERT_EQUAL(j.group_instance_id.len, -1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(j.protocol_type, "consumer"));
        CU_ASSERT_EQUAL_FATAL(j.protocol_count, 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(j.protocols[1].name, "roundrobin"));
        CU_ASSERT_EQUAL(j.protocols[0].metadata.len, 2);

        struct mq_kafka_join_member mem[1] = {{{"m-1", 3}, {"i", 1}, {"\x05", 1}}};
        struct mq_kafka_join_group_resp jr = {0, 3, {"range", 5}, {"m-1", 3}, {"m-1", 3}, 1, mem};
        mq_kafka_wr_reset(&w);
        mq_kafka_join_group_resp_encode(&w, v, &jr);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 2)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 3);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "range"));
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "m-1"));
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "m-1"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "m-1"));
        if (v >= 5)
            CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_nstring(&rd), "i"));
        CU_ASSERT_EQUAL(mq_kafka_rd_bytes(&rd).len, 1);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    }

    for (int16_t v = 0; v <= 3; v++) {
        mq_kafka_wr_reset(&w);
        build_sync_group(&w, v);
        rd_from(&rd, &w, &hold);
        struct mq_kafka_sync_group_req s;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_sync_group_req_decode(&rd, v, &a, &s), MQ_OK);
        CU_ASSERT_EQUAL(s.generation_id, 3);
        CU_ASSERT_TRUE(mq_kafka_str_eq(s.member_id, "m-1"));
        CU_ASSERT_TRUE(v < 3 || mq_kafka_str_eq(s.group_instance_id, "inst"));
        CU_ASSERT_EQUAL_FATAL(s.assignment_count, 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(s.assignments[0].assignment, "abc"));
        mq_kafka_wr_reset(&w);
        mq_kafka_sync_group_resp_encode(&w, v, MQ_KC_REBALANCE_IN_PROGRESS, s.assignments[0].assignment);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 27);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_bytes(&rd), "abc"));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);

        mq_kafka_wr_reset(&w);
        build_heartbeat(&w, v);
        rd_from(&rd, &w, &hold);
        struct mq_kafka_heartbeat_req h;
        CU_ASSERT_EQUAL(mq_kafka_heartbeat_req_decode(&rd, v, &h), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL(h.generation_id, 3);
        h.error = MQ_KC_ILLEGAL_GENERATION;
        mq_kafka_wr_reset(&w);
        mq_kafka_heartbeat_resp_encode(&w, v, &h);
        CU_ASSERT_EQUAL(w.len, v >= 1 ? 6u : 2u);
        CU_ASSERT_EQUAL(w.buf[w.len - 1], 22);

        mq_kafka_wr_reset(&w);
        build_leave_group(&w, v);
        rd_from(&rd, &w, &hold);
        struct mq_kafka_leave_group_req l;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_leave_group_req_decode(&rd, v, &a, &l), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(l.member_count, v <= 2 ? 1 : 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(l.members[0].member_id, "m-1"));
        l.members[0].error = MQ_KC_UNKNOWN_MEMBER_ID;
        struct mq_kafka_wr o;
        mq_kafka_wr_init(&o);
        mq_kafka_leave_group_resp_encode(&o, v, &l);
        mq_kafka_rd_init(&rd, o.buf, o.len);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        if (v <= 2) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 25);
        } else {
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
            CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
            CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "m-1"));
            CU_ASSERT_EQUAL(mq_kafka_rd_nstring(&rd).len, -1);
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 25);
            CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "m-2"));
            CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_nstring(&rd), "i2"));
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        }
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&o);
    }
    mq_kafka_wr_free(&w);
    mq_kafka_arena_free(&a);
    free(hold);
}

static void test_offsets(void)
{
    uint8_t *hold = NULL;
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    struct mq_kafka_rd rd;

    for (int16_t v = 0; v <= 7; v++) {
        mq_kafka_wr_reset(&w);
        build_offset_commit(&w, v);
        rd_from(&rd, &w, &hold);
        struct mq_kafka_offset_commit_req c;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_offset_commit_req_decode(&rd, v, &a, &c), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL(c.generation_id, v >= 1 ? 4 : -1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(c.member_id, v >= 1 ? "m-1" : ""));
        CU_ASSERT_EQUAL_FATAL(c.topic_count, 1);
        CU_ASSERT_EQUAL_FATAL(c.topics[0].part_count, 2);
        CU_ASSERT_EQUAL(c.topics[0].parts[1].partition, 1);
        CU_ASSERT_EQUAL(c.topics[0].parts[1].offset, 101);
        CU_ASSERT_TRUE(mq_kafka_str_eq(c.topics[0].parts[0].metadata, "md"));
        CU_ASSERT_EQUAL(c.topics[0].parts[1].metadata.len, -1);
        CU_ASSERT_EQUAL(c.topics[0].parts[0].commit_timestamp, v == 1 ? 1234 : -1);
        c.topics[0].parts[1].error = MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
        mq_kafka_wr_reset(&w);
        mq_kafka_offset_commit_resp_encode(&w, v, &c);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 3)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t1"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 1);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 3);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    }

    for (int16_t v = 0; v <= 5; v++) {
        mq_kafka_wr_reset(&w);
        build_offset_fetch(&w, v, false);
        rd_from(&rd, &w, &hold);
        struct mq_kafka_offset_fetch_req f;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_offset_fetch_req_decode(&rd, v, &a, &f), MQ_OK);
        CU_ASSERT_EQUAL_FATAL(f.topic_count, 1);
        CU_ASSERT_EQUAL_FATAL(f.topics[0].part_count, 3);
        CU_ASSERT_EQUAL(f.topics[0].parts[2].partition, 2);
        CU_ASSERT_EQUAL(f.topics[0].parts[2].offset, -1);
        f.topics[0].parts[0].offset = 9;
        f.topics[0].parts[0].metadata = (struct mq_kafka_str){NULL, -1};
        mq_kafka_wr_reset(&w);
        mq_kafka_offset_fetch_resp_encode(&w, v, &f);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 3)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t1"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 3);
        for (int j = 0; j < 3; j++) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), j);
            CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), j == 0 ? 9 : -1);
            if (v >= 5)
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), -1);
            CU_ASSERT_EQUAL(mq_kafka_rd_nstring(&rd).len, j == 0 ? -1 : 0);
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        }
        if (v >= 2)
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);

        /* A null topic array: every topic (v2+), malformed before. */
        mq_kafka_wr_reset(&w);
        build_offset_fetch(&w, v, true);
        rd_from(&rd, &w, &hold);
        enum mq_err err = mq_kafka_offset_fetch_req_decode(&rd, v, &a, &f);
        CU_ASSERT_EQUAL(err, v >= 2 ? MQ_OK : MQ_ERR_PROTOCOL);
        if (err == MQ_OK)
            CU_ASSERT_EQUAL(f.topic_count, -1);
    }
    mq_kafka_wr_free(&w);
    mq_kafka_arena_free(&a);
    free(hold);
}

static void test_produce(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 8; v++) {
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_produce(&w, v);
        struct mq_kafka_rd rd;
        rd_from(&rd, &w, &hold);
        struct mq_kafka_produce_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_produce_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL(r.acks, -1);
        CU_ASSERT_EQUAL_FATAL(r.topic_count, 1);
        CU_ASSERT_EQUAL_FATAL(r.topics[0].part_count, 1);
        r.topics[0].parts[0].error = MQ_KC_TOPIC_AUTHORIZATION_FAILED;
        mq_kafka_wr_reset(&w);
        mq_kafka_produce_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t1"));
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 29);
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), -1);
        if (v >= 2)
            CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), -1);
        if (v >= 5)
            CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), -1);
        if (v >= 8) {
            CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 0);
            CU_ASSERT_EQUAL(mq_kafka_rd_nstring(&rd).len, -1);
        }
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    free(hold);
}

/*
 * Checks every prefix of buf (len included), each copied to a buffer of exactly its size so that ASan
 * sees any read past it. A decoder reads its input front to back and needs every byte it reads, so the
 * answer for each prefix follows from decoding the whole: if the whole decodes (err MQ_OK) reading `used`
 * bytes, exactly the prefixes of at least `used` bytes decode; if it does not, no prefix does and each is
 * MQ_ERR_PROTOCOL (a truncated or impossible request, never another error).
 */
static void check_prefixes(int16_t key, int16_t v, const uint8_t *buf, size_t len, enum mq_err err,
                           size_t used)
{
    for (size_t cut = 0; cut <= len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        CU_ASSERT_FATAL(c != NULL);
        memcpy(c, buf, cut);
        enum mq_err want = err == MQ_OK && cut >= used ? MQ_OK : MQ_ERR_PROTOCOL;
        enum mq_err got = decode_any(key, v, c, cut, NULL);
        if (got != want)
            fprintf(stderr, "%s v%d: prefix %zu of %zu: %s, want %s\n", mq_kafka_api_name(key), v, cut, len,
                    mq_strerror(got), mq_strerror(want));
        CU_ASSERT_EQUAL(got, want);
        free(c);
    }
}

/* The APIs of proto_admin.h, whose codecs test_kafka_admin.c checks the same way. */
static bool admin_api(int16_t key)
{
    return key == MQ_KAPI_LIST_GROUPS || key == MQ_KAPI_DESCRIBE_GROUPS || key == MQ_KAPI_DELETE_GROUPS ||
           key == MQ_KAPI_DESCRIBE_CONFIGS || key == MQ_KAPI_DESCRIBE_CLUSTER ||
           key == MQ_KAPI_CREATE_TOPICS || key == MQ_KAPI_DELETE_TOPICS || key == MQ_KAPI_DELETE_RECORDS ||
           key == MQ_KAPI_CREATE_PARTITIONS || key == MQ_KAPI_ALTER_CONFIGS ||
           key == MQ_KAPI_INCREMENTAL_ALTER_CONFIGS || key == MQ_KAPI_CREATE_ACLS ||
           key == MQ_KAPI_DELETE_ACLS;
}

/* Every supported (key, version): the sample decodes reading all of it, with trailing bytes too (ignored,
 * as Kafka does); each truncation fails; random mutations never crash (ASan) and each of their prefixes
 * gets exactly the answer check_prefixes() derives. */
static void test_truncation_and_mutation(void)
{
    size_t n;
    const struct mq_ksrv_api *t = mq_ksrv_apis(&n);
    unsigned seed = 4242;
    for (size_t i = 0; i < n; i++) {
        if (admin_api(t[i].key))
            continue; /* test_kafka_admin.c */
        for (int16_t v = t[i].min; v <= t[i].max; v++) {
            struct mq_kafka_wr w;
            mq_kafka_wr_init(&w);
            build_any(&w, t[i].key, v);
            CU_ASSERT_FATAL(mq_kafka_wr_ok(&w));
            uint8_t *exact = malloc(w.len + 8);
            CU_ASSERT_FATAL(exact != NULL);
            if (w.len)
                memcpy(exact, w.buf, w.len);
            size_t used = 0;
            enum mq_err err = decode_any(t[i].key, v, exact, w.len, &used);
            if (err != MQ_OK)
                fprintf(stderr, "sample of %s v%d does not decode\n", mq_kafka_api_name(t[i].key), v);
            CU_ASSERT_EQUAL(err, MQ_OK);
            CU_ASSERT_EQUAL(used, w.len);
            check_prefixes(t[i].key, v, exact, w.len, MQ_OK, w.len);
            for (size_t k = 0; k < 8; k++)
                exact[w.len + k] = (uint8_t)rand_r(&seed);
            CU_ASSERT_EQUAL(decode_any(t[i].key, v, exact, w.len + 8, &used), MQ_OK);
            CU_ASSERT_EQUAL(used, w.len);
            for (int iter = 0; iter < 300 && w.len; iter++) {
                memcpy(exact, w.buf, w.len);
                int flips = 1 + rand_r(&seed) % 4;
                for (int f = 0; f < flips && w.len; f++) {
                    size_t pos = (size_t)rand_r(&seed) % w.len;
                    int kind = rand_r(&seed) % 3;
                    exact[pos] = kind == 0 ? 0xff : kind == 1 ? 0x7f : (uint8_t)rand_r(&seed);
                }
                /* Whether the whole still decodes depends on which bytes were hit (a length or a
                 * value); its prefixes' answers follow from it. */
                err = decode_any(t[i].key, v, exact, w.len, &used);
                check_prefixes(t[i].key, v, exact, w.len, err, used);
            }
            free(exact);
            mq_kafka_wr_free(&w);
        }
    }
}

static void test_out_and_arena(void)
{
    struct mq_kafka_out out;
    mq_kafka_out_init(&out);
    mq_kafka_out_begin(&out, 5, 1);
    mq_kafka_wr_i16(&out.wr, MQ_KC_UNSUPPORTED_VERSION);
    CU_ASSERT_EQUAL(mq_kafka_out_end(&out), MQ_OK);
    static const uint8_t want[] = {0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 35};
    CU_ASSERT_EQUAL(out.wr.len, sizeof want);
    CU_ASSERT_EQUAL(memcmp(out.wr.buf, want, sizeof want), 0);
    mq_kafka_out_free(&out);
    mq_kafka_out_free(NULL);

    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    CU_ASSERT_PTR_NOT_NULL(mq_kafka_arena_calloc(&a, 0, 8));
    uint8_t *big = mq_kafka_arena_calloc(&a, 10000, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(big[9999], 0);
    CU_ASSERT_PTR_NULL(mq_kafka_arena_calloc(&a, SIZE_MAX / 2, 4));
    mq_kafka_arena_free(&a);
    mq_kafka_arena_free(&a);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_api_headers),   MQ_TEST(test_api_versions),
        MQ_TEST(test_metadata),      MQ_TEST(test_list_offsets),
        MQ_TEST(test_fetch),         MQ_TEST(test_fetch_old),
        MQ_TEST(test_group_apis),    MQ_TEST(test_offsets),
        MQ_TEST(test_produce),       MQ_TEST(test_truncation_and_mutation),
        MQ_TEST(test_out_and_arena), MQ_TEST_END,
    };
    return mq_test_run("kafka_proto", tests);
}
