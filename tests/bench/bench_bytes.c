/*
 * bench_bytes.c - bytes on disk per record for the example's sensor stream (issue 13): 1,000 sensors that
 * each publish one ~35-byte humidity reading a second, stored through the real ingest layer with a given
 * configuration (compression, header policy), in simulated time.
 *
 * Simulated time: each simulated second is cut into flush ticks of 5 ms (log.flush_interval_ms' default);
 * the readings due in a tick are handed to ingest, then every partition they reached is flushed, which is
 * when mqlogd's flusher would write their open batches. So the batches are exactly as small as the live
 * daemon makes them, however fast or loaded the machine is. The data directory should be on tmpfs (the
 * flushes then cost no disk syncs).
 *
 * Printed per run, one line: the configuration's label, records, segment bytes per record, and what the
 * same records would take rewritten as large batches of the topic's codec (up to 256 KiB of records per
 * batch, per partition: the most recompaction could give), what recompaction of the closed segments did
 * give (segments roll every BENCH_SEGMENT_MS of simulated time, default 60 s; then every closed segment
 * is recompacted: the whole log, and the closed segments alone, which is what a long-running log is made
 * of), plus, once, the floor: the readings' topics and payloads as one text file compressed whole with
 * zstd -19.
 *
 * usage: bench_bytes DATA_DIR LABEL SECONDS MAPPING_YAML...   (the mapping keys after "to:"; see bench/bytes)
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "config/config.h"
#include "ingest/ingest.h"
#include "log/codec.h"
#include "store/store.h"
#include "util/diag.h"

#define SENSORS  1000
#define TICK_MS  5
#define T0       1765000000000LL
#define MAXPARTS 2048

static void die(const char *what)
{
    fprintf(stderr, "bench_bytes: %s\n", what);
    exit(1);
}

/* The parts touched in the current tick. */
static struct mq_part *touched[MAXPARTS];
static int ntouched;

static void touch(struct mq_part *p)
{
    for (int i = 0; i < ntouched; i++)
        if (touched[i] == p)
            return;
    if (ntouched == MAXPARTS)
        die("too many partitions");
    touched[ntouched++] = p;
}

/* Every partition written in the run. */
static struct mq_part *all[MAXPARTS];
static int nall;

static void remember(struct mq_part *p)
{
    for (int i = 0; i < nall; i++)
        if (all[i] == p)
            return;
    all[nall++] = p;
}

/* Bytes of the .log files under dir (one level of partition directories). */
static int64_t segment_bytes(const char *dir)
{
    int64_t total = 0;
    DIR *d = opendir(dir);
    if (!d)
        die("cannot list the data directory");
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        DIR *s = opendir(sub);
        if (!s)
            continue;
        struct dirent *f;
        while ((f = readdir(s))) {
            size_t n = strlen(f->d_name);
            if (n < 4 || strcmp(f->d_name + n - 4, ".log") != 0)
                continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
            struct stat st;
            if (stat(path, &st) == 0)
                total += st.st_size;
        }
        closedir(s);
    }
    closedir(d);
    return total;
}

/* Bytes of the closed segments of the partition directories under dir (all but the newest segment of each),
 * and *records the records they hold (the newest segment's base offset: offsets start at 0). */
static int64_t closed_bytes(const char *dir, int64_t *records)
{
    int64_t total = 0;
    *records = 0;
    DIR *d = opendir(dir);
    if (!d)
        die("cannot list the data directory");
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        DIR *s = opendir(sub);
        if (!s)
            continue;
        int64_t bytes = 0, last = -1, last_size = 0;
        struct dirent *f;
        while ((f = readdir(s))) {
            size_t n = strlen(f->d_name);
            if (n != 24 || strcmp(f->d_name + 20, ".log") != 0)
                continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
            struct stat st;
            if (stat(path, &st) != 0)
                continue;
            int64_t base = strtoll(f->d_name, NULL, 10);
            bytes += st.st_size;
            if (base > last) {
                last = base;
                last_size = st.st_size;
            }
        }
        closedir(s);
        if (last > 0) {
            total += bytes - last_size;
            *records += last;
        }
    }
    closedir(d);
    return total;
}

