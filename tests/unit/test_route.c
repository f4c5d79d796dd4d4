/*
 * test_route.c - MQTT filter validation and matching (the spec's rules and its tricky corners), templates,
 * every key strategy, the JSON pointer scanner, the route table, subscriptions, and the partitioner
 * compared with librdkafka's murmur2 partitioner.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/filter.h"
#include "route/json.h"
#include "route/placement.h"
#include "route/route.h"
#include "testutil.h"

/* ---- filters ---- */

static void test_filter_validation(void)
{
    static const char *const good[] = {
        "#",
        "+",
        "a",
        "a/b",
        "a/+/b",
        "a/#",
        "+/+",
        "+/#",
        "/",
        "//",
        "/a",
        "a//b",
        "$SYS/#",
        "$share/g/a/#",
        "$share/g/#",
        "$share/g-1.x/+/t",
        "sport/tennis/player1/#",
        "température/+",
        "a b/c",
    };
    static const char *const bad[] = {
        "",          "a/#/b",       "a+/b",        "#/x",
        "a/b#",      "a/#b",        "+a",          "a+",
        "##",        "++/a",        "$share/g",    "$share//a",
        "$share/g/", "$share/g+/a", "$share/g#/a", "$share/g/a/#/b",
        "\xff",      "a/\xc3",
    };
    char why[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        enum mq_err err = mq_filter_check(good[i], why, sizeof(why));
        if (err)
            fprintf(stderr, "filter '%s' rejected: %s\n", good[i], why);
        CU_ASSERT_EQUAL(err, MQ_OK);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        CU_ASSERT_EQUAL(mq_filter_check(bad[i], why, sizeof(why)), MQ_ERR_INVAL);
        CU_ASSERT(why[0] != '\0');
    }
    CU_ASSERT_EQUAL(mq_filter_check(NULL, NULL, 0), MQ_ERR_INVAL);
    /* 65535 bytes is the limit of an MQTT string. */
    char *longf = malloc(65537);
    CU_ASSERT_PTR_NOT_NULL_FATAL(longf);
    memset(longf, 'a', 65536);
    longf[65536] = '\0';
    CU_ASSERT_EQUAL(mq_filter_check(longf, why, sizeof(why)), MQ_ERR_INVAL);
    longf[65535] = '\0';
    CU_ASSERT_EQUAL(mq_filter_check(longf, why, sizeof(why)), MQ_OK);
    free(longf);
}

struct match_case {
    const char *filter, *topic;
    bool match;
};

static void test_filter_matching(void)
{
    static const struct match_case cases[] = {
        /* The MQTT specification's own examples (3.1.1 section 4.7.1). */
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/#", "sport", true},
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player2", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/tennis/+", "sport/tennis", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true},
        {"+/+", "/finance", true},
        {"/+", "/finance", true},
        {"+", "/finance", false},
        /* '#' and the parent level. */
        {"a/#", "a", true},
        {"a/#", "a/", true},
        {"a/#", "ab", false},
        {"a/b/#", "a", false},
        {"#", "a", true},
        {"#", "/", true},
        {"#", "/a/b", true},
        {"+/#", "a", true},
        {"+/#", "a/b/c", true},
        /* '$' topics are not matched by a leading wildcard. */
        {"#", "$SYS", false},
        {"#", "$SYS/broker/load", false},
        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
        {"+", "$", false},
        {"$SYS/#", "$SYS", true},
        {"$SYS/#", "$SYS/broker/load", true},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
        {"a/+", "a/$x", true},
        /* Empty levels are levels. */
        {"a//b", "a//b", true},
        {"a//b", "a/b", false},
        {"a/+/b", "a//b", true},
        {"+/+", "/", true},
        {"+", "/", false},
        {"/", "/", true},
        {"/#", "/", true},
        {"+/+/+", "//", true},
        {"a/b", "a/b/", false},
        {"a/b/+", "a/b/", true},
        /* Case and exact bytes. */
        {"Sport", "sport", false},
        {"sport", "sport", true},
        {"a/b", "a/bc", false},
        {"a/bc", "a/b", false},
        {"température/+", "température/x", true},
        /* Shared subscriptions route by the inner filter. */
        {"$share/g/a/+", "a/x", true},
        {"$share/g/a/+", "$share/g/a/x", false},
        {"$share/g/#", "$SYS/x", false},
        {"$share/g/#", "x/y", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct match_case *c = &cases[i];
        CU_ASSERT_EQUAL_FATAL(mq_filter_check(c->filter, NULL, 0), MQ_OK);
        bool got = mq_filter_match(c->filter, c->topic, strlen(c->topic), NULL, 0);
        if (got != c->match)
            fprintf(stderr, "filter '%s' topic '%s': got %d\n", c->filter, c->topic, got);
        CU_ASSERT_EQUAL(got, c->match);
    }
}

