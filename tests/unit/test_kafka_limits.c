/*
 * test_kafka_limits.c - the Kafka endpoint's limits against hostile requests and clients (issue 11): the
 * decoders' cap on topics and topic-partitions per request (MQ_ERR_RANGE, told apart from a malformed
 * request), and the server's answers to it (INVALID_REQUEST where the response can carry it, otherwise a
 * closed connection), a Fetch repeating a partition, the per-address connection limit and the handshake
 * timeout, with their counters.
 *
 * Requests are built here field by field from Kafka's message definitions, independently of the decoders.
 */
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kafka/proto.h"
#include "kafka/server.h"
#include "kafka/wire.h"
#include "store/store.h"
#include "testutil.h"
#include "util/parse.h"

/* ---- request bodies ---- */

/* Fetch of version v: `topics` topics named t0, t1, ..., each listing partition 0 `parts` times. */
static void build_fetch(struct mq_kafka_wr *w, int16_t v, int topics, int parts)
{
    mq_kafka_wr_i32(w, -1);        /* replica */
    mq_kafka_wr_i32(w, 0);         /* max wait */
    mq_kafka_wr_i32(w, 1);         /* min bytes */
    mq_kafka_wr_i32(w, INT32_MAX); /* max bytes */
    mq_kafka_wr_i8(w, 0);          /* isolation */
    if (v >= 7) {
        mq_kafka_wr_i32(w, 0);  /* session id */
        mq_kafka_wr_i32(w, -1); /* session epoch */
    }
    mq_kafka_wr_array(w, topics);
    for (int t = 0; t < topics; t++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", t);
        mq_kafka_wr_string(w, name);
        mq_kafka_wr_array(w, parts);
        for (int p = 0; p < parts; p++) {
            mq_kafka_wr_i32(w, 0);
            if (v >= 9)
                mq_kafka_wr_i32(w, -1);
            mq_kafka_wr_i64(w, 0);
            if (v >= 5)
                mq_kafka_wr_i64(w, -1);
            mq_kafka_wr_i32(w, INT32_MAX);
        }
    }
    if (v >= 7)
        mq_kafka_wr_array(w, 0); /* forgotten topics */
    if (v >= 11)
        mq_kafka_wr_string(w, "");
}

/* ListOffsets v1: topics x parts. */
static void build_list_offsets(struct mq_kafka_wr *w, int topics, int parts)
{
    mq_kafka_wr_i32(w, -1);
    mq_kafka_wr_array(w, topics);
    for (int t = 0; t < topics; t++) {
        mq_kafka_wr_string(w, "t");
        mq_kafka_wr_array(w, parts);
        for (int p = 0; p < parts; p++) {
            mq_kafka_wr_i32(w, p);
            mq_kafka_wr_i64(w, -1);
        }
    }
}

/* OffsetFetch v1: group g, topics x parts. */
static void build_offset_fetch(struct mq_kafka_wr *w, int topics, int parts)
{
    mq_kafka_wr_string(w, "g");
    mq_kafka_wr_array(w, topics);
    for (int t = 0; t < topics; t++) {
        mq_kafka_wr_string(w, "t");
        mq_kafka_wr_array(w, parts);
        for (int p = 0; p < parts; p++)
            mq_kafka_wr_i32(w, p);
    }
}

/* Metadata v1: n topics. */
static void build_metadata(struct mq_kafka_wr *w, int n)
{
    mq_kafka_wr_array(w, n);
    for (int i = 0; i < n; i++)
        mq_kafka_wr_string(w, "t");
}

enum which { FETCH4, FETCH11, LIST_OFFSETS, OFFSET_FETCH, METADATA };

