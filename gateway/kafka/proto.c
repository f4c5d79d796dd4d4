/*
 * proto.c - decoders and encoders of the Kafka requests mqlog serves (see proto.h), field by field as
 * Kafka's message definitions list them per version.
 *
 * Decoders: every array count is checked against the bytes left with the smallest size one element can
 * have (mq_kafka_rd_array's min_elem_size) before the arena allocates for it, so the memory a request can
 * make us allocate is bounded by a small multiple of its size. Topic and partition arrays are also held to
 * the reader's max_parts (wire.h), so that a request within the size limit cannot list a million
 * partitions: such a request fails with MQ_ERR_RANGE, which the server tells apart from a malformed one.
 */
#include "kafka/proto.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* ---- APIs and versions ---- */

/* The first flexible version of each API mqlog knows (Kafka's "flexibleVersions"). */
static int16_t first_flexible(int16_t key)
{
    switch (key) {
    case MQ_KAPI_PRODUCE:
        return 9;
    case MQ_KAPI_FETCH:
        return 12;
    case MQ_KAPI_LIST_OFFSETS:
        return 6;
    case MQ_KAPI_METADATA:
        return 9;
    case MQ_KAPI_OFFSET_COMMIT:
        return 8;
    case MQ_KAPI_OFFSET_FETCH:
        return 6;
    case MQ_KAPI_FIND_COORDINATOR:
        return 3;
    case MQ_KAPI_JOIN_GROUP:
        return 6;
    case MQ_KAPI_HEARTBEAT:
        return 4;
    case MQ_KAPI_LEAVE_GROUP:
        return 4;
    case MQ_KAPI_SYNC_GROUP:
        return 4;
    case MQ_KAPI_API_VERSIONS:
        return 3;
    case MQ_KAPI_INIT_PRODUCER_ID:
        return 2;
    case MQ_KAPI_SASL_AUTHENTICATE:
        return 2;
    case MQ_KAPI_DESCRIBE_GROUPS:
        return 5;
    case MQ_KAPI_LIST_GROUPS:
        return 3;
    case MQ_KAPI_DESCRIBE_CONFIGS:
        return 4;
    case MQ_KAPI_DELETE_GROUPS:
        return 2;
    case MQ_KAPI_DESCRIBE_CLUSTER:
        return 0;
    case MQ_KAPI_CREATE_TOPICS:
        return 5;
    case MQ_KAPI_DELETE_TOPICS:
        return 4;
    case MQ_KAPI_DELETE_RECORDS:
    case MQ_KAPI_CREATE_ACLS:
    case MQ_KAPI_DELETE_ACLS:
    case MQ_KAPI_ALTER_CONFIGS:
    case MQ_KAPI_CREATE_PARTITIONS:
        return 2;
    case MQ_KAPI_INCREMENTAL_ALTER_CONFIGS:
        return 1;
    default:
        return INT16_MAX;
    }
}

int mq_kafka_req_hdr_version(int16_t key, int16_t version)
{
    return version >= first_flexible(key) ? 2 : 1;
}

int mq_kafka_resp_hdr_version(int16_t key, int16_t version)
{
    /* ApiVersions responses keep header v0 in every version, so that any client can read the error. */
    if (key == MQ_KAPI_API_VERSIONS)
        return 0;
    return version >= first_flexible(key) ? 1 : 0;
}

const char *mq_kafka_api_name(int16_t key)
{
    switch (key) {
    case MQ_KAPI_PRODUCE:
        return "Produce";
    case MQ_KAPI_FETCH:
        return "Fetch";
    case MQ_KAPI_LIST_OFFSETS:
        return "ListOffsets";
    case MQ_KAPI_METADATA:
        return "Metadata";
    case MQ_KAPI_OFFSET_COMMIT:
        return "OffsetCommit";
    case MQ_KAPI_OFFSET_FETCH:
        return "OffsetFetch";
    case MQ_KAPI_FIND_COORDINATOR:
        return "FindCoordinator";
    case MQ_KAPI_JOIN_GROUP:
        return "JoinGroup";
    case MQ_KAPI_HEARTBEAT:
        return "Heartbeat";
    case MQ_KAPI_LEAVE_GROUP:
        return "LeaveGroup";
    case MQ_KAPI_SYNC_GROUP:
        return "SyncGroup";
    case MQ_KAPI_API_VERSIONS:
        return "ApiVersions";
    case MQ_KAPI_INIT_PRODUCER_ID:
        return "InitProducerId";
    case MQ_KAPI_SASL_HANDSHAKE:
        return "SaslHandshake";
    case MQ_KAPI_SASL_AUTHENTICATE:
        return "SaslAuthenticate";
    case MQ_KAPI_DESCRIBE_GROUPS:
        return "DescribeGroups";
    case MQ_KAPI_LIST_GROUPS:
        return "ListGroups";
    case MQ_KAPI_DESCRIBE_CONFIGS:
        return "DescribeConfigs";
    case MQ_KAPI_DELETE_GROUPS:
        return "DeleteGroups";
    case MQ_KAPI_DESCRIBE_CLUSTER:
        return "DescribeCluster";
    case MQ_KAPI_CREATE_TOPICS:
        return "CreateTopics";
    case MQ_KAPI_DELETE_TOPICS:
        return "DeleteTopics";
    case MQ_KAPI_DELETE_RECORDS:
        return "DeleteRecords";
    case MQ_KAPI_CREATE_ACLS:
        return "CreateAcls";
    case MQ_KAPI_DELETE_ACLS:
        return "DeleteAcls";
    case MQ_KAPI_ALTER_CONFIGS:
        return "AlterConfigs";
    case MQ_KAPI_CREATE_PARTITIONS:
        return "CreatePartitions";
    case MQ_KAPI_INCREMENTAL_ALTER_CONFIGS:
        return "IncrementalAlterConfigs";
    default:
        return "?";
    }
}

