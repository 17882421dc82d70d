#!/bin/bash
# orch_replay: `vaultfs run --once` into S3 archives the snapshot of a
# running machine (ext4 and xfs images copied while mounted, files fsynced
# into their journals only) with the journal replayed: the files are in
# the archives, the manifests say "replayed", the recovery points are
# unchanged, and nothing is left: no loop device, no mount, no FUSE mount,
# nothing in STATEDIR/overlay. Then a crash: `run --once` killed with
# SIGKILL while paused at `writing` with the overlay mounted (its FUSE
# mount is then dead); the next `run --once` unmounts it, detaches the
# loop devices, removes the overlay's directory, and archives the job.
# And an overlayLimit too small for the journal, with autoDeleteSnapshot:
# the job ends incomplete and the snapshot stays.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/replay.inc"
need_loop
need_fuse
need_fs ext4
need_fs xfs
need_tools mkfs.xfs dumpe2fs debugfs xfs_logprint

make_bucket B
head -c $((200 * 1024 + 3)) /dev/urandom >"$T/data.bin"
printf 'committed, in the journal only\n' >"$T/note.txt"

# config NAME [LIMIT [AUTODELETE]]: a vault $T/NAME/vault into
# s3://$B/NAME, state in $T/NAME/state, overlayLimit LIMIT (256MiB); the
# recovery points are kept unless AUTODELETE is true
config() {
	mkdir -p "$T/$1/vault"
	write_config "$T/$1.json" "{
  \"vaults\": [ { \"name\": \"$1\", \"path\": \"$T/$1/vault\" } ],
  \"autoDeleteSnapshot\": ${3:-false},
  \"destination\": \"s3://$B/$1\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/$1/state\",
  \"overlayLimit\": \"${2:-256MiB}\"
}"
}

# archived NAME RP FILE...: the job of RP succeeded; its archive (checked
# against its manifest) holds FILEs; its volume's journal was replayed
archived() {
	local name=$1 rp=$2 url key x f
	shift 2
	url=$(jstate "$T/$name/state" 'j["result"]["url"] if j["recoveryPoint"]["path"].endswith("/'"$rp"'") else ""' | grep . ) ||
		die "$name: no result for $rp"
	key=${url#s3://$B/}
	check_s3_archive "$B" "$key"
	[ "$(mjson "$CHECKED_MAN" 'm["volumes"][0].get("journal")')" = replayed ] ||
		die "$name/$rp: journal is $(mjson "$CHECKED_MAN" 'm["volumes"][0].get("journal")')"
	[ "$(mjson "$CHECKED_MAN" 'm["skipped_count"]')" = 0 ] || die "$name/$rp: skipped: $(mjson "$CHECKED_MAN" 'm["skipped"]')"
	x=$T/$name.$rp.x
	mkdir -p "$x"
	tar -xzf "$CHECKED_OBJ" -C "$x" || die "$name/$rp: cannot extract"
	for f in "$@"; do
		cmp "$f" "$x/$(basename "$f")" || die "$name/$rp: $(basename "$f") is not archived whole"
	done
}

# nothing_left NAME: no loop device, mount or FUSE mount of the test's,
# STATEDIR/overlay empty
nothing_left() {
	assert_released
	no_overlay_left "$T/$1/state/overlay"
}

# --- ext4 and xfs copied while mounted, into S3 -------------------------
config live
for fs in ext4 xfs; do
	snapshot_live "$fs" "$T/$fs.img" "$T/data.bin" "$T/note.txt"
	mv "$T/$fs.img.snap" "$T/live/vault/$fs.img"
done
sha=$(image_sum "$T/live/vault/ext4.img") sha_x=$(image_sum "$T/live/vault/xfs.img")
vf_run --config "$T/live.json" --once
[ "$(count_state "$T/live/state" succeeded)" = 2 ] || die "live: $(jstate "$T/live/state" 'j["recoveryPoint"]["path"]' 'j["state"]' 'j.get("lastError")')"
archived live ext4.img "$T/data.bin" "$T/note.txt"
archived live xfs.img "$T/data.bin" "$T/note.txt"
[ "$(image_sum "$T/live/vault/ext4.img")" = "$sha" ] && [ "$(image_sum "$T/live/vault/xfs.img")" = "$sha_x" ] || die "live: a recovery point was modified"
nothing_left live
# the overlays were journaled (a tempdir and a FUSE mount each), and released
jstate "$T/live/state" '" ".join(sorted(set("%s:%s" % (r["kind"], r["status"]) for r in j["resources"])))' >"$T/live.res"
grep -q 'tempdir:released' "$T/live.res" || die "live: no overlay directory in the journal: $(cat "$T/live.res")"
! grep -qE ':(intended|created)' "$T/live.res" || die "live: resources not released: $(cat "$T/live.res")"
log "run --once into S3: ext4 and xfs replayed, archived whole, recovery points unchanged, nothing left"

# --- overlayLimit too small: not replayed, incomplete, the snapshot kept ---
config small 8KiB true
snapshot_live ext4 "$T/s.img" "$T/note.txt"
mv "$T/s.img.snap" "$T/small/vault/s.img"
sha=$(image_sum "$T/small/vault/s.img")
vf_run_fails --config "$T/small.json" --once
[ "$(jstate "$T/small/state" 'j["state"]')" = incomplete ] ||
	die "small: the job is $(jstate "$T/small/state" 'j["state"]' 'j.get("lastError")'), not incomplete"
jstate "$T/small/state" 'j["result"].get("incomplete", "")' | grep -q 'journal not replayed: the overlay is full' ||
	die "small: the job does not say why: $(jstate "$T/small/state" 'j["result"]')"
[ "$(jstate "$T/small/state" 'j.get("snapshotDeleted", False)')" = False ] || die "small: snapshotDeleted"
[ -f "$T/small/vault/s.img" ] || die "small: the snapshot of an incomplete job was deleted (autoDeleteSnapshot: true)"
[ "$(image_sum "$T/small/vault/s.img")" = "$sha" ] || die "small: the recovery point was modified"
url=$(jstate "$T/small/state" 'j["result"]["url"]')
check_s3_archive "$B" "${url#s3://$B/}"
case $(mjson "$CHECKED_MAN" 'm["volumes"][0].get("journal")') in
"not replayed: the overlay is full"*) ;;
*) die "small: journal is '$(mjson "$CHECKED_MAN" 'm["volumes"][0].get("journal")')'" ;;
esac
nothing_left small
log "overlayLimit 8KiB with autoDeleteSnapshot: not replayed, the job incomplete, the snapshot kept"

