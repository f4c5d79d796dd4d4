"""test_daemon_check.py - `mqlogd --check` and `mqlog route` as an operator runs them, no broker needed.

- Every broken fixture tests/data/config/bad_NAME.yaml makes `mqlogd -c FILE --check` exit 1 and print
  exactly the lines of bad_NAME.expect (FILE:LINE:COL: message), in order, and nothing else on stdout.
- The good fixtures and the shipped example conf/mqlogd.yaml pass with exit 0.
- A missing file and a bad option are refused with one line each and exit 1 and 2.
- `mqlog route` prints LOG_TOPIC PARTITION per matching mapping, `unmatched` otherwise, and its partition
  agrees with Kafka's murmur2 partitioner for the key the mapping takes (checked here against a second
  implementation in Python, so that a change of either side shows).
- `mqlogd --check` never touches data_dir: the example's /var/lib/mqlog is not created.
- Forwarders are checked without connecting, their librdkafka properties by librdkafka itself
  (bad_forward.yaml holds a bad value for every forwarder key).
"""
import glob
import os
import resource

import e2e_lib as e

FIXTURES = os.path.join(e.SOURCE_DIR, "tests", "data", "config")
EXAMPLE = os.path.join(e.SOURCE_DIR, "conf", "mqlogd.yaml")


