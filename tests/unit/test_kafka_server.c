/*
 * test_kafka_server.c - the Kafka endpoint over real loopback sockets, driven by a minimal client written
 * here from the protocol (independent of the server's encoders): API negotiation and unsupported versions,
 * metadata and offsets, Fetch with sendfile'd batches and long polling, pipelining, Produce refusal,
 * malformed, oversized and truncated requests, consumer groups with committed offsets, many connections,
 * authorization rules (ACLs) set and replaced on a running server.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kafka/proto.h"
#include "kafka/server.h"
#include "kafka/server_int.h" /* mq_ksrv_apis(): the API table ApiVersions must advertise */
#include "kafka/wire.h"
#include "log/batch.h"
#include "store/store.h"
#include "testutil.h"
#include "util/parse.h"

/* ---- fixture: a store with topics t1 (2 partitions) and t2 (1), and a server on a free port ---- */

static char *dir;
static struct mq_store *store;
static struct mq_kafka_server *srv;
static int port;

#define MAX_REQ (1024 * 1024)

static void fixture_up_idle(int64_t idle_ms)
{
    dir = mq_test_tmpdir("kafka-server");
    char errstr[256];
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = 0; /* appends are durable when they return */
    CU_ASSERT_EQUAL_FATAL(mq_store_open(dir, MQ_STORE_WRITE, &lc, &store, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_create(store, "t1", 2, NULL, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_create(store, "t2", 1, NULL, errstr, sizeof errstr), MQ_OK);
    struct mq_kafka_server_conf conf;
    mq_kafka_server_conf_defaults(&conf);
    conf.port = 0;
    conf.max_request_bytes = MAX_REQ;
    if (idle_ms > 0)
        conf.idle_timeout_ms = idle_ms;
    enum mq_err err = mq_kafka_server_start(store, &conf, &srv, errstr, sizeof errstr);
    if (err != MQ_OK)
        fprintf(stderr, "server: %s\n", errstr);
    CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    port = mq_kafka_server_port(srv);
    CU_ASSERT_TRUE(port > 0);
}

static void fixture_up(void)
{
    fixture_up_idle(0);
}

static void fixture_down(void)
{
    mq_kafka_server_stop(srv);
    srv = NULL;
    CU_ASSERT_EQUAL(mq_store_close(store), MQ_OK);
    store = NULL;
    mq_test_rmdir(dir);
    dir = NULL;
}

/* Appends n records "<prefix><i>" with keys "k<i>" and timestamps ts0 + i as one batch. */
static int64_t append(const char *topic, int32_t partition, const char *prefix, int n, int64_t ts0)
{
    struct mq_part *part = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_part(store, topic, partition, &part), MQ_OK);
    struct mq_record recs[16];
    char keys[16][16], vals[16][64];
    CU_ASSERT_FATAL(n <= 16);
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        snprintf(vals[i], sizeof vals[i], "%s%d", prefix, i);
        recs[i] = (struct mq_record){
            ts0 + i, keys[i], (int32_t)strlen(keys[i]), vals[i], (int32_t)strlen(vals[i]), NULL, 0};
    }
    int64_t first = -1;
    CU_ASSERT_EQUAL_FATAL(mq_part_append(part, recs, (size_t)n, &first), MQ_OK);
    return first;
}

/* ---- a minimal client ---- */

