/*
 * tar.c - the tree source: directories (and raw images) into one pax tar
 * stream. The one door to libarchive.
 *
 * Shape. libarchive's disk reader walks each directory (symlinks not
 * followed, except a symlink given as the directory itself, as `tar -H`
 * does) and fills an entry per file with its metadata: numeric owners,
 * mode, times, symlink target, xattrs, POSIX ACLs, file flags and the map
 * of a sparse file's data. No user or group names are looked up: the
 * tree is usually a snapshot of another machine, whose names our
 * /etc/passwd does not know. The entry is renamed (the directory's path
 * replaced by a prefix: "./" or "p1/"), passed through a link resolver
 * (the second and later names of a file become hard links), and written
 * by libarchive's pax writer, which turns long or odd names, sparse maps,
 * xattrs and ACLs into pax extended headers.
 *
 * Names are bytes, and must come back as the same bytes. The pax writer
 * converts names from the locale it first sees to UTF-8, and the header
 * says so: a name in valid UTF-8 goes as a plain pax `path` (or
 * `linkpath`), which GNU tar, bsdtar and Python's tarfile all read
 * without a word. So headers are written under C.UTF-8 (uselocale: this
 * thread only), where UTF-8 to UTF-8 copies valid names unchanged and
 * fails on any other: libarchive then stores that entry's names raw,
 * marked hdrcharset=BINARY (bsdtar honours it; GNU tar warns of an
 * unknown keyword and keeps the bytes). One exception: libarchive turns
 * a CESU-8 surrogate pair into the UTF-8 character instead of failing,
 * which would change the name, and its writer cannot be switched to
 * binary once writing: such an entry is left out and recorded (stage()).
 * Without a C.UTF-8 locale, "C": every non-ASCII name is BINARY, as
 * before. xattrs go as SCHILY.xattr.* only, the
 * form GNU tar and libarchive both read (libarchive's own
 * LIBARCHIVE.xattr.* copy would make GNU tar complain once per file).
 *
 * File data is read by this module, not by the disk reader: the disk
 * reader treats a read error as fatal to the whole walk, and we want an
 * unreadable file to cost only that file. Each regular file is opened
 * before its header is written (relative to the directory, refusing
 * symlinks: openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, and component by
 * component for paths past PATH_MAX); if that fails the file is skipped
 * and recorded. A read error later on cannot take back the header: the
 * rest of the file is stored as zeros and the file is recorded too. Only
 * the data regions of a sparse file are read; its holes are fed to the
 * writer as zeros, which the pax writer drops.
 *
 * Changed while read. After a file's data, the open file is looked at
 * again (fstat): a size, mtime or ctime other than those its header was
 * written from means the stored copy may mix old and new bytes, or miss
 * some (a file that grew past its header's size: only that size is
 * stored), and the file is recorded, as GNU tar's "file changed as we
 * read it". Directories likewise, where it is cheap: the writer keeps the
 * directories met but not yet listed (their header's mtime and ctime: as
 * many as the disk reader's own stack holds) and looks at each again
 * with fstatat once its listing has been written (dirs_next()). Every such
 * record makes the archive incomplete (source.h).
 *
 * Output. The writer emits blocks of TAR_BLOCK bytes (60 KiB, a multiple
 * of the 10 KiB tar record, so the padded end is a whole record, as GNU
 * tar writes it) to write_cb(), which passes them to the chain. Blocks
 * that are all zero are held back and passed on as one arc_write_zeros()
 * run: raw images inside the tar are often mostly empty.
 *
 * Ownership: struct arc_tar owns the writer, the link resolver and one
 * read buffer (ARC_READ_SIZE); it borrows the chain, the options and the
 * stats. Its functions are called from one thread, which is the only one
 * to touch the writer, the chain and the stats; arc_tar_add_tree() runs
 * the walk on a thread of its own (and the size estimate on another)
 * and joins them before it returns (see "Read-ahead" below).
 */
#include "source_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fault.h"
#include "log.h"
#include "mem.h"

#define TAR_RECORD 10240
#define TAR_BLOCK (6 * TAR_RECORD)
/* This many files in a row failing with EIO: the device is gone, or the
 * filesystem is too broken to be worth walking on. */
#define IO_ERRORS_MAX 32
/* The estimate pre-walk goes no deeper than this. */
#define ESTIMATE_DEPTH 64
/* Read-ahead: files opened and asked for before they are written, at most
 * this many, with at most AHEAD_BYTES of their data in flight; a file's
 * first AHEAD_PER_FILE bytes are asked (the kernel's own read-ahead
 * follows a sequential reader well past that). */
#define AHEAD_FILES 256
#define AHEAD_BYTES (32u << 20)
#define AHEAD_PER_FILE (2u << 20)
/* The walker and the writer meet a batch at a time, not per file (a
 * futex call each way per file costs more than the file): the walker
 * takes the lock once per PUBLISH_FILES entries (or when the room it saw
 * is used up), the writer once per TAKE_FILES written; the writer sleeps
 * until WAKE_FILES entries or WAKE_BYTES of data are staged (or
 * WAKE_WAIT_MS pass with something staged: a walk slowed by a cold disk),
 * the walker until that much room is free. */
#define PUBLISH_FILES 8
#define TAKE_FILES 16
#define WAKE_FILES 32
#define WAKE_BYTES (4u << 20)
#define WAKE_WAIT_MS 2

/* Fed to the writer for holes and zero runs; never written. write_cb()
 * knows a block from here is zero without looking. */
static char zeros[ARC_READ_SIZE];

/*
 * The locale headers are written under (the top): C.UTF-8, else C. One for
 * the process, made once and kept: archiving threads that each made and
 * freed their own raced inside glibc's locale cache, whose locks
 * ThreadSanitizer cannot see, and one costs nothing.
 */
static locale_t header_locale;
static pthread_once_t header_locale_once = PTHREAD_ONCE_INIT;

