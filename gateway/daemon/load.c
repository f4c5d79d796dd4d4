/*
 * load.c - a configuration as the daemon takes it: loaded and checked by the config module, its routes built
 * (the same code `mqlog route` uses), and every broker's client looked up among the connectors built in
 * (connector.h's registry: the configuration module knows no connector, so the name is checked here, at the
 * position where it was written).
 * Used at start-up, on SIGHUP and by --check, so that all three accept and refuse exactly the same files.
 */
#include "daemon/daemon.h"

#include <stdio.h>
#include <string.h>

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
