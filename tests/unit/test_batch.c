/*
 * test_batch.c - Kafka RecordBatch v2 encoding and decoding: varints, round trips of awkward records, the
 * header parser and record iterator on truncated, corrupted and random bytes, and byte-for-byte
 * interoperability with kafka-python (the record code its consumers run), via tests/unit/batch_interop.py.
 *
 * Batches under test are copied into heap blocks of exactly their size, so that under ASan any read past
 * the end by the parser or the iterator is reported.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/batch.h"
#include "testutil.h"

/* ---- helpers ---- */

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
    rng_state = seed ? seed : 1;
}

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void rng_fill(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rng();
}

static uint8_t *dup_bytes(const void *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (!d)
        abort();
    if (len)
        memcpy(d, p, len);
    return d;
}

/* Builds one finished batch from recs; returns an exact-size heap copy (caller frees), size in *size. */
static uint8_t *build_batch(const struct mq_record *recs, int n, int64_t base_offset, size_t *size)
{
    struct mq_batch_builder b;
    mq_batch_builder_init(&b);
    mq_batch_reset(&b, base_offset);
    for (int i = 0; i < n; i++) {
        size_t before = b.len, expect = mq_batch_record_size(&b, &recs[i]);
        CU_ASSERT_EQUAL_FATAL(mq_batch_add(&b, &recs[i]), MQ_OK);
        CU_ASSERT_EQUAL(b.len - before, expect);
        CU_ASSERT(mq_record_encoded_size(&recs[i]) >= expect);
    }
    mq_batch_finish(&b);
    uint8_t *copy = dup_bytes(b.buf, b.len);
    *size = b.len;
    mq_batch_builder_free(&b);
    return copy;
}

static bool same_bytes(const void *got, int32_t got_len, const void *want, int32_t want_len)
{
    if (got_len != want_len)
        return false;
    if (want_len < 0)
        return got == NULL;
    return want_len == 0 || memcmp(got, want, (size_t)want_len) == 0;
}

/* Parses, checks the CRC and the header fields, and compares every record and header with recs. */
static void check_batch(const uint8_t *p, size_t size, const struct mq_record *recs, int n,
                        int64_t base_offset)
{
    struct mq_batch_info bi;
    CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(p, size, &bi), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_batch_size(&bi), size);
    CU_ASSERT(mq_batch_crc_ok(p, &bi));
    CU_ASSERT_EQUAL(bi.base_offset, base_offset);
    CU_ASSERT_EQUAL(bi.leader_epoch, 0);
    CU_ASSERT_EQUAL(bi.magic, 2);
    CU_ASSERT_EQUAL(bi.attributes, 0);
    CU_ASSERT_EQUAL(bi.last_offset_delta, n - 1);
    CU_ASSERT_EQUAL(mq_batch_last_offset(&bi), base_offset + n - 1);
    CU_ASSERT_EQUAL(bi.producer_id, -1);
    CU_ASSERT_EQUAL(bi.producer_epoch, -1);
    CU_ASSERT_EQUAL(bi.base_sequence, -1);
    CU_ASSERT_EQUAL(bi.count, n);
    int64_t max_ts = recs[0].timestamp;
    for (int i = 1; i < n; i++)
        if (recs[i].timestamp > max_ts)
            max_ts = recs[i].timestamp;
    CU_ASSERT_EQUAL(bi.base_timestamp, recs[0].timestamp);
    CU_ASSERT_EQUAL(bi.max_timestamp, max_ts);

    struct mq_record_iter it;
    CU_ASSERT_EQUAL_FATAL(mq_record_iter_init(&it, p, &bi), MQ_OK);
    struct mq_record_view rv;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (mq_record_next(&it, &rv) != 1) {
            CU_FAIL("record missing or malformed");
            return;
        }
        const struct mq_record *r = &recs[i];
        if (rv.offset != base_offset + i || rv.timestamp != r->timestamp ||
            !same_bytes(rv.key, rv.key_len, r->key, r->key_len) ||
            !same_bytes(rv.value, rv.value_len, r->value, r->value_len) || rv.header_count != r->header_count)
            bad++;
        const uint8_t *cur = rv.headers;
        struct mq_header h;
        for (int32_t k = 0; k < r->header_count; k++) {
            if (mq_header_next(&cur, rv.headers_end, &h) != 1) {
                bad++;
                break;
            }
            if (!same_bytes(h.key, h.key_len, r->headers[k].key, r->headers[k].key_len) ||
                !same_bytes(h.value, h.value_len, r->headers[k].value, r->headers[k].value_len))
                bad++;
        }
        if (mq_header_next(&cur, rv.headers_end, &h) != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), 0);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), 0); /* stays at the end */
}

static void roundtrip(const struct mq_record *recs, int n)
{
    size_t size;
    uint8_t *p = build_batch(recs, n, 4242, &size);
    check_batch(p, size, recs, n, 4242);
    free(p);
}

/* A record literal without headers (REC) and with them (RECH). */
#define REC(ts, k, kl, v, vl) RECH(ts, k, kl, v, vl, NULL, 0)
#define RECH(ts, k, kl, v, vl, h, hc)                                                                        \
    {                                                                                                        \
        .timestamp = (ts), .key = (k), .key_len = (kl), .value = (v), .value_len = (vl), .headers = (h),     \
        .header_count = (hc)                                                                                 \
    }

/* ---- varints ---- */

/* clang-format off */
static const int64_t varint_values[] = {
    0, -1, 1, 63, -64, 64, -65, 127, 128, -128, 8191, 8192, -8192, -8193, INT32_MIN, INT32_MAX,
    INT64_MIN, INT64_MAX, (int64_t)INT32_MIN - 1, (int64_t)INT32_MAX + 1,
};
/* clang-format on */