static void header_locale_init(void)
{
	header_locale = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
	if (!header_locale)
		header_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

struct arc_tar {
	struct archive *a;                         /* owned */
	struct archive_entry_linkresolver *links;  /* owned */
	locale_t c_locale;   /* header_locale; may be 0 */
	char *buf;                                 /* owned, ARC_READ_SIZE */
	struct arc_filter *out;                    /* borrowed */
	const struct arc_source_opts *opts;        /* borrowed, may be NULL */
	struct arc_stats *stats;                   /* borrowed */
	uint64_t pending_zeros;  /* zero blocks held back from the chain */
	unsigned io_errors;      /* files failing with EIO in a row */
	int wrc;                 /* the chain's failure, if any ... */
	struct cm_err werr;      /* ... and its message */
	bool finished;
	bool discard;            /* freeing: write nothing more */
};

static la_ssize_t write_cb(struct archive *a, void *ctx, const void *p,
			   size_t n)
{
	struct arc_tar *t = ctx;
	uintptr_t c = (uintptr_t)p, z = (uintptr_t)zeros;
	int rc = 0;

	/* A failed chain is not reported to libarchive: a writer in its
	 * FATAL state leaks its block buffer on free (3.6). The failure is
	 * kept in t->wrc, checked after every call, and the rest of the
	 * output, end of archive included, is dropped here. */
	if (t->discard || t->wrc)
		return (la_ssize_t)n;
	if ((c >= z && c + n <= z + sizeof(zeros)) || arc_is_zero(p, n)) {
		t->pending_zeros += n;
		return (la_ssize_t)n;
	}
	if (t->pending_zeros) {
		t->stats->bytes_zero += t->pending_zeros;
		rc = arc_write_zeros(t->out, t->pending_zeros, &t->werr);
		t->pending_zeros = 0;
	}
	if (rc == 0)
		rc = arc_write(t->out, p, n, &t->werr);
	if (rc)
		t->wrc = rc;
	return (la_ssize_t)n;
}

static const char *la_msg(struct archive *a)
{
	const char *m = archive_error_string(a);

	return m ? m : "libarchive failed";
}

/* The writer failed: the chain's error if that was it, else libarchive's. */
static int writer_error(struct arc_tar *t, const char *what,
			struct cm_err *err)
{
	int code;

	if (t->wrc) {
		if (err)
			*err = t->werr;
		return t->wrc;
	}
	code = archive_errno(t->a);
	return cm_err_set(err, code > 0 ? code : EIO, "%s: %s", what,
			  la_msg(t->a));
}

int arc_tar_new(struct arc_filter *out, const struct arc_source_opts *opts,
		struct arc_stats *stats, struct arc_tar **tarp,
		struct cm_err *err)
{
	struct arc_tar *t = cm_xcalloc(1, sizeof(*t));
	int rc = 0;

	t->out = out;
	t->opts = opts;
	t->stats = stats;
	t->buf = cm_xmalloc(ARC_READ_SIZE);
	t->a = archive_write_new();
	t->links = archive_entry_linkresolver_new();
	if (!t->a || !t->links)
		abort(); /* out of memory */
	pthread_once(&header_locale_once, header_locale_init);
	t->c_locale = header_locale;
	if (archive_write_set_format_pax(t->a) != ARCHIVE_OK) {
		rc = writer_error(t, "tar", err);
		goto out;
	}
	/* before libarchive 3.5, both forms: better than failing */
	if (archive_write_set_format_option(t->a, "pax", "xattrheader",
					    "SCHILY") != ARCHIVE_OK)
		cm_debug("tar: libarchive writes xattrs in both pax forms");
	if (archive_write_set_bytes_per_block(t->a, TAR_BLOCK) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(t->a, TAR_RECORD) !=
		    ARCHIVE_OK ||
	    archive_write_open2(t->a, t, NULL, write_cb, NULL, NULL) !=
		    ARCHIVE_OK) {
		rc = writer_error(t, "tar", err);
		goto out;
	}
	archive_entry_linkresolver_set_strategy(t->links,
						archive_format(t->a));
	stats->method = ARC_METHOD_TREE;
out:
	if (rc) {
		arc_tar_free(t);
		t = NULL;
	}
	*tarp = t;
	return rc;
}

void arc_tar_free(struct arc_tar *t)
{
	if (!t)
		return;
	if (!t->finished) {
		/* no end-of-archive after a failure: the chain is aborted */
		t->discard = true;
		archive_write_close(t->a);
	}
	archive_write_free(t->a);
	archive_entry_linkresolver_free(t->links);
	free(t->buf);
	free(t);
}

int arc_tar_finish(struct arc_tar *t, struct cm_err *err)
{
	int rc;

	if (t->wrc)
		return writer_error(t, "tar", err);
	if (archive_write_close(t->a) != ARCHIVE_OK || t->wrc)
		return writer_error(t, "tar: end of archive", err);
	t->finished = true;
	/* all is read: the estimate gives way to the count */
	t->stats->bytes_total = t->stats->bytes_read;
	if (t->pending_zeros) {
		t->stats->bytes_zero += t->pending_zeros;
		rc = arc_write_zeros(t->out, t->pending_zeros, err);
		t->pending_zeros = 0;
		if (rc)
			return rc;
	}
	arc_progress(t->opts, t->stats, true);
	return 0;
}

/* A CESU-8 surrogate pair in s (a high surrogate ED A0-AF xx, then a low
 * one ED B0-BF xx), which libarchive would rewrite as UTF-8. */
static bool has_cesu_pair(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; p && *p; p++)
		if (p[0] == 0xed && p[1] >= 0xa0 && p[1] <= 0xaf && p[2] &&
		    p[3] == 0xed && p[4] >= 0xb0 && p[4] <= 0xbf)
			return true;
	return false;
}

/*
 * archive_write_header() under C.UTF-8 (see the top of the file). A name
 * stored raw is not a problem: that warning is dropped.
 */
static int write_header(struct arc_tar *t, struct archive_entry *e)
{
	locale_t old = t->c_locale ? uselocale(t->c_locale) : (locale_t)0;
	int r;

	r = archive_write_header(t->a, e);
	if (old)
		uselocale(old);
	if (r == ARCHIVE_WARN && archive_error_string(t->a) &&
	    !strncmp(archive_error_string(t->a), "Can't translate", 15))
		r = ARCHIVE_OK;
	return r;
}

/* Feed n zero bytes to the current entry: holes (which the pax writer
 * drops) and zero runs of raw images (which write_cb() holds back). */
static int write_zeros(struct arc_tar *t, uint64_t n, struct cm_err *err)
{
	while (n) {
		size_t chunk = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
		la_ssize_t w = archive_write_data(t->a, zeros, chunk);

		if (w < 0 || t->wrc)
			return writer_error(t, "tar", err);
		if (w == 0)
			break; /* past the entry's size */
		n -= (uint64_t)w;
	}
	return 0;
}

static int write_data(struct arc_tar *t, const void *p, size_t n,
		      struct cm_err *err)
{
	const char *c = p;

