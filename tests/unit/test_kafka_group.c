/*
 * test_kafka_group.c - the consumer group coordinator's state machine, driven with a fake clock: joins,
 * the leader's assignments, rebalances on join, leave, session timeout and rebalance timeout, protocol
 * choice, error codes, cancelled waiters, and static members (group.instance.id) that restart.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka/group.h"
#include "testutil.h"

/* What a client saw: the last JoinGroup and SyncGroup responses delivered to it. */
struct client {
    int joins, syncs;
    int16_t join_error;
    int32_t generation;
    char member_id[200];
    char leader[200];
    char protocol[32];
    int32_t member_count;
    char members[4][200];
    int16_t sync_error;
    char assignment[64];
    const char *instance; /* group.instance.id: a static member; NULL: a dynamic one */
};

static void on_join(void *opaque, void *waiter, const struct mq_kafka_join_group_resp *r)
{
    (void)opaque;
    struct client *c = waiter;
    c->joins++;
    c->join_error = r->error;
    c->generation = r->generation_id;
    CU_ASSERT_TRUE(mq_kafka_str_copy(r->member_id, c->member_id, sizeof c->member_id));
    CU_ASSERT_TRUE(mq_kafka_str_copy(r->leader, c->leader, sizeof c->leader));
    CU_ASSERT_TRUE(mq_kafka_str_copy(r->protocol_name, c->protocol, sizeof c->protocol));
    c->member_count = r->member_count;
    for (int32_t i = 0; i < r->member_count && i < 4; i++)
        CU_ASSERT_TRUE(mq_kafka_str_copy(r->members[i].member_id, c->members[i], sizeof c->members[i]));
}

static void on_sync(void *opaque, void *waiter, int16_t error, struct mq_kafka_str assignment)
{
    (void)opaque;
    struct client *c = waiter;
    c->syncs++;
    c->sync_error = error;
    CU_ASSERT_TRUE(mq_kafka_str_copy(assignment, c->assignment, sizeof c->assignment));
}

static struct mq_kafka_str S(const char *s) {
    struct mq_kafka_str v = {s, s ? (int32_t)strlen(s) : -1};
    return v;
}
#define NOSTR S(NULL)

static struct mq_kafka_groups *
new_groups(int32_t initial_delay)
{
    struct mq_kafka_groups_conf conf;
    mq_kafka_groups_conf_defaults(&conf);
    conf.initial_rebalance_delay_ms = initial_delay;
    struct mq_kafka_groups *gs = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_kafka_groups_new(&conf, on_join, on_sync, NULL, &gs), MQ_OK);
    return gs;
}

/* Joins `group` as c (member id from c's last join, empty at first) with the given protocols. */
static void join_p(struct mq_kafka_groups *gs, int64_t now, struct client *c, const char *group,
                   const char *p1, const char *p2, int32_t session_ms, int32_t rebalance_ms)
{
    struct mq_kafka_join_protocol protos[2] = {{S(p1), S("meta-1")}, {S(p2), S("")}};
    struct mq_kafka_join_group_req r = {0};
    char mid[200]; /* the response is copied into c, so the request must not point there */
    strcpy(mid, c->member_id);
    r.group_id = S(group);
    r.session_timeout_ms = session_ms;
    r.rebalance_timeout_ms = rebalance_ms;
    r.member_id = S(mid);
    r.group_instance_id = S(c->instance);
    r.protocol_type = S("consumer");
    r.protocol_count = p2 ? 2 : 1;
    r.protocols = protos;
    mq_kafka_groups_join(gs, now, &r, S("cli"), c);
}

static void join(struct mq_kafka_groups *gs, int64_t now, struct client *c)
{
    join_p(gs, now, c, "g", "range", NULL, 10000, 30000);
}

