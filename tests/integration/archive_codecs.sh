#!/bin/bash
# archive_codecs: the codecs' output opens with the stock tools, it has the
# layout of docs/archive-format.md, and the manifest describes the object.
#  - gzip (default): `gzip -t` and `pigz -t` pass, Python's gzip, bsdtar
#    and tarfile read it, GNU tar extracts a tree equal to the source; it
#    is independent members walked by MSIZE (archive_format.py, a reader
#    of the format page alone), and its index (backup.tar.gz.index, named
#    in the manifest with its size and sha256) lists exactly those members
#    and every tar entry at the offsets where tarfile finds it; levels 1
#    and 9 and one or two threads give the same tar;
#  - zstd: `zstd -t` passes, decompresses to the same tar; its seek table
#    and its index describe its frames and entries;
#  - none: backup.tar is that tar;
#  - the manifest: source, mode, method, compression codec/level/threads,
#    bytes_written (= the object's size), bytes_read (= the files' bytes),
#    files, dirs, started <= finished, vaultfs_version, sha256 and ETag of
#    the object as stored;
#  - raw: a 4 GiB sparse image (data at a few offsets, 64 MiB of written
#    zeros) decompresses to its exact bytes (its holes compared with
#    zeros), from the file (holes) with gzip, and a 512 MiB one through a
#    loop device (zero blocks, no holes) with zstd; the objects stay small;
#  - DEST forms: an existing local directory, a local file (manifest as
#    FILE.manifest.json), `-` (stdout, no manifest), an explicit S3 key
#    (KEY.manifest.json), --manifest elsewhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_tools gzip pigz zstd tar bsdtar cmp sha256sum

MiB=$((1024 * 1024))
GiB=$((1024 * MiB))
make_bucket B