	while (n) {
		la_ssize_t w = archive_write_data(t->a, c, n);

		if (w < 0 || t->wrc)
			return writer_error(t, "tar", err);
		if (w == 0)
			break;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Count a file that failed (errno e) or was read (0); fail after too many
 * EIO-like failures in a row. */
static int note_io(struct arc_tar *t, const char *dir, int e,
		   struct cm_err *err)
{
	if (e != EIO && e != ENXIO && e != ENODEV) {
		if (e == 0)
			t->io_errors = 0;
		return 0;
	}
	if (++t->io_errors < IO_ERRORS_MAX)
		return 0;
	return cm_err_set(err, EIO,
			  "%s: %u files in a row failed with I/O errors "
			  "(did the device go away?)",
			  dir, t->io_errors);
}

/* --- raw images as tar entries --- */

static int raw_data(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	return write_data(ctx, p, n, err);
}

static int raw_zeros(void *ctx, uint64_t n, struct cm_err *err)
{
	return write_zeros(ctx, n, err);
}

int arc_tar_add_raw(struct arc_tar *t, const char *name, int fd,
		    uint64_t offset, uint64_t size, struct cm_err *err)
{
	const struct arc_raw_out to_tar = {
		.data = raw_data,
		.zeros = raw_zeros,
		.ctx = t,
	};
	struct archive_entry *e = archive_entry_new();
	struct stat st;
	int rc = 0, r;

	if (!e)
		abort(); /* out of memory */
	archive_entry_copy_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
					   ? st.st_mtime
					   : time(NULL),
				0);
	t->stats->bytes_total += size;
	r = write_header(t, e);
	if (r < ARCHIVE_WARN || t->wrc) {
		rc = writer_error(t, name, err);
		goto out;
	}
	rc = arc_raw_stream(fd, name, offset, size, &to_tar, t->opts, t->stats,
			    err);
	if (rc)
		goto out;
	if (archive_write_finish_entry(t->a) != ARCHIVE_OK || t->wrc)
		rc = writer_error(t, name, err);
out:
	archive_entry_free(e);
	return rc;
}

/* --- trees --- */

/* What a file or directory looked like when its header was made: looked
 * at again after it is read (see "Changed while read" above). */
struct seen {
	int64_t size;
	int64_t mtime_s, mtime_ns;
	int64_t ctime_s, ctime_ns;
};

/* A directory the writer has written, its listing not yet all written:
 * its name in the tar (owned, without a trailing slash) and what it
 * looked like then. */
struct open_dir {
	char *name;
	struct seen seen;
};

/* One slot of the ring between the walk and the writer (see "Read-ahead"
 * above stage()). A skip record carries a path that is not archived and
 * why, so that messages come out in walk order, from the writer. */
struct staged {
	struct archive_entry *e; /* owned, kept for the slot's next use: the
				  * walker reads headers into it, so that
				  * entries are made and freed on one thread */
	bool skip;               /* a skip record, not an entry */
	char *problem;           /* owned, or NULL: e's warning, or why skipped */
	char *skip_path;         /* owned: the skip record's path */
	int skip_errno;          /* the skip record's errno, or -1: not an I/O
				  * failure (note_io) */
	int fd;                  /* owned, or -1 */
	uint64_t ahead;          /* bytes asked ahead for it */
	struct seen seen;        /* what its header is written from */
};

/* State of one add_tree() call. The walk (libarchive's disk reader, the
 * opens and the read-ahead) runs on its own thread, the walker; the
 * writer (tar headers, file data, the chain) on the caller's. They meet
 * in the ring, under `lock`. */
struct walk {
	struct arc_tar *t;
	struct archive *disk;   /* owned: the disk reader; the walker's */
	int rootfd;             /* owned: the directory */
	const char *dir;        /* as given to the disk reader */
	size_t dirlen;
	const char *prefix;
	struct cm_buf name;     /* the walker's: the entry's name in the tar */
	struct cm_buf rel;      /* the walker's: its path relative to dir */
	/* entries walked but not yet given back by the writer: a ring of
	 * AHEAD_FILES, oldest at `head`; slots at and past head + n are the
	 * walker's */
	struct staged ring[AHEAD_FILES];
	unsigned head, n;
	uint64_t ahead_bytes;    /* sum of the ring's `ahead` */
	/* the writer's own: how many slots are written but not yet given
	 * back (and their bytes ahead), so that the next to write is at
	 * head + rd_done, and how many are ready from there. `head` moves
	 * only on the writer's thread (under the lock), so it may read it
	 * without. */
	unsigned rd_done, rd_ready;
	uint64_t rd_done_bytes;
	pthread_mutex_t lock;
	pthread_cond_t more;     /* to the writer: staged, or walk done */
	pthread_cond_t room;     /* to the walker: popped, or stop */
	pthread_t walker;
	/* the walker's own: slots filled but not yet published (from head +
	 * n on), the next to fill, and how many more it may fill before it
	 * looks at the ring again */
	unsigned fill, tail, credit;
	uint64_t fill_bytes, credit_bytes;
	bool walker_running;
	bool walker_waits;       /* the walker sleeps on `room` */
	bool writer_waits;       /* the writer sleeps on `more` */
	bool walk_done;          /* the walker has staged its last */
	bool stop;               /* the writer gave up: walk no further */
	int walk_rc;             /* the walk's failure ... */
	struct cm_err walk_err;  /* ... and its message */
	/* the writer's own: the directory whose listing it is writing, and
	 * those met but not yet visited, in the order met (dirs_next()) */
	struct open_dir cur;
	struct open_dir *dirs;
	size_t ndirs, dirs_cap;
};

static int sys_openat2(int dirfd, const char *path, int flags,
		       uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)flags,
		.resolve = resolve,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
		/* before Linux 5.6, or a seccomp filter: the last component
		 * is still not followed */
		fd = openat(dirfd, path, flags | O_NOFOLLOW);
	}
	return fd;
}

/*
 * Open `rel` below `rootfd`, following no symlinks, whatever its length:
 * PATH_MAX bounds one call, so longer paths are opened a stretch of
 * directories at a time. -1 with errno on failure.
 */
