/*
 * sasl.c - the server side of PLAIN and SCRAM-SHA-256/512 (see sasl.h): message parsing, the SCRAM proof
 * check and the derivation of stored credentials.
 *
 * Every client token is copied into a NUL-terminated buffer after checking it holds no NUL (PLAIN's
 * separators excepted), so the parsers below work on C strings and a malformed message can only fail. Secret
 * material (salted passwords, client keys, the PLAIN password copy) is wiped with OPENSSL_cleanse before
 * it is released.
 */
#include "sasl/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h" /* mq_mono_ms */

static const char *const mq_sasl_names[MQ_SASL__COUNT] = {
    [MQ_SASL_PLAIN] = "PLAIN",
    [MQ_SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
    [MQ_SASL_SCRAM_SHA_512] = "SCRAM-SHA-512",
};

const char *mq_sasl_mech_name(enum mq_sasl_mech mech)
{
    return (unsigned)mech < MQ_SASL__COUNT ? mq_sasl_names[mech] : "?";
}

bool mq_sasl_mech_parse(const char *s, size_t len, enum mq_sasl_mech *mech)
{
    for (int i = 0; i < MQ_SASL__COUNT; i++)
        if (strlen(mq_sasl_names[i]) == len && memcmp(s, mq_sasl_names[i], len) == 0) {
            *mech = (enum mq_sasl_mech)i;
            return true;
        }
    return false;
}

bool mq_sasl_user_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > MQ_CATALOG_USER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    return true;
}

