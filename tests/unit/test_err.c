/*
 * test_err.c - mq_clause: the strings libraries really return (libmosquitto, Paho, librdkafka, glibc,
 * OpenSSL) become clauses of our one-sentence messages, without a final period or a capital of their own.
 */
#include <string.h>

#include "testutil.h"
#include "util/err.h"

static void expect(const char *foreign, const char *want)
{
    const char *got = MQ_CLAUSE(foreign);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  '%s': got '%s', want '%s'\n", foreign ? foreign : "(null)", got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static void test_library_strings(void)
{
    expect("The connection was lost.", "the connection was lost"); /* mosquitto_strerror */
    expect("A TLS error occurred.", "a TLS error occurred");       /* mosquitto_strerror */
    expect("Connection Refused: not authorised.", "connection Refused: not authorised"); /* connack */
    expect("TCP/TLS connect failure", "TCP/TLS connect failure");                        /* Paho */
    expect("Local: Broker transport failure", "local: broker transport failure"); /* rd_kafka_err2str */
    expect("Invalid value for configuration property \"linger.ms\"",
           "invalid value for configuration property \"linger.ms\""); /* rd_kafka_conf_set */
    expect("No such file or directory", "no such file or directory"); /* strerror */
    expect("database is locked", "database is locked");               /* sqlite3_errmsg */
    expect("OpenSSL failed", "OpenSSL failed");                       /* a name keeps its capitals */
    expect("X509 lookup failed\n", "X509 lookup failed");
}

static void test_sentences_and_edges(void)
{
    expect("First thing. Second thing.", "first thing; second thing");
    expect("version 1.2.3 failed", "version 1.2.3 failed");
    expect("  Padded. \n", "padded");
    expect("two\nlines", "two lines");
    expect("...", "unknown error");
    expect("", "unknown error");
    expect(NULL, "unknown error");
    char small[8];
    CU_ASSERT_STRING_EQUAL(mq_clause("The connection was lost.", small, sizeof small), "the con");
    CU_ASSERT_STRING_EQUAL(mq_clause("x", small, 0), "");
}

static void test_connack(void)
{
    CU_ASSERT_STRING_EQUAL(mq_connack_reason(5), "not authorised");
    CU_ASSERT_STRING_EQUAL(mq_connack_reason(4), "bad user name or password");
    CU_ASSERT_STRING_EQUAL(mq_connack_reason(6), "unknown return code");
    CU_ASSERT_STRING_EQUAL(mq_connack_reason(-1), "unknown return code");
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_library_strings),
        MQ_TEST(test_sentences_and_edges),
        MQ_TEST(test_connack),
        MQ_TEST_END,
    };
    return mq_test_run("err", tests);
}
