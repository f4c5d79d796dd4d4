/*
 * load.c - a configuration as the daemon takes it: loaded and checked by the config module, its routes built
 * (the same code `mqlog route` uses), and every broker's client looked up among the connectors built in
 * (connector.h's registry: the configuration module knows no connector, so the name is checked here, at the
 * position where it was written).
 * Every file the configuration names for a client (brokers' and forwarders' password files, TLS CA,
 * certificate and key files) is read here too, as the clients will read it, so that --check (and with it
 * systemd's ExecStartPre) refuses a missing or broken file instead of the start failing later.
 * Used at start-up, on SIGHUP and by --check, so that all three accept and refuse exactly the same files.
 */
#include "daemon/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"

/* Reports "FILE:LINE:COL: what: why" at loc (the entry naming the file); returns false. */
static bool mq_daemon_file_error(mq_config_report_fn *report, void *opaque, const char *path,
                                 const struct mq_config_loc *loc, const char *what, const char *why)
{
    char msg[1200];
    snprintf(msg, sizeof msg, "%s:%d:%d: %s: %s", loc->file ? loc->file : path, loc->line, loc->col, what,
             why);
    report(opaque, msg);
    return false;
}

/* Reads a password file (first line, not empty) and wipes what it read. */
static bool mq_daemon_password_ok(const char *file, mq_config_report_fn *report, void *opaque,
                                  const char *path, const struct mq_config_loc *loc, const char *what)
{
    if (!file)
        return true;
    char *pw = NULL, why[600];
    if (mq_config_password_file(file, &pw, why, sizeof why) != MQ_OK)
        return mq_daemon_file_error(report, opaque, path, loc, what, why);
    explicit_bzero(pw, strlen(pw));
    free(pw);
    return true;
}

static bool mq_daemon_tls_ok(const struct mq_config_tls *t, mq_config_report_fn *report, void *opaque,
                             const char *path, const struct mq_config_loc *loc, const char *what)
{
    char why[600];
    enum mq_tls_file bad = MQ_TLS_FILE_NONE;
    if (mq_tls_client_files_check(t->ca, t->cert, t->key, &bad, why, sizeof why) == MQ_OK)
        return true;
    char w[256];
    snprintf(w, sizeof w, "%s: tls %s", what,
             bad == MQ_TLS_FILE_CA     ? "ca"
             : bad == MQ_TLS_FILE_KEY  ? "key"
             : bad == MQ_TLS_FILE_CERT ? "cert"
                                       : "");
    return mq_daemon_file_error(report, opaque, path, loc, w, why);
}

/* Every file the brokers and forwarders name: false (after one report per bad file) when one is unusable. */
static bool mq_daemon_files_ok(const struct mq_config *cfg, const char *path, mq_config_report_fn *report,
                               void *opaque)
{
    bool ok = true;
    char what[256];
    for (size_t i = 0; i < cfg->nbrokers; i++) {
        const struct mq_config_broker *b = &cfg->brokers[i];
        snprintf(what, sizeof what, "broker '%s'", b->name);
        ok &= mq_daemon_password_ok(b->password_file, report, opaque, path, &b->loc, what);
        if (b->tls)
            ok &= mq_daemon_tls_ok(&b->tls_opts, report, opaque, path, &b->loc, what);
    }
    for (size_t i = 0; i < cfg->nforwards; i++) {
        const struct mq_config_forward *f = &cfg->forwards[i];
        snprintf(what, sizeof what, "forwarder '%s'", f->name);
        if (f->sasl.mechanism)
            ok &= mq_daemon_password_ok(f->sasl.password_file, report, opaque, path, &f->loc, what);
        if (f->tls)
            ok &= mq_daemon_tls_ok(&f->tls_opts, report, opaque, path, &f->loc, what);
    }
    return ok;
}

/* "paho, mosquitto" or "none": what this binary offers, for the error message. */
static void mq_daemon_built_in(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; mq_connectors[i]; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", mq_connectors[i]->name);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, size, "none");
}

enum mq_err mq_daemon_load(const char *path, struct mq_config **cfgp, struct mq_ingest_routes **routesp,
                           mq_config_report_fn *report, void *opaque)
{
    struct mq_config *cfg = NULL;
    enum mq_err err = mq_config_load(path, &cfg, report, opaque);
    if (err != MQ_OK)
        return err;
    char msg[1024];
    bool bad = false;
    for (size_t i = 0; i < cfg->nbrokers; i++) {
        const struct mq_config_broker *b = &cfg->brokers[i];
        if (mq_connector_find(b->client))
            continue;
        char built[256];
        mq_daemon_built_in(built, sizeof built);
        const struct mq_config_loc *at = &b->client_loc;
        snprintf(msg, sizeof msg,
                 "%s:%d:%d: broker '%s': client '%s' is not built into this mqlogd (built in: %s)",
                 at->file ? at->file : path, at->line, at->col, b->name, b->client, built);
        report(opaque, msg);
        bad = true;
    }
    if (!mq_daemon_files_ok(cfg, path, report, opaque))
        bad = true;
    struct mq_ingest_routes *routes = NULL;
    if (!bad) {
        char why[512];
        err = mq_ingest_routes_new(cfg, &routes, why, sizeof why);
        if (err != MQ_OK) {
            snprintf(msg, sizeof msg, "%s: %s", path, why);
            report(opaque, msg);
            bad = true;
        }
    }
    if (bad) {
        mq_config_free(cfg);
        return MQ_ERR_CONFIG;
    }
    if (routesp)
        *routesp = routes;
    else
        mq_ingest_routes_free(routes);
    if (cfgp)
        *cfgp = cfg;
    else
        mq_config_free(cfg);
    return MQ_OK;
}
