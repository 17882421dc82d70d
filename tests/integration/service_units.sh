#!/bin/bash
# service_units: contrib/systemd's unit files pass `systemd-analyze
# verify` (directives, values, the instance's %f), with ExecStart pointed
# at the binary under test (the units name the installed path) and the
# man: documentation link left out (the man page may not be installed on
# the machine that runs the tests).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"

need_tools systemd-analyze # package systemd, which scripts/setup installs
U=$VAULTFS_SRC/contrib/systemd
mkdir -p "$T/units"
for f in "$U/vaultfs.service" "$U/vaultfs-mount@.service"; do
	grep -q '^Type=notify$' "$f" || die "$f: not Type=notify"
	grep -q '^WatchdogSec=' "$f" || die "$f: no WatchdogSec"
	grep -q '^DeviceAllow=/dev/fuse rw$' "$f" || die "$f: /dev/fuse not allowed"
	grep -q '^DeviceAllow=block-loop rw$' "$f" || die "$f: loop devices not allowed"
	sed -e "s|/usr/local/bin/vaultfs|$VAULTFS|" -e '/^Documentation=man:/d' \
		"$f" >"$T/units/$(basename "$f")"
done
cp "$T/units/vaultfs-mount@.service" "$T/units/vaultfs-mount@srv-vaultfs.service"
for u in vaultfs.service vaultfs-mount@srv-vaultfs.service; do
	systemd-analyze verify --man=no "$T/units/$u" >"$T/$u.out" 2>&1 || {
		cat "$T/$u.out" >&2
		die "systemd-analyze verify $u failed"
	}
	# verify exits 0 on some warnings: none is expected
	if [ -s "$T/$u.out" ]; then
		cat "$T/$u.out" >&2
		die "systemd-analyze verify $u warned"
	fi
	log "$u verified"
done
