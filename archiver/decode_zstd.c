/*
 * decode_zstd.c - a zstd stream decoded, frame after frame, for the
 * verifier (verify.h). With codec_zstd.c, the only file that includes
 * zstd.h: this one decompresses.
 *
 * A zstd stream is frames one after the other; skippable frames (a seek
 * table, say) may sit between them. libzstd's streaming decoder checks each
 * frame's content checksum (XXH64) when the frame carries one. A frame that
 * carries none could not be proven whole, so each frame's header descriptor
 * (the byte after the 4-byte magic number) must have the checksum flag:
 * codec_zstd.c always sets it (ZSTD_c_checksumFlag).
 *
 * The verifier reads an archive of ours (frames and a seek table) with the
 * parallel reader (unpack.h); this decoder is for the others: older
 * archives, other tools, and a seek table the reader could not use. A
 * seek table (zstd's seekable format, member.h) is kept as it goes by and,
 * at close, must list exactly the frames seen; a stream without one is
 * still read.
 *
 * Errors name the frame (from 1) and the stored byte it starts at: "zstd
 * frame 2 at byte 4194310: checksum mismatch". The stream ending inside a
 * frame is "truncated"; a stream with no frame at all is an error too.
 *
 * Threads: one, the chain's driver. Output goes through one buffer owned
 * here, to the next filter, from inside write().
 */
#include "decode_internal.h"
#include "aindex.h"
#include "member.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#define ZSTD_FRAME_MAGIC 0xFD2FB528u
#define ZSTD_SKIP_MAGIC 0x184D2A50u  /* ...5F: the low 4 bits are free */

struct unzstd {
	struct arc_filter filter;
	ZSTD_DCtx *dctx;       /* owned */
	unsigned char *out;    /* owned, out_cap bytes */
	size_t out_cap;
	uint64_t pos;          /* stored bytes consumed so far */
	uint64_t frame;        /* frames begun (skippable ones too) */
	uint64_t frame_at;     /* where the current one starts */
	unsigned char head[5]; /* the current frame's first bytes */
	size_t head_len;
	bool in_frame;
	bool failed;
	uint64_t frame_u;      /* decoded bytes of the current frame */
	uint32_t *sizes;       /* owned: (clen, ulen) of every frame */
	size_t nsizes, sizes_cap;
	unsigned char *seek;   /* owned: the seek table's bytes, as seen */
	size_t seek_len, seek_cap;
	bool seek_bad;         /* more than one, or too big */
};

#define SEEK_MAX (64u << 20)

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static bool is_seek_frame(const struct unzstd *z)
{
	return z->head_len >= 4 && le32(z->head) == ARC_ZS_SEEK_MAGIC;
}

/* Keep the seek table's bytes consumed in this step: p[0..n) came from
 * stored byte `at` on. */
static void keep_seek(struct unzstd *z, uint64_t at, const unsigned char *p,
		      size_t n)
{
	uint64_t before = at - z->frame_at; /* its bytes already passed */

	if (z->seek_bad || !n)
		return;
	if (z->seek_len == 0 && before) {
		/* the first bytes went by before the magic was known: they
		 * are in head (at most 3 of them) */
		if (before > sizeof(z->head)) {
			z->seek_bad = true;
			return;
		}
		keep_seek(z, z->frame_at, z->head, (size_t)before);
	}
	if (z->seek_len + n > SEEK_MAX) {
		z->seek_bad = true;
		return;
	}
	if (z->seek_len + n > z->seek_cap) {
		z->seek_cap = z->seek_len + n + 4096;
		z->seek = cm_xrealloc(z->seek, z->seek_cap);
	}
	memcpy(z->seek + z->seek_len, p, n);
	z->seek_len += n;
}

/* A regular frame ended: note its sizes for the table. */
static void frame_done(struct unzstd *z)
{
	if (z->nsizes + 2 > z->sizes_cap) {
		z->sizes_cap = z->sizes_cap ? 2 * z->sizes_cap : 256;
		z->sizes = cm_xrealloc(z->sizes, z->sizes_cap * sizeof(uint32_t));
	}
	z->sizes[z->nsizes++] = (uint32_t)(z->pos - z->frame_at);
	z->sizes[z->nsizes++] = (uint32_t)z->frame_u;
}

/* At close: a seek table, when there is one, lists exactly our frames. */
static int check_seek(struct unzstd *z, struct cm_err *err)
{
	size_t frames = z->nsizes / 2, table = 0;
	struct aidx_member *m;
	struct cm_err e;
	int64_t n;
	int rc = 0;

	if (!z->seek_len && !z->seek_bad)
		return 0;
	if (z->seek_bad)
		return cm_err_set(err, EIO, "zstd: more than one seek table, "
				  "or one too large");
	cm_err_clear(&e);
	m = cm_xcalloc(frames + 1, sizeof(*m));
	n = arc_zs_seek_parse(z->seek, z->seek_len, m, frames + 1, &table, &e);
	if (n < 0 || table != z->seek_len)
		rc = cm_err_set(err, EIO, "zstd seek table: %s",
				n < 0 ? e.msg : "not the skippable frame's "
						"whole content");
	else if ((size_t)n != frames)
		rc = cm_err_set(err, EIO, "zstd seek table: %lld frames, the "
				"stream has %zu", (long long)n, frames);
	for (size_t i = 0; rc == 0 && i < frames; i++) {
		if (m[i].clen != z->sizes[2 * i] ||
		    m[i].ulen != z->sizes[2 * i + 1])
			rc = cm_err_set(err, EIO, "zstd seek table: frame %zu "
					"is %llu/%llu bytes, the table says "
					"%llu/%llu", i + 1,
					(unsigned long long)z->sizes[2 * i],
					(unsigned long long)z->sizes[2 * i + 1],
					(unsigned long long)m[i].clen,
					(unsigned long long)m[i].ulen);
	}
	free(m);
	return rc;
}

