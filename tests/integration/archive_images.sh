#!/bin/bash
# archive_images: `vaultfs archive IMAGE s3://bucket/prefix/` in auto mode,
# with real loop devices and read-only mounts:
#  - an ext4 image (mkfs.ext4 -d) and an xfs image (populated through a
#    read-write mount) -> backup.tar.gz whose files equal the filesystem's
#    (content, modes, owners, mtimes, links, xattrs); an xfs image with a
#    dirty log -> a tree with the log replayed (into a copy-on-write
#    overlay, archive_replay.sh has more), the image unchanged;
#  - a GPT disk with an ext4, an xfs and an unformatted partition -> one tar
#    with p1/, p2/ and p3.img (the raw partition), and disk-head.img;
#  - an image with no filesystem -> rawbackup.gz, `gunzip | cmp` equal;
#  - ext4 with its primary superblock zeroed, and ext4 with a superblock
#    that fails its checksum -> raw with a warning (stderr and manifest),
#    never a crash; a mount that fails (VAULTFS_FAULT arc.mount) -> raw too;
#  - --mode tree on an image with no filesystem: a clear error;
#  - --mode raw on the ext4 image: the image's bytes, no loop device.
# After every run: no loop device backed by the test's files, no mount of
# one, and the manifest's sha256 is the downloaded object's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_loop
need_fs ext4
need_fs xfs
need_tools mkfs.ext4 mkfs.xfs xfs_io xfs_freeze xfs_logprint sgdisk losetup bsdtar getfattr setfattr gzip cmp

MiB=$((1024 * 1024))
make_bucket B

# archive NAME SRC [OPTIONS]: vaultfs archive SRC s3://$B/NAME/, then the
# object and the manifest downloaded to $T/NAME.{obj,json}; $OBJ and $MAN
# name them. Checks the sha256, and that nothing is left attached.
archive() {
	local name=$1 src=$2 key
	shift 2
	vf_archive "$@" "$src" "s3://$B/$name/"
	cp "$T/archive.err" "$T/$name.err"
	assert_released
	MAN=$T/$name.json
	s3_req GET "$B/$name/manifest.json" -o "$MAN" || die "$name: no manifest.json"
	key=$(mjson "$MAN" 'm["object"]')
	key=${key#s3://"$B"/}
	case $(mjson "$MAN" 'm["method"]') in
	tree) [ "$key" = "$name/backup.tar.gz" ] || die "$name: a tree stored as $key" ;;
	raw) [ "$key" = "$name/rawbackup.gz" ] || die "$name: a raw image stored as $key" ;;
	*) die "$name: method $(mjson "$MAN" 'm["method"]')" ;;
	esac
	OBJ=$T/$name.obj
	s3_req GET "$B/$key" -o "$OBJ" || die "$name: cannot download $key"
	[ "$(sha256sum <"$OBJ" | cut -d' ' -f1)" = "$(mjson "$MAN" 'm["sha256"]')" ] ||
		die "$name: the manifest's sha256 is not the object's"
	gzip -t "$OBJ" || die "$name: gzip -t failed"
}

# extract NAME: bsdtar -x of $T/NAME.obj into $T/NAME.x (printed)
extract() {
	local x=$T/$1.x
	mkdir "$x"
	timeout 300 bsdtar -xpf "$T/$1.obj" --xattrs --acls --numeric-owner -C "$x" 2>"$T/$1.bsdtar" || {
		cat "$T/$1.bsdtar" >&2
		die "$1: bsdtar -x failed"
	}
	[ ! -s "$T/$1.bsdtar" ] || { cat "$T/$1.bsdtar" >&2; die "$1: bsdtar complained"; }
	echo "$x"
}

# expect_method NAME tree|raw
expect_method() {
	[ "$(mjson "$T/$1.json" 'm["method"]')" = "$2" ] || {
		cat "$T/$1.json" >&2
		die "$1: method is not $2"
	}
}

# expect_raw_warning NAME: warned on stderr and in the manifest
expect_raw_warning() {
	[ "$(mjson "$T/$1.json" 'm["warnings_count"]')" -ge 1 ] || die "$1: no warning in the manifest"
	mjson "$T/$1.json" 'm["warnings"]' | grep -qi 'raw' || die "$1: the warning does not say raw"
	grep -qiE 'warning:.*raw' "$T/$1.err" || { cat "$T/$1.err" >&2; die "$1: no warning on stderr"; }
}

# --- what goes into the filesystems ---------------------------------------
F=$T/files
make_files "$F"

