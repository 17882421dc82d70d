#!/bin/bash
# cli_usage.sh - the command line's edges, as a new user meets them:
#  - a usage error, for every command, is one line saying what is wrong and
#    one pointing at --help, exit 2, nothing on stdout; `vaultfs help CMD`
#    is CMD's --help, and every --help ends with examples and exit statuses
#  - level ranges: gzip 1-9, zstd 1-19 (the range named), none takes none;
#    the configuration refuses gzip level 0 too
#  - archive refuses an existing file without --force; a tree archived into
#    itself leaves the archive being written out, and says so
#  - a mistyped S3 URL (s3:/b/k) is an error naming it, in DEST, s3 cp and
#    the configuration, and creates no directory named s3:
#  - SIGINT: exit 130 and "interrupted", "upload aborted" only for an upload
#    (the s3 commands: s3_errors.sh)
#  - TERM=dumb and NO_COLOR: a progress line without escape sequences
#  - an endpoint that refuses connections is reported at the first attempt
#  - UTF-8 names extract with no warning from GNU tar, bsdtar and Python's
#    tarfile; a name that is not UTF-8 keeps its bytes in all three
#  - the bash completion completes commands, subcommands and every long
#    option each --help lists; the man page names every command
. "$(dirname "$0")/lib.sh"

cd "$T"

# --- usage errors -------------------------------------------------------------
# usage_error WANT-REGEX HELP-CMD ARGS...: exit 2, stderr exactly the reason
# (matching WANT) then "Try 'vaultfs HELP-CMD --help' ...", stdout empty
usage_error() {
	local want=$1 cmd=$2 rc=0
	shift 2
	vf "$@" >"$T/u.out" 2>"$T/u.err" || rc=$?
	[ "$rc" = 2 ] || { cat "$T/u.err" >&2; die "vaultfs $*: exit $rc, want 2"; }
	[ ! -s "$T/u.out" ] || die "vaultfs $*: a usage error wrote to stdout"
	[ "$(wc -l <"$T/u.err")" = 2 ] || { cat "$T/u.err" >&2; die "vaultfs $*: not two lines"; }
	head -n 1 "$T/u.err" | grep -qE -- "^vaultfs: $want\$" ||
		{ cat "$T/u.err" >&2; die "vaultfs $*: first line is not '$want'"; }
	[ "$(sed -n 2p "$T/u.err")" = "Try 'vaultfs${cmd:+ $cmd} --help' for more information." ] ||
		{ cat "$T/u.err" >&2; die "vaultfs $*: the second line does not point at --help"; }
}
mkdir t1
echo hello >t1/a
usage_error "missing the command" ""
usage_error "unknown command 'bogus'" "" bogus
usage_error "archive: missing DEST" archive archive /tmp
usage_error "archive: missing SRC" archive archive
usage_error "archive: unknown option '--bogus'" archive archive --bogus t1 x
usage_error "archive: option '--level' needs an argument" archive archive t1 x --level
usage_error "archive: unexpected argument 'y'" archive archive t1 x y
usage_error "archive: --mode: auto, tree or raw, not 'fast'" archive archive --mode fast t1 x
usage_error "verify: missing URL" verify verify
usage_error "verify: unknown option '-x'" verify verify -x u
usage_error "s3: missing the command \(cp, ls, rm or mb\)" s3 s3
usage_error "s3: unknown command 'cat' \(cp, ls, rm or mb\)" s3 s3 cat
usage_error "s3 cp: missing DEST" "s3 cp" s3 cp f
usage_error "s3 cp: unknown option '--bogus'" "s3 cp" s3 cp --bogus f s3://b/k
usage_error "s3 cp: one of SRC and DEST must be s3://" "s3 cp" s3 cp a b
usage_error "s3 ls: unexpected argument 's3://b'" "s3 ls" s3 ls s3://a s3://b
usage_error "s3 rm: missing URL" "s3 rm" s3 rm
usage_error "s3 mb: unexpected argument 'x'" "s3 mb" s3 mb s3://b x
usage_error "run: unexpected argument 'extra'" run run extra
usage_error "run: unknown option '--bogus'" run run --bogus
usage_error "run: --retry-failed goes with --once" run run --retry-failed
usage_error "status: unexpected argument 'x'" status status x
usage_error "status: option '-c' needs an argument" status status -c
usage_error "bucket: missing the command \(setup\)" bucket bucket
usage_error "bucket: unknown command 'x' \(setup is the one\)" bucket bucket x
usage_error "bucket setup: unknown option '--bogus'" "bucket setup" bucket setup --bogus
usage_error "mount: missing MOUNTPOINT" mount mount
usage_error "mount: unexpected argument 'b'" mount mount a b
usage_error "mount: option '--help' takes no argument" mount mount --help=x m
usage_error "aws: missing the command \(whoami or call\)" aws aws
usage_error "aws whoami: unexpected argument 'x'" "aws whoami" aws whoami x
usage_error "aws call: missing OPERATION" "aws call" aws call sts
usage_error "help: unknown command 'nope'" help help nope
log "usage errors: two lines, exit 2, for every command"

