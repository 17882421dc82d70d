#!/bin/bash
# aws_exports: RDS, Aurora and DynamoDB recovery points of an aws-backup
# vault (tests/tools/moto_backup.py) exported by their services into the
# S3 test server, through the job engine (provider.h, "Exports"):
#   - `vaultfs mount`: `touch export` on an RDS snapshot, an Aurora cluster
#     snapshot and a DynamoDB backup; `cat status` shows `state:
#     exporting` and the export task; each ends succeeded under the seed's
#     key layout with manifest.json beside the export's own manifests, and
#     its recovery point is deleted (autoDeleteSnapshot, security tag)
#   - cancel: an RDS export is cancelled with CancelExportTask and the job
#     ends cancelled; a DynamoDB one cannot be: EINVAL, the reason in the
#     job's log and in status
#   - a FAILED export (DynamoDB into a bucket the service cannot write:
#     moto's own S3 lacks it) ends the job failed with the service's cause
#   - verification: a data file that manifest-files.json names is missing:
#     the job fails naming it, the recovery point is kept
#   - kill -9 between journaling the task and StartExportTask, and after
#     it: the restarted engine follows the one task, never starts a second
# (missing rds.iamRoleArn and point-in-time recovery disabled: aws_backup.sh)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_moto
need_fuse
test_timeout 240

S=$$-$RANDOM
make_bucket BUCKET

cat >"$T/moto.py" <<'EOF'
import json
cmd, args = sys.argv[1], sys.argv[2:]
b = client("backup")
acct = client("sts").get_caller_identity()["Account"]
TAG = {"vaultfs": "yes"}

def backup(vault, res):
    return b.start_backup_job(BackupVaultName=vault, ResourceArn=res,
                              IamRoleArn="arn:aws:iam::%s:role/backup" % acct,
                              RecoveryPointTags=TAG)["RecoveryPointArn"]

if cmd == "vault":            # VAULT...
    for v in args:
        b.create_backup_vault(BackupVaultName=v)
elif cmd == "rds":            # VAULT NAME -> RP-ARN of a new DB snapshot
    rds = client("rds")
    try:
        rds.describe_db_instances(DBInstanceIdentifier=args[1])
    except rds.exceptions.DBInstanceNotFoundFault:
        rds.create_db_instance(DBInstanceIdentifier=args[1], DBInstanceClass="db.t3.micro",
                               Engine="postgres", AllocatedStorage=5, MasterUsername="u",
                               MasterUserPassword="password1")
    db = rds.describe_db_instances(DBInstanceIdentifier=args[1])["DBInstances"][0]
    print(backup(args[0], db["DBInstanceArn"]))
elif cmd == "aurora":         # VAULT NAME -> RP-ARN of a cluster snapshot
    rds = client("rds")
    c = rds.create_db_cluster(DBClusterIdentifier=args[1], Engine="aurora-postgresql",
                              MasterUsername="u", MasterUserPassword="password1")
    print(backup(args[0], c["DBCluster"]["DBClusterArn"]))
elif cmd == "ddb":            # VAULT TABLE N -> N RP-ARNs of backups of a
    ddb = client("dynamodb")  # table with point-in-time recovery
    t = ddb.create_table(TableName=args[1], BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    ddb.update_continuous_backups(TableName=args[1], PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})
    for _ in range(int(args[2])):
        print(backup(args[0], t["TableDescription"]["TableArn"]))
elif cmd == "tasks":          # SOURCE-ARN -> "N STATUS..." of its export tasks
    ts = [t for t in client("rds").describe_export_tasks()["ExportTasks"]
          if t["SourceArn"] == args[0]]
    print(len(ts), *[t["Status"].upper() for t in ts])
elif cmd == "rp":             # VAULT RP... -> the status of each, or gone
    for rp in args[1:]:
        try:
            print(b.describe_recovery_point(BackupVaultName=args[0],
                                            RecoveryPointArn=rp)["Status"])
        except b.exceptions.ResourceNotFoundException:
            print("gone")
elif cmd == "mkbucket":       # BUCKET in moto's own S3 (DynamoDB writes there)
    client("s3").create_bucket(Bucket=args[0])
