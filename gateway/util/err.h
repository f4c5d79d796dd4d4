/*
 * err.h - mqlog's one error type.
 *
 * Every fallible function in the core returns an enum mq_err (MQ_OK is 0). Library error codes (errno,
 * SQLite, libyaml, Paho, libmosquitto) are translated where they enter mqlog; a constructor that fails also
 * writes a human-readable reason into a caller-supplied buffer (errstr, errstr_size), as librdkafka does.
 */
#ifndef MQ_ERR_H
#define MQ_ERR_H

#include <stddef.h>

enum mq_err {
    MQ_OK = 0,
    MQ_ERR_INVAL,    /* invalid argument or malformed input */
    MQ_ERR_NOMEM,    /* out of memory */
    MQ_ERR_IO,       /* an I/O error from the operating system */
    MQ_ERR_NOSPC,    /* no space left on the device: the append was not stored, retry later */
    MQ_ERR_NOENT,    /* no such topic, partition, file or row */
    MQ_ERR_EXISTS,   /* already exists */
    MQ_ERR_CORRUPT,  /* stored data failed a size or CRC check */
    MQ_ERR_RANGE,    /* offset or value out of range */
    MQ_ERR_BUSY,     /* the resource is held by another writer */
    MQ_ERR_FULL,     /* backpressure: the store holds too much unwritten data, retry later */
    MQ_ERR_CLOSED,   /* the object is closed or shutting down */
    MQ_ERR_TIMEDOUT, /* a wait reached its deadline */
    MQ_ERR_DB,       /* a catalog (SQLite) error */
    MQ_ERR_CONFIG,   /* a configuration error */
    MQ_ERR_PROTOCOL, /* a peer broke a protocol */
    MQ_ERR_READONLY, /* the object was opened read-only */
    MQ_ERR__COUNT
};

/* A short, constant, English description of err. Never NULL. */
const char *mq_strerror(enum mq_err err);

/* Translates an errno value into an enum mq_err (ENOSPC and EDQUOT become MQ_ERR_NOSPC, ...). */
enum mq_err mq_err_from_errno(int errnum);

/*
 * Formats into errstr (when errstr is not NULL and errstr_size > 0), always NUL-terminated, and returns
 * err, so that a constructor can `return mq_errf(MQ_ERR_IO, errstr, errstr_size, "open %s: %s", ...)`.
 */
enum mq_err mq_errf(enum mq_err err, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Our messages are one sentence each, as Unix tools write them: lowercase, no final period. Libraries write
 * theirs as sentences of their own ("The connection was lost.", "Local: Broker transport failure", "No such
 * file or directory"), which glued into ours gave "lost: The connection was lost.; reconnecting".
 *
 * mq_clause() copies the library's text foreign into buf (size bytes, always NUL-terminated) as a clause of
 * ours: trailing periods and white space dropped, a sentence inside it ended by "; " instead of ". ", and
 * the first word of each sentence or of each part after ": " lowercased when it is an ordinary capitalised
 * word ("The", "Invalid", "A"; not "TLS", "OpenSSL" or "X509"). NULL becomes "unknown error". Returns buf.
 *
 * MQ_CLAUSE(s) does it in a buffer that lives until the end of the enclosing block (a compound literal), so
 * that it can stand in a call's arguments: MQ_WARN("...: %s", MQ_CLAUSE(mosquitto_strerror(rc))). Every
 * library string a message embeds goes through it (scripts/check-messages fails otherwise).
 */
const char *mq_clause(const char *foreign, char *buf, size_t size);
#define MQ_CLAUSE_MAX 512
#define MQ_CLAUSE(s)  mq_clause((s), (char[MQ_CLAUSE_MAX]){0}, MQ_CLAUSE_MAX)
/* The refusal of an MQTT 3.1.1 CONNACK return code (1 to 5, section 3.2.2.3) as a clause ("not authorised"):
 * mosquitto_connack_string() says "Connection Refused: not authorised." where we say "connection refused: ".
 */
const char *mq_connack_reason(int code);

/* strerror(e) as a clause ("no such file or directory"), with MQ_CLAUSE's lifetime; needs <string.h>. */
#define MQ_STRERROR(e) MQ_CLAUSE(strerror(e))

#endif
