/*
 * table_http.c - the key table of the http section: where mqlogd serves its operator endpoints
 * (/metrics, /healthz, /readyz, /status.json; docs/metrics.md) and how much /metrics lists.
 */
#include <stdlib.h>

#include "config/table.h"
#include "util/url.h"

#define HTTP(field) offsetof(struct mq_config_http, field)

static const struct mq_ckey mq_keys_http[] = {
    {.name = "listen",
     .type = MQ_CT_HOSTPORT,
     .off = HTTP(listen),
     .min = 0,
     .max = 65535,
     .flags = MQ_CK_REQUIRED,
     .doc = "HOST:PORT where mqlogd serves /metrics (Prometheus' text format), /healthz, /readyz and "
            "/status.json over plain HTTP, e.g. 127.0.0.1:9108 ([::1]:9108 for IPv6). Port 0 picks a free "
            "port. Anyone who reaches the address reads the names of brokers, topics, groups and "
            "forwarders and may scrape as often as they like: bind loopback or a management network. "
            "Takes effect at the next start, not on reload."},
    {.name = "partition_metrics",
     .type = MQ_CT_BOOL,
     .off = HTTP(partition_metrics),
     .def = "true",
     .doc = "List one series per partition (end offset, bytes, segments, oldest timestamp) and per "
            "consumer group and partition (lag) in /metrics. Sites with many thousands of partitions may "
            "turn them off; the store-wide totals stay."},
    {.name = NULL},
};

static void mq_http_init(void *obj)
{
    struct mq_config_http *h = obj;
    h->partition_metrics = true;
}

/* Derives listen_host and listen_port (the key's own check parsed listen already). */
static void mq_http_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                          const yaml_node_t *const *vals)
{
    (void)node;
    (void)vals;
    struct mq_config_http *h = obj;
    char why[300];
    if (h->listen && mq_url_hostport(h->listen, false, 0, 65535, &h->listen_host, &h->listen_port, NULL, why,
                                     sizeof why) != MQ_OK)
        mq_cctx_oom(ctx);
}

static void mq_http_fini(void *obj)
{
    struct mq_config_http *h = obj;
    free(h->listen_host);
}

const struct mq_csection mq_csection_http = {
    .name = "http",
    .what = "the http section",
    .doc = "The operator endpoints (docs/metrics.md lists the metrics). Absent: none is served.",
    .keys = mq_keys_http,
    .init = mq_http_init,
    .check = mq_http_check,
    .fini = mq_http_fini,
};
