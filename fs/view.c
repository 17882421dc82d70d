/*
 * view.c - the view's tree: nodes and inode numbers, the vault listings
 * and their refresher, the virtual files (status, metrics, info.json,
 * log) and the control files (export, cancel). See view.h for what the
 * view shows and view_int.h for the locks; the archive view is in
 * view_archive.c, the texts in view_text.c.
 *
 * Nodes live in two hash tables under view->lock: by inode number (every
 * live node) and by (parent, name) (the nodes a lookup may find). A node
 * is freed when nothing refers to it: no kernel reference (nlookup), no
 * internal one (refs: a child's parent pointer, an open handle, a caller
 * between view_node_get and view_node_put). Fixed nodes keep one internal
 * reference for the view's life. A recovery point that disappears, or an
 * archive object that is deleted, is unhashed: the kernel may still hold
 * its inode (requests then answer from what is known, or ENOENT), but a
 * new lookup makes a new node.
 *
 * Vaults are seen only through their providers (provider.h): the view
 * makes its own provider per vault, lists with list (or scan), reads
 * info.json from inspect and describe, and learns of changes from a
 * listing watch (its `changed` callback; the local provider's is inotify
 * on the directory).
 * The refresher thread drives those watches, poll()ing their descriptors
 * and an eventfd (a nudge: the engine's notify callback or view_free),
 * with the periodic rescan as timeout. A vault marked dirty is rescanned;
 * the new listing is compared with the old, and the kernel is told to
 * drop the vault's cached listing and the names that came or went
 * (view_inval_*), after view->lock is released.
 */
#include "view_int.h"

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "orch.h"
#include "timeutil.h"
#include "json.h"
#include "provider.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXED_TIMEOUT	     3600.0 /* names that never change */
#define DYNAMIC_ATTR_TIMEOUT 1.0    /* sizes of status, log, metrics */
#define VAULT_TIMEOUT	     10.0   /* invalidated on change anyway */
#define NEGATIVE_TIMEOUT     1.0
/* a getattr renders a dynamic file again after this */
#define RENDER_TTL_NS	 1000000000ull
#define MAX_ENTRY_INVALS 256 /* names that came, told one by one */

static const struct {
	const char *name;
	enum view_kind kind;
} rp_files[] = {
    {"info.json", VK_RP_INFO}, {"status", VK_RP_STATUS}, {"log", VK_RP_LOG},
    {"export", VK_RP_EXPORT},  {"cancel", VK_RP_CANCEL},
};
#define N_RP_FILES (sizeof(rp_files) / sizeof(rp_files[0]))
/* beside them for a recovery point the provider can read as an image */
#define IMAGE_NAME "disk.img"

static struct orch *engine(struct view *v)
{
	return atomic_load(&v->orch);
}

struct orch *view_engine(struct view *v)
{
	return engine(v);
}

/* ---- hash tables ------------------------------------------------------- */

static size_t name_hash(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static void table_insert_locked(struct view *v, struct view_node *n)
{
	size_t b = (size_t)(n->ino % v->nbuckets);

	n->next_ino = v->by_ino[b];
	v->by_ino[b] = n;
	if (n->hashed) {
		b = name_hash(n->parent ? n->parent->ino : 0, n->name) %
		    v->nbuckets;
		n->next_name = v->by_name[b];
		v->by_name[b] = n;
	}
}

static void table_grow_locked(struct view *v)
{
	struct view_node **old_ino = v->by_ino;
	size_t old_n = v->nbuckets;

	v->nbuckets = old_n * 2;
	v->by_ino = cm_xcalloc(v->nbuckets, sizeof(*v->by_ino));
	free(v->by_name);
	v->by_name = cm_xcalloc(v->nbuckets, sizeof(*v->by_name));
	for (size_t i = 0; i < old_n; i++) {
		struct view_node *n = old_ino[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			table_insert_locked(v, n);
		}
	}
	free(old_ino);
}

void view_unhash_locked(struct view *v, struct view_node *n)
{
	struct view_node **pp;

	if (!n->hashed)
		return;
	pp = &v->by_name[name_hash(n->parent ? n->parent->ino : 0, n->name) %
			 v->nbuckets];
	for (; *pp; pp = &(*pp)->next_name) {
		if (*pp == n) {
			*pp = n->next_name;
			break;
		}
	}
	n->hashed = false;
	n->next_name = NULL;
}

static struct view_node *node_by_ino_locked(struct view *v, uint64_t ino)
{
	struct view_node *n = v->by_ino[ino % v->nbuckets];

	while (n && n->ino != ino)
		n = n->next_ino;
	return n;
}

struct view_node *view_child_locked(struct view *v, struct view_node *parent,
				    const char *name)
{
	struct view_node *n;

	n = v->by_name[name_hash(parent->ino, name) % v->nbuckets];
	for (; n; n = n->next_name)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

struct view_node *view_node_new_locked(struct view *v, struct view_node *parent,
				       const char *name, enum view_kind kind)
{
	struct view_node *n = cm_xcalloc(1, sizeof(*n));

	if (v->nnodes + 1 > v->nbuckets * 2)
		table_grow_locked(v);
	n->ino = v->next_ino++;
	n->kind = kind;
	n->name = cm_xstrdup(name);
	n->parent = parent;
	if (parent) {
		parent->refs++;
		n->vault = parent->vault;
	}
	n->hashed = true;
	n->mtime = v->started;
	table_insert_locked(v, n);
	v->nnodes++;
	return n;
}

void view_node_ref_locked(struct view_node *n)
{
	n->refs++;
}

static void node_free_locked(struct view *v, struct view_node *n)
{
	while (n && n->refs == 0 && n->nlookup == 0) {
		struct view_node *parent = n->parent, **pp;

		view_unhash_locked(v, n);
		pp = &v->by_ino[n->ino % v->nbuckets];
		for (; *pp; pp = &(*pp)->next_ino) {
			if (*pp == n) {
				*pp = n->next_ino;
				break;
			}
		}
		v->nnodes--;
		free(n->name);
		free(n->key);
		view_tent_free(n->tent);
		free(n);
		n = parent;
		if (n)
			n->refs--;
	}
}

void view_node_unref_locked(struct view *v, struct view_node *n)
{
	if (!n)
		return;
	n->refs--;
	node_free_locked(v, n);
}

struct view_node *view_node_get(struct view *v, uint64_t ino)
{
	struct view_node *n;

	pthread_mutex_lock(&v->lock);
	n = node_by_ino_locked(v, ino);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&v->lock);
	return n;
}

void view_node_put(struct view *v, struct view_node *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&v->lock);
	view_node_unref_locked(v, n);
	pthread_mutex_unlock(&v->lock);
}

/* A fixed node: one reference for the view's life. */
static struct view_node *fixed_node(struct view *v, struct view_node *parent,
				    const char *name, enum view_kind kind)
{
	struct view_node *n;

	pthread_mutex_lock(&v->lock);
	n = view_node_new_locked(v, parent, name, kind);
	n->refs = 1;
	pthread_mutex_unlock(&v->lock);
	return n;
}

/* ---- notifications ----------------------------------------------------- */

void view_inval_inode(struct view *v, uint64_t ino)
{
	if (v->opts.notify && v->opts.notify->inval_inode)
		v->opts.notify->inval_inode(v->opts.notify_ctx, ino);
}

void view_inval_entry(struct view *v, uint64_t parent, const char *name)
{
	if (v->opts.notify && v->opts.notify->inval_entry)
		v->opts.notify->inval_entry(v->opts.notify_ctx, parent, name);
}

