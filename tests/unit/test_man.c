/*
 * test_man.c - the roff writer of the man pages (man/man.c): escaping, the shapes of a --help text (usage,
 * option blocks with a tag longer than its column, "commands:", signals and exit status split off a
 * paragraph) and the Markdown subset of the generated references. test_package renders the real pages.
 */
#include <stdlib.h>
#include <string.h>

#include "man/man.h"
#include "testutil.h"

/* Runs fn on a memory stream and returns what it wrote (malloc'ed). */
#define CAPTURE(text, call)                                                                                  \
    do {                                                                                                     \
        size_t _len;                                                                                         \
        FILE *out = open_memstream(&(text), &_len);                                                          \
        CU_ASSERT_FATAL(out != NULL);                                                                        \
        call;                                                                                                \
        fclose(out);                                                                                         \
    } while (0)

static void expect_has(const char *text, const char *want)
{
    if (!strstr(text, want))
        fprintf(stderr, "\nmissing '%s' in:\n%s\n", want, text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
}

static void test_escape(void)
{
    char *text = NULL;
    CAPTURE(text, mq_man_text(out, ".start 'x' a\\b -o read-only x,y", 32, 0));
    /* a leading '.' is no request, a backslash prints, an option's '-' is a minus, a hyphen stays */
    CU_ASSERT_STRING_EQUAL(text, "\\&.start 'x' a\\eb \\-o read-only x,\\:y");
    free(text);
    CAPTURE(text, mq_man_text(out, "a-b", 3, 1));
    CU_ASSERT_STRING_EQUAL(text, "a\\-b");
    free(text);
    CAPTURE(text, mq_man_inline(out, "`a*b` **c** *d* e*f", 19));
    CU_ASSERT_STRING_EQUAL(text, "\\fBa*b\\fR \\fBc\\fR \\fId\\fR e*f");
    free(text);
}

static const char help[] = "usage: prog run -d DIR [--long-option-name SIZE]\n"
                           "                [-x]\n"
                           "\n"
                           "Does things. Read-only.\n"
                           "\n"
                           "commands:\n"
                           "  run     run it\n"
                           "  stop    stop it, with a description\n"
                           "          on two lines\n"
                           "\n"
                           "  -d, --dir DIR            the directory\n"
                           "      --long-option-name SIZE the size: 1MiB,\n"
                           "                           2GiB\n"
                           "  -h, --help               this text\n"
                           "\n"
                           "Signals: SIGHUP reloads.\n"
                           "Exit status: 0 success, 2 usage error.\n";

static void test_help(void)
{
    char *text = NULL;
    CAPTURE(text, mq_man_help(out, help, MQ_MAN_SYNOPSIS));
    CU_ASSERT_STRING_EQUAL(text, ".nf\n\\fBprog\\fR run \\-d DIR [\\-\\-long\\-option\\-name SIZE]\n"
                                 "         [\\-x]\n.fi\n");
    free(text);

    CAPTURE(text, mq_man_help(out, help, MQ_MAN_OPTIONS));
    expect_has(text, ".TP\n\\fB\\-d\\fR, \\fB\\-\\-dir\\fR \\fIDIR\\fR\nthe directory\n");
    /* the tag runs past the description column: it ends at the next space */
    expect_has(text, ".TP\n\\fB\\-\\-long\\-option\\-name\\fR \\fISIZE\\fR\nthe size: 1MiB,\n2GiB\n");
    CU_ASSERT_PTR_NULL(strstr(text, "Does things"));
    free(text);

    CAPTURE(text, mq_man_help(out, help, MQ_MAN_COMMANDS));
    expect_has(text, ".TP\n\\fBrun\\fR\nrun it\n");
    expect_has(text, ".TP\n\\fBstop\\fR\nstop it, with a description\non two lines\n");
    free(text);

    CAPTURE(text, mq_man_help(out, help, MQ_MAN_PARAGRAPHS));
    CU_ASSERT_STRING_EQUAL(text, ".PP\nDoes things. Read-only.\n");
    free(text);
    CAPTURE(text, mq_man_help(out, help, MQ_MAN_SIGNALS));
    CU_ASSERT_STRING_EQUAL(text, "SIGHUP reloads.\n");
    free(text);
    CAPTURE(text, mq_man_help(out, help, MQ_MAN_EXIT));
    CU_ASSERT_STRING_EQUAL(text, "0 success, 2 usage error.\n");
    free(text);

    char *names = mq_man_help_commands(help);
    CU_ASSERT_STRING_EQUAL(names, "run\nstop\n");
    free(names);
    CU_ASSERT_PTR_NULL(mq_man_help_commands("usage: x\n"));
}

static void test_markdown(void)
{
    static const char md[] = "# title\n"
                             "\n"
                             "<!-- generated:\n   do not edit -->\n"
                             "\n"
                             "Intro `x`.\n"
                             "\n"
                             "## Value types\n"
                             "\n"
                             "| key | type | default | description |\n"
                             "|---|---|---|---|\n"
                             "| `a_b` | size |  | What `a|b` is. |\n"
                             "| `c` | integer | `5` | C. |\n"
                             "\n"
                             "```yaml\n"
                             ".x: -1\n"
                             "```\n";
    char *text = NULL;
    CAPTURE(text, mq_man_markdown(out, md));
    size_t len = mq_man_tidy(text, strlen(text));
    text[len] = 0;
    CU_ASSERT_STRING_EQUAL(text, ".SH \"DESCRIPTION\"\n"
                                 "Intro \\fBx\\fR.\n"
                                 ".SH \"VALUE TYPES\"\n"
                                 ".TP\n\\fBa_b\\fR\ntype: size\n.br\nWhat \\fBa|b\\fR is.\n"
                                 ".TP\n\\fBc\\fR\ntype: integer; default: \\fB5\\fR\n.br\nC.\n"
                                 ".PP\n.RS 4\n.nf\n\\&.x: \\-1\n.fi\n.RE\n");
    free(text);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_escape),
        MQ_TEST(test_help),
        MQ_TEST(test_markdown),
        MQ_TEST_END,
    };
    return mq_test_run("man", tests);
}