/* SyncGroup from c; the leader assigns "A:<member>" to each listed member. */
static void sync(struct mq_kafka_groups *gs, int64_t now, struct client *c)
{
    char bufs[4][220];
    struct mq_kafka_sync_assignment as[4];
    struct mq_kafka_sync_group_req r = {0};
    r.group_id = S("g");
    r.generation_id = c->generation;
    r.member_id = S(c->member_id);
    r.group_instance_id = S(c->instance);
    if (strcmp(c->leader, c->member_id) == 0) {
        for (int32_t i = 0; i < c->member_count && i < 4; i++) {
            snprintf(bufs[i], sizeof bufs[i], "A:%.200s", c->members[i]);
            as[i].member_id = S(c->members[i]);
            as[i].assignment = S(bufs[i]);
        }
        r.assignment_count = c->member_count < 4 ? c->member_count : 4;
        r.assignments = as;
    }
    mq_kafka_groups_sync(gs, now, &r, c);
}

static int16_t heartbeat(struct mq_kafka_groups *gs, int64_t now, struct client *c)
{
    return mq_kafka_groups_heartbeat(gs, now, S("g"), c->generation, S(c->member_id), S(c->instance));
}

static enum mq_kafka_group_state state(struct mq_kafka_groups *gs, int32_t *gen, int32_t *n)
{
    return mq_kafka_groups_state(gs, "g", gen, n);
}

static void test_single_member(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {0};
    join(gs, 0, &a);
    CU_ASSERT_EQUAL(a.joins, 1);
    CU_ASSERT_EQUAL(a.join_error, 0);
    CU_ASSERT_EQUAL(a.generation, 1);
    CU_ASSERT_TRUE(strncmp(a.member_id, "cli-", 4) == 0);
    CU_ASSERT_STRING_EQUAL(a.leader, a.member_id);
    CU_ASSERT_STRING_EQUAL(a.protocol, "range");
    CU_ASSERT_EQUAL(a.member_count, 1);
    int32_t gen, n;
    CU_ASSERT_EQUAL(state(gs, &gen, &n), MQ_KGROUP_COMPLETING_REBALANCE);
    /* Commits wait for the assignment. */
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("g"), 1, S(a.member_id), NOSTR),
                    MQ_KC_REBALANCE_IN_PROGRESS);
    sync(gs, 1, &a);
    CU_ASSERT_EQUAL(a.syncs, 1);
    CU_ASSERT_EQUAL(a.sync_error, 0);
    char want[220];
    snprintf(want, sizeof want, "A:%s", a.member_id);
    CU_ASSERT_STRING_EQUAL(a.assignment, want);
    CU_ASSERT_EQUAL(state(gs, &gen, &n), MQ_KGROUP_STABLE);
    CU_ASSERT_EQUAL(gen, 1);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(heartbeat(gs, 2, &a), MQ_KC_NONE);
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("g"), 1, S(a.member_id), NOSTR), MQ_KC_NONE);
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("g"), 0, S(a.member_id), NOSTR),
                    MQ_KC_ILLEGAL_GENERATION);
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("g"), -1, S(""), NOSTR), MQ_KC_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("other"), -1, S(""), NOSTR), MQ_KC_NONE);
    /* A repeated sync in Stable returns the same assignment; a repeated join returns the generation. */
    sync(gs, 3, &a);
    CU_ASSERT_EQUAL(a.syncs, 2);
    CU_ASSERT_STRING_EQUAL(a.assignment, want);
    /* Leaving empties the group, which disappears. */
    CU_ASSERT_EQUAL(mq_kafka_groups_leave(gs, 4, S("g"), S(a.member_id), NOSTR), MQ_KC_NONE);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_NONE);
    CU_ASSERT_EQUAL(mq_kafka_groups_leave(gs, 4, S("g"), S(a.member_id), NOSTR), MQ_KC_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(mq_kafka_groups_tick(gs, 5), INT64_MAX);
    mq_kafka_groups_free(gs);
}

