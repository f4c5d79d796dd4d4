/*
 * filter.h - MQTT topic names and topic filters, as MQTT 3.1.1 (section 4.7) and MQTT 5 (section 4.7) define
 * them: validation, matching with the levels the wildcards matched, and whether one filter covers another.
 *
 * The rules, in short: levels are separated by '/', an empty level is a level ("a//b" has three, "/a" two);
 * '+' matches exactly one level and must fill its level; '#' matches any number of levels, must fill the
 * last level, and also matches the parent level ("a/#" matches "a"); a filter whose first level is a
 * wildcard does not match a topic name starting with '$'; matching is byte-exact (case sensitive). A shared
 * subscription "$share/GROUP/FILTER" matches what FILTER matches.
 *
 * Nothing here allocates; every function is thread-safe.
 */
#ifndef MQ_ROUTE_FILTER_H
#define MQ_ROUTE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define MQ_MQTT_TOPIC_MAX 65535 /* MQTT strings carry a 16-bit length */

/* A byte range [off, off + len) of a topic name: one level, or for '#' the rest of the topic. */
struct mq_span {
    uint32_t off;
    uint32_t len;
};

/*
 * Validates a topic filter, including the "$share/GROUP/FILTER" form (GROUP non-empty, without '+' or '#';
 * FILTER a valid filter). On error returns MQ_ERR_INVAL and writes the reason into errstr.
 */
enum mq_err mq_filter_check(const char *filter, char *errstr, size_t errstr_size);

/* Validates a topic name as received in a PUBLISH: 1..65535 bytes of UTF-8, no '+', '#' or NUL. */
bool mq_topic_valid(const char *topic, size_t len);

/* The filter a (valid) shared subscription routes by: what follows "$share/GROUP/"; filter itself when it
 * is not shared. Points into filter. */
const char *mq_filter_inner(const char *filter);

/* For a valid filter (its inner filter when shared): the number of wildcards, the number of levels, and
 * whether the last level is '#'. Any pointer may be NULL. */
void mq_filter_shape(const char *filter, int *wildcards, int *levels, bool *multi);

/*
 * Whether topic[0..topic_len) matches the valid filter (shared subscriptions by their inner filter). When it
 * does, caps[i] for i < min(ncaps, wildcards) receives what the i-th wildcard matched, in filter order: a
 * '+' its level, a '#' the remaining levels with their '/' separators (an empty span when '#' matched only
 * the parent level). caps may be NULL when ncaps is 0.
 */
bool mq_filter_match(const char *filter, const char *topic, size_t topic_len, struct mq_span *caps,
                     int ncaps);

/*
 * Whether every topic name that b matches is also matched by a (both valid and not shared: compare shared
 * subscriptions only within one group). Conservative: false can also mean "could not prove it".
 */
bool mq_filter_covers(const char *a, const char *b);

/* Whether s[0..len) is well-formed UTF-8 without U+0000 (the MQTT rule for strings). */
bool mq_utf8_valid(const char *s, size_t len);

#endif
