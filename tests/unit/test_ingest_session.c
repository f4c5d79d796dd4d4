/*
 * test_ingest_session.c - the redelivery guard of a broker session (gateway/ingest/session.h) over a real
 * store: a redelivery of a stored message (same packet id, topic and payload) is not stored again after a
 * restart or a reconnect, and its ticket names the records stored before; a message with DUP clear, another
 * payload, a reused packet id, a packet id older than the window or a session the broker did not keep is
 * stored; a noted record that never reached the log (cut off by a crash) is found out when the guard opens,
 * and its redelivery is stored; a message published twice with the same payload is stored twice; the same
 * redeliveries recognised after kill upon kill, or one message the store refused 40,000 times, leave the
 * candidates' cover and the redeliveries' window as they were (the crash tests' duplicates under load). With
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
#include "ingest/session.h"
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
    struct env e = {.mode = MQ_DEDUP_PACKET_ID};
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
    struct env e = {.mode = MQ_DEDUP_PACKET_ID};
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

/* Sends n messages "v<pid>" of the session (DUP as dup) without waiting for each (one wait at the end). */
static void send_many(struct env *e, int from, int n, int dup)
{
    char payload[32];
    struct mq_ticket t = {.n = 0};
    for (int pid = from; pid < from + n; pid++) {
        snprintf(payload, sizeof payload, "v%d", pid);
        struct mq_source_msg m = msg_of(e, "s/a", payload, pid, dup);
        CU_ASSERT_EQUAL_FATAL(mq_ingest_message(e->in, "b1", &m, &t), MQ_OK);
    }
    CU_ASSERT_EQUAL(mq_ingest_wait(e->in, &t, 10000), MQ_OK);
}

static void test_window(void)
{
    struct env e = {.mode = MQ_DEDUP_PACKET_ID};
    env_open(&e, 2); /* candidates: the last 30,000 stored messages, whatever the window */
    mq_ingest_session_connected(e.rx, false);
    send_many(&e, 1, 30016, 0);
    mq_ingest_session_connected(e.rx, true);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v16", 16, 1), 1); /* too old to be in flight still */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v17", 17, 1), 0);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v30016", 30016, 1), 0);
    env_close(&e);
}

/* The broker sends messages pid from..from+n-1 ("v<pid>") again, DUP unknown (libmosquitto): none may be
 * stored. */
static void redeliver_many(struct env *e, int from, int n)
{
    struct mq_ingest_stats before, after;
    mq_ingest_stats(e->in, &before);
    send_many(e, from, n, -1);
    mq_ingest_stats(e->in, &after);
    CU_ASSERT_EQUAL(after.records - before.records, 0);
    CU_ASSERT_EQUAL(after.redelivered - before.redelivered, (uint64_t)n);
}

/* A process killed before its acknowledgements went out, again and again (a loaded machine, mosquitto's
 * in-flight set thousands deep): every new connection brings the same stored messages once more. The
 * candidates' cover counts stored messages, so recognising the redeliveries must not push the oldest of
 * them out of it, however often they come. */
static void test_redelivered_again_and_again(void)
{
    struct env e = {.mode = MQ_DEDUP_PACKET_ID};
    env_open(&e, 2);
    mq_ingest_session_connected(e.rx, false);
    send_many(&e, 1, 8000, 0);
    for (int round = 0; round < 3; round++) { /* 24,000 redeliveries: with the 8,000, more than the cover */
        env_stop(&e);
        env_start(&e, 2);
        mq_ingest_session_connected(e.rx, true);
        redeliver_many(&e, 1, 8000);
        /* and a new one before the next kill, under the next packet id */
        CU_ASSERT_EQUAL(send(&e, "s/a", round == 0 ? "n0" : round == 1 ? "n1" : "n2", 8001 + round, 0), 1);
    }
    env_stop(&e);
    env_start(&e, 2);
    mq_ingest_session_connected(e.rx, true);
    redeliver_many(&e, 1, 8000);
    CU_ASSERT_EQUAL(count(&e, "t", 0), 8003);
    env_close(&e);
}

/* A message the store refuses (MQ_ERR_FULL) comes again from the connector (mq_hold_store(): a retry every
 * 1 to 50 ms, for as long as the push-back lasts). Each attempt is looked up and given a note, as ingest
 * does, but it is one message: its attempts must neither close the redeliveries' window nor move the
 * cover. */
static void test_refused_attempts(void)
{
    struct env e = {.mode = MQ_DEDUP_PACKET_ID};
    env_open(&e, 2);
    mq_ingest_session_connected(e.rx, false);
    send_many(&e, 1, 100, 0);
    env_stop(&e);
    env_start(&e, 2);
    mq_ingest_session_connected(e.rx, true);
    uint64_t digest = mq_rx_digest("s/a", 3, "v1", 2);
    struct mq_rx_match m;
    struct mq_rx_note note;
    int recognised = 0;
    for (int attempt = 0; attempt < 40000; attempt++) { /* half an hour of 50 ms retries */
        recognised += mq_rx_session_match(e.rx, 1, digest, -1, &m);
        mq_rx_session_begin(e.rx, 1, 1, digest, 1700000000001, &note);
    }
    CU_ASSERT_EQUAL(recognised, 40000);
    CU_ASSERT_EQUAL(send(&e, "s/a", "v1", 1, -1), 0); /* the store has room at last: recognised */
    CU_ASSERT_EQUAL(send(&e, "s/a", "v2", 2, -1), 0); /* and the redeliveries after it are still known */
    env_stop(&e);
    env_start(&e, 2); /* nor did the attempts use up the cover of the next connection */
    mq_ingest_session_connected(e.rx, true);
    redeliver_many(&e, 1, 100);
    CU_ASSERT_EQUAL(count(&e, "t", 0), 100);
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
    struct env e = {.mode = MQ_DEDUP_PACKET_ID};
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
        MQ_TEST(test_redelivery_after_restart),
        MQ_TEST(test_same_payload_twice),
        MQ_TEST(test_window),
        MQ_TEST(test_note_without_record),
        MQ_TEST(test_payload_mode),
        MQ_TEST(test_redelivered_again_and_again),
        MQ_TEST(test_refused_attempts),
        MQ_TEST_END,
    };
    return mq_test_run("ingest_session", tests);
}
