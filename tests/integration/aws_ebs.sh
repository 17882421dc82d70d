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
#     (holes as zeros, never fetched)
#   - autoDeleteSnapshot: each recovery point is deleted, and only after
#     the decode verification of its archive
#   - kill -9 while a snapshot is being read: the next start unmounts the
#     private FUSE mount and archives it; nothing is left mounted
#   - GetSnapshotBlock throttled and failing with 5xx (the fault proxy in
#     front of moto) during that run: retried, the archives unchanged
#   - config: an unknown ebs.method is refused with a clear error
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_moto
need_fuse
need_loop
need_tools mkfs.ext4 setfattr
test_timeout 200

SUFFIX=$$-$RANDOM
VAULT=vft-ebs-$SUFFIX
make_bucket BUCKET
MiB=$((1 << 20))

# --- the source tree and its images ----------------------------------------
F=$T/files
make_files "$F"
# and a sparse file: its holes come back as zeros
truncate -s 20M "$F/sparse"
printf 'tail' | dd of="$F/sparse" bs=1 seek=$((15 * MiB)) conv=notrunc status=none
touch -d '2019-06-01 12:00:00' "$F/sparse"

# a 1 GiB volume (EBS's smallest) holding a 64 MiB ext4
truncate -s 1G "$T/ext4.img"
mkfs.ext4 -q -F -L vfebs -d "$F" "$T/ext4.img" 64M ||
	die "mkfs.ext4 -d failed"
# a volume with no filesystem: random data at the start and far in
truncate -s 1G "$T/raw.img"
head -c $((MiB + 1000)) /dev/urandom | dd of="$T/raw.img" conv=notrunc status=none
head -c $((2 * MiB)) /dev/urandom |
	dd of="$T/raw.img" bs=1M seek=700 conv=notrunc status=none

# The moto side, one subcommand per call.
cat >"$T/moto.py" <<'EOF'
import base64, hashlib, json
cmd, args = sys.argv[1], sys.argv[2:]
b, ec2, ebs = client("backup"), client("ec2"), client("ebs")
acct = client("sts").get_caller_identity()["Account"]
BLOCK = 512 * 1024

if cmd == "vault":            # VAULT
    b.create_backup_vault(BackupVaultName=args[0])
elif cmd == "upload":         # VAULT IMAGE -> "RP-ARN WRITTEN-BLOCKS"
    vault, img = args
    snap = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    n = 0
    with open(img, "rb") as f:
        i = 0
        while True:
            data = f.read(BLOCK)
            if not data:
                break
            if data.count(0) != len(data):
                ebs.put_snapshot_block(
                    SnapshotId=snap, BlockIndex=i, BlockData=data,
                    DataLength=len(data), ChecksumAlgorithm="SHA256",
                    Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode())
                n += 1
            i += 1
    ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=n)
    vol = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["VolumeId"]
    j = b.start_backup_job(BackupVaultName=vault,
                           ResourceArn="arn:aws:ec2:us-east-1:%s:volume/%s" % (acct, vol),
                           IamRoleArn="arn:aws:iam::%s:role/backup" % acct)
    assert j["RecoveryPointArn"].endswith("/" + snap), j
    print(j["RecoveryPointArn"], n)
elif cmd == "status":         # VAULT RP -> COMPLETED|gone
    try:
        print(b.describe_recovery_point(BackupVaultName=args[0],
                                        RecoveryPointArn=args[1])["Status"])
    except b.exceptions.ResourceNotFoundException:
        print("gone")
EOF
moto() { py_moto "$@" <"$T/moto.py"; }

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

moto vault "$VAULT"
read -r RP_EXT4 N_EXT4 < <(moto upload "$VAULT" "$T/ext4.img")
read -r RP_RAW N_RAW < <(moto upload "$VAULT" "$T/raw.img")
log "vault $VAULT: $RP_EXT4 ($N_EXT4 blocks), $RP_RAW ($N_RAW blocks)"
[ "$N_RAW" = 7 ] || die "bad test: the raw image has $N_RAW written blocks, not 7"

CFG=$T/config.json
config() { # EXTRA-JSON-MEMBERS
	write_config "$CFG" "{
  \"vaults\": [{\"name\": \"prod\", \"type\": \"aws-backup\",
               \"backupVault\": \"$VAULT\", \"region\": \"us-east-1\",
               \"pollSeconds\": 3600}],
  \"destination\": \"s3://$BUCKET/arch\", \"stateDir\": \"$T/state\",
  \"autoDeleteSnapshot\": true $1}"
}

