/*
 * test_browse.c - the random-access reader of an indexed archive
 * (archiver/browse.h): a tree archived by the real archiver (arc_run,
 * gzip and zstd, 64 KiB slices so that files span many members), then
 * listed, stat'ed and read at random offsets and lengths, compared byte
 * for byte with the files on disk: nested and empty directories, a hard
 * link, a symlink, a sparse file (stored as GNU sparse 1.0), reads across
 * members and at the end. A plain tar made by GNU tar with no directory
 * entries (indexed here with the archiver's own counter and index writer)
 * for directories that are only implied. Errors: no index, a raw image's
 * index, another archive's index, a truncated archive, a corrupted member
 * (an error naming it, never wrong bytes). Eight threads at once on a
 * small cache; the cache's bound and a small memory budget. And the real
 * S3 server (VAULTFS_S3_ENV): a 1 MiB read fetches only its members.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archiver/aindex.h"
#include "archiver/browse.h"
#include "archiver/run.h"
#include "archiver/verify.h"
#include "core/budget.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/mem.h"
#include "core/s3.h"
#include "tmpdir.h"

#define SLICE (64 * 1024)

/* The files of the tree and their bytes as written. */
struct file {
	const char *path;   /* in the tree */
	size_t size;
	unsigned char *data;
};

static struct file files[] = {
	{ "a/b/c/deep.bin", 300 * 1024 + 17, NULL },
	{ "big.bin", 1536 * 1024 + 5, NULL },
	{ "a/small.txt", 1000, NULL },
	{ "a/empty", 0, NULL },
	{ "sparse.img", 0, NULL },  /* filled by make_sparse */
};
#define NFILES (sizeof(files) / sizeof(files[0]))
#define SPARSE_SIZE (3 * 1024 * 1024 + 4096)

static char src[128], gz[160], zs[160];
static bool holes;  /* the file system made sparse.img with holes */

/* Bytes that are half text, half noise: members of different sizes. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
	uint64_t x = 0x9E3779B97F4A7C15ULL * (seed + 1);

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (i / 2048) % 2 ? (unsigned char)x :
					 (unsigned char)("vaultfs "[i % 8]);
	}
}

static void write_at(const char *path, const void *p, size_t n, off_t off)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

static char *in_src(const char *rel)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", src, rel) > 0);
	return p;
}

/* A file with two data regions and holes before, between and after. */
static void make_sparse(struct file *f)
{
	char *path = in_src(f->path);
	unsigned char *d = calloc(1, SPARSE_SIZE);
	struct stat st;
	int fd;

	fill(d + 1024 * 1024, 100 * 1024, 77);
	fill(d + 2 * 1024 * 1024 + 512, 200 * 1024, 78);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SPARSE_SIZE), 0);
	close(fd);
	write_at(path, d + 1024 * 1024, 100 * 1024, 1024 * 1024);
	write_at(path, d + 2 * 1024 * 1024 + 512, 200 * 1024,
		 2 * 1024 * 1024 + 512);
	f->data = d;
	f->size = SPARSE_SIZE;
	assert_int_equal(stat(path, &st), 0);
	holes = (uint64_t)st.st_blocks * 512 < SPARSE_SIZE;
	free(path);
}

static void archive(const char *from, enum arc_mode mode, enum arc_codec c,
		    size_t slice, const char *dest, struct s3_client *client)
{
	struct arc_run_opts o;
	struct arc_run_result res;
	struct cm_err err;

	memset(&o, 0, sizeof(o));
	o.src = from;
	o.mode = mode;
	o.codec.codec = c;
	o.codec.level = 1;
	o.codec.threads = 2;
	o.codec.block_size = slice;
	o.dest = dest;
	o.client = client;
	o.strict = true;
	cm_err_clear(&err);
	if (arc_run(&o, &res, &err))
		fail_msg("arc_run %s: %s", dest, err.msg);
	assert_non_null(res.index_url);
	arc_run_result_release(&res);
}