/* ---- arena ---- */

struct mq_kafka_arena_chunk {
    struct mq_kafka_arena_chunk *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

void mq_kafka_arena_init(struct mq_kafka_arena *a)
{
    a->head = NULL;
}

void *mq_kafka_arena_calloc(struct mq_kafka_arena *a, size_t n, size_t size)
{
    if (size && n > (SIZE_MAX / 4) / size)
        return NULL;
    size_t bytes = n * size;
    bytes = (bytes + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    struct mq_kafka_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < bytes) {
        size_t cap = bytes > 4096 ? bytes : 4096;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += bytes;
    memset(p, 0, bytes);
    return p;
}

void mq_kafka_arena_free(struct mq_kafka_arena *a)
{
    while (a->head) {
        struct mq_kafka_arena_chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
}

/* ---- responses under construction ---- */

void mq_kafka_out_init(struct mq_kafka_out *out)
{
    memset(out, 0, sizeof *out);
    mq_kafka_wr_init(&out->wr);
}

void mq_kafka_out_free(struct mq_kafka_out *out)
{
    if (!out)
        return;
    for (size_t i = 0; i < out->n_splices; i++)
        mq_slice_release(&out->splices[i].slice);
    free(out->splices);
    mq_kafka_wr_free(&out->wr);
    mq_kafka_out_init(out);
}

void mq_kafka_out_splice(struct mq_kafka_out *out, struct mq_slice *slice)
{
    if (out->wr.err == MQ_OK && out->n_splices == out->cap_splices) {
        size_t cap = out->cap_splices ? out->cap_splices * 2 : 8;
        struct mq_kafka_splice *s = realloc(out->splices, cap * sizeof *s);
        if (!s) {
            out->wr.err = MQ_ERR_NOMEM;
        } else {
            out->splices = s;
            out->cap_splices = cap;
        }
    }
    if (out->wr.err != MQ_OK) {
        mq_slice_release(slice);
        return;
    }
    out->splices[out->n_splices].at = out->wr.len;
    out->splices[out->n_splices].slice = *slice;
    out->n_splices++;
    out->file_bytes += slice->len;
}

void mq_kafka_out_begin(struct mq_kafka_out *out, int32_t correlation_id, int hdr_version)
{
    out->size_pos = mq_kafka_wr_reserve_i32(&out->wr);
    mq_kafka_wr_i32(&out->wr, correlation_id);
    if (hdr_version >= 1)
        mq_kafka_wr_tags(&out->wr);
}

enum mq_err mq_kafka_out_end(struct mq_kafka_out *out)
{
    if (out->wr.err != MQ_OK)
        return out->wr.err;
    uint64_t size = (uint64_t)(out->wr.len - out->size_pos - MQ_KAFKA_FRAME_PREFIX) + out->file_bytes;
    if (size > INT32_MAX)
        return MQ_ERR_RANGE;
    mq_kafka_wr_patch_i32(&out->wr, out->size_pos, (int32_t)size);
    return MQ_OK;
}

/* ---- helpers ---- */

static const struct mq_kafka_str null_str = {NULL, -1};
static const struct mq_kafka_str empty_str = {"", 0};

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

static void wr_throttle(struct mq_kafka_wr *wr)
{
    mq_kafka_wr_i32(wr, 0);
}

/* Fails the reader for a request over max_parts (wire.h): MQ_ERR_RANGE, not a protocol error. */
static int32_t over_parts(struct mq_kafka_rd *rd)
{
    if (rd->err == MQ_OK)
        rd->err = MQ_ERR_RANGE;
    rd->p = rd->end;
    return 0;
}

/* A request's array of topics: at most max_parts of them. */
static int32_t topic_array(struct mq_kafka_rd *rd, size_t min_elem_size, bool nullable)
{
    int32_t n = mq_kafka_rd_array(rd, min_elem_size, nullable);
    return n > rd->max_parts ? over_parts(rd) : n;
}

/* A topic's array of partitions: all topics of the request together list at most max_parts. */
static int32_t part_array(struct mq_kafka_rd *rd, size_t min_elem_size)
{
    int32_t n = mq_kafka_rd_array(rd, min_elem_size, false);
    if (n > rd->parts_left)
        return over_parts(rd);
    rd->parts_left -= n;
    return n;
}

/* ---- ApiVersions ---- */

enum mq_err mq_kafka_api_versions_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                             struct mq_kafka_api_versions_req *r)
{
    memset(r, 0, sizeof *r);
    r->client_software_name = empty_str;
    r->client_software_version = empty_str;
    if (v >= 3) {
        r->client_software_name = mq_kafka_rd_cstring(rd);
        r->client_software_version = mq_kafka_rd_cstring(rd);
        mq_kafka_rd_tags(rd);
    }
    return rd->err;
}

void mq_kafka_api_versions_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                       const struct mq_kafka_api_versions_req *r)
{
    const struct mq_kafka_api_range *t = r->apis;
    mq_kafka_wr_i16(wr, r->error);
    if (v >= 3)
        mq_kafka_wr_carray(wr, r->api_count);
    else
        mq_kafka_wr_array(wr, r->api_count);
    for (int32_t i = 0; i < r->api_count; i++) {
        mq_kafka_wr_i16(wr, t[i].key);
        mq_kafka_wr_i16(wr, t[i].min);
        mq_kafka_wr_i16(wr, t[i].max);
        if (v >= 3)
            mq_kafka_wr_tags(wr);
    }
    if (v >= 1)
        wr_throttle(wr);
    if (v >= 3)
        mq_kafka_wr_tags(wr);
}

/* ---- Metadata ---- */

enum mq_err mq_kafka_metadata_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                         struct mq_kafka_metadata_req *r)
{
    memset(r, 0, sizeof *r);
    r->allow_auto_topic_creation = true;
    r->topic_count = topic_array(rd, 2, v >= 1);
    r->topics = arr(rd, a, r->topic_count, sizeof *r->topics);
    for (int32_t i = 0; i < r->topic_count && mq_kafka_rd_ok(rd); i++)
        r->topics[i].name = mq_kafka_rd_string(rd);
    /* Version 0 asks for every topic with an empty array (later versions with a null one). */
    if (v == 0 && r->topic_count == 0)
        r->topic_count = -1;
    if (v >= 4)
        r->allow_auto_topic_creation = mq_kafka_rd_bool(rd);
    if (v >= 8) {
        r->include_cluster_authorized_operations = mq_kafka_rd_bool(rd);
        r->include_topic_authorized_operations = mq_kafka_rd_bool(rd);
    }
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_metadata_resp_encode(struct mq_kafka_wr *wr, int16_t v, const struct mq_kafka_metadata_req *r)
{
    if (v >= 3)
        wr_throttle(wr);
    mq_kafka_wr_array(wr, 1); /* brokers: this server alone */
    mq_kafka_wr_i32(wr, r->node_id);
    mq_kafka_wr_string(wr, r->host ? r->host : "");
    mq_kafka_wr_i32(wr, r->port);
    if (v >= 1)
        mq_kafka_wr_string(wr, NULL); /* rack */
    if (v >= 2)
        mq_kafka_wr_string(wr, r->cluster_id);
    if (v >= 1)
        mq_kafka_wr_i32(wr, r->node_id); /* controller */
    int32_t nt = r->topic_count > 0 ? r->topic_count : 0;
    mq_kafka_wr_array(wr, nt);
    for (int32_t i = 0; i < nt; i++) {
        const struct mq_kafka_md_topic *t = &r->topics[i];
        mq_kafka_wr_i16(wr, t->error);
        mq_kafka_wr_str(wr, t->name);
        if (v >= 1)
            mq_kafka_wr_bool(wr, false); /* is_internal */
        int32_t np = t->error == MQ_KC_NONE && t->partitions > 0 ? t->partitions : 0;
        mq_kafka_wr_array(wr, np);
        for (int32_t p = 0; p < np; p++) {
            mq_kafka_wr_i16(wr, MQ_KC_NONE);
            mq_kafka_wr_i32(wr, p);
            mq_kafka_wr_i32(wr, r->node_id); /* leader */
            if (v >= 7)
                mq_kafka_wr_i32(wr, 0); /* leader epoch: mqlog writes batches with epoch 0 */
            mq_kafka_wr_array(wr, 1);   /* replicas */
            mq_kafka_wr_i32(wr, r->node_id);
            mq_kafka_wr_array(wr, 1); /* in-sync replicas */
            mq_kafka_wr_i32(wr, r->node_id);
            if (v >= 5)
                mq_kafka_wr_array(wr, 0); /* offline replicas */
        }
        if (v >= 8)
            mq_kafka_wr_i32(wr, INT32_MIN); /* topic authorized operations: not computed */
    }
    if (v >= 8)
        mq_kafka_wr_i32(wr, INT32_MIN); /* cluster authorized operations */
}

/* ---- ListOffsets ---- */

enum mq_err mq_kafka_list_offsets_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                             struct mq_kafka_list_offsets_req *r)
{
    memset(r, 0, sizeof *r);
    r->replica_id = mq_kafka_rd_i32(rd);
    if (v >= 2)
        r->isolation_level = mq_kafka_rd_i8(rd);
    r->topic_count = topic_array(rd, 2 + 4, false);
    r->topics = arr(rd, a, r->topic_count, sizeof *r->topics);
    size_t part_min = 4 + 8 + (v >= 4 ? 4 : 0) + (v == 0 ? 4 : 0);
    for (int32_t i = 0; i < r->topic_count && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_lo_topic *t = &r->topics[i];
        t->name = mq_kafka_rd_string(rd);
        t->part_count = part_array(rd, part_min);
        t->parts = arr(rd, a, t->part_count, sizeof *t->parts);
        for (int32_t j = 0; j < t->part_count && mq_kafka_rd_ok(rd); j++) {
            struct mq_kafka_lo_part *p = &t->parts[j];
            p->partition = mq_kafka_rd_i32(rd);
            p->current_leader_epoch = v >= 4 ? mq_kafka_rd_i32(rd) : -1;
            p->timestamp = mq_kafka_rd_i64(rd);
            p->max_num_offsets = v == 0 ? mq_kafka_rd_i32(rd) : 1;
            p->offset = -1;
            p->out_timestamp = -1;
        }
        if (!mq_kafka_rd_ok(rd))
            t->part_count = 0;
    }
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_list_offsets_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                       const struct mq_kafka_list_offsets_req *r)
{
    if (v >= 2)
        wr_throttle(wr);
    mq_kafka_wr_array(wr, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        const struct mq_kafka_lo_topic *t = &r->topics[i];
        mq_kafka_wr_str(wr, t->name);
        mq_kafka_wr_array(wr, t->part_count);
        for (int32_t j = 0; j < t->part_count; j++) {
            const struct mq_kafka_lo_part *p = &t->parts[j];
            mq_kafka_wr_i32(wr, p->partition);
            mq_kafka_wr_i16(wr, p->error);
            if (v == 0) {
                bool one = p->error == MQ_KC_NONE && p->offset >= 0 && p->max_num_offsets > 0;
                mq_kafka_wr_array(wr, one ? 1 : 0);
                if (one)
                    mq_kafka_wr_i64(wr, p->offset);
            } else {
                mq_kafka_wr_i64(wr, p->out_timestamp);
                mq_kafka_wr_i64(wr, p->offset);
            }
            if (v >= 4)
                mq_kafka_wr_i32(wr, p->error == MQ_KC_NONE ? 0 : -1); /* leader epoch */
        }
    }
}

