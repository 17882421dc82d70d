#!/bin/bash
# orch_failures: an unreadable recovery point (its reads fail) and one with
# a broken sidecar fail with a message while the others succeed; `run
# --once` then exits non-zero and onFailure runs once per failed job with
# the job's details in its environment; a later run leaves failed recovery
# points alone unless --retry-failed; a corrupt image is archived raw with
# a warning; a failed verification keeps the snapshot and the job fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_loop
need_fs ext4

V=$T/vault
mkdir -p "$V" "$T/src" "$T/onfail"
make_tree "$V/good-tree" 2
make_tree "$T/src/a" 2
make_ext4 "$V/good.img" "$T/src/a" 4M
head -c 3000000 /dev/urandom >"$V/noise.img"  # no filesystem: read raw
make_tree "$V/badside" 1
printf '{ "resourceId": 42 }\n' >"$V/badside.json"

make_bucket B
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoDeleteSnapshot\": true,
  \"concurrency\": { \"jobs\": 2 },
  \"verify\": \"full\",
  \"onFailure\": \"env | grep '^VAULTFS_JOB_' | sort > '$T/onfail/'\\\"\$VAULTFS_JOB_ID\\\"\"
}"

# --- reads of the raw image fail; the broken sidecar fails -------------------
VAULTFS_FAULT=arc.raw_read@1+ vf_run_fails --config "$T/cfg.json" --once
expect_grep '^succeeded +v/good-tree' "$RUN_OUT"
expect_grep '^succeeded +v/good.img' "$RUN_OUT"
expect_grep '^failed +v/noise.img: .*(Input/output error|EIO|I/O)' "$RUN_OUT"
expect_grep '^failed +v/badside: sidecar badside.json: resourceId' "$RUN_OUT"
expect_grep 'this run: 2 succeeded, 2 failed' "$RUN_OUT"
[ "$(count_state "$T/state" failed)" = 2 ] || die "not 2 failed jobs in the journal"
[ "$(count_state "$T/state" succeeded)" = 2 ] || die "not 2 succeeded jobs in the journal"
[ -f "$V/noise.img" ] && [ -d "$V/badside" ] || die "a failed job's snapshot was deleted"
[ ! -e "$V/good.img" ] && [ ! -e "$V/good-tree" ] || die "verified snapshots were not deleted (autoDeleteSnapshot)"
assert_released
no_multipart_uploads "$B"
s3_keys "$B" >"$T/keys" || die "cannot list s3://$B"
! grep -q 'noise.img' "$T/keys" || die "the failed job left objects behind"
log "unreadable and mis-described recovery points failed; the others succeeded"

