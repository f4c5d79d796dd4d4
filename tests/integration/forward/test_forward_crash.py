#!/usr/bin/env python3
"""test_forward_crash.py MODE [CONNECTOR] - mqlogd killed with SIGKILL 5 times while it ingests a stream and
forwards it to a central Kafka cluster (mq_kafka_mock), restarted each time on the same data directory.
MODE is the forwarder's mode: exactly_once or at_least_once.

The stream (QoS 1, persistent sessions, durable_ack) is published at a fixed rate into one log topic of 8
partitions; the kills come at evenly spaced marks of the stored count, so each lands while records are being
forwarded. Afterwards every record of the local log (QoS 1 redelivery may store a message twice locally; that
is ingest's business, each local record counts on its own) must be on the remote topic, counted by its
mqlog.partition and mqlog.offset headers:
  - exactly_once: each exactly once, in local offset order per partition (the forwarder resumes after the
    mqlog.offset of the last record on each remote partition, in a new transaction that fences the old one);
  - at_least_once: none missing, first occurrences in order; the repeats (records delivered again after a
    restart from the catalog checkpoint) are counted and printed.
Key, value, timestamp and headers are compared as in the round trip test.
"""
import sys
import time

import e2e_lib as e

MODE = sys.argv[1] if len(sys.argv) > 1 else "exactly_once"
CONNECTOR = sys.argv[2] if len(sys.argv) > 2 else "mosquitto"
if MODE not in ("exactly_once", "at_least_once"):
    e.fail("usage: test_forward_crash.py exactly_once|at_least_once [CONNECTOR]")
N = e.scaled(100000, minimum=10000)
RATE = int(N / 25)  # the stream lasts about 25 s at every scale
TOPIC = "telemetry"
PARTITIONS = 8  # ~13k records per partition: well below the mock's ~5 MiB per partition
SITE = "edge-crash"
REMOTE = "%s.%s" % (SITE, TOPIC)
KILLS = 5


def main():
    t0 = time.monotonic()
    mock = e.KafkaMock(brokers=3, topics={REMOTE: PARTITIONS})
    broker = e.Broker()
    d = e.Daemon(e.config(
        [e.broker(broker.port, CONNECTOR, "fwd-crash", durable_ack=True, reconnect_min="100ms",
                  reconnect_max="1s")],
        [e.mapping("e2e/#", TOPIC, qos=1, partitions=PARTITIONS, key="topic")],
        site=SITE,
        forward=[e.forwarder("central", mock.bootstrap, [TOPIC], mode=MODE, properties={"linger.ms": "20"})]))
    d.start()
    e.wait_subscribed(broker.port, d.data, TOPIC, 1, 5)
    pub = e.publish(broker.port, N, qos=1, version=5, topics=20, size=100, client_id="fwd-crash-pub", rate=RATE,
                    background=True, timeout=240)

    def alive():
        if not d.alive():
            e.fail("mqlogd died by itself:\n" + d.log()[-3000:])
        if pub.poll() is not None and pub.returncode != 0:
            e.fail("the publisher failed: %s" % pub.stderr.read())

    at = []
    for i in range(KILLS):
        mark = N * (i + 1) // (KILLS + 2)
        e.wait_for(lambda: alive() or e.stored(d.data, TOPIC) >= mark, 90,
                   "%d records stored before kill %d" % (mark, i + 1), every=0.05)
        d.kill()
        n = e.stored(d.data, TOPIC)
        remote = sum(hi - lo for lo, hi in e.remote_offsets(mock.bootstrap, REMOTE).values())
        at.append("%d/%d@%.1fs" % (n, remote, time.monotonic() - t0))
        if n >= N:
            e.fail("kill %d came after the whole stream was stored: not in the middle of it" % (i + 1))
        d.start()

    e.wait_publisher(pub, timeout=300)
    e.wait_complete(d.data, TOPIC, N, timeout=120, alive=alive)
    local = e.consume(d.data, TOPIC)
    remote = e.wait_forwarded(mock.bootstrap, REMOTE, local, timeout=180, alive=alive)
    t_done = time.monotonic() - t0
    dups = e.check_forwarded(local, remote, SITE, TOPIC, exact=(MODE == "exactly_once"), label=REMOTE)
    d.stop()
    broker.stop()
    mock.stop()
    e.log("PASS: %s, %d messages at %d/s, SIGKILL %d times (stored/forwarded @ time: %s): %d local records, "
          "none missing on the remote topic, %d duplicates (%d remote records), all there at %.1fs (%.1fs in all)" %
          (MODE, N, RATE, KILLS, ", ".join(at), len(local), dups, len(remote), t_done, time.monotonic() - t0))


main()
