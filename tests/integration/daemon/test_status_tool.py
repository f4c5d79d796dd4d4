"""test_status_tool.py - `mqlog status` against a running mqlogd with a real mosquitto.

- -c FILE finds the endpoint from http.listen, --url names it; both show the brokers, the rate per mapping,
  the topics with their records and retention horizon, the consumer-group lag, and exit 0 while ready;
- --json prints the daemon's document;
- with the broker stopped it exits 4 (not ready) and prints why;
- with mqlogd stopped it exits 1 with one sentence naming the address;
- a configuration without http.listen is refused with a sentence saying what to add.
"""
import json
import os
import shutil
import time

import e2e_lib as e

N = e.scaled(300)
MQLOG = os.environ["MQLOG"]


def status(*args):
    return e.run([MQLOG, "status"] + list(args), check=False, timeout=30)


def main():
    kcat = shutil.which("kcat")
    if not kcat:
        e.fail("kcat is not installed (scripts/setup installs it)")
    started = time.monotonic()
    br = e.Broker()
    hport, kport = e.free_port(), e.free_port()
    d = e.Daemon(e.config(
        [e.broker(br.port, "mosquitto", "status-test", reconnect_min="100ms", reconnect_max="200ms")],
        [e.mapping("e2e/#", "t1", qos=1, partitions=2)], unmatched="unmatched",
        kafka={"listen": "127.0.0.1:%d" % kport}, http={"listen": "127.0.0.1:%d" % hport}))
    d.start()
    url = "http://127.0.0.1:%d" % hport
    e.wait_for(lambda: status("--url", url).returncode == 0, 10, "mqlog status to say ready")
    e.publish(br.port, N, qos=1, topics=10, prefix="e2e")

    def stored():
        doc = json.loads(status("--url", url, "--json").stdout)
        return doc if doc["messages"]["stored"] == N else None

    doc = e.wait_for(stored, 30, "mqlog status --json to count %d stored messages" % N)
    e.check(doc["ready"] is True and [b["name"] for b in doc["brokers"]] == ["local"], "--json: %r" % doc)
    e.run([kcat, "-b", "127.0.0.1:%d" % kport, "-G", "g1", "t1", "-e", "-q", "-o", "beginning",
           "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100"], timeout=60)
    # the rates need two samples of the counters, taken MQ_OBS_RATE_MS apart by the daemon
    e.wait_for(lambda: json.loads(status("--url", url, "--json").stdout)["mappings"][0]["records_per_s"]
               is not None, 15, "a rate per mapping")

    p = status("-c", d.conf)
    e.check(p.returncode == 0, "mqlog status -c exited %d: %s%s" % (p.returncode, p.stdout, p.stderr))
    out = p.stdout
    e.log("mqlog status -c:\n" + out)
    lines = out.splitlines()
    e.check(lines[0].startswith("mqlogd ") and ": ready, healthy, up " in lines[0], "first line: %r" % lines[0])

    def row(first):
        rows = [ln.split() for ln in lines if ln.split()[:1] == [first]]
        e.check(len(rows) == 1, "no single row %r in:\n%s" % (first, out))
        return rows[0]

    e.check(row("local")[1:3] == ["mqtt://127.0.0.1:%d" % br.port, "1/1"], "broker row: %r" % row("local"))
    r = [x for x in lines if x.split()[:2] == ["t1", str(N)]]
    e.check(len(r) == 1 and r[0].endswith("/s"), "mapping row of t1 with %d stored and a rate: %r" % (N, r))
    r = [x.split() for x in lines if x.split()[:3] == ["t1", "2", str(N)]]
    e.check(len(r) == 1 and r[0][-1] == "ago", "topic row of t1 (2 partitions, %d records, oldest): %r" % (N, r))
    e.check(row("g1")[1:] == ["t1", "2", "0", "0"], "group row: %r" % row("g1"))
    e.check(status("--url", url + "/").returncode == 0, "a trailing slash in --url")

    # a broker down: not ready, exit 4, the reason shown
    br.stop()
    e.wait_for(lambda: status("--url", url).returncode == 4, 5, "mqlog status to exit 4 with the broker down")
    p = status("-c", d.conf)
    e.check(p.returncode == 4 and "NOT READY" in p.stdout and
            "not ready: broker local: 0 of 1 connections up" in p.stdout, "not ready: %r" % p.stdout)
    p = status("--url", url, "--json")
    e.check(p.returncode == 4 and json.loads(p.stdout)["ready"] is False, "--json not ready: %r" % p.stdout[:200])
    br.start()
    e.wait_for(lambda: status("--url", url).returncode == 0, 10, "ready again once the broker is back")

    # the daemon gone: one sentence, exit 1
    d.stop()
    p = status("-c", d.conf)
    err = p.stderr.strip()
    e.check(p.returncode == 1 and err.startswith("mqlog: cannot reach mqlogd at %s: " % url) and
            "\n" not in err, "daemon down: %d %r" % (p.returncode, err))
    e.log("daemon down: " + err)

    # usage and configuration errors
    e.check(status().returncode == 2, "no -c and no --url")
    e.check(status("-c", d.conf, "--url", url).returncode == 2, "both -c and --url")
    e.check(status("--url", "https://x:1").returncode == 2, "https")
    plain = os.path.join(d.dir, "plain.yaml")
    with open(plain, "w") as f:
        f.write(open(d.conf).read().split("http:")[0])
    p = status("-c", plain)
    e.check(p.returncode == 1 and "has no http.listen" in p.stderr, "no http.listen: %r" % p.stderr)
    e.log("OK: mqlog status checked in %.1f s" % (time.monotonic() - started))


if __name__ == "__main__":
    main()