/* The byte count computed the slow way, from the zig-zag value. */
static size_t ref_varint_size(int64_t v)
{
    uint64_t u = v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
    size_t n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

static void varint_check(int64_t v, int *bad)
{
    uint8_t buf[16];
    size_t n = mq_varint_put(buf, v);
    if (n != mq_varint_size(v) || n != ref_varint_size(v) || n > 10)
        (*bad)++;
    int64_t got = 0;
    if (mq_varint_get(buf, buf + n, &got) != n || got != v)
        (*bad)++;
    for (size_t cut = 0; cut < n; cut++) /* every truncation */
        if (mq_varint_get(buf, buf + cut, &got) != 0)
            (*bad)++;
}

static void test_varint_values(void)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof(varint_values) / sizeof(varint_values[0]); i++)
        varint_check(varint_values[i], &bad);
    CU_ASSERT_EQUAL(bad, 0);

    /* Known encodings. */
    uint8_t buf[16];
    CU_ASSERT(mq_varint_put(buf, 0) == 1 && buf[0] == 0x00);
    CU_ASSERT(mq_varint_put(buf, -1) == 1 && buf[0] == 0x01);
    CU_ASSERT(mq_varint_put(buf, 1) == 1 && buf[0] == 0x02);
    CU_ASSERT(mq_varint_put(buf, 63) == 1 && buf[0] == 0x7e);
    CU_ASSERT(mq_varint_put(buf, -64) == 1 && buf[0] == 0x7f);
    CU_ASSERT(mq_varint_put(buf, 64) == 2 && buf[0] == 0x80 && buf[1] == 0x01);
    CU_ASSERT(mq_varint_put(buf, -65) == 2 && buf[0] == 0x81 && buf[1] == 0x01);
    CU_ASSERT_EQUAL(mq_varint_put(buf, INT64_MIN), 10);
    CU_ASSERT_EQUAL(buf[9], 0x01);
    CU_ASSERT_EQUAL(mq_varint_size(INT32_MAX), 5);
    CU_ASSERT_EQUAL(mq_varint_size(INT32_MIN), 5);
}

static void test_varint_boundaries(void)
{
    int bad = 0;
    for (int k = 1; k <= 9; k++) {
        /* zig-zag values 2^(7k) - 1 and 2^(7k) are where the size steps from k to k+1 bytes */
        int64_t half = (int64_t)1 << (7 * k - 1);
        int64_t step[] = {half - 1, half, -half, -half - 1};
        for (int i = 0; i < 4; i++) {
            varint_check(step[i], &bad);
            if (mq_varint_size(step[i]) != (size_t)(i == 0 || i == 2 ? k : k + 1))
                bad++;
        }
        if (7 * k < 63) { /* and the plain powers 2^(7k) +- 1 of either sign */
            int64_t pw = (int64_t)1 << (7 * k);
            int64_t more[] = {pw - 1, pw, pw + 1, -pw + 1, -pw, -pw - 1};
            for (int i = 0; i < 6; i++)
                varint_check(more[i], &bad);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_varint_malformed(void)
{
    int64_t v = 12345;
    uint8_t buf[16] = {0};
    CU_ASSERT_EQUAL(mq_varint_get(buf, buf, &v), 0); /* empty */
    memset(buf, 0x80, sizeof(buf));
    buf[10] = 0x00; /* eleven bytes: over-long */
    CU_ASSERT_EQUAL(mq_varint_get(buf, buf + sizeof(buf), &v), 0);
    CU_ASSERT_EQUAL(mq_varint_get(buf, buf + 11, &v), 0);
    memset(buf, 0xff, 9);
    buf[9] = 0x02; /* ten bytes, but bit 64 set: overflows int64 */
    CU_ASSERT_EQUAL(mq_varint_get(buf, buf + sizeof(buf), &v), 0);
    buf[9] = 0x01; /* the largest legal ten-byte varint */
    CU_ASSERT_EQUAL(mq_varint_get(buf, buf + sizeof(buf), &v), 10);
    CU_ASSERT_EQUAL(v, INT64_MIN);
    memset(buf, 0x80, 9);
    buf[9] = 0x00; /* redundant zero continuation bytes are accepted, as Kafka does */
    CU_ASSERT_EQUAL(mq_varint_get(buf, buf + 10, &v), 10);
    CU_ASSERT_EQUAL(v, 0);
}

/* ---- round trips ---- */

static void test_roundtrip_keys_values(void)
{
    struct mq_record recs[] = {
        REC(1000, NULL, -1, "v", 1),      /* null key */
        REC(1001, "k", 1, NULL, -1),      /* null value (a tombstone) */
        REC(1002, "", 0, "", 0),          /* empty key and value */
        REC(1003, NULL, -1, NULL, -1),    /* both null */
        REC(1004, "key", 3, "\0\1\2", 3), /* binary value */
    };
    roundtrip(recs, 5);
    roundtrip(recs + 1, 1); /* a single record */
}

static void test_roundtrip_headers(void)
{
    struct mq_header many[300];
    char names[300][16];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof(names[i]), "h%d", i);
        many[i] = (struct mq_header){names[i], (int32_t)strlen(names[i]), names[i],
                                     i % 3 ? (int32_t)strlen(names[i]) : -1};
    }
    struct mq_header odd[] = {
        {"null-value", 10, NULL, -1}, {"", 0, "empty key", 9}, {"empty-value", 11, "", 0},
        {"dup", 3, "1", 1},           {"dup", 3, "2", 1},
    };
    struct mq_record recs[] = {
        RECH(5, "a", 1, "b", 1, many, 300),
        RECH(6, NULL, -1, "c", 1, odd, 5),
        RECH(7, "d", 1, NULL, -1, odd, 0),
    };
    roundtrip(recs, 3);
}

static void test_roundtrip_timestamps(void)
{
    struct mq_record recs[] = {
        REC(1700000000000, "a", 1, "1", 1),
        REC(1699999999000, "b", 1, "2", 1), /* negative delta */
        REC(1700000005000, "c", 1, "3", 1), /* the max */
        REC(0, "d", 1, "4", 1),             /* far negative delta */
        REC(-1, "e", 1, "5", 1),            /* Kafka's "no timestamp" */
        REC(1700000000000, "f", 1, "6", 1),
    };
    roundtrip(recs, 6);
    struct mq_record extreme[] = {
        REC(INT64_MIN, "a", 1, "1", 1),
        REC(INT64_MAX, "b", 1, "2", 1), /* the delta wraps; it must still read back */
        REC(0, "c", 1, "3", 1),
    };
    roundtrip(extreme, 3);
}

static void test_roundtrip_many_records(void)
{
    enum { N = 10000 };
    struct mq_record *recs = calloc(N, sizeof(*recs));
    char(*keys)[16] = calloc(N, 16);
    uint8_t *values = malloc(100);
    CU_ASSERT_FATAL(recs && keys && values);
    rng_seed(77);
    rng_fill(values, 100);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 16, "key-%d", i);
        recs[i] = (struct mq_record)REC(1700000000000 + (int64_t)(rng() % 100000) - 50000, keys[i],
                                        (int32_t)strlen(keys[i]), values, (int32_t)(i % 101));
    }
    roundtrip(recs, N);
    free(recs);
    free(keys);
    free(values);
}