# same_files NAME DIR: DIR (an extraction) holds what $F holds
same_files() {
	same_tree "$F" "$2" --no-root --exclude lost+found
	grep -q 'user.colour' "$T/digest.a" || die "bad test: no xattr in the digest"
	log "$1: the files equal the source"
}

# --- ext4 -----------------------------------------------------------------
truncate -s 32M "$T/ext4.img"
mkfs.ext4 -q -F -L vfext4 -d "$F" "$T/ext4.img"
archive ext4 "$T/ext4.img"
expect_method ext4 tree
[ "$(mjson "$MAN" 'm["volumes"][0]["fstype"]')" = ext4 ] || die "ext4: fstype not ext4"
[ "$(mjson "$MAN" 'm["volumes"][0]["action"]')" = tree ] || die "ext4: volume not archived as a tree"
[ "$(mjson "$MAN" 'm["warnings_count"]')" = 0 ] || die "ext4: warnings: $(mjson "$MAN" 'm["warnings"]')"
tar -tzf "$OBJ" --warning=no-unknown-keyword >"$T/ext4.list" || die "ext4: GNU tar -t failed"
grep -qx './sub/numbers' "$T/ext4.list" || die "ext4: GNU tar does not list ./sub/numbers"
same_files ext4 "$(extract ext4)"
sha_ext4=$(image_sum "$T/ext4.img")

# --- xfs --------------------------------------------------------------------
truncate -s 300M "$T/xfs.img"
mkfs.xfs -q -f -L vfxfs "$T/xfs.img"
attach_rw "$T/xfs.img" XDEV
mount_rw "$XDEV" "$T/mnt"
cp -a "$F/." "$T/mnt/"
umount_detach "$T/mnt" "$XDEV"
assert_released
archive xfs "$T/xfs.img"
expect_method xfs tree
[ "$(mjson "$MAN" 'm["volumes"][0]["fstype"]')" = xfs ] || die "xfs: fstype not xfs"
same_files xfs "$(extract xfs)"

# --- xfs with a dirty log: replayed into an overlay, the image untouched ---
# Files made before a freeze are in place; the log written after it is left
# dirty by a shutdown, and replayed into a copy-on-write overlay (a plain
# read-only mount of a read-only device refuses such a filesystem).
truncate -s 300M "$T/dirty.img"
mkfs.xfs -q -f "$T/dirty.img"
attach_rw "$T/dirty.img" XDEV
mount_rw "$XDEV" "$T/mnt2"
mkdir "$T/mnt2/d"
printf 'before\n' >"$T/mnt2/d/before"
xfs_freeze -f "$T/mnt2" && xfs_freeze -u "$T/mnt2" || die "xfs_freeze failed"
printf 'after\n' >"$T/mnt2/after"
sync
xfs_io -x -c shutdown "$T/mnt2" || die "xfs_io shutdown failed"
umount_detach "$T/mnt2" "$XDEV"
xfs_logprint -t "$T/dirty.img" 2>/dev/null | grep -q 'state: <DIRTY>' || die "bad test: the xfs log is not dirty"
sha_dirty=$(image_sum "$T/dirty.img")
archive dirty "$T/dirty.img"
expect_method dirty tree
tar -tzf "$OBJ" --warning=no-unknown-keyword >"$T/dirty.list" || die "dirty: GNU tar -t failed"
grep -qx './d/before' "$T/dirty.list" || die "dirty: ./d/before is not in the tar"
grep -qx './after' "$T/dirty.list" || die "dirty: ./after (in the log only) is not in the tar"
[ "$(mjson "$MAN" 'm["volumes"][0]["journal"]')" = replayed ] || die "dirty: the log was not replayed"
[ "$(image_sum "$T/dirty.img")" = "$sha_dirty" ] || die "dirty: the image was modified (log replayed in place?)"
log "xfs with a dirty log: archived with the log replayed, the image unchanged"

# --- GPT: ext4, xfs and an unformatted partition -----------------------------
# Partitions are made apart and copied in at their offsets (sparse).
D=$T/disk.img
truncate -s $((1 + 32 + 300 + 4 + 1))M "$D"
sgdisk -o -n 1:2048:+32M -t 1:8300 -c 1:one -n 2:0:+300M -t 2:8300 -c 2:two \
	-n 3:0:+4M -t 3:8300 -c 3:three "$D" >/dev/null || die "sgdisk failed"
