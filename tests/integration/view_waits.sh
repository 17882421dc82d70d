#!/bin/bash
# view_waits: writers and readers that wait for view memory hold no
# thread. With view.memoryLimit 16 MiB and 8 MiB parts one writer (two
# part buffers, the whole limit) fits at a time: 64 concurrent dd writers
# into archive/ (each in a directory of its own: the kernel serialises the
# creates of one directory) all complete, none gets ENOBUFS, and every
# object in Ceph is what its writer wrote; the daemon's threads stay
# bounded while they wait. 64 concurrent readers of distinct objects (put
# there with awscli) wait while a writer holds the memory, then all read
# the right bytes, none gets ENOBUFS, on bounded threads. A writer or a
# reader killed while it waits (kill -9 during its open or its read)
# leaves the queue: the kernel's FUSE_INTERRUPT is answered EINTR, the
# process dies at once (no object appears). An unmount with a writer and a
# reader waiting answers them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
test_timeout 200

V=$T/vault
M=$T/mnt
mkdir -p "$V" "$M"
make_bucket B
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/backups\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoStart\": false,
  \"partSize\": \"8MiB\",
  \"view\": { \"memoryLimit\": \"16MiB\" }
}"
mount_view "$M" "$T/cfg.json"
A=$M/archive/$B/backups
metric() { sed -n "s/^$1 \\([0-9]*\\)\$/\\1/p" "$M/metrics"; }
waiting_is() { [ "$(metric vaultfs_view_memory_waiting)" = "$1" ]; }
threads() { ls "/proc/$MPID/task" | wc -l; }
# hold NAME: a writer of archive/.../NAME that holds its memory (one write,
# no close: any close, even of a copy of the descriptor, flushes the
# object out) until release NAME
hold() {
	rm -f "$T/release.$1"
	python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"held\n")
