/*
 * config.c - loads the YAML configuration with libyaml's document API: the main file and the mapping files
 * it includes, each walked with its section table (section.c, the tables in table.c).
 *
 * Each section's keys are collected first (unknown and duplicate keys are reported there), then parsed in
 * table order rather than file order: brokers are known before mappings refer to them, and included
 * mapping files load after the file's own mappings. Every error is collected with its file and position and
 * reported at the end, sorted, so that one run shows everything that is wrong.
 */
#include "config/config.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config/config_int.h"
#include "util/diag.h"

#define MQ_CFG_MAX_ERRORS 1000 /* stop collecting after this many */
#define MQ_CFG_MAX_DEPTH  8    /* include nesting */
/*
 * Bounds checked before libyaml builds a document, where its cost grows with the square of what it reads:
 * its scanner looks at every open flow collection for each token (100,000 nested '[' took 36 s), its
 * parser checks each %TAG directive against all before it (100,000 took 66 s), and its loader looks each
 * alias up among all the anchors before it (100,000 of each took 33 s). A configuration needs a few levels
 * and a few anchors: the bounds are far above that, and far below where the cost shows.
 */
#define MQ_CFG_MAX_BYTES   (8 << 20) /* the main file and its includes together */
#define MQ_CFG_MAX_NEST    64        /* YAML mappings and lists inside each other */
#define MQ_CFG_MAX_ANCHORS 1000      /* per file */
#define MQ_CFG_MAX_ALIASES 10000     /* per file */
#define MQ_CFG_MAX_NODES   500000    /* all files together: libyaml takes some 160 bytes per node */
#define MQ_CFG_MAX_PERCENT 100       /* lines starting with '%' (directives) per file */

struct mq_cerr {
    size_t file;   /* index into cfg->files */
    int line, col; /* 1-based; line 0: no position */
    size_t seq;
    char *msg;
};

/* ---- errors ---- */

static void mq_cctx_verror(struct mq_cctx *ctx, size_t file, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
static void mq_cctx_verror(struct mq_cctx *ctx, size_t file, int line, int col, const char *fmt, va_list ap)
{
    if (ctx->nerrs >= MQ_CFG_MAX_ERRORS) {
        ctx->dropped++;
        return;
    }
    if (ctx->nerrs == ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap * 2 : 16;
        struct mq_cerr *e = realloc(ctx->errs, ncap * sizeof(*e));
        if (!e) {
            ctx->oom = true;
            return;
        }
        ctx->errs = e;
        ctx->cap = ncap;
    }
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0) {
        ctx->oom = true;
        return;
    }
    ctx->errs[ctx->nerrs] =
        (struct mq_cerr){.file = file, .line = line, .col = col, .seq = ctx->nerrs, .msg = msg};
    ctx->nerrs++;
}