commands="archive restore verify s3 run status bucket mount aws"
for c in $commands; do
	vf help "$c" >"$T/h1" || die "vaultfs help $c failed"
	vf "$c" --help >"$T/h2" || die "vaultfs $c --help failed"
	same_file "$T/h1" "$T/h2"
	grep -q '^examples:$' "$T/h1" || die "vaultfs $c --help has no examples"
	[ "$(sed -n '/^examples:$/,/^$/p' "$T/h1" | grep -c '^  ')" -ge 2 ] ||
		die "vaultfs $c --help: fewer than two examples"
	tail -n 4 "$T/h1" | grep -q '^exit status: 0 ' ||
		die "vaultfs $c --help does not end with the exit statuses"
done
vf help s3 cp | head -n 1 | grep -q '^usage: vaultfs s3 cp' || die "vaultfs help s3 cp is not cp's help"
log "vaultfs help CMD is CMD --help; each ends with examples and exit statuses"

# --- level ranges -------------------------------------------------------------
usage_error "archive: --level: gzip takes 1 to 9, not 0" archive archive --level 0 t1 x.tgz
usage_error "archive: --level: gzip takes 1 to 9, not 10" archive archive --level 10 t1 x.tgz
usage_error "archive: --level: zstd takes 1 to 19, not 25" archive archive --codec zstd --level 25 t1 x.tzst
usage_error "archive: --level: --codec none takes no level" archive archive --codec none --level 3 t1 x.tar
[ ! -e x.tgz ] && [ ! -e x.tzst ] && [ ! -e x.tar ] || die "a refused archive was written"
mkdir vault
cat >bad-level.json <<EOF
{ "stateDir": "$T/state", "destination": "$T/store",
  "vaults": [{ "name": "v", "type": "local", "path": "$T/vault" }],
  "compression": { "codec": "gzip", "level": 0 } }
EOF
rc=0
vf status --config bad-level.json >/dev/null 2>"$T/cfg.err" || rc=$?
[ "$rc" = 2 ] || { cat "$T/cfg.err" >&2; die "gzip level 0 in the config: exit $rc, want 2"; }
expect_grep 'compression.level.*from 1 to 9' "$T/cfg.err"
log "levels: gzip 1-9 and zstd 1-19 on the command line and in the config, none takes none"

# --- overwrite and self-archiving -------------------------------------------------
echo precious >out.tgz
rc=0
vf archive -q t1 out.tgz 2>"$T/ow.err" || rc=$?
[ "$rc" = 1 ] || { cat "$T/ow.err" >&2; die "archive over an existing file: exit $rc, want 1"; }
expect_grep '^vaultfs: archive: out.tgz: exists \(--force replaces it\)$' "$T/ow.err"
[ "$(cat out.tgz)" = precious ] || die "the existing file was changed"
[ ! -e out.tgz.partial ] || die "a partial file was left"
vf archive -q --force t1 out.tgz || die "archive --force failed"
tar -tzf out.tgz | grep -qx './a' || die "--force did not write the archive"
log "an existing file is refused without --force, replaced with it"

mkdir t2
echo one >t2/one
vf archive -q t2 t2/x.tar.gz 2>"$T/self.err" || { cat "$T/self.err" >&2; die "archiving t2 into itself failed"; }
expect_grep 'x\.tar\.gz\.partial: left out: it is the archive being written' "$T/self.err"
tar -tzf t2/x.tar.gz >"$T/self.list"
grep -q 'x\.tar\.gz' "$T/self.list" && die "the archive holds itself: $(cat "$T/self.list")"
grep -qx './one' "$T/self.list" || die "the tree is not in its archive"
log "a tree archived into itself leaves the archive out, and says so"

