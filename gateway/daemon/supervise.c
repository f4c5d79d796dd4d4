/*
 * supervise.c - the daemon's connector instances: one per broker and session, each with the subscriptions
 * the route table gives its broker.
 *
 * On reload the new plan is compared with what runs. An instance is kept when its broker's settings, its
 * session number and its subscriptions are all the same: it goes on with the configuration it was created
 * from (a connector may keep pointers into it, so each instance holds a reference on that configuration).
 * Everything else is replaced: the new instances are created first, so a failure leaves the running set
 * untouched; then the old ones are stopped (stop() returns once no callback can reach ingest; unacknowledged
 * messages stay with the broker's persistent session) and the new ones started.
 * A connector reads its broker's password file once, when it is created, so the same settings are not
 * enough: a password file whose content changed (a rotated password) replaces the broker's instances too,
 * which is what an operator means by `systemctl reload` after writing it. TLS files need no such care: the
 * client libraries read them at every connection attempt.
 */
#include "daemon/daemon.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "route/route.h"
#include "util/diag.h"

struct mq_daemon_cfg *mq_daemon_cfg_new(struct mq_config *cfg)
{
    struct mq_daemon_cfg *dc = calloc(1, sizeof *dc);
    if (!dc)
        return NULL;
    dc->cfg = cfg;
    dc->refs = 1;
    return dc;
}

void mq_daemon_cfg_unref(struct mq_daemon_cfg *dc)
{
    if (dc && --dc->refs == 0) {
        mq_config_free(dc->cfg);
        free(dc);
    }
}

/* One connector instance. */
struct mq_inst {
    const struct mq_connector *conn;
    struct mq_daemon_cfg *dc; /* a reference: ctx.broker points into it */
    struct mq_subscription *subs;
    size_t nsubs;
    struct mq_connector_ctx ctx;
    void *instance;
    bool started;
    bool keep;          /* mark of mq_sup_apply */
    uint64_t pw_digest; /* mq_password_digest() of the broker when the instance was created */
};

struct mq_sup {
    struct mq_ingest *ingest;
    pthread_mutex_t mu; /* inst and n change under it: the HTTP thread reads them (mq_sup_brokers()) */
    struct mq_inst **inst;
    size_t n;
};

static void mq_inst_free(struct mq_inst *it)
{
    if (!it)
        return;
    if (it->instance) {
        if (it->started)
            it->conn->stop(it->instance);
        it->conn->destroy(it->instance);
    }
    for (size_t i = 0; i < it->nsubs; i++)
        free((char *)it->subs[i].filter);
    free(it->subs);
    mq_daemon_cfg_unref(it->dc);
    free(it);
}

struct mq_subs_acc {
    struct mq_subscription *v;
    size_t n, cap;
};

static enum mq_err mq_subs_add(void *opaque, const char *filter, int qos)
{
    struct mq_subs_acc *a = opaque;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct mq_subscription *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return MQ_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    char *f = strdup(filter);
    if (!f)
        return MQ_ERR_NOMEM;
    a->v[a->n++] = (struct mq_subscription){.filter = f, .qos = qos};
    return MQ_OK;
}

static void mq_subs_free(struct mq_subs_acc *a)
{
    for (size_t i = 0; i < a->n; i++)
        free((char *)a->v[i].filter);
    free(a->v);
}

static bool mq_str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The broker settings a connector uses: everything but where they were written. */
static bool mq_broker_same(const struct mq_config_broker *a, const struct mq_config_broker *b)
{
    return mq_str_eq(a->name, b->name) && mq_str_eq(a->url, b->url) && mq_str_eq(a->host, b->host) &&
           a->port == b->port && a->tls == b->tls && mq_str_eq(a->client, b->client) &&
           mq_str_eq(a->client_id, b->client_id) && a->protocol == b->protocol &&
           a->clean_session == b->clean_session && mq_str_eq(a->username, b->username) &&
           mq_str_eq(a->password_file, b->password_file) && mq_str_eq(a->tls_opts.ca, b->tls_opts.ca) &&
           mq_str_eq(a->tls_opts.cert, b->tls_opts.cert) && mq_str_eq(a->tls_opts.key, b->tls_opts.key) &&
           a->tls_opts.insecure == b->tls_opts.insecure && a->sessions == b->sessions &&
           mq_str_eq(a->share_group, b->share_group) && a->keepalive_s == b->keepalive_s &&
           a->connect_timeout_ms == b->connect_timeout_ms && a->reconnect_min_ms == b->reconnect_min_ms &&
           a->reconnect_max_ms == b->reconnect_max_ms && a->max_inflight == b->max_inflight &&
           a->durable_ack == b->durable_ack;
}

/* A digest of the password b's password file holds now; 0 without a password file or when it cannot be
 * read (mq_daemon_load() has refused such a configuration already). Only compared with an earlier digest,
 * in this process: the password itself is not kept. */
