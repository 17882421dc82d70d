/*
 * view.h - the view behind `vaultfs mount`, in plain C: no FUSE in here.
 *
 * The view is a small tree of nodes that fuse_ll.c (the only file that
 * speaks libfuse) translates requests into, and that unit tests call
 * directly:
 *
 *   /status                      daemon summary ("key: value" lines)
 *   /metrics                     Prometheus text format
 *   /README                      what each file does, in ten lines
 *   /vaults/VAULT/RP/info.json   the recovery point: type, resource, tags
 *   /vaults/VAULT/RP/status      its job's state and progress
 *   /vaults/VAULT/RP/log         its job's log lines
 *   /vaults/VAULT/RP/export      control: touch, or write "start"
 *   /vaults/VAULT/RP/cancel      control: touch, or write "cancel"
 *   /vaults/VAULT/RP/files/      the archived tree (an indexed archive)
 *   /archive/STORE/KEY...        the destination bucket (or local store)
 *   /archive/STORE/KEY.d/        the tree of the indexed archive KEY
 *
 * Nodes and inode numbers. Every node has a 64-bit inode number, never
 * reused (so the FUSE generation is always 0). Fixed nodes (the root, its
 * files, vaults/, archive/, each vault, the store) live as long as the
 * view; others are made by a lookup and freed once the kernel forgot them
 * (view_forget) and no handle or caller holds them. A lookup counts one
 * kernel reference, as the FUSE contract says.
 *
 * Recovery points are listed by each vault's provider (provider.h: list,
 * cheap; local: one readdir and one fstatat per entry, no tree walk)
 * together with the engine's jobs of that vault, so that a recovery point
 * whose snapshot was deleted after archiving still shows its status. A
 * refresher thread keeps the listings current (the providers' watches -
 * inotify on a local vault - a periodic rescan, and a nudge from the
 * engine's notify callback) and reports what the kernel must forget
 * through struct view_notify_ops.
 *
 * File contents are snapshots: a status, info.json, metrics or log file
 * renders its whole text at open (view_open), and reads serve that copy,
 * so what `cat` shows is consistent, never half-updated.
 *
 * Control files: a write must be the file's word ("start" for export,
 * "cancel" for cancel; surrounding white space ignored) or nothing; any
 * other text fails that write with -EINVAL and the reason is logged.
 * Touching the file (a setattr of its times or size) and opening it with
 * O_TRUNC and closing it without a write count as the word. export is
 * idempotent (orch_export answers a repeat with the existing job).
 *
 * The archive view (view_archive.c): directories come from the store's
 * listing (S3: ListObjectsV2 with delimiter '/'), cached briefly; reads go
 * through a read-ahead window for remote stores; a new file written
 * sequentially streams into the store (S3: a multipart upload, memory
 * bounded by the uploader) and appears when it is flushed (close) or
 * fsynced. A write anywhere but at the end fails with -EINVAL and poisons
 * the file (nothing half-written ever appears). Overwriting an existing
 * object needs opts.allow_overwrite, unlink needs opts.allow_delete.
 *
 * Archives' trees (view_tree.c): read-only, listed from the archive's
 * index and read through the members that hold the bytes read (browse.h),
 * with the modes, owners, times and link targets the archive holds.
 *
 * Sharing: every node belongs to opts.uid/opts.gid with the mode of what
 * it allows less opts.umask (control files: writable by the owner only);
 * archive/STORE shows the configured prefix only, unless whole_bucket.
 * Read-ahead and part buffers share one budget (opts.memory_limit).
 *
 * Threads: every function may be called from any thread at once, except
 * view_new/view_free. Calls on archive nodes may wait on the network
 * (view_may_block says which); the adapter runs those on its workers. The
 * view runs its own refresher thread and, for remote stores, a small pool
 * that reads ahead.
 *
 * Errors: 0 or a negative errno, and a message in err for the log.
 */
#ifndef VAULTFS_VIEW_H
#define VAULTFS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "budget.h"
#include "config.h"
#include "err.h"

struct orch;
struct orch_job_info;
struct orch_snapshot;
struct orch_recovery_point;
struct cm_json;
struct orch_dest;

#define VIEW_ROOT_INO 1

/* What the kernel must forget; called with no lock of the view held, from
 * any of the view's threads (the adapter queues them for its notifier). */
struct view_notify_ops {
	/* the inode's attributes and cached data (a directory's listing) */
	void (*inval_inode)(void *ctx, uint64_t ino);
	/* the dentry `name` in directory `parent` (also a negative one) */
	void (*inval_entry)(void *ctx, uint64_t parent, const char *name);
};

