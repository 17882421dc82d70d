#!/bin/bash
# aws_ebs_volume: EBS recovery points of an aws-backup vault restored to a
# volume (ebs.method "volume", the seed's way) on moto:
#   - this "instance" is one made in moto with RunInstances; its id and zone
#     come from IMDSv2 (tests/tools/metadata_server.py); moto attaches no
#     disk, so tests/tools/ebs_hypervisor.py plays the hypervisor: a volume
#     attached gets a read-only loop device of its snapshot's image, linked
#     as DEVROOT/disk/by-id/nvme-Amazon_Elastic_Block_Store_volXXX
#     (ebs.deviceRoot = DEVROOT)
#   - the device cannot be matched to the volume (a device is there, under
#     another serial): the job fails saying so, the volume is deleted
#   - kill -9 after the journal entry, after CreateVolume (the volume has
#     gp3, the configured tags, the security tag and the token tag), after
#     AttachVolume, and mid-archive: each next start detaches and deletes
#     the volume left over, and the last one archives: backup.tar.gz under
#     the seed's layout, verified, stock tar extracts the source tree, the
#     recovery point deleted (autoDeleteSnapshot); no volume, loop device
#     or mount is left
#   - CreateVolume's answer lost (the fault proxy in front of EC2), in the
#     unmatched case: the retry with the same ClientToken makes no second
#     volume
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_moto
need_loop
need_tools mkfs.ext4 losetup

SUFFIX=$$-$RANDOM
VAULT=vft-ebsvol-$SUFFIX
BADVAULT=vft-ebsvol-bad-$SUFFIX
make_bucket BUCKET
DEVROOT=$T/devroot
MiB=$((1 << 20))

# --- the source tree and its image ---------------------------------------
F=$T/files
make_files "$F"
truncate -s 1G "$T/ext4.img"
mkfs.ext4 -q -F -L vfebsvol -d "$F" "$T/ext4.img" 32M || die "mkfs.ext4 -d failed"

# one boto3 start (seconds on a busy machine): the instance, and the two
# recovery points; the volume method never reads the snapshots' blocks
# (the hypervisor serves the image), so each gets the first block only
py_moto "$BADVAULT" "$VAULT" "$T/ext4.img" >"$T/setup.out" <<'EOF'
import base64, hashlib
b, ec2, ebs = client("backup"), client("ec2"), client("ebs")
acct = client("sts").get_caller_identity()["Account"]
ami = ec2.describe_images()["Images"][0]["ImageId"]
i = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                      Placement={"AvailabilityZone": "us-east-1b"})
i = i["Instances"][0]
print(i["InstanceId"], i["Placement"]["AvailabilityZone"])
data = open(sys.argv[3], "rb").read(512 * 1024)
for vault in sys.argv[1:3]:
    b.create_backup_vault(BackupVaultName=vault)
    snap = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    ebs.put_snapshot_block(
        SnapshotId=snap, BlockIndex=0, BlockData=data, DataLength=len(data),
        ChecksumAlgorithm="SHA256",
        Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode())
    ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=1)
    vol = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["VolumeId"]
    j = b.start_backup_job(BackupVaultName=vault,
                           ResourceArn="arn:aws:ec2:us-east-1:%s:volume/%s" % (acct, vol),
                           IamRoleArn="arn:aws:iam::%s:role/backup" % acct,
                           RecoveryPointTags={"vaultfs-ok": "yes"})
    print(j["RecoveryPointArn"], snap)
EOF
{ read -r INSTANCE ZONE; read -r BADRP BADSNAP; read -r RP SNAP; } <"$T/setup.out"
log "instance $INSTANCE in $ZONE; $RP; unmatched: $BADRP"

# volumes SNAPSHOT: one line per volume made from it, "ID TYPE/IOPS/
# THROUGHPUT ZONE STATE ATTACHMENT-STATE|- KEY=VALUE,..." (EC2 DescribeVolumes with curl: no
# boto3 start)
volumes() {
	curl -fsS --max-time 10 --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:ec2" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		--data "Action=DescribeVolumes&Version=2016-11-15&Filter.1.Name=snapshot-id&Filter.1.Value.1=$1" \
		"$AWS_ENDPOINT_URL/" >"$T/volumes.xml" || die "DescribeVolumes failed"
	python3 - "$T/volumes.xml" <<'EOF'
import re, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = re.match(r"\{.*\}", root.tag)
ns = ns.group(0) if ns else ""
for v in root.iterfind(ns + "volumeSet/" + ns + "item"):
    tags = sorted("%s=%s" % (t.findtext(ns + "key"), t.findtext(ns + "value"))
                  for t in v.iterfind(ns + "tagSet/" + ns + "item"))
    att = v.find(ns + "attachmentSet/" + ns + "item")
    print(v.findtext(ns + "volumeId"),
          "/".join(v.findtext(ns + k) or "-"
                   for k in ("volumeType", "iops", "throughput")),
          v.findtext(ns + "availabilityZone"), v.findtext(ns + "status"),
          att.findtext(ns + "status") if att is not None else "-",
          ",".join(tags))
EOF
}

