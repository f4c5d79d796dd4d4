"""test_e2e_crash.py CONNECTOR QOS VERSION [--repeat 2] - mqlogd killed with SIGKILL again and again at
random moments in the middle of a stream, restarted each time on the same data directory: every message
the broker handed over is stored exactly once (issue 10). CONNECTOR is paho or mosquitto, QOS 1 or 2,
VERSION 5 or 311 (MQTT 3.1.1).

mqlogd runs the connector with a persistent session, durable_ack true and one mapping at the QoS under
test: it acknowledges a message only once its record is durable, so a message whose acknowledgement never
went out is still the broker's, and the broker delivers it again to the next mqlogd, with its packet id
and DUP set. Those redeliveries of messages already stored are what mqlogd must recognise and not store
again. (A QoS 2 mapping on libmosquitto, or on Paho over MQTT 3.1.1, is subscribed at QoS 1 and its
records say mqtt.qos 1: e2e_lib.delivered_qos.) A publisher with a persistent session streams N numbered
messages at the same QoS and a fixed rate (mq_pub: message k goes to topic e2e/(k % TOPICS) with its
number in the payload). mqlogd is killed with
SIGKILL (no flush, no recovery point) KILLS times, at random moments between 3% and 85% of the time the
publisher takes, and started again at once; a restarted mqlogd must store at least one record before it
is killed again, and each kill must come while records are still arriving. The moments come from a seed,
printed, that MQ_CRASH_SEED sets to replay a failure's kill times (the processes' timing around them
differs from run to run).

Afterwards every message must be in the log exactly once, in per-topic order (counted by the publisher's
numbers; a failure says how many are missing and how many are duplicates), the last mqlogd stops on
SIGTERM with exit status 0, and `mqlog verify` is clean.

--repeat R: the publisher sends each message R times in a row, identical topic and payload, and R copies
of each must be stored, no more and no fewer: deduplication must never take a real message for a
redelivery of the one before it. Fewer messages, and 3 kills.
"""
import argparse
import os
import random
import re
import time

import e2e_lib as e

ap = argparse.ArgumentParser()
ap.add_argument("connector", choices=["paho", "mosquitto"])
ap.add_argument("qos", type=int, choices=[1, 2])
ap.add_argument("version", type=int, choices=[5, 311])
ap.add_argument("--repeat", type=int, default=1)
ARGS = ap.parse_args()

CONNECTOR, QOS, VERSION, REPEAT = ARGS.connector, ARGS.qos, ARGS.version, ARGS.repeat
VERSION_NAME = "5" if VERSION == 5 else "3.1.1"
DELIVERED_QOS = e.delivered_qos(CONNECTOR, QOS, VERSION)  # what the records' mqtt.qos says
# N distinct messages, REPEAT publications each. The stream lasts about 20 s at every scale (the sanitizer
# legs publish a fifth as many, at a fifth of the rate): long enough for ten restarts of mqlogd in it, and the
# rate leaves room under what paho with durable_ack stores (about 4,000 messages/s), so mqlogd catches up
# after each restart while the stream still runs.
N = e.scaled(50000 if REPEAT == 1 else 10000, minimum=2000)
RATE = 2500 if e.SCALE >= 1 else 500  # publications per second
TOPICS = 20
WINDOW = 1000  # the broker's in-flight window and mqlogd's max_inflight, on which its guard relies
KILLS = 10 if REPEAT == 1 else 3
STALL = 20  # seconds without a new record, once the kills are over, before the test says what is missing
SEED = int(os.environ.get("MQ_CRASH_SEED") or int(time.time() * 1000) % 2**31)


def kill_times(stream_s):
    """KILLS moments to kill at, in seconds after the publisher's start, increasing: one uniform draw in each
    of KILLS equal slices of 3%..85% of the stream, so that the kills spread over it (a restart takes a
    while) but fall anywhere in a batch or fsync cycle."""
    rnd = random.Random(SEED)
    lo, hi = stream_s * 0.03, stream_s * 0.85
    step = (hi - lo) / KILLS
    return [lo + step * (i + rnd.random()) for i in range(KILLS)]


