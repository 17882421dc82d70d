/*
 * view_tree.c - archives' trees: vaults/V/RP/files/ (the archive the
 * recovery point's job wrote) and archive/STORE/KEY.d/ (any object KEY
 * with KEY.index beside it), read-only, on the random-access reader of an
 * indexed archive (archiver/browse.h).
 *
 * Nodes. A tree root (VK_TREE_ROOT) knows its archive by key in the
 * view's store; the nodes below it are VK_TREE_DIR (directories) and
 * VK_TREE_ENTRY (everything else), each holding a copy of its index entry
 * (struct view_tent), made by the lookup or readdirplus that found it.
 * Their attributes are the entry's: type and permission bits, owner,
 * size (a hard link's target's, as browse.h reports it), mtime, device
 * numbers, the symlink's target, so getattr and readlink never ask the
 * archive. A root shows the view's own attributes until its archive is
 * opened, then the archive's root entry (synthesised by browse.h when the
 * tar has none).
 *
 * Archives. One struct view_tree per archive key, shared by every node
 * that shows it (files/ of a recovery point and KEY.d of the same object
 * read one cache): opened by the first request that needs it (on the
 * adapter's worker for a remote store), its decoded members cached in
 * the view's budget (view.memoryLimit; at most a quarter of it, 64 MiB
 * at most, per archive), and closed by the refresher once nothing used it
 * for TREE_IDLE_NS. A failed open is remembered: "not indexed" for
 * TREE_RECHECK_NS (an index may be uploaded later), a raw archive's index
 * for good (it has no tree), any other error for TREE_RETRY_NS. A remote
 * archive's index is copied whole into an unlinked temporary file at open
 * (index_copy) and read from there. A directory is listed at its first
 * readdir (view_tree_dir_load), not at opendir: the kernel keeps the
 * listing, and answers later readdirs itself.
 *
 * Learning "indexed" for files/: the recovery point's job must have
 * finished (succeeded or incomplete) with an archive in the view's store;
 * then the store is asked for KEY.index once (a local store at once; S3
 * by the checker thread, HeadObject, files/ shown meanwhile and withdrawn
 * if the answer is no), and the answer kept as above. Asking the manifest
 * would cost a GET and say only what the job meant to write; the index's
 * presence is what the reader needs.
 *
 * Everything is read-only: writes, creates, unlink, mkdir, setattr,
 * rename, link give EROFS.
 *
 * Locks: v->trees_lock guards the list of archives and their state, a
 * leaf never held with v->lock; nothing waits under it but for an open
 * in progress (trees_cond) and the checker for work (checks_cond), which
 * hold no lock. A user holds its
 * view_tree (users) from tree_get to tree_put, so its reader stays.
 */
#include "view_int.h"

#include "browse.h"
#include "log.h"
#include "mem.h"
#include "orch.h"
#include "timeutil.h"
#include "unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define TREE_TIMEOUT	1e6 /* an archive never changes: names, attrs */
#define ROOT_TIMEOUT	1.0 /* a root's attributes before it is opened */
#define SEC_NS		1000000000ull
#define TREE_IDLE_NS	(30 * SEC_NS)  /* unused, an archive is closed */
#define TREE_RECHECK_NS (60 * SEC_NS)  /* "not indexed" is asked again */
#define TREE_RETRY_NS	(5 * SEC_NS)   /* a failed open is tried again */
#define TREE_FORGET_NS	(600 * SEC_NS) /* what is known of a closed one */
#define TREES_KEEP	256	       /* closed ones remembered at least */
#define CACHE_MAX	(64ull << 20)
#define INDEX_COPY_MAX	(256ull << 20) /* a remote index copied whole */
#define INDEX_CHUNK	(4u << 20)

struct view_tent {
	struct aidx_entry e; /* the strings point into buf */
	char buf[];
};

enum tree_index {
	IDX_UNKNOWN = 0,
	IDX_YES,      /* KEY.index is there (or the archive opened) */
	IDX_NO,       /* it was not, at checked_ns */
	IDX_NEVER,    /* a raw archive's index: no tree, for good */
	IDX_PENDING,  /* for the checker to ask */
	IDX_CHECKING, /* the checker asks */
};

