/*
 * test_config.c - the YAML configuration: every broken fixture under tests/data/config/ (bad_NAME.yaml)
 * must produce exactly the error lines of bad_NAME.expect, in order; the full good fixture and the shipped
 * example conf/mqlogd.yaml must load with every value as written; defaults, includes, limits and the route
 * table built from a configuration.
 */
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl/acl.h"
#include "config/config.h"
#include "log/log.h"
#include "route/placement.h"
#include "route/route.h"
#include "sasl/sasl.h"
#include "testutil.h"
#include "util/diag.h"

/* The fixture directory, resolved (included files are reported by their resolved names). */
static char *data_dir(void)
{
    const char *src = getenv("MQ_SOURCE_DIR");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/tests/data/config", src ? src : ".");
    char *real = realpath(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(real);
    return real;
}

struct msgs {
    size_t n;
    char *v[1100];
};

static void collect(void *opaque, const char *msg)
{
    struct msgs *m = opaque;
    if (m->n < sizeof(m->v) / sizeof(m->v[0]))
        m->v[m->n++] = strdup(msg);
}

static void msgs_free(struct msgs *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i]);
    m->n = 0;
}

/* Removes every occurrence of prefix from s, in place. */
static void strip(char *s, const char *prefix)
{
    size_t pl = strlen(prefix);
    char *p;
    while ((p = strstr(s, prefix)))
        memmove(p, p + pl, strlen(p + pl) + 1);
}

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path;
    CU_ASSERT_FATAL(asprintf(&path, "%s/%s", dir, name) > 0);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
    return path;
}

/* ---- broken fixtures ---- */

static int check_fixture(const char *dir, const char *yaml)
{
    char expect_path[PATH_MAX];
    snprintf(expect_path, sizeof(expect_path), "%.*s.expect", (int)(strlen(yaml) - 5), yaml);
    FILE *f = fopen(expect_path, "r");
    if (!f) {
        fprintf(stderr, "%s: missing %s\n", yaml, expect_path);
        return 1;
    }
    struct msgs want = {0}, got = {0};
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (*line)
            collect(&want, line);
    }
    fclose(f);
    struct mq_config *cfg = NULL;
    enum mq_err err = mq_config_load(yaml, &cfg, collect, &got);
    int bad = 0;
    if (err != MQ_ERR_CONFIG || cfg != NULL) {
        fprintf(stderr, "%s: loaded with %s\n", yaml, mq_strerror(err));
        bad = 1;
    }
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    for (size_t i = 0; i < got.n; i++)
        strip(got.v[i], prefix);
    if (want.n == 0 || got.n != want.n)
        bad = 1;
    for (size_t i = 0; i < got.n && i < want.n; i++)
        if (strcmp(got.v[i], want.v[i]) != 0)
            bad = 1;
    if (bad) {
        fprintf(stderr, "%s: expected %zu errors:\n", yaml, want.n);
        for (size_t i = 0; i < want.n; i++)
            fprintf(stderr, "  want %s\n", want.v[i]);
        for (size_t i = 0; i < got.n; i++)
            fprintf(stderr, "  got  %s\n", got.v[i]);
    }
    msgs_free(&want);
    msgs_free(&got);
    return bad;
}

static void test_broken_fixtures(void)
{
    char *dir = data_dir();
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof(pattern), "%s/bad_*.yaml", dir);
    glob_t g;
    CU_ASSERT_EQUAL_FATAL(glob(pattern, 0, NULL, &g), 0);
    CU_ASSERT(g.gl_pathc >= 12);
    int failed = 0;
    for (size_t i = 0; i < g.gl_pathc; i++)
        failed += check_fixture(dir, g.gl_pathv[i]);
    CU_ASSERT_EQUAL(failed, 0);
    globfree(&g);
    free(dir);
}

/* ---- good files ---- */

/* Kafka listeners: each with its own address, advertised address and TLS; file paths made absolute. */
static void test_good_listeners(void)
{
    char *dir = data_dir();
    char path[PATH_MAX], want[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/good_listeners.yaml", dir);
    struct mq_config *cfg = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_config_load(path, &cfg, NULL, NULL), MQ_OK);
    const struct mq_config_kafka *k = &cfg->kafka;
    CU_ASSERT_PTR_NULL(k->listen);
    CU_ASSERT_EQUAL(k->max_connections, 100);
    CU_ASSERT_EQUAL_FATAL(k->nlisteners, 6);
    const struct mq_config_kafka_listener *l = &k->listeners[0];
    CU_ASSERT_STRING_EQUAL(l->listen_host, "127.0.0.1");
    CU_ASSERT_EQUAL(l->listen_port, 9092);
    CU_ASSERT_STRING_EQUAL(l->advertised, "127.0.0.1:9092");
    CU_ASSERT_FALSE(l->tls);
    CU_ASSERT_FALSE(l->allow_anonymous);
    CU_ASSERT_EQUAL(l->loc.line, 7);
    l = &k->listeners[1];
    CU_ASSERT_STRING_EQUAL(l->listen_host, "0.0.0.0");
    CU_ASSERT_STRING_EQUAL(l->advertised_host, "gw.example.com");
    CU_ASSERT_EQUAL(l->advertised_port, 9093);
    CU_ASSERT_TRUE(l->tls);
    snprintf(want, sizeof(want), "%s/tls/server.pem", dir);
    CU_ASSERT_STRING_EQUAL(l->tls_opts.cert, want);
    snprintf(want, sizeof(want), "%s/tls/server.key", dir);
    CU_ASSERT_STRING_EQUAL(l->tls_opts.key, want);
    snprintf(want, sizeof(want), "%s/tls/ca.pem", dir);
    CU_ASSERT_STRING_EQUAL(l->tls_opts.ca, want);
    CU_ASSERT_TRUE(l->tls_opts.require_client_cert);
    CU_ASSERT_EQUAL(l->tls_opts.principal, MQ_PRINCIPAL_CN);
    l = &k->listeners[2];
    CU_ASSERT_STRING_EQUAL(l->listen_host, "::1");
    CU_ASSERT_EQUAL(l->listen_port, 0);
    CU_ASSERT_TRUE(l->tls);
    CU_ASSERT_PTR_NULL(l->tls_opts.ca);
    CU_ASSERT_FALSE(l->tls_opts.require_client_cert);
    CU_ASSERT_EQUAL(l->sasl, 0);
    CU_ASSERT_EQUAL(l->tls_opts.principal, MQ_PRINCIPAL_DN);
    l = &k->listeners[3];
    CU_ASSERT_TRUE(l->allow_anonymous);
    CU_ASSERT_FALSE(l->tls_opts.require_client_cert);
    l = &k->listeners[4];
    CU_ASSERT_EQUAL(l->sasl,
                    (1u << MQ_SASL_PLAIN) | (1u << MQ_SASL_SCRAM_SHA_256) | (1u << MQ_SASL_SCRAM_SHA_512));
    CU_ASSERT_FALSE(l->allow_anonymous);
    l = &k->listeners[5];
    CU_ASSERT_EQUAL(l->sasl, 1u << MQ_SASL_PLAIN);
    CU_ASSERT_TRUE(l->allow_plain_without_tls);
    /* The ACLs, in file order, with their operations as written (acl/ adds what they imply). */
    CU_ASSERT_TRUE(k->acls_given);
    CU_ASSERT_EQUAL_FATAL(k->nacls, 3);
    const struct mq_config_kafka_acl *a = &k->acls[0];
    CU_ASSERT_STRING_EQUAL(a->principal, "User:alice");
    CU_ASSERT_EQUAL(a->loc.line, 29);
    CU_ASSERT_EQUAL_FATAL(a->ntopics, 2);
    CU_ASSERT_STRING_EQUAL(a->topics[0], "telemetry.*");
    CU_ASSERT_EQUAL(a->topic_ops[0], MQ_ACL_DESCRIBE | MQ_ACL_READ);
    CU_ASSERT_STRING_EQUAL(a->topics[1], "alerts");
    CU_ASSERT_EQUAL(a->topic_ops[1], MQ_ACL_DESCRIBE);
    CU_ASSERT_EQUAL_FATAL(a->ngroups, 1);
    CU_ASSERT_STRING_EQUAL(a->groups[0], "analytics-*");
    CU_ASSERT_EQUAL(a->group_ops[0], MQ_ACL_READ);
    a = &k->acls[1];
    CU_ASSERT_EQUAL_FATAL(a->ntopics, 1);
    CU_ASSERT_EQUAL(a->topic_ops[0], MQ_ACL_DESCRIBE | MQ_ACL_READ | MQ_ACL_DESCRIBE_CONFIGS);
    CU_ASSERT_EQUAL(a->ngroups, 0);
    a = &k->acls[2];
    CU_ASSERT_STRING_EQUAL(a->principal, MQ_ACL_ANYONE);
    CU_ASSERT_EQUAL(a->ntopics, 0);
    CU_ASSERT_EQUAL_FATAL(a->ngroups, 1);
    CU_ASSERT_STRING_EQUAL(a->groups[0], "ops-[0-9]");
    CU_ASSERT_EQUAL(a->group_ops[0], MQ_ACL_DESCRIBE | MQ_ACL_DELETE);
    mq_config_free(cfg);
    free(dir);
}