static int cli_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        CU_ASSERT_FATAL(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

/* Frames a request (header v1, or v2 with an empty tag section) around body into out. */
static void frame(struct mq_kafka_wr *out, int16_t key, int16_t ver, int32_t corr,
                  const struct mq_kafka_wr *body, int hdr_version)
{
    size_t pos = mq_kafka_wr_reserve_i32(out);
    mq_kafka_wr_i16(out, key);
    mq_kafka_wr_i16(out, ver);
    mq_kafka_wr_i32(out, corr);
    mq_kafka_wr_string(out, "test-client");
    if (hdr_version >= 2)
        mq_kafka_wr_tags(out);
    if (body && body->len)
        mq_kafka_wr_raw(out, body->buf, body->len);
    mq_kafka_wr_patch_i32(out, pos, (int32_t)(out->len - pos - 4));
}

static void cli_send(int fd, int16_t key, int16_t ver, int32_t corr, const struct mq_kafka_wr *body)
{
    struct mq_kafka_wr out;
    mq_kafka_wr_init(&out);
    frame(&out, key, ver, corr, body, key == 18 && ver >= 3 ? 2 : 1);
    send_all(fd, out.buf, out.len);
    mq_kafka_wr_free(&out);
}

/* Reads exactly n bytes by the deadline; false on EOF, error or timeout. */
static bool recv_exact(int fd, uint8_t *b, size_t n, int64_t deadline)
{
    while (n > 0) {
        int64_t left = deadline - mq_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        ssize_t r = recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

/* One response: returns the body after the correlation id (malloc'd), checks the correlation id. */
static uint8_t *cli_recv(int fd, int32_t corr, size_t *len, int timeout_ms)
{
    int64_t deadline = mq_mono_ms() + timeout_ms;
    uint8_t pre[4];
    if (!recv_exact(fd, pre, 4, deadline))
        return NULL;
    uint32_t size = mq_be32_get(pre);
    CU_ASSERT_FATAL(size >= 4 && size < 64 * 1024 * 1024);
    uint8_t *b = malloc(size);
    CU_ASSERT_FATAL(b != NULL);
    if (!recv_exact(fd, b, size, deadline)) {
        free(b);
        return NULL;
    }
    CU_ASSERT_EQUAL((int32_t)mq_be32_get(b), corr);
    memmove(b, b + 4, size - 4);
    *len = size - 4;
    return b;
}

/* True when the server closed fd (EOF) by the deadline. */
static bool closed_by_server(int fd, int timeout_ms)
{
    int64_t deadline = mq_mono_ms() + timeout_ms;
    uint8_t buf[256];
    for (;;) {
        int64_t left = deadline - mq_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
    }
}

/* ---- tests ---- */

static void test_api_versions(void)
{
    fixture_up();
    int fd = cli_connect();
    size_t len;
    /* v0: error, then the table's (key, min, max). */
    cli_send(fd, 18, 0, 1, NULL);
    uint8_t *b = cli_recv(fd, 1, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
    int32_t n = mq_kafka_rd_array(&rd, 6, false);
    CU_ASSERT_EQUAL(n, 28);
    bool fetch11 = false;
    for (int32_t i = 0; i < n; i++) {
        int16_t k = mq_kafka_rd_i16(&rd), mn = mq_kafka_rd_i16(&rd), mx = mq_kafka_rd_i16(&rd);
        if (k == 1 && mn == 0 && mx == 11)
            fetch11 = true;
    }
    CU_ASSERT_TRUE(fetch11);
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    free(b);

    /* v3 as librdkafka sends it: flexible header and body; the response header stays v0. */
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_cstring(&body, "librdkafka");
    mq_kafka_wr_cstring(&body, "2.0.2");
    mq_kafka_wr_tags(&body);
    cli_send(fd, 18, 3, 2, &body);
    b = cli_recv(fd, 2, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
    CU_ASSERT_EQUAL(mq_kafka_rd_carray(&rd, 7, false), 28);
    free(b);

    /* An ApiVersions version from the future: Kafka's v0 answer with UNSUPPORTED_VERSION and the list. */
    cli_send(fd, 18, 9, 3, &body);
    b = cli_recv(fd, 3, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_UNSUPPORTED_VERSION);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 6, false), 28);
    free(b);

    /* The connection stays open after that: a served request is answered. */
    cli_send(fd, 18, 0, 4, NULL);
    b = cli_recv(fd, 4, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL(b);
    free(b);

    /* An API not served (UpdateFeatures) and a version not served (Fetch v12): Kafka closes the
     * connection, without an answer the client could misread. */
    cli_send(fd, 57, 0, 5, &body);
    CU_ASSERT_TRUE(closed_by_server(fd, 5000));
    close(fd);
    fd = cli_connect();
    cli_send(fd, 1, 12, 6, &body);
    CU_ASSERT_TRUE(closed_by_server(fd, 5000));
    mq_kafka_wr_free(&body);
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_EQUAL(st.unsupported, 3);
    CU_ASSERT_EQUAL(st.protocol_errors, 0);
    close(fd);
    fixture_down();
}

/* What ApiVersions advertises: the API table must keep answering exactly this unless an API or version
 * is added on purpose (the admin APIs were, issue 12). */
static const struct mq_kafka_api_range served[] = {
    {MQ_KAPI_PRODUCE, 0, 8},          {MQ_KAPI_FETCH, 0, 11},
    {MQ_KAPI_LIST_OFFSETS, 0, 5},     {MQ_KAPI_METADATA, 0, 8},
    {MQ_KAPI_OFFSET_COMMIT, 0, 7},    {MQ_KAPI_OFFSET_FETCH, 0, 5},
    {MQ_KAPI_FIND_COORDINATOR, 0, 2}, {MQ_KAPI_JOIN_GROUP, 0, 5},
    {MQ_KAPI_HEARTBEAT, 0, 3},        {MQ_KAPI_LEAVE_GROUP, 0, 3},
    {MQ_KAPI_SYNC_GROUP, 0, 3},       {MQ_KAPI_DESCRIBE_GROUPS, 0, 5},
    {MQ_KAPI_LIST_GROUPS, 0, 5},      {MQ_KAPI_SASL_HANDSHAKE, 0, 1},
    {MQ_KAPI_API_VERSIONS, 0, 3},     {MQ_KAPI_INIT_PRODUCER_ID, 0, 1},
    {MQ_KAPI_DESCRIBE_CONFIGS, 0, 4}, {MQ_KAPI_SASL_AUTHENTICATE, 0, 2},
    {MQ_KAPI_DELETE_GROUPS, 0, 2},    {MQ_KAPI_DESCRIBE_CLUSTER, 0, 1},
    {MQ_KAPI_CREATE_TOPICS, 0, 7},    {MQ_KAPI_DELETE_TOPICS, 0, 6},
    {MQ_KAPI_DELETE_RECORDS, 0, 2},   {MQ_KAPI_CREATE_PARTITIONS, 0, 3},
    {MQ_KAPI_ALTER_CONFIGS, 0, 2},    {MQ_KAPI_INCREMENTAL_ALTER_CONFIGS, 0, 1},
    {MQ_KAPI_CREATE_ACLS, 0, 3},      {MQ_KAPI_DELETE_ACLS, 0, 3},
};

/* Reads an ApiVersions list of response version v and checks that it is the server's API table. */
static void check_advertised(struct mq_kafka_rd *rd, int16_t v)
{
    size_t n;
    const struct mq_ksrv_api *t = mq_ksrv_apis(&n);
    int32_t count = v >= 3 ? mq_kafka_rd_carray(rd, 7, false) : mq_kafka_rd_array(rd, 6, false);
    CU_ASSERT_EQUAL_FATAL(count, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(rd), t[i].key);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(rd), t[i].min);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(rd), t[i].max);
        if (v >= 3)
            mq_kafka_rd_tags(rd);
    }
}

/* The one table that dispatches is what every ApiVersions version advertises, and a version outside an
 * API's [min, max] is handled as Kafka handles it: ApiVersions gets UNSUPPORTED_VERSION in a v0 response
 * with the list, every other API a closed connection. */
static void test_api_table(void)
{
    size_t n;
    const struct mq_ksrv_api *t = mq_ksrv_apis(&n);
    CU_ASSERT_EQUAL_FATAL(n, sizeof served / sizeof served[0]);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(t[i].key, served[i].key);
        CU_ASSERT_EQUAL(t[i].min, served[i].min);
        CU_ASSERT_EQUAL(t[i].max, served[i].max);
        CU_ASSERT_PTR_NOT_NULL(t[i].handle);
    }

    fixture_up();
    int fd = cli_connect();
    int32_t corr = 100;
    size_t len;
    struct mq_kafka_rd rd;
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    for (int16_t v = 0; v <= 3; v++) {
        mq_kafka_wr_reset(&body);
        if (v >= 3) {
            mq_kafka_wr_cstring(&body, "test");
            mq_kafka_wr_cstring(&body, "1");
            mq_kafka_wr_tags(&body);
        }
        cli_send(fd, MQ_KAPI_API_VERSIONS, v, ++corr, &body);
        uint8_t *b = cli_recv(fd, corr, &len, 5000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        mq_kafka_rd_init(&rd, b, len);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
        check_advertised(&rd, v);
        if (v >= 1)
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0); /* throttle time */
        if (v >= 3)
            mq_kafka_rd_tags(&rd);
        CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
        CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
        free(b);
    }

    uint64_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        const int16_t outside[] = {(int16_t)(t[i].min - 1), (int16_t)(t[i].max + 1)};
        for (int k = 0; k < 2; k++) {
            cli_send(fd, t[i].key, outside[k], ++corr, NULL);
            refused++;
            if (t[i].key != MQ_KAPI_API_VERSIONS) {
                CU_ASSERT_TRUE(closed_by_server(fd, 5000));
                close(fd);
                fd = cli_connect();
                continue;
            }
            uint8_t *b = cli_recv(fd, corr, &len, 5000);
            CU_ASSERT_PTR_NOT_NULL_FATAL(b);
            mq_kafka_rd_init(&rd, b, len);
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_UNSUPPORTED_VERSION);
            check_advertised(&rd, 0);
            CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
            CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
            free(b);
        }
    }
    /* APIs not in the table at all: UpdateFeatures (57) and AllocateProducerIds (67). */
    static const int16_t absent[] = {57, 67};
    for (int k = 0; k < 2; k++) {
        cli_send(fd, absent[k], 0, ++corr, NULL);
        CU_ASSERT_TRUE(closed_by_server(fd, 5000));
        close(fd);
        fd = cli_connect();
        refused++;
    }
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_EQUAL(st.unsupported, refused);
    CU_ASSERT_EQUAL(st.protocol_errors, 0);
    mq_kafka_wr_free(&body);
    close(fd);
    fixture_down();
}