static int setup(void **state)
{
	char *p;

	(void)state;
	if (tmpdir_make("browse"))
		return -1;
	snprintf(src, sizeof(src), "%s/src", tmp);
	mkdir(src, 0755);
	for (const char *d = "a\0a/b\0a/b/c\0emptydir\0"; *d;
	     d += strlen(d) + 1) {
		p = in_src(d);
		mkdir(p, 0755);
		free(p);
	}
	for (size_t i = 0; i < NFILES; i++) {
		if (!strcmp(files[i].path, "sparse.img")) {
			make_sparse(&files[i]);
			continue;
		}
		files[i].data = malloc(files[i].size + 1);
		fill(files[i].data, files[i].size, (unsigned)i);
		p = in_src(files[i].path);
		write_at(p, files[i].data, files[i].size, 0);
		free(p);
	}
	p = in_src("big.bin");
	{
		char *l = in_src("a/hardlink");

		assert_int_equal(link(p, l), 0);
		free(l);
		l = in_src("a/sym");
		assert_int_equal(symlink("../big.bin", l), 0);
		free(l);
	}
	free(p);
	snprintf(gz, sizeof(gz), "%s/gz/backup.tar.gz", tmp);
	snprintf(zs, sizeof(zs), "%s/zs/backup.tar.zst", tmp);
	p = cm_xasprintf("%s/gz/", tmp);
	mkdir(p, 0755);
	archive(src, ARC_MODE_TREE, ARC_CODEC_GZIP, SLICE, p, NULL);
	free(p);
	p = cm_xasprintf("%s/zs/", tmp);
	mkdir(p, 0755);
	archive(src, ARC_MODE_TREE, ARC_CODEC_ZSTD, SLICE, p, NULL);
	free(p);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFILES; i++) {
		free(files[i].data);
		files[i].data = NULL;
	}
	return tmpdir_remove();
}

static struct arc_browse *open_at(const char *url, uint64_t cache,
				  struct cm_budget *budget)
{
	struct arc_browse_opts o = { .url = url, .cache_bytes = cache,
				     .budget = budget };
	struct arc_browse *b;
	struct cm_err err;

	cm_err_clear(&err);
	if (arc_browse_open(&o, &b, &err))
		fail_msg("open %s: %s", url, err.msg);
	return b;
}

static const struct file *file_named(const char *path)
{
	for (size_t i = 0; i < NFILES; i++)
		if (!strcmp(files[i].path, path))
			return &files[i];
	fail_msg("no file %s", path);
	return NULL;
}

/* n random reads of `path` (its entry from stat) checked against f. */
static void check_reads(struct arc_browse *b, const char *path,
			const struct file *f, unsigned n, unsigned seed)
{
	struct aidx_list l;
	struct cm_err err;
	size_t cap = 300 * 1024;
	unsigned char *buf = malloc(cap);

	cm_err_clear(&err);
	if (arc_browse_stat(b, path, &l, &err))
		fail_msg("stat %s: %s", path, err.msg);
	assert_int_equal(l.v[0].size, f->size);
	for (unsigned k = 0; k < n; k++) {
		uint64_t off;
		size_t len, want;
		ssize_t got;

		seed = seed * 1103515245u + 12345u;
		switch (k % 5) {
		case 0: /* across a member boundary (of the stream) */
			off = ((seed >> 4) % (f->size / SLICE + 1)) * SLICE +
			      SLICE - 100;
			len = 200 + (seed >> 8) % (3 * SLICE);
			break;
		case 1: /* at or near the end */
			off = f->size > 50 ? f->size - (seed >> 8) % 50 : 0;
			len = 100;
			break;
		case 2: /* past the end */
			off = f->size + (seed >> 8) % 3;
			len = 10;
			break;
		default:
			off = f->size ? (seed >> 3) % f->size : 0;
			len = 1 + (seed >> 7) % cap;
		}
		if (len > cap)
			len = cap;
		want = off >= f->size ? 0 :
		       len < f->size - off ? len : f->size - off;
		memset(buf, 0xA5, len);
		got = arc_browse_read(b, &l.v[0], off, buf, len, &err);
		if (got < 0)
			fail_msg("read %s at %llu+%zu: %s", path,
				 (unsigned long long)off, len, err.msg);
		assert_int_equal(got, want);
		if (memcmp(buf, f->data + (off < f->size ? off : 0), want))
			fail_msg("%s: wrong bytes at %llu+%zu", path,
				 (unsigned long long)off, len);
	}
	/* all of it, in order, as cat does (read-ahead) */
	for (uint64_t off = 0; off < f->size; off += 128 * 1024) {
		ssize_t got = arc_browse_read(b, &l.v[0], off, buf, 128 * 1024,
					      &err);
		size_t want = f->size - off < 128 * 1024 ? f->size - off :
							   128 * 1024;

		if (got < 0)
			fail_msg("read %s at %llu: %s", path,
				 (unsigned long long)off, err.msg);
		assert_int_equal(got, want);
		assert_memory_equal(buf, f->data + off, want);
	}
	aidx_list_release(&l);
	free(buf);
}

static const char *const want_top[] = { "a", "big.bin", "emptydir",
					"sparse.img" };

