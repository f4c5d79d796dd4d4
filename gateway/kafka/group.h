/*
 * group.h - the consumer group coordinator: Kafka's classic group membership protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup) as a state machine without I/O.
 *
 * A group moves Empty -> PreparingRebalance (members (re)join; the coordinator waits until every known
 * member has rejoined or the largest rebalance timeout passes, then drops those that did not) ->
 * CompletingRebalance (a new generation: every member got its JoinGroup response, the leader with the
 * members' metadata; the coordinator waits for the leader's SyncGroup with the assignments) -> Stable
 * (every member got its assignment). A new member, a member whose protocols changed, a rejoining leader,
 * a leaving member or a member whose session timed out (no heartbeat for session_timeout_ms) sends the
 * group back to PreparingRebalance. The server never looks into protocol metadata or assignments: the
 * leader client assigns.
 *
 * JoinGroup and SyncGroup responses may be delayed until other members act, so they are delivered through
 * callbacks, with an opaque `waiter` the caller passed in (the server's pending request); a callback may
 * run inside the call that caused it (for the caller's own waiter or another's). Callbacks must not call
 * back into this module; they queue the response and return.
 *
 * Static membership (KIP-345, group.instance.id): a member that joins without a member id but with the
 * instance id of a member the group has takes that member's place. It gets a new member id, keeps its
 * assignment, and in a Stable group with unchanged protocols it gets the current generation back at once:
 * no rebalance, so a consumer restarted within its session timeout takes its partitions back and the others
 * keep theirs. Requests that name the instance id with the replaced member id are answered
 * FENCED_INSTANCE_ID, as Kafka answers a second instance with the same id.
 *
 * Time is the caller's monotonic clock in milliseconds, passed to every call, so tests can drive it.
 * Not thread-safe: the Kafka server's event loop is the only user.
 */
#ifndef MQ_KAFKA_GROUP_H
#define MQ_KAFKA_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka/proto.h"
#include "util/err.h"

struct mq_kafka_groups;

struct mq_kafka_groups_conf {
    int32_t min_session_timeout_ms;     /* default 1000 (Kafka: 6000) */
    int32_t max_session_timeout_ms;     /* default 1800000 */
    int32_t initial_rebalance_delay_ms; /* wait this long after the first member joins an empty group for
                                           others, capped by its rebalance timeout; default 0 */
    int32_t max_group_size;             /* default 1000 */
};
void mq_kafka_groups_conf_defaults(struct mq_kafka_groups_conf *conf);

/* Delivers a JoinGroup response for waiter. resp and what it points to are valid during the call only. */
typedef void mq_kafka_join_cb(void *opaque, void *waiter, const struct mq_kafka_join_group_resp *resp);
/* Delivers a SyncGroup response for waiter; assignment is valid during the call only. */
typedef void mq_kafka_sync_cb(void *opaque, void *waiter, int16_t error, struct mq_kafka_str assignment);

/* Creates an empty coordinator. conf may be NULL for defaults. The caller frees it with
 * mq_kafka_groups_free(). MQ_ERR_NOMEM. */
enum mq_err mq_kafka_groups_new(const struct mq_kafka_groups_conf *conf, mq_kafka_join_cb *join_cb,
                                mq_kafka_sync_cb *sync_cb, void *opaque, struct mq_kafka_groups **groupsp);

/* Called when a group gains its first member (live) or loses its last (not live). The server records it in
 * the catalog, so that `mqlog groups reset` beside mqlogd can refuse a group with live members, as Kafka's
 * tool does. Unset (NULL) by default; it must not call back into this module. */
typedef void mq_kafka_live_cb(void *opaque, const char *group_id, bool live);
void mq_kafka_groups_on_live(struct mq_kafka_groups *groups, mq_kafka_live_cb *live_cb);

/* Frees every group without calling any callback (pending waiters are simply forgotten). Accepts NULL. */
void mq_kafka_groups_free(struct mq_kafka_groups *groups);

/*
 * A JoinGroup request from client client_id (req->client_host, set by the caller, says from where). The
 * response comes through join_cb for waiter, now or once the rebalance completes. A new member (empty member
 * id) gets an id "<client_id>-<random>".
 */
void mq_kafka_groups_join(struct mq_kafka_groups *groups, int64_t now_ms,
                          const struct mq_kafka_join_group_req *req, struct mq_kafka_str client_id,
                          void *waiter);