open(sys.argv[2] + ".open", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
os.close(fd)
' "$A/$1" "$T/release.$1" &
	HOLDER=$!
	wait_for 30 test -e "$T/release.$1.open"
}
release() {
	touch "$T/release.$1"
	wait "$HOLDER" || die "the holder of $1 failed"
}
# park_then_finish HOLD WHAT ERR PID...: the PIDs (WHATs, stderr in
# ERR$i.err) all wait for the memory HOLD holds, on fewer threads than
# they are; once it is released, all succeed and none got ENOBUFS
park_then_finish() {
	local hold=$1 what=$2 err=$3 i=0 fail=0 p n
	shift 3
	wait_for 30 waiting_is $#
	n=$(threads)
	log "$# ${what}s wait for memory; the daemon has $n threads"
	# 32 workers, the loop's, the view's and the engine's: far fewer
	# than 64 waiters plus those
	[ "$n" -lt $# ] || die "$n threads for $# waiting ${what}s"
	release "$hold"
	for p in "$@"; do
		i=$((i + 1))
		wait "$p" || { fail=$((fail + 1)); log "$what $i: $(cat "$err$i.err")"; }
	done
	[ "$fail" = 0 ] || die "$fail of $# ${what}s failed"
	grep -l 'No buffer space' "$err"*.err && die "a $what got ENOBUFS"
	return 0
}

# --- 64 writers, room for one at a time -------------------------------------
N=64
mkdir -p "$T/src"
for i in $(seq 1 $N); do
	head -c $((256 * 1024 + i * 4096)) /dev/urandom >"$T/src/w$i"
done
# every writer waits at its open until one holds the memory and stays open
hold hold.bin
W=()
for i in $(seq 1 $N); do
	mkdir "$A/d$i" || die "mkdir d$i"
done
for i in $(seq 1 $N); do
	dd if="$T/src/w$i" of="$A/d$i/w$i.bin" bs=64k status=none 2>"$T/dd$i.err" &
	W+=($!)
done
park_then_finish hold.bin writer "$T/dd" "${W[@]}"
mem_free() { [ "$(metric vaultfs_view_memory_bytes)" = 0 ]; }
wait_for 30 mem_free
waits=$(metric vaultfs_view_memory_waits_total)
peak=$(metric vaultfs_view_memory_peak_bytes)
log "all $N written: $waits waits, peak $peak bytes"
[ "$waits" -ge $N ] || die "bad test: only $waits waits"
[ "$peak" -le $((16 << 20)) ] || die "the view held $peak bytes, over view.memoryLimit"
mkdir -p "$T/dl"
aws_ s3 cp --only-show-errors --recursive "s3://$B/backups/" "$T/dl/" || die "download"
for i in $(seq 1 $N); do
	cmp -s "$T/src/w$i" "$T/dl/d$i/w$i.bin" || die "s3://$B/backups/d$i/w$i.bin is not what writer $i wrote"
done
[ "$(cat "$T/dl/hold.bin")" = held ] || die "hold.bin is not right"
no_multipart_uploads "$B"

# --- 64 readers, no room until a writer closes ------------------------------
mkdir -p "$T/rsrc" "$T/rout"
for i in $(seq 1 $N); do
	head -c $((256 * 1024 + i * 4096 + 17)) /dev/urandom >"$T/rsrc/r$i"
done
aws_ s3 cp --only-show-errors --recursive "$T/rsrc/" "s3://$B/backups/r/" || die "upload"
(cd "$T/rsrc" && sha256sum r*) >"$T/r.sha256"
hold hold.r.bin
R=()
for i in $(seq 1 $N); do
	cat "$A/r/r$i" >"$T/rout/r$i" 2>"$T/cat$i.err" &
	R+=($!)
done
park_then_finish hold.r.bin reader "$T/cat" "${R[@]}"
(cd "$T/rout" && sha256sum --quiet -c "$T/r.sha256") || die "a reader got other bytes than were put"
wait_for 30 mem_free
peak=$(metric vaultfs_view_memory_peak_bytes)
log "all $N read right: $(metric vaultfs_view_memory_waits_total) waits in all, peak $peak bytes"
[ "$peak" -le $((16 << 20)) ] || die "the view held $peak bytes, over view.memoryLimit"

# --- a writer or a reader killed while it waits leaves the queue -----------
# kill_waiter NAME CMD...: CMD waits for the memory hold.NAME holds, is
# killed, and must be gone at once, with the memory still held
kill_waiter() {
	local name=$1 k t0
	shift
	hold "hold.$name"
	"$@" 2>/dev/null &
	k=$!
	wait_for 30 waiting_is 1
	kill -KILL "$k"
	t0=$(date +%s%N)
	wait "$k" 2>/dev/null || true
	log "the killed $name was gone after $((($(date +%s%N) - t0) / 1000000)) ms"
	wait_for 10 waiting_is 0
	# it must not have waited for the memory: that is still held
	[ "$(metric vaultfs_view_memory_bytes)" -gt 0 ] || die "bad test: the memory was free"
	release "hold.$name"
	wait_for 30 mem_free
}
kill_waiter writer dd if="$T/src/w1" of="$A/killed.bin" bs=64k status=none
[ ! -e "$A/killed.bin" ] || die "killed.bin appeared"
aws_ s3api head-object --bucket "$B" --key backups/killed.bin >/dev/null 2>&1 &&
	die "s3://$B/backups/killed.bin exists"
aws_ s3api head-object --bucket "$B" --key backups/hold.writer >/dev/null 2>&1 ||
	die "hold.writer did not appear"
kill_waiter reader cat "$A/r/r1"
log "a killed waiting writer and reader left the queue"

# --- an unmount with a writer and a reader waiting answers them -------------
hold hold.stop
dd if="$T/src/w1" of="$A/late.bin" bs=64k status=none 2>"$T/late.err" &
L=$!
cat "$A/r/r2" >/dev/null 2>"$T/late_r.err" &
LR=$!
wait_for 30 waiting_is 2
stop_view
wait "$L" && die "the waiting writer completed, with its memory held"
wait "$LR" && die "the waiting reader completed, with the memory held"
log "the waiting writer and reader were answered at the stop: $(cat "$T/late.err") / $(cat "$T/late_r.err")"
touch "$T/release.hold.stop"
wait "$HOLDER" || true # its close meets no mount
log "$N writers and $N readers waited without threads; kill -9 and unmount answer a waiter"