# --- this instance's metadata, and its hypervisor ------------------------
python3 "$VAULTFS_SRC/tests/tools/metadata_server.py" \
	--instance-id "$INSTANCE" --availability-zone "$ZONE" \
	--region us-east-1 >"$T/md.out" 2>"$T/md.err" &
MD_PID=$!
on_exit "kill $MD_PID"
wait_line "$T/md.out" '^PORT [0-9]+$' 10
MD=http://127.0.0.1:$(sed -n 's/^PORT //p' "$T/md.out")

"$PY" "$VAULTFS_SRC/tests/tools/ebs_hypervisor.py" --instance "$INSTANCE" \
	--root "$DEVROOT" --map "$SNAP=$T/ext4.img" --map "$BADSNAP=$T/ext4.img" \
	--wrong "$BADSNAP" --log "$T/hv.log" >/dev/null 2>"$T/hv.err" &
HV_PID=$!
on_exit "kill $HV_PID; wait $HV_PID"
wait_line "$T/hv.log" '^ready$' 20

# vaultfs on "this instance": IMDS answers (the keys in the environment
# come first, so credentials never come from it)
unset AWS_EC2_METADATA_DISABLED
export AWS_EC2_METADATA_SERVICE_ENDPOINT=$MD VAULTFS_LOG=info
config() { # FILE VAULT STATE EXTRA-JSON-MEMBERS
	write_config "$1" "{
  \"vaults\": [{\"name\": \"prod\", \"type\": \"aws-backup\",
               \"backupVault\": \"$2\", \"region\": \"us-east-1\",
               \"pollSeconds\": 3600}],
  \"destination\": \"s3://$BUCKET/arch\", \"stateDir\": \"$3\",
  \"tags\": {\"team\": \"storage\"},
  \"securityTag\": {\"key\": \"vaultfs-ok\", \"value\": \"yes\"},
  \"maxAttempts\": 10, \"autoDeleteSnapshot\": true,
  \"ebs\": {\"method\": \"volume\", \"deviceRoot\": \"$DEVROOT\",
           \"deviceTimeoutSeconds\": 2, \"iops\": 4000, \"throughput\": 250} ${4:-}}"
}
no_volumes() { # SNAPSHOT
	local v
	v=$(volumes "$1")
	[ -z "$v" ] || die "volumes of $1 left: $v"
}

# --- a device that is not the volume's: never taken ----------------------
# and CreateVolume's answer lost (a new job's second EC2 call, after the
# resource's DescribeTags): the retry, with the same ClientToken, makes no
# second volume
config "$T/bad.json" "$BADVAULT" "$T/badstate"
start_faultproxy_moto --drop-answer POST --drop-answer-at 2
AWS_ENDPOINT_URL_EC2=$FP_URL vf_run_fails --config "$T/bad.json" --once
[ "$(fp_stat dropped)" = 1 ] || die "the proxy dropped $(fp_stat dropped) answers, not 1"
expect_grep "ec2: CreateVolume: attempt 1 of [0-9]* failed, retrying" "$RUN_ERR"
expect_grep "volume vol-[0-9a-f]* is attached as /dev/sd[f-p], but no block device matches it after 2 s" "$RUN_ERR"
expect_grep "ebs: volume vol-[0-9a-f]* deleted" "$RUN_ERR"
no_volumes "$BADSNAP"
grep -q "^attached vol-" "$T/hv.log" || die "bad test: the hypervisor made no device"
assert_released
log "unmatched device: failed, the one volume deleted"

# --- kill -9 at each step; each next start cleans up ---------------------
CFG=$T/config.json
config "$CFG" "$VAULT" "$T/state"
# run_killed STEP-ENV PATTERN: start, wait for PATTERN on stderr, kill -9
run_killed() {
	local err=$T/killed.$_killed.err
	_killed=$((_killed + 1))
	env "$1" "$VAULTFS" run --config "$CFG" --once >/dev/null 2>"$err" &
	KPID=$!
	wait_line "$err" "$2" 30
	kill -KILL "$KPID"
	wait "$KPID" 2>/dev/null || true
	KILLED_ERR=$err
}
_killed=0
on_exit 'kill -KILL $KPID 2>/dev/null'

run_killed VAULTFS_TEST_EBS_PAUSE_AT=journaled:30 'test: ebs volume paused at journaled'
no_volumes "$SNAP"