static void mq_cctx_error_at(struct mq_cctx *ctx, size_t file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void mq_cctx_error_at(struct mq_cctx *ctx, size_t file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mq_cctx_verror(ctx, file, line, col, fmt, ap);
    va_end(ap);
}

void mq_cctx_error(struct mq_cctx *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int line = node ? (int)node->start_mark.line + 1 : 0;
    int col = node ? (int)node->start_mark.column + 1 : 0;
    mq_cctx_verror(ctx, ctx->file, line, col, fmt, ap);
    va_end(ap);
}

void mq_cctx_oom(struct mq_cctx *ctx)
{
    ctx->oom = true;
}

struct mq_config *mq_cctx_config(struct mq_cctx *ctx)
{
    return ctx->cfg;
}

void mq_cctx_loc(struct mq_cctx *ctx, const yaml_node_t *node, struct mq_config_loc *loc)
{
    loc->file = ctx->cfg->files[ctx->file];
    loc->line = node ? (int)node->start_mark.line + 1 : 0;
    loc->col = node ? (int)node->start_mark.column + 1 : 0;
}

bool mq_cctx_name_first(struct mq_cctx *ctx, enum mq_cnames list, const char *name, size_t index,
                        size_t *first)
{
    int added = mq_cset_add(&ctx->names[list], name, index, first);
    if (added < 0)
        ctx->oom = true;
    return added != 0;
}

const yaml_node_t *mq_cctx_value(const struct mq_csection *sec, const yaml_node_t *const *vals,
                                 const char *name)
{
    for (size_t i = 0; sec->keys[i].name; i++)
        if (strcmp(sec->keys[i].name, name) == 0)
            return vals[i];
    return NULL;
}

static int mq_cerr_cmp(const void *a, const void *b)
{
    const struct mq_cerr *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- files ---- */

static bool mq_cfiles_add(struct mq_cctx *ctx, const char *path, size_t *index)
{
    struct mq_config *cfg = ctx->cfg;
    char **nf = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*nf));
    if (!nf) {
        ctx->oom = true;
        return false;
    }
    cfg->files = nf;
    if (!(nf[cfg->nfiles] = strdup(path))) {
        ctx->oom = true;
        return false;
    }
    *index = cfg->nfiles++;
    return true;
}

static void mq_cyaml_error(struct mq_cctx *ctx, size_t file, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        ctx->oom = true;
        return;
    }
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    if (parser->error == YAML_READER_ERROR) {
        mq_cctx_error_at(ctx, file, 0, 0, "YAML syntax error: %s at byte %zu", MQ_CLAUSE(problem),
                         parser->problem_offset);
        return;
    }
    int line = (int)parser->problem_mark.line + 1, col = (int)parser->problem_mark.column + 1;
    if (parser->context)
        mq_cctx_error_at(ctx, file, line, col, "YAML syntax error: %s (%s at line %zu, column %zu)",
                         MQ_CLAUSE(problem), MQ_CLAUSE(parser->context), parser->context_mark.line + 1,
                         parser->context_mark.column + 1);
    else
        mq_cctx_error_at(ctx, file, line, col, "YAML syntax error: %s", MQ_CLAUSE(problem));
}

/* Reads f to its end into *bufp (the caller frees it) and *lenp: 0, EFBIG when f holds more than limit
 * bytes, or the errno of a failed read. */
static int mq_cread(FILE *f, size_t limit, unsigned char **bufp, size_t *lenp)
{
    size_t cap = 0, len = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 64 * 1024;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > limit || (got == 0 && ferror(f))) {
            int err = len > limit ? EFBIG : errno ? errno : EIO;
            free(buf);
            return err;
        }
        if (got == 0)
            break;
    }
    *bufp = buf;
    *lenp = len;
    return 0;
}

