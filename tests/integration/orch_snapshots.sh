#!/bin/bash
# orch_snapshots: what happens to a recovery point once its archive is
# verified: autoDeleteSnapshot false keeps it; true deletes it (image or
# tree, and its sidecar, nothing hidden left in the vault); true with a
# securityTag deletes only those whose sidecar carries that tag with that
# value, and says why it kept the others.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_loop
need_fs ext4

# fill VAULT: an image and a tree with the right tag, one of each with a
# wrong value, a tree without a sidecar
fill() {
	local v=$1
	mkdir -p "$v" "$T/src"
	make_tree "$T/src/x" 2
	make_ext4 "$v/tagged.img" "$T/src/x" 4M
	sidecar "$v/tagged.img" "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-1" '{"vaultfs": "managed"}'
	make_tree "$v/tagged-tree" 2
	sidecar "$v/tagged-tree" "local:tagged-tree" '{"vaultfs": "managed", "x": "y"}'
	make_ext4 "$v/wrong.img" "$T/src/x" 4M
	sidecar "$v/wrong.img" "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-2" '{"vaultfs": "other"}'
	make_tree "$v/untagged" 1
}

# config NAME 'EXTRA-JSON'
config() {
	fill "$T/$1/vault"
	write_config "$T/$1.json" "{
  \"vaults\": [ { \"name\": \"$1\", \"path\": \"$T/$1/vault\" } ],
  \"destination\": \"$T/$1/store\", \"stateDir\": \"$T/$1/state\",
  \"concurrency\": { \"jobs\": 2 } $2 }"
}

archives() {
	find "$T/$1/store" -name 'backup.tar.gz' | wc -l
}

# --- autoDeleteSnapshot false (the default) --------------------------------
config keep ''
before=$(cd "$T/keep/vault" && find . | sort)
vf_run --config "$T/keep.json" --once
[ "$(archives keep)" = 4 ] || die "keep: not 4 archives"
[ "$(cd "$T/keep/vault" && find . | sort)" = "$before" ] || die "keep: the vault changed"
! grep -q 'snapshot deleted' "$RUN_OUT" || die "keep: a snapshot was deleted"
log "autoDeleteSnapshot false: every snapshot kept"

# --- autoDeleteSnapshot true ---------------------------------------------------
config del ', "autoDeleteSnapshot": true'
vf_run --config "$T/del.json" --once
[ "$(archives del)" = 4 ] || die "del: not 4 archives"
[ "$(grep -c 'snapshot deleted' "$RUN_OUT")" = 4 ] || die "del: not 4 snapshots deleted"
[ -z "$(ls -A "$T/del/vault")" ] || { ls -la "$T/del/vault" >&2; die "del: the vault is not empty"; }
for f in $(find "$T/del/store" -name backup.tar.gz); do
	check_local_archive "$f"
done
extract_compare "$(find "$T/del/store" -path '*snap-1*' -name backup.tar.gz)" "$T/src/x"
jstate "$T/del/state" 'j["verified"]' 'j["snapshotDeleted"]' | sort -u | grep -qx 'True	True' ||
	die "del: the journal does not say verified and deleted"
vf status --config "$T/del.json" --wide >"$T/status.txt"
[ "$(grep -c '(snapshot deleted)' "$T/status.txt")" = 4 ] || die "del: status does not show the deletions"
log "autoDeleteSnapshot true: snapshots and sidecars deleted after verification"

# --- with a security tag ---------------------------------------------------------
config tag ', "autoDeleteSnapshot": true, "securityTag": { "key": "vaultfs", "value": "managed" }'
vf_run --config "$T/tag.json" --once
[ "$(archives tag)" = 4 ] || die "tag: not 4 archives"
[ ! -e "$T/tag/vault/tagged.img" ] && [ ! -e "$T/tag/vault/tagged.img.json" ] ||
	die "tag: the tagged image was kept"
[ ! -e "$T/tag/vault/tagged-tree" ] || die "tag: the tagged tree was kept"
[ -f "$T/tag/vault/wrong.img" ] && [ -f "$T/tag/vault/wrong.img.json" ] ||
	die "tag: the image with a wrong tag value was deleted"
[ -d "$T/tag/vault/untagged" ] || die "tag: the untagged tree was deleted"
[ "$(ls -A "$T/tag/vault" | sort | tr '\n' ' ')" = "untagged wrong.img wrong.img.json " ] ||
	die "tag: unexpected entries in the vault: $(ls -A "$T/tag/vault")"
expect_grep 'note: snapshot kept: its tag "vaultfs" is not the security tag'"'"'s value' "$RUN_OUT"
expect_grep 'note: snapshot kept: it does not carry the security tag "vaultfs"' "$RUN_OUT"
vf status --config "$T/tag.json" --wide >"$T/status.txt"
expect_grep '^tag/wrong.img +succeeded .*snapshot kept: its tag' "$T/status.txt"
expect_grep '^tag/tagged.img +succeeded .*\(snapshot deleted\)' "$T/status.txt"
# the kept ones are done: a second run leaves them alone
vf_run --config "$T/tag.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
log "securityTag: only snapshots carrying key=value are deleted"
assert_released
