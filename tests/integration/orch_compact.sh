#!/bin/bash
# orch_compact: finished jobs older than journal.keepDays fold into
# STATEDIR/jobs.index at start: their JOBID.json and JOBID.log go, `vaultfs
# status` (table and --json) still lists them from the index, and a re-scan
# does not archive their recovery points again. A compaction cut off at
# each step (a failed write or rename, a file that cannot be removed, a
# kill -9 once the new index is in place) loses no job and lists none
# twice; the next start finishes it. A torn index is refused, by name, by
# `run` and by `status`, and left as it is.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

V=$T/vault
mkdir -p "$V"
for i in 1 2 3 4; do
	make_tree "$V/tree$i" 2
done
write_config "$T/c.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\",
  \"stateDir\": \"$T/state\",
  \"journal\": { \"keepDays\": 30 }
}"
S=$T/state

archives() { find "$T/store" -name 'backup.tar.gz' | wc -l; }

# Jobs of these recovery points finished DAYS ago (their times, in the
# journal's files and in the records of the index and its tail; every
# other line stays byte for byte).
age_jobs() {
	local days=$1
	shift
	python3 - "$S" "$days" "$@" <<'EOF'
import datetime, glob, json, os, sys
d, days, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def age(j):
    if os.path.basename(j["recoveryPoint"]["path"]) not in names:
        return False
    for k, v in j["times"].items():
        t = datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")
        j["times"][k] = (t - datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return True
for f in glob.glob(d + "/jobs/*.json"):
    j = json.load(open(f))
    if age(j):
        open(f, "w").write(json.dumps(j, indent=1))
for f in (d + "/jobs.index", d + "/jobs.index.tail"):
    if not os.path.exists(f):
        continue
    out = []
    for line in open(f):
        j = json.loads(line)
        if "id" in j and age(j):
            line = json.dumps(j, separators=(",", ":")) + "\n"
        out.append(line)
    open(f, "w").write("".join(out))
EOF
}

# The ids of the jobs of these recovery points, from `status --json`.
status_ids() {
	vf status --config "$T/c.json" --json >"$T/st.json" || die "status --json failed"
	python3 - "$T/st.json" "$@" <<'EOF'
import json, sys
jobs = json.load(open(sys.argv[1]))
ids = [j["id"] for j in jobs]
assert len(ids) == len(set(ids)), "a job listed twice: %s" % ids
for j in jobs:
    if j["recoveryPoint"] in sys.argv[2:]:
        print(j["id"])
EOF
}

# Every job listed once, all succeeded, with their archives.
check_status() {
	local n=$1
	vf status --config "$T/c.json" >"$T/st.txt" || die "status failed"
	expect_grep "^$n jobs: $n succeeded\$" "$T/st.txt"
	status_ids >/dev/null
	python3 - "$T/st.json" "$n" <<'EOF' || die "status --json: $(cat "$T/st.json")"
import json, sys
jobs = json.load(open(sys.argv[1]))
assert len(jobs) == int(sys.argv[2]), len(jobs)
for j in jobs:
    assert j["state"] == "succeeded" and j["verified"], j
    assert j["result"].endswith("/backup.tar.gz"), j
    assert "succeeded" in j["times"], j
EOF
}

# --- a first run archives all four; a second, with two aged past
# keepDays, folds them and archives nothing --------------------------------
vf_run --config "$T/c.json" --once
expect_grep '^queued 4 recovery points' "$RUN_OUT"
[ "$(archives)" = 4 ] || die "not 4 archives"
cp -a "$S" "$T/state0" # four finished jobs, none folded yet
age_jobs 31 tree1 tree2
old_ids=$(status_ids tree1 tree2)
[ "$(echo "$old_ids" | wc -l)" = 2 ] || die "no two old jobs: $old_ids"
[ ! -e "$S/jobs.index" ] || die "an index file before any job was old"
# every finished job is in the tail at once, its file still in jobs/
[ "$(wc -l <"$S/jobs.index.tail")" = 4 ] || die "not 4 records in the tail"

vf_run --config "$T/c.json" --once -v
expect_grep '^queued 0 recovery points' "$RUN_OUT"
expect_grep 'journal: 2 finished jobs folded into .*/jobs.index' "$RUN_ERR"
expect_grep 'journal: 4 jobs, 4 succeeded' "$RUN_OUT"
[ "$(archives)" = 4 ] || die "a folded job's recovery point was archived again"
for id in $old_ids; do
	[ ! -e "$S/jobs/$id.json" ] || die "$id.json is still in the journal"
	[ ! -e "$S/jobs/$id.log" ] || die "$id.log is still in the journal"
	grep -q "\"id\":\"$id\"" "$S/jobs.index" || die "$id is not in the index"
done
[ "$(job_files "$S" | wc -l)" = 2 ] || die "not 2 job files left: $(job_files "$S")"
head -n 1 "$S/jobs.index" | grep -qx '{"vaultfsIndex":1}' || die "no index header"
# the whole tail went into the index file, and the tail is gone
tail -n 1 "$S/jobs.index" | grep -qx '{"end":4}' || die "no end line counting 4"
[ ! -e "$S/jobs.index.tail" ] || die "the tail stayed after the fold"
check_status 4
log "folded: $(tr '\n' ' ' <"$T/st.txt" | head -c 300)"

# the folded ones answer an export, and a third run still queues nothing
vf_run --config "$T/c.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"

# the last two fold too, behind the first two (which stay byte for byte)
head -n 3 "$S/jobs.index" >"$T/first"
age_jobs 40 tree3 tree4
vf_run --config "$T/c.json" --once -v
expect_grep '^queued 0 recovery points' "$RUN_OUT"
expect_grep 'journal: 2 finished jobs folded' "$RUN_ERR"
[ "$(job_files "$S" | wc -l)" = 0 ] || die "job files left: $(job_files "$S")"
cmp -s "$T/first" <(head -n 3 "$S/jobs.index") || die "the old records changed"
check_status 4
[ "$(archives)" = 4 ] || die "archived again"

# --- a torn index is refused, by name, and left alone ----------------------
cp "$S/jobs.index" "$T/index.whole"
head -n 3 "$T/index.whole" >"$S/jobs.index"
vf_run_fails --config "$T/c.json" --once
expect_grep "$S/jobs.index: line 3: torn: no end line" "$RUN_ERR"
expect_fail vf status --config "$T/c.json"
expect_grep "$S/jobs.index: line 3: torn: no end line" "$FAIL_OUT"
cmp -s "$S/jobs.index" <(head -n 3 "$T/index.whole") || die "the torn index was changed"
[ "$(archives)" = 4 ] || die "archived again with a torn index"
cp "$T/index.whole" "$S/jobs.index"
check_status 4

# --- cut off at each step: no job lost, none listed twice -----------------
# from four finished jobs, all old, none folded
fresh() {
	rm -rf "$S"
	cp -a "$T/state0" "$S"
	age_jobs 31 tree1 tree2 tree3 tree4
}

for fault in index.write@1 index.write@3 index.fsync@1 index.rename@1; do
	fresh
	VAULTFS_FAULT=$fault vf_run --config "$T/c.json" --once
	expect_grep 'finished jobs stay in .*/jobs, not folded' "$RUN_ERR"
	expect_grep '^queued 0 recovery points' "$RUN_OUT"
	[ "$(job_files "$S" | wc -l)" = 4 ] || die "$fault: a job file went"
	[ ! -e "$S/jobs.index" ] || die "$fault: an index appeared"
	[ ! -e "$S/jobs.index.tmp" ] || die "$fault: the new index was left"
	check_status 4
	vf_run --config "$T/c.json" --once
	[ "$(job_files "$S" | wc -l)" = 0 ] || die "$fault: not folded by the next start"
	check_status 4
	log "$fault: nothing lost, folded by the next start"
done

# the index is in place, the second job file cannot be removed
fresh
VAULTFS_FAULT=journal.forget@2 vf_run --config "$T/c.json" --once
expect_grep 'is in the index; its file stays' "$RUN_ERR"
[ "$(job_files "$S" | wc -l)" = 1 ] || die "forget: not one job file left"
check_status 4
vf_run --config "$T/c.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
[ "$(job_files "$S" | wc -l)" = 0 ] || die "forget: the stale file stayed"
check_status 4

# kill -9 once the new index is in place, before any file goes
fresh
# (no timeout wrapper: the kill must reach vaultfs itself)
VAULTFS_TEST_PAUSE_AT=folding:60 "$VAULTFS" run --config "$T/c.json" \
	>"$T/d.out" 2>"$T/d.err" &
DPID=$!
on_exit "kill -KILL $DPID 2>/dev/null; wait $DPID 2>/dev/null"
wait_line "$T/d.err" 'test: paused at folding' 30
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
[ -e "$S/jobs.index" ] || die "kill: no index"
[ "$(job_files "$S" | wc -l)" = 4 ] || die "kill: job files went before the pause"
check_status 4
vf_run --config "$T/c.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
[ "$(job_files "$S" | wc -l)" = 0 ] || die "kill: the next start left job files"
tail -n 1 "$S/jobs.index" | grep -qx '{"end":4}' || die "kill: not 4 records"
check_status 4
[ "$(archives)" = 4 ] || die "archived again after a crash"
log "kill -9 while folding: nothing lost, nothing twice"

# --- a daemon folds while it runs: a job that finished and left memory
# (VAULTFS_TEST_RECENT_FINISHED=0) folds at the next tick of the fold
# (VAULTFS_TEST_FOLD_SECONDS=1) without a restart -------------------------
write_config "$T/d.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\",
  \"stateDir\": \"$S\",
  \"journal\": { \"keepDays\": 0 }
}"
start_daemon "$T/d.json" VAULTFS_TEST_RECENT_FINISHED=0 VAULTFS_TEST_FOLD_SECONDS=1 VAULTFS_LOG=info
make_tree "$V/tree5" 2
wait_line "$T/daemon.out" '^succeeded +v/tree5' 60
wait_line "$T/daemon.err" 'journal: 1 finished job folded' 30
[ "$(job_files "$S" | wc -l)" = 0 ] || die "daemon: the new job's file stayed: $(job_files "$S")"
tail -n 1 "$S/jobs.index" | grep -qx '{"end":5}' || die "daemon: not 5 records"
check_status 5
stop_daemon
[ "$(archives)" = 5 ] || die "daemon: not 5 archives"
vf_run --config "$T/c.json" --once
expect_grep '^queued 0 recovery points' "$RUN_OUT"
log "a running daemon folds a finished job without a restart"
