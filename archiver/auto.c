/*
 * auto.c - the plan: what to do with a source, decided before the first
 * byte is written (see source.h), then done.
 *
 *   directory                 -> tree
 *   device or image file      -> probe (probe.c), through the file itself:
 *     a filesystem we mount   -> (image: read-only loop device) mounted
 *                                read-only now -> tree of the mount;
 *                                it will not mount -> raw, with a warning
 *     a partition table with  -> tree: one tar, each partition in turn
 *     a mountable partition      mounted as p<N>/ and released, or stored
 *                                as p<N>.img when it has no filesystem we
 *                                mount or will not mount (a warning); the
 *                                area before the first partition (the
 *                                table, a boot loader) as disk-head.img
 *     anything else           -> raw, with a warning
 *
 * Each mount goes through replay.h: a journal that needs recovery is
 * replayed into a copy-on-write overlay, never into the source.
 *
 * ARC_MODE_TREE turns each "-> raw" of a whole source into an error;
 * ARC_MODE_RAW skips the probe. Images are probed as files and attached to
 * a loop device only when something is to be mounted: raw reads of a file
 * can skip its holes, a loop device's cannot.
 *
 * A source handed in as a descriptor (arc_plan_new_fd) is never looked up
 * by name: images are probed, read and attached to loop devices through
 * it, and a directory is walked through /proc/self/fd/N, which leads to
 * the open directory whatever happens to its name.
 *
 * Ownership: the plan owns the source's fd, the probe result and the
 * resources it takes in `devs` (everything created after its mark, which
 * arc_plan_free() rolls back) and the overlay a mount sits on; it borrows
 * opts, stats and, when the caller passes one, devs. The caller's signal path may release devs at any time;
 * the plan then fails on its next read and cleans up what is left.
 */
#include "source_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockdev.h"
#include "log.h"
#include "mem.h"
#include "probe.h"
#include "replay.h"

/* disk-head.img holds at most this much of what precedes partition 1. */
#define HEAD_MAX (64ull * 1024 * 1024)

enum plan_kind {
	PLAN_DIR = 0,  /* tree of src */
	PLAN_FS,       /* tree of our mount */
	PLAN_PARTS,    /* tar of partitions */
	PLAN_RAW,      /* bytes of fd */
};

struct arc_plan {
	char *src;                            /* owned */
	enum arc_mode mode;
	const struct arc_source_opts *opts;   /* borrowed, may be NULL */
	struct arc_stats *stats;              /* borrowed */
	struct arc_devs *devs;                /* borrowed, or owned ... */
	bool own_devs;                        /* ... if this is set */
	unsigned long mark;                   /* devs before we began */
	enum plan_kind kind;
	int fd;                               /* owned; -1 for directories */
	int dirfd;                            /* owned: a directory handed in
						 as a descriptor; else -1 */
	bool is_file;
	uint64_t size;
	struct arc_probe probe;               /* the whole source */
	char mnt[256];                        /* PLAN_FS: the mount point */
	struct arc_overlay *ov;               /* PLAN_FS: owned, or NULL */
	char disk[PATH_MAX];                  /* PLAN_PARTS: the whole disk */
	bool ran;
};

static char *dup_or_null(const char *s)
{
	return s && *s ? cm_xstrdup(s) : NULL;
}

/* Whole source to raw: fine in auto mode (with a warning), an error in
 * tree mode. `why` is the reason, also stored in the volume's note. */
static int fall_back_raw(struct arc_plan *p, struct arc_volume *v,
			 const char *why, struct cm_err *err)
{
	if (p->mode == ARC_MODE_TREE)
		return cm_err_set(err, ENOTSUP, "%s: %s (tree mode)", p->src,
				  why);
	arc_stats_warn(p->stats, "%s: %s: archived raw", p->src, why);
	if (v) {
		v->action = ARC_VOL_RAW;
		free(v->note);
		v->note = cm_xstrdup(why);
	}
	p->kind = PLAN_RAW;
	p->stats->method = ARC_METHOD_RAW;
	return 0;
}

