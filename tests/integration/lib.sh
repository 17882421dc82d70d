# tests/integration/lib.sh - sourced by every integration test.
#
#   . "$(dirname "$0")/lib.sh"
#
# What a test gets:
#   - `set -euo pipefail`; the S3 test server's environment
#     (AWS_ENDPOINT_URL_S3, keys, region) from the file named by
#     VAULTFS_S3_ENV, which scripts/test exports. A test run without it
#     FAILS: a missing server is a broken set-up, not a reason to skip.
#   - the moto server's environment (AWS_ENDPOINT_URL: every AWS service but
#     S3) from the file named by VAULTFS_MOTO_ENV (scripts/moto-server,
#     exported by scripts/test), when it is set. A test that talks to a
#     control plane calls `need_moto` first: without moto it FAILS. Without
#     VAULTFS_MOTO_ENV, AWS_ENDPOINT_URL is unset. One moto serves every test
#     (ctest runs two at once): give what you create unique names, and never
#     reset it.
#   - $VAULTFS, the binary under test (ctest passes it; by hand it defaults to
#     build/vaultfs), and `vf ARGS`, which runs it under a timeout.
#   - $T, a temp dir of its own, removed at exit (kept with VAULTFS_KEEP_TMP=1).
#   - `on_exit CMD`: a stack of cleanups run at exit, last in first out,
#     whatever the outcome (pass, failure, timeout signal, Ctrl-C).
#   - `new_bucket VAR [TAG]`: VAR=a unique bucket name, emptied and deleted
#     at exit; `make_bucket VAR [TAG]` also creates it (with awscli).
#   - `die MSG`, `log MSG`, `expect_fail CMD...` (the command must fail
#     cleanly: non-zero, no crash, no sanitizer report; its output is in
#     $FAIL_OUT), `expect_grep PATTERN FILE`.
#   - `signal_ends PID SIG STATUS REGEX`: signal a vaultfs started in the
#     background (stderr in $INT_ERR); it must exit STATUS within 5 s with
#     stderr all one line matching REGEX.
#   - `aws_ ARGS`: awscli against the test server (path-style, 8 MiB parts).
#   - `s3_req METHOD BUCKET[/KEY][?QUERY] [CURL-ARGS]`: one signed request
#     to the test server with curl, 50 times cheaper than an awscli call
#     (what a check does many times: heads, gets, listings); `s3_status`,
#     `object_etag`, `object_absent` and `no_multipart_uploads` use it.
#   - `no_multipart_uploads BUCKET`: fails if an upload is still in progress.
#   - `start_faultproxy ARGS`: tests/tools/faultproxy.py in front of the
#     S3 server; sets FP_URL, FP_PID, FP_STATS; `fp_stat KEY` reads a counter.
#     `start_faultproxy_moto ARGS`: the same in front of moto, where
#     --throttle N / --5xx N answer AWS throttling and server errors.
#   - `BUCKET=B py_s3 <<'EOF' ... EOF`: Python with boto3, a ready client `s3`,
#     and BUCKET, for what awscli cannot do in one call.
#   - `aws_moto ARGS`: awscli against moto; `py_moto <<'EOF' ... EOF`: Python
#     with boto3 and `client(SERVICE)`, a client of moto. Recovery points
#     are made with StartBackupJob (tests/tools/moto_backup.py adds them to
#     moto); `moto_rp_status VAULT ARN STATUS` sets one's status (test-only).
#
# Exit status 77 means skipped; use it only where the machine lacks a
# facility, never because the server or the binary is missing.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "lib.sh is sourced by the integration tests, not run" >&2
	exit 2
fi
set -euo pipefail

TEST_NAME=$(basename "$0" .sh)
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VAULTFS_SRC=${VAULTFS_SRC:-$(cd "$LIB_DIR/../.." && pwd)}
FAULTPROXY=$VAULTFS_SRC/tests/tools/faultproxy.py

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
die() {
	printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# --- cleanup stack ------------------------------------------------------
_cleanups=()
on_exit() { _cleanups+=("$*"); }
_run_cleanups() {
	local rc=$? i
	trap - EXIT INT TERM
	set +e
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[i]}" >/dev/null 2>&1
	done
	[ "${VAULTFS_KEEP_TMP:-0}" != 1 ] || log "kept $T"
	if [ "$rc" = 0 ]; then
		log "PASS"
	elif [ "$rc" = 77 ]; then
		log "SKIPPED"
	else
		log "FAILED (exit $rc)"
	fi
	exit "$rc"
}
trap _run_cleanups EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

