/*
 * mosq.h - what the libmosquitto connector offers besides `mq_connector_mosquitto` (connector.h).
 *
 * libmosquitto 2.0.11 (Debian 12) keeps no count of mosquitto_lib_init() calls: a second call while the
 * first is in force replaces its TLS state (an OpenSSL UI method) without freeing it, and one
 * mosquitto_lib_cleanup() ends it for every user. So everything in a process that uses libmosquitto, the
 * connector's instances and anything else (a test's own clients), takes its reference here: the first
 * reference initialises the library, the last one cleans it up.
 */
#ifndef MQ_MOSQ_H
#define MQ_MOSQ_H

/* Takes a reference on libmosquitto's process-wide initialisation; returns a MOSQ_ERR_* code (the
 * reference is taken only on MOSQ_ERR_SUCCESS). Thread-safe. */
int mq_mosq_lib_ref(void);

/* Drops a reference taken with mq_mosq_lib_ref(). Thread-safe. */
void mq_mosq_lib_unref(void);

#endif