static void test_two_members_rebalance(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {0}, b = {0};
    join(gs, 0, &a);
    sync(gs, 0, &a);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_STABLE);

    /* b joins: the group prepares a rebalance; b waits until a rejoins. */
    join(gs, 10, &b);
    CU_ASSERT_EQUAL(b.joins, 0);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_PREPARING_REBALANCE);
    CU_ASSERT_EQUAL(heartbeat(gs, 11, &a), MQ_KC_REBALANCE_IN_PROGRESS);
    /* Commits of the old generation are still accepted while preparing (consumers commit on revoke). */
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("g"), 1, S(a.member_id), NOSTR), MQ_KC_NONE);
    join(gs, 12, &a);
    CU_ASSERT_EQUAL(a.joins, 2);
    CU_ASSERT_EQUAL(b.joins, 1);
    CU_ASSERT_EQUAL(a.generation, 2);
    CU_ASSERT_EQUAL(b.generation, 2);
    CU_ASSERT_STRING_EQUAL(a.leader, a.member_id); /* the leader stays */
    CU_ASSERT_STRING_EQUAL(b.leader, a.member_id);
    CU_ASSERT_EQUAL(a.member_count, 2);
    CU_ASSERT_EQUAL(b.member_count, 0); /* only the leader sees the members */
    CU_ASSERT_STRING_NOT_EQUAL(a.member_id, b.member_id);

    /* The follower's sync waits for the leader's. */
    sync(gs, 13, &b);
    CU_ASSERT_EQUAL(b.syncs, 0);
    CU_ASSERT_EQUAL(heartbeat(gs, 13, &a), MQ_KC_NONE);
    sync(gs, 14, &a);
    CU_ASSERT_EQUAL(a.syncs, 2);
    CU_ASSERT_EQUAL(b.syncs, 1);
    char want[220];
    snprintf(want, sizeof want, "A:%s", b.member_id);
    CU_ASSERT_STRING_EQUAL(b.assignment, want);
    int32_t gen, n;
    CU_ASSERT_EQUAL(state(gs, &gen, &n), MQ_KGROUP_STABLE);
    CU_ASSERT_EQUAL(gen, 2);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(heartbeat(gs, 15, &b), MQ_KC_NONE);

    /* The leader leaves: b must rejoin and becomes leader of generation 3 alone. */
    CU_ASSERT_EQUAL(mq_kafka_groups_leave(gs, 20, S("g"), S(a.member_id), NOSTR), MQ_KC_NONE);
    CU_ASSERT_EQUAL(heartbeat(gs, 21, &b), MQ_KC_REBALANCE_IN_PROGRESS);
    join(gs, 22, &b);
    CU_ASSERT_EQUAL(b.joins, 2);
    CU_ASSERT_EQUAL(b.generation, 3);
    CU_ASSERT_STRING_EQUAL(b.leader, b.member_id);
    CU_ASSERT_EQUAL(b.member_count, 1);
    /* A stale generation is refused. */
    struct client stale = b;
    stale.generation = 2;
    CU_ASSERT_EQUAL(heartbeat(gs, 23, &stale), MQ_KC_ILLEGAL_GENERATION);
    sync(gs, 23, &stale);
    CU_ASSERT_EQUAL(stale.sync_error, MQ_KC_ILLEGAL_GENERATION);
    mq_kafka_groups_free(gs);
}

static void test_session_timeout(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {0}, b = {0};
    join_p(gs, 0, &a, "g", "range", NULL, 1000, 5000);
    sync(gs, 0, &a);
    join_p(gs, 100, &b, "g", "range", NULL, 1000, 5000);
    join_p(gs, 200, &a, "g", "range", NULL, 1000, 5000);
    sync(gs, 300, &b);
    sync(gs, 300, &a);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_STABLE);
    /* a keeps heartbeating, b goes silent. */
    int64_t next = mq_kafka_groups_tick(gs, 400);
    CU_ASSERT_EQUAL(next, 300 + 1000 + 1);
    CU_ASSERT_EQUAL(heartbeat(gs, 1000, &a), MQ_KC_NONE);
    mq_kafka_groups_tick(gs, 1300);
    int32_t n;
    CU_ASSERT_EQUAL(state(gs, NULL, &n), MQ_KGROUP_STABLE);
    CU_ASSERT_EQUAL(n, 2);
    mq_kafka_groups_tick(gs, 1301);
    CU_ASSERT_EQUAL(state(gs, NULL, &n), MQ_KGROUP_PREPARING_REBALANCE);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(heartbeat(gs, 1302, &b), MQ_KC_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(heartbeat(gs, 1302, &a), MQ_KC_REBALANCE_IN_PROGRESS);
    join_p(gs, 1303, &a, "g", "range", NULL, 1000, 5000);
    CU_ASSERT_EQUAL(a.generation, 3);
    CU_ASSERT_EQUAL(a.member_count, 1);
    mq_kafka_groups_free(gs);
}