T=$(mktemp -d "${TMPDIR:-/tmp}/vaultfs-$TEST_NAME.XXXXXX")
[ "${VAULTFS_KEEP_TMP:-0}" = 1 ] || on_exit "rm -rf '$T'"

# --- the binary and the server ------------------------------------------
if [ -z "${VAULTFS:-}" ] && [ -x "$VAULTFS_SRC/build/vaultfs" ]; then
	VAULTFS=$VAULTFS_SRC/build/vaultfs
fi
[ -n "${VAULTFS:-}" ] && [ -x "$VAULTFS" ] ||
	die "VAULTFS (the vaultfs binary) is not set or not executable: run the tests with scripts/test or ctest"

[ -n "${VAULTFS_S3_ENV:-}" ] ||
	die "VAULTFS_S3_ENV is not set: run scripts/test, or 'scripts/s3-server start DIR' and export VAULTFS_S3_ENV=DIR/s3.env"
[ -r "$VAULTFS_S3_ENV" ] || die "VAULTFS_S3_ENV=$VAULTFS_S3_ENV: no such file"
# No endpoint from the caller's environment may send a test elsewhere.
for _v in $(compgen -e | grep '^AWS_ENDPOINT_URL' || true); do unset "$_v"; done
unset _v AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
# shellcheck disable=SC1090
. "$VAULTFS_S3_ENV"
# An s3.env written before moto joined the tests named S3 in AWS_ENDPOINT_URL.
if [ -z "${AWS_ENDPOINT_URL_S3:-}" ] && [ -n "${AWS_ENDPOINT_URL:-}" ]; then
	AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL
fi
unset AWS_ENDPOINT_URL
[ -n "${AWS_ENDPOINT_URL_S3:-}" ] || die "$VAULTFS_S3_ENV sets no AWS_ENDPOINT_URL_S3"
export AWS_ENDPOINT_URL_S3
case $AWS_ENDPOINT_URL_S3 in
http://127.0.0.1:*) ;;
*) die "the S3 test server must be on 127.0.0.1, not $AWS_ENDPOINT_URL_S3" ;;
esac
if [ -n "${VAULTFS_MOTO_ENV:-}" ]; then
	[ -r "$VAULTFS_MOTO_ENV" ] || die "VAULTFS_MOTO_ENV=$VAULTFS_MOTO_ENV: no such file"
	# shellcheck disable=SC1090
	. "$VAULTFS_MOTO_ENV"
	case ${AWS_ENDPOINT_URL:-} in
	http://127.0.0.1:*) ;;
	*) die "$VAULTFS_MOTO_ENV: moto must be on 127.0.0.1, not '${AWS_ENDPOINT_URL:-}'" ;;
	esac
fi
# The tests must not depend on, nor touch, the machine's own AWS files.
export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials
export AWS_CONFIG_FILE=$T/no-config
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_CA_BUNDLE || true

# A test starts python3 and awscli dozens of times. Behind a version
# manager's shim (pyenv's costs half a second a call, more than the call
# itself) each start pays for the lookup again: the interpreter's own bin
# directory goes first in PATH once, as `pyenv exec` puts it for every call.
# The same python says whether it has boto3 (found, not imported: an
# import costs a second).
_PY_PROBE='import importlib.util as u, os, sys
print(os.path.dirname(sys.executable), u.find_spec("boto3") is not None)'
read -r _py_bin _py_boto3 < <(python3 -c "$_PY_PROBE" 2>/dev/null) || true
if [ -x "${_py_bin:-}/python3" ] && [ "$(command -v python3)" != "$_py_bin/python3" ]; then
	PATH=$_py_bin:$PATH
fi

# need_moto: the test talks to moto; without it the test fails (a missing
# server is a broken set-up, not a reason to skip).
need_moto() {
	[ -n "${VAULTFS_MOTO_ENV:-}" ] ||
		die "VAULTFS_MOTO_ENV is not set: run scripts/test, or 'scripts/moto-server start DIR' and export VAULTFS_MOTO_ENV=DIR/moto.env"
	curl -fsS -o /dev/null --max-time 10 --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:backup" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL/backup-vaults/" ||
		die "moto at $AWS_ENDPOINT_URL does not answer"
}

