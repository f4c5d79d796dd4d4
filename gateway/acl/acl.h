/*
 * acl.h - authorization rules for the Kafka endpoint, in Kafka's model: a principal ("User:alice") is
 * allowed operations (Describe, Read, ...) on resources (topics, consumer groups) named by glob patterns.
 *
 * Pure: no I/O, no Kafka wire, no configuration parser. The configuration checks rules with the
 * functions below (operation names, patterns, principals) and the daemon builds a struct mq_acl from
 * them; the endpoint asks it what a principal may do with a topic or group.
 *
 * The rules only allow: what no rule grants is denied (Kafka's allow.everyone.if.no.acl.found=false).
 * A rule for "User:*" applies to every principal. Operations imply others as in Kafka: Read and Delete
 * imply Describe. mqlog adds one: Describe on a topic implies DescribeConfigs, because the settings a
 * topic reports (retention, segment size) say nothing a principal that sees the topic should not know,
 * and tools that list topics (sarama's ClusterAdmin) ask for them.
 *
 * Patterns are matched against whole names, as fnmatch(3) without flags: `*` any run of characters, `?`
 * one, `[abc]`, `[a-z]` one of a set, `[!abc]` (or `[^abc]`) one not in it, `\x` the character x itself.
 *
 * Threads: a struct mq_acl is immutable once built; any number of threads may read it.
 */
#ifndef MQ_ACL_H
#define MQ_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

enum mq_acl_resource { MQ_ACL_TOPIC, MQ_ACL_GROUP, MQ_ACL__RESOURCES };

/* Operations, one bit each. */
#define MQ_ACL_DESCRIBE         (1u << 0)
#define MQ_ACL_READ             (1u << 1)
#define MQ_ACL_DESCRIBE_CONFIGS (1u << 2) /* topics */
#define MQ_ACL_DELETE           (1u << 3) /* groups */

/* The principal of every client (in a rule: any client). */
#define MQ_ACL_ANYONE "User:*"
/* The principal of a client that did not authenticate, as Kafka names it. */
#define MQ_ACL_ANONYMOUS "User:ANONYMOUS"

/* The operations named `name` on resources of type res ("describe", "read", "describe_configs" for
 * topics, "delete" for groups, "all" for every one of them), or 0 when there is no such operation. */
unsigned mq_acl_op_parse(enum mq_acl_resource res, const char *name);

/* The names mq_acl_op_parse() accepts for res, comma-separated, for messages and docs. */
const char *mq_acl_op_names(enum mq_acl_resource res);

/* True when p is a pattern mq_acl_glob_match() reads as intended: not empty, every '[' closed by a ']'
 * after at least one character, no '\' at its end. Else false with the reason in why. */
bool mq_acl_glob_valid(const char *p, char *why, size_t size);

/* True when pattern p matches the whole of s[0..len) (s need not be NUL-terminated). */
bool mq_acl_glob_match(const char *p, const char *s, size_t len);

/* True when s is a principal a rule can name: "User:" and at least one character, "User:*" for anyone.
 * Else false with the reason in why. */
bool mq_acl_principal_valid(const char *s, char *why, size_t size);

/* One rule: principal may do ops (MQ_ACL_* bits) on the resources of type res that pattern matches. */
struct mq_acl_rule {
    const char *principal;
    enum mq_acl_resource res;
    const char *pattern;
    unsigned ops;
};

struct mq_acl;     /* a set of rules */
struct mq_acl_who; /* the rules of one principal */

/* Builds the set of n rules (copied). On MQ_OK the caller owns *aclp and frees it with mq_acl_free(). */
enum mq_err mq_acl_new(const struct mq_acl_rule *rules, size_t n, struct mq_acl **aclp);

/* Accepts NULL. */
void mq_acl_free(struct mq_acl *acl);

/* The rules that apply to principal: its own and those of User:*. Never NULL; owned by acl. */
const struct mq_acl_who *mq_acl_who(const struct mq_acl *acl, const char *principal);

/* The operations who may do on the resource of type res named name[0..len), implied ones included. */
unsigned mq_acl_granted(const struct mq_acl_who *who, enum mq_acl_resource res, const char *name, size_t len);

#endif
