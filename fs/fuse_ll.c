/*
 * fuse_ll.c - the view on libfuse's low-level API: the one file in vaultfs
 * that includes FUSE headers. It translates requests into view calls
 * (fs/view.h) and their results into replies; the view decides what the
 * files are and say.
 *
 * The contract, as libfuse's passthrough_ll.c and notify_inval_inode.c
 * show it:
 *   - every request gets exactly one reply (an open/create/opendir whose
 *     reply fails - the request was interrupted - releases its handle);
 *   - arguments kept past the handler (names, write data) are copied;
 *   - a lookup, create, mkdir or readdirplus entry counts one kernel
 *     reference on the node, which forget gives back (view_forget);
 *   - the kernel is told to invalidate what changed from a thread of our
 *     own, never from a request and never while holding a lock a related
 *     request needs.
 *
 * Threads:
 *   - libfuse's multi-threaded loop calls the handlers. A handler that may
 *     wait on the network (view_may_block: archive nodes of an S3 store)
 *     copies its arguments into a task and hands it to ->pool (core/
 *     queue.h), whose workers run it and reply; the others run at once.
 *     A write is first offered to view_write_nowait, which takes it at
 *     once when that cannot wait (most writes of a stream: a copy into
 *     the upload's part buffer), saving the task's copy and a hand-off.
 *   - a create or open that starts an archive writer needs its first part
 *     buffers from the view's memory budget (view.memoryLimit), and the
 *     first read of an archive reader its first window (mem_need). When
 *     they are not there, the request is parked, holding no thread: its
 *     task waits in the budget's queue (view_mem_queue) and goes to ->pool
 *     when memory comes back (mem_ready, on the thread that gave it). So
 *     any number of writers and readers wait on the 32 workers. An
 *     interrupted one (FUSE_INTERRUPT: its process was killed) leaves the
 *     queue and is answered EINTR (mem_interrupt); at unmount the queue is
 *     answered ESHUTDOWN (view_stop_waits). Reads are synchronous (no
 *     FUSE_CAP_ASYNC_READ, see ll_init) so that a parked read is its
 *     reader's own request, which the kernel interrupts when it is killed.
 *   - the notifier thread takes the view's invalidations off ->inval and
 *     passes them to the kernel (fuse_lowlevel_notify_inval_*), while the
 *     session is live.
 *   - view_fuse_exit (a signal thread) asks the loop to end: it sets the
 *     session's exit flag and interrupts the loop's thread with SIGUSR2
 *     until the loop has returned.
 *
 * Locks: ->lock guards the invalidation list and the notifier's flags; it
 * is a leaf, and is never held while talking to the kernel. ->reply_lock
 * orders the workers' replies (read-held, only around the reply, never
 * while the view works) against the channel's close in
 * view_fuse_unmount (write-held).
 */
#define FUSE_USE_VERSION 314

#include "view_fuse.h"

#include "log.h"
#include "mem.h"
#include "queue.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

struct inval {
	struct inval *next;
	bool entry;   /* inval_entry (else inval_inode) */
	uint64_t ino; /* the inode, or the entry's directory */
	char name[];  /* the entry's name */
};

struct view_fuse {
	struct view_fuse_opts opts;
	char *mountpoint;
	struct view *v;
	struct fuse_session *se;
	bool mounted;
	struct cm_pool *pool;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inval *head, *tail; /* protected by ->lock */
	bool stop;		   /* protected by ->lock */
	bool live;		   /* protected by ->lock: notify */
	pthread_t notifier;
	bool have_notifier;

	atomic_bool ready_done;
	atomic_bool running; /* the loop runs */
	pthread_t loop_thread;

	/* Read-held by a worker while it replies, write-held while the
	 * channel closes: a reply after the close finds no descriptor
	 * (EBADF) rather than one the number was reused for. */
	pthread_rwlock_t reply_lock;
};

/* ---- replies ----------------------------------------------------------- */

static void to_stat(const struct view_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_rdev = a->rdev;
	st->st_atim.tv_sec = a->mtime;
	st->st_atim.tv_nsec = a->mtime_nsec;
	st->st_mtim = st->st_atim;
	st->st_ctim = st->st_atim;
}

static void to_entry(const struct view_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 0; /* inode numbers are never reused */
	to_stat(a, &e->attr);
	e->attr_timeout = a->attr_timeout;
	e->entry_timeout = a->entry_timeout;
}

