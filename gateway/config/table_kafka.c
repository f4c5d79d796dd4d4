/*
 * table_kafka.c - the keys of the Kafka endpoint (kafka), of its listeners (kafka.listeners[]), of their
 * TLS (kafka.listeners[].tls) and of its authorization rules (kafka.acls[]), with the checks that make a
 * listener safe to open: certificate, key and CA files that load and belong together (tried here, so that
 * `mqlogd --check` and systemd's ExecStartPre catch them), a wildcard bind that says what to advertise, and
 * no unauthenticated listener beyond loopback unless the configuration says allow_anonymous.
 *
 * The single form `kafka: {listen, advertised}` is one listener: the kafka check turns it into
 * listeners[0], so that the daemon sees one list whichever form was written.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl.h"
#include "config/table.h"
#include "sasl/sasl.h"
#include "tls/tls.h"
#include "util/url.h"

/* ---- kafka.listeners[].tls ---- */

/* Its check hook refers to it. */
static const struct mq_csection mq_csection_kafka_tls;

#define KTLS(field) offsetof(struct mq_config_kafka_tls, field)

static const struct mq_cenum mq_enum_principal[] = {
    {"dn", MQ_PRINCIPAL_DN},
    {"cn", MQ_PRINCIPAL_CN},
    {NULL, 0},
};

static const struct mq_ckey mq_keys_kafka_tls[] = {
    {.name = "cert",
     .type = MQ_CT_PATH,
     .off = KTLS(cert),
     .flags = MQ_CK_REQUIRED,
     .doc = "PEM file of the endpoint's certificate, followed by any intermediate CA certificates that "
            "clients need to reach their trusted root."},
    {.name = "key",
     .type = MQ_CT_PATH,
     .off = KTLS(key),
     .flags = MQ_CK_REQUIRED,
     .doc = "PEM file of cert's private key, unencrypted (mqlogd cannot ask for a passphrase); readable by "
            "the user mqlogd runs as only."},
    {.name = "ca",
     .type = MQ_CT_PATH,
     .off = KTLS(ca),
     .def_doc = "none: clients are not asked for a certificate",
     .doc = "PEM file of the certificate authorities that sign client certificates. Given, clients are "
            "asked for a certificate, and one that does not verify against these fails the handshake."},
    {.name = "require_client_cert",
     .type = MQ_CT_BOOL,
     .off = KTLS(require_client_cert),
     .def = "false",
     .doc = "true: mutual TLS. A client without a certificate signed by ca fails the handshake (logged "
            "with its address and the reason). Needs ca."},
    {.name = "principal",
     .type = MQ_CT_ENUM,
     .off = KTLS(principal),
     .def = "dn",
     .enums = mq_enum_principal,
     .doc = "The principal (the name kafka.acls grants to) of a client that presents a certificate: `dn` "
            "is `User:` and the certificate's subject DN as RFC 2253 writes it, most specific part first "
            "(`User:CN=reader,O=plant-7`); `cn` is `User:` and the subject's common name "
            "(`User:reader`), the whole DN when it has no CN. Kafka's ssl.principal.mapping.rules do the "
            "same with rules. A client without a certificate is `User:ANONYMOUS`. Needs ca; a listener "
            "with sasl takes the SASL user as the principal instead, so it cannot have this key."},
    {.name = NULL},
};

static void mq_kafka_tls_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                               const yaml_node_t *const *vals)
{
    struct mq_config_kafka_tls *t = obj;
    if (!node)
        return; /* no tls section: a plaintext listener */
    const struct mq_csection *sec = &mq_csection_kafka_tls;
    const yaml_node_t *principal = mq_cctx_value(sec, vals, "principal");
    t->principal_set = principal != NULL;
    if (principal && !t->ca)
        mq_cctx_error(ctx, principal,
                      "principal: clients are not asked for a certificate: give ca, the certificate "
                      "authorities that sign them");
    if (t->require_client_cert && !t->ca) {
        mq_cctx_error(
            ctx, mq_cctx_value(sec, vals, "require_client_cert"),
            "require_client_cert needs ca: the certificate authorities that sign client certificates");
        return;
    }
    if (!t->cert || !t->key)
        return; /* missing or invalid: reported */
    /* Loads the files as the endpoint will, so that a bad one stops --check, not the start. */
    SSL_CTX *tls = NULL;
    enum mq_tls_file bad = MQ_TLS_FILE_NONE;
    char why[600];
    enum mq_err err =
        mq_tls_server_ctx_new(t->cert, t->key, t->ca, t->require_client_cert, &tls, &bad, why, sizeof why);
    if (err == MQ_ERR_NOMEM) {
        mq_cctx_oom(ctx);
        return;
    }
    if (err != MQ_OK) {
        const char *key = bad == MQ_TLS_FILE_KEY ? "key" : bad == MQ_TLS_FILE_CA ? "ca" : "cert";
        const yaml_node_t *at = mq_cctx_value(sec, vals, key);
        mq_cctx_error(ctx, at ? at : node, "%s: %s", key, why);
        return;
    }
    SSL_CTX_free(tls);
}