static void check_tree(struct arc_browse *b)
{
	struct aidx_list l;
	struct cm_err err;

	cm_err_clear(&err);
	assert_int_equal(arc_browse_list(b, "", &l, &err), 0);
	assert_int_equal(l.n, 4);
	for (size_t i = 0; i < l.n; i++)
		assert_string_equal(l.v[i].path, want_top[i]);
	assert_int_equal(l.v[0].type, '5');
	assert_int_equal(l.v[1].type, '0');
	aidx_list_release(&l);

	assert_int_equal(arc_browse_list(b, "./a/", &l, &err), 0);
	assert_int_equal(l.n, 5); /* b empty hardlink small.txt sym */
	assert_string_equal(l.v[0].path, "a/b");
	assert_string_equal(l.v[4].path, "a/sym");
	assert_int_equal(l.v[4].type, '2');
	assert_string_equal(l.v[4].link, "../big.bin");
	aidx_list_release(&l);

	assert_int_equal(arc_browse_list(b, "a/b/c", &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].path, "a/b/c/deep.bin");
	assert_int_equal(l.v[0].size, 300 * 1024 + 17);
	aidx_list_release(&l);

	assert_int_equal(arc_browse_list(b, "emptydir", &l, &err), 0);
	assert_int_equal(l.n, 0);
	aidx_list_release(&l);

	assert_int_equal(arc_browse_stat(b, "", &l, &err), 0);
	assert_int_equal(l.v[0].type, '5');
	assert_true(l.v[0].header_off != UINT64_MAX); /* ours has "./" */
	aidx_list_release(&l);

	assert_int_equal(arc_browse_stat(b, "a/sym", &l, &err), 0);
	assert_string_equal(l.v[0].link, "../big.bin");
	{
		char c;

		assert_int_equal(arc_browse_read(b, &l.v[0], 0, &c, 1, &err),
				 -EINVAL);
	}
	aidx_list_release(&l);

	assert_int_equal(arc_browse_list(b, "big.bin", &l, &err), -ENOTDIR);
	assert_int_equal(arc_browse_stat(b, "nope", &l, &err), -ENOENT);
	assert_int_equal(arc_browse_list(b, "a/nope", &l, &err), -ENOENT);
	assert_int_equal(arc_browse_stat(b, "a/b/c/nope", &l, &err), -ENOENT);
}

/* The hard link pair: whichever the walk met second is the '1'; both
 * read as big.bin, and stat shows its size. */
static void check_link(struct arc_browse *b)
{
	const struct file *big = file_named("big.bin");
	struct aidx_list l, m;
	struct cm_err err;
	int links = 0;

	cm_err_clear(&err);
	assert_int_equal(arc_browse_stat(b, "big.bin", &l, &err), 0);
	assert_int_equal(arc_browse_stat(b, "a/hardlink", &m, &err), 0);
	links = (l.v[0].type == '1') + (m.v[0].type == '1');
	assert_int_equal(links, 1);
	assert_int_equal(l.v[0].size, big->size);
	assert_int_equal(m.v[0].size, big->size);
	assert_int_equal(m.v[0].mode & 0777, 0644);
	aidx_list_release(&l);
	aidx_list_release(&m);
	/* in a listing too */
	assert_int_equal(arc_browse_list(b, "a", &l, &err), 0);
	assert_string_equal(l.v[2].path, "a/hardlink");
	assert_int_equal(l.v[2].size, big->size);
	aidx_list_release(&l);
	check_reads(b, "a/hardlink", big, 20, 5);
}

static void check_sparse(struct arc_browse *b)
{
	const struct file *f = file_named("sparse.img");
	struct aidx_list l;
	struct cm_err err;

	cm_err_clear(&err);
	assert_int_equal(arc_browse_stat(b, "sparse.img", &l, &err), 0);
	/* the archiver stores a file with holes as GNU sparse 1.0: only the
	 * regions, after the map; a file system without holes gave it a
	 * plain file, which must read the same */
	assert_int_equal(l.v[0].size, SPARSE_SIZE);
	if (holes) {
		assert_true(l.v[0].sparse);
		assert_true(l.v[0].stored < 400 * 1024);
	} else {
		print_message("no holes on this file system: sparse.img is "
			      "stored whole\n");
		assert_false(l.v[0].sparse);
	}
	aidx_list_release(&l);
	check_reads(b, "sparse.img", f, 60, 9);
}

static void test_read(const char *url)
{
	struct arc_browse *b = open_at(url, 0, NULL);
	struct arc_browse_stats st;

	assert_int_equal(arc_browse_info(b)->kind, AIDX_KIND_TAR);
	check_tree(b);
	for (size_t i = 0; i < NFILES; i++)
		if (strcmp(files[i].path, "sparse.img"))
			check_reads(b, files[i].path, &files[i], 60,
				    (unsigned)i);
	check_link(b);
	check_sparse(b);
	arc_browse_stats(b, &st);
	assert_true(st.cache_hits > 0);
	assert_true(st.members_decoded > 0);
	assert_true(st.cache_bytes <= 64ull << 20);
	arc_browse_free(b);
}