static void test_metadata_and_offsets(void)
{
    fixture_up();
    append("t1", 0, "a", 3, 1000); /* offsets 0-2, timestamps 1000-1002 */
    append("t1", 0, "b", 2, 2000); /* offsets 3-4, timestamps 2000-2001 */
    int fd = cli_connect();
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    size_t len;
    struct mq_kafka_rd rd;

    /* Metadata v1, all topics (null array). */
    mq_kafka_wr_array(&body, -1);
    cli_send(fd, 3, 1, 10, &body);
    uint8_t *b = cli_recv(fd, 10, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "127.0.0.1"));
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), port);
    (void)mq_kafka_rd_nstring(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0); /* controller */
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
    for (int t = 0; t < 2; t++) {
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
        CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), t == 0 ? "t1" : "t2"));
        (void)mq_kafka_rd_bool(&rd);
        int32_t np = mq_kafka_rd_array(&rd, 1, false);
        CU_ASSERT_EQUAL(np, t == 0 ? 2 : 1);
        for (int32_t p = 0; p < np; p++) {
            (void)mq_kafka_rd_i16(&rd);
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), p);
            (void)mq_kafka_rd_i32(&rd);
            int32_t nr = mq_kafka_rd_array(&rd, 4, false);
            for (int32_t k = 0; k < nr; k++)
                (void)mq_kafka_rd_i32(&rd);
            nr = mq_kafka_rd_array(&rd, 4, false);
            for (int32_t k = 0; k < nr; k++)
                (void)mq_kafka_rd_i32(&rd);
        }
    }
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    free(b);

    /* Metadata v0 for a missing topic: UNKNOWN_TOPIC_OR_PARTITION. */
    mq_kafka_wr_reset(&body);
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_string(&body, "nope");
    cli_send(fd, 3, 0, 11, &body);
    b = cli_recv(fd, 11, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    mq_kafka_rd_init(&rd, b, len);
    int32_t nb = mq_kafka_rd_array(&rd, 1, false);
    for (int32_t i = 0; i < nb; i++) {
        (void)mq_kafka_rd_i32(&rd);
        (void)mq_kafka_rd_string(&rd);
        (void)mq_kafka_rd_i32(&rd);
    }
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_UNKNOWN_TOPIC_OR_PARTITION);
    free(b);

    /* ListOffsets v1: earliest, latest, by time (1500 -> offset 3 at 2000), after the last (-1), unknown. */
    static const int64_t ts[] = {-2, -1, 1500, 1001, 99999};
    static const int64_t want_off[] = {0, 5, 3, 1, -1};
    static const int64_t want_ts[] = {-1, -1, 2000, 1001, -1};
    mq_kafka_wr_reset(&body);
    mq_kafka_wr_i32(&body, -1);
    mq_kafka_wr_array(&body, 2);
    mq_kafka_wr_string(&body, "t1");
    mq_kafka_wr_array(&body, 5);
    for (int i = 0; i < 5; i++) {
        mq_kafka_wr_i32(&body, 0);
        mq_kafka_wr_i64(&body, ts[i]);
    }
    mq_kafka_wr_string(&body, "nope");
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_i32(&body, 0);
    mq_kafka_wr_i64(&body, -1);
    cli_send(fd, 2, 1, 12, &body);
    b = cli_recv(fd, 12, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t1"));
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 5);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), want_ts[i]);
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), want_off[i]);
    }
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "nope"));
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_UNKNOWN_TOPIC_OR_PARTITION);
    free(b);
    mq_kafka_wr_free(&body);
    close(fd);
    fixture_down();
}

/* Builds a Fetch request body (v4+) for one partition of one topic. */
static void fetch_body(struct mq_kafka_wr *w, int16_t v, const char *topic, int32_t part, int64_t offset,
                       int32_t max_wait, int32_t min_bytes, int32_t max_bytes, int32_t part_max)
{
    mq_kafka_wr_reset(w);
    mq_kafka_wr_i32(w, -1);
    mq_kafka_wr_i32(w, max_wait);
    mq_kafka_wr_i32(w, min_bytes);
    mq_kafka_wr_i32(w, max_bytes);
    mq_kafka_wr_i8(w, 0);
    if (v >= 7) {
        mq_kafka_wr_i32(w, 0);
        mq_kafka_wr_i32(w, -1);
    }
    mq_kafka_wr_array(w, 1);
    mq_kafka_wr_string(w, topic);
    mq_kafka_wr_array(w, 1);
    mq_kafka_wr_i32(w, part);
    if (v >= 9)
        mq_kafka_wr_i32(w, -1);
    mq_kafka_wr_i64(w, offset);
    if (v >= 5)
        mq_kafka_wr_i64(w, -1);
    mq_kafka_wr_i32(w, part_max);
    if (v >= 7)
        mq_kafka_wr_array(w, 0);
    if (v >= 11)
        mq_kafka_wr_string(w, "");
}

struct fetched {
    int16_t error;
    int64_t hw, log_start;
    int batches;
    int records;
    int64_t offsets[64];
    char values[64][16];
};

/* Parses a one-partition Fetch response of version v and decodes its batches. */
static void parse_fetch(const uint8_t *b, size_t len, int16_t v, struct fetched *f)
{
    memset(f, 0, sizeof *f);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    if (v >= 7) {
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    }
    CU_ASSERT_EQUAL_FATAL(mq_kafka_rd_array(&rd, 1, false), 1);
    (void)mq_kafka_rd_string(&rd);
    CU_ASSERT_EQUAL_FATAL(mq_kafka_rd_array(&rd, 1, false), 1);
    (void)mq_kafka_rd_i32(&rd);
    f->error = mq_kafka_rd_i16(&rd);
    f->hw = mq_kafka_rd_i64(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), f->hw); /* last stable offset */
    if (v >= 5)
        f->log_start = mq_kafka_rd_i64(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 16, true), 0);
    if (v >= 11)
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), -1);
    struct mq_kafka_str recs = mq_kafka_rd_nbytes(&rd);
    CU_ASSERT_TRUE_FATAL(mq_kafka_rd_ok(&rd));
    CU_ASSERT_EQUAL(mq_kafka_rd_left(&rd), 0);
    const uint8_t *p = (const uint8_t *)recs.ptr;
    size_t left = recs.len > 0 ? (size_t)recs.len : 0;
    while (left >= MQ_BATCH_HEADER_SIZE) {
        struct mq_batch_info bi;
        CU_ASSERT_EQUAL_FATAL(mq_batch_parse_header(p, left, &bi), MQ_OK);
        CU_ASSERT_FATAL(mq_batch_size(&bi) <= left);
        CU_ASSERT_TRUE(mq_batch_crc_ok(p, &bi));
        struct mq_record_iter it;
        CU_ASSERT_EQUAL_FATAL(mq_record_iter_init(&it, p, &bi), MQ_OK);
        struct mq_record_view rv;
        while (mq_record_next(&it, &rv) == 1 && f->records < 64) {
            f->offsets[f->records] = rv.offset;
            snprintf(f->values[f->records], sizeof f->values[0], "%.*s", rv.value_len,
                     (const char *)rv.value);
            f->records++;
        }
        f->batches++;
        p += mq_batch_size(&bi);
        left -= mq_batch_size(&bi);
    }
    CU_ASSERT_EQUAL(left, 0); /* whole batches only */
}

