/*
 * overlay.c - see overlay.h: one file served over FUSE, reads from the
 * image, writes into a bounded copy-on-write overlay. With fs/fuse_ll.c,
 * the only file that includes FUSE headers.
 *
 * The FUSE mount is made here with mount(2) on a /dev/fuse descriptor we
 * open ourselves, and handed to libfuse as "/dev/fd/N" (libfuse's way for
 * a mount made by the caller): so the mount is a plain ARC_RES_MOUNT of
 * struct arc_devs, recorded before mount(2) and unmounted like any other,
 * and libfuse only decodes requests and encodes replies.
 *
 * The server thread polls the (non-blocking) descriptor and an eventfd
 * that stops it, and answers each request at once: lookup and getattr of
 * the one file, open, read, write, fsync and flush (nothing to make
 * durable: the overlay is thrown away). When the mount goes (unmounted,
 * or its connection aborted) reads of the descriptor fail with ENODEV and
 * the thread ends by itself.
 *
 * The map of written blocks is a bitmap per 128 MiB of image, allocated
 * on the first write there: the server thread's alone. The counters are
 * atomics that the caller reads.
 */
#define FUSE_USE_VERSION 314

#include "overlay.h"

#include "blockdev.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

#define BLOCK 4096u
#define CHUNK_BLOCKS 32768u /* one bitmap: 128 MiB of image */
#define CHUNK_WORDS (CHUNK_BLOCKS / 64)
#define ROOT_INO 1
#define FILE_INO 2
#define FILE_NAME "image"
#define ATTR_TIMEOUT 86400.0 /* nothing changes but through us */

struct arc_overlay {
	struct arc_devs *devs;       /* borrowed */
	unsigned long mark;          /* devs before the overlay */
	char *name;                  /* owned: for messages */
	/* names short enough for struct arc_devs's records (255 bytes) */
	char dir[240];               /* the private directory */
	char mnt[248];               /* DIR/mnt, the FUSE mount */
	char path[255];              /* DIR/mnt/image */
	int img_fd;                  /* owned: the image, read-only */
	int cow_fd;                  /* owned: the overlay file, unlinked */
	int dev_fd;                  /* /dev/fuse; the session closes it */
	int stop_fd;                 /* owned: eventfd, stops the server */
	uint64_t offset, size, limit;
	struct fuse_session *se;
	pthread_t thread;
	bool have_thread;

	/* the server thread's alone (and the freeing thread's after join) */
	uint64_t **map;              /* nchunks bitmaps, NULL until written */
	size_t nchunks;
	char *buf;                   /* read replies */
	size_t bufcap;

	_Atomic uint64_t used;       /* bytes in whole blocks */
	_Atomic uint64_t refused;    /* writes refused: the overlay full */
	_Atomic uint64_t errors;     /* I/O errors */
	atomic_int last_error;       /* errno of the last of them */
};

/* ---- the map of written blocks ----------------------------------------- */

static bool written(const struct arc_overlay *ov, uint64_t b)
{
	const uint64_t *m = ov->map[b / CHUNK_BLOCKS];

	b %= CHUNK_BLOCKS;
	return m && (m[b / 64] >> (b % 64) & 1);
}

static void mark_written(struct arc_overlay *ov, uint64_t b)
{
	uint64_t **m = &ov->map[b / CHUNK_BLOCKS];

	if (!*m)
		*m = cm_xcalloc(CHUNK_WORDS, sizeof(uint64_t));
	b %= CHUNK_BLOCKS;
	(*m)[b / 64] |= 1ull << (b % 64);
}

/* ---- I/O --------------------------------------------------------------- */

/* All `n` bytes at `off`, read (`out` set) or written; a read past the end
 * of the image gives zeros, as a loop device reads. */
static int io_all(int fd, char *in, const char *out, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t got = out ? pwrite(fd, out, n, (off_t)off)
				  : pread(fd, in, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0 && !out) {
			memset(in, 0, n);
			return 0;
		}
		if (out)
			out += got;
		else
			in += got;
		n -= (size_t)got;
		off += (uint64_t)got;
	}
	return 0;
}

static int pread_all(int fd, char *p, size_t n, uint64_t off)
{
	return io_all(fd, p, NULL, n, off);
}

static int pwrite_all(int fd, const char *p, size_t n, uint64_t off)
{
	return io_all(fd, NULL, p, n, off);
}

/* `n` bytes at `off` of the file: runs of written blocks from the overlay,
 * the rest from the image. */
