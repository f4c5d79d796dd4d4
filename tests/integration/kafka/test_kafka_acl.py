"""test_kafka_acl.py - principals and authorization (kafka.acls) of mqlogd's Kafka endpoint with real clients
(issue 12).

mqlogd runs with two loopback listeners: SASL (SCRAM-SHA-256/512) over plaintext, and mutual TLS with
`principal: cn`, whose client certificate /O=plant-7/CN=reader is the principal User:reader. The acls:
  User:alice   topics {"telemetry.*": read, alerts: describe}   groups {"analytics-*": read}
  User:bob     topics {secret: read}                            groups {"bob-*": read}
  User:reader  topics {"plant.*": read}                         groups {"plant-*": read}
Four topics are stored beforehand: telemetry.hall, alerts, secret, plant.metrics.

1. kcat as alice (SCRAM) reads telemetry.hall; as reader (mTLS, mapped by CN) reads plant.metrics. The log
   names both principals.
2. alice's Metadata (confluent-kafka's list_topics, kafka-python's topics()) holds exactly the topics she may
   describe: secret and plant.metrics are absent; reader's holds plant.metrics alone.
3. Exact error codes from kafka-python's own protocol classes sent over its authenticated connection: Fetch
   of alerts (describe, not read) TOPIC_AUTHORIZATION_FAILED (29), of secret (hidden)
   UNKNOWN_TOPIC_OR_PARTITION (3); Metadata naming secret 3; OffsetCommit to bob's group
   GROUP_AUTHORIZATION_FAILED (30), to her own group 0. confluent-kafka's consumer reports 29 for alerts, and
   kafka-python's commit into bob's group raises GroupAuthorizationFailedError.
4. SIGHUP with acls that let alice describe secret: her next Metadata lists it. SIGUSR1 counts the denials.
5. `mqlogd --check` reports an unknown operation and a bad pattern at file:line:col.

Every wait is a deadline on a condition. Runtime: a few seconds.
"""
import os
import shutil
import signal
import subprocess

import e2e_lib as e

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
TOPICS = ("telemetry.hall", "alerts", "secret", "plant.metrics")
RECORDS = 50
TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION = 29, 30, 3

ACLS = """  acls:
    - principal: "User:alice"
      topics: {"telemetry.*": read, alerts: describe%s}
      groups: {"analytics-*": read}
    - principal: "User:bob"
      topics: {secret: read}
      groups: {"bob-*": read}
    - principal: "User:reader"
      topics: {"plant.*": read}
      groups: {"plant-*": read}
"""


def config(sasl, mtls, c, extra=""):
    return ("data_dir: @DATA@\nbrokers: []\nmappings: []\nkafka:\n  listeners:\n"
            "    - listen: \"%s\"\n"
            "      sasl: [SCRAM-SHA-256, SCRAM-SHA-512]\n"
            "    - listen: \"%s\"\n"
            "      tls: {cert: %s, key: %s, ca: %s, require_client_cert: true, principal: cn}\n" %
            (sasl, mtls, c["server.pem"], c["server.key"], c["ca.pem"])) + ACLS % extra


def alice_kcat():
    return ["-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=SCRAM-SHA-256",
            "-X", "sasl.username=alice", "-X", "sasl.password=wonder-land"]


def kcat_read(bootstrap, topic, extra, want):
    p = e.run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-c", str(len(want))]
              + extra, timeout=60)
    e.check(p.stdout.splitlines() == want, "kcat via %s read %d records of %s, not the %d stored" %
            (bootstrap, len(p.stdout.splitlines()), topic, len(want)))


def alice_confluent(sasl, **more):
    conf = {"bootstrap.servers": sasl, "security.protocol": "sasl_plaintext", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "alice", "sasl.password": "wonder-land"}
    conf.update(more)
    return conf


def list_topics(confluent_kafka, conf):
    admin = confluent_kafka.admin.AdminClient(conf)
    md = admin.list_topics(timeout=15)
    return {t for t, tm in md.topics.items() if tm.error is None}


