/*
 * view_store_local.c - the archive view's store in a local directory laid
 * out like a bucket (a key "a/b/c" is the file DIR/a/b/c), for a local
 * destination (see view_store.h).
 *
 * Every path is opened relative to the store's directory descriptor and
 * without following a symlink in its last component; keys reach here
 * checked by the view (no empty, "." or ".." component). A writer creates
 * DIR/PARENT/.vaultfs-upload-XXXXXXXX (recorded first, so a crash leaves a
 * record that removes it), writes it, and at finish fsyncs it and renames
 * it over the key, then fsyncs the directory: the object appears whole or
 * not at all. Listings hide those temporary files. Directories are real
 * here: an empty one exists.
 *
 * Threads: all calls are plain system calls on descriptors; a reader may
 * be read from several threads at once (pread).
 */
#include "view_store.h"

#include "fault.h"
#include "fsutil.h"
#include "mem.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct local_store {
	struct view_store base;
	char *dir;
	char *name;
	int dirfd;
};

struct view_store_rd {
	int fd;
};

struct view_store_wr {
	struct local_store *s;
	char *key;
	char *tmp; /* relative to the store */
	int fd;
	bool finished;
};

static struct local_store *L(struct view_store *s)
{
	return (struct local_store *)s;
}

/* "a/b/" -> "a/b"; "" -> "." (a new string) */
static char *rel_dir(const char *prefix)
{
	size_t n = strlen(prefix);

	if (!n)
		return cm_xstrdup(".");
	return cm_xstrndup(prefix, prefix[n - 1] == '/' ? n - 1 : n);
}

#define LS_PAGE_DEFAULT 1000

static int ls_list(struct view_store *s, const char *prefix,
		   const char *cursor, unsigned max, view_list_fn fn,
		   void *ctx, char **next, struct cm_err *err)
{
	char *rel = rel_dir(prefix), *end;
	struct dirent *de;
	struct stat st;
	unsigned seen = 0;
	long pos = 0;
	DIR *d;
	int fd, rc = 0;

	*next = NULL;
	if (!max)
		max = LS_PAGE_DEFAULT;
	if (cm_fault("view.list")) {
		rc = cm_err_set(err, EIO, "%s/%s: listing: injected fault",
				L(s)->dir, rel);
		free(rel);
		return rc;
	}
	if (cursor) {
		errno = 0;
		pos = strtol(cursor, &end, 10);
		if (errno || end == cursor || *end) {
			rc = cm_err_set(err, EINVAL,
					"%s/%s: bad listing position '%s'",
					L(s)->dir, rel, cursor);
			free(rel);
			return rc;
		}
	}
	fd = openat(L(s)->dirfd, rel,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT || errno == ENOTDIR
			 ? 0
			 : cm_err_set(err, errno, "%s/%s: %s", L(s)->dir, rel,
				      strerror(errno));
		free(rel);
		return rc;
	}
	d = fdopendir(fd);
	if (!d) {
		rc = cm_err_set(err, errno, "%s/%s: %s", L(s)->dir, rel,
				strerror(errno));
		close(fd);
		free(rel);
		return rc;
	}
	if (cursor)
		seekdir(d, pos);
	/* max directory entries a page, counted as read (hidden ones too),
	 * so a page's work is bounded whatever the directory holds */
	for (;;) {
		struct view_obj obj;

		pos = telldir(d);
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = cm_err_set(err, errno, "%s/%s: %s",
						L(s)->dir, rel,
						strerror(errno));
			break;
		}
		if (seen++ == max) {
			/* more to come: the next page starts with it */
			*next = cm_xasprintf("%ld", pos);
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strncmp(de->d_name, VIEW_LOCAL_TMP_PREFIX,
			     strlen(VIEW_LOCAL_TMP_PREFIX)))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;
		memset(&obj, 0, sizeof(obj));
		obj.is_dir = S_ISDIR(st.st_mode);
		obj.size = obj.is_dir ? 0 : (uint64_t)st.st_size;
		obj.mtime = st.st_mtime;
		rc = fn(ctx, de->d_name, &obj);
		if (rc)
			break;
	}
	if (rc) {
		free(*next);
		*next = NULL;
	}
	closedir(d);
	free(rel);
	return rc;
}

