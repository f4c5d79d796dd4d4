/*
 * table.c - every configuration key mqlogd knows, section by section, and the checks that involve more
 * than one key (a template against its filters, a mapping's broker against the brokers, ...).
 *
 * The rows are the single source of truth: config.c parses with them and the generated reference
 * (docs/configuration.md) is rendered from them, so a default or a bound cannot differ between the two.
 */
#include "config/table.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route/route.h"
#include "util/parse.h"
#include "util/topic.h"
#include "util/url.h"

#define KIB  (1024LL)
#define MIB  (1024LL * 1024)
#define GIB  (1024LL * 1024 * 1024)
#define TIB  (1024LL * 1024 * 1024 * 1024)
#define SEC  (1000LL)
#define MIN  (60LL * 1000)
#define HOUR (3600LL * 1000)
#define DAY  (86400LL * 1000)

/* ---- helpers shared with config.c and the doc generator ---- */

/* The largest unit that divides v exactly, so that a value prints as it would be written. */
static void mq_fmt_units(int64_t v, const char *const *names, const int64_t *factors, size_t n,
                         bool minus_one, char *buf, size_t size)
{
    for (size_t i = n; i-- > 1;)
        if (v != 0 && v % factors[i] == 0) {
            snprintf(buf, size, "%" PRId64 "%s", v / factors[i], names[i]);
            return;
        }
    /* A bound such as 2^31 - 1 reads better as "2147483647 (2GiB-1)". */
    for (size_t i = n; i-- > 1;)
        if (minus_one && v > 0 && v < INT64_MAX && (v + 1) % factors[i] == 0) {
            snprintf(buf, size, "%" PRId64 " (%" PRId64 "%s-1)", v, (v + 1) / factors[i], names[i]);
            return;
        }
    snprintf(buf, size, "%" PRId64 "%s", v, v == 0 ? "" : names[0]);
}

void mq_config_fmt_size(int64_t bytes, char *buf, size_t size)
{
    static const char *const names[] = {"", "KiB", "MiB", "GiB", "TiB"};
    static const int64_t factors[] = {1, KIB, MIB, GIB, TIB};
    mq_fmt_units(bytes, names, factors, 5, true, buf, size);
}

void mq_config_fmt_duration(int64_t ms, char *buf, size_t size)
{
    static const char *const names[] = {"ms", "s", "m", "h", "d"};
    static const int64_t factors[] = {1, SEC, MIN, HOUR, DAY};
    mq_fmt_units(ms, names, factors, 5, false, buf, size);
}

/* ---- log ---- */

#define LOGK(field) offsetof(struct mq_config_log, field)

static const struct mq_ckey mq_keys_log[] = {
    {.name = "flush_interval_ms",
     .type = MQ_CT_DURATION,
     .off = LOGK(flush_interval_ms),
     .def = "5ms",
     .min = 0,
     .max = MIN,
     .doc = "Group commit: how long appended records may wait before an fdatasync makes them durable. "
            "0 syncs every append before it returns."},
    {.name = "flush_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(flush_bytes),
     .def = "1MiB",
     .min = 0,
     .max = GIB,
     .doc = "Sync earlier once this many bytes are waiting to become durable; 0 turns this trigger off."},
    {.name = "segment_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(segment_bytes),
     .def = "1GiB",
     .min = 64 * KIB,
     .max = 2 * GIB - 1,
     .doc = "Start a new segment file before a segment would grow past this size (Kafka's segment.bytes; "
            "index entries hold 32-bit positions, hence the maximum)."},
    {.name = "segment_ms",
     .type = MQ_CT_DURATION,
     .off = LOGK(segment_ms),
     .def = "7d",
     .min = SEC,
     .max = 3650 * DAY,
     .doc = "Start a new segment once the current one's first record is older than this."},
    {.name = "index_interval_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(index_interval_bytes),
     .def = "4KiB",
     .min = 0,
     .max = 16 * MIB,
     .doc = "Bytes of log between two entries of the sparse offset index."},
    {.name = "batch_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(batch_bytes),
     .def = "256KiB",
     .min = KIB,
     .max = 64 * MIB,
     .doc = "Records gather in a batch of up to this size before it is written."},
    {.name = "max_pending_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(max_pending_bytes),
     .def = "64MiB",
     .min = MIB,
     .max = TIB,
     .doc = "Backpressure: above this much unwritten data in a partition, the connectors stop reading "
            "from their brokers until the store catches up."},
    {.name = "checkpoint_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(checkpoint_bytes),
     .def = "64MiB",
     .min = 64 * KIB,
     .max = TIB,
     .doc = "Write a recovery point after this many bytes, bounding the scan after a crash."},
    {.name = "retention_check_ms",
     .type = MQ_CT_DURATION,
     .off = LOGK(retention_check_ms),
     .def = "5m",
     .min = SEC,
     .max = DAY,
     .doc = "How often retention is applied."},
    {.name = "max_disk_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(max_disk_bytes),
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .doc = "The disk cap: the most bytes of segment files all partitions together may keep (those "
            "mqlogd has open: written, read or forwarded since it started), checked every second; 0 means "
            "no cap. Above it the oldest segments across all partitions are deleted before their "
            "retention, those a forwarder with hold_retention still needs last; records deleted before "
            "they were forwarded are logged as errors and counted. Read at start."},
    {.name = "retention",
     .type = MQ_CT_DURATION,
     .off = LOGK(retention_ms),
     .def = "7d",
     .min = 0,
     .max = 36500 * DAY,
     .doc = "Delete a segment once its newest record is older than this (Kafka's retention.ms); 0 keeps "
            "records forever. A mapping can override it for its topics."},
    {.name = "retention_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(retention_bytes),
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .doc = "Delete the oldest segments while a partition is larger than this; 0 means no size limit. A "
            "mapping can override it for its topics."},
    {.name = NULL},
};

