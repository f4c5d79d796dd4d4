/*
 * test_kafka_downconv.c - stored batches as message sets of format v0 and v1 for Fetch v0-3: the exact bytes
 * of a message, CRCs checked with a bitwise CRC-32 written here (not the library the code uses), the start
 * inside a batch, null keys, dropped headers, LogAppendTime, and control, compressed and cut batches.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka/downconv.h"
#include "log/batch.h"
#include "log_test.h"
#include "testutil.h"

/* CRC-32 (IEEE 802.3, reflected, as java.util.zip.CRC32 and zlib), bit by bit. */
static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Two batches: offsets 10-12 (timestamps 1000-1002, record 11 with a null key, every record with a header)
 * and 13-14. */
static uint8_t *two_batches(size_t *len)
{
    static const struct mq_header h = {"h", 1, "hv", 2};
    struct mq_batch_builder b;
    mq_batch_builder_init(&b);
    uint8_t *out = NULL;
    size_t n = 0;
    for (int batch = 0; batch < 2; batch++) {
        int64_t base = batch == 0 ? 10 : 13;
        mq_batch_reset(&b, base);
        for (int i = 0; i < (batch == 0 ? 3 : 2); i++) {
            static char keys[5][16], vals[5][24];
            int o = (int)(base - 10) + i;
            snprintf(keys[o], sizeof keys[o], "k%d", o);
            snprintf(vals[o], sizeof vals[o], "value%d", o);
            struct mq_record r = {1000 + o, keys[o], o == 1 ? -1 : 2, vals[o], 6, &h, 1};
            CU_ASSERT_EQUAL_FATAL(mq_batch_add(&b, &r), MQ_OK);
        }
        mq_batch_finish(&b);
        out = realloc(out, n + b.len);
        CU_ASSERT_FATAL(out != NULL);
        memcpy(out + n, b.buf, b.len);
        n += b.len;
    }
    mq_batch_builder_free(&b);
    *len = n;
    return out;
}

/* Walks a message set; fills offsets[] and checks every CRC and magic; returns the count. */
static int walk(const struct mq_kafka_msgs *m, int8_t magic, int64_t *offsets, int max)
{
    size_t pos = 0;
    int n = 0;
    while (pos < m->len && n < max) {
        CU_ASSERT_FATAL(m->len - pos >= 12);
        int64_t off = be64(m->p + pos);
        uint32_t size = be32(m->p + pos + 8);
        CU_ASSERT_FATAL(pos + 12 + size <= m->len);
        const uint8_t *msg = m->p + pos + 12;
        CU_ASSERT_EQUAL(be32(msg), crc32_ref(msg + 4, size - 4));
        CU_ASSERT_EQUAL(msg[4], magic);
        offsets[n++] = off;
        pos += 12 + size;
    }
    CU_ASSERT_EQUAL(pos, m->len);
    return n;
}

static void test_crc_reference(void)
{
    CU_ASSERT_EQUAL(crc32_ref((const uint8_t *)"123456789", 9), 0xcbf43926u);
}

static void test_magic1_exact(void)
{
    size_t len;
    uint8_t *buf = two_batches(&len);
    struct mq_kafka_msgs m = {0};
    CU_ASSERT_EQUAL(mq_kafka_downconvert(buf, len, 12, 1, &m), MQ_OK);
    int64_t offs[8];
    CU_ASSERT_EQUAL(walk(&m, 1, offs, 8), 3);
    CU_ASSERT_EQUAL(offs[0], 12);
    CU_ASSERT_EQUAL(offs[1], 13);
    CU_ASSERT_EQUAL(offs[2], 14);
    /* Offset 12, byte by byte: crc, magic 1, attributes 0, timestamp, key "k2", value "value2"; no header. */
    const uint8_t *p = m.p;
    CU_ASSERT_EQUAL(be64(p), 12);
    CU_ASSERT_EQUAL(be32(p + 8), 4 + 1 + 1 + 8 + 4 + 2 + 4 + 6);
    CU_ASSERT_EQUAL(p[16], 1);
    CU_ASSERT_EQUAL(p[17], 0);
    CU_ASSERT_EQUAL(be64(p + 18), 1002);
    CU_ASSERT_EQUAL(be32(p + 26), 2);
    CU_ASSERT_EQUAL(memcmp(p + 30, "k2", 2), 0);
    CU_ASSERT_EQUAL(be32(p + 32), 6);
    CU_ASSERT_EQUAL(memcmp(p + 36, "value2", 6), 0);
    free(m.p);
    free(buf);
}

