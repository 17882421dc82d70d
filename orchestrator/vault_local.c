/*
 * vault_local.c - scanning and watching a local vault (see vault_local.h).
 *
 * examine() is the one place that looks at an entry: it classifies it,
 * computes its signature (walking a tree) and, when asked, fills a
 * `struct orch_recovery_point` including the sidecar. The scan calls it for
 * every entry; the watcher keeps one `struct entry` per candidate with the
 * last signature and the monotonic time it last changed, and reports an
 * entry when that time is a quiet period old and no writer has it open.
 * Entries already reported are only re-checked shallowly (type and inode),
 * so a periodic rescan does not walk big trees that were already taken.
 */
#include "vault_local.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define TREE_MAX_DEPTH 256
#define WATCH_EVENTS                                                      \
	(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |       \
	 IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)

/* What must stay the same over the quiet period. */
struct sig {
	bool tree;           /* a directory, else an image */
	uint64_t ino;
	uint64_t size;     /* image: st_size; tree: sum of its files */
	uint64_t files;    /* tree: number of entries below */
	int64_t mtime_ns;  /* the newest, for a tree */
	int64_t ctime_ns;
	int64_t side_size; /* the sidecar's; -1: none */
	int64_t side_mtime_ns;
};

/* (device, inode) pairs of files open for writing somewhere. */
struct file_id {
	dev_t dev;
	ino_t ino;
};

struct inode_set {
	struct file_id *v;
	size_t n;
	size_t cap;
};

/* ---- names and lists --------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool orch_vault_name_ignored(const char *name)
{
	return name[0] == '.' || has_suffix(name, ".partial") ||
	       has_suffix(name, ".json") || strcmp(name, "lost+found") == 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* ---- writers ----------------------------------------------------------- */

static bool set_has(const struct inode_set *s, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].dev == dev && s->v[i].ino == ino)
			return true;
	return false;
}

static void set_add(struct inode_set *s, dev_t dev, ino_t ino)
{
	if (set_has(s, dev, ino))
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 32;
		s->v = cm_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n].dev = dev;
	s->v[s->n].ino = ino;
	s->n++;
}

