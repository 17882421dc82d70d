#!/bin/bash
# aws_backup: the aws-backup vault type against moto (recovery points from
# tests/tools/moto_backup.py, backed by real moto EBS snapshots; the queue
# is moto's SQS), archives to the S3 test server:
#   - discovery by poll: `run --once` queues every COMPLETED recovery point
#     (not a CREATING one, until it completes); status --json shows the
#     recovery point ARN as path and the volume ARN as resourceId; the job
#     archives the snapshot (an empty volume: rawbackup.gz, the EBS
#     restorer's own test is aws_ebs), and with autoDeleteSnapshot on the
#     point, whose security tag has another value, is kept
#   - throttling and 5xx on the listing (the fault proxy in front of
#     moto) are retried; past the last attempt the run fails with AWS's
#     error and the vault's name
#   - discovery by event: a Backup Job State Change in the queue makes the
#     job; a duplicate, an event for a recovery point the poll found, and
#     foreign events (another vault, state FAILED, resource type EFS) make
#     no other job and are deleted; a malformed message stays in the queue
#   - kill -9 between receiving a message and journaling its job: the
#     message comes back after its visibility timeout, the restarted daemon
#     reads it (same message id) and deletes it, and there is one job
#   - the security tag: the provider's delete path refuses a recovery point
#     without it or with another value, and deletes a tagged one (its moto
#     snapshot goes too) - through test_aws_backup's moto case, since no
#     job reaches a verified archive before the EBS restorer exists
#   - `vaultfs mount`: the recovery points in vaults/prod, info.json with
#     their tags and the volume's
#   - RDS and DynamoDB recovery points, with the database's and the
#     table's tags (RDS's Query, DynamoDB's JSON): their exports fail
#     clearly without rds.iamRoleArn and with point-in-time recovery off
#     (the exports themselves: aws_exports.sh)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_moto
need_fuse
test_timeout 240

SUFFIX=$$-$RANDOM
VAULT=vft-ab-$SUFFIX
QUEUE=vft-ab-$SUFFIX
make_bucket BUCKET

# The moto side, one subcommand per call.
cat >"$T/moto.py" <<'EOF'
import json
cmd, args = sys.argv[1], sys.argv[2:]
b, ec2, sqs = client("backup"), client("ec2"), client("sqs")
acct = client("sts").get_caller_identity()["Account"]

def event(vault, state, rp, rtype="EBS", dtype="Backup Job State Change"):
    return json.dumps({
        "version": "0", "id": "ev-%s" % rp[-8:], "detail-type": dtype,
        "source": "aws.backup", "account": acct, "region": "us-east-1",
        "resources": [rp],
        "detail": {"backupJobId": "job-1", "backupVaultName": vault,
                   "backupVaultArn": "arn:aws:backup:us-east-1:%s:backup-vault:%s" % (acct, vault),
                   "resourceType": rtype, "state": state,
                   "recoveryPointArn": rp}})

if cmd == "setup":            # VAULT QUEUE -> queue URL
    b.create_backup_vault(BackupVaultName=args[0])
    print(sqs.create_queue(QueueName=args[1],
                           Attributes={"VisibilityTimeout": "3"})["QueueUrl"])
elif cmd == "rp":             # VAULT TAGS-JSON... -> "RP-ARN VOLUME-ARN" each
    for tags in args[1:]:
        v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1,
                              TagSpecifications=[{"ResourceType": "volume",
                                                  "Tags": [{"Key": "team", "Value": "ops"}]}])
        vol = "arn:aws:ec2:us-east-1:%s:volume/%s" % (acct, v["VolumeId"])
        j = b.start_backup_job(BackupVaultName=args[0], ResourceArn=vol,
                               IamRoleArn="arn:aws:iam::%s:role/backup" % acct,
                               RecoveryPointTags=json.loads(tags))
        print(j["RecoveryPointArn"], vol)
elif cmd == "db":             # VAULT NAME -> "RP-ARN RESOURCE-ARN" for an RDS
    rds, ddb = client("rds"), client("dynamodb")   # instance and a table
    db = rds.create_db_instance(DBInstanceIdentifier=args[1], DBInstanceClass="db.t3.micro",
                                Engine="postgres", AllocatedStorage=5, MasterUsername="u",
                                MasterUserPassword="password1",
                                Tags=[{"Key": "team", "Value": "db"}])["DBInstance"]["DBInstanceArn"]
    tb = ddb.create_table(TableName=args[1], BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                          Tags=[{"Key": "team", "Value": "ddb"}])["TableDescription"]["TableArn"]
    for res in (db, tb):
        j = b.start_backup_job(BackupVaultName=args[0], ResourceArn=res,
                               IamRoleArn="arn:aws:iam::%s:role/backup" % acct)
        print(j["RecoveryPointArn"], res)
