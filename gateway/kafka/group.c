/*
 * group.c - the consumer group coordinator (see group.h). Groups are few and small, so they live in a
 * linked list and members in an array per group; every lookup is a linear scan.
 *
 * Memory: a member owns copies of its id, client id, protocol names and metadata and its assignment, since
 * the requests they came in are freed once answered. A group without members is freed at once (its
 * committed offsets live in the catalog, not here).
 */
#include "kafka/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct protocol {
    char *name;
    uint8_t *meta;
    int32_t meta_len;
};

struct member {
    char *id;
    char *instance_id; /* NULL for dynamic members */
    char *client_id;   /* of its latest JoinGroup, for DescribeGroups */
    char *client_host; /* likewise ("" when unknown) */
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    int32_t n_protocols;
    struct protocol *protocols;
    uint8_t *assignment;
    int32_t assignment_len;
    int64_t last_seen; /* the last join, sync or heartbeat */
    bool joined;       /* has (re)joined in the current rebalance */
    void *join_waiter; /* a JoinGroup waiting for the rebalance to complete */
    void *sync_waiter; /* a SyncGroup waiting for the leader's assignments */
};

struct group {
    struct group *next;
    char *id;
    enum mq_kafka_group_state state;
    int32_t generation;
    char *protocol_type;
    char *protocol; /* chosen for the current generation */
    char *leader;   /* member id of the leader */
    struct member **members;
    size_t n_members;
    size_t cap_members;
    int64_t rebalance_deadline; /* PreparingRebalance: complete the join by then at the latest */
    int64_t initial_delay_end;  /* PreparingRebalance from Empty: do not complete before this */
    bool announced;             /* live_cb was told this group has members */
};

struct mq_kafka_groups {
    struct mq_kafka_groups_conf conf;
    mq_kafka_join_cb *join_cb;
    mq_kafka_sync_cb *sync_cb;
    mq_kafka_live_cb *live_cb;
    void *opaque;
    struct group *groups;
    uint64_t id_counter;
};

void mq_kafka_groups_on_live(struct mq_kafka_groups *groups, mq_kafka_live_cb *live_cb)
{
    groups->live_cb = live_cb;
}

void mq_kafka_groups_conf_defaults(struct mq_kafka_groups_conf *conf)
{
    conf->min_session_timeout_ms = 1000;
    conf->max_session_timeout_ms = 1800000;
    conf->initial_rebalance_delay_ms = 0;
    conf->max_group_size = 1000;
}

enum mq_err mq_kafka_groups_new(const struct mq_kafka_groups_conf *conf, mq_kafka_join_cb *join_cb,
                                mq_kafka_sync_cb *sync_cb, void *opaque, struct mq_kafka_groups **groupsp)
{
    struct mq_kafka_groups *gs = calloc(1, sizeof *gs);
    if (!gs)
        return MQ_ERR_NOMEM;
    if (conf)
        gs->conf = *conf;
    else
        mq_kafka_groups_conf_defaults(&gs->conf);
    gs->join_cb = join_cb;
    gs->sync_cb = sync_cb;
    gs->opaque = opaque;
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)(uintptr_t)gs;
    gs->id_counter = seed;
    *groupsp = gs;
    return MQ_OK;
}

static void member_free(struct member *m)
{
    if (!m)
        return;
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    for (int32_t i = 0; i < m->n_protocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].meta);
    }
    free(m->protocols);
    free(m->assignment);
    free(m);
}

static void group_free(struct group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_members; i++)
        member_free(g->members[i]);
    free(g->members);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

void mq_kafka_groups_free(struct mq_kafka_groups *gs)
{
    if (!gs)
        return;
    while (gs->groups) {
        struct group *g = gs->groups;
        gs->groups = g->next;
        group_free(g);
    }
    free(gs);
}

/* ---- small helpers ---- */

static char *dup_str(struct mq_kafka_str s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s.ptr, n);
    d[n] = '\0';
    return d;
}

static void *dup_bytes(struct mq_kafka_str s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    void *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, s.ptr, n);
    return d;
}

static struct mq_kafka_str view(const char *s)
{
    struct mq_kafka_str v = {s, s ? (int32_t)strlen(s) : -1};
    return v;
}

static bool str_is(struct mq_kafka_str s, const char *c)
{
    return c && mq_kafka_str_eq(s, c);
}

static struct group *group_find(struct mq_kafka_groups *gs, struct mq_kafka_str id)
{
    for (struct group *g = gs->groups; g; g = g->next)
        if (str_is(id, g->id))
            return g;
    return NULL;
}

