/*
 * err.c - descriptions of enum mq_err and the translation of errno values.
 */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const mq_err_names[MQ_ERR__COUNT] = {
    [MQ_OK] = "success",
    [MQ_ERR_INVAL] = "invalid argument",
    [MQ_ERR_NOMEM] = "out of memory",
    [MQ_ERR_IO] = "input/output error",
    [MQ_ERR_NOSPC] = "no space left on device",
    [MQ_ERR_NOENT] = "not found",
    [MQ_ERR_EXISTS] = "already exists",
    [MQ_ERR_CORRUPT] = "corrupt data",
    [MQ_ERR_RANGE] = "out of range",
    [MQ_ERR_BUSY] = "in use by another writer",
    [MQ_ERR_FULL] = "store is full, retry later",
    [MQ_ERR_CLOSED] = "closed",
    [MQ_ERR_TIMEDOUT] = "timed out",
    [MQ_ERR_DB] = "catalog database error",
    [MQ_ERR_CONFIG] = "configuration error",
    [MQ_ERR_PROTOCOL] = "protocol error",
    [MQ_ERR_READONLY] = "opened read-only",
};

const char *mq_strerror(enum mq_err err)
{
    if ((int)err < 0 || err >= MQ_ERR__COUNT || !mq_err_names[err])
        return "unknown error";
    return mq_err_names[err];
}

enum mq_err mq_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return MQ_OK;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return MQ_ERR_NOSPC;
    case ENOMEM:
        return MQ_ERR_NOMEM;
    case ENOENT:
    case ENOTDIR:
        return MQ_ERR_NOENT;
    case EEXIST:
        return MQ_ERR_EXISTS;
    case EINVAL:
        return MQ_ERR_INVAL;
    case EROFS:
    case EACCES:
    case EPERM:
        return MQ_ERR_READONLY;
    case EWOULDBLOCK:
        return MQ_ERR_BUSY;
    default:
        return MQ_ERR_IO;
    }
}

enum mq_err mq_errf(enum mq_err err, char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* An ordinary capitalised word: one capital, then lowercase letters up to the end of the word ("The",
 * "Invalid", "A"), as opposed to an acronym or a name with capitals of its own ("TLS", "OpenSSL", "X509"). */
static bool mq_clause_ordinary_word(const char *w)
{
    if (*w < 'A' || *w > 'Z')
        return false;
    const char *p = w + 1;
    while (*p >= 'a' && *p <= 'z')
        p++;
    /* the word ends at a space or punctuation; "A" alone is an article */
    return *p == '\0' || *p == ' ' || *p == ',' || *p == ':' || *p == ';' || *p == '.' || *p == ')';
}

const char *mq_clause(const char *foreign, char *buf, size_t size)
{
    if (!buf || size == 0)
        return "";
    if (!foreign)
        foreign = "unknown error";
    while (*foreign == ' ' || *foreign == '\t' || *foreign == '\n' || *foreign == '\r')
        foreign++;
    size_t n = 0;
    bool start = true; /* at the start of a sentence or of a part after ": " */
    for (const char *s = foreign; *s && n + 1 < size; s++) {
        char c = *s;
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' '; /* one line */
        if (start && c != ' ') {
            if (mq_clause_ordinary_word(s))
                c = (char)(c - 'A' + 'a');
            start = false;
        }
        if (c == '.' && s[1] == ' ' && s[2] >= 'A' && s[2] <= 'Z' && n + 2 < size) {
            buf[n++] = ';'; /* "Bad thing. Other thing" -> "bad thing; other thing" */
            start = true;
            continue;
        }
        if (c == ':' && s[1] == ' ')
            start = true;
        buf[n++] = c;
    }
    while (n > 0 && (buf[n - 1] == '.' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return n > 0 ? buf : "unknown error";
}

const char *mq_connack_reason(int code)
{
    static const char *const reasons[] = {
        "accepted",           "unacceptable protocol version", "client identifier rejected",
        "server unavailable", "bad user name or password",     "not authorised"};
    return code >= 0 && code < (int)(sizeof reasons / sizeof reasons[0]) ? reasons[code]
                                                                         : "unknown return code";
}
