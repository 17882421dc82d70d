/*
 * blockdev.h - read-only loop devices, partition device nodes and
 * read-only mounts, each tracked so that it is always released.
 *
 * A `struct arc_devs` is a small fixed table of the resources one job holds
 * (a loop device, a mount and its private directory, a device node we had
 * to create). Resources are released in the reverse order of their
 * creation by arc_devs_release() (one), arc_devs_release_all() (all) or
 * arc_devs_free().
 *
 * Crash safety: a hook sees every resource: a mount (and its directory),
 * a device node and an overlay's directory BEFORE they are created, a
 * loop device right after it is attached (its number is not ours before
 * that; it is attached with LO_FLAGS_AUTOCLEAR, so the kernel detaches it
 * if we die holding it unmounted). The orchestrator journals these and cleans up after a crash.
 *
 * Signals: arc_devs_release_all() uses only system calls (umount2 with
 * MNT_DETACH, rmdir, unlink, ioctl, close) and atomics, never the heap,
 * locks or the hook, so a SIGINT/SIGTERM handler may call it before
 * _exit(). The gentler way is to set the source's cancel flag and let the
 * job unwind, which releases everything on its way out.
 *
 * Threads: one thread creates and releases; a signal handler (or another
 * thread) may call arc_devs_release_all() concurrently: each slot is
 * claimed with a compare-and-swap, so nothing is released twice.
 */
#ifndef VAULTFS_BLOCKDEV_H
#define VAULTFS_BLOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum arc_res_kind {
	ARC_RES_LOOP = 0,  /* path: /dev/loopN; detail: the backing file */
	ARC_RES_MOUNT,     /* path: the mount point; detail: the device */
	ARC_RES_NODE,      /* path: a block device node we made; detail: M:m */
	ARC_RES_OVERLAY,   /* path: an overlay's private directory (overlay.h),
			      removed with its `cow` and `mnt`; detail: the
			      image */
};

enum arc_res_event {
	ARC_RES_CREATING = 0,  /* about to be created (mount, node) */
	ARC_RES_CREATED,       /* created (all kinds) */
	ARC_RES_RELEASED,      /* released by the normal path */
};

/* The journal's hook. A nonzero (negative errno) return from CREATING or
 * CREATED fails the operation (the resource is then released). */
typedef int (*arc_resource_fn)(void *ctx, enum arc_res_event ev,
			       enum arc_res_kind kind, const char *path,
			       const char *detail);

const char *arc_res_kind_name(enum arc_res_kind k);  /* "loop", ... */

struct arc_devs;

/*
 * `mount_base`: where private mount points are made (mkdtemp); NULL means
 * /run/vaultfs, or /tmp when /run cannot be used. Copied. `hook` may be
 * NULL; `ctx` is passed back untouched.
 */
struct arc_devs *arc_devs_new(const char *mount_base, arc_resource_fn hook,
			      void *ctx);
/* Releases whatever is still held, then frees. NULL is a no-op. */
void arc_devs_free(struct arc_devs *d);
/* Async-signal-safe: see above. Leaves `d` usable. */
void arc_devs_release_all(struct arc_devs *d);
/* Release one resource (by the id its creator returned) and everything
 * created after it. Logs problems; never fails. */
void arc_devs_release(struct arc_devs *d, int id);
/* A point in the history of `d`, and the release of everything created
 * after it: a job marks before it starts and rolls back when done. */
unsigned long arc_devs_mark(const struct arc_devs *d);
void arc_devs_rollback(struct arc_devs *d, unsigned long mark);

/*
 * Attach `image` to a free loop device, read-only, with autoclear (and
 * partition scanning if asked). Writes "/dev/loopN" to `dev` and the
 * resource id to *id. The detail passed to the hook is the image path
 * (with "@offset+size" for a range).
 */
int arc_loop_attach(struct arc_devs *d, const char *image, bool partscan,
		    int *id, char *dev, size_t devlen, struct cm_err *err);

/* The same for an image already open read-only at `fd` (borrowed), named
 * `name` (the hook's detail, the kernel's lo_file_name): the path is not
 * resolved again. */
int arc_loop_attach_fd(struct arc_devs *d, int fd, const char *name,
		       bool partscan, int *id, char *dev, size_t devlen,
		       struct cm_err *err);

/*
 * Attach `size` bytes of `path` (an image or a block device) from
 * `offset`, read-only, with autoclear: a partition the kernel does not
 * show (no partition-table support, a foreign device).
 */
int arc_loop_attach_range(struct arc_devs *d, const char *path,
			  uint64_t offset, uint64_t size, int *id, char *dev,
			  size_t devlen, struct cm_err *err);
/* The same for a source already open read-only at `fd` (borrowed). */
int arc_loop_attach_range_fd(struct arc_devs *d, int fd, const char *name,
			     uint64_t offset, uint64_t size, int *id,
			     char *dev, size_t devlen, struct cm_err *err);

/*
 * Attach `path` (an overlay's file, overlay.h: never an image or a device
 * of a recovery point) to a free loop device READ-WRITE, with autoclear.
 * The writes a journal replay makes go to the overlay.
 */
int arc_loop_attach_rw(struct arc_devs *d, const char *path, int *id,
		       char *dev, size_t devlen, struct cm_err *err);

/*
 * A resource made by someone else (an overlay's directory, a FUSE mount),
 * tracked like ours: arc_devs_begin() takes a slot and tells the hook it
 * is being created (before it is: the slot is then released by release
 * and rollback whether or not it came to exist); arc_devs_done() says it
 * exists. Either fails only when the hook does (or no slot is free); the
 * caller then releases `id` (begin: nothing to release).
 */
int arc_devs_begin(struct arc_devs *d, enum arc_res_kind kind,
		   const char *path, const char *detail, int *id,
		   struct cm_err *err);
int arc_devs_done(struct arc_devs *d, int id, struct cm_err *err);

/*
 * The device node of partition `partno` of the whole-disk device `disk`,
 * waiting a few seconds for the kernel to create it; when /dev has none
 * (no devtmpfs, a static /dev), one is made with mknod (a tracked NODE).
 */
int arc_partition_node(struct arc_devs *d, const char *disk, unsigned partno,
		       char *dev, size_t devlen, struct cm_err *err);

/* Whether we know how to mount `fstype` without replaying a journal. */
bool arc_fs_mountable(const char *fstype);
/* Whether `fstype` has a journal (or log) that a mount may replay. */
bool arc_fs_journaled(const char *fstype);

/*
 * Mount `dev` (a filesystem of `fstype`) read-only, nodev, nosuid, noexec,
 * without journal replay (ext3/4 noload, xfs norecovery, btrfs
 * rescue=nologreplay), on a new private directory written to `mnt`.
 */
int arc_mount_ro(struct arc_devs *d, const char *dev, const char *fstype,
		 int *id, char *mnt, size_t mntlen, struct cm_err *err);

/*
 * The same, but letting the kernel replay the journal (ext3/4 and btrfs
 * with no option, xfs `nouuid`): the mount is read-only, the replay writes
 * to the device. On a writable device (an overlay's loop device) that is
 * the replay; on a read-only one, a filesystem that needs recovery is
 * refused with -EROFS, which is how an XFS log is found dirty.
 */
int arc_mount_replay(struct arc_devs *d, const char *dev, const char *fstype,
		     int *id, char *mnt, size_t mntlen, struct cm_err *err);

#endif
