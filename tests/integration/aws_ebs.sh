#!/bin/bash
# aws_ebs: EBS recovery points of an aws-backup vault read with the EBS
# direct APIs (ebs.method "direct") on moto, archived to the S3 test server:
#   - an ext4 image (modes, owners, times, an xattr, hard links, a sparse
#     file) uploaded as a snapshot with StartSnapshot / PutSnapshotBlock /
#     CompleteSnapshot (only its non-zero 512 KiB blocks) and made a
#     recovery point (tests/tools/moto_backup.py, "EBS data"); `run --once`
#     archives it as backup.tar.gz: stock tar extracts the source tree, the
#     manifest records the block size, volume size and block count, and
#     only the written blocks were fetched
#   - a volume with no filesystem: rawbackup.gz decompressed is the image
#     (holes as zeros, never fetched: moto's request log shows exactly one
#     GetSnapshotBlock per written block, for the ext4 too, whose walk
#     reads blocks in pieces through a cache of 4 blocks)
#   - `vaultfs status --json` gives each job's blocks fetched of total, the
#     fetcher's count
#   - autoDeleteSnapshot: each recovery point is deleted, and only after
#     the decode verification of its archive
#   - kill -9 while the loop device waits for a read of the snapshot's
#     FUSE file (fault site fuse_file.hang): the daemon may be unable to
#     finish dying (its reader waits on its own dead server) and keeps the
#     state lock; the next start aborts its FUSE connections, takes the
#     lock once it has exited, unmounts and detaches what it left, and
#     archives the snapshot; no loop device, mount or process is left
#   - GetSnapshotBlock throttled and failing with 5xx (the fault proxy in
#     front of moto) during that run: retried, the archives unchanged
#   - config: an unknown ebs.method is refused with a clear error
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
. "$(dirname "$0")/ebs.inc"
need_moto
need_fuse
need_loop
need_tools mkfs.ext4 setfattr
test_timeout 300

VAULT=vft-ebs-$$-$RANDOM
make_bucket BUCKET
MiB=$((1 << 20))

# --- the source tree and its images ----------------------------------------
F=$T/files
ebs_files "$F"

# a 1 GiB volume (EBS's smallest) holding a 64 MiB ext4
truncate -s 1G "$T/ext4.img"
mkfs.ext4 -q -F -L vfebs -d "$F" "$T/ext4.img" 64M ||
	die "mkfs.ext4 -d failed"
# a volume with no filesystem: random data at the start and far in
truncate -s 1G "$T/raw.img"
head -c $((MiB + 1000)) /dev/urandom | dd of="$T/raw.img" conv=notrunc status=none
head -c $((2 * MiB)) /dev/urandom |
	dd of="$T/raw.img" bs=1M seek=700 conv=notrunc status=none

[ -r "${VAULTFS_MOTO_SERVER_DIR:-}/moto.log" ] ||
	die "no moto.log in VAULTFS_MOTO_SERVER_DIR (scripts/moto-server writes it)"

