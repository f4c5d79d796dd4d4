/*
 * reconnect.c - the reconnect backoff and the classification of CONNACK refusals (reconnect.h says why the
 * policy is what it is).
 */
#include "connector/reconnect.h"

#include <stdio.h>
#include <string.h>

/* Past this exponent the base is at the cap for any min >= 1 and max < 2^62. */
#define MQ_RECONNECT_MAX_EXP 62

static uint64_t mq_reconnect_rand(uint64_t *rng)
{
    uint64_t x = *rng ? *rng : 0x9E3779B97F4A7C15ULL; /* xorshift64* must not start at 0 */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t mq_reconnect_delay_ms(int64_t min_ms, int64_t max_ms, int failures, uint64_t *rng)
{
    if (min_ms < 1)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    int64_t base = min_ms;
    for (int i = 0; i < failures && base < max_ms; i++)
        base *= 2;
    if (base > max_ms)
        base = max_ms;
    int64_t half = base / 2;
    int64_t d = half + (int64_t)(mq_reconnect_rand(rng) % (uint64_t)(base - half + 1));
    return d < min_ms ? min_ms : d;
}

void mq_reconnect_init(struct mq_reconnect *r, int64_t min_ms, int64_t max_ms, uint64_t seed)
{
    r->min_ms = min_ms;
    r->max_ms = max_ms;
    r->failures = r->attempts = 0;
    r->rng = seed;
    r->why[0] = '\0';
}

int64_t mq_reconnect_failed(struct mq_reconnect *r, bool permanent)
{
    r->attempts++;
    if (permanent)
        r->failures = MQ_RECONNECT_MAX_EXP;
    else if (r->failures < MQ_RECONNECT_MAX_EXP)
        r->failures++;
    return mq_reconnect_delay_ms(r->min_ms, r->max_ms, r->failures, &r->rng);
}

void mq_reconnect_connected(struct mq_reconnect *r)
{
    r->failures = r->attempts = 0;
    r->why[0] = '\0';
}

bool mq_reconnect_news(struct mq_reconnect *r, const char *why)
{
    char now[sizeof r->why];
    snprintf(now, sizeof now, "%s", why && why[0] ? why : "no reason given");
    if (r->why[0] && strcmp(r->why, now) == 0)
        return false;
    memcpy(r->why, now, sizeof now);
    return true;
}

bool mq_reconnect_refusal_permanent(int protocol, int code)
{
    if (protocol != 5) {
        /* MQTT 3.1.1 CONNACK return codes (3.2.2.3): 1 protocol version, 2 identifier rejected, 3 server
         * unavailable, 4 bad user name or password, 5 not authorised */
        return code == 1 || code == 2 || code == 4 || code == 5;
    }
    switch (code) { /* MQTT 5 reason codes (3.2.2.2) */
    case 0x84:      /* unsupported protocol version */
    case 0x85:      /* client identifier not valid */
    case 0x86:      /* bad user name or password */
    case 0x87:      /* not authorized */
    case 0x8A:      /* banned */
    case 0x8C:      /* bad authentication method */
        return true;
    default: /* unspecified, malformed, protocol error, server unavailable or busy, quota, rate, moved... */
        return false;
    }
}
