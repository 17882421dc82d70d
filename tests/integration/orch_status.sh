#!/bin/bash
# orch_status: `vaultfs status` as a table that fits 100 columns (names
# and RESULT cut, RESULT the key under the destination; --wide: whole),
# with RP SIZE, ARCHIVE and TIME; "1 job"; `status --check` as a health
# check: 1 with a job failed in the last --since, 0 otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

V=$T/vault
LONG=a-recovery-point-whose-name-goes-on-and-on-well-past-any-column
mkdir -p "$V"
make_tree "$V/$LONG" 2
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$V\" } ],
  \"destination\": \"$T/a-store-directory-with-a-long-name/and-deep/below\",
  \"stateDir\": \"$T/state\"
}"
vf_run --config "$T/cfg.json" --once
expect_grep 'journal: 1 job, 1 succeeded$' "$RUN_OUT"
vf status --config "$T/cfg.json" >"$T/st1.txt"
expect_grep '^1 job: 1 succeeded$' "$T/st1.txt"

# a failed job beside it
make_tree "$V/badside" 1
printf '{ "resourceId": 42 }\n' >"$V/badside.json"
vf_run_fails --config "$T/cfg.json" --once

vf status --config "$T/cfg.json" >"$T/st.txt"
cat "$T/st.txt" >&2
expect_grep '^RECOVERY POINT +STATE +PROGRESS +RP SIZE +ARCHIVE +RATE +TIME +RESULT$' "$T/st.txt"
long=$(awk 'length($0) > 100' "$T/st.txt")
[ -z "$long" ] || die "lines past 100 columns: $long"
expect_grep '^2 jobs: 1 succeeded, 1 failed$' "$T/st.txt"
# the succeeded row: its sizes, a rate (none under a second; "116.7
# KiB/s" once the job took one, as on a loaded machine), a time, the
# key's end, no store path
row=$(grep ' succeeded ' "$T/st.txt")
echo "$row" | grep -qE '^v/a-re[^ ]*\.\.\.[^ ]* +succeeded +100% +[0-9.]+ KiB +[0-9.]+ KiB +(-|[0-9.]+ (B|KiB|MiB|GiB)/s) +(<1s|[0-9]+s) +\.\.\.[0-9a-f]+/backup\.tar\.gz$' ||
	die "the succeeded row is not as expected: $row"
! grep -q "$T" "$T/st.txt" || die "the table shows the destination's path"
expect_grep '^v/badside +failed .* sidecar badsi[^ ]*\.\.\.$' "$T/st.txt"

# --wide: the whole name and URL
vf status --config "$T/cfg.json" --wide >"$T/wide.txt"
url=$(jstate "$T/state" 'j.get("result", {}).get("url", "")' | grep .)
grep -qF " $url" "$T/wide.txt" || die "--wide does not show $url"
expect_grep '^v/badside +failed .*sidecar badside.json: resourceId' "$T/wide.txt"
grep -q "^v/$LONG " "$T/wide.txt" || die "--wide cuts the name"
log "the table fits 100 columns; --wide shows the whole"

# --check: the failed job, exit 1; looking back 1 s later, exit 0
rc=0
vf status --config "$T/cfg.json" --check >"$T/check.txt" || rc=$?
[ "$rc" = 1 ] || die "status --check exited $rc with a failed job, not 1"
expect_grep ' v/badside failed at [0-9T:Z-]+: sidecar badside.json' "$T/check.txt"
expect_grep '^1 job failed or incomplete in the last 86400 s$' "$T/check.txt"
sleep 2.1
rc=0
vf status --config "$T/cfg.json" --check --since 1s >"$T/check1.txt" || rc=$?
[ "$rc" = 0 ] || die "status --check --since 1s exited $rc: $(cat "$T/check1.txt")"
expect_grep '^ok: 0 jobs succeeded, none failed or incomplete in the last 1 s$' "$T/check1.txt"
expect_fail vf status --config "$T/cfg.json" --check --since 3y
grep -q "'3y' is not a duration" "$FAIL_OUT" || die "--since 3y: $(cat "$FAIL_OUT")"
log "status --check: 1 with a recent failure, 0 past --since"
