/*
 * contract.c - what every source connector must do (gateway/connector.h), tested the same way against
 * each connector built: the file is compiled into one executable per connector, test_connector_<name>, with
 * harness.c and the connector's own <name>.c (which names the connector and adds the tests of what only
 * it does). Against a real mosquitto broker, the real ingest layer and a real store:
 *  - QoS 0/1/2 over MQTT 3.1.1 and 5, with and without durable_ack: every message stored exactly once, in
 *    order per MQTT topic, without a pause or a reconnect;
 *  - MQTT 5 properties become record headers;
 *  - a broker restart in the middle of a persistent QoS 1 stream loses nothing;
 *  - durable_ack: no acknowledgement before the record is durable (the broker's log shows when we ack);
 *    without it the acknowledgement does not wait;
 *  - backpressure (the store refusing, the disk full) pauses reading, counts the pause and loses nothing;
 *  - TLS with a client certificate, user name and password (a wrong one retried, never connected);
 *  - shared subscriptions over two sessions, a broker that is down at start, create() errors.
 *
 * MQ_TEST_ONLY=<substring> runs the matching tests only; MQ_CONNECTOR_BENCH=<messages> also measures
 * throughput (durable_ack off/on, 1 and 4 sessions; not part of the suite). MQ_CONNECTOR_DEBUG=1 logs at
 * debug level.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mqtt_protocol.h>

#include "gate.h"
#include "harness.h"
#include "util/diag.h"
#include "util/parse.h"

/* ---- streams: QoS 0/1/2 over MQTT 3.1.1 and 5 ---- */

