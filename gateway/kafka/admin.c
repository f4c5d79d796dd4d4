/*
 * admin.c - the Kafka endpoint's admin request handlers (see server_int.h): ListGroups, DescribeGroups and
 * DeleteGroups over the group coordinator and the catalog's committed offsets, DescribeConfigs for topics
 * (their retention from the catalog, the log's segment settings), DescribeCluster, and the APIs that
 * would change topics, records, configurations or ACLs, which are refused. They are listed in the API table
 * of handlers.c.
 *
 * A group lives in two places: the coordinator holds the groups that have members now, the catalog every
 * group that committed offsets. Kafka shows a group of the second kind, without members, as Empty with no
 * protocol type, and so does mqlog.
 *
 * The endpoint is read-only, and so is what these APIs show: topic configurations come from mqlog's
 * configuration and cannot be altered over Kafka, which is why every entry is reported read-only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/catalog.h"
#include "kafka/group.h"
#include "kafka/proto_admin.h"
#include "kafka/server_int.h"
#include "log/codec.h"
#include "log/log.h"
#include "util/diag.h"

#define GROUP_ID_MAX 255 /* what OffsetCommit accepts (handlers.c) */

/* Kafka's defaults for the topic settings mqlog reports: an equal value is reported as the default. */
#define KAFKA_RETENTION_MS_DEFAULT    604800000LL
#define KAFKA_RETENTION_BYTES_DEFAULT (-1LL)
#define KAFKA_SEGMENT_BYTES_DEFAULT   1073741824LL
#define KAFKA_SEGMENT_MS_DEFAULT      604800000LL
#define KAFKA_INDEX_INTERVAL_DEFAULT  4096LL

static struct mq_kafka_str view(const char *s)
{
    struct mq_kafka_str v = {s, s ? (int32_t)strlen(s) : -1};
    return v;
}

/* A NUL-terminated copy of s in the arena ("" when out of memory). */
static const char *arena_strdup(struct mq_kafka_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *d = mq_kafka_arena_calloc(a, n + 1, 1);
    if (!d)
        return "";
    memcpy(d, s, n);
    return d;
}

/* Sends the response the encoder writes from q. */
#define ANSWER(r, encode, q)                                                                                 \
    do {                                                                                                     \
        struct out_item *it_ = mq_ksrv_resp_begin(r);                                                        \
        if (it_)                                                                                             \
            encode(&it_->out.wr, (r)->hdr.api_version, q);                                                   \
        mq_ksrv_resp_end(r, it_);                                                                            \
    } while (0)

/* ---- ListGroups ---- */

struct list_ctx {
    struct req *r;
    struct mq_kafka_list_groups_req *q;
    int32_t cap;
};

static bool wanted(const struct mq_kafka_str *filter, int32_t n, const char *value)
{
    if (n <= 0)
        return true;
    for (int32_t i = 0; i < n; i++)
        if (filter[i].len == (int32_t)strlen(value) &&
            strncasecmp(filter[i].ptr, value, (size_t)filter[i].len) == 0)
            return true;
    return false;
}

static void list_add(struct list_ctx *ctx, const char *id, const char *protocol_type, const char *state)
{
    struct mq_kafka_list_groups_req *q = ctx->q;
    if (q->group_count >= ctx->cap || !wanted(q->states, q->states_count, state) ||
        !wanted(q->types, q->types_count, "classic") || !mq_ksrv_group_visible(ctx->r, id))
        return; /* as Kafka: a group the principal may not describe is left out */
    struct mq_kafka_listed_group *g = &q->groups[q->group_count++];
    g->group_id = view(id);
    g->protocol_type = view(protocol_type);
    g->state = state;
    g->type = "classic"; /* the JoinGroup/SyncGroup protocol; KIP-848's "consumer" groups are not served */
}

static void list_one(void *arg, const struct mq_kafka_group_view *g)
{
    list_add(arg, g->group_id, g->protocol_type, mq_kafka_group_state_name(g->state));
}

