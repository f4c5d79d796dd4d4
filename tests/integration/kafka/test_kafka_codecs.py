#!/usr/bin/env python3
"""test_kafka_codecs.py - compressed batches served to real Kafka clients by mqlogd (issue 13).

Topics are written with `mqlog produce -z CODEC` (lz4, zstd, gzip, snappy: the batches a compressed mapping
or a segment copied from a Kafka broker holds), then mqlogd serves them. Checks, values compared byte for
byte with what was written:
  - kcat (librdkafka 2.0.2) and confluent-kafka read every codec;
  - kafka-python 2.0.2 (python3-lz4 for lz4) reads lz4 and gzip; it speaks Fetch v4 at most, so for zstd it
    gets what Kafka gives it, UNSUPPORTED_COMPRESSION_TYPE, checked with a raw Fetch v4;
  - a raw Fetch v4 of the lz4 topic returns the stored batches byte for byte (the segment file's bytes);
  - a raw Fetch v3 of the lz4 topic returns the records down-converted to uncompressed messages (magic 1);
    of the zstd topic, UNSUPPORTED_COMPRESSION_TYPE (76);
  - kcat and confluent-kafka read a topic whose closed segments were recompacted (rewritten as large zstd
    batches by tests/tools/mq_recompact_writer.c) record for record.
Every wait has a deadline; nothing sleeps to synchronise.
"""
import glob
import os
import shutil
import socket
import struct
import subprocess
import zlib

import e2e_lib as e

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
CODECS = ("lz4", "zstd", "gzip", "snappy")
RECORDS = 500
UNSUPPORTED_COMPRESSION_TYPE = 76


def values(codec):
    """What is written to topic z-CODEC: sensor readings, some long, some not ASCII."""
    return ["{\"sensor\":\"s%03d\",\"codec\":\"%s\",\"t\":%d.%d,\"note\":\"%s\"}" %
            (i % 40, codec, 18 + i % 7, i % 10, ("µ°C" if i % 3 == 0 else "x" * (i % 200)))
            for i in range(RECORDS)]


def fetch_raw(port, version, topic):
    """One Fetch (v3 or v4) of partition 0 of topic from offset 0: (error code, records bytes)."""
    body = struct.pack(">iiii", -1, 1000, 1, 1 << 22)  # replica, max wait, min bytes, max bytes
    if version >= 4:
        body += struct.pack(">b", 0)  # isolation level: read uncommitted
    body += struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic.encode()
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 22)
    client = b"codec-raw"
    hdr = struct.pack(">hhih", 1, version, 9, len(client)) + client
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as s:
        msg = hdr + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        resp = e.recv_all(s, struct.unpack(">i", e.recv_all(s, 4))[0])
    pos = 4 + 4  # correlation id, throttle time
    e.check(struct.unpack_from(">i", resp, pos)[0] == 1, "Fetch v%d: not one topic" % version)
    pos += 4
    pos += 2 + struct.unpack_from(">h", resp, pos)[0] + 4  # name, partition count
    _, err, _ = struct.unpack_from(">ihq", resp, pos)
    pos += 14
    if version >= 4:
        pos += 8  # last stable offset
        n = struct.unpack_from(">i", resp, pos)[0]
        pos += 4 + max(n, 0) * 16  # aborted transactions
    size = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    return err, resp[pos:pos + max(size, 0)]