static void test_roundtrip_large_value(void)
{
    size_t n = 1 << 20;
    uint8_t *v = malloc(n);
    CU_ASSERT_FATAL(v != NULL);
    rng_seed(5);
    rng_fill(v, n);
    struct mq_record recs[] = {
        REC(1, "small", 5, "x", 1),
        REC(2, "big", 3, v, (int32_t)n),
        REC(3, NULL, -1, v, 1000),
    };
    roundtrip(recs, 3);
    free(v);
}

static void test_builder_reuse_and_errors(void)
{
    struct mq_batch_builder b;
    mq_batch_builder_init(&b);
    struct mq_record ok = REC(10, "k", 1, "v", 1);
    /* init alone makes a usable builder (base offset 0) */
    CU_ASSERT_EQUAL(mq_batch_add(&b, &ok), MQ_OK);

    size_t len = b.len;
    struct mq_header nullkey = {NULL, -1, "v", 1};
    struct mq_record bad[] = {
        REC(10, "k", -2, "v", 1),
        REC(10, "k", 1, "v", -5),
        REC(10, NULL, 3, "v", 1), /* a length without bytes */
        RECH(10, NULL, -1, NULL, -1, NULL, 1),
        RECH(10, NULL, -1, NULL, -1, &nullkey, 1),
        RECH(10, NULL, -1, NULL, -1, &nullkey, -1),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(mq_batch_add(&b, &bad[i]), MQ_ERR_INVAL);
    /* A record that would push the batch past MQ_BATCH_MAX_SIZE is refused before its bytes are read. */
    struct mq_record huge = REC(10, NULL, -1, "tiny", MQ_BATCH_MAX_SIZE);
    CU_ASSERT_EQUAL(mq_batch_add(&b, &huge), MQ_ERR_RANGE);
    CU_ASSERT_EQUAL(b.len, len); /* unchanged by the failures */
    CU_ASSERT_EQUAL(b.count, 1);

    /* The largest value that fits exactly still goes in. */
    mq_batch_reset(&b, 0);
    struct mq_record fit = REC(10, NULL, -1, NULL, 0);
    int32_t room =
        MQ_BATCH_MAX_SIZE - MQ_BATCH_HEADER_SIZE - 7; /* 7: fixed record bytes with 1-byte varints */
    fit.value_len = room - 3 - 3; /* value length varint and record length varint grow to 4 bytes each */
    uint8_t *v = calloc(1, (size_t)fit.value_len + 1);
    CU_ASSERT_FATAL(v != NULL);
    fit.value = v;
    fit.value_len++;
    CU_ASSERT_EQUAL(mq_batch_add(&b, &fit), MQ_ERR_RANGE); /* one byte too many */
    CU_ASSERT_EQUAL(b.len, (size_t)MQ_BATCH_HEADER_SIZE);
    fit.value_len--;
    CU_ASSERT_EQUAL(mq_batch_record_size(&b, &fit), (size_t)(MQ_BATCH_MAX_SIZE - MQ_BATCH_HEADER_SIZE));
    CU_ASSERT_EQUAL(mq_batch_add(&b, &fit), MQ_OK);
    CU_ASSERT_EQUAL(b.len, (size_t)MQ_BATCH_MAX_SIZE);
    mq_batch_finish(&b);
    struct mq_batch_info bi;
    CU_ASSERT_EQUAL(mq_batch_parse_header(b.buf, b.len, &bi), MQ_OK);
    CU_ASSERT(mq_batch_crc_ok(b.buf, &bi));
    free(v);

    /* Reset reuses the buffer for the next batch. */
    uint8_t *buf = b.buf;
    mq_batch_reset(&b, 99);
    CU_ASSERT_EQUAL(b.len, MQ_BATCH_HEADER_SIZE);
    CU_ASSERT_EQUAL(mq_batch_add(&b, &ok), MQ_OK);
    CU_ASSERT_EQUAL(mq_batch_add(&b, &ok), MQ_OK);
    CU_ASSERT_PTR_EQUAL(b.buf, buf);
    mq_batch_finish(&b);
    struct mq_record two[] = {ok, ok};
    uint8_t *copy = dup_bytes(b.buf, b.len);
    check_batch(copy, b.len, two, 2, 99);
    free(copy);
    mq_batch_builder_free(&b);
    mq_batch_builder_free(&b); /* twice is harmless */
    mq_batch_builder_free(NULL);
}

/* The header bytes exactly as REFERENCE.md lays them out. */
static void test_header_layout(void)
{
    struct mq_record recs[] = {REC(0x0102030405, "k", 1, "v", 1), REC(0x0102030406, "k", 1, "v", 1)};
    size_t size;
    uint8_t *p = build_batch(recs, 2, 0x1122334455667788, &size);
    /* clang-format off */
    static const uint8_t want[] = {
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* BaseOffset */
        0, 0, 0, 0,                                     /* Length: filled in below */
        0, 0, 0, 0,                                     /* PartitionLeaderEpoch */
        2,                                              /* Magic */
        0, 0, 0, 0,                                     /* CRC: filled in below */
        0, 0,                                           /* Attributes */
        0, 0, 0, 1,                                     /* LastOffsetDelta */
        0, 0, 0, 1, 2, 3, 4, 5,                         /* BaseTimestamp */
        0, 0, 0, 1, 2, 3, 4, 6,                         /* MaxTimestamp */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* ProducerId */
        0xff, 0xff,                                     /* ProducerEpoch */
        0xff, 0xff, 0xff, 0xff,                         /* BaseSequence */
        0, 0, 0, 2,                                     /* RecordsCount */
        /* record 0: length 8, attributes, ts delta 0, offset delta 0, key "k", value "v", no headers */
        0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00,
        /* record 1: ts delta 1, offset delta 1 */
        0x10, 0x00, 0x02, 0x02, 0x02, 'k', 0x02, 'v', 0x00,
    };
    /* clang-format on */
    CU_ASSERT_EQUAL_FATAL(size, sizeof(want));
    uint8_t w[sizeof(want)];
    memcpy(w, want, sizeof(w));
    mq_be32_put(w + 8, (uint32_t)(sizeof(want) - 12));
    mq_be32_put(w + 17, mq_crc32c(0, w + 21, sizeof(w) - 21));
    CU_ASSERT(memcmp(p, w, sizeof(w)) == 0);
    free(p);
}

/* ---- the parser and iterator on bad bytes ---- */

static void test_parse_header_truncated(void)
{
    struct mq_record recs[] = {REC(1, "k", 1, "v", 1)};
    size_t size;
    uint8_t *p = build_batch(recs, 1, 7, &size);
    int bad = 0;
    for (size_t avail = 0; avail <= size; avail++) {
        uint8_t *cut = dup_bytes(p, avail); /* exact-size block: ASan sees any overread */
        struct mq_batch_info bi;
        enum mq_err err = mq_batch_parse_header(cut, avail, &bi);
        if (err != (avail < MQ_BATCH_HEADER_SIZE ? MQ_ERR_RANGE : MQ_OK))
            bad++;
        free(cut);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(p);
}

/* Sets one header field of a valid batch (CRC left stale: the parser does not look at it). */
static enum mq_err parse_with(const uint8_t *p, size_t size, size_t off, int width, int64_t v)
{
    if (size < MQ_BATCH_HEADER_SIZE)
        abort(); /* callers pass whole batches */
    uint8_t *c = dup_bytes(p, size);
    if (width == 1)
        c[off] = (uint8_t)v;
    else if (width == 4)
        mq_be32_put(c + off, (uint32_t)v);
    else
        mq_be64_put(c + off, (uint64_t)v);
    struct mq_batch_info bi;
    enum mq_err err = mq_batch_parse_header(c, size, &bi);
    free(c);
    return err;
}

static void test_parse_header_impossible_fields(void)
{
    struct mq_record recs[] = {REC(1, "k", 1, "v", 1), REC(2, "k", 1, "v", 1), REC(3, "k", 1, "v", 1)};
    size_t size;
    uint8_t *p = build_batch(recs, 3, 7, &size);
    CU_ASSERT_EQUAL(parse_with(p, size, 16, 1, 2), MQ_OK);
    CU_ASSERT_EQUAL(parse_with(p, size, 16, 1, 1), MQ_ERR_CORRUPT); /* magic */
    CU_ASSERT_EQUAL(parse_with(p, size, 16, 1, 3), MQ_ERR_CORRUPT);
    CU_ASSERT_EQUAL(parse_with(p, size, 8, 4, 48), MQ_ERR_CORRUPT); /* Length */
    CU_ASSERT_EQUAL(parse_with(p, size, 8, 4, -1), MQ_ERR_CORRUPT);
    CU_ASSERT_EQUAL(parse_with(p, size, 8, 4, MQ_BATCH_MAX_SIZE + 1), MQ_ERR_CORRUPT);
    CU_ASSERT_EQUAL(parse_with(p, size, 8, 4, MQ_BATCH_MAX_SIZE), MQ_OK); /* bigger than avail is fine */
    CU_ASSERT_EQUAL(parse_with(p, size, 57, 4, -1), MQ_ERR_CORRUPT);      /* RecordsCount */
    CU_ASSERT_EQUAL(parse_with(p, size, 57, 4, 0), MQ_OK);                /* an empty batch */
    CU_ASSERT_EQUAL(parse_with(p, size, 57, 4, 4), MQ_ERR_CORRUPT);       /* > LastOffsetDelta + 1 */
    CU_ASSERT_EQUAL(parse_with(p, size, 23, 4, -1), MQ_ERR_CORRUPT);      /* LastOffsetDelta */
    CU_ASSERT_EQUAL(parse_with(p, size, 23, 4, 1), MQ_ERR_CORRUPT);
    CU_ASSERT_EQUAL(parse_with(p, size, 23, 4, 100), MQ_OK);                   /* gaps: compacted */
    CU_ASSERT_EQUAL(parse_with(p, size, 0, 8, -1), MQ_ERR_CORRUPT);            /* BaseOffset */
    CU_ASSERT_EQUAL(parse_with(p, size, 0, 8, INT64_MAX - 1), MQ_ERR_CORRUPT); /* last offset overflows */
    CU_ASSERT_EQUAL(parse_with(p, size, 0, 8, INT64_MAX - 2), MQ_ERR_CORRUPT); /* last + 1 would */
    CU_ASSERT_EQUAL(parse_with(p, size, 0, 8, INT64_MAX - 3), MQ_OK);
    /* a Length too small for RecordsCount uncompressed records (7 bytes each at least) */
    CU_ASSERT_EQUAL(parse_with(p, size, 8, 4, 49 + 3 * 7 - 1), MQ_ERR_CORRUPT);
    CU_ASSERT_EQUAL(parse_with(p, size, 8, 4, 49 + 3 * 7), MQ_OK);
    free(p);
}

static void test_parse_header_garbage(void)
{
    rng_seed(2024);
    int bad = 0, accepted = 0;
    for (int i = 0; i < 200000; i++) {
        size_t len = MQ_BATCH_HEADER_SIZE + rng() % 64;
        uint8_t *g = malloc(len);
        if (!g)
            abort();
        rng_fill(g, len);
        if (i % 2)
            g[16] = 2; /* half of them get past the magic check */
        struct mq_batch_info bi;
        enum mq_err err = mq_batch_parse_header(g, len, &bi);
        if (err == MQ_OK) {
            accepted++;
            if (bi.magic != 2 || bi.length < 49 || bi.length > MQ_BATCH_MAX_SIZE || bi.count < 0 ||
                bi.last_offset_delta < bi.count - 1 || bi.base_offset < 0)
                bad++;
            if (mq_batch_size(&bi) <= len && mq_batch_crc_ok(g, &bi))
                bad++; /* random bytes with a matching CRC: 2^-32 per try, i.e. a bug */
        } else if (err != MQ_ERR_CORRUPT) {
            bad++;
        }
        free(g);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(accepted > 0); /* the loop did reach the accepting path */
}

/* Whether a reader of a log (recovery, mqlog verify) rejects the bytes p[0..size). */
static bool detected(const uint8_t *p, size_t size)
{
    struct mq_batch_info bi;
    if (mq_batch_parse_header(p, size, &bi) != MQ_OK)
        return true;
    if (mq_batch_size(&bi) > size)
        return true; /* looks partial: recovery truncates it */
    return !mq_batch_crc_ok(p, &bi);
}

static void test_every_byte_flip_detected(void)
{
    struct mq_header hs[] = {{"h", 1, "hv", 2}, {"n", 1, NULL, -1}};
    struct mq_record recs[] = {
        RECH(100, "key", 3, "value", 5, hs, 2),
        REC(90, NULL, -1, "x", 1),
        REC(110, "", 0, NULL, -1),
    };
    size_t size;
    uint8_t *p = build_batch(recs, 3, 1000, &size);
    CU_ASSERT_FATAL(!detected(p, size));
    int missed = 0, unprotected_ok = 0;
    for (size_t i = 0; i < size; i++) {
        /* BaseOffset [0, 8) and PartitionLeaderEpoch [12, 16) are outside Kafka's CRC by design (brokers
         * rewrite them); a store must check offsets against their neighbours instead. */
        bool unprotected = i < 8 || (i >= 12 && i < 16);
        for (int m = 0; m < 9; m++) {
            uint8_t *c = dup_bytes(p, size);
            c[i] ^= m < 8 ? (uint8_t)(1u << m) : 0xff;
            bool d = detected(c, size);
            if (unprotected)
                unprotected_ok += !d || (i == 0 && (m == 7 || m == 8)); /* sign bit: negative offset */
            else if (!d)
                missed++;
            free(c);
        }
    }
    CU_ASSERT_EQUAL(missed, 0);
    CU_ASSERT_EQUAL(unprotected_ok, 12 * 9); /* documents the gap rather than hiding it */
    free(p);
}

/* Walks every record and header of the batch at c; must return without reading outside it. */
static int walk(const uint8_t *c, size_t size)
{
    struct mq_batch_info bi;
    if (mq_batch_parse_header(c, size, &bi) != MQ_OK || mq_batch_size(&bi) > size)
        return -1;
    struct mq_record_iter it;
    if (mq_record_iter_init(&it, c, &bi) != MQ_OK)
        return -1;
    struct mq_record_view rv;
    int rc, n = 0;
    while ((rc = mq_record_next(&it, &rv)) == 1) {
        if (rv.key_len > 0 && (rv.key < c || rv.key + rv.key_len > c + size))
            abort();
        if (rv.value_len > 0 && (rv.value < c || rv.value + rv.value_len > c + size))
            abort();
        const uint8_t *cur = rv.headers;
        struct mq_header h;
        int hn = 0;
        while (mq_header_next(&cur, rv.headers_end, &h) == 1)
            hn++;
        if (hn != rv.header_count || cur != rv.headers_end)
            abort();
        n++;
    }
    return rc < 0 ? -1 : n;
}

static void test_iterator_fuzz(void)
{
    struct mq_header hs[] = {{"h", 1, "hv", 2}, {"n", 1, NULL, -1}, {"", 0, "", 0}};
    struct mq_record recs[] = {
        RECH(100, "key", 3, "value", 5, hs, 3),
        REC(90, NULL, -1, "x", 1),
        REC(110, "", 0, NULL, -1),
        RECH(100, "k2", 2, "v2", 2, hs, 2),
    };
    size_t size;
    uint8_t *p = build_batch(recs, 4, 0, &size);
    CU_ASSERT_EQUAL(walk(p, size), 4);
    rng_seed(31337);
    int ok = 0, rejected = 0;
    for (int i = 0; i < 100000; i++) {
        uint8_t *c;
        size_t len;
        if (i % 3 == 0) { /* a valid batch with a few bytes of its records replaced */
            len = size;
            c = dup_bytes(p, len);
            for (int k = 1 + (int)(rng() % 4); k > 0; k--)
                c[MQ_BATCH_HEADER_SIZE + rng() % (len - MQ_BATCH_HEADER_SIZE)] = (uint8_t)rng();
        } else { /* random records behind a plausible header */
            len = MQ_BATCH_HEADER_SIZE + rng() % 200;
            c = malloc(len);
            if (!c)
                abort();
            rng_fill(c, len);
            memcpy(c, p, MQ_BATCH_HEADER_SIZE);
            mq_be32_put(c + 8, (uint32_t)(len - MQ_BATCH_LOG_OVERHEAD));
            int32_t count = (int32_t)(rng() % 8);
            mq_be32_put(c + 57, (uint32_t)count);
            mq_be32_put(c + 23, (uint32_t)(count + (int32_t)(rng() % 3) - 1));
            if (i % 3 == 2) /* records made of small varints, closer to well-formed */
                for (size_t k = MQ_BATCH_HEADER_SIZE; k < len; k++)
                    c[k] = (uint8_t)(rng() % 16);
        }
        if (walk(c, len) >= 0)
            ok++;
        else
            rejected++;
        free(c);
    }
    CU_ASSERT(rejected > 0);
    CU_ASSERT(ok > 0);
    free(p);
}

static void test_iterator_malformed(void)
{
    /* each record: length, attributes, ts delta, offset delta, 1+3 key, 1+5 value, header count = 15 bytes */
    struct mq_record recs[] = {REC(1, "key", 3, "value", 5), REC(2, "key", 3, "value", 5)};
    size_t size;
    uint8_t *p = build_batch(recs, 2, 0, &size);
    struct mq_batch_info bi;
    struct mq_record_iter it;
    struct mq_record_view rv;

    /* A record whose Length claims one byte more than its fields use. */
    uint8_t *c = dup_bytes(p, size);
    c[MQ_BATCH_HEADER_SIZE] += 2; /* zig-zag: +1 */
    CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(c, size, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_iter_init(&it, c, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), -MQ_ERR_CORRUPT);
    free(c);

    /* RecordsCount one less than stored: bytes are left after the last record. */
    c = dup_bytes(p, size);
    mq_be32_put(c + 57, 1);
    CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(c, size, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_iter_init(&it, c, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), 1);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), -MQ_ERR_CORRUPT);
    free(c);

    /* RecordsCount one more than stored: the iterator runs out of bytes. */
    c = dup_bytes(p, size);
    mq_be32_put(c + 57, 3);
    mq_be32_put(c + 23, 2);
    CU_ASSERT_FATAL(size - 12 >= 49 + 3 * 7); /* Length could hold 3 records */
    CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(c, size, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_iter_init(&it, c, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), 1);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), 1);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), -MQ_ERR_CORRUPT);
    free(c);

    /* An offset delta beyond LastOffsetDelta (the second record's, at 61 + 15 + 3). */
    CU_ASSERT_EQUAL_FATAL(p[MQ_BATCH_HEADER_SIZE + 15 + 3], 2);
    c = dup_bytes(p, size);
    c[MQ_BATCH_HEADER_SIZE + 15 + 3] = 10; /* 5 */
    CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(c, size, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_iter_init(&it, c, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), 1);
    CU_ASSERT_EQUAL(mq_record_next(&it, &rv), -MQ_ERR_CORRUPT);
    free(c);

    /* Compressed batches are not decoded. */
    c = dup_bytes(p, size);
    mq_be16_put(c + 21, 1); /* gzip */
    CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(c, size, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_iter_init(&it, c, &bi), MQ_ERR_INVAL);
    free(c);

    /* LogAppendTime: every record carries the batch's MaxTimestamp. */
    c = dup_bytes(p, size);
    mq_be16_put(c + 21, 0x08);
    mq_be64_put(c + 35, 777);
    CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(c, size, &bi), MQ_OK);
    CU_ASSERT_EQUAL(mq_record_iter_init(&it, c, &bi), MQ_OK);
    CU_ASSERT(mq_record_next(&it, &rv) == 1 && rv.timestamp == 777);
    CU_ASSERT(mq_record_next(&it, &rv) == 1 && rv.timestamp == 777);
    free(c);

    /* A header key length of -1 (null) is malformed. */
    static const uint8_t hdr[] = {0x01, 0x02, 'v'};
    const uint8_t *cur = hdr;
    struct mq_header h;
    CU_ASSERT_EQUAL(mq_header_next(&cur, hdr + sizeof(hdr), &h), -MQ_ERR_CORRUPT);
    static const uint8_t hdr2[] = {0x02, 'k', 0x04, 'v'}; /* value length 2, one byte present */
    cur = hdr2;
    CU_ASSERT_EQUAL(mq_header_next(&cur, hdr2 + sizeof(hdr2), &h), -MQ_ERR_CORRUPT);
    free(p);
}