static const EVP_MD *mq_sasl_md(enum mq_sasl_mech mech)
{
    return mech == MQ_SASL_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

enum mq_err mq_sasl_random(uint8_t *buf, size_t len)
{
    return len <= INT32_MAX && RAND_bytes(buf, (int)len) == 1 ? MQ_OK : MQ_ERR_IO;
}

/* ---- base64 (RFC 4648, with padding, strict) ---- */

/* Encodes in[0..len) into a malloc'd string; NULL when out of memory. */
static char *mq_b64_encode(const uint8_t *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static int mq_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes s[0..len) into out (at most max bytes); the decoded length, or -1 when s is not canonical
 * padded base64 or decodes to more than max bytes. */
static long mq_b64_decode(const char *s, size_t len, uint8_t *out, size_t max)
{
    if (len % 4 != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2 && (k == 3 || s[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = mq_b64_value(s[i + k]);
            if (v[k] < 0 || pad > 0)
                return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return -1; /* bits set in the padding: not canonical */
        if (n + 3 - (size_t)pad > max)
            return -1;
        memcpy(out + n, b, 3 - (size_t)pad);
        n += 3 - (size_t)pad;
    }
    return (long)n;
}

/* ---- credentials ---- */

enum mq_err mq_sasl_scram_derive(enum mq_sasl_mech mech, const char *password, size_t password_len,
                                 const uint8_t *salt, size_t salt_len, int32_t iterations,
                                 struct mq_catalog_user *cred)
{
    if ((mech != MQ_SASL_SCRAM_SHA_256 && mech != MQ_SASL_SCRAM_SHA_512) || !password ||
        password_len > INT32_MAX || !salt || salt_len == 0 || salt_len > MQ_CATALOG_SALT_MAX ||
        iterations < MQ_SCRAM_ITERATIONS_MIN || iterations > MQ_SCRAM_ITERATIONS_MAX)
        return MQ_ERR_INVAL;
    const EVP_MD *md = mq_sasl_md(mech);
    size_t klen = (size_t)EVP_MD_size(md);
    uint8_t salted[MQ_CATALOG_KEY_MAX], client_key[MQ_CATALOG_KEY_MAX];
    unsigned int n = 0;
    enum mq_err err = MQ_ERR_NOMEM;
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations, md, (int)klen,
                          salted) != 1)
        goto out;
    if (!HMAC(md, salted, (int)klen, (const unsigned char *)"Client Key", 10, client_key, &n) || n != klen)
        goto out;
    if (!EVP_Digest(client_key, klen, cred->stored_key, &n, md, NULL) || n != klen)
        goto out;
    if (!HMAC(md, salted, (int)klen, (const unsigned char *)"Server Key", 10, cred->server_key, &n) ||
        n != klen)
        goto out;
    snprintf(cred->mechanism, sizeof cred->mechanism, "%s", mq_sasl_names[mech]);
    memcpy(cred->salt, salt, salt_len);
    cred->salt_len = salt_len;
    cred->iterations = iterations;
    cred->key_len = klen;
    err = MQ_OK;
out:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    return err;
}

/*
 * The secret behind the salts of unknown users: the same user name gets the same salt for the process's
 * life, as a real user's salt stays the same, so that asking twice tells nothing.
 */
static uint8_t mq_sasl_fake_secret[32];
static bool mq_sasl_fake_ok;
static pthread_once_t mq_sasl_fake_once = PTHREAD_ONCE_INIT;

static void mq_sasl_fake_init(void)
{
    mq_sasl_fake_ok = mq_sasl_random(mq_sasl_fake_secret, sizeof mq_sasl_fake_secret) == MQ_OK;
}

/* A credential for a user that does not exist: a salt derived from the name, keys no proof can match. */
static enum mq_err mq_sasl_fake_cred(enum mq_sasl_mech mech, const char *user, struct mq_catalog_user *cred)
{
    pthread_once(&mq_sasl_fake_once, mq_sasl_fake_init);
    if (!mq_sasl_fake_ok)
        return MQ_ERR_IO;
    const EVP_MD *md = mq_sasl_md(mech);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char what[MQ_CATALOG_USER_NAME_MAX + 32];
    int wlen = snprintf(what, sizeof what, "%s\n%s", mq_sasl_names[mech], user);
    if (!HMAC(EVP_sha256(), mq_sasl_fake_secret, sizeof mq_sasl_fake_secret, (const unsigned char *)what,
              (size_t)wlen, mac, &n))
        return MQ_ERR_NOMEM;
    memset(cred, 0, sizeof *cred);
    snprintf(cred->mechanism, sizeof cred->mechanism, "%s", mq_sasl_names[mech]);
    /* As long as a real salt, so that its base64 length gives nothing away. */
    memcpy(cred->salt, mac, MQ_SASL_SALT_LEN);
    cred->salt_len = MQ_SASL_SALT_LEN;
    cred->iterations = MQ_SCRAM_ITERATIONS_MIN;
    cred->key_len = (size_t)EVP_MD_size(md);
    if (mq_sasl_random(cred->stored_key, cred->key_len) != MQ_OK ||
        mq_sasl_random(cred->server_key, cred->key_len) != MQ_OK)
        return MQ_ERR_IO;
    return MQ_OK;
}

/* ---- PLAIN's memo (see sasl.h) ---- */

#define MQ_SASL_ID_LEN 32 /* HMAC-SHA-256 */

/* Where a PLAIN check stands in the memo: three HMACs chained under the memo's secret, so that nothing in it
 * can be reversed to a name or a password without that secret. */
struct mq_sasl_cache_ids {
    uint8_t user_id[MQ_SASL_ID_LEN]; /* HMAC(secret, user): whose */
    uint8_t cred_id[MQ_SASL_ID_LEN]; /* HMAC(user_id, mechanism, salt, iterations): which credential */
    uint8_t key[MQ_SASL_ID_LEN];     /* HMAC(cred_id, password): for which password */
};

struct mq_sasl_cache_entry {
    struct mq_sasl_cache_ids ids;
    uint8_t
        stored_key[MQ_CATALOG_KEY_MAX]; /* what PBKDF2 over that password gave: H(HMAC(SP, "Client Key")) */
    size_t key_len;
    bool used;
    bool proven; /* it verified a login (the user exists and the password was right) */
    int64_t made_ms, used_ms;
};

struct mq_sasl_cache {
    pthread_mutex_t lock;
    uint8_t secret[32];
    struct mq_sasl_cache_entry *e;
    size_t n;
    size_t unproven; /* entries used and not proven */
    int64_t ttl_ms;
    struct mq_sasl_cache_stats st;
};

struct mq_sasl_cache *mq_sasl_cache_new(size_t entries, int64_t ttl_ms)
{
    if (entries < 4 || entries > (1u << 20) || ttl_ms <= 0)
        return NULL;
    struct mq_sasl_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->e = calloc(entries, sizeof *c->e);
    if (!c->e || mq_sasl_random(c->secret, sizeof c->secret) != MQ_OK ||
        pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->e);
        free(c);
        return NULL;
    }
    c->n = entries;
    c->ttl_ms = ttl_ms;
    return c;
}

void mq_sasl_cache_free(struct mq_sasl_cache *c)
{
    if (!c)
        return;
    OPENSSL_cleanse(c->e, c->n * sizeof *c->e);
    OPENSSL_cleanse(c->secret, sizeof c->secret);
    free(c->e);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void mq_sasl_cache_stats(struct mq_sasl_cache *c, struct mq_sasl_cache_stats *st)
{
    pthread_mutex_lock(&c->lock);
    *st = c->st;
    pthread_mutex_unlock(&c->lock);
}

static bool mq_sasl_hmac256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                            uint8_t out[MQ_SASL_ID_LEN])
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) && n == MQ_SASL_ID_LEN;
}

