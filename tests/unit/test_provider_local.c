/*
 * test_provider_local.c - the local provider's delete: the hidden name is
 * checked after the rename, and what is not the recovery point goes back
 * (never over something new). The race itself (another file renamed over
 * the name between the check and the rename) cannot be timed from a
 * test, so check_hidden() is called on the states it leaves; and the
 * release of a hidden name after a crash checks its inode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orchestrator/provider_local.c"

#include "tmpdir.h"

static struct orch_vault_config vault;
static struct orch_provider prov;
static int released;

static int setup(void **state)
{
	(void)state;
	if (tmpdir_make("prov"))
		return -1;
	vault.name = (char *)"v";
	vault.type = (char *)ORCH_VAULT_LOCAL;
	vault.path = tmp;
	prov.vault = &vault;
	released = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static int rj_released(void *ctx, size_t idx, struct cm_err *err)
{
	(void)ctx;
	(void)idx;
	(void)err;
	released++;
	return 0;
}

static const struct orch_res_journal rj = { .released = rj_released };

static void put(int vfd, const char *name, const char *text)
{
	int fd = openat(vfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)),
			 (ssize_t)strlen(text));
	close(fd);
}

/* rp named "disk.img" with the identity of what is at `name` now */
static void rp_of(int vfd, const char *name, struct orch_recovery_point *rp)
{
	struct stat st;

	memset(rp, 0, sizeof(*rp));
	assert_int_equal(fstatat(vfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	rp->name = (char *)"disk.img";
	rp->path = (char *)"/vault/disk.img";
	rp->type = (char *)ORCH_RP_IMAGE;
	orch_rp_identity_from_stat(&rp->id, &st);
}

static void test_hidden_is_the_recovery_point(void **state)
{
	struct orch_recovery_point rp;
	struct cm_err err;
	int vfd = open(tmp, O_RDONLY | O_DIRECTORY);

	(void)state;
	put(vfd, "disk.img", "image");
	rp_of(vfd, "disk.img", &rp);
	/* the rename changes the ctime: the check must not mind */
	assert_int_equal(renameat(vfd, "disk.img", vfd, ".h1"), 0);
	assert_int_equal(check_hidden(&prov, vfd, &rp, ".h1", &rj, 0, &err),
			 0);
	assert_int_equal(released, 0);
	close(vfd);
}

static void test_hidden_is_another_file(void **state)
{
	struct orch_recovery_point rp;
	struct cm_err err;
	struct stat st;
	int vfd = open(tmp, O_RDONLY | O_DIRECTORY);

	(void)state;
	put(vfd, "disk.img", "image");
	rp_of(vfd, "disk.img", &rp);
	/* another file took the name just before our rename */
	put(vfd, "other", "image");
	assert_int_equal(renameat(vfd, "other", vfd, "disk.img"), 0);
	assert_int_equal(renameat(vfd, "disk.img", vfd, ".h2"), 0);
	assert_int_equal(check_hidden(&prov, vfd, &rp, ".h2", &rj, 0, &err),
			 -ESTALE);
	assert_non_null(strstr(err.msg, "back in place, nothing deleted"));
	assert_int_equal(released, 1);
	/* it is back under its name, and the hidden name is free */
	assert_int_equal(fstatat(vfd, "disk.img", &st, 0), 0);
	assert_int_not_equal(st.st_ino, rp.id.ino);
	assert_int_equal(fstatat(vfd, ".h2", &st, 0), -1);

	/* and when something new holds the name, nothing is overwritten */
	put(vfd, "third", "x");
	assert_int_equal(renameat(vfd, "third", vfd, ".h3"), 0);
	assert_int_equal(check_hidden(&prov, vfd, &rp, ".h3", &rj, 0, &err),
			 -ESTALE);
	assert_non_null(strstr(err.msg, "it is kept as"));
	assert_int_equal(released, 2);
	assert_int_equal(fstatat(vfd, ".h3", &st, 0), 0);
	assert_int_equal(st.st_size, 1);
	assert_int_equal(fstatat(vfd, "disk.img", &st, 0), 0);
	assert_int_equal(st.st_size, 5);
	close(vfd);
}

/* After a crash, a hidden name is removed only while it holds the inode
 * that was renamed there. */
static void test_hidden_after_crash(void **state)
{
	struct orch_resource r = { .kind = (char *)ORCH_RES_TEMPDIR };
	struct cm_err err;
	struct stat st;
	char inode[48], *path = cm_xasprintf("%s/.h", tmp);
	int vfd = open(tmp, O_RDONLY | O_DIRECTORY);

	(void)state;
	put(vfd, ".h", "someone else's");
	assert_int_equal(fstatat(vfd, ".h", &st, 0), 0);
	r.dir = path;
	snprintf(inode, sizeof(inode), "%llu:%llu",
		 (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	r.inode = inode;
	assert_int_equal(orch_res_release(NULL, &r, &err), 0);
	assert_int_equal(fstatat(vfd, ".h", &st, 0), 0); /* left alone */
	snprintf(inode, sizeof(inode), "%llu:%llu",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	assert_int_equal(orch_res_release(NULL, &r, &err), 0);
	assert_int_equal(fstatat(vfd, ".h", &st, 0), -1); /* ours: gone */
	assert_int_equal(orch_res_release(NULL, &r, &err), 0);
	close(vfd);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_hidden_is_the_recovery_point, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hidden_is_another_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hidden_after_crash,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
