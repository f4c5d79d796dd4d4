/*
 * control.c - the control protocol of control.h: parsing a request line, escaping bytes into a word, and
 * reaching the socket in a data directory from both sides.
 */
#include "control/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/parse.h"

/* Splits the next word off [*p, end): returns its start and length, or NULL at the end of the line. */
static char *mq_ctl_word(char **p, char *end, size_t *n)
{
    if (*p >= end)
        return NULL;
    char *w = *p;
    char *sp = memchr(w, ' ', (size_t)(end - w));
    *n = (size_t)((sp ? sp : end) - w);
    *p = sp ? sp + 1 : end;
    return w;
}

static int mq_ctl_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the escaped word w[0..n) ("=" and %XX escapes) in place into *b. False when malformed. */
static bool mq_ctl_unescape(char *w, size_t n, struct mq_ctl_bytes *b)
{
    if (n < 1 || w[0] != '=')
        return false;
    char *out = w;
    for (size_t i = 1; i < n; i++) {
        char c = w[i];
        if (c == '%') {
            int hi = i + 2 < n ? mq_ctl_hex(w[i + 1]) : -1;
            int lo = hi >= 0 ? mq_ctl_hex(w[i + 2]) : -1;
            if (lo < 0)
                return false;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if ((unsigned char)c < '!' || (unsigned char)c > '~') {
            return false;
        }
        *out++ = c;
    }
    b->p = w;
    b->n = (size_t)(out - w);
    return true;
}

/* A number word in [min, max], or "-" (-1) when dash_ok. */
static bool mq_ctl_number(char *w, size_t n, int64_t min, int64_t max, bool dash_ok, int64_t *out)
{
    if (dash_ok && n == 1 && w[0] == '-') {
        *out = -1;
        return true;
    }
    char buf[24];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, w, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return false;
    return mq_parse_int64(buf, min, max, out) == MQ_OK;
}

static bool mq_ctl_topic(char *w, size_t n, char *topic)
{
    if (!w || n == 0 || n > MQ_TOPIC_NAME_MAX)
        return false;
    memcpy(topic, w, n);
    topic[n] = '\0';
    return mq_topic_name_valid(topic);
}

static const struct {
    const char *name;
    enum mq_ctl_verb verb;
} mq_ctl_verbs[] = {
    {"create", MQ_CTL_CREATE},   {"alter", MQ_CTL_ALTER},   {"delete", MQ_CTL_DELETE},
    {"produce", MQ_CTL_PRODUCE}, {"record", MQ_CTL_RECORD}, {"end", MQ_CTL_END},
};

enum mq_err mq_ctl_parse(char *line, size_t len, struct mq_ctl_req *req, char *errstr, size_t errstr_size)
{
    memset(req, 0, sizeof *req);
    req->partitions = -1;
    req->retention_ms = req->retention_bytes = -1;
    req->partition = -1;
    if (len >= MQ_CTL_LINE_MAX)
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "request too long");
    char *p = line, *end = line + len;
    size_t n = 0;
    char *w = mq_ctl_word(&p, end, &n);
    size_t v = 0;
    while (w && v < sizeof mq_ctl_verbs / sizeof mq_ctl_verbs[0] &&
           !(strlen(mq_ctl_verbs[v].name) == n && memcmp(mq_ctl_verbs[v].name, w, n) == 0))
        v++;
    if (!w || v == sizeof mq_ctl_verbs / sizeof mq_ctl_verbs[0])
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "unknown request");
    req->verb = mq_ctl_verbs[v].verb;
    int64_t x = 0;
    switch (req->verb) {
    case MQ_CTL_CREATE:
    case MQ_CTL_ALTER: {
        bool alter = req->verb == MQ_CTL_ALTER;
        w = mq_ctl_word(&p, end, &n);
        if (!mq_ctl_topic(w, n, req->topic))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid topic name");
        w = mq_ctl_word(&p, end, &n);
        if (!w || !mq_ctl_number(w, n, 1, 10000, alter, &x))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid partition count");
        req->partitions = (int32_t)x;
        w = mq_ctl_word(&p, end, &n);
        if (!w || !mq_ctl_number(w, n, 0, INT64_MAX, alter, &req->retention_ms))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid retention");
        w = mq_ctl_word(&p, end, &n);
        if (!w || !mq_ctl_number(w, n, 0, INT64_MAX, alter, &req->retention_bytes))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid retention bytes");
        break;
    }
    case MQ_CTL_DELETE:
        w = mq_ctl_word(&p, end, &n);
        if (!mq_ctl_topic(w, n, req->topic))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid topic name");
        break;
    case MQ_CTL_PRODUCE:
        w = mq_ctl_word(&p, end, &n);
        if (!mq_ctl_topic(w, n, req->topic))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid topic name");
        w = mq_ctl_word(&p, end, &n);
        if (!w || !((n == 1 && w[0] == '-') || mq_ctl_unescape(w, n, &req->key)))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid key");
        while ((w = mq_ctl_word(&p, end, &n)) != NULL) {
            if (req->nheaders == MQ_CTL_HEADERS_MAX)
                return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "more than %d headers", MQ_CTL_HEADERS_MAX);
            struct mq_ctl_bytes *hk = &req->hkey[req->nheaders], *hv = &req->hvalue[req->nheaders];
            if (!mq_ctl_unescape(w, n, hk) || hk->n == 0)
                return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid header key");
            w = mq_ctl_word(&p, end, &n);
            if (!w || !mq_ctl_unescape(w, n, hv))
                return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "header without a value");
            req->nheaders++;
        }
        break;
    case MQ_CTL_RECORD:
        w = mq_ctl_word(&p, end, &n);
        if (!w || !mq_ctl_number(w, n, 0, 9999, false, &x))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid partition");
        req->partition = (int32_t)x;
        w = mq_ctl_word(&p, end, &n);
        if (!w || !mq_ctl_unescape(w, n, &req->value))
            return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "invalid record value");
        break;
    case MQ_CTL_END:
        break;
    }
    if (p < end || (len > 0 && line[len - 1] == ' '))
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "unexpected words at the end of the request");
    return MQ_OK;
}

