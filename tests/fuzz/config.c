/*
 * config.c - fuzz target: the YAML configuration loader (gateway/config/), from the text of one file. The
 * input is written to a file in a private temporary directory and loaded with mq_config_load(), every error
 * collected (and dropped); a file that loads is freed again. The seed corpus is conf/ and the good and
 * broken fixtures of tests/data/config/.
 *
 * Includes name files relative to the input's directory; glob() is wrapped (-Wl,--wrap=glob) so that an
 * include outside that directory matches nothing: the fuzzer must not read the machine's files as YAML.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz.h"

static char mq_fuzz_dir[64];

int __real_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g);
int __wrap_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g);

int __wrap_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g)
{
    size_t n = strlen(mq_fuzz_dir);
    if (strncmp(pattern, mq_fuzz_dir, n) != 0 || pattern[n] != '/' || strstr(pattern, "/.."))
        pattern = "/nonexistent-mqlog-fuzz/*"; /* still initialises g, as the loader expects */
    return __real_glob(pattern, flags, errfunc, g);
}

static void mq_fuzz_report(void *opaque, const char *msg)
{
    (void)opaque;
    (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mq_fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(mq_fuzz_dir, sizeof(mq_fuzz_dir), "%s/mqlog-fuzz-XXXXXX",
                 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
        if (!mkdtemp(mq_fuzz_dir))
            abort();
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/mqlogd.yaml", mq_fuzz_dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct mq_config *cfg = NULL;
    if (mq_config_load(path, &cfg, mq_fuzz_report, NULL) == MQ_OK)
        mq_config_free(cfg);
    unlink(path);
    return 0;
}
