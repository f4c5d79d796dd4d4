"""test_daemon_lifecycle.py - mqlogd's life as systemd and an operator see it, with two brokers.

Broker "site" (paho connector) is up from the start; broker "far" (mosquitto connector) is down when mqlogd
starts and comes up later. The test checks:
- READY=1 through NOTIFY_SOCKET although "far" is down: a broker that is down stops nothing else;
- a message is stored in the partition `mqlog route` names, with the mqtt.* headers and the MQTT 5 user
  properties, content type, response topic and correlation data (published with mosquitto_pub);
- a message no mapping takes lands in the `unmatched` log topic;
- "far" comes up: mqlogd connects by itself and its messages are stored with mqtt.broker = far;
- SIGHUP with a new mapping: RELOADING=1 then READY=1, and the new mapping takes messages at once;
- SIGHUP with more partitions and a new retention for a topic in use: both applied at once (logged, in the
  catalog before any new message), and new messages land where `mqlog route` says;
- SIGHUP with fewer partitions: refused with FILE:LINE:COL of the mapping, the running configuration stays;
- SIGHUP with a broken file: the errors are logged with FILE:LINE:COL, the running mappings stay in force;
- SIGTERM: STOPPING=1, exit 0, and `mqlog verify` finds the data directory clean;
- log lines carry an ISO 8601 time outside the journal and a "<N>" priority without time under it.
"""
import json
import os
import re
import shutil

import e2e_lib as e

MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


def config(site, far, new_mapping=False, door_partitions=3, door_retention=None):
    mappings = [e.mapping("sensors/+/temperature", "telemetry.temperature", qos=1, partitions=8, key="level:2")]
    if new_mapping:  # what the reload adds
        extra = {"retention": door_retention} if door_retention else {}
        mappings.append(e.mapping("doors/#", "doors", broker="site", qos=1, partitions=door_partitions,
                                  key="topic", **extra))
    return e.config([e.broker(site, "paho", "life-site", name="site"),
                     e.broker(far, "mosquitto", "life-far", name="far", durable_ack=False, reconnect_min="100ms",
                              reconnect_max="500ms")],
                    mappings, unmatched="unmatched")


def pub(port, topic, payload, *props):
    if not os.path.exists(MOSQUITTO_PUB):
        e.fail("mosquitto_pub is not installed (scripts/setup installs mosquitto-clients)")
    args = [MOSQUITTO_PUB, "-p", str(port), "-h", "127.0.0.1", "-V", "mqttv5", "-q", "1", "-t", topic, "-m",
            payload]
    for p in props:
        args += ["-D", "publish"] + list(p)
    e.run(args, timeout=30)


def records(data, topic):
    return e.consume(data, topic) if topic in e.topic_counts(data) else []


def wait_record(data, topic, pred, what, timeout=30):
    return e.wait_for(lambda: next((r for r in records(data, topic) if pred(r)), None), timeout, what,
                      every=0.05)


def route(conf, topic):
    return e.run([e.MQLOG, "route", "-c", conf, topic]).stdout.split()