static void wake_refresher(struct view *v)
{
	uint64_t one = 1;

	if (v->wake_fd >= 0 && write(v->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is full: a wake-up is pending anyway */
	}
}

/* ---- attributes -------------------------------------------------------- */

static bool is_dynamic(enum view_kind k)
{
	return k == VK_STATUS || k == VK_METRICS || k == VK_README ||
	       k == VK_RP_INFO ||
	       k == VK_RP_STATUS || k == VK_RP_LOG;
}

/* What a node of this kind allows, before the umask: 0666 (a file that
 * takes writes), 0444, 0777 (a directory where things are made) or 0555.
 * The kernel checks these modes for other users (default_permissions). */
static mode_t kind_mode(struct view *v, const struct view_node *n)
{
	switch (n->kind) {
	case VK_STATUS:
	case VK_METRICS:
	case VK_README:
	case VK_RP_INFO:
	case VK_RP_STATUS:
	case VK_RP_LOG:
	case VK_RP_IMAGE:
		return S_IFREG | 0444;
	case VK_RP_EXPORT:
	case VK_RP_CANCEL:
		/* commands to the engine: the owner's, whatever the umask */
		return S_IFREG | 0644;
	case VK_ARC_FILE:
		return S_IFREG |
		       (v->opts.allow_overwrite || n->writers ? 0666 : 0444);
	case VK_STORE:
	case VK_ARC_DIR:
		return S_IFDIR | 0777;
	default:
		return S_IFDIR | 0555;
	}
}

void view_attr_locked(struct view *v, const struct view_node *n,
		      struct view_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = n->ino;
	out->uid = v->opts.uid;
	out->gid = v->opts.gid;
	out->mtime = n->mtime;
	out->entry_timeout = FIXED_TIMEOUT;
	out->attr_timeout = FIXED_TIMEOUT;
	out->mode = kind_mode(v, n) & ~(v->opts.umask & 0777);
	out->nlink = S_ISDIR(out->mode) ? 2 : 1;
	switch (n->kind) {
	case VK_VAULT:
		if (v->vs[n->vault].dir_mtime)
			out->mtime = v->vs[n->vault].dir_mtime;
		out->attr_timeout = VAULT_TIMEOUT;
		break;
	case VK_RP:
		out->entry_timeout = VAULT_TIMEOUT;
		out->attr_timeout = VAULT_TIMEOUT;
		break;
	case VK_STATUS:
	case VK_METRICS:
	case VK_README:
	case VK_RP_INFO:
	case VK_RP_STATUS:
	case VK_RP_LOG:
		out->size = n->size;
		/* not rendered yet (a readdirplus): let a stat ask */
		out->attr_timeout = n->rendered_ns ? DYNAMIC_ATTR_TIMEOUT : 0;
		break;
	case VK_ARC_DIR:
		out->entry_timeout = v->opts.list_cache_ms / 1000.0;
		out->attr_timeout = out->entry_timeout;
		break;
	case VK_RP_IMAGE:
		/* the volume's size, learned at lookup or getattr; never
		 * changes. Not learned yet (a readdirplus): let a stat ask */
		out->size = n->size;
		if (!n->rendered_ns)
			out->attr_timeout = 0;
		break;
	case VK_ARC_FILE:
		out->size = n->size;
		out->entry_timeout = v->opts.list_cache_ms / 1000.0;
		out->attr_timeout = n->writers ? 0 : out->entry_timeout;
		break;
	case VK_TREE_ROOT:
	case VK_TREE_DIR:
	case VK_TREE_ENTRY:
		view_tree_attr_locked(v, n, out);
		break;
	default:
		break;
	}
}

/* ---- vault listings ---------------------------------------------------- */

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vault_ent *)a)->name,
		      ((const struct vault_ent *)b)->name);
}

static void ents_free(struct vault_ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

static struct vault_ent *ents_find(struct vault_ent *e, size_t n,
				   const char *name)
{
	struct vault_ent key = {.name = (char *)name};

	return n ? bsearch(&key, e, n, sizeof(*e), ent_cmp) : NULL;
}

struct ent_vec {
	struct vault_ent *e;
	size_t n, cap;
};

static void ent_push(struct ent_vec *ev, const char *name, time_t mtime,
		     bool image)
{
	if (ev->n == ev->cap) {
		ev->cap = ev->cap ? ev->cap * 2 : 64;
		ev->e = cm_xrealloc(ev->e, ev->cap * sizeof(*ev->e));
	}
	ev->e[ev->n].name = cm_xstrdup(name);
	ev->e[ev->n].mtime = mtime;
	ev->e[ev->n].image = image;
	ev->n++;
}

/* The vault's recovery points now (names, mtimes: the provider's list),
 * plus those of the engine's jobs for this vault that are gone from it. */
static int scan_vault(struct view *v, struct vault_state *vs,
		      struct ent_vec *out, struct cm_err *err)
{
	struct orch *o = engine(v);
	struct orch_snapshot snap;
	struct orch_rp_list list = {0};
	size_t nscanned;
	int rc;

	rc = vs->prov->ops->list ? vs->prov->ops->list(vs->prov, &list, err)
				 : vs->prov->ops->scan(vs->prov, &list, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < list.n; i++)
		ent_push(out, list.items[i].name, list.items[i].mtime,
			 vs->prov->ops->open_image && list.items[i].type &&
				 !strcmp(list.items[i].type, ORCH_RP_EBS));
	orch_rp_list_release(&list);
	nscanned = out->n;
	if (nscanned)
		qsort(out->e, nscanned, sizeof(*out->e), ent_cmp);
	if (!o)
		return 0;
	orch_snapshot(o, &snap);
	for (size_t i = 0; i < snap.n; i++) {
		const struct orch_job_info *ji = &snap.jobs[i];
		time_t t = 0;

		if (strcmp(ji->vault, vs->cfg->name) != 0 ||
		    ents_find(out->e, nscanned, ji->rp_name))
			continue;
		for (int s = 0; s < ORCH_JOB_NSTATES; s++)
			if (ji->times[s] > t)
				t = ji->times[s];
		ent_push(out, ji->rp_name, t, false);
	}
	orch_snapshot_release(&snap);
	if (out->n == nscanned)
		return 0;
	/* sorted once; a recovery point with several jobs, listed once
	 * (the jobs come sorted by id: the newest time wins below) */
	qsort(out->e, out->n, sizeof(*out->e), ent_cmp);
	{
		size_t w = 0;

		for (size_t i = 0; i < out->n; i++) {
			if (w && !strcmp(out->e[w - 1].name, out->e[i].name)) {
				if (out->e[i].mtime > out->e[w - 1].mtime)
					out->e[w - 1].mtime = out->e[i].mtime;
				free(out->e[i].name);
				continue;
			}
			out->e[w++] = out->e[i];
		}
		out->n = w;
	}
	return 0;
}

struct name_list {
	char **names;
	size_t n, cap;
};

static void names_push(struct name_list *l, const char *name)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->names = cm_xrealloc(l->names, l->cap * sizeof(*l->names));
	}
	l->names[l->n++] = cm_xstrdup(name);
}

