/*
 * restore.c - arc_restore (restore.h): an archive read back through the
 * parallel member reader (unpack.h) and written out by libarchive (a
 * tree) or straight to a file or device (a raw image).
 *
 * The reader hands out the uncompressed stream member by member; `struct
 * feed` turns that into libarchive's pull callback, keeping only the
 * selected intervals of the stream when an index chose them. An old
 * single-stream archive goes through the same reader as plain chunks of
 * stored bytes (ARC_CODEC_NONE: still fetched in parallel ahead of the
 * decoder), and libarchive's gzip or zstd filter decodes them.
 */
#include "restore.h"
#include "aindex.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "unpack.h"
#include "url.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#define RAW_BLOCK (64 * 1024)

/* ---- selection --------------------------------------------------------- */

/* `s` without leading "/" and "./" and trailing "/": n bytes from *out. */
static void norm(const char *s, const char **out, size_t *n)
{
	size_t len;

	for (;;) {
		if (s[0] == '/')
			s++;
		else if (s[0] == '.' && s[1] == '/')
			s += 2;
		else
			break;
	}
	len = strlen(s);
	while (len && s[len - 1] == '/')
		len--;
	if (len == 1 && s[0] == '.')
		len = 0;
	*out = s;
	*n = len;
}

bool arc_path_selected(const char *path, const char *sel)
{
	const char *p, *s;
	size_t pn, sn;

	norm(path, &p, &pn);
	norm(sel, &s, &sn);
	if (sn == 0)
		return true;
	return pn >= sn && !memcmp(p, s, sn) && (pn == sn || p[sn] == '/');
}

/* ---- the feed: members in order, as libarchive reads them --------------- */

/* An interval of the uncompressed stream to keep. */
struct ival {
	uint64_t start, end;
};

struct feed {
	struct arc_unpack *u;
	const struct arc_restore_opts *o;
	struct arc_object *obj;   /* for progress */
	const unsigned char *p;  /* what is left of the current member */
	size_t n;
	uint64_t uoff;           /* of p */
	const struct ival *iv;   /* NULL: everything */
	size_t niv, ivi;
	uint64_t bytes;          /* handed on */
	int rc;
	struct cm_err err;
};

static void feed_progress(const struct feed *f)
{
	if (f->o->progress)
		f->o->progress(f->o->progress_ctx,
			       arc_object_bytes_read(f->obj),
			       arc_object_size(f->obj));
}

/* The next bytes to hand on: 0 with *n 0 at the end. */
static int feed_next(struct feed *f, const void **p, size_t *n)
{
	for (;;) {
		if (f->n == 0) {
			const void *q;
			int rc = arc_unpack_next(f->u, &q, &f->n, &f->uoff,
						 &f->err);

			if (rc)
				return f->rc = rc;
			feed_progress(f);
			if (f->n == 0) {
				*n = 0;
				return 0;
			}
			f->p = q;
		}
		if (!f->iv) {
			*p = f->p;
			*n = f->n;
			f->n = 0;
			f->bytes += *n;
			return 0;
		}
		while (f->ivi < f->niv && f->iv[f->ivi].end <= f->uoff)
			f->ivi++;
		if (f->ivi == f->niv) {
			*n = 0;  /* past the last interval: done */
			return 0;
		}
		if (f->uoff < f->iv[f->ivi].start) {
			uint64_t skip = f->iv[f->ivi].start - f->uoff;

			if (skip > f->n)
				skip = f->n;
			f->p += skip;
			f->n -= (size_t)skip;
			f->uoff += skip;
			continue;
		}
		*p = f->p;
		*n = f->n;
		if (f->iv[f->ivi].end - f->uoff < *n)
			*n = (size_t)(f->iv[f->ivi].end - f->uoff);
		f->p += *n;
		f->n -= *n;
		f->uoff += *n;
		f->bytes += *n;
		return 0;
	}
}

static la_ssize_t feed_read(struct archive *a, void *ctx, const void **buf)
{
	struct feed *f = ctx;
	size_t n;

	if (feed_next(f, buf, &n)) {
		archive_set_error(a, -f->rc, "%s", f->err.msg);
		return -1;
	}
	return (la_ssize_t)n;
}

/* ---- what went wrong --------------------------------------------------- */

/*
 * A hard link selected by --path whose target is not: with an index the
 * target's entry is fetched too and restored under the link's name (its
 * first selected link), the other selected links then point there.
 */
struct link_move {
	char *target;   /* the target's path, as the index has it */
	char *link;     /* the first selected link's path */
	bool done;      /* the target was restored as `link` */
};

struct ctx {
	const struct arc_restore_opts *o;
	struct arc_restore_result *res;
	struct cm_err *err;
	struct link_move *moves;
	size_t nmoves;
};

static bool same_path(const char *a, const char *b)
{
	const char *x, *y;
	size_t xn, yn;

	norm(a, &x, &xn);
	norm(b, &y, &yn);
	return xn == yn && !memcmp(x, y, xn);
}

static struct link_move *find_move(struct ctx *c, const char *target)
{
	for (size_t i = 0; i < c->nmoves; i++)
		if (same_path(c->moves[i].target, target))
			return &c->moves[i];
	return NULL;
}

/* An entry not restored (exactly): reported; fatal under --strict. */
static int problem(struct ctx *c, const char *path, const char *why)
{
	c->res->problems++;
	if (c->o->on_problem)
		c->o->on_problem(c->o->problem_ctx, path, why);
	if (c->o->strict)
		return cm_err_set(c->err, EIO, "%s: %s (--strict)", path, why);
	return 0;
}