static void test_gzip(void **state)
{
	(void)state;
	test_read(gz);
}

static void test_zstd(void **state)
{
	(void)state;
	test_read(zs);
}

/* ---- directories only implied --------------------------------------- */

static int add_entry(void *ctx, const struct aidx_entry *e,
		     struct cm_err *err)
{
	return aidx_writer_add_entry(ctx, e, err);
}

/* GNU tar of three files named alone (no directory entries, no root),
 * indexed with the archiver's counter and index writer. */
static void test_implied(void **state)
{
	char *dir = cm_xasprintf("%s/plain", tmp);
	char *tar = cm_xasprintf("%s/t.tar", dir);
	/* dup.txt twice: a first version, then another appended (tar -r) */
	char *dup = cm_xasprintf("%s/dup.txt", dir);
	char *cmd = cm_xasprintf("tar -C '%s' --format=pax -cf '%s' "
				 "a/b/c/deep.bin a/small.txt big.bin "
				 "-C '%s' dup.txt && echo second version > '%s' "
				 "&& tar -C '%s' --format=pax -rf '%s' dup.txt",
				 src, tar, dir, dup, dir, tar);
	struct file second = { "dup.txt", 15, (unsigned char *)
			       "second version\n" };
	struct aidx_member one = { 0 };
	struct aidx_writer *w;
	struct arc_filter *count;
	struct arc_browse *b;
	struct aidx_list l;
	struct cm_err err;
	struct stat st;
	unsigned char *p;
	uint64_t isize;
	int fd, ifd;

	(void)state;
	mkdir(dir, 0755);
	write_at(dup, "the first version of dup.txt\n", 29, 0);
	assert_int_equal(system(cmd), 0);
	fd = open(tar, O_RDONLY);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	p = malloc(st.st_size);
	assert_int_equal(cm_pread_all(fd, p, st.st_size, 0), 0);
	close(fd);
	cm_err_clear(&err);
	w = aidx_writer_new(AIDX_KIND_TAR, AIDX_CODEC_NONE, tmp, 0, &err);
	assert_non_null(w);
	one.clen = one.ulen = (uint64_t)st.st_size;
	assert_int_equal(aidx_writer_add_member(w, &one, &err), 0);
	count = arc_count_new(ARC_METHOD_TREE, NULL);
	arc_count_on_entry(count, add_entry, w);
	assert_int_equal(arc_write(count, p, st.st_size, &err), 0);
	assert_int_equal(arc_close(count, &err), 0);
	arc_free(count);
	assert_int_equal(aidx_writer_finish(w, st.st_size, st.st_size, &ifd,
					    &isize, &err), 0);
	aidx_writer_free(w);
	{
		unsigned char *ib = malloc(isize);
		char *iname = cm_xasprintf("%s%s", tar, AIDX_SUFFIX);

		assert_int_equal(cm_pread_all(ifd, ib, isize, 0), 0);
		close(ifd);
		fd = open(iname, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_int_equal(write(fd, ib, isize), (ssize_t)isize);
		close(fd);
		free(ib);
		free(iname);
	}
	free(p);

	b = open_at(tar, 0, NULL);
	assert_int_equal(arc_browse_stat(b, "", &l, &err), 0);
	assert_int_equal(l.v[0].type, '5');
	assert_int_equal(l.v[0].mode, 0755);
	assert_int_equal(l.v[0].uid, 0);
	assert_true(l.v[0].header_off == UINT64_MAX);
	assert_true(l.v[0].mtime_sec > 0); /* the newest of the files' */
	aidx_list_release(&l);
	assert_int_equal(arc_browse_stat(b, "a/b", &l, &err), 0);
	assert_int_equal(l.v[0].type, '5');
	assert_string_equal(l.v[0].path, "a/b");
	aidx_list_release(&l);
	assert_int_equal(arc_browse_stat(b, "a/b/c/deep.bin", &l, &err), 0);
	assert_int_equal(l.v[0].type, '0');
	aidx_list_release(&l);
	assert_int_equal(arc_browse_stat(b, "a/bb", &l, &err), -ENOENT);

	assert_int_equal(arc_browse_list(b, "", &l, &err), 0);
	assert_int_equal(l.n, 3); /* dup.txt once */
	assert_string_equal(l.v[0].path, "a");
	assert_int_equal(l.v[0].type, '5');
	assert_true(l.v[0].header_off == UINT64_MAX);
	assert_string_equal(l.v[1].path, "big.bin");
	assert_string_equal(l.v[2].path, "dup.txt");
	assert_int_equal(l.v[2].size, 15);
	aidx_list_release(&l);
	/* a name held twice is what tar -x leaves: the last */
	check_reads(b, "dup.txt", &second, 10, 5);
	assert_int_equal(arc_browse_list(b, "a", &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].path, "a/b");
	assert_int_equal(l.v[0].type, '5');
	assert_string_equal(l.v[1].path, "a/small.txt");
	aidx_list_release(&l);
	assert_int_equal(arc_browse_list(b, "a/b", &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].path, "a/b/c");
	aidx_list_release(&l);
	assert_int_equal(arc_browse_list(b, "a/b/c", &l, &err), 0);
	assert_int_equal(l.n, 1);
	aidx_list_release(&l);
	assert_int_equal(arc_browse_list(b, "a/small.txt", &l, &err),
			 -ENOTDIR);
	/* an uncompressed archive reads straight from the object */
	check_reads(b, "big.bin", file_named("big.bin"), 30, 3);
	check_reads(b, "a/b/c/deep.bin", file_named("a/b/c/deep.bin"), 30, 4);
	arc_browse_free(b);
	free(cmd);
	free(dup);
	free(tar);
	free(dir);
}

/* ---- errors ----------------------------------------------------------- */

static char *copy_file(const char *from, const char *to, off_t cut)
{
	int in = open(from, O_RDONLY), out;
	struct stat st;
	unsigned char *p;

	assert_true(in >= 0 && fstat(in, &st) == 0);
	p = malloc(st.st_size);
	assert_int_equal(cm_pread_all(in, p, st.st_size, 0), 0);
	close(in);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(out >= 0);
	assert_int_equal(write(out, p, st.st_size - cut),
			 (ssize_t)(st.st_size - cut));
	close(out);
	free(p);
	return cm_xstrdup(to);
}

static void test_errors(void **state)
{
	struct arc_browse_opts o = { 0 };
	struct arc_browse *b = NULL;
	struct cm_err err;
	char *p, *q, *img;

	(void)state;
	p = cm_xasprintf("%s/noindex.tar.gz", tmp);
	free(copy_file(gz, p, 0));
	o.url = p;
	cm_err_clear(&err);
	assert_int_equal(arc_browse_open(&o, &b, &err), -ENOENT);
	assert_null(b);
	assert_non_null(strstr(err.msg, "not indexed"));
	assert_non_null(strstr(err.msg, p));

	/* another archive's index: the sizes differ */
	q = cm_xasprintf("%s%s", zs, AIDX_SUFFIX);
	o.index_url = q;
	assert_int_equal(arc_browse_open(&o, &b, &err), -ESTALE);
	assert_non_null(strstr(err.msg, "another archive"));
	free(q);

	/* a truncated archive: its index no longer fits it */
	q = cm_xasprintf("%s%s", gz, AIDX_SUFFIX);
	free(copy_file(gz, p, 1000));
	o.index_url = q;
	assert_int_equal(arc_browse_open(&o, &b, &err), -ESTALE);

	/* a corrupted member (the middle of the one holding big.bin's
	 * 100,000th byte): an error that names it, never wrong bytes */
	free(copy_file(gz, p, 0));
	{
		struct aidx *x;
		struct aidx_list l;
		const struct aidx_member *m;
		size_t nm;
		int64_t i;
		int fd = open(p, O_RDWR);
		unsigned char byte;
		off_t at;

		assert_int_equal(aidx_open_file(q, &x, &err), 0);
		assert_int_equal(aidx_lookup(x, "big.bin", &l, &err), 0);
		i = aidx_member_for(x, l.v[0].data_off + 100000);
		m = aidx_members(x, &nm);
		assert_true(i >= 0);
		at = (off_t)(m[i].coff + m[i].clen / 2);
		aidx_list_release(&l);
		aidx_close(x);
		assert_int_equal(pread(fd, &byte, 1, at), 1);
		byte ^= 0x5a;
		assert_int_equal(pwrite(fd, &byte, 1, at), 1);
		close(fd);
	}
	o.url = p;
	assert_int_equal(arc_browse_open(&o, &b, &err), 0);
	{
		struct aidx_list l;
		unsigned char *buf = malloc(SPARSE_SIZE + 1);
		bool failed = false;

		for (size_t i = 0; i < NFILES; i++) {
			const struct file *f = &files[i];
			ssize_t got;

			assert_int_equal(arc_browse_stat(b, f->path, &l, &err),
					 0);
			cm_err_clear(&err);
			got = arc_browse_read(b, &l.v[0], 0, buf, f->size + 1,
					      &err);
			if (got < 0) {
				failed = true;
				assert_non_null(strstr(err.msg, "member "));
				assert_non_null(strstr(err.msg, p));
				/* and again: the failure is not cached */
				assert_true(arc_browse_read(b, &l.v[0], 0, buf,
							    f->size, &err) < 0);
			} else {
				assert_int_equal(got, f->size);
				assert_memory_equal(buf, f->data, f->size);
			}
			aidx_list_release(&l);
		}
		assert_true(failed);
		free(buf);
	}
	arc_browse_free(b);
	free(q);

	/* a raw image's index: nothing to browse */
	img = cm_xasprintf("%s/disk.img", tmp);
	{
		char *from = in_src("big.bin");

		free(copy_file(from, img, 0));
		free(from);
	}
	q = cm_xasprintf("%s/raw/", tmp);
	mkdir(q, 0755);
	archive(img, ARC_MODE_RAW, ARC_CODEC_GZIP, 0, q, NULL);
	free(q);
	q = cm_xasprintf("%s/raw/rawbackup.gz", tmp);
	o.url = q;
	o.index_url = NULL;
	assert_int_equal(arc_browse_open(&o, &b, &err), -EMEDIUMTYPE);
	assert_non_null(strstr(err.msg, "raw"));
	free(q);
	free(img);
	free(p);
}

/* ---- threads, cache bound, budget -------------------------------------- */

struct worker {
	struct arc_browse *b;
	unsigned id;
	atomic_int *bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	/* half the threads on big.bin, the others on their own file */
	const struct file *f = w->id % 2 ? &files[1] :
				&files[(w->id / 2) % NFILES];
	unsigned seed = w->id * 7919u + 1;
	unsigned char *buf = malloc(200 * 1024);
	struct aidx_list l;
	struct cm_err err;

	cm_err_clear(&err);
	if (arc_browse_stat(w->b, f->path, &l, &err)) {
		atomic_fetch_add(w->bad, 1);
		free(buf);
		return NULL;
	}
	for (int k = 0; k < 150; k++) {
		uint64_t off;
		size_t len, want;
		ssize_t got;

		seed = seed * 1103515245u + 12345u;
		off = f->size ? (seed >> 3) % f->size : 0;
		len = 1 + (seed >> 9) % (200 * 1024);
		want = off >= f->size ? 0 :
		       len < f->size - off ? len : f->size - off;
		got = arc_browse_read(w->b, &l.v[0], off, buf, len, &err);
		if (got != (ssize_t)want ||
		    memcmp(buf, f->data + off, want)) {
			fprintf(stderr, "thread %u: %s at %llu+%zu: %zd "
				"(%s)\n", w->id, f->path,
				(unsigned long long)off, len, got,
				got < 0 ? err.msg : "wrong bytes");
			atomic_fetch_add(w->bad, 1);
		}
	}
	aidx_list_release(&l);
	free(buf);
	return NULL;
}

static void run_threads(struct arc_browse *b)
{
	pthread_t th[8];
	struct worker w[8];
	atomic_int bad;

	atomic_init(&bad, 0);
	for (unsigned i = 0; i < 8; i++) {
		w[i] = (struct worker){ b, i, &bad };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main,
						&w[i]), 0);
	}
	for (unsigned i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&bad), 0);
}

