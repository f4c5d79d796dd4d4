"""test_broker_redelivery.py - what the brokers mqlog runs against do with the QoS 1 and QoS 2 messages a
persistent-session subscriber had not acknowledged when its connection died (a SIGKILLed mqlogd): measured
packet by packet with the raw client tests/tools/mqtt_probe.py, and asserted, so that a broker version that
behaves differently fails here first. mqlogd's redelivery deduplication (issue 10) rests on these facts.
No mqlogd is involved.

Each case: a subscriber with a persistent session (MQTT 3.1.1 clean session 0, MQTT 5 session expiry 1 h)
subscribes one topic; a publisher sends numbered messages ("m0", "m1", ...) at the same QoS. The subscriber
answers nothing, so the broker stops at its in-flight window (measured: how many PUBLISH arrive before the
stream stalls for IDLE seconds); then it acknowledges the two oldest, as a connector does, to see how many
more messages the broker sends and which packet ids they get. Then its socket is closed without DISCONNECT,
more messages are published (they are queued), and the subscriber reconnects, acknowledging everything from
then on. Measured: session present; whether each message that was in flight comes again with the same packet
id and DUP set (QoS 2 acknowledged with PUBREC: whether PUBREL comes again); where the redeliveries come
relative to the messages that were queued and never sent; how the broker numbers the messages it sends after
the reconnect. Variants: the
broker (mosquitto, with persistence) restarted while the session is unacknowledged; a reconnect with clean
session / clean start, where nothing may come again; MQTT 5's receive maximum against the broker's window;
mosquitto's in-flight set under a backlog (growth()).

mosquitto runs with its default in-flight window (max_inflight_messages unset: 20). RabbitMQ (one private
node for all its cases, MQTT 3.1.1 only) with its default prefetch. The table of findings is printed at the
end, one row per case.
"""
import os
import sys
import time

import e2e_lib as e

sys.path.insert(0, os.path.join(e.SOURCE_DIR, "tests", "tools"))
import mqtt_probe as mp  # noqa: E402

N = 100  # published before the subscriber's connection dies: more than any window measured here
LATER = 5  # published while it is away
IDLE = 0.5  # seconds without a packet after which a broker is taken to wait for acknowledgements
ROWS = []


class DefaultBroker(e.Broker):
    """e2e_lib's mosquitto without its max_inflight_messages 0 (unlimited): the broker's own default."""

    def __init__(self):
        super().__init__()
        self.stop()
        with open(self.conf) as f:
            lines = [ln for ln in f if not ln.startswith("max_inflight_messages")]
        with open(self.conf, "w") as f:
            f.writelines(lines)
        self.start()


def probe(port, cid, version, clean=False, receive_max=None):
    return mp.Probe(port, cid, version, clean=clean, expiry=3600 if version == 5 else None,
                    receive_max=receive_max)


def publish(port, version, qos, topic, first, count):
    p = mp.Probe(port, "pub-" + topic.replace("/", "-"), version, clean=True)
    p.connect()
    for k in range(first, first + count):
        p.publish(topic, "m%d" % k, qos)
    p.disconnect()


def num(pk):
    return int(pk.payload.decode()[1:])


def describe(pk):
    if pk.type == mp.PUBLISH:
        return "m%d/%s%s" % (num(pk), pk.pid, "d" if pk.dup else "")
    return "%s/%d" % (mp.NAMES[pk.type], pk.pid)


def stalled_window(sub, ack, complete=()):
    """The packets the broker sends until it waits for acknowledgements: (PUBLISH list, PUBREL list). ack
    'pubrec' answers each QoS 2 PUBLISH with PUBREC; 'none' answers nothing. A PUBREL for a packet id in
    complete is answered with PUBCOMP (and not returned)."""
    out = []

    def on(pk):
        if pk.type == mp.PUBLISH and pk.qos == 2 and ack == "pubrec":
            sub.pubrec(pk.pid)
        elif pk.type == mp.PUBREL and pk.pid in complete:
            sub.pubcomp(pk.pid)
            return
        out.append(pk)

    sub.collect(IDLE, on_packet=on)
    return [pk for pk in out if pk.type == mp.PUBLISH], [pk for pk in out if pk.type == mp.PUBREL]


def ack_all(sub):
    def on(pk):
        if pk.type == mp.PUBLISH and pk.qos == 1:
            sub.puback(pk.pid)
        elif pk.type == mp.PUBLISH and pk.qos == 2:
            sub.pubrec(pk.pid)
        elif pk.type == mp.PUBREL:
            sub.pubcomp(pk.pid)

    return on


