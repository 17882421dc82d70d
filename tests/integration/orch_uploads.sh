#!/bin/bash
# orch_uploads: no multipart upload is orphaned, and a lost
# CompleteMultipartUpload answer is not a failure. Through the fault proxy's
# --drop-answer (the server acts, the client sees a reset):
#   1. a job whose CreateMultipartUpload answer is lost: the client's retry
#      makes a second upload; the job succeeds with one whole object and
#      the first upload is aborted, not left in progress;
#   2. the same, killed (SIGKILL) while paused after the second create was
#      journaled: the restart aborts the recorded upload and the one the
#      journal never heard of, but not the uploads of other keys under the
#      same prefix (the job's key + ".other", another key);
#   3. a create that fails for good (every answer lost, the attempts used
#      up): nothing left in progress;
#   4. every CompleteMultipartUpload answer lost: the job still succeeds once
#      (the object is reconciled: ETag with MD5 ETags; size and part count
#      with VAULTFS_TEST_OPAQUE_ETAGS, as under SSE-KMS), one object, no
#      upload left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

make_bucket B
# 12 MiB of random data: three parts of 5 MiB
mkdir -p "$T/src/big"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$T/src/big/random.bin"
echo "a small file" >"$T/src/big/small.txt"

# setup NAME ENDPOINT [MAXATTEMPTS]: a vault with a copy of the tree
setup() {
	local name=$1 endpoint=$2
	mkdir -p "$T/$name/vault"
	cp -a "$T/src/big" "$T/$name/vault/big"
	write_config "$T/$name.json" "{
  \"vaults\": [ { \"name\": \"$name\", \"path\": \"$T/$name/vault\" } ],
  \"destination\": \"s3://$B/$name\",
  \"endpoint\": \"$endpoint\",
  \"stateDir\": \"$T/$name/state\",
  \"partSize\": \"5MiB\",
  \"maxAttempts\": ${3:-1}
}"
}

# uploads [PREFIX]: "KEY UPLOADID" lines of the uploads in progress (one
# ListMultipartUploads page: the test makes a handful)
uploads() {
	local out
	out=$(s3_req GET "$B?prefix=$(_uri_encode "${1:-}" '')&uploads=") ||
		die "ListMultipartUploads $B failed"
	[[ $out == *"<IsTruncated>false</IsTruncated>"* ]] ||
		die "ListMultipartUploads $B: not one whole page: $out"
	grep -o '<Key>[^<]*</Key><UploadId>[^<]*</UploadId>' <<<"$out" |
		sed 's|<Key>\(.*\)</Key><UploadId>\(.*\)</UploadId>|\1 \2|' | _xml_unescape || true
}

# new_upload KEY: an upload in progress made by someone else; prints its id
new_upload() {
	s3_req POST "$B/$1?uploads=" | grep -o '<UploadId>[^<]*' | cut -d'>' -f2
}

