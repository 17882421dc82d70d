/*
 * view_archive.c - archive/STORE/KEY...: the destination as a file tree.
 *
 * Names. A directory is a key prefix ending in '/' ("" at the top), a file
 * an object key. A key that is both an object "a" and a prefix "a/" shows
 * as the directory. Keys with empty components ("a//b") or a component
 * "." or ".." cannot be reached, and are left out of listings.
 *
 * Listings come from the store (S3: ListObjectsV2, delimiter '/') page by
 * page: readdir holds one page of opts.list_max_keys entries (see
 * "directories" below). A directory that fits in one page is also cached
 * for opts.list_cache_ms for lookups. A lookup without a fresh listing
 * asks for the one name (HeadObject, then a one-key listing of "name/"). Nodes the store does not show yet - files
 * being written, directories made by mkdir - are "pinned": they hold a
 * reference, lookups find them first and listings include them.
 *
 * Reading (remote stores): two windows per open file. A read served from
 * a window near its end starts the next window on the read-ahead pool; a
 * miss fetches synchronously. The window grows from 1 MiB up to
 * opts.readahead_max while reads stay sequential, so memory is at most two
 * windows per open file. Every ranged GET must answer with the ETag seen
 * at open, else the read fails with EIO (the object changed). A local
 * store's reads go straight into the caller's buffer: a pread needs no
 * window.
 *
 * Writing: a new file (or, with allow_overwrite, an existing one opened
 * with O_TRUNC) streams into the store's writer. Each write must start
 * where the last ended; anything else fails with EINVAL and poisons the
 * file: the upload is aborted at once, later writes and close fail, and
 * no object appears. The object appears at the first flush (close) or
 * fsync; a write after that fails with EINVAL. Before a writer leaves
 * anything a crash would strand (a multipart upload, a temporary file) it
 * is recorded in view_uploads.c, and the record goes when it completes
 * or is aborted. view_arc_write_nowait is the same write for the adapter's
 * own thread: it takes the file's lock only if it is free and the bytes
 * only if the store can take them without waiting (S3: room already
 * reserved in the current part buffer), else leaves them to a worker.
 *
 * Scope: only the configured prefix is shown (v->scope, "" with
 * --whole-bucket or a local store). A directory above it lists just the
 * next step down, answers lookups of nothing else, and refuses to make or
 * remove anything (EACCES) - all without the store, so it needs no worker.
 *
 * One writer per name: a create (or an open for writing, with
 * allow_overwrite) claims the node under view->lock before the store is
 * asked whether the key exists; a second finds it claimed and gets EEXIST.
 * The claim ends when the object is complete or the writer gives up.
 *
 * Memory: read-ahead windows and (S3) part buffers come from v->budget.
 * A writer gets its first two part buffers at its start, and a reader its
 * first window at its first read: from the adapter, which waited for them
 * without a thread (view_open_mem_need, view_read_mem_need; fuse_ll.c), or
 * else through mem_take on the caller's thread. Later, the uploader makes
 * more buffers only while the budget has room, and a window is charged
 * before it is allocated: read-ahead only with room to spare, and a miss
 * with none makes do with the windows the reader holds (a window serves a
 * read in pieces). So a file that holds memory never waits for more, and
 * what files hold comes back as they close.
 *
 * Locks: file->lock is held across store calls of that file, and a
 * directory handle's lock (view_dir->lock) across its page fetch; both are
 * taken before view->lock, which guards only nodes and the listing cache
 * and is never held across a store call. A
 * reader's windows have their own lock (rd->lock), taken under file->lock
 * or alone by the read-ahead task.
 */
#include "view_int.h"

#include "aindex.h"
#include "log.h"
#include "mem.h"
#include "orch.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX	   1024
#define RA_MIN	   (1u << 20)
#define RA_THREADS 4

/* ---- names ------------------------------------------------------------- */

int view_arc_child_key(const char *dir, const char *name, bool is_dir,
		       char **out)
{
	size_t dl = strlen(dir), nl = strlen(name);

	*out = NULL;
	if (!nl || !strcmp(name, ".") || !strcmp(name, "..") ||
	    strchr(name, '/'))
		return -EINVAL;
	if (dl + nl + (is_dir ? 1 : 0) > KEY_MAX)
		return -ENAMETOOLONG;
	*out = cm_xasprintf("%s%s%s", dir, name, is_dir ? "/" : "");
	return 0;
}

const char *view_arc_child_name(const char *dir, const char *key, char *buf,
				size_t buflen)
{
	size_t dl = strlen(dir), kl = strlen(key), nl;
	const char *name;

	if (kl <= dl || strncmp(key, dir, dl) != 0)
		return NULL;
	name = key + dl;
	nl = kl - dl;
	if (name[nl - 1] == '/')
		nl--;
	if (nl == 0 || nl >= buflen || memchr(name, '/', nl))
		return NULL;
	memcpy(buf, name, nl);
	buf[nl] = '\0';
	if (!strcmp(buf, ".") || !strcmp(buf, ".."))
		return NULL;
	return buf;
}

/* s3://bucket/key or the local path, for messages */
static void where(struct view *v, const char *key, char *buf, size_t len)
{
	char *url = v->dest->ops->url(v->dest, key);

	snprintf(buf, len, "%s", url);
	free(url);
}

/* ---- the scope: the configured prefix, or the whole store ------------- */

/* For a directory key on the way down to the scope (a proper prefix of
 * it): its one child on that way, into buf. NULL when dir is in the scope
 * (everything below it is shown). */
static const char *scope_step(struct view *v, const char *dir, char *buf,
			      size_t len)
{
	size_t sl = strlen(v->scope), dl = strlen(dir), n;
	const char *next;

	if (dl >= sl || strncmp(v->scope, dir, dl) != 0)
		return NULL;
	next = v->scope + dl;
	n = strcspn(next, "/");
	if (n >= len)
		n = len - 1;
	memcpy(buf, next, n);
	buf[n] = '\0';
	return buf;
}

bool view_arc_on_way(struct view *v, const char *dir)
{
	char step[256];

	return v->scope && scope_step(v, dir, step, sizeof(step)) != NULL;
}

/* Nothing is made or removed on the way down to the scope: only the
 * configured prefix is the view's (--whole-bucket: all of it). */
static int outside_scope(struct view *v, const char *dir, const char *name,
			 struct cm_err *err)
{
	char w[1100];

	where(v, dir, w, sizeof(w));
	cm_warn("view: %s%s: outside the configured prefix %s (mount with "
		"--whole-bucket to write there)",
		w, name, v->scope);
	return cm_err_set(err, EACCES, "%s%s: outside the prefix %s", w, name,
			  v->scope);
}

/* ---- pinned nodes ------------------------------------------------------ */

static void pin_locked(struct view *v, struct view_node *n)
{
	if (n->pinned)
		return;
	if (v->npinned == v->pinned_cap) {
		v->pinned_cap = v->pinned_cap ? v->pinned_cap * 2 : 16;
		v->pinned =
		    cm_xrealloc(v->pinned, v->pinned_cap * sizeof(*v->pinned));
	}
	v->pinned[v->npinned++] = n;
	n->pinned = true;
	n->refs++;
}

static void unpin_locked(struct view *v, struct view_node *n)
{
	if (!n->pinned)
		return;
	for (size_t i = 0; i < v->npinned; i++) {
		if (v->pinned[i] == n) {
			v->pinned[i] = v->pinned[--v->npinned];
			break;
		}
	}
	n->pinned = false;
	view_node_unref_locked(v, n);
}

/* ---- the listing cache ------------------------------------------------- */

static void listing_free(struct view_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ents[i].name);
	free(l->ents);
	free(l->prefix);
	free(l);
}

