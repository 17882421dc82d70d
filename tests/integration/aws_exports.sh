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

if cmd == "setup":            # VAULT NAME -> "VAR=RP-ARN" lines: vaults VAULT,
    v, name = args            # VAULT-ka, VAULT-kb; a DB instance, an Aurora
    rds, ddb = client("rds"), client("dynamodb")   # cluster, a table with PITR
    for x in (v, v + "-ka", v + "-kb"):
        b.create_backup_vault(BackupVaultName=x)
    db = rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro",
                                Engine="postgres", AllocatedStorage=5, MasterUsername="u",
                                MasterUserPassword="password1")["DBInstance"]["DBInstanceArn"]
    cl = rds.create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql",
                               MasterUsername="u", MasterUserPassword="password1")
    tb = ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})
    tb = tb["TableDescription"]["TableArn"]
    for var, vault, res in (("RP_RDS", v, db), ("RP_CANCEL", v, db),
                            ("RP_AUR", v, cl["DBCluster"]["DBClusterArn"]),
                            ("RP_DFAIL", v, tb), ("RP_DDB", v, tb), ("RP_DMISS", v, tb),
                            ("RP_KA", v + "-ka", db), ("RP_KB", v + "-kb", db)):
        print("%s=%s" % (var, backup(vault, res)))
elif cmd == "facts":          # VAULT RP... -> per RP: its status (or gone), the
    tasks = client("rds").describe_export_tasks()["ExportTasks"]  # number of
    for rp in args[1:]:       # export tasks from it and their statuses
        try:
            st = b.describe_recovery_point(BackupVaultName=args[0],
                                           RecoveryPointArn=rp)["Status"]
        except b.exceptions.ResourceNotFoundException:
            st = "gone"
        ts = [t["Status"].upper() for t in tasks if t["SourceArn"] == rp]
        print(st, len(ts), *ts)
elif cmd == "mkbucket":       # BUCKET in moto's own S3 (DynamoDB writes there)
    client("s3").create_bucket(Bucket=args[0])
EOF
moto() { py_moto "$@" <"$T/moto.py"; }

# What the services would write: moto completes an export without writing
# its files into our bucket, so the test writes them, as AWS lays them out.
#   write_export rds|ddb PREFIX JOB RESOURCE TASK [SKIP-FILE] -> the folder
cat >"$T/write.py" <<'EOF'
import gzip, hashlib, json, os, re, sys
out, kind, prefix, job, res, task = sys.argv[1:7]
skip = sys.argv[7] if len(sys.argv) > 7 else ""
# the seed's key layout (orchestrator/keys.h): the ARN split into folders
d = "%s/%s/Y=%s/M=%s/D=%s/%s/" % (prefix, "/".join(re.split("[:/]", res)),
                                  job[0:4], job[4:6], job[6:8], job)
keys = open(out + ".keys", "w")
def put(key, body):                 # into OUT/KEY, and KEY into OUT.keys
    if key.rsplit("/", 1)[-1] != skip:
        os.makedirs(os.path.dirname(out + "/" + key), exist_ok=True)
        open(out + "/" + key, "wb").write(body)
        keys.write(key + "\n")
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
keys.close()
print(f)
EOF
write_export() {
	local out=$T/export.$RANDOM key
	python3 "$T/write.py" "$out" "$@"
	while read -r key; do
		vf s3 cp "$out/$key" "s3://$BUCKET/$key" >/dev/null 2>&1 ||
			die "upload of $key failed"
	done <"$out.keys"
}

V=vfx-$S
moto setup "$V" "vfx-$S" >"$T/rps"
. "$T/rps"
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
	vf s3 cp "s3://$BUCKET/${folder}manifest.json" "$T/m.json" >/dev/null 2>&1
	python3 - "$T/m.json" "$JOB" "$TASK" $kind <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["kind"] == "export" and m["job"]["id"] == sys.argv[2], m
x = m["export"]
assert x["task"] == sys.argv[3] and x["exporting"] <= x["verified"], x
if sys.argv[4] == "rds":
    assert x["tables"] == 2 and x["files"] == 4, x
else:
    assert x["items"] == 3 and x["files"] == 2, x
assert m["bytes_written"] == x["bytes"] > 0, m
EOF
	log "$kind: exported, verified, manifest.json beside it, recovery point deleted"
done

# --- cancel: CancelExportTask ------------------------------------------------
started "$RP_CANCEL"
touch "$D/$(name_of "$RP_CANCEL")/cancel"
ends "$RP_CANCEL" cancelled
log "cancel: CancelExportTask, the job cancelled, the snapshot kept"

# --- verification: a named data file is missing ------------------------------
started "$RP_DMISS"
write_export ddb exp "$JOB" "$(field "$RP_DMISS" resource)" "$TASK" b.json.gz >/dev/null
go_on
ends "$RP_DMISS" failed
expect_grep '^error: verify export .*data/b.json.gz, named by manifest-files.json line 2: missing$' \
	"$T/status.last"
unmount_view
log "verification: a missing data file fails the job"
# in moto: the exported ones deleted (their one task COMPLETE, RDS and
# Aurora), the others kept: cancelled (its task CANCELED), FAILED (no RDS
# task), unverified
moto facts "$V" "$RP_RDS" "$RP_AUR" "$RP_DDB" "$RP_CANCEL" "$RP_DFAIL" "$RP_DMISS" >"$T/facts"
printf '%s\n' "gone 1 COMPLETE" "gone 1 COMPLETE" "gone 0" "COMPLETED 1 CANCELED" \
	"COMPLETED 0" "COMPLETED 0" | diff - "$T/facts" ||
	die "recovery points and tasks in moto (above: want, got)"
log "moto: the verified ones deleted, one task each; the others kept"

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
tasks() { moto facts "$1" "$2" | cut -d' ' -f2-; }
kill_at "$V-ka" ka export-recorded "$RP_KA"
[ "$(tasks "$V-ka" "$RP_KA")" = 0 ] || die "a task started before the call: $(tasks "$V-ka" "$RP_KA")"
VAULTFS_LOG=info vf_run --config "$T/ka.json" --once
[ "$(jstate "$T/ka" 'j["state"]' 'j["export"]["task"]')" = "succeeded	$TASK" ] ||
	die "after the restart: $(jstate "$T/ka" 'j["state"]' 'j["export"]["task"]')"
[ "$(tasks "$V-ka" "$RP_KA")" = "1 COMPLETE" ] || die "tasks: $(tasks "$V-ka" "$RP_KA")"
log "kill -9 before StartExportTask: started once by the restart"

kill_at "$V-kb" kb export-started "$RP_KB"
VAULTFS_LOG=info vf_run --config "$T/kb.json" --once
expect_grep "export task $TASK exists: following it" "$RUN_ERR"
[ "$(jstate "$T/kb" 'j["state"]')" = succeeded ] || die "after the restart: $(jstate "$T/kb" 'j["state"]')"
[ "$(tasks "$V-kb" "$RP_KB")" = "1 COMPLETE" ] || die "tasks: $(tasks "$V-kb" "$RP_KB")"
log "kill -9 after StartExportTask: followed, not started again"
