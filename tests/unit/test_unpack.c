/*
 * test_unpack.c - the parallel member reader (archiver/unpack.h): gzip
 * members of the layout of docs/archive-format.md made here with
 * libdeflate, zstd frames with a seek table made with libzstd, read back
 * through arc_unpack with few threads and a small window (so that the
 * rings wrap and members span chunks), and broken on purpose: a flipped
 * byte, a wrong UOFF, a truncated object, a seek table that does not add
 * up. And --path's selection (arc_path_selected).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libdeflate.h>
#include <zstd.h>

#include "archiver/restore.h"
#include "archiver/member.h"
#include "archiver/unpack.h"
#include "core/buf.h"
#include "core/err.h"
#include "tmpdir.h"

#define SLICE (1024 * 1024)

static unsigned char *input;
static size_t input_len;

static int setup(void **state)
{
	(void)state;
	if (tmpdir_make("unpack"))
		return -1;
	/* 20.5 MiB: random halves (compressed members near 0.5 MiB, so
	 * 8 MiB chunks cut members) and runs of text */
	input_len = 20 * SLICE + SLICE / 2;
	input = malloc(input_len);
	srand(42);
	for (size_t i = 0; i < input_len; i++)
		input[i] = (i / 4096) % 2 ? (unsigned char)rand()
					  : (unsigned char)("vaultfs "[i % 8]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(input);
	return tmpdir_remove();
}

static void put32(struct cm_buf *b, uint32_t v)
{
	unsigned char x[4] = { v, v >> 8, v >> 16, v >> 24 };

	cm_buf_append(b, x, 4);
}

/* One gzip member of the layout: header with 'VF' (MSIZE, UOFF). */
static void gz_member(struct cm_buf *b, const unsigned char *p, size_t n,
		      uint64_t uoff, struct libdeflate_compressor *c)
{
	size_t cap = libdeflate_deflate_compress_bound(c, n);
	unsigned char *d = malloc(cap);
	size_t dn = libdeflate_deflate_compress(c, p, n, d, cap);
	uint32_t msize = (uint32_t)(ARC_GZ_HEADER + dn + 8);
	unsigned char h[16] = { 0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 3,
				16, 0, 'V', 'F', 12, 0 };

	assert_true(dn > 0);
	cm_buf_append(b, h, sizeof(h));
	put32(b, msize);
	put32(b, (uint32_t)uoff);
	put32(b, (uint32_t)(uoff >> 32));
	cm_buf_append(b, d, dn);
	put32(b, libdeflate_crc32(0, p, n));
	put32(b, (uint32_t)n);
	free(d);
}

static char *write_file(const char *name, const void *p, size_t n)
{
	char *path = NULL;
	int fd;

	assert_true(asprintf(&path, "%s/%s", tmp, name) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
	return path;
}

static char *gz_file(const char *name, size_t *size)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
	struct cm_buf b;
	char *path;

	cm_buf_init(&b, 0);
	for (size_t off = 0; off < input_len; off += SLICE)
		gz_member(&b, input + off, input_len - off < SLICE ?
				  input_len - off : SLICE, off, c);
	libdeflate_free_compressor(c);
	path = write_file(name, b.data, b.len);
	*size = b.len;
	cm_buf_release(&b);
	return path;
}

/* on_chunk: the stored bytes come in order, each once (ranges may leave
 * gaps between them) */
struct chunks {
	uint64_t next, bytes;
};

static int count_chunk(void *ctx, uint64_t off, const void *p, size_t n,
		       struct cm_err *err)
{
	struct chunks *c = ctx;

	(void)p;
	(void)err;
	if (c->bytes && off < c->next)
		return cm_err_set(err, EIO, "chunk at %llu, want %llu",
				  (unsigned long long)off,
				  (unsigned long long)c->next);
	c->next = off + n;
	c->bytes += n;
	return 0;
}

static struct chunks last_chunks;

/* Everything arc_unpack hands out, checked against `input` at its uoff;
 * returns arc_unpack_next's last answer, the bytes in *total. */
static int drain(struct arc_object *o, enum arc_codec codec,
		 const struct arc_range *r, size_t nr,
		 const struct arc_unit *units, size_t nunits,
		 uint64_t *total, struct cm_err *err)
{
	struct arc_unpack_opts uo = {
		.obj = o, .codec = codec, .ranges = r, .nranges = nr,
		.units = units, .nunits = nunits, .threads = 3, .window = 3,
		.on_chunk = count_chunk, .chunk_ctx = &last_chunks,
	};
	struct arc_unpack *u = arc_unpack_new(&uo, err);
	int rc;

	assert_non_null(u);
	memset(&last_chunks, 0, sizeof(last_chunks));
	*total = 0;
	for (;;) {
		const void *p;
		size_t n;
		uint64_t uoff;

		rc = arc_unpack_next(u, &p, &n, &uoff, err);
		if (rc || n == 0)
			break;
		assert_true(uoff + n <= input_len);
		assert_memory_equal(p, input + uoff, n);
		*total += n;
	}
	arc_unpack_free(u);
	return rc;
}

