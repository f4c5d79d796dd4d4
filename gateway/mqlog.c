/*
 * mqlog.c - the `mqlog` command-line tool: inspect, write and read an mqlog data directory. This file only
 * dispatches to the commands in tool/ (one file per command).
 */
#include <stdio.h>
#include <string.h>

#include "tool/tool.h"
#include "util/diag.h"

#ifndef MQ_VERSION
#define MQ_VERSION "0.1.0"
#endif

struct mq_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct mq_command mq_commands[] = {
    {"topics", mq_cmd_topics, "list topics and partitions: offsets, sizes, timestamps"},
    {"create", mq_cmd_create, "create a topic"},
    {"topic", mq_cmd_topic, "alter a topic's partitions or retention, or delete it"},
    {"produce", mq_cmd_produce, "append every line of stdin as one record"},
    {"consume", mq_cmd_consume, "print records (raw or JSON), optionally following new ones"},
    {"verify", mq_cmd_verify, "check every batch's CRC, every index and the catalog"},
    {"groups", mq_cmd_groups, "list consumer groups and their committed offsets"},
    {"replay", mq_cmd_replay, "republish stored records to an MQTT broker"},
    {"route", mq_cmd_route, "show where mqlogd would store a message on an MQTT topic"},
    {"forward", mq_cmd_forward, "forward status: how far each forwarder is behind, per partition"},
    {"user", mq_cmd_user, "add, list or remove the Kafka endpoint's SASL users"},
    {"status", mq_cmd_status, "a running mqlogd's status: brokers, rates, topics, lag (exit 4: not ready)"},
    {NULL, NULL, NULL},
};

static void mq_usage(FILE *f)
{
    fprintf(f, "usage: mqlog COMMAND -d DATA_DIR [options]\n\ncommands:\n");
    for (const struct mq_command *c = mq_commands; c->name; c++)
        fprintf(f, "  %-9s %s\n", c->name, c->summary);
    fprintf(f,
            "\n'mqlog COMMAND --help' describes a command's options.\n"
            "Exit status: 0 success, 1 runtime error (or problems found), 2 usage error, 3 a start offset\n"
            "past the end of the log (consume), 4 mqlogd reachable but not ready (status).\n");
}

int main(int argc, char **argv)
{
    /* The library's informational lines (recovery notes) are not for a command-line user. */
    mq_diag_level = MQ_LV_WARN;
    if (argc < 2) {
        mq_usage(stderr);
        return MQ_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        mq_usage(stdout);
        return MQ_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("mqlog %s\n", MQ_VERSION);
        return MQ_EXIT_OK;
    }
    for (const struct mq_command *c = mq_commands; c->name; c++)
        if (strcmp(cmd, c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "mqlog: unknown command '%s' (try 'mqlog --help')\n", cmd);
    return MQ_EXIT_USAGE;
}
