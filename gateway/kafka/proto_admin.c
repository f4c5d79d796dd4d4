/*
 * proto_admin.c - decoders and encoders of the admin requests (see proto_admin.h), field by field as
 * Kafka's message definitions list them per version.
 *
 * These APIs turned flexible at different versions, so every string, array and byte field goes through a
 * helper below that picks the classic or the compact form from a `flex` flag computed once per call. As
 * in proto.c, array counts are checked against the bytes left before the arena allocates for them.
 */
#include "kafka/proto_admin.h"

#include <string.h>

/* ---- both forms of each type ---- */

static const struct mq_kafka_str null_str = {NULL, -1};
static const struct mq_kafka_str empty_str = {"", 0};

static bool flexible(int16_t key, int16_t v)
{
    return mq_kafka_req_hdr_version(key, v) >= 2;
}

static struct mq_kafka_str rd_str(struct mq_kafka_rd *rd, bool flex)
{
    return flex ? mq_kafka_rd_cstring(rd) : mq_kafka_rd_string(rd);
}

static int32_t rd_arr(struct mq_kafka_rd *rd, bool flex, size_t min_elem_size, bool nullable)
{
    return flex ? mq_kafka_rd_carray(rd, min_elem_size, nullable)
                : mq_kafka_rd_array(rd, min_elem_size, nullable);
}

static void rd_tags(struct mq_kafka_rd *rd, bool flex)
{
    if (flex)
        mq_kafka_rd_tags(rd);
}

/* Allocates n elements for a decoded array, failing the reader when the arena cannot. */
static void *arr(struct mq_kafka_rd *rd, struct mq_kafka_arena *a, int32_t n, size_t size)
{
    if (!mq_kafka_rd_ok(rd) || n < 0)
        return NULL;
    void *p = mq_kafka_arena_calloc(a, (size_t)n, size);
    if (!p) {
        rd->err = MQ_ERR_NOMEM;
        rd->p = rd->end;
    }
    return p;
}

/* An array of the things a response answers one by one (groups, resources): at most the reader's
 * max_parts, as for topics (wire.h), so that a small request cannot ask for a huge response. */
static int32_t rd_entities(struct mq_kafka_rd *rd, bool flex, size_t min_elem_size)
{
    int32_t n = rd_arr(rd, flex, min_elem_size, false);
    if (n > rd->max_parts) {
        if (rd->err == MQ_OK)
            rd->err = MQ_ERR_RANGE;
        rd->p = rd->end;
        return 0;
    }
    return n;
}

/* An array of strings (group ids, state names, config keys); -1 stays -1 (null) when nullable. Group ids
 * count against max_parts (rd_entities()). */
static struct mq_kafka_str *rd_strings(struct mq_kafka_rd *rd, bool flex, struct mq_kafka_arena *a,
                                       bool nullable, bool entities, int32_t *count)
{
    size_t min = flex ? 1 : 2;
    int32_t n = entities ? rd_entities(rd, flex, min) : rd_arr(rd, flex, min, nullable);
    struct mq_kafka_str *s = arr(rd, a, n, sizeof *s);
    for (int32_t i = 0; s && i < n && mq_kafka_rd_ok(rd); i++)
        s[i] = rd_str(rd, flex);
    *count = mq_kafka_rd_ok(rd) ? n : 0;
    return mq_kafka_rd_ok(rd) ? s : NULL;
}

static void wr_str(struct mq_kafka_wr *wr, bool flex, struct mq_kafka_str s)
{
    if (flex)
        mq_kafka_wr_cstr(wr, s);
    else
        mq_kafka_wr_str(wr, s);
}

/* A C string; NULL writes null (only for nullable fields). */
static void wr_cs(struct mq_kafka_wr *wr, bool flex, const char *s)
{
    if (flex)
        mq_kafka_wr_cstring(wr, s);
    else
        mq_kafka_wr_string(wr, s);
}

/* A non-nullable BYTES field: a null view is written empty. */
static void wr_bytes(struct mq_kafka_wr *wr, bool flex, struct mq_kafka_str b)
{
    const void *p = b.len > 0 ? b.ptr : "";
    int32_t len = b.len > 0 ? b.len : 0;
    if (flex)
        mq_kafka_wr_cbytes(wr, p, len);
    else
        mq_kafka_wr_bytes(wr, p, len);
}