# --- config ------------------------------------------------------------------
config ', "ebs": {"method": "fast"}'
expect_fail "$VAULTFS" status --config "$CFG"
grep -q 'ebs.method: must be "direct" or "volume", got "fast"' "$FAIL_OUT" ||
	die "ebs.method fast: $(cat "$FAIL_OUT")"

# --- kill -9 while reading: the next start unmounts --------------------------
# one reader and a 1 MiB cache: slow enough to be caught mid-read
config ', "ebs": {"method": "direct", "concurrency": 1, "cacheSize": "1MiB"}, "compression": {"codec": "gzip", "level": 9, "threads": 1}'
VAULTFS_LOG=info "$VAULTFS" run --config "$CFG" --once >"$T/killed.out" 2>"$T/killed.err" &
KPID=$!
on_exit "kill -KILL $KPID 2>/dev/null; abort_ebs_fuse"
end=$((SECONDS + 60))
until grep -q "$T/state/ebs/snap-" /proc/self/mountinfo; do
	[ $SECONDS -lt $end ] && kill -0 "$KPID" 2>/dev/null ||
		die "bad test: no private EBS mount appeared"
	sleep 0.05
done
# Not `wait` yet: a thread of the killed daemon may be stuck in a read of
# its loop device, whose data its own, now dead, FUSE server was to give;
# the process then stays a zombie with that thread until the connection is
# aborted, which is the next start's work (release_stale). So: dead here,
# reaped after that start.
kill -KILL "$KPID" 2>/dev/null || true
end=$((SECONDS + 30))
while [ -e "/proc/$KPID" ] && [ "$(cut -d' ' -f3 "/proc/$KPID/stat" 2>/dev/null)" != Z ]; do
	[ $SECONDS -lt $end ] || die "the killed daemon did not die"
	sleep 0.05
done
grep -q "$T/state/ebs/snap-" /proc/self/mountinfo ||
	die "bad test: the private EBS mount went with the process"
log "killed while reading; the FUSE mount is left dead"

# --- run --once: both archived, verified, deleted ----------------------------
config ', "ebs": {"concurrency": 8, "cacheSize": "8MiB"}'
# "blocks/": GetSnapshotBlock only (ListSnapshotBlocks is "blocks?")
start_faultproxy_moto --throttle 3 --5xx 2 --match "blocks/"
AWS_ENDPOINT_URL_EBS=$FP_URL VAULTFS_LOG=info vf_run --config "$CFG" --once
[ "$(fp_stat throttles)" = 3 ] && [ "$(fp_stat 5xxs)" = 2 ] ||
	die "the proxy injected $(fp_stat throttles) throttles and $(fp_stat 5xxs) 5xx, not 3 and 2"
expect_grep 'GetSnapshotBlock.*attempt 1 of [0-9]* failed, retrying' "$RUN_ERR"
grep -q "$T/state/ebs/" /proc/self/mountinfo && die "a private EBS mount is left"
# the killed daemon's stuck threads are free now: it can be reaped
end=$((SECONDS + 30))
while [ "$(ls "/proc/$KPID/task" 2>/dev/null | wc -l)" -gt 1 ]; do
	[ $SECONDS -lt $end ] || die "the killed daemon's threads are still stuck"
	sleep 0.1
done
wait "$KPID" 2>/dev/null || true
[ -z "$(ls -A "$T/state/ebs")" ] || die "left in state/ebs: $(ls -A "$T/state/ebs")"
expect_grep 'unmounted .*/state/ebs/snap-.* \(left by an earlier run\)' "$RUN_ERR"
assert_released
[ "$(count_state "$T/state" succeeded)" = 2 ] || {
	vf status --config "$CFG" >&2
	die "not both jobs done"
}

check_s3_bucket "$BUCKET" "$T/dl"
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
	# deleted, and only after the full decode of its archive
	[ "$(moto status "$VAULT" "$rp")" = gone ] || die "$rp not deleted"
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
gzip -dc "$(dirname "$RAW_MAN")/rawbackup.gz" | cmp - "$T/raw.img" ||
	die "rawbackup.gz is not the volume"
log "raw: rawbackup.gz is the volume, holes as zeros"
