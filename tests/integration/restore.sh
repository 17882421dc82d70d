#!/bin/bash
# restore: `vaultfs restore` round trips.
#  - the archiver's hostile tree (archive.inc) archived into Ceph (gzip
#    members) and into a local store (zstd frames), restored whole from
#    each (SRC the job's folder): equal to the source (content, types,
#    modes, owners, nanosecond mtimes, symlinks, hard links, device
#    numbers, xattrs, ACLs; sparse files restored sparse);
#  - --path of a subtree and of a file: only those entries, equal to the
#    source's;
#  - --path through the index fetches only the members that hold the
#    entry (one 1 MiB file: <= 4 MiB); without the index, a scan that says
#    so;
#  - a hard link selected alone: restored from its target's data (index);
#  - problems: a --path that matches nothing is named, counted, exit 1;
#    --strict stops at the first;
#  - SIGINT while the server holds a GET unanswered: exit 130 within 5 s,
#    "interrupted".
# Old archives, raw images, SRC from the journal, damaged archives:
# restore_sources.sh. Block devices, ext4 and GPT images: restore_images.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_tools tar python3 setfacl getfacl cmp
[ "$(id -u)" = 0 ] || die "this test needs root (owners, device nodes, ACLs)"

MiB=$((1024 * 1024))
DATA=${VAULTFS_TEST_DATA:-$VAULTFS_SRC/tests/data}/restore
make_bucket B
S=$T/src
make_hostile_tree "$S"
# The path past PATH_MAX goes into an archive of its own (below): entries
# that deep are written from their parent directory (libarchive's disk
# writer alone, bsdtar's too, cannot set the owners of such directories
# nor make their hard links; archive_tree.sh shows it of bsdtar).
mkdir "$T/deepsrc"
mv "$S/deep" "$T/deepsrc/"
log "[$SECONDS s] hostile tree built"


# same_restore DIR: DIR equals the source (its digest made once: reading
# the 1 GiB sparse file costs seconds)
same_restore() {
	[ -s "$T/digest.src" ] || tree_digest "$S" --exclude "$SOCK" >"$T/digest.src"
	tree_digest "$1" --exclude "$SOCK" >"$T/digest.b"
	if ! diff -u "$T/digest.src" "$T/digest.b" >"$T/digest.diff"; then
		shorten <"$T/digest.diff" | head -c 6000 >&2
		die "$1 differs from the source"
	fi
	cp "$T/digest.src" "$T/digest.a"
	grep -q 'system.posix_acl_default' "$T/digest.a" || die "bad test: no default ACL in the digest"
	grep -q 'user.bin' "$T/digest.a" || die "bad test: no xattr in the digest"
	grep -q '"links"' "$T/digest.a" || die "bad test: no hard links in the digest"
	[ "$(stat -c %b "$1/sparse")" -lt 20000 ] || die "$1: the sparse file was restored dense"
}

# --- whole, from Ceph (gzip members) ----------------------------------------
vf_archive_incomplete "$S" "s3://$B/tree/" # the socket
t0=$SECONDS
vf_restore --threads 3 "s3://$B/tree/" "$T/r-ceph"
grep -q 'members decoded in parallel' "$T/restore.out" || {
	cat "$T/restore.out" >&2
	die "the gzip archive was not read in parallel"
}
log "[$SECONDS s] restored from Ceph in $((SECONDS - t0)) s: $(cat "$T/restore.out")"
same_restore "$T/r-ceph"
log "[$SECONDS s] Ceph, gzip: the restored tree equals the source"

# --- whole, from a local store (zstd frames) --------------------------------
mkdir -p "$T/store/job"
vf_archive_incomplete --codec zstd "$S" "$T/store/job/"
vf_restore "$T/store/job/" "$T/r-local"
grep -q 'frames decoded in parallel' "$T/restore.out" || die "the zstd archive was not read in parallel"
same_restore "$T/r-local"
log "[$SECONDS s] local store, zstd: the restored tree equals the source"

# --- the path past PATH_MAX (~8.5 KiB): restored exactly -----------------------
vf_archive "$T/deepsrc" "$T/deep.tar.gz"
vf_restore "$T/deep.tar.gz" "$T/r-deep"
same_tree "$T/deepsrc" "$T/r-deep"
log "[$SECONDS s] past PATH_MAX: restored exactly (restore_deep.sh: --path too)"

