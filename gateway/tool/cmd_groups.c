/*
 * cmd_groups.c - `mqlog groups`: the consumer groups of a data directory with their committed offsets and
 * lag (end offset minus committed offset). Read-only.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

static void mq_groups_help(void)
{
    printf("usage: mqlog groups -d DATA_DIR [GROUP]\n"
           "\n"
           "Lists every consumer group (or only GROUP) with, per partition, the committed offset (the next\n"
           "record the group will read), the partition's end offset and the lag between them.\n"
           "\n"
           "  -d, --dir DATA_DIR  the data directory\n"
           "  -h, --help          this text\n");
}

/* Prints one group's offsets; returns false after an error message. */
static bool mq_groups_print(struct mq_store *store, const char *group)
{
    struct mq_group_offset *offs = NULL;
    size_t n = 0;
    enum mq_err err = mq_catalog_offset_list(mq_store_catalog(store), group, &offs, &n);
    if (err != MQ_OK) {
        mq_tool_error("group %s: %s (%s)", group, mq_strerror(err),
                      mq_catalog_errmsg(mq_store_catalog(store)));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct mq_part *part = NULL;
        struct mq_part_stats st;
        char end[32] = "-", lag[32] = "-";
        if (mq_store_part(store, offs[i].topic, offs[i].partition, &part) == MQ_OK &&
            mq_part_stats(part, &st) == MQ_OK) {
            snprintf(end, sizeof end, "%" PRId64, st.end_offset);
            snprintf(lag, sizeof lag, "%" PRId64, st.end_offset - offs[i].offset);
        }
        printf("%-24s %-24s %5d %12" PRId64 " %12s %12s\n", group, offs[i].topic, (int)offs[i].partition,
               offs[i].offset, end, lag);
    }
    mq_catalog_offsets_free(offs, n);
    return true;
}

int mq_cmd_groups(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'h':
            mq_groups_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("groups", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("groups", "no data directory (-d DIR)");
    if (optind + 1 < argc)
        return mq_tool_usage_error("groups", "unexpected argument '%s'", argv[optind + 1]);
    const char *only = optind < argc ? argv[optind] : NULL;

    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!store)
        return MQ_EXIT_FAIL;
    int rc = MQ_EXIT_OK;
    char **groups = NULL;
    size_t n = 0;
    enum mq_err err = mq_catalog_group_list(mq_store_catalog(store), &groups, &n);
    if (err != MQ_OK) {
        mq_tool_error("listing groups: %s (%s)", mq_strerror(err),
                      mq_catalog_errmsg(mq_store_catalog(store)));
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, groups[i]) != 0)
            continue;
        if (!found)
            printf("%-24s %-24s %5s %12s %12s %12s\n", "GROUP", "TOPIC", "PART", "COMMITTED", "END", "LAG");
        found = true;
        if (!mq_groups_print(store, groups[i]))
            rc = MQ_EXIT_FAIL;
    }
    if (only && !found) {
        mq_tool_error("unknown group '%s' (it has committed no offsets)", only);
        rc = MQ_EXIT_FAIL;
    }
    mq_catalog_strings_free(groups, n);
    mq_store_close(store);
    if (fflush(stdout) != 0)
        rc = MQ_EXIT_FAIL;
    return rc;
}