struct view_opts {
	const struct orch_config *cfg; /* borrowed; outlives the view */
	/* the engine (borrowed; may be NULL: control files then fail with
	 * -ENOTCONN and status shows no jobs). Set later with view_set_orch
	 * when the engine needs the view's notify callback first. */
	struct orch *orch;
	/* the destination the archive view browses (borrowed, dest.h), the
	 * engine's; NULL: the view makes its own from cfg */
	struct orch_dest *dest;
	bool allow_overwrite;
	bool allow_delete;
	/* archive/: the whole bucket, not only the path to the configured
	 * prefix and what lies below it */
	bool whole_bucket;
	uid_t uid; /* owner of every node */
	gid_t gid;
	/* Modes: what a node allows (0666 for a writable file, 0444 for a
	 * read-only one, 0777 for an archive directory, 0555 for the others)
	 * less umask. Control files are writable by the owner only, whatever
	 * the umask. 0 means 0; view_opts_init sets the default (027: files
	 * 0640, directories 0750). */
	mode_t umask;
	/* one budget for read-ahead windows and upload part buffers; 0: the
	 * config's view.memoryLimit */
	uint64_t memory_limit;
	unsigned list_cache_ms;		      /* listings; 0: 2000 */
	unsigned list_max_keys; /* entries a listing page; 0: 1000 */
	unsigned rescan_ms;		      /* vault listings; 0: 5000 */
	unsigned readahead_max;		      /* bytes; 0: 8 MiB */
	const struct view_notify_ops *notify; /* may be NULL */
	void *notify_ctx;
};

struct view;

#define VIEW_DEFAULT_UMASK 027

/* Zero, with the defaults that are not zero (umask). */
void view_opts_init(struct view_opts *o);

/* Starts the refresher thread. NULL with err set when the store cannot be
 * set up. */
struct view *view_new(const struct view_opts *opts, struct cm_err *err);
/* Aborts unfinished uploads, stops the threads. NULL is a no-op. */
void view_free(struct view *v);

/* From now on nothing waits for memory (a wait fails with -ECANCELED):
 * at unmount, before the workers that may wait are drained. */
void view_stop_waits(struct view *v);

/* Attach the engine once it exists (before any request). */
void view_set_orch(struct view *v, struct orch *o);

/* The engine's notify callback (orch_opts.notify, ctx: the view). */
void view_orch_notify(void *ctx, const struct orch_job_info *ji);

/*
 * Crash recovery of the archive view: abort the multipart uploads (remove
 * the temporary files) that an earlier `vaultfs mount` left open when it
 * died. Call once the stateDir lock is held (after orch_start). *n
 * receives how many were cleaned.
 */
int view_recover(struct view *v, size_t *n, struct cm_err *err);

/* ---- attributes and names ---------------------------------------------- */

struct view_attr {
	uint64_t ino;
	mode_t mode; /* S_IFDIR|0755, S_IFREG|0444, ... */
	unsigned nlink;
	uint64_t size;
	time_t mtime; /* also atime and ctime */
	long mtime_nsec;
	dev_t rdev;   /* devices in an archive's tree */
	uid_t uid;
	gid_t gid;
	double attr_timeout;  /* seconds the kernel may keep these */
	double entry_timeout; /* seconds it may keep the name (lookups) */
};

/* A name in a directory: one more kernel reference on success. -ENOENT
 * with out->entry_timeout set for a negative entry the kernel may keep. */
int view_lookup(struct view *v, uint64_t parent, const char *name,
		struct view_attr *out, struct cm_err *err);
/* The kernel dropped n references. */
void view_forget(struct view *v, uint64_t ino, uint64_t n);
int view_getattr(struct view *v, uint64_t ino, struct view_attr *out,
		 struct cm_err *err);
/* Requests on this inode may wait on the network (archive nodes of a
 * remote store). */
bool view_may_block(struct view *v, uint64_t ino);

/* A symlink's target (caller frees): -EINVAL for anything else. */
int view_readlink(struct view *v, uint64_t ino, char **out,
		  struct cm_err *err);
/* The answer to a rename, link, symlink or mknod in directory ino (no
 * such thing is made anywhere): -EROFS in an archive's tree, else
 * -EPERM. */
int view_refuse(struct view *v, uint64_t ino);

/* ---- directories ------------------------------------------------------- */

struct view_dir;

struct view_dirent {
	const char *name;      /* borrowed from the handle */
	struct view_attr attr; /* attr.ino: 0 until looked up */
};

/* A snapshot of the directory's entries ("." and ".." first). An archive
 * directory (of the store, below the scope) is read page by page instead:
 * the handle holds one page of it (opts.list_max_keys entries), and
 * view_dir_seek brings the page of an offset. */
