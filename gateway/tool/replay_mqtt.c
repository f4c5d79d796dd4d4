/*
 * replay_mqtt.c - the MQTT side of `mqlog replay`: the --to URL (with its credentials) and one libmosquitto
 * client driven from the command's thread (mosquitto_loop() while waiting; no library thread, no locks).
 *
 * The callbacks count publishes until the broker acknowledges them (PUBACK for QoS 1, PUBCOMP for QoS 2; for
 * QoS 0 until the bytes are written to the socket); cmd_replay.c bounds how many are outstanding. A
 * connection lost midway is an error (reported with how far the replay got), not a silent reconnect: with a
 * clean session the broker would not know what was in flight.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/replay_int.h"
#include "tool/tool.h"
#include "util/err.h"
#include "util/parse.h"
#include "util/url.h"

static void mq_replay_on_connect(struct mosquitto *mosq, void *opaque, int rc)
{
    (void)mosq;
    struct mq_replay *rs = opaque;
    rs->connack_rc = rc;
    rs->connected = rc == 0;
}

static void mq_replay_on_disconnect(struct mosquitto *mosq, void *opaque, int rc)
{
    (void)mosq;
    (void)rc;
    struct mq_replay *rs = opaque;
    if (rs->connected)
        rs->conn_lost = true;
    rs->connected = false;
}

static void mq_replay_on_publish(struct mosquitto *mosq, void *opaque, int mid)
{
    (void)mosq;
    (void)mid;
    struct mq_replay *rs = opaque;
    rs->inflight--;
    rs->acked++;
    rs->last_ack_us = mq_mono_us();
}

/* Decodes the %XX escapes of the n bytes at p into a new string; NULL on a bad escape, %00 or no memory. */
static char *mq_replay_unescape(const char *p, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            *o++ = p[i];
            continue;
        }
        char hex[3] = {i + 1 < n ? p[i + 1] : 0, i + 2 < n ? p[i + 2] : 0, 0};
        char *end;
        long v = strtol(hex, &end, 16);
        if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) || *end || v == 0) {
            free(out);
            return NULL;
        }
        *o++ = (char)v;
        i += 2;
    }
    *o = 0;
    return out;
}

/* Splits "mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT][/]" into rs's host, port, TLS flag and credentials
 * (util/url.h parses the address), with replay's own messages. *shown gets the URL without credentials,
 * which messages name (rs->url points to it). */
bool mq_replay_parse_url(struct mq_replay *rs, const char *url, char **shown)
{
    /* A URL naming the root path ("mqtt://host/") means the same as without it. */
    size_t len = strlen(url);
    const char *auth = strstr(url, "://");
    bool root = auth && len > (size_t)(auth - url) + 3 && url[len - 1] == '/';
    char *bare = strndup(url, root ? len - 1 : len);
    if (!bare) {
        mq_tool_error("out of memory");
        return false;
    }
    /* Credentials are taken out before util/url.h, which refuses them (configuration files have keys). */
    char *ui = auth ? bare + (auth - url) + 3 : NULL;
    char *at = ui ? strchr(ui, '@') : NULL;
    if (at) {
        char *colon = memchr(ui, ':', (size_t)(at - ui));
        char *user = mq_replay_unescape(ui, (size_t)((colon ? colon : at) - ui));
        char *pw = colon ? mq_replay_unescape(colon + 1, (size_t)(at - colon - 1)) : NULL;
        if (!user || !*user || (colon && !pw)) {
            free(user);
            free(pw);
            free(bare);
            mq_tool_usage_error("replay", "--to: bad user name or password before '@' (write special "
                                          "characters as %%XX)");
            return false;
        }
        free(rs->username);
        rs->username = user;
        if (pw) {
            free(rs->password);
            rs->password = pw;
        }
        memmove(ui, at + 1, strlen(at + 1) + 1);
    }
    enum mq_url_fault fault = MQ_URL_FAULT_NONE;
    char why[512];
    enum mq_err err = mq_url_parse(bare, &rs->host, &rs->port, &rs->tls, &fault, why, sizeof why);
    if (err == MQ_ERR_NOMEM)
        mq_tool_error("out of memory");
    else if (err != MQ_OK && fault == MQ_URL_FAULT_SCHEME)
        mq_tool_usage_error("replay", "--to '%s': expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", bare);
    else if (err != MQ_OK && fault == MQ_URL_FAULT_PORT)
        mq_tool_usage_error("replay", "--to '%s': bad port '%s' (1..65535)", bare, strrchr(bare, ':') + 1);
    else if (err != MQ_OK)
        mq_tool_usage_error("replay", "--to %s", why);
    if (err != MQ_OK) {
        free(bare);
        return false;
    }
    *shown = bare;
    rs->url = bare;
    return true;
}

/* Describes a libmosquitto error code (its errno for MOSQ_ERR_ERRNO). */
const char *mq_replay_mosq_str(int rc, int saved_errno)
{
    if (rc == MOSQ_ERR_ERRNO)
        return strerror(saved_errno);
    return mosquitto_strerror(rc);
}

/* Runs the client's network loop for up to timeout_ms. False (after a message) when the connection is gone;
 * a signal only cuts the wait short. */