# succeeded_once NAME: the one job succeeded; its object whole
succeeded_once() {
	local name=$1 url
	expect_grep "^succeeded +$name/big" "$RUN_OUT"
	[ "$(job_files "$T/$name/state" | wc -l)" = 1 ] || die "$name: not exactly one job"
	url=$(jstate "$T/$name/state" 'j["result"]["url"]')
	check_s3_archive "$B" "${url#s3://$B/}"
	extract_compare "$CHECKED_OBJ" "$T/src/big"
	[ "$(s3_keys "$B" "$name/" | grep -c 'backup.tar.gz$')" = 1 ] ||
		die "$name: not exactly one archive object"
	JOB_KEY=${url#s3://$B/}
}

# --- 1. the create's answer lost, the retry succeeds -------------------------
start_faultproxy --drop-answer 'POST ?uploads'
setup lostcreate "$FP_URL"
vf_run --config "$T/lostcreate.json" --once
[ "$(fp_stat dropped)" = 1 ] || die "lostcreate: the proxy dropped no create answer"
succeeded_once lostcreate
left=$(uploads lostcreate/)
[ -z "$left" ] || die "lostcreate: uploads left in progress: $left"
expect_grep 'aborted upload .* which nobody recorded' "$T"/lostcreate/state/jobs/*.log
log "a lost create answer: one object, the first upload aborted"

# --- 2. the same, killed before the sweep; the restart clears it ----------------
start_faultproxy --drop-answer 'POST ?uploads'
setup restart "$FP_URL" 3
foreign=$(new_upload restart/someone-else.bin)
: >"$T/restart/run.err"
# no `timeout` in between: SIGKILL must reach vaultfs (the pause ends by
# itself after 120 s, and the exit trap kills it)
VAULTFS_TEST_PAUSE_AT=uploading:120 "$VAULTFS" run --once \
	--config "$T/restart.json" >"$T/restart/run.out" 2>"$T/restart/run.err" &
RPID=$!
on_exit "kill -KILL $RPID 2>/dev/null"
wait_line "$T/restart/run.err" "paused at uploading" 60
key=$(jstate "$T/restart/state" '[r["key"] for r in j["resources"] if r["kind"] == "upload"][0]')
recorded=$(jstate "$T/restart/state" '[r["uploadId"] for r in j["resources"] if r["kind"] == "upload"][0]')
# (one listing, read twice: `uploads | grep -q` could end the lister with
# a broken pipe, which pipefail makes a failure)
ups=$(uploads "$key")
[ "$(grep -c "^$key " <<<"$ups")" = 2 ] ||
	die "restart: not two uploads for the job's key (the orphan and the recorded one): $ups"
grep -q " $recorded\$" <<<"$ups" || die "restart: the recorded upload is not in progress"
longer=$(new_upload "$key.other")
kill -KILL "$RPID"
wait "$RPID" 2>/dev/null || true
! grep -qE 'Sanitizer|runtime error:' "$T/restart/run.err" || die "sanitizer report before the kill"
kill "$FP_PID"
setup_endpoint=$AWS_ENDPOINT_URL_S3
sed -i "s|\"endpoint\": \"[^\"]*\"|\"endpoint\": \"$setup_endpoint\"|" "$T/restart.json"
vf_run --config "$T/restart.json" --once
succeeded_once restart
left=$(uploads restart/ | sort)
[ "$left" = "$(printf '%s\n%s\n' "$key.other $longer" "restart/someone-else.bin $foreign" | sort)" ] ||
	die "restart: the uploads left are not exactly the two foreign ones: $left"
# the start-up recovery did it (not the new attempt's own sweep)
expect_grep "aborted 1 upload of s3://$B/$key the journal did not hold" "$RUN_ERR"
log "restart: the recorded upload and the orphan aborted, foreign uploads kept"

# --- 3. the create fails for good --------------------------------------------
# (libcurl itself resends once on a reused connection that died without an
# answer: every create answer is dropped)
start_faultproxy --drop-answer 'POST ?uploads' --drop-answer-count 1000
setup failcreate "$FP_URL"
VAULTFS_S3_MAX_ATTEMPTS=2 vf_run_fails --config "$T/failcreate.json" --once
[ "$(fp_stat dropped)" -ge 2 ] || die "failcreate: the proxy dropped fewer than two create answers"
expect_grep '^failed +failcreate/big' "$RUN_OUT"
left=$(uploads failcreate/)
[ -z "$left" ] || die "failcreate: uploads left in progress: $left"
log "a create that failed for good: nothing left in progress"

# --- 4. every CompleteMultipartUpload answer lost -------------------------------
for mode in md5 opaque; do
	start_faultproxy --drop-answer 'POST ?uploadId=' --drop-answer-count 1000
	setup "lost$mode" "$FP_URL"
	if [ $mode = opaque ]; then
		VAULTFS_TEST_OPAQUE_ETAGS=1 VAULTFS_S3_MAX_ATTEMPTS=3 vf_run --config "$T/lost$mode.json" --once
		expect_grep 'whose answer was lost \(size and part count checked\)' "$T"/lost$mode/state/jobs/*.log
	else
		VAULTFS_S3_MAX_ATTEMPTS=3 vf_run --config "$T/lost$mode.json" --once
		expect_grep 'whose answer was lost \(ETag checked\)' "$T"/lost$mode/state/jobs/*.log
	fi
	[ "$(fp_stat dropped)" -ge 1 ] || die "lost$mode: the proxy dropped no complete answer"
	succeeded_once "lost$mode"
	[ "$(jstate "$T/lost$mode/state" 'j["attempts"]')" = 1 ] || die "lost$mode: more than one attempt"
	left=$(uploads "lost$mode/")
	[ -z "$left" ] || die "lost$mode: uploads left in progress: $left"
	log "every complete answer lost ($mode ETags): reconciled, one object"
done
