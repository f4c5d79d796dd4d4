/*
 * test_paho.c - the Paho connector (connectors/paho) against a real mosquitto (tests/broker.h), the real
 * ingest layer and a real store in a temporary directory; messages are published with libmosquitto from the
 * test (not with Paho, whose single receive thread the connector under test blocks on purpose).
 *
 * Durability is made observable without sleeps by interposing fdatasync(): the store is linked statically
 * into this executable, so its flusher calls the fdatasync() defined below, which blocks while the test
 * holds the "gate" closed. With the gate closed no record can become durable, so a durable-ack connector
 * must not acknowledge; the broker's log (log_type all) shows whether it did.
 *
 * Set MQ_PAHO_BENCH=<messages> to also run the throughput measurement (durable_ack on/off, 1 and 4
 * sessions; not part of the suite).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "gate.h"
#include "ingest/ingest.h"
#include "log/batch.h"
#include "log/log.h"
#include "paho.h"
#include "paho_int.h"
#include "route/route.h"
#include "store/store.h"
#include "testutil.h"
#include "util/diag.h"
#include "util/parse.h"

#define LOG_TOPIC "paho"
#define NTOPICS   4

/* ---- durability and disk full: the fdatasync gate is tests/gate.h ---- */

/* "Disk full": while set, writes to the store's segment files (*.log) fail with ENOSPC. */
static atomic_bool disk_full;
static atomic_int disk_full_hits;

static bool is_segment_fd(int fd)
{
    char link[64], path[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 5)
        return false;
    path[n] = '\0';
    return strstr(path, "paho-store") && strcmp(path + n - 4, ".log") == 0;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    if (atomic_load(&disk_full) && is_segment_fd(fd)) {
        atomic_fetch_add(&disk_full_hits, 1);
        errno = ENOSPC;
        return -1;
    }
    return (ssize_t)syscall(SYS_pwrite64, fd, buf, len, off);
}

/* ---- a libmosquitto publisher ---- */

struct pub {
    struct mosquitto *m;
    atomic_int acked; /* on_publish calls: PUBACK/PUBCOMP received, or sent for QoS 0 */
    atomic_bool up;
};

static void pub_on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    struct pub *p = obj;
    if (rc == 0)
        atomic_store(&p->up, true);
}

static void pub_on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    (void)mid;
    struct pub *p = obj;
    atomic_fetch_add(&p->acked, 1);
}

static bool pub_is_up(void *opaque)
{
    return atomic_load(&((struct pub *)opaque)->up);
}

