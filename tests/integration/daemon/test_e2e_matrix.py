"""test_e2e_matrix.py CONNECTOR - end to end through one connector (paho or mosquitto) for QoS 0, 1, 2 and
MQTT 3.1.1 and 5: a private mosquitto, mqlogd, N messages over many MQTT topics published by mq_pub; every
message must end up in the log exactly once, in per-topic order, with its headers (mqtt.topic, mqtt.qos,
mqtt.retain, mqtt.broker) and its key. Afterwards mqlogd must stop on SIGTERM with exit status 0 and the log
must hold nothing more.

MQ_E2E_MESSAGES sets N (scaled by MQ_E2E_SCALE). The default suite sends 30000 per case (paho acknowledges
one message per flush, about 2,300 QoS 1 messages a second, so N is most of the suite's time); the ctest
configuration `full` (`ctest -C full -L full`) runs the same cases with the original issue's 100000. One
exception: paho at QoS 2 gets at most 60000. With durable_ack paho completes about 1000 QoS 2 messages a second, so the whole
stream queues up in the broker, and Debian 12's mosquitto 2.0.11 reuses packet identifiers still in flight
once more than 65535 are outstanding (its in-flight limit leaks as acknowledgements come back; mosquitto
issue 2301). Paho over MQTT 3.1.1 then loses the message it had answered with PUBREC (README, "Running it at
a site"); 60000 stays below the identifier space. MQ_E2E_PAHO_QOS2 overrides that cap to show the failure.
"""
import os
import sys
import time

import e2e_lib as e

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "paho"
N = e.scaled(int(os.environ.get("MQ_E2E_MESSAGES", "30000")))
PAHO_QOS2_MAX = e.scaled(int(os.environ.get("MQ_E2E_PAHO_QOS2", "60000")))
TOPICS = 50
SIZE = 100


def config(port, qos, version, client_id=None, **broker_keys):
    client_id = client_id or "e2e-%s-%d-%d" % (CONNECTOR, qos, version)
    return e.config([e.broker(port, CONNECTOR, client_id, version=version, **broker_keys, durable_ack=True)],
                    [e.mapping("e2e/#", "e2e", qos=qos, partitions=4, key="topic")])


def one(qos, version):
    n = min(N, PAHO_QOS2_MAX) if CONNECTOR == "paho" and qos == 2 else N
    broker = e.Broker()
    d = e.Daemon(config(broker.port, qos, version))
    d.start()
    probes = e.wait_subscribed(broker.port, d.data, "e2e", qos, version)
    t0 = time.monotonic()
    e.publish(broker.port, n, qos=qos, version=version, topics=TOPICS, size=SIZE)
    t_pub = time.monotonic() - t0
    e.wait_for(lambda: e.stored(d.data, "e2e") >= n + probes, 60 + n / 500,
               "%d records in the log (QoS %d, MQTT %s)" % (n + probes, qos, version))
    t_all = time.monotonic() - t0
    d.stop()
    recs = e.consume(d.data, "e2e")
    e.check_stream(recs, n, TOPICS, qos=e.delivered_qos(CONNECTOR, qos, version), broker="local", exact=True,
                   size=SIZE)
    if len(recs) != n + probes:
        e.fail("%d records stored, expected %d messages + %d probes" % (len(recs), n, probes))
    e.log("%-9s QoS %d MQTT %-5s: %d messages exactly once, in order, headers ok; published in %.2fs, stored "
          "in %.2fs (%.0f msg/s)" % (CONNECTOR, qos, "5" if version == 5 else "3.1.1", n, t_pub, t_all,
                                      n / t_all))
    broker.stop()


def shared(sessions=3):
    """sessions: N, a shared subscription over N connections ($share/mqlog/e2e/#, MQTT 5, QoS 1): the broker
    spreads the messages over the connections; each must be stored exactly once. Order across connections
    is not promised (docs/configuration.md), so only the set is checked, and that every connection took
    part."""
    broker = e.Broker()
    d = e.Daemon(config(broker.port, 1, 5, client_id="e2e-%s-shared" % CONNECTOR, sessions=sessions))
    d.start()
    probes = e.wait_subscribed(broker.port, d.data, "e2e", 1, 5)
    e.wait_for(lambda: broker.log().count("as e2e-%s-shared" % CONNECTOR) >= sessions, 30,
               "all %d sessions to connect" % sessions)
    n = N // 2
    t0 = time.monotonic()
    e.publish(broker.port, n, qos=1, version=5, topics=TOPICS, size=SIZE)
    e.wait_for(lambda: e.stored(d.data, "e2e") >= n + probes, 60 + n / 1000, "%d records in the log" % (n + probes))
    t_all = time.monotonic() - t0
    d.stop()
    recs = e.consume(d.data, "e2e")
    keys = e.keys_seen(recs)
    if sorted(keys) != list(range(n)):
        dup = len(keys) - len(set(keys))
        missing = sorted(set(range(n)) - set(keys))
        e.fail("shared subscription: %d records, %d duplicates, %d missing (first %s)" %
               (len(keys), dup, len(missing), missing[:5]))
    log = broker.log()
    for i in range(sessions):
        cid = "e2e-%s-shared" % CONNECTOR + ("-%d" % i if i else "")
        if "as %s " % cid not in log:
            e.fail("session %d (%s) never connected" % (i, cid))
    e.log("%-9s sessions %d ($share): %d messages exactly once (%.0f msg/s)" % (CONNECTOR, sessions, n,
                                                                              n / t_all))
    broker.stop()


def main():
    for version in (5, 311):
        for qos in (0, 1, 2):
            one(qos, version)
    shared()
    q2 = " (QoS 2: %d)" % min(N, PAHO_QOS2_MAX) if CONNECTOR == "paho" and PAHO_QOS2_MAX < N else ""
    e.log("PASS: %s, 6 runs of %d messages%s, and a shared subscription over 3 sessions" % (CONNECTOR, N, q2))


main()
