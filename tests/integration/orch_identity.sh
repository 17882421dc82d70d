#!/bin/bash
# orch_identity: a job archives and deletes the recovery point that was
# queued, and nothing else.
#   - an image swapped for a symlink to a block device (a loop device the
#     test makes) while its job waits at "archiving" (after the scan, the
#     open and the checks before it): the job fails saying the recovery
#     point changed, nothing of the device is archived, nothing is deleted;
#   - a FIFO as a sidecar: a clear error for that recovery point, no hang;
#   - an image replaced (same name, size, mtime and bytes; a new inode)
#     while its job waits at "cleaning", between the verified archive and
#     the delete: the snapshot is kept, and the job says why.
# The moments are chosen with VAULTFS_TEST_PAUSE_AT (docs/orchestrator.md).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_loop
need_fs ext4
need_tools losetup mkfifo

# setup NAME: a vault with one ext4 image, a local store, autoDeleteSnapshot
setup() {
	local name=$1
	mkdir -p "$T/$name/vault" "$T/src/$name"
	echo "the recovery point $name" >"$T/src/$name/rp.txt"
	make_ext4 "$T/$name/vault/disk.img" "$T/src/$name" 4M
	write_config "$T/$name.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/$name/vault\" } ],
  \"destination\": \"$T/$name/store\", \"stateDir\": \"$T/$name/state\",
  \"autoDeleteSnapshot\": true }"
}

# run_paused NAME STAGE: `run --once` in the background, paused at STAGE;
# returns once the job says it is paused (the pid in RPID). The pause
# lasts until `go_on NAME STAGE` (at most 20 s).
run_paused() {
	: >"$T/$1.out"
	: >"$T/$1.err"
	VAULTFS_TEST_PAUSE_AT=$2:20 VAULTFS_LOG=info vf run --config "$T/$1.json" --once \
		>"$T/$1.out" 2>"$T/$1.err" &
	RPID=$!
	on_exit "kill -KILL $RPID 2>/dev/null; wait $RPID"
	wait_line "$T/$1.err" "test: job .* paused at $2" 60
}

# go_on NAME STAGE: the test is done with the paused job: it goes on
go_on() { touch "$T/$1/state/continue-$2"; }

# wait_run NAME: the exit status of the background run, checked for
# timeouts and sanitizer reports
wait_run() {
	local rc=0
	wait "$RPID" || rc=$?
	if grep -qE 'Sanitizer|runtime error:' "$T/$1.err"; then
		cat "$T/$1.err" >&2
		die "sanitizer report: $1"
	fi
	[ "$rc" -lt 124 ] || { tail -n 30 "$T/$1.err" >&2; die "$1: exit $rc (timeout, crash or signal)"; }
	RUN_RC=$rc
}

# --- swapped for a symlink to a block device between scan and archive -------
setup swap
mkdir -p "$T/src/device"
echo "DEVICE-CONTENT-NOT-TO-BE-ARCHIVED" >"$T/src/device/secret.txt"
make_ext4 "$T/device.img" "$T/src/device" 4M
LOOPDEV=$(losetup -f --show -r "$T/device.img") || die "cannot attach $T/device.img"
on_exit "losetup -d $LOOPDEV"
orig_sha=$(image_sum "$T/swap/vault/disk.img")

run_paused swap archiving
mv "$T/swap/vault/disk.img" "$T/swap/original.img"
ln -s "$LOOPDEV" "$T/swap/vault/disk.img"
log "swapped disk.img for a symlink to $LOOPDEV while the job waits at archiving"
go_on swap archiving
wait_run swap
[ "$RUN_RC" != 0 ] || { cat "$T/swap.out" >&2; die "swap: run --once exited 0: the job did not fail"; }
expect_grep '^failed +v/disk.img: recovery point .*/disk.img changed since it was opened: it is now a symlink' "$T/swap.out"
[ -z "$(find "$T/swap/store" -type f 2>/dev/null)" ] ||
	{ find "$T/swap/store" -type f >&2; die "swap: something was archived"; }
! grep -rq DEVICE-CONTENT "$T/swap/store" 2>/dev/null || die "swap: the device's content was archived"
! grep -qw "$LOOPDEV" "$T/swap.err" || die "swap: vaultfs touched $LOOPDEV"
[ -L "$T/swap/vault/disk.img" ] || die "swap: the symlink was deleted"
[ "$(image_sum "$T/swap/original.img")" = "$orig_sha" ] || die "swap: the original image changed"
[ "$(jstate "$T/swap/state" 'j["state"]' 'j.get("snapshotDeleted", False)')" = "failed	False" ] ||
	die "swap: the journal does not say failed, not deleted"
jstate "$T/swap/state" 'sorted(j["recoveryPoint"]["identity"])' |
	grep -qx "\['ctimeNs', 'dev', 'ino', 'mtimeNs', 'size'\]" ||
	die "swap: the journal does not record the recovery point's identity"
assert_released "$T/swap"
log "a recovery point swapped for a symlink to a block device: the job failed, nothing archived or deleted"

# --- a FIFO as sidecar ------------------------------------------------------
setup fifo
mkfifo "$T/fifo/vault/disk.img.json"
VAULTFS_LOG=info vf_run_fails --config "$T/fifo.json" --once
expect_grep '^failed +v/disk.img: sidecar disk.img.json: not a regular file \(a FIFO\)' "$RUN_OUT"
[ -f "$T/fifo/vault/disk.img" ] && [ -p "$T/fifo/vault/disk.img.json" ] ||
	die "fifo: the recovery point or its sidecar was deleted"
log "a FIFO as sidecar: a clear error, no hang"

# --- replaced between the archive and the delete -------------------------------
setup repl
run_paused repl cleaning
cp "$T/repl/vault/disk.img" "$T/repl/new.img"
touch -r "$T/repl/vault/disk.img" "$T/repl/new.img"
old_ino=$(stat -c %i "$T/repl/vault/disk.img")
mv "$T/repl/new.img" "$T/repl/vault/disk.img"
new_ino=$(stat -c %i "$T/repl/vault/disk.img")
[ "$old_ino" != "$new_ino" ] || die "repl: the copy has the same inode"
log "replaced disk.img (inode $old_ino -> $new_ino, same size, mtime and bytes) while the job waits at cleaning"
go_on repl cleaning
wait_run repl
[ "$RUN_RC" = 0 ] || { cat "$T/repl.out" "$T/repl.err" >&2; die "repl: run --once failed"; }
expect_grep '^succeeded v/disk.img' "$T/repl.out"
expect_grep 'note: snapshot kept: .*disk.img changed since it was archived' "$T/repl.out"
! grep -q 'snapshot deleted' "$T/repl.out" || die "repl: a snapshot was deleted"
[ -f "$T/repl/vault/disk.img" ] || die "repl: the new image was deleted"
[ "$(stat -c %i "$T/repl/vault/disk.img")" = "$new_ino" ] || die "repl: disk.img is not the new file"
[ -z "$(ls -A "$T/repl/vault" | grep '^\.vaultfs-delete' || true)" ] || die "repl: a hidden name was left"
[ "$(jstate "$T/repl/state" 'j["state"]' 'j.get("snapshotDeleted", False)')" = "succeeded	False" ] ||
	die "repl: the journal does not say succeeded, not deleted"
log "a recovery point replaced between archive and delete: kept, and the job says so"