def cpu():
    """CPU seconds of the child processes that ended: what a quadratic cost shows in, whatever else runs."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def check(path, cwd):
    return e.run([e.MQLOGD, "-c", path, "--check"], check=False, cwd=cwd)


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), seed 0x9747b28c."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    i = 0
    while length - i >= 4:
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
        i += 4
    rest = length - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def kafka_partition(key, n):
    return (murmur2(key.encode()) & 0x7FFFFFFF) % n


def main():
    bad = sorted(glob.glob(os.path.join(FIXTURES, "bad_*.yaml")))
    if len(bad) < 10:
        e.fail("expected the broken-configuration fixtures in %s, found %d" % (FIXTURES, len(bad)))
    for path in bad:
        name = os.path.basename(path)
        with open(path[:-5] + ".expect") as f:
            want = [line.rstrip("\n") for line in f if line.strip()]
        p = check(name, FIXTURES)
        # included files are named by their resolved path; the fixtures name them relative to their folder
        got = [line.replace(FIXTURES + "/", "") for line in p.stderr.splitlines()]
        if p.returncode != 1:
            e.fail("%s: exit %d, expected 1; stderr:\n%s" % (name, p.returncode, p.stderr))
        if got != want:
            e.fail("%s: --check printed\n  %s\nexpected\n  %s" % (name, "\n  ".join(got), "\n  ".join(want)))
        if p.stdout:
            e.fail("%s: unexpected output on stdout: %r" % (name, p.stdout))
    e.log("--check: %d broken files, each with exactly its expected FILE:LINE:COL lines and exit 1" % len(bad))

    for path in sorted(glob.glob(os.path.join(FIXTURES, "good_*.yaml"))) + [EXAMPLE]:
        p = check(path, FIXTURES)
        if p.returncode != 0 or p.stderr:
            e.fail("%s: exit %d, expected 0; stderr:\n%s" % (path, p.returncode, p.stderr))
        if "OK" not in p.stdout:
            e.fail("%s: no OK line: %r" % (path, p.stdout))
    if os.path.exists("/var/lib/mqlog"):
        e.log("note: /var/lib/mqlog exists on this machine; not checking that --check leaves it alone")
    e.log("--check: good fixtures and conf/mqlogd.yaml pass")

    d = e.tmpdir("check")
    p = check(os.path.join(d, "missing.yaml"), d)
    if p.returncode != 1 or "missing.yaml: cannot read" not in p.stderr or len(p.stderr.splitlines()) != 1:
        e.fail("missing file: exit %d, stderr %r" % (p.returncode, p.stderr))
    p = e.run([e.MQLOGD, "--bogus"], check=False)
    if p.returncode != 2 or "unknown option" not in p.stderr:
        e.fail("bad option: exit %d, stderr %r" % (p.returncode, p.stderr))
    p = e.run([e.MQLOGD], check=False)
    if p.returncode != 2:
        e.fail("no -c: exit %d, expected 2" % p.returncode)

    # A configuration whose data_dir would be created by a real start: --check must not create it.
    data = os.path.join(d, "never-created")
    conf = os.path.join(d, "c.yaml")
    with open(conf, "w") as f:
        f.write('data_dir: "%s"\nbrokers:\n  - name: b\n    url: mqtt://127.0.0.1:1\n'
                'mappings:\n  - from: "a/#"\n    to: a\n' % data)
    p = check(conf, d)
    if p.returncode != 0:
        e.fail("minimal configuration: exit %d: %s" % (p.returncode, p.stderr))
    if os.path.exists(data):
        e.fail("mqlogd --check created data_dir %s" % data)

    # Every file a broker or forwarder names is read as its client will read it: a missing password file,
    # a CA file that is no PEM and a key of another certificate each get a FILE:LINE:COL line.
    tls = os.path.join(FIXTURES, "tls")
    with open(conf, "w") as f:
        f.write('data_dir: "%s"\nbrokers:\n'
                '  - name: a\n    url: mqtt://127.0.0.1:1\n    username: u\n    password_file: %s/none.pw\n'
                '  - name: b\n    url: mqtts://127.0.0.1:1\n    tls: {ca: %s/notpem.txt}\n'
                '  - name: c\n    url: mqtts://127.0.0.1:1\n    tls: {cert: %s/server.pem, key: %s/other.key}\n'
                'mappings:\n  - from: "a/#"\n    to: a\n' % (data, d, tls, tls, tls))
    p = check(conf, d)
    got = p.stderr.splitlines()
    want = ["%s:3:5: broker 'a': password_file %s/none.pw: no such file or directory" % (conf, d),
            "%s:7:5: broker 'b': tls ca: %s/notpem.txt holds no usable PEM CA certificate" % (conf, tls),
            "%s:10:5: broker 'c': tls key: the key in %s/other.key does not match the certificate in %s/server.pem"
            % (conf, tls, tls)]
    if p.returncode != 1 or len(got) != 3 or any(not g.startswith(w) for g, w in zip(got, want)):
        e.fail("referenced files: exit %d, stderr:\n%s\nexpected lines starting:\n%s" % (p.returncode, p.stderr,
                                                                                        "\n".join(want)))
    e.log("--check reads every referenced file: missing, not PEM and mismatched each named at FILE:LINE:COL")

    # Forwarders are checked without connecting: a good one passes (its cluster does not exist), a property
    # librdkafka refuses is reported with librdkafka's message where it is written (bad_forward.yaml above
    # has every other key).
    fwd = 'forward:\n  - name: central\n    bootstrap: 127.0.0.1:1\n    topics: "telemetry.*"\n'
    with open(conf, "w") as f:
        f.write('data_dir: "%s"\nsite: plant-7\n%s    properties: {linger.ms: 20}\n' % (data, fwd))
    p = check(conf, d)
    if p.returncode != 0 or p.stderr:
        e.fail("a good forwarder: exit %d: %s" % (p.returncode, p.stderr))
    with open(conf, "w") as f:
        f.write('data_dir: "%s"\n%s    properties:\n      linger.ms: soon\n' % (data, fwd))
    p = check(conf, d)
    want = '%s:7:18: properties: \'linger.ms\': invalid value for configuration property ' \
        '"queue.buffering.max.ms"' % conf
    if p.returncode != 1 or p.stderr.splitlines() != [want]:
        e.fail("a bad forwarder property: exit %d, stderr %r, expected %r" % (p.returncode, p.stderr, want))
    e.log("--check: forwarders checked without connecting, librdkafka's message at FILE:LINE:COL")

    # Hostile sizes (issue 11, finding 9): 100,000 nested lists took libyaml 36 s; --check refuses them at
    # once where the 65th starts. 40,000 filters took 3.7 s to check for repeats. The bound (CPU time) only
    # catches a return of the quadratic cost.
    with open(conf, "w") as f:
        f.write('data_dir: "%s"\nx: %s%s\n' % (data, "[" * 100000, "]" * 100000))
    t0 = cpu()
    p = check(conf, d)
    secs = cpu() - t0
    want = "%s:2:67: YAML mappings and lists nest more than 64 deep" % conf
    if p.returncode != 1 or p.stderr.splitlines() != [want] or secs > 10:
        e.fail("100000 nested lists: exit %d in %.1f s, stderr %r, expected %r" % (p.returncode, secs, p.stderr,
                                                                                   want))
    e.log("--check: 100000 nested lists refused in %.3f s CPU" % secs)
    with open(conf, "w") as f:
        f.write('data_dir: "%s"\nmappings:\n  - to: t\n    from:\n' % data)
        f.writelines("      - sensors/%d/+/temperature\n" % i for i in range(40000))
    t0 = cpu()
    p = check(conf, d)
    secs = cpu() - t0
    if p.returncode != 0 or secs > 10:
        e.fail("40000 filters: exit %d in %.1f s: %s" % (p.returncode, secs, p.stderr))
    e.log("--check: 40000 filters checked in %.3f s CPU" % secs)

    # mqlog route on the shipped example: each line is what the gateway does with that message.
    def route(topic, payload=None):
        args = [e.MQLOG, "route", "-c", EXAMPLE, topic]
        if payload is not None:
            args += ["--payload", payload]
        return e.run(args).stdout.splitlines()

    for sensor in ("hall", "roof", "basement-3", "s\u00fcd"):
        got = route("sensors/%s/temperature" % sensor)
        want = ["telemetry.temperature %d" % kafka_partition(sensor, 8)]  # key: level:2, 8 partitions
        if got != want:
            e.fail("route sensors/%s/temperature: %s, expected %s" % (sensor, got, want))
    topic = "sensors/hall/humidity"
    if route(topic) != ["telemetry.hall %d" % kafka_partition(topic, 2)]:  # "telemetry.{1}", key: topic
        e.fail("route %s: %s" % (topic, route(topic)))
    got = route("alerts/fire", '{"device":{"id":"d-17"},"level":3}')
    if got != ["alerts %d" % kafka_partition("d-17", 4)]:  # key: json:/device/id
        e.fail("route alerts/fire with a JSON payload: %s" % got)
    rr = os.path.join(d, "rr.yaml")
    with open(rr, "w") as f:
        f.write('data_dir: "%s"\nmappings:\n  - from: "a/#"\n    to: t\n    partitions: 4\n    key: none\n' % data)
    got = e.run([e.MQLOG, "route", "-c", rr, "a/b", "-v"]).stdout
    if "key null, round-robin over the 4 partitions: 0 is where the first such message after a start goes" not in got:
        e.fail("route -v with a null key does not say it goes round-robin: %r" % got)
    if route("nobody/listens") != ["unmatched"]:
        e.fail("route nobody/listens: %s" % route("nobody/listens"))
    if route("$SYS/broker/load") != ["unmatched"]:
        e.fail("a $-topic must not match a leading wildcard")
    p = e.run([e.MQLOG, "route", "-c", EXAMPLE, "sensors/+/temperature"], check=False)
    if p.returncode == 0:
        e.fail("mqlog route accepted a wildcard as a topic name: %s" % p.stdout)
    p = e.run([e.MQLOG, "route", "-c", os.path.join(FIXTURES, "bad_filters.yaml"), "a/b"], check=False)
    if p.returncode == 0 or "bad_filters.yaml:2:11:" not in p.stderr:
        e.fail("mqlog route on a broken file: exit %d, stderr %r" % (p.returncode, p.stderr))
    e.log("PASS: --check on %d broken and the good files; mqlog route agrees with Kafka's partitioner" % len(bad))


main()
