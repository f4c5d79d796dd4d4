/*
 * test_acl.c - unit tests of the authorization rules (gateway/acl/): glob patterns against fnmatch's
 * reading, operation names and what they imply, principals, and rule sets (a principal's own rules
 * joined with User:*'s, deny by default).
 */
#include <CUnit/CUnit.h>
#include <fnmatch.h>
#include <string.h>

#include "acl/acl.h"
#include "testutil.h"

static bool match(const char *p, const char *s)
{
    return mq_acl_glob_match(p, s, strlen(s));
}

static void test_glob(void)
{
    static const char *const pats[] = {"telemetry.*", "*", "a?c",   "[a-c]x", "[!a-c]x", "[^a]*", "*.hall.*",
                                       "a*b*c",       "",  "x[]]y", "[a-]z",  "a\\*b",   "**",    "a*"};
    static const char *const names[] = {"telemetry.hall",
                                        "telemetry.",
                                        "telemetry",
                                        "abc",
                                        "ac",
                                        "bx",
                                        "dx",
                                        "ax",
                                        "a",
                                        "",
                                        "x]y",
                                        "-z",
                                        "a*b",
                                        "axb",
                                        "t.hall.2",
                                        "aXbYc"};
    /* The same answers as fnmatch(3) without flags, which acl.h promises. */
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
            bool want = fnmatch(pats[i], names[j], 0) == 0;
            if (match(pats[i], names[j]) != want)
                CU_FAIL_FATAL("mq_acl_glob_match disagrees with fnmatch");
        }
    /* Names are views, not strings: only len bytes count. */
    CU_ASSERT(mq_acl_glob_match("ab", "abc", 2));
    CU_ASSERT(!mq_acl_glob_match("abc", "abc", 2));
    CU_ASSERT(mq_acl_glob_match("a*", "a\0b", 3));

    char why[200];
    CU_ASSERT(mq_acl_glob_valid("analytics-*", why, sizeof why));
    CU_ASSERT(mq_acl_glob_valid("g[]]", why, sizeof why));
    CU_ASSERT(!mq_acl_glob_valid("", why, sizeof why));
    CU_ASSERT(!mq_acl_glob_valid("bad[set", why, sizeof why));
    CU_ASSERT(strstr(why, "position 4") != NULL);
    CU_ASSERT(!mq_acl_glob_valid("end\\", why, sizeof why));
}

static void test_ops_and_principals(void)
{
    CU_ASSERT_EQUAL(mq_acl_op_parse(MQ_ACL_TOPIC, "read"), MQ_ACL_READ);
    CU_ASSERT_EQUAL(mq_acl_op_parse(MQ_ACL_TOPIC, "describe_configs"), MQ_ACL_DESCRIBE_CONFIGS);
    CU_ASSERT_EQUAL(mq_acl_op_parse(MQ_ACL_TOPIC, "delete"), 0u); /* DeleteTopics is not served */
    CU_ASSERT_EQUAL(mq_acl_op_parse(MQ_ACL_GROUP, "delete"), MQ_ACL_DELETE);
    CU_ASSERT_EQUAL(mq_acl_op_parse(MQ_ACL_GROUP, "describe_configs"), 0u);
    CU_ASSERT_EQUAL(mq_acl_op_parse(MQ_ACL_GROUP, "Read"), 0u); /* names are lower case */
    CU_ASSERT_EQUAL(mq_acl_op_parse(MQ_ACL_GROUP, "all"), MQ_ACL_DESCRIBE | MQ_ACL_READ | MQ_ACL_DELETE);
    char why[200];
    CU_ASSERT(mq_acl_principal_valid("User:alice", why, sizeof why));
    CU_ASSERT(mq_acl_principal_valid("User:CN=reader,O=plant-7", why, sizeof why));
    CU_ASSERT(mq_acl_principal_valid(MQ_ACL_ANYONE, why, sizeof why));
    CU_ASSERT(!mq_acl_principal_valid("alice", why, sizeof why));
    CU_ASSERT(!mq_acl_principal_valid("User:", why, sizeof why));
    CU_ASSERT(!mq_acl_principal_valid("Group:x", why, sizeof why));
    CU_ASSERT(!mq_acl_principal_valid("User:a\nb", why, sizeof why));
}

