/*
 * test_kafka_wire.c - the Kafka wire codec: byte vectors worked out from the protocol's type definitions,
 * truncation and malformed lengths at every position, and random input (run it under ASan: every read
 * buffer here is allocated to its exact size, so an overread is caught).
 */
#include <stdlib.h>
#include <string.h>

#include "kafka/wire.h"
#include "testutil.h"

/* A heap copy of exactly n bytes, so that ASan sees any read past the end. */
static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    CU_ASSERT_FATAL(b != NULL);
    if (n)
        memcpy(b, p, n);
    return b;
}

static void test_ints(void)
{
    static const uint8_t v[] = {0x7f, 0x12, 0x34, 0xff, 0xff, 0xff, 0xfe, 0x01, 0x02,
                                0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x01};
    uint8_t *b = dup_exact(v, sizeof v);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, sizeof v);
    CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), 127);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0x1234);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), -2);
    CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 0x0102030405060708LL);
    CU_ASSERT_FALSE(mq_kafka_rd_bool(&rd));
    CU_ASSERT_TRUE(mq_kafka_rd_bool(&rd));
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    /* Reading past the end fails, returns 0 and stays failed. */
    CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), 0);
    CU_ASSERT_EQUAL(rd.err, MQ_ERR_PROTOCOL);
    free(b);

    /* A truncated INT32 moves nothing and fails. */
    b = dup_exact(v, 3);
    mq_kafka_rd_init(&rd, b, 3);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 0); /* sticky even though 3 bytes would have held it */
    free(b);

    struct mq_kafka_wr wr;
    mq_kafka_wr_init(&wr);
    mq_kafka_wr_i8(&wr, 127);
    mq_kafka_wr_i16(&wr, 0x1234);
    mq_kafka_wr_i32(&wr, -2);
    mq_kafka_wr_i64(&wr, 0x0102030405060708LL);
    mq_kafka_wr_bool(&wr, false);
    mq_kafka_wr_bool(&wr, true);
    CU_ASSERT_TRUE(mq_kafka_wr_ok(&wr));
    CU_ASSERT_EQUAL(wr.len, sizeof v);
    CU_ASSERT_EQUAL(memcmp(wr.buf, v, sizeof v), 0);
    mq_kafka_wr_free(&wr);
}

struct varcase {
    int64_t value;
    uint8_t bytes[10];
    size_t n;
};

