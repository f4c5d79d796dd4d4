/*
 * test_mosq.c - the libmosquitto source connector against a real mosquitto broker (tests/broker.h) and the
 * real ingest layer and store: QoS 0/1/2 over MQTT 3.1.1 and 5 (every message stored exactly once, in
 * order), MQTT 5 properties as record headers, a broker restart in the middle of a persistent QoS 1 stream,
 * TLS with a client certificate, username/password, shared subscriptions over two sessions, and
 * backpressure (the store refusing messages for a while, also for longer than the keep-alive).
 *
 * The test publishes with libmosquitto and reads the records back from the log. Backpressure is injected
 * by wrapping mq_ingest_message at link time (-Wl,--wrap=mq_ingest_message, see tests/CMakeLists.txt): the
 * wrapper answers MQ_ERR_FULL or slows down when a test asks it to and otherwise calls the real function.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "broker.h"
#include "gate.h"
#include "mosq.h"
#include "config/config.h"
#include "connector.h"
#include "ingest/ingest.h"
#include "log/batch.h"
#include "log/log.h"
#include "store/store.h"
#include "testutil.h"
#include "util/diag.h"

extern const struct mq_connector mq_connector_mosquitto;

/* ---- the ingest wrapper: backpressure and slowness on demand ---- */

static atomic_long w_passed;        /* messages handed to the real ingest and accepted */
static atomic_long w_full_after;    /* refuse (MQ_ERR_FULL) once this many passed; -1: never */
static atomic_long w_full_ms;       /* ... for this long from the first refusal; -1: forever */
static _Atomic int64_t w_full_from; /* monotonic ms of the first refusal, 0: none yet */
static atomic_long w_full_count;    /* refusals given */
static atomic_int w_delay_us;       /* sleep before each message (a slow store) */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void w_reset(void)
{
    atomic_store(&w_passed, 0);
    atomic_store(&w_full_after, -1);
    atomic_store(&w_full_ms, 0);
    atomic_store(&w_full_from, 0);
    atomic_store(&w_full_count, 0);
    atomic_store(&w_delay_us, 0);
}

enum mq_err __real_mq_ingest_message(struct mq_ingest *in, const char *broker,
                                     const struct mq_source_msg *msg, struct mq_ticket *ticket);
enum mq_err __wrap_mq_ingest_message(struct mq_ingest *in, const char *broker,
                                     const struct mq_source_msg *msg, struct mq_ticket *ticket);

enum mq_err __wrap_mq_ingest_message(struct mq_ingest *in, const char *broker,
                                     const struct mq_source_msg *msg, struct mq_ticket *ticket)
{
    int d = atomic_load(&w_delay_us);
    if (d > 0) {
        struct timespec ts = {0, (long)d * 1000};
        nanosleep(&ts, NULL); /* simulates a slow store */
    }
    long after = atomic_load(&w_full_after);
    if (after >= 0 && atomic_load(&w_passed) >= after) {
        int64_t from = atomic_load(&w_full_from), now = now_ms();
        if (from == 0) {
            atomic_store(&w_full_from, now);
            from = now;
        }
        long ms = atomic_load(&w_full_ms);
        if (ms < 0 || now - from < ms) {
            atomic_fetch_add(&w_full_count, 1);
            return MQ_ERR_FULL;
        }
    }
    enum mq_err err = __real_mq_ingest_message(in, broker, msg, ticket);
    if (err == MQ_OK)
        atomic_fetch_add(&w_passed, 1);
    return err;
}

/* ---- harness: broker, configuration, store, ingest, connector instances ---- */

#define MAXSUBS 8
#define MAXINST 4

struct h {
    char *dir;
    struct mq_test_broker br;
    bool br_started;
    struct mq_config *cfg;
    struct mq_store *store;
    struct mq_ingest *ingest;
    char *filters[MAXSUBS];
    struct mq_subscription subs[MAXSUBS];
    size_t nsubs;
    void *inst[MAXINST];
    int ninst;
    struct mq_part *tpart; /* log topic "t", partition 0, once it exists */
};

static int client_seq;

static bool h_broker(struct h *h, const char *extra)
{
    memset(h, 0, sizeof *h);
    h->dir = mq_test_tmpdir("mosq");
    /* Started as root, mosquitto would drop to user mosquitto, which cannot write its persistence file into
     * the test's private directory: the restart tests need that file. (Ignored when not root.) */
    char conf[4096];
    snprintf(conf, sizeof conf, "user root\n%s", extra ? extra : "");
    h->br_started = mq_test_broker_start(&h->br, 0, conf);
    return h->br_started;
}

static enum mq_err h_add_sub(void *opaque, const char *filter, int qos)
{
    struct h *h = opaque;
    if (h->nsubs == MAXSUBS)
        return MQ_ERR_RANGE;
    h->filters[h->nsubs] = strdup(filter);
    h->subs[h->nsubs] = (struct mq_subscription){.filter = h->filters[h->nsubs], .qos = qos};
    h->nsubs++;
    return MQ_OK;
}

static void report(void *opaque, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "config: %s\n", msg);
}

/*
 * Writes and loads a configuration: one broker "b" (url to the test broker unless broker_yaml sets one,
 * plus broker_yaml's lines), mappings t/# -> t and ready -> ready at QoS qos, one partition each. Opens the
 * store and the ingest layer and collects the broker's subscriptions.
 */