EOF
moto() { py_moto "$@" <"$T/moto.py"; }

# What the services would write: moto completes an export without writing
# its files into our bucket, so the test writes them, as AWS lays them out.
#   write_export rds|ddb PREFIX JOB RESOURCE TASK [SKIP-FILE]
cat >"$T/write.py" <<'EOF'
import gzip, hashlib, json, re
kind, prefix, job, res, task = sys.argv[1:6]
skip = sys.argv[6] if len(sys.argv) > 6 else ""
# the seed's key layout (orchestrator/keys.h): the ARN split into folders
d = "%s/%s/Y=%s/M=%s/D=%s/%s/" % (prefix, "/".join(re.split("[:/]", res)),
                                  job[0:4], job[4:6], job[6:8], job)
def put(key, body):
    if key.rsplit("/", 1)[-1] != skip:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return hashlib.md5(body).hexdigest()
if kind == "rds":
    f = d + task + "/"
    put(f + "orders/public.items/1/part-00000-a.gz.parquet", b"PAR1" + b"x" * 1000)
    put(f + "orders/public.users/1/part-00000-b.gz.parquet", b"PAR1" + b"y" * 500)
    put(f + "export_tables_info_%s_from_1_to_2.json" % task, json.dumps({"perTableStatus": [
        {"target": "orders.public.items", "status": "COMPLETE", "sizeGB": 0.0},
        {"target": "orders.public.users", "status": "COMPLETE", "sizeGB": 0.0}]}).encode())
    put(f + "export_info_%s.json" % task, json.dumps({
        "exportTaskIdentifier": task, "status": "COMPLETE", "percentProgress": 100,
        "totalExtractedDataInGB": 0}).encode())
else:
    f = d + "AWSDynamoDB/" + task.rsplit("/", 1)[-1] + "/"
    lines = []
    for name, items in (("a", 2), ("b", 1)):
        body = gzip.compress(b"".join(b'{"Item":{"k":{"S":"%s%d"}}}\n' % (name.encode(), i)
                                      for i in range(items)))
        etag = put(f + "data/%s.json.gz" % name, body)
        lines.append(json.dumps({"itemCount": items, "md5Checksum": "", "etag": etag,
                                 "dataFileS3Key": f + "data/%s.json.gz" % name}))
    put(f + "manifest-files.json", ("\n".join(lines) + "\n").encode())
    put(f + "manifest-summary.json", json.dumps({
        "version": "2020-06-30", "exportArn": task, "itemCount": 3,
        "outputFormat": "DYNAMODB_JSON", "manifestFilesS3Key": f + "manifest-files.json"}).encode())
print(f)
EOF
write_export() { BUCKET=$BUCKET py_s3 "$@" <"$T/write.py"; }

V=vfx-$S
moto vault "$V" "$V-ka" "$V-kb"
RP_RDS=$(moto rds "$V" "vfx-rds-$S")
RP_CANCEL=$(moto rds "$V" "vfx-rds-$S")
RP_AUR=$(moto aurora "$V" "vfx-aur-$S")
{ read -r RP_DFAIL; read -r RP_DDB; read -r RP_DMISS; } < <(moto ddb "$V" "vfx-ddb-$S" 3)
RP_KA=$(moto rds "$V-ka" "vfx-rds-$S")
RP_KB=$(moto rds "$V-kb" "vfx-rds-$S")
log "vault $V: RDS $RP_RDS, Aurora $RP_AUR, DynamoDB $RP_DDB ..."

# config VAULT STATE: the three types exported into BUCKET/exp
config() {
	write_config "$T/$2.json" "{
  \"vaults\": [{\"name\": \"db\", \"type\": \"aws-backup\", \"backupVault\": \"$1\",
               \"region\": \"us-east-1\", \"pollSeconds\": 3600}],
  \"destination\": \"s3://$BUCKET/exp\", \"stateDir\": \"$T/$2\",
  \"autoStart\": $3, \"autoDeleteSnapshot\": true,
  \"securityTag\": {\"key\": \"vaultfs\", \"value\": \"yes\"},
  \"rds\": {\"iamRoleArn\": \"arn:aws:iam::123456789012:role/vaultfs-export\",
           \"kmsKeyId\": \"alias/vaultfs-export\"},
  \"dynamodb\": {\"exportFormat\": \"DYNAMODB_JSON\"}}"
}
config "$V" state false
export VAULTFS_TEST_EXPORT_POLL_MS=200
MP=$T/mnt
VAULTFS_LOG=info VAULTFS_TEST_PAUSE_AT=export-started:60 mount_view "$MP" "$T/state.json"
D=$MP/vaults/db
name_of() { case $1 in *:cluster-snapshot:*) echo "${1#*:cluster-snapshot:}" ;;
	*:snapshot:*) echo "${1#*:snapshot:}" ;; *) echo "${1##*/}" ;; esac; }