def main():
    site = e.Broker()
    far_port = e.free_port()
    d = e.Daemon(config(site.port, far_port))
    d.start()  # fails unless READY=1 arrives while "far" is down
    e.log("READY=1 with broker far down")

    # A reading with MQTT 5 properties, where `mqlog route` says it goes.
    want_topic, want_part = route(d.conf, "sensors/hall/temperature")
    e.wait_subscribed(site.port, d.data, want_topic, 1, 5, prefix="sensors/probe", probe="sensors/probe/temperature")
    pub(site.port, "sensors/hall/temperature", '{"c":21.5}', ("user-property", "unit", "celsius"),
        ("user-property", "site", "north"), ("content-type", "application/json"),
        ("response-topic", "replies/hall"), ("correlation-data", "req-42"))
    r = wait_record(d.data, want_topic, lambda r: r["value"] == '{"c":21.5}', "the hall reading to be stored")
    h = e.headers(r)
    want = {"mqtt.topic": "sensors/hall/temperature", "mqtt.qos": "1", "mqtt.retain": "false",
            "mqtt.broker": "site", "unit": "celsius", "site": "north", "mqtt.content_type": "application/json",
            "mqtt.response_topic": "replies/hall", "mqtt.correlation_data": "req-42"}
    for k, v in want.items():
        if h.get(k) != v:
            e.fail("header %s = %r, expected %r (all: %s)" % (k, h.get(k), v, h))
    if str(r["partition"]) != want_part or r["key"] != "hall":
        e.fail("stored in partition %s with key %r; mqlog route said %s, key level:2 is 'hall'" %
               (r["partition"], r["key"], want_part))
    e.log("reading stored in %s/%s as mqlog route said, with headers and MQTT 5 properties" % (want_topic,
                                                                                               want_part))

    pub(site.port, "nobody/maps/this", "stray")
    r = wait_record(d.data, "unmatched", lambda r: r["value"] == "stray", "the stray message in 'unmatched'")
    if r["key"] != "nobody/maps/this":
        e.fail("unmatched record keyed %r" % r["key"])
    e.log("an unmatched message went to the unmatched topic")

    # The second broker comes up on the port mqlogd has been trying.
    far = e.Broker(port=far_port)

    def far_stored():
        pub(far.port, "sensors/attic/temperature", "from-far")
        return any(r["value"] == "from-far" and e.headers(r).get("mqtt.broker") == "far"
                   for r in records(d.data, "telemetry.temperature"))

    e.wait_for(far_stored, 30, "mqlogd to connect to broker far and store its message", every=0.3)
    if not d.alive():
        e.fail("mqlogd died")
    e.log("broker far came up later: connected and stored")

    # Reload with one more mapping.
    d.write_config(config(site.port, far.port, new_mapping=True))
    ready = d.notify.count("READY=1")
    d.proc.send_signal(1)  # SIGHUP
    e.wait_for(lambda: d.notify.count("RELOADING=1") >= 1 and d.notify.count("READY=1") > ready, 20,
               "RELOADING=1 and READY=1 after SIGHUP")
    if "reloaded" not in d.log():
        e.fail("no 'reloaded' line in the log:\n" + d.log()[-2000:])

    def door_stored():
        pub(site.port, "doors/front", "open")
        return any(r["value"] == "open" for r in records(d.data, "doors"))

    e.wait_for(door_stored, 30, "the reloaded mapping doors/# to store a message", every=0.3)
    n_doors = len(records(d.data, "doors"))
    e.log("SIGHUP: reloaded, the new mapping stores messages (%d so far)" % n_doors)

    # Reload with more partitions and a retention for doors: applied at once, before any new message.
    d.write_config(config(site.port, far.port, new_mapping=True, door_partitions=6, door_retention="2d"))
    ready = d.notify.count("READY=1")
    d.proc.send_signal(1)
    e.wait_for(lambda: d.notify.count("READY=1") > ready, 20, "READY=1 after the partitions reload")
    log = d.log()
    if "log topic doors: partitions raised from 3 to 6" not in log or "log topic doors: retention set to 172800000 ms" \
            not in log:
        e.fail("the reload did not raise doors to 6 partitions and 2 d at once:\n" + log[-2000:])
    topics = {t["topic"]: t for t in json.loads(e.run([e.MQLOG, "topics", "-d", d.data, "--json"]).stdout)["topics"]}
    if topics["doors"]["partitions"] != 6 or topics["doors"]["retention_ms"] != 172800000:
        e.fail("catalog after the reload: %s" % topics["doors"])
    for door in ("side", "garage", "cellar", "roof"):
        want_topic, want_part = route(d.conf, "doors/" + door)
        pub(site.port, "doors/" + door, "ajar-" + door)
        r = wait_record(d.data, "doors", lambda r, v="ajar-" + door: r["value"] == v, "doors/%s stored" % door)
        if want_topic != "doors" or str(r["partition"]) != want_part:
            e.fail("doors/%s stored in partition %s, mqlog route says %s %s" % (door, r["partition"], want_topic,
                                                                               want_part))
    e.log("SIGHUP with 6 partitions and 2 d: applied at once; new messages go where mqlog route says")

    # Reload with fewer partitions: refused at the mapping's FILE:LINE:COL, the 6 partitions stay.
    d.write_config(config(site.port, far.port, new_mapping=True, door_partitions=2, door_retention="2d"))
    ready = d.notify.count("READY=1")
    d.proc.send_signal(1)
    e.wait_for(lambda: d.notify.count("READY=1") > ready, 20, "READY=1 after the refused reload")
    log = d.log()
    if not re.search(r"%s:\d+:\d+: mapping 2: it gives log topic doors 2 partitions, fewer than the 6 it has" %
                     re.escape(d.conf), log) or "reload rejected" not in log.split("fewer than the 6")[-1]:
        e.fail("fewer partitions were not refused with FILE:LINE:COL:\n" + log[-2000:])
    pub(site.port, "doors/side", "shut-side")
    r = wait_record(d.data, "doors", lambda r: r["value"] == "shut-side", "doors/side after the refused reload")
    first = next(x for x in records(d.data, "doors") if x["value"] == "ajar-side")
    if r["partition"] != first["partition"]:
        e.fail("after the refused reload doors/side went to partition %s, before to %s" % (r["partition"],
                                                                                          first["partition"]))
    e.log("SIGHUP with fewer partitions: refused with FILE:LINE:COL, placement unchanged")
    d.write_config(config(site.port, far.port, new_mapping=True, door_partitions=6, door_retention="2d"))

    # Reload with a broken file: rejected, the running configuration stays.
    with open(d.conf, "a") as f:
        f.write("mappings_typo: 1\n")
    bad_line = sum(1 for _ in open(d.conf))
    ready = d.notify.count("READY=1")
    d.proc.send_signal(1)
    e.wait_for(lambda: d.notify.count("READY=1") > ready, 20, "READY=1 after the rejected reload")
    log = d.log()
    if "reload rejected" not in log:
        e.fail("a broken file was not rejected:\n" + log[-2000:])
    if "%s:%d:1: unknown key 'mappings_typo'" % (os.path.basename(d.conf), bad_line) not in log and \
            "%s:%d:1: unknown key 'mappings_typo'" % (d.conf, bad_line) not in log:
        e.fail("the rejected reload did not name FILE:%d:1 and the unknown key:\n%s" % (bad_line, log[-2000:]))
    pub(site.port, "doors/back", "closed")
    wait_record(d.data, "doors", lambda r: r["value"] == "closed", "doors/# still routed after the broken reload")
    if not d.alive():
        e.fail("mqlogd died on a broken reload")
    e.log("SIGHUP with a broken file: rejected with FILE:LINE:COL, the running mappings kept")

    d.stop(expect=0)
    if d.notify.count("STOPPING=1") < 1:
        e.fail("no STOPPING=1 before exit")
    # Outside the journal every line of mqlogd's own starts with its time; under it, with "<N>" and no time.
    stamped = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z mqlog (error|warning|notice|info|debug): ")
    own = [l for l in d.log().splitlines() if "mqlog " in l[:40]]
    if not own or any(not stamped.match(l) for l in own):
        e.fail("log lines without an ISO 8601 time: %s" % [l for l in own if not stamped.match(l)][:3])
    j = e.run([e.MQLOGD, "-c", d.conf + ".missing"], check=False, env=dict(os.environ, JOURNAL_STREAM="8:9"))
    if j.returncode == 0 or not j.stderr.startswith("<3>") or re.search(r"\d{4}-\d\d-\d\dT", j.stderr):
        e.fail("under the journal: exit %d, stderr %r" % (j.returncode, j.stderr))
    e.log("log lines: ISO 8601 times outside the journal, <N> priorities and no time under it")
    v = e.run([e.MQLOG, "verify", "-d", d.data], check=False)
    if v.returncode != 0:
        e.fail("mqlog verify after SIGTERM: exit %d\n%s%s" % (v.returncode, v.stdout, v.stderr))
    far.stop()
    site.stop()
    e.log("PASS: readiness, two brokers (one late), headers, unmatched, reload good and broken, SIGTERM exit 0, "
          "verify clean")


main()
