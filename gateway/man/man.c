/*
 * man.c - roff for the manual pages: escaping, the Markdown subset of the generated references, and the
 * layout of mqlog's --help texts (see man.h for the shapes each converter knows).
 */
#include "man/man.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void mq_man_begin(FILE *out, const struct mq_man_page *page)
{
    fprintf(out, ".TH \"");
    for (const char *c = page->name; *c; c++)
        fputc(toupper((unsigned char)*c), out);
    fprintf(out, "\" \"%s\" \"%s\" \"mqlog %s\" \"mqlog manual\"\n", page->section, page->date,
            page->version);
    /* Ragged right and no hyphenation: help texts hold long words (JSON shapes, options) that a justified
     * line cannot fit and that must not be split. */
    fputs(".ad l\n.nh\n.SH NAME\n", out);
    mq_man_text(out, page->name, strlen(page->name), 1);
    fputs(" \\- ", out);
    mq_man_text(out, page->summary, strlen(page->summary), 0);
    fputc('\n', out);
}

void mq_man_section(FILE *out, const char *title)
{
    fputs(".SH \"", out);
    for (const char *c = title; *c; c++)
        fputc(*c == '"' ? '\'' : toupper((unsigned char)*c), out);
    fputs("\"\n", out);
}

/* Whether a '-' after c starts a word: an option (-c, --config), a negative number (-N) or a range. */
static int mq_man_word_start(int c)
{
    return c == 0 || c == ' ' || c == '\n' || c == '(' || c == '[' || c == '|' || c == '=' || c == '"' ||
           c == '\'' || c == '{' || c == ',' || c == '/';
}

/* mq_man_text for text that starts a line (line_start) or continues one (after a font change). */
static void mq_man_put(FILE *out, const char *s, size_t n, int code, int line_start)
{
    int prev = line_start ? 0 : ' ';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        /* A line of text starting with . or ' would be a request. */
        if ((prev == 0 || prev == '\n') && (c == '.' || c == '\''))
            fputs("\\&", out);
        if (c == '\\')
            fputs("\\e", out);
        else if (c == '-' && (code || mq_man_word_start(prev) || prev == '-'))
            fputs("\\-", out);
        else if (c == ',' && i + 1 < n && s[i + 1] != ' ')
            fputs(",\\:", out); /* a line may break here: a JSON shape is one long word */
        else
            fputc(c, out);
        prev = (unsigned char)c;
    }
}

void mq_man_text(FILE *out, const char *s, size_t n, int code)
{
    mq_man_put(out, s, n, code, 1);
}

/* The text of s[0..n) up to the first occurrence of mark at or after from, or n. */
static size_t mq_man_find(const char *s, size_t n, size_t from, const char *mark)
{
    size_t m = strlen(mark);
    for (size_t i = from; i + m <= n; i++)
        if (memcmp(s + i, mark, m) == 0)
            return i;
    return n;
}

void mq_man_inline(FILE *out, const char *s, size_t n)
{
    size_t i = 0, plain = 0;
    while (i < n) {
        const char *mark = NULL, *font = NULL;
        int code = 0;
        if (s[i] == '`') {
            mark = "`", font = "\\fB", code = 1;
        } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '*') {
            mark = "**", font = "\\fB";
        } else if (s[i] == '*' && i + 1 < n && s[i + 1] != ' ') {
            mark = "*", font = "\\fI";
        }
        size_t m = mark ? strlen(mark) : 0;
        size_t end = mark ? mq_man_find(s, n, i + m, mark) : n;
        if (!mark || end == n) { /* not a mark, or one that is never closed: plain text */
            i++;
            continue;
        }
        mq_man_put(out, s + plain, i - plain, 0, plain == 0);
        fputs(font, out);
        mq_man_put(out, s + i + m, end - i - m, code, 0);
        fputs("\\fR", out);
        i = plain = end + m;
    }
    mq_man_put(out, s + plain, n - plain, 0, plain == 0);
}

/* ---- Markdown ---- */

/* Splits the pipe table row line[0..n) into at most max cells (trimmed, outside `code` spans); returns how
 * many. */
static int mq_man_cells(const char *line, size_t n, const char **cell, size_t *len, int max)
{
    int count = 0, in_code = 0;
    size_t start = 0;
    while (start < n && (line[start] == ' ' || line[start] == '|'))
        start += line[start] == '|' ? (count = 0, 1) : 1;
    for (size_t i = start; i <= n && count < max; i++) {
        if (i < n && line[i] == '`')
            in_code = !in_code;
        if (i < n && (line[i] != '|' || in_code))
            continue;
        size_t a = start, b = i;
        while (a < b && line[a] == ' ')
            a++;
        while (b > a && line[b - 1] == ' ')
            b--;
        if (i < n || a < b) { /* the empty text after a closing | is no cell */
            cell[count] = line + a;
            len[count] = b - a;
            count++;
        }
        start = i + 1;
    }
    return count;
}

