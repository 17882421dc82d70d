#!/bin/bash
# view_vaults: `vaultfs mount` over a vault of a tree and two ext4 images
# (real loop devices) with autoStart false, archiving into the Ceph S3
# server: the layout; `ls` of vaults and recovery points; status, info.json
# and metrics; `touch export` queues exactly one job, a second touch none;
# `cat status` follows that job to succeeded; a `cancel` stops a running
# job, which releases its loop device and leaves no multipart upload; junk
# written to a control file gets EINVAL and is logged (in mount.log and
# the recovery point's log file); README says what each file does; a
# recovery point
# added while mounted shows in `ls` without remounting; SIGTERM unmounts and
# the daemon exits 0; sd_notify (READY, STATUS, WATCHDOG, STOPPING) and
# SIGHUP, which reopens the log and leaves the mount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
. "$(dirname "$0")/view.inc"
need_fuse
need_loop
need_fs ext4
test_timeout 450

V=$T/vault
M=$T/mnt
mkdir -p "$V" "$T/src"
make_tree "$V/tree1" 3
make_tree "$T/src/img1" 3
make_ext4 "$V/img1.img" "$T/src/img1" 8M
make_tree "$T/src/img2" 2
make_ext4 "$V/img2.img" "$T/src/img2" 8M
sidecar "$V/img1.img" "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-0v1" '{"team": "ops"}'

make_bucket B
write_config "$T/cfg.json" "{
  \"vaults\": [ { \"name\": \"prod\", \"path\": \"$V\" } ],
  \"destination\": \"s3://$B/archive\",
  \"endpoint\": \"$AWS_ENDPOINT_URL_S3\",
  \"stateDir\": \"$T/state\",
  \"autoStart\": false
}"

# every job pauses 3 s once its first bytes are read (the loop device
# attached, cancel checked meanwhile):
# long enough to see it running, and to cancel one
notify_listen "$T/notify.sock" "$T/notify.log"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 \
	VAULTFS_TEST_PAUSE_AT=writing:3 mount_view "$M" "$T/cfg.json" --verbose
# systemd hears of it: READY=1 once mounted, the counts, the watchdog
wait_line "$T/notify.log" '^READY=1$' 10
wait_line "$T/notify.log" '^STATUS=1 vault; jobs: 0 running$' 10
wait_line "$T/notify.log" '^WATCHDOG=1$' 10

# --- the layout -------------------------------------------------------------
[ "$(LC_ALL=C ls "$M" | tr '\n' ' ')" = "README archive metrics status vaults " ] || die "root: $(ls "$M")"
# README: what each file does, in ten lines
[ "$(wc -l <"$M/README")" -le 10 ] || die "README is $(wc -l <"$M/README") lines"
for f in status metrics info.json log export cancel archive/; do
	grep -q "$f" "$M/README" || die "README does not say what $f does"
done
[ "$(ls "$M/vaults")" = prod ] || die "vaults: $(ls "$M/vaults")"
[ "$(ls "$M/archive")" = "$B" ] || die "archive: $(ls "$M/archive")"
[ "$(ls "$M/vaults/prod" | tr '\n' ' ')" = "img1.img img2.img tree1 " ] ||
	die "recovery points: $(ls "$M/vaults/prod")"
[ "$(ls "$M/vaults/prod/img1.img" | tr '\n' ' ')" = "cancel export info.json log status " ] ||
	die "a recovery point: $(ls "$M/vaults/prod/img1.img")"
ls -l "$M/vaults/prod/img1.img" >"$T/ls.out"
expect_grep '^-rw-r----- .* export$' "$T/ls.out"
expect_grep '^-r--r----- .* status$' "$T/ls.out"
cat "$M/status" >"$T/status.out"
expect_grep '^jobs: 0$' "$T/status.out"
expect_grep '^auto start: no$' "$T/status.out"
expect_grep "^destination: s3://$B/archive$" "$T/status.out"
[ "$(rp_state "$M" prod img1.img)" = new ] || die "img1.img is not new: $(cat "$M/vaults/prod/img1.img/status")"
python3 - "$M/vaults/prod/img1.img/info.json" <<'EOF' || die "info.json"
import json, sys
i = json.load(open(sys.argv[1]))
assert i["type"] == "image", i
assert i["resourceId"] == "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-0v1", i
assert i["tags"] == {"team": "ops"}, i
assert i["size"] == 8 << 20, i
assert "job" not in i, i
EOF
[ "$(cat "$M/vaults/prod/tree1/log")" = "" ] || die "a log without a job"
log "layout, status and info.json are right"

# --- junk in a control file: EINVAL, logged, nothing queued ----------------
expect_fail bash -c "echo junk >'$M/vaults/prod/img1.img/export'"
expect_grep 'Invalid argument' "$FAIL_OUT"
python3 - "$M/vaults/prod/img1.img/cancel" <<'EOF' || die "python: a bad write was not EINVAL"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, b"stop please\n")
    raise SystemExit("accepted")
except OSError as e:
    assert e.errno == errno.EINVAL, e