static int open_beneath(int rootfd, const char *rel, int flags)
{
	const uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
				 RESOLVE_NO_MAGICLINKS;
	char part[PATH_MAX];
	int cur = rootfd, fd, e;

	while (strlen(rel) >= PATH_MAX) {
		const char *slash = rel + PATH_MAX - 1;
		int next;

		while (slash > rel && *slash != '/')
			slash--;
		if (slash == rel) {
			errno = ENAMETOOLONG;
			fd = -1;
			goto out;
		}
		memcpy(part, rel, (size_t)(slash - rel));
		part[slash - rel] = '\0';
		next = sys_openat2(cur, part, O_PATH | O_DIRECTORY | O_CLOEXEC,
				   resolve);
		if (next < 0) {
			fd = -1;
			goto out;
		}
		if (cur != rootfd)
			close(cur);
		cur = next;
		rel = slash + 1;
	}
	fd = sys_openat2(cur, rel, flags, resolve);
out:
	e = errno;
	if (cur != rootfd)
		close(cur);
	errno = e;
	return fd;
}

/*
 * The data regions of a file with holes, into e's sparse map (the disk
 * reader is told NO_SPARSE: it would ask every file, six lseek()s each).
 * Only a file with fewer blocks than its size can have holes, which is
 * GNU tar's test too; one that has more (preallocated past its end) is
 * read whole, holes as zeros: larger, never wrong. A map that cannot be
 * read is no map.
 */
static void sparse_map(int fd, const struct stat *st, struct archive_entry *e)
{
	off_t size = (off_t)archive_entry_size(e), data = 0, hole;

	if (size <= 0 || (uint64_t)st->st_blocks * 512 >= (uint64_t)size)
		return;
	while (data < size) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0) {
			if (errno != ENXIO)
				goto fail;
			/* no data past here. All holes: an empty region at
			 * the end says so (libarchive's own (0, 0) makes a
			 * member that neither GNU tar nor bsdtar extracts) */
			if (archive_entry_sparse_count(e) == 0)
				archive_entry_sparse_add_entry(e, size, 0);
			return;
		}
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole <= data)
			goto fail;
		if (hole > size)
			hole = size;
		if (data == 0 && hole == size)
			return; /* no hole after all */
		archive_entry_sparse_add_entry(e, data, hole - data);
		data = hole;
	}
	return;
fail:
	archive_entry_sparse_clear(e);
}

/* Open a regular file for reading, as quietly as we can (no atime), and
 * map its holes. */
static int open_file(struct walk *w, const char *rel,
		     struct archive_entry *e)
{
	const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct stat st;
	int fd;

	if (cm_fault("arc.tar_open")) {
		errno = EACCES;
		return -1;
	}
	fd = open_beneath(w->rootfd, rel, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open_beneath(w->rootfd, rel, flags);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_ino != (ino_t)archive_entry_ino64(e) ||
	    st.st_dev != (dev_t)archive_entry_dev(e)) {
		close(fd);
		errno = ESTALE; /* replaced since it was looked at */
		return -1;
	}
	sparse_map(fd, &st, e);
	return fd;
}

/* --- changed while read (see the top of the file) --- */

/* What entry e says, as the disk reader saw it (before its ctime is
 * unset for the header). A ctime it does not have is not compared. */
static void seen_from_entry(struct archive_entry *e, struct seen *out)
{
	out->size = archive_entry_size(e);
	out->mtime_s = archive_entry_mtime(e);
	out->mtime_ns = archive_entry_mtime_nsec(e);
	out->ctime_s = archive_entry_ctime_is_set(e) ? archive_entry_ctime(e)
						     : INT64_MIN;
	out->ctime_ns = archive_entry_ctime_nsec(e);
}

/* Whether `st` is not what `seen` says, and why (into why). Sizes count
 * for files only: a directory's size is its listing's. */
static bool seen_differs(const struct seen *seen, const struct stat *st,
			 bool file, char *why, size_t len)
{
	if (file && st->st_size > seen->size) {
		snprintf(why, len, "grew from %lld to %lld bytes while it was "
			 "read; only the first %lld are archived",
			 (long long)seen->size, (long long)st->st_size,
			 (long long)seen->size);
		return true;
	}
	if (file && st->st_size < seen->size) {
		snprintf(why, len, "shrank from %lld to %lld bytes while it "
			 "was read", (long long)seen->size,
			 (long long)st->st_size);
		return true;
	}
	if (st->st_mtim.tv_sec == seen->mtime_s &&
	    st->st_mtim.tv_nsec == seen->mtime_ns &&
	    (seen->ctime_s == INT64_MIN ||
	     (st->st_ctim.tv_sec == seen->ctime_s &&
	      st->st_ctim.tv_nsec == seen->ctime_ns)))
		return false;
	snprintf(why, len, file ? "changed while it was read (its mtime or "
				  "ctime moved): the archived copy may mix "
				  "old and new contents"
				: "changed while it was read (its mtime or "
				  "ctime moved): entries may have been "
				  "added, removed or renamed");
	return true;
}

/* A regular file just written: is it still what its header says? */
static void check_file(struct arc_tar *t, const char *name, int fd,
		       const struct seen *seen)
{
	char why[256];
	struct stat st;

	if (fstat(fd, &st) != 0)
		arc_stats_skip(t->stats, name, "cannot look at it again after "
			       "reading it: %s", strerror(errno));
	else if (seen_differs(seen, &st, true, why, sizeof(why)))
		arc_stats_skip(t->stats, name, "%s", why);
}

/* Look at directory `d` again, its listing read. A directory whose path is
 * too long for one fstatat is not looked at (not cheap). */
