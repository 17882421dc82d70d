/*
 * replay.c - see replay.h: a filesystem mounted with its journal replayed
 * into a copy-on-write overlay when it needs recovery, read-only without
 * replay otherwise.
 */
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "blockdev.h"
#include "log.h"
#include "mem.h"

enum journal_state {
	JOURNAL_CLEAN = 0,
	JOURNAL_DIRTY,    /* needs recovery */
	JOURNAL_ASK,      /* the superblock does not say: ask the kernel */
	JOURNAL_UNKNOWN,  /* could not be read */
};

/* ext2/3/4 (fs/ext4/ext4.h): the superblock is 1024 bytes at offset
 * 1024; s_magic (le16) at 0x38, s_feature_incompat (le32) at 0x60. The
 * kernel sets INCOMPAT_RECOVER ("needs_recovery" to dumpe2fs) while the
 * journal may hold transactions not yet written to their place: on every
 * mount, cleared by a clean unmount. A snapshot of a mounted filesystem
 * always has it. */
#define EXT_SB_OFFSET 1024
#define EXT_MAGIC_AT 0x38
#define EXT_MAGIC 0xEF53
#define EXT_INCOMPAT_AT 0x60
#define EXT_INCOMPAT_RECOVER 0x0004u

/* btrfs (fs/btrfs/accessors.h, struct btrfs_super_block): the primary
 * superblock at 64 KiB; magic "_BHRfS_M" at 0x40, log_root (le64) at
 * 0x60: the root of the log tree, nonzero while fsynced changes live only
 * in the log (what `btrfs rescue zero-log` clears). */
#define BTRFS_SB_OFFSET 65536
#define BTRFS_MAGIC_AT 0x40
#define BTRFS_MAGIC "_BHRfS_M"
#define BTRFS_LOG_ROOT_AT 0x60

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Whether the filesystem at `start` of `fd` needs its journal replayed,
 * from its superblock. XFS keeps no such flag: whether its log is clean
 * is known only by finding the log's head and tail, which is the log
 * recovery code itself. We let the kernel answer instead (JOURNAL_ASK,
 * see ask_kernel()), which is exact and costs one mount attempt.
 */
static enum journal_state journal_state(int fd, uint64_t start,
					const char *fstype)
{
	unsigned char sb[128];

	if (!strcmp(fstype, "xfs"))
		return JOURNAL_ASK;
	if (!strcmp(fstype, "ext3") || !strcmp(fstype, "ext4")) {
		if (pread(fd, sb, sizeof(sb), (off_t)(start + EXT_SB_OFFSET)) !=
			    (ssize_t)sizeof(sb) ||
		    le(sb + EXT_MAGIC_AT, 2) != EXT_MAGIC)
			return JOURNAL_UNKNOWN;
		return le(sb + EXT_INCOMPAT_AT, 4) & EXT_INCOMPAT_RECOVER
			       ? JOURNAL_DIRTY
			       : JOURNAL_CLEAN;
	}
	if (!strcmp(fstype, "btrfs")) {
		if (pread(fd, sb, sizeof(sb),
			  (off_t)(start + BTRFS_SB_OFFSET)) !=
			    (ssize_t)sizeof(sb) ||
		    memcmp(sb + BTRFS_MAGIC_AT, BTRFS_MAGIC, 8) != 0)
			return JOURNAL_UNKNOWN;
		return le(sb + BTRFS_LOG_ROOT_AT, 8) ? JOURNAL_DIRTY
						     : JOURNAL_CLEAN;
	}
	return JOURNAL_UNKNOWN;
}

static bool read_only_device(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	int ro = 0;

	if (fd < 0)
		return false;
	if (ioctl(fd, BLKROGET, &ro) != 0)
		ro = 0;
	close(fd);
	return ro != 0;
}

/*
 * XFS: mount a READ-ONLY device read-only with recovery allowed. A clean
 * log mounts (and that mount is the one archived: nothing can be written
 * to a read-only device); a log that needs recovery is refused with
 * EROFS ("recovery required on read-only device") before anything is
 * replayed. The device must be read-only: on a writable one the same
 * mount would replay into the recovery point, so a writable device (a
 * block device given as the source, its partitions) is first put behind a
 * read-only loop device of the filesystem's range.
 */
