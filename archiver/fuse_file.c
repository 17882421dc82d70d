/*
 * fuse_file.c - see fuse_file.h: one file over FUSE. With fs/fuse_ll.c,
 * the only file that includes FUSE headers.
 *
 * The mount is made with mount(2) on a /dev/fuse descriptor opened here
 * and handed to libfuse as "/dev/fd/N" (libfuse's way for a mount made by
 * the caller), so the caller decides where the mount is recorded, and
 * libfuse only decodes requests and encodes replies.
 *
 * The server thread polls the (non-blocking) descriptor and an eventfd
 * that stops it, and answers each request at once. When the mount goes
 * (unmounted, or its connection aborted) reads of the descriptor fail
 * with ENODEV and the thread ends by itself.
 */
#define FUSE_USE_VERSION 314

#include "fuse_file.h"

#include "fault.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

#define ROOT_INO 1
#define FILE_INO 2
#define ATTR_TIMEOUT 86400.0 /* nothing ever changes */

struct arc_fuse_file {
	char *mnt, *name, *path;
	uint64_t size;
	arc_fuse_read_fn read;
	arc_fuse_write_fn write;
	void *ctx;
	int dev_fd;   /* /dev/fuse; the session closes it */
	int stop_fd;  /* eventfd: stops the server */
	bool mounted;
	struct fuse_session *se;
	pthread_t thread;
	bool have_thread;
	char *buf;    /* the server's: read replies */
	size_t bufcap;

	/* arc_fuse_file_store's queue and thread */
	pthread_mutex_t store_lock;
	pthread_cond_t store_cond;
	struct store_item *stores, **stores_tail;
	size_t store_bytes;     /* queued, not stored yet */
	uint64_t stored, store_dropped, store_failed; /* for the log */
	bool store_stop;
	pthread_t store_thread;
	bool have_store_thread;
};

struct store_item {
	struct store_item *next;
	uint64_t off;
	size_t n;
	char data[];
};

static struct arc_fuse_file *FF(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void stat_of(const struct arc_fuse_file *f, fuse_ino_t ino,
		    struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == ROOT_INO) {
		st->st_mode = S_IFDIR | (f->write ? 0700 : 0500);
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (f->write ? 0600 : 0400);
		st->st_nlink = 1;
		st->st_size = (off_t)f->size;
		st->st_blksize = 1 << 17;
		st->st_blocks = (blkcnt_t)((f->size + 511) / 512);
	}
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != ROOT_INO || strcmp(name, FF(req)->name) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ATTR_TIMEOUT;
	stat_of(FF(req), FILE_INO, &e.attr);
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
	stat_of(FF(req), ino, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, ino == ROOT_INO ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !FF(req)->write) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1; /* only the kernel's own writes change it */
	/* No FLUSH on close: a process killed with the file open closes it
	 * while exiting, after its server thread is gone and before the
	 * kernel lets go of /dev/fuse; a FLUSH then waits for ever (the
	 * process stays a zombie, its mount alive). Nothing is ever written,
	 * or only scratch (an overlay), so there is nothing to flush; .flush
	 * is left out too, so a kernel without FOPEN_NOFLUSH stops asking
	 * after the first ENOSYS. */
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

/* Whether thread `tid` is one of this process's (the FUSE request names
 * the thread that asked; a loop device's reads come from a kernel
 * worker, or 0 from outside our pid namespace). */
static bool own_thread(pid_t tid)
{
	char path[48];

	if (tid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/self/task/%ld", (long)tid);
	return access(path, F_OK) == 0;
}

/*
 * Fault site fuse_file.hang: a read asked by someone other than this
 * process (a loop device's worker) is never answered, as by a server that
 * died with the request in hand; the server thread stops for good (only
 * kill -9 ends the process). How a test catches the process in the one
 * state a crash can leave it stuck in: another thread waiting, unkillably,
 * for a read of a loop device that only this process can answer.
 */
static void hang_if_asked(const struct arc_fuse_file *f, fuse_req_t req,
			  uint64_t off)
{
	if (own_thread(fuse_req_ctx(req)->pid) || !cm_fault("fuse_file.hang"))
		return;
	cm_warn("fuse file: %s: not answering the read at %" PRIu64
		" (fault fuse_file.hang)", f->path, off);
	for (;;)
		pause();
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct arc_fuse_file *f = FF(req);
	uint64_t o = (uint64_t)off;
	int rc;

	(void)ino;
	(void)fi;
	hang_if_asked(f, req, o);
	if (o >= f->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > f->size - o)
		size = (size_t)(f->size - o);
	if (size > f->bufcap) {
		free(f->buf);
		f->buf = cm_xmalloc(size);
		f->bufcap = size;
	}
	rc = f->read(f->ctx, f->buf, size, o);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_buf(req, f->buf, size);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct arc_fuse_file *f = FF(req);
	int rc;

	(void)ino;
	(void)fi;
	if (!f->write) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (size == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	if ((uint64_t)off > f->size || size > f->size - (uint64_t)off) {
		fuse_reply_err(req, ENOSPC); /* the file does not grow */
		return;
	}
	rc = f->write(f->ctx, buf, size, (uint64_t)off);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_write(req, size);
}

/* Times and modes are not kept; the size never changes. */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct arc_fuse_file *f = FF(req);

	if (!f->write) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) &&
	    (uint64_t)attr->st_size != f->size) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ll_getattr(req, ino, fi);
}