static void count_one(void *arg, const struct mq_kafka_group_view *g)
{
    (void)g;
    (*(int32_t *)arg)++;
}

/* True when the coordinator holds group id (a NUL-terminated name). */
static bool has_members(struct mq_kafka_server *srv, const char *id)
{
    struct mq_kafka_group_view v;
    return mq_kafka_groups_describe(srv->groups, view(id), &v, NULL, 0) && v.member_count > 0;
}

void mq_ksrv_handle_list_groups(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_list_groups_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_list_groups_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    char **stored = NULL;
    size_t n_stored = 0;
    enum mq_err err = mq_catalog_group_list(srv->cat, &stored, &n_stored);
    if (err != MQ_OK) {
        MQ_WARN("kafka: listing groups: %s (%s)", mq_strerror(err), mq_catalog_errmsg(srv->cat));
        q.error = MQ_KC_COORDINATOR_NOT_AVAILABLE; /* retriable */
        n_stored = 0;
    }
    int32_t live = 0;
    mq_kafka_groups_each(srv->groups, count_one, &live);
    struct list_ctx ctx = {r, &q, live + (int32_t)n_stored};
    q.groups = mq_kafka_arena_calloc(&r->arena, (size_t)ctx.cap, sizeof *q.groups);
    if (!q.groups) {
        mq_catalog_strings_free(stored, n_stored);
        mq_ksrv_conn_kill(r->conn, "out of memory");
        return;
    }
    if (q.error == MQ_KC_NONE) {
        mq_kafka_groups_each(srv->groups, list_one, &ctx);
        for (size_t i = 0; i < n_stored; i++)
            if (!has_members(srv, stored[i]))
                list_add(&ctx, arena_strdup(&r->arena, stored[i]), "",
                         mq_kafka_group_state_name(MQ_KGROUP_EMPTY));
    }
    mq_catalog_strings_free(stored, n_stored);
    ANSWER(r, mq_kafka_list_groups_resp_encode, &q);
}

/* ---- DescribeGroups ---- */

/* True when group committed offsets (it then exists for Kafka, Empty when without members). */
static bool has_offsets(struct mq_kafka_server *srv, const char *group)
{
    struct mq_group_offset *offs = NULL;
    size_t n = 0;
    if (mq_catalog_offset_list(srv->cat, group, &offs, &n) != MQ_OK)
        return false;
    mq_catalog_offsets_free(offs, n);
    return n > 0;
}

static struct mq_kafka_str bytes_view(const uint8_t *p, int32_t len)
{
    struct mq_kafka_str v = {p ? (const char *)p : "", p ? len : 0};
    return v;
}

/* Fills g from the coordinator or the catalog; false when out of memory. */
static bool describe_one(struct req *r, struct mq_kafka_described_group *g)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_group_view v;
    g->error = MQ_KC_NONE;
    g->protocol_type = view("");
    g->protocol = view("");
    if (mq_kafka_groups_describe(srv->groups, g->group_id, &v, NULL, 0)) {
        struct mq_kafka_member_view *mv =
            mq_kafka_arena_calloc(&r->arena, (size_t)v.member_count, sizeof *mv);
        g->members = mq_kafka_arena_calloc(&r->arena, (size_t)v.member_count, sizeof *g->members);
        if (!mv || !g->members)
            return false;
        mq_kafka_groups_describe(srv->groups, g->group_id, &v, mv, v.member_count);
        g->state = mq_kafka_group_state_name(v.state);
        g->protocol_type = view(arena_strdup(&r->arena, v.protocol_type));
        g->protocol = view(arena_strdup(&r->arena, v.protocol));
        g->member_count = v.member_count;
        for (int32_t i = 0; i < v.member_count; i++) {
            struct mq_kafka_described_member *m = &g->members[i];
            m->member_id = view(mv[i].member_id);
            m->group_instance_id = view(mv[i].instance_id);
            m->client_id = view(mv[i].client_id);
            m->client_host = view(mv[i].client_host);
            m->metadata = bytes_view(mv[i].metadata, mv[i].metadata_len);
            m->assignment = bytes_view(mv[i].assignment, mv[i].assignment_len);
        }
        return true;
    }
    char id[GROUP_ID_MAX + 1];
    bool stored = mq_kafka_str_copy(g->group_id, id, sizeof id) && id[0] && has_offsets(srv, id);
    /* Kafka describes a group it does not know as Dead, without an error. */
    g->state = mq_kafka_group_state_name(stored ? MQ_KGROUP_EMPTY : MQ_KGROUP_NONE);
    return true;
}