/* Decodes a request built for `which` with reader limit max_parts (-1: none); returns the decoder's error. */
static enum mq_err decode(enum which which, int topics, int parts, int32_t max_parts)
{
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    switch (which) {
    case FETCH4:
        build_fetch(&w, 4, topics, parts);
        break;
    case FETCH11:
        build_fetch(&w, 11, topics, parts);
        break;
    case LIST_OFFSETS:
        build_list_offsets(&w, topics, parts);
        break;
    case OFFSET_FETCH:
        build_offset_fetch(&w, topics, parts);
        break;
    case METADATA:
        build_metadata(&w, topics);
        break;
    }
    CU_ASSERT_FATAL(mq_kafka_wr_ok(&w));
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, w.buf, w.len);
    if (max_parts >= 0)
        rd.max_parts = rd.parts_left = max_parts;
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    enum mq_err err = MQ_ERR_INVAL;
    union {
        struct mq_kafka_fetch_req f;
        struct mq_kafka_list_offsets_req lo;
        struct mq_kafka_offset_fetch_req of;
        struct mq_kafka_metadata_req md;
    } u;
    switch (which) {
    case FETCH4:
    case FETCH11:
        err = mq_kafka_fetch_req_decode(&rd, which == FETCH4 ? 4 : 11, &a, &u.f);
        if (err != MQ_OK)
            CU_ASSERT_EQUAL(u.f.topic_count, 0); /* nothing half-decoded is left to act on */
        break;
    case LIST_OFFSETS:
        err = mq_kafka_list_offsets_req_decode(&rd, 1, &a, &u.lo);
        break;
    case OFFSET_FETCH:
        err = mq_kafka_offset_fetch_req_decode(&rd, 1, &a, &u.of);
        break;
    case METADATA:
        err = mq_kafka_metadata_req_decode(&rd, 1, &a, &u.md);
        break;
    }
    mq_kafka_arena_free(&a);
    mq_kafka_wr_free(&w);
    return err;
}

static void test_decode_caps(void)
{
    static const enum which all[] = {FETCH4, FETCH11, LIST_OFFSETS, OFFSET_FETCH};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        enum which k = all[i];
        /* No limit by default. */
        CU_ASSERT_EQUAL(decode(k, 3, 2000, -1), MQ_OK);
        /* Exactly at the limit, spread over topics, and one over it. */
        CU_ASSERT_EQUAL(decode(k, 1, 10, 10), MQ_OK);
        CU_ASSERT_EQUAL(decode(k, 2, 5, 10), MQ_OK);
        CU_ASSERT_EQUAL(decode(k, 1, 11, 10), MQ_ERR_RANGE);
        CU_ASSERT_EQUAL(decode(k, 2, 6, 10), MQ_ERR_RANGE);  /* 12 in all, each topic within */
        CU_ASSERT_EQUAL(decode(k, 11, 0, 10), MQ_ERR_RANGE); /* more topics than the limit */
    }
    CU_ASSERT_EQUAL(decode(METADATA, 10, 0, 10), MQ_OK);
    CU_ASSERT_EQUAL(decode(METADATA, 11, 0, 10), MQ_ERR_RANGE);
}

/* A count that cannot fit in the bytes sent stays a malformed request, whatever the limit. */
static void test_truncated_is_not_range(void)
{
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    build_fetch(&w, 4, 1, 1);
    /* Claim a million partitions in the partition count (after replica..isolation, topic count, name). */
    size_t at = 4 + 4 + 4 + 4 + 1 + 4 + 2 + 2;
    mq_kafka_wr_patch_i32(&w, at, 1000000);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, w.buf, w.len);
    rd.max_parts = rd.parts_left = 10;
    struct mq_kafka_arena a;
    mq_kafka_arena_init(&a);
    struct mq_kafka_fetch_req r;
    CU_ASSERT_EQUAL(mq_kafka_fetch_req_decode(&rd, 4, &a, &r), MQ_ERR_PROTOCOL);
    mq_kafka_arena_free(&a);
    mq_kafka_wr_free(&w);
}

/* ---- the server ---- */

static char *dir;
static struct mq_store *store;
static struct mq_kafka_server *srv;
static int port;