/* ---- interoperability with kafka-python ---- */

/* The python3 that has kafka-python: $MQ_PYTHON3, else python3 on PATH, else Debian's /usr/bin/python3
 * (python3-kafka installs for the system interpreter; a pyenv or venv python3 on PATH may lack it). */
static const char *kafka_python(void)
{
    static const char *found;
    static char cmd[512];
    if (found)
        return found;
    const char *cands[] = {getenv("MQ_PYTHON3"), "python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        if (!cands[i] || !*cands[i])
            continue;
        snprintf(cmd, sizeof(cmd), "'%s' -c 'import kafka.record.default_records' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0)
            return found = cands[i];
    }
    return NULL;
}

static char *script_path(void)
{
    static char path[4096];
    const char *src = getenv("MQ_SOURCE_DIR");
    if (src && *src) {
        snprintf(path, sizeof(path), "%s/tests/unit/batch_interop.py", src);
    } else { /* run by hand: next to this source file */
        snprintf(path, sizeof(path), "%s", __FILE__);
        char *slash = strrchr(path, '/');
        snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
                 "batch_interop.py");
    }
    return path;
}

/* Runs batch_interop.py with args; its stdout goes to out_path. Returns the exit status. */
static int run_interop(const char *args, const char *out_path)
{
    const char *py = kafka_python();
    if (!py) {
        CU_FAIL("no python3 with the kafka module (Debian package python3-kafka)");
        return -1;
    }
    char cmd[16384];
    snprintf(cmd, sizeof(cmd), "'%s' '%s' %s > '%s'", py, script_path(), args, out_path);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "failed (%d): %s\n", rc, cmd);
    return rc;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 65536 + 1 > cap) {
            cap = (n + 65536 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static bool write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(p, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static void put_field(FILE *f, const void *p, int32_t len)
{
    if (len < 0) {
        fputs(" -", f);
        return;
    }
    fputs(" x", f);
    for (int32_t i = 0; i < len; i++)
        fprintf(f, "%02x", ((const uint8_t *)p)[i]);
}

/* One record in batch_interop.py's line format. */
static void put_record(FILE *f, const struct mq_record *r)
{
    fprintf(f, "%lld", (long long)r->timestamp);
    put_field(f, r->key, r->key_len);
    put_field(f, r->value, r->value_len);
    fprintf(f, " %d", r->header_count);
    for (int32_t k = 0; k < r->header_count; k++) {
        put_field(f, r->headers[k].key, r->headers[k].key_len);
        put_field(f, r->headers[k].value, r->headers[k].value_len);
    }
    fputc('\n', f);
}

/* A mix of what MQTT traffic brings: topic keys, null keys, MQTT 5 user properties as headers, binary
 * payloads, out-of-order timestamps, and lengths that need multi-byte varints. */
struct interop_set {
    struct mq_record recs[10];
    struct mq_header hs[3];
    struct mq_header many[130];
    char names[130][16];
    uint8_t *big;
};

static void interop_set_init(struct interop_set *s)
{
    s->big = malloc(20000);
    if (!s->big)
        abort();
    rng_seed(9);
    rng_fill(s->big, 20000);
    s->hs[0] = (struct mq_header){"mqtt.topic", 10, "sensors/1/temp", 14};
    s->hs[1] = (struct mq_header){"content-type", 12, NULL, -1};
    s->hs[2] = (struct mq_header){"", 0, "", 0};
    for (int i = 0; i < 130; i++) {
        snprintf(s->names[i], sizeof(s->names[i]), "p%d", i);
        s->many[i] =
            (struct mq_header){s->names[i], (int32_t)strlen(s->names[i]), s->big + i, i % 5 ? i : -1};
    }
    struct mq_record r[10] = {
        RECH(1700000000123, "sensors/1/temp", 14, "21.5", 4, s->hs, 3),
        REC(1700000000100, NULL, -1, "no key", 6),
        REC(1700000000200, "k", 1, NULL, -1),
        REC(1700000000200, "", 0, "", 0),
        REC(1699999990000, "old", 3, s->big, 300),
        REC(1700000100000, "big", 3, s->big, 20000),
        RECH(1700000000124, "props", 5, "\0\xff\x80", 3, s->many, 130),
        RECH(1700000000124, NULL, -1, NULL, -1, s->hs + 1, 1),
        REC(0, "zero", 4, "ts", 2),
        REC(1700000000125, "last", 4, "x", 1),
    };
    memcpy(s->recs, r, sizeof(r));
}

static void test_interop_python_builds_same_bytes(void)
{
    struct interop_set s;
    interop_set_init(&s);
    char *dir = mq_test_tmpdir("batch");
    char spec[1024], pyout[1024], args[4096], dump[1024];
    snprintf(spec, sizeof(spec), "%s/spec", dir);
    snprintf(pyout, sizeof(pyout), "%s/py.batch", dir);
    snprintf(dump, sizeof(dump), "%s/stdout", dir);
    for (int n = 1; n <= 10; n += 9) { /* a one-record batch and the whole set */
        FILE *f = fopen(spec, "w");
        CU_ASSERT_FATAL(f != NULL);
        for (int i = 0; i < n; i++)
            put_record(f, &s.recs[i]);
        CU_ASSERT_FATAL(fclose(f) == 0);
        snprintf(args, sizeof(args), "build '%s' '%s'", spec, pyout);
        if (run_interop(args, dump) != 0) {
            CU_FAIL("batch_interop.py build failed");
            break;
        }
        size_t pylen;
        char *py = read_file(pyout, &pylen);
        CU_ASSERT_FATAL(py != NULL);

        /* kafka-python builds producer batches: BaseOffset 0, which is also what ours holds at offset 0. */
        size_t size;
        uint8_t *ours = build_batch(s.recs, n, 0, &size);
        CU_ASSERT_EQUAL(size, pylen);
        CU_ASSERT(size == pylen && memcmp(ours, py, size) == 0);
        if (size == pylen)
            for (size_t i = 0; i < size; i++)
                if (ours[i] != (uint8_t)py[i]) {
                    fprintf(stderr, "n=%d: first difference at byte %zu: ours %02x, kafka-python %02x\n", n,
                            i, ours[i], (uint8_t)py[i]);
                    break;
                }
        free(ours);
        /* At another base offset only the 8 bytes of BaseOffset differ (they are outside the CRC). */
        ours = build_batch(s.recs, n, 123456789, &size);
        CU_ASSERT(size == pylen && memcmp(ours + 8, py + 8, size - 8) == 0 && memcmp(ours, py, 8) != 0);
        free(ours);
        free(py);
    }
    mq_test_rmdir(dir);
    free(s.big);
}

static void test_interop_python_decodes_ours(void)
{
    struct interop_set s;
    interop_set_init(&s);
    char *dir = mq_test_tmpdir("batch");
    char log[1024], args[4096], out[1024];
    snprintf(log, sizeof(log), "%s/00000000000000001000.log", dir);
    snprintf(out, sizeof(out), "%s/stdout", dir);

    /* Two batches back to back, as in a segment file. */
    size_t s1, s2;
    uint8_t *b1 = build_batch(s.recs, 4, 1000, &s1);
    uint8_t *b2 = build_batch(s.recs + 4, 6, 1004, &s2);
    uint8_t *file = malloc(s1 + s2);
    CU_ASSERT_FATAL(file != NULL);
    memcpy(file, b1, s1);
    memcpy(file + s1, b2, s2);
    CU_ASSERT_FATAL(write_file(log, file, s1 + s2));

    /* What kafka-python should print. */
    char *want = NULL;
    size_t want_len = 0;
    FILE *f = open_memstream(&want, &want_len);
    CU_ASSERT_FATAL(f != NULL);
    const uint8_t *bs[] = {b1, b2};
    int counts[] = {4, 6}, first[] = {0, 4};
    for (int k = 0; k < 2; k++) {
        struct mq_batch_info bi;
        CU_ASSERT_FATAL(mq_batch_parse_header(bs[k], k ? s2 : s1, &bi) == MQ_OK);
        int64_t max_ts = INT64_MIN;
        for (int i = 0; i < counts[k]; i++)
            if (s.recs[first[k] + i].timestamp > max_ts)
                max_ts = s.recs[first[k] + i].timestamp;
        fprintf(f,
                "batch base_offset=%lld length=%d epoch=0 magic=2 crc_ok=1 attributes=0 last_offset_delta=%d "
                "first_ts=%lld max_ts=%lld producer_id=-1 producer_epoch=-1 base_sequence=-1 count=%d\n",
                (long long)bi.base_offset, bi.length, counts[k] - 1, (long long)s.recs[first[k]].timestamp,
                (long long)max_ts, counts[k]);
        for (int i = 0; i < counts[k]; i++) {
            fprintf(f, "%d ", 1000 + first[k] + i);
            put_record(f, &s.recs[first[k] + i]);
        }
    }
    CU_ASSERT_FATAL(fclose(f) == 0);

    snprintf(args, sizeof(args), "dump '%s'", log);
    if (run_interop(args, out) == 0) {
        size_t got_len;
        char *got = read_file(out, &got_len);
        CU_ASSERT_FATAL(got != NULL);
        CU_ASSERT_EQUAL(got_len, want_len);
        CU_ASSERT_STRING_EQUAL(got, want);
        free(got);
    } else {
        CU_FAIL("batch_interop.py dump failed");
    }

    /* A corrupted copy must fail kafka-python's CRC check too: the CRC is the same function. */
    file[s1 + 100] ^= 0x10;
    CU_ASSERT_FATAL(write_file(log, file, s1 + s2));
    if (run_interop(args, out) == 0) {
        size_t got_len;
        char *got = read_file(out, &got_len);
        CU_ASSERT_FATAL(got != NULL);
        char *second = strstr(got + 1, "\nbatch ");
        CU_ASSERT(second != NULL && strstr(second, "crc_ok=0") != NULL);
        CU_ASSERT(strstr(got, "crc_ok=1") != NULL && strstr(got, "crc_ok=1") < second);
        free(got);
    }
    free(want);
    free(file);
    free(b1);
    free(b2);
    mq_test_rmdir(dir);
    free(s.big);
}

static void test_interop_varints(void)
{
    char *dir = mq_test_tmpdir("batch");
    char in[1024], out[1024], args[4096];
    snprintf(in, sizeof(in), "%s/in", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    int64_t vals[200];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(varint_values) / sizeof(varint_values[0]); i++)
        vals[n++] = varint_values[i];
    for (int k = 1; k <= 9; k++) {
        int64_t half = (int64_t)1 << (7 * k - 1);
        vals[n++] = half - 1;
        vals[n++] = half;
        vals[n++] = -half;
        vals[n++] = -half - 1;
    }
    FILE *f = fopen(in, "w");
    CU_ASSERT_FATAL(f != NULL);
    char *want = NULL;
    size_t want_len = 0;
    FILE *w = open_memstream(&want, &want_len);
    CU_ASSERT_FATAL(w != NULL);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%lld\n", (long long)vals[i]);
        uint8_t buf[10];
        size_t len = mq_varint_put(buf, vals[i]);
        for (size_t k = 0; k < len; k++)
            fprintf(w, "%02x", buf[k]);
        fputc('\n', w);
    }
    CU_ASSERT_FATAL(fclose(f) == 0);
    CU_ASSERT_FATAL(fclose(w) == 0);
    snprintf(args, sizeof(args), "varints '%s'", in);
    if (run_interop(args, out) == 0) {
        size_t got_len;
        char *got = read_file(out, &got_len);
        CU_ASSERT_FATAL(got != NULL);
        CU_ASSERT_STRING_EQUAL(got, want);
        free(got);
    } else {
        CU_FAIL("batch_interop.py varints failed");
    }
    free(want);
    mq_test_rmdir(dir);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_varint_values),
        MQ_TEST(test_varint_boundaries),
        MQ_TEST(test_varint_malformed),
        MQ_TEST(test_roundtrip_keys_values),
        MQ_TEST(test_roundtrip_headers),
        MQ_TEST(test_roundtrip_timestamps),
        MQ_TEST(test_roundtrip_many_records),
        MQ_TEST(test_roundtrip_large_value),
        MQ_TEST(test_builder_reuse_and_errors),
        MQ_TEST(test_header_layout),
        MQ_TEST(test_parse_header_truncated),
        MQ_TEST(test_parse_header_impossible_fields),
        MQ_TEST(test_parse_header_garbage),
        MQ_TEST(test_every_byte_flip_detected),
        MQ_TEST(test_iterator_fuzz),
        MQ_TEST(test_iterator_malformed),
        MQ_TEST(test_interop_varints),
        MQ_TEST(test_interop_python_builds_same_bytes),
        MQ_TEST(test_interop_python_decodes_ours),
        MQ_TEST_END,
    };
    return mq_test_run("batch", tests);
}