def main():
    t0 = time.monotonic()
    name = "%s-q%d-v%d%s" % (CONNECTOR, QOS, VERSION, "-r%d" % REPEAT if REPEAT > 1 else "")
    e.log("%s: seed %d (MQ_CRASH_SEED=%d replays these kill points)" % (name, SEED, SEED))
    broker = e.Broker(inflight=WINDOW)
    d = e.Daemon(e.config([e.broker(broker.port, CONNECTOR, "crash-" + name, version=VERSION, durable_ack=True,
                                    max_inflight=WINDOW, reconnect_min="100ms", reconnect_max="1s")],
                          [e.mapping("e2e/#", "e2e", qos=QOS, partitions=3, key="topic")],
                          log={"flush_interval_ms": 5, "segment_bytes": "256KiB"}))
    d.start()
    probes = e.wait_subscribed(broker.port, d.data, "e2e", QOS, VERSION)
    total = N * REPEAT
    pub = e.publish(broker.port, N, qos=QOS, version=VERSION, topics=TOPICS, client_id="crash-pub-" + name,
                    rate=RATE, repeat=REPEAT, background=True, timeout=240)
    t_pub = time.monotonic()

    def alive():
        if not d.alive():
            e.fail("mqlogd died by itself:\n" + d.log()[-3000:])
        if pub.poll() is not None and pub.returncode != 0:
            e.fail("the publisher failed: %s" % pub.stderr.read())

    at = []
    restarted_with = probes
    for i, when in enumerate(kill_times(total / RATE)):

        def due():
            alive()
            # at least one record stored by this mqlogd: a kill before that tests the restart, not the stream
            return time.monotonic() - t_pub >= when and e.stored(d.data, "e2e") > restarted_with

        e.wait_for(due, 60, "kill %d's moment (%.2fs) and a record stored since the last restart" % (i + 1, when),
                   every=0.005)
        publishing = pub.poll() is None
        d.kill()
        n = e.stored(d.data, "e2e")
        at.append("%d@%.1fs%s" % (n - probes, time.monotonic() - t0, "" if publishing else " (publisher done)"))
        if n >= total + probes:
            e.fail("kill %d came after the whole stream was stored: not in the middle of it (kills: %s)" %
                   (i + 1, ", ".join(at)))
        d.start()
        restarted_with = e.stored(d.data, "e2e")

    e.wait_complete(d.data, "e2e", N, timeout=120, alive=alive, repeat=REPEAT, stall=STALL)
    t_done = time.monotonic() - t0
    e.wait_publisher(pub)
    d.stop()
    e.run([e.MQLOG, "verify", "-d", d.data])
    recs = e.consume(d.data, "e2e")
    # missing messages (or copies) and disorder fail here; duplicates are counted, then must be none
    dups = e.check_stream(recs, N, TOPICS, qos=DELIVERED_QOS, broker="local", exact=False, repeat=REPEAT)
    if dups:
        e.fail("%s MQTT %s QoS %d, %d kills at %s: none missing, but %d duplicate%s in %d records (seed %d)" %
               (CONNECTOR, VERSION_NAME, QOS, KILLS, ", ".join(at), dups, "" if dups == 1 else "s",
                len(recs) - probes, SEED))
    e.check_stream(recs, N, TOPICS, qos=DELIVERED_QOS, broker="local", exact=True, repeat=REPEAT)
    log = d.log()
    recovered = len(re.findall(r"recovered \d+ batches after the recovery point", log))
    truncated = len(re.findall(r"truncating the tail after offset", log))
    if d.starts != KILLS + 1:
        e.fail("mqlogd started %d times, expected %d" % (d.starts, KILLS + 1))
    broker.stop()
    e.log("PASS: %s MQTT %s QoS %d, %d messages%s at %d/s over %d topics, SIGKILL %d times (records stored @ "
          "time: %s), restarted each time: 0 missing, 0 duplicates (all stored at %.1fs); %d partition "
          "recoveries, %d torn tails cut; SIGTERM exit 0, verify clean; seed %d (%.1fs)" %
          (CONNECTOR, VERSION_NAME, QOS, N, " x %d copies" % REPEAT if REPEAT > 1 else "", RATE, TOPICS, KILLS,
           ", ".join(at), t_done, recovered, truncated, SEED, time.monotonic() - t0))


main()