static void listing_put_locked(struct view_listing *l)
{
	if (l && --l->refs == 0 && !l->cached)
		listing_free(l);
}

/* Take l out of the cache (freed once its users are done). */
static void uncache_locked(struct view *v, struct view_listing *l)
{
	struct view_listing **pp = &v->listings;

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	v->nlistings--;
	l->cached = false;
	l->next = NULL;
	if (l->refs == 0)
		listing_free(l);
}

/* A fresh cached listing of prefix, with a reference, or NULL. */
static struct view_listing *cached_locked(struct view *v, const char *prefix)
{
	uint64_t ttl = (uint64_t)v->opts.list_cache_ms * 1000000ull;
	uint64_t now = cm_now_ns();

	for (struct view_listing *l = v->listings; l; l = l->next) {
		if (strcmp(l->prefix, prefix) != 0)
			continue;
		if (now - l->fetched_ns >= ttl)
			return NULL;
		l->refs++;
		return l;
	}
	return NULL;
}

/* Forget the listing of prefix (after a change below it). */
static void listing_drop(struct view *v, const char *prefix)
{
	pthread_mutex_lock(&v->lock);
	for (struct view_listing *l = v->listings; l; l = l->next) {
		if (strcmp(l->prefix, prefix) == 0) {
			uncache_locked(v, l);
			break;
		}
	}
	pthread_mutex_unlock(&v->lock);
}

/* A complete listing (one page was all of it) for lookups: it, n sorted
 * by name, one entry a name. */
static void cache_put(struct view *v, const char *prefix,
		      const struct dir_item *it, size_t n)
{
	struct view_listing *l = cm_xcalloc(1, sizeof(*l));

	l->prefix = cm_xstrdup(prefix);
	l->ents = cm_xcalloc(n ? n : 1, sizeof(*l->ents));
	for (size_t i = 0; i < n; i++) {
		l->ents[i].name = cm_xstrdup(it[i].name);
		l->ents[i].obj = it[i].obj;
	}
	l->n = n;
	l->fetched_ns = cm_now_ns();
	l->cached = true;
	pthread_mutex_lock(&v->lock);
	for (struct view_listing *o = v->listings; o; o = o->next) {
		if (!strcmp(o->prefix, prefix)) {
			uncache_locked(v, o);
			break;
		}
	}
	l->next = v->listings;
	v->listings = l;
	v->nlistings++;
	while (v->nlistings > VIEW_LISTINGS_MAX) {
		struct view_listing *last = v->listings;

		while (last->next)
			last = last->next;
		uncache_locked(v, last);
	}
	pthread_mutex_unlock(&v->lock);
}