/* ---- Fetch ---- */

enum mq_err mq_kafka_fetch_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                      struct mq_kafka_fetch_req *r)
{
    memset(r, 0, sizeof *r);
    r->rack_id = empty_str;
    r->session_epoch = -1;
    r->replica_id = mq_kafka_rd_i32(rd);
    r->max_wait_ms = mq_kafka_rd_i32(rd);
    r->min_bytes = mq_kafka_rd_i32(rd);
    r->max_bytes = v >= 3 ? mq_kafka_rd_i32(rd) : INT32_MAX;
    if (v >= 4)
        r->isolation_level = mq_kafka_rd_i8(rd);
    if (v >= 7) {
        r->session_id = mq_kafka_rd_i32(rd);
        r->session_epoch = mq_kafka_rd_i32(rd);
    }
    r->topic_count = topic_array(rd, 2 + 4, false);
    r->topics = arr(rd, a, r->topic_count, sizeof *r->topics);
    size_t part_min = 4 + 8 + 4 + (v >= 9 ? 4 : 0) + (v >= 5 ? 8 : 0);
    for (int32_t i = 0; i < r->topic_count && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_fetch_topic *t = &r->topics[i];
        t->name = mq_kafka_rd_string(rd);
        t->part_count = part_array(rd, part_min);
        t->parts = arr(rd, a, t->part_count, sizeof *t->parts);
        for (int32_t j = 0; j < t->part_count && mq_kafka_rd_ok(rd); j++) {
            struct mq_kafka_fetch_part *p = &t->parts[j];
            p->partition = mq_kafka_rd_i32(rd);
            p->current_leader_epoch = v >= 9 ? mq_kafka_rd_i32(rd) : -1;
            p->fetch_offset = mq_kafka_rd_i64(rd);
            p->log_start_offset = v >= 5 ? mq_kafka_rd_i64(rd) : -1;
            p->max_bytes = mq_kafka_rd_i32(rd);
            p->high_watermark = -1;
            p->last_stable_offset = -1;
            p->log_start = -1;
        }
        if (!mq_kafka_rd_ok(rd))
            t->part_count = 0;
    }
    if (v >= 7) {
        /* Forgotten topics belong to incremental fetch sessions, which mqlog does not keep (it answers
         * with session id 0, so clients send full requests); read and drop them. */
        int32_t nf = mq_kafka_rd_array(rd, 2 + 4, false);
        for (int32_t i = 0; i < nf && mq_kafka_rd_ok(rd); i++) {
            (void)mq_kafka_rd_string(rd);
            int32_t np = mq_kafka_rd_array(rd, 4, false);
            for (int32_t j = 0; j < np && mq_kafka_rd_ok(rd); j++)
                (void)mq_kafka_rd_i32(rd);
        }
    }
    if (v >= 11)
        r->rack_id = mq_kafka_rd_string(rd);
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

enum mq_err mq_kafka_fetch_part_add(struct mq_kafka_arena *a, struct mq_kafka_fetch_part *p,
                                    struct mq_slice *s)
{
    if (p->n_slices == p->cap_slices) {
        int32_t cap = p->cap_slices ? p->cap_slices * 2 : 4;
        struct mq_slice *n = mq_kafka_arena_calloc(a, (size_t)cap, sizeof *n);
        if (!n) {
            mq_slice_release(s);
            return MQ_ERR_NOMEM;
        }
        if (p->n_slices)
            memcpy(n, p->slices, (size_t)p->n_slices * sizeof *n);
        p->slices = n;
        p->cap_slices = cap;
    }
    p->slices[p->n_slices++] = *s;
    return MQ_OK;
}

void mq_kafka_fetch_resp_encode(struct mq_kafka_out *out, int16_t v, struct mq_kafka_fetch_req *r)
{
    struct mq_kafka_wr *wr = &out->wr;
    if (v >= 1)
        wr_throttle(wr);
    if (v >= 7) {
        mq_kafka_wr_i16(wr, r->error);
        mq_kafka_wr_i32(wr, 0); /* session id: no incremental fetch sessions */
    }
    mq_kafka_wr_array(wr, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        struct mq_kafka_fetch_topic *t = &r->topics[i];
        mq_kafka_wr_str(wr, t->name);
        mq_kafka_wr_array(wr, t->part_count);
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_kafka_fetch_part *p = &t->parts[j];
            mq_kafka_wr_i32(wr, p->partition);
            mq_kafka_wr_i16(wr, p->error);
            mq_kafka_wr_i64(wr, p->high_watermark);
            if (v < 4) {
                /* Before v4: no last stable offset, no transactions; the records are a message set. */
                if (p->msgs.len > INT32_MAX) {
                    wr->err = MQ_ERR_RANGE;
                    return;
                }
                mq_kafka_wr_bytes(wr, p->msgs.p ? p->msgs.p : (const uint8_t *)"", (int32_t)p->msgs.len);
                continue;
            }
            mq_kafka_wr_i64(wr, p->last_stable_offset);
            if (v >= 5)
                mq_kafka_wr_i64(wr, p->log_start);
            mq_kafka_wr_array(wr, 0); /* aborted transactions: mqlog writes none */
            if (v >= 11)
                mq_kafka_wr_i32(wr, -1); /* preferred read replica */
            uint64_t bytes = 0;
            for (int32_t k = 0; k < p->n_slices; k++)
                bytes += p->slices[k].len;
            if (bytes > INT32_MAX) {
                /* Cannot happen with max_bytes honoured; refuse rather than send a wrong length. */
                wr->err = MQ_ERR_RANGE;
                return;
            }
            mq_kafka_wr_i32(wr, (int32_t)bytes);
            for (int32_t k = 0; k < p->n_slices; k++)
                mq_kafka_out_splice(out, &p->slices[k]);
            p->n_slices = 0;
        }
    }
}

