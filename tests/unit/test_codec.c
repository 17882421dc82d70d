/*
 * test_codec.c - the codecs (archiver/codec*.c) as filters: a capture sink
 * collects their output in memory, which is then decompressed with zlib's
 * inflate (gzip) or libzstd (zstd) and compared with the input, and checked
 * by the real `gzip -t`, `pigz -t` and `zstd -t` (missing tools fail the
 * test: scripts/setup installs them).
 *
 * gzip output is walked member by member (docs/archive-format.md): each
 * member's VF subfield must give its size and the stream offset of its
 * data, and each member must inflate alone; zstd output must end with a
 * seek table that lists exactly the frames found by libzstd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "archiver/arc.h"
#include "core/buf.h"
#include "core/err.h"

#include "archiver/codec_internal.h"
#include "archiver/member.h"

/* ---- a capture sink ---- */

struct capture {
	struct cm_buf out;
	size_t fail_after;   /* 0: never; else writes past this many fail */
	int writes;
	bool closed;
	bool aborted;
	bool freed;
};

static int cap_write(struct arc_filter *f, const void *p, size_t n,
		     struct cm_err *err)
{
	struct capture *c = f->state;

	c->writes++;
	if (c->fail_after && c->out.len + n > c->fail_after)
		return cm_err_set(err, EIO, "capture: disk on fire");
	assert_int_equal(cm_buf_append(&c->out, p, n), 0);
	return 0;
}

static int cap_close(struct arc_filter *f, struct cm_err *err)
{
	struct capture *c = f->state;

	assert_false(c->closed);
	c->closed = true;
	return 0;
}

static void cap_abort(struct arc_filter *f)
{
	struct capture *c = f->state;

	c->aborted = true;
}

static void cap_free(struct arc_filter *f)
{
	struct capture *c = f->state;

	c->freed = true;
	free(f);
}

static const struct arc_filter_ops cap_ops = {
	.name = "capture",
	.write = cap_write,
	.close = cap_close,
	.abort = cap_abort,
	.free = cap_free,
};

static struct arc_filter *cap_new(struct capture *c)
{
	struct arc_filter *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memset(c, 0, sizeof(*c));
	cm_buf_init(&c->out, 0);
	f->ops = &cap_ops;
	f->state = c;
	return f;
}

/* ---- decoders ---- */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/*
 * Walk the members by MSIZE, inflating each one alone with zlib; each
 * must begin at the stream offset its UOFF says. Returns the members.
 */
static size_t gunzip(const struct cm_buf *z, struct cm_buf *out)
{
	const unsigned char *p = (const unsigned char *)z->data;
	size_t at = 0, members = 0;

	while (at < z->len || members == 0) {
		unsigned char chunk[64 * 1024];
		z_stream s = { 0 };
		uint32_t msize;
		uint64_t uoff;
		int zrc;

		assert_true(z->len - at >= ARC_GZ_HEADER);
		assert_memory_equal(p + at, "\x1f\x8b\x08\x04", 4);
		assert_memory_equal(p + at + 10, "\x10\x00VF\x0c\x00", 6);
		msize = le32(p + at + 16);
		uoff = le64(p + at + 20);
		assert_int_equal(uoff, out->len);
		assert_true(msize <= z->len - at);
		assert_int_equal(inflateInit2(&s, 15 + 16), Z_OK);
		s.next_in = (unsigned char *)p + at;
		s.avail_in = msize;
		do {
			s.next_out = chunk;
			s.avail_out = sizeof(chunk);
			zrc = inflate(&s, Z_NO_FLUSH);
			if (zrc != Z_OK && zrc != Z_STREAM_END)
				fail_msg("inflate: member %zu: %d %s", members,
					 zrc, s.msg ? s.msg : "");
			assert_int_equal(cm_buf_append(out, chunk,
						       sizeof(chunk) -
							       s.avail_out), 0);
		} while (zrc != Z_STREAM_END);
		assert_int_equal(s.avail_in, 0); /* MSIZE is the member */
		inflateEnd(&s);
		at += msize;
		members++;
	}
	return members;
}