static void run_stream_once(int protocol, int qos, bool durable)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    char yaml[128];
    snprintf(yaml, sizeof yaml, "    protocol: %s\n    durable_ack: %s\n", protocol == 5 ? "5" : "3.1.1",
             durable ? "true" : "false");
    void *inst;
    struct pub *p = h_start(&h, yaml, qos, protocol, &inst);
    CU_ASSERT(pub_stream(p, 0, NMSG, qos));
    CU_ASSERT(h_wait_records(&h, NMSG, 60000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT_EQUAL(st.disconnects, 0); /* so no redelivery could hide */
    CU_ASSERT_EQUAL(st.connects, 1);
    CU_ASSERT(st.connected);
    CU_ASSERT_EQUAL(st.paused_ms, 0);
    h_stop(&h);
    char qs[4];
    snprintf(qs, sizeof qs, "%d", mq_contract.delivered_qos(qos, protocol, durable));
    if (!assert_exactly_once(&h, NMSG, qs))
        fprintf(stderr, "(protocol %d qos %d durable_ack %d)\n", protocol, qos, durable);
    CU_ASSERT_EQUAL(h_tcount(&h), NMSG);
    pub_free(p);
    h_close(&h);
}

/* QoS 1 and 2 both with and without durable_ack (only QoS 1/2 acknowledgements can wait). */
static void run_stream(int protocol, int qos)
{
    run_stream_once(protocol, qos, false);
    if (qos > 0)
        run_stream_once(protocol, qos, true);
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

/* ---- MQTT 5 properties become headers ---- */

/* User properties under their own names (repeated names kept, all in the order sent), content type,
 * response topic and correlation data (binary) under mqtt.*, after the four mqtt.* headers ingest adds. */
struct propcheck {
    int n;
    int with_props_ok;
    int plain_ok;
};

static bool hdr_is(const struct mq_header *hd, const char *key, const void *val, int32_t vlen)
{
    return hd->key_len == (int32_t)strlen(key) && memcmp(hd->key, key, (size_t)hd->key_len) == 0 &&
           hd->value_len == vlen && memcmp(hd->value, val, (size_t)vlen) == 0;
}

static void propcheck_fn(void *opaque, const struct mq_record_view *rv)
{
    struct propcheck *pc = opaque;
    pc->n++;
    if (rv->value_len == 5 && memcmp(rv->value, "plain", 5) == 0) {
        if (rv->header_count == 4 && rec_header_is(rv, MQ_HDR_TOPIC, "t/plain") &&
            rec_header_is(rv, MQ_HDR_QOS, "1"))
            pc->plain_ok++;
        return;
    }
    static const uint8_t corr[] = {0, 1, 2, 0xff, 0};
    static const char *const user[][2] = {{"site", "north"}, {"schlüssel", "wért"}, {"site", "south"}};
    const uint8_t *c = rv->headers;
    struct mq_header hd;
    int i = 0, nuser = 0, ok = 0;
    while (mq_header_next(&c, rv->headers_end, &hd) == 1) {
        i++;
        if (i <= 4) /* ingest's own */
            continue;
        if (nuser < 3 && hdr_is(&hd, user[nuser][0], user[nuser][1], (int32_t)strlen(user[nuser][1])))
            nuser++, ok++; /* the next user property, in the order sent */
        else if (hdr_is(&hd, MQ_HDR_CONTENT_TYPE, "application/json", 16) ||
                 hdr_is(&hd, MQ_HDR_RESPONSE_TOPIC, "reply/to", 8) ||
                 hdr_is(&hd, MQ_HDR_CORRELATION_DATA, corr, (int32_t)sizeof corr))
            ok++;
    }
    if (ok == 6 && nuser == 3 && i == 10 && i == rv->header_count &&
        rec_header_is(rv, MQ_HDR_TOPIC, "t/props") && rec_header_is(rv, MQ_HDR_QOS, "1") &&
        rec_header_is(rv, MQ_HDR_RETAIN, "false") && rec_header_is(rv, MQ_HDR_BROKER, "b"))
        pc->with_props_ok++;
    else
        fprintf(stderr,
                "properties record: %d headers (%d counted), %d as expected, %d user properties in order\n",
                i, rv->header_count, ok, nuser);
}

static void test_v5_properties(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, "    protocol: 5\n", 1, NULL));
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

/* ---- a broker restart ---- */

/* The broker restarted in the middle of a persistent-session QoS 1 stream: the connector reconnects,
 * resubscribes, and every message ends up stored (QoS 1 allows duplicates, not losses). */
static void run_restart(int protocol)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    char yaml[128];
    snprintf(yaml, sizeof yaml, "    protocol: %s\n    clean_session: false\n",
             protocol == 5 ? "5" : "3.1.1");
    void *inst;
    struct pub *p = h_start(&h, yaml, 1, protocol, &inst);

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
    /* every message, not just as many records: redelivered duplicates count as records too */
    CU_ASSERT(h_wait_all(&h, NMSG + 1000, 60000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT(st.disconnects >= 1);
    CU_ASSERT(st.connects >= 2);
    h_stop(&h);
    int missing, dups, ooo;
    CU_ASSERT(check_stream(&h, NMSG + 1000, "1", &missing, &dups, &ooo));
    CU_ASSERT_EQUAL(missing, 0);
    if (missing) {
        dump_broker_log(&h);
        print_missing(&h, NMSG + 1000);
    }
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

/* ---- backpressure ---- */

/* The store refuses messages for a while: the connector holds the message, stops reading, resumes, and
 * loses nothing; the pause is counted. */
static void test_backpressure(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    void *inst;
    struct pub *p = h_start(&h, "    protocol: 5\n", 1, 5, &inst);
    atomic_store(&w_full_ms, 400);
    atomic_store(&w_full_after, atomic_load(&w_passed) + 500); /* full after 500 messages, for 400 ms */
    CU_ASSERT(pub_stream(p, 0, NMSG, 1));
    CU_ASSERT(h_wait_records(&h, NMSG, 60000));
    struct mq_connector_stats st = h_stats(inst);
    CU_ASSERT(atomic_load(&w_full_count) > 0);
    CU_ASSERT(st.paused_ms >= 300);
    CU_ASSERT_EQUAL(st.disconnects, 0);
    h_stop(&h);
    assert_exactly_once(&h, NMSG, "1");
    CU_ASSERT_EQUAL(h_tcount(&h), NMSG);
    pub_free(p);
    h_close(&h);
}

static bool paused(void *inst)
{
    return h_stats(inst).paused_ms > 0;
}

/* The disk is full: the store refuses (without durable_ack, MQ_ERR_FULL once 16 KiB wait unwritten) or
 * cannot make the first records durable (durable_ack); the connector stops reading, and once the disk has
 * room again every message is stored exactly once, in order. */
static void run_disk_full(bool durable)
{
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = 5;
    lc.max_pending_bytes = 16 * 1024;
    lc.batch_bytes = 4 * 1024;
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(
        h_open(&h, durable ? "    protocol: 5\n    durable_ack: true\n" : "    protocol: 5\n", 1, &lc));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    struct pub *p = pub_new(h.br.port, 5, NULL, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    CU_ASSERT_FATAL(pub_stream(p, 0, 1, 1)); /* creates log topic t while the disk has room */
    CU_ASSERT_FATAL(h_wait_records(&h, 1, 20000));
    uint64_t base = h_stats(inst).messages;
    const int n = 400;
    atomic_store(&disk_full, true);
    CU_ASSERT(pub_stream_sized(p, 1, 1 + n, 1, MAX_PAYLOAD));
    CU_ASSERT_TRUE(mq_test_wait(paused, inst, 30000));
    uint64_t during = h_stats(inst).messages;
    CU_ASSERT_TRUE(during < base + (uint64_t)n);
    CU_ASSERT_TRUE(atomic_load(&disk_full_hits) > 0);
    atomic_store(&disk_full, false);
    CU_ASSERT(h_wait_records(&h, 1 + n, 60000));
    h_stop(&h);
    assert_exactly_once(&h, 1 + n, "1");
    pub_free(p);
    h_close(&h);
}

static void test_disk_full_pauses(void)
{
    run_disk_full(false);
}
static void test_disk_full_pauses_durable(void)
{
    run_disk_full(true);
}

/* ---- durable_ack: acknowledgements wait for the group commit ---- */

static void run_durable(int protocol, bool durable)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, "log_type all\n"));
    char yaml[160];
    snprintf(yaml, sizeof yaml, "    protocol: %s\n    durable_ack: %s\n    clean_session: false\n",
             protocol == 5 ? "5" : "3.1.1", durable ? "true" : "false");
    void *inst;
    struct pub *p = h_start(&h, yaml, 1, protocol, &inst);
    CU_ASSERT_FATAL(pub_stream(p, 0, 1, 1)); /* creates log topic t before the gate closes */
    CU_ASSERT_FATAL(h_wait_records(&h, 1, 20000));

    char puback[160];
    snprintf(puback, sizeof puback, "Received PUBACK from %s ", h.cfg->brokers[0].client_id);
    /* all sent so far acknowledged (the gate was open), "ready" probes that came late included */
    CU_ASSERT_TRUE(acked_all(&h, "PUBACK"));
    int acks = mq_test_broker_log_count(&h.br, puback);
    struct log_wait lw = {&h, puback, acks};

    gate_close_and_publish(&h, p, 1, 1);
    if (!durable) {
        /* Control: without durable_ack the PUBACK goes out while the record is not durable yet. */
        lw.target = acks + 1;
        CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 10000));
        CU_ASSERT_TRUE(mq_test_gate_has_waiter(NULL));
        mq_test_gate_set(false);
        pub_free(p);
        h_close(&h);
        return;
    }
    /* Something the broker logs after it delivered the message: still no PUBACK from us. */
    broker_logs_later(&h, p);
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
    assert_exactly_once(&h, NMSG, "1");
    pub_free(p);
    h_close(&h);
}

