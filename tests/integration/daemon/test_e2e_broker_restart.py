"""test_e2e_broker_restart.py CONNECTOR - the broker restarted three times in the middle of a stream: mqlogd
(with a persistent session and durable_ack) reconnects by itself each time, and every message is stored
exactly once (issue 10), for QoS 1 and QoS 2 mappings over MQTT 5 and 3.1.1.

The stream comes in RESTARTS parts. For each, mqlogd is stopped (SIGSTOP), a publisher with a persistent
session publishes the part at the mapping's QoS and exits once the broker has taken every message, mqlogd
continues (SIGCONT) and works through the backlog the broker queued for its session. When a random share
(10% to 50%) of the part is stored, mqlogd is frozen again (SIGSTOP: the mosquitto connector stores such
a part in some 50 ms, faster than the test could otherwise act), the broker (mosquitto with persistence)
is stopped with SIGTERM (it saves its sessions, queues and in-flight messages) and started again on the
same port, and mqlogd continues: it finishes what it was doing, finds its connection gone and reconnects,
and the broker delivers again, with their packet ids and DUP set, the messages whose acknowledgement it had
not received, then the rest of the backlog. mqlogd must store those it already has no second time.
Afterwards every message must be in the log exactly once and in per-topic order, counted by the publisher's
numbers; mqlogd must have connected more than once and stop with exit status 0.

Why the publisher is never connected during a restart: the test is about the broker-to-gateway hop, and
MQTT's other hop cannot give exactly once across a restart of mosquitto 2.0.11. At QoS 1 the publisher
resends the messages whose PUBACK was lost with the connection, and the broker takes each for a new
message: two real, identical messages, which mqlogd must store twice (test_e2e_crash.py --repeat). At QoS 2
the broker loses messages: seen with the broker at log_type all, a publisher streaming at QoS 2 had m15566..
m15568 in the PUBREC state when the broker stopped; after the restart it sent their PUBRELs, the broker
answered PUBCOMP, and never delivered the three messages to any subscriber (999 of 1000 on their topics).
The seed of the restart points is printed; MQ_CRASH_SEED sets it.
"""
import glob
import os
import random
import signal
import sys
import time

import e2e_lib as e

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "paho"
# The mosquitto connector stores a whole read batch at once: a part of a few hundred messages (the 0.2 scale
# of sanitizer builds) is stored before the pause can land in it, so it keeps the full size everywhere.
N = e.scaled(12000, minimum=12000 if CONNECTOR == "mosquitto" else 200)
TOPICS = 20
RESTARTS = 3
WINDOW = 1000  # the broker's in-flight window and mqlogd's max_inflight, on which its guard relies
RECORD_BYTES = 150  # fewer than a stored record of mq_pub's takes (about 180 in batches of many)
SEED = int(os.environ.get("MQ_CRASH_SEED") or int(time.time() * 1000) % 2**31)


def log_bytes(d):
    """The size of the log topic's segment files: grows with each record appended, and costs a few stat
    calls, where `mqlog topics` takes some 30 ms."""
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(d.data, "e2e-*", "*.log")))


def run(qos, version, rnd):
    vname = "5" if version == 5 else "3.1.1"
    case = "%s-q%d-v%d" % (CONNECTOR, qos, version)
    broker = e.Broker(inflight=WINDOW)
    d = e.Daemon(e.config([e.broker(broker.port, CONNECTOR, "restart-" + case, version=version, durable_ack=True,
                                    max_inflight=WINDOW, reconnect_min="100ms", reconnect_max="1s")],
                          [e.mapping("e2e/#", "e2e", qos=qos, partitions=2)], log=None))
    d.start()
    probes = e.wait_subscribed(broker.port, d.data, "e2e", qos, version)

    def alive():
        if not d.alive():
            e.fail("mqlogd died:\n" + d.log()[-3000:])

    at = []
    part = N // RESTARTS
    for i in range(RESTARTS):
        first, count = i * part, part if i < RESTARTS - 1 else N - i * part
        d.proc.send_signal(signal.SIGSTOP)  # the broker queues the whole part for mqlogd's session
        e.publish(broker.port, count, qos=qos, version=version, topics=TOPICS, first=first,
                  client_id="restart-pub-" + case, timeout=120)
        mark = log_bytes(d) + int(count * rnd.uniform(0.1, 0.5) * RECORD_BYTES)
        d.proc.send_signal(signal.SIGCONT)

        def reached():
            alive()
            return log_bytes(d) >= mark

        # 1 ms: the mosquitto connector stores a part of 4,000 messages in about 50 ms
        e.wait_for(reached, 60, "%d bytes of records before restart %d" % (mark, i + 1), every=0.001)
        d.proc.send_signal(signal.SIGSTOP)  # frozen in the middle of the part, see the docstring
        before = e.stored(d.data, "e2e") - probes
        if before >= first + count:
            e.fail("%s: part %d was stored completely before the broker's restart: not mid-stream" % (case, i + 1))
        broker.restart()
        d.proc.send_signal(signal.SIGCONT)
        at.append("%d of %d" % (before, first + count))
    e.log("%s MQTT %s QoS %d: broker restarted with %s records stored" % (CONNECTOR, vname, qos, ", ".join(at)))

    e.wait_complete(d.data, "e2e", N, timeout=120, alive=alive, stall=30)
    d.stop()
    recs = e.consume(d.data, "e2e")
    # missing messages and disorder fail here; duplicates are counted, and main() fails on any
    delivered = e.delivered_qos(CONNECTOR, qos, version)
    dups = e.check_stream(recs, N, TOPICS, qos=delivered, broker="local", exact=False)
    if not dups:
        e.check_stream(recs, N, TOPICS, qos=delivered, broker="local", exact=True)
    log = d.log()
    if log.count("connected to") < 2 and "connects" not in log:
        e.fail("mqlogd did not reconnect:\n" + log[-3000:])
    e.log("%s MQTT %s QoS %d: broker restarted %d times mid-stream: %d messages, 0 missing, %d duplicate%s in %d "
          "records" % (CONNECTOR, vname, qos, RESTARTS, N, dups, "" if dups == 1 else "s", len(recs) - probes))
    broker.stop()
    return dups


def main():
    t0 = time.monotonic()
    e.log("%s: seed %d (MQ_CRASH_SEED=%d replays these restart points)" % (CONNECTOR, SEED, SEED))
    rnd = random.Random(SEED)
    cases = [(qos, version) for qos in (1, 2) for version in (5, 311)]
    # every case runs before a duplicate fails the test, so that one run gives all their counts
    dups = {case: run(*case, rnd) for case in cases}
    if any(dups.values()):
        e.fail("%s broker restart: none missing, but duplicates: %s" %
               (CONNECTOR, ", ".join("QoS %d MQTT %s: %d" % (q, "5" if v == 5 else "3.1.1", n)
                                     for (q, v), n in dups.items())))
    e.log("PASS: %s broker restart, %d runs (QoS 1, 2 x MQTT 5, 3.1.1) of %d messages, %d restarts each: 0 "
          "missing, 0 duplicates (%.1fs)" % (CONNECTOR, len(cases), N, RESTARTS, time.monotonic() - t0))


main()
