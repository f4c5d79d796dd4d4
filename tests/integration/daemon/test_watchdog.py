"""test_watchdog.py - mqlogd under a systemd watchdog, with the service manager's side played by the test: a
NOTIFY_SOCKET the test listens on and WATCHDOG_USEC set, as systemd sets them for WatchdogSec=.

- READY=1, then WATCHDOG=1 keep-alives at half the interval, and STATUS= lines with the ingest rate and the
  broker connections (a non-zero rate while mosquitto delivers);
- one loop hung, the process alive: the test freezes only the store's flusher thread (ptrace-stops the thread
  named mqlog-flusher; the other threads run on) and the keep-alives stop for longer than the watchdog
  interval, so systemd would restart mqlogd, while /status.json, still answering, shows the store loop's
  age; once that is past 10 s, /healthz answers 503 naming it at once (it reads heartbeats only, never a
  partition lock), and /metrics answers too;
- the thread released, the keep-alives come back and mqlogd stops cleanly.
"""
import ctypes
import json
import os
import time
import urllib.request

import e2e_lib as e

WATCHDOG_S = 3.0  # the interval systemd would give (WatchdogSec=3s): keep-alives every 1.5 s
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(req, tid):
    if libc.ptrace(req, tid, None, None) != 0:
        err = ctypes.get_errno()
        e.fail("ptrace(%#x, %d): %s (the test freezes one thread of mqlogd, its child)" % (req, tid, os.strerror(err)))


def thread_named(pid, name):
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().strip() == name:
                return int(tid)
    e.fail("mqlogd has no thread named %s" % name)


def thread_state(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def status_json(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/status.json" % port, timeout=10) as r:
        return json.loads(r.read().decode())


class Keepalives:
    """When each WATCHDOG=1 arrived (polled)."""

    def __init__(self, notify):
        self.notify, self.seen, self.times = notify, notify.count("WATCHDOG=1"), []

    def poll(self):
        n = self.notify.count("WATCHDOG=1")
        self.times += [time.monotonic()] * (n - self.seen)
        self.seen = n
        return self.times

    def silent_for(self):
        self.poll()
        return time.monotonic() - self.times[-1] if self.times else 0


def main():
    started = time.monotonic()
    br = e.Broker()
    hport = e.free_port()
    d = e.Daemon(e.config([e.broker(br.port, "mosquitto", "wd-test", reconnect_min="100ms", reconnect_max="200ms")],
                          [e.mapping("e2e/#", "t1", qos=1)], http={"listen": "127.0.0.1:%d" % hport},
                          log=None))  # the default flush interval: the flusher is frozen while it waits
    os.environ["WATCHDOG_USEC"] = str(int(WATCHDOG_S * 1e6))  # Daemon.start passes the environment on
    d.start()
    ka = Keepalives(d.notify)
    e.wait_for(lambda: len(ka.poll()) >= 3, 10, "three WATCHDOG=1 keep-alives")
    gaps = [b - a for a, b in zip(ka.times, ka.times[1:])]
    e.check(all(g < WATCHDOG_S for g in gaps), "keep-alives further apart than the interval: %r" % gaps)

    pub = e.publish(br.port, 4000, qos=1, topics=10, prefix="e2e", background=True, rate=1000)  # 4 s: a STATUS= period

    def status_lines():
        d.notify.poll()
        return [line for m in d.notify.messages for line in m.split("\n") if line.startswith("STATUS=ingest ")]

    e.wait_for(lambda: any(not line.startswith("STATUS=ingest 0.0 ") for line in status_lines()), 15,
               "a STATUS= line with a non-zero ingest rate")
    line = [x for x in status_lines() if not x.startswith("STATUS=ingest 0.0 ")][-1]
    e.check(line.endswith(" msg/s, 1 of 1 broker connections up"), "STATUS= line: %r" % line)
    e.log("systemd would show: " + line)
    e.wait_publisher(pub, "publisher")

    # freeze the flusher alone
    pid = d.proc.pid
    tid = thread_named(pid, "mqlog-flusher")
    ptrace(PTRACE_SEIZE, tid)
    ptrace(PTRACE_INTERRUPT, tid)
    frozen = time.monotonic()
    e.wait_for(lambda: thread_state(pid, tid) == "t", 5, "the flusher thread to stop")
    e.check(thread_state(pid, pid) != "t", "the whole process stopped, not one thread")
    e.wait_for(lambda: ka.silent_for() > WATCHDOG_S + 1, 15,
               "keep-alives to stop for longer than the watchdog interval with the flusher frozen")
    e.check(d.alive(), "mqlogd exited with its flusher frozen")
    age = status_json(hport)["loops"]["store"]["age_ms"]
    e.check(age > WATCHDOG_S * 1000, "status.json says the store loop turned %d ms ago" % age)
    e.check("watchdog: the store flusher has not turned for" in d.log(), "no warning logged")
    e.log("keep-alives stopped %.1f s after the flusher froze; silent for %.1f s, mqlogd alive"
          % (ka.times[-1] - frozen, ka.silent_for()))

    # /healthz reads only heartbeats: once the store loop is stale (10 s) it answers 503 at once, and
    # /metrics answers too (it waits at most 200 ms in all for partition locks a stuck flusher may hold)
    e.wait_for(lambda: status_json(hport)["loops"]["store"]["age_ms"] > 10500, 20, "the store loop to go stale")
    t0 = time.monotonic()
    code, body = e.http_get(hport, "/healthz")
    took = time.monotonic() - t0
    e.check(code == 503 and "stale: the store loop" in body and took < 2, "/healthz: %d %r in %.2f s" % (code, body, took))
    t0 = time.monotonic()
    code, _ = e.http_get(hport, "/metrics")
    e.check(code == 200 and time.monotonic() - t0 < 3, "/metrics: %d in %.2f s" % (code, time.monotonic() - t0))
    e.log("/healthz answered 503 in %.3f s with the flusher frozen" % took)

    before = len(ka.times)
    ptrace(PTRACE_DETACH, tid)
    e.wait_for(lambda: len(ka.poll()) > before, 10, "keep-alives to resume once the flusher runs")
    e.wait_for(lambda: "keep-alives resumed" in d.log(), 5, "the resumption logged")
    d.stop()
    e.log("OK: watchdog checked in %.1f s" % (time.monotonic() - started))


if __name__ == "__main__":
    main()