static struct member *member_find(struct group *g, struct mq_kafka_str id)
{
    if (!g || id.len <= 0)
        return NULL;
    for (size_t i = 0; i < g->n_members; i++)
        if (str_is(id, g->members[i]->id))
            return g->members[i];
    return NULL;
}

/* The member with group.instance.id id, or NULL (also for a null or empty id). */
static struct member *instance_find(struct group *g, struct mq_kafka_str id)
{
    if (!g || id.len <= 0)
        return NULL;
    for (size_t i = 0; i < g->n_members; i++)
        if (str_is(id, g->members[i]->instance_id))
            return g->members[i];
    return NULL;
}

/* Whether a request naming (member_id, instance_id) comes from a static member that another instance has
 * replaced: the group knows the instance id under another member id (Kafka: FENCED_INSTANCE_ID). */
static bool fenced(struct group *g, struct mq_kafka_str member_id, struct mq_kafka_str instance_id)
{
    const struct member *s = instance_find(g, instance_id);
    return s && member_id.len > 0 && !str_is(member_id, s->id);
}

/* A new member id, "<client_id>-<16 hex digits>", into buf (at least 192 bytes). */
static void new_member_id(struct mq_kafka_groups *gs, struct mq_kafka_str client_id, char *buf, size_t size)
{
    char cid[128];
    if (!mq_kafka_str_copy(client_id, cid, sizeof cid) || !cid[0])
        snprintf(cid, sizeof cid, "member");
    gs->id_counter = gs->id_counter * 6364136223846793005ULL + 1442695040888963407ULL;
    snprintf(buf, size, "%s-%016llx", cid, (unsigned long long)gs->id_counter);
}

static const struct protocol *member_protocol(const struct member *m, const char *name)
{
    for (int32_t i = 0; name && i < m->n_protocols; i++)
        if (strcmp(m->protocols[i].name, name) == 0)
            return &m->protocols[i];
    return NULL;
}

/* Records who m's latest JoinGroup came from. Out of memory keeps the previous values: they only feed
 * DescribeGroups. */
static void member_set_client(struct member *m, struct mq_kafka_str client_id, struct mq_kafka_str host)
{
    char *id = dup_str(client_id), *h = dup_str(host);
    if (!id || !h) {
        free(id);
        free(h);
        return;
    }
    free(m->client_id);
    free(m->client_host);
    m->client_id = id;
    m->client_host = h;
}

/* True when m's protocols (names and metadata, in order) equal the request's. */
static bool same_protocols(const struct member *m, const struct mq_kafka_join_group_req *req)
{
    if (m->n_protocols != req->protocol_count)
        return false;
    for (int32_t i = 0; i < m->n_protocols; i++) {
        const struct mq_kafka_join_protocol *p = &req->protocols[i];
        if (!str_is(p->name, m->protocols[i].name) || p->metadata.len != m->protocols[i].meta_len ||
            (p->metadata.len > 0 &&
             memcmp(p->metadata.ptr, m->protocols[i].meta, (size_t)p->metadata.len) != 0))
            return false;
    }
    return true;
}

/* Replaces m's protocols with the request's. MQ_ERR_NOMEM leaves m as it was. */
static enum mq_err set_protocols(struct member *m, const struct mq_kafka_join_group_req *req)
{
    struct protocol *ps = calloc((size_t)req->protocol_count + 1, sizeof *ps);
    if (!ps)
        return MQ_ERR_NOMEM;
    for (int32_t i = 0; i < req->protocol_count; i++) {
        ps[i].name = dup_str(req->protocols[i].name);
        ps[i].meta = dup_bytes(req->protocols[i].metadata);
        ps[i].meta_len = req->protocols[i].metadata.len > 0 ? req->protocols[i].metadata.len : 0;
        if (!ps[i].name || !ps[i].meta) {
            for (int32_t j = 0; j <= i; j++) {
                free(ps[j].name);
                free(ps[j].meta);
            }
            free(ps);
            return MQ_ERR_NOMEM;
        }
    }
    for (int32_t i = 0; i < m->n_protocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].meta);
    }
    free(m->protocols);
    m->protocols = ps;
    m->n_protocols = req->protocol_count;
    return MQ_OK;
}

/* ---- responses ---- */

static void join_error(struct mq_kafka_groups *gs, void *waiter, int16_t error, struct mq_kafka_str member_id)
{
    struct mq_kafka_join_group_resp r = {0};
    r.error = error;
    r.generation_id = -1;
    r.protocol_name = view("");
    r.leader = view("");
    r.member_id = member_id.len >= 0 ? member_id : view("");
    gs->join_cb(gs->opaque, waiter, &r);
}

