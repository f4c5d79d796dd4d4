/*
 * parse.c - number, size and duration parsing with strtoll and an end-pointer check, and the clocks.
 */
#include "util/parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum mq_err mq_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return MQ_ERR_INVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return MQ_ERR_INVAL;
    if (errno == ERANGE || v < min || v > max)
        return MQ_ERR_RANGE;
    *out = v;
    return MQ_OK;
}

/* Splits "<digits><unit>" and multiplies; the unit is looked up in the table given. */
struct mq_unit {
    const char *name;
    int64_t factor;
};

static enum mq_err mq_parse_scaled(const char *s, const struct mq_unit *units, int64_t bare, int64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return MQ_ERR_INVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s)
        return MQ_ERR_INVAL;
    if (errno == ERANGE)
        return MQ_ERR_RANGE;
    int64_t factor = 0;
    if (*end == '\0') {
        factor = bare;
    } else {
        for (const struct mq_unit *u = units; u->name; u++)
            if (strcmp(end, u->name) == 0) {
                factor = u->factor;
                break;
            }
        if (!factor)
            return MQ_ERR_INVAL;
    }
    if (v > INT64_MAX / factor)
        return MQ_ERR_RANGE;
    *out = (int64_t)v * factor;
    return MQ_OK;
}

enum mq_err mq_parse_size(const char *s, int64_t *out)
{
    static const struct mq_unit units[] = {
        {"B", 1},
        {"KiB", 1024},
        {"MiB", 1024LL * 1024},
        {"GiB", 1024LL * 1024 * 1024},
        {"TiB", 1024LL * 1024 * 1024 * 1024},
        {"kB", 1000},
        {"KB", 1000},
        {"MB", 1000LL * 1000},
        {"GB", 1000LL * 1000 * 1000},
        {"TB", 1000LL * 1000 * 1000 * 1000},
        {NULL, 0},
    };
    return mq_parse_scaled(s, units, 1, out);
}

enum mq_err mq_parse_duration_ms(const char *s, int64_t *out)
{
    static const struct mq_unit units[] = {
        {"ms", 1},
        {"s", 1000},
        {"m", 60LL * 1000},
        {"min", 60LL * 1000},
        {"h", 3600LL * 1000},
        {"d", 86400LL * 1000},
        {"w", 7 * 86400LL * 1000},
        {NULL, 0},
    };
    return mq_parse_scaled(s, units, 1, out);
}

int64_t mq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mq_mono_ms(void)
{
    return mq_mono_us() / 1000;
}

int64_t mq_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void mq_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void mq_mono_abstime(int64_t ms, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = (int64_t)ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}