static void server_up(int per_ip, int64_t handshake_ms)
{
    dir = mq_test_tmpdir("kafka-limits");
    char errstr[256];
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = 0; /* appends are durable when they return */
    CU_ASSERT_EQUAL_FATAL(mq_store_open(dir, MQ_STORE_WRITE, &lc, &store, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_create(store, "t0", 1, NULL, errstr, sizeof errstr), MQ_OK);
    struct mq_kafka_server_conf conf;
    mq_kafka_server_conf_defaults(&conf);
    conf.port = 0;
    conf.max_request_partitions = 5;
    conf.max_connections_per_ip = per_ip;
    conf.handshake_timeout_ms = handshake_ms;
    CU_ASSERT_EQUAL_FATAL(mq_kafka_server_start(store, &conf, &srv, errstr, sizeof errstr), MQ_OK);
    port = mq_kafka_server_port(srv);
}

static void server_down(void)
{
    mq_kafka_server_stop(srv);
    srv = NULL;
    CU_ASSERT_EQUAL(mq_store_close(store), MQ_OK);
    store = NULL;
    mq_test_rmdir(dir);
    dir = NULL;
}

static int cli_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Sends request (key, version) with header v1 and body. */
static void cli_send(int fd, int16_t key, int16_t v, int32_t corr, const struct mq_kafka_wr *body)
{
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    size_t at = mq_kafka_wr_reserve_i32(&w);
    mq_kafka_wr_i16(&w, key);
    mq_kafka_wr_i16(&w, v);
    mq_kafka_wr_i32(&w, corr);
    mq_kafka_wr_string(&w, "limits");
    if (body)
        mq_kafka_wr_raw(&w, body->buf, body->len);
    mq_kafka_wr_patch_i32(&w, at, (int32_t)(w.len - 4));
    CU_ASSERT_EQUAL_FATAL(send(fd, w.buf, w.len, MSG_NOSIGNAL), (ssize_t)w.len);
    mq_kafka_wr_free(&w);
}

/* Reads until n bytes, EOF (returns the count so far) or timeout_ms. */
static size_t cli_read(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    int64_t end = mq_mono_ms() + timeout_ms;
    while (got < n) {
        int64_t left = end - mq_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* True when the server closes fd within timeout_ms (anything sent before is read and dropped). */
static bool closed_within(int fd, int timeout_ms)
{
    uint8_t buf[4096];
    int64_t end = mq_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - mq_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            return true;
    }
}

static void test_too_many_partitions(void)
{
    server_up(0, 10000);
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    /* Fetch v11 over the limit: INVALID_REQUEST at the top, no topics, and the connection goes on. */
    int fd = cli_connect();
    build_fetch(&body, 11, 1, 6);
    cli_send(fd, 1, 11, 7, &body);
    uint8_t resp[4 + 4 + 4 + 2 + 4 + 4];
    CU_ASSERT_EQUAL_FATAL(cli_read(fd, resp, sizeof resp, 5000), sizeof resp);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, resp, sizeof resp);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), (int32_t)sizeof resp - 4);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 7);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);                     /* throttle */
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_INVALID_REQUEST); /* error */
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);                     /* session */
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);                     /* topics */
    cli_send(fd, 18, 0, 8, NULL);
    uint8_t hdr[8];
    CU_ASSERT_EQUAL(cli_read(fd, hdr, sizeof hdr, 5000), sizeof hdr);
    close(fd);
    /* Fetch v4 over the limit: its response has no top-level error, so the connection is closed. */
    fd = cli_connect();
    mq_kafka_wr_reset(&body);
    build_fetch(&body, 4, 2, 3);
    cli_send(fd, 1, 4, 9, &body);
    CU_ASSERT_TRUE(closed_within(fd, 5000));
    close(fd);
    /* Within the limit: answered. */
    fd = cli_connect();
    mq_kafka_wr_reset(&body);
    build_fetch(&body, 4, 1, 5);
    cli_send(fd, 1, 4, 10, &body);
    CU_ASSERT_EQUAL(cli_read(fd, hdr, sizeof hdr, 5000), sizeof hdr);
    close(fd);
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_EQUAL(st.too_large, 2);
    CU_ASSERT_EQUAL(st.protocol_errors, 0);
    mq_kafka_wr_free(&body);
    server_down();
}