/* A SyncGroup request. The response comes through sync_cb for waiter, now or once the leader has synced. */
void mq_kafka_groups_sync(struct mq_kafka_groups *groups, int64_t now_ms,
                          const struct mq_kafka_sync_group_req *req, void *waiter);

/* A heartbeat; returns the Kafka error code to answer with (NONE, REBALANCE_IN_PROGRESS, ...). instance_id
 * is the request's group.instance.id (a null view when it has none). */
int16_t mq_kafka_groups_heartbeat(struct mq_kafka_groups *groups, int64_t now_ms,
                                  struct mq_kafka_str group_id, int32_t generation_id,
                                  struct mq_kafka_str member_id, struct mq_kafka_str instance_id);

/* A member leaves; returns the Kafka error code for it. A static member may leave by its instance id alone
 * (an empty member id). */
int16_t mq_kafka_groups_leave(struct mq_kafka_groups *groups, int64_t now_ms, struct mq_kafka_str group_id,
                              struct mq_kafka_str member_id, struct mq_kafka_str instance_id);

/*
 * Whether an OffsetCommit from (generation_id, member_id) may be stored, as Kafka decides it: a commit with
 * a negative generation is accepted for a group without members (standalone consumers); otherwise the
 * member must be in the group with the current generation, and not while the group awaits its assignment.
 */
int16_t mq_kafka_groups_check_commit(struct mq_kafka_groups *groups, struct mq_kafka_str group_id,
                                     int32_t generation_id, struct mq_kafka_str member_id,
                                     struct mq_kafka_str instance_id);

/* Forgets waiter (its connection closed): no callback will be made for it. Its member stays in the
 * group until its session times out, counted from now. */
void mq_kafka_groups_cancel(struct mq_kafka_groups *groups, int64_t now_ms, void *waiter);

/*
 * Applies session timeouts and rebalance deadlines as of now. Returns the time (on the same clock) of the
 * next deadline, or INT64_MAX when there is none.
 */
int64_t mq_kafka_groups_tick(struct mq_kafka_groups *groups, int64_t now_ms);

/* ---- inspection (tests, diagnostics) ---- */

enum mq_kafka_group_state {
    MQ_KGROUP_NONE, /* no such group */
    MQ_KGROUP_EMPTY,
    MQ_KGROUP_PREPARING_REBALANCE,
    MQ_KGROUP_COMPLETING_REBALANCE,
    MQ_KGROUP_STABLE,
};

/* The state, generation and member count of group_id (*generation and *members may be NULL). */
enum mq_kafka_group_state mq_kafka_groups_state(struct mq_kafka_groups *groups, const char *group_id,
                                                int32_t *generation, int32_t *members);

/* Kafka's name of a state ("Stable", ...); MQ_KGROUP_NONE is "Dead", as Kafka describes an unknown group. */
const char *mq_kafka_group_state_name(enum mq_kafka_group_state state);

/* ---- inspection for the admin APIs (ListGroups, DescribeGroups, DeleteGroups) ---- */

/* A group as the admin APIs show it. Its strings belong to the coordinator: valid until its next call. */
struct mq_kafka_group_view {
    const char *group_id;
    enum mq_kafka_group_state state;
    const char *protocol_type; /* "consumer" for consumers; "" when none */
    const char *protocol;      /* the assignor chosen, "" unless Stable (as Kafka shows it) */
    int32_t generation;
    int32_t member_count;
};
/* One member of a described group; strings and bytes likewise the coordinator's. Metadata and assignment
 * are given in the Stable state only (NULL and 0 otherwise), as Kafka gives them. */
struct mq_kafka_member_view {
    const char *member_id;
    const char *instance_id; /* NULL for a dynamic member */
    const char *client_id;
    const char *client_host;
    const uint8_t *metadata; /* the member's metadata for the chosen protocol */
    int32_t metadata_len;
    const uint8_t *assignment;
    int32_t assignment_len;
};

typedef void mq_kafka_group_fn(void *arg, const struct mq_kafka_group_view *group);
/* Calls fn for every group the coordinator holds (every one has members: an empty group is freed at once,
 * its committed offsets living in the catalog). fn must not call into the coordinator. */
void mq_kafka_groups_each(struct mq_kafka_groups *groups, mq_kafka_group_fn *fn, void *arg);

/* Describes group_id into *view and its first max_members members into members (may be NULL). False when
 * the coordinator holds no such group. */
bool mq_kafka_groups_describe(struct mq_kafka_groups *groups, struct mq_kafka_str group_id,
                              struct mq_kafka_group_view *view, struct mq_kafka_member_view *members,
                              int32_t max_members);

#endif
