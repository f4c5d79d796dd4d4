/*
 * replay.c - a fuzz target as a plain program, for the normal test suite: runs LLVMFuzzerTestOneInput() once
 * on every file under the directories named on the command line (the target's seed corpus and its
 * regression inputs, tests/fuzz/{corpus,regress}/TARGET/), in name order, so that every crash a fuzzer
 * ever found stays fixed under the plain, ASan and UBSan builds. A missing directory is skipped; a crash is
 * the test's failure (the sanitizers say where), and each file is named on stderr before it runs.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int mq_replay_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int mq_replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t cap = 4096, len = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        return 1;
    }
    fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
    /* a copy of exactly len bytes, as libFuzzer passes it: reading past the input is caught by ASan */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return 1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    int failed = 0, n = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d)
            continue;
        char **names = NULL;
        size_t nn = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char **nv = realloc(names, (nn + 1) * sizeof(*nv));
            if (!nv || !(nv[nn] = strdup(de->d_name))) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            names = nv;
            nn++;
        }
        closedir(d);
        if (nn > 1)
            qsort(names, nn, sizeof(*names), mq_replay_cmp);
        for (size_t k = 0; k < nn; k++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]);
            failed += mq_replay_file(path);
            n++;
            free(names[k]);
        }
        free(names);
    }
    fprintf(stderr, "replayed %d inputs, %d unreadable\n", n, failed);
    return failed ? 1 : 0;
}
