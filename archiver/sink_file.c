/*
 * sink_file.c - the hash filter and the local-file sink (see sink.h).
 */
#include "sink.h"
#include "fault.h"
#include "fsutil.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hash_state {
	struct cm_sha256 *sha;
	struct arc_hash_result result;
};

static int hash_write(struct arc_filter *f, const void *p, size_t n,
		      struct cm_err *err)
{
	struct hash_state *s = f->state;
	unsigned char *bad = NULL;
	int rc;

	/* test: a codec bug, one wrong byte that every later byte-level
	 * check takes for the truth; only a decode can see it */
	if (cm_fault("codec.corrupt")) {
		bad = cm_xmalloc(n);
		memcpy(bad, p, n);
		bad[n / 2] ^= 0x10;
		p = bad;
	}
	cm_sha256_update(s->sha, p, n);
	s->result.bytes += n;
	rc = arc_write(f->next, p, n, err);
	free(bad);
	return rc;
}

static int hash_close(struct arc_filter *f, struct cm_err *err)
{
	struct hash_state *s = f->state;
	uint8_t d[CM_SHA256_LEN];

	cm_sha256_final(s->sha, d);
	cm_hex(d, sizeof(d), s->result.sha256_hex);
	return arc_close(f->next, err);
}

static void hash_abort(struct arc_filter *f)
{
	arc_abort(f->next);
}

static void hash_free(struct arc_filter *f)
{
	struct hash_state *s = f->state;

	arc_free(f->next);
	cm_sha256_free(s->sha);
	free(s);
	free(f);
}

static const struct arc_filter_ops hash_ops = {
	.name = "hash",
	.write = hash_write,
	.close = hash_close,
	.abort = hash_abort,
	.free = hash_free,
};

struct arc_filter *arc_hash_new(struct arc_filter *next)
{
	struct arc_filter *f = cm_xcalloc(1, sizeof(*f));
	struct hash_state *s = cm_xcalloc(1, sizeof(*s));

	s->sha = cm_sha256_new();
	f->ops = &hash_ops;
	f->state = s;
	f->next = next;
	return f;
}

void arc_hash_result(const struct arc_filter *hash,
		     struct arc_hash_result *out)
{
	const struct hash_state *s = hash->state;

	*out = s->result;
}

struct file_state {
	int fd;
	char *path;      /* final name; NULL for stdout */
	char *partial;   /* PATH.partial while writing */
	bool done;
};

static int file_write(struct arc_filter *f, const void *p, size_t n,
		      struct cm_err *err)
{
	struct file_state *s = f->state;
	const char *name = s->path ? s->partial : "stdout";
	int rc;

	if (cm_fault("sink.file.write"))
		return cm_err_set(err, EIO, "%s: write: injected I/O error",
				  name);
	rc = cm_write_all(s->fd, p, n);
	if (rc)
		return cm_err_set(err, -rc, "%s: write: %s", name,
				  strerror(-rc));
	return 0;
}


static int file_close(struct arc_filter *f, struct cm_err *err)
{
	struct file_state *s = f->state;
	int rc;

	if (!s->path) {
		s->done = true;
		return 0; /* stdout: the reader decides when it is done */
	}
	if (fsync(s->fd) < 0)
		return cm_err_set(err, errno, "%s: fsync: %s", s->partial,
				  strerror(errno));
	if (close(s->fd) < 0) {
		s->fd = -1;
		return cm_err_set(err, errno, "%s: close: %s", s->partial,
				  strerror(errno));
	}
	s->fd = -1;
	if (rename(s->partial, s->path) < 0)
		return cm_err_set(err, errno, "%s: rename: %s", s->path,
				  strerror(errno));
	rc = cm_fsync_parent(s->path);
	if (rc)
		return cm_err_set(err, -rc, "%s: fsync directory: %s",
				  s->path, strerror(-rc));
	s->done = true;
	return 0;
}

static void file_abort(struct arc_filter *f)
{
	struct file_state *s = f->state;

	if (s->path && !s->done)
		unlink(s->partial);
}

static void file_free(struct arc_filter *f)
{
	struct file_state *s = f->state;

	if (s->path && s->fd >= 0)
		close(s->fd);
	if (s->path && !s->done)
		unlink(s->partial);
	free(s->path);
	free(s->partial);
	free(s);
	free(f);
}

static const struct arc_filter_ops file_ops = {
	.name = "file",
	.write = file_write,
	.close = file_close,
	.abort = file_abort,
	.free = file_free,
};

int arc_sink_file_stat(const struct arc_filter *sink, struct stat *st)
{
	const struct file_state *s = sink->state;

	return fstat(s->fd, st) == 0 ? 0 : -errno;
}

struct arc_filter *arc_sink_file_new(const char *path, struct cm_err *err)
{
	struct arc_filter *f;
	struct file_state *s = cm_xcalloc(1, sizeof(*s));

	if (!strcmp(path, "-")) {
		s->fd = STDOUT_FILENO;
	} else {
		s->path = cm_xstrdup(path);
		s->partial = cm_xasprintf("%s.partial", path);
		s->fd = open(s->partial,
			     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s->fd < 0) {
			cm_err_set(err, errno, "%s: %s", path,
				   strerror(errno));
			free(s->path);
			free(s->partial);
			free(s);
			return NULL;
		}
	}
	f = cm_xcalloc(1, sizeof(*f));
	f->ops = &file_ops;
	f->state = s;
	return f;
}
