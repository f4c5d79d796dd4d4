/*
 * mangen.c - writes the manual pages mqlogd(8) and mqlog(1) from the programs' own --help texts (run at
 * build time, so the pages always say what the built programs say), plus what a --help leaves out: the
 * NAME line, the files and the related pages. mqlog(1) gathers `mqlog COMMAND --help` of every command
 * `mqlog --help` lists. The configuration page, mqlogd.yaml(5), comes from the key table through
 * `mq_confdoc --man`.
 *
 * Usage: mq_mangen mqlogd|mqlog PROGRAM DATE VERSION OUT
 *   PROGRAM  the built program whose --help is read
 *   DATE     the date the page shows (YYYY-MM-DD)
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "man/man.h"

extern char **environ;

/* What a page says beyond the program's --help. */
struct mq_mangen_page {
    const char *name, *section, *summary;
    const char *intro;    /* a first paragraph for DESCRIPTION, or NULL */
    int commands;         /* the program has commands, each with its own --help */
    const char *files;    /* "PATH\tWHAT\n" lines */
    const char *see_also; /* "name(N), ..." */
};

static const struct mq_mangen_page mq_pages[] = {
    {
        .name = "mqlogd",
        .section = "8",
        .summary = "MQTT-to-log gateway: stores MQTT messages in a Kafka-format log and serves it to Kafka "
                   "clients",
        .files = "/etc/mqlog/mqlogd.yaml\tthe configuration the Debian package and its unit use; "
                 "mqlogd.yaml(5) describes it\n"
                 "/etc/mqlog/mappings.d/*.yaml\tmapping files the example configuration includes\n"
                 "/var/lib/mqlog\tthe default data_dir: log segments, indexes and the catalog\n"
                 "/lib/systemd/system/mqlogd.service\tthe unit: systemctl reload mqlogd sends SIGHUP, "
                 "systemctl stop mqlogd SIGTERM\n",
        .see_also = "mqlog(1), mqlogd.yaml(5), systemctl(1), mosquitto(8)",
    },
    {
        .name = "mqlog",
        .section = "1",
        .summary = "inspect, read, verify and replay the log store of mqlogd",
        .intro = "mqlog works on the data directory of mqlogd(8) (data_dir in mqlogd.yaml(5); /var/lib/mqlog "
                 "as the Debian package installs it). Its commands:",
        .commands = 1,
        .files = "/var/lib/mqlog\tthe data directory of the packaged mqlogd; run commands that write to it "
                 "as its owner: runuser -u mqlog -- mqlog ...\n",
        .see_also = "mqlogd(8), mqlogd.yaml(5), kcat(1)",
    },
};

/* Runs PROGRAM with its arguments and returns what it printed on stdout (malloc'ed), NULL when it could
 * not run or exited non-zero. */
static char *mq_mangen_run(char *const argv[])
{
    int fd[2];
    if (pipe(fd) != 0)
        return NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc != 0) {
        close(fd[0]);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd[0], chunk, sizeof(chunk))) > 0)
        if (mem)
            fwrite(chunk, 1, (size_t)n, mem);
    close(fd[0]);
    int status;
    int ok = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!mem || fclose(mem) != 0 || !ok) {
        free(text);
        return NULL;
    }
    return text;
}

static void mq_mangen_files(FILE *out, const char *files)
{
    mq_man_section(out, "files");
    for (const char *p = files; *p;) {
        const char *tab = strchr(p, '\t'), *nl = strchr(p, '\n');
        fputs(".TP\n\\fI", out);
        mq_man_text(out, p, (size_t)(tab - p), 1);
        fputs("\\fR\n", out);
        mq_man_text(out, tab + 1, (size_t)(nl - tab - 1), 0);
        fputc('\n', out);
        p = nl + 1;
    }
}