static void test_fetch(void)
{
    fixture_up();
    append("t1", 1, "a", 3, 1000);
    append("t1", 1, "b", 2, 2000);
    append("t1", 1, "c", 4, 3000);
    int fd = cli_connect();
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    size_t len;
    struct fetched f;
    int32_t corr = 100;
    for (int16_t v = 4; v <= 11; v++) {
        fetch_body(&body, v, "t1", 1, 0, 100, 1, 1 << 20, 1 << 20);
        cli_send(fd, 1, v, ++corr, &body);
        uint8_t *b = cli_recv(fd, corr, &len, 5000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        parse_fetch(b, len, v, &f);
        free(b);
        CU_ASSERT_EQUAL(f.error, MQ_KC_NONE);
        CU_ASSERT_EQUAL(f.hw, 9);
        CU_ASSERT_EQUAL(f.log_start, 0);
        CU_ASSERT_EQUAL(f.batches, 3);
        CU_ASSERT_EQUAL(f.records, 9);
        CU_ASSERT_EQUAL(f.offsets[8], 8);
        CU_ASSERT_STRING_EQUAL(f.values[0], "a0");
        CU_ASSERT_STRING_EQUAL(f.values[3], "b0");
        CU_ASSERT_STRING_EQUAL(f.values[8], "c3");
    }
    /* From the middle of the second batch: that batch and the rest. */
    fetch_body(&body, 11, "t1", 1, 4, 100, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 11, ++corr, &body);
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_EQUAL(f.batches, 2);
    CU_ASSERT_EQUAL(f.offsets[0], 3);
    /* max_bytes 1: still one whole batch (KIP-74). */
    fetch_body(&body, 11, "t1", 1, 0, 100, 1, 1, 1);
    cli_send(fd, 1, 11, ++corr, &body);
    b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_EQUAL(f.batches, 1);
    CU_ASSERT_EQUAL(f.records, 3);
    /* Out of range and unknown partitions answer at once with their errors. */
    fetch_body(&body, 11, "t1", 1, 10, 5000, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 11, ++corr, &body);
    b = cli_recv(fd, corr, &len, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_EQUAL(f.error, MQ_KC_OFFSET_OUT_OF_RANGE);
    fetch_body(&body, 11, "t1", 7, 0, 5000, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 11, ++corr, &body);
    b = cli_recv(fd, corr, &len, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_EQUAL(f.error, MQ_KC_UNKNOWN_TOPIC_OR_PARTITION);
    mq_kafka_wr_free(&body);
    close(fd);
    fixture_down();
}

struct appender {
    int64_t at;  /* mono ms of the append */
    bool parked; /* the fetch was parked when the record was appended */
};

/* True when the server (opaque) has exactly one fetch parked. */
static bool fetch_parked(void *opaque)
{
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(opaque, &st);
    return st.fetch_waiting == 1;
}

static void *append_later(void *arg)
{
    struct appender *a = arg;
    /* The record must arrive while the fetch is parked, to exercise the wake-up. */
    a->parked = mq_test_wait(fetch_parked, srv, 5000);
    a->at = mq_mono_ms();
    append("t2", 0, "late", 1, 5000);
    return NULL;
}

static void test_long_poll(void)
{
    fixture_up();
    append("t2", 0, "x", 1, 1000);
    int fd = cli_connect();
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    size_t len;
    struct fetched f;

    uint8_t *b;
    /* Nothing new at offset 1 within max_wait: an empty answer after about max_wait. */
    int64_t t0 = mq_mono_ms();
    fetch_body(&body, 11, "t2", 0, 1, 300, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 11, 2, &body);
    b = cli_recv(fd, 2, &len, 5000);
    int64_t waited = mq_mono_ms() - t0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_EQUAL(f.error, MQ_KC_NONE);
    CU_ASSERT_EQUAL(f.records, 0);
    CU_ASSERT_TRUE(waited >= 280 && waited < 3000);

    /* A record appended while the fetch waits is delivered at once, long before max_wait. */
    struct appender a = {0};
    pthread_t th;
    fetch_body(&body, 11, "t2", 0, 1, 20000, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 11, 3, &body);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, append_later, &a), 0);
    b = cli_recv(fd, 3, &len, 10000);
    int64_t got = mq_mono_ms();
    pthread_join(th, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_TRUE(a.parked);
    CU_ASSERT_EQUAL(f.records, 1);
    CU_ASSERT_STRING_EQUAL(f.values[0], "late0");
    CU_ASSERT_EQUAL(f.offsets[0], 1);
    fprintf(stderr, "long poll: record delivered %lld ms after its append\n", (long long)(got - a.at));
    CU_ASSERT_TRUE(got - a.at < 1000);
    mq_kafka_wr_free(&body);
    close(fd);
    fixture_down();
}

static void test_pipelining_and_produce(void)
{
    fixture_up();
    int fd = cli_connect();
    struct mq_kafka_wr all, body;
    mq_kafka_wr_init(&all);
    mq_kafka_wr_init(&body);
    frame(&all, 18, 0, 1, NULL, 1);
    /* Produce v3 with acks=0: no answer at all. */
    mq_kafka_wr_string(&body, NULL);
    mq_kafka_wr_i16(&body, 0);
    mq_kafka_wr_i32(&body, 1000);
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_string(&body, "t1");
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_i32(&body, 0);
    mq_kafka_wr_bytes(&body, "garbage-records", 15);
    frame(&all, 0, 3, 2, &body, 1);
    /* The same with acks=-1: TOPIC_AUTHORIZATION_FAILED. */
    mq_kafka_wr_reset(&body);
    mq_kafka_wr_string(&body, NULL);
    mq_kafka_wr_i16(&body, -1);
    mq_kafka_wr_i32(&body, 1000);
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_string(&body, "t1");
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_i32(&body, 0);
    mq_kafka_wr_bytes(&body, "garbage-records", 15);
    frame(&all, 0, 7, 3, &body, 1);
    mq_kafka_wr_reset(&body);
    mq_kafka_wr_array(&body, 0);
    frame(&all, 3, 1, 4, &body, 1);
    send_all(fd, all.buf, all.len); /* four requests in one write */

    size_t len;
    uint8_t *b = cli_recv(fd, 1, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL(b);
    free(b);
    b = cli_recv(fd, 3, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t1"));
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_TOPIC_AUTHORIZATION_FAILED);
    free(b);
    b = cli_recv(fd, 4, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL(b);
    free(b);
    /* InitProducerId (idempotent producer): CLUSTER_AUTHORIZATION_FAILED, producer id -1. */
    mq_kafka_wr_reset(&body);
    mq_kafka_wr_string(&body, NULL);
    mq_kafka_wr_i32(&body, 60000);
    cli_send(fd, 22, 1, 5, &body);
    b = cli_recv(fd, 5, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(len, 4 + 2 + 8 + 2);
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_CLUSTER_AUTHORIZATION_FAILED);
    CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), -1);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), -1);
    free(b);
    mq_kafka_wr_free(&all);
    mq_kafka_wr_free(&body);
    close(fd);
    fixture_down();
}

static void test_bad_requests(void)
{
    fixture_up();
    int good = cli_connect();
    size_t len;

    /* Garbage whose first four bytes announce an absurd size. */
    int fd = cli_connect();
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    CU_ASSERT_TRUE(closed_by_server(fd, 5000));
    close(fd);
    /* A size just above the limit. */
    fd = cli_connect();
    uint8_t pre[4];
    mq_be32_put(pre, MAX_REQ + 1);
    send_all(fd, pre, 4);
    CU_ASSERT_TRUE(closed_by_server(fd, 5000));
    close(fd);
    /* A size too small to hold a request header. */
    fd = cli_connect();
    mq_be32_put(pre, 3);
    send_all(fd, pre, 4);
    send_all(fd, "abc", 3);
    CU_ASSERT_TRUE(closed_by_server(fd, 5000));
    close(fd);
    /* A well-framed Metadata request whose topic array claims more than it holds. */
    fd = cli_connect();
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_array(&body, 1000);
    mq_kafka_wr_string(&body, "t1");
    cli_send(fd, 3, 1, 7, &body);
    CU_ASSERT_TRUE(closed_by_server(fd, 5000));
    close(fd);
    /* A client that announces 100 bytes, sends 50 and goes away. */
    fd = cli_connect();
    mq_be32_put(pre, 100);
    send_all(fd, pre, 4);
    uint8_t half[50] = {0, 18, 0, 0};
    send_all(fd, half, sizeof half);
    close(fd);
    /* Random bytes in well-formed frames of every API. */
    unsigned seed = 99;
    for (int i = 0; i < 40; i++) {
        fd = cli_connect();
        uint8_t msg[4 + 64];
        mq_be32_put(msg, 64);
        for (size_t k = 4; k < sizeof msg; k++)
            msg[k] = (uint8_t)rand_r(&seed);
        static const int16_t keys[] = {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18};
        mq_be16_put(msg + 4, (uint16_t)keys[i % 12]);
        mq_be16_put(msg + 6, (uint16_t)(rand_r(&seed) % 4));
        send_all(fd, msg, sizeof msg);
        /* Wait for the verdict (an answer, or the connection closed) before going away. */
        struct pollfd pf = {fd, POLLIN, 0};
        CU_ASSERT_EQUAL(poll(&pf, 1, 5000), 1);
        close(fd);
    }

    /* The well-behaved client never noticed. */
    cli_send(good, 18, 0, 42, NULL);
    uint8_t *b = cli_recv(good, 42, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL(b);
    free(b);
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_TRUE(st.protocol_errors >= 4);
    mq_kafka_wr_free(&body);
    close(good);
    fixture_down();
}

/* ---- groups ---- */

struct joined {
    int16_t error;
    int32_t generation;
    char leader[128], member_id[128];
    int32_t members;
};

static void join_group(int fd, int32_t corr, const char *member_id)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_string(&body, "grp");
    mq_kafka_wr_i32(&body, 6000);
    mq_kafka_wr_i32(&body, 10000);
    mq_kafka_wr_string(&body, member_id);
    mq_kafka_wr_string(&body, NULL); /* group instance id (v5) */
    mq_kafka_wr_string(&body, "consumer");
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_string(&body, "range");
    mq_kafka_wr_bytes(&body, "md", 2);
    cli_send(fd, 11, 5, corr, &body);
    mq_kafka_wr_free(&body);
}

