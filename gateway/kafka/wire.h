/*
 * wire.h - the Kafka wire protocol's primitive types: a bounds-checked reader and a growing writer.
 *
 * Everything the Kafka endpoint receives passes through struct mq_kafka_rd, which never reads past the end
 * of its buffer: a read that would, or a length that cannot fit in what is left, sets a sticky error and
 * returns a zero value, so a decoder can read a run of fields and check mq_kafka_rd_ok() once. Lengths are
 * validated against the remaining bytes before anything is allocated for them, so a hostile request can
 * make the server allocate no more than a small multiple of its own size.
 *
 * Types (all integers big-endian): INT8/16/32/64, BOOLEAN; STRING (int16 length), NULLABLE_STRING (-1 is
 * null), BYTES and NULLABLE_BYTES (int32 length), ARRAY (int32 count, -1 null); the "compact" forms of
 * flexible versions, whose lengths are unsigned varints holding length + 1 (0 is null); tagged-field
 * sections (a count, then tag, size, bytes per field); and zig-zag VARINT / VARLONG.
 *
 * Strings and byte fields are returned as views into the reader's buffer (not NUL-terminated), valid as
 * long as the buffer is.
 */
#ifndef MQ_KAFKA_WIRE_H
#define MQ_KAFKA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* A view of a string or byte field. len -1 means null (ptr is NULL then). */
struct mq_kafka_str {
    const char *ptr;
    int32_t len;
};

/* True when s equals the NUL-terminated c (a null s equals nothing). */
bool mq_kafka_str_eq(struct mq_kafka_str s, const char *c);

/*
 * Copies s into dst (dst_size bytes, NUL-terminated). Returns false when s is null, longer than
 * dst_size - 1, or holds a NUL byte; dst is then the empty string.
 */
bool mq_kafka_str_copy(struct mq_kafka_str s, char *dst, size_t dst_size);

/* ---- reading ---- */

struct mq_kafka_rd {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last readable byte */
    enum mq_err err;    /* MQ_OK, or the first error met (MQ_ERR_PROTOCOL; MQ_ERR_RANGE: over max_parts);
                           sticky */
    /* The most topics, and the most topic-partitions in all, one request may list (the request decoders
     * of proto.h check it): a request within max_request_bytes can still list a million partitions, and
     * every one costs a lookup and response bytes. mq_kafka_rd_init() sets no limit (INT32_MAX). */
    int32_t max_parts;
    int32_t parts_left; /* of max_parts, for the partitions still to come */
};

/* Starts reading len bytes at buf, with no limit on topic-partitions (set max_parts and parts_left to
 * impose one). The caller keeps buf alive while views from the reader are used. */
void mq_kafka_rd_init(struct mq_kafka_rd *rd, const void *buf, size_t len);

static inline bool mq_kafka_rd_ok(const struct mq_kafka_rd *rd)
{
    return rd->err == MQ_OK;
}
static inline size_t mq_kafka_rd_left(const struct mq_kafka_rd *rd)
{
    return (size_t)(rd->end - rd->p);
}

/* Marks the reader failed (e.g. a decoder found a value it cannot accept). Returns the error. */
enum mq_err mq_kafka_rd_fail(struct mq_kafka_rd *rd);

int8_t mq_kafka_rd_i8(struct mq_kafka_rd *rd);
int16_t mq_kafka_rd_i16(struct mq_kafka_rd *rd);
int32_t mq_kafka_rd_i32(struct mq_kafka_rd *rd);
int64_t mq_kafka_rd_i64(struct mq_kafka_rd *rd);
bool mq_kafka_rd_bool(struct mq_kafka_rd *rd);
/* An unsigned varint of at most 5 bytes (values up to 2^32 - 1). */
uint32_t mq_kafka_rd_uvarint(struct mq_kafka_rd *rd);
/* Zig-zag signed varints: VARINT (32 bits, at most 5 bytes) and VARLONG (64 bits, at most 10 bytes). */
int32_t mq_kafka_rd_varint(struct mq_kafka_rd *rd);
int64_t mq_kafka_rd_varlong(struct mq_kafka_rd *rd);

/* STRING (null is an error) and NULLABLE_STRING. */
struct mq_kafka_str mq_kafka_rd_string(struct mq_kafka_rd *rd);
struct mq_kafka_str mq_kafka_rd_nstring(struct mq_kafka_rd *rd);
/* COMPACT_STRING (null is an error) and COMPACT_NULLABLE_STRING. */
struct mq_kafka_str mq_kafka_rd_cstring(struct mq_kafka_rd *rd);
struct mq_kafka_str mq_kafka_rd_cnstring(struct mq_kafka_rd *rd);
/* BYTES (null is an error) and NULLABLE_BYTES; COMPACT_BYTES and COMPACT_NULLABLE_BYTES. */
struct mq_kafka_str mq_kafka_rd_bytes(struct mq_kafka_rd *rd);
struct mq_kafka_str mq_kafka_rd_nbytes(struct mq_kafka_rd *rd);
struct mq_kafka_str mq_kafka_rd_cbytes(struct mq_kafka_rd *rd);
struct mq_kafka_str mq_kafka_rd_cnbytes(struct mq_kafka_rd *rd);

/*
 * An ARRAY's element count. Each element takes at least min_elem_size bytes (>= 1), so a count that
 * cannot fit in the bytes left is rejected here, before anyone allocates for it. Returns -1 for a null
 * array when nullable, otherwise null is an error; 0 on error.
 */
int32_t mq_kafka_rd_array(struct mq_kafka_rd *rd, size_t min_elem_size, bool nullable);
/* The same for COMPACT_ARRAY (unsigned varint count + 1, 0 is null). */
int32_t mq_kafka_rd_carray(struct mq_kafka_rd *rd, size_t min_elem_size, bool nullable);