void mq_kafka_fetch_req_release(struct mq_kafka_fetch_req *r)
{
    for (int32_t i = 0; i < r->topic_count; i++)
        for (int32_t j = 0; j < r->topics[i].part_count; j++) {
            struct mq_kafka_fetch_part *p = &r->topics[i].parts[j];
            for (int32_t k = 0; k < p->n_slices; k++)
                mq_slice_release(&p->slices[k]);
            p->n_slices = 0;
            free(p->msgs.p);
            p->msgs = (struct mq_kafka_msgs){0};
        }
}

/* ---- FindCoordinator ---- */

enum mq_err mq_kafka_find_coordinator_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                 struct mq_kafka_find_coordinator_req *r)
{
    memset(r, 0, sizeof *r);
    r->key = mq_kafka_rd_string(rd);
    if (v >= 1)
        r->key_type = mq_kafka_rd_i8(rd);
    return rd->err;
}

void mq_kafka_find_coordinator_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_find_coordinator_req *r)
{
    if (v >= 1)
        wr_throttle(wr);
    mq_kafka_wr_i16(wr, r->error);
    if (v >= 1)
        mq_kafka_wr_string(wr, r->error_message);
    mq_kafka_wr_i32(wr, r->node_id);
    mq_kafka_wr_string(wr, r->host ? r->host : "");
    mq_kafka_wr_i32(wr, r->port);
}

