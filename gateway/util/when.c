/*
 * when.c - offsets and times as people write them: words, offsets, counts back from the end, durations ago,
 * epoch milliseconds and ISO 8601, all resolved to (kind, value) before a store is opened.
 *
 * ISO times are parsed by hand rather than with strptime(3): strptime has no portable directive for a zone
 * offset with a colon or for fractional seconds, and it accepts partial fields silently.
 */
#include "util/when.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/parse.h"

/* Epoch values in [1e9, 1e11) are seconds between 2001 and 5138 or, read as milliseconds, instants in the
 * first three years of 1970: a mistake far more often than a wish. */
#define MQ_SECONDS_LOOKING_MIN 1000000000LL
#define MQ_SECONDS_LOOKING_MAX 100000000000LL

static bool mq_all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Reads exactly n digits at *p into *out and advances *p. */
static bool mq_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int mq_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* ISO 8601 date with optional time and zone. Returns false unless the whole string is one. */
static bool mq_parse_iso(const char *s, int64_t *ms)
{
    const char *p = s;
    int year, month, day, hour = 0, min = 0, sec = 0, frac_ms = 0;
    if (!mq_digits(&p, 4, &year) || *p++ != '-' || !mq_digits(&p, 2, &month) || *p++ != '-' ||
        !mq_digits(&p, 2, &day))
        return false;
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > mq_days_in_month(year, month))
        return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!mq_digits(&p, 2, &hour) || *p++ != ':' || !mq_digits(&p, 2, &min))
            return false;
        if (*p == ':') {
            p++;
            if (!mq_digits(&p, 2, &sec))
                return false;
            if (*p == '.' || *p == ',') {
                p++;
                int scale = 100, ndig = 0;
                for (; isdigit((unsigned char)*p); p++, ndig++) {
                    frac_ms += (*p - '0') * scale;
                    scale /= 10;
                }
                if (ndig == 0)
                    return false;
            }
        }
        if (hour > 23 || min > 59 || sec > 60) /* 60: a leap second, folded into the next minute */
            return false;
    }
    bool zoned = false;
    int zone_s = 0;
    if (*p == 'Z' || *p == 'z') {
        zoned = true;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, zh, zm = 0;
        if (!mq_digits(&p, 2, &zh))
            return false;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p) && !mq_digits(&p, 2, &zm))
            return false;
        if (zh > 23 || zm > 59)
            return false;
        zoned = true;
        zone_s = sign * (zh * 3600 + zm * 60);
    }
    if (*p)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec,
                    .tm_isdst = -1};
    time_t t;
    if (zoned) {
        t = timegm(&tm);
        t -= zone_s;
    } else {
        t = mktime(&tm); /* local time, daylight saving time as the zone rules say for that day */
    }
    if (t == (time_t)-1 || t < 0)
        return false;
    *ms = (int64_t)t * 1000 + frac_ms;
    return true;
}

/* Local midnight days_back days before now_ms. */
static int64_t mq_local_midnight(int64_t now_ms, int days_back)
{
    time_t now = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday -= days_back;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}

bool mq_where_parse(const char *s, bool allow_words, int64_t now_ms, enum mq_where_kind *kind, int64_t *arg,
                    char *err, size_t errlen)
{
    int64_t v;
    if (allow_words && (strcmp(s, "beginning") == 0 || strcmp(s, "earliest") == 0)) {
        *kind = MQ_WHERE_BEGINNING;
        *arg = 0;
        return true;
    }
    if (allow_words && (strcmp(s, "end") == 0 || strcmp(s, "latest") == 0)) {
        *kind = MQ_WHERE_END;
        *arg = 0;
        return true;
    }
    *kind = MQ_WHERE_TIME;
    if (strcmp(s, "now") == 0) {
        *arg = now_ms;
        return true;
    }
    if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0) {
        *arg = mq_local_midnight(now_ms, s[0] == 'y');
        return true;
    }
    if (mq_all_digits(s)) {
        if (mq_parse_int64(s, 0, INT64_MAX, &v) != MQ_OK) {
            snprintf(err, errlen, "'%s': offset out of range", s);
            return false;
        }
        *kind = MQ_WHERE_OFFSET;
        *arg = v;
        return true;
    }
    if (s[0] == '-' && mq_all_digits(s + 1)) {
        if (mq_parse_int64(s + 1, 0, INT64_MAX, &v) != MQ_OK) {
            snprintf(err, errlen, "'%s': count out of range", s);
            return false;
        }
        *kind = MQ_WHERE_BEFORE_END;
        *arg = v;
        return true;
    }
    if (s[0] == '-' && isdigit((unsigned char)s[1])) {
        if (mq_parse_duration_ms(s + 1, &v) != MQ_OK || v > now_ms) {
            snprintf(err, errlen,
                     "'%s': expected -N (records before the end) or a duration ago such as -30m, "
                     "-1h or -2d",
                     s);
            return false;
        }
        *arg = now_ms - v;
        return true;
    }
    if (s[0] == '@') {
        if (!mq_all_digits(s + 1) || mq_parse_int64(s + 1, 0, INT64_MAX, &v) != MQ_OK) {
            snprintf(err, errlen, "'%s': expected @ followed by milliseconds since the epoch", s);
            return false;
        }
        if (v >= MQ_SECONDS_LOOKING_MIN && v < MQ_SECONDS_LOOKING_MAX) {
            snprintf(err, errlen,
                     "'%s' looks like seconds since the epoch: give milliseconds (@%s000) or an ISO time "
                     "such as 2026-12-06T16:12",
                     s, s + 1);
            return false;
        }
        *arg = v;
        return true;
    }
    if (mq_parse_iso(s, &v)) {
        *arg = v;
        return true;
    }
    snprintf(err, errlen,
             "'%s': expected %san offset, -N (records before the end), @EPOCH_MS, an ISO 8601 time such as "
             "'2026-12-06 16:12' or a time ago such as -1h",
             s, allow_words ? "beginning, end, " : "");
    return false;
}
