/*
 * test_kafka_admin.c - the admin request decoders and response encoders (kafka/proto_admin.h), version by
 * version, flexible versions included.
 *
 * As in test_kafka_proto.c, requests are built here field by field from Kafka's message definitions
 * (independently of the decoders), decoded and checked; responses are encoded and read back field by
 * field. Every request is also truncated at every byte and randomly mutated, and must then fail cleanly
 * (run under ASan); a request naming more groups or resources than max_parts is refused as too large.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/proto_admin.h"
#include "kafka/server_int.h" /* mq_ksrv_apis(): the versions served */
#include "testutil.h"

/* ---- the client's side: both forms of each type, chosen by the API's first flexible version ---- */

static int16_t first_flexible(int16_t key)
{
    switch (key) {
    case MQ_KAPI_LIST_GROUPS:
        return 3;
    case MQ_KAPI_DESCRIBE_GROUPS:
        return 5;
    case MQ_KAPI_DELETE_GROUPS:
        return 2;
    case MQ_KAPI_DESCRIBE_CONFIGS:
        return 4;
    case MQ_KAPI_CREATE_TOPICS:
        return 5;
    case MQ_KAPI_DELETE_TOPICS:
        return 4;
    case MQ_KAPI_DELETE_RECORDS:
    case MQ_KAPI_CREATE_PARTITIONS:
    case MQ_KAPI_ALTER_CONFIGS:
    case MQ_KAPI_CREATE_ACLS:
    case MQ_KAPI_DELETE_ACLS:
        return 2;
    case MQ_KAPI_INCREMENTAL_ALTER_CONFIGS:
        return 1;
    default:
        return 0; /* DescribeCluster: every version */
    }
}

static void w_s(struct mq_kafka_wr *w, bool flex, const char *s)
{
    if (flex)
        mq_kafka_wr_cstring(w, s);
    else
        mq_kafka_wr_string(w, s);
}

static void w_a(struct mq_kafka_wr *w, bool flex, int32_t n)
{
    if (flex)
        mq_kafka_wr_carray(w, n);
    else
        mq_kafka_wr_array(w, n);
}

static void w_tags(struct mq_kafka_wr *w, bool flex)
{
    if (flex)
        mq_kafka_wr_tags(w);
}

static struct mq_kafka_str r_s(struct mq_kafka_rd *rd, bool flex)
{
    return flex ? mq_kafka_rd_cnstring(rd) : mq_kafka_rd_nstring(rd);
}

static struct mq_kafka_str r_b(struct mq_kafka_rd *rd, bool flex)
{
    return flex ? mq_kafka_rd_cbytes(rd) : mq_kafka_rd_bytes(rd);
}

static int32_t r_a(struct mq_kafka_rd *rd, bool flex)
{
    return flex ? mq_kafka_rd_carray(rd, 1, true) : mq_kafka_rd_array(rd, 1, true);
}

static void r_tags(struct mq_kafka_rd *rd, bool flex)
{
    if (flex)
        mq_kafka_rd_tags(rd);
}

static struct mq_kafka_str sv(const char *s)
{
    struct mq_kafka_str v = {s, s ? (int32_t)strlen(s) : -1};
    return v;
}

/* ListGroups: states ["Stable"] (v4+), types ["classic"] (v5+). */
static void build_list_groups(struct mq_kafka_wr *w, int16_t v)
{
    bool flex = v >= 3;
    if (v >= 4) {
        w_a(w, flex, 1);
        w_s(w, flex, "Stable");
    }
    if (v >= 5) {
        w_a(w, flex, 1);
        w_s(w, flex, "classic");
    }
    w_tags(w, flex);
}

/* DescribeGroups: n groups "g0", "g1"...; include authorized operations (v3+). */
static void build_describe_groups(struct mq_kafka_wr *w, int16_t v, int n)
{
    bool flex = v >= 5;
    w_a(w, flex, n);
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", i);
        w_s(w, flex, id);
    }
    if (v >= 3)
        mq_kafka_wr_bool(w, true);
    w_tags(w, flex);
}

static void build_delete_groups(struct mq_kafka_wr *w, int16_t v)
{
    bool flex = v >= 2;
    w_a(w, flex, 2);
    w_s(w, flex, "g0");
    w_s(w, flex, "");
    w_tags(w, flex);
}

/* DescribeConfigs: topic "t" (every key), broker "0" (keys ["a", "b"]); synonyms (v1+), docs (v3+). */
static void build_describe_configs(struct mq_kafka_wr *w, int16_t v)
{
    bool flex = v >= 4;
    w_a(w, flex, 2);
    mq_kafka_wr_i8(w, MQ_KRES_TOPIC);
    w_s(w, flex, "t");
    w_a(w, flex, -1);
    w_tags(w, flex);
    mq_kafka_wr_i8(w, MQ_KRES_BROKER);
    w_s(w, flex, "0");
    w_a(w, flex, 2);
    w_s(w, flex, "a");
    w_s(w, flex, "b");
    w_tags(w, flex);
    if (v >= 1)
        mq_kafka_wr_bool(w, true);
    if (v >= 3)
        mq_kafka_wr_bool(w, false);
    w_tags(w, flex);
}

/* CreateTopics: "t1" (3 partitions, replication 1, one config) and "t2" (partition 0 on brokers 1 and
 * 2, no config); timeout 5000; validate only (v1+). */
