"""test_e2e_crash.py [paho|mosquitto] - mqlogd killed with SIGKILL again and again in the middle of a QoS 1 stream, and
restarted each time: with durable acknowledgement nothing the broker handed over is lost.

mqlogd runs the given connector with a persistent session, QoS 1 and durable_ack true: it acknowledges a
message only once its record is durable (paho one message at a time, mosquitto a read batch per group
commit), so a message whose PUBACK never went out is still the broker's,
and the broker delivers it again to the next mqlogd. A publisher with a persistent session streams N
messages at a fixed rate. KILLS times, when the stored count passes the next of KILLS evenly spaced marks
(progress, not time), mqlogd is killed with SIGKILL (no flush, no recovery point) and started again at
once on the same data directory, which it recovers.

Afterwards every message must be in the log (a QoS 1 message may be stored twice: durable but killed
before its PUBACK went out; duplicates are counted, not failed), first occurrences in per-topic order; the
last mqlogd stops on SIGTERM with exit status 0 and `mqlog verify` is clean.
"""
import re
import sys
import time

import e2e_lib as e

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "paho"
N = e.scaled(30000, minimum=3000)
RATE = 2500 if e.SCALE >= 1 else 600  # the stream lasts about 12 s (5 s under sanitizers)
TOPICS = 20
KILLS = 5


def main():
    t0 = time.monotonic()
    broker = e.Broker()
    d = e.Daemon(e.config([e.broker(broker.port, CONNECTOR, "crash-" + CONNECTOR, durable_ack=True,
                                    reconnect_min="100ms", reconnect_max="1s")],
                          [e.mapping("e2e/#", "e2e", qos=1, partitions=3, key="topic")],
                          log={"flush_interval_ms": 5, "segment_bytes": "256KiB"}))
    d.start()
    probes = e.wait_subscribed(broker.port, d.data, "e2e", 1, 5)
    pub = e.publish(broker.port, N, qos=1, version=5, topics=TOPICS, client_id="crash-pub", rate=RATE,
                    background=True, timeout=240)

    def alive():
        if not d.alive():
            e.fail("mqlogd died by itself:\n" + d.log()[-3000:])
        if pub.poll() is not None and pub.returncode != 0:
            e.fail("the publisher failed: %s" % pub.stderr.read())

    at = []
    for i in range(KILLS):
        mark = probes + N * (i + 1) // (KILLS + 2)

        def reached():
            alive()
            return e.stored(d.data, "e2e") >= mark

        e.wait_for(reached, 60, "%d records stored before kill %d" % (mark, i + 1), every=0.01)
        d.kill()
        n = e.stored(d.data, "e2e")
        at.append("%d@%.1fs" % (n, time.monotonic() - t0))
        if n >= N + probes:
            e.fail("kill %d came after the whole stream was stored: not in the middle of it" % (i + 1))
        d.start()

    recs = e.wait_complete(d.data, "e2e", N, timeout=120, alive=alive)
    t_done = time.monotonic() - t0
    e.wait_publisher(pub)
    d.stop()
    e.run([e.MQLOG, "verify", "-d", d.data])
    recs = e.consume(d.data, "e2e")
    dups = e.check_stream(recs, N, TOPICS, qos=1, broker="local", exact=False)
    log = d.log()
    recovered = len(re.findall(r"recovered \d+ batches after the recovery point", log))
    truncated = len(re.findall(r"truncating the tail after offset", log))
    if d.starts != KILLS + 1:
        e.fail("mqlogd started %d times, expected %d" % (d.starts, KILLS + 1))
    broker.stop()
    e.log("PASS: %s, %d messages at %d/s over %d topics, SIGKILL %d times (records stored @ time: %s), restarted "
          "each time: none missing (all stored at %.1fs), %d duplicates (QoS 1 redelivery), %d records in all; %d "
          "partition recoveries, %d torn tails cut; SIGTERM exit 0, verify clean (%.1fs)" %
          (CONNECTOR, N, RATE, TOPICS, KILLS, ", ".join(at), t_done, dups, len(recs), recovered, truncated,
           time.monotonic() - t0))


main()
