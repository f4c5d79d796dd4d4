/*
 * testutil.c - the shared CUnit runner and helpers of the unit tests.
 */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Whether name is one of the comma-separated names of list. */
static bool mq_test_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

int mq_test_run(const char *suite, const struct mq_test *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (!s)
        return 2;
    /* MQ_TEST_ONLY=name[,name...] runs those tests alone: a rare failure can be looped without the rest of
     * the file, and tests/CMakeLists.txt registers one file's tests apart */
    const char *only = getenv("MQ_TEST_ONLY");
    for (const struct mq_test *t = tests; t->name; t++)
        if ((!only || mq_test_listed(only, t->name)) && !CU_add_test(s, t->name, t->fn))
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "%s: no test ran\n", suite);
        return 1;
    }
    return failed ? 1 : 0;
}

char *mq_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *path = malloc(n);
    if (!path)
        abort();
    snprintf(path, n, "%s/mqlog-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        abort();
    }
    return path;
}

void mq_test_rmdir(char *path)
{
    if (!path)
        return;
    size_t n = strlen(path) + 16;
    char *cmd = malloc(n);
    if (cmd) {
        snprintf(cmd, n, "rm -rf '%s'", path);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", path);
        free(cmd);
    }
    free(path);
}

bool mq_test_wait(bool (*cond)(void *opaque), void *opaque, int64_t timeout_ms)
{
    struct timespec start, now, tick = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (cond(opaque))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (el > timeout_ms)
            return cond(opaque);
        nanosleep(&tick, NULL); /* polling interval of a deadline wait, not synchronisation */
    }
}
