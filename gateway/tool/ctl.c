/*
 * ctl.c - the tool's side of the control socket (control/control.h): reaching a running mqlogd and
 * exchanging request and reply lines with it, for the commands that write beside it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"
#include "tool/tool.h"

#define MQ_TOOL_CTL_TIMEOUT_MS 60000 /* a reply waits for a flush and a catalog write: seconds at worst */

int mq_tool_daemon(const char *dir)
{
    long pid = mq_tool_writer_pid(dir);
    if (pid == 0)
        return -1;
    int fd = mq_ctl_connect(dir);
    if (fd >= 0)
        return fd;
    char pids[32] = "";
    if (pid > 0)
        snprintf(pids, sizeof pids, "pid %ld, ", pid);
    mq_tool_error(
        "data directory %s is locked by a running writer (%smqlogd?) whose control socket %s/" MQ_CTL_SOCKET
        " does not answer (%s): stop it first, or upgrade it",
        dir, pids, dir, MQ_STRERROR(errno));
    return -2;
}

bool mq_tool_ctl_send(int fd, const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* mqlogd closed the connection after an error reply: the caller reads it */
            if (errno == EPIPE || errno == ECONNRESET)
                return true;
            mq_tool_error("writing to mqlogd's control socket: %s", MQ_STRERROR(errno));
            return false;
        }
        line += n;
        len -= (size_t)n;
    }
    return true;
}

bool mq_tool_ctl_reply(int fd, char *reply, size_t size)
{
    size_t used = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, MQ_TOOL_CTL_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0) {
            mq_tool_error("mqlogd did not answer within %d s", MQ_TOOL_CTL_TIMEOUT_MS / 1000);
            return false;
        }
        char c;
        ssize_t n = rc < 0 ? -1 : read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            mq_tool_error("mqlogd closed its control connection without an answer%s%s", n < 0 ? ": " : "",
                          n < 0 ? MQ_STRERROR(errno) : "");
            return false;
        }
        if (c == '\n')
            break;
        if (used + 1 < size)
            reply[used++] = c;
    }
    reply[used] = '\0';
    return true;
}
