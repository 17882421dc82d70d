#!/bin/bash
# view_recovery: kill -9 of `vaultfs mount` while a job holds a loop device
# and a multipart upload, and while dd streams a file into archive/ (its own
# multipart upload). The dead mount answers ENOTCONN; `vaultfs mount` on the
# same point clears it and mounts; the journal brings the job to success;
# the view's crash record aborts the dd's upload; nothing is left attached,
# mounted or uploading. Then a second kill -9 of an idle mount, and a clean
# SIGTERM.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
need_loop
need_fs ext4
test_timeout 450

V=$T/vault
M=$T/mnt
mkdir -p "$V" "$T/src/big"
# random data that does not compress: an archive of several 8 MiB parts
head -c 24M /dev/urandom >"$T/src/big/data.bin"
make_ext4 "$V/big.img" "$T/src/big" 48M

make_bucket B
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/archive\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoStart\": true
}"

uploads() {
	aws_ s3api list-multipart-uploads --bucket "$B" --query 'Uploads[].Key' --output text
}
# has_upload REGEX: a multipart upload of a key matching REGEX is in progress
has_upload() { uploads | tr '\t' '\n' | grep -qE "$1"; }

# the job stops for a minute once its multipart upload exists
VAULTFS_TEST_PAUSE_AT=uploading:60 mount_view "$M" "$T/cfg.json" --whole-bucket --verbose
wait_for 120 sh -c "grep -q '^state: archiving' '$M/vaults/prod/big.img/status'"
# and dd streams 20 MiB into archive/, then waits for more (fd 4 stays
# open on its input)
mkfifo "$T/feed"
dd if="$T/feed" of="$M/archive/$B/partial" bs=1M iflag=fullblock status=none 2>/dev/null &
DD=$!
on_exit "kill $DD"
exec 4>"$T/feed"
head -c 20M /dev/urandom >&4
wait_for 60 has_upload 'partial'
wait_for 60 has_upload 'backup\.tar\.gz'
[ -n "$(leaks "$V")" ] || die "no loop device while the job runs"
[ -n "$(ls "$T/state/view/uploads")" ] || die "no crash record of the dd's upload"
log "in flight: $(uploads | tr '\t' ' '); $(leaks "$V" | head -n 1)"

# --- kill -9 ---------------------------------------------------------------
kill -KILL "$MPID"
wait "$MPID" 2>/dev/null || true
MPID=
kill "$DD" 2>/dev/null || true
wait "$DD" 2>/dev/null || true
exec 4>&-
err=$(stat "$M" 2>&1) && die "stat of the dead mount succeeded"
case $err in *"Transport endpoint is not connected"*) ;; *) die "stat: $err" ;; esac
log "the dead mount: $err"

# --- mount again: the stale mount is cleared, the journal recovers -----------
mount_view "$M" "$T/cfg.json" --whole-bucket --verbose
expect_grep 'stale mount' "$MERR"
expect_grep "aborted the upload of s3://$B/partial" "$MERR"
[ "$(ls "$M/vaults/prod")" = big.img ] || die "ls after the remount: $(ls "$M/vaults/prod")"
wait_for 180 sh -c "grep -q '^state: succeeded' '$M/vaults/prod/big.img/status'"
cat "$M/vaults/prod/big.img/status" >"$T/st.out"
expect_grep '^attempts: 2$' "$T/st.out"
key=$(sed -n "s#^result: s3://$B/##p" "$T/st.out")
check_s3_archive "$B" "$key"
extract_compare "$CHECKED_OBJ" "$T/src/big"
object_absent "$B" partial
[ ! -e "$M/archive/$B/partial" ] || die "partial shows in the mount"
no_multipart_uploads "$B"
assert_released "$V"
[ -z "$(ls "$T/state/view/uploads")" ] || die "crash records left: $(ls "$T/state/view/uploads")"
log "after kill -9 and a new mount: the job succeeded, no upload or loop device left"

# --- an idle mount killed, mounted again, stopped cleanly ----------------------
kill -KILL "$MPID"
wait "$MPID" 2>/dev/null || true
MPID=
mount_view "$M" "$T/cfg.json" --whole-bucket
[ "$(rp_state "$M" prod big.img)" = succeeded ] || die "the job's state after a second kill"
stop_view TERM
assert_released "$T"
no_multipart_uploads "$B"
