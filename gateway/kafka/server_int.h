/*
 * server_int.h - the Kafka endpoint's internals, shared by server.c (event loop, connections, lifecycle),
 * transport.c (plain TCP and TLS), fetch.c (Fetch and its long poll) and handlers.c (every other request, and
 * dispatch).
 *
 * Everything here runs on the server's one loop thread, except mq_ksrv_on_durable() (called by the log on
 * a writer thread) and the atomics of struct mq_kafka_server.
 */
#ifndef MQ_KAFKA_SERVER_INT_H
#define MQ_KAFKA_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "acl/acl.h"
#include "kafka/proto.h"
#include "kafka/server.h"
#include "kafka/wire.h"
#include "util/diag.h"
#include "util/parse.h"
#include "util/topic.h"

struct ssl_st;     /* OpenSSL's SSL */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

struct out_item {
    struct out_item *next;
    struct mq_kafka_out out;
    size_t piece; /* 2k: the bytes before splice k (k == n_splices: after the last); 2k+1: splice k */
    size_t off;   /* bytes of that piece already sent */
};

enum req_state { REQ_NEW, REQ_FETCH_WAIT, REQ_GROUP_WAIT };

struct conn;

struct req {
    struct conn *conn;
    uint8_t *body; /* the request after its size prefix; decoded views point into it */
    size_t len;
    struct mq_kafka_req_hdr hdr;
    struct mq_kafka_arena arena;
    enum req_state state;
    bool done;                    /* answered (by a group callback); the loop frees it */
    int64_t deadline;             /* a parked Fetch is answered by then with whatever there is */
    const struct mq_acl_who *who; /* the ACL rules of the connection's principal, NULL: no ACLs; valid
                                     during the handler's first call only (a reload may free them) */
    struct mq_kafka_fetch_req fetch;
    struct mq_part ***parts; /* [topic][partition], resolved once, NULL where unknown */
    bool **again;            /* [topic][partition]: the same partition was listed before in the request */
    bool parts_resolved;
    struct req *wait_prev, *wait_next; /* the server's list of parked fetches */
};

/* One listening socket, and what its clients are told and how they are served. */
struct mq_ksrv_listener {
    struct mq_kafka_server *srv;
    int fd;
    int port; /* bound */
    char *listen_host;
    char *advertised_host; /* Metadata and FindCoordinator tell this listener's clients to come here */
    int advertised_port;
    struct ssl_ctx_st *tls; /* OpenSSL's SSL_CTX; NULL: plaintext */
    bool require_client_cert;
    bool principal_cn;   /* a client certificate's principal is its CN (mq_kafka_tls_conf) */
    unsigned sasl_mechs; /* SASL required of its clients (1 << enum mq_sasl_mech each), 0: none */
};

/*
 * How a connection's bytes travel: plain TCP (recv, send, sendfile) or TLS (transport.c). Each call
 * moves at most len bytes and returns how many (> 0), 0 at the peer's end of stream (recv) or at the end
 * of the file (send_file), or -1 with errno: EAGAIN when it must wait, c->io_wait then says for what
 * (EPOLLIN or EPOLLOUT: TLS may need to read in order to write, or the reverse), EINTR to retry, else an
 * error that closes the connection (a TLS error has closed it already, with its reason logged).
 */
struct mq_ksrv_transport {
    ssize_t (*recv)(struct conn *c, void *buf, size_t len);
    ssize_t (*send)(struct conn *c, const void *buf, size_t len, bool more);
    ssize_t (*send_file)(struct conn *c, int fd, int64_t pos, size_t len);
    void (*close)(struct conn *c); /* frees the transport's state; the socket is closed by the caller */
};

extern const struct mq_ksrv_transport mq_ksrv_plain;

