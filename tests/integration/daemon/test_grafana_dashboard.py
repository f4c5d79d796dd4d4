"""test_grafana_dashboard.py - contrib/grafana/mqlog.json against a live mqlogd, and the forwarder's metrics
against a live forwarder.

mqlogd ingests from a real mosquitto (mapped, unmatched), a consumer group reads a topic through its Kafka
endpoint (kcat) and a forwarder copies the topic to librdkafka's mock cluster, so that every metric family
has samples. Then:
- the dashboard is JSON of the shape Grafana imports (unique panel ids, a grid position each, every query
  on the datasource variable with a refId), and promtool parses every query (as recording rules);
- every metric name the queries use is in the live /metrics scrape;
- the forwarder's series tell what happened: up, state delivering, every record sent, lag 0 in records,
  bytes and seconds once it caught up.
"""
import json
import os
import re
import shutil
import subprocess
import time

import e2e_lib as e

N = e.scaled(400)
SITE = "plant-7"
DASHBOARD = os.path.join(os.environ["MQ_SOURCE_DIR"], "contrib", "grafana", "mqlog.json")


def panels_of(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def check_shape(dash):
    """The dashboard's structure; returns its queries."""
    e.check(dash.get("uid") and dash.get("title") and isinstance(dash.get("schemaVersion"), int), "dashboard header")
    names = [v["name"] for v in dash["templating"]["list"]]
    e.check(names[:1] == ["datasource"], "the first variable is the datasource: %r" % names)
    ids, exprs = set(), []
    for p in panels_of(dash):
        e.check(p["id"] not in ids, "panel id %r twice" % p["id"])
        ids.add(p["id"])
        g = p["gridPos"]
        e.check(0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, "panel %r: gridPos %r" % (p["title"], g))
        if p["type"] == "row":
            continue
        e.check(p.get("targets"), "panel %r has no query" % p["title"])
        refs = [t["refId"] for t in p["targets"]]
        e.check(len(set(refs)) == len(refs), "panel %r: refIds %r" % (p["title"], refs))
        for t in p["targets"]:
            e.check(t["datasource"]["uid"] == "${datasource}", "panel %r: a query not on $datasource" % p["title"])
            exprs.append((p["title"], t["expr"]))
    return exprs


def promtool_parse(exprs, d):
    """promtool parses each query (the dashboard's $instance made a regex that matches anything)."""
    tool = shutil.which("promtool")
    if not tool:
        e.fail("promtool is not installed (scripts/setup installs the Debian package prometheus)")
    rules = os.path.join(d, "dashboard_rules.yml")
    with open(rules, "w") as f:
        f.write("groups:\n- name: dashboard\n  rules:\n")
        for i, (_, expr) in enumerate(exprs):
            f.write("  - record: dashboard:query_%d\n    expr: %s\n" % (i, json.dumps(expr.replace("$instance", ".*"))))
    p = subprocess.run([tool, "check", "rules", rules], capture_output=True, text=True, timeout=60)
    e.check(p.returncode == 0, "promtool check rules on the dashboard's queries:\n%s%s" % (p.stdout, p.stderr))


def main():
    started = time.monotonic()
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = check_shape(dash)
    kcat = shutil.which("kcat")
    if not kcat:
        e.fail("kcat is not installed (scripts/setup installs it)")

    mock = e.KafkaMock(brokers=1)
    mock.create("%s.t1" % SITE, 2)
    br = e.Broker()
    hport, kport = e.free_port(), e.free_port()
    d = e.Daemon(e.config(
        [e.broker(br.port, "mosquitto", "dash-test", reconnect_min="100ms", reconnect_max="200ms")],
        [e.mapping("e2e/#", "t1", qos=1, partitions=2)], unmatched="unmatched", site=SITE,
        kafka={"listen": "127.0.0.1:%d" % kport}, http={"listen": "127.0.0.1:%d" % hport},
        forward=[e.forwarder("central", mock.bootstrap, ["t1"], properties={"linger.ms": "5"})]))
    promtool_parse(exprs, d.dir)
    d.start()
    e.wait_subscribed(br.port, d.data, "t1", 1, 5)
    e.publish(br.port, N, qos=1, topics=10, prefix="e2e")
    e.publish(br.port, 3, qos=1, topics=1, prefix="zz")  # unmatched
    t1 = e.wait_complete(d.data, "t1", N, timeout=60)
    total = len(t1)  # N, plus the probes wait_subscribed published
    e.run([kcat, "-b", "127.0.0.1:%d" % kport, "-G", "g1", "t1", "-e", "-q", "-o", "beginning",
           "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100"], timeout=60)

    # the forwarder, live: everything sent, nothing behind
    def caught_up():
        s = e.parse_metrics(e.http_get(hport, "/metrics")[1])
        done = e.metric_value(s, "mqlog_forwarder_records_sent_total", forwarder="central") == total and \
            e.metric_value(s, "mqlog_forwarder_lag_records", forwarder="central") == 0
        return s if done else None

    s = e.wait_for(caught_up, 60, "the forwarder to send all %d records of t1 and have no lag" % total)
    e.check(e.metric_value(s, "mqlog_forwarder_up", forwarder="central") == 1, "forwarder not up")
    e.check(e.metric_value(s, "mqlog_forwarder_state", forwarder="central", state="delivering") == 1,
            "state not delivering")
    others = [k for k, v in s.items() if k[0] == "mqlog_forwarder_state" and v == 1]
    e.check(len(others) == 1, "more than one state set: %r" % others)
    e.check(e.metric_value(s, "mqlog_forwarder_lag_bytes", forwarder="central") == 0, "lag bytes not 0")
    e.check(e.metric_value(s, "mqlog_forwarder_lag_seconds", forwarder="central") == 0, "lag seconds not 0")
    e.check(e.metric_value(s, "mqlog_forwarder_bytes_sent_total", forwarder="central") > 0, "no bytes sent counted")
    remote = e.wait_forwarded(mock.bootstrap, "%s.t1" % SITE, t1, timeout=60)
    e.check(len(remote) == total, "the cluster holds %d records, the metrics say %d sent" % (len(remote), total))

    # every metric the dashboard queries exists in the scrape
    live = {name for name, _ in s}
    used = {}
    for title, expr in exprs:
        for name in re.findall(r"\bmqlog_[a-z0-9_]+", expr):
            used.setdefault(name, title)
    missing = sorted("%s (panel %r)" % (n, t) for n, t in used.items() if n not in live)
    e.check(not missing, "the dashboard queries metrics /metrics does not have: %s" % ", ".join(missing))
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in live}
    unused = sorted(f for f in families if f not in used and f + "_bucket" not in used)
    e.log("dashboard: %d panels, %d queries over %d metrics, all in a live scrape; families not on it: %s" %
          (sum(1 for _ in panels_of(dash)), len(exprs), len(used), ", ".join(unused) or "none"))
    d.stop()
    br.stop()
    mock.stop()
    e.log("OK: dashboard and forwarder metrics checked in %.1f s" % (time.monotonic() - started))


if __name__ == "__main__":
    main()
