/*
 * mq_kafka_dump.c - reads every record of one topic of a Kafka cluster (the tests' mock, mq_kafka_mock) with
 * librdkafka and prints each with all it carries, so that a test can compare what arrived with what was sent.
 *
 * Usage: mq_kafka_dump -b BOOTSTRAP -t TOPIC [-X PROPERTY=VALUE]... [-w SECONDS] [-W]
 * Every partition is read from its first stored offset up to its end at the time the read gets there (the
 * last stable offset: isolation.level=read_committed, as the forwarder's documentation asks of consumers),
 * then the tool exits 0. One JSON object per record on stdout, each partition's in offset order:
 *   {"partition":P,"offset":O,"timestamp":MS,"tstype":"create"|"append"|"none",
 *    "key":HEX|null,"value":HEX|null,"headers":[[NAME,HEX|null],...]}
 * Keys, values and header values are hex so that any bytes survive; null stays null (kcat -J would turn
 * binary into invalid JSON). -X passes a librdkafka property. A topic that does not exist, or a cluster
 * that does not answer, is retried until -w SECONDS (default 30) have passed; then it exits 1 saying why.
 * -W prints only each partition's watermarks, {"partition":P,"low":FIRST_STORED,"high":NEXT_OFFSET}: a cheap
 * way for a test to wait until enough has arrived before it reads everything.
 *
 * Uses only librdkafka, never mqlog's code: the TSan build leaves it uninstrumented like mq_kafka_mock.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void put_hex(const void *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = p;
    if (!p) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        putchar(digits[b[i] >> 4]);
        putchar(digits[b[i] & 15]);
    }
    putchar('"');
}

/* A header name as a JSON string: quote, backslash and control bytes escaped, other bytes as they are. */
static void put_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
    putchar('"');
}

static void put_record(const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    printf("{\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"tstype\":\"%s\",\"key\":",
           (int)m->partition, (long long)m->offset, (long long)ts,
           tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? "create"
           : tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "append"
                                                          : "none");
    put_hex(m->key, m->key_len);
    fputs(",\"value\":", stdout);
    put_hex(m->payload, m->len);
    fputs(",\"headers\":[", stdout);
    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            fputs(i ? ",[" : "[", stdout);
            put_json_string(name);
            putchar(',');
            put_hex(val, size);
            putchar(']');
        }
    }
    fputs("]}\n", stdout);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mq_kafka_dump: %s=%s: %s\n", k, v, errstr);
        return -1;
    }
    return 0;
}

/* The partition count of TOPIC, asking until the deadline; -1 when the cluster never said. It asks for
 * every topic: a request naming the topic would let the mock create it (librdkafka 2.0.2 sets
 * AllowAutoTopicCreation for a topic its cache knows, and the mock honours it), hiding a topic that is
 * missing. */
static int partition_count(rd_kafka_t *rk, const char *topic, double deadline)
{
    const char *why = "no answer";
    int n = -1;
    while (n < 0 && now_s() < deadline) {
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 2000);
        if (err) {
            why = rd_kafka_err2str(err);
            continue; /* the call itself waited */
        }
        why = "no such topic";
        for (int i = 0; i < md->topic_cnt; i++) {
            if (strcmp(md->topics[i].topic, topic) != 0)
                continue;
            if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[i].partition_cnt > 0)
                n = md->topics[i].partition_cnt;
            else
                why = rd_kafka_err2str(md->topics[i].err);
        }
        rd_kafka_metadata_destroy(md);
        if (n < 0)
            usleep(100000); // between metadata requests for a topic that is not there yet
    }
    if (n < 0)
        fprintf(stderr, "mq_kafka_dump: topic %s: %s\n", topic, why);
    return n;
}

/* -W: each partition's low and high watermark, asked again (brokers down) until the deadline. */
static int watermarks(rd_kafka_t *rk, const char *topic, int parts, double deadline)
{
    for (int p = 0; p < parts; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 2000)) && now_s() < deadline)
            usleep(100000); // between queries while the partition's leader does not answer
        if (err) {
            fprintf(stderr, "mq_kafka_dump: %s [%d]: watermarks: %s\n", topic, p, rd_kafka_err2str(err));
            return 1;
        }
        printf("{\"partition\":%d,\"low\":%lld,\"high\":%lld}\n", p, (long long)lo, (long long)hi);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL;
    double wait_s = 30;
    bool marks = false;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int c;
    bool ok = true;
    while (ok && (c = getopt(argc, argv, "b:t:X:w:W")) != -1) {
        char *eq, *end;
        switch (c) {
        case 'b':
            bootstrap = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'X':
            eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "mq_kafka_dump: -X '%s': expected PROPERTY=VALUE\n", optarg);
                ok = false;
                break;
            }
            *eq = '\0';
            ok = set(conf, optarg, eq + 1) == 0;
            break;
        case 'w':
            errno = 0;
            wait_s = strtod(optarg, &end);
            ok = errno == 0 && end != optarg && *end == '\0' && wait_s > 0;
            break;
        case 'W':
            marks = true;
            break;
        default:
            ok = false;
        }
    }
    if (!ok || !bootstrap || !topic || optind != argc) {
        fprintf(stderr,
                "usage: mq_kafka_dump -b BOOTSTRAP -t TOPIC [-X PROPERTY=VALUE]... [-w SECONDS] [-W]\n");
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    /* Partitions are assigned by hand and no offset is committed: the group id is only there because
     * librdkafka 2.0.2 refuses assign() without one. */
    if (set(conf, "bootstrap.servers", bootstrap) || set(conf, "group.id", "mq_kafka_dump") ||
        set(conf, "isolation.level", "read_committed") || set(conf, "enable.partition.eof", "true") ||
        set(conf, "auto.offset.reset", "earliest") || set(conf, "enable.auto.commit", "false")) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "mq_kafka_dump: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    double deadline = now_s() + wait_s;
    int parts = partition_count(rk, topic, deadline);
    if (parts < 0) {
        rd_kafka_destroy(rk);
        return 1;
    }
    if (marks) {
        int status = watermarks(rk, topic, parts, deadline);
        rd_kafka_destroy(rk);
        return status;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        fprintf(stderr, "mq_kafka_dump: assign: %s\n", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return 1;
    }

    /* Each partition's records come in offset order, then its end (reported once). */
    bool *done = calloc((size_t)parts, sizeof *done);
    int left = parts, status = 0;
    long records = 0;
    const char *last_err = "no records and no end of partition seen";
    while (left > 0) {
        if (now_s() >= deadline) {
            fprintf(stderr, "mq_kafka_dump: %s: %d of %d partitions not read to the end after %.0f s (%s)\n",
                    topic, left, parts, wait_s, last_err);
            status = 1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < parts && !done[m->partition]) {
                done[m->partition] = true;
                left--;
            }
        } else if (m->err) {
            /* Brokers down or errors injected: librdkafka retries by itself until the deadline. */
            last_err = rd_kafka_err2name(m->err);
            if (rd_kafka_fatal_error(rk, NULL, 0)) {
                fprintf(stderr, "mq_kafka_dump: fatal: %s\n", rd_kafka_message_errstr(m));
                status = 1;
                left = 0;
            }
        } else {
            put_record(m);
            records++;
        }
        rd_kafka_message_destroy(m);
    }
    free(done);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "mq_kafka_dump: stdout: %s\n", strerror(errno));
        status = 1;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (status == 0)
        fprintf(stderr, "mq_kafka_dump: %s: %ld records from %d partitions\n", topic, records, parts);
    return status;
}
