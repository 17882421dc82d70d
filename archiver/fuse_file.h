/*
 * fuse_file.h - one file whose bytes come from callbacks, served by a
 * private FUSE mount: how something that is not a file is handed to the
 * archiver as a local image (probe, loop device, mount, tar). Two users:
 * an EBS snapshot read through the EBS direct APIs (read-only), and the
 * copy-on-write overlay of a journal replay (overlay.h: written too).
 *
 *   MNT/            the FUSE mount (mode 0500, or 0700 when writable)
 *       NAME        `size` bytes, mode 0400 (0600), never resized
 *
 * The caller makes MNT (an empty directory) and records the mount where a
 * crash will find it BEFORE arc_fuse_file_mount (it calls mount(2)); after
 * kill -9 the mount is dead (ENOTCONN) and arc_fuse_unmount_stale takes it
 * away. A process killed while one of its threads waited for a read of a
 * loop device over its own file cannot finish dying (its /dev/fuse closes
 * with its last thread, which waits for the read): the next start aborts
 * the connection first (arc_fuse_abort_under), before it can even take
 * the state lock the dying process holds. That, rather than a server in
 * a child process, is the design: docs/design.md says why.
 *
 * Threads: one server thread answers the FUSE requests and calls `read`
 * and `write` for each, one at a time; they may block (a read may fetch
 * over the network) and may use threads of their own to have more in
 * flight. The server takes no lock the mounting thread holds, so a loop
 * device or a mount stacked on the file cannot deadlock with it. A
 * writable file's server runs with PR_SET_IO_FLUSHER: what writes it is
 * the kernel's writeback (a loop device), so its own allocations must not
 * wait for that writeback.
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

/* All n bytes from buf at off (off + n <= size): 0, or -errno. */
typedef int (*arc_fuse_write_fn)(void *ctx, const void *buf, size_t n,
				 uint64_t off);

struct arc_fuse_file_opts {
	const char *fsname;      /* what /proc/mounts shows: "vaultfs-ebs" */
	const char *name;        /* the file's name (one component) */
	uint64_t size;
	arc_fuse_read_fn read;
	arc_fuse_write_fn write; /* NULL: a read-only file and mount */
	void *ctx;               /* for read and write */
};

struct arc_fuse_file;

/* Mount the file system on `mnt` and start its server (the strings are
 * copied). On failure nothing is mounted. */
int arc_fuse_file_mount(const char *mnt, const struct arc_fuse_file_opts *o,
			struct arc_fuse_file **out, struct cm_err *err);

/* MNT/NAME (the file to open). */
const char *arc_fuse_file_path(const struct arc_fuse_file *f);

/*
 * Hand n bytes of a read-only file at off (off + n <= size) to the
 * kernel's page cache of the file, so that reads of them never reach the
 * server (FUSE_NOTIFY_STORE). For a source fetched in units larger than
 * the kernel reads in (an EBS block of 512 KiB read 4 KiB at a time by a
 * filesystem walk, in the walk's order): the whole unit is kept by the
 * kernel, which may reclaim it like any clean page, instead of by a
 * cache of the caller's that may drop it between two of its pieces.
 * Never blocks: the bytes are copied and stored by a thread of the file's
 * own (storing waits for the kernel's page locks, which pending reads
 * hold until the server answers them: the server must not wait for it);
 * when ARC_FUSE_STORE_MAX bytes are already waiting they are dropped (a
 * later read asks the server, as without it). Any thread.
 */
#define ARC_FUSE_STORE_MAX (16u << 20)
void arc_fuse_file_store(struct arc_fuse_file *f, uint64_t off,
			 const void *buf, size_t n);

/* Unmount (lazily when busy), stop the server and free. Never fails:
 * problems are logged. NULL is a no-op. */
void arc_fuse_file_free(struct arc_fuse_file *f);

/* After a crash: unmount `mnt` if something is mounted there, its FUSE
 * connection aborted first (threads of the dead process may still wait
 * on it: see fuse_file.c), detached lazily. 0 when nothing is mounted
 * there any more. */
int arc_fuse_unmount_stale(const char *mnt, struct cm_err *err);

/*
 * Before the state directory's lock is taken, when its holder was killed
 * but cannot finish dying: abort the FUSE connection of every vaultfs
 * file mounted under `dir` (fsname vaultfs-*), so that the threads of the
 * dead process waiting on them (see fuse_file.c) get their errors and the
 * process exits, releasing the lock. Only for a holder that is dying: a
 * live server's reads would fail. The number of connections aborted.
 */
unsigned arc_fuse_abort_under(const char *dir);

#endif
