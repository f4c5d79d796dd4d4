/*
 * mq_kafka_mock.c - the "central Kafka cluster" of the forwarding tests: librdkafka's built-in mock
 * cluster (rdkafka_mock.h) in a process of its own, driven line by line on stdin.
 *
 * Usage: mq_kafka_mock [-b BROKERS] [-t TOPIC:PARTITIONS]...
 *   -b  number of brokers (default 3); broker ids are 1..BROKERS
 *   -t  a topic to create before the cluster is announced (repeatable)
 * Once the cluster is up it prints one line on stdout, "bootstrap HOST:PORT,HOST:PORT,...", then reads one
 * command per line on stdin and answers each with "ok" or "error TEXT":
 *   create TOPIC PARTITIONS      a topic (the mock answers no CreateTopics request, so tests create them)
 *   down ID | up ID              refuse / accept connections on broker ID ("all": every broker)
 *   rtt ID MS                    delay every response of broker ID by MS milliseconds ("all" allowed)
 *   errors APIKEY COUNT ERRNAME  the next COUNT requests of APIKEY (0: Produce) on any broker fail with
 *                                ERRNAME, librdkafka's name without RD_KAFKA_RESP_ERR_
 * (NOT_LEADER_FOR_PARTITION; _TRANSPORT closes the connection instead of answering) quit destroy the cluster,
 * answer ok and exit 0 (end of input: the same, silently)
 *
 * The mock binds every broker to 127.0.0.1 on a port the kernel picks (librdkafka 2.0.2's
 * rd_kafka_mock_broker_new), so nothing is reachable from outside the machine and no port is fixed.
 * Topics get a replication factor of min(BROKERS, 3), so that taking one broker down moves leadership
 * the way it would in a real cluster. The mock keeps at most ~5 MiB or 100,000 batches per partition:
 * tests size their streams below that.
 *
 * This tool uses only librdkafka, never mqlog's code, so the TSan build leaves it uninstrumented (see
 * tests/integration/kafka/CMakeLists.txt for why).
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int brokers = 3;

/* A whole decimal number in [min, max], or false. */
static bool parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A broker id 1..brokers, or -1 for "all" (what the mock's broker calls take as every broker). */
static bool parse_broker(const char *s, int32_t *id)
{
    long v;
    if (strcmp(s, "all") == 0) {
        *id = -1;
        return true;
    }
    if (!parse_int(s, 1, brokers, &v))
        return false;
    *id = (int32_t)v;
    return true;
}

/* librdkafka's error code for NAME (as rd_kafka_err2name spells it, with or without RD_KAFKA_RESP_ERR_),
 * found in its own table so that every code it knows is accepted. */
static bool parse_err(const char *name, rd_kafka_resp_err_t *err)
{
    static const char prefix[] = "RD_KAFKA_RESP_ERR_";
    if (strncmp(name, prefix, sizeof prefix - 1) == 0)
        name += sizeof prefix - 1;
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (descs[i].name && strcmp(descs[i].name, name) == 0) {
            *err = descs[i].code;
            return true;
        }
    }
    return false;
}

static bool create_topic(rd_kafka_mock_cluster_t *mc, const char *topic, long parts, char *why,
                         size_t why_size)
{
    int rf = brokers < 3 ? brokers : 3;
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, topic, (int)parts, rf);
    if (err) {
        snprintf(why, why_size, "create %s: %s", topic, rd_kafka_err2name(err));
        return false;
    }
    return true;
}

