/*
 * parse.h - strict parsing of numbers, sizes and durations, shared by the configuration and the tool.
 *
 * Every function rejects empty input, trailing garbage, signs where none belong and overflow; none falls
 * back to a default. They return MQ_OK or MQ_ERR_INVAL / MQ_ERR_RANGE and leave *out untouched on error.
 * The clocks (wall and monotonic) and sleeping live here too: there is one copy of each in mqlog.
 */
#ifndef MQ_PARSE_H
#define MQ_PARSE_H

#include <stdint.h>

#include "util/err.h"

/* A decimal integer in [min, max]. */
enum mq_err mq_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* A byte size: "1048576", "512KiB", "256MiB", "1GiB", "2TiB", also "kB/MB/GB" (powers of 1000) and "B". */
enum mq_err mq_parse_size(const char *s, int64_t *out);

/* A duration in milliseconds: "250ms", "30s", "5m", "12h", "7d", "2w"; a bare number is milliseconds. */
enum mq_err mq_parse_duration_ms(const char *s, int64_t *out);

/* Milliseconds since the Unix epoch (wall clock) and on the monotonic clock. */
int64_t mq_now_ms(void);
int64_t mq_mono_ms(void);
int64_t mq_mono_us(void);

/* Sleeps ms milliseconds (resumed after a signal), and the CLOCK_MONOTONIC time ms from now as a timespec,
 * for pthread_cond_timedwait() on a condition variable created with that clock. */
void mq_sleep_ms(int64_t ms);
struct timespec;
void mq_mono_abstime(int64_t ms, struct timespec *ts);

#endif