static int frame_error(struct unzstd *z, const char *why, struct cm_err *err)
{
	z->failed = true;
	return cm_err_set(err, EIO, "zstd frame %llu at byte %llu: %s "
			  "(found at byte %llu)", (unsigned long long)z->frame,
			  (unsigned long long)z->frame_at, why,
			  (unsigned long long)z->pos);
}

/*
 * Look at the first bytes of a frame once five of them are known. p holds
 * the n stored bytes from z->pos on; those already copied are skipped.
 */
static int check_head(struct unzstd *z, const unsigned char *p, size_t n,
		      struct cm_err *err)
{
	uint64_t skip = z->frame_at + z->head_len - z->pos;
	size_t take = sizeof(z->head) - z->head_len;
	uint32_t magic;

	if (take == 0 || skip >= n)
		return 0;
	if (take > n - skip)
		take = n - (size_t)skip;
	memcpy(z->head + z->head_len, p + skip, take);
	z->head_len += take;
	if (z->head_len < sizeof(z->head))
		return 0;
	magic = (uint32_t)z->head[0] | (uint32_t)z->head[1] << 8 |
		(uint32_t)z->head[2] << 16 | (uint32_t)z->head[3] << 24;
	if ((magic & 0xFFFFFFF0u) == ZSTD_SKIP_MAGIC)
		return 0;
	if (magic != ZSTD_FRAME_MAGIC)
		return frame_error(z, "not a zstd frame (bad magic number)",
				   err);
	if (!(z->head[4] & 0x04))
		return frame_error(z, "the frame has no content checksum: it "
				   "cannot be verified", err);
	return 0;
}

static int unzstd_write(struct arc_filter *f, const void *p, size_t n,
			struct cm_err *err)
{
	struct unzstd *z = f->state;
	ZSTD_inBuffer in = { p, n, 0 };
	bool pending = false;
	int rc = 0;

	if (z->failed)
		return cm_err_set(err, EIO, "zstd: the stream already failed");
	while ((in.pos < in.size || pending) && rc == 0) {
		ZSTD_outBuffer out = { z->out, z->out_cap, 0 };
		size_t before = in.pos, r;

		if (!z->in_frame) {
			if (in.pos == in.size)
				break;
			z->frame++;
			z->frame_at = z->pos;
			z->head_len = 0;
			z->in_frame = true;
			if (z->seek_len)
				z->seek_bad = true; /* frames after it */
		}
		rc = check_head(z, (const unsigned char *)p + in.pos,
				in.size - in.pos, err);
		if (rc)
			break;
		r = ZSTD_decompressStream(z->dctx, &out, &in);
		if (is_seek_frame(z))
			keep_seek(z, z->pos, (const unsigned char *)p + before,
				  in.pos - before);
		z->pos += in.pos - before;
		z->frame_u += out.pos;
		if (ZSTD_isError(r)) {
			rc = frame_error(z, ZSTD_getErrorCode(r) ==
					 ZSTD_error_checksum_wrong ?
						 "checksum mismatch" :
						 ZSTD_getErrorName(r), err);
			break;
		}
		pending = out.pos == out.size;
		if (out.pos)
			rc = arc_write(f->next, z->out, out.pos, err);
		if (r == 0) {
			z->in_frame = false;
			pending = false;
			if (z->head_len >= 4 &&
			    (le32(z->head) & 0xFFFFFFF0u) != ZSTD_SKIP_MAGIC)
				frame_done(z);
			z->frame_u = 0;
		} else if (!pending && in.pos == before) {
			break; /* wants more input */
		}
	}
	return rc;
}

static int unzstd_close(struct arc_filter *f, struct cm_err *err)
{
	struct unzstd *z = f->state;

	if (z->failed)
		return cm_err_set(err, EIO, "zstd: the stream already failed");
	if (z->frame == 0)
		return cm_err_set(err, EIO, "zstd: no frame: the stream is "
				  "empty");
	if (z->in_frame)
		return cm_err_set(err, EIO, "zstd frame %llu at byte %llu: "
				  "truncated at byte %llu",
				  (unsigned long long)z->frame,
				  (unsigned long long)z->frame_at,
				  (unsigned long long)z->pos);
	if (check_seek(z, err)) {
		z->failed = true;
		return -EIO;
	}
	return arc_close(f->next, err);
}

static void unzstd_abort(struct arc_filter *f)
{
	arc_abort(f->next);
}

static void unzstd_free(struct arc_filter *f)
{
	struct unzstd *z = f->state;

	arc_free(f->next);
	ZSTD_freeDCtx(z->dctx);
	free(z->out);
	free(z->sizes);
	free(z->seek);
	free(z);
}

static const struct arc_filter_ops unzstd_ops = {
	.name = "unzstd",
	.write = unzstd_write,
	.close = unzstd_close,
	.abort = unzstd_abort,
	.free = unzstd_free,
};

struct arc_filter *arc_unzstd_new(struct arc_filter *next,
				  const uint64_t **units, struct cm_err *err)
{
	struct unzstd *z = cm_xcalloc(1, sizeof(*z));

	z->filter.ops = &unzstd_ops;
	z->filter.next = next;
	z->filter.state = z;
	z->dctx = ZSTD_createDCtx();
	if (!z->dctx) {
		cm_err_set(err, ENOMEM, "zstd: cannot start a decoder");
		unzstd_free(&z->filter);
		return NULL;
	}
	z->out_cap = ZSTD_DStreamOutSize();
	z->out = cm_xmalloc(z->out_cap);
	*units = &z->frame;
	return &z->filter;
}
