"""test_kafka_sasl.py - SASL authentication of mqlogd's Kafka listeners with real clients (issue 12).

A CA and a server certificate for localhost and 127.0.0.1 are made with the openssl CLI. mqlogd runs with two
loopback listeners: one over TLS with sasl [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512] (SASL_SSL), one plaintext
offering the same with allow_plain_without_tls (SASL_PLAINTEXT). Users are added with `mqlog user` before
the start, and beside the running daemon.

1. kcat over SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 reads every record (librdkafka uses
   SaslHandshake v1 and SaslAuthenticate).
2. A wrong password and an unknown user get librdkafka's clean authentication error; mqlogd logs why
   (wrong password, unknown user), counts them (SIGUSR1) and goes on serving; a client that skips
   authentication is closed.
3. kafka-python 2.0.2 (SaslHandshake v0, then bare tokens) with SCRAM-SHA-512 over SASL_SSL and with PLAIN
   over SASL_PLAINTEXT reads every record.
4. `mqlog user add` beside the running mqlogd applies to the next connection; `mqlog user remove` too.

Every wait is a deadline on a condition. Runtime: a few seconds.
"""
import os
import shutil
import signal
import subprocess

import e2e_lib as e

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
RECORDS = 300
TOPIC = "t"


def sasl_args(protocol, mech, user, password, ca=None):
    args = ["-X", "security.protocol=" + protocol, "-X", "sasl.mechanisms=" + mech,
            "-X", "sasl.username=" + user, "-X", "sasl.password=" + password]
    if ca:
        args += ["-X", "ssl.ca.location=" + ca]
    return args


def kcat_read(bootstrap, extra, want, what):
    p = e.run([KCAT, "-C", "-b", bootstrap, "-t", TOPIC, "-o", "beginning", "-e", "-q", "-c", str(len(want))]
              + extra, timeout=60)
    got = p.stdout.splitlines()
    e.check(got == want, "%s: kcat read %d records, %d as stored" %
            (what, len(got), sum(1 for a, b in zip(got, want) if a == b)))


def refused(bootstrap, extra, what):
    """kcat -L fails within its metadata timeout (3 s); returns its stderr."""
    p = e.run([KCAT, "-L", "-b", bootstrap, "-m", "3"] + extra, check=False, timeout=30)
    e.check(p.returncode != 0, "%s: kcat -L succeeded:\n%s" % (what, p.stdout))
    return p.stderr


def kafka_python_read(bootstrap, mech, user, password, want, ca=None):
    """kafka-python (Debian's python3-kafka 2.0.2, SaslHandshake v0 and bare tokens) in a subprocess of the
    system interpreter, which has it."""
    code = r"""
import sys
from kafka import KafkaConsumer
bootstrap, mech, user, password, ca, n = sys.argv[1:7]
kw = dict(security_protocol="SASL_SSL", ssl_cafile=ca) if ca else dict(security_protocol="SASL_PLAINTEXT")
c = KafkaConsumer("t", bootstrap_servers=bootstrap, sasl_mechanism=mech, sasl_plain_username=user,
                  sasl_plain_password=password, auto_offset_reset="earliest", consumer_timeout_ms=10000,
                  **kw)
got = []
for m in c:
    got.append(m.value.decode())
    if len(got) == int(n):
        break
c.close()
sys.stdout.write("\n".join(got) + "\n")
"""
    p = e.run(["/usr/bin/python3", "-c", code, bootstrap, mech, user, password, ca or "", str(len(want))],
              timeout=90)
    got = p.stdout.splitlines()
    e.check(got == want, "kafka-python %s: read %d records, %d as stored" %
            (mech, len(got), sum(1 for a, b in zip(got, want) if a == b)))