static bool mq_sasl_cache_ids_make(const struct mq_sasl_cache *c, enum mq_sasl_mech mech, const char *user,
                                   const struct mq_catalog_user *cred, const char *pw, size_t pwlen,
                                   struct mq_sasl_cache_ids *ids)
{
    /* which: the mechanism (one byte), the iterations (four, big-endian) and the salt */
    uint8_t which[5 + MQ_CATALOG_SALT_MAX];
    uint32_t it = (uint32_t)cred->iterations;
    which[0] = (uint8_t)mech;
    which[1] = (uint8_t)(it >> 24);
    which[2] = (uint8_t)(it >> 16);
    which[3] = (uint8_t)(it >> 8);
    which[4] = (uint8_t)it;
    memcpy(which + 5, cred->salt, cred->salt_len);
    return mq_sasl_hmac256(c->secret, sizeof c->secret, user, strlen(user), ids->user_id) &&
           mq_sasl_hmac256(ids->user_id, MQ_SASL_ID_LEN, which, 5 + cred->salt_len, ids->cred_id) &&
           mq_sasl_hmac256(ids->cred_id, MQ_SASL_ID_LEN, pw, pwlen, ids->key);
}

static void mq_sasl_cache_drop(struct mq_sasl_cache *c, struct mq_sasl_cache_entry *e)
{
    if (!e->proven)
        c->unproven--;
    c->st.entries--;
    OPENSSL_cleanse(e, sizeof *e);
}

/*
 * Finds ids in the memo: true with the StoredKey it holds copied into stored. On the way it drops the
 * expired entries, and those of the same user that belong to another credential or that verified a login
 * against a StoredKey the credential (cred, just read) no longer has. known: the user exists, so that an
 * entry whose StoredKey is the credential's is marked proven.
 */
static bool mq_sasl_cache_get(struct mq_sasl_cache *c, const struct mq_sasl_cache_ids *ids,
                              const struct mq_catalog_user *cred, bool known, uint8_t *stored)
{
    int64_t now = mq_mono_ms();
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        struct mq_sasl_cache_entry *e = &c->e[i];
        if (!e->used)
            continue;
        if (now - e->made_ms >= c->ttl_ms) {
            mq_sasl_cache_drop(c, e);
            c->st.evicted++;
            continue;
        }
        if (memcmp(e->ids.user_id, ids->user_id, MQ_SASL_ID_LEN) != 0)
            continue;
        bool same_cred = memcmp(e->ids.cred_id, ids->cred_id, MQ_SASL_ID_LEN) == 0;
        bool matches =
            e->key_len == cred->key_len && CRYPTO_memcmp(e->stored_key, cred->stored_key, e->key_len) == 0;
        if (!same_cred || (e->proven && !matches)) {
            mq_sasl_cache_drop(c, e);
            c->st.invalidated++;
            continue;
        }
        if (found || memcmp(e->ids.key, ids->key, MQ_SASL_ID_LEN) != 0)
            continue;
        found = true;
        memcpy(stored, e->stored_key, e->key_len);
        e->used_ms = now;
        if (known && matches && !e->proven) {
            e->proven = true;
            c->unproven--;
        }
    }
    if (found)
        c->st.hits++;
    else
        c->st.misses++;
    pthread_mutex_unlock(&c->lock);
    return found;
}