static const struct mq_csection mq_csection_kafka_tls = {
    .name = "kafka.listeners[].tls",
    .what = "a listener's tls section",
    .doc = "TLS on a Kafka listener (clients use security.protocol SSL): TLS 1.2 and later only, with "
           "OpenSSL's default ciphers. The files are read when mqlogd starts (and tried by --check and on "
           "reload); a renewed certificate takes effect at the next start. Relative file names are relative "
           "to the directory of the file they are written in.",
    .keys = mq_keys_kafka_tls,
    .check = mq_kafka_tls_check,
};

/* ---- the rules every listener follows (listeners[] and the single form) ---- */

/* The bind addresses that mean "every address": clients cannot be told to connect there. */
static bool mq_listen_wildcard(const char *host)
{
    return !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* Only what cannot be reached from another host: localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z). A
 * host name other than localhost may resolve to anything, so it counts as reachable. */
static bool mq_listen_loopback(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        return true;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) != 1)
        return false;
    static const unsigned char loop6[16] = {[15] = 1};
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a, loop6, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
}

/*
 * Derives l's hosts and ports from listen and advertised (advertised defaults to listen), and applies the
 * rules: a wildcard bind needs advertised, and a listener reachable from other hosts must authenticate its
 * clients (mutual TLS, or SASL over TLS) unless it says allow_anonymous, and PLAIN (a password in clear)
 * needs TLS, or loopback and allow_plain_without_tls. Errors are reported at listen_at (the listen value),
 * sasl_at (the sasl value).
 */
static void mq_listener_rules(struct mq_cctx *ctx, struct mq_config_kafka_listener *l,
                              const yaml_node_t *listen_at, const yaml_node_t *advertised_at,
                              const yaml_node_t *sasl_at)
{
    char why[300];
    if (!l->listen)
        return; /* missing or invalid: reported */
    if (mq_url_hostport(l->listen, false, 0, 65535, &l->listen_host, &l->listen_port, NULL, why,
                        sizeof why) != MQ_OK) {
        mq_cctx_oom(ctx); /* the key's own check parsed it already */
        return;
    }
    if (l->advertised) {
        if (mq_url_hostport(l->advertised, false, 1, 65535, &l->advertised_host, &l->advertised_port, NULL,
                            why, sizeof why) != MQ_OK)
            mq_cctx_oom(ctx);
    } else if (!advertised_at) {
        l->advertised_port = l->listen_port;
        if (!(l->advertised = strdup(l->listen)) || !(l->advertised_host = strdup(l->listen_host)))
            mq_cctx_oom(ctx);
        if (mq_listen_wildcard(l->listen_host))
            mq_cctx_error(ctx, listen_at,
                          "listen: %s binds every address: give advertised, the HOST:PORT clients reach this "
                          "listener at (Metadata sends them there)",
                          l->listen);
    }
    bool loopback = mq_listen_loopback(l->listen_host);
    bool authenticates = l->tls && (l->tls_opts.require_client_cert || l->sasl);
    if (!loopback && !authenticates && !l->allow_anonymous)
        mq_cctx_error(ctx, listen_at,
                      "listen: %s is reachable from other hosts but the listener authenticates no client: "
                      "give it tls with require_client_cert: true (mutual TLS) or tls and sasl, or "
                      "allow_anonymous: true to let in anyone who reaches it (User:ANONYMOUS: every topic, "
                      "unless kafka.acls say otherwise)",
                      l->listen);
    if ((l->sasl & (1u << MQ_SASL_PLAIN)) && !l->tls && !(loopback && l->allow_plain_without_tls))
        mq_cctx_error(ctx, sasl_at ? sasl_at : listen_at,
                      "sasl: PLAIN sends passwords in clear: give the listener tls%s",
                      loopback ? ", or allow_plain_without_tls: true (this loopback listener only)"
                               : " (allow_plain_without_tls only applies to loopback listeners)");
}

