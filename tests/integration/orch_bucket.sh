#!/bin/bash
# orch_bucket: `vaultfs bucket setup` merges its lifecycle rule into the
# bucket's: two rules set by boto3 (one with an "&" in its ID, one with a
# prefix-and-tag filter, disabled, with a noncurrent-version expiration)
# are still there, unchanged as boto3 reads them, after setup; a second
# setup with other days replaces the vaultfs rule instead of adding one;
# the vaultfs rule acts only under the destination prefix; --dry-run
# prints the merged configuration and changes nothing; a bucket without a
# configuration gets just the vaultfs rule; transitions or expiration
# without a prefix are refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

make_bucket B
# config NAME DESTINATION GLACIER EXPIRATION
config() {
	write_config "$T/$1.json" "{
  \"vaults\": [], \"destination\": \"$2\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\", \"stateDir\": \"$T/state-$1\",
  \"lifecycleRules\": { \"glacier\": $3, \"expiration\": $4 } }"
}
config first "s3://$B/archive" 10 400
config second "s3://$B/archive" 20 800

# rules FILE: the bucket's rules as boto3 reads them, as JSON
rules() {
	BUCKET=$B OUT=$1 py_s3 <<'EOF'
import json, os
r = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
json.dump(r, open(os.environ["OUT"], "w"), sort_keys=True)
EOF
}

BUCKET=$B py_s3 <<'EOF'
s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
    {"ID": "logs & stuff", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
     "Expiration": {"Days": 30}},
    {"ID": "tmp", "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "k", "Value": "v"}]}},
     "Status": "Disabled", "Expiration": {"Days": 3},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 5}},
]})
EOF
rules "$T/before.json"

# check FILE GLACIER EXPIRATION: the two foreign rules as before, one
# vaultfs rule for archive/ with those days
check() {
	python3 - "$T/before.json" "$@" <<'EOF' || die "the lifecycle rules after setup are wrong: $(cat "$1")"
import json, sys
before = json.load(open(sys.argv[1]))
after = json.load(open(sys.argv[2]))
glacier, expiration = int(sys.argv[3]), int(sys.argv[4])
others = [r for r in after if r["ID"] != "vaultfs-archive"]
ours = [r for r in after if r["ID"] == "vaultfs-archive"]
assert others == before, ("foreign rules changed", others, before)
assert len(ours) == 1, ("not one vaultfs rule", ours)
r = ours[0]
assert r["Filter"] == {"Prefix": "archive/"}, r
assert r["Status"] == "Enabled", r
assert r["Transitions"] == [{"Days": glacier, "StorageClass": "GLACIER"}], r
assert r["Expiration"] == {"Days": expiration}, r
assert r["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}, r
EOF
}

# --- dry run: prints the merged configuration, changes nothing ------------------
vf bucket setup --config "$T/first.json" --dry-run >"$T/dry.out"
expect_grep 'adding rule "vaultfs-archive", keeping 2 other rules' "$T/dry.out"
expect_grep '<ID>logs &amp; stuff</ID>.*<ID>tmp</ID>.*<ID>vaultfs-archive</ID><Filter><Prefix>archive/</Prefix></Filter>' "$T/dry.out"
rules "$T/dry.json"
cmp -s "$T/before.json" "$T/dry.json" || die "--dry-run changed the bucket's rules"
log "dry run: the merged configuration printed, nothing applied"

# --- setup keeps the foreign rules -------------------------------------------------
vf bucket setup --config "$T/first.json" >"$T/first.out"
rules "$T/after1.json"
check "$T/after1.json" 10 400
expect_grep 'added rule "vaultfs-archive", kept 2 other rules' "$T/first.out"
log "setup: both foreign rules kept, the vaultfs rule added"

# --- a second setup replaces the vaultfs rule ---------------------------------------
vf bucket setup --config "$T/second.json" >"$T/second.out"
rules "$T/after2.json"
check "$T/after2.json" 20 800
expect_grep 'replaced rule "vaultfs-archive", kept 2 other rules' "$T/second.out"
log "second setup: the vaultfs rule replaced, not duplicated"

# --- a bucket without a configuration ---------------------------------------------------
make_bucket E
config empty "s3://$E/archive" 10 400
vf bucket setup --config "$T/empty.json" >"$T/empty.out"
expect_grep 'added rule "vaultfs-archive", kept 0 other rules' "$T/empty.out"
n=$(aws_ s3api get-bucket-lifecycle-configuration --bucket "$E" --query 'length(Rules)' --output text)
[ "$n" = 1 ] || die "a bucket without rules: $n rules after setup"
log "a bucket without rules gets the vaultfs rule"

# --- no prefix: transitions and expiration refused ---------------------------------------
config noprefix "s3://$B" 10 400
expect_fail vf bucket setup --config "$T/noprefix.json"
expect_grep "would act on every object of s3://$B; give the destination a prefix" "$FAIL_OUT"
rules "$T/after3.json"
cmp -s "$T/after2.json" "$T/after3.json" || die "a refused setup changed the rules"
log "no prefix: transitions and expiration refused"