# --- kill -9 while writing, the overlay mounted ---------------------------
config crash
snapshot_live ext4 "$T/c.img" "$T/note.txt"
mv "$T/c.img.snap" "$T/crash/vault/c.img"
sha=$(image_sum "$T/crash/vault/c.img")
: >"$T/crash.err"
# no `timeout` in between: SIGKILL must reach vaultfs itself (the pause ends
# by itself after 120 s, and the exit trap kills it)
VAULTFS_TEST_PAUSE_AT=writing:120 "$VAULTFS" run --once --config "$T/crash.json" \
	>"$T/crash.out" 2>"$T/crash.err" &
RPID=$!
on_exit "kill -KILL $RPID 2>/dev/null"
wait_line "$T/crash.err" "paused at writing" 120
awk '$3 ~ /^fuse/' /proc/self/mounts | grep -q "$T/crash/state/overlay/" ||
	die "crash: no FUSE overlay mounted at the pause (the test proves nothing)"
kill -KILL "$RPID"
wait "$RPID" 2>/dev/null || true
! grep -qE 'Sanitizer|runtime error:' "$T/crash.err" || die "sanitizer report before the kill"
[ -n "$(leaks)" ] || die "crash: nothing held after the kill (the test proves nothing)"
awk '$3 ~ /^fuse/' /proc/self/mounts | grep -q "$T/crash/state/overlay/" ||
	die "crash: the dead FUSE mount is gone already (the test proves nothing)"
jstate "$T/crash/state" '" ".join("%s:%s" % (r["kind"], r["status"]) for r in j["resources"])' >"$T/crash.res"
for k in loop mount tempdir; do
	grep -q "$k:created" "$T/crash.res" || die "crash: no $k recorded: $(cat "$T/crash.res")"
done
vf_run --config "$T/crash.json" --once
expect_grep 'releasing what an earlier run left' "$RUN_ERR"
[ "$(jstate "$T/crash/state" 'j["state"]')" = succeeded ] || die "crash: $(jstate "$T/crash/state" 'j["state"]' 'j.get("lastError")')"
archived crash c.img "$T/note.txt"
[ "$(image_sum "$T/crash/vault/c.img")" = "$sha" ] || die "crash: the recovery point was modified"
nothing_left crash
log "killed while writing with the overlay mounted: the next run released it all and archived the job"