static bool read_join(int fd, int32_t corr, struct joined *j, int timeout_ms)
{
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, timeout_ms);
    if (!b)
        return false;
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    (void)mq_kafka_rd_i32(&rd);
    j->error = mq_kafka_rd_i16(&rd);
    j->generation = mq_kafka_rd_i32(&rd);
    (void)mq_kafka_rd_string(&rd);
    CU_ASSERT_TRUE(mq_kafka_str_copy(mq_kafka_rd_string(&rd), j->leader, sizeof j->leader));
    CU_ASSERT_TRUE(mq_kafka_str_copy(mq_kafka_rd_string(&rd), j->member_id, sizeof j->member_id));
    j->members = mq_kafka_rd_array(&rd, 1, false);
    free(b);
    return true;
}

static void sync_group(int fd, int32_t corr, const struct joined *j, const char *other)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_string(&body, "grp");
    mq_kafka_wr_i32(&body, j->generation);
    mq_kafka_wr_string(&body, j->member_id);
    mq_kafka_wr_string(&body, NULL); /* v3 instance id */
    if (strcmp(j->leader, j->member_id) == 0) {
        mq_kafka_wr_array(&body, other ? 2 : 1);
        mq_kafka_wr_string(&body, j->member_id);
        mq_kafka_wr_bytes(&body, "leader-part", 11);
        if (other) {
            mq_kafka_wr_string(&body, other);
            mq_kafka_wr_bytes(&body, "follower-part", 13);
        }
    } else {
        mq_kafka_wr_array(&body, 0);
    }
    cli_send(fd, 14, 3, corr, &body);
    mq_kafka_wr_free(&body);
}

static int16_t read_sync(int fd, int32_t corr, char *assignment, size_t size)
{
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    (void)mq_kafka_rd_i32(&rd);
    int16_t e = mq_kafka_rd_i16(&rd);
    CU_ASSERT_TRUE(mq_kafka_str_copy(mq_kafka_rd_bytes(&rd), assignment, size));
    free(b);
    return e;
}

static int16_t simple(int fd, int16_t key, int16_t v, int32_t corr, const struct joined *j)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_string(&body, "grp");
    if (key == 12) { /* Heartbeat v1 */
        mq_kafka_wr_i32(&body, j->generation);
        mq_kafka_wr_string(&body, j->member_id);
    } else { /* LeaveGroup v1 */
        mq_kafka_wr_string(&body, j->member_id);
    }
    cli_send(fd, key, v, corr, &body);
    mq_kafka_wr_free(&body);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(len, 6);
    int16_t e = (int16_t)mq_be16_get(b + 4);
    free(b);
    return e;
}

/* Heartbeats as j until the server reports a rebalance (another connection's join has been handled). */
static int16_t await_rebalance(int fd, int32_t corr0, const struct joined *j)
{
    int16_t hb = 0;
    int64_t deadline = mq_mono_ms() + 5000;
    for (int32_t corr = corr0; hb != MQ_KC_REBALANCE_IN_PROGRESS && mq_mono_ms() < deadline; corr++)
        hb = simple(fd, 12, 1, corr, j);
    return hb;
}