elif cmd == "send":           # QUEUE-URL "VAULT STATE RP [TYPE]"|"raw BODY"...
    for spec in args[1:]:     # -> one message id each
        kind, rest = spec.split(" ", 1)
        body = rest if kind == "raw" else event(kind, *rest.split(" "))
        print(sqs.send_message(QueueUrl=args[0], MessageBody=body)["MessageId"])
elif cmd == "count":          # QUEUE-URL -> messages visible or in flight
    a = sqs.get_queue_attributes(QueueUrl=args[0], AttributeNames=["All"])["Attributes"]
    print(int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]))
elif cmd == "status":         # VAULT RP... -> "STATUS|gone SNAPSHOT:there|gone"
    for rp in args[1:]:
        try:
            st = b.describe_recovery_point(BackupVaultName=args[0],
                                           RecoveryPointArn=rp)["Status"]
        except b.exceptions.ResourceNotFoundException:
            st = "gone"
        try:
            ec2.describe_snapshots(SnapshotIds=[rp.rsplit("/", 1)[1]])
            snap = "there"
        except Exception as e:
            snap = "gone" if "NotFound" in str(e) else "error: %s" % e
        print(st, snap)
EOF
moto() { py_moto "$@" <"$T/moto.py"; }
# wait_count N SECS: until the queue holds N messages (visible or in flight)
wait_count() {
	local end=$((SECONDS + $2)) n
	while :; do
		n=$(moto count "$QURL")
		[ "$n" = "$1" ] && return 0
		[ $SECONDS -lt $end ] || die "the queue holds $n messages, not $1"
		sleep 0.5
	done
}
# jobs_for ARN: how many jobs the journal has for that recovery point
jobs_for() {
	jstate "$T/state" 'j["recoveryPoint"]["path"]' | grep -cxF "$1" || true
}

QURL=$(moto setup "$VAULT" "$QUEUE")
{ read -r RP1 VOL1; read -r RPC _; } < <(moto rp "$VAULT" '{"vaultfs-archive": "no"}' '{}')
moto_rp_status "$VAULT" "$RPC" CREATING
log "vault $VAULT: $RP1 (of $VOL1), $RPC (CREATING); queue $QURL"

CFG=$T/config.json
write_config "$CFG" "{
  \"vaults\": [{\"name\": \"prod\", \"type\": \"aws-backup\",
               \"backupVault\": \"$VAULT\", \"region\": \"us-east-1\",
               \"queueUrl\": \"$QURL\", \"pollSeconds\": 3600}],
  \"destination\": \"s3://$BUCKET/arch\", \"stateDir\": \"$T/state\",
  \"securityTag\": {\"key\": \"vaultfs-archive\", \"value\": \"yes\"},
  \"autoDeleteSnapshot\": true}"

# --- discovery by poll ---------------------------------------------------
vf_run --config "$CFG" --once
expect_grep 'succeeded prod/snap-.*rawbackup.gz' "$RUN_OUT"
vf status --config "$CFG" --json >"$T/status.json"
python3 - "$T/status.json" "$RP1" "$VOL1" <<'EOF'
import json, sys
jobs = json.load(open(sys.argv[1]))
assert len(jobs) == 1, "one job (the CREATING point is not queued): %s" % jobs
j = jobs[0]
assert j["path"] == sys.argv[2], j
assert j["resourceId"] == sys.argv[3], j
assert j["recoveryPoint"] == sys.argv[2].rsplit("/", 1)[1], j
assert j["state"] == "succeeded", j
assert j["snapshotDeleted"] is False, j
EOF
vf status --config "$CFG" --wide >"$T/status.txt"
expect_grep 'snapshot kept: .*vaultfs-archive' "$T/status.txt"
[ "$(moto status "$VAULT" "$RP1")" = "COMPLETED there" ] ||
	die "$RP1 was deleted with another security tag value"

moto_rp_status "$VAULT" "$RPC" COMPLETED
vf_run --config "$CFG" --once
[ "$(jobs_for "$RPC")" = 1 ] || die "$RPC, completed now, has no job"
[ "$(jobs_for "$RP1")" = 1 ] || die "$RP1 has more than one job"
log "poll: COMPLETED points queued and archived, a CREATING one only once done"