static const struct mq_csection mq_csection_log = {
    .name = "log",
    .what = "the log section",
    .doc = "The durable store: group commit, segments and default retention. Every key is optional.",
    .keys = mq_keys_log,
};

/* ---- brokers[].tls ---- */

#define TLSK(field) offsetof(struct mq_config_tls, field)

static const struct mq_ckey mq_keys_tls[] = {
    {.name = "ca",
     .type = MQ_CT_PATH,
     .off = TLSK(ca),
     .def_doc = "the system's trust store",
     .doc = "PEM file of the certificate authorities that may sign the broker's certificate."},
    {.name = "cert",
     .type = MQ_CT_PATH,
     .off = TLSK(cert),
     .def_doc = "none",
     .doc = "PEM client certificate, for brokers that authenticate clients by certificate (needs key)."},
    {.name = "key",
     .type = MQ_CT_PATH,
     .off = TLSK(key),
     .def_doc = "none",
     .doc = "PEM private key of cert (needs cert)."},
    {.name = "insecure",
     .type = MQ_CT_BOOL,
     .off = TLSK(insecure),
     .def = "false",
     .doc = "Skip the verification of the broker's certificate and host name. For tests only."},
    {.name = NULL},
};

static void mq_tls_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                         const yaml_node_t *const *vals)
{
    (void)vals;
    struct mq_config_tls *tls = obj;
    if (node && !tls->cert != !tls->key)
        mq_cctx_error(ctx, node, "tls: cert and key go together: give both or neither");
}

static const struct mq_csection mq_csection_tls = {
    .name = "brokers[].tls",
    .what = "a broker's tls section",
    .doc = "TLS settings of an mqtts:// broker. Relative file names are relative to the directory of the "
           "file they are written in.",
    .keys = mq_keys_tls,
    .check = mq_tls_check,
};

/* ---- brokers[] ---- */

/* The sections refer to each other from their check hooks. */
static const struct mq_csection mq_csection_broker, mq_csection_mapping, mq_csection_kafka;

static const struct mq_cenum mq_enum_dedup[] = {
    {"packet_id", MQ_DEDUP_PACKET_ID},
    {"payload", MQ_DEDUP_PAYLOAD},
    {"off", MQ_DEDUP_OFF},
    {NULL, 0},
};

static const struct mq_cenum mq_enum_protocol[] = {
    {"3.1.1", 4},
    {"5", 5},
    {NULL, 0},
};

#define BRK(field) offsetof(struct mq_config_broker, field)

