#!/bin/bash
# s3_small: `vaultfs s3 mb`, and single-request PutObject/GetObject through
# `vaultfs s3 cp`, checked against awscli: small, empty and awkwardly named
# objects go up and come back byte for byte, as a file and on stdout; an
# overwrite replaces; `vaultfs s3 rm` removes.
. "$(dirname "$0")/lib.sh"
need_s3_command

new_bucket B
vf s3 mb "s3://$B" || die "vaultfs s3 mb failed"
aws_ s3api head-bucket --bucket "$B" || die "bucket $B was not created"
log "mb created $B"

head -c 1000 /dev/urandom >"$T/small"
: >"$T/empty"
printf 'hello, vaultfs\n' >"$T/hello"

# Up with vaultfs, down with awscli and with vaultfs (to a file and stdout).
# --quiet and no terminal: nothing on stdout or stderr.
for f in small empty hello; do
	vf s3 cp --quiet "$T/$f" "s3://$B/obj/$f" >"$T/cp.out" 2>&1 ||
		{ cat "$T/cp.out" >&2; die "upload of $f failed"; }
	[ ! -s "$T/cp.out" ] || { cat "$T/cp.out" >&2; die "cp --quiet printed something"; }
	aws_ s3 cp --only-show-errors "s3://$B/obj/$f" "$T/$f.aws"
	same_file "$T/$f" "$T/$f.aws"
	vf s3 cp --quiet "s3://$B/obj/$f" "$T/$f.vf"
	same_file "$T/$f" "$T/$f.vf"
	vf s3 cp --quiet "s3://$B/obj/$f" - >"$T/$f.stdout"
	same_file "$T/$f" "$T/$f.stdout"
	# one PutObject, not a multipart upload: the ETag is the plain MD5
	etag=$(object_etag "$B" "obj/$f")
	want=$(md5sum <"$T/$f" | cut -d' ' -f1)
	[ "$etag" = "$want" ] || die "ETag of $f is $etag, want $want (a single PutObject)"
	log "$f: up, down (awscli, file, stdout) identical; ETag $etag"
done

# Up from stdin, small.
vf s3 cp --quiet - "s3://$B/obj/from-stdin" <"$T/hello"
aws_ s3 cp --only-show-errors "s3://$B/obj/from-stdin" "$T/from-stdin.aws"
same_file "$T/hello" "$T/from-stdin.aws"

# Uploaded by awscli, downloaded by vaultfs.
aws_ s3 cp --only-show-errors "$T/small" "s3://$B/by-aws"
vf s3 cp --quiet "s3://$B/by-aws" "$T/by-aws.vf"
same_file "$T/small" "$T/by-aws.vf"

# Keys that need percent-encoding in the URL and in the signature.
for key in "dir/with space" "dir/plus+equals=amp&pct%" "dir/ütf-8 ☃.txt" "dir/tilde~star*(1).x"; do
	vf s3 cp --quiet "$T/hello" "s3://$B/$key"
	aws_ s3api get-object --bucket "$B" --key "$key" "$T/weird.aws" >/dev/null ||
		die "awscli cannot read back '$key'"
	same_file "$T/hello" "$T/weird.aws"
	vf s3 cp --quiet "s3://$B/$key" "$T/weird.vf"
	same_file "$T/hello" "$T/weird.vf"
done
log "awkward keys round-trip"

# Overwrite.
vf s3 cp --quiet "$T/small" "s3://$B/obj/hello"
aws_ s3 cp --only-show-errors "s3://$B/obj/hello" "$T/over.aws"
same_file "$T/small" "$T/over.aws"
log "overwrite replaces"

# rm: gone for awscli and for vaultfs.
vf s3 rm "s3://$B/obj/small"
object_absent "$B" obj/small
expect_fail vf s3 cp "s3://$B/obj/small" "$T/gone"
expect_grep 'NoSuchKey|Not Found|404' "$FAIL_OUT"
aws_ s3api head-object --bucket "$B" --key obj/empty >/dev/null ||
	die "rm removed more than it was asked to"
log "rm removes exactly one object"
