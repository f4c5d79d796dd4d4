#!/usr/bin/env python3
"""test_kafka_old_clients.py - clients that speak Fetch v0-v3 read every record (issue 12, "old clients").

Fetch before v4 carries message sets of format v0 (Fetch v0-1) or v1 (Fetch v2-3), not record batches. The
endpoint converts the stored batches as Kafka does (gateway/kafka/downconv.h): one message per record, key,
value and (v1) timestamp kept, headers dropped. The endpoint is the test driver kafka_serve over a temporary
data directory, as in test_kafka_clients.py.

Checks:
  - a raw Fetch of each version 0-3 from an offset inside a stored batch: the message set starts exactly at
    that offset, every message has the magic that version gets and a CRC-32 that zlib agrees with, and the
    keys, values and (v2-3) timestamps are the stored ones;
  - kafka-python 2.0.2 pinned to api_version 0.8.2, 0.9, 0.10.0 and 0.10.1 (Fetch v0, v1, v2, v3) reads every
    record of a 3-partition topic with its CRCs checked;
  - Debian's sarama (1.22) at its default Version, 0.8.2, reads every record and commits its group's
    offsets with the offset manager (sarama's ConsumerGroup itself refuses Versions below 0.10.2);
  - Debian's kafka-go 0.2.1 (Fetch v2) reads every record as a member of a consumer group.

Usage: test_kafka_old_clients.py --serve PATH/kafka_serve
Exits non-zero on the first failure. Needs python3-kafka, golang-go, golang-github-shopify-sarama-dev and
golang-github-segmentio-kafka-go-dev (scripts/setup installs them).
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib

import e2e_lib as e

try:
    from kafka import KafkaConsumer, TopicPartition
except ImportError:
    sys.exit("test_kafka_old_clients: kafka-python (Debian package python3-kafka) is missing")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_kafka_clients import Serve, expected_records, TS0  # noqa: E402

GO = shutil.which("go")
if not GO:
    sys.exit("test_kafka_old_clients: go is missing (Debian package golang-go)")
GOPATH = "/usr/share/gocode"  # where Debian's golang-*-dev packages put their sources
for pkg in ("github.com/Shopify/sarama", "github.com/segmentio/kafka-go"):
    if not os.path.isdir(os.path.join(GOPATH, "src", pkg)):
        sys.exit("test_kafka_old_clients: %s is missing (Debian's golang-github-*-dev packages)" % pkg)

TOPIC = "old"
SEED = {0: ("alpha", 5), 1: ("beta", 3), 2: ("gamma", 7)}
TOTAL = sum(n for _, n in SEED.values())


def fetch_raw(broker_port, version, partition, offset):
    """One Fetch request of `version` for (TOPIC, partition) at offset; returns the message set's bytes."""
    body = struct.pack(">iii", -1, 1000, 1)  # replica, max wait, min bytes
    if version >= 3:
        body += struct.pack(">i", 1 << 20)
    body += struct.pack(">i", 1) + struct.pack(">h", len(TOPIC)) + TOPIC.encode()
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, 1 << 20)
    client = b"old-raw"
    hdr = struct.pack(">hhih", 1, version, 7, len(client)) + client
    with socket.create_connection(("127.0.0.1", broker_port), timeout=10) as s:
        msg = hdr + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", e.recv_all(s, 4))[0]
        resp = e.recv_all(s, size)
    pos = 4  # correlation id
    e.check(struct.unpack_from(">i", resp, 0)[0] == 7, "Fetch v%d: wrong correlation id" % version)
    if version >= 1:
        pos += 4  # throttle time
    ntopics = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    e.check(ntopics == 1, "Fetch v%d: %d topics in the answer" % (version, ntopics))
    nlen = struct.unpack_from(">h", resp, pos)[0]
    pos += 2 + nlen + 4  # name, partition count
    part, err, hw = struct.unpack_from(">ihq", resp, pos)
    pos += 14
    e.check(part == partition and err == 0, "Fetch v%d: partition %d error %d" % (version, part, err))
    e.check(hw == SEED[partition][1], "Fetch v%d: high watermark %d" % (version, hw))
    mlen = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    e.check(pos + mlen == len(resp), "Fetch v%d: %d bytes after the message set" % (version, len(resp) - pos - mlen))
    return resp[pos:pos + mlen]


def parse_messages(data, version):
    """[(offset, key, value, timestamp or None)] of a message set; checks magic and CRC of each."""
    want_magic = 0 if version <= 1 else 1
    out, pos = [], 0
    while pos < len(data):
        e.check(len(data) - pos >= 12, "Fetch v%d: a partial message at the end" % version)
        offset, size = struct.unpack_from(">qi", data, pos)
        msg = data[pos + 12:pos + 12 + size]
        e.check(len(msg) == size, "Fetch v%d: a partial message at the end" % version)
        crc = struct.unpack_from(">I", msg, 0)[0]
        e.check(crc == zlib.crc32(msg[4:]) & 0xffffffff, "Fetch v%d: offset %d: bad CRC" % (version, offset))
        magic, attrs = msg[4], msg[5]
        e.check(magic == want_magic, "Fetch v%d: magic %d, expected %d" % (version, magic, want_magic))
        e.check(attrs & 0x07 == 0, "Fetch v%d: compressed message" % version)
        p = 6
        ts = None
        if magic == 1:
            ts = struct.unpack_from(">q", msg, p)[0]
            p += 8
        klen = struct.unpack_from(">i", msg, p)[0]
        p += 4
        key = None if klen < 0 else msg[p:p + klen].decode()
        p += max(klen, 0)
        vlen = struct.unpack_from(">i", msg, p)[0]
        p += 4
        value = None if vlen < 0 else msg[p:p + vlen].decode()
        p += max(vlen, 0)
        e.check(p == size, "Fetch v%d: offset %d: %d bytes after the value" % (version, offset, size - p))
        out.append((offset, key, value, ts))
        pos += 12 + size
    return out


