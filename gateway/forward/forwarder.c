/*
 * forwarder.c - one forwarder: its settings, its librdkafka producer and transactions, the discovery of
 * local and remote topics, and its thread, whose loop connects, reads where to resume (tail.c), runs the
 * send rounds (send.c) and keeps the state line and checkpoints. The librdkafka settings are built in
 * conf.c.
 *
 * The thread owns the producer and every position; other threads only read the atomic counters, the
 * state line (under mu) and each partition's acked offset (for the retention hold). Every librdkafka call
 * that may wait does so with a timeout of at most a few seconds, so a stop request is seen promptly.
 *
 * Errors are sorted the way librdkafka's transactional API sorts them: retriable (the cluster is
 * unreachable: try the same call again after a backoff), abortable (abort the transaction, then read the
 * remote tails again), fatal (destroy the producer and start over from the remote tails; the new producer
 * fences nothing but its own predecessor).
 */
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward/forward_int.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_FWD_CALL_MS        5000 /* timeout of one blocking librdkafka call */
#define MQ_FWD_DISCOVER_MS    2000 /* how often new local topics and remote topic problems are looked at */
#define MQ_FWD_CKPT_MS        1000 /* checkpoints are written at most this often */
#define MQ_FWD_BACKOFF_MIN_MS 200
#define MQ_FWD_BACKOFF_MAX_MS 5000
#define MQ_FWD_IDLE_MS        10    /* wait for new records this long when every partition is caught up */
#define MQ_FWD_STOP_GRACE_MS  5000  /* at stop, how long an open transaction may take to commit */
#define MQ_FWD_STALL_MS       5000  /* records queued and none delivered this long: an outage */
#define MQ_FWD_BACKLOG_LOG    10000 /* a drained backlog this large is logged with its rate */

/* ---- settings ---- */

enum mq_err mq_fwd_new(struct mq_store *store, const char *site, const struct mq_config_forward *fc,
                       struct mq_fwd **out, char *errstr, size_t errstr_size)
{
    struct mq_fwd *f = calloc(1, sizeof *f);
    if (!f)
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    pthread_mutex_init(&f->mu, NULL);
    f->store = store;
    f->name = strdup(fc->name);
    f->site = strdup(site);
    f->site_len = strlen(site);
    f->to = strdup(fc->to ? fc->to : "{site}.{topic}");
    f->patterns = calloc(fc->ntopics ? fc->ntopics : 1, sizeof *f->patterns);
    f->signature = mq_fwd_signature(site, fc);
    bool ok = f->name && f->site && f->to && f->patterns && f->signature;
    for (size_t i = 0; ok && i < fc->ntopics; i++) {
        ok = (f->patterns[i] = strdup(fc->topics[i])) != NULL;
        f->npatterns += ok;
    }
    if (!ok) {
        mq_fwd_free(f);
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    f->partitioning = fc->partitioning;
    f->mode = fc->mode;
    f->start = fc->start;
    f->start_ms = fc->start_ms;
    f->max_bytes_per_s = fc->max_bytes_per_s;
    f->hold_retention = fc->hold_retention;
    snprintf(f->ckpt_name, sizeof f->ckpt_name, MQ_FWD_CKPT_PREFIX "%s", f->name);
    snprintf(f->state, sizeof f->state, "starting");
    atomic_init(&f->delivered_ms, mq_mono_ms());
    enum mq_err err = mq_fwd_conf_build(f, fc, errstr, errstr_size);
    if (err != MQ_OK) {
        mq_fwd_free(f);
        return err;
    }
    f->need_sync = true;
    *out = f;
    return MQ_OK;
}

bool mq_fwd_matches(const struct mq_fwd *f, const char *topic)
{
    for (size_t i = 0; i < f->npatterns; i++)
        if (fnmatch(f->patterns[i], topic, 0) == 0)
            return true;
    return false;
}

enum mq_err mq_fwd_remote_name(const char *tmpl, const char *site, const char *topic, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = tmpl; *p;) {
        const char *sub = NULL;
        if (strncmp(p, "{site}", 6) == 0) {
            sub = site;
            p += 6;
        } else if (strncmp(p, "{topic}", 7) == 0) {
            sub = topic;
            p += 7;
        }
        if (sub) {
            size_t l = strlen(sub);
            if (n + l >= size)
                return MQ_ERR_INVAL;
            memcpy(buf + n, sub, l);
            n += l;
        } else {
            if (n + 1 >= size)
                return MQ_ERR_INVAL;
            buf[n++] = *p++;
        }
    }
    buf[n] = '\0';
    return mq_topic_name_valid(buf) ? MQ_OK : MQ_ERR_INVAL;
}

