#!/bin/bash
# archive_failures: bad input and failures mid-stream give a clear message
# and a non-zero exit, and leave nothing behind: no object, no multipart
# upload in progress, no loop device (losetup -a), no mount.
#  - SRC that does not exist, or is neither a directory, a block device nor
#    an image file (/dev/null); bad options;
#  - a DEST bucket that does not exist (NoSuchBucket), a local DEST in a
#    directory that does not exist;
#  - S3 failing mid-stream while an ext4 image is archived: UploadPart
#    failing for good (VAULTFS_FAULT s3.upload_part@3+), and every PUT reset
#    on the wire (fault proxy);
#  - the source failing mid-read (VAULTFS_FAULT arc.raw_read);
#  - SIGTERM while an image is mounted and streaming, SIGINT as soon as its
#    loop device appears: a prompt non-zero exit, mount and loop released,
#    the upload aborted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
need_loop
need_fs ext4
need_tools mkfs.ext4 losetup base64

MiB=$((1024 * 1024))
make_bucket B
# info: vaultfs logs its private mount points, which assert_released checks
export VAULTFS_LOG=info

# nothing_stored PREFIX: no object under s3://$B/PREFIX, no upload in progress
nothing_stored() {
	local keys
	keys=$(s3_keys "$B" "$1") || die "ListObjectsV2 $B failed"
	[ -z "$keys" ] || {
		echo "$keys" >&2
		die "objects left under s3://$B/$1"
	}
	no_multipart_uploads "$B"
}

# --- an ext4 image of 200 MiB of text: slow at gzip -9 on one thread ------
mkdir -p "$T/files/sub"
head -c $((150 * MiB)) /dev/urandom | base64 -w 76 >"$T/files/text"
seq 1 100000 >"$T/files/sub/numbers"
truncate -s 256M "$T/ext4.img"
mkfs.ext4 -q -F -d "$T/files" "$T/ext4.img"
IMG=$T/ext4.img

# --- bad SRC, bad options ---------------------------------------------------
expect_fail vf archive --quiet "$T/no/such/source" "s3://$B/nosrc/"
expect_grep "$T/no/such/source" "$FAIL_OUT"
expect_grep "No such file" "$FAIL_OUT"
nothing_stored nosrc/

expect_fail vf archive --quiet /dev/null "s3://$B/devnull/"
expect_grep "/dev/null" "$FAIL_OUT"
nothing_stored devnull/

for bad in "--codec lzma" "--mode fast" "--level 10" "--threads x"; do
	rc=0
	# shellcheck disable=SC2086
	vf archive --quiet $bad "$T/files" "$T/bad.tgz" >"$T/bad.out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || { cat "$T/bad.out" >&2; die "'$bad': exit $rc, want 2 (usage)"; }
	expect_grep "${bad%% *}" "$T/bad.out"
	[ ! -e "$T/bad.tgz" ] || die "'$bad': an archive was written"
done
log "bad options: exit 2, the option named"

# --- bad DEST ---------------------------------------------------------------
nobucket=vft-no-such-bucket-$$-$RANDOM
expect_fail vf archive --quiet "$IMG" "s3://$nobucket/x/"
expect_grep "NoSuchBucket" "$FAIL_OUT"
expect_grep "$nobucket" "$FAIL_OUT"
assert_released

expect_fail vf archive --quiet "$IMG" "$T/no/such/dir/out.tgz"
expect_grep "$T/no/such/dir" "$FAIL_OUT"
expect_grep "[Nn]o such" "$FAIL_OUT"
[ ! -e "$T/no" ] || die "the missing directory was created"
assert_released
log "bad DEST: NoSuchBucket, missing directory: named, nothing attached"

# --- S3 failing mid-stream ----------------------------------------------------
expect_fail env VAULTFS_FAULT="s3.upload_part@3+" VAULTFS_S3_MAX_ATTEMPTS=2 \
	timeout -k 10 300 "$VAULTFS" archive --quiet --part-size 5M "$IMG" "s3://$B/fault-core/"