static bool h_open(struct h *h, const char *broker_yaml, int qos)
{
    char path[600], data[600];
    snprintf(path, sizeof path, "%s/mqlogd.yaml", h->dir);
    snprintf(data, sizeof data, "%s/data", h->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool has_url = broker_yaml && strstr(broker_yaml, "url:");
    fprintf(f,
            "data_dir: %s\n"
            "log: { flush_interval_ms: 5 }\n"
            "brokers:\n"
            "  - name: b\n",
            data);
    if (!has_url)
        fprintf(f, "    url: mqtt://127.0.0.1:%d\n", h->br.port);
    if (!broker_yaml || !strstr(broker_yaml, "durable_ack:"))
        fprintf(f, "    durable_ack: false\n"); /* most tests look at delivery, not at durability */
    fprintf(f,
            "    client: mosquitto\n"
            "    client_id: mqtest-%d-%d\n"
            "    reconnect_min: 50ms\n"
            "    reconnect_max: 1s\n"
            "%s"
            "mappings:\n"
            "  - from: \"t/#\"\n"
            "    qos: %d\n"
            "    to: t\n"
            "    partitions: 1\n"
            "    key: topic\n"
            "  - from: ready\n"
            "    qos: %d\n"
            "    to: ready\n"
            "    partitions: 1\n",
            (int)getpid(), ++client_seq, broker_yaml ? broker_yaml : "", qos, qos);
    fclose(f);
    if (mq_config_load(path, &h->cfg, report, NULL) != MQ_OK)
        return false;
    char errstr[256] = "";
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = h->cfg->log.flush_interval_ms;
    if (mq_store_open(h->cfg->data_dir, MQ_STORE_WRITE, &lc, &h->store, errstr, sizeof errstr) != MQ_OK) {
        fprintf(stderr, "store: %s\n", errstr);
        return false;
    }
    struct mq_ingest_routes *routes = NULL;
    if (mq_ingest_routes_new(h->cfg, &routes, errstr, sizeof errstr) != MQ_OK) {
        fprintf(stderr, "routes: %s\n", errstr);
        return false;
    }
    const struct mq_config_broker *b = &h->cfg->brokers[0];
    if (mq_route_subscriptions(mq_ingest_routes_table(routes), b->name,
                               b->sessions > 1 ? b->share_group : NULL, h_add_sub, h) != MQ_OK) {
        mq_ingest_routes_free(routes);
        return false;
    }
    if (mq_ingest_new(h->store, routes, &h->ingest, errstr, sizeof errstr) != MQ_OK) {
        fprintf(stderr, "ingest: %s\n", errstr);
        mq_ingest_routes_free(routes);
        return false;
    }
    return true;
}

static void *h_connector(struct h *h, int session)
{
    struct mq_connector_ctx ctx = {.broker = &h->cfg->brokers[0],
                                   .session = session,
                                   .subs = h->subs,
                                   .nsubs = h->nsubs,
                                   .ingest = h->ingest,
                                   .flush_interval_ms = h->cfg->log.flush_interval_ms};
    void *inst = NULL;
    char errstr[256] = "";
    enum mq_err err = mq_connector_mosquitto.create(&ctx, &inst, errstr, sizeof errstr);
    if (err != MQ_OK) {
        fprintf(stderr, "create: %s: %s\n", mq_strerror(err), errstr);
        return NULL;
    }
    if (mq_connector_mosquitto.start(inst) != MQ_OK) {
        mq_connector_mosquitto.destroy(inst);
        return NULL;
    }
    h->inst[h->ninst++] = inst;
    return inst;
}

static struct mq_connector_stats h_stats(void *inst)
{
    struct mq_connector_stats st;
    mq_connector_mosquitto.stats(inst, &st);
    return st;
}

static void h_stop(struct h *h)
{
    for (int i = 0; i < h->ninst; i++) {
        mq_connector_mosquitto.stop(h->inst[i]);
        mq_connector_mosquitto.destroy(h->inst[i]);
    }
    h->ninst = 0;
}

static void h_close(struct h *h)
{
    h_stop(h);
    mq_ingest_free(h->ingest);
    if (h->store)
        CU_ASSERT_EQUAL(mq_store_close(h->store), MQ_OK);
    mq_config_free(h->cfg);
    for (size_t i = 0; i < h->nsubs; i++)
        free(h->filters[i]);
    if (h->br_started)
        mq_test_broker_free(&h->br);
    mq_test_rmdir(h->dir);
    memset(h, 0, sizeof *h);
    w_reset();
}

/* The end of what readers see in log topic t (0 while it does not exist). */
static int64_t h_tcount(struct h *h)
{
    if (!h->tpart && mq_store_part(h->store, "t", 0, &h->tpart) != MQ_OK)
        return 0;
    int64_t start, end;
    if (mq_part_offsets(h->tpart, &start, &end) != MQ_OK)
        return 0;
    return end;
}

struct count_wait {
    struct h *h;
    int64_t n;
};

static bool h_tcount_reached(void *opaque)
{
    struct count_wait *cw = opaque;
    return h_tcount(cw->h) >= cw->n;
}

static bool h_wait_records(struct h *h, int64_t n, int64_t timeout_ms)
{
    struct count_wait cw = {h, n};
    return mq_test_wait(h_tcount_reached, &cw, timeout_ms);
}

/* Calls fn for every record of log topic `topic` partition 0, after making everything durable. Returns the
 * number of records, or -1 when reading failed. */
static int64_t h_read(struct h *h, const char *topic,
                      void (*fn)(void *opaque, const struct mq_record_view *rv), void *opaque)
{
    struct mq_part *part;
    if (mq_store_part(h->store, topic, 0, &part) != MQ_OK)
        return 0;
    if (mq_part_flush(part) != MQ_OK)
        return -1;
    int64_t off = 0, count = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (;;) {
        struct mq_slice s;
        if (mq_part_read(part, off, 256 * 1024, &s) != MQ_OK) {
            count = -1;
            break;
        }
        if (s.len == 0)
            break;
        if (s.len > cap) {
            cap = s.len;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                mq_slice_release(&s);
                count = -1;
                break;
            }
            buf = nb;
        }
        ssize_t got = pread(s.fd, buf, s.len, s.pos);
        mq_slice_release(&s);
        if (got != (ssize_t)s.len) {
            count = -1;
            break;
        }
        size_t p = 0;
        while (p < s.len) {
            struct mq_batch_info bi;
            if (mq_batch_parse_header(buf + p, s.len - p, &bi) != MQ_OK || !mq_batch_crc_ok(buf + p, &bi)) {
                free(buf);
                return -1;
            }
            struct mq_record_iter it;
            struct mq_record_view rv;
            if (mq_record_iter_init(&it, buf + p, &bi) != MQ_OK) {
                free(buf);
                return -1;
            }
            while (mq_record_next(&it, &rv) == 1) {
                if (rv.offset < off)
                    continue;
                if (fn)
                    fn(opaque, &rv);
                off = rv.offset + 1;
                count++;
            }
            p += mq_batch_size(&bi);
        }
    }
    free(buf);
    return count;
}

