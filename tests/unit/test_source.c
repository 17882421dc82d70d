/*
 * test_source.c - the archiver's sources (archiver/source.h) against an
 * in-memory capture filter: trees read back with libarchive's reader and
 * compared with what was made; raw images compared byte for byte, with
 * holes and zero blocks seen as arc_write_zeros() calls.
 *
 * Fault injection: main() sets VAULTFS_FAULT before anything runs, and the
 * switch counts calls per site over the whole process, so the tests that
 * rely on it run first, in order:
 *   arc.tar_read@1  the first file data read fails (test_tree_read_error)
 *   arc.raw_read@2  the second raw read fails (test_raw_vanish)
 *
 * Loop devices and mounts (test_auto_images) need root, /dev/loop-control
 * and mkfs.ext4; the test is skipped without them. Partitioned disks, xfs
 * and signals are tried with tests/tools/arc_source_try.c and by the
 * integration tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "archiver/arc.h"
#include "archiver/blockdev.h"
#include "archiver/source.h"
#include "archiver/source_int.h"
#include "core/buf.h"
#include "core/json.h"

/* --- a filter that keeps everything in memory --- */

struct capture {
	struct cm_buf data;
	unsigned zero_calls;
	uint64_t zero_bytes;
	uint64_t fail_at;  /* 0: never; else fail once this much is in */
};

static int cap_check(struct capture *c, uint64_t n, struct cm_err *err)
{
	if (c->fail_at && c->data.len + n > c->fail_at)
		return cm_err_set(err, EPIPE, "capture: full");
	return 0;
}

static int cap_write(struct arc_filter *f, const void *p, size_t n,
		     struct cm_err *err)
{
	struct capture *c = f->state;
	int rc = cap_check(c, n, err);

	if (rc == 0 && cm_buf_append(&c->data, p, n) != 0)
		rc = cm_err_set(err, ENOMEM, "capture");
	return rc;
}

static int cap_write_zeros(struct arc_filter *f, uint64_t n,
			   struct cm_err *err)
{
	static const char z[65536];
	struct capture *c = f->state;
	int rc = cap_check(c, n, err);

	c->zero_calls++;
	c->zero_bytes += n;
	while (rc == 0 && n) {
		size_t k = n < sizeof(z) ? (size_t)n : sizeof(z);

		if (cm_buf_append(&c->data, z, k) != 0)
			rc = cm_err_set(err, ENOMEM, "capture");
		n -= k;
	}
	return rc;
}

static int cap_close(struct arc_filter *f, struct cm_err *err)
{
	return 0;
}

static void cap_abort(struct arc_filter *f)
{
}

static void cap_free(struct arc_filter *f)
{
	struct capture *c = f->state;

	cm_buf_release(&c->data);
	free(c);
	free(f);
}

static const struct arc_filter_ops cap_ops = {
	.name = "capture",
	.write = cap_write,
	.write_zeros = cap_write_zeros,
	.close = cap_close,
	.abort = cap_abort,
	.free = cap_free,
};

static struct arc_filter *cap_new(void)
{
	struct arc_filter *f = calloc(1, sizeof(*f));
	struct capture *c = calloc(1, sizeof(*c));

	assert_non_null(f);
	assert_non_null(c);
	cm_buf_init(&c->data, 0);
	f->ops = &cap_ops;
	f->state = c;
	return f;
}

static struct capture *cap(struct arc_filter *f)
{
	return f->state;
}

/* --- scratch trees --- */

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/vaultfs-test-source-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* rm -rf below a dir fd, at any depth and path length. */
static void rm_below(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;

	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			continue;
		int sub = openat(dirfd(d), de->d_name,
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW);

		if (sub >= 0) {
			fchmod(sub, 0700);
			rm_below(sub);
		}
		unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void rm_tree(char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd >= 0)
		rm_below(fd);
	rmdir(dir);
	free(dir);
}

static void put_file(int dfd, const char *name, const void *p, size_t n,
		     mode_t mode)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
}

static void fill_random(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (char)(seed >> 16);
	}
}

/* --- reading a tar back --- */

struct got_entry {
	char *path;
	struct archive_entry *e;  /* a clone */
	struct cm_buf data;       /* logical content, holes as zeros */
	int64_t max_data_offset;  /* where the last data block began */
};

struct got {
	struct got_entry *v;
	size_t n;
};

