/*
 * blockdev.c - see blockdev.h: read-only loop devices, partition nodes,
 * read-only mounts, and their release.
 *
 * Loop devices. LOOP_CTL_GET_FREE names a free device, LOOP_CONFIGURE
 * (Linux 5.8; LOOP_SET_FD + LOOP_SET_STATUS64 before) binds the image to
 * it in one step with LO_FLAGS_READ_ONLY, LO_FLAGS_AUTOCLEAR and, for
 * disks, LO_FLAGS_PARTSCAN. Another process may take the same free device
 * between the two calls: EBUSY, and we ask again. We keep the device open:
 * with autoclear, the kernel detaches it on the last close, so a crash
 * between attach and journal costs nothing; release clears it explicitly.
 * The image is opened read-only, and the device is checked to be
 * read-only (BLKROGET) before anyone reads it.
 *
 * Partition nodes. The kernel scans the partition table while the loop
 * device is configured and lists partitions in sysfs at once; devtmpfs
 * makes /dev/loopNpM shortly after, with or without udev. Where /dev is a
 * static tmpfs (some containers), no node appears: we make one with mknod
 * from sysfs's major:minor and remove it on release.
 *
 * Mounts. Each filesystem is mounted on a fresh private directory
 * (mkdtemp under /run/vaultfs, mode 0700) with MS_RDONLY | MS_NODEV |
 * MS_NOSUID | MS_NOEXEC and options that keep the kernel from writing:
 * ext3/ext4 `noload` (no journal replay), xfs `norecovery` (and `nouuid`,
 * since a snapshot shares its UUID with the live filesystem), btrfs
 * `rescue=nologreplay` (`nologreplay` before 5.9). ext2 and vfat have no
 * journal. If an option is refused we never retry without it: replaying
 * a journal on a writable device would alter the snapshot.
 *
 * Replay (overlay.h, replay.c). arc_mount_replay mounts read-only but
 * without those options: on an overlay's read-write loop device the
 * kernel replays the journal into the overlay; on a read-only device a
 * filesystem that needs recovery is refused (EROFS). arc_loop_attach_rw
 * is the one read-write attach, for an overlay's file only.
 *
 * Release. Slots are claimed with a compare-and-swap and released newest
 * first (a mount before the node it uses, before the loop it sits on).
 * The normal path unmounts gently (retrying EBUSY for a second before a
 * lazy unmount), logs and tells the hook; the signal path (release_all)
 * detaches lazily and says nothing.
 */
#include "blockdev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

#define DEVS_MAX 16
#define RES_PATH 256
#define DEFAULT_BASE "/run/vaultfs"
#define FALLBACK_BASE "/tmp"

enum slot_state {
	SLOT_FREE = 0,
	SLOT_ARMED,      /* may exist: being created */
	SLOT_HELD,
	SLOT_RELEASING,
};

struct res {
	atomic_int state;         /* enum slot_state */
	enum arc_res_kind kind;
	unsigned long seq;        /* creation order */
	int fd;                   /* LOOP: the device, open */
	char path[RES_PATH];
	char detail[RES_PATH];
};

struct arc_devs {
	struct res res[DEVS_MAX];
	unsigned long next_seq;
	arc_resource_fn hook;     /* may be NULL */
	void *hook_ctx;
	char base[128];           /* "" for the default */
};

/* How each filesystem is mounted; each option string is tried in turn
 * while the kernel answers EINVAL (an option it does not know). `replay`:
 * the options of a mount that replays the journal, NULL if there is none. */
struct fs_kind {
	const char *type;
	const char *opts[3];
	const char *replay[2];
};

static const struct fs_kind fs_kinds[] = {
	{ "ext2", { "" }, { NULL } },
	{ "ext3", { "noload" }, { "" } },
	{ "ext4", { "noload" }, { "" } },
	{ "xfs", { "norecovery,nouuid" }, { "nouuid" } },
	{ "btrfs", { "rescue=nologreplay", "nologreplay" }, { "" } },
	{ "vfat", { "" }, { NULL } },
};

