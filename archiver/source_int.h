/*
 * source_int.h - helpers shared by the source modules (stats.c, tar.c,
 * raw.c, auto.c); not part of the archiver's API.
 */
#ifndef VAULTFS_SOURCE_INT_H
#define VAULTFS_SOURCE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

/* Reads are this large (raw devices, file data). */
#define ARC_READ_SIZE (1024 * 1024)
/* All-zero detection works on blocks of this size within a read. */
#define ARC_ZERO_BLOCK (64 * 1024)

/* A heap copy of `s` fit for logs and JSON: valid UTF-8 is kept; control
 * characters and bytes that are not UTF-8 become "\xNN", '\' becomes "\\".
 * The caller frees it. */
char *arc_printable(const char *s);

/* Whether n bytes at p are all zero. */
bool arc_is_zero(const void *p, size_t n);

/* Report progress if enough time has passed since the last report (or
 * `force`). opts may be NULL. */
void arc_progress(const struct arc_source_opts *opts, struct arc_stats *s,
		  bool force);

/* Test-only: VAULTFS_TEST_HOOK_READ=NAME:COMMAND runs COMMAND (and waits)
 * when `name` is NAME or ends in /NAME; the sources call it after the
 * first read of a file's data (docs/orchestrator.md). */
void arc_test_hook_read(const char *name);

/* -ECANCELED with the message set, for when arc_source_cancelled(). */
int arc_cancel_error(struct cm_err *err);

/*
 * Where raw bytes go: straight to a chain (arc_source_raw) or into a tar
 * entry (arc_tar_add_raw). `zeros` receives runs of zero bytes, which a
 * chain compresses once.
 */
struct arc_raw_out {
	int (*data)(void *ctx, const void *p, size_t n, struct cm_err *err);
	int (*zeros)(void *ctx, uint64_t n, struct cm_err *err);
	void *ctx;
};

/*
 * Stream `size` bytes of `fd` from `offset` into `out`: reads of
 * ARC_READ_SIZE; holes skipped with SEEK_DATA/SEEK_HOLE when `fd` is a
 * regular file; all-zero blocks sent as zeros. Counts stats->bytes_read
 * (not bytes_zero: `out` knows what reaches the chain), reports progress,
 * honours cancellation. A read error or
 * a device that ends early fails naming `name` and the offset.
 */
int arc_raw_stream(int fd, const char *name, uint64_t offset, uint64_t size,
		   const struct arc_raw_out *out,
		   const struct arc_source_opts *opts, struct arc_stats *stats,
		   struct cm_err *err);

/* The size of a block device or regular file; -EINVAL for anything else. */
int arc_fd_size(int fd, const char *name, bool *is_file, uint64_t *size,
		struct cm_err *err);

#endif