static void read_tar(const struct cm_buf *tar, struct got *g)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;

	memset(g, 0, sizeof(*g));
	assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
	assert_int_equal(archive_read_open_memory(a, tar->data, tar->len),
			 ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		struct got_entry *ge;
		const void *buf;
		size_t size;
		la_int64_t off;
		int r;

		g->v = realloc(g->v, (g->n + 1) * sizeof(*g->v));
		ge = &g->v[g->n++];
		memset(ge, 0, sizeof(*ge));
		ge->path = strdup(archive_entry_pathname(e));
		ge->e = archive_entry_clone(e);
		cm_buf_init(&ge->data, 0);
		while ((r = archive_read_data_block(a, &buf, &size, &off)) ==
		       ARCHIVE_OK) {
			static const char z[4096];

			while (ge->data.len < (size_t)off) {
				size_t k = (size_t)off - ge->data.len;

				cm_buf_append(&ge->data, z,
					      k < sizeof(z) ? k : sizeof(z));
			}
			cm_buf_append(&ge->data, buf, size);
			if (size)
				ge->max_data_offset = off;
		}
		assert_int_equal(r, ARCHIVE_EOF);
	}
	archive_read_free(a);
}

static struct got_entry *find(struct got *g, const char *path)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->v[i].path, path))
			return &g->v[i];
	return NULL;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->v[i].path);
		archive_entry_free(g->v[i].e);
		cm_buf_release(&g->v[i].data);
	}
	free(g->v);
}

/* --- tests --- */

/* First test: the fault switch fails the first file data read. */
static void test_tree_read_error(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct arc_filter *f = cap_new();
	struct arc_stats st;
	struct cm_err err;
	struct got g;
	struct got_entry *ge;
	char data[100000];

	memset(data, 'x', sizeof(data));
	put_file(dfd, "victim", data, sizeof(data), 0644);
	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_source_tree(dir, f, NULL, &st, &err), 0);
	assert_int_equal(st.skipped_count, 1);
	assert_non_null(strstr(st.skipped[0].reason, "read error"));
	assert_string_equal(st.skipped[0].path, "./victim");
	read_tar(&cap(f)->data, &g);
	ge = find(&g, "./victim");
	assert_non_null(ge);
	/* the header was out: the content is there, as zeros */
	assert_int_equal(archive_entry_size(ge->e), sizeof(data));
	got_free(&g);
	arc_stats_release(&st);
	arc_free(f);
	close(dfd);
	rm_tree(dir);
}

/* Second: the fault switch fails the second raw read. */
static void test_raw_vanish(void **state)
{
	char *dir = make_tmpdir();
	char path[256], *data = malloc(3 << 20);
	struct arc_filter *f = cap_new();
	struct arc_stats st;
	struct cm_err err;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	fill_random(data, 3 << 20, 7);
	put_file(dfd, "img", data, 3 << 20, 0644);
	snprintf(path, sizeof(path), "%s/img", dir);
	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_source_raw(path, f, NULL, &st, &err), -EIO);
	assert_non_null(strstr(err.msg, "read failed at byte 1048576"));
	assert_non_null(strstr(err.msg, "did the device go away?"));
	arc_stats_release(&st);
	arc_free(f);
	free(data);
	close(dfd);
	rm_tree(dir);
}

static void make_deep(int dfd, char *rel, size_t relmax)
{
	char part[251];
	int cur = dup(dfd);

	memset(part, 'd', 250);
	part[250] = '\0';
	rel[0] = '\0';
	for (int i = 0; i < 20; i++) {
		int next;

		assert_int_equal(mkdirat(cur, part, 0755), 0);
		next = openat(cur, part, O_RDONLY | O_DIRECTORY);
		assert_true(next >= 0);
		close(cur);
		cur = next;
		strncat(rel, part, relmax - strlen(rel) - 1);
		strncat(rel, "/", relmax - strlen(rel) - 1);
	}
	put_file(cur, "deep", "bottom\n", 7, 0600);
	strncat(rel, "deep", relmax - strlen(rel) - 1);
	close(cur);
}

/* The POSIX ACL xattr: user::rw- user:1234:r-- group::r-- mask::r--
 * other::--- */
static void set_acl(int dfd, const char *name)
{
	unsigned char x[4 + 5 * 8];
	static const struct {
		unsigned short tag, perm;
		unsigned id;
	} ents[] = {
		{ 0x01, 6, 0xffffffffu }, { 0x02, 4, 1234 },
		{ 0x04, 4, 0xffffffffu }, { 0x10, 4, 0xffffffffu },
		{ 0x20, 0, 0xffffffffu },
	};
	unsigned char *p = x + 4;
	int fd;

	x[0] = 2;
	x[1] = x[2] = x[3] = 0;
	for (size_t i = 0; i < 5; i++, p += 8) {
		p[0] = ents[i].tag & 0xff;
		p[1] = ents[i].tag >> 8;
		p[2] = ents[i].perm & 0xff;
		p[3] = ents[i].perm >> 8;
		for (int b = 0; b < 4; b++)
			p[4 + b] = (ents[i].id >> (8 * b)) & 0xff;
	}
	fd = openat(dfd, name, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fsetxattr(fd, "system.posix_acl_access", x, sizeof(x),
				   0),
			 0);
	close(fd);
}