static void wr_arr(struct mq_kafka_wr *wr, bool flex, int32_t n)
{
    if (flex)
        mq_kafka_wr_carray(wr, n);
    else
        mq_kafka_wr_array(wr, n);
}

static void wr_tags(struct mq_kafka_wr *wr, bool flex)
{
    if (flex)
        mq_kafka_wr_tags(wr);
}

static struct mq_kafka_str or_empty(struct mq_kafka_str s)
{
    return s.len >= 0 && s.ptr ? s : empty_str;
}

/* ---- ListGroups ---- */

enum mq_err mq_kafka_list_groups_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                            struct mq_kafka_list_groups_req *r)
{
    bool flex = flexible(MQ_KAPI_LIST_GROUPS, v);
    memset(r, 0, sizeof *r);
    if (v >= 4)
        r->states = rd_strings(rd, flex, a, false, false, &r->states_count);
    if (v >= 5)
        r->types = rd_strings(rd, flex, a, false, false, &r->types_count);
    rd_tags(rd, flex);
    return rd->err;
}

void mq_kafka_list_groups_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_list_groups_req *r)
{
    bool flex = flexible(MQ_KAPI_LIST_GROUPS, v);
    if (v >= 1)
        mq_kafka_wr_i32(wr, 0); /* throttle time */
    mq_kafka_wr_i16(wr, r->error);
    wr_arr(wr, flex, r->group_count);
    for (int32_t i = 0; i < r->group_count; i++) {
        const struct mq_kafka_listed_group *g = &r->groups[i];
        wr_str(wr, flex, or_empty(g->group_id));
        wr_str(wr, flex, or_empty(g->protocol_type));
        if (v >= 4)
            wr_cs(wr, flex, g->state ? g->state : "");
        if (v >= 5)
            wr_cs(wr, flex, g->type ? g->type : "");
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

/* ---- DescribeGroups ---- */

enum mq_err mq_kafka_describe_groups_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                                struct mq_kafka_describe_groups_req *r)
{
    bool flex = flexible(MQ_KAPI_DESCRIBE_GROUPS, v);
    memset(r, 0, sizeof *r);
    int32_t n = 0;
    struct mq_kafka_str *ids = rd_strings(rd, flex, a, false, true, &n);
    r->groups = arr(rd, a, n, sizeof *r->groups);
    for (int32_t i = 0; r->groups && i < n; i++)
        r->groups[i].group_id = ids[i];
    r->group_count = r->groups ? n : 0;
    if (v >= 3)
        r->include_authorized_operations = mq_kafka_rd_bool(rd);
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->group_count = 0;
    return rd->err;
}

void mq_kafka_describe_groups_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                          const struct mq_kafka_describe_groups_req *r)
{
    bool flex = flexible(MQ_KAPI_DESCRIBE_GROUPS, v);
    if (v >= 1)
        mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->group_count);
    for (int32_t i = 0; i < r->group_count; i++) {
        const struct mq_kafka_described_group *g = &r->groups[i];
        mq_kafka_wr_i16(wr, g->error);
        wr_str(wr, flex, or_empty(g->group_id));
        wr_cs(wr, flex, g->state ? g->state : "");
        wr_str(wr, flex, or_empty(g->protocol_type));
        wr_str(wr, flex, or_empty(g->protocol));
        wr_arr(wr, flex, g->member_count);
        for (int32_t j = 0; j < g->member_count; j++) {
            const struct mq_kafka_described_member *m = &g->members[j];
            wr_str(wr, flex, or_empty(m->member_id));
            if (v >= 4)
                wr_str(wr, flex, m->group_instance_id.ptr ? m->group_instance_id : null_str);
            wr_str(wr, flex, or_empty(m->client_id));
            wr_str(wr, flex, or_empty(m->client_host));
            wr_bytes(wr, flex, m->metadata);
            wr_bytes(wr, flex, m->assignment);
            wr_tags(wr, flex);
        }
        if (v >= 3)
            mq_kafka_wr_i32(wr, INT32_MIN); /* authorized operations: not computed */
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

/* ---- DeleteGroups ---- */

enum mq_err mq_kafka_delete_groups_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_delete_groups_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_GROUPS, v);
    memset(r, 0, sizeof *r);
    int32_t n = 0;
    struct mq_kafka_str *ids = rd_strings(rd, flex, a, false, true, &n);
    r->groups = arr(rd, a, n, sizeof *r->groups);
    for (int32_t i = 0; r->groups && i < n; i++)
        r->groups[i].group_id = ids[i];
    r->group_count = r->groups ? n : 0;
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->group_count = 0;
    return rd->err;
}

