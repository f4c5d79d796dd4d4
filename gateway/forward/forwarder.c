/*
 * forwarder.c - one forwarder: its librdkafka producer, its thread, and the loop that reads the local
 * partitions with the log's cursor and sends their records, in transactions (exactly_once) or as an
 * idempotent stream whose delivery reports advance the checkpoint (at_least_once).
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
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward/forward_int.h"
#include "route/placement.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_FWD_TXN_MS         500  /* a transaction gathers records this long while there is a backlog */
#define MQ_FWD_CALL_MS        5000 /* timeout of one blocking librdkafka call */
#define MQ_FWD_DISCOVER_MS    2000 /* how often new local topics and remote topic problems are looked at */
#define MQ_FWD_CKPT_MS        1000 /* checkpoints are written at most this often */
#define MQ_FWD_BACKOFF_MIN_MS 200
#define MQ_FWD_BACKOFF_MAX_MS 5000
#define MQ_FWD_IDLE_MS        10    /* wait for new records this long when every partition is caught up */
#define MQ_FWD_STOP_GRACE_MS  5000  /* at stop, how long an open transaction may take to commit */
#define MQ_FWD_STALL_MS       5000  /* records queued and none delivered this long: an outage */
#define MQ_FWD_BACKLOG_LOG    10000 /* a drained backlog this large is logged with its rate */
/* librdkafka's queue and batches bound the forwarder's memory: a queued record of the edge (a small value
 * and five headers) costs about 1 KiB in librdkafka, so its default of 100,000 queued messages alone would be
 * ~100 MiB. These keep a forwarder under 16 MiB (tests/bench/forward) at no cost in rate. */
#define MQ_FWD_QUEUE_KBYTES   "4096"
#define MQ_FWD_QUEUE_MESSAGES "5000"
#define MQ_FWD_BATCH_BYTES    "262144"

/* ---- settings ---- */

static char *mq_strdup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

static enum mq_err mq_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                               size_t errstr_size)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK)
        return mq_errf(MQ_ERR_CONFIG, errstr, errstr_size, "%s: %s", name, why);
    return MQ_OK;
}

/* librdkafka's own log lines: debug level (the forwarder logs state changes itself). */
static void mq_fwd_rdk_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)level;
    MQ_DEBUG("forward %s: librdkafka %s: %s", rd_kafka_name(rk), fac, buf);
}

static void mq_fwd_rdk_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct mq_fwd *f = opaque;
    snprintf(f->last_error, sizeof f->last_error, "%s", reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        snprintf(f->last_error, sizeof f->last_error, "fatal: %.400s", why);
        atomic_store(&f->fatal, true);
    }
}

static void mq_fwd_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* librdkafka's statistics (JSON, every statistics.interval.ms): the producer's bytes on the wire. */
static int mq_fwd_rdk_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)len;
    struct mq_fwd *f = opaque;
    const char *p = strstr(json, "\"tx_bytes\":");
    if (p && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) /* per producer: a new one starts again from 0 */
        atomic_store(&f->wire_bytes_cur, (uint64_t)strtoll(p + 11, NULL, 10));
    return 0; /* librdkafka frees json */
}