/* Nothing to make durable: a writable file is scratch (an overlay). */
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
    .open = ll_open,
    .setattr = ll_setattr,
    .read = ll_read,
    .write = ll_write,
    .release = ll_ok,
    .fsync = ll_fsync,
};

static void *serve(void *arg)
{
	struct arc_fuse_file *f = arg;
	struct fuse_buf fbuf;
	struct pollfd pf[2];

	if (f->write && prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0)
		cm_debug("fuse file: PR_SET_IO_FLUSHER: %s", strerror(errno));
	memset(&fbuf, 0, sizeof(fbuf));
	pf[0].fd = f->dev_fd;
	pf[0].events = POLLIN;
	pf[1].fd = f->stop_fd;
	pf[1].events = POLLIN;
	while (!fuse_session_exited(f->se)) {
		int rc;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		rc = fuse_session_receive_buf(f->se, &fbuf);
		if (rc == 0)
			break; /* unmounted, or the connection aborted */
		if (rc < 0) {
			/* a request left unanswered would hang its reader */
			if (rc != -EINTR && rc != -EAGAIN && rc != -ENOENT)
				poll(NULL, 0, 100);
			continue;
		}
		fuse_session_process_buf(f->se, &fbuf);
	}
	free(fbuf.mem);
	return NULL;
}

/* The store thread: one FUSE_NOTIFY_STORE at a time, in order. */
static void *store_main(void *arg)
{
	struct arc_fuse_file *f = arg;

	pthread_mutex_lock(&f->store_lock);
	for (;;) {
		struct store_item *it;
		int rc;

		while (!f->store_stop && !f->stores)
			pthread_cond_wait(&f->store_cond, &f->store_lock);
		if (f->store_stop)
			break;
		it = f->stores;
		f->stores = it->next;
		if (!f->stores)
			f->stores_tail = &f->stores;
		pthread_mutex_unlock(&f->store_lock);
		{
			struct fuse_bufvec bv = FUSE_BUFVEC_INIT(it->n);

			bv.buf[0].mem = it->data;
			/* fault site fuse_file.store: refused, as by a kernel
			 * without FUSE_NOTIFY_STORE */
			rc = cm_fault("fuse_file.store")
				     ? -ENOSYS
				     : fuse_lowlevel_notify_store(
					       f->se, FILE_INO, it->off, &bv, 0);
		}
		if (rc)
			cm_debug("fuse file: %s: storing %zu bytes at %" PRIu64
				 ": %s", f->path, it->n, it->off,
				 strerror(-rc));
		pthread_mutex_lock(&f->store_lock);
		if (rc)
			f->store_failed++;
		else
			f->stored++;
		f->store_bytes -= it->n;
		free(it);
	}
	pthread_mutex_unlock(&f->store_lock);
	return NULL;
}

void arc_fuse_file_store(struct arc_fuse_file *f, uint64_t off,
			 const void *buf, size_t n)
{
	struct store_item *it;

	if (!f || f->write || !n || off >= f->size || n > f->size - off)
		return;
	pthread_mutex_lock(&f->store_lock);
	if (!f->have_store_thread || f->store_stop ||
	    f->store_bytes + n > ARC_FUSE_STORE_MAX) {
		f->store_dropped++;
		pthread_mutex_unlock(&f->store_lock);
		return;
	}
	f->store_bytes += n;
	pthread_mutex_unlock(&f->store_lock);
	/* copied outside the lock: n may be a 512 KiB block */
	it = cm_xmalloc(sizeof(*it) + n);
	it->next = NULL;
	it->off = off;
	it->n = n;
	memcpy(it->data, buf, n);
	pthread_mutex_lock(&f->store_lock);
	*f->stores_tail = it;
	f->stores_tail = &it->next;
	pthread_cond_signal(&f->store_cond);
	pthread_mutex_unlock(&f->store_lock);
}

