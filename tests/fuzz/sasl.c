/*
 * sasl.c - fuzz target: the server side of the SASL mechanisms (gateway/sasl/). The input's first byte
 * picks the mechanism ('0' PLAIN, '1' SCRAM-SHA-256, '2' SCRAM-SHA-512, others by value modulo 3); the rest
 * is the client's tokens separated by '\n', fed in order until the exchange ends. The one known user is
 * RFC 7677's ("user", password "pencil", its salt) and the server nonce is the RFC's, so the RFC's messages
 * (the seed corpus) reach a successful end and mutations of them explore every step. A PLAIN token is
 * checked twice, the second time through the memo of the first (sasl.h), which must give the same answer.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sasl/sasl.h"

static struct mq_catalog_user mq_fuzz_users[2];
static bool mq_fuzz_ready;

static enum mq_err mq_fuzz_lookup(void *opaque, const char *user, const char *mechanism,
                                  struct mq_catalog_user *cred)
{
    (void)opaque;
    for (int i = 0; i < 2; i++)
        if (strcmp(user, mq_fuzz_users[i].name) == 0 && strcmp(mechanism, mq_fuzz_users[i].mechanism) == 0) {
            *cred = mq_fuzz_users[i];
            return MQ_OK;
        }
    return MQ_ERR_NOENT;
}

static size_t mq_fuzz_nonce(void *opaque, char *buf, size_t cap)
{
    (void)opaque;
    static const char rfc[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    size_t n = sizeof rfc - 1 < cap ? sizeof rfc - 1 : cap;
    memcpy(buf, rfc, n);
    return n;
}

/* The credentials are derived once (PBKDF2 would dominate every run); they never change. */
static void mq_fuzz_setup(void)
{
    static const uint8_t salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                     0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
    enum mq_sasl_mech mechs[2] = {MQ_SASL_SCRAM_SHA_256, MQ_SASL_SCRAM_SHA_512};
    for (int i = 0; i < 2; i++) {
        strcpy(mq_fuzz_users[i].name, "user");
        if (mq_sasl_scram_derive(mechs[i], "pencil", 6, salt, sizeof salt, 4096, &mq_fuzz_users[i]) != MQ_OK)
            abort();
    }
    mq_fuzz_ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mq_fuzz_ready)
        mq_fuzz_setup();
    if (size == 0)
        return 0;
    enum mq_sasl_mech mech = (enum mq_sasl_mech)((data[0] >= '0' ? data[0] - '0' : data[0]) % 3);
    /* A memo of its own per input (so that an input replays the same), for PLAIN's second pass below. */
    struct mq_sasl_cache *cache = mq_sasl_cache_new(4, 3600 * 1000);
    struct mq_sasl_conf conf = {.lookup = mq_fuzz_lookup, .nonce = mq_fuzz_nonce, .cache = cache};
    struct mq_sasl *s = mq_sasl_new(mech, &conf);
    if (!s || !cache)
        abort();
    const uint8_t *p = data + 1, *end = data + size;
    enum mq_sasl_status st = MQ_SASL_CONTINUE;
    while (st == MQ_SASL_CONTINUE) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const uint8_t *out = NULL;
        size_t out_len = 0;
        st = mq_sasl_step(s, p, n, &out, &out_len);
        if ((st == MQ_SASL_CONTINUE || st == MQ_SASL_DONE) && out_len > 0 && !out)
            abort();
        if (st == MQ_SASL_DONE && strcmp(mq_sasl_user(s), "user") != 0)
            abort(); /* only the one user can ever succeed */
        if (mech == MQ_SASL_PLAIN) {
            /* The same login again, answered by the memo this time: it must come out the same. */
            struct mq_sasl *again = mq_sasl_new(mech, &conf);
            if (!again || mq_sasl_step(again, p, n, &out, &out_len) != st)
                abort();
            mq_sasl_free(again);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    mq_sasl_free(s);
    mq_sasl_cache_free(cache);
    return 0;
}
