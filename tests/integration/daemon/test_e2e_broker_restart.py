"""test_e2e_broker_restart.py CONNECTOR - the broker restarted in the middle of a QoS 1 stream: mqlogd (with
a persistent session) reconnects by itself and nothing is lost.

A publisher with a persistent session streams N messages at a fixed rate; when part of them is stored, the
broker is stopped (it saves its sessions and queues) and started again on the same port; the publisher and
mqlogd both reconnect. Afterwards every message must be in the log, first occurrences in per-topic order.
QoS 1 allows a message to arrive twice (a PUBACK lost with the connection): duplicates are counted and
reported, not failed. mqlogd must have connected at least twice and stop with exit status 0.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as e  # noqa: E402

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "paho"
N = e.scaled(20000)
RATE = 4000
TOPICS = 20


def run(version):
    broker = e.Broker()
    d = e.Daemon(f"""
data_dir: "@DATA@"
brokers:
  - name: local
    url: mqtt://127.0.0.1:{broker.port}
    client: {CONNECTOR}
    client_id: restart-{CONNECTOR}-{version}
    protocol: {"5" if version == 5 else "3.1.1"}
    clean_session: false
    durable_ack: {"true" if CONNECTOR == "paho" else "false"}
    reconnect_min: 100ms
    reconnect_max: 1s
mappings:
  - from: "e2e/#"
    to: e2e
    qos: 1
    partitions: 2
""")
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
    try:
        rc = pub.wait(120)
    except Exception:
        e.fail("the publisher did not finish")
    if rc != 0:
        e.fail("the publisher failed: %s" % pub.stderr.read())
    d.stop()
    recs = e.consume(d.data, "e2e")
    dups = e.check_stream(recs, N, TOPICS, qos=1, broker="local", exact=False)
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