struct view_tree {
	char *key;
	/* set by the open, cleared by the reaper while users is 0: a user
	 * reads it without the lock */
	struct arc_browse *b;
	int index_fd; /* b's copy of a remote index, or -1 */
	bool opening;
	enum tree_index index;
	uint64_t checked_ns;
	int failed; /* the last open's error (negative errno), or 0 */
	char msg[CM_ERR_MSG_MAX];
	uint64_t failed_ns;
	unsigned users;
	uint64_t used_ns;
	/* the recovery point whose files/ asked the checker, and whether it
	 * was shown meanwhile */
	char *rp;
	size_t vault;
	bool shown;
	struct view_tree *next;
};

/* ---- entries ----------------------------------------------------------- */

static struct view_tent *tent_dup(const struct aidx_entry *e)
{
	const char *s[4] = {e->path, e->link, e->uname, e->gname};
	size_t len[4], total = 0;
	struct view_tent *t;
	char *p;

	for (int i = 0; i < 4; i++) {
		len[i] = strlen(s[i] ? s[i] : "") + 1;
		total += len[i];
	}
	t = cm_xmalloc(sizeof(*t) + total);
	t->e = *e;
	p = t->buf;
	for (int i = 0; i < 4; i++) {
		memcpy(p, s[i] ? s[i] : "", len[i]);
		s[i] = p;
		p += len[i];
	}
	t->e.path = s[0];
	t->e.link = s[1];
	t->e.uname = s[2];
	t->e.gname = s[3];
	return t;
}

void view_tent_free(struct view_tent *t)
{
	free(t);
}

/* What `tar -x` makes of the entry: its file type. A hard link is the
 * file it links to (browse.h gives it that file's size and mode). */
static mode_t tent_type(const struct aidx_entry *e)
{
	switch (e->type) {
	case '2':
		return S_IFLNK;
	case '3':
		return S_IFCHR;
	case '4':
		return S_IFBLK;
	case '5':
		return S_IFDIR;
	case '6':
		return S_IFIFO;
	default:
		return S_IFREG;
	}
}

static enum view_kind tent_kind(const struct aidx_entry *e)
{
	return e->type == '5' ? VK_TREE_DIR : VK_TREE_ENTRY;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The root above a tree node (held, through the parent references, as
 * long as n is). */
static struct view_node *root_of(struct view_node *n)
{
	while (n && n->kind != VK_TREE_ROOT)
		n = n->parent;
	return n;
}

/* The entry's path in the archive: "" for the root. */
static const char *path_of(const struct view_node *n)
{
	return n->kind == VK_TREE_ROOT ? "" : n->key;
}

void view_tree_attr_locked(struct view *v, const struct view_node *n,
			   struct view_attr *out)
{
	const struct aidx_entry *e;

	out->attr_timeout = TREE_TIMEOUT;
	out->entry_timeout = TREE_TIMEOUT;
	if (!n->tent) {
		/* a root whose archive is not open yet: the view's */
		out->mode = S_IFDIR | (0555 & ~(v->opts.umask & 0777));
		out->nlink = 2;
		out->attr_timeout = ROOT_TIMEOUT;
		return;
	}
	e = &n->tent->e;
	out->mode = tent_type(e) | (e->mode & 07777);
	out->uid = e->uid;
	out->gid = e->gid;
	out->mtime = (time_t)e->mtime_sec;
	out->mtime_nsec = (long)e->mtime_nsec;
	out->nlink = S_ISDIR(out->mode) ? 2 : 1;
	switch (out->mode & S_IFMT) {
	case S_IFREG:
		out->size = e->size;
		break;
	case S_IFLNK:
		out->size = strlen(e->link);
		break;
	case S_IFCHR:
	case S_IFBLK:
		out->rdev = makedev(e->devmajor, e->devminor);
		break;
	default:
		break;
	}
}

/* ---- archives ---------------------------------------------------------- */

static struct view_tree *tree_find_locked(struct view *v, const char *key)
{
	for (struct view_tree *t = v->trees; t; t = t->next)
		if (!strcmp(t->key, key))
			return t;
	return NULL;
}

static struct view_tree *tree_add_locked(struct view *v, const char *key)
{
	struct view_tree *t = tree_find_locked(v, key);