static void test_tree_roundtrip(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct arc_filter *f = cap_new();
	struct arc_stats st;
	struct cm_err err;
	struct got g;
	struct got_entry *ge;
	char deep[6000], name[300], longname[256], buf[600];
	char *block = malloc(65536);
	const void *v;
	const char *xn;
	size_t xs;
	struct timespec ts[2] = { { 1600000000, 123456789 },
				  { 1600000000, 123456789 } };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, sock;
	bool root = geteuid() == 0;

	/* a plain file: content, mode, owner, ns mtime, an xattr */
	put_file(dfd, "plain", "hello\n", 6, 0640);
	assert_int_equal(utimensat(dfd, "plain", ts, 0), 0);
	fd = openat(dfd, "plain", O_RDONLY);
	assert_int_equal(fsetxattr(fd, "user.vaultfs", "v\0bin", 5, 0), 0);
	if (root)
		assert_int_equal(fchown(fd, 1234, 5678), 0);
	close(fd);
	assert_int_equal(mkdirat(dfd, "dir", 0750), 0);
	put_file(dfd, "dir/nested", "n", 1, 0600);
	set_acl(dfd, "dir/nested");
	assert_int_equal(symlinkat("plain", dfd, "link"), 0);
	assert_int_equal(symlinkat("nowhere/at/all", dfd, "dangling"), 0);
	assert_int_equal(linkat(dfd, "plain", dfd, "dir/hard", 0), 0);
	put_file(dfd, "empty", "", 0, 0644);
	assert_int_equal(mkfifoat(dfd, "fifo", 0600), 0);
	/* a sparse file: 64 KiB at 0 and at 32 MiB, 64 MiB long */
	fill_random(block, 65536, 1);
	fd = openat(dfd, "sparse", O_WRONLY | O_CREAT, 0644);
	pwrite_all(fd, block, 65536, 0);
	pwrite_all(fd, block, 65536, 32 << 20);
	assert_int_equal(ftruncate(fd, 64 << 20), 0);
	close(fd);
	/* odd names: a newline and a byte that is not UTF-8; 255 bytes */
	snprintf(name, sizeof(name), "odd\nname\xff");
	put_file(dfd, name, "odd", 3, 0644);
	memset(longname, 'L', 255);
	longname[255] = '\0';
	put_file(dfd, longname, "long", 4, 0644);
	make_deep(dfd, deep, sizeof(deep));
	assert_true(strlen(deep) > 5000);
	/* a socket, which tar cannot hold */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);

	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_source_tree(dir, f, NULL, &st, &err), 0);
	close(sock);

	/* the stream: whole tar records, holes not stored */
	assert_int_equal(cap(f)->data.len % 10240, 0);
	assert_true(cap(f)->data.len < (2 << 20));
	/* plain, nested, empty, sparse, odd, long, deep */
	assert_int_equal(st.files, 7);
	/* ., dir, 20 deep ones */
	assert_int_equal(st.dirs, 22);
	assert_int_equal(st.symlinks, 2);
	assert_int_equal(st.hardlinks, 1);
	assert_int_equal(st.other, 1);
	assert_int_equal(st.skipped_count, 1);
	assert_string_equal(st.skipped[0].path, "./sock");
	assert_true(st.bytes_read >= 2 * 65536 + 6);
	assert_true(st.bytes_read < 1 << 20);

	read_tar(&cap(f)->data, &g);
	assert_non_null(find(&g, "./"));
	assert_null(find(&g, "./sock"));

	/* one name of plain/dir/hard holds the data, the other links to it,
	 * in the order the directory lists them */
	ge = find(&g, "./dir/hard");
	assert_non_null(ge);
	if (archive_entry_hardlink(ge->e)) {
		assert_string_equal(archive_entry_hardlink(ge->e), "./plain");
		ge = find(&g, "./plain");
	} else {
		struct got_entry *other = find(&g, "./plain");

		assert_non_null(other);
		assert_string_equal(archive_entry_hardlink(other->e),
				    "./dir/hard");
	}
	assert_non_null(ge);
	assert_int_equal(ge->data.len, 6);
	assert_memory_equal(ge->data.data, "hello\n", 6);
	assert_int_equal(archive_entry_perm(ge->e), 0640);
	assert_int_equal(archive_entry_mtime(ge->e), 1600000000);
	assert_int_equal(archive_entry_mtime_nsec(ge->e), 123456789);
	/* numeric owners only: no names looked up */
	xn = archive_entry_uname(ge->e);
	assert_true(!xn || !*xn);
	xn = archive_entry_gname(ge->e);
	assert_true(!xn || !*xn);
	if (root) {
		assert_int_equal(archive_entry_uid(ge->e), 1234);
		assert_int_equal(archive_entry_gid(ge->e), 5678);
	}
	assert_true(archive_entry_xattr_reset(ge->e) >= 1);
	bool seen = false;
	while (archive_entry_xattr_next(ge->e, &xn, &v, &xs) == ARCHIVE_OK) {
		if (!strcmp(xn, "user.vaultfs")) {
			assert_int_equal(xs, 5);
			assert_memory_equal(v, "v\0bin", 5);
			seen = true;
		}
	}
	assert_true(seen);

	ge = find(&g, "./dir/nested");
	assert_non_null(ge);
	{
		char *acl = archive_entry_acl_to_text(
			ge->e, NULL, ARCHIVE_ENTRY_ACL_TYPE_ACCESS);

		assert_non_null(acl);
		assert_non_null(strstr(acl, "1234:r--"));
		free(acl);
	}

	ge = find(&g, "./dir/");
	assert_non_null(ge);
	assert_int_equal(archive_entry_perm(ge->e), 0750);

	ge = find(&g, "./link");
	assert_non_null(ge);
	assert_int_equal(archive_entry_filetype(ge->e), AE_IFLNK);
	assert_string_equal(archive_entry_symlink(ge->e), "plain");
	ge = find(&g, "./dangling");
	assert_non_null(ge);
	assert_string_equal(archive_entry_symlink(ge->e), "nowhere/at/all");

	ge = find(&g, "./fifo");
	assert_non_null(ge);
	assert_int_equal(archive_entry_filetype(ge->e), AE_IFIFO);

	ge = find(&g, "./empty");
	assert_non_null(ge);
	assert_int_equal(archive_entry_size(ge->e), 0);

	ge = find(&g, "./sparse");
	assert_non_null(ge);
	assert_int_equal(archive_entry_size(ge->e), 64 << 20);
	assert_int_equal(ge->max_data_offset, 32 << 20);
	assert_memory_equal(ge->data.data, block, 65536);
	assert_memory_equal(ge->data.data + (32 << 20), block, 65536);

	snprintf(buf, sizeof(buf), "./%s", name);
	ge = find(&g, buf);
	assert_non_null(ge);
	assert_memory_equal(ge->data.data, "odd", 3);
	snprintf(buf, sizeof(buf), "./%s", longname);
	ge = find(&g, buf);
	assert_non_null(ge);
	assert_memory_equal(ge->data.data, "long", 4);
	{
		char full[6100];

		snprintf(full, sizeof(full), "./%s", deep);
		ge = find(&g, full);
		assert_non_null(ge);
		assert_int_equal(ge->data.len, 7);
		assert_memory_equal(ge->data.data, "bottom\n", 7);
	}

	got_free(&g);
	arc_stats_release(&st);
	arc_free(f);
	free(block);
	close(dfd);
	rm_tree(dir);
}

