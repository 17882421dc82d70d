/*
 * raw.c - the raw source: the bytes of a block device or an image file,
 * exactly, in reads of ARC_READ_SIZE (1 MiB).
 *
 * Most of a restored volume is often empty. Two things keep that cheap:
 * holes of an image file are found with SEEK_DATA/SEEK_HOLE and never read,
 * and every read is looked at in blocks of ARC_ZERO_BLOCK (64 KiB): a block
 * that is all zero is not passed on as bytes but counted, and each run of
 * zeros reaches the chain as one arc_write_zeros() call, which a codec
 * compresses once however long the run. Decompressed, the output is the
 * device's bytes, holes and zeros included.
 *
 * The same loop (arc_raw_stream) feeds a tar entry (tar.c: a partition
 * that will not mount). One buffer per call, freed before returning; the
 * fd is borrowed. A read error, or a device that ends before its size
 * (a detached loop device, a pulled disk), fails with the offset and a
 * hint that the device went away; nothing is retried. An image file that
 * changed while it was read (fstat after the read) is recorded: the
 * archive is then incomplete (source.h).
 */
#include "source_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"

int arc_fd_size(int fd, const char *name, bool *is_file, uint64_t *size,
		struct cm_err *err)
{
	struct stat st;
	uint64_t n;

	if (fstat(fd, &st) != 0)
		return cm_err_set(err, errno, "%s: %s", name, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		*is_file = true;
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return cm_err_set(err, EINVAL,
				  "%s: not a block device or a regular file",
				  name);
	if (ioctl(fd, BLKGETSIZE64, &n) != 0)
		return cm_err_set(err, errno, "%s: cannot get its size: %s",
				  name, strerror(errno));
	*is_file = false;
	*size = n;
	return 0;
}

struct zrun {
	const struct arc_raw_out *out;
	uint64_t pending;  /* zeros seen and not yet passed on */
};

static int flush_zeros(struct zrun *z, struct cm_err *err)
{
	uint64_t n = z->pending;

	if (n == 0)
		return 0;
	z->pending = 0;
	return z->out->zeros(z->out->ctx, n, err);
}

/* Pass on n read bytes: runs of data as data, zero blocks as zeros. */
static int emit(struct zrun *z, const char *buf, size_t n, struct cm_err *err)
{
	size_t i = 0, run = 0;  /* run: start of the data not yet passed */
	int rc;

	while (i < n) {
		size_t b = n - i < ARC_ZERO_BLOCK ? n - i : ARC_ZERO_BLOCK;

		if (!arc_is_zero(buf + i, b)) {
			i += b;
			continue;
		}
		if (i > run) {
			rc = flush_zeros(z, err);
			if (rc == 0)
				rc = z->out->data(z->out->ctx, buf + run,
						  i - run, err);
			if (rc)
				return rc;
		}
		z->pending += b;
		i += b;
		run = i;
	}
	if (n > run) {
		rc = flush_zeros(z, err);
		if (rc == 0)
			rc = z->out->data(z->out->ctx, buf + run, n - run, err);
		if (rc)
			return rc;
	}
	return 0;
}

static bool vanished(int e)
{
	return e == EIO || e == ENXIO || e == ENODEV || e == ESHUTDOWN;
}

/* Read n bytes at off, resuming short reads; returns bytes read (less
 * than n only at the end of the file) or -errno. */
static ssize_t read_at(int fd, char *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	if (cm_fault("arc.raw_read"))
		return -EIO;
	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * Where the next data is, from pos, for a regular file: *data is the
 * start of data (end: none before end), *data_end the next hole. 0, or
 * -errno when the file has become shorter than we were told.
 */
static int next_data(int fd, uint64_t pos, uint64_t end, bool *holes,
		     uint64_t *data, uint64_t *data_end)
{
	off_t d, h;

	*data = pos;
	*data_end = end;
	if (!*holes)
		return 0;
	d = lseek(fd, (off_t)pos, SEEK_DATA);
	if (d < 0) {
		struct stat st;

		if (errno != ENXIO) {
			*holes = false; /* not supported here: read it all */
			return 0;
		}
		/* no data after pos: a hole to the end of the file */
		if (fstat(fd, &st) != 0)
			return -errno;
		if ((uint64_t)st.st_size < end)
			return -ENODATA;
		*data = end;
		return 0;
	}
	*data = (uint64_t)d < end ? (uint64_t)d : end;
	h = lseek(fd, d, SEEK_HOLE);
	if (h >= 0 && (uint64_t)h < end)
		*data_end = (uint64_t)h;
	return 0;
}

/* An image file read whole must not have changed while it was read (as a
 * tree's files, tar.c): else the archive may mix two states of it. */
static void check_unchanged(int fd, const char *name, const struct stat *was,
			    struct arc_stats *stats)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		arc_stats_skip(stats, name, "cannot look at it again after "
			       "reading it: %s", strerror(errno));
	else if (st.st_size != was->st_size ||
		 st.st_mtim.tv_sec != was->st_mtim.tv_sec ||
		 st.st_mtim.tv_nsec != was->st_mtim.tv_nsec ||
		 st.st_ctim.tv_sec != was->st_ctim.tv_sec ||
		 st.st_ctim.tv_nsec != was->st_ctim.tv_nsec)
		arc_stats_skip(stats, name, "changed while it was read (its "
			       "size, mtime or ctime moved): the archived "
			       "bytes may mix old and new contents");
}

int arc_raw_stream(int fd, const char *name, uint64_t offset, uint64_t size,
		   const struct arc_raw_out *out,
		   const struct arc_source_opts *opts, struct arc_stats *stats,
		   struct cm_err *err)
{
	struct zrun z = { .out = out };
	uint64_t pos = offset, end = offset + size;
	struct stat st;
	bool holes, read_once = false;
	char *buf = NULL;
	int rc = 0;