static const struct mq_ckey mq_keys_broker[] = {
    {.name = "name",
     .type = MQ_CT_NAME,
     .off = BRK(name),
     .flags = MQ_CK_REQUIRED,
     .doc = "The broker's name, unique among the brokers; mappings refer to it and records carry it in "
            "their mqtt.broker header."},
    {.name = "url",
     .type = MQ_CT_URL,
     .off = BRK(url),
     .flags = MQ_CK_REQUIRED,
     .doc = "mqtt://HOST[:PORT] (default port 1883) or mqtts://HOST[:PORT] for TLS (default port 8883). "
            "An IPv6 address goes in brackets: mqtt://[::1]:1883."},
    {.name = "client",
     .type = MQ_CT_NAME,
     .off = BRK(client),
     .def = "mosquitto",
     .doc = "The connector, by the MQTT client library it uses: one of those built into mqlogd (mosquitto "
            "for libmosquitto and paho for Eclipse Paho MQTT C in the default build; mqlogd --check names "
            "those it has when the name is not one of them). Both acknowledge QoS 1/2 "
            "messages only once they are durable unless durable_ack is false; then a crash can lose up to "
            "flush_interval_ms of messages, and while the disk is full, the acknowledged records waiting in "
            "memory (up to log.max_pending_bytes per partition). mosquitto is the default: it acknowledges "
            "a whole read batch after one group commit and costs less CPU per message; paho acknowledges "
            "one message per flush (about 4,000 messages/s with durable_ack on a disk that syncs in "
            "0.2 ms) and is the one whose QoS 2 over MQTT 5 is crash-safe (README, Performance)."},
    {.name = "client_id",
     .type = MQ_CT_STRING,
     .off = BRK(client_id),
     .def_doc = "mqlog-NAME",
     .doc = "The MQTT client identifier. With a persistent session (clean_session false) it must stay the "
            "same across restarts. With sessions > 1 connection i > 0 uses CLIENT_ID-i."},
    {.name = "protocol",
     .type = MQ_CT_ENUM,
     .off = BRK(protocol),
     .def = "3.1.1",
     .enums = mq_enum_protocol,
     .doc = "The MQTT protocol version: 3.1.1 or 5."},
    {.name = "clean_session",
     .type = MQ_CT_BOOL,
     .off = BRK(clean_session),
     .def = "false",
     .doc = "false asks the broker for a persistent session: it keeps the subscriptions and queues QoS 1/2 "
            "messages while mqlogd is away (MQTT 5: a session expiry interval keeps the session after the "
            "connection ends)."},
    {.name = "username",
     .type = MQ_CT_STRING,
     .off = BRK(username),
     .def_doc = "none",
     .doc = "User name to authenticate with."},
    {.name = "password_file",
     .type = MQ_CT_PATH,
     .off = BRK(password_file),
     .def_doc = "none",
     .doc = "File whose first line is the password (kept out of the configuration). MQTT 3.1.1 needs "
            "username with it."},
    {.name = "tls",
     .type = MQ_CT_MAP,
     .off = BRK(tls_opts),
     .sub = &mq_csection_tls,
     .doc = "TLS settings (see brokers[].tls); only for mqtts:// URLs."},
    {.name = "sessions",
     .type = MQ_CT_INT,
     .off = BRK(sessions),
     .def = "1",
     .min = 1,
     .max = 64,
     .doc = "Number of connections to this broker. Above 1 they share the subscriptions "
            "($share/SHARE_GROUP/FILTER), so that the broker spreads messages over them: with client "
            "mosquitto each has its own network thread; Paho runs all connections of a process on one "
            "receive thread, so more sessions do not make paho faster. Messages of one MQTT topic may then "
            "be stored out of order."},
    {.name = "share_group",
     .type = MQ_CT_NAME,
     .off = BRK(share_group),
     .def = "mqlog",
     .doc = "The shared subscription group used when sessions > 1."},
    {.name = "keepalive",
     .type = MQ_CT_INT,
     .off = BRK(keepalive_s),
     .def = "60",
     .min = 0,
     .max = 65535,
     .doc = "MQTT keep-alive interval in seconds; 0 turns keep-alive off."},
    {.name = "connect_timeout",
     .type = MQ_CT_DURATION,
     .off = BRK(connect_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 10 * MIN,
     .doc = "Give up a connection attempt after this long."},
    {.name = "reconnect_min",
     .type = MQ_CT_DURATION,
     .off = BRK(reconnect_min_ms),
     .def = "500ms",
     .min = 10,
     .max = HOUR,
     .doc = "First delay before reconnecting; it doubles (with jitter) after each failure."},
    {.name = "reconnect_max",
     .type = MQ_CT_DURATION,
     .off = BRK(reconnect_max_ms),
     .def = "30s",
     .min = 10,
     .max = HOUR,
     .doc = "Cap of the reconnect delay; at least reconnect_min."},
    {.name = "max_inflight",
     .type = MQ_CT_INT,
     .off = BRK(max_inflight),
     .def = "1000",
     .min = 1,
     .max = 65535,
     .doc = "How many QoS 1/2 messages the broker may have unacknowledged towards mqlogd (MQTT 5 receive "
            "maximum). It also sizes the redelivery guard of a persistent session (see durable_ack): the "
            "last 2 x max_inflight messages stored are recognised when the broker delivers them again; with "
            "MQTT 3.1.1 keep it at least at the broker's own in-flight limit (mosquitto: "
            "max_inflight_messages, default 20; RabbitMQ: mqtt.prefetch, default 10). Without durable_ack, "
            "client mosquitto with a QoS 2 subscription sends 65535 instead: libmosquitto drops the "
            "connection when a broker exceeds it, and mosquitto 2.0 does. mosquitto 2.0.11 overshoots both "
            "its max_inflight_messages (MQTT 3.1.1) and this receive maximum; with a backlog of more than "
            "65535 QoS 2 messages for the session it then reuses packet identifiers still in flight (it "
            "logs \"disconnected due to protocol error\"); with MQTT 5 paho stores each message before "
            "acknowledging it and nothing was lost."},
    {.name = "durable_ack",
     .type = MQ_CT_BOOL,
     .off = BRK(durable_ack),
     .def = "true",
     .doc = "Acknowledge a QoS 1/2 message only after its record is durable, so that a crash loses "
            "nothing the broker handed over (with a persistent session the broker keeps the rest). paho "
            "waits for each message in turn (one flush per message); mosquitto reads a batch, waits for "
            "one group commit and acknowledges the batch. With a persistent session a redelivery guard "
            "(data_dir/sessions/) notes the packet id of every stored message, so that the broker's "
            "redelivery of a message that was stored but not yet acknowledged when mqlogd stopped, crashed "
            "or lost the connection is acknowledged and not stored again: exactly once. QoS 2 filters are "
            "then subscribed at QoS 1 where the client library would answer PUBREC before the record is "
            "durable (client mosquitto; paho with MQTT 3.1.1), with the same exactly-once outcome; their "
            "records say mqtt.qos 1. false: acknowledge on receipt (faster; a crash loses up to "
            "log.flush_interval_ms)."},
    {.name = "dedup",
     .type = MQ_CT_ENUM,
     .off = BRK(dedup),
     .def = "packet_id",
     .enums = mq_enum_dedup,
     .doc = "How the redelivery guard of a persistent session with durable_ack recognises a message the "
            "broker delivers again after mqlogd stopped, crashed or lost the connection. packet_id: the "
            "same packet identifier, topic and payload as a message stored before (MQTT requires a "
            "redelivery to keep its packet identifier; mosquitto does): exactly once. payload: DUP set "
            "(with client mosquitto, which cannot see DUP: among the first max_inflight messages after the "
            "reconnect) and the same topic and payload, whatever the identifier: for brokers that renumber "
            "redeliveries, as RabbitMQ does; exact as long as the payloads of one topic differ (a reading "
            "with a timestamp or a counter), while a message whose topic and payload repeat an earlier "
            "one's may be taken for its redelivery. off: no guard (a redelivery is stored again)."},
    {.name = NULL},
};

static void mq_broker_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                            const yaml_node_t *const *vals)
{
    const struct mq_csection *bs = &mq_csection_broker;
    struct mq_config_broker *b = obj;
    struct mq_config *cfg = mq_cctx_config(ctx);
    mq_cctx_loc(ctx, node, &b->loc);
    /* the name is checked by the daemon against the connectors built in (config knows none of them) */
    const yaml_node_t *client = mq_cctx_value(bs, vals, "client");
    mq_cctx_loc(ctx, client ? client : node, &b->client_loc);
    if (b->url) {
        char why[300];
        enum mq_err err = mq_url_parse(b->url, &b->host, &b->port, &b->tls, NULL, why, sizeof(why));
        if (err == MQ_ERR_NOMEM)
            mq_cctx_oom(ctx);
    }
    if (b->name) {
        /* b is the last element of cfg->brokers: compare with those before it. */
        for (struct mq_config_broker *o = cfg->brokers; o < b; o++)
            if (o->name && strcmp(o->name, b->name) == 0)
                mq_cctx_error(ctx, mq_cctx_value(bs, vals, "name"),
                              "duplicate broker name '%s' (also at line %d)", b->name, o->loc.line);
        if (!b->client_id) {
            size_t n = strlen(b->name) + 7;
            if (!(b->client_id = malloc(n)))
                mq_cctx_oom(ctx);
            else
                snprintf(b->client_id, n, "mqlog-%s", b->name);
        }
    }
    const yaml_node_t *tls = mq_cctx_value(bs, vals, "tls");
    if (tls && tls->type == YAML_MAPPING_NODE && b->url && !b->tls)
        mq_cctx_error(ctx, tls, "tls settings need an mqtts:// URL (url is '%s')", b->url);
    const yaml_node_t *pw = mq_cctx_value(bs, vals, "password_file");
    if (pw && !b->username && b->protocol == 4)
        mq_cctx_error(ctx, pw, "MQTT 3.1.1 sends a password only with a user name: set username too");
    if (b->reconnect_min_ms > b->reconnect_max_ms)
        mq_cctx_error(
            ctx, mq_cctx_value(bs, vals, "reconnect_max") ? mq_cctx_value(bs, vals, "reconnect_max") : node,
            "reconnect_max must be at least reconnect_min");
}

