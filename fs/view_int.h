/*
 * view_int.h - the view's insides, shared by view.c (the tree, the vault
 * listings, the refresher, the virtual files), view_archive.c (the archive
 * view) and view_uploads.c (the crash record of uploads). Not for use
 * outside fs/.
 *
 * Locks, in the order they may be taken:
 *
 *   vault->scan_lock  one scan of a vault directory at a time
 *   file->lock        one open file's state (its reader or writer); held
 *                     across store calls, so a slow upload only stalls
 *                     that file
 *   view->lock        the node tables, every node's fields marked below,
 *                     the vault listings and the archive listing cache.
 *                     A leaf: nothing that waits (no store, engine or
 *                     notify call, no logging) runs under it.
 *
 * Kernel notifications (view->opts.notify) are made with no lock held:
 * the adapter queues them and its notifier thread talks to the kernel.
 */
#ifndef VAULTFS_VIEW_INT_H
#define VAULTFS_VIEW_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "dest.h"
#include "queue.h"
#include "view.h"
#include "view_store.h"

enum view_kind {
	VK_ROOT = 0,
	VK_STATUS,
	VK_METRICS,
	VK_README,
	VK_VAULTS,
	VK_ARCHIVE,
	VK_VAULT,
	VK_RP,
	VK_RP_INFO,
	VK_RP_STATUS,
	VK_RP_LOG,
	VK_RP_EXPORT,
	VK_RP_CANCEL,
	VK_RP_IMAGE, /* disk.img: the provider's open_image */
	VK_STORE,    /* archive/STORE: the top of the store */
	VK_ARC_DIR,  /* a prefix */
	VK_ARC_FILE, /* an object */
	/* an archive's tree (view_tree.c): vaults/V/RP/files and
	 * archive/STORE/KEY.d (key: the archive's key in the store), a
	 * directory in it and anything else in it (key: the entry's path in
	 * the archive) */
	VK_TREE_ROOT,
	VK_TREE_DIR,
	VK_TREE_ENTRY,
};

/* The root's files: status, metrics, README */
static inline bool vk_is_root_file(enum view_kind k)
{
	return k == VK_STATUS || k == VK_METRICS || k == VK_README;
}

static inline bool vk_is_archive(enum view_kind k)
{
	return k == VK_STORE || k == VK_ARC_DIR || k == VK_ARC_FILE;
}

/* A directory of the store: where objects and prefixes are made */
static inline bool vk_is_archive_dir(enum view_kind k)
{
	return k == VK_STORE || k == VK_ARC_DIR;
}

static inline bool vk_is_tree(enum view_kind k)
{
	return k == VK_TREE_ROOT || k == VK_TREE_DIR || k == VK_TREE_ENTRY;
}

/* A directory of an archive's tree: read-only, listed from its index */
static inline bool vk_is_tree_dir(enum view_kind k)
{
	return k == VK_TREE_ROOT || k == VK_TREE_DIR;
}

static inline bool vk_is_dir(enum view_kind k)
{
	return k == VK_ROOT || k == VK_VAULTS || k == VK_ARCHIVE ||
	       k == VK_VAULT || k == VK_RP || k == VK_STORE ||
	       k == VK_ARC_DIR || vk_is_tree_dir(k);
}

struct view_tent;
struct view_tree;

struct view_node {
	uint64_t ino;
	enum view_kind kind;
	struct view_node *parent; /* a reference; NULL for the root */
	char *name;		  /* owned */
	size_t vault;		  /* VK_VAULT and below: its index */
	char *key;		  /* archive: "", "a/b/" or "a/b/c"; owned */

	/* the rest is protected by view->lock */
	uint64_t nlookup;
	/* internal references: children, handles, callers between
	 * view_node_get and view_node_put */
	unsigned refs;
	/* in the name table (found by lookups) */
	bool hashed;
	/* an archive node the store does not show yet (being written, or
	 * made by mkdir): holds a reference, listed by readdir */
	bool pinned;
	unsigned writers;
	uint64_t size;
	time_t mtime;
	/* VK_RP_IMAGE: the image while handles read it, shared by them
	 * (one block cache per recovery point), and how many hold it */
	struct orch_image *image;
	unsigned image_users;
	/* when size was rendered (dynamic files; disk.img: learned); 0:
	 * stale */
	uint64_t rendered_ns;
	/* tree nodes: the archive's entry (owned; set before the node is
	 * hashed, then immutable). VK_TREE_ROOT: NULL until the archive was
	 * opened, then its root entry (set once, under ->lock) */
	struct view_tent *tent;
	struct view_node *next_ino;
	struct view_node *next_name;
};

struct vault_ent {
	char *name;
	time_t mtime;
	bool image; /* has a disk.img (an EBS snapshot, open_image) */
};