/* Remembers the StoredKey stored[0..key_len) of ids (proven: it verified a login). */
static void mq_sasl_cache_put(struct mq_sasl_cache *c, const struct mq_sasl_cache_ids *ids,
                              const uint8_t *stored, size_t key_len, bool proven)
{
    int64_t now = mq_mono_ms();
    pthread_mutex_lock(&c->lock);
    /* A free slot, else the least recently used entry: among those that never verified a login while they
     * hold a quarter of the memo or more, else among all. */
    bool unproven_only = c->unproven >= c->n / 4;
    struct mq_sasl_cache_entry *slot = NULL, *lru = NULL;
    for (size_t i = 0; i < c->n && !slot; i++) {
        struct mq_sasl_cache_entry *e = &c->e[i];
        if (!e->used || memcmp(e->ids.key, ids->key, MQ_SASL_ID_LEN) == 0)
            slot = e; /* free, or the same check made meanwhile by another thread */
        else if ((!unproven_only || !e->proven) && (!lru || e->used_ms < lru->used_ms))
            lru = e;
    }
    if (!slot && lru) {
        c->st.evicted++;
        slot = lru;
    }
    if (slot) {
        if (slot->used)
            mq_sasl_cache_drop(c, slot);
        slot->ids = *ids;
        memcpy(slot->stored_key, stored, key_len);
        slot->key_len = key_len;
        slot->used = true;
        slot->proven = proven;
        slot->made_ms = slot->used_ms = now;
        if (!proven)
            c->unproven++;
        c->st.entries++;
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- the state machine ---- */

enum mq_sasl_state { S_FIRST, S_FINAL, S_OVER };

struct mq_sasl {
    enum mq_sasl_mech mech;
    struct mq_sasl_conf conf;
    enum mq_sasl_state state;
    bool authenticated;
    bool unknown; /* SCRAM: the user does not exist; the exchange goes on to fail at the proof */
    char user[MQ_CATALOG_USER_NAME_MAX + 1];
    struct mq_catalog_user cred;
    size_t gs2_len;     /* of the GS2 header ("n,," ...), which starts first_bare's buffer */
    char *client_first; /* the whole client-first message */
    char *server_first;
    char *nonce; /* client nonce + server nonce */
    uint8_t *out;
    size_t out_len;
    char reason[MQ_SASL_REASON_MAX];
};

struct mq_sasl *mq_sasl_new(enum mq_sasl_mech mech, const struct mq_sasl_conf *conf)
{
    if ((unsigned)mech >= MQ_SASL__COUNT || !conf || !conf->lookup)
        return NULL;
    struct mq_sasl *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->mech = mech;
    s->conf = *conf;
    return s;
}

static void mq_sasl_out_clear(struct mq_sasl *s)
{
    free(s->out);
    s->out = NULL;
    s->out_len = 0;
}

void mq_sasl_free(struct mq_sasl *s)
{
    if (!s)
        return;
    mq_sasl_out_clear(s);
    free(s->client_first);
    free(s->server_first);
    free(s->nonce);
    OPENSSL_cleanse(&s->cred, sizeof s->cred);
    free(s);
}

const char *mq_sasl_user(const struct mq_sasl *s)
{
    return s && s->authenticated ? s->user : NULL;
}

const char *mq_sasl_reason(const struct mq_sasl *s)
{
    return s ? s->reason : "";
}

static enum mq_sasl_status mq_sasl_end(struct mq_sasl *s, enum mq_sasl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends the exchange with st (FAIL or ERROR), recording why. */
static enum mq_sasl_status mq_sasl_end(struct mq_sasl *s, enum mq_sasl_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
    s->state = S_OVER;
    mq_sasl_out_clear(s);
    return st;
}

/* Takes the answer text (malloc'd) as s's output. */
static void mq_sasl_out_take(struct mq_sasl *s, char *text)
{
    mq_sasl_out_clear(s);
    s->out = (uint8_t *)text;
    s->out_len = strlen(text);
}

/* A NUL-terminated copy of a token that must hold no NUL; NULL when it does or when out of memory
 * (*oom says which). */
static char *mq_sasl_cstr(const uint8_t *in, size_t len, bool *oom)
{
    *oom = false;
    if (memchr(in, 0, len))
        return NULL;
    char *s = malloc(len + 1);
    if (!s) {
        *oom = true;
        return NULL;
    }
    memcpy(s, in, len);
    s[len] = 0;
    return s;
}

/* Looks up user's credential for mech; an unknown user gets a fake one (*unknown set). */
static enum mq_err mq_sasl_cred(struct mq_sasl *s, enum mq_sasl_mech mech, bool *unknown)
{
    enum mq_err err = s->conf.lookup(s->conf.lookup_opaque, s->user, mq_sasl_names[mech], &s->cred);
    *unknown = err == MQ_ERR_NOENT;
    if (err == MQ_OK && s->cred.key_len != (size_t)EVP_MD_size(mq_sasl_md(mech)))
        err = MQ_ERR_CORRUPT;
    if (*unknown)
        err = mq_sasl_fake_cred(mech, s->user, &s->cred);
    return err;
}

/* ---- PLAIN ---- */

/* The StoredKey the password pw[0..pwlen) yields with s->cred's salt and iterations, into stored: from the
 * memo when it has it, else by PBKDF2 (then remembered). known: the user exists. */
static enum mq_err mq_sasl_plain_key(struct mq_sasl *s, enum mq_sasl_mech mech, const char *pw, size_t pwlen,
                                     bool known, uint8_t *stored)
{
    struct mq_sasl_cache *c = s->conf.cache;
    struct mq_sasl_cache_ids ids;
    bool memo = c && mq_sasl_cache_ids_make(c, mech, s->user, &s->cred, pw, pwlen, &ids);
    if (memo && mq_sasl_cache_get(c, &ids, &s->cred, known, stored))
        return MQ_OK;
    struct mq_catalog_user try;
    enum mq_err err =
        mq_sasl_scram_derive(mech, pw, pwlen, s->cred.salt, s->cred.salt_len, s->cred.iterations, &try);
    if (err == MQ_OK) {
        memcpy(stored, try.stored_key, try.key_len);
        if (memo)
            mq_sasl_cache_put(c, &ids, stored, try.key_len,
                              known && CRYPTO_memcmp(stored, s->cred.stored_key, try.key_len) == 0);
    }
    OPENSSL_cleanse(&try, sizeof try);
    return err;
}

static enum mq_sasl_status mq_sasl_plain(struct mq_sasl *s, const uint8_t *in, size_t len)
{
    /* authzid NUL authcid NUL passwd */
    const uint8_t *nul1 = memchr(in, 0, len);
    const uint8_t *nul2 = nul1 ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - in)) : NULL;
    if (!nul2 || memchr(nul2 + 1, 0, len - (size_t)(nul2 + 1 - in)))
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed PLAIN message");
    size_t zlen = (size_t)(nul1 - in), ulen = (size_t)(nul2 - nul1 - 1);
    const char *pw = (const char *)nul2 + 1;
    size_t pwlen = len - (size_t)(nul2 + 1 - in);
    if (!mq_sasl_user_name_valid((const char *)nul1 + 1, ulen) || pwlen == 0)
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed PLAIN message (user name or password)");
    memcpy(s->user, nul1 + 1, ulen);
    s->user[ulen] = 0;
    if (zlen > 0 && (zlen != ulen || memcmp(in, s->user, ulen) != 0))
        return mq_sasl_end(s, MQ_SASL_FAIL, "user %s asked for another authorization id", s->user);

    /* PLAIN has no entry of its own: the password is checked against the SCRAM-SHA-256 credential, else
     * the SCRAM-SHA-512 one. */
    bool unknown = false;
    enum mq_sasl_mech mech = MQ_SASL_SCRAM_SHA_256;
    enum mq_err err = s->conf.lookup(s->conf.lookup_opaque, s->user, mq_sasl_names[mech], &s->cred);
    if (err == MQ_ERR_NOENT) {
        mech = MQ_SASL_SCRAM_SHA_512;
        err = mq_sasl_cred(s, mech, &unknown);
    } else if (err == MQ_OK && s->cred.key_len != 32) {
        err = MQ_ERR_CORRUPT;
    }
    if (err != MQ_OK)
        return mq_sasl_end(s, MQ_SASL_ERROR, "user %s: reading the credential: %s", s->user,
                           mq_strerror(err));
    uint8_t stored[MQ_CATALOG_KEY_MAX];
    err = mq_sasl_plain_key(s, mech, pw, pwlen, !unknown, stored);
    bool match = err == MQ_OK && CRYPTO_memcmp(stored, s->cred.stored_key, s->cred.key_len) == 0;
    if (err != MQ_OK)
        return mq_sasl_end(s, MQ_SASL_ERROR, "user %s: deriving a key: %s", s->user, mq_strerror(err));
    if (unknown)
        return mq_sasl_end(s, MQ_SASL_FAIL, "unknown user %s", s->user);
    if (!match)
        return mq_sasl_end(s, MQ_SASL_FAIL, "user %s: wrong password", s->user);
    mq_sasl_out_clear(s);
    s->authenticated = true;
    s->state = S_OVER;
    return MQ_SASL_DONE;
}

/* ---- SCRAM ---- */

/* The end of the attribute value starting at p: the next ',' or the string's end. */
static const char *mq_scram_value_end(const char *p)
{
    const char *c = strchr(p, ',');
    return c ? c : p + strlen(p);
}

/* Decodes the saslname p[0..len) ("=2C" is ',', "=3D" is '=') into out (MQ_CATALOG_USER_NAME_MAX + 1
 * bytes); false when malformed or too long. */
static bool mq_scram_saslname(const char *p, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '=') {
            if (i + 3 > len)
                return false;
            if (p[i + 1] == '2' && p[i + 2] == 'C')
                c = ',';
            else if (p[i + 1] == '3' && p[i + 2] == 'D')
                c = '=';
            else
                return false;
            i += 2;
        }
        if (n == MQ_CATALOG_USER_NAME_MAX)
            return false;
        out[n++] = c;
    }
    out[n] = 0;
    return mq_sasl_user_name_valid(out, n);
}

