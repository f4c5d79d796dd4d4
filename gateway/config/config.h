/*
 * config.h - mqlogd's configuration: a YAML file (and the mapping files it includes) parsed with libyaml,
 * checked completely, and handed to the daemon as plain structs.
 *
 * Every key of every section is described once, in a table (config/table.c: name, type, default, bounds,
 * description); the parser, the validation and the reference docs/configuration.md all come from it.
 * Loading never stops at the first problem: every error is reported, one line each, as
 * "FILE:LINE:COL: message" (1-based line and column), sorted by file and position. No value that fails to
 * parse ever falls back to a default. Only when the configuration file itself cannot be read is the message
 * "FILE: message" without a position.
 */
#ifndef MQ_CONFIG_H
#define MQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/route.h"
#include "util/err.h"

/* Where something was written: the file (owned by the config, see mq_config.files) and 1-based position. */
struct mq_config_loc {
    const char *file;
    int line;
    int col;
};

/* Store-wide settings (section "log"); the names follow struct mq_log_conf and struct mq_retention. */
struct mq_config_log {
    int64_t flush_interval_ms;
    int64_t flush_bytes;
    int64_t segment_bytes;
    int64_t segment_ms;
    int64_t index_interval_bytes;
    int64_t batch_bytes;
    int64_t max_pending_bytes;
    int64_t checkpoint_bytes;
    int64_t retention_check_ms;
    int64_t max_disk_bytes;     /* 0 = no disk cap */
    int64_t min_free_bytes;     /* 0 = no free space minimum */
    int64_t retention_ms;       /* key "retention"; 0 = keep forever */
    int64_t retention_bytes;    /* 0 = no size limit */
    int compression;            /* enum mq_config_codec: the codec of topics whose mapping names none */
    int64_t recompact_after_ms; /* recompact a closed segment once its newest record is this old */
};

/* Codecs a log topic's batches can be written with: Kafka's numbers, as enum mq_codec (log/codec.h). */
enum mq_config_codec {
    MQ_CONFIG_CODEC_NONE = 0,
    MQ_CONFIG_CODEC_LZ4 = 3,
    MQ_CONFIG_CODEC_ZSTD = 4,
};

/* The MQTT metadata headers a mapping stores (bits of mq_config_mapping.headers). */
enum mq_config_header {
    MQ_CONFIG_HDR_TOPIC = 0,      /* mqtt.topic */
    MQ_CONFIG_HDR_QOS = 1,        /* mqtt.qos */
    MQ_CONFIG_HDR_RETAIN = 2,     /* mqtt.retain */
    MQ_CONFIG_HDR_BROKER = 3,     /* mqtt.broker */
    MQ_CONFIG_HDR_PROPERTIES = 4, /* MQTT 5 properties: user properties, content type, response topic... */
};
#define MQ_CONFIG_HDR_ALL 0x1fu

struct mq_config_tls {
    char *ca;   /* CA file (absolute path), NULL: the system's trust store */
    char *cert; /* client certificate (with key), or NULL */
    char *key;
    bool insecure; /* skip server certificate verification (testing only) */
};

struct mq_config_broker {
    char *name;
    char *url;    /* as written: mqtt://host[:port] or mqtts://host[:port] */
    char *host;   /* from url; an IPv6 address without its brackets */
    int port;     /* from url; 1883 or 8883 when not given */
    bool tls;     /* mqtts:// */
    char *client; /* a connector's name (connector.h); the daemon checks it against those built in */
    char
        *client_id; /* default "mqlog-<name>"; connection i > 0 of sessions > 1 appends "-<i>" (connectors) */
    int protocol;   /* MQTT protocol level: 4 (3.1.1) or 5 */
    bool clean_session;
    char *username;                /* NULL when not set */
    char *password_file;           /* absolute path; the first line is the password; NULL when not set */
    struct mq_config_tls tls_opts; /* meaningful only when tls */
    int64_t sessions; /* >1: that many connections sharing the subscriptions via $share/<share_group>/ */
    char *share_group;
    int64_t keepalive_s;
    int64_t connect_timeout_ms;
    int64_t reconnect_min_ms; /* capped exponential backoff with jitter between these two */
    int64_t reconnect_max_ms;
    int64_t max_inflight; /* MQTT 5 receive maximum / in-flight window */
    bool durable_ack;     /* paho: acknowledge QoS 1/2 only after the record is durable */
    int dedup;            /* enum mq_dedup: how the redelivery guard recognises a redelivery */
    struct mq_config_loc loc;
    struct mq_config_loc client_loc; /* where client was written (the broker's position when defaulted) */
};

/* How a persistent session's redelivery guard (ingest/session.h) recognises a redelivery. */
enum mq_dedup {
    MQ_DEDUP_PACKET_ID, /* same packet id, topic and payload (MQTT requires the id to stay; mosquitto) */
    MQ_DEDUP_PAYLOAD,   /* DUP set, same topic and payload: for brokers that renumber (RabbitMQ) */
    MQ_DEDUP_OFF,       /* no guard: a redelivery of a stored message is stored again */
};