/* ---- state ---- */

/* Sets the state line; logs it (and stores it in the catalog) when it changed. With `quiet` only the
 * catalog copy is updated, at most every MQ_FWD_CKPT_MS: an outage whose reason wording changes. */
static void mq_fwd_state(struct mq_fwd *f, bool quiet, const char *s)
{
    pthread_mutex_lock(&f->mu);
    bool same = strcmp(s, f->state) == 0;
    if (!same)
        snprintf(f->state, sizeof f->state, "%s", s);
    pthread_mutex_unlock(&f->mu);
    if (same || (quiet && mq_mono_ms() < f->next_state_ms))
        return;
    if (!quiet && strncmp(s, "delivering", 10) == 0)
        MQ_NOTICE("forward %s: %s", f->name, s);
    else if (!quiet)
        MQ_WARN("forward %s: %s", f->name, s);
    f->next_state_ms = mq_mono_ms() + MQ_FWD_CKPT_MS;
    mq_catalog_checkpoint_put(mq_store_catalog(f->store), f->ckpt_name, MQ_FWD_CKPT_STATE, s, strlen(s));
}

void mq_fwd_set_state(struct mq_fwd *f, const char *fmt, ...)
{
    char s[MQ_FWD_STATE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    mq_fwd_state(f, false, s);
}

/* An outage: the state names when it began and what failed; it is logged when it begins and when what
 * failed changes, not each time librdkafka words its reason differently. */
void mq_fwd_outage(struct mq_fwd *f, const char *what, const char *why)
{
    char since[32] = "", head[MQ_FWD_STATE_MAX];
    pthread_mutex_lock(&f->mu);
    bool ongoing = strncmp(f->state, "outage since ", 13) == 0;
    if (ongoing)
        sscanf(f->state + 13, "%31[^ ]", since);
    pthread_mutex_unlock(&f->mu);
    if (!ongoing) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    int n = snprintf(head, sizeof head, "outage since %s %s: ", since, what);
    pthread_mutex_lock(&f->mu);
    bool same_what = ongoing && strncmp(f->state, head, (size_t)n) == 0;
    pthread_mutex_unlock(&f->mu);
    char s[MQ_FWD_STATE_MAX];
    snprintf(s, sizeof s, "%s%s", head, why);
    mq_fwd_state(f, same_what, s);
}

/* ---- the producer ---- */

/* Waits ms (serving the producer's callbacks), or less when a stop is requested. */
static void mq_fwd_wait(struct mq_fwd *f, int64_t ms)
{
    int64_t until = mq_mono_ms() + ms;
    while (!atomic_load(&f->stop)) {
        int64_t left = until - mq_mono_ms();
        if (left <= 0)
            break;
        if (left > 100)
            left = 100;
        if (f->rk)
            rd_kafka_poll(f->rk, (int)left);
        else
            mq_sleep_ms(left);
    }
}

static void mq_fwd_backoff(struct mq_fwd *f)
{
    f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : MQ_FWD_BACKOFF_MIN_MS;
    if (f->backoff_ms > MQ_FWD_BACKOFF_MAX_MS)
        f->backoff_ms = MQ_FWD_BACKOFF_MAX_MS;
    mq_fwd_wait(f, f->backoff_ms);
}

/* Drops the producer: everything it had not delivered is forgotten, and the positions are read from the
 * remote cluster again. */
void mq_fwd_reset(struct mq_fwd *f)
{
    if (f->rk) {
        rd_kafka_purge(f->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(f->rk, 0);
        pthread_mutex_lock(&f->mu);
        for (size_t i = 0; i < f->ntopics; i++) {
            struct mq_fwd_topic *ft = f->topics[i];
            if (ft->rkt)
                rd_kafka_topic_destroy(ft->rkt);
            ft->rkt = NULL;
        }
        pthread_mutex_unlock(&f->mu);
        rd_kafka_destroy(f->rk);
        f->rk = NULL;
        atomic_fetch_add(&f->wire_bytes, atomic_exchange(&f->wire_bytes_cur, 0));
    }
    atomic_store(&f->fatal, false);
    f->txn_ready = false;
    f->txn_open = false;
    f->need_sync = true;
}

static enum mq_err mq_fwd_connect(struct mq_fwd *f)
{
    char why[512];
    rd_kafka_conf_t *c = rd_kafka_conf_dup(f->conf);
    f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, why, sizeof why);
    if (!f->rk) {
        rd_kafka_conf_destroy(c);
        mq_fwd_set_state(f, "error: cannot create the producer: %s", MQ_CLAUSE(why));
        return MQ_ERR_CONFIG;
    }
    return MQ_OK;
}

/* Sorts a transactional API error. Returns 0 retriable, 1 abortable, 2 fatal; destroys e. */
int mq_fwd_txn_error(struct mq_fwd *f, rd_kafka_error_t *e, const char *what)
{
    int kind = rd_kafka_error_is_retriable(e) ? 0 : rd_kafka_error_txn_requires_abort(e) ? 1 : 2;
    if (kind == 0) /* a timeout says little: librdkafka's last error says why (a name that does not
                      resolve, a refused connection, failed authentication) */
        mq_fwd_outage(f, what, f->last_error[0] ? f->last_error : MQ_CLAUSE(rd_kafka_error_string(e)));
    else
        MQ_WARN("forward %s: %s: %s (%s)", f->name, what, MQ_CLAUSE(rd_kafka_error_string(e)),
                kind == 1 ? "aborting the transaction" : "starting a new producer");
    rd_kafka_error_destroy(e);
    return kind;
}

static enum mq_err mq_fwd_init_txn(struct mq_fwd *f)
{
    rd_kafka_error_t *e = rd_kafka_init_transactions(f->rk, MQ_FWD_CALL_MS);
    if (!e) {
        f->txn_ready = true;
        return MQ_OK;
    }
    if (mq_fwd_txn_error(f, e, "initialising transactions") != 0)
        mq_fwd_reset(f);
    return MQ_ERR_TIMEDOUT;
}

static void mq_fwd_clear_txn(struct mq_fwd *f)
{
    f->txn_records = 0;
    f->txn_bytes = 0;
    for (size_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i]->nlocal; j++)
            f->topics[i]->parts[j]->in_txn = false;
    f->txn_open = false;
}

