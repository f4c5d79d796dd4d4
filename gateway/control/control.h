/*
 * control.h - the local control protocol between `mqlog` and a running mqlogd.
 *
 * A data directory has one writer. While mqlogd holds it, the commands that write (create, produce, topic
 * alter, topic delete) cannot open it themselves; instead they connect to the unix stream socket mqlogd
 * serves in the data directory (MQ_CTL_SOCKET, mode 0600) and ask mqlogd to do it on its own writer.
 *
 * The protocol is lines of text, one request per line, so that it can be typed with socat when debugging:
 * words separated by one space, ending in "\n", at most MQ_CTL_LINE_MAX bytes. A word that carries bytes
 * (a key, a header, a record value) starts with '=' and escapes as %XX every byte outside '!'..'~' and '%'
 * itself; "-" stands for a null key. Numbers are decimal; "-" in alter leaves a setting as it is.
 *
 *   create TOPIC PARTITIONS RETENTION_MS RETENTION_BYTES     -> one reply line
 *   alter TOPIC PARTITIONS|- RETENTION_MS|- RETENTION_BYTES|- -> one reply line
 *   delete TOPIC                                              -> one reply line
 *   produce TOPIC KEY [=HEADER_KEY =HEADER_VALUE]...          -> no reply; records follow
 *   record PARTITION =VALUE                                   -> no reply (an error ends the connection)
 *   end                                                       -> one reply line: every record is durable
 *
 * A reply is "ok TEXT" or "error TEXT"; an "ok" may end in a tab and a note for the user (stderr). The reply
 * to end is "ok" followed by one word "PARTITION:FIRST:LAST:COUNT" per partition written. mqlogd answers an
 * invalid line with an error reply and closes the connection.
 */
#ifndef MQ_CONTROL_H
#define MQ_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/topic.h"

#define MQ_CTL_SOCKET      ".control" /* its name inside the data directory */
#define MQ_CTL_LINE_MAX    (1 << 20)  /* a request line, "\n" included */
#define MQ_CTL_HEADERS_MAX 64         /* headers of a produce request */

enum mq_ctl_verb {
    MQ_CTL_CREATE,
    MQ_CTL_ALTER,
    MQ_CTL_DELETE,
    MQ_CTL_PRODUCE,
    MQ_CTL_RECORD,
    MQ_CTL_END,
};

/* Bytes inside the parsed line. */
struct mq_ctl_bytes {
    const char *p; /* NULL: absent (a null key) */
    size_t n;
};

/* One parsed request. The byte fields point into the line mq_ctl_parse() decoded in place. */
struct mq_ctl_req {
    enum mq_ctl_verb verb;
    char topic[MQ_TOPIC_NAME_MAX + 1]; /* create, alter, delete, produce */
    int32_t partitions;                /* create; alter: -1 leaves it */
    int64_t retention_ms;              /* create; alter: -1 leaves it */
    int64_t retention_bytes;           /* create; alter: -1 leaves it */
    struct mq_ctl_bytes key;           /* produce */
    struct mq_ctl_bytes hkey[MQ_CTL_HEADERS_MAX], hvalue[MQ_CTL_HEADERS_MAX];
    int nheaders;              /* produce */
    int32_t partition;         /* record */
    struct mq_ctl_bytes value; /* record */
};

/*
 * Parses the request line[0..len) (without its "\n"), decoding its escaped words in place: line must stay
 * as it is while *req is used. Checks every field (the topic name, number ranges, escapes, the number of
 * words); MQ_ERR_INVAL with errstr saying why for anything else. Allocates nothing.
 */
enum mq_err mq_ctl_parse(char *line, size_t len, struct mq_ctl_req *req, char *errstr, size_t errstr_size);

/* Writes "=" and the escaped form of in[0..len) to out, which must hold MQ_CTL_ESCAPED_MAX(len) bytes (a
 * final NUL included). Returns the length written, NUL excluded. */
#define MQ_CTL_ESCAPED_MAX(len) (3 * (size_t)(len) + 2)
size_t mq_ctl_escape(char *out, const void *in, size_t len);

/* "<dir>/.control" into out; false when it does not fit. */
bool mq_ctl_path(const char *dir, char *out, size_t size);

/*
 * Connects to the control socket of data directory dir. Returns the socket, or -1 with errno set (ENOENT:
 * no socket, ECONNREFUSED: nobody serves it). Paths longer than a socket address holds are reached through
 * /proc/self/fd.
 */
int mq_ctl_connect(const char *dir);

/*
 * The server's side: replaces any socket file left at dir's control path (the caller holds the writer lock,
 * so no other process serves it), binds and listens, with mode 0600 (only the owner of the data directory
 * may ask). Returns the listening socket, or -1 with errno set.
 */
int mq_ctl_listen(const char *dir);

#endif