static bool pub_open(struct pub *p, int port, int proto, const char *id, const char *user, const char *pass)
{
    memset(p, 0, sizeof *p);
    p->m = mosquitto_new(id, true, p);
    if (!p->m)
        return false;
    mosquitto_int_option(p->m, MOSQ_OPT_PROTOCOL_VERSION, proto == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(p->m, 100);
    mosquitto_connect_callback_set(p->m, pub_on_connect);
    mosquitto_publish_callback_set(p->m, pub_on_publish);
    if (user)
        mosquitto_username_pw_set(p->m, user, pass);
    if (mosquitto_connect_async(p->m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(p->m) != MOSQ_ERR_SUCCESS)
        return false;
    return mq_test_wait(pub_is_up, p, 10000);
}

static void pub_close(struct pub *p)
{
    if (!p->m)
        return;
    mosquitto_disconnect(p->m);
    mosquitto_loop_stop(p->m, false);
    mosquitto_destroy(p->m);
    p->m = NULL;
}

static bool pub_send(struct pub *p, const char *topic, const void *payload, int len, int qos,
                     const mosquitto_property *props)
{
    for (;;) {
        int rc = mosquitto_publish_v5(p->m, NULL, topic, len, payload, qos, false, props);
        if (rc == MOSQ_ERR_SUCCESS)
            return true;
        if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_OVERSIZE_PACKET)
            return false;
        struct timespec ts = {0, 1000000}; /* reconnecting (broker restart): retry */
        nanosleep(&ts, NULL);
    }
}

struct count_wait {
    atomic_int *v;
    int target;
};
static bool count_reached(void *opaque)
{
    struct count_wait *w = opaque;
    return atomic_load(w->v) >= w->target;
}

/* ---- the fixture: broker, store, ingest, connector instances ---- */

struct fx {
    struct mq_test_broker broker;
    char *dir;
    struct mq_store *store;
    struct mq_ingest *in;
    struct mq_config_broker cb;
    struct mq_subscription sub;
    struct mq_connector_ctx ctx[4];
    void *inst[4];
    int ninst;
    char filter[80];
};

static bool fx_open(struct fx *f, const char *extra, const struct mq_log_conf *lc)
{
    memset(f, 0, sizeof *f);
    /* Run as root, mosquitto switches to the user "mosquitto", which cannot write its persistence into
     * (nor read certificates or password files from) the test's 0700 directories: keep it as the user the
     * test runs as ("user" has no effect when not started as root). */
    char bconf[4096];
    snprintf(bconf, sizeof bconf, "user root\n%s", extra ? extra : "");
    if (!mq_test_broker_start(&f->broker, 0, bconf))
        return false;
    f->dir = mq_test_tmpdir("paho-store");
    char err[256] = "";
    struct mq_log_conf conf;
    mq_log_conf_defaults(&conf);
    if (lc)
        conf = *lc;
    if (mq_store_open(f->dir, MQ_STORE_WRITE, &conf, &f->store, err, sizeof err) != MQ_OK) {
        fprintf(stderr, "store: %s\n", err);
        return false;
    }
    const char *from[] = {"t/#"};
    struct mq_route_def def = {
        .from = from, .nfrom = 1, .qos = 2, .to = LOG_TOPIC, .partitions = 1, .key = "topic"};
    struct mq_route_table *table = NULL;
    struct mq_ingest_routes *routes = NULL;
    if (mq_route_table_new(&def, 1, NULL, &table, err, sizeof err) != MQ_OK ||
        mq_ingest_routes_from_table(table, NULL, 0, NULL, &routes) != MQ_OK) {
        fprintf(stderr, "routes: %s\n", err);
        mq_route_table_free(table);
        return false;
    }
    if (mq_ingest_new(f->store, routes, &f->in, err, sizeof err) != MQ_OK) {
        fprintf(stderr, "ingest: %s\n", err);
        mq_ingest_routes_free(routes);
        return false;
    }
    struct mq_config_broker *b = &f->cb;
    b->name = "b1";
    b->host = "127.0.0.1";
    b->port = f->broker.port;
    b->client = "paho";
    b->client_id = "paho-test";
    b->protocol = 5;
    b->clean_session = false;
    b->sessions = 1;
    b->share_group = "mqlog";
    b->keepalive_s = 60;
    b->connect_timeout_ms = 5000;
    b->reconnect_min_ms = 20;
    b->reconnect_max_ms = 500;
    b->max_inflight = 1000;
    b->durable_ack = true;
    snprintf(f->filter, sizeof f->filter, "t/#");
    f->sub.filter = f->filter;
    f->sub.qos = 1;
    return true;
}

static bool fx_start(struct fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        f->ctx[i] = (struct mq_connector_ctx){
            .broker = &f->cb, .session = i, .subs = &f->sub, .nsubs = 1, .ingest = f->in};
        char err[256] = "";
        if (mq_connector_paho.create(&f->ctx[i], &f->inst[i], err, sizeof err) != MQ_OK) {
            fprintf(stderr, "create: %s\n", err);
            return false;
        }
        f->ninst = i + 1;
        if (mq_connector_paho.start(f->inst[i]) != MQ_OK)
            return false;
    }
    return true;
}

static void fx_stop(struct fx *f)
{
    for (int i = 0; i < f->ninst; i++)
        mq_connector_paho.stop(f->inst[i]);
    for (int i = 0; i < f->ninst; i++)
        mq_connector_paho.destroy(f->inst[i]);
    f->ninst = 0;
}

static void fx_close(struct fx *f)
{
    fx_stop(f);
    mq_ingest_free(f->in);
    f->in = NULL;
    if (f->store)
        CU_ASSERT_EQUAL(mq_store_close(f->store), MQ_OK);
    f->store = NULL;
    if (f->dir)
        mq_test_rmdir(f->dir);
    f->dir = NULL;
    if (f->broker.dir)
        mq_test_broker_free(&f->broker);
}

static uint64_t fx_messages(struct fx *f)
{
    uint64_t n = 0;
    for (int i = 0; i < f->ninst; i++) {
        struct mq_connector_stats st;
        mq_connector_paho.stats(f->inst[i], &st);
        n += st.messages;
    }
    return n;
}

struct msg_wait {
    struct fx *f;
    uint64_t target;
};
static bool messages_reached(void *opaque)
{
    struct msg_wait *w = opaque;
    return fx_messages(w->f) >= w->target;
}

static bool fx_wait_messages(struct fx *f, uint64_t target, int64_t timeout_ms)
{
    struct msg_wait w = {f, target};
    return mq_test_wait(messages_reached, &w, timeout_ms);
}

/* Publishes probes on t/probe until one reached the connector: its subscription is in place. */
static bool fx_probe(struct fx *f, struct pub *p)
{
    uint64_t before = fx_messages(f);
    for (int i = 0; i < 200; i++) {
        if (!pub_send(p, "t/probe", "probe", 5, 1, NULL))
            return false;
        if (fx_wait_messages(f, before + 1, 100))
            return true;
    }
    return false;
}

/* ---- reading the log back ---- */

struct seen {
    long *seq[NTOPICS]; /* the sequence numbers read per MQTT topic t/<k>, in log order */
    int n[NTOPICS];
    int cap;
    int probes;
    int other;
    int records;
};

typedef void record_fn(void *opaque, const struct mq_record_view *rv);