/* Aborts the open transaction (retrying while the cluster is unreachable), then asks for the positions to
 * be read from the remote tails again: what the aborted transaction wrote is not there for read_committed
 * readers (and where a cluster keeps it visible, the tail scan sees it, so nothing is sent twice). */
static void mq_fwd_abort(struct mq_fwd *f)
{
    atomic_fetch_add(&f->aborts, 1);
    int64_t deadline = mq_mono_ms() + MQ_FWD_STOP_GRACE_MS;
    while (f->rk) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(f->rk, MQ_FWD_CALL_MS);
        if (!e)
            break;
        if (mq_fwd_txn_error(f, e, "aborting a transaction") != 0 ||
            (atomic_load(&f->stop) && mq_mono_ms() >= deadline)) {
            mq_fwd_reset(f);
            break;
        }
        mq_fwd_backoff(f);
    }
    mq_fwd_clear_txn(f);
    f->need_sync = true;
}

static void mq_fwd_ckpt_put(struct mq_fwd *f, struct mq_fwd_part *p, int64_t value)
{
    if (value < 0 || value == p->ckpt_stored)
        return;
    char key[MQ_TOPIC_NAME_MAX + 16], val[24];
    snprintf(key, sizeof key, "%s:%" PRId32, p->ft->local, p->id);
    int n = snprintf(val, sizeof val, "%" PRId64, value);
    if (mq_catalog_checkpoint_put(mq_store_catalog(f->store), f->ckpt_name, key, val, (size_t)n) == MQ_OK)
        p->ckpt_stored = value;
}

static void mq_fwd_ckpt_all(struct mq_fwd *f)
{
    for (size_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i]->nlocal; j++) {
            struct mq_fwd_part *p = f->topics[i]->parts[j];
            mq_fwd_ckpt_put(f, p, atomic_load(&p->acked));
        }
    f->next_ckpt_ms = mq_mono_ms() + MQ_FWD_CKPT_MS;
}

