#!/bin/bash
# verify_members: `vaultfs verify` reads an archive written in members with
# the parallel reader (archiver/unpack.h) and one without through a
# streaming decoder. An archive of ours (gzip with the VF subfield, zstd
# with its seek table) verifies "decoded on N threads" (--threads N); a
# corrupted member in the middle is named by its number and stored offset
# (with the uncompressed offset of its data, which only the parallel reader
# gives); a truncated one names the member cut short; two members swapped
# (each one's CRC fine, the manifest's sha256 made to match) fail on the
# second member's UOFF, which is not where the member before it ends; an
# old single-member gzip and a single-frame zstd archive (as older vaultfs
# and other tools write) still verify, through the streaming decoder.
# Local files only: the S3 path of the same reader is verify_archive's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_tools python3 gzip zstd

# ~6 MiB that does not compress: 1 MiB slices make ~7 members
mkdir -p "$T/src/d"
head -c $((6 * 1024 * 1024)) /dev/urandom >"$T/src/d/random.bin"
seq 1 100000 >"$T/src/numbers.txt"
for codec in gzip zstd; do
	mkdir -p "$T/$codec"
	vf_archive --codec "$codec" "$T/src" "$T/$codec/"
done

# members FILE: "offset size uoff" of each VF gzip member, one a line
members() {
	python3 - "$1" <<'EOF'
import sys
d = open(sys.argv[1], 'rb').read()
off = 0
while off < len(d):
    assert d[off:off + 4] == b'\x1f\x8b\x08\x04' and d[off + 12:off + 14] == b'VF'
    size = int.from_bytes(d[off + 16:off + 20], 'little')
    print(off, size, int.from_bytes(d[off + 20:off + 28], 'little'))
    off += size
EOF
}

# edit FILE PYTHON: change the bytes `d` of FILE in place
edit() {
	python3 - "$1" "$2" <<'EOF'
import sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
exec(sys.argv[2])
open(p, 'wb').write(d)
EOF
}

# copy NAME FROM: $T/NAME, a copy of the job folder FROM
copy() { rm -rf "$T/$1"; cp -r "$T/$2" "$T/$1"; }

# fix_sha DIR OBJECT: the manifest says the object's sha256 and size, so
# that the decode, not the hash, has to catch what is wrong
fix_sha() {
	python3 - "$1/manifest.json" "$2" <<'EOF'
import hashlib, json, os, sys
p, o = sys.argv[1], sys.argv[2]
m = json.load(open(p))
m['sha256'] = hashlib.sha256(open(o, 'rb').read()).hexdigest()
m['bytes_written'] = os.path.getsize(o)
open(p, 'w').write(json.dumps(m, indent=2))
EOF
}

# bad REGEX ARGS...: exit 1, one line on stderr matching REGEX
bad() {
	local re=$1 rc=0
	shift
	vf verify -q "$@" >"$T/v.out" 2>"$T/v.err" || rc=$?
	sed 's/^/    | /' "$T/v.err" >&2
	[ "$rc" = 1 ] || die "vaultfs verify $*: exit $rc, not 1"
	[ "$(wc -l <"$T/v.err")" = 1 ] || die "vaultfs verify $*: not one line"
	expect_grep "^vaultfs: verify .*$re" "$T/v.err"
}

ok() {
	vf verify "$@" >"$T/v.out" 2>"$T/v.err" ||
		{ sed 's/^/    | /' "$T/v.err" >&2; die "vaultfs verify $* failed"; }
	cat "$T/v.out" >&2
}

# --- intact: the parallel path, on the threads asked for ------------------------
members "$T/gzip/backup.tar.gz" >"$T/gz.members"
n=$(wc -l <"$T/gz.members")
[ "$n" -ge 6 ] || die "only $n gzip members: the test needs several"
ok --threads 3 "$T/gzip/"
expect_grep "gzip, $n members decoded on 3 threads, " "$T/v.out"
expect_grep "the index .* describes it" "$T/v.out"
ok "$T/zstd/"
expect_grep "zstd, [0-9]+ frames decoded on [0-9]+ threads, " "$T/v.out"
rc=0; vf verify --threads 0 "$T/gzip/" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || die "--threads 0: exit $rc, not 2"
log "intact: $n gzip members and the zstd frames decoded in parallel"

# --- a corrupted member in the middle: its number and offset -------------------
k=$((n / 2))
read -r off size uoff < <(sed -n "${k}p" "$T/gz.members")
copy mid gzip
edit "$T/mid/backup.tar.gz" "d[$off + $size // 2] ^= 0x40"
fix_sha "$T/mid" "$T/mid/backup.tar.gz"
bad "gzip member $k at byte $off: .*\\(its data at uncompressed byte $uoff\\)$" "$T/mid/"
# zstd: the frame in the middle, by the seek table
zobj=$T/zstd/backup.tar.zst
copy zmid zstd
zsize=$(stat -c %s "$zobj")
edit "$T/zmid/backup.tar.zst" "d[$zsize // 2] ^= 0x40"
fix_sha "$T/zmid" "$T/zmid/backup.tar.zst"
bad "zstd frame [0-9]+ at byte [0-9]+: .*\\(its data at uncompressed byte [0-9]+\\)$" "$T/zmid/"
log "a corrupted member in the middle is named, with its offsets"

# --- truncated inside member k -------------------------------------------------
copy cut gzip
truncate -s $((off + size / 2)) "$T/cut/backup.tar.gz"
fix_sha "$T/cut" "$T/cut/backup.tar.gz"
bad "gzip member $k at byte $off: truncated at byte $((off + size / 2))" "$T/cut/"
log "truncated: the member cut short is named"

# --- members 2 and 3 swapped: each whole, out of place --------------------------
read -r off2 size2 uoff2 < <(sed -n 2p "$T/gz.members")
read -r off3 size3 uoff3 < <(sed -n 3p "$T/gz.members")
copy swap gzip
edit "$T/swap/backup.tar.gz" "a = d[$off2:$off3]; b = d[$off3:$off3 + $size3]; d[$off2:$off3 + $size3] = b + a"
fix_sha "$T/swap" "$T/swap/backup.tar.gz"
bad "gzip member 2 at byte $off2: says it starts at uncompressed byte $uoff3, the member before ends at $uoff2" "$T/swap/"
log "two members swapped: caught by UOFF"

# --- old archives: one member, one frame, no index ------------------------------
for codec in gzip zstd; do
	copy "old-$codec" "$codec"
	rm "$T/old-$codec"/backup.tar.*.index
	obj=$(ls "$T/old-$codec"/backup.tar.*)
	if [ "$codec" = gzip ]; then
		gzip -dc "$T/$codec/backup.tar.gz" | gzip -c >"$obj"
	else
		zstd -qdc "$T/$codec/backup.tar.zst" | zstd -q --check -c >"$obj"
	fi
	python3 - "$T/old-$codec/manifest.json" <<'EOF'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
del m['indexed'], m['index']
open(p, 'w').write(json.dumps(m, indent=2))
EOF
	fix_sha "$T/old-$codec" "$obj"
	ok "$T/old-$codec/"
	what=member
	[ "$codec" = zstd ] && what=frame
	expect_grep "$codec, 1 $what, " "$T/v.out"
done
# and a corrupted one is still named by the streaming decoder
edit "$T/old-gzip/backup.tar.gz" "d[len(d) // 2] ^= 0x40"
fix_sha "$T/old-gzip" "$T/old-gzip/backup.tar.gz"
bad "gzip member 1 at byte 0: " "$T/old-gzip/"
log "old single-member archives verify through the streaming decoder"