/* ---- kafka.listeners[] ---- */

static const struct mq_cenum mq_enum_sasl_mechs[] = {
    {"PLAIN", MQ_SASL_PLAIN},
    {"SCRAM-SHA-256", MQ_SASL_SCRAM_SHA_256},
    {"SCRAM-SHA-512", MQ_SASL_SCRAM_SHA_512},
    {NULL, 0},
};

#define LSN(field) offsetof(struct mq_config_kafka_listener, field)

static const struct mq_ckey mq_keys_kafka_listener[] = {
    {.name = "listen",
     .type = MQ_CT_HOSTPORT,
     .off = LSN(listen),
     .min = 0,
     .max = 65535,
     .flags = MQ_CK_REQUIRED,
     .doc = "HOST:PORT to bind (e.g. 127.0.0.1:9092, 10.0.0.5:9093; [::1]:9092 for IPv6). Port 0 picks a "
            "free port. A wildcard (0.0.0.0, [::]) needs advertised. A listener on anything but loopback "
            "must authenticate its clients (tls with require_client_cert, or tls and sasl) unless "
            "allow_anonymous is true."},
    {.name = "advertised",
     .type = MQ_CT_HOSTPORT,
     .off = LSN(advertised),
     .def_doc = "listen",
     .min = 1,
     .max = 65535,
     .doc = "HOST:PORT that clients connected to this listener are told to connect to (Metadata, "
            "FindCoordinator), as Kafka's advertised.listeners: each listener advertises its own."},
    {.name = "tls",
     .type = MQ_CT_MAP,
     .off = LSN(tls_opts),
     .sub = &mq_csection_kafka_tls,
     .def_doc = "none: plaintext",
     .doc = "Serve this listener over TLS (see kafka.listeners[].tls)."},
    {.name = "sasl",
     .type = MQ_CT_CHOICES,
     .off = LSN(sasl),
     .enums = mq_enum_sasl_mechs,
     .def_doc = "none",
     .doc = "SASL mechanisms clients must authenticate with before any other request (Kafka's "
            "SaslHandshake and SaslAuthenticate; users come from `mqlog user`, read at every "
            "authentication). PLAIN needs tls, or loopback and allow_plain_without_tls."},
    {.name = "allow_plain_without_tls",
     .type = MQ_CT_BOOL,
     .off = LSN(allow_plain_without_tls),
     .def = "false",
     .doc = "true lets a loopback listener without tls offer PLAIN (its passwords then cross the loopback "
            "interface in clear). Ignored elsewhere: a PLAIN listener on another address needs tls."},
    {.name = "allow_anonymous",
     .type = MQ_CT_BOOL,
     .off = LSN(allow_anonymous),
     .def = "false",
     .doc = "true admits clients that did not authenticate on a listener bound to anything but loopback "
            "(loopback listeners always admit them). They are `User:ANONYMOUS` to kafka.acls, and without "
            "acls read every topic. Without it such a listener needs tls with require_client_cert, or tls "
            "and sasl, and mqlogd refuses to start."},
    {.name = NULL},
};

static void mq_kafka_listener_fini(void *obj)
{
    struct mq_config_kafka_listener *l = obj;
    free(l->listen_host);
    free(l->advertised_host);
}

static const struct mq_csection mq_csection_kafka_listener;

