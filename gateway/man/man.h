/*
 * man.h - manual pages in roff (the man macros), written from the texts mqlog already keeps: a program's
 * --help output and the Markdown the reference generators render (docs/configuration.md). The pages are
 * made at build time (gateway/man/gen/mangen.c, config/doc/confdoc.c --man), so a page cannot disagree
 * with the --help or the reference it comes from.
 *
 * The converters know only the shapes those texts have; anything else comes out as filled text:
 * - --help: "usage: " lines, paragraphs, option blocks ("  -c, --config FILE   what it does", the
 *   description starting in one column per block), a "commands:" block, and paragraphs that start
 *   "Signals:" or "Exit status:".
 * - Markdown: "#" to "###" headings, paragraphs, pipe tables, ``` blocks, `code`, **bold** and *italic*.
 */
#ifndef MQ_MAN_H
#define MQ_MAN_H

#include <stdio.h>

/* What every page's header says. */
struct mq_man_page {
    const char *name;    /* mqlogd */
    const char *section; /* 8 */
    const char *summary; /* the NAME line after "\-" */
    const char *date;    /* YYYY-MM-DD */
    const char *version; /* the project's version, shown as "mqlog VERSION" */
};

/* .TH and the NAME section. */
void mq_man_begin(FILE *out, const struct mq_man_page *page);

/* A .SH heading (upper-cased, as man pages write them). */
void mq_man_section(FILE *out, const char *title);

/* Text escaped for roff: backslashes, a leading '.' or '\'', and '-' where it starts an option or a
 * number (elsewhere a hyphen stays a hyphen). code != 0 escapes every '-' (an option, a value). */
void mq_man_text(FILE *out, const char *s, size_t n, int code);

/* A paragraph of text with Markdown's inline marks (`code` bold, **bold**, *italic*), escaped. */
void mq_man_inline(FILE *out, const char *s, size_t n);

/* A Markdown document: its "# title" line is left out (the page's NAME says it), text before the first
 * "##" heading goes under DESCRIPTION, "##" becomes .SH and "###" .SS; a table row becomes a tagged
 * paragraph (first cell the tag, the last cell the text, the cells between "header: cell"). */
void mq_man_markdown(FILE *out, const char *md);

/* Which parts of a --help text mq_man_help writes. */
enum mq_man_part {
    MQ_MAN_SYNOPSIS,   /* the usage lines, without "usage: " */
    MQ_MAN_COMMANDS,   /* the "commands:" block: one tagged paragraph per command */
    MQ_MAN_BODY,       /* paragraphs and option lists in their order (not usage or commands) */
    MQ_MAN_OPTIONS,    /* only the option lists */
    MQ_MAN_PARAGRAPHS, /* only the paragraphs, not those of signals and exit status */
    MQ_MAN_SIGNALS,    /* the text of the paragraph that starts "Signals:" */
    MQ_MAN_EXIT,       /* the text of the paragraph that starts "Exit status:" */
};

/* Writes one part of a --help text; returns 1 when the text had anything for it, else 0. */
int mq_man_help(FILE *out, const char *help, enum mq_man_part part);

/* The commands a "commands:" block of a --help text lists, as one malloc'ed string of names separated by
 * '\n' (the caller frees it); NULL when the text has no such block or memory ran out. */
char *mq_man_help_commands(const char *help);

/* Drops the .PP lines that directly follow a .SH or .SS (a heading starts a paragraph already; mandoc
 * warns about them) from roff[0..len); returns the new length. */
size_t mq_man_tidy(char *roff, size_t len);

#endif