static struct arc_volume *add_volume(struct arc_plan *p, const char *name,
				     unsigned partno, uint64_t start,
				     uint64_t size,
				     const struct arc_probe *pr)
{
	struct arc_volume *v = arc_stats_add_volume(p->stats);

	v->name = cm_xstrdup(name);
	v->partno = partno;
	v->start = start;
	v->size = size;
	if (pr) {
		v->fstype = dup_or_null(pr->fstype);
		v->label = dup_or_null(pr->label);
		v->uuid = dup_or_null(pr->uuid);
	}
	return v;
}

/* Mount volume `v`, whose block device is `dev` (replay.h). */
static int mount_volume(struct arc_plan *p, struct arc_volume *v,
			const char *dev, struct arc_overlay **ovp, char *mnt,
			size_t mntlen, struct cm_err *err)
{
	struct arc_mount_req rq = {
		.devs = p->devs, .opts = p->opts, .stats = p->stats, .v = v,
		.src = p->src, .fd = p->fd, .start = v->start,
		.size = v->size, .dev = dev,
	};

	return arc_mount_volume(&rq, ovp, mnt, mntlen, err);
}

/* A filesystem on the whole source: mount it now. */
static int plan_fs(struct arc_plan *p, struct cm_err *err)
{
	struct arc_volume *v = add_volume(p, "disk", 0, 0, p->size, &p->probe);
	char dev[PATH_MAX], why[2 * CM_ERR_MSG_MAX];
	struct cm_err e;
	int id;

	cm_err_clear(&e);
	if (!arc_fs_mountable(p->probe.fstype)) {
		snprintf(why, sizeof(why), "%s is not a filesystem we mount",
			 p->probe.fstype);
		return fall_back_raw(p, v, why, err);
	}
	if (arc_source_cancelled(p->opts))
		return arc_cancel_error(err);
	snprintf(dev, sizeof(dev), "%s", p->src);
	if (p->is_file &&
	    arc_loop_attach_fd(p->devs, p->fd, p->src, false, &id, dev,
			       sizeof(dev), &e) != 0) {
		snprintf(why, sizeof(why), "found %s but %s", p->probe.fstype,
			 e.msg);
		return fall_back_raw(p, v, why, err);
	}
	if (mount_volume(p, v, dev, &p->ov, p->mnt, sizeof(p->mnt), &e) !=
	    0) {
		arc_devs_rollback(p->devs, p->mark);
		snprintf(why, sizeof(why),
			 "found %s%s but it would not mount: %s",
			 p->probe.fstype,
			 p->probe.bad_csum ? " (bad superblock checksum)" : "",
			 e.msg);
		return fall_back_raw(p, v, why, err);
	}
	v->action = ARC_VOL_TREE;
	v->entry = cm_xstrdup("./");
	p->kind = PLAN_FS;
	p->stats->method = ARC_METHOD_TREE;
	return 0;
}

/* The partitions' volumes from `first` on, when the disk goes raw. */
static void whole_disk_raw(struct arc_plan *p, size_t first)
{
	for (size_t i = first; i < p->stats->nvolumes; i++) {
		struct arc_volume *v = &p->stats->volumes[i];

		if (v->action == ARC_VOL_SKIPPED)
			continue;
		v->action = ARC_VOL_RAW;
		free(v->note);
		v->note = cm_xstrdup("in the raw image of the whole disk");
	}
}