static void build_create_topics(struct mq_kafka_wr *w, int16_t v)
{
    bool flex = v >= 5;
    w_a(w, flex, 2);
    w_s(w, flex, "t1");
    mq_kafka_wr_i32(w, 3);
    mq_kafka_wr_i16(w, 1);
    w_a(w, flex, 0);
    w_a(w, flex, 2);
    w_s(w, flex, "retention.ms");
    w_s(w, flex, "1000");
    w_tags(w, flex);
    w_s(w, flex, "cleanup.policy");
    w_s(w, flex, NULL);
    w_tags(w, flex);
    w_tags(w, flex);
    w_s(w, flex, "t2");
    mq_kafka_wr_i32(w, -1);
    mq_kafka_wr_i16(w, -1);
    w_a(w, flex, 1);
    mq_kafka_wr_i32(w, 0);
    w_a(w, flex, 2);
    mq_kafka_wr_i32(w, 1);
    mq_kafka_wr_i32(w, 2);
    w_tags(w, flex);
    w_a(w, flex, 0);
    w_tags(w, flex);
    mq_kafka_wr_i32(w, 5000);
    if (v >= 1)
        mq_kafka_wr_bool(w, true);
    w_tags(w, flex);
}

/* DeleteTopics: "t1" and, v6+ only, a topic named by id alone (a null name); timeout 5000. */
static void build_delete_topics(struct mq_kafka_wr *w, int16_t v)
{
    bool flex = v >= 4;
    if (v >= 6) {
        w_a(w, flex, 2);
        w_s(w, flex, "t1");
        mq_kafka_wr_i64(w, 0);
        mq_kafka_wr_i64(w, 0);
        w_tags(w, flex);
        w_s(w, flex, NULL);
        mq_kafka_wr_i64(w, 0x0102030405060708LL);
        mq_kafka_wr_i64(w, 0x090a0b0c0d0e0f10LL);
        w_tags(w, flex);
    } else {
        w_a(w, flex, 1);
        w_s(w, flex, "t1");
    }
    mq_kafka_wr_i32(w, 5000);
    w_tags(w, flex);
}

/* DeleteRecords: "t" partitions 0 (before offset 5) and 1 (before 7); timeout 5000. */
static void build_delete_records(struct mq_kafka_wr *w, int16_t v)
{
    bool flex = v >= first_flexible(MQ_KAPI_DELETE_RECORDS);
    w_a(w, flex, 1);
    w_s(w, flex, "t");
    w_a(w, flex, 2);
    for (int p = 0; p < 2; p++) {
        mq_kafka_wr_i32(w, p);
        mq_kafka_wr_i64(w, 5 + 2 * p);
        w_tags(w, flex);
    }
    w_tags(w, flex);
    mq_kafka_wr_i32(w, 5000);
    w_tags(w, flex);
}

/* CreatePartitions: "t" to 4 (assignments null), "u" to 2 (one new partition on brokers 1 and 2);
 * timeout 5000, validate only. */
static void build_create_partitions(struct mq_kafka_wr *w, int16_t v)
{
    bool flex = v >= first_flexible(MQ_KAPI_CREATE_PARTITIONS);
    w_a(w, flex, 2);
    w_s(w, flex, "t");
    mq_kafka_wr_i32(w, 4);
    w_a(w, flex, -1);
    w_tags(w, flex);
    w_s(w, flex, "u");
    mq_kafka_wr_i32(w, 2);
    w_a(w, flex, 1);
    w_a(w, flex, 2);
    mq_kafka_wr_i32(w, 1);
    mq_kafka_wr_i32(w, 2);
    w_tags(w, flex);
    w_tags(w, flex);
    mq_kafka_wr_i32(w, 5000);
    mq_kafka_wr_bool(w, true);
    w_tags(w, flex);
}

/* (Incremental)AlterConfigs: topic "t" (retention.ms=1, x=null), broker "0" (no config); validate
 * only. The incremental form has an operation before each value. */
static void build_alter_configs(struct mq_kafka_wr *w, int16_t key, int16_t v)
{
    bool flex = v >= first_flexible(key), incremental = key == MQ_KAPI_INCREMENTAL_ALTER_CONFIGS;
    w_a(w, flex, 2);
    mq_kafka_wr_i8(w, MQ_KRES_TOPIC);
    w_s(w, flex, "t");
    w_a(w, flex, 2);
    w_s(w, flex, "retention.ms");
    if (incremental)
        mq_kafka_wr_i8(w, 0);
    w_s(w, flex, "1");
    w_tags(w, flex);
    w_s(w, flex, "x");
    if (incremental)
        mq_kafka_wr_i8(w, 1);
    w_s(w, flex, NULL);
    w_tags(w, flex);
    w_tags(w, flex);
    mq_kafka_wr_i8(w, MQ_KRES_BROKER);
    w_s(w, flex, "0");
    w_a(w, flex, 0);
    w_tags(w, flex);
    mq_kafka_wr_bool(w, true);
    w_tags(w, flex);
}

