/*
 * proto_sasl.c - the codecs of SaslHandshake and SaslAuthenticate (see proto_sasl.h), following Kafka's
 * SaslHandshakeRequest/Response.json and SaslAuthenticateRequest/Response.json.
 */
#include "kafka/proto_sasl.h"

#include <string.h>

enum mq_err mq_kafka_sasl_handshake_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                               struct mq_kafka_sasl_handshake_req *r)
{
    (void)v; /* v1 differs only in what follows the handshake */
    memset(r, 0, sizeof *r);
    r->mechanism = mq_kafka_rd_string(rd);
    return rd->err;
}

void mq_kafka_sasl_handshake_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                         const struct mq_kafka_sasl_handshake_req *r)
{
    (void)v;
    mq_kafka_wr_i16(wr, r->error);
    mq_kafka_wr_array(wr, r->mechanism_count);
    for (int32_t i = 0; i < r->mechanism_count; i++)
        mq_kafka_wr_string(wr, r->mechanisms[i]);
}

enum mq_err mq_kafka_sasl_authenticate_req_decode(struct mq_kafka_rd *rd, int16_t v,
                                                  struct mq_kafka_sasl_authenticate_req *r)
{
    memset(r, 0, sizeof *r);
    if (v >= 2) {
        r->auth_bytes = mq_kafka_rd_cbytes(rd);
        mq_kafka_rd_tags(rd);
    } else {
        r->auth_bytes = mq_kafka_rd_bytes(rd);
    }
    return rd->err;
}

void mq_kafka_sasl_authenticate_resp_encode(struct mq_kafka_wr *wr, int16_t v,
                                            const struct mq_kafka_sasl_authenticate_req *r)
{
    /* An empty token is zero bytes, not null: wr_bytes writes null for a NULL pointer. */
    const void *bytes = r->out_bytes ? (const void *)r->out_bytes : "";
    mq_kafka_wr_i16(wr, r->error);
    if (v >= 2) {
        mq_kafka_wr_cstring(wr, r->error_message);
        mq_kafka_wr_cbytes(wr, bytes, r->out_len);
    } else {
        mq_kafka_wr_string(wr, r->error_message);
        mq_kafka_wr_bytes(wr, bytes, r->out_len);
    }
    if (v >= 1)
        mq_kafka_wr_i64(wr, r->session_lifetime_ms);
    if (v >= 2)
        mq_kafka_wr_tags(wr);
}
