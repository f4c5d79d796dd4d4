/*
 * auth.c - SASL authentication of the Kafka endpoint's connections (see server_int.h): the gate that lets
 * an unauthenticated client send only ApiVersions, SaslHandshake and SaslAuthenticate, the handlers of the
 * two SASL APIs, and the bare tokens that follow a SaslHandshake v0.
 *
 * As Kafka does (its SaslServerAuthenticator and KafkaApis): a request of another API before
 * authentication closes the connection; a failed authentication is answered (SaslAuthenticate:
 * SASL_AUTHENTICATION_FAILED with a message that does not say whether the user exists) and the connection
 * closed once the answer is sent, so a connection gets one attempt; after SaslHandshake v0 a failure closes
 * the connection unanswered, as the bare-token exchange has no way to carry an error. A second SaslHandshake
 * during the exchange gets ILLEGAL_SASL_STATE and the connection is closed; after a successful one it gets
 * ILLEGAL_SASL_STATE and the connection goes on (Kafka without re-authentication, which mqlog does not
 * offer: it tells clients a session lifetime of 0).
 *
 * The mechanisms themselves are sasl/sasl.h; users are read from the catalog at every authentication, so
 * that `mqlog user` changes apply to the next connection. PLAIN's PBKDF2 runs on the loop thread, so its
 * results are memoised (srv->sasl_cache, see sasl.h): a client that logs in again and again costs it once.
 * Failures are logged rate limited (a client can repeat them at will) and counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/proto_sasl.h"
#include "kafka/server_int.h"
#include "sasl/sasl.h"
#include "util/diag.h"

static enum mq_err auth_lookup(void *opaque, const char *user, const char *mechanism,
                               struct mq_catalog_user *cred)
{
    struct mq_kafka_server *srv = opaque;
    enum mq_err err = mq_catalog_user_get(srv->cat, user, mechanism, cred);
    if (err != MQ_OK && err != MQ_ERR_NOENT)
        MQ_WARN("kafka: reading user %s from the catalog: %s (%s)", user, mq_strerror(err),
                mq_catalog_errmsg(srv->cat));
    return err;
}

enum mq_err mq_ksrv_auth_init(struct mq_kafka_server *srv)
{
    bool plain = false;
    for (size_t i = 0; i < srv->n_listeners; i++)
        plain |= (srv->listeners[i].sasl_mechs & (1u << MQ_SASL_PLAIN)) != 0;
    if (!plain)
        return MQ_OK;
    srv->sasl_cache = mq_sasl_cache_new(MQ_SASL_CACHE_ENTRIES, MQ_SASL_CACHE_TTL_MS);
    return srv->sasl_cache ? MQ_OK : MQ_ERR_NOMEM;
}

/* Logs one authentication failure of c: every one at debug level, and rate limited at info (server errors
 * as warnings), as a client can fail at will. */
static void auth_log(struct conn *c, bool server_error, const char *what)
{
    MQ_DEBUG("kafka: %s", what);
    if (server_error)
        mq_ksrv_ratelog(&c->srv->auth_errors, MQ_LV_WARN, now_ms(),
                        "SASL authentications failed by the server", what);
    else
        mq_ksrv_ratelog(&c->srv->auth_failures, MQ_LV_INFO, now_ms(), "failed SASL authentications", what);
}

bool mq_ksrv_auth_allows(struct conn *c, int16_t api_key)
{
    if (c->sasl_mechs == 0 || c->principal)
        return true;
    if (api_key == MQ_KAPI_API_VERSIONS || api_key == MQ_KAPI_SASL_HANDSHAKE ||
        api_key == MQ_KAPI_SASL_AUTHENTICATE)
        return true;
    char why[200];
    snprintf(why, sizeof why, "closing connection from %s: %s request before SASL authentication", c->peer,
             mq_kafka_api_name(api_key));
    auth_log(c, false, why);
    mq_ksrv_conn_kill(c, NULL);
    return false;
}

