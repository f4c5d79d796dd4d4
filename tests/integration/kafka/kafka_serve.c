/*
 * kafka_serve.c - a test driver: opens a data directory for writing and serves it with the Kafka endpoint,
 * so that real Kafka clients can be tested before (and independently of) the daemon's wiring.
 *
 * Usage: kafka_serve -d DIR [-p PORT] [-f FLUSH_INTERVAL_MS] [-s MECHANISM[,MECHANISM...]] [-v]
 * -s requires SASL with those mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) before any other request.
 * Prints "port N" once listening, then reads commands from stdin, one per line, answering each on stdout:
 *   create TOPIC PARTITIONS           -> "ok" (or "exists")
 *   append TOPIC PARTITION N PREFIX [TS0]
 *                                     -> "ok FIRST_OFFSET": N records, key "key-I", value "PREFIX-I",
 *                                        header h="v-I", timestamp TS0 + I (TS0 default: now)
 *   stats                             -> "stats accepted=.. open=.. requests=.. protocol_errors=..
 * waiting=.. auth_failed=.." quit                              -> stops (so does end of input) Errors are
 * answered "error MESSAGE". The process exits 0 after a clean stop.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/server.h"
#include "sasl/sasl.h"
#include "store/store.h"
#include "util/diag.h"
#include "util/parse.h"

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void cmd_append(struct mq_store *store, char *args)
{
    char topic[256], prefix[128];
    long long part, n, ts0 = -1;
    int got = sscanf(args, "%255s %lld %lld %127s %lld", topic, &part, &n, prefix, &ts0);
    if (got < 4 || n < 1 || n > 100000 || part < 0 || part > INT32_MAX) {
        reply("error usage: append TOPIC PARTITION N PREFIX [TS0]");
        return;
    }
    if (got < 5)
        ts0 = mq_now_ms();
    struct mq_part *p = NULL;
    enum mq_err err = mq_store_part(store, topic, (int32_t)part, &p);
    if (err != MQ_OK) {
        reply("error %s", mq_strerror(err));
        return;
    }
    struct mq_record *recs = calloc((size_t)n, sizeof *recs);
    struct mq_header *hdrs = calloc((size_t)n, sizeof *hdrs);
    char(*keys)[32] = calloc((size_t)n, sizeof *keys);
    char(*vals)[160] = calloc((size_t)n, sizeof *vals);
    char(*hv)[32] = calloc((size_t)n, sizeof *hv);
    if (!recs || !hdrs || !keys || !vals || !hv) {
        reply("error out of memory");
        goto out;
    }
    for (long long i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "key-%lld", i);
        snprintf(vals[i], sizeof vals[i], "%s-%lld", prefix, i);
        snprintf(hv[i], sizeof hv[i], "v-%lld", i);
        hdrs[i] = (struct mq_header){"h", 1, hv[i], (int32_t)strlen(hv[i])};
        recs[i] = (struct mq_record){
            ts0 + i, keys[i], (int32_t)strlen(keys[i]), vals[i], (int32_t)strlen(vals[i]), &hdrs[i], 1};
    }
    /* Batches of at most 1000 records, as a connector would write them. */
    int64_t first = -1;
    for (long long i = 0; i < n; i += 1000) {
        size_t k = (size_t)(n - i < 1000 ? n - i : 1000);
        int64_t off = -1;
        err = mq_part_append(p, recs + i, k, &off);
        if (err != MQ_OK) {
            reply("error %s", mq_strerror(err));
            goto out;
        }
        if (first < 0)
            first = off;
    }
    err = mq_part_flush(p);
    if (err != MQ_OK)
        reply("error %s", mq_strerror(err));
    else
        reply("ok %lld", (long long)first);
out:
    free(recs);
    free(hdrs);
    free(keys);
    free(vals);
    free(hv);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int64_t port = 0, flush_ms = 5;
    unsigned sasl = 0;
    int opt;
    while ((opt = getopt(argc, argv, "d:p:f:s:v")) != -1) {
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            if (mq_parse_int64(optarg, 0, 65535, &port) != MQ_OK) {
                fprintf(stderr, "kafka_serve: bad port %s\n", optarg);
                return 2;
            }
            break;
        case 'f':
            if (mq_parse_int64(optarg, 0, 60000, &flush_ms) != MQ_OK) {
                fprintf(stderr, "kafka_serve: bad flush interval %s\n", optarg);
                return 2;
            }
            break;
        case 's':
            for (char *m = strtok(optarg, ","); m; m = strtok(NULL, ",")) {
                enum mq_sasl_mech mech;
                if (!mq_sasl_mech_parse(m, strlen(m), &mech)) {
                    fprintf(stderr, "kafka_serve: unknown SASL mechanism %s\n", m);
                    return 2;
                }
                sasl |= 1u << mech;
            }
            break;
        case 'v':
            mq_diag_level = MQ_LV_DEBUG;
            break;
        default:
            fprintf(stderr, "usage: kafka_serve -d DIR [-p PORT] [-f FLUSH_MS] [-s MECHANISMS] [-v]\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: kafka_serve -d DIR [-p PORT] [-f FLUSH_MS] [-s MECHANISMS] [-v]\n");
        return 2;
    }
    char errstr[256];
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = flush_ms;
    struct mq_store *store = NULL;
    enum mq_err err = mq_store_open(dir, MQ_STORE_WRITE, &lc, &store, errstr, sizeof errstr);
    if (err != MQ_OK) {
        fprintf(stderr, "kafka_serve: %s\n", errstr);
        return 1;
    }
    struct mq_kafka_server_conf conf;
    mq_kafka_server_conf_defaults(&conf);
    conf.port = (int)port;
    conf.sasl_mechanisms = sasl;
    struct mq_kafka_server *srv = NULL;
    err = mq_kafka_server_start(store, &conf, &srv, errstr, sizeof errstr);
    if (err != MQ_OK) {
        fprintf(stderr, "kafka_serve: %s\n", errstr);
        mq_store_close(store);
        return 1;
    }
    reply("port %d", mq_kafka_server_port(srv));

    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "append ", 7) == 0) {
            cmd_append(store, line + 7);
        } else if (strncmp(line, "create ", 7) == 0) {
            char topic[256];
            long long parts;
            if (sscanf(line + 7, "%255s %lld", topic, &parts) != 2 || parts < 1 || parts > 10000) {
                reply("error usage: create TOPIC PARTITIONS");
                continue;
            }
            err = mq_store_topic_create(store, topic, (int32_t)parts, NULL, errstr, sizeof errstr);
            if (err == MQ_OK)
                reply("ok");
            else if (err == MQ_ERR_EXISTS)
                reply("exists");
            else
                reply("error %s", errstr);
        } else if (strcmp(line, "stats") == 0) {
            struct mq_kafka_server_stats st;
            mq_kafka_server_stats(srv, &st);
            reply("stats accepted=%llu open=%llu requests=%llu protocol_errors=%llu waiting=%llu "
                  "auth_failed=%llu",
                  (unsigned long long)st.accepted, (unsigned long long)st.open,
                  (unsigned long long)st.requests, (unsigned long long)st.protocol_errors,
                  (unsigned long long)st.fetch_waiting, (unsigned long long)st.auth_failed);
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else if (line[0]) {
            reply("error unknown command");
        }
    }
    mq_kafka_server_stop(srv);
    err = mq_store_close(store);
    if (err != MQ_OK) {
        fprintf(stderr, "kafka_serve: closing the store: %s\n", mq_strerror(err));
        return 1;
    }
    return 0;
}
