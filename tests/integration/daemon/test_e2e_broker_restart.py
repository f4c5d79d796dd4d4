"""test_e2e_broker_restart.py CONNECTOR - the broker restarted in the middle of a QoS 1 stream: mqlogd (with
a persistent session) reconnects by itself and nothing is lost.

A publisher with a persistent session streams N messages at a fixed rate; when part of them is stored, the
broker is stopped (it saves its sessions and queues) and started again on the same port; the publisher and
mqlogd both reconnect. Afterwards every message must be in the log, first occurrences in per-topic order
except for the messages the publisher had in flight when the broker went down (below). QoS 1 allows a
message to arrive twice (a PUBACK lost with the connection): duplicates are counted and reported, not
failed. mqlogd must have connected at least twice and stop with exit status 0.

Order across the restart: MQTT promises per-topic order of QoS 1 messages only to a publisher that keeps
one message in flight (3.1.1 section 4.6, 5.0 section 4.6); mq_pub keeps up to its window (1000, -w) in
flight. Its libmosquitto (2.0.11) sends new messages as soon as it has reconnected and the ones that were
unacknowledged at the restart only later, as duplicates (DUP flag). Seen with MQ_E2E_KEEP=1 and the broker
at log_type all (MQTT 3.1.1, ASan): the publisher's m1295..m1297 (e2e/14..16, seq 64) were lost with the
old connection; after the restart the broker received m1298 onwards (d0) and m1295..m1297 (d1) about 1200
messages later, and forwarded them to mqlogd in that order. The stored first occurrences matched the
broker's delivery order exactly, topic by topic ("out of order: 64 after 111"): neither mqlogd nor the
broker reordered anything. So such late messages are allowed, but only ones that could all have been in
flight at once (published fewer than the window apart); everything else must keep its order.
"""
import sys
import time

import e2e_lib as e

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "paho"
N = e.scaled(20000)
# The stream lasts STREAM_S seconds at every scale: the ASan leg scales N down, and at a fixed rate its
# whole stream could be stored while the test was still polling for a quarter of it.
STREAM_S = 5
RATE = max(1, N // STREAM_S)
TOPICS = 20
PUB_WINDOW = 1000  # mq_pub's default -w: the most messages it has unacknowledged at once


def run(version):
    broker = e.Broker()
    d = e.Daemon(e.config([e.broker(broker.port, CONNECTOR, "restart-%s-%d" % (CONNECTOR, version), version=version,
                                    durable_ack=True, reconnect_min="100ms", reconnect_max="1s")],
                          [e.mapping("e2e/#", "e2e", qos=1, partitions=2)], log=None))
    d.start()
    e.wait_subscribed(broker.port, d.data, "e2e", 1, version)
    pub = e.publish(broker.port, N, qos=1, version=version, topics=TOPICS, client_id="restart-pub-%d" % version,
                    rate=RATE, background=True, timeout=120)
    e.wait_for(lambda: e.stored(d.data, "e2e") > N // 4, 60, "a quarter of the stream to be stored")
    before = e.stored(d.data, "e2e")
    broker.restart()
    e.log("broker restarted with %d of %d records stored" % (before, N))
    if before >= N:
        e.fail("the whole stream was stored before the restart: the test did not restart mid-stream")

    def alive():
        if not d.alive():
            e.fail("mqlogd died:\n" + d.log()[-3000:])

    recs = e.wait_complete(d.data, "e2e", N, timeout=120, alive=alive)
    e.wait_publisher(pub)
    d.stop()
    recs = e.consume(d.data, "e2e")
    # late_window: the publisher resends what was in flight at the restart after newer messages (docstring)
    dups = e.check_stream(recs, N, TOPICS, qos=1, broker="local", exact=False, late_window=PUB_WINDOW)
    log = d.log()
    if log.count("connected to") < 2 and "connects" not in log:
        e.fail("mqlogd did not reconnect:\n" + log[-3000:])
    e.log("%s MQTT %s: broker restarted mid-stream: %d messages, none missing, %d duplicate%s (QoS 1 "
          "redelivery)" % (CONNECTOR, "5" if version == 5 else "3.1.1", N, dups, "" if dups == 1 else "s"))
    broker.stop()
    return dups


def main():
    t0 = time.monotonic()
    dups = run(5) + run(311)
    e.log("PASS: %s broker restart, 2 runs of %d messages, %d duplicates in all (%.1fs)" %
          (CONNECTOR, N, dups, time.monotonic() - t0))


main()