bool mq_replay_pump(struct mq_replay *rs, int timeout_ms)
{
    errno = 0;
    int rc = mosquitto_loop(rs->mosq, timeout_ms, 1);
    int e = errno;
    if (rc == MOSQ_ERR_ERRNO && e == EINTR)
        rc = MOSQ_ERR_SUCCESS;
    if (rc == MOSQ_ERR_SUCCESS && !rs->conn_lost)
        return true;
    mq_tool_error("connection to %s lost after %" PRId64 " of %" PRId64 " published messages were "
                  "acknowledged: %s",
                  rs->url, rs->acked, rs->published,
                  rc == MOSQ_ERR_SUCCESS ? "the broker closed it" : MQ_CLAUSE(mq_replay_mosq_str(rc, e)));
    return false;
}

/* Connects and waits for the broker's CONNACK. False after one message. */
bool mq_replay_connect(struct mq_replay *rs, const char *client_id)
{
    int rc = mosquitto_lib_init();
    if (rc != MOSQ_ERR_SUCCESS) {
        mq_tool_error("libmosquitto: %s", MQ_CLAUSE(mosquitto_strerror(rc)));
        return false;
    }
    rs->lib_init = true;
    rs->mosq = mosquitto_new(client_id, true, rs);
    if (!rs->mosq) {
        mq_tool_error("libmosquitto: %s", errno == EINVAL ? "invalid client id" : MQ_STRERROR(errno));
        return false;
    }
    if (rs->username) {
        rc = mosquitto_username_pw_set(rs->mosq, rs->username, rs->password);
        if (rc != MOSQ_ERR_SUCCESS) {
            mq_tool_error("libmosquitto: setting the credentials: %s", MQ_CLAUSE(mosquitto_strerror(rc)));
            return false;
        }
    }
    if (rs->tls) {
        const char *capath = NULL;
        if (!rs->cafile) {
            /* No CA file: the system's trust store, as the daemon's brokers use it (Debian's hashed certs).
             */
            (void)mosquitto_int_option(rs->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
            capath = "/etc/ssl/certs";
        }
        rc = mosquitto_tls_set(rs->mosq, rs->cafile, capath, rs->certfile, rs->keyfile, NULL);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_tls_opts_set(rs->mosq, 1 /* SSL_VERIFY_PEER */, "tlsv1.2", NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            mq_tool_error("TLS setup (ca %s, cert %s, key %s): %s (are the files readable?)",
                          rs->cafile ? rs->cafile : "system", rs->certfile ? rs->certfile : "none",
                          rs->keyfile ? rs->keyfile : "none", MQ_CLAUSE(mosquitto_strerror(rc)));
            return false;
        }
    }
    mosquitto_connect_callback_set(rs->mosq, mq_replay_on_connect);
    mosquitto_disconnect_callback_set(rs->mosq, mq_replay_on_disconnect);
    mosquitto_publish_callback_set(rs->mosq, mq_replay_on_publish);
    /* The library's own limit (20 by default) would queue publishes beyond it in memory; ours is the one
     * that holds, so let the library send as many as we allow. */
    rc = mosquitto_int_option(rs->mosq, MOSQ_OPT_SEND_MAXIMUM, rs->inflight_max);
    if (rc != MOSQ_ERR_SUCCESS) {
        mq_tool_error("libmosquitto: setting the in-flight limit: %s", MQ_CLAUSE(mosquitto_strerror(rc)));
        return false;
    }
    /* Without it the last publishes of a run wait for the delayed ACK of the ones before (Nagle: ~40 ms). */
    rc = mosquitto_int_option(rs->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        mq_tool_error("libmosquitto: setting TCP_NODELAY: %s", MQ_CLAUSE(mosquitto_strerror(rc)));
        return false;
    }
    rs->connack_rc = -1;
    errno = 0;
    rc = mosquitto_connect(rs->mosq, rs->host, rs->port, MQ_REPLAY_KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        mq_tool_error("cannot connect to %s: %s", rs->url, MQ_CLAUSE(mq_replay_mosq_str(rc, errno)));
        return false;
    }
    int64_t deadline = mq_mono_ms() + MQ_REPLAY_CONNECT_MS;
    while (rs->connack_rc < 0) {
        if (mq_tool_stop_requested()) {
            mq_tool_error("interrupted while connecting to %s", rs->url);
            return false;
        }
        int64_t left = deadline - mq_mono_ms();
        if (left <= 0) {
            mq_tool_error("cannot connect to %s: no CONNACK within %d s (is it an MQTT broker?)", rs->url,
                          MQ_REPLAY_CONNECT_MS / 1000);
            return false;
        }
        errno = 0;
        rc = mosquitto_loop(rs->mosq, left < 100 ? (int)left : 100, 1);
        int e = errno;
        if (rc != MOSQ_ERR_SUCCESS && !(rc == MOSQ_ERR_ERRNO && e == EINTR)) {
            if (rs->connack_rc < 0) {
                mq_tool_error("cannot connect to %s: %s", rs->url,
                              rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NO_CONN
                                  ? "the broker closed the connection before CONNACK"
                                  : MQ_CLAUSE(mq_replay_mosq_str(rc, e)));
                return false;
            }
        }
    }
    if (rs->connack_rc != 0) {
        mq_tool_error("%s refused the connection: %s", rs->url, mq_connack_reason(rs->connack_rc));
        return false;
    }
    return true;
}
