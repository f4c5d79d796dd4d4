/*
 * table.h - the declarative description of the configuration (internal to the config module and its doc
 * generator): one table of keys per section, each key with its type, where it is stored, its default (as the
 * text a user would write, parsed by the same code as user input), its bounds and its description.
 *
 * section.c walks a YAML document with these tables; gateway/config/doc/confdoc.c renders them as
 * docs/configuration.md. Changing a key means changing only its row here (and the struct field it fills).
 */
#ifndef MQ_CONFIG_TABLE_H
#define MQ_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"

enum mq_ctype {
    MQ_CT_STRING,    /* char *: non-empty text */
    MQ_CT_NAME,      /* char *: 1..64 of [a-zA-Z0-9._-] */
    MQ_CT_PATH,      /* char *: a file name, made absolute against the directory of the file it is in */
    MQ_CT_INT,       /* int64_t, a plain (unquoted) decimal integer within [min, max] */
    MQ_CT_BOOL,      /* bool, exactly true or false, unquoted */
    MQ_CT_SIZE,      /* int64_t bytes: 4096, 512KiB, 256MiB, 1GiB (also kB, MB, GB) within [min, max] */
    MQ_CT_DURATION,  /* int64_t milliseconds: 250ms, 30s, 5m, 12h, 7d, 2w; a bare number is ms */
    MQ_CT_SECONDS,   /* int64_t seconds: a bare number is seconds (what MQTT counts in), 30s, 5m, 1h also */
    MQ_CT_ENUM,      /* int: the value of the matching name in enums */
    MQ_CT_URL,       /* char *: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] */
    MQ_CT_HOSTPORT,  /* char *: HOST:PORT with PORT in [min, max] */
    MQ_CT_FILTERS,   /* char ** at off, size_t count at off2: one MQTT topic filter or a list */
    MQ_CT_TEMPLATE,  /* char *: a log topic template */
    MQ_CT_KEY,       /* char *: a key strategy */
    MQ_CT_UNMATCHED, /* char *: "drop" (stored as NULL) or a log topic name */
    MQ_CT_INCLUDE,   /* nothing stored: one glob or a list; the files are loaded as mapping files */
    MQ_CT_MAP,       /* a nested section whose struct lies at off */
    MQ_CT_LIST,      /* a list of sections: element array at off, size_t count at off2 */
    MQ_CT_CHOICE,    /* char *: one of the names in enums, stored as written */
    MQ_CT_SERVERS,   /* char *: HOST:PORT[,HOST:PORT...] (Kafka's bootstrap.servers) */
    MQ_CT_GLOBS,     /* char ** at off, size_t count at off2: one log topic pattern (fnmatch) or a list */
    MQ_CT_REMOTE,    /* char *: a remote topic template with {site} and {topic} */
    MQ_CT_START,     /* enum mq_forward_start at off, int64_t ms at off2: earliest, latest or @EPOCH_MS */
    MQ_CT_PROPS,   /* a mapping of NAME: VALUE: char ** names at off, values at off2, size_t count at off3 */
    MQ_CT_CHOICES, /* unsigned at off: one of the names in enums or a list of them, each once, stored as the
                      OR of 1 << value */
    MQ_CT_GRANTS,  /* a mapping of PATTERN: OPERATION or a list of them, for the resources of type res
                      (enum mq_acl_resource): char ** patterns at off, unsigned * MQ_ACL_* bits at off2,
                      size_t count at off3 */
};

struct mq_cenum {
    const char *name;
    int value;
};

/* Required in a section that is given (the keys of an absent optional section are never required). */
#define MQ_CK_REQUIRED 1u

struct mq_csection;