static const struct fs_kind *fs_kind(const char *type)
{
	for (size_t i = 0; i < sizeof(fs_kinds) / sizeof(fs_kinds[0]); i++)
		if (!strcmp(fs_kinds[i].type, type))
			return &fs_kinds[i];
	return NULL;
}

bool arc_fs_mountable(const char *fstype)
{
	return fstype && fs_kind(fstype) != NULL;
}

bool arc_fs_journaled(const char *fstype)
{
	const struct fs_kind *k = fstype ? fs_kind(fstype) : NULL;

	return k && k->replay[0];
}

const char *arc_res_kind_name(enum arc_res_kind k)
{
	switch (k) {
	case ARC_RES_LOOP:
		return "loop";
	case ARC_RES_MOUNT:
		return "mount";
	case ARC_RES_OVERLAY:
		return "overlay";
	default:
		return "node";
	}
}

struct arc_devs *arc_devs_new(const char *mount_base, arc_resource_fn hook,
			      void *ctx)
{
	struct arc_devs *d = cm_xcalloc(1, sizeof(*d));

	for (int i = 0; i < DEVS_MAX; i++) {
		atomic_init(&d->res[i].state, SLOT_FREE);
		d->res[i].fd = -1;
	}
	d->hook = hook;
	d->hook_ctx = ctx;
	if (mount_base)
		snprintf(d->base, sizeof(d->base), "%s", mount_base);
	return d;
}

/* A free slot, marked ARMED (visible to release_all from now on). */
static struct res *slot_take(struct arc_devs *d, enum arc_res_kind kind,
			     const char *path, const char *detail, int fd,
			     enum slot_state state, struct cm_err *err)
{
	for (int i = 0; i < DEVS_MAX; i++) {
		struct res *r = &d->res[i];

		if (atomic_load(&r->state) != SLOT_FREE)
			continue;
		r->kind = kind;
		r->seq = ++d->next_seq;
		r->fd = fd;
		snprintf(r->path, sizeof(r->path), "%s", path);
		snprintf(r->detail, sizeof(r->detail), "%s", detail);
		atomic_store(&r->state, state);
		return r;
	}
	cm_err_set(err, EMFILE, "too many devices and mounts held at once");
	return NULL;
}

static int slot_id(struct arc_devs *d, struct res *r)
{
	return (int)(r - d->res);
}

/*
 * An overlay's directory (overlay.h): its `cow` (if a crash came before
 * it was unlinked), its `mnt` (unmounted by now), itself. Only system
 * calls, and no heap: a signal handler runs this too. 0 or -errno of the
 * directory's rmdir.
 */