static void names_free(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

/*
 * Rescan vs if forced, dirty or older than the rescan period. Tells the
 * kernel what changed. Takes vs->scan_lock, then view->lock briefly.
 */
static int vault_refresh(struct view *v, struct vault_state *vs, bool force,
			 struct cm_err *err)
{
	uint64_t period = (uint64_t)v->opts.rescan_ms * 1000000ull;
	struct ent_vec ev = {0};
	struct name_list gone = {0}, came = {0};
	struct vault_ent *old;
	size_t nold, i, j;
	bool first, changed;
	uint64_t now;
	int rc;

	pthread_mutex_lock(&vs->scan_lock);
	now = cm_now_ns();
	pthread_mutex_lock(&v->lock);
	if (!force && !vs->dirty && vs->scanned_ns &&
	    now - vs->scanned_ns < period) {
		pthread_mutex_unlock(&v->lock);
		pthread_mutex_unlock(&vs->scan_lock);
		return 0;
	}
	vs->dirty = false;
	pthread_mutex_unlock(&v->lock);

	rc = scan_vault(v, vs, &ev, err);
	if (rc) {
		ents_free(ev.e, ev.n);
		pthread_mutex_unlock(&vs->scan_lock);
		return rc;
	}

	pthread_mutex_lock(&v->lock);
	old = vs->ents;
	nold = vs->n;
	first = vs->scanned_ns == 0;
	/* both sorted: one merge finds what came and what went */
	for (i = 0, j = 0; i < nold || j < ev.n;) {
		int c = i == nold   ? 1
			: j == ev.n ? -1
				    : strcmp(old[i].name, ev.e[j].name);

		if (c < 0) {
			struct view_node *n =
			    view_child_locked(v, vs->node, old[i].name);

			if (n)
				view_unhash_locked(v, n);
			names_push(&gone, old[i].name);
			i++;
		} else if (c > 0) {
			if (!first && came.n < MAX_ENTRY_INVALS)
				names_push(&came, ev.e[j].name);
			j++;
		} else {
			if (old[i].mtime != ev.e[j].mtime) {
				struct view_node *n =
				    view_child_locked(v, vs->node, old[i].name);

				if (n)
					n->mtime = ev.e[j].mtime;
			}
			i++;
			j++;
		}
	}
	changed = gone.n || came.n || nold != ev.n;
	vs->ents = ev.e;
	vs->n = ev.n;
	/* the vault directory's mtime: when its listing was seen to change
	 * (the newest recovery point's at first) */
	if (first)
		for (i = 0; i < ev.n; i++)
			if (ev.e[i].mtime > vs->dir_mtime)
				vs->dir_mtime = ev.e[i].mtime;
	if (changed && !first)
		vs->dir_mtime = time(NULL);
	vs->scanned_ns = cm_now_ns();
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_unlock(&vs->scan_lock);
	ents_free(old, nold);

	if (changed && !first)
		view_inval_inode(v, vs->node->ino);
	for (i = 0; i < gone.n; i++)
		view_inval_entry(v, vs->node->ino, gone.names[i]);
	for (i = 0; i < came.n; i++)
		view_inval_entry(v, vs->node->ino, came.names[i]);
	names_free(&gone);
	names_free(&came);
	return 0;
}

/* ---- the refresher ----------------------------------------------------- */

/* A vault watch's `changed`: rescan that vault soon. Called on the
 * refresher's thread, no lock held. */
static void vault_changed(void *ctx)
{
	struct vault_state *vs = ctx;

	pthread_mutex_lock(&vs->view->lock);
	vs->dirty = true;
	pthread_mutex_unlock(&vs->view->lock);
}

/* Start the vaults' watches that are not running (provider.h: listing
 * only, cb->ready NULL). A vault without one relies on rescans. */
static void start_watches(struct view *v)
{
	for (size_t i = 0; i < v->nvaults; i++) {
		struct vault_state *vs = &v->vs[i];
		const struct orch_provider_ops *ops = vs->prov->ops;
		struct orch_watch_opts wo = {.rescan_ms = v->opts.rescan_ms};
		struct orch_watch_cb cb = {.changed = vault_changed, .ctx = vs};
		struct cm_err err;

		if (vs->watch || !ops->watch_new || vs->watch_failed)
			continue;
		cm_err_clear(&err);
		if (ops->watch_new(vs->prov, &wo, &cb, &vs->watch, &err)) {
			cm_warn("view: vault %s: not watched (%s): relying on "
				"rescans", vs->cfg->name, err.msg);
			vs->watch_failed = true;
		}
	}
}

static void *refresher_main(void *arg)
{
	struct view *v = arg;
	struct pollfd *pfd = cm_xcalloc(v->nvaults + 1, sizeof(*pfd));

	start_watches(v);
	while (!atomic_load(&v->stopping)) {
		int timeout = (int)v->opts.rescan_ms, r;
		uint64_t started = cm_now_ns();
		bool all;

		pfd[0].fd = v->wake_fd;
		pfd[0].events = POLLIN;
		for (size_t i = 0; i < v->nvaults; i++) {
			struct vault_state *vs = &v->vs[i];
			int t;

			pfd[i + 1].fd =
			    vs->watch ? vs->prov->ops->watch_fd(vs->watch) : -1;
			pfd[i + 1].events = POLLIN;
			t = vs->watch ? vs->prov->ops->watch_timeout(vs->watch)
				      : -1;
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		r = poll(pfd, v->nvaults + 1, timeout);
		/* a full rescan when the period passed with nothing else */
		all = r == 0 && cm_now_ns() - started >=
				    (uint64_t)v->opts.rescan_ms * 1000000ull;
		if (atomic_load(&v->stopping))
			break;
		if (r < 0 && errno != EINTR) {
			cm_warn("view: refresher: poll: %s", strerror(errno));
			cm_sleep_ms(100);
		}
		if (r > 0 && (pfd[0].revents & POLLIN)) {
			uint64_t cnt;

			if (read(v->wake_fd, &cnt, sizeof(cnt)) < 0) {
				/* nothing pending after all */
			}
		}
		for (size_t i = 0; i < v->nvaults; i++) {
			struct vault_state *vs = &v->vs[i];
			struct cm_err err;

			if (!vs->watch)
				continue;
			cm_err_clear(&err);
			if (vs->prov->ops->watch_poll(vs->watch, &err) < 0) {
				cm_warn("view: vault %s: %s: relying on "
					"rescans", vs->cfg->name, err.msg);
				vs->prov->ops->watch_free(vs->watch);
				vs->watch = NULL;
				vs->watch_failed = true;
				all = true;
			}
		}
		for (size_t i = 0; i < v->nvaults; i++) {
			struct cm_err err;

			cm_err_clear(&err);
			if (vault_refresh(v, &v->vs[i], all, &err))
				cm_debug("view: %s", err.msg);
		}
		view_tree_reap(v, false);
	}
	for (size_t i = 0; i < v->nvaults; i++) {
		struct vault_state *vs = &v->vs[i];

		if (vs->watch)
			vs->prov->ops->watch_free(vs->watch);
		vs->watch = NULL;
	}
	free(pfd);
	return NULL;
}

void view_rp_changed(struct view *v, size_t vault, const char *rp,
		     const char *name)
{
	struct view_node *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&v->lock);
	n = vault < v->nvaults ? view_child_locked(v, v->vs[vault].node, rp)
			       : NULL;
	if (n)
		ino = n->ino;
	pthread_mutex_unlock(&v->lock);
	if (!ino)
		return;
	view_inval_inode(v, ino);
	view_inval_entry(v, ino, name);
}

/* ---- the engine's notify callback -------------------------------------- */

void view_orch_notify(void *ctx, const struct orch_job_info *ji)
{
	struct view *v = ctx;
	uint64_t inos[N_RP_FILES + 2];
	size_t n = 0;

	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->nvaults; i++) {
		struct vault_state *vs = &v->vs[i];
		struct view_node *rp;

		if (strcmp(vs->cfg->name, ji->vault) != 0)
			continue;
		vs->dirty = true;
		rp = view_child_locked(v, vs->node, ji->rp_name);
		if (!rp)
			break;
		/* its listing: files/ comes with a finished job */
		inos[n++] = rp->ino;
		for (size_t f = 0; f < N_RP_FILES; f++) {
			struct view_node *c =
			    view_child_locked(v, rp, rp_files[f].name);

			if (c && is_dynamic(c->kind)) {
				c->rendered_ns = 0;
				inos[n++] = c->ino;
			}
		}
		break;
	}
	pthread_mutex_unlock(&v->lock);
	wake_refresher(v);
	for (size_t i = 0; i < n; i++)
		view_inval_inode(v, inos[i]);
}

/* ---- life cycle -------------------------------------------------------- */

void view_opts_init(struct view_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->umask = VIEW_DEFAULT_UMASK;
}

struct view *view_new(const struct view_opts *opts, struct cm_err *err)
{
	struct view *v = cm_xcalloc(1, sizeof(*v));
	int rc;

	v->opts = *opts;
	v->cfg = opts->cfg;
	atomic_store(&v->orch, opts->orch);
	if (!v->opts.list_cache_ms)
		v->opts.list_cache_ms = 2000;
	if (!v->opts.list_max_keys)
		v->opts.list_max_keys = 1000;
	if (!v->opts.rescan_ms)
		v->opts.rescan_ms = 5000;
	if (!v->opts.readahead_max)
		v->opts.readahead_max = 8u << 20;
	if (!v->opts.memory_limit)
		v->opts.memory_limit = v->cfg->view_memory_limit
					   ? v->cfg->view_memory_limit
					   : ORCH_VIEW_MEMORY_LIMIT;
	v->budget = cm_budget_new(v->opts.memory_limit);
	v->started = time(NULL);
	v->wake_fd = -1;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->uploads_lock, NULL);
	pthread_mutex_init(&v->files_lock, NULL);
	pthread_mutex_init(&v->notes_lock, NULL);
	pthread_mutex_init(&v->trees_lock, NULL);
	pthread_cond_init(&v->trees_cond, NULL);
	pthread_cond_init(&v->checks_cond, NULL);
	v->nbuckets = 1024;
	v->by_ino = cm_xcalloc(v->nbuckets, sizeof(*v->by_ino));
	v->by_name = cm_xcalloc(v->nbuckets, sizeof(*v->by_name));
	v->next_ino = VIEW_ROOT_INO;

	v->root = fixed_node(v, NULL, "", VK_ROOT);
	v->status = fixed_node(v, v->root, "status", VK_STATUS);
	v->metrics = fixed_node(v, v->root, "metrics", VK_METRICS);
	v->readme = fixed_node(v, v->root, "README", VK_README);
	v->vaults = fixed_node(v, v->root, "vaults", VK_VAULTS);
	v->archive = fixed_node(v, v->root, "archive", VK_ARCHIVE);
	v->dest = opts->dest;
	if (!v->dest) {
		rc = orch_dest_new(v->cfg, &v->own_dest, err);
		if (rc)
			goto fail;
		v->dest = v->own_dest;
	}
	v->store_node = fixed_node(v, v->archive, v->dest->name, VK_STORE);
	v->store_node->key = cm_xstrdup("");

	v->nvaults = v->cfg->nvaults;
	v->vs = cm_xcalloc(v->nvaults + 1, sizeof(*v->vs));
	for (size_t i = 0; i < v->nvaults; i++) {
		struct vault_state *vs = &v->vs[i];

		vs->cfg = &v->cfg->vaults[i];
		vs->view = v;
		pthread_mutex_init(&vs->scan_lock, NULL);
		vs->node = fixed_node(v, v->vaults, vs->cfg->name, VK_VAULT);
		vs->node->vault = i;
	}

	for (size_t i = 0; i < v->nvaults; i++) {
		rc = orch_provider_new(v->cfg, v->vs[i].cfg, &v->vs[i].prov,
				       err);
		if (rc)
			goto fail;
	}
	rc = view_arc_init(v, err);
	if (rc)
		goto fail;
	rc = view_uploads_init(v, err);
	if (rc)
		goto fail;

	v->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->wake_fd < 0) {
		rc = cm_err_set(err, errno, "view: eventfd: %s",
				strerror(errno));
		goto fail;
	}
	if (pthread_create(&v->refresher, NULL, refresher_main, v) != 0) {
		rc = cm_err_set(err, EAGAIN, "view: cannot start a thread");
		goto fail;
	}
	v->have_refresher = true;
	return v;