static void set_release(struct inode_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* /proc/PID/fdinfo/FD says the descriptor was opened for writing. */
static bool fd_writable(int fdinfo_dir, const char *fd_name)
{
	char buf[512];
	const char *flags;
	ssize_t n;
	int fd = openat(fdinfo_dir, fd_name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	flags = strstr(buf, "flags:");
	if (!flags)
		return false;
	return (strtoul(flags + 6, NULL, 8) & O_ACCMODE) != O_RDONLY;
}

/* Every regular file some visible process has open for writing. */
static void writers_collect(struct inode_set *s)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;

	if (!proc)
		return;
	while ((p = readdir(proc))) {
		char path[sizeof("/proc//fdinfo") + NAME_MAX];
		int fd_dir, info_dir;
		DIR *fds;
		struct dirent *f;

		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fdinfo", p->d_name);
		info_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (info_dir < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fd_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fds = fd_dir >= 0 ? fdopendir(fd_dir) : NULL;
		if (!fds) {
			if (fd_dir >= 0)
				close(fd_dir);
			close(info_dir);
			continue;
		}
		while ((f = readdir(fds))) {
			struct stat st;

			if (!isdigit((unsigned char)f->d_name[0]) ||
			    !fd_writable(info_dir, f->d_name))
				continue;
			if (fstatat(dirfd(fds), f->d_name, &st, 0) == 0 &&
			    S_ISREG(st.st_mode))
				set_add(s, st.st_dev, st.st_ino);
		}
		closedir(fds);
		close(info_dir);
	}
	closedir(proc);
}

/* ---- examining an entry ------------------------------------------------ */

struct tree_walk {
	dev_t dev;                     /* stay on the tree's filesystem */
	uint64_t size;
	uint64_t files;
	int64_t mtime_ns;
	int64_t ctime_ns;
	const struct inode_set *writers; /* NULL: do not look for writers */
	bool busy;
};

static void walk_note(struct tree_walk *t, const struct stat *st)
{
	if (ts_ns(&st->st_mtim) > t->mtime_ns)
		t->mtime_ns = ts_ns(&st->st_mtim);
	if (ts_ns(&st->st_ctim) > t->ctime_ns)
		t->ctime_ns = ts_ns(&st->st_ctim);
}

/* Walk the directory open at dfd (which is consumed). Unreadable parts are
 * skipped: archiving them will fail with a proper message. */
static void walk(int dfd, unsigned depth, struct tree_walk *t)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;
		int sub;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		t->files++;
		walk_note(t, &st);
		if (S_ISREG(st.st_mode)) {
			t->size += (uint64_t)st.st_size;
			if (t->writers &&
			    set_has(t->writers, st.st_dev, st.st_ino))
				t->busy = true;
		} else if (S_ISDIR(st.st_mode) && st.st_dev == t->dev &&
			   depth < TREE_MAX_DEPTH) {
			sub = openat(dirfd(d), e->d_name, O_RDONLY |
				     O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				walk(sub, depth + 1, t);
		}
	}
	closedir(d);
}

static int sidecar_tags(const struct cm_json *obj,
			struct orch_recovery_point *rp, char *why, size_t n)
{
	size_t i = 0;

	if (cm_json_type(obj) != CM_JSON_OBJECT) {
		snprintf(why, n, "tags: must be an object");
		return -EINVAL;
	}
	rp->tags = cm_xcalloc(cm_json_size(obj) + 1, sizeof(*rp->tags));
	for (struct cm_json *m = cm_json_first(obj); m;
	     m = cm_json_next(m), i++) {
		if (cm_json_type(m) != CM_JSON_STRING) {
			snprintf(why, n, "tags.%.64s: must be a string",
				 cm_json_key(m));
			return -EINVAL;
		}
		rp->tags[i].key = cm_xstrdup(cm_json_key(m));
		rp->tags[i].value = cm_xstrdup(cm_json_str(m));
		rp->ntags = i + 1;
	}
	return 0;
}

/* Sidecars are small; a bigger file is not one. */
#define SIDECAR_MAX (1u << 20)

/* Read NAME.json (entry `side_name` of vfd) into rp; problems go to
 * rp->error. Nothing by that name: no sidecar. */
static void read_sidecar(int vfd, const char *side_name,
			 struct orch_recovery_point *rp)
{
	struct cm_json *root = NULL, *j;
	struct cm_err e;
	char why[256] = "";
	const char *s;
	char *text = NULL;
	size_t len = 0;
	int rc;

	cm_err_clear(&e);
	rc = orch_read_file_at(vfd, side_name, SIDECAR_MAX, &text, &len, &e);
	if (rc == -ENOENT)
		return;
	if (rc == 0)
		rc = cm_json_parse(text, len, &root, &e);
	free(text);
	if (rc) {
		rp->error = cm_xasprintf("sidecar %s: %s", side_name, e.msg);
		return;
	}
	if (cm_json_type(root) != CM_JSON_OBJECT) {
		snprintf(why, sizeof(why), "must be an object");
		goto out;
	}
	for (j = cm_json_first(root); j; j = cm_json_next(j)) {
		const char *k = cm_json_key(j);

		if (strcmp(k, "resourceId") != 0 &&
		    strcmp(k, "creationTime") != 0 && strcmp(k, "tags") != 0) {
			snprintf(why, sizeof(why), "unknown key \"%.64s\"", k);
			goto out;
		}
	}
	j = cm_json_get(root, "resourceId");
	if (j) {
		s = cm_json_str(j);
		if (!s || !*s) {
			snprintf(why, sizeof(why),
				 "resourceId: must be a non-empty string");
			goto out;
		}
		free(rp->resource_id);
		rp->resource_id = cm_xstrdup(s);
	}
	j = cm_json_get(root, "creationTime");
	if (j) {
		s = cm_json_str(j);
		if (!s || cm_time_parse_iso8601(s, &rp->created) < 0) {
			snprintf(why, sizeof(why), "creationTime: must be an "
				 "ISO 8601 UTC time such as "
				 "\"2026-11-26T20:45:16Z\"");
			goto out;
		}
	}
	j = cm_json_get(root, "tags");
	if (j)
		sidecar_tags(j, rp, why, sizeof(why));
out:
	if (why[0])
		rp->error = cm_xasprintf("sidecar %s: %s", side_name, why);
	cm_json_free(root);
}

/*
 * Look at vault entry `name` (vfd: the vault directory). -ENOENT when it is
 * not (or no longer) a recovery point. With `shallow`, only type and inode
 * are filled (no tree walk, no sidecar). With rp, fill it too.
 */
static int examine(const struct orch_vault_config *vault, int vfd,
		   const char *name, bool shallow, struct sig *sig,
		   struct orch_recovery_point *rp)
{
	char side[NAME_MAX + 8];
	struct stat st, sst;
	struct tree_walk t;
	int dfd;

	memset(sig, 0, sizeof(*sig));
	sig->side_size = -1;
	if (orch_vault_name_ignored(name))
		return -ENOENT;
	if (fstatat(vfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (S_ISREG(st.st_mode))
		sig->tree = false;
	else if (S_ISDIR(st.st_mode))
		sig->tree = true;
	else
		return -ENOENT;
	sig->ino = st.st_ino;
	sig->mtime_ns = ts_ns(&st.st_mtim);
	if (shallow)
		return 0;
	sig->size = (uint64_t)st.st_size;
	sig->ctime_ns = ts_ns(&st.st_ctim);
	if (sig->tree) {
		memset(&t, 0, sizeof(t));
		t.dev = st.st_dev;
		t.mtime_ns = sig->mtime_ns;
		t.ctime_ns = sig->ctime_ns;
		dfd = openat(vfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			     O_CLOEXEC);
		if (dfd >= 0)
			walk(dfd, 1, &t);
		sig->size = t.size;
		sig->files = t.files;
		sig->mtime_ns = t.mtime_ns;
		sig->ctime_ns = t.ctime_ns;
	}
	snprintf(side, sizeof(side), "%s.json", name);
	if (fstatat(vfd, side, &sst, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(sst.st_mode)) {
		sig->side_size = sst.st_size;
		sig->side_mtime_ns = ts_ns(&sst.st_mtim);
	}
	if (!rp)
		return 0;
	memset(rp, 0, sizeof(*rp));
	rp->vault = cm_xstrdup(vault->name);
	rp->name = cm_xstrdup(name);
	rp->path = cm_xasprintf("%s/%s", vault->path, name);
	rp->type = cm_xstrdup(sig->tree ? ORCH_RP_TREE : ORCH_RP_IMAGE);
	rp->size = sig->size;
	rp->mtime = (time_t)(sig->mtime_ns / 1000000000);
	rp->created = rp->mtime;
	rp->resource_id = cm_xasprintf("local:%s:%s", vault->name, name);
	orch_rp_identity_from_stat(&rp->id, &st);
	read_sidecar(vfd, side, rp);
	return 0;
}

/* Some file of the entry, or its sidecar, is in the writers set. */
static bool entry_busy(int vfd, const char *name,
		       const struct inode_set *writers)
{
	char side[NAME_MAX + 8];
	struct tree_walk t;
	struct stat st;
	int dfd;

	snprintf(side, sizeof(side), "%s.json", name);
	if (fstatat(vfd, side, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && set_has(writers, st.st_dev, st.st_ino))
		return true;
	if (fstatat(vfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	if (S_ISREG(st.st_mode))
		return set_has(writers, st.st_dev, st.st_ino);
	if (!S_ISDIR(st.st_mode))
		return false;
	memset(&t, 0, sizeof(t));
	t.dev = st.st_dev;
	t.writers = writers;
	dfd = openat(vfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (dfd >= 0)
		walk(dfd, 1, &t);
	return t.busy;
}

static int open_vault(const struct orch_vault_config *vault,
		      struct cm_err *err)
{
	int fd = open(vault->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return cm_err_set(err, errno, "vault \"%s\": %s: %s",
				  vault->name, vault->path, strerror(errno));
	return fd;
}

static int by_name(const void *a, const void *b)
{
	const struct orch_recovery_point *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Every entry: examined whole, or (listing) only its name, type and
 * mtime. */
static int scan_dir(const struct orch_vault_config *vault, bool listing,
		    struct orch_rp_list *out, struct cm_err *err)
{
	int vfd = open_vault(vault, err);
	DIR *d;
	struct dirent *e;

	memset(out, 0, sizeof(*out));
	if (vfd < 0)
		return vfd;
	d = fdopendir(vfd);
	if (!d) {
		close(vfd);
		return cm_err_set(err, errno, "vault \"%s\": %s: %s",
				  vault->name, vault->path, strerror(errno));
	}
	while ((e = readdir(d))) {
		struct orch_recovery_point rp;
		struct sig sig;

		if (examine(vault, dirfd(d), e->d_name, listing, &sig,
			    listing ? NULL : &rp))
			continue;
		if (listing) {
			memset(&rp, 0, sizeof(rp));
			rp.vault = cm_xstrdup(vault->name);
			rp.name = cm_xstrdup(e->d_name);
			rp.path = cm_xasprintf("%s/%s", vault->path, e->d_name);
			rp.type = cm_xstrdup(sig.tree ? ORCH_RP_TREE
						      : ORCH_RP_IMAGE);
			rp.mtime = (time_t)(sig.mtime_ns / 1000000000);
		}
		orch_rp_list_take(out, &rp);
	}
	closedir(d);
	if (out->n > 1)
		qsort(out->items, out->n, sizeof(*out->items), by_name);
	return 0;
}

int orch_vault_scan(const struct orch_vault_config *vault,
		    struct orch_rp_list *out, struct cm_err *err)
{
	return scan_dir(vault, false, out, err);
}

int orch_vault_list(const struct orch_vault_config *vault,
		    struct orch_rp_list *out, struct cm_err *err)
{
	return scan_dir(vault, true, out, err);
}

int orch_vault_inspect(const struct orch_vault_config *vault,
		       const char *name, struct orch_recovery_point *out,
		       struct cm_err *err)
{
	struct sig sig;
	int vfd = open_vault(vault, err);
	int rc;

	memset(out, 0, sizeof(*out));
	if (vfd < 0)
		return vfd;
	rc = strchr(name, '/') ? -ENOENT
			       : examine(vault, vfd, name, false, &sig, out);
	close(vfd);
	if (rc)
		return cm_err_set(err, -rc, "vault \"%s\": %s: %s",
				  vault->name, name,
				  rc == -ENOENT ? "no such recovery point"
						: strerror(-rc));
	return 0;
}

bool orch_rp_open_for_writing(const struct orch_recovery_point *rp)
{
	struct inode_set writers = { 0 };
	char *dir = cm_xstrdup(rp->path);
	char *slash = strrchr(dir, '/');
	bool busy = false;
	int vfd;

	if (slash) {
		*slash = '\0';
		vfd = open(slash == dir ? "/" : dir,
			   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (vfd >= 0) {
			writers_collect(&writers);
			busy = entry_busy(vfd, slash + 1, &writers);
			close(vfd);
		}
	}
	set_release(&writers);
	free(dir);
	return busy;
}

/* ---- the watcher ------------------------------------------------------- */

struct entry {
	char *name;        /* owned */
	struct sig sig;    /* full signature (shallow once reported) */
	uint64_t since_ns; /* monotonic: when sig last changed */
	bool reported;
	bool seen;         /* marks of a full rescan */
};

struct orch_vault_watch {
	struct orch_vault_config vault; /* owned copies of name and path */
	int ifd;                  /* inotify */
	int wd;                   /* the vault's watch; -1: lost */
	uint64_t quiet_ns;
	uint64_t rescan_ns;       /* 0: no periodic rescan */
	uint64_t next_rescan_ns;
	bool need_rescan;
	struct entry *entries;    /* n entries, owned */
	size_t n;
	size_t cap;
};

static bool sig_equal(const struct sig *a, const struct sig *b)
{
	return a->tree == b->tree && a->ino == b->ino && a->size == b->size &&
	       a->files == b->files && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns && a->side_size == b->side_size &&
	       a->side_mtime_ns == b->side_mtime_ns;
}

static struct entry *find(struct orch_vault_watch *w, const char *name)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->entries[i].name, name) == 0)
			return &w->entries[i];
	return NULL;
}

static struct entry *add_entry(struct orch_vault_watch *w, const char *name)
{
	struct entry *e;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->entries = cm_xrealloc(w->entries,
					 w->cap * sizeof(*w->entries));
	}
	e = &w->entries[w->n++];
	memset(e, 0, sizeof(*e));
	e->name = cm_xstrdup(name);
	return e;
}

static void drop_entry(struct orch_vault_watch *w, struct entry *e)
{
	size_t i = (size_t)(e - w->entries);

	free(e->name);
	w->entries[i] = w->entries[--w->n];
}

/* Look at one name again after an event or during a rescan. */
static void touch(struct orch_vault_watch *w, int vfd, const char *name,
		  uint64_t now)
{
	struct entry *e;
	struct sig sig;
	int rc;

	if (has_suffix(name, ".json") && name[0] != '.') {
		/* a sidecar changed: its recovery point is looked at again */
		char *base = cm_xstrndup(name, strlen(name) - 5);

		if (*base && !orch_vault_name_ignored(base))
			touch(w, vfd, base, now);
		free(base);
		return;
	}
	e = find(w, name);
	rc = examine(&w->vault, vfd, name, e && e->reported, &sig, NULL);
	if (rc == -ENOENT) {
		if (e)
			drop_entry(w, e);
		return;
	}
	if (rc)
		return; /* transient: the next rescan looks again */
	if (e && e->reported) {
		e->seen = true;
		if (sig.tree == e->sig.tree && sig.ino == e->sig.ino)
			return;
		/* another file under the same name: a new appearance */
		cm_debug("vault \"%s\": %s was replaced", w->vault.name,
			 name);
		e->reported = false;
		examine(&w->vault, vfd, name, false, &sig, NULL);
		e->sig = sig;
		e->since_ns = now;
		return;
	}
	if (!e) {
		e = add_entry(w, name);
		e->sig = sig;
		e->since_ns = now;
	} else if (!sig_equal(&e->sig, &sig)) {
		e->sig = sig;
		e->since_ns = now;
	}
	e->seen = true;
}

static int full_rescan(struct orch_vault_watch *w, uint64_t now,
		       struct cm_err *err)
{
	int vfd;
	DIR *d;
	struct dirent *de;

	if (w->wd < 0) {
		w->wd = inotify_add_watch(w->ifd, w->vault.path, WATCH_EVENTS);
		if (w->wd < 0)
			return cm_err_set(err, errno, "vault \"%s\": %s: %s",
					  w->vault.name, w->vault.path,
					  strerror(errno));
	}
	vfd = open_vault(&w->vault, err);
	if (vfd < 0)
		return vfd;
	d = fdopendir(vfd);
	if (!d) {
		close(vfd);
		return cm_err_set(err, errno, "vault \"%s\": %s: %s",
				  w->vault.name, w->vault.path,
				  strerror(errno));
	}
	for (size_t i = 0; i < w->n; i++)
		w->entries[i].seen = false;
	while ((de = readdir(d)))
		if (!orch_vault_name_ignored(de->d_name))
			touch(w, dirfd(d), de->d_name, now);
	for (size_t i = 0; i < w->n;) {
		if (!w->entries[i].seen)
			drop_entry(w, &w->entries[i]);
		else
			i++;
	}
	closedir(d);
	w->need_rescan = false;
	if (w->rescan_ns)
		w->next_rescan_ns = now + w->rescan_ns;
	return 0;
}

/* Read every pending inotify event and act on it. */
static int drain_events(struct orch_vault_watch *w, uint64_t now,
			struct cm_err *err)
{
	char buf[8192]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	int vfd = -1;
	int rc = 0;

	for (;;) {
		ssize_t n = read(w->ifd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				w->need_rescan = true;
				continue;
			}
			if (ev->mask & IN_IGNORED)
				w->wd = -1;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF |
					IN_MOVE_SELF)) {
				w->need_rescan = true;
				continue;
			}
			if (!ev->len || w->need_rescan)
				continue;
			if (vfd < 0) {
				vfd = open_vault(&w->vault, err);
				if (vfd < 0) {
					rc = vfd;
					goto out;
				}
			}
			touch(w, vfd, ev->name, now);
		}
	}
out:
	if (vfd >= 0)
		close(vfd);
	return rc;
}

/* Report the entries that have been quiet long enough and have no
 * writer. The writers are collected once, and only if some entry is due. */
static void check_due(struct orch_vault_watch *w, uint64_t now,
		      struct orch_rp_list *ready)
{
	struct inode_set writers = { 0 };
	bool collected = false;
	int vfd = -1;

	for (size_t i = 0; i < w->n;) {
		struct entry *e = &w->entries[i];
		struct orch_recovery_point rp;
		struct sig sig;
		int rc;

		if (e->reported || now - e->since_ns < w->quiet_ns) {
			i++;
			continue;
		}
		if (vfd < 0) {
			vfd = open(w->vault.path,
				   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (vfd < 0) {
				/* try again after another quiet period (a
				 * vault that is gone fails the next rescan) */
				e->since_ns = now;
				i++;
				continue;
			}
		}
		rc = examine(&w->vault, vfd, e->name, false, &sig, NULL);
		if (rc == -ENOENT) {
			drop_entry(w, e);
			continue;
		}
		i++;
		if (rc) {
			e->since_ns = now; /* transient: look again later */
			continue;
		}
		if (!sig_equal(&sig, &e->sig)) {
			e->sig = sig;
			e->since_ns = now;
			continue;
		}
		if (!collected) {
			writers_collect(&writers);
			collected = true;
		}
		if (entry_busy(vfd, e->name, &writers)) {
			cm_debug("vault \"%s\": %s is open for writing",
				 w->vault.name, e->name);
			e->since_ns = now;
			continue;
		}
		if (examine(&w->vault, vfd, e->name, false, &sig, &rp)) {
			e->since_ns = now; /* gone meanwhile: events tell */
			continue;
		}
		if (!sig_equal(&sig, &e->sig)) {
			orch_rp_release(&rp);
			e->sig = sig;
			e->since_ns = now;
			continue;
		}
		e->reported = true;
		cm_info("vault \"%s\": %s %s is complete (%llu bytes)",
			w->vault.name, rp.type, rp.name,
			(unsigned long long)rp.size);
		orch_rp_list_take(ready, &rp);
	}
	if (vfd >= 0)
		close(vfd);
	set_release(&writers);
}

/* The earliest monotonic time something is due; UINT64_MAX: nothing. */
static uint64_t next_deadline(const struct orch_vault_watch *w)
{
	uint64_t t = w->rescan_ns ? w->next_rescan_ns : UINT64_MAX;

	if (w->need_rescan)
		return 0;
	for (size_t i = 0; i < w->n; i++)
		if (!w->entries[i].reported &&
		    w->entries[i].since_ns + w->quiet_ns < t)
			t = w->entries[i].since_ns + w->quiet_ns;
	return t;
}

static int ms_until(uint64_t deadline, uint64_t now)
{
	uint64_t ms;

	if (deadline == UINT64_MAX)
		return -1;
	if (deadline <= now)
		return 0;
	ms = (deadline - now + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

struct orch_vault_watch *
orch_vault_watch_new(const struct orch_vault_config *vault,
		     const struct orch_vault_watch_opts *opts,
		     struct cm_err *err)
{
	struct orch_vault_watch *w = cm_xcalloc(1, sizeof(*w));
	unsigned quiet = opts && opts->quiet_ms ? opts->quiet_ms
						: ORCH_VAULT_QUIET_MS;

	w->vault.name = cm_xstrdup(vault->name);
	w->vault.path = cm_xstrdup(vault->path);
	w->quiet_ns = (uint64_t)quiet * 1000000;
	w->rescan_ns = opts ? (uint64_t)opts->rescan_ms * 1000000 : 0;
	w->wd = -1;
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0) {
		cm_err_set(err, errno, "vault \"%s\": inotify: %s",
			   vault->name, strerror(errno));
		goto fail;
	}
	/* the watch first, then the listing: nothing falls in between */
	if (full_rescan(w, cm_now_ns(), err))
		goto fail;
	return w;
fail:
	orch_vault_watch_free(w);
	return NULL;
}

void orch_vault_watch_free(struct orch_vault_watch *w)
{
	if (!w)
		return;
	if (w->ifd >= 0)
		close(w->ifd);
	for (size_t i = 0; i < w->n; i++)
		free(w->entries[i].name);
	free(w->entries);
	free(w->vault.name);
	free(w->vault.path);
	free(w);
}

int orch_vault_watch_fd(const struct orch_vault_watch *w)
{
	return w->ifd;
}

int orch_vault_watch_timeout(const struct orch_vault_watch *w)
{
	return ms_until(next_deadline(w), cm_now_ns());
}

int orch_vault_watch_poll(struct orch_vault_watch *w, int timeout_ms,
			  struct orch_rp_list *ready, struct cm_err *err)
{
	uint64_t end = timeout_ms < 0
			       ? UINT64_MAX
			       : cm_now_ns() + (uint64_t)timeout_ms * 1000000;
	size_t before = ready->n;

	for (;;) {
		uint64_t now = cm_now_ns(), until;
		struct pollfd pfd = { .fd = w->ifd, .events = POLLIN };
		int rc;

		rc = drain_events(w, now, err);
		if (rc)
			return rc;
		if (w->need_rescan ||
		    (w->rescan_ns && now >= w->next_rescan_ns)) {
			rc = full_rescan(w, now, err);
			if (rc)
				return rc;
		}
		check_due(w, now, ready);
		if (ready->n > before)
			return 0;
		now = cm_now_ns();
		if (now >= end)
			return 0;
		until = next_deadline(w);
		if (end < until)
			until = end;
		if (poll(&pfd, 1, ms_until(until, now)) < 0 && errno != EINTR)
			return cm_err_set(err, errno, "vault \"%s\": poll: %s",
					  w->vault.name, strerror(errno));
	}
}
