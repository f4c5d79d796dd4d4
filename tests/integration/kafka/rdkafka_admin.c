/*
 * rdkafka_admin.c - librdkafka's admin client for the integration tests: the consumer group calls that
 * confluent-kafka 2.x's AdminClient makes (list_consumer_groups, describe_consumer_groups,
 * delete_consumer_groups) on the librdkafka Debian ships, which the python3-confluent-kafka of Debian
 * (1.7) does not wrap yet.
 *
 * Usage: rdkafka_admin -b HOST:PORT list
 *        rdkafka_admin -b HOST:PORT describe GROUP...
 *        rdkafka_admin -b HOST:PORT delete GROUP...
 * Prints one line per result (stdout):
 *   group ID STATE simple=0|1                        (list)
 *   group ID STATE assignor=NAME members=N           (describe), then per member:
 *   member CONSUMER_ID CLIENT_ID HOST T:P[,T:P...]   (assignment; "-" when none)
 *   deleted ID ERR                                   (delete; ERR "0" or librdkafka's error name)
 *   error MESSAGE                                    for a failed request or group
 * Exits 0 when the request itself succeeded (per-group errors are printed, not fatal), 1 otherwise.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_MS 20000

static void print_partitions(const rd_kafka_topic_partition_list_t *parts)
{
    if (!parts || parts->cnt == 0)
        printf("-");
    for (int i = 0; parts && i < parts->cnt; i++)
        printf("%s%s:%d", i ? "," : "", parts->elems[i].topic, (int)parts->elems[i].partition);
}

static int on_list(rd_kafka_event_t *ev)
{
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t n = 0, ne = 0;
    const rd_kafka_ConsumerGroupListing_t **gs = rd_kafka_ListConsumerGroups_result_valid(res, &n);
    const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &ne);
    for (size_t i = 0; i < n; i++)
        printf("group %s %s simple=%d\n", rd_kafka_ConsumerGroupListing_group_id(gs[i]),
               rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(gs[i])),
               rd_kafka_ConsumerGroupListing_is_simple_consumer_group(gs[i]));
    for (size_t i = 0; i < ne; i++)
        printf("error %s\n", rd_kafka_error_string(errs[i]));
    return ne ? 1 : 0;
}

static int on_describe(rd_kafka_event_t *ev)
{
    const rd_kafka_DescribeConsumerGroups_result_t *res = rd_kafka_event_DescribeConsumerGroups_result(ev);
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **gs = rd_kafka_DescribeConsumerGroups_result_groups(res, &n);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_error_t *err = rd_kafka_ConsumerGroupDescription_error(gs[i]);
        if (err) {
            printf("error %s: %s\n", rd_kafka_ConsumerGroupDescription_group_id(gs[i]),
                   rd_kafka_error_string(err));
            continue;
        }
        size_t nm = rd_kafka_ConsumerGroupDescription_member_count(gs[i]);
        printf("group %s %s assignor=%s members=%zu\n", rd_kafka_ConsumerGroupDescription_group_id(gs[i]),
               rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(gs[i])),
               rd_kafka_ConsumerGroupDescription_partition_assignor(gs[i]), nm);
        for (size_t j = 0; j < nm; j++) {
            const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(gs[i], j);
            printf("member %s %s %s ", rd_kafka_MemberDescription_consumer_id(m),
                   rd_kafka_MemberDescription_client_id(m), rd_kafka_MemberDescription_host(m));
            const rd_kafka_MemberAssignment_t *a = rd_kafka_MemberDescription_assignment(m);
            print_partitions(a ? rd_kafka_MemberAssignment_partitions(a) : NULL);
            printf("\n");
        }
    }
    return 0;
}

static int on_delete(rd_kafka_event_t *ev)
{
    const rd_kafka_DeleteGroups_result_t *res = rd_kafka_event_DeleteGroups_result(ev);
    size_t n = 0;
    const rd_kafka_group_result_t **gs = rd_kafka_DeleteGroups_result_groups(res, &n);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_error_t *err = rd_kafka_group_result_error(gs[i]);
        printf("deleted %s %s\n", rd_kafka_group_result_name(gs[i]), err ? rd_kafka_error_name(err) : "0");
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "b:")) != -1) {
        if (opt != 'b') {
            fprintf(stderr, "usage: rdkafka_admin -b HOST:PORT list|describe GROUP...|delete GROUP...\n");
            return 2;
        }
        brokers = optarg;
    }
    if (!brokers || optind >= argc) {
        fprintf(stderr, "rdkafka_admin: -b and a command are required\n");
        return 2;
    }
    const char *cmd = argv[optind++];
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "rdkafka_admin: %s\n", errstr);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "rdkafka_admin: %s\n", errstr);
        return 2;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_request_timeout(opts, TIMEOUT_MS, errstr, sizeof errstr);
    int ngroups = argc - optind;
    rd_kafka_DeleteGroup_t **dels = NULL;
    if (strcmp(cmd, "list") == 0) {
        rd_kafka_ListConsumerGroups(rk, opts, q);
    } else if (strcmp(cmd, "describe") == 0 && ngroups > 0) {
        rd_kafka_DescribeConsumerGroups(rk, (const char **)&argv[optind], (size_t)ngroups, opts, q);
    } else if (strcmp(cmd, "delete") == 0 && ngroups > 0) {
        dels = calloc((size_t)ngroups, sizeof *dels);
        for (int i = 0; dels && i < ngroups; i++)
            dels[i] = rd_kafka_DeleteGroup_new(argv[optind + i]);
        if (dels)
            rd_kafka_DeleteGroups(rk, dels, (size_t)ngroups, opts, q);
    } else {
        fprintf(stderr, "rdkafka_admin: unknown command or no group: %s\n", cmd);
        return 2;
    }
    int rc = 1;
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
    if (!ev) {
        printf("error no result within %d ms\n", TIMEOUT_MS + 5000);
    } else if (rd_kafka_event_error(ev)) {
        printf("error %s\n", rd_kafka_event_error_string(ev));
    } else {
        switch (rd_kafka_event_type(ev)) {
        case RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT:
            rc = on_list(ev);
            break;
        case RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT:
            rc = on_describe(ev);
            break;
        case RD_KAFKA_EVENT_DELETEGROUPS_RESULT:
            rc = on_delete(ev);
            break;
        default:
            printf("error unexpected event %s\n", rd_kafka_event_name(ev));
            break;
        }
    }
    fflush(stdout);
    if (ev)
        rd_kafka_event_destroy(ev);
    if (dels)
        rd_kafka_DeleteGroup_destroy_array(dels, (size_t)ngroups);
    free(dels);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