static void test_groups_and_offsets(void)
{
    fixture_up();
    int a = cli_connect(), b = cli_connect();
    size_t len;
    struct mq_kafka_rd rd;
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);

    /* FindCoordinator v1: this server. */
    mq_kafka_wr_string(&body, "grp");
    mq_kafka_wr_i8(&body, 0);
    cli_send(a, 10, 1, 1, &body);
    uint8_t *r = cli_recv(a, 1, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    mq_kafka_rd_init(&rd, r, len);
    (void)mq_kafka_rd_i32(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
    (void)mq_kafka_rd_nstring(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), 0);
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "127.0.0.1"));
    CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), port);
    free(r);

    /* A joins alone, syncs, becomes stable. */
    struct joined ja, jb;
    join_group(a, 2, "");
    CU_ASSERT_FATAL(read_join(a, 2, &ja, 5000));
    CU_ASSERT_EQUAL(ja.error, MQ_KC_NONE);
    CU_ASSERT_EQUAL(ja.generation, 1);
    CU_ASSERT_STRING_EQUAL(ja.leader, ja.member_id);
    CU_ASSERT_TRUE(strncmp(ja.member_id, "test-client-", 12) == 0);
    char asg[64];
    sync_group(a, 3, &ja, NULL);
    CU_ASSERT_EQUAL(read_sync(a, 3, asg, sizeof asg), MQ_KC_NONE);
    CU_ASSERT_STRING_EQUAL(asg, "leader-part");

    /* B joins: parked until A rejoins (A learns of the rebalance from its heartbeat). */
    join_group(b, 4, "");
    CU_ASSERT_EQUAL(await_rebalance(a, 500, &ja), MQ_KC_REBALANCE_IN_PROGRESS);
    join_group(a, 6, ja.member_id);
    CU_ASSERT_FATAL(read_join(a, 6, &ja, 5000));
    CU_ASSERT_FATAL(read_join(b, 4, &jb, 5000));
    CU_ASSERT_EQUAL(ja.generation, 2);
    CU_ASSERT_EQUAL(jb.generation, 2);
    CU_ASSERT_EQUAL(ja.members, 2);
    CU_ASSERT_EQUAL(jb.members, 0);
    /* B's sync waits for the leader's. */
    sync_group(b, 7, &jb, NULL);
    sync_group(a, 8, &ja, jb.member_id);
    CU_ASSERT_EQUAL(read_sync(a, 8, asg, sizeof asg), MQ_KC_NONE);
    CU_ASSERT_STRING_EQUAL(asg, "leader-part");
    CU_ASSERT_EQUAL(read_sync(b, 7, asg, sizeof asg), MQ_KC_NONE);
    CU_ASSERT_STRING_EQUAL(asg, "follower-part");
    CU_ASSERT_EQUAL(simple(b, 12, 1, 9, &jb), MQ_KC_NONE);

    /* OffsetCommit v2 from B (generation 2) for t1/0 and t1/1; a stale generation is refused. */
    for (int stale = 0; stale < 2; stale++) {
        mq_kafka_wr_reset(&body);
        mq_kafka_wr_string(&body, "grp");
        mq_kafka_wr_i32(&body, stale ? 1 : jb.generation);
        mq_kafka_wr_string(&body, jb.member_id);
        mq_kafka_wr_i64(&body, -1);
        mq_kafka_wr_array(&body, 1);
        mq_kafka_wr_string(&body, "t1");
        mq_kafka_wr_array(&body, 2);
        for (int p = 0; p < 2; p++) {
            mq_kafka_wr_i32(&body, p);
            mq_kafka_wr_i64(&body, 40 + p);
            mq_kafka_wr_string(&body, p ? NULL : "meta");
        }
        cli_send(b, 8, 2, 10 + stale, &body);
        r = cli_recv(b, 10 + stale, &len, 5000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        mq_kafka_rd_init(&rd, r, len);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
        (void)mq_kafka_rd_string(&rd);
        CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
        for (int p = 0; p < 2; p++) {
            CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), p);
            CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), stale ? MQ_KC_ILLEGAL_GENERATION : MQ_KC_NONE);
        }
        free(r);
    }

    /* OffsetFetch v1 for t1/0,1,2 (2 does not exist: offset -1). */
    mq_kafka_wr_reset(&body);
    mq_kafka_wr_string(&body, "grp");
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_string(&body, "t1");
    mq_kafka_wr_array(&body, 3);
    for (int p = 0; p < 3; p++)
        mq_kafka_wr_i32(&body, p);
    cli_send(a, 9, 1, 12, &body);
    r = cli_recv(a, 12, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    mq_kafka_rd_init(&rd, r, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    (void)mq_kafka_rd_string(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 3);
    for (int p = 0; p < 3; p++) {
        CU_ASSERT_EQUAL(mq_kafka_rd_i32(&rd), p);
        CU_ASSERT_EQUAL(mq_kafka_rd_i64(&rd), p < 2 ? 40 + p : -1);
        struct mq_kafka_str md = mq_kafka_rd_nstring(&rd);
        CU_ASSERT_TRUE(p != 0 || mq_kafka_str_eq(md, "meta"));
        CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
    }
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    free(r);

    /* OffsetFetch v3 with a null topic array: everything the group committed. */
    mq_kafka_wr_reset(&body);
    mq_kafka_wr_string(&body, "grp");
    mq_kafka_wr_array(&body, -1);
    cli_send(a, 9, 3, 13, &body);
    r = cli_recv(a, 13, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    mq_kafka_rd_init(&rd, r, len);
    (void)mq_kafka_rd_i32(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    CU_ASSERT_TRUE(mq_kafka_str_eq(mq_kafka_rd_string(&rd), "t1"));
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 2);
    free(r);

    /* The offsets are in the catalog, where other tools find them. */
    int64_t off = -1;
    CU_ASSERT_EQUAL(mq_catalog_offset_fetch(mq_store_catalog(store), "grp", "t1", 1, &off, NULL, NULL),
                    MQ_OK);
    CU_ASSERT_EQUAL(off, 41);

    /* B leaves; A is told to rejoin and gets the group alone. */
    CU_ASSERT_EQUAL(simple(b, 13, 1, 14, &jb), MQ_KC_NONE);
    CU_ASSERT_EQUAL(simple(a, 12, 1, 15, &ja), MQ_KC_REBALANCE_IN_PROGRESS);
    join_group(a, 16, ja.member_id);
    CU_ASSERT_FATAL(read_join(a, 16, &ja, 5000));
    CU_ASSERT_EQUAL(ja.generation, 3);
    CU_ASSERT_EQUAL(ja.members, 1);

    /* A connection that dies with a parked JoinGroup does not hurt the others. */
    int c = cli_connect();
    join_group(c, 17, "");
    /* Once A's heartbeat reports the rebalance, C's join is parked in the server. */
    CU_ASSERT_EQUAL(await_rebalance(a, 100, &ja), MQ_KC_REBALANCE_IN_PROGRESS);
    close(c);
    /* A's rejoin completes the round without waiting for C's lost connection. */
    join_group(a, 18, ja.member_id);
    CU_ASSERT_FATAL(read_join(a, 18, &ja, 5000));
    CU_ASSERT_EQUAL(ja.error, MQ_KC_NONE);
    CU_ASSERT_EQUAL(ja.generation, 4);
    mq_kafka_wr_free(&body);
    close(a);
    close(b);
    fixture_down();
}

static void test_many_connections(void)
{
    fixture_up();
    enum { N = 300 };
    static int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = cli_connect();
    for (int i = 0; i < N; i++)
        cli_send(fds[i], 18, 0, i, NULL);
    int answered = 0;
    for (int i = 0; i < N; i++) {
        size_t len;
        uint8_t *b = cli_recv(fds[i], i, &len, 10000);
        if (b)
            answered++;
        free(b);
    }
    CU_ASSERT_EQUAL(answered, N);
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_EQUAL(st.open, N);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    fixture_down();
}

static void test_idle_timeout(void)
{
    fixture_up_idle(300);
    int idle = cli_connect(), busy = cli_connect();
    /* The idle connection asks once (before that, the handshake timeout would apply), then says nothing. */
    cli_send(idle, 18, 0, 0, NULL);
    size_t first_len;
    uint8_t *first = cli_recv(idle, 0, &first_len, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    free(first);
    int64_t t0 = mq_mono_ms();
    /* The busy connection keeps talking; the idle one says nothing and is closed. */
    bool idle_closed = false;
    for (int32_t corr = 1; mq_mono_ms() - t0 < 5000 && !idle_closed; corr++) {
        cli_send(busy, 18, 0, corr, NULL);
        size_t len;
        uint8_t *b = cli_recv(busy, corr, &len, 2000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        free(b);
        idle_closed = closed_by_server(idle, 100);
    }
    CU_ASSERT_TRUE(idle_closed);
    CU_ASSERT_TRUE(mq_mono_ms() - t0 >= 300);
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_EQUAL(st.open, 1);
    close(idle);
    close(busy);
    fixture_down();
}

/* A server over a store opened read-only beside the writer (as `mqlog serve` beside mqlogd would run):
 * no durable callback, so parked fetches poll for the writer's new records. */
static void test_read_only_store(void)
{
    fixture_up();
    append("t2", 0, "x", 2, 1000);
    char errstr[256];
    struct mq_store *ro = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_store_open(dir, MQ_STORE_READ, NULL, &ro, errstr, sizeof errstr), MQ_OK);
    struct mq_kafka_server_conf conf;
    mq_kafka_server_conf_defaults(&conf);
    conf.port = 0;
    conf.fetch_poll_ms = 20;
    struct mq_kafka_server *rsrv = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_kafka_server_start(ro, &conf, &rsrv, errstr, sizeof errstr), MQ_OK);
    int saved_port = port;
    port = mq_kafka_server_port(rsrv);
    int fd = cli_connect();
    port = saved_port;

    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    size_t len;
    struct fetched f;
    fetch_body(&body, 11, "t2", 0, 0, 100, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 11, 1, &body);
    uint8_t *b = cli_recv(fd, 1, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_EQUAL(f.records, 2);

    /* Parked at the end; the writer appends; the reader's poll finds it long before max_wait. */
    fetch_body(&body, 11, "t2", 0, 2, 20000, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 11, 2, &body);
    CU_ASSERT_TRUE(mq_test_wait(fetch_parked, rsrv, 5000));
    int64_t t0 = mq_mono_ms();
    append("t2", 0, "more", 1, 2000);
    b = cli_recv(fd, 2, &len, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(mq_mono_ms() - t0 < 3000);
    parse_fetch(b, len, 11, &f);
    free(b);
    CU_ASSERT_EQUAL(f.records, 1);
    CU_ASSERT_STRING_EQUAL(f.values[0], "more0");
    mq_kafka_wr_free(&body);
    close(fd);
    mq_kafka_server_stop(rsrv);
    CU_ASSERT_EQUAL(mq_store_close(ro), MQ_OK);
    fixture_down();
}

struct churn {
    atomic_bool stop;
    atomic_int appended, failed;
};

/* Appends to t2/0 until told to stop; each append is durable when it returns and calls the durable
 * callback on this thread. No CUnit asserts here: they are not for other threads. */
static void *append_loop(void *arg)
{
    struct churn *ch = arg;
    struct mq_part *part = NULL;
    if (mq_store_part(store, "t2", 0, &part) != MQ_OK) {
        atomic_fetch_add(&ch->failed, 1);
        return NULL;
    }
    struct mq_record rec = {1000, "k", 1, "v", 1, NULL, 0};
    while (!atomic_load(&ch->stop)) {
        if (mq_part_append(part, &rec, 1, NULL) == MQ_OK)
            atomic_fetch_add(&ch->appended, 1);
        else
            atomic_fetch_add(&ch->failed, 1);
    }
    return NULL;
}

/* Servers start and stop while a writer makes records durable without pause. stop() frees the server
 * right after removing the durable callback, which is safe only because mq_log_set_durable_cb() returns
 * once no call of the callback is running. A call that outlived stop() would touch the freed server and
 * ASan would report it; the window is narrow, so this is a net, not a proof (with the wait removed and
 * the callback slowed by 5 ms, the first run fails). */
static void test_stop_during_durable_calls(void)
{
    fixture_up();
    struct churn ch = {0};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, append_loop, &ch), 0);
    char errstr[256];
    struct mq_kafka_server_conf conf;
    mq_kafka_server_conf_defaults(&conf);
    conf.port = 0;
    for (int i = 0; i < 50; i++) {
        struct mq_kafka_server *s = NULL;
        CU_ASSERT_EQUAL_FATAL(mq_kafka_server_start(store, &conf, &s, errstr, sizeof errstr), MQ_OK);
        mq_kafka_server_stop(s);
    }
    atomic_store(&ch.stop, true);
    pthread_join(th, NULL);
    CU_ASSERT_TRUE(atomic_load(&ch.appended) > 0);
    CU_ASSERT_EQUAL(atomic_load(&ch.failed), 0);
    fixture_down();
}

static void test_start_errors(void)
{
    fixture_up();
    char errstr[256];
    struct mq_kafka_server_conf conf;
    mq_kafka_server_conf_defaults(&conf);
    struct mq_kafka_server *other = NULL;
    /* The port is taken by the fixture's server. */
    conf.port = port;
    CU_ASSERT_EQUAL(mq_kafka_server_start(store, &conf, &other, errstr, sizeof errstr), MQ_ERR_BUSY);
    CU_ASSERT_PTR_NULL(other);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "in use"));
    mq_kafka_server_conf_defaults(&conf);
    conf.max_request_bytes = 4;
    CU_ASSERT_EQUAL(mq_kafka_server_start(store, &conf, &other, errstr, sizeof errstr), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_kafka_server_start(NULL, NULL, &other, errstr, sizeof errstr), MQ_ERR_INVAL);
    /* A host name works as the listen address; the advertised host defaults to it. */
    mq_kafka_server_conf_defaults(&conf);
    conf.port = 0;
    conf.listen_host = "localhost";
    CU_ASSERT_EQUAL(mq_kafka_server_start(store, &conf, &other, errstr, sizeof errstr), MQ_OK);
    mq_kafka_server_stop(other);
    mq_kafka_server_stop(NULL);
    /* Several listeners: each bound to its own port; a TLS listener whose files do not load fails the start
     * with the file named, and nothing stays open. */
    const char *src = getenv("MQ_SOURCE_DIR");
    char cert[PATH_MAX], key[PATH_MAX], missing[PATH_MAX];
    snprintf(cert, sizeof cert, "%s/tests/data/config/tls/server.pem", src ? src : ".");
    snprintf(key, sizeof key, "%s/tests/data/config/tls/server.key", src ? src : ".");
    snprintf(missing, sizeof missing, "%s/tests/data/config/tls/missing.pem", src ? src : ".");
    struct mq_kafka_listener_conf lc[2] = {
        {.listen_host = "127.0.0.1", .port = 0},
        {.listen_host = "127.0.0.1", .port = 0, .tls = {.cert = cert, .key = key}},
    };
    mq_kafka_server_conf_defaults(&conf);
    conf.listeners = lc;
    conf.n_listeners = 2;
    CU_ASSERT_EQUAL_FATAL(mq_kafka_server_start(store, &conf, &other, errstr, sizeof errstr), MQ_OK);
    int p0 = mq_kafka_server_listener_port(other, 0), p1 = mq_kafka_server_listener_port(other, 1);
    CU_ASSERT(p0 > 0 && p1 > 0 && p0 != p1);
    CU_ASSERT_EQUAL(mq_kafka_server_port(other), p0);
    CU_ASSERT_EQUAL(mq_kafka_server_listener_port(other, 2), -1);
    mq_kafka_server_stop(other);
    lc[1].tls.cert = missing;
    other = NULL;
    CU_ASSERT_EQUAL(mq_kafka_server_start(store, &conf, &other, errstr, sizeof errstr), MQ_ERR_IO);
    CU_ASSERT_PTR_NULL(other);
    CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "missing.pem"));
    conf.listeners = NULL;
    CU_ASSERT_EQUAL(mq_kafka_server_start(store, &conf, &other, errstr, sizeof errstr), MQ_ERR_INVAL);
    fixture_down();
}

