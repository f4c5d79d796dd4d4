/*
 * diag.h - diagnostics to stderr with levels, in a form journald understands.
 *
 * Lines are prefixed with "<N>" (sd-daemon priority) when stderr is the journal, otherwise with the level
 * name (after a timestamp in mqlogd). The macros test the level before they evaluate their arguments, so a
 * debug line costs one compare when debugging is off.
 */
#ifndef MQ_DIAG_H
#define MQ_DIAG_H

#include <stdbool.h>

enum mq_level { MQ_LV_ERROR = 3, MQ_LV_WARN = 4, MQ_LV_NOTICE = 5, MQ_LV_INFO = 6, MQ_LV_DEBUG = 7 };

extern int mq_diag_level; /* the most verbose level printed; default MQ_LV_INFO */
/* Lines start with an ISO 8601 UTC time with milliseconds (mqlogd sets it), except under the journal, which
 * stamps lines itself and gets sd-daemon "<N>" priority prefixes instead. */
extern bool mq_diag_timestamps;

void mq_diag_printf(enum mq_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "error", "warn", "notice", "info" or "debug"; returns -1 for anything else. */
int mq_diag_level_parse(const char *name);

#define MQ_DIAG(lv, ...)                                                                                     \
    do {                                                                                                     \
        if ((int)(lv) <= mq_diag_level)                                                                      \
            mq_diag_printf((lv), __VA_ARGS__);                                                               \
    } while (0)
#define MQ_ERROR(...)  MQ_DIAG(MQ_LV_ERROR, __VA_ARGS__)
#define MQ_WARN(...)   MQ_DIAG(MQ_LV_WARN, __VA_ARGS__)
#define MQ_NOTICE(...) MQ_DIAG(MQ_LV_NOTICE, __VA_ARGS__)
#define MQ_INFO(...)   MQ_DIAG(MQ_LV_INFO, __VA_ARGS__)
#define MQ_DEBUG(...)  MQ_DIAG(MQ_LV_DEBUG, __VA_ARGS__)

#endif