static void test_rebalance_timeout(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {0}, b = {0};
    join_p(gs, 0, &a, "g", "range", NULL, 10000, 3000);
    sync(gs, 0, &a);
    /* b joins; a keeps heartbeating but never rejoins: after the rebalance timeout, b gets the group. */
    join_p(gs, 100, &b, "g", "range", NULL, 10000, 3000);
    CU_ASSERT_EQUAL(b.joins, 0);
    CU_ASSERT_EQUAL(heartbeat(gs, 2000, &a), MQ_KC_REBALANCE_IN_PROGRESS);
    int64_t next = mq_kafka_groups_tick(gs, 2000);
    CU_ASSERT_EQUAL(next, 3100);
    mq_kafka_groups_tick(gs, 3099);
    CU_ASSERT_EQUAL(b.joins, 0);
    mq_kafka_groups_tick(gs, 3100);
    CU_ASSERT_EQUAL(b.joins, 1);
    CU_ASSERT_EQUAL(b.generation, 2);
    CU_ASSERT_STRING_EQUAL(b.leader, b.member_id);
    CU_ASSERT_EQUAL(b.member_count, 1);
    CU_ASSERT_EQUAL(heartbeat(gs, 3200, &a), MQ_KC_UNKNOWN_MEMBER_ID);
    mq_kafka_groups_free(gs);
}

static void test_initial_delay_and_protocols(void)
{
    struct mq_kafka_groups *gs = new_groups(500);
    struct client a = {0}, b = {0};
    join_p(gs, 0, &a, "g", "range", "roundrobin", 10000, 30000);
    CU_ASSERT_EQUAL(a.joins, 0); /* waits for others during the initial delay */
    CU_ASSERT_EQUAL(mq_kafka_groups_tick(gs, 10), 500);
    join_p(gs, 100, &b, "g", "roundrobin", NULL, 10000, 30000);
    CU_ASSERT_EQUAL(b.joins, 0);
    mq_kafka_groups_tick(gs, 499);
    CU_ASSERT_EQUAL(a.joins, 0);
    mq_kafka_groups_tick(gs, 500);
    CU_ASSERT_EQUAL(a.joins, 1);
    CU_ASSERT_EQUAL(b.joins, 1);
    CU_ASSERT_EQUAL(a.generation, 1);
    /* The only protocol both support. */
    CU_ASSERT_STRING_EQUAL(a.protocol, "roundrobin");
    CU_ASSERT_STRING_EQUAL(b.protocol, "roundrobin");
    CU_ASSERT_EQUAL(a.member_count, 2);

    /* A member with no protocol in common, or another protocol type, is refused. */
    struct client c = {0};
    join_p(gs, 600, &c, "g", "sticky", NULL, 10000, 30000);
    CU_ASSERT_EQUAL(c.joins, 1);
    CU_ASSERT_EQUAL(c.join_error, MQ_KC_INCONSISTENT_GROUP_PROTOCOL);
    mq_kafka_groups_free(gs);
}

