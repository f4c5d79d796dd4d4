"""test_e2e_disk_budget.py CONNECTOR - the disk budget (issue 13) on a small tmpfs: log.max_disk_bytes and
log.min_free_bytes hold while mqlogd ingests a QoS 1 stream from mosquitto several times larger than they
allow; the oldest data goes first, across topics; the counters match the segments deleted.

The data_dir is a 16 MiB tmpfs. The stream goes to ten log topics (e2e/N -> e2e.N, one partition each, no
retention: only the budget deletes), published at a steady rate so that the records span seconds. A sampler
polls every few milliseconds, while mqlogd writes, the bytes of every segment file in the data directory and
the free space of the file system.

 - run 1: max_disk_bytes 4 MiB (min_free_bytes 2 MiB, not reached): the segment bytes are never above 4 MiB,
   and the cap deleted segments;
 - run 2: mqlogd restarted with no cap and min_free_bytes 1.5 MiB below the free space run 1 left, on the
   same data: the log grows until the free space would fall below it, then deletes; the free space is never
   below min_free_bytes.

After each run: every topic holds a suffix of its stream (contiguous offsets and sequence numbers up to the
last message published, nothing missing after its start); the oldest data went first across topics (no
topic's first remaining record is newer than another topic's whole first segment: the budget deletes by a
segment's newest timestamp); the daemon logged one line per deleted segment, naming every segment seen
during the run that is gone, and none that is still there, and its SIGUSR1 counters (by cause) equal the
count of those lines; `mqlog topics -c` shows the budget, used and free bytes and the days the budget
keeps at the current rate. The budget's one documented slack is on the safe side (budget.c): a write leaves
16 blocks free beyond min_free_bytes.
"""
import json
import os
import re
import signal
import sys
import threading
import time

import e2e_lib as e

CONNECTOR = sys.argv[1] if len(sys.argv) > 1 else "mosquitto"
TOPICS = 10
SIZE = 500
RATE = 3000  # messages a second: at about 600 bytes a record, 1.8 MB/s, several times the budget per run
N = e.scaled(12000, minimum=4000)
MIB = 1024 * 1024
LOG = {"flush_interval_ms": 5, "segment_bytes": "256KiB", "batch_bytes": "64KiB", "max_pending_bytes": "1MiB"}
DELETED = re.compile(r"/([^/ ]+)-0: (disk cap log\.max_disk_bytes|free space below log\.min_free_bytes)"
                     r"[^:]*: deleted segment (\d{20}) .*newest timestamp (-?\d+)")


def segment_files(data):
    """{(topic, base offset): bytes} of every segment file in the data directory, now."""
    out = {}
    for d in os.scandir(data):
        m = re.fullmatch(r"(.+)-0", d.name)
        if not m or not d.is_dir():
            continue
        try:
            names = os.listdir(d.path)
        except FileNotFoundError:
            continue
        for n in names:
            if re.fullmatch(r"\d{20}\.log", n):
                try:
                    out[(m.group(1), int(n[:20]))] = os.stat(os.path.join(d.path, n)).st_size
                except FileNotFoundError:
                    pass  # deleted between the listing and the stat
    return out


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Sampler(threading.Thread):
    """Polls the segment bytes and the free space until stopped: the most bytes, the least free space, every
    segment seen."""

    def __init__(self, data):
        super().__init__(daemon=True)
        self.data, self.most, self.least, self.seen, self.samples = data, 0, None, set(), 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            segs = segment_files(self.data)
            free = free_bytes(self.data)
            self.most = max(self.most, sum(segs.values()))
            self.least = free if self.least is None else min(self.least, free)
            self.seen |= set(segs)
            self.samples += 1
            self.halt.wait(0.003)  # the poll interval: a sample every few ms while mqlogd writes

    def stop(self):
        self.halt.set()
        self.join()


def store_counters(d):
    """(cap, free) segments the budget deleted, from the SIGUSR1 store line."""
    mark = len(d.log())
    d.proc.send_signal(signal.SIGUSR1)

    def line():
        m = re.search(r"the disk budget deleted (\d+) segments early \((\d+) for log\.max_disk_bytes, (\d+) for "
                      r"log\.min_free_bytes\)", d.log()[mark:])
        return m and (int(m.group(2)), int(m.group(3)), int(m.group(1)))

    cap, free, total = e.wait_for(line, 30, "the store's SIGUSR1 counters")
    e.check(cap + free == total, "the counters by cause do not add up: %d + %d != %d" % (cap, free, total))
    return cap, free


