#!/bin/bash
# restore_images: `vaultfs restore` of what the archiver makes of disk
# images, with real loop devices:
#  - an ext4 image archived as a tree (mounted read-only by the archiver),
#    restored: equal to the files put in it;
#  - a GPT disk (an ext4 partition, an unformatted one): p1/ restored equal
#    to the files, p2.img and disk-head.img equal to the disk's bytes;
#    --path p1/sub (and the target of a hard link in it) only those;
#  - a raw image restored onto a block device (a loop device that held
#    other bytes: the zeros are written too) equal to the image;
#  - a mounted block device, and a device a partition of which is mounted,
#    are refused and left untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_loop
need_fs ext4
need_tools mkfs.ext4 sgdisk losetup getfattr setfattr cmp

MiB=$((1024 * 1024))
make_bucket B
F=$T/files
make_files "$F"


# --- ext4 -------------------------------------------------------------------
truncate -s 32M "$T/ext4.img"
mkfs.ext4 -q -F -L vfext4 -d "$F" "$T/ext4.img"
vf_archive "$T/ext4.img" "s3://$B/ext4/"
assert_released
vf_restore "s3://$B/ext4/" "$T/r-ext4"
same_tree "$F" "$T/r-ext4" --no-root --exclude lost+found
grep -q 'user.colour' "$T/digest.a" || die "bad test: no xattr in the digest"
log "ext4: the restored tree equals the files"

# --- GPT: an ext4 and an unformatted partition -----------------------------
D=$T/disk.img
truncate -s $((1 + 32 + 4 + 1))M "$D"
sgdisk -o -n 1:2048:+32M -t 1:8300 -n 2:0:+4M -t 2:8300 "$D" >/dev/null || die "sgdisk failed"
start() { sgdisk -i "$1" "$D" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
s1=$(start 1) s2=$(start 2)
[ -n "$s1" ] && [ -n "$s2" ] || die "bad test: no partition starts"
head -c $((4 * MiB)) /dev/urandom >"$T/p2.bin"
dd if="$T/ext4.img" of="$D" bs=1M seek=$((s1 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$T/p2.bin" of="$D" bs=1M seek=$((s2 * 512)) oflag=seek_bytes conv=notrunc status=none
mkdir -p "$T/store/gpt"
vf_archive "$D" "$T/store/gpt/"
assert_released
vf_restore "$T/store/gpt/" "$T/r-gpt"
same_tree "$F" "$T/r-gpt/p1" --no-root --exclude lost+found
cmp "$T/p2.bin" "$T/r-gpt/p2.img" || die "gpt: p2.img is not partition 2's bytes"
cmp "$T/r-gpt/disk-head.img" <(head -c "$(stat -c %s "$T/r-gpt/disk-head.img")" "$D") ||
	die "gpt: disk-head.img is not the start of the disk"
# (sub/random-link is a hard link to random: its target goes too)
vf_restore "$T/store/gpt/" "$T/r-gpt-sub" --path p1/sub --path p1/random
[ "$(cd "$T/r-gpt-sub" && find . -mindepth 1 -maxdepth 1)" = ./p1 ] || die "gpt --path: more than p1/"
[ "$(cd "$T/r-gpt-sub/p1" && find . -mindepth 1 -maxdepth 1 | sort | xargs)" = "./random ./sub" ] ||
	die "gpt --path: more than p1/sub and p1/random"
same_tree "$F/sub" "$T/r-gpt-sub/p1/sub"
log "gpt: p1/ equals the files, p2.img and disk-head.img the disk's bytes; --path p1/sub alone"

# --- raw onto a block device ------------------------------------------------
truncate -s 16M "$T/raw.img"
head -c $((2 * MiB)) /dev/urandom | dd of="$T/raw.img" bs=1M seek=3 conv=notrunc status=none
printf 'last' | dd of="$T/raw.img" bs=1 seek=$((16 * MiB - 4)) conv=notrunc status=none
vf_archive --mode raw "$T/raw.img" "s3://$B/raw/"
head -c $((16 * MiB)) /dev/urandom >"$T/dev.img" # what the device held before
attach_rw "$T/dev.img" DEV
vf_restore "s3://$B/raw/" "$DEV"
cmp "$DEV" "$T/raw.img" || die "raw: the device does not hold the image"
log "raw onto $DEV: equal to the image, zeros included"

# --- a mounted device, or one with a mounted partition: refused ---------------
cp --sparse=always "$T/ext4.img" "$T/m.img"
attach_rw "$T/m.img" MDEV
# mounted read-only (noload): mounted, yet nothing but us could write it
mount_ro() {
	mkdir -p "$2"
	timeout 60 mount -o ro,noload "$1" "$2" || die "mount $1 failed"
	on_exit "umount -l '$2'"
}
sum=$(image_sum "$T/m.img")
mount_ro "$MDEV" "$T/mnt"
expect_fail vf restore "s3://$B/raw/" "$MDEV"
expect_grep "$MDEV is mounted on $T/mnt: refused" "$FAIL_OUT"
cp --sparse=always "$D" "$T/pm.img"
attach "$T/pm.img" PDEV -P
sleep 0.5
if [ -b "${PDEV}p1" ]; then
	psum=$(image_sum "$T/pm.img")
	mount_ro "${PDEV}p1" "$T/pmnt"
	expect_fail vf restore "s3://$B/raw/" "$PDEV"
	expect_grep "is mounted on $T/pmnt (a partition): refused" "$FAIL_OUT"
	timeout 60 umount "$T/pmnt"
	[ "$(image_sum "$T/pm.img")" = "$psum" ] || die "a refused device was written"
else
	log "no partition nodes for $PDEV: the mounted-partition case is not run"
fi
timeout 60 umount "$T/mnt"
[ "$(image_sum "$T/m.img")" = "$sum" ] || die "a refused device was written"
log "mounted devices refused, untouched"