/* Unreadable files and directories are skipped, as a user sees them. */
static int unreadable_child(const char *dir)
{
	struct arc_filter *f = cap_new();
	struct arc_stats st;
	struct cm_err err;
	struct got g;
	int bad = 0;

	arc_stats_init(&st);
	cm_err_clear(&err);
	if (arc_source_tree(dir, f, NULL, &st, &err) != 0)
		return 10;
	if (st.skipped_count != 2)
		bad = 11;
	read_tar(&cap(f)->data, &g);
	if (!find(&g, "./ok") || find(&g, "./secret") ||
	    !find(&g, "./locked/") || find(&g, "./locked/inside"))
		bad = 12;
	if (st.files != 1)
		bad = 13;
	got_free(&g);
	arc_stats_release(&st);
	arc_free(f);
	return bad;
}

static void test_tree_unreadable(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int status;
	pid_t pid;

	assert_int_equal(chmod(dir, 0755), 0);
	put_file(dfd, "ok", "ok", 2, 0644);
	put_file(dfd, "secret", "s", 1, 0000);
	assert_int_equal(mkdirat(dfd, "locked", 0755), 0);
	put_file(dfd, "locked/inside", "i", 1, 0644);
	assert_int_equal(fchmodat(dfd, "locked", 0000, 0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* root reads everything: become nobody to be refused */
		if (geteuid() == 0 &&
		    (setresgid(65534, 65534, 65534) != 0 ||
		     setresuid(65534, 65534, 65534) != 0))
			_exit(20);
		_exit(unreadable_child(dir));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(dfd);
	rm_tree(dir);
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
	uint64_t *last = ctx;

	last[0] = done;
	last[1] = total;
	last[2]++;
}

static void test_raw_holes_and_zeros(void **state)
{
	const size_t size = (16 << 20) + 12345;  /* not a block multiple */
	char *dir = make_tmpdir();
	char path[256], *data = malloc(1 << 20), *want = calloc(1, size);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd;
	struct arc_filter *f = cap_new();
	struct arc_source_opts opts = { 0 };
	uint64_t prog[3] = { 0 };
	struct arc_stats st;
	struct cm_err err;

	/* 1 MiB data, hole, 128 KiB data at 9 MiB, 1 MiB of written zeros at
	 * 10 MiB, 64 KiB data at 12 MiB, a hole to the end */
	fill_random(data, 1 << 20, 3);
	fd = openat(dfd, "img", O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	pwrite_all(fd, data, 1 << 20, 0);
	memcpy(want, data, 1 << 20);
	pwrite_all(fd, data, 128 << 10, 9 << 20);
	memcpy(want + (9 << 20), data, 128 << 10);
	memset(data + 512, 0, 1 << 19);
	pwrite_all(fd, data + 512, 1 << 19, 10 << 20);
	pwrite_all(fd, data + 512, 1 << 19, (10 << 20) + (1 << 19));
	fill_random(data, 1 << 20, 3);
	pwrite_all(fd, data + 5, 65536, 12 << 20);
	memcpy(want + (12 << 20), data + 5, 65536);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/img", dir);

	opts.progress = progress_cb;
	opts.progress_ctx = prog;
	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_source_raw(path, f, &opts, &st, &err), 0);
	assert_int_equal(cap(f)->data.len, size);
	assert_memory_equal(cap(f)->data.data, want, size);
	assert_int_equal(st.method, ARC_METHOD_RAW);
	assert_int_equal(st.bytes_read, size);
	assert_int_equal(st.bytes_total, size);
	assert_int_equal(st.bytes_zero, cap(f)->zero_bytes);
	/* all but the 1 MiB + 128 KiB + 64 KiB of data came as zeros */
	assert_int_equal(cap(f)->zero_bytes,
			 size - (1 << 20) - (128 << 10) - 65536);
	/* runs are coalesced: hole, zeros+hole, tail */
	assert_true(cap(f)->zero_calls <= 4);
	assert_int_equal(prog[0], size);
	assert_int_equal(prog[1], size);
	assert_true(prog[2] >= 2);

	arc_stats_release(&st);
	arc_free(f);
	free(data);
	free(want);
	close(dfd);
	rm_tree(dir);
}

/* A raw image inside a tar: exact bytes, zero runs passed as zeros. */
static void test_tar_raw_entry(void **state)
{
	const size_t size = 8 << 20;
	char *dir = make_tmpdir();
	char *data = malloc(1 << 20);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd;
	struct arc_filter *f = cap_new();
	struct arc_tar *t;
	struct arc_stats st;
	struct cm_err err;
	struct got g;
	struct got_entry *ge;

	assert_int_equal(mkdirat(dfd, "tree", 0755), 0);
	put_file(dfd, "tree/a", "a", 1, 0644);
	fill_random(data, 1 << 20, 9);
	fd = openat(dfd, "img", O_RDWR | O_CREAT, 0644);
	pwrite_all(fd, data, 300000, 4096);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);

	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_tar_new(f, NULL, &st, &t, &err), 0);
	{
		char tree[300];

		snprintf(tree, sizeof(tree), "%s/tree", dir);
		assert_int_equal(arc_tar_add_tree(t, tree, "p1/", &err), 0);
	}
	/* the window from 4096: the data first, then zeros */
	assert_int_equal(arc_tar_add_raw(t, "p2.img", fd, 4096, size - 4096,
					 &err),
			 0);
	assert_int_equal(arc_tar_finish(t, &err), 0);
	arc_tar_free(t);
	assert_int_equal(cap(f)->data.len % 10240, 0);
	assert_int_equal(st.bytes_zero, cap(f)->zero_bytes);
	assert_true(cap(f)->zero_bytes >= size - 4096 - 300000 - 65536 * 2);
	assert_true(cap(f)->zero_calls <= 3);

	read_tar(&cap(f)->data, &g);
	assert_non_null(find(&g, "p1/"));
	assert_non_null(find(&g, "p1/a"));
	ge = find(&g, "p2.img");
	assert_non_null(ge);
	assert_int_equal(archive_entry_size(ge->e), size - 4096);
	assert_int_equal(archive_entry_perm(ge->e), 0600);
	assert_int_equal(ge->data.len, size - 4096);
	assert_memory_equal(ge->data.data, data, 300000);
	for (size_t i = 300000; i < size - 4096; i++)
		if (ge->data.data[i])
			fail_msg("byte %zu of p2.img is not zero", i);
	got_free(&g);

	close(fd);
	arc_stats_release(&st);
	arc_free(f);
	free(data);
	close(dfd);
	rm_tree(dir);
}

