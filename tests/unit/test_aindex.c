/*
 * test_aindex.c - the archive index (archiver/aindex.c): written, read
 * back through its file, and checked against what went in: lookups,
 * directory listings, subtree walks in tar order, the member table; the
 * spilled (external-sort) path gives the very same bytes as the in-memory
 * one; a flipped byte is caught by a block's checksum. A 1,000,000-entry
 * tree is measured for size and load time (printed, not asserted).
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archiver/aindex.h"
#include "core/err.h"
#include "core/fsutil.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The index file's bytes into a temporary path; returns its size. */
static uint64_t save(int fd, uint64_t size, char *path)
{
	char *buf = malloc(size);
	int out;

	assert_non_null(buf);
	assert_int_equal(cm_pread_all(fd, buf, size, 0), 0);
	strcpy(path, "/tmp/vaultfs-test-aindex-XXXXXX");
	out = mkstemp(path);
	assert_true(out >= 0);
	assert_int_equal(cm_write_all(out, buf, size), 0);
	close(out);
	free(buf);
	return size;
}

/* A small tree, in tar order, as tar.c would write it. */
static const struct {
	const char *path;
	char type;
	uint64_t size;
	const char *link;
} tree[] = {
	{ "./", '5', 0, "" },
	{ "./etc/", '5', 0, "" },
	{ "./etc/passwd", '0', 1234, "" },
	{ "./etc/hosts", '0', 77, "" },
	{ "./etc/hosts.allow", '0', 0, "" },
	{ "./etc-old/", '5', 0, "" },
	{ "./etc-old/x", '0', 5, "" },
	{ "./etc/ssl/", '5', 0, "" },
	{ "./etc/ssl/certs", '2', 0, "/usr/share/ca" },
	{ "./etc/motd", '1', 0, "./etc/hosts" },
	{ "./dev/", '5', 0, "" },
	{ "./dev/null", '3', 0, "" },
	{ "./empty/", '5', 0, "" },
	{ "./zz", '6', 0, "" },
};

#define NTREE (sizeof(tree) / sizeof(tree[0]))

static void add_tree(struct aidx_writer *w)
{
	uint64_t off = 0;
	struct cm_err err;

	for (size_t i = 0; i < NTREE; i++) {
		struct aidx_entry e = {
			.path = tree[i].path, .type = tree[i].type,
			.link = tree[i].link, .size = tree[i].size,
			.stored = tree[i].size, .mode = 0640 + (uint32_t)i,
			.uid = 1000 + (uint32_t)i, .gid = 100,
			.uname = i % 2 ? "alice" : "", .gname = "staff",
			.mtime_sec = 1700000000 + (int64_t)i,
			.mtime_nsec = 123456789, .header_off = off,
			.data_off = off + 1024,
		};

		if (tree[i].type == '3') {
			e.devmajor = 1;
			e.devminor = 3;
		}
		assert_int_equal(aidx_writer_add_entry(w, &e, &err), 0);
		off += 1024 + (tree[i].size + 511) / 512 * 512;
	}
}

static struct aidx *write_and_open(size_t budget, char *path, uint64_t *sz)
{
	struct aidx_writer *w;
	struct aidx *x;
	struct cm_err err;
	int fd;

	w = aidx_writer_new(AIDX_KIND_TAR, AIDX_CODEC_GZIP, NULL, budget,
			    &err);
	assert_non_null(w);
	for (int i = 0; i < 3; i++) {
		struct aidx_member m = { 100 * (uint64_t)i, 100,
					 1000 * (uint64_t)i,
					 i == 2 ? 500 : 1000 };

		assert_int_equal(aidx_writer_add_member(w, &m, &err), 0);
	}
	add_tree(w);
	assert_int_equal(aidx_writer_finish(w, 300, 2500, &fd, sz, &err), 0);
	aidx_writer_free(w);
	save(fd, *sz, path);
	close(fd);
	if (aidx_open_file(path, &x, &err) != 0)
		fail_msg("open: %s", err.msg);
	return x;
}

