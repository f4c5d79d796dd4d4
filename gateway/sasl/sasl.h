/*
 * sasl.h - the server side of the SASL mechanisms the Kafka endpoint offers: PLAIN (RFC 4616) and
 * SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677), on OpenSSL's PBKDF2, HMAC, SHA-2 and RAND_bytes.
 *
 * Pure: no sockets, no Kafka, no catalog handle. One struct mq_sasl per authentication is a state machine
 * fed the client's tokens in order (mq_sasl_step()); it asks the caller's lookup function for a user's
 * stored credential (struct mq_catalog_user: salt, iterations, StoredKey, ServerKey) and answers with the
 * server's token, success with the authenticated user name, or failure with a reason for the log. The
 * Kafka layer carries the tokens (SaslAuthenticate, or raw frames after SaslHandshake v0).
 *
 * What a client learns on failure is only that it failed: an unknown user goes through the whole SCRAM
 * exchange with a salt derived from its name (the same one every time, as a real user's is) and fails at
 * the proof as a wrong password does; a PLAIN login for an unknown user costs the same PBKDF2 as a real one.
 * Passwords are used as the client sends them (UTF-8, no SASLprep), as Kafka's and librdkafka's clients do.
 * Channel binding is refused (Kafka has none); token authentication (Kafka's tokenauth extension) is
 * refused because mqlog has no delegation tokens.
 *
 * Threads: a struct mq_sasl belongs to one thread at a time; the functions without one are thread-safe.
 */
#ifndef MQ_SASL_H
#define MQ_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "util/err.h"

enum mq_sasl_mech { MQ_SASL_PLAIN, MQ_SASL_SCRAM_SHA_256, MQ_SASL_SCRAM_SHA_512, MQ_SASL__COUNT };

/* The mechanism's IANA name ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"). */
const char *mq_sasl_mech_name(enum mq_sasl_mech mech);

/* The mechanism named s[0..len) (case-sensitive, as Kafka compares them); false when none. */
bool mq_sasl_mech_parse(const char *s, size_t len, enum mq_sasl_mech *mech);

/* True when name is a user name mqlog accepts: 1..MQ_CATALOG_USER_NAME_MAX bytes, no control characters
 * (so that it is safe in logs; ',' and '=' are fine, SCRAM escapes them). */
bool mq_sasl_user_name_valid(const char *name, size_t len);

/*
 * Derives the stored credential of a password for a SCRAM mechanism: SaltedPassword = PBKDF2(password,
 * salt, iterations), StoredKey, ServerKey. Fills every field of *cred but name and created_ms. MQ_ERR_INVAL
 * for PLAIN, a salt of 0 or more than MQ_CATALOG_SALT_MAX bytes, or iterations out of
 * [MQ_SCRAM_ITERATIONS_MIN, MQ_SCRAM_ITERATIONS_MAX]; MQ_ERR_NOMEM when OpenSSL fails.
 */
enum mq_err mq_sasl_scram_derive(enum mq_sasl_mech mech, const char *password, size_t password_len,
                                 const uint8_t *salt, size_t salt_len, int32_t iterations,
                                 struct mq_catalog_user *cred);

/* Fills buf[0..len) with random bytes (OpenSSL's RAND_bytes); MQ_ERR_IO when it has no entropy. */
enum mq_err mq_sasl_random(uint8_t *buf, size_t len);

/*
 * Looks up the credential of user for mechanism ("SCRAM-SHA-256" or "SCRAM-SHA-512") into *cred: MQ_OK,
 * MQ_ERR_NOENT for no such credential, another error when the store failed (the authentication then fails
 * as a server error, MQ_SASL_ERROR).
 */
typedef enum mq_err mq_sasl_lookup_fn(void *opaque, const char *user, const char *mechanism,
                                      struct mq_catalog_user *cred);

/* Writes a fresh server nonce of printable characters (no ',') into buf (cap bytes, no NUL needed) and
 * returns its length (1..cap). For tests: the default draws MQ_SASL_NONCE_LEN characters from RAND_bytes. */
typedef size_t mq_sasl_nonce_fn(void *opaque, char *buf, size_t cap);

