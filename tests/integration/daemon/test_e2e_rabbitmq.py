"""test_e2e_rabbitmq.py CONNECTOR... - end to end against RabbitMQ's MQTT plugin instead of mosquitto: a
private RabbitMQ node (e2e_lib.RabbitMQ, started once for the whole run: it takes about 13 s), then for each
connector named (paho, mosquitto) and QoS 0 and 1 over MQTT 3.1.1 (the only version RabbitMQ 3.10 speaks),
mqlogd with a persistent session and N messages over many MQTT topics published by mq_pub; every message
must end up in the log exactly once, in per-topic order, with its headers (mqtt.topic, mqtt.qos, mqtt.retain,
mqtt.broker) and its key, and mqlogd must stop on SIGTERM with exit status 0.

QoS 2: RabbitMQ 3.10 has none. It grants a QoS 2 subscription QoS 1, and it answers a QoS 2 PUBLISH with
PUBACK, which a client takes for a protocol error, so nobody can publish at QoS 2 to it. A QoS 2 mapping must
still work, honestly: with the messages published at QoS 1, the connector logs that the subscription was
granted QoS 1 instead of 2 and the records carry mqtt.qos 1 (the QoS they were delivered with), every message
once and in order. The stream then is a QoS 1 stream again, so this case sends a quarter of N.

Crash: for each connector, QoS 1, mqlogd killed with SIGKILL three times in the middle of a stream (when
a quarter, a half and three quarters of it are stored) and restarted at once. The plugin renumbers its
redeliveries (packet ids count from 1 on each connection: test_broker_redelivery), so the broker is
configured with dedup: payload, which recognises a redelivery by DUP (for client mosquitto: among the
first max_inflight = mqtt.prefetch messages after the reconnect) and its topic and payload; the test's
payloads are numbered, hence distinct. Nothing may be missing and nothing stored twice; the count of
duplicates is printed.

Each case has its own MQTT topic prefix and client id, so that the persistent session of one case (a durable
queue in RabbitMQ) never collects the messages of the next. The test fails, not skips, when RabbitMQ is not
installed. MQ_E2E_MESSAGES sets N (default 20000, scaled by MQ_E2E_SCALE).
"""
import os
import sys
import time

import e2e_lib as e

