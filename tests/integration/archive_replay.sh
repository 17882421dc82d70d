#!/bin/bash
# archive_replay: `vaultfs archive` of the snapshot of a running machine -
# an image copied while mounted, its last transactions only in the journal
# (issue 10, section 2) - holds those files: the journal is replayed into
# a copy-on-write overlay served over FUSE, and the image is not modified.
#  - ext4, xfs and btrfs: a file written and fsynced (with its directory)
#    while mounted, the image copied then; precondition checked
#    (needs_recovery / a DIRTY log / a log tree; debugfs / a norecovery or
#    nologreplay mount do not show the file); the
#    archive holds it, byte for byte; manifest journal "replayed"; the
#    copy's bytes unchanged (image_sum);
#  - the same copies as writable block devices (loop devices): replayed
#    into the overlay, the device's bytes unchanged (XFS is never mounted
#    with recovery allowed on a writable device);
#  - clean ext4 and xfs: journal "clean", no overlay made;
#  - a GPT disk whose ext4 and xfs partitions both need recovery: each
#    replayed over its own byte range;
#  - --overlay-limit too small: the replay fails, the filesystem is
#    archived without it, the manifest records the volume as "not
#    replayed: the overlay is full" and the archive as incomplete;
# after each run: no loop device, mount, FUSE mount or overlay directory
# left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/replay.inc"
need_loop
need_fuse
need_fs ext4
need_fs xfs
need_fs btrfs
need_tools mkfs.ext4 mkfs.xfs mkfs.btrfs btrfs dumpe2fs debugfs xfs_logprint sgdisk losetup sha256sum cmp

# overlays are made in $TMPDIR: ours, to see that nothing is left there
export TMPDIR=$T/ovtmp
mkdir -p "$TMPDIR"

head -c $((300 * 1024 + 7)) /dev/urandom >"$T/data.bin"
printf 'committed, in the journal only\n' >"$T/note.txt"

# run NAME SRC [OPTIONS]: vaultfs archive SRC $T/NAME.tar.gz (exit status
# in $RC: 0, or 3 for an incomplete archive), then nothing left (unless
# HELD=1: the caller holds a loop device and checks later), the source's
# bytes unchanged
run() {
	local name=$1 src=$2 sha
	shift 2
	sha=$(image_sum "$src")
	RC=0
	VAULTFS_LOG=info vf archive --quiet "$@" "$src" "$T/$name.tar.gz" 2>"$T/$name.err" || RC=$?
	if grep -qE 'Sanitizer|runtime error:' "$T/$name.err"; then
		cat "$T/$name.err" >&2
		die "$name: sanitizer report"
	fi
	case $RC in
	0 | 3) ;;
	*)
		sed 's/^/    | /' "$T/$name.err" >&2
		die "$name: vaultfs archive failed (exit $RC)"
		;;
	esac
	cp "$T/$name.err" "$T/archive.err" # for assert_released's log scan
	[ "${HELD:-0}" = 1 ] || assert_released
	no_overlay_left "$TMPDIR"
	[ "$(image_sum "$src")" = "$sha" ] || die "$name: the image was modified"
	MAN=$T/$name.tar.gz.manifest.json
	[ -f "$MAN" ] || die "$name: no manifest"
}

# has NAME PATH FILE: the archive holds PATH with FILE's bytes
has() {
	tar -xzOf "$T/$1.tar.gz" "$2" >"$T/$1.got" 2>/dev/null || {
		tar -tzvf "$T/$1.tar.gz" >&2
		die "$1: $2 is not in the archive"
	}
	cmp "$3" "$T/$1.got" || die "$1: $2 differs from $3"
}

# journal NAME INDEX: the manifest's journal of volume INDEX
journal() { mjson "$MAN" "m['volumes'][$2].get('journal')"; }

expect_complete() {
	[ "$RC" = 0 ] || die "$1: exit $RC, not 0"
	[ "$(mjson "$MAN" 'm["skipped_count"]')" = 0 ] || die "$1: skipped: $(mjson "$MAN" 'm["skipped"]')"
}

# --- ext4, xfs and btrfs, copied while mounted ----------------------------
for fs in ext4 xfs btrfs; do
	snapshot_live "$fs" "$T/$fs.img" "$T/data.bin" "$T/note.txt"
	run "$fs" "$T/$fs.img.snap"
	[ "$(journal "$fs" 0)" = replayed ] || die "$fs: journal is '$(journal "$fs" 0)', not replayed"
	expect_complete "$fs"
	has "$fs" ./data.bin "$T/data.bin"
	has "$fs" ./note.txt "$T/note.txt"
	grep -q 'copy-on-write overlay' "$T/$fs.err" || die "$fs: no overlay was used"
	log "$fs copied while mounted: journal replayed, the files archived, the image unchanged"
