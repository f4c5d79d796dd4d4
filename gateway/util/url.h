/*
 * url.h - broker addresses: "HOST:PORT" and the URLs mqtt://HOST[:PORT] and mqtts://HOST[:PORT].
 *
 * One parser for the configuration (broker urls, the Kafka listener) and the tool (`mqlog replay --to`).
 * Each caller reports errors in its own form (the configuration with FILE:LINE:COL): the functions give the
 * reason in why and, for callers that word their own messages, which part was wrong in *fault.
 */
#ifndef MQ_URL_H
#define MQ_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define MQ_URL_PORT_MQTT  1883
#define MQ_URL_PORT_MQTTS 8883

/* Which part of an address was wrong (*fault of the functions below). */
enum mq_url_fault {
    MQ_URL_FAULT_NONE = 0,
    MQ_URL_FAULT_SCHEME,   /* neither mqtt:// nor mqtts:// */
    MQ_URL_FAULT_USERINFO, /* user@ in a URL */
    MQ_URL_FAULT_PATH,     /* a path or query after the authority */
    MQ_URL_FAULT_HOST,     /* missing, bad characters, unclosed [IPv6] */
    MQ_URL_FAULT_PORT,     /* not a number in range, or missing where required */
};

/*
 * Splits "HOST:PORT" (HOST a name, an IPv4 address or a bracketed IPv6 address) into a malloc'd host (the
 * caller frees it; host may be NULL to only check) and a port within [pmin, pmax]; with port_optional,
 * "HOST" alone leaves *port untouched. MQ_ERR_INVAL with why (and *fault when fault is not NULL), or
 * MQ_ERR_NOMEM; *host is set only on success.
 */
enum mq_err mq_url_hostport(const char *s, bool port_optional, int64_t pmin, int64_t pmax, char **host,
                            int *port, enum mq_url_fault *fault, char *why, size_t why_size);

/*
 * Splits a broker URL into a malloc'd host (caller frees; may be NULL), port (default 1883, or 8883 for
 * mqtts) and whether it asks for TLS. No credentials, no path. Errors as mq_url_hostport().
 */
enum mq_err mq_url_parse(const char *url, char **host, int *port, bool *tls, enum mq_url_fault *fault,
                         char *why, size_t why_size);

#endif
