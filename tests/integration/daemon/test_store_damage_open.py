"""test_store_damage_open.py [CASE...] - what OPENING a damaged data directory does (issue 11, findings 2, 3 and 6).

mqlogd ingests a few rounds of messages from a private mosquitto into a one-partition topic (each round
lands in batches of its own) and is stopped cleanly, so the recovery point vouches for the whole segment.
Then each case damages a COPY of that data directory and starts mqlogd on it:

  length      one byte of the Length field of batch 1 (the second batch) changed
  base_max    the BaseOffset of the last batch set near INT64_MAX (a field the CRC does not cover)
  cat_empty   catalog.db emptied (0 bytes)
  cat_gone    catalog.db deleted

and asserts, for each: which records stay readable, through `mqlog consume` and through kcat from mqlogd's
Kafka endpoint, and that both agree; what `mqlog verify` reports; that mqlogd logs the damage once, naming
the file (a second start logs nothing more); and that records appended after the damage are readable by
both. A damaged batch costs its own records only: the segment is cut there (the bytes cut are kept beside it,
<segment>.log.damaged-<pos>, and verify names that file) and the intact batches after it become a segment
of their own; no offset is handed out twice, so appends start at the offset the clean stop recorded. A lost catalog costs the consumer-group
offsets only: mqlogd rebuilds the topic's row and says so. Last, `mqlog verify --repair` rebuilds a deleted
catalog without mqlogd, and refuses while mqlogd holds the store.

Readers past the gap a damaged batch leaves are the read path's business (finding 1): here the records
before the damage are read from the beginning, the salvaged ones and the appends from their first offset,
so the test holds whether or not readers step over gaps. CASE names run only those cases.
"""
import json
import os
import shutil
import sys

import damage
import e2e_lib as e

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
TOPIC = "dmg"
ROUNDS = 4  # rounds of PER messages, each stored before the next is published: at least 4 batches
PER = 5
INT64_MAX = 2**63 - 1


def config(broker_port, kafka_port):
    # One partition; an index interval larger than the segment, so that the whole active segment is what the
    # open-time check reads (with the default 4 KiB it reads from the last index entry on).
    return e.config([e.broker(broker_port, "paho", "dmg-open")], [e.mapping("dmg/#", TOPIC, qos=1, partitions=1)],
                    log={"flush_interval_ms": 5, "index_interval_bytes": "1MiB"},
                    kafka={"listen": "127.0.0.1:%d" % kafka_port})


def consume(data, offset=None, count=None):
    """[(offset, value)] of partition 0 through `mqlog consume`; it must exit 0."""
    args = [e.MQLOG, "consume", "-d", data, TOPIC, "-p", "0", "--format", "json"]
    if offset is not None:
        args += ["-o", str(offset)]
    if count is not None:
        args += ["-n", str(count)]
    p = e.run(args, check=False, timeout=60)
    e.check(p.returncode == 0, "mqlog consume %s exited %d: %s" % (" ".join(args[4:]), p.returncode, p.stderr))
    return [(r["offset"], r["value"]) for r in map(json.loads, p.stdout.splitlines()) if r]


def kcat(port, offset="beginning", count=None):
    """[(offset, value)] of partition 0 through kcat from mqlogd's Kafka endpoint: up to the end (-e), or
    COUNT records (-c) when given."""
    args = [KCAT, "-C", "-b", "127.0.0.1:%d" % port, "-t", TOPIC, "-p", "0", "-o", str(offset), "-J", "-q"]
    args += ["-c", str(count)] if count is not None else ["-e"]
    p = e.run(args, check=False, timeout=60)
    e.check(p.returncode == 0, "kcat %s exited %d: %s" % (" ".join(args[3:]), p.returncode, p.stderr))
    return [(m["offset"], m["payload"]) for m in map(json.loads, p.stdout.splitlines()) if m]


def verify(data, *extra):
    p = e.run([e.MQLOG, "verify", "-d", data] + list(extra), check=False)
    return p.returncode, p.stdout + p.stderr