static void mq_kafka_listener_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                                    const yaml_node_t *const *vals)
{
    const struct mq_csection *sec = &mq_csection_kafka_listener;
    struct mq_config_kafka_listener *l = obj;
    struct mq_config *cfg = mq_cctx_config(ctx);
    mq_cctx_loc(ctx, node, &l->loc);
    const yaml_node_t *tls = mq_cctx_value(sec, vals, "tls");
    l->tls = tls && tls->type == YAML_MAPPING_NODE;
    const yaml_node_t *listen_at = mq_cctx_value(sec, vals, "listen");
    mq_listener_rules(ctx, l, listen_at, mq_cctx_value(sec, vals, "advertised"),
                      mq_cctx_value(sec, vals, "sasl"));
    if (l->tls && l->sasl && l->tls_opts.principal_set)
        mq_cctx_error(ctx, mq_cctx_value(sec, vals, "sasl"),
                      "sasl: the SASL user is this listener's principal: its tls cannot map certificates to "
                      "principals (remove tls.principal, or sasl)");
    /* l is the last element of cfg->kafka.listeners (which may move as it grows: indexes are kept). */
    size_t first;
    if (l->listen && l->listen_port != 0 &&
        !mq_cctx_name_first(ctx, MQ_CNAMES_LISTEN, l->listen, (size_t)(l - cfg->kafka.listeners), &first))
        mq_cctx_error(ctx, listen_at, "listen: %s is the address of the listener at line %d too", l->listen,
                      cfg->kafka.listeners[first].loc.line);
}

static const struct mq_csection mq_csection_kafka_listener = {
    .name = "kafka.listeners[]",
    .what = "a Kafka listener",
    .doc = "One entry per address the Kafka endpoint listens on, each with its own advertised address and "
           "security, so that an open loopback listener can run beside a secured one on the site network. "
           "The limits of the kafka section (max_connections, timeouts) count over all listeners together. "
           "Listeners are opened at start: a reload (SIGHUP) that changes them logs that the change takes "
           "effect at the next start.",
    .size = sizeof(struct mq_config_kafka_listener),
    .keys = mq_keys_kafka_listener,
    .check = mq_kafka_listener_check,
    .fini = mq_kafka_listener_fini,
};

/* ---- kafka.acls[] ---- */

/* Its check hook refers to it. */
static const struct mq_csection mq_csection_kafka_acl;

#define ACL(field) offsetof(struct mq_config_kafka_acl, field)

static const struct mq_ckey mq_keys_kafka_acl[] = {
    {.name = "principal",
     .type = MQ_CT_STRING,
     .off = ACL(principal),
     .flags = MQ_CK_REQUIRED,
     .doc = "Whom the entry is for: `User:NAME`, where NAME is a SASL user, a client certificate's DN "
            "or CN (see kafka.listeners[].tls.principal) or ANONYMOUS (clients that did not "
            "authenticate); `User:*` is every client. Compared exactly (case matters)."},
    {.name = "topics",
     .type = MQ_CT_GRANTS,
     .off = ACL(topics),
     .off2 = ACL(topic_ops),
     .off3 = ACL(ntopics),
     .res = MQ_ACL_TOPIC,
     .def_doc = "none",
     .doc = "Topic patterns, each with the operations allowed on the topics it matches: `describe` (see "
            "the topic: Metadata, ListOffsets, OffsetFetch, DescribeConfigs), `read` (Fetch, OffsetCommit; "
            "implies describe), `describe_configs` (DescribeConfigs alone; describe implies it), `all`. "
            "`{\"telemetry.*\": [read], alerts: describe}`."},
    {.name = "groups",
     .type = MQ_CT_GRANTS,
     .off = ACL(groups),
     .off2 = ACL(group_ops),
     .off3 = ACL(ngroups),
     .res = MQ_ACL_GROUP,
     .def_doc = "none",
     .doc = "Consumer group patterns, each with the operations allowed on the groups it matches: "
            "`describe` (FindCoordinator, OffsetFetch, DescribeGroups, ListGroups shows it), `read` (join "
            "the group and commit its offsets; implies describe), `delete` (DeleteGroups; implies "
            "describe), `all`. A group pattern may hold any character; `\\` escapes a wildcard."},
    {.name = NULL},
};

static void mq_kafka_acl_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                               const yaml_node_t *const *vals)
{
    const struct mq_csection *sec = &mq_csection_kafka_acl;
    struct mq_config_kafka_acl *a = obj;
    mq_cctx_loc(ctx, node, &a->loc);
    char why[300];
    if (a->principal && !mq_acl_principal_valid(a->principal, why, sizeof why))
        mq_cctx_error(ctx, mq_cctx_value(sec, vals, "principal"), "principal: %s", why);
    if (!mq_cctx_value(sec, vals, "topics") && !mq_cctx_value(sec, vals, "groups"))
        mq_cctx_error(ctx, node, "an acls entry allows nothing: give it topics, groups or both");
}

