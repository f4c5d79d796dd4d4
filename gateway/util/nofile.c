/*
 * nofile.c - raising the open files limit at daemon start (see nofile.h).
 */
#include "util/nofile.h"

#include <sys/resource.h>

#include "util/diag.h"

int64_t mq_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    return rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t)rl.rlim_cur;
}

int64_t mq_nofile_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        /* an unlimited hard limit cannot be the soft one for descriptors (fs.nr_open caps it): keep it */
        if (rl.rlim_max != RLIM_INFINITY) {
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
                MQ_INFO("raised the open files limit (RLIMIT_NOFILE) from %llu to the hard limit, %llu",
                        (unsigned long long)old, (unsigned long long)rl.rlim_cur);
            else
                MQ_WARN("cannot raise the open files limit (RLIMIT_NOFILE) from %llu to %llu",
                        (unsigned long long)old, (unsigned long long)rl.rlim_max);
        }
    }
    return mq_nofile_limit();
}