/* What the records of part would take rewritten in batches of up to 256 KiB with codec. */
static int64_t rebatched_bytes(struct mq_part *part, int codec)
{
    struct mq_cursor *cur;
    if (mq_cursor_open(part, 0, &cur) != MQ_OK)
        die("cursor");
    struct mq_batch_builder b;
    mq_batch_builder_init(&b);
    b.codec = codec;
    mq_batch_reset(&b, 0);
    int64_t total = 0;
    struct mq_record_view rv;
    struct mq_header hs[64];
    while (mq_cursor_next(cur, &rv) == 1) {
        int nh = 0;
        const uint8_t *c = rv.headers;
        while (nh < 64 && mq_header_next(&c, rv.headers_end, &hs[nh]) == 1)
            nh++;
        struct mq_record r = {rv.timestamp, rv.key, rv.key_len, rv.value, rv.value_len, hs, nh};
        if (b.count > 0 && b.len + mq_batch_record_size(&b, &r) > 256 * 1024) {
            mq_batch_finish(&b);
            total += (int64_t)b.out_len;
            mq_batch_reset(&b, rv.offset);
        }
        if (b.count == 0)
            mq_batch_reset(&b, rv.offset);
        if (mq_batch_add(&b, &r) != MQ_OK)
            die("rebatch");
    }
    if (b.count > 0) {
        mq_batch_finish(&b);
        total += (int64_t)b.out_len;
    }
    mq_batch_builder_free(&b);
    mq_cursor_close(cur);
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        die("usage: bench_bytes DATA_DIR LABEL SECONDS MAPPING_KEYS (e.g. 'to: \"dev.{1}\", compression: "
            "zstd')");
    const char *data = argv[1], *label = argv[2];
    char *end;
    long seconds = strtol(argv[3], &end, 10);
    if (*end || seconds <= 0 || seconds > 3600)
        die("SECONDS: 1..3600");
    mq_diag_level = MQ_LV_WARN;

    char conf_path[4096], yaml[4096];
    snprintf(conf_path, sizeof conf_path, "%s.yaml", data);
    snprintf(yaml, sizeof yaml,
             "brokers:\n  - {name: site, url: \"mqtt://127.0.0.1:1\"}\n"
             "mappings:\n  - {from: \"sensors/+/humidity\", %s}\n",
             argv[4]);
    FILE *f = fopen(conf_path, "w");
    if (!f || fputs(yaml, f) < 0 || fclose(f) != 0)
        die("cannot write the configuration");
    struct mq_config *cfg = NULL;
    if (mq_config_load(conf_path, &cfg, NULL, NULL) != MQ_OK)
        die("the configuration does not load");
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = 3600 * 1000; /* the ticks below flush */
    lc.flush_bytes = 0;
    const char *segms = getenv("BENCH_SEGMENT_MS");
    lc.segment_ms = segms ? strtoll(segms, NULL, 10) : 60000; /* in simulated time: record timestamps */
    lc.recompact_after_ms = -1;                               /* recompacted below, once the stream is in */
    char why[512];
    struct mq_store *store;
    if (mq_store_open(data, MQ_STORE_WRITE, &lc, &store, why, sizeof why) != MQ_OK)
        die(why);
    struct mq_ingest_routes *routes;
    struct mq_ingest *in;
    if (mq_ingest_routes_new(cfg, &routes, why, sizeof why) != MQ_OK ||
        mq_ingest_new(store, routes, &in, why, sizeof why) != MQ_OK)
        die(why);
    int codec = mq_config_mapping_compression(cfg, &cfg->mappings[0]);

    /* The floor: every reading's topic and payload, one line each, as text. */
    size_t text_cap = (size_t)seconds * SENSORS * 96, text_len = 0;
    char *text = malloc(text_cap);
    if (!text)
        die("out of memory");
    uint64_t rng = 88172645463325252ULL;
    static int rh[SENSORS]; /* tenths of a percent: a slow random walk per sensor, as real rooms drift */
    for (int k = 0; k < SENSORS; k++)
        rh[k] = 350 + k % 300;
    int64_t records = 0, payload_bytes = 0;
    for (int s = 0; s < (int)seconds; s++) {
        for (int tick = 0; tick < 1000 / TICK_MS; tick++) {
            ntouched = 0;
            /* the sensors due in this tick: each publishes once a second, spread evenly */
            for (int k = tick * SENSORS * TICK_MS / 1000; k < (tick + 1) * SENSORS * TICK_MS / 1000; k++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                char topic[64], payload[96];
                int tl = snprintf(topic, sizeof topic, "sensors/s%03d/humidity", k);
                rh[k] += (int)(rng % 7) - 3;
                int pl = snprintf(payload, sizeof payload, "{\"sensor\":\"s%03d\",\"rh\":%d.%d,\"n\":%d}", k,
                                  rh[k] / 10, rh[k] % 10, s);
                struct mq_source_msg m = {.topic = topic,
                                          .topic_len = (size_t)tl,
                                          .payload = payload,
                                          .payload_len = (size_t)pl,
                                          .qos = 1,
                                          .timestamp = T0 + (int64_t)s * 1000 + tick * TICK_MS};
                struct mq_ticket t;
                if (mq_ingest_message(in, "site", &m, &t) != MQ_OK)
                    die("ingest refused a reading");
                for (int i = 0; i < t.n; i++) {
                    touch(t.at[i].part);
                    remember(t.at[i].part);
                }
                records++;
                payload_bytes += pl;
                text_len += (size_t)snprintf(text + text_len, text_cap - text_len, "%s %s\n", topic, payload);
            }
            for (int i = 0; i < ntouched; i++)
                if (mq_part_flush(touched[i]) != MQ_OK)
                    die("flush");
        }
    }
    int64_t seg = segment_bytes(data);
    int64_t rebatched = 0;
    for (int i = 0; i < nall; i++)
        rebatched += rebatched_bytes(all[i], codec);
    int64_t now = T0 + (int64_t)seconds * 1000;
    for (int i = 0; i < nall; i++)
        if (mq_part_recompact(all[i], now, NULL) != MQ_OK)
            die("recompaction");
    int64_t recompacted = segment_bytes(data), closed_records = 0;
    int64_t closed = closed_bytes(data, &closed_records);
    char closed_text[32] = "  n/a";
    if (closed_records > 0)
        snprintf(closed_text, sizeof closed_text, "%6.1f", (double)closed / (double)closed_records);
    size_t bound = ZSTD_compressBound(text_len);
    void *z = malloc(bound);
    size_t zlen = z ? ZSTD_compress(z, bound, text, text_len, 19) : 0;
    if (!z || ZSTD_isError(zlen))
        die("zstd -19");
    printf("%-34s records %7" PRId64 "  payload %5.1f B  on disk %6.1f B/record  rebatched %6.1f B/record  "
           "recompacted %6.1f B/record (closed segments %s)  "
           "floor (zstd -19 of topic+payload text) %4.1f B/record\n",
           label, records, (double)payload_bytes / (double)records, (double)seg / (double)records,
           (double)rebatched / (double)records, (double)recompacted / (double)records, closed_text,
           (double)zlen / (double)records);
    free(z);
    free(text);
    mq_ingest_free(in);
    mq_store_close(store);
    mq_config_free(cfg);
    return 0;
}
