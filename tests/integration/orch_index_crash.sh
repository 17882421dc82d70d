#!/bin/bash
# orch_index_crash: `vaultfs run` killed with SIGKILL while the index beside
# an archive (backup.tar.gz.index) is being uploaded: its multipart upload
# is journaled as the archive's is (an "upload" resource, its id recorded
# as soon as S3 answers), so the next start aborts it; the job is run again
# into the same folder, the archive and its index are stored whole, the
# full decode (with the index rebuilt and compared) passes, and only then
# is the snapshot deleted. No multipart upload is left open.
#
# The index must be over one part (5 MiB) to be a multipart upload: the
# tree holds ~36,000 empty files with 250-byte random names. The moment is
# VAULTFS_TEST_PAUSE_AT=uploading-index (docs/orchestrator.md).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_s3_command

make_bucket B
mkdir -p "$T/vault"
python3 - "$T/vault/tree" <<'EOF'
import base64, os, sys
root = sys.argv[1]
for d in range(18):
    sub = os.path.join(root, 'd%02d' % d)
    os.makedirs(sub)
    for i in range(2000):
        name = base64.b32encode(os.urandom(160)).decode()[:250]
        open(os.path.join(sub, name), 'w').close()
EOF
echo "some data" >"$T/vault/tree/file.txt"
sidecar "$T/vault/tree" "local:ixcrash"
write_config "$T/c.json" "{
  \"vaults\": [ { \"name\": \"ix\", \"path\": \"$T/vault\" } ],
  \"destination\": \"s3://$B/arch\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoDeleteSnapshot\": true,
  \"partSize\": \"5MiB\",
  \"maxAttempts\": 3
}"

# the first run stops once the index's multipart upload is made and journaled
: >"$T/run1.err"
VAULTFS_TEST_PAUSE_AT=uploading-index:120 "$VAULTFS" run --once \
	--config "$T/c.json" >"$T/run1.out" 2>"$T/run1.err" &
RPID=$!
on_exit "kill -KILL $RPID 2>/dev/null"
wait_line "$T/run1.err" "paused at uploading-index" 120 ||
	{ sed 's/^/    | /' "$T/run1.err" >&2; die "the job never reached the index's upload"; }
jstate "$T/state" '[(r["kind"], r["status"], r.get("key", "")) for r in j["resources"]]' >"$T/res"
grep -q "('upload', 'created', '.*/backup.tar.gz.index')" "$T/res" ||
	die "the index's upload is not journaled with its id: $(cat "$T/res")"
kill -KILL "$RPID"
wait "$RPID" 2>/dev/null || true
! grep -qE 'Sanitizer|runtime error:' "$T/run1.err" || die "sanitizer report before the kill"

# what the kill left: the index's upload open, the snapshot there
aws_ s3api list-multipart-uploads --bucket "$B" --output json >"$T/mpu.json"
python3 - "$T/mpu.json" <<'EOF' || die "no open upload of the index after the kill: $(cat "$T/mpu.json")"
import json, sys
ups = json.load(open(sys.argv[1])).get('Uploads', [])
sys.exit(0 if [u for u in ups if u['Key'].endswith('/backup.tar.gz.index')] else 1)
EOF
[ -d "$T/vault/tree" ] || die "the snapshot is gone before verification"
[ "$(jstate "$T/state" 'j.get("verified", False)')" = False ] || die "verified before the index was stored?"
log "killed during the index's upload: its multipart upload is open, journaled"

# the next start: released, archived again, verified, then deleted
vf_run --config "$T/c.json" --once
expect_grep 'releasing what an earlier run left' "$RUN_ERR"
expect_grep "^succeeded +ix/tree .*snapshot deleted" "$RUN_OUT"
[ "$(jstate "$T/state" 'j["state"]' 'j["attempts"]' 'j["verified"]' 'j["snapshotDeleted"]')" = \
	"succeeded	2	True	True" ] ||
	die "journal: $(jstate "$T/state" 'j["state"]' 'j["attempts"]' 'j["verified"]' 'j["snapshotDeleted"]')"
[ "$(jstate "$T/state" 'len([r for r in j["resources"] if r["status"] != "released"])')" = 0 ] ||
	die "resources not released: $(jstate "$T/state" 'j["resources"]')"
no_multipart_uploads "$B"
url=$(jstate "$T/state" 'j["result"]["url"]')
[ ! -e "$T/vault/tree" ] || die "the snapshot was not deleted"
# the index is there, over a part, and `vaultfs verify` agrees
size=$(aws_ s3api head-object --bucket "$B" --key "${url#s3://$B/}.index" --query ContentLength --output text)
[ "$size" -gt $((5 * 1024 * 1024)) ] || die "the index is $size bytes: one part, the test proved nothing"
vf verify -q "${url%/*}/" || die "vaultfs verify of the archive failed"
log "restarted: upload aborted, archived again, index stored whole ($size bytes), verified, snapshot deleted"
