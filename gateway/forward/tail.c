/*
 * tail.c - where a forwarder resumes.
 *
 * exactly_once: the truth is on the remote cluster. For every local partition the forwarder looks at the
 * committed tail of the remote partition(s) its records go to, with a read_committed consumer, and takes
 * the mqlog.offset header of the last record this site wrote there for that local topic and partition.
 * With `partitioning: same` and one site per remote topic that is the very last record. With `key`, or
 * several sites sharing a remote topic, records of other partitions or sites lie in between, so the scan
 * reads backwards in growing windows until it has found what it looks for or read MQ_FWD_TAIL_BOUND
 * records; then it falls back to the catalog checkpoint (which only ever trails the truth) and says so.
 *
 * at_least_once: the delivered prefix the forwarder knows (after a producer reset), else the checkpoint.
 *
 * Neither found: a partition the forwarder has never written starts where `start` says.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/forward_int.h"
#include "util/diag.h"
#include "util/parse.h"

#define MQ_FWD_TAIL_WINDOW  64     /* records in the first window read back from a remote partition's end */
#define MQ_FWD_TAIL_BOUND   200000 /* records read back per remote partition before giving up */
#define MQ_FWD_TAIL_WAIT_MS 10000  /* per window: the cluster must answer within this */

int64_t mq_fwd_ckpt_get(struct mq_fwd *f, const struct mq_fwd_part *p)
{
    char key[MQ_TOPIC_NAME_MAX + 16];
    snprintf(key, sizeof key, "%s:%" PRId32, p->ft->local, p->id);
    void *v = NULL;
    size_t len = 0;
    int64_t x = -1;
    if (mq_catalog_checkpoint_get(mq_store_catalog(f->store), f->ckpt_name, key, &v, &len) == MQ_OK &&
        mq_parse_int64(v, 0, INT64_MAX, &x) != MQ_OK)
        x = -1;
    free(v);
    return x;
}

/* Where a partition this forwarder never wrote starts. */
static int64_t mq_fwd_start_offset(struct mq_fwd *f, struct mq_fwd_part *p)
{
    int64_t start = 0, end = 0;
    mq_part_offsets(p->part, &start, &end);
    if (f->start == MQ_FWD_START_LATEST)
        return end;
    if (f->start == MQ_FWD_START_TIME) {
        int64_t off = -1;
        if (mq_part_offset_for_time(p->part, f->start_ms, &off) != MQ_OK || off < 0)
            return end;
        return off;
    }
    return start;
}

static bool mq_hdr_is(rd_kafka_headers_t *h, const char *name, const char *want)
{
    const void *v;
    size_t n;
    return rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v &&
           n == strlen(want) && memcmp(v, want, n) == 0;
}

/*
 * Reads remote partition `rp` of ft's remote topic backwards from its end; best[p] (for each local
 * partition p with want[p]) gets the largest mqlog.offset this site wrote there for (ft->local, p), or
 * stays -1. *bounded is set when the scan stopped at the bound before the partition's start while some
 * wanted partition was still not found.
 */
static enum mq_err mq_fwd_scan(struct mq_fwd *f, rd_kafka_t *c, struct mq_fwd_topic *ft, int32_t rp,
                               const bool *want, int64_t *best, bool *bounded, char *errstr,
                               size_t errstr_size)
{
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(c, ft->remote, rp, &lo, &hi, MQ_FWD_TAIL_WAIT_MS);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return mq_errf(MQ_ERR_NOENT, errstr, errstr_size, "%s: %s", ft->remote,
                       MQ_CLAUSE(rd_kafka_err2str(err)));
    if (err)
        return mq_errf(MQ_ERR_TIMEDOUT, errstr, errstr_size, "%s/%" PRId32 ": %s", ft->remote, rp,
                       MQ_CLAUSE(rd_kafka_err2str(err)));
    int64_t end = hi, window = MQ_FWD_TAIL_WINDOW, scanned = 0;
    for (;;) {
        bool missing = false;
        for (int32_t p = 0; p < ft->nlocal; p++)
            missing |= want[p] && best[p] < 0;
        if (!missing || end <= lo)
            return MQ_OK;
        if (scanned >= MQ_FWD_TAIL_BOUND) {
            *bounded = true;
            return MQ_OK;
        }
        int64_t begin = end - window < lo ? lo : end - window;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, ft->remote, rp)->offset = begin;
        err = rd_kafka_assign(c, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err)
            return mq_errf(MQ_ERR_IO, errstr, errstr_size, "assign %s/%" PRId32 ": %s", ft->remote, rp,
                           MQ_CLAUSE(rd_kafka_err2str(err)));
        /* Within the window the last matching record wins: records of one local partition are in offset
         * order on any remote partition. */
        int64_t found[ft->nlocal];
        for (int32_t p = 0; p < ft->nlocal; p++)
            found[p] = -1;
        int64_t deadline = mq_mono_ms() + MQ_FWD_TAIL_WAIT_MS;
        bool done = false;
        while (!done) {
            if (mq_mono_ms() >= deadline || atomic_load(&f->stop))
                return mq_errf(MQ_ERR_TIMEDOUT, errstr, errstr_size,
                               "reading %s/%" PRId32 " at %" PRId64 ": %s", ft->remote, rp, begin,
                               f->last_error[0] ? f->last_error : "no answer");
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
            if (!m)
                continue;
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                done = true;
            } else if (m->err) {
                mq_clause(rd_kafka_message_errstr(m), f->last_error, sizeof f->last_error);
            } else if (m->partition == rp && m->offset >= begin) {
                if (m->offset >= end) {
                    done = true;
                } else {
                    rd_kafka_headers_t *h = NULL;
                    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                        mq_hdr_is(h, "mqlog.site", f->site) && mq_hdr_is(h, "mqlog.topic", ft->local)) {
                        int64_t p = mq_fwd_header_int(h, "mqlog.partition"),
                                off = mq_fwd_header_int(h, "mqlog.offset");
                        if (p >= 0 && p < ft->nlocal && off > found[p])
                            found[p] = off;
                    }
                    done = m->offset >= end - 1;
                }
            }
            rd_kafka_message_destroy(m);
        }
        for (int32_t p = 0; p < ft->nlocal; p++)
            if (want[p] && best[p] < 0 && found[p] >= 0)
                best[p] = found[p];
        scanned += end - begin;
        end = begin;
        window *= 4;
    }
}