	if (t)
		return t;
	t = cm_xcalloc(1, sizeof(*t));
	t->key = cm_xstrdup(key);
	t->index_fd = -1;
	t->used_ns = cm_now_ns();
	t->next = v->trees;
	v->trees = t;
	v->ntrees++;
	return t;
}

/* What the messages name: s3://bucket/key, or the local path. */
static char *tree_url(struct view *v, const char *key)
{
	return v->dest->ops->url(v->dest, key);
}

/* The cache of one archive: a quarter of the view's budget, at most
 * CACHE_MAX, so that archives' members never crowd out the archive
 * view's read-ahead and part buffers by themselves. */
static uint64_t tree_cache_bytes(struct view *v)
{
	uint64_t n = v->opts.memory_limit / 4;

	return n > CACHE_MAX ? CACHE_MAX : n ? n : 1;
}

/*
 * A remote archive's index, copied whole into an unlinked temporary file
 * ($TMPDIR, else /tmp) that the reader then reads with pread: a listing
 * needs the entry blocks of its directory, which the index reader keeps
 * only a few of, and fetching them one ranged GET each, one directory at
 * a time, made `find` over 100,000 entries wait for a round trip per
 * directory. One GET of a few hundred KiB (a few MiB for a million
 * entries) at open instead. *fd: the file (-1: not copied: too large, or
 * no temporary file; the reader then reads the object itself).
 */
static int index_copy(struct view *v, const char *url, int *fd,
		      struct cm_err *err)
{
	const char *dir = getenv("TMPDIR");
	struct arc_object *o = NULL;
	uint64_t size, off;
	char *buf = NULL;
	int rc;

	*fd = -1;
	rc = arc_object_open(url, v->dest->s3, &o, err);
	if (rc)
		return rc == -ENOENT ? cm_err_set(err, ENOENT, "%s: not indexed",
						  url)
				     : rc;
	size = arc_object_size(o);
	if (size > INDEX_COPY_MAX)
		goto out;
	*fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
		   0600);
	if (*fd < 0) {
		cm_debug("view: %s: no temporary file (%s): read in place",
			 url, strerror(errno));
		goto out;
	}
	buf = cm_xmalloc(size < INDEX_CHUNK ? (size ? size : 1) : INDEX_CHUNK);
	for (off = 0; off < size && rc == 0;) {
		size_t n = size - off < INDEX_CHUNK ? (size_t)(size - off)
						    : INDEX_CHUNK;

		rc = arc_object_read(o, off, buf, n, err);
		if (rc == 0 && pwrite(*fd, buf, n, (off_t)off) != (ssize_t)n)
			rc = cm_err_set(err, errno ? errno : EIO,
					"a copy of %s: %s", url,
					strerror(errno ? errno : EIO));
		off += n;
	}
	if (rc) {
		cm_err_prefix(err, "%s", url);
		close(*fd);
		*fd = -1;
	}
out:
	free(buf);
	arc_object_free(o);
	return rc;
}

/* The archive `key`, opened (by this call, or an earlier one): one more
 * user until tree_put. *tried: this call tried to open it (else a failure
 * is the one remembered). */
