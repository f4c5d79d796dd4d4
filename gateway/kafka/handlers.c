/*
 * handlers.c - the Kafka endpoint's request handlers other than Fetch and the admin APIs (see
 * server_int.h): metadata and offsets, consumer groups and committed offsets, the refusals of a read-only
 * endpoint (Produce, InitProducerId, unsupported APIs), and the table of served APIs that both dispatches
 * requests and answers ApiVersions.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka/proto.h"
#include "kafka/server_int.h"
#include "util/diag.h"

#define METADATA_MAX_BYTES 4096 /* Kafka's offset.metadata.max.bytes */

/* ---- handlers ---- */

/* Copies a topic name view into buf (MQ_TOPIC_NAME_MAX + 1 bytes); false when it breaks the rule of
 * util/topic.h (or is null or holds a NUL). */
bool mq_ksrv_topic_name(struct mq_kafka_str s, char *buf)
{
    return mq_kafka_str_copy(s, buf, MQ_TOPIC_NAME_MAX + 1) && mq_topic_name_valid(buf);
}

bool mq_ksrv_decoded(struct req *r, enum mq_err err)
{
    char why[96];
    switch (err) {
    case MQ_OK:
        return true;
    case MQ_ERR_RANGE:
        mq_ksrv_too_large(r, false);
        break;
    case MQ_ERR_NOMEM:
        mq_ksrv_conn_kill(r->conn, "out of memory decoding a request");
        break;
    default:
        snprintf(why, sizeof why, "malformed %s request", mq_kafka_api_name(r->hdr.api_key));
        mq_ksrv_protocol_error(r->conn, why);
        break;
    }
    return false;
}

int16_t mq_ksrv_code_for(enum mq_err err)
{
    switch (err) {
    case MQ_OK:
        return MQ_KC_NONE;
    case MQ_ERR_NOENT:
        return MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
    case MQ_ERR_RANGE:
        return MQ_KC_OFFSET_OUT_OF_RANGE;
    case MQ_ERR_IO:
    case MQ_ERR_CORRUPT:
        return MQ_KC_KAFKA_STORAGE_ERROR;
    default:
        return MQ_KC_UNKNOWN_SERVER_ERROR;
    }
}

/* Fills q's list of what is served from the API table (mq_ksrv_apis()); false when out of memory. */
static bool advertise(struct req *r, struct mq_kafka_api_versions_req *q)
{
    size_t n;
    const struct mq_ksrv_api *t = mq_ksrv_apis(&n);
    struct mq_kafka_api_range *list = mq_kafka_arena_calloc(&r->arena, n, sizeof *list);
    if (!list)
        return false;
    for (size_t i = 0; i < n; i++) {
        list[i].key = t[i].key;
        list[i].min = t[i].min;
        list[i].max = t[i].max;
    }
    q->apis = list;
    q->api_count = (int32_t)n;
    return true;
}

static void handle_api_versions(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_api_versions_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_api_versions_req_decode(rd, r->hdr.api_version, &q)))
        return;
    q.error = MQ_KC_NONE;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it) {
        if (advertise(r, &q))
            mq_kafka_api_versions_resp_encode(&it->out.wr, r->hdr.api_version, &q);
        else
            it->out.wr.err = MQ_ERR_NOMEM; /* mq_ksrv_resp_end() closes the connection */
    }
    mq_ksrv_resp_end(r, it);
}