# --- --path: a subtree and a file -------------------------------------------
# (hl-dir/hl-c is a hard link to hl-a: its target is selected too)
vf_restore "s3://$B/tree/backup.tar.gz" "$T/r-path" --path hl-dir --path ./plain --path 'acl-dir/' --path hl-a
(cd "$T/r-path" && find . -mindepth 1 | sort) >"$T/path.list"
printf '%s\n' ./acl-dir ./acl-dir/inherited ./hl-a ./hl-dir ./hl-dir/hl-c ./plain >"$T/path.want"
diff -u "$T/path.want" "$T/path.list" || die "--path restored other entries"
for p in hl-dir plain acl-dir hl-a; do
	tree_digest "$S" --under "$p" | sed 's/"links": \[[^]]*\], //; s/"nlink": [0-9]*, //' >"$T/p.a"
	tree_digest "$T/r-path" --under "$p" | sed 's/"links": \[[^]]*\], //; s/"nlink": [0-9]*, //' >"$T/p.b"
	diff -u "$T/p.a" "$T/p.b" || die "--path $p: differs from the source"
done
log "[$SECONDS s] --path: only the subtrees and the file asked for, equal to the source"

# --- --path through the index: only the members that hold the entry ----------
M=$T/many
mkdir -p "$M/d"
for i in 1 2 3 4 5 6 7 8; do head -c $((MiB + 1000 * i)) /dev/urandom >"$M/d/f$i"; done
printf 'small\n' >"$M/d/small"
vf_archive "$M" "s3://$B/many/"
vf s3 cp "s3://$B/many/manifest.json" "$T/many.json" 2>/dev/null
[ "$(mjson "$T/many.json" 'm["indexed"]')" = true ] || die "the archive is not indexed"
size=$(mjson "$T/many.json" 'm["bytes_written"]')
vf_restore "s3://$B/many/" "$T/r-many" --path d/f5
[ "$(cd "$T/r-many" && find . -type f)" = ./d/f5 ] || die "--path d/f5 restored more"
cmp "$M/d/f5" "$T/r-many/d/f5" || die "--path d/f5: differs"
fetched=$(sed -n 's/.*fetched \([0-9.]*\) MiB of.*/\1/p' "$T/restore.out")
log "[$SECONDS s] --path d/f5 (1 MiB): $(cat "$T/restore.out")"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 4 else 1)" "${fetched:-99}" ||
	die "--path d/f5 fetched ${fetched:-?} MiB of $size bytes: more than 4 MiB"
grep -q 'of the index' "$T/restore.out" || die "the index was not used"
# without its index the same restore reads everything, and says so
vf s3 rm "s3://$B/many/backup.tar.gz.index" >/dev/null
python3 - "$T/many.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["indexed"] = False
m.pop("index", None)
json.dump(m, open(sys.argv[1], "w"))
EOF
vf s3 cp "$T/many.json" "s3://$B/many/manifest.json" 2>/dev/null
vf_restore "s3://$B/many/" "$T/r-many2" --path d/f5
grep -q 'has no index: --path read the whole archive' "$T/restore.err" || die "the scan was not said"
cmp "$M/d/f5" "$T/r-many2/d/f5" || die "--path d/f5 without the index: differs"
log "[$SECONDS s] --path: with the index only the members holding the file; without, a scan that says so"

# --- a hard link whose target is not selected; problems; --strict ------------
# hl-b is a hard link to hl-a (earlier in the tar): through the index the
# target's data comes too, and hl-b is restored as a file of it
vf_restore "s3://$B/tree/" "$T/r-hl" --path hl-b
[ "$(cd "$T/r-hl" && find . -mindepth 1)" = ./hl-b ] || die "--path hl-b restored more than hl-b"
cmp "$S/hl-a" "$T/r-hl/hl-b" || die "--path hl-b: not hl-a's data"
[ "$(getfattr --absolute-names -n user.long --only-values "$T/r-hl/hl-b")" = \
	"$(getfattr --absolute-names -n user.long --only-values "$S/hl-a")" ] || die "--path hl-b: xattr lost"
expect_fail vf restore "s3://$B/tree/" "$T/r-prob" --path plain --path no/such/entry --path other/missing
expect_grep 'no/such/entry: not in the archive' "$FAIL_OUT"
expect_grep '2 entries not restored exactly' "$FAIL_OUT"
[ -f "$T/r-prob/plain" ] || die "the entries that were there were not restored"
expect_fail vf restore --strict "s3://$B/tree/" "$T/r-strict" --path no/such/entry --path plain
expect_grep 'no/such/entry: not in the archive \(--strict\)' "$FAIL_OUT"
log "[$SECONDS s] a hard link alone restored from its target; problems named and counted; --strict fails"

# --- interrupted ------------------------------------------------------------
# the proxy holds every GET: only the signal can end the restore
start_faultproxy --hold GET
"$VAULTFS" restore -q "s3://$B/tree/" "$T/r-int" --endpoint-url "$FP_URL" 2>"$INT_ERR" &
pid=$!
on_exit "kill -9 $pid 2>/dev/null"
sleep 1
signal_ends "$pid" INT 130 "vaultfs: restore s3://$B/tree/.*: interrupted"
log "[$SECONDS s] SIGINT ends a restore whose GET is held: exit 130, 'interrupted'"
