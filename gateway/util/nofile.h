/*
 * nofile.h - the open files limit (RLIMIT_NOFILE): mqlogd raises its soft limit to the hard limit once, at
 * start, before it opens the store, so that every part sizes itself from the same figure (the log's
 * descriptor cache takes half of it, the Kafka endpoint's max_connections is checked against it).
 */
#ifndef MQ_NOFILE_H
#define MQ_NOFILE_H

#include <stdint.h>

/* Raises the soft limit to the hard limit (logged when it changes) and returns the soft limit now, or -1
 * when it cannot be read; INT64_MAX when unlimited. */
int64_t mq_nofile_raise(void);

/* The soft limit now (INT64_MAX when unlimited, -1 when it cannot be read). */
int64_t mq_nofile_limit(void);

#endif