static void reply_err(fuse_req_t req, int rc, const struct cm_err *err)
{
	if (rc < 0 && err && err->msg[0])
		cm_debug("view: %s", err->msg);
	fuse_reply_err(req, rc < 0 ? -rc : rc);
}

/* ---- tasks: one request, run now or on a worker ------------------------ */

enum op {
	OP_LOOKUP,
	OP_OPENDIR,
	OP_READDIR,
	OP_OPEN,
	OP_CREATE,
	OP_READ,
	OP_WRITE,
	OP_FLUSH,
	OP_FSYNC,
	OP_RELEASE,
	OP_UNLINK,
	OP_MKDIR,
	OP_RMDIR,
	OP_SETATTR,
	OP_GETATTR,
};

struct task {
	struct view_fuse *vf;
	enum op op;
	fuse_req_t req;
	fuse_ino_t ino;
	struct fuse_file_info fi;
	bool has_fi;
	const char *name;
	const char *data;
	size_t size;
	off_t off;
	mode_t mode;
	int flags;
	unsigned what;
	uint64_t setsize;
	bool copied; /* name and data are the task's own */
	/* a parked request's (see the top): the memory it waits for, and
	 * has once mem is set (the view's from view_*_mem on) */
	struct cm_budget_waiter w;
	uint64_t mem;
	atomic_bool interrupted;
};

static struct view_file *FH(const struct fuse_file_info *fi)
{
	return (struct view_file *)(uintptr_t)fi->fh;
}

static void set_open(struct fuse_file_info *fi, struct view_file *f,
		     const struct view_open_out *oo)
{
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->direct_io = oo->direct_io;
	fi->keep_cache = oo->keep_cache;
	fi->nonseekable = oo->nonseekable;
}

static size_t fill_dir(struct view *v, fuse_req_t req, fuse_ino_t ino,
		       struct view_dir *d, char *buf, size_t size, off_t off,
		       bool plus);

