/*
 * recfmt.h - how `mqlog consume` selects and prints a record: filters on key and headers, and the output
 * formats raw, json, csv and kcat-like templates.
 *
 * Both are compiled once from the command line and applied per record without allocation: a filter is a
 * list of glob patterns (fnmatch), a template a list of pieces.
 */
#ifndef MQ_RECFMT_H
#define MQ_RECFMT_H

#include <stdbool.h>
#include <stdint.h>

#include "log/batch.h"
#include "tool/out.h"

/* ---- filters ---- */

struct mq_rfilter_header {
    const char *key;   /* exact header key */
    const char *value; /* glob pattern the value must match */
};

struct mq_rfilter {
    const char *key; /* glob pattern the record key must match (a null key never matches), or NULL */
    struct mq_rfilter_header *headers;
    int nheaders;
};

/* Adds --header K=V (the key exact, the value a glob). Returns false on a malformed argument or no memory,
 * after writing the reason into err. */
bool mq_rfilter_add_header(struct mq_rfilter *f, const char *arg, char *err, size_t errlen);

/* True when rv passes every filter: the key glob, and for each header filter some header with that key
 * whose value matches. */
bool mq_rfilter_match(const struct mq_rfilter *f, const struct mq_record_view *rv);

void mq_rfilter_free(struct mq_rfilter *f);

/* ---- formats ---- */

enum mq_rfmt_kind { MQ_RFMT_RAW, MQ_RFMT_JSON, MQ_RFMT_CSV, MQ_RFMT_TEMPLATE };

struct mq_rfmt_piece;

struct mq_rfmt {
    enum mq_rfmt_kind kind;
    struct mq_rfmt_piece *pieces; /* MQ_RFMT_TEMPLATE */
    int npieces;
};

/* Parses --format: raw, json, csv, or a template (anything containing '%'):
 *   %t topic  %p partition  %o offset  %T timestamp (ms)  %k key  %s value  %K key length  %S value length
 *   %h headers as k=v,k=v  %{NAME} the value of header NAME (empty when absent)  %% a percent sign
 *   \n \t \\ as in C. Nothing is appended: end a line with \n, as with kcat -f.
 * Returns false with the reason in err. */
bool mq_rfmt_parse(struct mq_rfmt *fmt, const char *spec, char *err, size_t errlen);

/* The line csv prints before the first record. */
#define MQ_RFMT_CSV_HEADER "topic,partition,offset,timestamp,key,value\n"

/* Appends rv of topic/partition in format fmt. */
void mq_rfmt_emit(const struct mq_rfmt *fmt, struct mq_out *out, const char *topic, int32_t partition,
                  const struct mq_record_view *rv);

void mq_rfmt_free(struct mq_rfmt *fmt);

#endif