/* True when the nonce p[0..len) is RFC 5802's printable: %x21-2B / %x2D-7E. */
static bool mq_scram_printable(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
            return false;
    return true;
}

/* The default server nonce: random bytes mapped onto base64's alphabet. */
static void mq_scram_random_nonce(char *buf, size_t len, bool *ok)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[64];
    *ok = len <= sizeof raw && mq_sasl_random(raw, len) == MQ_OK;
    for (size_t i = 0; *ok && i < len; i++)
        buf[i] = alphabet[raw[i] & 63];
}

static enum mq_sasl_status mq_scram_first(struct mq_sasl *s, char *msg)
{
    s->client_first = msg;
    const char *p = msg;
    /* gs2-header: gs2-cbind-flag "," [ "a=" saslname ] "," */
    if (p[0] == 'p')
        return mq_sasl_end(s, MQ_SASL_FAIL, "the client asks for channel binding, which is not offered");
    if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',')
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-first message (GS2 header)");
    p += 2;
    char authzid[MQ_CATALOG_USER_NAME_MAX + 1] = "";
    if (p[0] == 'a' && p[1] == '=') {
        const char *e = mq_scram_value_end(p + 2);
        if (!mq_scram_saslname(p + 2, (size_t)(e - p - 2), authzid))
            return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-first message (authzid)");
        p = e;
    }
    if (p[0] != ',')
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-first message (GS2 header)");
    p++;
    s->gs2_len = (size_t)(p - msg);
    if (p[0] == 'm' && p[1] == '=')
        return mq_sasl_end(s, MQ_SASL_FAIL, "the client asks for a mandatory SCRAM extension");
    if (p[0] != 'n' || p[1] != '=')
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-first message (no user name)");
    const char *e = mq_scram_value_end(p + 2);
    if (!mq_scram_saslname(p + 2, (size_t)(e - p - 2), s->user))
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-first message (user name)");
    p = e;
    if (strncmp(p, ",r=", 3) != 0)
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-first message (no nonce)");
    const char *cnonce = p + 3;
    e = mq_scram_value_end(cnonce);
    size_t cnonce_len = (size_t)(e - cnonce);
    if (!mq_scram_printable(cnonce, cnonce_len))
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-first message (nonce)");
    /* Extensions (Kafka's "tokenauth=true" ...) are tolerated; token authentication itself is refused. */
    for (p = e; *p == ','; p = e) {
        e = mq_scram_value_end(p + 1);
        if ((size_t)(e - p - 1) == strlen("tokenauth=true") && strncmp(p + 1, "tokenauth=true", 14) == 0)
            return mq_sasl_end(s, MQ_SASL_FAIL, "user %s: delegation tokens are not supported", s->user);
    }
    if (authzid[0] && strcmp(authzid, s->user) != 0)
        return mq_sasl_end(s, MQ_SASL_FAIL, "user %s asked for another authorization id", s->user);

    enum mq_err err = mq_sasl_cred(s, s->mech, &s->unknown);
    if (err != MQ_OK)
        return mq_sasl_end(s, MQ_SASL_ERROR, "user %s: reading the credential: %s", s->user,
                           mq_strerror(err));

    char snonce[MQ_SASL_NONCE_MAX];
    size_t snonce_len = MQ_SASL_NONCE_LEN;
    bool ok = true;
    if (s->conf.nonce)
        snonce_len = s->conf.nonce(s->conf.nonce_opaque, snonce, sizeof snonce);
    else
        mq_scram_random_nonce(snonce, snonce_len, &ok);
    if (!ok || snonce_len > sizeof snonce || !mq_scram_printable(snonce, snonce_len))
        return mq_sasl_end(s, MQ_SASL_ERROR, "no server nonce");
    char *salt = mq_b64_encode(s->cred.salt, s->cred.salt_len);
    size_t nlen = cnonce_len + snonce_len;
    s->nonce = malloc(nlen + 1);
    size_t cap = nlen + (salt ? strlen(salt) : 0) + 32;
    s->server_first = malloc(cap);
    if (!salt || !s->nonce || !s->server_first) {
        free(salt);
        return mq_sasl_end(s, MQ_SASL_ERROR, "out of memory");
    }
    memcpy(s->nonce, cnonce, cnonce_len);
    memcpy(s->nonce + cnonce_len, snonce, snonce_len);
    s->nonce[nlen] = 0;
    snprintf(s->server_first, cap, "r=%s,s=%s,i=%d", s->nonce, salt, (int)s->cred.iterations);
    free(salt);
    char *answer = strdup(s->server_first);
    if (!answer)
        return mq_sasl_end(s, MQ_SASL_ERROR, "out of memory");
    mq_sasl_out_take(s, answer);
    s->state = S_FINAL;
    return MQ_SASL_CONTINUE;
}

