#!/usr/bin/env python3
"""test_forward_roundtrip.py [CONNECTOR] - store and forward end to end: mqlogd ingests a stream from mosquitto
into two log topics of 4 partitions each while a forwarder (exactly_once, the defaults of issue 9 otherwise:
partitioning same, to "{site}.{topic}", zstd) copies them to a central Kafka cluster (mq_kafka_mock, 3
brokers). A librdkafka consumer (read_remote, read_committed) then finds every local record on the remote
topic exactly once, on the remote partition of its local number, in local offset order, with identical key,
value, CreateTime and headers, plus mqlog.site, mqlog.topic, mqlog.partition and mqlog.offset naming where it
is stored at the edge. The mock cluster has no CreateTopics: the test creates the remote topics.
"""
import sys
import time

import e2e_lib as e

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "mosquitto"
N = e.scaled(100000, minimum=10000)  # in all, half on each topic
TOPICS = {"fa": "telemetry.a", "fb": "telemetry.b"}  # MQTT prefix -> local log topic
PARTITIONS = 4
TOPICS_PER_PREFIX = 40  # MQTT topics per log topic (the key): spread evenly enough over the partitions
SITE = "plant-7"


def main():
    t0 = time.monotonic()
    mock = e.KafkaMock(brokers=3)
    for local in TOPICS.values():
        mock.create("%s.%s" % (SITE, local), PARTITIONS)
    broker = e.Broker()
    d = e.Daemon(e.config(
        [e.broker(broker.port, CONNECTOR, "fwd-roundtrip", durable_ack=True)],
        [e.mapping(prefix + "/#", local, qos=1, partitions=PARTITIONS, key="topic") for prefix, local in TOPICS.items()],
        site=SITE,
        forward=[e.forwarder("central", mock.bootstrap, ["telemetry.*"], mode="exactly_once",
                             properties={"linger.ms": "20"})]))
    d.start()
    for prefix, local in TOPICS.items():
        e.wait_subscribed(broker.port, d.data, local, 1, 5, prefix=prefix)

    def alive():
        if not d.alive():
            e.fail("mqlogd died:\n" + d.log()[-3000:])

    pubs = [e.publish(broker.port, N // 2, qos=1, version=5, topics=TOPICS_PER_PREFIX, prefix=prefix, size=100,
                      client_id="fwd-pub-" + prefix, background=True, timeout=240) for prefix in TOPICS]
    for prefix, pub in zip(TOPICS, pubs):
        e.wait_publisher(pub, prefix, timeout=300)
    t_pub = time.monotonic() - t0
    local = {}
    for prefix, topic in TOPICS.items():
        local[topic] = e.wait_complete(d.data, topic, N // 2, prefix=prefix, timeout=120, alive=alive)
        e.check_stream(local[topic], N // 2, TOPICS_PER_PREFIX, prefix=prefix, qos=1, exact=False)
    e.log("all stored at %.1fs" % (time.monotonic() - t0))
    for prefix, topic in TOPICS.items():
        remote_topic = "%s.%s" % (SITE, topic)
        remote = e.wait_forwarded(mock.bootstrap, remote_topic, local[topic], timeout=180, alive=alive)
        e.log("%s: all forwarded at %.1fs" % (remote_topic, time.monotonic() - t0))
        e.check_forwarded(local[topic], remote, SITE, topic, exact=True, label=remote_topic)
        per_part = {}
        for r in remote:
            per_part[r["partition"]] = per_part.get(r["partition"], 0) + 1
        e.log("%s: %d records, exactly once, per partition %s" % (remote_topic, len(remote),
                                                                  [per_part.get(p, 0) for p in range(PARTITIONS)]))
    t_done = time.monotonic() - t0
    d.stop()
    broker.stop()
    mock.stop()
    e.log("PASS: %d messages over 2 topics x %d partitions published in %.1fs, all forwarded exactly once with "
          "their key, value, timestamp and headers at %.1fs (%.1fs in all)" %
          (N, PARTITIONS, t_pub, t_done, time.monotonic() - t0))


main()
