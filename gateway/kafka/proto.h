/*
 * proto.h - the Kafka requests mqlog serves: which APIs and versions, their error codes, and for each API a
 * request decoder and a response encoder.
 *
 * A request is decoded into a struct whose arrays live in a per-request arena (freed in one call), with
 * strings as views into the request buffer. The handler then fills in the "result" fields of the same
 * struct (marked "out" below) and the encoder writes the response body from it. Keeping request and result
 * together mirrors Kafka's responses, which repeat the request's topics and partitions in order.
 *
 * Field lists follow Kafka's message definitions (the JSON files under
 * clients/src/main/resources/common/message) for the versions the server's API table serves (handlers.c);
 * here only ApiVersions v3 is a flexible version (compact types and tagged fields in its body; its
 * response header stays v0). The admin APIs, several of them flexible, are in proto_admin.h.
 * The decoders accept trailing bytes after the last field (as Kafka does) and reject everything that is
 * truncated or has impossible lengths (MQ_ERR_PROTOCOL); a request listing more topics or topic-partitions
 * than the reader's max_parts (wire.h) fails with MQ_ERR_RANGE, so that the server can refuse it as too
 * large rather than as malformed.
 *
 * Encoders write the response body only; mq_kafka_out_begin()/mq_kafka_out_end() put the size prefix and
 * the response header around it.
 */
#ifndef MQ_KAFKA_PROTO_H
#define MQ_KAFKA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/downconv.h"
#include "kafka/wire.h"
#include "log/log.h"
#include "util/err.h"

/* ---- APIs, versions, error codes ---- */

enum mq_kafka_api {
    MQ_KAPI_PRODUCE = 0,
    MQ_KAPI_FETCH = 1,
    MQ_KAPI_LIST_OFFSETS = 2,
    MQ_KAPI_METADATA = 3,
    MQ_KAPI_OFFSET_COMMIT = 8,
    MQ_KAPI_OFFSET_FETCH = 9,
    MQ_KAPI_FIND_COORDINATOR = 10,
    MQ_KAPI_JOIN_GROUP = 11,
    MQ_KAPI_HEARTBEAT = 12,
    MQ_KAPI_LEAVE_GROUP = 13,
    MQ_KAPI_SYNC_GROUP = 14,
    MQ_KAPI_DESCRIBE_GROUPS = 15,
    MQ_KAPI_LIST_GROUPS = 16,
    MQ_KAPI_SASL_HANDSHAKE = 17,
    MQ_KAPI_API_VERSIONS = 18,
    MQ_KAPI_CREATE_TOPICS = 19,
    MQ_KAPI_DELETE_TOPICS = 20,
    MQ_KAPI_DELETE_RECORDS = 21,
    MQ_KAPI_INIT_PRODUCER_ID = 22,
    MQ_KAPI_CREATE_ACLS = 30,
    MQ_KAPI_DELETE_ACLS = 31,
    MQ_KAPI_DESCRIBE_CONFIGS = 32,
    MQ_KAPI_ALTER_CONFIGS = 33,
    MQ_KAPI_SASL_AUTHENTICATE = 36,
    MQ_KAPI_CREATE_PARTITIONS = 37,
    MQ_KAPI_DELETE_GROUPS = 42,
    MQ_KAPI_INCREMENTAL_ALTER_CONFIGS = 44,
    MQ_KAPI_DESCRIBE_CLUSTER = 60,
};

