/*
 * cmd_groups.c - `mqlog groups`: the consumer groups of a data directory with their committed offsets and
 * lag, every partition of the topics a group reads included; and `mqlog groups reset`, which moves a
 * group's offsets as kafka-consumer-groups.sh --reset-offsets does, refused while the group has members in
 * the running mqlogd.
 *
 * A group "reads" a topic when it committed an offset for any partition of it: the catalog knows nothing
 * else about subscriptions. Partitions of such a topic without a commit are listed with COMMITTED "-" and
 * the lag a new member would have starting at the beginning (Kafka's auto.offset.reset=earliest, and what
 * mqlog consume --group does), so that lag is never understated.
 */
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

static void mq_groups_help(void)
{
    printf(
        "usage: mqlog groups -d DATA_DIR [GROUP]\n"
        "       mqlog groups reset -d DATA_DIR GROUP --to-earliest|--to-latest|--to-datetime WHEN|\n"
        "                          --to-offset N [--topic TOPIC|'GLOB'] [--dry-run]\n"
        "\n"
        "Lists every consumer group (or only GROUP) with, for every partition of each topic it committed\n"
        "an offset for, the committed offset (the next record the group will read; '-' when never\n"
        "committed), the partition's end offset and the lag between them (from the log start when never\n"
        "committed).\n"
        "\n"
        "reset sets GROUP's offsets, for the topics it has offsets for (or those --topic names, which may\n"
        "be a glob and need no earlier commit), in one transaction. It is refused while the group has\n"
        "members connected to the running mqlogd, as Kafka refuses it: stop the consumers first.\n"
        "\n"
        "  -d, --dir DATA_DIR      the data directory\n"
        "      --to-earliest       the log start of each partition\n"
        "      --to-latest         the end of each partition (skip everything stored so far)\n"
        "      --to-datetime WHEN  the first record at or after a time (the end when none is that new):\n"
        "                          @EPOCH_MS, ISO 8601 ('2026-12-06 16:12', local time unless zoned), or\n"
        "                          a time ago (-1h, -2d)\n"
        "      --to-offset N       offset N, moved into [log start, end] where it lies outside\n"
        "      --topic TOPIC       only this topic, or the topics a glob matches\n"
        "      --dry-run           print the new offsets without writing them\n"
        "  -h, --help              this text\n");
}

/* Prints the rows of one topic for group: every partition, committed or not. offs/n are the group's
 * commits (sorted by topic, partition). */
static void mq_groups_topic_rows(struct mq_store *store, const char *group, const struct mq_catalog_topic *t,
                                 const struct mq_group_offset *offs, size_t n)
{
    for (int32_t p = 0; p < t->partitions; p++) {
        const struct mq_group_offset *o = NULL;
        for (size_t i = 0; i < n && !o; i++)
            if (offs[i].partition == p && strcmp(offs[i].topic, t->name) == 0)
                o = &offs[i];
        struct mq_part *part = NULL;
        struct mq_part_stats st;
        char committed[32] = "-", end[32] = "-", lag[32] = "-";
        if (o)
            snprintf(committed, sizeof committed, "%" PRId64, o->offset);
        if (mq_store_part(store, t->name, p, &part) == MQ_OK && mq_part_stats(part, &st) == MQ_OK) {
            snprintf(end, sizeof end, "%" PRId64, st.end_offset);
            int64_t from = o ? o->offset : st.start_offset;
            snprintf(lag, sizeof lag, "%" PRId64, st.end_offset > from ? st.end_offset - from : 0);
        }
        printf("%-24s %-24s %5d %12s %12s %12s\n", group, t->name, (int)p, committed, end, lag);
    }
}

/* Prints one group's offsets; returns false after an error message. */
static bool mq_groups_print(struct mq_store *store, const char *group)
{
    struct mq_catalog *cat = mq_store_catalog(store);
    struct mq_group_offset *offs = NULL;
    size_t n = 0;
    enum mq_err err = mq_catalog_offset_list(cat, group, &offs, &n);
    if (err != MQ_OK) {
        mq_tool_error("group %s: %s (%s)", group, mq_strerror(err), mq_catalog_errmsg(cat));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(offs[i].topic, offs[i - 1].topic) == 0)
            continue; /* one pass per topic */
        struct mq_catalog_topic t;
        if (mq_store_topic_get(store, offs[i].topic, &t) == MQ_OK)
            mq_groups_topic_rows(store, group, &t, offs, n);
    }
    mq_catalog_offsets_free(offs, n);
    return true;
}