/* ---- authorization ---- */

/* Metadata v1 for the topics named (NULL: all): the names and errors of the topics answered. */
static int metadata_v1(int fd, int32_t corr, const char *named, char names[][16], int16_t *errors, int max)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_array(&body, named ? 1 : -1);
    if (named)
        mq_kafka_wr_string(&body, named);
    cli_send(fd, 3, 1, corr, &body);
    mq_kafka_wr_free(&body);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    int32_t nb = mq_kafka_rd_array(&rd, 1, false);
    for (int32_t i = 0; i < nb; i++) {
        (void)mq_kafka_rd_i32(&rd);
        (void)mq_kafka_rd_string(&rd);
        (void)mq_kafka_rd_i32(&rd);
        (void)mq_kafka_rd_nstring(&rd);
    }
    (void)mq_kafka_rd_i32(&rd); /* controller */
    int32_t nt = mq_kafka_rd_array(&rd, 1, false);
    CU_ASSERT_FATAL(nt >= 0 && nt <= max);
    for (int32_t t = 0; t < nt; t++) {
        errors[t] = mq_kafka_rd_i16(&rd);
        CU_ASSERT_TRUE(mq_kafka_str_copy(mq_kafka_rd_string(&rd), names[t], 16));
        (void)mq_kafka_rd_bool(&rd);
        int32_t np = mq_kafka_rd_array(&rd, 1, false);
        for (int32_t p = 0; p < np; p++) {
            (void)mq_kafka_rd_i16(&rd);
            (void)mq_kafka_rd_i32(&rd);
            (void)mq_kafka_rd_i32(&rd);
            for (int k = 0; k < 2; k++) {
                int32_t nr = mq_kafka_rd_array(&rd, 4, false);
                for (int32_t x = 0; x < nr; x++)
                    (void)mq_kafka_rd_i32(&rd);
            }
        }
    }
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    free(b);
    return nt;
}

static int16_t fetch_error(int fd, int32_t corr, const char *topic)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    fetch_body(&body, 4, topic, 0, 0, 0, 1, 1 << 20, 1 << 20);
    cli_send(fd, 1, 4, corr, &body);
    mq_kafka_wr_free(&body);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct fetched f;
    parse_fetch(b, len, 4, &f);
    free(b);
    return f.error;
}

/* OffsetCommit v2 of offset 1 for topic/0 in group: the partition's error. */
static int16_t commit_error(int fd, int32_t corr, const char *group, const char *topic)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_string(&body, group);
    mq_kafka_wr_i32(&body, -1);
    mq_kafka_wr_string(&body, "");
    mq_kafka_wr_i64(&body, -1);
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_string(&body, topic);
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_i32(&body, 0);
    mq_kafka_wr_i64(&body, 1);
    mq_kafka_wr_string(&body, NULL);
    cli_send(fd, 8, 2, corr, &body);
    mq_kafka_wr_free(&body);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    (void)mq_kafka_rd_string(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    (void)mq_kafka_rd_i32(&rd);
    int16_t e = mq_kafka_rd_i16(&rd);
    free(b);
    return e;
}

static int16_t find_coordinator_error(int fd, int32_t corr, const char *group)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_string(&body, group);
    mq_kafka_wr_i8(&body, 0);
    cli_send(fd, 10, 1, corr, &body);
    mq_kafka_wr_free(&body);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int16_t e = (int16_t)mq_be16_get(b + 4);
    free(b);
    return e;
}