static const struct view_lentry *listing_find(const struct view_listing *l,
					      const char *name)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->ents[mid].name, name);

		if (c == 0)
			return &l->ents[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- archives' trees: KEY.d -------------------------------------------- */

/*
 * An object KEY with KEY.index beside it shows a directory KEY.d, its
 * tree (view_tree.c), unless the store has a KEY.d of its own (the real
 * one wins) or the archive is known to have no tree (a raw image's
 * index). From listings: both names on one page (they sort next to each
 * other: only keys that start with KEY and a byte below '.' come between
 * them, so a page boundary between the two is rare, and then KEY.d is
 * found by a lookup, not listed).
 */

/* name with suffix cut off, when it ends so (and has something before) */
static char *cut_suffix(const char *name, const char *suffix)
{
	size_t nl = strlen(name), sl = strlen(suffix);

	if (nl <= sl || strcmp(name + nl - sl, suffix) != 0)
		return NULL;
	return cm_xstrndup(name, nl - sl);
}

/* items[lo, hi), sorted by name with one entry a name: the one named so */
static const struct dir_item *items_find(const struct dir_item *items,
					 size_t lo, size_t hi,
					 const char *name)
{
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(items[mid].name, name);

		if (c == 0)
			return &items[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int item_cmp(const void *x, const void *y);

/* Add KEY.d beside every object of the page [first, d->n) whose index is
 * on it too; cap is d->items' capacity. */
static void page_trees(struct view *v, struct view_dir *d, size_t first,
		       size_t *cap)
{
	size_t n = d->n;
	bool added = false;

	for (size_t i = first; i < n; i++) {
		const struct dir_item *it = &d->items[i], *o;
		char *idx, *name, *key;
		time_t mtime = it->obj.mtime;
		bool taken = false;

		if (it->kind != VK_ARC_FILE)
			continue;
		idx = cm_xasprintf("%s%s", it->name, AIDX_SUFFIX);
		o = items_find(d->items, first, n, idx);
		free(idx);
		if (!o || o->kind != VK_ARC_FILE)
			continue;
		name = cm_xasprintf("%s%s", it->name, VIEW_TREE_SUFFIX);
		taken = items_find(d->items, first, n, name) != NULL;
		for (size_t j = 2; j < first && !taken; j++)
			taken = !strcmp(d->items[j].name, name); /* pinned */
		key = cm_xasprintf("%s%s", d->node->key, it->name);
		if (!taken && !view_tree_unbrowsable(v, key)) {
			struct dir_item *t = view_dir_add(d, cap, name,
							  VK_TREE_ROOT,
							  S_IFDIR);

			t->key = key;
			key = NULL;
			t->obj.is_dir = true;
			t->obj.mtime = mtime;
			t->de.attr.mtime = mtime;
			added = true;
		}
		free(key);
		free(name);
	}
	if (added)
		qsort(d->items + first, d->n - first, sizeof(*d->items),
		      item_cmp);
}

/* Under view->lock: KEY.d (name) of a complete listing l of parent, when
 * the listing holds the object and its index; *mtime: the object's. */
static bool listing_tree(const struct view_listing *l, const char *name,
			 time_t *mtime)
{
	const struct view_lentry *e, *ie;
	char *base = cut_suffix(name, VIEW_TREE_SUFFIX), *idx;

	if (!base)
		return false;
	idx = cm_xasprintf("%s%s", base, AIDX_SUFFIX);
	e = listing_find(l, base);
	ie = listing_find(l, idx);
	free(base);
	free(idx);
	if (!e || e->obj.is_dir || !ie || ie->obj.is_dir)
		return false;
	*mtime = e->obj.mtime;
	return true;
}

/* KEY.d in parent without a listing: the store has the object and its
 * index (two HeadObjects). */
static bool store_tree(struct view *v, const char *dir, const char *name,
		       time_t *mtime)
{
	char *base = cut_suffix(name, VIEW_TREE_SUFFIX), *key, *idx;
	struct view_obj obj, iobj;
	bool yes;

	if (!base)
		return false;
	key = cm_xasprintf("%s%s", dir, base);
	idx = cm_xasprintf("%s%s", key, AIDX_SUFFIX);
	yes = v->store->ops->stat(v->store, key, &obj, NULL) == 0 &&
	      !obj.is_dir &&
	      v->store->ops->stat(v->store, idx, &iobj, NULL) == 0 &&
	      !iobj.is_dir;
	if (yes)
		*mtime = obj.mtime;
	free(base);
	free(key);
	free(idx);
	return yes;
}

/* The node of KEY.d `name` in parent, counted as a lookup. */
static int tree_root(struct view *v, struct view_node *parent,
		     const char *name, time_t mtime, struct view_attr *out)
{
	size_t nl = strlen(name) - strlen(VIEW_TREE_SUFFIX);
	char *key = cm_xasprintf("%s%.*s", parent->key, (int)nl, name);
	struct view_node *n;

	if (view_tree_unbrowsable(v, key)) {
		free(key);
		return -ENOENT;
	}
	pthread_mutex_lock(&v->lock);
	n = view_tree_root_locked(v, parent, name, key, mtime);
	n->nlookup++;
	view_attr_locked(v, n, out);
	pthread_mutex_unlock(&v->lock);
	free(key);
	return 0;
}

/* ---- nodes ------------------------------------------------------------- */

/* Under view->lock: the node for `name` in parent as the store shows it,
 * made or replaced (a file that became a directory gets a new node). */
static struct view_node *arc_node_locked(struct view *v,
					 struct view_node *parent,
					 const char *name,
					 const struct view_obj *obj)
{
	enum view_kind kind = obj->is_dir ? VK_ARC_DIR : VK_ARC_FILE;
	struct view_node *n = view_child_locked(v, parent, name);

	if (n && n->kind != kind && !n->pinned) {
		view_unhash_locked(v, n);
		n = NULL;
	}
	if (!n) {
		n = view_node_new_locked(v, parent, name, kind);
		if (view_arc_child_key(parent->key, name, obj->is_dir, &n->key))
			n->key = cm_xstrdup(""); /* checked by the caller */
	}
	if (kind == VK_ARC_FILE && !n->writers) {
		n->size = obj->size;
		n->mtime = obj->mtime;
	}
	return n;
}

int view_arc_lookup(struct view *v, struct view_node *parent, const char *name,
		    struct view_attr *out, struct cm_err *err)
{
	struct view_listing *l = NULL;
	struct view_obj obj;
	struct view_node *n;
	char *key = NULL, *dkey = NULL;
	bool found = false, children = false, tree = false;
	time_t tree_mtime = 0;
	char step[256];
	const char *on_way;
	int rc;

	memset(&obj, 0, sizeof(obj));
	rc = view_arc_child_key(parent->key, name, false, &key);
	if (rc == 0)
		rc = view_arc_child_key(parent->key, name, true, &dkey);
	if (rc)
		goto out;
	on_way = scope_step(v, parent->key, step, sizeof(step));
	if (on_way && strcmp(name, on_way) != 0) {
		rc = -ENOENT; /* outside the scope: not shown */
		goto out;
	}

	pthread_mutex_lock(&v->lock);
	n = view_child_locked(v, parent, name);
	if (n && n->pinned) {
		n->nlookup++;
		view_attr_locked(v, n, out);
		pthread_mutex_unlock(&v->lock);
		goto out;
	}
	l = on_way ? NULL : cached_locked(v, parent->key);
	if (on_way) {
		pthread_mutex_unlock(&v->lock);
	} else if (l) {
		const struct view_lentry *e = listing_find(l, name);

		if (e) {
			obj = e->obj;
			found = true;
		} else {
			tree = listing_tree(l, name, &tree_mtime);
		}
		listing_put_locked(l);
		pthread_mutex_unlock(&v->lock);
		if (tree) {
			rc = tree_root(v, parent, name, tree_mtime, out);
			goto out;
		}
		if (!found) {
			rc = -ENOENT;
			goto out;
		}
	} else {
		pthread_mutex_unlock(&v->lock);
		rc = v->store->ops->stat(v->store, key, &obj, err);
		if (rc == -ENOENT) {
			if (err)
				cm_err_clear(err);
			rc = v->store->ops->has_children(v->store, dkey,
							 &children, err);
			if (rc == 0 && !children)
				rc = -ENOENT;
			memset(&obj, 0, sizeof(obj));
			obj.is_dir = true;
		}
		if (rc == -ENOENT &&
		    store_tree(v, parent->key, name, &tree_mtime)) {
			if (err)
				cm_err_clear(err);
			rc = tree_root(v, parent, name, tree_mtime, out);
			goto out;
		}
		if (rc)
			goto out;
	}
	if (on_way) {
		/* the way to the scope is shown even while empty */
		memset(&obj, 0, sizeof(obj));
		obj.is_dir = true;
	}
	pthread_mutex_lock(&v->lock);
	n = arc_node_locked(v, parent, name, &obj);
	n->nlookup++;
	view_attr_locked(v, n, out);
	pthread_mutex_unlock(&v->lock);
out:
	free(key);
	free(dkey);
	return rc;
}

/* ---- directories ------------------------------------------------------- */

/*
 * A directory of the store is read page by page (view_dir in view_int.h):
 * the handle holds one page, opts.list_max_keys entries at most, however
 * large the directory. Offsets count entries from the start of this
 * reading; a page is known by its first offset and the store's cursor, so
 * a readdir that goes on where the last ended asks for the next page, and
 * a seekdir back (or telldir's offset reused) lists that page again and
 * skips to the offset. S3 lists in key order from a cursor, so names that
 * stay put are listed once even while others come and go between pages;
 * entries added or removed meanwhile may or may not show, and a page that
 * changed before a seekdir back into it can shift its offsets (POSIX
 * leaves both unspecified). A name that is both an object "a" and a
 * prefix "a/" shows once when both fall on one page, as the directory; on
 * two pages it shows twice (a layout vaultfs never writes).
 */

static void item_push(struct view_dir *d, size_t *cap, const char *name,
		      enum view_kind kind, const struct view_obj *obj)
{
	struct dir_item *it = view_dir_add(
	    d, cap, name, kind, kind == VK_ARC_FILE ? S_IFREG : S_IFDIR);

	if (obj)
		it->obj = *obj;
	it->de.attr.size = it->obj.size;
	it->de.attr.mtime = it->obj.mtime;
}

/* by name; directories first among equal names: they win */
static int item_cmp(const void *x, const void *y)
{
	const struct dir_item *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : (int)b->obj.is_dir - (int)a->obj.is_dir;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct page_acc {
	struct view_dir *d;
	size_t cap;
};

static int page_add(void *ctx, const char *name, const struct view_obj *obj)
{
	struct page_acc *a = ctx;
	struct view_dir *d = a->d;

	if (!strncmp(name, VIEW_LOCAL_TMP_PREFIX,
		     strlen(VIEW_LOCAL_TMP_PREFIX)))
		return 0;
	/* page 0 lists it from the view already */
	if (d->npinned && bsearch(&name, d->pinned, d->npinned,
				  sizeof(*d->pinned), str_cmp))
		return 0;
	item_push(d, &a->cap, name, obj->is_dir ? VK_ARC_DIR : VK_ARC_FILE,
		  obj);
	return 0;
}

/* Page 0 opens with ".", ".." and what the store does not show yet (the
 * pinned children), remembered to be left out of the store's pages. */
static void page_head(struct view *v, struct view_dir *d, size_t *cap)
{
	struct view_node *n = d->node;

	for (size_t i = 0; i < d->npinned; i++)
		free(d->pinned[i]);
	d->npinned = 0;
	item_push(d, cap, ".", n->kind, NULL);
	item_push(d, cap, "..", VK_ARC_DIR, NULL);
	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->npinned; i++) {
		struct view_node *p = v->pinned[i];
		struct view_obj obj = {0};

		if (p->parent != n || !p->hashed)
			continue;
		obj.is_dir = p->kind == VK_ARC_DIR;
		obj.size = p->size;
		obj.mtime = p->mtime;
		item_push(d, cap, p->name, p->kind, &obj);
		d->pinned = cm_xrealloc(d->pinned, (d->npinned + 1) *
						       sizeof(*d->pinned));
		d->pinned[d->npinned++] = cm_xstrdup(p->name);
	}
	pthread_mutex_unlock(&v->lock);
	if (d->npinned) {
		qsort(d->items + 2, d->n - 2, sizeof(*d->items), item_cmp);
		qsort(d->pinned, d->npinned, sizeof(*d->pinned), str_cmp);
	}
}

/* Fill d with page d->cur, from the store. An empty page that has a next
 * (S3 may answer so; names the view cannot show) goes on to it, so a page
 * holds at least one entry unless it is the last. */
static int page_fetch(struct view *v, struct view_dir *d, struct cm_err *err)
{
	struct view_store *st = v->store;
	const struct dir_page *pg = &d->pages[d->cur];
	struct page_acc a = {d, 0};
	char *cursor = pg->cursor ? cm_xstrdup(pg->cursor) : NULL;
	char *next = NULL;
	unsigned requests = 0;
	size_t first, w;
	int rc;

	view_dir_clear(d);
	free(d->next);
	d->next = NULL;
	d->loaded = false;
	d->base = pg->start;
	if (d->cur == 0)
		page_head(v, d, &a.cap);
	first = d->n;
	for (;;) {
		rc = st->ops->list(st, d->node->key, cursor,
				   v->opts.list_max_keys, page_add, &a, &next,
				   err);
		free(cursor);
		cursor = NULL;
		requests++;
		if (rc) {
			free(next);
			view_dir_clear(d);
			return rc;
		}
		if (d->n > first || !next)
			break;
		cursor = next;
		next = NULL;
	}
	/* one entry a name, the directory winning */
	if (d->n - first > 1)
		qsort(d->items + first, d->n - first, sizeof(*d->items),
		      item_cmp);
	for (size_t i = w = first; i < d->n; i++) {
		if (w > first && !strcmp(d->items[w - 1].name, d->items[i].name)) {
			free(d->items[i].name);
			continue;
		}
		d->items[w++] = d->items[i];
	}
	d->n = w;
	d->next = next;
	d->loaded = true;
	cm_debug("view: archive/%s/%s: page %zu at offset %llu: %zu entries "
		 "(max-keys %u, %u request%s)%s",
		 st->name, d->node->key, d->cur, (unsigned long long)d->base,
		 d->n - first, v->opts.list_max_keys, requests,
		 requests == 1 ? "" : "s", next ? "" : ", the last");
	if (d->cur == 0 && !next)
		cache_put(v, d->node->key, d->items + first, d->n - first);
	/* after the cache, which holds the store's names only */
	page_trees(v, d, first, &a.cap);
	return 0;
}

/* The page after the one loaded: pages beyond it (from before a seekdir
 * back) started where the directory then was, so they go. */
static int page_next(struct view *v, struct view_dir *d, struct cm_err *err)
{
	for (size_t i = d->cur + 1; i < d->npages; i++)
		free(d->pages[i].cursor);
	d->npages = d->cur + 1;
	d->pages = cm_xrealloc(d->pages, (d->npages + 1) * sizeof(*d->pages));
	d->pages[d->npages].start = d->base + d->n;
	d->pages[d->npages].cursor = d->next;
	d->next = NULL;
	d->cur = d->npages++;
	return page_fetch(v, d, err);
}

int view_arc_seek(struct view *v, struct view_dir *d, uint64_t off,
		  struct cm_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (off == 0 && d->served) {
		/* rewinddir: the directory as it is now */
		d->cur = 0;
		rc = page_fetch(v, d, err);
	} else if (!d->loaded) {
		/* the last fetch failed (that readdir got its error): the
		 * same page again, never an early end */
		rc = page_fetch(v, d, err);
	}
	if (!rc && (off < d->base || off - d->base > d->n)) {
		/* a seekdir: the last page known to start at or before off
		 * (forward from the one loaded, if that is it) */
		size_t p = d->npages;

		while (p > 1 && d->pages[p - 1].start > off)
			p--;
		if (p - 1 != d->cur || off < d->base) {
			d->cur = p - 1;
			rc = page_fetch(v, d, err);
		}
	}
	while (!rc && off >= d->base + d->n && d->next)
		rc = page_next(v, d, err);
	d->served = true;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void view_arc_dir_free(struct view_dir *d)
{
	for (size_t i = 0; i < d->npages; i++)
		free(d->pages[i].cursor);
	free(d->pages);
	for (size_t i = 0; i < d->npinned; i++)
		free(d->pinned[i]);
	free(d->pinned);
	free(d->next);
	d->pages = NULL;
	d->pinned = NULL;
	d->next = NULL;
	d->npages = d->npinned = d->cur = 0;
	d->base = 0;
}

int view_arc_opendir(struct view *v, struct view_dir *d, struct cm_err *err)
{
	struct view_node *n = d->node;
	size_t cap = 0;
	char step[256];

	if (scope_step(v, n->key, step, sizeof(step))) {
		/* on the way to the scope: only the next step of it */
		item_push(d, &cap, ".", n->kind, NULL);
		item_push(d, &cap, "..", VK_ARC_DIR, NULL);
		item_push(d, &cap, step, VK_ARC_DIR, NULL);
		return 0;
	}
	/* the first page now, so a directory that cannot be listed fails
	 * its opendir */
	view_arc_dir_free(d);
	d->paged = true;
	d->pages = cm_xcalloc(1, sizeof(*d->pages));
	d->npages = 1;
	d->cur = 0;
	return page_fetch(v, d, err);
}

/* ---- open files -------------------------------------------------------- */

static void files_add(struct view *v, struct view_file *f)
{
	pthread_mutex_lock(&v->files_lock);
	if (v->nafiles == v->afiles_cap) {
		v->afiles_cap = v->afiles_cap ? v->afiles_cap * 2 : 16;
		v->afiles =
		    cm_xrealloc(v->afiles, v->afiles_cap * sizeof(*v->afiles));
	}
	v->afiles[v->nafiles++] = f;
	pthread_mutex_unlock(&v->files_lock);
}

static void files_remove(struct view *v, struct view_file *f)
{
	pthread_mutex_lock(&v->files_lock);
	for (size_t i = 0; i < v->nafiles; i++) {
		if (v->afiles[i] == f) {
			v->afiles[i] = v->afiles[--v->nafiles];
			break;
		}
	}
	pthread_mutex_unlock(&v->files_lock);
}

/* ---- memory ----------------------------------------------------------- */

/*
 * Take n bytes of the budget for `key`, waiting on this thread when they
 * are not there: only for a caller that did not get the memory first (a
 * unit test, not the adapter, whose workers must never wait for memory:
 * the files that hold it need workers to give it back).
 */
static int mem_take(struct view *v, uint64_t n, const char *key,
		    struct cm_err *err)
{
	if (cm_budget_take(v->budget, n))
		return cm_err_set(err, ECANCELED,
				  "%s: no memory (shutting down)", key);
	return 0;
}

/* Memory the adapter took for a file that does not keep it. */
static void mem_unused(struct view *v, uint64_t mem)
{
	if (mem)
		cm_budget_give(v->budget, mem);
}

/* ---- reading ----------------------------------------------------------- */

enum win_state {
	WIN_EMPTY = 0,
	WIN_LOADING,
	WIN_READY,
	WIN_FAILED,
};

struct ra_win {
	uint64_t off; /* protected by rd->lock */
	size_t want;  /* protected by rd->lock: bytes asked for */
	size_t len;   /* protected by rd->lock: bytes there */
	size_t cap;
	char *data;
	enum win_state state;	  /* protected by rd->lock */
	int err;		  /* protected by rd->lock */
	char msg[CM_ERR_MSG_MAX]; /* protected by rd->lock */
};

struct view_reader {
	struct view *v;
	struct view_store_rd *rd;
	const char *key; /* the node's, for messages */
	uint64_t size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ra_win win[2];
	/* bytes of the budget the windows hold (a window's cap, or what was
	 * taken for it to grow to as it loads): changed under ->lock, read
	 * without it by view_arc_read_need; it only grows */
	atomic_uint_fast64_t held;
	size_t window;	   /* protected by ->lock */
	uint64_t next_seq; /* protected by ->lock: end of the last read */
	unsigned tasks;	   /* protected by ->lock: read-aheads */
};

struct ra_task {
	struct view_reader *r;
	struct ra_win *w;
};

/* Fill w (state LOADING, off and want set) from the store; no lock held
 * while reading. */
static void win_load(struct view_reader *r, struct ra_win *w)
{
	struct view *v = r->v;
	struct cm_err err;
	size_t got = 0;
	int rc;

	cm_err_clear(&err);
	if (w->cap < w->want) {
		/* the bytes were taken from the budget by the caller */
		free(w->data);
		w->cap = w->want;
		w->data = cm_xmalloc(w->cap);
	}
	rc = v->store->ops->read(r->rd, w->off, w->data, w->want, &got, &err);
	pthread_mutex_lock(&r->lock);
	w->len = got;
	w->err = rc;
	w->state = rc ? WIN_FAILED : WIN_READY;
	snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void ra_task_run(void *arg)
{
	struct ra_task *t = arg;
	struct view_reader *r = t->r;

	win_load(r, t->w);
	pthread_mutex_lock(&r->lock);
	r->tasks--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	free(t);
}

static bool win_has(const struct ra_win *w, uint64_t off)
{
	return (w->state == WIN_READY || w->state == WIN_LOADING ||
		w->state == WIN_FAILED) &&
	       off >= w->off && off < w->off + w->want;
}

/* Under r->lock: start loading [off, off + want) into w in the background
 * (or not at all: read-ahead is a hint). */
static void prefetch_locked(struct view_reader *r, struct ra_win *w,
			    uint64_t off)
{
	struct ra_task *t;

	size_t want;

	if (off >= r->size || w->state == WIN_LOADING || !r->v->ra_pool)
		return;
	want = r->size - off < r->window ? (size_t)(r->size - off) : r->window;
	/* only with memory to spare, else in the window it has (if any);
	 * the window is made here, so that its bytes and what was taken
	 * agree whatever becomes of the task */
	if (want > w->cap && cm_budget_try(r->v->budget, want - w->cap)) {
		atomic_fetch_add(&r->held, want - w->cap);
		free(w->data);
		w->data = cm_xmalloc(want);
		w->cap = want;
	}
	if (want > w->cap)
		want = w->cap;
	if (!want)
		return;
	w->off = off;
	w->want = want;
	w->state = WIN_LOADING;
	t = cm_xmalloc(sizeof(*t));
	t->r = r;
	t->w = w;
	r->tasks++;
	if (cm_pool_submit(r->v->ra_pool, ra_task_run, t) != 0) {
		r->tasks--;
		w->state = WIN_EMPTY;
		free(t);
	}
}

static int reader_read(struct view_reader *r, uint64_t off, char *buf,
		       size_t len, size_t *got, struct cm_err *err)
{
	uint64_t need;
	size_t want;
	int rc = 0;

	*got = 0;
	if (off >= r->size || !len)
		return 0;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	pthread_mutex_lock(&r->lock);
	while (*got < len) {
		uint64_t at = off + *got;
		struct ra_win *w = NULL, *other;
		size_t n;

		for (int i = 0; i < 2; i++)
			if (win_has(&r->win[i], at))
				w = &r->win[i];
		if (w && w->state == WIN_LOADING) {
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		if (w && w->state == WIN_FAILED) {
			rc = cm_err_set(err, -w->err, "%s", w->msg);
			w->state = WIN_EMPTY;
			break;
		}
		if (w && at >= w->off + w->len && w->len < w->want)
			break; /* the object ends early: it was replaced */
		if (!w || at >= w->off + w->len) {
			/* a miss: fetch here, in this thread */
			bool seq = at == r->next_seq;

			r->window = seq ? r->window * 2 : RA_MIN;
			if (r->window > r->v->opts.readahead_max)
				r->window = r->v->opts.readahead_max;
			if (r->window < len - *got)
				r->window = len - *got;
			/* the window not loading, the older if both idle */
			if (r->win[0].state == WIN_LOADING)
				w = &r->win[1];
			else if (r->win[1].state == WIN_LOADING)
				w = &r->win[0];
			else
				w = r->win[0].off <= r->win[1].off ? &r->win[0]
								   : &r->win[1];
			if (w->state == WIN_LOADING) {
				pthread_cond_wait(&r->cond, &r->lock);
				continue;
			}
			want = r->size - at < r->window
				   ? (size_t)(r->size - at)
				   : r->window;
			need = 0;
			if (want > w->cap &&
			    cm_budget_try(r->v->budget, want - w->cap)) {
				atomic_fetch_add(&r->held, want - w->cap);
			} else if (want > w->cap) {
				/* no memory to spare: a window the reader
				 * holds serves the read, in pieces if it is
				 * small; only a reader that holds none waits
				 * (a caller that did not give it its first) */
				other = w == &r->win[0] ? &r->win[1]
							: &r->win[0];
				if (!w->cap && other->state == WIN_LOADING) {
					pthread_cond_wait(&r->cond, &r->lock);
					continue;
				}
				if (!w->cap && other->cap)
					w = other;
				if (!w->cap)
					need = want;
				else if (want > w->cap)
					want = w->cap;
			}
			w->off = at;
			w->want = want;
			w->state = WIN_LOADING;
			pthread_mutex_unlock(&r->lock);
			/* waits on this thread, holding no lock other
			 * readers need */
			if (need) {
				rc = mem_take(r->v, need, r->key, err);
				if (rc) {
					pthread_mutex_lock(&r->lock);
					w->state = WIN_EMPTY;
					pthread_cond_broadcast(&r->cond);
					break;
				}
				atomic_fetch_add(&r->held, need);
			}
			win_load(r, w);
			pthread_mutex_lock(&r->lock);
			continue;
		}
		n = (size_t)(w->off + w->len - at);
		if (n > len - *got)
			n = len - *got;
		memcpy(buf + *got, w->data + (at - w->off), n);
		*got += n;
		/* past the middle of this window: the next one, ahead */
		other = w == &r->win[0] ? &r->win[1] : &r->win[0];
		if (at + n >= w->off + w->len / 2 &&
		    w->off + w->len < r->size &&
		    !win_has(other, w->off + w->len)) {
			if (r->window < r->v->opts.readahead_max)
				r->window *= 2;
			if (r->window > r->v->opts.readahead_max)
				r->window = r->v->opts.readahead_max;
			prefetch_locked(r, other, w->off + w->len);
		}
	}
	r->next_seq = off + *got;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* The memory the adapter waited for (view_arc_read_need) becomes r's first
 * window; what r does not take (it holds memory already: another read got
 * there first) is given back by the caller. */
static uint64_t reader_grant(struct view_reader *r, uint64_t mem)
{
	struct ra_win *w = &r->win[0];

	if (!mem)
		return 0;
	pthread_mutex_lock(&r->lock);
	if (!atomic_load(&r->held) && r->win[0].state != WIN_LOADING &&
	    r->win[1].state != WIN_LOADING) {
		free(w->data);
		w->data = cm_xmalloc(mem);
		w->cap = mem;
		w->state = WIN_EMPTY;
		atomic_store(&r->held, mem);
		mem = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return mem;
}

static void reader_free(struct view *v, struct view_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	while (r->tasks)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	v->store->ops->close_read(r->rd);
	for (int i = 0; i < 2; i++)
		free(r->win[i].data);
	cm_budget_give(v->budget, atomic_load(&r->held));
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

/* ---- writing ----------------------------------------------------------- */

struct view_writer {
	struct view *v;
	struct view_store_wr *w;
	char *key;
	uint64_t written;
	int failed; /* a negative errno: poisoned */
	bool finished;
	char rec[VIEW_UPLOAD_ID_SIZE]; /* the crash record, "" when none */
};

static int writer_record(void *ctx, const char *upload_id, const char *tmp_path,
			 struct cm_err *err)
{
	struct view_writer *aw = ctx;

	return view_upload_save(aw->v, aw->rec, aw->key, upload_id, tmp_path,
				err);
}

/* Under f->lock: give up the writer's upload; the file is poisoned. */
static void writer_poison(struct view *v, struct view_writer *aw, int rc)
{
	if (aw->failed)
		return;
	aw->failed = rc;
	atomic_fetch_add(&v->write_errors, 1);
	if (aw->w) {
		v->store->ops->close_write(aw->w);
		aw->w = NULL;
	}
	view_upload_forget(v, aw->rec);
}

/* Under f->lock: n more bytes were written. */
static void writer_advance(struct view *v, struct view_file *f, size_t n)
{
	f->wr->written += n;
	atomic_fetch_add(&v->bytes_written, n);
	pthread_mutex_lock(&v->lock);
	f->node->size = f->wr->written;
	pthread_mutex_unlock(&v->lock);
}

static int writer_finish(struct view *v, struct view_file *f,
			 struct cm_err *err)
{
	struct view_writer *aw = f->wr;
	struct view_node *n = f->node;
	struct view_obj obj;
	struct cm_err local;
	char w[1100];
	int rc;

	if (!err) {
		cm_err_clear(&local);
		err = &local;
	}
	if (aw->failed)
		return aw->failed;
	if (aw->finished)
		return 0;
	memset(&obj, 0, sizeof(obj));
	rc = v->store->ops->finish(aw->w, &obj, err);
	where(v, aw->key, w, sizeof(w));
	if (rc) {
		cm_warn("view: %s: %s", w, err->msg);
		writer_poison(v, aw, rc == -EINVAL ? -EIO : rc);
		return aw->failed;
	}
	aw->finished = true;
	v->store->ops->close_write(aw->w);
	aw->w = NULL;
	view_upload_forget(v, aw->rec);
	atomic_fetch_add(&v->objects_written, 1);
	cm_info("view: %s: written (%llu bytes)", w,
		(unsigned long long)aw->written);
	pthread_mutex_lock(&v->lock);
	n->size = aw->written;
	n->mtime = obj.mtime ? obj.mtime : time(NULL);
	if (n->writers)
		n->writers--;
	unpin_locked(v, n);
	pthread_mutex_unlock(&v->lock);
	atomic_fetch_sub(&v->uploads_open, 1);
	listing_drop(v, n->parent->key);
	return 0;
}

/* Under view->lock: take the name of n for a writer, before anything is
 * asked of the store, so that of two creates of one name exactly one goes
 * on: -EEXIST when another writer has it. */
static int claim_locked(struct view *v, struct view_node *n)
{
	if (n->writers)
		return -EEXIST;
	n->writers++;
	n->size = 0;
	n->mtime = time(NULL);
	pin_locked(v, n);
	return 0;
}

/* Give a claimed name back: nothing appeared, it is the store's again. */
static void unclaim(struct view *v, struct view_node *n)
{
	pthread_mutex_lock(&v->lock);
	if (n->writers)
		n->writers--;
	if (!n->writers) {
		unpin_locked(v, n);
		view_unhash_locked(v, n);
	}
	pthread_mutex_unlock(&v->lock);
}

/* Start writing key for node n (claimed) into handle f. The memory of its
 * first part buffers is `mem`, taken by the adapter without a thread
 * (view_open_mem_need), or else taken here, on the caller's thread,
 * waiting while the budget is spent; then the store's writer owns it. */
static int writer_start(struct view *v, struct view_file *f, uint64_t mem,
			struct cm_err *err)
{
	struct view_writer *aw;
	struct view_node *n = f->node;
	int rc;

	if (!mem && v->store->budget && v->store->ops->write_memory) {
		mem = v->store->ops->write_memory(v->store);
		rc = mem_take(v, mem, n->key, err);
		if (rc)
			return rc;
	}
	aw = cm_xcalloc(1, sizeof(*aw));
	aw->v = v;
	aw->key = cm_xstrdup(n->key);
	rc = v->store->ops->open_write(v->store, n->key, mem, writer_record, aw,
				       &aw->w, err);
	if (rc) {
		view_upload_forget(v, aw->rec);
		free(aw->key);
		free(aw);
		return rc;
	}
	f->wr = aw;
	atomic_fetch_add(&v->uploads_open, 1);
	listing_drop(v, n->parent->key);
	return 0;
}

static void writer_free(struct view *v, struct view_file *f, bool abort)
{
	struct view_writer *aw = f->wr;
	struct view_node *n = f->node;
	struct cm_err err;
	bool gone;

	cm_err_clear(&err);
	if (!abort && !aw->finished && !aw->failed)
		writer_finish(v, f, &err);
	if (aw->w)
		v->store->ops->close_write(aw->w);
	view_upload_forget(v, aw->rec);
	gone = !aw->finished;
	if (gone) {
		unclaim(v, n);
		atomic_fetch_sub(&v->uploads_open, 1);
	}
	free(aw->key);
	free(aw);
	f->wr = NULL;
}

/* ---- the archive's operations ------------------------------------------ */

static int refuse_overwrite(struct view *v, const char *key, struct cm_err *err)
{
	char w[1100];

	where(v, key, w, sizeof(w));
	atomic_fetch_add(&v->write_errors, 1);
	cm_warn("view: %s exists: refusing to overwrite an archive (mount "
		"with --allow-overwrite)",
		w);
	return cm_err_set(err, EEXIST, "%s exists", w);
}

static int arc_open(struct view *v, struct view_file *f, int flags,
		    uint64_t *mem, struct view_open_out *oo, struct cm_err *err);

int view_arc_open(struct view *v, struct view_file *f, int flags,
		  uint64_t mem, struct view_open_out *oo, struct cm_err *err)
{
	int rc = arc_open(v, f, flags, &mem, oo, err);

	mem_unused(v, mem);
	return rc;
}

/* view_arc_open; *mem is zeroed once a writer has it. */
static int arc_open(struct view *v, struct view_file *f, int flags,
		    uint64_t *mem, struct view_open_out *oo, struct cm_err *err)
{
	struct view_node *n = f->node;
	struct view_obj obj;
	struct view_reader *r;
	bool writing = (flags & O_ACCMODE) != O_RDONLY;
	int rc;

	pthread_mutex_lock(&v->lock);
	if (n->writers) {
		pthread_mutex_unlock(&v->lock);
		/* a name being created: for a writer it exists (the kernel
		 * sends a second create of it as an open) */
		if (writing)
			return cm_err_set(err, EEXIST,
					  "%s is being written by another",
					  n->key);
		return cm_err_set(err, EBUSY, "%s is being written", n->key);
	}
	pthread_mutex_unlock(&v->lock);
	if (writing) {
		if (!v->opts.allow_overwrite)
			return refuse_overwrite(v, n->key, err);
		if (!(flags & O_TRUNC)) {
			cm_warn("view: %s: an archive object cannot be "
				"changed in place: open it with O_TRUNC to "
				"replace it",
				n->key);
			return cm_err_set(err, EPERM, "%s: not with O_TRUNC",
					  n->key);
		}
		pthread_mutex_lock(&v->lock);
		rc = claim_locked(v, n);
		pthread_mutex_unlock(&v->lock);
		if (rc)
			return cm_err_set(err, EEXIST,
					  "%s is being written by another",
					  n->key);
		pthread_mutex_lock(&f->lock);
		rc = writer_start(v, f, *mem, err);
		*mem = 0; /* the writer's, or given back */
		pthread_mutex_unlock(&f->lock);
		if (rc) {
			unclaim(v, n);
			return rc;
		}
		oo->direct_io = true;
		files_add(v, f);
		return 0;
	}
	memset(&obj, 0, sizeof(obj));
	rc = v->store->ops->stat(v->store, n->key, &obj, err);
	if (rc)
		return rc;
	if (obj.is_dir)
		return -EISDIR;
	pthread_mutex_lock(&v->lock);
	n->size = obj.size;
	n->mtime = obj.mtime;
	pthread_mutex_unlock(&v->lock);
	r = cm_xcalloc(1, sizeof(*r));
	r->v = v;
	r->key = n->key;
	r->size = obj.size;
	r->window = RA_MIN;
	r->next_seq = 0;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	rc = v->store->ops->open_read(v->store, n->key, &obj, &r->rd, err);
	if (rc) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		free(r);
		return rc;
	}
	f->rd = r;
	/* the page cache holds what was read: drop it, the object may have
	 * been replaced since */
	oo->keep_cache = false;
	files_add(v, f);
	return 0;
}

int view_arc_create(struct view *v, struct view_node *parent, const char *name,
		    int flags, uint64_t mem, struct view_file **out,
		    struct view_attr *attr, struct view_open_out *oo,
		    struct cm_err *err)
{
	struct view_node *n;
	struct view_file *f;
	struct view_obj obj;
	char *key = NULL;
	char step[256];
	bool exists = false;
	int rc;

	rc = view_arc_child_key(parent->key, name, false, &key);
	if (rc)
		return rc;
	if (scope_step(v, parent->key, step, sizeof(step))) {
		rc = outside_scope(v, parent->key, name, err);
		goto out;
	}
	/* check and claim the name under one lock: a second create of it
	 * finds it claimed (EEXIST), whatever the store says */
	pthread_mutex_lock(&v->lock);
	n = view_child_locked(v, parent, name);
	if (n && n->pinned) {
		rc = n->kind == VK_ARC_DIR ? -EISDIR : -EEXIST;
		pthread_mutex_unlock(&v->lock);
		if (rc == -EEXIST)
			cm_info("view: %s: being written by another: EEXIST",
				key);
		goto out;
	}
	if (n && n->kind != VK_ARC_FILE) {
		view_unhash_locked(v, n);
		n = NULL;
	}
	if (!n) {
		n = view_node_new_locked(v, parent, name, VK_ARC_FILE);
		n->key = key;
		key = NULL;
	}
	n->refs++; /* the handle's */
	claim_locked(v, n);
	pthread_mutex_unlock(&v->lock);
	f = view_file_new(n);

	memset(&obj, 0, sizeof(obj));
	rc = v->store->ops->stat(v->store, n->key, &obj, err);
	if (rc == 0) {
		exists = true;
	} else if (rc == -ENOENT) {
		if (err)
			cm_err_clear(err);
		rc = 0;
	}
	if (rc == 0 && exists && obj.is_dir)
		rc = -EISDIR;
	else if (rc == 0 && exists && (flags & O_EXCL))
		rc = -EEXIST;
	else if (rc == 0 && exists && !v->opts.allow_overwrite)
		rc = refuse_overwrite(v, n->key, err);
	if (rc == 0) {
		pthread_mutex_lock(&f->lock);
		rc = writer_start(v, f, mem, err);
		mem = 0; /* the writer's, or given back */
		pthread_mutex_unlock(&f->lock);
		if (rc)
			atomic_fetch_add(&v->write_errors, 1);
	}
	if (rc) {
		unclaim(v, n);
		view_file_free(v, f);
		goto out;
	}
	files_add(v, f);
	pthread_mutex_lock(&v->lock);
	n->nlookup++;
	view_attr_locked(v, n, attr);
	pthread_mutex_unlock(&v->lock);
	oo->direct_io = true;
	*out = f;
out:
	mem_unused(v, mem);
	free(key);
	return rc;
}

uint64_t view_arc_read_need(struct view *v, struct view_file *f, uint64_t off,
			    size_t len)
{
	struct view_reader *r = f->rd;
	uint64_t n = len > RA_MIN ? len : RA_MIN;

	/* without r->lock: the adapter's thread never waits for a reader
	 * (it may be held by one whose read-ahead waits for the pool) */
	if (!r || !v->store->remote || off >= r->size ||
	    atomic_load(&r->held))
		return 0;
	return n < r->size - off ? n : r->size - off;
}

int view_arc_read(struct view *v, struct view_file *f, uint64_t off, char *buf,
		  size_t len, uint64_t mem, size_t *got, struct cm_err *err)
{
	struct view_reader *r = f->rd;
	int rc;

	*got = 0;
	if (!r) {
		mem_unused(v, mem);
		return cm_err_set(err, EBADF, "%s: open for writing",
				  f->node->key);
	}
	if (v->store->remote) {
		mem_unused(v, reader_grant(r, mem));
		rc = reader_read(r, off, buf, len, got, err);
	} else {
		/* a pread: straight into buf, no window, no memory */
		mem_unused(v, mem);
		if (off >= r->size)
			return 0;
		if (len > r->size - off)
			len = (size_t)(r->size - off);
		rc = v->store->ops->read(r->rd, off, buf, len, got, err);
	}
	if (*got)
		atomic_fetch_add(&v->bytes_read, *got);
	return rc;
}

int view_arc_write(struct view *v, struct view_file *f, uint64_t off,
		   const void *p, size_t n, struct cm_err *err)
{
	struct view_writer *aw;
	struct cm_err local;
	char w[1100];
	int rc = 0;

	if (!err) {
		cm_err_clear(&local);
		err = &local;
	}
	pthread_mutex_lock(&f->lock);
	aw = f->wr;
	if (!aw) {
		rc = cm_err_set(err, EBADF, "%s: open for reading",
				f->node->key);
		goto out;
	}
	where(v, aw->key, w, sizeof(w));
	if (aw->failed) {
		rc = cm_err_set(err, -aw->failed,
				"%s: an earlier write "
				"failed",
				w);
		goto out;
	}
	if (aw->finished) {
		rc = cm_err_set(err, EINVAL,
				"%s: written after close or "
				"fsync, when the object was already complete",
				w);
		cm_warn("view: %s", err->msg);
		goto out;
	}
	if (off != aw->written) {
		rc = cm_err_set(err, EINVAL,
				"%s: write at offset %llu, "
				"but the object is written in order and "
				"has %llu bytes: upload aborted",
				w, (unsigned long long)off,
				(unsigned long long)aw->written);
		cm_warn("view: %s", err->msg);
		writer_poison(v, aw, -EINVAL);
		goto out;
	}
	rc = v->store->ops->write(aw->w, p, n, err);
	if (rc) {
		cm_warn("view: %s: %s", w, err->msg);
		writer_poison(v, aw, rc == -EINVAL ? -EIO : rc);
		goto out;
	}
	writer_advance(v, f, n);
out:
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int view_arc_write_nowait(struct view *v, struct view_file *f, uint64_t off,
			  const void *p, size_t n)
{
	struct view_writer *aw;
	int rc = -EAGAIN;

	if (!v->store->ops->write_nowait || pthread_mutex_trylock(&f->lock))
		return -EAGAIN;
	aw = f->wr;
	/* anything but the plain case goes through view_arc_write, which
	 * says what is wrong */
	if (aw && !aw->failed && !aw->finished && off == aw->written)
		rc = v->store->ops->write_nowait(aw->w, p, n);
	if (rc == 0)
		writer_advance(v, f, n);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int view_arc_flush(struct view *v, struct view_file *f, struct cm_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	/* Nothing written yet: a program that closes a copy of the
	 * descriptor before it writes (dd, a shell's redirection). Leave
	 * it to the next flush, or to the release. */
	if (f->wr && (f->wr->written || f->wr->failed))
		rc = writer_finish(v, f, err);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int view_arc_fsync(struct view *v, struct view_file *f, struct cm_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (f->wr)
		rc = writer_finish(v, f, err);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

void view_arc_close(struct view *v, struct view_file *f, bool abort)
{
	files_remove(v, f);
	pthread_mutex_lock(&f->lock);
	if (f->wr)
		writer_free(v, f, abort);
	if (f->rd) {
		reader_free(v, f->rd);
		f->rd = NULL;
	}
	pthread_mutex_unlock(&f->lock);
}

int view_arc_setattr(struct view *v, struct view_node *n, struct view_file *f,
		     unsigned what, uint64_t size, struct cm_err *err)
{
	uint64_t have;
	int rc = 0;

	if (!(what & VIEW_SET_SIZE) || n->kind != VK_ARC_FILE)
		return 0; /* times, modes and owners are not kept */
	if (f)
		pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&v->lock);
	have = n->size;
	pthread_mutex_unlock(&v->lock);
	if (f && f->wr)
		have = f->wr->written;
	if (size != have)
		rc = cm_err_set(err, EINVAL,
				"%s: archive objects cannot be "
				"truncated or extended",
				n->key);
	if (f)
		pthread_mutex_unlock(&f->lock);
	return rc;
}

int view_arc_unlink(struct view *v, struct view_node *parent, const char *name,
		    struct cm_err *err)
{
	struct view_node *n;
	char *key = NULL;
	char w[1100], step[256];
	int rc;

	rc = view_arc_child_key(parent->key, name, false, &key);
	if (rc)
		return rc;
	where(v, key, w, sizeof(w));
	if (scope_step(v, parent->key, step, sizeof(step))) {
		rc = outside_scope(v, parent->key, name, err);
		goto out;
	}
	if (!v->opts.allow_delete) {
		cm_warn("view: %s: refusing to delete an archive (mount with "
			"--allow-delete)",
			w);
		rc = cm_err_set(err, EPERM, "%s: deleting is not allowed", w);
		goto out;
	}
	pthread_mutex_lock(&v->lock);
	n = view_child_locked(v, parent, name);
	if (n && (n->writers || n->kind == VK_ARC_DIR)) {
		rc = n->writers ? -EBUSY : -EISDIR;
		pthread_mutex_unlock(&v->lock);
		goto out;
	}
	pthread_mutex_unlock(&v->lock);
	rc = v->store->ops->remove(v->store, key, err);
	if (rc)
		goto out;
	cm_info("view: %s: deleted", w);
	pthread_mutex_lock(&v->lock);
	n = view_child_locked(v, parent, name);
	if (n)
		view_unhash_locked(v, n);
	pthread_mutex_unlock(&v->lock);
	listing_drop(v, parent->key);
out:
	free(key);
	return rc;
}

int view_arc_mkdir(struct view *v, struct view_node *parent, const char *name,
		   struct view_attr *out, struct cm_err *err)
{
	struct view_obj obj;
	struct view_node *n;
	char *key = NULL;
	char step[256];
	bool children = false;
	int rc;

	rc = view_arc_child_key(parent->key, name, true, &key);
	if (rc)
		return rc;
	if (scope_step(v, parent->key, step, sizeof(step))) {
		rc = strcmp(step, name)
			 ? outside_scope(v, parent->key, name, err)
			 : -EEXIST;
		goto out;
	}
	pthread_mutex_lock(&v->lock);
	n = view_child_locked(v, parent, name);
	rc = n && n->pinned ? -EEXIST : 0;
	pthread_mutex_unlock(&v->lock);
	if (rc)
		goto out;
	rc = v->store->ops->has_children(v->store, key, &children, err);
	if (rc == 0 && children)
		rc = -EEXIST;
	if (rc)
		goto out;
	memset(&obj, 0, sizeof(obj));
	obj.is_dir = true;
	obj.mtime = time(NULL);
	pthread_mutex_lock(&v->lock);
	n = arc_node_locked(v, parent, name, &obj);
	if (n->kind != VK_ARC_DIR) {
		rc = -EEXIST;
	} else {
		pin_locked(v, n);
		n->mtime = obj.mtime;
		n->nlookup++;
		view_attr_locked(v, n, out);
	}
	pthread_mutex_unlock(&v->lock);
out:
	free(key);
	return rc;
}

int view_arc_rmdir(struct view *v, struct view_node *parent, const char *name,
		   struct cm_err *err)
{
	struct view_node *n;
	char *key = NULL, step[256];
	bool children = false, pinned_below = false;
	int rc;

	rc = view_arc_child_key(parent->key, name, true, &key);
	if (rc)
		return rc;
	if (scope_step(v, parent->key, step, sizeof(step))) {
		rc = outside_scope(v, parent->key, name, err);
		goto out;
	}
	rc = v->store->ops->has_children(v->store, key, &children, err);
	if (rc)
		goto out;
	pthread_mutex_lock(&v->lock);
	n = view_child_locked(v, parent, name);
	for (size_t i = 0; n && i < v->npinned; i++)
		if (v->pinned[i]->parent == n)
			pinned_below = true;
	if (children || pinned_below) {
		rc = -ENOTEMPTY;
	} else if (!n || !n->pinned || n->kind != VK_ARC_DIR) {
		rc = n && n->kind == VK_ARC_FILE ? -ENOTDIR : -ENOENT;
	} else {
		unpin_locked(v, n);
		view_unhash_locked(v, n);
	}
	pthread_mutex_unlock(&v->lock);
	if (rc == -ENOENT) {
		struct view_obj obj;

		/* a file of that name? */
		key[strlen(key) - 1] = '\0';
		if (v->store->ops->stat(v->store, key, &obj, NULL) == 0 &&
		    !obj.is_dir)
			rc = -ENOTDIR;
	}
out:
	free(key);
	return rc;
}

/* ---- set-up ------------------------------------------------------------ */

int view_arc_init(struct view *v, struct cm_err *err)
{
	const struct orch_config *cfg = v->cfg;
	const char *prefix = v->dest->prefix;

	v->scope = *prefix && !v->opts.whole_bucket
		       ? cm_xasprintf("%s/", prefix)
		       : cm_xstrdup("");
	v->store = view_store_new(v->dest, cfg->part_size, cfg->uploads, err);
	if (!v->store)
		return -EINVAL;
	v->store->budget = v->budget;
	v->store->exclusive = !v->opts.allow_overwrite;
	/* read-ahead pays where a read is a request */
	if (v->store->remote)
		v->ra_pool = cm_pool_new(RA_THREADS, 64);
	return 0;
}

void view_arc_release_all(struct view *v)
{
	/* what the kernel left open (the mount is gone): abort uploads */
	for (;;) {
		struct view_file *f = NULL;

		pthread_mutex_lock(&v->files_lock);
		if (v->nafiles)
			f = v->afiles[v->nafiles - 1];
		pthread_mutex_unlock(&v->files_lock);
		if (!f)
			break;
		view_arc_close(v, f, true);
		view_file_free(v, f);
	}
	cm_pool_free(v->ra_pool);
	v->ra_pool = NULL;
	pthread_mutex_lock(&v->lock);
	while (v->listings)
		uncache_locked(v, v->listings);
	while (v->npinned)
		unpin_locked(v, v->pinned[v->npinned - 1]);
	pthread_mutex_unlock(&v->lock);
	if (v->store)
		v->store->ops->free(v->store);
	v->store = NULL;
}