# vf ARGS: the binary under test, bounded in time (a hang fails the test
# with exit 124 long before ctest's own timeout).
vf() { timeout -k 10 "${VF_TIMEOUT:-300}" "$VAULTFS" "$@"; }

# Every vaultfs test needs the s3 subcommand; its absence is a failure.
need_s3_command() {
	"$VAULTFS" --help 2>&1 | grep -qE '^ +s3( |$)' ||
		die "'$VAULTFS --help' lists no 's3' command"
}

# --- assertions -----------------------------------------------------------
# expect_fail CMD...: CMD must exit non-zero by itself: not by a signal, a
# timeout or a sanitizer report. Its stdout and stderr are in $FAIL_OUT.
FAIL_OUT=$T/fail.out
expect_fail() {
	local rc=0
	"$@" >"$FAIL_OUT" 2>&1 || rc=$?
	sed 's/^/    | /' "$FAIL_OUT" | head -n 40 >&2
	[ "$rc" != 0 ] || die "expected a failure, but it succeeded: $*"
	if [ "$rc" -ge 124 ] && [ "$rc" -le 192 ]; then
		die "exit $rc (timeout, crash or signal): $*"
	fi
	if grep -qE 'Sanitizer|runtime error:' "$FAIL_OUT"; then
		die "sanitizer report: $*"
	fi
	log "failed as expected (exit $rc): $*"
}

# expect_grep EXTENDED-REGEX FILE
expect_grep() {
	grep -qE -- "$1" "$2" || {
		sed 's/^/    | /' "$2" | head -n 40 >&2
		die "'$1' not found in $2"
	}
}

# same_file A B: byte-identical
same_file() { cmp -- "$1" "$2" || die "$1 and $2 differ"; }

# signal_ends PID SIG STATUS EXTENDED-REGEX: see the top. Start the command
# with "$VAULTFS" itself, not vf: timeout(1) in the background ignores
# SIGINT, and so would not pass it on.
INT_ERR=$T/int.err
signal_ends() {
	local rc=0 t0=$SECONDS
	kill "-$2" "$1"
	wait "$1" || rc=$?
	[ "$rc" = "$3" ] || { cat "$INT_ERR" >&2; die "$2: exit $rc, want $3 ($4)"; }
	[ "$(wc -l <"$INT_ERR")" = 1 ] && grep -qE -- "^$4\$" "$INT_ERR" ||
		{ cat "$INT_ERR" >&2; die "$2: stderr is not '$4'"; }
	[ $((SECONDS - t0)) -le 5 ] || die "$2 ($4): took $((SECONDS - t0)) s"
}

# --- awscli and boto3 -----------------------------------------------------
cat >"$T/aws.conf" <<EOF
[default]
region = ${AWS_REGION:-us-east-1}
s3 =
    addressing_style = path
    multipart_threshold = 8MB
    multipart_chunksize = 8MB
EOF
aws_() {
	AWS_CONFIG_FILE=$T/aws.conf AWS_PAGER='' \
		timeout -k 10 300 aws --endpoint-url "$AWS_ENDPOINT_URL_S3" "$@"
}
# aws_moto ARGS: awscli against moto (need_moto first)
aws_moto() {
	AWS_CONFIG_FILE=$T/aws.conf AWS_PAGER='' \
		timeout -k 10 300 aws --endpoint-url "${AWS_ENDPOINT_URL:?no moto: call need_moto}" "$@"
}

# A python3 that has boto3 (this machine's, or Debian's python3-boto3).
PY=
if [ "${_py_boto3:-}" = True ]; then
	PY=python3
elif [ -x /usr/bin/python3 ] &&
	[ "$(/usr/bin/python3 -c "$_PY_PROBE" 2>/dev/null | cut -d' ' -f2)" = True ]; then
	PY=/usr/bin/python3
fi
unset _py_bin _py_boto3 _PY_PROBE

