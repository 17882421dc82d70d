#!/bin/bash
# s3_multipart: a 50 MiB file and a 60 MiB stream from a pipe go up through
# `vaultfs s3 cp` as multipart uploads (the ETag says so, and with a given
# part size it is exactly the ETag of those parts), come back through awscli
# byte for byte, and leave no upload in progress.
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