# throttling and server errors on the listing: retried; past the last
# attempt, the run fails naming the vault and AWS's error
start_faultproxy_moto --throttle 2 --5xx 1 --match recovery-points
AWS_ENDPOINT_URL_BACKUP=$FP_URL vf_run --config "$CFG" --once
[ "$(fp_stat throttles)" = 2 ] && [ "$(fp_stat 5xxs)" = 1 ] ||
	die "the proxy's faults did not happen: $(cat "$FP_STATS")"
# (a journal of its own: the waiting jobs above would be tried again, and
# their inspect needs the listing too)
sed "s|$T/state|$T/state-throttled|" "$CFG" >"$T/throttled.json"
start_faultproxy_moto --throttle 100 --match "recovery-points/?maxResults"
AWS_ENDPOINT_URL_BACKUP=$FP_URL VAULTFS_AWS_MAX_ATTEMPTS=2 \
	vf_run_fails --config "$T/throttled.json" --once
expect_grep "vault \"prod\": backup: ThrottlingException" "$RUN_ERR"
[ -z "$(job_files "$T/state-throttled")" ] || die "the faults made jobs"
log "poll: throttling and 5xx retried, then a clear error"

# --- discovery by event ----------------------------------------------------
start_daemon "$CFG" VAULTFS_LOG=info
wait_line "$T/daemon.err" 'vault "prod": 2 recovery points listed' 30
read -r RP2 _ < <(moto rp "$VAULT" '{}')
# ours, a duplicate, the poll's; another vault, state, type; malformed
{ read -r M1; read -r M2; read -r M3; read -r F1; read -r F2; read -r F3
  read -r BAD; } < <(moto send "$QURL" "$VAULT COMPLETED $RP2" \
	"$VAULT COMPLETED $RP2" "$VAULT COMPLETED $RP1" \
	"other-vault COMPLETED $RP2" "$VAULT FAILED $RP2" \
	"$VAULT COMPLETED $RP2 EFS" \
	'raw {"source": "aws.backup", "detail-type": "Backup Job State Change", "detail": "trunc')
for m in "$F1" "$F2" "$F3"; do
	wait_line "$T/daemon.err" "queue message $m is not for it .*: deleted" 30
done
for m in "$M1" "$M2" "$M3"; do
	wait_line "$T/daemon.err" "queue message $m: Backup Job State Change" 30
done
wait_line "$T/daemon.err" "queue message $BAD \(received [0-9]+ times\) is not an AWS Backup event .*left for the queue's redrive policy" 30
# everything acknowledged but the malformed one
wait_count 1 30
[ "$(jobs_for "$RP2")" = 1 ] || die "$RP2: $(jobs_for "$RP2") jobs from two events"
[ "$(jobs_for "$RP1")" = 1 ] || die "$RP1: an event made a second job"
[ "$(job_files "$T/state" | wc -l)" = 3 ] || die "jobs: $(job_files "$T/state" | wc -l), want 3"
log "events: jobs made, stopping"
stop_daemon
log "events: one job per recovery point, foreign ones deleted, the malformed one kept"

# --- kill -9 between receiving a message and journaling it ---------------
# no `timeout` in between: SIGKILL must reach vaultfs itself (the pause
# ends by itself after 60 s, and the exit trap kills it)
VAULTFS_LOG=info VAULTFS_TEST_AWS_RECEIVED_PAUSE_MS=60000 \
	"$VAULTFS" run --config "$CFG" >"$T/paused.out" 2>"$T/paused.err" &
KPID=$!
on_exit "kill -KILL $KPID 2>/dev/null"
wait_line "$T/paused.err" 'vault "prod": 3 recovery points listed' 30
read -r RP3 _ < <(moto rp "$VAULT" '{}')
M4=$(moto send "$QURL" "$VAULT COMPLETED $RP3")
wait_line "$T/paused.err" "test: message $M4 received, pausing" 30
{ kill -KILL "$KPID" && wait "$KPID"; } 2>/dev/null || true
! grep -qE 'Sanitizer|runtime error:' "$T/paused.err" || die "sanitizer report before the kill"
[ "$(jobs_for "$RP3")" = 0 ] || die "$RP3 was journaled before the kill"
# the message is in flight, not lost
[ "$(moto count "$QURL")" = 2 ] || die "the queue lost the received message"
start_daemon "$CFG" VAULTFS_LOG=info
wait_line "$T/daemon.err" "queue message $M4: Backup Job State Change $RP3" 30
wait_count 1 30
[ "$(jobs_for "$RP3")" = 1 ] || die "$RP3: $(jobs_for "$RP3") jobs after the restart"
stop_daemon
log "kill -9: the message came back after its visibility timeout, one job"

