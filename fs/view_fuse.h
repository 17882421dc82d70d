/*
 * view_fuse.h - the view on a FUSE mount: the adapter of fuse_ll.c (the
 * only file that includes libfuse) behind a plain-C interface, and the
 * mount point's preparation (view_mount.c).
 *
 * Life cycle (cli/cmd_mount.c):
 *
 *   vf = view_fuse_new(&opts)         the notifier; nothing mounted
 *   v  = view_new(... .notify = view_fuse_notify_ops(), .notify_ctx = vf)
 *   view_fuse_mount(vf, v)            session made, mount live (the
 *                                     kernel queues requests)
 *   view_fuse_run(vf)                 the multi-threaded loop; returns on
 *                                     view_fuse_exit() or when unmounted
 *   view_fuse_unmount(vf)             after the loop: stops the notifier,
 *                                     unmounts (lazily; the kernel fails
 *                                     requests still in flight), drains
 *                                     the workers
 *   view_free(v); view_fuse_free(vf)
 *
 * opts.on_ready runs once, when the kernel's INIT has been answered (the
 * mount serves requests): the readiness signal.
 *
 * Threads: view_fuse_exit() may be called from any thread (a signal
 * thread); the rest from the thread that runs the loop.
 */
#ifndef VAULTFS_VIEW_FUSE_H
#define VAULTFS_VIEW_FUSE_H

#include <stdbool.h>

#include "err.h"
#include "view.h"

struct view_fuse_opts {
	const char *mountpoint; /* absolute; copied */
	bool allow_other;	/* also default_permissions */
	bool debug;		/* libfuse's request trace on stderr */
	unsigned workers;	/* for requests that wait; 0: 32 */
	void (*on_ready)(void *ctx);
	void *ctx;
};

struct view_fuse;

struct view_fuse *view_fuse_new(const struct view_fuse_opts *opts);
/* The ops to give view_new (ctx: the view_fuse). */
const struct view_notify_ops *view_fuse_notify_ops(void);
int view_fuse_mount(struct view_fuse *vf, struct view *v, struct cm_err *err);
/* 0 when ended by view_fuse_exit or an unmount. */
int view_fuse_run(struct view_fuse *vf);
void view_fuse_exit(struct view_fuse *vf);
void view_fuse_unmount(struct view_fuse *vf);
void view_fuse_free(struct view_fuse *vf); /* NULL is a no-op */

/*
 * Make `path` (absolute) usable as a mount point: a stale FUSE mount there
 * (ENOTCONN: its daemon died) is detached lazily and *cleared set; a live
 * FUSE mount is refused with -EBUSY.
 */
int view_mount_prepare(const char *path, bool *cleared, struct cm_err *err);

#endif
