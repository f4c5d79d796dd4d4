#!/usr/bin/env bash
# test_topic.sh - `mqlog topic alter` and `mqlog topic delete` without a daemon: raising partitions (and
# refusing to lower them), retention with units, keyed records after a raise, delete with its group offsets
# and forwarder checkpoints, the refusal while a forwarder is behind and --force, and a delete interrupted
# after its first step finished by the next writer. (Beside a running mqlogd: daemon/test_topic_admin.py.)
#
# usage: test_topic.sh PATH_TO_MQLOG
set -euo pipefail

M=${1:?usage: test_topic.sh PATH_TO_MQLOG}
source "$(dirname "$0")/lib/lib.sh"
need_exe "$M"
need python3
mq_setup topic

sql() { python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for row in c.execute(sys.argv[2]):
    print("|".join(str(v) for v in row))
c.commit()' "$D/catalog.db" "$1"; }

expect_ok "$M" topic --help
grep -q "usage: mqlog topic alter" "$T/out" || fail "topic --help: no usage line"
expect_err 2 "no subcommand" "$M" topic
expect_err 2 "unknown subcommand 'grow'" "$M" topic grow -d "$D" t
expect_err 2 "nothing to change" "$M" topic alter -d "$D" t
expect_err 2 "--retention '7 days': not a duration" "$M" topic alter -d "$D" t --retention '7 days'
expect_err 2 "--retention-bytes '1 GB': not a size" "$M" topic alter -d "$D" t --retention-bytes '1 GB'
expect_err 2 "--partitions 0: out of range" "$M" topic alter -d "$D" t -P 0
expect_err 2 "invalid topic name" "$M" topic delete -d "$D" 'a b'

# ---- alter ----
expect_ok "$M" create -d "$D" t --partitions 1
printf 'a\nb\n' | "$M" produce -d "$D" t -k dev7 || fail "produce"
expect_ok "$M" topic alter -d "$D" t -P 4 --retention 12h --retention-bytes 1GiB
grep -q "topic t: partitions 1 -> 4; retention.ms 604800000 -> 43200000; retention.bytes 0 -> 1073741824" \
    "$T/out" || fail "alter output: $(cat "$T/out")"
grep -q "may differ from the partition of earlier records" "$T/err" || fail "no keyed-placement warning"
sql "select partitions, retention_ms, retention_bytes from topics where name = 't'" >"$T/row"
[[ $(cat "$T/row") == "4|43200000|1073741824" ]] || fail "catalog after alter: $(cat "$T/row")"
[[ -d $D/t-3 ]] || fail "no directory for the new partition 3"
expect_err 1 "topic t has 4 partitions: a partition count only grows" "$M" topic alter -d "$D" t -P 2
expect_err 1 "unknown topic 'tt' in .* \(did you mean 't'\?\)" "$M" topic alter -d "$D" tt -P 2
expect_ok "$M" topic alter -d "$D" t --retention 0
grep -q "retention.ms 43200000 -> 0$" "$T/out" || fail "alter --retention 0: $(cat "$T/out")"
# the key now goes where Kafka's partitioner puts it for 4 partitions (murmur2("dev7") % 4 == 1)
printf 'c\n' | "$M" produce -d "$D" t -k dev7 -v 2>"$T/verbose" || fail "produce after alter"
grep -q "t-1: 1 at offsets 0..0" "$T/verbose" || fail "keyed record after alter: $(cat "$T/verbose")"
expect_ok "$M" verify -d "$D"

# ---- delete ----
expect_ok "$M" create -d "$D" fw --partitions 2
printf 'x\ny\nz\n' | "$M" produce -d "$D" fw -p 1 || fail "produce fw"
expect_ok "$M" consume -d "$D" fw -p 1 -g readers -n 1
sql "insert into connector_checkpoints (connector, key, value, updated_ms) values ('forward.central', 'fw:1', '1', 0)"
expect_err 1 "not deleting topic fw: forwarder central has not forwarded 2 records of fw-1 \(offsets 1..2\)" \
    "$M" topic delete -d "$D" fw
[[ -d $D/fw-1 ]] || fail "a refused delete removed files"
sql "update connector_checkpoints set value = '3' where key = 'fw:1'"
expect_ok "$M" topic delete -d "$D" fw
grep -q "topic fw: deleted (2 partitions)" "$T/out" || fail "delete output: $(cat "$T/out")"
[[ ! -e $D/fw-0 && ! -e $D/fw-1 ]] || fail "partition directories left after delete"
[[ -z $(sql "select * from topics where name = 'fw'") ]] || fail "topic row left"
[[ -z $(sql "select * from group_offsets where topic = 'fw'") ]] || fail "group offsets left"
[[ -z $(sql "select * from connector_checkpoints where key like 'fw:%'") ]] || fail "forwarder checkpoints left"
expect_err 1 "unknown topic 'fw'" "$M" topic delete -d "$D" fw

# --force deletes a topic a forwarder is behind on
expect_ok "$M" create -d "$D" fw --partitions 1
printf 'x\n' | "$M" produce -d "$D" fw || fail "produce fw again"
sql "insert into connector_checkpoints (connector, key, value, updated_ms) values ('forward.central', 'fw:0', '0', 0)"
expect_err 1 "not deleting topic fw" "$M" topic delete -d "$D" fw
expect_ok "$M" topic delete -d "$D" fw --force
grep -q "note: deleting topic fw although forwarder central has not forwarded 1 record" "$T/err" ||
    fail "--force without a note: $(cat "$T/err")"
[[ ! -e $D/fw-0 ]] || fail "--force left the directory"

# ---- an interrupted delete: the directories renamed, the row still there; the next writer finishes it ----
expect_ok "$M" create -d "$D" half --partitions 2
printf 'x\n' | "$M" produce -d "$D" half -p 0 || fail "produce half"
mv "$D/half-0" "$D/half-0.deleted"
expect_ok "$M" create -d "$D" other --partitions 1 # any writer open finishes it
[[ ! -e $D/half-0.deleted && ! -e $D/half-1 ]] || fail "the interrupted delete was not finished: $(ls "$D")"
[[ -z $(sql "select * from topics where name = 'half'") ]] || fail "the interrupted delete left the row"
expect_ok "$M" verify -d "$D"
expect_ok "$M" topics -d "$D"
! grep -q "^half" "$T/out" || fail "topics still lists half"

echo "test_topic.sh: all $CHECKS checks passed"
