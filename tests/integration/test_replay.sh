#!/usr/bin/env bash
# test_replay.sh - `mqlog replay` against a real mosquitto started on a free loopback port: records stored
# with mqtt.topic headers come back on their original topics with their original payloads, in order (one
# partition, several merged, -o/--until by offset and by time, --topic templates, QoS 0/1/2); --rate and
# --speed are honoured (lower bounds: they cannot finish early); a progress bar only on a terminal; and the errors (broker
# unreachable, connection lost midway, records without a topic, bad arguments) are one line with the right
# exit status.
#
# Subscribers use persistent sessions: `mosquitto_sub -c -E` subscribes and exits once the broker
# acknowledged the subscription, the broker queues what is published meanwhile, and a second
# `mosquitto_sub -c -C N` collects it. That needs no sleep to know a subscriber is ready.
#
# usage: test_replay.sh PATH_TO_MQLOG
set -euo pipefail

M=${1:?usage: test_replay.sh PATH_TO_MQLOG}
source "$(dirname "$0")/lib/lib.sh"
need_exe "$M"
PATH=$PATH:/usr/sbin:/sbin
need mosquitto mosquitto_sub mosquitto_passwd openssl python3 script
mq_setup replay

now_us() { python3 -c 'import time; print(int(time.monotonic() * 1e6))'; }

# ---- the broker ----
PORT=$(free_port)
cat >"$T/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
max_queued_messages 1000000
max_inflight_messages 0
queue_qos0_messages true
persistence false
EOF
start_broker() {
    mosquitto -c "$T/mosquitto.conf" >>"$T/mosquitto.log" 2>&1 &
    BROKER=$!
    BG+=("$BROKER")
    wait_for 10 port_open "$PORT"
}
start_broker
URL=mqtt://127.0.0.1:$PORT

# subscribe ID FILTER: a persistent session whose subscription the broker acknowledged.
subscribe() { mosquitto_sub -h 127.0.0.1 -p "$PORT" -c -i "$1" -q 2 -t "$2" -E; }
# collect ID FILTER COUNT FILE: the COUNT queued messages, one "TOPIC HEXPAYLOAD" line each.
collect() {
    mosquitto_sub -h 127.0.0.1 -p "$PORT" -c -i "$1" -q 2 -t "$2" -C "$3" -W 20 -F '%t %x' >"$4" ||
        fail "collecting $3 messages for $1: got $(wc -l <"$4")"
}
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# ---- data ----
# t: 3 partitions. t-0 alternates between two MQTT topics (one produce run per topic change), t-1 one topic
# with UTF-8 and spaces in the payloads, t-2 an empty payload and a key.
expect_ok "$M" create -d "$D" t --partitions 3
: >"$T/want0"
for round in 1 2 3; do
    for tp in sensors/a/temp sensors/b/temp; do
        for i in 1 2 3; do echo "$tp-r$round-$i"; done | "$M" produce -d "$D" t -p 0 -H "mqtt.topic=$tp"
        for i in 1 2 3; do echo "$tp $(hex "$tp-r$round-$i")"; done >>"$T/want0"
    done
done
printf 'h\xc3\xa9llo world\nsecond one\nthird\n' | "$M" produce -d "$D" t -p 1 -H $'mqtt.topic=caf\xc3\xa9/h'
printf 'h\xc3\xa9llo world\nsecond one\nthird\n' >"$T/in1"
: >"$T/want1"
while IFS= read -r l; do echo "$(printf 'caf\xc3\xa9/h') $(hex "$l")"; done <"$T/in1" >>"$T/want1"
printf '\nlast\n' | "$M" produce -d "$D" t -p 2 -k k1 -H mqtt.topic=other
printf 'other %s\nother %s\n' "" "$(hex last)" >"$T/want2"
ok