static void test_filter_captures(void)
{
    struct mq_span caps[4];
    const char *t = "a/b/c/d/e";
    CU_ASSERT_TRUE(mq_filter_match("a/+/c/#", t, strlen(t), caps, 4));
    CU_ASSERT_EQUAL(caps[0].off, 2);
    CU_ASSERT_EQUAL(caps[0].len, 1);
    CU_ASSERT_EQUAL(caps[1].off, 6);
    CU_ASSERT_EQUAL(caps[1].len, 3); /* "d/e" */
    CU_ASSERT_TRUE(mq_filter_match("a/#", "a", 1, caps, 4));
    CU_ASSERT_EQUAL(caps[0].off, 1);
    CU_ASSERT_EQUAL(caps[0].len, 0);
    CU_ASSERT_TRUE(mq_filter_match("+/+", "/x", 2, caps, 4));
    CU_ASSERT_EQUAL(caps[0].len, 0);
    CU_ASSERT_EQUAL(caps[1].off, 1);
    CU_ASSERT_EQUAL(caps[1].len, 1);
    /* Only ncaps spans are written. */
    caps[1].off = 99;
    CU_ASSERT_TRUE(mq_filter_match("+/+", "p/q", 3, caps, 1));
    CU_ASSERT_EQUAL(caps[0].off, 0);
    CU_ASSERT_EQUAL(caps[1].off, 99);

    int w, l;
    bool m;
    mq_filter_shape("$share/g/a/+/#", &w, &l, &m);
    CU_ASSERT_EQUAL(w, 2);
    CU_ASSERT_EQUAL(l, 3);
    CU_ASSERT_TRUE(m);
    mq_filter_shape("a//b", &w, &l, &m);
    CU_ASSERT_EQUAL(w, 0);
    CU_ASSERT_EQUAL(l, 3);
    CU_ASSERT_FALSE(m);
    CU_ASSERT_STRING_EQUAL(mq_filter_inner("$share/grp/x/y"), "x/y");
    CU_ASSERT_STRING_EQUAL(mq_filter_inner("x/y"), "x/y");
}