static int read_range(struct arc_overlay *ov, char *p, size_t n, uint64_t off)
{
	uint64_t end = off + n;

	while (off < end) {
		uint64_t b = off / BLOCK, run_end;
		bool w = written(ov, b);
		int rc;

		do {
			b++;
			run_end = b * BLOCK < end ? b * BLOCK : end;
		} while (run_end < end && written(ov, b) == w);
		rc = w ? pread_all(ov->cow_fd, p, run_end - off, off)
		       : pread_all(ov->img_fd, p, run_end - off,
				   ov->offset + off);
		if (rc)
			return rc;
		p += run_end - off;
		off = run_end;
	}
	return 0;
}

/* Count an I/O error (not a write refused for the limit); returns rc. */
static int failed(struct arc_overlay *ov, int rc)
{
	atomic_store(&ov->last_error, -rc);
	atomic_fetch_add(&ov->errors, 1);
	return rc;
}

/* Block `b` copied from the image into the overlay, whole. */
static int copy_block(struct arc_overlay *ov, uint64_t b, char *tmp)
{
	uint64_t at = b * BLOCK;
	size_t n = ov->size - at < BLOCK ? (size_t)(ov->size - at) : BLOCK;
	int rc = pread_all(ov->img_fd, tmp, n, ov->offset + at);

	return rc ? rc : pwrite_all(ov->cow_fd, tmp, n, at);
}

/* A write: room for the blocks it adds, the image's part of its partial
 * edge blocks, the data; then the blocks are the overlay's. */
static int write_range(struct arc_overlay *ov, const char *p, size_t n,
		       uint64_t off)
{
	uint64_t first = off / BLOCK, last = (off + n - 1) / BLOCK, fresh = 0;
	char tmp[BLOCK];
	int rc;

	if (off > ov->size || n > ov->size - off)
		return failed(ov, -ENOSPC); /* the image does not grow */
	for (uint64_t b = first; b <= last; b++)
		fresh += !written(ov, b);
	if (atomic_load(&ov->used) + fresh * BLOCK > ov->limit) {
		atomic_fetch_add(&ov->refused, 1);
		return -ENOSPC;
	}
	if (off % BLOCK && !written(ov, first)) {
		rc = copy_block(ov, first, tmp);
		if (rc)
			return failed(ov, rc);
	}
	if ((off + n) % BLOCK && off + n < ov->size && !written(ov, last) &&
	    (last != first || off % BLOCK == 0)) {
		rc = copy_block(ov, last, tmp);
		if (rc)
			return failed(ov, rc);
	}
	rc = pwrite_all(ov->cow_fd, p, n, off);
	if (rc)
		return failed(ov, rc);
	for (uint64_t b = first; b <= last; b++)
		if (!written(ov, b))
			mark_written(ov, b);
	atomic_fetch_add(&ov->used, fresh * BLOCK);
	return 0;
}

/* ---- FUSE requests ----------------------------------------------------- */

static struct arc_overlay *OV(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void stat_of(const struct arc_overlay *ov, fuse_ino_t ino,
		    struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == ROOT_INO) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = (off_t)ov->size;
		st->st_blksize = BLOCK;
		st->st_blocks = (blkcnt_t)((ov->size + 511) / 512);
	}
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != ROOT_INO || strcmp(name, FILE_NAME) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ATTR_TIMEOUT;
	stat_of(OV(req), FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != ROOT_INO && ino != FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	stat_of(OV(req), ino, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* Times and modes are not kept; the size never changes. */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct arc_overlay *ov = OV(req);

	if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size != ov->size) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ll_getattr(req, ino, fi);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, ino == ROOT_INO ? EISDIR : ENOENT);
		return;
	}
	fi->keep_cache = 1; /* only the kernel's own writes change it */
	fuse_reply_open(req, fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct arc_overlay *ov = OV(req);
	uint64_t o = (uint64_t)off;
	int rc;

	(void)ino;
	(void)fi;
	if (o >= ov->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > ov->size - o)
		size = (size_t)(ov->size - o);
	if (size > ov->bufcap) {
		free(ov->buf);
		ov->buf = cm_xmalloc(size);
		ov->bufcap = size;
	}
	rc = read_range(ov, ov->buf, size, o);
	if (rc) {
		failed(ov, rc);
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_buf(req, ov->buf, size);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct arc_overlay *ov = OV(req);
	int rc;

	(void)ino;
	(void)fi;
	if (size == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	rc = write_range(ov, buf, size, (uint64_t)off);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_write(req, size);
}

/* Nothing to make durable: the overlay is thrown away. */
static void ll_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)datasync;
	ll_ok(req, ino, fi);
}

static const struct fuse_lowlevel_ops ops = {
    .lookup = ll_lookup,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_ok,
    .release = ll_ok,
    .fsync = ll_fsync,
};

/* ---- the server thread ------------------------------------------------- */

