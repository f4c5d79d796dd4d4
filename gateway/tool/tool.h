/*
 * tool.h - what the `mqlog` commands share: their entry points, exit codes, error reporting and the checks
 * every command makes on its arguments (data directory, topic, partition) before touching anything stored.
 *
 * Conventions of every command: options are parsed completely (getopt_long) before the store is opened, so
 * a malformed argument never touches a data directory; an error is one line on stderr starting "mqlog: ";
 * usage errors exit with MQ_EXIT_USAGE, runtime errors with MQ_EXIT_FAIL.
 */
#ifndef MQ_TOOL_H
#define MQ_TOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/when.h"

enum {
    MQ_EXIT_OK = 0,
    MQ_EXIT_FAIL = 1,      /* a runtime error, or problems found by verify */
    MQ_EXIT_USAGE = 2,     /* malformed command line */
    MQ_EXIT_RANGE = 3,     /* a start offset past the end of the log (consume without -f) */
    MQ_EXIT_NOT_READY = 4, /* status: mqlogd answered, and it is not ready */
};

/* One command: argv[0] is the command name; returns the process exit status. */
int mq_cmd_topics(int argc, char **argv);
int mq_cmd_create(int argc, char **argv);
int mq_cmd_produce(int argc, char **argv);
int mq_cmd_consume(int argc, char **argv);
int mq_cmd_verify(int argc, char **argv);
int mq_cmd_groups(int argc, char **argv);
int mq_cmd_replay(int argc, char **argv);
int mq_cmd_route(int argc, char **argv);   /* cmd_route.c: where mqlogd would store a message */
int mq_cmd_forward(int argc, char **argv); /* cmd_forward.c: `forward status`, the forwarders' lag */
int mq_cmd_user(int argc, char **argv);    /* cmd_user.c: the Kafka endpoint's SASL users */
int mq_cmd_topic(int argc, char **argv);   /* cmd_topic.c: topic alter, topic delete */
int mq_cmd_status(int argc, char **argv);  /* cmd_status.c: a running mqlogd's status over HTTP */

/* Prints "mqlog: <message>\n" to stderr. */
void mq_tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "mqlog: <message> (try 'mqlog <cmd> --help')" and returns MQ_EXIT_USAGE. */
int mq_tool_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The operands of a command that takes -d DIR and one topic name (create, topic alter, topic delete), once
 * getopt is done: MQ_EXIT_OK with *name set, or the exit code of the usage error it printed. */
int mq_tool_dir_and_topic(const char *cmd, const char *dir, int argc, char **argv, const char **name);

/* Reports the option getopt_long() rejected (opterr must be 0); returns MQ_EXIT_USAGE. */
int mq_tool_bad_option(const char *cmd, int argc, char **argv, int c);

/* Parses a number argument of option opt into [min, max]; prints a usage error and returns false when
 * malformed. */
bool mq_tool_parse_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
                       int64_t *out);

/* Parses option opt's value s, where a reader starts (-o) or stops (--until) in each partition, with
 * mq_where_parse (util/when.h: words only when allow_words, offsets, -N, times). Prints a usage error of cmd
 * and returns false when malformed. */
bool mq_tool_parse_where(const char *cmd, const char *opt, const char *s, bool allow_words,
                         enum mq_where_kind *kind, int64_t *arg);

/* The forms -o and --until accept, for the --help texts. */
#define MQ_TOOL_WHERE_HELP                                                                                   \
    "WHERE is beginning, end, an OFFSET, -N (N records before the end), @EPOCH_MS (milliseconds), an ISO\n"  \
    "8601 time ('2026-12-06 16:12' is local time; '2026-12-06T16:12Z' and '...16:12+01:00' are zoned), "     \
    "now,\n"                                                                                                 \
    "today, yesterday, or a time ago: -30s, -5m, -1h, -2d, -1w. A time stands for the first record with a\n" \
    "timestamp at or after it.\n"

/* The offset a position other than MQ_WHERE_TIME names in a partition holding [start, end): an OFFSET as
 * given (it may lie outside), N before the end clamped at start, or start or end. */
int64_t mq_tool_where_offset(enum mq_where_kind kind, int64_t arg, int64_t start, int64_t end);

/*
 * Opens the data directory dir as a store with flags (MQ_STORE_READ or MQ_STORE_WRITE). Prints one clear
 * error line on failure (a missing directory, not a data directory, locked by mqlogd, not writable) and
 * returns NULL. A write open of a missing directory fails too unless create_dir is set.
 */
struct mq_store *mq_tool_open_store(const char *dir, int flags, bool create_dir);

/* The pid of the writer (mqlogd) holding dir's lock now, -1 when one holds it but its pid is unknown, 0
 * when none does. */
long mq_tool_writer_pid(const char *dir);

/*
 * Beside a running mqlogd, the commands that write ask it to (control/control.h). mq_tool_daemon() returns
 * -1 when no writer holds dir (the command opens the store itself), the connected control socket when
 * mqlogd does, or -2 after an error message when it holds it but cannot be reached.
 */
int mq_tool_daemon(const char *dir);

/* Sends the request line (with its "\n") on fd, unless line is NULL, and reads the one-line reply into
 * reply (without "\n"). Returns false after an error message (a reply "error ..." is not one: the caller
 * reports it). */
bool mq_tool_ctl_send(int fd, const char *line, size_t len);
bool mq_tool_ctl_reply(int fd, char *reply, size_t size);

/* Looks topic up in the catalog; prints an error and returns false when unknown. */
bool mq_tool_topic(struct mq_store *store, const char *name, struct mq_catalog_topic *topic);

/* Opens partition p of topic (which must exist); prints an error naming it and returns NULL on failure. */
struct mq_part *mq_tool_part(struct mq_store *store, const struct mq_catalog_topic *topic, int32_t p);

/* Formats ms since the epoch as ISO 8601 UTC with milliseconds ("2024-05-01T12:00:00.000Z") into buf
 * (at least 32 bytes); "-" for a negative value. Returns buf. */
char *mq_tool_iso8601(int64_t ms, char *buf, size_t size);

/* Installs SIGINT/SIGTERM handlers (without SA_RESTART) that set the flag mq_tool_stop_requested() reads,
 * and ignores SIGPIPE so that a closed pipe is a write error (EPIPE) the command handles. */
void mq_tool_signals(void);
bool mq_tool_stop_requested(void);

#endif