/* Stop the store thread and drop what it has not stored. */
static void store_stop(struct arc_fuse_file *f)
{
	struct store_item *it;

	pthread_mutex_lock(&f->store_lock);
	f->store_stop = true;
	pthread_cond_broadcast(&f->store_cond);
	pthread_mutex_unlock(&f->store_lock);
	if (f->have_store_thread)
		pthread_join(f->store_thread, NULL);
	if (f->have_store_thread && (f->stored || f->store_dropped))
		cm_info("fuse file: %s: %" PRIu64 " pieces handed to the page "
			"cache, %" PRIu64 " dropped (queue full), %" PRIu64
			" refused", f->path, f->stored, f->store_dropped,
			f->store_failed);
	f->have_store_thread = false;
	while ((it = f->stores)) {
		f->stores = it->next;
		free(it);
	}
	f->stores_tail = &f->stores;
}

static int start(struct arc_fuse_file *f, const char *fsname,
		 struct cm_err *err)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC |
				    (f->write ? 0 : MS_RDONLY);
	char *argv[] = { (char *)fsname, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	char opts[128], fdname[32], type[64];
	sigset_t all, old;
	int rc;

	f->dev_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (f->dev_fd < 0)
		return cm_err_set(err, errno, "/dev/fuse: %s",
				  strerror(errno));
	f->se = fuse_session_new(&args, &ops, sizeof(ops), f);
	fuse_opt_free_args(&args);
	if (!f->se)
		return cm_err_set(err, ENOMEM, "cannot make a FUSE session");
	snprintf(fdname, sizeof(fdname), "/dev/fd/%d", f->dev_fd);
	if (fuse_session_mount(f->se, fdname) != 0)
		return cm_err_set(err, EIO, "FUSE session: cannot take %s",
				  fdname);
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,"
		 "group_id=0,default_permissions", f->dev_fd);
	snprintf(type, sizeof(type), "fuse.%s", fsname);
	if (mount(fsname, f->mnt, type, flags, opts) != 0)
		return cm_err_set(err, errno, "mount FUSE on %s: %s", f->mnt,
				  strerror(errno));
	f->mounted = true;
	f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->stop_fd < 0)
		return cm_err_set(err, errno, "eventfd: %s", strerror(errno));
	/* signals are for the caller's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&f->thread, NULL, serve, f);
	if (rc == 0) {
		f->have_thread = true;
		/* a read-only file's pages may be handed to the kernel */
		if (!f->write &&
		    pthread_create(&f->store_thread, NULL, store_main, f) == 0)
			f->have_store_thread = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return cm_err_set(err, rc, "cannot start the FUSE server: %s",
				  strerror(rc));
	return 0;
}

int arc_fuse_file_mount(const char *mnt, const struct arc_fuse_file_opts *o,
			struct arc_fuse_file **out, struct cm_err *err)
{
	struct arc_fuse_file *f = cm_xcalloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	f->mnt = cm_xstrdup(mnt);
	f->name = cm_xstrdup(o->name);
	f->path = cm_xasprintf("%s/%s", mnt, o->name);
	f->size = o->size;
	f->read = o->read;
	f->write = o->write;
	f->ctx = o->ctx;
	f->dev_fd = f->stop_fd = -1;
	pthread_mutex_init(&f->store_lock, NULL);
	pthread_cond_init(&f->store_cond, NULL);
	f->stores_tail = &f->stores;
	rc = start(f, o->fsname, err);
	if (rc) {
		cm_err_prefix(err, "serving %s", f->path);
		arc_fuse_file_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

const char *arc_fuse_file_path(const struct arc_fuse_file *f)
{
	return f->path;
}

void arc_fuse_file_free(struct arc_fuse_file *f)
{
	if (!f)
		return;
	/* while the server still answers: a store may wait for a read's
	 * page lock, which the server's answer releases */
	store_stop(f);
	/* while the server still answers: an unmount may need it */
	for (int i = 0; f->mounted && umount2(f->mnt, 0) != 0; i++) {
		if (errno == EINVAL || errno == ENOENT)
			break;
		if (errno != EBUSY || i == 20) {
			cm_warn("unmount %s: %s; detaching lazily", f->mnt,
				strerror(errno));
			umount2(f->mnt, MNT_DETACH);
			break;
		}
		cm_sleep_ms(100);
	}
	if (f->have_thread) {
		uint64_t one = 1;

		if (write(f->stop_fd, &one, sizeof(one)) < 0)
			cm_debug("fuse file: eventfd: %s", strerror(errno));
		pthread_join(f->thread, NULL);
	}
	/* closes /dev/fuse: a connection still up is aborted */
	if (f->se)
		fuse_session_destroy(f->se);
	else if (f->dev_fd >= 0)
		close(f->dev_fd);
	if (f->stop_fd >= 0)
		close(f->stop_fd);
	pthread_cond_destroy(&f->store_cond);
	pthread_mutex_destroy(&f->store_lock);
	free(f->buf);
	free(f->mnt);
	free(f->name);
	free(f->path);
	free(f);
}

/* mountinfo's octal escapes (\040 for ' ') undone in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++, o++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
			*o = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				    (s[3] - '0'));
			s += 3;
		} else {
			*o = *s;
		}
	}
	*o = '\0';
}

/* Each mount in /proc/self/mountinfo, with its mount point (unescaped),
 * FUSE connection number (the device's minor) and file system type, until
 * `fn` returns nonzero. No system call on a mount itself, which may hang. */
static void each_mount(int (*fn)(void *ctx, const char *mp, long minor,
				 const char *type),
		       void *ctx)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *dev, *mp, *type;
		unsigned maj, min;

		/* id parent major:minor root MOUNT-POINT ... - TYPE SOURCE */
		if (!strtok_r(line, " ", &save) || !strtok_r(NULL, " ", &save))
			continue;
		dev = strtok_r(NULL, " ", &save);
		if (!dev || !strtok_r(NULL, " ", &save) ||
		    !(mp = strtok_r(NULL, " ", &save)) ||
		    sscanf(dev, "%u:%u", &maj, &min) != 2)
			continue;
		while ((type = strtok_r(NULL, " ", &save)) &&
		       strcmp(type, "-") != 0)
			;
		type = type ? strtok_r(NULL, " ", &save) : NULL;
		unescape(mp);
		if (fn(ctx, mp, (long)min, type ? type : ""))
			break;
	}
	free(line);
	fclose(f);
}

