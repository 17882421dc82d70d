#!/bin/bash
# view_list: a directory of archive/ larger than a listing page, on the Ceph
# S3 server. 3,000 objects and 12 prefixes under one prefix, mounted with
# --list-max-keys 250: `ls` shows every name exactly once; the debug log
# shows the directory was read in pages of at most 250 entries (never whole);
# objects removed and added between pages leave the others listed once;
# seekdir to a telldir gives the same names again; rewinddir lists afresh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
need_tools perl
test_timeout 300

NOBJ=3000
NPFX=12
PAGE=250
V=$T/vault
M=$T/mnt
mkdir -p "$V"
make_bucket B

# the objects, 16 PUTs at a time (3,000 one by one take too long)
printf x >"$T/x"
{
	for ((i = 0; i < NOBJ; i++)); do printf 'archive/many/obj-%05d\n' "$i"; done
	for ((i = 0; i < NPFX; i++)); do printf 'archive/many/sub%02d/x\n' "$i"; done
} | s3_put_keys "$B" "$T/x" || die "cannot create the objects"
log "$NOBJ objects and $NPFX prefixes under archive/many/"

write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/archive\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\"
}"
VAULTFS_LOG=debug mount_view "$M" "$T/cfg.json" --list-max-keys $PAGE
D=$M/archive/$B/archive/many

# --- every name once ------------------------------------------------------------
ls -f "$D" >"$T/ls" || die "ls of $D failed"
grep -vx '\.\|\.\.' "$T/ls" | sort >"$T/names"
{
	for ((i = 0; i < NOBJ; i++)); do printf 'obj-%05d\n' "$i"; done
	for ((i = 0; i < NPFX; i++)); do printf 'sub%02d\n' "$i"; done
} | sort >"$T/want"
dups=$(uniq -d "$T/names" | head -5)
[ -z "$dups" ] || die "listed more than once: $dups"
diff "$T/want" "$T/names" >"$T/diff" || { head -20 "$T/diff" >&2; die "the listing of $D is not the objects and prefixes"; }
[ "$(grep -cx '\.\|\.\.' "$T/ls")" = 2 ] || die "\".\" and \"..\" not once each"
[ -d "$D/sub03" ] || die "sub03 is not a directory"
[ "$(stat -c %s "$D/obj-00042")" = 1 ] || die "obj-00042 is not 1 byte"
log "ls shows the $((NOBJ + NPFX)) names once each"

# --- in pages of at most $PAGE ---------------------------------------------------
# "view: archive/B/archive/many/: page N at offset O: K entries (max-keys M, ...)"
grep -F "view: archive/$B/archive/many/: page " "$MERR" >"$T/pages" || die "no page in the debug log"
awk -v max=$PAGE -v total=$((NOBJ + NPFX)) '
	{ for (i = 1; i <= NF; i++) {
		if ($i == "entries") k = $(i - 1)
		if ($i == "(max-keys") { m = $(i + 1); sub(",", "", m) } }
	  if (m != max) { print "max-keys " m " on: " $0; bad = 1 }
	  if (k > max) { print "a page of " k ": " $0; bad = 1 }
	  sum += k; n++ }
	/the last/ { if (sum != total) { print "pages summed to " sum; bad = 1 }; runs++; sum = 0 }
	END { if (n < total / max || runs < 1) { print n " pages, " runs " full listings"; bad = 1 }; exit bad }
' "$T/pages" || die "the directory was not read in pages of at most $PAGE"
log "read in $(wc -l <"$T/pages") pages of at most $PAGE entries"

# --- changes between pages; seekdir/telldir; rewinddir ------------------------------
# perl reads 600 names (the view has fetched a few pages), then objects
# already listed go and new ones come, then it reads on; every object that
# was there before must come exactly once (the removed ones were listed
# before they went), the new ones at most once.
mkfifo "$T/go" "$T/done"
perl -e '
	my ($dir, $go, $done) = @ARGV;
	opendir(my $d, $dir) or die "opendir: $!";
	my (@first, @rest);
	push @first, scalar readdir($d) for 1 .. 600;
	open(my $g, ">", $go) or die; print $g join("\n", @first), "\n"; close($g);
	open(my $w, "<", $done) or die; <$w>; close($w);
	my $pos = telldir($d);
	my @again = map { scalar readdir($d) } 1 .. 20;
	seekdir($d, $pos);
	my @same = map { scalar readdir($d) } 1 .. 20;
	die "seekdir: (@again) then (@same)\n" if "@again" ne "@same";
	push @rest, @same;
	while (defined(my $e = readdir($d))) { push @rest, $e }
	rewinddir($d);
	my @fresh = grep { !/^\.\.?$/ } readdir($d);
	print join("\n", @first, @rest), "\n";
	print STDERR scalar(@fresh), "\n";
' "$D" "$T/go" "$T/done" >"$T/perl.out" 2>"$T/perl.err" &
PERL=$!
on_exit "kill $PERL"
BUCKET=$B py_s3 "$T/go" "$T/done" <<'EOF' || die "cannot change the objects between pages"
from concurrent.futures import ThreadPoolExecutor
# gone: every other name of the first 400 read (pages the reading has
# left); new: names before them and far after the reading (a page that
# changed under a seekdir back could shift, which POSIX allows)
seen = [l.strip() for l in open(sys.argv[1])][:400]
gone = ["archive/many/" + k for k in seen if k.startswith("obj-")][::2]
new = ["archive/many/obj-%05d-new" % i for i in range(0, 300, 30)]
new += ["archive/many/obj-%05d-new" % i for i in range(1100, 3000, 20)]
with ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda k: s3.delete_object(Bucket=BUCKET, Key=k), gone))
    list(ex.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=b"y"), new))
open(sys.argv[2], "w").write("%d\n" % len(gone))
EOF
wait $PERL || { cat "$T/perl.err" >&2; die "the reading with changes between pages failed"; }
grep -vx '\.\|\.\.' "$T/perl.out" | grep -v -- '-new$' | sort >"$T/names2"
dups=$(uniq -d "$T/names2" | head -5)
[ -z "$dups" ] || die "listed more than once across the changes: $dups"
diff "$T/want" "$T/names2" >"$T/diff" || { head -20 "$T/diff" >&2; die "names missing across the changes"; }
[ -z "$(grep -- '-new$' "$T/perl.out" | sort | uniq -d)" ] || die "a new name listed twice"
fresh=$(cat "$T/perl.err")
gone=$(head -n 400 "$T/perl.out" | grep -c '^obj-')
gone=$(((gone + 1) / 2))
[ "$fresh" = $((NOBJ + NPFX - gone + 105)) ] ||
	die "rewinddir listed $fresh names, not $((NOBJ + NPFX - gone + 105))"
log "changes between pages: the others listed once; seekdir and rewinddir agree"

check_merr
unmount_view
log "ok"
