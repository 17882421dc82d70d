#!/bin/bash
# s3_multipart: a 50 MiB file (read in place by the workers, signed or with
# unsigned payloads) and a 60 MiB stream from a pipe go up through
# `vaultfs s3 cp` as multipart uploads (the ETag says so, and with a given
# part size it is exactly the ETag of those parts), come back through awscli
# byte for byte, and leave no upload in progress. A file upload whose part
# fails (VAULTFS_FAULT), or whose file shrinks under it, fails, names the
# cause, stores nothing and leaves no upload in progress.
. "$(dirname "$0")/lib.sh"
need_s3_command

MiB=$((1024 * 1024))
make_bucket B

head -c $((50 * MiB)) /dev/urandom >"$T/f50"
head -c $((60 * MiB)) /dev/urandom >"$T/f60"

check_multipart() { # KEY FILE [PART_SIZE]
	local etag
	etag=$(object_etag "$B" "$1")
	[[ $etag =~ ^[0-9a-f]{32}-([0-9]+)$ ]] || die "ETag of $1 is '$etag': not a multipart upload"
	[ "${BASH_REMATCH[1]}" -ge 2 ] || die "$1 went up in ${BASH_REMATCH[1]} part"
	if [ -n "${3:-}" ]; then
		want=$(multipart_etag "$2" "$3")
		[ "$etag" = "$want" ] || die "ETag of $1 is $etag, want $want for parts of $3 bytes"
	fi
	aws_ s3 cp --only-show-errors "s3://$B/$1" "$T/back"
	same_file "$2" "$T/back"
	rm -f "$T/back"
	log "$1: multipart ETag $etag, read back by awscli identical"
}

# 50 MiB file, default part size
vf s3 cp --quiet "$T/f50" "s3://$B/f50"
check_multipart f50 "$T/f50"

# 50 MiB file, 8 MiB parts: 7 parts, the last one 2 MiB
vf s3 cp --quiet --part-size 8M --concurrency 3 "$T/f50" "s3://$B/f50-8m"
check_multipart f50-8m "$T/f50" $((8 * MiB))

# 50 MiB file, 5 MiB parts, unsigned payloads: Content-MD5 from the hash pass
vf s3 cp --quiet --unsigned-payload --part-size 5M "$T/f50" "s3://$B/f50-unsigned"
check_multipart f50-unsigned "$T/f50" $((5 * MiB))

# 60 MiB from a pipe (not seekable, size unknown)
cat "$T/f60" | vf s3 cp --quiet - "s3://$B/s60"
check_multipart s60 "$T/f60"

# 60 MiB from a pipe with the size announced
cat "$T/f60" | vf s3 cp --quiet --expected-size $((60 * MiB)) - "s3://$B/s60-sized"
check_multipart s60-sized "$T/f60"

# and back down through vaultfs, to a file and to a pipe
vf s3 cp --quiet "s3://$B/s60" "$T/s60.vf"
same_file "$T/f60" "$T/s60.vf"
vf s3 cp --quiet "s3://$B/f50-8m" - | cmp - "$T/f50" || die "vaultfs s3 cp to stdout differs"
log "vaultfs reads both back identical"

no_multipart_uploads "$B"

# A file whose third part fails for good (injected in the core): the upload
# is aborted.
expect_fail env VAULTFS_FAULT="s3.upload_part@3" timeout -k 10 300 "$VAULTFS" \
	s3 cp --quiet --part-size 8M "$T/f50" "s3://$B/fault"
expect_grep 'injected fault at s3.upload_part' "$FAIL_OUT"
object_absent "$B" fault
no_multipart_uploads "$B"
log "file upload with a failing part: non-zero exit, upload aborted"

# A file that shrinks while it is uploaded: cut to 12 MiB once the first of
# its twelve 5 MiB parts is in (one part at a time). Whatever was read by
# then, the parts after it come up short, and the size is checked again
# before the upload is completed.
cp "$T/f60" "$T/shrink"
VAULTFS_LOG=debug timeout -k 10 300 "$VAULTFS" s3 cp --quiet --part-size 5M \
	--concurrency 1 "$T/shrink" "s3://$B/shrink" 2>"$T/shrink.log" &
pid=$!
on_exit "kill $pid"
for _ in $(seq 1 3000); do
	grep -q 'UploadPart .* -> 200' "$T/shrink.log" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.01
done
truncate -s $((12 * MiB)) "$T/shrink"
rc=0
wait "$pid" || rc=$?
sed 's/^/    | /' "$T/shrink.log" | grep -v 'debug:' >&2 || true
[ "$rc" != 0 ] || die "the upload of a file that shrank succeeded"
[ "$rc" -lt 124 ] || die "the upload of a file that shrank ended with exit $rc"
if grep -qE 'Sanitizer|runtime error:' "$T/shrink.log"; then
	die "sanitizer report"
fi
expect_grep "vaultfs: s3: $T/shrink: changed while being uploaded" "$T/shrink.log"
object_absent "$B" shrink
no_multipart_uploads "$B"
log "a file that shrank under the upload: named, non-zero exit, upload aborted"
