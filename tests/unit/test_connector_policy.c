/*
 * test_connector_policy.c - the policy every connector shares (gateway/connector/): the reconnect backoff,
 * the classification of CONNACK refusals and what is logged once (reconnect.h), the TLS file that makes
 * connecting fail (why.h), and holding a message the store refuses until it is stored or durable (hold.h).
 * Tested once here, not per connector.
 *
 * The ingest layer is replaced at link time (-Wl,--wrap=mq_ingest_message and friends, tests/CMakeLists.txt):
 * each wrapper answers what the test scripted, so no store is needed.
 */
#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "connector/hold.h"
#include "connector/reconnect.h"
#include "connector/why.h"
#include "testutil.h"
#include "util/diag.h"

/* ---- the scripted ingest layer ---- */

static enum mq_err w_answers[16]; /* what the next calls answer, in order; then MQ_OK */
static int w_nanswers, w_calls;

static void w_script(int n, const enum mq_err *answers)
{
    if (n > 0)
        memcpy(w_answers, answers, (size_t)n * sizeof *answers);
    w_nanswers = n;
    w_calls = 0;
}

static enum mq_err w_next(void)
{
    int i = w_calls++;
    return i < w_nanswers ? w_answers[i] : MQ_OK;
}

enum mq_err __wrap_mq_ingest_message(struct mq_ingest *in, const char *broker,
                                     const struct mq_source_msg *msg, struct mq_ticket *ticket);
bool __wrap_mq_ingest_durable(struct mq_ingest *in, const struct mq_ticket *ticket);
enum mq_err __wrap_mq_ingest_wait(struct mq_ingest *in, const struct mq_ticket *ticket, int64_t timeout_ms);

enum mq_err __wrap_mq_ingest_message(struct mq_ingest *in, const char *broker,
                                     const struct mq_source_msg *msg, struct mq_ticket *ticket)
{
    (void)in;
    (void)broker;
    (void)msg;
    enum mq_err err = w_next();
    if (err == MQ_OK && ticket)
        ticket->n = 1;
    return err;
}

bool __wrap_mq_ingest_durable(struct mq_ingest *in, const struct mq_ticket *ticket)
{
    (void)in;
    (void)ticket;
    return false;
}

enum mq_err __wrap_mq_ingest_wait(struct mq_ingest *in, const struct mq_ticket *ticket, int64_t timeout_ms)
{
    (void)in;
    (void)ticket;
    (void)timeout_ms;
    return w_next();
}

/* ---- a connector instance as the hold sees it ---- */

struct inst {
    struct mq_connector_counters st;
    bool stopping;
    int sleeps;
    int64_t slept_ms, longest_ms;
};

static bool inst_give_up(void *opaque)
{
    return ((struct inst *)opaque)->stopping;
}

static void inst_sleep(void *opaque, int64_t ms)
{
    struct inst *i = opaque;
    i->sleeps++;
    i->slept_ms += ms;
    if (ms > i->longest_ms)
        i->longest_ms = ms;
}

static struct mq_hold hold_of(struct inst *i)
{
    memset(i, 0, sizeof *i);
    return (struct mq_hold){.ingest = NULL,
                            .broker = "b",
                            .tag = "b/0",
                            .counters = &i->st,
                            .give_up = inst_give_up,
                            .sleep = inst_sleep,
                            .opaque = i};
}

static const struct mq_source_msg msg = {.topic = "t/1", .topic_len = 3, .payload = "x", .payload_len = 1};

/* ---- reconnect ---- */