void mq_kafka_delete_groups_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_delete_groups_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_GROUPS, v);
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->group_count);
    for (int32_t i = 0; i < r->group_count; i++) {
        wr_str(wr, flex, or_empty(r->groups[i].group_id));
        mq_kafka_wr_i16(wr, r->groups[i].error);
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

/* ---- DescribeConfigs ---- */

enum mq_err mq_kafka_describe_configs_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                                 struct mq_kafka_describe_configs_req *r)
{
    bool flex = flexible(MQ_KAPI_DESCRIBE_CONFIGS, v);
    memset(r, 0, sizeof *r);
    /* A resource: type, name, keys (a null array at least): 1 + 2 + 4 bytes classic, 1 + 1 + 1 compact. */
    int32_t n = rd_entities(rd, flex, flex ? 3 : 7);
    r->resources = arr(rd, a, n, sizeof *r->resources);
    for (int32_t i = 0; r->resources && i < n && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_config_resource *res = &r->resources[i];
        res->type = mq_kafka_rd_i8(rd);
        res->name = rd_str(rd, flex);
        res->keys = rd_strings(rd, flex, a, true, false, &res->key_count);
        rd_tags(rd, flex);
    }
    r->resource_count = mq_kafka_rd_ok(rd) ? n : 0;
    if (v >= 1)
        r->include_synonyms = mq_kafka_rd_bool(rd);
    if (v >= 3)
        r->include_documentation = mq_kafka_rd_bool(rd);
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->resource_count = 0;
    return rd->err;
}

void mq_kafka_describe_configs_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_describe_configs_req *r)
{
    bool flex = flexible(MQ_KAPI_DESCRIBE_CONFIGS, v);
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->resource_count);
    for (int32_t i = 0; i < r->resource_count; i++) {
        const struct mq_kafka_config_resource *res = &r->resources[i];
        mq_kafka_wr_i16(wr, res->error);
        wr_cs(wr, flex, res->error_message);
        mq_kafka_wr_i8(wr, res->type);
        wr_str(wr, flex, or_empty(res->name));
        wr_arr(wr, flex, res->config_count);
        for (int32_t j = 0; j < res->config_count; j++) {
            const struct mq_kafka_config_entry *c = &res->configs[j];
            wr_cs(wr, flex, c->name);
            wr_cs(wr, flex, c->value);
            mq_kafka_wr_bool(wr, c->read_only);
            if (v == 0)
                mq_kafka_wr_bool(wr, c->is_default);
            else
                mq_kafka_wr_i8(wr, c->source);
            mq_kafka_wr_bool(wr, c->is_sensitive);
            if (v >= 1) {
                /* Synonyms: the entry itself, the one place mqlog takes the value from. */
                wr_arr(wr, flex, r->include_synonyms ? 1 : 0);
                if (r->include_synonyms) {
                    wr_cs(wr, flex, c->name);
                    wr_cs(wr, flex, c->value);
                    mq_kafka_wr_i8(wr, c->source);
                    wr_tags(wr, flex);
                }
            }
            if (v >= 3) {
                mq_kafka_wr_i8(wr, c->type);
                wr_cs(wr, flex, NULL); /* documentation */
            }
            wr_tags(wr, flex);
        }
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

/* ---- DescribeCluster ---- */

enum mq_err mq_kafka_describe_cluster_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                 struct mq_kafka_describe_cluster_req *r)
{
    memset(r, 0, sizeof *r);
    r->include_cluster_authorized_operations = mq_kafka_rd_bool(rd);
    r->endpoint_type = v >= 1 ? mq_kafka_rd_i8(rd) : MQ_KAFKA_ENDPOINT_BROKERS;
    mq_kafka_rd_tags(rd);
    return rd->err;
}