/* The settings both the producer and the tail-scan consumer need: cluster, client id, TLS, SASL. */
static enum mq_err mq_fwd_conf_common(rd_kafka_conf_t *conf, struct mq_fwd *f,
                                      const struct mq_config_forward *fc, const char *password, char *errstr,
                                      size_t errstr_size)
{
    char client_id[256];
    snprintf(client_id, sizeof client_id, "mqlog-%s-%s", f->site, f->name);
    enum mq_err err = mq_conf_set(conf, "bootstrap.servers", fc->bootstrap, errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(conf, "client.id", client_id, errstr, errstr_size);
    const char *proto = fc->tls ? (fc->sasl.mechanism ? "sasl_ssl" : "ssl")
                                : (fc->sasl.mechanism ? "sasl_plaintext" : "plaintext");
    if (err == MQ_OK)
        err = mq_conf_set(conf, "security.protocol", proto, errstr, errstr_size);
    if (err == MQ_OK && fc->tls) {
        if (fc->tls_opts.ca)
            err = mq_conf_set(conf, "ssl.ca.location", fc->tls_opts.ca, errstr, errstr_size);
        if (err == MQ_OK && fc->tls_opts.cert)
            err = mq_conf_set(conf, "ssl.certificate.location", fc->tls_opts.cert, errstr, errstr_size);
        if (err == MQ_OK && fc->tls_opts.key)
            err = mq_conf_set(conf, "ssl.key.location", fc->tls_opts.key, errstr, errstr_size);
        if (err == MQ_OK && fc->tls_opts.insecure)
            err = mq_conf_set(conf, "enable.ssl.certificate.verification", "false", errstr, errstr_size);
    }
    if (err == MQ_OK && fc->sasl.mechanism) {
        err = mq_conf_set(conf, "sasl.mechanisms", fc->sasl.mechanism, errstr, errstr_size);
        if (err == MQ_OK)
            err = mq_conf_set(conf, "sasl.username", fc->sasl.username, errstr, errstr_size);
        if (err == MQ_OK)
            err = mq_conf_set(conf, "sasl.password", password ? password : "", errstr, errstr_size);
    }
    /* A forwarder should notice a cluster that is back within a second, not librdkafka's 10 s. */
    if (err == MQ_OK)
        err = mq_conf_set(conf, "reconnect.backoff.max.ms", "1000", errstr, errstr_size);
    rd_kafka_conf_set_log_cb(conf, mq_fwd_rdk_log);
    rd_kafka_conf_set_error_cb(conf, mq_fwd_rdk_error);
    rd_kafka_conf_set_opaque(conf, f);
    return err;
}

static enum mq_err mq_fwd_conf_build(struct mq_fwd *f, const struct mq_config_forward *fc, char *errstr,
                                     size_t errstr_size)
{
    char *password = NULL;
    enum mq_err perr = mq_config_sasl_password(&fc->sasl, &password, errstr, errstr_size);
    if (perr != MQ_OK)
        return perr;
    f->conf = rd_kafka_conf_new();
    f->cconf = rd_kafka_conf_new();
    enum mq_err err = mq_fwd_conf_common(f->conf, f, fc, password, errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_fwd_conf_common(f->cconf, f, fc, password, errstr, errstr_size);
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    /* The producer. */
    rd_kafka_conf_t *c = f->conf;
    if (err == MQ_OK)
        err = mq_conf_set(c, "compression.codec", fc->compression ? fc->compression : "zstd", errstr,
                          errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "allow.auto.create.topics", "false", errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "queue.buffering.max.kbytes", MQ_FWD_QUEUE_KBYTES, errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "queue.buffering.max.messages", MQ_FWD_QUEUE_MESSAGES, errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "batch.size", MQ_FWD_BATCH_BYTES, errstr, errstr_size);
    /* The operator's pass-through properties override the defaults above; the config loader refuses the
     * ones that would change what the forwarder depends on (below). */
    for (size_t i = 0; err == MQ_OK && i < fc->nprops; i++)
        err = mq_conf_set(c, fc->prop_names[i], fc->prop_values[i], errstr, errstr_size);
    if (err == MQ_OK && fc->mode == MQ_FWD_EXACTLY_ONCE) {
        char tid[512];
        snprintf(tid, sizeof tid, "mqlog.%s.%s", f->site, f->name);
        err = mq_conf_set(c, "transactional.id", tid, errstr, errstr_size);
        /* Delivery reports stay on although the commit is what counts: with them this thread frees the
         * messages it allocated. With delivery.report.only.error librdkafka's broker thread frees them into
         * this thread's malloc arena, and the contention on it cut the rate to a fifth
         * (tests/bench/forward: 265,000 against 1,280,000 records/s). */
    } else if (err == MQ_OK) {
        err = mq_conf_set(c, "enable.idempotence", "true", errstr, errstr_size);
        /* A failed delivery is sent again from the log, so librdkafka need not give up early either way;
         * but it must never drop a record silently: no timeout at all. */
        if (err == MQ_OK)
            err = mq_conf_set(c, "message.timeout.ms", "0", errstr, errstr_size);
    }
    if (err == MQ_OK)
        err = mq_conf_set(c, "statistics.interval.ms", "1000", errstr, errstr_size);
    if (err == MQ_OK) {
        rd_kafka_conf_set_dr_msg_cb(c, mq_fwd_delivered);
        rd_kafka_conf_set_stats_cb(c, mq_fwd_rdk_stats);
    }
    /* The tail scan: committed data only, no group offsets, an end-of-partition event. */
    c = f->cconf;
    char group[512];
    snprintf(group, sizeof group, "mqlog.%s.%s.tail", f->site, f->name);
    if (err == MQ_OK)
        err = mq_conf_set(c, "group.id", group, errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "isolation.level", "read_committed", errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "enable.auto.commit", "false", errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "enable.partition.eof", "true", errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "queued.max.messages.kbytes", "2048", errstr, errstr_size);
    if (err == MQ_OK)
        err = mq_conf_set(c, "fetch.max.bytes", "1048576", errstr, errstr_size);
    /* The consumer takes the operator's properties too (socket and broker settings matter to both);
     * producer-only ones are ignored by a consumer (librdkafka logs that at debug level). */
    for (size_t i = 0; err == MQ_OK && i < fc->nprops; i++)
        err = mq_conf_set(c, fc->prop_names[i], fc->prop_values[i], errstr, errstr_size);
    return err;
}

/* Every setting, as text, so that a reload can tell whether anything changed. */
static char *mq_fwd_signature(const char *site, const struct mq_config_forward *fc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    fprintf(m, "site=%s\nname=%s\nbootstrap=%s\nto=%s\n", site, fc->name, fc->bootstrap, fc->to);
    for (size_t i = 0; i < fc->ntopics; i++)
        fprintf(m, "topic=%s\n", fc->topics[i]);
    fprintf(m, "part=%d\nmode=%d\nstart=%d/%" PRId64 "\ncomp=%s\nrate=%" PRId64 "\nhold=%d\n",
            fc->partitioning, fc->mode, fc->start, fc->start_ms, fc->compression ? fc->compression : "",
            fc->max_bytes_per_s, fc->hold_retention);
    fprintf(m, "tls=%d ca=%s cert=%s key=%s insecure=%d\n", fc->tls, fc->tls_opts.ca ? fc->tls_opts.ca : "",
            fc->tls_opts.cert ? fc->tls_opts.cert : "", fc->tls_opts.key ? fc->tls_opts.key : "",
            fc->tls_opts.insecure);
    fprintf(m, "sasl=%s user=%s pwfile=%s\n", fc->sasl.mechanism ? fc->sasl.mechanism : "",
            fc->sasl.username ? fc->sasl.username : "", fc->sasl.password_file ? fc->sasl.password_file : "");
    for (size_t i = 0; i < fc->nprops; i++)
        fprintf(m, "prop %s=%s\n", fc->prop_names[i], fc->prop_values[i]);
    if (fclose(m) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

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
    f->to = mq_strdup0(fc->to ? fc->to : "{site}.{topic}");
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
static void mq_fwd_outage(struct mq_fwd *f, const char *what, const char *why)
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
static void mq_fwd_reset(struct mq_fwd *f)
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
        mq_fwd_set_state(f, "error: cannot create the producer: %s", why);
        return MQ_ERR_CONFIG;
    }
    return MQ_OK;
}

/* Sorts a transactional API error. Returns 0 retriable, 1 abortable, 2 fatal; destroys e. */
static int mq_fwd_txn_error(struct mq_fwd *f, rd_kafka_error_t *e, const char *what)
{
    int kind = rd_kafka_error_is_retriable(e) ? 0 : rd_kafka_error_txn_requires_abort(e) ? 1 : 2;
    if (kind == 0) /* a timeout says little: librdkafka's last error says why (a name that does not
                      resolve, a refused connection, failed authentication) */
        mq_fwd_outage(f, what, f->last_error[0] ? f->last_error : rd_kafka_error_string(e));
    else
        MQ_WARN("forward %s: %s: %s (%s)", f->name, what, rd_kafka_error_string(e),
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
static void mq_fwd_commit(struct mq_fwd *f)
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

/* ---- at_least_once: delivery reports ---- */

static bool mq_fwd_fly_push(struct mq_fwd_part *p, int64_t offset)
{
    if (p->fly_len == p->fly_cap) {
        size_t cap = p->fly_cap ? p->fly_cap * 2 : 1024;
        int64_t *fly = malloc(cap * sizeof *fly);
        uint8_t *done = malloc(cap);
        if (!fly || !done) {
            free(fly);
            free(done);
            return false;
        }
        for (size_t i = 0; i < p->fly_len; i++) {
            fly[i] = p->fly[(p->fly_head + i) % p->fly_cap];
            done[i] = p->fly_done[(p->fly_head + i) % p->fly_cap];
        }
        free(p->fly);
        free(p->fly_done);
        p->fly = fly;
        p->fly_done = done;
        p->fly_cap = cap;
        p->fly_head = 0;
    }
    size_t at = (p->fly_head + p->fly_len) % p->fly_cap;
    p->fly[at] = offset;
    p->fly_done[at] = 0;
    p->fly_len++;
    return true;
}

/* Marks offset delivered and advances acked over the delivered prefix. */
static void mq_fwd_fly_done(struct mq_fwd_part *p, int64_t offset)
{
    size_t lo = 0, hi = p->fly_len; /* the ring holds increasing offsets: binary search */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->fly[(p->fly_head + mid) % p->fly_cap] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->fly_len || p->fly[(p->fly_head + lo) % p->fly_cap] != offset)
        return; /* a report from before a rewind */
    p->fly_done[(p->fly_head + lo) % p->fly_cap] = 1;
    while (p->fly_len > 0 && p->fly_done[p->fly_head]) {
        atomic_store(&p->acked, p->fly[p->fly_head] + 1);
        p->fly_head = (p->fly_head + 1) % p->fly_cap;
        p->fly_len--;
    }
}

int64_t mq_fwd_header_int(rd_kafka_headers_t *h, const char *name)
{
    const void *v;
    size_t n;
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v || n == 0 ||
        n > 20)
        return -1;
    char buf[24];
    memcpy(buf, v, n);
    buf[n] = '\0';
    int64_t x;
    return mq_parse_int64(buf, 0, INT64_MAX, &x) == MQ_OK ? x : -1;
}

/* Runs on the forwarder's thread, from rd_kafka_poll() and the transactional calls. */
static void mq_fwd_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct mq_fwd *f = opaque;
    struct mq_fwd_part *p = m->_private;
    if (m->err) {
        snprintf(f->last_error, sizeof f->last_error, "delivery failed: %s", rd_kafka_err2str(m->err));
        if (f->mode == MQ_FWD_AT_LEAST_ONCE)
            f->rewind = true; /* exactly_once: the commit fails and the transaction is aborted */
        return;
    }
    f->last_delivery_ms = mq_mono_ms();
    if (f->mode == MQ_FWD_EXACTLY_ONCE)
        return; /* counted at commit: a delivered record of an aborted transaction is not forwarded */
    atomic_fetch_add(&f->records_sent, 1);
    atomic_fetch_add(&f->bytes_sent, m->len + m->key_len);
    if (p) {
        rd_kafka_headers_t *h = NULL;
        int64_t off = rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR
                          ? mq_fwd_header_int(h, "mqlog.offset")
                          : -1;
        if (off >= 0)
            mq_fwd_fly_done(p, off);
    }
}

/* After a failed delivery: wait until nothing is in flight, then resend everything after the delivered
 * prefix of each partition. */
static void mq_fwd_rewind(struct mq_fwd *f)
{
    while (f->rk && rd_kafka_outq_len(f->rk) > 0 && !atomic_load(&f->stop))
        rd_kafka_flush(f->rk, 100);
    for (size_t i = 0; i < f->ntopics; i++)
        for (int32_t j = 0; j < f->topics[i]->nlocal; j++) {
            struct mq_fwd_part *p = f->topics[i]->parts[j];
            int64_t acked = atomic_load(&p->acked);
            if (acked >= 0 && p->next != acked) {
                p->next = acked;
                if (p->cur)
                    mq_cursor_seek(p->cur, acked);
            }
            p->fly_head = p->fly_len = 0;
        }
    mq_fwd_outage(f, "delivering", f->last_error);
    f->rewind = false;
}

/* ---- reading and sending ---- */

/* Takes bytes from the max_bytes_per_s bucket, waiting until it holds them. */
static void mq_fwd_pace(struct mq_fwd *f, size_t bytes)
{
    if (f->max_bytes_per_s <= 0)
        return;
    /* Half a second worth: what a commit's pause leaves unsent is sent after it, so the rate holds over a
     * few seconds, while no burst exceeds the cap by more than that. */
    double burst = (double)f->max_bytes_per_s / 2;
    for (;;) {
        int64_t now = mq_mono_us();
        if (f->tokens_at_us == 0)
            f->tokens_at_us = now;
        f->tokens += (double)(now - f->tokens_at_us) * (double)f->max_bytes_per_s / 1e6;
        f->tokens_at_us = now;
        if (f->tokens > burst)
            f->tokens = burst;
        if (f->tokens >= (double)bytes || f->tokens >= burst || atomic_load(&f->stop))
            break;
        int64_t ms = (int64_t)(((double)bytes - f->tokens) * 1000 / (double)f->max_bytes_per_s) + 1;
        rd_kafka_poll(f->rk, (int)(ms > 50 ? 50 : ms));
    }
    f->tokens -= (double)bytes;
}

/* Writes v in decimal at the end of buf[0..size) and returns where it starts (no snprintf per record). */
static const char *mq_fwd_itoa(int64_t v, char *buf, size_t size)
{
    char *p = buf + size;
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    return p;
}

/* The record's own headers, then its coordinates at the edge. *bytes gets the record's size as
 * max_bytes_per_s counts it: key, value, and every header's name and value, before compression. */
static rd_kafka_headers_t *mq_fwd_headers(struct mq_fwd *f, struct mq_fwd_part *p,
                                          const struct mq_record_view *rv, size_t *bytes)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new((size_t)rv->header_count + 4);
    size_t n = (size_t)(rv->key_len > 0 ? rv->key_len : 0) + (size_t)(rv->value_len > 0 ? rv->value_len : 0);
    const uint8_t *cur = rv->headers;
    struct mq_header hd;
    while (mq_header_next(&cur, rv->headers_end, &hd) > 0) {
        rd_kafka_header_add(h, hd.key, hd.key_len, hd.value_len < 0 ? NULL : hd.value,
                            hd.value_len < 0 ? 0 : hd.value_len);
        n += (size_t)hd.key_len + (size_t)(hd.value_len > 0 ? hd.value_len : 0);
    }
    char num[24];
    const char *off = mq_fwd_itoa(rv->offset, num, sizeof num);
    size_t off_len = (size_t)(num + sizeof num - off), id_len = strlen(p->id_text);
    rd_kafka_header_add(h, "mqlog.site", 10, f->site, (ssize_t)f->site_len);
    rd_kafka_header_add(h, "mqlog.topic", 11, p->ft->local, (ssize_t)p->ft->local_len);
    rd_kafka_header_add(h, "mqlog.partition", 15, p->id_text, (ssize_t)id_len);
    rd_kafka_header_add(h, "mqlog.offset", 12, off, (ssize_t)off_len);
    *bytes = n + 10 + f->site_len + 11 + p->ft->local_len + 15 + id_len + 12 + off_len;
    return h;
}