static void sync_reply(struct mq_kafka_groups *gs, void *waiter, int16_t error, const uint8_t *p, int32_t len)
{
    struct mq_kafka_str a = {(const char *)(p ? p : (const uint8_t *)""), p ? len : 0};
    gs->sync_cb(gs->opaque, waiter, error, a);
}

/* Sends m its JoinGroup response for the current generation (the leader also gets every member). */
static void join_reply(struct mq_kafka_groups *gs, struct group *g, struct member *m, void *waiter)
{
    struct mq_kafka_join_group_resp r = {0};
    r.error = MQ_KC_NONE;
    r.generation_id = g->generation;
    r.protocol_name = view(g->protocol ? g->protocol : "");
    r.leader = view(g->leader ? g->leader : "");
    r.member_id = view(m->id);
    struct mq_kafka_join_member *list = NULL;
    if (g->leader && strcmp(g->leader, m->id) == 0) {
        list = calloc(g->n_members ? g->n_members : 1, sizeof *list);
        if (!list) {
            join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, view(m->id));
            return;
        }
        for (size_t i = 0; i < g->n_members; i++) {
            const struct member *o = g->members[i];
            const struct protocol *p = member_protocol(o, g->protocol);
            list[i].member_id = view(o->id);
            list[i].group_instance_id = view(o->instance_id);
            list[i].metadata.ptr = p ? (const char *)p->meta : "";
            list[i].metadata.len = p ? p->meta_len : 0;
        }
        r.member_count = (int32_t)g->n_members;
        r.members = list;
    }
    gs->join_cb(gs->opaque, waiter, &r);
    free(list);
}

/* ---- state transitions ---- */

static int32_t max_rebalance_timeout(const struct group *g)
{
    int32_t t = 0;
    for (size_t i = 0; i < g->n_members; i++)
        if (g->members[i]->rebalance_timeout_ms > t)
            t = g->members[i]->rebalance_timeout_ms;
    return t;
}

/* Enters PreparingRebalance: parked syncs are told to rejoin; every member must join again. */
static void prepare_rebalance(struct mq_kafka_groups *gs, struct group *g, int64_t now)
{
    bool from_empty = g->state == MQ_KGROUP_EMPTY;
    for (size_t i = 0; i < g->n_members; i++) {
        struct member *m = g->members[i];
        if (m->sync_waiter) {
            void *w = m->sync_waiter;
            m->sync_waiter = NULL;
            sync_reply(gs, w, MQ_KC_REBALANCE_IN_PROGRESS, NULL, 0);
        }
        if (g->state != MQ_KGROUP_PREPARING_REBALANCE)
            m->joined = false;
    }
    if (g->state != MQ_KGROUP_PREPARING_REBALANCE) {
        g->state = MQ_KGROUP_PREPARING_REBALANCE;
        g->rebalance_deadline = now + max_rebalance_timeout(g);
        g->initial_delay_end = now;
        if (from_empty && gs->conf.initial_rebalance_delay_ms > 0) {
            int64_t d = gs->conf.initial_rebalance_delay_ms;
            int32_t rt = max_rebalance_timeout(g);
            g->initial_delay_end = now + (rt > 0 && rt < d ? rt : d);
        }
    }
}