field() { sed -n "s/^$2: //p" "$D/$(name_of "$1")/status"; }
go_on() { touch "$T/state/continue-export-started"; }
# started RP: touch export, until the task is recorded and the job paused
started() {
	touch "$D/$(name_of "$1")/export"
	wait_for 30 grep -q '^export task: ' "$D/$(name_of "$1")/status"
	expect_grep '^state: exporting' "$D/$(name_of "$1")/status"
	JOB=$(field "$1" job)
	TASK=$(field "$1" "export task")
}
ends() { # RP STATE
	wait_for 60 grep -q "^state: $2\$" "$D/$(name_of "$1")/status"
	cat "$D/$(name_of "$1")/status" >"$T/status.last"
}

# --- a FAILED export: the service's cause -------------------------------------
# (moto's DynamoDB writes into moto's own S3, which lacks the bucket yet)
started "$RP_DFAIL"
go_on
ends "$RP_DFAIL" failed
expect_grep "^error: .*failed: S3NoSuchBucket" "$T/status.last"
[ "$(moto rp "$V" "$RP_DFAIL")" = COMPLETED ] || die "the failed one's snapshot went"
log "FAILED: the job failed with the service's cause"

# --- RDS, Aurora, DynamoDB: succeeded ---------------------------------------
moto mkbucket "$BUCKET"
for rp in "$RP_RDS" "$RP_AUR" "$RP_DDB"; do
	started "$rp"
	res=$(field "$rp" resource)
	kind=rds
	case $rp in *dynamodb*) kind=ddb ;; esac
	if [ $kind = ddb ]; then
		# DynamoDB cannot cancel: refused, and said so
		if touch "$D/$(name_of "$rp")/cancel" 2>"$T/cancel.err"; then
			die "cancelling a DynamoDB export was accepted"
		fi
		expect_grep 'Invalid argument' "$T/cancel.err"
		expect_grep '^cancel: not possible: DynamoDB exports cannot be cancelled' \
			"$D/$(name_of "$rp")/status"
		expect_grep 'cancel refused: DynamoDB exports cannot be cancelled' \
			"$T/state/jobs/$JOB.log"
	else
		[ "$TASK" = "vaultfs-$(echo "$JOB" | tr 'A-Z.' 'a-z-')" ] ||
			die "task $TASK is not named from job $JOB"
	fi
	folder=$(write_export $kind exp "$JOB" "$res" "$TASK")
	go_on
	ends "$rp" succeeded
	expect_grep "^result: s3://$BUCKET/$folder\$" "$T/status.last"
	expect_grep '^snapshot: deleted' "$T/status.last"
	echo "$folder" | grep -qE '^exp/arn/aws/(rds|dynamodb)/us-east-1/[0-9]+/.*/Y=[0-9]{4}/M=[0-9]{2}/D=[0-9]{2}/[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8}/' ||
		die "$folder is not under the seed's key layout"
	vf s3 cp "s3://$BUCKET/${folder}manifest.json" "$T/m.json"
	python3 - "$T/m.json" "$JOB" "$TASK" $kind <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["kind"] == "export" and m["job"]["id"] == sys.argv[2], m
x = m["export"]
assert x["task"] == sys.argv[3], x
if sys.argv[4] == "rds":
    assert x["tables"] == 2 and x["files"] == 4, x
else:
    assert x["items"] == 3 and x["files"] == 2, x
assert m["bytes_written"] == x["bytes"] > 0, m
EOF
	log "$kind: exported, verified, manifest.json beside it, recovery point deleted"
