/*
 * codec_zstd.c - zstd as independent frames (docs/archive-format.md), each
 * one slice compressed by libzstd on the slice engine's threads
 * (codec_slice.c), then the seek table of zstd's contrib seekable format at
 * the end. The only file that compresses with libzstd (but the index's
 * blocks, aindex.c).
 *
 * Each frame carries its content size and a content checksum (the
 * verifier requires one: decode_zstd.c). A context per worker is created
 * once and reused (ZSTD_compress2 resets the session, keeps the
 * parameters); with the slice size known, libzstd sizes its window to the
 * slice, so a worker needs a few MiB at the default level.
 *
 * The seek table lists every frame's compressed and decompressed size
 * (u32 each: slices are at most 64 MiB), without per-frame checksums,
 * which the frames carry themselves.
 */
#include "codec_internal.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#define ZS_LEVEL_DEFAULT 3

static void *zs_ctx_new(int level, size_t slice, struct cm_err *err)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t r;

	(void)slice;
	if (!c) {
		cm_err_set(err, ENOMEM, "zstd: cannot create a context");
		return NULL;
	}
	r = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
	if (ZSTD_isError(r)) {
		cm_err_set(err, EINVAL, "zstd: level %d: %s", level,
			   ZSTD_getErrorName(r));
		ZSTD_freeCCtx(c);
		return NULL;
	}
	return c;
}

static void zs_ctx_free(void *ctx)
{
	ZSTD_freeCCtx(ctx);
}

static size_t zs_bound(void *ctx, size_t slice)
{
	(void)ctx;
	return ZSTD_compressBound(slice);
}

static int zs_compress(void *ctx, const void *in, size_t len, uint64_t uoff,
		       void *out, size_t cap, size_t *out_len, char *msg,
		       size_t msg_len)
{
	size_t r = ZSTD_compress2(ctx, out, cap, in, len);

	(void)uoff;
	if (ZSTD_isError(r)) {
		snprintf(msg, msg_len, "compress: %s", ZSTD_getErrorName(r));
		return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ?
			       -ENOMEM : -EIO;
	}
	*out_len = r;
	return 0;
}

static int zs_finish(const struct aidx_member *m, size_t n,
		     struct arc_filter *next, struct cm_err *err)
{
	size_t len = 8 + 8 * n + ARC_ZS_SEEK_FOOTER;
	unsigned char *t = cm_xmalloc(len), *p = t;
	int rc;

	arc_put_le32(p, ARC_ZS_SEEK_MAGIC);
	arc_put_le32(p + 4, (uint32_t)(len - 8));
	p += 8;
	for (size_t i = 0; i < n; i++, p += 8) {
		arc_put_le32(p, (uint32_t)m[i].clen);
		arc_put_le32(p + 4, (uint32_t)m[i].ulen);
	}
	arc_put_le32(p, (uint32_t)n);
	p[4] = 0; /* descriptor: no checksums in the table */
	arc_put_le32(p + 5, ARC_ZS_SEEK_FOOTER_MAGIC);
	rc = arc_write(next, t, len, err);
	free(t);
	return rc;
}

static const struct arc_slice_ops zs_ops = {
	.name = "zstd",
	.ctx_new = zs_ctx_new,
	.ctx_free = zs_ctx_free,
	.bound = zs_bound,
	.compress = zs_compress,
	.finish = zs_finish,
};

struct arc_filter *arc_zstd_new(const struct arc_codec_opts *opts,
				struct arc_filter *next, struct cm_err *err)
{
	int level = opts->level < 0 ? ZS_LEVEL_DEFAULT : opts->level;

	if (level < 1 || level > ZSTD_maxCLevel()) {
		cm_err_set(err, EINVAL, "zstd: level %d is not 1..%d",
			   opts->level, ZSTD_maxCLevel());
		arc_free(next);
		return NULL;
	}
	return arc_slice_codec_new(&zs_ops, opts, level, next, err);
}
