"""test_store_damage.py - what readers do with a damaged store (issue 11, findings 1, 4 and 5): damage never
hides intact records. mqlogd builds a real data directory of several segments (small segment_bytes) from
messages published over MQTT, then stops. Each case damages a copy of it (damage.py): a middle segment emptied,
removed or cut, the first segment emptied, one byte flipped inside a middle batch, recovery-point, a middle
segment's .index or the active segment's index files replaced by a directory, a middle segment's .index
removed. On the copy:
  - `mqlog verify` reports the damage (exit 1) naming the file, and `mqlog topics` counts the offsets a
    segment's damage makes missing (its end offset still counts them, as Kafka's log-end offset does);
  - `mqlog consume` and kcat through mqlogd's Kafka endpoint read the same records: every record except the
    damaged batches or segment, consume warning about the damage on stderr;
  - kcat started at the first offset after the damage reads from there (a fetch inside a gap gets the
    records after it), and so does kcat started at a timestamp past the records before it (ListOffsets by time);
  - mqlogd logs the damage once, naming the file, however many fetches read past it;
  - messages published after the damage are stored and readable through both.
"""
import json
import os
import shutil
import subprocess
import sys

import damage
import e2e_lib as e

N = 1600  # messages of about 200 bytes: 5-6 segments of 64 KiB
TOPIC = "dmg"
KCAT = shutil.which("kcat") or "/usr/bin/kcat"
BASE_TS = {}  # {offset: timestamp} of the undamaged base directory
LOG = {"flush_interval_ms": 5, "segment_bytes": "64KiB", "index_interval_bytes": "1KiB", "batch_bytes": "4KiB"}


def records_of_consume(data_dir):
    """{offset: value} from `mqlog consume` (exit status 0 wanted), and its stderr."""
    p = e.run([e.MQLOG, "consume", "-d", data_dir, TOPIC, "--format", "json"], check=False, timeout=120)
    if p.returncode != 0:
        e.fail("mqlog consume exited with %d:\n%s" % (p.returncode, p.stderr[-2000:]))
    return {r["offset"]: r["value"] for r in map(json.loads, p.stdout.splitlines())}, p.stderr


def timestamps_of_consume(data_dir):
    """{offset: timestamp} from `mqlog consume`."""
    p = e.run([e.MQLOG, "consume", "-d", data_dir, TOPIC, "--format", "json"], timeout=120)
    return {r["offset"]: r["timestamp"] for r in map(json.loads, p.stdout.splitlines())}


def records_of_kcat(bootstrap, offset="beginning"):
    """{offset: value} read by kcat from mqlogd's Kafka endpoint, from OFFSET to the end (-e)."""
    p = e.run([KCAT, "-C", "-b", bootstrap, "-t", TOPIC, "-p", "0", "-o", str(offset), "-e", "-J", "-q"],
              check=False, timeout=30)
    if p.returncode != 0:
        e.fail("kcat -o %s exited with %d:\n%s" % (offset, p.returncode, p.stderr[-2000:]))
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            m = json.loads(line)
            out[m["offset"]] = m["payload"]
    return out


def describe(offs):
    """A short description of a set of offsets for failure messages."""
    s = sorted(offs)
    return "%d offsets%s" % (len(s), " (%s..%s)" % (s[0], s[-1]) if s else "")


def build_base(broker):
    """A stopped mqlogd's data directory with N messages in several segments; returns (dir, {offset: value})."""
    d = e.Daemon(e.config([e.broker(broker.port, "paho", "damage-base")],
                          [e.mapping("e2e/#", TOPIC, qos=1, partitions=1)], log=LOG))
    d.start()
    e.wait_subscribed(broker.port, d.data, TOPIC, 1, 5)
    e.publish(broker.port, N, qos=1, version=5, topics=4, size=200)
    e.wait_complete(d.data, TOPIC, N)
    d.stop()
    recs, err = records_of_consume(d.data)
    segs = damage.segments(os.path.join(d.data, TOPIC + "-0"))
    e.check(len(segs) >= 5, "expected at least 5 segments, got %d" % len(segs))
    e.check(sorted(recs) == list(range(len(recs))), "the base directory's offsets are not 0..%d" % len(recs))
    e.log("base: %d records in %d segments" % (len(recs), len(segs)))
    BASE_TS.update(timestamps_of_consume(d.data))
    return d.dir, recs