/* Produces one record with headers h. Returns 0 when librdkafka took it (and h with it),
 * RD_KAFKA_RESP_ERR__QUEUE_FULL when its queue is full (try again after polling), another error otherwise
 * (h stays the caller's either way). */
static rd_kafka_resp_err_t mq_fwd_produce(struct mq_fwd *f, struct mq_fwd_part *p,
                                          const struct mq_record_view *rv, rd_kafka_headers_t *h)
{
    struct mq_fwd_topic *ft = p->ft;
    if (!ft->rkt) {
        ft->rkt = rd_kafka_topic_new(f->rk, ft->remote, NULL);
        if (!ft->rkt)
            return rd_kafka_last_error();
    }
    int32_t partition = p->id % ft->nremote;
    if (f->partitioning == MQ_FWD_PART_KEY && rv->key_len >= 0)
        partition = mq_partition_for_key(rv->key, (size_t)rv->key_len, ft->nremote);
    const void *key = rv->key_len < 0 ? NULL : rv->key; /* null stays null, empty stays empty */
    size_t key_len = rv->key_len < 0 ? 0 : (size_t)rv->key_len;
    void *value = rv->value_len < 0 ? NULL : (void *)rv->value;
    size_t value_len = rv->value_len < 0 ? 0 : (size_t)rv->value_len;
    rd_kafka_resp_err_t err =
        rd_kafka_producev(f->rk, RD_KAFKA_V_RKT(ft->rkt), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_TIMESTAMP(rv->timestamp),
                          RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
    return err;
}

/* Opens p's cursor at p->next; a position retention already removed is reported and skipped. */
static enum mq_err mq_fwd_open_cursor(struct mq_fwd *f, struct mq_fwd_part *p)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        enum mq_err err = mq_cursor_open(p->part, p->next, &p->cur);
        if (err != MQ_ERR_RANGE)
            return err;
        int64_t start, end;
        err = mq_part_offsets(p->part, &start, &end);
        if (err != MQ_OK)
            return err;
        if (p->next < start) {
            int64_t lost = start - p->next;
            p->dropped += lost;
            atomic_fetch_add(&f->dropped, (uint64_t)lost);
            MQ_ERROR("forward %s: %s/%" PRId32 ": %" PRId64 " records (offsets %" PRId64 "..%" PRId64
                     ") were deleted from the local log before they were forwarded",
                     f->name, p->ft->local, p->id, lost, p->next, start - 1);
            p->next = start;
        } else if (p->next > end) {
            MQ_ERROR("forward %s: %s/%" PRId32 ": the remote cluster holds offsets up to %" PRId64
                     " but the local log ends at %" PRId64 ": continuing at the local end",
                     f->name, p->ft->local, p->id, p->next - 1, end);
            p->next = end;
        }
        atomic_store(&p->acked, p->next);
    }
    return MQ_ERR_RANGE;
}