void mq_ksrv_handle_describe_groups(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_describe_groups_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_describe_groups_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    /* The member views point into the coordinator: encode before anything else calls it. */
    for (int32_t i = 0; i < q.group_count; i++) {
        struct mq_kafka_described_group *g = &q.groups[i];
        if ((g->error = mq_ksrv_group_denied(r, g->group_id, MQ_ACL_DESCRIBE)) != MQ_KC_NONE) {
            g->state = "";
            g->protocol_type = g->protocol = view("");
            continue;
        }
        if (!describe_one(r, g)) {
            mq_ksrv_conn_kill(r->conn, "out of memory");
            return;
        }
    }
    ANSWER(r, mq_kafka_describe_groups_resp_encode, &q);
}

/* ---- DeleteGroups ---- */

void mq_ksrv_handle_delete_groups(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_delete_groups_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_delete_groups_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    for (int32_t i = 0; i < q.group_count; i++) {
        struct mq_kafka_deleted_group *g = &q.groups[i];
        char id[GROUP_ID_MAX + 1];
        if (g->group_id.len <= 0 || !mq_kafka_str_copy(g->group_id, id, sizeof id)) {
            g->error = MQ_KC_INVALID_GROUP_ID;
            continue;
        }
        if ((g->error = mq_ksrv_group_denied(r, g->group_id, MQ_ACL_DELETE)) != MQ_KC_NONE)
            continue;
        if (has_members(srv, id)) {
            g->error = MQ_KC_NON_EMPTY_GROUP; /* as Kafka: members must leave (or time out) first */
            continue;
        }
        enum mq_err err = mq_catalog_group_delete(srv->cat, id);
        if (err == MQ_OK) {
            MQ_INFO("kafka: %s deleted group %s and its committed offsets", r->conn->peer, id);
            g->error = MQ_KC_NONE;
        } else if (err == MQ_ERR_NOENT) {
            g->error = MQ_KC_GROUP_ID_NOT_FOUND;
        } else {
            MQ_WARN("kafka: deleting group %s: %s (%s)", id, mq_strerror(err), mq_catalog_errmsg(srv->cat));
            g->error = MQ_KC_UNKNOWN_SERVER_ERROR;
        }
    }
    ANSWER(r, mq_kafka_delete_groups_resp_encode, &q);
}

/* ---- DescribeConfigs ---- */

/* Where a topic setting's value comes from. */
enum setting_from {
    FROM_TEXT,
    FROM_RETENTION_MS,
    FROM_RETENTION_BYTES,
    FROM_SEGMENT_BYTES,
    FROM_SEGMENT_MS,
    FROM_INDEX_INTERVAL,
    FROM_CODEC
};

/* A topic setting: its name, Kafka's type for it, where its value comes from and Kafka's default. */
struct topic_setting {
    const char *name;
    int8_t type;
    enum setting_from from;
    int8_t source_if_set; /* Kafka's source of a value other than the default */
    int64_t kafka_default;
    const char *text; /* FROM_TEXT: the value */
};

/*
 * What a topic reports, in Kafka's name order. Retention is per topic (the catalog: a topic-level setting
 * for Kafka), the segment settings are the log's (a broker-level one). compression.type is the codec the
 * topic's mapping writes its batches with (mappings[].compression or log.compression), a topic-level setting
 * for Kafka as well: "uncompressed", "lz4" or "zstd", Kafka's names; "producer", Kafka's default, only when
 * the server cannot tell (a topic not written since the start whose mappings differ in codec). The text
 * settings are what mqlog always does: it deletes old segments (never compacts) and has one replica.
 */