/* A partition table: probe each partition; mount later, one at a time. */
static int plan_parts(struct arc_plan *p, struct cm_err *err)
{
	size_t first = p->stats->nvolumes, mountable = 0;
	char name[32], dev[64];
	struct cm_err e;
	int id;

	for (size_t i = 0; i < p->probe.nparts; i++) {
		const struct arc_probe_part *pp = &p->probe.parts[i];
		struct arc_probe sub;
		struct arc_volume *v;

		snprintf(name, sizeof(name), "p%u", pp->partno);
		v = add_volume(p, name, pp->partno, pp->start, pp->size, NULL);
		v->part_type = dup_or_null(pp->type);
		v->action = ARC_VOL_RAW; /* until it mounts */
		/* An extended partition is a container: its bytes are its
		 * logical partitions (archived each in turn) and the chain
		 * of tables that lists them, which the volumes record. It
		 * holds no data of its own, so passing it over leaves
		 * nothing out: not a skip (source.h, "Complete or not"). */
		if (pp->container) {
			v->action = ARC_VOL_SKIPPED;
			v->note = cm_xstrdup("extended partition: its logical "
					     "partitions are archived instead");
			continue;
		}
		if (pp->start >= p->size || pp->size > p->size - pp->start) {
			v->action = ARC_VOL_SKIPPED;
			v->note = cm_xstrdup("lies beyond the end of the disk");
			/* wholly past the end: the source has none of its
			 * bytes, and the archive misses nothing. Partly
			 * within: those bytes are the source's and are not
			 * archived */
			if (pp->start >= p->size)
				arc_stats_warn(p->stats, "%s: partition %u "
					       "lies beyond the end of the "
					       "disk", p->src, pp->partno);
			else
				arc_stats_skip(p->stats, name, "partition "
					       "%u runs past the end of the "
					       "disk: its %llu bytes there "
					       "are not archived", pp->partno,
					       (unsigned long long)(p->size -
								    pp->start));
			continue;
		}
		cm_err_clear(&e);
		if (arc_probe_fd(p->fd, pp->start, pp->size, false, &sub,
				 &e) == 0) {
			v->fstype = dup_or_null(sub.fstype);
			v->label = dup_or_null(sub.label);
			v->uuid = dup_or_null(sub.uuid);
			if (arc_fs_mountable(sub.fstype))
				mountable++;
		} else {
			v->note = cm_xstrdup(e.msg);
		}
		arc_probe_release(&sub);
	}
	if (mountable == 0) {
		whole_disk_raw(p, first);
		return fall_back_raw(p, NULL,
				     "no partition holds a filesystem we "
				     "mount",
				     err);
	}
	snprintf(p->disk, sizeof(p->disk), "%s", p->src);
	cm_err_clear(&e);
	if (p->is_file && arc_loop_attach_fd(p->devs, p->fd, p->src, true,
					     &id, dev, sizeof(dev), &e) != 0) {
		whole_disk_raw(p, first);
		return fall_back_raw(p, NULL, e.msg, err);
	}
	if (p->is_file)
		snprintf(p->disk, sizeof(p->disk), "%s", dev);
	p->kind = PLAN_PARTS;
	p->stats->method = ARC_METHOD_TREE;
	return 0;
}

/* src_fd >= 0: the source is open there (borrowed; src names it). */
static int plan_new(const char *src, int src_fd, enum arc_mode mode,
		    const struct arc_source_opts *opts, struct arc_stats *stats,
		    struct arc_plan **planp, struct cm_err *err)
{
	struct arc_plan *p = cm_xcalloc(1, sizeof(*p));
	size_t real_parts = 0;
	struct stat st;
	int rc = 0;

	p->src = cm_xstrdup(src);
	p->mode = mode;
	p->opts = opts;
	p->stats = stats;
	p->fd = -1;
	p->dirfd = -1;
	if (opts && opts->devs) {
		p->devs = opts->devs;
	} else {
		p->devs = arc_devs_new(NULL, NULL, NULL);
		p->own_devs = true;
	}
	p->mark = arc_devs_mark(p->devs);