static uint64_t mq_password_digest(const struct mq_config_broker *b)
{
    char *pw = NULL, why[512];
    if (!b->password_file || mq_config_broker_password(b, &pw, why, sizeof why) != MQ_OK || !pw)
        return 0;
    size_t n = strlen(pw);
    uint64_t h = XXH3_64bits(pw, n) | 1; /* never 0 */
    explicit_bzero(pw, n);
    free(pw);
    return h;
}

static bool mq_subs_same(const struct mq_inst *it, const struct mq_subs_acc *a)
{
    if (it->nsubs != a->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(it->subs[i].filter, a->v[i].filter) != 0 || it->subs[i].qos != a->v[i].qos)
            return false;
    return true;
}

enum mq_err mq_sup_new(struct mq_ingest *ingest, struct mq_sup **out)
{
    struct mq_sup *sup = calloc(1, sizeof *sup);
    if (!sup)
        return MQ_ERR_NOMEM;
    sup->ingest = ingest;
    pthread_mutex_init(&sup->mu, NULL);
    *out = sup;
    return MQ_OK;
}

/* The running instance equal to (broker, session, subs) with the password of digest pw, or NULL. */
static struct mq_inst *mq_sup_find_same(struct mq_sup *sup, const struct mq_config_broker *b, int session,
                                        const struct mq_subs_acc *a, uint64_t pw)
{
    for (size_t i = 0; i < sup->n; i++) {
        struct mq_inst *it = sup->inst[i];
        if (it->keep || it->ctx.session != session || !mq_broker_same(it->ctx.broker, b) ||
            !mq_subs_same(it, a))
            continue;
        if (it->pw_digest == pw)
            return it;
        MQ_NOTICE(
            "broker %s session %d: its password file %s changed: connecting again with the new password",
            b->name, session, b->password_file);
    }
    return NULL;
}

enum mq_err mq_sup_apply(struct mq_sup *sup, struct mq_daemon_cfg *dc, const struct mq_route_table *table,
                         struct mq_ingest_routes *install, char *errstr, size_t errstr_size)
{
    const struct mq_config *cfg = dc->cfg;
    size_t want = 0;
    for (size_t i = 0; i < cfg->nbrokers; i++)
        want += (size_t)cfg->brokers[i].sessions;
    struct mq_inst **next = calloc(want ? want : 1, sizeof *next);
    if (!next)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    size_t nnext = 0;
    enum mq_err err = MQ_OK;
    for (size_t i = 0; i < sup->n; i++)
        sup->inst[i]->keep = false;

    /* plan: reuse what is the same, create (not start) the rest */
    for (size_t bi = 0; bi < cfg->nbrokers && err == MQ_OK; bi++) {
        const struct mq_config_broker *b = &cfg->brokers[bi];
        struct mq_subs_acc subs = {0};
        err = mq_route_subscriptions(table, b->name, b->sessions > 1 ? b->share_group : NULL, mq_subs_add,
                                     &subs);
        if (err != MQ_OK) {
            mq_subs_free(&subs);
            mq_errf(err, errstr, errstr_size, "broker %s: subscriptions: %s", b->name, mq_strerror(err));
            break;
        }
        if (subs.n == 0) {
            MQ_WARN("broker %s: no mapping takes its messages: not connecting to it", b->name);
            mq_subs_free(&subs);
            continue;
        }
        const struct mq_connector *conn = mq_connector_find(b->client);
        uint64_t pw = mq_password_digest(b);
        for (int s = 0; s < (int)b->sessions && err == MQ_OK; s++) {
            struct mq_inst *same = mq_sup_find_same(sup, b, s, &subs, pw);
            if (same) {
                same->keep = true;
                next[nnext++] = same;
                continue;
            }
            if (!conn) { /* mq_daemon_load() refuses such a configuration; be safe anyway */
                err = mq_errf(MQ_ERR_CONFIG, errstr, errstr_size, "broker %s: client %s is not built in",
                              b->name, b->client);
                break;
            }
            struct mq_inst *it = calloc(1, sizeof *it);
            struct mq_subs_acc copy = {0};
            for (size_t k = 0; it && k < subs.n && err == MQ_OK; k++)
                err = mq_subs_add(&copy, subs.v[k].filter, subs.v[k].qos);
            if (!it || err != MQ_OK) {
                free(it);
                mq_subs_free(&copy);
                err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
                break;
            }
            it->conn = conn;
            it->dc = dc;
            it->pw_digest = pw;
            dc->refs++;
            it->subs = copy.v;
            it->nsubs = copy.n;
            it->ctx = (struct mq_connector_ctx){
                .broker = b, .session = s, .subs = it->subs, .nsubs = it->nsubs, .ingest = sup->ingest};
            char why[512] = "";
            err = conn->create(&it->ctx, &it->instance, why, sizeof why);
            if (err != MQ_OK) {
                mq_inst_free(it); /* destroys what create() left half-built, if anything */
                err = mq_errf(err, errstr, errstr_size, "broker %s session %d: %s connector: %s", b->name, s,
                              conn->name, why[0] ? why : mq_strerror(err));
                break;
            }
            next[nnext++] = it;
        }
        mq_subs_free(&subs);
    }
    if (err != MQ_OK) {
        for (size_t i = 0; i < nnext; i++)
            if (!next[i]->keep)
                mq_inst_free(next[i]);
        for (size_t i = 0; i < sup->n; i++)
            sup->inst[i]->keep = false;
        free(next);
        return err;
    }

