/*
 * replay.h - mounting one filesystem of a plan (auto.c) with its journal
 * replayed when it needs recovery, the recovery point untouched.
 *
 *   no journal (ext2, vfat)     -> read-only mount, as always
 *   journal clean               -> read-only mount without replay (ext3/4
 *                                  noload, xfs norecovery, btrfs
 *                                  nologreplay): journal "clean"
 *   journal needs recovery      -> a copy-on-write overlay of the volume's
 *                                  bytes (overlay.h), a read-write loop
 *                                  device on it, a read-only mount that
 *                                  replays the journal into the overlay:
 *                                  journal "replayed"
 *   the replay fails (overlay   -> the read-only mount without replay,
 *   full, mount error)             recorded with arc_stats_skip() (the
 *                                  archive is incomplete): journal "not
 *                                  replayed: WHY"
 *
 * How "needs recovery" is known: ext3/ext4 and btrfs from their
 * superblocks (read here, see journal_state() in replay.c); XFS from the
 * kernel (see there why).
 *
 * Ownership: everything made is tracked in `devs` (after the caller's
 * mark); an overlay is returned to the caller, who frees it
 * (arc_overlay_free) once the mount on it is released. Threads: the
 * caller's (plus the overlay's server).
 */
#ifndef VAULTFS_REPLAY_H
#define VAULTFS_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "overlay.h"
#include "source.h"

struct arc_devs;

struct arc_mount_req {
	struct arc_devs *devs;
	const struct arc_source_opts *opts; /* may be NULL */
	struct arc_stats *stats;
	struct arc_volume *v;   /* its fstype; journal is set here */
	const char *src;        /* the image or device (messages) */
	int fd;                 /* src, open read-only */
	uint64_t start, size;   /* the filesystem's bytes in src */
	const char *dev;        /* a block device of the filesystem (the
				   read-only mount without replay) */
};

/*
 * Mount rq->v's filesystem as above on a private directory written to
 * `mnt`. *ovp: the overlay it sits on, or NULL. Fails only when no mount
 * was possible at all (the caller archives the volume raw).
 */
int arc_mount_volume(const struct arc_mount_req *rq, struct arc_overlay **ovp,
		     char *mnt, size_t mntlen, struct cm_err *err);

#endif