def test_raw(srv, exp):
    for version in range(4):
        msgs = parse_messages(fetch_raw(srv.port, version, 2, 3), version)
        e.check([m[0] for m in msgs] == [3, 4, 5, 6], "Fetch v%d from offset 3: offsets %s" % (version, msgs))
        for off, key, value, ts in msgs:
            k, v, t, _ = exp[(2, off)]
            e.check((key, value) == (k, v), "Fetch v%d: offset %d is %s/%s" % (version, off, key, value))
            e.check(ts == (t if version >= 2 else None), "Fetch v%d: offset %d timestamp %s" % (version, off, ts))
    print("raw Fetch v0-v3 from inside a batch: message sets of magic 0 (v0-1) and 1 (v2-3), CRCs and "
          "timestamps right", flush=True)


def test_kafka_python(srv, exp):
    parts = [TopicPartition(TOPIC, p) for p in SEED]
    for api in ((0, 8, 2), (0, 9), (0, 10, 0), (0, 10, 1)):
        c = KafkaConsumer(bootstrap_servers=srv.broker, api_version=api, auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=300, check_crcs=True)
        c.assign(parts)
        got = {}
        deadline = time.monotonic() + 30
        while len(got) < TOTAL and time.monotonic() < deadline:
            for m in c:
                got[(m.partition, m.offset)] = (m.key.decode(), m.value.decode(), m.timestamp, m.headers)
        c.close()
        e.check(len(got) == TOTAL, "kafka-python %s: %d records, expected %d" % (api, len(got), TOTAL))
        for k, (key, val, ts, _) in exp.items():
            g = got[k]
            e.check(g[:2] == (key, val), "kafka-python %s: record %s is %s" % (api, k, g))
            if api >= (0, 10):
                e.check(g[2] == ts, "kafka-python %s: record %s has timestamp %s, expected %d" % (api, k, g[2], ts))
            e.check(not g[3], "kafka-python %s: record %s has headers %s" % (api, k, g[3]))
    print("kafka-python 2.0.2 at api_version 0.8.2, 0.9, 0.10.0, 0.10.1 (Fetch v0-v3): %d/%d records each"
          % (TOTAL, TOTAL), flush=True)


def go_build(name, out_dir):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go", name)
    exe = os.path.join(out_dir, name)
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, CGO_ENABLED="1")
    if "HOME" not in env:
        env["GOCACHE"] = os.path.join(out_dir, "gocache")
    r = subprocess.run([GO, "build", "-o", exe, "."], cwd=src, env=env, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        e.fail("go build %s: %s" % (name, r.stderr[-3000:]))
    return exe


def read_go(argv, name, exp):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        e.fail("%s: exit %d: %s" % (name, r.returncode, r.stderr[-3000:]))
    got = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if f[0] == "msg":
            got[(int(f[1]), int(f[2]))] = tuple(f[3:])
    e.check(len(got) == TOTAL, "%s: %d records, expected %d:\n%s" % (name, len(got), TOTAL, r.stdout[-2000:]))
    for k, (key, val, ts, _) in exp.items():
        e.check(k in got and got[k][:2] == (key, val), "%s: record %s is %s" % (name, k, got.get(k)))
    return got, r.stdout


def test_go(srv, exp, tmp):
    sarama = go_build("sarama_read", tmp)
    kafkago = go_build("kafkago_read", tmp)
    _, out = read_go([sarama, srv.broker, TOPIC, "sarama-old"], "sarama (default Version 0.8.2)", exp)
    e.check("committed %d" % len(SEED) in out, "sarama: offsets not committed:\n%s" % out[-500:])
    print("sarama 1.22 at its default Version (0.8.2, Fetch v0): %d/%d records, group offsets committed and "
          "read back" % (TOTAL, TOTAL), flush=True)
    got, _ = read_go([kafkago, srv.broker, TOPIC, "kafkago-old", str(TOTAL)], "kafka-go 0.2.1", exp)
    for k, (_, _, ts, _) in exp.items():
        e.check(int(got[k][2]) == ts, "kafka-go: record %s has timestamp %s, expected %d" % (k, got[k][2], ts))
    print("kafka-go 0.2.1 (Fetch v2) in a consumer group: %d/%d records with their timestamps" % (TOTAL, TOTAL),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", required=True)
    args = ap.parse_args()
    tmp = e.tmpdir("kafka-old")
    srv = Serve(args.serve, os.path.join(tmp, "data"))
    try:
        srv.cmd("create %s 3" % TOPIC)
        for part, (prefix, n) in SEED.items():
            srv.cmd("append %s %d %d %s %d" % (TOPIC, part, n, prefix, TS0 + part * 1000))
        exp = expected_records(SEED)
        test_raw(srv, exp)
        test_kafka_python(srv, exp)
        test_go(srv, exp, tmp)
        srv.stop()
    finally:
        srv.kill()
    print("test_kafka_old_clients: all passed", flush=True)


if __name__ == "__main__":
    main()