static enum mq_sasl_status mq_scram_final(struct mq_sasl *s, const char *msg)
{
    const EVP_MD *md = mq_sasl_md(s->mech);
    size_t klen = s->cred.key_len;
    /* channel-binding "," nonce ["," extensions] "," proof */
    if (strncmp(msg, "c=", 2) != 0)
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-final message (no channel binding)");
    const char *e = mq_scram_value_end(msg + 2);
    uint8_t cb[64];
    long cblen = mq_b64_decode(msg + 2, (size_t)(e - msg - 2), cb, sizeof cb);
    if (cblen < 0 || (size_t)cblen != s->gs2_len || memcmp(cb, s->client_first, s->gs2_len) != 0)
        return mq_sasl_end(s, MQ_SASL_FAIL, "user %s: the channel binding does not match the GS2 header",
                           s->user);
    if (strncmp(e, ",r=", 3) != 0)
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-final message (no nonce)");
    const char *r = e + 3;
    e = mq_scram_value_end(r);
    /* RFC 5802 wants the nonce of server-first back; librdkafka (2.0 at least) sends its own nonce again in
     * front of it, and Kafka accepts any nonce that ends with the full one: so does mqlog. The proof covers
     * the message as sent either way. */
    size_t rlen = (size_t)(e - r), nlen = strlen(s->nonce);
    if (rlen < nlen || memcmp(r + rlen - nlen, s->nonce, nlen) != 0)
        return mq_sasl_end(s, MQ_SASL_FAIL, "user %s: the nonce does not match", s->user);
    const char *proof = NULL;
    for (const char *p = e; *p == ','; p = e) {
        e = mq_scram_value_end(p + 1);
        if (p[1] == 'p' && p[2] == '=' && *e == 0) {
            proof = p + 3;
            break;
        }
    }
    if (!proof)
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-final message (no proof)");
    size_t without_proof = (size_t)(proof - 3 - msg);
    uint8_t client_proof[MQ_CATALOG_KEY_MAX];
    long plen = mq_b64_decode(proof, strlen(proof), client_proof, sizeof client_proof);
    if (plen < 0 || (size_t)plen != klen)
        return mq_sasl_end(s, MQ_SASL_FAIL, "malformed SCRAM client-final message (proof)");