static int tree_get(struct view *v, const char *key, struct view_tree **out,
		    bool *tried, struct cm_err *err)
{
	struct arc_browse_opts o;
	struct arc_browse *b = NULL;
	struct view_tree *t;
	struct cm_err e;
	uint64_t now = cm_now_ns(), wait;
	char *url, *iurl, ipath[64];
	int rc, ifd = -1;

	*tried = false;
	pthread_mutex_lock(&v->trees_lock);
	t = tree_add_locked(v, key);
	while (!t->b && t->opening)
		pthread_cond_wait(&v->trees_cond, &v->trees_lock);
	if (t->b) {
		t->users++;
		t->used_ns = now;
		pthread_mutex_unlock(&v->trees_lock);
		*out = t;
		return 0;
	}
	wait = t->index == IDX_NO ? TREE_RECHECK_NS : TREE_RETRY_NS;
	if (t->failed &&
	    (t->index == IDX_NEVER || now - t->failed_ns < wait)) {
		rc = cm_err_set(err, -t->failed, "%s", t->msg);
		pthread_mutex_unlock(&v->trees_lock);
		return rc;
	}
	t->opening = true;
	t->users++; /* not reaped while it opens */
	*tried = true;
	pthread_mutex_unlock(&v->trees_lock);

	url = tree_url(v, key);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.client = v->dest->s3;
	o.budget = v->budget;
	o.cache_bytes = tree_cache_bytes(v);
	cm_err_clear(&e);
	rc = 0;
	iurl = cm_xasprintf("%s%s", url, AIDX_SUFFIX);
	if (v->store->remote) {
		rc = index_copy(v, iurl, &ifd, &e);
		if (ifd >= 0) {
			snprintf(ipath, sizeof(ipath), "/proc/self/fd/%d", ifd);
			o.index_url = ipath;
		}
	}
	if (rc == 0)
		rc = arc_browse_open(&o, &b, &e);
	if (rc && ifd >= 0) {
		size_t pl = strlen(ipath);
		char msg[CM_ERR_MSG_MAX];

		/* the copy's name means nothing to a reader: the index's */
		if (!strncmp(e.msg, ipath, pl)) {
			snprintf(msg, sizeof(msg), "%s%s", iurl, e.msg + pl);
			snprintf(e.msg, sizeof(e.msg), "%s", msg);
		}
		close(ifd);
		ifd = -1;
	}
	free(iurl);
	if (rc) {
		if (!e.msg[0])
			snprintf(e.msg, sizeof(e.msg), "%s: %s", url,
				 strerror(-rc));
		cm_warn("view: the tree of %s: %s", url, e.msg);
	} else {
		cm_info("view: opened the tree of %s", url);
	}
	free(url);

	pthread_mutex_lock(&v->trees_lock);
	t->opening = false;
	now = cm_now_ns();
	if (rc == 0) {
		t->b = b;
		t->index_fd = ifd;
		t->index = IDX_YES;
		t->failed = 0;
		t->used_ns = now;
		*out = t;
	} else {
		t->users--;
		t->failed = rc;
		t->failed_ns = now;
		snprintf(t->msg, sizeof(t->msg), "%s", e.msg);
		if (rc == -EMEDIUMTYPE)
			t->index = IDX_NEVER;
		else if (rc == -ENOENT)
			t->index = IDX_NO;
		t->checked_ns = now;
		cm_err_set(err, -rc, "%s", e.msg);
	}
	pthread_cond_broadcast(&v->trees_cond);
	pthread_mutex_unlock(&v->trees_lock);
	return rc;
}

static void tree_put(struct view *v, struct view_tree *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&v->trees_lock);
	t->users--;
	t->used_ns = cm_now_ns();
	pthread_mutex_unlock(&v->trees_lock);
}

void view_tree_reap(struct view *v, bool all)
{
	struct arc_browse *dead[64];
	int dead_fd[64];
	size_t ndead;
	uint64_t now = cm_now_ns();

	do {
		struct view_tree **pp;

		ndead = 0;
		pthread_mutex_lock(&v->trees_lock);
		for (pp = &v->trees; *pp && ndead < 64;) {
			struct view_tree *t = *pp;
			/* all: view_free, where nothing runs any more */
			bool idle = all || (!t->users && !t->opening);

			if (t->b && idle &&
			    (all || now - t->used_ns >= TREE_IDLE_NS)) {
				dead_fd[ndead] = t->index_fd;
				dead[ndead++] = t->b;
				t->b = NULL;
				t->index_fd = -1;
			}
			if (!t->b && idle &&
			    (all || (v->ntrees > TREES_KEEP &&
				     now - t->used_ns >= TREE_FORGET_NS))) {
				*pp = t->next;
				v->ntrees--;
				free(t->key);
				free(t->rp);
				free(t);
				continue;
			}
			pp = &t->next;
		}
		pthread_mutex_unlock(&v->trees_lock);
		/* frees the cache, gives its bytes back: no lock held */
		for (size_t i = 0; i < ndead; i++) {
			arc_browse_free(dead[i]);
			if (dead_fd[i] >= 0)
				close(dead_fd[i]);
		}
	} while (ndead == 64);
}

