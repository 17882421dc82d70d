#!/bin/bash
# moto_backup: the recovery points that tests/tools/moto_backup.py adds to
# moto, seen by an independent client (boto3): StartBackupJob makes real
# moto snapshots and backups, ListRecoveryPointsByBackupVault pages and
# filters, DescribeRecoveryPoint, tags, the test-only status control, and
# DeleteRecoveryPoint takes the moto object with it; errors have AWS's codes.
# The aws-backup vault type's tests stand on this.
. "$(dirname "$0")/lib.sh"
need_moto

SUFFIX=$$-$RANDOM
py_moto "vft-rp-$SUFFIX" <<'EOF'
import json, time
import botocore.auth, botocore.awsrequest, botocore.exceptions
import urllib.request

vault, acct = sys.argv[1], "123456789012"
region = os.environ.get("AWS_REGION", "us-east-1")
b, ec2, rds, ddb = client("backup"), client("ec2"), client("rds"), client("dynamodb")
acct = client("sts").get_caller_identity()["Account"]
ROLE = "arn:aws:iam::%s:role/vaultfs-backup" % acct
cleanups = []


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg)


def error_of(fn, **kw):
    """The AWS error code and HTTP status that fn(**kw) fails with."""
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    fail("%s(%s) succeeded" % (fn.__name__, kw))


