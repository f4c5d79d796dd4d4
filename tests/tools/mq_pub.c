/*
 * mq_pub.c - the test publisher: publishes COUNT numbered messages over TOPICS MQTT topics at a given QoS
 * and protocol, through libmosquitto, and exits 0 once the broker has taken every one (QoS 1/2: each
 * acknowledged; QoS 0: each written to the socket).
 *
 * Message k (k = FIRST .. FIRST+COUNT-1) goes to topic "PREFIX/(k % TOPICS)" (or PREFIX itself with --exact)
 * with the JSON payload
 *   {"k":K,"topic":T,"seq":S,"pad":"..."}
 * where S = k / TOPICS is its position in its topic: a checker reading the log expects, per MQTT topic,
 * the sequence numbers 0, 1, 2, ... each once and in that order. The pad brings the payload to SIZE bytes.
 *
 * --repeat R publishes each message R times in a row, identical topic and payload: R real messages that
 * a gateway must store R times (a deduplicating gateway must not take them for redeliveries). --rate and
 * the window count publications, copies included.
 *
 * --rate R spreads the messages over time (R per second) so that a test can act in the middle of a stream.
 * At most WINDOW messages are outstanding (not yet taken by the broker) so that libmosquitto's queue stays
 * bounded. When the broker goes away (a test restarts it) the client reconnects by itself; with
 * --persistent (clean session off, fixed client id) unacknowledged QoS 1/2 messages are sent again, so
 * nothing is lost (a QoS 1 message may then arrive twice).
 */
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/parse.h"

struct pub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long acked;     /* on_publish calls */
    bool connected; /* CONNACK accepted */
    int connects;
};

static void on_connect(struct mosquitto *m, void *opaque, int rc, int flags, const mosquitto_property *props)
{
    (void)m, (void)flags, (void)props;
    struct pub *p = opaque;
    pthread_mutex_lock(&p->mu);
    p->connected = rc == 0;
    if (rc == 0)
        p->connects++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void on_disconnect(struct mosquitto *m, void *opaque, int rc, const mosquitto_property *props)
{
    (void)m, (void)rc, (void)props;
    struct pub *p = opaque;
    pthread_mutex_lock(&p->mu);
    p->connected = false;
    pthread_mutex_unlock(&p->mu);
}

static void on_publish(struct mosquitto *m, void *opaque, int mid, int rc, const mosquitto_property *props)
{
    (void)m, (void)mid, (void)rc, (void)props;
    struct pub *p = opaque;
    pthread_mutex_lock(&p->mu);
    p->acked++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: mq_pub -p PORT [-H HOST] [-q QOS] [-V 311|5] [-n COUNT] [-f FIRST] [-t TOPICS]\n"
                    "              [-T PREFIX] [-s SIZE] [-i CLIENT_ID] [-w WINDOW] [--persistent]\n"
                    "              [--timeout SECONDS] [--retain] [--exact] [--rate PER_SECOND]\n"
                    "              [--repeat COPIES]\n");
}