static const struct topic_setting settings[] = {
    {"cleanup.policy", MQ_KCFG_TYPE_LIST, FROM_TEXT, 0, 0, "delete"},
    {"compression.type", MQ_KCFG_TYPE_STRING, FROM_CODEC, MQ_KCFG_SOURCE_DYNAMIC_TOPIC, 0, "producer"},
    {"index.interval.bytes", MQ_KCFG_TYPE_INT, FROM_INDEX_INTERVAL, MQ_KCFG_SOURCE_STATIC_BROKER,
     KAFKA_INDEX_INTERVAL_DEFAULT, NULL},
    {"min.insync.replicas", MQ_KCFG_TYPE_INT, FROM_TEXT, 0, 0, "1"},
    {"retention.bytes", MQ_KCFG_TYPE_LONG, FROM_RETENTION_BYTES, MQ_KCFG_SOURCE_DYNAMIC_TOPIC,
     KAFKA_RETENTION_BYTES_DEFAULT, NULL},
    {"retention.ms", MQ_KCFG_TYPE_LONG, FROM_RETENTION_MS, MQ_KCFG_SOURCE_DYNAMIC_TOPIC,
     KAFKA_RETENTION_MS_DEFAULT, NULL},
    {"segment.bytes", MQ_KCFG_TYPE_INT, FROM_SEGMENT_BYTES, MQ_KCFG_SOURCE_STATIC_BROKER,
     KAFKA_SEGMENT_BYTES_DEFAULT, NULL},
    {"segment.ms", MQ_KCFG_TYPE_LONG, FROM_SEGMENT_MS, MQ_KCFG_SOURCE_STATIC_BROKER, KAFKA_SEGMENT_MS_DEFAULT,
     NULL},
};

/* The numeric value of a setting for topic t (mqlog's 0, "no limit", is Kafka's -1). */
static int64_t setting_value(const struct topic_setting *s, const struct mq_catalog_topic *t,
                             const struct mq_log_conf *lc)
{
    switch (s->from) {
    case FROM_RETENTION_MS:
        return t->retention_ms > 0 ? t->retention_ms : -1;
    case FROM_RETENTION_BYTES:
        return t->retention_bytes > 0 ? t->retention_bytes : -1;
    case FROM_SEGMENT_BYTES:
        return lc->segment_bytes;
    case FROM_SEGMENT_MS:
        return lc->segment_ms;
    case FROM_INDEX_INTERVAL:
        return lc->index_interval_bytes;
    default:
        return 0;
    }
}

/* Kafka's compression.type value for a codec (enum mq_codec), NULL for one it has no name for. */
static const char *codec_name(int codec)
{
    switch (codec) {
    case MQ_CODEC_NONE:
        return "uncompressed";
    case MQ_CODEC_GZIP:
        return "gzip";
    case MQ_CODEC_SNAPPY:
        return "snappy";
    case MQ_CODEC_LZ4:
        return "lz4";
    case MQ_CODEC_ZSTD:
        return "zstd";
    default:
        return NULL;
    }
}

static bool key_wanted(const struct mq_kafka_config_resource *res, const char *name)
{
    if (res->key_count < 0)
        return true;
    for (int32_t i = 0; i < res->key_count; i++)
        if (mq_kafka_str_eq(res->keys[i], name))
            return true;
    return false;
}

