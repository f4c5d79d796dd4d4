/*
 * kafka.c - fuzz target: the Kafka request path's parsing, as the endpoint runs it on a frame it has read
 * (gateway/kafka/server.c): the frame size, the request header (peeked, then parsed at the version the API
 * key and version ask for), then the request decoder of that API, and the response encoder on what was
 * decoded. The input is one frame, size prefix included; the seed corpus holds requests captured from kcat
 * and kafka-python (tests/fuzz/corpus/kafka/).
 *
 * Not covered here: the handlers (they need a store and the event loop) and the connection state machine.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "kafka/proto.h"
#include "kafka/proto_admin.h"
#include "kafka/proto_sasl.h"
#include "kafka/server_int.h"
#include "kafka/wire.h"

#define MQ_FUZZ_MAX_REQUEST (16 << 20) /* the endpoint's default max_request_bytes */

/* The admin APIs (proto_admin.h), their responses encoded with the request's fields as the answer. */
static void mq_fuzz_admin(struct mq_kafka_rd *rd, int16_t key, int16_t v, struct mq_kafka_arena *a,
                          struct mq_kafka_wr *wr)
{
    switch (key) {
    case MQ_KAPI_LIST_GROUPS: {
        struct mq_kafka_list_groups_req r = {0};
        if (mq_kafka_list_groups_req_decode(rd, v, a, &r) == MQ_OK) {
            struct mq_kafka_listed_group g = {{"g", 1}, {"consumer", 8}, "Stable", "classic"};
            r.groups = &g;
            r.group_count = 1;
            mq_kafka_list_groups_resp_encode(wr, v, &r);
        }
        break;
    }
    case MQ_KAPI_DESCRIBE_GROUPS: {
        struct mq_kafka_describe_groups_req r = {0};
        if (mq_kafka_describe_groups_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_describe_groups_resp_encode(wr, v, &r);
        break;
    }
    case MQ_KAPI_DELETE_GROUPS: {
        struct mq_kafka_delete_groups_req r = {0};
        if (mq_kafka_delete_groups_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_delete_groups_resp_encode(wr, v, &r);
        break;
    }
    case MQ_KAPI_DESCRIBE_CONFIGS: {
        struct mq_kafka_describe_configs_req r = {0};
        if (mq_kafka_describe_configs_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_describe_configs_resp_encode(wr, v, &r);
        break;
    }
    case MQ_KAPI_DESCRIBE_CLUSTER: {
        struct mq_kafka_describe_cluster_req r = {0};
        if (mq_kafka_describe_cluster_req_decode(rd, v, &r) == MQ_OK)
            mq_kafka_describe_cluster_resp_encode(wr, v, &r);
        break;
    }
    default: /* not served: the server closes the connection */
        break;
    }
}

/* Decodes the body of API key at version v from rd, then encodes a response from the decoded request. */
static void mq_fuzz_api(struct mq_kafka_rd *rd, int16_t key, int16_t v, struct mq_kafka_arena *a)
{
    struct mq_kafka_wr wr;
    mq_kafka_wr_init(&wr);
    switch (key) {
    case MQ_KAPI_API_VERSIONS: {
        struct mq_kafka_api_versions_req r = {0};
        if (mq_kafka_api_versions_req_decode(rd, v, &r) == MQ_OK) {
            size_t n;
            const struct mq_ksrv_api *t = mq_ksrv_apis(&n);
            struct mq_kafka_api_range *list = mq_kafka_arena_calloc(a, n, sizeof *list);
            for (size_t i = 0; list && i < n; i++)
                list[i] = (struct mq_kafka_api_range){t[i].key, t[i].min, t[i].max};
            r.apis = list;
            r.api_count = list ? (int32_t)n : 0;
            mq_kafka_api_versions_resp_encode(&wr, v, &r);
        }
        break;
    }
    case MQ_KAPI_METADATA: {
        struct mq_kafka_metadata_req r = {0};
        if (mq_kafka_metadata_req_decode(rd, v, a, &r) == MQ_OK) {
            r.host = "127.0.0.1";
            r.cluster_id = "mqlog";
            r.port = 9092;
            mq_kafka_metadata_resp_encode(&wr, v, &r);
        }
        break;
    }
    case MQ_KAPI_LIST_OFFSETS: {
        struct mq_kafka_list_offsets_req r = {0};
        if (mq_kafka_list_offsets_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_list_offsets_resp_encode(&wr, v, &r);
        break;
    }
    case MQ_KAPI_FETCH: {
        struct mq_kafka_fetch_req r = {0};
        if (mq_kafka_fetch_req_decode(rd, v, a, &r) == MQ_OK) {
            struct mq_kafka_out out;
            mq_kafka_out_init(&out);
            mq_kafka_out_begin(&out, 1, 0);
            mq_kafka_fetch_resp_encode(&out, v, &r);
            mq_kafka_out_end(&out);
            mq_kafka_out_free(&out);
        }
        mq_kafka_fetch_req_release(&r);
        break;
    }
    case MQ_KAPI_FIND_COORDINATOR: {
        struct mq_kafka_find_coordinator_req r = {0};
        if (mq_kafka_find_coordinator_req_decode(rd, v, &r) == MQ_OK) {
            r.host = "127.0.0.1";
            mq_kafka_find_coordinator_resp_encode(&wr, v, &r);
        }
        break;
    }
    case MQ_KAPI_JOIN_GROUP: {
        struct mq_kafka_join_group_req r = {0};
        if (mq_kafka_join_group_req_decode(rd, v, a, &r) == MQ_OK) {
            /* the leader's answer, with the members as they asked */
            struct mq_kafka_join_member m = {r.member_id, r.group_instance_id,
                                             r.protocol_count > 0 ? r.protocols[0].metadata
                                                                  : (struct mq_kafka_str){NULL, -1}};
            struct mq_kafka_join_group_resp resp = {.protocol_name = r.protocol_type,
                                                    .leader = r.member_id,
                                                    .member_id = r.member_id,
                                                    .member_count = 1,
                                                    .members = &m};
            mq_kafka_join_group_resp_encode(&wr, v, &resp);
        }
        break;
    }
    case MQ_KAPI_SYNC_GROUP: {
        struct mq_kafka_sync_group_req r = {0};
        if (mq_kafka_sync_group_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_sync_group_resp_encode(&wr, v, 0,
                                            r.assignment_count > 0 ? r.assignments[0].assignment
                                                                   : (struct mq_kafka_str){"", 0});
        break;
    }
    case MQ_KAPI_HEARTBEAT: {
        struct mq_kafka_heartbeat_req r = {0};
        if (mq_kafka_heartbeat_req_decode(rd, v, &r) == MQ_OK)
            mq_kafka_heartbeat_resp_encode(&wr, v, &r);
        break;
    }
    case MQ_KAPI_LEAVE_GROUP: {
        struct mq_kafka_leave_group_req r = {0};
        if (mq_kafka_leave_group_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_leave_group_resp_encode(&wr, v, &r);
        break;
    }
    case MQ_KAPI_OFFSET_COMMIT: {
        struct mq_kafka_offset_commit_req r = {0};
        if (mq_kafka_offset_commit_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_offset_commit_resp_encode(&wr, v, &r);
        break;
    }
    case MQ_KAPI_OFFSET_FETCH: {
        struct mq_kafka_offset_fetch_req r = {0};
        if (mq_kafka_offset_fetch_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_offset_fetch_resp_encode(&wr, v, &r);
        break;
    }
    case MQ_KAPI_PRODUCE: {
        struct mq_kafka_produce_req r = {0};
        if (mq_kafka_produce_req_decode(rd, v, a, &r) == MQ_OK)
            mq_kafka_produce_resp_encode(&wr, v, &r);
        break;
    }
    case MQ_KAPI_INIT_PRODUCER_ID: {
        struct mq_kafka_init_producer_id_req r = {0};
        if (mq_kafka_init_producer_id_req_decode(rd, v, &r) == MQ_OK)
            mq_kafka_init_producer_id_resp_encode(&wr, v, &r);
        break;
    }
    case MQ_KAPI_SASL_HANDSHAKE: {
        struct mq_kafka_sasl_handshake_req r = {0};
        static const char *const mechs[] = {"PLAIN", "SCRAM-SHA-256"};
        if (mq_kafka_sasl_handshake_req_decode(rd, v, &r) == MQ_OK) {
            r.mechanisms = mechs;
            r.mechanism_count = 2;
            mq_kafka_sasl_handshake_resp_encode(&wr, v, &r);
        }
        break;
    }
    case MQ_KAPI_SASL_AUTHENTICATE: {
        struct mq_kafka_sasl_authenticate_req r = {0};
        if (mq_kafka_sasl_authenticate_req_decode(rd, v, &r) == MQ_OK) {
            r.out_bytes = (const uint8_t *)r.auth_bytes.ptr;
            r.out_len = r.auth_bytes.len > 0 ? r.auth_bytes.len : 0;
            mq_kafka_sasl_authenticate_resp_encode(&wr, v, &r);
        }
        break;
    }
    default:
        mq_fuzz_admin(rd, key, v, a, &wr);
        break;
    }
    mq_kafka_wr_free(&wr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t frame_len;
    if (mq_kafka_frame_size(data, size, MQ_FUZZ_MAX_REQUEST, &frame_len) != MQ_OK || frame_len > size)
        return 0;
    const uint8_t *body = data + MQ_KAFKA_FRAME_PREFIX;
    size_t len = frame_len - MQ_KAFKA_FRAME_PREFIX;
    struct mq_kafka_req_hdr h;
    if (mq_kafka_req_hdr_peek(body, len, &h) != MQ_OK)
        return 0;
    (void)mq_kafka_api_name(h.api_key);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, body, len);
    if (mq_kafka_req_hdr_parse(&rd, mq_kafka_req_hdr_version(h.api_key, h.api_version), &h) != MQ_OK)
        return 0;
    /* the versions the server's table serves reach a decoder; for others the server closes the
     * connection (ApiVersions: answers with the list, as for a served version) */
    size_t n;
    const struct mq_ksrv_api *t = mq_ksrv_apis(&n);
    bool served = false;
    for (size_t i = 0; i < n; i++)
        served = served || (t[i].key == h.api_key && h.api_version >= t[i].min && h.api_version <= t[i].max);
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    mq_fuzz_api(&rd, served ? h.api_key : -1, h.api_version, &a);
    mq_kafka_arena_free(&a);
    return 0;
}