struct vault_state {
	const struct orch_vault_config *cfg; /* borrowed from the config */
	struct view_node *node;
	pthread_mutex_t scan_lock;
	/* protected by view->lock: the last scan, sorted by name */
	struct vault_ent *ents;
	size_t n;
	time_t dir_mtime;    /* protected by view->lock: the listing last
				changed (the vault directory's mtime) */
	uint64_t scanned_ns; /* protected by view->lock; 0: never */
	bool dirty;	     /* protected by view->lock: rescan soon */
	struct view *view;
	struct orch_provider *prov;  /* owned: the view's own (provider.h) */
	struct orch_watch *watch;    /* the refresher's; NULL: none */
	bool watch_failed;	     /* the refresher's: rescans only */
};

/* A cached listing of an archive prefix (immutable once made). */
struct view_lentry {
	char *name;
	struct view_obj obj;
};

struct view_listing {
	char *prefix;
	struct view_lentry *ents; /* sorted by name */
	size_t n;
	uint64_t fetched_ns;
	unsigned refs;		   /* protected by view->lock: users */
	bool cached;		   /* protected by view->lock: cached */
	struct view_listing *next; /* protected by view->lock: the cache list */
};

#define VIEW_LISTINGS_MAX 32

struct dir_item {
	struct view_dirent de; /* first: view_dir_entry returns it */
	enum view_kind kind;
	struct view_obj obj; /* archive entries */
	char *name;	     /* owned (de.name points here) */
	char *key;	     /* VK_TREE_ROOT: the archive's key; owned */
	struct view_tent *tent; /* tree entries: owned */
};

/* Where a page of a paged directory starts: its first entry's offset and
 * the store's cursor of it (NULL: the first page). */
struct dir_page {
	uint64_t start;
	char *cursor;
};

struct view_dir {
	struct view_node *node; /* a reference */
	struct dir_item *items; /* paged: the page loaded */
	size_t n;
	/*
	 * An archive directory below the scope is read page by page
	 * (view_arc_seek): items hold the entries at offsets base ..
	 * base + n - 1, next is the store's cursor after them (NULL: the
	 * last page) and pages[] where every page seen so far starts, for a
	 * seekdir back. "." and ".." and the pinned names (pinned[], sorted,
	 * what the store does not show yet) open page 0; later pages leave
	 * those names out. The kernel sends one readdir of a handle at a
	 * time, but ->lock makes that no one's assumption.
	 */
	bool paged;
	bool served; /* a readdir was answered: offset 0 again rewinds */
	bool loaded; /* items hold page cur (else its fetch failed: again) */
	pthread_mutex_t lock;
	uint64_t base;
	char *next;
	struct dir_page *pages;
	size_t npages, cur; /* cur: the page loaded */
	char **pinned;
	size_t npinned;
};

/* Append an entry named `name` to d->items (capacity *cap, grown as
 * needed); the rest of the entry is zero. */
struct dir_item *view_dir_add(struct view_dir *d, size_t *cap, const char *name,
			      enum view_kind kind, mode_t mode);
/* Free d's items (not its pages). */
void view_dir_clear(struct view_dir *d);

struct view_reader;
struct view_writer;

struct view_file {
	struct view_node *node; /* a reference */
	enum view_kind kind;
	pthread_mutex_t lock;
	char *text; /* protected by ->lock: the snapshot */
	size_t len;
	bool ctl_pending;	/* protected by ->lock: O_TRUNC, no write */
	struct view_reader *rd; /* protected by ->lock */
	struct view_writer *wr; /* protected by ->lock */
	struct orch_image *image; /* VK_RP_IMAGE: its node's, held */
	struct view_tree *tree;	  /* VK_TREE_ENTRY: its archive, held */
};

#define VIEW_NOTES 64

struct view {
	struct view_opts opts;
	const struct orch_config *cfg;
	_Atomic(struct orch *) orch;
	struct view_store *store; /* owned */
	struct orch_dest *dest;	  /* opts.dest, or own_dest */
	struct orch_dest *own_dest; /* owned, when opts.dest was NULL */
	time_t started;

	pthread_mutex_t lock;
	struct view_node **by_ino;  /* protected by ->lock */
	struct view_node **by_name; /* protected by ->lock */
	size_t nbuckets;	    /* protected by ->lock */
	size_t nnodes;		    /* protected by ->lock */
	uint64_t next_ino;	    /* protected by ->lock */
	struct view_node *root, *status, *metrics, *readme, *vaults, *archive;
	struct view_node *store_node;
	struct vault_state *vs; /* one per configured vault */
	size_t nvaults;
	struct view_listing *listings; /* protected by ->lock: newest first */
	size_t nlistings;	       /* protected by ->lock */
	struct view_node **pinned;     /* protected by ->lock: pinned nodes */
	size_t npinned, pinned_cap;    /* protected by ->lock */

