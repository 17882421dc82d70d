#!/bin/bash
# s3_ls: `vaultfs s3 ls` shows objects with their sizes and common prefixes
# as PRE lines, one level at a time, and pages through ListObjectsV2 (1100
# keys: more than one page of 1000).
. "$(dirname "$0")/lib.sh"
need_s3_command

make_bucket B
printf 'top\n' >"$T/top"              # 4 bytes
head -c 12345 /dev/urandom >"$T/mid"  # 12345 bytes
for k in top.txt dir/a dir/sub/c; do
	aws_ s3 cp --only-show-errors "$T/top" "s3://$B/$k"
done
aws_ s3 cp --only-show-errors "$T/mid" "s3://$B/dir/b"

# has_entry FILE PREFIX KEY SIZE: the listing of s3://B/PREFIX has a line for
# KEY showing SIZE as a field and, as its last field, the key: in full,
# relative to PREFIX, or relative to PREFIX's last '/' (as awscli shows it)
has_entry() {
	local rel=${3#"$2"} dirrel=${3#"${2%/*}/"}
	[[ $2 == */* ]] || dirrel=$3
	awk -v a="$3" -v b="$rel" -v c="$dirrel" -v sz="$4" '
		($NF == a || $NF == b || $NF == c) { for (i = 1; i < NF; i++) if ($i == sz) found = 1 }
		END { exit !found }' "$1" || {
		cat "$1" >&2
		die "no entry for '$3' of size $4 in the listing of '$2'"
	}
}
has_pre() { # FILE NAME
	grep -qE "^ *PRE +($2|$3)\$" "$1" || { cat "$1" >&2; die "no 'PRE $2' line"; }
}
lacks() { # FILE WORD
	if grep -qF -- "$2" "$1"; then cat "$1" >&2; die "'$2' listed where it should not be"; fi
}

vf s3 ls "s3://$B" >"$T/ls.root"
has_entry "$T/ls.root" "" top.txt 4
has_pre "$T/ls.root" dir/ dir/
lacks "$T/ls.root" dir/a
[ "$(wc -l <"$T/ls.root")" = 2 ] || { cat "$T/ls.root" >&2; die "root listing is not 2 lines"; }
log "ls s3://B: one object and PRE dir/"

vf s3 ls "s3://$B/dir/" >"$T/ls.dir"
has_entry "$T/ls.dir" dir/ dir/a 4
has_entry "$T/ls.dir" dir/ dir/b 12345
has_pre "$T/ls.dir" sub/ dir/sub/
lacks "$T/ls.dir" top.txt
[ "$(wc -l <"$T/ls.dir")" = 3 ] || { cat "$T/ls.dir" >&2; die "dir/ listing is not 3 lines"; }
log "ls s3://B/dir/: two objects and PRE sub/"

# Paging: 1100 keys, made by boto3 in one call.
BUCKET=$B py_s3 <<'EOF'
from concurrent.futures import ThreadPoolExecutor
def put(i):
    s3.put_object(Bucket=BUCKET, Key="many/k-%04d" % i, Body=b"%d" % i)
with ThreadPoolExecutor(8) as ex:
    list(ex.map(put, range(1100)))
n = sum(p.get("KeyCount", 0) for p in
        s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="many/"))
assert n == 1100, n
EOF
vf s3 ls "s3://$B/many/" >"$T/ls.many"
n=$(grep -cE '(^|[ /])k-[0-9]{4}$' "$T/ls.many" || true)
[ "$n" = 1100 ] || die "ls s3://B/many/ lists $n keys, want 1100"
[ "$(grep -E '(^|[ /])k-[0-9]{4}$' "$T/ls.many" | awk '{print $NF}' | sort -u | wc -l)" = 1100 ] ||
	die "ls s3://B/many/ repeats keys"
has_entry "$T/ls.many" many/ many/k-1099 4
has_entry "$T/ls.many" many/ many/k-0000 1
log "ls pages through 1100 keys"

# A prefix without a trailing slash lists what starts with it.
vf s3 ls "s3://$B/many/k-105" >"$T/ls.part"
[ "$(wc -l <"$T/ls.part")" = 10 ] || { cat "$T/ls.part" >&2; die "ls s3://B/many/k-105 is not 10 lines"; }
has_entry "$T/ls.part" many/k-105 many/k-1050 4
has_entry "$T/ls.part" many/k-105 many/k-1059 4
log "ls of a prefix without a slash"

# An empty bucket lists nothing, successfully.
make_bucket E empty
vf s3 ls "s3://$E" >"$T/ls.empty"
[ ! -s "$T/ls.empty" ] || { cat "$T/ls.empty" >&2; die "empty bucket listed something"; }
log "ls of an empty bucket is empty"