def finish(sub, pk, qos, ack):
    """Completes (or, QoS 2 without PUBREC yet, starts completing) the exchange of one message."""
    if qos == 1:
        sub.puback(pk.pid)
    elif ack == "pubrec":
        sub.pubcomp(pk.pid)  # its PUBREL came already
    else:
        sub.pubrec(pk.pid)  # stalled_window answers its PUBREL


def case(broker_name, port, version, qos, ack="none", restart=None, expect=None):
    """One redelivery case (the module comment); restart, if given, restarts the broker while the session is
    unacknowledged. Returns the findings and checks them against expect (a dict of the same keys)."""
    tag = "%s-v%d-q%d-%s%s" % (broker_name, version, qos, ack, "-restart" if restart else "")
    topic = "redeliver/" + tag
    sub = probe(port, "sub-" + tag, version)
    e.check(not sub.connect(), "%s: a new client id found a session" % tag)
    granted = sub.subscribe(topic, qos)
    publish(port, version, min(qos, granted), topic, 0, N)
    sent, _ = stalled_window(sub, ack)
    window = len(sent)
    e.check(0 < window < N, "%s: window of %d of %d messages: not a window" % (tag, window, N))
    # The two oldest acknowledged, in order, as a connector does: how many more does the broker send, and
    # with which packet ids?
    freed = sent[:2]
    for pk in freed:
        finish(sub, pk, min(qos, granted), ack)
    more, _ = stalled_window(sub, ack, complete={pk.pid for pk in freed})
    sent += more
    unacked = sent[2:]
    sub.abort()
    publish(port, version, min(qos, granted), topic, N, LATER)
    if restart:
        restart()
    sub2 = probe(port, "sub-" + tag, version)
    present = sub2.connect()
    got = sub2.collect(IDLE * 2, on_packet=ack_all(sub2))
    sub2.abort()

    first_ids = [pk.pid for pk in sent[:window]]
    after_acks = [pk.pid for pk in more]
    # The redelivery of an unacknowledged message is the first packet of the new connection that carries it:
    # a PUBLISH with its number, or a PUBREL with its old packet id (unless that id is one the new connection
    # has PUBLISHed already: then the PUBREL answers our PUBREC).
    old_num = {pk.pid: num(pk) for pk in unacked}
    old_pid = {num(pk): pk.pid for pk in unacked}
    redo, seen, new_pids = [], set(), set()
    for pk in got:
        if pk.type == mp.PUBLISH:
            new_pids.add(pk.pid)
            k = num(pk)
        elif pk.type == mp.PUBREL and pk.pid not in new_pids:
            k = old_num.get(pk.pid)
        else:
            continue
        if k in old_pid and k not in seen:
            seen.add(k)
            redo.append((k, pk))
    rest = [pk for pk in got if pk.type == mp.PUBLISH and num(pk) not in old_pid]
    in_order = [k for k, _ in redo] == [num(pk) for pk in unacked]
    kept = [pk.pid == old_pid[k] for k, pk in redo]
    same_id = "yes" if in_order and all(kept) else "NO, renumbered" if in_order and not any(kept) else "NO"
    first_new = got.index(rest[0]) if rest else len(got)
    redo_first = all(got.index(pk) < first_new for _, pk in redo)
    redo = [pk for _, pk in redo]
    kinds = [("PUBREL" if pk.type == mp.PUBREL else "PUBLISH DUP" if pk.dup else "PUBLISH no DUP") for pk in redo]
    if set(kinds) == {"PUBLISH DUP"}:
        dup = "yes"
    elif set(kinds) == {"PUBREL"}:
        dup = "PUBREL again"
    else:
        runs = []
        for k in kinds:
            if runs and runs[-1][0] == k:
                runs[-1][1] += 1
            else:
                runs.append([k, 1])
        dup = ", ".join("%s x%d" % (k, n) for k, n in runs)
    never_sent = list(range(max(old_pid) + 1, N + LATER))
    if in_order and redo_first and [num(pk) for pk in rest] == never_sent:
        order = "unacked first (sent order), then queued"
    else:
        order = "other"
    if first_ids == list(range(1, window + 1)) and after_acks == list(range(window + 1, window + 1 + len(more))):
        alloc = "+1 per message, freed ids not reused"
    elif sorted(after_acks) == sorted(pk.pid for pk in freed):
        alloc = "freed ids reused"
    else:
        alloc = "other"
    last = max(pk.pid for pk in sent)
    # The first packet id given to a message anew on the new connection (a redelivery under a new id counts).
    ids = [pk.pid for pk in got if pk.type == mp.PUBLISH and old_pid.get(num(pk)) != pk.pid][:1]
    after = "continues at %d" % (last + 1) if ids == [last + 1] else "new ids start at %s" % ids[0]
    row = {"broker": broker_name, "proto": "5" if version == 5 else "3.1.1", "qos": "%d(granted %d)" % (qos, granted)
           if granted != qos else str(qos), "case": ("PUBREC sent" if ack == "pubrec" else "nothing acked") +
           (", broker restarted" if restart else ""), "present": int(present), "window": window,
           "acked 2 -> sent": len(more), "unacked": len(unacked),
           "same id": same_id, "DUP": dup, "order": order, "ids": alloc, "after reconnect": after,
           "new with DUP": sum(pk.dup for pk in rest)}
    e.log("%s: first %s; after two acks %s; reconnect: %s" % (
        tag, first_ids, after_acks, " ".join(describe(pk) for pk in got)))
    ROWS.append(row)
    for k, v in (expect or {}).items():
        e.check(row[k] == v, "%s: %s is %r, expected %r" % (tag, k, row[k], v))
    return row