bool view_tree_unbrowsable(struct view *v, const char *key)
{
	struct view_tree *t;
	bool r;

	pthread_mutex_lock(&v->trees_lock);
	t = tree_find_locked(v, key);
	r = t && t->index == IDX_NEVER;
	pthread_mutex_unlock(&v->trees_lock);
	return r;
}

/* Ask the store whether key.index exists: 0 (*yes set), or an error
 * (the store cannot say). */
static int index_stat(struct view *v, const char *key, bool *yes)
{
	char *ikey = cm_xasprintf("%s%s", key, AIDX_SUFFIX);
	struct view_obj obj;
	struct cm_err err;
	int rc;

	cm_err_clear(&err);
	rc = v->store->ops->stat(v->store, ikey, &obj, &err);
	if (rc && rc != -ENOENT)
		cm_debug("view: %s: %s", ikey, err.msg);
	free(ikey);
	*yes = rc == 0 && !obj.is_dir;
	return rc == -ENOENT ? 0 : rc;
}

/* Under trees_lock: record what index_stat said (rc 0: *yes); whether
 * files/ shows now. */
static bool index_learned_locked(struct view_tree *t, int rc, bool yes)
{
	if (t->b)
		return true;
	if (t->index == IDX_NEVER)
		return false;
	/* a store that cannot answer: shown, and the open says why */
	t->index = rc || yes ? IDX_YES : IDX_NO;
	t->checked_ns = cm_now_ns();
	return t->index == IDX_YES;
}

/* The checker: a thread of its own that asks a remote store whether
 * archives have their index (index_stat), so that a recovery point's
 * listing and lookups never wait on the network, nor on a stalled
 * endpoint. */
static void *checker_main(void *arg)
{
	struct view *v = arg;

	pthread_mutex_lock(&v->trees_lock);
	while (!v->checker_stop) {
		struct view_tree *t;
		char *key, *rp;
		size_t vault;
		bool yes = false, changed;
		int rc;

		for (t = v->trees; t && t->index != IDX_PENDING; t = t->next)
			;
		if (!t) {
			pthread_cond_wait(&v->checks_cond, &v->trees_lock);
			continue;
		}
		t->index = IDX_CHECKING;
		t->users++; /* not reaped meanwhile */
		key = cm_xstrdup(t->key);
		pthread_mutex_unlock(&v->trees_lock);
		rc = index_stat(v, key, &yes);
		pthread_mutex_lock(&v->trees_lock);
		t->users--;
		changed = index_learned_locked(t, rc, yes) != t->shown;
		rp = t->rp ? cm_xstrdup(t->rp) : NULL;
		vault = t->vault;
		pthread_mutex_unlock(&v->trees_lock);
		/* what the recovery point's listing showed may be wrong now */
		if (changed && rp)
			view_rp_changed(v, vault, rp, VIEW_FILES_NAME);
		free(rp);
		free(key);
		pthread_mutex_lock(&v->trees_lock);
	}
	pthread_mutex_unlock(&v->trees_lock);
	return NULL;
}

/* Under trees_lock: t's index to be asked for by the checker (started
 * now if it is not running). */