/* Kafka's error codes (INT16 on the wire) that mqlog sends. */
enum mq_kafka_code {
    MQ_KC_UNKNOWN_SERVER_ERROR = -1,
    MQ_KC_NONE = 0,
    MQ_KC_OFFSET_OUT_OF_RANGE = 1,
    MQ_KC_CORRUPT_MESSAGE = 2,
    MQ_KC_UNKNOWN_TOPIC_OR_PARTITION = 3,
    MQ_KC_LEADER_NOT_AVAILABLE = 5,
    MQ_KC_NOT_LEADER_OR_FOLLOWER = 6,
    MQ_KC_REQUEST_TIMED_OUT = 7,
    MQ_KC_OFFSET_METADATA_TOO_LARGE = 12,
    MQ_KC_COORDINATOR_LOAD_IN_PROGRESS = 14,
    MQ_KC_COORDINATOR_NOT_AVAILABLE = 15,
    MQ_KC_NOT_COORDINATOR = 16,
    MQ_KC_INVALID_TOPIC_EXCEPTION = 17,
    MQ_KC_ILLEGAL_GENERATION = 22,
    MQ_KC_INCONSISTENT_GROUP_PROTOCOL = 23,
    MQ_KC_INVALID_GROUP_ID = 24,
    MQ_KC_UNKNOWN_MEMBER_ID = 25,
    MQ_KC_INVALID_SESSION_TIMEOUT = 26,
    MQ_KC_REBALANCE_IN_PROGRESS = 27,
    MQ_KC_TOPIC_AUTHORIZATION_FAILED = 29,
    MQ_KC_GROUP_AUTHORIZATION_FAILED = 30,
    MQ_KC_CLUSTER_AUTHORIZATION_FAILED = 31,
    MQ_KC_UNSUPPORTED_SASL_MECHANISM = 33,
    MQ_KC_ILLEGAL_SASL_STATE = 34,
    MQ_KC_UNSUPPORTED_VERSION = 35,
    MQ_KC_INVALID_REQUEST = 42,
    MQ_KC_KAFKA_STORAGE_ERROR = 56,
    MQ_KC_SASL_AUTHENTICATION_FAILED = 58,
    MQ_KC_UNSUPPORTED_COMPRESSION_TYPE = 76,
    MQ_KC_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    MQ_KC_NON_EMPTY_GROUP = 68,
    MQ_KC_GROUP_ID_NOT_FOUND = 69,
    MQ_KC_MEMBER_ID_REQUIRED = 79,
    MQ_KC_GROUP_MAX_SIZE_REACHED = 81,
    MQ_KC_FENCED_INSTANCE_ID = 82,
    MQ_KC_UNSUPPORTED_ENDPOINT_TYPE = 119,
};

/* One supported API and its version range, as ApiVersions lists it. */
struct mq_kafka_api_range {
    int16_t key;
    int16_t min;
    int16_t max;
};

/* The request header version of (key, version): 2 for flexible versions (Kafka's "flexibleVersions" of
 * each API), else 1 (0 is never used by the APIs served); unknown keys get 1. */
int mq_kafka_req_hdr_version(int16_t key, int16_t version);

/* The name of an API for diagnostics ("Fetch"), "?" for unknown keys. */
const char *mq_kafka_api_name(int16_t key);

/* ---- per-request memory ---- */

struct mq_kafka_arena_chunk;
/* Zeroed allocations freed all at once. Initialise with {0} / mq_kafka_arena_init(). */
struct mq_kafka_arena {
    struct mq_kafka_arena_chunk *head;
};
void mq_kafka_arena_init(struct mq_kafka_arena *a);
/* n * size zeroed bytes, or NULL when out of memory or on overflow. Never NULL for n == 0. */
void *mq_kafka_arena_calloc(struct mq_kafka_arena *a, size_t n, size_t size);
/* Frees every allocation; the arena can be reused. */
void mq_kafka_arena_free(struct mq_kafka_arena *a);

/* ---- responses under construction ---- */

/* A file range to be sent (with sendfile) at byte position `at` of the response buffer. */
struct mq_kafka_splice {
    size_t at;
    struct mq_slice slice;
};

/*
 * One response: bytes in wr, plus segment file ranges spliced in between them. The response is
 * wr.buf[0..splices[0].at), splices[0].slice, wr.buf[splices[0].at..splices[1].at), ... The object owns its
 * slices and releases them in mq_kafka_out_free().
 */
struct mq_kafka_out {
    struct mq_kafka_wr wr;
    struct mq_kafka_splice *splices;
    size_t n_splices;
    size_t cap_splices;
    uint64_t file_bytes; /* sum of the splices' lengths */
    size_t size_pos;     /* where the frame's size prefix is */
};

void mq_kafka_out_init(struct mq_kafka_out *out);
/* Releases the buffer and every slice. Accepts a zeroed object. */
void mq_kafka_out_free(struct mq_kafka_out *out);
/* Appends a file range at the current end of wr. Takes ownership of *slice even on failure (it is then
 * released and wr.err set). */
