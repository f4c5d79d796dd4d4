#!/usr/bin/env python3
"""test_forward_backfill.py - a backlog stored while the central Kafka cluster (mq_kafka_mock) is down drains
once it is back, every record exactly once, and a second backlog drains at the max_bytes_per_s cap.

Phase 1: 500,000 sensor-like JSON records (~40 bytes, one header, no key) are stored with `mqlog produce`
into 8 partitions of a local topic before mqlogd starts, with a forwarder (exactly_once, zstd) configured and
every broker of the cluster down: the forwarder finds them as a backlog and reports the outage. Then the
cluster comes up; once the checkpoints reach the local ends the test prints the drain rate and checks the
remote watermarks (all of it there, nothing more).

Phase 2: mqlogd stops, a second backlog of 240,000 records is produced, and mqlogd starts again with
max_bytes_per_s set to what makes the drain last about 15 s (at most half the uncapped rate of phase 1, so
that the cap binds). The measured rate must be within 10% of the cap.

At the end the whole remote topic is read back (mq_kafka_dump, read_committed): every record of both
backlogs exactly once (by mqlog.partition and mqlog.offset), on the remote partition of its local number, in
local offset order, byte for byte as stored (value, null key, headers in order, the mqlog.* ones included),
with a CreateTime from its produce run, and nothing else. The records are the test's own, so what each line
must say is known without reading the local log back (which costs more than the drain at this size).

How the rate is measured: bytes are counted as the forwarder counts them against max_bytes_per_s (key + value
+ every header's name and value, the four mqlog.* headers included, before compression: gateway/forward/
forwarder.c mq_fwd_headers); the records read back are byte for byte those counted. Time is taken from the
forwarder's checkpoints in the catalog (connector_checkpoints, connector "forward.central", key
"TOPIC:PARTITION", value the next offset to send), polled every 50 ms: each change is kept with its
updated_ms (the wall clock when the forwarder wrote it). The rate is the bytes of the records between the
first checkpoint past the backlog's start and the last one (the backlog's end) divided by the time between
those two writes. Both ends are written the same way (at a transaction's commit, then at most once a
second), so the lag from send to checkpoint cancels out.

The mock keeps at most ~5 MiB or 100,000 batches per partition: after each drain the test checks that it
dropped nothing (every low watermark 0).
"""
import json
import os
import sqlite3
import subprocess
import time

import e2e_lib as e

N1 = e.scaled(500000, minimum=40000)
# Not scaled: at the cap one transaction holds up to 10,000 records per partition (80,000 here) and takes
# that long to commit, and the rate needs at least three checkpoint moves.
N2 = 240000
TOPIC = "telemetry"
PARTITIONS = 8
SITE = "edge-backfill"
REMOTE = "%s.%s" % (SITE, TOPIC)
FWD = "central"
HEADER = ("sensor.kind", "temp")
DRAIN_S = 15  # phase 2 should drain in about this long at the cap
TOLERANCE = 0.10