static struct mq_config *load_ok(const char *path)
{
    struct msgs m = {0};
    struct mq_config *cfg = NULL;
    enum mq_err err = mq_config_load(path, &cfg, collect, &m);
    for (size_t i = 0; i < m.n; i++)
        fprintf(stderr, "unexpected: %s\n", m.v[i]);
    CU_ASSERT_EQUAL(m.n, 0);
    msgs_free(&m);
    CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    return cfg;
}

static void assert_path(const char *got, const char *dir, const char *rel)
{
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/%s", dir, rel);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static void test_good_full(void)
{
    char *dir = data_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/good_full.yaml", dir);
    struct mq_config *cfg = load_ok(path);

    CU_ASSERT_EQUAL_FATAL(cfg->nfiles, 3);
    CU_ASSERT_STRING_EQUAL(cfg->files[0], path);
    assert_path(cfg->files[1], dir, "good_full.d/a.yaml");
    assert_path(cfg->files[2], dir, "good_full.d/b.yaml");
    assert_path(cfg->data_dir, dir, "data");

    const struct mq_config_log *l = &cfg->log;
    CU_ASSERT_EQUAL(l->flush_interval_ms, 0);
    CU_ASSERT_EQUAL(l->flush_bytes, 512 * 1024);
    CU_ASSERT_EQUAL(l->segment_bytes, 64LL << 20);
    CU_ASSERT_EQUAL(l->segment_ms, 12LL * 3600 * 1000);
    CU_ASSERT_EQUAL(l->index_interval_bytes, 8192);
    CU_ASSERT_EQUAL(l->batch_bytes, 128 * 1024);
    CU_ASSERT_EQUAL(l->max_pending_bytes, 32LL << 20);
    CU_ASSERT_EQUAL(l->checkpoint_bytes, 16LL << 20);
    CU_ASSERT_EQUAL(l->retention_check_ms, 30000);
    CU_ASSERT_EQUAL(l->max_disk_bytes, 20LL << 30);
    CU_ASSERT_EQUAL(l->retention_ms, 14LL * 86400 * 1000);
    CU_ASSERT_EQUAL(l->retention_bytes, 5000000000LL);

    CU_ASSERT_EQUAL_FATAL(cfg->nbrokers, 2);
    const struct mq_config_broker *b = &cfg->brokers[0];
    CU_ASSERT_PTR_EQUAL(mq_config_broker_find(cfg, "site"), b);
    CU_ASSERT_STRING_EQUAL(b->name, "site");
    CU_ASSERT_STRING_EQUAL(b->url, "mqtt://127.0.0.1");
    CU_ASSERT_STRING_EQUAL(b->host, "127.0.0.1");
    CU_ASSERT_EQUAL(b->port, 1883);
    CU_ASSERT_FALSE(b->tls);
    CU_ASSERT_STRING_EQUAL(b->client, "paho");
    CU_ASSERT_STRING_EQUAL(b->client_id, "mqlog-site");
    CU_ASSERT_EQUAL(b->protocol, 5);
    CU_ASSERT_TRUE(b->clean_session);
    CU_ASSERT_STRING_EQUAL(b->username, "gw");
    assert_path(b->password_file, dir, "secrets/site.pw");
    CU_ASSERT_EQUAL(b->sessions, 4);
    CU_ASSERT_STRING_EQUAL(b->share_group, "gw-pool");
    CU_ASSERT_EQUAL(b->keepalive_s, 0);
    CU_ASSERT_EQUAL(b->connect_timeout_ms, 2000);
    CU_ASSERT_EQUAL(b->reconnect_min_ms, 100);
    CU_ASSERT_EQUAL(b->reconnect_max_ms, 60000);
    CU_ASSERT_EQUAL(b->max_inflight, 65535);
    CU_ASSERT_TRUE(b->durable_ack);
    CU_ASSERT_EQUAL(b->dedup, MQ_DEDUP_PAYLOAD);
    CU_ASSERT_PTR_NULL(b->tls_opts.ca);
    CU_ASSERT_FALSE(b->tls_opts.insecure);
    CU_ASSERT_STRING_EQUAL(b->loc.file, path);
    CU_ASSERT_EQUAL(b->loc.line, 18);
    CU_ASSERT_EQUAL(b->loc.col, 5);

    b = &cfg->brokers[1];
    CU_ASSERT_STRING_EQUAL(b->name, "tls.broker-2");
    CU_ASSERT_STRING_EQUAL(b->host, "::1");
    CU_ASSERT_EQUAL(b->port, 8883);
    CU_ASSERT_TRUE(b->tls);
    CU_ASSERT_STRING_EQUAL(b->client, "mosquitto");
    CU_ASSERT_STRING_EQUAL(b->client_id, "12345");
    CU_ASSERT_EQUAL(b->protocol, 4);
    CU_ASSERT_FALSE(b->clean_session);
    CU_ASSERT_PTR_NULL(b->username);
    CU_ASSERT_PTR_NULL(b->password_file);
    CU_ASSERT_FALSE(b->durable_ack);
    CU_ASSERT_EQUAL(b->dedup, MQ_DEDUP_PACKET_ID);
    CU_ASSERT_STRING_EQUAL(b->tls_opts.ca, "/etc/ssl/certs/ca-certificates.crt"); /* absolute: as written */
    assert_path(b->tls_opts.cert, dir, "tls/server.pem");
    assert_path(b->tls_opts.key, dir, "tls/server.key");
    CU_ASSERT_TRUE(b->tls_opts.insecure);
    CU_ASSERT_EQUAL(b->sessions, 1);
    CU_ASSERT_STRING_EQUAL(b->share_group, "mqlog");
    CU_ASSERT_EQUAL(b->keepalive_s, 60);
    CU_ASSERT_EQUAL(b->connect_timeout_ms, 10000);
    CU_ASSERT_EQUAL(b->reconnect_min_ms, 500);
    CU_ASSERT_EQUAL(b->reconnect_max_ms, 30000);
    CU_ASSERT_EQUAL(b->max_inflight, 1000);
    CU_ASSERT_PTR_NULL(mq_config_broker_find(cfg, "nope"));

    CU_ASSERT_EQUAL_FATAL(cfg->nmappings, 5);
    const struct mq_config_mapping *m = &cfg->mappings[0];
    CU_ASSERT_EQUAL_FATAL(m->nfrom, 1);
    CU_ASSERT_STRING_EQUAL(m->from[0], "sensors/+/temperature");
    CU_ASSERT_STRING_EQUAL(m->broker, "site");
    CU_ASSERT_EQUAL(m->qos, 0);
    CU_ASSERT_STRING_EQUAL(m->to, "telemetry.temperature");
    CU_ASSERT_EQUAL(m->partitions, 8);
    CU_ASSERT_STRING_EQUAL(m->key, "level:2");
    CU_ASSERT_EQUAL(m->retention_ms, -1);
    CU_ASSERT_EQUAL(m->retention_bytes, -1);
    int64_t rms, rbytes;
    mq_config_mapping_retention(cfg, m, &rms, &rbytes);
    CU_ASSERT_EQUAL(rms, 14LL * 86400 * 1000);
    CU_ASSERT_EQUAL(rbytes, 5000000000LL);
    CU_ASSERT_EQUAL(m->loc.line, 42);

    m = &cfg->mappings[1];
    CU_ASSERT_EQUAL_FATAL(m->nfrom, 2);
    CU_ASSERT_STRING_EQUAL(m->from[0], "a/+/b/#");
    CU_ASSERT_STRING_EQUAL(m->from[1], "$share/g/c/+/+");
    CU_ASSERT_PTR_NULL(m->broker);
    CU_ASSERT_EQUAL(m->qos, 2);
    CU_ASSERT_STRING_EQUAL(m->to, "x.{1}.{2}");
    CU_ASSERT_EQUAL(m->partitions, 1);
    CU_ASSERT_STRING_EQUAL(m->key, "json:/device/id");
    mq_config_mapping_retention(cfg, m, &rms, &rbytes);
    CU_ASSERT_EQUAL(rms, 0);
    CU_ASSERT_EQUAL(rbytes, 1LL << 30);

    CU_ASSERT_STRING_EQUAL(cfg->mappings[2].key, "none");
    CU_ASSERT_EQUAL(cfg->mappings[2].qos, 1);
    m = &cfg->mappings[3];
    CU_ASSERT_STRING_EQUAL(m->to, "factory.{1}");
    CU_ASSERT_STRING_EQUAL(m->broker, "tls.broker-2");
    CU_ASSERT_STRING_EQUAL(m->loc.file, cfg->files[1]);
    CU_ASSERT_EQUAL(m->loc.line, 3);
    m = &cfg->mappings[4];
    CU_ASSERT_EQUAL(m->nfrom, 2);
    CU_ASSERT_STRING_EQUAL(m->to, "zed");
    CU_ASSERT_STRING_EQUAL(m->key, "topic");

    CU_ASSERT_STRING_EQUAL(cfg->unmatched, "lost.and.found");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.listen, "[::1]:0");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.listen_host, "::1");
    CU_ASSERT_EQUAL(cfg->kafka.listen_port, 0);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.advertised_host, "gw.example.com");
    CU_ASSERT_EQUAL(cfg->kafka.advertised_port, 19092);
    /* The single form is one listener. */
    CU_ASSERT_EQUAL_FATAL(cfg->kafka.nlisteners, 1);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.listeners[0].listen_host, "::1");
    CU_ASSERT_STRING_EQUAL(cfg->kafka.listeners[0].advertised, "gw.example.com:19092");
    CU_ASSERT_EQUAL(cfg->kafka.listeners[0].advertised_port, 19092);
    CU_ASSERT_FALSE(cfg->kafka.listeners[0].tls);
    CU_ASSERT_EQUAL(cfg->kafka.listeners[0].loc.line, 65);

    CU_ASSERT_STRING_EQUAL(cfg->site, "plant-7");
    CU_ASSERT_EQUAL_FATAL(cfg->nforwards, 2);
    const struct mq_config_forward *f = &cfg->forwards[0];
    CU_ASSERT_STRING_EQUAL(f->name, "central");
    CU_ASSERT_STRING_EQUAL(f->bootstrap, "kafka-1.dc:9092, kafka-2.dc:9093");
    CU_ASSERT_EQUAL_FATAL(f->ntopics, 3);
    CU_ASSERT_STRING_EQUAL(f->topics[0], "telemetry.*");
    CU_ASSERT_STRING_EQUAL(f->topics[1], "alerts");
    CU_ASSERT_STRING_EQUAL(f->topics[2], "x.[!a-c]?");
    CU_ASSERT_STRING_EQUAL(f->to, "edge.{site}.{topic}");
    CU_ASSERT_EQUAL(f->partitioning, MQ_FWD_PART_KEY);
    CU_ASSERT_EQUAL(f->mode, MQ_FWD_AT_LEAST_ONCE);
    CU_ASSERT_EQUAL(f->start, MQ_FWD_START_TIME);
    CU_ASSERT_EQUAL(f->start_ms, 1700000000000LL);
    CU_ASSERT_STRING_EQUAL(f->compression, "lz4");
    CU_ASSERT_EQUAL(f->max_bytes_per_s, 2 << 20);
    CU_ASSERT_FALSE(f->hold_retention);
    CU_ASSERT_TRUE(f->tls);
    assert_path(f->tls_opts.ca, dir, "tls/ca.pem");
    assert_path(f->tls_opts.cert, dir, "tls/server.pem");
    assert_path(f->tls_opts.key, dir, "tls/server.key");
    CU_ASSERT_TRUE(f->tls_opts.insecure);
    CU_ASSERT_STRING_EQUAL(f->sasl.mechanism, "SCRAM-SHA-512");
    CU_ASSERT_STRING_EQUAL(f->sasl.username, "gw-7");
    assert_path(f->sasl.password_file, dir, "secrets/kafka.pw");
    /* in the order written; unquoted numbers and booleans as their text */
    static const char *const names[] = {"linger.ms", "enable.gapless.guarantee", "client.id",
                                        "message.timeout.ms"};
    static const char *const values[] = {"20", "false", "plant-7-gw", "0"};
    CU_ASSERT_EQUAL_FATAL(f->nprops, 4);
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_STRING_EQUAL(f->prop_names[i], names[i]);
        CU_ASSERT_STRING_EQUAL(f->prop_values[i], values[i]);
    }
    CU_ASSERT_STRING_EQUAL(f->loc.file, path);
    CU_ASSERT_EQUAL(f->loc.line, 69);
    CU_ASSERT_EQUAL(f->loc.col, 5);

    f = &cfg->forwards[1];
    CU_ASSERT_STRING_EQUAL(f->name, "backup");
    CU_ASSERT_STRING_EQUAL(f->bootstrap, "[::1]:9092");
    CU_ASSERT_EQUAL_FATAL(f->ntopics, 1);
    CU_ASSERT_STRING_EQUAL(f->topics[0], "*");
    CU_ASSERT_FALSE(f->tls);
    CU_ASSERT_PTR_NULL(f->sasl.mechanism);
    mq_config_free(cfg);
    free(dir);
}