static void dir_check(struct walk *w, const struct open_dir *d)
{
	size_t plen = strlen(w->prefix);
	const char *rel = d->name;
	char why[256];
	struct stat st;

	/* names are normalised without a trailing slash: "./" is ".", the
	 * rest "./a"; a prefix that is not a directory's is not undone */
	if (!plen || w->prefix[plen - 1] != '/' ||
	    strncmp(rel, w->prefix, plen - 1) != 0 ||
	    (rel[plen - 1] != '/' && rel[plen - 1] != '\0'))
		return;
	rel += rel[plen - 1] ? plen : plen - 1;
	if (!*rel)
		rel = ".";
	if (fstatat(w->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			arc_stats_skip(w->t->stats, d->name,
				       "removed while it was read");
	} else if (seen_differs(&d->seen, &st, false, why, sizeof(why))) {
		arc_stats_skip(w->t->stats, d->name, "%s", why);
	}
}

static void dir_done(struct walk *w, struct open_dir *d)
{
	dir_check(w, d);
	free(d->name);
	d->name = NULL;
}

/* Whether directory name `d` is the `len` bytes at n. */
static bool same_dir(const char *d, const char *n, size_t len)
{
	return strncmp(d, n, len) == 0 && d[len] == '\0';
}

/*
 * The writer is about to write entry `name` (NULL: the walk is over).
 * The disk reader lists a directory's entries together, then visits the
 * directories it met, the last met first (a stack). So a listing is read
 * once an entry of another directory comes, and that directory is the
 * newest one not yet visited (those above it were visited and empty).
 * `dir_seen`: `name` is a directory, and what it looked like. No copy of
 * the name is made but of a directory's.
 */
static void dirs_next(struct walk *w, const char *name,
		      const struct seen *dir_seen)
{
	size_t len = 0, plen = 0, i;

	if (name) {
		/* the name without a trailing slash, its parent's length */
		len = strlen(name);
		if (len > 1 && name[len - 1] == '/')
			len--;
		for (plen = len; plen > 0 && name[plen - 1] != '/'; plen--)
			;
		if (plen == 0 || (w->cur.name &&
				  same_dir(w->cur.name, name, plen - 1)))
			goto parent_ok;
		plen--;
	}
	if (w->cur.name)
		dir_done(w, &w->cur);
	for (i = w->ndirs; i-- > 0;)
		if (name && same_dir(w->dirs[i].name, name, plen))
			break;
	if (i != (size_t)-1 || !name) {
		size_t stop = name ? i + 1 : 0;

		while (w->ndirs > stop)
			dir_done(w, &w->dirs[--w->ndirs]);
		if (name) {
			w->cur = w->dirs[i];
			w->ndirs--;
		}
	}
parent_ok:
	if (name && dir_seen) {
		if (w->ndirs == w->dirs_cap) {
			w->dirs_cap = w->dirs_cap ? 2 * w->dirs_cap : 16;
			w->dirs = cm_xrealloc(w->dirs, w->dirs_cap *
							       sizeof(*w->dirs));
		}
		w->dirs[w->ndirs].name = cm_xstrndup(name, len);
		w->dirs[w->ndirs].seen = *dir_seen;
		w->ndirs++;
	}
}

static void dirs_free(struct walk *w)
{
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i].name);
	free(w->dirs);
	free(w->cur.name);
	w->cur.name = NULL;
	w->dirs = NULL;
	w->ndirs = w->dirs_cap = 0;
}

/*
 * Copy a regular file's data into the current entry, region by region of
 * its sparse map (the whole file if it has none). A read error is not
 * fatal: the writer pads the rest with zeros and the file is recorded.
 */
static int copy_file(struct walk *w, struct archive_entry *e, int fd,
		     struct cm_err *err)
{
	const char *name = archive_entry_pathname(e);
	struct arc_tar *t = w->t;
	la_int64_t size = archive_entry_size(e), off, len;
	uint64_t pos = 0;
	bool sparse = archive_entry_sparse_reset(e) > 0;
	int rc;

	for (;;) {
		if (sparse) {
			if (archive_entry_sparse_next(e, &off, &len) !=
			    ARCHIVE_OK)
				break;
		} else {
			if (pos > 0 || size == 0)
				break;
			off = 0;
			len = size;
		}
		if (off < 0 || len < 0 || (uint64_t)off < pos)
			break; /* a map we do not understand: pad the rest */
		rc = write_zeros(t, (uint64_t)off - pos, err);
		if (rc)
			return rc;
		pos = (uint64_t)off;
		while (pos < (uint64_t)(off + len)) {
			uint64_t left = (uint64_t)(off + len) - pos;
			size_t want = left < ARC_READ_SIZE ? (size_t)left
							   : ARC_READ_SIZE;
			ssize_t r;

			if (arc_source_cancelled(t->opts))
				return arc_cancel_error(err);
			if (cm_fault("arc.tar_read")) {
				r = -1;
				errno = EIO;
			} else {
				r = pread(fd, t->buf, want, (off_t)pos);
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				int en = errno;

				arc_stats_skip(t->stats, name,
					       "read error at byte %llu: %s; "
					       "the rest is stored as zeros",
					       (unsigned long long)pos,
					       strerror(en));
				return note_io(t, w->dir, en, err);
			}
			if (r == 0) {
				arc_stats_skip(t->stats, name,
					       "shrank to %llu bytes while "
					       "being read; the rest is "
					       "stored as zeros",
					       (unsigned long long)pos);
				return 0;
			}
			rc = write_data(t, t->buf, (size_t)r, err);
			if (rc)
				return rc;
			if (pos == 0)
				arc_test_hook_read(name);
			pos += (uint64_t)r;
			t->stats->bytes_read += (uint64_t)r;
			arc_progress(t->opts, t->stats, false);
		}
	}
	return note_io(t, w->dir, 0, err);
}

/* Rename the entry: the walked path's directory part becomes the prefix.
 * Keeps the path relative to the directory ("" for itself) in w->rel. */
static void rename_entry(struct walk *w, struct archive_entry *e)
{
	const char *path = archive_entry_pathname(e);
	const char *r = "";

	if (path && strncmp(path, w->dir, w->dirlen) == 0) {
		r = path + w->dirlen;
		while (*r == '/')
			r++;
	}
	cm_buf_reset(&w->rel);
	cm_buf_reset(&w->name);
	if (cm_buf_puts(&w->rel, r) || cm_buf_puts(&w->name, w->prefix) ||
	    cm_buf_puts(&w->name, r))
		abort(); /* out of memory */
	/* this frees `path` */
	archive_entry_copy_pathname(e, cm_buf_str(&w->name));
}

static void count(struct arc_stats *s, struct archive_entry *e)
{
	if (archive_entry_hardlink(e)) {
		s->hardlinks++;
		return;
	}
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		s->files++;
		break;
	case AE_IFDIR:
		s->dirs++;
		break;
	case AE_IFLNK:
		s->symlinks++;
		break;
	default:
		s->other++;
		break;
	}
}

/*
 * Read-ahead. Reading a tree file by file leaves the disk idle between
 * files: each small file costs a round trip to the device, and a cold
 * walk of real trees runs at a fraction of the device's speed. So entries
 * are staged before they are written: the file is opened and its first
 * bytes asked for with POSIX_FADV_WILLNEED, which queues the reads and
 * returns; the entry is written when it leaves the ring, its data by then
 * in the page cache or on its way.
 *
 * The walk runs on its own thread. Its work per file (a dozen system
 * calls: stat, open, xattrs, ACLs, flags, and waits for inodes and
 * directories on a cold disk) would otherwise sit between the writer's
 * reads, and the compressors would wait through it. The archive's order
 * is the walk's; messages about a file (skipped, warnings) come from the
 * writer, in that order.
 */