    /* AuthMessage = client-first-message-bare "," server-first-message "," client-final-without-proof */
    const char *bare = s->client_first + s->gs2_len;
    size_t alen = strlen(bare) + 1 + strlen(s->server_first) + 1 + without_proof;
    char *auth = malloc(alen + 1);
    if (!auth)
        return mq_sasl_end(s, MQ_SASL_ERROR, "out of memory");
    snprintf(auth, alen + 1, "%s,%s,%.*s", bare, s->server_first, (int)without_proof, msg);

    uint8_t sig[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE], stored[EVP_MAX_MD_SIZE];
    unsigned int n1 = 0, n2 = 0, n3 = 0;
    bool ok =
        HMAC(md, s->cred.stored_key, (int)klen, (const unsigned char *)auth, alen, sig, &n1) && n1 == klen;
    for (size_t i = 0; ok && i < klen; i++)
        client_key[i] = client_proof[i] ^ sig[i];
    ok = ok && EVP_Digest(client_key, klen, stored, &n2, md, NULL) && n2 == klen;
    bool match = ok && CRYPTO_memcmp(stored, s->cred.stored_key, klen) == 0;
    ok = ok && HMAC(md, s->cred.server_key, (int)klen, (const unsigned char *)auth, alen, sig, &n3) &&
         n3 == klen;
    free(auth);
    OPENSSL_cleanse(client_key, sizeof client_key);
    if (!ok)
        return mq_sasl_end(s, MQ_SASL_ERROR, "user %s: computing the proof failed", s->user);
    if (s->unknown)
        return mq_sasl_end(s, MQ_SASL_FAIL, "unknown user %s", s->user);
    if (!match)
        return mq_sasl_end(s, MQ_SASL_FAIL, "user %s: wrong password", s->user);
    char *v64 = mq_b64_encode(sig, klen);
    char *answer = v64 ? malloc(strlen(v64) + 3) : NULL;
    if (!answer) {
        free(v64);
        return mq_sasl_end(s, MQ_SASL_ERROR, "out of memory");
    }
    sprintf(answer, "v=%s", v64);
    free(v64);
    mq_sasl_out_take(s, answer);
    s->authenticated = true;
    s->state = S_OVER;
    return MQ_SASL_DONE;
}

