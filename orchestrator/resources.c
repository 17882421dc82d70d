/*
 * resources.c - releasing journaled resources (see resources.h).
 */
#include "resources.h"
#include "log.h"
#include "mem.h"
#include "s3.h"
#include "s3_upload.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LOOP_CLEAR_WAIT_MS 3000

/* ---- mounts ------------------------------------------------------------ */

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' &&
		    r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
				      (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

bool orch_is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *save = NULL, *tok = strtok_r(line, " ", &save);

		/* id parent major:minor root MOUNT-POINT ... */
		for (int i = 0; tok && i < 4; i++)
			tok = strtok_r(NULL, " ", &save);
		if (!tok)
			continue;
		unescape(tok);
		found = strcmp(tok, path) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

static int release_mount(const struct orch_resource *r, struct cm_err *err)
{
	if (!r->mount_point)
		return 0; /* never named: nothing was mounted */
	for (int i = 0; i < 8 && orch_is_mounted(r->mount_point); i++) {
		if (umount2(r->mount_point, MNT_DETACH) < 0 &&
		    errno != EINVAL && errno != ENOENT)
			return cm_err_set(err, errno, "umount %s: %s",
					  r->mount_point, strerror(errno));
		cm_info("unmounted %s (left by an earlier run)",
			r->mount_point);
	}
	if (rmdir(r->mount_point) < 0 && errno != ENOENT)
		cm_warn("rmdir %s: %s", r->mount_point, strerror(errno));
	return 0;
}

/* ---- loop devices ------------------------------------------------------ */

/* The backing file of /dev/loopN now, into out ("" when unbound). */
static void loop_backing(const char *dev, char *out, size_t n)
{
	const char *name = strrchr(dev, '/');
	char path[128];
	ssize_t got;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
		 name ? name + 1 : dev);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	got = read(fd, out, n - 1);
	close(fd);
	if (got <= 0) {
		out[0] = '\0';
		return;
	}
	out[got] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* The recorded backing file is "FILE" or "FILE@OFFSET+SIZE" (a range);
 * the kernel shows FILE, with " (deleted)" once it is unlinked. */
static bool same_backing(const char *now, const char *rec)
{
	size_t n = strlen(now);
	const char *del = " (deleted)";
	size_t dn = strlen(del);

	if (n > dn && strcmp(now + n - dn, del) == 0)
		n -= dn;
	return n > 0 && strncmp(now, rec, n) == 0 &&
	       (rec[n] == '\0' || rec[n] == '@');
}

static int release_loop(const struct orch_resource *r, struct cm_err *err)
{
	char now[4096];
	int fd;

	if (!r->device || !r->backing_file)
		return 0; /* never attached as far as we know */
	loop_backing(r->device, now, sizeof(now));
	if (!same_backing(now, r->backing_file))
		return 0; /* gone, or someone else's now */
	fd = open(r->device, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO)
			cm_debug("%s: LOOP_CLR_FD: %s", r->device,
				 strerror(errno));
		close(fd);
	}
	/* the kernel detaches an autoclear device once it is unused */
	for (unsigned ms = 0; ms < LOOP_CLEAR_WAIT_MS; ms += 50) {
		loop_backing(r->device, now, sizeof(now));
		if (!same_backing(now, r->backing_file)) {
			cm_info("detached %s (%s)", r->device,
				r->backing_file);
			return 0;
		}
		cm_sleep_ms(50);
	}
	return cm_err_set(err, EBUSY, "%s is still attached to %s", r->device,
			  r->backing_file);
}

/* ---- device nodes ------------------------------------------------------ */

/* A node we made with mknod: removed only while it is still a block
 * device of the recorded number (anything else there is not ours). */