static void test_filter_covers(void)
{
    static const struct match_case cases[] = {
        /* filter = a (covering), topic = b (covered) */
        {"a/#", "a/b", true},    {"a/#", "a", true},     {"a/#", "a/#", true},     {"a/#", "a/+/c", true},
        {"#", "a/#", true},      {"#", "$SYS/x", false}, {"+/#", "$SYS/#", false}, {"$SYS/#", "$SYS/a", true},
        {"a/+", "a/b", true},    {"a/+", "a/+", true},   {"a/+", "a/#", false},    {"a/+", "a", false},
        {"a/b", "a/+", false},   {"a/+/#", "a/b", true}, {"a/+/#", "a", false},    {"a/b", "a/b/c", false},
        {"a/b/c", "a/b", false}, {"+/+", "a/b", true},   {"+", "a/b", false},      {"a//#", "a//b", true},
        {"a/#", "a//b", true},   {"a/b/#", "a/b", true}, {"a/b/+", "a/b", false},  {"x/#", "a/b", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = mq_filter_covers(cases[i].filter, cases[i].topic);
        if (got != cases[i].match)
            fprintf(stderr, "covers('%s', '%s'): got %d\n", cases[i].filter, cases[i].topic, got);
        CU_ASSERT_EQUAL(got, cases[i].match);
    }
}

static void test_topic_names(void)
{
    CU_ASSERT_TRUE(mq_topic_valid("a", 1));
    CU_ASSERT_TRUE(mq_topic_valid("/", 1));
    CU_ASSERT_FALSE(mq_topic_valid("", 0));
    CU_ASSERT_FALSE(mq_topic_valid("a/+", 3));
    CU_ASSERT_FALSE(mq_topic_valid("a/#", 3));
    CU_ASSERT_FALSE(mq_topic_valid("a\0b", 3));
    CU_ASSERT_FALSE(mq_topic_valid("\xc0\x80", 2));     /* an overlong NUL */
    CU_ASSERT_FALSE(mq_topic_valid("\xed\xa0\x80", 3)); /* a UTF-16 surrogate */
    CU_ASSERT_TRUE(mq_topic_valid("\xf0\x9f\x98\x80", 4));

    CU_ASSERT_TRUE(mq_topic_name_valid_len("a.b_c-D9", 8));
    CU_ASSERT_FALSE(mq_topic_name_valid_len(".", 1));
    CU_ASSERT_FALSE(mq_topic_name_valid_len("..", 2));
    CU_ASSERT_TRUE(mq_topic_name_valid_len("...", 3));
    CU_ASSERT_FALSE(mq_topic_name_valid_len("a/b", 3));
    CU_ASSERT_FALSE(mq_topic_name_valid_len("", 0));
    char name[251];
    memset(name, 'x', sizeof(name));
    CU_ASSERT_TRUE(mq_topic_name_valid_len(name, 249));
    CU_ASSERT_FALSE(mq_topic_name_valid_len(name, 250));
}

/* ---- templates and keys ---- */

static void test_template_check(void)
{
    static const char *const bad[] = {"",   "{0}",  "{33}", "x.{a}", "x{",    "x}",  "a/b",          ".",
                                      "..", "{01}", "{1",   "x.{}",  "t{-1}", "a b", "{1}{99999999}"};
    char why[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        CU_ASSERT_EQUAL(mq_route_template_check(bad[i], NULL, why, sizeof(why)), MQ_ERR_INVAL);
        CU_ASSERT(why[0] != '\0');
    }
    int max = -1;
    CU_ASSERT_EQUAL(mq_route_template_check("telemetry.temperature", &max, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(max, 0);
    CU_ASSERT_EQUAL(mq_route_template_check("x.{2}.{1}", &max, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(max, 2);
    CU_ASSERT_EQUAL(mq_route_template_check("{1}", &max, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(max, 1);
    CU_ASSERT_EQUAL(mq_route_template_check("{32}", &max, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(max, 32);
    char lit[260];
    memset(lit, 'a', 250);
    strcpy(lit + 250, "{1}");
    CU_ASSERT_EQUAL(mq_route_template_check(lit, NULL, why, sizeof(why)), MQ_ERR_INVAL);
    strcpy(lit + 249, "{1}");
    CU_ASSERT_EQUAL(mq_route_template_check(lit, NULL, why, sizeof(why)), MQ_OK);

    static const char *const badkeys[] = {"",         "Topic",    "level:",      "level:0", "level:x",
                                          "level:1x", "level:+1", "level:65536", "json:a",  "json:/a~2",
                                          "json:/~",  "hash",     "none "};
    for (size_t i = 0; i < sizeof(badkeys) / sizeof(badkeys[0]); i++)
        CU_ASSERT_EQUAL(mq_route_key_check(badkeys[i], NULL, why, sizeof(why)), MQ_ERR_INVAL);
    int level = -1;
    CU_ASSERT_EQUAL(mq_route_key_check("level:3", &level, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(level, 3);
    CU_ASSERT_EQUAL(mq_route_key_check("topic", &level, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(level, 0);
    CU_ASSERT_EQUAL(mq_route_key_check("none", NULL, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(mq_route_key_check("json:", NULL, why, sizeof(why)), MQ_OK);
    CU_ASSERT_EQUAL(mq_route_key_check("json:/a/0/~0~1", NULL, why, sizeof(why)), MQ_OK);
}

/* Collects the hits of one mq_route_match() call. */
struct hits {
    int n;
    int mapping[40];
    char topic[40][256];
    int32_t partition[40], partitions[40];
    bool null_key[40];
    char key[40][1300];
    size_t key_len[40];
    int stop_after; /* return MQ_ERR_FULL on this hit (1-based); 0: never */
};

static enum mq_err collect(void *opaque, const struct mq_route_hit *hit)
{
    struct hits *h = opaque;
    int i = h->n++;
    CU_ASSERT_FATAL(i < 40);
    h->mapping[i] = hit->mapping;
    snprintf(h->topic[i], sizeof(h->topic[i]), "%s", hit->topic);
    h->partition[i] = hit->partition;
    h->partitions[i] = hit->partitions;
    CU_ASSERT(hit->partition >= 0 && hit->partition < hit->partitions);
    h->null_key[i] = hit->key == NULL;
    h->key_len[i] = hit->key_len;
    CU_ASSERT_FATAL(hit->key_len < sizeof(h->key[i]));
    if (hit->key)
        memcpy(h->key[i], hit->key, hit->key_len);
    h->key[i][hit->key_len] = '\0';
    return h->stop_after == h->n ? MQ_ERR_FULL : MQ_OK;
}

static struct mq_route_table *table_of(const struct mq_route_def *defs, size_t n, const char *unmatched)
{
    struct mq_route_table *t = NULL;
    char why[300];
    enum mq_err err = mq_route_table_new(defs, n, unmatched, &t, why, sizeof(why));
    if (err)
        fprintf(stderr, "route table: %s\n", why);
    CU_ASSERT_EQUAL_FATAL(err, MQ_OK);
    return t;
}

static void route(struct mq_route_table *t, const char *broker, const char *topic, const char *payload,
                  struct hits *h)
{
    memset(h, 0, sizeof(*h));
    int n = -1;
    CU_ASSERT_EQUAL(mq_route_match(t, broker, topic, strlen(topic), payload, payload ? strlen(payload) : 0,
                                   collect, h, &n),
                    MQ_OK);
    CU_ASSERT_EQUAL(n, h->n);
}

static void test_templates(void)
{
    const char *f1[] = {"sensors/#"};
    const char *f2[] = {"site/+/dev/+/temp"};
    const char *f3[] = {"x/+"};
    const char *f4[] = {"plain/+", "other/+/+"};
    struct mq_route_def defs[] = {
        {.from = f1, .nfrom = 1, .to = "raw.{1}", .partitions = 1, .key = "none"},
        {.from = f2, .nfrom = 1, .to = "t.{2}-{1}", .partitions = 1, .key = "none"},
        {.from = f3, .nfrom = 1, .to = "{1}", .partitions = 1, .key = "none"},
        {.from = f4, .nfrom = 2, .to = "p.{1}", .partitions = 1, .key = "none"},
    };
    struct mq_route_table *t = table_of(defs, 4, "lost");
    struct hits h;
    route(t, NULL, "sensors/hall 1/temp", NULL, &h);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "raw.hall_1.temp");
    route(t, NULL, "sensors/température", NULL, &h); /* one '_' per character */
    CU_ASSERT_STRING_EQUAL(h.topic[0], "raw.temp_rature");
    memset(&h, 0, sizeof(h)); /* '+' makes it an invalid topic name: refused, nothing called */
    CU_ASSERT_EQUAL(mq_route_match(t, NULL, "sensors/a+b", 11, NULL, 0, collect, &h, NULL), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(h.n, 0);
    route(t, NULL, "sensors/\xf0\x9f\x98\x80!", NULL, &h);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "raw.__");
    /* An empty capture ('#' matching the parent, an empty level) would leave a malformed name such as
     * "raw.": the mapping does not take the message, which goes to unmatched. */
    route(t, NULL, "sensors", NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "lost");
    route(t, NULL, "sensors/", NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    route(t, NULL, "site//dev/d7/temp", NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "lost");
    route(t, NULL, "sensors//a/", NULL, &h);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "raw..a.");
    route(t, NULL, "site/north/dev/d7/temp", NULL, &h);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "t.d7-north");
    CU_ASSERT_EQUAL(h.mapping[0], 1);
    route(t, NULL, "x/abc", NULL, &h);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "abc");
    /* Results that are no legal topic name: the mapping does not take the message. */
    route(t, NULL, "x/.", NULL, &h);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "lost");
    route(t, NULL, "x/..", NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    route(t, NULL, "x/", NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    char topic[300] = "x/";
    memset(topic + 2, 'k', 249);
    topic[251] = '\0';
    route(t, NULL, topic, NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], 3 - 1);
    CU_ASSERT_EQUAL(strlen(h.topic[0]), 249);
    topic[251] = 'k';
    topic[252] = '\0';
    route(t, NULL, topic, NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    char big[300] = "sensors/";
    memset(big + 8, 'z', 246); /* "raw." + 246 = 250 characters */
    big[254] = '\0';
    route(t, NULL, big, NULL, &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    /* The first matching filter of a mapping provides the captures. */
    route(t, NULL, "other/a/b", NULL, &h);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "p.a");
    route(t, NULL, "plain/q", NULL, &h);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "p.q");
    mq_route_table_free(t);
}

static void test_keys(void)
{
    const char *f[] = {"dev/+/+"};
    struct mq_route_def defs[] = {
        {.from = f, .nfrom = 1, .to = "k.topic", .partitions = 16, .key = "topic"},
        {.from = f, .nfrom = 1, .to = "k.level2", .partitions = 16, .key = "level:2"},
        {.from = f, .nfrom = 1, .to = "k.level3", .partitions = 16, .key = "level:3"},
        {.from = f, .nfrom = 1, .to = "k.id", .partitions = 16, .key = "json:/device/id"},
        {.from = f, .nfrom = 1, .to = "k.none", .partitions = 16, .key = "none"},
        {.from = f, .nfrom = 1, .to = "k.default", .partitions = 16, .key = NULL},
        {.from = f, .nfrom = 1, .to = "k.arr", .partitions = 16, .key = "json:/v/1"},
        {.from = f, .nfrom = 1, .to = "k.esc", .partitions = 16, .key = "json:/a~1b/m~0n"},
        {.from = f, .nfrom = 1, .to = "k.whole", .partitions = 16, .key = "json:"},
    };
    struct mq_route_table *t = table_of(defs, 9, NULL);
    CU_ASSERT_EQUAL(mq_route_count(t), 9);
    struct hits h;
    const char *topic = "dev/abc/temp";
    route(t, NULL, topic,
          "{\"device\": {\"id\": \"A-17\"}, \"v\": [10, {\"x\": 2}], \"a/b\": {\"m~n\": true}}", &h);
    CU_ASSERT_EQUAL_FATAL(h.n, 9);
    CU_ASSERT_STRING_EQUAL(h.key[0], topic);
    CU_ASSERT_EQUAL(h.partition[0], mq_partition_for_key(topic, strlen(topic), 16));
    CU_ASSERT_STRING_EQUAL(h.key[1], "abc");
    CU_ASSERT_EQUAL(h.partition[1], mq_partition_for_key("abc", 3, 16));
    CU_ASSERT_STRING_EQUAL(h.key[2], "temp");
    CU_ASSERT_STRING_EQUAL(h.key[3], "A-17");
    CU_ASSERT_EQUAL(h.partition[3], mq_partition_for_key("A-17", 4, 16));
    CU_ASSERT_TRUE(h.null_key[4]);
    CU_ASSERT_STRING_EQUAL(h.key[5], topic);        /* the default strategy is topic */
    CU_ASSERT_STRING_EQUAL(h.key[6], "{\"x\": 2}"); /* objects as their text in the payload */
    CU_ASSERT_STRING_EQUAL(h.key[7], "true");
    CU_ASSERT_FALSE(h.null_key[8]);
    CU_ASSERT_EQUAL(h.key_len[8], strlen("{\"device\": {\"id\": \"A-17\"}, \"v\": [10, {\"x\": 2}], "
                                         "\"a/b\": {\"m~n\": true}}"));

    /* Missing things give null keys; empty levels give empty keys. */
    route(t, NULL, "dev//x", "{\"device\": {\"id\": null}}", &h);
    CU_ASSERT_FALSE(h.null_key[1]);
    CU_ASSERT_EQUAL(h.key_len[1], 0);
    CU_ASSERT_EQUAL(h.partition[1], mq_partition_for_key("", 0, 16));
    CU_ASSERT_TRUE(h.null_key[3]); /* JSON null */
    CU_ASSERT_TRUE(h.null_key[6]);
    route(t, NULL, "dev/a/b", "{\"device\": {\"id\": 42.5e1}}", &h);
    CU_ASSERT_STRING_EQUAL(h.key[3], "42.5e1");
    route(t, NULL, "dev/a/b", "{\"device\": {\"id\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\"}}", &h);
    CU_ASSERT_STRING_EQUAL(h.key[3], "x\xc3\xa9\xf0\x9f\x98\x80\n\"");
    route(t, NULL, "dev/a/b", "{\"device\": {\"id\": \"A\"}} trailing", &h);
    CU_ASSERT_TRUE(h.null_key[3]); /* not valid JSON */
    CU_ASSERT_TRUE(h.null_key[8]);
    route(t, NULL, "dev/a/b", "not json at all", &h);
    CU_ASSERT_TRUE(h.null_key[3]);
    route(t, NULL, "dev/a/b", NULL, &h);
    CU_ASSERT_TRUE(h.null_key[3]);
    route(t, NULL, "dev/a/b", "{\"device\": {\"id\": \"first\", \"id\": \"second\"}}", &h);
    CU_ASSERT_STRING_EQUAL(h.key[3], "first");
    route(t, NULL, "dev/a/b", "{\"devi\\u0063e\": {\"id\": \"escaped-name\"}}", &h);
    CU_ASSERT_STRING_EQUAL(h.key[3], "escaped-name");
    route(t, NULL, "dev/a/b", "\"just a string\"", &h);
    CU_ASSERT_STRING_EQUAL(h.key[8], "just a string");

    /* A long escaped string is decoded into a heap buffer. */
    char payload[1200];
    int n = snprintf(payload, sizeof(payload), "{\"device\": {\"id\": \"");
    for (int i = 0; i < 100; i++)
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, "\\u0041b\\n");
    snprintf(payload + n, sizeof(payload) - (size_t)n, "\"}}");
    route(t, NULL, "dev/a/b", payload, &h);
    CU_ASSERT_EQUAL(h.key_len[3], 300);
    CU_ASSERT_EQUAL(memcmp(h.key[3], "Ab\nAb\n", 6), 0);
    mq_route_table_free(t);
}

/* ---- JSON pointer scanner ---- */

static bool json_get(const char *ptr, const char *doc, char *out, size_t outsz)
{
    struct mq_json_pointer *jp = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_json_pointer_compile(ptr, &jp, NULL, 0), MQ_OK);
    struct mq_json_value v;
    bool ok = mq_json_pointer_eval(jp, doc, strlen(doc), &v);
    if (ok)
        snprintf(out, outsz, "%.*s", (int)v.len, v.text);
    mq_json_pointer_free(jp);
    return ok;
}

static void test_json(void)
{
    static const char *const invalid[] = {
        "",          " ",     "{",       "}",           "[1,]",        "{\"a\":1,}",
        "{\"a\" 1}", "{a:1}", "01",      "-",           "1.",          ".5",
        "1e",        "+1",    "NaN",     "Infinity",    "tru",         "nul",
        "'a'",       "\"a",   "\"\\x\"", "\"\\u12\"",   "\"\\ud800\"", "\"\\udc00\"",
        "\"a\tb\"",  "[1] x", "// c\n1", "{\"a\":1}{}", "[1 2]",       "{\"a\":1 \"b\":2}",
        "[,1]",
    };
    char out[256];
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        bool ok = json_get("", invalid[i], out, sizeof(out));
        if (ok)
            fprintf(stderr, "accepted invalid JSON '%s'\n", invalid[i]);
        CU_ASSERT_FALSE(ok);
    }
    static const char *const valid[] = {
        "0",
        "-0",
        "1.5e+10",
        "-12.25E-3",
        "true",
        "false",
        "null",
        "\"\"",
        "[]",
        "{}",
        " [ 1 , [ ] , { } ] ",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"",
        "{\"\":{\"\":[null]}}",
        "\"caf\xc3\xa9\"",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        bool ok = json_get("", valid[i], out, sizeof(out));
        if (!ok)
            fprintf(stderr, "rejected valid JSON '%s'\n", valid[i]);
        CU_ASSERT_TRUE(ok);
    }
    CU_ASSERT_TRUE(json_get("/a/1/b", "{\"a\": [0, {\"b\": [1, 2]}]}", out, sizeof(out)));
    CU_ASSERT_STRING_EQUAL(out, "[1, 2]");
    CU_ASSERT_FALSE(json_get("/a/2", "{\"a\": [0, 1]}", out, sizeof(out)));
    CU_ASSERT_FALSE(json_get("/a/-", "{\"a\": [0, 1]}", out, sizeof(out)));
    CU_ASSERT_FALSE(json_get("/a/01", "{\"a\": [0, 1]}", out, sizeof(out)));
    CU_ASSERT_TRUE(json_get("/a/01", "{\"a\": {\"01\": 7}}", out, sizeof(out)));
    CU_ASSERT_STRING_EQUAL(out, "7");
    CU_ASSERT_TRUE(json_get("/", "{\"\": 5}", out, sizeof(out))); /* the empty member name */
    CU_ASSERT_STRING_EQUAL(out, "5");
    CU_ASSERT_FALSE(json_get("/a", "[1]", out, sizeof(out)));
    CU_ASSERT_FALSE(json_get("/0", "{\"a\": 1}", out, sizeof(out)));
    CU_ASSERT_FALSE(json_get("/a/b", "{\"a\": 1}", out, sizeof(out)));
    CU_ASSERT_TRUE(json_get("/\xc3\xa9", "{\"\\u00e9\": 1}", out, sizeof(out)));
    CU_ASSERT_TRUE(json_get("/\xf0\x9f\x98\x80", "{\"\\ud83d\\ude00\": 2}", out, sizeof(out)));
    CU_ASSERT_STRING_EQUAL(out, "2");
    CU_ASSERT_FALSE(json_get("/ab", "{\"a\": 1}", out, sizeof(out)));
    CU_ASSERT_FALSE(json_get("/a", "{\"ab\": 1}", out, sizeof(out)));
    /* Found, but the document is broken later on: no value. */
    CU_ASSERT_FALSE(json_get("/a", "{\"a\": 1, \"b\": [}", out, sizeof(out)));

    /* Depth: MQ_JSON_MAX_DEPTH nested arrays are fine, one more is not. */
    char deep[2 * MQ_JSON_MAX_DEPTH + 8];
    memset(deep, '[', MQ_JSON_MAX_DEPTH);
    memset(deep + MQ_JSON_MAX_DEPTH, ']', MQ_JSON_MAX_DEPTH);
    deep[2 * MQ_JSON_MAX_DEPTH] = '\0';
    CU_ASSERT_TRUE(json_get("", deep, out, sizeof(out)));
    memset(deep, '[', MQ_JSON_MAX_DEPTH + 1);
    memset(deep + MQ_JSON_MAX_DEPTH + 1, ']', MQ_JSON_MAX_DEPTH + 1);
    deep[2 * MQ_JSON_MAX_DEPTH + 2] = '\0';
    CU_ASSERT_FALSE(json_get("", deep, out, sizeof(out)));

    struct mq_json_pointer *jp = NULL;
    char why[200];
    CU_ASSERT_EQUAL(mq_json_pointer_compile("a", &jp, why, sizeof(why)), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_json_pointer_compile("/a~", &jp, why, sizeof(why)), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_json_pointer_compile("/a~2", &jp, why, sizeof(why)), MQ_ERR_INVAL);
    CU_ASSERT_PTR_NULL(jp);
    mq_json_pointer_free(NULL);
}

/* ---- partitioner ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    /* xorshift64*: a deterministic sequence, so a failure can be reproduced */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void test_murmur2_vectors(void)
{
    /* The values Kafka's own tests hold for Utils.murmur2 (as signed Java ints). */
    static const struct {
        const char *key;
        int32_t hash;
    } v[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        CU_ASSERT_EQUAL((int32_t)mq_murmur2(v[i].key, strlen(v[i].key)), v[i].hash);
}

static void test_partition_vs_librdkafka(void)
{
    static const int32_t counts[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 31, 64, 100, 1000, 10000, 65535, INT32_MAX};
    unsigned char key[300];
    long checked = 0, mismatches = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = round < 300 ? (size_t)round : (size_t)(rng() % 300);
        for (size_t i = 0; i < len; i++)
            key[i] = (unsigned char)rng();
        if (round % 3 == 0) /* printable keys too, as MQTT topics and JSON ids are */
            for (size_t i = 0; i < len; i++)
                key[i] = (unsigned char)('!' + key[i] % 90);
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            int32_t want = rd_kafka_msg_partitioner_murmur2(NULL, key, len, counts[c], NULL, NULL);
            int32_t got = mq_partition_for_key(key, len, counts[c]);
            checked++;
            if (want != got)
                mismatches++;
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT(checked == 20000L * (long)(sizeof(counts) / sizeof(counts[0])));
}

/* ---- the route table ---- */

static void test_route_table(void)
{
    const char *temp[] = {"sensors/+/temperature"};
    const char *all[] = {"sensors/#"};
    const char *dup[] = {"sensors/+/temperature", "$share/g/other/#"};
    const char *site2[] = {"plant/#"};
    struct mq_route_def defs[] = {
        {.from = temp,
         .nfrom = 1,
         .broker = "site",
         .qos = 1,
         .to = "telemetry.temperature",
         .partitions = 8},
        {.from = all, .nfrom = 1, .qos = 0, .to = "raw.{1}", .partitions = 2, .key = "none"},
        {.from = dup, .nfrom = 2, .qos = 2, .to = "telemetry.temperature", .partitions = 8, .key = "none"},
        {.from = site2, .nfrom = 1, .broker = "plant", .qos = 1, .to = "plant", .partitions = 3},
    };
    struct mq_route_table *t = table_of(defs, 4, "unmatched.all");
    struct hits h;
    /* Matches mappings 0, 1 and 2; 2 names the same topic as 0, so it is left out. */
    route(t, "site", "sensors/x/temperature", "p", &h);
    CU_ASSERT_EQUAL_FATAL(h.n, 2);
    CU_ASSERT_EQUAL(h.mapping[0], 0);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "telemetry.temperature");
    CU_ASSERT_EQUAL(h.partitions[0], 8);
    CU_ASSERT_STRING_EQUAL(h.key[0], "sensors/x/temperature");
    CU_ASSERT_EQUAL(h.mapping[1], 1);
    CU_ASSERT_STRING_EQUAL(h.topic[1], "raw.x.temperature");
    CU_ASSERT_TRUE(h.null_key[1]);
    /* From another broker mapping 0 does not apply, so mapping 2 takes the topic (with its null key). */
    route(t, "plant", "sensors/x/temperature", "p", &h);
    CU_ASSERT_EQUAL_FATAL(h.n, 2);
    CU_ASSERT_EQUAL(h.mapping[0], 1);
    CU_ASSERT_EQUAL(h.mapping[1], 2);
    CU_ASSERT_TRUE(h.null_key[1]);
    /* Without a broker, every mapping counts. */
    route(t, NULL, "plant/a", "p", &h);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "plant");
    route(t, "site", "plant/a", "p", &h);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_EQUAL(h.mapping[0], -1);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "unmatched.all");
    CU_ASSERT_EQUAL(h.partition[0], 0);
    CU_ASSERT_EQUAL(h.partitions[0], 1);
    CU_ASSERT_STRING_EQUAL(h.key[0], "plant/a");
    /* The shared subscription routes by its inner filter. */
    route(t, "x", "other/1", "p", &h);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_EQUAL(h.mapping[0], 2);
    /* '$' topics: "sensors/#" does not start with a wildcard, but "$SYS/..." still matches nothing. */
    route(t, NULL, "$SYS/broker", "p", &h);
    CU_ASSERT_EQUAL(h.mapping[0], -1);

    /* Invalid topic names are refused without a call. */
    memset(&h, 0, sizeof(h));
    int n = 7;
    CU_ASSERT_EQUAL(mq_route_match(t, NULL, "a/+", 3, NULL, 0, collect, &h, &n), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_route_match(t, NULL, "", 0, NULL, 0, collect, &h, &n), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(h.n, 0);
    CU_ASSERT_EQUAL(n, 0);
    /* A callback error stops the match and is returned. */
    memset(&h, 0, sizeof(h));
    h.stop_after = 1;
    CU_ASSERT_EQUAL(mq_route_match(t, "site", "sensors/x/temperature", 21, "p", 1, collect, &h, &n),
                    MQ_ERR_FULL);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_EQUAL(n, 1);
    mq_route_table_free(t);

    /* Without an unmatched topic, unmatched messages are dropped. */
    t = table_of(defs, 1, NULL);
    route(t, NULL, "nothing/here", "p", &h);
    CU_ASSERT_EQUAL(h.n, 0);
    mq_route_table_free(t);
    mq_route_table_free(NULL);
}

static void test_round_robin(void)
{
    const char *f[] = {"rr/#"};
    struct mq_route_def defs[] = {{.from = f, .nfrom = 1, .to = "rr", .partitions = 5, .key = "none"}};
    struct mq_route_table *t = table_of(defs, 1, NULL);
    int count[5] = {0};
    struct hits h;
    for (int i = 0; i < 1000; i++) {
        route(t, NULL, "rr/a", "p", &h);
        CU_ASSERT_EQUAL(h.partition[0], i % 5);
        count[h.partition[0]]++;
    }
    for (int p = 0; p < 5; p++)
        CU_ASSERT_EQUAL(count[p], 200);
    mq_route_table_free(t);
}

struct rr_thread {
    struct mq_route_table *t;
    int count[7];
};

static enum mq_err count_hit(void *opaque, const struct mq_route_hit *hit)
{
    struct rr_thread *r = opaque;
    r->count[hit->partition]++;
    return MQ_OK;
}

static void *rr_worker(void *arg)
{
    struct rr_thread *r = arg;
    for (int i = 0; i < 7000; i++)
        mq_route_match(r->t, "b", "rr/x", 4, NULL, 0, count_hit, r, NULL);
    return NULL;
}

static void test_round_robin_threads(void)
{
    const char *f[] = {"rr/#"};
    struct mq_route_def defs[] = {{.from = f, .nfrom = 1, .to = "rr", .partitions = 7, .key = "none"}};
    struct rr_thread r[4] = {{0}};
    struct mq_route_table *t = table_of(defs, 1, NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i].t = t;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, rr_worker, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* The counter is shared and atomic: 28000 messages spread exactly evenly over 7 partitions. */
    for (int p = 0; p < 7; p++)
        CU_ASSERT_EQUAL(r[0].count[p] + r[1].count[p] + r[2].count[p] + r[3].count[p], 4000);
    mq_route_table_free(t);
}

static void test_many_templated(void)
{
    /* More distinct templated topics than the per-call stack buffers hold. */
    const char *f[] = {"m/+"};
    struct mq_route_def defs[24];
    char tos[24][32];
    for (int i = 0; i < 24; i++) {
        snprintf(tos[i], sizeof(tos[i]), "t%d.{1}", i % 20); /* 4 duplicates */
        defs[i] = (struct mq_route_def){.from = f, .nfrom = 1, .to = tos[i], .partitions = 1};
    }
    struct mq_route_table *t = table_of(defs, 24, NULL);
    struct hits h;
    route(t, NULL, "m/v", "p", &h);
    CU_ASSERT_EQUAL_FATAL(h.n, 20);
    for (int i = 0; i < 20; i++) {
        char want[32];
        snprintf(want, sizeof(want), "t%d.v", i);
        CU_ASSERT_STRING_EQUAL(h.topic[i], want);
        CU_ASSERT_EQUAL(h.mapping[i], i);
    }
    mq_route_table_free(t);
}

static void test_route_table_errors(void)
{
    const char *one[] = {"a/+"};
    const char *bad[] = {"a/#/b"};
    char why[300];
    struct mq_route_table *t = NULL;
    struct mq_route_def d = {.from = one, .nfrom = 1, .to = "x.{2}", .partitions = 1};
    CU_ASSERT_EQUAL(mq_route_table_new(&d, 1, NULL, &t, why, sizeof(why)), MQ_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "{2}"));
    d = (struct mq_route_def){.from = bad, .nfrom = 1, .to = "x", .partitions = 1};
    CU_ASSERT_EQUAL(mq_route_table_new(&d, 1, NULL, &t, why, sizeof(why)), MQ_ERR_INVAL);
    d = (struct mq_route_def){.from = one, .nfrom = 1, .to = "x", .partitions = 0};
    CU_ASSERT_EQUAL(mq_route_table_new(&d, 1, NULL, &t, why, sizeof(why)), MQ_ERR_INVAL);
    d = (struct mq_route_def){.from = one, .nfrom = 1, .to = "x", .partitions = 1, .key = "level:0"};
    CU_ASSERT_EQUAL(mq_route_table_new(&d, 1, NULL, &t, why, sizeof(why)), MQ_ERR_INVAL);
    d = (struct mq_route_def){.from = one, .nfrom = 1, .to = "x", .partitions = 1, .qos = 3};
    CU_ASSERT_EQUAL(mq_route_table_new(&d, 1, NULL, &t, why, sizeof(why)), MQ_ERR_INVAL);
    d = (struct mq_route_def){.from = one, .nfrom = 0, .to = "x", .partitions = 1};
    CU_ASSERT_EQUAL(mq_route_table_new(&d, 1, NULL, &t, why, sizeof(why)), MQ_ERR_INVAL);
    d = (struct mq_route_def){.from = one, .nfrom = 1, .to = "x", .partitions = 1};
    CU_ASSERT_EQUAL(mq_route_table_new(&d, 1, "bad/name", &t, why, sizeof(why)), MQ_ERR_INVAL);
    /* A failure in the second mapping frees the first (checked by the leak sanitizer). */
    struct mq_route_def two[2] = {
        {.from = one, .nfrom = 1, .to = "x.{1}", .partitions = 1, .key = "json:/a"},
        {.from = one, .nfrom = 1, .to = "y", .partitions = 1, .key = "bogus"},
    };
    CU_ASSERT_EQUAL(mq_route_table_new(two, 2, NULL, &t, why, sizeof(why)), MQ_ERR_INVAL);
    CU_ASSERT_PTR_NULL(t);
    /* No mappings at all is a valid (empty) table. */
    CU_ASSERT_EQUAL(mq_route_table_new(NULL, 0, "u", &t, why, sizeof(why)), MQ_OK);
    struct hits h;
    route(t, NULL, "a", "p", &h);
    CU_ASSERT_STRING_EQUAL(h.topic[0], "u");
    mq_route_table_free(t);
}

/* ---- subscriptions ---- */

struct subs {
    int n;
    char filter[16][64];
    int qos[16];
};

static enum mq_err collect_sub(void *opaque, const char *filter, int qos)
{
    struct subs *s = opaque;
    CU_ASSERT_FATAL(s->n < 16);
    snprintf(s->filter[s->n], sizeof(s->filter[0]), "%s", filter);
    s->qos[s->n++] = qos;
    return MQ_OK;
}

static void test_subscriptions(void)
{
    const char *m0[] = {"a/b", "c/+"};
    const char *m1[] = {"a/#"};
    const char *m2[] = {"c/+", "d"};
    const char *m3[] = {"$share/x/a/b", "e/#"};
    const char *m4[] = {"only/b2"};
    struct mq_route_def defs[] = {
        {.from = m0, .nfrom = 2, .qos = 2, .to = "t0", .partitions = 1},
        {.from = m1, .nfrom = 1, .qos = 0, .to = "t1", .partitions = 1},
        {.from = m2, .nfrom = 2, .qos = 1, .to = "t2", .partitions = 1},
        {.from = m3, .nfrom = 2, .qos = 1, .to = "t3", .partitions = 1},
        {.from = m4, .nfrom = 1, .broker = "b2", .qos = 0, .to = "t4", .partitions = 1},
    };
    struct mq_route_table *t = table_of(defs, 5, NULL);
    struct subs s = {0};
    CU_ASSERT_EQUAL(mq_route_subscriptions(t, "b1", NULL, collect_sub, &s), MQ_OK);
    /* a/b is covered by a/# (which takes QoS 2); c/+ appears once at QoS 2; the shared a/b stays. */
    CU_ASSERT_EQUAL_FATAL(s.n, 5);
    CU_ASSERT_STRING_EQUAL(s.filter[0], "c/+");
    CU_ASSERT_EQUAL(s.qos[0], 2);
    CU_ASSERT_STRING_EQUAL(s.filter[1], "a/#");
    CU_ASSERT_EQUAL(s.qos[1], 2);
    CU_ASSERT_STRING_EQUAL(s.filter[2], "d");
    CU_ASSERT_EQUAL(s.qos[2], 1);
    CU_ASSERT_STRING_EQUAL(s.filter[3], "$share/x/a/b");
    CU_ASSERT_STRING_EQUAL(s.filter[4], "e/#");
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(mq_route_subscriptions(t, "b2", "grp", collect_sub, &s), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 6);
    CU_ASSERT_STRING_EQUAL(s.filter[0], "$share/grp/c/+");
    CU_ASSERT_STRING_EQUAL(s.filter[1], "$share/grp/a/#");
    CU_ASSERT_STRING_EQUAL(s.filter[3], "$share/x/a/b"); /* already shared: as written */
    CU_ASSERT_STRING_EQUAL(s.filter[5], "$share/grp/only/b2");
    /* With group x, the explicit $share/x/a/b is covered by $share/x/a/#. */
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(mq_route_subscriptions(t, "b1", "x", collect_sub, &s), MQ_OK);
    CU_ASSERT_EQUAL(s.n, 4);
    mq_route_table_free(t);

    /* An unmatched topic subscribes to "#": it covers every unshared filter and takes the highest QoS of
     * the broker's mappings; an explicitly shared filter is another group and stays. */
    t = table_of(defs, 5, "rest");
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(mq_route_subscriptions(t, "b2", NULL, collect_sub, &s), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 2);
    CU_ASSERT_STRING_EQUAL(s.filter[0], "$share/x/a/b");
    CU_ASSERT_STRING_EQUAL(s.filter[1], "#");
    CU_ASSERT_EQUAL(s.qos[1], 2);
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(mq_route_subscriptions(t, "b2", "grp", collect_sub, &s), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 2);
    CU_ASSERT_STRING_EQUAL(s.filter[1], "$share/grp/#");
    mq_route_table_free(t);
    /* A broker whose mappings all ask for QoS 0 subscribes to "#" at QoS 0. */
    struct mq_route_def low[] = {
        {.from = m4, .nfrom = 1, .broker = "b2", .qos = 0, .to = "t4", .partitions = 1}};
    t = table_of(low, 1, "rest");
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(mq_route_subscriptions(t, "b2", NULL, collect_sub, &s), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 1);
    CU_ASSERT_STRING_EQUAL(s.filter[0], "#");
    CU_ASSERT_EQUAL(s.qos[0], 0);
    mq_route_table_free(t);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_filter_validation),
        MQ_TEST(test_filter_matching),
        MQ_TEST(test_filter_captures),
        MQ_TEST(test_filter_covers),
        MQ_TEST(test_topic_names),
        MQ_TEST(test_template_check),
        MQ_TEST(test_templates),
        MQ_TEST(test_keys),
        MQ_TEST(test_json),
        MQ_TEST(test_murmur2_vectors),
        MQ_TEST(test_partition_vs_librdkafka),
        MQ_TEST(test_route_table),
        MQ_TEST(test_round_robin),
        MQ_TEST(test_round_robin_threads),
        MQ_TEST(test_many_templated),
        MQ_TEST(test_route_table_errors),
        MQ_TEST(test_subscriptions),
        MQ_TEST_END,
    };
    return mq_test_run("route", tests);
}
