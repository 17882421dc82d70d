/*
 * test_verify.c - the verifier's pieces (archiver/verify.h): the decoders
 * on streams the codecs made, split, joined and broken on purpose, and the
 * tar counter on hand-made tars fed in awkward pieces, on broken ones, and
 * on a real tree's tar.
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
#include <unistd.h>

#include "archiver/arc.h"
#include "archiver/source.h"
#include "archiver/member.h"
#include "archiver/verify.h"
#include "core/buf.h"
#include "core/err.h"

/* ---- a memory sink ---- */

static int mem_write(struct arc_filter *f, const void *p, size_t n,
		     struct cm_err *err)
{
	(void)err;
	return cm_buf_append(f->state, p, n);
}

static int mem_close(struct arc_filter *f, struct cm_err *err)
{
	(void)f;
	(void)err;
	return 0;
}

static void mem_abort(struct arc_filter *f)
{
	(void)f;
}

static void mem_free(struct arc_filter *f)
{
	free(f);
}

static const struct arc_filter_ops mem_ops = {
	.name = "mem", .write = mem_write, .close = mem_close,
	.abort = mem_abort, .free = mem_free,
};

static struct arc_filter *mem_new(struct cm_buf *b)
{
	struct arc_filter *f = calloc(1, sizeof(*f));

	f->ops = &mem_ops;
	f->state = b;
	return f;
}

/* Text that compresses, but not to nothing. */
static void sample(struct cm_buf *b, size_t n, unsigned seed)
{
	for (; b->len < n; seed++)
		cm_buf_printf(b, "line %u of the sample, %u\n", seed,
			      seed * 2654435761u);
	b->len = n;
}

static void compress(enum arc_codec c, const struct cm_buf *in,
		     struct cm_buf *out)
{
	/* slices of 1 MiB: the samples below are one member each */
	struct arc_codec_opts o = { .codec = c, .level = -1, .threads = 2 };
	struct cm_err err;
	struct arc_filter *f = arc_codec_new(&o, mem_new(out), &err);

	assert_non_null(f);
	assert_int_equal(arc_write(f, in->data, in->len, &err), 0);
	assert_int_equal(arc_close(f, &err), 0);
	arc_free(f);
}

/* Append b's first n bytes to itself (its data may move). */
static void repeat(struct cm_buf *b, size_t n)
{
	char *copy = malloc(n);

	memcpy(copy, b->data, n);
	cm_buf_append(b, copy, n);
	free(copy);
}

/* Decode `in` fed in pieces of `piece` bytes; 0 or the error in err. */
static int decode(enum arc_codec c, const void *in, size_t n, size_t piece,
		  struct cm_buf *out, uint64_t *units, struct cm_err *err)
{
	struct arc_filter *d = arc_decoder_new(c, mem_new(out), err);
	const char *p = in;
	int rc = 0;

	assert_non_null(d);
	cm_err_clear(err);
	while (n && rc == 0) {
		size_t k = n < piece ? n : piece;

		rc = arc_write(d, p, k, err);
		p += k;
		n -= k;
	}
	if (rc == 0)
		rc = arc_close(d, err);
	if (units)
		*units = arc_decoder_units(d);
	arc_free(d);
	return rc;
}

static void expect_error(int rc, const struct cm_err *err, const char *what)
{
	assert_int_not_equal(rc, 0);
	if (!strstr(err->msg, what))
		fail_msg("'%s' not in '%s'", what, err->msg);
}

/* ---- gzip ---- */

