#!/bin/bash
# s3_errors: failures the server reports are fatal, named by their S3 code,
# exit non-zero, and store nothing: a wrong secret key (SignatureDoesNotMatch),
# an unknown access key (InvalidAccessKeyId), a missing bucket (NoSuchBucket),
# a missing key; bad command lines are refused before any request.
# And a command stopped by a signal leaves nothing half done, exits 128 + the
# signal and says so: `s3 cp` of a stream SIGINTed once a part is on S3
# (130, "interrupted: upload aborted", no upload left, no object), SIGTERMed
# before any upload (143, "terminated"); a download, an `s3 ls` and an
# `s3 rm` whose requests the server holds unanswered (130; the download's
# temporary file removed, the object not deleted).
. "$(dirname "$0")/lib.sh"
need_s3_command

MiB=$((1024 * 1024))
make_bucket B
head -c 2000 /dev/urandom >"$T/small"
head -c $((12 * MiB)) /dev/urandom >"$T/big"

wrong_secret() { AWS_SECRET_ACCESS_KEY=wrongwrongwrongwrongwrongwrongwrongwrong1 vf "$@"; }
unknown_key() { AWS_ACCESS_KEY_ID=AKIANOSUCHKEY0000000 vf "$@"; }

# Wrong secret key: for a single PutObject and for a multipart upload.
for f in small big; do
	expect_fail wrong_secret s3 cp --part-size 5M "$T/$f" "s3://$B/$f"
	expect_grep 'SignatureDoesNotMatch' "$FAIL_OUT"
	expect_grep '^vaultfs: ' "$FAIL_OUT"
	if grep -qF 'wrongwrongwrong' "$FAIL_OUT"; then
		die "the secret key appears in the error message"
	fi
	object_absent "$B" "$f"
done
no_multipart_uploads "$B"
n=$(aws_ s3api list-objects-v2 --bucket "$B" --query 'length(Contents || `[]`)' --output text)
[ "$n" = 0 ] || die "a failed upload stored $n object(s)"
log "wrong secret: SignatureDoesNotMatch, nothing stored"

# Wrong secret for reading and listing too.
aws_ s3 cp --only-show-errors "$T/small" "s3://$B/small"
expect_fail wrong_secret s3 cp "s3://$B/small" "$T/out"
# (a HEAD answers 403 with no body to name the code)
expect_grep 'SignatureDoesNotMatch|403|Forbidden' "$FAIL_OUT"
expect_fail wrong_secret s3 ls "s3://$B"
expect_grep 'SignatureDoesNotMatch' "$FAIL_OUT"

# Unknown access key.
expect_fail unknown_key s3 cp "$T/small" "s3://$B/k2"
expect_grep 'InvalidAccessKeyId' "$FAIL_OUT"
object_absent "$B" k2
log "unknown access key: InvalidAccessKeyId"

# Missing bucket: up, down, ls.
new_bucket NB missing
expect_fail vf s3 cp "$T/small" "s3://$NB/k"
expect_grep 'NoSuchBucket' "$FAIL_OUT"
expect_fail vf s3 cp --part-size 5M "$T/big" "s3://$NB/k"
expect_grep 'NoSuchBucket' "$FAIL_OUT"
expect_fail vf s3 cp "s3://$NB/k" "$T/out"
expect_grep 'NoSuchBucket|Not Found|404' "$FAIL_OUT"
expect_fail vf s3 ls "s3://$NB"
expect_grep 'NoSuchBucket' "$FAIL_OUT"
if aws_ s3api head-bucket --bucket "$NB" 2>/dev/null; then
	die "a failed upload created bucket $NB"
fi
log "missing bucket: NoSuchBucket"

# Missing key.
expect_fail vf s3 cp "s3://$B/no/such/key" "$T/out"
expect_grep 'NoSuchKey|Not Found|404' "$FAIL_OUT"