static void mq_cctx_error_mark(struct mq_cctx *ctx, size_t file, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mq_cctx_error_mark(struct mq_cctx *ctx, size_t file, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mq_cctx_verror(ctx, file, (int)mark.line + 1, (int)mark.column + 1, fmt, ap);
    va_end(ap);
}

/*
 * Reads the events of the first document of buf before libyaml builds it, and refuses, where it starts,
 * what would make the build slow (the MQ_CFG_MAX_* bounds). Stopping on the event stream keeps libyaml's
 * own cost small: past the bound its scanner reads ahead at most one possible simple key (1024
 * characters). A syntax error is reported as the build would report it. True when the document may be
 * built.
 */
static bool mq_cprescan(struct mq_cctx *ctx, size_t file, const unsigned char *buf, size_t len)
{
    /* Directives reach no event (libyaml reads them all before it returns the document's start): they are
     * counted in the text, where a line starting with '%' can be nothing else. */
    size_t percent = 0;
    for (size_t i = 0, line = 1; i < len; i++) {
        if ((i == 0 || buf[i - 1] == '\n') && buf[i] == '%' && ++percent > MQ_CFG_MAX_PERCENT) {
            mq_cctx_error_at(ctx, file, (int)line, 1,
                             "more than %d lines that start with '%%' (YAML directives)", MQ_CFG_MAX_PERCENT);
            return false;
        }
        line += buf[i] == '\n';
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        ctx->oom = true;
        return false;
    }
    yaml_parser_set_input_string(&parser, buf, len);
    int depth = 0;
    size_t anchors = 0, aliases = 0;
    bool ok = true, done = false;
    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            mq_cyaml_error(ctx, file, &parser);
            ok = false;
            break;
        }
        const yaml_char_t *anchor = NULL;
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
            anchor = ev.data.sequence_start.anchor;
            depth++;
            break;
        case YAML_MAPPING_START_EVENT:
            anchor = ev.data.mapping_start.anchor;
            depth++;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            break;
        case YAML_ALIAS_EVENT:
            if (++aliases > MQ_CFG_MAX_ALIASES) {
                mq_cctx_error_mark(ctx, file, ev.start_mark, "more than %d YAML aliases in one file",
                                   MQ_CFG_MAX_ALIASES);
                ok = false;
            }
            break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        bool node = ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT ||
                    ev.type == YAML_SCALAR_EVENT;
        if (node && ++ctx->nodes > MQ_CFG_MAX_NODES) {
            mq_cctx_error_mark(ctx, file, ev.start_mark,
                               "the configuration is too large (more than %d YAML nodes)", MQ_CFG_MAX_NODES);
            ok = false;
        } else if (depth > MQ_CFG_MAX_NEST) {
            mq_cctx_error_mark(ctx, file, ev.start_mark, "YAML mappings and lists nest more than %d deep",
                               MQ_CFG_MAX_NEST);
            ok = false;
        } else if (anchor && ++anchors > MQ_CFG_MAX_ANCHORS) {
            mq_cctx_error_mark(ctx, file, ev.start_mark, "more than %d YAML anchors in one file",
                               MQ_CFG_MAX_ANCHORS);
            ok = false;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return ok;
}

/* After a first document with content: refuses a second one where it starts, from its first two events
 * (it is not built). */
static void mq_csecond_doc(struct mq_cctx *ctx, size_t file, yaml_parser_t *parser)
{
    yaml_event_t ev;
    if (!yaml_parser_parse(parser, &ev)) {
        mq_cyaml_error(ctx, file, parser);
        return;
    }
    bool second = ev.type == YAML_DOCUMENT_START_EVENT;
    yaml_event_delete(&ev);
    if (!second)
        return; /* the end of the stream */
    if (!yaml_parser_parse(parser, &ev)) {
        mq_cyaml_error(ctx, file, parser);
        return;
    }
    mq_cctx_error_mark(ctx, file, ev.start_mark,
                       "a configuration file holds one YAML document; this is a second one");
    yaml_event_delete(&ev);
}

/*
 * Loads the file at path with the section table sec. from is the include entry that named it (errors about
 * opening it are reported there), NULL for the main file.
 */
static void mq_cload(struct mq_cctx *ctx, const char *path, const yaml_node_t *from,
                     const struct mq_csection *sec)
{
    size_t parent = ctx->file;
    const char *parent_dir = ctx->dir;
    yaml_document_t *parent_doc = ctx->doc;
    size_t file = 0;
    char *real = NULL, *dir = NULL;
    unsigned char *text = NULL;
    size_t len = 0;
    FILE *f = NULL;
    if (!from && !mq_cfiles_add(ctx, path, &file))
        return;
    struct stat st;
    const char *why = NULL;
    char reason[MQ_CLAUSE_MAX];
    int rc;
    if (stat(path, &st) != 0)
        why = mq_clause(strerror(errno), reason, sizeof reason);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (!(real = realpath(path, NULL)) || !(f = fopen(path, "rb")))
        why = mq_clause(strerror(errno), reason, sizeof reason);
    /* The size is counted as read: stat() says 0 for /proc files. */
    else if ((rc = mq_cread(f, MQ_CFG_MAX_BYTES - ctx->bytes, &text, &len)) == EFBIG) {
        if (from)
            mq_cctx_error(
                ctx, from,
                "included file '%s' makes the configuration too large (more than %d MiB in all its files)",
                path, MQ_CFG_MAX_BYTES >> 20);
        else
            mq_cctx_error_at(ctx, file, 0, 0, "the configuration file is too large (more than %d MiB)",
                             MQ_CFG_MAX_BYTES >> 20);
        goto out;
    } else if (rc == ENOMEM) {
        ctx->oom = true;
        goto out;
    } else if (rc) {
        why = mq_clause(strerror(rc), reason, sizeof reason);
    }
    if (why) {
        if (from)
            mq_cctx_error(ctx, from, "cannot read included file '%s': %s", path, why);
        else
            mq_cctx_error_at(ctx, file, 0, 0, "cannot read the configuration file: %s", why);
        goto out;
    }
    for (size_t i = 0; i < ctx->nseen; i++)
        if (strcmp(ctx->seen[i], real) == 0) {
            mq_cctx_error(ctx, from, "'%s' is included more than once (or includes itself)", path);
            goto out;
        }
    char **ns = realloc(ctx->seen, (ctx->nseen + 1) * sizeof(*ns));
    if (!ns) {
        ctx->oom = true;
        goto out;
    }
    ctx->seen = ns;
    ns[ctx->nseen++] = real;
    dir = strdup(real);
    if (!dir) {
        real = NULL;
        ctx->oom = true;
        goto out;
    }
    *strrchr(dir, '/') = '\0'; /* realpath() gives an absolute name: there is a '/' */
    if (!*dir)
        strcpy(dir, "/");
    real = NULL; /* owned by ctx->seen now */
    if (from && !mq_cfiles_add(ctx, path, &file))
        goto out;

    ctx->bytes += len;
    if (!mq_cprescan(ctx, file, text, len))
        goto out;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        ctx->oom = true;
        goto out;
    }
    yaml_parser_set_input_string(&parser, text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        mq_cyaml_error(ctx, file, &parser);
        yaml_parser_delete(&parser);
        goto out;
    }
    ctx->file = file;
    ctx->dir = dir;
    ctx->doc = &doc;
    ctx->depth++;
    /* An empty file is an empty mapping: the defaults. */
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && mq_cnode_null(root))
        root = NULL; /* "---" alone: a null document */
    mq_csection_parse(ctx, sec, root, ctx->cfg);
    ctx->depth--;
    if (root)
        mq_csecond_doc(ctx, file, &parser);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
