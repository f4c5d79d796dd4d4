#!/usr/bin/env bash
# test_flags.sh - the flag audit of issue 15: every `mqlog COMMAND --help` (and `mqlogd --help`) is parsed
# for its "-X, --long" lines, and a short flag must mean the same long option in every command that has it
# (so -p is always --partition, -n always --limit). Also checks that every short flag a help text shows is
# accepted by the command (a usage error names the option, not "unknown option").
#
# usage: test_flags.sh PATH_TO_MQLOG PATH_TO_MQLOGD
set -euo pipefail

M=${1:?usage: test_flags.sh PATH_TO_MQLOG PATH_TO_MQLOGD}
MD=${2:?usage: test_flags.sh PATH_TO_MQLOG PATH_TO_MQLOGD}
source "$(dirname "$0")/lib/lib.sh"
need_exe "$M"
need_exe "$MD"
mq_setup flags

commands=$("$M" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[[ $(wc -w <<<"$commands") -ge 10 ]] || fail "mqlog --help lists too few commands: $commands"
: >"$T/pairs"
for cmd in $commands "groups reset" mqlogd; do
    if [[ $cmd == mqlogd ]]; then
        "$MD" --help >"$T/help" 2>&1 || fail "mqlogd --help exited $?"
    else
        # shellcheck disable=SC2086
        "$M" $cmd --help >"$T/help" 2>&1 || fail "mqlog $cmd --help exited $?"
    fi
    # "  -p, --partition N   ..." -> "p partition <cmd>"
    sed -nE 's/^ +-([A-Za-z]), --([a-z][a-z-]*).*/\1 \2/p' "$T/help" | while read -r s l; do
        echo "$s $l ${cmd// /-}"
    done >>"$T/pairs"
done
[[ $(wc -l <"$T/pairs") -ge 40 ]] || fail "only $(wc -l <"$T/pairs") short flags found in the help texts"
ok

# one long name per short flag, across every command (case matters: -p and -P differ)
bad=$(awk '{ if (($1 in long) && long[$1] != $2) print "-" $1 ": --" long[$1] " (" cmd[$1] ") and --" $2 " (" $3 ")";
             else if (!($1 in long)) { long[$1] = $2; cmd[$1] = $3 } }' "$T/pairs")
[[ -z $bad ]] || fail "a short flag means different things: $bad"
ok

# and one short flag per long name (so --partition is -p everywhere it has a short form)
bad=$(awk '{ if (($2 in short) && short[$2] != $1) print "--" $2 ": -" short[$2] " (" cmd[$2] ") and -" $1 " (" $3 ")";
             else if (!($2 in short)) { short[$2] = $1; cmd[$2] = $3 } }' "$T/pairs")
[[ -z $bad ]] || fail "a long option has different short flags: $bad"
ok

# every short flag shown is one the command accepts
while read -r s l cmd; do
    [[ $cmd == mqlogd || $s == h ]] && continue
    run "$M" ${cmd//-/ } "-$s"
    ! grep -q "unknown option -$s" "$T/err" || fail "mqlog ${cmd//-/ } --help shows -$s, which it refuses"
done <"$T/pairs"
ok

echo "test_flags: all $CHECKS checks passed; $(wc -l <"$T/pairs") short flags in $(wc -w <<<"$commands") commands agree"
