/*
 * fuse_file.h - one read-only file whose bytes come from a callback,
 * served by a private FUSE mount: how something that is not a file (an
 * EBS snapshot read through the EBS direct APIs) is handed to the
 * archiver as a local image (probe, loop device, mount, tar).
 *
 *   MNT/            the FUSE mount (mode 0500, owner root)
 *       NAME        `size` bytes, mode 0400, read-only
 *
 * The caller makes MNT (an empty directory) and records the mount where a
 * crash will find it BEFORE arc_fuse_file_mount (it calls mount(2)); after
 * kill -9 the mount is dead (ENOTCONN) and arc_fuse_unmount_stale takes it
 * away.
 *
 * Threads: one server thread answers the FUSE requests and calls `read`
 * for each read, one at a time; `read` may block (it fetches over the
 * network) and may use threads of its own to have more in flight. The
 * server takes no lock the mounting thread holds, so a loop device or a
 * mount stacked on the file cannot deadlock with it.
 */
#ifndef VAULTFS_FUSE_FILE_H
#define VAULTFS_FUSE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* All n bytes at off (off + n <= size) into buf: 0, or -errno (the read
 * fails with it). */
typedef int (*arc_fuse_read_fn)(void *ctx, void *buf, size_t n,
				uint64_t off);

struct arc_fuse_file;

/* Mount the file system on `mnt` and start its server. `name` is the
 * file's name (one component), `fsname` what /proc/mounts shows. On
 * failure nothing is mounted. */
int arc_fuse_file_mount(const char *mnt, const char *fsname,
			const char *name, uint64_t size, arc_fuse_read_fn read,
			void *ctx, struct arc_fuse_file **out,
			struct cm_err *err);

/* MNT/NAME (the file to open). */
const char *arc_fuse_file_path(const struct arc_fuse_file *f);

/* Unmount (lazily when busy), stop the server and free. Never fails:
 * problems are logged. NULL is a no-op. */
void arc_fuse_file_free(struct arc_fuse_file *f);

/* After a crash: unmount `mnt` if something is mounted there (a dead FUSE
 * mount answers ENOTCONN: it is detached lazily). 0 when nothing is
 * mounted there any more. */
int arc_fuse_unmount_stale(const char *mnt, struct cm_err *err);

#endif
