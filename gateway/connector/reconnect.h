/*
 * reconnect.h - when a connector tries its broker again: the one reconnect policy every connector follows
 * (connector.h promises it in start()), kept here so that it is written and tested once.
 *
 * The policy, and why:
 *  - Exponential backoff with "equal jitter": after the n-th consecutive failure the base delay is
 *    reconnect_min_ms * 2^n, capped at reconnect_max_ms, and the delay is uniformly random in
 *    [base/2, base], never below reconnect_min_ms. So every delay lies in [min, max], the first ones in
 *    [min, 2 min], a broker that stays down is asked at most every max/2 .. max, and gateways that lost the
 *    same broker at the same moment (a broker restart) spread out instead of reconnecting in step.
 *  - A successful CONNACK resets the count; a connection lost after that starts again at the first delay
 *    (a broker restart is usually short).
 *  - A refusal that only an operator can cure (bad user name or password, not authorised, banned, client
 *    identifier rejected, protocol version not supported, bad authentication method) is still retried,
 *    because the operator may fix the broker's side without touching mqlogd, but at once at the cap: trying
 *    again quickly cannot succeed and only fills the broker's log (and may get the client banned).
 *    Everything else (connection refused or reset, timeouts, DNS, TLS, server unavailable or busy, quota
 *    or rate exceeded) is transient and follows the exponential schedule.
 *  - What is logged: a connection that is lost, and every failure whose reason differs from the previous
 *    one's, at warning level; a retry that fails for the same reason again only at debug level. A broker
 *    that stays down (or whose TLS files are gone) is reported once, not at every retry: its metrics
 *    (mqlog_broker_connected) and /readyz say that it is still down.
 */
#ifndef MQ_CONNECTOR_RECONNECT_H
#define MQ_CONNECTOR_RECONNECT_H

#include <stdbool.h>
#include <stdint.h>

/* One connection's reconnect state. Not thread-safe: one thread (or one lock) owns it. */
struct mq_reconnect {
    int64_t min_ms, max_ms;
    int failures;  /* the backoff exponent: consecutive failures, or the cap after a permanent refusal */
    int attempts;  /* consecutive failed or lost connections, for log lines */
    uint64_t rng;  /* xorshift64* state: jitter needs spread, not secrecy */
    char why[256]; /* the reason of the last failure reported since the last connection ("": none) */
};

/* Sets the bounds (broker->reconnect_min_ms, reconnect_max_ms) and seeds the jitter; seed should differ
 * between instances (an address, the session number, the clock). */
void mq_reconnect_init(struct mq_reconnect *r, int64_t min_ms, int64_t max_ms, uint64_t seed);

/* A connection attempt failed or a connection was lost: counts the failure and returns the delay before the
 * next attempt. permanent: the broker refused for a reason only an operator can cure (see above). */
int64_t mq_reconnect_failed(struct mq_reconnect *r, bool permanent);

/* Connected (CONNACK accepted): the next failure starts the schedule again, and is reported again. */
void mq_reconnect_connected(struct mq_reconnect *r);

/* Whether a failure with reason why is news, to be logged at warning level: the first failure since the
 * start or the last connection, and a reason that differs from the last one. False for the same reason
 * again (a retry that changed nothing: log it at debug level). Remembers why (cut to fit). */
bool mq_reconnect_news(struct mq_reconnect *r, const char *why);

/* The delay before attempt number `failures` (>= 1) under the policy above; *rng is the jitter state.
 * mq_reconnect_failed() uses it; exposed for the unit test. */
int64_t mq_reconnect_delay_ms(int64_t min_ms, int64_t max_ms, int failures, uint64_t *rng);

/* Whether a CONNACK refusal is permanent in the sense above. protocol: 4 (MQTT 3.1.1, code the CONNACK
 * return code 1..5) or 5 (code the MQTT 5 reason code, 0x80 and above). */
bool mq_reconnect_refusal_permanent(int protocol, int code);

#endif
