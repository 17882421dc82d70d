/*
 * codec_zstd.c - zstd through libzstd's streaming API, compressed on
 * libzstd's own worker threads (ZSTD_c_nbWorkers). The only file that
 * includes zstd.h.
 *
 * write() hands the caller's bytes to ZSTD_compressStream2(ZSTD_e_continue)
 * without copying them first: with workers, libzstd copies input into its
 * job buffers and returns, compressing in the background; whatever output is
 * ready comes back in our one output buffer (ZSTD_CStreamOutSize() bytes,
 * owned here) and is passed to the next filter at once, from the driving
 * thread. close() ends the frame (ZSTD_e_end, with a content checksum as the
 * zstd tool writes it) and closes the next filter.
 *
 * Threads: libzstd's workers are created, fed and joined by libzstd; this
 * file only calls it from the driving thread. Memory is bounded by
 * libzstd's job buffers, a few per worker, whatever the input size. Jobs are
 * 4 MiB rather than libzstd's default of 4 windows (8 MiB at level 3): that
 * halves the memory (about 40 MiB instead of 75 with 2 workers) for 0.1 %
 * of size.
 *
 * write_zeros() feeds zeros from a large calloc'ed buffer that is never
 * written (its pages stay the kernel's shared zero page): zstd turns runs of
 * zeros into RLE blocks at several GB/s, so nothing smarter is needed.
 *
 * abort() frees the context, which stops and joins the workers, and aborts
 * the next filter without closing it.
 */
#include "arc.h"
#include "codec_internal.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#define ZS_LEVEL_DEFAULT 3
#define ZS_ZEROS (1024 * 1024)
#define ZS_JOB_SIZE (4 * 1024 * 1024) /* default 4 windows: 8 MiB at -3 */

struct zs_codec {
	struct arc_filter filter;
	ZSTD_CCtx *cctx;        /* owned; NULL once aborted */
	unsigned char *out;     /* owned, out_cap bytes */
	size_t out_cap;
	const unsigned char *zeros; /* owned, ZS_ZEROS bytes; lazily */
};

static int zs_error(struct cm_err *err, const char *what, size_t r)
{
	return cm_err_set(err, ZSTD_getErrorCode(r) ==
			  ZSTD_error_memory_allocation ? ENOMEM : EIO,
			  "zstd: %s: %s", what, ZSTD_getErrorName(r));
}

/*
 * Feed `n` bytes (none at the end) with directive `op` until libzstd has
 * taken them all and, for ZSTD_e_end, flushed the frame's end; every output
 * goes to the next filter.
 */
static int feed(struct zs_codec *zs, const void *p, size_t n,
		ZSTD_EndDirective op, struct cm_err *err)
{
	ZSTD_inBuffer in = { p, n, 0 };
	int rc = 0;

	if (!zs->cctx)
		return cm_err_set(err, EINVAL, "zstd: stream was aborted");
	for (;;) {
		ZSTD_outBuffer out = { zs->out, zs->out_cap, 0 };
		size_t left = ZSTD_compressStream2(zs->cctx, &out, &in, op);

		if (ZSTD_isError(left)) {
			rc = zs_error(err, "compress", left);
			break;
		}
		if (out.pos) {
			rc = arc_write(zs->filter.next, zs->out, out.pos, err);
			if (rc)
				break;
		}
		if (op == ZSTD_e_end ? left == 0 : in.pos == in.size)
			break;
	}
	return rc;
}

static int zs_write(struct arc_filter *f, const void *p, size_t n,
		    struct cm_err *err)
{
	return feed(f->state, p, n, ZSTD_e_continue, err);
}

static int zs_write_zeros(struct arc_filter *f, uint64_t n,
			  struct cm_err *err)
{
	struct zs_codec *zs = f->state;
	int rc = 0;

	if (!zs->zeros)
		zs->zeros = cm_xcalloc(1, ZS_ZEROS);
	while (n && rc == 0) {
		size_t chunk = n < ZS_ZEROS ? (size_t)n : ZS_ZEROS;

		rc = feed(zs, zs->zeros, chunk, ZSTD_e_continue, err);
		n -= chunk;
	}
	return rc;
}

static int zs_close(struct arc_filter *f, struct cm_err *err)
{
	int rc = feed(f->state, NULL, 0, ZSTD_e_end, err);

	if (rc == 0)
		rc = arc_close(f->next, err);
	return rc;
}

static void zs_abort(struct arc_filter *f)
{
	struct zs_codec *zs = f->state;

	ZSTD_freeCCtx(zs->cctx);
	zs->cctx = NULL;
	arc_abort(f->next);
}

static void zs_free(struct arc_filter *f)
{
	struct zs_codec *zs;

	if (!f)
		return;
	zs = f->state;
	ZSTD_freeCCtx(zs->cctx);
	free(zs->out);
	free((void *)zs->zeros);
	arc_free(f->next);
	free(zs);
}

static const struct arc_filter_ops zs_ops = {
	.name = "zstd",
	.write = zs_write,
	.write_zeros = zs_write_zeros,
	.close = zs_close,
	.abort = zs_abort,
	.free = zs_free,
};

static int set_param(struct zs_codec *zs, ZSTD_cParameter param, int value,
		     const char *name, struct cm_err *err)
{
	size_t r = ZSTD_CCtx_setParameter(zs->cctx, param, value);

	if (ZSTD_isError(r))
		return cm_err_set(err, EINVAL, "zstd: %s %d: %s", name, value,
				  ZSTD_getErrorName(r));
	return 0;
}

struct arc_filter *arc_zstd_new(const struct arc_codec_opts *opts,
				struct arc_filter *next, struct cm_err *err)
{
	struct zs_codec *zs = NULL;
	int level = opts->level < 0 ? ZS_LEVEL_DEFAULT : opts->level;
	int rc = 0;

	if (level < 1 || level > ZSTD_maxCLevel()) {
		rc = cm_err_set(err, EINVAL, "zstd: level %d is not 1..%d",
				opts->level, ZSTD_maxCLevel());
		goto out;
	}
	zs = cm_xcalloc(1, sizeof(*zs));
	zs->filter.ops = &zs_ops;
	zs->filter.next = next;
	zs->filter.state = zs;
	zs->cctx = ZSTD_createCCtx();
	if (!zs->cctx) {
		rc = cm_err_set(err, ENOMEM, "zstd: cannot create a context");
		goto out;
	}
	rc = set_param(zs, ZSTD_c_compressionLevel, level, "level", err);
	if (rc == 0)
		rc = set_param(zs, ZSTD_c_checksumFlag, 1, "checksum", err);
	if (rc == 0)
		rc = set_param(zs, ZSTD_c_nbWorkers, (int)opts->threads,
			       "threads", err);
	if (rc == 0)
		rc = set_param(zs, ZSTD_c_jobSize, ZS_JOB_SIZE, "job size",
			       err);
	if (rc)
		goto out;
	zs->out_cap = ZSTD_CStreamOutSize();
	zs->out = cm_xmalloc(zs->out_cap);
	cm_debug("zstd: level %d, %u worker threads", level, opts->threads);
out:
	if (rc) {
		if (zs)
			zs_free(&zs->filter);
		else
			arc_free(next);
		return NULL;
	}
	return &zs->filter;
}
