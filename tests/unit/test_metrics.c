/*
 * test_metrics.c - the metric table and the Prometheus exposition writer (gateway/metrics/), and the HTTP
 * server (gateway/http/) that serves it, against a real socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "metrics/metrics.h"
#include "testutil.h"

/* Runs fn over a fresh writer and returns what it wrote (the caller frees it); *failed gets the verdict. */
static char *render(void (*fn)(struct mq_expo *e), bool *failed)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_FATAL(f != NULL);
    struct mq_expo e;
    mq_expo_init(&e, f);
    fn(&e);
    *failed = mq_expo_failed(&e);
    fclose(f);
    return buf;
}

/* Every name follows Prometheus' rules and ours: prefix, _total exactly on counters, base units. */
static void test_table_names(void)
{
    regex_t re;
    CU_ASSERT_FATAL(regcomp(&re, "^mqlog_[a-z0-9_]+$", REG_EXTENDED | REG_NOSUB) == 0);
    for (int m = 0; m < MQ_M_COUNT; m++) {
        const struct mq_metric_def *d = &mq_metric_defs[m];
        CU_ASSERT_PTR_NOT_NULL_FATAL(d->name);
        CU_ASSERT(regexec(&re, d->name, 0, NULL, 0) == 0);
        size_t n = strlen(d->name);
        bool total = n > 6 && strcmp(d->name + n - 6, "_total") == 0;
        CU_ASSERT_EQUAL(total, d->type == MQ_MT_COUNTER);
        CU_ASSERT(strstr(d->name, "_ms") == NULL && strstr(d->name, "milli") == NULL);
        CU_ASSERT(d->help && d->help[0] && d->group && d->group[0]);
        for (int k = 0; k < m; k++)
            CU_ASSERT(strcmp(mq_metric_defs[k].name, d->name) != 0);
        for (size_t i = 0; i < mq_metric_nlabels((enum mq_metric)m); i++)
            CU_ASSERT(strcmp(d->labels[i], "le") != 0 && strncmp(d->labels[i], "__", 2) != 0);
    }
    regfree(&re);
}

static void write_escapes(struct mq_expo *e)
{
    mq_expo_u64(e, MQ_M_BROKER_CONNECTS, (const char *[]){"a\"b\\c\nd"}, 3);
    mq_expo_u64(e, MQ_M_BROKER_CONNECTS, (const char *[]){"plain"}, UINT64_MAX);
}

static void test_label_escaping(void)
{
    bool failed;
    char *out = render(write_escapes, &failed);
    CU_ASSERT(!failed);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "# TYPE mqlog_broker_connects_total counter\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_broker_connects_total{broker=\"a\\\"b\\\\c\\nd\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "mqlog_broker_connects_total{broker=\"plain\"} 18446744073709551615\n"));
    /* one header for the family, however many samples */
    size_t helps = 0;
    for (const char *p = out; (p = strstr(p, "# HELP")) != NULL; p++)
        helps++;
    CU_ASSERT_EQUAL(helps, 1);
    free(out);
}

static void write_histo(struct mq_expo *e)
{
    struct mq_histo h;
    memset(&h, 0, sizeof h);
    mq_histo_add(&h, 50);       /* first bucket (<= 100 us) */
    mq_histo_add(&h, 100);      /* on the bound: still the first */
    mq_histo_add(&h, 3000);     /* <= 5 ms */
    mq_histo_add(&h, 99000000); /* beyond the last bound: +Inf only */
    struct mq_histo_snap s;
    mq_histo_read(&h, &s);
    mq_expo_histo(e, MQ_M_STORE_FLUSH_DURATION, NULL, &s);
}

static void test_histogram(void)
{
    bool failed;
    char *out = render(write_histo, &failed);
    CU_ASSERT(!failed);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "# TYPE mqlog_store_flush_duration_seconds histogram\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_store_flush_duration_seconds_bucket{le=\"0.0001\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_store_flush_duration_seconds_bucket{le=\"0.0025\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_store_flush_duration_seconds_bucket{le=\"0.005\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_store_flush_duration_seconds_bucket{le=\"10\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_store_flush_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_store_flush_duration_seconds_count 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_store_flush_duration_seconds_sum 99.00315\n"));
    /* buckets ascend, +Inf last among them */
    const char *inf = strstr(out, "le=\"+Inf\"");
    const char *ten = strstr(out, "le=\"10\"");
    CU_ASSERT(inf && ten && ten < inf);
    free(out);
}

