/*
 * filter.c - MQTT topic filter validation and matching.
 *
 * Matching walks the filter and the topic level by level without splitting either, so that routing a
 * message costs no allocation and touches each byte of the topic once per filter tried.
 */
#include "route/filter.h"

#include <string.h>

static const char mq_share_prefix[] = "$share/";
#define MQ_SHARE_PREFIX_LEN (sizeof(mq_share_prefix) - 1)

bool mq_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false; /* a continuation byte, an overlong 2-byte lead (c0, c1) or beyond U+10FFFF */
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* Reject overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
            cp > 0x10ffff)
            return false;
        p += n + 1;
    }
    return true;
}

bool mq_topic_valid(const char *topic, size_t len)
{
    if (!topic || len == 0 || len > MQ_MQTT_TOPIC_MAX)
        return false;
    if (memchr(topic, '+', len) || memchr(topic, '#', len))
        return false;
    return mq_utf8_valid(topic, len);
}

static bool mq_filter_is_shared(const char *filter)
{
    return strncmp(filter, mq_share_prefix, MQ_SHARE_PREFIX_LEN) == 0;
}

const char *mq_filter_inner(const char *filter)
{
    if (!mq_filter_is_shared(filter))
        return filter;
    const char *slash = strchr(filter + MQ_SHARE_PREFIX_LEN, '/');
    return slash ? slash + 1 : filter + strlen(filter);
}

/* Checks a plain (not shared) filter; what = "filter" or "shared subscription filter" for the message. */
static enum mq_err mq_filter_check_plain(const char *f, const char *whole, char *errstr, size_t errstr_size)
{
    size_t len = strlen(f);
    if (len == 0)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "empty topic filter");
    for (size_t i = 0; i < len; i++) {
        char c = f[i];
        if (c != '+' && c != '#')
            continue;
        bool level_start = i == 0 || f[i - 1] == '/';
        bool level_end = i + 1 == len || f[i + 1] == '/';
        if (!level_start || !level_end)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                           "invalid topic filter '%s': '%c' must fill a whole level", whole, c);
        if (c == '#' && i + 1 != len)
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                           "invalid topic filter '%s': '#' must be the last level", whole);
    }
    return MQ_OK;
}

enum mq_err mq_filter_check(const char *filter, char *errstr, size_t errstr_size)
{
    if (!filter || !*filter)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "empty topic filter");
    size_t len = strlen(filter);
    if (len > MQ_MQTT_TOPIC_MAX)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "topic filter longer than %d bytes",
                       MQ_MQTT_TOPIC_MAX);
    if (!mq_utf8_valid(filter, len))
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "topic filter '%s' is not valid UTF-8", filter);
    if (!mq_filter_is_shared(filter))
        return mq_filter_check_plain(filter, filter, errstr, errstr_size);
    const char *group = filter + MQ_SHARE_PREFIX_LEN;
    const char *slash = strchr(group, '/');
    if (!slash)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                       "invalid shared subscription '%s': expected $share/GROUP/FILTER", filter);
    if (slash == group)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                       "invalid shared subscription '%s': empty group name", filter);
    for (const char *p = group; p < slash; p++)
        if (*p == '+' || *p == '#')
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                           "invalid shared subscription '%s': the group name must not contain '%c'", filter,
                           *p);
    if (!slash[1])
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size,
                       "invalid shared subscription '%s': empty topic filter", filter);
    return mq_filter_check_plain(slash + 1, filter, errstr, errstr_size);
}

void mq_filter_shape(const char *filter, int *wildcards, int *levels, bool *multi)
{
    const char *f = mq_filter_inner(filter);
    int w = 0, l = 1;
    bool m = false;
    for (const char *p = f; *p; p++) {
        if (*p == '/')
            l++;
        else if (*p == '+')
            w++;
        else if (*p == '#') {
            w++;
            m = true;
        }
    }
    if (wildcards)
        *wildcards = w;
    if (levels)
        *levels = l;
    if (multi)
        *multi = m;
}

/* The end of the level starting at s[i] within s[0..len). */
static size_t mq_level_end(const char *s, size_t i, size_t len)
{
    const char *slash = memchr(s + i, '/', len - i);
    return slash ? (size_t)(slash - s) : len;
}

bool mq_filter_match(const char *filter, const char *topic, size_t topic_len, struct mq_span *caps, int ncaps)
{
    const char *f = mq_filter_inner(filter);
    size_t flen = strlen(f);
    /* A topic starting with '$' (such as $SYS/...) is not matched by a filter starting with a wildcard. */
    if (topic_len > 0 && topic[0] == '$' && (f[0] == '+' || f[0] == '#'))
        return false;
    size_t fp = 0, tp = 0;
    bool topic_done =
        false; /* every topic level was consumed; only a '#' (the parent rule) can still match */
    int cap = 0;
    for (;;) {
        size_t fe = mq_level_end(f, fp, flen);
        if (fe - fp == 1 && f[fp] == '#') {
            if (cap < ncaps) {
                caps[cap].off = (uint32_t)(topic_done ? topic_len : tp);
                caps[cap].len = (uint32_t)(topic_done ? 0 : topic_len - tp);
            }
            return true;
        }
        if (topic_done)
            return false;
        size_t te = mq_level_end(topic, tp, topic_len);
        if (fe - fp == 1 && f[fp] == '+') {
            if (cap < ncaps) {
                caps[cap].off = (uint32_t)tp;
                caps[cap].len = (uint32_t)(te - tp);
            }
            cap++;
        } else if (fe - fp != te - tp || memcmp(f + fp, topic + tp, fe - fp) != 0) {
            return false;
        }
        bool f_last = fe == flen, t_last = te == topic_len;
        if (f_last)
            return t_last;
        fp = fe + 1;
        if (t_last)
            topic_done = true;
        else
            tp = te + 1;
    }
}

bool mq_filter_covers(const char *a, const char *b)
{
    size_t alen = strlen(a), blen = strlen(b);
    /* b may match '$' topics only through a literal first level; a must then not start with a wildcard. */
    if (b[0] == '$' && (a[0] == '+' || a[0] == '#'))
        return false;
    size_t ap = 0, bp = 0;
    for (;;) {
        size_t ae = mq_level_end(a, ap, alen), be = mq_level_end(b, bp, blen);
        if (ae - ap == 1 && a[ap] == '#')
            return true; /* every remaining level of b, and b's own parent match, are covered */
        if (be - bp == 1 && b[bp] == '#')
            return false; /* b matches any depth from here on, a does not */
        bool a_plus = ae - ap == 1 && a[ap] == '+';
        bool b_plus = be - bp == 1 && b[bp] == '+';
        if (!a_plus && (b_plus || ae - ap != be - bp || memcmp(a + ap, b + bp, ae - ap) != 0))
            return false;
        bool a_last = ae == alen, b_last = be == blen;
        if (a_last)
            return b_last; /* a deeper b (even one ending in '#') matches topics a cannot */
        if (b_last)
            return strcmp(a + ae + 1, "#") ==
                   0; /* only a final '#' matches b's topic through the parent rule */
        ap = ae + 1;
        bp = be + 1;
    }
}
