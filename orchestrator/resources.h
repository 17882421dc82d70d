/*
 * resources.h - releasing what a job's journal lists: after a crash (the
 * next start finds the records) and at the end of every job (whatever the
 * archiver's own unwinding did not release).
 *
 * Each kind is released by what the record identifies, and only if it is
 * still what was recorded:
 *
 *   mount    the mount point is looked up in /proc/self/mountinfo; if
 *            mounted, umount2(MNT_DETACH); then the (empty) directory is
 *            removed.
 *   loop     /sys/block/loopN/loop/backing_file must name the recorded
 *            backing file; only then is the device detached (LOOP_CLR_FD).
 *            A device bound to another file is someone else's now: left
 *            alone, and the record counts as released. Loop devices are
 *            attached with autoclear, so once their mount is gone the
 *            kernel usually detaches them first: we wait a little for it.
 *   upload   AbortMultipartUpload of the recorded upload id, if any; then
 *            every other upload in progress for exactly that key (the
 *            key is the job's alone): those of a create whose answer was
 *            lost, or of a crash between the create and the record.
 *            Uploads of longer keys under the same prefix are left alone.
 *            "NoSuchUpload" counts as done.
 *   tempdir  removed with everything below it (no symlink followed, no
 *            other filesystem entered); with an inode recorded (a
 *            recovery point renamed to be deleted), only if the name
 *            still holds that device and inode.
 *   node     a block device node made with mknod (a partition or loop
 *            device the kernel's /dev did not show): removed if it is
 *            still a block device of the recorded major:minor.
 *
 * Threads: no state; any thread. `s3` may be NULL when no record is an
 * upload (an upload record then fails with -EINVAL).
 */
#ifndef VAULTFS_ORCH_RESOURCES_H
#define VAULTFS_ORCH_RESOURCES_H

#include <stdbool.h>

#include "err.h"
#include "journal.h"

struct s3_client;

/* Release one recorded resource (see above); 0 when it is gone now. */
int orch_res_release(struct s3_client *s3, const struct orch_resource *res,
		     struct cm_err *err);

/* `path` is a mount point now. */
bool orch_is_mounted(const char *path);

/* rm -r without following symlinks or crossing into other mounts; a
 * missing path is success. */
int orch_remove_all(const char *path, struct cm_err *err);

#endif
