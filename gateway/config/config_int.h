/*
 * config_int.h - the config module's internals shared by its files: the loader's state (config.c, which
 * reads the files, follows includes and collects the errors), the section walker (section.c) and the value
 * checks (value.c). The key tables and the hooks they call are in table.h.
 */
#ifndef MQ_CONFIG_INT_H
#define MQ_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config/table.h"

#define MQ_CFG_MAX_NAME 64

struct mq_cerr; /* one collected error (config.c) */

/* strset.c: a set of strings with a number for each, for the duplicate checks. The keys are not copied:
 * each must outlive the set. A zeroed struct is an empty set. */
struct mq_cset {
    struct mq_cset_slot *slots;
    size_t cap, n;
};
/* Adds key with value: 1 when added, 0 when key is there already (its value in *prev, when not NULL), -1
 * when out of memory. */
int mq_cset_add(struct mq_cset *set, const char *key, size_t value, size_t *prev);
/* Frees the table (not the keys); the set is empty again. */
void mq_cset_free(struct mq_cset *set);

struct mq_cctx {
    struct mq_config *cfg;
    size_t file;     /* the file being read */
    const char *dir; /* its directory, absolute */
    yaml_document_t *doc;
    struct mq_cerr *errs;
    size_t nerrs, cap, dropped;
    bool oom;
    bool too_big;
    int depth;
    char **seen; /* real paths of the files loaded, to refuse cycles and double includes */
    size_t nseen;
    size_t visits;
    size_t bytes, nodes;               /* read so far, from every file of this load (config.c's bounds) */
    struct mq_cset names[MQ_CNAMES_N]; /* mq_cctx_name_first()'s, one per list */
};

/* config.c: loads the mapping files pattern names (relative to the current file's directory), in name
 * order; errors are reported at node. */
void mq_cinclude(struct mq_cctx *ctx, const yaml_node_t *node, const char *pattern);

/* section.c: parses node (a mapping, or NULL: every key absent) into obj with sec's keys, then runs
 * sec's check hook. */
void mq_csection_parse(struct mq_cctx *ctx, const struct mq_csection *sec, const yaml_node_t *node,
                       void *obj);
/* Frees what sec's keys (and its fini hook) allocated in obj; obj itself stays the caller's. */
void mq_csection_free(const struct mq_csection *sec, void *obj);
/* YAML's spellings of null in a plain scalar (including the empty value of "key:"). */
bool mq_cnode_null(const yaml_node_t *node);

/* value.c: true when the value is valid; else false with the reason in why. */
bool mq_cname_valid(const char *s); /* 1..MQ_CFG_MAX_NAME of [a-zA-Z0-9._-] */
bool mq_cglob_valid(const char *p, char *why, size_t size);
bool mq_cservers_valid(const char *s, char *why, size_t size);
bool mq_cremote_valid(const char *t, char *why, size_t size);

#endif
