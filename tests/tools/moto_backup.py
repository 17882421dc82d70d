#!/usr/bin/env python3
"""moto_backup.py - moto's server mode plus AWS Backup recovery points.

    moto_backup.py [--host 127.0.0.1] [--port N] [--port-file FILE]

Runs the same WSGI application as `python3 -m moto.server` (every service
moto emulates, one endpoint, the service chosen from the request's SigV4
scope) on a threaded werkzeug server. --port 0 (the default) binds a free
port; the port bound is written to --port-file (atomically, once the socket
listens) and exported as MOTO_PORT, as moto.server does. SIGTERM and SIGINT
stop it. scripts/moto-server starts and stops it.

Why an extension: moto (5.2) has AWS Backup vaults, plans and tags but no
recovery points, and vaultfs's aws-backup vault type reads recovery points.
This file adds, to moto's own Backup service (same endpoint, same SigV4
routing, shapes and error codes of the AWS Backup API reference, version
2018-11-15, REST-JSON):

  StartBackupJob                   PUT    /backup-jobs
  ListRecoveryPointsByBackupVault  GET    /backup-vaults/V/recovery-points/
  DescribeRecoveryPoint            GET    /backup-vaults/V/recovery-points/ARN
  DeleteRecoveryPoint              DELETE /backup-vaults/V/recovery-points/ARN
  ListTags, TagResource, UntagResource   (moto's, made to take ARNs that
                                   contain "/" and to know recovery points)

A recovery point is backed by a real moto object, made by StartBackupJob in
the caller's account and Region and deleted by DeleteRecoveryPoint:

  resource ARN                         moto object       recovery point ARN
  arn:aws:ec2:R:A:volume/vol-X   EBS   EC2 snapshot      arn:aws:ec2:R::snapshot/snap-Y
  arn:aws:rds:R:A:db:NAME        RDS   DB snapshot       arn:aws:rds:R:A:snapshot:awsbackup:job-J
  arn:aws:rds:R:A:cluster:NAME   Aurora cluster snapshot arn:aws:rds:R:A:cluster-snapshot:awsbackup:job-J
  arn:aws:dynamodb:R:A:table/T   DynamoDB  table backup  arn:aws:dynamodb:R:A:table/T/backup/ID

so that an EBS recovery point is a snapshot the EC2 API describes.

EBS data (TEST-ONLY shortcut): moto's EBS direct APIs (StartSnapshot,
PutSnapshotBlock, CompleteSnapshot) make a volume and a snapshot of it
that holds the blocks written. StartBackupJob of such a volume, once its
snapshot is completed, makes the recovery point of THAT snapshot instead
of a new, empty one: how a test gives a recovery point data that
ListSnapshotBlocks and GetSnapshotBlock serve. AWS would snapshot the
volume anew (the same data). The snapshot of any other volume is readable
with the EBS direct APIs too, with no block written. DeleteRecoveryPoint
deletes it from both.

CreateVolume's ClientToken (EC2, moto ignores it): a CreateVolume with a
ClientToken already used in the same account and Region answers the
volume that token made, as long as moto still has it, instead of making a
second one, as the EC2 API reference's idempotency rules say. A token
reused with other parameters is not checked (AWS answers
IdempotentParameterMismatch); a token whose volume was deleted makes a
new volume (AWS keeps answering the deleted one for a while).

LIMITS AND TEST-ONLY PARTS (what this is not):
  - A backup job completes inside StartBackupJob: its recovery point is
    COMPLETED at once. There is no job API (DescribeBackupJob, ListBackupJobs,
    StopBackupJob), no IdempotencyToken handling, no backup plan runs, no
    lifecycle (Lifecycle is stored and echoed, nothing expires), no copy jobs,
    no EventBridge events, no composite (parent) recovery points, no
    logically air-gapped vaults, no cross-account BackupVaultAccountId (the
    parameter is ignored), no encryption (IsEncrypted is false).
  - A resource that does not exist makes StartBackupJob fail with
    ResourceNotFoundException, where AWS would start a job that then fails.
    Other resource types (EFS, FSx, S3, EC2 instances, ...) are refused with
    InvalidParameterValueException naming this limit.
  - DeleteRecoveryPoint removes the point and its moto object at once (AWS
    shows it as DELETING for a while). A point whose status is not COMPLETED
    (see below) is refused with InvalidResourceStateException. A moto object
    that someone already deleted behind Backup's back is not an error.
  - ListRecoveryPointsByBackupVault returns points oldest first; NextToken is
    opaque (a position in that order), valid while the server runs.
  - Resource tags are not copied to recovery points; a point's tags are the
    StartBackupJob RecoveryPointTags and what TagResource adds.
  - TEST-ONLY: POST /_vaultfs/recovery-point-status, SigV4-signed for the
    "backup" service, body {"BackupVaultName": V, "RecoveryPointArn": ARN,
    "Status": S}, S one of AWS's RecoveryPointStatus values, sets a point's
    status (CompletionDate is set when it becomes COMPLETED and cleared
    otherwise): how tests make a point that is not COMPLETED, or complete it
    later. Answers 200 {} or the errors above. No AWS API has this path.
  - RDS StartExportTask (moto's own, issue 13's exports): moto takes the
    part of SourceArn after its last ':' as the snapshot's name, and AWS
    Backup's snapshots are named "awsbackup:job-J" (so moto answered 500).
    This file replaces that one lookup: the name is everything after
    "snapshot:" or "cluster-snapshot:". The rest is moto's (the task
    completes at once; moto writes no files).
  - IamRoleArn is required but not checked against IAM. DeleteBackupVault
    is moto's: it does not refuse a vault that still holds points.
  - The state lives in this process only, like the rest of moto's.
"""

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
import uuid
from urllib.parse import unquote