/* Moved from test_paho.c (test_backoff): doubling from min, capped at max, jittered, never outside them. */
static void test_backoff(void)
{
    uint64_t r = 12345;
    for (int f = 1; f < 40; f++) {
        int64_t lo = 1000000, hi = 0;
        for (int i = 0; i < 2000; i++) {
            int64_t d = mq_reconnect_delay_ms(500, 30000, f, &r);
            CU_ASSERT_TRUE(d >= 500 && d <= 30000);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        int64_t base = f < 7 ? 500LL << f : 30000;
        if (base > 30000)
            base = 30000;
        CU_ASSERT_TRUE(lo >= base / 2 && hi <= base); /* doubling, capped */
        CU_ASSERT_TRUE(hi - lo >= base / 4);          /* and jittered */
    }
    int64_t d = mq_reconnect_delay_ms(100, 100, 5, &r);
    CU_ASSERT_TRUE(d >= 100 && d <= 100);
}

/* The sequence a connection goes through: transient failures grow the delay, a CONNACK resets it, a
 * permanent refusal goes straight to the cap. */
static void test_reconnect_sequence(void)
{
    struct mq_reconnect r;
    mq_reconnect_init(&r, 100, 10000, 0); /* seed 0 must work too */
    int64_t d1 = mq_reconnect_failed(&r, false);
    CU_ASSERT_TRUE(d1 >= 100 && d1 <= 200); /* the first delay: [min, 2 min] */
    int64_t d2 = mq_reconnect_failed(&r, false);
    CU_ASSERT_TRUE(d2 >= 200 && d2 <= 400);
    CU_ASSERT_EQUAL(r.attempts, 2);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_TRUE(mq_reconnect_failed(&r, false) <= 10000); /* no overflow past the cap */
    mq_reconnect_connected(&r);
    CU_ASSERT_EQUAL(r.attempts, 0);
    d1 = mq_reconnect_failed(&r, false);
    CU_ASSERT_TRUE(d1 >= 100 && d1 <= 200); /* a lost connection starts again at the first delay */
    mq_reconnect_connected(&r);
    int64_t dp = mq_reconnect_failed(&r, true);
    CU_ASSERT_TRUE(dp >= 5000 && dp <= 10000); /* bad credentials: at the cap at once */
    CU_ASSERT_EQUAL(r.attempts, 1);
    /* bounds given upside down or as 0 still give a sane delay */
    mq_reconnect_init(&r, 0, 0, 7);
    CU_ASSERT_EQUAL(mq_reconnect_failed(&r, false), 1);
}

/* A failure is news the first time, when its reason changes, and again after a connection; the same reason
 * again is not (it goes to debug level: a broker that stays down is reported once). */
static void test_reconnect_news(void)
{
    struct mq_reconnect r;
    mq_reconnect_init(&r, 100, 1000, 1);
    CU_ASSERT_TRUE(mq_reconnect_news(&r, "Connection refused"));
    CU_ASSERT_FALSE(mq_reconnect_news(&r, "Connection refused"));
    CU_ASSERT_FALSE(mq_reconnect_news(&r, "Connection refused"));
    CU_ASSERT_TRUE(mq_reconnect_news(&r, "tls ca: cannot read /x/ca.pem: No such file or directory"));
    CU_ASSERT_FALSE(mq_reconnect_news(&r, "tls ca: cannot read /x/ca.pem: No such file or directory"));
    mq_reconnect_connected(&r);
    CU_ASSERT_TRUE(mq_reconnect_news(&r, "tls ca: cannot read /x/ca.pem: No such file or directory"));
    CU_ASSERT_TRUE(mq_reconnect_news(&r, NULL)); /* no reason is a reason of its own */
    CU_ASSERT_FALSE(mq_reconnect_news(&r, ""));
    char long_why[1000];
    memset(long_why, 'x', sizeof long_why - 1);
    long_why[sizeof long_why - 1] = '\0';
    CU_ASSERT_TRUE(mq_reconnect_news(&r, long_why));
    CU_ASSERT_FALSE(mq_reconnect_news(&r, long_why)); /* compared as far as it is kept */
    mq_reconnect_init(&r, 100, 1000, 1);
    CU_ASSERT_TRUE(mq_reconnect_news(&r, long_why)); /* init forgets */
}

/* A TLS file that is gone is named, with the setting that names it; a broker without TLS has none. */
static void test_tls_why(void)
{
    struct mq_config_broker b;
    memset(&b, 0, sizeof b);
    b.name = "secure";
    char why[512] = "untouched";
    CU_ASSERT_FALSE(mq_connector_tls_why(&b, why, sizeof why));
    CU_ASSERT_STRING_EQUAL(why, "untouched");
    b.tls = true; /* the system's trust store, no client certificate: nothing to blame */
    CU_ASSERT_FALSE(mq_connector_tls_why(&b, why, sizeof why));
    b.tls_opts.ca = "/nonexistent/mqlog-test/ca.pem";
    CU_ASSERT_TRUE(mq_connector_tls_why(&b, why, sizeof why));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tls ca: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "/nonexistent/mqlog-test/ca.pem"));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(why, "no such file"));
    b.tls_opts.ca = NULL;
    b.tls_opts.cert = "/nonexistent/mqlog-test/client.pem";
    b.tls_opts.key = "/nonexistent/mqlog-test/client.key";
    CU_ASSERT_TRUE(mq_connector_tls_why(&b, why, sizeof why));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tls key: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "client.key"));
}