/* Removes g from the list and frees it. */
static void group_drop(struct mq_kafka_groups *gs, struct group *g)
{
    if (g->announced && gs->live_cb)
        gs->live_cb(gs->opaque, g->id, false);
    for (struct group **pp = &gs->groups; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    group_free(g);
}

static void member_remove_at(struct group *g, size_t i)
{
    struct member *m = g->members[i];
    if (g->leader && strcmp(g->leader, m->id) == 0) {
        free(g->leader);
        g->leader = NULL;
    }
    member_free(m);
    memmove(&g->members[i], &g->members[i + 1], (g->n_members - i - 1) * sizeof g->members[0]);
    g->n_members--;
}

/* Picks the protocol every member supports that most members prefer (ties: the earlier candidate). */
static const char *select_protocol(const struct group *g)
{
    if (g->n_members == 0)
        return NULL;
    const struct member *first = g->members[0];
    const char *best = NULL;
    size_t best_votes = 0;
    for (int32_t c = 0; c < first->n_protocols; c++) {
        const char *cand = first->protocols[c].name;
        bool everyone = true;
        for (size_t i = 1; i < g->n_members && everyone; i++)
            everyone = member_protocol(g->members[i], cand) != NULL;
        if (!everyone)
            continue;
        size_t votes = 0;
        for (size_t i = 0; i < g->n_members; i++) {
            /* A member votes for its most preferred protocol that everyone supports. */
            const struct member *m = g->members[i];
            for (int32_t k = 0; k < m->n_protocols; k++) {
                bool common = true;
                for (size_t j = 0; j < g->n_members && common; j++)
                    common = member_protocol(g->members[j], m->protocols[k].name) != NULL;
                if (common) {
                    if (strcmp(m->protocols[k].name, cand) == 0)
                        votes++;
                    break;
                }
            }
        }
        if (!best || votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

/*
 * Ends PreparingRebalance: drops members that did not rejoin, starts a new generation and answers every
 * parked JoinGroup. Returns false when the group became empty and was freed.
 */
static bool complete_join(struct mq_kafka_groups *gs, struct group *g, int64_t now)
{
    for (size_t i = 0; i < g->n_members;) {
        if (!g->members[i]->joined)
            member_remove_at(g, i);
        else
            i++;
    }
    g->generation++;
    free(g->protocol);
    g->protocol = NULL;
    if (g->n_members == 0) {
        group_drop(gs, g);
        return false;
    }
    const char *p = select_protocol(g);
    g->protocol = p ? strdup(p) : NULL;
    if (!g->leader) {
        g->leader = strdup(g->members[0]->id);
        if (!g->leader) {
            /* Without a leader nobody assigns; fail the round, clients rejoin. */
            for (size_t i = 0; i < g->n_members; i++)
                if (g->members[i]->join_waiter) {
                    void *w = g->members[i]->join_waiter;
                    g->members[i]->join_waiter = NULL;
                    join_error(gs, w, MQ_KC_UNKNOWN_SERVER_ERROR, view(g->members[i]->id));
                }
            g->state = MQ_KGROUP_PREPARING_REBALANCE;
            return true;
        }
    }
    g->state = MQ_KGROUP_COMPLETING_REBALANCE;
    for (size_t i = 0; i < g->n_members; i++) {
        struct member *m = g->members[i];
        m->joined = false;
        m->last_seen = now;
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        if (m->join_waiter) {
            void *w = m->join_waiter;
            m->join_waiter = NULL;
            join_reply(gs, g, m, w);
        }
    }
    return true;
}

/* Completes PreparingRebalance if every member has rejoined and the initial delay is over. */
static bool maybe_complete_join(struct mq_kafka_groups *gs, struct group *g, int64_t now)
{
    if (g->state != MQ_KGROUP_PREPARING_REBALANCE || now < g->initial_delay_end)
        return true;
    for (size_t i = 0; i < g->n_members; i++)
        if (!g->members[i]->joined)
            return true;
    return complete_join(gs, g, now);
}

/* Removes member i (left or timed out) and rebalances the rest. Returns false when g was freed. */
static bool member_leave(struct mq_kafka_groups *gs, struct group *g, size_t i, int64_t now)
{
    struct member *m = g->members[i];
    if (m->join_waiter)
        join_error(gs, m->join_waiter, MQ_KC_UNKNOWN_MEMBER_ID, view(m->id));
    if (m->sync_waiter)
        sync_reply(gs, m->sync_waiter, MQ_KC_UNKNOWN_MEMBER_ID, NULL, 0);
    m->join_waiter = m->sync_waiter = NULL;
    member_remove_at(g, i);
    if (g->n_members == 0) {
        group_drop(gs, g);
        return false;
    }
    if (g->state != MQ_KGROUP_PREPARING_REBALANCE)
        prepare_rebalance(gs, g, now);
    return maybe_complete_join(gs, g, now);
}

/*
 * A static member m joined without a member id: its new instance takes m's place under a new member id, and
 * requests the old instance had parked are answered FENCED_INSTANCE_ID. In a Stable group with unchanged
 * protocols the member gets the current generation back at once, with the leader id as it was, so that it
 * acts as a follower whose SyncGroup returns the assignment it kept; returns false then, or on an error
 * answered. Otherwise (protocols changed, or a rebalance under way) returns true: the caller takes the
 * member through a rebalance.
 */
static bool static_rejoin(struct mq_kafka_groups *gs, struct group *g, struct member *m,
                          const struct mq_kafka_join_group_req *req, struct mq_kafka_str client_id,
                          void *waiter, int64_t now)
{
    char id[192];
    new_member_id(gs, client_id, id, sizeof id);
    char *new_id = strdup(id);
    bool was_leader = g->leader && strcmp(g->leader, m->id) == 0;
    char *new_leader = was_leader ? strdup(id) : NULL;
    if (!new_id || (was_leader && !new_leader)) {
        free(new_id);
        free(new_leader);
        join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, req->member_id);
        return false;
    }
    if (m->join_waiter)
        join_error(gs, m->join_waiter, MQ_KC_FENCED_INSTANCE_ID, view(m->id));
    if (m->sync_waiter)
        sync_reply(gs, m->sync_waiter, MQ_KC_FENCED_INSTANCE_ID, NULL, 0);
    m->join_waiter = m->sync_waiter = NULL;
    char *old_id = m->id, *old_leader = g->leader;
    m->id = new_id;
    if (was_leader)
        g->leader = new_leader;
    member_set_client(m, client_id, req->client_host); /* the new instance may run elsewhere */
    m->session_timeout_ms = req->session_timeout_ms;
    m->rebalance_timeout_ms =
        req->rebalance_timeout_ms > 0 ? req->rebalance_timeout_ms : req->session_timeout_ms;
    m->last_seen = now;

    bool rebalance = g->state != MQ_KGROUP_STABLE || !same_protocols(m, req);
    if (rebalance && !same_protocols(m, req) && set_protocols(m, req) != MQ_OK) {
        join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, view(m->id));
        rebalance = false;
    } else if (!rebalance) {
        /* Kafka answers with the leader id as it was: a replaced leader does not assign again, since a
         * Stable group would not pass on a new assignment. */
        struct mq_kafka_join_group_resp r = {0};
        r.error = MQ_KC_NONE;
        r.generation_id = g->generation;
        r.protocol_name = view(g->protocol ? g->protocol : "");
        r.leader = view(old_leader ? old_leader : "");
        r.member_id = view(m->id);
        gs->join_cb(gs->opaque, waiter, &r);
    }
    free(old_id);
    if (was_leader)
        free(old_leader);
    return rebalance;
}

/* ---- requests ---- */

void mq_kafka_groups_join(struct mq_kafka_groups *gs, int64_t now, const struct mq_kafka_join_group_req *req,
                          struct mq_kafka_str client_id, void *waiter)
{
    if (req->group_id.len <= 0) {
        join_error(gs, waiter, MQ_KC_INVALID_GROUP_ID, req->member_id);
        return;
    }
    if (req->session_timeout_ms < gs->conf.min_session_timeout_ms ||
        req->session_timeout_ms > gs->conf.max_session_timeout_ms) {
        join_error(gs, waiter, MQ_KC_INVALID_SESSION_TIMEOUT, req->member_id);
        return;
    }
    if (req->protocol_type.len <= 0 || req->protocol_count <= 0) {
        join_error(gs, waiter, MQ_KC_INCONSISTENT_GROUP_PROTOCOL, req->member_id);
        return;
    }
    struct group *g = group_find(gs, req->group_id);
    struct member *m = NULL;
    bool replaces = false; /* a static member taking the place of its earlier instance */
    if (req->member_id.len > 0) {
        if (fenced(g, req->member_id, req->group_instance_id)) {
            join_error(gs, waiter, MQ_KC_FENCED_INSTANCE_ID, req->member_id);
            return;
        }
        m = member_find(g, req->member_id);
        if (!m) {
            join_error(gs, waiter, MQ_KC_UNKNOWN_MEMBER_ID, req->member_id);
            return;
        }
    } else if ((m = instance_find(g, req->group_instance_id)) != NULL) {
        replaces = true;
    }
    if (g && g->n_members > 0) {
        /* The member must speak the group's protocol type and share a protocol with every other member. */
        if (!str_is(req->protocol_type, g->protocol_type)) {
            join_error(gs, waiter, MQ_KC_INCONSISTENT_GROUP_PROTOCOL, req->member_id);
            return;
        }
        bool shared = false;
        for (int32_t c = 0; c < req->protocol_count && !shared; c++) {
            char name[256];
            if (!mq_kafka_str_copy(req->protocols[c].name, name, sizeof name))
                continue;
            shared = true;
            for (size_t i = 0; i < g->n_members && shared; i++)
                if (g->members[i] != m)
                    shared = member_protocol(g->members[i], name) != NULL;
        }
        if (!shared && !(g->n_members == 1 && m)) {
            join_error(gs, waiter, MQ_KC_INCONSISTENT_GROUP_PROTOCOL, req->member_id);
            return;
        }
    }

    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g || !(g->id = dup_str(req->group_id))) {
            free(g);
            join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, req->member_id);
            return;
        }
        g->state = MQ_KGROUP_EMPTY;
        g->next = gs->groups;
        gs->groups = g;
    }
    if (g->n_members == 0) {
        free(g->protocol_type);
        g->protocol_type = dup_str(req->protocol_type);
        if (!g->protocol_type) {
            group_drop(gs, g);
            join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, req->member_id);
            return;
        }
    }

    bool is_new = m == NULL, changed = false;
    if (replaces) {
        if (!static_rejoin(gs, g, m, req, client_id, waiter, now))
            return;     /* answered */
        changed = true; /* protocols changed, or the group is mid-rebalance: join it */
    } else if (is_new) {
        if (g->n_members >= (size_t)gs->conf.max_group_size) {
            join_error(gs, waiter, MQ_KC_GROUP_MAX_SIZE_REACHED, req->member_id);
            return;
        }
        if (g->n_members == g->cap_members) {
            size_t cap = g->cap_members ? g->cap_members * 2 : 4;
            struct member **a = realloc(g->members, cap * sizeof *a);
            if (!a) {
                join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, req->member_id);
                return;
            }
            g->members = a;
            g->cap_members = cap;
        }
        m = calloc(1, sizeof *m);
        char id[192];
        new_member_id(gs, client_id, id, sizeof id);
        if (!m || !(m->id = strdup(id)) || set_protocols(m, req) != MQ_OK ||
            (req->group_instance_id.len >= 0 && !(m->instance_id = dup_str(req->group_instance_id)))) {
            member_free(m);
            if (g->n_members == 0)
                group_drop(gs, g);
            join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, req->member_id);
            return;
        }
        g->members[g->n_members++] = m;
        if (!g->announced && gs->live_cb) {
            g->announced = true;
            gs->live_cb(gs->opaque, g->id, true);
        }
    } else if (!same_protocols(m, req)) {
        if (set_protocols(m, req) != MQ_OK) {
            join_error(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, req->member_id);
            return;
        }
        changed = true;
    }
    member_set_client(m, client_id, req->client_host);
    m->session_timeout_ms = req->session_timeout_ms;
    m->rebalance_timeout_ms =
        req->rebalance_timeout_ms > 0 ? req->rebalance_timeout_ms : req->session_timeout_ms;
    m->last_seen = now;

    if (g->state == MQ_KGROUP_STABLE || g->state == MQ_KGROUP_COMPLETING_REBALANCE) {
        bool leader = g->leader && strcmp(g->leader, m->id) == 0;
        if (!is_new && !changed && !(g->state == MQ_KGROUP_STABLE && leader)) {
            /* A member repeating its join (e.g. it missed the response) gets the current generation. */
            join_reply(gs, g, m, waiter);
            return;
        }
        prepare_rebalance(gs, g, now);
    } else if (g->state == MQ_KGROUP_EMPTY) {
        prepare_rebalance(gs, g, now);
    }
    /* PreparingRebalance: park the join until everyone has rejoined. */
    if (m->join_waiter)
        join_error(gs, m->join_waiter, MQ_KC_UNKNOWN_MEMBER_ID, view(m->id));
    m->join_waiter = waiter;
    m->joined = true;
    int64_t deadline = now + m->rebalance_timeout_ms;
    if (deadline > g->rebalance_deadline)
        g->rebalance_deadline = deadline;
    maybe_complete_join(gs, g, now);
}

