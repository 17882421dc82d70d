#!/bin/bash
# orch_verify: with autoDeleteSnapshot, no snapshot is deleted without the
# full decode of its stored archive, whatever `verify` says. The stored
# object is corrupted while the job waits at verifying (the test-only
# VAULTFS_TEST_PAUSE_AT=verifying:SECS), in a local store and in S3: the job
# fails naming the gzip member, the snapshot stays. A codec bug (a byte
# flipped before it is hashed: VAULTFS_FAULT=codec.corrupt), which no
# byte-level check can see, fails the job just the same. An intact archive
# is decoded, then its snapshot deleted. `verify: "decode"` is accepted, a
# bad mode is refused naming the key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_s3_command

make_bucket B

# setup NAME DEST [EXTRA-JSON]: a vault with one tree, a config (with
# autoDeleteSnapshot unless EXTRA says otherwise)
setup() {
	local name=$1 dest=$2 extra=${3:-', "autoDeleteSnapshot": true'}
	mkdir -p "$T/$name/vault"
	make_tree "$T/$name/vault/tree" 3
	head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/$name/vault/tree/big.bin"
	sidecar "$T/$name/vault/tree" "local:$name"
	cp -a "$T/$name/vault/tree" "$T/$name/orig"
	write_config "$T/$name.json" "{
  \"vaults\": [ { \"name\": \"$name\", \"path\": \"$T/$name/vault\" } ],
  \"destination\": \"$dest\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/$name/state\",
  \"maxAttempts\": 1 $extra
}"
}

# flip FILE: xor the byte in the middle
flip() {
	python3 - "$1" <<'EOF'
import os, sys
p = sys.argv[1]
off = os.path.getsize(p) // 2
with open(p, 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x10]))
EOF
}

# run_paused NAME: `run --once` in the background, paused at verifying;
# returns once the job is there (PID in RPID). The test corrupts the object,
# then says so (`go_on NAME`: STATEDIR/continue-verifying); the pause lasts
# 20 s at most.
run_paused() {
	local name=$1
	: >"$T/$name/run.err"
	VAULTFS_TEST_PAUSE_AT=verifying:20 "$VAULTFS" run --once \
		--config "$T/$name.json" >"$T/$name/run.out" 2>"$T/$name/run.err" &
	RPID=$!
	on_exit "kill -KILL $RPID 2>/dev/null"
	wait_line "$T/$name/run.err" "paused at verifying" 120
}

go_on() { touch "$T/$1/state/continue-verifying"; }

# finished_failed NAME: the run exits 1, the job failed on the decode, the
# snapshot and its sidecar are where they were, unchanged
finished_failed() {
	local name=$1 rc=0
	wait "$RPID" || rc=$?
	! grep -qE 'Sanitizer|runtime error:' "$T/$name/run.err" || die "$name: sanitizer report"
	[ "$rc" = 1 ] || { cat "$T/$name/run.err" >&2; die "$name: run exited $rc, not 1"; }
	[ "$(jstate "$T/$name/state" 'j["state"]' 'j.get("verified", False)' 'j.get("snapshotDeleted", False)')" = \
		"failed	False	False" ] || die "$name: journal: $(jstate "$T/$name/state" 'j["state"]' 'j.get("lastError")')"
	jstate "$T/$name/state" 'j["lastError"]' >"$T/$name/error"
	expect_grep "^verify .*backup.tar.gz: gzip member [0-9]+ at byte [0-9]+: " "$T/$name/error"
	[ -f "$T/$name/vault/tree.json" ] || die "$name: the sidecar is gone"
	diff -r --no-dereference "$T/$name/orig" "$T/$name/vault/tree" >&2 ||
		die "$name: the snapshot changed"
	! grep -q 'deleted' "$T/$name/run.out" || die "$name: a snapshot was deleted"
}

