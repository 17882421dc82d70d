/*
 * tmpdir.h - a fresh temporary directory per unit test (cmocka setup and
 * teardown), removed with everything in it. For tests/unit only: it
 * defines `tmp`, the directory's path, in the file that includes it.
 */
#ifndef VAULTFS_TEST_TMPDIR_H
#define VAULTFS_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char tmp[64];

/* /tmp/vf-TAG-XXXXXX, made now; 0 or -1 */
static inline int tmpdir_make(const char *tag)
{
	snprintf(tmp, sizeof(tmp), "/tmp/vf-%s-XXXXXX", tag);
	return mkdtemp(tmp) ? 0 : -1;
}

static inline int tmpdir_rm_one(const char *p, const struct stat *st,
				int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* tmp and all it holds, not following links; 0 or -1 */
static inline int tmpdir_remove(void)
{
	return nftw(tmp, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
