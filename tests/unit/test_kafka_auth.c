/*
 * test_kafka_auth.c - the Kafka endpoint's SASL gate (kafka/auth.c) over real loopback sockets, with a client
 * written here from Kafka's message definitions: one authentication attempt per connection on both paths
 * (SaslAuthenticate after SaslHandshake v1, bare tokens after v0) even when more are pipelined, PLAIN's
 * PBKDF2 memo across connections and a user changed beside the running server, a second SaslHandshake
 * during and after authentication (as Kafka's SaslServerAuthenticator and KafkaApis answer it), and the
 * rate limit of the failure log lines.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "kafka/proto.h"
#include "kafka/server.h"
#include "kafka/wire.h"
#include "sasl/sasl.h"
#include "store/store.h"
#include "testutil.h"
#include "util/diag.h"
#include "util/parse.h"

/* ---- fixture: a store with topic t1, user bob, and a server that wants PLAIN or SCRAM-SHA-256 ---- */

static char *dir;
static struct mq_store *store;
static struct mq_kafka_server *srv;
static int port;

/* Sets bob's one credential (SCRAM-SHA-256) to password with a salt of `salt_byte` bytes. */
static void set_bob(const char *password, uint8_t salt_byte)
{
    uint8_t salt[16];
    memset(salt, salt_byte, sizeof salt);
    struct mq_catalog_user u;
    memset(&u, 0, sizeof u);
    CU_ASSERT_EQUAL_FATAL(mq_sasl_scram_derive(MQ_SASL_SCRAM_SHA_256, password, strlen(password), salt,
                                               sizeof salt, MQ_SCRAM_ITERATIONS_MIN, &u),
                          MQ_OK);
    snprintf(u.name, sizeof u.name, "bob");
    CU_ASSERT_EQUAL_FATAL(mq_catalog_user_set(mq_store_catalog(store), "bob", &u, 1, NULL), MQ_OK);
}