# --- a local store, verify left at its default ("etag") -----------------------
setup local "$T/local/store"
run_paused local
obj=$(find "$T/local/store" -name backup.tar.gz)
[ -n "$obj" ] || die "local: no archive in the store"
flip "$obj"
go_on local
finished_failed local
log "local store: corrupted at verifying: failed on the decode, snapshot kept"

# --- S3, verify "etag" said outright -------------------------------------------
setup s3 "s3://$B/arch" ', "verify": "etag", "autoDeleteSnapshot": true'
run_paused s3
# one python: list, get, flip the middle byte, put back
key=$(BUCKET=$B py_s3 <<'EOF'
for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="arch/")["Contents"]:
    if o["Key"].endswith("/backup.tar.gz"):
        b = bytearray(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())
        b[len(b) // 2] ^= 0x10
        s3.put_object(Bucket=BUCKET, Key=o["Key"], Body=bytes(b))
        print(o["Key"])
EOF
)
[ -n "$key" ] || die "s3: no archive in the bucket"
go_on s3
finished_failed s3
log "S3: corrupted at verifying: failed on the decode, snapshot kept"

# --- a codec bug: the stored bytes are the hashed ones; only a decode sees it
setup bug "$T/bug/store"
VAULTFS_FAULT=codec.corrupt@2 vf_run_fails --config "$T/bug.json" --once
[ "$(jstate "$T/bug/state" 'j["state"]' 'j.get("verified", False)')" = "failed	False" ] ||
	die "bug: journal: $(jstate "$T/bug/state" 'j["state"]' 'j.get("lastError")')"
jstate "$T/bug/state" 'j["lastError"]' >"$T/bug/error"
expect_grep "^verify .*backup.tar.gz: gzip member [0-9]+ at byte [0-9]+: CRC mismatch" "$T/bug/error"
diff -r --no-dereference "$T/bug/orig" "$T/bug/vault/tree" >&2 || die "bug: the snapshot changed"
# its sha256 is the manifest's: the bytes are as written, yet not whole
obj=$(find "$T/bug/store" -name backup.tar.gz)
[ "$(sha256sum "$obj" | cut -d' ' -f1)" = "$(mjson "${obj%/*}/manifest.json" 'm["sha256"]')" ] ||
	die "bug: the archive's sha256 is not the manifest's"
expect_fail vf verify "$obj"
expect_grep 'gzip member [0-9]+ at byte [0-9]+: CRC mismatch' "$FAIL_OUT"
log "a codec bug (VAULTFS_FAULT=codec.corrupt): failed on the decode, snapshot kept"

# --- intact: decoded, then deleted ---------------------------------------------
setup good "$T/good/store"
vf_run --config "$T/good.json" --once
expect_grep '^succeeded .*snapshot deleted' "$RUN_OUT"
[ ! -e "$T/good/vault/tree" ] || die "good: the snapshot was not deleted"
log_file=$(find "$T/good/state/jobs" -name '*.log')
expect_grep 'verified .*backup.tar.gz: decoded [0-9]+ bytes in [0-9]+ member\(s\), [0-9]+ tar entries, as the manifest says' "$log_file"
grep -q '"tar"' "$(find "$T/good/store" -name manifest.json)" || die "good: no tar counts in the manifest"
log "intact: decoded, then the snapshot deleted"

# --- the configuration ------------------------------------------------------------
setup mode "$T/mode/store" ', "verify": "decode"'
vf_run --config "$T/mode.json" --once
expect_grep 'decoded [0-9]+ bytes' "$(find "$T/mode/state/jobs" -name '*.log')"
[ -d "$T/mode/vault/tree" ] || die "mode: the snapshot went without autoDeleteSnapshot"
write_config "$T/bad.json" "{ \"vaults\": [], \"destination\": \"$T/x\", \"verify\": \"deep\" }"
expect_fail vf run --config "$T/bad.json" --once
expect_grep 'verify' "$FAIL_OUT"
log "verify: \"decode\" works without autoDeleteSnapshot; a bad mode is refused"
