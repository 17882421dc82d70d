#!/usr/bin/env python3
"""EBS snapshots made from local images on an EBS direct API server (moto),
for the aws-backup EBS tests (tests/integration/ebs.inc) and scripts/bench.
The endpoint is AWS_ENDPOINT_URL; boto3 finds the keys in the environment.

  ebs_snapshot.py vault VAULT          create an AWS Backup vault
  ebs_snapshot.py upload VAULT IMAGE   IMAGE (whole GiB, EBS's volume unit) as
                                       a snapshot: StartSnapshot, its non-zero
                                       512 KiB blocks with PutSnapshotBlock
                                       (SHA-256 checked), CompleteSnapshot; a
                                       backup job of its volume then makes it a
                                       recovery point. Prints "RP-ARN BLOCKS"
                                       (the written ones)
  ebs_snapshot.py status VAULT RP      COMPLETED, ..., or "gone"
"""
import base64
import hashlib
import os
import sys

import boto3
import botocore.config


def client(service):
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                        region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        config=botocore.config.Config(connect_timeout=5,
                                                      retries={"max_attempts": 1}))


BLOCK = 512 * 1024


def upload(vault, img):
    ec2, ebs, b = client("ec2"), client("ebs"), client("backup")
    acct = client("sts").get_caller_identity()["Account"]
    gib = os.path.getsize(img) >> 30
    assert gib and os.path.getsize(img) == gib << 30, img + ": not whole GiB"
    snap = ebs.start_snapshot(VolumeSize=gib)["SnapshotId"]
    n = 0
    with open(img, "rb") as f:
        off, size = 0, os.path.getsize(img)
        while off < size:
            # the images are sparse (1 GiB volumes, a few MiB written):
            # the blocks of holes are zero, only those with data are read
            try:
                off = os.lseek(f.fileno(), off, os.SEEK_DATA) // BLOCK * BLOCK
            except OSError:  # ENXIO: a hole up to the end
                break
            f.seek(off)
            data = f.read(BLOCK)
            if data.count(0) != len(data):
                ebs.put_snapshot_block(
                    SnapshotId=snap, BlockIndex=off // BLOCK, BlockData=data,
                    DataLength=len(data), ChecksumAlgorithm="SHA256",
                    Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode())
                n += 1
            off += BLOCK
    ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=n)
    vol = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["VolumeId"]
    j = b.start_backup_job(BackupVaultName=vault,
                           ResourceArn="arn:aws:ec2:us-east-1:%s:volume/%s" % (acct, vol),
                           IamRoleArn="arn:aws:iam::%s:role/backup" % acct)
    assert j["RecoveryPointArn"].endswith("/" + snap), j
    print(j["RecoveryPointArn"], n)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "vault":
        client("backup").create_backup_vault(BackupVaultName=args[0])
    elif cmd == "upload":
        upload(*args)
    elif cmd == "status":
        b = client("backup")
        try:
            print(b.describe_recovery_point(BackupVaultName=args[0],
                                            RecoveryPointArn=args[1])["Status"])
        except b.exceptions.ResourceNotFoundException:
            print("gone")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