fail:
	view_free(v);
	return NULL;
}

void view_set_orch(struct view *v, struct orch *o)
{
	atomic_store(&v->orch, o);
	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->nvaults; i++)
		v->vs[i].dirty = true;
	pthread_mutex_unlock(&v->lock);
	wake_refresher(v);
}

void view_stop_waits(struct view *v)
{
	cm_budget_close(v->budget);
}

void view_free(struct view *v)
{
	if (!v)
		return;
	view_stop_waits(v);
	atomic_store(&v->stopping, true);
	wake_refresher(v);
	if (v->have_refresher)
		pthread_join(v->refresher, NULL);
	/* before the store goes; the archives' caches give their bytes
	 * back to the budget */
	view_tree_stop(v);
	view_arc_release_all(v);
	orch_dest_free(v->own_dest);
	cm_budget_free(v->budget);
	free(v->scope);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	/* every node, whatever the kernel still holds */
	for (size_t b = 0; b < v->nbuckets; b++) {
		struct view_node *n = v->by_ino[b], *next;

		for (; n; n = next) {
			next = n->next_ino;
			free(n->name);
			free(n->key);
			view_tent_free(n->tent);
			free(n);
		}
	}
	for (size_t i = 0; i < v->nvaults; i++) {
		ents_free(v->vs[i].ents, v->vs[i].n);
		orch_provider_free(v->vs[i].prov);
		pthread_mutex_destroy(&v->vs[i].scan_lock);
	}
	free(v->vs);
	free(v->by_ino);
	free(v->by_name);
	free(v->uploads_dir);
	free(v->afiles);
	free(v->pinned);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->uploads_lock);
	pthread_mutex_destroy(&v->files_lock);
	for (size_t i = 0; i < VIEW_NOTES; i++) {
		free(v->notes[i].rp);
		free(v->notes[i].line);
	}
	pthread_mutex_destroy(&v->notes_lock);
	pthread_mutex_destroy(&v->trees_lock);
	pthread_cond_destroy(&v->trees_cond);
	pthread_cond_destroy(&v->checks_cond);
	free(v);
}

void view_stats_get(struct view *v, struct view_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->bytes_written = atomic_load(&v->bytes_written);
	out->bytes_read = atomic_load(&v->bytes_read);
	out->objects_written = atomic_load(&v->objects_written);
	out->write_errors = atomic_load(&v->write_errors);
	out->control_errors = atomic_load(&v->control_errors);
	out->uploads_open = atomic_load(&v->uploads_open);
	if (v->budget) {
		struct cm_budget_stats bs;

		cm_budget_stats(v->budget, &bs);
		out->memory_used = bs.used;
		out->memory_peak = bs.peak;
		out->memory_limit = bs.limit;
		out->memory_waits = bs.waits;
		out->memory_waiting = bs.waiting;
	}
	out->started = v->started;
}

/* ---- rendering --------------------------------------------------------- */

static const char *vault_name(struct view *v, const struct view_node *n)
{
	return v->vs[n->vault].cfg->name;
}

/* A rejected write to control file `file` of recovery point `rp`: into
 * the notes its log file shows, besides mount.log. */
void view_note_rp(struct view *v, size_t vault, const char *rp,
		  const char *file, const char *why)
{
	struct view_note *nt;
	char stamp[40];

	cm_log_stamp(stamp, sizeof(stamp));
	pthread_mutex_lock(&v->notes_lock);
	nt = &v->notes[v->notes_next];
	v->notes_next = (v->notes_next + 1) % VIEW_NOTES;
	free(nt->rp);
	free(nt->line);
	nt->vault = vault;
	nt->rp = cm_xstrdup(rp);
	nt->line = cm_xasprintf("%s warning: view: %s: %s\n", stamp, file,
				why);
	pthread_mutex_unlock(&v->notes_lock);
}

/* The notes of recovery point `rp`, oldest first, after `text` (freed;
 * may be NULL). */
static char *with_notes(struct view *v, size_t vault, const char *rp,
			char *text)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	if (text)
		cm_buf_puts(&b, text);
	free(text);
	pthread_mutex_lock(&v->notes_lock);
	for (size_t k = 0; k < VIEW_NOTES; k++) {
		const struct view_note *nt =
		    &v->notes[(v->notes_next + k) % VIEW_NOTES];

		if (nt->rp && nt->vault == vault && !strcmp(nt->rp, rp))
			cm_buf_puts(&b, nt->line);
	}
	pthread_mutex_unlock(&v->notes_lock);
	return cm_buf_detach(&b);
}

/* The text of a dynamic or control file now. NULL: the file's recovery
 * point is gone. */
static char *render(struct view *v, const struct view_node *n,
		    const char *rp_name)
{
	struct orch *o = engine(v);
	struct orch_snapshot snap;
	struct orch_job_info ji;
	struct orch_recovery_point rp;
	struct orch_provider *prov;
	struct cm_json *desc = NULL;
	struct view_stats st;
	bool have_job = false, have_rp = false;
	char *text = NULL;
	struct cm_err err;

	memset(&snap, 0, sizeof(snap));
	memset(&ji, 0, sizeof(ji));
	memset(&rp, 0, sizeof(rp));
	cm_err_clear(&err);
	switch (n->kind) {
	case VK_README:
		return view_readme_text();
	case VK_STATUS:
	case VK_METRICS:
		if (o)
			orch_snapshot(o, &snap);
		view_stats_get(v, &st);
		text = n->kind == VK_STATUS
			   ? view_status_text(v->cfg, &snap, &st, time(NULL))
			   : view_metrics_text(v->cfg, &snap, &st, time(NULL));
		orch_snapshot_release(&snap);
		return text;
	case VK_RP_EXPORT:
		return cm_xstrdup("touch this file, or write \"start\" to it, "
				  "to queue the recovery point\n");
	case VK_RP_CANCEL:
		return cm_xstrdup("touch this file, or write \"cancel\" to "
				  "it, to stop the recovery point's job\n");
	default:
		break;
	}
	have_job = o && orch_job_for_rp(o, vault_name(v, n), rp_name, &ji) == 0;
	switch (n->kind) {
	case VK_RP_STATUS:
		text = view_rp_status_text(vault_name(v, n), rp_name,
					   have_job ? &ji : NULL,
					   v->cfg->auto_start);
		break;
	case VK_RP_LOG:
		text = with_notes(v, n->vault, rp_name,
				  have_job ? orch_job_log(o, ji.id) : NULL);
		break;
	case VK_RP_INFO:
		prov = v->vs[n->vault].prov;
		have_rp = prov->ops->inspect(prov, rp_name, &rp, &err) == 0;
		if (have_rp) {
			desc = cm_json_new_object();
			if (prov->ops->describe(prov, &rp, desc, &err)) {
				cm_debug("view: %s", err.msg);
				cm_json_free(desc);
				desc = NULL;
			}
		}
		if (desc || have_job)
			text = view_rp_info_json(vault_name(v, n), rp_name,
						 desc, have_job ? &ji : NULL);
		cm_json_free(desc);
		break;
	default:
		break;
	}
	if (have_job)
		orch_job_info_release(&ji);
	if (have_rp)
		orch_rp_release(&rp);
	return text;
}

/* ---- lookups ----------------------------------------------------------- */

static struct vault_state *vault_of(struct view *v, const struct view_node *n)
{
	return &v->vs[n->vault];
}

/* The recovery point `name` of the vault node's listing; the listing is
 * brought up to date first. */
static bool rp_exists(struct view *v, struct vault_state *vs, const char *name,
		      time_t *mtime)
{
	struct vault_ent *e;
	struct cm_err err;
	bool found;

	cm_err_clear(&err);
	if (vault_refresh(v, vs, false, &err))
		cm_debug("view: %s", err.msg);
	pthread_mutex_lock(&v->lock);
	e = ents_find(vs->ents, vs->n, name);
	found = e != NULL;
	if (e && mtime)
		*mtime = e->mtime;
	pthread_mutex_unlock(&v->lock);
	return found;
}

