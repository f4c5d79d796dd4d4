#!/usr/bin/env bash
# test_tool.sh - drives the built `mqlog` tool end to end on a temporary data directory: create, produce
# (keys, headers, partitions, every codec), consume (raw and JSON, offsets, timestamps, -n, groups, -f beside a live
# producer), topics, groups, forward status, verify (clean and after corrupting one byte), and every error
# path with its exit status and its one-line message.
#
# usage: test_tool.sh PATH_TO_MQLOG
set -euo pipefail

M=${1:?usage: test_tool.sh PATH_TO_MQLOG}
source "$(dirname "$0")/lib/lib.sh"
need_exe "$M"
need python3
mq_setup tool

lines_at_least() { [[ -f $1 && $(wc -l <"$1") -ge $2 ]]; }

# A fingerprint of everything stored (segments, indexes, catalog), to prove failed commands touch nothing.
fingerprint() {
    (cd "$D" && find . -type f ! -name '*-wal' ! -name '*-shm' ! -name '.lock' -print0 | sort -z |
        xargs -0 md5sum) | md5sum
}

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# ---- help and usage ----
for cmd in topics create produce consume verify groups forward user; do
    expect_ok "$M" "$cmd" --help
    grep -q "usage: mqlog $cmd" "$T/out" || fail "$cmd --help: no usage line"
done
expect_ok "$M" --help
expect_err 2 "unknown command 'frobnicate'" "$M" frobnicate
run "$M"
[[ $rc == 2 ]] || fail "mqlog without a command exited $rc"

# ---- create ----
expect_err 2 "--partitions N is required" "$M" create -d "$D" t
[[ ! -e $D ]] || fail "a usage error created the data directory"
expect_ok "$M" create -d "$D" t --partitions 3
grep -q "created topic t with 3 partitions" "$T/out" || fail "create output: $(cat "$T/out")"
expect_ok "$M" create -d "$D" keyed --partitions 7 --retention 2w --retention-bytes 1GiB
expect_ok "$M" create -d "$D" big --partitions 1 --retention 0
expect_err 1 "topic t already exists \(3 partitions\)" "$M" create -d "$D" t --partitions 5

# ---- produce: values of every kind into t-0 ----
# 0 plain, 1 UTF-8 text, 2 JSON-special characters, 3 empty, 4 binary (not UTF-8), 5 a NUL inside text,
# 6 a last line without a newline
before=$(now_ms)
printf 'plain\nh\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93\nquote " backslash \\ tab\tend\n\n\xff\xfe\x00\x01\na\x00b\nno newline' \
    >"$T/in0"
expect_ok "$M" produce -d "$D" t -p 0 <"$T/in0"
[[ ! -s $T/out ]] || fail "produce printed on stdout: $(cat "$T/out")"
# 7, 8: a key (UTF-8) and headers, one of them with a binary value and one empty
printf 'k1\nk2\n' | "$M" produce -d "$D" t -p 0 -k $'k\xc3\xa9y' -H trace=abc -H $'bin=\xff' -H empty= -v \
    2>"$T/verbose"
grep -q "produced 2 records to t" "$T/verbose" || fail "produce -v: $(cat "$T/verbose")"
grep -q "t-0: 2 at offsets 7..8" "$T/verbose" || fail "produce -v offsets: $(cat "$T/verbose")"
after=$(now_ms)
ok

# raw: exactly the input lines, one per record, a newline after each
expect_ok "$M" consume -d "$D" t -p 0
printf 'plain\nh\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93\nquote " backslash \\ tab\tend\n\n\xff\xfe\x00\x01\na\x00b\nno newline\nk1\nk2\n' \
    >"$T/want0"
cmp "$T/out" "$T/want0" || fail "raw output differs from the input"
ok

# json: every field checked
expect_ok "$M" consume -d "$D" t -p 0 --format json
cp "$T/out" "$T/json0"
python3 - "$T/json0" "$before" "$after" <<'EOF' || fail "JSON output check"
import base64, json, sys
lines = open(sys.argv[1], 'rb').read().split(b'\n')
assert lines[-1] == b'', 'no final newline'
recs = [json.loads(l) for l in lines[:-1]]
lo, hi = int(sys.argv[2]), int(sys.argv[3])
assert len(recs) == 9, len(recs)
want = ['plain', 'h\u00e9llo w\u00f6rld \u2713', 'quote " backslash \\ tab\tend', '', None, 'a\x00b',
        'no newline', 'k1', 'k2']
