/*
 * test_ingest_session.c - the redelivery guard of a broker session (gateway/ingest/session.h) over a real
 * store: a redelivery of a stored message (same packet id, topic and payload) is not stored again after a
 * restart or a reconnect, and its ticket names the records stored before; a message with DUP clear, another
 * payload, a reused packet id, a packet id older than the window or a session the broker did not keep is
 * stored; a noted record that never reached the log (cut off by a crash) is found out when the guard opens,
 * and its redelivery is stored; a message published twice with the same payload is stored twice. With
 * dedup: payload (renumbering brokers) the topic and payload decide, each stored message matched once.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "ingest/ingest.h"
#include "store/store.h"
#include "testutil.h"
#include "util/diag.h"

static const char *YAML = "brokers:\n"
                          "  - {name: b1, url: \"mqtt://127.0.0.1:1\"}\n"
                          "mappings:\n"
                          "  - from: \"s/#\"\n"
                          "    to: t\n"
                          "  - from: \"s/both/#\"\n"
                          "    to: u\n"
                          "    partitions: 2\n";

struct env {
    char *dir;
    char data[1024];
    struct mq_store *store;
    struct mq_ingest *in;
    struct mq_rx_session *rx;
    int mode; /* enum mq_dedup */
};

static void env_start(struct env *e, int64_t window)
{
    char path[1100], why[256];
    snprintf(path, sizeof path, "%s/mqlogd.yaml", e->dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(YAML, f);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
    struct mq_config *cfg = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_config_load(path, &cfg, NULL, NULL), MQ_OK);
    struct mq_ingest_routes *r = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_ingest_routes_new(cfg, &r, why, sizeof why), MQ_OK);
    mq_config_free(cfg);
    struct mq_log_conf lc;
    mq_log_conf_defaults(&lc);
    lc.flush_interval_ms = 0; /* every append durable at once: one batch per message */
    CU_ASSERT_EQUAL_FATAL(mq_store_open(e->data, MQ_STORE_WRITE, &lc, &e->store, why, sizeof why), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_ingest_new(e->store, r, &e->in, why, sizeof why), MQ_OK);
    CU_ASSERT_EQUAL_FATAL(mq_ingest_session_get(e->in, "b1", "c1", window, e->mode, &e->rx, why, sizeof why),
                          MQ_OK);
}

static void env_stop(struct env *e)
{
    mq_ingest_session_put(e->in, e->rx);
    mq_ingest_free(e->in);
    CU_ASSERT_EQUAL(mq_store_close(e->store), MQ_OK);
}

static void env_open(struct env *e, int64_t window)
{
    e->dir = mq_test_tmpdir("ingest_session");
    snprintf(e->data, sizeof e->data, "%s/data", e->dir);
    env_start(e, window);
}

static void env_close(struct env *e)
{
    env_stop(e);
    mq_test_rmdir(e->dir);
}

/* A QoS 1 message of the session. */
static struct mq_source_msg msg_of(struct env *e, const char *topic, const char *payload, int pid, int dup)
{
    return (struct mq_source_msg){.topic = topic,
                                  .topic_len = strlen(topic),
                                  .payload = payload,
                                  .payload_len = strlen(payload),
                                  .qos = 1,
                                  .timestamp = 1700000000000 + pid,
                                  .session = e->rx,
                                  .packet_id = pid,
                                  .dup = dup};
}

/* Sends one QoS 1 message of the session and waits until it is durable; returns the records it produced. */
static int send(struct env *e, const char *topic, const char *payload, int pid, int dup)
{
    struct mq_source_msg m = msg_of(e, topic, payload, pid, dup);
    struct mq_ingest_stats before, after;
    mq_ingest_stats(e->in, &before);
    struct mq_ticket t;
    CU_ASSERT_EQUAL_FATAL(mq_ingest_message(e->in, "b1", &m, &t), MQ_OK);
    CU_ASSERT_TRUE(t.n > 0); /* a stored or a recognised message: either way a ticket to wait for */
    CU_ASSERT_EQUAL(mq_ingest_wait(e->in, &t, 10000), MQ_OK);
    mq_ingest_session_sync(e->rx); /* as a batch-acknowledging connector does before its acks */
    mq_ingest_stats(e->in, &after);
    return (int)(after.records - before.records);
}

