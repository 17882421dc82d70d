#!/bin/bash
# archive_tree: `vaultfs archive DIR s3://bucket/prefix/` of a hostile tree
# (names with newlines and non-UTF-8 bytes, 255-byte names, a path past
# 8 KiB, sparse files (1 GiB with data here and there, all holes, a hole
# at the end), hard links, symlinks, a fifo, a device node,
# a socket, xattrs, POSIX ACLs, owners, modes, nanosecond mtimes) gives a
# backup.tar.gz that, downloaded with awscli and extracted with bsdtar,
# equals the source: content, type, mode, owner, mtimes, symlink targets,
# device numbers, xattrs, ACLs and hard-link groups. GNU tar lists it all
# and extracts all but the deep path identically. The sparse file is stored
# sparse. The socket is skipped and recorded in the manifest; so is a file
# that cannot be opened or read (VAULTFS_FAULT arc.tar_open / arc.tar_read:
# root can read any file on a local disk), and the archive goes on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_tools bsdtar tar setfattr setfacl getfacl python3
[ "$(id -u)" = 0 ] || die "this test needs root (chown, mknod, ACLs)"

MiB=$((1024 * 1024))
make_bucket B
S=$T/src
mkdir "$S"
# count [FIND-TEST]: entries below $S, the root included (names may hold \n)
count() {
	if [ "$1" = - ]; then
		find "$S" -printf . | wc -c
	else
		find "$S" "$@" -printf . | wc -c
	fi
}

# --- the hostile tree (archive.inc) ------------------------------------------
make_hostile_tree "$S"
cd /
log "source tree built: $(count -) entries"

# --- archive, download, look at it ----------------------------------------
t0=$SECONDS
vf_archive_incomplete "$S" "s3://$B/tree/" # the socket
log "archived in $((SECONDS - t0)) s"
s3_req GET "$B/tree/backup.tar.gz" -o "$T/backup.tar.gz" || die "no tree/backup.tar.gz"
s3_req GET "$B/tree/manifest.json" -o "$T/manifest.json" || die "no tree/manifest.json"
M=$T/manifest.json
[ "$(mjson "$M" 'm["sha256"]')" = "$(sha256sum <"$T/backup.tar.gz" | cut -d' ' -f1)" ] ||
	die "manifest sha256 is not that of the object"
[ "$(mjson "$M" 'm["method"]')" = tree ] || die "method is not tree"
[ "$(mjson "$M" 'm["bytes_written"]')" = "$(stat -c %s "$T/backup.tar.gz")" ] ||
	die "bytes_written is not the object's size"
gzip -t "$T/backup.tar.gz" || die "gzip -t failed"

# the socket, and only it, is skipped, and the archive says it is incomplete
[ "$(mjson "$M" 'm["complete"]')" = false ] || die "the manifest does not say complete: false"
[ "$(mjson "$M" 'm["skipped_count"]')" = 1 ] || {
	mjson "$M" 'm["skipped"]' >&2
	die "expected exactly one skipped entry (the socket)"
}
# the manifest is valid JSON (mjson parses it) and shows the byte as \xff
[ "$(mjson "$M" 'm["skipped"][0]["path"]')" = './sock-\xff' ] ||
	die "the skipped entry is $(mjson "$M" 'm["skipped"][0]["path"]'), want ./sock-\xff (the socket)"
# counts: regular files counted once per inode, later links as hardlinks
nreg=$(count -type f)
nfiles=$(mjson "$M" 'm["files"]')
nhard=$(mjson "$M" 'm["hardlinks"]')
[ $((nfiles + nhard)) = "$nreg" ] || die "files $nfiles + hardlinks $nhard != $nreg regular files"
[ "$nhard" = 4 ] || die "hardlinks = $nhard, want 4 (3 of hl-a, 1 of leaf)"
[ "$(mjson "$M" 'm["dirs"]')" = "$(count -type d)" ] || die "dirs count wrong"
[ "$(mjson "$M" 'm["symlinks"]')" = "$(count -type l)" ] || die "symlinks count wrong"
[ "$(mjson "$M" 'm["other"]')" = 2 ] || die "other = $(mjson "$M" 'm["other"]'), want 2 (fifo, chardev)"