done

# --- a writable block device: never mounted with recovery in place -------
# (the kernel's answer for XFS needs a read-only device: a writable one is
# first put behind a read-only loop device)
for fs in xfs ext4; do
	cp --sparse=always "$T/$fs.img.snap" "$T/$fs.dev.img"
	attach_rw "$T/$fs.dev.img" BDEV
	sha=$(image_sum "$T/$fs.dev.img")
	HELD=1 run "$fs-dev" "$BDEV"
	[ "$(journal "$fs-dev" 0)" = replayed ] || die "$fs-dev: journal is '$(journal "$fs-dev" 0)'"
	expect_complete "$fs-dev"
	has "$fs-dev" ./note.txt "$T/note.txt"
	losetup -d "$BDEV"
	assert_released
	[ "$(image_sum "$T/$fs.dev.img")" = "$sha" ] || die "$fs-dev: the device was written"
	log "$fs on a writable block device: replayed into the overlay, the device unchanged"
done

# --- clean filesystems: no overlay ---------------------------------------
for fs in ext4 xfs; do
	cp --sparse=always "$T/$fs.img" "$T/$fs.clean.img" # unmounted cleanly
	run "$fs-clean" "$T/$fs.clean.img"
	[ "$(journal "$fs-clean" 0)" = clean ] || die "$fs-clean: journal is '$(journal "$fs-clean" 0)', not clean"
	expect_complete "$fs-clean"
	has "$fs-clean" ./data.bin "$T/data.bin"
	! grep -q 'overlay' "$T/$fs-clean.err" || die "$fs-clean: an overlay was made for a clean filesystem"
	log "$fs unmounted cleanly: journal clean, no overlay"
done

# --- a GPT disk: both partitions need recovery ---------------------------
# (this kernel may not show partitions of loop devices: each filesystem is
# made and copied while mounted on its own, then put at its offset)
snapshot_live ext4 "$T/p1.img" "$T/note.txt"
snapshot_live xfs "$T/p2.img" "$T/data.bin"
D=$T/disk.img
truncate -s $((1 + 64 + 300 + 1))M "$D"
sgdisk -o -n 1:2048:+64M -t 1:8300 -n 2:0:+300M -t 2:8300 "$D" >/dev/null || die "sgdisk failed"
start() { sgdisk -i "$1" "$D" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
s1=$(start 1) s2=$(start 2)
[ -n "$s1" ] && [ -n "$s2" ] || die "bad test: no partition starts"
dd if="$T/p1.img.snap" of="$D" bs=1M seek=$((s1 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$T/p2.img.snap" of="$D" bs=1M seek=$((s2 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
cp --sparse=always "$D" "$D.snap"
run gpt "$D.snap"
vols=$(mjson "$MAN" '" ".join("%s:%s:%s" % (v["name"], v["action"], v.get("journal")) for v in m["volumes"])')
[ "$vols" = "p1:tree:replayed p2:tree:replayed head:raw:None" ] || die "gpt: volumes are $vols"
expect_complete gpt
has gpt p1/note.txt "$T/note.txt"
has gpt p2/data.bin "$T/data.bin"
log "gpt: each partition replayed over its own range"

# --- the overlay too small: no replay, incomplete ------------------------
for fs in ext4 xfs; do
	run "$fs-small" "$T/$fs.img.snap" --overlay-limit 8K
	case $(journal "$fs-small" 0) in
	"not replayed: the overlay is full"*) ;;
	*) die "$fs-small: journal is '$(journal "$fs-small" 0)'" ;;
	esac
	[ "$(mjson "$MAN" 'm["volumes"][0]["action"]')" = tree ] || die "$fs-small: not archived as a tree"
	[ "$(mjson "$MAN" 'm["skipped_count"]')" = 1 ] || die "$fs-small: skipped_count is not 1"
	mjson "$MAN" 'm["skipped"][0]["reason"]' | grep -q '^journal not replayed: the overlay is full' ||
		die "$fs-small: the skip says $(mjson "$MAN" 'm["skipped"][0]')"
	if [ "$RC" != 3 ]; then
		die "$fs-small: exit $RC; an incomplete archive exits 3"
	fi
	! tar -tzf "$T/$fs-small.tar.gz" | grep -qx './note.txt' || die "$fs-small: note.txt archived without a replay?"
	grep -q 'warning:.*journal not replayed' "$T/$fs-small.err" || die "$fs-small: no warning on stderr"
	log "$fs with --overlay-limit 8K: not replayed, recorded as incomplete (exit $RC)"
done

expect_fail vf archive --overlay-limit 0 "$T/ext4.img" "$T/x.tar.gz"
expect_grep 'overlay-limit' "$FAIL_OUT"