static int release_node(const struct orch_resource *r, struct cm_err *err)
{
	unsigned maj, min;
	struct stat st;

	if (!r->device || !r->devnum ||
	    sscanf(r->devnum, "%u:%u", &maj, &min) != 2)
		return 0; /* never named: nothing was made */
	if (lstat(r->device, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return cm_err_set(err, errno, "%s: %s", r->device,
				  strerror(errno));
	}
	if (!S_ISBLK(st.st_mode) || st.st_rdev != makedev(maj, min)) {
		cm_warn("%s is no longer the device node %s that vaultfs "
			"made: left alone", r->device, r->devnum);
		return 0;
	}
	if (unlink(r->device) < 0 && errno != ENOENT)
		return cm_err_set(err, errno, "unlink %s: %s", r->device,
				  strerror(errno));
	cm_info("removed device node %s (%s)", r->device, r->devnum);
	return 0;
}

/* ---- multipart uploads ------------------------------------------------- */

static int release_upload(struct s3_client *s3, const struct orch_resource *r,
			  struct cm_err *err)
{
	unsigned n = 0;
	int rc = 0;

	if (!r->bucket || !r->key)
		return 0;
	if (!s3)
		return cm_err_set(err, EINVAL, "s3://%s/%s: an upload to "
				  "abort but no S3 destination", r->bucket,
				  r->key);
	if (r->upload_id) {
		rc = s3_abort_multipart_upload(s3, r->bucket, r->key,
					       r->upload_id, err);
		if (rc == -ENOENT)
			rc = 0; /* finished or aborted already */
		else if (rc == 0)
			cm_info("aborted the upload of s3://%s/%s", r->bucket,
				r->key);
		if (rc)
			return rc;
	}
	/* the key is the job's alone: any other upload for it was made by a
	 * create whose answer was lost (or by a crash before the id was
	 * recorded), and the journal never heard of it */
	rc = s3_abort_orphans(s3, r->bucket, r->key, NULL, &n, err);
	if (rc == 0 && n)
		cm_warn("aborted %u upload%s of s3://%s/%s the journal did "
			"not hold", n, n == 1 ? "" : "s", r->bucket, r->key);
	return rc;
}

/* ---- trees ------------------------------------------------------------- */

static __thread int remove_errno;
static __thread char remove_failed[512];

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DNR || flag == FTW_NS) {
		if (!remove_errno) {
			remove_errno = EACCES;
			snprintf(remove_failed, sizeof(remove_failed), "%s",
				 path);
		}
		return 0;
	}
	if (remove(path) < 0 && errno != ENOENT && !remove_errno) {
		remove_errno = errno;
		snprintf(remove_failed, sizeof(remove_failed), "%s", path);
	}
	return 0;
}

int orch_remove_all(const char *path, struct cm_err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0
				       : cm_err_set(err, errno, "%s: %s", path,
						    strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return cm_err_set(err, errno, "unlink %s: %s", path,
					  strerror(errno));
		return 0;
	}
	remove_errno = 0;
	if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 &&
	    !remove_errno) {
		remove_errno = errno;
		snprintf(remove_failed, sizeof(remove_failed), "%s", path);
	}
	if (remove_errno)
		return cm_err_set(err, remove_errno, "remove %s: %s",
				  remove_failed, strerror(remove_errno));
	return 0;
}


/* A temporary directory, or a recovery point renamed to be deleted: with
 * an inode recorded, only while the name still holds that inode (what a
 * crash left there before the rename was checked may be someone else's). */
static int release_tempdir(const struct orch_resource *r, struct cm_err *err)
{
	unsigned long long dev, ino;
	struct stat st;

	if (!r->dir)
		return 0;
	if (r->inode && sscanf(r->inode, "%llu:%llu", &dev, &ino) == 2) {
		if (lstat(r->dir, &st) < 0)
			return errno == ENOENT ? 0
					       : cm_err_set(err, errno, "%s: %s",
							    r->dir,
							    strerror(errno));
		if ((unsigned long long)st.st_dev != dev ||
		    (unsigned long long)st.st_ino != ino) {
			cm_warn("%s is not the recovery point that was being "
				"deleted (inode %llu, not %llu): left alone",
				r->dir, (unsigned long long)st.st_ino, ino);
			return 0;
		}
	}
	return orch_remove_all(r->dir, err);
}

/* ---- one record -------------------------------------------------------- */

int orch_res_release(struct s3_client *s3, const struct orch_resource *res,
		     struct cm_err *err)
{
	const char *k = res->kind;

	if (strcmp(k, ORCH_RES_MOUNT) == 0)
		return release_mount(res, err);
	if (strcmp(k, ORCH_RES_LOOP) == 0)
		return release_loop(res, err);
	if (strcmp(k, ORCH_RES_UPLOAD) == 0)
		return release_upload(s3, res, err);
	if (strcmp(k, ORCH_RES_TEMPDIR) == 0)
		return release_tempdir(res, err);
	if (strcmp(k, ORCH_RES_NODE) == 0)
		return release_node(res, err);
	/* a provider's kind: its release_stale (job.c) */
	return cm_err_set(err, EINVAL, "resource kind \"%s\" is not the "
			  "engine's", k);
}