static void mq_broker_fini(void *obj)
{
    struct mq_config_broker *b = obj;
    free(b->host);
}

static const struct mq_csection mq_csection_broker = {
    .name = "brokers[]",
    .what = "a broker",
    .doc =
        "One entry per MQTT broker to subscribe to. Each broker gets its own connections; one that is down "
        "does not hold up the others.",
    .size = sizeof(struct mq_config_broker),
    .keys = mq_keys_broker,
    .check = mq_broker_check,
    .fini = mq_broker_fini,
};

/* ---- mappings[] ---- */

#define MAPK(field) offsetof(struct mq_config_mapping, field)

static const struct mq_ckey mq_keys_mapping[] = {
    {.name = "from",
     .type = MQ_CT_FILTERS,
     .off = MAPK(from),
     .off2 = MAPK(nfrom),
     .flags = MQ_CK_REQUIRED,
     .doc = "One MQTT topic filter or a list of them (+ matches one level, # the rest). A shared "
            "subscription $share/GROUP/FILTER routes by FILTER."},
    {.name = "broker",
     .type = MQ_CT_NAME,
     .off = MAPK(broker),
     .def_doc = "every broker",
     .doc = "Take messages from this broker only."},
    {.name = "qos",
     .type = MQ_CT_INT,
     .off = MAPK(qos),
     .def = "1",
     .min = 0,
     .max = 2,
     .doc = "The QoS to subscribe with."},
    {.name = "to",
     .type = MQ_CT_TEMPLATE,
     .off = MAPK(to),
     .flags = MQ_CK_REQUIRED,
     .doc = "The log topic. {1}, {2}... insert what the first, second... wildcard of the matching filter "
            "matched (see Templates)."},
    {.name = "partitions",
     .type = MQ_CT_INT,
     .off = MAPK(partitions),
     .def = "1",
     .min = 1,
     .max = 10000,
     .doc = "Partitions of the log topics this mapping creates."},
    {.name = "key",
     .type = MQ_CT_KEY,
     .off = MAPK(key),
     .def = "topic",
     .doc = "The record key, which also chooses the partition: topic, level:N, json:/POINTER or none (see "
            "Keys and partitions)."},
    {.name = "retention",
     .type = MQ_CT_DURATION,
     .off = MAPK(retention_ms),
     .def_doc = "log.retention",
     .min = 0,
     .max = 36500 * DAY,
     .doc = "Retention by age of this mapping's topics; 0 keeps forever."},
    {.name = "retention_bytes",
     .type = MQ_CT_SIZE,
     .off = MAPK(retention_bytes),
     .def_doc = "log.retention_bytes",
     .min = 0,
     .max = INT64_MAX,
     .doc = "Retention by size of this mapping's topics, per partition; 0: no limit."},
    {.name = NULL},
};