static void test_threads(void **state)
{
	/* a cache of a few members: evictions and shared fetches */
	struct arc_browse *b = open_at(zs, 6 * SLICE, NULL);
	struct arc_browse_stats st;

	(void)state;
	run_threads(b);
	arc_browse_stats(b, &st);
	assert_true(st.cache_bytes <= 6 * SLICE);
	assert_true(st.cache_hits > 0);
	assert_true(st.cache_misses > 0);
	arc_browse_free(b);
}

static void test_budget(void **state)
{
	/* the budget is smaller than the cache: it is what bounds it, and
	 * reads go on when it is full (a buffer of their own) */
	struct cm_budget *budget = cm_budget_new(3 * SLICE);
	struct arc_browse *b = open_at(gz, 16 * SLICE, budget);
	struct cm_budget_stats bs;
	struct arc_browse_stats st;

	(void)state;
	run_threads(b);
	check_reads(b, "big.bin", file_named("big.bin"), 30, 11);
	arc_browse_stats(b, &st);
	cm_budget_stats(budget, &bs);
	assert_true(st.cache_bytes <= 3 * SLICE);
	assert_true(bs.peak <= 3 * SLICE);
	arc_browse_free(b);
	cm_budget_stats(budget, &bs);
	assert_int_equal(bs.used, 0);
	cm_budget_free(budget);

	/* a cache smaller than one member caches nothing, and reads work */
	b = open_at(gz, SLICE / 2, NULL);
	check_reads(b, "a/b/c/deep.bin", file_named("a/b/c/deep.bin"), 30, 12);
	arc_browse_stats(b, &st);
	assert_int_equal(st.cache_bytes, 0);
	assert_int_equal(st.cache_hits, 0);
	arc_browse_free(b);
}