/* Fills res with topic t's settings; false when out of memory. */
static bool topic_configs(struct req *r, struct mq_kafka_config_resource *res,
                          const struct mq_catalog_topic *t)
{
    struct mq_log_conf lc;
    mq_log_conf_get(r->conn->srv->log, &lc);
    size_t n = sizeof settings / sizeof settings[0];
    res->configs = mq_kafka_arena_calloc(&r->arena, n, sizeof *res->configs);
    if (!res->configs)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct topic_setting *s = &settings[i];
        if (!key_wanted(res, s->name))
            continue;
        struct mq_kafka_config_entry *c = &res->configs[res->config_count++];
        c->name = s->name;
        c->type = s->type;
        c->read_only = true;
        c->is_default = true;
        c->source = MQ_KCFG_SOURCE_DEFAULT;
        if (s->from == FROM_TEXT) {
            c->value = s->text;
            continue;
        }
        if (s->from == FROM_CODEC) {
            struct mq_kafka_server *srv = r->conn->srv;
            int codec =
                srv->conf.topic_codec ? srv->conf.topic_codec(srv->conf.topic_codec_opaque, t->name) : -1;
            const char *name = codec_name(codec);
            c->value = name ? name : s->text;
            if (name) {
                c->is_default = false;
                c->source = s->source_if_set;
            }
            continue;
        }
        int64_t v = setting_value(s, t, &lc);
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRId64, v);
        c->value = arena_strdup(&r->arena, buf);
        if (v != s->kafka_default) {
            c->is_default = false;
            c->source = s->source_if_set;
        }
    }
    return true;
}

static bool describe_resource(struct req *r, struct mq_kafka_config_resource *res)
{
    struct mq_kafka_server *srv = r->conn->srv;
    res->error = MQ_KC_NONE;
    if (res->type == MQ_KRES_TOPIC) {
        char name[MQ_TOPIC_NAME_MAX + 1];
        struct mq_catalog_topic t;
        if (!mq_ksrv_topic_name(res->name, name)) {
            res->error = MQ_KC_INVALID_TOPIC_EXCEPTION;
            res->error_message = "invalid topic name";
            return true;
        }
        /* A topic the principal may not describe: the answer of a topic that does not exist. */
        res->error = mq_ksrv_topic_denied(r, name, MQ_ACL_DESCRIBE_CONFIGS);
        if (res->error != MQ_KC_NONE) {
            res->error_message =
                res->error == MQ_KC_UNKNOWN_TOPIC_OR_PARTITION ? "no such topic" : "not authorized";
            return true;
        }
        enum mq_err err = mq_store_topic_get(srv->store, name, &t);
        if (err != MQ_OK) {
            res->error = mq_ksrv_code_for(err);
            res->error_message = err == MQ_ERR_NOENT ? "no such topic" : mq_strerror(err);
            return true;
        }
        return topic_configs(r, res, &t);
    }
    char node[16];
    snprintf(node, sizeof node, "%" PRId32, srv->conf.node_id);
    if (res->type == MQ_KRES_BROKER && (res->name.len == 0 || mq_kafka_str_eq(res->name, node)))
        return true; /* this broker: its settings are mqlog's configuration file, none in Kafka's terms */
    res->error = MQ_KC_INVALID_REQUEST;
    res->error_message = "mqlog describes the configuration of topics and of this broker only";
    return true;
}

void mq_ksrv_handle_describe_configs(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_describe_configs_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_describe_configs_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    for (int32_t i = 0; i < q.resource_count; i++)
        if (!describe_resource(r, &q.resources[i])) {
            mq_ksrv_conn_kill(r->conn, "out of memory");
            return;
        }
    ANSWER(r, mq_kafka_describe_configs_resp_encode, &q);
}

/* ---- DescribeCluster ---- */

void mq_ksrv_handle_describe_cluster(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_describe_cluster_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_describe_cluster_req_decode(rd, r->hdr.api_version, &q)))
        return;
    if (q.endpoint_type != MQ_KAFKA_ENDPOINT_BROKERS) {
        /* Controllers are asked for on a controller listener; mqlog is a broker alone. */
        q.error = MQ_KC_UNSUPPORTED_ENDPOINT_TYPE;
        q.error_message = "mqlog has broker endpoints only";
    }
    q.cluster_id = srv->cluster_id;
    q.node_id = srv->conf.node_id;
    q.host = r->conn->lsn->advertised_host; /* the listener's address, as Metadata gives it */
    q.port = r->conn->lsn->advertised_port;
    ANSWER(r, mq_kafka_describe_cluster_resp_encode, &q);
}

