/*
 * broker.h - a real mosquitto broker for tests: started on a free loopback port with a generated
 * configuration, waited for with a deadline, stopped and restarted on the same port.
 */
#ifndef MQ_TEST_BROKER_H
#define MQ_TEST_BROKER_H

#include <stdbool.h>
#include <sys/types.h>

struct mq_test_broker {
    char *dir; /* temporary directory with mosquitto.conf, its log and persistence */
    int port;  /* loopback port */
    pid_t pid; /* 0 when not running */
};

/* A free TCP port on 127.0.0.1 (bound and released: another process could take it, tests retry). */
int mq_test_free_port(void);

/*
 * Writes a configuration (listener <port> 127.0.0.1, allow_anonymous true, large queues, unlimited
 * in-flight, persistence in b->dir, plus `extra` lines, may be NULL) and starts `mosquitto -c`. Fails
 * (returns false and prints why) if mosquitto is not installed or does not accept connections within 10 s.
 * port 0 picks a free port. On success the caller owns b and calls mq_test_broker_stop + _free.
 */
bool mq_test_broker_start(struct mq_test_broker *b, int port, const char *extra);
/* SIGTERM, wait. Persistence is kept, so a restart on b->port resumes persistent sessions. */
void mq_test_broker_stop(struct mq_test_broker *b);
/* Starts it again with the same configuration and port. */
bool mq_test_broker_restart(struct mq_test_broker *b);
void mq_test_broker_free(struct mq_test_broker *b);
/* The number of lines of the broker's log (b->dir/mosquitto.log) that contain needle; -1 if unreadable. */
int mq_test_broker_log_count(const struct mq_test_broker *b, const char *needle);

#endif