static int read_log(struct fx *f, record_fn *fn, void *opaque)
{
    struct mq_part *part = NULL;
    if (mq_store_part(f->store, LOG_TOPIC, 0, &part) != MQ_OK)
        return -1;
    if (mq_part_flush(part) != MQ_OK)
        return -1;
    int64_t off = 0;
    int n = 0;
    for (;;) {
        struct mq_slice s;
        if (mq_part_read(part, off, 1 << 20, &s) != MQ_OK)
            return -1;
        if (s.len == 0) {
            mq_slice_release(&s);
            break;
        }
        uint8_t *buf = malloc(s.len);
        if (!buf || pread(s.fd, buf, s.len, s.pos) != (ssize_t)s.len) {
            free(buf);
            mq_slice_release(&s);
            return -1;
        }
        size_t pos = 0;
        while (pos < s.len) {
            struct mq_batch_info bi;
            struct mq_record_iter it;
            if (mq_batch_parse_header(buf + pos, s.len - pos, &bi) != MQ_OK ||
                mq_record_iter_init(&it, buf + pos, &bi) != MQ_OK)
                break;
            struct mq_record_view rv;
            while (mq_record_next(&it, &rv) == 1) {
                fn(opaque, &rv);
                n++;
            }
            pos += mq_batch_size(&bi);
        }
        off = s.next_offset;
        free(buf);
        mq_slice_release(&s);
    }
    return n;
}

static void seen_record(void *opaque, const struct mq_record_view *rv)
{
    struct seen *s = opaque;
    s->records++;
    char topic[64];
    int kl = rv->key_len < 0 ? 0 : rv->key_len > 63 ? 63 : rv->key_len;
    memcpy(topic, rv->key, (size_t)kl);
    topic[kl] = '\0';
    if (strcmp(topic, "t/probe") == 0) {
        s->probes++;
        return;
    }
    int k = -1;
    if (sscanf(topic, "t/%d", &k) != 1 || k < 0 || k >= NTOPICS) {
        s->other++;
        return;
    }
    char val[32];
    int vl = rv->value_len < 0 ? 0 : rv->value_len > 31 ? 31 : rv->value_len;
    memcpy(val, rv->value, (size_t)vl);
    val[vl] = '\0';
    if (s->n[k] < s->cap)
        s->seq[k][s->n[k]] = strtol(val, NULL, 10);
    s->n[k]++;
}

static void seen_init(struct seen *s, int cap)
{
    memset(s, 0, sizeof *s);
    s->cap = cap;
    for (int k = 0; k < NTOPICS; k++)
        s->seq[k] = calloc((size_t)cap, sizeof(long));
}

static void seen_free(struct seen *s)
{
    for (int k = 0; k < NTOPICS; k++)
        free(s->seq[k]);
}

/* Publishes n messages "<i>" on t/<i % NTOPICS>. */
static bool publish_seq(struct pub *p, int from, int n, int qos)
{
    for (int i = from; i < from + n; i++) {
        char topic[16], payload[16];
        snprintf(topic, sizeof topic, "t/%d", i % NTOPICS);
        int len = snprintf(payload, sizeof payload, "%d", i);
        if (!pub_send(p, topic, payload, len, qos, NULL))
            return false;
    }
    return true;
}

/* Every i in [0, n) exactly once, each topic's in increasing order. */
static void check_exactly_once(const struct seen *s, int n)
{
    int total = 0;
    for (int k = 0; k < NTOPICS; k++) {
        total += s->n[k];
        int expect = (n - k + NTOPICS - 1) / NTOPICS;
        CU_ASSERT_EQUAL(s->n[k], expect);
        bool ordered = true;
        for (int j = 0; j < s->n[k] && j < s->cap; j++)
            ordered &= s->seq[k][j] == (long)(k + j * NTOPICS);
        CU_ASSERT_TRUE(ordered);
    }
    CU_ASSERT_EQUAL(total, n);
    CU_ASSERT_EQUAL(s->other, 0);
}

/* ---- tests ---- */

static void run_matrix(int proto, int qos, int n)
{
    struct fx f;
    CU_ASSERT_FATAL(fx_open(&f, NULL, NULL));
    f.cb.protocol = proto;
    f.sub.qos = qos;
    f.cb.client_id = proto == 5 ? "paho-m5" : "paho-m4";
    CU_ASSERT_FATAL(fx_start(&f, 1));
    struct pub p;
    CU_ASSERT_FATAL(pub_open(&p, f.broker.port, proto, "pub-matrix", NULL, NULL));
    CU_ASSERT_FATAL(fx_probe(&f, &p));
    uint64_t base = fx_messages(&f);
    CU_ASSERT_TRUE(publish_seq(&p, 0, n, qos));
    CU_ASSERT_TRUE(fx_wait_messages(&f, base + (uint64_t)n, 120000));
    struct seen s;
    seen_init(&s, n);
    CU_ASSERT_TRUE(read_log(&f, seen_record, &s) >= n);
    check_exactly_once(&s, n);
    struct mq_connector_stats st;
    mq_connector_paho.stats(f.inst[0], &st);
    CU_ASSERT_EQUAL(st.connects, 1);
    CU_ASSERT_EQUAL(st.disconnects, 0);
    CU_ASSERT_TRUE(st.connected);
    CU_ASSERT_EQUAL(st.paused_ms, 0);
    seen_free(&s);
    pub_close(&p);
    fx_close(&f);
}