# Bad command lines: refused with a usage message and no request.
expect_fail vf s3 cp "$T/small"
expect_fail vf s3 cp "$T/small" "s3://"
expect_fail vf s3 cp "$T/no-such-file" "s3://$B/x"
expect_fail vf s3 frobnicate
object_absent "$B" x
log "bad command lines refused"

# --- interrupted by a signal ---------------------------------------------------
# feed_stream BYTES: a stream of BYTES that then stays open (30 s) on the
# fifo $T/feed, for `s3 cp -`; the writer's pid in $feed_pid
feed_stream() {
	rm -f "$T/feed"
	mkfifo "$T/feed"
	(head -c "$1" /dev/urandom; exec sleep 30) >"$T/feed" &
	feed_pid=$!
	on_exit "kill $feed_pid 2>/dev/null"
}
# a stream whose first part is on S3 when SIGINT comes: the upload aborted
feed_stream $((20 << 20))
"$VAULTFS" s3 cp -q --part-size 5M - "s3://$B/stream" <"$T/feed" 2>"$INT_ERR" &
pid=$!
on_exit "kill -9 $pid 2>/dev/null"
parts=0
for i in $(seq 1 60); do
	id=$(aws_ s3api list-multipart-uploads --bucket "$B" --prefix stream \
		--query 'Uploads[0].UploadId' --output text)
	if [ -n "$id" ] && [ "$id" != None ]; then
		parts=$(aws_ s3api list-parts --bucket "$B" --key stream --upload-id "$id" \
			--query 'length(Parts || `[]`)' --output text)
		[ "$parts" -ge 1 ] && break
	fi
	sleep 0.5
done
[ "$parts" -ge 1 ] || die "s3 cp -: no part uploaded after 30 s"
signal_ends "$pid" INT 130 "vaultfs: s3 cp: interrupted: upload aborted"
kill "$feed_pid"
no_multipart_uploads "$B"
object_absent "$B" stream
# SIGTERM before the stream fills a part: no upload was begun
feed_stream $((1 << 20))
"$VAULTFS" s3 cp -q --part-size 5M - "s3://$B/short" <"$T/feed" 2>"$INT_ERR" &
pid=$!
on_exit "kill -9 $pid 2>/dev/null"
sleep 1
signal_ends "$pid" TERM 143 "vaultfs: s3 cp: terminated"
kill "$feed_pid"
object_absent "$B" short
log "s3 cp -: SIGINT aborts the upload (exit 130), SIGTERM before one 143"

# requests the server never answers (the proxy holds them): a signal still
# ends them; the download leaves no file, the object stays
vf s3 cp -q "$T/small" "s3://$B/held" || die "s3 cp small failed"
start_faultproxy --hold GET --hold DELETE
held() {
	"$VAULTFS" s3 "$@" --endpoint-url "$FP_URL" >/dev/null 2>"$INT_ERR" &
	pid=$!
	on_exit "kill -9 $pid 2>/dev/null"
	sleep 1
}
mkdir "$T/dl"
held cp -q "s3://$B/held" "$T/dl/held"
[ -n "$(ls -A "$T/dl")" ] || die "s3 cp (download): no temporary file while it waits"
signal_ends "$pid" INT 130 "vaultfs: s3 cp: interrupted: partial download removed"
[ -z "$(ls -A "$T/dl")" ] || { ls -la "$T/dl" >&2; die "an interrupted download left a file"; }
held ls "s3://$B/"
signal_ends "$pid" INT 130 "vaultfs: s3 ls: interrupted"
held rm "s3://$B/held"
signal_ends "$pid" INT 130 "vaultfs: s3 rm: interrupted"
vf s3 cp -q "s3://$B/held" "$T/dl/held" && same_file "$T/small" "$T/dl/held" ||
	die "the object is not intact after an interrupted rm"
log "s3 cp (download), ls, rm: SIGINT ends a held request, exit 130, no file left"