enum mq_sasl_status mq_sasl_step(struct mq_sasl *s, const uint8_t *in, size_t len, const uint8_t **out,
                                 size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (s->state == S_OVER)
        return MQ_SASL_FAIL;
    s->reason[0] = 0;
    if (len > MQ_SASL_TOKEN_MAX)
        return mq_sasl_end(s, MQ_SASL_FAIL, "a SASL token of %zu bytes (at most %d)", len, MQ_SASL_TOKEN_MAX);
    if (!in)
        in = (const uint8_t *)"";
    enum mq_sasl_status st;
    if (s->mech == MQ_SASL_PLAIN) {
        st = mq_sasl_plain(s, in, len);
    } else {
        bool oom;
        char *msg = mq_sasl_cstr(in, len, &oom);
        if (!msg)
            return mq_sasl_end(s, oom ? MQ_SASL_ERROR : MQ_SASL_FAIL,
                               oom ? "out of memory" : "a SCRAM message holding a NUL byte");
        if (s->state == S_FIRST) {
            st = mq_scram_first(s, msg); /* takes msg */
        } else {
            st = mq_scram_final(s, msg);
            free(msg);
        }
    }
    if (st == MQ_SASL_CONTINUE || st == MQ_SASL_DONE) {
        *out = s->out ? s->out : (const uint8_t *)"";
        *out_len = s->out_len;
    }
    return st;
}
