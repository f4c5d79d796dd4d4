/*
 * paho.c - the Paho connector in the contract tests (contract.c), and what only it does: under MQTT 5 it
 * holds a QoS 2 message's PUBREC until the record is durable (Paho writes PUBREC when the message callback
 * returns), which makes QoS 2 crash-safe; libmosquitto answers PUBREC before it hands the message over.
 *
 * The test publishes with libmosquitto, not with Paho, whose single receive thread the connector under
 * test blocks on purpose.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>

#include "gate.h"
#include "harness.h"
#include "util/parse.h"

extern const struct mq_connector mq_connector_paho;

static bool lib_init(void)
{
    return mosquitto_lib_init() == MOSQ_ERR_SUCCESS;
}

static void lib_fini(void)
{
    mosquitto_lib_cleanup();
}

/* durable_ack, MQTT 5, QoS 2 without the redelivery guard (dedup: off; with it the filter is subscribed at
 * QoS 1): no PUBREC from us while the record cannot become durable. */
static void test_qos2_v5_pubrec_waits_for_fsync(void)
{
    struct h h;
    CU_ASSERT_FATAL(h_broker(&h, "log_type all\n"));
    void *inst;
    struct pub *p = h_start(&h, "    protocol: 5\n    durable_ack: true\n    dedup: off\n", 2, 5, &inst);
    CU_ASSERT_FATAL(pub_stream(p, 0, 1, 2)); /* creates log topic t before the gate closes */
    CU_ASSERT_FATAL(h_wait_records(&h, 1, 20000));

    char pubrec[160];
    snprintf(pubrec, sizeof pubrec, "Received PUBREC from %s ", h.cfg->brokers[0].client_id);
    CU_ASSERT_TRUE(acked_all(&h, "PUBREC")); /* all so far acknowledged: the gate was open */
    int recs = mq_test_broker_log_count(&h.br, pubrec);
    struct log_wait lw = {&h, pubrec, recs};

    gate_close_and_publish(&h, p, 1, 2);
    broker_logs_later(&h, p);
    CU_ASSERT_EQUAL(mq_test_broker_log_count(&h.br, pubrec), recs); /* still no PUBREC */
    mq_test_gate_set(false);
    lw.target = recs + 1;
    CU_ASSERT_TRUE(mq_test_wait(log_reached, &lw, 10000)); /* PUBREC once durable */
    h_stop(&h);
    assert_exactly_once(&h, 2, "2");
    pub_free(p);
    h_close(&h);
}

static const struct mq_test tests[] = {
    MQ_TEST(test_qos2_v5_pubrec_waits_for_fsync),
    MQ_TEST_END,
};

/* durable_ack with the redelivery guard (the harness's sessions are persistent) takes QoS 2 at QoS 1 */
static int delivered_qos(int qos, int protocol, bool durable_ack)
{
    (void)protocol;
    return qos == 2 && durable_ack ? 1 : qos;
}

const struct mq_contract mq_contract = {
    .conn = &mq_connector_paho,
    .delivered_qos = delivered_qos,
    .lib_init = lib_init,
    .lib_fini = lib_fini,
    .tests = tests,
};