/* Authenticated: the principal ACLs will see. */
static void auth_done(struct conn *c)
{
    const char *user = mq_sasl_user(c->sasl);
    size_t n = strlen("User:") + strlen(user) + 1;
    c->principal = malloc(n);
    if (!c->principal) {
        mq_ksrv_conn_kill(c, "out of memory");
        return;
    }
    snprintf(c->principal, n, "User:%s", user);
    MQ_INFO("kafka: %s authenticated as %s (%s)", c->peer, c->principal, mq_sasl_mech_name(c->sasl_mech));
    mq_sasl_free(c->sasl);
    c->sasl = NULL;
    c->auth = MQ_KSRV_AUTH_DONE;
}

/* A failed authentication, logged with the reason the client is not told. */
static void auth_failed(struct conn *c, enum mq_sasl_status st)
{
    atomic_fetch_add(&c->srv->st_auth_failed, 1);
    char what[320];
    snprintf(what, sizeof what, "%s: %s authentication failed: %s", c->peer, mq_sasl_mech_name(c->sasl_mech),
             mq_sasl_reason(c->sasl));
    auth_log(c, st == MQ_SASL_ERROR, what);
    mq_sasl_free(c->sasl);
    c->sasl = NULL;
    c->auth = MQ_KSRV_AUTH_FAILED;
}

/* The mechanisms c's listener offers, by name, in the arena of r. */
static const char **auth_offered(struct req *r, int32_t *n)
{
    const char **names = mq_kafka_arena_calloc(&r->arena, MQ_SASL__COUNT, sizeof *names);
    *n = 0;
    for (int m = 0; names && m < MQ_SASL__COUNT; m++)
        if (r->conn->sasl_mechs & (1u << m))
            names[(*n)++] = mq_sasl_mech_name((enum mq_sasl_mech)m);
    return names;
}

void mq_ksrv_handle_sasl_handshake(struct req *r, struct mq_kafka_rd *rd)
{
    struct conn *c = r->conn;
    struct mq_kafka_sasl_handshake_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_sasl_handshake_req_decode(rd, r->hdr.api_version, &q)))
        return;
    q.mechanisms = auth_offered(r, &q.mechanism_count);
    if (!q.mechanisms) {
        mq_ksrv_conn_kill(c, "out of memory");
        return;
    }
    enum mq_sasl_mech mech;
    bool close = false;
    if (c->sasl_mechs == 0 || c->auth == MQ_KSRV_AUTH_DONE) {
        /* A listener without SASL, or a connection authenticated already: KafkaApis's answer, with no
         * mechanisms listed, and the connection goes on. */
        q.error = MQ_KC_ILLEGAL_SASL_STATE;
        q.mechanism_count = 0;
    } else if (c->auth != MQ_KSRV_AUTH_NONE) {
        /* A second handshake in the middle of the exchange: Kafka's SaslServerAuthenticator answers any
         * request but SaslAuthenticate there with ILLEGAL_SASL_STATE and fails the authentication. */
        q.error = MQ_KC_ILLEGAL_SASL_STATE;
        q.mechanism_count = 0;
        close = true;
        char what[200];
        snprintf(what, sizeof what, "%s: a second SaslHandshake during SASL authentication", c->peer);
        atomic_fetch_add(&c->srv->st_auth_failed, 1);
        auth_log(c, false, what);
        mq_sasl_free(c->sasl);
        c->sasl = NULL;
        c->auth = MQ_KSRV_AUTH_FAILED;
    } else if (!q.mechanism.ptr || !mq_sasl_mech_parse(q.mechanism.ptr, (size_t)q.mechanism.len, &mech) ||
               !(c->sasl_mechs & (1u << mech))) {
        q.error = MQ_KC_UNSUPPORTED_SASL_MECHANISM;
        close = true;
        char what[200];
        snprintf(what, sizeof what, "%s asked for SASL mechanism '%.*s', which this listener does not offer",
                 c->peer, q.mechanism.len > 0 && q.mechanism.len < 64 ? (int)q.mechanism.len : 0,
                 q.mechanism.ptr ? q.mechanism.ptr : "");
        auth_log(c, false, what);
    } else {
        struct mq_sasl_conf sc = {
            .lookup = auth_lookup, .lookup_opaque = c->srv, .cache = c->srv->sasl_cache};
        c->sasl = mq_sasl_new(mech, &sc);
        if (!c->sasl) {
            mq_ksrv_conn_kill(c, "out of memory");
            return;
        }
        c->sasl_mech = mech;
        c->auth = r->hdr.api_version == 0 ? MQ_KSRV_AUTH_RAW : MQ_KSRV_AUTH_STARTED;
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_sasl_handshake_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
    if (close)
        c->close_when_sent = true;
}