# the sparse file is stored sparse: the tar is far smaller than 1 GiB
tarsize=$(gzip -dc "$T/backup.tar.gz" | wc -c)
[ "$tarsize" -lt $((64 * MiB)) ] || die "the tar is $tarsize bytes: the sparse file was stored dense"
log "tar: $tarsize bytes, object $(stat -c %s "$T/backup.tar.gz") bytes"

# --- what is stored, read with Python's tarfile ------------------------------
# An extractor-independent check of every entry, the deep path included:
# names, types, modes, owners, mtimes (ns), sizes, contents, symlink targets,
# device numbers, hard-link groups.
# Entries with an access ACL are compared without their mode: libarchive
# (bsdtar too) puts the ACL's group-owner entry in the header's group bits,
# where st_mode has the ACL mask; the extracted modes are checked below.
no_acl_mode() { sed -E '/^\["acl-/s/"mode": "[0-7]+", //'; }
tar_digest "$T/backup.tar.gz" | no_acl_mode >"$T/digest.tar" ||
	die "Python's tarfile cannot read the archive"
tree_digest "$S" --no-xattrs --exclude "$SOCK" | no_acl_mode >"$T/digest.src"
if ! diff -u "$T/digest.src" "$T/digest.tar" >"$T/digest.diff"; then
	shorten <"$T/digest.diff" | head -c 6000 >&2
	die "the archive's entries differ from the source"
fi
grep -q '"deep/01D' "$T/digest.src" || die "bad test: no deep entries in the digest"
longest=$(python3 -c 'import json,sys; print(max(len(json.loads(l)[0].encode()) for l in open(sys.argv[1])))' "$T/digest.src")
[ "$longest" -gt 8192 ] || die "bad test: the longest path is only $longest bytes"
log "tarfile: all $(wc -l <"$T/digest.src") entries as in the source (paths up to $longest bytes)"

# --- bsdtar: everything, equal, xattrs and ACLs included ------------------
# bsdtar 3.6 cannot restore owners and mtimes of directories past PATH_MAX,
# nor hard links and symlink times there (it fails so on its own archives):
# the deep path is extracted apart, without those, left to tarfile above.
X=$T/x-bsdtar
mkdir "$X"
timeout 300 bsdtar -xpf "$T/backup.tar.gz" --xattrs --acls --numeric-owner -C "$X" \
	--exclude ./deep 2>"$T/bsdtar.err" || {
	cat "$T/bsdtar.err" >&2
	die "bsdtar -x failed"
}
[ ! -s "$T/bsdtar.err" ] || { cat "$T/bsdtar.err" >&2; die "bsdtar complained"; }
same_tree "$S" "$X" --exclude "$SOCK" --exclude deep --no-root # bsdtar leaves . alone
[ "$(grep -c '"sha"' "$T/digest.a")" -ge 30 ] || die "bad test: too few files in the digest"
grep -q 'system.posix_acl_default' "$T/digest.a" || die "bad test: no default ACL in the digest"
grep -q 'user.bin' "$T/digest.a" || die "bad test: no xattr in the digest"
# and as getfacl shows them
for f in acl-file acl-dir acl-dir/inherited; do
	diff <(cd "$S" && getfacl -n "$f") <(cd "$X" && getfacl -n "$f") ||
		die "getfacl $f differs"
done
(cd "$X" && getfacl -n acl-file) | grep -q '^user:1234:rwx' || die "ACL user:1234 lost"
[ "$(stat -c %i "$X/hl-a")" = "$(stat -c %i "$X/hl-dir/hl-c")" ] || die "hard links not restored"
log "bsdtar: the extracted tree (deep path aside) equals the source, xattrs and ACLs included"

X2=$T/x-bsdtar-deep
mkdir "$X2"
timeout 300 bsdtar -xpf "$T/backup.tar.gz" --no-same-owner -C "$X2" \
	--exclude '*/leaf-hardlink' --exclude '*/leaf-symlink' ./deep 2>"$T/bsdtar.err" || {
	head -c 3000 "$T/bsdtar.err" >&2
	die "bsdtar -x of the deep path failed"
}
tree_digest "$S" --under deep --no-owner --no-dir-mtime --exclude-name leaf-hardlink --exclude-name leaf-symlink \
	| sed 's/"links": \[[^]]*\], //; s/"nlink": [0-9]*, //' >"$T/digest.a"
