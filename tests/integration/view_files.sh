#!/bin/bash
# view_files: the archived tree in the view. A local vault's recovery point
# archived by the mount's engine into the Ceph S3 server shows
# vaults/V/RP/files/, and its object archive/B/KEY shows KEY.d/ beside it:
# both hold exactly the source tree (find, diff -r, and the mode, owner,
# group, mtime and size of every entry; symlinks, a hard link, an empty
# directory, a fifo, a file bigger than view.memoryLimit), `cp -a` out of
# them gives the tree back, and nothing can be written there (EROFS). An
# object without an index has no KEY.d. The same against a local store.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
need_tools diff cmp cp find stat
test_timeout 200

V=$T/vault
S=$V/tree1
M=$T/mnt

# --- the source: what tar -x must give back --------------------------------
mkdir -p "$S/sub/deeper" "$S/empty" "$S/private"
head -c 5000 /dev/urandom >"$S/small.bin"
: >"$S/zero"
# bigger than view.memoryLimit (16 MiB), spanning many members
head -c $((17 << 20)) /dev/urandom >"$S/big.bin"
seq 1 100000 >"$S/sub/numbers.txt"
echo "deep" >"$S/sub/deeper/leaf.txt"
echo "secret" >"$S/private/key"
ln -s sub/numbers.txt "$S/link"
ln -s /nowhere/at/all "$S/dangling"
ln "$S/small.bin" "$S/sub/hard.bin"
mkfifo "$S/fifo"
chmod 0700 "$S/private"
chmod 0600 "$S/private/key"
chmod 0751 "$S/sub/deeper"
chmod 4755 "$S/small.bin"
chown 1234:5678 "$S/sub/numbers.txt"
chown -h 4321:8765 "$S/link"
touch -h -d '2001-02-03 04:05:06' "$S/link"
touch -d '1999-12-31 23:59:59' "$S/zero" "$S/sub/deeper/leaf.txt"
touch -d '2010-01-01 00:00:00' "$S/empty" "$S/sub/deeper" "$S/private"

# same_entries SRC DST: the same names, contents and attributes
same_entries() {
	local src=$1 dst=$2 what=$3
	(cd "$src" && find . | LC_ALL=C sort) >"$T/find.src"
	(cd "$dst" && find . | LC_ALL=C sort) >"$T/find.dst" || die "$what: find failed"
	diff "$T/find.src" "$T/find.dst" >&2 || die "$what: find lists other names"
	# (diff -r calls two fifos different: checked below)
	diff -r --no-dereference -x fifo "$src" "$dst" >&2 || die "$what: diff -r found differences"
	# mode, owner, group, mtime of everything below the top; the size of
	# all but directories (their size is the filesystem's)
	stats() {
		(cd "$1" && find . -mindepth 1 ! -type d -exec stat -c '%n %F %a %u %g %Y %s' {} + &&
			find . -mindepth 1 -type d -exec stat -c '%n %F %a %u %g %Y' {} +) |
			LC_ALL=C sort
	}
	stats "$src" >"$T/stat.src"
	stats "$dst" >"$T/stat.dst" || die "$what: stat failed"
	diff "$T/stat.src" "$T/stat.dst" >&2 || die "$what: attributes differ"
	[ "$(readlink "$dst/link")" = sub/numbers.txt ] || die "$what: readlink link"
	[ "$(readlink "$dst/dangling")" = /nowhere/at/all ] || die "$what: readlink dangling"
	[ -p "$dst/fifo" ] || die "$what: fifo is not a fifo"
	[ -d "$dst/empty" ] && [ -z "$(ls -A "$dst/empty")" ] || die "$what: empty is not an empty directory"
	cmp "$S/small.bin" "$dst/sub/hard.bin" || die "$what: the hard link reads otherwise"
	ls -lR "$dst" >/dev/null || die "$what: ls -lR failed"
}

# check_tree DIR WHAT [quick]: DIR shows the source; cp -a gives it back;
# EROFS (quick: for a second name of an archive checked already, its own
# lookups and listings only)
check_tree() {
	local d=$1 what=$2 c=$T/copy.$RANDOM
	same_entries "$S" "$d" "$what"
	if [ "${3:-}" = quick ]; then
		expect_fail touch "$d/new"
		expect_grep 'Read-only file system' "$FAIL_OUT"
		log "$what: the source tree, attributes and all; EROFS"
		return
	fi
	cmp "$S/big.bin" "$d/big.bin" || die "$what: big.bin (more than the memory limit) reads otherwise"
	cp -a "$d" "$c" || die "$what: cp -a failed"
	same_entries "$S" "$c" "$what copied with cp -a"
	rm -rf "$c"
	for cmd in "touch '$d/new'" "echo x >'$d/small.bin'" "echo x >>'$d/sub/numbers.txt'" \
		"rm '$d/zero'" "mkdir '$d/newdir'" "rmdir '$d/empty'" "mv '$d/zero' '$d/zero2'" \
		"ln -s x '$d/sym'" "ln '$d/zero' '$d/hard2'" "chmod 600 '$d/zero'" "touch '$d/zero'" \
		"mkfifo '$d/fifo2'" "truncate -s 0 '$d/small.bin'"; do
		expect_fail bash -c "$cmd"
		expect_grep 'Read-only file system' "$FAIL_OUT"
	done
	same_entries "$S" "$d" "$what after the refused writes"
	log "$what: the source tree, attributes and all; cp -a; EROFS"
}