CONNECTORS = sys.argv[1:] or ["paho", "mosquitto"]
N = e.scaled(int(os.environ.get("MQ_E2E_MESSAGES", "20000")))
N_QOS2 = max(200, N // 4)
TOPICS = 50
SIZE = 100
STALL = 30  # seconds without a new record in the log before a case fails
N_CRASH = max(200, N // 2)
CRASH_RATE = max(1, N_CRASH // 10)  # the crash case's stream lasts 10 s at every scale


def config(port, connector, qos, prefix):
    return e.config([e.broker(port, connector, "e2e-rmq-%s-%d" % (connector, qos), name="rabbitmq", version=311,
                              durable_ack=True)],
                    [e.mapping(prefix + "/#", "e2e", qos=qos, partitions=4, key="topic")])


def one(rmq, connector, qos):
    prefix = "rmq/%s/q%d" % (connector, qos)
    granted = min(qos, 1)  # RabbitMQ's highest QoS, for publishing and for subscriptions
    n = N_QOS2 if qos == 2 else N
    d = e.Daemon(config(rmq.port, connector, qos, prefix))
    d.start()

    def alive():
        if not d.alive():
            e.fail("mqlogd exited with %s:\n%s" % (d.proc.returncode, d.log()[-3000:]))

    probes = e.wait_subscribed(rmq.port, d.data, "e2e", granted, 311, prefix=prefix)
    t0 = time.monotonic()
    e.publish(rmq.port, n, qos=granted, version=311, topics=TOPICS, size=SIZE, prefix=prefix)
    t_pub = time.monotonic() - t0

    # Paho with durable_ack waits for a group commit per message, so on a busy machine (CI running other tests
    # beside this one) the rate varies tenfold: the deadline is on progress, not on the whole stream.
    progress = {"count": -1, "since": time.monotonic()}

    def complete():
        alive()
        count = e.stored(d.data, "e2e")
        if count != progress["count"]:
            progress.update(count=count, since=time.monotonic())
        elif time.monotonic() - progress["since"] > STALL:
            e.fail("%s QoS %d: no new record for %ds, %d of %d in the log:\n%s" %
                   (connector, qos, STALL, count, n + probes, d.log()[-3000:]))
        return count >= n + probes

    e.wait_for(complete, 120 + n / 100, "%d records in the log (%s, QoS %d)" % (n + probes, connector, qos),
               every=0.1)
    t_all = time.monotonic() - t0
    d.stop()
    recs = e.consume(d.data, "e2e")
    e.check_stream(recs, n, TOPICS, prefix=prefix, qos=granted, broker="rabbitmq", exact=True, size=SIZE)
    if len(recs) != n + probes:
        e.fail("%d records stored, expected %d messages + %d probes" % (len(recs), n, probes))
    if qos == 2:  # durable_ack over MQTT 3.1.1 subscribes QoS 2 filters at QoS 1, with the redelivery guard
        want = "subscribed at QoS 1"
        if not any(want in line for line in d.log().splitlines()):
            e.fail("%s: no notice that the QoS 2 filter is subscribed at QoS 1:\n%s" %
                   (connector, d.log()[-3000:]))
    e.log("%-9s QoS %d MQTT 3.1.1 on RabbitMQ: %d messages exactly once, in order, headers ok (mqtt.qos %d); "
          "published in %.2fs, stored in %.2fs (%.0f msg/s)" % (connector, qos, n, granted, t_pub, t_all,
                                                                n / t_all))


def crash(rmq, connector, kills=3):
    """mqlogd killed KILLS times mid-stream at QoS 1 (docstring); returns the number of duplicates."""
    prefix = "rmq/%s/crash" % connector
    d = e.Daemon(e.config([e.broker(rmq.port, connector, "e2e-rmq-crash-" + connector, name="rabbitmq", version=311,
                                    durable_ack=True, reconnect_min="100ms", reconnect_max="1s",
                                    dedup="payload", max_inflight=rmq.PREFETCH)],
                          [e.mapping(prefix + "/#", "e2e", qos=1, partitions=4, key="topic")]))
    d.start()
    probes = e.wait_subscribed(rmq.port, d.data, "e2e", 1, 311, prefix=prefix)
    t0 = time.monotonic()
    pub = e.publish(rmq.port, N_CRASH, qos=1, version=311, topics=TOPICS, size=SIZE, prefix=prefix,
                    client_id="e2e-rmq-crash-pub-" + connector, rate=CRASH_RATE, background=True, timeout=240)

    def alive():
        if not d.alive():
            e.fail("%s crash: mqlogd died by itself:\n%s" % (connector, d.log()[-3000:]))
        if pub.poll() is not None and pub.returncode != 0:
            e.fail("%s crash: the publisher failed: %s" % (connector, pub.stderr.read()))

    at = []
    for i in range(kills):
        mark = probes + N_CRASH * (i + 1) // (kills + 1)

        def reached():
            alive()
            return e.stored(d.data, "e2e") >= mark

        e.wait_for(reached, 120, "%d records stored before kill %d (%s)" % (mark, i + 1, connector), every=0.01)
        d.kill()
        n = e.stored(d.data, "e2e") - probes
        at.append("%d@%.1fs" % (n, time.monotonic() - t0))
        if n >= N_CRASH:
            e.fail("%s crash: kill %d came after the whole stream was stored" % (connector, i + 1))
        d.start()
    e.wait_complete(d.data, "e2e", N_CRASH, prefix=prefix, timeout=120 + N_CRASH / 100, alive=alive, stall=STALL)
    t_all = time.monotonic() - t0
    e.wait_publisher(pub, connector + " crash")
    d.stop()
    e.run([e.MQLOG, "verify", "-d", d.data])
    recs = e.consume(d.data, "e2e")
    dups = e.check_stream(recs, N_CRASH, TOPICS, prefix=prefix, qos=1, broker="rabbitmq", exact=False, size=SIZE)
    bound = 0  # dedup: payload recognises every redelivery of a stored message (distinct payloads)
    if dups > bound:
        e.fail("%s crash on RabbitMQ: none missing, but %d duplicates" % (connector, dups))
    recognised = d.log().count("redelivers messages stored before")  # restarts that met a redelivery
    e.log("%-9s QoS 1 MQTT 3.1.1 on RabbitMQ, SIGKILL %d times (records stored @ time: %s): %d messages, 0 "
          "missing, %d duplicate%s (at most %d allowed; %d of %d restarts met redeliveries of stored messages "
          "and recognised them), all stored in %.1fs" %
          (connector, kills, ", ".join(at), N_CRASH, dups, "" if dups == 1 else "s", bound, recognised, kills,
           t_all))
    return dups


def main():
    t0 = time.monotonic()
    rmq = e.RabbitMQ()
    e.log("RabbitMQ node %s: MQTT on 127.0.0.1:%d, started in %.1fs" % (rmq.node, rmq.port, rmq.start_time))
    dups = {}
    for connector in CONNECTORS:
        for qos in (0, 1, 2):
            one(rmq, connector, qos)
        dups[connector] = crash(rmq, connector)
    t_stop = time.monotonic()
    rmq.stop()
    e.log("RabbitMQ stopped in %.1fs, no process left behind" % (time.monotonic() - t_stop))
    e.log("PASS: %s, QoS 0 and 1 over MQTT 3.1.1 on RabbitMQ with %d messages each, QoS 2 (granted 1) with %d; "
          "SIGKILL 3 times in a QoS 1 stream of %d: 0 missing, duplicates %s; %.1fs in all" %
          (", ".join(CONNECTORS), N, N_QOS2, N_CRASH, ", ".join("%s %d" % kv for kv in dups.items()),
           time.monotonic() - t0))


main()
