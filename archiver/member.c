/*
 * member.c - one member at a time (member.h): its gzip header read, its
 * bytes decoded, the zstd seek table read. Used by the verifier and by
 * anything that reads an archive at random (restore, the view).
 *
 * Decoding is libdeflate's (gzip) and libzstd's one-shot API: a member is
 * small (one slice, 1 MiB of output by default) and its decoded length is
 * known from the index, so no streaming is needed. Each call allocates its
 * own decompressor (a few KiB for libdeflate, ~100 KiB for zstd, cheap
 * beside a member's decoding), which makes every function here safe on
 * any thread with no shared state.
 */
#include "member.h"
#include "codec_internal.h"

#include <errno.h>
#include <string.h>

#include <libdeflate.h>
#include <zstd.h>
#include <zstd_errors.h>

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

int arc_gz_member_parse(const void *p, size_t n, uint32_t *msize,
			uint64_t *uoff, struct cm_err *err)
{
	const unsigned char *h = p;

	if (n < 10 || h[0] != 0x1f || h[1] != 0x8b || h[2] != 8)
		return cm_err_set(err, EIO, "not a gzip member (bad header)");
	if (n < ARC_GZ_HEADER || h[3] != 0x04 || h[10] != 16 || h[11] != 0 ||
	    h[12] != 'V' || h[13] != 'F' || h[14] != 12 || h[15] != 0)
		return 0;
	*msize = get_le32(h + 16);
	*uoff = get_le64(h + 20);
	if (*msize < ARC_GZ_HEADER + ARC_GZ_TRAILER)
		return cm_err_set(err, EIO, "MSIZE %u is less than a member's "
				  "header and trailer",
				  (unsigned)*msize);
	return 1;
}

/* One of our members (VF header, 28 bytes): raw deflate between header
 * and trailer, then ISIZE and CRC-32 checked, each named when wrong. */
static int gz_decode_vf(struct libdeflate_decompressor *d,
			const unsigned char *in, size_t in_len, void *out,
			size_t out_cap, size_t *out_len, struct cm_err *err)
{
	const unsigned char *t = in + in_len - ARC_GZ_TRAILER;
	uint32_t isize = get_le32(t + 4);
	enum libdeflate_result r;
	size_t got = 0;

	if (isize > out_cap)
		return cm_err_set(err, EIO, "ISIZE mismatch (length mod 2^32): "
				  "%u bytes, more than a slice", isize);
	r = libdeflate_deflate_decompress(d, in + ARC_GZ_HEADER,
					  in_len - ARC_GZ_HEADER -
						  ARC_GZ_TRAILER,
					  out, isize, &got);
	if (r == LIBDEFLATE_SHORT_OUTPUT ||
	    r == LIBDEFLATE_INSUFFICIENT_SPACE ||
	    (r == LIBDEFLATE_SUCCESS && got != isize))
		return cm_err_set(err, EIO, "ISIZE mismatch (length mod 2^32)");
	if (r != LIBDEFLATE_SUCCESS)
		return cm_err_set(err, EIO, "corrupt deflate data");
	if (libdeflate_crc32(0, out, got) != get_le32(t))
		return cm_err_set(err, EIO, "CRC mismatch");
	*out_len = got;
	return 0;
}

static int gz_decode(const void *in, size_t in_len, void *out,
		     size_t out_cap, size_t *out_len, struct cm_err *err)
{
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	enum libdeflate_result r;
	uint32_t msize;
	uint64_t uoff;
	size_t used = 0;
	int rc;

	if (!d)
		return cm_err_set(err, ENOMEM, "gzip: cannot start a decoder");
	rc = arc_gz_member_parse(in, in_len, &msize, &uoff, err);
	if (rc == 1 && msize != in_len)
		rc = cm_err_set(err, EIO, "MSIZE %u, the member has %zu bytes",
				(unsigned)msize, in_len);
	if (rc == 1) {
		rc = gz_decode_vf(d, in, in_len, out, out_cap, out_len, err);
		goto out;
	}
	if (rc < 0)
		goto out;
	/* another tool's member: libdeflate reads its header */
	r = libdeflate_gzip_decompress_ex(d, in, in_len, out, out_cap, &used,
					  out_len);
	if (r == LIBDEFLATE_SUCCESS && used != in_len)
		rc = cm_err_set(err, EIO, "%zu bytes after the trailer",
				in_len - used);
	else if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
		rc = cm_err_set(err, EIO, "more than %zu bytes of data",
				out_cap);
	else if (r != LIBDEFLATE_SUCCESS)
		rc = cm_err_set(err, EIO, "corrupt data, or CRC or ISIZE "
				"mismatch");
out:
	libdeflate_free_decompressor(d);
	return rc;
}

