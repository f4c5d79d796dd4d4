/*
 * server.h - the read-only Kafka endpoint: a listener that serves a data directory's topics to Kafka
 * consumers (kcat, librdkafka, kafka-python, Java clients) over the Kafka wire protocol.
 *
 * One thread runs an epoll event loop over every connection (non-blocking sockets). As Kafka does, each
 * connection is served one request at a time, in order: later pipelined requests wait in the connection's
 * input buffer until the current one is answered, so responses always go out in request order. No client
 * can hold the loop or the memory: a connection gets a few requests handled per turn of the loop, its
 * unsent answers are bounded in bytes (max_queued_bytes; then it is not read), a client that stops reading
 * is closed (send_timeout), requests list at most max_request_partitions, and connections are limited in
 * number overall and per address, with refusals logged at most every 10 s with their count. A request
 * larger than max_request_bytes, one that cannot be parsed, or a connection error closes that connection
 * only. A request for an API or version not served is handled as Kafka handles it: ApiVersions gets
 * Kafka's v0 fallback response (UNSUPPORTED_VERSION and the versions served), any other such request
 * closes its connection. The endpoint is read-only: Produce is answered with TOPIC_AUTHORIZATION_FAILED,
 * InitProducerId (idempotent producers) with CLUSTER_AUTHORIZATION_FAILED. Admin tools can list, describe
 * and delete consumer groups and describe topic configurations and the cluster (admin.c).
 *
 * Listeners: the endpoint may listen on several addresses, each plaintext or TLS (OpenSSL, TLS 1.2+,
 * optionally mutual TLS), each advertising its own address to the clients that connect to it, as Kafka's
 * advertised.listeners. The limits are the server's, over every listener.
 *
 * Fetch returns whole stored batches unchanged, sent with sendfile() from the segment files (over TLS:
 * read and encrypted, 64 KiB at a time), at least one
 * batch even above max_bytes (KIP-74). A Fetch that finds fewer than min_bytes waits up to max_wait_ms and
 * is answered as soon as new records become durable: the log's durable callback (set by the server unless
 * told otherwise, or forwarded through mq_kafka_server_notify()) wakes the loop through an eventfd. Stores
 * opened for reading only (beside a writer process) have no such callback: there parked fetches look for
 * new data every fetch_poll_ms.
 *
 * Consumer groups: the coordinator (group.h) runs in the loop; committed offsets are stored in the
 * catalog, where `mqlog consume --group` finds them too.
 *
 * Principals and authorization: every connection has a principal, as in Kafka: "User:NAME" after SASL,
 * "User:" and its client certificate's subject DN (or CN) on a TLS listener without SASL, else
 * "User:ANONYMOUS". With ACLs (acl/acl.h) each request may touch only what they allow its principal,
 * under Kafka's rules (authz.c): topics the principal may not describe are invisible (left out of
 * Metadata, answered as unknown when named), other refusals get TOPIC_ or GROUP_AUTHORIZATION_FAILED.
 * Without ACLs every request is served, at the cost of one branch.
 */
#ifndef MQ_KAFKA_SERVER_H
#define MQ_KAFKA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl.h"
#include "kafka/group.h"
#include "store/store.h"
#include "util/err.h"

struct mq_kafka_server;

/* TLS of one listener. */
struct mq_kafka_tls_conf {
    const char *cert;         /* PEM certificate chain; NULL: the listener is plaintext */
    const char *key;          /* PEM private key of cert */
    const char *ca;           /* PEM CAs of client certificates; NULL: clients are not asked for one */
    bool require_client_cert; /* mutual TLS: a client without a certificate signed by ca fails (needs ca) */
    bool principal_cn;        /* a client certificate's principal is User:<its CN> (no CN: its DN); false:
                                 User:<its subject DN, RFC 2253>. Unused on a listener with SASL. */
};

/* One address the endpoint listens on, and what it tells the clients that connect there. */
struct mq_kafka_listener_conf {
    const char *listen_host;     /* address or host name to bind; default "127.0.0.1" */
    int port;                    /* 0 picks a free port (see mq_kafka_server_listener_port()) */
    const char *advertised_host; /* what Metadata and FindCoordinator tell this listener's clients; default
                                    the listen host, or "127.0.0.1" when listening on a wildcard address */
    int advertised_port;         /* default (0): the bound port */
    struct mq_kafka_tls_conf tls;
    unsigned sasl_mechanisms; /* SASL every client must pass before any request but ApiVersions,
                                 SaslHandshake and SaslAuthenticate: 1 << enum mq_sasl_mech (sasl/sasl.h)
                                 per mechanism offered; 0: none, clients are anonymous. Users are read
                                 from the store's catalog at each authentication. */
};