/*
 * A memo of PLAIN's password check. Checking a PLAIN password means running PBKDF2 (4096 to 16384 rounds of
 * HMAC, milliseconds) over it with the credential's salt, on the thread that serves every connection; a
 * client that logs in again and again (a job reconnecting, or a flood) would pay that each time. The memo
 * remembers, per (mechanism, user, salt, iterations, password), the StoredKey that password yields, so a
 * repeated login costs two HMACs and a hash. It holds no password and no SaltedPassword: entries are found
 * by an HMAC under a random per-process key, and StoredKey is what the catalog holds anyway.
 *
 * The answer is always checked against the credential just read from the catalog, so a stale entry can
 * never admit anyone: a user whose password changes gets a new salt (or a new StoredKey), which no entry
 * matches. Entries of a user whose credential changed are dropped at that user's next login, and every entry
 * expires ttl_ms after it was made. At most `entries` are kept, the least recently used going first when
 * it is full; but as long as the entries that never verified a login (wrong passwords, unknown users) hold
 * a quarter of it or more, one of those goes, so that a stream of wrong passwords cannot push out the
 * entries of clients that log in.
 *
 * Thread-safe (one lock).
 */
struct mq_sasl_cache;

#define MQ_SASL_CACHE_ENTRIES 512
#define MQ_SASL_CACHE_TTL_MS  (3600 * 1000)

/* A memo of up to entries (>= 4) entries, each kept at most ttl_ms (> 0); NULL when out of memory or for
 * bad arguments. Freed with mq_sasl_cache_free(). */
struct mq_sasl_cache *mq_sasl_cache_new(size_t entries, int64_t ttl_ms);

/* Frees c (accepts NULL), wiping its entries. */
void mq_sasl_cache_free(struct mq_sasl_cache *c);

struct mq_sasl_cache_stats {
    uint64_t hits;        /* PLAIN checks answered from the memo */
    uint64_t misses;      /* PLAIN checks that ran PBKDF2 */
    uint64_t invalidated; /* entries dropped because their user's credential changed */
    uint64_t evicted;     /* entries dropped for room or age */
    size_t entries;       /* held now */
};
void mq_sasl_cache_stats(struct mq_sasl_cache *c, struct mq_sasl_cache_stats *st);

struct mq_sasl_conf {
    mq_sasl_lookup_fn *lookup;
    void *lookup_opaque;
    mq_sasl_nonce_fn *nonce; /* NULL: random */
    void *nonce_opaque;
    struct mq_sasl_cache *cache; /* PLAIN's memo, shared by many authentications; NULL: none */
};

#define MQ_SASL_NONCE_LEN  24 /* the server's part of the SCRAM nonce */
#define MQ_SASL_SALT_LEN   24 /* the salt of a credential mqlog makes (mqlog user), and of an unknown user */
#define MQ_SASL_NONCE_MAX  64
#define MQ_SASL_TOKEN_MAX  4096 /* longer client tokens fail the authentication */
#define MQ_SASL_REASON_MAX 160

enum mq_sasl_status {
    MQ_SASL_CONTINUE, /* send the server token and wait for the client's next one */
    MQ_SASL_DONE,     /* authenticated: send the server token (maybe empty); mq_sasl_user() says who */
    MQ_SASL_FAIL,     /* the client failed (malformed message, unknown user, wrong password): reason says */
    MQ_SASL_ERROR,    /* the server failed (the lookup, out of memory): reason says */
};

struct mq_sasl;

/* Starts an authentication with mech; conf is copied (its lookup is required). NULL when out of memory. The
 * caller frees it with mq_sasl_free(). */
struct mq_sasl *mq_sasl_new(enum mq_sasl_mech mech, const struct mq_sasl_conf *conf);

/* Frees s (accepts NULL), wiping what it held of keys and passwords. */
void mq_sasl_free(struct mq_sasl *s);

/*
 * Feeds the client's next token in[0..len). *out and *out_len get the server's answer (owned by s, valid
 * until the next call; may be empty) when the status is MQ_SASL_CONTINUE or MQ_SASL_DONE. After DONE,
 * FAIL or ERROR every further step is MQ_SASL_FAIL.
 */
enum mq_sasl_status mq_sasl_step(struct mq_sasl *s, const uint8_t *in, size_t len, const uint8_t **out,
                                 size_t *out_len);

/* The authenticated user name after MQ_SASL_DONE, else NULL. */
const char *mq_sasl_user(const struct mq_sasl *s);

/* Why the last step failed (for the server's log: it may name the user and say "unknown user"), "" when it
 * did not. */
const char *mq_sasl_reason(const struct mq_sasl *s);

#endif
