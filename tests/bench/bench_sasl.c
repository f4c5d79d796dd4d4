/*
 * bench_sasl.c - what one SASL/PLAIN login costs the Kafka endpoint's loop thread: the user read from a
 * real catalog (as kafka/auth.c reads it) and the password checked by gateway/sasl/, without PLAIN's memo
 * (PBKDF2 every time) and with it (repeated logins of the same user and password). Prints microseconds per
 * login for SCRAM-SHA-256 and SCRAM-SHA-512 credentials at 4096 and 16384 iterations. Not a test: figures
 * only. Usage: bench_sasl [LOGINS] (default 200 per row).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "sasl/sasl.h"
#include "util/parse.h"

static struct mq_catalog *cat;

static enum mq_err lookup(void *opaque, const char *user, const char *mechanism, struct mq_catalog_user *cred)
{
    (void)opaque;
    return mq_catalog_user_get(cat, user, mechanism, cred);
}

/* Microseconds per PLAIN login of user/password over n logins (cache: the memo, or NULL). */
static double per_login(const char *user, const char *password, struct mq_sasl_cache *cache, int n)
{
    char msg[128];
    int len = snprintf(msg, sizeof msg, "%c%s%c%s", 0, user, 0, password);
    struct mq_sasl_conf conf = {.lookup = lookup, .cache = cache};
    int64_t t0 = mq_mono_ms();
    for (int i = 0; i < n; i++) {
        struct mq_sasl *s = mq_sasl_new(MQ_SASL_PLAIN, &conf);
        const uint8_t *out;
        size_t out_len;
        if (!s || mq_sasl_step(s, (const uint8_t *)msg, (size_t)len, &out, &out_len) != MQ_SASL_DONE) {
            fprintf(stderr, "bench_sasl: the login of %s failed\n", user);
            exit(1);
        }
        mq_sasl_free(s);
    }
    return (double)(mq_mono_ms() - t0) * 1000.0 / n;
}

int main(int argc, char **argv)
{
    int64_t n = 200;
    if (argc > 1 && mq_parse_int64(argv[1], 1, 1000000, &n) != MQ_OK) {
        fprintf(stderr, "usage: bench_sasl [LOGINS]\n");
        return 2;
    }
    char dir[] = "/tmp/mqlog-bench-sasl-XXXXXX", path[64], errstr[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    if (mq_catalog_open(path, MQ_CATALOG_CREATE, &cat, errstr, sizeof errstr) != MQ_OK) {
        fprintf(stderr, "bench_sasl: %s\n", errstr);
        return 1;
    }
    static const struct {
        const char *user;
        enum mq_sasl_mech mech;
        int32_t iterations;
    } rows[] = {
        {"u256", MQ_SASL_SCRAM_SHA_256, 4096},
        {"u512", MQ_SASL_SCRAM_SHA_512, 4096},
        {"u256x4", MQ_SASL_SCRAM_SHA_256, 16384},
        {"u512x4", MQ_SASL_SCRAM_SHA_512, 16384},
    };
    uint8_t salt[MQ_SASL_SALT_LEN];
    if (mq_sasl_random(salt, sizeof salt) != MQ_OK)
        return 1;
    printf("| credential | iterations | µs per login, no memo | µs per login, memo hit | ratio |\n");
    printf("|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct mq_catalog_user u;
        memset(&u, 0, sizeof u);
        if (mq_sasl_scram_derive(rows[i].mech, "hunter2", 7, salt, sizeof salt, rows[i].iterations, &u) !=
            MQ_OK)
            return 1;
        snprintf(u.name, sizeof u.name, "%s", rows[i].user);
        if (mq_catalog_user_set(cat, rows[i].user, &u, 1, NULL) != MQ_OK)
            return 1;
        double cold = per_login(rows[i].user, "hunter2", NULL, (int)n);
        struct mq_sasl_cache *cache = mq_sasl_cache_new(MQ_SASL_CACHE_ENTRIES, MQ_SASL_CACHE_TTL_MS);
        if (!cache)
            return 1;
        per_login(rows[i].user, "hunter2", cache, 1); /* the one PBKDF2 that fills the memo */
        double warm = per_login(rows[i].user, "hunter2", cache, (int)n * 10);
        mq_sasl_cache_free(cache);
        printf("| %s | %d | %.0f | %.1f | %.0f |\n", mq_sasl_mech_name(rows[i].mech), (int)rows[i].iterations,
               cold, warm, cold / warm);
    }
    mq_catalog_close(cat);
    static const char *const files[] = {"catalog.db", "catalog.db-wal", "catalog.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    return rmdir(dir) == 0 ? 0 : 1;
}