static void test_gzip_members(void **state)
{
	struct arc_object *o;
	struct arc_unit *units;
	struct arc_range whole;
	struct cm_err err;
	size_t size, nunits;
	uint64_t end, total;
	bool members;
	char *path = gz_file("m.gz", &size);

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(arc_object_open(path, NULL, &o, &err), 0);
	assert_int_equal(arc_object_size(o), size);
	assert_int_equal(arc_units_probe(o, ARC_CODEC_GZIP, &members, &units,
					 &nunits, &end, &err), 0);
	assert_true(members);
	assert_int_equal(end, size);
	whole.off = 0;
	whole.len = size;
	assert_int_equal(drain(o, ARC_CODEC_GZIP, &whole, 1, NULL, 0, &total,
			       &err), 0);
	assert_int_equal(total, input_len);
	assert_int_equal(last_chunks.bytes, size);
	assert_int_equal(arc_object_bytes_read(o), size + ARC_GZ_HEADER);
	arc_object_free(o);
	free(path);
}

/* Two separate members, as --path fetches them: uoff from each header. */
static void test_gzip_ranges(void **state)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
	struct cm_buf b;
	struct arc_object *o;
	struct arc_range r[2];
	struct cm_err err;
	uint64_t total;
	size_t m2;
	char *path;

	(void)state;
	cm_buf_init(&b, 0);
	gz_member(&b, input, SLICE, 0, c);
	m2 = b.len;
	gz_member(&b, input + SLICE, SLICE, SLICE, c);
	r[1].off = b.len;
	gz_member(&b, input + 2 * SLICE, SLICE, 2 * SLICE, c);
	r[1].len = b.len - r[1].off;
	r[0].off = 0;
	r[0].len = m2;
	libdeflate_free_compressor(c);
	path = write_file("r.gz", b.data, b.len);
	cm_err_clear(&err);
	assert_int_equal(arc_object_open(path, NULL, &o, &err), 0);
	assert_int_equal(drain(o, ARC_CODEC_GZIP, r, 2, NULL, 0, &total,
			       &err), 0);
	assert_int_equal(total, 2 * SLICE);
	/* a range that ends inside a member */
	r[1].len -= 10;
	assert_int_equal(drain(o, ARC_CODEC_GZIP, r, 2, NULL, 0, &total,
			       &err), -EIO);
	assert_non_null(strstr(err.msg, "truncated"));
	arc_object_free(o);
	cm_buf_release(&b);
	free(path);
}

static void expect_broken(const char *name, const void *p, size_t n,
			  const char *what)
{
	struct arc_object *o;
	struct arc_range whole = { 0, n };
	struct cm_err err;
	uint64_t total;
	char *path = write_file(name, p, n);

	cm_err_clear(&err);
	assert_int_equal(arc_object_open(path, NULL, &o, &err), 0);
	assert_int_equal(drain(o, ARC_CODEC_GZIP, &whole, 1, NULL, 0, &total,
			       &err), -EIO);
	if (!strstr(err.msg, what))
		fail_msg("'%s' does not say '%s'", err.msg, what);
	arc_object_free(o);
	free(path);
}

static void test_gzip_broken(void **state)
{
	size_t size, msize;
	char *path = gz_file("b.gz", &size);
	unsigned char *d = malloc(size);
	FILE *f = fopen(path, "rb");
	char where[64];

	(void)state;
	assert_int_equal(fread(d, 1, size, f), size);
	fclose(f);
	msize = d[16] | d[17] << 8 | d[18] << 16 | (size_t)d[19] << 24;
	/* a flipped byte in the second member's data */
	d[msize + 1000] ^= 0x55;
	snprintf(where, sizeof(where), "gzip member 2 at byte %zu: ", msize);
	expect_broken("flip.gz", d, size, where);
	d[msize + 1000] ^= 0x55;
	/* the second member claims another uncompressed offset */
	d[msize + 21] ^= 1;
	expect_broken("uoff.gz", d, size, "says it starts at uncompressed");
	d[msize + 21] ^= 1;
	/* cut short */
	expect_broken("short.gz", d, size - 100, "truncated");
	/* a member of another gzip after ours */
	d[msize + 3] = 0;
	expect_broken("foreign.gz", d, size, "not a member of this layout");
	free(d);
	free(path);
}

