/*
 * proto_admin.h - the admin requests mqlog serves, for tools (kafka-consumer-groups-style scripts, lag
 * monitors, the admin clients of librdkafka and kafka-python): ListGroups, DescribeGroups, DeleteGroups,
 * DescribeConfigs and DescribeCluster, and the admin requests mqlog refuses with an error per resource
 * (CreateTopics, DeleteTopics, DeleteRecords, CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
 * CreateAcls, DeleteAcls). Decoders and encoders as in proto.h: the handler fills in the
 * fields marked "out" and the encoder writes the response body from them.
 *
 * Several of these versions are flexible (compact strings and arrays, tagged-field sections): the first
 * flexible version of each API is in proto.c (mq_kafka_req_hdr_version()), and each codec switches its
 * string and array forms on it. Strings in "out" fields are views or C strings the handler keeps alive
 * (usually in the request's arena) until the response is encoded.
 */
#ifndef MQ_KAFKA_PROTO_ADMIN_H
#define MQ_KAFKA_PROTO_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka/proto.h"
#include "kafka/wire.h"
#include "util/err.h"

/* ---- ListGroups (16) v0-5, flexible from v3 ---- */

struct mq_kafka_listed_group {
    struct mq_kafka_str group_id;
    struct mq_kafka_str protocol_type;
    const char *state; /* v4+ */
    const char *type;  /* v5+: "classic" for the JoinGroup/SyncGroup protocol */
};
struct mq_kafka_list_groups_req {
    int32_t states_count; /* v4+: list only groups in one of these states; 0: every state */
    struct mq_kafka_str *states;
    int32_t types_count; /* v5+: likewise for group types */
    struct mq_kafka_str *types;
    /* out */
    int16_t error;
    int32_t group_count;
    struct mq_kafka_listed_group *groups;
};
enum mq_err mq_kafka_list_groups_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                            struct mq_kafka_list_groups_req *r);
void mq_kafka_list_groups_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_list_groups_req *r);

/* ---- DescribeGroups (15) v0-5, flexible from v5 ---- */

struct mq_kafka_described_member {
    struct mq_kafka_str member_id;
    struct mq_kafka_str group_instance_id; /* v4+, null for dynamic members */
    struct mq_kafka_str client_id;
    struct mq_kafka_str client_host;
    struct mq_kafka_str metadata; /* bytes */
    struct mq_kafka_str assignment;
};
struct mq_kafka_described_group {
    struct mq_kafka_str group_id;
    /* out */
    int16_t error;
    const char *state;
    struct mq_kafka_str protocol_type;
    struct mq_kafka_str protocol;
    int32_t member_count;
    struct mq_kafka_described_member *members;
};
struct mq_kafka_describe_groups_req {
    int32_t group_count;
    struct mq_kafka_described_group *groups;
    bool include_authorized_operations; /* v3+; answered "not computed" (INT32_MIN), as for Metadata */
};
enum mq_err mq_kafka_describe_groups_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                                struct mq_kafka_describe_groups_req *r);
void mq_kafka_describe_groups_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                          const struct mq_kafka_describe_groups_req *r);

/* ---- DeleteGroups (42) v0-2, flexible from v2 ---- */

struct mq_kafka_deleted_group {
    struct mq_kafka_str group_id;
    /* out */
    int16_t error;
};
struct mq_kafka_delete_groups_req {
    int32_t group_count;
    struct mq_kafka_deleted_group *groups;
};
enum mq_err mq_kafka_delete_groups_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_delete_groups_req *r);
void mq_kafka_delete_groups_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_delete_groups_req *r);

/* ---- DescribeConfigs (32) v0-4, flexible from v4 ---- */

/* Kafka's resource types, config sources (v1+) and config types (v3+) that mqlog uses. */
enum {
    MQ_KRES_TOPIC = 2,
    MQ_KRES_GROUP = 3,
    MQ_KRES_BROKER = 4,
};
enum {
    MQ_KCFG_SOURCE_DYNAMIC_TOPIC = 1,
    MQ_KCFG_SOURCE_STATIC_BROKER = 4,
    MQ_KCFG_SOURCE_DEFAULT = 5,
};
enum {
    MQ_KCFG_TYPE_STRING = 2,
    MQ_KCFG_TYPE_INT = 3,
    MQ_KCFG_TYPE_LONG = 5,
    MQ_KCFG_TYPE_LIST = 7,
};

struct mq_kafka_config_entry {
    const char *name;
    const char *value; /* NULL: null */
    bool read_only;
    bool is_default; /* v0; later versions say it with source */
    bool is_sensitive;
    int8_t source; /* v1+ */
    int8_t type;   /* v3+ */
};
struct mq_kafka_config_resource {
    int8_t type;
    struct mq_kafka_str name;
    int32_t key_count; /* -1 (null): every key */
    struct mq_kafka_str *keys;
    /* out */
    int16_t error;
    const char *error_message; /* NULL: null */
    int32_t config_count;
    struct mq_kafka_config_entry *configs;
};
struct mq_kafka_describe_configs_req {
    int32_t resource_count;
    struct mq_kafka_config_resource *resources;
    bool include_synonyms;      /* v1+: each entry then lists itself as its one synonym */
    bool include_documentation; /* v3+: answered with null documentation */
};
enum mq_err mq_kafka_describe_configs_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                                 struct mq_kafka_describe_configs_req *r);
void mq_kafka_describe_configs_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_describe_configs_req *r);