/* exactly_once: the resume offsets of ft's partitions from the remote tails. */
static enum mq_err mq_fwd_sync_topic(struct mq_fwd *f, rd_kafka_t *c, struct mq_fwd_topic *ft,
                                     int64_t *resume, char *errstr, size_t errstr_size)
{
    int32_t n = ft->nlocal;
    bool want[n], bounded[n];
    int64_t best[n], all_best[n];
    for (int32_t p = 0; p < n; p++) {
        all_best[p] = -1;
        bounded[p] = false;
    }
    int32_t nscan = f->partitioning == MQ_FWD_PART_SAME ? n : ft->nremote;
    for (int32_t rp = 0; rp < nscan; rp++) {
        bool b = false;
        for (int32_t p = 0; p < n; p++) {
            want[p] = f->partitioning == MQ_FWD_PART_KEY || p == rp;
            best[p] = -1;
        }
        enum mq_err err = mq_fwd_scan(f, c, ft, rp, want, best, &b, errstr, errstr_size);
        if (err != MQ_OK)
            return err;
        for (int32_t p = 0; p < n; p++) {
            if (best[p] > all_best[p])
                all_best[p] = best[p];
            if (b && want[p] && best[p] < 0)
                bounded[p] = true;
        }
    }
    for (int32_t p = 0; p < n; p++) {
        struct mq_fwd_part *part = ft->parts[p];
        int64_t ckpt = mq_fwd_ckpt_get(f, part);
        if (bounded[p]) {
            int64_t r = all_best[p] + 1 > ckpt ? all_best[p] + 1 : ckpt;
            MQ_WARN("forward %s: %s/%" PRId32
                    ": this site's last record was not within %d records of the remote "
                    "tail; resuming at the checkpoint %" PRId64,
                    f->name, ft->local, p, MQ_FWD_TAIL_BOUND, r);
            resume[p] = r >= 0 ? r : mq_fwd_start_offset(f, part);
        } else if (all_best[p] >= 0) {
            resume[p] = all_best[p] + 1;
        } else {
            resume[p] = ckpt >= 0 ? ckpt : mq_fwd_start_offset(f, part);
        }
    }
    return MQ_OK;
}

enum mq_err mq_fwd_sync(struct mq_fwd *f, char *errstr, size_t errstr_size)
{
    if (f->need_sync)
        for (size_t i = 0; i < f->ntopics; i++)
            f->topics[i]->synced = false;
    rd_kafka_t *c = NULL;
    for (size_t i = 0; i < f->ntopics; i++) {
        struct mq_fwd_topic *ft = f->topics[i];
        if (ft->synced || ft->nremote == 0)
            continue;
        int64_t resume[ft->nlocal];
        if (f->mode == MQ_FWD_EXACTLY_ONCE) {
            if (!c) {
                char why[512];
                rd_kafka_conf_t *cc = rd_kafka_conf_dup(f->cconf);
                c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof why);
                if (!c) {
                    rd_kafka_conf_destroy(cc);
                    return mq_errf(MQ_ERR_CONFIG, errstr, errstr_size, "cannot create the tail consumer: %s",
                                   MQ_CLAUSE(why));
                }
            }
            enum mq_err err = mq_fwd_sync_topic(f, c, ft, resume, errstr, errstr_size);
            if (err == MQ_ERR_NOENT) { /* deleted on the cluster: discovery creates it again */
                MQ_WARN("forward %s: remote topic %s is gone: %s", f->name, ft->remote, errstr);
                ft->nremote = 0;
                f->next_discover_ms = 0;
                continue;
            }
            if (err != MQ_OK) {
                rd_kafka_destroy(c);
                return err;
            }
        } else {
            for (int32_t p = 0; p < ft->nlocal; p++) {
                int64_t acked = atomic_load(&ft->parts[p]->acked);
                int64_t ckpt = acked >= 0 ? acked : mq_fwd_ckpt_get(f, ft->parts[p]);
                resume[p] = ckpt >= 0 ? ckpt : mq_fwd_start_offset(f, ft->parts[p]);
            }
        }
        for (int32_t p = 0; p < ft->nlocal; p++) {
            struct mq_fwd_part *part = ft->parts[p];
            if (part->next != resume[p] || part->cur == NULL)
                MQ_INFO("forward %s: %s/%" PRId32 ": resuming at offset %" PRId64, f->name, ft->local, p,
                        resume[p]);
            part->next = resume[p];
            if (part->cur)
                mq_cursor_seek(part->cur, resume[p]);
            part->in_txn = false;
            part->fly_head = part->fly_len = 0;
            atomic_store(&part->acked, resume[p]);
        }
        ft->synced = true;
    }
    if (c) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
    }
    f->need_sync = false;
    return MQ_OK;
}
