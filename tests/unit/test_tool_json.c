/*
 * test_tool_json.c - the JSON reader `mqlog status` reads mqlogd's /status.json with (tool/json.h): the
 * values and escapes it must understand, and the malformed documents it must refuse rather than guess at.
 */
#include <string.h>

#include "testutil.h"
#include "tool/json.h"

static struct mq_json *parse(const char *text)
{
    struct mq_json *v = NULL;
    char err[128] = "";
    if (!mq_json_parse(text, strlen(text), &v, err, sizeof err))
        fprintf(stderr, "\n  %s: %s\n", text, err);
    return v;
}

static void test_values(void)
{
    struct mq_json *v = parse(" {\"a\":1,\"b\":-2.5,\"c\":\"x\\u00e9\\n\\\"\",\"d\":[true,false,null,[]],"
                              "\"e\":{},\"big\":9007199254740993,\"a\":2,\"neg\":-0,\"exp\":1e3} ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(mq_json_int(v, "a", 0), 1); /* the first of a repeated member */
    CU_ASSERT_DOUBLE_EQUAL(mq_json_num(v, "b", 0), -2.5, 1e-12);
    CU_ASSERT_EQUAL(mq_json_int(v, "b", 0), -2);
    CU_ASSERT_STRING_EQUAL(mq_json_str(v, "c", ""), "x\xc3\xa9\n\"");
    const struct mq_json *d = mq_json_get(v, "d");
    CU_ASSERT_EQUAL(mq_json_len(d), 4);
    CU_ASSERT_TRUE(mq_json_at(d, 0)->type == MQ_JSON_BOOL && mq_json_at(d, 0)->b);
    CU_ASSERT_TRUE(mq_json_at(d, 1)->type == MQ_JSON_BOOL && !mq_json_at(d, 1)->b);
    CU_ASSERT_EQUAL(mq_json_at(d, 2)->type, MQ_JSON_NULL);
    CU_ASSERT_EQUAL(mq_json_len(mq_json_at(d, 3)), 0);
    CU_ASSERT_PTR_NULL(mq_json_at(d, 4));
    CU_ASSERT_EQUAL(mq_json_get(v, "e")->type, MQ_JSON_OBJECT);
    CU_ASSERT_EQUAL(mq_json_int(v, "big", 0), 9007199254740993LL); /* exact, not through a double */
    CU_ASSERT_EQUAL(mq_json_int(v, "exp", 0), 1000);
    CU_ASSERT_EQUAL(mq_json_int(v, "missing", 7), 7);
    CU_ASSERT_EQUAL(mq_json_int(v, "c", 7), 7);   /* a string is not a number */
    CU_ASSERT_FALSE(mq_json_bool(d, "x", false)); /* an array has no members */
    mq_json_free(v);

    v = parse("\"\\ud83d\\ude00\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v->s, "\xf0\x9f\x98\x80");
    mq_json_free(v);
}

static void refuse(const char *text, const char *want)
{
    struct mq_json *v = NULL;
    char err[128] = "";
    bool ok = mq_json_parse(text, strlen(text), &v, err, sizeof err);
    if (ok || !strstr(err, want))
        fprintf(stderr, "\n  %s: ok %d, error '%s' (want '%s')\n", text, ok, err, want);
    CU_ASSERT_FALSE(ok);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    if (ok)
        mq_json_free(v);
}

static void test_refused(void)
{
    refuse("", "unexpected end");
    refuse("{\"a\":1", "expected ',' or '}'");
    refuse("{\"a\" 1}", "expected ':'");
    refuse("{a:1}", "expected a member name");
    refuse("[1,]", "unexpected character");
    refuse("[1] 2", "text after the value");
    refuse("\"abc", "unterminated string");
    refuse("\"a\x01\"", "control character");
    refuse("\"\\x\"", "bad escape");
    refuse("\"\\u0000\"", "\\u0000");
    refuse("\"\\udc00\"", "bad \\u escape");
    refuse("01", "leading zero");
    refuse("1e", "malformed number");
    refuse("tru", "unexpected character");
    refuse("-", "unexpected character");
    char deep[2 * MQ_JSON_MAX_DEPTH + 3];
    memset(deep, '[', MQ_JSON_MAX_DEPTH + 1);
    memset(deep + MQ_JSON_MAX_DEPTH + 1, ']', MQ_JSON_MAX_DEPTH + 1);
    deep[2 * MQ_JSON_MAX_DEPTH + 2] = '\0';
    refuse(deep, "nested too deep");
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_values),
        MQ_TEST(test_refused),
        MQ_TEST_END,
    };
    return mq_test_run("tool_json", tests);
}
