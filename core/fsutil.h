/*
 * fsutil.h - file and directory helpers every part needs: whole writes,
 * mkdir -p, and the atomic replacement of a small file (write a temporary
 * beside it, fsync, rename, fsync the directory: after a crash the file is
 * either the old one or the new one, never a mix).
 */
#ifndef VAULTFS_FSUTIL_H
#define VAULTFS_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* write(2) until done, resuming after EINTR: 0 or -errno. */
int cm_write_all(int fd, const void *p, size_t n);
/* pwrite(2) of all n bytes at `off`, resuming after EINTR: 0 or -errno. */
int cm_pwrite_all(int fd, const void *p, size_t n, off_t off);
/* pread(2) of exactly n bytes at `off`: 0, -errno, or -EIO when the file
 * ends first. */
int cm_pread_all(int fd, void *p, size_t n, off_t off);

/* pread(2) of up to n bytes at off until done or the end of the file,
 * resuming after EINTR: 0 with *got the bytes read (< n only at the end),
 * or -errno with err set ("read: ..."; err may be NULL). */
int cm_pread_full(int fd, void *p, size_t n, off_t off, size_t *got,
		  struct cm_err *err);

/* mkdir -p with `mode` for what it creates; existing directories are
 * fine. The message names the component that failed. */
int cm_mkdirs(const char *path, mode_t mode, struct cm_err *err);

/*
 * cm_mkdirs, durable: each directory it creates is made, then the
 * directory it was created in is fsynced, so that after a crash a file
 * written (and fsynced, with its own directory) below `path` cannot be
 * lost with a directory entry on the way to it. Directories that exist
 * are not touched: only the parents of what this call created are
 * fsynced, up to the first one that existed (the store's root, say).
 */
int cm_mkdirs_durable(const char *path, mode_t mode, struct cm_err *err);

/* fsync the directory holding `path` (so a rename in it is durable). */
int cm_fsync_parent(const char *path);

/* Replace `path` with `n` bytes atomically (PATH.partial, fsync, rename,
 * fsync the directory); the partial file is removed on failure. */
int cm_write_file_atomic(const char *path, const void *p, size_t n,
			 struct cm_err *err);

#endif