static void check_later_locked(struct view *v, struct view_tree *t,
			       size_t vault, const char *rp)
{
	if (!v->have_checker && !v->checker_stop) {
		if (pthread_create(&v->checker, NULL, checker_main, v) != 0) {
			/* no thread: shown, the open will tell */
			t->index = IDX_YES;
			return;
		}
		v->have_checker = true;
	}
	t->index = IDX_PENDING;
	free(t->rp);
	t->rp = cm_xstrdup(rp);
	t->vault = vault;
	pthread_cond_signal(&v->checks_cond);
}

/*
 * Whether files/ of recovery point rp (vault index vault) shows the
 * archive key: as known; else learned now from a local store; else - a
 * remote store - shown while the checker asks in the background (it goes
 * if the index is not there). "No" is asked again after TREE_RECHECK_NS,
 * hidden meanwhile.
 */
static bool tree_indexed(struct view *v, const char *key, size_t vault,
			 const char *rp)
{
	struct view_tree *t;
	bool r, known, yes = false;
	int rc;

	pthread_mutex_lock(&v->trees_lock);
	t = tree_add_locked(v, key);
	switch (t->b ? IDX_YES : t->index) {
	case IDX_YES:
		r = known = true;
		break;
	case IDX_PENDING:
	case IDX_CHECKING:
		r = t->shown;
		known = true;
		break;
	case IDX_NEVER:
		r = false;
		known = true;
		break;
	case IDX_NO:
		r = false;
		known = cm_now_ns() - t->checked_ns < TREE_RECHECK_NS;
		break;
	default:
		r = true;
		known = false;
		break;
	}
	if (!known && v->store->remote) {
		t->shown = r;
		check_later_locked(v, t, vault, rp);
		known = true;
	}
	pthread_mutex_unlock(&v->trees_lock);
	if (known)
		return r;

	/* a local store: a stat, here */
	rc = index_stat(v, key, &yes);
	pthread_mutex_lock(&v->trees_lock);
	t = tree_add_locked(v, key);
	r = index_learned_locked(t, rc, yes);
	pthread_mutex_unlock(&v->trees_lock);
	return r;
}

/* files/ of key is known not to show (no index, or no tree) */
static bool tree_hidden(struct view *v, const char *key)
{
	struct view_tree *t;
	bool r;

	pthread_mutex_lock(&v->trees_lock);
	t = tree_find_locked(v, key);
	r = t && !t->b && (t->index == IDX_NO || t->index == IDX_NEVER);
	pthread_mutex_unlock(&v->trees_lock);
	return r;
}

void view_tree_stop(struct view *v)
{
	bool join;

	pthread_mutex_lock(&v->trees_lock);
	v->checker_stop = true;
	join = v->have_checker;
	v->have_checker = false;
	pthread_cond_broadcast(&v->checks_cond);
	pthread_mutex_unlock(&v->trees_lock);
	if (join)
		pthread_join(v->checker, NULL);
	view_tree_reap(v, true);
}

/* The root's attributes become its archive's root entry, once. */
static void root_learn(struct view *v, struct view_node *root,
		       struct view_tree *t)
{
	struct aidx_list l = {0};
	struct view_tent *te;
	struct cm_err err;
	bool known;

	pthread_mutex_lock(&v->lock);
	known = root->tent != NULL;
	pthread_mutex_unlock(&v->lock);
	if (known)
		return;
	cm_err_clear(&err);
	if (arc_browse_stat(t->b, "", &l, &err) || l.n != 1) {
		cm_debug("view: %s: the root: %s", root->key, err.msg);
		aidx_list_release(&l);
		return;
	}
	te = tent_dup(&l.v[0]);
	aidx_list_release(&l);
	pthread_mutex_lock(&v->lock);
	if (!root->tent) {
		root->tent = te;
		te = NULL;
	}
	pthread_mutex_unlock(&v->lock);
	free(te);
}

/* The archive of tree node n, opened, and its root's attributes known. A
 * recovery point's files/ that cannot be opened says why in the recovery
 * point's log file, and goes from its listing when the archive has no
 * tree after all. */
