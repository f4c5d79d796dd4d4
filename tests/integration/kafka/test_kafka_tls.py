"""test_kafka_tls.py - mqlogd's Kafka listeners and TLS with real clients (issue 12).

A CA, a server certificate for localhost and 127.0.0.1, a client certificate, and an untrusted CA with a
client certificate of its own are made with the openssl CLI in a temporary directory. mqlogd runs with two
listeners: a plaintext one and a mutual-TLS one (require_client_cert), both on loopback, and serves a topic
stored beforehand with `mqlog produce` (large enough that a Fetch carries several 64 KiB file chunks).

1. kcat with the client certificate reads every record over TLS, byte for byte.
2. Metadata through each listener advertises that listener's own address.
3. kcat without a client certificate, and kcat with the untrusted certificate, fail cleanly; mqlogd logs the
   failure with the peer and OpenSSL's reason and goes on serving; SIGUSR1 counts the failed handshakes.
4. A plaintext client on the TLS port is refused the same way; the plaintext listener still serves.
5. kafka-python (python3-kafka) and confluent-kafka read every record over TLS with the client certificate.

Every wait is a deadline on a condition. Runtime: a few seconds.
"""
import os
import shutil
import signal
import subprocess

import e2e_lib as e

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
RECORDS = 3000
TOPIC = "t"


def kcat_ssl(c, cert=None, key=None):
    args = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + c["ca.pem"]]
    if cert:
        args += ["-X", "ssl.certificate.location=" + cert, "-X", "ssl.key.location=" + key]
    return args


def kcat_read(bootstrap, extra, want):
    p = e.run([KCAT, "-C", "-b", bootstrap, "-t", TOPIC, "-o", "beginning", "-e", "-q", "-c", str(len(want))]
              + extra, timeout=60)
    got = p.stdout.splitlines()
    e.check(got == want, "kcat via %s read %d records, %d as stored" %
            (bootstrap, len(got), sum(1 for a, b in zip(got, want) if a == b)))


def advertised(bootstrap, extra):
    p = e.run([KCAT, "-L", "-b", bootstrap, "-t", TOPIC, "-m", "20"] + extra, timeout=30)
    lines = [l.strip() for l in p.stdout.splitlines() if l.strip().startswith("broker 0 at ")]
    e.check(len(lines) == 1, "kcat -L via %s: no broker line in %r" % (bootstrap, p.stdout))
    return lines[0].split()[3]


def refused(bootstrap, extra, what):
    """kcat -L fails within its metadata timeout (3 s) with librdkafka's transport error."""
    p = e.run([KCAT, "-L", "-b", bootstrap, "-m", "3"] + extra, check=False, timeout=30)
    e.check(p.returncode != 0, "%s: kcat -L succeeded:\n%s" % (what, p.stdout))
    return p.stderr