/* Whether the recovery point `name` (listed) has a disk.img. */
static bool rp_has_image(struct view *v, struct vault_state *vs,
			 const char *name)
{
	struct vault_ent *e;
	bool yes;

	pthread_mutex_lock(&v->lock);
	e = ents_find(vs->ents, vs->n, name);
	yes = e && e->image;
	pthread_mutex_unlock(&v->lock);
	return yes;
}

/* disk.img of the recovery point `rp_name` opened (provider.h,
 * open_image). */
static int image_open(struct view *v, const struct view_node *n,
		      struct orch_image **out, struct cm_err *err)
{
	struct orch_provider *prov = v->vs[n->vault].prov;
	struct orch_recovery_point rp;
	int rc;

	*out = NULL;
	if (!prov->ops->open_image)
		return -ENOENT;
	memset(&rp, 0, sizeof(rp));
	rc = prov->ops->inspect(prov, n->parent->name, &rp, err);
	if (rc == 0) {
		rc = prov->ops->open_image(prov, &rp, out, err);
		orch_rp_release(&rp);
	}
	if (rc)
		cm_warn("view: %s/%s/disk.img: %s", vault_name(v, n),
			n->parent->name, err->msg);
	return rc > 0 ? -EIO : rc;
}

/* The node's image, opened by the first user and shared by the others
 * (each has its own handle, all read the same cache); image_put gives it
 * back and the last user closes it. Learns the size too. */
static int image_get(struct view *v, struct view_node *n,
		     struct orch_image **out, struct cm_err *err)
{
	struct orch_image *im = NULL, *spare = NULL;
	int rc;

	pthread_mutex_lock(&v->lock);
	if (n->image) {
		n->image_users++;
		*out = n->image;
		pthread_mutex_unlock(&v->lock);
		return 0;
	}
	pthread_mutex_unlock(&v->lock);
	rc = image_open(v, n, &im, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&v->lock);
	if (n->image) {
		spare = im; /* another open won the race */
	} else {
		n->image = im;
		n->size = im->size;
		n->rendered_ns = cm_now_ns();
	}
	n->image_users++;
	*out = n->image;
	pthread_mutex_unlock(&v->lock);
	if (spare)
		spare->close(spare);
	return 0;
}

static void image_put(struct view *v, struct view_node *n)
{
	struct orch_image *im = NULL;

	pthread_mutex_lock(&v->lock);
	if (--n->image_users == 0) {
		im = n->image;
		n->image = NULL;
	}
	pthread_mutex_unlock(&v->lock);
	if (im)
		im->close(im);
}

/* disk.img's size, learned once (the snapshot listed, its image opened
 * and closed unless a handle holds it): it never changes. */
static int image_learn_size(struct view *v, struct view_node *n)
{
	struct orch_image *im;
	struct cm_err err;
	bool known;
	int rc;

	pthread_mutex_lock(&v->lock);
	known = n->rendered_ns != 0;
	pthread_mutex_unlock(&v->lock);
	if (known)
		return 0;
	cm_err_clear(&err);
	rc = image_get(v, n, &im, &err);
	if (rc == 0)
		image_put(v, n);
	return rc;
}

/* Under ->lock: the child `name` of a vault-tree directory, made if the
 * name is one it has (rp_mtime: for a recovery point). NULL: no such
 * name. */
static struct view_node *tree_child_locked(struct view *v,
					   struct view_node *parent,
					   const char *name,
					   enum view_kind kind, time_t mtime)
{
	struct view_node *n = view_child_locked(v, parent, name);

	if (!n)
		n = view_node_new_locked(v, parent, name, kind);
	if (kind == VK_RP)
		n->mtime = mtime;
	return n;
}

static int lookup_fixed(struct view *v, struct view_node *parent,
			const char *name, struct view_node **out)
{
	switch (parent->kind) {
	case VK_ROOT:
		if (!strcmp(name, "status"))
			*out = v->status;
		else if (!strcmp(name, "metrics"))
			*out = v->metrics;
		else if (!strcmp(name, "README"))
			*out = v->readme;
		else if (!strcmp(name, "vaults"))
			*out = v->vaults;
		else if (!strcmp(name, "archive"))
			*out = v->archive;
		return *out ? 0 : -ENOENT;
	case VK_VAULTS:
		for (size_t i = 0; i < v->nvaults; i++)
			if (!strcmp(v->vs[i].cfg->name, name))
				*out = v->vs[i].node;
		return *out ? 0 : -ENOENT;
	case VK_ARCHIVE:
		if (!strcmp(name, v->store_node->name))
			*out = v->store_node;
		return *out ? 0 : -ENOENT;
	default:
		return -ENOENT;
	}
}

/* files/ of recovery point p: its job's archive, when indexed */
static int rp_files_lookup(struct view *v, struct view_node *p,
			   struct view_attr *out)
{
	struct view_node *n;
	time_t mtime = 0;
	char *key;

	if (!rp_exists(v, vault_of(v, p), p->name, NULL))
		return -ENOENT;
	key = view_tree_rp_key(v, p->vault, p->name, &mtime);
	if (!key)
		return -ENOENT;
	pthread_mutex_lock(&v->lock);
	n = view_tree_root_locked(v, p, VIEW_FILES_NAME, key, mtime);
	n->nlookup++;
	view_attr_locked(v, n, out);
	pthread_mutex_unlock(&v->lock);
	free(key);
	return 0;
}

int view_lookup(struct view *v, uint64_t parent, const char *name,
		struct view_attr *out, struct cm_err *err)
{
	struct view_node *p = view_node_get(v, parent), *n = NULL;
	enum view_kind kind = VK_ROOT;
	time_t mtime = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->entry_timeout = NEGATIVE_TIMEOUT;
	if (!p)
		return cm_err_set(err, ENOENT, "view: no inode %llu",
				  (unsigned long long)parent);
	switch (p->kind) {
	case VK_ROOT:
	case VK_VAULTS:
	case VK_ARCHIVE:
		rc = lookup_fixed(v, p, name, &n);
		if (rc == 0 && n->kind == VK_VAULT) {
			struct cm_err e;

			cm_err_clear(&e);
			vault_refresh(v, vault_of(v, n), false, &e);
		}
		if (rc == 0) {
			pthread_mutex_lock(&v->lock);
			n->nlookup++;
			view_attr_locked(v, n, out);
			pthread_mutex_unlock(&v->lock);
		}
		break;
	case VK_VAULT:
		if (!rp_exists(v, vault_of(v, p), name, &mtime)) {
			rc = -ENOENT;
			break;
		}
		kind = VK_RP;
		__attribute__((fallthrough)); /* gcc and clang alike */
	case VK_RP:
		if (p->kind == VK_RP && !strcmp(name, VIEW_FILES_NAME)) {
			rc = rp_files_lookup(v, p, out);
			break;
		}
		if (p->kind == VK_RP) {
			rc = -ENOENT;
			for (size_t i = 0; i < N_RP_FILES; i++) {
				if (!strcmp(rp_files[i].name, name)) {
					kind = rp_files[i].kind;
					rc = 0;
				}
			}
			if (rc && !strcmp(name, IMAGE_NAME) &&
			    rp_has_image(v, vault_of(v, p), p->name)) {
				kind = VK_RP_IMAGE;
				rc = 0;
			}
			if (rc)
				break;
		}
		pthread_mutex_lock(&v->lock);
		n = tree_child_locked(v, p, name, kind, mtime);
		view_node_ref_locked(n);
		pthread_mutex_unlock(&v->lock);
		if (kind == VK_RP_IMAGE)
			rc = image_learn_size(v, n);
		pthread_mutex_lock(&v->lock);
		if (rc == 0) {
			n->nlookup++;
			view_attr_locked(v, n, out);
		}
		view_node_unref_locked(v, n);
		pthread_mutex_unlock(&v->lock);
		break;
	case VK_STORE:
	case VK_ARC_DIR:
		rc = view_arc_lookup(v, p, name, out, err);
		break;
	case VK_TREE_ROOT:
	case VK_TREE_DIR:
		rc = view_tree_lookup(v, p, name, out, err);
		break;
	default:
		rc = -ENOTDIR;
		break;
	}
	view_node_put(v, p);
	if (rc == -ENOENT)
		out->entry_timeout = NEGATIVE_TIMEOUT;
	return rc;
}

void view_forget(struct view *v, uint64_t ino, uint64_t nlookup)
{
	struct view_node *n;

	pthread_mutex_lock(&v->lock);
	n = node_by_ino_locked(v, ino);
	if (n) {
		n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
		node_free_locked(v, n);
	}
	pthread_mutex_unlock(&v->lock);
}