/* CreateAcls (two creations) or DeleteAcls (two filters, the second with null strings). */
static void build_acls(struct mq_kafka_wr *w, int16_t key, int16_t v)
{
    bool flex = v >= first_flexible(key);
    w_a(w, flex, 2);
    for (int i = 0; i < 2; i++) {
        bool nulls = key == MQ_KAPI_DELETE_ACLS && i == 1;
        mq_kafka_wr_i8(w, MQ_KRES_TOPIC);
        w_s(w, flex, nulls ? NULL : "t");
        if (v >= 1)
            mq_kafka_wr_i8(w, 3); /* literal */
        w_s(w, flex, nulls ? NULL : "User:a");
        w_s(w, flex, nulls ? NULL : "*");
        mq_kafka_wr_i8(w, 3); /* read */
        mq_kafka_wr_i8(w, 3); /* allow */
        w_tags(w, flex);
    }
    w_tags(w, flex);
}

static void build_describe_cluster(struct mq_kafka_wr *w, int16_t v)
{
    mq_kafka_wr_bool(w, true);
    if (v >= 1)
        mq_kafka_wr_i8(w, 2);
    mq_kafka_wr_tags(w);
}

static void build_any(struct mq_kafka_wr *w, int16_t key, int16_t v)
{
    switch (key) {
    case MQ_KAPI_LIST_GROUPS:
        build_list_groups(w, v);
        break;
    case MQ_KAPI_DESCRIBE_GROUPS:
        build_describe_groups(w, v, 2);
        break;
    case MQ_KAPI_DELETE_GROUPS:
        build_delete_groups(w, v);
        break;
    case MQ_KAPI_DESCRIBE_CONFIGS:
        build_describe_configs(w, v);
        break;
    case MQ_KAPI_CREATE_TOPICS:
        build_create_topics(w, v);
        break;
    case MQ_KAPI_DELETE_TOPICS:
        build_delete_topics(w, v);
        break;
    case MQ_KAPI_DELETE_RECORDS:
        build_delete_records(w, v);
        break;
    case MQ_KAPI_CREATE_PARTITIONS:
        build_create_partitions(w, v);
        break;
    case MQ_KAPI_ALTER_CONFIGS:
    case MQ_KAPI_INCREMENTAL_ALTER_CONFIGS:
        build_alter_configs(w, key, v);
        break;
    case MQ_KAPI_CREATE_ACLS:
    case MQ_KAPI_DELETE_ACLS:
        build_acls(w, key, v);
        break;
    default:
        build_describe_cluster(w, v);
        break;
    }
}

/* Decodes an admin request of (key, v) from buf; *used gets the bytes read. */
static enum mq_err decode_any(int16_t key, int16_t v, const uint8_t *buf, size_t len, int32_t max_parts,
                              size_t *used)
{
    struct mq_kafka_rd rd;
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    mq_kafka_rd_init(&rd, buf, len);
    rd.max_parts = rd.parts_left = max_parts;
    enum mq_err err;
    switch (key) {
    case MQ_KAPI_LIST_GROUPS: {
        struct mq_kafka_list_groups_req r;
        err = mq_kafka_list_groups_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_DESCRIBE_GROUPS: {
        struct mq_kafka_describe_groups_req r;
        err = mq_kafka_describe_groups_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_DELETE_GROUPS: {
        struct mq_kafka_delete_groups_req r;
        err = mq_kafka_delete_groups_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_DESCRIBE_CONFIGS: {
        struct mq_kafka_describe_configs_req r;
        err = mq_kafka_describe_configs_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_CREATE_TOPICS: {
        struct mq_kafka_topics_change_req r;
        err = mq_kafka_create_topics_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_DELETE_TOPICS: {
        struct mq_kafka_topics_change_req r;
        err = mq_kafka_delete_topics_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_DELETE_RECORDS: {
        struct mq_kafka_delete_records_req r;
        err = mq_kafka_delete_records_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_CREATE_PARTITIONS: {
        struct mq_kafka_topics_change_req r;
        err = mq_kafka_create_partitions_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_ALTER_CONFIGS: {
        struct mq_kafka_alter_configs_req r;
        err = mq_kafka_alter_configs_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_INCREMENTAL_ALTER_CONFIGS: {
        struct mq_kafka_alter_configs_req r;
        err = mq_kafka_incremental_alter_configs_req_decode(&rd, v, &a, &r);
        break;
    }
    case MQ_KAPI_CREATE_ACLS: {
        struct mq_kafka_acls_change_req r;
        err = mq_kafka_create_acls_req_decode(&rd, v, &r);
        break;
    }
    case MQ_KAPI_DELETE_ACLS: {
        struct mq_kafka_acls_change_req r;
        err = mq_kafka_delete_acls_req_decode(&rd, v, &r);
        break;
    }
    default: {
        struct mq_kafka_describe_cluster_req r;
        err = mq_kafka_describe_cluster_req_decode(&rd, v, &r);
        break;
    }
    }
    if (used)
        *used = (size_t)(rd.p - (const uint8_t *)buf);
    mq_kafka_arena_free(&a);
    return err;
}

/* The served range of key from the server's table. */
static void served(int16_t key, int16_t *min, int16_t *max)
{
    size_t n;
    const struct mq_ksrv_api *t = mq_ksrv_apis(&n);
    *min = 0;
    *max = -1;
    for (size_t i = 0; i < n; i++)
        if (t[i].key == key) {
            *min = t[i].min;
            *max = t[i].max;
        }
}

/* ---- tests ---- */

static void test_headers(void)
{
    static const int16_t keys[] = {MQ_KAPI_LIST_GROUPS,
                                   MQ_KAPI_DESCRIBE_GROUPS,
                                   MQ_KAPI_DELETE_GROUPS,
                                   MQ_KAPI_DESCRIBE_CONFIGS,
                                   MQ_KAPI_DESCRIBE_CLUSTER,
                                   MQ_KAPI_CREATE_TOPICS,
                                   MQ_KAPI_DELETE_TOPICS,
                                   MQ_KAPI_DELETE_RECORDS,
                                   MQ_KAPI_CREATE_PARTITIONS,
                                   MQ_KAPI_ALTER_CONFIGS,
                                   MQ_KAPI_INCREMENTAL_ALTER_CONFIGS,
                                   MQ_KAPI_CREATE_ACLS,
                                   MQ_KAPI_DELETE_ACLS};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int16_t min, max;
        served(keys[i], &min, &max);
        CU_ASSERT_TRUE(max >= min);
        for (int16_t v = min; v <= max; v++) {
            bool flex = v >= first_flexible(keys[i]);
            CU_ASSERT_EQUAL(mq_kafka_req_hdr_version(keys[i], v), flex ? 2 : 1);
            CU_ASSERT_EQUAL(mq_kafka_resp_hdr_version(keys[i], v), flex ? 1 : 0);
        }
        CU_ASSERT_STRING_NOT_EQUAL(mq_kafka_api_name(keys[i]), "?");
    }
    CU_ASSERT_STRING_EQUAL(mq_kafka_api_name(MQ_KAPI_DESCRIBE_CONFIGS), "DescribeConfigs");
}

static void test_list_groups(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 5; v++) {
        bool flex = v >= 3;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_list_groups(&w, v);
        size_t len;
        free(hold);
        hold = mq_kafka_wr_take(&w, &len);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, hold, len);
        struct mq_kafka_list_groups_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_list_groups_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL(r.states_count, v >= 4 ? 1 : 0);
        if (v >= 4)
            CU_ASSERT_TRUE(mq_kafka_str_eq(r.states[0], "Stable"));
        CU_ASSERT_EQUAL(r.types_count, v >= 5 ? 1 : 0);
        if (v >= 5)
            CU_ASSERT_TRUE(mq_kafka_str_eq(r.types[0], "classic"));

        struct mq_kafka_listed_group gs[2] = {{sv("g1"), sv("consumer"), "Stable", "classic"},
                                              {sv("g2"), sv(""), "Empty", "classic"}};
        r.groups = gs;
        r.group_count = 2;
        mq_kafka_list_groups_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "g2" : "g1"));
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "" : "consumer"));
            if (v >= 4)
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "Empty" : "Stable"));
            if (v >= 5)
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "classic"));
            r_tags(&rd, flex);
        }
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    free(hold);
}