from moto.backup import urls as backup_urls
from moto.backup.models import backup_backends
from moto.backup.responses import BackupResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.dynamodb.models import dynamodb_backends
from moto.ebs.models import EBSSnapshot, ebs_backends
from moto.ec2.models import ec2_backends
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.rds import exceptions as rds_errors
from moto.rds.models import ExportTask, RDSBackend, rds_backends

# AWS's RecoveryPointStatus values (botocore's backup model, 2018-11-15).
STATUSES = ("COMPLETED", "PARTIAL", "DELETING", "EXPIRED", "AVAILABLE",
            "STOPPED", "CREATING")
LIST_MAX = 1000  # MaxResults: 1..1000

_lock = threading.Lock()  # guards every backend's recovery point table and _volume_tokens


class BackupError(JsonRESTError):
    """An AWS Backup error: HTTP 400, X-Amzn-ErrorType and a JSON body with
    the members of the API's exception shapes (Code, Message) and __type."""

    def __init__(self, code, message):
        super().__init__(code, message)
        self.description = json.dumps(
            {"__type": code, "Code": code, "Message": message})


def not_found(message):
    return BackupError("ResourceNotFoundException", message)


def invalid(message):
    return BackupError("InvalidParameterValueException", message)


def missing(name):
    return BackupError("MissingParameterValueException",
                       "%s is required" % name)


# --- state ------------------------------------------------------------------
# Each moto Backup backend (one per account and Region) gets a table
# {vault name: {recovery point ARN: point}}, a point being the
# DescribeRecoveryPoint members plus "_seq" (list order) and "_moto" (what
# backs it: kind and id, for the delete).

def points_of(backend):
    table = getattr(backend, "vaultfs_recovery_points", None)
    if table is None:
        table = backend.vaultfs_recovery_points = {}
        backend.vaultfs_seq = 0
    return table


def vault_of(backend, name):
    if not name:
        raise missing("BackupVaultName")
    vault = backend.vaults.get(name)
    if vault is None:
        raise not_found("Backup vault %s does not exist in account %s" %
                        (name, backend.account_id))
    return vault


def point_of(backend, vault_name, arn):
    vault_of(backend, vault_name)
    if not arn:
        raise missing("RecoveryPointArn")
    rp = points_of(backend).get(vault_name, {}).get(arn)
    if rp is None:
        raise not_found("Recovery point %s does not exist in backup vault %s"
                        % (arn, vault_name))
    return rp


def find_point(backend, arn):
    for rps in points_of(backend).values():
        if arn in rps:
            return rps[arn]
    return None