/* Where a connection is in SASL authentication (auth.c). */
enum mq_ksrv_auth {
    MQ_KSRV_AUTH_NONE,    /* no handshake yet (or a listener without SASL) */
    MQ_KSRV_AUTH_STARTED, /* SaslHandshake v1 chose the mechanism: SaslAuthenticate requests carry it */
    MQ_KSRV_AUTH_RAW,     /* SaslHandshake v0 chose it: the next frames are bare tokens */
    MQ_KSRV_AUTH_DONE,    /* authenticated: principal is set */
    MQ_KSRV_AUTH_FAILED,  /* the connection closes once the answer is sent */
};

struct mq_sasl;
struct mq_sasl_cache;

struct conn {
    struct conn *prev, *next;
    struct mq_kafka_server *srv;
    const struct mq_ksrv_listener *lsn; /* the listener it came through */
    const struct mq_ksrv_transport *io;
    int fd;
    uint32_t events;     /* the epoll interest set registered now */
    bool want_out;       /* the socket refused bytes: wait for EPOLLOUT */
    bool read_wants_out; /* TLS: reading must wait until the socket takes bytes (EPOLLOUT then reads) */
    uint32_t io_wait;    /* set by the transport with EAGAIN: EPOLLIN or EPOLLOUT */
    struct ssl_st *ssl;  /* TLS: OpenSSL's SSL; NULL: plaintext */
    bool tls_ready;      /* TLS: the handshake is done */
    char *peer_dn;       /* TLS: the verified client certificate's subject (RFC 2253), or NULL */
    uint8_t *in;
    size_t in_len, in_cap;
    struct req *cur; /* the request being served; later ones wait in `in` */
    struct out_item *out_head, *out_tail;
    size_t out_items;
    size_t out_bytes; /* of the queued answers (memory and file ranges), counted against max_queued_bytes */
    bool dead;
    bool ready;
    bool greeted;          /* a whole request arrived: the handshake timeout no longer applies */
    bool told_unsupported; /* an unsupported API or version was logged for this connection */
    struct conn *ready_next;
    int64_t accepted_at; /* mono ms */
    int64_t last_active; /* mono ms of the last byte received or sent */
    int64_t last_sent;   /* mono ms of the last progress sending, or of queueing into an empty queue */
    struct ip_slot *ip;  /* the connections of the same client address */
    char peer[64];
    unsigned sasl_mechs; /* the SASL mechanisms required before other requests, 1 << enum mq_sasl_mech
                            each; 0: none, the client is anonymous */
    enum mq_ksrv_auth auth;
    struct mq_sasl *sasl; /* the authentication under way */
    int sasl_mech;        /* its enum mq_sasl_mech */
    char *principal;      /* "User:NAME" once known (authz.c): at accept, after the TLS handshake, or after
                             SASL on a SASL listener (until then NULL) */
    bool close_when_sent; /* handle no further request; close once the queued answers are sent */
};

/* The connections open from one client address (max_connections_per_ip). */
struct ip_slot {
    struct ip_slot *next;
    uint8_t addr[16]; /* IPv4 (IPv4-mapped IPv6 too) in the first 4 bytes, or IPv6 */
    uint8_t len;
    int conns;
};

/* A log line that may not flood: logged at most every MQ_KSRV_RATELOG_MS, the others counted into it. */
#define MQ_KSRV_RATELOG_MS 10000
struct ratelog {
    int64_t last;      /* mono ms of the last line, 0 none yet */
    uint64_t held;     /* events since then, not logged */
    char example[256]; /* the latest event held, for the summary line */
};

#define MQ_KSRV_API_KEYS 128 /* requests are counted per API for keys below this (all Kafka has) */