static const char *la_msg(struct archive *a)
{
	const char *m = archive_error_string(a);

	return m ? m : "unknown libarchive error";
}

static bool cancelled(const struct arc_restore_opts *o)
{
	return o->cancel && atomic_load(o->cancel);
}

/* ---- a tree ------------------------------------------------------------ */

static int selected(const struct arc_restore_opts *o, const char *path,
		    bool *hit)
{
	if (!o->npaths)
		return 1;
	for (size_t i = 0; i < o->npaths; i++)
		if (arc_path_selected(path, o->paths[i])) {
			hit[i] = true;
			return 1;
		}
	return 0;
}

static bool is_root(const char *path)
{
	const char *p;
	size_t n;

	norm(path, &p, &n);
	return n == 0;
}

/* ---- paths past PATH_MAX ----------------------------------------------- */

/*
 * libarchive (3.6) creates an entry whose path is past PATH_MAX by moving
 * into its deep directories, but its chown of a directory, its link() and
 * its deferred directory fixups (mode, times) take the whole path, which
 * the kernel refuses (ENAMETOOLONG). Such an entry is written from its
 * parent directory instead, reached one component at a time from DEST
 * with O_NOFOLLOW (deep_parent): libarchive is given its last component
 * only. A directory goes through a second writer that defers nothing
 * (no PERM, TIME, ACL: those are what libarchive fixes up at close,
 * relative to the working directory of the moment); its mode and times
 * are set here after everything else (deep_fix), as libarchive's fixups
 * are. A hard link is made here with linkat() between the two parents.
 */
#define DEEP_PATH (PATH_MAX - 256)

struct deep_dir {
	char *path;
	mode_t mode;
	struct timespec times[2];
};

static bool is_deep(const char *path)
{
	return path && strlen(path) >= DEEP_PATH;
}

/*
 * The directory holding `path` (relative to `root`): its descriptor, or
 * -1 with errno. Missing directories on the way are made (0755, as
 * libarchive makes a missing parent); a symlink on the way, "..", or an
 * absolute path is refused (ELOOP, EINVAL), as libarchive's SECURE flags
 * refuse them. *base is the last component, within path.
 */
static int deep_parent(int root, const char *path, const char **base)
{
	char comp[NAME_MAX + 1];
	const char *p, *end;
	size_t n;
	int fd;

	if (path[0] == '/') {
		errno = EINVAL;
		return -1;
	}
	norm(path, &p, &n);
	end = p + n;
	fd = dup(root);
	while (fd >= 0) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t k = slash ? (size_t)(slash - p) : (size_t)(end - p);
		int next;

		if (!slash) {
			*base = p;
			return fd;
		}
		if (k == 2 && !memcmp(p, "..", 2)) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		if (k > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		p = slash + 1;
		if (k == 0)
			continue;
		memcpy(comp, slash - k, k);
		comp[k] = 0;
		if (!strcmp(comp, "."))
			continue;
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			      O_CLOEXEC);
		if (next < 0 && errno == ENOENT &&
		    (mkdirat(fd, comp, 0755) == 0 || errno == EEXIST))
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY |
				      O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
	}
	return -1;
}

/* A hard link whose name or target is past PATH_MAX (0, or a problem). */
static int deep_link(struct ctx *c, int root, const char *path,
		     const char *target, bool *bad)
{
	const char *tb, *lb;
	int tfd = deep_parent(root, target, &tb), lfd = -1, rc = 0;

	if (tfd >= 0)
		lfd = deep_parent(root, path, &lb);
	/* an older file of that name is replaced, as libarchive does */
	if (lfd >= 0)
		(void)unlinkat(lfd, lb, 0);
	if (tfd < 0 || lfd < 0 || linkat(tfd, tb, lfd, lb, 0)) {
		char *why = cm_xasprintf("can't link to %s: %s", target,
					 strerror(errno));

		*bad = true;
		rc = problem(c, path, why);
		free(why);
	}
	if (tfd >= 0)
		close(tfd);
	if (lfd >= 0)
		close(lfd);
	return rc;
}