/* Skips a tagged-field section (flexible versions); mqlog reads no tagged field. */
void mq_kafka_rd_tags(struct mq_kafka_rd *rd);

/* ---- writing ---- */

/*
 * A growing buffer. Writes never fail individually: when the buffer cannot grow, err becomes
 * MQ_ERR_NOMEM and further writes are dropped; check mq_kafka_wr_ok() before using buf.
 */
struct mq_kafka_wr {
    uint8_t *buf;
    size_t len;
    size_t cap;
    enum mq_err err;
};

void mq_kafka_wr_init(struct mq_kafka_wr *wr);
/* Frees the buffer; the writer can be reused after mq_kafka_wr_init(). Accepts a zeroed writer. */
void mq_kafka_wr_free(struct mq_kafka_wr *wr);
/* Empties the buffer, keeping its memory, and clears the error. */
void mq_kafka_wr_reset(struct mq_kafka_wr *wr);
/* Hands the buffer over to the caller (free() it) and leaves the writer empty. */
uint8_t *mq_kafka_wr_take(struct mq_kafka_wr *wr, size_t *len);

static inline bool mq_kafka_wr_ok(const struct mq_kafka_wr *wr)
{
    return wr->err == MQ_OK;
}

void mq_kafka_wr_raw(struct mq_kafka_wr *wr, const void *p, size_t n);
void mq_kafka_wr_i8(struct mq_kafka_wr *wr, int8_t v);
void mq_kafka_wr_i16(struct mq_kafka_wr *wr, int16_t v);
void mq_kafka_wr_i32(struct mq_kafka_wr *wr, int32_t v);
void mq_kafka_wr_i64(struct mq_kafka_wr *wr, int64_t v);
void mq_kafka_wr_bool(struct mq_kafka_wr *wr, bool v);
void mq_kafka_wr_uvarint(struct mq_kafka_wr *wr, uint32_t v);
void mq_kafka_wr_varint(struct mq_kafka_wr *wr, int32_t v);
void mq_kafka_wr_varlong(struct mq_kafka_wr *wr, int64_t v);

/* STRING / NULLABLE_STRING from a view (len -1: null; strings longer than 32767 bytes are truncated to
 * their first 32767 bytes, which no Kafka name reaches). */
void mq_kafka_wr_str(struct mq_kafka_wr *wr, struct mq_kafka_str s);
/* STRING from a C string; NULL writes a null NULLABLE_STRING. */
void mq_kafka_wr_string(struct mq_kafka_wr *wr, const char *s);
/* COMPACT_(NULLABLE_)STRING from a view or a C string (NULL: null). */
void mq_kafka_wr_cstr(struct mq_kafka_wr *wr, struct mq_kafka_str s);
void mq_kafka_wr_cstring(struct mq_kafka_wr *wr, const char *s);
/* (NULLABLE_)BYTES and COMPACT_(NULLABLE_)BYTES; len -1 (or p NULL) writes null. */
void mq_kafka_wr_bytes(struct mq_kafka_wr *wr, const void *p, int32_t len);
void mq_kafka_wr_cbytes(struct mq_kafka_wr *wr, const void *p, int32_t len);
/* An ARRAY count (-1: null) and a COMPACT_ARRAY count (-1: null). */
void mq_kafka_wr_array(struct mq_kafka_wr *wr, int32_t n);
void mq_kafka_wr_carray(struct mq_kafka_wr *wr, int32_t n);
/* An empty tagged-field section. */
void mq_kafka_wr_tags(struct mq_kafka_wr *wr);

/* Reserves 4 bytes for an INT32 written later with mq_kafka_wr_patch_i32(); returns their position. */
size_t mq_kafka_wr_reserve_i32(struct mq_kafka_wr *wr);
void mq_kafka_wr_patch_i32(struct mq_kafka_wr *wr, size_t pos, int32_t v);

/* ---- framing and the request header ---- */

/* Every request and response is an INT32 size followed by that many bytes. */
#define MQ_KAFKA_FRAME_PREFIX 4
/* A request shorter than api_key + api_version + correlation_id cannot be answered at all. */
#define MQ_KAFKA_MIN_REQUEST 8

/*
 * Looks at the first avail bytes of a connection's input. Returns MQ_OK with *frame_len the size of the
 * whole frame (prefix included) once the 4-byte prefix is there (the frame itself may still be incomplete),
 * MQ_ERR_RANGE when fewer than 4 bytes are there, MQ_ERR_PROTOCOL when the announced size is below
 * MQ_KAFKA_MIN_REQUEST or above max_request (the connection must then be closed).
 */
enum mq_err mq_kafka_frame_size(const uint8_t *buf, size_t avail, size_t max_request, size_t *frame_len);

struct mq_kafka_req_hdr {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    struct mq_kafka_str client_id; /* null in header v0 or when the client sent null */
};

/*
 * Reads the first 8 bytes of a request (key, version, correlation id): enough to answer with an error
 * even when the rest cannot be parsed. MQ_ERR_PROTOCOL when fewer than 8 bytes are there.
 */
enum mq_err mq_kafka_req_hdr_peek(const uint8_t *body, size_t len, struct mq_kafka_req_hdr *h);

/*
 * Parses a request header of version hdr_version (0: no client id; 1: + NULLABLE_STRING client id, an
 * INT16-length string even in flexible requests; 2: + a tagged-field section) and leaves rd at the body.
 * MQ_ERR_PROTOCOL when truncated or malformed, MQ_ERR_INVAL for a header version other than 0-2.
 */
enum mq_err mq_kafka_req_hdr_parse(struct mq_kafka_rd *rd, int hdr_version, struct mq_kafka_req_hdr *h);

#endif