static void test_errors_and_cancel(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {0};
    /* Session timeout out of bounds, empty group id, unknown member id. */
    join_p(gs, 0, &a, "g", "range", NULL, 10, 30000);
    CU_ASSERT_EQUAL(a.join_error, MQ_KC_INVALID_SESSION_TIMEOUT);
    join_p(gs, 0, &a, "", "range", NULL, 10000, 30000);
    CU_ASSERT_EQUAL(a.join_error, MQ_KC_INVALID_GROUP_ID);
    strcpy(a.member_id, "ghost");
    join(gs, 0, &a);
    CU_ASSERT_EQUAL(a.join_error, MQ_KC_UNKNOWN_MEMBER_ID);
    CU_ASSERT_STRING_EQUAL(a.member_id, "ghost");
    CU_ASSERT_EQUAL(a.generation, -1);
    sync(gs, 0, &a);
    CU_ASSERT_EQUAL(a.sync_error, MQ_KC_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(heartbeat(gs, 0, &a), MQ_KC_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_NONE);

    /* A parked join whose connection went away gets no callback; the member then times out. */
    struct client b = {0}, c = {0};
    join(gs, 0, &b);
    sync(gs, 0, &b);
    join(gs, 10, &c);
    CU_ASSERT_EQUAL(c.joins, 0);
    mq_kafka_groups_cancel(gs, 20, &c);
    join(gs, 30, &b); /* completes the rebalance: c had joined, so it is in generation 2 */
    CU_ASSERT_EQUAL(b.generation, 2);
    CU_ASSERT_EQUAL(b.member_count, 2);
    CU_ASSERT_EQUAL(c.joins, 0);
    sync(gs, 40, &b);
    CU_ASSERT_EQUAL(b.sync_error, 0);
    /* c never heartbeats: it is dropped after its session timeout, counted from the rebalance. */
    mq_kafka_groups_tick(gs, 30 + 10000 + 1);
    int32_t n;
    CU_ASSERT_EQUAL(state(gs, NULL, &n), MQ_KGROUP_PREPARING_REBALANCE);
    CU_ASSERT_EQUAL(n, 1);
    mq_kafka_groups_free(gs);
    mq_kafka_groups_free(NULL);
}

/* A new member joining while the leader's sync is outstanding: followers' parked syncs are told to
 * rejoin, and everyone converges on the next generation. */
static void test_join_during_sync(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {0}, b = {0}, c = {0};
    join(gs, 0, &a);
    sync(gs, 0, &a);
    join(gs, 1, &b);
    join(gs, 2, &a);
    sync(gs, 3, &b); /* parked: the leader has not synced */
    CU_ASSERT_EQUAL(b.syncs, 0);
    join(gs, 4, &c);
    CU_ASSERT_EQUAL(b.syncs, 1);
    CU_ASSERT_EQUAL(b.sync_error, MQ_KC_REBALANCE_IN_PROGRESS);
    sync(gs, 5, &a); /* the old generation's leader sync comes too late */
    CU_ASSERT_EQUAL(a.sync_error, MQ_KC_REBALANCE_IN_PROGRESS);
    join(gs, 6, &a);
    join(gs, 7, &b);
    CU_ASSERT_EQUAL(a.generation, 3);
    CU_ASSERT_EQUAL(b.generation, 3);
    CU_ASSERT_EQUAL(c.generation, 3);
    CU_ASSERT_EQUAL(a.member_count, 3);
    sync(gs, 8, &c);
    sync(gs, 8, &b);
    sync(gs, 9, &a);
    CU_ASSERT_EQUAL(c.sync_error, 0);
    CU_ASSERT_EQUAL(b.sync_error, 0);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_STABLE);
    char want[220];
    snprintf(want, sizeof want, "A:%s", c.member_id);
    CU_ASSERT_STRING_EQUAL(c.assignment, want);
    mq_kafka_groups_free(gs);
}

/* Two static members in a Stable group: b's instance dies and a new one joins with b's instance id and no
 * member id. It takes b's place at once, with b's assignment and no rebalance; a keeps its generation. The
 * old instance's member id is fenced. */