# --- the view --------------------------------------------------------------
MP=$T/mnt
mkdir -p "$MP"
mount_view "$MP" "$CFG"
NAME1=${RP1##*/}
ls "$MP/vaults/prod" >"$T/ls"
for rp in "$RP1" "$RPC" "$RP2" "$RP3"; do
	grep -qxF "${rp##*/}" "$T/ls" || die "${rp##*/} is not in vaults/prod"
done
python3 - "$MP/vaults/prod/$NAME1/info.json" "$RP1" "$VOL1" <<'EOF'
import json, sys
i = json.load(open(sys.argv[1]))
assert i["path"] == sys.argv[2] and i["resourceId"] == sys.argv[3], i
assert i["type"] == "ebs-snapshot" and i["status"] == "COMPLETED", i
assert i["tags"] == {"vaultfs-archive": "no"}, i["tags"]
assert i["resourceTags"] == {"team": "ops"}, i.get("resourceTags")
assert "waiting" not in i, i
EOF
expect_grep '^state: succeeded' "$MP/vaults/prod/$NAME1/status"
unmount_view
log "view: recovery points listed, info.json with both kinds of tags"

# --- the security tag on the delete path -----------------------------------
{ read -r RPN _; read -r RPW _; read -r RPOK _; } < <(moto rp "$VAULT" \
	'{}' '{"vaultfs-archive": "no"}' '{"vaultfs-archive": "yes"}')
AWSB_TEST_VAULT=$VAULT AWSB_TEST_RP_NOTAG=$RPN AWSB_TEST_RP_WRONG=$RPW \
	AWSB_TEST_RP_OK=$RPOK "${VAULTFS_BUILD:-build}/tests/test_aws_backup" \
	>"$T/delete.out" 2>&1 || { cat "$T/delete.out" >&2; die "the delete path"; }
expect_grep 'aws_backup delete path: checked against moto' "$T/delete.out"
if grep -q SKIPPED "$T/delete.out"; then die "the moto delete case was skipped"; fi
moto status "$VAULT" "$RPN" "$RPW" "$RPOK" >"$T/after"
printf '%s\n' "COMPLETED there" "COMPLETED there" "gone gone" | diff - "$T/after" ||
	die "after the deletes: untagged, other value, tagged (recovery point, EBS snapshot)"
log "security tag: refused without it or with another value, deleted with it"
# --- RDS and DynamoDB recovery points --------------------------------------
VAULT_DB=vft-ab-db-$SUFFIX
moto setup "$VAULT_DB" "$QUEUE-db" >/dev/null
{ read -r RPDB DB; read -r RPTB TB; } < <(moto db "$VAULT_DB" "vft-ab-$SUFFIX")
CFG_DB=$T/db.json
write_config "$CFG_DB" "{
  \"vaults\": [{\"name\": \"db\", \"type\": \"aws-backup\",
               \"backupVault\": \"$VAULT_DB\", \"resourceTypes\": [\"RDS\", \"DynamoDB\"]}],
  \"destination\": \"s3://$BUCKET/arch\", \"stateDir\": \"$T/state-db\"}"
vf_run_fails --config "$CFG_DB" --once
jstate "$T/state-db" 'j["state"]' 'j["lastError"]' >"$T/db.jobs"
expect_grep '^failed	config: rds.iamRoleArn: missing: exporting an RDS or Aurora snapshot needs the IAM role' "$T/db.jobs"
expect_grep "^failed	table $TB: point-in-time recovery is disabled" "$T/db.jobs"
mount_view "$MP" "$CFG_DB"
python3 - "$MP/vaults/db" "$RPDB" "$DB" "$RPTB" "$TB" <<'EOF'
import json, sys
d = sys.argv[1]
for rp, res, rtype, team in ((sys.argv[2], sys.argv[3], "rds-snapshot", "db"),
                             (sys.argv[4], sys.argv[5], "dynamodb-backup", "ddb")):
    name = rp.rsplit("/", 1)[1] if "/" in rp else rp.split(":", 6)[6]
    i = json.load(open("%s/%s/info.json" % (d, name)))
    assert i["path"] == rp and i["resourceId"] == res and i["type"] == rtype, i
    assert i["resourceTags"] == {"team": team}, i
EOF
unmount_view
log "RDS and DynamoDB: a missing rds.iamRoleArn and PITR off are clear errors, their resources' tags shown"
