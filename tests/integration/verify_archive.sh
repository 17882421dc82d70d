#!/bin/bash
# verify_archive: `vaultfs verify` decodes. Intact archives (tree and raw;
# gzip, zstd and none; local and in S3; named or by their job's folder) exit
# 0 with the counts of their manifest. One flipped byte inside the
# compressed data of a gzip or zstd archive exits 1 naming the member or
# frame, also when the manifest's sha256 is made to match the flipped
# object (so it is the decode that catches it, not the hash); so do a
# truncated archive, a second gzip member with a bad CRC, an entry count
# the manifest does not share, a manifest that does not parse. Usage
# errors exit 2. SIGINT while the server holds a GET: 130 within 5 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_s3_command
need_tools python3 gzip zstd tar

# --- sources ---------------------------------------------------------------
mkdir -p "$T/src/sub/deeper"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$T/src/random.bin"
seq 1 200000 >"$T/src/sub/numbers.txt"
truncate -s 20M "$T/src/sub/sparse.bin"
echo tail >>"$T/src/sub/sparse.bin"
long=$(printf 'n%.0s' $(seq 1 150))
echo long >"$T/src/sub/deeper/$long"
ln -s sub/numbers.txt "$T/src/link"
ln "$T/src/sub/numbers.txt" "$T/src/hard"
setfattr -n user.note -v hello "$T/src/random.bin" 2>/dev/null || true
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/disk.img"
truncate -s 6M "$T/disk.img"

# flip FILE OFFSET: xor one byte
flip() {
	python3 - "$1" "$2" <<'EOF'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x10]))
EOF
}

# set_manifest MANIFEST PYTHON: change the manifest `m` in place
set_manifest() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
exec(sys.argv[2])
open(p, 'w').write(json.dumps(m, indent=2))
EOF
}

# fix_sha MANIFEST OBJECT: the manifest says the object's sha256 and size
fix_sha() {
	local sum size
	sum=$(sha256sum "$2" | cut -d' ' -f1)
	size=$(stat -c %s "$2")
	set_manifest "$1" "m['sha256'] = '$sum'; m['bytes_written'] = $size"
}

# verify_ok ARGS...: exit 0, the summary on stdout in $T/v.out
verify_ok() {
	local rc=0
	vf verify "$@" >"$T/v.out" 2>"$T/v.err" || rc=$?
	if [ "$rc" != 0 ] || grep -qE 'Sanitizer|runtime error:' "$T/v.err"; then
		sed 's/^/    | /' "$T/v.err" >&2
		die "vaultfs verify $* exited $rc"
	fi
	expect_grep '^verified ' "$T/v.out"
}

# verify_bad REGEX ARGS...: exit 1, one line on stderr matching REGEX
verify_bad() {
	local re=$1 rc=0
	shift
	vf verify "$@" >"$T/v.out" 2>"$T/v.err" || rc=$?
	sed 's/^/    | /' "$T/v.err" >&2
	[ "$rc" = 1 ] || die "vaultfs verify $*: exit $rc, not 1"
	! grep -qE 'Sanitizer|runtime error:' "$T/v.err" || die "sanitizer report"
	[ "$(wc -l <"$T/v.err")" = 1 ] || die "vaultfs verify $*: not one line"
	expect_grep "^vaultfs: verify .*$re" "$T/v.err"
}

# --- intact archives, local: every codec, tree and raw -----------------------
for codec in gzip zstd none; do
	mkdir -p "$T/t-$codec" "$T/r-$codec"
	vf_archive --codec "$codec" "$T/src" "$T/t-$codec/"
	vf_archive --codec "$codec" --mode raw "$T/disk.img" "$T/r-$codec/"
	verify_ok "$T/t-$codec/"
	entries=$(mjson "$T/t-$codec/manifest.json" 'm["tar"]["entries"]')
	tbytes=$(mjson "$T/t-$codec/manifest.json" 'm["tar"]["bytes"]')
	expect_grep ", $entries tar entries, $tbytes bytes of tar" "$T/v.out"
	obj=$(ls "$T/t-$codec"/backup.tar* | grep -v "\.index$")
	verify_ok "$obj"
	verify_ok "$T/t-$codec" # a folder without its '/'
	verify_ok "$T/r-$codec/"
	expect_grep "a raw image of $((6 * 1024 * 1024)) bytes" "$T/v.out"
	[ "$(mjson "$T/r-$codec/manifest.json" 'm["raw"]["bytes"]')" = $((6 * 1024 * 1024)) ] ||
		die "$codec raw: the manifest's raw.bytes is not the image's size"