/* ---- reset ---- */

enum mq_reset_to { MQ_RESET_NONE, MQ_RESET_EARLIEST, MQ_RESET_LATEST, MQ_RESET_DATETIME, MQ_RESET_OFFSET };

/* The new offset of one partition; false after an error message. */
static bool mq_reset_target(struct mq_part *part, const char *topic, int32_t p, enum mq_reset_to to,
                            int64_t arg, int64_t *out)
{
    int64_t start, end;
    enum mq_err err = mq_part_offsets(part, &start, &end);
    if (err == MQ_OK && to == MQ_RESET_DATETIME) {
        int64_t off;
        err = mq_part_offset_for_time(part, arg, &off);
        if (err == MQ_OK)
            *out = off >= 0 ? off : end;
    } else if (err == MQ_OK) {
        *out = to == MQ_RESET_EARLIEST ? start : to == MQ_RESET_LATEST ? end : arg;
        if (*out < start)
            *out = start;
        if (*out > end)
            *out = end;
    }
    if (err != MQ_OK)
        mq_tool_error("partition %s-%d: %s", topic, (int)p, mq_strerror(err));
    return err == MQ_OK;
}

/* The topics to reset: those --topic names (a glob, or one topic), else those the group has offsets for. */
static bool mq_reset_topics(struct mq_store *store, const char *group, const char *only,
                            struct mq_catalog_topic **topics, size_t *count)
{
    struct mq_catalog *cat = mq_store_catalog(store);
    struct mq_catalog_topic *all = NULL;
    size_t n = 0, k = 0;
    struct mq_group_offset *offs = NULL;
    size_t noffs = 0;
    enum mq_err err = mq_catalog_topic_list(cat, &all, &n);
    if (err == MQ_OK && !only)
        err = mq_catalog_offset_list(cat, group, &offs, &noffs);
    if (err != MQ_OK) {
        mq_tool_error("group %s: %s (%s)", group, mq_strerror(err), mq_catalog_errmsg(cat));
        free(all);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        bool take = false;
        if (only)
            take = fnmatch(only, all[i].name, 0) == 0;
        for (size_t j = 0; !only && j < noffs && !take; j++)
            take = strcmp(offs[j].topic, all[i].name) == 0;
        if (take)
            all[k++] = all[i];
    }
    mq_catalog_offsets_free(offs, noffs);
    if (k == 0) {
        free(all);
        if (only)
            mq_tool_error("no topic matches '%s' in %s", only, mq_store_dir(store));
        else
            mq_tool_error("group %s has no offsets to reset: name the topics with --topic", group);
        return false;
    }
    *topics = all;
    *count = k;
    return true;
}

