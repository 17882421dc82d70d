#!/usr/bin/env python3
"""ebs_hypervisor.py - plays EC2's hypervisor for the EBS `volume` method's
tests: moto attaches volumes in its API only, no disk appears.

    ebs_hypervisor.py --instance I-ID --root DIR --map SNAP=IMAGE [...]
                      [--wrong SNAP] [--endpoint URL] [--log FILE]

Every 50 ms it reads moto's DescribeVolumes (at --endpoint, default
$AWS_ENDPOINT_URL; keys and AWS_REGION from the environment) for the
volumes attached to instance I-ID. When one becomes `attached`, it attaches a read-only loop
device (losetup -r) to the image the volume's snapshot was made from
(--map, the test knows what it uploaded) and links it where udev links an
EBS volume on a Nitro instance:

    DIR/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc...  -> /dev/loopN

(the NVMe serial is the volume id without its dash). vaultfs is pointed at
DIR with ebs.deviceRoot. When the volume is no longer attached (detached,
deleted), the link goes and the loop device is detached. --wrong SNAP
links the volumes of that snapshot under a serial that is not theirs (the
"device cannot be matched" case). A volume whose snapshot is not mapped gets no device.

Lines on stdout (and --log): "ready" after the first DescribeVolumes
answered, then "attached VOL /dev/loopN", "detached VOL", flushed at
once, so a test can wait for them. SIGTERM/SIGINT (or the
parent gone) detach every loop device it made and remove the links.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

import boto3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--map", action="append", default=[],
                    help="SNAPSHOT-ID=IMAGE-FILE")
    ap.add_argument("--log")
    ap.add_argument("--wrong", action="append", default=[],
                    help="SNAPSHOT-ID whose volumes get a wrong serial")
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"))
    a = ap.parse_args()
    images = dict(m.split("=", 1) for m in a.map)
    byid = os.path.join(a.root, "disk", "by-id")
    os.makedirs(byid, exist_ok=True)
    ec2 = boto3.client("ec2", endpoint_url=a.endpoint,
                       region_name=os.environ.get("AWS_REGION", "us-east-1"))
    made = {}  # volume id -> (link, loop device)
    logf = open(a.log, "a") if a.log else None
    parent = os.getppid()
    ready = False

    def say(line):
        print(line, flush=True)
        if logf:
            logf.write(line + "\n")
            logf.flush()

    def drop(vol):
        link, loop = made.pop(vol)
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
        subprocess.run(["losetup", "-d", loop], check=False)
        say("detached %s" % vol)

    def stop(signum, frame):
        for vol in list(made):
            drop(vol)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        if os.getppid() != parent:
            stop(0, None)
        attached = {}
        try:
            vols = ec2.describe_volumes(Filters=[
                {"Name": "attachment.instance-id", "Values": [a.instance]}])
            for v in vols["Volumes"]:
                for att in v.get("Attachments", []):
                    if (att["InstanceId"] == a.instance
                            and att["State"] == "attached"):
                        attached[v["VolumeId"]] = v.get("SnapshotId")
        except Exception as e:  # moto busy or restarting: next round
            print("ebs_hypervisor: %s" % e, file=sys.stderr, flush=True)
            time.sleep(0.2)
            continue
        if not ready:
            say("ready")
            ready = True
        for vol in list(made):
            if vol not in attached:
                drop(vol)
        for vol, snap in attached.items():
            if vol in made or snap not in images:
                continue
            loop = subprocess.run(
                ["losetup", "-r", "-f", "--show", images[snap]],
                check=True, capture_output=True, text=True).stdout.strip()
            serial = "vol" + vol[4:]
            if snap in a.wrong:
                serial = "vol" + "0" * (len(vol) - 4)
            link = os.path.join(byid,
                                "nvme-Amazon_Elastic_Block_Store_" + serial)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(loop, link)
            made[vol] = (link, loop)
            say("attached %s %s" % (vol, loop))
        time.sleep(0.05)


if __name__ == "__main__":
    main()
