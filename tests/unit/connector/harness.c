/*
 * harness.c - the connector tests' fixture (harness.h): broker, configuration, store, ingest, instances,
 * publisher, and the faults the tests inject (the ingest wrapper and a full disk).
 */
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <mqtt_protocol.h>

#include "gate.h"
#include "store/store.h"
#include "util/diag.h"
#include "util/parse.h"

/* ---- the ingest wrapper: backpressure and slowness on demand ---- */

atomic_long w_passed;        /* messages handed to the real ingest and accepted */
atomic_long w_full_after;    /* refuse (MQ_ERR_FULL) once this many passed; -1: never */
atomic_long w_full_ms;       /* ... for this long from the first refusal; -1: forever */
_Atomic int64_t w_full_from; /* monotonic ms of the first refusal, 0: none yet */
atomic_long w_full_count;    /* refusals given */
atomic_int w_delay_us;       /* sleep before each message (a slow store) */

void w_reset(void)
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
        nanosleep(&ts, NULL); /* not synchronisation: simulates a slow store */
    }
    long after = atomic_load(&w_full_after);
    if (after >= 0 && atomic_load(&w_passed) >= after) {
        int64_t from = atomic_load(&w_full_from), now = mq_mono_ms();
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

/* ---- a full disk: pwrite() to the store's segment files fails while disk_full is set ---- */

atomic_bool disk_full;
atomic_int disk_full_hits;
static char disk_dir[300]; /* the name of the open fixture's directory (unique: mkdtemp) */

static bool is_segment_fd(int fd)
{
    char link[64], path[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 5 || !disk_dir[0])
        return false;
    path[n] = '\0';
    return strstr(path, disk_dir) && strcmp(path + n - 4, ".log") == 0;
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

/* ---- harness: broker, configuration, store, ingest, connector instances ---- */

int client_seq;

bool h_broker(struct h *h, const char *extra)
{
    memset(h, 0, sizeof *h);
    h->dir = mq_test_tmpdir("conn");
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
bool h_open(struct h *h, const char *broker_yaml, int qos, const struct mq_log_conf *lc)
{
    char path[600], data[600];
    snprintf(path, sizeof path, "%s/mqlogd.yaml", h->dir);
    snprintf(data, sizeof data, "%s/data", h->dir);
    const char *slash = strrchr(h->dir, '/');
    snprintf(disk_dir, sizeof disk_dir, "/%s/", slash ? slash + 1 : h->dir);
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
            "    client: %s\n"
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
            mq_contract.conn->name, (int)getpid(), ++client_seq, broker_yaml ? broker_yaml : "", qos, qos);
    fclose(f);
    if (mq_config_load(path, &h->cfg, report, NULL) != MQ_OK)
        return false;
    char errstr[256] = "";
    struct mq_log_conf conf;
    mq_log_conf_defaults(&conf);
    conf.flush_interval_ms = h->cfg->log.flush_interval_ms;
    if (lc)
        conf = *lc;
    if (mq_store_open(h->cfg->data_dir, MQ_STORE_WRITE, &conf, &h->store, errstr, sizeof errstr) != MQ_OK) {
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

void *h_connector(struct h *h, int session)
{
    struct mq_connector_ctx ctx = {.broker = &h->cfg->brokers[0],
                                   .session = session,
                                   .subs = h->subs,
                                   .nsubs = h->nsubs,
                                   .ingest = h->ingest,
                                   .flush_interval_ms = h->cfg->log.flush_interval_ms};
    void *inst = NULL;
    char errstr[256] = "";
    enum mq_err err = mq_contract.conn->create(&ctx, &inst, errstr, sizeof errstr);
    if (err != MQ_OK) {
        fprintf(stderr, "create: %s: %s\n", mq_strerror(err), errstr);
        return NULL;
    }
    if (mq_contract.conn->start(inst) != MQ_OK) {
        mq_contract.conn->destroy(inst);
        return NULL;
    }
    h->inst[h->ninst++] = inst;
    return inst;
}

struct mq_connector_stats h_stats(void *inst)
{
    struct mq_connector_stats st;
    mq_contract.conn->stats(inst, &st);
    return st;
}

void h_stop(struct h *h)
{
    for (int i = 0; i < h->ninst; i++) {
        mq_contract.conn->stop(h->inst[i]);
        mq_contract.conn->destroy(h->inst[i]);
    }
    h->ninst = 0;
}

void h_close(struct h *h)
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
    atomic_store(&disk_full, false);
    atomic_store(&disk_full_hits, 0);
    disk_dir[0] = '\0';
}

/* The end of what readers see in log topic t (0 while it does not exist). */
int64_t h_tcount(struct h *h)
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

bool h_wait_records(struct h *h, int64_t n, int64_t timeout_ms)
{
    struct count_wait cw = {h, n};
    return mq_test_wait(h_tcount_reached, &cw, timeout_ms);
}

/* Calls fn for every record of log topic `topic` partition 0, after making everything durable. Returns the
 * number of records, or -1 when reading failed. */
int64_t h_read(struct h *h, const char *topic, void (*fn)(void *opaque, const struct mq_record_view *rv),
               void *opaque)
{
    struct mq_part *part;
    if (mq_store_part(h->store, topic, 0, &part) != MQ_OK)
        return 0;
    if (mq_part_flush(part) != MQ_OK)
        return -1;
    struct mq_cursor *cur;
    if (mq_cursor_open(part, 0, &cur) != MQ_OK)
        return -1;
    int64_t count = 0;
    struct mq_record_view rv;
    int rc;
    while ((rc = mq_cursor_next(cur, &rv)) == 1) {
        if (fn)
            fn(opaque, &rv);
        count++;
    }
    mq_cursor_close(cur);
    return rc == 0 ? count : -1;
}

/* The value of header `key` of a record (the first one with that name), or NULL. */
const char *rec_header(const struct mq_record_view *rv, const char *key, int32_t *len)
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

bool rec_header_is(const struct mq_record_view *rv, const char *key, const char *want)
{
    int32_t len;
    const char *v = rec_header(rv, key, &len);
    return v && len == (int32_t)strlen(want) && memcmp(v, want, (size_t)len) == 0;
}

/* On a failure: the end of the broker's log, to see what it thought happened. */
void dump_broker_log(struct h *h)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "tail -n 40 '%s/mosquitto.log' >&2", h->br.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no broker log)\n");
}

/* ---- publisher ---- */

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

void pub_free(struct pub *p)
{
    if (!p)
        return;
    mosquitto_disconnect(p->m);
    mosquitto_loop_stop(p->m, false);
    mosquitto_destroy(p->m);
    free(p);
}

/* A connected publisher (tlsdir: use ca.pem and client.pem/client.key from there). */
struct pub *pub_new(int port, int protocol, const char *tlsdir, const char *user, const char *password)
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

/* Payload of message seq: its number, then filler up to size bytes (at least 10). */
static int payload_of(int seq, char *buf, int size)
{
    memset(buf, 'x', (size_t)size);
    int n = snprintf(buf, (size_t)size, "%08d:", seq);
    buf[n] = 'x';
    return size;
}

bool pub_stream(struct pub *p, int from, int to, int qos)
{
    return pub_stream_sized(p, from, to, qos, 100);
}

bool pub_stream_sized(struct pub *p, int from, int to, int qos, int size)
{
    int base = atomic_load(&p->published);
    for (int i = from; i < to; i++) {
        char topic[32], payload[MAX_PAYLOAD];
        snprintf(topic, sizeof topic, "t/%d", i % NTOPICS);
        int len = payload_of(i, payload, size);
        if (mosquitto_publish(p->m, NULL, topic, len, payload, qos, false) != MOSQ_ERR_SUCCESS)
            return false;
    }
    struct pub_wait pw = {p, base + (to - from)};
    return mq_test_wait(pub_reached, &pw, 60000);
}

/* Publishes on "ready" until every instance of h has taken at least one message (its subscriptions are in
 * place: "ready" is subscribed in the same SUBSCRIBE as "t/#"). */
bool wait_ready(struct h *h, struct pub *p, int qos)
{
    int64_t deadline = mq_mono_ms() + 20000;
    while (mq_mono_ms() < deadline) {
        if (mosquitto_publish(p->m, NULL, "ready", 5, "ready", qos, false) != MOSQ_ERR_SUCCESS)
            return false;
        int64_t until = mq_mono_ms() + 200;
        while (mq_mono_ms() < until) {
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
    char payload[MAX_PAYLOAD];
    if (rv->value_len < 10 || rv->value_len > MAX_PAYLOAD) {
        sc->bad++;
        return;
    }
    int seq = 0;
    for (int i = 0; i < 8; i++)
        seq = seq * 10 + (rv->value[i] - '0');
    if (seq < 0 || seq >= sc->n ||
        memcmp(rv->value, payload, (size_t)payload_of(seq, payload, rv->value_len)) != 0) {
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
bool check_stream(struct h *h, int n, const char *qos, int *missing, int *dups, int *out_of_order)
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

bool run_cmd(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc == 0;
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in dir. */
bool make_certs(const char *dir)
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

bool log_reached(void *opaque)
{
    struct log_wait *w = opaque;
    return mq_test_broker_log_count(&w->h->br, w->needle) >= w->target;
}

bool connected_once(void *inst)
{
    return h_stats(inst).connects > 0;
}

struct acked_wait {
    struct h *h;
    char sent[200], acked[200];
};

static bool acked_reached(void *opaque)
{
    struct acked_wait *w = opaque;
    return mq_test_broker_log_count(&w->h->br, w->acked) >= mq_test_broker_log_count(&w->h->br, w->sent);
}

bool acked_all(struct h *h, const char *ack)
{
    struct acked_wait w = {.h = h};
    const char *id = h->cfg->brokers[0].client_id;
    snprintf(w.sent, sizeof w.sent, "Sending PUBLISH to %s ", id);
    snprintf(w.acked, sizeof w.acked, "Received %s from %s ", ack, id);
    return mq_test_wait(acked_reached, &w, 10000);
}

struct all_wait {
    struct h *h;
    int n;
    int64_t checked; /* h_tcount() at the last look */
    char *have;
};

static void all_fn(void *opaque, const struct mq_record_view *rv)
{
    struct all_wait *w = opaque;
    int seq = 0;
    for (int i = 0; i < 8 && i < rv->value_len; i++)
        seq = seq * 10 + (rv->value[i] - '0');
    if (seq >= 0 && seq < w->n)
        w->have[seq] = 1;
}

static bool all_reached(void *opaque)
{
    struct all_wait *w = opaque;
    int64_t end = h_tcount(w->h);
    if (end < w->n || end == w->checked)
        return false; /* read the log again only once it has grown */
    w->checked = end;
    memset(w->have, 0, (size_t)w->n);
    h_read(w->h, "t", all_fn, w);
    return memchr(w->have, 0, (size_t)w->n) == NULL;
}

bool h_wait_all(struct h *h, int n, int64_t timeout_ms)
{
    struct all_wait w = {.h = h, .n = n, .checked = -1, .have = calloc((size_t)n, 1)};
    bool ok = w.have && mq_test_wait(all_reached, &w, timeout_ms);
    free(w.have);
    return ok;
}

void print_missing(struct h *h, int n)
{
    struct all_wait w = {.h = h, .n = n, .have = calloc((size_t)n, 1)};
    if (!w.have)
        return;
    h_read(h, "t", all_fn, &w);
    for (int i = 0; i < n; i++) {
        if (w.have[i])
            continue;
        int j = i;
        while (j + 1 < n && !w.have[j + 1])
            j++;
        fprintf(stderr, "missing %d..%d\n", i, j);
        i = j;
    }
    free(w.have);
}

bool assert_exactly_once(struct h *h, int n, const char *qos)
{
    int missing, dups, ooo;
    bool read = check_stream(h, n, qos, &missing, &dups, &ooo);
    CU_ASSERT(read);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(ooo, 0);
    if (read && missing + dups + ooo == 0)
        return true;
    fprintf(stderr, "%d messages: missing %d, duplicates %d, out of order %d\n", n, missing, dups, ooo);
    return false;
}

void gate_close_and_publish(struct h *h, struct pub *p, int seq, int qos)
{
    struct mq_ingest_stats is0, is1;
    mq_ingest_stats(h->ingest, &is0);
    mq_test_gate_set(true);
    CU_ASSERT_FATAL(pub_stream(p, seq, seq + 1, qos)); /* the broker took it (acknowledged the publisher) */
    int64_t deadline = mq_mono_ms() + 10000; /* stored (not durable: readers do not see it yet)... */
    do
        mq_ingest_stats(h->ingest, &is1);
    while (is1.records == is0.records && mq_mono_ms() < deadline);
    CU_ASSERT_TRUE(is1.records > is0.records);
    CU_ASSERT_TRUE(mq_test_wait(mq_test_gate_has_waiter, NULL, 10000)); /* ...and its flush is stuck */
}

void broker_logs_later(struct h *h, struct pub *p)
{
    const char *recv = "Received PUBLISH from ";
    struct log_wait rw = {h, recv, mq_test_broker_log_count(&h->br, recv) + 1};
    CU_ASSERT_FATAL(mosquitto_publish(p->m, NULL, "unrelated", 1, "u", 1, false) == MOSQ_ERR_SUCCESS);
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &rw, 10000));
}

struct pub *h_start(struct h *h, const char *broker_yaml, int qos, int protocol, void **inst)
{
    CU_ASSERT_FATAL(h_open(h, broker_yaml, qos, NULL));
    *inst = h_connector(h, 0);
    CU_ASSERT_FATAL(*inst != NULL);
    struct pub *p = pub_new(h->br.port, protocol, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(h, p, qos));
    return p;
}
