/*
 * cmd_user.c - `mqlog user add|list|remove`: the users of the Kafka endpoint's SASL authentication, stored
 * in the catalog as SCRAM credentials (salt, iterations, StoredKey, ServerKey: never the password).
 *
 * These commands touch only the catalog, so they run beside mqlogd: they open the store as a reader (no
 * writer lock; the catalog is read-write for readers, SQLite serialising writers). Only `add` on a data
 * directory without a catalog yet opens it as the writer, creating it, so that users can be set up before
 * mqlogd first starts. The endpoint reads the catalog at every authentication: a change applies to the next
 * connection, without a restart; connections already authenticated keep going.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "sasl/sasl.h"
#include "tool/tool.h"

#define MQ_USER_PASSWORD_MAX 1024

static void mq_user_help(void)
{
    printf("usage: mqlog user add -d DATA_DIR NAME [--mechanism M]... [--iterations N] [--password-file F]\n"
           "       mqlog user list -d DATA_DIR\n"
           "       mqlog user remove -d DATA_DIR NAME\n"
           "\n"
           "Manages the users the Kafka endpoint authenticates with SASL (PLAIN, SCRAM-SHA-256,\n"
           "SCRAM-SHA-512). The catalog keeps per user and mechanism a salt, an iteration count and the\n"
           "SCRAM keys derived from the password, never the password; PLAIN is checked against them.\n"
           "Safe beside a running mqlogd: a change applies to the next connection.\n"
           "\n"
           "add sets a user's password (replacing every credential it had). The password is the first line\n"
           "of --password-file (F may be - for stdin), else it is asked for twice on a terminal, else it is\n"
           "the first line of stdin.\n"
           "\n"
           "  -d, --dir DATA_DIR      the data directory\n"
           "  -m, --mechanism M       SCRAM-SHA-256 or SCRAM-SHA-512; repeat for both (default: both)\n"
           "      --iterations N      PBKDF2 iterations, %d..%d (default %d)\n"
           "      --password-file F   read the password from F\n"
           "  -h, --help              this text\n",
           MQ_SCRAM_ITERATIONS_MIN, MQ_SCRAM_ITERATIONS_MAX, MQ_SCRAM_ITERATIONS_MIN);
}

/* Reads the first line of f into buf (newline and a CR before it dropped); false after an error message. */
static bool mq_user_read_line(FILE *f, const char *what, char *buf, size_t size)
{
    if (!fgets(buf, (int)size, f)) {
        if (ferror(f))
            mq_tool_error("reading the password from %s: %s", what, MQ_STRERROR(errno));
        else
            mq_tool_error("no password in %s", what);
        return false;
    }
    size_t n = strlen(buf);
    if (n == size - 1 && buf[n - 1] != '\n' && !feof(f)) {
        mq_tool_error("the password in %s is longer than %d bytes", what, MQ_USER_PASSWORD_MAX);
        return false;
    }
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = 0;
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = 0;
    if (n == 0) {
        mq_tool_error("empty password in %s", what);
        return false;
    }
    return true;
}

/* Asks for the password on the terminal of stdin, without echo, twice. */
static bool mq_user_prompt(const char *name, char *buf, size_t size)
{
    struct termios old, quiet;
    if (tcgetattr(STDIN_FILENO, &old) != 0) {
        mq_tool_error("stdin: %s", MQ_STRERROR(errno));
        return false;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    char again[MQ_USER_PASSWORD_MAX + 2];
    fprintf(stderr, "Password for %s: ", name);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    bool ok = mq_user_read_line(stdin, "the terminal", buf, size);
    fprintf(stderr, "\n");
    if (ok) {
        fprintf(stderr, "Again: ");
        ok = mq_user_read_line(stdin, "the terminal", again, sizeof again);
        fprintf(stderr, "\n");
    }
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (ok && strcmp(buf, again) != 0) {
        mq_tool_error("the passwords differ");
        ok = false;
    }
    memset(again, 0, sizeof again);
    return ok;
}

static bool mq_user_password(const char *name, const char *file, char *buf, size_t size)
{
    if (file && strcmp(file, "-") != 0) {
        FILE *f = fopen(file, "r");
        if (!f) {
            mq_tool_error("password file %s: %s", file, MQ_STRERROR(errno));
            return false;
        }
        bool ok = mq_user_read_line(f, file, buf, size);
        fclose(f);
        return ok;
    }
    if (!file && isatty(STDIN_FILENO))
        return mq_user_prompt(name, buf, size);
    return mq_user_read_line(stdin, "stdin", buf, size);
}

/* Opens dir's store without the writer lock; `add` creates a missing catalog (and directory) as the
 * writer, which only works while no mqlogd runs there, as nothing can be beside it then. */
static struct mq_store *mq_user_store(const char *dir, bool create)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/" MQ_CATALOG_FILE, dir);
    if (create && stat(path, &st) != 0 && errno == ENOENT)
        return mq_tool_open_store(dir, MQ_STORE_WRITE, true);
    return mq_tool_open_store(dir, MQ_STORE_READ, false);
}