rp_done() { [ "$(rp_state "$M" prod tree1)" = succeeded ]; }

# --- S3: files/ and KEY.d ---------------------------------------------------
make_bucket B
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/arch\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoStart\": true,
  \"view\": { \"memoryLimit\": \"16MiB\" }
}"
mount_view "$M" "$T/cfg.json" --verbose
wait_for 90 rp_done
RP=$M/vaults/prod/tree1
[ "$(ls "$RP" | tr '\n' ' ')" = "cancel export files info.json log status " ] ||
	die "a recovery point with an indexed archive: $(ls "$RP")"
check_tree "$RP/files" "vaults/prod/tree1/files"

url=$(sed -n 's/^result: //p' "$RP/status")
key=${url#s3://$B/}
[ "$key" != "$url" ] || die "no s3://$B/ result in the status: $url"
A=$M/archive/$B
dir=$(dirname "$A/$key")
[ "$(ls "$dir" | tr '\n' ' ')" = "backup.tar.gz backup.tar.gz.d backup.tar.gz.index manifest.json " ] ||
	die "the archive's folder: $(ls "$dir")"
[ -f "$A/$key" ] && [ "$(stat -c %s "$A/$key")" = "$(mjson "$dir/manifest.json" 'm["bytes_written"]')" ] ||
	die "the archive object is no longer the file"
check_tree "$A/$key.d" "archive/$B/KEY.d" quick

# an object without an index has no tree; a real KEY.d wins
BUCKET=$B KEY=$key py_s3 <<'EOF' || die "copying the archive"
key = os.environ["KEY"]
for dst, src in (("arch/plain/backup.tar.gz", key), ("arch/real/backup.tar.gz", key),
                 ("arch/real/backup.tar.gz.index", key + ".index")):
    s3.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src})
s3.put_object(Bucket=BUCKET, Key="arch/real/backup.tar.gz.d", Body=b"mine\n")
EOF
[ "$(ls "$A/arch/plain")" = backup.tar.gz ] || die "an unindexed archive: $(ls "$A/arch/plain")"
[ ! -e "$A/arch/plain/backup.tar.gz.d" ] || die "an unindexed archive has a .d"
[ "$(cat "$A/arch/real/backup.tar.gz.d")" = mine ] || die "the store's own KEY.d does not win"

# the view's memory stayed within view.memoryLimit
mem=$(sed -n 's/^archive view memory: .*peak \([0-9]*\),.*/\1/p' "$M/status")
[ -n "$mem" ] && [ "$mem" -le $((16 << 20)) ] || die "peak memory $mem above the limit: $(grep memory "$M/status")"
check_merr
unmount_view

# an index that is not an index: files/ fails with the reason in the
# recovery point's log file
echo "not an index" | aws_ s3 cp --only-show-errors - "s3://$B/$key.index" || die "replace the index"
mount_view "$M" "$T/cfg.json"
[ -d "$RP/files" ] || die "files/ is not shown while the index is there"
expect_fail ls "$RP/files"
expect_grep '^[0-9-]+T[0-9:.]+\+00:00 warning: view: files: .*backup\.tar\.gz' "$RP/log"
check_merr
unmount_view

# without its index, the archive has no tree: no files/, no KEY.d
aws_ s3 rm --only-show-errors "s3://$B/$key.index" || die "remove the index"
mount_view "$M" "$T/cfg.json"
rp_done || die "the job is not remembered as succeeded"
# (the view asks S3 in the background: files/ may show until it knows)
no_files() { [ "$(ls "$RP" | tr '\n' ' ')" = "cancel export info.json log status " ]; }
wait_for 10 no_files
[ ! -e "$RP/files" ] || die "files/ without an index"
[ "$(ls "$dir" | tr '\n' ' ')" = "backup.tar.gz manifest.json " ] ||
	die "the archive's folder without the index: $(ls "$dir")"
[ ! -e "$A/$key.d" ] || die "KEY.d without an index"
check_merr
unmount_view

# --- a local store ----------------------------------------------------------
write_config "$T/cfg2.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\",
  \"stateDir\": \"$T/state2\",
  \"autoStart\": true,
  \"view\": { \"memoryLimit\": \"16MiB\" }
}"
mkdir -p "$T/store"
mount_view "$M" "$T/cfg2.json" --verbose
wait_for 90 rp_done
check_tree "$RP/files" "local: vaults/prod/tree1/files"
url=$(sed -n 's/^result: //p' "$RP/status")
key=${url#$T/store/}
[ "$key" != "$url" ] || die "no $T/store/ result in the status: $url"
check_tree "$M/archive/store/$key.d" "local: archive/store/KEY.d" quick
check_merr
unmount_view