static void test_round_trip(void **state)
{
	char path[64];
	uint64_t size;
	struct aidx *x = write_and_open(0, path, &size);
	struct aidx_list l;
	struct cm_err err;
	const struct aidx_member *m;
	size_t n;

	(void)state;
	assert_int_equal(aidx_info(x)->entries, NTREE);
	assert_int_equal(aidx_info(x)->members, 3);
	assert_int_equal(aidx_info(x)->archive_size, 300);
	assert_int_equal(aidx_info(x)->stream_size, 2500);
	m = aidx_members(x, &n);
	assert_int_equal(n, 3);
	assert_int_equal(m[2].coff, 200);
	assert_int_equal(m[2].ulen, 500);
	assert_int_equal(aidx_member_for(x, 0), 0);
	assert_int_equal(aidx_member_for(x, 999), 0);
	assert_int_equal(aidx_member_for(x, 1000), 1);
	assert_int_equal(aidx_member_for(x, 2499), 2);
	assert_int_equal(aidx_member_for(x, 2500), -1);

	/* every entry comes back whole by its path, in any spelling */
	for (size_t i = 0; i < NTREE; i++) {
		const struct aidx_entry *e;

		if (aidx_lookup(x, tree[i].path, &l, &err) != 0)
			fail_msg("lookup %s: %s", tree[i].path, err.msg);
		assert_int_equal(l.n, 1);
		e = &l.v[0];
		assert_int_equal(e->type, tree[i].type);
		assert_int_equal(e->size, tree[i].size);
		assert_int_equal(e->mode, 0640 + i);
		assert_int_equal(e->uid, 1000 + i);
		assert_string_equal(e->uname, i % 2 ? "alice" : "");
		assert_string_equal(e->gname, "staff");
		assert_int_equal(e->mtime_sec, 1700000000 + (int64_t)i);
		assert_int_equal(e->mtime_nsec, 123456789);
		assert_int_equal(e->data_off, e->header_off + 1024);
		aidx_list_release(&l);
	}
	assert_int_equal(aidx_lookup(x, "etc/ssl/certs/", &l, &err), 0);
	assert_string_equal(l.v[0].path, "etc/ssl/certs");
	assert_string_equal(l.v[0].link, "/usr/share/ca");
	aidx_list_release(&l);
	assert_int_equal(aidx_lookup(x, "/etc/motd", &l, &err), 0);
	assert_string_equal(l.v[0].link, "etc/hosts"); /* normalised */
	aidx_list_release(&l);
	assert_int_equal(aidx_lookup(x, "dev/null", &l, &err), 0);
	assert_int_equal(l.v[0].devmajor, 1);
	assert_int_equal(l.v[0].devminor, 3);
	aidx_list_release(&l);
	assert_int_equal(aidx_lookup(x, ".", &l, &err), 0);
	assert_string_equal(l.v[0].path, "");
	aidx_list_release(&l);
	assert_int_equal(aidx_lookup(x, "etc/shadow", &l, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "etc/shadow"));
	assert_int_equal(aidx_lookup(x, "nodir/x", &l, &err), -ENOENT);

	/* a directory: its children by name, and only those */
	assert_int_equal(aidx_list_dir(x, "etc", &l, &err), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0].path, "etc/hosts");
	assert_string_equal(l.v[1].path, "etc/hosts.allow");
	assert_string_equal(l.v[2].path, "etc/motd");
	assert_string_equal(l.v[3].path, "etc/passwd");
	assert_string_equal(l.v[4].path, "etc/ssl");
	aidx_list_release(&l);
	assert_int_equal(aidx_list_dir(x, "", &l, &err), 0);
	assert_int_equal(l.n, 5); /* dev etc etc-old empty zz */
	assert_string_equal(l.v[0].path, "dev");
	assert_string_equal(l.v[4].path, "zz");
	aidx_list_release(&l);
	assert_int_equal(aidx_list_dir(x, "./empty/", &l, &err), 0);
	assert_int_equal(l.n, 0);
	aidx_list_release(&l);
	assert_int_equal(aidx_list_dir(x, "etc/passwd", &l, &err), -ENOTDIR);
	assert_int_equal(aidx_list_dir(x, "nope", &l, &err), -ENOENT);

	/* a subtree in tar order: etc, not etc-old */
	assert_int_equal(aidx_walk(x, "etc", &l, &err), 0);
	assert_int_equal(l.n, 7);
	assert_string_equal(l.v[0].path, "etc");
	assert_string_equal(l.v[1].path, "etc/passwd");
	assert_string_equal(l.v[2].path, "etc/hosts");
	assert_string_equal(l.v[4].path, "etc/ssl");
	assert_string_equal(l.v[6].path, "etc/motd");
	for (size_t i = 1; i < l.n; i++)
		assert_true(l.v[i].header_off > l.v[i - 1].header_off);
	aidx_list_release(&l);
	assert_int_equal(aidx_walk(x, "", &l, &err), 0);
	assert_int_equal(l.n, NTREE);
	for (size_t i = 0; i < NTREE; i++) {
		char want[64];

		snprintf(want, sizeof(want), "%s", tree[i].path);
		assert_string_equal(l.v[i].path, aidx_normalise(want));
	}
	aidx_list_release(&l);
	aidx_close(x);
	unlink(path);
}