static void test_gzip_members(void **state)
{
	struct cm_buf in, z, out;
	struct cm_err err;
	uint64_t units;
	size_t one;
	char want[128];

	(void)state;
	cm_buf_init(&in, 0);
	cm_buf_init(&z, 0);
	cm_buf_init(&out, 0);
	sample(&in, 700 * 1024, 1);
	compress(ARC_CODEC_GZIP, &in, &z);
	one = z.len;
	assert_int_equal(decode(ARC_CODEC_GZIP, z.data, z.len, 4093, &out,
				&units, &err), 0);
	assert_int_equal(units, 1);
	assert_int_equal(out.len, in.len);
	assert_memory_equal(out.data, in.data, in.len);

	/* two members, one after the other: both decoded (the streaming
	 * decoder is for archives not cut by MSIZE: a VF subfield is one
	 * more extra field to it; UOFF is the parallel reader's to check) */
	repeat(&z, one);
	cm_buf_reset(&out);
	assert_int_equal(decode(ARC_CODEC_GZIP, z.data, z.len, 1 << 20, &out,
				&units, &err), 0);
	assert_int_equal(units, 2);
	assert_int_equal(out.len, 2 * in.len);

	/* a flipped byte in the second member's data names that member */
	z.data[one + one / 2] ^= 0x20;
	cm_buf_reset(&out);
	snprintf(want, sizeof(want), "gzip member 2 at byte %zu: ", one);
	expect_error(decode(ARC_CODEC_GZIP, z.data, z.len, 65536, &out, NULL,
			    &err), &err, want);
	z.data[one + one / 2] ^= 0x20;

	/* the first member's CRC-32, then its ISIZE */
	z.data[one - 8] ^= 1;
	expect_error(decode(ARC_CODEC_GZIP, z.data, z.len, 65536, &out, NULL,
			    &err), &err, "gzip member 1 at byte 0: CRC mismatch");
	z.data[one - 8] ^= 1;
	z.data[one - 4] ^= 1;
	expect_error(decode(ARC_CODEC_GZIP, z.data, z.len, 65536, &out, NULL,
			    &err), &err, "gzip member 1 at byte 0: ISIZE");
	z.data[one - 4] ^= 1;

	/* cut short; nothing at all; something after the last member */
	expect_error(decode(ARC_CODEC_GZIP, z.data, one + 100, 1000, &out,
			    NULL, &err), &err, "gzip member 2 at byte");
	assert_non_null(strstr(err.msg, "truncated"));
	expect_error(decode(ARC_CODEC_GZIP, "", 0, 1, &out, NULL, &err), &err,
		     "no member");
	cm_buf_append(&z, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
	expect_error(decode(ARC_CODEC_GZIP, z.data, z.len, 65536, &out, NULL,
			    &err), &err, "gzip member 3 at byte");
	assert_non_null(strstr(err.msg, "not a gzip member"));

	cm_buf_release(&in);
	cm_buf_release(&z);
	cm_buf_release(&out);
}

/* ---- zstd ---- */

static void test_zstd_frames(void **state)
{
	struct cm_buf in, z, out;
	struct cm_err err;
	uint64_t units;
	size_t one;
	char want[128];

	(void)state;
	cm_buf_init(&in, 0);
	cm_buf_init(&z, 0);
	cm_buf_init(&out, 0);
	sample(&in, 300 * 1024, 7);
	compress(ARC_CODEC_ZSTD, &in, &z);
	{
		/* the frame alone: its seek table cut off (it is a frame
		 * of its own, skippable, and would count as a unit) */
		size_t table = 0;

		assert_int_equal(arc_zs_seek_parse(z.data, z.len, NULL, 0,
						   &table, &err), 1);
		z.len -= table;
	}
	one = z.len;
	/* the codec writes content checksums: flag bit 2 of the descriptor */
	assert_true(z.data[4] & 0x04);
	repeat(&z, one);
	assert_int_equal(decode(ARC_CODEC_ZSTD, z.data, z.len, 3, &out,
				&units, &err), 0);
	assert_int_equal(units, 2);
	assert_int_equal(out.len, 2 * in.len);
	assert_memory_equal(out.data + in.len, in.data, in.len);

	/* the last byte of frame 2's checksum */
	z.data[z.len - 1] ^= 1;
	snprintf(want, sizeof(want), "zstd frame 2 at byte %zu: checksum "
		 "mismatch", one);
	expect_error(decode(ARC_CODEC_ZSTD, z.data, z.len, 65536, &out, NULL,
			    &err), &err, want);
	z.data[z.len - 1] ^= 1;

	/* a frame that carries no checksum cannot be proven */
	z.data[one + 4] &= (char)~0x04;
	expect_error(decode(ARC_CODEC_ZSTD, z.data, z.len, 2, &out, NULL,
			    &err), &err, "has no content checksum");
	z.data[one + 4] |= 0x04;

	expect_error(decode(ARC_CODEC_ZSTD, z.data, z.len - 3, 65536, &out,
			    NULL, &err), &err, "truncated");
	expect_error(decode(ARC_CODEC_ZSTD, "", 0, 1, &out, NULL, &err), &err,
		     "no frame");

	cm_buf_release(&in);
	cm_buf_release(&z);
	cm_buf_release(&out);
}

/* ---- the tar counter ---- */

static void put_octal(unsigned char *p, size_t n, uint64_t v)
{
	snprintf((char *)p, n, "%0*llo", (int)n - 1, (unsigned long long)v);
}

/* A ustar header block. */
static void header(struct cm_buf *t, const char *name, char type,
		   uint64_t size)
{
	unsigned char b[512] = { 0 };
	unsigned sum = 0;

	snprintf((char *)b, 100, "%s", name);
	put_octal(b + 100, 8, 0644);
	put_octal(b + 108, 8, 0);
	put_octal(b + 116, 8, 0);
	put_octal(b + 124, 12, size);
	put_octal(b + 136, 12, 0);
	b[156] = (unsigned char)type;
	memcpy(b + 257, "ustar\0" "00", 8);
	memset(b + 148, ' ', 8);
	for (size_t i = 0; i < 512; i++)
		sum += b[i];
	snprintf((char *)b + 148, 8, "%06o", sum);
	cm_buf_append(t, b, 512);
}

static void data(struct cm_buf *t, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cm_buf_append(t, &c, 1);
	for (; n % 512; n++)
		cm_buf_append(t, "", 1);
}

/* A pax 'x' header holding path=NAME. */
static void pax_path(struct cm_buf *t, const char *name)
{
	char rec[512];
	size_t len = strlen(name) + strlen(" path=\n"), digits = 1;

	while (snprintf(NULL, 0, "%zu", len + digits) != (int)digits)
		digits++;
	snprintf(rec, sizeof(rec), "%zu path=%s\n", len + digits, name);
	header(t, "PaxHeader/x", 'x', strlen(rec));
	cm_buf_append(t, rec, strlen(rec));
	for (size_t n = strlen(rec); n % 512; n++)
		cm_buf_append(t, "", 1);
}

static void sample_tar(struct cm_buf *t)
{
	header(t, "./", '5', 0);
	header(t, "./a", '0', 700);
	data(t, 'a', 700);
	pax_path(t, "./a-very-long-name-that-needs-pax");
	header(t, "./a-very-long", '0', 3);
	data(t, 'b', 3);
	header(t, "./link", '2', 0);
	data(t, 0, 1024 + 8192); /* the marker and the record's padding */
}

static int count(const void *in, size_t n, size_t piece,
		 struct arc_counts *c, struct cm_err *err)
{
	struct arc_filter *f = arc_count_new(ARC_METHOD_TREE, NULL);
	const char *p = in;
	int rc = 0;

	cm_err_clear(err);
	while (n && rc == 0) {
		size_t k = n < piece ? n : piece;

		rc = arc_write(f, p, k, err);
		p += k;
		n -= k;
	}
	if (rc == 0)
		rc = arc_close(f, err);
	arc_count_result(f, c);
	arc_free(f);
	return rc;
}

static void test_count_tar(void **state)
{
	static const size_t pieces[] = { 1, 7, 511, 512, 513, 65536 };
	struct cm_buf t;
	struct arc_counts c;
	struct cm_err err;

	(void)state;
	cm_buf_init(&t, 0);
	sample_tar(&t);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		assert_int_equal(count(t.data, t.len, pieces[i], &c, &err), 0);
		assert_int_equal(c.entries, 4);
		assert_int_equal(c.bytes, t.len);
		assert_int_equal(c.data_bytes, 703);
	}
	cm_buf_release(&t);
}

