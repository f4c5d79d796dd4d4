"""test_http_endpoints.py - mqlogd's operator endpoints (http.listen) with a real mosquitto and kcat.

- /metrics is valid Prometheus text (promtool check metrics; the test fails when promtool is missing) and
  accounts for every message: received = stored + unmatched + rejected + pending, with the per-broker,
  per-mapping, per-partition and consumer-group figures matching what was published and read;
- /status.json parses and tells the same story;
- /healthz answers 200 while the loops turn;
- /readyz answers 503 naming the broker within 2 s of the broker stopping, and 200 once it is back;
- http.partition_metrics: false leaves out the per-partition and per-group series.
"""
import json
import shutil
import subprocess
import time

import e2e_lib as e

N = e.scaled(500)  # messages through the mapping
U = 7  # messages no mapping takes


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def promtool_check(text):
    tool = shutil.which("promtool")
    if not tool:
        e.fail("promtool is not installed (scripts/setup installs the Debian package prometheus)")
    p = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        e.fail("promtool check metrics:\n%s%s" % (p.stdout, p.stderr))


def main():
    kcat = shutil.which("kcat")
    if not kcat:
        e.fail("kcat is not installed (scripts/setup installs it)")
    br = e.Broker()
    hport, kport = e.free_port(), e.free_port()
    conf = lambda partition_metrics: e.config(  # noqa: E731
        [e.broker(br.port, "mosquitto", "http-test", reconnect_min="100ms", reconnect_max="200ms")],
        [e.mapping("e2e/#", "t1", qos=1, partitions=2), e.mapping("probe/#", "probe", qos=1)],
        unmatched="unmatched", kafka={"listen": "127.0.0.1:%d" % kport},
        http={"listen": "127.0.0.1:%d" % hport, "partition_metrics": partition_metrics})
    d = e.Daemon(conf(True))
    d.start()
    started = time.monotonic()
    e.wait_for(lambda: e.http_get(hport, "/readyz")[0] == 200, 10,
               "/readyz to answer 200 once the broker is connected")
    e.wait_subscribed(br.port, d.data, "probe", 1, 5, probe="probe/x")
    e.publish(br.port, N, qos=1, topics=10, prefix="e2e")
    e.publish(br.port, U, qos=1, topics=1, prefix="zz")

    def settled():
        s = e.parse_metrics(e.http_get(hport, "/metrics")[1])
        done = e.metric_value(s, "mqlog_mapping_records_stored_total", mapping="t1") == N and \
            e.metric_value(s, "mqlog_messages_unmatched_total") == U and \
            e.metric_value(s, "mqlog_messages_pending") == 0
        return s if done else None

    e.wait_for(settled, 30, "/metrics to count %d mapped and %d unmatched messages" % (N, U))
    # a consumer group reads t1 to its end and commits
    e.run([kcat, "-b", "127.0.0.1:%d" % kport, "-G", "g1", "t1", "-e", "-q", "-o", "beginning",
           "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100"], timeout=60)

    status, text = e.http_get(hport, "/metrics")
    e.check(status == 200, "/metrics answered %d" % status)
    promtool_check(text)
    s = e.parse_metrics(text)
    probes = e.metric_value(s, "mqlog_mapping_records_stored_total", mapping="probe")
    e.check(probes and probes >= 1, "no probe counted: %r" % probes)
    received = e.metric_value(s, "mqlog_messages_received_total")
    stored = e.metric_value(s, "mqlog_messages_stored_total")
    unmatched = e.metric_value(s, "mqlog_messages_unmatched_total")
    rejected = total(s, "mqlog_messages_rejected_total")
    pending = e.metric_value(s, "mqlog_messages_pending")
    e.check(received == stored + unmatched + rejected + pending,
            "not conserved: received %s != stored %s + unmatched %s + rejected %s + pending %s" %
            (received, stored, unmatched, rejected, pending))
    e.check(stored == N + probes and unmatched == U and rejected == 0 and pending == 0,
            "stored %s (want %d + %d probes), unmatched %s (want %d), rejected %s" %
            (stored, N, probes, unmatched, U, rejected))
    e.check(e.metric_value(s, "mqlog_broker_messages_received_total", broker="local") == received,
            "the broker's count differs from received")
    e.check(e.metric_value(s, "mqlog_broker_connected", broker="local") == 1, "broker not counted connected")
    e.check(e.metric_value(s, "mqlog_broker_connects_total", broker="local") == 1, "connects != 1")
    ends = [e.metric_value(s, "mqlog_partition_end_offset", topic="t1", partition=str(p)) for p in (0, 1)]
    e.check(None not in ends and sum(ends) == N, "t1's end offsets %r do not add up to %d" % (ends, N))
    e.check(e.metric_value(s, "mqlog_partition_end_offset", topic="unmatched", partition="0") == U, "unmatched topic")
    lags = [e.metric_value(s, "mqlog_consumer_group_lag_records", group="g1", topic="t1", partition=str(p))
            for p in (0, 1)]
    e.check(lags == [0, 0], "g1's lag on t1 is %r after reading it to the end" % lags)
    e.check(e.metric_value(s, "mqlog_kafka_requests_total", api="Fetch") >= 1, "no Fetch counted")
    e.check(e.metric_value(s, "mqlog_kafka_sent_bytes_total") > 0, "no bytes sent counted")
    e.check(e.metric_value(s, "mqlog_store_fsyncs_total") > 0, "no fsync counted")
    e.check(e.metric_value(s, "mqlog_store_flush_duration_seconds_count") > 0, "no flush timed")
    e.check(e.metric_value(s, "mqlog_store_free_bytes") > 0, "free bytes")
    info = [(dict(l), v) for (n, l), v in s.items() if n == "mqlog_build_info"]
    e.check(len(info) == 1 and info[0][1] == 1 and info[0][0].get("version"), "build_info: %r" % info)
    e.check(e.metric_value(s, "mqlog_ready") == 1, "mqlog_ready is not 1")

    status, body = e.http_get(hport, "/status.json")
    e.check(status == 200, "/status.json answered %d" % status)
    doc = json.loads(body)
    e.check(doc["ready"] is True and doc["healthy"] is True, "status.json: %r" % body[:300])
    e.check(doc["messages"]["received"] == received and doc["messages"]["stored"] == stored,
            "status.json's counts differ from /metrics")
    e.check([b["name"] for b in doc["brokers"]] == ["local"], "status.json brokers")
    t1 = [t for t in doc["topics"] if t["name"] == "t1"]
    e.check(t1 and t1[0]["records"] == N, "status.json topic t1: %r" % t1)
    e.check(any(g["group"] == "g1" and g["lag"] == 0 for g in doc["groups"]), "status.json groups")

    status, body = e.http_get(hport, "/healthz")
    e.check(status == 200 and body == "ok\n", "/healthz: %d %r" % (status, body))
    e.check(e.http_get(hport, "/nothing")[0] == 404, "an unknown path is not 404")

    # readiness follows the broker
    br.stop()
    down = time.monotonic()
    e.wait_for(lambda: e.http_get(hport, "/readyz")[0] == 503, 2,
               "/readyz to answer 503 within 2 s of the broker stopping")
    status, body = e.http_get(hport, "/readyz")
    e.check("broker local: 0 of 1 connections up" in body, "/readyz does not name the broker: %r" % body)
    e.log("/readyz said not ready %.2f s after the broker stopped: %s" % (time.monotonic() - down, body.strip()))
    e.check(e.http_get(hport, "/healthz")[0] == 200, "/healthz failed while only the broker is down")
    br.start()
    e.wait_for(lambda: e.http_get(hport, "/readyz")[0] == 200, 10, "/readyz to answer 200 once the broker is back")
    s = e.parse_metrics(e.http_get(hport, "/metrics")[1])
    e.check(e.metric_value(s, "mqlog_broker_disconnects_total", broker="local") == 1, "disconnect not counted")

    # huge sites: no per-partition or per-group series
    d.stop()
    d.write_config(conf(False))
    d.start()
    text = e.http_get(hport, "/metrics")[1]
    promtool_check(text)
    for family in ("mqlog_partition_", "mqlog_consumer_group_lag_records{"):
        e.check(family not in text, "%s series with partition_metrics: false" % family)
    e.check("mqlog_store_partitions " in text, "the store-wide totals are gone too")
    d.stop()
    e.log("OK: endpoints checked in %.1f s (%d messages)" % (time.monotonic() - started, N))


if __name__ == "__main__":
    main()
