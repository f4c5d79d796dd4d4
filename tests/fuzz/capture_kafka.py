#!/usr/bin/env python3
"""capture_kafka.py BUILD_DIR OUT_DIR - records the Kafka requests real clients send, for the fuzz corpus.

Creates a data directory with a topic of two partitions (mqlog create/produce), starts mqlogd with its Kafka endpoint
advertised on a proxy port, and runs kcat (metadata, consume, consumer group), kafka-python (a consumer
in a group that commits, then its admin client) and librdkafka's and confluent-kafka's admin clients through the
proxy, which writes every request frame a client sends (size prefix
included) to OUT_DIR/CLIENT-API-vVERSION (the first of each kind only: the corpus stays small).
Run by hand (with the python3 that has kafka-python, Debian's /usr/bin/python3) when the endpoint learns new
APIs; tests/fuzz/corpus/kafka/ holds the result.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

API = {0: "produce", 1: "fetch", 2: "listoffsets", 3: "metadata", 8: "offsetcommit", 9: "offsetfetch",
       10: "findcoordinator", 11: "joingroup", 12: "heartbeat", 13: "leavegroup", 14: "syncgroup",
       15: "describegroups", 16: "listgroups", 18: "apiversions", 22: "initproducerid", 32: "describeconfigs",
       42: "deletegroups", 60: "describecluster"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_listening(port, timeout):
    """Returns once something accepts connections on 127.0.0.1:port (mqlogd's listener), or exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # not synchronisation: the poll interval of the deadline loop
    sys.exit("mqlogd did not listen on port %d within %d s" % (port, timeout))


class Proxy(threading.Thread):
    def __init__(self, listen, target, out):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen))
        self.sock.listen(16)
        self.target, self.out, self.client = target, out, "client"
        self.seen = set()

    def run(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def save(self, frame):
        key, ver = struct.unpack("!hh", frame[4:8])
        name = "%s-%s-v%d" % (self.client, API.get(key, "api%d" % key), ver)
        if name not in self.seen:
            self.seen.add(name)
            with open(os.path.join(self.out, name), "wb") as f:
                f.write(frame)

    def serve(self, c):
        s = socket.create_connection(("127.0.0.1", self.target))

        def back():
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    c.sendall(b)
            except OSError:
                pass
            c.close()

        threading.Thread(target=back, daemon=True).start()
        buf = b""
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                buf += b
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("!i", buf[:4])[0]:
                    n = 4 + struct.unpack("!i", buf[:4])[0]
                    self.save(buf[:n])
                    s.sendall(buf[:n])
                    buf = buf[n:]
        except OSError:
            pass
        s.close()


def main():
    build, out = sys.argv[1], sys.argv[2]
    mqlog, mqlogd = os.path.join(build, "gateway", "mqlog"), os.path.join(build, "gateway", "mqlogd")
    d = tempfile.mkdtemp(prefix="mqlog-capture.")
    data = os.path.join(d, "data")
    subprocess.run([mqlog, "create", "-d", data, "t", "-P", "2"], check=True)
    subprocess.run([mqlog, "produce", "-d", data, "t", "-k", "k", "-H", "h=v"], input=b"a\nb\nc\n", check=True)
    real, proxy = free_port(), free_port()
    conf = os.path.join(d, "mqlogd.yaml")
    with open(conf, "w") as f:
        f.write("data_dir: %s\nkafka:\n  listen: 127.0.0.1:%d\n  advertised: 127.0.0.1:%d\n" % (data, real, proxy))
    daemon = subprocess.Popen([mqlogd, "-c", conf])
    p = Proxy(proxy, real, out)
    p.start()
    wait_listening(real, 30)
    b = "127.0.0.1:%d" % proxy
    try:
        p.client = "kcat"
        subprocess.run(["kcat", "-b", b, "-L"], check=True, capture_output=True, timeout=30)
        subprocess.run(["kcat", "-b", b, "-C", "-t", "t", "-e", "-o", "beginning"], check=True,
                       capture_output=True, timeout=30)
        subprocess.run(["kcat", "-b", b, "-C", "-t", "t", "-p", "0", "-o", "-1", "-e"], check=True,
                       capture_output=True, timeout=30)
        subprocess.run(["kcat", "-b", b, "-G", "g1", "-e", "t"], capture_output=True, timeout=60)
        p.client = "kafkapython"
        from kafka import KafkaConsumer
        c = KafkaConsumer("t", bootstrap_servers=b, group_id="g2", auto_offset_reset="earliest",
                          consumer_timeout_ms=3000, enable_auto_commit=False)
        for _ in c:
            pass
        c.commit()
        c.close()
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
        a = KafkaAdminClient(bootstrap_servers=b)
        a.list_consumer_groups()
        a.describe_consumer_groups(["g2"])
        a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "t")])
        a.delete_consumer_groups(["g2"])
        a.close()
        # librdkafka's admin client (tests/integration/kafka/rdkafka_admin) and confluent-kafka's
        p.client = "rdkafka"
        admin = os.path.join(build, "tests", "integration", "kafka", "rdkafka_admin")
        for args in (["list"], ["describe", "g1"], ["delete", "g1"]):
            subprocess.run([admin, "-b", b] + args, capture_output=True, timeout=60)
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.admin import ConfigResource as CkConfigResource
        p.client = "confluent"
        ck = AdminClient({"bootstrap.servers": b})  # kept: the futures need the client alive
        for f in ck.describe_configs([CkConfigResource("topic", "t")]).values():
            f.result(timeout=30)
    finally:
        daemon.terminate()
        daemon.wait()
    print("captured %d requests in %s" % (len(p.seen), out))


main()