static void test_v311_qos0(void)
{
    run_matrix(4, 0, 3000);
}
static void test_v311_qos1(void)
{
    run_matrix(4, 1, 3000);
}
static void test_v311_qos2(void)
{
    run_matrix(4, 2, 3000);
}
static void test_v5_qos0(void)
{
    run_matrix(5, 0, 3000);
}
static void test_v5_qos1(void)
{
    run_matrix(5, 1, 3000);
}
static void test_v5_qos2(void)
{
    run_matrix(5, 2, 3000);
}

/* ---- MQTT 5 properties become headers ---- */

struct hdr_check {
    int found;
    bool ok;
};

static bool hdr_eq(const struct mq_header *h, const char *key, const void *val, int32_t vlen)
{
    return h->key_len == (int32_t)strlen(key) && memcmp(h->key, key, (size_t)h->key_len) == 0 &&
           h->value_len == vlen && memcmp(h->value, val, (size_t)vlen) == 0;
}

static void hdr_record(void *opaque, const struct mq_record_view *rv)
{
    struct hdr_check *c = opaque;
    if (rv->key_len != 5 || memcmp(rv->key, "t/hdr", 5) != 0)
        return;
    c->found++;
    static const uint8_t corr[] = {0, 1, 2, 0xff, 0};
    const uint8_t *cur = rv->headers;
    struct mq_header h;
    int n = 0;
    bool topic = false, qos = false, retain = false, broker = false, u1 = false, u2 = false, u3 = false,
         ct = false, rt = false, cd = false;
    int user_order = 0;
    while (mq_header_next(&cur, rv->headers_end, &h) == 1) {
        n++;
        topic |= hdr_eq(&h, "mqtt.topic", "t/hdr", 5);
        qos |= hdr_eq(&h, "mqtt.qos", "1", 1);
        retain |= hdr_eq(&h, "mqtt.retain", "false", 5);
        broker |= hdr_eq(&h, "mqtt.broker", "b1", 2);
        if (hdr_eq(&h, "unit", "celsius", 7))
            u1 = true, user_order = user_order == 0 ? 1 : user_order;
        if (hdr_eq(&h, "site", "a", 1))
            u2 = true, user_order = user_order == 1 ? 2 : -1;
        if (hdr_eq(&h, "site", "b", 1))
            u3 = true, user_order = user_order == 2 ? 3 : -1;
        ct |= hdr_eq(&h, "mqtt.content_type", "application/json", 16);
        rt |= hdr_eq(&h, "mqtt.response_topic", "reply/here", 10);
        cd |= hdr_eq(&h, "mqtt.correlation_data", corr, (int32_t)sizeof corr);
    }
    c->ok = n == rv->header_count && topic && qos && retain && broker && u1 && u2 && u3 && user_order == 3 &&
            ct && rt && cd;
    if (!c->ok)
        fprintf(stderr,
                "headers: n=%d/%d topic=%d qos=%d retain=%d broker=%d u=%d%d%d order=%d ct=%d rt=%d cd=%d\n",
                n, rv->header_count, topic, qos, retain, broker, u1, u2, u3, user_order, ct, rt, cd);
}

static void test_v5_headers(void)
{
    struct fx f;
    CU_ASSERT_FATAL(fx_open(&f, NULL, NULL));
    CU_ASSERT_FATAL(fx_start(&f, 1));
    struct pub p;
    CU_ASSERT_FATAL(pub_open(&p, f.broker.port, 5, "pub-hdr", NULL, NULL));
    CU_ASSERT_FATAL(fx_probe(&f, &p));
    uint64_t base = fx_messages(&f);
    static const uint8_t corr[] = {0, 1, 2, 0xff, 0};
    mosquitto_property *props = NULL;
    CU_ASSERT_EQUAL(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "unit", "celsius"),
                    0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "site", "a"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "site", "b"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE, "application/json"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, "reply/here"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr, sizeof corr), 0);
    CU_ASSERT_TRUE(pub_send(&p, "t/hdr", "{\"v\":1}", 7, 1, props));
    mosquitto_property_free_all(&props);
    CU_ASSERT_TRUE(fx_wait_messages(&f, base + 1, 20000));
    struct hdr_check c = {0, false};
    read_log(&f, hdr_record, &c);
    CU_ASSERT_EQUAL(c.found, 1);
    CU_ASSERT_TRUE(c.ok);
    pub_close(&p);
    fx_close(&f);
}

