/*
 * histo.c - the lock-free duration histogram (histo.h).
 */
#include "util/histo.h"

const int64_t mq_histo_bounds_us[MQ_HISTO_N] = MQ_HISTO_BOUNDS_US;

void mq_histo_add(struct mq_histo *h, int64_t us)
{
    if (us < 0)
        us = 0;
    int i = 0;
    while (i < MQ_HISTO_N && us > mq_histo_bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

void mq_histo_read(struct mq_histo *h, struct mq_histo_snap *snap)
{
    uint64_t total = 0;
    for (int i = 0; i <= MQ_HISTO_N; i++) {
        total += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        snap->cumulative[i] = total;
    }
    snap->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}
