/*
 * harness.h - what the connector contract tests (contract.c) and each connector's own tests (<name>.c)
 * share: a real mosquitto broker (tests/broker.h), a configuration written as YAML and loaded like the
 * daemon's, a real store and ingest layer in a temporary directory, the connector's instances, a
 * libmosquitto publisher, and reading the stored stream back.
 *
 * One test executable per connector built (tests/CMakeLists.txt): contract.c + harness.c + <name>.c, where
 * <name>.c defines `mq_contract` below. Faults are injected without sleeps:
 *  - the store's fdatasync() blocks while the test holds a gate closed (tests/gate.h): nothing can become
 *    durable, so a durable-ack connector must not acknowledge;
 *  - pwrite() to the store's segment files fails with ENOSPC while disk_full is set (harness.c);
 *  - mq_ingest_message is wrapped at link time (-Wl,--wrap=mq_ingest_message): it answers MQ_ERR_FULL or
 *    slows down when a test sets the w_* variables, and otherwise calls the real function.
 */
#ifndef MQ_TEST_CONNECTOR_HARNESS_H
#define MQ_TEST_CONNECTOR_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>

#include "broker.h"
#include "config/config.h"
#include "connector.h"
#include "ingest/ingest.h"
#include "log/batch.h"
#include "log/log.h"
#include "testutil.h"

/* ---- what the connector's own test file provides ---- */

struct mq_contract {
    const struct mq_connector *conn;
    /* Sets up and tears down libmosquitto for the test's publisher (the mosquitto connector shares its
     * reference count, mosq.h). lib_init returns false on failure. */
    bool (*lib_init)(void);
    void (*lib_fini)(void);
    const struct mq_test *tests; /* the connector's own tests, MQ_TEST_END-terminated */
    /* The QoS a message of a QoS qos subscription arrives with (its mqtt.qos header): with durable_ack a
     * connector whose library answers PUBREC before handing a message over subscribes QoS 2 at QoS 1. */
    int (*delivered_qos)(int qos, int protocol, bool durable_ack);
};
extern const struct mq_contract mq_contract;

/* ---- the ingest wrapper and the full disk ---- */

extern atomic_long w_passed;        /* messages handed to the real ingest and accepted */
extern atomic_long w_full_after;    /* refuse (MQ_ERR_FULL) once this many passed; -1: never */
extern atomic_long w_full_ms;       /* ... for this long from the first refusal; -1: forever */
extern _Atomic int64_t w_full_from; /* monotonic ms of the first refusal, 0: none yet */
extern atomic_long w_full_count;    /* refusals given */
extern atomic_int w_delay_us;       /* sleep before each message (a slow store) */
void w_reset(void);

extern atomic_bool disk_full; /* while set, writes to the store's segment files fail with ENOSPC */
extern atomic_int disk_full_hits;

/* ---- the fixture ---- */

#define MAXSUBS     8
#define MAXINST     4
#define NTOPICS     4    /* messages go to t/<seq % NTOPICS> */
#define NMSG        3000 /* messages of a stream test */
#define MAX_PAYLOAD 1000

struct h {
    char *dir;
    struct mq_test_broker br;
    bool br_started;
    struct mq_config *cfg;
    struct mq_store *store;
    struct mq_ingest *ingest;
    char *filters[MAXSUBS];
    struct mq_subscription subs[MAXSUBS];
    size_t nsubs;
    void *inst[MAXINST];
    int ninst;
    struct mq_part *tpart; /* log topic "t", partition 0, once it exists */
};

extern int client_seq; /* makes client ids unique within the process */

/* Starts a broker for h (extra: lines for mosquitto.conf). */
bool h_broker(struct h *h, const char *extra);
/*
 * Writes and loads a configuration: one broker "b" of this connector (url to the test broker unless
 * broker_yaml sets one, plus broker_yaml's lines; durable_ack false unless it says), mappings t/# -> t and
 * ready -> ready at QoS qos, one partition each. Opens the store (with lc, or the defaults and the
 * configuration's flush interval) and the ingest layer and collects the broker's subscriptions.
 */