def run_case(n, name, base_dir, base, broker, hurt):
    """One damage case on a copy of base_dir. hurt(part_dir) damages it and returns (lost offsets, the damaged
    file, what verify must say about it, whether consume must warn)."""
    e.log("--- %s" % name)
    kport = e.free_port()
    d = e.Daemon(e.config([e.broker(broker.port, "paho", "damage-%d" % n)],
                          [e.mapping("e2e/#", TOPIC, qos=1, partitions=1)], log=LOG,
                          kafka={"listen": "127.0.0.1:%d" % kport}))
    damage.copy_data_dir(os.path.join(base_dir, "data"), d.data)
    part_dir = os.path.join(d.data, TOPIC + "-0")
    lost, path, verify_says, warns = hurt(part_dir)
    want = {o: v for o, v in base.items() if o not in lost}
    fname = os.path.basename(path)

    p = e.run([e.MQLOG, "verify", "-d", d.data], check=False)
    e.check(p.returncode == 1, "%s: verify exited with %d, expected 1 (problems):\n%s" %
            (name, p.returncode, p.stdout[-2000:]))
    lines = [ln for ln in p.stdout.splitlines() if fname in ln and verify_says in ln]
    e.check(lines, "%s: verify does not report '%s' for %s:\n%s" % (name, verify_says, fname, p.stdout[-2000:]))

    # topics: the end counts the lost offsets (as Kafka's log-end offset counts a compacted range), and
    # MISSING says how many lie at the end of a segment; a batch failing its CRC only verify finds.
    p = e.run([e.MQLOG, "topics", "-d", d.data, "--json"], check=False)
    e.check(p.returncode == 0, "%s: topics exited with %d: %s" % (name, p.returncode, p.stderr[-2000:]))
    pl = json.loads(p.stdout)["topics"][0]["partition_list"][0]
    missing = 0 if verify_says == "CRC mismatch" else len(lost)
    e.check(pl["end_offset"] == max(base) + 1 and pl["missing_offsets"] == missing,
            "%s: topics shows end %d and %d missing, expected %d and %d" %
            (name, pl["end_offset"], pl["missing_offsets"], max(base) + 1, missing))

    got, err = records_of_consume(d.data)
    if set(got) != set(want):
        e.fail("%s: consume read %s, expected %s; missing %s, extra %s\n%s" %
               (name, describe(got), describe(want), describe(set(want) - set(got)),
                describe(set(got) - set(want)), err[-2000:]))
    e.check(got == want, "%s: consume read other values than stored" % name)
    if warns:
        e.check(fname in err, "%s: consume did not warn about %s on stderr:\n%s" % (name, fname, err[-2000:]))
        e.check(err.count(fname) == 1, "%s: consume warned %d times about %s:\n%s" %
                (name, err.count(fname), fname, err[-2000:]))

    kafka = "127.0.0.1:%d" % kport
    d.start()
    for _ in range(3):
        k = records_of_kcat(kafka)
        if k != want:
            e.fail("%s: kcat read %s, expected %s; missing %s, extra %s" %
                   (name, describe(k), describe(want), describe(set(want) - set(k)), describe(set(k) - set(want))))
    if lost:
        after = max(lost) + 1
        if after in want:
            k = records_of_kcat(kafka, min(lost))
            exp = {o: v for o, v in want.items() if o >= min(lost)}
            e.check(k == exp, "%s: kcat -o %d (inside the damage) read %s, expected %s" %
                    (name, min(lost), describe(k), describe(exp)))
        # By time (ListOffsets): a timestamp newer than every record before the damage, so that the lookup
        # has to get past the damage (records share milliseconds).
        ts = max([BASE_TS[o] for o in BASE_TS if o < min(lost)] or [BASE_TS[min(lost)] - 1]) + 1
        first = min(o for o in want if BASE_TS[o] >= ts)
        k = records_of_kcat(kafka, "s@%d" % ts)
        exp = {o: v for o, v in want.items() if o >= first}
        e.check(k == exp, "%s: kcat -o s@%d (past the records before the damage) read %s, expected %s" %
                (name, ts, describe(k), describe(exp)))
    named = [ln for ln in d.log().splitlines() if fname in ln]
    e.check(len(named) == 1, "%s: mqlogd logged %d lines naming %s, expected 1:\n%s" %
            (name, len(named), fname, "\n".join(named[:10]) or d.log()[-2000:]))
    if fname.endswith(".index"):  # the operator's question is which segment
        seg = fname[:-len(".index")] + ".log"
        e.check(seg in named[0], "%s: mqlogd's line about %s does not name %s:\n%s" % (name, fname, seg, named[0]))

    # Appends after the damage: published over MQTT, stored behind it, readable through both.
    end = max(base) + 1
    e.publish(broker.port, 50, qos=1, version=5, topics=1, first=N, size=200)
    e.wait_for(lambda: len(records_of_consume(d.data)[0]) >= len(want) + 50, 30,
               "%s: the messages published after the damage to be readable" % name, every=0.2)
    got, _ = records_of_consume(d.data)
    new = {o for o in got if o >= end}
    e.check(len(new) == 50, "%s: %d new records readable after the damage, expected 50" % (name, len(new)))
    k = records_of_kcat(kafka)
    e.check(k == got, "%s: after appending, kcat read %s, consume %s" % (name, describe(k), describe(got)))
    d.stop()
    e.log("%s: %s lost, %d records readable through consume and kcat, logged once, appends readable" %
          (name, describe(lost), len(want)))