int view_opendir(struct view *v, uint64_t ino, struct view_dir **out,
		 bool *cacheable, struct cm_err *err);
/* Before view_dir_entry(d, off ...): make the entries from offset off
 * available (may ask the store: on a worker where view_may_block says
 * so). Offset 0 again, after a readdir, lists afresh (rewinddir); an
 * earlier offset (seekdir to a telldir) lists its page again. A no-op
 * for snapshots. */
int view_dir_seek(struct view *v, struct view_dir *d, uint64_t off,
		  struct cm_err *err);
/* Entries from index `off`; NULL past the end (of the page loaded, for a
 * paged directory: view_dir_seek the next offset then). Borrowed from the
 * handle. */
const struct view_dirent *view_dir_entry(struct view_dir *d, size_t off);
/* Refresh the snapshot (a rewinddir: a read at offset 0 again). */
int view_dir_refresh(struct view *v, struct view_dir *d, struct cm_err *err);
/* For readdirplus: count one kernel reference on entry `off` (whose attrs
 * are then complete, ino included); "." and ".." take none. */
int view_dir_lookup(struct view *v, struct view_dir *d, size_t off,
		    struct view_attr *out);
void view_releasedir(struct view *v, struct view_dir *d);

/* ---- files ------------------------------------------------------------- */

struct view_file;

struct view_open_out {
	bool direct_io;	 /* no page cache: contents are snapshots */
	bool keep_cache; /* the cached data is still right */
	bool nonseekable;
};

/* flags: the open(2) flags. */
int view_open(struct view *v, uint64_t ino, int flags, struct view_file **out,
	      struct view_open_out *oo, struct cm_err *err);
/* A new archive object (other places: -EACCES). Counts a kernel reference
 * on the new node, like a lookup. */
int view_create(struct view *v, uint64_t parent, const char *name, mode_t mode,
		int flags, struct view_file **out, struct view_attr *attr,
		struct view_open_out *oo, struct cm_err *err);

/*
 * Memory a request waits for without a thread. A new archive writer needs
 * its first part buffers from the budget (view.memoryLimit) before it
 * starts, and an archive reader (remote store) its first read-ahead
 * window before its first read; view_open, view_create and view_read
 * take them on the calling thread, waiting there while the budget is
 * spent. The adapter instead asks how much a create in `ino` (create) or
 * an open of `ino` with these flags (view_open_mem_need), or a read of
 * len bytes at off of f (view_read_mem_need) needs: 0 for none - a file
 * that holds memory never waits for more. Else it queues a waiter for the
 * bytes (view_mem_queue: core/budget.h, w->ready is called from the
 * thread that gives memory back, or with -ECANCELED from
 * view_stop_waits), and calls view_open_mem / view_create_mem /
 * view_read_mem with them once it has them; they are the view's from the
 * call on (a writer keeps them as part buffers, a reader as its window,
 * anything else gives them back). view_mem_cancel takes a waiter out (an
 * interrupted request). The *_need calls never wait on a lock a worker
 * may hold across the network: the adapter's own thread asks them.
 */
uint64_t view_open_mem_need(struct view *v, uint64_t ino, bool create,
			    int flags);
uint64_t view_read_mem_need(struct view *v, struct view_file *f, uint64_t off,
			    size_t len);
int view_mem_queue(struct view *v, struct cm_budget_waiter *w);
bool view_mem_cancel(struct view *v, struct cm_budget_waiter *w);
void view_mem_give(struct view *v, uint64_t n);
int view_open_mem(struct view *v, uint64_t ino, int flags, uint64_t mem,
		  struct view_file **out, struct view_open_out *oo,
		  struct cm_err *err);
int view_create_mem(struct view *v, uint64_t parent, const char *name,
		    mode_t mode, int flags, uint64_t mem,
		    struct view_file **out, struct view_attr *attr,
		    struct view_open_out *oo, struct cm_err *err);
/* Up to len bytes at off into buf; *got is 0 at the end. */
int view_read(struct view *v, struct view_file *f, uint64_t off, char *buf,
	      size_t len, size_t *got, struct cm_err *err);
int view_read_mem(struct view *v, struct view_file *f, uint64_t off, char *buf,
		  size_t len, uint64_t mem, size_t *got, struct cm_err *err);
/* All n bytes or an error (-EINVAL: out of order, or a bad command). */
int view_write(struct view *v, struct view_file *f, uint64_t off, const void *p,
	       size_t n, struct cm_err *err);