void mq_man_markdown(FILE *out, const char *md)
{
    enum { NONE, TEXT, TABLE } state = NONE;
    int in_comment = 0, in_code = 0, have_section = 0, header_cells = 0;
    const char *header[8];
    size_t header_len[8];
    const char *p = md;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *line = p;
        p = nl ? nl + 1 : p + n;

        if (in_comment) {
            in_comment = mq_man_find(line, n, 0, "-->") == n;
            continue;
        }
        if (in_code) {
            if (n >= 3 && memcmp(line, "```", 3) == 0) {
                fputs(".fi\n.RE\n", out);
                in_code = 0;
            } else {
                mq_man_text(out, line, n, 1);
                fputc('\n', out);
            }
            continue;
        }
        if (n >= 4 && memcmp(line, "<!--", 4) == 0) {
            in_comment = mq_man_find(line, n, 4, "-->") == n;
            continue;
        }
        if (n == 0) {
            state = state == TABLE ? NONE : state == TEXT ? NONE : state;
            continue;
        }
        if (n >= 2 && memcmp(line, "# ", 2) == 0)
            continue; /* the title: the page's NAME line says it */
        if (n >= 3 && memcmp(line, "## ", 3) == 0) {
            char title[128];
            snprintf(title, sizeof(title), "%.*s", (int)(n - 3), line + 3);
            mq_man_section(out, title);
            have_section = 1, state = NONE;
            continue;
        }
        if (n >= 4 && memcmp(line, "### ", 4) == 0) {
            fputs(".SS \"", out);
            mq_man_text(out, line + 4, n - 4, 1);
            fputs("\"\n", out);
            state = NONE;
            continue;
        }
        if (!have_section) {
            mq_man_section(out, "description");
            have_section = 1;
        }
        if (n >= 3 && memcmp(line, "```", 3) == 0) {
            fputs(".PP\n.RS 4\n.nf\n", out);
            in_code = 1, state = NONE;
            continue;
        }
        if (line[0] == '|') {
            const char *cell[8];
            size_t len[8];
            int cells = mq_man_cells(line, n, cell, len, 8);
            if (state != TABLE) { /* the header row; the |---| row follows */
                header_cells = cells;
                memcpy(header, cell, sizeof(cell));
                memcpy(header_len, len, sizeof(len));
                state = TABLE;
                continue;
            }
            if (cells > 0 && len[0] >= 3 && strspn(cell[0], "-:") >= 3)
                continue;
            fputs(".TP\n", out);
            mq_man_inline(out, cell[0], len[0]);
            fputc('\n', out);
            int said = 0;
            for (int c = 1; c + 1 < cells; c++) {
                if (len[c] == 0)
                    continue;
                fputs(said ? "; " : "", out);
                if (c < header_cells) {
                    mq_man_inline(out, header[c], header_len[c]);
                    fputs(": ", out);
                }
                mq_man_inline(out, cell[c], len[c]);
                said = 1;
            }
            if (said)
                fputs("\n.br\n", out);
            if (cells > 1) {
                mq_man_inline(out, cell[cells - 1], len[cells - 1]);
                fputc('\n', out);
            }
            continue;
        }
        if (state != TEXT)
            fputs(".PP\n", out);
        state = TEXT;
        while (n > 0 && line[0] == ' ')
            line++, n--;
        mq_man_inline(out, line, n);
        fputc('\n', out);
    }
    if (in_code)
        fputs(".fi\n.RE\n", out);
}

/* ---- --help texts ---- */

/* One block of a --help text: the lines between blank lines. */
struct mq_man_block {
    const char *s;
    size_t n;
};

/* Whether a line opens a paragraph of its own even without a blank line before it. */
static int mq_man_own_para(const char *line)
{
    return strncmp(line, "Signals: ", 9) == 0 || strncmp(line, "Exit status: ", 13) == 0;
}