def main():
    for tool in (KCAT, shutil.which("openssl")):
        if not tool or not os.path.exists(tool):
            e.fail("kcat and openssl are needed (scripts/setup installs them)")
    # A client that is missing fails the test: scripts/setup installs both (none is skipped silently).
    try:
        import confluent_kafka
        import confluent_kafka.admin
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import GroupAuthorizationFailedError
        from kafka.protocol.commit import OffsetCommitRequest
        from kafka.protocol.fetch import FetchRequest
        from kafka.protocol.metadata import MetadataRequest
        from kafka.structs import OffsetAndMetadata
    except ImportError as x:
        e.fail("a Python Kafka client is missing (python3-kafka, python3-confluent-kafka): %s" % x)
    d = e.tmpdir("kafka-acl")
    c = e.make_certs(d, clients=[("reader", "/O=plant-7/CN=reader")])
    sasl_port, mtls_port = e.free_port(), e.free_port()
    while mtls_port == sasl_port:
        mtls_port = e.free_port()
    sasl, mtls = "127.0.0.1:%d" % sasl_port, "127.0.0.1:%d" % mtls_port
    daemon = e.Daemon(config(sasl, mtls, c), d=d)
    p = e.run([e.MQLOGD, "-c", daemon.conf, "--check"], check=False)
    e.check(p.returncode == 0, "mqlogd --check refused the configuration: %s" % p.stderr)
    want = {}
    for t in TOPICS:
        e.run([e.MQLOG, "create", "-d", daemon.data, t, "--partitions", "1"])
        want[t] = ["%s-%03d" % (t, i) for i in range(RECORDS)]
        p = subprocess.run([e.MQLOG, "produce", "-d", daemon.data, t, "-p", "0"], input="\n".join(want[t]) + "\n",
                           text=True, capture_output=True, timeout=60)
        e.check(p.returncode == 0, "mqlog produce: %s" % p.stderr)
    e.user_add(daemon.data, "alice", "wonder-land")
    daemon.start()

    # 1. Each principal reads its topic: alice by SASL, reader by its certificate's CN.
    mtls_kcat = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + c["ca.pem"],
                 "-X", "ssl.certificate.location=" + c["reader.pem"], "-X", "ssl.key.location=" + c["reader.key"]]
    kcat_read(sasl, "telemetry.hall", alice_kcat(), want["telemetry.hall"])
    kcat_read(mtls, "plant.metrics", mtls_kcat, want["plant.metrics"])
    log = daemon.log()
    e.check("authenticated as User:alice (SCRAM-SHA-256)" in log, "mqlogd did not log alice's principal")
    e.check("is User:reader (the CN of client certificate CN=reader,O=plant-7)" in log,
            "mqlogd did not log the certificate's principal:\n%s" % log[-2000:])
    e.log("alice (SCRAM) read telemetry.hall, reader (mTLS, principal by CN) read plant.metrics")

    # 2. Metadata holds what the principal may describe, and nothing else.
    got = list_topics(confluent_kafka, alice_confluent(sasl))
    e.check(got == {"telemetry.hall", "alerts"}, "confluent-kafka list_topics as alice: %s" % sorted(got))
    got = list_topics(confluent_kafka, {"bootstrap.servers": mtls, "security.protocol": "ssl",
                                        "ssl.ca.location": c["ca.pem"], "ssl.certificate.location": c["reader.pem"],
                                        "ssl.key.location": c["reader.key"]})
    e.check(got == {"plant.metrics"}, "confluent-kafka list_topics as reader: %s" % sorted(got))
    kc = KafkaConsumer(bootstrap_servers=sasl, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                       sasl_plain_username="alice", sasl_plain_password="wonder-land", group_id="bob-1",
                       enable_auto_commit=False, api_version_auto_timeout_ms=15000)
    got = kc.topics()
    e.check(got == {"telemetry.hall", "alerts"}, "kafka-python topics() as alice: %s" % sorted(got))
    e.log("Metadata: alice sees telemetry.hall and alerts, reader plant.metrics; secret is hidden from both")

    # 3. Exact codes, from requests of kafka-python's protocol classes on its authenticated connection.
    client = kc._client

    def pumped(cond):
        """cond, after letting kafka-python's client do its I/O for up to 50 ms when not true yet."""
        def step():
            if not cond():
                client.poll(timeout_ms=50)
            return cond()
        return step

    def call(request):
        e.wait_for(pumped(lambda: client.ready(0)), 15, "kafka-python's connection to node 0", every=0)
        future = client.send(0, request)
        e.wait_for(pumped(lambda: future.is_done), 15, "the answer to %s" % type(request).__name__, every=0)
        e.check(future.succeeded(), "%s failed: %s" % (type(request).__name__, future.exception))
        return future.value

    def fetch_error(topic):
        r = call(FetchRequest[4](-1, 100, 1, 1 << 20, 0, [(topic, [(0, 0, 1 << 20)])]))
        return r.topics[0][1][0][1]

    e.check(fetch_error("telemetry.hall") == 0, "Fetch of telemetry.hall as alice refused")
    code = fetch_error("alerts")
    e.check(code == TOPIC_AUTHORIZATION_FAILED, "Fetch of alerts (describe only): error %d, not 29" % code)
    code = fetch_error("secret")
    e.check(code == UNKNOWN_TOPIC_OR_PARTITION, "Fetch of secret (hidden): error %d, not 3" % code)
    md = call(MetadataRequest[1](["secret", "alerts"]))
    codes = {t[1]: t[0] for t in md.topics}
    e.check(codes == {"secret": UNKNOWN_TOPIC_OR_PARTITION, "alerts": 0}, "Metadata of secret, alerts: %s" % codes)

    def commit_error(group, topic):
        r = call(OffsetCommitRequest[2](group, -1, "", -1, [(topic, [(0, 1, "")])]))
        return r.topics[0][1][0][1]

    code = commit_error("bob-1", "telemetry.hall")
    e.check(code == GROUP_AUTHORIZATION_FAILED, "OffsetCommit into bob-1: error %d, not 30" % code)
    e.check(commit_error("analytics-1", "telemetry.hall") == 0, "OffsetCommit into analytics-1 refused")
    code = commit_error("analytics-1", "alerts")
    e.check(code == TOPIC_AUTHORIZATION_FAILED, "OffsetCommit of alerts: error %d, not 29" % code)
    try:
        kc.commit({TopicPartition("telemetry.hall", 0): OffsetAndMetadata(1, "")})
        e.fail("kafka-python committed into bob's group bob-1")
    except GroupAuthorizationFailedError:
        pass
    kc.close()
    cc = confluent_kafka.Consumer(alice_confluent(sasl, **{"group.id": "analytics-2",
                                                           "enable.auto.commit": False}))
    cc.assign([confluent_kafka.TopicPartition("alerts", 0, confluent_kafka.OFFSET_BEGINNING)])
    seen = []

    def refused():
        for m in cc.consume(num_messages=10, timeout=0.5):
            e.check(m.error() is not None, "confluent-kafka read a record of alerts as alice")
            seen.append(m.error().code())
        return bool(seen)

    e.wait_for(refused, 20, "confluent-kafka to report the refused Fetch of alerts", every=0)
    cc.close()
    e.check(seen[0] == confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED == TOPIC_AUTHORIZATION_FAILED,
            "confluent-kafka reported %s for alerts" % seen)
    e.log("Fetch: 29 for a describe-only topic, 3 for a hidden one; OffsetCommit into another's group: 30")

    # 4. SIGHUP applies changed acls to the next request; SIGUSR1 counts the denials.
    daemon.write_config(config(sasl, mtls, c, extra=", secret: describe"))
    os.kill(daemon.proc.pid, signal.SIGHUP)
    e.wait_for(lambda: "reloaded " + daemon.conf in daemon.log(), 10, "mqlogd to reload its configuration")
    got = list_topics(confluent_kafka, alice_confluent(sasl))
    e.check(got == {"telemetry.hall", "alerts", "secret"}, "list_topics after the reload: %s" % sorted(got))
    e.check("kafka: authorization rules updated" in daemon.log(), "mqlogd did not log the new acls")
    os.kill(daemon.proc.pid, signal.SIGUSR1)

    def denied():
        for line in daemon.log().splitlines():
            if " denied by the acls" in line:
                return int(line.split(" denied by the acls")[0].rsplit(" ", 1)[1])
        return None

    e.wait_for(lambda: (denied() or 0) >= 6, 10, "SIGUSR1 to count at least 6 denials")
    e.log("SIGHUP: alice sees secret now; %d denials counted" % denied())

    # 5. --check: an unknown operation and a bad pattern, each at its position.
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write("data_dir: %s\nkafka:\n  listen: 127.0.0.1:0\n  acls:\n    - principal: \"User:x\"\n"
                "      topics: {\"a.*\": [read, write]}\n      groups: {\"g[\": read}\n" % daemon.data)
    p = e.run([e.MQLOGD, "-c", bad, "--check"], check=False)
    e.check(p.returncode != 0, "mqlogd --check accepted an unknown operation")
    e.check("bad.yaml:6:30: topics: 'a.*': unknown operation 'write'" in p.stderr and
            "bad.yaml:7:16: groups: 'g[': the '[' at position 2 has no closing ']'" in p.stderr,
            "mqlogd --check: %s" % p.stderr)
    e.check(daemon.alive(), "mqlogd died")
    daemon.stop()
    e.log("PASS: principals by SASL and certificate CN; Kafka's authorization rules and error codes")


if __name__ == "__main__":
    main()