/* ---- JoinGroup ---- */

enum mq_err mq_kafka_join_group_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                           struct mq_kafka_join_group_req *r)
{
    memset(r, 0, sizeof *r);
    r->group_id = mq_kafka_rd_string(rd);
    r->session_timeout_ms = mq_kafka_rd_i32(rd);
    r->rebalance_timeout_ms = v >= 1 ? mq_kafka_rd_i32(rd) : r->session_timeout_ms;
    r->member_id = mq_kafka_rd_string(rd);
    r->group_instance_id = v >= 5 ? mq_kafka_rd_nstring(rd) : null_str;
    r->protocol_type = mq_kafka_rd_string(rd);
    r->protocol_count = mq_kafka_rd_array(rd, 2 + 4, false);
    r->protocols = arr(rd, a, r->protocol_count, sizeof *r->protocols);
    for (int32_t i = 0; i < r->protocol_count && mq_kafka_rd_ok(rd); i++) {
        r->protocols[i].name = mq_kafka_rd_string(rd);
        r->protocols[i].metadata = mq_kafka_rd_bytes(rd);
    }
    if (!mq_kafka_rd_ok(rd))
        r->protocol_count = 0;
    return rd->err;
}

void mq_kafka_join_group_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                     const struct mq_kafka_join_group_resp *r)
{
    if (v >= 2)
        wr_throttle(wr);
    mq_kafka_wr_i16(wr, r->error);
    mq_kafka_wr_i32(wr, r->generation_id);
    mq_kafka_wr_str(wr, r->protocol_name.len >= 0 ? r->protocol_name : empty_str);
    mq_kafka_wr_str(wr, r->leader.len >= 0 ? r->leader : empty_str);
    mq_kafka_wr_str(wr, r->member_id.len >= 0 ? r->member_id : empty_str);
    mq_kafka_wr_array(wr, r->member_count);
    for (int32_t i = 0; i < r->member_count; i++) {
        const struct mq_kafka_join_member *m = &r->members[i];
        mq_kafka_wr_str(wr, m->member_id);
        if (v >= 5)
            mq_kafka_wr_str(wr, m->group_instance_id);
        mq_kafka_wr_bytes(wr, m->metadata.ptr, m->metadata.len < 0 ? 0 : m->metadata.len);
    }
}

