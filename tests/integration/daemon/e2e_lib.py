"""e2e_lib.py - what the mqlogd end-to-end tests share: a private mosquitto on a free loopback port with a
generated configuration, mqlogd started with a generated configuration and watched through its sd_notify
socket, the test publisher (mq_pub), reading the log back with `mqlog consume --format json`, and the
checker of the published streams (every message once, in per-topic order, with its headers).

Paths come from the environment ctest sets: MQLOGD, MQLOG, MQ_PUB, MQ_SOURCE_DIR; MQ_E2E_SCALE scales the
message counts (sanitizer builds use fewer). Nothing waits with a fixed sleep: every wait polls a condition
against a deadline and fails the test, saying what it waited for, when the deadline passes.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MQLOGD = os.environ.get("MQLOGD", "mqlogd")
MQLOG = os.environ.get("MQLOG", "mqlog")
MQ_PUB = os.environ.get("MQ_PUB", "mq_pub")
SOURCE_DIR = os.environ.get("MQ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCALE = float(os.environ.get("MQ_E2E_SCALE", "1"))

_procs = []
_tmpdirs = []
_mounts = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def scaled(n, minimum=200):
    return max(minimum, int(n * SCALE))


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for m in _mounts:
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
    if os.environ.get("MQ_E2E_KEEP"):
        log("keeping " + " ".join(_tmpdirs))
        return
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def tmpdir(tag):
    d = tempfile.mkdtemp(prefix="mqlog-%s." % tag, dir=os.environ.get("TMPDIR", "/tmp"))
    _tmpdirs.append(d)
    return d


def wait_for(cond, timeout, what, every=0.02):
    """Polls cond() until it returns a true value (returned) or timeout seconds pass (the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            fail("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(every)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    _procs.append(p)
    return p


class Broker:
    """A private mosquitto: listener on a loopback port, persistence in its own directory."""

    def __init__(self, port=None, extra=""):
        if not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
            fail("mosquitto is not installed (scripts/setup installs it)")
        self.dir = tmpdir("mosquitto")
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(
                "user root\nlistener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n"
                "max_queued_bytes 0\nmax_inflight_messages 0\npersistence true\npersistence_location %s/\n"
                "autosave_interval 1\nlog_dest stderr\n%s\n" % (self.port, self.dir, extra)
            )
        self.proc = None
        self.start()

    def start(self):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        logf = open(os.path.join(self.dir, "mosquitto.log"), "a")
        self.proc = spawn([exe, "-c", self.conf], stdout=logf, stderr=logf)
        logf.close()

        def up():
            if self.proc.poll() is not None:
                fail("mosquitto exited with %s: %s" % (self.proc.returncode, self.log()[-2000:]))
            return port_open(self.port)

        wait_for(up, 15, "mosquitto to accept connections on port %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                fail("mosquitto did not stop on SIGTERM")
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        with open(os.path.join(self.dir, "mosquitto.log"), errors="replace") as f:
            return f.read()


class Notify:
    """The NOTIFY_SOCKET a systemd service manager would give mqlogd: collects what sd_notify sends."""

    def __init__(self, d):
        self.path = os.path.join(d, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []

    def poll(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            self.messages.append(data.decode(errors="replace"))

    def count(self, line):
        self.poll()
        return sum(1 for m in self.messages if line in m.split("\n"))


class Daemon:
    """mqlogd with a generated configuration (data_dir and the broker URLs filled in by the caller)."""

    def __init__(self, config_text, d=None, name="mqlogd.yaml"):
        self.dir = d or tmpdir("mqlogd")
        self.data = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, name)
        self.write_config(config_text)
        self.notify = Notify(self.dir)
        self.proc = None
        self.logpath = os.path.join(self.dir, "mqlogd.log")
        self.starts = 0

    def write_config(self, text):
        with open(self.conf, "w") as f:
            f.write(text.replace("@DATA@", os.path.join(self.dir, "data")))

    def start(self, wait_ready=True, level="info"):
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        env.pop("JOURNAL_STREAM", None)
        logf = open(self.logpath, "a")
        ready_before = self.notify.count("READY=1")
        self.proc = spawn([MQLOGD, "-c", self.conf, "--log-level", level], stdout=logf, stderr=logf, env=env)
        logf.close()
        self.starts += 1
        if wait_ready:

            def ready():
                if self.proc.poll() is not None:
                    fail("mqlogd exited with %s before READY=1:\n%s" % (self.proc.returncode, self.log()[-3000:]))
                return self.notify.count("READY=1") > ready_before

            wait_for(ready, 30, "mqlogd to send READY=1")

    def stop(self, expect=0, timeout=60):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            fail("mqlogd did not stop within %ss of SIGTERM:\n%s" % (timeout, self.log()[-3000:]))
        if expect is not None and rc != expect:
            fail("mqlogd exited with %s, expected %s:\n%s" % (rc, expect, self.log()[-3000:]))
        self.proc = None
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()


def run(args, check=True, timeout=120, **kw):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within %ss" % (" ".join(args), timeout))
    if check and p.returncode != 0:
        fail("%s exited with %d:\n%s%s" % (" ".join(args), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def publish(port, count, qos=1, version=5, topics=10, first=0, prefix="e2e", client_id=None, size=100,
            timeout=300, background=False, rate=None):
    args = [MQ_PUB, "-p", str(port), "-q", str(qos), "-V", str(version), "-n", str(count), "-f", str(first),
            "-t", str(topics), "-T", prefix, "-s", str(size), "--timeout", str(timeout)]
    if client_id:
        args += ["-i", client_id, "--persistent"]
    if rate:
        args += ["--rate", str(rate)]
    if background:
        return spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return run(args, timeout=timeout + 30)


def topic_counts(data_dir):
    """{topic: records stored} from `mqlog topics --json` (end - start offsets, summed over partitions)."""
    if not os.path.exists(os.path.join(data_dir, "catalog.db")):
        return {}
    p = run([MQLOG, "topics", "-d", data_dir, "--json"], check=False)
    if p.returncode != 0:
        return {}
    out = {}
    for t in json.loads(p.stdout)["topics"]:
        out[t["topic"]] = sum(x["end_offset"] - x["start_offset"] for x in t["partition_list"])
    return out


def stored(data_dir, topic):
    return topic_counts(data_dir).get(topic, 0)


def consume(data_dir, topic):
    p = run([MQLOG, "consume", "-d", data_dir, topic, "--format", "json"], timeout=300)
    return [json.loads(line) for line in p.stdout.splitlines() if line]


def headers(rec):
    return {h["key"]: h.get("value") for h in rec.get("headers", [])}


def wait_subscribed(port, data_dir, topic, qos, version, prefix="e2e", timeout=30, probe=None):
    """Publishes probe messages on PREFIX/probe (or the MQTT topic probe) until one is stored in topic: the
    gateway's subscription is then active. Returns how many probe records are stored at that point (no more
    are sent afterwards)."""
    probe = probe or prefix + "/probe"

    def seen():
        run([MQ_PUB, "-p", str(port), "-q", str(qos), "-V", str(version), "-n", "1", "--exact", "-T", probe,
             "--timeout", "10"])
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            if stored(data_dir, topic) > 0:
                return True
            time.sleep(0.02)
        return False

    wait_for(seen, timeout, "mqlogd to subscribe (probe messages on %s)" % probe, every=0)
    return sum(1 for r in consume(data_dir, topic) if headers(r).get("mqtt.topic") == probe)


def check_stream(records, count, topics, first=0, prefix="e2e", qos=None, broker=None, exact=True,
                 size=None):
    """Checks the records of messages FIRST..FIRST+COUNT-1 published by mq_pub over TOPICS topics: each
    present (exact: exactly once), per topic in publishing order, with its headers and key. Returns the
    number of duplicates (0 when exact). Records of other topics (probes) are ignored."""
    want = {}
    for t in range(topics):
        # the seq numbers of topic t among k in [first, first+count)
        ks = range(first + ((t - first) % topics), first + count, topics)
        want[t] = [k // topics for k in ks]
    seen = {t: [] for t in range(topics)}
    bad = []
    for r in records:
        h = headers(r)
        mt = h.get("mqtt.topic", "")
        if not mt.startswith(prefix + "/") or mt.startswith(prefix + "/probe"):
            continue
        try:
            v = json.loads(r["value"])
        except (ValueError, KeyError, TypeError):
            bad.append("undecodable value at %s/%s: %r" % (r.get("partition"), r.get("offset"), r.get("value")))
            continue
        t = v["topic"]
        if mt != "%s/%d" % (prefix, t):
            bad.append("record of topic %d carries mqtt.topic %s" % (t, mt))
        if r.get("key") != mt:
            bad.append("key %r, expected the MQTT topic %r" % (r.get("key"), mt))
        if qos is not None and h.get("mqtt.qos") != str(qos):
            bad.append("mqtt.qos %r, expected %d" % (h.get("mqtt.qos"), qos))
        if h.get("mqtt.retain") != "false":
            bad.append("mqtt.retain %r" % h.get("mqtt.retain"))
        if broker is not None and h.get("mqtt.broker") != broker:
            bad.append("mqtt.broker %r, expected %r" % (h.get("mqtt.broker"), broker))
        if size is not None and len(r["value"]) != size:
            bad.append("payload of %d bytes, expected %d" % (len(r["value"]), size))
        if v["k"] >= first and v["k"] < first + count:
            seen[t].append(v["seq"])
        if len(bad) > 20:
            break
    if bad:
        fail("%d bad records, e.g.:\n  %s" % (len(bad), "\n  ".join(bad[:20])))
    dups = 0
    for t in range(topics):
        got, exp = seen[t], want[t]
        if exact:
            if got != exp:
                missing = sorted(set(exp) - set(got))
                extra = len(got) - len(set(got))
                disorder = next((i for i in range(1, len(got)) if got[i] <= got[i - 1]), None)
                fail("topic %s/%d: %d records, expected %d; %d missing (first %s), %d duplicates, first "
                     "disorder at index %s" % (prefix, t, len(got), len(exp), len(missing), missing[:5], extra,
                                               disorder))
        else:
            missing = sorted(set(exp) - set(got))
            if missing:
                fail("topic %s/%d: %d messages missing (first %s)" % (prefix, t, len(missing), missing[:10]))
            # first occurrences must come in publishing order; repeats are redeliveries
            firsts, known = [], set()
            for s in got:
                if s not in known:
                    known.add(s)
                    firsts.append(s)
            if firsts != sorted(firsts):
                i = next(i for i in range(1, len(firsts)) if firsts[i] < firsts[i - 1])
                fail("topic %s/%d: out of order: %s after %s" % (prefix, t, firsts[i], firsts[i - 1]))
            dups += len(got) - len(known)
    return dups


def tmpfs(d, size):
    """Mounts a tmpfs of size (e.g. '8m') on d; the test fails loudly when that is impossible."""
    os.makedirs(d, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", d], capture_output=True, text=True)
    if p.returncode != 0:
        fail("cannot mount a tmpfs on %s (this test needs root): %s" % (d, p.stderr.strip()))
    _mounts.append(d)


def umount(d):
    subprocess.run(["umount", d], check=True)
    _mounts.remove(d)


def keys_seen(records, prefix="e2e"):
    """The message numbers k (mq_pub's) among records, with repeats."""
    out = []
    for r in records:
        mt = headers(r).get("mqtt.topic", "")
        if mt.startswith(prefix + "/") and not mt.startswith(prefix + "/probe"):
            try:
                out.append(json.loads(r["value"])["k"])
            except (ValueError, KeyError, TypeError):
                pass
    return out


def wait_complete(data_dir, topic, count, first=0, prefix="e2e", timeout=120, alive=None):
    """Waits until every message first..first+count-1 is stored in topic (duplicates allowed); returns the
    records. alive (optional) is called on every poll to fail early, e.g. when mqlogd died."""
    deadline = time.monotonic() + timeout
    want = set(range(first, first + count))
    missing = want
    while True:
        if alive:
            alive()
        if stored(data_dir, topic) >= count:
            recs = consume(data_dir, topic)
            missing = want - set(keys_seen(recs, prefix))
            if not missing:
                return recs
        if time.monotonic() >= deadline:
            m = sorted(missing)
            fail("after %ss, %d of %d messages are not in the log (first %s)" % (timeout, len(m), count, m[:10]))
        time.sleep(0.5)