def looks_like_point(arn):
    """An ARN of the kinds this shim makes recovery points of."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return False
    res = parts[5]
    return (parts[2] == "ec2" and res.startswith("snapshot/")) or \
        (parts[2] == "rds" and res.startswith(("snapshot:awsbackup:",
                                               "cluster-snapshot:awsbackup:"))) or \
        (parts[2] == "dynamodb" and "/backup/" in res)


# --- backing objects ----------------------------------------------------------

def make_backing(backend, resource_arn, job):
    """Create the moto object for a backup of resource_arn: returns
    (resource type, resource name, recovery point ARN, size, _moto)."""
    parts = resource_arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise invalid("ResourceArn %s is not an ARN" % resource_arn)
    service, region, res = parts[2], parts[3], parts[5]
    acct, here = backend.account_id, backend.region_name
    if region != here or parts[4] != acct:
        raise invalid("ResourceArn %s is not in account %s, Region %s" %
                      (resource_arn, acct, here))
    if service == "ec2" and res.startswith("volume/"):
        ec2 = ec2_backends[acct][here]
        vol_id = res[len("volume/"):]
        if vol_id not in ec2.volumes:
            raise not_found("Volume %s does not exist" % vol_id)
        snap = direct_snapshot(acct, here, vol_id)
        if not snap:
            snap = ec2.create_snapshot(vol_id, "This snapshot is created by "
                                       "the AWS Backup service (job %s)" % job)
            # readable with the EBS direct APIs, as every AWS snapshot is:
            # no block written (moto's volumes hold no data)
            s = EBSSnapshot(account_id=acct, snapshot=snap)
            s.status = "completed"
            ebs_backends[acct][here].snapshots[snap.id] = s
            BACKUP_MADE.add(snap.id)
        size = ec2.volumes[vol_id].size << 30
        return ("EBS", vol_id, "arn:%s:ec2:%s::snapshot/%s" %
                (parts[1], here, snap.id), size, ("ebs", snap.id))
    if service == "rds" and res.startswith(("db:", "cluster:")):
        rds = rds_backends[acct][here]
        kind, name = res.split(":", 1)
        snap_id = "awsbackup:job-%s" % job.lower()
        if kind == "db":
            if name not in rds.databases:
                raise not_found("DB instance %s does not exist" % name)
            snap = rds.create_db_snapshot(name, snap_id, snapshot_type="awsbackup")
            return ("RDS", name, snap.db_snapshot_arn,
                    int(rds.databases[name].allocated_storage or 0) << 30,
                    ("rds", snap_id))
        if name not in rds.clusters:
            raise not_found("DB cluster %s does not exist" % name)
        # RDS's "awsbackup" snapshot type "does not apply to Aurora": a
        # cluster snapshot that Backup made is listed as manual
        snap = rds.create_db_cluster_snapshot(name, snap_id,
                                              snapshot_type="manual")
        return ("Aurora", name, snap.db_cluster_snapshot_arn, 0,
                ("aurora", snap_id))
    if service == "dynamodb" and res.startswith("table/") and res.count("/") == 1:
        ddb = dynamodb_backends[acct][here]
        name = res[len("table/"):]
        if name not in ddb.tables:
            raise not_found("Table %s does not exist" % name)
        backup = ddb.create_backup(name, "awsbackup-job-%s" % job.lower())
        backup.type = "AWS_BACKUP"
        return ("DynamoDB", name, backup.arn,
                int(getattr(ddb.tables[name], "table_size_bytes", 0) or 0),
                ("dynamodb", backup.arn))
    raise invalid("ResourceArn %s: this test server (tests/tools/moto_backup.py) "
                  "backs up only EBS volumes, RDS instances, Aurora clusters "
                  "and DynamoDB tables" % resource_arn)


# EBS direct API snapshots this file made (of volumes without data), not
# StartSnapshot: a later backup of the same volume makes a new one
BACKUP_MADE = set()


def direct_snapshot(acct, region, vol_id):
    """The completed snapshot the EBS direct APIs wrote of vol_id (see
    "EBS data" above), or None."""
    ec2 = ec2_backends[acct][region]
    for sid, s in ebs_backends[acct][region].snapshots.items():
        snap = ec2.snapshots.get(sid)
        if s.status == "completed" and snap and snap.volume.id == vol_id \
                and sid not in BACKUP_MADE:
            return snap
    return None


def drop_backing(backend, moto_ref):
    kind, ident = moto_ref
    acct, here = backend.account_id, backend.region_name
    if kind == "ebs":
        ec2_backends[acct][here].snapshots.pop(ident, None)
        ebs_backends[acct][here].snapshots.pop(ident, None)
    elif kind == "rds":
        rds_backends[acct][here].database_snapshots.pop(ident, None)
    elif kind == "aurora":
        rds_backends[acct][here].cluster_snapshots.pop(ident, None)
    elif kind == "dynamodb":
        dynamodb_backends[acct][here].backups.pop(ident, None)


# --- paging ---------------------------------------------------------------------

def page(items, query, key):
    """items sorted by key (an int or a str); returns (slice, NextToken)."""
    raw_max = query.get("maxResults", [None])[0]
    max_results = LIST_MAX
    if raw_max is not None:
        try:
            max_results = int(raw_max)
        except ValueError:
            raise invalid("MaxResults %r is not a number" % raw_max)
        if not 1 <= max_results <= LIST_MAX:
            raise invalid("MaxResults must be between 1 and %d, not %d" %
                          (LIST_MAX, max_results))
    token = query.get("nextToken", [None])[0]
    start = None
    if token:
        try:
            start = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
        except (ValueError, KeyError, TypeError):
            raise invalid("NextToken %r is not a token this API returned" % token)
        items = [i for i in items if key(i) > start]
    out = items[:max_results]
    nxt = None
    if len(items) > max_results:
        nxt = base64.urlsafe_b64encode(
            json.dumps({"after": key(out[-1])}).encode()).decode()
    return out, nxt


# --- the operations -----------------------------------------------------------

def public(rp, shape):
    """rp's members that the API shape has (the AWS field names)."""
    return {k: v for k, v in rp.items() if k in shape and v is not None}