/* ---- SyncGroup ---- */

enum mq_err mq_kafka_sync_group_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                           struct mq_kafka_sync_group_req *r)
{
    memset(r, 0, sizeof *r);
    r->group_id = mq_kafka_rd_string(rd);
    r->generation_id = mq_kafka_rd_i32(rd);
    r->member_id = mq_kafka_rd_string(rd);
    r->group_instance_id = v >= 3 ? mq_kafka_rd_nstring(rd) : null_str;
    r->assignment_count = mq_kafka_rd_array(rd, 2 + 4, false);
    r->assignments = arr(rd, a, r->assignment_count, sizeof *r->assignments);
    for (int32_t i = 0; i < r->assignment_count && mq_kafka_rd_ok(rd); i++) {
        r->assignments[i].member_id = mq_kafka_rd_string(rd);
        r->assignments[i].assignment = mq_kafka_rd_bytes(rd);
    }
    if (!mq_kafka_rd_ok(rd))
        r->assignment_count = 0;
    return rd->err;
}

void mq_kafka_sync_group_resp_encode(struct mq_kafka_wr *wr, int16_t v, int16_t error,
                                     struct mq_kafka_str assignment)
{
    if (v >= 1)
        wr_throttle(wr);
    mq_kafka_wr_i16(wr, error);
    mq_kafka_wr_bytes(wr, assignment.ptr, assignment.len < 0 ? 0 : assignment.len);
}

/* ---- Heartbeat ---- */

enum mq_err mq_kafka_heartbeat_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_heartbeat_req *r)
{
    memset(r, 0, sizeof *r);
    r->group_id = mq_kafka_rd_string(rd);
    r->generation_id = mq_kafka_rd_i32(rd);
    r->member_id = mq_kafka_rd_string(rd);
    r->group_instance_id = v >= 3 ? mq_kafka_rd_nstring(rd) : null_str;
    return rd->err;
}

void mq_kafka_heartbeat_resp_encode(struct mq_kafka_wr *wr, int16_t v, const struct mq_kafka_heartbeat_req *r)
{
    if (v >= 1)
        wr_throttle(wr);
    mq_kafka_wr_i16(wr, r->error);
}

/* ---- LeaveGroup ---- */

