#!/bin/bash
# orch_daemon: `vaultfs run` without --once watches its vaults: a recovery
# point renamed in from NAME.partial, or created in place, is archived once
# it is complete; a file some process still holds open for writing is not
# taken until it is closed; `status` shows a running job while the daemon
# holds the lock; SIGTERM interrupts a running job (journaled, resumed by
# the next daemon); with autoStart false nothing is archived by itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_loop
need_fs ext4

V=$T/vault
mkdir -p "$V" "$T/src"
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"d\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"concurrency\": { \"jobs\": 2 }, \"rescanSeconds\": 1
}"

# wait_state NAME STATE [SECS]: the newest job for vault entry NAME is STATE
wait_state() {
	local name=$1 want=$2 secs=${3:-60} i got=
	for ((i = 0; i < secs * 10; i++)); do
		got=$(jstate "$T/state" 'j["id"]' 'j["recoveryPoint"]["path"].rsplit("/",1)[1]' 'j["state"]' |
			awk -F'\t' -v n="$name" '$2 == n {s = $3} END {print s}')
		[ "$got" = "$want" ] && return 0
		sleep 0.1
	done
	sed 's/^/    err| /' "$T/daemon.err" | tail -n 30 >&2
	die "$name: not $want after $secs s (state: ${got:-no job})"
}

start_daemon "$T/cfg.json" VAULTFS_LOG=info

# a recovery point renamed into place
make_tree "$T/src/a" 2
make_ext4 "$V/a.img.partial" "$T/src/a" 4M
sleep 0.5
[ "$(job_files "$T/state" | wc -l)" = 0 ] || die "a .partial file was taken"
mv "$V/a.img.partial" "$V/a.img"
wait_state a.img succeeded 30
log "a renamed-in image was archived"

# a tree made in place
make_tree "$V/t1" 3
wait_state t1 succeeded 30
extract_compare "$(find "$T/store/local/d/t1" -name backup.tar.gz)" "$V/t1"
log "a tree made in place was archived"

# a file held open for writing is not taken until closed
exec 7>"$V/held.img"
head -c 100000 /dev/urandom >&7
sleep 4 # twice the quiet period, with a writer
[ -z "$(jstate "$T/state" 'j["recoveryPoint"]["path"]' | grep held.img)" ] ||
	die "a file open for writing was taken"
head -c 100000 /dev/urandom >&7
exec 7>&-
wait_state held.img succeeded 30
[ "$(stat -c %s "$V/held.img")" = 200000 ] || die "held.img changed size"
log "a file open for writing waited until it was closed"

# status while the daemon holds the lock, with a job in progress
stop_daemon TERM
start_daemon "$T/cfg.json" VAULTFS_TEST_PAUSE_AT=writing:60
make_tree "$T/src/b" 2
make_ext4 "$V/b.img" "$T/src/b" 4M
wait_line "$T/daemon.err" 'paused at writing' 30
vf status --config "$T/cfg.json" >"$T/status.txt"
expect_grep '^d/b.img +archiving ' "$T/status.txt"
[ -n "$(leaks)" ] || die "the paused job holds no loop device or mount"
# SIGTERM: the running job is interrupted, released, journaled
stop_daemon TERM
assert_released
[ "$(jstate "$T/state" 'j["recoveryPoint"]["path"]' 'j["state"]' | grep b.img | cut -f2)" = queued ] ||
	die "b.img: not journaled as queued after SIGTERM"
expect_grep 'interrupted' "$T/state/jobs/$(jstate "$T/state" 'j["id"]' 'j["recoveryPoint"]["path"]' | grep b.img | cut -f1).log"
# the next daemon resumes it
start_daemon "$T/cfg.json"
wait_state b.img succeeded 30
stop_daemon TERM
[ "$(count_state "$T/state" succeeded)" = 4 ] || die "not 4 jobs succeeded"
[ "$(job_files "$T/state" | wc -l)" = 4 ] || die "a recovery point was queued twice"
log "status during a job; SIGTERM interrupts it; the next daemon finishes it"

# autoStart false: recovery points wait
write_config "$T/manual.json" "{
  \"vaults\": [ { \"name\": \"d\", \"path\": \"$V\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"autoStart\": false, \"rescanSeconds\": 1
}"
start_daemon "$T/manual.json"
expect_grep 'autoStart is false' "$T/daemon.err"
make_tree "$V/t2" 1
sleep 4
[ -z "$(jstate "$T/state" 'j["recoveryPoint"]["path"]' | grep t2)" ] || die "autoStart false: t2 was taken"
stop_daemon TERM
log "autoStart false: nothing archived by itself"
assert_released