def check_topics(data, published, label, deleted_newest):
    """Each topic holds a suffix of its stream; the oldest went first across topics: no deleted segment (its
    newest timestamp, from the deletion lines) was newer than a segment kept. Returns {topic: (first record's
    timestamp, newest timestamp of the first segment)}."""
    last_seq = (published - 1) // TOPICS
    firsts = {}
    for t in range(TOPICS):
        topic = "e2e.%d" % t
        recs = [r for r in e.consume(data, topic) if e.headers(r).get("mqtt.topic", "").startswith("e2e/%d" % t)]
        e.check(recs, "%s: %s holds no record" % (label, topic))
        offs = [r["offset"] for r in recs]
        e.check(offs == list(range(offs[0], offs[0] + len(offs))), "%s: %s has offset gaps" % (label, topic))
        seqs = [json.loads(r["value"])["seq"] for r in recs]
        e.check(seqs == list(range(seqs[0], last_seq + 1)),
                "%s: %s holds sequence numbers %d..%d (%d records), not a suffix up to %d" %
                (label, topic, seqs[0], seqs[-1], len(seqs), last_seq))
        e.check(offs[0] > 0, "%s: the budget deleted nothing of %s" % (label, topic))
        bases = sorted(b for (tp, b) in segment_files(data) if tp == topic)
        cut = bases[1] if len(bases) > 1 else None
        first_seg_max = max(r["timestamp"] for r in recs if cut is None or r["offset"] < cut)
        firsts[topic] = (recs[0]["timestamp"], first_seg_max)
    # The budget deletes the segment with the oldest newest record first, so every segment deleted is at
    # least as old as every segment kept: the first one of each topic is its oldest.
    newest_gone = max(deleted_newest)
    for b, (_, seg_b) in firsts.items():
        e.check(newest_gone <= seg_b, "%s: a segment with a record at %d was deleted while %s keeps a segment "
                "whose newest record is %d: not oldest first" % (label, newest_gone, b, seg_b))
    return firsts