struct mq_kafka_server_conf {
    /* The one listener when n_listeners is 0 (plaintext): */
    const char *listen_host;     /* address or host name to bind; default "127.0.0.1" */
    int port;                    /* default 9092; 0 picks a free port (see mq_kafka_server_port()) */
    const char *advertised_host; /* what Metadata tells clients; default the listen host, or "127.0.0.1"
                                    when listening on a wildcard address */
    int advertised_port;         /* default (0): the bound port */
    unsigned sasl_mechanisms;    /* its SASL (see mq_kafka_listener_conf); default 0, none */
    /* Otherwise these listeners (the four fields above are then unused); the limits below count over all
     * of them together. */
    const struct mq_kafka_listener_conf *listeners;
    size_t n_listeners;
    int32_t node_id;              /* this broker's id; default 0 */
    const char *cluster_id;       /* default "mqlog" */
    size_t max_request_bytes;     /* larger requests close the connection; default 16 MiB */
    int max_connections;          /* further connections are closed at once; default 1024 */
    int max_connections_per_ip;   /* the same per client address; default 512, 0 no limit */
    int64_t fetch_poll_ms;        /* read-only stores: how often parked fetches look for data (default 50) */
    int64_t idle_timeout_ms;      /* close connections silent this long with nothing pending (Kafka's
                                     connections.max.idle.ms); default 600000, 0 never */
    int64_t handshake_timeout_ms; /* close connections that sent no whole request this long after
                                     connecting (later also: that did not authenticate); default 10000 */
    int64_t send_timeout_ms;      /* close connections whose answers made no progress this long (a
                                     client that stopped reading); default 60000 */
    int32_t max_request_partitions; /* a request listing more topics or topic-partitions is refused:
                                       INVALID_REQUEST where the response can say so (Fetch v7+,
                                       OffsetFetch v2+), else the connection is closed; default 10000 */
    int32_t fetch_max_bytes;        /* the most bytes one Fetch response carries, whatever the client
                                       asks, partition headers included (Kafka's fetch.max.bytes);
                                       default 55 MiB (the first batch may exceed it, KIP-74) */
    size_t max_queued_bytes;        /* a connection whose unsent answers hold this much gets no further
                                       request handled (nor read) until they drain; default 16 MiB */
    bool install_durable_cb;        /* set the log's durable callback (default true); when false, whoever
                                       owns the callback must call mq_kafka_server_notify() from it */
    struct mq_kafka_groups_conf groups;
    /* The codec (enum mq_codec) topic's batches are written with, for DescribeConfigs' compression.type;
     * -1 when it is not known. NULL (default): never known. Called from the server's thread. */
    int (*topic_codec)(void *opaque, const char *topic);
    void *topic_codec_opaque;
    struct mq_acl *acl; /* the authorization rules; NULL (default): every request is allowed. Taken by
                           mq_kafka_server_start() on success (the caller still owns it on failure). */
};

/* Fills conf with the defaults above. */
void mq_kafka_server_conf_defaults(struct mq_kafka_server_conf *conf);

/*
 * Binds the listeners (and loads their TLS files) and starts the event-loop thread serving store. conf may
 * be NULL for defaults; its strings are copied (the TLS files are read here, not later). store must
 * outlive the server. On failure (e.g. MQ_ERR_BUSY: address in use, MQ_ERR_IO, MQ_ERR_INVAL: a TLS file
 * that does not load) *srvp is untouched and errstr says why. The caller owns the server and stops it with
 * mq_kafka_server_stop().
 */
enum mq_err mq_kafka_server_start(struct mq_store *store, const struct mq_kafka_server_conf *conf,
                                  struct mq_kafka_server **srvp, char *errstr, size_t errstr_size);

/* The port the (first) listener is bound to. */
int mq_kafka_server_port(const struct mq_kafka_server *srv);

/* The port listener i (in the order of conf->listeners) is bound to, -1 when there is no such listener. */
int mq_kafka_server_listener_port(const struct mq_kafka_server *srv, size_t i);

/* Replaces the authorization rules (any thread; NULL: every request is allowed); the server takes acl and
 * frees the rules it replaces. Requests that arrive after the call are checked against the new rules,
 * on open connections too; requests already parked (a waiting Fetch or JoinGroup) were checked before. */
void mq_kafka_server_set_acl(struct mq_kafka_server *srv, struct mq_acl *acl);

/* Tells the server that records became durable (any thread, cheap, never blocks). */
void mq_kafka_server_notify(struct mq_kafka_server *srv);

/* Counters, for tests and diagnostics (read from any thread). */
struct mq_kafka_server_stats {
    uint64_t accepted;        /* connections accepted */
    uint64_t open;            /* connections open now */
    uint64_t requests;        /* requests answered or refused */
    uint64_t protocol_errors; /* connections closed for an oversized, truncated or malformed request */
    uint64_t unsupported;     /* requests for an API or version not served (ApiVersions: answered with
                                 UNSUPPORTED_VERSION; others: their connection closed) */
    uint64_t fetch_waiting;   /* Fetch requests parked now, waiting for data */
    uint64_t refused;         /* connections closed at once: max_connections, max_connections_per_ip or
                                 out of file descriptors */
    uint64_t timed_out;       /* connections closed by the handshake, idle or send timeout */
    uint64_t too_large;       /* requests refused for listing more than max_request_partitions */
    uint64_t tls_failed;      /* TLS handshakes that failed (untrusted or missing client certificate, no
                                 common protocol version, not TLS at all) */
    uint64_t auth_failed;     /* SASL authentications that failed (the connection was closed) */
    uint64_t denied;          /* topics and groups a request named that the ACLs refused it */
    uint64_t auth_derived;    /* PLAIN logins that ran PBKDF2 over the password */
    uint64_t auth_cached;     /* PLAIN logins answered by the memo of earlier ones (sasl.h) */
    uint64_t sent_bytes;      /* bytes of responses sent */
    int64_t heartbeat_ms;     /* mq_mono_ms() when the event loop last turned */
};
void mq_kafka_server_stats(const struct mq_kafka_server *srv, struct mq_kafka_server_stats *st);

/* Calls fn once per API served, in key order, with its name and the requests answered for it. */
void mq_kafka_server_api_requests(const struct mq_kafka_server *srv,
                                  void (*fn)(void *opaque, const char *api, uint64_t requests), void *opaque);

/*
 * Removes the durable callback (if the server set it), stops the loop, closes every connection (parked
 * requests are dropped unanswered) and frees the server. Accepts NULL.
 */
void mq_kafka_server_stop(struct mq_kafka_server *srv);

#endif