/* True when p has records after p->next. */
static bool mq_fwd_has_data(struct mq_fwd_part *p)
{
    if (p->cur && mq_cursor_buffered(p->cur))
        return true;
    int64_t start, end;
    return mq_part_offsets(p->part, &start, &end) == MQ_OK && (end > p->next || start > p->next);
}

/*
 * Sends up to `budget` records of p. Returns how many were sent; sets *halt when the caller must end this
 * round (a full queue that did not drain, a producer error).
 */
static long mq_fwd_send_part(struct mq_fwd *f, struct mq_fwd_part *p, long budget, int64_t deadline,
                             bool *halt)
{
    if (!p->cur) {
        enum mq_err err = mq_fwd_open_cursor(f, p);
        if (err != MQ_OK) {
            MQ_ERROR("forward %s: %s/%" PRId32 ": cannot read offset %" PRId64 ": %s", f->name, p->ft->local,
                     p->id, p->next, mq_strerror(err));
            return 0;
        }
    }
    long sent = 0;
    /* The deadline ends the transaction's round even when every record fits the queue: with
     * max_bytes_per_s the pacing, not a full queue, is what takes the time. */
    while (sent < budget && !atomic_load(&f->stop) && mq_mono_ms() < deadline) {
        struct mq_record_view rv;
        int rc = mq_cursor_next(p->cur, &rv);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (-rc == MQ_ERR_RANGE) { /* retention went past us: reopen, which reports the loss */
                mq_cursor_close(p->cur);
                p->cur = NULL;
                break;
            }
            const struct mq_cursor_fault *fault = mq_cursor_fault(p->cur);
            MQ_ERROR("forward %s: %s/%" PRId32 ": %s at %s:%" PRId64 ": not forwarding past offset %" PRId64,
                     f->name, p->ft->local, p->id, fault->what, fault->path, fault->position, p->next);
            break;
        }
        if (f->mode == MQ_FWD_EXACTLY_ONCE && !f->txn_open) {
            rd_kafka_error_t *e = rd_kafka_begin_transaction(f->rk);
            if (e) {
                mq_fwd_txn_error(f, e, "beginning a transaction");
                mq_fwd_reset(f);
                *halt = true;
                return sent;
            }
            f->txn_open = true;
        }
        size_t bytes;
        rd_kafka_headers_t *h = mq_fwd_headers(f, p, &rv, &bytes);
        mq_fwd_pace(f, bytes);
        rd_kafka_resp_err_t err;
        while ((err = mq_fwd_produce(f, p, &rv, h)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(f->rk, 10); /* a delivery report wakes it as soon as the queue has room */
            if (atomic_load(&f->stop) || f->rewind || atomic_load(&f->fatal) || mq_mono_ms() >= deadline)
                break;
        }
        if (err) {
            rd_kafka_headers_destroy(h);
            mq_cursor_seek(p->cur, rv.offset); /* not sent: read it again next round */
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                snprintf(f->last_error, sizeof f->last_error, "produce: %s", rd_kafka_err2str(err));
                if (f->mode == MQ_FWD_AT_LEAST_ONCE)
                    f->rewind = true;
            }
            *halt = true;
            return sent;
        }
        p->next = rv.offset + 1;
        p->in_txn = true;
        f->txn_records++;
        f->txn_bytes +=
            (uint64_t)(rv.key_len > 0 ? rv.key_len : 0) + (uint64_t)(rv.value_len > 0 ? rv.value_len : 0);
        if (f->mode == MQ_FWD_AT_LEAST_ONCE && !mq_fwd_fly_push(p, rv.offset)) {
            f->rewind = true; /* out of memory for the bookkeeping: resend rather than lose track */
            *halt = true;
            return sent;
        }
        sent++;
    }
    return sent;
}