DESCRIBE_MEMBERS = (
    "RecoveryPointArn", "BackupVaultName", "BackupVaultArn", "ResourceArn",
    "ResourceType", "CreatedBy", "IamRoleArn", "Status", "StatusMessage",
    "CreationDate", "InitiationDate", "CompletionDate", "BackupSizeInBytes",
    "CalculatedLifecycle", "Lifecycle", "EncryptionKeyArn", "IsEncrypted",
    "StorageClass", "IsParent", "ResourceName", "VaultType")
# RecoveryPointByBackupVault has the same members but StorageClass
LIST_MEMBERS = tuple(m for m in DESCRIBE_MEMBERS if m != "StorageClass")


def label(resp, name):
    """A URI label, percent-decoded (ARNs come with / as %2F)."""
    m = resp.uri_match.groupdict() if resp.uri_match else {}
    return unquote(m.get(name) or "")


def answer(obj):
    """A 200 JSON answer, with the content type AWS gives it."""
    return 200, {"Content-Type": "application/json"}, json.dumps(obj)


def body_of(resp):
    if not resp.body:
        return {}
    try:
        body = json.loads(resp.body)
    except ValueError:
        raise BackupError("InvalidRequestException", "the body is not JSON")
    if not isinstance(body, dict):
        raise BackupError("InvalidRequestException", "the body is not a JSON object")
    return body


def start_backup_job(self):
    body = body_of(self)
    backend = self.backup_backend
    vault = vault_of(backend, body.get("BackupVaultName"))
    if not body.get("ResourceArn"):
        raise missing("ResourceArn")
    if not body.get("IamRoleArn"):
        raise missing("IamRoleArn")
    tags = body.get("RecoveryPointTags") or {}
    if not isinstance(tags, dict):
        raise invalid("RecoveryPointTags must be a map of strings")
    job = str(uuid.uuid4()).upper()
    with _lock:
        rtype, rname, arn, size, moto_ref = make_backing(
            backend, body["ResourceArn"], job)
        now = time.time()
        table = points_of(backend)
        backend.vaultfs_seq += 1
        table.setdefault(vault.backup_vault_name, {})[arn] = {
            "RecoveryPointArn": arn,
            "BackupVaultName": vault.backup_vault_name,
            "BackupVaultArn": vault.backup_vault_arn,
            "ResourceArn": body["ResourceArn"],
            "ResourceType": rtype,
            "ResourceName": rname,
            "CreatedBy": {},
            "IamRoleArn": body["IamRoleArn"],
            "Status": "COMPLETED",
            "CreationDate": now,
            "InitiationDate": now,
            "CompletionDate": now,
            "BackupSizeInBytes": size,
            "Lifecycle": body.get("Lifecycle"),
            "IsEncrypted": False,
            "StorageClass": "WARM",
            "IsParent": False,
            "VaultType": "BACKUP_VAULT",
            "_seq": backend.vaultfs_seq,
            "_moto": moto_ref,
        }
        vault.num_of_recovery_points = len(table[vault.backup_vault_name])
        if tags:
            backend.tag_resource(arn, tags)
    return answer({"BackupJobId": job, "RecoveryPointArn": arn,
                   "CreationDate": now, "IsParent": False})