static void run(struct task *t)
{
	struct view *v = t->vf->v;
	struct fuse_entry_param e;
	struct view_open_out oo;
	struct view_attr a;
	struct view_file *f = NULL;
	struct view_dir *d = NULL;
	struct cm_err err;
	struct stat st;
	bool cacheable = false, undo = false;
	size_t got = 0;
	char *buf = NULL;
	int rc = 0;

	cm_err_clear(&err);
	memset(&a, 0, sizeof(a));
	/* the operation: it may wait on the network */
	switch (t->op) {
	case OP_LOOKUP:
		rc = view_lookup(v, t->ino, t->name, &a, &err);
		break;
	case OP_GETATTR:
		rc = view_getattr(v, t->ino, &a, &err);
		break;
	case OP_OPENDIR:
		rc = view_opendir(v, t->ino, &d, &cacheable, &err);
		break;
	case OP_READDIR:
		d = (struct view_dir *)(uintptr_t)t->fi.fh;
		rc = view_dir_seek(v, d, (uint64_t)t->off, &err);
		if (rc)
			break;
		buf = cm_xcalloc(1, t->size ? t->size : 1);
		got = fill_dir(v, t->req, t->ino, d, buf, t->size, t->off,
			       t->what != 0);
		break;
	case OP_OPEN:
		rc = view_open_mem(v, t->ino, t->fi.flags, t->mem, &f, &oo,
				   &err);
		break;
	case OP_CREATE:
		rc = view_create_mem(v, t->ino, t->name, t->mode, t->fi.flags,
				     t->mem, &f, &a, &oo, &err);
		break;
	case OP_READ:
		buf = cm_xmalloc(t->size ? t->size : 1);
		rc = view_read_mem(v, FH(&t->fi), (uint64_t)t->off, buf,
				   t->size, t->mem, &got, &err);
		break;
	case OP_WRITE:
		rc = view_write(v, FH(&t->fi), (uint64_t)t->off, t->data,
				t->size, &err);
		break;
	case OP_FLUSH:
		rc = view_flush(v, FH(&t->fi), &err);
		break;
	case OP_FSYNC:
		rc = view_fsync(v, FH(&t->fi), &err);
		break;
	case OP_RELEASE:
		view_release(v, FH(&t->fi));
		break;
	case OP_UNLINK:
		rc = view_unlink(v, t->ino, t->name, &err);
		break;
	case OP_RMDIR:
		rc = view_rmdir(v, t->ino, t->name, &err);
		break;
	case OP_MKDIR:
		rc = view_mkdir(v, t->ino, t->name, &a, &err);
		break;
	case OP_SETATTR:
		rc = view_setattr(v, t->ino, t->has_fi ? FH(&t->fi) : NULL,
				  t->what, t->setsize, &a, &err);
		break;
	}

	/* the answer, ordered against the channel's close (->reply_lock) */
	pthread_rwlock_rdlock(&t->vf->reply_lock);
	if (t->op == OP_LOOKUP && rc == -ENOENT && a.entry_timeout > 0) {
		/* a negative entry the kernel may keep */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = a.entry_timeout;
		fuse_reply_entry(t->req, &e);
	} else if (rc) {
		reply_err(t->req, rc, &err);
	} else {
		switch (t->op) {
		case OP_LOOKUP:
		case OP_MKDIR:
			to_entry(&a, &e);
			undo = fuse_reply_entry(t->req, &e) == -ENOENT;
			break;
		case OP_GETATTR:
		case OP_SETATTR:
			to_stat(&a, &st);
			fuse_reply_attr(t->req, &st, a.attr_timeout);
			break;
		case OP_OPENDIR:
			t->fi.fh = (uint64_t)(uintptr_t)d;
			t->fi.cache_readdir = cacheable;
			t->fi.keep_cache = cacheable;
			undo = fuse_reply_open(t->req, &t->fi) == -ENOENT;
			break;
		case OP_OPEN:
			set_open(&t->fi, f, &oo);
			undo = fuse_reply_open(t->req, &t->fi) == -ENOENT;
			break;
		case OP_CREATE:
			set_open(&t->fi, f, &oo);
			to_entry(&a, &e);
			undo = fuse_reply_create(t->req, &e, &t->fi) == -ENOENT;
			break;
		case OP_READ:
		case OP_READDIR:
			fuse_reply_buf(t->req, buf, got);
			break;
		case OP_WRITE:
			fuse_reply_write(t->req, t->size);
			break;
		default:
			fuse_reply_err(t->req, 0);
			break;
		}
	}
	pthread_rwlock_unlock(&t->vf->reply_lock);

	/* interrupted: what the kernel did not get is given back */
	if (undo && (t->op == OP_OPEN || t->op == OP_CREATE))
		view_release(v, f);
	if (undo && t->op == OP_OPENDIR)
		view_releasedir(v, d);
	if (undo &&
	    (t->op == OP_LOOKUP || t->op == OP_MKDIR || t->op == OP_CREATE))
		view_forget(v, a.ino, 1);
	free(buf);
}

static void task_free(struct task *t)
{
	if (t->copied) {
		free((char *)t->name);
		free((char *)t->data);
	}
	free(t);
}

static void task_run(void *arg)
{
	struct task *t = arg;

	run(t);
	task_free(t);
}

/* ---- parked requests: waiting for memory without a thread -------------- */

/* An answer that is not the view's, ordered against the channel's close. */
static void answer_err(struct task *t, int e)
{
	pthread_rwlock_rdlock(&t->vf->reply_lock);
	fuse_reply_err(t->req, e);
	pthread_rwlock_unlock(&t->vf->reply_lock);
}

/* A parked task whose memory came: on a worker now. Once the interrupt
 * callback is gone (clearing it waits for one that runs), the request is
 * only ours to answer. */
static void waited_run(void *arg)
{
	struct task *t = arg;

	fuse_req_interrupt_func(t->req, NULL, NULL);
	task_run(t);
}

/* The budget's call back (core/budget.h): from the thread that gave the
 * memory back, or from view_stop_waits (-ECANCELED: unmounting). */
static void mem_ready(struct cm_budget_waiter *w, int rc)
{
	struct task *t = (struct task *)((char *)w - offsetof(struct task, w));
	struct view_fuse *vf = t->vf;

	if (rc == 0) {
		t->mem = w->n;
		if (cm_pool_submit(vf->pool, waited_run, t) == 0)
			return;
		view_mem_give(vf->v, t->mem);
	}
	fuse_req_interrupt_func(t->req, NULL, NULL);
	answer_err(t, ESHUTDOWN);
	task_free(t);
}

/* FUSE_INTERRUPT of a parked request (its process was killed): out of the
 * queue, EINTR. Called with the request's lock held; if the memory is
 * being handed to it meanwhile, the task runs as if not interrupted. */
