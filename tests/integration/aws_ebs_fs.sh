#!/bin/bash
# aws_ebs_fs: EBS snapshots of other volume layouts read with the EBS
# direct APIs (ebs.method "direct") on moto and archived to the S3 test
# server, each compared with its source byte for byte after stock tar
# extracts it (names, modes, owners, times, xattrs, hard links, sparse
# files; tests/integration/archive.inc's tree digest):
#   - an XFS volume: backup.tar.gz of its tree
#   - a GPT disk with two partitions (ext4, XFS): p1/ and p2/ in one tar,
#     with disk-head.img (the partition table) as on a local disk image
# Both are archived through the view (`vaultfs mount`, autoStart off): the
# recovery points are listed, `touch export` starts each, and its `status`
# file says succeeded with the blocks fetched, as for a local one.
# Each is a 1 GiB volume (EBS's unit) with a small filesystem, so only a
# few MiB are written and fetched. aws_ebs.sh has ext4 and no filesystem.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
. "$(dirname "$0")/ebs.inc"
need_moto
need_fuse
need_loop
need_tools mkfs.ext4 mkfs.xfs sgdisk setfattr
test_timeout 300

VAULT=vft-ebsfs-$$-$RANDOM
make_bucket BUCKET

F=$T/files
ebs_files "$F"

# XFS (300 MiB is mkfs.xfs's smallest) in a 1 GiB volume, filled through
# a loop device (mkfs.xfs cannot take a tree)
truncate -s 300M "$T/xfs.part"
mkfs.xfs -q -f -L vfxfs "$T/xfs.part"
attach_rw "$T/xfs.part" XDEV
mount_rw "$XDEV" "$T/mnt"
cp -a "$F/." "$T/mnt/"
umount_detach "$T/mnt" "$XDEV"
cp --sparse=always "$T/xfs.part" "$T/xfs.img"
truncate -s 1G "$T/xfs.img"

# GPT: a 32 MiB ext4 and that XFS, copied in at their offsets (sparse)
truncate -s 32M "$T/ext4.part"
mkfs.ext4 -q -F -L vfext4 -d "$F" "$T/ext4.part" || die "mkfs.ext4 -d failed"
D=$T/gpt.img
truncate -s 1G "$D"
sgdisk -o -n 1:2048:+32M -t 1:8300 -c 1:one -n 2:0:+300M -t 2:8300 -c 2:two \
	"$D" >/dev/null || die "sgdisk failed"
start() { sgdisk -i "$1" "$D" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
s1=$(start 1) s2=$(start 2)
[ -n "$s1" ] && [ -n "$s2" ] || die "bad test: no partition starts"
dd if="$T/ext4.part" of="$D" bs=1M seek=$((s1 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$T/xfs.part" of="$D" bs=1M seek=$((s2 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none

ebs_moto vault "$VAULT"
read -r RP_XFS N_XFS < <(ebs_moto upload "$VAULT" "$T/xfs.img")
read -r RP_GPT N_GPT < <(ebs_moto upload "$VAULT" "$T/gpt.img")
log "vault $VAULT: xfs $N_XFS blocks, gpt $N_GPT blocks written"

# Through the view, on request: `touch export`, then `cat status`, as for
# a local recovery point.
CFG=$T/config.json
ebs_config "$CFG" "$VAULT" "$BUCKET" "$T/state" ', "autoStart": false'
VAULTFS_LOG=info mount_view "$T/mnt-view" "$CFG"
V=$MP/vaults/prod
# (wait_for runs a command again and again: no $(...) in its arguments)
listed() { [ "$(ls "$V" | wc -l)" = 2 ]; }
archived() { [ "$(rp_state "$MP" prod "$1")" = succeeded ]; }
wait_for 60 listed
for rp in "$RP_XFS" "$RP_GPT"; do
	name=${rp##*/} # the snapshot id
	[ -d "$V/$name" ] || die "no recovery point $name in $V: $(ls "$V")"
	[ "$(rp_state "$MP" prod "$name")" = new ] || die "$name: started before its export"
	touch "$V/$name/export"
	echo "$name" >>"$T/names"
done
for name in $(cat "$T/names"); do
	wait_for 240 archived "$name"
	cat "$V/$name/status" >"$T/$name.status"
	grep -q '^blocks: [1-9][0-9]* of [1-9][0-9]* fetched$' "$T/$name.status" ||
		die "$name: no blocks fetched in its status: $(cat "$T/$name.status")"
done
stop_view
assert_released
check_s3_bucket "$BUCKET" "$T/dl"

# The manifest and tar of the recovery point RP, extracted by GNU tar into
# $T/x-NAME; prints that directory.
extract_rp() { # RP NAME
	local man x
	man=$(grep -l "\"${1##*/}\"" $(find "$T/dl" -name manifest.json)) ||
		die "$2: no manifest"
	x=$T/x-$2
	mkdir -p "$x"
	tar -xzf "$(dirname "$man")/backup.tar.gz" -C "$x" --xattrs \
		--xattrs-include='*' --numeric-owner --same-permissions ||
		die "$2: tar -x failed"
	cp "$man" "$T/$2.manifest.json"
	echo "$x"
}

X=$(extract_rp "$RP_XFS" xfs)
M=$T/xfs.manifest.json
[ "$(mjson "$M" 'm["method"]')" = tree ] || die "xfs: not archived as a tree"
[ "$(mjson "$M" 'm["volumes"][0]["fstype"]')" = xfs ] || die "xfs: fstype"
[ "$(mjson "$M" 'm["source"]["blocks"]')" = "$N_XFS" ] || die "xfs: blocks"
# GNU tar leaves some directory mtimes at the extraction's time: the tree
# digest leaves them out (aws_ebs.sh checks one in the listing)
same_tree "$F" "$X" --no-root --no-dir-mtime
log "xfs: the files equal the source"

X=$(extract_rp "$RP_GPT" gpt)
M=$T/gpt.manifest.json
[ "$(mjson "$M" 'm["partition_table"]')" = gpt ] || die "gpt: partition_table"
vols=$(mjson "$M" '" ".join("%s:%s:%s:%s" % (v["name"], v["fstype"], v["action"], v["entry"]) for v in m["volumes"])')
[ "$vols" = "p1:ext4:tree:p1/ p2:xfs:tree:p2/ head:None:raw:disk-head.img" ] ||
	die "gpt: volumes are $vols"
same_tree "$F" "$X/p1" --no-root --exclude lost+found --no-dir-mtime
same_tree "$F" "$X/p2" --no-root --no-dir-mtime
cmp "$X/disk-head.img" <(head -c "$(stat -c %s "$X/disk-head.img")" "$D") ||
	die "gpt: disk-head.img is not the start of the disk"
log "gpt: p1/ and p2/ equal the source, disk-head.img the disk's start"

for rp in "$RP_XFS" "$RP_GPT"; do
	[ "$(ebs_moto status "$VAULT" "$rp")" = gone ] || die "$rp not deleted"
done