static int node_tree(struct view *v, struct view_node *n,
		     struct view_tree **out, struct cm_err *err)
{
	struct view_node *root = root_of(n), *rp;
	struct cm_err local;
	bool tried;
	int rc;

	if (!root)
		return cm_err_set(err, EINVAL, "view: %s: not in a tree",
				  n->name);
	if (!err) {
		cm_err_clear(&local);
		err = &local;
	}
	rc = tree_get(v, root->key, out, &tried, err);
	if (rc == 0) {
		root_learn(v, root, *out);
		return 0;
	}
	rp = root->parent;
	if (tried && rp && rp->kind == VK_RP) {
		view_note_rp(v, rp->vault, rp->name, VIEW_FILES_NAME,
			     err->msg);
		if (tree_hidden(v, root->key)) {
			view_inval_inode(v, rp->ino);
			view_inval_entry(v, rp->ino, VIEW_FILES_NAME);
		}
	}
	return rc;
}

/* ---- recovery points: files/ ------------------------------------------- */

char *view_tree_rp_key(struct view *v, size_t vault, const char *rp,
		       time_t *mtime)
{
	struct orch *o = view_engine(v);
	struct orch_job_info ji;
	char *key = NULL, *base;
	size_t bl;

	if (!o || orch_job_for_rp(o, v->vs[vault].cfg->name, rp, &ji) != 0)
		return NULL;
	base = tree_url(v, "");
	bl = strlen(base);
	if ((ji.state == ORCH_JOB_SUCCEEDED ||
	     ji.state == ORCH_JOB_INCOMPLETE) &&
	    ji.result_url && !strncmp(ji.result_url, base, bl) &&
	    ji.result_url[bl]) {
		key = cm_xstrdup(ji.result_url + bl);
		*mtime = ji.times[ji.state];
	}
	free(base);
	orch_job_info_release(&ji);
	if (key && !tree_indexed(v, key, vault, rp)) {
		free(key);
		key = NULL;
	}
	return key;
}

struct view_node *view_tree_root_locked(struct view *v,
					struct view_node *parent,
					const char *name, const char *key,
					time_t mtime)
{
	struct view_node *n = view_child_locked(v, parent, name);

	if (n && (n->kind != VK_TREE_ROOT || strcmp(n->key, key) != 0)) {
		/* it showed another archive (a new job's) */
		view_unhash_locked(v, n);
		n = NULL;
	}
	if (!n) {
		n = view_node_new_locked(v, parent, name, VK_TREE_ROOT);
		n->key = cm_xstrdup(key);
		n->mtime = mtime;
	}
	return n;
}

struct view_node *view_tree_item_node_locked(struct view *v,
					     struct view_node *parent,
					     const struct dir_item *it)
{
	struct view_node *n;

	if (it->kind == VK_TREE_ROOT)
		return view_tree_root_locked(v, parent, it->name, it->key,
					     it->obj.mtime);
	n = view_child_locked(v, parent, it->name);
	if (n)
		return n;
	n = view_node_new_locked(v, parent, it->name, it->kind);
	n->key = cm_xstrdup(it->tent->e.path);
	n->tent = tent_dup(&it->tent->e);
	return n;
}

/* ---- requests ---------------------------------------------------------- */

int view_tree_lookup(struct view *v, struct view_node *parent,
		     const char *name, struct view_attr *out,
		     struct cm_err *err)
{
	struct aidx_list l = {0};
	struct view_tree *t;
	struct view_node *n;
	struct cm_err local;
	char *path;
	int rc;

	if (!err) { /* browse.h writes it */
		cm_err_clear(&local);
		err = &local;
	}
	/* known already: an archive never changes */
	pthread_mutex_lock(&v->lock);
	n = view_child_locked(v, parent, name);
	if (n && n->tent) {
		n->nlookup++;
		view_attr_locked(v, n, out);
		pthread_mutex_unlock(&v->lock);
		return 0;
	}
	pthread_mutex_unlock(&v->lock);