/* Frame by frame; then the seek table must list those very frames. */
static size_t unzstd(const struct cm_buf *z, struct cm_buf *out)
{
	const unsigned char *p = (const unsigned char *)z->data;
	struct aidx_member *m;
	size_t at = 0, frames = 0, table = 0;
	struct cm_err err;
	int64_t n;

	cm_err_clear(&err);
	m = calloc(z->len / 8 + 1, sizeof(*m));
	assert_non_null(m);
	n = arc_zs_seek_parse(p, z->len, m, z->len / 8 + 1, &table, &err);
	if (n < 0)
		fail_msg("seek table: %s", err.msg);
	assert_true(n >= 1);
	while (at < z->len - table) {
		size_t c = ZSTD_findFrameCompressedSize(p + at, z->len - at);
		unsigned long long u = ZSTD_getFrameContentSize(p + at, c);
		size_t r;

		assert_false(ZSTD_isError(c));
		assert_true(u != ZSTD_CONTENTSIZE_UNKNOWN &&
			    u != ZSTD_CONTENTSIZE_ERROR);
		assert_true(frames < (size_t)n);
		assert_int_equal(m[frames].coff, at);
		assert_int_equal(m[frames].clen, c);
		assert_int_equal(m[frames].uoff, out->len);
		assert_int_equal(m[frames].ulen, u);
		assert_int_equal(cm_buf_reserve(out, (size_t)u + 1), 0);
		r = ZSTD_decompress(out->data + out->len, (size_t)u + 1,
				    p + at, c);
		if (ZSTD_isError(r))
			fail_msg("zstd: frame %zu: %s", frames,
				 ZSTD_getErrorName(r));
		assert_int_equal(r, u);
		out->len += r;
		at += c;
		frames++;
	}
	assert_int_equal(frames, (size_t)n);
	free(m);
	return frames;
}

/* Run `tool` -t on the bytes; fails (does not skip) without the tool. */
static void tool_check(const char *tool, const struct cm_buf *z)
{
	char path[] = "/tmp/vaultfs-test-codec-XXXXXX";
	char cmd[256];
	int fd = mkstemp(path);
	int st;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, z->data, z->len), (ssize_t)z->len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s -t < %s", tool, path);
	st = system(cmd);
	unlink(path);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("'%s' failed (status %d): is %s installed?", cmd, st,
			 tool);
}

/* ---- input ---- */

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Text-like bytes that compress to about a third. */
static void fill_text(unsigned char *p, size_t n)
{
	static const char *const words[] = {
		"archive ", "vault ", "snapshot ", "backup ", "gzip ",
		"block ", "deflate ", "the ", "of ", "zero ", "\n", "S3 ",
	};

	for (size_t i = 0; i < n;) {
		uint64_t r = next_rand();
		const char *w = words[r % 12];

		if ((r >> 8) % 5 == 0) {
			p[i++] = (unsigned char)(r >> 16);
			continue;
		}
		for (; *w && i < n; w++)
			p[i++] = (unsigned char)*w;
	}
}

static void fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(next_rand() >> 24);
}

/* ---- a run: a chain of codec -> capture, fed by a script ---- */

struct run {
	struct capture cap;
	struct arc_filter *f;
	struct cm_buf in;     /* what went in, zeros included */
	struct cm_err err;
	enum arc_codec codec;
	size_t members;       /* after run_finish: members or frames */
};

static void run_start(struct run *r, enum arc_codec codec, int level,
		      unsigned threads, size_t block_size)
{
	struct arc_codec_opts o = {
		.codec = codec,
		.level = level,
		.threads = threads,
		.block_size = block_size,
	};

	memset(r, 0, sizeof(*r));
	r->codec = codec;
	cm_buf_init(&r->in, 0);
	cm_err_clear(&r->err);
	r->f = arc_codec_new(&o, cap_new(&r->cap), &r->err);
	if (!r->f)
		fail_msg("arc_codec_new: %s", r->err.msg);
}