/* The value of header `key` of a record (the first one with that name), or NULL. */
static const char *rec_header(const struct mq_record_view *rv, const char *key, int32_t *len)
{
    const uint8_t *c = rv->headers;
    struct mq_header hd;
    while (mq_header_next(&c, rv->headers_end, &hd) == 1)
        if (hd.key_len == (int32_t)strlen(key) && memcmp(hd.key, key, (size_t)hd.key_len) == 0) {
            *len = hd.value_len;
            return hd.value;
        }
    return NULL;
}

static bool rec_header_is(const struct mq_record_view *rv, const char *key, const char *want)
{
    int32_t len;
    const char *v = rec_header(rv, key, &len);
    return v && len == (int32_t)strlen(want) && memcmp(v, want, (size_t)len) == 0;
}

/* On a failure: the end of the broker's log, to see what it thought happened. */
static void dump_broker_log(struct h *h)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "tail -n 40 '%s/mosquitto.log' >&2", h->br.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no broker log)\n");
}

/* ---- publisher ---- */

struct pub {
    struct mosquitto *m;
    atomic_int published; /* on_publish calls: QoS 0 written, QoS 1 PUBACK, QoS 2 PUBCOMP */
    atomic_int connack;   /* 0 none yet, 1 accepted, -1 refused */
};

static void pub_on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    struct pub *p = obj;
    atomic_store(&p->connack, rc == 0 ? 1 : -1);
}

static void pub_on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    (void)mid;
    struct pub *p = obj;
    atomic_fetch_add(&p->published, 1);
}

static bool pub_connacked(void *opaque)
{
    struct pub *p = opaque;
    return atomic_load(&p->connack) != 0;
}

static void pub_free(struct pub *p)
{
    if (!p)
        return;
    mosquitto_disconnect(p->m);
    mosquitto_loop_stop(p->m, false);
    mosquitto_destroy(p->m);
    free(p);
}

