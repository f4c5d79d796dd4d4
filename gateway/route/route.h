/*
 * route.h - where an MQTT message goes: which mappings match it, the log topic each names, the record key
 * and the partition.
 *
 * A route table is compiled once from mapping definitions (the configuration's "mappings") and is then
 * immutable except for the per-mapping round-robin counters, which are atomic: mq_route_match() may be
 * called from several threads (one per connector) at once.
 *
 * Rules, all of them documented for users in docs/configuration.md:
 *  - A mapping matches a message when its broker is unset or equal to the broker the message came from,
 *    and one of its filters matches the topic (route/filter.h; "$share/GROUP/F" routes by F).
 *  - The log topic is the mapping's template with {N} replaced by what the N-th wildcard of the first
 *    matching filter matched. Substituted text is made a legal Kafka topic name: '/' (which '#' brings in)
 *    becomes '.', every other character outside [a-zA-Z0-9._-] becomes '_' (one '_' per UTF-8 character).
 *    If the result is still not a legal name (empty, ".", "..", longer than MQ_TOPIC_NAME_MAX), the
 *    mapping does not match that message.
 *  - A message is handed out once per distinct log topic: when several mappings name the same topic, the
 *    first of them (in definition order) decides key and partition.
 *  - Key strategies: "topic" (the MQTT topic bytes), "level:N" (the N-th topic level, 1-based; an empty level
 *    is an empty key, a missing level a null key), "json:POINTER" (RFC 6901 into the payload; a string is
 *    the key as decoded text, a number/true/false its JSON text, an object or array its JSON text as it
 *    appears in the payload, null, a missing member or a payload that is not JSON a null key), "none".
 *  - Partition: a keyed record goes to (murmur2(key) & 0x7fffffff) % partitions, Kafka's choice; a record
 *    with a null key goes round-robin over the mapping's partitions.
 *  - When no mapping matches and the table has an unmatched topic, the message goes there: partition 0 of a
 *    1-partition topic, keyed by the MQTT topic.
 */
#ifndef MQ_ROUTE_H
#define MQ_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/filter.h"
#include "util/err.h"
#include "util/topic.h"

#define MQ_ROUTE_MAX_REFS 32 /* the highest {N} a template may use */

/*
 * Checks a log topic template: literal text of [a-zA-Z0-9._-], references {1}..{32}, no other braces; a
 * template without references must be a valid topic name, and the literal text of one with references at
 * most MQ_TOPIC_NAME_MAX characters. *max_ref (may be NULL) gets the highest N used (0 for none).
 * MQ_ERR_INVAL with the reason in errstr.
 */
enum mq_err mq_route_template_check(const char *tmpl, int *max_ref, char *errstr, size_t errstr_size);

/*
 * Checks a key strategy: "topic", "none", "level:N" (1 <= N <= 65535), "json:POINTER" (RFC 6901).
 * *level (may be NULL) gets N for level:N, else 0. MQ_ERR_INVAL with the reason in errstr.
 */
enum mq_err mq_route_key_check(const char *key, int *level, char *errstr, size_t errstr_size);

/* One mapping, as the configuration holds it. The strings are copied by mq_route_table_new(). */
struct mq_route_def {
    const char *const *from; /* nfrom >= 1 topic filters */
    size_t nfrom;
    const char *broker; /* NULL: messages from every broker */
    int qos;            /* subscription QoS, 0..2 */
    const char *to;     /* log topic template */
    int32_t partitions; /* >= 1 */
    const char *key;    /* key strategy; NULL means "topic" */
};

struct mq_route_table;

/*
 * Compiles defs[0..ndefs) (validated again here) and the unmatched topic (NULL: unmatched messages are
 * dropped). On success the caller owns *out and frees it with mq_route_table_free(); on failure *out is
 * untouched and errstr says which mapping is wrong and why (MQ_ERR_INVAL) or MQ_ERR_NOMEM.
 */
enum mq_err mq_route_table_new(const struct mq_route_def *defs, size_t ndefs, const char *unmatched,
                               struct mq_route_table **out, char *errstr, size_t errstr_size);

/* Frees the table. Accepts NULL. */
void mq_route_table_free(struct mq_route_table *table);

/* One destination of a message. Everything it points to is valid only during the callback. */
struct mq_route_hit {
    int mapping;        /* index into the defs, or -1 for the unmatched topic */
    const char *topic;  /* the log topic, NUL-terminated */
    int32_t partition;  /* 0 <= partition < partitions */
    int32_t partitions; /* the mapping's partition count, to create the topic on first use */
    const void *key;    /* NULL for a null key, else key_len bytes (possibly 0) */
    size_t key_len;
};

/* Called once per destination; any return other than MQ_OK stops the match and is returned by it. */
typedef enum mq_err mq_route_fn(void *opaque, const struct mq_route_hit *hit);

/*
 * Routes one message: calls fn for each distinct log topic of the matching mappings in definition order,
 * or once for the unmatched topic, or not at all (dropped). broker is the name of the broker the message
 * came from; NULL considers every mapping whatever its broker (for tools). *nhits (may be NULL) gets the
 * number of calls made. MQ_ERR_INVAL when topic is not a valid MQTT topic name (nothing is called).
 * Allocates nothing unless a message matches more than 16 templated mappings or its json key needs
 * unescaping beyond 256 bytes.
 */
enum mq_err mq_route_match(struct mq_route_table *table, const char *broker, const char *topic,
                           size_t topic_len, const void *payload, size_t payload_len, mq_route_fn *fn,
                           void *opaque, int *nhits);

/* Called once per subscription; any return other than MQ_OK stops and is returned. */
typedef enum mq_err mq_route_sub_fn(void *opaque, const char *filter, int qos);

/*
 * The subscriptions a connection to broker needs: the filters of its mappings (those with no broker
 * or this one), each once, at the highest QoS any mapping asks for it. A filter that another filter of the
 * same subscription group covers (e.g. "a/b" beside "a/#") is left out and its QoS raised on the covering
 * one, so that a broker that delivers one copy per matching subscription does not deliver duplicates.
 * With share_group non-NULL, filters that are not already shared are subscribed as
 * "$share/<share_group>/<filter>" (for brokers with sessions > 1). When the table has an unmatched topic,
 * "#" is added after them all (it covers the others of its group and takes their highest QoS), so that
 * the messages no mapping takes reach the gateway at all. Calls fn in definition order.
 */
enum mq_err mq_route_subscriptions(const struct mq_route_table *table, const char *broker,
                                   const char *share_group, mq_route_sub_fn *fn, void *opaque);

/* The number of mappings the table was built from. */
size_t mq_route_count(const struct mq_route_table *table);

#endif