static void run_write(struct run *r, const void *p, size_t n)
{
	int rc = arc_write(r->f, p, n, &r->err);

	if (rc)
		fail_msg("write: %d %s", rc, r->err.msg);
	assert_int_equal(cm_buf_append(&r->in, p, n), 0);
}

static void run_zeros(struct run *r, uint64_t n)
{
	int rc = arc_write_zeros(r->f, n, &r->err);

	if (rc)
		fail_msg("write_zeros: %d %s", rc, r->err.msg);
	assert_int_equal(cm_buf_reserve(&r->in, (size_t)n), 0);
	memset(r->in.data + r->in.len, 0, (size_t)n);
	r->in.len += (size_t)n;
	r->in.data[r->in.len] = '\0';
}

/* Close, decode, compare; optionally run the command-line tools. */
static void run_finish(struct run *r, bool tools)
{
	struct cm_buf dec;
	int rc = arc_close(r->f, &r->err);

	if (rc)
		fail_msg("close: %d %s", rc, r->err.msg);
	assert_true(r->cap.closed);
	assert_false(r->cap.aborted);
	assert_int_equal(r->f->bytes_in, r->in.len);
	assert_int_equal(r->f->next->bytes_in, r->cap.out.len);

	cm_buf_init(&dec, 0);
	if (r->codec == ARC_CODEC_GZIP)
		r->members = gunzip(&r->cap.out, &dec);
	else if (r->codec == ARC_CODEC_ZSTD)
		r->members = unzstd(&r->cap.out, &dec);
	else
		assert_int_equal(cm_buf_append(&dec, r->cap.out.data,
					       r->cap.out.len), 0);
	assert_int_equal(dec.len, r->in.len);
	assert_true(dec.len == 0 ||
		    memcmp(dec.data, r->in.data, dec.len) == 0);
	cm_buf_release(&dec);

	if (tools && r->codec == ARC_CODEC_GZIP) {
		tool_check("gzip", &r->cap.out);
		tool_check("pigz", &r->cap.out);
	} else if (tools && r->codec == ARC_CODEC_ZSTD) {
		tool_check("zstd -q", &r->cap.out);
	}
}

static void run_end(struct run *r)
{
	arc_free(r->f);
	assert_true(r->cap.freed);
	cm_buf_release(&r->cap.out);
	cm_buf_release(&r->in);
}

static uint64_t zero_hits(struct run *r)
{
	return arc_slice_codec_zero_hits(r->f);
}

/* ---- tests ---- */

static const enum arc_codec both[] = { ARC_CODEC_GZIP, ARC_CODEC_ZSTD };

static void test_names(void **state)
{
	enum arc_codec c;

	assert_int_equal(arc_codec_parse("gzip", &c), 0);
	assert_int_equal(c, ARC_CODEC_GZIP);
	assert_int_equal(arc_codec_parse("zstd", &c), 0);
	assert_int_equal(c, ARC_CODEC_ZSTD);
	assert_int_equal(arc_codec_parse("none", &c), 0);
	assert_int_equal(c, ARC_CODEC_NONE);
	assert_int_equal(arc_codec_parse("lzma", &c), -EINVAL);
	assert_string_equal(arc_codec_name(ARC_CODEC_ZSTD), "zstd");
	assert_string_equal(arc_codec_suffix(ARC_CODEC_GZIP), ".gz");
	assert_string_equal(arc_codec_suffix(ARC_CODEC_ZSTD), ".zst");
	assert_string_equal(arc_codec_suffix(ARC_CODEC_NONE), "");
}