static void test_refusal_classes(void)
{
    /* MQTT 3.1.1 CONNACK return codes: only "server unavailable" (3) can cure itself */
    CU_ASSERT_TRUE(mq_reconnect_refusal_permanent(4, 1));
    CU_ASSERT_TRUE(mq_reconnect_refusal_permanent(4, 2));
    CU_ASSERT_FALSE(mq_reconnect_refusal_permanent(4, 3));
    CU_ASSERT_TRUE(mq_reconnect_refusal_permanent(4, 4));
    CU_ASSERT_TRUE(mq_reconnect_refusal_permanent(4, 5));
    CU_ASSERT_FALSE(mq_reconnect_refusal_permanent(4, 0));
    CU_ASSERT_FALSE(mq_reconnect_refusal_permanent(4, -1)); /* a library's own error: transient */
    /* MQTT 5 reason codes */
    static const int permanent[] = {0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C};
    static const int transient[] = {0x80, 0x81, 0x82, 0x83, 0x88, 0x89, 0x97, 0x9C, 0x9D, 0x9F};
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++)
        CU_ASSERT_TRUE(mq_reconnect_refusal_permanent(5, permanent[i]));
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        CU_ASSERT_FALSE(mq_reconnect_refusal_permanent(5, transient[i]));
}

/* ---- hold ---- */

static void test_hold_retries_until_stored(void)
{
    struct inst i;
    struct mq_hold h = hold_of(&i);
    enum mq_err full[10];
    for (int k = 0; k < 10; k++)
        full[k] = k == 3 ? MQ_ERR_NOSPC : MQ_ERR_FULL; /* any error the store may recover from */
    w_script(10, full);
    struct mq_ticket t = {.n = 0};
    CU_ASSERT_EQUAL(mq_hold_store(&h, &msg, &t), MQ_OK);
    CU_ASSERT_EQUAL(w_calls, 11);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_EQUAL(i.sleeps, 10);
    CU_ASSERT_EQUAL(i.longest_ms, MQ_HOLD_RETRY_MAX_MS); /* 1, 2, 4, ... capped */
    CU_ASSERT_EQUAL(i.slept_ms, 1 + 2 + 4 + 8 + 16 + 32 + 4 * MQ_HOLD_RETRY_MAX_MS);

    /* stored at once: no sleep, no pause */
    w_script(0, NULL);
    hold_of(&i);
    CU_ASSERT_EQUAL(mq_hold_store(&h, &msg, NULL), MQ_OK);
    CU_ASSERT_EQUAL(i.sleeps, 0);
    CU_ASSERT_EQUAL(i.st.paused_ms, 0);
}