/* A connected publisher (tlsdir: use ca.pem and client.pem/client.key from there). */
static struct pub *pub_new(int port, int protocol, const char *tlsdir, const char *user, const char *password)
{
    struct pub *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    char id[64];
    snprintf(id, sizeof id, "mqtest-pub-%d-%d", (int)getpid(), ++client_seq);
    p->m = mosquitto_new(id, true, p);
    if (!p->m) {
        free(p);
        return NULL;
    }
    mosquitto_int_option(p->m, MOSQ_OPT_PROTOCOL_VERSION,
                         protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(p->m, 1000);
    mosquitto_connect_callback_set(p->m, pub_on_connect);
    mosquitto_publish_callback_set(p->m, pub_on_publish);
    if (user)
        mosquitto_username_pw_set(p->m, user, password);
    if (tlsdir) {
        char ca[600], cert[600], key[600];
        snprintf(ca, sizeof ca, "%s/ca.pem", tlsdir);
        snprintf(cert, sizeof cert, "%s/client.pem", tlsdir);
        snprintf(key, sizeof key, "%s/client.key", tlsdir);
        if (mosquitto_tls_set(p->m, ca, NULL, cert, key, NULL) != MOSQ_ERR_SUCCESS) {
            pub_free(p);
            return NULL;
        }
    }
    if (mosquitto_connect(p->m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(p->m) != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(p->m);
        free(p);
        return NULL;
    }
    if (!mq_test_wait(pub_connacked, p, 10000) || atomic_load(&p->connack) != 1) {
        pub_free(p);
        return NULL;
    }
    return p;
}

struct pub_wait {
    struct pub *p;
    int n;
};

static bool pub_reached(void *opaque)
{
    struct pub_wait *pw = opaque;
    return atomic_load(&pw->p->published) >= pw->n;
}

/* Payload of message seq: its number, then filler up to 100 bytes. */
static int payload_of(int seq, char *buf)
{
    memset(buf, 'x', 100);
    int n = snprintf(buf, 100, "%08d:", seq);
    buf[n] = 'x';
    return 100;
}

#define NTOPICS 4

/* Publishes seq [from, to) on t/<seq % NTOPICS> at qos and waits until the broker has them all. */
static bool pub_stream(struct pub *p, int from, int to, int qos)
{
    int base = atomic_load(&p->published);
    for (int i = from; i < to; i++) {
        char topic[32], payload[100];
        snprintf(topic, sizeof topic, "t/%d", i % NTOPICS);
        int len = payload_of(i, payload);
        if (mosquitto_publish(p->m, NULL, topic, len, payload, qos, false) != MOSQ_ERR_SUCCESS)
            return false;
    }
    struct pub_wait pw = {p, base + (to - from)};
    return mq_test_wait(pub_reached, &pw, 60000);
}

/* Publishes on "ready" until every instance of h has taken at least one message (its subscriptions are in
 * place: "ready" is subscribed in the same SUBSCRIBE as "t/#"). */
static bool wait_ready(struct h *h, struct pub *p, int qos)
{
    int64_t deadline = now_ms() + 20000;
    while (now_ms() < deadline) {
        if (mosquitto_publish(p->m, NULL, "ready", 5, "ready", qos, false) != MOSQ_ERR_SUCCESS)
            return false;
        int64_t until = now_ms() + 200;
        while (now_ms() < until) {
            bool all = true;
            for (int i = 0; i < h->ninst; i++)
                if (h_stats(h->inst[i]).messages == 0)
                    all = false;
            if (all)
                return true;
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL); /* polling interval of a deadline wait */
        }
    }
    return false;
}

/* ---- checking the stored stream ---- */

struct seqcheck {
    int n;             /* messages published: seq 0..n-1 */
    int *seen;         /* times each seq was stored */
    int last[NTOPICS]; /* last seq per MQTT topic, for the order check */
    int out_of_order;
    int bad;
    const char *qos; /* expected mqtt.qos header, or NULL */
};

static void seqcheck_fn(void *opaque, const struct mq_record_view *rv)
{
    struct seqcheck *sc = opaque;
    char payload[100];
    if (rv->value_len != 100) {
        sc->bad++;
        return;
    }
    int seq = 0;
    for (int i = 0; i < 8; i++)
        seq = seq * 10 + (rv->value[i] - '0');
    if (seq < 0 || seq >= sc->n || memcmp(rv->value, payload, (size_t)payload_of(seq, payload)) != 0) {
        sc->bad++;
        return;
    }
    char topic[32];
    snprintf(topic, sizeof topic, "t/%d", seq % NTOPICS);
    if (!rec_header_is(rv, "mqtt.topic", topic) || !rec_header_is(rv, "mqtt.broker", "b") ||
        (sc->qos && !rec_header_is(rv, "mqtt.qos", sc->qos))) {
        sc->bad++;
        return;
    }
    if (seq <= sc->last[seq % NTOPICS])
        sc->out_of_order++;
    sc->last[seq % NTOPICS] = seq;
    sc->seen[seq]++;
}

/* Reads log topic t; *missing and *dups count seqs stored never / more than once. */
static bool check_stream(struct h *h, int n, const char *qos, int *missing, int *dups, int *out_of_order)
{
    struct seqcheck sc = {.n = n, .seen = calloc((size_t)n, sizeof(int)), .qos = qos};
    for (int i = 0; i < NTOPICS; i++)
        sc.last[i] = -1;
    int64_t count = h_read(h, "t", seqcheck_fn, &sc);
    *missing = *dups = 0;
    for (int i = 0; i < n; i++) {
        if (sc.seen[i] == 0)
            (*missing)++;
        if (sc.seen[i] > 1)
            (*dups)++;
    }
    *out_of_order = sc.out_of_order;
    free(sc.seen);
    if (count < 0 || sc.bad)
        fprintf(stderr, "check_stream: read %" PRId64 ", %d bad records\n", count, sc.bad);
    return count >= 0 && sc.bad == 0;
}

/* ---- tests ---- */

#define NMSG 3000

static void run_stream(int protocol, int qos)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    char yaml[128];
    snprintf(yaml, sizeof yaml, "    protocol: %s\n", protocol == 5 ? "5" : "3.1.1");
    CU_ASSERT_FATAL(h_open(&h, yaml, qos));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, protocol, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, qos));
    CU_ASSERT(pub_stream(p, 0, NMSG, qos));
    CU_ASSERT(h_wait_records(&h, NMSG, 60000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT_EQUAL(st.disconnects, 0); /* so no redelivery could hide */
    CU_ASSERT_EQUAL(st.connects, 1);
    CU_ASSERT(st.connected);
    h_stop(&h);
    int missing, dups, ooo;
    char qs[4];
    snprintf(qs, sizeof qs, "%d", qos);
    CU_ASSERT(check_stream(&h, NMSG, qs, &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(ooo, 0);
    CU_ASSERT_EQUAL(h_tcount(&h), NMSG);
    if (missing || dups || ooo)
        fprintf(stderr, "protocol %d qos %d: missing %d, duplicates %d, out of order %d\n", protocol, qos,
                missing, dups, ooo);
    pub_free(p);
    h_close(&h);
}

static void test_v311_qos0(void)
{
    run_stream(4, 0);
}
static void test_v311_qos1(void)
{
    run_stream(4, 1);
}
static void test_v311_qos2(void)
{
    run_stream(4, 2);
}
static void test_v5_qos0(void)
{
    run_stream(5, 0);
}
static void test_v5_qos1(void)
{
    run_stream(5, 1);
}
static void test_v5_qos2(void)
{
    run_stream(5, 2);
}

/* MQTT 5 properties become headers: user properties under their own names (repeated names kept, in order),
 * content type, response topic and correlation data (binary) under mqtt.*. */
struct propcheck {
    int n;
    int with_props_ok;
    int plain_ok;
};

static void propcheck_fn(void *opaque, const struct mq_record_view *rv)
{
    struct propcheck *pc = opaque;
    pc->n++;
    if (rv->value_len == 5 && memcmp(rv->value, "plain", 5) == 0) {
        if (rv->header_count == 4 && rec_header_is(rv, "mqtt.topic", "t/plain") &&
            rec_header_is(rv, "mqtt.qos", "1"))
            pc->plain_ok++;
        return;
    }
    /* expected headers after the four mqtt.* ones the ingest layer adds, in the order the broker sent them */
    static const uint8_t corr[] = {0, 1, 2, 0xff, 0};
    const uint8_t *c = rv->headers;
    struct mq_header hd;
    int i = 0, site = 0, ok = 0;
    while (mq_header_next(&c, rv->headers_end, &hd) == 1) {
        i++;
        if (hd.key_len == 4 && memcmp(hd.key, "site", 4) == 0) {
            const char *want = site++ == 0 ? "north" : "south";
            ok += hd.value_len == 5 && memcmp(hd.value, want, 5) == 0;
        } else if (hd.key_len == (int32_t)strlen("schlüssel") &&
                   memcmp(hd.key, "schlüssel", (size_t)hd.key_len) == 0) {
            ok += hd.value_len == (int32_t)strlen("wért") &&
                  memcmp(hd.value, "wért", (size_t)hd.value_len) == 0;
        } else if (hd.key_len == 17 && memcmp(hd.key, "mqtt.content_type", 17) == 0) {
            ok += hd.value_len == 16 && memcmp(hd.value, "application/json", 16) == 0;
        } else if (hd.key_len == 19 && memcmp(hd.key, "mqtt.response_topic", 19) == 0) {
            ok += hd.value_len == 8 && memcmp(hd.value, "reply/to", 8) == 0;
        } else if (hd.key_len == 21 && memcmp(hd.key, "mqtt.correlation_data", 21) == 0) {
            ok += hd.value_len == (int32_t)sizeof corr && memcmp(hd.value, corr, sizeof corr) == 0;
        }
    }
    if (ok == 6 && site == 2 && i == 10 && rec_header_is(rv, "mqtt.topic", "t/props") &&
        rec_header_is(rv, "mqtt.retain", "false"))
        pc->with_props_ok++;
    else
        fprintf(stderr, "properties record: %d headers, %d as expected\n", i, ok);
}

static void test_v5_properties(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, "    protocol: 5\n", 1));
    CU_ASSERT_FATAL(h_connector(&h, 0) != NULL);
    struct pub *p = pub_new(h.br.port, 5, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));

    mosquitto_property *props = NULL;
    static const uint8_t corr[] = {0, 1, 2, 0xff, 0};
    CU_ASSERT_EQUAL(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "site", "north"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "schlüssel", "wért"),
                    0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "site", "south"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE, "application/json"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, "reply/to"), 0);
    CU_ASSERT_EQUAL(mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr, sizeof corr), 0);
    const int n = 50;
    for (int i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(mosquitto_publish_v5(p->m, NULL, "t/props", 2, "{}", 1, false, props), 0);
        CU_ASSERT_EQUAL(mosquitto_publish_v5(p->m, NULL, "t/plain", 5, "plain", 1, false, NULL), 0);
    }
    mosquitto_property_free_all(&props);
    CU_ASSERT(h_wait_records(&h, 2 * n, 20000));
    h_stop(&h);
    struct propcheck pc = {0};
    CU_ASSERT_EQUAL(h_read(&h, "t", propcheck_fn, &pc), 2 * n);
    CU_ASSERT_EQUAL(pc.with_props_ok, n);
    CU_ASSERT_EQUAL(pc.plain_ok, n);
    pub_free(p);
    h_close(&h);
}