static void test_varints(void)
{
    /* Unsigned varints: 7 bits per byte, low group first, high bit = more follows. */
    static const struct varcase uv[] = {
        {0, {0x00}, 1},         {1, {0x01}, 1},         {127, {0x7f}, 1},
        {128, {0x80, 0x01}, 2}, {300, {0xac, 0x02}, 2}, {4294967295LL, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    };
    for (size_t i = 0; i < sizeof uv / sizeof uv[0]; i++) {
        struct mq_kafka_wr wr;
        mq_kafka_wr_init(&wr);
        mq_kafka_wr_uvarint(&wr, (uint32_t)uv[i].value);
        CU_ASSERT_EQUAL(wr.len, uv[i].n);
        CU_ASSERT_EQUAL(memcmp(wr.buf, uv[i].bytes, uv[i].n), 0);
        uint8_t *b = dup_exact(uv[i].bytes, uv[i].n);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, b, uv[i].n);
        CU_ASSERT_EQUAL(mq_kafka_rd_uvarint(&rd), (uint32_t)uv[i].value);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        /* Every truncation of a multi-byte varint fails. */
        for (size_t cut = 0; cut < uv[i].n; cut++) {
            mq_kafka_rd_init(&rd, b, cut);
            (void)mq_kafka_rd_uvarint(&rd);
            CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
        }
        free(b);
        mq_kafka_wr_free(&wr);
    }

    /* Zig-zag: 0,-1,1,-2,2 ... map to 0,1,2,3,4. */
    static const struct varcase zz[] = {
        {0, {0x00}, 1},
        {-1, {0x01}, 1},
        {1, {0x02}, 1},
        {-2, {0x03}, 1},
        {63, {0x7e}, 1},
        {-64, {0x7f}, 1},
        {64, {0x80, 0x01}, 2},
        {2147483647, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
        {-2147483647LL - 1, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    };
    for (size_t i = 0; i < sizeof zz / sizeof zz[0]; i++) {
        struct mq_kafka_wr wr;
        mq_kafka_wr_init(&wr);
        mq_kafka_wr_varint(&wr, (int32_t)zz[i].value);
        CU_ASSERT_EQUAL(wr.len, zz[i].n);
        CU_ASSERT_EQUAL(memcmp(wr.buf, zz[i].bytes, zz[i].n), 0);
        mq_kafka_wr_reset(&wr);
        mq_kafka_wr_varlong(&wr, zz[i].value);
        CU_ASSERT_EQUAL(wr.len, zz[i].n);
        CU_ASSERT_EQUAL(memcmp(wr.buf, zz[i].bytes, zz[i].n), 0);
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, zz[i].bytes, zz[i].n);
        CU_ASSERT_EQUAL(mq_kafka_rd_varint(&rd), zz[i].value);
        mq_kafka_rd_init(&rd, zz[i].bytes, zz[i].n);
        CU_ASSERT_EQUAL(mq_kafka_rd_varlong(&rd), zz[i].value);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        mq_kafka_wr_free(&wr);
    }

    /* VARLONG extremes take 10 bytes, the last holding one bit. */
    static const uint8_t min64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, min64, sizeof min64);
    CU_ASSERT_EQUAL(mq_kafka_rd_varlong(&rd), INT64_MIN);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));

    /* Too long or carrying bits the type does not have. */
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    mq_kafka_rd_init(&rd, six, sizeof six);
    (void)mq_kafka_rd_uvarint(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t wide32[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    mq_kafka_rd_init(&rd, wide32, sizeof wide32);
    (void)mq_kafka_rd_varint(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t wide64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03};
    mq_kafka_rd_init(&rd, wide64, sizeof wide64);
    (void)mq_kafka_rd_varlong(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    mq_kafka_rd_init(&rd, eleven, sizeof eleven);
    (void)mq_kafka_rd_varlong(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
}

static void test_strings(void)
{
    /* STRING "abc", NULLABLE_STRING null, STRING "", COMPACT_STRING "abc", COMPACT_NULLABLE_STRING null,
     * COMPACT_STRING "", BYTES {1,2}, NULLABLE_BYTES null, COMPACT_BYTES {9}. */
    static const uint8_t v[] = {0x00, 0x03, 'a',  'b',  'c',  0xff, 0xff, 0x00, 0x00,
                                0x04, 'a',  'b',  'c',  0x00, 0x01, 0x00, 0x00, 0x00,
                                0x02, 0x01, 0x02, 0xff, 0xff, 0xff, 0xff, 0x02, 0x09};
    uint8_t *b = dup_exact(v, sizeof v);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, sizeof v);
    struct mq_kafka_str s = mq_kafka_rd_string(&rd);
    CU_ASSERT_TRUE(mq_kafka_str_eq(s, "abc"));
    s = mq_kafka_rd_nstring(&rd);
    CU_ASSERT_EQUAL(s.len, -1);
    CU_ASSERT_PTR_NULL(s.ptr);
    CU_ASSERT_FALSE(mq_kafka_str_eq(s, ""));
    s = mq_kafka_rd_string(&rd);
    CU_ASSERT_TRUE(mq_kafka_str_eq(s, ""));
    s = mq_kafka_rd_cstring(&rd);
    CU_ASSERT_TRUE(mq_kafka_str_eq(s, "abc"));
    s = mq_kafka_rd_cnstring(&rd);
    CU_ASSERT_EQUAL(s.len, -1);
    s = mq_kafka_rd_cstring(&rd);
    CU_ASSERT_EQUAL(s.len, 0);
    s = mq_kafka_rd_bytes(&rd);
    CU_ASSERT_EQUAL(s.len, 2);
    CU_ASSERT_EQUAL(memcmp(s.ptr, "\x01\x02", 2), 0);
    s = mq_kafka_rd_nbytes(&rd);
    CU_ASSERT_EQUAL(s.len, -1);
    s = mq_kafka_rd_cbytes(&rd);
    CU_ASSERT_EQUAL(s.len, 1);
    CU_ASSERT_EQUAL((uint8_t)s.ptr[0], 9);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);

    /* The writer produces the same bytes. */
    struct mq_kafka_wr wr;
    mq_kafka_wr_init(&wr);
    mq_kafka_wr_string(&wr, "abc");
    mq_kafka_wr_string(&wr, NULL);
    mq_kafka_wr_string(&wr, "");
    mq_kafka_wr_cstring(&wr, "abc");
    mq_kafka_wr_cstring(&wr, NULL);
    mq_kafka_wr_cstring(&wr, "");
    mq_kafka_wr_bytes(&wr, "\x01\x02", 2);
    mq_kafka_wr_bytes(&wr, NULL, -1);
    mq_kafka_wr_cbytes(&wr, "\x09", 1);
    CU_ASSERT_TRUE(mq_kafka_wr_ok(&wr));
    CU_ASSERT_EQUAL(wr.len, sizeof v);
    CU_ASSERT_EQUAL(memcmp(wr.buf, v, sizeof v), 0);
    mq_kafka_wr_free(&wr);

    /* Every truncation of the vector fails somewhere and never reads past the cut. */
    for (size_t cut = 0; cut < sizeof v; cut++) {
        uint8_t *c = dup_exact(v, cut);
        mq_kafka_rd_init(&rd, c, cut);
        (void)mq_kafka_rd_string(&rd);
        (void)mq_kafka_rd_nstring(&rd);
        (void)mq_kafka_rd_string(&rd);
        (void)mq_kafka_rd_cstring(&rd);
        (void)mq_kafka_rd_cnstring(&rd);
        (void)mq_kafka_rd_cstring(&rd);
        (void)mq_kafka_rd_bytes(&rd);
        (void)mq_kafka_rd_nbytes(&rd);
        (void)mq_kafka_rd_cbytes(&rd);
        CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_TRUE(rd.p <= rd.end);
        free(c);
    }

    /* A null where the type is not nullable, a negative length, a length past the end. */
    static const uint8_t nul[] = {0xff, 0xff};
    mq_kafka_rd_init(&rd, nul, sizeof nul);
    (void)mq_kafka_rd_string(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t neg[] = {0xff, 0xfe, 'x', 'x'};
    mq_kafka_rd_init(&rd, neg, sizeof neg);
    (void)mq_kafka_rd_nstring(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t past[] = {0x00, 0x05, 'x', 'x'};
    mq_kafka_rd_init(&rd, past, sizeof past);
    (void)mq_kafka_rd_string(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t cnul[] = {0x00};
    mq_kafka_rd_init(&rd, cnul, sizeof cnul);
    (void)mq_kafka_rd_cstring(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t bneg[] = {0x80, 0x00, 0x00, 0x00};
    mq_kafka_rd_init(&rd, bneg, sizeof bneg);
    (void)mq_kafka_rd_nbytes(&rd);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    free(b);

    /* Copies: NUL bytes, overlong and null strings are refused. */
    char dst[4];
    struct mq_kafka_str ok = {"abc", 3}, longer = {"abcd", 4}, nulbyte = {"a\0c", 3}, nullstr = {NULL, -1};
    CU_ASSERT_TRUE(mq_kafka_str_copy(ok, dst, sizeof dst));
    CU_ASSERT_STRING_EQUAL(dst, "abc");
    CU_ASSERT_FALSE(mq_kafka_str_copy(longer, dst, sizeof dst));
    CU_ASSERT_STRING_EQUAL(dst, "");
    CU_ASSERT_FALSE(mq_kafka_str_copy(nulbyte, dst, sizeof dst));
    CU_ASSERT_FALSE(mq_kafka_str_copy(nullstr, dst, sizeof dst));
}

static void test_arrays_and_tags(void)
{
    struct mq_kafka_rd rd;
    /* ARRAY of 2 INT32s; a null ARRAY; COMPACT_ARRAY of 1 INT16; a null COMPACT_ARRAY. */
    static const uint8_t v[] = {0, 0, 0,    2,    0,    0,    0,    7,    0,    0,
                                0, 8, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x05, 0x00};
    mq_kafka_rd_init(&rd, v, sizeof v);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 4, false), 2);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 7);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 8);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 4, true), -1);
    CU_ASSERT_EQUAL(mq_kafka_rd_carray(&rd, 2, false), 1);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), 5);
    CU_ASSERT_EQUAL(mq_kafka_rd_carray(&rd, 2, true), -1);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));

    struct mq_kafka_wr wr;
    mq_kafka_wr_init(&wr);
    mq_kafka_wr_array(&wr, 2);
    mq_kafka_wr_i32(&wr, 7);
    mq_kafka_wr_i32(&wr, 8);
    mq_kafka_wr_array(&wr, -1);
    mq_kafka_wr_carray(&wr, 1);
    mq_kafka_wr_i16(&wr, 5);
    mq_kafka_wr_carray(&wr, -1);
    CU_ASSERT_EQUAL(wr.len, sizeof v);
    CU_ASSERT_EQUAL(memcmp(wr.buf, v, sizeof v), 0);
    mq_kafka_wr_free(&wr);

    /* A count that cannot fit in the bytes left is refused before anyone allocates for it. */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1};
    mq_kafka_rd_init(&rd, huge, sizeof huge);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 0);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    static const uint8_t two[] = {0, 0, 0, 2, 0, 0, 0, 1};
    mq_kafka_rd_init(&rd, two, sizeof two);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 4, false), 0); /* 2 INT32s need 8 bytes, 4 are left */
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
    mq_kafka_rd_init(&rd, v + 12, 4); /* null where not nullable */
    (void)mq_kafka_rd_array(&rd, 1, false);
    CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));

    /* Tagged fields: two fields (tag 0, 1 byte; tag 5, 2 bytes), then an INT8 that must be reachable. */
    static const uint8_t tags[] = {0x02, 0x00, 0x01, 0xaa, 0x05, 0x02, 0xbb, 0xcc, 0x2a};
    mq_kafka_rd_init(&rd, tags, sizeof tags);
    mq_kafka_rd_tags(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_i8(&rd), 0x2a);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    for (size_t cut = 0; cut < sizeof tags - 1; cut++) {
        uint8_t *c = dup_exact(tags, cut);
        mq_kafka_rd_init(&rd, c, cut);
        mq_kafka_rd_tags(&rd);
        CU_ASSERT_FALSE(mq_kafka_rd_ok(&rd));
        free(c);
    }
    /* An empty tag section is one zero byte. */
    mq_kafka_wr_init(&wr);
    mq_kafka_wr_tags(&wr);
    CU_ASSERT_EQUAL(wr.len, 1);
    CU_ASSERT_EQUAL(wr.buf[0], 0);
    size_t pos = mq_kafka_wr_reserve_i32(&wr);
    mq_kafka_wr_i16(&wr, 1);
    mq_kafka_wr_patch_i32(&wr, pos, 0x01020304);
    CU_ASSERT_EQUAL(memcmp(wr.buf + 1, "\x01\x02\x03\x04\x00\x01", 6), 0);
    size_t n;
    uint8_t *taken = mq_kafka_wr_take(&wr, &n);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_PTR_NULL(wr.buf);
    free(taken);
    mq_kafka_wr_free(&wr);
}