for i, r in enumerate(recs):
    assert r['topic'] == 't' and r['partition'] == 0 and r['offset'] == i, r
    assert lo <= r['timestamp'] <= hi, (r['timestamp'], lo, hi)
    if want[i] is None:
        assert 'value' not in r and base64.b64decode(r['value_base64']) == b'\xff\xfe\x00\x01', r
    else:
        assert r['value'] == want[i], (r, want[i])
    if i < 7:
        assert r['key'] is None and r['headers'] == [], r
    else:
        assert r['key'] == 'k\u00e9y', r
        assert r['headers'] == [{'key': 'trace', 'value': 'abc'}, {'key': 'bin', 'value_base64': '/w=='},
                                {'key': 'empty', 'value': ''}], r['headers']
# the escaping is the canonical one (control characters as \uXXXX or short escapes)
raw = lines[2].decode()
assert '"value":"quote \\" backslash \\\\ tab\\tend"' in raw, raw
assert '"value":"a\\u0000b"' in lines[5].decode(), lines[5]
EOF
ok

# ---- produce: partitioning ----
# without a key: round-robin starting at partition 0
printf 'r0\nr1\nr2\nr3\nr4\nr5\n' | "$M" produce -d "$D" keyed
expect_ok "$M" consume -d "$D" keyed --format json
python3 - "$T/out" <<'EOF' || fail "round-robin distribution"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
got = {r['value']: r['partition'] for r in recs}
assert got == {'r0': 0, 'r1': 1, 'r2': 2, 'r3': 3, 'r4': 4, 'r5': 5}, got
EOF
ok
# with a key: Kafka's murmur2 partitioner. Expected partitions (of 7) computed with kafka-python 2.0.2's
# kafka.partitioner.default.murmur2: alpha 1, gamma 6, sensor/1 4, the empty key 2.
for kp in alpha:1 gamma:6 sensor/1:4 :2; do
    k=${kp%:*} p=${kp##*:}
    echo "val-$k" | "$M" produce -d "$D" keyed -k "$k"
    expect_ok "$M" consume -d "$D" keyed -p "$p" --format json
    python3 - "$T/out" "$k" <<'EOF' || fail "key '$k' not in partition $p"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert any(r['key'] == sys.argv[2] and r['value'] == 'val-' + sys.argv[2] for r in recs), recs
EOF
done
# -p wins over the key
echo pinned | "$M" produce -d "$D" keyed -k alpha -p 5
expect_ok "$M" consume -d "$D" keyed -p 5 -o 1
[[ $(cat "$T/out") == pinned ]] || fail "-p with -k: $(cat "$T/out")"

# ---- consume: filters, formats, topic globs, --count ----
expect_ok "$M" consume -d "$D" keyed --key alpha --format '%p %o %k %s\n'
[[ $(cat "$T/out") == $'1 1 alpha val-alpha\n5 1 alpha pinned' ]] || fail "--key alpha: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" keyed --key 'sens*' --count
[[ $(cat "$T/out") == 1 ]] || fail "--key 'sens*' --count: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 0 --header 'trace=a*' --format '%o %{trace}|%{empty}|%{nosuch}|%K\n'
[[ $(cat "$T/out") == $'7 abc|||4\n8 abc|||4' ]] || fail "--header trace=a*: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 0 --header 'trace=abc' --header 'empty=' --count
[[ $(cat "$T/out") == 2 ]] || fail "two --header filters: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t --header 'trace=x*' --count
[[ $(cat "$T/out") == 0 ]] || fail "--header trace=x* --count: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 0 -o 2 --until 4 --format csv
python3 - "$T/out" <<'EOF' || fail "csv output: $(cat "$T/out")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='')))
assert rows[0] == ['topic', 'partition', 'offset', 'timestamp', 'key', 'value'], rows
assert [r[:3] + r[4:] for r in rows[1:]] == [['t', '0', '2', '', 'quote " backslash \\ tab\tend'], ['t', '0', '3', '', '']], rows
assert all(int(r[3]) > 0 for r in rows[1:]), rows
EOF
ok
expect_ok "$M" consume -d "$D" t --count
n_t=$(cat "$T/out")
expect_ok "$M" consume -d "$D" keyed --count
n_keyed=$(cat "$T/out")
expect_ok "$M" consume -d "$D" '[kt]*' --count
[[ $(cat "$T/out") == $((n_t + n_keyed)) ]] || fail "glob [kt]* counted $(cat "$T/out"), not $n_t + $n_keyed"
expect_ok "$M" consume -d "$D" 'k*' -p 1 --format '%t-%p\n'
[[ $(sort -u "$T/out") == keyed-1 ]] || fail "glob k* -p 1: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" "*" --format json # big has no record yet
python3 -c 'import json,sys; print("\n".join(sorted({json.loads(l)["topic"] for l in open(sys.argv[1])})))' "$T/out" >"$T/topics_seen"
[[ $(cat "$T/topics_seen") == $'keyed\nt' ]] || fail "glob * JSON topics: $(cat "$T/topics_seen")"
expect_err 1 "no topic matches 'nomatch\*'" "$M" consume -d "$D" 'nomatch*'
expect_err 2 "unknown field '%x' at column 4" "$M" consume -d "$D" t --format 'ab %x'
expect_err 2 "--count and -f do not go together" "$M" consume -d "$D" t --count -f
expect_err 2 "--header 'novalue': expected KEY=VALUE" "$M" consume -d "$D" t --header novalue

# ---- topics ----
expect_ok "$M" topics -d "$D"
grep -Eq '^t +0 +0 +9 ' "$T/out" || fail "topics table: $(cat "$T/out")"
grep -Eq '^keyed +5 +0 +2 ' "$T/out" || fail "topics table: $(cat "$T/out")"
grep -Eq 'Z +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "$T/out" || fail "topics timestamps: $(cat "$T/out")"
expect_ok "$M" topics -d "$D" --json
python3 - "$T/out" "$before" "$after" <<'EOF' || fail "topics --json"
import json, sys
doc = json.load(open(sys.argv[1]))
topics = {t['topic']: t for t in doc['topics']}
assert set(topics) == {'t', 'keyed', 'big'}, topics.keys()
t = topics['t']
assert t['partitions'] == 3 and t['retention_ms'] == 7 * 86400000 and t['retention_bytes'] == 0, t
p0 = t['partition_list'][0]
assert p0['partition'] == 0 and p0['start_offset'] == 0 and p0['end_offset'] == 9 and p0['bytes'] > 0, p0
assert int(sys.argv[2]) <= p0['oldest_timestamp'] <= p0['newest_timestamp'] <= int(sys.argv[3]), p0
assert t['partition_list'][1]['end_offset'] == 0 and t['partition_list'][1]['oldest_timestamp'] is None
k = topics['keyed']
assert k['retention_ms'] == 14 * 86400000 and k['retention_bytes'] == 1 << 30, k
assert topics['big']['retention_ms'] == 0
b = doc['budget']  # no configuration: the limits are unknown
assert b['max_disk_bytes'] is None and b['min_free_bytes'] is None, b
assert b['used_bytes'] == sum(p['bytes'] for t in doc['topics'] for p in t['partition_list']), b
assert b['free_bytes'] > 0, b
EOF
expect_ok "$M" topics -d "$D"
grep -q '^disk budget: max_disk_bytes unknown (-c FILE), min_free_bytes unknown (-c FILE)$' "$T/out" ||
    fail "topics budget: $(cat "$T/out")"
grep -Eq '^used: [0-9]+ bytes in segment files; free: [0-9]+ bytes on the file system$' "$T/out" ||
    fail "topics used and free: $(cat "$T/out")"
# the budget's limits from mqlogd's configuration, which also names the data directory
cat >"$T/budget.yaml" <<EOF
data_dir: $D
log:
  max_disk_bytes: 16MiB
  min_free_bytes: 1MiB
brokers:
  - name: local
    url: mqtt://127.0.0.1:1883
mappings:
  - from: "a/#"
    to: t
EOF
expect_ok "$M" topics -c "$T/budget.yaml" --json
python3 -c 'import json,sys; b = json.load(open(sys.argv[1]))["budget"]
assert b["max_disk_bytes"] == 16 << 20 and b["min_free_bytes"] == 1 << 20 and b["used_bytes"] > 0, b' "$T/out" ||
    fail "topics -c: $(cat "$T/out")"
expect_ok "$M" topics -c "$T/budget.yaml"
grep -q '^disk budget: max_disk_bytes 16777216 bytes, min_free_bytes 1048576 bytes$' "$T/out" ||
    fail "topics -c budget: $(cat "$T/out")"
ok

# ---- consume: start positions, -n ----
expect_ok "$M" consume -d "$D" t -p 0 -o 7
[[ $(cat "$T/out") == $'k1\nk2' ]] || fail "-o 7: $(cat "$T/out")"
expect_err 3 "offset 100 is past the end of t-0 \(its next offset is 9\)" "$M" consume -d "$D" t -p 0 -o 100
expect_ok "$M" consume -d "$D" t -p 0 -o -2
[[ $(cat "$T/out") == $'k1\nk2' ]] || fail "-o -2: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 0 -o -100
cmp "$T/out" "$T/want0" || fail "-o -100 (more than there are) is not everything"
expect_ok "$M" consume -d "$D" t -p 0 --until 2
[[ $(cat "$T/out") == $'plain\nh\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93' ]] || fail "--until 2: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 0 -o 6 --until -1
[[ $(cat "$T/out") == $'no newline\nk1' ]] || fail "-o 6 --until -1: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 0 -o -1h
cmp "$T/out" "$T/want0" || fail "-o -1h is not everything"
expect_ok "$M" consume -d "$D" t -p 0 -o -10m --until now
cmp "$T/out" "$T/want0" || fail "-o -10m --until now is not everything"
expect_ok "$M" consume -d "$D" t -p 0 -o yesterday --until -1h
[[ ! -s $T/out ]] || fail "--until -1h printed records stored seconds ago"
expect_err 2 "looks like seconds since the epoch: give milliseconds \(@${before:0:10}000\)" \
    "$M" consume -d "$D" t -p 0 -o "@${before:0:10}"
expect_err 2 "-o 'tomorrow': expected beginning, end, an offset" "$M" consume -d "$D" t -o tomorrow
expect_err 2 "--until 'end': expected an offset" "$M" consume -d "$D" t --until end
expect_ok "$M" consume -d "$D" t -p 0 -o end
[[ ! -s $T/out ]] || fail "-o end without -f printed something"
expect_ok "$M" consume -d "$D" t -p 0 -o 1 -n 2
[[ $(cat "$T/out") == $'h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93\nquote " backslash \\ tab\tend' ]] ||
    fail "-o 1 -n 2: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" keyed -n 3
[[ $(wc -l <"$T/out") == 3 ]] || fail "-n 3 over all partitions printed $(wc -l <"$T/out") lines"
# by time: the first record whose timestamp is >= the newest record's timestamp
newest=$(python3 -c 'import json,sys; print(max(json.loads(l)["timestamp"] for l in open(sys.argv[1])))' "$T/json0")
first_at=$(python3 -c 'import json,sys; print(min(json.loads(l)["offset"] for l in open(sys.argv[1]) if json.loads(l)["timestamp"] >= int(sys.argv[2])))' "$T/json0" "$newest")
expect_ok "$M" consume -d "$D" t -p 0 -o "@$newest" --format json
got_first=$(head -n1 "$T/out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["offset"])')
[[ $got_first == "$first_at" && $(wc -l <"$T/out") == $((9 - first_at)) ]] ||
    fail "-o @$newest started at $got_first, expected $first_at"
expect_ok "$M" consume -d "$D" t -p 0 -o @0
cmp "$T/out" "$T/want0" || fail "-o @0 is not everything"
expect_ok "$M" consume -d "$D" t -p 0 -o "@$((newest + 1))"
[[ ! -s $T/out ]] || fail "-o @(after the newest) printed something"
# the same instant as a local ISO 8601 time, and as a zoned one
iso_local=$(python3 -c 'import sys,time; t=int(sys.argv[1]); print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t // 1000)) + ".%03d" % (t % 1000))' "$newest")
iso_utc=$(python3 -c 'import sys,time; t=int(sys.argv[1]); print(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000)) + ".%03dZ" % (t % 1000))' "$newest")
for iso in "$iso_local" "$iso_utc"; do
    expect_ok "$M" consume -d "$D" t -p 0 -o "$iso" --format json
    got_first=$(head -n1 "$T/out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["offset"])')
    [[ $got_first == "$first_at" ]] || fail "-o '$iso' started at $got_first, expected $first_at"
done
# --until a time: the records before the newest one's timestamp
expect_ok "$M" consume -d "$D" t -p 0 --until "@$newest"
[[ $(wc -l <"$T/out") == "$first_at" ]] || fail "--until @$newest printed $(wc -l <"$T/out") records, expected $first_at"

# a long line (1 MiB) round-trips
python3 -c 'import sys; sys.stdout.write("x" * (1 << 20) + "\n")' | "$M" produce -d "$D" big
expect_ok "$M" consume -d "$D" big -n 1
[[ $(wc -c <"$T/out") == $(((1 << 20) + 1)) ]] || fail "1 MiB line came back as $(wc -c <"$T/out") bytes"

# ---- consumer groups ----
seq 1 10 | "$M" produce -d "$D" t -p 1
expect_ok "$M" consume -d "$D" t -p 1 --group g1 -n 4
[[ $(cat "$T/out") == $'1\n2\n3\n4' ]] || fail "group first run: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 1 --group g1 -n 3
[[ $(cat "$T/out") == $'5\n6\n7' ]] || fail "group second run: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 1 --group g1 -o end # the committed offset wins over -o
[[ $(cat "$T/out") == $'8\n9\n10' ]] || fail "group third run: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 1 --group g1
[[ ! -s $T/out ]] || fail "group fourth run printed: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 1 --group fresh -o 8 # no committed offset: -o applies
[[ $(cat "$T/out") == $'9\n10' ]] || fail "new group with -o 8: $(cat "$T/out")"
expect_ok "$M" groups -d "$D"
grep -Eq '^g1 +t +1 +10 +10 +0$' "$T/out" || fail "groups: $(cat "$T/out")"
grep -Eq '^fresh +t +1 +10 ' "$T/out" || fail "groups: $(cat "$T/out")"
expect_err 1 "unknown group 'nope'" "$M" groups -d "$D" nope
# every partition of a topic the group reads, committed or not; lag from the log start when not
expect_ok "$M" groups -d "$D"
grep -Eq '^g1 +t +0 +- +9 +9$' "$T/out" || fail "groups: uncommitted t-0: $(cat "$T/out")"
grep -Eq '^g1 +t +2 +- +0 +0$' "$T/out" || fail "groups: uncommitted t-2: $(cat "$T/out")"

# ---- groups reset ----
expect_ok "$M" groups reset -d "$D" g1 --to-earliest --dry-run
grep -Eq '^g1 +t +1 +10 +0$' "$T/out" && grep -q "dry run: nothing written" "$T/out" ||
    fail "reset --dry-run: $(cat "$T/out")"
expect_ok "$M" groups -d "$D" g1
grep -Eq '^g1 +t +1 +10 +10 +0$' "$T/out" || fail "a dry run changed offsets: $(cat "$T/out")"
expect_ok "$M" groups reset -d "$D" g1 --to-offset 5
grep -Eq '^g1 +t +0 +- +5$' "$T/out" && grep -Eq '^g1 +t +2 +- +0$' "$T/out" &&
    grep -q "reset 3 partitions of group g1" "$T/out" || fail "reset --to-offset 5: $(cat "$T/out")"
expect_ok "$M" consume -d "$D" t -p 1 --group g1 -n 1
[[ $(cat "$T/out") == 6 ]] || fail "after reset to 5 the group read $(cat "$T/out")"
expect_ok "$M" groups reset -d "$D" g1 --to-datetime "@$newest" --topic 't*'
grep -Eq "^g1 +t +0 +5 +$first_at\$" "$T/out" || fail "reset --to-datetime: $(cat "$T/out")"
expect_ok "$M" groups reset -d "$D" g1 --to-latest
grep -Eq '^g1 +t +1 +[0-9]+ +10$' "$T/out" || fail "reset --to-latest: $(cat "$T/out")"
expect_ok "$M" groups reset -d "$D" newgroup --to-earliest --topic keyed
grep -q "reset 7 partitions of group newgroup" "$T/out" || fail "reset of a new group: $(cat "$T/out")"
expect_err 2 "give exactly one of --to-earliest" "$M" groups reset -d "$D" g1
expect_err 2 "give exactly one of --to-earliest" "$M" groups reset -d "$D" g1 --to-earliest --to-latest
expect_err 2 "--to-datetime '5': expected a time" "$M" groups reset -d "$D" g1 --to-datetime 5
expect_err 1 "group nope has no offsets to reset" "$M" groups reset -d "$D" nope --to-earliest
expect_err 1 "no topic matches 'zz\*'" "$M" groups reset -d "$D" g1 --to-earliest --topic 'zz*'

# forward status: the figures are checked by tests/unit/test_tool_forward.c; here the command line
expect_ok "$M" forward status -d "$D"
grep -q "no forwarder has stored a checkpoint yet" "$T/out" || fail "forward status: $(cat "$T/out")"
expect_err 1 "no forwarder 'central'" "$M" forward status -d "$D" central
expect_err 2 "unknown subcommand 'stat'" "$M" forward stat -d "$D"
expect_err 2 "no data directory" "$M" forward status

# a reader that goes away (| head) ends the consumer cleanly
set +o pipefail
"$M" consume -d "$D" big | head -c 10 >/dev/null
st=${PIPESTATUS[0]}
set -o pipefail
[[ $st == 0 ]] || fail "consume into a closed pipe exited $st"
ok

# ---- follow ----
# 1. -f from a fixed offset beside a producer process writing one record at a time
end=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["topics"][[t["topic"] for t in d["topics"]].index("t")]["partition_list"][2]["end_offset"])' < <("$M" topics -d "$D" --json))
"$M" consume -d "$D" t -p 2 -o "$end" -f --group gf >"$T/follow.out" 2>"$T/follow.err" &
cpid=$!
BG+=("$cpid")
(for i in 1 2 3 4 5; do echo "live-$i" | "$M" produce -d "$D" t -p 2; done) &
ppid=$!
BG+=("$ppid")
wait_for 20 lines_at_least "$T/follow.out" 5
wait "$ppid"
kill -TERM "$cpid"
set +e
wait "$cpid"
st=$?
set -e
[[ $st == 0 ]] || fail "consume -f exited $st after SIGTERM: $(cat "$T/follow.err")"
[[ $(cat "$T/follow.out") == $'live-1\nlive-2\nlive-3\nlive-4\nlive-5' ]] || fail "follow: $(cat "$T/follow.out")"
[[ ! -s $T/follow.err ]] || fail "follow stderr: $(cat "$T/follow.err")"
# the group committed at exit: a new run prints only what came after
echo live-6 | "$M" produce -d "$D" t -p 2
expect_ok "$M" consume -d "$D" t -p 2 --group gf
[[ $(cat "$T/out") == live-6 ]] || fail "follow group resume: $(cat "$T/out")"
ok

# 2. -f -o end -n 1 over all partitions: only a record written after the start is printed. The producer
#    keeps writing markers until the consumer has seen one and exited by itself.
"$M" consume -d "$D" t -o end -f -n 1 >"$T/end.out" 2>"$T/end.err" &
cpid=$!
BG+=("$cpid")
deadline=$((SECONDS + 20))
while kill -0 "$cpid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "consume -f -o end -n 1 did not see a new record"
    echo marker | "$M" produce -d "$D" t
done
set +e
wait "$cpid"
st=$?
set -e
[[ $st == 0 && $(cat "$T/end.out") == marker ]] || fail "-o end -f -n 1: status $st, output $(cat "$T/end.out")"
ok

# ---- verify ----
expect_ok "$M" verify -d "$D"
grep -Eq "^$D: 11 partitions, [0-9]+ batches checked, 0 problems$" "$T/out" || fail "verify: $(cat "$T/out")"

# ---- errors (nothing stored may change) ----
fp=$(fingerprint)
expect_err 1 "data directory $T/missing: no such file or directory" "$M" consume -d "$T/missing" t
expect_err 1 "data directory $T/missing: no such file or directory" "$M" topics -d "$T/missing"
expect_err 1 "data directory $T/missing: no such file or directory" "$M" produce -d "$T/missing" t </dev/null
expect_err 1 "data directory $T/missing: no such file or directory" "$M" verify -d "$T/missing"
[[ ! -e $T/missing ]] || fail "a failed command created the data directory"
touch "$T/afile"
expect_err 1 "not a directory" "$M" consume -d "$T/afile" t
expect_err 1 "not a directory" "$M" create -d "$T/afile" t --partitions 1
mkdir "$T/empty"
expect_err 1 "not an mqlog data directory" "$M" consume -d "$T/empty" t
expect_err 1 "unknown topic 'nosuch'" "$M" consume -d "$D" nosuch
expect_err 1 "unknown topic 'nosuch'" "$M" produce -d "$D" nosuch </dev/null
expect_err 1 "unknown partition 3 of topic t" "$M" consume -d "$D" t -p 3
expect_err 1 "unknown partition 7 of topic t" "$M" produce -d "$D" t -p 7 </dev/null
expect_err 2 "-n 'abc': not a number" "$M" consume -d "$D" t -n abc
expect_err 2 "-n 0: out of range" "$M" consume -d "$D" t -n 0
expect_err 2 "-p -1: out of range" "$M" consume -d "$D" t -p -1
expect_err 2 "-p 'x1': not a number" "$M" produce -d "$D" t -p x1 </dev/null
expect_err 2 "-o 'bogus': expected beginning, end" "$M" consume -d "$D" t -o bogus
expect_err 2 "-o .-5x.: expected -N" "$M" consume -d "$D" t -o -5x
expect_err 2 "-o '@x': expected" "$M" consume -d "$D" t -o @x
expect_err 2 "--format 'xml': expected raw, json, csv or a template" "$M" consume -d "$D" t --format xml
expect_err 2 "unknown option --bogus" "$M" consume -d "$D" t --bogus
expect_err 2 "option -d needs a value" "$M" consume -d
expect_err 2 "no data directory" "$M" consume t
expect_err 2 "no topic" "$M" consume -d "$D"
expect_err 2 "unexpected argument 'extra'" "$M" consume -d "$D" t extra
expect_err 2 "--retention '7x': not a duration" "$M" create -d "$D" u --partitions 1 --retention 7x
expect_err 2 "--retention-bytes '1XB': not a size" "$M" create -d "$D" u --partitions 1 --retention-bytes 1XB
expect_err 2 "--partitions 0: out of range" "$M" create -d "$D" u --partitions 0
expect_err 2 "invalid topic name 'a/b'" "$M" create -d "$D" a/b --partitions 1
expect_err 2 "--header 'novalue': expected KEY=VALUE" "$M" produce -d "$D" t -H novalue </dev/null
[[ $(fingerprint) == "$fp" ]] || fail "a failed command changed the stored files"
ok

# a running writer holds the lock: create and produce say so, readers still work. A python process takes
# the same flock(2) the writer takes and says when it holds it.
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)  # holds the lock until killed, not synchronisation' "$D/.lock" >"$T/lock.out" &
lpid=$!
BG+=("$lpid")
wait_for 10 lines_at_least "$T/lock.out" 1
expect_err 1 "locked by a running writer" "$M" create -d "$D" u --partitions 1
expect_err 1 "locked by a running writer" "$M" produce -d "$D" t </dev/null
expect_ok "$M" consume -d "$D" t -p 0 -n 1
kill "$lpid"
wait "$lpid" 2>/dev/null || true
[[ $(fingerprint) == "$fp" ]] || fail "a locked-out command changed the stored files"

if [[ $(id -u) != 0 ]]; then # root may write anywhere
    mkdir "$T/ro" && chmod 555 "$T/ro"
    expect_err 1 "not writable" "$M" create -d "$T/ro" t --partitions 1
fi

# ---- corruption: one byte flipped inside a batch ----
# Three produce runs make three batches in c-0; the index (an entry per 4 KiB) lets a reader start near
# the end, so damage in the first batch is found by the per-batch CRC check of consume and verify.
expect_ok "$M" create -d "$D" c --partitions 1
for run_ in 1 2 3; do python3 -c 'print("\n".join("%0100d" % i for i in range(100)))' | "$M" produce -d "$D" c; done
expect_ok "$M" consume -d "$D" c
[[ $(wc -l <"$T/out") == 300 ]] || fail "c before corruption: $(wc -l <"$T/out") records"
seg=$D/c-0/00000000000000000000.log
python3 - "$seg" <<'EOF'
import sys
with open(sys.argv[1], 'r+b') as f:
    # the last byte of the first batch is inside its records and covered by its CRC. The batch may hold
    # one record or a hundred (the flush timing of the first produce run decides), so its length is read.
    f.seek(8)
    pos = 12 + int.from_bytes(f.read(4), 'big') - 1
    f.seek(pos)
    b = f.read(1)
    f.seek(pos)
    f.write(bytes([b[0] ^ 0x40]))
EOF
run "$M" verify -d "$D"
[[ $rc == 1 ]] || fail "verify of a corrupted segment exited $rc"
grep -q "^$seg:0: CRC mismatch" "$T/out" || fail "verify report: $(cat "$T/out")"
grep -Eq "^$D: 12 partitions, [0-9]+ batches checked, [1-9][0-9]* problems?$" "$T/out" || fail "verify summary: $(cat "$T/out")"
ok
# consume skips the damaged batch with one warning naming it, as the Kafka endpoint does (issue 11)
# (how many records the first batch holds depends on the flush timing of the first produce run)
run "$M" consume -d "$D" c
lost=$(sed -n "s|.*$seg:0: CRC mismatch in the batch of offsets 0\.\.\([0-9]*\) .*|\1|p" "$T/err")
[[ -n $lost ]] || fail "consume's warning: $(cat "$T/err")"
[[ $rc == 0 && $(wc -l <"$T/out") == $((300 - lost - 1)) ]] || fail "consume past the damaged batch: $rc, $(cat "$T/err")"
[[ $(grep -c "CRC mismatch" "$T/err") == 1 ]] || fail "consume warned more than once: $(cat "$T/err")"
ok
run "$M" consume -d "$D" c -o 100 # the damaged batch is before the start: the rest reads fine
[[ $rc == 0 && $(wc -l <"$T/out") == 200 ]] || fail "reading after the damaged batch: $rc, $(cat "$T/err")"
ok

# ---- verify: catalog rows against directories ----
mkdir "$D/ghost-0"
rm -r "$D/keyed-6"
run "$M" verify -d "$D"
[[ $rc == 1 ]] || fail "verify with a stray and a missing directory exited $rc"
grep -q "^$D/ghost-0: partition directory without a catalog row" "$T/out" || fail "verify: $(cat "$T/out")"
grep -q "^$D/keyed-6: partition directory missing" "$T/out" || fail "verify: $(cat "$T/out")"
ok
expect_err 1 "partition keyed-6: directory missing" "$M" consume -d "$D" keyed -p 6

# ---- user: the Kafka endpoint's SASL users, in the catalog only ----
U=$T/users
printf 's3cret\n' >"$T/pw"
expect_ok "$M" user add -d "$U" alice --password-file "$T/pw" # creates the data directory and catalog
grep -q "added user alice (SCRAM-SHA-256, SCRAM-SHA-512, 4096 iterations)" "$T/out" || fail "user add: $(cat "$T/out")"
# Beside a running writer (the lock held as in the section above): users change, no lock is needed.
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)  # holds the lock until killed, not synchronisation' "$U/.lock" >"$T/ulock.out" &
lpid=$!
BG+=("$lpid")
wait_for 10 lines_at_least "$T/ulock.out" 1
printf 'other\n' | "$M" user add -d "$U" bob -m SCRAM-SHA-512 --iterations 8192 >"$T/out" 2>"$T/err" ||
    fail "user add beside a writer: $(cat "$T/err")"