/* The next block of *p (skipping blank lines), 0 at the end. */
static int mq_man_next_block(const char **p, struct mq_man_block *b)
{
    while (**p == '\n')
        (*p)++;
    if (!**p)
        return 0;
    b->s = *p;
    const char *end = *p;
    for (;;) {
        const char *nl = strchr(end, '\n');
        if (!nl || nl[1] == '\n' || nl[1] == 0 || mq_man_own_para(nl + 1)) {
            end = nl ? nl : end + strlen(end);
            break;
        }
        end = nl + 1;
    }
    b->n = (size_t)(end - *p);
    *p = *end ? end + 1 : end;
    return 1;
}

static int mq_man_starts(const struct mq_man_block *b, const char *prefix)
{
    size_t m = strlen(prefix);
    return b->n >= m && memcmp(b->s, prefix, m) == 0;
}

/* An option block: every line indented, the first one an option. */
static int mq_man_is_options(const struct mq_man_block *b)
{
    size_t i = strspn(b->s, " ");
    return i > 0 && i < b->n && b->s[i] == '-';
}

/* The lines of a block, one at a time: *line and *n, 0 at the end. */
static int mq_man_next_line(const struct mq_man_block *b, size_t *at, const char **line, size_t *n)
{
    if (*at >= b->n)
        return 0;
    *line = b->s + *at;
    const char *nl = memchr(*line, '\n', b->n - *at);
    *n = nl ? (size_t)(nl - *line) : b->n - *at;
    *at += *n + 1;
    return 1;
}

/* A paragraph: its lines joined, each without its indentation. */
static void mq_man_para(FILE *out, const char *s, size_t n)
{
    struct mq_man_block b = {s, n};
    size_t at = 0, len;
    const char *line;
    while (mq_man_next_line(&b, &at, &line, &len)) {
        while (len > 0 && *line == ' ')
            line++, len--;
        mq_man_text(out, line, len, 0);
        fputc('\n', out);
    }
}

/* An option's tag: options bold, their arguments italic ("-c, --config FILE"). */
static void mq_man_tag(FILE *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t w = i;
        while (w < n && s[w] != ' ')
            w++;
        size_t word = w - i;
        int comma = word > 1 && s[w - 1] == ',';
        if (comma)
            word--;
        fputs(s[i] == '-' ? "\\fB" : "\\fI", out);
        mq_man_text(out, s + i, word, 1);
        fputs("\\fR", out);
        if (comma)
            fputc(',', out);
        while (w < n && s[w] == ' ')
            fputc(s[w++], out);
        i = w;
    }
}

/* The column where an option block's descriptions start: the most common end of a run of two or more
 * spaces after the tag, over the block's entry lines. */
static size_t mq_man_desc_column(const struct mq_man_block *b)
{
    size_t votes[160] = {0}, at = 0, len, best = 0;
    const char *line;
    while (mq_man_next_line(b, &at, &line, &len)) {
        size_t i = strspn(line, " ");
        if (i >= len || line[i] != '-')
            continue;
        while (i + 1 < len && !(line[i] == ' ' && line[i + 1] == ' '))
            i++;
        while (i < len && line[i] == ' ')
            i++;
        if (i < len && i < sizeof(votes) / sizeof(votes[0]))
            votes[i]++;
    }
    for (size_t c = 1; c < sizeof(votes) / sizeof(votes[0]); c++)
        if (votes[c] > votes[best])
            best = c;
    return best;
}

/* An option (or command) list as tagged paragraphs. A line is a new entry when it is indented less than
 * the description column and starts with the tag; the other lines continue the description. */
static void mq_man_options(FILE *out, const struct mq_man_block *b, int commands)
{
    size_t col = mq_man_desc_column(b), at = 0, len;
    const char *line;
    if (commands) { /* "  name    what": the column after the first run of spaces of the first entry */
        mq_man_next_line(b, &at, &line, &len); /* "commands:" */
        size_t keep = at;
        if (mq_man_next_line(b, &at, &line, &len)) {
            size_t i = strspn(line, " ");
            i += strcspn(line + i, " ");
            col = i + strspn(line + i, " ");
        }
        at = keep;
    }
    while (mq_man_next_line(b, &at, &line, &len)) {
        size_t indent = strspn(line, " ");
        if (indent < len && indent < col && indent < 8) {
            /* The tag ends at the column, or (a long tag) at the next run of two spaces or one space. */
            size_t end = col < len ? col : len;
            if (end < len && line[end - 1] != ' ') {
                end = mq_man_find(line, len, end, "  ");
                if (end == len)
                    end = mq_man_find(line, len, col, " ");
            }
            size_t tag_end = end;
            while (tag_end > indent && line[tag_end - 1] == ' ')
                tag_end--;
            fputs(".TP\n", out);
            if (commands) {
                fputs("\\fB", out);
                mq_man_text(out, line + indent, tag_end - indent, 1);
                fputs("\\fR", out);
            } else {
                mq_man_tag(out, line + indent, tag_end - indent);
            }
            fputc('\n', out);
            indent = end;
        }
        while (indent < len && line[indent] == ' ')
            indent++;
        if (indent < len) {
            mq_man_text(out, line + indent, len - indent, 0);
            fputc('\n', out);
        }
    }
}