static void mq_mapping_init(void *obj)
{
    struct mq_config_mapping *m = obj;
    m->retention_ms = -1;
    m->retention_bytes = -1;
}

/* Reports a literal log topic that an earlier mapping also names with different topic settings. */
static void mq_mapping_check_target(struct mq_cctx *ctx, struct mq_config_mapping *m, const yaml_node_t *to)
{
    struct mq_config *cfg = mq_cctx_config(ctx);
    if (strchr(m->to, '{'))
        return; /* a template's topics are only known per message */
    for (struct mq_config_mapping *o = cfg->mappings; o < m; o++) {
        if (!o->to || strcmp(o->to, m->to) != 0)
            continue;
        const char *what = NULL;
        if (o->partitions != m->partitions)
            what = "partitions";
        else if (o->retention_ms != m->retention_ms)
            what = "retention";
        else if (o->retention_bytes != m->retention_bytes)
            what = "retention_bytes";
        if (what)
            mq_cctx_error(ctx, to,
                          "log topic '%s' is also the target of the mapping at %s:%d:%d; their %s differ",
                          m->to, o->loc.file, o->loc.line, o->loc.col, what);
        return;
    }
}

static void mq_mapping_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                             const yaml_node_t *const *vals)
{
    const struct mq_csection *ms = &mq_csection_mapping;
    struct mq_config_mapping *m = obj;
    struct mq_config *cfg = mq_cctx_config(ctx);
    mq_cctx_loc(ctx, node, &m->loc);
    if (m->to && m->nfrom > 0) {
        int max_ref = 0;
        if (mq_route_template_check(m->to, &max_ref, NULL, 0) == MQ_OK && max_ref > 0)
            for (size_t i = 0; i < m->nfrom; i++) {
                int wild;
                mq_filter_shape(m->from[i], &wild, NULL, NULL);
                if (max_ref > wild)
                    mq_cctx_error(ctx, mq_cctx_value(ms, vals, "to"),
                                  "template '%s' uses {%d} but filter '%s' has %s%d wildcard%s", m->to,
                                  max_ref, m->from[i], wild ? "only " : "", wild, wild == 1 ? "" : "s");
            }
    }
    if (m->key && m->nfrom > 0) {
        int level = 0;
        if (mq_route_key_check(m->key, &level, NULL, 0) == MQ_OK && level > 0) {
            int most = 0;
            bool deep = false;
            for (size_t i = 0; i < m->nfrom; i++) {
                int levels;
                bool multi;
                mq_filter_shape(m->from[i], NULL, &levels, &multi);
                deep = deep || multi;
                if (levels > most)
                    most = levels;
            }
            if (!deep && level > most)
                mq_cctx_error(ctx, mq_cctx_value(ms, vals, "key"),
                              "key level:%d: the filters match topics of at most %d level%s", level, most,
                              most == 1 ? "" : "s");
        }
    }
    const yaml_node_t *bn = mq_cctx_value(ms, vals, "broker");
    if (m->broker && bn) {
        bool known = false, broken = false;
        for (size_t i = 0; i < cfg->nbrokers; i++) {
            if (!cfg->brokers[i].name)
                broken = true; /* already reported: do not pile a second error on it */
            else if (strcmp(cfg->brokers[i].name, m->broker) == 0)
                known = true;
        }
        if (!known && !broken)
            mq_cctx_error(ctx, bn, "unknown broker '%s'%s", m->broker,
                          cfg->nbrokers ? "" : " (no brokers are configured)");
    }
    if (m->to)
        mq_mapping_check_target(ctx, m, mq_cctx_value(ms, vals, "to"));
}