static void mem_interrupt(fuse_req_t req, void *data)
{
	struct task *t = data;

	atomic_store(&t->interrupted, true);
	if (!view_mem_cancel(t->vf->v, &t->w))
		return; /* not queued yet (park sees the flag), or served */
	cm_debug("view: a request waiting for memory was interrupted");
	answer_err(t, EINTR);
	task_free(t);
}

/* A request (copied task t) that needs n bytes before it runs: run on a
 * worker with them, or parked until they come. */
static void park(struct task *t, uint64_t n)
{
	struct view_fuse *vf = t->vf;
	int rc;

	t->w.n = n;
	t->w.ready = mem_ready;
	/* before it is queued: from then on the task may be gone */
	fuse_req_interrupt_func(t->req, mem_interrupt, t);
	if (atomic_load(&t->interrupted)) {
		fuse_req_interrupt_func(t->req, NULL, NULL);
		answer_err(t, EINTR);
		task_free(t);
		return;
	}
	rc = view_mem_queue(vf->v, &t->w);
	if (rc == 1)
		return; /* parked: mem_ready or mem_interrupt answers it */
	if (rc == 0) {
		t->mem = n;
		if (cm_pool_submit(vf->pool, waited_run, t) == 0)
			return;
		view_mem_give(vf->v, n);
	}
	fuse_req_interrupt_func(t->req, NULL, NULL);
	answer_err(t, ESHUTDOWN);
	task_free(t);
}

/* The memory t needs before it runs (view.h): a new writer's first part
 * buffers, a reader's first window; 0 for none. Asked on the loop's
 * thread, which it never holds. */
static uint64_t mem_need(const struct task *t)
{
	struct view *v = t->vf->v;

	switch (t->op) {
	case OP_CREATE:
	case OP_OPEN:
		return view_open_mem_need(v, t->ino, t->op == OP_CREATE,
					  t->fi.flags);
	case OP_READ:
		return t->off < 0
			   ? 0
			   : view_read_mem_need(v, FH(&t->fi), (uint64_t)t->off,
						t->size);
	default:
		return 0;
	}
}

/* Run t now, or - when it may wait on the network - on a worker, with its
 * own copies of the name and the data; a request that needs memory first
 * is parked until it has it. */
static void dispatch(struct task *t, fuse_ino_t node)
{
	struct view_fuse *vf = t->vf;
	struct task *c;
	uint64_t need;

	if (!view_may_block(vf->v, node)) {
		run(t);
		return;
	}
	c = cm_xmalloc(sizeof(*c));
	*c = *t;
	c->copied = true;
	c->name = t->name ? cm_xstrdup(t->name) : NULL;
	if (t->data) {
		char *d = cm_xmalloc(t->size ? t->size : 1);

		memcpy(d, t->data, t->size);
		c->data = d;
	}
	need = mem_need(c);
	if (need) {
		park(c, need);
		return;
	}
	if (cm_pool_submit(vf->pool, task_run, c) != 0) {
		/* shutting down */
		fuse_reply_err(t->req, ESHUTDOWN);
		free((char *)c->name);
		free((char *)c->data);
		free(c);
	}
}

static struct view_fuse *VF(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void task_init(struct task *t, fuse_req_t req, enum op op,
		      fuse_ino_t ino, const struct fuse_file_info *fi)
{
	memset(t, 0, sizeof(*t));
	t->vf = VF(req);
	t->op = op;
	t->req = req;
	t->ino = ino;
	if (fi) {
		t->fi = *fi;
		t->has_fi = true;
	}
}

/* ---- handlers ---------------------------------------------------------- */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct view_fuse *vf = userdata;

	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* writes must reach us in order, as the program made them */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* A read is sent by the reading process and waited for there, not
	 * in the background: a read parked for memory is then interrupted
	 * when its reader is killed, and parked reads never fill the
	 * kernel's max_background requests, among which the releases that
	 * give memory back would wait. The view reads ahead itself. */
	conn->want &= ~FUSE_CAP_ASYNC_READ;
	conn->max_readahead = 1u << 20;
	conn->max_background = 64;
	if (!atomic_exchange(&vf->ready_done, true) && vf->opts.on_ready)
		vf->opts.on_ready(vf->opts.ctx);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct task t;

	task_init(&t, req, OP_LOOKUP, parent, NULL);
	t.name = name;
	dispatch(&t, parent);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	view_forget(VF(req)->v, ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		view_forget(VF(req)->v, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_GETATTR, ino, NULL);
	run(&t); /* from what the view knows: never the network */
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_SETATTR, ino, fi);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		t.what |= VIEW_SET_SIZE;
		t.setsize = (uint64_t)attr->st_size;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))
		t.what |= VIEW_SET_TIMES;
	if (to_set & FUSE_SET_ATTR_MODE)
		t.what |= VIEW_SET_MODE;
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		t.what |= VIEW_SET_OWNER;
	run(&t); /* a control command or a size check: no network */
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_OPENDIR, ino, fi);
	dispatch(&t, ino);
}

