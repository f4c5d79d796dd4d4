/*
 * common.c - helpers every `mqlog` command uses: error lines, argument checks, opening the store with
 * messages a user can act on, signals (see tool.h).
 */
#include "tool/tool.h"

#include "util/topic.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/parse.h"
#include "util/suggest.h"

void mq_tool_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mqlog: %s\n", msg);
}

int mq_tool_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mqlog: %s (try 'mqlog %s --help')\n", msg, cmd);
    return MQ_EXIT_USAGE;
}

int mq_tool_bad_option(const char *cmd, int argc, char **argv, int c)
{
    /* getopt_long leaves the offending argument at optind - 1 (or optind when it consumed nothing) */
    const char *arg = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return mq_tool_usage_error(cmd, "option %s needs a value", arg);
    if (optopt && optopt < 256 && !(arg[0] == '-' && arg[1] == '-'))
        return mq_tool_usage_error(cmd, "unknown option -%c", optopt);
    return mq_tool_usage_error(cmd, "unknown option %s", arg);
}

bool mq_tool_parse_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
                       int64_t *out)
{
    enum mq_err err = mq_parse_int64(s, min, max, out);
    if (err == MQ_OK)
        return true;
    if (err == MQ_ERR_RANGE)
        mq_tool_usage_error(cmd, "%s %s: out of range (%lld..%lld)", opt, s, (long long)min, (long long)max);
    else
        mq_tool_usage_error(cmd, "%s '%s': not a number", opt, s);
    return false;
}

/* The pid recorded in "<dir>/.lock" by the writer holding it, or 0. */
static long mq_tool_lock_pid(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    int64_t pid;
    return mq_parse_int64(buf, 1, INT32_MAX, &pid) == MQ_OK ? (long)pid : 0;
}

bool mq_tool_parse_where(const char *cmd, const char *opt, const char *s, bool allow_words,
                         enum mq_where_kind *kind, int64_t *arg)
{
    char err[256];
    if (mq_where_parse(s, allow_words, mq_now_ms(), kind, arg, err, sizeof err))
        return true;
    mq_tool_usage_error(cmd, "%s %s", opt, err);
    return false;
}

int64_t mq_tool_where_offset(enum mq_where_kind kind, int64_t arg, int64_t start, int64_t end)
{
    switch (kind) {
    case MQ_WHERE_BEGINNING:
        return start;
    case MQ_WHERE_END:
        return end;
    case MQ_WHERE_BEFORE_END:
        return arg < end - start ? end - arg : start;
    default:
        return arg;
    }
}

long mq_tool_writer_pid(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* A lock we can take is held by nobody; a pid left in the file by a killed writer means nothing. */
    bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases our lock, if we took it */
    if (!held)
        return 0;
    long pid = mq_tool_lock_pid(dir);
    return pid ? pid : -1;
}

struct mq_store *mq_tool_open_store(const char *dir, int flags, bool create_dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || !create_dir) {
            mq_tool_error("data directory %s: %s", dir, MQ_STRERROR(errno));
            return NULL;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        mq_tool_error("data directory %s: not a directory", dir);
        return NULL;
    } else if ((flags & MQ_STORE_WRITE) && access(dir, W_OK | X_OK) != 0) {
        mq_tool_error("data directory %s: not writable: %s", dir, MQ_STRERROR(errno));
        return NULL;
    }
    struct mq_log_conf conf;
    mq_log_conf_defaults(&conf);
    /* The tool's writer is short-lived: it never needs the daemon's periodic retention pass. */
    conf.retention_check_ms = 24LL * 3600 * 1000;
    struct mq_store *store = NULL;
    char errstr[512];
    enum mq_err err = mq_store_open(dir, flags, &conf, &store, errstr, sizeof errstr);
    if (err == MQ_ERR_BUSY) {
        long pid = mq_tool_lock_pid(dir);
        if (pid)
            mq_tool_error(
                "data directory %s is locked by a running writer (pid %ld, mqlogd?): stop it first, or "
                "use a read-only command",
                dir, pid);
        else
            mq_tool_error(
                "data directory %s is locked by a running writer (mqlogd?): stop it first, or use a "
                "read-only command",
                dir);
        return NULL;
    }
    if (err != MQ_OK) {
        mq_tool_error("%s", errstr[0] ? errstr : mq_strerror(err));
        return NULL;
    }
    return store;
}

bool mq_tool_topic(struct mq_store *store, const char *name, struct mq_catalog_topic *topic)
{
    enum mq_err err = mq_store_topic_get(store, name, topic);
    if (err == MQ_OK)
        return true;
    if (err == MQ_ERR_NOENT) {
        struct mq_catalog_topic *all = NULL;
        size_t n = 0;
        struct mq_suggest sg;
        mq_suggest_init(&sg, name);
        if (mq_catalog_topic_list(mq_store_catalog(store), &all, &n) == MQ_OK)
            for (size_t i = 0; i < n; i++)
                mq_suggest_feed(&sg, all[i].name);
        if (sg.best)
            mq_tool_error("unknown topic '%s' in %s (did you mean '%s'?)", name, mq_store_dir(store),
                          sg.best);
        else
            mq_tool_error("unknown topic '%s' in %s", name, mq_store_dir(store));
        free(all);
    } else
        mq_tool_error("topic %s: catalog: %s (%s)", name, mq_strerror(err),
                      mq_catalog_errmsg(mq_store_catalog(store)));
    return false;
}

struct mq_part *mq_tool_part(struct mq_store *store, const struct mq_catalog_topic *topic, int32_t p)
{
    if (p < 0 || p >= topic->partitions) {
        mq_tool_error("unknown partition %d of topic %s (it has %d: 0..%d)", (int)p, topic->name,
                      (int)topic->partitions, (int)topic->partitions - 1);
        return NULL;
    }
    struct mq_part *part = NULL;
    enum mq_err err = mq_store_part(store, topic->name, p, &part);
    if (err == MQ_ERR_NOENT) {
        mq_tool_error("partition %s-%d: directory missing in %s (run 'mqlog verify')", topic->name, (int)p,
                      mq_store_dir(store));
        return NULL;
    }
    if (err != MQ_OK) {
        mq_tool_error("partition %s-%d: %s", topic->name, (int)p, mq_strerror(err));
        return NULL;
    }
    return part;
}

char *mq_tool_iso8601(int64_t ms, char *buf, size_t size)
{
    if (ms < 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, size, "%lld", (long long)ms);
        return buf;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

static volatile sig_atomic_t mq_tool_stop;

static void mq_tool_on_signal(int sig)
{
    (void)sig;
    mq_tool_stop = 1;
}

void mq_tool_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mq_tool_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a wait returns EINTR and the loop sees the flag at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool mq_tool_stop_requested(void)
{
    return mq_tool_stop != 0;
}

int mq_tool_dir_and_topic(const char *cmd, const char *dir, int argc, char **argv, const char **name)
{
    if (!dir)
        return mq_tool_usage_error(cmd, "no data directory (-d DIR)");
    if (optind >= argc)
        return mq_tool_usage_error(cmd, "no topic name");
    if (optind + 1 < argc)
        return mq_tool_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    *name = argv[optind];
    if (!mq_topic_name_valid(*name))
        return mq_tool_usage_error(cmd, "invalid topic name '%s' (" MQ_TOPIC_NAME_RULE ")", *name);
    return MQ_EXIT_OK;
}