/* One round over every usable partition: sends what is there (a transaction's worth in exactly_once
 * mode, then commits). Returns the number of records sent. */
static long mq_fwd_pump(struct mq_fwd *f)
{
    f->pump_start_ms = mq_mono_ms();
    int64_t deadline = f->pump_start_ms + MQ_FWD_TXN_MS;
    long total = 0;
    f->had_data = false;
    bool more = true;
    while (more && !atomic_load(&f->stop) && mq_mono_ms() < deadline && !f->rewind &&
           !atomic_load(&f->fatal)) {
        more = false;
        for (size_t i = 0; i < f->ntopics && f->rk; i++) {
            struct mq_fwd_topic *ft = f->topics[i];
            if (ft->nremote == 0 || !ft->synced)
                continue;
            for (int32_t j = 0; j < ft->nlocal; j++) {
                struct mq_fwd_part *p = ft->parts[j];
                if (!mq_fwd_has_data(p))
                    continue;
                f->had_data = true;
                bool halt = false;
                long n = mq_fwd_send_part(f, p, 10000, deadline, &halt);
                total += n;
                more |= n > 0;
                if (halt) {
                    more = false;
                    i = f->ntopics;
                    break;
                }
            }
        }
        if (f->rk)
            rd_kafka_poll(f->rk, 0);
    }
    if (f->mode == MQ_FWD_EXACTLY_ONCE && f->txn_open && f->rk) {
        if (atomic_load(&f->fatal))
            mq_fwd_reset(f);
        else
            mq_fwd_commit(f);
    }
    return total;
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
        mq_fwd_outage(f, "reading metadata", rd_kafka_err2str(err));
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
        if (!cwhy)
            cwhy = rd_kafka_err2str(cerr);
        if (!cerr || cerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            MQ_NOTICE("forward %s: created remote topic %s with %" PRId32 " partitions", f->name, ft->remote,
                      ft->nlocal);
            ft->problem[0] = '\0';
        } else {
            snprintf(ft->problem, sizeof ft->problem,
                     "remote topic %s does not exist and the cluster refused to create it: %s", ft->remote,
                     cwhy);
        }
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opt);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        return MQ_OK; /* the next discovery reads its metadata */
    }
    if (terr) {
        snprintf(ft->problem, sizeof ft->problem, "remote topic %s: %s", ft->remote, rd_kafka_err2str(terr));
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

/* The state line after a round without errors: delivering, the first topic problem, or an outage when
 * records wait in librdkafka's queue and none was delivered for a while (at_least_once has no commit that
 * would tell). */
static void mq_fwd_state_ok(struct mq_fwd *f)
{
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
