#!/usr/bin/env bash
# test_systemd_unit.sh UNIT MQLOGD CONFIG - the unit file the build generates passes `systemd-analyze
# verify` (syntax, known directives, executables), pointed at the built mqlogd and the example
# configuration instead of the install paths, and its ExecStartPre check passes on that configuration.
set -euo pipefail
unit=$1 mqlogd=$2 conf=$3
source "$(dirname "$0")/lib/lib.sh"
need systemd-analyze
mq_setup systemd-unit
bin=$(grep -o '^ExecStart=[^ ]*' "$unit" | cut -d= -f2)
cfg=$(grep -o '^ExecStart=[^ ]* -c [^ ]*' "$unit" | awk '{print $3}')
[ -n "$bin" ] && [ -n "$cfg" ] || fail "no ExecStart=BIN -c CONFIG in $unit"
sed "s|$bin|$mqlogd|g; s|$cfg|$conf|g" "$unit" > "$T/mqlogd.service"
for key in Type=notify StateDirectory=mqlog NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
           PrivateTmp=yes Restart=on-failure WatchdogSec=30s 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$key" "$T/mqlogd.service" || fail "$unit lacks $key"
done
# --man=no: the man pages the unit names are installed with it, not in the build tree
out=$(systemd-analyze verify --man=no "$T/mqlogd.service" 2>&1) || fail "systemd-analyze verify:"$'\n'"$out"
[ -z "$out" ] || fail "systemd-analyze verify warns:"$'\n'"$out"
pre=$(grep '^ExecStartPre=' "$T/mqlogd.service" | cut -d= -f2-)
$pre >/dev/null || fail "ExecStartPre ($pre) fails"
echo "PASS: $unit verifies (Type=notify, hardening, reload by SIGHUP); its --check passes on $conf"