/* The deep directories' modes and times, set last (see above). */
static int deep_fix(struct ctx *c, int root, struct deep_dir *d, size_t n)
{
	int rc = 0;

	for (size_t i = n; i-- > 0 && rc == 0;) {
		const char *base;
		int fd = deep_parent(root, d[i].path, &base);

		if (fd < 0 || fchmodat(fd, base, d[i].mode & 07777, 0) ||
		    utimensat(fd, base, d[i].times, AT_SYMLINK_NOFOLLOW))
			rc = problem(c, d[i].path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

static int copy_data(struct ctx *c, struct archive *in, struct archive *out,
		     const char *path, bool *bad)
{
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(in, &buf, &n, &off);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return cm_err_set(c->err, EIO, "%s: %s", path,
					  la_msg(in));
		if (cancelled(c->o))
			return cm_err_set(c->err, ECANCELED, "cancelled");
		if (archive_write_data_block(out, buf, n, off) < ARCHIVE_OK) {
			/* the entry is short on disk, the stream goes on */
			*bad = true;
			return problem(c, path, la_msg(out));
		}
	}
}

static int restore_tree(struct ctx *c, struct archive *in)
{
	const struct arc_restore_opts *o = c->o;
	int flags = ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM |
		    ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
		    ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_SPARSE |
		    ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		    ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	struct archive *out = archive_write_disk_new();
	/* directories past PATH_MAX: nothing deferred (see deep_parent) */
	struct archive *deep_out = archive_write_disk_new();
	struct deep_dir *deep = NULL;
	size_t ndeep = 0;
	bool *hit = cm_xcalloc(o->npaths + 1, sizeof(*hit));
	struct timespec root_time[2];
	bool root_seen = false;
	int cwd = -1, dest = -1, rc = 0;

	if (cm_mkdirs(o->dest, 0755, c->err)) {
		rc = cm_err_prefix(c->err, "%s", o->dest);
		goto out;
	}
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0 || chdir(o->dest) ||
	    (dest = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = cm_err_set(c->err, errno, "%s: %s", o->dest,
				strerror(errno));
		goto out;
	}
	/* numeric owners, as the archiver stores them: no name lookup */
	archive_write_disk_set_options(out, flags);
	archive_write_disk_set_options(deep_out, flags &
				       ~(ARCHIVE_EXTRACT_PERM |
					 ARCHIVE_EXTRACT_TIME |
					 ARCHIVE_EXTRACT_ACL));
	for (;;) {
		struct archive_entry *e;
		struct link_move *mv;
		struct archive *w = out;
		const char *path;
		char *deep_path = NULL;
		bool bad = false;
		int r = archive_read_next_header(in, &e);

		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = cm_err_set(c->err, EIO, "the tar stream: %s",
					la_msg(in));
			break;
		}
		if (cancelled(o)) {
			rc = cm_err_set(c->err, ECANCELED, "cancelled");
			break;
		}
		path = archive_entry_pathname(e);
		if (!path)
			path = "(no name)";
		mv = find_move(c, path);
		if (mv && !mv->done && !selected(o, path, hit)) {
			/* a link's target, fetched for it: restored as it */
			archive_entry_set_pathname(e, mv->link);
			path = archive_entry_pathname(e);
			mv->done = true;
		} else if (!selected(o, path, hit)) {
			if (archive_read_data_skip(in) < ARCHIVE_WARN) {
				rc = cm_err_set(c->err, EIO, "%s: %s", path,
						la_msg(in));
				break;
			}
			continue;
		}
		mv = archive_entry_hardlink(e) ?
			     find_move(c, archive_entry_hardlink(e)) : NULL;
		if (mv && mv->done && !selected(o, mv->target, hit)) {
			if (same_path(path, mv->link)) {
				/* restored already, from its target's data */
				archive_read_data_skip(in);
				continue;
			}
			archive_entry_set_hardlink(e, mv->link);
		} else if (archive_entry_hardlink(e) && o->npaths &&
		    !selected(o, archive_entry_hardlink(e), hit)) {
			char *why = cm_xasprintf("a hard link to %s, which "
						 "--path did not select",
						 archive_entry_hardlink(e));

			rc = problem(c, path, why);
			free(why);
			if (rc)
				break;
			archive_read_data_skip(in);
			continue;
		}
		if (archive_entry_hardlink(e) &&
		    archive_entry_size(e) == 0 &&
		    (is_deep(path) || is_deep(archive_entry_hardlink(e)))) {
			rc = deep_link(c, dest, path, archive_entry_hardlink(e),
				       &bad);
			if (rc)
				break;
			if (!bad)
				c->res->entries++;
			continue;
		}
		if (is_deep(path) && !archive_entry_hardlink(e)) {
			const char *base;
			int pfd = deep_parent(dest, path, &base);

			if (pfd < 0 || fchdir(pfd)) {
				rc = problem(c, path, strerror(errno));
				if (pfd >= 0)
					close(pfd);
				if (rc)
					break;
				archive_read_data_skip(in);
				continue;
			}
			close(pfd);
			/* the entry's name is replaced: keep the whole one */
			deep_path = cm_xstrdup(path);
			path = deep_path;
			archive_entry_set_pathname(e, base);
			if (archive_entry_filetype(e) == AE_IFDIR)
				w = deep_out;
		}
		r = archive_write_header(w, e);
		if (r == ARCHIVE_FATAL)
			rc = cm_err_set(c->err, EIO, "%s: %s", path,
					la_msg(w));
		else if (r < ARCHIVE_OK) {
			bad = true;
			rc = problem(c, path, la_msg(w));
		}
		if (rc == 0 && r > ARCHIVE_FAILED &&
		    archive_entry_size(e) > 0)
			rc = copy_data(c, in, w, path, &bad);
		if (rc == 0) {
			r = archive_write_finish_entry(w);
			if (r == ARCHIVE_FATAL)
				rc = cm_err_set(c->err, EIO, "%s: %s", path,
						la_msg(w));
			else if (r < ARCHIVE_OK && !bad) {
				bad = true;
				rc = problem(c, path, la_msg(w));
			}
		}
		if (rc == 0 && !bad && w == deep_out) {
			struct deep_dir *d;

			deep = cm_xrealloc(deep, (ndeep + 1) * sizeof(*deep));
			d = &deep[ndeep++];
			d->path = cm_xstrdup(path);
			d->mode = archive_entry_mode(e);
			d->times[1].tv_sec = archive_entry_mtime(e);
			d->times[1].tv_nsec = archive_entry_mtime_nsec(e);
			if (!archive_entry_mtime_is_set(e))
				d->times[1].tv_nsec = UTIME_OMIT;
			d->times[0].tv_sec = archive_entry_atime(e);
			d->times[0].tv_nsec = archive_entry_atime_nsec(e);
			if (!archive_entry_atime_is_set(e))
				d->times[0].tv_nsec = UTIME_OMIT;
			if (archive_entry_acl_count(e,
				ARCHIVE_ENTRY_ACL_TYPE_ACCESS |
				ARCHIVE_ENTRY_ACL_TYPE_DEFAULT) > 0)
				rc = problem(c, path, "its ACL is not restored "
					     "(a directory past PATH_MAX)");
		}
		if (deep_path) {
			if (fchdir(dest) && rc == 0)
				rc = cm_err_set(c->err, errno, "back to %s: "
						"%s", o->dest, strerror(errno));
			free(deep_path);
			if (rc == 0 && !bad)
				c->res->entries++;
			if (rc)
				break;
			continue; /* `path` was it; not the root */
		}
		if (rc)
			break;
		if (!bad)
			c->res->entries++;
		if (!bad && is_root(path) && archive_entry_mtime_is_set(e)) {
			root_time[1].tv_sec = archive_entry_mtime(e);
			root_time[1].tv_nsec = archive_entry_mtime_nsec(e);
			root_time[0] = root_time[1];
			if (archive_entry_atime_is_set(e)) {
				root_time[0].tv_sec = archive_entry_atime(e);
				root_time[0].tv_nsec =
					archive_entry_atime_nsec(e);
			}
			root_seen = true;
		}
	}
	/* directories' modes and times, set last (libarchive's fixups) */
	if (archive_write_close(out) < ARCHIVE_OK && rc == 0)
		rc = problem(c, ".", la_msg(out));
	if (archive_write_close(deep_out) < ARCHIVE_OK && rc == 0)
		rc = problem(c, ".", la_msg(deep_out));
	if (rc == 0)
		rc = deep_fix(c, dest, deep, ndeep);
	/* libarchive leaves the times of DEST itself (".") as they were
	 * (GNU tar sets them): the entries made in it changed its mtime */
	if (root_seen && rc == 0 && utimensat(AT_FDCWD, ".", root_time, 0))
		rc = problem(c, ".", strerror(errno));
	for (size_t i = 0; i < o->npaths && rc == 0; i++)
		if (!hit[i])
			rc = problem(c, o->paths[i], "not in the archive");
	if (fchdir(cwd) && rc == 0)
		rc = cm_err_set(c->err, errno, "back to the working "
				"directory: %s", strerror(errno));
out:
	if (cwd >= 0)
		close(cwd);
	if (dest >= 0)
		close(dest);
	archive_write_free(out);
	archive_write_free(deep_out);
	for (size_t i = 0; i < ndeep; i++)
		free(deep[i].path);
	free(deep);
	free(hit);
	return rc;
}

/* ---- a raw image ------------------------------------------------------- */

struct raw {
	int fd;
	bool blk;
	uint64_t end;          /* the image's bytes so far */
	uint64_t zero_at, zero_len; /* block device: zeros not yet written */
	const char *dest;
	struct cm_err *err;
};

/* The block device `dev` or one of its partitions, mounted: its mount
 * point (malloc'd), else NULL. */
static char *mounted_at(dev_t dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *found = NULL;
	size_t cap = 0;

	if (!f)
		return NULL;
	while (!found && getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char mp[PATH_MAX], sys[96], link[PATH_MAX], parent[64];
		ssize_t len;

		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &min,
			   mp) != 3)
			continue;
		if (makedev(maj, min) == dev) {
			found = cm_xstrdup(mp);
			break;
		}
		/* a partition: /sys/dev/block/M:m -> .../DISK/PART */
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", maj, min);
		len = readlink(sys, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		if (strrchr(link, '/'))
			*strrchr(link, '/') = 0;
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/partition",
			 maj, min);
		if (access(sys, F_OK))
			continue;
		{
			char *devf = cm_xasprintf("/sys/dev/block/%s/dev",
						  link);
			FILE *d = fopen(devf, "re");
			unsigned pmaj, pmin;

			if (d && fgets(parent, sizeof(parent), d) &&
			    sscanf(parent, "%u:%u", &pmaj, &pmin) == 2 &&
			    makedev(pmaj, pmin) == dev)
				found = cm_xasprintf("%s (a partition)", mp);
			if (d)
				fclose(d);
			free(devf);
		}
	}
	free(line);
	fclose(f);
	return found;
}

