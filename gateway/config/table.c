/*
 * table.c - the configuration's key tables: the main file's own keys and those of its log section, the
 * mapping files' keys, and the formatting of sizes and durations that messages and docs share. The other
 * sections have a file each: table_broker.c, table_mapping.c, table_forward.c, table_kafka.c and
 * table_http.c.
 *
 * The rows are the single source of truth: section.c parses with them and the generated reference
 * (docs/configuration.md) is rendered from them, so a default or a bound cannot differ between the two.
 */
#include "config/table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/topic.h"

/* ---- helpers shared with section.c and the doc generator ---- */

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

const struct mq_cenum mq_enum_codec[] = {
    {"none", MQ_CONFIG_CODEC_NONE},
    {"lz4", MQ_CONFIG_CODEC_LZ4},
    {"zstd", MQ_CONFIG_CODEC_ZSTD},
    {NULL, 0},
};

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
            "mqlogd has open: written, read or forwarded since it started; index files not counted); 0 "
            "means no cap. Checked before every write: a batch that would pass it waits while the oldest "
            "segments across all partitions are deleted before their retention (oldest newest record "
            "first), those a forwarder with hold_retention still needs last; records deleted before they "
            "were forwarded are logged as errors and counted. When nothing can be deleted, ingestion is "
            "pushed back as on a full disk. Segments go whole: keep segment_bytes well below the cap. "
            "Read at start."},
    {.name = "min_free_bytes",
     .type = MQ_CT_SIZE,
     .off = LOGK(min_free_bytes),
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .doc = "Free space the log leaves on the file system of data_dir (what statvfs reports available); 0 "
            "means no minimum. Checked before every write, which must leave this much plus 16 file "
            "system blocks (64KiB on most) free: the blocks cover the small files written without a "
            "check (indexes, recovery points, the catalog). When free space runs short, whoever filled "
            "it, the oldest segments are deleted as for max_disk_bytes; when nothing can be deleted, "
            "ingestion is pushed back until space returns. Read at start."},
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
    {.name = "compression",
     .type = MQ_CT_ENUM,
     .off = LOGK(compression),
     .def = "none",
     .enums = mq_enum_codec,
     .doc = "The codec of the batches written at ingest: none, lz4 or zstd (Kafka's encodings: clients "
            "decompress them, Fetch v4 and later get the stored bytes; zstd needs Fetch v10, as in Kafka). "
            "Ingest batches are small, so they shrink less than a large batch would; a batch that would "
            "not shrink is stored uncompressed. A mapping can override it for its topics; the unmatched "
            "topic uses this one."},
    {.name = "recompact_after",
     .type = MQ_CT_DURATION,
     .off = LOGK(recompact_after_ms),
     .def = "0s",
     .min = 0,
     .max = 36500 * DAY,
     .doc = "When a closed segment of a topic with a codec is rewritten as large compressed batches (up to 1 "
            "MiB of records each, the tiny ingest batches merged): once its newest record is this old; 0 "
            "means as soon as it is closed (rolled and checkpointed). Offsets, timestamps, keys, values and "
            "headers stay as they were, readers keep reading across the swap, and a crash leaves the old "
            "segment or the new one. Topics without a codec are never rewritten. A segment closes at "
            "segment_bytes or segment_ms: a topic per device fills slowly, so a shorter segment_ms (an "
            "hour, say) brings its saving sooner. A mapping can override it for its topics."},
    {.name = NULL},
};

static const struct mq_csection mq_csection_log = {
    .name = "log",
    .what = "the log section",
    .doc = "The durable store: group commit, segments and default retention. Every key is optional.",
    .keys = mq_keys_log,
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
    {.name = "http",
     .type = MQ_CT_MAP,
     .off = TOP(http),
     .sub = &mq_csection_http,
     .def_doc = "none: no endpoint",
     .doc = "The operator endpoints: metrics, health, readiness and status over HTTP (see http)."},
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
