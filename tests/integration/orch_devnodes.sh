#!/bin/bash
# orch_devnodes: the block device nodes that vaultfs makes with mknod (a
# static /dev where the kernel's loopN or loopNpM nodes never show:
# VAULTFS_FAULT=arc.dev_node makes vaultfs see /dev so) are in the job's
# journal before they exist, and the next start removes them after a
# SIGKILL. The kill comes while the partition is mounted
# (VAULTFS_TEST_PAUSE_AT=mounted). On a kernel that lists loop partitions
# the nodes are the partition's and the disk's; on one that does not (the
# partition then gets a loop device of its own) they are the loop devices'.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_loop
need_fs ext4
need_tools sgdisk

# a GPT disk with one ext4 partition
mkdir -p "$T/src/p1" "$T/vault"
echo "partition one" >"$T/src/p1/one.txt"
make_ext4 "$T/p1.img" "$T/src/p1" 16M
D=$T/vault/disk.img
truncate -s 20M "$D"
sgdisk -o -n 1:2048:+16M -t 1:8300 "$D" >/dev/null || die "sgdisk failed"
dd if="$T/p1.img" of="$D" bs=1M seek=$((2048 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
write_config "$T/c.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\" }"

# nodes of ours that a failed test leaves are removed at exit
on_exit 'for n in $(sed -n "s/.*made device node \(\/dev\/[^ ]*\) for .*/\1/p" "$T/run1.err" 2>/dev/null); do rm -f "$n"; done'

# no `timeout` in between: SIGKILL must reach vaultfs itself (the pause
# ends by itself after 120 s, and the exit trap kills it)
VAULTFS_FAULT=arc.dev_node@1+ VAULTFS_TEST_PAUSE_AT=mounted:120 VAULTFS_LOG=info \
	"$VAULTFS" run --config "$T/c.json" --once >"$T/run1.out" 2>"$T/run1.err" &
RPID=$!
on_exit "kill -KILL $RPID 2>/dev/null; wait $RPID"
wait_line "$T/run1.err" 'test: job .* paused at mounted' 120
NODES=$(sed -n 's/.*made device node \(\/dev\/[^ ]*\) for .*/\1/p' "$T/run1.err")
[ -n "$NODES" ] || { cat "$T/run1.err" >&2; die "vaultfs made no device node (the fault did not apply?)"; }
jstate "$T/state" '[(r["kind"], r["status"], r.get("device"), r.get("devnum")) for r in j["resources"] if r["kind"] == "node"]' \
	>"$T/nodes.txt"
for n in $NODES; do
	[ -b "$n" ] || die "$n is not a block device"
	grep -q "('node', 'created', '$n', '[0-9]*:[0-9]*')" "$T/nodes.txt" ||
		{ cat "$T/nodes.txt" >&2; die "the journal does not hold $n as a created node"; }
done
log "$(echo $NODES) made and journaled; killing vaultfs while the partition is mounted"
kill -KILL "$RPID"
wait "$RPID" 2>/dev/null || true
for n in $NODES; do
	[ -b "$n" ] || die "bad test: $n is gone before the restart"
done

VAULTFS_LOG=info vf_run --config "$T/c.json" --once
for n in $NODES; do
	[ ! -e "$n" ] || die "the next start left $n behind"
	expect_grep "removed device node $n " "$RUN_ERR"
done
expect_grep '^succeeded v/disk.img' "$RUN_OUT"
jstate "$T/state" '[r["status"] for r in j["resources"] if r["kind"] == "node"]' | grep -qv created ||
	die "the journal still says a node is held"
assert_released "$T/vault"
log "the device node was removed by the next start, the job finished"