void mq_kafka_out_splice(struct mq_kafka_out *out, struct mq_slice *slice);
/* Starts a response frame: size placeholder, correlation id, and (hdr_version 1) an empty tag section. */
void mq_kafka_out_begin(struct mq_kafka_out *out, int32_t correlation_id, int hdr_version);
/* Fills in the size prefix. MQ_ERR_NOMEM if any write failed, MQ_ERR_RANGE if the frame passed 2 GiB. */
enum mq_err mq_kafka_out_end(struct mq_kafka_out *out);
/* The response header version for (key, version): 1 (a tagged-field section) for flexible versions, 0
 * otherwise and for ApiVersions in every version. */
int mq_kafka_resp_hdr_version(int16_t key, int16_t version);

/* ---- ApiVersions (18) v0-3 ---- */

struct mq_kafka_api_versions_req {
    struct mq_kafka_str client_software_name; /* v3+ */
    struct mq_kafka_str client_software_version;
    /* out */
    int16_t error;
    const struct mq_kafka_api_range *apis; /* what is served, in key order (the server's API table) */
    int32_t api_count;
};
enum mq_err mq_kafka_api_versions_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                             struct mq_kafka_api_versions_req *r);
/* Lists r->apis. For an unsupported ApiVersions version, encode with v = 0 and error
 * MQ_KC_UNSUPPORTED_VERSION, as Kafka does, so that the client can read it and retry lower. */
void mq_kafka_api_versions_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                       const struct mq_kafka_api_versions_req *r);

/* ---- Metadata (3) v0-8 ---- */

struct mq_kafka_md_topic {
    struct mq_kafka_str name;
    /* out */
    int16_t error;
    int32_t partitions; /* partitions 0..partitions-1, all led by the one broker */
};
struct mq_kafka_metadata_req {
    int32_t topic_count; /* -1: all topics (v0: an empty array; v1+: a null array) */
    struct mq_kafka_md_topic *topics;
    bool allow_auto_topic_creation;             /* v4+ */
    bool include_cluster_authorized_operations; /* v8 */
    bool include_topic_authorized_operations;   /* v8 */
    /* out: the broker (this server) and, when topic_count was -1, the handler replaces topics */
    int32_t node_id;
    const char *host;
    int32_t port;
    const char *cluster_id;
};
enum mq_err mq_kafka_metadata_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                         struct mq_kafka_metadata_req *r);
void mq_kafka_metadata_resp_encode(struct mq_kafka_wr *wr, int16_t v, const struct mq_kafka_metadata_req *r);

/* ---- ListOffsets (2) v0-5 ---- */

#define MQ_KAFKA_TS_LATEST   (-1)
#define MQ_KAFKA_TS_EARLIEST (-2)

struct mq_kafka_lo_part {
    int32_t partition;
    int32_t current_leader_epoch; /* v4+, else -1 */
    int64_t timestamp;            /* -1 latest, -2 earliest, else a time in ms */
    int32_t max_num_offsets;      /* v0 only */
    /* out */
    int16_t error;
    int64_t out_timestamp; /* v1+: the timestamp of the offset found, -1 for latest/earliest */
    int64_t offset;        /* -1 when none */
};
struct mq_kafka_lo_topic {
    struct mq_kafka_str name;
    int32_t part_count;
    struct mq_kafka_lo_part *parts;
};
struct mq_kafka_list_offsets_req {
    int32_t replica_id;
    int8_t isolation_level; /* v2+ */
    int32_t topic_count;
    struct mq_kafka_lo_topic *topics;
};
enum mq_err mq_kafka_list_offsets_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                             struct mq_kafka_list_offsets_req *r);
void mq_kafka_list_offsets_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                       const struct mq_kafka_list_offsets_req *r);

/* ---- Fetch (1) v0-11 (v0-3 get message sets converted from the batches: downconv.h) ---- */

