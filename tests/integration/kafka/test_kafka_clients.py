#!/usr/bin/env python3
"""test_kafka_clients.py - real Kafka clients against mqlog's Kafka endpoint.

The endpoint is run by the test driver kafka_serve over a temporary data directory on a free loopback port;
records are added through the driver while clients read. Clients: kcat (librdkafka 2.0.2), a librdkafka C
consumer in a group (rdkafka_consumer), and kafka-python 2.0.2 (Debian's python3-kafka).

Checks:
  - kcat -L lists topics and partitions; kcat -C -e reads every record of a multi-partition topic with
    keys, values, timestamps and headers exactly as stored; kcat -o s@TS starts at the right record.
  - kafka-python KafkaConsumer with a group reads everything, commits, and a second run resumes after it.
  - long poll: a consumer waiting at the end of a partition gets a new record long before max_wait.
  - librdkafka group: two members split the partitions; one leaves, the other takes them all.
  - static membership (group.instance.id): a member killed and restarted with the same instance id gets its
    partitions back within seconds, far inside its 30 s session timeout, and the other member is never
    revoked (no rebalance).
  - committed offsets survive a restart of the server.
  - `mqlog groups` (a reader beside the serving process) lists the groups committed through the endpoint
    with their committed offsets, end offsets and lag.
  - producers are refused (kcat -P: topic authorization failed; idempotent: cluster authorization failed).
  - garbage, oversized and truncated requests: the server stays up and other clients are unaffected.

Usage: test_kafka_clients.py --serve PATH/kafka_serve --consumer PATH/rdkafka_consumer --mqlog PATH/mqlog
                             [--keep]
Exits non-zero on the first failure. Every wait has a deadline; nothing sleeps to synchronise.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

import e2e_lib as e  # Proc, fail, check, wait_for, tmpdir

try:
    import kafka  # python3-kafka
    from kafka import KafkaConsumer, TopicPartition
except ImportError:
    sys.exit("test_kafka_clients: kafka-python (Debian package python3-kafka) is missing")

KCAT = shutil.which("kcat")
if not KCAT:
    sys.exit("test_kafka_clients: kcat is missing (Debian package kcat)")

TS0 = 1700000000000  # timestamps of the seeded records: TS0 + partition * 1000 + i


class Serve(e.Proc):
    def __init__(self, exe, data_dir):
        super().__init__([exe, "-d", data_dir, "-f", "5"], "kafka_serve")
        line = self.expect(lambda l: l.startswith("port "), 30, "the port")
        self.port = int(line.split()[1])
        self.broker = "127.0.0.1:%d" % self.port

    def cmd(self, line, timeout=30):
        self.send(line)
        reply = self.expect(lambda l: True, timeout, "an answer to %r" % line)
        if reply.startswith("error"):
            e.fail("kafka_serve: %r -> %s" % (line, reply))
        return reply

    def stats(self):
        reply = self.cmd("stats")
        return dict(kv.split("=") for kv in reply.split()[1:])

    def stop(self):
        self.send("quit")
        rc = self.wait()
        if rc != 0:
            e.fail("kafka_serve exited with %d" % rc)


def kcat(args, timeout=60):
    r = subprocess.run([KCAT] + args, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        e.fail("kcat %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def expected_records(topic_parts):
    """What the seeding created: {(partition, offset): (key, value, ts, header value)}."""
    exp = {}
    for part, (prefix, n) in topic_parts.items():
        for i in range(n):
            exp[(part, i)] = ("key-%d" % i, "%s-%d" % (prefix, i), TS0 + part * 1000 + i, "v-%d" % i)
    return exp


# ---- tests ----

def test_kcat(srv):
    srv.cmd("create multi 3")
    seed = {0: ("alpha", 5), 1: ("beta", 3), 2: ("gamma", 7)}
    for part, (prefix, n) in seed.items():
        srv.cmd("append multi %d %d %s %d" % (part, n, prefix, TS0 + part * 1000))

    meta = json.loads(kcat(["-L", "-J", "-b", srv.broker]))
    topics = {t["topic"]: t for t in meta["topics"]}
    e.check("multi" in topics, "kcat -L: topic multi missing: %s" % meta)
    e.check(sorted(p["partition"] for p in topics["multi"]["partitions"]) == [0, 1, 2],
          "kcat -L: partitions of multi: %s" % topics["multi"])
    e.check(len(meta["brokers"]) == 1 and meta["brokers"][0]["name"].endswith(":%d" % srv.port),
          "kcat -L: brokers: %s" % meta["brokers"])

    out = kcat(["-C", "-J", "-e", "-q", "-b", srv.broker, "-t", "multi"])
    got = {}
    for line in out.splitlines():
        m = json.loads(line)
        hdrs = m.get("headers") or []
        got[(m["partition"], m["offset"])] = (m["key"], m["payload"], m["ts"], hdrs)
    exp = expected_records(seed)
    e.check(len(got) == len(exp), "kcat -C: %d records, expected %d" % (len(got), len(exp)))
    for k, (key, val, ts, hv) in exp.items():
        e.check(k in got, "kcat -C: record %s missing" % (k,))
        g = got[k]
        e.check(g[0] == key and g[1] == val and g[2] == ts and g[3] == ["h", hv],
              "kcat -C: record %s is %s, expected %s" % (k, g, (key, val, ts, ["h", hv])))
    print("kcat -L and -C -e: %d records of 3 partitions as stored" % len(got), flush=True)

    # -o s@TS: the first record with a timestamp >= TS.
    out = kcat(["-C", "-J", "-e", "-q", "-b", srv.broker, "-t", "multi", "-p", "2", "-o", "s@%d" % (TS0 + 2004)])
    offs = [json.loads(l)["offset"] for l in out.splitlines()]
    e.check(offs == [4, 5, 6], "kcat -o s@TS: offsets %s, expected [4, 5, 6]" % offs)
    print("kcat -o s@TS starts at the right record", flush=True)


def test_kafka_python_group(srv):
    srv.cmd("create pytopic 2")
    srv.cmd("append pytopic 0 20 a %d" % TS0)
    srv.cmd("append pytopic 1 10 b %d" % (TS0 + 1000))

    def run(expect_n, timeout):
        c = KafkaConsumer("pytopic", bootstrap_servers=srv.broker, group_id="pygroup",
                          auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=200)
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < expect_n and time.monotonic() < deadline:
            for m in c:  # returns after consumer_timeout_ms without records
                got.append((m.partition, m.offset, m.key.decode(), m.value.decode(), m.headers))
        c.commit()
        c.close()
        return got

    first = run(30, 60)
    e.check(len(first) == 30, "kafka-python: first run read %d records, expected 30" % len(first))
    e.check(sorted(first)[0] == (0, 0, "key-0", "a-0", [("h", b"v-0")]), "kafka-python: %r" % (sorted(first)[0],))
    srv.cmd("append pytopic 1 3 c %d" % (TS0 + 5000))
    second = run(3, 60)
    e.check(sorted((p, o) for p, o, _, _, _ in second) == [(1, 10), (1, 11), (1, 12)],
          "kafka-python: second run read %s, expected offsets 10-12 of partition 1" % second)
    print("kafka-python group: read 30, committed, resumed with the 3 new records", flush=True)


def test_long_poll(srv):
    srv.cmd("create lp 1")
    srv.cmd("append lp 0 1 old %d" % TS0)
    c = KafkaConsumer(bootstrap_servers=srv.broker, fetch_max_wait_ms=10000, enable_auto_commit=False)
    tp = TopicPartition("lp", 0)
    c.assign([tp])
    c.seek_to_end(tp)
    e.check(c.position(tp) == 1, "long poll: position %s" % c.position(tp))
    got = {}

    def poll():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "at" not in got:
            for recs in c.poll(timeout_ms=1000).values():
                for r in recs:
                    got["at"] = time.monotonic()
                    got["value"] = r.value

    t = threading.Thread(target=poll)
    t.start()
    e.wait_for(lambda: int(srv.stats()["waiting"]) >= 1, 30, "the consumer's fetch to be parked", every=0.005)
    sent_at = time.monotonic()
    srv.cmd("append lp 0 1 new %d" % (TS0 + 1))  # appended, flushed, then answered
    t.join()
    c.close()
    e.check("at" in got, "long poll: the new record never arrived")
    latency = (got["at"] - sent_at) * 1000
    e.check(got["value"] == b"new-0", "long poll: got %s" % got.get("value"))
    e.check(latency < 1000, "long poll: %.1f ms from append to delivery (max wait 10 s)" % latency)
    print("long poll: delivered %.1f ms after the append command (append + fsync included; fetch max wait 10 s)"
          % latency, flush=True)


def parse_assignment(line):
    rest = line.split(" ", 1)[1]
    return set() if rest == "-" else set(rest.split(","))


def test_rdkafka_group(srv, consumer_exe):
    srv.cmd("create g4 4")
    for p in range(4):
        srv.cmd("append g4 %d 10 p%d %d" % (p, p, TS0))
    all_parts = {"g4:%d" % p for p in range(4)}
    a = e.Proc([consumer_exe, "-b", srv.broker, "-g", "rdgroup", "-t", "g4"], "consumer A")
    b = None
    try:
        line = a.expect(lambda l: l.startswith("assigned") and parse_assignment(l) == all_parts, 60,
                        "A to get all 4 partitions")
        b = e.Proc([consumer_exe, "-b", srv.broker, "-g", "rdgroup", "-t", "g4"], "consumer B")
        lb = b.expect(lambda l: l.startswith("assigned") and len(parse_assignment(l)) == 2, 60,
                      "B to get 2 partitions")
        la = a.expect(lambda l: l.startswith("assigned") and len(parse_assignment(l)) == 2, 60,
                      "A to give up 2 partitions")
        sa, sb = parse_assignment(la), parse_assignment(lb)
        e.check(sa.isdisjoint(sb) and sa | sb == all_parts, "split: A %s, B %s" % (sa, sb))
        print("librdkafka group: A %s, B %s" % (sorted(sa), sorted(sb)), flush=True)
        b.send("quit")
        b.expect(lambda l: l.startswith("closed"), 30, "B to leave")
        b.wait()
        a.expect(lambda l: l.startswith("assigned") and parse_assignment(l) == all_parts, 60,
                 "A to take all 4 partitions back")
        # Nothing was committed, so A reads every partition again from the start; then it commits.
        last = {}

        def a_caught_up(line):
            if line.startswith("msg "):
                _, p, o = line.split()[:3]
                last[int(p)] = int(o)
            return all(last.get(p) == 9 for p in range(4))
        a.expect(a_caught_up, 60, "A to read all 40 records after taking over")
        a.send("commit")
        a.expect(lambda l: l.startswith("committed"), 30, "A's commit")
        e.check(a.seen[-1] == "committed 0", "A's commit: %s" % a.seen[-1])
        a.send("quit")
        a.expect(lambda l: l.startswith("closed"), 30, "A to leave")
        a.wait()
        print("librdkafka group: B left, A took all partitions, 40/40 records consumed, committed", flush=True)
    finally:
        a.kill()
        if b:
            b.kill()


def test_static_membership(srv, consumer_exe):
    """KIP-345: B is killed (no LeaveGroup) and restarted with its group.instance.id; it must get its own
    partitions back at once, and A must keep its partitions throughout."""
    srv.cmd("create s4 4")
    for p in range(4):
        srv.cmd("append s4 %d 5 p%d %d" % (p, p, TS0))
    all_parts = {"s4:%d" % p for p in range(4)}
    session_ms = 30000

    def member(instance):
        return e.Proc([consumer_exe, "-b", srv.broker, "-g", "static", "-t", "s4", "-i", instance,
                       "-s", str(session_ms)], "static member " + instance)
    a = member("inst-a")
    b = b2 = None
    try:
        a.expect(lambda l: l.startswith("assigned") and parse_assignment(l) == all_parts, 60,
                 "A to get all 4 partitions")
        b = member("inst-b")
        lb = b.expect(lambda l: l.startswith("assigned") and len(parse_assignment(l)) == 2, 60,
                      "B to get 2 partitions")
        a.expect(lambda l: l.startswith("assigned") and len(parse_assignment(l)) == 2, 60,
                 "A to give up 2 partitions")
        sb = parse_assignment(lb)
        a_lines = len(a.seen)
        b.kill()  # SIGKILL: no LeaveGroup; the coordinator still holds B's session
        t0 = time.monotonic()
        b2 = member("inst-b")
        lb2 = b2.expect(lambda l: l.startswith("assigned"), 20, "the restarted B to get an assignment")
        took = time.monotonic() - t0
        e.check(parse_assignment(lb2) == sb, "the restarted B got %s, it had %s" % (lb2, sorted(sb)))
        e.check(took < session_ms / 1000 / 2,
                "the restarted B waited %.1f s: as long as a rebalance after the session timeout" % took)
        # B reads its partitions again (nothing was committed); A saw no revocation meanwhile.
        b2.expect(lambda l: l.startswith("msg "), 30, "the restarted B to read a record")
        a.drain()
        a_after = [l for l in a.seen[a_lines:] if l.startswith(("revoked", "assigned"))]
        e.check(not a_after, "A was rebalanced while B restarted: %s" % a_after)
        print("static membership: B restarted with its instance id had %s back after %.2f s; A untouched"
              % (sorted(sb), took), flush=True)
    finally:
        for p in (a, b, b2):
            if p:
                p.kill()


def test_groups_tool(srv, mqlog, data_dir):
    """mqlog groups reads the offsets the endpoint committed (same catalog), beside the running server."""

    def groups(*extra):
        r = subprocess.run([mqlog, "groups", "-d", data_dir] + list(extra), capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            e.fail("mqlog groups %s: exit %d: %s" % (" ".join(extra), r.returncode, r.stderr))
        lines = r.stdout.splitlines()
        e.check(lines and lines[0].split() == ["GROUP", "TOPIC", "PART", "COMMITTED", "END", "LAG"],
              "mqlog groups: header %r" % lines[:1])
        return {(f[0], f[1], int(f[2])): tuple(int(x) for x in f[3:]) for f in (l.split() for l in lines[1:])}

    got = groups()
    # kafka-python committed 20 + 13 (its second run), librdkafka's member A 10 in each of 4 partitions.
    want = {("pygroup", "pytopic", 0): (20, 20, 0), ("pygroup", "pytopic", 1): (13, 13, 0)}
    want.update({("rdgroup", "g4", p): (10, 10, 0) for p in range(4)})
    e.check(got == want, "mqlog groups: %s, expected %s" % (got, want))
    # New records show up as lag; a group can be asked for alone.
    srv.cmd("append pytopic 0 4 late %d" % (TS0 + 9000))
    got = groups("pygroup")
    e.check(got == {("pygroup", "pytopic", 0): (20, 24, 4), ("pygroup", "pytopic", 1): (13, 13, 0)},
          "mqlog groups pygroup after 4 new records: %s" % got)
    print("mqlog groups: the endpoint's groups with committed offsets, end and lag (4 after an append)",
          flush=True)


def test_offsets_survive_restart(srv, serve_exe, consumer_exe, data_dir):
    srv.stop()
    srv = Serve(serve_exe, data_dir)
    for p in range(4):
        srv.cmd("append g4 %d 1 after %d" % (p, TS0 + 5000))
    a = e.Proc([consumer_exe, "-b", srv.broker, "-g", "rdgroup", "-t", "g4"], "consumer A'")
    try:
        msgs = []
        while len(msgs) < 4:
            l = a.expect(lambda l: l.startswith("msg "), 60, "the records appended after the restart")
            msgs.append(l)
        e.check(all(int(m.split()[2]) == 10 for m in msgs), "after restart: %s (expected offset 10 only)" % msgs)
        a.send("quit")
        a.expect(lambda l: l.startswith("closed"), 30, "A' to leave")
        a.wait()
    finally:
        a.kill()
    print("committed offsets survived the restart: the group resumed at offset 10", flush=True)
    return srv


def test_producers_refused(srv):
    for extra, want in (([], "Topic authorization failed"),
                        (["-X", "enable.idempotence=true"], "Cluster authorization failed")):
        r = subprocess.run([KCAT, "-P", "-b", srv.broker, "-t", "multi"] + extra, input="hello\n",
                           capture_output=True, text=True, timeout=60)
        # What matters is the refusal the client reports; kcat's own exit status after librdkafka's fatal
        # idempotence error is not reliably non-zero (seen 0 and 1), so only the plain producer's is checked.
        e.check(want in r.stderr and (extra or r.returncode != 0),
              "kcat -P %s: exit %d, stderr %s" % (" ".join(extra), r.returncode, r.stderr[-500:]))
    out = kcat(["-C", "-J", "-e", "-q", "-b", srv.broker, "-t", "multi", "-p", "0"])
    e.check(len(out.splitlines()) == 5, "a refused produce changed partition 0: %s" % out)
    print("producers refused: Topic / Cluster authorization failed, nothing written", flush=True)


def test_bad_clients(srv):
    before = int(srv.stats()["protocol_errors"])
    good = socket.create_connection(("127.0.0.1", srv.port), timeout=10)

    def closed(s):
        s.settimeout(10)
        try:
            return s.recv(100) == b""
        except ConnectionResetError:
            return True

    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"\x16\x03\x01\x02\x00garbage-that-looks-like-tls")
    e.check(closed(s), "garbage: connection still open")
    s.close()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(struct.pack(">i", 512 * 1024 * 1024) + b"x" * 100)
    e.check(closed(s), "oversized: connection still open")
    s.close()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(struct.pack(">ihhi", 200, 3, 1, 7) + b"\x00")  # 200 announced, 9 sent, then gone
    s.close()
    # The well-behaved connection and new clients still work.
    good.sendall(struct.pack(">ihhih", 10, 18, 0, 99, -1))  # ApiVersions v0, null client id
    size = struct.unpack(">i", good.recv(4))[0]
    body = b""
    while len(body) < size:
        chunk = good.recv(size - len(body))
        e.check(chunk, "good client: connection closed")
        body += chunk
    e.check(struct.unpack(">ih", body[:6]) == (99, 0), "good client: answer %r" % body[:6])
    good.close()
    meta = json.loads(kcat(["-L", "-J", "-b", srv.broker]))
    e.check(any(t["topic"] == "multi" for t in meta["topics"]), "kcat -L after bad clients")
    after = int(srv.stats()["protocol_errors"])
    e.check(after - before >= 2, "protocol errors counted: %d -> %d" % (before, after))
    print("garbage, oversized and truncated requests: server up, other clients unaffected", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    ap.add_argument("--consumer", required=True)
    ap.add_argument("--mqlog", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    if args.keep:
        os.environ["MQ_E2E_KEEP"] = "1"
    data_dir = os.path.join(e.tmpdir("kafka-clients"), "data")
    srv = Serve(args.serve, data_dir)
    try:
        test_kcat(srv)
        test_kafka_python_group(srv)
        test_long_poll(srv)
        test_rdkafka_group(srv, args.consumer)
        test_static_membership(srv, args.consumer)
        test_groups_tool(srv, args.mqlog, data_dir)
        srv = test_offsets_survive_restart(srv, args.serve, args.consumer, data_dir)
        test_producers_refused(srv)
        test_bad_clients(srv)
        srv.stop()
    finally:
        srv.kill()
    print("test_kafka_clients: all passed", flush=True)


if __name__ == "__main__":
    main()
