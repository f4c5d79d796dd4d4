/*
 * test_sasl.c - unit tests of the SASL mechanisms (gateway/sasl/): the RFC 7677 SCRAM-SHA-256 example
 * exchange byte for byte, a SCRAM-SHA-512 round trip against a client written here on OpenSSL, PLAIN,
 * wrong passwords, unknown users (the same salt every time, failure only at the proof), malformed
 * messages of every part, and PLAIN's memo of PBKDF2 (hits, invalidation when a user changes, bounds, age).
 */
#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl/sasl.h"
#include "testutil.h"
#include "util/parse.h" /* mq_mono_ms */

/* ---- a user table and the lookup over it ---- */

static struct mq_catalog_user users[4];
static size_t nusers;
static enum mq_err lookup_err = MQ_OK; /* when not MQ_OK, every lookup fails with it */

static enum mq_err lookup(void *opaque, const char *user, const char *mechanism, struct mq_catalog_user *cred)
{
    (void)opaque;
    if (lookup_err != MQ_OK)
        return lookup_err;
    for (size_t i = 0; i < nusers; i++)
        if (strcmp(users[i].name, user) == 0 && strcmp(users[i].mechanism, mechanism) == 0) {
            *cred = users[i];
            return MQ_OK;
        }
    return MQ_ERR_NOENT;
}

static void add_user(const char *name, enum mq_sasl_mech mech, const char *password, const uint8_t *salt,
                     size_t salt_len)
{
    struct mq_catalog_user *u = &users[nusers++];
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    CU_ASSERT_EQUAL_FATAL(mq_sasl_scram_derive(mech, password, strlen(password), salt, salt_len, 4096, u),
                          MQ_OK);
}

static const char *fixed_nonce;

static size_t nonce(void *opaque, char *buf, size_t cap)
{
    (void)opaque;
    size_t n = strlen(fixed_nonce);
    CU_ASSERT_FATAL(n <= cap);
    memcpy(buf, fixed_nonce, n);
    return n;
}

