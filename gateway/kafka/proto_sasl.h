/*
 * proto_sasl.h - the codecs of Kafka's SASL APIs (see proto.h for the conventions): SaslHandshake (17) v0-1,
 * which picks the mechanism, and SaslAuthenticate (36) v0-2, which carries its tokens (v2 is flexible).
 * After SaslHandshake v0 a client sends the tokens bare instead, each a size-prefixed frame without a
 * request header, and reads the server's the same way (kafka-python 2.0.2 does this); those frames need no
 * codec.
 */
#ifndef MQ_KAFKA_PROTO_SASL_H
#define MQ_KAFKA_PROTO_SASL_H

#include <stdint.h>

#include "kafka/proto.h"
#include "kafka/wire.h"

/* ---- SaslHandshake (17) v0-1 ---- */

struct mq_kafka_sasl_handshake_req {
    struct mq_kafka_str mechanism;
    /* out */
    int16_t error;
    const char *const *mechanisms; /* what the listener offers */
    int32_t mechanism_count;
};
enum mq_err mq_kafka_sasl_handshake_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                               struct mq_kafka_sasl_handshake_req *r);
void mq_kafka_sasl_handshake_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                         const struct mq_kafka_sasl_handshake_req *r);

/* ---- SaslAuthenticate (36) v0-2 ---- */

struct mq_kafka_sasl_authenticate_req {
    struct mq_kafka_str auth_bytes;
    /* out */
    int16_t error;
    const char *error_message; /* NULL: null */
    const uint8_t *out_bytes;  /* the server's token */
    int32_t out_len;
    int64_t session_lifetime_ms; /* v1+: 0, sessions do not expire */
};
enum mq_err mq_kafka_sasl_authenticate_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                  struct mq_kafka_sasl_authenticate_req *r);
void mq_kafka_sasl_authenticate_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                            const struct mq_kafka_sasl_authenticate_req *r);

#endif