static void test_header(void)
{
    /*
     * What librdkafka sends first: ApiVersions (18) v3 with request header v2: key, version, correlation
     * id, client id as an INT16 string, an empty tag section; then the flexible body: two compact strings
     * (software name and version) and an empty tag section.
     */
    static const uint8_t v3[] = {0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 'r', 'd',
                                 'k',  'a',  'f',  'k',  'a',  0x00, 0x0b, 'l',  'i',  'b',  'r', 'd',
                                 'k',  'a',  'f',  'k',  'a',  0x06, '2',  '.',  '0',  '.',  '2', 0x00};
    uint8_t *b = dup_exact(v3, sizeof v3);
    struct mq_kafka_rd rd;
    struct mq_kafka_req_hdr h;
    mq_kafka_rd_init(&rd, b, sizeof v3);
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_parse(&rd, 2, &h), MQ_OK);
    CU_ASSERT_EQUAL(h.api_key, 18);
    CU_ASSERT_EQUAL(h.api_version, 3);
    CU_ASSERT_EQUAL(h.correlation_id, 1);
    CU_ASSERT_TRUE(mq_kafka_str_eq(h.client_id, "rdkafka"));
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_cstring(&rd), "librdkafka"));
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_cstring(&rd), "2.0.2"));
    mq_kafka_rd_tags(&rd);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    /* Peek needs only the first 8 bytes. */
    struct mq_kafka_req_hdr p;
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_peek(b, 8, &p), MQ_OK);
    CU_ASSERT_EQUAL(p.correlation_id, 1);
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_peek(b, 7, &p), MQ_ERR_PROTOCOL);
    free(b);

    /* Header v1 (kafka-python's ApiVersions v0): a null client id is allowed. */
    static const uint8_t v1[] = {0x00, 0x12, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff};
    mq_kafka_rd_init(&rd, v1, sizeof v1);
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_parse(&rd, 1, &h), MQ_OK);
    CU_ASSERT_EQUAL(h.correlation_id, INT32_MAX);
    CU_ASSERT_EQUAL(h.client_id.len, -1);
    mq_kafka_rd_init(&rd, v1, sizeof v1);
    CU_ASSERT_EQUAL(mq_kafka_req_hdr_parse(&rd, 3, &h), MQ_ERR_INVAL);
    /* Truncated headers. */
    for (size_t cut = 0; cut < sizeof v1; cut++) {
        mq_kafka_rd_init(&rd, v1, cut);
        CU_ASSERT_EQUAL(mq_kafka_req_hdr_parse(&rd, 1, &h), MQ_ERR_PROTOCOL);
    }
}

