/*
 * decode_gzip.c - a gzip stream decoded, member after member, for the
 * verifier (verify.h), when the archive is not written in members of ours:
 * archives from before, or from other tools (one member, or several
 * without the VF subfield; RFC 1952 2.2: `cat a.gz b.gz` is one). Archives
 * of ours (docs/archive-format.md) go through the parallel reader
 * (unpack.h) instead, which cuts them by MSIZE and checks each UOFF.
 *
 * zlib's streaming inflater, member after member, each with its header,
 * CRC-32 and ISIZE checked, as nothing bounds such a member's size. This
 * is the one place where zlib remains.
 *
 * Bytes after the last member that are not a member (a trailer of zeros,
 * say) are an error: an archive holds members only. Errors name the
 * member (from 1) and the stored byte it starts at: "gzip member 3 at
 * byte 1048601: CRC mismatch". The stream ending inside a member is
 * "truncated"; a stream with no member at all is an error too.
 *
 * Threads: one, the chain's driver. Output goes through a buffer owned
 * here, to the next filter, from inside write().
 */
#include "decode_internal.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define GUNZ_OUT (256 * 1024)

struct gunz {
	struct arc_filter filter;
	uint64_t pos;            /* stored bytes consumed so far */
	uint64_t member;         /* members begun */
	uint64_t member_at;      /* where the current one starts */
	bool failed;
	unsigned char *out;      /* owned, GUNZ_OUT bytes */
	z_stream zs;
	bool zs_init;
	bool in_member;
};

static int member_error(struct gunz *g, int zrc, struct cm_err *err)
{
	const char *why = g->zs.msg ? g->zs.msg : "corrupt data";

	g->failed = true;
	if (zrc == Z_MEM_ERROR)
		return cm_err_set(err, ENOMEM, "gzip: out of memory");
	if (!strcmp(why, "incorrect data check"))
		why = "CRC mismatch";
	else if (!strcmp(why, "incorrect length check"))
		why = "ISIZE mismatch (length mod 2^32)";
	else if (!strcmp(why, "incorrect header check") ||
		 !strcmp(why, "unknown compression method"))
		why = "not a gzip member (bad header)";
	else if (zrc == Z_NEED_DICT)
		why = "needs a dictionary";
	return cm_err_set(err, EIO, "gzip member %llu at byte %llu: %s "
			  "(found at byte %llu)", (unsigned long long)g->member,
			  (unsigned long long)g->member_at, why,
			  (unsigned long long)g->pos);
}

static int stream_write(struct gunz *g, const void *p, size_t n,
			struct cm_err *err)
{
	bool pending = false;
	int rc = 0;

	g->zs.next_in = (Bytef *)(uintptr_t)p;
	/* go on while input is left, or the last call filled the buffer */
	while ((n || pending) && rc == 0) {
		uInt chunk = n > (1u << 30) ? 1u << 30 : (uInt)n;
		int zrc;

		if (!g->in_member) {
			if (!n)
				break;
			g->member++;
			g->member_at = g->pos;
			g->in_member = true;
			if (inflateReset(&g->zs) != Z_OK)
				return member_error(g, Z_STREAM_ERROR, err);
		}
		g->zs.avail_in = chunk;
		g->zs.next_out = g->out;
		g->zs.avail_out = GUNZ_OUT;
		zrc = inflate(&g->zs, Z_NO_FLUSH);
		g->pos += chunk - g->zs.avail_in;
		n -= chunk - g->zs.avail_in;
		if (zrc == Z_BUF_ERROR && g->zs.avail_out == GUNZ_OUT)
			break; /* nothing in, nothing out: wants input */
		if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR)
			return member_error(g, zrc, err);
		pending = g->zs.avail_out == 0;
		if (GUNZ_OUT - g->zs.avail_out)
			rc = arc_write(g->filter.next, g->out,
				       GUNZ_OUT - g->zs.avail_out, err);
		if (zrc == Z_STREAM_END) {
			g->in_member = false;
			pending = false;
		}
	}
	return rc;
}

static int gunz_write(struct arc_filter *f, const void *p, size_t n,
		      struct cm_err *err)
{
	struct gunz *g = f->state;

	if (g->failed)
		return cm_err_set(err, EIO, "gzip: the stream already failed");
	return stream_write(g, p, n, err);
}

static int gunz_close(struct arc_filter *f, struct cm_err *err)
{
	struct gunz *g = f->state;

	if (g->failed)
		return cm_err_set(err, EIO, "gzip: the stream already failed");
	if (g->member == 0)
		return cm_err_set(err, EIO, "gzip: no member: the stream is "
				  "empty");
	if (g->in_member)
		return cm_err_set(err, EIO, "gzip member %llu at byte %llu: "
				  "truncated at byte %llu",
				  (unsigned long long)g->member,
				  (unsigned long long)g->member_at,
				  (unsigned long long)g->pos);
	return arc_close(f->next, err);
}

static void gunz_abort(struct arc_filter *f)
{
	arc_abort(f->next);
}

static void gunz_free(struct arc_filter *f)
{
	struct gunz *g = f->state;

	arc_free(f->next);
	if (g->zs_init)
		inflateEnd(&g->zs);
	free(g->out);
	free(g);
}

static const struct arc_filter_ops gunz_ops = {
	.name = "gunzip",
	.write = gunz_write,
	.close = gunz_close,
	.abort = gunz_abort,
	.free = gunz_free,
};

struct arc_filter *arc_gunzip_new(struct arc_filter *next,
				  const uint64_t **units, struct cm_err *err)
{
	struct gunz *g = cm_xcalloc(1, sizeof(*g));

	g->filter.ops = &gunz_ops;
	g->filter.next = next;
	g->filter.state = g;
	g->out = cm_xmalloc(GUNZ_OUT);
	/* 16 + 15: the gzip wrapper, a 32 KiB window */
	if (inflateInit2(&g->zs, 16 + 15) != Z_OK) {
		cm_err_set(err, ENOMEM, "gzip: cannot start a decoder");
		gunz_free(&g->filter);
		return NULL;
	}
	g->zs_init = true;
	*units = &g->member;
	return &g->filter;
}