static void test_bad_options(void **state)
{
	static const struct arc_codec_opts bad[] = {
		{ .codec = ARC_CODEC_GZIP, .level = 10 },
		{ .codec = ARC_CODEC_GZIP, .level = -1, .block_size = 4096 },
		{ .codec = ARC_CODEC_ZSTD, .level = -1, .block_size = 128u << 20 },
		{ .codec = ARC_CODEC_ZSTD, .level = 99 },
		{ .codec = ARC_CODEC_GZIP, .level = -1, .threads = 100000 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct capture cap;
		struct cm_err err;

		cm_err_clear(&err);
		assert_null(arc_codec_new(&bad[i], cap_new(&cap), &err));
		assert_int_equal(err.code, EINVAL);
		assert_true(strstr(err.msg, arc_codec_name(bad[i].codec)));
		assert_true(cap.freed); /* ownership was taken */
		cm_buf_release(&cap.out);
	}
}

static void test_empty_and_one_byte(void **state)
{
	for (int i = 0; i < 2; i++) {
		for (unsigned t = 1; t <= 4; t += 3) {
			struct run r;

			run_start(&r, both[i], -1, t, 0);
			run_finish(&r, true);
			assert_int_equal(r.members, 1); /* one empty member */
			run_end(&r);

			run_start(&r, both[i], -1, t, 0);
			run_write(&r, "x", 1);
			run_finish(&r, true);
			run_end(&r);
		}
	}
}

static void test_exact_slices(void **state)
{
	size_t n = 3 * ARC_SLICE_DEFAULT;
	unsigned char *p = malloc(n);

	assert_non_null(p);
	fill_text(p, n);
	for (unsigned t = 1; t <= 4; t += 3) {
		struct run r;

		for (int c = 0; c < 2; c++) {
			/* exactly one slice: one member, no empty one after */
			run_start(&r, both[c], -1, t, 0);
			run_write(&r, p, ARC_SLICE_DEFAULT);
			run_finish(&r, true);
			assert_int_equal(r.members, 1);
			run_end(&r);

			/* three slices in one write */
			run_start(&r, both[c], -1, t, 0);
			run_write(&r, p, n);
			run_finish(&r, true);
			assert_int_equal(r.members, 3);
			run_end(&r);
		}
	}
	free(p);
}

/* Many blocks, odd write sizes, for each codec, level 1/6/9, 1 and 4. */
static void test_many_blocks(void **state)
{
	static const size_t sizes[] = { 1, 7, 4093, 65537, 131071, 131073,
					300000, 2, 32768 };
	size_t n = 3 * 1024 * 1024 + 12345;
	unsigned char *p = malloc(n);
	static const int levels[] = { 1, -1, 9 };

	assert_non_null(p);
	fill_text(p, n);
	for (int c = 0; c < 2; c++) {
		for (int l = 0; l < 3; l++) {
			for (unsigned t = 1; t <= 4; t += 3) {
				struct run r;
				size_t off = 0;

				run_start(&r, both[c], levels[l], t, 0);
				for (int k = 0; off < n; k++) {
					size_t m = sizes[k % 9];

					if (m > n - off)
						m = n - off;
					run_write(&r, p + off, m);
					off += m;
				}
				run_finish(&r, l == 1);
				run_end(&r);
			}
		}
	}
	free(p);
}

/* gzip at level 0 (stored) and odd block sizes still make a valid stream. */
static void test_gzip_level0_and_block_sizes(void **state)
{
	static const size_t bss[] = { 64 * 1024, 100000, 1024 * 1024 };
	size_t n = 2 * 1024 * 1024 + 3;
	unsigned char *p = malloc(n);

	assert_non_null(p);
	fill_text(p, n);
	for (int i = 0; i < 3; i++) {
		struct run r;

		run_start(&r, ARC_CODEC_GZIP, i == 0 ? 0 : -1, 3, bss[i]);
		run_write(&r, p, n / 3);
		run_zeros(&r, 5 * bss[i] + 17);
		run_write(&r, p + n / 3, n - n / 3);
		run_finish(&r, true);
		run_end(&r);
	}
	free(p);
}

static void test_incompressible(void **state)
{
	size_t n = 1024 * 1024 + 5;
	unsigned char *p = malloc(n);

	assert_non_null(p);
	fill_random(p, n);
	for (int c = 0; c < 2; c++) {
		for (unsigned t = 1; t <= 4; t += 3) {
			struct run r;

			run_start(&r, both[c], 9, t, 0);
			run_write(&r, p, n);
			run_finish(&r, t == 4);
			/* stored blocks cost a little, never much */
			assert_true(r.cap.out.len < n + n / 100 + 64);
			run_end(&r);
		}
	}
	free(p);
}

/* 10 MiB of write_zeros mixed with data: cached zero blocks, exact bytes. */
static void test_write_zeros(void **state)
{
	size_t n = 200000;
	unsigned char *p = malloc(n);

	assert_non_null(p);
	fill_text(p, n);
	for (int c = 0; c < 2; c++) {
		for (unsigned t = 1; t <= 4; t += 3) {
			struct run r;

			run_start(&r, both[c], -1, t, 0);
			run_zeros(&r, 10 * 1024 * 1024);      /* first thing */
			run_write(&r, p, 1000);               /* mid-block */
			run_zeros(&r, 10 * 1024 * 1024 + 3);
			run_write(&r, p, n);
			run_zeros(&r, 5);
			run_write(&r, p, 77);
			run_zeros(&r, 3 * ARC_SLICE_DEFAULT); /* the end */
			run_finish(&r, true);
			if (both[c] == ARC_CODEC_GZIP) {
				/* 20 MiB of zeros: ~20 slices, one deflated */
				assert_true(zero_hits(&r) >= 17);
			}
			run_end(&r);
		}
	}
	free(p);
}

/* Zero blocks inside write() are found and take the cached path too. */
static void test_zero_blocks_in_write(void **state)
{
	size_t n = 4 * 1024 * 1024;
	unsigned char *p = calloc(1, n);

	assert_non_null(p);
	fill_text(p, 70000);                           /* data, then zeros */
	fill_text(p + 2 * 1024 * 1024 + 5, 10);        /* a speck */
	for (unsigned t = 1; t <= 4; t += 3) {
		struct run r;

		/* 64 slices: 3 with data, 61 zero, all from the cache */
		run_start(&r, ARC_CODEC_GZIP, -1, t, 64 * 1024);
		for (size_t off = 0; off < n; off += 100000)
			run_write(&r, p + off,
				  n - off < 100000 ? n - off : 100000);
		run_finish(&r, true);
		assert_int_equal(zero_hits(&r), 61);
		run_end(&r);
	}
	free(p);
}

/* A run of zeros costs no deflate and no buffer: 4 GiB + 1 MiB of them
 * (UOFF past 32 bits). */
static void test_zeros_are_cheap(void **state)
{
	struct run r;
	uint64_t n = (4ULL << 30) + (1 << 20);

	run_start(&r, ARC_CODEC_GZIP, -1, 2, 0);
	assert_int_equal(arc_write_zeros(r.f, n, &r.err), 0);
	assert_int_equal(arc_write(r.f, "end", 3, &r.err), 0);
	assert_int_equal(arc_close(r.f, &r.err), 0);
	assert_true(zero_hits(&r) >= n / ARC_SLICE_DEFAULT - 2);
	assert_true(r.cap.out.len < n / 500);
	{
		/* walked by MSIZE: every member where its UOFF says, the
		 * last one "end" alone, its CRC-32 and ISIZE those of "end" */
		const unsigned char *z = (unsigned char *)r.cap.out.data;
		size_t at = 0, members = 0;
		const unsigned char *t;

		while (at < r.cap.out.len) {
			assert_int_equal(le64(z + at + 20),
					 (uint64_t)members * ARC_SLICE_DEFAULT);
			at += le32(z + at + 16);
			members++;
		}
		assert_int_equal(at, r.cap.out.len);
		assert_int_equal(members, n / ARC_SLICE_DEFAULT + 1);
		t = z + r.cap.out.len - 8;
		assert_int_equal(le32(t),
				 crc32(0, (const Bytef *)"end", 3));
		assert_int_equal(le32(t + 4), 3);
	}
	/* Not decoded here: inflating 4 GiB of zeros takes ~20 s (gzip's own
	 * output too); test_write_zeros runs the tools on zero runs. */
	run_end(&r);
}

static void test_none(void **state)
{
	struct run r;

	run_start(&r, ARC_CODEC_NONE, -1, 0, 0);
	run_write(&r, "hello", 5);
	run_zeros(&r, 100000);
	run_write(&r, "!", 1);
	run_finish(&r, false);
	run_end(&r);
}

/* abort() after partial writes: workers stopped, nothing leaks (ASan),
 * the sink aborted and never closed. */
static void test_abort(void **state)
{
	size_t n = 2 * 1024 * 1024 + 99;
	unsigned char *p = malloc(n);

	assert_non_null(p);
	fill_text(p, n);
	for (int c = 0; c < 2; c++) {
		for (unsigned t = 1; t <= 4; t += 3) {
			struct run r;

			run_start(&r, both[c], -1, t, 64 * 1024);
			run_write(&r, p, n);
			run_zeros(&r, 1024 * 1024);
			arc_abort(r.f);
			assert_true(r.cap.aborted);
			assert_false(r.cap.closed);
			run_end(&r);
		}
	}
	/* and abort with nothing written */
	for (int c = 0; c < 2; c++) {
		struct run r;

		run_start(&r, both[c], -1, 4, 0);
		arc_abort(r.f);
		run_end(&r);
	}
	free(p);
}

/* The next filter fails: the error comes back, then abort + free. */
static void test_sink_failure(void **state)
{
	size_t n = 4 * 1024 * 1024;
	unsigned char *p = malloc(n);

	assert_non_null(p);
	fill_random(p, n);
	for (int c = 0; c < 2; c++) {
		for (unsigned t = 1; t <= 4; t += 3) {
			struct run r;
			int rc;

			run_start(&r, both[c], 1, t, 0);
			r.cap.fail_after = 1024 * 1024;
			rc = arc_write(r.f, p, n, &r.err);
			if (rc == 0)
				rc = arc_close(r.f, &r.err);
			assert_int_equal(rc, -EIO);
			assert_string_equal(r.err.msg, "capture: disk on fire");
			arc_abort(r.f);
			assert_false(r.cap.closed);
			run_end(&r);
		}
	}
	free(p);
}

/*
 * A deflate failure in a worker becomes "gzip: deflate: ..." at the block's
 * turn. The fault switch reads VAULTFS_FAULT once per process, so this runs
 * in a child.
 */
static void test_deflate_fault(void **state)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		size_t n = 2 * 1024 * 1024;
		unsigned char *p = malloc(n);
		struct run r;
		int rc;

		setenv("VAULTFS_FAULT", "gzip.deflate@5", 1);
		fill_text(p, n);
		run_start(&r, ARC_CODEC_GZIP, -1, 4, 64 * 1024);
		rc = arc_write(r.f, p, n, &r.err);
		if (rc == 0)
			rc = arc_close(r.f, &r.err);
		arc_abort(r.f);
		if (rc != -EIO ||
		    strcmp(r.err.msg, "gzip: deflate: injected fault") != 0) {
			fprintf(stderr, "rc %d, '%s'\n", rc, r.err.msg);
			_exit(1);
		}
		_exit(r.cap.closed ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deflate_fault),   /* first: it forks */
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_empty_and_one_byte),
		cmocka_unit_test(test_exact_slices),
		cmocka_unit_test(test_many_blocks),
		cmocka_unit_test(test_gzip_level0_and_block_sizes),
		cmocka_unit_test(test_incompressible),
		cmocka_unit_test(test_write_zeros),
		cmocka_unit_test(test_zero_blocks_in_write),
		cmocka_unit_test(test_zeros_are_cheap),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_sink_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
