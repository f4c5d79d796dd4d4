/*
 * when.h - the one parser for "where to start or stop reading" that every command taking an offset or a time
 * uses (`mqlog consume -o/--until`, `replay`, `groups reset --to-datetime`).
 *
 * Accepted forms, tried in this order:
 *   beginning | earliest, end | latest    the log start or end (only where words are allowed)
 *   now, today, yesterday                 the current time, or local midnight of today or yesterday
 *   OFFSET                                an offset >= 0
 *   -N                                    N records before the end
 *   -DURATION                             a time that long ago: -30s, -5m, -1h, -2d, -1w (units as in config)
 *   @EPOCH_MS                             milliseconds since the epoch; a value that looks like seconds
 *                                         (10 digits) is refused with a hint, never read as 1970
 *   YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|+HH[:MM]|-HH[:MM]]
 *                                         ISO 8601; local time when no zone is given
 */
#ifndef MQ_WHEN_H
#define MQ_WHEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mq_where_kind {
    MQ_WHERE_BEGINNING,
    MQ_WHERE_END,
    MQ_WHERE_OFFSET,     /* arg: the offset */
    MQ_WHERE_BEFORE_END, /* arg: how many records before the end */
    MQ_WHERE_TIME,       /* arg: milliseconds since the epoch */
};

/* Parses s. Words (beginning, end, ...) are accepted only with allow_words; now_ms is the wall clock
 * relative times count back from. On failure returns false with one sentence in err (no trailing period). */
bool mq_where_parse(const char *s, bool allow_words, int64_t now_ms, enum mq_where_kind *kind, int64_t *arg,
                    char *err, size_t errlen);

#endif
