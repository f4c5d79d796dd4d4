/*
 * bare_sub.c - the ceiling of the ingest benchmark (tests/bench/ingest): a bare libmosquitto subscriber that
 * only counts. It subscribes to FILTER at QOS, prints "ready" on stdout once the broker has acknowledged the
 * subscription (the publisher may start then), drains COUNT messages and prints one line
 *
 *   bare received=N first_ns=T0 last_ns=T1 seconds=S msgs_per_s=R cpu_us_per_msg=C
 *
 * where T0 and T1 are CLOCK_REALTIME receive times of the first and last message, S = T1 - T0 and
 * R = N / S: the same measure the benchmark takes of mqlogd (first to last record stored). C is the
 * process's CPU time (user + system, whole life) per message: unlike R, it hardly depends on what else
 * the machine runs.
 *
 * Usage: bare_sub -p PORT -t FILTER -n COUNT [-H HOST] [-q QOS] [-V 311|5] [-i CLIENT_ID] [-w IDLE_SECONDS]
 * One thread runs libmosquitto's loop, as a minimal consumer would. The client's receive maximum (MQTT 5) and
 * in-flight window are left at libmosquitto's defaults. Exits 1 when no message came for IDLE_SECONDS
 * (default 60) before COUNT were received, printing what it got.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "util/parse.h"

struct bare {
    const char *filter;
    int qos;
    long want;
    long received;
    int64_t first_ns, last_ns;
    int sub_mid;
    bool ready, failed;
};

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_connect(struct mosquitto *mosq, void *opaque, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)flags, (void)props;
    struct bare *b = opaque;
    if (rc != 0) {
        fprintf(stderr, "bare_sub: connection refused: %s\n", mosquitto_reason_string(rc));
        b->failed = true;
        return;
    }
    rc = mosquitto_subscribe_v5(mosq, &b->sub_mid, b->filter, b->qos, 0, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bare_sub: subscribe: %s\n", mosquitto_strerror(rc));
        b->failed = true;
    }
}

static void on_subscribe(struct mosquitto *mosq, void *opaque, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    (void)mosq, (void)props;
    struct bare *b = opaque;
    if (mid != b->sub_mid || b->ready)
        return;
    if (count < 1 || granted[0] >= 0x80 || granted[0] != b->qos) {
        fprintf(stderr, "bare_sub: subscription to %s not granted at QoS %d\n", b->filter, b->qos);
        b->failed = true;
        return;
    }
    b->ready = true;
    printf("ready\n");
    fflush(stdout);
}

static void on_message(struct mosquitto *mosq, void *opaque, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    (void)msg, (void)props;
    struct bare *b = opaque;
    int64_t now = wall_ns();
    if (b->received++ == 0)
        b->first_ns = now;
    b->last_ns = now;
    if (b->received == b->want)
        mosquitto_disconnect(mosq);
}

static long num(const char *opt, const char *s, long min, long max)
{
    int64_t v;
    if (mq_parse_int64(s, min, max, &v) != MQ_OK) {
        fprintf(stderr, "bare_sub: %s '%s': expected a number from %ld to %ld\n", opt, s, min, max);
        exit(2);
    }
    return (long)v;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bare_sub -p PORT -t FILTER -n COUNT [-H HOST] [-q QOS] [-V 311|5] [-i CLIENT_ID]\n"
            "                [-w IDLE_SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *id = NULL;
    long port = 0, version = 311, idle_s = 60;
    struct bare b = {.qos = 0, .want = 0};
    int c;
    while ((c = getopt(argc, argv, "H:p:t:n:q:V:i:w:")) != -1) {
        switch (c) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = num("-p", optarg, 1, 65535);
            break;
        case 't':
            b.filter = optarg;
            break;
        case 'n':
            b.want = num("-n", optarg, 1, 1000000000);
            break;
        case 'q':
            b.qos = (int)num("-q", optarg, 0, 2);
            break;
        case 'V':
            version = num("-V", optarg, 5, 311);
            if (version != 5 && version != 311)
                usage();
            break;
        case 'i':
            id = optarg;
            break;
        case 'w':
            idle_s = num("-w", optarg, 1, 100000);
            break;
        default:
            usage();
        }
    }
    if (port == 0 || !b.filter || b.want == 0 || optind != argc)
        usage();

    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(id, true, &b);
    if (!mosq) {
        fprintf(stderr, "bare_sub: mosquitto_new: %s\n", strerror(errno));
        return 1;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_connect_v5_callback_set(mosq, on_connect);
    mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
    mosquitto_message_v5_callback_set(mosq, on_message);
    int rc = mosquitto_connect(mosq, host, (int)port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bare_sub: connect %s:%ld: %s\n", host, port, mosquitto_strerror(rc));
        return 1;
    }
    int64_t progress_ns = wall_ns();
    long seen = 0;
    while (!b.failed && b.received < b.want) {
        rc = mosquitto_loop(mosq, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "bare_sub: connection lost: %s\n", mosquitto_strerror(rc));
            b.failed = true;
            break;
        }
        int64_t now = wall_ns();
        if (b.received != seen) {
            seen = b.received;
            progress_ns = now;
        } else if (b.ready && now - progress_ns > (int64_t)idle_s * 1000000000) {
            fprintf(stderr, "bare_sub: no message for %ld s\n", idle_s);
            b.failed = true;
        }
    }
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    double secs = (double)(b.last_ns - b.first_ns) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    printf("bare received=%ld first_ns=%" PRId64 " last_ns=%" PRId64
           " seconds=%.6f msgs_per_s=%.0f cpu_us_per_msg=%.2f\n",
           b.received, b.first_ns, b.last_ns, secs, secs > 0 ? (double)b.received / secs : 0.0,
           b.received > 0 ? cpu_us / (double)b.received : 0.0);
    return b.failed || b.received < b.want ? 1 : 0;
}