class Expected:
    """What the remote topic must hold once the backlogs drained. Every record is stored by this test, so the
    line mq_kafka_dump prints for it is known from ',"tstype"' on (timestamp type, key, value, headers in
    order, the mqlog.* ones included): .want maps that text to the record's local (partition, offset) and its
    size as max_bytes_per_s counts it; .stamps holds the wall clock window of each produce run."""

    def __init__(self):
        self.want = {}
        self.size = {}
        self.stamps = []

    def produce(self, data_dir, first, count):
        """Stores COUNT sensor-like records (k = FIRST..), record k on partition k % PARTITIONS, one
        `mqlog produce -p` per partition."""
        ends = local_ends(data_dir)
        t0, ms0 = time.monotonic(), int(time.time() * 1000)
        for p in range(PARTITIONS):
            values = ['{"s":%d,"k":%d,"t":%.1f,"h":%d}' % (k % 97, k, 20 + (k % 50) / 10, 40 + k % 30)
                      for k in range(first, first + count) if k % PARTITIONS == p]
            r = subprocess.run([e.MQLOG, "produce", "-d", data_dir, TOPIC, "-p", str(p), "-H", "%s=%s" % HEADER],
                               input="".join(v + "\n" for v in values), capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                e.fail("mqlog produce exited with %d: %s" % (r.returncode, r.stderr[-2000:]))
            for i, v in enumerate(values):
                self.expect(p, ends[p] + i, v)
        self.stamps.append((ms0, int(time.time() * 1000)))
        e.log("stored %d records with mqlog produce in %.1fs" % (count, time.monotonic() - t0))

    def expect(self, p, off, value):
        hdrs = [HEADER, ("mqlog.site", SITE), ("mqlog.topic", TOPIC), ("mqlog.partition", str(p)),
                ("mqlog.offset", str(off))]
        text = ',"tstype":"create","key":null,"value":"%s","headers":[%s]}' % (
            value.encode().hex(), ",".join('["%s","%s"]' % (n, v.encode().hex()) for n, v in hdrs))
        self.want[text.encode()] = (p, off)
        self.size[(p, off)] = len(value) + sum(len(n) + len(v) for n, v in hdrs)

    def check(self, bootstrap):
        """Reads the remote topic back (mq_kafka_dump, read_committed) and checks that it holds every record
        exactly once, byte for byte, on the remote partition of its local number, in local offset order,
        with a CreateTime from when it was produced, and nothing else. Returns the count read."""
        args = [e.MQ_KAFKA_DUMP, "-b", bootstrap, "-t", REMOTE, "-w", "120"]
        dump = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen, last, bad, n = set(), {}, [], 0
        for line in dump.stdout:
            n += 1
            cut = line.index(b',"tstype"')
            head = line[:cut].split(b",")  # {"partition":P  "offset":O  "timestamp":T
            rpart, roff, ts = (int(x.split(b":")[1]) for x in head)
            loc = self.want.get(line[cut:].rstrip(b"\n"))
            if loc is None:
                bad.append("remote %d@%d is none of the records stored: %s" % (rpart, roff, line[:300]))
            elif loc in seen:
                bad.append("remote %d@%d: local %d@%d again" % (rpart, roff, loc[0], loc[1]))
            elif loc[0] != rpart:
                bad.append("remote %d@%d: local %d@%d on remote partition %d" % (rpart, roff, loc[0], loc[1], rpart))
            elif loc[1] <= last.get(rpart, -1):
                bad.append("remote %d@%d: local %d@%d after %d" % (rpart, roff, loc[0], loc[1], last[rpart]))
            elif not any(lo <= ts <= hi for lo, hi in self.stamps):
                bad.append("remote %d@%d: timestamp %d outside the produce runs %s" % (rpart, roff, ts, self.stamps))
            if loc is not None:
                seen.add(loc)
                last[rpart] = max(loc[1], last.get(rpart, -1))
            if len(bad) >= 20:
                dump.kill()
                break
        err = dump.stderr.read().decode(errors="replace")
        rc = dump.wait()
        e.check(not bad, "%d+ faults in the remote records, e.g.:\n  %s" % (len(bad), "\n  ".join(bad)))
        e.check(rc == 0, "%s exited with %d: %s" % (" ".join(args), rc, err[-2000:]))
        missing = sorted(set(self.want.values()) - seen)
        e.check(not missing, "%d of %d records are not on %s (first %s)" %
                (len(missing), len(self.want), REMOTE, ["%d@%d" % m for m in missing[:10]]))
        return n


class Checkpoints:
    """The forwarder's checkpoints in the catalog, read-only: sample() records each change of the sum over
    the partitions of the next offset to send, with the latest updated_ms among them."""

    def __init__(self, data_dir):
        self.path = os.path.join(data_dir, "catalog.db")
        self.changes = []  # (updated_ms, {partition: next offset})

    def read(self):
        db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=5)
        try:
            rows = db.execute("SELECT key, value, updated_ms FROM connector_checkpoints WHERE connector = ?",
                              ("forward." + FWD,)).fetchall()
        finally:
            db.close()
        out, at = {}, 0
        for key, value, updated in rows:
            if isinstance(value, bytes):
                value = value.decode()
            if key.startswith(TOPIC + ":"):
                out[int(key.split(":")[1])] = int(value)
                at = max(at, updated)
        return at, out

    def sample(self):
        at, parts = self.read()
        if not self.changes or parts != self.changes[-1][1]:
            self.changes.append((at, parts))
        return parts