static int remove_overlay_dir(const char *dir)
{
	char p[RES_PATH + 8];
	size_t n = strlen(dir);

	if (n + 5 >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n);
	memcpy(p + n, "/cow", 5);
	unlink(p);
	memcpy(p + n, "/mnt", 5);
	rmdir(p);
	return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Only system calls: this runs in signal handlers too. */
static void release_quick(struct res *r)
{
	switch (r->kind) {
	case ARC_RES_MOUNT:
		umount2(r->path, MNT_DETACH);
		rmdir(r->path);
		break;
	case ARC_RES_LOOP:
		ioctl(r->fd, LOOP_CLR_FD, 0);
		close(r->fd);
		r->fd = -1;
		break;
	case ARC_RES_NODE:
		unlink(r->path);
		break;
	case ARC_RES_OVERLAY:
		remove_overlay_dir(r->path);
		break;
	}
}

static void release_gentle(struct arc_devs *d, struct res *r)
{
	switch (r->kind) {
	case ARC_RES_MOUNT:
		for (int i = 0; umount2(r->path, 0) != 0; i++) {
			if (errno == EINVAL || errno == ENOENT)
				break; /* not mounted (it failed) */
			if (errno != EBUSY || i == 10) {
				cm_warn("unmount %s: %s; detaching lazily",
					r->path, strerror(errno));
				umount2(r->path, MNT_DETACH);
				break;
			}
			cm_sleep_ms(100);
		}
		if (rmdir(r->path) != 0 && errno != ENOENT)
			cm_warn("rmdir %s: %s", r->path, strerror(errno));
		break;
	case ARC_RES_LOOP:
		if (ioctl(r->fd, LOOP_CLR_FD, 0) != 0 && errno != ENXIO)
			cm_debug("%s: LOOP_CLR_FD: %s (autoclear will do)",
				 r->path, strerror(errno));
		close(r->fd);
		r->fd = -1;
		break;
	case ARC_RES_NODE:
		if (unlink(r->path) != 0 && errno != ENOENT)
			cm_warn("unlink %s: %s", r->path, strerror(errno));
		break;
	case ARC_RES_OVERLAY: {
		int rc = remove_overlay_dir(r->path);

		if (rc)
			cm_warn("rmdir %s: %s", r->path, strerror(-rc));
		break;
	}
	}
	cm_debug("released %s %s", arc_res_kind_name(r->kind), r->path);
	if (d->hook)
		d->hook(d->hook_ctx, ARC_RES_RELEASED, r->kind, r->path,
			r->detail);
}

/* Claim a slot for release; false if it is free or someone else has it. */
static bool claim(struct res *r)
{
	int s = atomic_load(&r->state);

	while (s == SLOT_ARMED || s == SLOT_HELD) {
		if (atomic_compare_exchange_weak(&r->state, &s,
						 SLOT_RELEASING))
			return true;
	}
	return false;
}

/* The live slot created last at or after `min_seq`, or NULL. */
static struct res *newest(struct arc_devs *d, unsigned long min_seq)
{
	struct res *best = NULL;

	for (int i = 0; i < DEVS_MAX; i++) {
		struct res *r = &d->res[i];
		int s = atomic_load(&r->state);

		if ((s == SLOT_ARMED || s == SLOT_HELD) && r->seq >= min_seq &&
		    (!best || r->seq > best->seq))
			best = r;
	}
	return best;
}

void arc_devs_release_all(struct arc_devs *d)
{
	struct res *r;

	if (!d)
		return;
	while ((r = newest(d, 0)) != NULL) {
		if (!claim(r))
			continue; /* taken meanwhile: look again */
		release_quick(r);
		atomic_store(&r->state, SLOT_FREE);
	}
}

unsigned long arc_devs_mark(const struct arc_devs *d)
{
	return d->next_seq;
}

void arc_devs_rollback(struct arc_devs *d, unsigned long mark)
{
	struct res *r;

	if (!d)
		return;
	while ((r = newest(d, mark + 1)) != NULL) {
		if (!claim(r))
			continue;
		release_gentle(d, r);
		atomic_store(&r->state, SLOT_FREE);
	}
}

void arc_devs_release(struct arc_devs *d, int id)
{
	struct res *r;

	if (!d || id < 0 || id >= DEVS_MAX)
		return;
	r = &d->res[id];
	if (atomic_load(&r->state) == SLOT_FREE)
		return;
	arc_devs_rollback(d, r->seq - 1);
}

void arc_devs_free(struct arc_devs *d)
{
	if (!d)
		return;
	arc_devs_rollback(d, 0);
	free(d);
}

static int hook(struct arc_devs *d, enum arc_res_event ev, struct res *r,
		struct cm_err *err)
{
	int rc;

	if (!d->hook)
		return 0;
	rc = d->hook(d->hook_ctx, ev, r->kind, r->path, r->detail);
	if (rc)
		return cm_err_set(err, rc, "recording %s %s failed",
				  arc_res_kind_name(r->kind), r->path);
	return 0;
}

int arc_devs_begin(struct arc_devs *d, enum arc_res_kind kind,
		   const char *path, const char *detail, int *id,
		   struct cm_err *err)
{
	struct res *r = slot_take(d, kind, path, detail, -1, SLOT_ARMED, err);
	int rc;

	if (!r)
		return -EMFILE;
	rc = hook(d, ARC_RES_CREATING, r, err);
	if (rc) {
		/* nothing was made: free the slot without releasing it
		 * (unless a signal path has claimed it meanwhile) */
		int s = SLOT_ARMED;

		atomic_compare_exchange_strong(&r->state, &s, SLOT_FREE);
		return rc;
	}
	*id = slot_id(d, r);
	return 0;
}

int arc_devs_done(struct arc_devs *d, int id, struct cm_err *err)
{
	struct res *r = &d->res[id];

	atomic_store(&r->state, SLOT_HELD);
	return hook(d, ARC_RES_CREATED, r, err);
}

/* "M:m\n" from a sysfs `dev` file. */
static int read_devnum(const char *path, dev_t *out)
{
	unsigned maj, min;
	FILE *f = fopen(path, "re");
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "%u:%u", &maj, &min);
	fclose(f);
	if (n != 2)
		return -EINVAL;
	*out = makedev(maj, min);
	return 0;
}

