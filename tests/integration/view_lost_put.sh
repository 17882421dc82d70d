#!/bin/bash
# view_lost_put: a file written into archive/ goes as one PutObject with
# If-None-Match: * (one create wins). When the server makes the object but
# its answer is lost (the fault proxy's --drop-answer), the retry gets 412:
# the view must find the object is its own (HeadObject: our size, our MD5
# as ETag) and succeed, not report EEXIST for a file it wrote.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
test_timeout 120

V=$T/vault
M=$T/mnt
mkdir -p "$V"
make_bucket B
start_faultproxy --drop-answer "PUT /$B/archive/lost.txt"
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/archive\",
  \"endpoint\": \"$FP_URL\",
  \"stateDir\": \"$T/state\"
}"
VAULTFS_LOG=info mount_view "$M" "$T/cfg.json"
A=$M/archive/$B/archive

head -c 100000 /dev/urandom >"$T/data"
cp "$T/data" "$A/lost.txt" 2>"$T/cp.err" ||
	die "cp into the mount failed ($(cat "$T/cp.err")): the lost answer was taken for another writer's object"
[ "$(fp_stat dropped)" = 1 ] || die "the proxy dropped $(fp_stat dropped) answers, not 1"
expect_grep "the answer to an earlier attempt was lost; the object there is ours" "$MERR"
aws_ s3 cp --only-show-errors "s3://$B/archive/lost.txt" "$T/back" || die "no lost.txt in the bucket"
cmp "$T/data" "$T/back" || die "lost.txt in the bucket differs"
cmp "$T/data" "$A/lost.txt" || die "lost.txt through the mount differs"
# a name that is taken still refuses
echo other | aws_ s3 cp --only-show-errors - "s3://$B/archive/taken.txt"
if cp "$T/data" "$A/taken.txt" 2>"$T/cp.err"; then
	die "cp over an existing object succeeded"
fi
grep -q "File exists" "$T/cp.err" || die "cp over an existing object: $(cat "$T/cp.err"), not EEXIST"
[ "$(aws_ s3api head-object --bucket "$B" --key archive/taken.txt --query ContentLength --output text)" = 6 ] ||
	die "taken.txt was replaced"
check_merr
unmount_view
log "ok"