static bool num(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (mq_parse_int64(s, min, max, out) == MQ_OK)
        return true;
    fprintf(stderr, "mq_pub: %s '%s': expected a number from %lld to %lld\n", opt, s, (long long)min,
            (long long)max);
    return false;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"persistent", no_argument, NULL, 'P'},
        {"timeout", required_argument, NULL, 'o'},
        {"retain", no_argument, NULL, 'r'},
        {"exact", no_argument, NULL, 'e'},
        {"rate", required_argument, NULL, 'R'},
        {"repeat", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *prefix = "e2e", *id = NULL;
    int64_t port = 0, qos = 1, version = 5, count = 1000, first = 0, topics = 10, size = 100, window = 1000,
            timeout_s = 120, rate = 0, repeat = 1;
    bool persistent = false, retain = false, exact = false;
    int c;
    while ((c = getopt_long(argc, argv, "H:p:q:V:n:f:t:T:s:i:w:", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            ok = num("-p", optarg, 1, 65535, &port);
            break;
        case 'q':
            ok = num("-q", optarg, 0, 2, &qos);
            break;
        case 'V':
            ok = num("-V", optarg, 5, 311, &version) && (version == 5 || version == 311);
            break;
        case 'n':
            ok = num("-n", optarg, 0, 1000000000, &count);
            break;
        case 'f':
            ok = num("-f", optarg, 0, 1000000000, &first);
            break;
        case 't':
            ok = num("-t", optarg, 1, 1000000, &topics);
            break;
        case 'T':
            prefix = optarg;
            break;
        case 's':
            ok = num("-s", optarg, 0, 10000000, &size);
            break;
        case 'i':
            id = optarg;
            break;
        case 'w':
            ok = num("-w", optarg, 1, 1000000, &window);
            break;
        case 'P':
            persistent = true;
            break;
        case 'o':
            ok = num("--timeout", optarg, 1, 100000, &timeout_s);
            break;
        case 'r':
            retain = true;
            break;
        case 'e':
            exact = true;
            break;
        case 'R':
            ok = num("--rate", optarg, 1, 10000000, &rate);
            break;
        case 'N':
            ok = num("--repeat", optarg, 1, 1000, &repeat);
            break;
        default:
            ok = false;
        }
        if (!ok) {
            usage();
            return 2;
        }
    }
    if (port == 0 || optind != argc || (persistent && !id)) {
        usage();
        return 2;
    }

    mosquitto_lib_init();
    struct pub p = {.acked = 0};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    struct mosquitto *m = mosquitto_new(id, !persistent, &p);
    if (!m) {
        fprintf(stderr, "mq_pub: mosquitto_new: %s\n", strerror(errno));
        return 1;
    }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(m, (unsigned)(window < 65535 ? window : 65535));
    mosquitto_reconnect_delay_set(m, 1, 2, false);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_disconnect_v5_callback_set(m, on_disconnect);
    mosquitto_publish_v5_callback_set(m, on_publish);
    int rc = mosquitto_connect_async(m, host, (int)port, 30);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_start(m);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mq_pub: connect %s:%d: %s\n", host, (int)port, mosquitto_strerror(rc));
        return 1;
    }

    struct timespec end;
    deadline_in(&end, (int)timeout_s * 1000);
    char *payload = malloc((size_t)size + 200);
    int status = 0;
    long sent = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double start_s = (double)t0.tv_sec + (double)t0.tv_nsec / 1e9;
    /* publication i is copy i % repeat of message k = first + i / repeat */
    for (int64_t i = 0; i < count * repeat && status == 0; i++) {
        int64_t k = first + i / repeat;
        int n = snprintf(payload, (size_t)size + 200, "{\"k\":%lld,\"topic\":%lld,\"seq\":%lld,\"pad\":\"",
                         (long long)k, (long long)(k % topics), (long long)(k / topics));
        while (n < size - 2)
            payload[n++] = 'x';
        payload[n++] = '"';
        payload[n++] = '}';
        char topic[256];
        if (exact)
            snprintf(topic, sizeof topic, "%s", prefix);
        else
            snprintf(topic, sizeof topic, "%s/%lld", prefix, (long long)(k % topics));
        if (rate > 0) { /* publication i is due i / rate seconds after the start */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double due = start_s + (double)i / (double)rate;
            double now_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
            if (due > now_s)
                usleep((useconds_t)((due - now_s) * 1e6)); // --rate pacing, not synchronisation
        }
        pthread_mutex_lock(&p.mu);
        /* wait for a connection and for room in the window */
        while ((!p.connected || sent - p.acked >= window) &&
               pthread_cond_timedwait(&p.cv, &p.mu, &end) != ETIMEDOUT)
            ;
        bool ok = p.connected && sent - p.acked < window;
        pthread_mutex_unlock(&p.mu);
        if (!ok) {
            fprintf(stderr, "mq_pub: timed out at message %lld (%ld of %ld taken)\n", (long long)k, p.acked,
                    sent);
            status = 1;
            break;
        }
        rc = mosquitto_publish_v5(m, NULL, topic, n, payload, (int)qos, retain, NULL);
        if (rc == MOSQ_ERR_NO_CONN) { /* lost meanwhile: wait for the reconnect and publish it then */
            i--;
            usleep(1000); // retry interval until libmosquitto has reconnected
            continue;
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "mq_pub: publish: %s\n", mosquitto_strerror(rc));
            status = 1;
            break;
        }
        sent++;
    }
    /* every message taken by the broker */
    pthread_mutex_lock(&p.mu);
    while (status == 0 && p.acked < sent && pthread_cond_timedwait(&p.cv, &p.mu, &end) != ETIMEDOUT)
        ;
    if (status == 0 && p.acked < sent) {
        fprintf(stderr, "mq_pub: timed out: %ld of %ld messages taken by the broker\n", p.acked, sent);
        status = 1;
    }
    int connects = p.connects;
    pthread_mutex_unlock(&p.mu);
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    free(payload);
    if (status == 0)
        fprintf(stderr, "mq_pub: %ld messages published (QoS %d, MQTT %s, %d connection%s)\n", sent, (int)qos,
                version == 5 ? "5" : "3.1.1", connects, connects == 1 ? "" : "s");
    return status;
}
