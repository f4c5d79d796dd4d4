#!/usr/bin/env python3
"""test_forward_outage.py CASE [CONNECTOR] - the central Kafka cluster (mq_kafka_mock, 3 brokers) fails in the
middle of a stream that mqlogd ingests from mosquitto and forwards with mode exactly_once. CASE:
  down    every broker refuses connections for 20 s, then comes back;
  rtt     every broker answers 2 s late, for 10 s;
  errors  the next 50 Produce requests (ApiKey 0) on any broker have their connection closed instead of an
          answer (_TRANSPORT), as a flaky WAN link would.
The fault starts once a fifth of the stream is stored. Throughout, MQTT ingest must go on: the stored count
keeps growing at the publisher's rate (it never stands still for more than 3 s while the publisher runs), and
the publisher finishes on time. Once the fault is over every local record must be on the remote topic
exactly once, in local offset order, as in the round trip test (zero missing, zero duplicates by
mqlog.partition and mqlog.offset).
"""
import sys
import time

import e2e_lib as e

CASE = sys.argv[1] if len(sys.argv) > 1 else "down"
CONNECTOR = sys.argv[2] if len(sys.argv) > 2 else "mosquitto"
if CASE not in ("down", "rtt", "errors"):
    e.fail("usage: test_forward_outage.py down|rtt|errors [CONNECTOR]")
FAULT = {"down": 20, "rtt": 10, "errors": 0}[CASE]  # seconds the fault lasts
# Seconds the stream lasts at every scale: the fault starts once a fifth is stored and ends inside it.
STREAM = {"down": 32, "rtt": 20, "errors": 15}[CASE]
N = e.scaled(1333 * STREAM, minimum=180 * STREAM)
RATE = int(N / STREAM)
TOPIC = "telemetry"
PARTITIONS = 4
SITE = "edge-outage"
REMOTE = "%s.%s" % (SITE, TOPIC)
STALL = 3.0  # longest time the stored count may stand still while the publisher runs


class IngestWatch:
    """Samples the stored count of TOPIC and fails the test when it stands still for more than STALL seconds
    while the publisher is still running."""

    def __init__(self, d, pub):
        self.d, self.pub = d, pub
        self.count = e.stored(d.data, TOPIC)
        self.since = time.monotonic()
        self.longest = 0.0

    def poll(self):
        if not self.d.alive():
            e.fail("mqlogd died:\n" + self.d.log()[-3000:])
        if self.pub.poll() is not None:
            if self.pub.returncode != 0:
                e.fail("the publisher failed: %s" % self.pub.stderr.read())
            return
        now = time.monotonic()
        n = e.stored(self.d.data, TOPIC)
        if n > self.count:
            self.count, self.since = n, now
        self.longest = max(self.longest, now - self.since)
        if now - self.since > STALL:
            e.fail("MQTT ingest stood still for %.1fs at %d records during the %s fault" % (now - self.since, n, CASE))

    def wait(self, seconds):
        """Keeps watching for SECONDS (the fault's duration: the test's clock, not a synchronisation)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
            time.sleep(0.2)  # sampling interval of the ingest watch


def main():
    t0 = time.monotonic()
    mock = e.KafkaMock(brokers=3, topics={REMOTE: PARTITIONS})
    broker = e.Broker()
    d = e.Daemon(e.config(
        [e.broker(broker.port, CONNECTOR, "fwd-outage", durable_ack=True)],
        [e.mapping("e2e/#", TOPIC, qos=1, partitions=PARTITIONS, key="topic")],
        site=SITE,
        forward=[e.forwarder("central", mock.bootstrap, [TOPIC], mode="exactly_once",
                             properties={"linger.ms": "20"})]))
    d.start()
    e.wait_subscribed(broker.port, d.data, TOPIC, 1, 5)
    pub = e.publish(broker.port, N, qos=1, version=5, topics=20, size=100, client_id="fwd-outage-pub", rate=RATE,
                    background=True, timeout=240)
    watch = IngestWatch(d, pub)
    e.wait_for(lambda: watch.poll() or e.stored(d.data, TOPIC) >= N // 5, 60, "a fifth of the stream stored",
               every=0.2)
    before = sum(hi - lo for lo, hi in e.remote_offsets(mock.bootstrap, REMOTE).values())
    e.check(before > 0, "nothing was forwarded before the fault: the forwarder is not running\n" + d.log()[-3000:])
    t_fault = time.monotonic()
    if CASE == "down":
        mock.command("down all")
        watch.wait(FAULT)
        mock.command("up all")
    elif CASE == "rtt":
        mock.command("rtt all 2000")
        watch.wait(FAULT)
        mock.command("rtt all 0")
    else:
        mock.command("errors 0 50 _TRANSPORT")
    stored_fault = e.stored(d.data, TOPIC)
    e.log("%s: %d records forwarded before the fault, %d stored at its end (%.1fs)" %
          (CASE, before, stored_fault, time.monotonic() - t_fault))
    while pub.poll() is None:
        watch.wait(1)
    e.wait_publisher(pub, timeout=10)
    e.wait_complete(d.data, TOPIC, N, timeout=120, alive=watch.poll)
    local = e.consume(d.data, TOPIC)
    remote = e.wait_forwarded(mock.bootstrap, REMOTE, local, timeout=300, alive=watch.poll)
    t_done = time.monotonic() - t0
    e.check_forwarded(local, remote, SITE, TOPIC, exact=True, label=REMOTE)
    d.stop()
    broker.stop()
    mock.stop()
    e.log("PASS: %s: %d messages at %d/s, ingest never stood still longer than %.1fs; all %d local records "
          "forwarded exactly once at %.1fs (%.1fs in all)" %
          (CASE, N, RATE, watch.longest, len(local), t_done, time.monotonic() - t0))


main()