/* Spilled runs, merged, give the same index as one in-memory sort. */
static void test_spill_same_bytes(void **state)
{
	char p1[64], p2[64];
	uint64_t s1, s2;
	struct aidx *a = write_and_open(0, p1, &s1);
	struct aidx *b = write_and_open(300, p2, &s2); /* ~a run an entry */
	char cmd[200];

	(void)state;
	aidx_close(a);
	aidx_close(b);
	assert_int_equal(s1, s2);
	snprintf(cmd, sizeof(cmd), "cmp -s %s %s", p1, p2);
	assert_int_equal(system(cmd), 0);
	unlink(p1);
	unlink(p2);
}

/* Every byte of the index is covered by a checksum. */
static void test_corruption(void **state)
{
	char path[64];
	uint64_t size;
	struct aidx *x = write_and_open(0, path, &size);
	struct aidx_list l;
	struct cm_err err;
	int fd;
	unsigned char c;

	(void)state;
	aidx_close(x);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	/* the header */
	assert_int_equal(cm_pread_all(fd, &c, 1, 40), 0);
	c ^= 1;
	assert_int_equal(cm_pwrite_all(fd, &c, 1, 40), 0);
	assert_int_equal(aidx_open_file(path, &x, &err), -EIO);
	assert_non_null(strstr(err.msg, "header: checksum mismatch"));
	c ^= 1;
	assert_int_equal(cm_pwrite_all(fd, &c, 1, 40), 0);
	/* the first entry block's payload (after the 16-byte frame) */
	assert_int_equal(cm_pread_all(fd, &c, 1, 128 + 20), 0);
	c ^= 0x40;
	assert_int_equal(cm_pwrite_all(fd, &c, 1, 128 + 20), 0);
	assert_int_equal(aidx_open_file(path, &x, &err), 0);
	assert_int_not_equal(aidx_lookup(x, "etc/passwd", &l, &err), 0);
	assert_non_null(strstr(err.msg, "index block 0"));
	aidx_close(x);
	/* the last byte: the member table's */
	assert_int_equal(cm_pread_all(fd, &c, 1, (off_t)size - 1), 0);
	c ^= 0x01;
	assert_int_equal(cm_pwrite_all(fd, &c, 1, (off_t)size - 1), 0);
	assert_int_equal(aidx_open_file(path, &x, &err), -EIO);
	assert_non_null(strstr(err.msg, "member table"));
	close(fd);
	unlink(path);
}

/* A raw archive's index: members only. */
static void test_raw(void **state)
{
	struct aidx_writer *w;
	struct aidx *x;
	struct aidx_list l;
	struct cm_err err;
	struct aidx_member m = { 0, 10, 0, 1 << 20 };
	struct aidx_entry e = { .path = "x" };
	char path[64];
	uint64_t size;
	int fd;

	(void)state;
	w = aidx_writer_new(AIDX_KIND_RAW, AIDX_CODEC_ZSTD, NULL, 0, &err);
	assert_int_equal(aidx_writer_add_member(w, &m, &err), 0);
	m.uoff = 5; /* a gap */
	assert_int_equal(aidx_writer_add_member(w, &m, &err), -EINVAL);
	assert_int_equal(aidx_writer_add_entry(w, &e, &err), -EINVAL);
	assert_int_equal(aidx_writer_finish(w, 10, 1 << 20, &fd, &size, &err),
			 0);
	aidx_writer_free(w);
	save(fd, size, path);
	close(fd);
	assert_int_equal(aidx_open_file(path, &x, &err), 0);
	assert_int_equal(aidx_info(x)->kind, AIDX_KIND_RAW);
	assert_int_equal(aidx_info(x)->codec, AIDX_CODEC_ZSTD);
	assert_int_equal(aidx_info(x)->members, 1);
	assert_int_equal(aidx_lookup(x, "x", &l, &err), -ENOENT);
	aidx_close(x);
	unlink(path);
}

