/*
 * broker.c - starts and stops real mosquitto brokers for the tests (see broker.h).
 */
#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

int mq_test_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

static bool mq_test_port_open(void *opaque)
{
    int port = *(int *)opaque;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static bool mq_test_broker_spawn(struct mq_test_broker *b)
{
    char conf[600], logf[600];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", b->dir);
    snprintf(logf, sizeof logf, "%s/mosquitto.log", b->dir);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        FILE *lf = freopen(logf, "a", stderr);
        (void)lf;
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        fprintf(stderr, "exec mosquitto: %s\n", strerror(errno));
        _exit(127);
    }
    b->pid = pid;
    if (!mq_test_wait(mq_test_port_open, &b->port, 10000)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            fprintf(stderr, "mosquitto exited (status %d): is it installed? see %s\n", status, logf);
        else
            fprintf(stderr, "mosquitto does not accept connections on port %d\n", b->port);
        mq_test_broker_stop(b);
        return false;
    }
    return true;
}

bool mq_test_broker_start(struct mq_test_broker *b, int port, const char *extra)
{
    memset(b, 0, sizeof *b);
    b->dir = mq_test_tmpdir("mosquitto");
    b->port = port > 0 ? port : mq_test_free_port();
    char conf[600];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", b->dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return false;
    fprintf(f,
            "listener %d 127.0.0.1\n"
            "allow_anonymous true\n"
            "max_queued_messages 1000000\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 0\n"
            "persistence true\n"
            "persistence_location %s/\n"
            "autosave_interval 1\n"
            "log_dest stderr\n"
            "%s\n",
            b->port, b->dir, extra ? extra : "");
    fclose(f);
    return mq_test_broker_spawn(b);
}

/*
 * SIGTERM, repeated every 100 ms until mosquitto exits: mosquitto 2.0.11 loses a SIGTERM that arrives after
 * its listener accepts connections but before its main loop starts (seen as a test hanging forever in
 * waitpid when a broker is stopped right after it came up). SIGTERM rather than SIGKILL: the broker saves
 * its persistent sessions on the way out, which the restart tests rely on. After 30 s: SIGKILL.
 */
void mq_test_broker_stop(struct mq_test_broker *b)
{
    if (b->pid <= 0)
        return;
    int status;
    for (int i = 0; i < 300; i++) {
        kill(b->pid, SIGTERM);
        for (int j = 0; j < 10; j++) {
            if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
                b->pid = 0;
                return;
            }
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL); /* poll interval of the wait */
        }
    }
    fprintf(stderr, "mosquitto (pid %d) ignored SIGTERM for 30 s: killing it\n", (int)b->pid);
    kill(b->pid, SIGKILL);
    waitpid(b->pid, &status, 0);
    b->pid = 0;
}

bool mq_test_broker_restart(struct mq_test_broker *b)
{
    mq_test_broker_stop(b);
    return mq_test_broker_spawn(b);
}

void mq_test_broker_free(struct mq_test_broker *b)
{
    mq_test_broker_stop(b);
    mq_test_rmdir(b->dir);
    b->dir = NULL;
}

int mq_test_broker_log_count(const struct mq_test_broker *b, const char *needle)
{
    char path[600];
    snprintf(path, sizeof path, "%s/mosquitto.log", b->dir);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    fclose(fp);
    return n;
}