static int mq_user_add(const char *dir, const char *name, const bool mechs[MQ_SASL__COUNT],
                       int64_t iterations, const char *password_file)
{
    char password[MQ_USER_PASSWORD_MAX + 2];
    if (!mq_user_password(name, password_file, password, sizeof password))
        return MQ_EXIT_FAIL;
    struct mq_catalog_user creds[2];
    size_t n = 0;
    char list[64] = "";
    for (int m = MQ_SASL_SCRAM_SHA_256; m <= MQ_SASL_SCRAM_SHA_512; m++) {
        if (!mechs[m])
            continue;
        uint8_t salt[MQ_SASL_SALT_LEN];
        struct mq_catalog_user *u = &creds[n++];
        memset(u, 0, sizeof *u);
        snprintf(u->name, sizeof u->name, "%s", name);
        enum mq_err err = mq_sasl_random(salt, sizeof salt);
        if (err == MQ_OK)
            err = mq_sasl_scram_derive((enum mq_sasl_mech)m, password, strlen(password), salt, sizeof salt,
                                       (int32_t)iterations, u);
        if (err != MQ_OK) {
            memset(password, 0, sizeof password);
            mq_tool_error("deriving the %s credential: %s", mq_sasl_mech_name((enum mq_sasl_mech)m),
                          mq_strerror(err));
            return MQ_EXIT_FAIL;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                 mq_sasl_mech_name((enum mq_sasl_mech)m));
    }
    memset(password, 0, sizeof password);
    struct mq_store *store = mq_user_store(dir, true);
    if (!store)
        return MQ_EXIT_FAIL;
    bool created = false;
    enum mq_err err = mq_catalog_user_set(mq_store_catalog(store), name, creds, n, &created);
    int rc = MQ_EXIT_OK;
    if (err != MQ_OK) {
        mq_tool_error("user %s: %s (%s)", name, mq_strerror(err), mq_catalog_errmsg(mq_store_catalog(store)));
        rc = MQ_EXIT_FAIL;
    } else {
        printf("%s user %s (%s, %d iterations)\n", created ? "added" : "updated", name, list,
               (int)iterations);
    }
    mq_store_close(store);
    return rc;
}

static int mq_user_list(const char *dir)
{
    struct mq_store *store = mq_user_store(dir, false);
    if (!store)
        return MQ_EXIT_FAIL;
    struct mq_catalog_user *users = NULL;
    size_t n = 0;
    enum mq_err err = mq_catalog_user_list(mq_store_catalog(store), &users, &n);
    if (err != MQ_OK) {
        mq_tool_error("listing users: %s (%s)", mq_strerror(err), mq_catalog_errmsg(mq_store_catalog(store)));
        mq_store_close(store);
        return MQ_EXIT_FAIL;
    }
    if (n > 0)
        printf("%-24s %-14s %10s  %s\n", "USER", "MECHANISM", "ITERATIONS", "CREATED");
    for (size_t i = 0; i < n; i++) {
        char when[32];
        printf("%-24s %-14s %10d  %s\n", users[i].name, users[i].mechanism, (int)users[i].iterations,
               mq_tool_iso8601(users[i].created_ms, when, sizeof when));
    }
    free(users);
    mq_store_close(store);
    return fflush(stdout) == 0 ? MQ_EXIT_OK : MQ_EXIT_FAIL;
}