# --- mistyped S3 URLs ---------------------------------------------------------------
usage_error "archive: 's3:/bucket/x' is not an S3 URL \(s3://BUCKET/KEY\); write './s3:/bucket/x' for a local path" \
	archive archive t1 s3:/bucket/x
usage_error "s3 cp: 's3:/bucket/k' is not an S3 URL .*" "s3 cp" s3 cp t1/a s3:/bucket/k
usage_error "verify: 'S3://bucket/k' is not an S3 URL .*" verify verify S3://bucket/k
cat >typo.json <<EOF
{ "stateDir": "$T/state", "destination": "s3:/bucket/x",
  "vaults": [{ "name": "v", "type": "local", "path": "$T/vault" }] }
EOF
rc=0
vf run --config typo.json --once >/dev/null 2>"$T/typo.err" || rc=$?
[ "$rc" = 2 ] || { cat "$T/typo.err" >&2; die "destination s3:/bucket/x: exit $rc, want 2"; }
expect_grep 'destination.*"s3:/bucket/x" is not an S3 URL' "$T/typo.err"
[ ! -e s3: ] || die "a directory named s3: was created"
log "a mistyped S3 URL is an error naming it; no directory s3: is made"

# --- SIGINT, and the progress line on a terminal ---------------------------------
# 48 MiB that gzip -9 on one thread takes a few seconds over
mkdir big
head -c $((48 << 20)) /dev/urandom >big/random
# interrupt DEST WANT: archive big/ into DEST, SIGINT it after 0.7 s; it
# must exit 130 with stderr WANT (signal_ends, lib.sh)
interrupt() {
	local pid
	"$VAULTFS" archive -q --level 9 --threads 1 big "$1" 2>"$INT_ERR" &
	pid=$!
	on_exit "kill -9 $pid 2>/dev/null"
	sleep 0.7
	signal_ends "$pid" INT 130 "$2"
}
interrupt int.tgz "vaultfs: archive: interrupted"
[ ! -e int.tgz ] && [ ! -e int.tgz.partial ] || die "SIGINT left a file behind"
new_bucket B
vf s3 mb -q "s3://$B" || die "s3 mb $B failed"
interrupt "s3://$B/int/" "vaultfs: archive: interrupted: upload aborted"
no_multipart_uploads "$B"
log "SIGINT: exit 130, 'interrupted', 'upload aborted' only for an upload"

# on_tty ENV...: archive 2 MiB with the progress bar on a pseudo-terminal
# (script(1)): at least its final line; what the terminal got is in
# $T/tty.out
mkdir mid
head -c $((2 << 20)) big/random >mid/random
on_tty() {
	env "$@" script -qec "'$VAULTFS' archive --force --level 9 --threads 1 mid tty.tgz" \
		/dev/null >"$T/tty.out" </dev/null || die "archive on a terminal ($*) failed"
	grep -q 'mid -> tty.tgz' "$T/tty.out" || { cat -v "$T/tty.out" >&2; die "no progress line ($*)"; }
}
on_tty TERM=xterm
grep -q $'\e\\[K' "$T/tty.out" || die "TERM=xterm: the progress line does not erase with ESC [K"
on_tty TERM=dumb
grep -q $'\e' "$T/tty.out" && { cat -v "$T/tty.out" >&2; die "TERM=dumb: escape sequences"; }
on_tty TERM=xterm NO_COLOR=1
grep -q $'\e' "$T/tty.out" && { cat -v "$T/tty.out" >&2; die "NO_COLOR: escape sequences"; }
log "progress: ESC [K on a terminal, none with TERM=dumb or NO_COLOR"

# --- an endpoint that refuses connections ------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rc=0
VAULTFS_S3_MAX_ATTEMPTS=3 vf s3 ls "s3://$B" --endpoint-url "http://127.0.0.1:$port" \
	>/dev/null 2>"$T/conn.err" || rc=$?