static void write_values(struct mq_expo *e)
{
    mq_expo_double(e, MQ_M_FWD_LAG_SECONDS, (const char *[]){"f1"}, 1.5);
    mq_expo_double(e, MQ_M_FWD_LAG_SECONDS, (const char *[]){"f2"}, 0.0 / 0.0);
    mq_expo_double(e, MQ_M_FWD_LAG_SECONDS, (const char *[]){"f3"}, -1.0 / 0.0);
    mq_expo_i64(e, MQ_M_PART_END_OFFSET, (const char *[]){"t", "0"}, -1);
    mq_expo_u64(e, MQ_M_STORED, NULL, 7);
    mq_expo_family(e, MQ_M_GROUP_LAG);
}

static void test_values(void)
{
    bool failed;
    char *out = render(write_values, &failed);
    CU_ASSERT(!failed);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_forwarder_lag_seconds{forwarder=\"f1\"} 1.5\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_forwarder_lag_seconds{forwarder=\"f2\"} NaN\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_forwarder_lag_seconds{forwarder=\"f3\"} -Inf\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mqlog_partition_end_offset{topic=\"t\",partition=\"0\"} -1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nmqlog_messages_stored_total 7\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "# TYPE mqlog_consumer_group_lag_records gauge\n"));
    free(out);
}

/* A family resumed after another, or a histogram written as a gauge, would make an invalid exposition. */
static void write_split(struct mq_expo *e)
{
    mq_expo_u64(e, MQ_M_STORED, NULL, 1);
    mq_expo_u64(e, MQ_M_UNMATCHED, NULL, 1);
    mq_expo_u64(e, MQ_M_STORED, NULL, 2);
}

static void write_wrong_type(struct mq_expo *e)
{
    mq_expo_u64(e, MQ_M_STORE_FLUSH_DURATION, NULL, 1);
}

static void test_misuse_fails(void)
{
    bool failed;
    free(render(write_split, &failed));
    CU_ASSERT(failed);
    free(render(write_wrong_type, &failed));
    CU_ASSERT(failed);
}

/* ---- the HTTP server ---- */

static void answer(void *opaque, const char *path, struct mq_http_resp *resp)
{
    (*(int *)opaque)++;
    if (strcmp(path, "/x") == 0) {
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4";
        resp->body = strdup("hello\n");
        resp->len = 6;
    } else {
        resp->status = 404;
        resp->body = NULL;
    }
}

/* Sends req to 127.0.0.1:port and returns the whole answer (the server closes: Connection: close). */
static char *http_get(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    char *buf = calloc(1, 65536);
    size_t len = 0;
    ssize_t n;
    while (len < 65535 && (n = read(fd, buf + len, 65535 - len)) > 0)
        len += (size_t)n;
    close(fd);
    return buf;
}

static void test_http_server(void)
{
    int calls = 0;
    struct mq_http *http = NULL;
    char why[256] = "";
    CU_ASSERT_FATAL(mq_http_start("127.0.0.1", 0, answer, &calls, &http, why, sizeof why) == MQ_OK);
    int port = mq_http_port(http);
    CU_ASSERT(port > 0);
    char *r = http_get(port, "GET /x?y=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CU_ASSERT(strncmp(r, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "text/plain; version=0.0.4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\n\r\nhello\n"));
    free(r);
    r = http_get(port, "HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CU_ASSERT(strncmp(r, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_PTR_NULL(strstr(r, "hello"));
    free(r);
    r = http_get(port, "GET /nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CU_ASSERT(strncmp(r, "HTTP/1.1 404", 12) == 0);
    free(r);
    r = http_get(port, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    CU_ASSERT(strncmp(r, "HTTP/1.1 405", 12) == 0);
    free(r);
    CU_ASSERT_EQUAL(calls, 3);
    /* the port is taken: a second server there fails with a reason */
    struct mq_http *second = NULL;
    CU_ASSERT(mq_http_start("127.0.0.1", port, answer, &calls, &second, why, sizeof why) != MQ_OK);
    CU_ASSERT(why[0] != '\0');
    mq_http_stop(http);
    mq_http_stop(NULL);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_table_names),
        MQ_TEST(test_label_escaping),
        MQ_TEST(test_histogram),
        MQ_TEST(test_values),
        MQ_TEST(test_misuse_fails),
        MQ_TEST(test_http_server),
        MQ_TEST_END,
    };
    return mq_test_run("metrics", tests);
}
