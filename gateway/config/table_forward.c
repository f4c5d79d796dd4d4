/*
 * table_forward.c - the keys of a forwarder (forward[]) and of its TLS and SASL sections, with the enums
 * they use, the librdkafka properties the forwarder owns and therefore refuses as pass-through properties,
 * and the checks that ask this librdkafka build whether it accepts what the keys derive.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "config/table.h"

/* ---- forward[].tls, forward[].sasl ---- */

/* The same keys and rule as a broker's tls section: a Kafka cluster's certificates are files alike. */
static const struct mq_csection mq_csection_forward_tls = {
    .name = "forward[].tls",
    .what = "a forwarder's tls section",
    .doc = "TLS towards the Kafka cluster (librdkafka's security.protocol SSL, or SASL_SSL with sasl); the "
           "keys are those of brokers[].tls. An empty section (`tls: {}`) turns TLS on with the system's "
           "trust store.",
    .keys = mq_keys_tls,
    .check = mq_tls_check,
};

static const struct mq_cenum mq_enum_sasl[] = {
    {"PLAIN", 0},
    {"SCRAM-SHA-256", 0},
    {"SCRAM-SHA-512", 0},
    {NULL, 0},
};

#define SASLK(field) offsetof(struct mq_config_sasl, field)

static const struct mq_ckey mq_keys_sasl[] = {
    {.name = "mechanism",
     .type = MQ_CT_CHOICE,
     .off = SASLK(mechanism),
     .enums = mq_enum_sasl,
     .flags = MQ_CK_REQUIRED,
     .doc = "The SASL mechanism (librdkafka's sasl.mechanisms)."},
    {.name = "username",
     .type = MQ_CT_STRING,
     .off = SASLK(username),
     .flags = MQ_CK_REQUIRED,
     .doc = "The SASL user name."},
    {.name = "password_file",
     .type = MQ_CT_PATH,
     .off = SASLK(password_file),
     .flags = MQ_CK_REQUIRED,
     .doc = "File whose first line is the password (kept out of the configuration). Like a broker's, it is "
            "read when the forwarder starts, not by --check."},
    {.name = NULL},
};

static const struct mq_csection mq_csection_sasl = {
    .name = "forward[].sasl",
    .what = "a forwarder's sasl section",
    .doc = "SASL authentication towards the Kafka cluster: all three keys are required when the section is "
           "given. Without tls the credentials travel unencrypted (SASL_PLAINTEXT): PLAIN then shows the "
           "password to the network.",
    .keys = mq_keys_sasl,
};

/* ---- forward[] ---- */

static const struct mq_cenum mq_enum_partitioning[] = {
    {"same", MQ_FWD_PART_SAME},
    {"key", MQ_FWD_PART_KEY},
    {NULL, 0},
};

static const struct mq_cenum mq_enum_mode[] = {
    {"exactly_once", MQ_FWD_EXACTLY_ONCE},
    {"at_least_once", MQ_FWD_AT_LEAST_ONCE},
    {NULL, 0},
};

static const struct mq_cenum mq_enum_compression[] = {
    {"none", 0}, {"gzip", 0}, {"snappy", 0}, {"lz4", 0}, {"zstd", 0}, {NULL, 0},
};

/*
 * librdkafka properties the forwarder sets from its own keys (or needs as they are for exactly-once), with
 * the key to use instead. A name ending in '.' stands for every property it starts.
 */
static const struct {
    const char *name;
    const char *use;
} mq_forward_owned[] = {
    {"bootstrap.servers", "use the forwarder's key bootstrap"},
    {"metadata.broker.list", "use the forwarder's key bootstrap"},
    {"transactional.id", "the forwarder sets it to mqlog.SITE.NAME (keys site and name)"},
    {"enable.idempotence", "the forwarder's producer is always idempotent (see mode)"},
    {"acks", "the forwarder's idempotent producer needs acks=all"},
    {"request.required.acks", "the forwarder's idempotent producer needs acks=all"},
    {"compression.codec", "use the forwarder's key compression"},
    {"compression.type", "use the forwarder's key compression"},
    {"security.protocol", "the forwarder derives it from its tls and sasl sections"},
    {"sasl.", "use the forwarder's sasl section"},
    {"ssl.", "use the forwarder's tls section"},
    {"enable.ssl.certificate.verification", "use tls.insecure"},
};

/* One further librdkafka property (forward[].properties): not one the forwarder owns, and accepted by
 * librdkafka itself, with librdkafka's own message when it is not. Nothing connects. */
