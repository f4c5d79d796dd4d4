/*
 * authz.c - who a Kafka connection is and what it may do (see server_int.h): its principal, named as
 * Kafka names it, and the checks the handlers make against the authorization rules (acl/acl.h).
 *
 * A principal is "User:NAME": the SASL user (auth.c), or on a listener without SASL the client
 * certificate's subject DN or CN, or ANONYMOUS for a client without either. It is logged once, when it
 * becomes known.
 *
 * The rules are the loop's: mq_kafka_server_set_acl() (any thread) leaves new ones under a lock, and the
 * loop takes them up before the next request, so that a request is checked against one set of rules from
 * start to end and nothing frees them under it. A request finds its principal's rules once (r->who); each
 * topic or group it names is then one lookup among those rules. Without rules r->who is NULL and every
 * check is one branch, with nothing allocated.
 *
 * Kafka's rules, as the handlers apply them: Metadata, ListOffsets and OffsetFetch need Describe on the
 * topic, Fetch and OffsetCommit Read; OffsetCommit and the group membership APIs need Read on the group,
 * FindCoordinator, OffsetFetch and DescribeGroups Describe, DeleteGroups Delete; ListGroups and the
 * all-topics forms of Metadata and OffsetFetch leave out what the principal may not describe. A topic the
 * principal may not describe is answered exactly as a topic that does not exist, so that its existence
 * does not leak (Kafka's modern brokers answer TOPIC_AUTHORIZATION_FAILED for both instead).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/server_int.h"
#include "util/diag.h"

/* ---- principals ---- */

void mq_ksrv_principal_set(struct conn *c, const char *name, const char *how)
{
    size_t n = strlen("User:") + strlen(name) + 1;
    free(c->principal);
    c->principal = malloc(n);
    if (!c->principal) {
        mq_ksrv_conn_kill(c, "out of memory");
        return;
    }
    snprintf(c->principal, n, "User:%s", name);
    /* Anonymous clients are every client of an open listener: worth a line only when rules tell them
     * apart from the others. */
    if (strcmp(c->principal, MQ_ACL_ANONYMOUS) != 0 || c->srv->acl)
        MQ_INFO("kafka: %s on %s:%d is %s (%s)", c->peer, c->lsn->listen_host, c->lsn->port, c->principal,
                how);
    else
        MQ_DEBUG("kafka: %s on %s:%d is %s (%s)", c->peer, c->lsn->listen_host, c->lsn->port, c->principal,
                 how);
}

/* ---- the rules in force ---- */

void mq_kafka_server_set_acl(struct mq_kafka_server *srv, struct mq_acl *acl)
{
    pthread_mutex_lock(&srv->acl_lock);
    struct mq_acl *old = srv->acl_pending ? srv->acl_next : NULL; /* never taken up: not the loop's */
    srv->acl_next = acl;
    atomic_store(&srv->acl_pending, true);
    pthread_mutex_unlock(&srv->acl_lock);
    mq_acl_free(old);
}

void mq_ksrv_authz_begin(struct req *r)
{
    struct mq_kafka_server *srv = r->conn->srv;
    if (atomic_load_explicit(&srv->acl_pending, memory_order_acquire)) {
        pthread_mutex_lock(&srv->acl_lock);
        struct mq_acl *old = srv->acl;
        srv->acl = srv->acl_next;
        srv->acl_next = NULL;
        atomic_store(&srv->acl_pending, false);
        pthread_mutex_unlock(&srv->acl_lock);
        mq_acl_free(old); /* parked requests no longer look at their rules (server_int.h) */
        MQ_INFO("kafka: authorization rules %s", srv->acl ? "updated" : "removed: every request is allowed");
    }
    r->who = srv->acl ? mq_acl_who(srv->acl, r->conn->principal) : NULL;
}

void mq_ksrv_authz_free(struct mq_kafka_server *srv)
{
    mq_acl_free(srv->acl);
    srv->acl = NULL;
    if (srv->acl_pending)
        mq_acl_free(srv->acl_next);
    srv->acl_next = NULL;
}

/* ---- checks ---- */

static const char *op_name(unsigned op)
{
    switch (op) {
    case MQ_ACL_DESCRIBE:
        return "Describe";
    case MQ_ACL_READ:
        return "Read";
    case MQ_ACL_DESCRIBE_CONFIGS:
        return "DescribeConfigs";
    case MQ_ACL_DELETE:
        return "Delete";
    default:
        return "?";
    }
}

/* A refusal: counted, and logged (at most every 10 s, with the count) for whoever wonders why. */
static void denied(struct req *r, const char *kind, const char *name, int name_len, unsigned op)
{
    struct mq_kafka_server *srv = r->conn->srv;
    atomic_fetch_add(&srv->st_denied, 1);
    char what[400];
    snprintf(what, sizeof what, "%s (%s) may not %s %s %.*s (%s)", r->conn->principal, r->conn->peer,
             op_name(op), kind, name_len, name, mq_kafka_api_name(r->hdr.api_key));
    mq_ksrv_ratelog(&srv->denials, MQ_LV_INFO, now_ms(), "requests denied by the ACLs", what);
}

int16_t mq_ksrv_topic_denied(struct req *r, const char *name, unsigned op)
{
    if (!r->who)
        return MQ_KC_NONE;
    size_t len = strlen(name);
    unsigned granted = mq_acl_granted(r->who, MQ_ACL_TOPIC, name, len);
    if ((granted & op) == op)
        return MQ_KC_NONE;
    denied(r, "topic", name, (int)len, op);
    return granted & MQ_ACL_DESCRIBE ? MQ_KC_TOPIC_AUTHORIZATION_FAILED : MQ_KC_UNKNOWN_TOPIC_OR_PARTITION;
}

int16_t mq_ksrv_group_denied(struct req *r, struct mq_kafka_str id, unsigned op)
{
    if (!r->who)
        return MQ_KC_NONE;
    const char *p = id.ptr ? id.ptr : "";
    size_t len = id.len > 0 ? (size_t)id.len : 0;
    if ((mq_acl_granted(r->who, MQ_ACL_GROUP, p, len) & op) == op)
        return MQ_KC_NONE;
    /* A group id is any text the client chose: shown without control characters, and shortened. */
    char shown[128] = {0};
    size_t n = len < sizeof shown ? len : sizeof shown - 1;
    for (size_t i = 0; i < n; i++)
        shown[i] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
    denied(r, "group", shown, (int)n, op);
    return MQ_KC_GROUP_AUTHORIZATION_FAILED;
}

bool mq_ksrv_topic_visible(const struct req *r, const char *name)
{
    return !r->who || (mq_acl_granted(r->who, MQ_ACL_TOPIC, name, strlen(name)) & MQ_ACL_DESCRIBE);
}

bool mq_ksrv_group_visible(const struct req *r, const char *id)
{
    return !r->who || (mq_acl_granted(r->who, MQ_ACL_GROUP, id, strlen(id)) & MQ_ACL_DESCRIBE);
}