static void test_chain_failure(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char *data = malloc(1 << 20);
	struct arc_filter *f = cap_new();
	struct arc_stats st;
	struct cm_err err;

	fill_random(data, 1 << 20, 5);
	put_file(dfd, "big", data, 1 << 20, 0644);
	cap(f)->fail_at = 200000;
	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_source_tree(dir, f, NULL, &st, &err), -EPIPE);
	assert_string_equal(err.msg, "capture: full");
	arc_stats_release(&st);
	arc_free(f);
	free(data);
	close(dfd);
	rm_tree(dir);
}

static void test_cancel(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct arc_filter *f = cap_new();
	atomic_int stop = 1;
	struct arc_source_opts opts = { .cancel = &stop };
	struct arc_stats st;
	struct cm_err err;
	char path[256];

	put_file(dfd, "img", "x", 1, 0644);
	snprintf(path, sizeof(path), "%s/img", dir);
	arc_stats_init(&st);
	assert_int_equal(arc_source_raw(path, f, &opts, &st, &err),
			 -ECANCELED);
	assert_int_equal(arc_source_tree(dir, f, &opts, &st, &err),
			 -ECANCELED);
	arc_stats_release(&st);
	arc_free(f);
	close(dfd);
	rm_tree(dir);
}

static void test_plan(void **state)
{
	char *dir = make_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char *data = malloc(1 << 20);
	struct arc_filter *f = cap_new();
	struct arc_plan *p;
	struct arc_stats st;
	struct cm_err err;
	enum arc_method m;
	char path[256];

	arc_stats_init(&st);
	cm_err_clear(&err);
	/* nothing there */
	snprintf(path, sizeof(path), "%s/nothing", dir);
	assert_int_equal(arc_plan_new(path, ARC_MODE_AUTO, NULL, &st, &p, &err),
			 -ENOENT);
	assert_null(p);
	assert_non_null(strstr(err.msg, "No such file"));
	/* a directory cannot be raw */
	assert_int_equal(arc_plan_new(dir, ARC_MODE_RAW, NULL, &st, &p, &err),
			 -EINVAL);
	/* a directory is a tree */
	assert_int_equal(arc_plan_new(dir, ARC_MODE_AUTO, NULL, &st, &p, &err),
			 0);
	assert_int_equal(arc_plan_method(p), ARC_METHOD_TREE);
	arc_plan_free(p);

	/* random bytes: nothing to mount, raw with a warning; no root needed
	 * since images are probed as files */
	fill_random(data, 1 << 20, 11);
	put_file(dfd, "random.img", data, 1 << 20, 0644);
	snprintf(path, sizeof(path), "%s/random.img", dir);
	assert_int_equal(arc_plan_new(path, ARC_MODE_TREE, NULL, &st, &p, &err),
			 -ENOTSUP);
	assert_non_null(strstr(err.msg, "no filesystem"));
	arc_stats_release(&st);
	arc_stats_init(&st);
	assert_int_equal(arc_archive_auto(path, ARC_MODE_AUTO, f, NULL, &st,
					  &m, &err),
			 0);
	assert_int_equal(m, ARC_METHOD_RAW);
	assert_int_equal(st.method, ARC_METHOD_RAW);
	assert_int_equal(st.warnings_count, 1);
	assert_int_equal(cap(f)->data.len, 1 << 20);
	assert_memory_equal(cap(f)->data.data, data, 1 << 20);

	arc_stats_release(&st);
	arc_free(f);
	free(data);
	close(dfd);
	rm_tree(dir);
}

