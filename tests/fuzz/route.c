/*
 * route.c - fuzz target: the route layer (gateway/route/): topic filters, log topic templates, key strategies
 * and the JSON pointer that takes a key from a payload. The input is lines: a filter, a template, a key
 * strategy, an MQTT topic, then the payload (the rest, any bytes). Each is checked as the configuration
 * checks it; when all three pass, a route table of that mapping (and one of '#' into the unmatched topic) is
 * built and the topic matched with the payload, its subscriptions listed, and the filter compared with the
 * topic as filters are compared (covers).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "route/filter.h"
#include "route/json.h"
#include "route/placement.h"
#include "route/route.h"

/* The next line of [*p, end) as a NUL-terminated copy (NULL when out of input); *p moves past it. */
static char *mq_fuzz_line(const uint8_t **p, const uint8_t *end)
{
    if (*p >= end)
        return NULL;
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl != NULL);
    return s;
}

static enum mq_err mq_fuzz_hit(void *opaque, const struct mq_route_hit *hit)
{
    size_t *sum = opaque;
    *sum += strlen(hit->topic) + (hit->key ? hit->key_len : 0);
    if (hit->key)
        *sum += (size_t)mq_partition_for_key(hit->key, hit->key_len, hit->partitions);
    return MQ_OK;
}

static enum mq_err mq_fuzz_sub(void *opaque, const char *filter, int qos)
{
    size_t *sum = opaque;
    *sum += strlen(filter) + (size_t)qos;
    return MQ_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *filter = mq_fuzz_line(&p, end), *tmpl = mq_fuzz_line(&p, end), *key = mq_fuzz_line(&p, end);
    char *topic = mq_fuzz_line(&p, end);
    const uint8_t *payload = p;
    size_t payload_len = (size_t)(end - p);
    char why[512];
    size_t sum = 0;
    if (!topic)
        goto out;
    bool filter_ok = mq_filter_check(filter, why, sizeof(why)) == MQ_OK;
    int max_ref = 0, level = 0;
    bool tmpl_ok = mq_route_template_check(tmpl, &max_ref, why, sizeof(why)) == MQ_OK;
    bool key_ok = mq_route_key_check(key, &level, why, sizeof(why)) == MQ_OK;
    size_t topic_len = strlen(topic);
    bool topic_ok = mq_topic_valid(topic, topic_len);
    if (filter_ok) {
        int wildcards, levels;
        bool multi;
        mq_filter_shape(filter, &wildcards, &levels, &multi);
        (void)mq_filter_inner(filter);
        struct mq_span caps[MQ_ROUTE_MAX_REFS];
        if (topic_ok)
            sum += mq_filter_match(filter, topic, topic_len, caps, MQ_ROUTE_MAX_REFS);
        if (mq_filter_check(topic, why, sizeof(why)) == MQ_OK)
            sum += mq_filter_covers(filter, topic) + mq_filter_covers(topic, filter);
    }
    if (strncmp(key, "json:", 5) == 0) {
        struct mq_json_pointer *ptr = NULL;
        if (mq_json_pointer_compile(key + 5, &ptr, why, sizeof(why)) == MQ_OK) {
            struct mq_json_value v;
            if (mq_json_pointer_eval(ptr, payload, payload_len, &v) && v.kind == MQ_JSON_STRING) {
                char *buf = malloc(v.len + 1);
                if (!buf)
                    abort();
                sum += mq_json_string_escaped(&v) + mq_json_string_decode(&v, buf);
                free(buf);
            }
            mq_json_pointer_free(ptr);
        }
    }
    if (filter_ok && tmpl_ok && key_ok) {
        const char *const from[] = {filter};
        struct mq_route_def defs[2] = {
            {.from = from, .nfrom = 1, .qos = 1, .to = tmpl, .partitions = 3, .key = key},
            {.from = from,
             .nfrom = 1,
             .broker = "other",
             .qos = 2,
             .to = "fixed",
             .partitions = 1,
             .key = "none"},
        };
        struct mq_route_table *t = NULL;
        if (mq_route_table_new(defs, 2, "unmatched", &t, why, sizeof(why)) == MQ_OK) {
            int nhits;
            mq_route_match(t, NULL, topic, topic_len, payload, payload_len, mq_fuzz_hit, &sum, &nhits);
            mq_route_match(t, "b", topic, topic_len, payload, payload_len, mq_fuzz_hit, &sum, &nhits);
            mq_route_subscriptions(t, "b", NULL, mq_fuzz_sub, &sum);
            mq_route_subscriptions(t, "other", "group", mq_fuzz_sub, &sum);
            mq_route_table_free(t);
        }
    }
out:
    free(filter);
    free(tmpl);
    free(key);
    free(topic);
    return sum == (size_t)-1; /* keeps sum alive; never true */
}