static const struct mq_csection mq_csection_mapping = {
    .name = "mappings[]",
    .what = "a mapping",
    .doc =
        "One entry per group of MQTT topics and the log topic they go to. A message is stored once in each "
        "distinct log topic whose mapping matches it.",
    .size = sizeof(struct mq_config_mapping),
    .keys = mq_keys_mapping,
    .init = mq_mapping_init,
    .check = mq_mapping_check,
};

/* ---- kafka ---- */

#define KFK(field) offsetof(struct mq_config_kafka, field)

static const struct mq_ckey mq_keys_kafka[] = {
    {.name = "listen",
     .type = MQ_CT_HOSTPORT,
     .off = KFK(listen),
     .def_doc = "no listener",
     .min = 0,
     .max = 65535,
     .doc = "HOST:PORT where Kafka consumers connect (e.g. 127.0.0.1:9092; [::1]:9092 for IPv6). Port 0 "
            "picks a free port."},
    {.name = "advertised",
     .type = MQ_CT_HOSTPORT,
     .off = KFK(advertised),
     .def_doc = "listen",
     .min = 1,
     .max = 65535,
     .doc = "HOST:PORT that consumers are told to connect to, when it differs from listen."},
    {.name = NULL},
};

static void mq_kafka_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                           const yaml_node_t *const *vals)
{
    (void)node;
    struct mq_config_kafka *k = obj;
    char why[300];
    if (k->listen && mq_url_hostport(k->listen, false, 0, 65535, &k->listen_host, &k->listen_port, NULL, why,
                                     sizeof(why)) == MQ_ERR_NOMEM)
        mq_cctx_oom(ctx);
    if (k->advertised) {
        if (!k->listen)
            mq_cctx_error(ctx, mq_cctx_value(&mq_csection_kafka, vals, "advertised"),
                          "advertised needs listen: there is no Kafka listener to advertise");
        if (mq_url_hostport(k->advertised, false, 1, 65535, &k->advertised_host, &k->advertised_port, NULL,
                            why, sizeof(why)) == MQ_ERR_NOMEM)
            mq_cctx_oom(ctx);
    } else if (k->listen) {
        k->advertised_port = k->listen_port;
        if (!(k->advertised = strdup(k->listen)) ||
            !(k->advertised_host = strdup(k->listen_host ? k->listen_host : "")))
            mq_cctx_oom(ctx);
    }
}