def middle(part_dir):
    segs = damage.segments(part_dir)
    return segs[len(segs) // 2]


def case_empty_middle(part_dir):
    seg = middle(part_dir)
    lost = damage.offsets(seg)
    damage.empty_file(seg)
    return lost, seg, "missing", True


def case_remove_middle(part_dir):
    seg = middle(part_dir)
    lost = damage.offsets(seg)
    damage.remove_segment(seg)
    # the gap is reported at the segment after it, which names the missing offsets
    nxt = [s for s in damage.segments(part_dir) if damage.base_offset(s) > max(lost)][0]
    return lost, nxt, "missing", True


def case_cut_middle(part_dir):
    seg = middle(part_dir)
    return damage.cut(seg), seg, "partial batch", True


def case_empty_first(part_dir):
    seg = damage.segments(part_dir)[0]
    lost = damage.offsets(seg)
    damage.empty_file(seg)
    return lost, seg, "missing", True


def case_flip_middle(part_dir):
    seg = middle(part_dir)
    _, lost = damage.flip_record_byte(seg)
    return lost, seg, "CRC mismatch", True


def case_rp_dir(part_dir):
    path = os.path.join(part_dir, "recovery-point")
    damage.replace_by_dir(path)
    return set(), path, "not a regular file", False


def case_index_dir(part_dir):
    path = middle(part_dir)[:-4] + ".index"
    damage.replace_by_dir(path)
    return set(), path, "not a regular file", False


def case_index_missing(part_dir):
    path = middle(part_dir)[:-4] + ".index"
    os.unlink(path)
    return set(), path, "missing offset index", False


def case_active_index_dir(part_dir):
    seg = damage.segments(part_dir)[-1]
    path = seg[:-4] + ".index"
    damage.replace_by_dir(path)
    damage.replace_by_dir(seg[:-4] + ".timeindex")
    return set(), path, "not a regular file", False


CASES = [
    ("empty-middle", case_empty_middle),
    ("remove-middle", case_remove_middle),
    ("cut-middle", case_cut_middle),
    ("empty-first", case_empty_first),
    ("flip-middle", case_flip_middle),
    ("recovery-point-dir", case_rp_dir),
    ("index-dir", case_index_dir),
    ("index-missing", case_index_missing),
    ("active-index-dir", case_active_index_dir),
]


def main():
    if not os.path.exists(KCAT):
        e.fail("kcat is not installed (scripts/setup installs it)")
    only = sys.argv[1:]
    broker = e.Broker()
    base_dir, base = build_base(broker)
    for n, (name, hurt) in enumerate(CASES):
        if not only or name in only:
            run_case(n, name, base_dir, base, broker, hurt)
    broker.stop()
    e.log("PASS: every damage case keeps the intact records readable, reported and logged once")


main()