done
# the manifest's counts are the tar's, as Python's tarfile reads it
want=$(python3 -c 'import tarfile,sys; print(len(tarfile.open(sys.argv[1]).getmembers()))' "$T/t-none/backup.tar")
[ "$(mjson "$T/t-none/manifest.json" 'm["tar"]["entries"]')" = "$want" ] ||
	die "tar.entries is not the tar's $want entries"
[ "$(mjson "$T/t-none/manifest.json" 'm["tar"]["bytes"]')" = "$(stat -c %s "$T/t-none/backup.tar")" ] ||
	die "tar.bytes is not the tar's length"
# an archive named by its path: the manifest is OBJECT.manifest.json
vf_archive --codec zstd "$T/src" "$T/named.tzst"
[ -f "$T/named.tzst.manifest.json" ] || die "no named.tzst.manifest.json"
verify_ok "$T/named.tzst"
log "intact: tree and raw, gzip, zstd, none verify"

# --- one flipped byte in the middle of the compressed data ---------------------
for codec in gzip zstd; do
	cp -r "$T/t-$codec" "$T/flip-$codec"
	obj=$(ls "$T/flip-$codec"/backup.tar* | grep -v "\.index$")
	flip "$obj" $(($(stat -c %s "$obj") / 2))
	what=member
	[ "$codec" = zstd ] && what=frame
	# independent members: the one in the middle is named, with its offset
	verify_bad "$codec $what [0-9]+ at byte [0-9]+: " "$T/flip-$codec/"
	# the manifest made to match the flipped bytes: the decode catches it
	fix_sha "$T/flip-$codec/manifest.json" "$obj"
	verify_bad "$codec $what [0-9]+ at byte [0-9]+: " "$obj"
done
# a flipped byte the codec does not cover (gzip's MTIME): the sha256
cp -r "$T/t-gzip" "$T/mtime"
flip "$T/mtime/backup.tar.gz" 5
verify_bad 'sha256 [0-9a-f]{64}, the manifest says ' "$T/mtime/"
log "flipped bytes: named by member or frame"

# --- several gzip members (issue 14 writes them): all decoded, each checked ----
mkdir -p "$T/multi"
gzip -dc "$T/t-gzip/backup.tar.gz" >"$T/multi.tar"
half=$(($(stat -c %s "$T/multi.tar") / 2))
head -c "$half" "$T/multi.tar" | gzip -c >"$T/multi/backup.tar.gz"
m1=$(stat -c %s "$T/multi/backup.tar.gz")
tail -c +$((half + 1)) "$T/multi.tar" | gzip -c >>"$T/multi/backup.tar.gz"
cp "$T/t-gzip/manifest.json" "$T/multi/"
fix_sha "$T/multi/manifest.json" "$T/multi/backup.tar.gz"
# as written before indexes: no "indexed" in the manifest, no VF subfield
set_manifest "$T/multi/manifest.json" 'del m["indexed"]; del m["index"]'
verify_ok "$T/multi/"
expect_grep ' gzip, 2 members, ' "$T/v.out"
flip "$T/multi/backup.tar.gz" $((m1 + ($(stat -c %s "$T/multi/backup.tar.gz") - m1) / 2))
fix_sha "$T/multi/manifest.json" "$T/multi/backup.tar.gz"
verify_bad "gzip member 2 at byte $m1: " "$T/multi/"
log "two gzip members: both decoded; a bad one is named with its offset"

# --- truncated ---------------------------------------------------------------
for codec in gzip zstd none; do
	cp -r "$T/t-$codec" "$T/cut-$codec"
	obj=$(ls "$T/cut-$codec"/backup.tar* | grep -v "\.index$")
	truncate -s $(($(stat -c %s "$obj") * 2 / 3)) "$obj"
	fix_sha "$T/cut-$codec/manifest.json" "$obj"
	case $codec in
	gzip) re='gzip member [0-9]+ at byte [0-9]+: truncated' ;;
	zstd) re='zstd frame [0-9]+ at byte [0-9]+: truncated' ;;
	none) re="tar entry [0-9]+ '.*': truncated" ;;
	esac
	verify_bad "$re" "$T/cut-$codec/"
done
cp -r "$T/r-gzip" "$T/cut-raw"
truncate -s $(($(stat -c %s "$T/cut-raw/rawbackup.gz") / 2)) "$T/cut-raw/rawbackup.gz"
verify_bad 'gzip member [0-9]+ at byte [0-9]+: truncated' "$T/cut-raw/"
log "truncated archives fail"