/* --- real loop devices and mounts (root) --- */

struct events {
	char log[16][300];
	int n;
};

static int record(void *ctx, enum arc_res_event ev, enum arc_res_kind kind,
		  const char *path, const char *detail)
{
	static const char *const evs[] = { "creating", "created",
					   "released" };
	struct events *e = ctx;

	if (e->n < 16)
		snprintf(e->log[e->n++], sizeof(e->log[0]), "%s %s %s",
			 evs[ev], arc_res_kind_name(kind), path);
	return 0;
}

/* Whether anything of ours is still mounted or attached. */
static void assert_released(const struct events *ev)
{
	char line[4096];
	FILE *f = fopen("/proc/mounts", "r");

	/* our mounts only: other tests on the machine may have their own */
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		for (int i = 0; i < ev->n; i++) {
			const char *mp = strstr(ev->log[i], "mount /");
			char needle[160];

			if (!mp)
				continue;
			snprintf(needle, sizeof(needle), " %s ",
				 mp + strlen("mount "));
			assert_null(strstr(line, needle));
		}
	}
	fclose(f);
	for (int i = 0; i < ev->n; i++) {
		char sys[128];
		const char *dev = strstr(ev->log[i], "loop /dev/");

		if (!dev)
			continue;
		char back[4096] = "";
		FILE *b;

		snprintf(sys, sizeof(sys), "/sys/block/%s/loop/backing_file",
			 dev + strlen("loop /dev/"));
		/* detached, or attached since by another test running at the
		 * same time (loop numbers are reused): not to one of ours */
		b = fopen(sys, "r");
		if (!b)
			continue;
		if (!fgets(back, sizeof(back), b))
			back[0] = '\0';
		fclose(b);
		assert_null(strstr(back, "/vaultfs-test-source-"));
	}
}

