/*
 * why.h - why a connector's connection attempt failed, in words that name what to fix.
 *
 * libmosquitto and Paho read a broker's TLS CA, certificate and key files at every connection attempt, so a
 * file deleted or made unreadable while mqlogd runs (a certificate rotation gone wrong) fails every
 * reconnect, and both say so vaguely ("A TLS error occurred.", "TCP/TLS connect failure") or through
 * OpenSSL's error queue. The connectors ask here after a TLS failure: the files are checked as `mqlogd
 * --check` checks them (tls/tls.h), and the reason names the file and what is wrong with it.
 */
#ifndef MQ_CONNECTOR_WHY_H
#define MQ_CONNECTOR_WHY_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* For a broker with tls: true, with why set to "tls ca: cannot read FILE: No such file or directory" (or
 * the like), when one of its TLS files is unusable now; false (why untouched) when they all are fine or the
 * broker has no TLS. Reads the files: call it after a failure, not on every packet. */
bool mq_connector_tls_why(const struct mq_config_broker *b, char *why, size_t size);

#endif
