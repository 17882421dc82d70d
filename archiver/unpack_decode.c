/*
 * unpack_decode.c - one member decoded whole, in memory, for the parallel
 * reader (unpack.h): a gzip member with libdeflate, a zstd frame with
 * libzstd's one-shot decoder. The door for libdeflate's decompression;
 * the streaming decoders of old single-stream archives stay zlib's and
 * libzstd's (decode_gzip.c, decode_zstd.c).
 *
 * A member's decoded size is known before it is decoded (gzip: ISIZE, the
 * last 4 bytes; zstd: the frame's content size, which the writer always
 * puts in the frame header), so the output is one buffer of that size,
 * and a member that decodes to more or less is an error.
 *
 * The decompressors are reused: a stack of them per unpack, taken and
 * given back by the workers (a libzstd context costs ~100 KB to make).
 */
#include "unpack_int.h"
#include "mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zstd.h>
#include <zstd_errors.h>

struct arc_dctx_pool {
	pthread_mutex_t lock;
	enum arc_codec codec;
	void **free;
	size_t n, cap;
};

struct arc_dctx_pool *arc_dctx_pool_new(enum arc_codec codec)
{
	struct arc_dctx_pool *p = cm_xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	p->codec = codec;
	return p;
}

static void dctx_free(enum arc_codec codec, void *d)
{
	if (codec == ARC_CODEC_GZIP)
		libdeflate_free_decompressor(d);
	else if (codec == ARC_CODEC_ZSTD)
		ZSTD_freeDCtx(d);
}

void arc_dctx_pool_free(struct arc_dctx_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		dctx_free(p->codec, p->free[i]);
	free(p->free);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void *dctx_take(struct arc_dctx_pool *p)
{
	void *d = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->n)
		d = p->free[--p->n];
	pthread_mutex_unlock(&p->lock);
	if (d)
		return d;
	if (p->codec == ARC_CODEC_GZIP)
		d = libdeflate_alloc_decompressor();
	else
		d = ZSTD_createDCtx();
	if (!d)
		abort(); /* out of memory, as cm_xmalloc does (mem.h) */
	return d;
}

static void dctx_give(struct arc_dctx_pool *p, void *d)
{
	pthread_mutex_lock(&p->lock);
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->free = cm_xrealloc(p->free, p->cap * sizeof(*p->free));
	}
	p->free[p->n++] = d;
	pthread_mutex_unlock(&p->lock);
}

static uint32_t le32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

static int gz_decode(struct arc_dctx_pool *p, const unsigned char *in,
		     size_t n, unsigned char **out, size_t *out_len,
		     struct cm_err *err)
{
	size_t isize, got_in = 0, got_out = 0;
	enum libdeflate_result r;
	void *d;

	if (n < 18)
		return cm_err_set(err, EIO, "truncated (%zu bytes)", n);
	isize = le32(in + n - 4);
	if (isize > ARC_UNIT_MAX)
		return cm_err_set(err, EIO, "ISIZE %zu is over the %u MiB a "
				  "member may hold", isize, ARC_UNIT_MAX >> 20);
	*out = cm_xmalloc(isize ? isize : 1);
	d = dctx_take(p);
	r = libdeflate_gzip_decompress_ex(d, in, n, *out, isize, &got_in,
					  &got_out);
	dctx_give(p, d);
	if (r == LIBDEFLATE_SUCCESS && got_in != n)
		return cm_err_set(err, EIO, "the member ends at byte %zu of "
				  "its %zu", got_in, n);
	if (r == LIBDEFLATE_SUCCESS && got_out != isize)
		return cm_err_set(err, EIO, "ISIZE mismatch (%zu decoded, "
				  "ISIZE %zu)", got_out, isize);
	if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
		return cm_err_set(err, EIO, "ISIZE mismatch (decodes to more "
				  "than ISIZE %zu)", isize);
	if (r != LIBDEFLATE_SUCCESS)
		/* libdeflate checks the CRC-32 with the data: bad data and
		 * a bad CRC are one answer */
		return cm_err_set(err, EIO, "corrupt data or CRC mismatch");
	*out_len = isize;
	return 0;
}

static int zstd_decode(struct arc_dctx_pool *p, const unsigned char *in,
		       size_t n, unsigned char **out, size_t *out_len,
		       struct cm_err *err)
{
	unsigned long long size = ZSTD_getFrameContentSize(in, n);
	size_t r;
	void *d;

	if (size == ZSTD_CONTENTSIZE_ERROR)
		return cm_err_set(err, EIO, "not a zstd frame");
	if (size == ZSTD_CONTENTSIZE_UNKNOWN)
		return cm_err_set(err, EIO, "the frame does not say its "
				  "content size");
	if (size > ARC_UNIT_MAX)
		return cm_err_set(err, EIO, "content size %llu is over the "
				  "%u MiB a frame may hold", size,
				  ARC_UNIT_MAX >> 20);
	*out = cm_xmalloc(size ? size : 1);
	d = dctx_take(p);
	r = ZSTD_decompressDCtx(d, *out, size, in, n);
	dctx_give(p, d);
	if (ZSTD_isError(r))
		return cm_err_set(err, EIO, "%s",
				  ZSTD_getErrorCode(r) ==
						  ZSTD_error_checksum_wrong ?
					  "checksum mismatch" :
					  ZSTD_getErrorName(r));
	if (r != size)
		return cm_err_set(err, EIO, "decodes to %zu bytes, the frame "
				  "says %llu", r, size);
	*out_len = size;
	return 0;
}

int arc_unit_decode(struct arc_dctx_pool *p, const void *in, size_t n,
		    void **out, size_t *out_len, struct cm_err *err)
{
	unsigned char *o = NULL;
	int rc;

	if (p->codec == ARC_CODEC_GZIP)
		rc = gz_decode(p, in, n, &o, out_len, err);
	else
		rc = zstd_decode(p, in, n, &o, out_len, err);
	if (rc) {
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}