def window_v5(port, receive_max, expect):
    """MQTT 5's receive maximum against mosquitto's max_inflight_messages: the PUBLISH packets in flight."""
    tag = "mosquitto-v5-rm%s" % receive_max
    topic = "window/" + tag
    sub = probe(port, "sub-" + tag, 5, receive_max=receive_max)
    sub.connect()
    sub.subscribe(topic, 1)
    publish(port, 5, 1, topic, 0, 150)
    sent, _ = stalled_window(sub, "none")
    sub.abort()
    e.log("%s: %d in flight" % (tag, len(sent)))
    e.check(len(sent) == expect, "%s: %d in flight, expected %d" % (tag, len(sent), expect))
    ROWS.append({"broker": "mosquitto", "proto": "5", "qos": "1", "case": "receive maximum %s" % receive_max,
                 "window": len(sent)})


def growth(port, version, acks, expect):
    """mosquitto 2.0.11 under a backlog: the subscriber acknowledges the oldest in-flight message, one at a
    time, waiting each time until the broker stops sending. Returns the unacknowledged count after each."""
    tag = "mosquitto-v%d-growth" % version
    topic = "growth/" + tag
    sub = probe(port, "sub-" + tag, version)
    sub.connect()
    sub.subscribe(topic, 1)
    sub.abort()
    publish(port, version, 1, topic, 0, 300)
    sub = probe(port, "sub-" + tag, version)
    sub.connect()
    inflight = stalled_window(sub, "none")[0]
    counts = [len(inflight)]
    for _ in range(acks):
        sub.puback(inflight.pop(0).pid)
        inflight += stalled_window(sub, "none")[0]
        counts.append(len(inflight))
    sub.abort()
    e.log("%s: unacknowledged after 0..%d acks of the oldest: %s" % (tag, acks, counts))
    e.check(counts == expect, "%s: unacknowledged after each ack %s, expected %s" % (tag, counts, expect))
    ROWS.append({"broker": "mosquitto", "proto": "5" if version == 5 else "3.1.1", "qos": "1",
                 "case": "300 queued, acks of the oldest", "window": counts[0],
                 "unacked": "->".join(str(c) for c in counts)})


def clean_reconnect(broker_name, port, version, qos):
    """Messages left unacknowledged, then a reconnect with clean session / clean start: session present 0,
    and nothing may come again."""
    tag = "%s-v%d-q%d-clean" % (broker_name, version, qos)
    topic = "clean/" + tag
    sub = probe(port, "sub-" + tag, version)
    sub.connect()
    granted = sub.subscribe(topic, qos)
    publish(port, version, min(qos, granted), topic, 0, 10)
    sent, _ = stalled_window(sub, "none")
    sub.abort()
    publish(port, version, min(qos, granted), topic, 10, 3)
    sub2 = probe(port, "sub-" + tag, version, clean=True)
    present = sub2.connect()
    got = sub2.collect(IDLE * 2)
    sub2.abort()
    e.check(sent, "%s: nothing delivered before the reconnect" % tag)
    e.check(not present, "%s: clean reconnect reported session present" % tag)
    e.check(not got, "%s: after a clean reconnect the broker sent %s" % (tag, [str(pk) for pk in got]))
    ROWS.append({"broker": broker_name, "proto": "5" if version == 5 else "3.1.1", "qos": str(qos),
                 "case": "clean reconnect, %d unacked" % len(sent), "present": int(present),
                 "same id": "-", "DUP": "-", "order": "nothing redelivered"})


