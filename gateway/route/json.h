/*
 * json.h - RFC 6901 JSON pointers evaluated over a payload with a small, strict, allocation-free scanner.
 *
 * The scanner accepts exactly RFC 8259 JSON (one value, optional surrounding whitespace; no comments,
 * trailing commas, NaN, leading zeros, control characters in strings or unpaired \u surrogates) and nests at
 * most MQ_JSON_MAX_DEPTH deep. It walks the whole document, so a payload that is not valid JSON never yields
 * a value, even when the part before the error held the pointed-to member. When an object holds a member
 * name twice, the pointer follows the first. Bytes outside ASCII are taken as they are.
 */
#ifndef MQ_ROUTE_JSON_H
#define MQ_ROUTE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define MQ_JSON_MAX_DEPTH 64

struct mq_json_pointer; /* a compiled pointer; immutable, so shareable between threads */

enum mq_json_kind {
    MQ_JSON_NULL,
    MQ_JSON_FALSE,
    MQ_JSON_TRUE,
    MQ_JSON_NUMBER,
    MQ_JSON_STRING,
    MQ_JSON_ARRAY,
    MQ_JSON_OBJECT,
};

/* A value found in a document: text[0..len) are its bytes in the document (a string with its quotes). */
struct mq_json_value {
    enum mq_json_kind kind;
    const char *text;
    size_t len;
};

/*
 * Compiles ptr ("" is the whole document; otherwise "/token/token...", with "~0" for '~' and "~1" for '/').
 * MQ_ERR_INVAL with errstr for a malformed pointer, MQ_ERR_NOMEM. The caller owns *out and frees it with
 * mq_json_pointer_free().
 */
enum mq_err mq_json_pointer_compile(const char *ptr, struct mq_json_pointer **out, char *errstr,
                                    size_t errstr_size);
void mq_json_pointer_free(struct mq_json_pointer *ptr);

/*
 * Finds what ptr points to in doc[0..len). True and *out filled when doc is valid JSON and holds the value;
 * false when it is not valid JSON or the pointer names a member or index it lacks ("-" never exists).
 */
bool mq_json_pointer_eval(const struct mq_json_pointer *ptr, const void *doc, size_t len,
                          struct mq_json_value *out);

/* Whether the string value v contains escapes (if not, its bytes are text[1..len-1) as they stand). */
bool mq_json_string_escaped(const struct mq_json_value *v);

/* Decodes the string value v (found by mq_json_pointer_eval) into buf, which must hold v->len bytes;
 * returns the decoded length (never more than v->len - 2). */
size_t mq_json_string_decode(const struct mq_json_value *v, char *buf);

#endif