/* readdir and readdirplus: from the page of the handle that holds off
 * (view_dir_seek has brought it), into buf; the bytes filled. */
static size_t fill_dir(struct view *v, fuse_req_t req, fuse_ino_t ino,
		       struct view_dir *d, char *buf, size_t size, off_t off,
		       bool plus)
{
	size_t pos = 0;

	for (size_t i = (size_t)off;; i++) {
		const struct view_dirent *de = view_dir_entry(d, i);
		struct fuse_entry_param e;
		struct view_attr a;
		size_t need;

		if (!de)
			break;
		if (!plus) {
			struct stat st;

			memset(&st, 0, sizeof(st));
			st.st_ino =
			    de->attr.ino
				? (ino_t)de->attr.ino
				: (ino_t)(0x8000000000000000ull | (i + 1));
			st.st_mode = de->attr.mode;
			need = fuse_add_direntry(req, buf + pos, size - pos,
						 de->name, &st, (off_t)(i + 1));
			if (need > size - pos)
				break;
			pos += need;
			continue;
		}
		need = fuse_add_direntry_plus(req, NULL, 0, de->name, NULL, 0);
		if (need > size - pos)
			break;
		if (view_dir_lookup(v, d, i, &a) != 0)
			continue;
		if (a.ino) {
			to_entry(&a, &e);
		} else {
			/* "." and "..": no reference is counted */
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = (ino_t)ino;
			e.attr.st_mode = S_IFDIR;
		}
		pos += fuse_add_direntry_plus(req, buf + pos, size - pos,
					      de->name, &e, (off_t)(i + 1));
	}
	return pos;
}

/* A paged archive directory may have to ask the store for the page:
 * then on a worker, like any request that may wait on the network. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct task t;

	task_init(&t, req, OP_READDIR, ino, fi);
	t.size = size;
	t.off = off;
	t.what = plus;
	dispatch(&t, ino);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	view_releasedir(VF(req)->v, (struct view_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_OPEN, ino, fi);
	dispatch(&t, ino);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_CREATE, parent, fi);
	t.name = name;
	t.mode = mode;
	dispatch(&t, parent);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_READ, ino, fi);
	t.size = size;
	t.off = off;
	dispatch(&t, ino);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct task t;

	/* most writes of a stream only fill the upload's part buffer: done
	 * here, one copy and no hand-off (the kernel sends one write of a
	 * file at a time, direct_io) */
	if (off >= 0 && view_write_nowait(VF(req)->v, FH(fi), (uint64_t)off,
					  buf, size) == 0) {
		fuse_reply_write(req, size);
		return;
	}
	task_init(&t, req, OP_WRITE, ino, fi);
	t.data = buf;
	t.size = size;
	t.off = off;
	dispatch(&t, ino);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_FLUSH, ino, fi);
	dispatch(&t, ino);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_FSYNC, ino, fi);
	dispatch(&t, ino);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct task t;

	task_init(&t, req, OP_RELEASE, ino, fi);
	dispatch(&t, ino);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct task t;

	task_init(&t, req, OP_UNLINK, parent, NULL);
	t.name = name;
	dispatch(&t, parent);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct task t;

	task_init(&t, req, OP_MKDIR, parent, NULL);
	t.name = name;
	t.mode = mode;
	dispatch(&t, parent);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct task t;

	task_init(&t, req, OP_RMDIR, parent, NULL);
	t.name = name;
	dispatch(&t, parent);
}

/* From the node: an archive's tree keeps the target with the entry. */
static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cm_err err;
	char *target = NULL;
	int rc;

	cm_err_clear(&err);
	rc = view_readlink(VF(req)->v, ino, &target, &err);
	if (rc)
		reply_err(req, rc, &err);
	else
		fuse_reply_readlink(req, target);
	free(target);
}