static void test_describe_groups(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 5; v++) {
        bool flex = v >= 5;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_describe_groups(&w, v, 2);
        size_t len;
        free(hold);
        hold = mq_kafka_wr_take(&w, &len);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, hold, len);
        struct mq_kafka_describe_groups_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_describe_groups_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL_FATAL(r.group_count, 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.groups[0].group_id, "g0"));
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.groups[1].group_id, "g1"));
        CU_ASSERT_EQUAL(r.include_authorized_operations, v >= 3);

        struct mq_kafka_described_member m = {sv("m-1"),        sv("inst"),      sv("cli"),
                                              sv("/127.0.0.1"), {"\x00\x01", 2}, {"\x00\x02\x03", 3}};
        r.groups[0].state = "Stable";
        r.groups[0].protocol_type = sv("consumer");
        r.groups[0].protocol = sv("range");
        r.groups[0].member_count = 1;
        r.groups[0].members = &m;
        r.groups[1].state = "Dead";
        mq_kafka_describe_groups_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "g1" : "g0"));
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "Dead" : "Stable"));
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "" : "consumer"));
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "" : "range"));
            CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), i ? 0 : 1);
            if (i == 0) {
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "m-1"));
                if (v >= 4)
                    CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "inst"));
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "cli"));
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "/127.0.0.1"));
                struct mq_kafka_str md = r_b(&rd, flex), as = r_b(&rd, flex);
                CU_ASSERT_TRUE(md.len == 2 && memcmp(md.ptr, "\x00\x01", 2) == 0);
                CU_ASSERT_TRUE(as.len == 3 && memcmp(as.ptr, "\x00\x02\x03", 3) == 0);
                r_tags(&rd, flex);
            }
            if (v >= 3)
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), INT32_MIN);
            r_tags(&rd, flex);
        }
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    free(hold);
}

static void test_delete_groups(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 2; v++) {
        bool flex = v >= 2;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_delete_groups(&w, v);
        size_t len;
        free(hold);
        hold = mq_kafka_wr_take(&w, &len);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, hold, len);
        struct mq_kafka_delete_groups_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_delete_groups_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL_FATAL(r.group_count, 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.groups[0].group_id, "g0"));
        CU_ASSERT_EQUAL(r.groups[1].group_id.len, 0);
        r.groups[0].error = MQ_KC_NON_EMPTY_GROUP;
        r.groups[1].error = MQ_KC_INVALID_GROUP_ID;
        mq_kafka_delete_groups_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "g0"));
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 68);
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), ""));
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 24);
        r_tags(&rd, flex);
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    free(hold);
}