def main():
    for tool in (KCAT, shutil.which("openssl")):
        if not tool or not os.path.exists(tool):
            e.fail("kcat and openssl are needed (scripts/setup installs them)")
    d = e.tmpdir("kafka-tls")
    c = e.make_certs(d, clients=[("client", "/O=plant-7/CN=reader")], rogue=True)
    plain_port, tls_port = e.free_port(), e.free_port()
    while tls_port == plain_port:
        tls_port = e.free_port()
    plain, tls = "127.0.0.1:%d" % plain_port, "127.0.0.1:%d" % tls_port
    daemon = e.Daemon("data_dir: @DATA@\nbrokers: []\nmappings: []\nkafka:\n  listeners:\n"
                      "    - listen: \"%s\"\n"
                      "    - listen: \"%s\"\n"
                      "      tls: {cert: %s, key: %s, ca: %s, require_client_cert: true}\n" %
                      (plain, tls, c["server.pem"], c["server.key"], c["ca.pem"]), d=d)
    p = e.run([e.MQLOGD, "-c", daemon.conf, "--check"], check=False)
    e.check(p.returncode == 0, "mqlogd --check refused the listeners: %s" % p.stderr)
    e.run([e.MQLOG, "create", "-d", daemon.data, TOPIC, "--partitions", "1"])
    want = ["record-%05d-%s" % (i, "x" * (i % 300)) for i in range(RECORDS)]
    p = subprocess.run([e.MQLOG, "produce", "-d", daemon.data, TOPIC, "-p", "0"], input="\n".join(want) + "\n",
                       text=True, capture_output=True, timeout=120)
    e.check(p.returncode == 0, "mqlog produce: %s" % p.stderr)
    daemon.start()

    # 1. mTLS read, byte for byte.
    mtls = kcat_ssl(c, c["client.pem"], c["client.key"])
    kcat_read(tls, mtls, want)
    e.log("kcat read all %d records over mutual TLS" % RECORDS)

    # 2. Each listener advertises its own address.
    got_plain, got_tls = advertised(plain, []), advertised(tls, mtls)
    e.check(got_plain.startswith(plain), "the plaintext listener advertises %s, not %s" % (got_plain, plain))
    e.check(got_tls.startswith(tls), "the TLS listener advertises %s, not %s" % (got_tls, tls))
    e.log("Metadata advertises %s via the plaintext listener and %s via the TLS one" % (got_plain, got_tls))

    # 3. No client certificate, an untrusted one: clean handshake failures, logged once each kind (rate
    # limited), counted; the server goes on.
    err = refused(tls, kcat_ssl(c), "no client certificate")
    e.check("certificate required" in err or "handshake" in err.lower() or "alert" in err,
            "kcat without a certificate: unexpected error %r" % err[-500:])
    e.wait_for(lambda: "TLS handshake with 127.0.0.1:" in daemon.log() and
               "peer did not return a certificate" in daemon.log(), 10,
               "the log to name the peer and the missing certificate")
    err = refused(tls, kcat_ssl(c, c["rogue.pem"], c["rogue.key"]), "an untrusted client certificate")
    e.check("alert" in err or "handshake" in err.lower(), "kcat with an untrusted certificate: %r" % err[-500:])
    e.check(daemon.alive(), "mqlogd died after the refused handshakes")
    kcat_read(tls, mtls, want)

    # 4. A plaintext client on the TLS port; the plaintext listener serves as before.
    refused(tls, [], "a plaintext client on the TLS listener")
    kcat_read(plain, [], want)
    e.log("refused: no certificate, an untrusted certificate, plaintext on the TLS port; both listeners serve")
    os.kill(daemon.proc.pid, signal.SIGUSR1)

    def failed_count():
        for line in daemon.log().splitlines():
            if "failed TLS handshakes" in line and "connections open" in line:
                return int(line.split(" failed TLS handshakes")[0].rsplit(" ", 1)[1])
        return None

    e.wait_for(lambda: (failed_count() or 0) >= 3, 10, "SIGUSR1 to count at least 3 failed TLS handshakes")
    summary = [l for l in daemon.log().splitlines() if "TLS handshake with" in l]
    e.log("%d failed handshakes counted; the first logged: %s" % (failed_count(), summary[0].split("kafka: ", 1)[-1]))

    # 5. Python clients over mutual TLS.
    # A client that is missing fails the test: scripts/setup installs both (none is skipped silently).
    try:
        from kafka import KafkaConsumer, TopicPartition
    except ImportError:
        e.fail("kafka-python (Debian package python3-kafka) is missing")
    kc = KafkaConsumer(bootstrap_servers=tls, security_protocol="SSL", ssl_cafile=c["ca.pem"],
                       ssl_certfile=c["client.pem"], ssl_keyfile=c["client.key"], enable_auto_commit=False,
                       consumer_timeout_ms=15000, api_version_auto_timeout_ms=15000)
    tp = TopicPartition(TOPIC, 0)
    kc.assign([tp])
    kc.seek_to_beginning(tp)
    got = []
    for m in kc:
        got.append(m.value.decode())
        if len(got) == RECORDS:
            break
    kc.close()
    e.check(got == want, "kafka-python read %d of %d records over TLS" % (len(got), RECORDS))
    e.log("kafka-python read all %d records over mutual TLS" % RECORDS)
    try:
        import confluent_kafka
    except ImportError:
        e.fail("confluent-kafka (Debian package python3-confluent-kafka) is missing")
    cc = confluent_kafka.Consumer({
        "bootstrap.servers": tls, "group.id": "tls-test", "enable.auto.commit": False,
        "security.protocol": "ssl", "ssl.ca.location": c["ca.pem"],
        "ssl.certificate.location": c["client.pem"], "ssl.key.location": c["client.key"]})
    cc.assign([confluent_kafka.TopicPartition(TOPIC, 0, confluent_kafka.OFFSET_BEGINNING)])
    got = []

    def read_some():
        for m in cc.consume(num_messages=1000, timeout=1.0):
            e.check(m.error() is None, "confluent-kafka: %s" % m.error())
            got.append(m.value().decode())
        return len(got) >= RECORDS

    e.wait_for(read_some, 30, "confluent-kafka to read every record over TLS", every=0)
    cc.close()
    e.check(got == want, "confluent-kafka read %d records, not the %d stored" % (len(got), RECORDS))
    e.log("confluent-kafka read all %d records over mutual TLS" % RECORDS)
    e.check(daemon.alive(), "mqlogd died")
    daemon.stop()
    e.log("PASS: two listeners, each advertising itself; mutual TLS served and refused as it should")


if __name__ == "__main__":
    main()