/* Nothing is renamed, linked or made special: EROFS in an archive's tree
 * (read-only), EPERM elsewhere. */
static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fuse_reply_err(req, -view_refuse(VF(req)->v, parent));
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, -view_refuse(VF(req)->v, parent));
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fuse_reply_err(req, -view_refuse(VF(req)->v, parent));
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fuse_reply_err(req, -view_refuse(VF(req)->v, newparent));
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	/* S3 has no bound; say 1 PiB, all free */
	sv.f_blocks = (1ull << 50) / 4096;
	sv.f_bfree = sv.f_blocks;
	sv.f_bavail = sv.f_blocks;
	sv.f_files = 1ull << 32;
	sv.f_ffree = sv.f_files;
	sv.f_favail = sv.f_files;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ll_ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .open = ll_open,
    .create = ll_create,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .fsync = ll_fsync,
    .release = ll_release,
    .unlink = ll_unlink,
    .mkdir = ll_mkdir,
    .rmdir = ll_rmdir,
    .rename = ll_rename,
    .mknod = ll_mknod,
    .symlink = ll_symlink,
    .link = ll_link,
    .statfs = ll_statfs,
    /* no getxattr/listxattr: ENOSYS once, and the kernel stops asking
     * (an `ls -l` would otherwise ask for ACLs of every entry) */
};

/* ---- invalidation ------------------------------------------------------ */

static void push_inval(struct view_fuse *vf, struct inval *iv)
{
	pthread_mutex_lock(&vf->lock);
	if (vf->stop) {
		pthread_mutex_unlock(&vf->lock);
		free(iv);
		return;
	}
	if (vf->tail)
		vf->tail->next = iv;
	else
		vf->head = iv;
	vf->tail = iv;
	pthread_cond_signal(&vf->cond);
	pthread_mutex_unlock(&vf->lock);
}

static void on_inval_inode(void *ctx, uint64_t ino)
{
	struct inval *iv = cm_xcalloc(1, sizeof(*iv) + 1);

	iv->ino = ino;
	push_inval(ctx, iv);
}

static void on_inval_entry(void *ctx, uint64_t parent, const char *name)
{
	size_t n = strlen(name);
	struct inval *iv = cm_xcalloc(1, sizeof(*iv) + n + 1);

	iv->entry = true;
	iv->ino = parent;
	memcpy(iv->name, name, n + 1);
	push_inval(ctx, iv);
}

static const struct view_notify_ops notify_ops = {
    .inval_inode = on_inval_inode,
    .inval_entry = on_inval_entry,
};

const struct view_notify_ops *view_fuse_notify_ops(void)
{
	return &notify_ops;
}