struct mq_kafka_server {
    struct mq_store *store;
    struct mq_log *log;
    struct mq_catalog *cat;
    struct mq_kafka_server_conf conf;
    char *cluster_id;
    struct mq_ksrv_listener *listeners;
    size_t n_listeners;
    int epoll_fd, wake_fd;
    uint8_t *file_buf; /* TLS: segment bytes on their way to SSL_write (MQ_KSRV_FILE_BUF), shared */
    bool read_mode;
    bool durable_cb_set;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_bool data_ready;
    struct conn *conns;
    struct conn *ready;
    struct req *waiting;
    int64_t last_poll;
    int64_t last_idle_sweep;
    struct mq_kafka_groups *groups;
    struct ip_slot **ip_buckets; /* the client addresses with open connections, hashed */
    size_t ip_nbuckets;          /* a power of two */
    int spare_fd;                /* given up to accept (and close) a connection when out of descriptors */
    struct ratelog refusals;     /* connections refused */
    struct ratelog too_large;    /* requests refused for max_request_partitions */
    struct ratelog timeouts;     /* connections closed by the handshake, idle or send timeout */
    struct ratelog tls_failures; /* TLS handshakes that failed */
    struct ratelog denials;      /* topics and groups the ACLs refused */
    struct mq_acl *acl;          /* the rules in force (loop thread), NULL: none */
    pthread_mutex_t acl_lock;    /* guards acl_next */
    struct mq_acl *acl_next;     /* mq_kafka_server_set_acl()'s rules, waiting for the loop */
    atomic_bool acl_pending;     /* acl_next is set (NULL included) */
    size_t trim_bytes;           /* large buffers freed since the last malloc_trim() */
    int64_t last_trim;
    /* auth.c */
    struct ratelog auth_failures;     /* SASL authentications that failed or broke the SASL sequence */
    struct ratelog auth_errors;       /* SASL authentications that failed on the server's side */
    struct mq_sasl_cache *sasl_cache; /* PLAIN's PBKDF2 memo, when a listener offers PLAIN; else NULL */
    _Atomic uint64_t st_accepted, st_open, st_requests, st_protocol_errors, st_unsupported, st_waiting;
    _Atomic uint64_t st_refused, st_timed_out, st_too_large, st_tls_failed, st_auth_failed, st_denied;
    /* for the operator endpoints: requests answered per API key, bytes sent, the loop's last turn */
    _Atomic uint64_t st_api[MQ_KSRV_API_KEYS], st_sent_bytes;
    _Atomic int64_t heartbeat_ms;
};

/* Bytes of a segment file read for SSL_write at a time: the TLS path's bounded copy of what sendfile() would
 * send (one buffer for the loop: a retried SSL_write reads the same range again). */
#define MQ_KSRV_FILE_BUF (64 * 1024)

static inline int64_t now_ms(void)
{
    return mq_mono_ms();
}

/* ---- server.c: connections and responses ---- */

/* Puts c on the ready list: the loop handles its further input at the end of this iteration. */
void mq_ksrv_conn_set_ready(struct conn *c);
/* Logs one event of a kind clients can repeat at will: the first at once, then at most one line every
 * MQ_KSRV_RATELOG_MS with the count (noun names the kind, what says it all). */
void mq_ksrv_ratelog(struct ratelog *rl, enum mq_level level, int64_t now, const char *noun,
                     const char *what);
/* Marks c for closing at the end of the loop iteration (why: logged once, NULL for none). */
void mq_ksrv_conn_kill(struct conn *c, const char *why);
/* mq_ksrv_conn_kill() for a request that cannot be parsed, counted and logged as a warning. */
void mq_ksrv_protocol_error(struct conn *c, const char *why);
/* Refuses a request that lists more than max_request_partitions topics or topic-partitions: logged (rate
 * limited, naming the limit) and counted; the connection is closed unless answered (answered: the caller
 * sent INVALID_REQUEST). */
void mq_ksrv_too_large(struct req *r, bool answered);
/* Accounts for a large buffer the loop freed: the allocator is asked to give memory back soon. */
void mq_ksrv_freed(struct mq_kafka_server *srv, size_t bytes);
/* Frees a request (accepts NULL). */
void mq_ksrv_req_free(struct req *r);
/* Starts r's response (NULL when out of memory); the handler encodes the body into it->out. */
struct out_item *mq_ksrv_resp_begin(struct req *r);
/* Queues the response (taking it), or kills the connection when it could not be built. */
void mq_ksrv_resp_end(struct req *r, struct out_item *it);

/* ---- handlers.c ---- */