void mq_kafka_groups_sync(struct mq_kafka_groups *gs, int64_t now, const struct mq_kafka_sync_group_req *req,
                          void *waiter)
{
    struct group *g = group_find(gs, req->group_id);
    struct member *m = member_find(g, req->member_id);
    if (fenced(g, req->member_id, req->group_instance_id)) {
        sync_reply(gs, waiter, MQ_KC_FENCED_INSTANCE_ID, NULL, 0);
        return;
    }
    if (!m) {
        sync_reply(gs, waiter, MQ_KC_UNKNOWN_MEMBER_ID, NULL, 0);
        return;
    }
    if (req->generation_id != g->generation) {
        sync_reply(gs, waiter, MQ_KC_ILLEGAL_GENERATION, NULL, 0);
        return;
    }
    m->last_seen = now;
    switch (g->state) {
    case MQ_KGROUP_PREPARING_REBALANCE:
        sync_reply(gs, waiter, MQ_KC_REBALANCE_IN_PROGRESS, NULL, 0);
        return;
    case MQ_KGROUP_STABLE:
        sync_reply(gs, waiter, MQ_KC_NONE, m->assignment, m->assignment_len);
        return;
    case MQ_KGROUP_COMPLETING_REBALANCE:
        break;
    default:
        sync_reply(gs, waiter, MQ_KC_UNKNOWN_MEMBER_ID, NULL, 0);
        return;
    }
    if (m->sync_waiter)
        sync_reply(gs, m->sync_waiter, MQ_KC_REBALANCE_IN_PROGRESS, NULL, 0);
    m->sync_waiter = waiter;
    if (!g->leader || strcmp(g->leader, m->id) != 0)
        return; /* followers wait for the leader */

    /* The leader's assignments: copy them all first, so that a failed copy changes nothing. */
    uint8_t **copies = calloc(g->n_members ? g->n_members : 1, sizeof *copies);
    int32_t *lens = calloc(g->n_members ? g->n_members : 1, sizeof *lens);
    bool ok = copies && lens;
    for (size_t i = 0; ok && i < g->n_members; i++) {
        for (int32_t k = 0; k < req->assignment_count; k++)
            if (str_is(req->assignments[k].member_id, g->members[i]->id)) {
                struct mq_kafka_str a = req->assignments[k].assignment;
                lens[i] = a.len > 0 ? a.len : 0;
                copies[i] = dup_bytes(a);
                ok = copies[i] != NULL;
                break;
            }
    }
    if (!ok) {
        for (size_t i = 0; copies && i < g->n_members; i++)
            free(copies[i]);
        free(copies);
        free(lens);
        m->sync_waiter = NULL;
        sync_reply(gs, waiter, MQ_KC_UNKNOWN_SERVER_ERROR, NULL, 0);
        return;
    }
    g->state = MQ_KGROUP_STABLE;
    for (size_t i = 0; i < g->n_members; i++) {
        struct member *o = g->members[i];
        free(o->assignment);
        o->assignment = copies[i]; /* NULL: the leader gave this member nothing */
        o->assignment_len = copies[i] ? lens[i] : 0;
        if (o->sync_waiter) {
            void *w = o->sync_waiter;
            o->sync_waiter = NULL;
            sync_reply(gs, w, MQ_KC_NONE, o->assignment, o->assignment_len);
        }
    }
    free(copies);
    free(lens);
}