static void *notifier_main(void *arg)
{
	struct view_fuse *vf = arg;

	pthread_mutex_lock(&vf->lock);
	for (;;) {
		struct inval *iv;
		bool live;
		int rc;

		while (!vf->head && !vf->stop)
			pthread_cond_wait(&vf->cond, &vf->lock);
		if (vf->stop)
			break;
		iv = vf->head;
		vf->head = iv->next;
		if (!vf->head)
			vf->tail = NULL;
		live = vf->live;
		pthread_mutex_unlock(&vf->lock);
		rc = 0;
		if (live && iv->entry)
			rc = fuse_lowlevel_notify_inval_entry(
			    vf->se, iv->ino, iv->name, strlen(iv->name));
		else if (live)
			rc = fuse_lowlevel_notify_inval_inode(vf->se, iv->ino,
							      0, 0);
		/* ENOENT: the kernel does not have it cached; fine */
		if (rc && rc != -ENOENT)
			cm_debug("view: invalidating inode %llu: %s",
				 (unsigned long long)iv->ino, strerror(-rc));
		free(iv);
		pthread_mutex_lock(&vf->lock);
	}
	while (vf->head) {
		struct inval *iv = vf->head;

		vf->head = iv->next;
		free(iv);
	}
	vf->tail = NULL;
	pthread_mutex_unlock(&vf->lock);
	return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

struct view_fuse *view_fuse_new(const struct view_fuse_opts *opts)
{
	struct view_fuse *vf = cm_xcalloc(1, sizeof(*vf));

	vf->opts = *opts;
	vf->mountpoint = cm_xstrdup(opts->mountpoint);
	vf->opts.mountpoint = vf->mountpoint;
	if (!vf->opts.workers)
		vf->opts.workers = 32;
	pthread_mutex_init(&vf->lock, NULL);
	pthread_cond_init(&vf->cond, NULL);
	pthread_rwlock_init(&vf->reply_lock, NULL);
	if (pthread_create(&vf->notifier, NULL, notifier_main, vf) == 0)
		vf->have_notifier = true;
	else
		cm_warn("view: no notifier thread: the kernel's caches "
			"expire on their own");
	return vf;
}

int view_fuse_mount(struct view_fuse *vf, struct view *v, struct cm_err *err)
{
	char opts[256];
	char *argv[4];
	int argc = 0;
	struct fuse_args args;

	vf->v = v;
	snprintf(opts, sizeof(opts), "fsname=vaultfs,subtype=vaultfs%s",
		 vf->opts.allow_other ? ",allow_other,default_permissions"
				      : "");
	argv[argc++] = (char *)"vaultfs";
	argv[argc++] = (char *)"-o";
	argv[argc++] = opts;
	if (vf->opts.debug)
		argv[argc++] = (char *)"-d";
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	vf->se = fuse_session_new(&args, &ll_ops, sizeof(ll_ops), vf);
	fuse_opt_free_args(&args);
	if (!vf->se)
		return cm_err_set(err, EINVAL,
				  "mount: cannot make a FUSE "
				  "session (bad options?)");
	if (fuse_session_mount(vf->se, vf->mountpoint) != 0)
		return cm_err_set(err, EIO,
				  "mount: cannot mount %s (is "
				  "/dev/fuse usable? with --allow-other, "
				  "user_allow_other in /etc/fuse.conf)",
				  vf->mountpoint);
	vf->mounted = true;
	vf->pool = cm_pool_new(vf->opts.workers, 1024);
	pthread_mutex_lock(&vf->lock);
	vf->live = true;
	pthread_mutex_unlock(&vf->lock);
	return 0;
}

static void on_sigusr2(int sig)
{
	/* only interrupts the loop's wait */
}

int view_fuse_run(struct view_fuse *vf)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	struct sigaction sa;
	sigset_t set;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr2;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: sem_wait returns EINTR */
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	vf->loop_thread = pthread_self();
	atomic_store(&vf->running, true);
	rc = fuse_session_loop_mt(vf->se, cfg);
	atomic_store(&vf->running, false);
	fuse_loop_cfg_destroy(cfg);
	return rc < 0 ? rc : 0;
}

void view_fuse_exit(struct view_fuse *vf)
{
	if (!vf->se)
		return;
	fuse_session_exit(vf->se);
	/* the loop waits in sem_wait: interrupt it until it has noticed */
	while (atomic_load(&vf->running)) {
		pthread_kill(vf->loop_thread, SIGUSR2);
		cm_sleep_ms(20);
	}
}

void view_fuse_unmount(struct view_fuse *vf)
{
	pthread_mutex_lock(&vf->lock);
	vf->live = false;
	vf->stop = true;
	pthread_cond_broadcast(&vf->cond);
	pthread_mutex_unlock(&vf->lock);
	if (vf->have_notifier) {
		pthread_join(vf->notifier, NULL);
		vf->have_notifier = false;
	}
	/* The mount point goes first (a lazy unmount, which closes the
	 * channel), so that a request stuck on a slow S3 server does not
	 * keep it: the kernel fails the requests still in flight, and their
	 * workers' late replies go nowhere. Then the workers are drained. */
	if (vf->se && vf->mounted) {
		pthread_rwlock_wrlock(&vf->reply_lock);
		fuse_session_unmount(vf->se);
		vf->mounted = false;
		pthread_rwlock_unlock(&vf->reply_lock);
	}
	if (vf->pool && vf->v)
		view_stop_waits(vf->v); /* no worker waits for memory, and
					   the parked requests are answered */
	cm_pool_free(vf->pool);
	vf->pool = NULL;
}

void view_fuse_free(struct view_fuse *vf)
{
	if (!vf)
		return;
	view_fuse_unmount(vf);
	if (vf->se)
		fuse_session_destroy(vf->se);
	pthread_mutex_destroy(&vf->lock);
	pthread_cond_destroy(&vf->cond);
	pthread_rwlock_destroy(&vf->reply_lock);
	free(vf->mountpoint);
	free(vf);
}