static void test_auto_images(void **state)
{
	char *dir, cmd[1000], img[300], src[300], *want = NULL;
	struct arc_filter *f;
	struct events ev = { .n = 0 };
	struct arc_devs *devs;
	struct arc_source_opts opts = { 0 };
	struct arc_stats st;
	struct cm_err err;
	enum arc_method m;
	struct got g;
	struct got_entry *ge;
	int fd;

	if (geteuid() != 0 || access("/dev/loop-control", W_OK) != 0 ||
	    system("mkfs.ext4 -V >/dev/null 2>&1") != 0)
		skip();
	dir = make_tmpdir();
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(img, sizeof(img), "%s/ext4.img", dir);
	assert_int_equal(mkdir(src, 0755), 0);
	fd = open(src, O_RDONLY | O_DIRECTORY);
	put_file(fd, "hello", "hello, ext4\n", 12, 0644);
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "truncate -s 32M %s && mkfs.ext4 -q -F -d %s %s", img, src,
		 img);
	assert_int_equal(system(cmd), 0);

	/* a filesystem: mounted read-only, archived as a tree, released */
	devs = arc_devs_new(NULL, record, &ev);
	opts.devs = devs;
	f = cap_new();
	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_archive_auto(img, ARC_MODE_AUTO, f, &opts, &st,
					  &m, &err),
			 0);
	assert_int_equal(m, ARC_METHOD_TREE);
	assert_int_equal(st.nvolumes, 1);
	assert_string_equal(st.volumes[0].fstype, "ext4");
	assert_int_equal(st.volumes[0].action, ARC_VOL_TREE);
	read_tar(&cap(f)->data, &g);
	ge = find(&g, "./hello");
	assert_non_null(ge);
	assert_memory_equal(ge->data.data, "hello, ext4\n", 12);
	assert_non_null(find(&g, "./lost+found/"));
	got_free(&g);
	assert_int_equal(ev.n, 5);
	assert_non_null(strstr(ev.log[0], "created loop /dev/loop"));
	assert_non_null(strstr(ev.log[1], "creating mount "));
	assert_non_null(strstr(ev.log[2], "created mount "));
	assert_non_null(strstr(ev.log[3], "released mount "));
	assert_non_null(strstr(ev.log[4], "released loop "));
	assert_released(&ev);
	arc_stats_release(&st);
	arc_free(f);

	/* a bad superblock checksum: found, will not mount, raw */
	fd = open(img, O_RDWR);
	assert_int_equal(pwrite(fd, "X", 1, 1024 + 0x78), 1);
	close(fd);
	ev.n = 0;
	f = cap_new();
	arc_stats_init(&st);
	assert_int_equal(arc_archive_auto(img, ARC_MODE_AUTO, f, &opts, &st,
					  &m, &err),
			 0);
	assert_int_equal(m, ARC_METHOD_RAW);
	assert_int_equal(st.warnings_count, 1);
	assert_non_null(strstr(st.warnings[0], "would not mount"));
	want = malloc(32 << 20);
	fd = open(img, O_RDONLY);
	assert_int_equal(read(fd, want, 32 << 20), 32 << 20);
	close(fd);
	assert_int_equal(cap(f)->data.len, 32 << 20);
	assert_memory_equal(cap(f)->data.data, want, 32 << 20);
	assert_released(&ev);
	arc_stats_release(&st);
	arc_free(f);

	/* tree mode refuses to fall back */
	f = cap_new();
	arc_stats_init(&st);
	assert_int_equal(arc_archive_auto(img, ARC_MODE_TREE, f, &opts, &st,
					  &m, &err),
			 -ENOTSUP);
	assert_non_null(strstr(err.msg, "would not mount"));
	assert_int_equal(cap(f)->data.len, 0);
	assert_released(&ev);
	arc_stats_release(&st);
	arc_free(f);

	free(want);
	arc_devs_free(devs);
	rm_tree(dir);
}

static void test_stats_json(void **state)
{
	struct arc_stats st;
	struct arc_volume *v;
	struct cm_json *root = cm_json_new_object(), *parsed;
	struct cm_err err;
	char *text, *shown;

	arc_stats_init(&st);
	st.bytes_read = 42;
	arc_stats_skip(&st, "./bad\n\xff\\name", "open: %s",
		       "Permission denied");
	arc_stats_warn(&st, "w %d", 1);
	v = arc_stats_add_volume(&st);
	v->name = strdup("p1");
	v->fstype = strdup("ext4");
	v->label = strdup("lab\xc3\xa9l"); /* valid UTF-8 stays */
	v->action = ARC_VOL_TREE;
	arc_stats_to_json(&st, root);
	text = cm_json_print(root);
	assert_int_equal(cm_json_parse(text, strlen(text), &parsed, &err), 0);
	assert_int_equal(cm_json_num(cm_json_get(parsed, "bytes_read")), 42);
	assert_string_equal(cm_json_get_str(parsed, "method"), "tree");
	assert_string_equal(
		cm_json_get_str(cm_json_first(cm_json_get(parsed, "skipped")),
				"path"),
		"./bad\\x0a\\xff\\\\name");
	assert_string_equal(
		cm_json_get_str(cm_json_first(cm_json_get(parsed, "volumes")),
				"label"),
		"lab\xc3\xa9l");
	assert_int_equal(cm_json_num(cm_json_get(parsed, "skipped_count")), 1);
	assert_non_null(cm_json_get(parsed, "complete"));
	assert_false(cm_json_bool(cm_json_get(parsed, "complete")));
	free(text);
	cm_json_free(parsed);
	cm_json_free(root);
	arc_stats_release(&st);

	/* overlongs and surrogates are not UTF-8 */
	shown = arc_printable("\xc0\xaf\xed\xa0\x80ok");
	assert_string_equal(shown, "\\xc0\\xaf\\xed\\xa0\\x80ok");
	free(shown);
}

