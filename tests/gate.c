/*
 * gate.c - the fdatasync gate (gate.h): fdatasync() blocks while the gate is closed, then makes the real
 * system call.
 */
#include "gate.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static int gate_blocked;

int fdatasync(int fd)
{
    pthread_mutex_lock(&gate_mu);
    if (gate_closed) {
        gate_blocked++;
        while (gate_closed)
            pthread_cond_wait(&gate_cv, &gate_mu);
        gate_blocked--;
    }
    pthread_mutex_unlock(&gate_mu);
    return (int)syscall(SYS_fdatasync, fd);
}

void mq_test_gate_set(bool closed)
{
    pthread_mutex_lock(&gate_mu);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

bool mq_test_gate_has_waiter(void *opaque)
{
    (void)opaque;
    pthread_mutex_lock(&gate_mu);
    bool r = gate_blocked > 0;
    pthread_mutex_unlock(&gate_mu);
    return r;
}
