/*
 * decode_gzip.c - a gzip stream decoded, member after member, for the
 * verifier (verify.h). Two ways, chosen by the first member's header:
 *
 * Our members (docs/archive-format.md: the VF subfield, MSIZE and UOFF):
 * each member is gathered whole (MSIZE bytes: one slice, ~1 MiB) and
 * decoded at once by libdeflate (member.c), its ISIZE and CRC-32 checked,
 * its UOFF checked against the bytes decoded before it. Every later member
 * must be one of ours too. Each member is reported to the member hook
 * (decode_internal.h) with its stored and decoded offsets and lengths: the
 * verifier rebuilds the index's member table from them.
 *
 * Any other gzip (archives from before, or from other tools: one member,
 * or several without VF): zlib's streaming inflater, member after member
 * (RFC 1952 2.2; `cat a.gz b.gz` is one), each with its header, CRC-32 and
 * ISIZE checked, as nothing bounds such a member's size. This is the one
 * place where zlib remains.
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
#include "member.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define GUNZ_OUT (256 * 1024)
/* the largest member of ours: a slice that did not compress at all */
#define GUNZ_MEMBER_MAX (ARC_SLICE_MAX + ARC_SLICE_MAX / 64 + 4096)

enum gunz_mode {
	G_START,     /* gathering the first member's header */
	G_MEMBERS,   /* ours: whole members, libdeflate */
	G_STREAM,    /* any gzip: zlib streaming */
};

struct gunz {
	struct arc_filter filter;
	const struct arc_member_hook *hook;  /* borrowed; may be NULL */
	enum gunz_mode mode;
	uint64_t pos;            /* stored bytes consumed so far */
	uint64_t member;         /* members begun */
	uint64_t member_at;      /* where the current one starts */
	bool failed;
	/* G_START and G_MEMBERS */
	unsigned char *in;       /* the current member's bytes so far */
	size_t in_len, in_cap;
	uint32_t msize;          /* 0: its header is not read yet */
	unsigned char *out;      /* owned, out_cap bytes */
	size_t out_cap;
	uint64_t upos;           /* decoded bytes so far */
	/* G_STREAM */
	z_stream zs;
	bool zs_init;
	bool in_member;
};

static int fail(struct gunz *g, struct cm_err *err, const char *why)
{
	g->failed = true;
	return cm_err_set(err, EIO, "gzip member %llu at byte %llu: %s",
			  (unsigned long long)g->member,
			  (unsigned long long)g->member_at, why);
}

/* ---- any gzip: zlib, streaming ---- */

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

/* Leave G_START for zlib, with the bytes gathered so far. */
static int to_stream(struct gunz *g, struct cm_err *err)
{
	size_t n = g->in_len;

	g->mode = G_STREAM;
	g->in_len = 0;
	/* 16 + 15: the gzip wrapper, a 32 KiB window */
	if (inflateInit2(&g->zs, 16 + 15) != Z_OK)
		return cm_err_set(err, ENOMEM, "gzip: cannot start a decoder");
	g->zs_init = true;
	return n ? stream_write(g, g->in, n, err) : 0;
}

/* ---- ours: whole members ---- */

static int member_done(struct gunz *g, struct cm_err *err)
{
	struct aidx_member m;
	struct cm_err e;
	uint64_t uoff;
	uint32_t msize;
	size_t got = 0;
	int rc;

	cm_err_clear(&e);
	rc = arc_gz_member_parse(g->in, g->in_len, &msize, &uoff, &e);
	if (rc == 1 && uoff != g->upos) {
		char why[128];

		snprintf(why, sizeof(why), "UOFF says %llu, the member starts "
			 "at byte %llu of the data", (unsigned long long)uoff,
			 (unsigned long long)g->upos);
		return fail(g, err, why);
	}
	/* room for what ISIZE promises (a member of ours is a slice) */
	got = (size_t)(g->in[g->in_len - 4] | g->in[g->in_len - 3] << 8 |
		       g->in[g->in_len - 2] << 16 |
		       (uint32_t)g->in[g->in_len - 1] << 24);
	if (got > g->out_cap && got <= ARC_SLICE_MAX) {
		g->out_cap = got;
		g->out = cm_xrealloc(g->out, g->out_cap);
	}
	got = 0;
	rc = arc_member_decode(ARC_CODEC_GZIP, g->in, g->in_len, g->out,
			       g->out_cap, &got, &e);
	if (rc)
		return fail(g, err, e.msg);
	rc = arc_write(g->filter.next, g->out, got, err);
	if (rc)
		return rc;
	m.coff = g->member_at;
	m.clen = g->in_len;
	m.uoff = g->upos;
	m.ulen = got;
	if (g->hook && g->hook->fn)
		g->hook->fn(g->hook->ctx, &m);
	g->upos += got;
	g->in_len = 0;
	g->msize = 0;
	return 0;
}

