"""test_topic_admin.py - the writing commands of mqlog beside a running mqlogd (issue 15), through its control
socket: create, produce (round-robin, keyed, -v offsets), topic alter (partitions raised while MQTT messages
flow: the next records go to the new partitions, where `mqlog route` says they go; retention), topic delete
(a topic the daemon never opened, one it wrote to, the refusal while a forwarder is behind and --force), and
malformed control requests, which the daemon answers and survives. Also: the socket is mode 0600 and is
removed when mqlogd stops.
"""
import json
import os
import socket
import sqlite3
import stat
import time

import e2e_lib as e

M = e.MQLOG


def mqlog(*args, input=None, rc=0):
    p = e.run([M] + list(args), check=False, input=input)
    e.check(p.returncode == rc, "mqlog %s exited %d, expected %d:\n%s%s" %
            (" ".join(args), p.returncode, rc, p.stdout, p.stderr))
    return p


def records(data, topic):
    p = e.run([M, "consume", "-d", data, topic, "--format", "json"])
    return [json.loads(line) for line in p.stdout.splitlines() if line]


def topics_json(data):
    return {t["topic"]: t for t in json.loads(mqlog("topics", "-d", data, "--json").stdout)["topics"]}


def control(data, payload, timeout=10):
    """Sends raw bytes to the control socket; returns what it answered until it closed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(os.path.join(data, ".control"))
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # the daemon sees the end of the requests and closes after its answers
    except (BrokenPipeError, ConnectionResetError):
        pass  # the daemon may close before it read everything: its answer is still there
    out = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except ConnectionResetError:
        pass
    s.close()
    return out


def main():
    br = e.Broker()
    conf_text = e.config(
        [e.broker(br.port, "mosquitto", "topic-admin", reconnect_min="100ms", reconnect_max="200ms")],
        [e.mapping("dev/#", "devs", qos=1, partitions=1, key="topic"), e.mapping("probe/#", "probe", qos=1)])
    d = e.Daemon(conf_text)
    d.start()
    data = d.data
    e.wait_subscribed(br.port, data, "probe", 1, 5, probe="probe/x")
    sock = os.path.join(data, ".control")
    st = os.stat(sock)
    e.check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
            "control socket mode %o" % st.st_mode)

    # ---- create and produce beside the daemon ----
    p = mqlog("create", "-d", data, "made", "-P", "2", "--retention", "1d")
    e.check("created topic made with 2 partitions" in p.stdout, "create: %s" % p.stdout)
    p = mqlog("create", "-d", data, "made", "-P", "3", rc=1)
    e.check("topic made already exists (2 partitions)" in p.stderr, "create twice: %s" % p.stderr)
    e.check(topics_json(data)["made"]["retention_ms"] == 86400000, "create --retention beside the daemon")
    p = mqlog("produce", "-d", data, "made", "-v", input="a\nb\nc\n")
    e.check("produced 3 records to made" in p.stderr and "made-0: 2 at offsets 0..1" in p.stderr and
            "made-1: 1 at offsets 0..0" in p.stderr, "produce -v: %s" % p.stderr)
    p = mqlog("produce", "-d", data, "made", "-k", "k 1", "-H", "h=v w", "-p", "1", input="with space %41\n")
    recs = records(data, "made")
    e.check(sorted(r["value"] for r in recs) == ["a", "b", "c", "with space %41"], "made holds %r" % recs)
    last = [r for r in recs if r["value"] == "with space %41"][0]
    e.check(last["partition"] == 1 and last["key"] == "k 1" and e.headers(last) == {"h": "v w"},
            "keyed record with a header: %r" % last)
    p = mqlog("produce", "-d", data, "made", "-z", "gzip", input="x\n", rc=1)
    e.check("-z: beside a running mqlogd" in p.stderr, "produce -z: %s" % p.stderr)
    p = mqlog("produce", "-d", data, "nosuch", input="x\n", rc=1)
    e.check("unknown topic 'nosuch'" in p.stderr, "produce to an unknown topic: %s" % p.stderr)

    # ---- alter: partitions raised while messages flow; route and the daemon agree ----
    e.publish(br.port, 20, qos=1, topics=10, prefix="dev")
    e.wait_for(lambda: e.stored(data, "devs") == 20, 30, "20 records in devs")
    p = mqlog("topic", "alter", "-d", data, "devs", "-P", "4", "--retention", "12h")
    e.check("topic devs: partitions 1 -> 4; retention.ms 604800000 -> 43200000" in p.stdout, "alter: %s" % p.stdout)
    e.check("may differ from the partition of earlier records" in p.stderr, "alter: no warning: %s" % p.stderr)
    e.check("note: the mapping at %s:" % d.conf in p.stderr and "its retention applies again at the next reload"
            in p.stderr, "alter of a mapped topic: no note naming the mapping: %s" % p.stderr)
    want = {}
    for i in range(10):
        out = mqlog("route", "-c", d.conf, "dev/%d" % i).stdout.split()
        e.check(out[0] == "devs", "route dev/%d: %s" % (i, out))
        want["dev/%d" % i] = int(out[1])
    e.check(len(set(want.values())) > 1, "route puts every key in one of 4 partitions: %r" % want)
    e.publish(br.port, 20, qos=1, topics=10, prefix="dev", first=20)
    e.wait_for(lambda: e.stored(data, "devs") == 40, 30, "40 records in devs")
    later = [r for r in records(data, "devs") if json.loads(r["value"])["k"] >= 20]
    e.check(len(later) == 20, "%d records published after the alter" % len(later))
    for r in later:
        e.check(r["partition"] == want[r["key"]], "record of %s in partition %d, route says %d" %
                (r["key"], r["partition"], want[r["key"]]))
    t = topics_json(data)["devs"]
    e.check(t["partitions"] == 4 and t["retention_ms"] == 43200000, "devs after alter: %r" % t)
    p = mqlog("topic", "alter", "-d", data, "devs", "-P", "2", rc=1)
    e.check("a partition count only grows" in p.stderr, "alter down: %s" % p.stderr)
    p = mqlog("topic", "alter", "-d", data, "made", "--retention-bytes", "1GiB")
    e.check("retention.bytes 0 -> 1073741824" in p.stdout, "alter --retention-bytes: %s" % p.stdout)

    # ---- delete ----
    mqlog("create", "-d", data, "fresh", "-P", "3")
    p = mqlog("topic", "delete", "-d", data, "fresh")
    e.check("topic fresh: deleted (3 partitions)" in p.stdout, "delete fresh: %s" % p.stdout)
    e.check(not any(n.startswith("fresh-") for n in os.listdir(data)), "fresh left directories")
    db = sqlite3.connect(os.path.join(data, "catalog.db"), timeout=10)
    db.execute("insert into connector_checkpoints values ('forward.central', 'made:0', '1', 0)")
    db.commit()
    p = mqlog("topic", "delete", "-d", data, "made", rc=1)
    e.check("not deleting topic made: forwarder central has not forwarded 1 record of made-0" in p.stderr,
            "delete with a forwarder behind: %s" % p.stderr)
    p = mqlog("topic", "delete", "-d", data, "made", "--force")
    e.check("topic made: deleted (2 partitions)" in p.stdout, "delete --force: %s" % p.stdout)
    e.check("made" not in topics_json(data), "made still listed")
    e.check(not db.execute("select * from connector_checkpoints where key like 'made:%'").fetchall(),
            "made's checkpoints left")
    db.close()
    # the name can be used again, and the daemon writes the new topic
    mqlog("create", "-d", data, "made", "-P", "1")
    mqlog("produce", "-d", data, "made", input="again\n")
    e.check([r["value"] for r in records(data, "made")] == ["again"], "made after its delete")
    # a topic a mapping writes to: deleted, then created again by its next message
    mqlog("topic", "delete", "-d", data, "devs")
    e.publish(br.port, 5, qos=1, topics=5, prefix="dev", first=100)
    e.wait_for(lambda: e.stored(data, "devs") == 5, 30, "devs created again by its mapping")
    e.check(topics_json(data)["devs"]["partitions"] == 1, "devs made again with its mapping's partitions")

    # ---- malformed requests: answered, the connection closed, the daemon unharmed ----
    for bad in (b"hello\n", b"create made\n", b"create a/b 1 0 0\n", b"alter made 0 - -\n",
                b"produce made =%G1\n", b"record 0 =x\n", b"end\n", b"create x 1 0 0 extra\n",
                b"produce made - =k\nrecord 99999 =x\n", b"produce made - =k\nrecord 5 =x\nend\n",
                b"\x00\xff\xfe garbage\n", b"x" * (1 << 20) + b"\n"):
        out = control(data, bad)
        e.check(out.startswith(b"error "), "request %r answered %r" % (bad[:40], out[:200]))
        e.check(d.alive(), "mqlogd died after %r" % bad[:40])
    out = control(data, b"create ctl 1 0 0\n")
    e.check(out == b"ok created topic ctl with 1 partition\n", "a valid request after bad ones: %r" % out)

    d.stop()
    e.check(not os.path.exists(sock), "the control socket outlived mqlogd")
    br.stop()
    e.log("test_topic_admin: all checks passed")


if __name__ == "__main__":
    main()
