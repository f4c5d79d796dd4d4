"""test_e2e_partitions.py - a QoS 1 durable ingest over 1,000 log topics completes with nothing missing
(issue 13): one log topic per device, as a site maps it.

A private mosquitto, mqlogd with the mosquitto client, durable_ack on and one mapping `sensors/+ -> dev.{1}`
(key: the MQTT topic), and the test publisher mq_pub sending N numbered QoS 1 messages of 100 bytes over 1,000
MQTT topics sensors/0 .. sensors/999 (tests/bench/partitions measures the same stream's rate). Once every
message is stored, mqlogd stops on SIGTERM and the whole log is read back with `mqlog consume 'dev.*'`: each
message exactly once, in its topic's order, in log topic dev.T of its MQTT topic sensors/T, with its headers;
1,000 log topics of one partition and nothing else but the probe's.

N is 10,000 (MQ_E2E_MESSAGES overrides it; the sanitizer builds send 2,000). On a loaded 2-core machine the
plain build stores them in 12-17 s, most of it creating the 1,000 topics (5,000 messages take 11.5 s); the
waits have deadlines, nothing is timed, so the ASan leg runs it too (33 s); TSan's deadlock detector cannot
follow mqlogd's flusher over 1,000 partitions (tests/CMakeLists.txt).
"""
import os
import re
import time

import e2e_lib as e

TOPICS = 1000
N = e.scaled(int(os.environ.get("MQ_E2E_MESSAGES", "10000")), minimum=2 * TOPICS)
SIZE = 100


def main():
    start = time.monotonic()
    broker = e.Broker()
    d = e.Daemon(e.config([e.broker(broker.port, "mosquitto", "e2e-partitions", durable_ack=True)],
                          [e.mapping("sensors/+", "dev.{1}", qos=1, key="topic")]))
    d.start()
    # the probe's MQTT topic sensors/probe maps to a log topic of its own, dev.probe
    probes = e.wait_subscribed(broker.port, d.data, "dev.probe", 1, 5, prefix="sensors")
    t0 = time.monotonic()
    e.publish(broker.port, N, qos=1, version=5, topics=TOPICS, prefix="sensors", size=SIZE, timeout=240)
    t_pub = time.monotonic() - t0

    def all_stored():
        counts = e.topic_counts(d.data)
        return sum(n for t, n in counts.items() if t != "dev.probe") >= N

    e.wait_for(all_stored, 120 + N / 100, "%d records in the dev.* topics" % N, every=0.2)
    t_all = time.monotonic() - t0
    t_stop = time.monotonic()
    d.stop()
    t_read = time.monotonic()

    counts = e.topic_counts(d.data)
    want = {"dev.%d" % t for t in range(TOPICS)} | {"dev.probe"}
    e.check(set(counts) == want, "log topics: %d, expected dev.0 .. dev.%d and dev.probe; unexpected %s, missing "
            "%s" % (len(counts), TOPICS - 1, sorted(set(counts) - want)[:5], sorted(want - set(counts))[:5]))
    recs = e.consume(d.data, "dev.*")
    for r in recs:
        m = re.fullmatch(r"sensors/(\d+)", e.headers(r).get("mqtt.topic", ""))
        if m and (r.get("topic") != "dev." + m.group(1) or r.get("partition") != 0):
            e.fail("the message of %s stored in %s/%s" % (m.group(0), r.get("topic"), r.get("partition")))
    e.check_stream(recs, N, TOPICS, prefix="sensors", qos=1, broker="local", exact=True, size=SIZE)
    e.check(len(recs) == N + probes, "%d records stored, expected %d messages + %d probes" % (len(recs), N, probes))
    e.log("%d QoS 1 messages over %d log topics exactly once, in order, headers ok; published in %.2fs, stored "
          "in %.2fs (%.0f msg/s); start %.1fs, stop %.1fs, read back and checked in %.1fs" % (
              N, TOPICS, t_pub, t_all, N / t_all, t0 - start, t_read - t_stop, time.monotonic() - t_read))
    broker.stop()


if __name__ == "__main__":
    main()
