/*
 * testutil.h - what every CUnit test executable shares: a runner that exits non-zero on any failure,
 * temporary directories that are removed afterwards, and waiting on a condition with a deadline.
 */
#ifndef MQ_TESTUTIL_H
#define MQ_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdint.h>

struct mq_test {
    const char *name;
    void (*fn)(void);
};
#define MQ_TEST(fn)                                                                                          \
    {                                                                                                        \
#fn, fn                                                                                              \
    }
#define MQ_TEST_END                                                                                          \
    {                                                                                                        \
        NULL, NULL                                                                                           \
    }

/* Runs the tests as one CUnit suite named suite and returns the process exit status (0: all passed). With
 * MQ_TEST_ONLY=NAME[,NAME...] in the environment only the tests of those names run. */
int mq_test_run(const char *suite, const struct mq_test *tests);

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *mq_test_tmpdir(const char *tag);
/* rm -rf path and free it. */
void mq_test_rmdir(char *path);

/* Polls cond(opaque) every millisecond until it is true (returns true) or timeout_ms passes (false). */
bool mq_test_wait(bool (*cond)(void *opaque), void *opaque, int64_t timeout_ms);

#endif
