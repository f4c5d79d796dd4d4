/*
 * docgen.h - what the reference generators (config/doc/confdoc.c, metrics/doc/metricsdoc.c) share: reading
 * a file whole, and their common command line (print the page, write it, or check a committed copy).
 */
#ifndef MQ_DOCGEN_H
#define MQ_DOCGEN_H

#include <stddef.h>

/* Reads the file at path into *buf (malloc'd, the caller frees it; set only on success) and *len. Returns 0,
 * or -1 with errno set. */
int mq_docgen_read(const char *path, char **buf, size_t *len);

/* Runs the command line every generator takes for its rendered page doc[0, len): no argument prints it,
 * "-o FILE" writes it to FILE, "--check FILE" exits 1 unless FILE holds exactly doc (the message names
 * `table`, what the page is rendered from, and the build `target` that regenerates it). Returns the exit
 * status, or -1 when argv is none of these (the caller's own options, or a usage error). */
int mq_docgen_main(int argc, char **argv, const char *doc, size_t len, const char *table, const char *target);

#endif