static bool mq_forward_prop(const char *name, const char *value, bool *at_value, char *why, size_t why_size)
{
    for (size_t i = 0; i < sizeof(mq_forward_owned) / sizeof(mq_forward_owned[0]); i++) {
        const char *o = mq_forward_owned[i].name;
        size_t len = strlen(o);
        if (o[len - 1] == '.' ? strncmp(name, o, len) == 0 : strcmp(name, o) == 0) {
            snprintf(why, why_size, "'%s' is set by the forwarder: %s", name, mq_forward_owned[i].use);
            return false;
        }
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(why, why_size, "out of memory");
        return false;
    }
    char errstr[512];
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));
    rd_kafka_conf_destroy(conf);
    if (res == RD_KAFKA_CONF_OK)
        return true;
    /* librdkafka names an alias by its canonical name (linger.ms is queue.buffering.max.ms): say both. */
    *at_value = res == RD_KAFKA_CONF_INVALID;
    if (*at_value)
        snprintf(why, why_size, "'%s': %s", name, MQ_CLAUSE(errstr));
    else
        mq_clause(errstr, why, why_size);
    return false;
}

#define FWD(field) offsetof(struct mq_config_forward, field)

static const struct mq_ckey mq_keys_forward[] = {
    {.name = "name",
     .type = MQ_CT_NAME,
     .off = FWD(name),
     .flags = MQ_CK_REQUIRED,
     .doc = "The forwarder's name, unique among the forwarders: it is part of the transactional id "
            "(mqlog.SITE.NAME) and names the forwarder's checkpoints, metrics and log lines."},
    {.name = "bootstrap",
     .type = MQ_CT_SERVERS,
     .off = FWD(bootstrap),
     .flags = MQ_CK_REQUIRED,
     .doc = "The Kafka cluster's bootstrap servers, HOST:PORT[,HOST:PORT...] (librdkafka's "
            "bootstrap.servers)."},
    {.name = "topics",
     .type = MQ_CT_GLOBS,
     .off = FWD(topics),
     .off2 = FWD(ntopics),
     .flags = MQ_CK_REQUIRED,
     .doc = "The local log topics to forward: one pattern or a list (see Forwarding). A topic created later "
            "that matches is picked up."},
    {.name = "to",
     .type = MQ_CT_REMOTE,
     .off = FWD(to),
     .def = "{site}.{topic}",
     .doc = "The remote topic a local topic goes to: {site} is the site name, {topic} the local topic's "
            "name (see Forwarding)."},
    {.name = "partitioning",
     .type = MQ_CT_ENUM,
     .off = FWD(partitioning),
     .def = "same",
     .enums = mq_enum_partitioning,
     .doc = "same: local partition p goes to remote partition p, in offset order (the remote topic needs "
            "at least as many partitions); key: Kafka's murmur2 partitioner over the record key (records "
            "without a key keep their local partition)."},
    {.name = "mode",
     .type = MQ_CT_ENUM,
     .off = FWD(mode),
     .def = "exactly_once",
     .enums = mq_enum_mode,
     .doc = "exactly_once: a transactional producer that resumes from what the remote topic holds, so that "
            "no record is lost or repeated across restarts and outages; consumers must read with "
            "isolation.level=read_committed. at_least_once: an idempotent producer that resumes from its "
            "checkpoint; a crash may repeat records."},
    {.name = "start",
     .type = MQ_CT_START,
     .off = FWD(start),
     .off2 = FWD(start_ms),
     .def = "earliest",
     .doc = "Where a forwarder without a checkpoint starts in each local partition: earliest (everything "
            "still stored), latest (only records stored from now on), or \"@EPOCH_MS\" (the first record "
            "with a timestamp at or after that time, in milliseconds since 1970; quote it, YAML reserves a "
            "leading @)."},
    {.name = "compression",
     .type = MQ_CT_CHOICE,
     .off = FWD(compression),
     .def = "zstd",
     .enums = mq_enum_compression,
     .doc = "Compression of the batches sent (librdkafka's compression.codec)."},
    {.name = "max_bytes_per_s",
     .type = MQ_CT_SIZE,
     .off = FWD(max_bytes_per_s),
     .def = "0",
     .min = 0,
     .max = TIB,
     .doc =
         "Cap of the rate sent to the cluster, in bytes of record data per second (a size: 2MiB is "
         "2 MiB/s), also while a backlog drains after an outage; 0: no cap. Record data is each record's "
         "key, value and header names and values (the mqlog.* headers included) before compression, so the "
         "bytes on the wire stay below the cap."},
    {.name = "hold_retention",
     .type = MQ_CT_BOOL,
     .off = FWD(hold_retention),
     .def = "true",
     .doc = "Retention by time and size skips segments that hold records this forwarder has not sent yet. "
            "Only the disk running full may still delete them; the records dropped unforwarded are then "
            "logged and counted."},
    {.name = "tls",
     .type = MQ_CT_MAP,
     .off = FWD(tls_opts),
     .sub = &mq_csection_forward_tls,
     .def_doc = "no TLS",
     .doc = "Connect with TLS (see forward[].tls)."},
    {.name = "sasl",
     .type = MQ_CT_MAP,
     .off = FWD(sasl),
     .sub = &mq_csection_sasl,
     .def_doc = "no SASL",
     .doc = "Authenticate with SASL (see forward[].sasl)."},
    {.name = "properties",
     .type = MQ_CT_PROPS,
     .off = FWD(prop_names),
     .off2 = FWD(prop_values),
     .off3 = FWD(nprops),
     .prop = mq_forward_prop,
     .def_doc = "none",
     .doc = "Further librdkafka producer properties, NAME: VALUE (`linger.ms: 20`), passed through in "
            "order. --check rejects those librdkafka does not know or accept, with its message, and those "
            "the keys above set (bootstrap.servers, transactional.id, enable.idempotence, acks, "
            "compression.*, security.protocol, sasl.*, ssl.*)."},
    {.name = NULL},
};