static void test_magic0_all(void)
{
    size_t len;
    uint8_t *buf = two_batches(&len);
    struct mq_kafka_msgs m = {0};
    CU_ASSERT_EQUAL(mq_kafka_downconvert(buf, len, 0, 0, &m), MQ_OK);
    int64_t offs[8];
    CU_ASSERT_EQUAL(walk(&m, 0, offs, 8), 5);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(offs[i], 10 + i);
    /* The second message (offset 11) has a null key and no timestamp. */
    const uint8_t *p = m.p + 12 + be32(m.p + 8);
    CU_ASSERT_EQUAL(be64(p), 11);
    CU_ASSERT_EQUAL(be32(p + 8), 4 + 1 + 1 + 4 + 4 + 6);
    CU_ASSERT_EQUAL(be32(p + 18), 0xffffffffu);
    CU_ASSERT_EQUAL(be32(p + 22), 6);
    free(m.p);

    /* Past the end: nothing. */
    m = (struct mq_kafka_msgs){0};
    CU_ASSERT_EQUAL(mq_kafka_downconvert(buf, len, 15, 0, &m), MQ_OK);
    CU_ASSERT_EQUAL(m.len, 0);
    free(m.p);
    free(buf);
}

static void test_attributes(void)
{
    size_t len;
    uint8_t *buf = two_batches(&len);
    size_t first = MQ_BATCH_LOG_OVERHEAD + be32(buf + 8);
    struct mq_kafka_msgs m = {0};
    int64_t offs[8];

    /* LogAppendTime: every message of the batch gets its MaxTimestamp and the timestamp-type bit. */
    buf[22] |= MQ_BATCH_ATTR_LOG_APPEND_TIME;
    CU_ASSERT_EQUAL(mq_kafka_downconvert(buf, first, 0, 1, &m), MQ_OK);
    CU_ASSERT_EQUAL(walk(&m, 1, offs, 8), 3);
    CU_ASSERT_EQUAL(m.p[17], 0x08);
    CU_ASSERT_EQUAL(be64(m.p + 18), 1002);
    free(m.p);
    buf[22] &= (uint8_t)~MQ_BATCH_ATTR_LOG_APPEND_TIME;

    /* A control batch carries no data: skipped. */
    m = (struct mq_kafka_msgs){0};
    buf[22] |= MQ_BATCH_ATTR_CONTROL;
    CU_ASSERT_EQUAL(mq_kafka_downconvert(buf, len, 0, 1, &m), MQ_OK);
    CU_ASSERT_EQUAL(walk(&m, 1, offs, 8), 2);
    CU_ASSERT_EQUAL(offs[0], 13);
    free(m.p);
    buf[22] &= (uint8_t)~MQ_BATCH_ATTR_CONTROL;

    /* A zstd batch is refused (Kafka's answer below Fetch v10); what came before it stays. */
    m = (struct mq_kafka_msgs){0};
    buf[first + 22] |= MQ_CODEC_ZSTD;
    CU_ASSERT_EQUAL(mq_kafka_downconvert(buf, len, 0, 1, &m), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(walk(&m, 1, offs, 8), 3);
    free(m.p);
    buf[first + 22] &= (uint8_t)~0x07;

    /* A cut batch is not a slice of the log. */
    m = (struct mq_kafka_msgs){0};
    CU_ASSERT_EQUAL(mq_kafka_downconvert(buf, len - 1, 0, 1, &m), MQ_ERR_CORRUPT);
    CU_ASSERT_EQUAL(walk(&m, 1, offs, 8), 3);
    free(m.p);
    free(buf);
}

/* lz4 and gzip batches convert to exactly the messages their uncompressed originals give; a frame that does
 * not decompress is damage. */
static void test_compressed(void)
{
    size_t len;
    uint8_t *plain = two_batches(&len);
    struct mq_kafka_msgs want = {0};
    CU_ASSERT_EQUAL_FATAL(mq_kafka_downconvert(plain, len, 11, 1, &want), MQ_OK);
    const int codecs[] = {MQ_CODEC_LZ4, MQ_CODEC_GZIP};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        /* each batch of plain, compressed on its own */
        struct mq_codec_buf z = {0};
        for (size_t pos = 0; pos < len;) {
            struct mq_batch_info bi;
            CU_ASSERT_FATAL(mq_batch_parse_header(plain + pos, len - pos, &bi) == MQ_OK);
            struct mq_batch_builder b;
            mq_batch_builder_init(&b);
            b.buf = malloc(mq_batch_size(&bi));
            CU_ASSERT_FATAL(b.buf != NULL);
            memcpy(b.buf, plain + pos, mq_batch_size(&bi));
            b.len = b.cap = mq_batch_size(&bi);
            compress_built(&b, codecs[c]);
            CU_ASSERT_FATAL(mq_codec_buf_reserve(&z, b.len) == MQ_OK);
            memcpy(z.p + z.len, b.buf, b.len);
            z.len += b.len;
            mq_batch_builder_free(&b);
            pos += mq_batch_size(&bi);
        }
        struct mq_kafka_msgs m = {0};
        CU_ASSERT_EQUAL(mq_kafka_downconvert(z.p, z.len, 11, 1, &m), MQ_OK);
        CU_ASSERT(m.len == want.len && memcmp(m.p, want.p, want.len) == 0);
        free(m.p);
        /* the first batch's frame cut short inside (its Length and CRC made to agree) */
        struct mq_batch_info bi;
        CU_ASSERT_FATAL(mq_batch_parse_header(z.p, z.len, &bi) == MQ_OK);
        uint8_t *cut = malloc(mq_batch_size(&bi));
        CU_ASSERT_FATAL(cut != NULL);
        size_t clen = mq_batch_size(&bi) - 3;
        memcpy(cut, z.p, clen);
        mq_be32_put(cut + 8, (uint32_t)(clen - MQ_BATCH_LOG_OVERHEAD));
        mq_be32_put(cut + 17, mq_crc32c(0, cut + MQ_BATCH_CRC_START, clen - MQ_BATCH_CRC_START));
        m = (struct mq_kafka_msgs){0};
        CU_ASSERT_EQUAL(mq_kafka_downconvert(cut, clen, 0, 1, &m), MQ_ERR_CORRUPT);
        free(m.p);
        free(cut);
        mq_codec_buf_free(&z);
    }
    free(want.p);
    free(plain);
}

static void test_fetch_magic(void)
{
    CU_ASSERT_EQUAL(mq_kafka_fetch_magic(0), 0);
    CU_ASSERT_EQUAL(mq_kafka_fetch_magic(1), 0);
    CU_ASSERT_EQUAL(mq_kafka_fetch_magic(2), 1);
    CU_ASSERT_EQUAL(mq_kafka_fetch_magic(3), 1);
    CU_ASSERT_EQUAL(mq_kafka_fetch_magic(4), -1);
    CU_ASSERT_EQUAL(mq_kafka_fetch_magic(11), -1);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_crc_reference),
        MQ_TEST(test_magic1_exact),
        MQ_TEST(test_magic0_all),
        MQ_TEST(test_attributes),
        MQ_TEST(test_compressed),
        MQ_TEST(test_fetch_magic),
        MQ_TEST_END,
    };
    return mq_test_run("kafka_downconv", tests);
}
