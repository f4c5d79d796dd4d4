/*
 * cmd_route.c - `mqlog route`: where the daemon would store a message on a given MQTT topic (and payload).
 *
 * It builds its routes with mq_ingest_routes_new(), the very function mqlogd uses, and matches with
 * mq_route_match() as ingest does, so the answer is the daemon's. One thing differs by nature: a record with
 * a null key goes round-robin over its partitions, and a fresh route table starts that rotation at the
 * beginning, which is what the first such message after a daemon start gets.
 *
 * A log topic that exists with another partition count than its mapping says (raised by `mqlog topic
 * alter`, or a mapping edited since) keeps its count, and ingest places records with that count: so does
 * this command, from the catalog of the configuration's data directory when it can read it.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "ingest/ingest.h"
#include "route/placement.h"
#include "route/route.h"
#include "tool/tool.h"
#include "util/suggest.h"

static void mq_route_help(void)
{
    printf(
        "usage: mqlog route -c CONFIG_FILE MQTT_TOPIC [--payload TEXT] [--broker NAME] [-v]\n"
        "\n"
        "Prints where mqlogd would store a message on MQTT_TOPIC: one line \"LOG_TOPIC PARTITION\" per log\n"
        "topic it goes to, or \"unmatched\" when it would be dropped (a configuration with an unmatched\n"
        "topic names that topic instead). Nothing is opened but the configuration.\n"
        "\n"
        "  -c, --config FILE      the daemon's configuration\n"
        "      --payload TEXT     the message payload (json:... keys read it; default empty)\n"
        "  -b, --broker NAME      the broker the message comes from (default: the only broker, or every\n"
        "                         mapping whatever its broker when there are several)\n"
        "  -v, --verbose          also print which mapping decided and the record key\n"
        "  -h, --help             this text\n");
}

struct mq_route_out {
    const struct mq_config *cfg;
    struct mq_store *store; /* the data directory, read-only; NULL when it cannot be opened */
    bool verbose;
};

static void mq_route_print_key(const void *key, size_t len)
{
    if (!key) {
        printf("null");
        return;
    }
    putchar('\'');
    const unsigned char *k = key;
    for (size_t i = 0; i < len; i++) {
        if (isprint(k[i]) && k[i] != '\'' && k[i] != '\\')
            putchar(k[i]);
        else
            printf("\\x%02x", k[i]);
    }
    putchar('\'');
}

static enum mq_err mq_route_print(void *opaque, const struct mq_route_hit *hit)
{
    const struct mq_route_out *o = opaque;
    int32_t partition = hit->partition, partitions = hit->partitions;
    struct mq_catalog_topic ct;
    if (o->store && mq_store_topic_get(o->store, hit->topic, &ct) == MQ_OK && ct.partitions != partitions) {
        /* as ingest places it (ingest.c, mq_collect_hit): Kafka's partitioner with the topic's real count,
         * and null keys round-robin over all of its partitions from the first */
        partitions = ct.partitions;
        partition = hit->key ? mq_partition_for_key(hit->key, hit->key_len, partitions) : 0;
    }
    printf("%s %d", hit->topic, (int)partition);
    if (o->verbose) {
        if (hit->mapping >= 0) {
            const struct mq_config_mapping *m = &o->cfg->mappings[hit->mapping];
            printf("  (mapping at %s:%d:%d, key ", m->loc.file, m->loc.line, m->loc.col);
        } else {
            printf("  (unmatched topic, key ");
        }
        mq_route_print_key(hit->key, hit->key_len);
        if (!hit->key && partitions > 1)
            printf(", round-robin over the %d partitions: %d is where the first such message "
                   "after a start goes",
                   (int)partitions, (int)partition);
        if (partitions != hit->partitions)
            printf("; the topic has %d partitions, its mapping says %d", (int)partitions,
                   (int)hit->partitions);
        printf(")");
    }
    putchar('\n');
    return MQ_OK;
}

static void mq_route_report(void *opaque, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "%s\n", msg);
}

int mq_cmd_route(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"payload", required_argument, NULL, 'P'},
        {"broker", required_argument, NULL, 'b'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *payload = "", *broker = NULL;
    bool verbose = false;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":c:b:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'P':
            payload = optarg;
            break;
        case 'b':
            broker = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            mq_route_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("route", argc, argv, c);
        }
    }
    if (!config)
        return mq_tool_usage_error("route", "no configuration file (-c FILE)");
    if (optind >= argc)
        return mq_tool_usage_error("route", "no MQTT topic");
    if (optind + 1 < argc)
        return mq_tool_usage_error("route", "unexpected argument '%s'", argv[optind + 1]);
    const char *topic = argv[optind];

    struct mq_config *cfg = NULL;
    if (mq_config_load(config, &cfg, mq_route_report, NULL) != MQ_OK)
        return MQ_EXIT_FAIL;
    int status = MQ_EXIT_FAIL;
    struct mq_ingest_routes *routes = NULL;
    struct mq_route_out o = {0};
    char why[512];
    if (broker && !mq_config_broker_find(cfg, broker)) {
        struct mq_suggest sg;
        mq_suggest_init(&sg, broker);
        for (size_t i = 0; i < cfg->nbrokers; i++)
            mq_suggest_feed(&sg, cfg->brokers[i].name);
        if (sg.best)
            status = mq_tool_usage_error("route", "no broker named '%s' in %s (did you mean '%s'?)", broker,
                                         config, sg.best);
        else
            status = mq_tool_usage_error("route", "no broker named '%s' in %s", broker, config);
        goto out;
    }
    if (!broker && cfg->nbrokers == 1)
        broker = cfg->brokers[0].name;
    if (mq_ingest_routes_new(cfg, &routes, why, sizeof why) != MQ_OK) {
        mq_tool_error("%s: %s", config, why);
        goto out;
    }
    o.cfg = cfg;
    o.verbose = verbose;
    /* quietly: a configuration whose data directory does not exist yet routes by its mappings alone */
    if (cfg->data_dir &&
        mq_store_open(cfg->data_dir, MQ_STORE_READ, NULL, &o.store, why, sizeof why) != MQ_OK)
        o.store = NULL;
    int nhits = 0;
    enum mq_err err = mq_route_match(mq_ingest_routes_table(routes), broker, topic, strlen(topic), payload,
                                     strlen(payload), mq_route_print, &o, &nhits);
    if (err == MQ_ERR_INVAL) {
        status = mq_tool_usage_error("route", "'%s' is not a valid MQTT topic name", topic);
        goto out;
    }
    if (err != MQ_OK) {
        mq_tool_error("route: %s", mq_strerror(err));
        goto out;
    }
    if (nhits == 0)
        printf("unmatched\n");
    status = fflush(stdout) == 0 ? MQ_EXIT_OK : MQ_EXIT_FAIL;
out:
    mq_store_close(o.store);
    mq_ingest_routes_free(routes);
    mq_config_free(cfg);
    return status;
}
