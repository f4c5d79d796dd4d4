/*
 * cmd_verify.c - `mqlog verify`: the offline check of a data directory. Every batch's size, CRC and offset
 * continuity and every index entry (mq_log_verify), then catalog rows against partition directories
 * (mq_store_check). It only reads; run it on a stopped store for a stable answer (beside a live writer the
 * tail may be mid-write).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tool/tool.h"

static void mq_verify_help(void)
{
    printf(
        "usage: mqlog verify [--repair] -d DATA_DIR\n"
        "\n"
        "Checks every batch (size, CRC-32C, offsets) and every index entry of every partition, and that the\n"
        "catalog's topics and the partition directories match. Prints each problem as FILE:POSITION: what\n"
        "(FILE: what when it concerns a whole file or directory) and a summary line. Exit status 0 when\n"
        "clean, 1 when problems were found or the check could not run. Nothing is modified.\n"
        "\n"
        "  -d, --dir DATA_DIR  the data directory\n"
        "      --repair        first rebuild the catalog rows of topics whose partition directories hold\n"
        "                      records but which the catalog lacks (catalog.db lost or emptied): partition\n"
        "                      count from the directories, default retention. Takes the writer lock: not\n"
        "                      while mqlogd runs. Group offsets cannot be rebuilt.\n"
        "  -h, --help          this text\n");
}

static void mq_verify_print(void *opaque, const struct mq_verify_issue *issue)
{
    (void)opaque;
    if (issue->position >= 0)
        printf("%s:%" PRId64 ": %s\n", issue->path, issue->position, issue->what);
    else
        printf("%s: %s\n", issue->path, issue->what);
}

static void mq_verify_count_dir(void *opaque, const char *topic, int32_t partition)
{
    (void)topic;
    (void)partition;
    (*(int64_t *)opaque)++;
}

static void mq_verify_print_repair(void *opaque, const struct mq_verify_issue *issue)
{
    (void)opaque;
    printf("%s: repaired: %s\n", issue->path, issue->what);
}

/* --repair: rebuilds missing topic rows as the writer (mq_store_rebuild_topics()). */
static bool mq_verify_repair(const char *dir)
{
    struct mq_store *store = mq_tool_open_store(dir, MQ_STORE_WRITE, false);
    if (!store)
        return false;
    char why[512] = "";
    int64_t n = 0;
    enum mq_err err = mq_store_rebuild_topics(store, mq_verify_print_repair, NULL, &n, why, sizeof why);
    bool was_new = mq_store_catalog_was_new(store);
    enum mq_err cerr = mq_store_close(store);
    fflush(stdout);
    if (err != MQ_OK || cerr != MQ_OK) {
        mq_tool_error("verify --repair %s: %s", dir, err != MQ_OK ? why : mq_strerror(cerr));
        return false;
    }
    if (n > 0)
        printf("%s/" MQ_CATALOG_FILE ": rebuilt %" PRId64
               " topic row%s%s; consumer-group offsets and connector "
               "checkpoints that were in the catalog are gone\n",
               dir, n, n == 1 ? "" : "s", was_new ? " (the catalog was missing or empty)" : "");
    return true;
}

/* A data directory whose catalog.db is missing: the log check still runs, and the missing catalog counts as
 * a problem when partition directories exist (their records are invisible until it is rebuilt). */
static int64_t mq_verify_no_catalog(const char *dir, int64_t partitions)
{
    if (partitions == 0)
        return 0;
    printf("%s/" MQ_CATALOG_FILE ": missing while %" PRId64 " partition director%s exist: their records are "
           "invisible until 'mqlog verify --repair' or mqlogd's start rebuilds the topic rows\n",
           dir, partitions, partitions == 1 ? "y" : "ies");
    return 1;
}

int mq_cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"repair", no_argument, NULL, 'R'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool repair = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'R':
            repair = true;
            break;
        case 'h':
            mq_verify_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("verify", argc, argv, c);
        }
    }
    if (!dir)
        return mq_tool_usage_error("verify", "no data directory (-d DIR)");
    if (optind < argc)
        return mq_tool_usage_error("verify", "unexpected argument '%s'", argv[optind]);

    if (repair && !mq_verify_repair(dir))
        return MQ_EXIT_FAIL;
    int64_t log_problems = 0, batches = 0, cat_problems = 0, partitions = 0;
    enum mq_err err = mq_log_scan_dirs(dir, mq_verify_count_dir, &partitions);
    struct mq_store *store = NULL;
    char catpath[4096];
    struct stat st;
    snprintf(catpath, sizeof catpath, "%s/" MQ_CATALOG_FILE, dir);
    if (err == MQ_OK && stat(catpath, &st) != 0 && errno == ENOENT)
        cat_problems = mq_verify_no_catalog(dir, partitions);
    else if (!(store = mq_tool_open_store(dir, MQ_STORE_READ, false)))
        return MQ_EXIT_FAIL;
    if (err == MQ_OK)
        err = mq_log_verify(dir, mq_verify_print, NULL, &log_problems, &batches);
    if (err != MQ_OK) {
        fflush(stdout);
        mq_tool_error("verify %s: the check could not run: %s", dir, mq_strerror(err));
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }
    if (store)
        err = mq_store_check(store, mq_verify_print, NULL, &cat_problems);
    mq_store_close(store);
    if (err != MQ_OK) {
        fflush(stdout);
        mq_tool_error("verify %s: the catalog check could not run: %s", dir, mq_strerror(err));
        return MQ_EXIT_FAIL;
    }
    int64_t problems = log_problems + cat_problems;
    printf("%s: %" PRId64 " partition%s, %" PRId64 " batch%s checked, %" PRId64 " problem%s\n", dir,
           partitions, partitions == 1 ? "" : "s", batches, batches == 1 ? "" : "es", problems,
           problems == 1 ? "" : "s");
    if (fflush(stdout) != 0) {
        mq_tool_error("writing output failed");
        return MQ_EXIT_FAIL;
    }
    return problems ? MQ_EXIT_FAIL : MQ_EXIT_OK;
}
