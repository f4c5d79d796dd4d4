/*
 * hold.c - the retry-until-stored and wait-until-durable loops every connector uses (hold.h gives the
 * policy and why).
 */
#include "connector/hold.h"

#include <stdatomic.h>

#include "util/diag.h"
#include "util/parse.h"

/* One pause: when it began, how much of it is already counted in paused_ms, when it was last logged. */
struct mq_pause {
    int64_t since; /* monotonic ms; -1: not paused */
    int64_t accounted;
    int64_t warned;
    int64_t sleep_ms;
};

bool mq_hold_permanent(enum mq_err err)
{
    return err == MQ_ERR_INVAL || err == MQ_ERR_RANGE || err == MQ_ERR_CONFIG;
}

static void mq_hold_sleep(const struct mq_hold *h, int64_t ms)
{
    if (h->sleep)
        h->sleep(h->opaque, ms);
    else
        mq_sleep_ms(ms);
}

static void mq_pause_account(const struct mq_hold *h, struct mq_pause *ps, int64_t now)
{
    atomic_fetch_add(&h->counters->paused_ms, (uint64_t)(now - ps->accounted));
    ps->accounted = now;
}

/* One round of a pause: log (first time, then every MQ_HOLD_WARN_EVERY_MS), sleep, count the time. */
static void mq_pause_tick(const struct mq_hold *h, struct mq_pause *ps, const char *what, enum mq_err err,
                          const struct mq_source_msg *msg)
{
    int64_t now = mq_mono_ms();
    if (ps->since < 0) {
        ps->since = ps->accounted = ps->warned = now;
        ps->sleep_ms = 1;
        if (msg)
            MQ_WARN(
                "broker %s: %s (%s): not reading from the broker until the store takes the message on %.*s",
                h->tag, what, mq_strerror(err), (int)msg->topic_len, msg->topic);
        else
            MQ_WARN("broker %s: %s (%s): holding back acknowledgements and not reading from the broker",
                    h->tag, what, mq_strerror(err));
    } else if (now - ps->warned >= MQ_HOLD_WARN_EVERY_MS) {
        ps->warned = now;
        MQ_WARN("broker %s: still paused after %lld ms: %s (%s)", h->tag, (long long)(now - ps->since), what,
                mq_strerror(err));
    }
    mq_hold_sleep(h, ps->sleep_ms);
    ps->sleep_ms = ps->sleep_ms * 2 > MQ_HOLD_RETRY_MAX_MS ? MQ_HOLD_RETRY_MAX_MS : ps->sleep_ms * 2;
    mq_pause_account(h, ps, mq_mono_ms());
}

static void mq_pause_end(const struct mq_hold *h, struct mq_pause *ps, bool resumed)
{
    if (ps->since < 0)
        return;
    int64_t now = mq_mono_ms();
    mq_pause_account(h, ps, now);
    if (resumed)
        MQ_INFO("broker %s: the store takes messages again: resumed after %lld ms", h->tag,
                (long long)(now - ps->since));
    ps->since = -1;
}

enum mq_err mq_hold_store(const struct mq_hold *h, const struct mq_source_msg *msg, struct mq_ticket *ticket)
{
    struct mq_pause ps = {.since = -1};
    mq_ingest_received(h->ingest); /* once, however many retries follow */
    for (;;) {
        enum mq_err err = mq_ingest_message(h->ingest, h->broker, msg, ticket);
        if (err == MQ_OK) {
            mq_pause_end(h, &ps, true);
            mq_ingest_settled(h->ingest, err);
            return err;
        }
        if (mq_hold_permanent(err)) {
            /* ingest logged the cause (the invalid topic, the record's size and the log's limit) and
             * counted it; a line here would only repeat it as "invalid argument" or "out of range" */
            mq_pause_end(h, &ps, true);
            mq_ingest_settled(h->ingest, err);
            return err;
        }
        if (h->give_up && h->give_up(h->opaque)) {
            mq_pause_end(h, &ps, false);
            mq_ingest_settled(h->ingest, err);
            return err;
        }
        mq_pause_tick(h, &ps, "the store pushes back", err, msg);
    }
}

enum mq_err mq_hold_durable(const struct mq_hold *h, const struct mq_ticket *ticket)
{
    if (mq_ingest_durable(h->ingest, ticket))
        return MQ_OK; /* a group commit already covered it: no flush to ask for */
    struct mq_pause ps = {.since = -1};
    int64_t start = mq_mono_ms(), warned = start;
    for (;;) {
        enum mq_err err = mq_ingest_wait(h->ingest, ticket, MQ_HOLD_WAIT_SLICE_MS);
        if (err == MQ_OK) {
            mq_pause_end(h, &ps, true);
            return err;
        }
        if (h->give_up && h->give_up(h->opaque)) {
            mq_pause_end(h, &ps, false);
            return err;
        }
        if (err == MQ_ERR_TIMEDOUT) {
            int64_t now = mq_mono_ms();
            if (now - warned >= MQ_HOLD_WARN_EVERY_MS) {
                warned = now;
                MQ_WARN("broker %s: records have not become durable after %lld ms; acknowledgements wait",
                        h->tag, (long long)(now - start));
            }
            continue;
        }
        /* the store failed to write (disk full): the records may still become durable once it can */
        mq_pause_tick(h, &ps, "the store cannot make records durable", err, NULL);
    }
}
