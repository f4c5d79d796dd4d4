/*
 * gate.h - the fdatasync gate of the durability tests: a test links the store statically, so the store's
 * flusher calls the fdatasync() of gate.c, which blocks while the test holds the gate closed. With the gate
 * closed no record can become durable, and a connector with durable acknowledgement must not acknowledge;
 * the broker's log (log_type all, mq_test_broker_log_count) shows whether it did.
 *
 * gate.c is linked into a test only when the test calls one of these functions (static library), so other
 * tests keep libc's fdatasync.
 */
#ifndef MQ_TEST_GATE_H
#define MQ_TEST_GATE_H

#include <stdbool.h>

/* Closes (true) or opens the gate; opening releases every blocked fdatasync. */
void mq_test_gate_set(bool closed);
/* True while some fdatasync is blocked at the gate (an mq_test_wait condition; opaque unused). */
bool mq_test_gate_has_waiter(void *opaque);

#endif