run_killed VAULTFS_TEST_EBS_PAUSE_AT=created:30 'test: ebs volume paused at created'
VOLS=$(volumes "$SNAP")
[ "$(wc -l <<<"$VOLS")" = 1 ] || die "after CreateVolume: $VOLS"
read -r VOL1 TYPE AZ STATE ATT TAGS <<<"$VOLS"
[ "$TYPE" = gp3/4000/250 ] && [ "$AZ" = "$ZONE" ] && [ "$STATE" = available ] ||
	die "volume: $VOLS (want gp3/4000/250 in $ZONE, available)"
JOB=$(jstate "$T/state" 'j["id"]')
[[ ",$TAGS," == *,team=storage,* && ",$TAGS," == *,vaultfs-ok=yes,* &&
	",$TAGS," == *",vaultfs:token=$JOB-"* ]] ||
	die "volume tags: $TAGS (want the config's, the security tag, the token)"

run_killed VAULTFS_TEST_EBS_PAUSE_AT=attached:30 'test: ebs volume paused at attached'
expect_grep "ebs: volume $VOL1 released \(left by an earlier run\)" "$KILLED_ERR"
VOLS=$(volumes "$SNAP")
[ "$(wc -l <<<"$VOLS")" = 1 ] || die "after AttachVolume: $VOLS"
read -r VOL2 TYPE AZ STATE ATT TAGS <<<"$VOLS"
[ "$ATT" = attached ] || die "not attached: $VOLS"
wait_line "$T/hv.log" "^attached $VOL2 " 10

run_killed VAULTFS_TEST_PAUSE_AT=writing:30 'test: job .* paused at writing'
expect_grep "ebs: volume $VOL2 released \(left by an earlier run\)" "$KILLED_ERR"
expect_grep "detached $VOL2" "$T/hv.log"
read -r VOL3 _ <<<"$(volumes "$SNAP")"
[ -n "$VOL3" ] && [ "$VOL3" != "$VOL2" ] || die "no new volume mid-archive"
MNT=$(sed -n 's/.* read-only on \(\/[^ ]*\) with .*/\1/p' "$KILLED_ERR" | head -1)
[ -n "$MNT" ] && grep -qF " $MNT " /proc/self/mountinfo ||
	die "bad test: nothing mounted mid-archive"

# --- the last start: cleans up, archives ---------------------------------
vf_run --config "$CFG" --once
expect_grep "ebs: volume $VOL3 released \(left by an earlier run\)" "$RUN_ERR"
expect_grep "ebs: volume vol-[0-9a-f]* deleted" "$RUN_ERR"
[ "$(count_state "$T/state" succeeded)" = 1 ] || die "the job did not succeed"
no_volumes "$SNAP"
[ "$(grep -c "^attached " "$T/hv.log")" = 4 ] ||
	die "devices made: $(grep "^attached " "$T/hv.log") (want 4: bad, attached, writing, last)"
assert_released
! grep -qF " $MNT " /proc/self/mountinfo || die "$MNT is still mounted"

# the archive vaultfs verified (decoded against its manifest), read back
URL=$(sed -n 's/.*: succeeded: \(s3:\/\/.*\/backup\.tar\.gz\)$/\1/p' "$RUN_ERR")
[ -n "$URL" ] || die "no backup.tar.gz in the run's log"
expect_grep "verified $URL" "$RUN_ERR"
# autoDeleteSnapshot, the security tag on the recovery point: deleted,
# after the volume and the verification
v=$(grep -n "verified $URL" "$RUN_ERR" | tail -1 | cut -d: -f1)
d=$(grep -n "deleted recovery point $RP " "$RUN_ERR" | cut -d: -f1)
[ -n "$d" ] && [ "$d" -gt "$v" ] || die "$RP not deleted after its verification"
case $URL in
"s3://$BUCKET/arch/arn/aws/ec2/us-east-1/"*/volume/vol-*/Y=*/M=*/D=*/*/backup.tar.gz) ;;
*) die "not the seed's key layout: $URL" ;;
esac
vf s3 cp "$URL" "$T/backup.tar.gz" || die "cannot download $URL"
vf s3 cp "${URL%/*}/manifest.json" "$T/manifest.json" || die "no manifest"
MAN=$T/manifest.json
[ "$(mjson "$MAN" 'm["source"]["method"]')" = ebs-volume ] || die "manifest: source.method"
[ "$(mjson "$MAN" 'm["source"]["snapshotId"]')" = "$SNAP" ] || die "manifest: snapshotId"
[ "$(mjson "$MAN" 'm["method"]')" = tree ] || die "not archived as a tree"
X=$T/x
mkdir -p "$X"
tar -xzf "$T/backup.tar.gz" -C "$X" --xattrs --xattrs-include='*' \
	--numeric-owner --same-permissions || die "tar -x failed"
same_tree "$F" "$X" --no-root --exclude lost+found --no-dir-mtime
log "archived through a volume: the files equal the source; no volume left"