int mq_man_help(FILE *out, const char *help, enum mq_man_part part)
{
    struct mq_man_block b;
    const char *p = help;
    int any = 0;
    while (mq_man_next_block(&p, &b)) {
        int usage = mq_man_starts(&b, "usage: "), commands = mq_man_starts(&b, "commands:");
        int options = !usage && !commands && mq_man_is_options(&b);
        int signals = mq_man_starts(&b, "Signals: "), exits = mq_man_starts(&b, "Exit status: ");
        switch (part) {
        case MQ_MAN_SYNOPSIS:
            if (!usage)
                continue;
            fputs(".nf\n", out);
            size_t at = 0, len;
            const char *line;
            while (mq_man_next_line(&b, &at, &line, &len)) {
                /* "usage: " goes; the lines after it keep their alignment under the first. */
                size_t cut = line == b.s || strspn(line, " ") >= 7 ? 7 : 0;
                if (cut > len)
                    cut = len;
                if (cut < len && line[cut] != ' ') { /* the program's name in bold */
                    size_t word = strcspn(line + cut, " ");
                    fputs("\\fB", out);
                    mq_man_text(out, line + cut, word, 1);
                    fputs("\\fR", out);
                    cut += word;
                }
                mq_man_text(out, line + cut, len - cut, 1);
                fputc('\n', out);
            }
            fputs(".fi\n", out);
            any = 1;
            break;
        case MQ_MAN_COMMANDS:
            if (!commands)
                continue;
            mq_man_options(out, &b, 1);
            any = 1;
            break;
        case MQ_MAN_BODY:
        case MQ_MAN_OPTIONS:
        case MQ_MAN_PARAGRAPHS:
            if (usage || commands || ((signals || exits) && part != MQ_MAN_BODY))
                continue;
            if (options && part != MQ_MAN_PARAGRAPHS) {
                mq_man_options(out, &b, 0);
                any = 1;
            } else if (!options && part != MQ_MAN_OPTIONS) {
                fputs(".PP\n", out);
                mq_man_para(out, b.s, b.n);
                any = 1;
            }
            break;
        case MQ_MAN_SIGNALS:
        case MQ_MAN_EXIT:
            if (part == MQ_MAN_SIGNALS ? !signals : !exits)
                continue;
            size_t skip = part == MQ_MAN_SIGNALS ? strlen("Signals: ") : strlen("Exit status: ");
            mq_man_para(out, b.s + skip, b.n - skip);
            any = 1;
            break;
        }
    }
    return any;
}

char *mq_man_help_commands(const char *help)
{
    struct mq_man_block b;
    const char *p = help;
    while (mq_man_next_block(&p, &b)) {
        if (!mq_man_starts(&b, "commands:"))
            continue;
        char *names = malloc(b.n + 1);
        if (!names)
            return NULL;
        size_t at = 0, len, out = 0;
        const char *line;
        mq_man_next_line(&b, &at, &line, &len);
        while (mq_man_next_line(&b, &at, &line, &len)) {
            size_t i = strspn(line, " ");
            if (i == 0 || i > 4 || i >= len) /* a continuation line */
                continue;
            size_t w = strcspn(line + i, " ");
            memcpy(names + out, line + i, w);
            out += w;
            names[out++] = '\n';
        }
        names[out] = 0;
        return names;
    }
    return NULL;
}

size_t mq_man_tidy(char *roff, size_t len)
{
    size_t in = 0, out = 0;
    int after_heading = 0;
    while (in < len) {
        const char *nl = memchr(roff + in, '\n', len - in);
        size_t n = nl ? (size_t)(nl - (roff + in)) + 1 : len - in;
        int pp = n >= 3 && memcmp(roff + in, ".PP", 3) == 0 && (n == 3 || roff[in + 3] == '\n');
        int heading = n >= 3 && (memcmp(roff + in, ".SH", 3) == 0 || memcmp(roff + in, ".SS", 3) == 0);
        if (!(pp && after_heading)) {
            memmove(roff + out, roff + in, n);
            out += n;
        }
        after_heading = heading;
        in += n;
    }
    return out;
}
