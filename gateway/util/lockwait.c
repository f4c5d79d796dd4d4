/*
 * lockwait.c - locks taken before a deadline (lockwait.h).
 */
#include "util/lockwait.h"

struct timespec mq_deadline_in_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static bool mq_deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Sleeps between two tries of a lock: 50 us, doubling up to 2 ms. */
static void mq_lock_backoff(long *ns)
{
    struct timespec d = {0, *ns};
    nanosleep(&d, NULL);
    if (*ns < 2000000)
        *ns *= 2;
}

bool mq_mutex_lock_before(pthread_mutex_t *mu, const struct timespec *deadline)
{
    for (long ns = 50000;; mq_lock_backoff(&ns))
        if (pthread_mutex_trylock(mu) == 0)
            return true;
        else if (mq_deadline_passed(deadline))
            return false;
}

bool mq_rwlock_rdlock_before(pthread_rwlock_t *rw, const struct timespec *deadline)
{
    for (long ns = 50000;; mq_lock_backoff(&ns))
        if (pthread_rwlock_tryrdlock(rw) == 0)
            return true;
        else if (mq_deadline_passed(deadline))
            return false;
}