struct mq_kafka_fetch_part {
    int32_t partition;
    int32_t current_leader_epoch; /* v9+, else -1 */
    int64_t fetch_offset;
    int64_t log_start_offset; /* v5+ (followers only) */
    int32_t max_bytes;
    /* out */
    int16_t error;
    int64_t high_watermark;
    int64_t last_stable_offset;
    int64_t log_start;       /* the partition's log start offset, v5+ */
    struct mq_slice *slices; /* whole batches, in order; moved into the response by the encoder */
    int32_t n_slices;
    int32_t cap_slices;
    struct mq_kafka_msgs msgs; /* v0-3: the records as messages instead of slices (freed by release) */
};
struct mq_kafka_fetch_topic {
    struct mq_kafka_str name;
    int32_t part_count;
    struct mq_kafka_fetch_part *parts;
};
struct mq_kafka_fetch_req {
    int32_t replica_id;
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;
    int8_t isolation_level;
    int32_t session_id;    /* v7+ */
    int32_t session_epoch; /* v7+ */
    int32_t topic_count;
    struct mq_kafka_fetch_topic *topics;
    struct mq_kafka_str rack_id; /* v11 */
    /* out */
    int16_t error; /* v7+ top-level error */
};
enum mq_err mq_kafka_fetch_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                      struct mq_kafka_fetch_req *r);
/* Adds a slice to a partition's result (ownership moves to the request; on MQ_ERR_NOMEM the slice is
 * released). The array grows in the arena. */
enum mq_err mq_kafka_fetch_part_add(struct mq_kafka_arena *a, struct mq_kafka_fetch_part *p,
                                    struct mq_slice *s);
/* Writes the response; each partition's records are spliced from its slices, which move into out. */
void mq_kafka_fetch_resp_encode(struct mq_kafka_out *out, int16_t v, struct mq_kafka_fetch_req *r);
/* Releases the slices and message sets still held by the request (those the encoder did not take). */
void mq_kafka_fetch_req_release(struct mq_kafka_fetch_req *r);

/* ---- FindCoordinator (10) v0-2 ---- */

struct mq_kafka_find_coordinator_req {
    struct mq_kafka_str key;
    int8_t key_type; /* v1+: 0 group, 1 transaction */
    /* out */
    int16_t error;
    const char *error_message; /* may be NULL */
    int32_t node_id;
    const char *host;
    int32_t port;
};
enum mq_err mq_kafka_find_coordinator_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                 struct mq_kafka_find_coordinator_req *r);
void mq_kafka_find_coordinator_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_find_coordinator_req *r);

/* ---- JoinGroup (11) v0-5 ---- */

struct mq_kafka_join_protocol {
    struct mq_kafka_str name;
    struct mq_kafka_str metadata;
};
struct mq_kafka_join_group_req {
    struct mq_kafka_str group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* v1+; v0: the session timeout */
    struct mq_kafka_str member_id;
    struct mq_kafka_str group_instance_id; /* v5+, null before */
    struct mq_kafka_str protocol_type;
    int32_t protocol_count;
    struct mq_kafka_join_protocol *protocols;
    struct mq_kafka_str client_host; /* not on the wire: the handler sets it for DescribeGroups */
};
enum mq_err mq_kafka_join_group_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                           struct mq_kafka_join_group_req *r);

/* One member as the leader sees it in the JoinGroup response. */
struct mq_kafka_join_member {
    struct mq_kafka_str member_id;
    struct mq_kafka_str group_instance_id; /* v5+ */
    struct mq_kafka_str metadata;
};
struct mq_kafka_join_group_resp {
    int16_t error;
    int32_t generation_id;
    struct mq_kafka_str protocol_name;
    struct mq_kafka_str leader;
    struct mq_kafka_str member_id;
    int32_t member_count; /* only the leader gets the members */
    const struct mq_kafka_join_member *members;
};
void mq_kafka_join_group_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                     const struct mq_kafka_join_group_resp *r);

/* ---- SyncGroup (14) v0-3 ---- */

struct mq_kafka_sync_assignment {
    struct mq_kafka_str member_id;
    struct mq_kafka_str assignment;
};
struct mq_kafka_sync_group_req {
    struct mq_kafka_str group_id;
    int32_t generation_id;
    struct mq_kafka_str member_id;
    struct mq_kafka_str group_instance_id; /* v3+ */
    int32_t assignment_count;
    struct mq_kafka_sync_assignment *assignments;
};
enum mq_err mq_kafka_sync_group_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                           struct mq_kafka_sync_group_req *r);
void mq_kafka_sync_group_resp_encode(struct mq_kafka_wr *wr, int16_t v, int16_t error,
                                     struct mq_kafka_str assignment);

/* ---- Heartbeat (12) v0-3 ---- */

