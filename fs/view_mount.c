/*
 * view_mount.c - getting a mount point ready for `vaultfs mount`: plain
 * system calls, no FUSE (see view_fuse.h).
 *
 * A FUSE daemon killed with SIGKILL leaves its mount behind: the kernel
 * still lists it, and every access to it fails with ENOTCONN ("Transport
 * endpoint is not connected"). view_mount_prepare() recognises that and
 * detaches the dead mount lazily (umount2 MNT_DETACH as root, else
 * `fusermount3 -u -z`), so that the next mount on the same point works. A
 * live mount of anything there is left alone and refused with EBUSY.
 */
#include "view_fuse.h"

#include "log.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether path is a mount point in /proc/self/mountinfo (field 5), with
 * its filesystem type (after the " - ") into type. */
static bool mounted_at(const char *path, char *type, size_t typelen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096], *dash;
		unsigned a, b;

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - TYPE SOURCE ... */
		if (sscanf(line, "%u %u %*s %*s %4095s", &a, &b, mp) != 3)
			continue;
		/* octal escapes (\040 for a space) as the kernel writes */
		for (char *s = mp, *d = mp;; s++, d++) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
			    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
			    s[3] <= '7') {
				*d = (char)((s[1] - '0') * 64 +
					    (s[2] - '0') * 8 + (s[3] - '0'));
				s += 3;
			} else {
				*d = *s;
			}
			if (!*s)
				break;
		}
		if (strcmp(mp, path) != 0)
			continue;
		found = true;
		dash = strstr(line, " - ");
		if (dash && type) {
			size_t n = strcspn(dash + 3, " \n");

			snprintf(type, typelen, "%.*s", (int)n, dash + 3);
		}
	}
	fclose(f);
	return found;
}

static int lazy_unmount(const char *path, struct cm_err *err)
{
	pid_t pid;
	int status;

	if (umount2(path, MNT_DETACH) == 0)
		return 0;
	if (errno != EPERM)
		return cm_err_set(err, errno, "umount %s: %s", path,
				  strerror(errno));
	/* not root: the setuid helper */
	pid = fork();
	if (pid < 0)
		return cm_err_set(err, errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "--", path,
		       (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return cm_err_set(err, EIO, "fusermount3 -u -z %s failed",
				  path);
	return 0;
}

int view_mount_prepare(const char *path, bool *cleared, struct cm_err *err)
{
	char type[64] = "";
	struct stat st;
	int rc;

	*cleared = false;
	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return cm_err_set(err, ENOTDIR, "%s: not a directory",
					  path);
		if (mounted_at(path, type, sizeof(type)) &&
		    !strncmp(type, "fuse", 4))
			return cm_err_set(err, EBUSY,
					  "%s: already mounted "
					  "(%s)",
					  path, type);
		return 0;
	}
	if (errno != ENOTCONN)
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	/* a FUSE daemon died without unmounting */
	cm_warn("mount: %s: a stale mount (Transport endpoint is not "
		"connected): unmounting it",
		path);
	rc = lazy_unmount(path, err);
	if (rc)
		return rc;
	*cleared = true;
	if (stat(path, &st) < 0)
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return cm_err_set(err, ENOTDIR, "%s: not a directory", path);
	return 0;
}
