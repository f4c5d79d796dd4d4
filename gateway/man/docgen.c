/*
 * docgen.c - the reference generators' shared command line and file reading (see docgen.h); kept here so
 * that confdoc and metricsdoc check their committed pages the same way.
 */
#include "man/docgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mq_docgen_read(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    FILE *mem = open_memstream(buf, len);
    if (!mem) {
        fclose(f);
        return -1;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, mem);
    int rc = ferror(f) ? -1 : 0;
    fclose(f);
    return fclose(mem) == 0 ? rc : -1;
}

int mq_docgen_main(int argc, char **argv, const char *doc, size_t len, const char *table, const char *target)
{
    int rc = 0;
    if (argc == 1) {
        rc = fwrite(doc, 1, len, stdout) == len ? 0 : 2;
    } else if (argc == 3 && strcmp(argv[1], "-o") == 0) {
        FILE *f = fopen(argv[2], "wb");
        if (!f || fwrite(doc, 1, len, f) != len || fclose(f) != 0) {
            perror(argv[2]);
            rc = 2;
        }
    } else if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        char *have = NULL;
        size_t hlen = 0;
        if (mq_docgen_read(argv[2], &have, &hlen) != 0) {
            perror(argv[2]);
            rc = 2;
        } else if (hlen != len || memcmp(have, doc, len) != 0) {
            fprintf(stderr, "%s is not what the %s renders: run `cmake --build BUILD --target %s`\n", argv[2],
                    table, target);
            rc = 1;
        }
        free(have);
    } else {
        rc = -1;
    }
    return rc;
}