tree_digest "$X2" --under deep --no-owner --no-dir-mtime | sed 's/"nlink": [0-9]*, //' >"$T/digest.b"
diff -u "$T/digest.a" "$T/digest.b" >"$T/digest.diff" || {
	shorten <"$T/digest.diff" | head -c 6000 >&2
	die "bsdtar's extraction of the deep path differs"
}
grep -q '"deep/.*/leaf"' "$T/digest.b" || die "bad test: the deep leaf is not in the digest"
log "bsdtar: the deep path extracts (modes, mtimes, content) as in the source"

# --- GNU tar: lists everything, extracts all but the deep path -------------
GTAR_W=(--warning=no-unknown-keyword --warning=no-timestamp)
nent=$(tar "${GTAR_W[@]}" -tzf "$T/backup.tar.gz" 2>"$T/gtar.err" | wc -l) || {
	cat "$T/gtar.err" >&2
	die "GNU tar -t failed"
}
[ ! -s "$T/gtar.err" ] || { cat "$T/gtar.err" >&2; die "GNU tar -t complained"; }
want=$(($(count -) - 1)) # all but the socket
[ "$nent" = "$want" ] || die "GNU tar lists $nent entries, want $want"
# The tar lists a directory's entries before it descends (libarchive's disk
# walk, as bsdtar -c does), so GNU tar restores directory mtimes only when
# told to wait until the end.
G=$T/x-gnutar
mkdir "$G"
timeout 300 tar "${GTAR_W[@]}" --delay-directory-restore -xzpf "$T/backup.tar.gz" --xattrs --xattrs-include='*' --acls --numeric-owner \
	-C "$G" --exclude='./deep/*' 2>"$T/gtar.err" || {
	cat "$T/gtar.err" >&2
	die "GNU tar -x failed"
}
[ ! -s "$T/gtar.err" ] || { cat "$T/gtar.err" >&2; die "GNU tar -x complained"; }
same_tree "$S" "$G" --exclude "$SOCK" --exclude deep --no-root
log "GNU tar: lists $nent entries; extraction (deep path aside) equals the source"

# --- entries that cannot be opened or read: recorded, the archive goes on ---
S2=$T/src2
mkdir -p "$S2/sub"
printf 'only file\n' >"$S2/sub/victim"
ln -s sub/victim "$S2/link"
mkdir "$S2/empty"
VAULTFS_FAULT=arc.tar_open@1 vf_archive_incomplete "$S2" "$T/open-fault.tar.gz"
M2=$T/open-fault.tar.gz.manifest.json
[ "$(mjson "$M2" 'm["skipped_count"]')" = 1 ] || die "the unopenable file is not recorded"
mjson "$M2" 'm["skipped"][0]["path"]' | grep -q 'sub/victim$' || die "skipped path is not sub/victim"
mjson "$M2" 'm["skipped"][0]["reason"]' | grep -qi 'permission denied' || die "skipped reason does not say why"
grep -q 'sub/victim' "$T/archive.err" || die "the unopenable file is not logged on stderr"
bsdtar -tf "$T/open-fault.tar.gz" >"$T/list2" || die "the archive with a skipped file is not readable"
grep -qx './link' "$T/list2" && grep -qx './empty/' "$T/list2" || die "entries missing after the skipped one"
log "unopenable file: skipped, recorded with its reason, the rest archived"

head -c $((3 * MiB)) /dev/urandom >"$S2/sub/victim"
VAULTFS_FAULT=arc.tar_read@1 vf_archive_incomplete "$S2" "$T/read-fault.tar.gz"
M3=$T/read-fault.tar.gz.manifest.json
[ "$(mjson "$M3" 'm["skipped_count"]')" = 1 ] || die "the unreadable file is not recorded"
mjson "$M3" 'm["skipped"][0]["reason"]' | grep -qi 'read error' || die "read error not recorded"
mkdir "$T/x3"
bsdtar -xpf "$T/read-fault.tar.gz" -C "$T/x3" || die "the archive with a read error is not readable"
[ "$(stat -c %s "$T/x3/sub/victim")" = $((3 * MiB)) ] || die "the unreadable file is not padded to its size"
[ -L "$T/x3/link" ] || die "entries missing after the read error"
log "read error: recorded, the file padded, the rest archived"
