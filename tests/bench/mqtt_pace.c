/*
 * mqtt_pace.c - an MQTT publisher for the end-to-end latency benchmark: COUNT messages at a fixed RATE on
 * one topic, each payload starting with its wall-clock send time in microseconds ("<us> <seq> xxx...",
 * padded to SIZE bytes), so that a consumer on the same host can compute publish-to-delivery latency.
 *
 * Usage: mqtt_pace -h HOST -p PORT -t TOPIC -r RATE -n COUNT [-s SIZE] [-q QOS]
 * The schedule is absolute (message i is due at start + i / RATE), so a late message does not delay the
 * ones after it. Exits 0 once every message is sent (QoS 0) or acknowledged (QoS 1, 2); prints the achieved
 * rate on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/parse.h"

static atomic_long acked;

static void on_publish(struct mosquitto *mosq, void *opaque, int mid)
{
    (void)mosq;
    (void)opaque;
    (void)mid;
    atomic_fetch_add(&acked, 1);
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* nanoseconds: the schedule is absolute CLOCK_MONOTONIC times for clock_nanosleep() */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long long num(const char *opt, const char *s, long long min, long long max)
{
    int64_t v;
    if (mq_parse_int64(s, min, max, &v) != MQ_OK) {
        fprintf(stderr, "mqtt_pace: %s %s: expected %lld..%lld\n", opt, s, min, max);
        exit(1);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *topic = NULL;
    long long port = 1883, rate = 0, count = 0, size = 100, qos = 1;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:t:r:n:s:q:")) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = num("-p", optarg, 1, 65535);
            break;
        case 't':
            topic = optarg;
            break;
        case 'r':
            rate = num("-r", optarg, 1, 10000000);
            break;
        case 'n':
            count = num("-n", optarg, 1, 1000000000);
            break;
        case 's':
            size = num("-s", optarg, 32, 1 << 20);
            break;
        case 'q':
            qos = num("-q", optarg, 0, 2);
            break;
        default:
            fprintf(stderr,
                    "usage: mqtt_pace -h HOST -p PORT -t TOPIC -r RATE -n COUNT [-s SIZE] [-q QOS]\n");
            return 1;
        }
    }
    if (!topic || !rate || !count) {
        fprintf(stderr, "usage: mqtt_pace -h HOST -p PORT -t TOPIC -r RATE -n COUNT [-s SIZE] [-q QOS]\n");
        return 1;
    }
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(NULL, true, NULL);
    if (!mosq) {
        fprintf(stderr, "mqtt_pace: mosquitto_new: %s\n", strerror(errno));
        return 1;
    }
    mosquitto_publish_callback_set(mosq, on_publish);
    mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, 65535);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    int rc = mosquitto_connect(mosq, host, (int)port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqtt_pace: connect %s:%lld: %s\n", host, port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return 1;
    }
    rc = mosquitto_loop_start(mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqtt_pace: loop_start: %s\n", mosquitto_strerror(rc));
        return 1;
    }
    char *payload = malloc((size_t)size);
    if (!payload)
        return 1;
    int64_t start = mono_ns();
    for (long long i = 0; i < count; i++) {
        int64_t due = start + (int64_t)((double)i * 1e9 / (double)rate);
        struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) { /* pacing, not a wait */
        }
        memset(payload, 'x', (size_t)size);
        int n = snprintf(payload, (size_t)size, "%lld %lld ", (long long)wall_us(), i);
        if (n > 0 && n < size)
            payload[n] = 'x'; /* snprintf's terminating NUL is not part of the payload */
        rc = mosquitto_publish(mosq, NULL, topic, (int)size, payload, (int)qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "mqtt_pace: publish %lld: %s\n", i, mosquitto_strerror(rc));
            return 1;
        }
    }
    double secs = (double)(mono_ns() - start) / 1e9;
    int64_t deadline = mono_ns() + 30LL * 1000000000;
    while (atomic_load(&acked) < count && mono_ns() < deadline) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* polling the ack counter, with a deadline */
    }
    long done = atomic_load(&acked);
    fprintf(stderr, "mqtt_pace: %lld messages in %.3f s (%.0f msg/s), %ld acknowledged\n", count, secs,
            (double)count / secs, done);
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    free(payload);
    return done == count ? 0 : 1;
}