/* Release what a slot holds but its entry (kept for reuse). */
static void slot_clear(struct staged *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->problem);
	free(s->skip_path);
	*s = (struct staged){ .e = s->e, .fd = -1 };
}

/* Write one staged entry: header, data; or report a skip record. */
static int emit(struct walk *w, struct staged *s, struct cm_err *err)
{
	struct arc_tar *t = w->t;
	struct archive_entry *e = s->e, *spare = NULL;
	const char *name;
	int rc = 0, r;

	if (s->skip) {
		arc_stats_skip(t->stats, s->skip_path, "%s",
			       s->problem ? s->problem : "skipped");
		return note_io(t, w->dir, s->skip_errno, err);
	}
	name = archive_entry_pathname(e);
	dirs_next(w, name, archive_entry_filetype(e) == AE_IFDIR ? &s->seen
								  : NULL);
	/* what the disk reader could not read of it (xattrs, ACLs) is not
	 * in the archive: a difference, not a mere warning */
	if (s->problem)
		arc_stats_skip(t->stats, name, "%s (stored without it)",
			       s->problem);
	archive_entry_linkify(t->links, &e, &spare);
	r = write_header(t, e);
	if (r == ARCHIVE_FATAL || t->wrc)
		return writer_error(t, name, err);
	if (r == ARCHIVE_FAILED) {
		arc_stats_skip(t->stats, name, "%s", la_msg(t->a));
		return 0;
	}
	if (r == ARCHIVE_WARN)
		arc_stats_warn(t->stats, "%s", la_msg(t->a));
	count(t->stats, e);
	if (s->fd >= 0) {
		uint64_t before = t->stats->skipped_count;

		if (!archive_entry_hardlink(e) && archive_entry_size(e) > 0) {
			rc = copy_file(w, e, s->fd, err);
			if (rc)
				return rc;
		}
		/* a read error or a short read is recorded already */
		if (t->stats->skipped_count == before)
			check_file(t, name, s->fd, &s->seen);
	}
	/* linkify hands back the entry it was given, or NULL (holding it to
	 * pair with a later name: not with the pax writer's strategy), so
	 * the slot keeps its entry */
	if (archive_write_finish_entry(t->a) != ARCHIVE_OK || t->wrc)
		rc = writer_error(t, name, err);
	return rc;
}

/* The ring is full, or would be with `files` more entries and `bytes` more
 * data asked ahead. Under w->lock. */
static bool ring_full(const struct walk *w, unsigned files, uint64_t bytes)
{
	return w->n + files >= AHEAD_FILES ||
	       w->ahead_bytes + bytes > AHEAD_BYTES;
}

/* The walker: make its filled slots the writer's; wake the writer when a
 * batch is ready. Under w->lock. */
static void publish_locked(struct walk *w)
{
	w->n += w->fill;
	w->ahead_bytes += w->fill_bytes;
	w->fill = 0;
	w->fill_bytes = 0;
	if (w->writer_waits &&
	    (w->n >= WAKE_FILES || w->ahead_bytes >= WAKE_BYTES ||
	     w->walk_done))
		pthread_cond_signal(&w->more);
}

/* The walker: the next free slot, waiting for one if need be; NULL when
 * the writer has stopped. The lock is taken only when the room it last
 * saw is used up. */
static struct staged *slot_wait(struct walk *w)
{
	if (w->credit == 0) {
		pthread_mutex_lock(&w->lock);
		publish_locked(w);
		while (!w->stop && ring_full(w, 0, 0)) {
			w->walker_waits = true;
			pthread_cond_wait(&w->room, &w->lock);
		}
		w->walker_waits = false;
		w->tail = (w->head + w->n) % AHEAD_FILES;
		w->credit = AHEAD_FILES - w->n;
		w->credit_bytes = AHEAD_BYTES - w->ahead_bytes;
		if (w->stop)
			w->credit = 0;
		pthread_mutex_unlock(&w->lock);
		if (!w->credit)
			return NULL;
	}
	return &w->ring[w->tail];
}

/* The walker: the slot from slot_wait() is filled; it goes to the writer
 * with the next batch (PUBLISH_FILES of them). */
static void slot_publish(struct walk *w, struct staged *s)
{
	w->tail = (w->tail + 1) % AHEAD_FILES;
	w->credit--;
	if (s->ahead >= w->credit_bytes)
		w->credit = 0; /* at the byte bound: look again */
	else
		w->credit_bytes -= s->ahead;
	w->fill++;
	w->fill_bytes += s->ahead;
	if (w->fill >= PUBLISH_FILES) {
		pthread_mutex_lock(&w->lock);
		publish_locked(w);
		pthread_mutex_unlock(&w->lock);
	}
}

/* The walker: make slot s (from slot_wait()) a skip record: `path` is not
 * archived, for reason `why` (owned), errno `en` or -1. */
static void stage_skip(struct walk *w, struct staged *s, const char *path,
		       int en, char *why)
{
	s->skip = true;
	s->problem = why;
	s->skip_path = cm_xstrdup(path);
	s->skip_errno = en;
	slot_publish(w, s);
}

/*
 * The walker: the entry just read into slot s (from slot_wait()), renamed,
 * its file opened and read ahead, staged. `problem` is what the disk reader
 * said about it (a warning), or NULL.
 */
static void stage(struct walk *w, struct staged *s, const char *problem)
{
	struct archive_entry *e = s->e;

	rename_entry(w, e);
	if (has_cesu_pair(cm_buf_str(&w->name)) ||
	    has_cesu_pair(archive_entry_symlink(e))) {
		/* the header would store another name (see the top) */
		stage_skip(w, s, cm_buf_str(&w->name), -1,
			   cm_xstrdup("a CESU-8 name (an encoded surrogate "
				      "pair), which the tar writer would "
				      "store changed"));
		return;
	}
	if (archive_entry_filetype(e) == AE_IFSOCK) {
		stage_skip(w, s, cm_buf_str(&w->name), -1,
			   cm_xstrdup("a socket: tar cannot hold one"));
		return;
	}
	if (archive_entry_filetype(e) == AE_IFREG) {
		s->fd = open_file(w, cm_buf_str(&w->rel), e);
		if (s->fd < 0) {
			int en = errno;

			stage_skip(w, s, cm_buf_str(&w->name), en,
				   cm_xasprintf("open: %s", strerror(en)));
			return;
		}
	}
	/* ctime cannot be restored, and atime only says when someone last
	 * read the file (the archive's own read, often): both would cost a
	 * pax header per entry, about 1 KiB before compression */
	seen_from_entry(e, &s->seen);
	archive_entry_unset_ctime(e);
	archive_entry_unset_atime(e);
	s->problem = problem ? cm_xstrdup(problem) : NULL;
	if (s->fd >= 0 && archive_entry_size(e) > 0) {
		uint64_t size = (uint64_t)archive_entry_size(e);

		s->ahead = size < AHEAD_PER_FILE ? size : AHEAD_PER_FILE;
		/* advice only: a failure costs nothing but speed */
		(void)posix_fadvise(s->fd, 0, (off_t)s->ahead,
				    POSIX_FADV_WILLNEED);
	}
	slot_publish(w, s);
}