	if (fstat(fd, &st) != 0)
		return cm_err_set(err, errno, "%s: %s", name, strerror(errno));
	holes = S_ISREG(st.st_mode);
	if (posix_memalign((void **)&buf, 4096, ARC_READ_SIZE) != 0)
		abort(); /* out of memory */

	while (pos < end) {
		uint64_t data, data_end;
		size_t want;
		ssize_t r;

		if (arc_source_cancelled(opts)) {
			rc = arc_cancel_error(err);
			goto out;
		}
		rc = next_data(fd, pos, end, &holes, &data, &data_end);
		if (rc) {
			rc = cm_err_set(err, EIO,
					"%s: the file became shorter than %llu "
					"bytes while being read",
					name, (unsigned long long)end);
			goto out;
		}
		if (data > pos) {
			/* a hole: nothing to read */
			z.pending += data - pos;
			stats->bytes_read += data - pos;
			pos = data;
			arc_progress(opts, stats, false);
			continue;
		}
		want = data_end - pos < ARC_READ_SIZE ? (size_t)(data_end - pos)
						      : ARC_READ_SIZE;
		r = read_at(fd, buf, want, pos);
		if (r < 0) {
			rc = cm_err_set(err, (int)-r,
					"%s: read failed at byte %llu of %llu: "
					"%s%s",
					name, (unsigned long long)pos,
					(unsigned long long)end,
					strerror((int)-r),
					vanished((int)-r)
						? " (did the device go away?)"
						: "");
			goto out;
		}
		if (r == 0) {
			rc = cm_err_set(err, EIO,
					"%s: ended at byte %llu, expected %llu "
					"(did the device go away?)",
					name, (unsigned long long)pos,
					(unsigned long long)end);
			goto out;
		}
		rc = emit(&z, buf, (size_t)r, err);
		if (rc)
			goto out;
		if (!read_once) {
			read_once = true;
			arc_test_hook_read(name);
		}
		pos += (uint64_t)r;
		stats->bytes_read += (uint64_t)r;
		arc_progress(opts, stats, false);
	}
	rc = flush_zeros(&z, err);
	if (rc == 0 && S_ISREG(st.st_mode))
		check_unchanged(fd, name, &st, stats);
out:
	free(buf);
	return rc;
}

struct to_chain {
	struct arc_filter *out;   /* borrowed */
	struct arc_stats *stats;  /* borrowed */
};

static int chain_data(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct to_chain *c = ctx;

	return arc_write(c->out, p, n, err);
}

static int chain_zeros(void *ctx, uint64_t n, struct cm_err *err)
{
	struct to_chain *c = ctx;

	c->stats->bytes_zero += n;
	return arc_write_zeros(c->out, n, err);
}

int arc_source_raw_fd(int fd, const char *name, uint64_t offset,
		      uint64_t size, struct arc_filter *out,
		      const struct arc_source_opts *opts,
		      struct arc_stats *stats, struct cm_err *err)
{
	struct to_chain c = { .out = out, .stats = stats };
	const struct arc_raw_out to_chain = {
		.data = chain_data,
		.zeros = chain_zeros,
		.ctx = &c,
	};
	int rc;

	stats->method = ARC_METHOD_RAW;
	stats->bytes_total += size;
	arc_progress(opts, stats, true);
	rc = arc_raw_stream(fd, name, offset, size, &to_chain, opts, stats,
			    err);
	if (rc == 0)
		arc_progress(opts, stats, true);
	return rc;
}

int arc_source_raw(const char *path, struct arc_filter *out,
		   const struct arc_source_opts *opts, struct arc_stats *stats,
		   struct cm_err *err)
{
	uint64_t size;
	bool is_file;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	rc = arc_fd_size(fd, path, &is_file, &size, err);
	if (rc == 0)
		rc = arc_source_raw_fd(fd, path, 0, size, out, opts, stats,
				       err);
	close(fd);
	return rc;
}
