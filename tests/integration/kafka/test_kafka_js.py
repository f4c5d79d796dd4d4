"""test_kafka_js.py - KafkaJS (npm kafkajs, pinned in js/package-lock.json) against mqlogd's Kafka endpoint
(issue 12): consumer groups, describeGroups, listGroups, fetchTopicOffsets, fetchOffsets and resetOffsets,
and SASL with each mechanism.

Stores 2 x 5 records in topic "t" with `mqlog produce`, starts mqlogd with a plaintext listener and a SASL
one (PLAIN, SCRAM-SHA-256/512, user "jsuser") on free loopback ports, and runs js/groups.js, then js/sasl.js
with Node.js; they do every step and check (see their headers). Node.js
and the modules are installed by scripts/setup (Debian's nodejs and npm, then `npm ci` in js/); the test
fails, rather than skips, when either is missing.
"""
import os
import shutil
import subprocess
import sys

import e2e_lib as e

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
PARTITIONS = 2
PER_PARTITION = 5


def node_run(node, d, script, *args):
    """Runs js/SCRIPT with args; fails with its output and mqlogd's log when it exits non-zero."""
    r = subprocess.run([node, os.path.join(JS_DIR, script)] + list(args), cwd=JS_DIR, capture_output=True,
                       text=True, timeout=180)
    sys.stdout.write(r.stdout)
    sys.stdout.write(r.stderr[-4000:])
    sys.stdout.flush()
    if r.returncode != 0:
        e.fail("%s exited %d; mqlogd's log ends:\n%s" % (script, r.returncode, d.log()[-3000:]))


def main():
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        sys.exit("test_kafka_js: node is missing (scripts/setup installs Debian's nodejs)")
    if not os.path.isfile(os.path.join(JS_DIR, "node_modules", "kafkajs", "package.json")):
        sys.exit("test_kafka_js: kafkajs is not installed in %s (scripts/setup runs `npm ci` there)" % JS_DIR)

    port, sasl_port = e.free_port(), e.free_port()
    while sasl_port == port:
        sasl_port = e.free_port()
    bootstrap, sasl_bootstrap = "127.0.0.1:%d" % port, "127.0.0.1:%d" % sasl_port
    d = e.Daemon("data_dir: @DATA@\nbrokers: []\nmappings: []\nkafka:\n  listeners:\n"
                 "    - listen: \"%s\"\n"
                 "    - listen: \"%s\"\n"
                 "      sasl: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]\n"
                 "      allow_plain_without_tls: true\n" % (bootstrap, sasl_bootstrap))
    e.run([e.MQLOG, "create", "-d", d.data, "t", "--partitions", str(PARTITIONS)])
    for p in range(PARTITIONS):
        lines = "".join("p%d-r%d\n" % (p, o) for o in range(PER_PARTITION))
        r = subprocess.run([e.MQLOG, "produce", "-d", d.data, "t", "-p", str(p)], input=lines, text=True,
                           capture_output=True, timeout=60)
        e.check(r.returncode == 0, "mqlog produce: %s" % r.stderr)
    r = subprocess.run([e.MQLOG, "user", "add", "-d", d.data, "jsuser"], input="js-secret\n", text=True,
                       capture_output=True, timeout=60)  # both SCRAM mechanisms, which PLAIN checks against
    e.check(r.returncode == 0, "mqlog user add: %s" % r.stderr)
    d.start()
    try:
        node_run(node, d, "groups.js", bootstrap, "t", str(PARTITIONS), str(PER_PARTITION))
        node_run(node, d, "sasl.js", sasl_bootstrap, "t", "jsuser", "js-secret")
        d.stop()
    finally:
        if d.alive():
            d.kill()
    print("test_kafka_js: all passed", flush=True)


if __name__ == "__main__":
    main()