static void test_count_zeros(void **state)
{
	struct cm_buf t;
	struct arc_counts c;
	struct cm_err err;
	struct arc_filter *f = arc_count_new(ARC_METHOD_TREE, NULL);

	(void)state;
	cm_buf_init(&t, 0);
	/* a file of 1 MiB of zeros arrives as write_zeros, as tar.c sends
	 * holes; so does the end of the archive */
	header(&t, "./zero", '0', 1 << 20);
	assert_int_equal(arc_write(f, t.data, t.len, &err), 0);
	assert_int_equal(arc_write_zeros(f, (1 << 20) + 1024 + 4096, &err), 0);
	assert_int_equal(arc_close(f, &err), 0);
	arc_count_result(f, &c);
	assert_int_equal(c.entries, 1);
	assert_int_equal(c.bytes, 512 + (1 << 20) + 1024 + 4096);
	arc_free(f);
	cm_buf_release(&t);
}

static void test_count_broken(void **state)
{
	struct cm_buf t;
	struct arc_counts c;
	struct cm_err err;

	(void)state;
	cm_buf_init(&t, 0);
	sample_tar(&t);

	/* a header's checksum: the second entry's */
	t.data[512 + 10] ^= 1;
	expect_error(count(t.data, t.len, 4096, &c, &err), &err,
		     "tar entry 2 at byte 512: header checksum mismatch");
	t.data[512 + 10] ^= 1;

	/* cut in the data of ./a, in the pax-named entry, before the end */
	expect_error(count(t.data, 1024 + 100, 4096, &c, &err), &err,
		     "tar entry 2 './a': truncated: 100 of 700 data bytes");
	expect_error(count(t.data, 512 * 6 + 512 + 1, 4096, &c, &err), &err,
		     "tar entry 3 './a-very-long-name-that-needs-pax': "
		     "truncated");
	expect_error(count(t.data, t.len - 1024 - 8192, 4096, &c, &err), &err,
		     "no end-of-archive marker");

	/* something after the marker */
	t.data[t.len - 1] = 1;
	expect_error(count(t.data, t.len, 4096, &c, &err), &err,
		     "after the end-of-archive marker, is not zero");
	t.data[t.len - 1] = 0;

	/* a pax record whose length is wrong */
	cm_buf_reset(&t);
	header(&t, "PaxHeader/x", 'x', 12);
	cm_buf_append(&t, "99 path=ab\n\n", 12);
	data(&t, 0, 500 + 1024);
	expect_error(count(t.data, t.len, 4096, &c, &err), &err,
		     "bad pax record");
	cm_buf_release(&t);
}