static void test_static_rejoin(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {.instance = "inst-a"}, b = {.instance = "inst-b"};
    join(gs, 0, &a);
    sync(gs, 0, &a);
    join(gs, 10, &b);
    join(gs, 11, &a);
    sync(gs, 12, &b);
    sync(gs, 13, &a);
    int32_t gen, n;
    CU_ASSERT_EQUAL(state(gs, &gen, &n), MQ_KGROUP_STABLE);
    CU_ASSERT_EQUAL(gen, 2);
    char want_b[220];
    snprintf(want_b, sizeof want_b, "A:%s", b.member_id);
    CU_ASSERT_STRING_EQUAL(b.assignment, want_b);

    /* b's process is killed; its new instance joins 2 s later without a member id. */
    struct client b2 = {.instance = "inst-b"};
    join(gs, 2000, &b2);
    CU_ASSERT_EQUAL(b2.joins, 1);
    CU_ASSERT_EQUAL(b2.join_error, MQ_KC_NONE);
    CU_ASSERT_EQUAL(b2.generation, 2); /* the current generation: no rebalance */
    CU_ASSERT_STRING_NOT_EQUAL(b2.member_id, b.member_id);
    CU_ASSERT_STRING_EQUAL(b2.leader, a.member_id);
    CU_ASSERT_EQUAL(b2.member_count, 0);
    CU_ASSERT_EQUAL(state(gs, &gen, &n), MQ_KGROUP_STABLE);
    CU_ASSERT_EQUAL(n, 2);
    sync(gs, 2001, &b2);
    CU_ASSERT_EQUAL(b2.sync_error, MQ_KC_NONE);
    CU_ASSERT_STRING_EQUAL(b2.assignment, want_b); /* b's assignment, kept */
    CU_ASSERT_EQUAL(heartbeat(gs, 2002, &a), MQ_KC_NONE);
    CU_ASSERT_EQUAL(heartbeat(gs, 2002, &b2), MQ_KC_NONE);

    /* The old instance's member id is fenced wherever it shows up with the instance id. */
    CU_ASSERT_EQUAL(heartbeat(gs, 2003, &b), MQ_KC_FENCED_INSTANCE_ID);
    sync(gs, 2003, &b);
    CU_ASSERT_EQUAL(b.sync_error, MQ_KC_FENCED_INSTANCE_ID);
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("g"), 2, S(b.member_id), S("inst-b")),
                    MQ_KC_FENCED_INSTANCE_ID);
    CU_ASSERT_EQUAL(mq_kafka_groups_leave(gs, 2003, S("g"), S(b.member_id), S("inst-b")),
                    MQ_KC_FENCED_INSTANCE_ID);
    join(gs, 2003, &b);
    CU_ASSERT_EQUAL(b.join_error, MQ_KC_FENCED_INSTANCE_ID);
    CU_ASSERT_EQUAL(mq_kafka_groups_check_commit(gs, S("g"), 2, S(b2.member_id), S("inst-b")), MQ_KC_NONE);
    CU_ASSERT_EQUAL(state(gs, &gen, &n), MQ_KGROUP_STABLE);
    CU_ASSERT_EQUAL(gen, 2);

    /* The old session does not time out the new instance: it heartbeats under its new id. */
    for (int64_t t = 3000; t <= 30000; t += 3000) {
        CU_ASSERT_EQUAL(heartbeat(gs, t, &a), MQ_KC_NONE);
        CU_ASSERT_EQUAL(heartbeat(gs, t, &b2), MQ_KC_NONE);
        mq_kafka_groups_tick(gs, t);
    }
    CU_ASSERT_EQUAL(state(gs, &gen, &n), MQ_KGROUP_STABLE);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(gen, 2);

    /* A static member leaves by its instance id alone: the group rebalances without it. */
    CU_ASSERT_EQUAL(mq_kafka_groups_leave(gs, 31000, S("g"), S(""), S("inst-b")), MQ_KC_NONE);
    CU_ASSERT_EQUAL(state(gs, NULL, &n), MQ_KGROUP_PREPARING_REBALANCE);
    CU_ASSERT_EQUAL(n, 1);
    mq_kafka_groups_free(gs);
}