void mq_kafka_describe_cluster_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_describe_cluster_req *r)
{
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    mq_kafka_wr_i16(wr, r->error);
    mq_kafka_wr_cstring(wr, r->error_message);
    if (v >= 1)
        mq_kafka_wr_i8(wr, r->endpoint_type);
    mq_kafka_wr_cstring(wr, r->cluster_id ? r->cluster_id : "");
    mq_kafka_wr_i32(wr, r->error == MQ_KC_NONE ? r->node_id : -1); /* controller */
    mq_kafka_wr_carray(wr, r->error == MQ_KC_NONE ? 1 : 0);
    if (r->error == MQ_KC_NONE) {
        mq_kafka_wr_i32(wr, r->node_id);
        mq_kafka_wr_cstring(wr, r->host ? r->host : "");
        mq_kafka_wr_i32(wr, r->port);
        mq_kafka_wr_cstring(wr, NULL); /* rack */
        mq_kafka_wr_tags(wr);
    }
    mq_kafka_wr_i32(wr, INT32_MIN); /* cluster authorized operations: not computed */
    mq_kafka_wr_tags(wr);
}

/* ---- CreateTopics and DeleteTopics ---- */

static struct mq_kafka_str rd_nstr(struct mq_kafka_rd *rd, bool flex)
{
    return flex ? mq_kafka_rd_cnstring(rd) : mq_kafka_rd_nstring(rd);
}

/* Reads a topic's partition assignments and configs, which a refusal does not need. */
static void skip_creatable_details(struct mq_kafka_rd *rd, bool flex)
{
    /* An assignment: partition, broker ids (and tags): 4 + 4 bytes classic, 4 + 1 + 1 compact. */
    int32_t n = rd_arr(rd, flex, flex ? 6 : 8, false);
    for (int32_t i = 0; i < n && mq_kafka_rd_ok(rd); i++) {
        mq_kafka_rd_i32(rd);
        int32_t brokers = rd_arr(rd, flex, 4, false);
        for (int32_t j = 0; j < brokers && mq_kafka_rd_ok(rd); j++)
            mq_kafka_rd_i32(rd);
        rd_tags(rd, flex);
    }
    /* A config: name, value: 2 + 2 bytes classic, 1 + 1 + 1 compact. */
    n = rd_arr(rd, flex, flex ? 3 : 4, false);
    for (int32_t i = 0; i < n && mq_kafka_rd_ok(rd); i++) {
        rd_str(rd, flex);
        rd_nstr(rd, flex);
        rd_tags(rd, flex);
    }
}