static void *serve(void *arg)
{
	struct arc_overlay *ov = arg;
	struct fuse_buf fbuf;
	struct pollfd pf[2];

	/* its allocations never wait for the writeback it is there to do */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0)
		cm_debug("overlay: PR_SET_IO_FLUSHER: %s", strerror(errno));
	memset(&fbuf, 0, sizeof(fbuf));
	pf[0].fd = ov->dev_fd;
	pf[0].events = POLLIN;
	pf[1].fd = ov->stop_fd;
	pf[1].events = POLLIN;
	while (!fuse_session_exited(ov->se)) {
		int rc;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		rc = fuse_session_receive_buf(ov->se, &fbuf);
		if (rc == 0)
			break; /* unmounted, or the connection aborted (ENODEV) */
		if (rc < 0) {
			/* never give up while mounted: a request left
			 * unanswered would hang the loop device and whoever
			 * waits on it (mount(2), the tar) */
			if (rc != -EINTR && rc != -EAGAIN && rc != -ENOENT) {
				failed(ov, rc);
				poll(NULL, 0, 100);
			}
			continue;
		}
		fuse_session_process_buf(ov->se, &fbuf);
	}
	free(fbuf.mem);
	return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

/* DIR (made 0700 if missing): the caller's, $TMPDIR, or /tmp. */
static int base_dir(const char *dir, char *out, size_t outlen,
		    struct cm_err *err)
{
	const char *base = dir;

	if (!base || !*base)
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if (mkdir(base, 0700) != 0 && errno != EEXIST)
		return cm_err_set(err, errno, "overlay directory %s: %s", base,
				  strerror(errno));
	snprintf(out, outlen, "%s", base);
	return 0;
}

/* The FUSE mount on ov->mnt, recorded first; the session takes the
 * descriptor. */
static int mount_fuse(struct arc_overlay *ov, struct cm_err *err)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	char opts[128], fdname[32];
	struct fuse_args args;
	char *argv[] = { (char *)"vaultfs-overlay", NULL };
	int id, rc;

	ov->dev_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (ov->dev_fd < 0)
		return cm_err_set(err, errno, "/dev/fuse: %s",
				  strerror(errno));
	args = (struct fuse_args)FUSE_ARGS_INIT(1, argv);
	ov->se = fuse_session_new(&args, &ops, sizeof(ops), ov);
	fuse_opt_free_args(&args);
	if (!ov->se) {
		close(ov->dev_fd);
		ov->dev_fd = -1;
		return cm_err_set(err, ENOMEM, "cannot make a FUSE session");
	}
	/* libfuse takes a descriptor mounted by the caller as /dev/fd/N */
	snprintf(fdname, sizeof(fdname), "/dev/fd/%d", ov->dev_fd);
	if (fuse_session_mount(ov->se, fdname) != 0) {
		close(ov->dev_fd);
		ov->dev_fd = -1;
		return cm_err_set(err, EIO, "FUSE session: cannot take %s",
				  fdname);
	}
	rc = arc_devs_begin(ov->devs, ARC_RES_MOUNT, ov->mnt, "vaultfs-overlay",
			    &id, err);
	if (rc)
		return rc;
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0,"
		 "default_permissions",
		 ov->dev_fd);
	if (mount("vaultfs-overlay", ov->mnt, "fuse.vaultfs-overlay", flags,
		  opts) != 0) {
		rc = cm_err_set(err, errno, "mount FUSE on %s: %s", ov->mnt,
				strerror(errno));
		arc_devs_release(ov->devs, id);
		return rc;
	}
	rc = arc_devs_done(ov->devs, id, err);
	if (rc)
		arc_devs_release(ov->devs, id);
	return rc;
}

