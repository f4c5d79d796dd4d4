/*
 * tls.h - server-side TLS contexts built from PEM files, with OpenSSL.
 *
 * One builder for the two places that need it: the configuration check (config/), which must refuse an
 * unreadable certificate, key or CA file, or a key that does not belong to its certificate, at
 * `mqlogd --check` time and name the file; and the Kafka endpoint (kafka/), which serves with the context.
 * The settings are fixed here so that both agree: TLS 1.2 and later only, no renegotiation, OpenSSL's
 * default cipher list (its security level refuses weak keys and digests).
 */
#ifndef MQ_TLS_H
#define MQ_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Which of the files a context could not use (*bad of mq_tls_server_ctx_new()). */
enum mq_tls_file {
    MQ_TLS_FILE_NONE = 0, /* none: out of memory or an OpenSSL failure of its own */
    MQ_TLS_FILE_CERT,
    MQ_TLS_FILE_KEY,
    MQ_TLS_FILE_CA,
};

/*
 * Builds a server context: the certificate chain in cert (PEM, the server's certificate first) and its
 * private key in key (PEM, unencrypted), checked to match. With ca (PEM, one or more CA certificates),
 * clients are asked for a certificate signed by one of them; a client that presents one that does not
 * verify fails the handshake, and with require_client_cert so does a client that presents none.
 * require_client_cert without ca is MQ_ERR_INVAL.
 *
 * On success *ctxp is a new context the caller frees with SSL_CTX_free(). On failure *ctxp is untouched,
 * *bad (when not NULL) says which file was at fault and errstr says why in a sentence that names the file
 * ("cannot read /etc/mqlog/kafka.key: Permission denied").
 */
enum mq_err mq_tls_server_ctx_new(const char *cert, const char *key, const char *ca, bool require_client_cert,
                                  SSL_CTX **ctxp, enum mq_tls_file *bad, char *errstr, size_t errstr_size);

/*
 * Checks the files of a TLS client (an mqtts:// broker, a forwarder) as the client libraries will read them:
 * ca (PEM CA certificates; NULL: the system's store), cert and key (PEM, unencrypted, matching; both or
 * neither). MQ_OK, or an error with *bad and errstr as mq_tls_server_ctx_new() gives them.
 */
enum mq_err mq_tls_client_files_check(const char *ca, const char *cert, const char *key,
                                      enum mq_tls_file *bad, char *errstr, size_t errstr_size);

/* The reason of the earliest error in OpenSSL's queue (e.g. "no start line"), and clears the queue;
 * fallback when there is none. */
const char *mq_tls_last_error(const char *fallback, char *buf, size_t size);

#endif