/* Commits the open transaction. On success every record sent in it is on the remote cluster. */
void mq_fwd_commit(struct mq_fwd *f)
{
    int64_t deadline = mq_mono_ms() + MQ_FWD_STOP_GRACE_MS;
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_commit_transaction(f->rk, MQ_FWD_CALL_MS);
        if (!e)
            break;
        int kind = mq_fwd_txn_error(f, e, "committing a transaction");
        if (kind == 1) {
            mq_fwd_abort(f);
            return;
        }
        if (kind == 2 || (atomic_load(&f->stop) && mq_mono_ms() >= deadline)) {
            mq_fwd_reset(f);
            mq_fwd_clear_txn(f);
            return;
        }
        mq_fwd_backoff(f);
    }
    f->backoff_ms = 0;
    atomic_fetch_add(&f->txns, 1);
    atomic_fetch_add(&f->records_sent, f->txn_records);
    atomic_fetch_add(&f->bytes_sent, f->txn_bytes);
    f->last_delivery_ms = mq_mono_ms();
    atomic_store(&f->delivered_ms, f->last_delivery_ms);
    for (size_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i]->nlocal; j++) {
            struct mq_fwd_part *p = f->topics[i]->parts[j];
            if (p->in_txn)
                atomic_store(&p->acked, p->next);
            p->in_txn = false;
        }
    f->txn_open = false;
    f->txn_records = 0;
    f->txn_bytes = 0;
}

/* ---- discovery of local and remote topics ---- */

static void mq_fwd_topic_free(struct mq_fwd_topic *ft)
{
    if (!ft)
        return;
    for (int32_t j = 0; j < ft->nlocal; j++) {
        struct mq_fwd_part *p = ft->parts[j];
        mq_cursor_close(p->cur);
        free(p->fly);
        free(p->fly_done);
        free(p);
    }
    free(ft->parts);
    if (ft->rkt)
        rd_kafka_topic_destroy(ft->rkt);
    free(ft);
}

static struct mq_fwd_topic *mq_fwd_topic_new(struct mq_fwd *f, const struct mq_catalog_topic *t)
{
    struct mq_fwd_topic *ft = calloc(1, sizeof *ft);
    if (!ft)
        return NULL;
    snprintf(ft->local, sizeof ft->local, "%s", t->name);
    ft->local_len = strlen(ft->local);
    if (mq_fwd_remote_name(f->to, f->site, t->name, ft->remote, sizeof ft->remote) != MQ_OK)
        snprintf(ft->problem, sizeof ft->problem,
                 "remote topic name from \"%s\" for %s is not a valid topic name", f->to, t->name);
    ft->parts = calloc((size_t)t->partitions, sizeof *ft->parts);
    if (!ft->parts) {
        free(ft);
        return NULL;
    }
    for (int32_t j = 0; j < t->partitions; j++) {
        struct mq_fwd_part *p = calloc(1, sizeof *p);
        if (!p || mq_store_part(f->store, t->name, j, &p->part) != MQ_OK) {
            free(p);
            mq_fwd_topic_free(ft);
            return NULL;
        }
        p->ft = ft;
        p->id = j;
        snprintf(p->id_text, sizeof p->id_text, "%" PRId32, j);
        p->ckpt_stored = -1;
        atomic_init(&p->acked, -1);
        ft->parts[j] = p;
        ft->nlocal = j + 1;
    }
    return ft;
}

/* Makes sure ft's remote topic exists with enough partitions: creates it when missing (and the cluster
 * allows it). Returns MQ_ERR_TIMEDOUT when the cluster did not answer (an outage, not a topic problem). */