static void test_describe_configs(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 4; v++) {
        bool flex = v >= 4;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_describe_configs(&w, v);
        size_t len;
        free(hold);
        hold = mq_kafka_wr_take(&w, &len);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, hold, len);
        struct mq_kafka_describe_configs_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_describe_configs_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL_FATAL(r.resource_count, 2);
        CU_ASSERT_EQUAL(r.resources[0].type, MQ_KRES_TOPIC);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.resources[0].name, "t"));
        CU_ASSERT_EQUAL(r.resources[0].key_count, -1);
        CU_ASSERT_EQUAL(r.resources[1].type, MQ_KRES_BROKER);
        CU_ASSERT_EQUAL_FATAL(r.resources[1].key_count, 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.resources[1].keys[1], "b"));
        CU_ASSERT_EQUAL(r.include_synonyms, v >= 1);

        struct mq_kafka_config_entry c[2] = {
            {"retention.ms", "86400000", true, false, false, MQ_KCFG_SOURCE_DYNAMIC_TOPIC, MQ_KCFG_TYPE_LONG},
            {"cleanup.policy", "delete", true, true, false, MQ_KCFG_SOURCE_DEFAULT, MQ_KCFG_TYPE_LIST},
        };
        r.resources[0].configs = c;
        r.resources[0].config_count = 2;
        r.resources[1].error = MQ_KC_INVALID_REQUEST;
        r.resources[1].error_message = "no";
        mq_kafka_describe_configs_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), i ? 42 : 0);
            struct mq_kafka_str msg = r_s(&rd, flex);
            CU_ASSERT_TRUE(i ? mq_kafka_str_eq(msg, "no") : msg.len == -1);
            CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), i ? MQ_KRES_BROKER : MQ_KRES_TOPIC);
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "0" : "t"));
            CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), i ? 0 : 2);
            for (int j = 0; i == 0 && j < 2; j++) {
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), c[j].name));
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), c[j].value));
                CU_ASSERT_EQUAL(mq_kafka_rd_bool(&rd), true); /* read only */
                if (v == 0) {
                    CU_ASSERT_EQUAL(mq_kafka_rd_bool(&rd), j == 1);
                } else {
                    CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), c[j].source);
                }
                CU_ASSERT_EQUAL(mq_kafka_rd_bool(&rd), false); /* sensitive */
                if (v >= 1) {
                    CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 1);
                    CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), c[j].name));
                    CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), c[j].value));
                    CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), c[j].source);
                    r_tags(&rd, flex);
                }
                if (v >= 3) {
                    CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), c[j].type);
                    CU_ASSERT_EQUAL(r_s(&rd, flex).len, -1); /* documentation */
                }
                r_tags(&rd, flex);
            }
            r_tags(&rd, flex);
        }
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
    free(hold);
}

static void test_describe_cluster(void)
{
    uint8_t *hold = NULL;
    for (int16_t v = 0; v <= 1; v++) {
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_describe_cluster(&w, v);
        size_t len;
        free(hold);
        hold = mq_kafka_wr_take(&w, &len);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, hold, len);
        struct mq_kafka_describe_cluster_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_describe_cluster_req_decode(&rd, v, &r), MQ_OK);
        CU_ASSERT_TRUE(r.include_cluster_authorized_operations);
        CU_ASSERT_EQUAL(r.endpoint_type, v >= 1 ? 2 : MQ_KAFKA_ENDPOINT_BROKERS);
        r.endpoint_type = MQ_KAFKA_ENDPOINT_BROKERS;
        r.cluster_id = "mqlog";
        r.node_id = 3;
        r.host = "h";
        r.port = 9092;
        mq_kafka_describe_cluster_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_cnstring(&rd).len, -1);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_cstring(&rd), "mqlog"));
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 3); /* controller */
        CU_ASSERT_EQUAL_FATAL(mq_kafka_rd_carray(&rd, 1, false), 1);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 3);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_cstring(&rd), "h"));
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 9092);
        CU_ASSERT_EQUAL(mq_kafka_rd_cnstring(&rd).len, -1); /* rack */
        mq_kafka_rd_tags(&rd);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), INT32_MIN);
        mq_kafka_rd_tags(&rd);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);

        /* Controllers asked for: the error, no broker. */
        r.error = MQ_KC_UNSUPPORTED_ENDPOINT_TYPE;
        r.error_message = "brokers only";
        mq_kafka_wr_reset(&w);
        mq_kafka_describe_cluster_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 119);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_cnstring(&rd), "brokers only"));
        if (v >= 1)
            (void)mq_kafka_rd_i8(&rd);
        (void)mq_kafka_rd_cstring(&rd);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), -1);
        CU_ASSERT_EQUAL(mq_kafka_rd_carray(&rd, 1, false), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), INT32_MIN);
        mq_kafka_rd_tags(&rd);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        mq_kafka_wr_free(&w);
    }
    free(hold);
}

/* Every prefix of buf shorter than the whole fails with MQ_ERR_PROTOCOL, each copied to a buffer of
 * exactly its size so that ASan sees a read past it. */