/* Collects route hits as "TOPIC PARTITION KEY" lines. */
struct routes {
    int n;
    char line[8][300];
};

static enum mq_err collect_route(void *opaque, const struct mq_route_hit *hit)
{
    struct routes *r = opaque;
    CU_ASSERT_FATAL(r->n < 8);
    snprintf(r->line[r->n++], sizeof(r->line[0]), "%s %d %.*s", hit->topic, (int)hit->partition,
             hit->key ? (int)hit->key_len : 4, hit->key ? (const char *)hit->key : "null");
    return MQ_OK;
}

static void route(struct mq_route_table *t, const char *broker, const char *topic, const char *payload,
                  struct routes *r)
{
    memset(r, 0, sizeof(*r));
    CU_ASSERT_EQUAL(mq_route_match(t, broker, topic, strlen(topic), payload, payload ? strlen(payload) : 0,
                                   collect_route, r, NULL),
                    MQ_OK);
}

static void test_route_from_config(void)
{
    char *dir = data_dir();
    char path[PATH_MAX], want[300];
    snprintf(path, sizeof(path), "%s/good_full.yaml", dir);
    struct mq_config *cfg = load_ok(path);
    struct mq_route_table *t = NULL;
    char why[300];
    CU_ASSERT_EQUAL_FATAL(mq_config_route_table(cfg, &t, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(mq_route_count(t), cfg->nmappings);
    mq_config_free(cfg); /* the table does not refer to the configuration */
    struct routes r;
    route(t, "site", "sensors/s1/temperature", "x", &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 1); /* mappings 0 and 2 name the same topic: stored once */
    snprintf(want, sizeof(want), "telemetry.temperature %d s1", (int)mq_partition_for_key("s1", 2, 8));
    CU_ASSERT_STRING_EQUAL(r.line[0], want);
    route(t, "site", "a/x/b/c/d", "{\"device\": {\"id\": 5}}", &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT_STRING_EQUAL(r.line[0], "x.x.c.d 0 5");
    route(t, "site", "c/p/q", "[]", &r);
    CU_ASSERT_STRING_EQUAL(r.line[0], "x.p.q 0 null");
    route(t, "site", "factory/a", "x", &r);
    CU_ASSERT_STRING_EQUAL(r.line[0], "lost.and.found 0 factory/a");
    route(t, "tls.broker-2", "factory/line 3/press", "x", &r);
    CU_ASSERT_STRING_EQUAL(r.line[0], "factory.line_3.press 0 factory/line 3/press");
    route(t, NULL, "z/2", "x", &r);
    CU_ASSERT_STRING_EQUAL(r.line[0], "zed 0 z/2");
    mq_route_table_free(t);
    free(dir);
}

static void test_example_conf(void)
{
    const char *src = getenv("MQ_SOURCE_DIR");
    char path[PATH_MAX], want[300];
    snprintf(path, sizeof(path), "%s/conf/mqlogd.yaml", src ? src : ".");
    struct mq_config *cfg = load_ok(path);
    CU_ASSERT_EQUAL(cfg->nfiles, 2);
    CU_ASSERT_STRING_EQUAL(cfg->data_dir, "/var/lib/mqlog");
    CU_ASSERT_EQUAL(cfg->log.flush_interval_ms, 5);
    CU_ASSERT_EQUAL(cfg->log.segment_bytes, 256LL << 20);
    CU_ASSERT_EQUAL(cfg->log.retention_ms, 7LL * 86400 * 1000);
    CU_ASSERT_EQUAL_FATAL(cfg->nbrokers, 1); /* the TLS broker is commented out: --check reads its files */
    CU_ASSERT_EQUAL(cfg->brokers[0].protocol, 5);
    CU_ASSERT_STRING_EQUAL(cfg->brokers[0].client_id, "mqlog-site-1");
    CU_ASSERT_EQUAL(cfg->nmappings, 5);
    CU_ASSERT_PTR_NULL(cfg->unmatched);
    CU_ASSERT_EQUAL(cfg->kafka.listen_port, 9092);
    CU_ASSERT_STRING_EQUAL(cfg->kafka.advertised, "127.0.0.1:9092");
    CU_ASSERT_EQUAL(cfg->kafka.nlisteners, 1);
    struct mq_route_table *t = NULL;
    char why[300];
    CU_ASSERT_EQUAL_FATAL(mq_config_route_table(cfg, &t, why, sizeof(why)), MQ_OK);
    struct routes r;
    route(t, "site", "sensors/hall/temperature", "21.5", &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    snprintf(want, sizeof(want), "telemetry.temperature %d hall", (int)mq_partition_for_key("hall", 4, 8));
    CU_ASSERT_STRING_EQUAL(r.line[0], want);
    route(t, "site", "sensors/hall/humidity", "40", &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT_EQUAL(strncmp(r.line[0], "telemetry.hall ", 15), 0);
    route(t, "cloud", "alerts/fire", "{\"device\": {\"id\": \"d-9\"}}", &r);
    snprintf(want, sizeof(want), "alerts %d d-9", (int)mq_partition_for_key("d-9", 3, 4));
    CU_ASSERT_STRING_EQUAL(r.line[0], want);
    route(t, "cloud", "factory/line 3/press/state", "on", &r);
    CU_ASSERT_STRING_EQUAL(r.line[0], "factory.line_3.press.state 0 null");
    route(t, "site", "meters/m1/reading", "7", &r);
    snprintf(want, sizeof(want), "meters %d m1", (int)mq_partition_for_key("m1", 2, 4));
    CU_ASSERT_STRING_EQUAL(r.line[0], want);
    route(t, "cloud", "meters/m1/reading", "7", &r);
    CU_ASSERT_EQUAL(r.n, 0); /* that mapping is for broker site only, and unmatched messages are dropped */
    mq_route_table_free(t);
    mq_config_free(cfg);
}

/* ---- defaults and edge cases ---- */

/* log.compression and a mapping's compression, recompact_after, headers and header_defaults, given and
 * not. */
static void test_compression_headers(void)
{
    char *tmp = mq_test_tmpdir("config");
    char *path = write_file(tmp, "c.yaml",
                            "log:\n"
                            "  compression: zstd\n"
                            "  recompact_after: 1h\n"
                            "brokers:\n"
                            "  - name: b\n"
                            "    url: mqtt://h\n"
                            "mappings:\n"
                            "  - from: a/#\n"
                            "    to: ta\n"
                            "  - from: b/#\n"
                            "    to: tb\n"
                            "    compression: lz4\n"
                            "    recompact_after: 0s\n"
                            "    headers: [topic, properties]\n"
                            "    header_defaults: omit\n"
                            "  - from: c/#\n"
                            "    to: tc\n"
                            "    compression: none\n"
                            "    headers: none\n");
    struct mq_config *cfg = load_ok(path);
    CU_ASSERT_EQUAL_FATAL(cfg->nmappings, 3);
    CU_ASSERT_EQUAL(cfg->log.compression, MQ_CONFIG_CODEC_ZSTD);
    const struct mq_config_mapping *m = cfg->mappings;
    CU_ASSERT_EQUAL(m[0].compression, -1);
    CU_ASSERT_EQUAL(mq_config_mapping_compression(cfg, &m[0]), MQ_CONFIG_CODEC_ZSTD);
    CU_ASSERT_EQUAL(m[0].headers, MQ_CONFIG_HDR_ALL);
    CU_ASSERT_EQUAL(m[0].omit_default_headers, 0);
    CU_ASSERT_EQUAL(mq_config_mapping_compression(cfg, &m[1]), MQ_CONFIG_CODEC_LZ4);
    CU_ASSERT_EQUAL(m[1].headers, (1u << MQ_CONFIG_HDR_TOPIC) | (1u << MQ_CONFIG_HDR_PROPERTIES));
    CU_ASSERT_EQUAL(m[1].omit_default_headers, 1);
    CU_ASSERT_EQUAL(mq_config_mapping_compression(cfg, &m[2]), MQ_CONFIG_CODEC_NONE);
    CU_ASSERT_EQUAL(m[2].headers, 0);
    CU_ASSERT_EQUAL(cfg->log.recompact_after_ms, 3600 * 1000);
    CU_ASSERT_EQUAL(mq_config_mapping_recompact_after(cfg, &m[0]), 3600 * 1000);
    CU_ASSERT_EQUAL(mq_config_mapping_recompact_after(cfg, &m[1]), 0);
    mq_config_free(cfg);
    free(path);
    mq_test_rmdir(tmp);
}

static void test_defaults(void)
{
    char *tmp = mq_test_tmpdir("config");
    /* An empty configuration is refused (at 1:1), whatever form the emptiness takes. */
    static const char *const empty[] = {"", "# only a comment\n", "---\n", "{}\n"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        char *path = write_file(tmp, "empty.yaml", empty[i]);
        struct msgs m = {0};
        struct mq_config *cfg = NULL;
        CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(cfg);
        CU_ASSERT_EQUAL_FATAL(m.n, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(m.v[0], "empty.yaml:1:1: the configuration is empty"));
        msgs_free(&m);
        free(path);
    }
    /* One mapping and nothing else: every other key has its default. */
    static const char *const texts[] = {"mappings:\n  - from: a/b\n    to: t\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char *path = write_file(tmp, "minimal.yaml", texts[i]);
        struct mq_config *cfg = load_ok(path);
        CU_ASSERT_STRING_EQUAL(cfg->data_dir, "/var/lib/mqlog");
        /* The store's documented defaults (log.h). */
        CU_ASSERT_EQUAL(cfg->log.flush_interval_ms, 5);
        CU_ASSERT_EQUAL(cfg->log.flush_bytes, 1 << 20);
        CU_ASSERT_EQUAL(cfg->log.segment_bytes, 1LL << 30);
        CU_ASSERT_EQUAL(cfg->log.segment_ms, 7LL * 86400 * 1000);
        CU_ASSERT_EQUAL(cfg->log.index_interval_bytes, 4096);
        CU_ASSERT_EQUAL(cfg->log.batch_bytes, 256 * 1024);
        CU_ASSERT_EQUAL(cfg->log.max_pending_bytes, 64LL << 20);
        CU_ASSERT_EQUAL(cfg->log.checkpoint_bytes, 64LL << 20);
        CU_ASSERT_EQUAL(cfg->log.retention_check_ms, 5 * 60 * 1000);
        CU_ASSERT_EQUAL(cfg->log.max_disk_bytes, 0);
        CU_ASSERT_EQUAL(cfg->log.retention_ms, MQ_RETENTION_MS_DEFAULT);
        CU_ASSERT_EQUAL(cfg->log.retention_bytes, 0);
        CU_ASSERT_EQUAL(cfg->log.compression, MQ_CONFIG_CODEC_NONE);
        CU_ASSERT_EQUAL(cfg->log.recompact_after_ms, 0);
        CU_ASSERT_EQUAL(cfg->nbrokers, 0);
        CU_ASSERT_EQUAL(cfg->nmappings, 1);
        CU_ASSERT_PTR_NULL(cfg->unmatched);
        CU_ASSERT_PTR_NULL(cfg->kafka.listen);
        CU_ASSERT_PTR_NULL(cfg->kafka.advertised);
        CU_ASSERT_EQUAL(cfg->kafka.nlisteners, 0);
        CU_ASSERT_FALSE(cfg->kafka.acls_given); /* no acls: no authorization */
        char host[256] = "";
        CU_ASSERT_EQUAL(gethostname(host, sizeof(host)), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->site);
        CU_ASSERT_STRING_EQUAL(cfg->site, host);
        CU_ASSERT_EQUAL(cfg->nforwards, 0);
        CU_ASSERT_PTR_NULL(cfg->forwards);
        struct mq_route_table *t = NULL;
        CU_ASSERT_EQUAL(mq_config_route_table(cfg, &t, NULL, 0), MQ_OK);
        CU_ASSERT_EQUAL(mq_route_count(t), 1);
        mq_route_table_free(t);
        mq_config_free(cfg);
        free(path);
    }
    mq_config_free(NULL);
    mq_test_rmdir(tmp);
}

/* A broker given only its name and URL: the documented defaults of brokers[] (table.c). */
static void test_broker_defaults(void)
{
    char *tmp = mq_test_tmpdir("config");
    char *path = write_file(tmp, "b.yaml", "brokers: [{name: b, url: \"mqtt://h\"}]\n");
    struct mq_config *cfg = load_ok(path);
    CU_ASSERT_EQUAL_FATAL(cfg->nbrokers, 1);
    const struct mq_config_broker *b = &cfg->brokers[0];
    CU_ASSERT_STRING_EQUAL(b->client, "mosquitto");
    CU_ASSERT_STRING_EQUAL(b->client_id, "mqlog-b");
    CU_ASSERT_EQUAL(b->port, 1883);
    CU_ASSERT_EQUAL(b->protocol, 4);
    CU_ASSERT_FALSE(b->clean_session);
    CU_ASSERT_TRUE(b->durable_ack);
    CU_ASSERT_EQUAL(b->sessions, 1);
    CU_ASSERT_EQUAL(b->max_inflight, 1000);
    mq_config_free(cfg);
    free(path);
    mq_test_rmdir(tmp);
}

/* A forwarder given only what is required: the documented defaults of forward[] (table.c). */
static void test_forward_defaults(void)
{
    char *tmp = mq_test_tmpdir("config");
    char *path = write_file(tmp, "f.yaml", "forward: [{name: f, bootstrap: \"k:9092\", topics: t}]\n");
    struct mq_config *cfg = load_ok(path);
    CU_ASSERT_EQUAL_FATAL(cfg->nforwards, 1);
    const struct mq_config_forward *f = &cfg->forwards[0];
    CU_ASSERT_STRING_EQUAL(f->name, "f");
    CU_ASSERT_STRING_EQUAL(f->bootstrap, "k:9092");
    CU_ASSERT_EQUAL_FATAL(f->ntopics, 1);
    CU_ASSERT_STRING_EQUAL(f->topics[0], "t");
    CU_ASSERT_STRING_EQUAL(f->to, "{site}.{topic}");
    CU_ASSERT_EQUAL(f->partitioning, MQ_FWD_PART_SAME);
    CU_ASSERT_EQUAL(f->mode, MQ_FWD_EXACTLY_ONCE);
    CU_ASSERT_EQUAL(f->start, MQ_FWD_START_EARLIEST);
    CU_ASSERT_EQUAL(f->start_ms, 0);
    CU_ASSERT_STRING_EQUAL(f->compression, "zstd");
    CU_ASSERT_EQUAL(f->max_bytes_per_s, 0);
    CU_ASSERT_TRUE(f->hold_retention);
    CU_ASSERT_FALSE(f->tls);
    CU_ASSERT_PTR_NULL(f->tls_opts.ca);
    CU_ASSERT_FALSE(f->tls_opts.insecure);
    CU_ASSERT_PTR_NULL(f->sasl.mechanism);
    CU_ASSERT_PTR_NULL(f->sasl.username);
    CU_ASSERT_PTR_NULL(f->sasl.password_file);
    CU_ASSERT_EQUAL(f->nprops, 0);
    CU_ASSERT_EQUAL(f->loc.line, 1);
    mq_config_free(cfg);
    free(path);

    /* start: latest; an empty tls section turns TLS on with the system's trust store */
    path = write_file(tmp, "f.yaml",
                      "site: s\nforward:\n  - {name: f, bootstrap: \"k:1\", topics: t, start: latest,"
                      " tls: {}}\n");
    cfg = load_ok(path);
    CU_ASSERT_STRING_EQUAL(cfg->site, "s");
    CU_ASSERT_EQUAL(cfg->forwards[0].start, MQ_FWD_START_LATEST);
    CU_ASSERT_TRUE(cfg->forwards[0].tls);
    CU_ASSERT_PTR_NULL(cfg->forwards[0].tls_opts.ca);
    char *pw = (char *)"x", why[300];
    CU_ASSERT_EQUAL(mq_config_sasl_password(&cfg->forwards[0].sasl, &pw, why, sizeof(why)), MQ_OK);
    CU_ASSERT_PTR_NULL(pw); /* no sasl section */
    mq_config_free(cfg);
    free(path);

    /* The SASL password is the first line of its file, relative to the configuration's directory. */
    free(write_file(tmp, "kafka.pw", "s3cret\nignored\n"));
    path = write_file(tmp, "f.yaml",
                      "forward:\n  - {name: f, bootstrap: \"k:1\", topics: t,\n"
                      "     sasl: {mechanism: PLAIN, username: u, password_file: kafka.pw}}\n");
    cfg = load_ok(path);
    CU_ASSERT_FALSE(cfg->forwards[0].tls);
    CU_ASSERT_STRING_EQUAL(cfg->forwards[0].sasl.mechanism, "PLAIN");
    CU_ASSERT_EQUAL(mq_config_sasl_password(&cfg->forwards[0].sasl, &pw, why, sizeof(why)), MQ_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pw);
    CU_ASSERT_STRING_EQUAL(pw, "s3cret");
    free(pw);
    mq_config_free(cfg);
    free(path);
    mq_test_rmdir(tmp);
}

/* Properties reach librdkafka at load: its own message for a value it refuses, at the value. */
static void test_forward_properties(void)
{
    char *tmp = mq_test_tmpdir("config");
    char *path = write_file(tmp, "p.yaml",
                            "forward:\n"
                            "  - name: f\n"
                            "    bootstrap: k:9092\n"
                            "    topics: t\n"
                            "    properties:\n"
                            "      queue.buffering.max.messages: 1000\n"
                            "      linger.ms: abc\n"
                            "      batch.num.messages: 10\n");
    struct msgs m = {0};
    struct mq_config *cfg = NULL;
    CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(m.n, 1);
    char want[PATH_MAX + 200];
    snprintf(want, sizeof(want),
             "%s:7:18: properties: 'linger.ms': invalid value for configuration property "
             "\"queue.buffering.max.ms\"",
             path);
    CU_ASSERT_STRING_EQUAL(m.v[0], want);
    msgs_free(&m);
    free(path);

    /* Many properties keep their order, with the values as written. */
    size_t cap = 64 * 1024, n = 0;
    char *text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    n += (size_t)snprintf(text + n, cap - n,
                          "forward:\n  - {name: f, bootstrap: \"k:1\", topics: t}\n"
                          "  - name: g\n    bootstrap: k:1\n    topics: t\n    properties:\n");
    static const char *const props[][2] = {
        {"linger.ms", "5"},
        {"batch.size", "65536"},
        {"client.id", "a b c"},
        {"message.timeout.ms", "0"},
        {"enable.gapless.guarantee", "true"},
        {"retries", "2147483647"},
        {"debug", "broker,msg"},
    };
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        n += (size_t)snprintf(text + n, cap - n, "      %s: %s\n", props[i][0], props[i][1]);
    path = write_file(tmp, "p.yaml", text);
    cfg = load_ok(path);
    CU_ASSERT_EQUAL_FATAL(cfg->nforwards, 2);
    CU_ASSERT_EQUAL(cfg->forwards[0].nprops, 0);
    const struct mq_config_forward *f = &cfg->forwards[1];
    CU_ASSERT_EQUAL_FATAL(f->nprops, sizeof(props) / sizeof(props[0]));
    for (size_t i = 0; i < f->nprops; i++) {
        CU_ASSERT_STRING_EQUAL(f->prop_names[i], props[i][0]);
        CU_ASSERT_STRING_EQUAL(f->prop_values[i], props[i][1]);
    }
    mq_config_free(cfg);
    free(text);
    free(path);
    mq_test_rmdir(tmp);
}

static void test_unreadable(void)
{
    char *tmp = mq_test_tmpdir("config");
    struct msgs m = {0};
    struct mq_config *cfg = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/none.yaml", tmp);
    CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(m.n, 1);
    char want[PATH_MAX + 100];
    snprintf(want, sizeof(want), "%s: cannot read the configuration file: no such file or directory", path);
    CU_ASSERT_STRING_EQUAL(m.v[0], want);
    msgs_free(&m);
    CU_ASSERT_EQUAL(mq_config_load(tmp, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_EQUAL_FATAL(m.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[0], "not a regular file"));
    msgs_free(&m);
    /* Invalid UTF-8 is a reader error, without a line. */
    char *bin = write_file(tmp, "bin.yaml", "data_dir: /a\xff\n");
    CU_ASSERT_EQUAL(mq_config_load(bin, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_EQUAL_FATAL(m.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[0], "YAML syntax error"));
    msgs_free(&m);
    /* Without a report function the errors go to the diagnostics (stderr); nothing leaks. */
    int level = mq_diag_level;
    mq_diag_level = 0;
    CU_ASSERT_EQUAL(mq_config_load(bin, &cfg, NULL, NULL), MQ_ERR_CONFIG);
    mq_diag_level = level;
    free(bin);
    mq_test_rmdir(tmp);
}

static void test_include_cycle_and_nesting(void)
{
    char *tmp = mq_test_tmpdir("config");
    char *main_path =
        write_file(tmp, "main.yaml", "include: a.yaml\nbrokers: [{name: b, url: \"mqtt://h\"}]\n");
    free(write_file(tmp, "a.yaml", "include: sub/*.yaml\nmappings: [{from: a, to: a, broker: b}]\n"));
    char sub[PATH_MAX];
    snprintf(sub, sizeof(sub), "%s/sub", tmp);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
    free(write_file(sub, "x.yaml", "include: ../main.yaml\nmappings: [{from: x, to: x}]\n"));
    struct msgs m = {0};
    struct mq_config *cfg = NULL;
    CU_ASSERT_EQUAL(mq_config_load(main_path, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_EQUAL_FATAL(m.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[0], "sub/x.yaml:1:10: '"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[0], "is included more than once (or includes itself)"));
    msgs_free(&m);
    /* Without the cycle, the nested file's mapping arrives after its parent's. */
    free(write_file(sub, "x.yaml", "mappings: [{from: x, to: x}]\n"));
    cfg = load_ok(main_path);
    CU_ASSERT_EQUAL_FATAL(cfg->nmappings, 2);
    CU_ASSERT_STRING_EQUAL(cfg->mappings[0].to, "a");
    CU_ASSERT_STRING_EQUAL(cfg->mappings[1].to, "x");
    CU_ASSERT_EQUAL(cfg->nfiles, 3);
    mq_config_free(cfg);
    free(main_path);
    mq_test_rmdir(tmp);
}

static void test_many_errors(void)
{
    /* 1200 unknown keys: 1000 are reported, then a count of the rest. */
    char *tmp = mq_test_tmpdir("config");
    size_t cap = 1200 * 16 + 1, n = 0;
    char *text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    for (int i = 0; i < 1200; i++)
        n += (size_t)snprintf(text + n, cap - n, "k%d: 1\n", i);
    char *path = write_file(tmp, "many.yaml", text);
    struct msgs m = {0};
    struct mq_config *cfg = NULL;
    CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_EQUAL_FATAL(m.n, 1001);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[0], "many.yaml:1:1: unknown key 'k0'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[999], "many.yaml:1000:1: unknown key 'k999'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[1000], "200 more errors not shown"));
    msgs_free(&m);
    free(text);
    free(path);
    mq_test_rmdir(tmp);
}

static void test_alias_bomb(void)
{
    /* Nested aliases make a tiny file stand for billions of nodes; none of the configuration's lists
     * nests, so they are refused at once, and each error is reported once (at the anchor). */
    char *tmp = mq_test_tmpdir("config");
    char *path = write_file(tmp, "bomb.yaml",
                            "mappings:\n"
                            "  - from: [&a [x, x, x, x, x, x, x, x, x, x],\n"
                            "           &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a],\n"
                            "           &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b],\n"
                            "           [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]]\n"
                            "    to: t\n");
    struct msgs m = {0};
    struct mq_config *cfg = NULL;
    CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_EQUAL(m.n, 4);
    for (size_t i = 0; i < m.n; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(m.v[i], "got a list item that is a list"));
    msgs_free(&m);
    free(path);

    /* Aliases can still multiply real work (2001 mappings of 100 filters each): the walk stops at a bound. */
    size_t cap = 64 * 1024, n = 0;
    char *text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    n += (size_t)snprintf(text + n, cap - n, "x-filters: &f [");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(text + n, cap - n, "%sf/%d", i ? ", " : "", i);
    n += (size_t)snprintf(text + n, cap - n, "]\nx-map: &m {from: *f, to: t}\nmappings: [");
    for (int i = 0; i < 2001; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s*m", i ? ", " : "");
    snprintf(text + n, cap - n, "]\n");
    path = write_file(tmp, "wide.yaml", text);
    CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
    bool too_large = false;
    for (size_t i = 0; i < m.n; i++)
        too_large = too_large || strstr(m.v[i], "the configuration is too large") != NULL;
    CU_ASSERT_TRUE(too_large);
    CU_ASSERT_EQUAL(m.n, 3); /* the two unknown x- keys and the size */
    msgs_free(&m);
    free(text);
    free(path);
    mq_test_rmdir(tmp);
}

/* CPU seconds of this process: what a quadratic cost shows in, whatever else runs on the machine. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loads text (written to tmp/name) expecting failure; returns the first message, without the file's
 * directory, and the CPU time taken in *secs. */
static char *load_fail(const char *tmp, const char *name, const char *text, double *secs)
{
    char *path = write_file(tmp, name, text);
    struct msgs m = {0};
    struct mq_config *cfg = NULL;
    double t0 = now_s();
    CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
    *secs = now_s() - t0;
    CU_ASSERT_PTR_NULL(cfg);
    char *first = m.n ? strdup(m.v[0]) : strdup("(no message)");
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof(prefix), "%s/", tmp);
    strip(first, prefix);
    msgs_free(&m);
    free(path);
    return first;
}

/* A text of n copies of unit between head and tail (malloc'd). */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *t = malloc(hl + ul * n + tl + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memcpy(t, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(t + hl + i * ul, unit, ul);
    memcpy(t + hl + ul * n, tail, tl + 1);
    return t;
}

/*
 * Hostile sizes (issue 11, finding 9): what made libyaml or the duplicate checks take seconds to minutes is
 * refused, or loaded, in well under a second. The bounds are generous (CPU time, under a sanitizer too): they
 * only catch a return of the quadratic cost; the real figures are printed.
 */
static void test_hostile_sizes(void)
{
    char *tmp = mq_test_tmpdir("config");
    double secs;
    /* 100,000 nested flow lists took 36 s inside libyaml: refused at the 65th level. */
    char *nest = repeat("data_dir: /d\nx: ", "[", 100000, "");
    char *end = repeat(nest, "]", 100000, "\n");
    char *msg = load_fail(tmp, "nest.yaml", end, &secs);
    fprintf(stderr, "\n    100000 nested lists: %.3f s CPU: %s\n", secs, msg);
    CU_ASSERT_STRING_EQUAL(msg, "nest.yaml:2:67: YAML mappings and lists nest more than 64 deep");
    CU_ASSERT(secs < 10);
    free(msg);
    free(end);
    free(nest);
    /* ...and the same in block style, mappings indented one more space each. */
    size_t cap = 200 * 1000, n = 0;
    char *text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    n += (size_t)snprintf(text, cap, "data_dir: /d\n");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(text + n, cap - n, "%*sk%d:\n", i, "", i);
    msg = load_fail(tmp, "block.yaml", text, &secs);
    CU_ASSERT_STRING_EQUAL(msg, "block.yaml:66:65: YAML mappings and lists nest more than 64 deep");
    free(msg);
    free(text);

    /* More than 8 MiB: refused before parsing, with the limit named. */
    text = repeat("", "# comment\n", 900 * 1024, "");
    msg = load_fail(tmp, "big.yaml", text, &secs);
    CU_ASSERT_STRING_EQUAL(msg, "big.yaml: the configuration file is too large (more than 8 MiB)");
    free(msg);
    free(text);
    /* 100,000 %TAG directives took 66 s; 100,000 anchors with as many aliases 33 s. */
    cap = 100000 * 40;
    text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    n = 0;
    for (int i = 0; i < 100000; i++)
        n += (size_t)snprintf(text + n, cap - n, "%%TAG !t%d! tag:x,1:%d\n", i, i);
    snprintf(text + n, cap - n, "---\ndata_dir: /d\n");
    msg = load_fail(tmp, "tags.yaml", text, &secs);
    fprintf(stderr, "    100000 %%TAG directives: %.3f s CPU: %s\n", secs, msg);
    CU_ASSERT_STRING_EQUAL(msg, "tags.yaml:101:1: more than 100 lines that start with '%' (YAML directives)");
    CU_ASSERT(secs < 10);
    free(msg);
    n = (size_t)snprintf(text, cap, "x:\n");
    for (int i = 0; i < 50000; i++)
        n += (size_t)snprintf(text + n, cap - n, "  - &a%d v\n", i);
    msg = load_fail(tmp, "anchors.yaml", text, &secs);
    CU_ASSERT_STRING_EQUAL(msg, "anchors.yaml:1002:5: more than 1000 YAML anchors in one file");
    free(msg);
    n = (size_t)snprintf(text, cap, "x: &a v\ny:\n");
    for (int i = 0; i < 50000; i++)
        n += (size_t)snprintf(text + n, cap - n, "  - *a\n");
    msg = load_fail(tmp, "aliases.yaml", text, &secs);
    CU_ASSERT_STRING_EQUAL(msg, "aliases.yaml:10003:5: more than 10000 YAML aliases in one file");
    free(msg);
    free(text);
    /* Two million list items would take libyaml 330 MB. */
    text = repeat("data_dir: /d\nx: [", "a,", 2000000, "a]\n");
    msg = load_fail(tmp, "wide.yaml", text, &secs);
    CU_ASSERT_STRING_EQUAL(
        msg, "wide.yaml:2:999995: the configuration is too large (more than 500000 YAML nodes)");
    free(msg);
    free(text);

    /* 40,000 filters in one mapping took 3.7 s (each compared with all before it), 40,000 brokers and as
     * many forwarder properties the same: now one hash each. */
    cap = 40000 * 128;
    text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    n = (size_t)snprintf(text, cap, "mappings:\n  - to: t\n    from:\n");
    for (int i = 0; i < 40000; i++)
        n += (size_t)snprintf(text + n, cap - n, "      - sensors/building-%d/+/temperature\n", i);
    n += (size_t)snprintf(text + n, cap - n, "brokers:\n");
    for (int i = 0; i < 40000; i++)
        n += (size_t)snprintf(text + n, cap - n, "  - {name: b%d, url: \"mqtt://h\"}\n", i);
    char *path = write_file(tmp, "many.yaml", text);
    double t0 = now_s();
    struct mq_config *cfg = load_ok(path);
    secs = now_s() - t0;
    fprintf(stderr, "    40000 filters and 40000 brokers: %.3f s CPU\n", secs);
    CU_ASSERT(secs < 10);
    CU_ASSERT_EQUAL_FATAL(cfg->nmappings, 1);
    CU_ASSERT_EQUAL(cfg->mappings[0].nfrom, 40000);
    CU_ASSERT_EQUAL(cfg->nbrokers, 40000);
    mq_config_free(cfg);
    free(path);
    /* The repeats are still found, each once, and named with the first one's line. */
    n = (size_t)snprintf(text, cap, "mappings:\n  - to: t\n    from:\n");
    for (int i = 0; i < 40000; i++)
        n += (size_t)snprintf(text + n, cap - n, "      - s/%d\n", i % 39999);
    n += (size_t)snprintf(text + n, cap - n, "brokers:\n");
    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(text + n, cap - n, "  - {name: b%d, url: \"mqtt://h\"}\n", i % 2);
    n += (size_t)snprintf(text + n, cap - n,
                          "forward:\n  - {name: f, bootstrap: \"k:1\", topics: t}\n"
                          "  - name: f\n    bootstrap: k:1\n    topics: t\n    properties:\n");
    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(text + n, cap - n, "      linger.ms: %d\n", i);
    msg = load_fail(tmp, "repeats.yaml", text, &secs);
    CU_ASSERT_STRING_EQUAL(msg, "repeats.yaml:40003:9: from: filter 's/0' is listed twice");
    free(msg);
    path = write_file(tmp, "repeats.yaml", text);
    struct msgs m = {0};
    CU_ASSERT_EQUAL(mq_config_load(path, &cfg, collect, &m), MQ_ERR_CONFIG);
    CU_ASSERT_EQUAL_FATAL(m.n, 5);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(m.v[1], "repeats.yaml:40007:12: duplicate broker name 'b0' (also at line 40005)"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(m.v[2], "repeats.yaml:40010:11: duplicate forwarder name 'f' (also at line 40009)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[3], "repeats.yaml:40015:7: properties: duplicate property 'linger.ms' "
                                          "(first given at line 40014, column 7)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.v[4], "repeats.yaml:40016:7: properties: duplicate property 'linger.ms' "
                                          "(first given at line 40014, column 7)"));
    msgs_free(&m);
    free(path);
    free(text);
    mq_test_rmdir(tmp);
}

static void test_yaml_features(void)
{
    /* Anchors, flow style, quoting styles and a merge-free alias all work as YAML defines them. */
    char *tmp = mq_test_tmpdir("config");
    char *path = write_file(tmp, "y.yaml",
                            "brokers:\n"
                            "  - {name: 'b1', url: \"mqtt://h:1\", client_id: &id shared-id}\n"
                            "  - name: b2\n"
                            "    url: >-\n"
                            "      mqtt://h:2\n"
                            "    client_id: *id\n"
                            "mappings:\n"
                            "  - from: &f [\"a/#\"]\n"
                            "    to: a\n"
                            "    partitions: 3\n"
                            "  - from: *f\n"
                            "    to: b\n"
                            "    broker: b2\n");
    struct mq_config *cfg = load_ok(path);
    CU_ASSERT_EQUAL_FATAL(cfg->nbrokers, 2);
    CU_ASSERT_STRING_EQUAL(cfg->brokers[0].client_id, "shared-id");
    CU_ASSERT_STRING_EQUAL(cfg->brokers[1].client_id, "shared-id");
    CU_ASSERT_EQUAL(cfg->brokers[1].port, 2);
    CU_ASSERT_EQUAL_FATAL(cfg->nmappings, 2);
    CU_ASSERT_STRING_EQUAL(cfg->mappings[1].from[0], "a/#");
    CU_ASSERT_EQUAL(cfg->mappings[0].partitions, 3);
    mq_config_free(cfg);
    free(path);
    mq_test_rmdir(tmp);
}

int main(void)
{
    /* one test a line (clang-format would pack this list into columns) */
    /* clang-format off */
    static const struct mq_test tests[] = {
        MQ_TEST(test_broken_fixtures),
        MQ_TEST(test_good_full),
        MQ_TEST(test_good_listeners),
        MQ_TEST(test_route_from_config),
        MQ_TEST(test_example_conf),
        MQ_TEST(test_defaults),
        MQ_TEST(test_compression_headers),
        MQ_TEST(test_broker_defaults),
        MQ_TEST(test_forward_defaults),
        MQ_TEST(test_forward_properties),
        MQ_TEST(test_unreadable),
        MQ_TEST(test_include_cycle_and_nesting),
        MQ_TEST(test_many_errors),
        MQ_TEST(test_alias_bomb),
        MQ_TEST(test_yaml_features),
        MQ_TEST(test_hostile_sizes),
        MQ_TEST_END,
    };
    /* clang-format on */
    return mq_test_run("config", tests);
}