def main():
    for tool in (KCAT, shutil.which("openssl")):
        if not tool or not os.path.exists(tool):
            e.fail("kcat and openssl are needed (scripts/setup installs them)")
    d = e.tmpdir("kafka-sasl")
    c = e.make_certs(d)
    ssl_port, plain_port = e.free_port(), e.free_port()
    while plain_port == ssl_port:
        plain_port = e.free_port()
    ssl, plain = "127.0.0.1:%d" % ssl_port, "127.0.0.1:%d" % plain_port
    daemon = e.Daemon("data_dir: @DATA@\nbrokers: []\nmappings: []\nkafka:\n  listeners:\n"
                      "    - listen: \"%s\"\n"
                      "      tls: {cert: %s, key: %s}\n"
                      "      sasl: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]\n"
                      "    - listen: \"%s\"\n"
                      "      sasl: [SCRAM-SHA-256, SCRAM-SHA-512, PLAIN]\n"
                      "      allow_plain_without_tls: true\n" %
                      (ssl, c["server.pem"], c["server.key"], plain), d=d)
    p = e.run([e.MQLOGD, "-c", daemon.conf, "--check"], check=False)
    e.check(p.returncode == 0, "mqlogd --check refused the listeners: %s" % p.stderr)
    e.run([e.MQLOG, "create", "-d", daemon.data, TOPIC, "--partitions", "1"])
    want = ["record-%04d" % i for i in range(RECORDS)]
    p = subprocess.run([e.MQLOG, "produce", "-d", daemon.data, TOPIC, "-p", "0"], input="\n".join(want) + "\n",
                       text=True, capture_output=True, timeout=120)
    e.check(p.returncode == 0, "mqlog produce: %s" % p.stderr)
    e.user_add(daemon.data, "alice", "wonder-land")
    e.user_add(daemon.data, "carol", "only,512=", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192")
    # Debug level: the info lines of failed authentications are rate limited (one per 10 s); the debug ones
    # name each failure and its reason.
    daemon.start(level="debug")

    # 1. SASL_SSL with each mechanism.
    for mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        kcat_read(ssl, sasl_args("sasl_ssl", mech, "alice", "wonder-land", c["ca.pem"]), want, mech)
    kcat_read(ssl, sasl_args("sasl_ssl", "SCRAM-SHA-512", "carol", "only,512=", c["ca.pem"]), want, "carol")
    e.log("kcat read all %d records over SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512" % RECORDS)

    # 2. Wrong password, unknown user, a user without that mechanism: a clean authentication error each.
    for mech, user, pw, why in (("SCRAM-SHA-256", "alice", "wrong", "user alice: wrong password"),
                                ("PLAIN", "alice", "wrong", "user alice: wrong password"),
                                ("SCRAM-SHA-512", "mallory", "x", "unknown user mallory"),
                                ("SCRAM-SHA-256", "carol", "only,512=", "unknown user carol")):
        err = refused(ssl, sasl_args("sasl_ssl", mech, user, pw, c["ca.pem"]), "%s %s" % (mech, user))
        e.check("Authentication failed" in err, "%s as %s: no authentication error from kcat: %r" %
                (mech, user, err[-400:]))
        e.wait_for(lambda: "%s authentication failed: %s" % (mech, why) in daemon.log(), 10,
                   "mqlogd to log the %s failure of %s" % (mech, user))
    err = refused(ssl, ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + c["ca.pem"]], "anonymous")
    e.wait_for(lambda: "request before SASL authentication" in daemon.log(), 10,
               "mqlogd to close the client that did not authenticate")
    kcat_read(plain, sasl_args("sasl_plaintext", "SCRAM-SHA-256", "alice", "wonder-land"), want,
              "after the failures")
    os.kill(daemon.proc.pid, signal.SIGUSR1)

    def failed_count():
        for line in daemon.log().splitlines():
            if " failed authentications" in line and "connections open" in line:
                return int(line.split(" failed authentications")[0].rsplit(" ", 1)[1])
        return None

    e.wait_for(lambda: (failed_count() or 0) >= 4, 10, "SIGUSR1 to count at least 4 failed authentications")
    e.log("wrong password, unknown user and no authentication: refused cleanly, %d failures counted, and "
          "mqlogd serves on" % failed_count())

    # 3. kafka-python: the v0 handshake and bare tokens.
    kafka_python_read(ssl, "SCRAM-SHA-512", "alice", "wonder-land", want, c["ca.pem"])
    kafka_python_read(plain, "PLAIN", "alice", "wonder-land", want)
    e.check("kafka: 127.0.0.1:" in daemon.log() and "authenticated as User:alice (SCRAM-SHA-512)" in daemon.log(),
            "mqlogd did not log kafka-python's authentication")
    e.log("kafka-python read all records with SCRAM-SHA-512 over SASL_SSL and PLAIN over SASL_PLAINTEXT")

    # 4. Users changed beside the running daemon apply to the next connection.
    refused(plain, sasl_args("sasl_plaintext", "SCRAM-SHA-256", "bob", "builder"), "bob before add")
    e.user_add(daemon.data, "bob", "builder")
    kcat_read(plain, sasl_args("sasl_plaintext", "SCRAM-SHA-256", "bob", "builder"), want, "bob after add")
    p = e.run([e.MQLOG, "user", "remove", "-d", daemon.data, "bob"])
    refused(plain, sasl_args("sasl_plaintext", "SCRAM-SHA-256", "bob", "builder"), "bob after remove")
    e.log("mqlog user add and remove beside mqlogd apply to the next connection")

    daemon.stop()
    e.log("test_kafka_sasl: all checks passed")


if __name__ == "__main__":
    main()
