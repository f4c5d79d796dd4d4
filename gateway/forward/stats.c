/*
 * stats.c - a forwarder's figures as the operator endpoints show them (mq_fwd_set_stats()): its state
 * sorted into a few classes, what it sent, and how far it is behind the local log.
 */
#include <stdio.h>
#include <string.h>

#include "forward/forward_int.h"
#include "util/parse.h"

const char *const mq_fwd_state_names[MQ_FWD_NSTATES] = {"starting", "delivering", "outage", "error",
                                                        "stopped"};

/* The class of a state line (forwarder.c writes them: "delivering", "outage since ...", "error: ..."). */
static enum mq_fwd_state_class mq_fwd_state_class(const char *s)
{
    if (strcmp(s, "delivering") == 0)
        return MQ_FWD_DELIVERING;
    if (strncmp(s, "outage", 6) == 0)
        return MQ_FWD_OUTAGE;
    if (strncmp(s, "error", 5) == 0)
        return MQ_FWD_ERROR;
    if (strncmp(s, "stopped", 7) == 0)
        return MQ_FWD_STOPPED;
    return MQ_FWD_STARTING;
}

void mq_fwd_stats(struct mq_fwd *f, struct mq_fwd_stats *st)
{
    memset(st, 0, sizeof *st);
    st->name = f->name;
    st->records_sent = atomic_load(&f->records_sent);
    st->bytes_sent = atomic_load(&f->bytes_sent);
    pthread_mutex_lock(&f->mu);
    st->state = mq_fwd_state_class(f->state);
    snprintf(st->state_text, sizeof st->state_text, "%.255s", f->state);
    for (size_t i = 0; i < f->ntopics; i++) {
        struct mq_fwd_topic *ft = f->topics[i];
        for (int32_t j = 0; j < ft->nlocal; j++) {
            struct mq_part_stats ps;
            if (mq_part_stats(ft->parts[j]->part, &ps) != MQ_OK)
                continue;
            int64_t acked = atomic_load(&ft->parts[j]->acked);
            int64_t from = acked < ps.start_offset ? ps.start_offset : acked;
            int64_t lag = ps.end_offset - from;
            if (lag <= 0)
                continue;
            st->lag_records += lag;
            int64_t stored = ps.end_offset - ps.start_offset;
            if (stored > 0)
                st->lag_bytes += (int64_t)((double)ps.bytes / (double)stored * (double)lag);
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (st->lag_records > 0)
        st->lag_seconds = (double)(mq_mono_ms() - atomic_load(&f->delivered_ms)) / 1000.0;
}
