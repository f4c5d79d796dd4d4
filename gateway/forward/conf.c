/*
 * conf.c - a forwarder's librdkafka settings, built once from its configuration: the cluster, client id, TLS
 * and SASL both the producer and the tail-scan consumer need; the producer's defaults (compression, queue
 * bounds, transactional.id or idempotence); the read_committed consumer of the tail scan; and the
 * operator's pass-through properties on top (the config loader has already refused the ones the forwarder
 * depends on). Also the settings' signature a reload compares.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/forward_int.h"
#include "util/diag.h"

/* librdkafka's queue and batches bound the forwarder's memory: a queued record of the edge (a small value
 * and five headers) costs about 1 KiB in librdkafka, so its default of 100,000 queued messages alone would be
 * ~100 MiB. These keep a forwarder under 16 MiB (tests/bench/forward) at no cost in rate. */
#define MQ_FWD_QUEUE_KBYTES   "4096"
#define MQ_FWD_QUEUE_MESSAGES "5000"
#define MQ_FWD_BATCH_BYTES    "262144"
/* While a backlog drains the queue refills a little after each delivery report, and librdkafka's default
 * linger of 5 ms sent the partial batches that had formed by then: 20 ms lets them fill, which cost 15% less
 * CPU per record (tests/bench/forward). The latency it adds is small next to a transaction's 500 ms. */
#define MQ_FWD_LINGER_MS "20"

static enum mq_err mq_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                               size_t errstr_size)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK)
        return mq_errf(MQ_ERR_CONFIG, errstr, errstr_size, "%s: %s", name, MQ_CLAUSE(why));
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
    mq_clause(reason, f->last_error, sizeof f->last_error);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        snprintf(f->last_error, sizeof f->last_error, "fatal: %.400s", MQ_CLAUSE(why));
        atomic_store(&f->fatal, true);
    }
}

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

enum mq_err mq_fwd_conf_build(struct mq_fwd *f, const struct mq_config_forward *fc, char *errstr,
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
    if (err == MQ_OK)
        err = mq_conf_set(c, "linger.ms", MQ_FWD_LINGER_MS, errstr, errstr_size);
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
char *mq_fwd_signature(const char *site, const struct mq_config_forward *fc)
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