static const struct mq_csection mq_csection_kafka_acl = {
    .name = "kafka.acls[]",
    .what = "an acls entry",
    .doc = "One principal's rights (see Authorization above). Several entries may name the same "
           "principal; a client has the rights of every entry for its principal and of every `User:*` "
           "entry.",
    .size = sizeof(struct mq_config_kafka_acl),
    .keys = mq_keys_kafka_acl,
    .check = mq_kafka_acl_check,
};

/* ---- kafka ---- */

#define KFK(field) offsetof(struct mq_config_kafka, field)

static const struct mq_ckey mq_keys_kafka[] = {
    {.name = "listen",
     .type = MQ_CT_HOSTPORT,
     .off = KFK(listen),
     .def_doc = "no listener",
     .min = 0,
     .max = 65535,
     .doc = "The single form of one plaintext listener: HOST:PORT where Kafka consumers connect (e.g. "
            "127.0.0.1:9092; [::1]:9092 for IPv6). Port 0 picks a free port. The same rules as "
            "kafka.listeners[].listen apply; for TLS or several addresses use listeners instead. Like "
            "every listener setting it takes effect at the next start, not on reload."},
    {.name = "advertised",
     .type = MQ_CT_HOSTPORT,
     .off = KFK(advertised),
     .def_doc = "listen",
     .min = 1,
     .max = 65535,
     .doc = "HOST:PORT that consumers are told to connect to, when it differs from listen."},
    {.name = "allow_anonymous",
     .type = MQ_CT_BOOL,
     .off = KFK(allow_anonymous),
     .def = "false",
     .doc = "The single form's kafka.listeners[].allow_anonymous: true lets anyone who reaches a listen "
            "address other than loopback in (as User:ANONYMOUS: without kafka.acls, to every topic)."},
    {.name = "listeners",
     .type = MQ_CT_LIST,
     .off = KFK(listeners),
     .off2 = KFK(nlisteners),
     .sub = &mq_csection_kafka_listener,
     .def_doc = "the single form's listener, if any",
     .doc = "The listeners (see kafka.listeners[]), instead of listen and advertised. A change takes effect "
            "at the next start, not on reload."},
    {.name = "max_connections",
     .type = MQ_CT_INT,
     .off = KFK(max_connections),
     .def = "1024",
     .min = 1,
     .max = 1000000,
     .doc = "The most client connections open at once; further ones are closed as soon as they are "
            "accepted. Refusals are counted (SIGUSR1) and logged at most every 10 s. mqlogd raises its "
            "open files limit (RLIMIT_NOFILE) to the hard limit at start, and warns when even that is too "
            "low for this."},
    {.name = "max_connections_per_ip",
     .type = MQ_CT_INT,
     .off = KFK(max_connections_per_ip),
     .def = "512",
     .min = 0,
     .max = 1000000,
     .doc = "The most connections open at once from one client address, so that one host cannot take "
            "every slot of max_connections; 0 means no such limit."},
    {.name = "idle_timeout",
     .type = MQ_CT_DURATION,
     .off = KFK(idle_timeout_ms),
     .def = "10m",
     .min = 0,
     .max = 7 * DAY,
     .doc = "Close a connection that sent and received nothing for this long while no request of it was "
            "waiting (Kafka's connections.max.idle.ms); 0 never closes idle connections."},
    {.name = "handshake_timeout",
     .type = MQ_CT_DURATION,
     .off = KFK(handshake_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = HOUR,
     .doc = "Close a connection that has not sent a whole request this long after connecting (the TLS "
            "handshake included; with authentication: that has not authenticated), so that silent sockets "
            "cannot hold the connection slots."},
    {.name = "send_timeout",
     .type = MQ_CT_DURATION,
     .off = KFK(send_timeout_ms),
     .def = "1m",
     .min = 100,
     .max = DAY,
     .doc = "Close a connection whose answers could not be sent, not even in part, for this long: a "
            "client that stopped reading. Until then its further requests wait, and its socket is not "
            "read while its unsent answers hold 16MiB."},
    {.name = "max_request_partitions",
     .type = MQ_CT_INT,
     .off = KFK(max_request_partitions),
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .doc = "The most topics, and the most topic-partitions in all, one request may list. A larger "
            "request is refused: with INVALID_REQUEST where its response has a top-level error (Fetch "
            "v7+, OffsetFetch v2+), otherwise by closing the connection; either is logged (at most every "
            "10 s) and counted."},
    {.name = "fetch_max_bytes",
     .type = MQ_CT_SIZE,
     .off = KFK(fetch_max_bytes),
     .def = "55MiB",
     .min = KIB,
     .max = GIB,
     .doc = "The most bytes one Fetch response carries, whatever the client asks for, its partition "
            "headers included (Kafka's fetch.max.bytes). As in Kafka, the first batch goes out whole even "
            "when it is larger."},
    {.name = "acls",
     .type = MQ_CT_LIST,
     .off = KFK(acls),
     .off2 = KFK(nacls),
     .sub = &mq_csection_kafka_acl,
     .def_doc = "none: every client may read every topic and use every group",
     .doc = "Who may see and read which topics and use which consumer groups (see kafka.acls[] and "
            "Authorization above). Given, even as `[]`, a client may do only what an entry allows. A "
            "reload (SIGHUP) applies a change to the requests that follow it, on open connections too."},
    {.name = NULL},
};

/* The single form as listeners[0]: copies of its strings, owned by the list like any parsed element. */
static void mq_kafka_single(struct mq_cctx *ctx, struct mq_config_kafka *k, const yaml_node_t *const *vals)
{
    const struct mq_csection *sec = &mq_csection_kafka;
    struct mq_config_kafka_listener *l = calloc(1, sizeof *l);
    if (!l) {
        mq_cctx_oom(ctx);
        return;
    }
    k->listeners = l;
    k->nlisteners = 1;
    const yaml_node_t *listen_at = mq_cctx_value(sec, vals, "listen");
    mq_cctx_loc(ctx, listen_at, &l->loc);
    l->allow_anonymous = k->allow_anonymous;
    if (!(l->listen = strdup(k->listen)) || (k->advertised && !(l->advertised = strdup(k->advertised)))) {
        mq_cctx_oom(ctx);
        return;
    }
    mq_listener_rules(ctx, l, listen_at, mq_cctx_value(sec, vals, "advertised"), NULL);
    k->listen_host = l->listen_host ? strdup(l->listen_host) : NULL;
    k->listen_port = l->listen_port;
    k->advertised_host = l->advertised_host ? strdup(l->advertised_host) : NULL;
    k->advertised_port = l->advertised_port;
    if ((l->listen_host && !k->listen_host) || (l->advertised_host && !k->advertised_host) ||
        (!k->advertised && l->advertised && !(k->advertised = strdup(l->advertised))))
        mq_cctx_oom(ctx);
}

static void mq_kafka_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node,
                           const yaml_node_t *const *vals)
{
    (void)node;
    const struct mq_csection *sec = &mq_csection_kafka;
    struct mq_config_kafka *k = obj;
    k->acls_given = mq_cctx_value(sec, vals, "acls") != NULL;
    const yaml_node_t *listeners = mq_cctx_value(sec, vals, "listeners");
    if (listeners) {
        const char *single[] = {"listen", "advertised", "allow_anonymous"};
        for (size_t i = 0; i < 3; i++)
            if (mq_cctx_value(sec, vals, single[i]))
                mq_cctx_error(
                    ctx, mq_cctx_value(sec, vals, single[i]),
                    "%s belongs to the single form of one listener: with listeners, give it in each "
                    "listener's entry",
                    single[i]);
        return;
    }
    if (k->advertised && !k->listen) {
        mq_cctx_error(ctx, mq_cctx_value(sec, vals, "advertised"),
                      "advertised needs listen: there is no Kafka listener to advertise");
        return;
    }
    if (k->listen)
        mq_kafka_single(ctx, k, vals);
}

static void mq_kafka_fini(void *obj)
{
    struct mq_config_kafka *k = obj;
    free(k->listen_host);
    free(k->advertised_host);
}

const struct mq_csection mq_csection_kafka = {
    .name = "kafka",
    .what = "the kafka section",
    .doc = "The Kafka consumer endpoint, which serves the stored topics to Kafka clients: one listener "
           "written as listen (and advertised), or several as listeners. Its limits count over all "
           "listeners together.",
    .keys = mq_keys_kafka,
    .check = mq_kafka_check,
    .fini = mq_kafka_fini,
};