struct mq_config_mapping {
    char **from; /* topic filters (nfrom >= 1) */
    size_t nfrom;
    char *broker; /* NULL: every broker */
    int64_t qos;
    char *to; /* log topic template */
    int64_t partitions;
    char *key;                  /* key strategy (route.h), never NULL */
    int64_t retention_ms;       /* -1: the log section's */
    int64_t retention_bytes;    /* -1: the log section's */
    int compression;            /* enum mq_config_codec; -1: the log section's */
    int64_t recompact_after_ms; /* -1: the log section's */
    unsigned headers;           /* 1 << enum mq_config_header for each header stored */
    int omit_default_headers;   /* header_defaults: 1 omit, 0 keep */
    struct mq_config_loc loc;
};

/* What a client certificate's principal is (key kafka.listeners[].tls.principal). */
enum mq_config_principal {
    MQ_PRINCIPAL_DN, /* User:<the subject DN, RFC 2253> */
    MQ_PRINCIPAL_CN, /* User:<the subject's CN>, the DN when it has none */
};

/* TLS of a Kafka listener (section "kafka.listeners[].tls"); paths are absolute. */
struct mq_config_kafka_tls {
    char *cert; /* PEM certificate chain of the endpoint */
    char *key;  /* PEM private key of cert */
    char *ca;   /* PEM CAs of client certificates, or NULL: none asked for */
    bool require_client_cert;
    int principal;      /* enum mq_config_principal */
    bool principal_set; /* principal was written (not the default) */
};

/* One Kafka listener (section "kafka.listeners[]", or the single form kafka.listen). */
struct mq_config_kafka_listener {
    char *listen; /* "host:port" */
    char *listen_host;
    int listen_port;
    char *advertised; /* "host:port"; defaults to listen */
    char *advertised_host;
    int advertised_port;
    bool tls;                            /* a tls section was given */
    struct mq_config_kafka_tls tls_opts; /* meaningful only when tls */
    bool allow_anonymous;                /* serve unauthenticated clients on a non-loopback address */
    unsigned sasl;                /* SASL required: 1 << enum mq_sasl_mech (sasl/sasl.h) each, 0: none */
    bool allow_plain_without_tls; /* a loopback listener may offer PLAIN without TLS */
    struct mq_config_loc loc;
};

/* One entry of kafka.acls: what principal may do with the topics and groups its patterns match. */
struct mq_config_kafka_acl {
    char *principal; /* "User:NAME", "User:*" for anyone */
    char **topics;   /* topic patterns, each with its operations (MQ_ACL_* bits of acl/acl.h) */
    unsigned *topic_ops;
    size_t ntopics;
    char **groups; /* group patterns, likewise */
    unsigned *group_ops;
    size_t ngroups;
    struct mq_config_loc loc;
};

struct mq_config_kafka {
    char *listen; /* the single form: "host:port" or NULL (listeners[0] then holds it) */
    char *listen_host;
    int listen_port;
    char *advertised; /* "host:port"; defaults to listen */
    char *advertised_host;
    int advertised_port;
    bool allow_anonymous;
    /* Every listener: those of listeners[] as written, or the single form as one; none: no endpoint. */
    struct mq_config_kafka_listener *listeners;
    size_t nlisteners;
    /* The endpoint's limits (mq_kafka_server_conf in kafka/server.h says what each does). */
    int64_t max_connections;
    int64_t max_connections_per_ip; /* 0: no limit */
    int64_t idle_timeout_ms;        /* 0: never */
    int64_t handshake_timeout_ms;
    int64_t send_timeout_ms;
    int64_t max_request_partitions;
    int64_t fetch_max_bytes;
    /* Authorization: given (even empty), clients may do only what an entry allows; absent, anything. */
    bool acls_given;
    struct mq_config_kafka_acl *acls;
    size_t nacls;
};

/* The operator endpoints (section "http"): /metrics, /healthz, /readyz, /status.json. */
struct mq_config_http {
    char *listen; /* "host:port", NULL: no endpoint */
    char *listen_host;
    int listen_port;
    bool partition_metrics; /* per-partition and per-group series in /metrics */
};

/* How a forwarder places records on the remote topic's partitions. */
enum mq_forward_partitioning {
    MQ_FWD_PART_SAME, /* local partition p -> remote partition p */
    MQ_FWD_PART_KEY,  /* Kafka's murmur2 of the key (records without a key: the local partition) */
};

enum mq_forward_mode {
    MQ_FWD_EXACTLY_ONCE,  /* transactional producer, resume from the remote tail */
    MQ_FWD_AT_LEAST_ONCE, /* idempotent producer, resume from the catalog checkpoint */
};

/* Where a forwarder with no checkpoint starts (key start). */
enum mq_forward_start {
    MQ_FWD_START_EARLIEST,
    MQ_FWD_START_LATEST,
    MQ_FWD_START_TIME, /* start_ms */
};