/* The same write if it can be done at once, without waiting on a lock or
 * the network (an archive file's next bytes that fit in its upload's
 * current part buffer): 0, or -EAGAIN and nothing done - then view_write
 * it (on a worker, when view_may_block). Any problem is -EAGAIN too, for
 * view_write to report. */
int view_write_nowait(struct view *v, struct view_file *f, uint64_t off,
		      const void *p, size_t n);
/* close(2) of one descriptor: an archive upload completes here. */
int view_flush(struct view *v, struct view_file *f, struct cm_err *err);
int view_fsync(struct view *v, struct view_file *f, struct cm_err *err);
/* The last close. Completes what flush did not (errors are logged). */
void view_release(struct view *v, struct view_file *f);

#define VIEW_SET_SIZE  0x1
#define VIEW_SET_TIMES 0x2 /* atime and/or mtime */
#define VIEW_SET_MODE  0x4
#define VIEW_SET_OWNER 0x8

/* f may be NULL (a path setattr). */
int view_setattr(struct view *v, uint64_t ino, struct view_file *f,
		 unsigned what, uint64_t size, struct view_attr *out,
		 struct cm_err *err);
int view_unlink(struct view *v, uint64_t parent, const char *name,
		struct cm_err *err);
/* An empty archive directory, kept in memory until something is written
 * below it (S3 has no directories). One kernel reference on success. */
int view_mkdir(struct view *v, uint64_t parent, const char *name,
	       struct view_attr *out, struct cm_err *err);
int view_rmdir(struct view *v, uint64_t parent, const char *name,
	       struct cm_err *err);

/* ---- what the view shows (view_text.c); pure functions ----------------- */

/* The commands of the control files. */
enum view_control {
	VIEW_CTL_EXPORT = 0,
	VIEW_CTL_CANCEL,
};

/*
 * A write of `len` bytes to control file `which`: 0 when it is the file's
 * word or only white space, else -EINVAL with the reason in err (quoting
 * at most 40 bytes of what was written, escaped).
 */
int view_control_parse(enum view_control which, const char *data, size_t len,
		       struct cm_err *err);

/* Counters of the archive view (view_stats_get). */
struct view_stats {
	uint64_t bytes_written;	  /* into archive objects */
	uint64_t bytes_read;	  /* from archive objects */
	uint64_t objects_written; /* completed uploads */
	uint64_t write_errors;	  /* failed or refused uploads */
	uint64_t control_errors;  /* rejected control writes */
	uint64_t uploads_open;	  /* being written now */
	uint64_t memory_used;	  /* read-ahead and part buffers, bytes */
	uint64_t memory_peak;	  /* the most at once */
	uint64_t memory_limit;
	uint64_t memory_waits; /* buffers that waited for memory */
	uint64_t memory_waiting; /* requests waiting for it now */
	time_t started;
};

void view_stats_get(struct view *v, struct view_stats *out);

/* The text of /status. The caller frees. */
char *view_status_text(const struct orch_config *cfg,
		       const struct orch_snapshot *snap,
		       const struct view_stats *st, time_t now);
/* The text of /metrics: the engine's (orchestrator/metrics.h), then the
 * view's counters. The caller frees. */
char *view_metrics_text(const struct orch_config *cfg,
			const struct orch_snapshot *snap,
			const struct view_stats *st, time_t now);
/* The text of /README: what each file of the mount does. The caller
 * frees. */
char *view_readme_text(void);
/* The status of a recovery point: its job's text (orch_job_info_text),
 * or "state: new" lines when it has no job (ji NULL). */
char *view_rp_status_text(const char *vault, const char *name,
			  const struct orch_job_info *ji, bool auto_start);
/* info.json of a recovery point from its provider's description
 * (provider.h: describe; NULL when it is gone from its vault) and/or its
 * job (either may be NULL, not both). */
char *view_rp_info_json(const char *vault, const char *name,
			const struct cm_json *described,
			const struct orch_job_info *ji);

/* ---- the archive's names (view_archive.c) ------------------------------ */

/* The key of `name` inside directory prefix `dir` ("" or ending in '/');
 * is_dir adds the '/'. -EINVAL for names S3 keys cannot carry as a path
 * component ("", ".", ".."), -ENAMETOOLONG past 1024 bytes. */
int view_arc_child_key(const char *dir, const char *name, bool is_dir,
		       char **out);
/* The name a listing entry `key` has inside `dir` (a prefix of it): the
 * part after dir without a trailing '/'. NULL when it has none (the
 * directory marker "dir/" itself, or an empty component). Borrowed. */
const char *view_arc_child_name(const char *dir, const char *key, char *buf,
				size_t buflen);

#endif