int16_t mq_kafka_groups_heartbeat(struct mq_kafka_groups *gs, int64_t now, struct mq_kafka_str group_id,
                                  int32_t generation_id, struct mq_kafka_str member_id,
                                  struct mq_kafka_str instance_id)
{
    struct group *g = group_find(gs, group_id);
    struct member *m = member_find(g, member_id);
    if (fenced(g, member_id, instance_id))
        return MQ_KC_FENCED_INSTANCE_ID;
    if (!m)
        return MQ_KC_UNKNOWN_MEMBER_ID;
    if (generation_id != g->generation)
        return MQ_KC_ILLEGAL_GENERATION;
    m->last_seen = now;
    if (g->state == MQ_KGROUP_PREPARING_REBALANCE)
        return MQ_KC_REBALANCE_IN_PROGRESS;
    return MQ_KC_NONE;
}

int16_t mq_kafka_groups_leave(struct mq_kafka_groups *gs, int64_t now, struct mq_kafka_str group_id,
                              struct mq_kafka_str member_id, struct mq_kafka_str instance_id)
{
    struct group *g = group_find(gs, group_id);
    if (fenced(g, member_id, instance_id))
        return MQ_KC_FENCED_INSTANCE_ID;
    const struct member *s = member_id.len > 0 ? NULL : instance_find(g, instance_id);
    if (!g || (member_id.len <= 0 && !s))
        return MQ_KC_UNKNOWN_MEMBER_ID;
    for (size_t i = 0; i < g->n_members; i++)
        if (g->members[i] == s || str_is(member_id, g->members[i]->id)) {
            member_leave(gs, g, i, now);
            return MQ_KC_NONE;
        }
    return MQ_KC_UNKNOWN_MEMBER_ID;
}

