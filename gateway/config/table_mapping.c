/*
 * table_mapping.c - the keys of a mapping (mappings[]), MQTT topic filters to a log topic, with the checks
 * that involve more than one key or section: a template or a key level against its filters, the broker
 * against the brokers, and the settings of a log topic that several mappings name.
 */
#include <string.h>

#include "config/table.h"
#include "route/route.h"
#include "util/suggest.h"

/* ---- mappings[] ---- */

#define MAPK(field)     offsetof(struct mq_config_mapping, field)
#define MQ_HDR_NONE_BIT 5 /* headers: none, alone (an empty YAML list is refused like any other) */

static const struct mq_cenum mq_enum_headers[] = {
    {"topic", MQ_CONFIG_HDR_TOPIC},
    {"qos", MQ_CONFIG_HDR_QOS},
    {"retain", MQ_CONFIG_HDR_RETAIN},
    {"broker", MQ_CONFIG_HDR_BROKER},
    {"properties", MQ_CONFIG_HDR_PROPERTIES},
    {"none", MQ_HDR_NONE_BIT},
    {NULL, 0},
};

static const struct mq_cenum mq_enum_header_defaults[] = {
    {"keep", 0},
    {"omit", 1},
    {NULL, 0},
};

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
    {.name = "compression",
     .type = MQ_CT_ENUM,
     .off = MAPK(compression),
     .def_doc = "log.compression",
     .enums = mq_enum_codec,
     .doc = "The codec of the batches written to this mapping's topics: none, lz4 or zstd (see "
            "log.compression). Mappings that name the same log topic must agree."},
    {.name = "recompact_after",
     .type = MQ_CT_DURATION,
     .off = MAPK(recompact_after_ms),
     .def_doc = "log.recompact_after",
     .min = 0,
     .max = 36500 * DAY,
     .doc = "When closed segments of this mapping's topics are recompacted (see log.recompact_after). "
            "Mappings that name the same log topic must agree."},
    {.name = "headers",
     .type = MQ_CT_CHOICES,
     .off = MAPK(headers),
     .enums = mq_enum_headers,
     .def_doc = "[topic, qos, retain, broker, properties]",
     .doc = "The MQTT metadata each record keeps as Kafka headers: topic (mqtt.topic), qos (mqtt.qos), "
            "retain (mqtt.retain), broker (mqtt.broker) and properties (an MQTT 5 message's user "
            "properties, content type, response topic and correlation data); none keeps none: fewer "
            "bytes per record, less to tell the records apart by."},
    {.name = "header_defaults",
     .type = MQ_CT_ENUM,
     .off = MAPK(omit_default_headers),
     .def = "keep",
     .enums = mq_enum_header_defaults,
     .doc = "omit leaves out the headers that carry their default value, which a consumer then assumes: "
            "mqtt.retain when false, mqtt.qos when it is this mapping's qos, and mqtt.broker when only "
            "one broker can deliver to this mapping (it names one, or one is configured). keep stores "
            "them all."},
    {.name = NULL},
};

static void mq_mapping_init(void *obj)
{
    struct mq_config_mapping *m = obj;
    m->retention_ms = -1;
    m->retention_bytes = -1;
    m->compression = -1;
    m->recompact_after_ms = -1;
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
        else if (o->compression != m->compression)
            what = "compression";
        else if (o->recompact_after_ms != m->recompact_after_ms)
            what = "recompact_after";
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
    const yaml_node_t *hn = mq_cctx_value(ms, vals, "headers");
    if (!hn) {
        m->headers = MQ_CONFIG_HDR_ALL; /* not given: all */
    } else if (m->headers & (1u << MQ_HDR_NONE_BIT)) {
        if (m->headers != 1u << MQ_HDR_NONE_BIT)
            mq_cctx_error(ctx, hn, "headers: none cannot be listed with others");
        m->headers = 0;
    }
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
        if (!known && !broken) {
            struct mq_suggest sg;
            mq_suggest_init(&sg, m->broker);
            for (size_t i = 0; i < cfg->nbrokers; i++)
                mq_suggest_feed(&sg, cfg->brokers[i].name);
            if (sg.best)
                mq_cctx_error(ctx, bn, "unknown broker '%s' (did you mean '%s'?)", m->broker, sg.best);
            else
                mq_cctx_error(ctx, bn, "unknown broker '%s'%s", m->broker,
                              cfg->nbrokers ? "" : " (no brokers are configured)");
        }
    }
    if (m->to)
        mq_mapping_check_target(ctx, m, mq_cctx_value(ms, vals, "to"));
}

const struct mq_csection mq_csection_mapping = {
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
