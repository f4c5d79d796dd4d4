/*
 * diag.c - the stderr writer behind diag.h. One fprintf-sized write per line so that lines from several
 * threads do not interleave.
 */
#include "util/diag.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int mq_diag_level = MQ_LV_INFO;
bool mq_diag_timestamps;

static const char *mq_level_name(enum mq_level level)
{
    switch (level) {
    case MQ_LV_ERROR:
        return "error";
    case MQ_LV_WARN:
        return "warning";
    case MQ_LV_NOTICE:
        return "notice";
    case MQ_LV_INFO:
        return "info";
    default:
        return "debug";
    }
}

void mq_diag_printf(enum mq_level level, const char *fmt, ...)
{
    /* JOURNAL_STREAM is set by systemd when stderr is connected to the journal. Any thread may log first,
     * so the lazily set flag is atomic (every thread computes the same value). */
    static _Atomic int journal = -1;
    int j = atomic_load_explicit(&journal, memory_order_relaxed);
    if (j < 0) {
        j = getenv("JOURNAL_STREAM") != NULL;
        atomic_store_explicit(&journal, j, memory_order_relaxed);
    }

    char line[2048];
    int n;
    if (j) {
        n = snprintf(line, sizeof line, "<%d>", (int)level);
    } else if (mq_diag_timestamps) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ mqlog %s: ", ts.tv_nsec / 1000000L,
                      mq_level_name(level));
    } else {
        n = snprintf(line, sizeof line, "mqlog %s: ", mq_level_name(level));
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

int mq_diag_level_parse(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"error", MQ_LV_ERROR},   {"warn", MQ_LV_WARN}, {"warning", MQ_LV_WARN},
                 {"notice", MQ_LV_NOTICE}, {"info", MQ_LV_INFO}, {"debug", MQ_LV_DEBUG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0)
            return names[i].level;
    return -1;
}