def list_recovery_points_by_backup_vault(self):
    backend = self.backup_backend
    name = label(self, "backupVaultName")
    q = self.querystring
    one = lambda k: q.get(k, [None])[0]
    with _lock:
        vault_of(backend, name)
        rps = sorted(points_of(backend).get(name, {}).values(),
                     key=lambda r: r["_seq"])
    checks = []
    if one("resourceArn"):
        checks.append(lambda r, v=one("resourceArn"): r["ResourceArn"] == v)
    if one("resourceType"):
        checks.append(lambda r, v=one("resourceType"): r["ResourceType"] == v)
    if one("backupPlanId"):  # on-demand jobs belong to no plan
        checks.append(lambda r, v=one("backupPlanId"):
                      r["CreatedBy"].get("BackupPlanId") == v)
    if one("parentRecoveryPointArn"):  # no composite points
        checks.append(lambda r: False)
    for key, before in (("createdBefore", True), ("createdAfter", False)):
        if one(key):
            try:
                t = float(one(key))
            except ValueError:
                from botocore.utils import parse_timestamp
                t = parse_timestamp(one(key)).timestamp()
            checks.append(lambda r, t=t, b=before:
                          r["CreationDate"] < t if b else r["CreationDate"] > t)
    rps = [r for r in rps if all(c(r) for c in checks)]
    out, nxt = page(rps, q, lambda r: r["_seq"])
    ans = {"RecoveryPoints": [public(r, LIST_MEMBERS) for r in out]}
    if nxt:
        ans["NextToken"] = nxt
    return answer(ans)


def describe_recovery_point(self):
    with _lock:
        rp = point_of(self.backup_backend, label(self, "backupVaultName"),
                      label(self, "recoveryPointArn"))
        return answer(public(rp, DESCRIBE_MEMBERS))


def delete_recovery_point(self):
    backend = self.backup_backend
    name = label(self, "backupVaultName")
    arn = label(self, "recoveryPointArn")
    with _lock:
        rp = point_of(backend, name, arn)
        if rp["Status"] != "COMPLETED":
            raise BackupError("InvalidResourceStateException",
                              "Recovery point %s is %s, not COMPLETED: it "
                              "cannot be deleted now" % (arn, rp["Status"]))
        drop_backing(backend, rp["_moto"])
        del points_of(backend)[name][arn]
        backend.vaults[name].num_of_recovery_points = len(points_of(backend)[name])
        backend.tagger.delete_all_tags_for_resource(arn)
    return answer({})


def known_arn(self, arn):
    """A recovery point ARN must name a point; other ARNs are moto's."""
    if not arn:
        raise missing("ResourceArn")
    if looks_like_point(arn) and find_point(self.backup_backend, arn) is None:
        raise not_found("Recovery point %s does not exist" % arn)


def list_tags(self):
    arn = label(self, "resourceArn")
    with _lock:
        known_arn(self, arn)
        tags = self.backup_backend.list_tags(arn)
    keys, nxt = page(sorted(tags), self.querystring, lambda k: k)
    ans = {"Tags": {k: tags[k] for k in keys}}
    if nxt:
        ans["NextToken"] = nxt
    return answer(ans)


def change_tags(self, member, kind, apply):
    """TagResource / UntagResource: body member `member` (a `kind`, not
    empty) handed to apply(backend, arn, value)."""
    arn = label(self, "resourceArn")
    value = body_of(self).get(member)
    if not isinstance(value, kind) or not value:
        raise missing(member)
    with _lock:
        known_arn(self, arn)
        apply(self.backup_backend, arn, value)
    return answer({})