static bool is_node(const char *path, dev_t dev)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISBLK(st.st_mode) &&
	       st.st_rdev == dev;
}

/*
 * A block device node for `dev` named /dev/<name>: the kernel's (waiting
 * up to `wait_ms` for devtmpfs), else one we make.
 */
static int ensure_node(struct arc_devs *d, const char *name, dev_t dev,
		       unsigned wait_ms, char *out, size_t outlen,
		       struct cm_err *err)
{
	char path[RES_PATH], num[32];
	struct res *r;
	int rc;

	snprintf(path, sizeof(path), "/dev/%s", name);
	for (unsigned t = 0;; t += 50) {
		/* the fault: a static /dev without the kernel's nodes */
		if (is_node(path, dev) && !cm_fault("arc.dev_node"))
			goto found;
		if (t >= wait_ms)
			break;
		cm_sleep_ms(50);
	}
	if (access(path, F_OK) == 0) /* a stale node of another device */
		snprintf(path, sizeof(path), "/dev/vaultfs-%u-%u", major(dev),
			 minor(dev));
	snprintf(num, sizeof(num), "%u:%u", major(dev), minor(dev));
	r = slot_take(d, ARC_RES_NODE, path, num, -1, SLOT_ARMED, err);
	if (!r)
		return -EMFILE;
	rc = hook(d, ARC_RES_CREATING, r, err);
	if (rc == 0 && mknod(path, S_IFBLK | 0600, dev) != 0 &&
	    !(errno == EEXIST && is_node(path, dev)))
		rc = cm_err_set(err, errno, "mknod %s (%s): %s", path, num,
				strerror(errno));
	if (rc) {
		arc_devs_release(d, slot_id(d, r));
		return rc;
	}
	atomic_store(&r->state, SLOT_HELD);
	cm_info("made device node %s for %s", path, num);
	rc = hook(d, ARC_RES_CREATED, r, err);
	if (rc) {
		arc_devs_release(d, slot_id(d, r));
		return rc;
	}
found:
	snprintf(out, outlen, "%s", path);
	return 0;
}

static int configure_loop(int lfd, int bfd, const char *image,
			  uint64_t offset, uint64_t size, bool partscan,
			  bool rw)
{
	struct loop_config cfg;
	struct loop_info64 info;
	const unsigned flags = (rw ? 0 : LO_FLAGS_READ_ONLY) |
			       LO_FLAGS_AUTOCLEAR |
			       (partscan ? LO_FLAGS_PARTSCAN : 0);

	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = (unsigned)bfd;
	cfg.info.lo_flags = flags;
	cfg.info.lo_offset = offset;
	cfg.info.lo_sizelimit = size;
	snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", image);
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOTTY)
		return -errno;
	/* before Linux 5.8: bind, then set the flags (read-only follows
	 * from the image being open read-only) */
	if (ioctl(lfd, LOOP_SET_FD, bfd) != 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	info.lo_flags = flags & ~LO_FLAGS_READ_ONLY;
	info.lo_offset = offset;
	info.lo_sizelimit = size;
	memcpy(info.lo_file_name, cfg.info.lo_file_name, LO_NAME_SIZE);
	if (ioctl(lfd, LOOP_SET_STATUS64, &info) != 0) {
		int e = errno;

		ioctl(lfd, LOOP_CLR_FD, 0);
		return -e;
	}
	return 0;
}