# --- the index beside the archive (docs/archive-format.md) ----------------------
for codec in gzip zstd; do
	idx=$(ls "$T/t-$codec"/backup.tar*.index)
	[ "$(mjson "$T/t-$codec/manifest.json" 'm["indexed"]')" = true ] || die "$codec: not indexed"
	[ "$(mjson "$T/t-$codec/manifest.json" 'm["index"]["size"]')" = "$(stat -c %s "$idx")" ] ||
		die "$codec: the manifest's index size is not the index's"
	# a flipped byte: its sha256 is not the manifest's
	cp -r "$T/t-$codec" "$T/ix-$codec"
	idx=$(ls "$T/ix-$codec"/backup.tar*.index)
	flip "$idx" 140
	verify_bad "index .*: sha256 [0-9a-f]{64}, the manifest says" "$T/ix-$codec/"
	# the manifest made to match: the rebuilt index differs
	set_manifest "$T/ix-$codec/manifest.json" "m['index']['sha256'] = '$(sha256sum "$idx" | cut -d' ' -f1)'"
	verify_bad "index .* does not describe the archive: it differs from the index rebuilt from the archive at byte 140" "$T/ix-$codec/"
	# no index at all
	rm "$idx"
	verify_bad "index .*: No such file" "$T/ix-$codec/"
done
log "the index: checked against its manifest and against the archive itself"

# --- the manifest: counts that differ, a manifest that does not parse -------------
cp -r "$T/t-gzip" "$T/count"
set_manifest "$T/count/manifest.json" 'm["tar"]["entries"] += 1'
verify_bad "$entries tar entries, the manifest says $((entries + 1))" "$T/count/"
cp -r "$T/r-zstd" "$T/rawcount"
set_manifest "$T/rawcount/manifest.json" 'm["raw"]["bytes"] -= 512; m["bytes_total"] -= 512'
verify_bad 'the image decodes to [0-9]+ bytes, the device had ' "$T/rawcount/"
cp -r "$T/t-gzip" "$T/nocount"
set_manifest "$T/nocount/manifest.json" 'del m["tar"]'
verify_bad 'no "tar"' "$T/nocount/"
cp -r "$T/t-gzip" "$T/broken"
head -c 100 "$T/t-gzip/manifest.json" >"$T/broken/manifest.json"
verify_bad "manifest $T/broken/manifest.json: " "$T/broken/"
rm "$T/broken/manifest.json"
verify_bad 'no manifest' "$T/broken/backup.tar.gz"
verify_bad 'no archive' "$T/src/"
log "manifest mismatches fail"

# --- S3 ------------------------------------------------------------------------
make_bucket B
vf_archive "$T/src" "s3://$B/job/"
vf_archive --codec zstd --mode raw "$T/disk.img" "s3://$B/raw/"
verify_ok "s3://$B/job/"
expect_grep "^verified s3://$B/job/backup.tar.gz: " "$T/v.out"
verify_ok "s3://$B/job/backup.tar.gz"
verify_ok "s3://$B/raw/"
aws_ s3 cp --only-show-errors "s3://$B/job/backup.tar.gz" "$T/s3.tgz"
flip "$T/s3.tgz" $(($(stat -c %s "$T/s3.tgz") / 2))
aws_ s3 cp --only-show-errors "$T/s3.tgz" "s3://$B/bad/backup.tar.gz"
aws_ s3 cp --only-show-errors "s3://$B/job/manifest.json" "$T/s3.json"
fix_sha "$T/s3.json" "$T/s3.tgz"
aws_ s3 cp --only-show-errors "$T/s3.json" "s3://$B/bad/manifest.json"
verify_bad "s3://$B/bad/backup.tar.gz: gzip member [0-9]+ at byte [0-9]+: " "s3://$B/bad/"
verify_bad 'no archive' "s3://$B/nothing/"
log "S3: intact archives verify, a flipped byte is named"

# the proxy holds every GET: only the signal can end the verify
start_faultproxy --hold GET
"$VAULTFS" verify -q "s3://$B/job/" --endpoint-url "$FP_URL" 2>"$INT_ERR" &
pid=$!
on_exit "kill -9 $pid 2>/dev/null"
sleep 1
signal_ends "$pid" INT 130 "vaultfs: verify: interrupted"
log "SIGINT ends a verify whose GET is held: exit 130, 'interrupted'"

# --- usage ---------------------------------------------------------------------
vf verify --help | grep -q '^usage: vaultfs verify' || die "verify --help"
rc=0; vf verify >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || die "verify without URL: exit $rc, not 2"
rc=0; vf verify --bogus x >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || die "verify --bogus: exit $rc, not 2"
rc=0; vf verify a b >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || die "verify with two URLs: exit $rc, not 2"
log "usage errors exit 2"