def build_store(broker):
    """A data directory with ROUNDS * PER messages (plus probes) in topic dmg, mqlogd stopped cleanly.
    Returns (data_dir, records). mqlogd's persistent session stays on the broker: every later mqlogd uses it,
    so messages published before its subscription is back are queued for it, not dropped."""
    d = e.Daemon(config(broker.port, e.free_port()))
    d.start()
    probes = e.wait_subscribed(broker.port, d.data, TOPIC, 1, 5, prefix="dmg")
    for r in range(ROUNDS):
        e.publish(broker.port, PER, qos=1, topics=1, first=r * PER, prefix="dmg", size=60)
        want = probes + (r + 1) * PER
        e.wait_for(lambda: e.stored(d.data, TOPIC) >= want, 30, "round %d stored" % r)
    d.stop()
    records = consume(d.data)
    e.check(len(records) == probes + ROUNDS * PER, "stored %d records" % len(records))
    rc, out = verify(d.data)
    e.check(rc == 0, "verify of the intact store: %s" % out)
    return d.data, records


class Case:
    """A damaged copy of the store, with a broker and mqlogd to start on it."""

    def __init__(self, name, src, broker):
        self.name = name
        self.dir = e.tmpdir("dmg-" + name)
        self.data = damage.copy_data_dir(src, os.path.join(self.dir, "data"))
        self.part = os.path.join(self.data, TOPIC + "-0")
        self.broker = broker
        self.daemon = None

    def segment(self):
        return damage.segments(self.part)[0]

    def start(self):
        self.kafka_port = e.free_port()
        self.daemon = self.daemon or e.Daemon("", d=self.dir)
        self.daemon.write_config(config(self.broker.port, self.kafka_port))
        self.daemon.start()

    def stop(self):
        self.daemon.stop()

    def append(self, first):
        """Publishes PER more messages (numbered from first)."""
        e.publish(self.broker.port, PER, qos=1, topics=1, first=first, prefix="dmg", size=60)


def check_appends(c, end, first):
    """Appends PER messages after the damage: both readers get them, at offsets end..end+PER-1."""
    c.append(first)

    def both():
        a = consume(c.data, offset=end)
        return a if len(a) >= PER else None

    appended = e.wait_for(both, 30, "%s: the appended records through mqlog consume" % c.name)
    e.check([o for o, _ in appended] == list(range(end, end + PER)),
            "%s: appends got offsets %s, expected %d.." % (c.name, [o for o, _ in appended], end))
    k = kcat(c.kafka_port, offset=end)
    e.check(k == appended, "%s: kcat read the appends as %s, mqlog consume as %s" % (c.name, k, appended))
    return appended


def damage_logged_once(c, needle):
    """The daemon's log names the damaged file in exactly one line with needle."""
    lines = [ln for ln in c.daemon.log().splitlines() if needle in ln]
    e.check(len(lines) == 1, "%s: expected one log line with %r, got %d:\n%s" %
            (c.name, needle, len(lines), c.daemon.log()[-3000:]))
    return lines[0]


def batch_case(name, src, broker, records, damage_fn, bad, first):
    """Batch `bad` of the segment damaged: the records of the batches before it stay readable, the intact
    batches after it are salvaged into a segment of their own and stay readable, only the damaged batch's
    records are lost, and appends start at the old end."""
    c = Case(name, src, broker)
    seg = c.segment()
    seg_batches = damage.batches(seg)
    e.check(len(seg_batches) >= 4, "%s: only %d batches in the segment" % (name, len(seg_batches)))
    pos, lost_from = seg_batches[bad][0], seg_batches[bad][1]
    end = records[-1][0] + 1
    salvaged_from = seg_batches[bad + 1][1] if bad + 1 < len(seg_batches) else end
    damage_fn(seg)
    c.start()
    before = [r for r in records if r[0] < lost_from]
    after = [r for r in records if r[0] >= salvaged_from]
    # From the beginning up to the damaged batch: both readers agree.
    got = [r for r in consume(c.data) if r[0] < lost_from + 1]
    e.check(got == before, "%s: mqlog consume read %s from the beginning, expected the %d records before the "
            "damaged batch" % (name, got, len(before)))
    if before:
        k = kcat(c.kafka_port, count=len(before))
        e.check(k == before, "%s: kcat read %s, mqlog consume %s" % (name, k, before))
    # The intact batches after the damaged one, from their first offset.
    if after:
        got = consume(c.data, offset=salvaged_from)
        e.check(got == after, "%s: mqlog consume -o %d read %d records, expected %d" %
                (name, salvaged_from, len(got), len(after)))
        k = kcat(c.kafka_port, offset=salvaged_from)
        e.check(k == after, "%s: kcat -o %d read %d records, expected %d" % (name, salvaged_from, len(k), len(after)))
    line = damage_logged_once(c, "damaged at byte %d" % pos)
    e.check(os.path.basename(seg) in line and ".damaged-%d" % pos in line, "%s: the log line %r" % (name, line))
    e.check(not after or "%020d.log" % salvaged_from in line, "%s: no salvaged segment in %r" % (name, line))
    check_appends(c, end, first)
    c.stop()
    # Logged once: the repaired segment opens cleanly the next time.
    c.start()
    damage_logged_once(c, "damaged at byte")
    c.stop()
    rc, out = verify(c.data)
    e.check(rc == 1 and "%s.damaged-%d" % (os.path.basename(seg), pos) in out and "1 partition" in out,
            "%s: verify said (rc %d):\n%s" % (name, rc, out))
    e.log("%s: %d of %d records readable by both readers (%d lost with the damaged batch), %d appends, damage "
          "logged once, verify: %s" % (name, len(before) + len(after), len(records),
                                       len(records) - len(before) - len(after), PER, out.strip().splitlines()[-1]))


