/*
 * unpack_int.h - the member decoders of the parallel reader (unpack.h),
 * in unpack_decode.c, the one file of it that includes libdeflate.h and
 * zstd.h. Not for use outside archiver/.
 */
#ifndef VAULTFS_UNPACK_INT_H
#define VAULTFS_UNPACK_INT_H

#include "unpack.h"

/* Decompressors of one codec (gzip or zstd), shared by the workers. */
struct arc_dctx_pool;
struct arc_dctx_pool *arc_dctx_pool_new(enum arc_codec codec);
void arc_dctx_pool_free(struct arc_dctx_pool *p); /* NULL is a no-op */

/* One whole member (gzip) or frame (zstd) of n bytes: *out (malloc'd,
 * *out_len bytes) on success; -EIO with err saying what is wrong (without
 * where: the caller names the member). Thread-safe. */
int arc_unit_decode(struct arc_dctx_pool *p, const void *in, size_t n,
		    void **out, size_t *out_len, struct cm_err *err);

#endif
