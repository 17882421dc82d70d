#!/bin/bash
# aws_ebs_view: an EBS recovery point of an aws-backup vault read as
# vaults/VAULT/RP/disk.img in the view (`vaultfs mount`), its blocks
# fetched on demand through the EBS direct APIs on moto:
#   - disk.img is listed beside the control files, its size the volume's
#   - read whole, it is the image uploaded as the snapshot; a read at an
#     odd offset inside a written block gives that block's bytes
#   - a read of a hole (a block never written) makes no GetSnapshotBlock
#     call (moto's request log)
#   - `touch export` beside it still archives the recovery point
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
. "$(dirname "$0")/ebs.inc"
need_moto
need_fuse
need_loop
test_timeout 200

VAULT=vft-ebsview-$$-$RANDOM
make_bucket BUCKET
MiB=$((1 << 20))

[ -r "${VAULTFS_MOTO_SERVER_DIR:-}/moto.log" ] ||
	die "no moto.log in VAULTFS_MOTO_SERVER_DIR (scripts/moto-server writes it)"

# a 1 GiB volume (EBS's smallest): random bytes at the start (3 blocks of
# 512 KiB) and 2 MiB at 700 MiB (4 blocks); the rest holes
IMG=$T/raw.img
truncate -s 1G "$IMG"
head -c $((MiB + 1000)) /dev/urandom | dd of="$IMG" conv=notrunc status=none
head -c $((2 * MiB)) /dev/urandom |
	dd of="$IMG" bs=1M seek=700 conv=notrunc status=none

ebs_moto vault "$VAULT"
read -r RP N < <(ebs_moto upload "$VAULT" "$IMG")
[ "$N" = 7 ] || die "bad test: the image has $N written blocks, not 7"
SNAP=${RP##*/}
log "vault $VAULT: $RP ($N blocks)"

# GetSnapshotBlock calls moto answered for the snapshot so far
calls() {
	grep -c "\"GET /snapshots/$SNAP/blocks/[0-9]*?[^ ]* HTTP/[0-9.]*\" 200" \
		"$VAULTFS_MOTO_SERVER_DIR/moto.log" || true
}

CFG=$T/config.json
ebs_config "$CFG" "$VAULT" "$BUCKET" "$T/state" ', "autoStart": false'
VAULTFS_LOG=info mount_view "$T/mnt" "$CFG"
D=$MP/vaults/prod/$SNAP
listed() { [ -d "$D" ]; }
wait_for 60 listed
[ "$(ls "$D" | tr '\n' ' ')" = "cancel disk.img export info.json log status " ] ||
	die "the recovery point lists: $(ls "$D" | tr '\n' ' ')"
[ "$(stat -c %s "$D/disk.img")" = $((1 << 30)) ] ||
	die "disk.img is $(stat -c %s "$D/disk.img") bytes, not the volume's 1 GiB"

# a hole: kept open (the image's listing and first block are fetched at
# open), a read 300 MiB in makes no call
exec 3<"$D/disk.img"
before=$(calls)
dd bs=64K skip=$((300 * 16)) count=16 status=none <&3 >"$T/hole"
after=$(calls)
cmp "$T/hole" <(head -c $MiB /dev/zero) || die "the hole does not read as zeros"
[ "$after" = "$before" ] ||
	die "reading a hole made $((after - before)) GetSnapshotBlock calls"
# an odd offset inside the written blocks at 700 MiB
off=$((700 * MiB + 12345))
piece() { dd if="$1" iflag=skip_bytes,count_bytes skip="$off" count=777777 status=none; }
piece "$D/disk.img" >"$T/odd"
[ "$(stat -c %s "$T/odd")" = 777777 ] || die "a short read at $off"
cmp "$T/odd" <(piece "$IMG") ||
	die "disk.img at $off is not the image's bytes"
exec 3<&-
log "a hole made no call; a read at $off gave the image's bytes"

# read whole by a first opener (nothing holds the image: opened again):
# every written block fetched once, no hole
before=$(calls)
cmp "$D/disk.img" "$IMG" || die "disk.img is not the uploaded image"
got=$(($(calls) - before))
[ "$got" = "$N" ] || die "$got GetSnapshotBlock calls for $N written blocks"
log "disk.img is the image ($got GetSnapshotBlock calls for $N written blocks)"

# the control file beside it
[ "$(rp_state "$MP" prod "$SNAP")" = new ] || die "started before its export"
touch "$D/export"
archived() { [ "$(rp_state "$MP" prod "$SNAP")" = succeeded ]; }
wait_for 150 archived
stop_view
assert_released
[ "$(ebs_moto status "$VAULT" "$RP")" = gone ] || die "$RP not deleted"