static void test_durable_ack_v5(void)
{
    run_durable(5, true);
}
static void test_durable_ack_v311(void)
{
    run_durable(4, true);
}
static void test_no_durable_ack_acks_early(void)
{
    run_durable(5, false);
}

/* ---- TLS, user name and password ---- */

static void test_tls_client_cert(void)
{
    char *certs = mq_test_tmpdir("conn-tls");
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
    CU_ASSERT_FATAL(h_open(&h, yaml, 1, NULL));
    void *inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    /* The publisher connects once the connector has: libmosquitto 2.0.11 sets up its TLS state in the
     * first TLS connect of the process without a lock (the mosquitto connector serialises only its own). */
    CU_ASSERT_FATAL(mq_test_wait(connected_once, inst, 10000));
    struct pub *p = pub_new(h.br.port, 5, certs, NULL, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(wait_ready(&h, p, 1));
    const int n = 500;
    CU_ASSERT(pub_stream(p, 0, n, 1));
    CU_ASSERT(h_wait_records(&h, n, 20000));
    CU_ASSERT(h_stats(inst).connected);
    h_stop(&h);
    assert_exactly_once(&h, n, "1");
    pub_free(p);
    h_close(&h);
    mq_test_rmdir(certs);
}

static void test_username_password(void)
{
    char *pw = mq_test_tmpdir("conn-pw");
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
    CU_ASSERT_FATAL(h_open(&h, yaml, 1, NULL));
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

    /* a wrong password: refused (the broker says so in its log), retried, never connected */
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("wrong\n", f);
    fclose(f);
    CU_ASSERT_FATAL(h_broker(&h, extra));
    CU_ASSERT_FATAL(h_open(&h, yaml, 1, NULL));
    inst = h_connector(&h, 0);
    CU_ASSERT_FATAL(inst != NULL);
    CU_ASSERT_FALSE(mq_test_wait(connected_once, inst, 1000));
    /* mosquitto 2.0 does not name the client it refuses ("Client <unknown> disconnected, not
     * authorised."): nothing else connects to this broker, so every such line is one of our attempts. */
    struct log_wait lw = {&h, "disconnected, not authorised", 2};
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 20000)); /* at least two attempts refused */
    CU_ASSERT_EQUAL(h_stats(inst).connects, 0);
    h_close(&h);
    mq_test_rmdir(pw);
}