/* members_decoded once it reaches `want`, or after about 10 s */
static uint64_t decoded_when(struct arc_browse *b, uint64_t want)
{
	struct arc_browse_stats st;

	for (int k = 0; k < 1000; k++) {
		arc_browse_stats(b, &st);
		if (st.members_decoded >= want)
			break;
		usleep(10000);
	}
	return st.members_decoded;
}

/* A sequential reader has the next member fetched before it asks; a
 * reader that jumps does not. */
static void test_ahead(void **state)
{
	const struct file *f = file_named("big.bin");
	struct arc_browse *b = open_at(gz, 0, NULL);
	struct arc_browse_stats st;
	struct aidx_list l;
	struct aidx *x;
	struct cm_err err;
	unsigned char *buf = malloc(2 * SLICE);
	uint64_t end;
	int64_t i;
	char *q = cm_xasprintf("%s%s", gz, AIDX_SUFFIX);

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(arc_browse_stat(b, "big.bin", &l, &err), 0);
	/* where the member holding the file's first bytes ends */
	assert_int_equal(aidx_open_file(q, &x, &err), 0);
	i = aidx_member_for(x, l.v[0].data_off);
	assert_true(i >= 0);
	end = aidx_members(x, &(size_t){ 0 })[i].uoff +
	      aidx_members(x, &(size_t){ 0 })[i].ulen - l.v[0].data_off;
	aidx_close(x);

	assert_int_equal(arc_browse_read(b, &l.v[0], 0, buf, 100, &err), 100);
	assert_int_equal(decoded_when(b, 2), 2); /* this one and the next */
	/* on into the next member: found, not fetched again */
	assert_int_equal(arc_browse_read(b, &l.v[0], 100, buf, end, &err),
			 (ssize_t)end);
	assert_memory_equal(buf, f->data + 100, end);
	arc_browse_stats(b, &st);
	assert_int_equal(st.cache_misses, 1);
	assert_true(st.cache_hits >= 2);
	aidx_list_release(&l);
	arc_browse_free(b);

	/* a jump is no stream: nothing is fetched ahead */
	b = open_at(gz, 0, NULL);
	assert_int_equal(arc_browse_stat(b, "big.bin", &l, &err), 0);
	assert_int_equal(arc_browse_read(b, &l.v[0], 5 * SLICE + 10, buf,
					 100, &err), 100);
	usleep(300000);
	arc_browse_stats(b, &st);
	assert_int_equal(st.members_decoded, 1);
	aidx_list_release(&l);
	arc_browse_free(b);
	free(buf);
	free(q);
}

