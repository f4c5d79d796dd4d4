/*
 * tls.c - server-side TLS contexts from PEM files (see tls.h). Each file is opened first, so that an
 * unreadable one is reported with the system's reason and its name rather than as OpenSSL's error stack.
 */
#include "tls/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

const char *mq_tls_last_error(const char *fallback, char *buf, size_t size)
{
    /* The earliest error is the cause ("no start line"); later ones only say where it surfaced ("PEM lib").
     */
    unsigned long first = ERR_get_error();
    mq_clause(first && ERR_reason_error_string(first) ? ERR_reason_error_string(first) : fallback, buf, size);
    ERR_clear_error();
    return buf;
}

/* A passphrase prompt would block a daemon on its terminal: encrypted keys are refused instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *opaque)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)opaque;
    return 0;
}

/* MQ_OK when path can be opened for reading, else the reason in errstr (naming the file). */
static enum mq_err readable(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return mq_errf(MQ_ERR_IO, errstr, errstr_size, "cannot read %s: %s", path, MQ_STRERROR(errno));
    fclose(f);
    return MQ_OK;
}

static enum mq_err fail(enum mq_tls_file which, enum mq_tls_file *bad, enum mq_err err)
{
    if (bad)
        *bad = which;
    return err;
}

enum mq_err mq_tls_server_ctx_new(const char *cert, const char *key, const char *ca, bool require_client_cert,
                                  SSL_CTX **ctxp, enum mq_tls_file *bad, char *errstr, size_t errstr_size)
{
    char why[256];
    if (!cert || !key || (require_client_cert && !ca))
        return fail(MQ_TLS_FILE_NONE, bad,
                    mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                            !cert || !key ? "TLS needs a certificate and its key"
                                          : "require_client_cert needs the CA of the client certificates"));
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return fail(MQ_TLS_FILE_NONE, bad,
                    mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "cannot create a TLS context: %s",
                            mq_tls_last_error("out of memory", why, sizeof why)));
    enum mq_err err = MQ_OK;
    enum mq_tls_file which = MQ_TLS_FILE_NONE;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "cannot require TLS 1.2: %s",
                      mq_tls_last_error("unknown error", why, sizeof why));
        goto out;
    }
    /* Renegotiation would let a client make SSL_write wait for input; Kafka clients never renegotiate. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    which = MQ_TLS_FILE_CERT;
    if ((err = readable(cert, errstr, errstr_size)) != MQ_OK)
        goto out;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "%s holds no usable PEM certificate (%s)", cert,
                      mq_tls_last_error("unknown error", why, sizeof why));
        goto out;
    }
    which = MQ_TLS_FILE_KEY;
    if ((err = readable(key, errstr, errstr_size)) != MQ_OK)
        goto out;
    /* Read apart from installing it, so that a key of another certificate is told from a broken file. */
    FILE *f = fopen(key, "r");
    EVP_PKEY *pkey = f ? PEM_read_PrivateKey(f, NULL, no_passphrase, NULL) : NULL;
    if (f)
        fclose(f);
    if (!pkey) {
        err =
            mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "%s holds no usable unencrypted PEM private key (%s)",
                    key, mq_tls_last_error("unknown error", why, sizeof why));
        goto out;
    }
    int used = SSL_CTX_use_PrivateKey(ctx, pkey);
    EVP_PKEY_free(pkey);
    if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "the key in %s does not match the certificate in %s",
                      key, cert);
        goto out;
    }
    if (ca) {
        which = MQ_TLS_FILE_CA;
        if ((err = readable(ca, errstr, errstr_size)) != MQ_OK)
            goto out;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            if (names)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "%s holds no usable PEM CA certificate (%s)", ca,
                          mq_tls_last_error("no certificate found", why, sizeof why));
            goto out;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    /* Sessions resumed by clients that presented a certificate need an id context, or resuming fails. */
    static const unsigned char sid[] = "mqlog";
    if (SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1) != 1) {
        which = MQ_TLS_FILE_NONE;
        err = mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "cannot set the TLS session id context");
        goto out;
    }
out:
    if (err != MQ_OK) {
        SSL_CTX_free(ctx);
        return fail(which, bad, err);
    }
    *ctxp = ctx;
    return MQ_OK;
}

enum mq_err mq_tls_client_files_check(const char *ca, const char *cert, const char *key,
                                      enum mq_tls_file *bad, char *errstr, size_t errstr_size)
{
    char why[256];
    enum mq_err err = MQ_OK;
    enum mq_tls_file which = MQ_TLS_FILE_NONE;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return fail(MQ_TLS_FILE_NONE, bad,
                    mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "cannot create a TLS context: %s",
                            mq_tls_last_error("out of memory", why, sizeof why)));
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (ca) {
        which = MQ_TLS_FILE_CA;
        if ((err = readable(ca, errstr, errstr_size)) != MQ_OK)
            goto out;
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "%s holds no usable PEM CA certificate (%s)", ca,
                          mq_tls_last_error("no certificate found", why, sizeof why));
            goto out;
        }
    }
    /* The key goes in before the certificate, so that a key of another certificate is told from a broken
     * file (installing a mismatching key after the certificate fails as if the key were unreadable). */
    if (key) {
        which = MQ_TLS_FILE_KEY;
        if ((err = readable(key, errstr, errstr_size)) != MQ_OK)
            goto out;
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
            err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                          "%s holds no usable unencrypted PEM private key (%s)", key,
                          mq_tls_last_error("unknown error", why, sizeof why));
            goto out;
        }
    }
    if (cert) {
        which = MQ_TLS_FILE_CERT;
        if ((err = readable(cert, errstr, errstr_size)) != MQ_OK)
            goto out;
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "%s holds no usable PEM certificate (%s)", cert,
                          mq_tls_last_error("unknown error", why, sizeof why));
            goto out;
        }
        if (key && SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            which = MQ_TLS_FILE_KEY;
            err = mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                          "the key in %s does not match the certificate in %s", key, cert);
            goto out;
        }
    }
out:
    SSL_CTX_free(ctx);
    return err == MQ_OK ? MQ_OK : fail(which, bad, err);
}