def tag_resource(self):
    return change_tags(self, "Tags", dict, lambda be, arn, v: be.tag_resource(arn, v))


def untag_resource(self):
    return change_tags(self, "TagKeyList", list, lambda be, arn, v: be.untag_resource(arn, v))


def set_status(request, full_url, headers):
    """TEST-ONLY: POST /_vaultfs/recovery-point-status (see the header)."""
    resp = BackupResponse()
    try:
        resp.setup_class(request, full_url, headers)
        body = body_of(resp)
        status = body.get("Status")
        if status not in STATUSES:
            raise invalid("Status %r is not one of %s" % (status, ", ".join(STATUSES)))
        with _lock:
            rp = point_of(resp.backup_backend, body.get("BackupVaultName"),
                          body.get("RecoveryPointArn"))
            rp["Status"] = status
            rp["CompletionDate"] = time.time() if status == "COMPLETED" else None
    except BackupError as e:
        return e.code, {"Content-Type": "application/json",
                        "X-Amzn-ErrorType": e.error_type}, e.description
    return answer({})


def start_export_task(self, kwargs):
    """moto's RDSBackend.start_export_task, the snapshot found by its whole
    name (see the header)."""
    task_id, arn = kwargs["export_task_identifier"], kwargs["source_arn"]
    parts = arn.split(":", 6)
    kind, name = (parts[5], parts[6]) if len(parts) == 7 else ("", "")
    if task_id in self.export_tasks:
        raise rds_errors.ExportTaskAlreadyExistsError(task_id)
    if kind == "snapshot" and name in self.database_snapshots:
        snap = self.database_snapshots[name]
    elif kind == "cluster-snapshot" and name in self.cluster_snapshots:
        snap = self.cluster_snapshots[name]
    elif kind == "cluster-snapshot":
        raise rds_errors.DBClusterSnapshotNotFoundError(name)
    else:
        raise rds_errors.DBSnapshotNotFoundFault(name)
    if snap.status != "available":
        raise rds_errors.InvalidExportSourceStateError(snap.status)
    task = ExportTask(self, snap, kwargs)
    self.export_tasks[task_id] = task
    return task


_volume_tokens = {}  # (account, region, ClientToken) -> volume id
_create_volume = ElasticBlockStore.create_volume


def create_volume_once(self):
    """moto's CreateVolume, idempotent on ClientToken (see above)."""
    token = self._get_param("ClientToken")
    key = (self.current_account, self.region, token)
    with _lock:
        vol = self.ec2_backend.volumes.get(_volume_tokens.get(key, ""))
        if token and vol is not None:
            return ActionResult(vol)
        before = set(self.ec2_backend.volumes)
        res = _create_volume(self)
        if token:
            for vid in set(self.ec2_backend.volumes) - before:
                _volume_tokens[key] = vid
        return res


def install():
    """Register the operations with moto's Backup service, before the
    server builds its Flask app for it (on the first Backup request)."""
    RDSBackend.start_export_task = start_export_task
    for fn in (start_backup_job, list_recovery_points_by_backup_vault,
               describe_recovery_point, delete_recovery_point, list_tags,
               tag_resource, untag_resource):
        setattr(BackupResponse, fn.__name__, fn)
    paths = backup_urls.url_paths
    paths["{0}/backup-jobs/?$"] = BackupResponse.dispatch
    # (a rule that ends in "/" also matches without it; not the reverse)
    paths["{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/$"] = BackupResponse.dispatch
    paths["{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/(?P<arn>.+)$"] = BackupResponse.dispatch
    paths["{0}/_vaultfs/recovery-point-status$"] = set_status
    ElasticBlockStore.create_volume = create_volume_once


def serve(host, port, port_file):
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    install()
    app = DomainDispatcherApplication(create_backend_app)
    srv = make_server(host, port, app, threaded=True)
    os.environ["MOTO_PORT"] = str(srv.server_port)
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_port)
        os.rename(tmp, port_file)

    def stop(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("moto_backup: listening on http://%s:%d" % (host, srv.server_port),
          file=sys.stderr, flush=True)
    srv.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--port-file", help="write the port bound here")
    args = ap.parse_args()
    serve(args.host, args.port, args.port_file)


if __name__ == "__main__":
    main()