/* The current member's header is gathered: its MSIZE, or an error. */
static int member_header(struct gunz *g, struct cm_err *err)
{
	struct cm_err e;
	uint64_t uoff;
	int rc;

	cm_err_clear(&e);
	rc = arc_gz_member_parse(g->in, g->in_len, &g->msize, &uoff, &e);
	if (rc < 0)
		return fail(g, err, "not a gzip member (bad header)");
	if (rc == 0)
		return fail(g, err, "no VF subfield, unlike the members "
			    "before it");
	if (g->msize > GUNZ_MEMBER_MAX)
		return fail(g, err, "MSIZE is more than a member can be");
	if (g->msize < ARC_GZ_HEADER + ARC_GZ_TRAILER)
		return fail(g, err, e.msg);
	if (g->in_cap < g->msize) {
		g->in_cap = g->msize;
		g->in = cm_xrealloc(g->in, g->in_cap);
	}
	return 0;
}

static int members_write(struct gunz *g, const unsigned char *p, size_t n,
			 struct cm_err *err)
{
	int rc = 0;

	while (n && rc == 0) {
		size_t want = g->msize ? g->msize : ARC_GZ_HEADER;
		size_t take = want - g->in_len < n ? want - g->in_len : n;

		if (g->in_len == 0) {
			g->member++;
			g->member_at = g->pos;
		}
		memcpy(g->in + g->in_len, p, take);
		g->in_len += take;
		g->pos += take;
		p += take;
		n -= take;
		/* a bad magic is told at once, not 28 bytes later */
		if (!g->msize && g->in_len >= 3 && g->in_len < ARC_GZ_HEADER &&
		    memcmp(g->in, "\x1f\x8b\x08", 3))
			return fail(g, err, "not a gzip member (bad header)");
		if (g->in_len < want)
			break;
		rc = g->msize ? member_done(g, err) : member_header(g, err);
	}
	return rc;
}

static int gunz_write(struct arc_filter *f, const void *p, size_t n,
		      struct cm_err *err)
{
	struct gunz *g = f->state;
	const unsigned char *c = p;
	int rc;

	if (g->failed)
		return cm_err_set(err, EIO, "gzip: the stream already failed");
	if (g->mode == G_START) {
		size_t take = ARC_GZ_HEADER - g->in_len;
		uint32_t msize;
		uint64_t uoff;
		struct cm_err e;

		if (take > n)
			take = n;
		memcpy(g->in + g->in_len, c, take);
		g->in_len += take;
		c += take;
		n -= take;
		if (g->in_len < ARC_GZ_HEADER)
			return 0;
		if (arc_gz_member_parse(g->in, g->in_len, &msize, &uoff,
					&e) == 1) {
			/* ours: replay the header through the member path */
			unsigned char h[ARC_GZ_HEADER];

			memcpy(h, g->in, sizeof(h));
			g->mode = G_MEMBERS;
			g->in_len = 0;
			rc = members_write(g, h, sizeof(h), err);
		} else {
			rc = to_stream(g, err);
		}
		if (rc)
			return rc;
	}
	if (g->mode == G_MEMBERS)
		return members_write(g, c, n, err);
	return stream_write(g, c, n, err);
}

static int gunz_close(struct arc_filter *f, struct cm_err *err)
{
	struct gunz *g = f->state;
	int rc;

	if (g->failed)
		return cm_err_set(err, EIO, "gzip: the stream already failed");
	if (g->mode == G_START) {
		rc = to_stream(g, err);
		if (rc)
			return rc;
	}
	if (g->member == 0)
		return cm_err_set(err, EIO, "gzip: no member: the stream is "
				  "empty");
	if ((g->mode == G_STREAM && g->in_member) ||
	    (g->mode == G_MEMBERS && g->in_len))
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
	free(g->in);
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
				  const struct arc_member_hook *hook,
				  const uint64_t **units, struct cm_err *err)
{
	struct gunz *g = cm_xcalloc(1, sizeof(*g));

	(void)err;
	g->filter.ops = &gunz_ops;
	g->filter.next = next;
	g->filter.state = g;
	g->hook = hook;
	g->in_cap = ARC_GZ_HEADER;
	g->in = cm_xmalloc(g->in_cap);
	/* grown to a member's ISIZE (one slice) when it needs more */
	g->out_cap = GUNZ_OUT;
	g->out = cm_xmalloc(g->out_cap);
	*units = &g->member;
	return &g->filter;
}
