#!/bin/bash
# orch_crash: `vaultfs run` killed with SIGKILL at each job state -
# restoring, archiving, mid-upload (a loop device, a mount and a multipart
# upload held), mid-write into a local store, verifying, cleaning - then
# started again: nothing is left attached, mounted or uploading, every job
# ends succeeded with a correct archive, and no snapshot is deleted before
# its archive is verified. Also: SIGTERM interrupts a job cleanly (it is
# retried at the next start without using an attempt), and a job out of
# attempts after a crash fails and runs onFailure.
#
# The moment is chosen with the test-only VAULTFS_TEST_PAUSE_AT=STAGE:SECS
# (docs/orchestrator.md): the job stops there, says so on stderr, and the
# test kills the process.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_loop
need_fs ext4

make_bucket B
# 12 MiB of random data in an ext4 image: a multipart upload of 5 MiB parts
mkdir -p "$T/src/big"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$T/src/big/random.bin"
echo "a small file" >"$T/src/big/small.txt"
make_ext4 "$T/big.img" "$T/src/big" 20M

# setup NAME DEST: a vault holding a copy of the image, a config
setup() {
	local name=$1 dest=$2
	mkdir -p "$T/$name/vault"
	cp --sparse=always "$T/big.img" "$T/$name/vault/big.img"
	write_config "$T/$name.json" "{
  \"vaults\": [ { \"name\": \"$name\", \"path\": \"$T/$name/vault\" } ],
  \"destination\": \"$dest\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/$name/state\",
  \"autoDeleteSnapshot\": true,
  \"partSize\": \"5MiB\",
  \"maxAttempts\": ${3:-3},
  \"onFailure\": \"echo \\\"\$VAULTFS_JOB_ID \$VAULTFS_JOB_ERROR\\\" >> '$T/$name/onfail'\"
}"
}

# run_paused NAME STAGE: start `run --once` paused at STAGE; returns once
# the job is there (PID in RPID)
run_paused() {
	local name=$1 stage=$2
	: >"$T/$name/run.err"
	# no `timeout` in between: the signals must reach vaultfs itself (the
	# pause ends by itself after 120 s, and the exit trap kills it)
	VAULTFS_TEST_PAUSE_AT=$stage:120 "$VAULTFS" run --once \
		--config "$T/$name.json" >"$T/$name/run.out" 2>"$T/$name/run.err" &
	RPID=$!
	on_exit "kill -KILL $RPID 2>/dev/null"
	wait_line "$T/$name/run.err" "paused at $stage" 60
}

kill9() {
	local name=$1
	kill -KILL "$RPID"
	wait "$RPID" 2>/dev/null || true
	! grep -qE 'Sanitizer|runtime error:' "$T/$name/run.err" || die "sanitizer report before the kill"
}

# after_restart NAME: run again; the one job succeeded, archive correct,
# snapshot deleted, nothing left
after_restart() {
	local name=$1 attempts=$2 url
	vf_run --config "$T/$name.json" --once
	expect_grep "^succeeded +$name/big.img .*snapshot deleted" "$RUN_OUT"
	[ "$(job_files "$T/$name/state" | wc -l)" = 1 ] || die "$name: not exactly one job"
	[ "$(jstate "$T/$name/state" 'j["state"]' 'j["attempts"]' 'j["verified"]' 'j["snapshotDeleted"]')" = \
		"succeeded	$attempts	True	True" ] ||
		die "$name: journal: $(jstate "$T/$name/state" 'j["state"]' 'j["attempts"]' 'j["verified"]' 'j["snapshotDeleted"]')"
	[ ! -e "$T/$name/vault/big.img" ] || die "$name: the snapshot was not deleted"
	[ -z "$(ls -A "$T/$name/vault")" ] || die "$name: leftovers in the vault: $(ls -A "$T/$name/vault")"
	url=$(jstate "$T/$name/state" 'j["result"]["url"]')
	case $url in
	s3://*)
		check_s3_archive "$B" "${url#s3://$B/}"
		no_multipart_uploads "$B"
		;;
	*)
		check_local_archive "$url"
		[ -z "$(find "$T/$name/store" -name '*.partial')" ] || die "$name: partial files left in the store"
		;;
	esac
	extract_compare "$CHECKED_OBJ" "$T/src/big"
	assert_released
	[ ! -e "$T/$name/onfail" ] || die "$name: onFailure ran"
}

# --- restoring ------------------------------------------------------------------
setup restoring "s3://$B/restoring"
run_paused restoring restoring
[ "$(jstate "$T/restoring/state" 'j["state"]')" = restoring ] || die "restoring: not in the journal"
kill9 restoring
after_restart restoring 2
log "killed while restoring: retried and archived"

# --- archiving (before anything is attached) ---------------------------------------
setup archiving "s3://$B/archiving"
run_paused archiving archiving
kill9 archiving
after_restart archiving 2
log "killed as archiving began: retried and archived"