out:
    free(text);
    if (f)
        fclose(f);
    free(real);
    free(dir);
    ctx->file = parent;
    ctx->dir = parent_dir;
    ctx->doc = parent_doc;
}

/* A directory a glob passes through that does not exist simply matches nothing; other errors count. */
static int mq_cglob_error(const char *path, int errnum)
{
    (void)path;
    return errnum != ENOENT && errnum != ENOTDIR;
}

void mq_cinclude(struct mq_cctx *ctx, const yaml_node_t *node, const char *pattern)
{
    if (ctx->depth >= MQ_CFG_MAX_DEPTH) {
        mq_cctx_error(ctx, node, "include: mapping files nest more than %d deep", MQ_CFG_MAX_DEPTH);
        return;
    }
    char *full;
    if (pattern[0] == '/')
        full = strdup(pattern);
    else if (asprintf(&full, "%s/%s", ctx->dir, pattern) < 0)
        full = NULL;
    if (!full) {
        ctx->oom = true;
        return;
    }
    glob_t g;
    int rc = glob(full, 0, mq_cglob_error, &g);
    if (rc == GLOB_NOMATCH) {
        if (!strpbrk(pattern, "*?["))
            mq_cctx_error(ctx, node, "include: '%s' does not exist", full);
    } else if (rc == GLOB_NOSPACE) {
        ctx->oom = true;
    } else if (rc != 0) {
        mq_cctx_error(ctx, node, "include: cannot read the directories of '%s'", full);
    } else {
        /* glob() sorts the names, so files load in name order. */
        for (size_t i = 0; i < g.gl_pathc; i++)
            mq_cload(ctx, g.gl_pathv[i], node, &mq_csection_mapfile);
    }
    globfree(&g); /* glibc's glob() initialises g even when it fails */
    free(full);
}