static void check_prefixes(int16_t key, int16_t v, const uint8_t *buf, size_t len)
{
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        CU_ASSERT_FATAL(c != NULL);
        memcpy(c, buf, cut);
        enum mq_err got = decode_any(key, v, c, cut, INT32_MAX, NULL);
        if (got != MQ_ERR_PROTOCOL)
            fprintf(stderr, "%s v%d: prefix %zu of %zu: %s\n", mq_kafka_api_name(key), v, cut, len,
                    mq_strerror(got));
        CU_ASSERT_EQUAL(got, MQ_ERR_PROTOCOL);
        free(c);
    }
}

/* Every admin (key, version) served: the sample decodes reading all of it (trailing bytes ignored), every
 * truncation fails, random mutations never crash (ASan). */
static void test_truncation_and_mutation(void)
{
    static const int16_t keys[] = {MQ_KAPI_LIST_GROUPS,
                                   MQ_KAPI_DESCRIBE_GROUPS,
                                   MQ_KAPI_DELETE_GROUPS,
                                   MQ_KAPI_DESCRIBE_CONFIGS,
                                   MQ_KAPI_DESCRIBE_CLUSTER,
                                   MQ_KAPI_CREATE_TOPICS,
                                   MQ_KAPI_DELETE_TOPICS,
                                   MQ_KAPI_DELETE_RECORDS,
                                   MQ_KAPI_CREATE_PARTITIONS,
                                   MQ_KAPI_ALTER_CONFIGS,
                                   MQ_KAPI_INCREMENTAL_ALTER_CONFIGS,
                                   MQ_KAPI_CREATE_ACLS,
                                   MQ_KAPI_DELETE_ACLS};
    unsigned seed = 4242;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int16_t min, max;
        served(keys[i], &min, &max);
        for (int16_t v = min; v <= max; v++) {
            struct mq_kafka_wr w;
            mq_kafka_wr_init(&w);
            build_any(&w, keys[i], v);
            CU_ASSERT_FATAL(mq_kafka_wr_ok(&w));
            uint8_t *exact = malloc(w.len + 8);
            CU_ASSERT_FATAL(exact != NULL);
            if (w.len)
                memcpy(exact, w.buf, w.len);
            for (size_t k = 0; k < 8; k++)
                exact[w.len + k] = (uint8_t)rand_r(&seed);
            size_t used = 0;
            CU_ASSERT_EQUAL(decode_any(keys[i], v, exact, w.len + 8, INT32_MAX, &used), MQ_OK);
            CU_ASSERT_EQUAL(used, w.len);
            check_prefixes(keys[i], v, exact, w.len);
            for (int iter = 0; iter < 300 && w.len; iter++) {
                memcpy(exact, w.buf, w.len);
                size_t pos = (size_t)rand_r(&seed) % w.len;
                exact[pos] = (uint8_t)rand_r(&seed);
                enum mq_err err = decode_any(keys[i], v, exact, w.len, INT32_MAX, NULL);
                CU_ASSERT_TRUE(err == MQ_OK || err == MQ_ERR_PROTOCOL);
            }
            free(exact);
            mq_kafka_wr_free(&w);
        }
    }
}

/* CreateTopics, every version: both topics decoded (details skipped), each refused with its message
 * where the version has one, in the response layout of that version. */
static void test_create_topics(void)
{
    static const char why[] = "see mqlog create";
    for (int16_t v = 0; v <= 7; v++) {
        bool flex = v >= 5;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_create_topics(&w, v);
        size_t len;
        uint8_t *req = mq_kafka_wr_take(&w, &len);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, req, len);
        struct mq_kafka_topics_change_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_create_topics_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r.topic_count, 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.topics[0].name, "t1"));
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.topics[1].name, "t2"));
        CU_ASSERT_EQUAL(r.timeout_ms, 5000);
        CU_ASSERT_EQUAL(r.validate_only, v >= 1);
        for (int i = 0; i < 2; i++) {
            r.topics[i].error = MQ_KC_INVALID_REQUEST;
            r.topics[i].error_message = why;
        }
        mq_kafka_create_topics_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 2)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "t2" : "t1"));
            if (v >= 7) {
                CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 0);
                CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 0);
            }
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 42);
            if (v >= 1)
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), why));
            if (v >= 5) {
                CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), -1);
                CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), -1);
                CU_ASSERT_EQUAL(r_a(&rd, flex), 0);
            }
            r_tags(&rd, flex);
        }
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        free(req);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
}

/* DeleteTopics, every version: names (v6+: a name or an id, echoed), the message from v5. */
static void test_delete_topics(void)
{
    for (int16_t v = 0; v <= 6; v++) {
        bool flex = v >= 4;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_delete_topics(&w, v);
        size_t len;
        uint8_t *req = mq_kafka_wr_take(&w, &len);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, req, len);
        struct mq_kafka_topics_change_req r;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_delete_topics_req_decode(&rd, v, &a, &r), MQ_OK);
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        int32_t n = v >= 6 ? 2 : 1;
        CU_ASSERT_EQUAL_FATAL(r.topic_count, n);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r.topics[0].name, "t1"));
        CU_ASSERT_EQUAL(r.timeout_ms, 5000);
        for (int32_t i = 0; i < n; i++) {
            r.topics[i].error = MQ_KC_INVALID_REQUEST;
            r.topics[i].error_message = "no";
        }
        mq_kafka_delete_topics_resp_encode(&w, v, &r);
        mq_kafka_rd_init(&rd, w.buf, w.len);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), n);
        for (int32_t i = 0; i < n; i++) {
            struct mq_kafka_str name = r_s(&rd, flex);
            CU_ASSERT_TRUE(i == 0 ? mq_kafka_str_eq(name, "t1") : name.len == -1);
            if (v >= 6) {
                CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), i ? 0x0102030405060708LL : 0);
                CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), i ? 0x090a0b0c0d0e0f10LL : 0);
            }
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 42);
            if (v >= 5)
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "no"));
            r_tags(&rd, flex);
        }
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        free(req);
        mq_kafka_wr_free(&w);
        mq_kafka_arena_free(&a);
    }
}

