"""test_daemon_messages.py - the lines mqlogd logs when a broker goes away or refuses it are each one clean
sentence (issue 15), where the libraries' own sentences are embedded: "connection to 127.0.0.1:P lost: The
connection was lost.; reconnecting" was the line of the mosquitto connector.

One mqlogd with four broker entries, each connector on two mosquittos: broker "open" lets anyone in, broker
"closed" has no anonymous access (a CONNACK refusal: libmosquitto's "Connection Refused: not authorised.",
Paho's code 5; MQTT 5's "Not authorized"). Once the entries on "open" are connected, that broker is stopped:
the connection is lost (libmosquitto's "The connection was lost.", Paho's cause) and every reconnect is
refused by the kernel (strerror's "Connection refused", Paho's "TCP/TLS connect failure"). A forwarder to a
mock Kafka cluster whose brokers are down reports an outage with librdkafka's reason ("Timed out waiting
for operation to finish, retry call to resume"). Then every line
mqlogd wrote must be one clean sentence, as scripts/check-messages asks of the sources: no "." glued to more
punctuation or ending the line, no second sentence, no capitalised ordinary word after ": " or "; ".
"""
import re
import time

import e2e_lib as e

# A word a message may carry capitalised after ": ": names and acronyms of the protocols and libraries.
NAMES = {"Kafka", "Paho", "SQLite", "OpenSSL", "QoS", "MQTT", "TLS", "TCP", "SIGHUP", "SIGTERM", "READY"}


def problems(line):
    """What is wrong with one log line, or an empty list. The line is 'mqlog LEVEL: MESSAGE'."""
    m = re.match(r"mqlog (error|warning|notice|info|debug): (.*)$", line)
    if not m:
        return ["not a log line"]
    msg, out = m.group(2), []
    if re.search(r"\.[;:,]", msg.replace("...", "")):
        out.append("a period glued to more punctuation")
    if re.search(r"[^.]\.$", msg):
        out.append("ends with a period")
    if re.search(r"(?<!\be\.g)(?<!\bi\.e)\. +[A-Za-z]", msg):
        out.append("two sentences")
    for w in re.findall(r"[:;] ([A-Z][a-z]+)\b", msg):
        if w not in NAMES:
            out.append("a capitalised '%s' inside the sentence" % w)
    return out


def wait_line(d, pattern, what, timeout=20):
    """The first line of mqlogd's log that matches pattern, waited for; the log in the failure."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = rx.search(d.log())
        if m:
            return m.group(0)
        time.sleep(0.05)  # poll interval of this deadline wait
    e.fail("no line of %s within %d s; mqlogd's log:\n%s" % (what, timeout, d.log()[-4000:]))


def main():
    open_ = e.Broker()
    closed = e.Broker(extra="allow_anonymous false")  # the last one given counts
    closed_port = closed.port

    fast = {"reconnect_min": "100ms", "reconnect_max": "300ms"}
    brokers = []
    for c in ("paho", "mosquitto"):
        # MQTT 3.1.1 where the libraries' strings come in: over MQTT 5 mosquitto says goodbye with a reason
        # code, and a refusal is a reason code too (that is the second entry, on the closed broker)
        brokers.append(e.broker(open_.port, c, "msg-open-" + c, name="open-" + c, version=4, **fast))
        b = e.broker(closed_port, c, "msg-closed-" + c, name="closed-" + c, version=5 if c == "paho" else 4,
                     **fast)
        brokers.append(b)
    # a forwarder whose central cluster is down: its outage line carries librdkafka's reason ("Local: Broker
    # transport failure" as rd_kafka_err2str() names it)
    mock = e.KafkaMock(brokers=1, topics={"t": 1})
    mock.command("down all")
    d = e.Daemon(e.config(brokers, [e.mapping("t/#", "t")], forward=[e.forwarder("central", mock.bootstrap, ["t"])]))
    d.start(wait_ready=False)

    for c in ("paho", "mosquitto"):
        wait_line(d, r"broker open-%s\b.*connected to" % c, "open-%s to connect" % c)
    refused = [wait_line(d, r"broker closed-mosquitto/0: cannot connect to .*: connection refused: not authorised;"
                         r" retrying in \d+ ms", "the mosquitto connector's refusal line"),
               wait_line(d, r"broker closed-paho \(.*\): connection failed: not authorized \(reason code 0x87\); "
                         r"reconnecting in \d+ ms",
                         "the Paho connector's refusal line")]

    e.publish(open_.port, 1, topics=1, prefix="t")  # a record for the forwarder to send
    outage = wait_line(d, r"forward central: outage since \S+ [^:]+: .*", "the forwarder's outage line", 60)

    open_.stop()
    lost = [wait_line(d, r"broker open-mosquitto/0: connection to 127\.0\.0\.1:%d lost: the connection was lost; "
                         r"reconnecting in \d+ ms" % open_.port, "the mosquitto connector's lost line"),
            wait_line(d, r"broker open-paho \(.*\): connection lost: .*; reconnecting in \d+ ms",
                      "the Paho connector's lost line"),
            wait_line(d, r"broker open-mosquitto/0: cannot connect to 127\.0\.0\.1:%d: connection refused; "
                         r"retrying in \d+ ms" % open_.port, "the mosquitto connector's refused line"),
            wait_line(d, r"broker open-paho \(.*\): connection failed: .*; reconnecting in \d+ ms",
                      "the Paho connector's refused line")]
    d.stop()
    closed.stop()
    mock.stop()

    bad = []
    lines = [l for l in d.log().splitlines() if l.startswith("mqlog ") or re.match(r"\S+Z mqlog ", l)]
    for l in lines:
        l = re.sub(r"^\S+Z (?=mqlog )", "", l)
        for p in problems(l):
            bad.append("%s: %s" % (p, l))
    if bad:
        e.fail("lines that are not one clean sentence:\n  " + "\n  ".join(bad))
    e.check(len(lines) >= 8, "too few log lines:\n" + d.log()[-3000:])
    for l in refused + lost + [outage]:
        e.log("  " + l)
    e.log("PASS: %d lines of mqlogd, each one clean sentence (refusals, lost connections, refused reconnects, "
          "a forwarder's outage)"
          % len(lines))


if __name__ == "__main__":
    main()