static int start_server(struct arc_overlay *ov, struct cm_err *err)
{
	sigset_t all, old;
	int rc;

	ov->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ov->stop_fd < 0)
		return cm_err_set(err, errno, "eventfd: %s", strerror(errno));
	/* signals are for the caller's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ov->thread, NULL, serve, ov);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return cm_err_set(err, rc, "cannot start the overlay's "
				  "server: %s", strerror(rc));
	ov->have_thread = true;
	return 0;
}

int arc_overlay_new(struct arc_devs *d, int fd, const char *name,
		    uint64_t offset, uint64_t size, const char *dir,
		    uint64_t limit, struct arc_overlay **ovp,
		    struct cm_err *err)
{
	struct arc_overlay *ov = cm_xcalloc(1, sizeof(*ov));
	char base[PATH_MAX], cow[256];
	int id, rc;

	*ovp = NULL;
	ov->devs = d;
	ov->mark = arc_devs_mark(d);
	ov->name = cm_xstrdup(name);
	ov->img_fd = ov->cow_fd = ov->dev_fd = ov->stop_fd = -1;
	ov->offset = offset;
	ov->size = size;
	ov->limit = limit ? limit : ARC_OVERLAY_DEFAULT_LIMIT;
	ov->nchunks = (size + (uint64_t)CHUNK_BLOCKS * BLOCK - 1) /
		      ((uint64_t)CHUNK_BLOCKS * BLOCK);
	ov->map = cm_xcalloc(ov->nchunks ? ov->nchunks : 1, sizeof(*ov->map));

	rc = base_dir(dir, base, sizeof(base), err);
	if (rc)
		goto fail;
	if (snprintf(ov->dir, sizeof(ov->dir), "%s/vaultfs-overlay-XXXXXX",
		     base) >= (int)sizeof(ov->dir)) {
		rc = cm_err_set(err, ENAMETOOLONG, "overlay directory %s: a "
				"shorter path is needed", base);
		goto fail;
	}
	if (!mkdtemp(ov->dir)) {
		rc = cm_err_set(err, errno, "mkdtemp %s: %s", ov->dir,
				strerror(errno));
		goto fail;
	}
	rc = arc_devs_begin(d, ARC_RES_OVERLAY, ov->dir, name, &id, err);
	if (rc) {
		rmdir(ov->dir);
		goto fail;
	}
	if (snprintf(ov->mnt, sizeof(ov->mnt), "%s/mnt", ov->dir) < 0 ||
	    snprintf(ov->path, sizeof(ov->path), "%s/" FILE_NAME, ov->mnt) < 0 ||
	    snprintf(cow, sizeof(cow), "%s/cow", ov->dir) < 0 ||
	    mkdir(ov->mnt, 0700) != 0) {
		rc = cm_err_set(err, errno, "mkdir %s: %s", ov->mnt,
				strerror(errno));
		goto fail;
	}
	ov->cow_fd = open(cow, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ov->cow_fd < 0) {
		rc = cm_err_set(err, errno, "%s: %s", cow, strerror(errno));
		goto fail;
	}
	/* sparse, the image's size; gone from the directory at once, so no
	 * crash leaves it behind */
	if (ftruncate(ov->cow_fd, (off_t)size) != 0) {
		rc = cm_err_set(err, errno, "%s: ftruncate: %s", cow,
				strerror(errno));
		goto fail;
	}
	unlink(cow);
	rc = arc_devs_done(d, id, err);
	if (rc)
		goto fail;
	ov->img_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (ov->img_fd < 0) {
		rc = cm_err_set(err, errno, "%s: dup: %s", name,
				strerror(errno));
		goto fail;
	}
	rc = mount_fuse(ov, err);
	if (rc == 0)
		rc = start_server(ov, err);
	if (rc)
		goto fail;
	cm_info("serving %s through a copy-on-write overlay on %s (at most "
		"%llu bytes)",
		name, ov->path, (unsigned long long)ov->limit);
	*ovp = ov;
	return 0;
fail:
	cm_err_prefix(err, "overlay of %s", name);
	arc_overlay_free(ov);
	return rc;
}

const char *arc_overlay_path(const struct arc_overlay *ov)
{
	return ov->path;
}

uint64_t arc_overlay_used(const struct arc_overlay *ov)
{
	return atomic_load(&ov->used);
}

uint64_t arc_overlay_refused(const struct arc_overlay *ov)
{
	return atomic_load(&ov->refused);
}

uint64_t arc_overlay_errors(const struct arc_overlay *ov, int *last)
{
	if (last)
		*last = atomic_load(&ov->last_error);
	return atomic_load(&ov->errors);
}

uint64_t arc_overlay_limit(const struct arc_overlay *ov)
{
	return ov->limit;
}

void arc_overlay_free(struct arc_overlay *ov)
{
	if (!ov)
		return;
	/* what is stacked on it, the FUSE mount, the directory: while the
	 * server still answers (an unmount may flush through it) */
	arc_devs_rollback(ov->devs, ov->mark);
	if (ov->have_thread) {
		uint64_t one = 1;

		if (write(ov->stop_fd, &one, sizeof(one)) < 0)
			cm_debug("overlay: eventfd: %s", strerror(errno));
		pthread_join(ov->thread, NULL);
	}
	/* closes /dev/fuse: a connection still up (a lazy unmount) is
	 * aborted, its requests fail */
	if (ov->se)
		fuse_session_destroy(ov->se);
	else if (ov->dev_fd >= 0)
		close(ov->dev_fd);
	if (ov->stop_fd >= 0)
		close(ov->stop_fd);
	if (ov->img_fd >= 0)
		close(ov->img_fd);
	if (ov->cow_fd >= 0)
		close(ov->cow_fd);
	for (size_t i = 0; i < ov->nchunks; i++)
		free(ov->map[i]);
	free(ov->map);
	free(ov->buf);
	free(ov->name);
	free(ov);
}
