"""test_daemon_drops.py CONNECTOR - what mqlogd says about the messages it does not store through a mapping.

A real mosquitto and mqlogd with one broker read through CONNECTOR (mosquitto or paho) and an unmatched
topic (issue 11, finding 10):
- a 70 MiB payload (MQTT allows 256 MiB, a log record about 64 MiB) is dropped, and the log line names the
  record's size, the payload's and the log's limit, not "invalid topic" or "invalid argument";
- a message with a 70 MiB MQTT 5 user property is dropped the same way (headers count in a record), and the
  connection goes on: a message published after it is stored;
- two messages no mapping takes go to the unmatched topic and count as unmatched;
- SIGUSR1's counter line adds up: N messages = mapped + unmatched + invalid topic + too large;
- /metrics (http.listen) conserves them: received = stored + unmatched + rejected{too_large} + pending.
"""
import os
import re
import shutil
import struct
import sys
import urllib.request

import e2e_lib as e

sys.path.insert(0, os.path.join(e.SOURCE_DIR, "tests", "tools"))
import mqtt_probe as mp  # noqa: E402

MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
BIG = 70 << 20


def main():
    connector = sys.argv[1]
    if not os.path.exists(MOSQUITTO_PUB):
        e.fail("mosquitto_pub is not installed (scripts/setup installs mosquitto-clients)")
    br = e.Broker()
    hport = e.free_port()
    d = e.Daemon(e.config([e.broker(br.port, connector, "drops-" + connector, name="site")],
                          [e.mapping("big/#", "big", qos=1)], unmatched="unmatched",
                          http={"listen": "127.0.0.1:%d" % hport}))
    d.start()
    e.wait_subscribed(br.port, d.data, "big", 1, 5, prefix="big/probe", probe="big/probe")

    payload = os.path.join(d.dir, "big.bin")
    with open(payload, "wb") as f:
        f.truncate(BIG)

    def pub(topic, *args):
        e.run([MOSQUITTO_PUB, "-p", str(br.port), "-h", "127.0.0.1", "-V", "mqttv5", "-q", "1", "-t", topic]
              + list(args), timeout=60)

    pub("big/one", "-f", payload)
    line = e.wait_for(lambda: next((l for l in d.log().splitlines() if "on 'big/one'" in l), None), 60,
                      "mqlogd to log the dropped 70 MiB message")
    want = re.compile(r"dropped a message from site on 'big/one': its record would be (\d+) bytes \(a payload "
                      r"of %d bytes\), more than the (\d+) bytes the log takes in one record \(a batch holds "
                      r"at most 64 MiB\)" % BIG)
    m = want.search(line)
    if not m or int(m.group(1)) <= BIG or int(m.group(2)) >= BIG:
        e.fail("the drop of a 70 MiB payload was logged as\n  %s" % line)
    for wrong in ("invalid topic", "invalid argument", "out of range"):
        if wrong in d.log():
            e.fail("mqlogd's log says %r:\n%s" % (wrong, d.log()[-3000:]))
    e.log("70 MiB payload dropped: %s" % line.split(": ", 1)[-1])

    # A small payload with 70 MiB of MQTT 5 user properties (64 KiB each at most, so 1,120 of them; too many
    # for mosquitto_pub's command line): the headers make the record too large. The log's line for it may be
    # held back (one such line every 10 s); the counter and the next message tell.
    value = b"v" * 65535
    props = b"".join(b"\x26" + mp._str("k%d" % i) + mp._str(value) for i in range(BIG // 65536))
    probe = mp.Probe(br.port, "drops-pub", version=5, clean=True)
    probe.connect()
    body = mp._str("big/two") + struct.pack("!H", 1) + mp._varint(len(props)) + props + b"small"
    probe.sock.sendall(mp._packet((mp.PUBLISH << 4) | 2, body))
    probe.expect(mp.PUBACK, 60)
    probe.disconnect()
    pub("big/three", "-m", "after")
    e.wait_for(lambda: any(r["value"] == "after" for r in e.consume(d.data, "big")), 60,
               "the message after the dropped ones to be stored")

    pub("nobody/one", "-m", "stray-1")
    pub("nobody/two", "-m", "stray-2")
    e.wait_for(lambda: "unmatched" in e.topic_counts(d.data) and
               sum(1 for r in e.consume(d.data, "unmatched") if r["value"].startswith("stray-")) == 2, 30,
               "the two stray messages in the unmatched topic")

    def stats():
        d.proc.send_signal(10)  # SIGUSR1
        lines = [l for l in d.log().splitlines() if re.search(r"\d+ messages: \d+ mapped", l)]
        return lines[-1] if lines else None

    want = re.compile(r"(\d+) messages: (\d+) mapped, (\d+) unmatched, (\d+) with an invalid topic, (\d+) too large")
    # the probe messages of wait_subscribed were mapped too: only the sum is known in advance
    line = e.wait_for(lambda: (lambda l: l if l and want.search(l) and int(want.search(l).group(3)) == 2 and
                               int(want.search(l).group(5)) == 2 else None)(stats()), 30,
                      "SIGUSR1's line to count 2 unmatched and 2 too large")
    total, mapped, unmatched, invalid, large = (int(x) for x in want.search(line).groups())
    if total != mapped + unmatched + invalid + large or invalid != 0 or mapped < 1:
        e.fail("SIGUSR1's counters do not add up: %s" % line)
    e.log("SIGUSR1: %s" % line.split(": ", 1)[-1])
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % hport, timeout=10) as r:
        m = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1]) for l in r.read().decode().splitlines()
             if l and not l.startswith("#")}
    got = [m["mqlog_messages_" + k] for k in ("received_total", "stored_total", "unmatched_total",
                                               "rejected_total{reason=\"too_large\"}", "pending")]
    rejected = sum(v for k, v in m.items() if k.startswith("mqlog_messages_rejected_total"))
    if got[0] != got[1] + got[2] + rejected + got[4] or got[3] != 2 or got[2] != 2 or got[0] != total:
        e.fail("/metrics does not conserve the messages: received, stored, unmatched, too large, pending = %r"
               % got)
    e.log("/metrics: received %d = stored %d + unmatched %d + too large %d + pending %d" % tuple(got))
    if not d.alive():
        e.fail("mqlogd died")
    d.stop(expect=0)
    br.stop()
    e.log("PASS: %s: too large payloads and headers dropped with the size and limit named, unmatched "
          "counted, SIGUSR1's counters add up" % connector)


main()