/* ---- broker restart with a persistent session ---- */

static void run_restart(int proto)
{
    const int n = 2000;
    struct fx f;
    CU_ASSERT_FATAL(fx_open(&f, NULL, NULL));
    f.cb.protocol = proto;
    f.cb.client_id = proto == 5 ? "paho-r5" : "paho-r4";
    CU_ASSERT_FATAL(fx_start(&f, 1));
    struct pub p;
    CU_ASSERT_FATAL(pub_open(&p, f.broker.port, proto, "pub-restart", NULL, NULL));
    CU_ASSERT_FATAL(fx_probe(&f, &p));
    uint64_t base = fx_messages(&f);
    /* The first half is in the broker (acknowledged to the publisher) before the restart, and the restart
     * happens while the connector is still working through it. */
    CU_ASSERT_TRUE(publish_seq(&p, 0, n / 2, 1));
    struct count_wait cw = {&p.acked, 1 + n / 2};
    CU_ASSERT_TRUE(mq_test_wait(count_reached, &cw, 60000));
    CU_ASSERT_TRUE(fx_wait_messages(&f, base + 50, 60000));
    CU_ASSERT_FATAL(mq_test_broker_restart(&f.broker));
    CU_ASSERT_TRUE(mq_test_wait(pub_is_up, &p, 10000));
    CU_ASSERT_TRUE(publish_seq(&p, n / 2, n / 2, 1));
    cw.target = 1 + n;
    CU_ASSERT_TRUE(mq_test_wait(count_reached, &cw, 60000));

    /* Nothing lost: every message is in the log (QoS 1 allows duplicates of the ones in flight). */
    struct seen s;
    seen_init(&s, 2 * n);
    char *have = calloc((size_t)n, 1);
    int missing = n;
    int64_t deadline = mq_mono_ms() + 60000;
    while (missing > 0 && mq_mono_ms() < deadline) {
        seen_free(&s);
        seen_init(&s, 2 * n);
        read_log(&f, seen_record, &s);
        memset(have, 0, (size_t)n);
        for (int k = 0; k < NTOPICS; k++)
            for (int j = 0; j < s.n[k] && j < s.cap; j++)
                if (s.seq[k][j] >= 0 && s.seq[k][j] < n)
                    have[s.seq[k][j]] = 1;
        missing = 0;
        for (int i = 0; i < n; i++)
            missing += !have[i];
        if (missing > 0) {
            uint64_t m = fx_messages(&f);
            fx_wait_messages(&f, m + 1, 200); /* wait for progress, not for time */
        }
    }
    CU_ASSERT_EQUAL(missing, 0);
    if (missing && getenv("MQ_PAHO_DEBUG")) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "grep -v -e PUBLISH -e PUBACK %s/mosquitto.log | tail -60", f.broker.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "no broker log\n");
        fprintf(stderr, "missing %d, records %d\n", missing, s.records);
    }
    for (int i = 0, shown = 0; i < n && shown < 20; i++)
        if (!have[i] && ++shown)
            fprintf(stderr, "missing %d\n", i);
    CU_ASSERT_EQUAL(s.other, 0);
    struct mq_connector_stats st;
    mq_connector_paho.stats(f.inst[0], &st);
    CU_ASSERT_TRUE(st.disconnects >= 1);
    CU_ASSERT_TRUE(st.connects >= 2);
    free(have);
    seen_free(&s);
    pub_close(&p);
    fx_close(&f);
}

static void test_restart_v5(void)
{
    run_restart(5);
}
static void test_restart_v311(void)
{
    run_restart(4);
}

/* ---- durable acknowledgement, observed in the broker's log ---- */

struct log_wait {
    struct fx *f;
    const char *needle;
    int target;
};
static bool log_reached(void *opaque)
{
    struct log_wait *w = opaque;
    return mq_test_broker_log_count(&w->f->broker, w->needle) >= w->target;
}