def signed(method, path, body=b""):
    """A raw SigV4-signed request to moto's Backup service: (status, headers, body)."""
    url = os.environ["AWS_ENDPOINT_URL"] + path
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body,
                                         headers={"Content-Type": "application/json"})
    creds = b._request_signer._credentials
    botocore.auth.SigV4Auth(creds, "backup", region).add_auth(req)
    r = urllib.request.Request(url, data=body or None, method=method, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(r, timeout=10) as a:
            return a.status, a.headers, a.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def set_status(arn, status):
    return signed("POST", "/_vaultfs/recovery-point-status", json.dumps(
        {"BackupVaultName": vault, "RecoveryPointArn": arn, "Status": status}).encode())


try:
    # --- resources -------------------------------------------------------
    b.create_backup_vault(BackupVaultName=vault)
    cleanups.append(lambda: b.delete_backup_vault(BackupVaultName=vault))
    vols = [ec2.create_volume(Size=s, AvailabilityZone=region + "a")["VolumeId"] for s in (2, 1)]
    for v in vols:
        cleanups.append(lambda v=v: ec2.delete_volume(VolumeId=v))
    db, cl, tb = vault + "-db", vault + "-cl", vault + "-tb"
    rds.create_db_instance(DBInstanceIdentifier=db, DBInstanceClass="db.t3.micro",
                           Engine="postgres", AllocatedStorage=5,
                           MasterUsername="u", MasterUserPassword="password1")
    cleanups.append(lambda: rds.delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True))
    rds.create_db_cluster(DBClusterIdentifier=cl, Engine="aurora-postgresql",
                          MasterUsername="u", MasterUserPassword="password1")
    cleanups.append(lambda: rds.delete_db_cluster(DBClusterIdentifier=cl, SkipFinalSnapshot=True))
    ddb.create_table(TableName=tb, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    cleanups.append(lambda: ddb.delete_table(TableName=tb))

    vol_arn = ["arn:aws:ec2:%s:%s:volume/%s" % (region, acct, v) for v in vols]
    db_arn = "arn:aws:rds:%s:%s:db:%s" % (region, acct, db)
    cl_arn = "arn:aws:rds:%s:%s:cluster:%s" % (region, acct, cl)
    tb_arn = "arn:aws:dynamodb:%s:%s:table/%s" % (region, acct, tb)

    # --- StartBackupJob: real moto objects ---------------------------------
    def backup(arn, tags=None):
        kw = {"BackupVaultName": vault, "ResourceArn": arn, "IamRoleArn": ROLE}
        if tags:
            kw["RecoveryPointTags"] = tags
        r = b.start_backup_job(**kw)
        check(r["BackupJobId"] and r["RecoveryPointArn"], "StartBackupJob %s -> %s" %
              (arn, r["RecoveryPointArn"]))
        return r["RecoveryPointArn"]

    ebs = [backup(vol_arn[0], {"owner": "ops", "vaultfs": "yes"}), backup(vol_arn[0]),
           backup(vol_arn[0]), backup(vol_arn[1])]
    rds_rp, aurora_rp, ddb_rp = backup(db_arn), backup(cl_arn), backup(tb_arn)
    everything = ebs + [rds_rp, aurora_rp, ddb_rp]
    check(len(set(everything)) == 7, "seven distinct recovery point ARNs")

    prefix = "arn:aws:ec2:%s::snapshot/snap-" % region
    check(all(a.startswith(prefix) for a in ebs), "EBS recovery points are EC2 snapshot ARNs")
    snaps = ec2.describe_snapshots(SnapshotIds=[a.split("/")[-1] for a in ebs])["Snapshots"]
    check(sorted(s["VolumeId"] for s in snaps) == sorted([vols[0]] * 3 + [vols[1]]),
          "each EBS recovery point is an EC2 snapshot of its volume")
    check(":snapshot:awsbackup:job-" in rds_rp, "RDS recovery point ARN " + rds_rp)
    rds.describe_db_snapshots(DBSnapshotIdentifier=rds_rp.split(":snapshot:")[1],
                              SnapshotType="awsbackup")
    check(":cluster-snapshot:awsbackup:job-" in aurora_rp, "Aurora recovery point ARN " + aurora_rp)
    rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=aurora_rp.split(":cluster-snapshot:")[1])
    check(ddb_rp.startswith(tb_arn + "/backup/"), "DynamoDB recovery point ARN " + ddb_rp)
    ddb.describe_backup(BackupArn=ddb_rp)

    # --- ListRecoveryPointsByBackupVault: paging and filters ------------------
    def list_all(page_size, **kw):
        got, token, pages = [], None, 0
        while True:
            args = dict(BackupVaultName=vault, MaxResults=page_size, **kw)
            if token:
                args["NextToken"] = token
            r = b.list_recovery_points_by_backup_vault(**args)
            pages += 1
            if len(r["RecoveryPoints"]) > page_size:
                fail("a page of %d for MaxResults %d" % (len(r["RecoveryPoints"]), page_size))
            got += r["RecoveryPoints"]
            token = r.get("NextToken")
            if not token:
                return got, pages

    got, pages = list_all(2)
    check([p["RecoveryPointArn"] for p in got] == everything and pages == 4,
          "7 points in 4 pages of at most 2, oldest first, none twice")
    check(all(p["Status"] == "COMPLETED" and p["BackupVaultName"] == vault for p in got),
          "every point COMPLETED, in its vault")
    check({p["ResourceType"] for p in got} == {"EBS", "RDS", "Aurora", "DynamoDB"},
          "resource types EBS, RDS, Aurora, DynamoDB")
    check([p["RecoveryPointArn"] for p in list_all(1000, ByResourceType="EBS")[0]] == ebs,
          "ByResourceType=EBS")
    check([p["RecoveryPointArn"] for p in list_all(1000, ByResourceArn=vol_arn[0])[0]] == ebs[:3],
          "ByResourceArn")
    check(list_all(1000, ByBackupPlanId="no-such-plan")[0] == [], "ByBackupPlanId: none on demand")
    check(error_of(b.list_recovery_points_by_backup_vault, BackupVaultName=vault,
                   NextToken="garbage") == ("InvalidParameterValueException", 400),
          "a NextToken this API did not give is refused")
    st, hdr, body = signed("GET", "/backup-vaults/%s/recovery-points/?maxResults=5000" % vault)
    check(st == 400 and hdr.get("X-Amzn-ErrorType", "").startswith("InvalidParameterValueException")
          and json.loads(body)["Code"] == "InvalidParameterValueException",
          "MaxResults 5000: 400 InvalidParameterValueException (header and body)")

    # --- DescribeRecoveryPoint ---------------------------------------------------
    d = b.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=ebs[0])
    check(d["ResourceArn"] == vol_arn[0] and d["ResourceType"] == "EBS" and
          d["Status"] == "COMPLETED" and d["BackupSizeInBytes"] == 2 << 30 and
          d["IamRoleArn"] == ROLE and d["CompletionDate"] >= d["CreationDate"] and
          d["BackupVaultArn"].endswith(":backup-vault:" + vault),
          "DescribeRecoveryPoint of an EBS point")
    d = b.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=ddb_rp)
    check(d["ResourceType"] == "DynamoDB" and d["ResourceName"] == tb, "DescribeRecoveryPoint of a table backup")

    # --- tags ----------------------------------------------------------------------
    check(b.list_tags(ResourceArn=ebs[0])["Tags"] == {"owner": "ops", "vaultfs": "yes"},
          "RecoveryPointTags are the point's tags")
    check(b.list_tags(ResourceArn=ebs[1])["Tags"] == {}, "a point made without tags has none")
    b.tag_resource(ResourceArn=ebs[0], Tags={"extra": "1"})
    b.untag_resource(ResourceArn=ebs[0], TagKeyList=["vaultfs"])
    check(b.list_tags(ResourceArn=ebs[0])["Tags"] == {"owner": "ops", "extra": "1"},
          "TagResource and UntagResource on a recovery point (an ARN with a /)")
    p1 = b.list_tags(ResourceArn=ebs[0], MaxResults=1)
    p2 = b.list_tags(ResourceArn=ebs[0], MaxResults=1, NextToken=p1["NextToken"])
    check(p1["Tags"] == {"extra": "1"} and p2["Tags"] == {"owner": "ops"} and
          "NextToken" not in p2, "ListTags pages")
    gone = prefix + "0123456789abcdef0"
    check(error_of(b.list_tags, ResourceArn=gone) == ("ResourceNotFoundException", 400),
          "ListTags of a recovery point that does not exist")

    # --- the test-only status control ----------------------------------------
    st, _, _ = set_status(ebs[1], "CREATING")
    check(st == 200, "status control: CREATING")
    d = b.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=ebs[1])
    check(d["Status"] == "CREATING" and "CompletionDate" not in d, "a CREATING point has no CompletionDate")
    check([p["Status"] for p in list_all(1000)[0]].count("CREATING") == 1, "and is listed as CREATING")
    check(error_of(b.delete_recovery_point, BackupVaultName=vault, RecoveryPointArn=ebs[1]) ==
          ("InvalidResourceStateException", 400), "a CREATING point cannot be deleted")
    check(set_status(ebs[1], "DONE")[0] == 400, "status control refuses a status AWS does not have")
    check(set_status(gone, "COMPLETED")[0] == 400, "status control: unknown point")
    check(set_status(ebs[1], "COMPLETED")[0] == 200, "status control: COMPLETED again")

    # --- DeleteRecoveryPoint takes the moto object with it ---------------------
    b.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=ebs[0])
    check(error_of(ec2.describe_snapshots, SnapshotIds=[ebs[0].split("/")[-1]])[0] ==
          "InvalidSnapshot.NotFound", "the EBS point's EC2 snapshot is deleted")
    check(error_of(b.describe_recovery_point, BackupVaultName=vault, RecoveryPointArn=ebs[0]) ==
          ("ResourceNotFoundException", 400), "the deleted point is not described")
    check(error_of(b.delete_recovery_point, BackupVaultName=vault, RecoveryPointArn=ebs[0]) ==
          ("ResourceNotFoundException", 400), "nor deleted twice")
    check(error_of(b.list_tags, ResourceArn=ebs[0])[0] == "ResourceNotFoundException",
          "nor has tags")
    b.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=rds_rp)
    check(error_of(rds.describe_db_snapshots, DBSnapshotIdentifier=rds_rp.split(":snapshot:")[1],
                   SnapshotType="awsbackup")[0] ==
          "DBSnapshotNotFound", "the RDS point's DB snapshot is deleted")
    b.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=aurora_rp)
    check(error_of(rds.describe_db_cluster_snapshots,
                   DBClusterSnapshotIdentifier=aurora_rp.split(":cluster-snapshot:")[1])[0] ==
          "DBClusterSnapshotNotFoundFault", "the Aurora point's cluster snapshot is deleted")
    b.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=ddb_rp)
    check(error_of(ddb.describe_backup, BackupArn=ddb_rp)[0] == "BackupNotFoundException",
          "the DynamoDB point's table backup is deleted")
    left = [p["RecoveryPointArn"] for p in list_all(1000)[0]]
    check(left == ebs[1:], "three points left")
    v = [x for x in b.list_backup_vaults()["BackupVaultList"] if x["BackupVaultName"] == vault][0]
    check(v["NumberOfRecoveryPoints"] == 3, "the vault counts 3 recovery points")

    # --- errors ------------------------------------------------------------------------
    nov = vault + "-none"
    check(error_of(b.list_recovery_points_by_backup_vault, BackupVaultName=nov) ==
          ("ResourceNotFoundException", 400), "List in a vault that does not exist")
    check(error_of(b.describe_recovery_point, BackupVaultName=nov, RecoveryPointArn=ebs[1]) ==
          ("ResourceNotFoundException", 400), "Describe in a vault that does not exist")
    check(error_of(b.describe_recovery_point, BackupVaultName=vault, RecoveryPointArn=gone) ==
          ("ResourceNotFoundException", 400), "Describe of a point not in the vault")
    check(error_of(b.start_backup_job, BackupVaultName=nov, ResourceArn=vol_arn[1], IamRoleArn=ROLE) ==
          ("ResourceNotFoundException", 400), "StartBackupJob into a vault that does not exist")
    check(error_of(b.start_backup_job, BackupVaultName=vault, IamRoleArn=ROLE,
                   ResourceArn=vol_arn[1][:-4] + "ffff") == ("ResourceNotFoundException", 400),
          "StartBackupJob of a volume that does not exist")
    check(error_of(b.start_backup_job, BackupVaultName=vault, IamRoleArn=ROLE,
                   ResourceArn="arn:aws:elasticfilesystem:%s:%s:file-system/fs-1" % (region, acct)) ==
          ("InvalidParameterValueException", 400), "StartBackupJob of a type the shim does not back")
    st, _, body = signed("PUT", "/backup-jobs", json.dumps({"BackupVaultName": vault,
                                                              "ResourceArn": vol_arn[1]}).encode())
    check(st == 400 and json.loads(body)["Code"] == "MissingParameterValueException",
          "StartBackupJob without IamRoleArn")
    left = [p["RecoveryPointArn"] for p in list_all(1000)[0]]
    check(left == ebs[1:], "failed calls made no recovery point")
    for a in left:
        b.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=a)
