/*
 * table_broker.c - the keys of an MQTT broker (brokers[]) and of its TLS settings (brokers[].tls, whose keys
 * forward[].tls shares), with the checks that involve more than one key: the URL's scheme against the tls
 * section, the derived client id, unique names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/table.h"
#include "util/url.h"

/* ---- brokers[].tls ---- */

#define TLSK(field) offsetof(struct mq_config_tls, field)

const struct mq_ckey mq_keys_tls[] = {
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

void mq_tls_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node, const yaml_node_t *const *vals)
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
           "file they are written in. --check reads the files; both clients read them again at every "
           "connection attempt, so a file that goes missing while mqlogd runs fails the reconnects, which "
           "are retried and logged once naming the file (/readyz says it too), and a replaced file is used "
           "from the next connection.",
    .keys = mq_keys_tls,
    .check = mq_tls_check,
};

/* ---- brokers[] ---- */

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
            "0.2 ms). With durable_ack and a persistent session both are exactly once at QoS 1 and 2 "
            "(README, Running it at a site)."},
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
            "username with it. Read by --check, at start, and on reload (SIGHUP), where a changed password "
            "makes the broker's connections be made again with it; deleting the file while mqlogd runs "
            "changes nothing until then."},
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
     .type = MQ_CT_SECONDS,
     .off = BRK(keepalive_s),
     .def = "60",
     .min = 0,
     .max = 65535,
     .doc = "MQTT keep-alive interval: seconds, or with a unit (30s, 2m); 0 turns keep-alive off."},
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
            "maximum). The redelivery guard of a persistent session (see durable_ack) recognises the last "
            "30000 messages stored when the broker delivers them again, whatever this says (mosquitto "
            "2.0.11 keeps far more than this in flight once it has a backlog); with dedup: payload and "
            "client mosquitto only "
            "the first max_inflight messages after a reconnect are taken for redeliveries, so set it to the "
            "broker's in-flight limit (RabbitMQ: mqtt.prefetch, default 10). Without durable_ack, "
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
            "subscribed at QoS 1, whose acknowledgement waits for the record (libmosquitto, and Paho over "
            "MQTT 3.1.1, answer PUBREC before they hand a message over; mosquitto resends messages answered "
            "with PUBREC as new PUBLISHes after a reconnect), with the same exactly-once outcome; their "
            "records say mqtt.qos 1. Only paho over MQTT 5 without the guard (clean_session, dedup: off) "
            "keeps QoS 2, crash-safe but not duplicate-free. false: acknowledge on receipt (faster; a crash "
            "loses up to log.flush_interval_ms)."},
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
        /* b is the last element of cfg->brokers (which may move as it grows: indexes are kept). */
        size_t first;
        if (!mq_cctx_name_first(ctx, MQ_CNAMES_BROKER, b->name, (size_t)(b - cfg->brokers), &first))
            mq_cctx_error(ctx, mq_cctx_value(bs, vals, "name"),
                          "duplicate broker name '%s' (also at line %d)", b->name,
                          cfg->brokers[first].loc.line);
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

const struct mq_csection mq_csection_broker = {
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