static void test_hold_drops_permanent(void)
{
    static const enum mq_err perm[] = {MQ_ERR_INVAL, MQ_ERR_RANGE, MQ_ERR_CONFIG};
    for (size_t k = 0; k < 3; k++) {
        struct inst i;
        struct mq_hold h = hold_of(&i);
        enum mq_err a[2] = {MQ_ERR_FULL, perm[k]};
        w_script(2, a);
        CU_ASSERT_EQUAL(mq_hold_store(&h, &msg, NULL), perm[k]);
        CU_ASSERT_EQUAL(w_calls, 2);
        CU_ASSERT_TRUE(mq_hold_permanent(perm[k]));
    }
    CU_ASSERT_FALSE(mq_hold_permanent(MQ_ERR_FULL));
    CU_ASSERT_FALSE(mq_hold_permanent(MQ_ERR_NOSPC));
    CU_ASSERT_FALSE(mq_hold_permanent(MQ_ERR_NOMEM));
    CU_ASSERT_FALSE(mq_hold_permanent(MQ_ERR_IO));
}

static void test_hold_gives_up_when_stopping(void)
{
    struct inst i;
    struct mq_hold h = hold_of(&i);
    i.stopping = true;
    enum mq_err a[1] = {MQ_ERR_FULL};
    w_script(1, a);
    CU_ASSERT_EQUAL(mq_hold_store(&h, &msg, NULL), MQ_ERR_FULL);
    CU_ASSERT_EQUAL(w_calls, 1);
    /* without a give_up the hold never gives up; without a sleep it sleeps on the clock */
    h.give_up = NULL;
    h.sleep = NULL;
    enum mq_err b[3] = {MQ_ERR_FULL, MQ_ERR_FULL, MQ_ERR_FULL};
    w_script(3, b);
    CU_ASSERT_EQUAL(mq_hold_store(&h, &msg, NULL), MQ_OK);
    CU_ASSERT_EQUAL(w_calls, 4);
    CU_ASSERT_TRUE(i.st.paused_ms >= 1 + 2); /* slept 1 + 2 + 4 ms, counted as paused */
}

static void test_hold_durable(void)
{
    struct inst i;
    struct mq_hold h = hold_of(&i);
    struct mq_ticket t = {.n = 1};
    /* timeouts are waited through, write errors paused on, then durable */
    enum mq_err a[4] = {MQ_ERR_TIMEDOUT, MQ_ERR_NOSPC, MQ_ERR_NOSPC, MQ_ERR_TIMEDOUT};
    w_script(4, a);
    CU_ASSERT_EQUAL(mq_hold_durable(&h, &t), MQ_OK);
    CU_ASSERT_EQUAL(w_calls, 5);
    CU_ASSERT_EQUAL(i.sleeps, 2); /* only the write errors sleep: a timed-out wait has waited already */
    /* stopping: the wait ends with the store's answer */
    hold_of(&i);
    i.stopping = true;
    enum mq_err b[1] = {MQ_ERR_TIMEDOUT};
    w_script(1, b);
    CU_ASSERT_EQUAL(mq_hold_durable(&h, &t), MQ_ERR_TIMEDOUT);
}

int main(void)
{
    mq_diag_level = MQ_LV_ERROR; /* the hold's warnings are expected here */
    static const struct mq_test tests[] = {
        MQ_TEST(test_backoff),
        MQ_TEST(test_reconnect_sequence),
        MQ_TEST(test_reconnect_news),
        MQ_TEST(test_tls_why),
        MQ_TEST(test_refusal_classes),
        MQ_TEST(test_hold_retries_until_stored),
        MQ_TEST(test_hold_drops_permanent),
        MQ_TEST(test_hold_gives_up_when_stopping),
        MQ_TEST(test_hold_durable),
        MQ_TEST_END,
    };
    return mq_test_run("connector policy", tests);
}