struct mq_ckey {
    const char *name;
    enum mq_ctype type;
    size_t off, off2, off3;
    const char *def;     /* the default as YAML text, or NULL: required (MQ_CK_REQUIRED) or optional */
    const char *def_doc; /* what the docs say when def is NULL and the key is optional */
    int64_t min, max;    /* INT, SIZE, DURATION; the port of HOSTPORT */
    const struct mq_cenum *enums;  /* ENUM: terminated by a NULL name */
    const struct mq_csection *sub; /* MAP, LIST */
    /*
     * PROPS: checks one property (a valid name and a scalar value); false with the reason in why, and
     * *at_value true when the value rather than the name is wrong (the error is reported there).
     */
    bool (*prop)(const char *name, const char *value, bool *at_value, char *why, size_t why_size);
    int res; /* GRANTS: the enum mq_acl_resource its patterns name */
    unsigned flags;
    const char *doc;
};

struct mq_cctx; /* the parser's state (config_int.h) */

struct mq_csection {
    const char *name; /* as the docs and error messages name it: "log", "brokers[]", "brokers[].tls" */
    const char *what; /* in messages: "the log section", "a broker" */
    const char *doc;
    size_t size;                /* the struct one element fills (LIST elements) */
    const struct mq_ckey *keys; /* terminated by a NULL name */
    void (*init)(void *obj);    /* sets fields whose "absent" value is not zero, before parsing */
    /* Cross-key checks and derived fields, after every key; vals[i] is the value node of keys[i] or NULL. */
    void (*check)(struct mq_cctx *ctx, void *obj, const yaml_node_t *node, const yaml_node_t *const *vals);
    void (*fini)(void *obj); /* frees derived fields the keys do not describe */
};

/* Units of the tables' bounds: sizes in bytes, durations in milliseconds. */
#define KIB  (1024LL)
#define MIB  (1024LL * 1024)
#define GIB  (1024LL * 1024 * 1024)
#define TIB  (1024LL * 1024 * 1024 * 1024)
#define SEC  (1000LL)
#define MIN  (60LL * 1000)
#define HOUR (3600LL * 1000)
#define DAY  (86400LL * 1000)

/* The main file and included mapping files (table.c). */
extern const struct mq_csection mq_csection_top;
extern const struct mq_csection mq_csection_mapfile;
/* The list sections, one file each (table_broker.c, table_mapping.c, table_forward.c). */
extern const struct mq_csection mq_csection_broker;
extern const struct mq_csection mq_csection_mapping;
extern const struct mq_csection mq_csection_forward;
/* The Kafka endpoint and its listeners (table_kafka.c). */
extern const struct mq_csection mq_csection_kafka;
/* The codecs of log.compression and mappings[].compression (table.c). */
extern const struct mq_cenum mq_enum_codec[];
/* The operator endpoints (table_http.c). */
extern const struct mq_csection mq_csection_http;
/* A broker's TLS keys and their check, which forward[].tls shares (table_broker.c). */
extern const struct mq_ckey mq_keys_tls[];
void mq_tls_check(struct mq_cctx *ctx, void *obj, const yaml_node_t *node, const yaml_node_t *const *vals);

/* For check hooks (config.c). */
void mq_cctx_error(struct mq_cctx *ctx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mq_cctx_oom(struct mq_cctx *ctx);
struct mq_config *mq_cctx_config(struct mq_cctx *ctx);
void mq_cctx_loc(struct mq_cctx *ctx, const yaml_node_t *node, struct mq_config_loc *loc);
/* The value node of key `name` in a check hook's vals, or NULL. */
const yaml_node_t *mq_cctx_value(const struct mq_csection *sec, const yaml_node_t *const *vals,
                                 const char *name);
/* The lists whose elements' names must differ. */
enum mq_cnames { MQ_CNAMES_BROKER, MQ_CNAMES_FORWARD, MQ_CNAMES_LISTEN, MQ_CNAMES_N };
/* Remembers that element `index` of a list is called name (kept, not copied, until the load ends): true
 * when it is the first of that name, else false with the earlier one's index in *first. */
bool mq_cctx_name_first(struct mq_cctx *ctx, enum mq_cnames list, const char *name, size_t index,
                        size_t *first);

/* Formats bytes or milliseconds the way a user would write them ("256MiB", "7d", "1500ms"). */
void mq_config_fmt_size(int64_t bytes, char *buf, size_t size);
void mq_config_fmt_duration(int64_t ms, char *buf, size_t size);

#endif
