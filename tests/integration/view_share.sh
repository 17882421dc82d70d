#!/bin/bash
# view_share: `vaultfs mount --allow-other` is safe to share. An
# unprivileged user (nobody, through setpriv) is denied the archive, the
# status file and the listing of archive/ under the default modes (files
# 0640 or less, directories 0750, owned by the mounting user); --uid, --gid
# and --umask open it up (and the control files stay the owner's).
# archive/BUCKET shows only the way to the configured prefix, and refuses
# writes outside it, unless --whole-bucket. Two creates of one new name
# while both are open: exactly one wins, the other gets EEXIST; and an
# object another client made while our file was open is not overwritten
# (If-None-Match: * on the PutObject): the close fails with EEXIST.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
need_tools setpriv
test_timeout 300

# nobody must be able to reach the mount point itself
chmod 711 "$T"
V=$T/vault
M=$T/mnt
mkdir -p "$V" "$M"
chmod 755 "$M"
make_bucket B
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/backups\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoStart\": false
}"
mkdir -p "$V/snap-1"
echo payload >"$V/snap-1/f"
echo "archived bytes" >"$T/obj"
aws_ s3 cp --only-show-errors "$T/obj" "s3://$B/backups/host1/a.tar.gz" || die "seed a.tar.gz"
aws_ s3 cp --only-show-errors "$T/obj" "s3://$B/elsewhere/x" || die "seed elsewhere/x"

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
mode_of() { stat -c %a "$1" || die "stat $1"; }

# --- default modes: the mounting user's, nobody is denied ----------------------
mount_view "$M" "$T/cfg.json" --allow-other
A=$M/archive/$B
cmp -s "$T/obj" "$A/backups/host1/a.tar.gz" || die "root cannot read the archive"
[ "$(mode_of "$M")" = 550 ] || die "the mount's root is $(mode_of "$M"), not 550"
[ "$(mode_of "$A/backups")" = 750 ] || die "an archive directory is $(mode_of "$A/backups"), not 750"
[ "$(mode_of "$A/backups/host1/a.tar.gz")" = 440 ] || die "an archive is $(mode_of "$A/backups/host1/a.tar.gz"), not 440"
[ "$(mode_of "$M/status")" = 440 ] || die "status is $(mode_of "$M/status"), not 440"
[ "$(mode_of "$M/vaults/prod/snap-1/export")" = 640 ] || die "export is $(mode_of "$M/vaults/prod/snap-1/export"), not 640"
[ "$(stat -c %u:%g "$A/backups/host1/a.tar.gz")" = "$(id -u):$(id -g)" ] || die "not owned by the mounting user"
if as_nobody cat "$A/backups/host1/a.tar.gz" >/dev/null 2>"$T/deny.err"; then
	die "nobody read an archive under --allow-other with the default modes"
fi
expect_grep "Permission denied" "$T/deny.err"
if as_nobody ls "$M/archive" >/dev/null 2>"$T/deny.err"; then
	die "nobody listed archive/ under --allow-other with the default modes"
fi
expect_grep "Permission denied" "$T/deny.err"
if as_nobody cat "$M/status" >/dev/null 2>&1; then
	die "nobody read the status file under the default modes"
fi
log "--allow-other: 0440/0640 files, 0550/0750 directories, nobody is denied"

# --- archive/BUCKET: the prefix only ---------------------------------------------
[ "$(ls "$A")" = backups ] || die "archive/$B shows '$(ls "$A" | tr '\n' ' ')', not only backups"
[ ! -e "$A/elsewhere" ] || die "elsewhere/ (outside the prefix) is shown"
if echo x 2>"$T/out.err" >"$A/top"; then
	die "a write outside the prefix went through"
fi
expect_grep "Permission denied" "$T/out.err"
aws_ s3api head-object --bucket "$B" --key top >/dev/null 2>&1 && die "s3://$B/top was written"
log "archive/$B shows only backups/; a write outside it is EACCES"