struct mq_kafka_heartbeat_req {
    struct mq_kafka_str group_id;
    int32_t generation_id;
    struct mq_kafka_str member_id;
    struct mq_kafka_str group_instance_id; /* v3+ */
    /* out */
    int16_t error;
};
enum mq_err mq_kafka_heartbeat_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                          struct mq_kafka_heartbeat_req *r);
void mq_kafka_heartbeat_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                    const struct mq_kafka_heartbeat_req *r);

/* ---- LeaveGroup (13) v0-3 ---- */

struct mq_kafka_leave_member {
    struct mq_kafka_str member_id;
    struct mq_kafka_str group_instance_id;
    /* out */
    int16_t error;
};
struct mq_kafka_leave_group_req {
    struct mq_kafka_str group_id;
    int32_t member_count; /* v0-2: one member (the request's MemberId) */
    struct mq_kafka_leave_member *members;
    /* out */
    int16_t error;
};
enum mq_err mq_kafka_leave_group_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                            struct mq_kafka_leave_group_req *r);
void mq_kafka_leave_group_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_leave_group_req *r);

/* ---- OffsetCommit (8) v0-7 ---- */

struct mq_kafka_oc_part {
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;     /* v6+ */
    int64_t commit_timestamp; /* v1 only */
    struct mq_kafka_str metadata;
    /* out */
    int16_t error;
};
struct mq_kafka_oc_topic {
    struct mq_kafka_str name;
    int32_t part_count;
    struct mq_kafka_oc_part *parts;
};
struct mq_kafka_offset_commit_req {
    struct mq_kafka_str group_id;
    int32_t generation_id;                 /* v1+, else -1 */
    struct mq_kafka_str member_id;         /* v1+, else "" */
    struct mq_kafka_str group_instance_id; /* v7+ */
    int64_t retention_time_ms;             /* v2-4 */
    int32_t topic_count;
    struct mq_kafka_oc_topic *topics;
};
enum mq_err mq_kafka_offset_commit_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_offset_commit_req *r);
void mq_kafka_offset_commit_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_offset_commit_req *r);

/* ---- OffsetFetch (9) v0-5 ---- */

struct mq_kafka_of_part {
    int32_t partition;
    /* out */
    int64_t offset; /* -1: no committed offset */
    int32_t leader_epoch;
    struct mq_kafka_str metadata;
    int16_t error;
};
struct mq_kafka_of_topic {
    struct mq_kafka_str name;
    int32_t part_count;
    struct mq_kafka_of_part *parts;
};
struct mq_kafka_offset_fetch_req {
    struct mq_kafka_str group_id;
    int32_t topic_count; /* -1 (v2+): every topic the group committed; the handler fills topics in */
    struct mq_kafka_of_topic *topics;
    /* out */
    int16_t error; /* v2+ */
};
enum mq_err mq_kafka_offset_fetch_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                             struct mq_kafka_offset_fetch_req *r);
void mq_kafka_offset_fetch_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                       const struct mq_kafka_offset_fetch_req *r);

/* ---- Produce (0) v0-8: decoded only to refuse it ---- */

struct mq_kafka_produce_part {
    int32_t partition;
    /* out */
    int16_t error;
};
struct mq_kafka_produce_topic {
    struct mq_kafka_str name;
    int32_t part_count;
    struct mq_kafka_produce_part *parts;
};
struct mq_kafka_produce_req {
    struct mq_kafka_str transactional_id; /* v3+ */
    int16_t acks;                         /* 0: the client expects no response at all */
    int32_t timeout_ms;
    int32_t topic_count;
    struct mq_kafka_produce_topic *topics;
};
enum mq_err mq_kafka_produce_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                        struct mq_kafka_produce_req *r);
void mq_kafka_produce_resp_encode(struct mq_kafka_wr *wr, int16_t v, const struct mq_kafka_produce_req *r);

/* ---- InitProducerId (22) v0-1: decoded only to refuse it (idempotent and transactional producers) ---- */

struct mq_kafka_init_producer_id_req {
    struct mq_kafka_str transactional_id;
    int32_t transaction_timeout_ms;
    /* out */
    int16_t error;
};
enum mq_err mq_kafka_init_producer_id_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                 struct mq_kafka_init_producer_id_req *r);
/* Answers with producer id -1 and epoch -1. */
void mq_kafka_init_producer_id_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_init_producer_id_req *r);

#endif