done
[ "$(moto rp "$V" "$RP_RDS" "$RP_AUR" "$RP_DDB" | sort -u)" = gone ] ||
	die "recovery points left: $(moto rp "$V" "$RP_RDS" "$RP_AUR" "$RP_DDB")"
[ "$(moto tasks "$RP_RDS")" = "1 COMPLETE" ] || die "RDS tasks: $(moto tasks "$RP_RDS")"

# --- cancel: CancelExportTask ------------------------------------------------
started "$RP_CANCEL"
touch "$D/$(name_of "$RP_CANCEL")/cancel"
ends "$RP_CANCEL" cancelled
[ "$(moto tasks "$RP_CANCEL")" = "1 CANCELED" ] ||
	die "cancelled task: $(moto tasks "$RP_CANCEL")"
[ "$(moto rp "$V" "$RP_CANCEL")" = COMPLETED ] || die "the cancelled one's snapshot went"
log "cancel: CancelExportTask, the job cancelled, the snapshot kept"

# --- verification: a named data file is missing ------------------------------
started "$RP_DMISS"
write_export ddb exp "$JOB" "$(field "$RP_DMISS" resource)" "$TASK" b.json.gz >/dev/null
go_on
ends "$RP_DMISS" failed
expect_grep '^error: verify export .*data/b.json.gz, named by manifest-files.json line 2: missing$' \
	"$T/status.last"
[ "$(moto rp "$V" "$RP_DMISS")" = COMPLETED ] || die "a snapshot went without its proof"
unmount_view
log "verification: a missing data file fails the job, the snapshot is kept"

# --- kill -9 before and after StartExportTask ---------------------------------
# no `timeout` in between: SIGKILL must reach vaultfs itself
kill_at() { # VAULT STATE STAGE RP -> the task journaled; vaultfs killed there
	local st=$2
	config "$1" "$st" true
	VAULTFS_LOG=info VAULTFS_TEST_PAUSE_AT=$3:60 "$VAULTFS" run --config "$T/$st.json" \
		>"$T/$st.out" 2>"$T/$st.err" &
	KPID=$!
	on_exit "kill -KILL $KPID 2>/dev/null"
	wait_line "$T/$st.err" "test: job .* paused at $3" 30
	{ kill -KILL "$KPID" && wait "$KPID"; } 2>/dev/null || true
	! grep -qE 'Sanitizer|runtime error:' "$T/$st.err" || die "sanitizer report before the kill"
	read -r JOB TASK RES < <(jstate "$T/$st" 'j["id"]' 'j["export"]["task"]' \
		'j["recoveryPoint"]["resourceId"]' | tr '\t' ' ')
	write_export rds exp "$JOB" "$RES" "$TASK" >/dev/null
}
kill_at "$V-ka" ka export-recorded "$RP_KA"
[ "$(moto tasks "$RP_KA")" = 0 ] || die "a task started before the call: $(moto tasks "$RP_KA")"
VAULTFS_LOG=info vf_run --config "$T/ka.json" --once
[ "$(jstate "$T/ka" 'j["state"]' 'j["export"]["task"]')" = "succeeded	$TASK" ] ||
	die "after the restart: $(jstate "$T/ka" 'j["state"]' 'j["export"]["task"]')"
[ "$(moto tasks "$RP_KA")" = "1 COMPLETE" ] || die "tasks: $(moto tasks "$RP_KA")"
log "kill -9 before StartExportTask: started once by the restart"

kill_at "$V-kb" kb export-started "$RP_KB"
[ "$(moto tasks "$RP_KB")" = "1 COMPLETE" ] || die "tasks at the kill: $(moto tasks "$RP_KB")"
VAULTFS_LOG=info vf_run --config "$T/kb.json" --once
expect_grep "export task $TASK exists: following it" "$RUN_ERR"
[ "$(jstate "$T/kb" 'j["state"]')" = succeeded ] || die "after the restart: $(jstate "$T/kb" 'j["state"]')"
[ "$(moto tasks "$RP_KB")" = "1 COMPLETE" ] || die "tasks: $(moto tasks "$RP_KB")"
log "kill -9 after StartExportTask: followed, not started again"