/* ---- public API ---- */

void mq_config_free(struct mq_config *cfg)
{
    if (!cfg)
        return;
    mq_csection_free(&mq_csection_top, cfg);
    for (size_t i = 0; i < cfg->nfiles; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg);
}

enum mq_err mq_config_load(const char *path, struct mq_config **cfgp, mq_config_report_fn *report,
                           void *opaque)
{
    struct mq_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        if (report)
            report(opaque, "out of memory");
        else
            MQ_ERROR("%s: out of memory", path);
        return MQ_ERR_NOMEM;
    }
    struct mq_cctx ctx = {.cfg = cfg};
    mq_cload(&ctx, path, NULL, &mq_csection_top);
    /* A file that loads but configures nothing is a mistake (an empty file, the wrong file, every section
     * commented out), not a configuration that runs doing nothing. */
    if (ctx.nerrs == 0 && !ctx.oom && cfg->nbrokers == 0 && cfg->nmappings == 0 &&
        cfg->kafka.nlisteners == 0 && cfg->nforwards == 0)
        mq_cctx_error_at(
            &ctx, 0, 1, 1,
            "the configuration is empty: it has no brokers, no mappings, no kafka listener and no "
            "forwarders");
    if (ctx.nerrs > 1)
        qsort(ctx.errs, ctx.nerrs, sizeof(*ctx.errs), mq_cerr_cmp);
    for (size_t i = 0; i < ctx.nerrs; i++) {
        const struct mq_cerr *e = &ctx.errs[i];
        /* A node reached through several YAML aliases is reported at its anchor once, not once per alias. */
        if (i > 0 && e->file == e[-1].file && e->line == e[-1].line && e->col == e[-1].col &&
            strcmp(e->msg, e[-1].msg) == 0) {
            continue;
        }
        const char *file = e->file < cfg->nfiles ? cfg->files[e->file] : path;
        char *line;
        int n = e->line ? asprintf(&line, "%s:%d:%d: %s", file, e->line, e->col, e->msg)
                        : asprintf(&line, "%s: %s", file, e->msg);
        if (n < 0) {
            ctx.oom = true;
        } else {
            if (report)
                report(opaque, line);
            else
                MQ_ERROR("%s", line);
            free(line);
        }
    }
    for (size_t i = 0; i < ctx.nerrs; i++)
        free(ctx.errs[i].msg);
    if (ctx.dropped) {
        char line[128];
        snprintf(line, sizeof(line), "%s: %zu more errors not shown", path, ctx.dropped);
        if (report)
            report(opaque, line);
        else
            MQ_ERROR("%s", line);
    }
    if (ctx.oom) {
        if (report)
            report(opaque, "out of memory while loading the configuration");
        else
            MQ_ERROR("%s: out of memory while loading the configuration", path);
    }
    bool failed = ctx.nerrs > 0 || ctx.oom;
    enum mq_err err = ctx.oom ? MQ_ERR_NOMEM : failed ? MQ_ERR_CONFIG : MQ_OK;
    free(ctx.errs);
    for (int i = 0; i < MQ_CNAMES_N; i++)
        mq_cset_free(&ctx.names[i]);
    for (size_t i = 0; i < ctx.nseen; i++)
        free(ctx.seen[i]);
    free(ctx.seen);
    if (failed) {
        mq_config_free(cfg);
        return err;
    }
    *cfgp = cfg;
    return MQ_OK;
}