def messages_v1(data):
    """The values of a magic 1 message set, each message's CRC checked and uncompressed."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        _, size = struct.unpack_from(">qi", data, pos)
        msg = data[pos + 12:pos + 12 + size]
        if len(msg) < size:
            break  # a partial message at the end is allowed
        e.check(struct.unpack_from(">I", msg, 0)[0] == zlib.crc32(msg[4:]) & 0xffffffff, "Fetch v3: bad CRC")
        e.check(msg[4] == 1 and msg[5] & 7 == 0, "Fetch v3: magic %d attributes %d" % (msg[4], msg[5]))
        p = 6 + 8
        klen = struct.unpack_from(">i", msg, p)[0]
        p += 4 + max(klen, 0)
        vlen = struct.unpack_from(">i", msg, p)[0]
        out.append(msg[p + 4:p + 4 + vlen].decode())
        pos += 12 + size
    return out


def kcat_read(topic, want):
    p = e.run([KCAT, "-C", "-b", BOOT, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\\n"], timeout=60)
    got = p.stdout.splitlines()
    e.check(got == want, "kcat read %d records of %s, %d as written" %
            (len(got), topic, sum(1 for a, b in zip(got, want) if a == b)))


def confluent_read(topic, want):
    import confluent_kafka
    cc = confluent_kafka.Consumer({"bootstrap.servers": BOOT, "group.id": "codecs-" + topic,
                                   "enable.auto.commit": False})
    cc.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
    got = []

    def read_some():
        for m in cc.consume(num_messages=1000, timeout=1.0):
            e.check(m.error() is None, "confluent-kafka on %s: %s" % (topic, m.error()))
            got.append(m.value().decode())
        return len(got) >= len(want)

    e.wait_for(read_some, 30, "confluent-kafka to read %s" % topic, every=0)
    cc.close()
    e.check(got == want, "confluent-kafka read %d records of %s, not the %d written" % (len(got), topic, len(want)))


def kafka_python_read(topic, want):
    from kafka import KafkaConsumer
    kc = KafkaConsumer(topic, bootstrap_servers=BOOT, auto_offset_reset="earliest", enable_auto_commit=False,
                       consumer_timeout_ms=20000)
    got = []
    for m in kc:
        got.append(m.value.decode())
        if len(got) >= len(want):
            break
    kc.close()
    e.check(got == want, "kafka-python read %d records of %s, not the %d written" % (len(got), topic, len(want)))


def main():
    global PORT, BOOT
    for mod, pkg in (("confluent_kafka", "python3-confluent-kafka"), ("kafka", "python3-kafka"),
                     ("lz4.frame", "python3-lz4")):
        try:
            __import__(mod)
        except ImportError:
            e.fail("%s (Debian package %s) is missing: scripts/setup installs it" % (mod, pkg))
    if not os.path.exists(KCAT):
        e.fail("kcat is missing: scripts/setup installs it")
    d = e.tmpdir("kafka-codecs")
    PORT = e.free_port()
    BOOT = "127.0.0.1:%d" % PORT
    daemon = e.Daemon("data_dir: @DATA@\nbrokers: []\nmappings: []\nkafka:\n  listen: \"%s\"\n" % BOOT, d=d)
    want = {}
    for codec in CODECS:
        topic = "z-" + codec
        want[topic] = values(codec)
        e.run([e.MQLOG, "create", "-d", daemon.data, topic, "--partitions", "1"])
        p = subprocess.run([e.MQLOG, "produce", "-d", daemon.data, topic, "-p", "0", "-z", codec],
                           input="\n".join(want[topic]) + "\n", text=True, capture_output=True, timeout=120)
        e.check(p.returncode == 0, "mqlog produce -z %s: %s" % (codec, p.stderr))
    # Recompacted segments: the writer rewrites each 64 KiB segment of topic rc as it closes; record n is
    # "r<n>". It drives the log without the catalog, so `mqlog verify --repair` adds the topic's row.
    p = subprocess.run([os.environ["MQ_RECOMPACT_WRITER"], daemon.data, "5000"], capture_output=True, text=True,
                       timeout=120)
    e.check(p.returncode == 0, "mq_recompact_writer: %s" % p.stderr)
    e.check("recompacted with zstd" in p.stderr, "no segment of rc was recompacted: %s" % p.stderr)
    rc_end = int(p.stdout.split()[-3])
    e.run([e.MQLOG, "verify", "--repair", "-d", daemon.data])
    want["rc"] = ["r%d" % i for i in range(rc_end)]
    daemon.start()

    for topic in want:
        kcat_read(topic, want[topic])
        confluent_read(topic, want[topic])
    e.log("kcat and confluent-kafka read every record of lz4, zstd, gzip and snappy batches, and of "
          "recompacted segments")
    for topic in ("z-lz4", "z-gzip"):
        kafka_python_read(topic, want[topic])
    e.log("kafka-python 2.0.2 read every record of lz4 and gzip batches")

    # Fetch v4: the stored bytes, byte for byte; zstd refused below v10 as Kafka refuses it.
    err, records = fetch_raw(PORT, 4, "z-lz4")
    seg = sorted(glob.glob(os.path.join(daemon.data, "z-lz4-0", "*.log")))[0]
    with open(seg, "rb") as f:
        stored = f.read()
    e.check(err == 0 and len(records) > 0 and stored.startswith(records),
            "Fetch v4 of z-lz4: error %d, %d bytes, not the segment's" % (err, len(records)))
    e.check(struct.unpack_from(">h", records, 21)[0] & 7 == 3, "Fetch v4 of z-lz4: the batch is not lz4")
    err, _ = fetch_raw(PORT, 4, "z-zstd")
    e.check(err == UNSUPPORTED_COMPRESSION_TYPE, "Fetch v4 of z-zstd: error %d, expected 76" % err)
    # Fetch v3: decompressed and converted; zstd refused.
    err, data = fetch_raw(PORT, 3, "z-lz4")
    got = messages_v1(data)
    e.check(err == 0 and len(got) > 0 and got == want["z-lz4"][:len(got)],
            "Fetch v3 of z-lz4: error %d, %d messages not as written" % (err, len(got)))
    err, _ = fetch_raw(PORT, 3, "z-zstd")
    e.check(err == UNSUPPORTED_COMPRESSION_TYPE, "Fetch v3 of z-zstd: error %d, expected 76" % err)
    e.log("Fetch v4 serves lz4 batches as stored, v3 down-converts them; zstd below v10: error 76")
    e.check(daemon.alive(), "mqlogd died")
    daemon.stop()
    e.log("test_kafka_codecs: all passed")


if __name__ == "__main__":
    main()