/* The walker's whole walk; its failure (not the writer's) in *err. */
/* The file the archive is written into (opts->has_exclude). */
static bool is_own_output(const struct arc_source_opts *o,
			  struct archive_entry *e)
{
	return o && o->has_exclude && archive_entry_filetype(e) == AE_IFREG &&
	       archive_entry_dev(e) == o->exclude_dev &&
	       archive_entry_ino64(e) == (la_int64_t)o->exclude_ino;
}

static int walk_all(struct walk *w, struct cm_err *err)
{
	struct arc_tar *t = w->t;
	struct staged *s;
	int rc = 0, r;

	while ((s = slot_wait(w)) != NULL) {
		char problem[512];

		if (arc_source_cancelled(t->opts)) {
			rc = arc_cancel_error(err);
			break;
		}
		if (!s->e && !(s->e = archive_entry_new()))
			abort(); /* out of memory */
		r = archive_read_next_header2(w->disk, s->e);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_RETRY)
			continue;
		if (r == ARCHIVE_FATAL) {
			rc = cm_err_set(err,
					archive_errno(w->disk) > 0
						? archive_errno(w->disk)
						: EIO,
					"%s: %s", w->dir, la_msg(w->disk));
			break;
		}
		problem[0] = '\0';
		if (r != ARCHIVE_OK)
			snprintf(problem, sizeof(problem), "%s",
				 la_msg(w->disk));
		if (r == ARCHIVE_FAILED && !archive_entry_pathname(s->e)) {
			/* nothing to archive: an unreadable directory's
			 * contents, a file that could not be looked at */
			stage_skip(w, s, w->dir, -1, cm_xstrdup(problem));
			continue;
		}
		if (is_own_output(t->opts, s->e)) {
			cm_warn("%s: left out: it is the archive being "
				"written", archive_entry_pathname(s->e));
			continue;
		}
		archive_read_disk_descend(w->disk);
		stage(w, s, problem[0] ? problem : NULL);
	}
	return rc;
}

static void *walker_main(void *arg)
{
	struct walk *w = arg;
	struct cm_err err = { 0 };
	int rc;

	pthread_setname_np(pthread_self(), "vaultfs-walk");
	rc = walk_all(w, &err);
	pthread_mutex_lock(&w->lock);
	publish_locked(w); /* even when stopped: walker_stop() frees them */
	w->walk_done = true;
	w->walk_rc = rc;
	w->walk_err = err;
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* `more` is waited on with a timeout, on the monotonic clock. */
static void cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

/* The writer: give the slots it has written back to the walker. Under
 * w->lock. */
static void give_back_locked(struct walk *w)
{
	w->head = (w->head + w->rd_done) % AHEAD_FILES;
	w->n -= w->rd_done;
	w->ahead_bytes -= w->rd_done_bytes;
	w->rd_done = 0;
	w->rd_done_bytes = 0;
	if (w->walker_waits && !ring_full(w, WAKE_FILES, WAKE_BYTES))
		pthread_cond_signal(&w->room);
}

/*
 * The writer: the next staged slot into *sp, written in place and then
 * handed to slot_done(). The lock is taken once per batch: when the slots
 * seen ready are used up, or TAKE_FILES are done. 1: one came; 0: the walk
 * is over and all written; < 0: the walk failed (its error in *err).
 */
static int next_staged(struct walk *w, struct staged **sp, struct cm_err *err)
{
	int rc = 1;

	bool starved = w->rd_ready == 0;

	if (!starved && w->rd_done < TAKE_FILES)
		goto take;
	pthread_mutex_lock(&w->lock);
	give_back_locked(w);
	/* what is left in the ring now is all unread; wait for a batch only
	 * when there was nothing left to write */
	while (starved && !w->walk_done && w->n < WAKE_FILES &&
	       w->ahead_bytes < WAKE_BYTES) {
		struct timespec until;
		int wr;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += WAKE_WAIT_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		w->writer_waits = true;
		wr = pthread_cond_timedwait(&w->more, &w->lock, &until);
		w->writer_waits = false;
		if (wr == ETIMEDOUT && w->n)
			break; /* a slow walk: take what there is */
	}
	w->rd_ready = w->n;
	if (!w->n) {
		rc = w->walk_rc;
		if (rc && err)
			*err = w->walk_err;
	}
	pthread_mutex_unlock(&w->lock);
	if (!rc)
		return 0;
	if (rc < 0)
		return rc;
take:
	*sp = &w->ring[(w->head + w->rd_done) % AHEAD_FILES];
	w->rd_ready--;
	return 1;
}

/* The writer is done with slot s (from next_staged()). */
static void slot_done(struct walk *w, struct staged *s)
{
	w->rd_done++;
	w->rd_done_bytes += s->ahead;
	slot_clear(s);
}

/* Stop the walker (if it still runs) and free every slot. */
static void walker_stop(struct walk *w)
{
	if (w->walker_running) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_signal(&w->room);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->walker, NULL);
		w->walker_running = false;
	}
	for (unsigned i = 0; i < AHEAD_FILES; i++) {
		slot_clear(&w->ring[i]);
		archive_entry_free(w->ring[i].e);
		w->ring[i].e = NULL;
	}
	w->n = 0;
}

/* Roughly the bytes a walk will read: data of regular files (allocated
 * blocks for sparse ones), below `fd`, which is consumed. Gives up (with
 * what it has) when *stop is set. */
