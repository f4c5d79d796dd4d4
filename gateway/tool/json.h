/*
 * json.h - a small JSON reader for the documents mqlogd serves (/status.json), which `mqlog status` reads.
 *
 * Why not a library: no JSON library is linked into mqlog (json-c and jansson are not build dependencies),
 * and the one document read is mqlogd's own, bounded, written by observe.c. Adding a build and package
 * dependency to read it was not worth it; this reader is strict RFC 8259 (it refuses what it does not
 * understand) and small. It is not a general-purpose parser: numbers are kept as int64 when integral and
 * as double otherwise, strings are unescaped to UTF-8 (with \u0000 refused: mqlog's strings are C strings),
 * and nesting is limited to MQ_JSON_MAX_DEPTH.
 */
#ifndef MQ_TOOL_JSON_H
#define MQ_TOOL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQ_JSON_MAX_DEPTH 32

enum mq_json_type {
    MQ_JSON_NULL,
    MQ_JSON_BOOL,
    MQ_JSON_NUMBER,
    MQ_JSON_STRING,
    MQ_JSON_ARRAY,
    MQ_JSON_OBJECT
};

struct mq_json {
    enum mq_json_type type;
    bool b;
    bool integral; /* a number without fraction or exponent that fits int64 */
    int64_t i;
    double d;
    char *s;              /* MQ_JSON_STRING; for object members, key holds the name */
    char *key;            /* the member name when this value is in an object, else NULL */
    struct mq_json *kids; /* MQ_JSON_ARRAY, MQ_JSON_OBJECT: the items or members, in document order */
    size_t n;
};

/* Parses text[0..len) into *out (the caller frees it with mq_json_free). Returns false with errstr saying
 * what and at which byte offset when text is not one JSON value (whitespace around it allowed). */
bool mq_json_parse(const char *text, size_t len, struct mq_json **out, char *errstr, size_t errstr_size);

/* Frees a value from mq_json_parse(). Accepts NULL. */
void mq_json_free(struct mq_json *v);

/* Member key of object v (the first when repeated), or NULL when v is not an object or has none. */
const struct mq_json *mq_json_get(const struct mq_json *v, const char *key);

/* Item i of array v, or NULL. mq_json_len: the items of an array, 0 for anything else. */
const struct mq_json *mq_json_at(const struct mq_json *v, size_t i);
size_t mq_json_len(const struct mq_json *v);

/* Member key of v read as a type, or dflt when v is not an object, the member is missing or has another
 * type (a number with a fraction is truncated for mq_json_int). */
int64_t mq_json_int(const struct mq_json *v, const char *key, int64_t dflt);
double mq_json_num(const struct mq_json *v, const char *key, double dflt);
bool mq_json_bool(const struct mq_json *v, const char *key, bool dflt);
const char *mq_json_str(const struct mq_json *v, const char *key, const char *dflt);

#endif