/*
 * 1,000,000 entries: 1,000 directories of 1,000 files, paths and sizes of
 * a real tree's shape; the writer's budget spills. Prints the index's size
 * against the budget and the time to open it and list one
 * directory.
 */
static void test_million(void **state)
{
#ifdef VAULTFS_SANITIZED
	const unsigned dirs = 1000, files = 300; /* CMakeLists.txt says why */
#else
	const unsigned dirs = 1000, files = 1000;
#endif
	struct aidx_writer *w;
	struct aidx *x;
	struct aidx_list l;
	struct cm_err err;
	uint64_t off = 0, size, data = 0;
	double t0, t_open, t_list;
	struct rusage ru;
	char path[64], name[128];
	int fd;

	(void)state;
	w = aidx_writer_new(AIDX_KIND_TAR, AIDX_CODEC_GZIP, NULL, 0, &err);
	assert_non_null(w);
	t0 = now();
	for (unsigned d = 0; d < dirs; d++) {
		struct aidx_entry e = { .type = '5', .mode = 0755,
					.uname = "", .gname = "",
					.link = "" };

		snprintf(name, sizeof(name), "./usr/share/package-%04u/", d);
		e.path = name;
		e.header_off = off;
		e.data_off = off + 512;
		e.mtime_sec = 1700000000 + d;
		assert_int_equal(aidx_writer_add_entry(w, &e, &err), 0);
		off += 512;
		for (unsigned f = 0; f < files; f++) {
			uint64_t sz = (uint64_t)((d * 7919u + f * 104729u) %
						 20000u);

			snprintf(name, sizeof(name),
				 "./usr/share/package-%04u/file-%u.txt", d,
				 f * 37u % 1000u);
			e.type = '0';
			e.mode = 0644;
			e.path = name;
			e.size = e.stored = sz;
			e.header_off = off;
			e.data_off = off + 512;
			e.mtime_nsec = (f * 7777u) % 1000000000u;
			assert_int_equal(aidx_writer_add_entry(w, &e, &err),
					 0);
			off += 512 + (sz + 511) / 512 * 512;
			data += sz;
		}
	}
	{
		/* members of 1 MiB, as the archiver makes them */
		struct aidx_member m = { 0, 0, 0, 0 };

		for (uint64_t u = 0; u < off; u += m.ulen) {
			m.coff += m.clen;
			m.uoff = u;
			m.ulen = off - u < (1 << 20) ? off - u : 1 << 20;
			m.clen = m.ulen / 3;
			assert_int_equal(aidx_writer_add_member(w, &m, &err),
					 0);
		}
	}
	assert_int_equal(aidx_writer_finish(w, off / 3, off, &fd, &size, &err),
			 0);
	aidx_writer_free(w);
	getrusage(RUSAGE_SELF, &ru);
	printf("# %u entries written in %.2f s, peak RSS %ld MiB\n",
	       dirs + dirs * files, now() - t0, ru.ru_maxrss / 1024);
	save(fd, size, path);
	close(fd);

	t0 = now();
	assert_int_equal(aidx_open_file(path, &x, &err), 0);
	t_open = now() - t0;
	t0 = now();
	assert_int_equal(aidx_list_dir(x, "usr/share/package-0500", &l, &err),
			 0);
	t_list = now() - t0;
	assert_int_equal(l.n, files);
	assert_string_equal(l.v[0].path, "usr/share/package-0500/file-0.txt");
	aidx_list_release(&l);
	assert_int_equal(aidx_info(x)->entries, dirs + dirs * files);
	assert_int_equal(aidx_lookup(x, "usr/share/package-0999/file-999.txt",
				     &l, &err), 0);
	aidx_list_release(&l);
	printf("# index %.1f MB for %u entries (%.2f %% of a %.0f MB archive "
	       "at 3:1; budget min(3 %%, 40 MB)); open %.3f s, list one "
	       "directory of %u %.3f s\n", (double)size / 1e6,
	       dirs + dirs * files, 100.0 * (double)size / (double)(off / 3),
	       (double)(off / 3) / 1e6, t_open, files, t_list);
	assert_true(size < (40u << 20)); /* the absolute budget */
	aidx_close(x);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_spill_same_bytes),
		cmocka_unit_test(test_corruption),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_million),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
