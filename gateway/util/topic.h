/*
 * topic.h - Kafka's rule for topic names, in one place.
 *
 * Every module that accepts a log topic name checks it here: the log (directory names), the route module
 * (expanded templates), the configuration, the catalog and the Kafka endpoint. It lives in util so that
 * route, which must not depend on the log, shares the rule with it.
 */
#ifndef MQ_TOPIC_H
#define MQ_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define MQ_TOPIC_NAME_MAX 249 /* Kafka's limit on a topic name */

#define MQ_TOPIC_STR_(x) #x
#define MQ_TOPIC_STR(x)  MQ_TOPIC_STR_(x)
/* The rule in words, for error messages. */
#define MQ_TOPIC_NAME_RULE                                                                                   \
    "1-" MQ_TOPIC_STR(MQ_TOPIC_NAME_MAX) " characters of a-z A-Z 0-9 . _ -, not . or .."

/* True for the characters a topic name may hold: [a-zA-Z0-9._-]. */
bool mq_topic_name_char(unsigned char c);

/* Kafka's rule for topic names: 1..MQ_TOPIC_NAME_MAX characters of [a-zA-Z0-9._-], not "." or "..".
 * name need not be NUL-terminated; NULL is not a valid name. */
bool mq_topic_name_valid_len(const char *name, size_t len);
/* The same for a NUL-terminated name. */
bool mq_topic_name_valid(const char *name);

#endif
