#!/bin/bash
# restore_sources: what `vaultfs restore` takes besides new trees
# (restore.sh):
#  - archives from before the member layout (tests/data/restore: made by
#    the single-stream codecs of vaultfs 0.1.0) and one by GNU tar restore,
#    streamed;
#  - --path on them reads the whole archive and says so; a hard link whose
#    target it leaves out is named;
#  - an uncompressed tar with its index: --path reads only the entry;
#  - a raw image restores to a file, equal, and sparse; a directory or
#    --path is refused;
#  - SRC as a recovery point name or a job id of the journal (--config);
#  - a corrupt member fails naming it, leaving no file; a missing archive
#    or folder is a clear error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_tools tar python3 gzip cmp getfattr
[ "$(id -u)" = 0 ] || die "this test needs root (owners)"

MiB=$((1024 * 1024))
DATA=${VAULTFS_TEST_DATA:-$VAULTFS_SRC/tests/data}/restore
make_bucket B
S=$T/src
mkdir -p "$S/hl-dir"
printf 'plain\n' >"$S/plain"
printf 'x\n' >"$S/hl-dir/x"


# --- archives from before the member layout, and from GNU tar -----------------
# old.tar.gz / old.tar.zst: make_files' tree as vaultfs 0.1.0 wrote it
# (one gzip stream of deflate blocks, one zstd frame without a content
# size); old.tar.gz.digest is tar_digest of it, made when it was written.
for f in old.tar.gz old.tar.zst; do
	cp "$DATA/$f" "$DATA/$f.manifest.json" "$T/"
	vf_restore "$T/$f" "$T/r-$f"
	grep -q 'streamed' "$T/restore.out" || die "$f: not streamed"
	tree_digest "$T/r-$f" --no-xattrs >"$T/old.b"
	diff -u "$DATA/old.tar.digest" "$T/old.b" || die "$f: the restored tree differs from the archive"
	getfattr --absolute-names -n user.colour --only-values "$T/r-$f/hello" | grep -qx blue || die "$f: xattr lost"
done
# without an index, a hard link whose target --path leaves out is named
expect_fail vf restore "$T/old.tar.gz" "$T/r-old-sub" --path sub
expect_grep 'sub/random-link: a hard link to ./random, which --path did not select' "$FAIL_OUT"
expect_grep 'has no index: --path read the whole archive' "$FAIL_OUT"
[ -f "$T/r-old-sub/sub/numbers" ] || die "--path sub of an old archive: sub/numbers missing"
tar -czf "$T/gnu.tar.gz" -C "$S" plain hl-dir
vf_restore "$T/gnu.tar.gz" "$T/r-gnu"
cmp "$S/plain" "$T/r-gnu/plain" || die "GNU tar's archive: plain differs"
log "[$SECONDS s] archives of 0.1.0 and of GNU tar restore (streamed)"

# --- an uncompressed tar with its index: --path reads only the entry -----------
mkdir -p "$T/plain/d" "$T/plainstore"
head -c $((4 * MiB)) /dev/urandom >"$T/plain/d/big"
printf 'tiny\n' >"$T/plain/d/tiny"
vf_archive --codec none "$T/plain" "$T/plainstore/"
vf_restore "$T/plainstore/" "$T/r-plain" --path d/tiny
[ "$(cd "$T/r-plain" && find . -type f)" = ./d/tiny ] || die "--path d/tiny of a plain tar restored more"
grep -qE 'fetched [0-9.]+ KiB of 4\.0 MiB' "$T/restore.out" || {
	cat "$T/restore.out" >&2
	die "--path d/tiny of a plain tar read more than a few KiB"
}
log "[$SECONDS s] a plain tar with its index: --path reads only the entry's bytes"

# --- a raw image to a file ------------------------------------------------------
truncate -s 64M "$T/disk.img"
head -c $((3 * MiB)) /dev/urandom | dd of="$T/disk.img" bs=1M seek=5 conv=notrunc status=none
printf 'end' | dd of="$T/disk.img" bs=1 seek=$((64 * MiB - 3)) conv=notrunc status=none
vf_archive --mode raw "$T/disk.img" "s3://$B/raw/"
vf_restore "s3://$B/raw/" "$T/disk.out"
cmp "$T/disk.img" "$T/disk.out" || die "raw: the restored image differs"
[ "$(stat -c %b "$T/disk.out")" -lt 16384 ] || die "raw: the image was restored dense ($(stat -c %b "$T/disk.out") blocks)"
expect_fail vf restore "s3://$B/raw/" "$T"
expect_grep 'is a directory' "$FAIL_OUT"
expect_fail vf restore --path x "s3://$B/raw/" "$T/disk2.out"
expect_grep 'raw image restores whole' "$FAIL_OUT"
log "[$SECONDS s] raw: restored equal and sparse; a directory or --path refused"

# --- a corrupt member fails, naming it; nothing half-said -----------------------
vf s3 cp "s3://$B/raw/rawbackup.gz" "$T/bad.gz" 2>/dev/null
python3 - "$T/bad.gz" <<'EOF'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
m1 = int.from_bytes(d[16:20], "little")
m2 = int.from_bytes(d[m1 + 16:m1 + 20], "little")
d[m1 + m2 // 2] ^= 0x5a  # inside the second member's deflate data
open(p, "wb").write(d)
EOF
expect_fail vf restore "$T/bad.gz" "$T/bad.img"
expect_grep 'gzip member 2 at byte [0-9]+: .*corrupt.* \(its data at uncompressed byte 1048576\)' "$FAIL_OUT"
[ ! -e "$T/bad.img" ] && [ ! -e "$T/bad.img.partial" ] || die "a failed raw restore left a file"

# --- SRC as a recovery point or a job id of the journal ------------------------
make_tree "$T/vault/rp1" 3
write_config "$T/c.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/jstore\", \"stateDir\": \"$T/state\"
}"
vf_run --config "$T/c.json" --once
vf_restore --config "$T/c.json" rp1 "$T/r-rp"
same_tree "$T/vault/rp1" "$T/r-rp"
id=$(jstate "$T/state" 'j["id"]')
vf_restore -c "$T/c.json" "$id" "$T/r-id"
same_tree "$T/vault/rp1" "$T/r-id"
expect_fail vf restore -c "$T/c.json" no-such-rp "$T/r-none"
expect_grep 'no archived job or recovery point "no-such-rp"' "$FAIL_OUT"
log "[$SECONDS s] SRC as the journal's recovery point name or job id"

# --- bad SRC --------------------------------------------------------------------
expect_fail vf restore "s3://$B/nothing/" "$T/r-none"
expect_grep 'manifest' "$FAIL_OUT"
expect_fail vf restore "$T/no-such.tar.gz" "$T/r-none"
expect_grep 'No such file' "$FAIL_OUT"
log "[$SECONDS s] a corrupt member and a missing archive: clear errors"