def catalog_case(name, src, broker, records, damage_fn, verify_says, first):
    """A lost catalog: mqlogd rebuilds the topic's row, loudly; every record stays readable."""
    c = Case(name, src, broker)
    catalog = os.path.join(c.data, "catalog.db")
    damage_fn(catalog)
    rc, out = verify(c.data)
    e.check(rc == 1 and verify_says in out, "%s: verify before the start said (rc %d):\n%s" % (name, rc, out))
    c.start()
    line = damage_logged_once(c, "rebuilt its row")
    e.check("topic %s" % TOPIC in line and "dmg-0" in line, "%s: the log line %r" % (name, line))
    summary = damage_logged_once(c, "consumer-group offsets")
    e.check("catalog.db" in summary, "%s: %r" % (name, summary))
    got = consume(c.data)
    e.check(got == records, "%s: mqlog consume read %d of %d records" % (name, len(got), len(records)))
    k = kcat(c.kafka_port)
    e.check(k == records, "%s: kcat read %d records, mqlog consume %d" % (name, len(k), len(got)))
    check_appends(c, records[-1][0] + 1, first)
    c.stop()
    c.start()
    damage_logged_once(c, "rebuilt its row")  # the second start found the row: nothing more to say
    c.stop()
    rc, out = verify(c.data)
    e.check(rc == 0, "%s: verify after the rebuild said (rc %d):\n%s" % (name, rc, out))
    e.log("%s: all %d records readable by both readers after the rebuild, appends too, verify clean" %
          (name, len(records)))


def repair_case(src, broker, records):
    """mqlog verify --repair rebuilds a deleted catalog without mqlogd, and refuses beside a running one."""
    c = Case("repair", src, broker)
    damage.remove_sqlite(os.path.join(c.data, "catalog.db"))
    rc, out = verify(c.data, "--repair")
    e.check(rc == 0 and "repaired: topic %s" % TOPIC in out and "are gone" in out,
            "repair: verify --repair said (rc %d):\n%s" % (rc, out))
    e.check(consume(c.data) == records, "repair: records after verify --repair")
    c.start()
    rc, out = verify(c.data, "--repair")
    e.check(rc == 1 and "locked by a running writer" in out, "repair beside mqlogd said (rc %d):\n%s" % (rc, out))
    c.stop()
    e.log("repair: verify --repair rebuilt the catalog offline and refused beside mqlogd")


def main():
    if not os.path.exists(KCAT):
        e.fail("kcat is not installed (scripts/setup installs it)")
    broker = e.Broker()
    src, records = build_store(broker)
    last = len(damage.batches(damage.segments(os.path.join(src, TOPIC + "-0"))[0])) - 1
    # Each case appends messages numbered from its own first number.
    cases = {
        "length": lambda: batch_case("length", src, broker, records, lambda seg: damage.flip_length_byte(seg, 1),
                                     1, 1000),
        "base_max": lambda: batch_case("base_max", src, broker, records,
                                       lambda seg: damage.set_base_offset(seg, last, INT64_MAX - 5), last, 2000),
        "cat_empty": lambda: catalog_case("cat_empty", src, broker, records, damage.empty_sqlite,
                                          "holds records but topic %s is not in" % TOPIC, 3000),
        "cat_gone": lambda: catalog_case("cat_gone", src, broker, records, damage.remove_sqlite,
                                         "catalog.db: missing while 1 partition", 4000),
        "repair": lambda: repair_case(src, broker, records),
    }
    for name in sys.argv[1:] or list(cases):
        cases[name]()
    broker.stop()
    e.log("PASS: damaged batch headers and a lost catalog hide nothing intact after mqlogd's start")


main()