/* Decodes the sample request of (key, v) into the struct q of that API, reading all of it. */
static void decode_sample(int16_t key, int16_t v, struct mq_kafka_arena *a, struct mq_kafka_wr *w, void *q)
{
    mq_kafka_wr_reset(w);
    build_any(w, key, v);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, w->buf, w->len);
    enum mq_err err;
    switch (key) {
    case MQ_KAPI_DELETE_RECORDS:
        err = mq_kafka_delete_records_req_decode(&rd, v, a, q);
        break;
    case MQ_KAPI_CREATE_PARTITIONS:
        err = mq_kafka_create_partitions_req_decode(&rd, v, a, q);
        break;
    case MQ_KAPI_ALTER_CONFIGS:
        err = mq_kafka_alter_configs_req_decode(&rd, v, a, q);
        break;
    case MQ_KAPI_INCREMENTAL_ALTER_CONFIGS:
        err = mq_kafka_incremental_alter_configs_req_decode(&rd, v, a, q);
        break;
    case MQ_KAPI_CREATE_ACLS:
        err = mq_kafka_create_acls_req_decode(&rd, v, q);
        break;
    default:
        err = mq_kafka_delete_acls_req_decode(&rd, v, q);
        break;
    }
    CU_ASSERT_EQUAL(err, MQ_OK);
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
}

/* DeleteRecords, CreatePartitions, (Incremental)AlterConfigs, CreateAcls, DeleteAcls, every version: what
 * the response echoes is decoded, and the refusal is encoded in that version's layout. */
static void test_other_refusals(void)
{
    struct mq_kafka_wr w, out;
    mq_kafka_wr_init(&w);
    mq_kafka_wr_init(&out);
    struct mq_kafka_rd rd;
    for (int16_t v = 0; v <= 2; v++) {
        bool flex = v >= 2;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_delete_records_req q;
        decode_sample(MQ_KAPI_DELETE_RECORDS, v, &a, &w, &q);
        CU_ASSERT_EQUAL_FATAL(q.topic_count, 1);
        CU_ASSERT_EQUAL_FATAL(q.topics[0].partition_count, 2);
        CU_ASSERT_EQUAL(q.topics[0].partitions[1], 1);
        CU_ASSERT_EQUAL(q.timeout_ms, 5000);
        q.error = MQ_KC_INVALID_REQUEST;
        mq_kafka_wr_reset(&out);
        mq_kafka_delete_records_resp_encode(&out, v, &q);
        mq_kafka_rd_init(&rd, out.buf, out.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 1);
        CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "t"));
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
        for (int p = 0; p < 2; p++) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), p);
            CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), -1);
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 42);
            r_tags(&rd, flex);
        }
        r_tags(&rd, flex);
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd) && mq_kafka_rd_left(&rd) == 0);
        mq_kafka_arena_free(&a);
    }
    for (int16_t v = 0; v <= 3; v++) {
        bool flex = v >= 2;
        struct mq_kafka_arena a;
        mq_kafka_arena_init(&a);
        struct mq_kafka_topics_change_req q;
        decode_sample(MQ_KAPI_CREATE_PARTITIONS, v, &a, &w, &q);
        CU_ASSERT_EQUAL_FATAL(q.topic_count, 2);
        CU_ASSERT_TRUE(mq_kafka_str_eq(q.topics[1].name, "u"));
        CU_ASSERT_TRUE(q.validate_only);
        for (int i = 0; i < 2; i++) {
            q.topics[i].error = MQ_KC_INVALID_REQUEST;
            q.topics[i].error_message = i ? "no" : NULL;
        }
        mq_kafka_wr_reset(&out);
        mq_kafka_create_partitions_resp_encode(&out, v, &q);
        mq_kafka_rd_init(&rd, out.buf, out.len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "u" : "t"));
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 42);
            struct mq_kafka_str m = r_s(&rd, flex);
            CU_ASSERT_TRUE(i ? mq_kafka_str_eq(m, "no") : m.len == -1);
            r_tags(&rd, flex);
        }
        r_tags(&rd, flex);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd) && mq_kafka_rd_left(&rd) == 0);
        mq_kafka_arena_free(&a);
    }
    static const int16_t alters[] = {MQ_KAPI_ALTER_CONFIGS, MQ_KAPI_INCREMENTAL_ALTER_CONFIGS};
    for (int k = 0; k < 2; k++) {
        for (int16_t v = 0; v <= (k ? 1 : 2); v++) {
            bool flex = v >= first_flexible(alters[k]);
            struct mq_kafka_arena a;
            mq_kafka_arena_init(&a);
            struct mq_kafka_alter_configs_req q;
            decode_sample(alters[k], v, &a, &w, &q);
            CU_ASSERT_EQUAL_FATAL(q.resource_count, 2);
            CU_ASSERT_EQUAL(q.resources[1].type, MQ_KRES_BROKER);
            CU_ASSERT_TRUE(q.validate_only);
            for (int i = 0; i < 2; i++) {
                q.resources[i].error = MQ_KC_INVALID_REQUEST;
                q.resources[i].error_message = "yaml";
            }
            mq_kafka_wr_reset(&out);
            if (k)
                mq_kafka_incremental_alter_configs_resp_encode(&out, v, &q);
            else
                mq_kafka_alter_configs_resp_encode(&out, v, &q);
            mq_kafka_rd_init(&rd, out.buf, out.len);
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
            CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
            for (int i = 0; i < 2; i++) {
                CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 42);
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "yaml"));
                CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), i ? MQ_KRES_BROKER : MQ_KRES_TOPIC);
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), i ? "0" : "t"));
                r_tags(&rd, flex);
            }
            r_tags(&rd, flex);
            CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd) && mq_kafka_rd_left(&rd) == 0);
            mq_kafka_arena_free(&a);
        }
    }
    static const int16_t acls[] = {MQ_KAPI_CREATE_ACLS, MQ_KAPI_DELETE_ACLS};
    for (int k = 0; k < 2; k++) {
        for (int16_t v = 0; v <= 3; v++) {
            bool flex = v >= 2;
            struct mq_kafka_acls_change_req q;
            decode_sample(acls[k], v, NULL, &w, &q);
            CU_ASSERT_EQUAL_FATAL(q.count, 2);
            q.error = MQ_KC_INVALID_REQUEST;
            q.error_message = "acls";
            mq_kafka_wr_reset(&out);
            if (k)
                mq_kafka_delete_acls_resp_encode(&out, v, &q);
            else
                mq_kafka_create_acls_resp_encode(&out, v, &q);
            mq_kafka_rd_init(&rd, out.buf, out.len);
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
            CU_ASSERT_EQUAL_FATAL(r_a(&rd, flex), 2);
            for (int i = 0; i < 2; i++) {
                CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 42);
                CU_ASSERT_TRUE(mq_kafka_str_eq(r_s(&rd, flex), "acls"));
                if (k)
                    CU_ASSERT_EQUAL(r_a(&rd, flex), 0); /* matching ACLs */
                r_tags(&rd, flex);
            }
            r_tags(&rd, flex);
            CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd) && mq_kafka_rd_left(&rd) == 0);
        }
    }
    mq_kafka_wr_free(&w);
    mq_kafka_wr_free(&out);
}

