/*
 * rdkafka_consumer.c - a librdkafka consumer in a consumer group (subscribe()), driven line by line for the
 * integration tests.
 *
 * Usage: rdkafka_consumer -b HOST:PORT -g GROUP -t TOPIC [-i INSTANCE] [-s SESSION_MS] [-d]
 *   -i: a static member (group.instance.id INSTANCE); -s: session.timeout.ms (default 6000);
 *   -d: librdkafka debug "cgrp,protocol,broker" to stderr
 * Prints, one line each (stdout, flushed):
 *   assigned T:P[,T:P...]   (empty list: "assigned -") after every rebalance assignment
 *   revoked                 when its partitions are taken away
 *   msg P OFFSET KEY VALUE  for every record consumed
 *   committed ERR           after a "commit" command (ERR: "0" or librdkafka's error name)
 *   error ERR               for consumer errors
 *   closed                  after "quit": the consumer left its group cleanly
 * Commands on stdin: "commit" (synchronous commit of the consumed positions), "quit".
 * Offsets are only committed on request (enable.auto.commit=false); new groups start at the earliest.
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_assignment(const rd_kafka_topic_partition_list_t *parts)
{
    printf("assigned ");
    if (parts->cnt == 0)
        printf("-");
    for (int i = 0; i < parts->cnt; i++)
        printf("%s%s:%d", i ? "," : "", parts->elems[i].topic, (int)parts->elems[i].partition);
    printf("\n");
    fflush(stdout);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        print_assignment(parts);
    } else {
        rd_kafka_assign(rk, NULL);
        printf("revoked\n");
        fflush(stdout);
    }
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "rdkafka_consumer: %s=%s: %s\n", k, v, errstr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *group = NULL, *topic = NULL, *instance = NULL, *session = "6000";
    int debug = 0, opt;
    while ((opt = getopt(argc, argv, "b:g:t:i:s:d")) != -1) {
        switch (opt) {
        case 'b':
            brokers = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'i':
            instance = optarg;
            break;
        case 's':
            session = optarg;
            break;
        case 'd':
            debug = 1;
            break;
        default:
            break;
        }
    }
    if (!brokers || !group || !topic) {
        fprintf(stderr,
                "usage: rdkafka_consumer -b HOST:PORT -g GROUP -t TOPIC [-i INSTANCE] [-s SESSION_MS] "
                "[-d]\n");
        return 2;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", brokers) || set(conf, "group.id", group) ||
        set(conf, "auto.offset.reset", "earliest") || set(conf, "enable.auto.commit", "false") ||
        set(conf, "session.timeout.ms", session) || set(conf, "heartbeat.interval.ms", "300") ||
        (instance && set(conf, "group.instance.id", instance)) || set(conf, "fetch.wait.max.ms", "200") ||
        set(conf, "enable.partition.eof", "false") || (debug && set(conf, "debug", "cgrp,protocol,broker"))) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "rdkafka_consumer: %s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        fprintf(stderr, "rdkafka_consumer: subscribe: %s\n", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return 1;
    }

    char line[256];
    size_t line_len = 0;
    int quit = 0;
    while (!quit) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m) {
            if (m->err) {
                printf("error %s\n", rd_kafka_err2name(m->err));
            } else {
                printf("msg %d %lld %.*s %.*s\n", (int)m->partition, (long long)m->offset, (int)m->key_len,
                       (const char *)m->key, (int)m->len, (const char *)m->payload);
            }
            fflush(stdout);
            rd_kafka_message_destroy(m);
        }
        struct pollfd p = {0, POLLIN, 0};
        while (!quit && poll(&p, 1, 0) == 1) {
            char c;
            ssize_t r = read(0, &c, 1);
            if (r <= 0) {
                quit = 1; /* end of input */
                break;
            }
            if (c != '\n') {
                if (line_len < sizeof line - 1)
                    line[line_len++] = c;
                continue;
            }
            line[line_len] = '\0';
            line_len = 0;
            if (strcmp(line, "commit") == 0) {
                err = rd_kafka_commit(rk, NULL, 0);
                printf("committed %s\n", err ? rd_kafka_err2name(err) : "0");
                fflush(stdout);
            } else if (strcmp(line, "quit") == 0) {
                quit = 1;
            }
        }
    }
    err = rd_kafka_consumer_close(rk);
    printf("closed %s\n", err ? rd_kafka_err2name(err) : "0");
    fflush(stdout);
    rd_kafka_destroy(rk);
    return 0;
}
