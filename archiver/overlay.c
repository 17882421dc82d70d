/*
 * overlay.c - see overlay.h: one file served over FUSE (fuse_file.h, a
 * writable one), reads from the image, writes into a bounded
 * copy-on-write overlay.
 *
 * The FUSE mount is a plain ARC_RES_MOUNT of struct arc_devs, recorded
 * before mount(2) and unmounted like any other.
 *
 * The map of written blocks is a bitmap per 128 MiB of image, allocated
 * on the first write there: the server thread's alone. The counters are
 * atomics that the caller reads.
 */
#include "overlay.h"

#include "blockdev.h"
#include "fuse_file.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 4096u
#define CHUNK_BLOCKS 32768u /* one bitmap: 128 MiB of image */
#define CHUNK_WORDS (CHUNK_BLOCKS / 64)
#define FILE_NAME "image"

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
	uint64_t offset, size, limit;
	struct arc_fuse_file *ff;    /* the mount's server */

	/* the server thread's alone (and the freeing thread's after it) */
	uint64_t **map;              /* nchunks bitmaps, NULL until written */
	size_t nchunks;

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

/* ---- the served file -------------------------------------------------- */

static int ov_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct arc_overlay *ov = ctx;
	int rc = read_range(ov, buf, n, off);

	return rc ? failed(ov, rc) : 0;
}

static int ov_write(void *ctx, const void *buf, size_t n, uint64_t off)
{
	return write_range(ctx, buf, n, off);
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

/* The FUSE mount on ov->mnt, recorded first (fuse_file.h). */
static int mount_fuse(struct arc_overlay *ov, struct cm_err *err)
{
	struct arc_fuse_file_opts o = {
		.fsname = "vaultfs-overlay",
		.name = FILE_NAME,
		.size = ov->size,
		.read = ov_read,
		.write = ov_write,
		.ctx = ov,
	};
	int id, rc;

	rc = arc_devs_begin(ov->devs, ARC_RES_MOUNT, ov->mnt, "vaultfs-overlay",
			    &id, err);
	if (rc)
		return rc;
	rc = arc_fuse_file_mount(ov->mnt, &o, &ov->ff, err);
	if (rc == 0)
		rc = arc_devs_done(ov->devs, id, err);
	if (rc)
		arc_devs_release(ov->devs, id);
	return rc;
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
	ov->img_fd = ov->cow_fd = -1;
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
	/* stops the server; a connection still up (a lazy unmount) is
	 * aborted, its requests fail */
	arc_fuse_file_free(ov->ff);
	if (ov->img_fd >= 0)
		close(ov->img_fd);
	if (ov->cow_fd >= 0)
		close(ov->cow_fd);
	for (size_t i = 0; i < ov->nchunks; i++)
		free(ov->map[i]);
	free(ov->map);
	free(ov->name);
	free(ov);
}