/* A request naming more groups (or config resources) than max_parts is too large, not malformed. */
static void test_max_parts(void)
{
    for (int16_t v = 0; v <= 5; v++) {
        struct mq_kafka_wr w;
        mq_kafka_wr_init(&w);
        build_describe_groups(&w, v, 5);
        CU_ASSERT_EQUAL(decode_any(MQ_KAPI_DESCRIBE_GROUPS, v, w.buf, w.len, 5, NULL), MQ_OK);
        CU_ASSERT_EQUAL(decode_any(MQ_KAPI_DESCRIBE_GROUPS, v, w.buf, w.len, 4, NULL), MQ_ERR_RANGE);
        mq_kafka_wr_free(&w);
    }
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    build_describe_configs(&w, 4);
    CU_ASSERT_EQUAL(decode_any(MQ_KAPI_DESCRIBE_CONFIGS, 4, w.buf, w.len, 1, NULL), MQ_ERR_RANGE);
    mq_kafka_wr_reset(&w);
    build_delete_groups(&w, 2);
    CU_ASSERT_EQUAL(decode_any(MQ_KAPI_DELETE_GROUPS, 2, w.buf, w.len, 1, NULL), MQ_ERR_RANGE);
    mq_kafka_wr_reset(&w);
    build_create_topics(&w, 5);
    CU_ASSERT_EQUAL(decode_any(MQ_KAPI_CREATE_TOPICS, 5, w.buf, w.len, 1, NULL), MQ_ERR_RANGE);
    mq_kafka_wr_reset(&w);
    build_delete_topics(&w, 6);
    CU_ASSERT_EQUAL(decode_any(MQ_KAPI_DELETE_TOPICS, 6, w.buf, w.len, 1, NULL), MQ_ERR_RANGE);
    mq_kafka_wr_reset(&w);
    build_delete_records(&w, 2); /* one topic, two partitions */
    CU_ASSERT_EQUAL(decode_any(MQ_KAPI_DELETE_RECORDS, 2, w.buf, w.len, 1, NULL), MQ_ERR_RANGE);
    CU_ASSERT_EQUAL(decode_any(MQ_KAPI_DELETE_RECORDS, 2, w.buf, w.len, 2, NULL), MQ_OK);
    mq_kafka_wr_free(&w);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_headers),          MQ_TEST(test_list_groups),
        MQ_TEST(test_describe_groups),  MQ_TEST(test_delete_groups),
        MQ_TEST(test_describe_configs), MQ_TEST(test_describe_cluster),
        MQ_TEST(test_create_topics),    MQ_TEST(test_delete_topics),
        MQ_TEST(test_other_refusals),   MQ_TEST(test_truncation_and_mutation),
        MQ_TEST(test_max_parts),        MQ_TEST_END,
    };
    return mq_test_run("kafka_admin", tests);
}
