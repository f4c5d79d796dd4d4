/*
 * expo.c - the Prometheus text exposition format, version 0.0.4 (metrics.h): # HELP and # TYPE once per
 * family, then its samples, label values escaped, histograms as cumulative _bucket series with le, _sum
 * and _count.
 */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

void mq_expo_init(struct mq_expo *e, FILE *f)
{
    e->f = f;
    e->current = -1;
    for (int i = 0; i < MQ_M_COUNT; i++)
        e->started[i] = 0;
    e->failed = false;
}

bool mq_expo_failed(const struct mq_expo *e)
{
    return e->failed || ferror(e->f);
}

void mq_expo_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

/* HELP text escapes only backslash and line feed. */
static void mq_expo_help(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

/* Enters family m: its header when it starts; false (and the writer failed) when it was left before. */
static bool mq_expo_enter(struct mq_expo *e, enum mq_metric m)
{
    if ((int)m < 0 || m >= MQ_M_COUNT) {
        e->failed = true;
        return false;
    }
    if (e->current == (int)m)
        return true;
    if (e->started[m]) {
        e->failed = true; /* its samples would no longer be together */
        return false;
    }
    static const char *const types[] = {"counter", "gauge", "histogram"};
    const struct mq_metric_def *d = &mq_metric_defs[m];
    fprintf(e->f, "# HELP %s ", d->name);
    mq_expo_help(e->f, d->help);
    fprintf(e->f, "\n# TYPE %s %s\n", d->name, types[d->type]);
    e->started[m] = 1;
    e->current = (int)m;
    return true;
}

void mq_expo_family(struct mq_expo *e, enum mq_metric m)
{
    mq_expo_enter(e, m);
}

/* name{l1="v1",...[,le="x"]} */
static void mq_expo_series(struct mq_expo *e, enum mq_metric m, const char *suffix, const char *const *values,
                           const char *le)
{
    const struct mq_metric_def *d = &mq_metric_defs[m];
    fprintf(e->f, "%s%s", d->name, suffix);
    size_t n = mq_metric_nlabels(m);
    if (n == 0 && !le)
        return;
    fputc('{', e->f);
    for (size_t i = 0; i < n; i++) {
        fprintf(e->f, "%s%s=\"", i ? "," : "", d->labels[i]);
        mq_expo_escape(e->f, values && values[i] ? values[i] : "");
        fputc('"', e->f);
    }
    if (le)
        fprintf(e->f, "%sle=\"%s\"", n ? "," : "", le);
    fputc('}', e->f);
}

static bool mq_expo_scalar(struct mq_expo *e, enum mq_metric m, const char *const *values)
{
    if (!mq_expo_enter(e, m))
        return false;
    if (mq_metric_defs[m].type == MQ_MT_HISTOGRAM) {
        e->failed = true;
        return false;
    }
    mq_expo_series(e, m, "", values, NULL);
    return true;
}

void mq_expo_u64(struct mq_expo *e, enum mq_metric m, const char *const *values, uint64_t v)
{
    if (mq_expo_scalar(e, m, values))
        fprintf(e->f, " %" PRIu64 "\n", v);
}

void mq_expo_i64(struct mq_expo *e, enum mq_metric m, const char *const *values, int64_t v)
{
    if (mq_expo_scalar(e, m, values))
        fprintf(e->f, " %" PRId64 "\n", v);
}

static void mq_expo_number(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else {
        /* the shortest of 15 or 17 digits that reads back as v: 0.1, not 0.10000000000000001 */
        char buf[32];
        snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof buf, "%.17g", v);
        fputs(buf, f);
    }
}

void mq_expo_double(struct mq_expo *e, enum mq_metric m, const char *const *values, double v)
{
    if (!mq_expo_scalar(e, m, values))
        return;
    fputc(' ', e->f);
    mq_expo_number(e->f, v);
    fputc('\n', e->f);
}

void mq_expo_histo(struct mq_expo *e, enum mq_metric m, const char *const *values,
                   const struct mq_histo_snap *h)
{
    if (!mq_expo_enter(e, m))
        return;
    if (mq_metric_defs[m].type != MQ_MT_HISTOGRAM) {
        e->failed = true;
        return;
    }
    char le[32];
    for (int i = 0; i < MQ_HISTO_N; i++) {
        snprintf(le, sizeof le, "%g", (double)mq_histo_bounds_us[i] / 1e6);
        mq_expo_series(e, m, "_bucket", values, le);
        fprintf(e->f, " %" PRIu64 "\n", h->cumulative[i]);
    }
    mq_expo_series(e, m, "_bucket", values, "+Inf");
    fprintf(e->f, " %" PRIu64 "\n", h->cumulative[MQ_HISTO_N]);
    mq_expo_series(e, m, "_sum", values, NULL);
    fputc(' ', e->f);
    mq_expo_number(e->f, (double)h->sum_us / 1e6);
    fputc('\n', e->f);
    mq_expo_series(e, m, "_count", values, NULL);
    fprintf(e->f, " %" PRIu64 "\n", h->cumulative[MQ_HISTO_N]);
}
