/*
 * test_crc32c.c - mq_crc32c against the published CRC-32C check value, the iSCSI test vectors of RFC 3720
 * (B.4), a bit-at-a-time reference written here, incremental use and unaligned buffers.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log/batch.h"
#include "testutil.h"

/* The textbook reflected CRC-32C, one bit at a time: slow, obviously right. */
static uint32_t ref_crc32c(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* Deterministic test bytes (xorshift), so failures reproduce. */
static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void test_check_value(void)
{
    CU_ASSERT_EQUAL(mq_crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(ref_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(mq_crc32c(0, "", 0), 0u);
    CU_ASSERT_EQUAL(mq_crc32c(0x12345678u, "", 0), 0x12345678u); /* empty input leaves the CRC alone */
    CU_ASSERT_EQUAL(mq_crc32c(0, NULL, 0), 0u);
}

static void test_rfc3720_vectors(void)
{
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    CU_ASSERT_EQUAL(mq_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof(buf));
    CU_ASSERT_EQUAL(mq_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    CU_ASSERT_EQUAL(mq_crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    CU_ASSERT_EQUAL(mq_crc32c(0, buf, 32), 0x113FDB5Cu);
}

static void test_incremental(void)
{
    enum { N = 4099 };
    uint8_t *buf = malloc(N);
    CU_ASSERT_FATAL(buf != NULL);
    fill(buf, N, 7);
    uint32_t whole = mq_crc32c(0, buf, N);
    CU_ASSERT_EQUAL(whole, ref_crc32c(buf, N));
    int bad = 0;
    for (size_t cut = 0; cut <= N; cut++)
        if (mq_crc32c(mq_crc32c(0, buf, cut), buf + cut, N - cut) != whole)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* Many small pieces of uneven sizes. */
    uint32_t crc = 0;
    size_t pos = 0;
    for (size_t step = 1; pos < N; step = step * 3 % 97 + 1) {
        size_t n = step < N - pos ? step : N - pos;
        crc = mq_crc32c(crc, buf + pos, n);
        pos += n;
    }
    CU_ASSERT_EQUAL(crc, whole);
    free(buf);
}

static void test_lengths_against_reference(void)
{
    enum { N = 1000 };
    uint8_t *buf = malloc(N);
    CU_ASSERT_FATAL(buf != NULL);
    fill(buf, N, 99);
    int bad = 0;
    for (size_t len = 0; len <= N; len++)
        if (mq_crc32c(0, buf, len) != ref_crc32c(buf, len))
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    free(buf);
}

static void test_unaligned(void)
{
    enum { N = 777, PAD = 16 };
    uint8_t *src = malloc(N);
    uint8_t *buf = malloc(N + PAD);
    CU_ASSERT_FATAL(src != NULL && buf != NULL);
    fill(src, N, 12345);
    uint32_t want = ref_crc32c(src, N);
    int bad = 0;
    for (size_t shift = 0; shift < PAD; shift++) {
        memcpy(buf + shift, src, N);
        if (mq_crc32c(0, buf + shift, N) != want)
            bad++;
        for (size_t len = 1; len < 80; len++) /* short unaligned tails take the byte-wise paths */
            if (mq_crc32c(0, buf + shift, len) != ref_crc32c(src, len))
                bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(src);
    free(buf);
}

/* ISA-L takes an int length: a buffer past INT_MAX must be fed in chunks. A read-only anonymous mapping is
 * all zero pages, so 2 GiB cost address space, not memory. The expected value is built from pieces each
 * well below INT_MAX, cut at other places than the implementation's chunks. */
static void test_longer_than_int_max(void)
{
    size_t len = (size_t)INT_MAX + 4097;
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CU_ASSERT_FATAL(m != MAP_FAILED);
    const uint8_t *z = m;
    size_t third = len / 3 + 11;
    uint32_t want = mq_crc32c(0, z, third);
    want = mq_crc32c(want, z + third, third);
    want = mq_crc32c(want, z + 2 * third, len - 2 * third);
    CU_ASSERT_EQUAL(mq_crc32c(0, z, len), want);
    CU_ASSERT_NOT_EQUAL(want, mq_crc32c(0, z, len - 1));
    CU_ASSERT_EQUAL(munmap(m, len), 0);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_check_value),
        MQ_TEST(test_rfc3720_vectors),
        MQ_TEST(test_incremental),
        MQ_TEST(test_lengths_against_reference),
        MQ_TEST(test_unaligned),
        MQ_TEST(test_longer_than_int_max),
        MQ_TEST_END,
    };
    return mq_test_run("crc32c", tests);
}