# py_s3 [ARGS]: run the Python on stdin with `s3` (a boto3 client of the
# test server), `BUCKET` and `sys.argv[1:]` set.
py_s3() {
	[ -n "$PY" ] || die "no python3 with boto3: run scripts/setup"
	{
		cat <<'EOF'
import os, sys
import boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"],
                  region_name=os.environ.get("AWS_REGION", "us-east-1"),
                  config=botocore.config.Config(s3={"addressing_style": "path"},
                                                max_pool_connections=16,
                                                connect_timeout=5,
                                                retries={"max_attempts": int(os.environ.get("PY_S3_ATTEMPTS", "3"))}))
BUCKET = os.environ.get("BUCKET", "")
EOF
		cat
	} >"$T/py_s3.py"
	timeout -k 10 300 "$PY" "$T/py_s3.py" "$@"
}

# py_moto [ARGS]: run the Python on stdin with `client(SERVICE)`, a boto3
# client of moto (need_moto first), and `sys.argv[1:]` set. The endpoint is
# passed explicitly: Debian 12's boto3 predates AWS_ENDPOINT_URL.
py_moto() {
	[ -n "$PY" ] || die "no python3 with boto3: run scripts/setup"
	[ -n "${AWS_ENDPOINT_URL:-}" ] || die "py_moto: no moto: call need_moto"
	{
		cat <<'EOF'
import os, sys
import boto3, botocore.config
def client(service):
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                        region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        config=botocore.config.Config(connect_timeout=5,
                                                      retries={"max_attempts": 1}))
EOF
		cat
	} >"$T/py_moto.py"
	timeout -k 10 300 "$PY" "$T/py_moto.py" "$@"
}

# moto_rp_status VAULT RECOVERY-POINT-ARN STATUS: the test-only control of
# tests/tools/moto_backup.py: sets a recovery point's status (CREATING,
# COMPLETED, ...; read that file's header)
moto_rp_status() {
	local body
	body=$(python3 -c 'import json,sys; print(json.dumps({"BackupVaultName": sys.argv[1],
		"RecoveryPointArn": sys.argv[2], "Status": sys.argv[3]}))' "$1" "$2" "$3")
	curl -fsS -o /dev/null --max-time 10 --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:backup" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H 'Content-Type: application/json' \
		--data "$body" "${AWS_ENDPOINT_URL:?no moto: call need_moto}/_vaultfs/recovery-point-status" ||
		die "moto_rp_status $*: refused"
}

# new_bucket VAR [TAG]: set VAR to a unique, valid bucket name (3-63 chars
# of a-z0-9-), to be emptied and deleted at exit if it exists then.
new_bucket() {
	local tag=${2:-} name
	name=$(printf 'vft-%s%s-%s-%s' "${TEST_NAME//_/-}" "${tag:+-$tag}" "$$" "$RANDOM" |
		tr 'A-Z_' 'a-z-' | cut -c1-63)
	name=${name%-}
	on_exit "_delete_bucket '$name'"
	printf -v "$1" '%s' "$name"
}

# _delete_bucket BUCKET: at exit, its uploads aborted, its objects deleted
# (DeleteObjects, a page at a time), then the bucket; with curl, as a
# boto3 start costs a second. What that leaves (a key XML cannot carry on
# one line) boto3 removes.
_delete_bucket() {
	local b=$1 out body last= hex key id i
	[ "$(s3_status "$b")" = 200 ] || return 0
	out=$(s3_req GET "$b?uploads=") || out=
	while IFS=$'\t' read -r key id; do
		[ -n "$id" ] || continue
		s3_req DELETE "$b/$(_xml_unescape <<<"$key")?uploadId=$(_uri_encode "$id" '')" >/dev/null || true
	done < <(grep -o '<Key>[^<]*</Key><UploadId>[^<]*</UploadId>' <<<"$out" |
		sed 's|<Key>\(.*\)</Key><UploadId>\(.*\)</UploadId>|\1\t\2|')
	for ((i = 0; i < 1000; i++)); do
		out=$(s3_req GET "$b?list-type=2") || break
		# the keys stay XML-escaped, as DeleteObjects takes them
		body=$(grep -o '<Key>[^<]*</Key>' <<<"$out" | sed 's|.*|<Object>&</Object>|' | tr -d '\n') || break
		[ -n "$body" ] && [ "$body" != "$last" ] || break
		last=$body
		body="<Delete><Quiet>true</Quiet>$body</Delete>"
		hex=$(printf '%s' "$body" | md5sum | cut -c1-32)
		printf '%s' "$body" | s3_req POST "$b?delete=" -H 'Content-Type: application/xml' \
			-H "Content-MD5: $(printf "$(sed 's/../\\x&/g' <<<"$hex")" | base64)" \
			--data-binary @- >/dev/null || break
	done
	s3_req DELETE "$b" >/dev/null 2>&1 ||
		BUCKET=$b PY_S3_ATTEMPTS=1 py_s3 <<<"$_DELETE_BUCKET_PY"
}