static enum mq_err mq_fwd_remote_check(struct mq_fwd *f, struct mq_fwd_topic *ft)
{
    if (!ft->rkt && !(ft->rkt = rd_kafka_topic_new(f->rk, ft->remote, NULL)))
        return MQ_ERR_NOMEM;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(f->rk, 0, ft->rkt, &md, MQ_FWD_CALL_MS);
    if (err) {
        mq_fwd_outage(f, "reading metadata", MQ_CLAUSE(rd_kafka_err2str(err)));
        return MQ_ERR_TIMEDOUT;
    }
    int32_t n = 0;
    rd_kafka_resp_err_t terr =
        md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!terr)
        n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || (!terr && n == 0)) {
        /* create it with the local partition count */
        char why[512] = "";
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(ft->remote, ft->nlocal, -1, why, sizeof why);
        rd_kafka_queue_t *q = rd_kafka_queue_new(f->rk);
        rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(f->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_request_timeout(opt, MQ_FWD_CALL_MS, NULL, 0);
        rd_kafka_CreateTopics(f->rk, &nt, 1, opt, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, MQ_FWD_CALL_MS + 1000);
        rd_kafka_resp_err_t cerr = RD_KAFKA_RESP_ERR__TIMED_OUT;
        const char *cwhy = "no answer";
        if (ev) {
            cerr = rd_kafka_event_error(ev);
            cwhy = rd_kafka_event_error_string(ev);
            const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
            size_t cnt = 0;
            const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
            if (!cerr && cnt == 1) {
                cerr = rd_kafka_topic_result_error(tr[0]);
                cwhy = rd_kafka_topic_result_error_string(tr[0]);
            }
        }
        if (!cerr || cerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            MQ_NOTICE("forward %s: created remote topic %s with %" PRId32 " partitions", f->name, ft->remote,
                      ft->nlocal);
            ft->problem[0] = '\0';
        } else {
            snprintf(ft->problem, sizeof ft->problem,
                     "remote topic %s does not exist and the cluster refused to create it: %s", ft->remote,
                     MQ_CLAUSE(cwhy ? cwhy : rd_kafka_err2str(cerr)));
        }
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opt);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        return MQ_OK; /* the next discovery reads its metadata */
    }
    if (terr) {
        snprintf(ft->problem, sizeof ft->problem, "remote topic %s: %s", ft->remote,
                 MQ_CLAUSE(rd_kafka_err2str(terr)));
        return MQ_OK;
    }
    if (f->partitioning == MQ_FWD_PART_SAME && n < ft->nlocal) {
        snprintf(ft->problem, sizeof ft->problem,
                 "remote topic %s has %" PRId32 " partition%s, fewer than the %" PRId32 " of local topic %s",
                 ft->remote, n, n == 1 ? "" : "s", ft->nlocal, ft->local);
        return MQ_OK;
    }
    ft->problem[0] = '\0';
    ft->nremote = n;
    return MQ_OK;
}

/* Picks up local topics that match the patterns, and checks remote topics not yet usable. */
static enum mq_err mq_fwd_discover(struct mq_fwd *f)
{
    f->next_discover_ms = mq_mono_ms() + MQ_FWD_DISCOVER_MS;
    struct mq_catalog_topic *all = NULL;
    size_t n = 0;
    enum mq_err err = mq_store_topic_list(f->store, &all, &n);
    if (err != MQ_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        if (!mq_fwd_matches(f, all[i].name))
            continue;
        size_t k = 0;
        while (k < f->ntopics && strcmp(f->topics[k]->local, all[i].name) != 0)
            k++;
        if (k < f->ntopics) {
            if (f->topics[k]->nlocal != all[i].partitions && !f->topics[k]->problem[0])
                MQ_WARN("forward %s: local topic %s now has %" PRId32
                        " partitions: the forwarder picks them up "
                        "at its next start",
                        f->name, all[i].name, all[i].partitions);
            continue;
        }
        struct mq_fwd_topic *ft = mq_fwd_topic_new(f, &all[i]);
        struct mq_fwd_topic **grown = ft ? realloc(f->topics, (f->ntopics + 1) * sizeof *grown) : NULL;
        if (!grown) {
            mq_fwd_topic_free(ft);
            free(all);
            return MQ_ERR_NOMEM;
        }
        pthread_mutex_lock(&f->mu);
        f->topics = grown;
        f->topics[f->ntopics++] = ft;
        pthread_mutex_unlock(&f->mu);
        MQ_INFO("forward %s: forwarding %s to %s", f->name, ft->local, ft->remote);
    }
    free(all);
    for (size_t i = 0; i < f->ntopics; i++) {
        struct mq_fwd_topic *ft = f->topics[i];
        if (ft->nremote > 0 || !mq_topic_name_valid(ft->remote))
            continue;
        err = mq_fwd_remote_check(f, ft);
        if (err != MQ_OK)
            return err;
        if (ft->nremote > 0)
            MQ_INFO("forward %s: remote topic %s has %" PRId32 " partitions", f->name, ft->remote,
                    ft->nremote);
    }
    return MQ_OK;
}

/* Takes the time of the deliveries reported since the last call (the delivery report callback only
 * counts them: a clock read per record costs as much as a tenth of its whole path). */
