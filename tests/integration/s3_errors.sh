#!/bin/bash
# s3_errors: failures the server reports are fatal, named by their S3 code,
# exit non-zero, and store nothing: a wrong secret key (SignatureDoesNotMatch),
# an unknown access key (InvalidAccessKeyId), a missing bucket (NoSuchBucket),
# a missing key; bad command lines are refused before any request.
# (Commands stopped by a signal: s3_interrupt.sh.)
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