/* The static leader restarts: its new instance gets the old leader id in its answer, so it does not assign
 * (a Stable group would not pass a new assignment on); it keeps its partitions. A static member whose
 * protocols changed, or that rejoins during a rebalance, goes through a rebalance, and a parked request of
 * the old instance is answered FENCED_INSTANCE_ID. */
static void test_static_leader_and_rebalance(void)
{
    struct mq_kafka_groups *gs = new_groups(0);
    struct client a = {.instance = "inst-a"}, b = {.instance = "inst-b"};
    join(gs, 0, &a);
    sync(gs, 0, &a);
    join(gs, 1, &b);
    join(gs, 2, &a);
    sync(gs, 3, &b);
    sync(gs, 4, &a);
    char want_a[220];
    snprintf(want_a, sizeof want_a, "A:%s", a.member_id);
    CU_ASSERT_STRING_EQUAL(a.assignment, want_a);

    struct client a2 = {.instance = "inst-a"};
    join(gs, 100, &a2);
    CU_ASSERT_EQUAL(a2.join_error, MQ_KC_NONE);
    CU_ASSERT_EQUAL(a2.generation, 2);
    CU_ASSERT_STRING_EQUAL(a2.leader, a.member_id); /* the old id: not this member */
    CU_ASSERT_EQUAL(a2.member_count, 0);
    sync(gs, 101, &a2);
    CU_ASSERT_STRING_EQUAL(a2.assignment, want_a);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_STABLE);

    /* b's new instance comes with other protocols: a rebalance, which a2 now leads. */
    struct client b2 = {.instance = "inst-b"};
    join_p(gs, 200, &b2, "g", "roundrobin", "range", 10000, 30000);
    CU_ASSERT_EQUAL(b2.joins, 0);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_PREPARING_REBALANCE);
    CU_ASSERT_EQUAL(heartbeat(gs, 201, &a2), MQ_KC_REBALANCE_IN_PROGRESS);
    join(gs, 202, &a2);
    CU_ASSERT_EQUAL(a2.generation, 3);
    CU_ASSERT_EQUAL(b2.generation, 3);
    CU_ASSERT_STRING_EQUAL(a2.leader, a2.member_id);
    CU_ASSERT_EQUAL(a2.member_count, 2);

    /* b2 parks its sync; a third instance of b arrives meanwhile (CompletingRebalance): b2's parked sync is
     * fenced and the group rebalances once more. */
    sync(gs, 203, &b2);
    CU_ASSERT_EQUAL(b2.syncs, 0);
    struct client b3 = {.instance = "inst-b"};
    join_p(gs, 204, &b3, "g", "roundrobin", "range", 10000, 30000);
    CU_ASSERT_EQUAL(b2.syncs, 1);
    CU_ASSERT_EQUAL(b2.sync_error, MQ_KC_FENCED_INSTANCE_ID);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_PREPARING_REBALANCE);
    join(gs, 205, &a2);
    CU_ASSERT_EQUAL(b3.generation, 4);
    sync(gs, 206, &b3);
    sync(gs, 207, &a2);
    char want_b3[220];
    snprintf(want_b3, sizeof want_b3, "A:%s", b3.member_id);
    CU_ASSERT_STRING_EQUAL(b3.assignment, want_b3);
    CU_ASSERT_EQUAL(state(gs, NULL, NULL), MQ_KGROUP_STABLE);
    mq_kafka_groups_free(gs);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_single_member),
        MQ_TEST(test_two_members_rebalance),
        MQ_TEST(test_session_timeout),
        MQ_TEST(test_rebalance_timeout),
        MQ_TEST(test_initial_delay_and_protocols),
        MQ_TEST(test_errors_and_cancel),
        MQ_TEST(test_join_during_sync),
        MQ_TEST(test_static_rejoin),
        MQ_TEST(test_static_leader_and_rebalance),
        MQ_TEST_END,
    };
    return mq_test_run("kafka_group", tests);
}