static void run_durable(bool durable_ack)
{
    struct fx f;
    CU_ASSERT_FATAL(fx_open(&f, "log_type all\n", NULL));
    f.cb.durable_ack = durable_ack;
    f.cb.client_id = durable_ack ? "paho-durable" : "paho-nodurable";
    CU_ASSERT_FATAL(fx_start(&f, 1));
    struct pub p;
    CU_ASSERT_FATAL(pub_open(&p, f.broker.port, 5, "pub-durable", NULL, NULL));
    CU_ASSERT_FATAL(fx_probe(&f, &p)); /* creates the log topic before the gate closes */
    char puback[128], pubrecv[128];
    snprintf(puback, sizeof puback, "Received PUBACK from %s ", f.cb.client_id);
    snprintf(pubrecv, sizeof pubrecv, "Received PUBLISH from pub-durable");
    struct log_wait lw = {&f, puback, 0};
    /* every probe the connector received has been acknowledged (the gate was open) */
    lw.target = (int)fx_messages(&f);
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 10000));
    int acks = mq_test_broker_log_count(&f.broker, puback);

    struct mq_ingest_stats is0, is1;
    mq_ingest_stats(f.in, &is0);
    mq_test_gate_set(true);
    CU_ASSERT_TRUE(pub_send(&p, "t/0", "0", 1, 1, NULL));
    /* The record reached the store and its flush is stuck in fdatasync. */
    int64_t deadline = mq_mono_ms() + 10000;
    do
        mq_ingest_stats(f.in, &is1);
    while (is1.records == is0.records && mq_mono_ms() < deadline);
    CU_ASSERT_TRUE(is1.records > is0.records);
    CU_ASSERT_TRUE(mq_test_wait(mq_test_gate_has_waiter, NULL, 10000));

    if (durable_ack) {
        /* Let the broker log something that happened after the connector got the message; still no ack. */
        int recv = mq_test_broker_log_count(&f.broker, pubrecv);
        CU_ASSERT_TRUE(pub_send(&p, "x/unrelated", "u", 1, 1, NULL));
        struct log_wait rw = {&f, pubrecv, recv + 1};
        CU_ASSERT_TRUE(mq_test_wait(log_reached, &rw, 10000));
        CU_ASSERT_EQUAL(mq_test_broker_log_count(&f.broker, puback), acks);
        mq_test_gate_set(false);
        lw.target = acks + 1;
        CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 10000)); /* acknowledged once durable */
    } else {
        /* Control: without durable_ack the PUBACK goes out while the record is not durable yet. */
        lw.target = acks + 1;
        CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 10000));
        CU_ASSERT_TRUE(mq_test_gate_has_waiter(NULL));
        mq_test_gate_set(false);
    }
    pub_close(&p);
    fx_close(&f);
}

static void test_durable_ack_waits_for_fsync(void)
{
    run_durable(true);
}
static void test_no_durable_ack_acks_early(void)
{
    run_durable(false);
}

/* ---- backpressure: the disk is full, the connector pauses, nothing is lost ---- */

static bool paused(void *opaque)
{
    struct fx *f = opaque;
    struct mq_connector_stats st;
    mq_connector_paho.stats(f->inst[0], &st);
    return st.paused_ms > 0;
}

static void run_backpressure(bool durable)
{
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.max_pending_bytes = 16 * 1024;
    lc.batch_bytes = 4 * 1024;
    struct fx f;
    CU_ASSERT_FATAL(fx_open(&f, NULL, &lc));
    f.cb.durable_ack = durable;
    f.cb.client_id = durable ? "paho-bp-durable" : "paho-bp";
    CU_ASSERT_FATAL(fx_start(&f, 1));
    struct pub p;
    CU_ASSERT_FATAL(pub_open(&p, f.broker.port, 5, "pub-bp", NULL, NULL));
    CU_ASSERT_FATAL(fx_probe(&f, &p));
    uint64_t base = fx_messages(&f);
    const int n = 400;
    atomic_store(&disk_full, true);
    char payload[1000];
    memset(payload, 'x', sizeof payload);
    for (int i = 0; i < n; i++) {
        char topic[16];
        snprintf(topic, sizeof topic, "t/%d", i % NTOPICS);
        int len = snprintf(payload, sizeof payload, "%d", i);
        payload[len] = ' '; /* the sequence number, then padding to 1000 bytes */
        CU_ASSERT_TRUE(pub_send(&p, topic, payload, (int)sizeof payload, 1, NULL));
    }
    /* Paused: the store refuses (not durable_ack: MQ_ERR_FULL once 16 KiB wait unwritten) or cannot make the
     * first record durable (durable_ack), and the connector stops reading. */
    CU_ASSERT_TRUE(mq_test_wait(paused, &f, 30000));
    uint64_t during = fx_messages(&f);
    CU_ASSERT_TRUE(during < base + (uint64_t)n);
    CU_ASSERT_TRUE(atomic_load(&disk_full_hits) > 0);
    atomic_store(&disk_full, false);
    CU_ASSERT_TRUE(fx_wait_messages(&f, base + (uint64_t)n, 60000));
    struct seen s;
    seen_init(&s, n);
    read_log(&f, seen_record, &s);
    check_exactly_once(&s, n);
    seen_free(&s);
    pub_close(&p);
    fx_close(&f);
}

static void test_disk_full_pauses(void)
{
    run_backpressure(false);
}
static void test_disk_full_pauses_durable(void)
{
    run_backpressure(true);
}

