/*
 * mqlogd.c - the daemon: subscribes to the configured MQTT brokers and stores every message in the log.
 * This file only reads the command line; the work is in daemon/ (run loop, reload, connectors), ingest/
 * (routing into the store) and the connectors (connectors/<name>/).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"
#include "util/diag.h"

#ifndef MQ_VERSION
#define MQ_VERSION "0.1.0"
#endif

static void mq_usage(FILE *f)
{
    fprintf(f,
            "usage: mqlogd -c FILE [--check] [--log-level LEVEL]\n"
            "\n"
            "Subscribes to the MQTT brokers of configuration FILE and stores every message durably in\n"
            "the log topics its mappings name. Runs in the foreground and logs to stderr.\n"
            "\n"
            "  -c, --config FILE        the configuration (see docs/configuration.md)\n"
            "      --check              check FILE (and what it includes) without connecting anywhere:\n"
            "                           one FILE:LINE:COL line per problem, exit 0 when there is none\n"
            "  -l, --log-level LEVEL    error, warn, notice, info (default) or debug\n"
            "  -h, --help               this text\n"
            "  -V, --version            the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT flush and exit 0; SIGHUP reloads FILE (a broken file is rejected and\n"
            "the running configuration kept); SIGUSR1 logs the counters.\n"
            "Exit status: 0 success, 1 failure (or problems found by --check), 2 usage error.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"check", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    bool check = false;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:l:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'l': {
            int lv = mq_diag_level_parse(optarg);
            if (lv < 0) {
                fprintf(stderr, "mqlogd: --log-level '%s': expected error, warn, notice, info or debug\n",
                        optarg);
                return 2;
            }
            mq_diag_level = lv;
            break;
        }
        case 'h':
            mq_usage(stdout);
            return 0;
        case 'V':
            printf("mqlogd %s\n", MQ_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "mqlogd: option %s needs a value (try 'mqlogd --help')\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "mqlogd: unknown option %s (try 'mqlogd --help')\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mqlogd: unexpected argument '%s' (try 'mqlogd --help')\n", argv[optind]);
        return 2;
    }
    if (!config) {
        fprintf(stderr, "mqlogd: no configuration file (-c FILE; try 'mqlogd --help')\n");
        return 2;
    }
    mq_diag_timestamps =
        !check; /* a daemon's log outside the journal needs its times; --check's output not */
    return check ? mq_daemon_check(config) : mq_daemon_run(config);
}