# --- two creates of one new name: one wins, the other gets EEXIST --------------
python3 - "$A/backups/new.tar.gz" <<'PY' || die "concurrent creates"
import errno, os, sys
p = sys.argv[1]
a = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    b = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
except OSError as e:
    if e.errno != errno.EEXIST:
        sys.exit("the second create failed with %s, not EEXIST" % os.strerror(e.errno))
else:
    sys.exit("the second create of one name succeeded while the first was open")
os.write(a, b"the winner\n")
os.close(a)
PY
[ "$(aws_ s3 cp "s3://$B/backups/new.tar.gz" -)" = "the winner" ] || die "new.tar.gz is not the winner's"
log "two creates of one name: the second got EEXIST, the first's object is there"

# --- another client made the object while ours was open: not overwritten -------
# (the writer forks nothing while it holds the file: a child's copy of the
# descriptor, closed at exec, would end the object there and then)
python3 - "$A/backups/race.tar.gz" "$T/opened" "$T/go" >"$T/race.out" 2>&1 <<'PY' &
import errno, os, sys, time
p, opened, go = sys.argv[1:4]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"from the mount\n")
open(opened, "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
try:
    os.close(fd)
except OSError as e:
    if e.errno != errno.EEXIST:
        sys.exit("the close failed with %s, not EEXIST" % os.strerror(e.errno))
else:
    sys.exit("the close replaced an object another client made meanwhile")
PY
RACE=$!
wait_for 30 test -e "$T/opened"
echo "from another client" | aws_ s3 cp --only-show-errors - "s3://$B/backups/race.tar.gz" ||
	die "another client cannot write race.tar.gz"
touch "$T/go"
wait $RACE || { cat "$T/race.out" >&2; die "If-None-Match"; }
[ "$(aws_ s3 cp "s3://$B/backups/race.tar.gz" -)" = "from another client" ] ||
	die "race.tar.gz was overwritten"
no_multipart_uploads "$B"
log "an object made meanwhile by another client is kept: the close is EEXIST"
unmount_view

# --- --uid/--gid/--umask open it up; control files stay the owner's ------------
mount_view "$M" "$T/cfg.json" --allow-other --umask 022 --gid 65534
as_nobody cat "$A/backups/host1/a.tar.gz" >"$T/nobody.out" || die "nobody cannot read with --umask 022"
cmp -s "$T/obj" "$T/nobody.out" || die "nobody read other bytes"
as_nobody ls "$A/backups" >"$T/ls.out" || die "nobody cannot list with --umask 022"
expect_grep "^host1$" "$T/ls.out"
as_nobody cat "$M/status" >/dev/null || die "nobody cannot read status with --umask 022"
[ "$(stat -c %g "$A/backups")" = 65534 ] || die "--gid 65534 is not shown"
if as_nobody touch "$M/vaults/prod/snap-1/export" 2>"$T/ctl.err"; then
	die "nobody touched a control file"
fi
expect_grep "Permission denied" "$T/ctl.err"
if as_nobody sh -c "echo x >'$A/backups/nobody.tar.gz'" 2>"$T/w.err"; then
	die "nobody wrote into the archive (a 0755 directory of root)"
fi
[ "$(rp_state "$M" prod snap-1)" = new ] || die "a job was queued"
unmount_view
mount_view "$M" "$T/cfg.json" --allow-other --uid 65534 --umask 077
[ "$(stat -c %u "$A/backups")" = 65534 ] || die "--uid 65534 is not shown"
[ "$(mode_of "$A/backups")" = 700 ] || die "--umask 077: a directory is $(mode_of "$A/backups")"
as_nobody cat "$A/backups/host1/a.tar.gz" >/dev/null || die "nobody, the owner by --uid, cannot read"
log "--umask 022 lets nobody read and list (not write, not export); --uid makes nobody the owner"
unmount_view

# --- --whole-bucket ---------------------------------------------------------------
mount_view "$M" "$T/cfg.json" --whole-bucket
ls "$A" >"$T/whole.out"
expect_grep "^elsewhere$" "$T/whole.out"
expect_grep "^backups$" "$T/whole.out"
cmp -s "$T/obj" "$A/elsewhere/x" || die "elsewhere/x unreadable with --whole-bucket"
unmount_view
log "--whole-bucket shows the rest of the bucket"