/* ---- the real S3 server ------------------------------------------------ */

/* The `export K=V` lines of the file named by VAULTFS_S3_ENV. */
static bool load_s3_env(void)
{
	const char *path = getenv("VAULTFS_S3_ENV");
	char line[1024];
	FILE *f;

	if (!path)
		return false;
	f = fopen(path, "r");
	if (!f)
		fail_msg("VAULTFS_S3_ENV=%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *k = line, *v;

		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(k, "export ", 7))
			k += 7;
		v = strchr(k, '=');
		if (*k == '#' || !v)
			continue;
		*v++ = '\0';
		setenv(k, v, 1);
	}
	fclose(f);
	return true;
}

static int delete_one(void *ctx, const struct s3_list_entry *e)
{
	void **c = ctx;
	struct cm_err err;

	cm_err_clear(&err);
	return s3_delete_object(c[0], c[1], e->key, &err);
}

/* the bucket of test_s3, emptied and removed whatever its outcome */
static struct s3_client *s3c;
static char s3bucket[64];

static int s3_teardown(void **state)
{
	struct cm_err err;
	void *ctx[2] = { s3c, s3bucket };
	int rc = 0;

	(void)state;
	if (!s3c)
		return 0;
	cm_err_clear(&err);
	if (s3bucket[0] &&
	    (s3_list_objects(s3c, s3bucket, NULL, delete_one, ctx, &err) ||
	     s3_delete_bucket(s3c, s3bucket, &err))) {
		fprintf(stderr, "bucket %s: %s\n", s3bucket, err.msg);
		rc = -1;
	}
	s3_client_free(s3c);
	s3c = NULL;
	return rc;
}