# If the test fails between the kill and the next start's clean-up, abort
# the dead daemon's FUSE connections by hand (what release_stale does), so
# no stuck thread or mount outlives the test on the machine.
abort_ebs_fuse() {
	local dev
	for dev in $(awk -v d="$T/state/ebs/" 'index($5, d) == 1 { split($3, a, ":"); print a[2] }' /proc/self/mountinfo); do
		[ -d /sys/fs/fuse/connections ] && [ -n "$(ls -A /sys/fs/fuse/connections)" ] ||
			mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
		echo 1 >"/sys/fs/fuse/connections/$dev/abort" 2>/dev/null || true
	done
	losetup -a | grep -F "$T/state/ebs/" | cut -d: -f1 |
		while read -r l; do losetup -d "$l" 2>/dev/null || true; done
	awk -v d="$T/state/ebs/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

ebs_moto vault "$VAULT"
read -r RP_EXT4 N_EXT4 < <(ebs_moto upload "$VAULT" "$T/ext4.img")
log "vault $VAULT: $RP_EXT4 ($N_EXT4 blocks)"

CFG=$T/config.json
config() { ebs_config "$CFG" "$VAULT" "$BUCKET" "$T/state" "$1"; }

# --- config ------------------------------------------------------------------
config ', "ebs": {"method": "fast"}'
expect_fail "$VAULTFS" status --config "$CFG"
grep -q 'ebs.method: must be "direct" or "volume", got "fast"' "$FAIL_OUT" ||
	die "ebs.method fast: $(cat "$FAIL_OUT")"

# --- kill -9 while reading: the next start unmounts --------------------------
# The fault site fuse_file.hang leaves the first read asked by the loop
# device unanswered (the server thread stops), so the kill lands while a
# thread of the daemon waits for a read of its own FUSE file through the
# loop device: the state a crash can leave it stuck in.
config ', "ebs": {"method": "direct"}'
# (fuse_file.store: no block goes to the page cache, where the loop
# device's reads would find it without asking the server)
VAULTFS_FAULT=fuse_file.hang@1,fuse_file.store@1+ VAULTFS_LOG=info \
	"$VAULTFS" run --config "$CFG" --once >"$T/killed.out" 2>"$T/killed.err" &
KPID=$!
on_exit "kill -KILL $KPID 2>/dev/null; abort_ebs_fuse"
end=$((SECONDS + 60))
until grep -qs 'not answering the read.*fuse_file.hang' "$T/killed.err"; do
	[ $SECONDS -lt $end ] && kill -0 "$KPID" 2>/dev/null || {
		cat "$T/killed.err" >&2
		die "bad test: no read of the loop device reached the hung server"
	}
	sleep 0.05
done
losetup -a | grep -qF "$T/state/ebs/snap-" ||
	die "bad test: no loop device over the snapshot's file"
sleep 0.5 # the reader is waiting now (the server answers nothing)
kill -KILL "$KPID"
# Not `wait`: the process may be unable to finish dying (its reader waits
# for its own dead FUSE server; the next start is what frees it).
end=$((SECONDS + 30))
while [ -e "/proc/$KPID" ] && [ "$(cut -d' ' -f3 "/proc/$KPID/stat" 2>/dev/null)" != Z ]; do
	[ $SECONDS -lt $end ] || die "the killed daemon did not die"
	sleep 0.05
done
sleep 0.5
if [ "$(ls "/proc/$KPID/task" 2>/dev/null | wc -l)" -gt 1 ]; then
	STUCK=1
	log "killed while reading; stuck: its thread $(ls "/proc/$KPID/task" | grep -vx "$KPID" | head -1) waits on its own dead FUSE server, holding the lock"
else
	STUCK=0
	log "killed while reading; it could die (not stuck this time)"
fi
grep -q "$T/state/ebs/snap-" /proc/self/mountinfo ||
	die "bad test: the private EBS mount went with the process"

# only now the raw one: read once, by the next run alone
read -r RP_RAW N_RAW < <(ebs_moto upload "$VAULT" "$T/raw.img")
log "vault $VAULT: $RP_RAW ($N_RAW blocks)"
[ "$N_RAW" = 7 ] || die "bad test: the raw image has $N_RAW written blocks, not 7"

# --- run --once: both archived, verified, deleted ----------------------------
# GetSnapshotBlock calls moto answered for snapshot $1 so far
block_calls() {
	grep -c "\"GET /snapshots/$1/blocks/[0-9]*?[^ ]* HTTP/[0-9.]*\" 200" \
		"$VAULTFS_MOTO_SERVER_DIR/moto.log" || true
}
# what the killed run fetched is left out of the ext4 count
EXT4_BEFORE=$(block_calls "${RP_EXT4##*/}")
# a cache of 4 blocks (one worker), far fewer than the walk reads: a block
# it reads in pieces must still be fetched once (the page cache has it)
config ', "ebs": {"concurrency": 1, "cacheSize": "1MiB"}'
# "blocks/": GetSnapshotBlock only (ListSnapshotBlocks is "blocks?")
start_faultproxy_moto --throttle 3 --5xx 2 --match "blocks/"
AWS_ENDPOINT_URL_EBS=$FP_URL VAULTFS_LOG=info vf_run --config "$CFG" --once
[ "$(fp_stat throttles)" = 3 ] && [ "$(fp_stat 5xxs)" = 2 ] ||
	die "the proxy injected $(fp_stat throttles) throttles and $(fp_stat 5xxs) 5xx, not 3 and 2"
expect_grep 'GetSnapshotBlock.*attempt 1 of [0-9]* failed, retrying' "$RUN_ERR"
grep -q "$T/state/ebs/" /proc/self/mountinfo && die "a private EBS mount is left"
# the killed daemon is gone: nothing of it waits any more (reaped at once)
[ "$(ls "/proc/$KPID/task" 2>/dev/null | wc -l)" -le 1 ] ||
	die "the killed daemon's threads are still stuck"
wait "$KPID" 2>/dev/null || true
[ -e "/proc/$KPID" ] && die "the killed daemon is still there"
[ "$STUCK" = 0 ] ||
	expect_grep "vaultfs pid $KPID was killed and has not exited: aborting" "$RUN_ERR"
[ -z "$(ls -A "$T/state/ebs")" ] || die "left in state/ebs: $(ls -A "$T/state/ebs")"
expect_grep 'unmounted .*/state/ebs/snap-.* \(left by an earlier run\)' "$RUN_ERR"
assert_released
[ "$(count_state "$T/state" succeeded)" = 2 ] || {
	vf status --config "$CFG" >&2
	die "not both jobs done"
}

check_s3_bucket "$BUCKET" "$T/dl"
vf status --config "$CFG" --json >"$T/status.json"
# a job the killed run finished has its lines there
cat "$T/killed.err" "$RUN_ERR" >"$T/all.err"
# the objects, by the snapshot's name in the job
for rp in "$RP_EXT4" "$RP_RAW"; do
	snap=${rp##*/}
	man=$(grep -l "\"$snap\"" $(find "$T/dl" -name manifest.json)) ||
		die "no manifest for $snap"
	[ "$(mjson "$man" 'm["source"]["blockSize"]')" = 524288 ] || die "$snap: blockSize"
	[ "$(mjson "$man" 'm["source"]["volumeSize"]')" = $((1 << 30)) ] || die "$snap: volumeSize"
	case $rp in
	"$RP_EXT4") EXT4_MAN=$man n=$N_EXT4 ;;
	*) RAW_MAN=$man n=$N_RAW ;;
	esac
	[ "$(mjson "$man" 'm["source"]["blocks"]')" = "$n" ] || die "$snap: blocks"
	# only the written blocks were fetched (once: the cache holds them
	# while the loop device's reads go by)
	grep -q "ebs: $snap: [0-9]* blocks fetched" "$T/all.err" || die "$snap: no fetch count"
	got=$(sed -n "s/.*ebs: $snap: \([0-9]*\) blocks fetched.*/\1/p" "$T/all.err" | tail -1)
	[ "$got" -le "$n" ] || die "$snap: $got blocks fetched, only $n written"
	# and what the server saw: GetSnapshotBlock calls it answered, in
	# the last run: one per written block, no hole, no block twice
	calls=$(block_calls "$snap")
	case $rp in
	"$RP_RAW") [ "$calls" = "$N_RAW" ] ||
		die "raw: $calls GetSnapshotBlock calls for $N_RAW written blocks (holes must not be fetched, nor a block twice)" ;;
	*) calls=$((calls - EXT4_BEFORE))
		# the walk reads only some of them (not the journal), and
		# each of those once, whatever the cache held
		twice=$(grep -o "\"GET /snapshots/$snap/blocks/[0-9]*?[^ ]* HTTP/[0-9.]*\" 200" \
			"$VAULTFS_MOTO_SERVER_DIR/moto.log" | tail -n +$((EXT4_BEFORE + 1)) |
			sed 's|.*/blocks/\([0-9]*\)?.*|\1|' | sort | uniq -d | tr '\n' ' ')
		[ "$calls" = "$got" ] && [ -z "$twice" ] ||
		die "ext4: $calls GetSnapshotBlock calls ($got counted, blocks fetched twice: ${twice:-none}) for $n written blocks (each must be fetched once)" ;;
	esac
	# status carries the fetcher's count through the job's progress
	[ "$(mjson "$T/status.json" "[j['blocksFetched'], j['blocksTotal']] if (j := [j for j in m if j['path'] == '$rp'][-1]) else 0")" = "[$got, $n]" ] ||
		die "$snap: status says $(mjson "$T/status.json" "[[j.get('blocksFetched'), j.get('blocksTotal')] for j in m if j['path'] == '$rp']"), not $got of $n blocks fetched"
	# deleted, and only after the full decode of its archive
	[ "$(ebs_moto status "$VAULT" "$rp")" = gone ] || die "$rp not deleted"
	v=$(grep -n "verified s3://$BUCKET/.*/$(mjson "$man" 'm["job"]["id"]')/.*decoded" "$T/all.err" | tail -1 | cut -d: -f1)
	d=$(grep -n "deleted recovery point $rp" "$T/all.err" | tail -1 | cut -d: -f1)
	[ -n "$v" ] && [ -n "$d" ] && [ "$v" -lt "$d" ] ||
		die "$rp: not deleted after its decode verification (lines ${v:-none}, ${d:-none})"