def drained(ck, d, ends):
    """Polls the checkpoints until each partition's equals its local end (ENDS); fails if mqlogd dies."""
    def done():
        if not d.alive():
            e.fail("mqlogd died:\n" + d.log()[-3000:])
        parts = ck.sample()
        return all(parts.get(p, -1) >= end for p, end in ends.items())

    e.wait_for(done, 300, "the checkpoints to reach the local ends %s" % ends, every=0.05)


def local_ends(data_dir):
    p = e.run([e.MQLOG, "topics", "-d", data_dir, "--json"])
    for t in json.loads(p.stdout)["topics"]:
        if t["topic"] == TOPIC:
            return {x["partition"]: x["end_offset"] for x in t["partition_list"]}
    e.fail("topic %s is not in %s" % (TOPIC, data_dir))


def check_marks(mock, count, phase):
    """The remote topic holds COUNT records and the mock dropped none of them (every low watermark 0): a cheap
    check after each drain (a repeat shows here already); Expected.check() reads them all at the end."""
    marks = e.remote_offsets(mock.bootstrap, REMOTE)
    lows = {p: lo for p, (lo, hi) in marks.items() if lo != 0}
    e.check(not lows, "%s: the mock dropped the oldest batches of partitions %s (low watermarks): the test "
            "stores more than it keeps" % (phase, lows))
    stored = sum(hi for lo, hi in marks.values())
    e.check(stored == count, "%s: %d records on %s, expected %d" % (phase, stored, REMOTE, count))


def rate_between(ck, size, begin, required=True):
    """(bytes, seconds, first offsets, last offsets) of the drain that started at the offsets BEGIN: from the
    first checkpoint past BEGIN to the last one, the bytes of the records between them (SIZE: (partition,
    offset) -> bytes as max_bytes_per_s counts them). Without REQUIRED, None when the drain was too quick
    for that (fewer than 3 checkpoint writes: the forwarder writes them at most once a second)."""
    changes = [(at, parts) for at, parts in ck.changes if sum(parts.values()) > sum(begin.values())]
    if not required and len(changes) < 3:
        return None
    e.check(len(changes) >= 3, "only %d checkpoint changes during the drain: %s" % (len(changes), ck.changes))
    (t_a, first), (t_b, last) = changes[0], changes[-1]
    total = sum(size[(p, o)] for p in last for o in range(first.get(p, 0), last[p]))
    return total, (t_b - t_a) / 1000, first, last


