#!/bin/bash
# s3_interrupt: an s3 command stopped by a signal leaves nothing half done,
# exits 128 + the signal within 5 s and says so in one line (issue 15):
#  - `s3 cp -` of a stream that stays open, SIGINTed once a part is on S3:
#    130, "interrupted: upload aborted", no upload left, no object;
#    SIGTERMed before a part filled: 143, "terminated", nothing on S3;
#  - `s3 cp FILE` whose parts the server holds unanswered (the fault
#    proxy): 130, the upload aborted;
#  - a download, an `s3 ls` and an `s3 rm` whose requests it holds: 130;
#    the download's temporary file removed, the object not deleted.
#  - a download into a pipe whose reader leaves (`| head`): quiet, 141.
. "$(dirname "$0")/lib.sh"
need_s3_command

make_bucket B
head -c 2000 /dev/urandom >"$T/small"
head -c $((12 << 20)) /dev/urandom >"$T/big"
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
# ends them. A file's parts (PUT) held: the upload is aborted
start_faultproxy --hold PUT
"$VAULTFS" s3 cp -q --part-size 5M "$T/big" "s3://$B/file" --endpoint-url "$FP_URL" 2>"$INT_ERR" &
pid=$!
on_exit "kill -9 $pid 2>/dev/null"
sleep 1
signal_ends "$pid" INT 130 "vaultfs: s3 cp: interrupted: upload aborted"
[ "$(fp_stat held)" -ge 1 ] || die "s3 cp FILE: no part was held"
no_multipart_uploads "$B"
object_absent "$B" file
# GET and DELETE held: the download leaves no file, the object stays
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

# a download to a pipe whose reader leaves early (`| head`): quiet, with
# the status of a writer killed by SIGPIPE, as cat ends
vf s3 cp -q "$T/big" "s3://$B/big" || die "s3 cp big failed"
got=$("$VAULTFS" s3 cp "s3://$B/big" - 2>"$INT_ERR" | head -c 100 | wc -c;
      echo "${PIPESTATUS[0]}")
[ "$got" = "100
141" ] || die "s3 cp to a closed pipe: got '$got' (bytes, status), want 100 and 141"
[ ! -s "$INT_ERR" ] || die "s3 cp to a closed pipe said: $(cat "$INT_ERR")"
log "s3 cp to a pipe closed early: quiet, 141"