static void mq_kafka_fini(void *obj)
{
    struct mq_config_kafka *k = obj;
    free(k->listen_host);
    free(k->advertised_host);
}

static const struct mq_csection mq_csection_kafka = {
    .name = "kafka",
    .what = "the kafka section",
    .doc = "The Kafka consumer endpoint, which serves the stored topics to Kafka clients.",
    .keys = mq_keys_kafka,
    .check = mq_kafka_check,
    .fini = mq_kafka_fini,
};

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

static const struct mq_csection mq_csection_forward;

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
        snprintf(why, why_size, "'%s': %s", name, errstr);
    else
        snprintf(why, why_size, "%s", errstr);
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
                          why);
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
    if (f->name)
        /* f is the last element of cfg->forwards: compare with those before it. */
        for (struct mq_config_forward *o = cfg->forwards; o < f; o++)
            if (o->name && strcmp(o->name, f->name) == 0)
                mq_cctx_error(ctx, mq_cctx_value(fs, vals, "name"),
                              "duplicate forwarder name '%s' (also at line %d)", f->name, o->loc.line);
    mq_forward_check_rdkafka(ctx, f, node, vals);
}

static const struct mq_csection mq_csection_forward = {
    .name = "forward[]",
    .what = "a forwarder",
    .doc = "One entry per Kafka cluster (or topic set) the log is forwarded to, with librdkafka. The local "
           "log is the buffer: while the cluster is unreachable records stay on disk and are sent once it "
           "is back. Several forwarders run side by side, each with its own producer.",
    .size = sizeof(struct mq_config_forward),
    .keys = mq_keys_forward,
    .check = mq_forward_check,
};

/* ---- the main file and mapping files ---- */

#define TOP(field) offsetof(struct mq_config, field)