/* Directories are looked at again once their listing is written: nested
 * and empty ones, siblings with and without contents, under a prefix that
 * is a directory's or not: nothing changes, so nothing is recorded. */
static void test_tree_dirs_unchanged(void **state)
{
	static const char *const dirs[] = { "a", "a/b", "a/b/c", "a/e1",
					    "d", "e2", "f", "f/g", "f/g/h" };
	char *dir = make_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct arc_filter *f = cap_new();
	struct arc_stats st;
	struct arc_tar *t;
	struct cm_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		assert_int_equal(mkdirat(dfd, dirs[i], 0755), 0);
	put_file(dfd, "a/b/c/x", "x", 1, 0644);
	put_file(dfd, "a/y", "y", 1, 0644);
	put_file(dfd, "d/z", "z", 1, 0644);
	put_file(dfd, "f/g/h/w", "w", 1, 0644);
	put_file(dfd, "top", "t", 1, 0644);
	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_int_equal(arc_tar_new(f, NULL, &st, &t, &err), 0);
	assert_int_equal(arc_tar_add_tree(t, dir, NULL, &err), 0);
	assert_int_equal(arc_tar_add_tree(t, dir, "p1/", &err), 0);
	assert_int_equal(arc_tar_add_tree(t, dir, "raw-", &err), 0);
	assert_int_equal(arc_tar_finish(t, &err), 0);
	arc_tar_free(t);
	assert_int_equal(st.dirs, 3 * 10);
	assert_int_equal(st.skipped_count, 0);
	assert_true(arc_stats_complete(&st));
	arc_stats_release(&st);
	arc_free(f);
	close(dfd);
	rm_tree(dir);
}

/* Complete or not: the count decides, the summary and --strict name the
 * first items, the list is capped and the count is not. */
static void test_stats_complete(void **state)
{
	struct arc_stats st;
	struct cm_err err;
	char *sum;

	arc_stats_init(&st);
	cm_err_clear(&err);
	assert_true(arc_stats_complete(&st));
	assert_null(arc_stats_summary(&st));
	st.strict = true;
	assert_int_equal(arc_stats_check(&st, &err), 0);
	arc_stats_skip(&st, "./a", "read error at byte %d", 7);
	assert_false(arc_stats_complete(&st));
	assert_int_equal(arc_stats_check(&st, &err), -EIO);
	assert_string_equal(err.msg, "strict: ./a: read error at byte 7 (the "
				     "archive would be incomplete)");
	sum = arc_stats_summary(&st);
	assert_string_equal(sum, "1 item not archived: ./a: read error at "
				 "byte 7");
	free(sum);
	for (int i = 0; i < ARC_STATS_MAX_LIST + 5; i++)
		arc_stats_skip(&st, "./b", "changed");
	assert_int_equal(st.skipped_count, ARC_STATS_MAX_LIST + 6);
	assert_int_equal(st.nskipped, ARC_STATS_MAX_LIST);
	sum = arc_stats_summary(&st);
	assert_string_equal(sum, "1006 items not archived: ./a: read error at "
				 "byte 7; ./b: changed; ./b: changed; ...");
	free(sum);
	st.strict = false;
	assert_int_equal(arc_stats_check(&st, &err), 0);
	arc_stats_release(&st);
}

static void test_is_zero(void **state)
{
	char b[100] = { 0 };

	assert_true(arc_is_zero(b, sizeof(b)));
	assert_true(arc_is_zero(b, 3));
	b[99] = 1;
	assert_false(arc_is_zero(b, sizeof(b)));
	assert_true(arc_is_zero(b, 99));
	b[0] = 1;
	assert_false(arc_is_zero(b, 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* these two first: see the top of the file */
		cmocka_unit_test(test_tree_read_error),
		cmocka_unit_test(test_raw_vanish),
		cmocka_unit_test(test_tree_roundtrip),
		cmocka_unit_test(test_tree_unreadable),
		cmocka_unit_test(test_raw_holes_and_zeros),
		cmocka_unit_test(test_tar_raw_entry),
		cmocka_unit_test(test_chain_failure),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_auto_images),
		cmocka_unit_test(test_stats_json),
		cmocka_unit_test(test_stats_complete),
		cmocka_unit_test(test_tree_dirs_unchanged),
		cmocka_unit_test(test_is_zero),
	};

	setenv("VAULTFS_FAULT", "arc.tar_read@1,arc.raw_read@2", 1);
	setenv("VAULTFS_LOG", "error", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
