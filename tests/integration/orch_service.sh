#!/bin/bash
# orch_service: `vaultfs run` as a systemd service sees it.
#   - sd_notify through a datagram socket this test listens on:
#     READY=1 once watching, STATUS= with the job counts, WATCHDOG=1 at
#     half of WATCHDOG_USEC, RELOADING=1 and READY=1 around a reload,
#     STOPPING=1 at SIGTERM;
#   - --log FILE: every line stamped (ISO-8601, UTC offset, milliseconds),
#     a job's end names its job id; SIGHUP reopens the file (logrotate);
#   - SIGHUP reads the config again: a new vault is watched, a broken file
#     is logged and the running configuration stays;
#   - metricsFile: replaced whole, jobs by state and the last success of
#     each vault;
#   - --log-format json: one object per line, with job and vault.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

V1=$T/v1
V2=$T/v2
mkdir -p "$V1" "$V2" "$T/metrics" "$T/logs"
cfg() { # cfg VAULTS-JSON
	write_config "$T/cfg.json" "{
  \"vaults\": $1,
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"rescanSeconds\": 1, \"metricsFile\": \"$T/metrics/vaultfs.prom\"
}"
}
cfg "[ { \"name\": \"v1\", \"path\": \"$V1\" } ]"

notify_listen "$T/notify.sock" "$T/notify.log"

LOGF=$T/logs/vaultfs.log
# no timeout(1) in between: it answers a second signal with SIGKILL
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 \
	"$VAULTFS" run --config "$T/cfg.json" --log "$LOGF" \
	>"$T/daemon.out" 2>"$T/daemon.err" &
DPID=$!
on_exit "kill -KILL $DPID 2>/dev/null; wait $DPID"
wait_line "$T/notify.log" '^READY=1$' 30
wait_line "$LOGF" 'run: watching 1 vault' 10
[ ! -s "$T/daemon.err" ] || die "with --log, stderr got: $(head -3 "$T/daemon.err")"
log "READY=1 arrived, the log went to --log"

# a job: its counts in STATUS=, its end in the log with its id
make_tree "$V1/t1" 2
wait_line "$T/notify.log" '^STATUS=1 vault; jobs: 0 running, 1 succeeded$' 30
id1=$(jstate "$T/state" 'j["id"]')
wait_line "$LOGF" "notice \[$id1\] succeeded v1/t1 -> " 10
log "STATUS= counted the job, the log named job $id1"

# the watchdog: every 200 ms (half of 400 ms)
n0=$(grep -c '^WATCHDOG=1$' "$T/notify.log" || true)
sleep 1.5
n1=$(grep -c '^WATCHDOG=1$' "$T/notify.log" || true)
[ $((n1 - n0)) -ge 4 ] || die "WATCHDOG=1: $((n1 - n0)) in 1.5 s, expected about 7"
log "WATCHDOG=1: $((n1 - n0)) in 1.5 s"

# every line of the log file is stamped
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\+00:00 (error|warning|notice|info|debug) ' "$LOGF" || true)
[ "$bad" = 0 ] || die "$bad log lines without an ISO-8601 stamp: $(head -3 "$LOGF")"

# metricsFile: written after the job ended, whole
M=$T/metrics/vaultfs.prom
wait_line "$M" '^vaultfs_jobs\{state="succeeded"\} 1$' 10
expect_grep '^# TYPE vaultfs_last_success_timestamp_seconds gauge$' "$M"
ts=$(sed -n 's/^vaultfs_last_success_timestamp_seconds{vault="v1"} \([0-9]*\)$/\1/p' "$M")
[ -n "$ts" ] || die "no vaultfs_last_success_timestamp_seconds for v1: $(cat "$M")"
[ $(($(date +%s) - ts)) -lt 60 ] || die "v1's last success is $ts, not just now"
[ "$(ls "$T/metrics")" = vaultfs.prom ] || die "the metrics dir holds more: $(ls "$T/metrics")"
log "metricsFile: jobs by state and v1's last success ($ts)"

# SIGHUP after logrotate moved the file: a new file, the daemon runs on
mv "$LOGF" "$LOGF.1"
kill -HUP "$DPID"
wait_line "$LOGF" 'SIGHUP: log reopened; .* is unchanged' 10
kill -0 "$DPID" || die "the daemon died of SIGHUP"
log "SIGHUP reopened the log"

# SIGHUP with a new vault: watched at once
cfg "[ { \"name\": \"v1\", \"path\": \"$V1\" }, { \"name\": \"v2\", \"path\": \"$V2\" } ]"
kill -HUP "$DPID"
wait_line "$LOGF" 'changed: restarting the engine' 10
wait_line "$LOGF" 'run: watching 2 vaults' 10
wait_line "$T/notify.log" '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$' 5
[ "$(grep -c '^READY=1$' "$T/notify.log")" = 2 ] || die "no READY=1 after the reload"
make_tree "$V2/t2" 2
wait_line "$M" '^vaultfs_last_success_timestamp_seconds\{vault="v2"\} [0-9]+$' 30
log "SIGHUP took a new vault in"

# SIGHUP with a broken file: logged, the running configuration stays
printf '{ "vaults": [ { "name": "v1", "path": "%s" } ], "bogus": 1 }\n' "$V1" >"$T/cfg.json"
kill -HUP "$DPID"
wait_line "$LOGF" 'error run: SIGHUP: config: unknown key "bogus".*; the running configuration stays' 10
make_tree "$V2/t3" 1
wait_line "$T/notify.log" '^STATUS=2 vaults; jobs: 0 running, 3 succeeded$' 30
kill -0 "$DPID" || die "the daemon died of a broken config"
log "a broken config was refused, the old one kept watching v2"

kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
[ "$rc" = 0 ] || die "the daemon exited $rc on SIGTERM"
expect_grep '^STOPPING=1$' "$T/notify.log"
! grep -qE 'Sanitizer|runtime error:' "$LOGF" "$T/daemon.err" || die "sanitizer report"

# --log-format json: one object a line, a job's lines name it
cfg "[ { \"name\": \"v1\", \"path\": \"$V1\" } ]"
make_tree "$V1/t4" 1
vf run --config "$T/cfg.json" --once --log-format json -v >"$RUN_OUT" 2>"$RUN_ERR" ||
	die "run --once --log-format json failed: $(tail -3 "$RUN_ERR")"
python3 - "$RUN_ERR" <<'EOF' || die "--log-format json: $(head -3 "$RUN_ERR")"
import json, re, sys
jobs = 0
for n, line in enumerate(open(sys.argv[1]), 1):
    o = json.loads(line)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", o["time"]), (n, o)
    assert o["level"] in ("error", "warning", "notice", "info", "debug"), (n, o)
    assert isinstance(o["msg"], str) and o["msg"], (n, o)
    if "job" in o:
        assert o["vault"] == "v1", (n, o)
        jobs += 1
assert jobs, "no line names its job"
EOF
log "--log-format json: every line an object, job lines with job and vault"
