# lib.sh - what the shell integration tests (test_tool.sh, test_replay.sh, test_systemd_unit.sh) share,
# sourced after `set -euo pipefail`: a temporary directory removed at exit with the background processes
# the test started, failing with the line that failed, running a command with its output captured, the
# expectations on mqlog's exit status and one-line errors (each one clean sentence), a deadline wait, and free
# loopback ports.
#
# mq_setup NAME sets T (the temporary directory), D (T/data), BG (pids to kill at exit: append to it),
# CHECKS (counted by ok) and the EXIT trap.

# need TOOL...: fails unless every TOOL is on PATH.
need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed (scripts/setup installs it)" >&2; exit 1; }
    done
}

# need_exe PATH: fails unless PATH is an executable (the built program under test).
need_exe() {
    [[ -x $1 ]] || { echo "FAIL: $1 is not an executable" >&2; exit 1; }
}

mq_cleanup() {
    local p
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}

mq_setup() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/mqlog-$1.XXXXXX")
    D=$T/data
    BG=()
    CHECKS=0
    trap mq_cleanup EXIT
}

# fail MESSAGE: ends the test; says where, as the call chain from this file's callers out to the script.
fail() {
    local where="" i
    for ((i = 0; i < ${#BASH_LINENO[@]} - 1; i++)); do
        where+="${where:+ < }${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]}"
    done
    echo "FAIL ($where): $*" >&2
    exit 1
}
ok() { CHECKS=$((CHECKS + 1)); }

# run CMD...: runs a command with its stdout in $T/out and its stderr in $T/err, exit status in $rc.
run() {
    set +e
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    set -e
}

# expect_ok CMD...: the command must exit 0 (output in $T/out).
expect_ok() {
    run "$@"
    [[ $rc == 0 ]] || fail "'$*' exited $rc: $(cat "$T/err")"
    ok
}

# clean_sentence LINE: fails unless mqlog's error line is one clean sentence (issue 15), as
# scripts/check-messages asks of the sources, here with the libraries' strings and the operands filled in:
# no period glued to more punctuation or ending the line, no second sentence, no ordinary capitalised word
# after ": " or "; " (names such as Kafka or SQLite are fine).
clean_sentence() {
    local msg=${1#mqlog: }
    msg=${msg% (try \'mqlog*--help\')}
    local why=""
    if grep -Eq '\.[;:,]' <<<"${msg//.../}"; then
        why="a period glued to more punctuation"
    elif grep -Eq '[^.]\.$' <<<"$msg"; then
        why="it ends with a period"
    elif grep -Eq '[a-z]\. +[A-Za-z]' <<<"$msg" && ! grep -Eq '(e\.g|i\.e)\. ' <<<"$msg"; then
        why="two sentences"
    elif grep -Eo '[:;] [A-Z][a-z]+\b' <<<"$msg" |
        grep -Evq '^[:;] (Kafka|Paho|SQLite|OpenSSL|User|Metadata)$'; then
        why="a capitalised word inside the sentence"
    fi
    [[ -z $why ]] || fail "not one clean sentence ($why): $1"
}

# expect_err STATUS PATTERN CMD...: the command must exit with STATUS and print exactly one line on stderr,
# starting "mqlog: ", matching the extended regex PATTERN and one clean sentence, and nothing on stdout.
expect_err() {
    local want=$1 pat=$2
    shift 2
    run "$@"
    [[ $rc == "$want" ]] || fail "'$*' exited $rc, expected $want; stderr: $(cat "$T/err")"
    [[ $(wc -l <"$T/err") == 1 ]] || fail "'$*' printed more than one error line: $(cat "$T/err")"
    grep -Eq "^mqlog: .*$pat" "$T/err" || fail "'$*': stderr '$(cat "$T/err")' does not match '$pat'"
    clean_sentence "$(cat "$T/err")"
    [[ ! -s $T/out ]] || fail "'$*' printed on stdout: $(cat "$T/out")"
    ok
}

# wait_for SECONDS CMD...: polls CMD every 20 ms until it succeeds; fails the test at the deadline.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || fail "timed out waiting for: $*"
        sleep 0.02 # poll interval of this deadline wait
    done
}

not_running() { ! kill -0 "$1" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port_open() { python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; }
