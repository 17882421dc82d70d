#!/bin/bash
# orch_incomplete: an archive that is not the whole recovery point never
# costs the recovery point (issue 10, section 1).
#
#   1. A file that cannot be read (VAULTFS_FAULT=arc.tar_read@1) in a tree
#      of a local vault with autoDeleteSnapshot: true: the job ends
#      `incomplete`, `run --once` exits 1, the snapshot and its sidecar are
#      still there, the archive is kept and verified, its manifest says
#      "complete": false and names the file, `status` (table and --json)
#      and onFailure (VAULTFS_JOB_STATE=incomplete) say what was left out.
#      A second run queues nothing (done for that recovery point), nor
#      does a daemon's rescan;
#      --retry-failed queues it again, and --allow-incomplete exits 0,
#      the snapshot still kept.
#   2. A file rewritten while it is read (VAULTFS_TEST_HOOK_READ runs the
#      rewrite after its first read, deterministically): incomplete in
#      `vaultfs run`; `vaultfs archive` exits 3 with "complete": false (and
#      so for a directory that gets a new file while it is read);
#      `vaultfs archive --strict` fails naming the file, leaving no file
#      behind, and to S3 no multipart upload in progress.
#   3. A file that grows past its header's size while it is read: recorded
#      ("grew"), only the header's size stored, the archive still a
#      valid tar.
#   4. An image file archived raw that is rewritten while it is read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_s3_command

# config NAME: a vault with one tree (data/), autoDeleteSnapshot true, an
# onFailure that writes its state and error to $T/NAME/onfail
config() {
	local v=$T/$1/vault
	mkdir -p "$v/data/sub"
	head -c $((2 * 1024 * 1024 + 17)) /dev/urandom >"$v/data/sub/big.bin"
	sidecar "$v/data" "local:data-$1" '{}'
	write_config "$T/$1.json" "{
  \"vaults\": [ { \"name\": \"$1\", \"path\": \"$v\" } ],
  \"destination\": \"$T/$1/store\", \"stateDir\": \"$T/$1/state\",
  \"autoDeleteSnapshot\": true,
  \"onFailure\": \"echo \\\"\$VAULTFS_JOB_STATE|\$VAULTFS_JOB_ERROR\\\" >> '$T/$1/onfail'\" }"
}

manifest_of() {
	find "$T/$1/store" -name manifest.json | sort | tail -n 1
}

# --- 1. an unreadable file -------------------------------------------------
config unread
VAULTFS_FAULT=arc.tar_read@1 vf_run_fails --config "$T/unread.json" --once
[ -d "$T/unread/vault/data" ] && [ -f "$T/unread/vault/data/sub/big.bin" ] ||
	die "unread: the snapshot was deleted although a file was not archived"
[ -f "$T/unread/vault/data.json" ] || die "unread: the sidecar was deleted"
! ls -A "$T/unread/vault" | grep -q '^\.vaultfs-delete' || die "unread: a hidden deletion name is left"
[ "$(jstate "$T/unread/state" 'j["state"]')" = incomplete ] ||
	die "unread: the job is $(jstate "$T/unread/state" 'j["state"]'), not incomplete"
[ "$(jstate "$T/unread/state" 'j.get("verified")' 'j.get("snapshotDeleted", False)')" = "True	False" ] ||
	die "unread: the job's archive is not verified, or its snapshot is marked deleted"
