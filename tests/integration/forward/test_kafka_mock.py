#!/usr/bin/env python3
"""test_kafka_mock.py - the forwarding tests' central cluster on its own: mq_kafka_mock (librdkafka's mock
cluster) with kcat as the producer and read_remote() (mq_kafka_dump) as the consumer. What the forwarding
tests rely on is checked here, so that a failure there is the forwarder's and not the harness's:
  - records come back exactly as kcat sent them: partition, offsets, key, value (binary too), CreateTime
    timestamp and headers (null and empty values included);
  - with every broker down a produce fails and a read does not finish; once they are up both work again;
  - RTT set on every broker slows a produce down by at least that much;
  - with transport errors pushed on Produce (ApiKey 0) the producer still delivers, exactly once;
  - commands that cannot be done answer "error ..." and leave the cluster running.
"""
import os
import shutil
import subprocess
import time

import e2e_lib as e

TOPIC = "selftest"
PER_PARTITION = 500


def kcat():
    exe = shutil.which("kcat")
    if not exe:
        e.fail("kcat is not installed (scripts/setup installs it)")
    return exe


def produce(mock, partition, lines, headers, extra=(), files=(), timeout=60):
    """kcat -P of LINES ("key:value") into PARTITION with the same HEADERS ([(name, value or None)]) on each,
    or with FILES (then LINES must be empty) the files, one key-less record each. Returns the finished
    process (check its returncode) and how long it took."""
    args = [kcat(), "-P", "-b", mock.bootstrap, "-t", TOPIC, "-p", str(partition), "-K", ":",
            "-X", "enable.idempotence=true"]
    for name, value in headers:
        args += ["-H", name if value is None else "%s=%s" % (name, value)]
    args += list(extra)
    t0 = time.monotonic()
    try:
        p = subprocess.run(args + list(files), input="".join(l + "\n" for l in lines).encode(),
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        e.fail("kcat -P did not finish within %ss" % timeout)
    return p, time.monotonic() - t0


def expect_records(mock, want, t0, t1):
    """The topic holds exactly WANT ({partition: [(key, value, headers)]}), in order from offset 0, each
    stamped with a CreateTime within [t0, t1] (ms) that never goes backwards within a partition."""
    got = mock.read(TOPIC)
    by_part = {}
    for r in got:
        by_part.setdefault(r["partition"], []).append(r)
    for part, recs in sorted(want.items()):
        have = by_part.get(part, [])
        e.check(len(have) == len(recs), "partition %d: %d records, expected %d" % (part, len(have), len(recs)))
        last_ts = 0
        for i, (r, (key, value, headers)) in enumerate(zip(have, recs)):
            where = "partition %d offset %d" % (part, r["offset"])
            e.check(r["offset"] == i, "%s: expected offset %d" % (where, i))
            e.check(r["key"] == key, "%s: key %r, expected %r" % (where, r["key"], key))
            e.check(r["value"] == value, "%s: value %r, expected %r" % (where, r["value"], value))
            e.check(r["headers"] == headers, "%s: headers %r, expected %r" % (where, r["headers"], headers))
            e.check(r["tstype"] == "create", "%s: timestamp type %s" % (where, r["tstype"]))
            e.check(t0 <= r["timestamp"] <= t1 and r["timestamp"] >= last_ts,
                    "%s: timestamp %d outside [%d, %d] or before %d" % (where, r["timestamp"], t0, t1, last_ts))
            last_ts = r["timestamp"]
    extra = set(by_part) - set(want)
    e.check(not extra, "records in partitions %s, expected none there" % sorted(extra))


def main():
    mock = e.KafkaMock(brokers=3, topics={TOPIC: 2})
    e.log("mock cluster: %s" % mock.bootstrap)
    for host in mock.bootstrap.split(","):
        e.check(host.startswith("127.0.0.1:"), "mock broker %s is not on the loopback address" % host)

    # 1000 records over 2 partitions, headers different per partition, a null and an empty header value,
    # non-ASCII and binary values (the binary ones as files: kcat sends a file as one record).
    d = e.tmpdir("kafka-mock")
    bins = []
    for i, content in enumerate([b"\x00\xff\x01binary\n\r\t", bytes(range(256))]):
        path = os.path.join(d, "bin%d" % i)
        with open(path, "wb") as f:
            f.write(content)
        bins.append((path, content))
    want = {}
    t0 = int(time.time() * 1000)
    for part in (0, 1):
        headers = [("src", "kcat"), ("part", str(part)), ("empty", ""), ("null", None), ("dup", "1"),
                   ("dup", "2")]
        nfiles = len(bins) if part == 1 else 0
        lines = ["k%d-%d:value %d of partition %d, caf\u00e9 \u2713" % (part, i, i, part)
                 for i in range(PER_PARTITION - nfiles)]
        p, _ = produce(mock, part, lines, headers)
        e.check(p.returncode == 0, "kcat -P into partition %d failed: %s" % (part, p.stderr.decode()[-2000:]))
        if nfiles:
            p, _ = produce(mock, part, [], headers, files=[path for path, _ in bins])
            e.check(p.returncode == 0, "kcat -P of files failed: %s" % p.stderr.decode()[-2000:])
        hdrs = [(n, None if v is None else v.encode()) for n, v in headers]
        want[part] = [(l.split(":", 1)[0].encode(), l.split(":", 1)[1].encode(), hdrs) for l in lines]
        want[part] += [(None, content, hdrs) for _, content in bins[:nfiles]]
    t1 = int(time.time() * 1000)
    expect_records(mock, want, t0, t1)
    e.log("1000 records read back identical (keys, values, timestamps, headers)")

    # Every broker down: a produce cannot be delivered (it times out); up again: it is.
    mock.command("down all")
    p, took = produce(mock, 0, ["down:never"], [], extra=["-X", "message.timeout.ms=3000"])
    e.check(p.returncode != 0, "kcat -P succeeded with every broker down")
    e.log("brokers down: kcat -P failed after %.1f s (%s)" % (took, p.stderr.decode().strip().splitlines()[-1]))
    r = subprocess.run([e.MQ_KAFKA_DUMP, "-b", mock.bootstrap, "-t", TOPIC, "-w", "2"], capture_output=True,
                       timeout=60)
    e.check(r.returncode != 0, "mq_kafka_dump read the topic with every broker down")
    mock.command("up all")
    h = [("after", "up")]
    p, took = produce(mock, 0, ["up%d:again %d" % (i, i) for i in range(10)], h)
    e.check(p.returncode == 0, "kcat -P after the brokers came back failed: %s" % p.stderr.decode()[-2000:])
    want[0] += [(b"up%d" % i, b"again %d" % i, [(n, v.encode()) for n, v in h]) for i in range(10)]
    t1 = int(time.time() * 1000)
    expect_records(mock, want, t0, t1)
    e.log("brokers up: delivered in %.1f s" % took)

    # RTT: each response comes at least that late.
    mock.command("rtt all 500")
    p, took = produce(mock, 1, ["rtt:slow"], [])
    e.check(p.returncode == 0, "kcat -P with 500 ms RTT failed: %s" % p.stderr.decode()[-2000:])
    e.check(took >= 0.5, "kcat -P took %.2f s with 500 ms RTT on every broker" % took)
    want[1].append((b"rtt", b"slow", []))
    mock.command("rtt all 0")
    e.log("rtt 500 ms: kcat -P took %.2f s" % took)

    # Transport errors on Produce: the connection is closed instead of an answer, the idempotent producer
    # retries, and every record lands once.
    mock.command("errors 0 5 _TRANSPORT")
    lines = ["err%d:through errors %d" % (i, i) for i in range(100)]
    p, took = produce(mock, 1, lines, [])
    e.check(p.returncode == 0, "kcat -P with 5 transport errors failed: %s" % p.stderr.decode()[-2000:])
    e.check(b"Disconnected" in p.stderr or b"transport failure" in p.stderr,
            "kcat saw no disconnect: the transport errors were not injected:\n%s" % p.stderr.decode()[-2000:])
    want[1] += [(l.split(":", 1)[0].encode(), l.split(":", 1)[1].encode(), []) for l in lines]
    t1 = int(time.time() * 1000)
    expect_records(mock, want, t0, t1)
    e.log("5 transport errors on Produce: 100 records delivered once each in %.1f s" % took)

    # A broker error by name, then commands that cannot be done.
    mock.command("errors 0 1 NOT_LEADER_FOR_PARTITION")
    p, _ = produce(mock, 0, ["nl:not leader"], [])
    e.check(p.returncode == 0, "kcat -P after NOT_LEADER_FOR_PARTITION failed: %s" % p.stderr.decode()[-2000:])
    for bad in ["down 4", "rtt all x", "errors 0 1 NO_SUCH_ERROR", "create %s 2" % TOPIC, "frobnicate"]:
        answer = mock.command(bad, check=False)
        e.check(answer.startswith("error "), "'%s' answered %r" % (bad, answer))
    mock.create("second", 3)
    e.check(mock.read("second") == [], "a new topic is not empty")
    mock.stop()
    e.log("PASS")


if __name__ == "__main__":
    main()
