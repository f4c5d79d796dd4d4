/*
 * kafka_count.c - a librdkafka consumer for the Kafka endpoint benchmark that only counts: it reads every
 * partition of a topic from the beginning to the end it finds there and prints how many records and bytes
 * it got and how fast. It exists because kcat spends much of its time formatting and writing its output,
 * so kcat's rate says more about kcat than about the endpoint.
 *
 * Usage: kafka_count -b HOST:PORT -t TOPIC [-l COUNT] [-w SECONDS] [-X KEY=VALUE]...
 * Prints one line: "records=N bytes=B seconds=S records_per_s=R" (bytes: keys + values; seconds: from the
 * first record received to the last). Exit 1 on error, and when no record arrives for -w SECONDS
 * (default 30) before the end: a benchmark must not hang on a lost message.
 *
 * Latency mode, for the end-to-end benchmark: kafka_count -b HOST:PORT -t TOPIC -l COUNT takes every
 * partition's end offset, prints "ready", reads COUNT records from there whose values begin with the
 * publisher's wall-clock send time in microseconds ("<us> ..."), and prints
 * "latency_us n=N p50=.. p99=.. max=.." (receive time minus send time), then the same for the receive time
 * minus the record's timestamp, which mqlogd sets when its MQTT client receives the message:
 * "since_ingest_us n=N p50=.. p99=.. max=..", the part spent in the store and the Kafka endpoint (the
 * timestamp has millisecond resolution: these figures are up to 1 ms high). Publisher and consumer run on
 * the same host (same clock).
 */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/parse.h"

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_count: %s=%s: %s\n", k, v, errstr);
        return -1;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL;
    int64_t latency_n = 0, idle_s = 30;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int opt;
    /* Large fetches: the endpoint sends whole stored batches; let each response carry many of them. The
     * local queue must hold several responses' worth of records (about 150,000 100-byte records per
     * 16 MiB): once it holds more than queued.min.messages (default 100,000) librdkafka stops fetching and
     * looks again only about a second later, which made every 16 MiB fetch cost a second. */
    if (set(conf, "group.id", "kafka_count") || set(conf, "enable.auto.commit", "false") ||
        set(conf, "enable.partition.eof", "true") || set(conf, "fetch.max.bytes", "52428800") ||
        set(conf, "max.partition.fetch.bytes", "16777216") || set(conf, "queued.min.messages", "1000000") ||
        set(conf, "queued.max.messages.kbytes", "1048576") || set(conf, "fetch.wait.max.ms", "100"))
        return 1;
    while ((opt = getopt(argc, argv, "b:t:X:l:w:")) != -1) {
        switch (opt) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'l':
            if (mq_parse_int64(optarg, 1, INT64_MAX, &latency_n) != MQ_OK) {
                fprintf(stderr, "kafka_count: -l %s: expected a count >= 1\n", optarg);
                return 1;
            }
            break;
        case 'w':
            if (mq_parse_int64(optarg, 1, 86400, &idle_s) != MQ_OK) {
                fprintf(stderr, "kafka_count: -w %s: expected 1..86400 seconds\n", optarg);
                return 1;
            }
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "kafka_count: -X %s: expected KEY=VALUE\n", optarg);
                return 1;
            }
            *eq = 0;
            if (set(conf, optarg, eq + 1))
                return 1;
            break;
        }
        default:
            fprintf(stderr,
                    "usage: kafka_count -b HOST:PORT -t TOPIC [-l COUNT] [-w SECONDS] [-X KEY=VALUE]...\n");
            return 1;
        }
    }
    if (!brokers || !topic) {
        fprintf(stderr,
                "usage: kafka_count -b HOST:PORT -t TOPIC [-l COUNT] [-w SECONDS] [-X KEY=VALUE]...\n");
        return 1;
    }
    if (latency_n && (set(conf, "fetch.wait.max.ms", "500") || set(conf, "fetch.min.bytes", "1")))
        return 1;
    if (set(conf, "bootstrap.servers", brokers))
        return 1;
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka_count: %s\n", errstr);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "kafka_count: metadata of %s: %s\n", topic,
                rd_kafka_err2str(err                  ? err
                                 : md->topic_cnt == 1 ? md->topics[0].err
                                                      : RD_KAFKA_RESP_ERR__FAIL));
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts && !err; p++) {
        /* Latency mode starts at the end as it is now (explicit offsets: nothing published after "ready"
         * can be skipped by a later resolution of "end"). */
        int64_t lo = 0, hi = RD_KAFKA_OFFSET_BEGINNING;
        if (latency_n)
            err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = hi;
    }
    if (!err)
        err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        fprintf(stderr, "kafka_count: assign: %s\n", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return 1;
    }
    if (latency_n) {
        printf("ready\n"); /* the driver starts publishing now */
        fflush(stdout);
    }

    enum { BATCH = 10000 };
    rd_kafka_message_t **msgs = malloc(BATCH * sizeof *msgs);
    int64_t *lat = latency_n ? malloc((size_t)latency_n * sizeof *lat) : NULL;
    int64_t *ing = latency_n ? malloc((size_t)latency_n * sizeof *ing) : NULL;
    if (!msgs || (latency_n && (!lat || !ing))) {
        fprintf(stderr, "kafka_count: out of memory\n");
        return 1;
    }
    long long records = 0, bytes = 0;
    int eofs = 0, rc = 0;
    int64_t t0 = 0, t_last = 0, t_progress = mq_mono_us();
    while (latency_n ? records < latency_n : eofs < nparts) {
        /* One message per poll: rd_kafka_consume_batch_queue() waits for a full batch or its timeout. */
        ssize_t n = 0;
        rd_kafka_message_t *m1 = rd_kafka_consumer_poll(rk, 1000);
        while (m1) {
            msgs[n++] = m1;
            m1 = n < BATCH ? rd_kafka_consumer_poll(rk, 0) : NULL;
        }
        int64_t now_wall = latency_n ? wall_us() : 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                eofs++;
            } else if (m->err) {
                fprintf(stderr, "kafka_count: %s\n", rd_kafka_message_errstr(m));
                rc = 1;
            } else {
                if (!t0)
                    t0 = mq_mono_us();
                if (latency_n && records < latency_n) {
                    char buf[24];
                    size_t l = m->len < sizeof buf - 1 ? m->len : sizeof buf - 1;
                    memcpy(buf, m->payload, l);
                    buf[l] = 0;
                    lat[records] = now_wall - strtoll(buf, NULL, 10);
                    ing[records] = now_wall - rd_kafka_message_timestamp(m, NULL) * 1000;
                }
                records++;
                bytes += (long long)m->len + (long long)m->key_len;
            }
            rd_kafka_message_destroy(m);
        }
        if (n > 0) {
            t_last = t_progress = mq_mono_us();
        } else if (mq_mono_us() - t_progress > idle_s * 1000000) {
            fprintf(stderr, "kafka_count: nothing received for %" PRId64 " s (%lld records so far)\n", idle_s,
                    records);
            rc = 1;
        }
        if (rc)
            break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(msgs);
    if (rc == 0 && latency_n) {
        qsort(lat, (size_t)latency_n, sizeof *lat, cmp_i64);
        qsort(ing, (size_t)latency_n, sizeof *ing, cmp_i64);
        printf("latency_us n=%" PRId64 " p50=%" PRId64 " p99=%" PRId64 " max=%" PRId64 "\n", latency_n,
               lat[latency_n / 2], lat[latency_n * 99 / 100], lat[latency_n - 1]);
        printf("since_ingest_us n=%" PRId64 " p50=%" PRId64 " p99=%" PRId64 " max=%" PRId64 "\n", latency_n,
               ing[latency_n / 2], ing[latency_n * 99 / 100], ing[latency_n - 1]);
    } else if (rc == 0) {
        double secs = t_last > t0 ? (double)(t_last - t0) / 1e6 : 0;
        printf("records=%lld bytes=%lld seconds=%.3f records_per_s=%.0f\n", records, bytes, secs,
               secs > 0 ? (double)records / secs : 0.0);
    }
    free(lat);
    free(ing);
    return rc;
}
