#!/bin/bash
# orch_many: 20 recovery points (directory trees and ext4 images, some with
# a seed-style ARN in a sidecar) archived by `vaultfs run --once` with
# concurrency.jobs 3, to S3 and to a local store: every one archived, keys
# laid out as the seed's, manifests that agree with the objects, contents
# that extract to the originals; a second run queues nothing and writes
# nothing; `vaultfs status` (table and --json); `vaultfs bucket setup`
# applies lifecycleRules (and says there is nothing to do for a local
# store); nothing left attached, mounted or uploading.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_loop
need_fs ext4

V=$T/vault
mkdir -p "$V" "$T/src"
for i in $(seq -w 1 10); do
	make_tree "$V/tree$i" 3
done
for i in $(seq -w 1 10); do
	make_tree "$T/src/img$i" 2
	make_ext4 "$V/img$i.img" "$T/src/img$i" 4M
done
# seed-style resource ids
sidecar "$V/img01.img" "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-0abc01" '{"team": "ops"}'
sidecar "$V/tree01" "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-0abc02"
sha_before=$(find "$V" -type f -exec cksum {} + | sort | cksum)

make_bucket B
write_config "$T/s3.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/archive\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state-s3\",
  \"concurrency\": { \"jobs\": 3, \"uploads\": 2 },
  \"tags\": { \"project\": \"vaultfs-test\" },
  \"lifecycleRules\": { \"glacier\": 10, \"deepArchive\": 101, \"expiration\": 2190 }
}"
write_config "$T/local.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\",
  \"stateDir\": \"$T/state-local\",
  \"concurrency\": { \"jobs\": 3 }
}"

# --- S3 ----------------------------------------------------------------------
t0=$(date +%s)
vf_run --config "$T/s3.json" --once
log "S3: $(tail -n 1 "$RUN_OUT") in $(($(date +%s) - t0)) s"
expect_grep '^queued 20 recovery points' "$RUN_OUT"
[ "$(grep -c '^succeeded' "$RUN_OUT")" = 20 ] || die "not 20 succeeded lines"
[ "$(count_state "$T/state-s3" succeeded)" = 20 ] || die "not 20 jobs succeeded in the journal"
assert_released
no_multipart_uploads "$B"

s3_keys "$B" | sort >"$T/keys1" || die "cannot list s3://$B"
[ "$(grep -c '/backup.tar.gz$' "$T/keys1")" = 20 ] || die "not 20 archives in the bucket"
[ "$(grep -c '/manifest.json$' "$T/keys1")" = 20 ] || die "not 20 manifests in the bucket"
[ "$(grep -c '/backup.tar.gz.index$' "$T/keys1")" = 20 ] || die "not 20 indexes in the bucket"
[ "$(wc -l <"$T/keys1")" = 60 ] || die "unexpected objects in the bucket"
grep -q '^archive/arn/aws/ec2/eu-west-1/123456789012/snapshot/snap-0abc01/Y=2026/' "$T/keys1" ||
	die "the sidecar's ARN is not laid out as the seed's"
grep -q '^archive/local/prod/tree05/Y=' "$T/keys1" || die "local resource ids are not laid out"
check_s3_bucket "$B" "$T/bucket"
log "20 archives: layout, sizes, sha256, ETags and job ids agree with their manifests"

key=$(grep 'snap-0abc01/.*backup.tar.gz$' "$T/keys1")
check_s3_archive "$B" "$key"
[ "$(mjson "$CHECKED_MAN" 'm["job"]["resourceId"]')" = "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-0abc01" ] ||
	die "manifest: wrong resource id"
[ "$(mjson "$CHECKED_MAN" 'm["tags"]["project"]')" = vaultfs-test ] || die "manifest: no config tags"
[ "$(mjson "$CHECKED_MAN" 'm["recoveryPointTags"]["team"]')" = ops ] || die "manifest: no sidecar tags"
[ "$(mjson "$CHECKED_MAN" 'm["method"]')" = tree ] || die "manifest: an ext4 image not archived as a tree"
extract_compare "$CHECKED_OBJ" "$T/src/img01"
key=$(grep 'local/prod/tree07/.*backup.tar.gz$' "$T/keys1")
check_s3_archive "$B" "$key"
extract_compare "$CHECKED_OBJ" "$V/tree07"
log "an image and a tree extract to their originals"