start() { sgdisk -i "$1" "$D" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
s1=$(start 1) s2=$(start 2) s3=$(start 3)
[ -n "$s1" ] && [ -n "$s2" ] && [ -n "$s3" ] || die "bad test: no partition starts"
head -c $((4 * MiB)) /dev/urandom >"$T/p3.bin"
dd if="$T/ext4.img" of="$D" bs=1M seek=$((s1 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$T/xfs.img" of="$D" bs=1M seek=$((s2 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$T/p3.bin" of="$D" bs=1M seek=$((s3 * 512)) oflag=seek_bytes conv=notrunc status=none
archive gpt "$D"
expect_method gpt tree
[ "$(mjson "$MAN" 'm["partition_table"]')" = gpt ] || die "gpt: partition_table is not gpt"
vols=$(mjson "$MAN" '" ".join("%s:%s:%s:%s" % (v["name"], v["fstype"], v["action"], v["entry"]) for v in m["volumes"])')
log "gpt volumes: $vols"
[ "$vols" = "p1:ext4:tree:p1/ p2:xfs:tree:p2/ p3:None:raw:p3.img head:None:raw:disk-head.img" ] || die "gpt: volumes are $vols"
X=$(extract gpt)
[ -d "$X/p1" ] && [ -d "$X/p2" ] || die "gpt: no p1/ or p2/ in the tar"
same_tree "$F" "$X/p1" --no-root --exclude lost+found
same_tree "$F" "$X/p2" --no-root
cmp "$T/p3.bin" "$X/p3.img" || die "gpt: p3.img is not partition 3's bytes"
if [ -e "$X/disk-head.img" ]; then
	cmp "$X/disk-head.img" <(head -c "$(stat -c %s "$X/disk-head.img")" "$D") ||
		die "gpt: disk-head.img is not the start of the disk"
else
	die "gpt: no disk-head.img (the partition table) in the tar"
fi
log "gpt: p1/ and p2/ equal the source, p3.img and disk-head.img the disk's bytes"

# --- no filesystem -> raw ----------------------------------------------------
head -c $((8 * MiB)) /dev/urandom >"$T/random.img"
archive random "$T/random.img"
expect_method random raw
expect_raw_warning random
gzip -dc "$T/random.obj" | cmp - "$T/random.img" || die "random: gunzip | cmp differs"
log "random: raw, with a warning; gunzip | cmp equal"

# --- corrupt superblocks -> raw with a warning ----------------------------
cp --sparse=always "$T/ext4.img" "$T/zeroed.img"
dd if=/dev/zero of="$T/zeroed.img" bs=1024 seek=1 count=1 conv=notrunc status=none
archive zeroed "$T/zeroed.img"
expect_method zeroed raw
expect_raw_warning zeroed
gzip -dc "$T/zeroed.obj" | cmp - "$T/zeroed.img" || die "zeroed: gunzip | cmp differs"
log "ext4 with its superblock zeroed: raw, with a warning"

# s_log_block_size (offset 24 of the superblock) set to 0x7f: the magic is
# there, the checksum and the geometry are wrong
cp --sparse=always "$T/ext4.img" "$T/badsb.img"
printf '\x7f' | dd of="$T/badsb.img" bs=1 seek=$((1024 + 24)) conv=notrunc status=none
archive badsb "$T/badsb.img"
expect_method badsb raw
expect_raw_warning badsb
[ "$(mjson "$MAN" 'm["volumes"][0]["action"]')" = raw ] || die "badsb: volume action is not raw"
gzip -dc "$T/badsb.obj" | cmp - "$T/badsb.img" || die "badsb: gunzip | cmp differs"
log "ext4 with a bad superblock: raw, with a warning ($(mjson "$MAN" 'm["warnings"][0]'))"

# a mount that fails
VAULTFS_FAULT=arc.mount@1+ archive mountfail "$T/ext4.img"
expect_method mountfail raw
expect_raw_warning mountfail
gzip -dc "$T/mountfail.obj" | cmp - "$T/ext4.img" || die "mountfail: gunzip | cmp differs"
log "ext4 that would not mount: raw, with a warning"

# --- modes -----------------------------------------------------------------
expect_fail vf archive --quiet --mode tree "$T/random.img" "s3://$B/tree-mode/"
expect_grep "random.img" "$FAIL_OUT"
assert_released
object_absent "$B" tree-mode/backup.tar.gz
object_absent "$B" tree-mode/rawbackup.gz
no_multipart_uploads "$B"

archive rawmode "$T/ext4.img" --mode raw
expect_method rawmode raw
gzip -dc "$T/rawmode.obj" | cmp - "$T/ext4.img" || die "rawmode: gunzip | cmp differs"
[ "$(mjson "$MAN" 'm["warnings_count"]')" = 0 ] || die "rawmode: warnings in raw mode"
log "--mode raw: the image's bytes, no warning"

[ "$(image_sum "$T/ext4.img")" = "$sha_ext4" ] || die "the ext4 image was modified"
no_multipart_uploads "$B"
