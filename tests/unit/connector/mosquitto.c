/*
 * mosquitto.c - the libmosquitto connector in the contract tests (contract.c), and what only it does:
 * create() checks the subscription filters and sets up TLS (so both fail early), stop() returns promptly
 * while on_message holds a message the store refuses (libmosquitto can leave it unacknowledged), and a
 * pause longer than the keep-alive costs the connection but no message (libmosquitto sends no PINGREQ
 * while the network thread is held).
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "mosq.h"
#include "util/parse.h"

extern const struct mq_connector mq_connector_mosquitto;

static bool lib_init(void)
{
    /* The test's own clients share the connector's libmosquitto initialisation (mosq.h): a second
     * mosquitto_lib_init() of its own would leak libmosquitto's TLS state. */
    return mq_mosq_lib_ref() == MOSQ_ERR_SUCCESS;
}

static void lib_fini(void)
{
    mq_mosq_lib_unref();
}

/* create() refuses an invalid filter and TLS files it cannot read, with a reason. */
static void test_create_errors_mosquitto(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    CU_ASSERT_FATAL(h_open(&h, NULL, 1, NULL));
    struct mq_config_broker b = h.cfg->brokers[0];
    struct mq_subscription bad = {.filter = "a/#/b", .qos = 1};
    struct mq_connector_ctx ctx = {.broker = &b, .subs = &bad, .nsubs = 1, .ingest = h.ingest};
    void *inst = NULL;
    char errstr[256] = "";
    CU_ASSERT_EQUAL(mq_connector_mosquitto.create(&ctx, &inst, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT(strstr(errstr, "a/#/b") != NULL);
    CU_ASSERT_PTR_NULL(inst);

    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-ca", h.dir);
    ctx.subs = h.subs;
    ctx.nsubs = h.nsubs;
    b.tls = true;
    b.tls_opts.ca = missing;
    CU_ASSERT_NOT_EQUAL(mq_connector_mosquitto.create(&ctx, &inst, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT(strstr(errstr, "TLS") != NULL);
    CU_ASSERT_PTR_NULL(inst);
    h_close(&h);
}

static bool paused(void *inst)
{
    return h_stats(inst).paused_ms > 0;
}

/* stop() while on_message holds a message the store refuses returns promptly. */
static void test_stop_while_paused(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, NULL));
    void *inst;
    struct pub *p = h_start(&h, NULL, 1, 4, &inst);
    atomic_store(&w_full_ms, -1);
    atomic_store(&w_full_after, 0);
    CU_ASSERT(pub_stream(p, 0, 10, 1));
    CU_ASSERT(mq_test_wait(paused, inst, 10000));
    int64_t t0 = mq_mono_ms();
    h_stop(&h);
    CU_ASSERT(mq_mono_ms() - t0 < 2000);
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
    void *inst;
    struct pub *p = h_start(&h, "    protocol: 5\n    clean_session: false\n    keepalive: 5\n", 1, 5, &inst);
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

static const struct mq_test tests[] = {
    MQ_TEST(test_create_errors_mosquitto),
    MQ_TEST(test_stop_while_paused),
    MQ_TEST(test_backpressure_beyond_keepalive),
    MQ_TEST_END,
};

/* libmosquitto answers PUBREC before on_message: durable_ack takes QoS 2 filters at QoS 1 */
static int delivered_qos(int qos, int protocol, bool durable_ack)
{
    (void)protocol;
    return qos == 2 && durable_ack ? 1 : qos;
}

const struct mq_contract mq_contract = {
    .conn = &mq_connector_mosquitto,
    .delivered_qos = delivered_qos,
    .lib_init = lib_init,
    .lib_fini = lib_fini,
    .tests = tests,
};