/* After a request decoder returned err: true when MQ_OK; otherwise closes the connection, saying why (a
 * malformed request, one over max_request_partitions, out of memory), and returns false. */
bool mq_ksrv_decoded(struct req *r, enum mq_err err);
/* Copies a topic name view into buf (MQ_TOPIC_NAME_MAX + 1 bytes); false when it breaks the rule of
 * util/topic.h (or is null or holds a NUL). */
bool mq_ksrv_topic_name(struct mq_kafka_str s, char *buf);
/* The Kafka error code for a store error. */
int16_t mq_ksrv_code_for(enum mq_err err);
/* A request handler: decodes r's body from rd and answers (mq_ksrv_resp_begin/end), or parks r by making
 * it its connection's current request. */
typedef void mq_ksrv_handler(struct req *r, struct mq_kafka_rd *rd);

/* One API the endpoint serves: the versions it accepts and the handler that answers them. */
struct mq_ksrv_api {
    int16_t key; /* enum mq_kafka_api */
    int16_t min, max;
    mq_ksrv_handler *handle;
};

/* The table of served APIs, in key order; *n gets its length. It dispatches every request and is the list
 * ApiVersions advertises. */
const struct mq_ksrv_api *mq_ksrv_apis(size_t *n);
/* Handles one whole request of c; takes body. */
void mq_ksrv_handle_request(struct conn *c, uint8_t *body, size_t len);
/* The group coordinator's answers to a parked JoinGroup / SyncGroup (waiter is its struct req). */
void mq_ksrv_on_join(void *opaque, void *waiter, const struct mq_kafka_join_group_resp *resp);
void mq_ksrv_on_sync(void *opaque, void *waiter, int16_t error, struct mq_kafka_str assignment);
void mq_ksrv_on_live(void *opaque, const char *group_id, bool live);

/* ---- auth.c: SASL ---- */

/* Makes srv->sasl_cache when a listener offers PLAIN (MQ_ERR_NOMEM when it cannot). */
enum mq_err mq_ksrv_auth_init(struct mq_kafka_server *srv);

/* True when c may send a request of api_key now: anything once authenticated or on a listener without
 * SASL, else only ApiVersions, SaslHandshake and SaslAuthenticate; any other closes the connection. */