void mq_fwd_note_deliveries(struct mq_fwd *f)
{
    if (f->deliveries == f->deliveries_seen)
        return;
    f->deliveries_seen = f->deliveries;
    f->last_delivery_ms = mq_mono_ms();
    atomic_store(&f->delivered_ms, f->last_delivery_ms);
}

/* The state line after a round without errors: delivering, the first topic problem, or an outage when
 * records wait in librdkafka's queue and none was delivered for a while (at_least_once has no commit that
 * would tell). */
static void mq_fwd_state_ok(struct mq_fwd *f)
{
    mq_fwd_note_deliveries(f);
    int64_t now = mq_mono_ms();
    if (rd_kafka_outq_len(f->rk) == 0)
        f->queued_since_ms = 0;
    else if (f->queued_since_ms == 0)
        f->queued_since_ms = now;
    int64_t since = f->queued_since_ms > f->last_delivery_ms ? f->queued_since_ms : f->last_delivery_ms;
    if (f->queued_since_ms != 0 && now - since > MQ_FWD_STALL_MS) {
        mq_fwd_outage(f, "delivering", f->last_error[0] ? f->last_error : "no delivery reports");
        return;
    }
    f->backoff_ms = 0;
    for (size_t i = 0; i < f->ntopics; i++)
        if (f->topics[i]->problem[0]) {
            mq_fwd_set_state(f, "error: %s", f->topics[i]->problem);
            return;
        }
    mq_fwd_set_state(f, "delivering");
}

/* ---- the thread ---- */

/* Logs how fast a backlog of at least MQ_FWD_BACKLOG_LOG records drained, once the forwarder is caught up
 * (after a start, an outage, or a burst). */
static void mq_fwd_busy(struct mq_fwd *f, long n)
{
    if (n > 0 || (f->had_data && f->busy_since_ms != 0)) {
        if (f->busy_since_ms == 0)
            f->busy_since_ms = f->pump_start_ms; /* the backlog began with this round */
        f->busy_records += n;
        return;
    }
    if (f->busy_since_ms != 0 && f->busy_records >= MQ_FWD_BACKLOG_LOG) {
        double secs = (double)(mq_mono_ms() - f->busy_since_ms) / 1000;
        MQ_INFO("forward %s: caught up: %" PRId64 " records in %.2f s (%.0f records/s)", f->name,
                f->busy_records, secs, secs > 0 ? (double)f->busy_records / secs : 0.0);
    }
    f->busy_since_ms = 0;
    f->busy_records = 0;
}

/* One line of counters (wire bytes: as librdkafka last reported them, at most a second old). */
static void mq_fwd_log_totals(struct mq_fwd *f, const char *state)
{
    MQ_INFO("forward %s: %s; %" PRIu64 " records, %" PRIu64 " key and value bytes (%" PRIu64
            " bytes on the wire); %" PRIu64 " transactions, %" PRIu64 " aborted, %" PRIu64
            " tail scans; %" PRIu64 " records dropped unforwarded",
            f->name, state, atomic_load(&f->records_sent), atomic_load(&f->bytes_sent),
            atomic_load(&f->wire_bytes) + atomic_load(&f->wire_bytes_cur), atomic_load(&f->txns),
            atomic_load(&f->aborts), atomic_load(&f->syncs), atomic_load(&f->dropped));
}

/* True when a topic is ready to be forwarded but its resume positions have not been read yet. */
static bool mq_fwd_unsynced(const struct mq_fwd *f)
{
    for (size_t i = 0; i < f->ntopics; i++)
        if (!f->topics[i]->synced && f->topics[i]->nremote > 0)
            return true;
    return false;
}

static void mq_fwd_shutdown(struct mq_fwd *f)
{
    if (f->rk && f->mode == MQ_FWD_EXACTLY_ONCE && f->txn_open)
        mq_fwd_commit(f);
    if (f->rk && f->mode == MQ_FWD_AT_LEAST_ONCE) {
        int64_t deadline = mq_mono_ms() + MQ_FWD_STOP_GRACE_MS;
        while (rd_kafka_outq_len(f->rk) > 0 && mq_mono_ms() < deadline)
            rd_kafka_flush(f->rk, 100);
    }
    mq_fwd_ckpt_all(f);
    mq_fwd_reset(f);
}

