"""test_e2e_kafka_live.py - the whole gateway live: mqlogd ingests from a private mosquitto while kcat, a real
Kafka consumer, reads the same log topic from mqlogd's Kafka endpoint. kcat starts first, reads the few probe
records stored so far and long-polls at the end; every message published over MQTT (QoS 1, several MQTT topics)
must reach it exactly once, per MQTT topic in publishing order, with the key and the mqtt.* headers the
log stored. Then a second kcat reads the topic from the beginning with -e and gets the same records.
"""
import json
import os
import shutil
import subprocess
import time

import e2e_lib as e

N = e.scaled(20000)
TOPICS = 16
KCAT = shutil.which("kcat") or "/usr/bin/kcat"


def kcat_records(text):
    """kcat -J lines -> records shaped like `mqlog consume --format json` (for e2e_lib.check_stream)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        hdrs = m.get("headers") or []
        out.append({"partition": m["partition"], "offset": m["offset"], "key": m["key"], "value": m["payload"],
                    "headers": [{"key": hdrs[i], "value": hdrs[i + 1]} for i in range(0, len(hdrs), 2)]})
    return out


def main():
    if not os.path.exists(KCAT):
        e.fail("kcat is not installed (scripts/setup installs it)")
    broker = e.Broker()
    kafka_port = e.free_port()
    d = e.Daemon(e.config([e.broker(broker.port, "paho", "live-kcat")],
                          [e.mapping("e2e/#", "live", qos=1, partitions=4, key="topic")],
                          kafka={"listen": "127.0.0.1:%d" % kafka_port}))
    d.start()
    probes = e.wait_subscribed(broker.port, d.data, "live", 1, 5)
    bootstrap = "127.0.0.1:%d" % kafka_port
    # From the beginning (only the probes are stored yet), then long-polling at the end while the stream
    # is ingested; -c: exit after the probes and the N messages.
    follow = e.spawn([KCAT, "-C", "-b", bootstrap, "-t", "live", "-o", "beginning", "-c", str(N + probes), "-J",
                      "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    e.publish(broker.port, N, qos=1, version=5, topics=TOPICS, size=120, first=0)
    try:
        out, err = follow.communicate(timeout=60 + N / 1000)
    except subprocess.TimeoutExpired:
        follow.kill()
        out, err = follow.communicate()
        got = kcat_records(out)
        e.fail("kcat received %d of %d records within the deadline (mqlogd stored %d)\n%s" %
               (len(got), N, e.stored(d.data, "live") - probes, err[-2000:]))
    t = time.monotonic() - t0
    live = kcat_records(out)
    if len(live) != N + probes:
        e.fail("kcat -c %d returned %d records: %s" % (N + probes, len(live), err[-2000:]))
    e.check_stream(live, N, TOPICS, qos=1, broker="local", exact=True, size=120)
    e.log("live: kcat received all %d messages while mqlogd ingested them (%.2fs, %.0f msg/s), each once, in "
          "per-topic order, with keys and headers" % (N, t, N / t))

    # The same records from the beginning, as a late consumer sees them.
    p = e.run([KCAT, "-C", "-b", bootstrap, "-t", "live", "-o", "beginning", "-e", "-J", "-q"], timeout=120)
    again = kcat_records(p.stdout)
    if len(again) != N + probes:
        e.fail("kcat -o beginning -e read %d records, expected %d + %d probes" % (len(again), N, probes))
    e.check_stream(again, N, TOPICS, qos=1, broker="local", exact=True, size=120)
    stored = {(r["partition"], r["offset"]): r["value"] for r in e.consume(d.data, "live")}
    for r in again:
        if stored.get((r["partition"], r["offset"])) != r["value"]:
            e.fail("kcat's record at %s/%s differs from the stored one" % (r["partition"], r["offset"]))
    d.stop()
    broker.stop()
    e.log("PASS: %d messages live through MQTT -> mqlogd -> Kafka endpoint -> kcat, and again from the beginning"
          % N)


main()