	rc = node_tree(v, parent, &t, err);
	if (rc)
		return rc;
	path = parent->kind == VK_TREE_ROOT
		   ? cm_xstrdup(name)
		   : cm_xasprintf("%s/%s", path_of(parent), name);
	rc = arc_browse_stat(t->b, path, &l, err);
	tree_put(v, t);
	free(path);
	if (rc == 0 && l.n != 1)
		rc = -ENOENT;
	if (rc == 0) {
		pthread_mutex_lock(&v->lock);
		n = view_child_locked(v, parent, name);
		if (!n) {
			n = view_node_new_locked(v, parent, name,
						 tent_kind(&l.v[0]));
			n->key = cm_xstrdup(l.v[0].path);
			n->tent = tent_dup(&l.v[0]);
		}
		n->nlookup++;
		view_attr_locked(v, n, out);
		pthread_mutex_unlock(&v->lock);
	}
	aidx_list_release(&l);
	return rc;
}

static int tree_list(struct view *v, struct view_dir *d, struct cm_err *err)
{
	struct view_node *n = d->node;
	struct aidx_list l = {0};
	struct view_tree *t;
	struct cm_err local;
	size_t cap = 0;
	int rc;

	if (!err) { /* browse.h writes it */
		cm_err_clear(&local);
		err = &local;
	}
	rc = node_tree(v, n, &t, err);
	if (rc)
		return rc;
	rc = arc_browse_list(t->b, path_of(n), &l, err);
	tree_put(v, t);
	if (rc)
		return rc;
	view_dir_add(d, &cap, ".", n->kind, S_IFDIR);
	view_dir_add(d, &cap, "..", VK_ROOT, S_IFDIR);
	for (size_t i = 0; i < l.n; i++) {
		const struct aidx_entry *e = &l.v[i];
		struct dir_item *it;

		if (!e->path[0])
			continue; /* the root itself */
		it = view_dir_add(d, &cap, base_name(e->path), tent_kind(e),
				  tent_type(e));
		it->tent = tent_dup(e);
		it->de.attr.mtime = (time_t)e->mtime_sec;
	}
	aidx_list_release(&l);
	return 0;
}

int view_tree_dir_load(struct view *v, struct view_dir *d, struct cm_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (!d->loaded) {
		view_dir_clear(d);
		rc = tree_list(v, d, err);
		d->loaded = rc == 0;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int view_tree_open(struct view *v, struct view_file *f, int flags,
		   struct view_open_out *oo, struct cm_err *err)
{
	struct view_node *n = f->node;
	mode_t type;

	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return -EROFS;
	type = n->tent ? tent_type(&n->tent->e) : S_IFDIR;
	if (type != S_IFREG)
		return cm_err_set(err, EINVAL, "view: %s: not a regular file",
				  n->key);
	/* the page cache may keep what was read: it never changes */
	oo->direct_io = false;
	oo->keep_cache = true;
	return node_tree(v, n, &f->tree, err);
}

int view_tree_read(struct view *v, struct view_file *f, uint64_t off,
		   char *buf, size_t len, size_t *got, struct cm_err *err)
{
	struct cm_err local;
	ssize_t r;

	*got = 0;
	if (!err) { /* browse.h writes it */
		cm_err_clear(&local);
		err = &local;
	}
	r = arc_browse_read(f->tree->b, &f->node->tent->e, off, buf, len, err);
	if (r < 0) {
		cm_warn("view: %s: %s", f->node->key, err->msg);
		return (int)r;
	}
	*got = (size_t)r;
	atomic_fetch_add(&v->bytes_read, (uint64_t)r);
	return 0;
}

void view_tree_close(struct view *v, struct view_file *f)
{
	tree_put(v, f->tree);
	f->tree = NULL;
}

int view_tree_readlink(struct view *v, struct view_node *n, char **out,
		       struct cm_err *err)
{
	(void)v;
	if (n->kind != VK_TREE_ENTRY || !n->tent || n->tent->e.type != '2')
		return cm_err_set(err, EINVAL, "view: %s: not a symlink",
				  n->name);
	*out = cm_xstrdup(n->tent->e.link);
	return 0;
}