int16_t mq_kafka_groups_check_commit(struct mq_kafka_groups *gs, struct mq_kafka_str group_id,
                                     int32_t generation_id, struct mq_kafka_str member_id,
                                     struct mq_kafka_str instance_id)
{
    struct group *g = group_find(gs, group_id);
    if (fenced(g, member_id, instance_id))
        return MQ_KC_FENCED_INSTANCE_ID;
    if (generation_id < 0 && (!g || g->n_members == 0))
        return MQ_KC_NONE;
    if (g && g->state == MQ_KGROUP_COMPLETING_REBALANCE && member_find(g, member_id))
        return MQ_KC_REBALANCE_IN_PROGRESS;
    if (!member_find(g, member_id))
        return MQ_KC_UNKNOWN_MEMBER_ID;
    if (generation_id != g->generation)
        return MQ_KC_ILLEGAL_GENERATION;
    return MQ_KC_NONE;
}

void mq_kafka_groups_cancel(struct mq_kafka_groups *gs, int64_t now, void *waiter)
{
    if (!waiter)
        return;
    for (struct group *g = gs->groups; g; g = g->next)
        for (size_t i = 0; i < g->n_members; i++) {
            struct member *m = g->members[i];
            if (m->join_waiter == waiter) {
                m->join_waiter = NULL;
                m->last_seen = now;
            }
            if (m->sync_waiter == waiter) {
                m->sync_waiter = NULL;
                m->last_seen = now;
            }
        }
}