static void test_s3(void **state)
{
	struct s3_client_opts so = { 0 };
	struct s3_client *c;
	struct arc_browse_opts o = { 0 };
	struct arc_browse *b;
	struct arc_browse_stats st, st2;
	struct aidx_list l;
	struct cm_err err;
	char bucket[64], url[128], *dir, *path;
	unsigned char *data, *buf;
	const size_t size = 8u << 20;
	int rc;

	(void)state;
	if (!load_s3_env())
		skip(); /* no S3 server on this machine */
	cm_err_clear(&err);
	c = s3c = s3_client_new(&so, &err);
	if (!c)
		fail_msg("s3 client: %s", err.msg);
	snprintf(bucket, sizeof(bucket), "vf-browse-%d-%ld", (int)getpid(),
		 (long)time(NULL));
	if (s3_create_bucket(c, bucket, &err))
		fail_msg("create bucket %s: %s", bucket, err.msg);
	memcpy(s3bucket, bucket, sizeof(s3bucket));

	/* 8 MiB of noise in 1 MiB members (the default slice) */
	dir = cm_xasprintf("%s/s3src", tmp);
	mkdir(dir, 0755);
	path = cm_xasprintf("%s/noise.bin", dir);
	data = malloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(rand() >> 7);
	write_at(path, data, size, 0);
	snprintf(url, sizeof(url), "s3://%s/p/", bucket);
	archive(dir, ARC_MODE_TREE, ARC_CODEC_GZIP, 0, url, c);

	snprintf(url, sizeof(url), "s3://%s/p/backup.tar.gz", bucket);
	o.url = url;
	o.client = c;
	rc = arc_browse_open(&o, &b, &err);
	if (rc)
		fail_msg("open %s: %s", url, err.msg);
	arc_browse_stats(b, &st);
	assert_int_equal(arc_browse_stat(b, "noise.bin", &l, &err), 0);
	buf = malloc(1u << 20);
	/* 1 MiB from 3.5 MiB: two members of the data, no more */
	assert_int_equal(arc_browse_read(b, &l.v[0], 3584 * 1024, buf,
					 1u << 20, &err), 1 << 20);
	assert_memory_equal(buf, data + 3584 * 1024, 1u << 20);
	arc_browse_stats(b, &st2);
	print_message("s3: a 1 MiB read fetched %llu stored bytes, decoded "
		      "%llu members (of 8)\n",
		      (unsigned long long)(st2.bytes_fetched -
					   st.bytes_fetched),
		      (unsigned long long)st2.members_decoded);
	assert_true(st2.members_decoded <= 2);
	/* stored bytes of the archive: two members of noise, ~1 MiB each,
	 * plus the index blocks the stat read */
	assert_true(st2.bytes_fetched - st.bytes_fetched < (2u << 20) +
							    (256u << 10));
	assert_true(st2.bytes_fetched - st.bytes_fetched > (1u << 20));

	/* all of it as cat reads it: the members ahead come once each,
	 * shared between the reader and the read-ahead */
	{
		struct timespec t0, t1;
		double secs;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (uint64_t off = 0; off < size; off += 128 * 1024) {
			assert_int_equal(arc_browse_read(b, &l.v[0], off, buf,
							 128 * 1024, &err),
					 128 * 1024);
			assert_memory_equal(buf, data + off, 128 * 1024);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		arc_browse_stats(b, &st);
		print_message("s3: 8 MiB read in 128 KiB pieces in %.2f s "
			      "(%.0f MiB/s), %llu members decoded, %llu hits, "
			      "%llu misses\n", secs, 8 / secs,
			      (unsigned long long)st.members_decoded,
			      (unsigned long long)st.cache_hits,
			      (unsigned long long)st.cache_misses);
		/* 8 or 9 members hold the file: none decoded twice */
		assert_true(st.members_decoded <= 9);
		assert_true(st.bytes_fetched - st2.bytes_fetched <
			    (7u << 20) + (256u << 10));
	}
	aidx_list_release(&l);
	arc_browse_free(b);

	/* no index object: "not indexed", as for a local archive */
	{
		char iurl[160];

		snprintf(iurl, sizeof(iurl), "s3://%s/p/none.index", bucket);
		o.index_url = iurl;
		assert_int_equal(arc_browse_open(&o, &b, &err), -ENOENT);
		assert_non_null(strstr(err.msg, "not indexed"));
	}

	free(buf);
	free(data);
	free(path);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_zstd),
		cmocka_unit_test(test_implied),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_ahead),
		cmocka_unit_test_teardown(test_s3, s3_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