bool mq_ksrv_auth_allows(struct conn *c, int16_t api_key);
void mq_ksrv_handle_sasl_handshake(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_sasl_authenticate(struct req *r, struct mq_kafka_rd *rd);
/* One bare SASL token of c after SaslHandshake v0 (c->auth MQ_KSRV_AUTH_RAW); takes body. */
void mq_ksrv_auth_raw(struct conn *c, uint8_t *body, size_t len);

/* ---- authz.c: principals and authorization ---- */

/* Sets c's principal to "User:" name (how: what it comes from, for the log line that names it). */
void mq_ksrv_principal_set(struct conn *c, const char *name, const char *how);
/* Before r's handler: takes up rules mq_kafka_server_set_acl() left, and finds r's (r->who). */
void mq_ksrv_authz_begin(struct req *r);
/* MQ_KC_NONE when r may do op (MQ_ACL_*) on topic name (a valid name); else the answer, counted and
 * logged: UNKNOWN_TOPIC_OR_PARTITION when it may not even describe it (hidden: answered as for a topic
 * that does not exist), else TOPIC_AUTHORIZATION_FAILED. */
int16_t mq_ksrv_topic_denied(struct req *r, const char *name, unsigned op);
/* MQ_KC_NONE when r may do op on group id, else GROUP_AUTHORIZATION_FAILED (counted and logged). */
int16_t mq_ksrv_group_denied(struct req *r, struct mq_kafka_str id, unsigned op);
/* Whether r may describe topic name or group id, for lists that leave out what it may not see (neither
 * counted nor logged: the client did not ask for these by name). */
bool mq_ksrv_topic_visible(const struct req *r, const char *name);
bool mq_ksrv_group_visible(const struct req *r, const char *id);
/* Frees the rules (the server is stopping). */
void mq_ksrv_authz_free(struct mq_kafka_server *srv);

/* ---- admin.c: the admin APIs (ListGroups, DescribeGroups, DeleteGroups, DescribeConfigs,
 * DescribeCluster) ---- */

void mq_ksrv_handle_list_groups(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_describe_groups(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_delete_groups(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_describe_configs(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_describe_cluster(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_create_topics(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_delete_topics(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_delete_records(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_create_partitions(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_alter_configs(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_incremental_alter_configs(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_create_acls(struct req *r, struct mq_kafka_rd *rd);
void mq_ksrv_handle_delete_acls(struct req *r, struct mq_kafka_rd *rd);

/* ---- fetch.c ---- */

/* Answers a Fetch, or parks it (r becomes its connection's current request) until data or its deadline. */
void mq_ksrv_handle_fetch(struct req *r, struct mq_kafka_rd *rd);
/* Once per loop iteration (woken: the eventfd fired): answers the parked fetches that are past their
 * deadline, or all that now find enough data after new durable records or, for read-only stores, a
 * fetch_poll_ms poll. */
void mq_ksrv_fetch_tick(struct mq_kafka_server *srv, int64_t now, bool woken);
/* When the next parked fetch is due (its deadline or the next poll), INT64_MAX when none is parked. */
int64_t mq_ksrv_fetch_next_due(const struct mq_kafka_server *srv);
/* Takes a parked fetch off the server's list (its connection is closing). */
void mq_ksrv_waiting_remove(struct mq_kafka_server *srv, struct req *r);
/* The log's durable callback (opaque: the server): wakes the loop to recheck parked fetches. */
void mq_ksrv_on_durable(void *opaque, struct mq_part *part, int64_t durable_end);

/* ---- listeners.c ---- */

/* Copies conf's listeners (or its single plaintext one) into srv, binds them and loads their TLS files;
 * srv->listeners is left for mq_ksrv_listeners_close() whether it succeeds or not. */
enum mq_err mq_ksrv_listeners_open(struct mq_kafka_server *srv, const struct mq_kafka_server_conf *conf,
                                   char *errstr, size_t errstr_size);
/* Closes and frees every listener (accepts a half-opened list). */
void mq_ksrv_listeners_close(struct mq_kafka_server *srv);

/* ---- transport.c: plain TCP and TLS ---- */

/* Loads a TLS listener's files into l->tls (MQ_ERR_* with errstr naming the file). */
enum mq_err mq_ksrv_tls_listener_init(struct mq_ksrv_listener *l, const struct mq_kafka_tls_conf *tls,
                                      char *errstr, size_t errstr_size);
/* Starts TLS on a new connection of a TLS listener (the handshake runs as its first bytes arrive); false
 * when out of memory. */
bool mq_ksrv_tls_accept(struct conn *c);
/* True when TLS holds decrypted or undecrypted input of c that epoll cannot report any more. */
bool mq_ksrv_tls_pending(const struct conn *c);
/* Frees a listener's TLS context (accepts a plaintext listener). */
void mq_ksrv_tls_listener_free(struct mq_ksrv_listener *l);

/* peers.c: the per-address connection counts. mq_ksrv_ip_key() gives the address a peer counts under
 * (IPv4-mapped IPv6 as IPv4) and its length; mq_ksrv_ip_get() finds or creates its slot (NULL when out of
 * memory); mq_ksrv_ip_release() drops one connection and frees the slot with its last. */
uint8_t mq_ksrv_ip_key(const struct sockaddr_storage *ss, uint8_t addr[16]);
struct ip_slot *mq_ksrv_ip_find(struct mq_kafka_server *srv, const uint8_t *addr, uint8_t len);
struct ip_slot *mq_ksrv_ip_get(struct mq_kafka_server *srv, const uint8_t *addr, uint8_t len);
void mq_ksrv_ip_release(struct mq_kafka_server *srv, struct ip_slot *s);
void mq_ksrv_ips_free(struct mq_kafka_server *srv);

#endif