# a second run: nothing new
vf_run --config "$T/s3.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
! grep -q '^succeeded' "$RUN_OUT" || die "the second run archived something"
[ "$(job_files "$T/state-s3" | wc -l)" = 20 ] || die "the second run made new jobs"
s3_keys "$B" | sort >"$T/keys2" || die "cannot list s3://$B"
diff -u "$T/keys1" "$T/keys2" || die "the second run changed the bucket"
log "second run: nothing queued, nothing written"

# status: table and JSON, without the lock
vf status --config "$T/s3.json" --wide >"$T/status.txt"
expect_grep '^RECOVERY POINT +STATE +PROGRESS +RP SIZE +ARCHIVE +RATE +TIME +RESULT' "$T/status.txt"
[ "$(grep -c ' succeeded .*s3://' "$T/status.txt")" = 20 ] || die "status: not 20 succeeded rows"
expect_grep '^20 jobs: 20 succeeded$' "$T/status.txt"
vf status --config "$T/s3.json" --json >"$T/status.json"
python3 - "$T/status.json" <<'EOF' || die "status --json is wrong"
import json, sys
jobs = json.load(open(sys.argv[1]))
assert len(jobs) == 20, len(jobs)
for j in jobs:
    assert j["state"] == "succeeded" and j["verified"], j
    assert j["result"].startswith("s3://") and len(j["sha256"]) == 64, j
    assert j["attempts"] == 1 and not j["snapshotDeleted"], j
EOF
log "status: 20 rows, JSON agrees"

# bucket setup
vf bucket setup --config "$T/s3.json" >"$T/bucket.out"
expect_grep 'reachable' "$T/bucket.out"
expect_grep 'GLACIER after 10 days' "$T/bucket.out"
aws_ s3api get-bucket-lifecycle-configuration --bucket "$B" >"$T/lc.json" ||
	die "no lifecycle configuration after bucket setup"
python3 - "$T/lc.json" <<'EOF' || die "the lifecycle configuration is not the configured one"
import json, sys
rules = json.load(open(sys.argv[1]))["Rules"]
assert len(rules) == 1, rules
r = rules[0]
assert r["Status"] == "Enabled"
prefix = r.get("Filter", {}).get("Prefix", r.get("Prefix"))
assert prefix == "archive/", prefix
tr = {t["StorageClass"]: t["Days"] for t in r["Transitions"]}
assert tr == {"GLACIER": 10, "DEEP_ARCHIVE": 101}, tr
assert r["Expiration"]["Days"] == 2190
assert r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
EOF
log "bucket setup: lifecycle rules applied"
vf bucket setup --config "$T/local.json" >"$T/bucket-local.out"
expect_grep 'local directory: nothing to set up' "$T/bucket-local.out"
write_config "$T/nobucket.json" "{
  \"vaults\": [], \"destination\": \"s3://vft-no-such-bucket-$$\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\", \"stateDir\": \"$T/state-nb\" }"
expect_fail vf bucket setup --config "$T/nobucket.json"
expect_grep 'NoSuchBucket|Not Found' "$FAIL_OUT"

# --- local store ---------------------------------------------------------------
vf_run --config "$T/local.json" --once
[ "$(grep -c '^succeeded' "$RUN_OUT")" = 20 ] || die "local: not 20 succeeded"
find "$T/store" -type f | sort >"$T/files1"
[ "$(grep -c '/backup.tar.gz$' "$T/files1")" = 20 ] || die "local: not 20 archives"
[ "$(grep -c '/manifest.json$' "$T/files1")" = 20 ] || die "local: not 20 manifests"
[ "$(grep -c '/backup.tar.gz.index$' "$T/files1")" = 20 ] || die "local: not 20 indexes"
[ "$(wc -l <"$T/files1")" = 60 ] || die "local: unexpected files in the store"
grep -q "^$T/store/arn/aws/ec2/eu-west-1/123456789012/snapshot/snap-0abc02/Y=" "$T/files1" ||
	die "local: the ARN is not laid out"
for f in $(grep '/backup.tar.gz$' "$T/files1"); do
	check_local_archive "$f"
done
extract_compare "$(grep 'local/prod/img03.img/' "$T/files1" | grep 'backup.tar.gz$')" "$T/src/img03"
vf_run --config "$T/local.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
find "$T/store" -type f | sort >"$T/files2"
diff -u "$T/files1" "$T/files2" || die "local: the second run changed the store"
log "local store: 20 archives laid out and checked; the second run did nothing"

[ "$(find "$V" -type f -exec cksum {} + | sort | cksum)" = "$sha_before" ] ||
	die "the vault was modified (autoDeleteSnapshot is off)"
assert_released
no_multipart_uploads "$B"
