"""e2e_lib.py - what the Python integration tests (daemon/, kafka/, forward/) share: a private mosquitto on a
free loopback port with a generated configuration, mqlogd's configuration written from Python values (config(),
broker(), mapping()), mqlogd started and watched through its sd_notify socket, child processes whose output
lines a test waits for (Proc), the test publisher (mq_pub), reading the log back with `mqlog consume --format
json`, and the checker of the published streams (every message once, in per-topic order, with its headers).
For forwarding: a central Kafka cluster (KafkaMock, librdkafka's mock cluster) and read_remote(), which reads
a topic of it back record by record. For the Kafka endpoint's security: certificates made with the openssl CLI
(make_certs()) and SASL users added with `mqlog user` (user_add()). For mqlogd's HTTP endpoint: http_get(),
and parse_metrics() / metric_value() over a /metrics scrape.

ctest puts this directory on PYTHONPATH; paths come from the environment it sets: MQLOGD, MQLOG, MQ_PUB,
MQ_KAFKA_MOCK, MQ_KAFKA_DUMP, MQ_SOURCE_DIR; MQ_E2E_SCALE scales the message counts (sanitizer builds use fewer); MQ_E2E_KEEP=1 keeps the
temporary directories. Nothing waits with a fixed sleep: every wait polls a condition against a deadline and
fails the test, saying what it waited for, when the deadline passes.
"""
import atexit
import base64
import collections
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

MQLOGD = os.environ.get("MQLOGD", "mqlogd")
MQLOG = os.environ.get("MQLOG", "mqlog")
MQ_PUB = os.environ.get("MQ_PUB", "mq_pub")
MQ_KAFKA_MOCK = os.environ.get("MQ_KAFKA_MOCK", "mq_kafka_mock")
MQ_KAFKA_DUMP = os.environ.get("MQ_KAFKA_DUMP", "mq_kafka_dump")
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


def check(cond, msg):
    if not cond:
        fail(msg)


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
        time.sleep(every)  # poll interval of this deadline wait


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path):
    """(status, body) of GET path from mqlogd's HTTP endpoint on port; an error status is returned, not raised."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus exposition (a /metrics scrape)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        check(m, "not a sample line: %r" % line)
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric_value(samples, name, **labels):
    """The value of one sample of parse_metrics()'s result, or None."""
    return samples.get((name, frozenset(labels.items())))


def recv_all(s, n):
    """Exactly n bytes from socket s (a raw Kafka request's answer); fails the test when the peer closes first."""
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            fail("the endpoint closed the connection")
        b += chunk
    return b


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