/* The counter on what tar.c writes for a real directory. */
static void test_count_tree(void **state)
{
	char dir[] = "/tmp/test_verify.XXXXXX";
	char path[256];
	struct arc_stats stats;
	struct arc_source_opts so = { .no_estimate = true };
	struct arc_counts c;
	struct cm_err err;
	struct arc_filter *f = arc_count_new(ARC_METHOD_TREE, NULL);
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		fp = fopen(path, "w");
		assert_non_null(fp);
		for (int k = 0; k < i * 1000; k++)
			fputc('x', fp);
		fclose(fp);
	}
	arc_stats_init(&stats);
	assert_int_equal(arc_source_tree(dir, f, &so, &stats, &err), 0);
	assert_int_equal(arc_close(f, &err), 0);
	arc_count_result(f, &c);
	assert_int_equal(c.entries, 6); /* the directory and its 5 files */
	assert_int_equal(c.data_bytes, 10000);
	assert_int_equal(c.bytes % 512, 0);
	arc_free(f);
	arc_stats_release(&stats);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gzip_members),
		cmocka_unit_test(test_zstd_frames),
		cmocka_unit_test(test_count_tar),
		cmocka_unit_test(test_count_zeros),
		cmocka_unit_test(test_count_broken),
		cmocka_unit_test(test_count_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