static int mq_user_remove(const char *dir, const char *name)
{
    struct mq_store *store = mq_user_store(dir, false);
    if (!store)
        return MQ_EXIT_FAIL;
    enum mq_err err = mq_catalog_user_delete(mq_store_catalog(store), name);
    int rc = MQ_EXIT_OK;
    if (err == MQ_ERR_NOENT) {
        mq_tool_error("unknown user '%s'", name);
        rc = MQ_EXIT_FAIL;
    } else if (err != MQ_OK) {
        mq_tool_error("user %s: %s (%s)", name, mq_strerror(err), mq_catalog_errmsg(mq_store_catalog(store)));
        rc = MQ_EXIT_FAIL;
    } else {
        printf("removed user %s\n", name);
    }
    mq_store_close(store);
    return rc;
}

int mq_cmd_user(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"mechanism", required_argument, NULL, 'm'},
        {"iterations", required_argument, NULL, 'i'},
        {"password-file", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *password_file = NULL;
    bool mechs[MQ_SASL__COUNT] = {false};
    bool any_mech = false;
    int64_t iterations = MQ_SCRAM_ITERATIONS_MIN;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'm': {
            enum mq_sasl_mech m;
            if (!mq_sasl_mech_parse(optarg, strlen(optarg), &m) || m == MQ_SASL_PLAIN)
                return mq_tool_usage_error(
                    "user",
                    "--mechanism '%s': SCRAM-SHA-256 or SCRAM-SHA-512 (PLAIN logins are "
                    "checked against these)",
                    optarg);
            mechs[m] = any_mech = true;
            break;
        }
        case 'i':
            if (!mq_tool_parse_int("user", "--iterations", optarg, MQ_SCRAM_ITERATIONS_MIN,
                                   MQ_SCRAM_ITERATIONS_MAX, &iterations))
                return MQ_EXIT_USAGE;
            break;
        case 'p':
            password_file = optarg;
            break;
        case 'h':
            mq_user_help();
            return MQ_EXIT_OK;
        default:
            return mq_tool_bad_option("user", argc, argv, c);
        }
    }
    if (optind >= argc)
        return mq_tool_usage_error("user", "no subcommand (add, list or remove)");
    const char *sub = argv[optind++];
    bool is_add = strcmp(sub, "add") == 0, is_list = strcmp(sub, "list") == 0;
    bool is_remove = strcmp(sub, "remove") == 0;
    if (!is_add && !is_list && !is_remove)
        return mq_tool_usage_error("user", "unknown subcommand '%s' (add, list or remove)", sub);
    if (!dir)
        return mq_tool_usage_error("user", "no data directory (-d DIR)");
    if (!is_add && (any_mech || password_file || iterations != MQ_SCRAM_ITERATIONS_MIN))
        return mq_tool_usage_error("user", "--mechanism, --iterations and --password-file go with add");
    if (is_list) {
        if (optind < argc)
            return mq_tool_usage_error("user", "unexpected argument '%s'", argv[optind]);
        return mq_user_list(dir);
    }
    if (optind >= argc)
        return mq_tool_usage_error("user", "%s: no user name", sub);
    if (optind + 1 < argc)
        return mq_tool_usage_error("user", "unexpected argument '%s'", argv[optind + 1]);
    const char *name = argv[optind];
    if (!mq_sasl_user_name_valid(name, strlen(name)))
        return mq_tool_usage_error("user", "user name '%s': 1 to %d bytes, no control characters", name,
                                   MQ_CATALOG_USER_NAME_MAX);
    if (is_remove)
        return mq_user_remove(dir, name);
    if (!any_mech)
        mechs[MQ_SASL_SCRAM_SHA_256] = mechs[MQ_SASL_SCRAM_SHA_512] = true;
    return mq_user_add(dir, name, mechs, iterations, password_file);
}