static void mq_mangen_see_also(FILE *out, const char *see_also)
{
    mq_man_section(out, "see also");
    /* "name(N), ..." with each name bold */
    for (const char *p = see_also; *p;) {
        size_t n = strcspn(p, "(");
        fputs("\\fB", out);
        mq_man_text(out, p, n, 1);
        fputs("\\fR", out);
        p += n;
        n = strcspn(p, ",");
        mq_man_text(out, p, n, 0);
        p += n;
        if (*p == ',') {
            fputs(",\n", out);
            p += strspn(p, ", ");
        }
    }
    fputc('\n', out);
}

/* The page of one program: 0 on success, 1 when a --help could not be read. */
static int mq_mangen_write(FILE *out, const struct mq_mangen_page *page, char *program, const char *date,
                           const char *version)
{
    char help_flag[] = "--help";
    char *argv[] = {program, help_flag, NULL};
    char *help = mq_mangen_run(argv);
    if (!help) {
        fprintf(stderr, "mangen: %s --help failed\n", program);
        return 1;
    }
    struct mq_man_page head = {page->name, page->section, page->summary, date, version};
    fprintf(out, ".\\\" Generated by gateway/man/gen/mangen.c from %s --help: do not edit.\n", page->name);
    mq_man_begin(out, &head);
    mq_man_section(out, "synopsis");
    mq_man_help(out, help, MQ_MAN_SYNOPSIS);
    mq_man_section(out, "description");
    if (page->intro) {
        fputs(".PP\n", out);
        mq_man_text(out, page->intro, strlen(page->intro), 0);
        fputc('\n', out);
    }
    mq_man_help(out, help, MQ_MAN_COMMANDS);
    mq_man_help(out, help, MQ_MAN_PARAGRAPHS);
    int rc = 0;
    if (page->commands) {
        mq_man_section(out, "commands");
        char *names = mq_man_help_commands(help);
        for (char *name = names ? strtok(names, "\n") : NULL; name; name = strtok(NULL, "\n")) {
            char *cargv[] = {program, name, help_flag, NULL};
            char *chelp = mq_mangen_run(cargv);
            if (!chelp) {
                fprintf(stderr, "mangen: %s %s --help failed\n", program, name);
                rc = 1;
                continue;
            }
            fprintf(out, ".SS \"%s ", page->name);
            mq_man_text(out, name, strlen(name), 1);
            fputs("\"\n", out);
            mq_man_help(out, chelp, MQ_MAN_SYNOPSIS);
            mq_man_help(out, chelp, MQ_MAN_BODY);
            free(chelp);
        }
        if (!names)
            rc = 1;
        free(names);
    } else {
        mq_man_section(out, "options");
        mq_man_help(out, help, MQ_MAN_OPTIONS);
    }
    if (strstr(help, "\nSignals: ")) {
        mq_man_section(out, "signals");
        mq_man_help(out, help, MQ_MAN_SIGNALS);
    }
    if (strstr(help, "\nExit status: ")) {
        mq_man_section(out, "exit status");
        mq_man_help(out, help, MQ_MAN_EXIT);
    }
    mq_mangen_files(out, page->files);
    mq_mangen_see_also(out, page->see_also);
    free(help);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s mqlogd|mqlog PROGRAM DATE VERSION OUT\n", argv[0]);
        return 2;
    }
    const struct mq_mangen_page *page = NULL;
    for (size_t i = 0; i < sizeof(mq_pages) / sizeof(mq_pages[0]); i++)
        if (strcmp(mq_pages[i].name, argv[1]) == 0)
            page = &mq_pages[i];
    if (!page) {
        fprintf(stderr, "mangen: no page for '%s' (mqlogd or mqlog)\n", argv[1]);
        return 2;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        fprintf(stderr, "mangen: out of memory\n");
        return 1;
    }
    int rc = mq_mangen_write(mem, page, argv[2], argv[3], argv[4]);
    if (fclose(mem) != 0)
        rc = 1;
    else
        len = mq_man_tidy(text, len);
    /* Written only when complete: a half page must not look up to date to the build. */
    FILE *f = rc == 0 ? fopen(argv[5], "wb") : NULL;
    if (rc == 0 && (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)) {
        perror(argv[5]);
        rc = 1;
    }
    free(text);
    return rc;
}