/* ---- DescribeCluster (60) v0-1, flexible in every version ---- */

#define MQ_KAFKA_ENDPOINT_BROKERS 1

struct mq_kafka_describe_cluster_req {
    bool include_cluster_authorized_operations;
    int8_t endpoint_type; /* v1+: 1 brokers, 2 controllers; v0: 1 */
    /* out: the one broker (this server) */
    int16_t error;
    const char *error_message; /* NULL: null */
    const char *cluster_id;
    int32_t node_id;
    const char *host;
    int32_t port;
};
enum mq_err mq_kafka_describe_cluster_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                 struct mq_kafka_describe_cluster_req *r);
void mq_kafka_describe_cluster_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_describe_cluster_req *r);

/* ---- CreateTopics (19) v0-7, flexible from v5; DeleteTopics (20) v0-6, flexible from v4 ---- */

/*
 * mqlog's topics come from its configuration, so both are refused topic by topic: only what the response
 * echoes is decoded (the names, and DeleteTopics v6's topic ids); partitions, assignments and configs
 * are skipped.
 */
struct mq_kafka_refused_topic {
    struct mq_kafka_str name; /* DeleteTopics v6+: may be null (the topic named by id) */
    int64_t topic_id[2];      /* DeleteTopics v6+ as asked; CreateTopics v7+ answers zero */
    /* out */
    int16_t error;
    const char *error_message; /* CreateTopics v1+, DeleteTopics v5+; NULL: null */
};
struct mq_kafka_topics_change_req {
    int32_t topic_count;
    struct mq_kafka_refused_topic *topics;
    int32_t timeout_ms;
    bool validate_only; /* CreateTopics v1+ */
};
enum mq_err mq_kafka_create_topics_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_topics_change_req *r);
void mq_kafka_create_topics_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_topics_change_req *r);
enum mq_err mq_kafka_delete_topics_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_topics_change_req *r);
void mq_kafka_delete_topics_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_topics_change_req *r);

/* ---- CreatePartitions (37) v0-3, flexible from v2: refused per topic, like CreateTopics ---- */

enum mq_err mq_kafka_create_partitions_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                                  struct mq_kafka_topics_change_req *r);
void mq_kafka_create_partitions_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                            const struct mq_kafka_topics_change_req *r);

/* ---- DeleteRecords (21) v0-2, flexible from v2: refused per partition (no message field) ---- */

struct mq_kafka_records_topic {
    struct mq_kafka_str name;
    int32_t partition_count;
    int32_t *partitions; /* the indexes asked about */
};
struct mq_kafka_delete_records_req {
    int32_t topic_count;
    struct mq_kafka_records_topic *topics;
    int32_t timeout_ms;
    /* out: every partition's answer */
    int16_t error;
};
enum mq_err mq_kafka_delete_records_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                               struct mq_kafka_delete_records_req *r);
void mq_kafka_delete_records_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                         const struct mq_kafka_delete_records_req *r);

/* ---- AlterConfigs (33) v0-2, flexible from v2; IncrementalAlterConfigs (44) v0-1, flexible from v1 ---- */

struct mq_kafka_refused_resource {
    int8_t type;
    struct mq_kafka_str name;
    /* out */
    int16_t error;
    const char *error_message; /* NULL: null */
};
struct mq_kafka_alter_configs_req {
    int32_t resource_count;
    struct mq_kafka_refused_resource *resources;
    bool validate_only;
};
enum mq_err mq_kafka_alter_configs_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_alter_configs_req *r);
void mq_kafka_alter_configs_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_alter_configs_req *r);
enum mq_err mq_kafka_incremental_alter_configs_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                          struct mq_kafka_arena *a,
                                                          struct mq_kafka_alter_configs_req *r);
void mq_kafka_incremental_alter_configs_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                                    const struct mq_kafka_alter_configs_req *r);

/* ---- CreateAcls (30) and DeleteAcls (31) v0-3, flexible from v2 ---- */

/* One answer for every creation (or filter) of the request: nothing of them is echoed. */
struct mq_kafka_acls_change_req {
    int32_t count; /* creations or filters */
    /* out */
    int16_t error;
    const char *error_message; /* NULL: null */
};
enum mq_err mq_kafka_create_acls_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                            struct mq_kafka_acls_change_req *r);
void mq_kafka_create_acls_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_acls_change_req *r);
enum mq_err mq_kafka_delete_acls_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                            struct mq_kafka_acls_change_req *r);
void mq_kafka_delete_acls_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_acls_change_req *r);

#endif
