/*
 * why.c - naming the TLS file that makes a connector's connection attempts fail (why.h).
 */
#include "connector/why.h"

#include <stdio.h>

#include "tls/tls.h"

bool mq_connector_tls_why(const struct mq_config_broker *b, char *why, size_t size)
{
    if (!b || !b->tls)
        return false;
    const struct mq_config_tls *t = &b->tls_opts;
    enum mq_tls_file bad = MQ_TLS_FILE_NONE;
    char e[600];
    if (mq_tls_client_files_check(t->ca, t->cert, t->key, &bad, e, sizeof e) == MQ_OK)
        return false;
    snprintf(why, size, "tls %s: %s",
             bad == MQ_TLS_FILE_CA     ? "ca"
             : bad == MQ_TLS_FILE_KEY  ? "key"
             : bad == MQ_TLS_FILE_CERT ? "cert"
                                       : "files",
             e);
    return true;
}