/* `image_fd` >= 0: the image open read-only (borrowed; `image` only
 * names it); -1: open `image` (read-write when `rw`). */
static int loop_attach(struct arc_devs *d, int image_fd, const char *image,
		       uint64_t offset, uint64_t size, bool partscan, bool rw,
		       int *id, char *dev, size_t devlen, struct cm_err *err)
{
	char path[64], name[32], sys[96], detail[RES_PATH];
	int bfd = image_fd, ctl = -1, lfd = -1, rc = 0, ro = 0;
	struct res *r = NULL;

	if (bfd >= 0) {
		/* The loop device reads through the open file it is given,
		 * read-ahead state included: the caller's descriptor has
		 * been read at scattered offsets by the probe, which shrinks
		 * that state's window, and every read of the mounted tree
		 * then goes to the disk one page at a time. A file of its
		 * own (the same inode, reached through the descriptor, not
		 * the name) starts with the default window. */
		char self[48];

		snprintf(self, sizeof(self), "/proc/self/fd/%d", image_fd);
		bfd = open(self, O_RDONLY | O_CLOEXEC);
		if (bfd < 0)
			bfd = image_fd;
	} else {
		bfd = open(image, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	}
	if (bfd < 0)
		return cm_err_set(err, errno, "%s: %s", image, strerror(errno));
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0 || cm_fault("arc.loop_attach")) {
		rc = cm_err_set(err, ctl < 0 ? errno : EIO,
				"cannot attach %s to a loop device: "
				"/dev/loop-control: %s",
				image, ctl < 0 ? strerror(errno) : "fault");
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		bool no_node;
		dev_t devnum = 0; /* read_devnum sets it when it returns 0;
				     gcc -O2 cannot see that */

		if (nr < 0) {
			rc = cm_err_set(err, errno,
					"no free loop device for %s: %s",
					image, strerror(errno));
			goto out;
		}
		snprintf(path, sizeof(path), "/dev/loop%d", nr);
		/* the fault: a static /dev without the kernel's nodes */
		no_node = cm_fault("arc.dev_node");
		lfd = no_node ? -1
			      : open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (no_node || (lfd < 0 && errno == ENOENT)) {
			/* a static /dev without the node */
			snprintf(sys, sizeof(sys), "/sys/block/loop%d/dev", nr);
			rc = read_devnum(sys, &devnum);
			if (rc) {
				rc = cm_err_set(err, -rc, "%s: missing, and %s "
						"cannot be read", path, sys);
				goto out;
			}
			snprintf(name, sizeof(name), "loop%d", nr);
			rc = ensure_node(d, name, devnum, 0, path,
					 sizeof(path), err);
			if (rc)
				goto out;
			lfd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		}
		if (lfd < 0) {
			rc = cm_err_set(err, errno, "%s: %s", path,
					strerror(errno));
			goto out;
		}
		rc = configure_loop(lfd, bfd, image, offset, size, partscan,
				    rw);
		if (rc == 0)
			break;
		close(lfd);
		lfd = -1;
		if (rc != -EBUSY || attempt == 20) {
			rc = cm_err_set(err, -rc, "attach %s to %s: %s", image,
					path, strerror(-rc));
			goto out;
		}
		/* another process took it between GET_FREE and CONFIGURE */
	}
	if (offset || size)
		snprintf(detail, sizeof(detail), "%s@%llu+%llu", image,
			 (unsigned long long)offset, (unsigned long long)size);
	else
		snprintf(detail, sizeof(detail), "%s", image);
	r = slot_take(d, ARC_RES_LOOP, path, detail, lfd, SLOT_HELD, err);
	if (!r) {
		ioctl(lfd, LOOP_CLR_FD, 0);
		close(lfd);
		rc = -EMFILE;
		goto out;
	}
	cm_info("attached %s to %s %s", detail, path,
		rw ? "read-write" : "read-only");
	rc = hook(d, ARC_RES_CREATED, r, err);
	if (rc == 0 && !rw && (ioctl(lfd, BLKROGET, &ro) != 0 || !ro))
		rc = cm_err_set(err, EPERM, "%s: not read-only, refusing it",
				path);
	if (rc) {
		arc_devs_release(d, slot_id(d, r));
		goto out;
	}
	*id = slot_id(d, r);
	snprintf(dev, devlen, "%s", path);
out:
	if (ctl >= 0)
		close(ctl);
	if (bfd != image_fd)
		close(bfd);
	return rc;
}