/* ---- TLS with CA and client certificate; user name and password ---- */

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static void test_tls_client_cert(void)
{
    char *d = mq_test_tmpdir("paho-tls");
    char cmd[4096];
    snprintf(
        cmd, sizeof cmd,
        "cd %s && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "
        "/CN=mqlog-test-ca "
        ">/dev/null 2>&1 && "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 "
        ">/dev/null 2>&1 && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
        "-extfile san.ext >/dev/null 2>&1 && "
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=paho-tls "
        ">/dev/null 2>&1 && "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 "
        ">/dev/null 2>&1",
        d);
    CU_ASSERT_FATAL(sh(cmd) == 0);
    int plain = mq_test_free_port();
    char extra[2048];
    snprintf(extra, sizeof extra,
             "cafile %s/ca.pem\ncertfile %s/server.pem\nkeyfile %s/server.key\nrequire_certificate true\n"
             "listener %d 127.0.0.1\n",
             d, d, d, plain);
    struct fx f;
    CU_ASSERT_FATAL(fx_open(&f, extra, NULL));
    char ca[600], cert[600], key[600];
    snprintf(ca, sizeof ca, "%s/ca.pem", d);
    snprintf(cert, sizeof cert, "%s/client.pem", d);
    snprintf(key, sizeof key, "%s/client.key", d);
    f.cb.tls = true;
    f.cb.tls_opts.ca = ca;
    f.cb.tls_opts.cert = cert;
    f.cb.tls_opts.key = key;
    f.cb.client_id = "paho-tls";
    CU_ASSERT_FATAL(fx_start(&f, 1));
    struct pub p;
    CU_ASSERT_FATAL(pub_open(&p, plain, 5, "pub-tls", NULL, NULL));
    CU_ASSERT_TRUE(fx_probe(&f, &p));
    uint64_t base = fx_messages(&f);
    CU_ASSERT_TRUE(publish_seq(&p, 0, 100, 1));
    CU_ASSERT_TRUE(fx_wait_messages(&f, base + 100, 30000));
    struct seen s;
    seen_init(&s, 100);
    read_log(&f, seen_record, &s);
    check_exactly_once(&s, 100);
    seen_free(&s);
    struct mq_connector_stats st;
    mq_connector_paho.stats(f.inst[0], &st);
    CU_ASSERT_TRUE(st.connected);
    pub_close(&p);
    fx_close(&f);
    mq_test_rmdir(d);
}

static void test_username_password(void)
{
    char *d = mq_test_tmpdir("paho-pw");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && mosquitto_passwd -c -b passwd gw 's3cret pass' >/dev/null 2>&1 && "
             "printf 's3cret pass\\nignored second line\\n' > pw && printf 'wrong\\n' > badpw",
             d);
    CU_ASSERT_FATAL(sh(cmd) == 0);
    char extra[1024];
    snprintf(extra, sizeof extra, "password_file %s/passwd\nallow_anonymous false\n", d);
    struct fx f;
    CU_ASSERT_FATAL(fx_open(&f, extra, NULL));
    char pw[600], badpw[600];
    snprintf(pw, sizeof pw, "%s/pw", d);
    snprintf(badpw, sizeof badpw, "%s/badpw", d);

    /* A wrong password is refused (the broker says so in its log) and retried with backoff. */
    f.cb.username = "gw";
    f.cb.password_file = badpw;
    f.cb.client_id = "paho-badpw";
    CU_ASSERT_FATAL(fx_start(&f, 1));
    /* mosquitto 2.0 does not name the client it refuses ("Client <unknown> disconnected, not
     * authorised."): nothing else connects to this broker yet, so every such line is one of our attempts. */
    struct log_wait lw = {&f, "disconnected, not authorised", 2};
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 20000)); /* at least two attempts refused */
    struct mq_connector_stats st;
    mq_connector_paho.stats(f.inst[0], &st);
    CU_ASSERT_EQUAL(st.connects, 0);
    fx_stop(&f);

    f.cb.password_file = pw;
    f.cb.client_id = "paho-pw";
    CU_ASSERT_FATAL(fx_start(&f, 1));
    struct pub p;
    CU_ASSERT_FATAL(pub_open(&p, f.broker.port, 5, "pub-pw", "gw", "s3cret pass"));
    CU_ASSERT_TRUE(fx_probe(&f, &p));
    uint64_t base = fx_messages(&f);
    CU_ASSERT_TRUE(publish_seq(&p, 0, 50, 1));
    CU_ASSERT_TRUE(fx_wait_messages(&f, base + 50, 30000));
    pub_close(&p);
    fx_close(&f);
    mq_test_rmdir(d);
}