/* ---- sessions, start-up, create() ---- */

/* sessions: 2 share the subscription ($share/mqlog/t/#): every message is stored once, by one of them. */
static void test_shared_sessions(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, "    protocol: 5\n    sessions: 2\n", 1, NULL));
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
    CU_ASSERT_FATAL(h_open(&h, NULL, 1, NULL));
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

/* create() refuses what cannot work, with a reason; destroy() takes what create() made and NULL. */
static void test_create_errors(void)
{
    const struct mq_connector *c = mq_contract.conn;
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, NULL, 1, NULL));
    struct mq_config_broker b = h.cfg->brokers[0];
    struct mq_connector_ctx ctx = {.broker = &b, .subs = h.subs, .nsubs = h.nsubs, .ingest = h.ingest};
    void *inst = NULL;
    char errstr[256] = "";

    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-password", h.dir);
    b.username = "u";
    b.password_file = missing;
    CU_ASSERT_EQUAL(c->create(&ctx, &inst, errstr, sizeof errstr), MQ_ERR_NOENT);
    CU_ASSERT(strstr(errstr, "no-such-password") != NULL);
    CU_ASSERT_PTR_NULL(inst);

    b.username = NULL;
    b.password_file = NULL;
    b.protocol = 3;
    CU_ASSERT_EQUAL(c->create(&ctx, &inst, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_PTR_NULL(inst);
    b.protocol = 4;
    CU_ASSERT_EQUAL(c->create(&ctx, &inst, errstr, sizeof errstr), MQ_OK);
    c->destroy(inst); /* created, never started */

    c->destroy(NULL);
    CU_ASSERT_STRING_EQUAL(c->name, MQ_CONTRACT_NAME);  /* the name `client:` takes (tests/CMakeLists.txt) */
    CU_ASSERT_PTR_EQUAL(mq_connector_find(c->name), c); /* and the registry finds it under it */
    CU_ASSERT_EQUAL(c->version, MQ_CONNECTOR_VERSION);
    h_close(&h);
}

/* ---- throughput (MQ_CONNECTOR_BENCH=<messages>) ---- */

static double bench_run(int n, bool durable, int sessions, double *pub_rate)
{
    struct h h;
    char yaml[128];
    snprintf(yaml, sizeof yaml, "    protocol: 5\n    durable_ack: %s\n    sessions: %d\n",
             durable ? "true" : "false", sessions);
    double rate = -1;
    if (!h_broker(&h, NULL) || !h_open(&h, yaml, 1, NULL)) {
        h_close(&h);
        return rate;
    }
    bool ok = true;
    for (int s = 0; s < sessions; s++)
        ok &= h_connector(&h, s) != NULL;
    struct pub *p = ok ? pub_new(h.br.port, 5, NULL, NULL, NULL) : NULL;
    if (p && wait_ready(&h, p, 1)) {
        int64_t t0 = mq_mono_us();
        bool sent = pub_stream(p, 0, n, 1);
        int64_t t1 = mq_mono_us();
        if (sent && h_wait_records(&h, n, 600000)) {
            int64_t t2 = mq_mono_us();
            rate = n / ((double)(t2 - t0) / 1e6);
            *pub_rate = n / ((double)(t1 - t0) / 1e6);
        }
    }
    pub_free(p);
    h_close(&h);
    return rate;
}

static void test_bench(void)
{
    const char *e = getenv("MQ_CONNECTOR_BENCH");
    int64_t n = 0;
    if (!e || mq_parse_int64(e, 1, 10000000, &n) != MQ_OK) {
        printf("(skipped: set MQ_CONNECTOR_BENCH=<messages>) ");
        return;
    }
    for (int durable = 0; durable <= 1; durable++)
        for (int sessions = 1; sessions <= 4; sessions += 3) {
            double pub = 0;
            double r = bench_run((int)n, durable, sessions, &pub);
            printf("\nbench %s: QoS 1, %lld msgs of 100 B, durable_ack %s, sessions %d: %.0f msg/s stored "
                   "(publisher acked at %.0f msg/s)",
                   mq_contract.conn->name, (long long)n, durable ? "on " : "off", sessions, r, pub);
        }
    printf("\n");
}

int main(void)
{
    mq_diag_level = getenv("MQ_CONNECTOR_DEBUG") ? MQ_LV_DEBUG : MQ_LV_INFO;
    w_reset();
    if (!mq_contract.lib_init())
        return 2;
    static const struct mq_test contract[] = {
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
        MQ_TEST(test_disk_full_pauses),
        MQ_TEST(test_disk_full_pauses_durable),
        MQ_TEST(test_durable_ack_v5),
        MQ_TEST(test_durable_ack_v311),
        MQ_TEST(test_no_durable_ack_acks_early),
        MQ_TEST(test_tls_client_cert),
        MQ_TEST(test_username_password),
        MQ_TEST(test_shared_sessions),
        MQ_TEST(test_broker_down_at_start),
        MQ_TEST(test_bench),
    };
    /* the contract, then the connector's own tests; MQ_TEST_ONLY=<substring> picks some (debugging) */
    enum { NCONTRACT = sizeof contract / sizeof contract[0], MAXTESTS = NCONTRACT + 32 };
    struct mq_test sel[MAXTESTS + 1];
    const char *only = getenv("MQ_TEST_ONLY");
    size_t k = 0;
    for (size_t i = 0; i < NCONTRACT; i++)
        if (!only || strstr(contract[i].name, only))
            sel[k++] = contract[i];
    for (const struct mq_test *t = mq_contract.tests; t->name && k < MAXTESTS; t++)
        if (!only || strstr(t->name, only))
            sel[k++] = *t;
    sel[k] = (struct mq_test)MQ_TEST_END;
    char suite[64];
    snprintf(suite, sizeof suite, "connector %s", mq_contract.conn->name);
    int rc = mq_test_run(suite, sel);
    mq_contract.lib_fini();
    return rc;
}