static int zs_decode(const void *in, size_t in_len, void *out,
		     size_t out_cap, size_t *out_len, struct cm_err *err)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	size_t r;

	if (!d)
		return cm_err_set(err, ENOMEM, "zstd: cannot start a decoder");
	r = ZSTD_decompressDCtx(d, out, out_cap, in, in_len);
	ZSTD_freeDCtx(d);
	if (ZSTD_isError(r))
		return cm_err_set(err, EIO, "%s",
				  ZSTD_getErrorCode(r) ==
						  ZSTD_error_checksum_wrong ?
					  "checksum mismatch" :
					  ZSTD_getErrorName(r));
	*out_len = r;
	return 0;
}

int arc_member_decode(enum arc_codec c, const void *in, size_t in_len,
		      void *out, size_t out_cap, size_t *out_len,
		      struct cm_err *err)
{
	switch (c) {
	case ARC_CODEC_GZIP:
		return gz_decode(in, in_len, out, out_cap, out_len, err);
	case ARC_CODEC_ZSTD:
		return zs_decode(in, in_len, out, out_cap, out_len, err);
	case ARC_CODEC_NONE:
		if (in_len > out_cap)
			return cm_err_set(err, EIO, "member: %zu bytes, room "
					  "for %zu", in_len, out_cap);
		memcpy(out, in, in_len);
		*out_len = in_len;
		return 0;
	}
	return cm_err_set(err, EINVAL, "member: unknown codec %d", (int)c);
}

int64_t arc_zs_seek_parse(const void *tail, size_t tail_len,
			  struct aidx_member *m, size_t max,
			  size_t *table_len, struct cm_err *err)
{
	const unsigned char *t = tail, *foot, *p;
	uint64_t frames, need, coff = 0, uoff = 0;

	if (tail_len < ARC_ZS_SEEK_FOOTER)
		return cm_err_set(err, EIO, "zstd: %zu bytes: too short for a "
				  "seek table", tail_len);
	foot = t + tail_len - ARC_ZS_SEEK_FOOTER;
	if (get_le32(foot + 5) != ARC_ZS_SEEK_FOOTER_MAGIC)
		return cm_err_set(err, EIO, "zstd: no seek table (bad footer "
				  "magic)");
	if (foot[4] & 0x7c)
		return cm_err_set(err, EIO, "zstd: seek table descriptor %#x: "
				  "reserved bits set", foot[4]);
	frames = get_le32(foot);
	need = 8 + frames * ((foot[4] & 0x80) ? 12 : 8) + ARC_ZS_SEEK_FOOTER;
	*table_len = (size_t)need;
	if (need > tail_len)
		return -EAGAIN;
	p = t + tail_len - need;
	if (get_le32(p) != ARC_ZS_SEEK_MAGIC || get_le32(p + 4) != need - 8)
		return cm_err_set(err, EIO, "zstd: the seek table's skippable "
				  "frame header is wrong");
	p += 8;
	for (uint64_t i = 0; i < frames; i++) {
		uint32_t c = get_le32(p), u = get_le32(p + 4);

		if (i < max) {
			m[i].coff = coff;
			m[i].clen = c;
			m[i].uoff = uoff;
			m[i].ulen = u;
		}
		coff += c;
		uoff += u;
		p += (foot[4] & 0x80) ? 12 : 8;
	}
	return (int64_t)frames;
}