enum mq_err mq_kafka_create_topics_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_topics_change_req *r)
{
    bool flex = flexible(MQ_KAPI_CREATE_TOPICS, v);
    memset(r, 0, sizeof *r);
    /* A topic: name, partitions, replication factor, assignments, configs: 2 + 4 + 2 + 4 + 4 bytes
     * classic, 1 + 4 + 2 + 1 + 1 + 1 compact. */
    int32_t n = rd_entities(rd, flex, flex ? 10 : 16);
    r->topics = arr(rd, a, n, sizeof *r->topics);
    for (int32_t i = 0; r->topics && i < n && mq_kafka_rd_ok(rd); i++) {
        r->topics[i].name = rd_str(rd, flex);
        mq_kafka_rd_i32(rd); /* partitions */
        mq_kafka_rd_i16(rd); /* replication factor */
        skip_creatable_details(rd, flex);
        rd_tags(rd, flex);
    }
    r->topic_count = mq_kafka_rd_ok(rd) ? n : 0;
    r->timeout_ms = mq_kafka_rd_i32(rd);
    if (v >= 1)
        r->validate_only = mq_kafka_rd_bool(rd);
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_create_topics_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_topics_change_req *r)
{
    bool flex = flexible(MQ_KAPI_CREATE_TOPICS, v);
    if (v >= 2)
        mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        const struct mq_kafka_refused_topic *t = &r->topics[i];
        wr_str(wr, flex, or_empty(t->name));
        if (v >= 7) {
            mq_kafka_wr_i64(wr, 0); /* topic id: none was created */
            mq_kafka_wr_i64(wr, 0);
        }
        mq_kafka_wr_i16(wr, t->error);
        if (v >= 1)
            wr_cs(wr, flex, t->error_message);
        if (v >= 5) {
            mq_kafka_wr_i32(wr, -1); /* partitions: unknown, as Kafka answers a failed creation */
            mq_kafka_wr_i16(wr, -1); /* replication factor */
            wr_arr(wr, flex, 0);     /* configs */
        }
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

enum mq_err mq_kafka_delete_topics_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_topics_change_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_TOPICS, v);
    memset(r, 0, sizeof *r);
    /* v6+: a topic is a nullable name, an id and tags (1 + 16 + 1 bytes); before, a name. */
    int32_t n = v >= 6 ? rd_entities(rd, flex, 18) : rd_entities(rd, flex, flex ? 1 : 2);
    r->topics = arr(rd, a, n, sizeof *r->topics);
    for (int32_t i = 0; r->topics && i < n && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_refused_topic *t = &r->topics[i];
        if (v >= 6) {
            t->name = rd_nstr(rd, flex);
            t->topic_id[0] = mq_kafka_rd_i64(rd);
            t->topic_id[1] = mq_kafka_rd_i64(rd);
            rd_tags(rd, flex);
        } else {
            t->name = rd_str(rd, flex);
        }
    }
    r->topic_count = mq_kafka_rd_ok(rd) ? n : 0;
    r->timeout_ms = mq_kafka_rd_i32(rd);
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_delete_topics_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_topics_change_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_TOPICS, v);
    if (v >= 1)
        mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        const struct mq_kafka_refused_topic *t = &r->topics[i];
        if (v >= 6) {
            wr_str(wr, flex, t->name.ptr && t->name.len >= 0 ? t->name : null_str);
            mq_kafka_wr_i64(wr, t->topic_id[0]);
            mq_kafka_wr_i64(wr, t->topic_id[1]);
        } else {
            wr_str(wr, flex, or_empty(t->name));
        }
        mq_kafka_wr_i16(wr, t->error);
        if (v >= 5)
            wr_cs(wr, flex, t->error_message);
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

/* ---- CreatePartitions ---- */