def run(d, broker, label, cap, min_free, first, expect_cause):
    d.write_config(e.config([e.broker(broker.port, CONNECTOR, "budget-" + CONNECTOR, durable_ack=True)],
                            [e.mapping("e2e/+", "e2e.{1}", qos=1, partitions=1, retention="0")],
                            log=dict(LOG, max_disk_bytes="%dKiB" % (cap // 1024), min_free_bytes="%dKiB" % (min_free // 1024))))
    mark = len(d.log()) if os.path.exists(d.logpath) else 0
    d.start()

    def alive():
        if not d.alive():
            e.fail("%s: mqlogd died:\n%s" % (label, d.log()[-3000:]))

    if first == 0:
        e.wait_subscribed(broker.port, d.data, "e2e.probe", 1, 5)
    sampler = Sampler(d.data)
    sampler.start()
    t0 = time.monotonic()
    pub = e.publish(broker.port, N, qos=1, topics=TOPICS, first=first, size=SIZE, rate=RATE,
                    client_id="budget-pub", background=True, timeout=120)
    e.wait_publisher(pub, label)
    published = first + N

    def complete():
        alive()
        return last_stored(d.data, published)

    e.wait_for(complete, 60, "%s: the last message of every topic to be stored" % label, every=0.1)
    sampler.stop()
    ingest_s = time.monotonic() - t0
    if cap:
        e.check(sampler.most <= cap, "%s: %d bytes of segments seen, above max_disk_bytes %d" %
                (label, sampler.most, cap))
    e.check(sampler.least >= min_free, "%s: %d bytes free seen, below min_free_bytes %d" %
            (label, sampler.least, min_free))

    # what the budget showed, while mqlogd runs
    p = e.run([e.MQLOG, "topics", "-c", d.conf, "--json"])
    b = json.loads(p.stdout)["budget"]
    e.check(b["max_disk_bytes"] == cap and b["min_free_bytes"] == min_free, "%s: topics -c budget %s" % (label, b))
    e.check(b["used_bytes"] > 0 and b["free_bytes"] >= min_free and (not cap or b["used_bytes"] <= cap),
            "%s: topics -c used and free %s" % (label, b))
    e.check(b["bytes_per_day"] and b["days"], "%s: no rate or days from %s" % (label, b))
    room = min(cap or float("inf"), b["used_bytes"] + b["free_bytes"] - min_free)
    e.check(abs(b["days"] * b["bytes_per_day"] - room) <= room * 1e-3,
            "%s: days %s do not follow from the room %d and the rate %s" % (label, b["days"], room,
                                                                             b["bytes_per_day"]))
    table = e.run([e.MQLOG, "topics", "-c", d.conf]).stdout
    e.check(re.search(r"^disk budget: max_disk_bytes (%s), min_free_bytes %d bytes$" %
                      ("%d bytes" % cap if cap else "off", min_free), table, re.M), "%s: table:\n%s" % (label, table))
    e.check(re.search(r"^rate: \d+ bytes a day; days kept at this rate: [0-9.e+-]+$", table, re.M),
            "%s: table:\n%s" % (label, table))

    # the counters, the deletion lines and the segments that are gone agree
    cap_n, free_n = store_counters(d)
    lines = DELETED.findall(d.log()[mark:])
    named = [(t, int(base)) for t, _, base, _ in lines]
    e.check(len(set(named)) == len(named), "%s: a segment was deleted twice: %s" % (label, named))
    by_cause = (sum(1 for _, c, _, _ in lines if c.startswith("disk cap")),
                sum(1 for _, c, _, _ in lines if c.startswith("free space")))
    e.check(by_cause == (cap_n, free_n), "%s: deletion lines by cause %s, counters %s" % (label, by_cause,
                                                                                       (cap_n, free_n)))
    e.check((cap_n if expect_cause == "cap" else free_n) > 0 and (free_n if expect_cause == "cap" else cap_n) == 0,
            "%s: deleted %d for the cap and %d for free space, expected only %s" % (label, cap_n, free_n,
                                                                                  expect_cause))
    present = set(segment_files(d.data))
    gone = (sampler.seen - present)
    e.check(gone <= set(named), "%s: segments gone without a deletion line: %s" % (label, sorted(gone - set(named))))
    e.check(not (set(named) & present), "%s: segments named deleted are still there: %s" %
            (label, sorted(set(named) & present)))

    firsts = check_topics(d.data, published, label, [int(ts) for _, _, _, ts in lines])
    e.log("%s: %d messages in %.1fs; %d samples: at most %d segment bytes (cap %s), at least %d bytes free "
          "(min %d); %d segments deleted (%d cap, %d free space), %d seen gone; topics -c: %s days at %s bytes a "
          "day; oldest remaining records %s" %
          (label, N, ingest_s, sampler.samples, sampler.most, cap or "off", sampler.least, min_free,
           len(named), cap_n, free_n, len(gone), "%.3g" % b["days"], b["bytes_per_day"],
           sorted(v[0] for v in firsts.values())[:2]))
    d.stop()
    e.run([e.MQLOG, "verify", "-d", d.data])
    return len(named)


def last_stored(data, published):
    """Whether the newest record of each topic is the last message published to it."""
    last_seq = (published - 1) // TOPICS
    ends = {tp["topic"]: tp["partition_list"][0]["end_offset"]
            for tp in json.loads(e.run([e.MQLOG, "topics", "-d", data, "--json"]).stdout)["topics"]}
    for t in range(TOPICS):
        end = ends.get("e2e.%d" % t, 0)
        if end == 0:
            return False
        out = e.run([e.MQLOG, "consume", "-d", data, "e2e.%d" % t, "-o", str(end - 1), "-n", "1", "--format",
                     "json"]).stdout.splitlines()
        if not out or json.loads(json.loads(out[-1])["value"]).get("seq") != last_seq:
            return False
    return True


def main():
    t0 = time.monotonic()
    broker = e.Broker()
    d = e.Daemon(e.config([], []))
    e.tmpfs(d.data, "16m")
    n1 = run(d, broker, "run 1 (max_disk_bytes)", 4 * MIB, 2 * MIB, 0, "cap")
    # the log may grow by 1.5 MiB from where run 1 left it before the free space runs short
    min_free = (free_bytes(d.data) - 3 * MIB // 2) // 1024 * 1024
    n2 = run(d, broker, "run 2 (min_free_bytes)", 0, min_free, N, "free")
    broker.stop()
    e.umount(d.data)
    e.log("PASS: %s disk budget: %d segments deleted for the cap, %d for free space; never above the cap nor below "
          "the free minimum (%.1fs)" % (CONNECTOR, n1, n2, time.monotonic() - t0))


main()