def table():
    cols = ["broker", "proto", "qos", "case", "present", "window", "acked 2 -> sent", "unacked", "same id", "DUP",
            "order", "ids", "after reconnect", "new with DUP"]
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in ROWS)) for c in cols}
    line = " | ".join(c.ljust(width[c]) for c in cols)
    print(line)
    print("-+-".join("-" * width[c] for c in cols))
    for r in ROWS:
        print(" | ".join(str(r.get(c, "")).ljust(width[c]) for c in cols))
    sys.stdout.flush()


def main():
    brokers = sys.argv[1:] or ["mosquitto", "rabbitmq"]
    t0 = time.monotonic()
    if "mosquitto" in brokers:
        mosquitto()
    t_mosq = time.monotonic() - t0
    if "rabbitmq" in brokers:
        rabbitmq()
    table()
    e.log("mosquitto cases %.1f s, RabbitMQ %.1f s" % (t_mosq, time.monotonic() - t0 - t_mosq))


def mosquitto():
    b = DefaultBroker()
    # mosquitto 2.0.11: a PUBACK/PUBCOMP for the oldest in-flight message moves up to max_inflight_messages
    # more from the queue into flight (database.c db__message_delete_outgoing counts the position of the
    # acknowledged message, not the messages in flight; fixed in 2.0.13, eclipse/mosquitto#2306): so 2
    # acknowledgements release 40, not 2, and the unacknowledged messages are 58, not 20.
    same = {"present": 1, "window": 20, "acked 2 -> sent": 40, "unacked": 58, "same id": "yes",
            "order": "unacked first (sent order), then queued", "ids": "+1 per message, freed ids not reused",
            "after reconnect": "continues at 61", "new with DUP": 0}
    for version in (4, 5):
        case("mosquitto", b.port, version, 1, expect=dict(same, DUP="yes"))
        case("mosquitto", b.port, version, 2, expect=dict(same, DUP="yes"))
        case("mosquitto", b.port, version, 2, ack="pubrec", expect=dict(same, DUP="PUBREL again"))
    window_v5(b.port, 5, 5)
    # Each acknowledgement of the oldest releases 20 more (19 net): the in-flight set grows with the backlog.
    growth(b.port, 4, 4, [20, 39, 58, 77, 96])
    window_v5(b.port, 100, 100)
    for version in (4, 5):
        for qos, ack in ((1, "none"), (2, "none"), (2, "pubrec")):
            # After a restart the broker restores at most max_inflight_messages messages as in flight;
            # the others it queues, whatever their state (persist_read.c persist__client_msg_restore),
            # so a QoS 2 message PUBREC had answered is PUBLISHed again (same id, DUP) past the first 20.
            dup = "PUBREL x20, PUBLISH DUP x38" if ack == "pubrec" else "yes"
            case("mosquitto", b.port, version, qos, ack=ack, restart=b.restart, expect=dict(same, DUP=dup))
        clean_reconnect("mosquitto", b.port, version, 1)
    b.stop()


def rabbitmq():
    rmq = e.RabbitMQ()
    # RabbitMQ 3.10 (prefetch 10) keeps its window, but numbers packet ids per connection from 1: a
    # redelivery comes under a new id (with DUP), so only the payload can recognise it. QoS 2 is granted 1.
    same = {"present": 1, "window": 10, "acked 2 -> sent": 2, "unacked": 10, "same id": "NO, renumbered",
            "DUP": "yes", "order": "unacked first (sent order), then queued",
            "ids": "+1 per message, freed ids not reused", "after reconnect": "new ids start at 1", "new with DUP": 0}
    case("rabbitmq", rmq.port, 4, 1, expect=dict(same, qos="1"))
    case("rabbitmq", rmq.port, 4, 2, expect=dict(same, qos="2(granted 1)"))
    clean_reconnect("rabbitmq", rmq.port, 4, 1)
    rmq.stop()


if __name__ == "__main__":
    main()