enum mq_err mq_kafka_create_partitions_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                                  struct mq_kafka_topics_change_req *r)
{
    bool flex = flexible(MQ_KAPI_CREATE_PARTITIONS, v);
    memset(r, 0, sizeof *r);
    /* A topic: name, count, assignments (null at least): 2 + 4 + 4 bytes classic, 1 + 4 + 1 + 1 compact. */
    int32_t n = rd_entities(rd, flex, flex ? 7 : 10);
    r->topics = arr(rd, a, n, sizeof *r->topics);
    for (int32_t i = 0; r->topics && i < n && mq_kafka_rd_ok(rd); i++) {
        r->topics[i].name = rd_str(rd, flex);
        mq_kafka_rd_i32(rd); /* the new partition count */
        int32_t assignments = rd_arr(rd, flex, flex ? 2 : 4, true);
        for (int32_t j = 0; j < assignments && mq_kafka_rd_ok(rd); j++) {
            int32_t brokers = rd_arr(rd, flex, 4, false);
            for (int32_t k = 0; k < brokers && mq_kafka_rd_ok(rd); k++)
                mq_kafka_rd_i32(rd);
            rd_tags(rd, flex);
        }
        rd_tags(rd, flex);
    }
    r->topic_count = mq_kafka_rd_ok(rd) ? n : 0;
    r->timeout_ms = mq_kafka_rd_i32(rd);
    r->validate_only = mq_kafka_rd_bool(rd);
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_create_partitions_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                            const struct mq_kafka_topics_change_req *r)
{
    bool flex = flexible(MQ_KAPI_CREATE_PARTITIONS, v);
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        wr_str(wr, flex, or_empty(r->topics[i].name));
        mq_kafka_wr_i16(wr, r->topics[i].error);
        wr_cs(wr, flex, r->topics[i].error_message);
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

/* ---- DeleteRecords ---- */

enum mq_err mq_kafka_delete_records_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                               struct mq_kafka_delete_records_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_RECORDS, v);
    memset(r, 0, sizeof *r);
    /* A topic: name, partitions: 2 + 4 bytes classic, 1 + 1 + 1 compact. */
    int32_t n = rd_entities(rd, flex, flex ? 3 : 6);
    r->topics = arr(rd, a, n, sizeof *r->topics);
    for (int32_t i = 0; r->topics && i < n && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_records_topic *t = &r->topics[i];
        t->name = rd_str(rd, flex);
        /* A partition: index, offset (and tags). All topics together list at most max_parts. */
        int32_t np = rd_arr(rd, flex, flex ? 13 : 12, false);
        if (np > rd->parts_left) {
            if (rd->err == MQ_OK)
                rd->err = MQ_ERR_RANGE;
            rd->p = rd->end;
            break;
        }
        rd->parts_left -= np;
        t->partitions = arr(rd, a, np, sizeof *t->partitions);
        for (int32_t j = 0; t->partitions && j < np && mq_kafka_rd_ok(rd); j++) {
            t->partitions[j] = mq_kafka_rd_i32(rd);
            mq_kafka_rd_i64(rd); /* the offset to delete before */
            rd_tags(rd, flex);
        }
        t->partition_count = t->partitions ? np : 0;
        rd_tags(rd, flex);
    }
    r->topic_count = mq_kafka_rd_ok(rd) ? n : 0;
    r->timeout_ms = mq_kafka_rd_i32(rd);
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_delete_records_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                         const struct mq_kafka_delete_records_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_RECORDS, v);
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        const struct mq_kafka_records_topic *t = &r->topics[i];
        wr_str(wr, flex, or_empty(t->name));
        wr_arr(wr, flex, t->partition_count);
        for (int32_t j = 0; j < t->partition_count; j++) {
            mq_kafka_wr_i32(wr, t->partitions[j]);
            mq_kafka_wr_i64(wr, -1); /* low watermark: unknown, as Kafka answers a failed deletion */
            mq_kafka_wr_i16(wr, r->error);
            wr_tags(wr, flex);
        }
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

/* ---- AlterConfigs and IncrementalAlterConfigs ---- */

/* Both requests: resources (type, name, configs), validate only. Incremental configs carry an operation
 * between name and value. */
static enum mq_err alter_configs_decode(struct mq_kafka_rd *rd, bool flex, bool incremental,
                                        struct mq_kafka_arena *a, struct mq_kafka_alter_configs_req *r)
{
    memset(r, 0, sizeof *r);
    /* A resource: type, name, configs: 1 + 2 + 4 bytes classic, 1 + 1 + 1 + 1 compact. */
    int32_t n = rd_entities(rd, flex, flex ? 4 : 7);
    r->resources = arr(rd, a, n, sizeof *r->resources);
    for (int32_t i = 0; r->resources && i < n && mq_kafka_rd_ok(rd); i++) {
        r->resources[i].type = mq_kafka_rd_i8(rd);
        r->resources[i].name = rd_str(rd, flex);
        int32_t configs = rd_arr(rd, flex, flex ? 3 : 4, false);
        for (int32_t j = 0; j < configs && mq_kafka_rd_ok(rd); j++) {
            rd_str(rd, flex);
            if (incremental)
                mq_kafka_rd_i8(rd); /* set, delete, append, subtract */
            rd_nstr(rd, flex);
            rd_tags(rd, flex);
        }
        rd_tags(rd, flex);
    }
    r->resource_count = mq_kafka_rd_ok(rd) ? n : 0;
    r->validate_only = mq_kafka_rd_bool(rd);
    rd_tags(rd, flex);
    if (!mq_kafka_rd_ok(rd))
        r->resource_count = 0;
    return rd->err;
}