static void test_gzip_old(void **state)
{
	/* a gzip member without the extra field: read sequentially */
	static const unsigned char old[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0,
					     3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					     0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct arc_object *o;
	struct arc_unit *units;
	struct cm_err err;
	size_t nunits;
	uint64_t end;
	bool members = true;
	char *path = write_file("old.gz", old, sizeof(old));

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(arc_object_open(path, NULL, &o, &err), 0);
	assert_int_equal(arc_units_probe(o, ARC_CODEC_GZIP, &members, &units,
					 &nunits, &end, &err), 0);
	assert_false(members);
	assert_int_equal(arc_units_probe(o, ARC_CODEC_ZSTD, &members, &units,
					 &nunits, &end, &err), 0);
	assert_false(members);
	arc_object_free(o);
	free(path);
}

/* zstd frames of the slices, then a seek table (checksums: `crc`). */
static void zstd_seekable(struct cm_buf *b, bool crc, size_t *nframes)
{
	struct cm_buf t;
	size_t n = 0;

	cm_buf_init(&t, 0);
	for (size_t off = 0; off < input_len; off += SLICE, n++) {
		size_t len = input_len - off < SLICE ? input_len - off : SLICE;
		size_t cap = ZSTD_compressBound(len), got;
		void *d = malloc(cap);

		got = ZSTD_compress(d, cap, input + off, len, 1);
		assert_false(ZSTD_isError(got));
		cm_buf_append(b, d, got);
		put32(&t, (uint32_t)got);
		put32(&t, (uint32_t)len);
		if (crc)
			put32(&t, 0x12345678); /* not checked by readers here */
		free(d);
	}
	put32(b, 0x184D2A5E);
	put32(b, (uint32_t)(t.len + 9));
	cm_buf_append(b, t.data, t.len);
	put32(b, (uint32_t)n);
	cm_buf_append(b, crc ? "\x80" : "\0", 1);
	put32(b, 0x8F92EAB1);
	cm_buf_release(&t);
	*nframes = n;
}

static void test_zstd_seek_table(void **state)
{
	for (int crc = 0; crc < 2; crc++) {
		struct cm_buf b;
		struct arc_object *o;
		struct arc_unit *units;
		struct arc_range whole;
		struct cm_err err;
		size_t nframes, nunits;
		uint64_t end, total;
		bool members;
		char *path;

		(void)state;
		cm_buf_init(&b, 0);
		zstd_seekable(&b, crc, &nframes);
		path = write_file("s.zst", b.data, b.len);
		cm_err_clear(&err);
		assert_int_equal(arc_object_open(path, NULL, &o, &err), 0);
		assert_int_equal(arc_units_probe(o, ARC_CODEC_ZSTD, &members,
						 &units, &nunits, &end, &err),
				 0);
		assert_true(members);
		assert_int_equal(nunits, nframes);
		assert_int_equal(units[nunits - 1].uoff + units[nunits - 1].ulen,
				 input_len);
		assert_int_equal(end, units[nunits - 1].coff +
					      units[nunits - 1].clen);
		whole.off = 0;
		whole.len = end;
		assert_int_equal(drain(o, ARC_CODEC_ZSTD, &whole, 1, units,
				       nunits, &total, &err), 0);
		assert_int_equal(total, input_len);
		/* only frames 3 and 4 */
		whole.off = units[2].coff;
		whole.len = units[3].coff + units[3].clen - whole.off;
		assert_int_equal(drain(o, ARC_CODEC_ZSTD, &whole, 1, units,
				       nunits, &total, &err), 0);
		assert_int_equal(total, 2 * SLICE);
		free(units);
		arc_object_free(o);

		/* a table whose sizes do not add up to the frames */
		{
			size_t at = b.len - 9 - nframes * (crc ? 12 : 8);
			struct arc_unit *u2;
			size_t n2;
			uint64_t e2;
			char *p2;

			b.data[at] ^= 1;
			p2 = write_file("bad.zst", b.data, b.len);
			assert_int_equal(arc_object_open(p2, NULL, &o, &err),
					 0);
			assert_int_equal(arc_units_probe(o, ARC_CODEC_ZSTD,
							 &members, &u2, &n2,
							 &e2, &err), -EIO);
			assert_non_null(strstr(err.msg, "add up"));
			arc_object_free(o);
			free(p2);
			/* no table (the footer's magic gone): not members */
			b.data[b.len - 1] = 0;
			p2 = write_file("none.zst", b.data, b.len);
			assert_int_equal(arc_object_open(p2, NULL, &o, &err),
					 0);
			assert_int_equal(arc_units_probe(o, ARC_CODEC_ZSTD,
							 &members, &u2, &n2,
							 &e2, &err), 0);
			assert_false(members);
			arc_object_free(o);
			free(p2);
		}
		cm_buf_release(&b);
		free(path);
	}
}

static void test_path_selected(void **state)
{
	(void)state;
	assert_true(arc_path_selected("./a/b", "a"));
	assert_true(arc_path_selected("./a/", "a"));
	assert_true(arc_path_selected("a/b/c", "./a/b/"));
	assert_true(arc_path_selected("a/b", "/a/b"));
	assert_true(arc_path_selected("./x", "."));
	assert_true(arc_path_selected("./x", ""));
	assert_false(arc_path_selected("./ab", "a"));
	assert_false(arc_path_selected("./a", "a/b"));
	assert_false(arc_path_selected(".", "a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gzip_members),
		cmocka_unit_test(test_gzip_ranges),
		cmocka_unit_test(test_gzip_broken),
		cmocka_unit_test(test_gzip_old),
		cmocka_unit_test(test_zstd_seek_table),
		cmocka_unit_test(test_path_selected),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