grep -q "added user bob (SCRAM-SHA-512, 8192 iterations)" "$T/out" || fail "user add bob: $(cat "$T/out")"
printf 'new\n' | "$M" user add -d "$U" alice -m SCRAM-SHA-256 >"$T/out" 2>&1 || fail "user add again: $(cat "$T/out")"
grep -q "updated user alice (SCRAM-SHA-256, 4096 iterations)" "$T/out" || fail "user update: $(cat "$T/out")"
expect_ok "$M" user list -d "$U"
[[ $(wc -l <"$T/out") == 3 ]] || fail "user list: $(cat "$T/out")"
grep -Eq "^alice +SCRAM-SHA-256 +4096  20[0-9-]+T" "$T/out" || fail "user list alice: $(cat "$T/out")"
grep -Eq "^bob +SCRAM-SHA-512 +8192 " "$T/out" || fail "user list bob: $(cat "$T/out")"
! grep -q "s3cret\|other" "$U/catalog.db"* || fail "a password is stored in the catalog"
expect_ok "$M" user remove -d "$U" bob
expect_err 1 "unknown user 'bob'" "$M" user remove -d "$U" bob
kill "$lpid"
wait "$lpid" 2>/dev/null || true
expect_err 2 "SCRAM-SHA-256 or SCRAM-SHA-512" "$M" user add -d "$U" x -m PLAIN
expect_err 2 "--iterations 100: out of range" "$M" user add -d "$U" x --iterations 100
expect_err 2 "go with add" "$M" user list -d "$U" -m SCRAM-SHA-256
expect_err 2 "unknown subcommand 'delete'" "$M" user delete -d "$U" alice
expect_err 2 "no user name" "$M" user add -d "$U"
expect_err 2 "user name" "$M" user add -d "$U" $'a\tb'
expect_err 1 "no password in stdin" "$M" user add -d "$U" carol </dev/null
expect_err 1 "no such file" "$M" user list -d "$T/nowhere"

# ---- compressed batches: produce -z with every codec; consume and verify read them back ----
Z=$T/codecs
expect_ok "$M" create -d "$Z" z --partitions 1
for codec in gzip snappy lz4 zstd none; do
    for i in $(seq 1 20); do echo "{\"sensor\":$i,\"codec\":\"$codec\",\"t\":21.5}"; done >"$T/in-$codec"
    expect_ok "$M" produce -d "$Z" z -z "$codec" <"$T/in-$codec"
done
expect_ok "$M" consume -d "$Z" z
cat "$T"/in-{gzip,snappy,lz4,zstd,none} | cmp -s - "$T/out" || fail "consume of compressed batches differs"
expect_ok "$M" verify -d "$Z"
# five produce runs, each one batch or more (a slow run, as under ASan, may flush its lines in two)
nb=$(sed -n 's/.*, \([0-9]*\) batches checked, 0 problems$/\1/p' "$T/out")
[[ -n $nb ]] && ((nb >= 5)) || fail "verify of compressed batches: $(cat "$T/out")"
expect_err 2 "--compression 'brotli'" "$M" produce -d "$Z" z -z brotli </dev/null

echo "test_tool.sh: all $CHECKS checks passed"
