/*
 * err.c - descriptions of enum mq_err and the translation of errno values.
 */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

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