static int64_t count(struct env *e, const char *topic, int32_t p)
{
    struct mq_part *part = NULL;
    if (mq_store_part(e->store, topic, p, &part) != MQ_OK)
        return 0;
    int64_t start = 0, end = 0;
    CU_ASSERT_EQUAL(mq_part_offsets(part, &start, &end), MQ_OK);
    return end - start;
}

static void test_redelivery_after_restart(void)
{
    struct env e;
    env_open(&e, 100);
    mq_ingest_session_connected(e.rx, false);
    char payload[32];
    for (int pid = 1; pid <= 10; pid++) {
        snprintf(payload, sizeof payload, "v%d", pid);
        CU_ASSERT_EQUAL(send(&e, "s/a", payload, pid, 0), 1);
    }
    CU_ASSERT_EQUAL(send(&e, "s/both/x", "two", 11, 0), 2); /* into t and u */
    env_stop(&e);

    env_start(&e, 100); /* a new process: the guard checks its notes against the log */
    mq_ingest_session_connected(e.rx, true);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v5", 5, 1), 0);        /* a redelivery: not stored again */
    CU_ASSERT_EQUAL(send(&e, "s/both/x", "two", 11, 1), 0); /* in both topics */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v8", 8, -1), 0);       /* DUP unknown (libmosquitto): the id decides */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v7", 7, 0), 1);        /* DUP clear: a new message, whatever it holds */
    CU_ASSERT_EQUAL(send(&e, "s/a", "other", 6, 1), 1);     /* another payload under the id: new */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v6", 6, 1), 1);        /* ...which retired the candidate of 6 */
    CU_ASSERT_EQUAL(send(&e, "s/b", "v4", 4, 1), 1);        /* another topic: new */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v3", 99, 1), 1); /* renumbered: stored again (and a warning says why) */
    CU_ASSERT_EQUAL(count(&e, "t", 0), 11 + 5);
    CU_ASSERT_EQUAL(count(&e, "u", 0) + count(&e, "u", 1), 1);
    struct mq_ingest_stats st;
    mq_ingest_stats(e.in, &st);
    CU_ASSERT_EQUAL(st.redelivered, 3);

    /* a reconnect in the same process: what was stored since is a candidate too */
    mq_ingest_session_connected(e.rx, true);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v6", 6, 1), 0);
    /* a session the broker did not keep: nothing is a redelivery */
    mq_ingest_session_connected(e.rx, false);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v9", 9, 1), 1);
    env_close(&e);
}

static void test_same_payload_twice(void)
{
    struct env e;
    env_open(&e, 100);
    mq_ingest_session_connected(e.rx, false);
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 1, 0), 1);
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 2, 0), 1);
    env_stop(&e);
    env_start(&e, 100);
    mq_ingest_session_connected(e.rx, true);
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 2, 1), 0); /* the second one again */
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 3, 0), 1); /* and a third, published later */
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 4, 0), 1);
    CU_ASSERT_EQUAL(count(&e, "t", 0), 4);
    env_close(&e);
}

/* Stores n messages "v<pid>" of the session without waiting for each (one wait at the end). */
static void send_many(struct env *e, int from, int n)
{
    char payload[32];
    struct mq_ticket t = {.n = 0};
    for (int pid = from; pid < from + n; pid++) {
        snprintf(payload, sizeof payload, "v%d", pid);
        struct mq_source_msg m = msg_of(e, "s/a", payload, pid, 0);
        CU_ASSERT_EQUAL_FATAL(mq_ingest_message(e->in, "b1", &m, &t), MQ_OK);
    }
    CU_ASSERT_EQUAL(mq_ingest_wait(e->in, &t, 10000), MQ_OK);
}