expect_grep '^incomplete +unread/data -> ' "$RUN_OUT"
expect_grep 'left out: 1 item not archived: \./sub/big\.bin: read error .*snapshot kept' "$RUN_OUT"
expect_grep 'this run: 0 succeeded, 0 failed, 0 cancelled, 1 incomplete' "$RUN_OUT"
! grep -q 'snapshot deleted' "$RUN_OUT" || die "unread: run says a snapshot was deleted"
M=$(manifest_of unread)
[ -n "$M" ] || die "unread: no manifest in the store"
check_local_archive "$(dirname "$M")/backup.tar.gz"
[ "$(mjson "$M" 'm["complete"]')" = false ] || die "unread: the manifest does not say complete: false"
[ "$(mjson "$M" 'm["skipped_count"]')" = 1 ] || die "unread: skipped_count is not 1"
[ "$(mjson "$M" 'm["skipped"][0]["path"]')" = ./sub/big.bin ] || die "unread: the manifest does not name the file"
mjson "$M" 'm["skipped"][0]["reason"]' | grep -q 'read error' || die "unread: the reason is not the read error"
vf status --config "$T/unread.json" --wide >"$T/status.out" || die "status failed"
expect_grep '^unread/data +incomplete +100% .*backup\.tar\.gz - 1 item not archived: \./sub/big\.bin: read error' "$T/status.out"
expect_grep '1 job: 1 incomplete' "$T/status.out"
vf status --config "$T/unread.json" --json >"$T/status.json" || die "status --json failed"
python3 - "$T/status.json" <<'EOF' || die "unread: status --json does not show the incomplete job"
import json, sys
j = json.load(open(sys.argv[1]))[0]
assert j["state"] == "incomplete", j
assert j["verified"] and not j["snapshotDeleted"], j
assert "./sub/big.bin: read error" in j["error"] and "snapshot kept" in j["error"], j
assert j["result"].endswith("/backup.tar.gz"), j
EOF
expect_grep '^incomplete\|1 item not archived: \./sub/big\.bin: read error' "$T/unread/onfail"
log "unreadable file: incomplete, exit 1, snapshot kept, manifest, status and onFailure say why"

# a second run: the recovery point is done (no endless re-archiving) ...
vf_run --config "$T/unread.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
[ "$(jstate "$T/unread/state" 'j["state"]' | wc -l)" = 1 ] || die "unread: a second job was made"
# ... until --retry-failed; --allow-incomplete makes the exit 0, and the
# snapshot stays all the same
VAULTFS_FAULT=arc.tar_read@1 vf_run --config "$T/unread.json" --once --retry-failed --allow-incomplete
expect_grep '^queued 1 recovery point' "$RUN_OUT"
expect_grep 'this run: 0 succeeded, 0 failed, 0 cancelled, 1 incomplete' "$RUN_OUT"
[ "$(count_state "$T/unread/state" incomplete)" = 2 ] || die "unread: the retry did not end incomplete"
[ -f "$T/unread/vault/data/sub/big.bin" ] && [ -f "$T/unread/vault/data.json" ] ||
	die "unread: --allow-incomplete deleted the snapshot"
expect_fail vf run --config "$T/unread.json" --allow-incomplete
expect_grep 'allow-incomplete goes with --once' "$FAIL_OUT"
log "incomplete counts as done; --retry-failed runs it again; --allow-incomplete exits 0 and keeps it"