class Proc:
    """A child process whose stdout lines a thread collects (expect() waits for one) and whose stdin takes
    commands; killed at exit if still running."""

    def __init__(self, argv, name):
        self.name = name
        self.p = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                       bufsize=1)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def expect(self, pred, timeout, what):
        """Returns the first new line for which pred is true; fails at the deadline or at end of output."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("%s: timed out waiting for %s" % (self.name, what))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                fail("%s: exited while waiting for %s" % (self.name, what))
            self.seen.append(line)
            if pred(line):
                return line

    def drain(self):
        """Collects the lines available now."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                return
            self.seen.append(line)

    def wait(self, timeout=30):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("%s: did not exit" % self.name)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Broker:
    """A private mosquitto: listener on a loopback port, persistence in its own directory. inflight: its
    max_inflight_messages, the QoS 1/2 messages it sends a client without waiting for acknowledgements
    (default 0: no limit, for throughput). Tests of redelivery set it to mqlogd's max_inflight, as a site
    would; the redelivery guard covers the last 30,000 stored messages whatever the window."""

    def __init__(self, port=None, extra="", inflight=0):
        if not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
            fail("mosquitto is not installed (scripts/setup installs it)")
        self.dir = tmpdir("mosquitto")
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(
                "user root\nlistener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n"
                "max_queued_bytes 0\nmax_inflight_messages %d\npersistence true\npersistence_location %s/\n"
                "autosave_interval 1\nlog_dest stderr\n%s\n" % (self.port, inflight, self.dir, extra)
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
        """SIGTERM, repeated every 100 ms: mosquitto 2.0.11 loses one that arrives after its listener is up
        but before its main loop runs. SIGTERM, not SIGKILL: the broker saves its persistent sessions."""
        if self.proc:
            deadline = time.monotonic() + 30
            while self.proc.poll() is None:
                if time.monotonic() >= deadline:
                    fail("mosquitto did not stop on SIGTERM")
                self.proc.terminate()
                try:
                    self.proc.wait(0.1)  # resend interval of this deadline wait
                except subprocess.TimeoutExpired:
                    pass
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        with open(os.path.join(self.dir, "mosquitto.log"), errors="replace") as f:
            return f.read()


RABBITMQ_HOME = "/usr/lib/rabbitmq"
_RABBITMQ_MARK = "MQ_E2E_RABBITMQ"


def _free_ports(n):
    """n distinct free loopback ports (all bound at once, so that none is handed out twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _marked_pids(mark):
    """Pids of the processes whose environment holds MQ_E2E_RABBITMQ=mark: the node, its epmd, the Erlang
    helpers and CLI tools it started, and nothing else (each node has its own mark, its directory)."""
    needle = ("%s=%s" % (_RABBITMQ_MARK, mark)).encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            out.append(int(name))
    return out


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"


def _kill_marked(mark, timeout=10):
    """SIGKILLs the processes of one node's mark and waits until they are gone; returns how many there were."""
    pids = _marked_pids(mark)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while _marked_pids(mark) and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval of this deadline wait
    return len(pids)


def _rabbitmq_reaper(mark):
    """Body of the reaper process a RabbitMQ node comes with: it blocks on a pipe from the test and, once the
    pipe closes (the test stopped the node, exited or was killed, SIGKILL included), kills whatever carries
    the node's mark, so that no beam or epmd outlives the test. It forks once more and lets the intermediate
    process exit: a killer that walks the test's process tree (ctest on a timeout) does not find it."""
    if os.fork() != 0:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    if _kill_marked(mark) and not os.environ.get("MQ_E2E_KEEP"):
        shutil.rmtree(mark, ignore_errors=True)  # the test did not get to remove it


class RabbitMQ:
    """A private RabbitMQ node with its MQTT plugin (MQTT 3.1.1 only), as ../shared/REFERENCE.md describes:
    every listener (AMQP, MQTT, distribution, the CLI tools' distribution, its own epmd) on a free loopback
    port, node name, configuration, data, logs, cookie and HOME in a temporary directory; the system service is
    never touched. It takes about 13 s to start, so a test starts one and uses it for all its cases.

    Cleanup in every case: stop() stops the node with rabbitmqctl and ends its epmd; at exit (a failed test)
    whatever is left is killed. Every process the node starts carries MQ_E2E_RABBITMQ=<its directory> in its
    environment, which is how they are found (the Erlang VM and epmd detach themselves from the test's process
    tree). A reaper process, detached from the test and holding a pipe from it, does the same if the test
    itself is killed."""

    # mqtt.prefetch, written into the node's configuration (RabbitMQ's default, spelled out because tests bound
    # redeliveries by it): the most messages the MQTT plugin delivers to one subscriber without its ack.
    PREFETCH = 10

    def __init__(self, start_timeout=90):
        self.server = os.path.join(RABBITMQ_HOME, "bin", "rabbitmq-server")
        self.ctl = os.path.join(RABBITMQ_HOME, "bin", "rabbitmqctl")
        if not os.path.exists(self.server) or not os.path.exists(self.ctl):
            fail("RabbitMQ is not installed (%s is missing; scripts/setup installs rabbitmq-server)" % self.server)
        self.dir = tmpdir("rabbitmq")
        self.port, self.amqp_port, self.dist_port, self.epmd_port, self.ctl_port = _free_ports(5)
        self.node = "mqlog-e2e-%d@localhost" % self.port
        conf = os.path.join(self.dir, "rabbitmq.conf")
        with open(conf, "w") as f:
            f.write(
                "listeners.tcp.default = 127.0.0.1:%d\nmqtt.listeners.tcp.default = 127.0.0.1:%d\n"
                "mqtt.allow_anonymous = true\nmqtt.prefetch = %d\nloopback_users = none\n"
                "distribution.listener.interface = 127.0.0.1\nlog.console = false\nlog.file.level = info\n" %
                (self.amqp_port, self.port, self.PREFETCH)
            )
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        envfile = os.path.join(self.dir, "rabbitmq-env.conf")  # instead of /etc/rabbitmq/rabbitmq-env.conf
        open(envfile, "w").close()
        home = os.path.join(self.dir, "home")
        os.mkdir(home)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_", "NOTIFY_SOCKET", "JOURNAL_STREAM"))}
        env.update({
            _RABBITMQ_MARK: self.dir,
            "HOME": home,
            "RABBITMQ_HOME": RABBITMQ_HOME,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONF_ENV_FILE": envfile,
            "RABBITMQ_CONFIG_FILE": conf,
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.dir, "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": plugins,
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.ctl_port),
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
        })
        self.env = env
        self.proc = None
        self.reaper = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import e2e_lib; "
             "e2e_lib._rabbitmq_reaper(sys.argv[2])", os.path.dirname(os.path.abspath(__file__)), self.dir],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.reaper.wait(30)  # the intermediate process; the reaper itself holds the pipe's other end
        atexit.register(self._cleanup)  # runs before _cleanup removes the directory
        self.start(start_timeout)

    def start(self, timeout=90):
        logf = open(os.path.join(self.dir, "rabbitmq-server.out"), "a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.server], env=self.env, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        logf.close()

        def up():
            if self.proc.poll() is not None:
                fail("rabbitmq-server exited with %s before its MQTT port answered:\n%s" % (self.proc.returncode,
                                                                                          self.log()[-3000:]))
            return port_open(self.port)

        wait_for(up, timeout, "RabbitMQ's MQTT listener on port %d" % self.port, every=0.1)
        self.start_time = time.monotonic() - t0

    def rabbitmqctl(self, *args, check=True, timeout=60):
        return run([self.ctl, "-n", self.node] + list(args), check=check, timeout=timeout, env=self.env,
                   cwd=self.dir)

    def stop(self):
        """Stops the node with rabbitmqctl, then its epmd; fails the test if either leaves a process behind."""
        if self.proc is None:
            return
        self.rabbitmqctl("stop")
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            fail("rabbitmq-server did not exit after rabbitmqctl stop")
        self.proc = None
        run(["epmd", "-port", str(self.epmd_port), "-kill"], env=self.env, check=False, timeout=30)
        deadline = time.monotonic() + 15
        while _marked_pids(self.dir):
            if time.monotonic() >= deadline:
                left = ["%d %s" % (pid, _cmdline(pid)) for pid in _marked_pids(self.dir)]
                fail("RabbitMQ left processes behind after rabbitmqctl stop and epmd -kill:\n  " + "\n  ".join(left))
            time.sleep(0.05)  # poll interval of this deadline wait
        self._end_reaper()

    def _end_reaper(self):
        if self.reaper:
            self.reaper.stdin.close()  # the reaper finds nothing left to kill and exits
        self.reaper = None

    def _cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # the wrapper script; the VM and epmd are among the marked processes
            self.proc.wait()
        self.proc = None
        n = _kill_marked(self.dir)
        if n:
            log("killed %d RabbitMQ process(es) left behind" % n)
        self._end_reaper()

    def log(self):
        out = []
        for path in [os.path.join(self.dir, "rabbitmq-server.out"),
                     os.path.join(self.dir, "log", self.node + ".log")]:
            try:
                with open(path, errors="replace") as f:
                    out.append(f.read())
            except OSError:
                pass
        return "\n".join(out)


class Notify:
    """The NOTIFY_SOCKET a systemd service manager would give mqlogd: collects what sd_notify sends. Like the
    manager, it reads all the time (a thread): the socket's queue holds only 10 datagrams, and mqlogd renews
    its STATUS= line and keep-alives every few seconds."""

    def __init__(self, d):
        self.path = os.path.join(d, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            data = self.sock.recv(4096)
            with self._lock:
                self.messages.append(data.decode(errors="replace"))

    def poll(self):
        pass  # the thread reads; kept for the callers that poll before they look at messages

    def count(self, line):
        with self._lock:
            messages = list(self.messages)
        return sum(1 for m in messages if line in m.split("\n"))


FAST_FLUSH = {"flush_interval_ms": 5}  # the log section of most tests: records readable within 5 ms


def broker(port, client, client_id, name="local", version=5, **keys):
    """One entry of brokers: a broker on 127.0.0.1:PORT with a persistent session; version 5 is MQTT 5, any
    other MQTT 3.1.1. keys adds settings (durable_ack=True, reconnect_min="100ms", ...) in the order given."""
    return dict({"name": name, "url": "mqtt://127.0.0.1:%d" % port, "client": client, "client_id": client_id,
                 "protocol": "5" if version == 5 else "3.1.1", "clean_session": False}, **keys)


def delivered_qos(connector, qos, version, durable_ack=True, guarded=True):
    """The QoS a message of a QoS QOS mapping arrives with (its mqtt.qos header): with durable_ack, QoS 2
    filters are subscribed at QoS 1 and the redelivery guard (a persistent session, dedup not off) makes that
    exactly once; only Paho over MQTT 5 without the guard keeps QoS 2."""
    if qos == 2 and durable_ack and (connector == "mosquitto" or version != 5 or guarded):
        return 1
    return qos


def mapping(source, to, **keys):
    """One entry of mappings: MQTT filter SOURCE into log topic TO; keys adds qos=, partitions=, key=, ..."""
    return dict({"from": source, "to": to}, **keys)


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # quoted: mqlogd takes only plain scalars as integers and booleans


def _yaml_lines(value, indent):
    pad = " " * indent
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                out.append("%s%s:" % (pad, k))
                out += _yaml_lines(v, indent + 2)
            else:
                out.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    else:  # a list of mappings or of scalars
        for item in value:
            if not isinstance(item, (dict, list)):
                out.append(pad + "- " + _yaml_scalar(item))
                continue
            sub = _yaml_lines(item, indent + 2)
            out.append(pad + "- " + sub[0].lstrip())
            out += sub[1:]
    return out


def config(brokers, mappings, log=FAST_FLUSH, **sections):
    """mqlogd's configuration as YAML text: data_dir "@DATA@" (Daemon puts its directory there), the log
    section (None: the defaults), brokers and mappings (lists of broker() and mapping() entries), then any other
    top-level section given as a keyword (kafka={"listen": ...}, unmatched="unmatched", site="plant-7",
    forward=[forwarder(...)]). Python ints and bools are written as plain scalars, everything else as quoted
    strings."""
    top = {"data_dir": "@DATA@"}
    if log:
        top["log"] = log
    top["brokers"] = brokers
    top["mappings"] = mappings
    top.update(sections)
    return "\n".join(_yaml_lines(top, 0)) + "\n"


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


def make_certs(d, clients=(), rogue=False):
    """Certificates for TLS tests, made with the openssl CLI in directory d (P-256 keys: fast): a CA (ca.pem),
    a server certificate for localhost and 127.0.0.1 (server.pem, server.key), a client certificate signed by
    the CA for each (name, subject) of clients (NAME.pem, NAME.key), and with rogue an untrusted CA and a
    client certificate of its (rogue.pem, rogue.key, subject /CN=intruder). Returns {file name: path}."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "rogue-ca") if rogue else ("ca",):
        run(["openssl", "req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
             "-subj", "/CN=mqlog test " + ca], cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    certs = [("server", "ca", "/CN=localhost", ["-extfile", "server.ext"])]
    certs += [(name, "ca", subject, []) for name, subject in clients]
    if rogue:
        certs.append(("rogue", "rogue-ca", "/CN=intruder", []))
    for name, ca, subject, ext in certs:
        run(["openssl", "req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", subject], cwd=d)
        run(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2", *ext], cwd=d)
    return {n: os.path.join(d, n) for n in os.listdir(d) if n.endswith((".pem", ".key"))}


def user_add(data, name, password, *extra):
    """`mqlog user add` of a SASL user to the store at data, the password given on stdin."""
    p = subprocess.run([MQLOG, "user", "add", "-d", data, name] + list(extra), input=password + "\n",
                       text=True, capture_output=True, timeout=60)
    check(p.returncode == 0, "mqlog user add %s: %s" % (name, p.stderr))


def run(args, check=True, timeout=120, **kw):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within %ss" % (" ".join(args), timeout))
    if check and p.returncode != 0:
        fail("%s exited with %d:\n%s%s" % (" ".join(args), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def publish(port, count, qos=1, version=5, topics=10, first=0, prefix="e2e", client_id=None, size=100,
            timeout=300, background=False, rate=None, repeat=1):
    """Runs mq_pub: COUNT numbered messages (each REPEAT times in a row, identical topic and payload), at
    RATE publications per second if given; client_id makes its session persistent. background: returns the
    running process (wait_publisher() waits for it), otherwise waits for it and fails the test if it fails."""
    args = [MQ_PUB, "-p", str(port), "-q", str(qos), "-V", str(version), "-n", str(count), "-f", str(first),
            "-t", str(topics), "-T", prefix, "-s", str(size), "--timeout", str(timeout)]
    if client_id:
        args += ["-i", client_id, "--persistent"]
    if rate:
        args += ["--rate", str(rate)]
    if repeat != 1:
        args += ["--repeat", str(repeat)]
    if background:
        return spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return run(args, timeout=timeout + 30)


def wait_publisher(pub, label="", timeout=120):
    """Waits for a publish(background=True) to finish; fails the test (its messages prefixed with LABEL: when
    given) if it does not finish in time or exits non-zero."""
    what = label + ": " if label else ""
    try:
        rc = pub.wait(timeout)
    except subprocess.TimeoutExpired:
        fail("%sthe publisher did not finish" % what)
    if rc != 0:
        fail("%sthe publisher failed: %s" % (what, pub.stderr.read()))


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
            time.sleep(0.02)  # poll interval of this deadline wait
        return False

    wait_for(seen, timeout, "mqlogd to subscribe (probe messages on %s)" % probe, every=0)
    return sum(1 for r in consume(data_dir, topic) if headers(r).get("mqtt.topic") == probe)


def check_stream(records, count, topics, first=0, prefix="e2e", qos=None, broker=None, exact=True,
                 size=None, late_window=0, repeat=1):
    """Checks the records of messages FIRST..FIRST+COUNT-1 published by mq_pub over TOPICS topics: each
    present (exact: exactly once), per topic in publishing order, with its headers and key. Returns the
    number of duplicates (0 when exact). Records of other topics (probes) are ignored.
    repeat: mq_pub --repeat, each message was published REPEAT times in a row; each must be stored REPEAT
    times (exact: exactly), and only copies beyond REPEAT count as duplicates.
    late_window (not exact): first occurrences may break publishing order for messages that were all
    published within LATE_WINDOW consecutive messages of each other (what a publisher had unacknowledged
    when its connection broke, and sends again after newer ones); every other message keeps its order."""
    want = {}
    for t in range(topics):
        # the seq numbers of topic t among k in [first, first+count)
        ks = range(first + ((t - first) % topics), first + count, topics)
        want[t] = [k // topics for k in ks for _ in range(repeat)]
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
    late = []  # (k, seq, highest seq before it) of late first occurrences, late_window only
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
            copies = collections.Counter(got)
            missing = sorted(s for s in set(exp) if copies[s] < repeat)
            if missing and repeat == 1:
                fail("topic %s/%d: %d messages missing (first %s)" % (prefix, t, len(missing), missing[:10]))
            if missing:
                fail("topic %s/%d: %d messages stored fewer than the %d times they were published (first seq %s, "
                     "stored %s times)" % (prefix, t, len(missing), repeat, missing[:10],
                                           [copies[s] for s in missing[:10]]))
            # first occurrences must come in publishing order; copies beyond REPEAT are redeliveries
            firsts, known = [], set()
            for s in got:
                if s not in known:
                    known.add(s)
                    firsts.append(s)
            if late_window:
                # a first occurrence that comes after a higher seq is late; the rest must stay in order
                top = -1
                for s in firsts:
                    if s < top:
                        late.append((s * topics + t, s, top))
                    top = max(top, s)
            elif firsts != sorted(firsts):
                i = next(i for i in range(1, len(firsts)) if firsts[i] < firsts[i - 1])
                fail("topic %s/%d: out of order: %s after %s" % (prefix, t, firsts[i], firsts[i - 1]))
            dups += sum(n - repeat for n in copies.values() if n > repeat)
    if late:
        ks = sorted(k for k, _, _ in late)
        if ks[-1] - ks[0] >= late_window:
            k, s, top = min(late)
            fail("%d messages out of order, published %d messages apart (more than %d could have been in "
                 "flight at once), e.g. seq %d of topic %s/%d after seq %d" %
                 (len(late), ks[-1] - ks[0], late_window, s, prefix, k % topics, top))
        log("%d message%s late (first occurrence after newer ones): k %d..%d" %
            (len(late), "" if len(late) == 1 else "s", ks[0], ks[-1]))
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


def wait_complete(data_dir, topic, count, first=0, prefix="e2e", timeout=120, alive=None, repeat=1, stall=None):
    """Waits until every message first..first+count-1 is stored in topic (duplicates allowed), REPEAT times
    each (mq_pub --repeat); returns the records. alive (optional) is called on every poll to fail early,
    e.g. when mqlogd died; stall (optional) fails early too, once no record has been added for that many
    seconds. A failure says how many messages are missing."""
    deadline = time.monotonic() + timeout
    want = range(first, first + count)
    last, since = -1, time.monotonic()

    def missing(recs):
        copies = collections.Counter(keys_seen(recs, prefix))
        return [k for k in want if copies[k] < repeat]

    while True:
        if alive:
            alive()
        n = stored(data_dir, topic)
        if n >= count * repeat:
            recs = consume(data_dir, topic)
            if not missing(recs):
                return recs
        now = time.monotonic()
        if n != last:
            last, since = n, now
        stalled = stall is not None and now - since >= stall
        if now >= deadline or stalled:
            m = missing(consume(data_dir, topic))
            fail("%s, %d of %d messages are not in the log%s (first %s); %d records in %s" %
                 ("no new record for %ss" % stall if stalled else "after %ss" % timeout, len(m), count,
                  "" if repeat == 1 else " %d times" % repeat, m[:10], n, topic))
        time.sleep(0.5)  # poll interval of this deadline wait


class KafkaMock:
    """The central Kafka cluster of the forwarding tests: librdkafka's mock cluster in mq_kafka_mock
    (tests/tools/), BROKERS brokers on kernel-chosen 127.0.0.1 ports, TOPICS ({name: partitions}) created
    before it is announced. .bootstrap is its bootstrap.servers list. The mock answers no CreateTopics, so a
    test creates remote topics with create(). It keeps at most ~5 MiB or 100,000 batches per partition
    (older ones are dropped): size streams below that. Killed at exit if still running."""

    def __init__(self, brokers=3, topics=None, timeout=30):
        argv = [MQ_KAFKA_MOCK, "-b", str(brokers)]
        for name, parts in (topics or {}).items():
            argv += ["-t", "%s:%d" % (name, parts)]
        self.brokers = brokers
        self.proc = Proc(argv, "mq_kafka_mock")
        line = self.proc.expect(lambda l: l.startswith("bootstrap "), timeout, "the mock cluster's bootstrap line")
        self.bootstrap = line.split(" ", 1)[1]

    def command(self, line, check=True, timeout=30):
        """Sends one command of mq_kafka_mock ("create T P", "down all", "up 2", "rtt all 2000",
        "errors 0 50 _TRANSPORT") and returns its answer: "ok", or "error TEXT" (which fails the test
        unless check is false)."""
        self.proc.send(line)
        answer = self.proc.expect(lambda l: l == "ok" or l.startswith("error "), timeout,
                                  "the answer to '%s'" % line)
        if check and answer != "ok":
            fail("mq_kafka_mock: %s: %s" % (line, answer))
        return answer

    def create(self, topic, partitions):
        self.command("create %s %d" % (topic, partitions))

    def read(self, topic, timeout=60, properties=None):
        return read_remote(self.bootstrap, topic, timeout, properties)

    def stop(self):
        """Destroys the cluster (quit) and waits for the process to exit."""
        if self.proc.p.poll() is None:
            self.command("quit")
        rc = self.proc.wait()
        if rc != 0:
            fail("mq_kafka_mock exited with %s" % rc)


def read_remote(bootstrap, topic, timeout=60, properties=None):
    """Every record of TOPIC on a Kafka cluster, read with librdkafka (mq_kafka_dump, tests/tools/) from each
    partition's first stored offset to its end, with isolation.level=read_committed. Returns a list of dicts,
    each partition's records in offset order: partition, offset, timestamp (ms), tstype ("create", "append"
    or "none"), key and value (bytes, or None for null), headers (a list of (name, bytes or None) pairs, in
    record order). properties adds librdkafka properties ({name: value}). Fails the test when the topic does
    not exist or cannot be read to its end within timeout seconds."""
    args = [MQ_KAFKA_DUMP, "-b", bootstrap, "-t", topic, "-w", str(timeout)]
    for k, v in (properties or {}).items():
        args += ["-X", "%s=%s" % (k, v)]
    try:
        p = subprocess.run(args, capture_output=True, timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within %ss" % (" ".join(args), timeout + 30))
    if p.returncode != 0:
        fail("%s exited with %d: %s" % (" ".join(args), p.returncode, p.stderr.decode(errors="replace")[-2000:]))

    def unhex(h):
        return None if h is None else bytes.fromhex(h)

    out = []
    for line in p.stdout.splitlines():
        r = json.loads(line)
        r["key"] = unhex(r["key"])
        r["value"] = unhex(r["value"])
        r["headers"] = [(name, unhex(v)) for name, v in r["headers"]]
        out.append(r)
    return out


def remote_headers(rec):
    """A read_remote() record's headers as {name: bytes or None} (the last value of a repeated name)."""
    return dict(rec["headers"])


def remote_offsets(bootstrap, topic, timeout=30):
    """{partition: (low, high)} watermarks of TOPIC on a Kafka cluster (mq_kafka_dump -W): high - low records
    are stored there. Fails the test when the cluster does not tell within timeout seconds."""
    args = [MQ_KAFKA_DUMP, "-b", bootstrap, "-t", topic, "-w", str(timeout), "-W"]
    p = run(args, timeout=timeout + 30)
    out = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        out[r["partition"]] = (r["low"], r["high"])
    return out


def forwarder(name, bootstrap, topics, **keys):
    """One entry of the forward list (issue 9): forwarder NAME to the Kafka cluster BOOTSTRAP, for the local log
    topics matching TOPICS (a list of patterns); keys adds to=, partitioning=, mode=, start=, compression=,
    max_bytes_per_s=, hold_retention=, properties={"linger.ms": "20"}, ... in the order given."""
    return dict({"name": name, "bootstrap": bootstrap, "topics": list(topics)}, **keys)


def _consume_bytes(obj, name):
    """Member NAME of a `mqlog consume --format json` object as bytes: NAME (text), NAME_base64, or None (null)."""
    if obj.get(name) is not None:
        return obj[name].encode()
    if name + "_base64" in obj:
        return base64.b64decode(obj[name + "_base64"])
    return None


def local_record(rec):
    """A consume() record in read_remote()'s terms: (key, value, timestamp, headers), keys and values as bytes
    (or None), headers a list of (name, bytes or None) pairs."""
    hdrs = [(_consume_bytes(h, "key").decode(errors="surrogateescape"), _consume_bytes(h, "value"))
            for h in rec.get("headers", [])]
    return _consume_bytes(rec, "key"), _consume_bytes(rec, "value"), rec["timestamp"], hdrs


FORWARD_HEADERS = ("mqlog.site", "mqlog.topic", "mqlog.partition", "mqlog.offset")


def _forwarded_coords(rec):
    """(site, topic, partition, offset) from a remote record's mqlog.* headers; None for a missing one."""
    h = remote_headers(rec)

    def text(name):
        v = h.get(name)
        return None if v is None else v.decode(errors="replace")

    def number(name):
        v = text(name)
        return int(v) if v is not None and v.isdigit() else None

    return text("mqlog.site"), text("mqlog.topic"), number("mqlog.partition"), number("mqlog.offset")


def check_forwarded(local, remote, site, topic, exact=True, label=""):
    """Checks what a forwarder with `partitioning: same` put on a remote topic (REMOTE, read_remote()'s records)
    against the local log topic TOPIC (LOCAL, consume()'s records): every local record is on the remote
    partition of its number, in local offset order, with identical key, value and timestamp, its local headers
    in their order, and exactly one each of mqlog.site (SITE), mqlog.topic (TOPIC), mqlog.partition and
    mqlog.offset (its local coordinates, decimal). Nothing else is on the remote topic.
    exact: each local record exactly once. Otherwise (at_least_once) repeats are allowed, counted and returned;
    their first occurrences must still be in order, and none may be missing. Fails the test, saying what and
    where (LABEL: first), on the first 20 faults."""
    what = label + ": " if label else ""
    want = {(r["partition"], r["offset"]): local_record(r) for r in local}
    bad = []
    seen = {}
    dups = 0
    top = {}  # remote partition -> highest mqlog.offset seen so far
    for r in remote:
        where = "remote %d@%d" % (r["partition"], r["offset"])
        rsite, rtopic, rpart, roff = _forwarded_coords(r)
        if rsite != site or rtopic != topic or rpart is None or roff is None:
            bad.append("%s: mqlog.site %r, mqlog.topic %r, mqlog.partition %r, mqlog.offset %r; expected site %r, "
                       "topic %r" % (where, rsite, rtopic, rpart, roff, site, topic))
            continue
        if rpart != r["partition"]:
            bad.append("%s: local partition %d on remote partition %d" % (where, rpart, r["partition"]))
        names = [n for n, _ in r["headers"]]
        if any(names.count(n) != 1 for n in FORWARD_HEADERS):
            bad.append("%s: mqlog.* headers not once each: %s" % (where, names))
        loc = want.get((rpart, roff))
        if loc is None:
            bad.append("%s: local %d@%d is not in the local log" % (where, rpart, roff))
            continue
        key, value, ts, hdrs = loc
        if r["key"] != key or r["value"] != value:
            bad.append("%s (local %d@%d): key/value %r/%r, expected %r/%r" % (where, rpart, roff, r["key"],
                                                                            (r["value"] or b"")[:60], key, (value or b"")[:60]))
        if r["timestamp"] != ts or r["tstype"] != "create":
            bad.append("%s (local %d@%d): timestamp %s %d, expected create %d" % (where, rpart, roff, r["tstype"],
                                                                                 r["timestamp"], ts))
        kept = [(n, v) for n, v in r["headers"] if n not in FORWARD_HEADERS]
        if kept != hdrs:
            bad.append("%s (local %d@%d): headers %r, expected %r" % (where, rpart, roff, kept, hdrs))
        n = seen.get((rpart, roff), 0)
        seen[(rpart, roff)] = n + 1
        if n:
            dups += 1
            if exact:
                bad.append("%s: local %d@%d again (%d times so far)" % (where, rpart, roff, n + 1))
        else:
            if roff <= top.get(r["partition"], -1):
                bad.append("%s: local %d@%d after %d: out of order" % (where, rpart, roff, top[r["partition"]]))
            top[r["partition"]] = max(roff, top.get(r["partition"], -1))
        if len(bad) >= 20:
            break
    if bad:
        fail("%s%d+ faults in %d remote records, e.g.:\n  %s" % (what, len(bad), len(remote), "\n  ".join(bad)))
    missing = sorted(set(want) - set(seen))
    if missing:
        fail("%s%d of %d local records are not on the remote topic (first %s)" %
             (what, len(missing), len(want), ["%d@%d" % m for m in missing[:10]]))
    return dups


def wait_forwarded(bootstrap, remote_topic, local, timeout=120, alive=None):
    """Waits until every record of LOCAL (consume()'s records) is on REMOTE_TOPIC, by its mqlog.partition and
    mqlog.offset headers (repeats allowed); returns the remote records (read_remote()). It reads everything
    only once the watermarks say enough is stored. alive (optional) is called on every poll to fail early."""
    want = {(r["partition"], r["offset"]) for r in local}
    deadline = time.monotonic() + timeout
    missing = want
    stored_remote = 0
    while True:
        if alive:
            alive()
        stored_remote = sum(hi - lo for lo, hi in remote_offsets(bootstrap, remote_topic).values())
        if stored_remote >= len(want):
            recs = read_remote(bootstrap, remote_topic)
            got = {(c[2], c[3]) for c in map(_forwarded_coords, recs)}
            missing = want - got
            if not missing:
                return recs
        if time.monotonic() >= deadline:
            m = sorted(missing)
            fail("after %ss, %d remote records on %s and %d of %d local records not among them (first %s)" %
                 (timeout, stored_remote, remote_topic, len(m), len(want), ["%d@%d" % x for x in m[:10]]))
        time.sleep(1)  # poll interval of this deadline wait