# ---- one partition: every record, in order, on its topic ----
subscribe s1 '#'
expect_ok "$M" replay -d "$D" t -p 0 --to "$URL"
grep -Eq '^mqlog: replayed 18 records of t to mqtt://127\.0\.0\.1:[0-9]+ in [0-9.]+ s .*QoS 1, all acknowledged$' \
    "$T/err" || fail "summary: $(cat "$T/err")"
[[ $(wc -l <"$T/err") == 1 && ! -s $T/out ]] || fail "replay printed more than its summary"
collect s1 '#' 18 "$T/got"
sed 's/ $//' "$T/want0" | diff - <(sed 's/ $//' "$T/got") || fail "t-0 replayed differently"
ok

# ---- all partitions: each partition's records in order, all of them, exactly once ----
subscribe s2 '#'
expect_ok "$M" replay -d "$D" t --to "$URL" --qos 2
grep -q "replayed 23 records" "$T/err" || fail "summary: $(cat "$T/err")"
collect s2 '#' 23 "$T/got"
sed 's/ $//' "$T/got" >"$T/gotn"
grep -E '^sensors/' "$T/gotn" | diff <(sed 's/ $//' "$T/want0") - || fail "t-0 out of order in a merged replay"
grep -E '^caf' "$T/gotn" | diff <(sed 's/ $//' "$T/want1") - || fail "t-1 out of order in a merged replay"
grep -E '^other' "$T/gotn" | diff <(sed 's/ $//' "$T/want2") - || fail "t-2 out of order in a merged replay"
ok

# ---- -o and --until by offset; QoS 0 ----
subscribe s3 '#'
expect_ok "$M" replay -d "$D" t -p 0 -o 4 --until 9 --to "$URL" --qos 0
grep -q "replayed 5 records" "$T/err" || fail "-o 4 --until 9: $(cat "$T/err")"
collect s3 '#' 5 "$T/got"
sed -n '5,9p' "$T/want0" | diff - "$T/got" || fail "-o 4 --until 9 replayed the wrong records"
expect_ok "$M" replay -d "$D" t -p 0 -o end --to "$URL"
grep -q "replayed 0 records" "$T/err" || fail "-o end: $(cat "$T/err")"
expect_ok "$M" replay -d "$D" t -p 0 --until 0 --to "$URL"
grep -q "replayed 0 records" "$T/err" || fail "--until 0: $(cat "$T/err")"
ok

# ---- --topic templates ----
subscribe s4 'r/#'
expect_ok "$M" replay -d "$D" t -p 2 --to "$URL" --topic 'r/{topic}/{partition}/{offset}/{key}'
collect s4 'r/#' 2 "$T/got"
printf 'r/other/2/0/k1 \nr/other/2/1/k1 %s\n' "$(hex last)" | diff - "$T/got" || fail "template topics"
ok

# ---- paced data: 6 records whose stored timestamps are ~120 ms apart ----
# (The sleeps only space the timestamps that produce gives each line; the assertions below use the stored
# timestamps, whatever the sleeps amounted to.)
expect_ok "$M" create -d "$D" paced --partitions 1
# One produce per record: one run for all six would stamp lines when it reads them, and a run starved under
# load reads several at once, in the same millisecond.
for i in 0 1 2 3 4 5; do
    echo "p$i" | "$M" produce -d "$D" paced -H mqtt.topic=paced
    [[ $i == 5 ]] || sleep 0.12 # spaces the timestamps (see above), not synchronisation