static const struct mq_ckey mq_keys_top[] = {
    {.name = "data_dir",
     .type = MQ_CT_PATH,
     .off = TOP(data_dir),
     .def = "/var/lib/mqlog",
     .doc = "Directory of the log store (one sub-directory per topic partition) and its catalog."},
    {.name = "log",
     .type = MQ_CT_MAP,
     .off = TOP(log),
     .sub = &mq_csection_log,
     .doc = "Store settings (see log)."},
    {.name = "brokers",
     .type = MQ_CT_LIST,
     .off = TOP(brokers),
     .off2 = TOP(nbrokers),
     .sub = &mq_csection_broker,
     .def_doc = "none",
     .doc = "The MQTT brokers (see brokers[])."},
    {.name = "mappings",
     .type = MQ_CT_LIST,
     .off = TOP(mappings),
     .off2 = TOP(nmappings),
     .sub = &mq_csection_mapping,
     .def_doc = "none",
     .doc = "MQTT topics to log topics (see mappings[])."},
    {.name = "include",
     .type = MQ_CT_INCLUDE,
     .def_doc = "none",
     .doc = "A glob or a list of globs of mapping files, relative to this file's directory (e.g. "
            "`mappings.d/*.yaml`); their mappings are added after this file's, files in name order. A "
            "glob that matches nothing is fine; a name without wildcards must exist."},
    {.name = "unmatched",
     .type = MQ_CT_UNMATCHED,
     .off = TOP(unmatched),
     .def = "drop",
     .doc = "What happens to a message no mapping takes: drop, or the name of a log topic that collects "
            "them (1 partition, keyed by the MQTT topic). To receive them at all, every connection then "
            "also subscribes to `#` (all topics but the broker's `$` topics) at the highest QoS of its "
            "mappings."},
    {.name = "kafka",
     .type = MQ_CT_MAP,
     .off = TOP(kafka),
     .sub = &mq_csection_kafka,
     .doc = "The Kafka consumer endpoint (see kafka)."},
    {.name = "site",
     .type = MQ_CT_NAME,
     .off = TOP(site),
     .def_doc = "the host name",
     .doc = "This gateway's name among the sites that forward to one cluster: it goes into remote topic "
            "names ({site}), the transactional id and the mqlog.site header of forwarded records, so it "
            "must stay the same across restarts. The default is the host name (gethostname())."},
    {.name = "forward",
     .type = MQ_CT_LIST,
     .off = TOP(forwards),
     .off2 = TOP(nforwards),
     .sub = &mq_csection_forward,
     .def_doc = "none",
     .doc = "Kafka clusters to forward log topics to (see forward[])."},
    {.name = NULL},
};

/* The default site: the host name. Set before parsing so that a site key replaces it; mq_top_check reports
 * a host name that cannot be a site. */
static void mq_top_init(void *obj)
{
    struct mq_config *cfg = obj;
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    cfg->site = strdup(host); /* NULL on failure: mq_top_check reports it */
}

/* A site name must fit topic names and the transactional id: [a-zA-Z0-9._-], like a configured name. */
static bool mq_site_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!mq_topic_name_char((unsigned char)*p))
            return false;
    return true;
}

static void mq_top_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                         const yaml_node_t *const *vals)
{
    (void)node;
    struct mq_config *cfg = obj;
    if (!cfg->site) {
        mq_cctx_oom(ctx);
        return;
    }
    /* A host name that is not a valid site name is an error only when a forwarder would use it. */
    if (!mq_cctx_value(&mq_csection_top, vals, "site") && !mq_site_valid(cfg->site) && cfg->nforwards > 0)
        mq_cctx_error(ctx, mq_cctx_value(&mq_csection_top, vals, "forward"),
                      "site: the host name '%s' cannot be a site name (1 to 64 of a-z A-Z 0-9 . _ -): "
                      "set site",
                      cfg->site);
    const yaml_node_t *un = mq_cctx_value(&mq_csection_top, vals, "unmatched");
    if (!cfg->unmatched || !un)
        return;
    for (size_t i = 0; i < cfg->nmappings; i++) {
        const struct mq_config_mapping *m = &cfg->mappings[i];
        if (m->to && strcmp(m->to, cfg->unmatched) == 0 && m->partitions != 1)
            mq_cctx_error(
                ctx, un,
                "the unmatched topic '%s' has 1 partition, but the mapping at %s:%d:%d gives it %" PRId64,
                cfg->unmatched, m->loc.file, m->loc.line, m->loc.col, m->partitions);
    }
}

const struct mq_csection mq_csection_top = {
    .name = "top level",
    .what = "the configuration file",
    .doc = "The configuration file given with -c.",
    .keys = mq_keys_top,
    .init = mq_top_init,
    .check = mq_top_check,
};

static const struct mq_ckey mq_keys_mapfile[] = {
    {.name = "mappings",
     .type = MQ_CT_LIST,
     .off = TOP(mappings),
     .off2 = TOP(nmappings),
     .sub = &mq_csection_mapping,
     .def_doc = "none",
     .doc = "More mappings (see mappings[])."},
    {.name = "include",
     .type = MQ_CT_INCLUDE,
     .def_doc = "none",
     .doc = "More mapping files, relative to this file's directory."},
    {.name = NULL},
};

const struct mq_csection mq_csection_mapfile = {
    .name = "mapping files",
    .what = "a mapping file",
    .doc = "A file named by include holds only mappings (and may include further mapping files). Its "
           "mappings may name any broker of the main file.",
    .keys = mq_keys_mapfile,
};