	/* counters (view_stats) */
	atomic_uint_fast64_t bytes_written, bytes_read, objects_written;
	atomic_uint_fast64_t write_errors, control_errors, uploads_open;

	/* the refresher */
	pthread_t refresher;
	bool have_refresher;
	int wake_fd; /* eventfd */
	atomic_bool stopping;

	/* read-ahead for remote stores */
	struct cm_pool *ra_pool;
	/* read-ahead windows and part buffers: one limit (owned) */
	struct cm_budget *budget;
	/* archive/ below the store: what is shown ("" the whole store, else
	 * the configured prefix with a trailing '/') */
	char *scope;

	/* the crash record of uploads: STATEDIR/view/uploads */
	char *uploads_dir;
	pthread_mutex_t uploads_lock; /* serialises the files' names */
	uint64_t upload_seq;	      /* protected by ->uploads_lock */

	/* rejected control writes, for the recovery point's log file: a
	 * ring of the last VIEW_NOTES lines (a recovery point may have no
	 * job, hence no job log, to put them in) */
	pthread_mutex_t notes_lock;
	struct view_note {
		size_t vault;
		char *rp;   /* owned; NULL: an empty slot */
		char *line; /* owned, stamped, ending in '\n' */
	} notes[VIEW_NOTES];      /* protected by ->notes_lock */
	size_t notes_next;        /* protected by ->notes_lock */

	/* the archives whose trees are shown (view_tree.c): opened on first
	 * use, shared by every node that shows one, closed when idle. A
	 * leaf lock, never taken with ->lock held nor the other way round */
	pthread_mutex_t trees_lock;
	pthread_cond_t trees_cond;
	struct view_tree *trees; /* protected by ->trees_lock */
	size_t ntrees;		 /* protected by ->trees_lock */
	/* asks a remote store whether archives have their index */
	pthread_t checker;
	pthread_cond_t checks_cond;
	bool have_checker; /* protected by ->trees_lock */
	bool checker_stop; /* protected by ->trees_lock */

	/* every open archive file, to close (and abort) at view_free */
	pthread_mutex_t files_lock;
	struct view_file **afiles;  /* protected by ->files_lock */
	size_t nafiles, afiles_cap; /* protected by ->files_lock */
};

/* view.c: nodes */
/* The node by inode number with one more ref, or NULL. */
struct view_node *view_node_get(struct view *v, uint64_t ino);
void view_node_put(struct view *v, struct view_node *n);
/* Under ->lock: */
struct view_node *view_child_locked(struct view *v, struct view_node *parent,
				    const char *name);
struct view_node *view_node_new_locked(struct view *v, struct view_node *parent,
				       const char *name, enum view_kind kind);
void view_node_ref_locked(struct view_node *n);
void view_node_unref_locked(struct view *v, struct view_node *n);
void view_unhash_locked(struct view *v, struct view_node *n);
void view_attr_locked(struct view *v, const struct view_node *n,
		      struct view_attr *out);
struct view_file *view_file_new(struct view_node *n); /* takes n's ref */
void view_file_free(struct view *v, struct view_file *f);
void view_inval_inode(struct view *v, uint64_t ino);
void view_inval_entry(struct view *v, uint64_t parent, const char *name);
/* A line for the log file of recovery point `rp` of vault index `vault`
 * (besides mount.log): "FILE: WHY". */
void view_note_rp(struct view *v, size_t vault, const char *rp,
		  const char *file, const char *why);
struct orch *view_engine(struct view *v);
/* What recovery point rp (vault index vault) lists changed: name came or
 * went. Tells the kernel; no lock held. */
void view_rp_changed(struct view *v, size_t vault, const char *rp,
		     const char *name);

/* view_archive.c */
int view_arc_init(struct view *v, struct cm_err *err);
/* dir (a directory key) lies on the way down to the scope, above it */
bool view_arc_on_way(struct view *v, const char *dir);
void view_arc_release_all(struct view *v);
int view_arc_lookup(struct view *v, struct view_node *parent, const char *name,
		    struct view_attr *out, struct cm_err *err);
int view_arc_opendir(struct view *v, struct view_dir *d, struct cm_err *err);
/* Load the page of a paged directory that holds offset off (or the end). */
int view_arc_seek(struct view *v, struct view_dir *d, uint64_t off,
		  struct cm_err *err);
/* Free what paging holds (view_releasedir). */
void view_arc_dir_free(struct view_dir *d);
/* mem: bytes of v->budget the caller took for a writer (view_open_mem),
 * the view's from the call on; 0: a writer takes its own, waiting on this
 * thread. */
int view_arc_open(struct view *v, struct view_file *f, int flags,
		  uint64_t mem, struct view_open_out *oo, struct cm_err *err);