# _xml_unescape: XML's five entities back to characters, stdin to stdout
_xml_unescape() {
	sed "s/&lt;/</g; s/&gt;/>/g; s/&quot;/\"/g; s/&apos;/'/g; s/&amp;/\\&/g"
}
_DELETE_BUCKET_PY='
try:
    for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=BUCKET)
except s3.exceptions.NoSuchBucket:
    pass
'

# make_bucket VAR [TAG]: new_bucket, then created (CreateBucket)
make_bucket() {
	new_bucket "$@"
	s3_req PUT "${!1}" >/dev/null || die "CreateBucket ${!1} failed"
}

# s3_req METHOD BUCKET[/KEY][?QUERY] [CURL-ARGS...]: one request to the test
# server, signed by curl (--aws-sigv4); the body on stdout, a non-zero exit
# on an HTTP error (22) or no answer. KEY is given as stored (it is
# URI-encoded here); QUERY as signed: parameters in name order, values
# encoded, a bare one as "uploads=". HEAD prints the response headers.
s3_req() {
	local method=$1 path=$2 query=
	shift 2
	case $path in *\?*) query=?${path#*\?} path=${path%%\?*} ;; esac
	local -a m=(-X "$method")
	[ "$method" != HEAD ] || m=(-I)
	curl -sS --fail --max-time 300 "${m[@]}" \
		--aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" \
		"$AWS_ENDPOINT_URL_S3/$(_uri_encode "$path")$query"
}

# _uri_encode STRING [SAFE]: SigV4's encoding, byte by byte, of a path
# (SAFE '/', kept) or of a query value (SAFE '', every '/' encoded)
_uri_encode() {
	local LC_ALL=C s=$1 safe=${2-/} out= c i
	if [[ $s =~ ^[A-Za-z0-9._~${safe}-]*$ ]]; then
		printf '%s' "$s"
		return
	fi
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		if [[ $c == [A-Za-z0-9._~-] ]] || [ "$c" = "$safe" ]; then
			out+=$c
		else
			printf -v c '%%%02X' "'$c"
			out+=$c
		fi
	done
	printf '%s' "$out"
}

# s3_put_keys BUCKET FILE: FILE's bytes stored under every key read from
# stdin (one a line), 16 requests at a time by one curl: 3,000 objects in
# seconds (boto3 in 16 threads took half a minute)
s3_put_keys() {
	local b=$1 f=$2 key cfg=$T/put_keys.$$.cfg
	while IFS= read -r key; do
		printf 'url = "%s/%s/%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
			"$AWS_ENDPOINT_URL_S3" "$b" "$(_uri_encode "$key")" "$f"
	done >"$cfg"
	curl -sS --fail --max-time 300 --parallel --parallel-max 16 \
		--aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --config "$cfg"
}

# s3_keys BUCKET [PREFIX]: the keys under PREFIX, one a line, in key order
# (ListObjectsV2, every page)
s3_keys() {
	local b=$1 prefix=${2:-} token= q out
	while :; do
		q=list-type=2
		[ -z "$token" ] || q="continuation-token=$(_uri_encode "$token" '')&$q"
		[ -z "$prefix" ] || q="$q&prefix=$(_uri_encode "$prefix" '')"
		out=$(s3_req GET "$b?$q") || return 1
		[[ $out == *"<ListBucketResult"* ]] || return 1
		grep -o '<Key>[^<]*</Key>' <<<"$out" | sed 's|^<Key>\(.*\)</Key>$|\1|' | _xml_unescape || true
		[[ $out == *"<IsTruncated>true</IsTruncated>"* ]] || return 0
		token=$(grep -o '<NextContinuationToken>[^<]*' <<<"$out" | cut -d'>' -f2 | _xml_unescape)
		[ -n "$token" ] || return 1
	done
}