static void test_frame(void)
{
    size_t n = 0;
    static const uint8_t ok[] = {0, 0, 0, 10};
    CU_ASSERT_EQUAL(mq_kafka_frame_size(ok, 3, 100, &n), MQ_ERR_RANGE);
    CU_ASSERT_EQUAL(mq_kafka_frame_size(ok, 4, 100, &n), MQ_OK);
    CU_ASSERT_EQUAL(n, 14);
    CU_ASSERT_EQUAL(mq_kafka_frame_size(ok, 4, 9, &n), MQ_ERR_PROTOCOL); /* above the limit */
    static const uint8_t small[] = {0, 0, 0, 7};
    CU_ASSERT_EQUAL(mq_kafka_frame_size(small, 4, 100, &n), MQ_ERR_PROTOCOL);
    static const uint8_t neg[] = {0x80, 0, 0, 0};
    CU_ASSERT_EQUAL(mq_kafka_frame_size(neg, 4, SIZE_MAX, &n), MQ_ERR_PROTOCOL);
}

/* Random bytes read through random sequences of every reader function must never crash or overread. */
static void test_random_input(void)
{
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rand_r(&seed) % 64);
        uint8_t *b = malloc(len ? len : 1);
        CU_ASSERT_FATAL(b != NULL);
        for (size_t i = 0; i < len; i++) {
            /* Bias towards bytes that make lengths small or special. */
            int r = rand_r(&seed) % 8;
            b[i] = r == 0   ? 0xff
                   : r == 1 ? 0x00
                   : r == 2 ? (uint8_t)(rand_r(&seed) % 8)
                            : (uint8_t)rand_r(&seed);
        }
        struct mq_kafka_rd rd;
        mq_kafka_rd_init(&rd, b, len);
        for (int op = 0; op < 16; op++) {
            switch (rand_r(&seed) % 18) {
            case 0:
                (void)mq_kafka_rd_i8(&rd);
                break;
            case 1:
                (void)mq_kafka_rd_i16(&rd);
                break;
            case 2:
                (void)mq_kafka_rd_i32(&rd);
                break;
            case 3:
                (void)mq_kafka_rd_i64(&rd);
                break;
            case 4:
                (void)mq_kafka_rd_uvarint(&rd);
                break;
            case 5:
                (void)mq_kafka_rd_varint(&rd);
                break;
            case 6:
                (void)mq_kafka_rd_varlong(&rd);
                break;
            case 7:
                (void)mq_kafka_rd_string(&rd);
                break;
            case 8:
                (void)mq_kafka_rd_nstring(&rd);
                break;
            case 9:
                (void)mq_kafka_rd_cstring(&rd);
                break;
            case 10:
                (void)mq_kafka_rd_cnstring(&rd);
                break;
            case 11:
                (void)mq_kafka_rd_bytes(&rd);
                break;
            case 12:
                (void)mq_kafka_rd_nbytes(&rd);
                break;
            case 13:
                (void)mq_kafka_rd_cnbytes(&rd);
                break;
            case 14:
                (void)mq_kafka_rd_array(&rd, 4, true);
                break;
            case 15:
                (void)mq_kafka_rd_carray(&rd, 1, true);
                break;
            case 16:
                mq_kafka_rd_tags(&rd);
                break;
            default: {
                struct mq_kafka_req_hdr h;
                (void)mq_kafka_req_hdr_parse(&rd, rand_r(&seed) % 3, &h);
            }
            }
            CU_ASSERT_TRUE_FATAL(rd.p >= b && rd.p <= rd.end);
        }
        /* Any string the reader hands out lies inside the buffer. */
        mq_kafka_rd_init(&rd, b, len);
        struct mq_kafka_str s = mq_kafka_rd_cnstring(&rd);
        if (s.len > 0)
            CU_ASSERT_TRUE((const uint8_t *)s.ptr >= b && (const uint8_t *)s.ptr + s.len <= b + len);
        free(b);
    }
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_ints),         MQ_TEST(test_varints),
        MQ_TEST(test_strings),      MQ_TEST(test_arrays_and_tags),
        MQ_TEST(test_header),       MQ_TEST(test_frame),
        MQ_TEST(test_random_input), MQ_TEST_END,
    };
    return mq_test_run("kafka_wire", tests);
}