/* The name of the recovery point a node belongs to (VK_RP and its
 * files). Borrowed from the node, which the caller holds. */
static const char *rp_name_of(const struct view_node *n)
{
	return n->kind == VK_RP ? n->name : n->parent->name;
}

/* A dynamic file's size, rendered at most once per RENDER_TTL. */
static void refresh_size(struct view *v, struct view_node *n)
{
	uint64_t now = cm_now_ns();
	char *text;

	pthread_mutex_lock(&v->lock);
	if (n->rendered_ns && now - n->rendered_ns < RENDER_TTL_NS) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	pthread_mutex_unlock(&v->lock);
	text = render(v, n,
		      vk_is_root_file(n->kind)
			  ? NULL
			  : rp_name_of(n));
	pthread_mutex_lock(&v->lock);
	n->size = text ? strlen(text) : 0;
	n->mtime = time(NULL);
	n->rendered_ns = cm_now_ns();
	pthread_mutex_unlock(&v->lock);
	free(text);
}

int view_getattr(struct view *v, uint64_t ino, struct view_attr *out,
		 struct cm_err *err)
{
	struct view_node *n = view_node_get(v, ino);
	int rc = 0;

	if (!n)
		return cm_err_set(err, ENOENT, "view: no inode %llu",
				  (unsigned long long)ino);
	if (n->kind == VK_VAULT) {
		struct cm_err e;

		cm_err_clear(&e);
		vault_refresh(v, vault_of(v, n), false, &e);
	}
	if (n->kind == VK_RP || (n->parent && n->parent->kind == VK_RP)) {
		const struct view_node *rp = n->kind == VK_RP ? n : n->parent;

		if (!rp_exists(v, vault_of(v, rp), rp->name, NULL)) {
			rc = -ENOENT;
			goto out;
		}
	}
	if (is_dynamic(n->kind))
		refresh_size(v, n);
	if (n->kind == VK_RP_IMAGE && (rc = image_learn_size(v, n)))
		goto out;
	pthread_mutex_lock(&v->lock);
	view_attr_locked(v, n, out);
	pthread_mutex_unlock(&v->lock);
out:
	view_node_put(v, n);
	return rc;
}

bool view_may_block(struct view *v, uint64_t ino)
{
	struct view_node *n;
	bool r = false;

	pthread_mutex_lock(&v->lock);
	n = node_by_ino_locked(v, ino);
	if (n && (n->kind == VK_RP_IMAGE ||
		  (n->kind == VK_RP && v->vs[n->vault].prov->ops->open_image))) {
		/* disk.img's reads fetch blocks over the network, its
		 * lookup lists the snapshot */
		pthread_mutex_unlock(&v->lock);
		return true;
	}
	if (!v->store->remote) {
		pthread_mutex_unlock(&v->lock);
		return false;
	}
	/* an archive's tree reads the store */
	if (n && vk_is_tree(n->kind)) {
		pthread_mutex_unlock(&v->lock);
		return true;
	}
	/* a directory on the way down to the scope answers from the scope
	 * alone (view_arc_*): no network, no worker to wait for */
	r = n && vk_is_archive(n->kind) &&
	    !(vk_is_archive_dir(n->kind) && view_arc_on_way(v, n->key));
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* ---- directories ------------------------------------------------------- */

struct dir_item *view_dir_add(struct view_dir *d, size_t *cap, const char *name,
			      enum view_kind kind, mode_t mode)
{
	struct dir_item *it;

	if (d->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		d->items = cm_xrealloc(d->items, *cap * sizeof(*d->items));
	}
	it = &d->items[d->n++];
	memset(it, 0, sizeof(*it));
	it->name = cm_xstrdup(name);
	it->de.name = it->name;
	it->kind = kind;
	it->de.attr.mode = mode;
	return it;
}

void view_dir_clear(struct view_dir *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].name);
		free(d->items[i].key);
		view_tent_free(d->items[i].tent);
	}
	free(d->items);
	d->items = NULL;
	d->n = 0;
}

/* Fill the snapshot of a vault-tree directory. */
static int tree_fill(struct view *v, struct view_dir *d, struct cm_err *err)
{
	struct view_node *n = d->node;
	size_t cap = 0;
	int rc = 0;

	view_dir_add(d, &cap, ".", n->kind, S_IFDIR);
	view_dir_add(d, &cap, "..", VK_ROOT, S_IFDIR);
	switch (n->kind) {
	case VK_ROOT:
		view_dir_add(d, &cap, "status", VK_STATUS, S_IFREG);
		view_dir_add(d, &cap, "metrics", VK_METRICS, S_IFREG);
		view_dir_add(d, &cap, "README", VK_README, S_IFREG);
		view_dir_add(d, &cap, "vaults", VK_VAULTS, S_IFDIR);
		view_dir_add(d, &cap, "archive", VK_ARCHIVE, S_IFDIR);
		break;
	case VK_VAULTS:
		for (size_t i = 0; i < v->nvaults; i++)
			view_dir_add(d, &cap, v->vs[i].cfg->name, VK_VAULT,
				     S_IFDIR);
		break;
	case VK_ARCHIVE:
		view_dir_add(d, &cap, v->store_node->name, VK_STORE, S_IFDIR);
		break;
	case VK_VAULT: {
		struct vault_state *vs = vault_of(v, n);

		rc = vault_refresh(v, vs, false, err);
		pthread_mutex_lock(&v->lock);
		d->items = cm_xrealloc(d->items,
				       (d->n + vs->n + 1) * sizeof(*d->items));
		cap = d->n + vs->n + 1;
		for (size_t i = 0; i < vs->n; i++) {
			view_dir_add(d, &cap, vs->ents[i].name, VK_RP, S_IFDIR);
			d->items[d->n - 1].obj.mtime = vs->ents[i].mtime;
		}
		pthread_mutex_unlock(&v->lock);
		break;
	}
	case VK_RP: {
		struct dir_item *it;
		time_t mtime = 0;
		char *key;

		for (size_t i = 0; i < N_RP_FILES; i++)
			view_dir_add(d, &cap, rp_files[i].name,
				     rp_files[i].kind, S_IFREG);
		if (rp_has_image(v, vault_of(v, n), n->name))
			view_dir_add(d, &cap, IMAGE_NAME, VK_RP_IMAGE,
				     S_IFREG);
		key = view_tree_rp_key(v, n->vault, n->name, &mtime);
		if (key) {
			it = view_dir_add(d, &cap, VIEW_FILES_NAME,
					  VK_TREE_ROOT, S_IFDIR);
			it->key = key;
			it->obj.mtime = mtime;
		}
		break;
	}
	default:
		rc = -ENOTDIR;
		break;
	}
	return rc;
}

int view_opendir(struct view *v, uint64_t ino, struct view_dir **out,
		 bool *cacheable, struct cm_err *err)
{
	struct view_dir *d = cm_xcalloc(1, sizeof(*d));
	int rc;

	*cacheable = false;
	pthread_mutex_init(&d->lock, NULL);
	d->node = view_node_get(v, ino);
	if (!d->node) {
		free(d);
		return cm_err_set(err, ENOENT, "view: no inode %llu",
				  (unsigned long long)ino);
	}
	if (!vk_is_dir(d->node->kind)) {
		rc = -ENOTDIR;
		goto fail;
	}
	rc = view_dir_refresh(v, d, err);
	if (rc)
		goto fail;
	/* the vault tree tells the kernel when a listing changes */
	*cacheable = !vk_is_archive(d->node->kind);
	*out = d;
	return 0;
fail:
	view_releasedir(v, d);
	return rc;
}

int view_dir_refresh(struct view *v, struct view_dir *d, struct cm_err *err)
{
	view_dir_clear(d);
	if (vk_is_archive(d->node->kind))
		return view_arc_opendir(v, d, err);
	if (vk_is_tree_dir(d->node->kind)) {
		/* listed at the first readdir (view_dir_seek): an opendir
		 * the kernel answers from its cache of the listing costs
		 * nothing */
		d->loaded = false;
		return 0;
	}
	return tree_fill(v, d, err);
}

int view_dir_seek(struct view *v, struct view_dir *d, uint64_t off,
		  struct cm_err *err)
{
	if (vk_is_tree_dir(d->node->kind))
		return view_tree_dir_load(v, d, err);
	if (!d->paged)
		return 0;
	return view_arc_seek(v, d, off, err);
}

const struct view_dirent *view_dir_entry(struct view_dir *d, size_t off)
{
	if (off < d->base || off - d->base >= d->n)
		return NULL;
	return &d->items[off - d->base].de;
}

