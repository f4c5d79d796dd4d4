/*
 * lockwait.h - locks taken before a deadline, and the deadline itself. Bounded waits let a reader of
 * statistics (/metrics, /readyz, status) give up on a partition a stuck writer holds instead of hanging.
 */
#ifndef MQ_UTIL_LOCKWAIT_H
#define MQ_UTIL_LOCKWAIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The CLOCK_MONOTONIC time ms milliseconds from now, as the deadline of the functions below or of a
 * pthread_cond_timedwait() on a CLOCK_MONOTONIC condition variable. */
struct timespec mq_deadline_in_ms(int64_t ms);

/* Take the lock unless CLOCK_MONOTONIC reaches deadline first: true when taken. They try the lock and
 * sleep 50 us to 2 ms between tries rather than call pthread_mutex_clocklock() or
 * pthread_rwlock_clockrdlock(): GCC 12's ThreadSanitizer intercepts neither, and took every unlock after
 * them for the unlock of a mutex nobody held. */
bool mq_mutex_lock_before(pthread_mutex_t *mu, const struct timespec *deadline);
bool mq_rwlock_rdlock_before(pthread_rwlock_t *rw, const struct timespec *deadline);

#endif