	if ((src_fd >= 0 ? fstat(src_fd, &st) : stat(src, &st)) != 0) {
		rc = cm_err_set(err, errno, "%s: %s", src, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (src_fd >= 0) {
			p->dirfd = fcntl(src_fd, F_DUPFD_CLOEXEC, 0);
			if (p->dirfd < 0) {
				rc = cm_err_set(err, errno, "%s: %s", src,
						strerror(errno));
				goto out;
			}
		}
		if (mode == ARC_MODE_RAW)
			rc = cm_err_set(err, EINVAL,
					"%s: a directory cannot be archived "
					"raw (raw needs a block device or an "
					"image file)",
					src);
		p->kind = PLAN_DIR;
		stats->method = ARC_METHOD_TREE;
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		rc = cm_err_set(err, EINVAL,
				"%s: not a directory, a block device or an "
				"image file",
				src);
		goto out;
	}
	p->fd = src_fd >= 0 ? fcntl(src_fd, F_DUPFD_CLOEXEC, 0)
			    : open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (p->fd < 0) {
		rc = cm_err_set(err, errno, "%s: %s", src, strerror(errno));
		goto out;
	}
	rc = arc_fd_size(p->fd, src, &p->is_file, &p->size, err);
	if (rc)
		goto out;
	if (mode == ARC_MODE_RAW) {
		struct arc_volume *v = add_volume(p, "disk", 0, 0, p->size,
						  NULL);

		v->action = ARC_VOL_RAW;
		v->note = cm_xstrdup("raw mode: not probed");
		p->kind = PLAN_RAW;
		stats->method = ARC_METHOD_RAW;
		goto out;
	}
	rc = arc_probe_fd(p->fd, 0, 0, true, &p->probe, err);
	if (rc) {
		cm_err_prefix(err, "%s", src);
		goto out;
	}
	if (p->probe.pttype[0])
		stats->pttype = cm_xstrdup(p->probe.pttype);
	for (size_t i = 0; i < p->probe.nparts; i++)
		if (!p->probe.parts[i].container)
			real_parts++;
	if (real_parts > 0)
		rc = plan_parts(p, err);
	else if (p->probe.fstype[0])
		rc = plan_fs(p, err);
	else
		rc = fall_back_raw(p, add_volume(p, "disk", 0, 0, p->size,
						 &p->probe),
				   p->probe.ambivalent
					   ? "several conflicting signatures "
					     "found, none is trusted"
					   : "no filesystem or partition "
					     "table found",
				   err);
out:
	if (rc) {
		arc_plan_free(p);
		p = NULL;
	}
	*planp = p;
	return rc;
}

int arc_plan_new(const char *src, enum arc_mode mode,
		 const struct arc_source_opts *opts, struct arc_stats *stats,
		 struct arc_plan **planp, struct cm_err *err)
{
	return plan_new(src, -1, mode, opts, stats, planp, err);
}

int arc_plan_new_fd(int fd, const char *name, enum arc_mode mode,
		    const struct arc_source_opts *opts, struct arc_stats *stats,
		    struct arc_plan **planp, struct cm_err *err)
{
	if (fd < 0)
		return cm_err_set(err, EBADF, "%s: no descriptor", name);
	return plan_new(name, fd, mode, opts, stats, planp, err);
}

enum arc_method arc_plan_method(const struct arc_plan *p)
{
	return p->kind == PLAN_RAW ? ARC_METHOD_RAW : ARC_METHOD_TREE;
}

/*
 * A block device for partition `v`: the kernel's (loopNpM, sdaN), or,
 * where the kernel shows none (a kernel without partition-table support,
 * a table it does not read), a read-only loop device over the range.
 */
static int partition_device(struct arc_plan *p, struct arc_volume *v,
			    char *dev, size_t devlen, struct cm_err *err)
{
	struct cm_err e;
	int id;

	cm_err_clear(&e);
	if (arc_partition_node(p->devs, p->disk, v->partno, dev, devlen,
			       &e) == 0)
		return 0;
	cm_info("%s; attaching partition %u by its offset", e.msg,
		v->partno);
	return arc_loop_attach_range_fd(p->devs, p->fd, p->src, v->start,
					v->size, &id, dev, devlen, err);
}

/* One partition into the tar: mounted as a tree, else raw. */
static int run_partition(struct arc_plan *p, struct arc_tar *t,
			 struct arc_volume *v, struct cm_err *err)
{
	char node[256], mnt[256], entry[48], why[2 * CM_ERR_MSG_MAX];
	unsigned long mark = arc_devs_mark(p->devs);
	struct arc_overlay *ov = NULL;
	struct cm_err e;
	int rc;