void mq_ksrv_handle_sasl_authenticate(struct req *r, struct mq_kafka_rd *rd)
{
    struct conn *c = r->conn;
    struct mq_kafka_sasl_authenticate_req q;
    if (!mq_ksrv_decoded(r, mq_kafka_sasl_authenticate_req_decode(rd, r->hdr.api_version, &q)))
        return;
    char msg[160];
    if (c->auth != MQ_KSRV_AUTH_STARTED) {
        q.error = MQ_KC_ILLEGAL_SASL_STATE;
        q.error_message = c->auth == MQ_KSRV_AUTH_DONE ? "SaslAuthenticate request received after successful "
                                                         "authentication"
                                                       : "SaslAuthenticate before a SaslHandshake v1";
        /* Kafka closes a connection still unauthenticated here; an authenticated one goes on. */
        if (c->auth != MQ_KSRV_AUTH_DONE && c->sasl_mechs != 0)
            c->close_when_sent = true;
    } else {
        const uint8_t *out = NULL;
        size_t out_len = 0;
        enum mq_sasl_status st =
            mq_sasl_step(c->sasl, (const uint8_t *)q.auth_bytes.ptr,
                         q.auth_bytes.len > 0 ? (size_t)q.auth_bytes.len : 0, &out, &out_len);
        if (st == MQ_SASL_CONTINUE || st == MQ_SASL_DONE) {
            q.out_bytes = out;
            q.out_len = (int32_t)out_len;
        } else {
            q.error = MQ_KC_SASL_AUTHENTICATION_FAILED;
            snprintf(msg, sizeof msg,
                     st == MQ_SASL_FAIL ? "Authentication failed during authentication due to invalid "
                                          "credentials with SASL mechanism %s"
                                        : "Authentication failed with SASL mechanism %s: a server error",
                     mq_sasl_mech_name(c->sasl_mech));
            q.error_message = msg;
            auth_failed(c, st);
            c->close_when_sent = true;
        }
        /* The answer is encoded before auth_done() frees the mechanism that owns out. */
        struct out_item *it = mq_ksrv_resp_begin(r);
        if (it)
            mq_kafka_sasl_authenticate_resp_encode(&it->out.wr, r->hdr.api_version, &q);
        mq_ksrv_resp_end(r, it);
        if (st == MQ_SASL_DONE)
            auth_done(c);
        return;
    }
    struct out_item *it = mq_ksrv_resp_begin(r);
    if (it)
        mq_kafka_sasl_authenticate_resp_encode(&it->out.wr, r->hdr.api_version, &q);
    mq_ksrv_resp_end(r, it);
}

void mq_ksrv_auth_raw(struct conn *c, uint8_t *body, size_t len)
{
    const uint8_t *out = NULL;
    size_t out_len = 0;
    enum mq_sasl_status st = mq_sasl_step(c->sasl, body, len, &out, &out_len);
    struct req *r = NULL;
    if (st == MQ_SASL_CONTINUE || st == MQ_SASL_DONE)
        r = calloc(1, sizeof *r);
    if (!r) {
        free(body);
        if (st == MQ_SASL_CONTINUE || st == MQ_SASL_DONE) {
            mq_ksrv_conn_kill(c, "out of memory");
            return;
        }
        /* Nothing to answer: the connection closes once what it was answered before is out (a client
         * that pipelined its token behind the handshake still reads the handshake's answer). */
        auth_failed(c, st);
        c->close_when_sent = true;
        return;
    }
    /* A bare token answers a bare token: a size prefix and the bytes, no header. */
    r->conn = c;
    r->body = body;
    r->len = len;
    mq_kafka_arena_init(&r->arena);
    struct out_item *it = calloc(1, sizeof *it);
    if (it) {
        mq_kafka_out_init(&it->out);
        it->out.size_pos = mq_kafka_wr_reserve_i32(&it->out.wr);
        mq_kafka_wr_raw(&it->out.wr, out, out_len);
    }
    mq_ksrv_resp_end(r, it);
    if (st == MQ_SASL_DONE)
        auth_done(c);
    mq_ksrv_req_free(r);
}
