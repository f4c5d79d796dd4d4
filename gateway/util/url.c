/*
 * url.c - broker addresses (see url.h). Strict: a host is letters, digits, '.', '-', '_' or a bracketed
 * IPv6 literal; a port is a decimal number in range; anything else is an error, never a default.
 */
#include "util/url.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

static bool mq_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Sets *fault (when asked for) and returns MQ_ERR_INVAL: the reason is in why already. */
static enum mq_err mq_url_fail(enum mq_url_fault *fault, enum mq_url_fault f, enum mq_err err)
{
    if (fault)
        *fault = f;
    return err;
}

enum mq_err mq_url_hostport(const char *s, bool port_optional, int64_t pmin, int64_t pmax, char **host,
                            int *port, enum mq_url_fault *fault, char *why, size_t why_size)
{
    const char *hs, *he, *rest;
    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (!he || he == hs)
            return mq_url_fail(
                fault, MQ_URL_FAULT_HOST,
                mq_errf(MQ_ERR_INVAL, why, why_size, "'%s': an IPv6 address needs [brackets] around it", s));
        for (const char *p = hs; p < he; p++)
            if (!strchr("0123456789abcdefABCDEF:.", *p))
                return mq_url_fail(fault, MQ_URL_FAULT_HOST,
                                   mq_errf(MQ_ERR_INVAL, why, why_size,
                                           "'%s': '%c' cannot appear in an IPv6 address", s, *p));
        rest = he + 1;
    } else {
        hs = s;
        he = s;
        while (*he && *he != ':') {
            if (!mq_host_char(*he))
                return mq_url_fail(
                    fault, MQ_URL_FAULT_HOST,
                    mq_errf(MQ_ERR_INVAL, why, why_size, "'%s': '%c' cannot appear in a host name", s, *he));
            he++;
        }
        if (he == hs)
            return mq_url_fail(fault, MQ_URL_FAULT_HOST,
                               mq_errf(MQ_ERR_INVAL, why, why_size, "'%s': missing host", s));
        rest = he;
    }
    int64_t p = -1;
    if (*rest == ':') {
        if (rest[1] < '0' || rest[1] > '9' || mq_parse_int64(rest + 1, pmin, pmax, &p) != MQ_OK)
            return mq_url_fail(fault, MQ_URL_FAULT_PORT,
                               mq_errf(MQ_ERR_INVAL, why, why_size,
                                       "'%s': the port must be a number from %" PRId64 " to %" PRId64, s,
                                       pmin, pmax));
    } else if (*rest) {
        return mq_url_fail(
            fault, MQ_URL_FAULT_HOST,
            mq_errf(MQ_ERR_INVAL, why, why_size, "'%s': unexpected '%s' after the host", s, rest));
    } else if (!port_optional) {
        return mq_url_fail(fault, MQ_URL_FAULT_PORT,
                           mq_errf(MQ_ERR_INVAL, why, why_size, "'%s': expected HOST:PORT", s));
    }
    if (host) {
        *host = strndup(hs, (size_t)(he - hs));
        if (!*host)
            return mq_url_fail(fault, MQ_URL_FAULT_NONE,
                               mq_errf(MQ_ERR_NOMEM, why, why_size, "out of memory"));
    }
    if (p >= 0 && port)
        *port = (int)p;
    return MQ_OK;
}

enum mq_err mq_url_parse(const char *url, char **host, int *port, bool *tls, enum mq_url_fault *fault,
                         char *why, size_t why_size)
{
    bool secure;
    const char *hp;
    if (strncmp(url, "mqtt://", 7) == 0) {
        secure = false;
        hp = url + 7;
    } else if (strncmp(url, "mqtts://", 8) == 0) {
        secure = true;
        hp = url + 8;
    } else {
        return mq_url_fail(
            fault, MQ_URL_FAULT_SCHEME,
            mq_errf(MQ_ERR_INVAL, why, why_size, "'%s': a broker URL starts with mqtt:// or mqtts://", url));
    }
    if (strchr(hp, '@'))
        return mq_url_fail(fault, MQ_URL_FAULT_USERINFO,
                           mq_errf(MQ_ERR_INVAL, why, why_size,
                                   "'%s': put credentials in username and password_file, not in the URL",
                                   url));
    if (strchr(hp, '/') || strchr(hp, '?'))
        return mq_url_fail(fault, MQ_URL_FAULT_PATH,
                           mq_errf(MQ_ERR_INVAL, why, why_size, "'%s': a broker URL has no path", url));
    int p = secure ? MQ_URL_PORT_MQTTS : MQ_URL_PORT_MQTT;
    enum mq_err err = mq_url_hostport(hp, true, 1, 65535, host, &p, fault, why, why_size);
    if (err)
        return err;
    if (port)
        *port = p;
    if (tls)
        *tls = secure;
    return MQ_OK;
}
