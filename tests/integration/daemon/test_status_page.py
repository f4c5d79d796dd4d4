"""test_status_page.py - mqlogd's status page (/) rendered by headless Chromium against a live daemon.

A real mosquitto, mqlogd with http.listen and a Kafka listener, messages through a mapping and unmatched
ones, a consumer group (kcat) that read a topic; then Chromium loads the page, lets its script poll
/status.json, and the test checks the rendered text (brokers and their state, mappings, topics, the group's
lag, the sparkline's caption) and takes a screenshot (kept beside the daemon's files; MQ_E2E_KEEP=1 keeps
them). The test fails when Chromium is missing (scripts/setup installs the Debian package chromium).
"""
import os
import re
import shutil
import struct
import subprocess
import time

import e2e_lib as e

N = e.scaled(300)


def chromium(args, d, timeout=120):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        e.fail("chromium is not installed (scripts/setup installs it)")
    # --no-sandbox: the tests run as root, where Chromium refuses its sandbox
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=" + os.path.join(d, "chromium"), "--virtual-time-budget=6000"] + args
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        e.fail("chromium did not finish within %d s" % timeout)
    if p.returncode != 0:
        e.fail("chromium exited with %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    return p.stdout


def text_of(dom):
    """The visible text of a DOM dump, roughly: tags become spaces, scripts and styles go."""
    dom = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)).replace("&nbsp;", " ")


def main():
    kcat = shutil.which("kcat")
    if not kcat:
        e.fail("kcat is not installed (scripts/setup installs it)")
    started = time.monotonic()
    br = e.Broker()
    hport, kport = e.free_port(), e.free_port()
    d = e.Daemon(e.config(
        [e.broker(br.port, "mosquitto", "page-test", name="plant-broker")],
        [e.mapping("e2e/#", "telemetry", qos=1, partitions=2), e.mapping("probe/#", "probes", qos=1)],
        unmatched="leftovers", kafka={"listen": "127.0.0.1:%d" % kport}, http={"listen": "127.0.0.1:%d" % hport}))
    d.start()
    e.wait_subscribed(br.port, d.data, "probes", 1, 5, probe="probe/x")
    e.publish(br.port, N, qos=1, topics=5, prefix="e2e")
    e.publish(br.port, 3, qos=1, topics=1, prefix="stray")
    e.wait_for(lambda: e.stored(d.data, "telemetry") == N and e.stored(d.data, "leftovers") == 3, 30,
               "the messages to be stored")
    e.run([kcat, "-b", "127.0.0.1:%d" % kport, "-G", "dashboard", "telemetry", "-e", "-q", "-o", "beginning",
           "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100"], timeout=60)

    url = "http://127.0.0.1:%d/" % hport
    text = text_of(chromium(["--dump-dom", url], d.dir))
    for want in ("mqlogd 0.", "healthy", "ready", "plant-broker", "connected", "telemetry", "probes", "leftovers",
                 "dashboard", "msg/s"):
        e.check(want in text, "the rendered page lacks %r:\n%s" % (want, text[:3000]))
    e.check(re.search(r"telemetry 2 %s " % re.escape("{:,}".format(N)), text),
            "the topics table does not show telemetry with 2 partitions and %d records:\n%s" % (N, text[:3000]))
    e.check("not ready" not in text and "unhealthy" not in text, "the page says something is wrong:\n" + text)

    shot = os.path.join(d.dir, "status_page.png")
    chromium(["--screenshot=" + shot, "--window-size=1100,1300", "--hide-scrollbars", url], d.dir)
    with open(shot, "rb") as f:
        head = f.read(24)
    e.check(head[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG")
    w, h = struct.unpack(">II", head[16:24])
    e.check((w, h) == (1100, 1300) and os.path.getsize(shot) > 10000,
            "screenshot %dx%d, %d bytes" % (w, h, os.path.getsize(shot)))
    e.log("screenshot: %s (%d bytes)" % (shot, os.path.getsize(shot)))
    d.stop()
    br.stop()
    e.log("OK: status page rendered and checked in %.1f s" % (time.monotonic() - started))


if __name__ == "__main__":
    main()