struct minor_of {
	const char *path;
	long minor;
};

static int match_path(void *ctx, const char *mp, long minor,
		      const char *type)
{
	struct minor_of *m = ctx;

	(void)type;
	if (strcmp(mp, m->path) == 0)
		m->minor = minor; /* the last one mounted there */
	return 0;
}

/* The minor device number of the mount on `path` (FUSE's connection
 * number). -1: nothing mounted there. */
static long mount_minor(const char *path)
{
	struct minor_of m = { path, -1 };

	each_mount(match_path, &m);
	return m.minor;
}

/*
 * A FUSE mount whose server was a thread of a process killed while other
 * threads of it waited on the mount (a loop device's reads under a
 * filesystem, uninterruptible) is not dead: the process cannot finish
 * exiting, so /dev/fuse stays open and the waits never end. Aborting the
 * connection (fusectl, mounted here if it is not) ends them.
 */
static void abort_connection(long minor)
{
	const char *ctl = "/sys/fs/fuse/connections";
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/%ld/abort", ctl, minor);
	if (access(path, F_OK) != 0 &&
	    mount("fusectl", ctl, "fusectl", 0, NULL) != 0)
		cm_debug("mount fusectl on %s: %s", ctl, strerror(errno));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		cm_debug("%s: %s", path, strerror(errno));
		return;
	}
	if (write(fd, "1", 1) != 1)
		cm_debug("%s: %s", path, strerror(errno));
	else
		cm_info("aborted FUSE connection %ld (left by an earlier run)",
			minor);
	close(fd);
}

int arc_fuse_unmount_stale(const char *mnt, struct cm_err *err)
{
	long minor;

	for (int i = 0; i < 8 && (minor = mount_minor(mnt)) >= 0; i++) {
		abort_connection(minor);
		if (umount2(mnt, MNT_DETACH) != 0 && errno != EINVAL &&
		    errno != ENOENT)
			return cm_err_set(err, errno, "umount %s: %s", mnt,
					  strerror(errno));
		cm_info("unmounted %s (left by an earlier run)", mnt);
	}
	return 0;
}

struct under {
	const char *dir;
	size_t len;
	unsigned n;
};

static int abort_if_under(void *ctx, const char *mp, long minor,
			  const char *type)
{
	struct under *u = ctx;

	if (strncmp(type, "fuse.vaultfs-", 13) == 0 &&
	    strncmp(mp, u->dir, u->len) == 0 && mp[u->len] == '/') {
		abort_connection(minor);
		u->n++;
	}
	return 0;
}

unsigned arc_fuse_abort_under(const char *dir)
{
	struct under u = { dir, strlen(dir), 0 };

	while (u.len > 1 && dir[u.len - 1] == '/')
		u.len--;
	each_mount(abort_if_under, &u);
	return u.n;
}
