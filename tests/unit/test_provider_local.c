/*
 * test_provider_local.c - the local provider's delete: the hidden name is
 * checked after the rename, and what is not the recovery point goes back
 * (never over something new). The race itself (another file renamed over
 * the name between the check and the rename) cannot be timed from a
 * test, so check_hidden() is called on the states it leaves; and the
 * release of a hidden name after a crash checks its inode. And its
 * watches and listing (provider.h): the engine's reports a complete
 * recovery point once recorded, offering again what was not; the view's
 * reports changes without checking completeness.
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

/* ---- watching ---------------------------------------------------------- */

struct seen_watch {
	int ready;     /* recorded */
	int refused;   /* ready calls answered "not recorded" */
	int changed;
	int refuse;    /* refuse this many first */
	char name[64];
};

static int on_ready(void *ctx, const struct orch_recovery_point *rp,
		    struct cm_err *err)
{
	struct seen_watch *s = ctx;

	if (s->refuse > 0) {
		s->refuse--;
		s->refused++;
		return cm_err_set(err, EIO, "journal full");
	}
	s->ready++;
	snprintf(s->name, sizeof(s->name), "%s", rp->name);
	return 0;
}

static void on_changed(void *ctx)
{
	((struct seen_watch *)ctx)->changed++;
}

/* Drive w as its owner would, for up to ms, until `done` is nonzero. */
static void drive(struct orch_watch *w, const int *done, int ms)
{
	struct cm_err err;

	for (int waited = 0; !*done && waited < ms; waited += 20) {
		struct pollfd pfd = { .fd = prov.ops->watch_fd(w),
				      .events = POLLIN };
		int t = prov.ops->watch_timeout(w);

		poll(&pfd, 1, t >= 0 && t < 20 ? t : 20);
		assert_int_equal(prov.ops->watch_poll(w, &err), 0);
	}
}

static void test_engine_watch(void **state)
{
	struct seen_watch s = { .refuse = 1 };
	struct orch_watch_opts o = { .quiet_ms = 100 };
	struct orch_watch_cb cb = { on_ready, on_changed, &s };
	struct orch_watch *w;
	struct cm_err err;
	int vfd = open(tmp, O_RDONLY | O_DIRECTORY);

	(void)state;
	prov.ops = &local_ops;
	assert_int_equal(prov.ops->watch_new(&prov, &o, &cb, &w, &err), 0);
	put(vfd, "disk.img", "an image");
	drive(w, &s.ready, 10000);
	/* refused once (not journaled), offered again, then recorded */
	assert_int_equal(s.refused, 1);
	assert_int_equal(s.ready, 1);
	assert_string_equal(s.name, "disk.img");
	assert_true(s.changed > 0);
	/* reported once */
	s.changed = 0;
	drive(w, &s.changed, 300);
	assert_int_equal(s.ready, 1);
	prov.ops->watch_free(w);
	close(vfd);
}

static void test_listing_watch(void **state)
{
	struct seen_watch s = { 0 };
	struct orch_watch_cb cb = { .changed = on_changed, .ctx = &s };
	struct orch_rp_list l = { 0 };
	struct orch_watch *w;
	struct cm_err err;
	int vfd = open(tmp, O_RDONLY | O_DIRECTORY);

	(void)state;
	prov.ops = &local_ops;
	assert_int_equal(mkdirat(vfd, "tree", 0755), 0);
	put(vfd, "tree/f", "0123456789");
	assert_int_equal(prov.ops->watch_new(&prov, NULL, &cb, &w, &err), 0);
	put(vfd, "new.img", "x");
	drive(w, &s.changed, 5000);
	assert_true(s.changed > 0);
	prov.ops->watch_free(w);

	/* the cheap listing: names, types, mtimes, no tree walk */
	assert_int_equal(prov.ops->list(&prov, &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].name, "new.img");
	assert_string_equal(l.items[0].type, ORCH_RP_IMAGE);
	assert_string_equal(l.items[1].name, "tree");
	assert_string_equal(l.items[1].type, ORCH_RP_TREE);
	assert_true(l.items[1].mtime > 0);
	assert_int_equal(l.items[1].size, 0);
	orch_rp_list_release(&l);
	assert_int_equal(prov.ops->scan(&prov, &l, &err), 0);
	assert_int_equal(l.items[1].size, 10); /* scan walks it */
	orch_rp_list_release(&l);
	close(vfd);
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
		cmocka_unit_test_setup_teardown(test_engine_watch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_listing_watch, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
