#!/bin/bash
# view_archive: archive/BUCKET of `vaultfs mount` on the Ceph S3 server.
# 256 MiB written with dd (32 parts) reads back identical with awscli, and
# through the mount (ranged GETs, read-ahead); `tar -czf` into it makes an archive tar
# reads; writes of odd sizes across part boundaries read back identical;
# an out-of-order write (os.pwrite far ahead) gets EINVAL and leaves
# no object and no multipart upload; overwriting and rm are refused by
# default, and allowed with --allow-overwrite/--allow-delete; a listing
# shows objects written by others; the same over a local store.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
test_timeout 450

V=$T/vault
M=$T/mnt
mkdir -p "$V"
make_bucket B
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/archive\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\"
}"
mount_view "$M" "$T/cfg.json" --whole-bucket
A=$M/archive/$B

# --- 256 MiB with dd, read back with awscli and through the mount -----------
# (32 parts of 8 MiB, many uploads in flight and read-ahead windows grown
# to their full 8 MiB: more only moves more bytes)
BIG=$((256 << 20))
head -c $BIG /dev/urandom >"$T/big"
t0=$(date +%s%N)
dd if="$T/big" of="$A/big" bs=1M status=none || die "dd into the mount failed"
ms=$((($(date +%s%N) - t0) / 1000000))
log "dd wrote 256 MiB in $ms ms ($((256 * 1000 / (ms + 1))) MiB/s)"
[ "$(s3_req HEAD "$B/big" | _header content-length)" = $BIG ] || die "s3://$B/big is not 256 MiB"
aws_ s3 cp --only-show-errors "s3://$B/big" "$T/big.aws" || die "awscli cannot download it"
same_file "$T/big" "$T/big.aws"
rm -f "$T/big.aws"
[ "$(stat -c %s "$A/big")" = $BIG ] || die "the mount's size of big"
t0=$(date +%s%N)
cmp "$T/big" "$A/big" || die "big read through the mount differs"
ms=$((($(date +%s%N) - t0) / 1000000))
log "256 MiB reads back identical with awscli, and through the mount ($ms ms)"
no_multipart_uploads "$B"
# the test server keeps objects in RAM: give the GiB back at once
s3_req DELETE "$B/big" || die "cannot delete big"
rm -f "$T/big"

# --- tar -czf into the archive ------------------------------------------------
make_tree "$T/dir" 5
tar -czf "$A/x.tar.gz" -C "$T/dir" . || die "tar -czf into the mount failed"
s3_req GET "$B/x.tar.gz" -o "$T/x.tar.gz" || die "no x.tar.gz in the bucket"
extract_compare "$T/x.tar.gz" "$T/dir"
tar -tzf "$A/x.tar.gz" >/dev/null || die "tar cannot read x.tar.gz through the mount"
# into a directory of the view's own (mkdir: S3 has none)
mkdir -p "$A/backups/2026"
tar -czf "$A/backups/2026/y.tar.gz" -C "$T/dir" . || die "tar -czf into a new directory failed"
s3_req HEAD "$B/backups/2026/y.tar.gz" >/dev/null || die "no backups/2026/y.tar.gz"
log "tar -czf works, also into a new directory"

# --- writes of odd sizes, across part boundaries -------------------------------
# (most are copied into the upload's part buffer on FUSE's own thread, the
# rest on a worker: the bytes must come out in order all the same)
python3 - "$A/odd" "$T/odd" <<'EOF' || die "odd-sized writes into the mount failed"
import os, sys
data = os.urandom(20 << 20)
sizes = [1, 4095, 100000, 3 << 20, (1 << 20) + 17, 65536, 7, 5 << 20, 10240]
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
pos, i = 0, 0
while pos < len(data):
    n = min(sizes[i % len(sizes)], len(data) - pos)
    assert os.write(fd, data[pos:pos + n]) == n
    pos, i = pos + n, i + 1
os.close(fd)
with open(sys.argv[2], "wb") as f:
    f.write(data)
EOF
s3_req GET "$B/odd" -o "$T/odd.aws" || die "no odd in the bucket"
same_file "$T/odd" "$T/odd.aws"
rm -f "$T/odd" "$T/odd.aws"
log "writes of odd sizes across part boundaries read back identical"