static void test_window(void)
{
    struct env e;
    env_open(&e, 2); /* candidates: the last 16384 messages at least (2 x window when that is more) */
    mq_ingest_session_connected(e.rx, false);
    send_many(&e, 1, 16400);
    mq_ingest_session_connected(e.rx, true);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v16", 16, 1), 1); /* too old to be in flight still */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v17", 17, 1), 0);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v16400", 16400, 1), 0);
    env_close(&e);
}

/* The size of t-0's only segment file. */
static off_t segment_size(struct env *e)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/t-0/00000000000000000000.log", e->data);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    return st.st_size;
}

static void test_note_without_record(void)
{
    struct env e;
    env_open(&e, 100);
    mq_ingest_session_connected(e.rx, false);
    CU_ASSERT_EQUAL(send(&e, "s/a", "x1", 1, 0), 1);
    CU_ASSERT_EQUAL(send(&e, "s/a", "x2", 2, 0), 1);
    off_t cut = segment_size(&e);
    CU_ASSERT_EQUAL(send(&e, "s/a", "x3", 3, 0), 1);
    env_stop(&e);
    /* the crash came after the note of x3 and before its batch reached the file */
    char path[1200];
    snprintf(path, sizeof path, "%s/t-0/00000000000000000000.log", e.data);
    CU_ASSERT_EQUAL_FATAL(truncate(path, cut), 0);
    snprintf(path, sizeof path, "%s/t-0/recovery-point", e.data);
    CU_ASSERT_EQUAL(unlink(path), 0); /* as after a kill: recovery scans the segment */
    snprintf(path, sizeof path, "%s/t-0/00000000000000000000.index", e.data);
    unlink(path);

    env_start(&e, 100);
    CU_ASSERT_EQUAL(count(&e, "t", 0), 2);
    mq_ingest_session_connected(e.rx, true);
    CU_ASSERT_EQUAL(send(&e, "s/a", "x2", 2, 1), 0); /* stored before */
    CU_ASSERT_EQUAL(send(&e, "s/a", "x3", 3, 1), 1); /* lost with the crash: stored now */
    CU_ASSERT_EQUAL(count(&e, "t", 0), 3);
    env_close(&e);
}

/* dedup: payload, for brokers that renumber redeliveries (RabbitMQ) */
static void test_payload_mode(void)
{
    struct env e = {.mode = MQ_DEDUP_PAYLOAD};
    env_open(&e, 3);
    mq_ingest_session_connected(e.rx, false);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v1", 1, 0), 1);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v2", 2, 0), 1);
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 3, 0), 1);
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 4, 0), 1);
    env_stop(&e);
    env_start(&e, 3);
    mq_ingest_session_connected(e.rx, true);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v2", 1, 1), 0);  /* renumbered: the payload decides */
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 2, 1), 0);  /* one of the two */
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 3, -1), 0); /* the other (DUP unknown, 3rd after connect) */
    CU_ASSERT_EQUAL(send(&e, "s/a", "on", 4, 1), 1);  /* a third one is new */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v1", 5, -1), 1); /* DUP unknown past the window: new */
    CU_ASSERT_EQUAL(send(&e, "s/b", "v1", 6, 1), 1);  /* another topic: new */
    CU_ASSERT_EQUAL(count(&e, "t", 0), 4 + 3);
    env_close(&e);
}

int main(void)
{
    mq_diag_level = MQ_LV_WARN;
    static const struct mq_test tests[] = {
        MQ_TEST(test_redelivery_after_restart), MQ_TEST(test_same_payload_twice), MQ_TEST(test_window),
        MQ_TEST(test_note_without_record),      MQ_TEST(test_payload_mode),       MQ_TEST_END,
    };
    return mq_test_run("ingest_session", tests);
}
