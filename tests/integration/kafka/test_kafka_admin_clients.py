"""test_kafka_admin_clients.py - admin tools against mqlogd's Kafka endpoint, and its answers to APIs and versions it
does not serve (issue 12):

1. A librdkafka consumer holds group "rg" (Stable, one member with both partitions of "t"); kafka-python
   committed offsets for "pyg" and left (Empty, offsets only).
2. librdkafka's admin client (rdkafka_admin: ListConsumerGroups, DescribeConsumerGroups, DeleteGroups, the
   calls of confluent-kafka 2.x's AdminClient) lists both groups and describes rg with its member, host and
   assignment; deleting rg is refused with NON_EMPTY_GROUP.
3. confluent-kafka's AdminClient (Debian's 1.7): list_groups shows rg and its member, describe_configs shows
   t's retention (2 days, not the default) and "plain"'s (Kafka's default) and t's compression.type (zstd,
   log.compression, a topic-level setting as Kafka's source says); create_topics and
   delete_topics reach the server and come back with INVALID_REQUEST and mqlog's message, and the client
   goes on working.
4. kafka-python's KafkaAdminClient: list_consumer_groups, describe_consumer_groups, describe_configs,
   create_topics and delete_topics refused (InvalidRequestError), then delete_consumer_groups(pyg), after
   which `mqlog groups` (the catalog) no longer has pyg's offsets.
5. Raw sockets: ApiVersions v9 gets a v0 response with UNSUPPORTED_VERSION and the versions served, on a
   connection that stays usable; Fetch v12 and an unknown API key close the connection, as Kafka does. The
   first occurrence per connection is logged at info level, and the SIGUSR1 stats line counts them.
   CreateTopics v0 and v5, DeleteTopics v4, DeleteRecords v0 and CreateAcls v0 get INVALID_REQUEST per
   topic (or ACL) on a connection that stays usable for the next request. confluent-kafka's
   create_partitions and alter_configs and kafka-python's create_partitions get it with mqlog's message.
6. `mqlog groups reset` beside the daemon is refused for rg while its member is connected, and done once it
   left (the daemon records live groups in the catalog).

Every wait is a deadline on a condition.
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys

import e2e_lib as e

try:
    from kafka import KafkaConsumer
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewPartitions as NewPyPartitions
    from kafka.admin import NewTopic as NewPyTopic
    from kafka.errors import KafkaError as KafkaPyError
except ImportError:
    sys.exit("test_kafka_admin_clients: kafka-python (Debian package python3-kafka) is missing")
try:
    import confluent_kafka
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
    from confluent_kafka.admin import ConfigResource as CkConfigResource
except ImportError:
    sys.exit("test_kafka_admin_clients: confluent-kafka (Debian package python3-confluent-kafka) is missing")

ADMIN = os.environ["MQ_RDKAFKA_ADMIN"]
CONSUMER = os.environ["MQ_RDKAFKA_CONSUMER"]
TWO_DAYS_MS = 2 * 24 * 3600 * 1000
KAFKA_DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
INVALID_REQUEST = 42
CREATE_REFUSED = "mqlog creates log topics from its mapping files (mqlogd.yaml); see mqlog create"
PARTITIONS_REFUSED = "partitions come from the mapping's partitions:"
CONFIGS_REFUSED = "configuration lives in mqlogd.yaml"


def rdkafka_admin(bootstrap, *args):
    r = subprocess.run([ADMIN, "-b", bootstrap] + list(args), capture_output=True, text=True, timeout=60)
    e.check(r.returncode == 0, "rdkafka_admin %s: exit %d: %s%s" % (" ".join(args), r.returncode, r.stdout,
                                                                    r.stderr[-2000:]))
    return r.stdout.splitlines()


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(key, version, corr, body=b""):
    """A request frame with header v1 (client id "admin-test")."""
    msg = struct.pack(">hhi", key, version, corr) + kstr("admin-test") + body
    return struct.pack(">i", len(msg)) + msg


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        e.check(b, "connection closed after %d of %d bytes" % (len(out), n))
        out += b
    return out


def recv_response(s, corr):
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    body = recv_exact(s, size)
    e.check(struct.unpack(">i", body[:4])[0] == corr, "response to correlation id %d" % corr)
    return body[4:]


def closed_by_server(s):
    s.settimeout(10)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def test_rdkafka_admin(bootstrap):
    lines = rdkafka_admin(bootstrap, "list")
    e.check("group rg Stable simple=0" in lines and "group pyg Empty simple=1" in lines,
            "ListConsumerGroups: %s" % lines)
    lines = rdkafka_admin(bootstrap, "describe", "rg", "nosuchgroup")
    e.check("group rg Stable assignor=range members=1" in lines, "DescribeConsumerGroups rg: %s" % lines)
    members = [l.split() for l in lines if l.startswith("member ")]
    e.check(len(members) == 1 and members[0][2] == "rdkafka" and members[0][3] == "/127.0.0.1"
            and set(members[0][4].split(",")) == {"t:0", "t:1"}, "rg's member: %s" % lines)
    e.check("group nosuchgroup Dead assignor= members=0" in lines, "an unknown group: %s" % lines)
    lines = rdkafka_admin(bootstrap, "delete", "rg")
    e.check(lines == ["deleted rg NON_EMPTY_GROUP"], "DeleteGroups of a live group: %s" % lines)
    print("librdkafka admin: list, describe (member, host, assignment), delete refused: NON_EMPTY_GROUP",
          flush=True)


def test_confluent_kafka(bootstrap):
    a = AdminClient({"bootstrap.servers": bootstrap})
    groups = {g.id: g for g in a.list_groups(timeout=20)}
    e.check("rg" in groups and groups["rg"].state == "Stable" and len(groups["rg"].members) == 1,
            "list_groups: %s" % {k: (g.state, len(g.members)) for k, g in groups.items()})
    m = groups["rg"].members[0]
    e.check(m.client_id == "rdkafka" and m.client_host == "/127.0.0.1" and len(m.assignment) > 0,
            "list_groups member: %s %s" % (m.client_id, m.client_host))
    fs = a.describe_configs([CkConfigResource("topic", "t"), CkConfigResource("topic", "plain")])
    got = {r.name: f.result(timeout=20) for r, f in fs.items()}
    rt, rp = got["t"]["retention.ms"], got["plain"]["retention.ms"]
    e.check(rt.value == str(TWO_DAYS_MS) and not rt.is_default and rt.is_read_only,
            "t retention.ms: %s default=%s" % (rt.value, rt.is_default))
    e.check(rp.value == str(KAFKA_DEFAULT_RETENTION_MS) and rp.is_default, "plain retention.ms: %s" % rp.value)
    e.check(got["t"]["retention.bytes"].value == str(1 << 30) and got["t"]["cleanup.policy"].value == "delete"
            and got["plain"]["retention.bytes"].value == "-1", "t/plain configs: %s" % got)
    # the codec the log section gives every topic (no mapping names its own), a topic-level setting
    ct = got["t"]["compression.type"]
    e.check(ct.value == "zstd" and not ct.is_default and getattr(ct.source, "value", ct.source) == 1,
            "t compression.type: %s default=%s source=%s" % (ct.value, ct.is_default, ct.source))
    for what, fs in (("create_topics", a.create_topics([NewTopic("new", 1, 1)])),
                     ("delete_topics", a.delete_topics(["t"], operation_timeout=5))):
        for f in fs.values():
            try:
                f.result(timeout=20)
                e.fail("%s succeeded on a read-only endpoint" % what)
            except confluent_kafka.KafkaException as ex:
                err = ex.args[0]
                e.check(err.code() == INVALID_REQUEST, "%s: %s" % (what, ex))
                # librdkafka sends DeleteTopics v1, whose response has no message.
                e.check(what == "delete_topics" or CREATE_REFUSED in err.str(),
                        "%s: the server's message: %s" % (what, err.str()))
    for what, fs, want in (
            ("create_partitions", a.create_partitions([NewPartitions("t", 4)]), PARTITIONS_REFUSED),
            ("alter_configs", a.alter_configs([CkConfigResource("topic", "t", set_config={"retention.ms": "1"})]),
             CONFIGS_REFUSED)):
        for f in fs.values():
            try:
                f.result(timeout=20)
                e.fail("%s succeeded on a read-only endpoint" % what)
            except confluent_kafka.KafkaException as ex:
                err = ex.args[0]
                e.check(err.code() == INVALID_REQUEST and want in err.str(), "%s: %s" % (what, ex))
    # The client goes on: the refusals closed nothing.
    (f,) = a.describe_configs([CkConfigResource("topic", "t")]).values()
    e.check(f.result(timeout=20)["retention.ms"].value == str(TWO_DAYS_MS), "describe_configs after refusals")
    e.check("t" in a.list_topics(timeout=20).topics, "list_topics after the refusals")
    print("confluent-kafka %s: list_groups, describe_configs (retention 2 d / default), create and delete "
          "topics, create_partitions, alter_configs refused by the server (INVALID_REQUEST, its message)" % confluent_kafka.version()[0],
          flush=True)


def test_kafka_python(bootstrap, data_dir):
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        groups = set(a.list_consumer_groups())
        e.check({("rg", "consumer"), ("pyg", "")} <= groups, "list_consumer_groups: %s" % groups)
        (rg,) = a.describe_consumer_groups(["rg"])
        e.check(rg.state == "Stable" and rg.protocol == "range" and len(rg.members) == 1,
                "describe_consumer_groups: %s" % (rg,))
        # list_topics, describe_topics, describe_cluster and the committed offsets: what lag scripts call.
        e.check({"t", "plain"} <= set(a.list_topics()), "kafka-python list_topics: %s" % a.list_topics())
        (dt,) = a.describe_topics(["t"])
        e.check(dt["error_code"] == 0 and sorted(p["partition"] for p in dt["partitions"]) == [0, 1],
                "kafka-python describe_topics t: %s" % (dt,))
        cl = a.describe_cluster()
        e.check(len(cl["brokers"]) == 1 and cl["controller_id"] == cl["brokers"][0]["node_id"],
                "kafka-python describe_cluster: %s" % (cl,))
        offs = {tp.partition: m.offset for tp, m in a.list_consumer_group_offsets("pyg").items() if tp.topic == "t"}
        e.check(offs.get(0) == 3, "kafka-python list_consumer_group_offsets pyg: %s" % offs)
        parts = dict(rg.members[0].member_assignment.assignment)
        e.check(sorted(parts.get("t", [])) == [0, 1], "rg's assignment: %s" % (parts,))
        (resp,) = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "t")])
        (res,) = resp.resources
        entries = {c[0]: c for c in res[4]}
        e.check(res[0] == 0 and entries["retention.ms"][1] == str(TWO_DAYS_MS) and entries["retention.ms"][3] == 1,
                "describe_configs t: %s" % (res,))
        e.check(entries["compression.type"][1] == "zstd" and entries["compression.type"][3] == 1,
                "describe_configs t compression.type: %s" % (entries["compression.type"],))
        for what, call in (("create_topics", lambda: a.create_topics([NewPyTopic("new", 1, 1)])),
                           ("delete_topics", lambda: a.delete_topics(["t"])),
                           ("create_partitions", lambda: a.create_partitions({"t": NewPyPartitions(4)}))):
            try:
                call()
                e.fail("kafka-python %s succeeded on a read-only endpoint" % what)
            except KafkaPyError as ex:
                e.check(getattr(ex, "errno", None) == INVALID_REQUEST, "kafka-python %s: %r" % (what, ex))
                if what != "delete_topics":  # DeleteTopics v0-3 have no message
                    want = CREATE_REFUSED if what == "create_topics" else PARTITIONS_REFUSED
                    e.check(want in str(ex), "kafka-python %s: the message: %s" % (what, ex))
        result = dict(a.delete_consumer_groups(["pyg"]))
        e.check(result["pyg"].errno == 0, "delete_consumer_groups pyg: %s" % result)
        groups = set(a.list_consumer_groups())
        e.check(("pyg", "") not in groups, "pyg still listed after its deletion: %s" % groups)
    finally:
        a.close()
    r = subprocess.run([e.MQLOG, "groups", "-d", data_dir], capture_output=True, text=True, timeout=60)
    e.check(r.returncode == 0 and "pyg" not in r.stdout, "mqlog groups after the deletion: %s" % r.stdout)
    print("kafka-python admin: list, describe, describe_configs, create/delete topics, create_partitions refused "
          "(INVALID_REQUEST), delete_consumer_groups (offsets gone)",
          flush=True)


def mqlog_reset(data_dir, group):
    return subprocess.run([e.MQLOG, "groups", "reset", "-d", data_dir, group, "--to-earliest", "--topic", "t"],
                          capture_output=True, text=True, timeout=60)


def test_reset_refused_while_live(data_dir):
    """`mqlog groups reset` beside mqlogd: refused for rg (a live member), as Kafka refuses it."""
    r = mqlog_reset(data_dir, "rg")
    e.check(r.returncode == 1 and "group rg has members connected to mqlogd" in r.stderr and not r.stdout,
            "reset of live group rg: exit %d, stdout %r, stderr %r" % (r.returncode, r.stdout, r.stderr))
    print("mqlog groups reset: refused while rg has a member", flush=True)


def test_reset_once_empty(data_dir):
    r = mqlog_reset(data_dir, "rg")
    e.check(r.returncode == 0 and "reset 2 partitions of group rg" in r.stdout,
            "reset of empty group rg: exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
    r = subprocess.run([e.MQLOG, "groups", "-d", data_dir, "rg"], capture_output=True, text=True, timeout=60)
    e.check(re.search(r"^rg +t +0 +0 +3 +3$", r.stdout, re.M), "groups rg after the reset: %s" % r.stdout)
    print("mqlog groups reset: done once rg's member left", flush=True)


def test_topic_changes_refused(s):
    """CreateTopics v0 and v5 (flexible), DeleteTopics v4 (flexible), DeleteRecords v0 and CreateAcls v0,
    raw: everything refused with INVALID_REQUEST (and the message where the version has one), the
    connection still usable."""
    # CreateTopics v0: [name, partitions, replication, [] assignments, [] configs], timeout.
    s.sendall(request(19, 0, 10, struct.pack(">i", 1) + kstr("new") + struct.pack(">ihiii", 1, 1, 0, 0, 1000)))
    body = recv_response(s, 10)
    e.check(body == struct.pack(">i", 1) + kstr("new") + struct.pack(">h", INVALID_REQUEST),
            "CreateTopics v0 response: %r" % body)
    # CreateTopics v5: header v2 (tags after the client id), compact forms: [name, partitions, replication,
    # [] assignments, [] configs, tags], timeout, validate only, tags.
    hdr = struct.pack(">hhi", 19, 5, 11) + kstr("admin-test") + b"\x00"
    msg = (hdr + b"\x02\x04new" + struct.pack(">ih", 1, 1) + b"\x01\x01\x00" + struct.pack(">i", 1000)
           + b"\x00\x00")
    s.sendall(struct.pack(">i", len(msg)) + msg)
    body = recv_response(s, 11)
    # header tags, throttle, [name, error, message, partitions, replication, [] configs, tags], tags
    want = (b"\x00" + struct.pack(">i", 0) + b"\x02\x04new" + struct.pack(">h", INVALID_REQUEST)
            + bytes([len(CREATE_REFUSED) + 1]) + CREATE_REFUSED.encode() + struct.pack(">ih", -1, -1)
            + b"\x01\x00\x00")
    e.check(body == want, "CreateTopics v5 response: %r" % body)
    # DeleteTopics v4 (flexible): [names], timeout, tags.
    hdr = struct.pack(">hhi", 20, 4, 12) + kstr("admin-test") + b"\x00"
    msg = hdr + b"\x02\x02t" + struct.pack(">i", 1000) + b"\x00"
    s.sendall(struct.pack(">i", len(msg)) + msg)
    body = recv_response(s, 12)
    e.check(body == b"\x00" + struct.pack(">i", 0) + b"\x02\x02t" + struct.pack(">h", INVALID_REQUEST)
            + b"\x00\x00", "DeleteTopics v4 response: %r" % body)
    # DeleteRecords v0: [name, [partition, offset]], timeout: per partition, low watermark -1, the error.
    s.sendall(request(21, 0, 13, struct.pack(">i", 1) + kstr("t") + struct.pack(">iiqi", 1, 0, 1, 1000)))
    body = recv_response(s, 13)
    e.check(body == struct.pack(">ii", 0, 1) + kstr("t") + struct.pack(">iiqh", 1, 0, -1, INVALID_REQUEST),
            "DeleteRecords v0 response: %r" % body)
    # CreateAcls v0: [resource type, name, principal, host, operation, permission]: the error, a message.
    s.sendall(request(30, 0, 14, struct.pack(">ib", 1, 2) + kstr("t") + kstr("User:a") + kstr("*")
                      + struct.pack(">bb", 3, 3)))
    body = recv_response(s, 14)
    msg = b"mqlog's ACLs are kafka.acls in mqlogd.yaml"
    e.check(body == struct.pack(">iih", 0, 1, INVALID_REQUEST) + struct.pack(">h", len(msg)) + msg,
            "CreateAcls v0 response: %r" % body)
    s.sendall(request(18, 0, 15))  # the same connection still answers
    e.check(struct.unpack(">h", recv_response(s, 15)[:2])[0] == 0, "ApiVersions after the refusals")


def test_unsupported(d, port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    # ApiVersions from the future: a v0 body (error, [key, min, max]) the client can read and retry from.
    s.sendall(request(18, 9, 1))
    body = recv_response(s, 1)
    err, n = struct.unpack(">hi", body[:6])
    entries = [struct.unpack(">hhh", body[6 + 6 * i:12 + 6 * i]) for i in range(n)]
    apis = {k: (lo, hi) for k, lo, hi in entries}
    e.check(err == 35 and len(body) == 6 + 6 * n, "ApiVersions v9: error %d, %d bytes for %d APIs" %
            (err, len(body), n))
    e.check(apis.get(18) == (0, 3) and apis.get(16) == (0, 5) and apis.get(32) == (0, 4)
            and apis.get(19) == (0, 7) and apis.get(20) == (0, 6), "listed: %s" % apis)
    s.sendall(request(18, 0, 2))  # the retry at a version both know, on the same connection
    e.check(struct.unpack(">h", recv_response(s, 2)[:2])[0] == 0, "ApiVersions v0 after the fallback")
    test_topic_changes_refused(s)
    s.close()
    # Another API at a version not served, and an unknown API: the connection is closed, as Kafka does.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(request(1, 12, 3, b"\x00" * 16))
    e.check(closed_by_server(s), "Fetch v12: the connection stays open")
    s.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(request(999, 0, 4))
    e.check(closed_by_server(s), "API key 999: the connection stays open")
    s.close()
    e.wait_for(lambda: "asked for Fetch (key 1) v12, which is not served" in d.log(), 10,
               "the Fetch v12 log line")
    log = d.log()
    e.check("asked for ApiVersions (key 18) v9" in log and "asked for ? (key 999) v0" in log,
            "the info lines: %s" % [l for l in log.splitlines() if "not served" in l])
    d.proc.send_signal(signal.SIGUSR1)

    def counted():
        m = re.findall(r"(\d+) for an API or version not served", d.log())
        return m and int(m[-1]) >= 3
    e.wait_for(counted, 10, "the SIGUSR1 line to count 3 requests not served")
    print("unsupported: ApiVersions v9 answered in v0 with %d APIs; Fetch v12 and key 999 closed; logged, "
          "counted" % n, flush=True)


def main():
    port = e.free_port()
    bootstrap = "127.0.0.1:%d" % port
    d = e.Daemon("data_dir: @DATA@\nlog:\n  compression: zstd\nbrokers: []\nmappings: []\nkafka:\n"
                 "  listen: \"%s\"\n" % bootstrap)
    e.run([e.MQLOG, "create", "-d", d.data, "t", "--partitions", "2", "--retention", "2d",
           "--retention-bytes", "1GiB"])
    e.run([e.MQLOG, "create", "-d", d.data, "plain", "--partitions", "1"])
    p = subprocess.run([e.MQLOG, "produce", "-d", d.data, "t", "-p", "0"], input="a\nb\nc\n", text=True,
                       capture_output=True, timeout=60)
    e.check(p.returncode == 0, "mqlog produce: %s" % p.stderr)
    d.start()
    rg = None
    try:
        # pyg: offsets committed, no members left.
        c = KafkaConsumer("t", bootstrap_servers=bootstrap, group_id="pyg", auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=15000)
        got = []
        for m in c:
            got.append(m)
            if len(got) == 3:
                break
        e.check(len(got) == 3, "kafka-python read %d of 3 records" % len(got))
        c.commit()
        c.close()
        # rg: a live librdkafka member holding both partitions.
        rg = e.Proc([CONSUMER, "-b", bootstrap, "-g", "rg", "-t", "t"], "consumer rg")
        rg.expect(lambda l: l.startswith("assigned") and set(l.split()[1].split(",")) == {"t:0", "t:1"}, 60,
                  "rg's member to get both partitions")
        test_rdkafka_admin(bootstrap)
        test_confluent_kafka(bootstrap)
        test_kafka_python(bootstrap, d.data)
        test_unsupported(d, port)
        test_reset_refused_while_live(d.data)
        rg.send("quit")
        rg.expect(lambda l: l.startswith("closed"), 30, "rg's member to leave")
        rg.wait()
        # The member left: the group is empty once the coordinator saw the LeaveGroup.
        e.wait_for(lambda: mqlog_reset(d.data, "rg").returncode == 0, 30, "rg to become resettable")
        test_reset_once_empty(d.data)
        d.stop()
    finally:
        if rg:
            rg.kill()
        if d.alive():
            d.kill()
    print("test_kafka_admin_clients: all passed", flush=True)


if __name__ == "__main__":
    main()