int view_dir_lookup(struct view *v, struct view_dir *d, size_t off,
		    struct view_attr *out)
{
	struct dir_item *it;
	struct view_node *n, *p = d->node;

	if (off < d->base || off - d->base >= d->n)
		return -ENOENT;
	it = &d->items[off - d->base];
	memset(out, 0, sizeof(*out));
	if (off < 2) {
		out->mode = S_IFDIR;
		return 0;
	}
	pthread_mutex_lock(&v->lock);
	n = vk_is_tree(it->kind) ? view_tree_item_node_locked(v, p, it)
				 : view_child_locked(v, p, it->name);
	if (!n) {
		struct view_node *fixed = NULL;

		if (lookup_fixed(v, p, it->name, &fixed) == 0) {
			n = fixed;
		} else {
			n = view_node_new_locked(v, p, it->name, it->kind);
			if (vk_is_archive(it->kind)) {
				char *key = NULL;

				if (view_arc_child_key(p->key, it->name,
						       it->kind == VK_ARC_DIR,
						       &key)) {
					/* listed, so it fits */
					key = cm_xstrdup("");
				}
				n->key = key;
			}
		}
	}
	if (it->kind == VK_RP || it->kind == VK_ARC_FILE)
		n->mtime = it->obj.mtime;
	if (it->kind == VK_ARC_FILE && !n->writers)
		n->size = it->obj.size;
	n->nlookup++;
	view_attr_locked(v, n, out);
	pthread_mutex_unlock(&v->lock);
	it->de.attr = *out;
	return 0;
}

void view_releasedir(struct view *v, struct view_dir *d)
{
	if (!d)
		return;
	view_dir_clear(d);
	view_arc_dir_free(d);
	pthread_mutex_destroy(&d->lock);
	view_node_put(v, d->node);
	free(d);
}

/* ---- control files ----------------------------------------------------- */

static int control_run(struct view *v, struct view_node *n, struct cm_err *err)
{
	struct orch *o = engine(v);
	const char *vault = vault_name(v, n), *rp = n->parent->name;
	char id[ORCH_JOB_ID_SIZE];
	struct orch_job_info ji;
	struct cm_err local;
	bool queued = false;
	int rc;

	if (!err) {
		cm_err_clear(&local);
		err = &local;
	}
	if (!o)
		return cm_err_set(err, ENOTCONN, "view: no engine");
	if (n->kind == VK_RP_EXPORT) {
		rc = orch_export(o, vault, rp, id, &queued, err);
		if (rc == 0)
			cm_info("view: export %s/%s: %s job %s", vault, rp,
				queued ? "queued" : "already has", id);
		return rc;
	}
	if (orch_job_for_rp(o, vault, rp, &ji) != 0) {
		cm_info("view: cancel %s/%s: no job to cancel", vault, rp);
		return 0;
	}
	rc = orch_cancel(o, ji.id, err);
	if (rc == -EALREADY) {
		cm_info("view: cancel %s/%s: %s", vault, rp, err->msg);
		cm_err_clear(err);
		rc = 0;
	} else if (rc == 0) {
		cm_info("view: cancel %s/%s: job %s", vault, rp, ji.id);
	}
	orch_job_info_release(&ji);
	return rc;
}

static int control_write(struct view *v, struct view_file *f, const char *p,
			 size_t n, struct cm_err *err)
{
	enum view_control which =
	    f->kind == VK_RP_EXPORT ? VIEW_CTL_EXPORT : VIEW_CTL_CANCEL;
	struct cm_err local;
	int rc;

	if (!err) {
		cm_err_clear(&local);
		err = &local;
	}
	pthread_mutex_lock(&f->lock);
	f->ctl_pending = false;
	pthread_mutex_unlock(&f->lock);
	rc = view_control_parse(which, p, n, err);
	if (rc) {
		atomic_fetch_add(&v->control_errors, 1);
		cm_warn("view: vaults/%s/%s/%s: %s", vault_name(v, f->node),
			f->node->parent->name, f->node->name, err->msg);
		view_note_rp(v, f->node->vault, f->node->parent->name,
			     f->node->name, err->msg);
		return rc;
	}
	return control_run(v, f->node, err);
}

/* ---- files ------------------------------------------------------------- */

struct view_file *view_file_new(struct view_node *n)
{
	struct view_file *f = cm_xcalloc(1, sizeof(*f));

	f->node = n;
	f->kind = n->kind;
	pthread_mutex_init(&f->lock, NULL);
	return f;
}

