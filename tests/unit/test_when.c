/*
 * test_when.c - mq_where_parse: every accepted form resolved against a fixed clock, in UTC and in a zone two
 * hours east (a POSIX TZ string, so no tzdata is needed), and the refusals with their hints.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "util/when.h"

/* 2026-12-06T16:12:30.250Z */
#define NOW_MS 1796573550250LL

static bool parse(const char *s, bool words, enum mq_where_kind *kind, int64_t *arg, char *err)
{
    return mq_where_parse(s, words, NOW_MS, kind, arg, err, 256);
}

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void expect(const char *s, enum mq_where_kind want_kind, int64_t want_arg)
{
    enum mq_where_kind kind;
    int64_t arg = -12345;
    char err[256] = "";
    bool ok = parse(s, true, &kind, &arg, err);
    if (!ok || kind != want_kind || arg != want_arg)
        fprintf(stderr, "\n  '%s': ok %d kind %d arg %lld (want kind %d arg %lld) %s\n", s, ok, kind,
                (long long)arg, want_kind, (long long)want_arg, err);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(kind, want_kind);
    CU_ASSERT_EQUAL(arg, want_arg);
}

static void refuse(const char *s, bool words, const char *want_in_err)
{
    enum mq_where_kind kind;
    int64_t arg = -7;
    char err[256] = "";
    CU_ASSERT_FALSE(parse(s, words, &kind, &arg, err));
    CU_ASSERT_EQUAL(arg, -7);
    if (!strstr(err, want_in_err))
        fprintf(stderr, "\n  '%s': error '%s' lacks '%s'\n", s, err, want_in_err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want_in_err));
}

static void test_words_offsets_counts(void)
{
    expect("beginning", MQ_WHERE_BEGINNING, 0);
    expect("earliest", MQ_WHERE_BEGINNING, 0);
    expect("end", MQ_WHERE_END, 0);
    expect("latest", MQ_WHERE_END, 0);
    expect("0", MQ_WHERE_OFFSET, 0);
    expect("100", MQ_WHERE_OFFSET, 100);
    expect("-5", MQ_WHERE_BEFORE_END, 5);
    expect("-0", MQ_WHERE_BEFORE_END, 0);
    expect("now", MQ_WHERE_TIME, NOW_MS);
    refuse("beginning", false, "expected an offset");
    refuse("end", false, "expected an offset");
    refuse("99999999999999999999", true, "out of range");
    refuse("", true, "expected beginning, end");
    refuse("+5", true, "expected");
    refuse("5x", true, "expected");
}

static void test_relative(void)
{
    expect("-30s", MQ_WHERE_TIME, NOW_MS - 30000);
    expect("-30m", MQ_WHERE_TIME, NOW_MS - 30 * 60000LL);
    expect("-1h", MQ_WHERE_TIME, NOW_MS - 3600000LL);
    expect("-2d", MQ_WHERE_TIME, NOW_MS - 2 * 86400000LL);
    expect("-1w", MQ_WHERE_TIME, NOW_MS - 7 * 86400000LL);
    expect("-250ms", MQ_WHERE_TIME, NOW_MS - 250);
    refuse("-1y", true, "duration ago");
    refuse("-h", true, "expected");
    refuse("-100000w", true, "duration ago"); /* before 1970 */
}

static void test_epoch_ms(void)
{
    expect("@0", MQ_WHERE_TIME, 0);
    expect("@1796573550250", MQ_WHERE_TIME, 1796573550250LL);
    expect("@999999999", MQ_WHERE_TIME, 999999999LL);       /* 1970-01-12: odd but not seconds-looking */
    expect("@100000000000", MQ_WHERE_TIME, 100000000000LL); /* 1973-03-03 in ms */
    refuse("@1796573550", true, "looks like seconds");
    refuse("@1796573550", true, "@1796573550000");
    refuse("@", true, "milliseconds since the epoch");
    refuse("@-5", true, "milliseconds since the epoch");
    refuse("@12a", true, "milliseconds since the epoch");
}

static void test_iso_zoned(void)
{
    set_tz("UTC0");
    expect("2026-12-06T16:12:30.250Z", MQ_WHERE_TIME, NOW_MS);
    expect("2026-12-06T16:12:30.25Z", MQ_WHERE_TIME, NOW_MS);
    expect("2026-12-06T16:12:30,250Z", MQ_WHERE_TIME, NOW_MS);
    expect("2026-12-06T18:12:30.250+02:00", MQ_WHERE_TIME, NOW_MS);
    expect("2026-12-06T18:12:30.250+0200", MQ_WHERE_TIME, NOW_MS);
    expect("2026-12-06T11:12:30.250-05", MQ_WHERE_TIME, NOW_MS);
    expect("2026-12-06T16:12Z", MQ_WHERE_TIME, NOW_MS - 30250);
    expect("2026-12-06Z", MQ_WHERE_TIME, 1796515200000LL);
    expect("1970-01-01T00:00:00Z", MQ_WHERE_TIME, 0);
    expect("2024-02-29T00:00:00Z", MQ_WHERE_TIME, 1709164800000LL);
}

static void test_iso_local(void)
{
    set_tz("UTC0");
    expect("2026-12-06 16:12", MQ_WHERE_TIME, NOW_MS - 30250);
    expect("2026-12-06T16:12:30.250", MQ_WHERE_TIME, NOW_MS);
    expect("2026-12-06", MQ_WHERE_TIME, 1796515200000LL);
    set_tz("XXX-2"); /* two hours east of UTC, no daylight saving time */
    expect("2026-12-06 18:12", MQ_WHERE_TIME, NOW_MS - 30250);
    expect("2026-12-06T16:12:30.250Z", MQ_WHERE_TIME, NOW_MS); /* a zone given wins over TZ */
    expect("today", MQ_WHERE_TIME, 1796515200000LL - 2 * 3600000LL);
    expect("yesterday", MQ_WHERE_TIME, 1796515200000LL - 2 * 3600000LL - 86400000LL);
    set_tz("UTC0");
    expect("today", MQ_WHERE_TIME, 1796515200000LL);
}

static void test_iso_refused(void)
{
    set_tz("UTC0");
    refuse("2026-13-01", true, "ISO 8601");
    refuse("2026-02-29", true, "ISO 8601"); /* not a leap year */
    refuse("2026-12-32", true, "ISO 8601");
    refuse("2026-12-06T24:00", true, "ISO 8601");
    refuse("2026-12-06T16", true, "ISO 8601");
    refuse("2026-12-06T16:12:30.", true, "ISO 8601");
    refuse("2026-12-06T16:12+25:00", true, "ISO 8601");
    refuse("2026-12-06T16:12Zjunk", true, "ISO 8601");
    refuse("26-12-06", true, "ISO 8601");
    refuse("1969-12-31T23:59:59Z", true, "ISO 8601");
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_words_offsets_counts),
        MQ_TEST(test_relative),
        MQ_TEST(test_epoch_ms),
        MQ_TEST(test_iso_zoned),
        MQ_TEST(test_iso_local),
        MQ_TEST(test_iso_refused),
        MQ_TEST_END,
    };
    return mq_test_run("when", tests);
}