/* A password file that cannot be read fails create() with the reason. */
static void test_create_errors(void)
{
    struct mq_config_broker b = {.name = "b",
                                 .host = "127.0.0.1",
                                 .port = 1883,
                                 .protocol = 4,
                                 .password_file = "/nonexistent/pw",
                                 .reconnect_min_ms = 10,
                                 .reconnect_max_ms = 20};
    struct mq_subscription sub = {"a/#", 1};
    struct mq_connector_ctx ctx = {.broker = &b, .subs = &sub, .nsubs = 1, .ingest = (struct mq_ingest *)&b};
    void *inst = NULL;
    char err[256] = "";
    CU_ASSERT_NOT_EQUAL(mq_connector_paho.create(&ctx, &inst, err, sizeof err), MQ_OK);
    CU_ASSERT_PTR_NULL(inst);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/pw"));
    b.password_file = NULL;
    b.protocol = 3;
    CU_ASSERT_EQUAL(mq_connector_paho.create(&ctx, &inst, err, sizeof err), MQ_ERR_INVAL);
    b.protocol = 4;
    CU_ASSERT_EQUAL(mq_connector_paho.create(&ctx, &inst, err, sizeof err), MQ_OK);
    mq_connector_paho.destroy(inst); /* created, never started */
    mq_connector_paho.destroy(NULL);
    CU_ASSERT_STRING_EQUAL(mq_connector_paho.name, "paho");
    CU_ASSERT_EQUAL(mq_connector_paho.version, MQ_CONNECTOR_VERSION);
}

/* ---- throughput (MQ_PAHO_BENCH=<messages>) ---- */

static double bench_run(int n, bool durable, int sessions, double *pub_rate)
{
    struct fx f;
    if (!fx_open(&f, NULL, NULL))
        return -1;
    f.cb.durable_ack = durable;
    f.cb.client_id = "paho-bench";
    f.cb.protocol = 5;
    if (sessions > 1)
        snprintf(f.filter, sizeof f.filter, "$share/mqlog/t/#");
    double rate = -1;
    struct pub p;
    if (fx_start(&f, sessions) && pub_open(&p, f.broker.port, 5, "pub-bench", NULL, NULL) &&
        fx_probe(&f, &p)) {
        mosquitto_max_inflight_messages_set(p.m, 1000);
        uint64_t base = fx_messages(&f);
        char payload[100];
        memset(payload, 'p', sizeof payload);
        int64_t t0 = mq_mono_us();
        for (int i = 0; i < n; i++) {
            char topic[16];
            snprintf(topic, sizeof topic, "t/%d", i % NTOPICS);
            pub_send(&p, topic, payload, (int)sizeof payload, 1, NULL);
        }
        struct count_wait cw = {&p.acked, (int)base + n};
        mq_test_wait(count_reached, &cw, 600000);
        int64_t t1 = mq_mono_us();
        if (fx_wait_messages(&f, base + (uint64_t)n, 600000)) {
            int64_t t2 = mq_mono_us();
            rate = n / ((double)(t2 - t0) / 1e6);
            *pub_rate = n / ((double)(t1 - t0) / 1e6);
        }
        pub_close(&p);
    }
    fx_close(&f);
    return rate;
}

static void test_bench(void)
{
    const char *e = getenv("MQ_PAHO_BENCH");
    int64_t n = 0;
    if (!e || mq_parse_int64(e, 1, 10000000, &n) != MQ_OK) {
        printf("(skipped: set MQ_PAHO_BENCH=<messages>) ");
        return;
    }
    for (int durable = 0; durable <= 1; durable++)
        for (int sessions = 1; sessions <= 4; sessions += 3) {
            double pub = 0;
            double r = bench_run((int)n, durable, sessions, &pub);
            printf("\nbench: QoS 1, %lld msgs of 100 B, durable_ack %s, sessions %d: %.0f msg/s stored "
                   "(publisher acked at %.0f msg/s)",
                   (long long)n, durable ? "on " : "off", sessions, r, pub);
        }
    printf("\n");
}

int main(void)
{
    mq_diag_level = getenv("MQ_PAHO_DEBUG") ? MQ_LV_DEBUG : MQ_LV_WARN;
    mosquitto_lib_init();
    static const struct mq_test tests[] = {
        MQ_TEST(test_create_errors),
        MQ_TEST(test_v311_qos0),
        MQ_TEST(test_v311_qos1),
        MQ_TEST(test_v311_qos2),
        MQ_TEST(test_v5_qos0),
        MQ_TEST(test_v5_qos1),
        MQ_TEST(test_v5_qos2),
        MQ_TEST(test_v5_headers),
        MQ_TEST(test_durable_ack_waits_for_fsync),
        MQ_TEST(test_no_durable_ack_acks_early),
        MQ_TEST(test_disk_full_pauses),
        MQ_TEST(test_disk_full_pauses_durable),
        MQ_TEST(test_restart_v5),
        MQ_TEST(test_restart_v311),
        MQ_TEST(test_tls_client_cert),
        MQ_TEST(test_username_password),
        MQ_TEST(test_bench),
        MQ_TEST_END,
    };
    /* MQ_PAHO_ONLY=<substring> runs only the matching tests (debugging). */
    const char *only = getenv("MQ_PAHO_ONLY");
    struct mq_test sel[sizeof tests / sizeof tests[0]];
    size_t k = 0;
    for (size_t i = 0; tests[i].name; i++)
        if (!only || strstr(tests[i].name, only))
            sel[k++] = tests[i];
    sel[k] = (struct mq_test)MQ_TEST_END;
    int rc = mq_test_run("paho", sel);
    mosquitto_lib_cleanup();
    return rc;
}