static void *mq_fwd_main(void *arg)
{
    struct mq_fwd *f = arg;
    MQ_INFO("forward %s: started (%s to %s)", f->name,
            f->mode == MQ_FWD_EXACTLY_ONCE ? "exactly once" : "at least once", f->to);
    while (!atomic_load(&f->stop)) {
        if (!f->rk && mq_fwd_connect(f) != MQ_OK) {
            mq_fwd_backoff(f);
            continue;
        }
        if (f->mode == MQ_FWD_EXACTLY_ONCE && !f->txn_ready && mq_fwd_init_txn(f) != MQ_OK) {
            mq_fwd_backoff(f);
            continue;
        }
        if (mq_mono_ms() >= f->next_discover_ms && mq_fwd_discover(f) != MQ_OK) {
            mq_fwd_backoff(f);
            continue;
        }
        if (f->need_sync || mq_fwd_unsynced(f)) {
            char why[512] = "";
            if (mq_fwd_sync(f, why, sizeof why) != MQ_OK) {
                mq_fwd_outage(f, "reading the remote tails", why);
                mq_fwd_backoff(f);
                continue;
            }
            atomic_fetch_add(&f->syncs, 1);
            mq_fwd_ckpt_all(f);
        }
        if (atomic_load(&f->fatal)) {
            MQ_WARN("forward %s: %s: starting a new producer", f->name, f->last_error);
            mq_fwd_reset(f);
            continue;
        }
        long n = mq_fwd_pump(f);
        if (f->rewind)
            mq_fwd_rewind(f);
        else if (f->rk && !f->need_sync)
            mq_fwd_state_ok(f);
        mq_fwd_busy(f, n);
        if (mq_mono_ms() >= f->next_ckpt_ms)
            mq_fwd_ckpt_all(f);
        if (n == 0)
            mq_fwd_wait(f, MQ_FWD_IDLE_MS);
    }
    mq_fwd_shutdown(f);
    mq_fwd_log_totals(f, "stopped");
    return NULL;
}

enum mq_err mq_fwd_start(struct mq_fwd *f)
{
    int rc = pthread_create(&f->thread, NULL, mq_fwd_main, f);
    if (rc != 0)
        return mq_err_from_errno(rc);
    f->started = true;
    return MQ_OK;
}

void mq_fwd_free(struct mq_fwd *f)
{
    if (!f)
        return;
    if (f->started) {
        atomic_store(&f->stop, true);
        pthread_join(f->thread, NULL);
    }
    for (size_t i = 0; i < f->ntopics; i++)
        mq_fwd_topic_free(f->topics[i]);
    free(f->topics);
    if (f->conf)
        rd_kafka_conf_destroy(f->conf);
    if (f->cconf)
        rd_kafka_conf_destroy(f->cconf);
    for (size_t i = 0; i < f->npatterns; i++)
        free(f->patterns[i]);
    free(f->patterns);
    free(f->name);
    free(f->site);
    free(f->to);
    free(f->signature);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---- what other threads ask ---- */

int64_t mq_fwd_hold(struct mq_fwd *f, const char *topic, int32_t partition)
{
    if (!f->hold_retention || !mq_fwd_matches(f, topic))
        return INT64_MAX;
    int64_t hold = 0; /* a matching topic not picked up yet: everything is unforwarded */
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->ntopics; i++) {
        struct mq_fwd_topic *ft = f->topics[i];
        if (strcmp(ft->local, topic) == 0 && partition < ft->nlocal) {
            int64_t acked = atomic_load(&ft->parts[partition]->acked);
            hold = acked < 0 ? 0 : acked;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return hold;
}

void mq_fwd_log_stats(struct mq_fwd *f)
{
    pthread_mutex_lock(&f->mu);
    mq_fwd_log_totals(f, f->state);
    for (size_t i = 0; i < f->ntopics; i++) {
        struct mq_fwd_topic *ft = f->topics[i];
        for (int32_t j = 0; j < ft->nlocal; j++) {
            struct mq_part_stats st;
            int64_t acked = atomic_load(&ft->parts[j]->acked);
            if (mq_part_stats(ft->parts[j]->part, &st) != MQ_OK)
                continue;
            MQ_INFO("forward %s: %s/%" PRId32 " -> %s: forwarded up to %" PRId64 " of %" PRId64 ", %" PRId64
                    " records behind",
                    f->name, ft->local, j, ft->remote, acked, st.end_offset,
                    acked < 0 ? st.end_offset - st.start_offset : st.end_offset - acked);
        }
    }
    pthread_mutex_unlock(&f->mu);
}