finally:
    for c in reversed(cleanups):
        try:
            c()
        except Exception as e:
            print("cleanup:", e, file=sys.stderr)
EOF
log "recovery points: made, listed, paged, described, tagged, deleted"

# lib.sh's shell form of the status control, as the provider tests use it
arn=$(py_moto "vft-rp2-$SUFFIX" <<'PY'
vault = sys.argv[1]
b, ec2 = client("backup"), client("ec2")
b.create_backup_vault(BackupVaultName=vault)
vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
acct = client("sts").get_caller_identity()["Account"]
print(b.start_backup_job(BackupVaultName=vault, IamRoleArn="arn:aws:iam::%s:role/r" % acct,
                         ResourceArn="arn:aws:ec2:us-east-1:%s:volume/%s" % (acct, vol))["RecoveryPointArn"])
PY
)
on_exit "py_moto '$arn' 'vft-rp2-$SUFFIX' <<<'client(\"backup\").delete_recovery_point(BackupVaultName=sys.argv[2], RecoveryPointArn=sys.argv[1]); client(\"backup\").delete_backup_vault(BackupVaultName=sys.argv[2])'"
moto_rp_status "vft-rp2-$SUFFIX" "$arn" STOPPED
st=$(aws_moto backup describe-recovery-point --backup-vault-name "vft-rp2-$SUFFIX" \
	--recovery-point-arn "$arn" --query Status --output text)
[ "$st" = STOPPED ] || die "moto_rp_status: awscli describes the point as $st, not STOPPED"
moto_rp_status "vft-rp2-$SUFFIX" "$arn" COMPLETED
log "moto_rp_status sets a status awscli reads back"