enum mq_err mq_kafka_leave_group_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                            struct mq_kafka_leave_group_req *r)
{
    memset(r, 0, sizeof *r);
    r->group_id = mq_kafka_rd_string(rd);
    if (v <= 2) {
        r->member_count = 1;
        r->members = arr(rd, a, 1, sizeof *r->members);
        if (r->members) {
            r->members[0].member_id = mq_kafka_rd_string(rd);
            r->members[0].group_instance_id = null_str;
        }
    } else {
        r->member_count = mq_kafka_rd_array(rd, 2 + 2, false);
        r->members = arr(rd, a, r->member_count, sizeof *r->members);
        for (int32_t i = 0; i < r->member_count && mq_kafka_rd_ok(rd); i++) {
            r->members[i].member_id = mq_kafka_rd_string(rd);
            r->members[i].group_instance_id = mq_kafka_rd_nstring(rd);
        }
    }
    if (!mq_kafka_rd_ok(rd))
        r->member_count = 0;
    return rd->err;
}

void mq_kafka_leave_group_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                      const struct mq_kafka_leave_group_req *r)
{
    if (v >= 1)
        wr_throttle(wr);
    if (v <= 2) {
        /* One member: its error is the response's. */
        mq_kafka_wr_i16(wr, r->error != MQ_KC_NONE ? r->error
                            : r->member_count > 0  ? r->members[0].error
                                                   : 0);
        return;
    }
    mq_kafka_wr_i16(wr, r->error);
    mq_kafka_wr_array(wr, r->member_count);
    for (int32_t i = 0; i < r->member_count; i++) {
        mq_kafka_wr_str(wr, r->members[i].member_id);
        mq_kafka_wr_str(wr, r->members[i].group_instance_id);
        mq_kafka_wr_i16(wr, r->members[i].error);
    }
}

/* ---- OffsetCommit ---- */

enum mq_err mq_kafka_offset_commit_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                              struct mq_kafka_offset_commit_req *r)
{
    memset(r, 0, sizeof *r);
    r->group_id = mq_kafka_rd_string(rd);
    r->generation_id = -1;
    r->member_id = empty_str;
    r->group_instance_id = null_str;
    r->retention_time_ms = -1;
    if (v >= 1) {
        r->generation_id = mq_kafka_rd_i32(rd);
        r->member_id = mq_kafka_rd_string(rd);
    }
    if (v >= 7)
        r->group_instance_id = mq_kafka_rd_nstring(rd);
    if (v >= 2 && v <= 4)
        r->retention_time_ms = mq_kafka_rd_i64(rd);
    r->topic_count = topic_array(rd, 2 + 4, false);
    r->topics = arr(rd, a, r->topic_count, sizeof *r->topics);
    size_t part_min = 4 + 8 + 2 + (v >= 6 ? 4 : 0) + (v == 1 ? 8 : 0);
    for (int32_t i = 0; i < r->topic_count && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_oc_topic *t = &r->topics[i];
        t->name = mq_kafka_rd_string(rd);
        t->part_count = part_array(rd, part_min);
        t->parts = arr(rd, a, t->part_count, sizeof *t->parts);
        for (int32_t j = 0; j < t->part_count && mq_kafka_rd_ok(rd); j++) {
            struct mq_kafka_oc_part *p = &t->parts[j];
            p->partition = mq_kafka_rd_i32(rd);
            p->offset = mq_kafka_rd_i64(rd);
            p->leader_epoch = v >= 6 ? mq_kafka_rd_i32(rd) : -1;
            p->commit_timestamp = v == 1 ? mq_kafka_rd_i64(rd) : -1;
            p->metadata = mq_kafka_rd_nstring(rd);
        }
        if (!mq_kafka_rd_ok(rd))
            t->part_count = 0;
    }
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_offset_commit_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                        const struct mq_kafka_offset_commit_req *r)
{
    if (v >= 3)
        wr_throttle(wr);
    mq_kafka_wr_array(wr, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        const struct mq_kafka_oc_topic *t = &r->topics[i];
        mq_kafka_wr_str(wr, t->name);
        mq_kafka_wr_array(wr, t->part_count);
        for (int32_t j = 0; j < t->part_count; j++) {
            mq_kafka_wr_i32(wr, t->parts[j].partition);
            mq_kafka_wr_i16(wr, t->parts[j].error);
        }
    }
}

/* ---- OffsetFetch ---- */

