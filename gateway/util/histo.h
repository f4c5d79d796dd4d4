/*
 * histo.h - a duration histogram that the thread being timed fills without a lock, and that any thread
 * reads: one atomic counter per bucket plus the sum, with the bucket bounds fixed at compile time.
 *
 * It is what a Prometheus histogram needs (gateway/metrics/ writes it out), kept here rather than in the
 * metrics module so that the log can time its flushes without depending on anything above util.
 * A reader's copy is not a snapshot: a sample added while it copies may show in a bucket and not yet in
 * the sum; each counter only ever grows, which is all Prometheus asks of a histogram.
 */
#ifndef MQ_HISTO_H
#define MQ_HISTO_H

#include <stdatomic.h>
#include <stdint.h>

/* Upper bounds of the buckets in microseconds (the last bucket, +Inf, is implicit): 100 us to 10 s. */
#define MQ_HISTO_BOUNDS_US                                                                                   \
    {                                                                                                        \
        100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,      \
            10000000                                                                                         \
    }
#define MQ_HISTO_N 15 /* bounds, hence MQ_HISTO_N + 1 buckets */

struct mq_histo {
    _Atomic uint64_t bucket[MQ_HISTO_N + 1]; /* not cumulative: bucket i counts (bound[i-1], bound[i]] */
    _Atomic uint64_t sum_us;
};

/* A reader's copy: cumulative counts, as the exposition format wants them. */
struct mq_histo_snap {
    uint64_t cumulative[MQ_HISTO_N + 1]; /* cumulative[MQ_HISTO_N] is the count */
    uint64_t sum_us;
};

extern const int64_t mq_histo_bounds_us[MQ_HISTO_N];

/* Counts one duration of us microseconds (negative counts as 0). */
void mq_histo_add(struct mq_histo *h, int64_t us);

/* Reads h into *snap. */
void mq_histo_read(struct mq_histo *h, struct mq_histo_snap *snap);

#endif