# onFailure: once per failed job, with its details
[ "$(find "$T/onfail" -type f | wc -l)" = 2 ] || die "onFailure did not run exactly twice"
f=$(grep -l 'VAULTFS_JOB_RECOVERY_POINT=.*/noise.img$' "$T/onfail"/*) || die "no onFailure for noise.img"
expect_grep "^VAULTFS_JOB_ID=$(basename "$f")\$" "$f"
expect_grep '^VAULTFS_JOB_STATE=failed$' "$f"
expect_grep '^VAULTFS_JOB_VAULT=v$' "$f"
expect_grep '^VAULTFS_JOB_RESOURCE_ID=local:v:noise.img$' "$f"
expect_grep '^VAULTFS_JOB_ERROR=.+' "$f"
expect_grep '^VAULTFS_JOB_ATTEMPTS=1$' "$f"
expect_grep "^VAULTFS_JOB_LOG=$T/state/jobs/$(basename "$f").log\$" "$f"
[ -s "$T/state/jobs/$(basename "$f").log" ] || die "the failed job has no log"
f=$(grep -l 'VAULTFS_JOB_RECOVERY_POINT=.*/badside$' "$T/onfail"/*) || die "no onFailure for badside"
expect_grep '^VAULTFS_JOB_ERROR=sidecar badside.json: resourceId' "$f"
log "onFailure ran with the jobs' details"

vf status --config "$T/cfg.json" --wide >"$T/status.txt"
expect_grep '^v/noise.img +failed .*Input/output error' "$T/status.txt"
expect_grep '^v/good.img +succeeded .*s3://.*\(snapshot deleted\)' "$T/status.txt"

# a failed recovery point is not retried by itself...
rm -f "$T/onfail"/*
vf_run --config "$T/cfg.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
# ...but with --retry-failed (the sidecar fixed meanwhile)
printf '{ "resourceId": "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-fixed" }\n' >"$V/badside.json"
vf_run --config "$T/cfg.json" --once --retry-failed
expect_grep '^queued 2 recovery points' "$RUN_OUT"
expect_grep '^succeeded +v/noise.img .*/rawbackup.gz' "$RUN_OUT"
expect_grep '^succeeded +v/badside .*arn/aws/ec2/eu-west-1/123456789012/snapshot/snap-fixed/' "$RUN_OUT"
[ -z "$(ls -A "$T/onfail")" ] || die "onFailure ran for a success"
[ ! -e "$V/noise.img" ] || die "the retried snapshot was not deleted"
log "--retry-failed archives them once they can be"

# --- a corrupt image: raw, with a warning ------------------------------------
make_tree "$T/src/c" 1
make_ext4 "$V/corrupt.img" "$T/src/c" 4M
printf '\x7f' | dd of="$V/corrupt.img" bs=1 seek=$((1024 + 24)) conv=notrunc status=none
cp "$V/corrupt.img" "$T/corrupt.copy"
vf_run --config "$T/cfg.json" --once
expect_grep '^succeeded +v/corrupt.img .*/rawbackup.gz' "$RUN_OUT"
key=$(s3_keys "$B" local/v/corrupt.img/ | grep 'rawbackup\.gz$')
check_s3_archive "$B" "$key"
[ "$(mjson "$CHECKED_MAN" 'm["method"]')" = raw ] || die "corrupt image: method is not raw"
[ "$(mjson "$CHECKED_MAN" 'm["warnings_count"]')" -ge 1 ] || die "corrupt image: no warning in the manifest"
gzip -dc "$CHECKED_OBJ" | cmp - "$T/corrupt.copy" || die "corrupt image: the raw archive is not the image"
id=$(basename "${key%/*}")
grep -qi 'raw' "$T/state/jobs/$id.log" || die "corrupt image: no warning in the job's log"
log "a corrupt image: raw archive with a warning"

# --- a verification that fails keeps the snapshot ------------------------------
make_tree "$V/unverified" 1
VAULTFS_FAULT=orch.verify@1+ vf_run_fails --config "$T/cfg.json" --once
expect_grep '^failed +v/unverified: verify .*fault injection' "$RUN_OUT"
[ -d "$V/unverified" ] || die "a snapshot was deleted without a verified archive"
jstate "$T/state" 'j["recoveryPoint"]["path"]' 'j.get("verified", False)' 'j.get("snapshotDeleted", False)' |
	grep unverified | grep -q 'False	False' || die "the journal says verified or deleted"
[ -n "$(ls -A "$T/onfail")" ] || die "onFailure did not run for the failed verification"
assert_released
no_multipart_uploads "$B"

# --- a retryable failure (an S3 connection reset) is retried with backoff ------
mkdir -p "$T/rv"
make_tree "$T/rv/t" 1
write_config "$T/retry.json" "{
  \"vaults\": [ { \"name\": \"r\", \"path\": \"$T/rv\" } ],
  \"destination\": \"s3://$B/retry\", \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/retry-state\", \"maxAttempts\": 2
}"
VAULTFS_S3_MAX_ATTEMPTS=1 VAULTFS_FAULT=s3.request@1 vf_run --config "$T/retry.json" --once
expect_grep 'attempt 1 of 2 failed, retry in [0-9]+ s: .*connection reset' "$RUN_ERR"
[ "$(jstate "$T/retry-state" 'j["state"]' 'j["attempts"]')" = "succeeded	2" ] ||
	die "retry: journal: $(jstate "$T/retry-state" 'j["state"]' 'j["attempts"]')"
make_tree "$T/rv/t2" 1
VAULTFS_S3_MAX_ATTEMPTS=1 VAULTFS_FAULT=s3.request@1+ vf_run_fails --config "$T/retry.json" --once
expect_grep '^failed +r/t2: .*connection reset' "$RUN_OUT"
[ "$(jstate "$T/retry-state" 'j["recoveryPoint"]["path"]' 'j["state"]' 'j["attempts"]' | grep '/t2	')" = \
	"$T/rv/t2	failed	2" ] || die "retry: t2 not failed after 2 attempts"
log "a retryable failure is retried with backoff, up to maxAttempts"
assert_released
no_multipart_uploads "$B"