void view_file_free(struct view *v, struct view_file *f)
{
	if (f->image)
		image_put(v, f->node);
	if (f->tree)
		view_tree_close(v, f);
	view_node_put(v, f->node);
	free(f->text);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

uint64_t view_open_mem_need(struct view *v, uint64_t ino, bool create,
			    int flags)
{
	struct view_node *n;
	bool writer;

	if (!v->store || !v->store->budget || !v->store->ops->write_memory)
		return 0;
	n = view_node_get(v, ino);
	if (!n)
		return 0;
	/* an open for writing starts a writer only where it may replace
	 * the object (view_arc_open refuses the others at once) */
	writer = create ? n->kind == VK_STORE || n->kind == VK_ARC_DIR
			: n->kind == VK_ARC_FILE &&
				  (flags & O_ACCMODE) != O_RDONLY &&
				  v->opts.allow_overwrite &&
				  (flags & O_TRUNC);
	view_node_put(v, n);
	return writer ? v->store->ops->write_memory(v->store) : 0;
}

int view_mem_queue(struct view *v, struct cm_budget_waiter *w)
{
	return cm_budget_queue(v->budget, w);
}

bool view_mem_cancel(struct view *v, struct cm_budget_waiter *w)
{
	return cm_budget_cancel(v->budget, w);
}

void view_mem_give(struct view *v, uint64_t n)
{
	cm_budget_give(v->budget, n);
}

int view_open(struct view *v, uint64_t ino, int flags, struct view_file **out,
	      struct view_open_out *oo, struct cm_err *err)
{
	return view_open_mem(v, ino, flags, 0, out, oo, err);
}

int view_open_mem(struct view *v, uint64_t ino, int flags, uint64_t mem,
		  struct view_file **out, struct view_open_out *oo,
		  struct cm_err *err)
{
	struct view_node *n = view_node_get(v, ino);
	struct view_file *f;
	bool writing = (flags & O_ACCMODE) != O_RDONLY;
	int rc = 0;

	memset(oo, 0, sizeof(*oo));
	*out = NULL;
	if (n && n->kind == VK_ARC_FILE) {
		f = view_file_new(n); /* takes the reference */
		rc = view_arc_open(v, f, flags, mem, oo, err);
		goto out;
	}
	if (mem)
		cm_budget_give(v->budget, mem); /* not a writer's */
	if (!n)
		return cm_err_set(err, ENOENT, "view: no inode %llu",
				  (unsigned long long)ino);
	if (vk_is_dir(n->kind)) {
		view_node_put(v, n);
		return -EISDIR;
	}
	f = view_file_new(n); /* takes the reference */
	if (n->kind == VK_TREE_ENTRY) {
		rc = view_tree_open(v, f, flags, oo, err);
		goto out;
	}
	oo->direct_io = true;
	if (writing && n->kind != VK_RP_EXPORT && n->kind != VK_RP_CANCEL) {
		rc = cm_err_set(err, EACCES, "view: %s is read-only", n->name);
		goto out;
	}
	if (!vk_is_root_file(n->kind) &&
	    !rp_exists(v, vault_of(v, n), rp_name_of(n), NULL)) {
		rc = -ENOENT;
		goto out;
	}
	if (writing) {
		f->ctl_pending = (flags & O_TRUNC) != 0;
		goto out;
	}
	if (n->kind == VK_RP_IMAGE) {
		/* the page cache may keep what was read: it never changes */
		oo->direct_io = false;
		oo->keep_cache = true;
		rc = image_get(v, n, &f->image, err);
		goto out;
	}
	f->text = render(v, n,
			 vk_is_root_file(n->kind)
			     ? NULL
			     : rp_name_of(n));
	if (!f->text) {
		rc = -ENOENT;
		goto out;
	}
	f->len = strlen(f->text);
	pthread_mutex_lock(&v->lock);
	n->size = f->len;
	n->mtime = time(NULL);
	n->rendered_ns = cm_now_ns();
	pthread_mutex_unlock(&v->lock);
out:
	if (rc) {
		view_file_free(v, f);
		return rc;
	}
	*out = f;
	return 0;
}

int view_create(struct view *v, uint64_t parent, const char *name, mode_t mode,
		int flags, struct view_file **out, struct view_attr *attr,
		struct view_open_out *oo, struct cm_err *err)
{
	return view_create_mem(v, parent, name, mode, flags, 0, out, attr, oo,
			       err);
}

int view_create_mem(struct view *v, uint64_t parent, const char *name,
		    mode_t mode, int flags, uint64_t mem,
		    struct view_file **out, struct view_attr *attr,
		    struct view_open_out *oo, struct cm_err *err)
{
	struct view_node *p = view_node_get(v, parent);
	int rc;

	memset(oo, 0, sizeof(*oo));
	*out = NULL;
	if (mem && (!p || (p->kind != VK_STORE && p->kind != VK_ARC_DIR) ||
		    (!S_ISREG(mode) && (mode & S_IFMT)))) {
		cm_budget_give(v->budget, mem); /* not a writer's */
		mem = 0;
	}
	if (!p)
		return -ENOENT;
	if (p->kind != VK_STORE && p->kind != VK_ARC_DIR) {
		/* the vault tree's names are fixed, archives' trees too */
		rc = vk_is_tree_dir(p->kind) ? -EROFS
		     : vk_is_dir(p->kind)    ? -EACCES
					     : -ENOTDIR;
		if (p->kind == VK_RP) {
			for (size_t i = 0; i < N_RP_FILES; i++)
				if (!strcmp(rp_files[i].name, name))
					rc = -EEXIST;
		}
		view_node_put(v, p);
		return rc;
	}
	if (!S_ISREG(mode) && (mode & S_IFMT)) {
		view_node_put(v, p);
		return -EPERM;
	}
	rc = view_arc_create(v, p, name, flags, mem, out, attr, oo, err);
	view_node_put(v, p);
	return rc;
}

uint64_t view_read_mem_need(struct view *v, struct view_file *f, uint64_t off,
			    size_t len)
{
	return f->kind == VK_ARC_FILE ? view_arc_read_need(v, f, off, len) : 0;
}

int view_read(struct view *v, struct view_file *f, uint64_t off, char *buf,
	      size_t len, size_t *got, struct cm_err *err)
{
	return view_read_mem(v, f, off, buf, len, 0, got, err);
}

int view_read_mem(struct view *v, struct view_file *f, uint64_t off, char *buf,
		  size_t len, uint64_t mem, size_t *got, struct cm_err *err)
{
	*got = 0;
	if (f->kind == VK_ARC_FILE)
		return view_arc_read(v, f, off, buf, len, mem, got, err);
	view_mem_give(v, mem); /* not a reader's */
	if (f->kind == VK_TREE_ENTRY)
		return view_tree_read(v, f, off, buf, len, got, err);
	if (f->kind == VK_RP_IMAGE) {
		uint64_t size = f->image->size;
		int rc;

		if (off >= size)
			return 0;
		if (len > size - off)
			len = (size_t)(size - off);
		rc = f->image->read(f->image, buf, len, off);
		if (rc)
			return cm_err_set(err, -rc, "view: disk.img at %llu: %s",
					  (unsigned long long)off,
					  strerror(-rc));
		*got = len;
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	if (f->text && off < f->len) {
		*got = f->len - off < len ? f->len - off : len;
		memcpy(buf, f->text + off, *got);
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int view_write(struct view *v, struct view_file *f, uint64_t off, const void *p,
	       size_t n, struct cm_err *err)
{
	if (f->kind == VK_ARC_FILE)
		return view_arc_write(v, f, off, p, n, err);
	if (f->kind == VK_RP_EXPORT || f->kind == VK_RP_CANCEL)
		return control_write(v, f, p, n, err);
	return -EBADF;
}

int view_write_nowait(struct view *v, struct view_file *f, uint64_t off,
		      const void *p, size_t n)
{
	if (f->kind == VK_ARC_FILE)
		return view_arc_write_nowait(v, f, off, p, n);
	return -EAGAIN;
}

int view_flush(struct view *v, struct view_file *f, struct cm_err *err)
{
	if (f->kind == VK_ARC_FILE)
		return view_arc_flush(v, f, err);
	/* a control file's pending word waits for the last close: a shell
	 * closes a copy of the descriptor before it writes */
	return 0;
}

int view_fsync(struct view *v, struct view_file *f, struct cm_err *err)
{
	if (f->kind == VK_ARC_FILE)
		return view_arc_fsync(v, f, err);
	return 0;
}

void view_release(struct view *v, struct view_file *f)
{
	struct cm_err err;
	bool pending;

	if (!f)
		return;
	cm_err_clear(&err);
	if (f->kind == VK_ARC_FILE) {
		view_arc_close(v, f, false);
	} else {
		pthread_mutex_lock(&f->lock);
		pending = f->ctl_pending;
		f->ctl_pending = false;
		pthread_mutex_unlock(&f->lock);
		if (pending && control_run(v, f->node, &err))
			cm_warn("view: %s", err.msg);
	}
	view_file_free(v, f);
}

int view_setattr(struct view *v, uint64_t ino, struct view_file *f,
		 unsigned what, uint64_t size, struct view_attr *out,
		 struct cm_err *err)
{
	struct view_node *n = view_node_get(v, ino);
	int rc = 0;

	if (!n)
		return -ENOENT;
	switch (n->kind) {
	case VK_RP_EXPORT:
	case VK_RP_CANCEL:
		if ((what & VIEW_SET_SIZE) && f) {
			/* the truncation of an open with O_TRUNC (it comes
			 * with a new mtime too): the word at close, unless a
			 * write says otherwise before */
			pthread_mutex_lock(&f->lock);
			f->ctl_pending = true;
			pthread_mutex_unlock(&f->lock);
		} else if (what & (VIEW_SET_TIMES | VIEW_SET_SIZE)) {
			/* touch, truncate(1): the file's word, now */
			if (f) {
				pthread_mutex_lock(&f->lock);
				f->ctl_pending = false;
				pthread_mutex_unlock(&f->lock);
			}
			rc = control_run(v, n, err);
		}
		break;
	case VK_ARC_FILE:
	case VK_ARC_DIR:
	case VK_STORE:
		rc = view_arc_setattr(v, n, f, what, size, err);
		break;
	case VK_TREE_ROOT:
	case VK_TREE_DIR:
	case VK_TREE_ENTRY:
		rc = -EROFS;
		break;
	default:
		/* times of the other nodes mean nothing; sizes are theirs */
		if (what & (VIEW_SET_SIZE | VIEW_SET_MODE | VIEW_SET_OWNER))
			rc = -EACCES;
		break;
	}
	if (rc == 0) {
		pthread_mutex_lock(&v->lock);
		view_attr_locked(v, n, out);
		pthread_mutex_unlock(&v->lock);
	}
	view_node_put(v, n);
	return rc;
}

int view_unlink(struct view *v, uint64_t parent, const char *name,
		struct cm_err *err)
{
	struct view_node *p = view_node_get(v, parent);
	int rc;

	if (!p)
		return -ENOENT;
	if (vk_is_archive_dir(p->kind))
		rc = view_arc_unlink(v, p, name, err);
	else if (vk_is_tree_dir(p->kind))
		rc = -EROFS;
	else
		rc = cm_err_set(err, EPERM,
				"view: %s: the vault tree is "
				"read-only",
				name);
	view_node_put(v, p);
	return rc;
}

int view_mkdir(struct view *v, uint64_t parent, const char *name,
	       struct view_attr *out, struct cm_err *err)
{
	struct view_node *p = view_node_get(v, parent);
	int rc;

	if (!p)
		return -ENOENT;
	if (vk_is_archive_dir(p->kind))
		rc = view_arc_mkdir(v, p, name, out, err);
	else if (vk_is_tree_dir(p->kind))
		rc = -EROFS;
	else
		rc = -EACCES;
	view_node_put(v, p);
	return rc;
}

int view_rmdir(struct view *v, uint64_t parent, const char *name,
	       struct cm_err *err)
{
	struct view_node *p = view_node_get(v, parent);
	int rc;

	if (!p)
		return -ENOENT;
	if (vk_is_archive_dir(p->kind))
		rc = view_arc_rmdir(v, p, name, err);
	else if (vk_is_tree_dir(p->kind))
		rc = -EROFS;
	else
		rc = -EPERM;
	view_node_put(v, p);
	return rc;
}

int view_readlink(struct view *v, uint64_t ino, char **out,
		  struct cm_err *err)
{
	struct view_node *n = view_node_get(v, ino);
	int rc;

	*out = NULL;
	if (!n)
		return -ENOENT;
	rc = view_tree_readlink(v, n, out, err);
	view_node_put(v, n);
	return rc;
}

int view_refuse(struct view *v, uint64_t ino)
{
	struct view_node *n = view_node_get(v, ino);
	int rc = n && vk_is_tree(n->kind) ? -EROFS : -EPERM;

	view_node_put(v, n);
	return rc;
}