enum mq_err mq_kafka_offset_fetch_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                             struct mq_kafka_offset_fetch_req *r)
{
    memset(r, 0, sizeof *r);
    r->group_id = mq_kafka_rd_string(rd);
    r->topic_count = topic_array(rd, 2 + 4, v >= 2);
    r->topics = arr(rd, a, r->topic_count, sizeof *r->topics);
    for (int32_t i = 0; i < r->topic_count && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_of_topic *t = &r->topics[i];
        t->name = mq_kafka_rd_string(rd);
        t->part_count = part_array(rd, 4);
        t->parts = arr(rd, a, t->part_count, sizeof *t->parts);
        for (int32_t j = 0; j < t->part_count && mq_kafka_rd_ok(rd); j++) {
            t->parts[j].partition = mq_kafka_rd_i32(rd);
            t->parts[j].offset = -1;
            t->parts[j].leader_epoch = -1;
            t->parts[j].metadata = empty_str;
        }
        if (!mq_kafka_rd_ok(rd))
            t->part_count = 0;
    }
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_offset_fetch_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                       const struct mq_kafka_offset_fetch_req *r)
{
    if (v >= 3)
        wr_throttle(wr);
    int32_t nt = r->topic_count > 0 ? r->topic_count : 0;
    mq_kafka_wr_array(wr, nt);
    for (int32_t i = 0; i < nt; i++) {
        const struct mq_kafka_of_topic *t = &r->topics[i];
        mq_kafka_wr_str(wr, t->name);
        mq_kafka_wr_array(wr, t->part_count);
        for (int32_t j = 0; j < t->part_count; j++) {
            const struct mq_kafka_of_part *p = &t->parts[j];
            mq_kafka_wr_i32(wr, p->partition);
            mq_kafka_wr_i64(wr, p->offset);
            if (v >= 5)
                mq_kafka_wr_i32(wr, p->leader_epoch);
            mq_kafka_wr_str(wr, p->metadata);
            mq_kafka_wr_i16(wr, p->error);
        }
    }
    if (v >= 2)
        mq_kafka_wr_i16(wr, r->error);
}

/* ---- Produce ---- */

enum mq_err mq_kafka_produce_req_decode(struct mq_kafka_rd *rd, int16_t v, struct mq_kafka_arena *a,
                                        struct mq_kafka_produce_req *r)
{
    memset(r, 0, sizeof *r);
    r->transactional_id = v >= 3 ? mq_kafka_rd_nstring(rd) : null_str;
    r->acks = mq_kafka_rd_i16(rd);
    r->timeout_ms = mq_kafka_rd_i32(rd);
    r->topic_count = topic_array(rd, 2 + 4, false);
    r->topics = arr(rd, a, r->topic_count, sizeof *r->topics);
    for (int32_t i = 0; i < r->topic_count && mq_kafka_rd_ok(rd); i++) {
        struct mq_kafka_produce_topic *t = &r->topics[i];
        t->name = mq_kafka_rd_string(rd);
        t->part_count = part_array(rd, 4 + 4);
        t->parts = arr(rd, a, t->part_count, sizeof *t->parts);
        for (int32_t j = 0; j < t->part_count && mq_kafka_rd_ok(rd); j++) {
            t->parts[j].partition = mq_kafka_rd_i32(rd);
            (void)mq_kafka_rd_nbytes(rd); /* the records: never looked at */
        }
        if (!mq_kafka_rd_ok(rd))
            t->part_count = 0;
    }
    if (!mq_kafka_rd_ok(rd))
        r->topic_count = 0;
    return rd->err;
}

void mq_kafka_produce_resp_encode(struct mq_kafka_wr *wr, int16_t v, const struct mq_kafka_produce_req *r)
{
    mq_kafka_wr_array(wr, r->topic_count);
    for (int32_t i = 0; i < r->topic_count; i++) {
        const struct mq_kafka_produce_topic *t = &r->topics[i];
        mq_kafka_wr_str(wr, t->name);
        mq_kafka_wr_array(wr, t->part_count);
        for (int32_t j = 0; j < t->part_count; j++) {
            mq_kafka_wr_i32(wr, t->parts[j].partition);
            mq_kafka_wr_i16(wr, t->parts[j].error);
            mq_kafka_wr_i64(wr, -1); /* base offset */
            if (v >= 2)
                mq_kafka_wr_i64(wr, -1); /* log append time */
            if (v >= 5)
                mq_kafka_wr_i64(wr, -1); /* log start offset */
            if (v >= 8) {
                mq_kafka_wr_array(wr, 0);     /* record errors */
                mq_kafka_wr_string(wr, NULL); /* error message */
            }
        }
    }
    if (v >= 1)
        wr_throttle(wr);
}

/* ---- InitProducerId ---- */

enum mq_err mq_kafka_init_producer_id_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                 struct mq_kafka_init_producer_id_req *r)
{
    (void)v;
    memset(r, 0, sizeof *r);
    r->transactional_id = mq_kafka_rd_nstring(rd);
    r->transaction_timeout_ms = mq_kafka_rd_i32(rd);
    return rd->err;
}

void mq_kafka_init_producer_id_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                           const struct mq_kafka_init_producer_id_req *r)
{
    (void)v;
    wr_throttle(wr);
    mq_kafka_wr_i16(wr, r->error);
    mq_kafka_wr_i64(wr, -1); /* producer id */
    mq_kafka_wr_i16(wr, -1); /* producer epoch */
}