int64_t mq_kafka_groups_tick(struct mq_kafka_groups *gs, int64_t now)
{
    int64_t next = INT64_MAX;
    struct group *g = gs->groups;
    while (g) {
        struct group *following = g->next;
        bool alive = true;
        /* Session timeouts: a member with a parked request is kept alive by it, as in Kafka. */
        for (size_t i = 0; alive && i < g->n_members;) {
            struct member *m = g->members[i];
            if (!m->join_waiter && !m->sync_waiter && now - m->last_seen > m->session_timeout_ms) {
                alive = member_leave(gs, g, i, now);
                continue; /* the array shifted; i now names the next member */
            }
            i++;
        }
        if (alive && g->state == MQ_KGROUP_PREPARING_REBALANCE) {
            if (now >= g->rebalance_deadline)
                alive = complete_join(gs, g, now);
            else
                alive = maybe_complete_join(gs, g, now);
        }
        if (alive) {
            for (size_t i = 0; i < g->n_members; i++) {
                const struct member *m = g->members[i];
                if (!m->join_waiter && !m->sync_waiter && m->last_seen + m->session_timeout_ms + 1 < next)
                    next = m->last_seen + m->session_timeout_ms + 1;
            }
            if (g->state == MQ_KGROUP_PREPARING_REBALANCE) {
                if (g->rebalance_deadline < next)
                    next = g->rebalance_deadline;
                if (g->initial_delay_end > now && g->initial_delay_end < next)
                    next = g->initial_delay_end;
            }
        }
        g = following;
    }
    return next;
}

enum mq_kafka_group_state mq_kafka_groups_state(struct mq_kafka_groups *gs, const char *group_id,
                                                int32_t *generation, int32_t *members)
{
    struct group *g = group_find(gs, view(group_id));
    if (generation)
        *generation = g ? g->generation : -1;
    if (members)
        *members = g ? (int32_t)g->n_members : 0;
    return g ? g->state : MQ_KGROUP_NONE;
}

const char *mq_kafka_group_state_name(enum mq_kafka_group_state state)
{
    switch (state) {
    case MQ_KGROUP_EMPTY:
        return "Empty";
    case MQ_KGROUP_PREPARING_REBALANCE:
        return "PreparingRebalance";
    case MQ_KGROUP_COMPLETING_REBALANCE:
        return "CompletingRebalance";
    case MQ_KGROUP_STABLE:
        return "Stable";
    default:
        return "Dead";
    }
}

static void fill_view(const struct group *g, struct mq_kafka_group_view *v)
{
    v->group_id = g->id;
    v->state = g->state;
    v->protocol_type = g->protocol_type ? g->protocol_type : "";
    /* Kafka names the protocol of a Stable group only; members' metadata likewise. */
    v->protocol = g->state == MQ_KGROUP_STABLE && g->protocol ? g->protocol : "";
    v->generation = g->generation;
    v->member_count = (int32_t)g->n_members;
}

void mq_kafka_groups_each(struct mq_kafka_groups *gs, mq_kafka_group_fn *fn, void *arg)
{
    for (struct group *g = gs->groups; g; g = g->next) {
        struct mq_kafka_group_view v;
        fill_view(g, &v);
        fn(arg, &v);
    }
}

bool mq_kafka_groups_describe(struct mq_kafka_groups *gs, struct mq_kafka_str group_id,
                              struct mq_kafka_group_view *view_out, struct mq_kafka_member_view *members,
                              int32_t max_members)
{
    const struct group *g = group_find(gs, group_id);
    if (!g)
        return false;
    fill_view(g, view_out);
    bool stable = g->state == MQ_KGROUP_STABLE;
    for (int32_t i = 0; members && i < view_out->member_count && i < max_members; i++) {
        const struct member *m = g->members[i];
        struct mq_kafka_member_view *o = &members[i];
        const struct protocol *p = stable ? member_protocol(m, g->protocol) : NULL;
        o->member_id = m->id;
        o->instance_id = m->instance_id;
        o->client_id = m->client_id ? m->client_id : "";
        o->client_host = m->client_host ? m->client_host : "";
        o->metadata = p ? p->meta : NULL;
        o->metadata_len = p ? p->meta_len : 0;
        o->assignment = stable ? m->assignment : NULL;
        o->assignment_len = stable && m->assignment ? m->assignment_len : 0;
    }
    return true;
}