expect_grep "[Pp]art" "$FAIL_OUT"
assert_released
nothing_stored fault-core/
log "UploadPart failing for good: non-zero exit, upload aborted, devices released"

start_faultproxy --only-method PUT --reset-rate 1 --after 2
expect_fail env VAULTFS_S3_MAX_ATTEMPTS=3 timeout -k 10 300 "$VAULTFS" archive --quiet \
	--part-size 5M --endpoint-url "$FP_URL" "$IMG" "s3://$B/fault-wire/"
[ "$(fp_stat resets)" -ge 3 ] || die "only $(fp_stat resets) resets: gave up too early"
assert_released
nothing_stored fault-wire/
log "PUTs reset on the wire: non-zero exit, upload aborted, devices released"

# --- the source failing mid-read --------------------------------------------
expect_fail env VAULTFS_FAULT="arc.raw_read@5" timeout -k 10 300 "$VAULTFS" archive --quiet \
	--mode raw --part-size 5M "$IMG" "s3://$B/fault-read/"
expect_grep "ext4.img" "$FAIL_OUT"
assert_released
nothing_stored fault-read/
log "read error mid-stream: non-zero exit naming the source, upload aborted"

# --- signals ------------------------------------------------------------------
# wait_for WHAT: until leaks shows WHAT for our files (20 s at most)
wait_for() {
	local i
	for i in $(seq 1 200); do
		case $(leaks) in *"$1"*) return 0 ;; esac
		if ! kill -0 "$PID" 2>/dev/null; then
			local rc=0
			wait "$PID" || rc=$?
			PID=
			cat "$T/sig.err" >&2
			die "vaultfs ended (exit $rc) before '$1' showed"
		fi
		sleep 0.1
	done
	die "no '$1' after 20 s"
}

PID=
on_exit '[ -z "$PID" ] || kill -9 "$PID"'

# signal_run SIGNAL WHEN NAME LIMIT CODEC-OPTIONS...: archive $IMG in the
# background, send SIGNAL once WHEN ("loop device" or "mount") shows, expect
# a clean non-zero exit within LIMIT seconds, everything released
signal_run() {
	local sig=$1 when=$2 name=$3 limit=$4 rc=0 t0 i
	shift 4
	"$VAULTFS" archive --quiet "$@" --part-size 5M "$IMG" "s3://$B/$name/" \
		>"$T/sig.out" 2>"$T/sig.err" &
	PID=$!
	wait_for "$when"
	[ "$when" = mount ] && sleep 0.5 # into the stream
	kill -s "$sig" "$PID"
	t0=$SECONDS
	for i in $(seq 1 $((limit * 10))); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$PID" 2>/dev/null; then
		die "vaultfs $* still runs $limit s after SIG$sig"
	fi
	wait "$PID" || rc=$?
	PID=
	sed 's/^/    | /' "$T/sig.err" >&2
	# the shell's status for the signal (130, 143), and the message that
	# shows it was handled, not fatal
	local want=143 says=terminated
	[ "$sig" = INT ] && want=130 says=interrupted
	[ "$rc" = "$want" ] || die "SIG$sig: exit $rc, want $want"
	grep -qE 'Sanitizer|runtime error' "$T/sig.err" && die "sanitizer report"
	grep -q "^vaultfs: archive: $says" "$T/sig.err" ||
		die "SIG$sig: the message does not say $says"
	assert_released
	nothing_stored "$name/"
	log "SIG$sig once the $when showed ($*): exit $rc after $((SECONDS - t0)) s, all released"
}
# gzip -9 on one thread takes ~7 s for this image here: the signal lands
# mid-stream, and gzip stops at once. zstd -19 works in jobs of tens of MiB
# (1-2 MB/s) that it finishes before it stops, mount and loop device held
# meanwhile: 13-25 s here, hence the longer limit.
signal_run TERM mount sigterm 10 --threads 1 --level 9
signal_run INT "loop device" sigint 10 --threads 1 --level 9
signal_run TERM mount sigterm-zstd 60 --codec zstd --level 19 --threads 1
