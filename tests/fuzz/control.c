/*
 * control.c - fuzz target: the request parser of mqlogd's control socket (gateway/control/), which reads
 * whatever a local client sends. The input is lines, each parsed as one request (the daemon hands it each
 * line without its "\n"); a line that parses is checked against the parser's promises: byte fields inside
 * the line, a valid topic name, numbers in range, and escaping the decoded bytes again gives a word that
 * parses to the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control.h"
#include "fuzz.h"

static void mq_fuzz_inside(const struct mq_ctl_bytes *b, const char *line, size_t len)
{
    if (b->p && (b->p < line || b->p + b->n > line + len))
        abort();
}

/* Escapes b and parses "record 0 WORD" back: the same bytes must come out. */
static void mq_fuzz_roundtrip(const struct mq_ctl_bytes *b)
{
    if (!b->p)
        return;
    char *line = malloc(MQ_CTL_ESCAPED_MAX(b->n) + 16);
    if (!line)
        abort();
    size_t n = (size_t)sprintf(line, "record 0 ");
    n += mq_ctl_escape(line + n, b->p, b->n);
    struct mq_ctl_req req;
    /* b points into the input, which parsing another line leaves alone */
    if (n < MQ_CTL_LINE_MAX && (mq_ctl_parse(line, n, &req, NULL, 0) != MQ_OK || req.value.n != b->n ||
                                memcmp(req.value.p, b->p, b->n) != 0))
        abort();
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    char *p = buf, *end = buf + size;
    while (p <= end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        struct mq_ctl_req req;
        char err[128];
        if (mq_ctl_parse(p, len, &req, err, sizeof err) == MQ_OK) {
            if ((req.verb == MQ_CTL_CREATE || req.verb == MQ_CTL_ALTER || req.verb == MQ_CTL_DELETE ||
                 req.verb == MQ_CTL_PRODUCE) &&
                !mq_topic_name_valid(req.topic))
                abort();
            if (req.verb == MQ_CTL_CREATE &&
                (req.partitions < 1 || req.retention_ms < 0 || req.retention_bytes < 0))
                abort();
            if (req.nheaders < 0 || req.nheaders > MQ_CTL_HEADERS_MAX)
                abort();
            mq_fuzz_inside(&req.key, p, len);
            mq_fuzz_inside(&req.value, p, len);
            for (int i = 0; i < req.nheaders; i++) {
                mq_fuzz_inside(&req.hkey[i], p, len);
                mq_fuzz_inside(&req.hvalue[i], p, len);
            }
            mq_fuzz_roundtrip(&req.value);
            mq_fuzz_roundtrip(&req.key);
        } else if (!err[0]) {
            abort(); /* a refusal always says why */
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    free(buf);
    return 0;
}