/* ---- CreateTopics, DeleteTopics: refused topic by topic ---- */

/*
 * mqlog's topics, their partitions and their lifetime come from its configuration, so these are answered
 * with INVALID_REQUEST for every topic asked about and change nothing. A principal without rights on a
 * topic gets the same answer: a refusal says nothing about which topics exist.
 */
static void refuse_topics(struct mq_kafka_topics_change_req *q, const char *why)
{
    for (int32_t i = 0; i < q->topic_count; i++) {
        q->topics[i].error = MQ_KC_INVALID_REQUEST;
        q->topics[i].error_message = why;
    }
}

void mq_ksrv_handle_create_topics(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_topics_change_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_create_topics_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    refuse_topics(&q, "mqlog creates log topics from its mapping files (mqlogd.yaml); see mqlog create");
    ANSWER(r, mq_kafka_create_topics_resp_encode, &q);
}

void mq_ksrv_handle_delete_topics(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_topics_change_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_delete_topics_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    refuse_topics(&q, "mqlog's topics come from mqlogd.yaml and retention deletes their records; "
                      "they are not deleted over Kafka");
    ANSWER(r, mq_kafka_delete_topics_resp_encode, &q);
}

/* ---- DeleteRecords, CreatePartitions, AlterConfigs, IncrementalAlterConfigs, CreateAcls, DeleteAcls ---- */

/* Likewise refused for everything asked about: the log's records, partitions, settings and ACLs all come
 * from mqlogd.yaml (and mqlog create), and retention alone deletes records. */

void mq_ksrv_handle_delete_records(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_delete_records_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_delete_records_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    q.error = MQ_KC_INVALID_REQUEST; /* the response has no message: retention deletes records */
    ANSWER(r, mq_kafka_delete_records_resp_encode, &q);
}

void mq_ksrv_handle_create_partitions(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_topics_change_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_create_partitions_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    refuse_topics(&q, "mqlog's partitions come from the mapping's partitions: in mqlogd.yaml");
    ANSWER(r, mq_kafka_create_partitions_resp_encode, &q);
}

static void refuse_resources(struct mq_kafka_alter_configs_req *q)
{
    for (int32_t i = 0; i < q->resource_count; i++) {
        q->resources[i].error = MQ_KC_INVALID_REQUEST;
        q->resources[i].error_message = "mqlog's configuration lives in mqlogd.yaml";
    }
}

void mq_ksrv_handle_alter_configs(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_alter_configs_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_alter_configs_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    refuse_resources(&q);
    ANSWER(r, mq_kafka_alter_configs_resp_encode, &q);
}

void mq_ksrv_handle_incremental_alter_configs(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_alter_configs_req q;
    if (!mq_ksrv_decoded(
            r, mq_kafka_incremental_alter_configs_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    refuse_resources(&q);
    ANSWER(r, mq_kafka_incremental_alter_configs_resp_encode, &q);
}

#define ACLS_REFUSED "mqlog's ACLs are kafka.acls in mqlogd.yaml"

void mq_ksrv_handle_create_acls(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_acls_change_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_create_acls_req_decode(rd, r->hdr.api_version, &q)))
        return;
    q.error = MQ_KC_INVALID_REQUEST;
    q.error_message = ACLS_REFUSED;
    ANSWER(r, mq_kafka_create_acls_resp_encode, &q);
}

void mq_ksrv_handle_delete_acls(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_acls_change_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_delete_acls_req_decode(rd, r->hdr.api_version, &q)))
        return;
    q.error = MQ_KC_INVALID_REQUEST;
    q.error_message = ACLS_REFUSED;
    ANSWER(r, mq_kafka_delete_acls_resp_encode, &q);
}