/* ListGroups v0: the groups listed, comma-separated into out. */
static void list_groups(int fd, int32_t corr, char *out, size_t size)
{
    cli_send(fd, 16, 0, corr, NULL);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    CU_ASSERT_EQUAL(mq_kafka_rd_i16(&rd), MQ_KC_NONE);
    int32_t n = mq_kafka_rd_array(&rd, 1, false);
    out[0] = '\0';
    for (int32_t i = 0; i < n; i++) {
        char id[64];
        CU_ASSERT_TRUE(mq_kafka_str_copy(mq_kafka_rd_string(&rd), id, sizeof id));
        (void)mq_kafka_rd_string(&rd);
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", id);
    }
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    free(b);
}

/* DescribeGroups v0 (key 15) or DeleteGroups v0 (key 42) of one group: its error. */
static int16_t group_admin_error(int fd, int16_t key, int32_t corr, const char *group)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_string(&body, group);
    cli_send(fd, key, 0, corr, &body);
    mq_kafka_wr_free(&body);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    if (key == 42)
        (void)mq_kafka_rd_i32(&rd); /* throttle */
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    if (key == 42)
        (void)mq_kafka_rd_string(&rd);
    int16_t e = mq_kafka_rd_i16(&rd);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    free(b);
    return e;
}

/* DescribeConfigs v0 of a topic: its error. */
static int16_t describe_configs_error(int fd, int32_t corr, const char *topic)
{
    struct mq_kafka_wr body;
    mq_kafka_wr_init(&body);
    mq_kafka_wr_array(&body, 1);
    mq_kafka_wr_i8(&body, 2); /* topic */
    mq_kafka_wr_string(&body, topic);
    mq_kafka_wr_array(&body, -1);
    cli_send(fd, 32, 0, corr, &body);
    mq_kafka_wr_free(&body);
    size_t len;
    uint8_t *b = cli_recv(fd, corr, &len, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct mq_kafka_rd rd;
    mq_kafka_rd_init(&rd, b, len);
    (void)mq_kafka_rd_i32(&rd);
    CU_ASSERT_EQUAL(mq_kafka_rd_array(&rd, 1, false), 1);
    int16_t e = mq_kafka_rd_i16(&rd);
    CU_ASSERT_TRUE(mq_kafka_rd_ok(&rd));
    free(b);
    return e;
}

/* A plaintext client is User:ANONYMOUS: rules for it (and for User:*) decide what it sees and reads. */
static void test_acls(void)
{
    fixture_up();
    char errstr[256];
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_create(store, "t3", 1, NULL, errstr, sizeof errstr), MQ_OK);
    append("t1", 0, "a", 2, 1000);
    const struct mq_acl_rule rules[] = {
        {MQ_ACL_ANONYMOUS, MQ_ACL_TOPIC, "t1", MQ_ACL_READ},
        {MQ_ACL_ANONYMOUS, MQ_ACL_TOPIC, "t2", MQ_ACL_DESCRIBE},
        {MQ_ACL_ANYONE, MQ_ACL_GROUP, "ok-*", MQ_ACL_READ},
        {"User:someone-else", MQ_ACL_TOPIC, "*", MQ_ACL_READ},
    };
    struct mq_acl *acl = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_acl_new(rules, sizeof rules / sizeof rules[0], &acl), MQ_OK);
    int fd = cli_connect();
    CU_ASSERT_EQUAL(commit_error(fd, 1, "hidden-1", "t1"), MQ_KC_NONE); /* a group stored before the rules */
    /* Set on a running server: it applies to the next request, on this open connection too. */
    mq_kafka_server_set_acl(srv, acl);
    char names[4][16];
    int16_t errors[4];
    CU_ASSERT_EQUAL_FATAL(metadata_v1(fd, 1, NULL, names, errors, 4), 2); /* t3 is left out */
    CU_ASSERT_STRING_EQUAL(names[0], "t1");
    CU_ASSERT_STRING_EQUAL(names[1], "t2");
    CU_ASSERT_EQUAL_FATAL(metadata_v1(fd, 2, "t3", names, errors, 4), 1);
    CU_ASSERT_EQUAL(errors[0], MQ_KC_UNKNOWN_TOPIC_OR_PARTITION); /* as if it did not exist */
    CU_ASSERT_EQUAL(fetch_error(fd, 3, "t1"), MQ_KC_NONE);
    CU_ASSERT_EQUAL(fetch_error(fd, 4, "t2"), MQ_KC_TOPIC_AUTHORIZATION_FAILED); /* seen, not readable */
    CU_ASSERT_EQUAL(fetch_error(fd, 5, "t3"), MQ_KC_UNKNOWN_TOPIC_OR_PARTITION);
    CU_ASSERT_EQUAL(commit_error(fd, 6, "grp", "t1"), MQ_KC_GROUP_AUTHORIZATION_FAILED);
    CU_ASSERT_EQUAL(commit_error(fd, 7, "ok-1", "t1"), MQ_KC_NONE);
    CU_ASSERT_EQUAL(commit_error(fd, 8, "ok-1", "t2"), MQ_KC_TOPIC_AUTHORIZATION_FAILED);
    CU_ASSERT_EQUAL(commit_error(fd, 9, "ok-1", "t3"), MQ_KC_UNKNOWN_TOPIC_OR_PARTITION);
    CU_ASSERT_EQUAL(find_coordinator_error(fd, 10, "grp"), MQ_KC_GROUP_AUTHORIZATION_FAILED);
    CU_ASSERT_EQUAL(find_coordinator_error(fd, 11, "ok-2"), MQ_KC_NONE);
    struct joined j = {0};
    join_group(fd, 12, ""); /* group "grp" */
    CU_ASSERT_FATAL(read_join(fd, 12, &j, 5000));
    CU_ASSERT_EQUAL(j.error, MQ_KC_GROUP_AUTHORIZATION_FAILED);
    CU_ASSERT_EQUAL(simple(fd, 12, 1, 13, &j), MQ_KC_GROUP_AUTHORIZATION_FAILED); /* Heartbeat */
    char groups[256];
    list_groups(fd, 14, groups, sizeof groups);
    CU_ASSERT_STRING_EQUAL(groups, "ok-1"); /* hidden-1 is left out */
    CU_ASSERT_EQUAL(group_admin_error(fd, 15, 15, "ok-1"), MQ_KC_NONE);
    CU_ASSERT_EQUAL(group_admin_error(fd, 15, 16, "hidden-1"), MQ_KC_GROUP_AUTHORIZATION_FAILED);
    CU_ASSERT_EQUAL(group_admin_error(fd, 42, 17, "ok-1"), MQ_KC_GROUP_AUTHORIZATION_FAILED); /* no delete */
    CU_ASSERT_EQUAL(describe_configs_error(fd, 18, "t2"), MQ_KC_NONE); /* describe implies it */
    CU_ASSERT_EQUAL(describe_configs_error(fd, 19, "t3"), MQ_KC_UNKNOWN_TOPIC_OR_PARTITION);
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    CU_ASSERT_EQUAL(st.denied, 12);
    /* Rules removed: everything is served again. */
    mq_kafka_server_set_acl(srv, NULL);
    CU_ASSERT_EQUAL_FATAL(metadata_v1(fd, 20, NULL, names, errors, 4), 3);
    CU_ASSERT_EQUAL(fetch_error(fd, 21, "t2"), MQ_KC_NONE);
    close(fd);
    fixture_down();
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_api_versions),
        MQ_TEST(test_api_table),
        MQ_TEST(test_metadata_and_offsets),
        MQ_TEST(test_fetch),
        MQ_TEST(test_long_poll),
        MQ_TEST(test_pipelining_and_produce),
        MQ_TEST(test_bad_requests),
        MQ_TEST(test_groups_and_offsets),
        MQ_TEST(test_many_connections),
        MQ_TEST(test_idle_timeout),
        MQ_TEST(test_read_only_store),
        MQ_TEST(test_start_errors),
        MQ_TEST(test_stop_during_durable_calls),
        MQ_TEST(test_acls),
        MQ_TEST_END,
    };
    return mq_test_run("kafka_server", tests);
}