def main():
    t0 = time.monotonic()
    mock = e.KafkaMock(brokers=3, topics={REMOTE: PARTITIONS})
    mock.command("down all")
    broker = e.Broker()
    dirs = e.tmpdir("mqlogd")
    data = os.path.join(dirs, "data")
    e.run([e.MQLOG, "create", "-d", data, TOPIC, "--partitions", str(PARTITIONS), "--retention", "0"])
    exp = Expected()
    exp.produce(data, 0, N1)

    def conf(**fwd_keys):
        return e.config(
            [e.broker(broker.port, "mosquitto", "fwd-backfill")],
            [e.mapping("e2e/#", TOPIC, qos=1, partitions=PARTITIONS)],
            site=SITE,
            forward=[e.forwarder(FWD, mock.bootstrap, [TOPIC], mode="exactly_once", compression="zstd",
                                 properties={"linger.ms": "20"}, **fwd_keys)])

    # Phase 1: the backlog is there before mqlogd starts; the cluster is down.
    d = e.Daemon(conf(), d=dirs)
    d.start()
    e.wait_for(lambda: "forward %s: outage since" % FWD in d.log(), 60, "the forwarder to report the outage")
    ck = Checkpoints(data)
    ends1 = local_ends(data)
    e.check(sum(ends1.values()) == N1, "%d records stored, expected %d" % (sum(ends1.values()), N1))
    begin1 = ck.sample()
    t_up = time.monotonic()
    mock.command("up all")
    drained(ck, d, ends1)
    t_drain = time.monotonic() - t_up
    check_marks(mock, N1, "phase 1")
    nbytes = sum(exp.size.values())
    between = rate_between(ck, exp.size, begin1, required=False)
    # A small backlog (the sanitizer legs) drains within a checkpoint interval: then the whole drain, whose
    # time includes reconnecting, gives a lower rate, which only makes phase 2's cap bind more surely.
    uncapped = between[0] / between[1] if between else nbytes / t_drain
    e.log("phase 1: %d records (%.1f MB as max_bytes_per_s counts them, %.0f B/record) drained in %.1fs after "
          "the cluster came up: %.0f records/s; %.2f MB/s between the first and the last checkpoint" %
          (N1, nbytes / 1e6, nbytes / N1, t_drain, N1 / t_drain, uncapped / 1e6))
    for line in d.log().splitlines():
        if "caught up" in line:
            e.log("mqlogd: " + line)
    d.stop()

    # Phase 2: a second backlog drains at the cap.
    exp.produce(data, N1, N2)
    size2 = sum(exp.size.values()) - nbytes
    cap = int(min(size2 / DRAIN_S, uncapped / 2))
    d.write_config(conf(max_bytes_per_s=cap))
    ends2 = local_ends(data)
    ck = Checkpoints(data)
    begin2 = ck.sample()
    e.check(begin2 == ends1, "checkpoints %s before phase 2, expected the phase 1 ends %s" % (begin2, ends1))
    t_start = time.monotonic()
    d.start()
    drained(ck, d, ends2)
    t_drain2 = time.monotonic() - t_start
    check_marks(mock, N1 + N2, "phase 2")
    b, secs, first, last = rate_between(ck, exp.size, begin2)
    rate = b / secs
    e.log("phase 2: cap %d B/s; %d records drained in %.1fs from mqlogd's start; %d bytes between checkpoints "
          "%d and %d in %.2fs: %.0f B/s (%.1f%% of the cap)" % (cap, N2, t_drain2, b, sum(first.values()),
                                                                 sum(last.values()), secs, rate, 100 * rate / cap))
    moves = [at for at, parts in ck.changes if sum(parts.values()) > sum(begin2.values())]
    e.log("phase 2: the checkpoints moved %d times, at most %.1fs apart" %
          (len(moves), max((b - a) / 1000 for a, b in zip(moves, moves[1:]))))
    e.check(abs(rate - cap) <= TOLERANCE * cap, "the measured rate %.0f B/s is not within %d%% of the cap %d B/s"
            % (rate, int(TOLERANCE * 100), cap))
    t_read = time.monotonic()
    n = exp.check(mock.bootstrap)
    e.log("all %d records of both backlogs on %s exactly once, in order, byte for byte (read back in %.1fs)" %
          (n, REMOTE, time.monotonic() - t_read))
    d.stop()
    broker.stop()
    mock.stop()
    e.log("PASS: %d records backfilled exactly once at %.0f records/s; %d more at %.1f%% of a %d B/s cap "
          "(%.1fs in all)" % (N1, N1 / t_drain, N2, 100 * rate / cap, cap, time.monotonic() - t0))


main()