static struct mq_sasl *start(enum mq_sasl_mech mech, bool fixed)
{
    struct mq_sasl_conf conf = {.lookup = lookup, .nonce = fixed ? nonce : NULL};
    struct mq_sasl *s = mq_sasl_new(mech, &conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    return s;
}

/* One step with a text token; *answer (when not NULL) gets a malloc'd copy of the answer. */
static enum mq_sasl_status step(struct mq_sasl *s, const char *msg, char **answer)
{
    const uint8_t *out = NULL;
    size_t out_len = 0;
    enum mq_sasl_status st = mq_sasl_step(s, (const uint8_t *)msg, strlen(msg), &out, &out_len);
    if (answer) {
        *answer = malloc(out_len + 1);
        memcpy(*answer, out ? out : (const uint8_t *)"", out_len);
        (*answer)[out_len] = 0;
    }
    return st;
}

static void reset_users(void)
{
    nusers = 0;
    lookup_err = MQ_OK;
    fixed_nonce = NULL;
}

/* ---- RFC 7677 section 3 ---- */

static void test_rfc7677(void)
{
    reset_users();
    uint8_t salt[16];
    CU_ASSERT_EQUAL_FATAL(EVP_DecodeBlock(salt, (const unsigned char *)"W22ZaJ0SNY7soEsUEjb6gQ==", 24), 18);
    add_user("user", MQ_SASL_SCRAM_SHA_256, "pencil", salt, 16);
    fixed_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    struct mq_sasl *s = start(MQ_SASL_SCRAM_SHA_256, true);
    char *answer = NULL;
    CU_ASSERT_EQUAL(step(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &answer), MQ_SASL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(
        answer, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    free(answer);
    CU_ASSERT_PTR_NULL(mq_sasl_user(s));
    CU_ASSERT_EQUAL(step(s,
                         "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                         &answer),
                    MQ_SASL_DONE);
    CU_ASSERT_STRING_EQUAL(answer, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    free(answer);
    CU_ASSERT_STRING_EQUAL(mq_sasl_user(s), "user");
    CU_ASSERT_STRING_EQUAL(mq_sasl_reason(s), "");
    /* Over: a further token fails. */
    CU_ASSERT_EQUAL(step(s, "c=biws", NULL), MQ_SASL_FAIL);
    mq_sasl_free(s);

    /* The same exchange with the proof of another password fails, naming the cause for the log. */
    s = start(MQ_SASL_SCRAM_SHA_256, true);
    CU_ASSERT_EQUAL(step(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", NULL), MQ_SASL_CONTINUE);
    CU_ASSERT_EQUAL(step(s,
                         "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVM=",
                         NULL),
                    MQ_SASL_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(mq_sasl_reason(s), "wrong password"));
    CU_ASSERT_PTR_NULL(mq_sasl_user(s));
    mq_sasl_free(s);
}

/* ---- a SCRAM client, for the round trips ---- */

static const char *b64(const uint8_t *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* Runs a whole exchange as client `user` with password for mech on s; returns the last status. The server
 * signature is checked when it succeeds. */
static bool librdkafka_nonce; /* send the client nonce again before the full one, as librdkafka 2.0 does */

static enum mq_sasl_status scram_client(struct mq_sasl *s, enum mq_sasl_mech mech, const char *gs2,
                                        const char *user, const char *password)
{
    const EVP_MD *md = mech == MQ_SASL_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
    size_t klen = (size_t)EVP_MD_size(md);
    char first[512], *sfirst = NULL;
    snprintf(first, sizeof first, "%sn=%s,r=fyko+d2lbbFgONRv9qkxdawL", gs2, user);
    enum mq_sasl_status st = step(s, first, &sfirst);
    if (st != MQ_SASL_CONTINUE) {
        free(sfirst);
        return st;
    }
    /* r=NONCE,s=SALT,i=ITER */
    char nonce_s[256], salt64[128];
    int iter = 0;
    CU_ASSERT_EQUAL_FATAL(sscanf(sfirst, "r=%255[^,],s=%127[^,],i=%d", nonce_s, salt64, &iter), 3);
    CU_ASSERT(strncmp(nonce_s, "fyko+d2lbbFgONRv9qkxdawL", 24) == 0 && strlen(nonce_s) > 24);
    uint8_t salt[96];
    int slen = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    CU_ASSERT_FATAL(slen > 0);
    slen -= (int)(strchr(salt64, '=') ? strlen(strchr(salt64, '=')) : 0);

    uint8_t salted[64], ckey[64], skey[64], stored[64], csig[64], proof[64], ssig[64];
    unsigned int n;
    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, slen, iter, md, (int)klen, salted);
    HMAC(md, salted, (int)klen, (const unsigned char *)"Client Key", 10, ckey, &n);
    HMAC(md, salted, (int)klen, (const unsigned char *)"Server Key", 10, skey, &n);
    EVP_Digest(ckey, klen, stored, &n, md, NULL);
    char cbind[64], without[512], auth[2048], p64[128], final[1024], *sfinal = NULL;
    snprintf(without, sizeof without, "c=%s,r=%s%s", b64((const uint8_t *)gs2, strlen(gs2), cbind),
             librdkafka_nonce ? "fyko+d2lbbFgONRv9qkxdawL" : "", nonce_s);
    snprintf(auth, sizeof auth, "%s,%s,%s", first + strlen(gs2), sfirst, without);
    HMAC(md, stored, (int)klen, (const unsigned char *)auth, strlen(auth), csig, &n);
    for (size_t i = 0; i < klen; i++)
        proof[i] = ckey[i] ^ csig[i];
    snprintf(final, sizeof final, "%s,p=%s", without, b64(proof, klen, p64));
    st = step(s, final, &sfinal);
    if (st == MQ_SASL_DONE) {
        HMAC(md, skey, (int)klen, (const unsigned char *)auth, strlen(auth), ssig, &n);
        char v[160], v64[128];
        snprintf(v, sizeof v, "v=%s", b64(ssig, klen, v64));
        CU_ASSERT_STRING_EQUAL(sfinal, v);
    }
    free(sfirst);
    free(sfinal);
    return st;
}

static void test_scram_512(void)
{
    reset_users();
    uint8_t salt[24];
    CU_ASSERT_EQUAL_FATAL(mq_sasl_random(salt, sizeof salt), MQ_OK);
    add_user("alice,=x", MQ_SASL_SCRAM_SHA_512, "s3cret", salt, sizeof salt);
    add_user("bob", MQ_SASL_SCRAM_SHA_256, "hunter2", salt, sizeof salt);

    struct mq_sasl *s = start(MQ_SASL_SCRAM_SHA_512, false);
    /* The name travels escaped (=2C, =3D); the 'y' flag (no channel binding) is accepted. */
    CU_ASSERT_EQUAL(scram_client(s, MQ_SASL_SCRAM_SHA_512, "y,,", "alice=2C=3Dx", "s3cret"), MQ_SASL_DONE);
    CU_ASSERT_STRING_EQUAL(mq_sasl_user(s), "alice,=x");
    mq_sasl_free(s);

    /* librdkafka's nonce (its own again, then the full one) is accepted, as Kafka accepts it. */
    librdkafka_nonce = true;
    s = start(MQ_SASL_SCRAM_SHA_512, false);
    CU_ASSERT_EQUAL(scram_client(s, MQ_SASL_SCRAM_SHA_512, "n,,", "alice=2C=3Dx", "s3cret"), MQ_SASL_DONE);
    mq_sasl_free(s);
    librdkafka_nonce = false;

    s = start(MQ_SASL_SCRAM_SHA_512, false);
    CU_ASSERT_EQUAL(scram_client(s, MQ_SASL_SCRAM_SHA_512, "n,,", "alice=2C=3Dx", "s3cret!"), MQ_SASL_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(mq_sasl_reason(s), "wrong password"));
    mq_sasl_free(s);

    /* An authorization id equal to the user is fine, another one is refused. */
    s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(scram_client(s, MQ_SASL_SCRAM_SHA_256, "n,a=bob,", "bob", "hunter2"), MQ_SASL_DONE);
    mq_sasl_free(s);
    s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(scram_client(s, MQ_SASL_SCRAM_SHA_256, "n,a=root,", "bob", "hunter2"), MQ_SASL_FAIL);
    mq_sasl_free(s);

    /* bob has no SCRAM-SHA-512 credential: to that mechanism he is unknown. */
    s = start(MQ_SASL_SCRAM_SHA_512, false);
    CU_ASSERT_EQUAL(scram_client(s, MQ_SASL_SCRAM_SHA_512, "n,,", "bob", "hunter2"), MQ_SASL_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(mq_sasl_reason(s), "unknown user"));
    mq_sasl_free(s);
}

/* An unknown user gets a server-first message like a real user's, with the same salt every time, and fails
 * only at the proof. */
static void test_unknown_user(void)
{
    reset_users();
    char *a1 = NULL, *a2 = NULL, *a3 = NULL;
    struct mq_sasl *s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(step(s, "n,,n=mallory,r=abcdef", &a1), MQ_SASL_CONTINUE);
    mq_sasl_free(s);
    s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(step(s, "n,,n=mallory,r=abcdef", &a2), MQ_SASL_CONTINUE);
    mq_sasl_free(s);
    s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(step(s, "n,,n=trudy,r=abcdef", &a3), MQ_SASL_CONTINUE);
    mq_sasl_free(s);
    CU_ASSERT_STRING_EQUAL(strstr(a1, ",s="), strstr(a2, ",s=")); /* the nonces differ, the salt does not */
    CU_ASSERT_STRING_NOT_EQUAL(strstr(a1, ",s="), strstr(a3, ",s="));
    CU_ASSERT_PTR_NOT_NULL(strstr(a1, ",i=4096"));
    /* The salt is as long as the ones mqlog user makes (24 bytes: 32 in base64). */
    CU_ASSERT_EQUAL(strstr(a1, ",i=") - strstr(a1, ",s=") - 3, 32);
    free(a1);
    free(a2);
    free(a3);

    s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(scram_client(s, MQ_SASL_SCRAM_SHA_256, "n,,", "mallory", "guess"), MQ_SASL_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(mq_sasl_reason(s), "unknown user mallory"));
    mq_sasl_free(s);

    /* A lookup that fails is the server's error, not the client's. */
    lookup_err = MQ_ERR_BUSY;
    s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(step(s, "n,,n=mallory,r=abcdef", NULL), MQ_SASL_ERROR);
    mq_sasl_free(s);
    s = start(MQ_SASL_PLAIN, false);
    CU_ASSERT_EQUAL(mq_sasl_step(s, (const uint8_t *)"\0u\0p", 4, &(const uint8_t *){NULL}, &(size_t){0}),
                    MQ_SASL_ERROR);
    mq_sasl_free(s);
}

static enum mq_sasl_status plain(const char *msg, size_t len, const char **user)
{
    struct mq_sasl *s = start(MQ_SASL_PLAIN, false);
    const uint8_t *out = NULL;
    size_t out_len = 99;
    enum mq_sasl_status st = mq_sasl_step(s, (const uint8_t *)msg, len, &out, &out_len);
    static char who[300];
    snprintf(who, sizeof who, "%s", mq_sasl_user(s) ? mq_sasl_user(s) : "");
    if (st == MQ_SASL_DONE)
        CU_ASSERT_EQUAL(out_len, 0);
    if (user)
        *user = who;
    mq_sasl_free(s);
    return st;
}

static void test_plain(void)
{
    reset_users();
    uint8_t salt[16] = {1, 2, 3};
    add_user("bob", MQ_SASL_SCRAM_SHA_256, "hunter2", salt, sizeof salt);
    add_user("carol", MQ_SASL_SCRAM_SHA_512, "p4ss", salt, sizeof salt); /* checked against SHA-512 */
    const char *who = NULL;
#define P(lit) lit, sizeof lit - 1
    CU_ASSERT_EQUAL(plain(P("\0bob\0hunter2"), &who), MQ_SASL_DONE);
    CU_ASSERT_STRING_EQUAL(who, "bob");
    CU_ASSERT_EQUAL(plain(P("bob\0bob\0hunter2"), &who), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(plain(P("\0carol\0p4ss"), &who), MQ_SASL_DONE);
    CU_ASSERT_STRING_EQUAL(who, "carol");
    CU_ASSERT_EQUAL(plain(P("\0bob\0hunter3"), &who), MQ_SASL_FAIL);
    CU_ASSERT_STRING_EQUAL(who, "");
    CU_ASSERT_EQUAL(plain(P("\0dave\0hunter2"), NULL), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(plain(P("root\0bob\0hunter2"), NULL), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(plain(P("\0bob\0"), NULL), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(plain(P("\0\0hunter2"), NULL), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(plain(P("bob\0hunter2"), NULL), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(plain(P("\0bob\0hunter2\0"), NULL), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(plain(P("\0b\nb\0hunter2"), NULL), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(plain(P(""), NULL), MQ_SASL_FAIL);
#undef P
}

/* Every malformed client-first and client-final message fails cleanly. */
static void test_malformed(void)
{
    reset_users();
    uint8_t salt[16] = {9};
    add_user("user", MQ_SASL_SCRAM_SHA_256, "pencil", salt, sizeof salt);
    static const char *const firsts[] = {
        "",
        "p=tls-server-end-point,,n=user,r=abc",
        "x,,n=user,r=abc",
        "n,n=user,r=abc",
        "n,,m=ext,n=user,r=abc",
        "n,,n=user",
        "n,,n=,r=abc",
        "n,,n=us=er,r=abc",
        "n,,n=us=2,r=abc",
        "n,,n=user,r=",
        "n,,n=user,r=a b",
        "n,,r=abc,n=user",
        "n,,n=user,r=abc,tokenauth=true",
        "n,a=us=Xer,,n=user,r=abc",
        "n,,n=user\x01,r=abc",
    };
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        struct mq_sasl *s = start(MQ_SASL_SCRAM_SHA_256, false);
        CU_ASSERT_EQUAL(step(s, firsts[i], NULL), MQ_SASL_FAIL);
        if (strlen(mq_sasl_reason(s)) == 0)
            fprintf(stderr, "no reason for '%s'\n", firsts[i]);
        CU_ASSERT(strlen(mq_sasl_reason(s)) > 0);
        mq_sasl_free(s);
    }
    /* A NUL inside, and a token over the limit. */
    struct mq_sasl *s = start(MQ_SASL_SCRAM_SHA_256, false);
    const uint8_t *out;
    size_t out_len;
    CU_ASSERT_EQUAL(mq_sasl_step(s, (const uint8_t *)"n,,n=u\0,r=abc", 13, &out, &out_len), MQ_SASL_FAIL);
    mq_sasl_free(s);
    s = start(MQ_SASL_SCRAM_SHA_256, false);
    char *big = malloc(MQ_SASL_TOKEN_MAX + 2);
    memset(big, 'a', MQ_SASL_TOKEN_MAX + 1);
    big[MQ_SASL_TOKEN_MAX + 1] = 0;
    memcpy(big, "n,,n=user,r=", 12);
    CU_ASSERT_EQUAL(step(s, big, NULL), MQ_SASL_FAIL);
    free(big);
    mq_sasl_free(s);

    /* Extensions are tolerated (Kafka's own, unknown ones). */
    s = start(MQ_SASL_SCRAM_SHA_256, false);
    CU_ASSERT_EQUAL(step(s, "n,,n=user,r=abc,tokenauth=false,x=1", NULL), MQ_SASL_CONTINUE);
    mq_sasl_free(s);

    fixed_nonce = "SRV";
    static const char *const finals[] = {
        "",
        "r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=eSws,r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* "y,," for an "n,," header */
        "c=biws,r=abcSRX,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=abcSRV",
        "c=biws,r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV",
        "c=biws,r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR=",
        "c=biws,r=abcSRV,p=AAAA",
        "c=biws,r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
        "c=bi,r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=abcSRV,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* well-formed: wrong proof */
    };
    for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
        s = start(MQ_SASL_SCRAM_SHA_256, true);
        CU_ASSERT_EQUAL_FATAL(step(s, "n,,n=user,r=abc", NULL), MQ_SASL_CONTINUE);
        CU_ASSERT_EQUAL(step(s, finals[i], NULL), MQ_SASL_FAIL);
        CU_ASSERT(strlen(mq_sasl_reason(s)) > 0);
        mq_sasl_free(s);
    }
}

/* ---- PLAIN's memo ---- */

static struct mq_sasl_cache *memo;

/* One PLAIN login of user with password through memo. */
static enum mq_sasl_status memo_login(const char *user, const char *password)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%c%s%c%s", 0, user, 0, password);
    struct mq_sasl_conf conf = {.lookup = lookup, .cache = memo};
    struct mq_sasl *s = mq_sasl_new(MQ_SASL_PLAIN, &conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const uint8_t *out;
    size_t out_len;
    enum mq_sasl_status st = mq_sasl_step(s, (const uint8_t *)msg, (size_t)n, &out, &out_len);
    mq_sasl_free(s);
    return st;
}

static struct mq_sasl_cache_stats memo_stats(void)
{
    struct mq_sasl_cache_stats st;
    mq_sasl_cache_stats(memo, &st);
    return st;
}

/* Repeated logins run PBKDF2 once; right and wrong answers stay right and wrong; a changed or removed user
 * is seen at once, and its stale entries go. */
static void test_memo(void)
{
    reset_users();
    uint8_t salt1[8] = {1, 2, 3, 4, 5, 6, 7, 8}, salt2[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    add_user("bob", MQ_SASL_SCRAM_SHA_256, "hunter2", salt1, 8);
    add_user("eve", MQ_SASL_SCRAM_SHA_512, "apple", salt1, 8);
    CU_ASSERT_PTR_NULL(mq_sasl_cache_new(3, 1000));
    CU_ASSERT_PTR_NULL(mq_sasl_cache_new(16, 0));
    memo = mq_sasl_cache_new(16, 3600 * 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(memo);

    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_DONE);
    struct mq_sasl_cache_stats st = memo_stats();
    CU_ASSERT_EQUAL(st.misses, 1);
    CU_ASSERT_EQUAL(st.hits, 2);
    CU_ASSERT_EQUAL(st.entries, 1);
    /* A wrong password, and an unknown user, fail from the memo too. */
    CU_ASSERT_EQUAL(memo_login("bob", "hunter3"), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(memo_login("bob", "hunter3"), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(memo_login("dave", "hunter2"), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(memo_login("dave", "hunter2"), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(memo_login("eve", "apple"), MQ_SASL_DONE); /* its SCRAM-SHA-512 credential */
    CU_ASSERT_EQUAL(memo_login("eve", "apple"), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(memo_login("eve", "hunter2"), MQ_SASL_FAIL);
    st = memo_stats();
    CU_ASSERT_EQUAL(st.misses, 5);
    CU_ASSERT_EQUAL(st.hits, 5);
    CU_ASSERT_EQUAL(st.entries, 5);

    /* bob's password changes, with a new salt (as mqlog user add makes one): the old one fails at once,
     * the new one works, and bob's old entries are dropped. */
    nusers = 0;
    add_user("bob", MQ_SASL_SCRAM_SHA_256, "correct horse", salt2, 8);
    add_user("eve", MQ_SASL_SCRAM_SHA_512, "apple", salt1, 8);
    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_FAIL);
    st = memo_stats();
    CU_ASSERT_EQUAL(st.invalidated, 2); /* hunter2 and hunter3 under the old salt */
    CU_ASSERT_EQUAL(memo_login("bob", "correct horse"), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(memo_login("bob", "correct horse"), MQ_SASL_DONE);
    /* Changed again with the same salt (only a hand-made credential does that): the entry that verified
     * the old password no longer matches the StoredKey read, and goes. */
    nusers = 0;
    add_user("bob", MQ_SASL_SCRAM_SHA_256, "battery staple", salt2, 8);
    add_user("eve", MQ_SASL_SCRAM_SHA_512, "apple", salt1, 8);
    CU_ASSERT_EQUAL(memo_login("bob", "correct horse"), MQ_SASL_FAIL);
    CU_ASSERT_EQUAL(memo_login("bob", "battery staple"), MQ_SASL_DONE);
    /* Removed: its logins fail, and what the memo held of it goes. */
    nusers = 0;
    add_user("eve", MQ_SASL_SCRAM_SHA_512, "apple", salt1, 8);
    uint64_t before = memo_stats().invalidated;
    CU_ASSERT_EQUAL(memo_login("bob", "battery staple"), MQ_SASL_FAIL);
    st = memo_stats();
    CU_ASSERT(st.invalidated > before);
    CU_ASSERT_EQUAL(st.entries, 4); /* eve's two, dave's and bob's unknown-user one */
    CU_ASSERT_EQUAL(memo_login("eve", "apple"), MQ_SASL_DONE);
    mq_sasl_cache_free(memo);
    memo = NULL;
}

/* Wrong passwords fill at most a quarter of the memo: the entries of logins that worked stay. */
static void test_memo_bounds(void)
{
    reset_users();
    uint8_t salt[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    add_user("bob", MQ_SASL_SCRAM_SHA_256, "hunter2", salt, 8);
    add_user("amy", MQ_SASL_SCRAM_SHA_256, "pear", salt, 8);
    memo = mq_sasl_cache_new(8, 3600 * 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(memo);
    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(memo_login("amy", "pear"), MQ_SASL_DONE);
    for (int i = 0; i < 20; i++) {
        char pw[16];
        snprintf(pw, sizeof pw, "guess%d", i);
        CU_ASSERT_EQUAL(memo_login(i % 2 ? "bob" : "mallory", pw), MQ_SASL_FAIL);
    }
    struct mq_sasl_cache_stats st = memo_stats();
    CU_ASSERT_EQUAL(st.entries, 8);
    CU_ASSERT_EQUAL(st.evicted, 14); /* wrong passwords only: 20 into the 6 slots left */
    uint64_t misses = st.misses;
    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(memo_login("amy", "pear"), MQ_SASL_DONE);
    CU_ASSERT_EQUAL(memo_stats().misses, misses);
    mq_sasl_cache_free(memo);

    /* Entries expire: with a lifetime of 1 ms the second login derives again. */
    memo = mq_sasl_cache_new(8, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(memo);
    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_DONE);
    int64_t t0 = mq_mono_ms();
    while (mq_mono_ms() - t0 < 2) /* at least one ms boundary, PBKDF2 above took some anyway */
        ;
    CU_ASSERT_EQUAL(memo_login("bob", "hunter2"), MQ_SASL_DONE);
    st = memo_stats();
    CU_ASSERT_EQUAL(st.misses, 2);
    CU_ASSERT_EQUAL(st.hits, 0);
    CU_ASSERT_EQUAL(st.evicted, 1);
    CU_ASSERT_EQUAL(st.entries, 1);
    mq_sasl_cache_free(memo);
    memo = NULL;
    mq_sasl_cache_free(NULL);
}

static void test_names_and_derive(void)
{
    enum mq_sasl_mech m;
    CU_ASSERT(mq_sasl_mech_parse("SCRAM-SHA-512", 13, &m) && m == MQ_SASL_SCRAM_SHA_512);
    CU_ASSERT(mq_sasl_mech_parse("PLAIN", 5, &m) && m == MQ_SASL_PLAIN);
    CU_ASSERT(!mq_sasl_mech_parse("plain", 5, &m));
    CU_ASSERT(!mq_sasl_mech_parse("GSSAPI", 6, &m));
    CU_ASSERT_STRING_EQUAL(mq_sasl_mech_name(MQ_SASL_SCRAM_SHA_256), "SCRAM-SHA-256");
    CU_ASSERT(mq_sasl_user_name_valid("a b,c=d", 7));
    CU_ASSERT(!mq_sasl_user_name_valid("", 0));
    CU_ASSERT(!mq_sasl_user_name_valid("a\tb", 3));

    struct mq_catalog_user u;
    uint8_t salt[8] = {0};
    CU_ASSERT_EQUAL(mq_sasl_scram_derive(MQ_SASL_SCRAM_SHA_256, "pw", 2, salt, 8, 4095, &u), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_sasl_scram_derive(MQ_SASL_PLAIN, "pw", 2, salt, 8, 4096, &u), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_sasl_scram_derive(MQ_SASL_SCRAM_SHA_256, "pw", 2, salt, 0, 4096, &u), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_sasl_scram_derive(MQ_SASL_SCRAM_SHA_512, "pw", 2, salt, 8, 4096, &u), MQ_OK);
    CU_ASSERT_EQUAL(u.key_len, 64);
    CU_ASSERT_STRING_EQUAL(u.mechanism, "SCRAM-SHA-512");
    CU_ASSERT_EQUAL(u.iterations, 4096);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_rfc7677), MQ_TEST(test_scram_512),   MQ_TEST(test_unknown_user),
        MQ_TEST(test_plain),   MQ_TEST(test_malformed),   MQ_TEST(test_names_and_derive),
        MQ_TEST(test_memo),    MQ_TEST(test_memo_bounds), MQ_TEST_END,
    };
    return mq_test_run("sasl", tests);
}
