#!/usr/bin/env bash
# test_systemd_unit.sh UNIT MQLOGD CONFIG - the unit file the build generates passes `systemd-analyze
# verify` (syntax, known directives, executables), pointed at the built mqlogd and the example
# configuration instead of the install paths, and its ExecStartPre check passes on that configuration.
set -euo pipefail
unit=$1 mqlogd=$2 conf=$3
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze is missing (scripts/setup installs systemd)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$(grep -o '^ExecStart=[^ ]*' "$unit" | cut -d= -f2)
cfg=$(grep -o '^ExecStart=[^ ]* -c [^ ]*' "$unit" | awk '{print $3}')
[ -n "$bin" ] && [ -n "$cfg" ] || { echo "FAIL: no ExecStart=BIN -c CONFIG in $unit"; exit 1; }
sed "s|$bin|$mqlogd|g; s|$cfg|$conf|g" "$unit" > "$work/mqlogd.service"
for key in Type=notify StateDirectory=mqlog NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
           PrivateTmp=yes Restart=on-failure 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$key" "$work/mqlogd.service" || { echo "FAIL: $unit lacks $key"; exit 1; }
done
out=$(systemd-analyze verify "$work/mqlogd.service" 2>&1) || { echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "FAIL: systemd-analyze verify warns:"; echo "$out"; exit 1; fi
pre=$(grep '^ExecStartPre=' "$work/mqlogd.service" | cut -d= -f2-)
$pre >/dev/null || { echo "FAIL: ExecStartPre ($pre) fails"; exit 1; }
echo "PASS: $unit verifies (Type=notify, hardening, reload by SIGHUP); its --check passes on $conf"