static void fixture_up(void)
{
    dir = mq_test_tmpdir("kafka-auth");
    char errstr[256];
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    CU_ASSERT_EQUAL_FATAL(mq_store_open(dir, MQ_STORE_WRITE, &lc, &store, errstr, sizeof errstr), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_store_topic_create(store, "t1", 1, NULL, errstr, sizeof errstr), MQ_OK);
    set_bob("hunter2", 1);
    struct mq_kafka_server_conf conf;
    mq_kafka_server_conf_defaults(&conf);
    conf.port = 0;
    conf.sasl_mechanisms = 1u << MQ_SASL_PLAIN | 1u << MQ_SASL_SCRAM_SHA_256;
    enum mq_err err = mq_kafka_server_start(store, &conf, &srv, errstr, sizeof errstr);
    if (err != MQ_OK)
        fprintf(stderr, "server: %s\n", errstr);
    CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    port = mq_kafka_server_port(srv);
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

static struct mq_kafka_server_stats stats(void)
{
    struct mq_kafka_server_stats st;
    mq_kafka_server_stats(srv, &st);
    return st;
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

/* Appends a request frame (header v1) of key/ver around body[0..len) to out. */
static void req(struct mq_kafka_wr *out, int16_t key, int16_t ver, int32_t corr, const void *body, size_t len)
{
    size_t pos = mq_kafka_wr_reserve_i32(out);
    mq_kafka_wr_i16(out, key);
    mq_kafka_wr_i16(out, ver);
    mq_kafka_wr_i32(out, corr);
    mq_kafka_wr_string(out, "auth-test");
    if (len)
        mq_kafka_wr_raw(out, body, len);
    mq_kafka_wr_patch_i32(out, pos, (int32_t)(out->len - pos - 4));
}

/* Appends SaslHandshake vN for mechanism. */
static void handshake(struct mq_kafka_wr *out, int16_t ver, int32_t corr, const char *mechanism)
{
    struct mq_kafka_wr b;
    mq_kafka_wr_init(&b);
    mq_kafka_wr_string(&b, mechanism);
    req(out, MQ_KAPI_SASL_HANDSHAKE, ver, corr, b.buf, b.len);
    mq_kafka_wr_free(&b);
}

/* PLAIN's token for user and password into buf; its length. */
static size_t plain_token(char *buf, size_t size, const char *user, const char *password)
{
    int n = snprintf(buf, size, "%c%s%c%s", 0, user, 0, password);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < size);
    return (size_t)n;
}

/* Appends SaslAuthenticate v1 carrying PLAIN's token for user and password. */
static void authenticate(struct mq_kafka_wr *out, int32_t corr, const char *user, const char *password)
{
    char tok[128];
    size_t n = plain_token(tok, sizeof tok, user, password);
    struct mq_kafka_wr b;
    mq_kafka_wr_init(&b);
    mq_kafka_wr_bytes(&b, tok, (int32_t)n);
    req(out, MQ_KAPI_SASL_AUTHENTICATE, 1, corr, b.buf, b.len);
    mq_kafka_wr_free(&b);
}

/* Appends a bare PLAIN token (after SaslHandshake v0): a size prefix and the bytes. */
static void raw_token(struct mq_kafka_wr *out, const char *user, const char *password)
{
    char tok[128];
    size_t n = plain_token(tok, sizeof tok, user, password);
    mq_kafka_wr_i32(out, (int32_t)n);
    mq_kafka_wr_raw(out, tok, n);
}

static void send_wr(int fd, struct mq_kafka_wr *w)
{
    send_all(fd, w->buf, w->len);
    mq_kafka_wr_free(w);
    mq_kafka_wr_init(w);
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

/* One response to corr: the error code its body starts with (every SASL response and ApiVersions do), -1
 * when none came; *mechs (when not NULL) gets a SaslHandshake answer's count of mechanisms. */
static int cli_error(int fd, int32_t corr, int32_t *mechs)
{
    int64_t deadline = mq_mono_ms() + 10000;
    uint8_t pre[4];
    if (!recv_exact(fd, pre, 4, deadline))
        return -1;
    uint32_t size = mq_be32_get(pre);
    CU_ASSERT_FATAL(size >= 6 && size < 1024 * 1024);
    uint8_t *b = malloc(size);
    CU_ASSERT_FATAL(b != NULL);
    bool ok = recv_exact(fd, b, size, deadline);
    CU_ASSERT_FATAL(ok);
    CU_ASSERT_EQUAL((int32_t)mq_be32_get(b), corr);
    int err = (int16_t)mq_be16_get(b + 4);
    if (mechs) {
        CU_ASSERT_FATAL(size >= 10);
        *mechs = (int32_t)mq_be32_get(b + 6);
    }
    free(b);
    return err;
}

/* True when the server closed fd by the deadline without sending anything more. */
static bool closed_silently(int fd)
{
    int64_t deadline = mq_mono_ms() + 10000;
    uint8_t buf[64];
    for (;;) {
        int64_t left = deadline - mq_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0 || (r < 0 && errno == ECONNRESET);
    }
}

/* A whole PLAIN login over SaslHandshake v1 on a new connection: the SaslAuthenticate error code; the
 * connection is returned open in *fdp (when not NULL), else closed. */
static int login(const char *user, const char *password, int *fdp)
{
    int fd = cli_connect();
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    handshake(&w, 1, 1, "PLAIN");
    authenticate(&w, 2, user, password);
    send_wr(fd, &w);
    mq_kafka_wr_free(&w);
    CU_ASSERT_EQUAL(cli_error(fd, 1, NULL), 0);
    int err = cli_error(fd, 2, NULL);
    if (fdp)
        *fdp = fd;
    else
        close(fd);
    return err;
}

/* ---- tests ---- */

/* A failed SaslAuthenticate closes the connection: the attempts pipelined behind it are never run (the
 * right password among them would have passed), so a connection costs at most one PBKDF2. */
static void test_one_attempt_v1(void)
{
    fixture_up();
    struct mq_kafka_server_stats st0 = stats();
    int fd = cli_connect();
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    handshake(&w, 1, 1, "PLAIN");
    authenticate(&w, 2, "bob", "guess1");
    authenticate(&w, 3, "bob", "guess2");
    authenticate(&w, 4, "bob", "hunter2");
    send_wr(fd, &w);
    mq_kafka_wr_free(&w);
    CU_ASSERT_EQUAL(cli_error(fd, 1, NULL), 0);
    CU_ASSERT_EQUAL(cli_error(fd, 2, NULL), MQ_KC_SASL_AUTHENTICATION_FAILED);
    CU_ASSERT(closed_silently(fd));
    close(fd);
    struct mq_kafka_server_stats st = stats();
    CU_ASSERT_EQUAL(st.auth_failed - st0.auth_failed, 1);
    CU_ASSERT_EQUAL(st.auth_derived - st0.auth_derived, 1);
    fixture_down();
}

/* After SaslHandshake v0 the tokens come bare: a wrong one closes the connection at once, unanswered, and
 * the tokens behind it are never run either. */
static void test_one_attempt_v0(void)
{
    fixture_up();
    struct mq_kafka_server_stats st0 = stats();
    int fd = cli_connect();
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    handshake(&w, 0, 1, "PLAIN");
    raw_token(&w, "bob", "guess1");
    raw_token(&w, "bob", "guess2");
    raw_token(&w, "bob", "hunter2");
    send_wr(fd, &w);
    mq_kafka_wr_free(&w);
    CU_ASSERT_EQUAL(cli_error(fd, 1, NULL), 0);
    CU_ASSERT(closed_silently(fd));
    close(fd);
    struct mq_kafka_server_stats st = stats();
    CU_ASSERT_EQUAL(st.auth_failed - st0.auth_failed, 1);
    CU_ASSERT_EQUAL(st.auth_derived - st0.auth_derived, 1);

    /* The right token alone is answered (an empty token) and the connection serves on. */
    fd = cli_connect();
    mq_kafka_wr_init(&w);
    handshake(&w, 0, 1, "PLAIN");
    raw_token(&w, "bob", "hunter2");
    req(&w, MQ_KAPI_API_VERSIONS, 0, 2, NULL, 0);
    send_wr(fd, &w);
    mq_kafka_wr_free(&w);
    CU_ASSERT_EQUAL(cli_error(fd, 1, NULL), 0);
    uint8_t empty[4];
    CU_ASSERT(recv_exact(fd, empty, 4, mq_mono_ms() + 10000) && mq_be32_get(empty) == 0);
    CU_ASSERT_EQUAL(cli_error(fd, 2, NULL), 0);
    close(fd);
    fixture_down();
}

/* PLAIN logins run PBKDF2 once per (user, password, credential): the next connections are answered from
 * the memo. A password changed beside the running server applies to the next login, both ways. */
static void test_memo(void)
{
    fixture_up();
    struct mq_kafka_server_stats st0 = stats();
    CU_ASSERT_EQUAL(login("bob", "hunter2", NULL), 0);
    CU_ASSERT_EQUAL(login("bob", "hunter2", NULL), 0);
    CU_ASSERT_EQUAL(login("bob", "hunter2", NULL), 0);
    CU_ASSERT_EQUAL(login("bob", "nope", NULL), MQ_KC_SASL_AUTHENTICATION_FAILED);
    CU_ASSERT_EQUAL(login("bob", "nope", NULL), MQ_KC_SASL_AUTHENTICATION_FAILED);
    struct mq_kafka_server_stats st = stats();
    CU_ASSERT_EQUAL(st.auth_derived - st0.auth_derived, 2);
    CU_ASSERT_EQUAL(st.auth_cached - st0.auth_cached, 3);

    set_bob("correct horse", 2); /* as `mqlog user add` beside mqlogd: a new salt and keys */
    CU_ASSERT_EQUAL(login("bob", "hunter2", NULL), MQ_KC_SASL_AUTHENTICATION_FAILED);
    CU_ASSERT_EQUAL(login("bob", "correct horse", NULL), 0);
    CU_ASSERT_EQUAL(login("bob", "correct horse", NULL), 0);
    CU_ASSERT_EQUAL(mq_catalog_user_delete(mq_store_catalog(store), "bob"), MQ_OK);
    CU_ASSERT_EQUAL(login("bob", "correct horse", NULL), MQ_KC_SASL_AUTHENTICATION_FAILED);
    fixture_down();
}

/* A second SaslHandshake: in the middle of an exchange Kafka's SaslServerAuthenticator answers
 * ILLEGAL_SASL_STATE and fails the authentication (the connection closes); once authenticated, KafkaApis
 * answers ILLEGAL_SASL_STATE with no mechanisms and the connection goes on. */
static void test_second_handshake(void)
{
    fixture_up();
    struct mq_kafka_server_stats st0 = stats();
    int fd = cli_connect();
    struct mq_kafka_wr w;
    mq_kafka_wr_init(&w);
    handshake(&w, 1, 1, "SCRAM-SHA-256");
    handshake(&w, 1, 2, "PLAIN");
    authenticate(&w, 3, "bob", "hunter2");
    send_wr(fd, &w);
    int32_t mechs = -1;
    CU_ASSERT_EQUAL(cli_error(fd, 1, &mechs), 0);
    CU_ASSERT_EQUAL(mechs, 2);
    CU_ASSERT_EQUAL(cli_error(fd, 2, &mechs), MQ_KC_ILLEGAL_SASL_STATE);
    CU_ASSERT_EQUAL(mechs, 0);
    CU_ASSERT(closed_silently(fd));
    close(fd);
    CU_ASSERT_EQUAL(stats().auth_failed - st0.auth_failed, 1);

    CU_ASSERT_EQUAL_FATAL(login("bob", "hunter2", &fd), 0);
    handshake(&w, 1, 3, "PLAIN");
    struct mq_kafka_wr md;
    mq_kafka_wr_init(&md);
    mq_kafka_wr_array(&md, 0); /* Metadata v1, no topics: the brokers */
    req(&w, MQ_KAPI_METADATA, 1, 4, md.buf, md.len);
    mq_kafka_wr_free(&md);
    authenticate(&w, 5, "bob", "hunter2");
    req(&w, MQ_KAPI_API_VERSIONS, 0, 6, NULL, 0);
    send_wr(fd, &w);
    mq_kafka_wr_free(&w);
    CU_ASSERT_EQUAL(cli_error(fd, 3, &mechs), MQ_KC_ILLEGAL_SASL_STATE);
    CU_ASSERT_EQUAL(mechs, 0);
    uint8_t pre[4], body[512];
    CU_ASSERT_FATAL(recv_exact(fd, pre, 4, mq_mono_ms() + 10000));
    uint32_t size = mq_be32_get(pre);
    CU_ASSERT_FATAL(size >= 4 && size <= sizeof body && recv_exact(fd, body, size, mq_mono_ms() + 10000));
    CU_ASSERT_EQUAL((int32_t)mq_be32_get(body), 4); /* the Metadata answer: still served */
    CU_ASSERT_EQUAL(cli_error(fd, 5, NULL), MQ_KC_ILLEGAL_SASL_STATE);
    CU_ASSERT_EQUAL(cli_error(fd, 6, NULL), 0);
    close(fd);
    CU_ASSERT_EQUAL(stats().auth_failed - st0.auth_failed, 1);
    fixture_down();
}

/* Runs fn with stderr going to a file; the number of lines holding `what`. */
static int count_logged(void (*fn)(void), const char *what)
{
    char path[] = "/tmp/mqlog-stderr-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    int n = 0;
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char line[1024];
    while (fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    fclose(f);
    unlink(path);
    return n;
}

static int64_t failures_started;

static void five_failures(void)
{
    failures_started = mq_mono_ms();
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(login("bob", "wrong", NULL), MQ_KC_SASL_AUTHENTICATION_FAILED);
}

/* Failures are counted each, but logged (at info) once per MQ_KSRV_RATELOG_MS (10 s), the rest summed up in
 * a later line; the debug level has each. */
static void test_log_rate_limited(void)
{
    fixture_up();
    struct mq_kafka_server_stats st0 = stats();
    int logged = count_logged(five_failures, "PLAIN authentication failed: user bob: wrong password");
    if (mq_mono_ms() - failures_started < 9000) /* all five within one rate-limit window */
        CU_ASSERT_EQUAL(logged, 1);
    CU_ASSERT_EQUAL(stats().auth_failed - st0.auth_failed, 5);
    fixture_down();
    /* The level is set while no server thread runs: the loop reads it unlocked. */
    int level = mq_diag_level;
    mq_diag_level = MQ_LV_DEBUG;
    fixture_up();
    logged = count_logged(five_failures, "PLAIN authentication failed: user bob: wrong password");
    fixture_down();
    mq_diag_level = level;
    CU_ASSERT(logged >= 5);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_one_attempt_v1),   MQ_TEST(test_one_attempt_v0),   MQ_TEST(test_memo),
        MQ_TEST(test_second_handshake), MQ_TEST(test_log_rate_limited), MQ_TEST_END,
    };
    return mq_test_run("kafka_auth", tests);
}