static int raw_open(const char *dest, bool *blk, struct cm_err *err)
{
	struct stat st;
	int fd;

	*blk = false;
	if (stat(dest, &st) == 0 && S_ISBLK(st.st_mode)) {
		char *mp = mounted_at(st.st_rdev);

		if (mp) {
			cm_err_set(err, EBUSY, "%s is mounted on %s: refused",
				   dest, mp);
			free(mp);
			return -EBUSY;
		}
		/* O_EXCL: fails while the kernel holds the device (a mount,
		 * a device-mapper or md holder) */
		fd = open(dest, O_WRONLY | O_EXCL | O_CLOEXEC);
		if (fd < 0)
			return cm_err_set(err, errno, "%s: %s%s", dest,
					  strerror(errno), errno == EBUSY ?
					  " (in use: mounted or held)" : "");
		*blk = true;
		return fd;
	}
	fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return cm_err_set(err, errno, "%s: %s", dest, strerror(errno));
	return fd;
}

static int raw_flush_zeros(struct raw *r)
{
	uint64_t range[2] = { r->zero_at, r->zero_len };

	if (!r->zero_len)
		return 0;
	r->zero_len = 0;
	if ((range[0] | range[1]) % 512 == 0 &&
	    ioctl(r->fd, BLKZEROOUT, range) == 0)
		return 0;
	/* unaligned, or a device without zeroing: write them */
	for (uint64_t done = 0; done < range[1];) {
		static const unsigned char zeros[RAW_BLOCK];
		size_t n = range[1] - done < RAW_BLOCK ?
				   (size_t)(range[1] - done) : RAW_BLOCK;
		ssize_t w = pwrite(r->fd, zeros, n, (off_t)(range[0] + done));

		if (w <= 0)
			return cm_err_set(r->err, w < 0 ? errno : ENOSPC,
					  "%s: write at byte %llu: %s",
					  r->dest, (unsigned long long)
					  (range[0] + done),
					  w < 0 ? strerror(errno) :
						  "no space");
		done += (uint64_t)w;
	}
	return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* n image bytes at image offset off: written, except runs of zeros (a
 * file: holes; a device: BLKZEROOUT) */
static int raw_put(struct raw *r, const unsigned char *p, size_t n,
		   uint64_t off)
{
	while (n) {
		size_t b = n < RAW_BLOCK ? n : RAW_BLOCK;

		if (all_zero(p, b)) {
			if (r->blk) {
				if (r->zero_len &&
				    r->zero_at + r->zero_len != off) {
					int rc = raw_flush_zeros(r);

					if (rc)
						return rc;
				}
				if (!r->zero_len)
					r->zero_at = off;
				r->zero_len += b;
			}
		} else {
			int rc = raw_flush_zeros(r);

			if (rc)
				return rc;
			if (pwrite(r->fd, p, b, (off_t)off) != (ssize_t)b)
				return cm_err_set(r->err, errno ? errno : ENOSPC,
						  "%s: write at byte %llu: %s",
						  r->dest,
						  (unsigned long long)off,
						  strerror(errno ? errno
							  : ENOSPC));
		}
		p += b;
		n -= b;
		off += b;
		if (off > r->end)
			r->end = off;
	}
	return 0;
}

static int restore_raw(struct ctx *c, struct feed *f, struct archive *in)
{
	const struct arc_restore_opts *o = c->o;
	char *partial = NULL;
	struct raw r = { .dest = o->dest, .err = c->err };
	bool blk;
	int fd, rc = 0;

	/* a file is written beside its name and renamed when whole */
	{
		struct stat st;

		if (stat(o->dest, &st) || !S_ISBLK(st.st_mode)) {
			if (stat(o->dest, &st) == 0 && S_ISDIR(st.st_mode))
				return cm_err_set(c->err, EISDIR, "%s is a "
						  "directory: a raw image "
						  "restores to a file or a "
						  "block device", o->dest);
			partial = cm_xasprintf("%s.partial", o->dest);
		}
	}
	fd = raw_open(partial ? partial : o->dest, &blk, c->err);
	if (fd < 0) {
		free(partial);
		return fd;
	}
	r.fd = fd;
	r.blk = blk;
	if (in) {
		/* a single stream: libarchive's "raw" format, one entry */
		struct archive_entry *e;
		uint64_t off = 0;

		if (archive_read_next_header(in, &e) != ARCHIVE_OK)
			rc = cm_err_set(c->err, EIO, "%s", la_msg(in));
		while (rc == 0) {
			const void *buf;
			size_t n;
			la_int64_t at;
			int lr = archive_read_data_block(in, &buf, &n, &at);

			if (lr == ARCHIVE_EOF)
				break;
			if (lr < ARCHIVE_WARN) {
				rc = cm_err_set(c->err, EIO, "%s", la_msg(in));
				break;
			}
			if (cancelled(o))
				rc = cm_err_set(c->err, ECANCELED,
						"cancelled");
			else
				rc = raw_put(&r, buf, n, off);
			off += n;
		}
		f->bytes = off;
	} else {
		for (;;) {
			const void *p;
			size_t n;
			uint64_t at;

			rc = arc_unpack_next(f->u, &p, &n, &at, c->err);
			if (rc || n == 0)
				break;
			feed_progress(f);
			if (cancelled(o)) {
				rc = cm_err_set(c->err, ECANCELED,
						"cancelled");
				break;
			}
			if (at != r.end) {
				rc = cm_err_set(c->err, EIO, "the image's "
						"member at byte %llu does not "
						"follow the one before (%llu)",
						(unsigned long long)at,
						(unsigned long long)r.end);
				break;
			}
			rc = raw_put(&r, p, n, at);
			if (rc)
				break;
			f->bytes += n;
		}
	}
	if (rc == 0)
		rc = raw_flush_zeros(&r);
	if (rc == 0 && !blk && ftruncate(fd, (off_t)r.end))
		rc = cm_err_set(c->err, errno, "%s: %s", o->dest,
				strerror(errno));
	if (rc == 0 && fsync(fd))
		rc = cm_err_set(c->err, errno, "%s: fsync: %s", o->dest,
				strerror(errno));
	close(fd);
	if (partial) {
		if (rc == 0 && rename(partial, o->dest))
			rc = cm_err_set(c->err, errno, "%s: %s", o->dest,
					strerror(errno));
		if (rc)
			unlink(partial);
		free(partial);
	}
	c->res->entries = rc == 0;
	return rc;
}

/* ---- the index: only what --path needs ----------------------------------- */

struct plan {
	struct ival *iv;        /* sorted, merged */
	size_t niv;
	struct arc_range *ranges; /* the members that cover them */
	size_t nranges;
	struct arc_unit *units; /* the member table (zstd cuts by it) */
	size_t nunits;
	struct link_move *moves; /* hard links whose targets come too */
	size_t nmoves;
};

static void plan_release(struct plan *p)
{
	for (size_t i = 0; i < p->nmoves; i++) {
		free(p->moves[i].target);
		free(p->moves[i].link);
	}
	free(p->moves);
	free(p->iv);
	free(p->ranges);
	free(p->units);
	memset(p, 0, sizeof(*p));
}

static int index_read(void *ctx, uint64_t off, void *buf, size_t len,
		      struct cm_err *err)
{
	return arc_object_read(ctx, off, buf, len, err);
}

static int by_start(const void *a, const void *b)
{
	const struct ival *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void add_span(struct plan *p, const struct aidx_entry *en,
		     size_t *cap)
{
	if (p->niv == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		p->iv = cm_xrealloc(p->iv, *cap * sizeof(*p->iv));
	}
	p->iv[p->niv].start = en->header_off;
	p->iv[p->niv++].end = en->data_off + ((en->stored + 511) & ~511ULL);
}

static bool any_selected(const struct arc_restore_opts *o, const char *path)
{
	for (size_t i = 0; i < o->npaths; i++)
		if (arc_path_selected(path, o->paths[i]))
			return true;
	return false;
}

/* A hard link whose target no --path selects: the target's span too,
 * and a move (restore.c's struct link_move) of it to the link's name. */
static int add_link_target(const struct arc_restore_opts *o, struct aidx *x,
			   struct plan *p, const struct aidx_entry *en,
			   size_t *cap, struct cm_err *err)
{
	struct aidx_list t = { 0 };
	struct cm_err e;
	int rc;

	if (en->type != '1' || !en->link[0] || any_selected(o, en->link))
		return 0;
	for (size_t i = 0; i < p->nmoves; i++)
		if (same_path(p->moves[i].target, en->link))
			return 0;
	cm_err_clear(&e);
	rc = aidx_lookup(x, en->link, &t, &e);
	if (rc == -ENOENT)
		return 0; /* the restore reports the link */
	if (rc) {
		*err = e;
		return rc;
	}
	if (t.n == 1 && t.v[0].type == '0') {
		add_span(p, &t.v[0], cap);
		p->moves = cm_xrealloc(p->moves, (p->nmoves + 1) *
						 sizeof(*p->moves));
		p->moves[p->nmoves].target = cm_xstrdup(t.v[0].path);
		p->moves[p->nmoves].link = cm_xstrdup(en->path);
		p->moves[p->nmoves++].done = false;
	}
	aidx_list_release(&t);
	return 0;
}

/* The entries under each --path, from the index: their spans of the tar
 * stream (first header block to the end of the data's padding), merged,
 * and the member ranges that hold them. */
static int plan_from_index(const struct arc_restore_opts *o, struct aidx *x,
			   uint64_t archive_size, struct plan *p,
			   struct cm_err *err)
{
	const struct aidx_info *info = aidx_info(x);
	const struct aidx_member *m;
	size_t nm, cap = 0;
	int64_t last = -1;
	int rc = 0;

	if (info->kind != AIDX_KIND_TAR)
		return cm_err_set(err, EINVAL, "the index is not a tar's");
	if (info->archive_size != archive_size)
		return cm_err_set(err, ESTALE, "the index describes an archive "
				  "of %llu bytes, this one has %llu",
				  (unsigned long long)info->archive_size,
				  (unsigned long long)archive_size);
	for (size_t i = 0; i < o->npaths; i++) {
		struct aidx_list l = { 0 };
		struct cm_err e;

		cm_err_clear(&e);
		rc = aidx_walk(x, o->paths[i], &l, &e);
		if (rc == -ENOENT) {
			rc = 0;  /* reported by the restore: not in it */
			continue;
		}
		if (rc) {
			*err = e;
			return rc;
		}
		for (size_t j = 0; j < l.n; j++) {
			add_span(p, &l.v[j], &cap);
			rc = add_link_target(o, x, p, &l.v[j], &cap, err);
			if (rc)
				break;
		}
		aidx_list_release(&l);
		if (rc)
			return rc;
	}
	if (p->niv > 1)
		qsort(p->iv, p->niv, sizeof(*p->iv), by_start);
	if (p->niv) {
		size_t n = 1;

		for (size_t i = 1; i < p->niv; i++) {
			if (p->iv[i].start <= p->iv[n - 1].end) {
				if (p->iv[i].end > p->iv[n - 1].end)
					p->iv[n - 1].end = p->iv[i].end;
			} else {
				p->iv[n++] = p->iv[i];
			}
		}
		p->niv = n;
	}
	m = aidx_members(x, &nm);
	p->units = cm_xcalloc(nm ? nm : 1, sizeof(*p->units));
	memcpy(p->units, m, nm * sizeof(*m));
	p->nunits = nm;
	p->ranges = cm_xcalloc(p->niv ? p->niv : 1, sizeof(*p->ranges));
	if (o->codec == ARC_CODEC_NONE) {
		/* a plain tar: the stored bytes are the stream's */
		for (size_t i = 0; i < p->niv; i++) {
			p->ranges[i].off = p->iv[i].start;
			p->ranges[i].len = p->iv[i].end - p->iv[i].start;
		}
		p->nranges = p->niv;
		return 0;
	}
	for (size_t i = 0; i < p->niv; i++) {
		int64_t a = aidx_member_for(x, p->iv[i].start);
		int64_t b = aidx_member_for(x, p->iv[i].end - 1);

		if (a < 0 || b < 0)
			return cm_err_set(err, EIO, "the index: bytes %llu-%llu "
					  "of the stream are in no member",
					  (unsigned long long)p->iv[i].start,
					  (unsigned long long)p->iv[i].end);
		if (a <= last)
			a = last + 1;
		if (a > b)
			continue;
		/* members that follow the last range's extend it */
		if (p->nranges && a == last + 1) {
			p->ranges[p->nranges - 1].len =
				m[b].coff + m[b].clen -
				p->ranges[p->nranges - 1].off;
		} else {
			p->ranges[p->nranges].off = m[a].coff;
			p->ranges[p->nranges++].len =
				m[b].coff + m[b].clen - m[a].coff;
		}
		last = b;
	}
	return 0;
}

/* The plan for --path through the index at o->index_url: 0 and *used
 * true, or 0 and *used false (no index, or it cannot serve: said on
 * stderr, the whole archive is read instead), or a failure. */
static int plan_paths(const struct arc_restore_opts *o, uint64_t size,
		      struct plan *p, bool *used, uint64_t *read,
		      struct cm_err *err)
{
	struct arc_object *io = NULL;
	struct aidx *x = NULL;
	struct cm_err e;
	int rc;

	*used = false;
	if (!o->index_url || !o->npaths || o->method != ARC_METHOD_TREE)
		return 0;
	cm_err_clear(&e);
	rc = arc_object_open(o->index_url, o->client, &io, &e);
	if (rc == 0)
		rc = aidx_open(index_read, io, arc_object_size(io), &x, &e);
	if (rc == 0)
		rc = plan_from_index(o, x, size, p, &e);
	if (rc == -ECANCELED || (rc && e.retryable)) {
		*err = e;
		cm_err_prefix(err, "index %s", o->index_url);
	} else if (rc) {
		cm_log(CM_LOG_WARN, "index %s: %s: reading the whole archive "
		       "instead", o->index_url, e.msg);
		plan_release(p);
		rc = 0;
	} else {
		*used = true;
	}
	if (x)
		aidx_close(x);
	*read = io ? arc_object_bytes_read(io) : 0;
	arc_object_free(io);
	return rc;
}

/* ---- where the archive is --------------------------------------------- */

#define MANIFEST_MAX (16u << 20)

/* A small object whole (a manifest): -ENOENT when it is not there. */
static int read_small(const char *url, struct s3_client *client,
		      char **text, struct cm_err *err)
{
	struct arc_object *o;
	uint64_t size;
	int rc = arc_object_open(url, client, &o, err);

	if (rc)
		return rc;
	size = arc_object_size(o);
	if (size > MANIFEST_MAX) {
		arc_object_free(o);
		return cm_err_set(err, EFBIG, "%s: over %u MiB: not a manifest",
				  url, MANIFEST_MAX >> 20);
	}
	*text = cm_xmalloc(size + 1);
	rc = arc_object_read(o, 0, *text, size, err);
	(*text)[size] = 0;
	arc_object_free(o);
	if (rc) {
		free(*text);
		*text = NULL;
	}
	return rc;
}

static bool is_folder(const char *src)
{
	size_t n = strlen(src);
	struct stat st;

	if (n && src[n - 1] == '/')
		return true;
	return cm_url_kind(src) != CM_URL_S3 && stat(src, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The manifest's claims into t; the object's name into *object. */
static int read_manifest(const char *text, const char *where,
			 struct arc_restore_target *t, const char **object,
			 struct cm_json **m, struct cm_err *err)
{
	const struct cm_json *comp;
	const char *method, *codec;
	int rc = cm_json_parse(text, strlen(text), m, err);

	if (rc == 0 && cm_json_type(*m) != CM_JSON_OBJECT)
		rc = cm_err_set(err, EINVAL, "not a JSON object");
	if (rc)
		return cm_err_prefix(err, "manifest %s", where);
	*object = cm_json_get_str(*m, "object");
	method = cm_json_get_str(*m, "method");
	comp = cm_json_get(*m, "compression");
	codec = comp ? cm_json_get_str(comp, "codec") : NULL;
	if (method && !strcmp(method, "raw"))
		t->method = ARC_METHOD_RAW;
	else if (method && !strcmp(method, "tree"))
		t->method = ARC_METHOD_TREE;
	else
		return cm_err_set(err, EINVAL, "manifest %s: method: %s",
				  where, method ? method : "missing");
	if (!codec || arc_codec_parse(codec, &t->codec))
		return cm_err_set(err, EINVAL, "manifest %s: compression."
				  "codec: %s", where, codec ? codec :
				  "missing");
	return 0;
}

static void guess_from_name(const char *url, struct arc_restore_target *t)
{
	const char *b = base_name(url);
	size_t n = strlen(b);

	t->codec = ARC_CODEC_NONE;
	if (n > 3 && !strcmp(b + n - 3, ".gz"))
		t->codec = ARC_CODEC_GZIP;
	else if ((n > 4 && !strcmp(b + n - 4, ".zst")) ||
		 (n > 5 && !strcmp(b + n - 5, ".zstd")))
		t->codec = ARC_CODEC_ZSTD;
	t->method = !strncmp(b, "rawbackup", 9) || !strstr(b, ".tar") ?
			    ARC_METHOD_RAW : ARC_METHOD_TREE;
}

void arc_restore_target_release(struct arc_restore_target *t)
{
	free(t->url);
	free(t->manifest_url);
	free(t->index_url);
	memset(t, 0, sizeof(*t));
}

int arc_restore_locate(const char *src, struct s3_client *client,
		       struct arc_restore_target *t, struct cm_err *err)
{
	bool folder = is_folder(src);
	size_t n = strlen(src);
	char *text = NULL, *dir, *cand[2] = { NULL, NULL };
	const char *object = NULL;
	struct cm_json *m = NULL;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (folder) {
		dir = cm_xasprintf("%s%s", src,
				   n && src[n - 1] == '/' ? "" : "/");
		cand[0] = cm_xasprintf("%smanifest.json", dir);
	} else {
		const char *b = base_name(src);

		dir = cm_xstrndup(src, (size_t)(b - src));
		if (!strncmp(b, "backup.", 7) || !strncmp(b, "rawbackup.", 10))
			cand[0] = cm_xasprintf("%smanifest.json", dir);
		cand[cand[0] ? 1 : 0] = cm_xasprintf("%s.manifest.json", src);
	}
	for (size_t i = 0; i < 2 && cand[i]; i++) {
		struct cm_err e;

		cm_err_clear(&e);
		rc = read_small(cand[i], client, &text, &e);
		if (rc == 0) {
			t->manifest_url = cm_xstrdup(cand[i]);
			break;
		}
		if (rc != -ENOENT) {
			*err = e;
			cm_err_prefix(err, "manifest %s", cand[i]);
			goto out;
		}
	}
	rc = 0; /* no manifest: the name says what it is */
	if (!text && folder) {
		rc = cm_err_set(err, ENOENT, "no manifest.json in %s: name "
				"the archive", dir);
		goto out;
	}
	if (text) {
		rc = read_manifest(text, t->manifest_url, t, &object, &m, err);
		if (rc)
			goto out;
		/* a manifest named by its object's name must be its own */
		if (!folder && object &&
		    strcmp(base_name(object), base_name(src))) {
			rc = cm_err_set(err, EINVAL, "manifest %s describes "
					"%s, not %s", t->manifest_url, object,
					base_name(src));
			goto out;
		}
		if (folder && !object) {
			rc = cm_err_set(err, EINVAL, "manifest %s names no "
					"object", t->manifest_url);
			goto out;
		}
	}
	t->url = folder ? cm_xasprintf("%s%s", dir, base_name(object))
			: cm_xstrdup(src);
	if (!text)
		guess_from_name(t->url, t);
	else if (cm_json_bool(cm_json_get(m, "indexed")))
		t->index_url = cm_xasprintf("%s%s", t->url, AIDX_SUFFIX);
out:
	if (rc)
		arc_restore_target_release(t);
	cm_json_free(m);
	free(text);
	free(cand[0]);
	free(cand[1]);
	free(dir);
	return rc;
}

/* ---- the whole --------------------------------------------------------- */

int arc_restore(const struct arc_restore_opts *o,
		struct arc_restore_result *res, struct cm_err *err)
{
	struct ctx c = { .o = o, .res = res, .err = err };
	struct arc_object *obj = NULL;
	struct arc_unit *units = NULL;
	struct arc_unpack_opts uo = { 0 };
	struct arc_range whole;
	struct feed f = { 0 };
	struct archive *in = NULL;
	struct plan plan = { 0 };
	size_t nunits = 0;
	uint64_t data_end;
	bool members, indexed = false;
	int rc;

	memset(res, 0, sizeof(*res));
	cm_err_clear(&f.err);
	if (o->method == ARC_METHOD_RAW && o->npaths)
		return cm_err_set(err, EINVAL, "--path selects entries of a "
				  "tree: a raw image restores whole");
	rc = arc_object_open(o->url, o->client, &obj, err);
	if (rc) {
		cm_err_prefix(err, "%s", o->url);
		return rc;
	}
	res->object_size = arc_object_size(obj);
	rc = arc_units_probe(obj, o->codec, &members, &units, &nunits,
			     &data_end, err);
	if (rc) {
		cm_err_prefix(err, "%s", o->url);
		goto out;
	}
	res->parallel = members;
	if (members || o->codec == ARC_CODEC_NONE) {
		rc = plan_paths(o, res->object_size, &plan, &indexed,
				&res->index_fetched, err);
		if (rc)
			goto out;
	}
	res->scanned = o->npaths > 0 && !indexed;
	whole.off = 0;
	whole.len = data_end;
	uo.obj = obj;
	uo.codec = members ? o->codec : ARC_CODEC_NONE;
	uo.ranges = &whole;
	uo.nranges = 1;
	uo.units = units;
	uo.nunits = nunits;
	if (indexed) {
		uo.ranges = plan.ranges;
		uo.nranges = plan.nranges;
		uo.units = plan.units;
		uo.nunits = plan.nunits;
		f.iv = plan.iv;
		f.niv = plan.niv;
	}
	uo.threads = o->threads;
	uo.cancel = o->cancel;
	f.o = o;
	f.obj = obj;
	f.u = arc_unpack_new(&uo, err);
	if (!f.u) {
		rc = -EINVAL;
		goto out;
	}
	if (!members || o->method == ARC_METHOD_TREE) {
		in = archive_read_new();
		if (o->method == ARC_METHOD_TREE)
			archive_read_support_format_tar(in);
		else
			archive_read_support_format_raw(in);
		if (!members && o->codec == ARC_CODEC_GZIP)
			archive_read_support_filter_gzip(in);
		else if (!members && o->codec == ARC_CODEC_ZSTD)
			archive_read_support_filter_zstd(in);
		if (archive_read_open(in, &f, NULL, feed_read, NULL)) {
			rc = cm_err_set(err, EIO, "%s", la_msg(in));
			goto out;
		}
	}
	c.moves = plan.moves;
	c.nmoves = plan.nmoves;
	if (o->method == ARC_METHOD_TREE)
		rc = restore_tree(&c, in);
	else
		rc = restore_raw(&c, &f, members ? NULL : in);
	/* the reader's own failure says more than libarchive's echo of it */
	if (rc && f.rc && f.rc != -ECANCELED)
		*err = f.err;
	if (rc == 0 && res->problems)
		rc = cm_err_set(err, EIO, "%llu entr%s not restored exactly "
				"(above)", (unsigned long long)res->problems,
				res->problems == 1 ? "y" : "ies");
out:
	res->bytes = f.bytes;
	res->units = f.u && members ? arc_unpack_units(f.u) : 0;
	res->fetched = obj ? arc_object_bytes_read(obj) : 0;
	if (in)
		archive_read_free(in);
	arc_unpack_free(f.u);
	arc_object_free(obj);
	plan_release(&plan);
	free(units);
	return rc;
}