static void handle_metadata(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_metadata_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_metadata_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    struct mq_catalog_topic *all = NULL;
    if (q.topic_count < 0) {
        size_t n = 0;
        enum mq_err err = mq_store_topic_list(srv->store, &all, &n);
        if (err != MQ_OK) {
            MQ_WARN("kafka: listing topics: %s", mq_strerror(err));
            n = 0;
        }
        q.topics = mq_kafka_arena_calloc(&r->arena, n, sizeof *q.topics);
        if (!q.topics) {
            free(all);
            mq_ksrv_conn_kill(r->conn, "out of memory");
            return;
        }
        q.topic_count = 0;
        for (size_t i = 0; i < n; i++) {
            if (!mq_ksrv_topic_visible(r, all[i].name))
                continue; /* what the principal may not describe is left out, as Kafka does */
            struct mq_kafka_md_topic *t = &q.topics[q.topic_count++];
            t->name.ptr = all[i].name;
            t->name.len = (int32_t)strlen(all[i].name);
            t->partitions = all[i].partitions;
        }
    } else {
        for (int32_t i = 0; i < q.topic_count; i++) {
            char name[MQ_TOPIC_NAME_MAX + 1];
            struct mq_catalog_topic t;
            if (!mq_ksrv_topic_name(q.topics[i].name, name)) {
                q.topics[i].error = MQ_KC_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            if ((q.topics[i].error = mq_ksrv_topic_denied(r, name, MQ_ACL_DESCRIBE)) != MQ_KC_NONE) {
                q.topics[i].partitions = 0;
                continue; /* hidden: answered as a topic that does not exist */
            }
            enum mq_err err = mq_store_topic_get(srv->store, name, &t);
            q.topics[i].error = err == MQ_OK ? MQ_KC_NONE : mq_ksrv_code_for(err);
            q.topics[i].partitions = err == MQ_OK ? t.partitions : 0;
        }
    }
    q.node_id = srv->conf.node_id;
    q.host = r->conn->lsn->advertised_host; /* each listener advertises its own address */
    q.port = r->conn->lsn->advertised_port;
    q.cluster_id = srv->cluster_id;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_metadata_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
    free(all);
}

/* The timestamp of the record at `offset` (for ListOffsets by time), or fallback when it cannot be read. */
static int64_t record_timestamp(struct mq_part *part, int64_t offset, int64_t fallback)
{
    struct mq_cursor *cur = NULL;
    if (mq_cursor_open(part, offset, &cur) != MQ_OK)
        return fallback;
    struct mq_record_view rv;
    /* The cursor's timestamp is the effective one: the batch's for LogAppendTime batches. A compressed
     * or damaged batch is an error of next(): the request's time stands in for it, as before. */
    int64_t ts = mq_cursor_next(cur, &rv) == 1 ? rv.timestamp : fallback;
    mq_cursor_close(cur);
    return ts;
}

static void handle_list_offsets(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_list_offsets_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_list_offsets_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    for (int32_t i = 0; i < q.topic_count; i++) {
        struct mq_kafka_lo_topic *t = &q.topics[i];
        char name[MQ_TOPIC_NAME_MAX + 1];
        bool valid = mq_ksrv_topic_name(t->name, name);
        int16_t denied = valid ? mq_ksrv_topic_denied(r, name, MQ_ACL_DESCRIBE) : MQ_KC_NONE;
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_kafka_lo_part *p = &t->parts[j];
            if (denied != MQ_KC_NONE) {
                p->error = denied;
                continue;
            }
            struct mq_part *part = NULL;
            enum mq_err err = valid ? mq_store_part(srv->store, name, p->partition, &part) : MQ_ERR_NOENT;
            int64_t start = 0, end = 0;
            if (err == MQ_OK)
                err = mq_part_offsets(part, &start, &end);
            if (err != MQ_OK) {
                p->error = mq_ksrv_code_for(err);
                continue;
            }
            p->out_timestamp = -1;
            if (p->timestamp == MQ_KAFKA_TS_LATEST) {
                p->offset = end;
            } else if (p->timestamp == MQ_KAFKA_TS_EARLIEST) {
                p->offset = start;
            } else if (p->timestamp < 0) {
                /* -3 (max timestamp) and others belong to versions not served. */
                p->error = MQ_KC_INVALID_REQUEST;
            } else {
                int64_t off = -1;
                err = mq_part_offset_for_time(part, p->timestamp, &off);
                if (err != MQ_OK) {
                    p->error = mq_ksrv_code_for(err);
                } else if (off < 0 || off >= end) {
                    p->offset = -1; /* no record that new: clients read this as "the end" */
                } else {
                    p->offset = off;
                    p->out_timestamp = record_timestamp(part, off, p->timestamp);
                }
            }
        }
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_list_offsets_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

/* ---- groups ---- */

void mq_ksrv_on_join(void *opaque, void *waiter, const struct mq_kafka_join_group_resp *resp)
{
    (void)opaque;
    struct req *r = waiter;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_join_group_resp_encode(&it->out.wr, r->hdr.api_version, resp);
    mq_ksrv_resp_end(r, it);
    r->done = true;
    mq_ksrv_conn_set_ready(r->conn);
}

void mq_ksrv_on_sync(void *opaque, void *waiter, int16_t error, struct mq_kafka_str assignment)
{
    (void)opaque;
    struct req *r = waiter;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_sync_group_resp_encode(&it->out.wr, r->hdr.api_version, error, assignment);
    mq_ksrv_resp_end(r, it);
    r->done = true;
    mq_ksrv_conn_set_ready(r->conn);
}

/* A group gained its first member or lost its last: recorded in the catalog for `mqlog groups reset`. */
void mq_ksrv_on_live(void *opaque, const char *group_id, bool live)
{
    struct mq_kafka_server *srv = opaque;
    enum mq_err err = mq_catalog_group_set_live(srv->cat, group_id, (long)getpid(), live);
    if (err != MQ_OK && err != MQ_ERR_READONLY) /* read-only: no tool can write beside such a server */
        MQ_WARN("kafka: recording that group %s %s: %s (%s)", group_id, live ? "has members" : "is empty",
                mq_strerror(err), mq_catalog_errmsg(srv->cat));
}

static void handle_find_coordinator(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_find_coordinator_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_find_coordinator_req_decode(rd, r->hdr.api_version, &q)))
        return;
    if (q.key_type == 0 && (q.error = mq_ksrv_group_denied(r, q.key, MQ_ACL_DESCRIBE)) != MQ_KC_NONE) {
        q.node_id = -1;
        q.host = "";
        q.port = -1;
    } else if (q.key_type == 0) {
        q.error = MQ_KC_NONE;
        q.node_id = srv->conf.node_id;
        q.host = r->conn->lsn->advertised_host;
        q.port = r->conn->lsn->advertised_port;
    } else {
        /* Transactions need a transaction coordinator, which a read-only endpoint does not have. */
        q.error = MQ_KC_COORDINATOR_NOT_AVAILABLE;
        q.error_message = "mqlog has no transaction coordinator";
        q.node_id = -1;
        q.host = "";
        q.port = -1;
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_find_coordinator_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_join_group(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_join_group_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_join_group_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    int16_t denied = mq_ksrv_group_denied(r, q.group_id, MQ_ACL_READ);
    if (denied != MQ_KC_NONE) {
        struct mq_kafka_join_group_resp no = {.error = denied, .generation_id = -1};
        no.protocol_name = no.leader = no.member_id = (struct mq_kafka_str){"", 0};
        struct out_item *it = mq_ksrv_resp_begin(r);
        if (it)
            mq_kafka_join_group_resp_encode(&it->out.wr, r->hdr.api_version, &no);
        mq_ksrv_resp_end(r, it);
        return;
    }
    /* DescribeGroups shows the member's host as Kafka does: "/" and the address, without the port. */
    const char *colon = strrchr(r->conn->peer, ':');
    size_t hl = colon ? (size_t)(colon - r->conn->peer) : strlen(r->conn->peer);
    char *host = mq_kafka_arena_calloc(&r->arena, hl + 2, 1);
    if (host) {
        host[0] = '/';
        memcpy(host + 1, r->conn->peer, hl);
        q.client_host.ptr = host;
        q.client_host.len = (int32_t)(hl + 1);
    }
    /* Park first: the answer may come back from inside the call. */
    r->state = REQ_GROUP_WAIT;
    r->conn->cur = r;
    mq_kafka_groups_join(srv->groups, now_ms(), &q, r->hdr.client_id, r);
}

static void handle_sync_group(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_sync_group_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_sync_group_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    int16_t denied = mq_ksrv_group_denied(r, q.group_id, MQ_ACL_READ);
    if (denied != MQ_KC_NONE) {
        struct out_item *it = mq_ksrv_resp_begin(r);
        if (it)
            mq_kafka_sync_group_resp_encode(&it->out.wr, r->hdr.api_version, denied,
                                            (struct mq_kafka_str){"", 0});
        mq_ksrv_resp_end(r, it);
        return;
    }
    r->state = REQ_GROUP_WAIT;
    r->conn->cur = r;
    mq_kafka_groups_sync(srv->groups, now_ms(), &q, r);
}

static void handle_heartbeat(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_heartbeat_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_heartbeat_req_decode(rd, r->hdr.api_version, &q)))
        return;
    q.error = mq_ksrv_group_denied(r, q.group_id, MQ_ACL_READ);
    if (q.error == MQ_KC_NONE)
        q.error = mq_kafka_groups_heartbeat(r->conn->srv->groups, now_ms(), q.group_id, q.generation_id,
                                            q.member_id, q.group_instance_id);
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_heartbeat_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_leave_group(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_leave_group_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_leave_group_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    q.error = mq_ksrv_group_denied(r, q.group_id, MQ_ACL_READ);
    if (q.error != MQ_KC_NONE)
        q.member_count = 0; /* as Kafka: the error alone */
    for (int32_t i = 0; i < q.member_count; i++)
        q.members[i].error = mq_kafka_groups_leave(r->conn->srv->groups, now_ms(), q.group_id,
                                                   q.members[i].member_id, q.members[i].group_instance_id);
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_leave_group_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

/* ---- offsets ---- */

static int16_t catalog_code(enum mq_err err)
{
    switch (err) {
    case MQ_OK:
        return MQ_KC_NONE;
    case MQ_ERR_NOENT:
        return MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
    case MQ_ERR_INVAL:
        return MQ_KC_INVALID_REQUEST;
    default:
        return MQ_KC_COORDINATOR_NOT_AVAILABLE; /* retriable: the client tries again */
    }
}

/* A NUL-terminated copy of a view in the arena (NULL for a null view or when out of memory). */
static char *arena_cstr(struct mq_kafka_arena *a, struct mq_kafka_str s)
{
    if (s.len < 0)
        return NULL;
    char *d = mq_kafka_arena_calloc(a, (size_t)s.len + 1, 1);
    if (d && s.len > 0)
        memcpy(d, s.ptr, (size_t)s.len);
    return d;
}

static void handle_offset_commit(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_offset_commit_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_offset_commit_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    char group[256];
    int16_t gerr = MQ_KC_NONE;
    if (q.group_id.len <= 0 || !mq_kafka_str_copy(q.group_id, group, sizeof group))
        gerr = MQ_KC_INVALID_GROUP_ID;
    else if ((gerr = mq_ksrv_group_denied(r, q.group_id, MQ_ACL_READ)) == MQ_KC_NONE)
        gerr = mq_kafka_groups_check_commit(srv->groups, q.group_id, q.generation_id, q.member_id,
                                            q.group_instance_id);

    size_t n = 0;
    for (int32_t i = 0; i < q.topic_count; i++)
        n += (size_t)q.topics[i].part_count;
    struct mq_offset_commit *commits = mq_kafka_arena_calloc(&r->arena, n, sizeof *commits);
    struct mq_kafka_oc_part **back = mq_kafka_arena_calloc(&r->arena, n, sizeof *back);
    if (!commits || !back) {
        mq_ksrv_conn_kill(r->conn, "out of memory");
        return;
    }
    size_t m = 0;
    for (int32_t i = 0; i < q.topic_count; i++) {
        struct mq_kafka_oc_topic *t = &q.topics[i];
        char name[MQ_TOPIC_NAME_MAX + 1];
        bool valid = mq_ksrv_topic_name(t->name, name);
        char *cname = valid ? arena_cstr(&r->arena, t->name) : NULL;
        int16_t denied =
            valid && gerr == MQ_KC_NONE ? mq_ksrv_topic_denied(r, name, MQ_ACL_READ) : MQ_KC_NONE;
        for (int32_t j = 0; j < t->part_count; j++) {
            struct mq_kafka_oc_part *p = &t->parts[j];
            if (gerr != MQ_KC_NONE) {
                p->error = gerr;
            } else if (denied != MQ_KC_NONE) {
                p->error = denied;
            } else if (!valid || !cname) {
                p->error = MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (p->metadata.len > METADATA_MAX_BYTES ||
                       (p->metadata.len > 0 && memchr(p->metadata.ptr, '\0', (size_t)p->metadata.len))) {
                p->error = MQ_KC_OFFSET_METADATA_TOO_LARGE;
            } else {
                commits[m].topic = cname;
                commits[m].partition = p->partition;
                commits[m].offset = p->offset;
                commits[m].metadata = arena_cstr(&r->arena, p->metadata);
                back[m++] = p;
            }
        }
    }
    if (m > 0) {
        enum mq_err err = mq_catalog_offset_commit_many(srv->cat, group, commits, m);
        if (err != MQ_OK)
            MQ_WARN("kafka: committing offsets of group %s: %s (%s)", group, mq_strerror(err),
                    mq_catalog_errmsg(srv->cat));
        for (size_t k = 0; k < m; k++)
            back[k]->error = catalog_code(err != MQ_OK ? err : commits[k].err);
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_offset_commit_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

/* Fills one partition of an OffsetFetch from the catalog. */
static void offset_fetch_one(struct mq_kafka_server *srv, struct req *r, const char *group, const char *topic,
                             struct mq_kafka_of_part *p)
{
    int64_t off = -1;
    char *md = NULL;
    enum mq_err err =
        topic ? mq_catalog_offset_fetch(srv->cat, group, topic, p->partition, &off, &md, NULL) : MQ_ERR_NOENT;
    p->leader_epoch = -1;
    if (err == MQ_OK) {
        p->offset = off;
        struct mq_kafka_str v = {md, md ? (int32_t)strlen(md) : 0};
        char *copy = arena_cstr(&r->arena, v);
        p->metadata.ptr = copy ? copy : "";
        p->metadata.len = copy ? v.len : 0;
        p->error = MQ_KC_NONE;
    } else {
        /* Nothing committed (or an unknown topic): offset -1, as Kafka answers. */
        p->offset = -1;
        p->metadata.ptr = "";
        p->metadata.len = 0;
        p->error = err == MQ_ERR_NOENT ? MQ_KC_NONE : catalog_code(err);
    }
    free(md);
}

static void handle_offset_fetch(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_server *srv = r->conn->srv;
    struct mq_kafka_offset_fetch_req q;
    enum mq_err derr = mq_kafka_offset_fetch_req_decode(rd, r->hdr.api_version, &r->arena, &q);
    if (derr == MQ_ERR_RANGE && r->hdr.api_version >= 2) {
        /* Too many partitions: v2+ has a top-level error code to refuse the request with, as Kafka does. */
        mq_ksrv_too_large(r, true);
        q.error = MQ_KC_INVALID_REQUEST;
        q.topic_count = 0;
        struct out_item *it = mq_ksrv_resp_begin(r);
        if (it)
            mq_kafka_offset_fetch_resp_encode(&it->out.wr, r->hdr.api_version, &q);
        mq_ksrv_resp_end(r, it);
        return;
    }
    if (!mq_ksrv_decoded(r, derr))
        return;
    char group[256];
    q.error = MQ_KC_NONE;
    if (q.group_id.len <= 0 || !mq_kafka_str_copy(q.group_id, group, sizeof group)) {
        q.error = MQ_KC_INVALID_GROUP_ID;
        if (q.topic_count < 0)
            q.topic_count = 0;
    } else if ((q.error = mq_ksrv_group_denied(r, q.group_id, MQ_ACL_DESCRIBE)) != MQ_KC_NONE) {
        /* v2+ carry it at the top; every version in each partition, as Kafka's error response does */
        if (q.topic_count < 0)
            q.topic_count = 0;
        for (int32_t i = 0; i < q.topic_count; i++)
            for (int32_t j = 0; j < q.topics[i].part_count; j++) {
                struct mq_kafka_of_part *p = &q.topics[i].parts[j];
                p->offset = -1;
                p->leader_epoch = -1;
                p->metadata = (struct mq_kafka_str){"", 0};
                p->error = q.error;
            }
    } else if (q.topic_count < 0) {
        /* Every partition the group committed, grouped by topic (the catalog lists them in order). */
        struct mq_group_offset *offs = NULL;
        size_t n = 0;
        enum mq_err err = mq_catalog_offset_list(srv->cat, group, &offs, &n);
        q.topic_count = 0;
        if (err != MQ_OK) {
            q.error = catalog_code(err);
            n = 0;
        }
        q.topics = mq_kafka_arena_calloc(&r->arena, n, sizeof *q.topics);
        for (size_t k = 0; q.topics && k < n;) {
            size_t e = k;
            while (e < n && strcmp(offs[e].topic, offs[k].topic) == 0)
                e++;
            if (!mq_ksrv_topic_visible(r, offs[k].topic)) {
                k = e; /* left out, as Metadata leaves it out */
                continue;
            }
            struct mq_kafka_of_topic *t = &q.topics[q.topic_count++];
            struct mq_kafka_str tn = {offs[k].topic, (int32_t)strlen(offs[k].topic)};
            char *name = arena_cstr(&r->arena, tn);
            t->name.ptr = name ? name : "";
            t->name.len = name ? tn.len : 0;
            t->parts = mq_kafka_arena_calloc(&r->arena, e - k, sizeof *t->parts);
            t->part_count = t->parts ? (int32_t)(e - k) : 0;
            for (int32_t j = 0; j < t->part_count; j++) {
                const struct mq_group_offset *o = &offs[k + (size_t)j];
                struct mq_kafka_of_part *p = &t->parts[j];
                p->partition = o->partition;
                p->offset = o->offset;
                p->leader_epoch = -1;
                struct mq_kafka_str mv = {o->metadata, o->metadata ? (int32_t)strlen(o->metadata) : 0};
                char *md = arena_cstr(&r->arena, mv);
                p->metadata.ptr = md ? md : "";
                p->metadata.len = md ? mv.len : 0;
            }
            k = e;
        }
        mq_catalog_offsets_free(offs, n);
    } else {
        for (int32_t i = 0; i < q.topic_count; i++) {
            struct mq_kafka_of_topic *t = &q.topics[i];
            char name[MQ_TOPIC_NAME_MAX + 1];
            bool valid = mq_ksrv_topic_name(t->name, name);
            /* A hidden topic is answered as one that does not exist: nothing committed. */
            bool hidden = valid && mq_ksrv_topic_denied(r, name, MQ_ACL_DESCRIBE) != MQ_KC_NONE;
            for (int32_t j = 0; j < t->part_count; j++)
                offset_fetch_one(srv, r, group, valid && !hidden ? name : NULL, &t->parts[j]);
        }
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_offset_fetch_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_produce(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_produce_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_produce_req_decode(rd, r->hdr.api_version, &r->arena, &q)))
        return;
    int16_t code = q.transactional_id.len >= 0 ? MQ_KC_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                                               : MQ_KC_TOPIC_AUTHORIZATION_FAILED;
    for (int32_t i = 0; i < q.topic_count; i++)
        for (int32_t j = 0; j < q.topics[i].part_count; j++)
            q.topics[i].parts[j].error = code;
    if (q.acks == 0) {
        /* acks=0: the producer reads no response at all. */
        atomic_fetch_add(&r->conn->srv->st_requests, 1);
        atomic_fetch_add(&r->conn->srv->st_api[MQ_KAPI_PRODUCE], 1);
        return;
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_produce_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

static void handle_init_producer_id(struct req *r, struct mq_kafka_rd *rd)
{
    struct mq_kafka_init_producer_id_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_init_producer_id_req_decode(rd, r->hdr.api_version, &q)))
        return;
    /* Idempotent producers need cluster-level write rights, transactional ones their transactional id's. */
    q.error = q.transactional_id.len >= 0 ? MQ_KC_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                                          : MQ_KC_CLUSTER_AUTHORIZATION_FAILED;
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_init_producer_id_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

/*
 * A request whose API or version is not served, handled as Kafka handles it (its SocketServer): an
 * ApiVersions request of any version gets a v0 response with UNSUPPORTED_VERSION and the list of what is
 * served, so that the client retries with a version both know (KIP-511); any other API or version closes
 * the connection, since its response could not be written in a form the client expects. (Kafka lists only
 * ApiVersions' own range in that answer; the whole list serves the same clients and older ones too.)
 * Logged once per connection at info level, and counted.
 */
static void handle_unsupported(struct req *r)
{
    struct conn *c = r->conn;
    atomic_fetch_add(&c->srv->st_unsupported, 1);
    bool versions = r->hdr.api_key == MQ_KAPI_API_VERSIONS;
    if (!c->told_unsupported) {
        c->told_unsupported = true;
        MQ_INFO("kafka: %s asked for %s (key %d) v%d, which is not served: %s", c->peer,
                mq_kafka_api_name(r->hdr.api_key), r->hdr.api_key, r->hdr.api_version,
                versions ? "answered with the versions served" : "closing the connection, as Kafka does");
    }
    if (!versions) {
        mq_ksrv_conn_kill(c, NULL);
        return;
    }
    struct out_item *it = calloc(1, sizeof *it);
    if (it) {
        mq_kafka_out_init(&it->out);
        mq_kafka_out_begin(&it->out, r->hdr.correlation_id, 0);
        struct mq_kafka_api_versions_req q = {.error = MQ_KC_UNSUPPORTED_VERSION};
        if (advertise(r, &q))
            mq_kafka_api_versions_resp_encode(&it->out.wr, 0, &q);
        else
            it->out.wr.err = MQ_ERR_NOMEM; /* mq_ksrv_resp_end() closes the connection */
    }
    mq_ksrv_resp_end(r, it);
}

/* ---- the API table and dispatch ---- */

/*
 * Every API the endpoint serves, in key order, with the versions it accepts and its handler. This one table
 * dispatches requests (below) and is what ApiVersions advertises (advertise()), so the two cannot disagree.
 * A request for an API or version not listed goes to handle_unsupported(). Produce and InitProducerId are
 * listed so that producers get a clear authorisation error rather than a closed connection, and so are
 * the admin APIs that would change something (CreateTopics, DeleteTopics, DeleteRecords,
 * CreatePartitions, AlterConfigs, IncrementalAlterConfigs, CreateAcls, DeleteAcls: admin.c), which
 * refuse everything asked about with an error saying where mqlog's settings come from: an admin client
 * then shows that message instead of a closed connection.
 * Adding an API: its codec in proto.c (admin APIs: proto_admin.c), its handler here (admin.c), its first
 * flexible version in proto.c, one line in this table.
 */
static const struct mq_ksrv_api apis[] = {
    {MQ_KAPI_PRODUCE, 0, 8, handle_produce},
    {MQ_KAPI_FETCH, 0, 11, mq_ksrv_handle_fetch},
    {MQ_KAPI_LIST_OFFSETS, 0, 5, handle_list_offsets},
    {MQ_KAPI_METADATA, 0, 8, handle_metadata},
    {MQ_KAPI_OFFSET_COMMIT, 0, 7, handle_offset_commit},
    {MQ_KAPI_OFFSET_FETCH, 0, 5, handle_offset_fetch},
    {MQ_KAPI_FIND_COORDINATOR, 0, 2, handle_find_coordinator},
    {MQ_KAPI_JOIN_GROUP, 0, 5, handle_join_group},
    {MQ_KAPI_HEARTBEAT, 0, 3, handle_heartbeat},
    {MQ_KAPI_LEAVE_GROUP, 0, 3, handle_leave_group},
    {MQ_KAPI_SYNC_GROUP, 0, 3, handle_sync_group},
    {MQ_KAPI_DESCRIBE_GROUPS, 0, 5, mq_ksrv_handle_describe_groups},
    {MQ_KAPI_LIST_GROUPS, 0, 5, mq_ksrv_handle_list_groups},
    {MQ_KAPI_SASL_HANDSHAKE, 0, 1, mq_ksrv_handle_sasl_handshake},
    {MQ_KAPI_API_VERSIONS, 0, 3, handle_api_versions},
    {MQ_KAPI_INIT_PRODUCER_ID, 0, 1, handle_init_producer_id},
    {MQ_KAPI_DESCRIBE_CONFIGS, 0, 4, mq_ksrv_handle_describe_configs},
    {MQ_KAPI_SASL_AUTHENTICATE, 0, 2, mq_ksrv_handle_sasl_authenticate},
    {MQ_KAPI_DELETE_GROUPS, 0, 2, mq_ksrv_handle_delete_groups},
    {MQ_KAPI_DESCRIBE_CLUSTER, 0, 1, mq_ksrv_handle_describe_cluster},
    {MQ_KAPI_CREATE_TOPICS, 0, 7, mq_ksrv_handle_create_topics},
    {MQ_KAPI_DELETE_TOPICS, 0, 6, mq_ksrv_handle_delete_topics},
    {MQ_KAPI_DELETE_RECORDS, 0, 2, mq_ksrv_handle_delete_records},
    {MQ_KAPI_CREATE_PARTITIONS, 0, 3, mq_ksrv_handle_create_partitions},
    {MQ_KAPI_ALTER_CONFIGS, 0, 2, mq_ksrv_handle_alter_configs},
    {MQ_KAPI_INCREMENTAL_ALTER_CONFIGS, 0, 1, mq_ksrv_handle_incremental_alter_configs},
    {MQ_KAPI_CREATE_ACLS, 0, 3, mq_ksrv_handle_create_acls},
    {MQ_KAPI_DELETE_ACLS, 0, 3, mq_ksrv_handle_delete_acls},
};

const struct mq_ksrv_api *mq_ksrv_apis(size_t *n)
{
    *n = sizeof apis / sizeof apis[0];
    return apis;
}

/* The table's entry for (key, version), or NULL when that API or that version of it is not served. */
static const struct mq_ksrv_api *api_find(int16_t key, int16_t version)
{
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)
        if (apis[i].key == key)
            return version >= apis[i].min && version <= apis[i].max ? &apis[i] : NULL;
    return NULL;
}

/* Handles one whole request; takes body. */
void mq_ksrv_handle_request(struct conn *c, uint8_t *body, size_t len)
{
    if (c->auth == MQ_KSRV_AUTH_RAW) {
        mq_ksrv_auth_raw(c, body, len); /* after SaslHandshake v0: a bare token, no request header */
        return;
    }
    struct req *r = calloc(1, sizeof *r);
    if (!r) {
        free(body);
        mq_ksrv_conn_kill(c, "out of memory");
        return;
    }
    r->conn = c;
    r->body = body;
    r->len = len;
    mq_kafka_arena_init(&r->arena);
    if (mq_kafka_req_hdr_peek(body, len, &r->hdr) != MQ_OK) {
        mq_ksrv_protocol_error(c, "truncated request header");
        mq_ksrv_req_free(r);
        return;
    }
    if (!mq_ksrv_auth_allows(c, r->hdr.api_key)) {
        mq_ksrv_req_free(r);
        return;
    }
    const struct mq_ksrv_api *api = api_find(r->hdr.api_key, r->hdr.api_version);
    if (!api) {
        handle_unsupported(r);
        mq_ksrv_req_free(r);
        return;
    }
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, body, len);
    rd.max_parts = rd.parts_left = c->srv->conf.max_request_partitions;
    int hv = mq_kafka_req_hdr_version(r->hdr.api_key, r->hdr.api_version);
    if (mq_kafka_req_hdr_parse(&rd, hv, &r->hdr) != MQ_OK) {
        mq_ksrv_protocol_error(c, "malformed request header");
        mq_ksrv_req_free(r);
        return;
    }
    MQ_DEBUG("kafka: %s: %s v%d correlation %d", c->peer, mq_kafka_api_name(r->hdr.api_key),
             r->hdr.api_version, r->hdr.correlation_id);
    /* The principal's rules, found once for the handler's checks of each topic and group (authz.c). */
    mq_ksrv_authz_begin(r);
    api->handle(r, &rd);
    /* A handler that parked r made it c->cur; a group request may already be answered (done). */
    if (c->cur != r)
        mq_ksrv_req_free(r);
    else
        r->who = NULL; /* checked already; a reload may free the rules while r waits */
}