# --- the source: real text, random bytes, written zeros ---------------------
S=$T/src
mkdir "$S"
cp -a /usr/include/linux "$S/linux" || die "bad test: no /usr/include/linux"
head -c $((6 * MiB)) /dev/urandom >"$S/random"
head -c $((4 * MiB)) /dev/zero >"$S/zeros"
printf 'small\n' >"$S/small"
ln -s linux "$S/link"
nfiles=$(find "$S" -type f | wc -l)
ndirs=$(find "$S" -type d | wc -l)
nbytes=$(find "$S" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
log "source: $nfiles files, $ndirs dirs, $nbytes bytes"

# fetch KEY FILE: the object, downloaded (GetObject)
fetch() { s3_req GET "$B/$1" -o "$2" || die "cannot download s3://$B/$1"; }

# check_manifest MANIFEST OBJECT CODEC LEVEL: the fields every manifest has
check_manifest() {
	local m=$1 obj=$2 v
	[ "$(mjson "$m" 'm["sha256"]')" = "$(sha256sum <"$obj" | cut -d' ' -f1)" ] ||
		die "$m: sha256 is not that of the object"
	[ "$(mjson "$m" 'm["bytes_written"]')" = "$(stat -c %s "$obj")" ] ||
		die "$m: bytes_written is not the object's size"
	[ "$(mjson "$m" 'm["compression"]["codec"]')" = "$3" ] || die "$m: codec is not $3"
	[ "$(mjson "$m" 'm["compression"]["level"]')" = "$4" ] || die "$m: level is not $4"
	[ "$(mjson "$m" 'm["compression"]["threads"]')" -ge 1 ] || die "$m: no threads"
	v=$("$VAULTFS" --version | awk '{print $NF}')
	[ "$(mjson "$m" 'm["vaultfs_version"]')" = "$v" ] || die "$m: vaultfs_version is not $v"
	python3 - "$m" <<'EOF' || die "$m: started/finished are not ISO 8601 times in order"
import datetime, json, sys
m = json.load(open(sys.argv[1]))
p = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
a, b = p(m["started"]), p(m["finished"])
now = datetime.datetime.utcnow()
assert a <= b <= now + datetime.timedelta(seconds=5), (a, b, now)
assert (now - a).total_seconds() < 3600, (a, now)
EOF
}

# check_tree_manifest MANIFEST: what the source tree holds
check_tree_manifest() {
	local m=$1
	[ "$(mjson "$m" 'm["source"]')" = "$(realpath "$S")" ] || die "$m: source is not $S"
	[ "$(mjson "$m" 'm["mode"]')" = auto ] || die "$m: mode is not auto"
	[ "$(mjson "$m" 'm["method"]')" = tree ] || die "$m: method is not tree"
	[ "$(mjson "$m" 'm["files"]')" = "$nfiles" ] || die "$m: files is not $nfiles"
	[ "$(mjson "$m" 'm["dirs"]')" = "$ndirs" ] || die "$m: dirs is not $ndirs"
	[ "$(mjson "$m" 'm["symlinks"]')" = 1 ] || die "$m: symlinks is not 1"
	[ "$(mjson "$m" 'm["bytes_read"]')" = "$nbytes" ] || die "$m: bytes_read is not $nbytes"
	[ "$(mjson "$m" 'm["skipped_count"]')" = 0 ] || die "$m: entries skipped"
}

# format_ok ARCHIVE [INDEX]: the layout of docs/archive-format.md, read by
# archive_format.py; with INDEX, its members and entries are the archive's
format_ok() {
	python3 "$(dirname "$0")/archive_format.py" "$@" >"$T/format.out" ||
		die "$1: not the layout of docs/archive-format.md"
	cat "$T/format.out"
}

# index_ok MANIFEST INDEX: the manifest names the index, its size, sha256
index_ok() {
	[ "$(mjson "$1" 'm["indexed"]')" = true ] || die "$1: not indexed"
	[ "$(mjson "$1" 'm["index"]["size"]')" = "$(stat -c %s "$2")" ] ||
		die "$1: index.size is not that of $2"
	[ "$(mjson "$1" 'm["index"]["sha256"]')" = "$(sha256sum <"$2" | cut -d' ' -f1)" ] ||
		die "$1: index.sha256 is not that of $2"
	[ "$(mjson "$1" 'm["index"]["object"]')" = "$(mjson "$1" 'm["object"]').index" ] ||
		die "$1: index.object is not OBJECT.index"
}

# --- gzip -------------------------------------------------------------------
vf_archive --part-size 5M "$S" "s3://$B/gz/"
fetch gz/backup.tar.gz "$T/gz.tgz"
fetch gz/manifest.json "$T/gz.json"
fetch gz/backup.tar.gz.index "$T/gz.tgz.index"
gzip -t "$T/gz.tgz" || die "gzip -t failed"
pigz -t "$T/gz.tgz" || die "pigz -t failed"
n=$(format_ok "$T/gz.tgz" "$T/gz.tgz.index") || exit 1
[ "${n#members }" != "$n" ] && [ "$(echo "$n" | awk '{print $2}')" -ge 3 ] ||
	die "gzip: '$n': not several members for ~15 MB of input"
[ "$(mjson "$T/gz.json" 'm["members"]')" = "$(echo "$n" | awk '{print $2}')" ] ||
	die "gzip: the manifest's members are not the archive's ($n)"
index_ok "$T/gz.json" "$T/gz.tgz.index"
python3 -c 'import gzip, sys; gzip.open(sys.argv[1]).read()' "$T/gz.tgz" ||
	die "Python's gzip cannot read it"
bsdtar -tzf "$T/gz.tgz" >"$T/bsdtar.list" || die "bsdtar -t failed"
[ "$(wc -l <"$T/bsdtar.list")" = "$(mjson "$T/gz.json" 'm["tar"]["entries"]')" ] ||
	die "bsdtar lists $(wc -l <"$T/bsdtar.list") entries, the manifest says otherwise"
check_manifest "$T/gz.json" "$T/gz.tgz" gzip 6
check_tree_manifest "$T/gz.json"
etag=$(object_etag "$B" gz/backup.tar.gz)
[ "$(mjson "$T/gz.json" 'm["etag"]')" = "$etag" ] || die "manifest etag is not the object's ($etag)"
[ "$etag" = "$(multipart_etag "$T/gz.tgz" $((5 * MiB)))" ] || die "ETag $etag is not that of 5 MiB parts"
[ "$(mjson "$T/gz.json" 'm["parts"]')" = "${etag##*-}" ] || die "manifest parts is not ${etag##*-}"
gzip -dc "$T/gz.tgz" >"$T/ref.tar"
pigz -dc "$T/gz.tgz" | cmp - "$T/ref.tar" || die "pigz -d and gzip -d differ"
# The tar holds atimes, which reading the source here changes: tars are
# compared by their entries (tar_digest), not byte for byte.
tar_digest "$T/ref.tar" >"$T/ref.dig" || die "tarfile cannot read the tar"
tree_digest "$S" --no-xattrs >"$T/src.dig"
diff -u "$T/src.dig" "$T/ref.dig" | head -50 >&2
cmp -s "$T/src.dig" "$T/ref.dig" || die "the tar's entries differ from the source"
# same_tar FILE WHAT: FILE (a tar, gzipped or not) holds what ref.tar holds
same_tar() {
	tar_digest "$1" >"$T/other.dig" || die "$2: tarfile cannot read it"
	diff -u "$T/ref.dig" "$T/other.dig" | head -50 >&2
	cmp -s "$T/ref.dig" "$T/other.dig" || die "$2: another tar"
}
mkdir "$T/x"
tar -xpf "$T/ref.tar" --delay-directory-restore -C "$T/x" || die "GNU tar -x failed"
same_tree "$S" "$T/x" --no-root
log "gzip: gzip -t, pigz -t, Python, bsdtar; $n, index checked; $etag; extracts equal to the source"

for v in "1 1" "9 2"; do
	set -- $v
	vf_archive --level "$1" --threads "$2" "$S" "$T/l$1t$2.tgz"
	format_ok "$T/l$1t$2.tgz" "$T/l$1t$2.tgz.index" >/dev/null
	same_tar "$T/l$1t$2.tgz" "level $1, $2 threads"
	check_manifest "$T/l$1t$2.tgz.manifest.json" "$T/l$1t$2.tgz" gzip "$1"
	[ "$(mjson "$T/l$1t$2.tgz.manifest.json" 'm["compression"]["threads"]')" = "$2" ] ||
		die "level $1: threads is not $2"
done
s1=$(stat -c %s "$T/l1t1.tgz") s9=$(stat -c %s "$T/l9t2.tgz")
[ "$s9" -lt "$s1" ] || die "level 9 ($s9 bytes) is not smaller than level 1 ($s1 bytes)"
log "gzip: levels 1 ($s1 bytes) and 9 ($s9 bytes), 1 and 2 threads: the same tar"

# --- zstd -------------------------------------------------------------------
vf_archive --codec zstd --level 9 "$S" "s3://$B/zst/"
fetch zst/backup.tar.zst "$T/zst.tzst"
fetch zst/manifest.json "$T/zst.json"
fetch zst/backup.tar.zst.index "$T/zst.tzst.index"
zstd -q -t "$T/zst.tzst" || die "zstd -t failed"
zstd -q -dc "$T/zst.tzst" >"$T/zst.tar" || die "zstd -d failed"
same_tar "$T/zst.tar" zstd
n=$(format_ok "$T/zst.tzst" "$T/zst.tzst.index") || exit 1
index_ok "$T/zst.json" "$T/zst.tzst.index"
check_manifest "$T/zst.json" "$T/zst.tzst" zstd 9
check_tree_manifest "$T/zst.json"
object_absent "$B" zst/backup.tar.gz
log "zstd: zstd -t passes; the same tar; seek table and index: $n"

# --- none -------------------------------------------------------------------
vf_archive --codec none "$S" "s3://$B/none/"
fetch none/backup.tar "$T/none.tar"
fetch none/manifest.json "$T/none.json"
same_tar "$T/none.tar" none
check_manifest "$T/none.json" "$T/none.tar" none 0
log "none: backup.tar is the tar"

# --- DEST forms -------------------------------------------------------------
mkdir "$T/dir"
vf_archive "$S" "$T/dir"
[ -f "$T/dir/backup.tar.gz" ] && [ -f "$T/dir/manifest.json" ] || die "a local directory DEST: not backup.tar.gz + manifest.json"
check_manifest "$T/dir/manifest.json" "$T/dir/backup.tar.gz" gzip 6

vf archive --quiet "$S" - >"$T/stdout.tgz" 2>"$T/archive.err" || { cat "$T/archive.err" >&2; die "DEST - failed"; }
gzip -t "$T/stdout.tgz" || die "DEST -: gzip -t failed"
same_tar "$T/stdout.tgz" "DEST -"
format_ok "$T/stdout.tgz" >/dev/null
[ ! -e ./-.manifest.json ] && [ ! -e "$T/-.manifest.json" ] || die "DEST -: a manifest was written"

vf_archive --manifest "$T/elsewhere.json" "$S" "s3://$B/key/my.tgz"
fetch key/my.tgz "$T/my.tgz"
check_manifest "$T/elsewhere.json" "$T/my.tgz" gzip 6
object_absent "$B" key/my.tgz.manifest.json
vf_archive "$S" "s3://$B/key/other.tgz"
fetch key/other.tgz.manifest.json "$T/other.json"
fetch key/other.tgz "$T/other.tgz"
check_manifest "$T/other.json" "$T/other.tgz" gzip 6
log "DEST: local directory, -, explicit S3 keys, --manifest"

# --- what the index must get right: sparse files, long names, links -------------
O=$T/odd
mkdir -p "$O/$(printf 'long-name-%.0s' {1..20})/deeper"
truncate -s 10M "$O/sparse"
printf 'data' | dd of="$O/sparse" bs=1 seek=5000000 conv=notrunc status=none
printf 'x\n' >"$O/$(printf 'long-name-%.0s' {1..20})/deeper/$(printf 'file-%.0s' {1..30})"
ln "$O/sparse" "$O/hard"
ln -s sparse "$O/soft"
mkfifo "$O/fifo"
mknod "$O/null" c 1 3
for c in gz zst; do
	mkdir "$T/odd-$c"
	vf_archive --codec "$([ $c = gz ] && echo gzip || echo zstd)" "$O" "$T/odd-$c/"
	n=$(format_ok "$T/odd-$c/backup.tar.$c" "$T/odd-$c/backup.tar.$c.index") || exit 1
	vf verify "$T/odd-$c/" >/dev/null || die "odd tree ($c): vaultfs verify failed"
done
log "sparse, long names, hard and soft links, fifo, device: $n, at the offsets tarfile finds"

# --- raw: a 4 GiB mostly-empty image ----------------------------------------
I=$T/big.img
truncate -s 4G "$I"
for off in 0 1 2047 4095; do # MiB
	head -c $((3 * MiB / 2)) /dev/urandom | dd of="$I" bs=1M seek=$off conv=notrunc status=none
done
dd if=/dev/zero of="$I" bs=1M seek=3000 count=64 conv=notrunc status=none # written zeros, not a hole
truncate -s 4G "$I"
[ "$(stat -c %s "$I")" = $((4 * GiB)) ] || die "bad test: the image is not 4 GiB"
t0=$SECONDS
vf_archive --mode raw "$I" "s3://$B/raw/"
log "raw 4 GiB image (gzip) archived in $((SECONDS - t0)) s"
fetch raw/rawbackup.gz "$T/raw.gz"
fetch raw/manifest.json "$T/raw.json"
fetch raw/rawbackup.gz.index "$T/raw.gz.index"
check_manifest "$T/raw.json" "$T/raw.gz" gzip 6
index_ok "$T/raw.json" "$T/raw.gz.index"
[ "$(mjson "$T/raw.json" 'm["method"]')" = raw ] || die "raw: method is not raw"
[ "$(mjson "$T/raw.json" 'm["bytes_read"]')" -le $((4 * GiB)) ] || die "raw: bytes_read past the image"
[ "$(mjson "$T/raw.json" 'm["bytes_zero"]')" -ge $((4 * GiB - 8 * MiB)) ] ||
	die "raw: bytes_zero $(mjson "$T/raw.json" 'm["bytes_zero"]'): zeros not sent as zeros"
size=$(stat -c %s "$T/raw.gz")
[ "$size" -lt $((16 * MiB)) ] || die "raw: $size bytes for 6 MiB of data in 4 GiB"
timeout 300 pigz -dc "$T/raw.gz" | same_bytes "$I" || die "raw (gzip): pigz -d differs from the image" # pigz -d: twice as fast as gzip -d here
log "raw (gzip, from the file): $size bytes, decompresses to the image's exact bytes"

# Through a loop device there are no holes to seek past: every zero block
# is read and must be found zero (512 MiB: the same path, in less time).
I1=$T/half.img
truncate -s 512M "$I1"
for off in 0 255 511; do # MiB
	head -c $((3 * MiB / 2)) /dev/urandom | dd of="$I1" bs=1M seek=$off conv=notrunc status=none
done
truncate -s 512M "$I1"
attach_ro "$I1" LDEV
t0=$SECONDS
vf_archive --mode raw --codec zstd "$LDEV" "s3://$B/rawdev/"
log "raw 512 MiB loop device (zstd) archived in $((SECONDS - t0)) s"
fetch rawdev/rawbackup.zst "$T/rawdev.zst"
fetch rawdev/manifest.json "$T/rawdev.json"
check_manifest "$T/rawdev.json" "$T/rawdev.zst" zstd 3
[ "$(mjson "$T/rawdev.json" 'm["source"]')" = "$LDEV" ] || die "raw device: source is not $LDEV"
[ "$(mjson "$T/rawdev.json" 'm["bytes_zero"]')" -ge $((512 * MiB - 6 * MiB)) ] ||
	die "raw device: bytes_zero $(mjson "$T/rawdev.json" 'm["bytes_zero"]'): zero blocks not detected"
size=$(stat -c %s "$T/rawdev.zst")
[ "$size" -lt $((8 * MiB)) ] || die "raw device: $size bytes for 4.5 MiB of data in 512 MiB"
zstd -q -t "$T/rawdev.zst" || die "zstd -t failed"
timeout 300 zstd -q -dc "$T/rawdev.zst" | cmp - "$I1" || die "raw (zstd, loop device): unzstd | cmp differs"
losetup -d "$LDEV"
log "raw (zstd, loop device): $size bytes, decompresses to the device's exact bytes"

# raw, no codec: rawbackup.img
head -c $((3 * MiB)) /dev/urandom >"$T/small.img"
head -c $((5 * MiB)) /dev/zero >>"$T/small.img"
vf_archive --mode raw --codec none "$T/small.img" "s3://$B/rawnone/"
fetch rawnone/rawbackup.img "$T/rawnone.img"
cmp "$T/rawnone.img" "$T/small.img" || die "raw none: rawbackup.img is not the image"
fetch rawnone/manifest.json "$T/rawnone.json"
check_manifest "$T/rawnone.json" "$T/rawnone.img" none 0
log "raw, --codec none: rawbackup.img is the image"
no_multipart_uploads "$B"
