/*
 * view_store.h - where the archive view's objects live: a small interface
 * with two implementations, S3 (view_store_s3.c: ListObjectsV2 with
 * delimiter '/', page by page, HeadObject, ranged GetObject, the streaming multipart
 * uploader, DeleteObject) and a local directory laid out like a bucket
 * (view_store_local.c: readdir, pread, a hidden temporary file renamed
 * into place).
 *
 * Keys are S3 keys: "a/b/c" for an object, "a/b/" for a directory prefix,
 * "" for the top. The local store maps them to paths below its directory
 * (keys are checked by the view: no "." or ".." component, no empty one).
 *
 * Threads: a store is shared by every thread; each reader or writer is
 * used by one thread at a time (the view holds the file's lock).
 */
#ifndef VAULTFS_VIEW_STORE_H
#define VAULTFS_VIEW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "budget.h"
#include "err.h"
#include "s3.h"

struct view_obj {
	bool is_dir; /* a prefix with something below it */
	uint64_t size;
	time_t mtime;
	char etag[S3_ETAG_MAX]; /* "" when the store has none */
};

/* One child of a listed prefix: name without the prefix and without a
 * trailing '/'. Borrowed for the call. Return 0 to go on, < 0 to fail. */
typedef int (*view_list_fn)(void *ctx, const char *name,
			    const struct view_obj *obj);

struct view_store;
struct view_store_rd;
struct view_store_wr;

/* Called once the writer has something a crash would leave behind (the
 * upload id; a temporary file's path); non-zero fails the write. */
typedef int (*view_wr_record_fn)(void *ctx, const char *upload_id,
				 const char *tmp_path, struct cm_err *err);

struct view_store_ops {
	/* One page of the children of prefix ("" or ending in '/'), in the
	 * store's order (S3: by key; local: the directory's own): at most
	 * max entries (0: the store's default) from `cursor` (NULL: the
	 * first page). *next is where the page after it starts (malloc'd,
	 * opaque: S3's continuation token, the local directory's telldir
	 * offset, which local filesystems keep stable across opens), NULL
	 * after the last page. A page may hold fewer than max entries, even
	 * none, and still have a next. Entries added or removed between two
	 * pages may or may not be listed; the others are listed once. */
	int (*list)(struct view_store *s, const char *prefix,
		    const char *cursor, unsigned max, view_list_fn fn,
		    void *ctx, char **next, struct cm_err *err);
	/* the object `key` (-ENOENT when there is none) */
	int (*stat)(struct view_store *s, const char *key, struct view_obj *out,
		    struct cm_err *err);
	/* whether anything lies below prefix (ending in '/') */
	int (*has_children)(struct view_store *s, const char *prefix, bool *out,
			    struct cm_err *err);
	int (*open_read)(struct view_store *s, const char *key,
			 const struct view_obj *obj, struct view_store_rd **out,
			 struct cm_err *err);
	/* up to len bytes at off; fewer only at the end */
	int (*read)(struct view_store_rd *rd, uint64_t off, void *buf,
		    size_t len, size_t *got, struct cm_err *err);
	void (*close_read)(struct view_store_rd *rd);
	/* reserved: bytes the caller took from s->budget for this writer,
	 * which it owns from now on (given back when it is closed), also
	 * when this fails */
	int (*open_write)(struct view_store *s, const char *key,
			  uint64_t reserved, view_wr_record_fn record,
			  void *ctx, struct view_store_wr **out,
			  struct cm_err *err);
	/* Memory a writer needs before its first byte (from s->budget): two
	 * part buffers; 0 for stores that keep nothing in memory. */
	uint64_t (*write_memory)(struct view_store *s);
	int (*write)(struct view_store_wr *w, const void *p, size_t n,
		     struct cm_err *err);
	/* The same, but only if it cannot wait (the bytes fit in room a
	 * write() already reserved): 0, or -EAGAIN and nothing taken (then
	 * write() it). Never fails otherwise: errors surface at the next
	 * write() or finish(). NULL: always -EAGAIN. */
	int (*write_nowait)(struct view_store_wr *w, const void *p, size_t n);
	/* the object appears; out (may be NULL) receives its attributes */
	int (*finish)(struct view_store_wr *w, struct view_obj *out,
		      struct cm_err *err);
	/* nothing appears; frees the writer (also after finish) */
	void (*close_write)(struct view_store_wr *w);
	int (*remove)(struct view_store *s, const char *key,
		      struct cm_err *err);
	/* Crash recovery: abort the multipart upload a writer recorded in
	 * bucket for key (upload_id NULL: it was about to be created at
	 * `since`, so any upload of key initiated since then). A no-op for
	 * stores without uploads. */
	int (*cleanup)(struct view_store *s, const char *bucket,
		       const char *key, const char *upload_id, time_t since,
		       struct cm_err *err);
	void (*free)(struct view_store *s);
};

struct view_store {
	const struct view_store_ops *ops;
	const char *name; /* the directory under archive/: the bucket, or
			     the store directory's last component */
	bool remote;	  /* reads benefit from read-ahead */
	/* set by the view after _new: finish() never replaces an object
	 * (-EEXIST; S3: If-None-Match: *, local: RENAME_NOREPLACE) */
	bool exclusive;
	/* set by the view after _new (borrowed, may be NULL): part buffers
	 * come from it; a writer's first two buffers are taken by the view
	 * before open_write (reserved, handed to the writer) */
	struct cm_budget *budget;
};

struct orch_dest;

/* The store that browses destination d (dest.h), chosen by its kind
 * (view_store.c's table); part_size and concurrency as below. NULL with
 * err set when d's kind has no store or the store cannot be opened. */
struct view_store *view_store_new(struct orch_dest *d, uint64_t part_size,
				  unsigned concurrency, struct cm_err *err);

/* client is borrowed; bucket copied. part_size 0 and concurrency 0: the
 * uploader's defaults. */
struct view_store *view_store_s3_new(struct s3_client *client,
				     const char *bucket, uint64_t part_size,
				     unsigned concurrency);
/* dir: an existing absolute directory (copied). */
struct view_store *view_store_local_new(const char *dir, struct cm_err *err);

/* Temporary files of the local store start with this (hidden from
 * listings). */
#define VIEW_LOCAL_TMP_PREFIX ".vaultfs-upload-"

#endif