int view_arc_create(struct view *v, struct view_node *parent, const char *name,
		    int flags, uint64_t mem, struct view_file **out,
		    struct view_attr *attr, struct view_open_out *oo,
		    struct cm_err *err);
/* The bytes a read of f needs before it runs (view_read_mem_need: a
 * reader's first window, when it holds none) and the read; mem, as for
 * view_arc_open, becomes that window (else it is given back); 0: a
 * reader that holds no memory takes it, waiting on this thread. */
uint64_t view_arc_read_need(struct view *v, struct view_file *f, uint64_t off,
			    size_t len);
int view_arc_read(struct view *v, struct view_file *f, uint64_t off, char *buf,
		  size_t len, uint64_t mem, size_t *got, struct cm_err *err);
int view_arc_write(struct view *v, struct view_file *f, uint64_t off,
		   const void *p, size_t n, struct cm_err *err);
int view_arc_write_nowait(struct view *v, struct view_file *f, uint64_t off,
			  const void *p, size_t n);
int view_arc_flush(struct view *v, struct view_file *f, struct cm_err *err);
int view_arc_fsync(struct view *v, struct view_file *f, struct cm_err *err);
/* The last close; abort: drop an unfinished upload (view_free). */
void view_arc_close(struct view *v, struct view_file *f, bool abort);
int view_arc_setattr(struct view *v, struct view_node *n, struct view_file *f,
		     unsigned what, uint64_t size, struct cm_err *err);
int view_arc_unlink(struct view *v, struct view_node *parent, const char *name,
		    struct cm_err *err);
int view_arc_mkdir(struct view *v, struct view_node *parent, const char *name,
		   struct view_attr *out, struct cm_err *err);
int view_arc_rmdir(struct view *v, struct view_node *parent, const char *name,
		   struct cm_err *err);

/* view_tree.c: archives' trees, read-only (see there) */
#define VIEW_FILES_NAME "files" /* vaults/V/RP/files */
#define VIEW_TREE_SUFFIX ".d"	/* archive/STORE/KEY.d */
/* The key of the archive recovery point `rp` of vault index `vault` was
 * archived into, when its job finished with an archive in the view's
 * store whose index is there (may ask the store, once per archive); NULL
 * otherwise. *mtime: when the job finished. Caller frees. */
char *view_tree_rp_key(struct view *v, size_t vault, const char *rp,
		       time_t *mtime);
/* The archive key is known to have no tree (a raw archive's index, or no
 * index): no KEY.d for it. No network. */
bool view_tree_unbrowsable(struct view *v, const char *key);
/* Under ->lock: the root node `name` in parent for the archive key (made,
 * or replaced when it showed another archive). */
struct view_node *view_tree_root_locked(struct view *v,
					struct view_node *parent,
					const char *name, const char *key,
					time_t mtime);
/* Under ->lock: the node of a tree item of directory handle d (a listed
 * root or entry), made if needed. */
struct view_node *view_tree_item_node_locked(struct view *v,
					     struct view_node *parent,
					     const struct dir_item *it);
void view_tree_attr_locked(struct view *v, const struct view_node *n,
			   struct view_attr *out);
int view_tree_lookup(struct view *v, struct view_node *parent,
		     const char *name, struct view_attr *out,
		     struct cm_err *err);
/* The listing of a tree directory's handle, once (its first readdir). */
int view_tree_dir_load(struct view *v, struct view_dir *d, struct cm_err *err);
int view_tree_open(struct view *v, struct view_file *f, int flags,
		   struct view_open_out *oo, struct cm_err *err);
int view_tree_read(struct view *v, struct view_file *f, uint64_t off,
		   char *buf, size_t len, size_t *got, struct cm_err *err);
void view_tree_close(struct view *v, struct view_file *f);
int view_tree_readlink(struct view *v, struct view_node *n, char **out,
		       struct cm_err *err);
/* Close the archives unused for a while (all: every one). */
void view_tree_reap(struct view *v, bool all);
/* view_free, before the store goes: stop the checker, close them all. */
void view_tree_stop(struct view *v);
void view_tent_free(struct view_tent *t);

/* view_uploads.c: the crash record of writers, one file each in
 * STATEDIR/view/uploads, written (atomically) before the writer makes
 * what a crash would leave behind. */
#define VIEW_UPLOAD_ID_SIZE 64
int view_uploads_init(struct view *v, struct cm_err *err);
/* Create (id[0] == '\0': a new name goes into id) or replace the record. */
int view_upload_save(struct view *v, char id[VIEW_UPLOAD_ID_SIZE],
		     const char *key, const char *upload_id,
		     const char *tmp_path, struct cm_err *err);
/* Remove it (id "" is a no-op); id is reset to "". */
void view_upload_forget(struct view *v, char id[VIEW_UPLOAD_ID_SIZE]);

#endif