done
[ "$(mjson "$EXT4_MAN" 'm["method"]')" = tree ] || die "ext4: not archived as a tree"
[ "$(mjson "$EXT4_MAN" 'm["volumes"][0]["fstype"]')" = ext4 ] || die "ext4: fstype"
[ "$(mjson "$RAW_MAN" 'm["method"]')" = raw ] || die "raw: not archived raw"

# ext4: stock tar extracts the source tree
X=$T/x
mkdir -p "$X"
tar -xzf "$(dirname "$EXT4_MAN")/backup.tar.gz" -C "$X" --xattrs --xattrs-include='*' \
	--numeric-owner --same-permissions || die "tar -x failed"
# GNU tar leaves some directory mtimes at the extraction's time (a
# directory listed before its parent's other entries): checked in the
# listing instead
same_tree "$F" "$X" --no-root --exclude lost+found --no-dir-mtime
tar -tvzf "$(dirname "$EXT4_MAN")/backup.tar.gz" >"$T/ext4.list"
grep -q '2001-02-03 04:05 ./sub/$' "$T/ext4.list" ||
	die "ext4: ./sub/ has not its mtime in the tar"
grep -q 'user.colour' "$T/digest.a" || die "bad test: no xattr in the digest"
log "ext4: the files equal the source"

# raw: the whole volume
pigz -dc "$(dirname "$RAW_MAN")/rawbackup.gz" | same_bytes "$T/raw.img" ||
	die "rawbackup.gz is not the volume"
log "raw: rawbackup.gz is the volume, holes as zeros"
