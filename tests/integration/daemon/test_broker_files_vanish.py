"""test_broker_files_vanish.py CONNECTOR - a broker whose files vanish while mqlogd runs (issue 14: "a broker
whose files vanish is retried and reported, and does not stop the other brokers").

Two private mosquittos: "secure", whose listener for mqlogd wants TLS with a client certificate and a user name
and password (a second, plain and anonymous listener takes the test's publishers), and "plain". mqlogd
ingests from both with one connector (CONNECTOR: mosquitto or paho), persistent sessions and durable_ack.
While a publisher streams to the plain broker, the CA, certificate and key files mqlogd's secure broker names
are deleted and the password file made unreadable, then the secure broker is restarted: the connection drops
and every reconnect fails before the TLS handshake.

What must hold:
- the plain broker's messages keep being stored while the secure broker is out: the stream to it ends, and
  all of it is stored, before the secure broker's files come back;
- mqlogd says why once, naming the missing file and the broker, not once per retry (the broker's log
  counts the retries: each is a TCP connection to its TLS port);
- /readyz answers 503 naming the secure broker and the missing file, `mqlog status` shows the same and exits
  4, and status.json has it as the broker's last_error;
- a reload (SIGHUP) in the meantime is refused naming the missing files, and stops nothing;
- once the files are back, mqlogd reconnects by itself and the messages the broker queued for its persistent
  session meanwhile are stored: every secure message exactly once, every plain message exactly once;
- a password changed at the broker and in the password file is taken up by a reload (connectors read the
  password file only when they are created).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import e2e_lib as e

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "mosquitto"
N1 = e.scaled(400)  # secure messages before the files vanish
N2 = e.scaled(400)  # secure messages published while mqlogd cannot connect (queued for its session)
N3 = e.scaled(200)  # secure messages after the password was changed and reloaded
NP = 1500  # plain messages, streamed from before the outage to its middle (rate-bound: not scaled)
PLAIN_RATE = 300  # plain messages per second: the stream lasts NP / PLAIN_RATE = 5 seconds


class SecureBroker(e.Broker):
    """mosquitto with a TLS listener (client certificate and password required) on .port for mqlogd and a
    plain anonymous listener on .pub_port for the publishers; persistence on, so that mqlogd's session and
    the messages queued for it survive a restart."""

    def __init__(self, certs, passwd):
        if not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
            e.fail("mosquitto is not installed (scripts/setup installs it)")
        self.dir = e.tmpdir("mosquitto-tls")
        self.port, self.pub_port = e._free_ports(2)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("user root\nper_listener_settings true\npersistence true\npersistence_location %s/\n"
                    "autosave_interval 1\nmax_queued_messages 1000000\nmax_queued_bytes 0\nlog_dest stderr\n"
                    "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n"
                    "allow_anonymous false\npassword_file %s\n"
                    "listener %d 127.0.0.1\nallow_anonymous true\n" %
                    (self.dir, self.port, certs["ca.pem"], certs["server.pem"], certs["server.key"], passwd,
                     self.pub_port))
        self.proc = None
        self.start()


def main():
    t0 = time.monotonic()
    cdir = e.tmpdir("certs")
    certs = e.make_certs(cdir, clients=[("client", "/CN=mqlog")])
    passwd = os.path.join(cdir, "mosquitto.passwd")
    e.run(["mosquitto_passwd", "-c", "-b", passwd, "gw", "s3cret word"])
    secure, plain = SecureBroker(certs, passwd), e.Broker()

    # mqlogd's own copies of its files, which the test takes away and brings back
    mine = e.tmpdir("client-files")
    files = {}
    for name in ("ca.pem", "client.pem", "client.key"):
        files[name] = os.path.join(mine, name)
        shutil.copy(certs[name], files[name])
    pwfile = os.path.join(mine, "gw.password")
    with open(pwfile, "w") as f:
        f.write("s3cret word\n")
    saved = {n: open(p, "rb").read() for n, p in files.items()}

    hport = e.free_port()
    # connect_timeout: an attempt that races the broker's restart can wait that long for its CONNACK
    quick = {"reconnect_min": "100ms", "reconnect_max": "500ms", "connect_timeout": "2s"}
    conf = e.config(
        [dict(e.broker(secure.port, CONNECTOR, "vanish-secure-" + CONNECTOR, name="secure", durable_ack=True,
                       username="gw", password_file=pwfile, tls={"ca": files["ca.pem"],
                                                                 "cert": files["client.pem"],
                                                                 "key": files["client.key"]}, **quick),
              url="mqtts://127.0.0.1:%d" % secure.port),
         e.broker(plain.port, CONNECTOR, "vanish-plain-" + CONNECTOR, name="plain", durable_ack=True, **quick)],
        [e.mapping("sec/#", "sec", broker="secure", qos=1, partitions=2),
         e.mapping("pln/#", "pln", broker="plain", qos=1, partitions=2)],
        http={"listen": "127.0.0.1:%d" % hport})
    d = e.Daemon(conf)
    d.start()

    def alive():
        if not d.alive():
            e.fail("mqlogd died:\n" + d.log()[-3000:])

    sec_probes = e.wait_subscribed(secure.pub_port, d.data, "sec", 1, 5, prefix="sec")
    pln_probes = e.wait_subscribed(plain.port, d.data, "pln", 1, 5, prefix="pln")
    e.wait_for(lambda: e.http_get(hport, "/readyz")[0] == 200, 10, "/readyz to answer 200 with both brokers up")

    pub = e.publish(plain.port, NP, qos=1, topics=5, prefix="pln", client_id="vanish-pub-plain",
                    rate=PLAIN_RATE, background=True)
    e.publish(secure.pub_port, N1, qos=1, topics=5, prefix="sec", client_id="vanish-pub-sec")
    e.wait_complete(d.data, "sec", N1, prefix="sec", timeout=30, alive=alive)

    # the files vanish (the password file too: it was read at start, and is not needed to reconnect), then
    # the broker restarts and mqlogd's reconnects fail
    pln_at_out = e.stored(d.data, "pln") - pln_probes
    for p in list(files.values()) + [pwfile]:
        os.unlink(p)
    lines_before = len(d.log().splitlines())

    def tls_attempts():
        # the broker logs each TCP connection to its TLS listener that a client closes before the handshake,
        # either as a new connection or as a failed one, depending on when the close reaches it
        text = secure.log()
        return text.count("on port %d." % secure.port) + text.count("Client connection from 127.0.0.1 failed")

    attempts_before = tls_attempts()
    secure.restart()
    out_at = time.monotonic()

    # /readyz says which broker is down and why, once the first reconnect has failed
    status, body = e.wait_for(lambda: (lambda r: r if r[0] == 503 and files["ca.pem"] in r[1] else None)(
        e.http_get(hport, "/readyz")), 5, "/readyz to say not ready, naming the missing CA file")
    e.check("broker secure: 0 of 1 connections up" in body and "broker plain" not in body, "/readyz body: %r" % body)
    e.log("/readyz %d after %.1f s: %s" % (status, time.monotonic() - out_at, body.strip()))
    p = e.run([e.MQLOG, "status", "--url", "http://127.0.0.1:%d" % hport], check=False, timeout=30)
    e.check(p.returncode == 4 and files["ca.pem"] in p.stdout,
            "mqlog status exited %d with the secure broker out:\n%s%s" % (p.returncode, p.stdout, p.stderr))
    doc = json.loads(e.http_get(hport, "/status.json")[1])
    sec = [b for b in doc["brokers"] if b["name"] == "secure"]
    e.check(sec and sec[0]["connected"] == 0 and files["ca.pem"] in sec[0].get("last_error", ""),
            "status.json's secure broker: %r" % sec)

    # messages for mqlogd's session pile up at the secure broker meanwhile
    e.publish(secure.pub_port, N2, qos=1, topics=5, first=N1, prefix="sec", client_id="vanish-pub-sec")

    # retries: each is a TCP connection to the TLS port, closed before the handshake
    e.wait_for(lambda: tls_attempts() - attempts_before >= 4, 15, "mqlogd to try the secure broker 4 times")
    # a reload meanwhile is refused (the files are missing) and stops nothing
    d.proc.send_signal(signal.SIGHUP)
    e.wait_for(lambda: "reload rejected" in d.log(), 30, "the reload to be refused")
    # the plain stream ends while the secure broker is out (its files come back only afterwards): every
    # plain message is stored meanwhile, exactly once
    e.wait_publisher(pub, "plain publisher")
    recs = e.wait_complete(d.data, "pln", NP, prefix="pln", timeout=30, alive=alive)
    e.check_stream(recs, NP, 5, prefix="pln", qos=1, broker="plain", exact=True)
    e.check(pln_at_out < NP, "the plain stream was stored before the outage began: nothing was tested")
    e.check(e.stored(d.data, "sec") == N1 + sec_probes, "secure records stored while it was out")
    status, body = e.http_get(hport, "/readyz")
    e.check(status == 503 and "broker secure" in body, "/readyz with the secure broker still out: %d %r" %
            (status, body))

    outage = d.log().splitlines()[lines_before:]
    e.log("mqlogd's lines during the outage:\n  " + "\n  ".join(outage[:40]))
    warn = [l for l in outage if " warning: broker secure" in l]
    naming = [l for l in warn if files["ca.pem"] in l and "no such file" in l.lower()]
    e.check(len(naming) == 1, "%d warnings name the missing %s, expected 1:\n%s" %
            (len(naming), files["ca.pem"], "\n".join(outage)))
    # lost, maybe refused while the broker restarted, then the missing file: each change once
    e.check(len(warn) <= 3, "%d warnings about the secure broker during the outage:\n%s" % (len(warn), "\n".join(warn)))
    refused = [l for l in outage if " error: " in l and "broker 'secure'" in l]
    e.check(any(files["ca.pem"] in l for l in refused) and any(pwfile in l for l in refused),
            "the refused reload does not name the missing files:\n%s" % "\n".join(outage))

    # the files come back: mqlogd reconnects by itself and the queued messages arrive
    for n, p in files.items():
        with open(p, "wb") as f:
            f.write(saved[n])
    with open(pwfile, "w") as f:
        f.write("s3cret word\n")
    back_at = time.monotonic()
    e.wait_for(lambda: e.http_get(hport, "/readyz")[0] == 200, 30, "/readyz to answer 200 once the files are back")
    e.log("reconnected %.1f s after the files came back" % (time.monotonic() - back_at))
    sec = [b for b in json.loads(e.http_get(hport, "/status.json")[1])["brokers"] if b["name"] == "secure"]
    e.check(sec and "last_error" not in sec[0], "status.json keeps a last_error once connected: %r" % sec)
    e.wait_complete(d.data, "sec", N1 + N2, prefix="sec", timeout=30, alive=alive)

    # a rotated password: the broker restarts with a new one and refuses mqlogd, which read its password
    # file when it started; the operator writes the new password and reloads, and mqlogd logs in again
    e.run(["mosquitto_passwd", "-b", passwd, "gw", "n3w word"])
    secure.restart()
    e.wait_for(lambda: "not authori" in d.log().lower(), 30,
               "mqlogd to be refused with the old password")
    with open(pwfile, "w") as f:
        f.write("n3w word\n")
    d.proc.send_signal(signal.SIGHUP)
    e.wait_for(lambda: "password file %s changed" % pwfile in d.log(), 30, "the reload to see the new password")
    e.wait_for(lambda: e.http_get(hport, "/readyz")[0] == 200, 30, "mqlogd to log in with the new password")
    e.publish(secure.pub_port, N3, qos=1, topics=5, first=N1 + N2, prefix="sec", client_id="vanish-pub-sec")
    recs = e.wait_complete(d.data, "sec", N1 + N2 + N3, prefix="sec", timeout=30, alive=alive)
    e.check_stream(recs, N1 + N2 + N3, 5, prefix="sec", qos=1, broker="secure", exact=True)
    recs = e.consume(d.data, "pln")
    e.check_stream(recs, NP, 5, prefix="pln", qos=1, broker="plain", exact=True)
    d.stop()
    e.log("PASS: %s: secure broker out for %.1f s, %d + %d + %d secure and %d plain messages stored exactly "
          "once (%.1f s)" % (CONNECTOR, back_at - out_at, N1, N2, N3, NP, time.monotonic() - t0))


if __name__ == "__main__":
    main()