bool h_open(struct h *h, const char *broker_yaml, int qos, const struct mq_log_conf *lc);
/* h_open() at qos, one instance started (*inst), and a publisher at protocol whose "ready" probes the
 * instance has taken (its subscriptions are in place). Fails the test (CU_ASSERT_FATAL) otherwise. */
struct pub *h_start(struct h *h, const char *broker_yaml, int qos, int protocol, void **inst);
/* Creates and starts an instance for session; NULL on failure (logged). */
void *h_connector(struct h *h, int session);
struct mq_connector_stats h_stats(void *inst);
void h_stop(struct h *h);  /* stops and destroys every instance */
void h_close(struct h *h); /* everything, and resets the ingest wrapper */
int64_t h_tcount(struct h *h);
bool h_wait_records(struct h *h, int64_t n, int64_t timeout_ms);
/* Calls fn for every record of log topic `topic` partition 0, after making everything durable. Returns the
 * number of records, or -1 when reading failed. */
int64_t h_read(struct h *h, const char *topic, void (*fn)(void *opaque, const struct mq_record_view *rv),
               void *opaque);
const char *rec_header(const struct mq_record_view *rv, const char *key, int32_t *len);
bool rec_header_is(const struct mq_record_view *rv, const char *key, const char *want);
void dump_broker_log(struct h *h);
bool connected_once(void *inst); /* mq_test_wait condition: the instance has connected */

/* A broker log line count reaching target (mq_test_wait condition). */
struct log_wait {
    struct h *h;
    const char *needle;
    int target;
};
bool log_reached(void *opaque);
/* Waits (10 s at most) until the broker's log shows an acknowledgement `ack` ("PUBACK", "PUBREC") from
 * the connector for every PUBLISH it sent it (needs log_type all): nothing is in flight any more. */
bool acked_all(struct h *h, const char *ack);
/* Waits until every seq in [0, n) is in log topic t (duplicates do not count twice). */
bool h_wait_all(struct h *h, int n, int64_t timeout_ms);
void print_missing(struct h *h, int n); /* on a failure: the ranges of seqs never stored */

/* ---- the publisher ---- */

struct pub {
    struct mosquitto *m;
    atomic_int published; /* on_publish calls: QoS 0 written, QoS 1 PUBACK, QoS 2 PUBCOMP */
    atomic_int connack;   /* 0 none yet, 1 accepted, -1 refused */
};

/* A connected publisher (tlsdir: use ca.pem and client.pem/client.key from there). */
struct pub *pub_new(int port, int protocol, const char *tlsdir, const char *user, const char *password);
void pub_free(struct pub *p);
/* Publishes seq [from, to) on t/<seq % NTOPICS> at qos (payload: the number, then filler up to 100 bytes,
 * or size) and waits until the broker has them all. */
bool pub_stream(struct pub *p, int from, int to, int qos);
bool pub_stream_sized(struct pub *p, int from, int to, int qos, int size);
/* Publishes on "ready" until every instance of h has taken at least one message (its subscriptions are in
 * place: "ready" is subscribed in the same SUBSCRIBE as "t/#"). */
bool wait_ready(struct h *h, struct pub *p, int qos);

/* Reads log topic t: every record well-formed (payload, mqtt.topic, mqtt.broker, mqtt.qos when qos is not
 * NULL); *missing and *dups count seqs in [0, n) stored never / more than once, *out_of_order the records
 * that came before a smaller seq of their MQTT topic. */
bool check_stream(struct h *h, int n, const char *qos, int *missing, int *dups, int *out_of_order);
/* check_stream() asserting every seq once and in order; false (and the counts on stderr) when not. */
bool assert_exactly_once(struct h *h, int n, const char *qos);

/* ---- durability ---- */

/* Closes the fdatasync gate and publishes seq at qos; asserts that the store took the record and that its
 * flush is stuck in the gate (nothing can become durable until mq_test_gate_set(false)). */
void gate_close_and_publish(struct h *h, struct pub *p, int seq, int qos);
/* Publishes on an unsubscribed topic and waits until the broker logged it: whatever the broker would log
 * about what it sent us before has been logged by then. */
void broker_logs_later(struct h *h, struct pub *p);

/* ---- files ---- */

bool run_cmd(const char *cmd);
/* A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in dir. */
bool make_certs(const char *dir);

#endif
