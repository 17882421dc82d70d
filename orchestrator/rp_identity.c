/*
 * rp_identity.c - see rp_identity.h.
 */
#include "rp_identity.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

void orch_rp_identity_from_stat(struct orch_rp_identity *id,
				const struct stat *st)
{
	id->known = true;
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->ctime_ns = ts_ns(&st->st_ctim);
	id->mtime_ns = ts_ns(&st->st_mtim);
}

bool orch_rp_identity_equal(const struct orch_rp_identity *a,
			    const struct orch_rp_identity *b)
{
	return a->known && b->known && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->ctime_ns == b->ctime_ns &&
	       a->mtime_ns == b->mtime_ns;
}

bool orch_rp_identity_same_file(const struct orch_rp_identity *a,
				const struct orch_rp_identity *b)
{
	return !a || !b || !a->known || !b->known ||
	       (a->dev == b->dev && a->ino == b->ino);
}

const char *orch_file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "a regular file";
	case S_IFDIR: return "a directory";
	case S_IFLNK: return "a symlink";
	case S_IFBLK: return "a block device";
	case S_IFCHR: return "a character device";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	}
	return "of an unknown type";
}

/* How `now` differs from `want`, for a message. */
static const char *how_changed(const struct orch_rp_identity *want,
			       const struct stat *now)
{
	struct orch_rp_identity id;

	orch_rp_identity_from_stat(&id, now);
	if (id.dev != want->dev || id.ino != want->ino)
		return "another file took its name (new inode)";
	if (id.size != want->size)
		return "its size changed";
	if (id.mtime_ns != want->mtime_ns)
		return "its mtime changed";
	return "its ctime changed";
}

int orch_rp_open(int vfd, const char *name, const char *path, bool tree,
		 const struct orch_rp_identity *want, int *fd,
		 struct cm_err *err)
{
	const char *expect = tree ? "a directory" : "a regular file";
	struct orch_rp_identity id;
	struct stat st;
	int f, rc = 0;

	*fd = -1;
	f = openat(vfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		   O_CLOEXEC);
	if (f < 0) {
		if (errno == ELOOP)
			return cm_err_set(err, ESTALE, "recovery point %s "
					  "changed since it was queued: it is "
					  "now a symlink, not %s", path,
					  expect);
		if (errno == ENOENT)
			return cm_err_set(err, ENOENT, "recovery point %s is "
					  "gone", path);
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	}
	if (fstat(f, &st) < 0) {
		rc = cm_err_set(err, errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (tree ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		rc = cm_err_set(err, ESTALE, "recovery point %s changed since "
				"it was queued: it is now %s, not %s", path,
				orch_file_kind(st.st_mode), expect);
		goto out;
	}
	orch_rp_identity_from_stat(&id, &st);
	if (want->known && !orch_rp_identity_equal(&id, want)) {
		rc = cm_err_set(err, ESTALE, "recovery point %s changed since "
				"it was queued: %s", path,
				how_changed(want, &st));
		goto out;
	}
	if (fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK) < 0) {
		rc = cm_err_set(err, errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	*fd = f;
	f = -1;
out:
	if (f >= 0)
		close(f);
	return rc;
}

int orch_rp_check_name(int vfd, const char *name, const char *path, int fd,
		       struct cm_err *err)
{
	struct orch_rp_identity want, now;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	orch_rp_identity_from_stat(&want, &st);
	if (fstatat(vfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return cm_err_set(err, ESTALE, "recovery point %s "
					  "changed since it was opened: it is "
					  "gone", path);
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	}
	if ((st.st_mode & S_IFMT) != S_IFREG &&
	    (st.st_mode & S_IFMT) != S_IFDIR)
		return cm_err_set(err, ESTALE, "recovery point %s changed "
				  "since it was opened: it is now %s", path,
				  orch_file_kind(st.st_mode));
	orch_rp_identity_from_stat(&now, &st);
	if (!orch_rp_identity_equal(&want, &now))
		return cm_err_set(err, ESTALE, "recovery point %s changed "
				  "since it was opened: %s", path,
				  how_changed(&want, &st));
	return 0;
}

int orch_read_file_at(int vfd, const char *name, size_t max, char **text,
		      size_t *len, struct cm_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd, rc = 0;

	*text = NULL;
	*len = 0;
	fd = openat(vfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		    O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		if (errno == ELOOP)
			return cm_err_set(err, EINVAL, "a symlink, not a "
					  "regular file");
		return cm_err_set(err, errno, "%s", strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		rc = cm_err_set(err, errno, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = cm_err_set(err, EINVAL, "not a regular file (%s)",
				orch_file_kind(st.st_mode));
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = cm_err_set(err, EFBIG, "over %zu bytes", max);
		goto out;
	}
	buf = cm_xmalloc(max + 1);
	for (;;) {
		ssize_t got = read(fd, buf + n, max + 1 - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = cm_err_set(err, errno, "%s", strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > max) {
			rc = cm_err_set(err, EFBIG, "over %zu bytes", max);
			goto out;
		}
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}
