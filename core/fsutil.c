/*
 * fsutil.c - see fsutil.h.
 */
#include "fsutil.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cm_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int cm_pread_full(int fd, void *p, size_t n, off_t off, size_t *got,
		  struct cm_err *err)
{
	*got = 0;
	while (*got < n) {
		ssize_t r = pread(fd, (char *)p + *got, n - *got,
				  off + (off_t)*got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cm_err_set(err, errno, "read: %s",
					  strerror(errno));
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

int cm_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, c, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		off += w;
		n -= (size_t)w;
	}
	return 0;
}

int cm_pread_all(int fd, void *p, size_t n, off_t off)
{
	size_t got;
	int rc = cm_pread_full(fd, p, n, off, &got, NULL);

	if (rc)
		return rc;
	return got < n ? -EIO : 0;
}

/* mkdir -p; with `durable`, the parent of every directory made is
 * fsynced once it holds it. */
static int mkdirs(const char *path, mode_t mode, bool durable,
		  struct cm_err *err)
{
	char *p = cm_xstrdup(path);
	int rc = 0;

	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0) {
			if (errno != EEXIST) {
				rc = cm_err_set(err, errno, "mkdir %s: %s", p,
						strerror(errno));
				break;
			}
		} else if (durable) {
			rc = cm_fsync_parent(p);
			if (rc) {
				cm_err_set(err, -rc, "%s: fsync of its "
					   "parent: %s", p, strerror(-rc));
				break;
			}
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

int cm_mkdirs(const char *path, mode_t mode, struct cm_err *err)
{
	return mkdirs(path, mode, false, err);
}

int cm_mkdirs_durable(const char *path, mode_t mode, struct cm_err *err)
{
	return mkdirs(path, mode, true, err);
}

int cm_fsync_parent(const char *path)
{
	char *copy = cm_xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int cm_write_file_atomic(const char *path, const void *p, size_t n,
			 struct cm_err *err)
{
	char *tmp = cm_xasprintf("%s.partial", path);
	int fd, rc;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = cm_err_set(err, errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = cm_write_all(fd, p, n);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc) {
		cm_err_set(err, -rc, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		rc = cm_err_set(err, errno, "rename %s: %s", tmp,
				strerror(errno));
		goto out;
	}
	rc = cm_fsync_parent(path);
	if (rc)
		cm_err_set(err, -rc, "%s: fsync of the directory: %s", path,
			   strerror(-rc));
out:
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}