# --- an out-of-order write: EINVAL, nothing left -------------------------------
python3 - "$A/holey" <<'EOF' || die "the out-of-order write was not refused with EINVAL"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"a" * (12 << 20))   # past the first part: a multipart upload
try:
    os.pwrite(fd, b"x", 1 << 30)
    raise SystemExit("pwrite at 1 GiB was accepted")
except OSError as e:
    assert e.errno == errno.EINVAL, e
try:
    os.write(fd, b"more")
    raise SystemExit("a write after the refusal was accepted")
except OSError:
    pass
try:
    os.close(fd)
except OSError:
    pass   # close reports the failure too
EOF
object_absent "$B" holey
no_multipart_uploads "$B"
expect_grep 'holey: write at offset 1073741824' "$MERR"
log "an out-of-order write got EINVAL; no object, no upload left"

# --- refusals ---------------------------------------------------------------
expect_fail rm "$A/x.tar.gz"
expect_grep 'Operation not permitted' "$FAIL_OUT"
s3_req HEAD "$B/x.tar.gz" >/dev/null || die "rm deleted x.tar.gz"
expect_fail dd if=/dev/zero of="$A/x.tar.gz" bs=1k count=1 status=none
expect_grep 'File exists' "$FAIL_OUT"
[ "$(object_etag "$B" x.tar.gz)" != "" ] || die "x.tar.gz is gone"
cmp "$T/x.tar.gz" <(s3_req GET "$B/x.tar.gz") || die "x.tar.gz was changed"
log "rm and overwrite are refused"

# --- listings: objects written by others show --------------------------------
echo "from awscli" >"$T/other"
s3_req PUT "$B/others/one.txt" -T "$T/other" >/dev/null || die "cannot put others/one.txt"
wait_for 10 test -f "$A/others/one.txt"
[ "$(cat "$A/others/one.txt")" = "from awscli" ] || die "others/one.txt through the mount"
ls -l "$A" >"$T/ls.out"
expect_grep " $(stat -c %s "$T/x.tar.gz") .* x.tar.gz$" "$T/ls.out"
expect_grep '^d.* others$' "$T/ls.out"
expect_grep '^d.* backups$' "$T/ls.out"
unmount_view

# --- with --allow-overwrite --allow-delete ---------------------------------
mount_view "$M" "$T/cfg.json" --whole-bucket --allow-overwrite --allow-delete
echo replaced >"$A/x.tar.gz" || die "overwrite with --allow-overwrite failed"
[ "$(s3_req GET "$B/x.tar.gz")" = replaced ] || die "x.tar.gz was not replaced"
rm "$A/x.tar.gz" || die "rm with --allow-delete failed"
object_absent "$B" x.tar.gz
rm "$A/others/one.txt" || die "rm others/one.txt failed"
object_absent "$B" others/one.txt
[ ! -e "$A/others/one.txt" ] || die "others/one.txt still shows"
log "overwrite and rm work when allowed"
unmount_view
no_multipart_uploads "$B"
[ -z "$(ls "$T/state/view/uploads")" ] || die "crash records left: $(ls "$T/state/view/uploads")"

# --- a local store ------------------------------------------------------------------
mkdir -p "$T/store"
write_config "$T/local.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\",
  \"stateDir\": \"$T/state-local\"
}"
mount_view "$M" "$T/local.json"
[ "$(ls "$M/archive")" = store ] || die "the local store's name: $(ls "$M/archive")"
head -c 64M /dev/urandom >"$T/mid"
dd if="$T/mid" of="$M/archive/store/mid" bs=1M status=none || die "dd into the local store failed"
same_file "$T/mid" "$T/store/mid"
same_file "$T/mid" "$M/archive/store/mid"
tar -czf "$M/archive/store/x.tar.gz" -C "$T/dir" . || die "tar -czf into the local store failed"
extract_compare "$T/store/x.tar.gz" "$T/dir"
python3 - "$M/archive/store/holey" <<'EOF' || die "local: the out-of-order write was not EINVAL"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"abc")
try:
    os.pwrite(fd, b"x", 1 << 20)
    raise SystemExit("accepted")
except OSError as e:
    assert e.errno == errno.EINVAL, e
try:
    os.close(fd)
except OSError:
    pass
EOF
[ ! -e "$T/store/holey" ] || die "local: holey exists"
[ -z "$(find "$T/store" -name '.vaultfs-upload-*')" ] || die "local: temporary files left"
expect_fail rm "$M/archive/store/mid"
unmount_view
log "the local store works the same"