static uint64_t estimate(int fd, dev_t dev, bool one_fs, int depth,
			 const atomic_bool *stop)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	uint64_t sum = 0;

	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		uint64_t alloc;

		if (atomic_load_explicit(stop, memory_order_relaxed))
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISREG(st.st_mode)) {
			uint64_t size = (uint64_t)st.st_size;

			alloc = (uint64_t)st.st_blocks * 512;
			sum += alloc < size ? alloc : size;
		} else if (S_ISDIR(st.st_mode) && depth < ESTIMATE_DEPTH &&
			   (!one_fs || st.st_dev == dev)) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC |
						 O_NOFOLLOW);

			if (sub >= 0)
				sum += estimate(sub, dev, one_fs, depth + 1,
						stop);
		}
	}
	closedir(d);
	return sum;
}

/*
 * The estimate runs on its own thread, beside the walk: on a cold tree its
 * stats are a serial round trip each (1.5 s for 70,000 files), and the
 * compressors would idle through them. Walking ahead of the writer, it
 * also brings the inodes in for it. Its sum joins bytes_total when done.
 */
struct estimator {
	pthread_t thread;
	bool running;
	int fd;            /* owned by the thread */
	dev_t dev;
	bool one_fs;
	atomic_bool stop;  /* the walk ended first */
	atomic_bool done;  /* sum is final */
	uint64_t sum;
};

static void *estimator_main(void *arg)
{
	struct estimator *es = arg;

	pthread_setname_np(pthread_self(), "vaultfs-estim");
	es->sum = estimate(es->fd, es->dev, es->one_fs, 0, &es->stop);
	atomic_store(&es->done, true);
	return NULL;
}

static void estimator_start(struct estimator *es, int rootfd, dev_t dev,
			    bool one_fs)
{
	es->fd = dup(rootfd);
	es->dev = dev;
	es->one_fs = one_fs;
	if (es->fd < 0)
		return; /* no estimate: progress without a total */
	if (pthread_create(&es->thread, NULL, estimator_main, es) != 0) {
		close(es->fd);
		return;
	}
	es->running = true;
}

/* Add the estimate to the total once it is done; true when it was. With
 * `wait`, stop it early and wait for the thread. */
static bool estimator_fold(struct estimator *es, struct arc_stats *stats,
			   bool wait)
{
	if (!es->running)
		return false;
	if (wait)
		atomic_store(&es->stop, true);
	else if (!atomic_load(&es->done))
		return false;
	pthread_join(es->thread, NULL);
	es->running = false;
	stats->bytes_total += es->sum;
	return true;
}

int arc_tar_add_tree(struct arc_tar *t, const char *dir, const char *prefix,
		     struct cm_err *err)
{
	struct estimator es = { .fd = -1 };
	struct walk w = { .t = t, .rootfd = -1 };
	char *root = cm_xstrdup(dir);
	size_t n = strlen(root);
	struct stat st;
	int rc = 0, flags = 0;

	/* "dir/" walks as "dir": entries are "dir/x", never "dir//x" */
	while (n > 1 && root[n - 1] == '/')
		root[--n] = '\0';
	w.dir = root;
	w.dirlen = n;
	w.prefix = prefix ? prefix : "./";
	cm_buf_init(&w.name, 0);
	cm_buf_init(&w.rel, 0);
	pthread_mutex_init(&w.lock, NULL);
	cond_init_monotonic(&w.more);
	pthread_cond_init(&w.room, NULL);
	for (unsigned i = 0; i < AHEAD_FILES; i++)
		w.ring[i].fd = -1;
	if (t->wrc || t->finished) {
		rc = cm_err_set(err, EINVAL, "tar: already finished or failed");
		goto out;
	}
	w.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.rootfd < 0 || fstat(w.rootfd, &st) != 0) {
		rc = cm_err_set(err, errno, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (!t->opts || !t->opts->no_estimate)
		estimator_start(&es, w.rootfd, st.st_dev,
				t->opts && t->opts->one_file_system);
	arc_progress(t->opts, t->stats, true);

	w.disk = archive_read_disk_new();
	if (!w.disk)
		abort(); /* out of memory */
	archive_read_disk_set_symlink_hybrid(w.disk);
	if (t->opts && t->opts->one_file_system)
		flags |= ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS;
	/* no RESTORE_ATIME (it writes), no HONOR_NODUMP (a backup takes
	 * everything); xattrs, ACLs and file flags are read; sparse maps by
	 * us, from the file we open anyway (sparse_map()) */
	flags |= ARCHIVE_READDISK_NO_SPARSE;
	archive_read_disk_set_behavior(w.disk, flags);
	if (archive_read_disk_open(w.disk, root) != ARCHIVE_OK) {
		rc = cm_err_set(err, EIO, "%s: %s", dir,
				la_msg(w.disk));
		goto out;
	}
	if (pthread_create(&w.walker, NULL, walker_main, &w) != 0) {
		rc = cm_err_set(err, EAGAIN, "%s: cannot start the walk", dir);
		goto out;
	}
	w.walker_running = true;
	for (;;) {
		struct staged *s;

		rc = next_staged(&w, &s, err);
		if (rc <= 0)
			break;
		rc = arc_source_cancelled(t->opts) ? arc_cancel_error(err)
						   : emit(&w, s, err);
		slot_done(&w, s);
		if (rc == 0)
			rc = arc_stats_check(t->stats, err); /* --strict */
		if (rc)
			break;
		arc_progress(t->opts, t->stats,
			     estimator_fold(&es, t->stats, false));
	}
	if (rc == 0) {
		dirs_next(&w, NULL, NULL);
		rc = arc_stats_check(t->stats, err);
	}
	if (rc == 0) {
		/* a walk that outran its estimate is done: its total is
		 * known */
		estimator_fold(&es, t->stats, true);
		arc_progress(t->opts, t->stats, true);
	}
out:
	walker_stop(&w);
	dirs_free(&w);
	estimator_fold(&es, t->stats, true);
	if (w.disk)
		archive_read_free(w.disk);
	if (w.rootfd >= 0)
		close(w.rootfd);
	pthread_cond_destroy(&w.room);
	pthread_cond_destroy(&w.more);
	pthread_mutex_destroy(&w.lock);
	cm_buf_release(&w.name);
	cm_buf_release(&w.rel);
	free(root);
	return rc;
}

int arc_source_tree(const char *dir, struct arc_filter *out,
		    const struct arc_source_opts *opts, struct arc_stats *stats,
		    struct cm_err *err)
{
	struct arc_tar *t;
	int rc;

	rc = arc_tar_new(out, opts, stats, &t, err);
	if (rc)
		return rc;
	rc = arc_tar_add_tree(t, dir, NULL, err);
	if (rc == 0)
		rc = arc_tar_finish(t, err);
	arc_tar_free(t);
	return rc;
}