static int ls_stat(struct view_store *s, const char *key, struct view_obj *out,
		   struct cm_err *err)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (fstatat(L(s)->dirfd, key, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -ENOENT;
		return cm_err_set(err, errno, "%s/%s: %s", L(s)->dir, key,
				  strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		out->is_dir = true;
	else if (!S_ISREG(st.st_mode))
		return -ENOENT;
	out->size = out->is_dir ? 0 : (uint64_t)st.st_size;
	out->mtime = st.st_mtime;
	return 0;
}

static int ls_has_children(struct view_store *s, const char *prefix, bool *out,
			   struct cm_err *err)
{
	char *rel = rel_dir(prefix);
	struct stat st;

	*out = fstatat(L(s)->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
	free(rel);
	return 0;
}

static int ls_open_read(struct view_store *s, const char *key,
			const struct view_obj *obj, struct view_store_rd **out,
			struct cm_err *err)
{
	int fd = openat(L(s)->dirfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return cm_err_set(err, errno, "%s/%s: %s", L(s)->dir, key,
				  strerror(errno));
	*out = cm_xcalloc(1, sizeof(**out));
	(*out)->fd = fd;
	return 0;
}

static int ls_read(struct view_store_rd *rd, uint64_t off, void *buf,
		   size_t len, size_t *got, struct cm_err *err)
{
	return cm_pread_full(rd->fd, buf, len, (off_t)off, got, err);
}

static void ls_close_read(struct view_store_rd *rd)
{
	if (!rd)
		return;
	close(rd->fd);
	free(rd);
}

/* mkdir -p of the directories above key */
static int make_parents(struct local_store *s, const char *key,
			struct cm_err *err)
{
	char *path = cm_xstrdup(key);
	int rc = 0;

	for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(s->dirfd, path, 0755) < 0 && errno != EEXIST) {
			rc = cm_err_set(err, errno, "%s/%s: %s", s->dir, path,
					strerror(errno));
			break;
		}
		*p = '/';
	}
	free(path);
	return rc;
}

static int ls_open_write(struct view_store *s, const char *key,
			 uint64_t reserved, view_wr_record_fn record, void *ctx,
			 struct view_store_wr **out, struct cm_err *err)
{
	struct view_store_wr *w = cm_xcalloc(1, sizeof(*w));
	const char *slash = strrchr(key, '/');
	char *abs = NULL;
	int rc;

	w->s = L(s);
	w->fd = -1;
	w->key = cm_xstrdup(key);
	w->tmp = cm_xasprintf(
	    "%.*s%s%016llx", slash ? (int)(slash - key + 1) : 0, key,
	    VIEW_LOCAL_TMP_PREFIX, (unsigned long long)cm_random(UINT64_MAX));
	rc = make_parents(L(s), key, err);
	if (rc)
		goto fail;
	abs = cm_xasprintf("%s/%s", L(s)->dir, w->tmp);
	if (record) {
		rc = record(ctx, NULL, abs, err);
		if (rc)
			goto fail;
	}
	w->fd =
	    openat(L(s)->dirfd, w->tmp,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = cm_err_set(err, errno, "%s: %s", abs, strerror(errno));
		goto fail;
	}
	free(abs);
	*out = w;
	return 0;
fail:
	free(abs);
	free(w->key);
	free(w->tmp);
	free(w);
	return rc;
}

static int ls_write(struct view_store_wr *w, const void *p, size_t n,
		    struct cm_err *err)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(w->fd, (const char *)p + done, n - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cm_err_set(err, errno, "%s/%s: %s", w->s->dir,
					  w->tmp, strerror(errno));
		done += (size_t)r;
	}
	return 0;
}

static int ls_finish(struct view_store_wr *w, struct view_obj *out,
		     struct cm_err *err)
{
	const char *slash = strrchr(w->key, '/');
	char *parent = slash ? cm_xstrndup(w->key, (size_t)(slash - w->key))
			     : cm_xstrdup(".");
	struct stat st;
	int dfd, rc = 0;

	if (fsync(w->fd) < 0 || fstat(w->fd, &st) < 0 ||
	    renameat2(w->s->dirfd, w->tmp, w->s->dirfd, w->key,
		      w->s->base.exclusive ? RENAME_NOREPLACE : 0) < 0) {
		rc = cm_err_set(err, errno, "%s/%s: %s", w->s->dir, w->key,
				strerror(errno));
		goto out;
	}
	w->finished = true;
	dfd = openat(w->s->dirfd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0)
			rc = cm_err_set(err, errno, "%s/%s: fsync: %s",
					w->s->dir, parent, strerror(errno));
		close(dfd);
	}
	if (out) {
		memset(out, 0, sizeof(*out));
		out->size = (uint64_t)st.st_size;
		out->mtime = st.st_mtime;
	}
out:
	free(parent);
	return rc;
}

static void ls_close_write(struct view_store_wr *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (!w->finished)
		unlinkat(w->s->dirfd, w->tmp, 0);
	free(w->key);
	free(w->tmp);
	free(w);
}

static int ls_remove(struct view_store *s, const char *key, struct cm_err *err)
{
	if (unlinkat(L(s)->dirfd, key, 0) < 0)
		return cm_err_set(err, errno, "%s/%s: %s", L(s)->dir, key,
				  strerror(errno));
	return 0;
}

static int ls_cleanup(struct view_store *s, const char *bucket, const char *key,
		      const char *upload_id, time_t since, struct cm_err *err)
{
	return 0; /* temporary files are removed by path */
}

static void ls_free(struct view_store *s)
{
	if (!s)
		return;
	close(L(s)->dirfd);
	free(L(s)->dir);
	free(L(s)->name);
	free(s);
}

static const struct view_store_ops local_ops = {
    .list = ls_list,
    .stat = ls_stat,
    .has_children = ls_has_children,
    .open_read = ls_open_read,
    .read = ls_read,
    .close_read = ls_close_read,
    .open_write = ls_open_write,
    .write = ls_write,
    .finish = ls_finish,
    .close_write = ls_close_write,
    .remove = ls_remove,
    .cleanup = ls_cleanup,
    .free = ls_free,
};

struct view_store *view_store_local_new(const char *dir, struct cm_err *err)
{
	struct local_store *s;
	const char *slash = strrchr(dir, '/');
	int fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		cm_err_set(err, errno, "store %s: %s", dir, strerror(errno));
		return NULL;
	}
	s = cm_xcalloc(1, sizeof(*s));
	s->base.ops = &local_ops;
	s->base.remote = false;
	s->dirfd = fd;
	s->dir = cm_xstrdup(dir);
	s->name = cm_xstrdup(slash && slash[1] ? slash + 1 : "store");
	s->base.name = s->name;
	return &s->base;
}