# s3_status BUCKET[/KEY]: the HTTP status of a HEAD of it (200, 404, ...)
s3_status() {
	curl -sS -o /dev/null -I -w '%{http_code}' --max-time 60 \
		--aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
		"$AWS_ENDPOINT_URL_S3/$(_uri_encode "$1")"
}

# _header NAME: the value of response header NAME in the headers on stdin
_header() {
	tr -d '\r' | sed -n "s/^$1: *//Ip" | tail -n 1
}

# no_multipart_uploads BUCKET: no upload may be left in progress
no_multipart_uploads() {
	local out
	out=$(s3_req GET "$1?uploads=") || die "ListMultipartUploads $1 failed"
	case $out in
	*"<ListMultipartUploadsResult"*) ;;
	*) die "ListMultipartUploads $1: not an answer: $out" ;;
	esac
	if [[ $out == *"<Upload>"* ]]; then
		echo "$out" >&2
		die "multipart uploads left in progress in $1"
	fi
	log "no multipart upload in progress in $1"
}

# object_etag BUCKET KEY: the ETag without quotes (fails if there is none)
object_etag() {
	local etag
	etag=$(s3_req HEAD "$1/$2" | _header etag | tr -d '"') || return 1
	[ -n "$etag" ] || return 1
	printf '%s\n' "$etag"
}

# object_absent BUCKET KEY: HeadObject answers 404 (not an error of another kind)
object_absent() {
	local st
	st=$(s3_status "$1/$2") || die "HeadObject s3://$1/$2: no answer"
	[ "$st" = 404 ] || die "s3://$1/$2 exists (HeadObject answered $st, not 404)"
}

# multipart_etag FILE PART_SIZE: the ETag S3 gives FILE uploaded in parts of
# PART_SIZE bytes: md5 of the parts' md5s, "-", number of parts
multipart_etag() {
	python3 - "$1" "$2" <<'EOF'
import hashlib, sys
digests = []
with open(sys.argv[1], "rb") as f:
    while True:
        part = f.read(int(sys.argv[2]))
        if not part:
            break
        digests.append(hashlib.md5(part).digest())
print("%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests)))
EOF
}

# --- the fault proxy --------------------------------------------------------
# start_faultproxy ARGS...: run tests/tools/faultproxy.py in front of the
# S3 server with ARGS (--reset-rate, --503-rate, --seed, ...); sets FP_URL,
# FP_PID and FP_STATS. Stopped at exit.
# start_faultproxy_moto ARGS...: the same in front of moto (need_moto
# first), where --throttle N and --5xx N [--5xx-status 503] [--match
# SUBSTRING] answer the first matching requests with the throttling or
# server error of their own AWS protocol (counters "throttles", "5xxs"):
# point a client at FP_URL instead of AWS_ENDPOINT_URL (e.g.
# AWS_ENDPOINT_URL_EC2=$FP_URL for vaultfs, only the EC2 calls).
_fp_n=0
start_faultproxy() { _start_faultproxy "$AWS_ENDPOINT_URL_S3" "$@"; }
start_faultproxy_moto() {
	_start_faultproxy "${AWS_ENDPOINT_URL:?no moto: call need_moto}" "$@"
}
_start_faultproxy() {
	local out i port= target=$1
	shift
	_fp_n=$((_fp_n + 1))
	out=$T/faultproxy$_fp_n
	FP_STATS=$out.json
	: >"$out.out" # read below, maybe before the child has opened it
	python3 "$FAULTPROXY" --listen-port 0 --target "${target#http://}" \
		--stats "$FP_STATS" "$@" >"$out.out" 2>"$out.err" &
	FP_PID=$!
	on_exit "kill $FP_PID; wait $FP_PID"
	for i in $(seq 1 100); do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$out.out")
		[ -n "$port" ] && break
		kill -0 "$FP_PID" 2>/dev/null || { cat "$out.err" >&2; die "faultproxy exited"; }
		sleep 0.1
	done
	[ -n "$port" ] || die "faultproxy did not report its port"
	FP_URL=http://127.0.0.1:$port
	log "faultproxy on $FP_URL: $*"
}

# fp_stat KEY: a counter of the last proxy started
fp_stat() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$FP_STATS" "$1"
}