struct mq_config_sasl {
    char *mechanism; /* "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512"; NULL: no SASL */
    char *username;
    char *password_file; /* absolute path; the first line is the password */
};

/* One forwarder (section "forward[]"): local log topics to a remote Kafka cluster. */
struct mq_config_forward {
    char *name;      /* unique among forwarders */
    char *bootstrap; /* librdkafka's bootstrap.servers: host:port[,host:port...] */
    char **topics;   /* local log topic glob patterns (fnmatch), ntopics >= 1 */
    size_t ntopics;
    char *to; /* remote topic name template with {site} and {topic} */
    enum mq_forward_partitioning partitioning;
    enum mq_forward_mode mode;
    enum mq_forward_start start;
    int64_t start_ms;        /* MQ_FWD_START_TIME: ms since the epoch */
    char *compression;       /* librdkafka's compression.codec value: none, gzip, snappy, lz4, zstd */
    int64_t max_bytes_per_s; /* 0: no cap */
    bool hold_retention;
    bool tls;                      /* a tls section was given: security.protocol SSL or SASL_SSL */
    struct mq_config_tls tls_opts; /* meaningful only when tls */
    struct mq_config_sasl sasl;
    char **prop_names; /* further librdkafka properties, passed through in this order */
    char **prop_values;
    size_t nprops;
    struct mq_config_loc loc;
};

struct mq_config {
    char **files; /* files[0] is the configuration file, then every included file in load order */
    size_t nfiles;
    char *data_dir; /* absolute */
    struct mq_config_log log;
    struct mq_config_broker *brokers;
    size_t nbrokers;
    struct mq_config_mapping *mappings; /* the file's own, then each included file's, in load order */
    size_t nmappings;
    char *unmatched; /* log topic for messages no mapping takes, NULL: drop them */
    struct mq_config_kafka kafka;
    char *site; /* this gateway's name (key site; default: the host name); never NULL once loaded */
    struct mq_config_forward *forwards;
    size_t nforwards;
    struct mq_config_http http;
};

/* Receives one error line (no trailing newline); the string is valid during the call only. */
typedef void mq_config_report_fn(void *opaque, const char *msg);

/*
 * Loads and checks the configuration file at path and everything it includes. On MQ_OK the caller owns
 * *cfgp and frees it with mq_config_free(). On MQ_ERR_CONFIG every problem was passed to report (or, when
 * report is NULL, printed with MQ_ERROR) and *cfgp is untouched; MQ_ERR_NOMEM likewise.
 */
enum mq_err mq_config_load(const char *path, struct mq_config **cfgp, mq_config_report_fn *report,
                           void *opaque);

/* Frees a configuration, completely or partly built. Accepts NULL. */
void mq_config_free(struct mq_config *cfg);

/* The broker named name, or NULL. */
const struct mq_config_broker *mq_config_broker_find(const struct mq_config *cfg, const char *name);

/* The first line of the file at path, without its line end: what every password_file holds (also `mqlog
 * replay --password-file`). *out is a new string the caller wipes and frees, NULL when path is NULL. An
 * empty file is an error; errstr names the file and the reason, never the password. */
enum mq_err mq_config_password_file(const char *path, char **out, char *errstr, size_t errstr_size);

/*
 * Reads a broker's password: the first line of b->password_file, without its line end. *out gets a new
 * string the caller frees (after wiping it), or NULL when the broker has no password_file. An empty file
 * is an error (a password file that lost its content should not log in with an empty password). The
 * password is never logged; errstr names the file and the reason.
 */
enum mq_err mq_config_broker_password(const struct mq_config_broker *b, char **out, char *errstr,
                                      size_t errstr_size);

/* The same for a forwarder's SASL password (s->password_file); *out is NULL when s has no mechanism. */
enum mq_err mq_config_sasl_password(const struct mq_config_sasl *s, char **out, char *errstr,
                                    size_t errstr_size);

/*
 * Builds the route table of cfg's mappings (mapping i of the table is cfg->mappings[i]) and unmatched topic.
 * The caller owns *out (mq_route_table_free()); the table does not refer to cfg.
 */
enum mq_err mq_config_route_table(const struct mq_config *cfg, struct mq_route_table **out, char *errstr,
                                  size_t errstr_size);

/* Fills a store's retention for a mapping: its own values, else the log section's. */
void mq_config_mapping_retention(const struct mq_config *cfg, const struct mq_config_mapping *m, int64_t *ms,
                                 int64_t *bytes);
/* The codec (enum mq_config_codec) of the batches of m's topics: its own, else the log section's. */
int mq_config_mapping_compression(const struct mq_config *cfg, const struct mq_config_mapping *m);
/* The mapping's recompact_after, or the log section's. */
int64_t mq_config_mapping_recompact_after(const struct mq_config *cfg, const struct mq_config_mapping *m);

#endif
