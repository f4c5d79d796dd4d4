/*
 * value.c - the checks of values written as text that need no parser state: names, log topic patterns,
 * Kafka bootstrap servers and remote topic templates. Each says why a value is wrong in a sentence that
 * names the value, for the key parser (section.c) to report at the value's position.
 */
#include <stdio.h>
#include <string.h>

#include "config/config_int.h"
#include "util/topic.h"
#include "util/url.h"

#define MQ_CFG_MAX_PATTERN 1024 /* a log topic pattern (a topic name is shorter, a pattern can be longer) */

bool mq_cname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MQ_CFG_MAX_NAME)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Names a character for a message: 'x', or its code when it would not print. */
static const char *mq_cchar(unsigned char c, char *buf, size_t size)
{
    if (c > ' ' && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "character 0x%02x", c);
    return buf;
}

/*
 * A log topic pattern as fnmatch() reads it, restricted to what can match a topic name: topic characters
 * and the wildcards * ? and [SET] ([!SET] or [^SET] negates; a-z in a set is a range). A pattern without
 * wildcards must be a valid topic name itself.
 */
bool mq_cglob_valid(const char *p, char *why, size_t size)
{
    char c1[24];
    bool wild = false;
    for (size_t i = 0; p[i]; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '*' || c == '?') {
            wild = true;
        } else if (c == '[') {
            size_t j = i + 1;
            if (p[j] == '!' || p[j] == '^')
                j++;
            size_t first = j;
            for (; p[j] && p[j] != ']'; j++)
                if (!mq_topic_name_char((unsigned char)p[j])) {
                    snprintf(why, size, "'%s': %s cannot be in a [set] of topic characters", p,
                             mq_cchar((unsigned char)p[j], c1, sizeof(c1)));
                    return false;
                }
            if (!p[j]) {
                snprintf(why, size, "'%s': the '[' at position %zu has no closing ']'", p, i + 1);
                return false;
            }
            if (j == first) {
                snprintf(why, size, "'%s': the set at position %zu is empty", p, i + 1);
                return false;
            }
            wild = true;
            i = j;
        } else if (c == ']') {
            snprintf(why, size, "'%s': ']' at position %zu without '['", p, i + 1);
            return false;
        } else if (!mq_topic_name_char(c)) {
            snprintf(why, size,
                     "'%s': %s cannot be in a topic pattern (a-z A-Z 0-9 . _ - and the wildcards * ? [ ])", p,
                     mq_cchar(c, c1, sizeof(c1)));
            return false;
        }
    }
    if (!wild && !mq_topic_name_valid(p)) {
        snprintf(why, size, "'%s' is not a valid topic name (" MQ_TOPIC_NAME_RULE ")", p);
        return false;
    }
    if (strlen(p) > MQ_CFG_MAX_PATTERN) {
        snprintf(why, size, "a pattern of %zu characters is too long (at most %d)", strlen(p),
                 MQ_CFG_MAX_PATTERN);
        return false;
    }
    return true;
}

/* Kafka's bootstrap.servers as the forwarder hands it over: HOST:PORT entries separated by commas (spaces
 * around an entry are allowed, as librdkafka allows them). */
bool mq_cservers_valid(const char *s, char *why, size_t size)
{
    for (const char *p = s;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end == 0) {
            snprintf(why, size, "'%s': an empty entry (expected HOST:PORT[,HOST:PORT...])", s);
            return false;
        }
        char entry[300];
        if (end >= sizeof(entry)) {
            snprintf(why, size, "an entry of %zu characters is too long for a HOST:PORT", end);
            return false;
        }
        memcpy(entry, p, end);
        entry[end] = '\0';
        if (mq_url_hostport(entry, false, 1, 65535, NULL, NULL, NULL, why, size) != MQ_OK)
            return false;
        if (!p[len])
            return true;
        p += len + 1;
    }
}

/*
 * A remote topic template: topic characters and the placeholders {site} and {topic}. What it gives for a
 * sample site and topic must be a valid topic name (a longer site or topic name may still make a name too
 * long: that is known per topic only, and the forwarder reports it).
 */
bool mq_cremote_valid(const char *t, char *why, size_t size)
{
    char sample[MQ_TOPIC_NAME_MAX + 2], c1[24];
    size_t n = 0;
    for (const char *p = t; *p; p++) {
        const char *add;
        if (*p == '{') {
            size_t len = strcspn(p + 1, "{}");
            if (p[1 + len] != '}') {
                snprintf(why, size, "'%s': the '{' at position %zu has no closing '}'", t,
                         (size_t)(p - t) + 1);
                return false;
            }
            if (len == 4 && strncmp(p + 1, "site", 4) == 0) {
                add = "s";
            } else if (len == 5 && strncmp(p + 1, "topic", 5) == 0) {
                add = "t";
            } else {
                snprintf(why, size, "'%s': unknown placeholder '{%.*s}' (there are {site} and {topic})", t,
                         (int)len, p + 1);
                return false;
            }
            p += len + 1;
        } else if (*p == '}') {
            snprintf(why, size, "'%s': '}' at position %zu without '{'", t, (size_t)(p - t) + 1);
            return false;
        } else if (!mq_topic_name_char((unsigned char)*p)) {
            snprintf(why, size, "'%s': %s cannot be in a topic name (" MQ_TOPIC_NAME_RULE ")", t,
                     mq_cchar((unsigned char)*p, c1, sizeof(c1)));
            return false;
        } else {
            add = NULL;
        }
        size_t alen = add ? strlen(add) : 1;
        if (n + alen < sizeof(sample)) {
            memcpy(sample + n, add ? add : p, alen);
            n += alen;
        } else {
            n = sizeof(sample); /* too long already */
        }
    }
    if (!mq_topic_name_valid_len(sample, n < sizeof(sample) ? n : sizeof(sample))) {
        snprintf(why, size, "'%s' does not give a valid topic name (" MQ_TOPIC_NAME_RULE ")", t);
        return false;
    }
    return true;
}
