#!/usr/bin/env bash
# test_package.sh BUILD_DIR SOURCE_DIR - the Debian package and the install rules (packaging/):
# - `cpack -G DEB` of the build tree makes mqlog_VERSION_ARCH.deb with the programs, the man pages, the
#   unit (as the system user mqlog), /var/lib/mqlog and the configuration as conffiles; lintian finds no
#   error (its warnings are printed); mandoc and man render every page without a warning.
# - The package installed with dpkg into a throwaway root: the host's /usr, /etc and /var under overlays
#   whose upper layers live on a tmpfs, in a mount namespace of its own (so the mounts vanish with the
#   test and nothing on the machine changes). There: postinst makes the user and the data directory and
#   enables the unit without starting it (no systemd runs there); the installed mqlogd --check passes on
#   the installed configuration as the mqlog user; a reinstall and an upgrade whose configuration changed
#   keep the operator's edit (--force-confold, as a non-interactive upgrade would) and the data; remove
#   keeps data and configuration, purge deletes both.
# - `cmake --install` into a scratch prefix twice: an edited configuration file is kept, the example
#   goes beside it as .example; the unit runs as a DynamicUser there.
set -euo pipefail
source "$(dirname "$0")/lib/lib.sh"

# ---- the root, inside its own mount namespace (the script runs itself there) ----
if [[ ${1:-} == --in-root ]]; then
    T=$2 deb=$3 upgrade=$4
    CHECKS=0
    trap 'echo "FAIL (test_package.sh:$LINENO): a command failed in the throwaway root" >&2' ERR
    fs=$T/fs R=$T/fs/root
    mount -t tmpfs -o size=1g,mode=0755 mqlog-package "$fs"
    mkdir -p "$R"
    overlay() { # overlay DIR: the host's /DIR, writable in the root, unchanged on the host
        mkdir -p "$fs/up/$1" "$fs/work/$1" "$R/$1"
        mount -t overlay overlay -o "lowerdir=/$1,upperdir=$fs/up/$1,workdir=$fs/work/$1" "$R/$1"
    }
    for d in usr etc var; do overlay $d; done
    for d in bin sbin lib lib32 lib64 libx32; do # merged /usr: links; else directories of their own
        if [[ -L /$d ]]; then ln -s "$(readlink "/$d")" "$R/$d"; elif [[ -d /$d ]]; then overlay $d; fi
    done
    mkdir -p "$R/dev" "$R/proc" "$R/run" "$R/root" "$R/tmp"
    chmod 1777 "$R/tmp"
    mount --bind /dev "$R/dev"
    mount -t proc proc "$R/proc" 2>/dev/null || mount --rbind /proc "$R/proc"
    # man-db's own switch (what containers set): its dpkg trigger would re-index every page of the host on
    # each install, the better part of a minute here.
    rm -f "$R/var/lib/man-db/auto-update"
    # Slim images tell dpkg to leave out man pages (path-exclude); this root must install them to check them.
    { grep -l '^path-exclude' "$R"/etc/dpkg/dpkg.cfg.d/* 2>/dev/null || true; } | xargs -r rm -f
    cp "$deb" "$R/tmp/mqlog.deb"
    cp "$upgrade" "$R/tmp/mqlog-upgrade.deb"
    # A clean environment; no /run/systemd/system, as in a container: the maintainer scripts must cope.
    inroot() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"; }
    as_mqlog() { chroot --userspec="$uid:$gid" "$R" /usr/bin/env -i PATH=/usr/bin:/bin LC_ALL=C.UTF-8 "$@"; }
    status() { inroot dpkg-query -W -f='${Status} ${Version}' mqlog 2>/dev/null || true; }
    conf=$R/etc/mqlog/mqlogd.yaml

    # On a host where the package was installed for real, the user exists already and postinst keeps it.
    run inroot dpkg -i /tmp/mqlog.deb
    [[ $rc == 0 ]] || fail "dpkg -i: $(cat "$T/out" "$T/err")"
    [[ $(status) == "install ok installed "* ]] || fail "after dpkg -i, mqlog is '$(status)'"
    pw=$(inroot getent passwd mqlog) || fail "postinst made no user mqlog"
    uid=$(cut -d: -f3 <<<"$pw") gid=$(cut -d: -f4 <<<"$pw")
    ((uid < 1000)) || fail "mqlog is not a system user: $pw"
    [[ $(inroot stat -c '%U:%G %a' /var/lib/mqlog) == "mqlog:mqlog 750" ]] ||
        fail "/var/lib/mqlog is $(inroot stat -c '%U:%G %a' /var/lib/mqlog), expected mqlog:mqlog 750"
    [[ -L $R/etc/systemd/system/multi-user.target.wants/mqlogd.service ]] || fail "postinst did not enable mqlogd.service"
    grep -qx 'User=mqlog' "$R/lib/systemd/system/mqlogd.service" || fail "the packaged unit does not run as mqlog"
    ! grep -q '^DynamicUser' "$R/lib/systemd/system/mqlogd.service" || fail "the packaged unit has DynamicUser"
    for page in man8/mqlogd.8.gz man1/mqlog.1.gz man5/mqlogd.yaml.5.gz; do
        [[ -f $R/usr/share/man/$page ]] || fail "no /usr/share/man/$page"
    done
    ok
    # The unit's ExecStartPre, as the user the unit runs as.
    run as_mqlog /usr/bin/mqlogd -c /etc/mqlog/mqlogd.yaml --check
    [[ $rc == 0 ]] || fail "the installed mqlogd --check fails on the installed configuration: $(cat "$T/err")"
    # Data written as the service's user, which every later step must keep.
    run as_mqlog /usr/bin/mqlog create -d /var/lib/mqlog pkgtest --partitions 1
    [[ $rc == 0 ]] || fail "mqlog create in /var/lib/mqlog as mqlog: $(cat "$T/err")"
    printf 'r1\nr2\n' | as_mqlog /usr/bin/mqlog produce -d /var/lib/mqlog pkgtest >/dev/null ||
        fail "mqlog produce in /var/lib/mqlog as mqlog failed"
    records() { as_mqlog /usr/bin/mqlog consume -d /var/lib/mqlog pkgtest --count 2>/dev/null || echo none; }
    [[ $(records) == 2 ]] || fail "the topic written as mqlog holds $(records) records, expected 2"
    ok

    # The operator edits the configuration; a reinstall keeps the edit.
    sed -i 's/^  flush_interval_ms: 5 /  flush_interval_ms: 7 /' "$conf"
    echo "# edited by the operator" >>"$conf"
    grep -q '^  flush_interval_ms: 7 ' "$conf" || fail "the example has no 'flush_interval_ms: 5' line to edit"
    run inroot dpkg -i --force-confold /tmp/mqlog.deb
    [[ $rc == 0 ]] || fail "reinstall: $(cat "$T/out" "$T/err")"
    grep -q '^# edited by the operator' "$conf" || fail "a reinstall lost the edit of mqlogd.yaml"
    ok
    # An upgrade whose packaged configuration changed: the edit stays, the new example is .dpkg-dist, an
    # unedited conffile is replaced, the data stays.
    run inroot dpkg -i --force-confold /tmp/mqlog-upgrade.deb
    [[ $rc == 0 ]] || fail "upgrade: $(cat "$T/out" "$T/err")"
    [[ $(status) == "install ok installed "*+upgrade1 ]] || fail "after the upgrade, mqlog is '$(status)'"
    grep -q '^# edited by the operator' "$conf" || fail "the upgrade lost the edit of mqlogd.yaml"
    grep -q '^  flush_interval_ms: 7 ' "$conf" || fail "the upgrade lost the edited value in mqlogd.yaml"
    grep -q '^# changed by the upgrade' "$conf.dpkg-dist" || fail "the upgrade left no mqlogd.yaml.dpkg-dist"
    grep -q '^# changed by the upgrade' "$R/etc/mqlog/mappings.d/example.yaml" ||
        fail "the upgrade did not replace the unedited mappings.d/example.yaml"
    run as_mqlog /usr/bin/mqlogd -c /etc/mqlog/mqlogd.yaml --check
    [[ $rc == 0 ]] || fail "--check fails on the edited configuration after the upgrade: $(cat "$T/err")"
    [[ $(records) == 2 ]] || fail "after the upgrade the topic holds $(records) records, expected 2"
    ok

    # remove keeps the configuration and the data; purge deletes both.
    run inroot dpkg -r mqlog
    [[ $rc == 0 ]] || fail "dpkg -r: $(cat "$T/out" "$T/err")"
    [[ ! -e $R/usr/bin/mqlogd ]] || fail "dpkg -r left /usr/bin/mqlogd"
    [[ -f $conf ]] || fail "dpkg -r removed the configuration"
    [[ -d $R/var/lib/mqlog/pkgtest-0 ]] || fail "dpkg -r removed the data in /var/lib/mqlog"
    [[ $(readlink "$R/etc/systemd/system/mqlogd.service") == /dev/null ]] || fail "postrm remove did not mask the unit"
    run inroot dpkg -P mqlog
    [[ $rc == 0 ]] || fail "dpkg -P: $(cat "$T/out" "$T/err")"
    [[ ! -e $R/var/lib/mqlog ]] || fail "dpkg -P left /var/lib/mqlog"
    [[ ! -e $conf && ! -e $conf.dpkg-dist ]] || fail "dpkg -P left /etc/mqlog/mqlogd.yaml"
    [[ ! -L $R/etc/systemd/system/mqlogd.service ]] || fail "dpkg -P left the unit masked"
    [[ ! -L $R/etc/systemd/system/multi-user.target.wants/mqlogd.service ]] || fail "dpkg -P left the unit enabled"
    [[ -z $(status) || $(status) == "unknown ok not-installed"* ]] || fail "after dpkg -P, mqlog is '$(status)'"
    ok
    echo "$CHECKS" >"$T/root_checks"
    exit 0
fi

build=${1:?usage: test_package.sh BUILD_DIR SOURCE_DIR} src=${2:?usage: test_package.sh BUILD_DIR SOURCE_DIR}
need cpack lintian mandoc man dpkg-deb unshare chroot
mq_setup package
t0=$SECONDS

# ---- the package ----
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
arch=$(dpkg --print-architecture)
deb=$T/pkg/mqlog_${version}_${arch}.deb
run cpack --config "$build/CPackConfig.cmake" -G DEB -B "$T/pkg"
[[ $rc == 0 ]] || fail "cpack: $(cat "$T/out" "$T/err")"
[[ -f $deb ]] || fail "cpack made no $deb: $(ls "$T/pkg")"
dpkg-deb -c "$deb" | awk '{print $6}' >"$T/files"
for f in ./usr/bin/mqlogd ./usr/bin/mqlog ./etc/mqlog/mqlogd.yaml ./etc/mqlog/mappings.d/example.yaml \
         ./lib/systemd/system/mqlogd.service ./var/lib/mqlog/ ./usr/share/man/man8/mqlogd.8.gz \
         ./usr/share/man/man1/mqlog.1.gz ./usr/share/man/man5/mqlogd.yaml.5.gz ./usr/share/doc/mqlog/copyright; do
    grep -qxF "$f" "$T/files" || fail "the package lacks $f"
done
dpkg-deb -e "$deb" "$T/control"
[[ $(sort "$T/control/conffiles") == $'/etc/mqlog/mappings.d/example.yaml\n/etc/mqlog/mqlogd.yaml' ]] ||
    fail "conffiles: $(cat "$T/control/conffiles")"
depends=$(dpkg-deb -f "$deb" Depends)
for d in adduser libc6 libsqlite3-0 librdkafka1; do # adduser by hand, the libraries by dpkg-shlibdeps
    [[ ", $depends," == *", $d "* || ", $depends," == *", $d,"* ]] || fail "Depends lacks $d: $depends"
done
ok
t_build=$((SECONDS - t0))

# lintian: no error; the warnings are shown (and infos with -I would be: hardening flags, .comment).
run lintian --fail-on error --tag-display-limit 0 "$deb"
grep -E '^[EW]: ' "$T/out" | sed 's/^/lintian: /' || true
[[ $rc == 0 ]] || fail "lintian finds errors: $(cat "$T/out" "$T/err")"
ok
t_lintian=$((SECONDS - t0 - t_build))

# The man pages render without a warning, and say what the programs and the key table say.
dpkg-deb -x "$deb" "$T/x"
for page in "$T"/x/usr/share/man/man*/*.gz; do
    out=$(mandoc -T lint -W warning "$page" 2>&1) || [[ -z $out ]] || fail "mandoc -T lint ${page##*/}: $out"
    [[ -z $out ]] || fail "mandoc -T lint ${page##*/}: $out"
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null) || true
    [[ -z $out ]] || fail "man --warnings ${page##*/}: $out"
