#!/bin/bash
# orch_onfailure: onFailure runs in its own process and never holds a
# worker: with one worker, a failed job's command that waits for the next
# job's archive sees it appear (the next job ran while it was running);
# the command, still running at onFailureTimeoutSeconds, is killed with
# everything it started, and `run --once` ends then, not when it would.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

V=$T/vault
mkdir -p "$V"
# a-bad fails at once (its sidecar is wrong); b-good is queued after it
make_tree "$V/a-bad" 1
echo '{ "resourceId": "" }' >"$V/a-bad.json"
make_tree "$V/b-good" 2

# the command: note its start, wait (up to 60 s) for b-good's archive,
# then start a long child and wait for it; it must be killed before "end"
cat >"$T/onfail.sh" <<EOF
echo "start \$VAULTFS_JOB_ID" >>"$T/of.log"
for i in \$(seq 1 600); do
	if [ -n "\$(find "$T/store" -name backup.tar.gz 2>/dev/null)" ]; then
		echo saw-archive >>"$T/of.log"
		break
	fi
	sleep 0.1
done
sleep 120 &
echo \$! >"$T/of.child"
wait
echo end >>"$T/of.log"
EOF
write_config "$T/c.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"concurrency\": { \"jobs\": 1 },
  \"onFailure\": \"sh $T/onfail.sh\",
  \"onFailureTimeoutSeconds\": 20 }"

start=$(date +%s)
VAULTFS_LOG=info vf_run_fails --config "$T/c.json" --once
took=$(($(date +%s) - start))
expect_grep '^failed +v/a-bad: sidecar a-bad.json: resourceId' "$RUN_OUT"
expect_grep '^succeeded v/b-good' "$RUN_OUT"
grep -q '^start ' "$T/of.log" || die "onFailure did not run"
grep -qx saw-archive "$T/of.log" ||
	{ cat "$T/of.log" >&2; die "onFailure never saw b-good's archive: it held the only worker"; }
! grep -qx end "$T/of.log" || die "onFailure ran to its end: it was not killed at its timeout"
expect_grep 'onFailure still running after 20 s: killed' "$RUN_ERR"
child=$(cat "$T/of.child")
# gone, or a zombie (killed, its parent gone, not yet reaped by init)
state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$child/status" 2>/dev/null || true)
[ -z "$state" ] || [ "$state" = Z ] || { kill "$child"; die "the command's child $child outlived the timeout (state $state)"; }
# the run waited for the command, up to its timeout, not for its 120 s child
[ "$took" -lt 100 ] || die "run --once took $took s: it waited for the command's child"
log "onFailure ran beside the next job and was killed at its timeout (run took $took s)"

# a bad timeout is an error that names the key
write_config "$T/bad.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state2\",
  \"onFailureTimeoutSeconds\": 0 }"
vf_run_fails --config "$T/bad.json" --once
expect_grep 'onFailureTimeoutSeconds' "$RUN_ERR"
