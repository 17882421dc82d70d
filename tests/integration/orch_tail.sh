#!/bin/bash
# orch_tail: every job that finishes is appended to STATEDIR/jobs.index.tail
# at once, and a start and `vaultfs status` read the index and the tail,
# never a finished job's own file (which stays in jobs/ within keepDays).
# kill -9 after the journal's final save and before the append, and after
# the append (the job's file still there): `status` says the same before
# the kill and after the next start, which lists each job once and
# archives nothing again. A cut-off append (a line without its newline) is
# not a record and goes with the next append; a failed append leaves the
# job to the next start, which adds it from its file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

V=$T/vault
mkdir -p "$V"
make_tree "$V/tree1" 2
write_config "$T/c.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\",
  \"stateDir\": \"$T/state\"
}"
S=$T/state
TAIL=$S/jobs.index.tail

archives() { find "$T/store" -name 'backup.tar.gz' | wc -l; }

# `status --json` reduced to what must not change: id, recovery point,
# state, result and attempts of every job, sorted; each job once.
status_of() {
	vf status --config "$T/c.json" --json >"$T/st.json" 2>"$T/st.err" ||
		die "status failed: $(cat "$T/st.err")"
	python3 - "$T/st.json" <<'EOF'
import json, sys
jobs = json.load(open(sys.argv[1]))
ids = [j["id"] for j in jobs]
assert len(ids) == len(set(ids)), "a job listed twice: %s" % ids
for j in sorted(jobs, key=lambda j: j["id"]):
    print(j["id"], j["recoveryPoint"], j["state"], j.get("result"), j["attempts"])
EOF
}

# The tail's records of job ID (python: each line must be a record).
tail_count() {
	[ -e "$TAIL" ] || { echo 0; return; }
	grep -c "^{\"id\":\"$1\"" "$TAIL" || true
}

# --- kill -9 at each side of the append ------------------------------------
for stage in finished indexed; do
	rm -rf "$S" "$T/store"
	# (no timeout wrapper: the kill must reach vaultfs itself)
	VAULTFS_TEST_PAUSE_AT=$stage:60 "$VAULTFS" run --config "$T/c.json" \
		>"$T/d.out" 2>"$T/d.err" &
	DPID=$!
	on_exit "kill -KILL $DPID 2>/dev/null; wait $DPID 2>/dev/null"
	wait_line "$T/d.err" "test: job .* paused at $stage" 60
	id=$(job_files "$S" | head -n 1 | xargs -n 1 basename | sed 's/\.json$//')
	[ -n "$id" ] || die "$stage: no job file"
	before=$(status_of)
	echo "$before" | grep -q " succeeded " || die "$stage: not succeeded: $before"
	case $stage in
	finished) [ "$(tail_count "$id")" = 0 ] || die "finished: in the tail before the append" ;;
	indexed) [ "$(tail_count "$id")" = 1 ] || die "indexed: not in the tail after the append" ;;
	esac
	kill -KILL "$DPID"
	wait "$DPID" 2>/dev/null || true
	[ "$(status_of)" = "$before" ] || die "$stage: status changed by the kill"
	vf_run --config "$T/c.json" --once -v
	expect_grep '^queued 0 recovery points' "$RUN_OUT"
	[ "$(archives)" = 1 ] || die "$stage: archived again after the kill"
	[ "$(tail_count "$id")" = 1 ] || die "$stage: not once in the tail: $(cat "$TAIL")"
	[ -e "$S/jobs/$id.json" ] || die "$stage: the job's file went (keepDays 90)"
	if [ "$stage" = finished ]; then
		expect_grep 'journal: 1 finished job added to .*jobs.index.tail' "$RUN_ERR"
	fi
	after=$(status_of)
	[ "$after" = "$before" ] || die "$stage: status before the kill: $before; after the restart: $after"
	log "kill -9 $stage: status the same, the job once in the tail"
done

# --- neither a start nor status reads a finished job's file: garbage in
# its place is not seen (not moved aside, not reported) ---------------------
cp "$S/jobs/$id.json" "$T/job.json"
echo 'not json' >"$S/jobs/$id.json"
[ "$(status_of)" = "$before" ] || die "status read a finished job's file"
grep -q corrupt "$T/st.err" && die "status read a finished job's file: $(cat "$T/st.err")"
vf_run --config "$T/c.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
[ -e "$S/jobs/$id.json" ] || die "the start read a finished job's file (moved aside)"
cp "$T/job.json" "$S/jobs/$id.json"

# --- a cut-off append is not a record; the next append cuts it off --------
printf '{"id":"20261203T000000.000Z-0000' >>"$TAIL"
[ "$(status_of)" = "$before" ] || die "status changed by a cut-off append"
make_tree "$V/tree2" 2
vf_run --config "$T/c.json" --once
expect_grep '^queued 1 recovery point' "$RUN_OUT"
[ "$(wc -l <"$TAIL")" = 2 ] || die "not 2 records in the tail: $(cat "$TAIL")"
[ "$(tail -c 1 "$TAIL" | od -An -c | tr -d ' ')" = '\n' ] || die "the tail does not end with a record"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    assert json.loads(line)["state"] == "succeeded", line
' "$TAIL" || die "the tail holds a line that is not a record: $(cat "$TAIL")"
[ "$(status_of | wc -l)" = 2 ] || die "not 2 jobs"

# --- a failed append: the job is in its file, the next start adds it -------
make_tree "$V/tree3" 2
VAULTFS_FAULT=index.append@1 vf_run --config "$T/c.json" --once
expect_grep 'not in the index yet' "$RUN_ERR"
[ "$(wc -l <"$TAIL")" = 2 ] || die "append fault: the tail changed"
[ "$(tail -c 1 "$TAIL" | od -An -c | tr -d ' ')" = '\n' ] || die "append fault: half a line left in the tail"
before=$(status_of)
[ "$(echo "$before" | grep -c ' succeeded ')" = 3 ] || die "append fault: not 3 jobs: $before"
vf_run --config "$T/c.json" --once -v
expect_grep 'journal: 1 finished job added to' "$RUN_ERR"
expect_grep '^queued 0 recovery points' "$RUN_OUT"
[ "$(wc -l <"$TAIL")" = 3 ] || die "append fault: not added by the next start"
[ "$(status_of)" = "$before" ] || die "append fault: status changed"
[ "$(archives)" = 3 ] || die "not 3 archives"
log "cut-off and failed appends: nothing lost, nothing twice"