/*
 * Sets on a scratch librdkafka configuration what the forwarder will derive from its keys, so that --check
 * reports what this librdkafka build lacks (a codec, TLS or SASL support) at the key that asks for it.
 */
static void mq_forward_check_rdkafka(struct mq_cctx *ctx, const struct mq_config_forward *f,
                                     const yaml_node_t *node, const yaml_node_t *const *vals)
{
    const struct mq_csection *fs = &mq_csection_forward;
    const yaml_node_t *tls = mq_cctx_value(fs, vals, "tls"), *sasl = mq_cctx_value(fs, vals, "sasl");
    struct {
        const char *name, *value;
        const yaml_node_t *at;
    } set[] = {
        {"bootstrap.servers", f->bootstrap, mq_cctx_value(fs, vals, "bootstrap")},
        {"compression.codec", f->compression, mq_cctx_value(fs, vals, "compression")},
        {"security.protocol",
         f->sasl.mechanism ? (f->tls ? "sasl_ssl" : "sasl_plaintext") : (f->tls ? "ssl" : "plaintext"),
         f->sasl.mechanism ? sasl : tls},
        {"sasl.mechanisms", f->sasl.mechanism, sasl},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        mq_cctx_oom(ctx);
        return;
    }
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        char why[512];
        if (set[i].value &&
            rd_kafka_conf_set(conf, set[i].name, set[i].value, why, sizeof(why)) != RD_KAFKA_CONF_OK)
            mq_cctx_error(ctx, set[i].at ? set[i].at : node, "this librdkafka refuses %s: %s", set[i].name,
                          MQ_CLAUSE(why));
    }
    rd_kafka_conf_destroy(conf);
}

static void mq_forward_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                             const yaml_node_t *const *vals)
{
    const struct mq_csection *fs = &mq_csection_forward;
    struct mq_config_forward *f = obj;
    struct mq_config *cfg = mq_cctx_config(ctx);
    mq_cctx_loc(ctx, node, &f->loc);
    const yaml_node_t *tls = mq_cctx_value(fs, vals, "tls");
    f->tls = tls && tls->type == YAML_MAPPING_NODE;
    size_t first;
    /* f is the last element of cfg->forwards (which may move as it grows: indexes are kept). */
    if (f->name && !mq_cctx_name_first(ctx, MQ_CNAMES_FORWARD, f->name, (size_t)(f - cfg->forwards), &first))
        mq_cctx_error(ctx, mq_cctx_value(fs, vals, "name"), "duplicate forwarder name '%s' (also at line %d)",
                      f->name, cfg->forwards[first].loc.line);
    mq_forward_check_rdkafka(ctx, f, node, vals);
}

const struct mq_csection mq_csection_forward = {
    .name = "forward[]",
    .what = "a forwarder",
    .doc = "One entry per Kafka cluster (or topic set) the log is forwarded to, with librdkafka. The local "
           "log is the buffer: while the cluster is unreachable records stay on disk and are sent once it "
           "is back. Several forwarders run side by side, each with its own producer.",
    .size = sizeof(struct mq_config_forward),
    .keys = mq_keys_forward,
    .check = mq_forward_check,
};