/* The broker restarted in the middle of a persistent-session QoS 1 stream: the connector reconnects,
 * resubscribes, and every message ends up stored (QoS 1 allows duplicates, not losses). */
static void run_restart(int protocol)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    char yaml[128];
    snprintf(yaml, sizeof yaml, "    protocol: %s\n    clean_session: false\n",
             protocol == 5 ? "5" : "3.1.1");
    CU_ASSERT_FATAL(h_open(&h, yaml, 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, protocol, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));

    atomic_store(&w_delay_us, 300); /* a slow store, so that the restart hits the middle of the stream */
    CU_ASSERT(pub_stream(p, 0, NMSG, 1)); /* the broker has them all (queued for our session) */
    pub_free(p);
    CU_ASSERT(h_wait_records(&h, 300, 20000));
    CU_ASSERT_FATAL(mq_test_broker_restart(&h.br));
    int64_t stored_at_restart = h_tcount(&h);
    CU_ASSERT(stored_at_restart < NMSG);
    atomic_store(&w_delay_us, 0);

    /* after the restart: more messages, which need the subscription again */
    p = pub_new(h.br.port, protocol, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT(pub_stream(p, NMSG, NMSG + 1000, 1));
    CU_ASSERT(h_wait_records(&h, NMSG + 1000, 60000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT(st.disconnects >= 1);
    CU_ASSERT(st.connects >= 2);
    h_stop(&h);
    int missing, dups, ooo;
    CU_ASSERT(check_stream(&h, NMSG + 1000, "1", &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing, 0);
    if (missing)
        dump_broker_log(&h);
    fprintf(stderr,
            "restart (MQTT %d): %" PRId64 " of %d stored before the restart, %d missing, %d duplicates\n",
            protocol, stored_at_restart, NMSG, missing, dups);
    pub_free(p);
    h_close(&h);
}

static void test_restart_v311(void)
{
    run_restart(4);
}
static void test_restart_v5(void)
{
    run_restart(5);
}

/* The store refuses messages for a while: the connector holds the message, stops reading, resumes, and
 * loses nothing; the pause is counted. */
static void test_backpressure(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, "    protocol: 5\n", 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, 5, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    atomic_store(&w_full_ms, 400);
    atomic_store(&w_full_after, atomic_load(&w_passed) + 500); /* full after 500 messages, for 400 ms */
    CU_ASSERT(pub_stream(p, 0, NMSG, 1));
    CU_ASSERT(h_wait_records(&h, NMSG, 60000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT(atomic_load(&w_full_count) > 0);
    CU_ASSERT(st.paused_ms >= 300);
    CU_ASSERT_EQUAL(st.disconnects, 0);
    h_stop(&h);
    int missing, dups, ooo;
    CU_ASSERT(check_stream(&h, NMSG, "1", &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(ooo, 0);
    CU_ASSERT_EQUAL(h_tcount(&h), NMSG);
    pub_free(p);
    h_close(&h);
}

/* A pause longer than 1.5 x keepalive: the broker drops the connection (no PINGREQ while on_message holds
 * a message); the held message is stored when the store takes it again, the connector reconnects to its
 * persistent session and the broker redelivers what we had not acknowledged: nothing is lost. */
static void test_backpressure_beyond_keepalive(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, "    protocol: 5\n    clean_session: false\n    keepalive: 5\n", 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, 5, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    /* 1.5 x keepalive is 7.5 s; mosquitto 2.0.11 checks keep-alives coarsely and cut a silent client after
     * about 10.7 s here */
    atomic_store(&w_full_ms, 15000);
    atomic_store(&w_full_after, atomic_load(&w_passed) + 200);
    const int n = 2000;
    CU_ASSERT(pub_stream(p, 0, n, 1));
    CU_ASSERT(h_wait_records(&h, n, 60000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT(st.paused_ms >= 14000);
    CU_ASSERT(st.disconnects >= 1);
    CU_ASSERT(st.connects >= 2);
    h_stop(&h);
    int missing, dups, ooo;
    CU_ASSERT(check_stream(&h, n, "1", &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing, 0);
    if (missing || st.disconnects == 0)
        dump_broker_log(&h);
    fprintf(stderr,
            "pause beyond keepalive: %d missing, %d duplicates, %d out of order, %" PRIu64
            " disconnects, paused %" PRIu64 " ms\n",
            missing, dups, ooo, st.disconnects, st.paused_ms);
    pub_free(p);
    h_close(&h);
}

/* stop() while on_message holds a message the store refuses returns promptly. */
static void test_stop_while_paused(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, NULL, 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, 4, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    atomic_store(&w_full_ms, -1);
    atomic_store(&w_full_after, 0);
    CU_ASSERT(pub_stream(p, 0, 10, 1));
    int64_t deadline = now_ms() + 10000;
    while (h_stats(inst).paused_ms == 0 && now_ms() < deadline) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* polling interval of a deadline wait */
    }
    CU_ASSERT(h_stats(inst).paused_ms > 0);
    int64_t t0 = now_ms();
    h_stop(&h);
    CU_ASSERT(now_ms() - t0 < 2000);
    pub_free(p);
    h_close(&h);
}

static bool run_cmd(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc == 0;
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in dir. */
static bool make_certs(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec >openssl.log 2>&1 && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
             "-out ca.pem -days 2 -subj /CN=mqlog-test-ca && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key "
             "-out server.csr -subj /CN=127.0.0.1 && "
             "printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem "
             "-days 2 -extfile server.ext && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key "
             "-out client.csr -subj /CN=mqlog-gw && "
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem "
             "-days 2 && chmod 644 *.pem *.key && chmod 755 .",
             dir);
    return run_cmd(cmd);
}

/* ---- durable_ack: acknowledgements wait for the group commit ---- */

struct log_wait {
    struct h *h;
    const char *needle;
    int target;
};

static bool log_reached(void *opaque)
{
    struct log_wait *w = opaque;
    return mq_test_broker_log_count(&w->h->br, w->needle) >= w->target;
}

static void run_durable(int protocol)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, "log_type all\n"));
    char yaml[160];
    snprintf(yaml, sizeof yaml, "    protocol: %s\n    durable_ack: true\n    clean_session: false\n",
             protocol == 5 ? "5" : "3.1.1");
    CU_ASSERT_FATAL(h_open(&h, yaml, 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, protocol, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    CU_ASSERT_FATAL(pub_stream(p, 0, 1, 1)); /* creates log topic t before the gate closes */
    CU_ASSERT_FATAL(h_wait_records(&h, 1, 20000));

    char puback[160];
    snprintf(puback, sizeof puback, "Received PUBACK from %s ", h.cfg->brokers[0].client_id);
    struct log_wait lw = {&h, puback, (int)h_stats(inst).messages};
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 10000)); /* all so far acknowledged: the gate was open */
    int acks = mq_test_broker_log_count(&h.br, puback);

    struct mq_ingest_stats is0, is1;
    mq_ingest_stats(h.ingest, &is0);
    mq_test_gate_set(true);
    CU_ASSERT_FATAL(pub_stream(p, 1, 2, 1)); /* the broker took it (its PUBACK to the publisher) */
    int64_t deadline = now_ms() + 10000;     /* stored (not durable: readers do not see it yet)... */
    do
        mq_ingest_stats(h.ingest, &is1);
    while (is1.records == is0.records && now_ms() < deadline);
    CU_ASSERT_TRUE(is1.records > is0.records);
    CU_ASSERT_TRUE(mq_test_wait(mq_test_gate_has_waiter, NULL, 10000)); /* ...and its flush is stuck */
    /* Something the broker logs after it delivered the message: still no PUBACK from us. */
    const char *recv = "Received PUBLISH from ";
    int nrecv = mq_test_broker_log_count(&h.br, recv);
    CU_ASSERT_FATAL(mosquitto_publish(p->m, NULL, "unrelated", 1, "u", 1, false) == MOSQ_ERR_SUCCESS);
    struct log_wait rw = {&h, recv, nrecv + 1};
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &rw, 10000));
    CU_ASSERT_EQUAL(mq_test_broker_log_count(&h.br, puback), acks);
    mq_test_gate_set(false);
    lw.target = acks + 1;
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 10000)); /* acknowledged once durable */

    /* And a stream: every message once, in order, all acknowledged, at group-commit speed. */
    CU_ASSERT(pub_stream(p, 2, NMSG, 1));
    CU_ASSERT(h_wait_records(&h, NMSG, 60000));
    lw.target = acks + 1 + (NMSG - 2);
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 20000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT_EQUAL(st.disconnects, 0);
    h_stop(&h);
    int missing, dups, ooo;
    CU_ASSERT(check_stream(&h, NMSG, "1", &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(ooo, 0);
    pub_free(p);
    h_close(&h);
}

static void test_durable_ack_v5(void)
{
    run_durable(5);
}

static void test_durable_ack_v311(void)
{
    run_durable(4);
}

static bool connected_once(void *opaque)
{
    return h_stats(opaque).connects > 0;
}

static void test_tls_client_cert(void)
{
    char *certs = mq_test_tmpdir("mosq-tls");
    CU_ASSERT_FATAL(make_certs(certs));
    char extra[2048];
    snprintf(extra, sizeof extra,
             "cafile %s/ca.pem\ncertfile %s/server.pem\nkeyfile %s/server.key\nrequire_certificate true\n",
             certs, certs, certs);
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, extra));
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "    url: mqtts://127.0.0.1:%d\n    protocol: 5\n"
             "    tls: { ca: %s/ca.pem, cert: %s/client.pem, key: %s/client.key }\n",
             h.br.port, certs, certs, certs);
    CU_ASSERT_FATAL(h_open(&h, yaml, 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    /* The publisher connects once the connector has: libmosquitto 2.0.11 sets up its TLS state in the
     * first TLS connect of the process without a lock (the connector serialises only its own). */
    CU_ASSERT_FATAL(mq_test_wait(connected_once, inst, 10000));
    struct pub *p = pub_new(h.br.port, 5, certs, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    const int n = 500;
    CU_ASSERT(pub_stream(p, 0, n, 1));
    CU_ASSERT(h_wait_records(&h, n, 20000));
    h_stop(&h);
    int missing, dups, ooo;
    CU_ASSERT(check_stream(&h, n, "1", &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing + dups + ooo, 0);
    pub_free(p);
    h_close(&h);
    mq_test_rmdir(certs);
}

static void test_username_password(void)
{
    char *pw = mq_test_tmpdir("mosq-pw");
    char cmd[1024], extra[1024], yaml[1024], path[600];
    snprintf(cmd, sizeof cmd,
             "mosquitto_passwd -c -b '%s/passwd' gw 's3cret word' && chmod 644 '%s/passwd' && chmod 755 '%s'",
             pw, pw, pw);
    CU_ASSERT_FATAL(run_cmd(cmd));
    snprintf(path, sizeof path, "%s/gw.password", pw);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("s3cret word\nsecond line is not part of it\n", f);
    fclose(f);
    snprintf(extra, sizeof extra, "allow_anonymous false\npassword_file %s/passwd\n", pw);
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, extra));
    snprintf(yaml, sizeof yaml, "    username: gw\n    password_file: %s\n", path);
    CU_ASSERT_FATAL(h_open(&h, yaml, 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, 4, NULL, "gw", "s3cret word");
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    CU_ASSERT(pub_stream(p, 0, 100, 1));
    CU_ASSERT(h_wait_records(&h, 100, 20000));
    h_stop(&h);
    pub_free(p);
    h_close(&h);

    /* a wrong password: refused, retried, never connected */
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("wrong\n", f);
    fclose(f);
    CU_ASSERT_FATAL(h_broker(&h, extra));
    CU_ASSERT_FATAL(h_open(&h, yaml, 1));
    inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    CU_ASSERT_FALSE(mq_test_wait(connected_once, inst, 1000));
    h_close(&h);
    mq_test_rmdir(pw);
}

/* sessions: 2 share the subscription ($share/mqlog/t/#): every message is stored once, by one of them. */
static void test_shared_sessions(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, "    protocol: 5\n    sessions: 2\n", 1));
    CU_ASSERT_FATAL(h.nsubs >= 1 && strncmp(h.subs[0].filter, "$share/mqlog/", 13) == 0);
    void *a = h_connector(&h, 0), *b = h_connector(&h, 1);
    CU_ASSERT_FATAL(a && b);
    struct pub *p = pub_new(h.br.port, 5, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    const int n = 2000;
    uint64_t a0 = h_stats(a).messages, b0 = h_stats(b).messages;
    CU_ASSERT(pub_stream(p, 0, n, 1));
    CU_ASSERT(h_wait_records(&h, n, 30000));
    uint64_t an = h_stats(a).messages - a0, bn = h_stats(b).messages - b0;
    CU_ASSERT(an > 0 && bn > 0);
    h_stop(&h);
    int missing, dups, ooo;
    CU_ASSERT(check_stream(&h, n, "1", &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(h_tcount(&h), n);
    fprintf(stderr, "shared: session 0 took %" PRIu64 ", session 1 took %" PRIu64 "\n", an, bn);
    pub_free(p);
    h_close(&h);
}

/* Started while the broker is down: retries with backoff and connects once it is up. */
static void test_broker_down_at_start(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    mq_test_broker_stop(&h.br);
    CU_ASSERT_FATAL(h_open(&h, NULL, 1));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    CU_ASSERT_FALSE(mq_test_wait(connected_once, inst, 300));
    CU_ASSERT_FATAL(mq_test_broker_restart(&h.br));
    CU_ASSERT(mq_test_wait(connected_once, inst, 5000));
    struct pub *p = pub_new(h.br.port, 4, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    pub_free(p);
    h_close(&h);
}

/* create() refuses what cannot work, with a reason. */
static void test_create_errors(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, NULL, 1));
    struct mq_config_broker b = h.cfg->brokers[0];
    struct mq_subscription bad = {.filter = "a/#/b", .qos = 1};
    struct mq_connector_ctx ctx = {.broker = &b, .subs = &bad, .nsubs = 1, .ingest = h.ingest};
    void *inst = NULL;
    char errstr[256] = "";
    CU_ASSERT_EQUAL(mq_connector_mosquitto.create(&ctx, &inst, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT(strstr(errstr, "a/#/b") != NULL);
    CU_ASSERT_PTR_NULL(inst);

    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-password", h.dir);
    b.username = "u";
    b.password_file = missing;
    ctx.subs = h.subs;
    ctx.nsubs = h.nsubs;
    CU_ASSERT_EQUAL(mq_connector_mosquitto.create(&ctx, &inst, errstr, sizeof errstr), MQ_ERR_NOENT);
    CU_ASSERT(strstr(errstr, "no-such-password") != NULL);

    b.username = NULL;
    b.password_file = NULL;
    b.tls = true;
    b.tls_opts.ca = missing;
    CU_ASSERT_NOT_EQUAL(mq_connector_mosquitto.create(&ctx, &inst, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT(strstr(errstr, "TLS") != NULL);
    CU_ASSERT_PTR_NULL(inst);

    mq_connector_mosquitto.destroy(NULL);
    CU_ASSERT_STRING_EQUAL(mq_connector_mosquitto.name, "mosquitto");
    CU_ASSERT_EQUAL(mq_connector_mosquitto.version, MQ_CONNECTOR_VERSION);
    h_close(&h);
}

int main(void)
{
    w_reset();
    /* The test's own clients share the connector's libmosquitto initialisation (mosq.h): a second
     * mosquitto_lib_init() of its own would leak libmosquitto's TLS state. */
    if (mq_mosq_lib_ref() != MOSQ_ERR_SUCCESS)
        return 2;
    static const struct mq_test tests[] = {
        MQ_TEST(test_create_errors),
        MQ_TEST(test_v311_qos0),
        MQ_TEST(test_v311_qos1),
        MQ_TEST(test_v311_qos2),
        MQ_TEST(test_v5_qos0),
        MQ_TEST(test_v5_qos1),
        MQ_TEST(test_v5_qos2),
        MQ_TEST(test_v5_properties),
        MQ_TEST(test_restart_v311),
        MQ_TEST(test_restart_v5),
        MQ_TEST(test_backpressure),
        MQ_TEST(test_stop_while_paused),
        MQ_TEST(test_backpressure_beyond_keepalive),
        MQ_TEST(test_durable_ack_v5),
        MQ_TEST(test_durable_ack_v311),
        MQ_TEST(test_tls_client_cert),
        MQ_TEST(test_username_password),
        MQ_TEST(test_shared_sessions),
        MQ_TEST(test_broker_down_at_start),
        MQ_TEST_END,
    };
    /* MQ_TEST_ONLY=name runs one test (debugging) */
    const char *only = getenv("MQ_TEST_ONLY");
    struct mq_test one[2] = {MQ_TEST_END, MQ_TEST_END};
    for (const struct mq_test *t = tests; only && t->name; t++)
        if (strcmp(t->name, only) == 0)
            one[0] = *t;
    int rc = mq_test_run("mosquitto connector", only ? one : tests);
    mq_mosq_lib_unref();
    return rc;
}