done
"$M" consume -d "$D" paced --format json | python3 -c '
import json, sys
print(" ".join(str(json.loads(l)["timestamp"]) for l in sys.stdin))' >"$T/ts"
read -r -a TS <"$T/ts"
[[ ${#TS[@]} == 6 ]] || fail "paced: ${#TS[@]} records"
SPAN_MS=$((TS[5] - TS[0]))
((SPAN_MS >= 300)) || fail "paced: stored timestamps span only $SPAN_MS ms"

# Pacing is checked by lower bounds only: the last record cannot go out before SPAN/SPEED (less a margin)
# has passed, however fast the machine; an upper bound would be a wall-clock assertion that a loaded
# machine breaks. --speed 0.5 can only take twice the span if the factor is applied.
# --speed 2: the last record goes out SPAN/2 after the first
subscribe s5 paced
t0=$(now_us)
expect_ok "$M" replay -d "$D" paced --to "$URL" --speed 2
el_ms=$((($(now_us) - t0) / 1000))
((el_ms >= SPAN_MS * 45 / 100)) || fail "--speed 2 took $el_ms ms for a span of $SPAN_MS ms"
collect s5 paced 6 "$T/got"
[[ $(cut -d' ' -f2 "$T/got" | tr '\n' ' ') == "$(for i in 0 1 2 3 4 5; do printf '%s ' "$(hex "p$i")"; done)" ]] ||
    fail "--speed 2 payloads: $(cat "$T/got")"
# --speed 0.5: twice the span
t0=$(now_us)
expect_ok "$M" replay -d "$D" paced --to "$URL" --speed 0.5 --qos 0
el05_ms=$((($(now_us) - t0) / 1000))
((el05_ms >= SPAN_MS * 18 / 10)) || fail "--speed 0.5 took $el05_ms ms for a span of $SPAN_MS ms"
# --speed 20: a twentieth
t0=$(now_us)
expect_ok "$M" replay -d "$D" paced --to "$URL" --speed 20 --qos 0
el20_ms=$((($(now_us) - t0) / 1000))
((el20_ms >= SPAN_MS * 45 / 1000)) || fail "--speed 20 took $el20_ms ms for a span of $SPAN_MS ms"
ok

# --until @TS stops before the first record with that timestamp; -o @TS starts at it
subscribe s6 paced
expect_ok "$M" replay -d "$D" paced --to "$URL" -o "@${TS[1]}" --until "@${TS[4]}"
grep -q "replayed 3 records" "$T/err" || fail "-o @TS1 --until @TS4: $(cat "$T/err")"
collect s6 paced 3 "$T/got"
printf 'paced %s\npaced %s\npaced %s\n' "$(hex p1)" "$(hex p2)" "$(hex p3)" | diff - "$T/got" ||
    fail "-o @TS --until @TS replayed the wrong records"
ok

# ---- --rate: 200 messages at 1000/s take at least 0.199 s (first at 0, last at 199 ms) ----
expect_ok "$M" create -d "$D" many --partitions 1
seq 1 200 | "$M" produce -d "$D" many -H mqtt.topic=many
subscribe s7 many
t0=$(now_us)
expect_ok "$M" replay -d "$D" many --to "$URL" --rate 1000
el_ms=$((($(now_us) - t0) / 1000))
((el_ms >= 150)) || fail "--rate 1000: 200 messages took $el_ms ms" # a lower bound only (see --speed)
collect s7 many 200 "$T/got"
diff <(for i in $(seq 1 200); do echo "many $(hex "$i")"; done) "$T/got" || fail "--rate: wrong messages"
ok

# ---- a terminal gets a progress bar; a pipe only the summary (checked above) ----
run script -qfec "$M replay -d $D many --to $URL --rate 2000 --qos 0" /dev/null
[[ $rc == 0 ]] || fail "replay under a terminal exited $rc: $(cat "$T/out")"
grep -q '\[###' "$T/out" || fail "no progress bar on a terminal: $(cat -v "$T/out")"
grep -q '100% 200/200' "$T/out" || fail "progress bar did not reach 200/200: $(cat -v "$T/out")"
grep -Eq '[0-9]+ msg/s, [0-9:-]+ left' "$T/out" || fail "progress bar without rate and time left: $(cat -v "$T/out")"
run script -qfec "$M replay -d $D many --to $URL --qos 0 --quiet" /dev/null
[[ $rc == 0 ]] && ! grep -q '\[###' "$T/out" && grep -q 'replayed 200 records' "$T/out" ||
    fail "--quiet still drew a progress bar: $(cat -v "$T/out")"
grep -q 'replayed 200 records' "$T/out" || fail "no summary on a terminal: $(cat -v "$T/out")"
ok

# ---- errors ----
CLOSED=$(free_port)
expect_err 1 "cannot connect to mqtt://127\.0\.0\.1:$CLOSED: connection refused" \
    "$M" replay -d "$D" t --to "mqtt://127.0.0.1:$CLOSED"
expect_ok "$M" create -d "$D" bare --partitions 1
echo x | "$M" produce -d "$D" bare
expect_err 1 "bare-0 offset 0: the record has no mqtt.topic header \(name a topic with --topic TEMPLATE\)" \
    "$M" replay -d "$D" bare --to "$URL"
expect_err 1 "the record has no mqtt.topic header for \{topic\}" \
    "$M" replay -d "$D" bare --to "$URL" --topic 'x/{topic}'
expect_ok "$M" replay -d "$D" bare --to "$URL" --topic 'x/{offset}'
expect_err 1 "cannot publish on MQTT topic 'sensors/a/temp/\+': contains a wildcard" \
    "$M" replay -d "$D" t -p 0 --to "$URL" --topic '{topic}/+'
expect_err 2 "unknown placeholder at '\{nope\}'" "$M" replay -d "$D" t --to "$URL" --topic 'a/{nope}'
expect_err 2 "'\}' without '\{'" "$M" replay -d "$D" t --to "$URL" --topic 'a}'
expect_err 2 "--rate and --speed exclude each other" "$M" replay -d "$D" t --to "$URL" --rate 5 --speed 2
expect_err 2 "--rate '0': expected a number > 0" "$M" replay -d "$D" t --to "$URL" --rate 0
expect_err 2 "--speed 'fast': expected a number > 0" "$M" replay -d "$D" t --to "$URL" --speed fast
expect_err 2 "--qos 3: out of range" "$M" replay -d "$D" t --to "$URL" --qos 3
expect_err 2 "--to 'tcp://x': expected mqtt://HOST\[:PORT\] or mqtts://HOST\[:PORT\]" "$M" replay -d "$D" t --to tcp://x
expect_err 2 "bad port '99999'" "$M" replay -d "$D" t --to mqtt://localhost:99999
expect_err 2 "no broker" "$M" replay -d "$D" t
expect_err 2 "--until 'end': expected an offset" "$M" replay -d "$D" t --to "$URL" --until end
expect_err 1 "unknown topic 'nosuch'" "$M" replay -d "$D" nosuch --to "$URL"
expect_err 1 "unknown partition 7 of topic t" "$M" replay -d "$D" t -p 7 --to "$URL"
expect_ok "$M" replay --help
grep -q "usage: mqlog replay" "$T/out" || fail "replay --help"

# ---- mqtts:// with a password: a second mosquitto with a TLS listener and a password file ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 -subj /CN=replay-ca \
    2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -out "$T/srv.pem" \
    -days 2 -extfile "$T/san.ext" 2>/dev/null
mosquitto_passwd -c -b "$T/mosq.passwd" alice 's:cret' 2>/dev/null
printf 's:cret\n' >"$T/alice.pw"
printf 'wrong\n' >"$T/wrong.pw"
TPORT=$(free_port)
cat >"$T/mosquitto-tls.conf" <<EOF
user root
listener $TPORT 127.0.0.1
cafile $T/ca.pem
certfile $T/srv.pem
keyfile $T/srv.key
allow_anonymous false
password_file $T/mosq.passwd
persistence false
max_queued_messages 100000
queue_qos0_messages true
EOF
mosquitto -c "$T/mosquitto-tls.conf" >>"$T/mosquitto-tls.log" 2>&1 &
BG+=("$!")
wait_for 10 port_open "$TPORT"
tsub() { mosquitto_sub -h 127.0.0.1 -p "$TPORT" --cafile "$T/ca.pem" -u alice -P 's:cret' -c -i "$1" -q 1 -t '#' "${@:2}"; }
tsub ts1 -E
expect_ok "$M" replay -d "$D" t -p 0 --to "mqtts://alice@127.0.0.1:$TPORT" --password-file "$T/alice.pw" \
    --cafile "$T/ca.pem" -n 5 --qos 0
grep -Eq "^mqlog: replayed 5 records of t to mqtts://127\.0\.0\.1:$TPORT in .*QoS 0, all sent \(QoS 0: not acknowledged\)$" \
    "$T/err" || fail "mqtts -n 5 -q 0 summary: $(cat "$T/err")"
tsub ts1 -C 5 -W 20 -F '%t %x' >"$T/got" || fail "collecting 5 messages over TLS: got $(wc -l <"$T/got")"
head -n 5 "$T/want0" | diff - "$T/got" || fail "mqtts -n 5 replayed the wrong records"
# credentials in the URL, ':' percent-encoded in the password; QoS 1 is acknowledged
expect_ok "$M" replay -d "$D" t -p 0 -n 2 --cafile "$T/ca.pem" --to "mqtts://alice:s%3Acret@127.0.0.1:$TPORT/"
grep -Eq "replayed 2 records of t to mqtts://127\.0\.0\.1:$TPORT in .*QoS 1, all acknowledged$" "$T/err" ||
    fail "mqtts with URL credentials: $(cat "$T/err")"
grep -q "s%3Acret\|s:cret" "$T/err" && fail "the password appeared in a message: $(cat "$T/err")"
expect_err 1 "mqtts://127\.0\.0\.1:$TPORT refused the connection: .*(not authori[sz]ed|bad user name or password)" \
    "$M" replay -d "$D" t -p 0 -n 1 --cafile "$T/ca.pem" --to "mqtts://127.0.0.1:$TPORT" --username alice \
    --password-file "$T/wrong.pw"
expect_err 1 "cannot connect to mqtts://127\.0\.0\.1:$TPORT" \
    "$M" replay -d "$D" t -p 0 -n 1 --to "mqtts://alice@127.0.0.1:$TPORT" --password-file "$T/alice.pw"
expect_err 1 "password_file $T/none.pw: no such file" \
    "$M" replay -d "$D" t --to "mqtts://alice@127.0.0.1:$TPORT" --password-file "$T/none.pw"
expect_err 2 "a password needs a user name" "$M" replay -d "$D" t --to "$URL" --password-file "$T/alice.pw"
expect_err 2 "--cafile, --cert and --key need an mqtts:// URL" "$M" replay -d "$D" t --to "$URL" --cafile "$T/ca.pem"
expect_err 2 "--cert and --key go together" "$M" replay -d "$D" t --to "$URL" --cert "$T/srv.pem"
expect_err 2 "bad user name or password before '@'" "$M" replay -d "$D" t --to "mqtt://:pw@127.0.0.1:1"

# ---- the broker goes away midway: exit 1 with how far it got ----
"$M" replay -d "$D" many --to "$URL" --rate 40 >"$T/lost.out" 2>"$T/lost.err" &
RP=$!
BG+=("$RP")
mosquitto_sub -h 127.0.0.1 -p "$PORT" -t many -C 3 -W 20 >/dev/null || fail "no message from the slow replay"
kill "$BROKER"
wait_for 20 not_running "$RP"
set +e
wait "$RP"
rc=$?
set -e
[[ $rc == 1 ]] || fail "replay exited $rc after the broker stopped: $(cat "$T/lost.err")"
[[ $(wc -l <"$T/lost.err") == 1 ]] || fail "connection loss: $(cat "$T/lost.err")"
grep -Eq "^mqlog: connection to mqtt://127\.0\.0\.1:$PORT lost after [0-9]+ of [0-9]+ published messages were acknowledged" \
    "$T/lost.err" || fail "connection loss message: $(cat "$T/lost.err")"
ok

echo "test_replay: all $CHECKS checks passed"