static int ask_kernel(const struct arc_mount_req *rq, char *mnt,
		      size_t mntlen, struct cm_err *err)
{
	char dev[64];
	const char *use = rq->dev;
	int id, rc;

	if (!read_only_device(rq->dev)) {
		rc = arc_loop_attach_range(rq->devs, rq->src, rq->start,
					   rq->size, &id, dev, sizeof(dev),
					   err);
		if (rc)
			return rc;
		use = dev;
	}
	return arc_mount_replay(rq->devs, use, rq->v->fstype, &id, mnt, mntlen,
				err);
}

/* The overlay, a read-write loop device on it, the replaying mount. */
static int mount_replayed(const struct arc_mount_req *rq,
			  struct arc_overlay **ovp, char *mnt, size_t mntlen,
			  struct cm_err *err)
{
	const struct arc_source_opts *o = rq->opts;
	struct arc_overlay *ov = NULL;
	char dev[64];
	int id, rc, last;

	rc = arc_overlay_new(rq->devs, rq->fd, rq->src, rq->start, rq->size,
			     o ? o->overlay_dir : NULL,
			     o ? o->overlay_limit : 0, &ov, err);
	if (rc)
		return rc;
	rc = arc_loop_attach_rw(rq->devs, arc_overlay_path(ov), &id, dev,
				sizeof(dev), err);
	if (rc == 0)
		rc = arc_mount_replay(rq->devs, dev, rq->v->fstype, &id, mnt,
				      mntlen, err);
	/* a write refused or failed means a replay cut short, even where
	 * the kernel mounted what it had */
	if (arc_overlay_refused(ov))
		rc = cm_err_set(err, ENOSPC,
				"the overlay is full: the replay needs more "
				"than its limit of %llu bytes (overlayLimit)",
				(unsigned long long)arc_overlay_limit(ov));
	else if (arc_overlay_errors(ov, &last))
		rc = cm_err_set(err, last ? last : EIO,
				"%llu reads of the image or writes to the "
				"overlay failed, the last with: %s",
				(unsigned long long)arc_overlay_errors(ov, NULL),
				strerror(last ? last : EIO));
	if (rc) {
		arc_overlay_free(ov);
		return rc;
	}
	cm_info("%s: replayed the %s journal of %s into the overlay (%llu "
		"bytes written)",
		rq->src, rq->v->fstype, rq->v->name,
		(unsigned long long)arc_overlay_used(ov));
	*ovp = ov;
	return 0;
}

int arc_mount_volume(const struct arc_mount_req *rq, struct arc_overlay **ovp,
		     char *mnt, size_t mntlen, struct cm_err *err)
{
	struct arc_volume *v = rq->v;
	enum journal_state st;
	struct cm_err e;
	int id, rc;

	*ovp = NULL;
	if (!arc_fs_journaled(v->fstype))
		return arc_mount_ro(rq->devs, rq->dev, v->fstype, &id, mnt,
				    mntlen, err);
	st = journal_state(rq->fd, rq->start, v->fstype);
	cm_err_clear(&e);
	if (st == JOURNAL_ASK) {
		unsigned long mark = arc_devs_mark(rq->devs);

		rc = ask_kernel(rq, mnt, mntlen, &e);
		if (rc == 0) {
			v->journal = cm_xstrdup("clean");
			return 0;
		}
		arc_devs_rollback(rq->devs, mark);
		if (rc == -EROFS) {
			st = JOURNAL_DIRTY;
		} else {
			cm_info("%s: %s: cannot tell whether its log is "
				"clean (%s)", rq->src, v->name, e.msg);
			st = JOURNAL_UNKNOWN;
		}
	}
	if (st == JOURNAL_DIRTY) {
		cm_info("%s: the %s journal of %s needs recovery: replaying "
			"it into a copy-on-write overlay",
			rq->src, v->fstype, v->name);
		cm_err_clear(&e);
		rc = mount_replayed(rq, ovp, mnt, mntlen, &e);
		if (rc == 0) {
			v->journal = cm_xstrdup("replayed");
			return 0;
		}
		v->journal = cm_xasprintf("not replayed: %s", e.msg);
		rc = arc_mount_ro(rq->devs, rq->dev, v->fstype, &id, mnt,
				  mntlen, err);
		/* mounted without what the journal holds: incomplete (a
		 * volume that goes raw instead keeps every byte) */
		if (rc == 0)
			arc_stats_skip(rq->stats, v->name,
				       "journal not replayed: %s", e.msg);
		return rc;
	}
	rc = arc_mount_ro(rq->devs, rq->dev, v->fstype, &id, mnt, mntlen, err);
	if (rc == 0 && st == JOURNAL_CLEAN)
		v->journal = cm_xstrdup("clean");
	return rc;
}