/* Runs one command line (its words in argv); on failure writes why into WHY. */
static bool run(rd_kafka_mock_cluster_t *mc, int argc, char **argv, char *why, size_t why_size)
{
    const char *cmd = argv[0];
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int32_t id;
    long n, m;
    if (strcmp(cmd, "create") == 0 && argc == 3) {
        if (!parse_int(argv[2], 1, 100000, &n)) {
            snprintf(why, why_size, "partitions '%s': expected 1..100000", argv[2]);
            return false;
        }
        return create_topic(mc, argv[1], n, why, why_size);
    } else if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && argc == 2) {
        if (!parse_broker(argv[1], &id)) {
            snprintf(why, why_size, "broker '%s': expected 1..%d or all", argv[1], brokers);
            return false;
        }
        err = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, id) : rd_kafka_mock_broker_set_up(mc, id);
    } else if (strcmp(cmd, "rtt") == 0 && argc == 3) {
        if (!parse_broker(argv[1], &id)) {
            snprintf(why, why_size, "broker '%s': expected 1..%d or all", argv[1], brokers);
            return false;
        }
        if (!parse_int(argv[2], 0, INT_MAX, &n)) {
            snprintf(why, why_size, "rtt '%s': expected milliseconds", argv[2]);
            return false;
        }
        err = rd_kafka_mock_broker_set_rtt(mc, id, (int)n);
    } else if (strcmp(cmd, "errors") == 0 && argc == 4) {
        rd_kafka_resp_err_t code;
        if (!parse_int(argv[1], 0, INT16_MAX, &n) || !parse_int(argv[2], 1, 1000000, &m)) {
            snprintf(why, why_size, "errors APIKEY COUNT ERRNAME: bad APIKEY '%s' or COUNT '%s'", argv[1],
                     argv[2]);
            return false;
        }
        if (!parse_err(argv[3], &code)) {
            snprintf(why, why_size, "unknown error name '%s'", argv[3]);
            return false;
        }
        rd_kafka_resp_err_t *errs = malloc((size_t)m * sizeof *errs);
        if (!errs) {
            snprintf(why, why_size, "out of memory");
            return false;
        }
        for (long i = 0; i < m; i++)
            errs[i] = code;
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)n, (size_t)m, errs);
        free(errs);
    } else {
        snprintf(why, why_size,
                 "unknown command or wrong arguments: '%s' (create TOPIC PARTS, down ID, up ID, "
                 "rtt ID MS, errors APIKEY COUNT ERRNAME, quit)",
                 cmd);
        return false;
    }
    if (err) {
        snprintf(why, why_size, "%s: %s", cmd, rd_kafka_err2name(err));
        return false;
    }
    return true;
}

static void usage(void)
{
    fprintf(stderr, "usage: mq_kafka_mock [-b BROKERS] [-t TOPIC:PARTITIONS]...\n");
}

int main(int argc, char **argv)
{
    const char *topics[64];
    int ntopics = 0, c;
    long v;
    while ((c = getopt(argc, argv, "b:t:")) != -1) {
        switch (c) {
        case 'b':
            if (!parse_int(optarg, 1, 100, &v)) {
                fprintf(stderr, "mq_kafka_mock: -b '%s': expected 1..100 brokers\n", optarg);
                return 2;
            }
            brokers = (int)v;
            break;
        case 't':
            if (ntopics == (int)(sizeof topics / sizeof topics[0])) {
                fprintf(stderr, "mq_kafka_mock: at most %d -t options\n", ntopics);
                return 2;
            }
            topics[ntopics++] = optarg;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc) {
        usage();
        return 2;
    }

    /* The cluster lives in a client handle: its threads serve the brokers. A producer that never
     * produces is the lightest such handle; log_level 4 keeps its notice that it has no bootstrap.servers
     * of its own off stderr. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mq_kafka_mock: log_level: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "mq_kafka_mock: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "mq_kafka_mock: cannot start a mock cluster of %d brokers\n", brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    int status = 0;
    for (int i = 0; i < ntopics && status == 0; i++) {
        char name[256];
        const char *colon = strrchr(topics[i], ':');
        size_t len = colon ? (size_t)(colon - topics[i]) : 0;
        if (!colon || len == 0 || len >= sizeof name || !parse_int(colon + 1, 1, 100000, &v)) {
            fprintf(stderr, "mq_kafka_mock: -t '%s': expected TOPIC:PARTITIONS\n", topics[i]);
            status = 2;
            break;
        }
        memcpy(name, topics[i], len);
        name[len] = '\0';
        if (!create_topic(mc, name, v, errstr, sizeof errstr)) {
            fprintf(stderr, "mq_kafka_mock: %s\n", errstr);
            status = 1;
        }
    }

    if (status == 0) {
        printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
    }
    char *line = NULL;
    size_t cap = 0;
    bool quit = false;
    while (status == 0 && getline(&line, &cap, stdin) != -1) {
        char *words[8], *save = NULL;
        int nw = 0;
        for (char *w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
            if (nw == (int)(sizeof words / sizeof words[0]))
                break;
            words[nw++] = w;
        }
        if (nw == 0)
            continue;
        if (strcmp(words[0], "quit") == 0 && nw == 1) {
            quit = true;
            break;
        }
        if (run(mc, nw, words, errstr, sizeof errstr))
            printf("ok\n");
        else
            printf("error %s\n", errstr);
        fflush(stdout);
    }
    free(line);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (quit) { /* answered once the brokers' ports are closed */
        printf("ok\n");
        fflush(stdout);
    }
    return status;
}