int arc_loop_attach(struct arc_devs *d, const char *image, bool partscan,
		    int *id, char *dev, size_t devlen, struct cm_err *err)
{
	return loop_attach(d, -1, image, 0, 0, partscan, false, id, dev,
			   devlen, err);
}

int arc_loop_attach_fd(struct arc_devs *d, int fd, const char *name,
		       bool partscan, int *id, char *dev, size_t devlen,
		       struct cm_err *err)
{
	return loop_attach(d, fd, name, 0, 0, partscan, false, id, dev,
			   devlen, err);
}

int arc_loop_attach_rw(struct arc_devs *d, const char *path, int *id,
		       char *dev, size_t devlen, struct cm_err *err)
{
	return loop_attach(d, -1, path, 0, 0, false, true, id, dev, devlen,
			   err);
}

int arc_loop_attach_range(struct arc_devs *d, const char *path,
			  uint64_t offset, uint64_t size, int *id, char *dev,
			  size_t devlen, struct cm_err *err)
{
	if (size == 0)
		return cm_err_set(err, EINVAL, "%s: empty range", path);
	return loop_attach(d, -1, path, offset, size, false, false, id, dev,
			   devlen, err);
}

int arc_loop_attach_range_fd(struct arc_devs *d, int fd, const char *name,
			     uint64_t offset, uint64_t size, int *id,
			     char *dev, size_t devlen, struct cm_err *err)
{
	if (size == 0)
		return cm_err_set(err, EINVAL, "%s: empty range", name);
	return loop_attach(d, fd, name, offset, size, false, false, id, dev,
			   devlen, err);
}

/* The sysfs name of partition `partno` under the disk's sysfs directory. */
static int find_partition(const char *sysdir, unsigned partno, char *name,
			  size_t namelen, dev_t *dev)
{
	DIR *dir = opendir(sysdir);
	struct dirent *de;
	int rc = -ENOENT;

	if (!dir)
		return -errno;
	while ((de = readdir(dir)) != NULL) {
		char p[512];
		unsigned n;
		FILE *f;
		int got;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/partition", sysdir, de->d_name);
		f = fopen(p, "re");
		if (!f)
			continue;
		got = fscanf(f, "%u", &n);
		fclose(f);
		if (got != 1 || n != partno)
			continue;
		snprintf(p, sizeof(p), "%s/%s/dev", sysdir, de->d_name);
		rc = read_devnum(p, dev);
		if (rc == 0)
			snprintf(name, namelen, "%s", de->d_name);
		break;
	}
	closedir(dir);
	return rc;
}

int arc_partition_node(struct arc_devs *d, const char *disk, unsigned partno,
		       char *dev, size_t devlen, struct cm_err *err)
{
	char sysdir[64], name[RES_PATH];
	struct stat st;
	dev_t pdev = 0;
	int rc = -ENOENT;

	if (stat(disk, &st) != 0)
		return cm_err_set(err, errno, "%s: %s", disk, strerror(errno));
	if (!S_ISBLK(st.st_mode))
		return cm_err_set(err, ENOTBLK, "%s: not a block device",
				  disk);
	snprintf(sysdir, sizeof(sysdir), "/sys/dev/block/%u:%u",
		 major(st.st_rdev), minor(st.st_rdev));
	/* the scan is done by the time the device is configured; wait a
	 * little anyway for slow or asynchronous rescans */
	for (int t = 0; t < 10; t++) {
		rc = find_partition(sysdir, partno, name, sizeof(name), &pdev);
		if (rc != -ENOENT)
			break;
		cm_sleep_ms(50);
	}
	if (rc)
		return cm_err_set(err, -rc,
				  "%s: the kernel shows no partition %u",
				  disk, partno);
	return ensure_node(d, name, pdev, 2000, dev, devlen, err);
}