/* A Fetch listing one partition three times: the first copy gets the records, the repeats only the
 * offsets, so that a request cannot multiply its reads by repeating itself. */
static void test_repeated_partition(void)
{
    server_up(0, 10000);
    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_part(store, "t0", 0, &part), MQ_OK);
    struct mq_record recs[10];
    for (int i = 0; i < 10; i++)
        recs[i] = (struct mq_record){1700000000000 + i, NULL, -1, "value", 5, NULL, 0};
    CU_ASSERT_EQUAL_FATAL(mq_part_append(part, recs, 10, NULL), MQ_OK);
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    build_fetch(&body, 4, 1, 3);
    int fd = cli_connect();
    cli_send(fd, 1, 4, 5, &body);
    uint8_t size[4];
    CU_ASSERT_EQUAL_FATAL(cli_read(fd, size, 4, 5000), 4);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, size, 4);
    int32_t len = mq_kafka_rd_i32(&rd);
    CU_ASSERT_FATAL(len > 0 && len < 1000000);
    uint8_t *resp = malloc((size_t)len);
    CU_ASSERT_EQUAL_FATAL(cli_read(fd, resp, (size_t)len, 5000), (size_t)len);
    mq_kafka_rd_init(&rd, resp, (size_t)len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 5); /* correlation id */
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0); /* throttle */
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t0"));
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 3);
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);          /* partition */
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE); /* error */
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 10);         /* high watermark */
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), 10);         /* last stable offset */
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);          /* aborted transactions */
        struct mq_kafka_str records = mq_kafka_rd_bytes(&rd);
        CU_ASSERT_TRUE(k == 0 ? records.len > 61 : records.len == 0);
    }
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    free(resp);
    close(fd);
    mq_kafka_wr_free(&body);
    server_down();
}

static void test_per_ip_and_handshake(void)
{
    server_up(3, 300);
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = cli_connect();
    /* Two over the per-address limit are closed at once; the three accepted wait for the handshake
     * timeout, unless they send a request. */
    int64_t t0 = mq_mono_ms();
    CU_ASSERT_TRUE(closed_within(fds[3], 2000));
    CU_ASSERT_TRUE(closed_within(fds[4], 2000));
    cli_send(fds[0], 18, 0, 1, NULL);
    uint8_t hdr[8];
    CU_ASSERT_EQUAL(cli_read(fds[0], hdr, sizeof hdr, 5000), sizeof hdr);
    CU_ASSERT_TRUE(closed_within(fds[1], 10000));
    CU_ASSERT_TRUE(closed_within(fds[2], 10000));
    CU_ASSERT_TRUE(mq_mono_ms() - t0 >= 250);
    CU_ASSERT_FALSE(closed_within(fds[0], 200)); /* it spoke: the handshake timeout no longer applies */
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_EQUAL(st.refused, 2);
    CU_ASSERT_EQUAL(st.timed_out, 2);
    CU_ASSERT_EQUAL(st.open, 1);
    /* Slots are given back: a new connection from the same address is accepted. */
    int again = cli_connect();
    cli_send(again, 18, 0, 2, NULL);
    CU_ASSERT_EQUAL(cli_read(again, hdr, sizeof hdr, 5000), sizeof hdr);
    close(again);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    server_down();
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_decode_caps),          MQ_TEST(test_truncated_is_not_range),
        MQ_TEST(test_too_many_partitions),  MQ_TEST(test_repeated_partition),
        MQ_TEST(test_per_ip_and_handshake), MQ_TEST_END,
    };
    return mq_test_run("kafka_limits", tests);
}
