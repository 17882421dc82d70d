#!/bin/bash
# view_waits: writers that wait for view memory hold no thread. With
# view.memoryLimit 16 MiB and 5 MiB parts one writer (two part buffers,
# 10 MiB) fits at a time: 64 concurrent dd writers into archive/ (each in
# a directory of its own: the kernel serialises the creates of one
# directory) all complete, none gets ENOBUFS, and every object in Ceph is what its writer
# wrote; the daemon's threads stay bounded while they wait. A writer
# killed while it waits (kill -9 during its open) leaves the queue: the
# kernel's FUSE_INTERRUPT is answered EINTR, the writer dies at once and
# no object appears. An unmount with a writer waiting answers it.
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
  \"partSize\": \"5MiB\",
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
wait_for 30 waiting_is $N
parked_threads=$(threads)
log "$N writers wait for memory; the daemon has $parked_threads threads"
# 32 workers, the loop's, the view's and the engine's: far fewer than 64
# waiters plus those
[ "$parked_threads" -lt $N ] || die "$parked_threads threads for $N waiting writers"
release hold.bin
fail=0
for i in $(seq 1 $N); do
	wait "${W[$((i - 1))]}" || { fail=$((fail + 1)); log "writer $i: $(cat "$T/dd$i.err")"; }
done
[ "$fail" = 0 ] || die "$fail of $N writers failed"
grep -l 'No buffer space' "$T"/dd*.err && die "a writer got ENOBUFS"
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

# --- a writer killed while it waits leaves the queue ------------------------
hold hold2.bin
dd if="$T/src/w1" of="$A/killed.bin" bs=64k status=none 2>/dev/null &
K=$!
wait_for 30 waiting_is 1
kill -KILL "$K"
t0=$(date +%s%N)
wait "$K" 2>/dev/null || true
log "the killed writer was gone after $((($(date +%s%N) - t0) / 1000000)) ms"
wait_for 10 waiting_is 0
# it must not have waited for the memory: that is still held
[ "$(metric vaultfs_view_memory_bytes)" -gt 0 ] || die "bad test: the memory was free"
release hold2.bin
wait_for 30 mem_free
[ ! -e "$A/killed.bin" ] || die "killed.bin appeared"
aws_ s3api head-object --bucket "$B" --key backups/killed.bin >/dev/null 2>&1 &&
	die "s3://$B/backups/killed.bin exists"
aws_ s3api head-object --bucket "$B" --key backups/hold2.bin >/dev/null 2>&1 ||
	die "hold2.bin did not appear"
log "a killed waiting writer left the queue"

# --- an unmount with a writer waiting answers it -----------------------------
hold hold3.bin
dd if="$T/src/w1" of="$A/late.bin" bs=64k status=none 2>"$T/late.err" &
L=$!
wait_for 30 waiting_is 1
stop_view
wait "$L" && die "the waiting writer completed, with its memory held"
log "the waiting writer was answered at the stop: $(cat "$T/late.err")"
touch "$T/release.hold3.bin"
wait "$HOLDER" || true # its close meets no mount
log "$N writers waited without threads; kill -9 and unmount answer a waiter"
