#!/bin/bash
# restore_deep: entries whose paths are longer than PATH_MAX (4096 bytes).
# A tree with a path of ~6,000 bytes (30 nested directories of 200-byte
# names, made one `cd` at a time) holding a file, a hard link to it, a
# symlink, an owner, modes and nanosecond mtimes on files and directories
# is archived (gzip members, indexed), verified (its index lists the deep
# entries: rebuilt and compared), restored whole and with --path of the
# deepest directory, and each restore compared with the source entry by
# entry (tree_digest walks with directory descriptors).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_tools python3
[ "$(id -u)" = 0 ] || die "this test needs root (owners)"

S=$T/src
seg=$(printf 'D%.0s' $(seq 1 197))
mkdir -p "$S/deep"
(
	cd "$S/deep"
	for i in $(seq -w 1 30); do
		mkdir "$i-$seg"
		cd "$i-$seg"
		touch -d "2012-01-$i 10:00:00.123456789" .
	done
	printf 'at the bottom\n' >leaf
	ln leaf leaf-hardlink
	ln -s leaf leaf-symlink
	chmod 0640 leaf
	chown 1234:5678 leaf
	mkdir sub
	chown 4321:8765 sub
	chmod 0750 sub
	printf 'in sub\n' >sub/file
	touch -d '2011-11-11 11:11:11.111111111' leaf sub/file sub
	touch -d '2012-02-02 10:00:00.5' .
)
printf 'shallow\n' >"$S/top.txt"
# (find walks with directory descriptors: it reaches past PATH_MAX)
longest=$(cd "$S" && find . | awk '{ print length($0) }' | sort -n | tail -n 1)
[ "$longest" -gt 5800 ] || die "bad test: the longest path is only $longest bytes"
deepdir=$(cd "$S" && find deep -name sub -type d)
deepdir=${deepdir%/sub}

mkdir -p "$T/store/job"
vf_archive "$S" "$T/store/job/"
vf verify "$T/store/job/" >"$T/verify.out" || die "verify of the deep archive failed"
expect_grep 'the index .* describes it' "$T/verify.out"
log "archived and verified, paths up to $longest bytes"

# whole
vf_restore "$T/store/job/" "$T/r-whole"
same_tree "$S" "$T/r-whole"
log "restored whole: equal to the source, owners, modes, times and links past PATH_MAX included"

# --path of the deepest directory (through the index)
vf_restore "$T/store/job/" "$T/r-path" --path "$deepdir"
# (the entries below it, from digests of the whole trees: --under would
# open the deep directory by its path)
tree_digest "$S" | grep -F "[\"$deepdir" >"$T/p.a"
tree_digest "$T/r-path" | grep -F "[\"$deepdir" >"$T/p.b"
[ "$(wc -l <"$T/p.a")" = 6 ] || die "bad test: $(wc -l <"$T/p.a") entries below the deep directory, not 6"
grep -q 'leaf-hardlink' "$T/p.a" || die "bad test: the deep hard link is not in the digest"
if ! diff -u "$T/p.a" "$T/p.b" >"$T/p.diff"; then
	shorten <"$T/p.diff" | head -c 6000 >&2
	die "--path of the deep directory differs from the source"
fi
[ ! -e "$T/r-path/top.txt" ] || die "--path restored an entry outside it"
log "--path of the deepest directory: only it, equal to the source"