static int mq_groups_reset(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"to-earliest", no_argument, NULL, 'E'},
        {"to-latest", no_argument, NULL, 'L'},
        {"to-datetime", required_argument, NULL, 'D'},
        {"to-offset", required_argument, NULL, 'O'},
        {"topic", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *only = NULL;
    enum mq_reset_to to = MQ_RESET_NONE;
    int64_t arg = 0;
    bool dry = false;
    int c, ntargets = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'E':
        case 'L':
            to = c == 'E' ? MQ_RESET_EARLIEST : MQ_RESET_LATEST;
            ntargets++;
            break;
        case 'D': {
            enum mq_where_kind kind;
            if (!mq_tool_parse_where("groups reset", "--to-datetime", optarg, false, &kind, &arg))
                return MQ_EXIT_USAGE;
            if (kind != MQ_WHERE_TIME)
                return mq_tool_usage_error("groups reset",
                                           "--to-datetime '%s': expected a time, not an offset", optarg);
            to = MQ_RESET_DATETIME;
            ntargets++;
            break;
        }
        case 'O':
            if (!mq_tool_parse_int("groups reset", "--to-offset", optarg, 0, INT64_MAX, &arg))
                return MQ_EXIT_USAGE;
            to = MQ_RESET_OFFSET;
            ntargets++;
            break;
        case 't':
            only = optarg;
            break;
        case 'n':
            dry = true;
            break;
        case 'h':
            mq_groups_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("groups reset", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("groups reset", "no data directory (-d DIR)");
    if (optind >= argc)
        return mq_tool_usage_error("groups reset", "no group");
    if (optind + 1 < argc)
        return mq_tool_usage_error("groups reset", "unexpected argument '%s'", argv[optind + 1]);
    if (ntargets != 1)
        return mq_tool_usage_error(
            "groups reset", "give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset");
    const char *group = argv[optind];
    if (!*group)
        return mq_tool_usage_error("groups reset", "empty group name");

    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_READ, false);
    if (!store)
        return MQ_EXIT_FAIL;
    int rc = MQ_EXIT_FAIL;
    struct mq_catalog_topic *topics = NULL;
    size_t ntopics = 0, n = 0, cap = 0;
    struct mq_offset_commit *commits = NULL;
    int64_t *old = NULL; /* the committed offsets before, -1 when none */
    if (!mq_reset_topics(store, group, only, &topics, &ntopics))
        goto out;
    for (size_t t = 0; t < ntopics; t++)
        cap += (size_t)topics[t].partitions;
    if (!(commits = calloc(cap, sizeof *commits)) || !(old = calloc(cap, sizeof *old))) {
        mq_tool_error("out of memory");
        goto out;
    }
    for (size_t t = 0; t < ntopics; t++)
        for (int32_t p = 0; p < topics[t].partitions; p++) {
            struct mq_part *part;
            enum mq_err err = mq_store_part(store, topics[t].name, p, &part);
            if (err != MQ_OK) {
                mq_tool_error("partition %s-%d: %s", topics[t].name, (int)p, mq_strerror(err));
                goto out;
            }
            struct mq_offset_commit *cm = &commits[n];
            *cm = (struct mq_offset_commit){.topic = topics[t].name, .partition = p};
            if (!mq_reset_target(part, topics[t].name, p, to, arg, &cm->offset))
                goto out;
            if (mq_catalog_offset_fetch(mq_store_catalog(store), group, topics[t].name, p, &old[n], NULL,
                                        NULL) != MQ_OK)
                old[n] = -1;
            n++;
        }
    long daemon = dry ? 0 : mq_tool_writer_pid(dir);
    enum mq_err err =
        dry ? MQ_OK : mq_catalog_offset_reset(mq_store_catalog(store), group, commits, n, daemon);
    if (err == MQ_ERR_BUSY) {
        mq_tool_error("group %s has members connected to mqlogd%s: stop them first, as Kafka requires an "
                      "empty group for a reset; nothing was written",
                      group, daemon > 0 ? "" : " (or the catalog is busy)");
        goto out;
    }
    if (err != MQ_OK) {
        mq_tool_error("group %s: resetting offsets: %s (%s); nothing was written", group, mq_strerror(err),
                      mq_catalog_errmsg(mq_store_catalog(store)));
        goto out;
    }
    printf("%-24s %-24s %5s %12s %12s\n", "GROUP", "TOPIC", "PART", "COMMITTED", "NEW");
    for (size_t i = 0; i < n; i++) {
        char committed[32] = "-";
        if (old[i] >= 0)
            snprintf(committed, sizeof committed, "%" PRId64, old[i]);
        printf("%-24s %-24s %5d %12s %12" PRId64 "\n", group, commits[i].topic, (int)commits[i].partition,
               committed, commits[i].offset);
    }
    if (dry)
        printf("dry run: nothing written\n");
    else
        printf("reset %zu partition%s of group %s\n", n, n == 1 ? "" : "s", group);
    rc = MQ_EXIT_OK;
out:
    free(commits);
    free(old);
    free(topics);
    mq_store_close(store);
    if (fflush(stdout) != 0)
        rc = MQ_EXIT_FAIL;
    return rc;
}

int mq_cmd_groups(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "reset") == 0)
        return mq_groups_reset(argc - 1, argv + 1);
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