    /* the new routes go in before any new instance can deliver (its subscriptions may need them) */
    if (install)
        mq_ingest_set_routes(sup->ingest, install);

    /* stop what is not kept, then start what is new */
    size_t stopped = 0, started = 0, kept = 0;
    pthread_mutex_lock(&sup->mu);
    for (size_t i = 0; i < sup->n; i++) {
        struct mq_inst *it = sup->inst[i];
        if (it->keep)
            continue;
        MQ_INFO("broker %s session %d: stopping its %s connector", it->ctx.broker->name, it->ctx.session,
                it->conn->name);
        mq_inst_free(it);
        stopped++;
    }
    for (size_t i = 0; i < nnext; i++) {
        struct mq_inst *it = next[i];
        if (it->keep) {
            it->keep = false;
            kept++;
            continue;
        }
        MQ_INFO("broker %s session %d: starting the %s connector (%s, %zu subscription%s)",
                it->ctx.broker->name, it->ctx.session, it->conn->name, it->ctx.broker->url, it->nsubs,
                it->nsubs == 1 ? "" : "s");
        enum mq_err e = it->conn->start(it->instance);
        if (e != MQ_OK) /* start() only fails when it cannot even try (no thread): say so, keep the rest */
            MQ_ERROR("broker %s session %d: the %s connector did not start: %s", it->ctx.broker->name,
                     it->ctx.session, it->conn->name, mq_strerror(e));
        else
            it->started = true;
        started++;
    }
    free(sup->inst);
    sup->inst = next;
    sup->n = nnext;
    pthread_mutex_unlock(&sup->mu);
    if (stopped || kept)
        MQ_INFO("connectors: %zu kept, %zu stopped, %zu started", kept, stopped, started);
    return MQ_OK;
}

void mq_sup_log_stats(struct mq_sup *sup)
{
    for (size_t i = 0; i < sup->n; i++) {
        struct mq_inst *it = sup->inst[i];
        if (!it->conn->stats)
            continue;
        struct mq_connector_stats st = {0};
        it->conn->stats(it->instance, &st);
        MQ_INFO("broker %s session %d: %s, %llu messages, %llu bytes, %llu connects, %llu disconnects, "
                "%llu ms paused",
                it->ctx.broker->name, it->ctx.session, st.connected ? "connected" : "not connected",
                (unsigned long long)st.messages, (unsigned long long)st.bytes,
                (unsigned long long)st.connects, (unsigned long long)st.disconnects,
                (unsigned long long)st.paused_ms);
    }
}

void mq_sup_brokers(struct mq_sup *sup, void (*fn)(void *opaque, const struct mq_sup_broker *b), void *opaque)
{
    pthread_mutex_lock(&sup->mu);
    /* an instance's broker is summed at its first instance (sessions of a broker are few) */
    for (size_t i = 0; i < sup->n; i++) {
        const char *name = sup->inst[i]->ctx.broker->name;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(sup->inst[k]->ctx.broker->name, name) == 0;
        if (seen)
            continue;
        struct mq_sup_broker b = {.name = name, .url = sup->inst[i]->ctx.broker->url};
        for (size_t k = i; k < sup->n; k++) {
            struct mq_inst *it = sup->inst[k];
            if (strcmp(it->ctx.broker->name, name) != 0)
                continue;
            struct mq_connector_stats st = {0};
            if (it->conn->stats)
                it->conn->stats(it->instance, &st);
            b.sessions++;
            b.connected += st.connected;
            b.messages += st.messages;
            b.bytes += st.bytes;
            b.connects += st.connects;
            b.disconnects += st.disconnects;
            b.paused_ms += st.paused_ms;
            if (!st.connected && st.last_error[0] && !b.last_error[0])
                snprintf(b.last_error, sizeof b.last_error, "%s", st.last_error);
        }
        fn(opaque, &b);
    }
    pthread_mutex_unlock(&sup->mu);
}

void mq_sup_count(struct mq_sup *sup, size_t *instances, size_t *connected)
{
    size_t c = 0;
    for (size_t i = 0; i < sup->n; i++) {
        struct mq_inst *it = sup->inst[i];
        struct mq_connector_stats st = {0};
        if (it->conn->stats) {
            it->conn->stats(it->instance, &st);
            c += st.connected;
        }
    }
    *instances = sup->n;
    *connected = c;
}

void mq_sup_free(struct mq_sup *sup)
{
    if (!sup)
        return;
    /* stop all first (each stop waits for its callbacks), so that no instance delivers while another one
     * is being torn down; then destroy */
    for (size_t i = 0; i < sup->n; i++) {
        struct mq_inst *it = sup->inst[i];
        if (it->started) {
            it->conn->stop(it->instance);
            it->started = false;
        }
    }
    for (size_t i = 0; i < sup->n; i++)
        mq_inst_free(sup->inst[i]);
    free(sup->inst);
    pthread_mutex_destroy(&sup->mu);
    free(sup);
}