static int mount_base(struct arc_devs *d, char *out, size_t outlen)
{
	const char *base = d->base[0] ? d->base : DEFAULT_BASE;

	if (mkdir(base, 0700) == 0 || errno == EEXIST) {
		snprintf(out, outlen, "%s", base);
		return 0;
	}
	if (d->base[0])
		return -errno; /* asked for, not there: say so */
	snprintf(out, outlen, "%s", FALLBACK_BASE);
	return 0;
}

/* Mount read-only with the first of `opts` (up to `nopts`) the kernel
 * takes; `how` ends its messages (" replaying the journal"). */
static int mount_with(struct arc_devs *d, const char *dev, const char *fstype,
		      const char *const *opts, int nopts, const char *how,
		      int *id, char *mnt, size_t mntlen, struct cm_err *err)
{
	const unsigned long flags = MS_RDONLY | MS_NODEV | MS_NOSUID |
				    MS_NOEXEC;
	char dir[RES_PATH];
	struct res *r;
	int rc, e = 0;

	rc = mount_base(d, dir, sizeof(dir) - 16);
	if (rc)
		return cm_err_set(err, -rc, "%s: %s", d->base, strerror(-rc));
	strcat(dir, "/mnt-XXXXXX");
	if (!mkdtemp(dir))
		return cm_err_set(err, errno, "mkdtemp %s: %s", dir,
				  strerror(errno));
	r = slot_take(d, ARC_RES_MOUNT, dir, dev, -1, SLOT_ARMED, err);
	if (!r) {
		rmdir(dir);
		return -EMFILE;
	}
	rc = hook(d, ARC_RES_CREATING, r, err);
	if (rc)
		goto fail;
	for (int i = 0; i < nopts && opts[i]; i++) {
		if (cm_fault("arc.mount")) {
			e = EINVAL;
			break;
		}
		if (mount(dev, dir, fstype, flags, opts[i]) == 0) {
			e = 0;
			cm_info("mounted %s (%s) read-only on %s with "
				"\"%s\"%s", dev, fstype, dir, opts[i], how);
			break;
		}
		e = errno;
		if (e != EINVAL)
			break;
	}
	if (e) {
		rc = cm_err_set(err, e,
				"mount %s (%s) read-only%s: %s (the kernel "
				"log may say more)",
				dev, fstype, how, strerror(e));
		goto fail;
	}
	atomic_store(&r->state, SLOT_HELD);
	rc = hook(d, ARC_RES_CREATED, r, err);
	if (rc)
		goto fail;
	*id = slot_id(d, r);
	snprintf(mnt, mntlen, "%s", dir);
	return 0;
fail:
	arc_devs_release(d, slot_id(d, r));
	return rc;
}

int arc_mount_ro(struct arc_devs *d, const char *dev, const char *fstype,
		 int *id, char *mnt, size_t mntlen, struct cm_err *err)
{
	const struct fs_kind *k = fs_kind(fstype);

	if (!k)
		return cm_err_set(err, EINVAL,
				  "%s: no safe way to mount %s read-only", dev,
				  fstype);
	return mount_with(d, dev, fstype, k->opts, 3, "", id, mnt,
			  mntlen, err);
}

int arc_mount_replay(struct arc_devs *d, const char *dev, const char *fstype,
		     int *id, char *mnt, size_t mntlen, struct cm_err *err)
{
	const struct fs_kind *k = fs_kind(fstype);

	if (!k || !k->replay[0])
		return cm_err_set(err, EINVAL, "%s: %s has no journal to "
				  "replay", dev, fstype);
	return mount_with(d, dev, fstype, k->replay, 2,
			  " replaying the journal", id, mnt, mntlen,
			  err);
}
