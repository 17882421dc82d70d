#!/bin/bash
# s3_faults: retryable failures are retried and fatal ones abort cleanly.
#  - Through tests/tools/faultproxy.py, which resets connections and answers
#    503 SlowDown to a seeded share of requests, a 60 MiB upload from a pipe
#    still gives a byte-identical object, and so does the same file read in
#    place (a part reset mid-body is read from the file again); GETs
#    answered 503 are retried.
#  - When parts keep failing (VAULTFS_FAULT in the core, or the proxy
#    resetting every PUT), `vaultfs s3 cp` exits non-zero, stores no object
#    and leaves no multipart upload in progress.
. "$(dirname "$0")/lib.sh"
need_s3_command

MiB=$((1024 * 1024))
make_bucket B
head -c $((60 * MiB)) /dev/urandom >"$T/f60"

# --- retryable: resets and 503s on a share of all requests ---------------
# Seed 4 at 15% + 15% faults the 1st (CreateMultipartUpload: 503), 2nd
# (reset), 4th (503) and 5th (reset) requests and more later; at most 6
# faults, so that 10 attempts always suffice.
start_faultproxy --reset-rate 0.15 --503-rate 0.15 --seed 4 --max-faults 6
cat "$T/f60" | VAULTFS_S3_MAX_ATTEMPTS=10 vf s3 cp --quiet --part-size 8M \
	--endpoint-url "$FP_URL" - "s3://$B/f60" ||
	{ cat "$FP_STATS" >&2; die "upload through the fault proxy failed"; }
resets=$(fp_stat resets)
n503=$(fp_stat 503s)
log "proxy: $(fp_stat requests) requests, $resets resets, $n503 503s"
if [ "$resets" -lt 1 ] || [ "$n503" -lt 1 ]; then
	die "the proxy injected too few faults to test anything"
fi
aws_ s3 cp --only-show-errors "s3://$B/f60" "$T/f60.back"
same_file "$T/f60" "$T/f60.back"
etag=$(object_etag "$B" f60)
[ "$etag" = "$(multipart_etag "$T/f60" $((8 * MiB)))" ] || die "ETag $etag is not that of the 8 parts"
no_multipart_uploads "$B"
log "60 MiB through resets and 503s: identical"

# A file read in place: parts reset half-way through their bodies are read
# again from the file for the retry.
start_faultproxy --only-method PUT --reset-rate 0.3 --seed 4 --max-faults 4
VAULTFS_S3_MAX_ATTEMPTS=10 vf s3 cp --quiet --part-size 8M \
	--endpoint-url "$FP_URL" "$T/f60" "s3://$B/f60-file" ||
	{ cat "$FP_STATS" >&2; die "file upload through the fault proxy failed"; }
[ "$(fp_stat resets)" -ge 1 ] || die "the proxy reset no PUT"
aws_ s3 cp --only-show-errors "s3://$B/f60-file" "$T/f60-file.back"
same_file "$T/f60" "$T/f60-file.back"
etag=$(object_etag "$B" f60-file)
[ "$etag" = "$(multipart_etag "$T/f60" $((8 * MiB)))" ] || die "ETag $etag is not that of the 8 parts"
no_multipart_uploads "$B"
log "60 MiB file through $(fp_stat resets) resets of its parts: identical"

# GETs answered 503 twice, then served.
start_faultproxy --only-method GET --503-rate 1 --max-faults 2
VAULTFS_S3_MAX_ATTEMPTS=5 vf s3 cp --quiet --endpoint-url "$FP_URL" "s3://$B/f60" "$T/f60.vf"
same_file "$T/f60" "$T/f60.vf"
[ "$(fp_stat 503s)" = 2 ] || die "the proxy answered $(fp_stat 503s) GETs with 503, want 2"
log "download through two 503s: identical"

# --- fatal: parts fail for good --------------------------------------------
# Injected in the core: every UploadPart from the 3rd on fails.
expect_fail env VAULTFS_FAULT="s3.upload_part@3+" VAULTFS_S3_MAX_ATTEMPTS=2 \
	timeout -k 10 300 "$VAULTFS" s3 cp --quiet --part-size 8M - "s3://$B/fault-core" <"$T/f60"
object_absent "$B" fault-core
no_multipart_uploads "$B"
log "injected UploadPart failures: non-zero exit, upload aborted"

# On the wire: the proxy resets every PUT after the first two; POST
# (create, complete) and DELETE (abort) pass.
start_faultproxy --only-method PUT --reset-rate 1 --after 2
expect_fail env VAULTFS_S3_MAX_ATTEMPTS=3 timeout -k 10 300 "$VAULTFS" s3 cp --quiet \
	--part-size 8M --endpoint-url "$FP_URL" - "s3://$B/fault-wire" <"$T/f60"
[ "$(fp_stat resets)" -ge 3 ] || die "only $(fp_stat resets) resets: the upload gave up too early"
object_absent "$B" fault-wire
no_multipart_uploads "$B"
log "PUTs reset for good: non-zero exit, upload aborted"