static unsigned topic(const struct mq_acl *acl, const char *principal, const char *name)
{
    return mq_acl_granted(mq_acl_who(acl, principal), MQ_ACL_TOPIC, name, strlen(name));
}

static unsigned group(const struct mq_acl *acl, const char *principal, const char *name)
{
    return mq_acl_granted(mq_acl_who(acl, principal), MQ_ACL_GROUP, name, strlen(name));
}

static void test_rules(void)
{
    const struct mq_acl_rule rules[] = {
        {"User:alice", MQ_ACL_TOPIC, "telemetry.*", MQ_ACL_READ},
        {"User:alice", MQ_ACL_TOPIC, "alerts", MQ_ACL_DESCRIBE},
        {"User:alice", MQ_ACL_GROUP, "analytics-*", MQ_ACL_READ},
        {"User:*", MQ_ACL_TOPIC, "public.*", MQ_ACL_READ},
        {"User:bob", MQ_ACL_GROUP, "ops", MQ_ACL_DELETE},
        {"User:alice", MQ_ACL_TOPIC, "telemetry.secret", MQ_ACL_DESCRIBE_CONFIGS},
    };
    struct mq_acl *acl = NULL;
    CU_ASSERT_EQUAL_FATAL(mq_acl_new(rules, sizeof rules / sizeof rules[0], &acl), MQ_OK);
    unsigned d = MQ_ACL_DESCRIBE, r = MQ_ACL_READ, dc = MQ_ACL_DESCRIBE_CONFIGS;
    /* Read implies Describe, Describe implies DescribeConfigs (topics). */
    CU_ASSERT_EQUAL(topic(acl, "User:alice", "telemetry.hall"), d | r | dc);
    CU_ASSERT_EQUAL(topic(acl, "User:alice", "alerts"), d | dc);
    CU_ASSERT_EQUAL(topic(acl, "User:alice", "alerts.x"), 0u);            /* a literal matches itself only */
    CU_ASSERT_EQUAL(topic(acl, "User:alice", "public.news"), d | r | dc); /* User:* joins her rules */
    CU_ASSERT_EQUAL(topic(acl, "User:alice", "other"), 0u);
    CU_ASSERT_EQUAL(group(acl, "User:alice", "analytics-1"), d | r);
    CU_ASSERT_EQUAL(group(acl, "User:alice", "telemetry.hall"), 0u); /* topic rules are not group rules */
    /* Delete implies Describe, not Read. */
    CU_ASSERT_EQUAL(group(acl, "User:bob", "ops"), d | MQ_ACL_DELETE);
    CU_ASSERT_EQUAL(topic(acl, "User:bob", "telemetry.hall"), 0u);
    CU_ASSERT_EQUAL(topic(acl, "User:bob", "public.x"), d | r | dc);
    /* A principal no rule names gets User:*'s rules only, as does an unauthenticated one. */
    CU_ASSERT_EQUAL(topic(acl, "User:carol", "public.x"), d | r | dc);
    CU_ASSERT_EQUAL(topic(acl, MQ_ACL_ANONYMOUS, "telemetry.hall"), 0u);
    CU_ASSERT_EQUAL(topic(acl, NULL, "public.x"), d | r | dc);
    /* Principals compare exactly. */
    CU_ASSERT_EQUAL(topic(acl, "User:Alice", "telemetry.hall"), 0u);
    mq_acl_free(acl);

    /* No rules at all: nothing is allowed. */
    CU_ASSERT_EQUAL_FATAL(mq_acl_new(NULL, 0, &acl), MQ_OK);
    CU_ASSERT_EQUAL(topic(acl, "User:alice", "x"), 0u);
    mq_acl_free(acl);
    mq_acl_free(NULL);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_glob),
        MQ_TEST(test_ops_and_principals),
        MQ_TEST(test_rules),
        MQ_TEST_END,
    };
    return mq_test_run("acl", tests);
}