[ "$rc" = 1 ] || { cat "$T/conn.err" >&2; die "refused endpoint: exit $rc, want 1"; }
head -n 1 "$T/conn.err" | grep -qE "^vaultfs: warning: s3: .*127\.0\.0\.1.*$port.* \(attempt 1 of 3, retrying\)$" ||
	{ cat "$T/conn.err" >&2; die "the first failed attempt is not reported"; }
[ "$(grep -c 'retrying' "$T/conn.err")" = 1 ] || die "more than the first attempt reported"
expect_grep 'gave up after 3 attempts' "$T/conn.err"
log "a refused endpoint is reported at the first attempt"

# --- names: UTF-8 and not ------------------------------------------------------------
mkdir names
echo a >'names/ünïcødé ☃.txt'
mkdir 'names/dír'
echo b >'names/dír/ß'
ln -s 'ünïcødé ☃.txt' 'names/lïnk'
vf archive -q names utf8.tgz
for tool in gnu bsd py; do
	mkdir "x-$tool"
	case $tool in
	gnu) tar -xzf utf8.tgz -C "x-$tool" 2>"$T/$tool.err" ;;
	bsd) bsdtar -xzf utf8.tgz -C "x-$tool" 2>"$T/$tool.err" ;;
	py) python3 -W error -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
		utf8.tgz "x-$tool" 2>"$T/$tool.err" ;;
	esac || { cat "$T/$tool.err" >&2; die "$tool failed to extract UTF-8 names"; }
	[ ! -s "$T/$tool.err" ] || { cat "$T/$tool.err" >&2; die "$tool warned about UTF-8 names"; }
	diff -r names "x-$tool" >&2 || die "$tool: the UTF-8 names differ"
done
zcat utf8.tgz | grep -qa hdrcharset && die "hdrcharset in an archive of UTF-8 names"

mkdir latin
echo c >latin/$'caf\xe9'
vf archive -q latin latin.tgz
mkdir y-gnu y-bsd y-py
tar -xzf latin.tgz -C y-gnu 2>/dev/null
bsdtar -xzf latin.tgz -C y-bsd
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' latin.tgz y-py
for d in y-gnu y-bsd y-py; do
	[ -f "$d/"$'caf\xe9' ] || { ls "$d" | od -c >&2; die "$d: the Latin-1 name lost its bytes"; }
done
log "UTF-8 names extract silently with GNU tar, bsdtar and tarfile; others keep their bytes"

# --- bash completion and the man page ----------------------------------------------
COMPLETION=$VAULTFS_SRC/contrib/completion/vaultfs.bash
complete_words() { # WORDS...: what _vaultfs offers for the last word
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _vaultfs; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$COMPLETION" "$@"
}
bash -c 'source "$1"; complete -p vaultfs' _ "$COMPLETION" | grep -q -- '-F _vaultfs vaultfs$' ||
	die "the completion does not register for vaultfs"
[ "$(complete_words vaultfs ar)" = archive ] || die "'vaultfs ar<TAB>' is not archive"
[ "$(complete_words vaultfs s3 "" | sort | tr '\n' ' ')" = "--help cp ls mb rm " ] ||
	die "'vaultfs s3 <TAB>': $(complete_words vaultfs s3 "")"
[ "$(complete_words vaultfs archive --codec "")" = "$(printf 'gzip\nzstd\nnone')" ] ||
	die "'vaultfs archive --codec <TAB>' is not the codecs"
for c in $commands; do
	case $c in
	s3) words=(vaultfs s3 cp --) ;;
	bucket) words=(vaultfs bucket setup --) ;;
	aws) words=(vaultfs aws whoami --) ;;
	*) words=(vaultfs "$c" --) ;;
	esac
	offered=$(complete_words "${words[@]}")
	for opt in $(vf "${words[@]:1:${#words[@]}-2}" --help | grep -oE '^ +(-[a-z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+'); do
		grep -qx -- "$opt" <<<"$offered" || die "the completion of '${words[*]}' lacks $opt"
	done
done
log "bash completion: commands, subcommands, values and every option of each --help"

if command -v scdoc >/dev/null; then
	page=$(dirname "$VAULTFS")/man/vaultfs.1
	[ -s "$page" ] || die "scdoc is installed but the build made no man page ($page)"
	for c in $commands; do
		grep -q "vaultfs $c" "$page" || die "the man page has no section for $c"
	done
	MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q 'EXIT STATUS' || die "man cannot read $page"
	log "the man page names every command"
fi