size_t mq_ctl_escape(char *out, const void *in, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = in;
    char *o = out;
    *o++ = '=';
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '!' || s[i] > '~' || s[i] == '%') {
            *o++ = '%';
            *o++ = hex[s[i] >> 4];
            *o++ = hex[s[i] & 15];
        } else {
            *o++ = (char)s[i];
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

bool mq_ctl_path(const char *dir, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/" MQ_CTL_SOCKET, dir);
    return n > 0 && (size_t)n < size;
}

/*
 * The socket address of dir's control socket in *sa. A path too long for sun_path goes through an open
 * descriptor of dir (*dfd, which the caller closes when it is >= 0): /proc/self/fd/N/.control names the
 * same file.
 */
static bool mq_ctl_addr(const char *dir, struct sockaddr_un *sa, int *dfd)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    *dfd = -1;
    if (mq_ctl_path(dir, sa->sun_path, sizeof sa->sun_path))
        return true;
    *dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dfd < 0)
        return false;
    snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/" MQ_CTL_SOCKET, *dfd);
    return true;
}

int mq_ctl_connect(const char *dir)
{
    struct sockaddr_un sa;
    int dfd;
    if (!mq_ctl_addr(dir, &sa, &dfd))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    if (dfd >= 0) {
        int e = errno;
        close(dfd);
        errno = e;
    }
    return fd;
}

int mq_ctl_listen(const char *dir)
{
    struct sockaddr_un sa;
    int dfd;
    if (!mq_ctl_addr(dir, &sa, &dfd))
        return -1;
    unlink(sa.sun_path); /* a socket file left by a killed daemon */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* Connecting needs write permission on the file: the usual umask already keeps other users out between
     * bind() and chmod() (umask() itself would change the mode of the files every thread creates). */
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    ok = ok && chmod(sa.sun_path, 0600) == 0 && listen(fd, 8) == 0;
    int e = errno;
    if (!ok && fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    errno = e;
    return ok ? fd : -1;
}