	why[0] = '\0';
	cm_err_clear(&e);
	if (!arc_fs_mountable(v->fstype)) {
		snprintf(why, sizeof(why), "%s",
			 v->fstype ? "not a filesystem we mount"
				   : "no filesystem found");
	} else if (partition_device(p, v, node, sizeof(node), &e) != 0 ||
		   mount_volume(p, v, node, &ov, mnt, sizeof(mnt), &e) != 0) {
		snprintf(why, sizeof(why), "%s would not mount: %s",
			 v->fstype, e.msg);
		arc_stats_warn(p->stats, "%s: partition %u: %s: archived raw",
			       p->src, v->partno, why);
		arc_devs_rollback(p->devs, mark);
	} else {
		snprintf(entry, sizeof(entry), "p%u/", v->partno);
		v->action = ARC_VOL_TREE;
		v->entry = cm_xstrdup(entry);
		rc = arc_tar_add_tree(t, mnt, entry, err);
		arc_devs_rollback(p->devs, mark);
		arc_overlay_free(ov);
		return rc;
	}
	snprintf(entry, sizeof(entry), "p%u.img", v->partno);
	v->action = ARC_VOL_RAW;
	v->entry = cm_xstrdup(entry);
	v->note = cm_xstrdup(why);
	return arc_tar_add_raw(t, entry, p->fd, v->start, v->size, err);
}

static int run_parts(struct arc_plan *p, struct arc_filter *out,
		     struct cm_err *err)
{
	uint64_t head = p->size;
	struct arc_tar *t = NULL;
	size_t nvol = p->stats->nvolumes;
	int rc;

	rc = arc_tar_new(out, p->opts, p->stats, &t, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < p->probe.nparts; i++)
		if (!p->probe.parts[i].container &&
		    p->probe.parts[i].start < head)
			head = p->probe.parts[i].start;
	if (head > HEAD_MAX)
		head = HEAD_MAX;
	if (head > 0) {
		struct arc_volume *v = add_volume(p, "head", 0, 0, head, NULL);

		v->action = ARC_VOL_RAW;
		v->entry = cm_xstrdup("disk-head.img");
		v->note = cm_xstrdup("what precedes the first partition: "
				     "the partition table, a boot loader");
		rc = arc_tar_add_raw(t, "disk-head.img", p->fd, 0, head, err);
		if (rc)
			goto out;
	}
	/* stats->volumes may move as volumes are added: index, no pointers */
	for (size_t i = 0; i < nvol; i++) {
		struct arc_volume *v = &p->stats->volumes[i];

		if (v->partno == 0 || v->action == ARC_VOL_SKIPPED)
			continue;
		if (arc_source_cancelled(p->opts)) {
			rc = arc_cancel_error(err);
			goto out;
		}
		rc = run_partition(p, t, v, err);
		if (rc == 0)
			rc = arc_stats_check(p->stats, err); /* --strict */
		if (rc)
			goto out;
	}
	rc = arc_tar_finish(t, err);
out:
	arc_tar_free(t);
	return rc;
}

int arc_plan_run(struct arc_plan *p, struct arc_filter *out,
		 struct cm_err *err)
{
	if (p->ran)
		return cm_err_set(err, EINVAL, "%s: plan already run", p->src);
	p->ran = true;
	switch (p->kind) {
	case PLAN_DIR:
		if (p->dirfd >= 0) {
			/* the open directory itself: its /proc link leads to
			 * it whatever happens to its name; entries are named
			 * relative to it, as for a path */
			char proc[40];

			snprintf(proc, sizeof(proc), "/proc/self/fd/%d",
				 p->dirfd);
			return arc_source_tree(proc, out, p->opts, p->stats,
					       err);
		}
		return arc_source_tree(p->src, out, p->opts, p->stats, err);
	case PLAN_FS:
		return arc_source_tree(p->mnt, out, p->opts, p->stats, err);
	case PLAN_PARTS:
		return run_parts(p, out, err);
	default:
		return arc_source_raw_fd(p->fd, p->src, 0, p->size, out,
					 p->opts, p->stats, err);
	}
}

void arc_plan_free(struct arc_plan *p)
{
	if (!p)
		return;
	arc_devs_rollback(p->devs, p->mark);
	arc_overlay_free(p->ov);
	if (p->own_devs)
		arc_devs_free(p->devs);
	if (p->fd >= 0)
		close(p->fd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	arc_probe_release(&p->probe);
	free(p->src);
	free(p);
}

int arc_archive_auto(const char *src, enum arc_mode mode,
		     struct arc_filter *out, const struct arc_source_opts *opts,
		     struct arc_stats *stats, enum arc_method *method,
		     struct cm_err *err)
{
	struct arc_plan *p;
	int rc;

	rc = arc_plan_new(src, mode, opts, stats, &p, err);
	if (rc)
		return rc;
	if (method)
		*method = arc_plan_method(p);
	rc = arc_plan_run(p, out, err);
	arc_plan_free(p);
	return rc;
}