done
render() { LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$T/x/usr/share/man/$1" 2>/dev/null; }
render man8/mqlogd.8.gz >"$T/mqlogd.txt"
for opt in --config --check --log-level SIGHUP 'EXIT STATUS' /etc/mqlog/mqlogd.yaml; do
    grep -qe "$opt" "$T/mqlogd.txt" || fail "mqlogd(8) does not mention $opt"
done
render man1/mqlog.1.gz >"$T/mqlog.txt"
commands=$("$build/gateway/mqlog" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
for c in $commands; do
    grep -qE "^   mqlog $c\$" "$T/mqlog.txt" || fail "mqlog(1) has no section for 'mqlog $c'"
done
render man5/mqlogd.yaml.5.gz >"$T/conf.txt"
for key in $(grep -oE '^\| `[a-z_]+` \|' "$src/docs/configuration.md" | tr -d '|` ' | sort -u); do
    grep -qw -- "$key" "$T/conf.txt" || fail "mqlogd.yaml(5) does not mention the key $key"
done
ok

# ---- dpkg into a throwaway root ----
# The upgrade: the same package as a later version whose packaged configuration changed.
dpkg-deb -R "$deb" "$T/up"
echo "# changed by the upgrade" >>"$T/up/etc/mqlog/mqlogd.yaml"
echo "# changed by the upgrade" >>"$T/up/etc/mqlog/mappings.d/example.yaml"
sed -i "s/^Version: .*/Version: ${version}+upgrade1/" "$T/up/DEBIAN/control"
(cd "$T/up" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
dpkg-deb --root-owner-group -b "$T/up" "$T/mqlog-upgrade.deb" >/dev/null
mkdir -p "$T/fs"
t1=$SECONDS
unshare --mount --propagation private bash "$0" --in-root "$T" "$deb" "$T/mqlog-upgrade.deb" ||
    fail "the install into a throwaway root failed (above)"
CHECKS=$((CHECKS + $(cat "$T/root_checks")))
t_root=$((SECONDS - t1))

# ---- cmake --install: an edited configuration is kept ----
inst=$T/inst
expect_ok cmake --install "$build" --prefix "$inst"
[[ -f $inst/etc/mqlog/mqlogd.yaml && ! -e $inst/etc/mqlog/mqlogd.yaml.example ]] ||
    fail "a first cmake --install did not install etc/mqlog/mqlogd.yaml alone: $(ls "$inst/etc/mqlog")"
grep -qx 'DynamicUser=yes' "$inst/lib/systemd/system/mqlogd.service" || fail "the source install's unit has no DynamicUser"
grep -qx "ExecStart=$inst/bin/mqlogd -c $inst/etc/mqlog/mqlogd.yaml" "$inst/lib/systemd/system/mqlogd.service" ||
    fail "the source install's unit does not name its programs and configuration"
[[ -f $inst/share/man/man8/mqlogd.8.gz ]] || fail "cmake --install put no man page in share/man"
echo "# edited by the operator" >>"$inst/etc/mqlog/mqlogd.yaml"
expect_ok cmake --install "$build" --prefix "$inst"
grep -q '^# edited by the operator' "$inst/etc/mqlog/mqlogd.yaml" || fail "cmake --install overwrote an edited configuration"
cmp -s "$src/conf/mqlogd.yaml" "$inst/etc/mqlog/mqlogd.yaml.example" || fail "no mqlogd.yaml.example beside the edited file"
grep -q "Kept: .*mqlogd.yaml" "$T/out" || fail "cmake --install did not say it kept the edited file"
[[ ! -e $inst/etc/mqlog/mappings.d/example.yaml.example ]] || fail "an unedited file got an .example beside it"
ok

echo "PASS: $CHECKS checks: $(basename "$deb") (cpack ${t_build} s, lintian ${t_lintian} s), its man pages," \
     "dpkg install, reinstall, upgrade, remove and purge in a throwaway root (${t_root} s), cmake --install keeps edits"