os.close(fd)
EOF
expect_grep 'export: unknown command "junk' "$MERR"
expect_grep 'cancel: unknown command "stop please' "$MERR"
# ...and in the recovery point's log file, stamped
expect_grep '^[0-9-]+T[0-9:.]+\+00:00 warning: view: export: unknown command "junk' "$M/vaults/prod/img1.img/log"
expect_grep 'view: cancel: unknown command "stop please' "$M/vaults/prod/img1.img/log"
[ "$(cat "$M/vaults/prod/tree1/log")" = "" ] || die "another recovery point's log got the notes"
[ -z "$(job_files "$T/state")" ] || die "junk queued a job"
log "junk written to control files: EINVAL, logged, no job"

# --- touch export: exactly one job; cat status follows it -----------------
touch "$M/vaults/prod/img1.img/export"
touch "$M/vaults/prod/img1.img/export"
echo start >"$M/vaults/prod/img1.img/export"
[ "$(job_files "$T/state" | wc -l)" = 1 ] || die "not exactly one job: $(job_files "$T/state")"
seen=
for i in $(seq 1 1200); do
	s=$(rp_state "$M" prod img1.img)
	case " $seen " in *" $s "*) ;; *) seen="$seen $s" ;; esac
	[ "$s" = succeeded ] && break
	[ "$s" = failed ] && { cat "$M/vaults/prod/img1.img/status" >&2; die "the job failed"; }
	sleep 0.1
done
log "states seen by cat status:$seen"
[ "$s" = succeeded ] || die "the job did not succeed: $(cat "$M/vaults/prod/img1.img/status")"
case "$seen" in *archiving*) ;; *) die "cat status never showed archiving" ;; esac
[ "$(job_files "$T/state" | wc -l)" = 1 ] || die "not exactly one job after it ran"
cat "$M/vaults/prod/img1.img/status" >"$T/st.out"
expect_grep "^result: s3://$B/archive/arn/aws/ec2/eu-west-1/123456789012/snapshot/snap-0v1/Y=.*/backup.tar.gz$" "$T/st.out"
expect_grep '^verified: yes$' "$T/st.out"
expect_grep 'archiving' "$M/vaults/prod/img1.img/log"
python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); assert i["job"]["state"] == "succeeded", i' \
	"$M/vaults/prod/img1.img/info.json" || die "info.json does not show the job"
# a touch after success answers with the same job
touch "$M/vaults/prod/img1.img/export"
[ "$(job_files "$T/state" | wc -l)" = 1 ] || die "a touch after success queued again"
key=$(sed -n "s#^result: s3://$B/##p" "$T/st.out")
check_s3_archive "$B" "$key"
extract_compare "$CHECKED_OBJ" "$T/src/img1"
cat "$M/metrics" >"$T/metrics.out"
expect_grep '^vaultfs_jobs\{state="succeeded"\} 1$' "$T/metrics.out"
expect_grep '^vaultfs_view_control_errors_total 2$' "$T/metrics.out"
expect_grep '^vaultfs_job_duration_seconds_count 1$' "$T/metrics.out"
expect_grep '^succeeded: 1$' "$M/status"
assert_released "$V"
log "one job, followed through cat status to succeeded; archive checked"

# --- cancel a running job ------------------------------------------------------
touch "$M/vaults/prod/img2.img/export"
wait_for 60 sh -c "grep -q '^state: archiving' '$M/vaults/prod/img2.img/status'"
[ -n "$(leaks "$V")" ] || die "no loop device while img2.img is archiving"
echo cancel >"$M/vaults/prod/img2.img/cancel"
wait_for 60 sh -c "grep -q '^state: cancelled' '$M/vaults/prod/img2.img/status'"
assert_released "$V"
no_multipart_uploads "$B"
[ "$(job_files "$T/state" | wc -l)" = 2 ] || die "not two jobs"
log "cancel stopped the running job and cleaned up"

# --- a recovery point added while mounted ---------------------------------------
ls "$M/vaults/prod" >/dev/null
make_tree "$V/tree-late" 2
wait_for 20 sh -c "ls '$M/vaults/prod' | grep -qx tree-late"
[ "$(rp_state "$M" prod tree-late)" = new ] || die "tree-late is not new"
rm -rf "$V/tree-late"
wait_for 20 sh -c "! ls '$M/vaults/prod' | grep -qx tree-late"
log "a recovery point added (and removed) while mounted shows in ls"

# --- nothing else started by itself (autoStart false) ----------------------------
[ "$(rp_state "$M" prod tree1)" = new ] || die "tree1 started without an export"

# SIGHUP reopens the log, and the mount stays
kill -HUP "$MPID"
wait_line "$MERR" 'mount: SIGHUP: log reopened' 10
grep -q " $M fuse.vaultfs " /proc/mounts || die "SIGHUP unmounted"
expect_grep '^STATUS=1 vault; jobs: 0 running, 1 succeeded, 1 cancelled$' "$T/notify.log"

stop_view TERM
expect_grep '^STOPPING=1$' "$T/notify.log"
assert_released "$T"
no_multipart_uploads "$B"