# --- mid-upload: a loop device, a mount and a multipart upload are held -----------
setup upload "s3://$B/upload"
run_paused upload uploading
[ "$(jstate "$T/upload/state" 'j["state"]')" = archiving ] || die "upload: not archiving"
jstate "$T/upload/state" '[(r["kind"], r["status"]) for r in j["resources"]]' >"$T/upload/res"
for k in loop mount upload; do
	grep -q "('$k', 'created')" "$T/upload/res" || die "upload: no $k recorded: $(cat "$T/upload/res")"
done
kill9 upload
[ -n "$(leaks)" ] || die "upload: nothing held after the kill (the test proves nothing)"
[ "$(s3_req GET "$B?uploads=" | grep -o '<Upload>' | wc -l)" = 1 ] ||
	die "upload: no multipart upload in progress after the kill"
[ -f "$T/upload/vault/big.img" ] || die "upload: snapshot gone before verification"
after_restart upload 2
expect_grep 'releasing what an earlier run left' "$RUN_ERR"
log "killed mid-upload: mount, loop device and upload released at restart; archived"

# --- mid-write into a local store ---------------------------------------------------
setup localw "$T/localw/store"
run_paused localw writing
kill9 localw
[ -n "$(find "$T/localw/store" -name '*.partial')" ] || log "(no partial file at the kill)"
after_restart localw 2
log "killed mid-write into a local store: no partial file left; archived"

# --- verifying --------------------------------------------------------------------------
setup verifying "s3://$B/verifying"
run_paused verifying verifying
kill9 verifying
[ -f "$T/verifying/vault/big.img" ] || die "verifying: snapshot deleted before verification"
[ "$(jstate "$T/verifying/state" 'j.get("verified", False)')" = False ] || die "verifying: already verified?"
assert_released
after_restart verifying 2
expect_grep 'resuming at verifying' "$RUN_ERR"
log "killed while verifying: resumed at verifying, snapshot deleted only after"

# --- cleaning -----------------------------------------------------------------------------
setup cleaning "s3://$B/cleaning"
run_paused cleaning cleaning
kill9 cleaning
[ -f "$T/cleaning/vault/big.img" ] || die "cleaning: the pause comes before the deletion"
[ "$(jstate "$T/cleaning/state" 'j["verified"]')" = True ] || die "cleaning: not verified"
after_restart cleaning 2
expect_grep 'resuming at cleaning' "$RUN_ERR"
log "killed while cleaning: resumed at cleaning, snapshot deleted"

# --- the recovery point changes while vaultfs is down --------------------------------------
setup changed "s3://$B/changed"
run_paused changed restoring
kill9 changed
truncate -s +1M "$T/changed/vault/big.img"
vf_run --config "$T/changed.json" --once
expect_grep '^cancelled +changed/big.img: superseded: ' "$RUN_OUT"
expect_grep '^succeeded +changed/big.img .*snapshot deleted' "$RUN_OUT"
[ "$(jstate "$T/changed/state" 'j["state"]' | tr '\n' ' ')" = "cancelled succeeded " ] ||
	die "changed: journal: $(jstate "$T/changed/state" 'j["state"]')"
[ ! -e "$T/changed/onfail" ] || die "changed: onFailure ran for a superseded job"
assert_released
no_multipart_uploads "$B"
log "a recovery point changed while vaultfs was down: the old job superseded, the new one archived"

# --- SIGTERM: interrupted cleanly, no attempt used ------------------------------------------
setup term "s3://$B/term"
run_paused term uploading
kill -TERM "$RPID"
rc=0
wait "$RPID" || rc=$?
[ "$rc" = 130 ] || die "term: exit $rc after SIGTERM, not 130"
! grep -qE 'Sanitizer|runtime error:' "$T/term/run.err" || die "sanitizer report after SIGTERM"
assert_released
no_multipart_uploads "$B"
[ "$(jstate "$T/term/state" 'j["state"]' 'j["attempts"]')" = "queued	0" ] ||
	die "term: journal: $(jstate "$T/term/state" 'j["state"]' 'j["attempts"]')"
jstate "$T/term/state" 'j["lastError"]' | grep -q 'interrupted' || die "term: not journaled as interrupted"
after_restart term 1
log "SIGTERM: released at once, journaled as interrupted, retried at the next start"

# --- out of attempts: a crash with maxAttempts 1 fails the job ------------------------------
setup once "s3://$B/once" 1
run_paused once uploading
kill9 once
vf_run_fails --config "$T/once.json" --once
assert_released
no_multipart_uploads "$B"
[ "$(jstate "$T/once/state" 'j["state"]')" = failed ] || die "once: not failed"
expect_grep 'interrupted while archiving, 1 of 1 attempts used' "$T/once/onfail"
[ -f "$T/once/vault/big.img" ] || die "once: the snapshot of a failed job was deleted"
log "a crash with no attempt left: failed, onFailure ran, snapshot kept"
