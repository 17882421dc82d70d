/*
 * provider_local.c - the provider of local vaults (type "local"):
 * directories of images and trees (vault_local.h does the reading and
 * watching; this file puts it behind provider.h's calls).
 *
 * A local recovery point is an image file or a directory tree that the
 * archiver reads in place: restore() opens it once, relative to the vault
 * directory, without following a symlink or blocking on a FIFO, checks
 * its type and identity (rp_identity.h) and hands the descriptor over
 * (the archiver attaches an image to a read-only loop device itself,
 * through that descriptor, and tells the job's journal); check() makes
 * sure right before archiving that the name still leads to it. release()
 * closes the vault directory it kept.
 *
 * Deleting a snapshot must never leave something that looks like a
 * different recovery point: an image whose sidecar is gone would come back
 * under the default resource id, a half-removed tree as a new, smaller
 * tree. So the entry and then its sidecar are first renamed to hidden names
 * in the vault (".vaultfs-delete-<random>", which a vault never lists),
 * each recorded in the journal beforehand as a temporary directory, and
 * only then removed. The name is checked against the recovery point's
 * identity right before the rename, and the hidden name right after it
 * (device, inode, size, mtime: a rename changes the ctime); another file
 * that took the name in between goes back under it, and nothing is
 * deleted. A crash anywhere leaves at most hidden names, which the next
 * start removes from the journal's records.
 *
 * No state: every call may run on any thread at once.
 */
#include "provider.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "resources.h"
#include "timeutil.h"
#include "vault_local.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the local provider ------------------------------------------------ */

static const char *const local_keys[] = { "name", "type", "path", NULL };

/* "path": an existing directory; relative to the config file's. */
int orch_local_check_config(const struct cm_json *vault, const char *where,
			    const char *base_dir,
			    struct orch_vault_config *out, struct cm_err *err)
{
	char *dir = NULL;
	struct stat st;
	int rc;

