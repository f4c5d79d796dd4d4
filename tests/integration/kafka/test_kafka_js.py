"""test_kafka_js.py - KafkaJS (npm kafkajs, pinned in js/package-lock.json) against mqlogd's Kafka endpoint
(issue 12): consumer groups, describeGroups, listGroups, fetchTopicOffsets, fetchOffsets and resetOffsets.

Stores 2 x 5 records in topic "t" with `mqlog produce`, starts mqlogd with a plaintext endpoint on a free
loopback port, and runs js/groups.js with Node.js, which does every step and check (see its header). Node.js
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


def main():
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        sys.exit("test_kafka_js: node is missing (scripts/setup installs Debian's nodejs)")
    if not os.path.isfile(os.path.join(JS_DIR, "node_modules", "kafkajs", "package.json")):
        sys.exit("test_kafka_js: kafkajs is not installed in %s (scripts/setup runs `npm ci` there)" % JS_DIR)

    port = e.free_port()
    bootstrap = "127.0.0.1:%d" % port
    d = e.Daemon("data_dir: @DATA@\nbrokers: []\nmappings: []\nkafka:\n  listen: \"%s\"\n" % bootstrap)
    e.run([e.MQLOG, "create", "-d", d.data, "t", "--partitions", str(PARTITIONS)])
    for p in range(PARTITIONS):
        lines = "".join("p%d-r%d\n" % (p, o) for o in range(PER_PARTITION))
        r = subprocess.run([e.MQLOG, "produce", "-d", d.data, "t", "-p", str(p)], input=lines, text=True,
                           capture_output=True, timeout=60)
        e.check(r.returncode == 0, "mqlog produce: %s" % r.stderr)
    d.start()
    try:
        r = subprocess.run([node, os.path.join(JS_DIR, "groups.js"), bootstrap, "t", str(PARTITIONS),
                            str(PER_PARTITION)], cwd=JS_DIR, capture_output=True, text=True, timeout=180)
        sys.stdout.write(r.stdout)
        sys.stdout.write(r.stderr[-4000:])
        sys.stdout.flush()
        if r.returncode != 0:
            e.fail("groups.js exited %d; mqlogd's log ends:\n%s" % (r.returncode, d.log()[-3000:]))
        d.stop()
    finally:
        if d.alive():
            d.kill()
    print("test_kafka_js: all passed", flush=True)


if __name__ == "__main__":
    main()