# ... and a daemon does not archive it over and over: another recovery
# point appears and is archived, rescans (every second) pass, and the
# incomplete one still has its one job
config daemon
python3 - "$T/daemon.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["rescanSeconds"] = 1
json.dump(c, open(sys.argv[1], "w"))
EOF
start_daemon "$T/daemon.json" VAULTFS_FAULT=arc.tar_read@1
wait_line "$T/daemon.out" '^incomplete +daemon/data -> ' 60
mkdir -p "$T/daemon/vault/later" && echo later >"$T/daemon/vault/later/f.txt"
wait_line "$T/daemon.out" '^succeeded +daemon/later -> ' 60
sleep 3 # three rescans: none may queue data again
stop_daemon
[ "$(jstate "$T/daemon/state" 'j["recoveryPoint"]["path"].split("/")[-1]' 'j["state"]')" = "data	incomplete
later	succeeded" ] || die "daemon: jobs are $(jstate "$T/daemon/state" 'j["recoveryPoint"]["path"]' 'j["state"]')"
[ -f "$T/daemon/vault/data/sub/big.bin" ] || die "daemon: the incomplete snapshot was deleted"
[ ! -e "$T/daemon/vault/later" ] || die "daemon: the complete snapshot was not deleted"
log "daemon: the incomplete recovery point is archived once, its snapshot kept"

# --- 2. a file rewritten while it is read ----------------------------------
config rewrite
# the same size, other bytes: only mtime and ctime tell
REWRITE="dd if=/dev/urandom of='$T/rewrite/vault/data/sub/big.bin' bs=4096 count=1 conv=notrunc status=none"
VAULTFS_TEST_HOOK_READ="sub/big.bin:$REWRITE" vf_run_fails --config "$T/rewrite.json" --once
[ "$(jstate "$T/rewrite/state" 'j["state"]')" = incomplete ] || die "rewrite: the job is not incomplete"
[ -f "$T/rewrite/vault/data/sub/big.bin" ] || die "rewrite: the snapshot was deleted"
M=$(manifest_of rewrite)
[ "$(mjson "$M" 'm["complete"]')" = false ] || die "rewrite: the manifest says complete"
mjson "$M" 'm["skipped"][0]["reason"]' | grep -q 'changed while it was read' ||
	die "rewrite: the reason is $(mjson "$M" 'm["skipped"][0]["reason"]')"
expect_grep 'sub/big\.bin: changed while it was read' "$RUN_OUT"
log "file rewritten while read: the job is incomplete, the snapshot kept"

S=$T/rewrite/vault/data
rc=0
VAULTFS_TEST_HOOK_READ="sub/big.bin:$REWRITE" vf archive --quiet "$S" "$T/plain.tar.gz" 2>"$T/plain.err" || rc=$?
[ "$rc" = 3 ] || { cat "$T/plain.err" >&2; die "archive of a file rewritten while read: exit $rc, not 3"; }
expect_grep 'incomplete: 1 item not archived: \./sub/big\.bin: changed while it was read' "$T/plain.err"
[ "$(mjson "$T/plain.tar.gz.manifest.json" 'm["complete"]')" = false ] || die "archive: the manifest says complete"
tar -tzf "$T/plain.tar.gz" | grep -qx './sub/big.bin' || die "archive: the file is not in the archive at all"
log "vaultfs archive: exit 3 and complete: false"

# a directory that changes while it is read: a file made in it
rc=0
VAULTFS_TEST_HOOK_READ="sub/big.bin:touch '$S/sub/new.txt'" vf archive --quiet "$S" "$T/dir.tar.gz" 2>"$T/dir.err" || rc=$?
[ "$rc" = 3 ] || { cat "$T/dir.err" >&2; die "archive of a directory changed while read: exit $rc, not 3"; }
[ "$(mjson "$T/dir.tar.gz.manifest.json" 'm["skipped"][0]["path"]')" = ./sub ] ||
	die "dir: the manifest does not name ./sub: $(mjson "$T/dir.tar.gz.manifest.json" 'm["skipped"]')"
mjson "$T/dir.tar.gz.manifest.json" 'm["skipped"][0]["reason"]' | grep -q 'changed while it was read' ||
	die "dir: the reason does not say it changed"
rm "$S/sub/new.txt"
log "a directory changed while read: recorded"

VAULTFS_TEST_HOOK_READ="sub/big.bin:$REWRITE" expect_fail vf archive --quiet --strict "$S" "$T/strict.tar.gz"
expect_grep 'archive: strict: \./sub/big\.bin: changed while it was read' "$FAIL_OUT"
[ ! -e "$T/strict.tar.gz" ] && [ ! -e "$T/strict.tar.gz.partial" ] &&
	[ ! -e "$T/strict.tar.gz.manifest.json" ] || die "--strict left a file behind: $(ls "$T")"
# to S3, with parts already uploaded when the rewrite comes (the root's
# files come before sub/'s: 12 MiB that do not compress, parts of 5 MiB)
make_bucket B
head -c $((12 * 1024 * 1024)) /dev/urandom >"$S/first.bin"
VAULTFS_LOG=debug VAULTFS_TEST_HOOK_READ="sub/big.bin:$REWRITE" expect_fail vf archive --quiet --strict \
	--part-size 5M "$S" "s3://$B/strict/"
expect_grep 'strict: \./sub/big\.bin: changed while it was read' "$FAIL_OUT"
expect_grep 'UploadPart .* -> 200' "$FAIL_OUT"
expect_grep 'aborted multipart upload of s3://'"$B"'/strict/backup\.tar\.gz' "$FAIL_OUT"
rm "$S/first.bin"
object_absent "$B" strict/backup.tar.gz
object_absent "$B" strict/manifest.json
no_multipart_uploads "$B"
vf archive --quiet --strict "$S" "$T/whole.tar.gz" 2>"$T/whole.err" ||
	{ cat "$T/whole.err" >&2; die "--strict failed on a tree that does not change"; }
[ "$(mjson "$T/whole.tar.gz.manifest.json" 'm["complete"]')" = true ] || die "a whole archive is not complete: true"
log "--strict: fails at the rewritten file, nothing left behind (local and S3); passes when nothing changes"

# --- 3. a file that grows past its header's size ---------------------------
G=$T/grow
mkdir -p "$G"
head -c 300000 /dev/urandom >"$G/log.bin"
rc=0
VAULTFS_TEST_HOOK_READ="log.bin:head -c 5000 /dev/urandom >> '$G/log.bin'" \
	vf archive --quiet "$G" "$T/grow.tar.gz" 2>"$T/grow.err" || rc=$?
[ "$rc" = 3 ] || { cat "$T/grow.err" >&2; die "archive of a growing file: exit $rc, not 3"; }
[ "$(stat -c %s "$G/log.bin")" = 305000 ] || die "bad test: the hook did not make the file grow"
[ "$(mjson "$T/grow.tar.gz.manifest.json" 'm["complete"]')" = false ] || die "grow: the manifest says complete"
mjson "$T/grow.tar.gz.manifest.json" 'm["skipped"][0]["reason"]' |
	grep -q 'grew from 300000 to 305000 bytes' || die "grow: the reason does not say it grew"
[ "$(tar -tvzf "$T/grow.tar.gz" ./log.bin | awk '{print $3}')" = 300000 ] ||
	die "grow: the stored size is not the header's"
head -c 300000 "$G/log.bin" >"$T/grow.head"
mkdir "$T/gx" && tar -xzf "$T/grow.tar.gz" -C "$T/gx" || die "grow: the archive does not extract"
same_file "$T/gx/log.bin" "$T/grow.head"
VAULTFS_TEST_HOOK_READ="log.bin:head -c 5000 /dev/urandom >> '$G/log.bin'" \
	expect_fail vf archive --quiet --strict "$G" "$T/grow-strict.tar.gz"
expect_grep 'strict: \./log\.bin: grew from 305000 to 310000 bytes' "$FAIL_OUT"
log "a file that grows while read: recorded, its header's size stored, --strict fails"

# --- 4. an image archived raw, rewritten while it is read -------------------
head -c $((3 * 1024 * 1024)) /dev/urandom >"$T/disk.img"
POKE="disk.img:printf Y | dd of='$T/disk.img' bs=1 seek=2000000 conv=notrunc status=none"
rc=0
VAULTFS_TEST_HOOK_READ="$POKE" vf archive --quiet --mode raw "$T/disk.img" "$T/raw.gz" 2>"$T/raw.err" || rc=$?
[ "$rc" = 3 ] || { cat "$T/raw.err" >&2; die "raw archive of an image rewritten while read: exit $rc, not 3"; }
mjson "$T/raw.gz.manifest.json" 'm["skipped"][0]["reason"]' | grep -q 'changed while it was read' ||
	die "raw: the reason does not say it changed"
VAULTFS_TEST_HOOK_READ="$POKE" expect_fail vf archive --quiet --strict --mode raw "$T/disk.img" "$T/raw-strict.gz"
expect_grep 'strict: .*disk\.img: changed while it was read' "$FAIL_OUT"
[ ! -e "$T/raw-strict.gz" ] && [ ! -e "$T/raw-strict.gz.partial" ] || die "raw --strict left a file behind"
log "an image rewritten while read raw: recorded; --strict fails"