/* The response of both: the same layout. */
static void alter_configs_encode(struct mq_kafka_wr *wr, bool flex,
                                 const struct mq_kafka_alter_configs_req *r)
{
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->resource_count);
    for (int32_t i = 0; i < r->resource_count; i++) {
        const struct mq_kafka_refused_resource *res = &r->resources[i];
        mq_kafka_wr_i16(wr, res->error);
        wr_cs(wr, flex, res->error_message);
        mq_kafka_wr_i8(wr, res->type);
        wr_str(wr, flex, or_empty(res->name));
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

enum mq_err mq_kafka_alter_configs_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_alter_configs_req *r)
{
    return alter_configs_decode(rd, flexible(MQ_KAPI_ALTER_CONFIGS, v), false, a, r);
}

void mq_kafka_alter_configs_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_alter_configs_req *r)
{
    alter_configs_encode(wr, flexible(MQ_KAPI_ALTER_CONFIGS, v), r);
}

enum mq_err mq_kafka_incremental_alter_configs_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                          struct mq_kafka_arena *a,
                                                          struct mq_kafka_alter_configs_req *r)
{
    return alter_configs_decode(rd, flexible(MQ_KAPI_INCREMENTAL_ALTER_CONFIGS, v), true, a, r);
}

void mq_kafka_incremental_alter_configs_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                                    const struct mq_kafka_alter_configs_req *r)
{
    alter_configs_encode(wr, flexible(MQ_KAPI_INCREMENTAL_ALTER_CONFIGS, v), r);
}

/* ---- CreateAcls and DeleteAcls ---- */

enum mq_err mq_kafka_create_acls_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                            struct mq_kafka_acls_change_req *r)
{
    bool flex = flexible(MQ_KAPI_CREATE_ACLS, v);
    memset(r, 0, sizeof *r);
    /* A creation: resource type, name, pattern type (v1+), principal, host, operation, permission. */
    int32_t n = rd_entities(rd, flex, flex ? 8 : 9);
    for (int32_t i = 0; i < n && mq_kafka_rd_ok(rd); i++) {
        mq_kafka_rd_i8(rd);
        rd_str(rd, flex);
        if (v >= 1)
            mq_kafka_rd_i8(rd);
        rd_str(rd, flex);
        rd_str(rd, flex);
        mq_kafka_rd_i8(rd);
        mq_kafka_rd_i8(rd);
        rd_tags(rd, flex);
    }
    rd_tags(rd, flex);
    r->count = mq_kafka_rd_ok(rd) ? n : 0;
    return rd->err;
}

void mq_kafka_create_acls_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_acls_change_req *r)
{
    bool flex = flexible(MQ_KAPI_CREATE_ACLS, v);
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->count);
    for (int32_t i = 0; i < r->count; i++) {
        mq_kafka_wr_i16(wr, r->error);
        wr_cs(wr, flex, r->error_message);
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}

enum mq_err mq_kafka_delete_acls_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                            struct mq_kafka_acls_change_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_ACLS, v);
    memset(r, 0, sizeof *r);
    /* A filter: resource type, name, pattern type (v1+), principal, host, operation, permission; the
     * strings may be null. */
    int32_t n = rd_entities(rd, flex, flex ? 8 : 9);
    for (int32_t i = 0; i < n && mq_kafka_rd_ok(rd); i++) {
        mq_kafka_rd_i8(rd);
        rd_nstr(rd, flex);
        if (v >= 1)
            mq_kafka_rd_i8(rd);
        rd_nstr(rd, flex);
        rd_nstr(rd, flex);
        mq_kafka_rd_i8(rd);
        mq_kafka_rd_i8(rd);
        rd_tags(rd, flex);
    }
    rd_tags(rd, flex);
    r->count = mq_kafka_rd_ok(rd) ? n : 0;
    return rd->err;
}

void mq_kafka_delete_acls_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_acls_change_req *r)
{
    bool flex = flexible(MQ_KAPI_DELETE_ACLS, v);
    mq_kafka_wr_i32(wr, 0); /* throttle time */
    wr_arr(wr, flex, r->count);
    for (int32_t i = 0; i < r->count; i++) {
        mq_kafka_wr_i16(wr, r->error);
        wr_cs(wr, flex, r->error_message);
        wr_arr(wr, flex, 0); /* matching ACLs: none deleted */
        wr_tags(wr, flex);
    }
    wr_tags(wr, flex);
}
