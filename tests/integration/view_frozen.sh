#!/bin/bash
# view_frozen: a dead endpoint never freezes the mount, and the view's
# memory is bounded as a whole.
#  1. The S3 endpoint is the fault proxy holding every GET (read, never
#     answered). 64 readers of archive objects hang on it; meanwhile
#     `cat MOUNT/status`, `ls MOUNT/vaults` (and `ls MOUNT/archive/BUCKET`,
#     the way down to the prefix) answer within 100 ms (the issue's
#     figure: the median of 15 probes of each; the slowest is logged, and
#     must be under 1 s).
#  2. view.memoryLimit 32 MiB: 6 writers of 24 MiB at once, then 6
#     readers at once; the view's own count of read-ahead and part buffer
#     bytes never passes the limit (its peak, from /metrics), some had to
#     wait for memory, everything reads back identical, and the daemon's
#     peak RSS grows by less than the limit plus 64 MiB (the requests'
#     own buffers, libfuse's; not checked in sanitizer builds).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
test_timeout 400

V=$T/vault
M=$T/mnt
mkdir -p "$V"
mkdir -p "$V/snap-1"
make_bucket B

# --- 1. frozen endpoint -----------------------------------------------------------
NR=64
head -c 2M /dev/urandom >"$T/obj"
for i in $(seq 1 $NR); do
	s3_req PUT "$B/backups/r$i" -T "$T/obj" >/dev/null || die "seed r$i"
done
start_faultproxy --hold GET
write_config "$T/frozen.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/backups\",
  \"endpoint\": \"$FP_URL\",
  \"stateDir\": \"$T/state\",
  \"autoStart\": false
}"
mount_view "$M" "$T/frozen.json"
A=$M/archive/$B
READERS=()
for i in $(seq 1 $NR); do
	cat "$A/backups/r$i" >/dev/null 2>&1 &
	READERS+=($!)
done
on_exit "kill ${READERS[*]} 2>/dev/null"
# every worker that may wait on the network is stuck in a GET (the others
# queue behind them); give the rest a moment to pile up too
wait_for 60 python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])).get("held", 0) < 32)' "$FP_STATS"
sleep 1
log "$(fp_stat held) GETs held, $NR readers hanging"
python3 - "$M" >"$T/probes.out" <<'PY' || { cat "$T/probes.out" >&2; die "the mount froze"; }
import os, statistics, sys, time
m = sys.argv[1]
def status():
    with open(os.path.join(m, "status")) as f:
        return f.read()
def vaults():
    return os.listdir(os.path.join(m, "vaults"))
def archive():
    # the way down to the configured prefix needs no request
    b = os.listdir(os.path.join(m, "archive"))[0]
    return os.listdir(os.path.join(m, "archive", b))
bad = 0
for name, fn in (("cat status", status), ("ls vaults", vaults),
                 ("ls archive/BUCKET", archive)):
    ms = []
    for _ in range(15):
        t0 = time.monotonic()
        out = fn()
        ms.append((time.monotonic() - t0) * 1000)
        assert out, name + ": empty"
        time.sleep(0.02)
    med, worst = statistics.median(ms), max(ms)
    print("%s: median %.1f ms, max %.1f ms" % (name, med, worst))
    if med > 100 or worst > 1000:
        bad += 1
sys.exit(bad)
PY
sed 's/^/  /' "$T/probes.out" >&2
log "status and vaults answer while $NR readers hang on a dead endpoint"
for p in "${READERS[@]}"; do kill -0 "$p" 2>/dev/null || die "a reader ended: the GETs were not held"; done
# release the GETs: the readers end, the mount goes normally
kill -USR1 "$FP_PID"
for p in "${READERS[@]}"; do wait "$p" || die "a reader failed after the release"; done
unmount_view

# --- 2. one memory budget ---------------------------------------------------------
write_config "$T/mem.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/backups\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoStart\": false,
  \"view\": { \"memoryLimit\": \"32MiB\" }
}"
mount_view "$M" "$T/mem.json"
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$MPID/status"; }
base=$(hwm)
head -c 24M /dev/urandom >"$T/big"
W=()
for i in 1 2 3 4 5 6; do
	dd if="$T/big" of="$A/backups/w$i" bs=1M status=none &
	W+=($!)
done
for p in "${W[@]}"; do wait "$p" || die "a writer failed"; done
R=()
for i in 1 2 3 4 5 6; do
	cmp -s "$T/big" "$A/backups/w$i" &
	R+=($!)
done
for p in "${R[@]}"; do wait "$p" || die "a file read back through the mount differs"; done
# the kernel sends the last releases of the files after close returns:
# once they are done, nothing is held
mem_free() { grep -q '^vaultfs_view_memory_bytes 0$' "$M/metrics"; }
wait_for 60 mem_free
cat "$M/metrics" >"$T/metrics"
peak=$(sed -n 's/^vaultfs_view_memory_peak_bytes \([0-9]*\)$/\1/p' "$T/metrics")
waits=$(sed -n 's/^vaultfs_view_memory_waits_total \([0-9]*\)$/\1/p' "$T/metrics")
used=$(sed -n 's/^vaultfs_view_memory_bytes \([0-9]*\)$/\1/p' "$T/metrics")
[ -n "$peak" ] && [ -n "$waits" ] || die "no memory metrics"
log "memory: peak $peak bytes, $waits waits, $used now; VmHWM $base -> $(hwm) kB"
[ "$peak" -le $((32 << 20)) ] || die "the view held $peak bytes, over view.memoryLimit 32 MiB"
[ "$peak" -ge $((16 << 20)) ] || die "bad test: the peak $peak shows no writer"
[ "$waits" -gt 0 ] || die "bad test: nothing waited for memory"
# (a sanitizer's allocator keeps freed memory: RSS says nothing there)
if grep -qaE '__(asan|tsan)_init' "$VAULTFS"; then
	log "a sanitizer build: peak RSS not checked"
else
	[ $(($(hwm) - base)) -le $(((32 + 64) << 10)) ] ||
		die "peak RSS grew by $(($(hwm) - base)) kB, more than view.memoryLimit + 64 MiB"
fi
for i in 1 2 3 4 5 6; do
	[ "$(s3_req HEAD "$B/backups/w$i" | _header content-length)" = 25165824 ] ||
		die "s3://$B/backups/w$i is not 24 MiB"
done
no_multipart_uploads "$B"
unmount_view
log "6 writers and 6 readers within view.memoryLimit 32 MiB"
