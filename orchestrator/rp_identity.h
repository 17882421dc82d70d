/*
 * rp_identity.h - what a local recovery point is, and opening it so that
 * nothing else can be read in its place.
 *
 * A recovery point is queued by its name in the vault, but a name can be
 * made to point elsewhere between the scan and the archive (a symlink to
 * a block device put in its place, another file renamed over it) or
 * between the archive and the delete. So a recovery point also carries
 * its identity, taken with the scan's fstatat (no symlink followed):
 * device, inode, size, ctime and mtime in nanoseconds. The job's journal
 * record keeps it; the job checks it again when it opens the recovery
 * point (once, relative to the vault directory's descriptor, with
 * O_NOFOLLOW and O_NONBLOCK, then fstat), right before it archives (the
 * name must still lead to the inode it opened), and before it deletes.
 * The archiver is handed the open descriptor and never resolves the name.
 *
 * Sidecars (NAME.json) are read the same way: opened with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO never blocks), and they must be regular files.
 *
 * Threads: no state; any thread.
 */
#ifndef VAULTFS_ORCH_RP_IDENTITY_H
#define VAULTFS_ORCH_RP_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "err.h"

struct orch_rp_identity {
	bool known;       /* false: not recorded (a journal of an older
			     vaultfs): only the type is checked */
	uint64_t dev;
	uint64_t ino;
	uint64_t size;    /* st_size (of the directory itself for a tree) */
	int64_t ctime_ns;
	int64_t mtime_ns;
};

void orch_rp_identity_from_stat(struct orch_rp_identity *id,
				const struct stat *st);
/* Every field equal (both known). */
bool orch_rp_identity_equal(const struct orch_rp_identity *a,
			    const struct orch_rp_identity *b);
/* The same file, for "was this recovery point archived already": device
 * and inode equal where both are known (a or b NULL or not known: a
 * journal or index record of an older vaultfs, nothing to tell). The
 * one definition for the jobs in memory and the index's. */
bool orch_rp_identity_same_file(const struct orch_rp_identity *a,
				const struct orch_rp_identity *b);

/* "a symlink", "a FIFO", "a directory", ... for messages. */
const char *orch_file_kind(mode_t mode);

/*
 * Open entry `name` of the vault directory `vfd` once: O_RDONLY |
 * O_NOFOLLOW | O_NONBLOCK (cleared once it is known to be a regular file
 * or directory), then fstat. It must be a directory when `tree`, else a
 * regular file (a local vault never holds devices), and, when `want` is
 * known, have exactly that identity. `path` names it in messages. On
 * success *fd is the caller's (O_CLOEXEC). -ESTALE when it changed (the
 * message says how), -ENOENT when it is gone.
 */
int orch_rp_open(int vfd, const char *name, const char *path, bool tree,
		 const struct orch_rp_identity *want, int *fd,
		 struct cm_err *err);

/*
 * The name still leads to the inode open at `fd` (fstatat without
 * following a symlink, compared with fstat of fd: device, inode, size,
 * ctime, mtime). -ESTALE with a message naming what is there now.
 */
int orch_rp_check_name(int vfd, const char *name, const char *path, int fd,
		       struct cm_err *err);

/*
 * Read the small regular file `name` of directory `vfd` (a sidecar)
 * without following a symlink and without blocking: *text (NUL-ended,
 * the caller frees) and *len. -ENOENT when there is none; -EINVAL with
 * "not a regular file (a FIFO)" and the like; -EFBIG past `max` bytes.
 */
int orch_read_file_at(int vfd, const char *name, size_t max, char **text,
		      size_t *len, struct cm_err *err);

#endif