	rc = orch_config_check_keys(vault, where, local_keys, err);
	if (!rc)
		rc = orch_config_get_str(vault, where, "path", &dir, NULL,
					 err);
	if (rc)
		goto out;
	if (!dir || !*dir) {
		rc = orch_config_bad(err, where, "path",
				     "missing (the vault's directory)");
		goto out;
	}
	free(out->path);
	out->path = orch_config_abs_path(base_dir, dir);
	if (stat(out->path, &st) < 0)
		rc = orch_config_bad(err, where, "path", "%s: %s", out->path,
				     strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = orch_config_bad(err, where, "path", "%s: not a directory",
				     out->path);
out:
	free(dir);
	return rc;
}

static int local_scan(struct orch_provider *p, struct orch_rp_list *out,
		      struct cm_err *err)
{
	return orch_vault_scan(p->vault, out, err);
}

static int local_list(struct orch_provider *p, struct orch_rp_list *out,
		      struct cm_err *err)
{
	return orch_vault_list(p->vault, out, err);
}

static int local_inspect(struct orch_provider *p, const char *name,
			 struct orch_recovery_point *out, struct cm_err *err)
{
	return orch_vault_inspect(p->vault, name, out, err);
}

static bool local_busy(struct orch_provider *p,
		       const struct orch_recovery_point *rp)
{
	(void)p;
	return orch_rp_open_for_writing(rp);
}

static int open_vault_dir(const struct orch_provider *p, struct cm_err *err)
{
	int fd = open(p->vault->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return cm_err_set(err, errno, "vault \"%s\": %s: %s",
				  p->vault->name, p->vault->path,
				  strerror(errno));
	return fd;
}

/* What a restore keeps (orch_restored.priv): the vault directory, for
 * check() to look at the name again relative to it. */
struct local_restored {
	int vfd;
};

/* The recovery point is opened here, once, and the archiver reads
 * through that descriptor; the vault's stays open for check(). */
static int local_restore(struct orch_provider *p,
			 const struct orch_recovery_point *rp,
			 const struct orch_res_journal *rj,
			 struct orch_restored *out, struct cm_err *err)
{
	struct local_restored *lr;
	int vfd, fd = -1, rc;

	(void)rj;
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (rp->error)
		return cm_err_set(err, EINVAL, "%s", rp->error);
	vfd = open_vault_dir(p, err);
	if (vfd < 0)
		return vfd;
	rc = orch_rp_open(vfd, rp->name, rp->path, strcmp(rp->type, ORCH_RP_TREE) == 0,
			  &rp->id, &fd, err);
	if (rc) {
		close(vfd);
		return rc;
	}
	out->path = cm_xstrdup(rp->path);
	out->fd = fd;
	out->mode = ARC_MODE_AUTO;
	lr = cm_xmalloc(sizeof(*lr));
	lr->vfd = vfd;
	out->priv = lr;
	return 0;
}

static int local_check(struct orch_provider *p,
		       const struct orch_recovery_point *rp,
		       const struct orch_restored *r, struct cm_err *err)
{
	const struct local_restored *lr = r->priv;

	(void)p;
	if (!lr || r->fd < 0)
		return cm_err_set(err, EINVAL, "%s: not restored", rp->path);
	return orch_rp_check_name(lr->vfd, rp->name, rp->path, r->fd, err);
}

static void local_release(struct orch_provider *p,
			  const struct orch_res_journal *rj,
			  struct orch_restored *r)
{
	struct local_restored *lr = r->priv;

	(void)p;
	(void)rj;
	/* the archiver gave back its loop devices and mounts */
	if (lr) {
		close(lr->vfd);
		free(lr);
		r->priv = NULL;
	}
}

/*
 * Rename entry `from` of the vault (open at vfd) to a new hidden name,
 * journaled as a tempdir first (with the inode it must hold, when `id`
 * knows it). *to receives the hidden name (the caller
 * frees it), or NULL when there was nothing to rename.
 */
static int hide(const struct orch_provider *p, int vfd, const char *from,
		const struct orch_rp_identity *id,
		const struct orch_res_journal *rj, size_t *idx, char **to,
		struct cm_err *err)
{
	char *name = cm_xasprintf(".vaultfs-delete-%016llx",
				  (unsigned long long)cm_random(UINT64_MAX));
	char *path = cm_xasprintf("%s/%s", p->vault->path, name);
	struct orch_res_ids ids = { .dir = path };
	char inode[48];
	int rc, e;

	if (id && id->known) {
		/* after a crash, only this inode is removed from there */
		snprintf(inode, sizeof(inode), "%llu:%llu",
			 (unsigned long long)id->dev,
			 (unsigned long long)id->ino);
		ids.inode = inode;
	}

	*to = NULL;
	rc = rj->add(rj->ctx, ORCH_RES_TEMPDIR, &ids, idx, err);
	if (rc)
		goto out;
	if (renameat(vfd, from, vfd, name) < 0) {
		e = errno;
		rj->released(rj->ctx, *idx, NULL);
		if (e != ENOENT)
			rc = cm_err_set(err, e, "rename %s/%s: %s",
					p->vault->path, from, strerror(e));
		goto out;
	}
	rc = rj->created(rj->ctx, *idx, NULL, err);
	*to = name;
	name = NULL;
out:
	free(name);
	free(path);
	return rc;
}

static int remove_hidden(const struct orch_provider *p,
			 const struct orch_res_journal *rj, size_t idx,
			 const char *name, struct cm_err *err)
{
	char *path = cm_xasprintf("%s/%s", p->vault->path, name);
	int rc = orch_remove_all(path, err);

	if (rc == 0)
		rc = rj->released(rj->ctx, idx, err);
	free(path);
	return rc;
}

/*
 * The entry renamed to `hidden` must be the recovery point that was
 * archived (a rename changes its ctime, so: device, inode, type, size and
 * mtime). If another file took the name just before the rename, it goes
 * back, and nothing is deleted.
 */
static int check_hidden(const struct orch_provider *p, int vfd,
			const struct orch_recovery_point *rp,
			const char *hidden, const struct orch_res_journal *rj,
			size_t idx, struct cm_err *err)
{
	struct orch_rp_identity now;
	struct stat st;
	bool tree = strcmp(rp->type, ORCH_RP_TREE) == 0;

	if (!rp->id.known)
		return 0;
	if (fstatat(vfd, hidden, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return cm_err_set(err, errno, "%s/%s: %s", p->vault->path,
				  hidden, strerror(errno));
	orch_rp_identity_from_stat(&now, &st);
	if ((tree ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) &&
	    now.dev == rp->id.dev && now.ino == rp->id.ino &&
	    now.size == rp->id.size && now.mtime_ns == rp->id.mtime_ns)
		return 0;
	if (renameat2(vfd, hidden, vfd, rp->name, RENAME_NOREPLACE) == 0) {
		rj->released(rj->ctx, idx, NULL);
		return cm_err_set(err, ESTALE, "recovery point %s was replaced "
				  "while it was being deleted: what took its "
				  "name is back in place, nothing deleted",
				  rp->path);
	}
	/* the record stays released: what is hidden is not ours to delete */
	rj->released(rj->ctx, idx, NULL);
	return cm_err_set(err, ESTALE, "recovery point %s was replaced while "
			  "it was being deleted, and what took its name cannot "
			  "go back (%s): it is kept as %s/%s", rp->path,
			  strerror(errno), p->vault->path, hidden);
}

static int local_delete(struct orch_provider *p,
			const struct orch_recovery_point *rp,
			const struct orch_res_journal *rj, struct cm_err *err)
{
	char *side = cm_xasprintf("%s.json", rp->name);
	char *entry_to = NULL, *side_to = NULL;
	size_t entry_idx = 0, side_idx = 0;
	struct orch_rp_identity now;
	struct stat st;
	int vfd, rc;

	vfd = open_vault_dir(p, err);
	if (vfd < 0) {
		rc = vfd;
		goto out;
	}
	/* the name must lead to what was archived, right before the rename */
	if (fstatat(vfd, rp->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = cm_err_set(err, errno, "%s: %s", rp->path,
				errno == ENOENT ? "already gone"
						: strerror(errno));
		goto out;
	}
	orch_rp_identity_from_stat(&now, &st);
	if (rp->id.known && !orch_rp_identity_equal(&now, &rp->id)) {
		rc = cm_err_set(err, ESTALE, "recovery point %s changed since "
				"it was archived (it is %s, inode %llu)",
				rp->path, orch_file_kind(st.st_mode),
				(unsigned long long)st.st_ino);
		goto out;
	}
	/* the entry first: a sidecar without its entry names nothing */
	rc = hide(p, vfd, rp->name, &rp->id, rj, &entry_idx, &entry_to, err);
	if (rc)
		goto out;
	if (!entry_to) {
		rc = cm_err_set(err, ENOENT, "%s: already gone", rp->path);
		goto out;
	}
	rc = check_hidden(p, vfd, rp, entry_to, rj, entry_idx, err);
	if (rc)
		goto out;
	rc = hide(p, vfd, side, NULL, rj, &side_idx, &side_to, err);
	if (rc == 0)
		rc = remove_hidden(p, rj, entry_idx, entry_to, err);
	if (rc == 0 && side_to)
		rc = remove_hidden(p, rj, side_idx, side_to, err);
	if (rc == 0)
		cm_info("deleted recovery point %s%s", rp->path,
			side_to ? " and its sidecar" : "");
out:
	if (vfd >= 0)
		close(vfd);
	free(entry_to);
	free(side_to);
	free(side);
	return rc;
}

static int local_describe(struct orch_provider *p,
			  const struct orch_recovery_point *rp,
			  struct cm_json *out, struct cm_err *err)
{
	(void)p;
	(void)err;
	orch_rp_describe(rp, out);
	return 0;
}

/*
 * Watching. For the engine (cb->ready set) the watch is vault_local.h's
 * watcher: inotify, the quiet period, the writers test, periodic rescans.
 * A recovery point the engine could not record is kept and offered again
 * at the next poll (within RETRY_MS). For a listing only (cb->ready NULL:
 * the view) a bare inotify watch on the directory is enough: any event
 * means the listing may have changed, and nothing is checked for
 * completeness.
 */
#define RETRY_MS 1000
#define LIST_EVENTS                                                          \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |               \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_CLOSE_WRITE)

struct orch_watch {
	struct orch_provider *p;
	struct orch_watch_cb cb;
	struct orch_vault_watch *vw; /* the engine's; NULL when listing */
	int ifd;                     /* listing: inotify, else -1 */
	struct orch_rp_list pending; /* ready, not yet recorded */
};

static void local_watch_free(struct orch_watch *w)
{
	if (!w)
		return;
	orch_vault_watch_free(w->vw);
	if (w->ifd >= 0)
		close(w->ifd);
	orch_rp_list_release(&w->pending);
	free(w);
}

static int local_watch_new(struct orch_provider *p,
			   const struct orch_watch_opts *o,
			   const struct orch_watch_cb *cb,
			   struct orch_watch **out, struct cm_err *err)
{
	struct orch_watch *w = cm_xcalloc(1, sizeof(*w));
	struct orch_vault_watch_opts vo = {
		.quiet_ms = o ? o->quiet_ms : 0,
		.rescan_ms = o ? o->rescan_ms : 0,
	};
	int rc = 0;

	*out = NULL;
	w->p = p;
	w->cb = *cb;
	w->ifd = -1;
	if (cb->ready) {
		w->vw = orch_vault_watch_new(p->vault, &vo, err);
		if (!w->vw)
			rc = err->code ? -err->code : -EIO;
	} else {
		w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->ifd < 0 ||
		    inotify_add_watch(w->ifd, p->vault->path, LIST_EVENTS) < 0)
			rc = cm_err_set(err, errno, "vault \"%s\": inotify "
					"on %s: %s", p->vault->name,
					p->vault->path, strerror(errno));
	}
	if (rc) {
		local_watch_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int local_watch_fd(struct orch_watch *w)
{
	return w->vw ? orch_vault_watch_fd(w->vw) : w->ifd;
}

static int local_watch_timeout(struct orch_watch *w)
{
	int t = w->vw ? orch_vault_watch_timeout(w->vw) : -1;

	if (w->pending.n && (t < 0 || t > RETRY_MS))
		t = RETRY_MS;
	return t;
}

static bool fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return fd >= 0 && poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}

/* Offer what is pending to cb->ready; keep what it could not record. */
static void offer_pending(struct orch_watch *w)
{
	struct orch_rp_list keep = { 0 };

	for (size_t i = 0; i < w->pending.n; i++) {
		struct cm_err e;

		cm_err_clear(&e);
		if (w->cb.ready(w->cb.ctx, &w->pending.items[i], &e) < 0) {
			if (e.code != ESHUTDOWN)
				cm_warn("vault \"%s\": %s not recorded (%s): offered "
					"again", w->p->vault->name,
					w->pending.items[i].name, e.msg);
			orch_rp_list_take(&keep, &w->pending.items[i]);
		}
	}
	orch_rp_list_release(&w->pending);
	w->pending = keep;
}

static int local_watch_poll(struct orch_watch *w, struct cm_err *err)
{
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	bool events;
	int rc;

	if (!w->vw) {
		events = false;
		while (read(w->ifd, buf, sizeof(buf)) > 0)
			events = true;
		if (events && w->cb.changed)
			w->cb.changed(w->cb.ctx);
		return 0;
	}
	events = fd_readable(orch_vault_watch_fd(w->vw));
	rc = orch_vault_watch_poll(w->vw, 0, &w->pending, err);
	if (events && w->cb.changed)
		w->cb.changed(w->cb.ctx);
	offer_pending(w);
	return rc < 0 ? rc : 0;
}

static const struct orch_provider_ops local_ops = {
	.name = "local",
	.scan = local_scan,
	.list = local_list,
	.inspect = local_inspect,
	.busy = local_busy,
	.restore = local_restore,
	.check = local_check,
	.release = local_release,
	.delete_snapshot = local_delete,
	.describe = local_describe,
	.release_stale = NULL,
	.watch_new = local_watch_new,
	.watch_fd = local_watch_fd,
	.watch_timeout = local_watch_timeout,
	.watch_poll = local_watch_poll,
	.watch_free = local_watch_free,
	.free = NULL,
};

int orch_provider_local_new(const struct orch_config *cfg,
			    const struct orch_vault_config *vault,
			    struct orch_provider **out, struct cm_err *err)
{
	struct orch_provider *p = cm_xcalloc(1, sizeof(*p));

	(void)err;
	p->ops = &local_ops;
	p->cfg = cfg;
	p->vault = vault;
	*out = p;
	return 0;
}
