/*
 * test_vault_local.c - local vaults: what a scan lists, sidecars, writers,
 * and a watcher that takes a recovery point only once it is quiet and
 * closed. The module is included (UNITTEST) to reach the watcher's inotify
 * descriptor and the writer scan.
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

#include "core/err.h"
#include "core/mem.h"
#include "core/timeutil.h"

#include "orchestrator/vault_local.c"

#include "tmpdir.h"

#define QUIET_MS 150

static char vault_name[] = "v";
static struct orch_vault_config vault;

static int setup(void **state)
{
	(void)state;
	if (tmpdir_make("vault"))
		return -1;
	vault.name = vault_name;
	vault.type = (char *)ORCH_VAULT_LOCAL;
	vault.path = tmp;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static char *at(const char *name)
{
	return cm_xasprintf("%s/%s", tmp, name);
}

static void put(const char *name, const char *text)
{
	char *p = at(name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static void put_bytes(const char *name, size_t n)
{
	char *p = at(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[4096];

	assert_true(fd >= 0);
	memset(buf, 'x', sizeof(buf));
	while (n > 0) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);

		assert_int_equal(write(fd, buf, k), (ssize_t)k);
		n -= k;
	}
	close(fd);
	free(p);
}

static void make_dir(const char *name)
{
	char *p = at(name);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static struct orch_vault_watch *watch_quiet(unsigned quiet_ms,
					    unsigned rescan_ms)
{
	struct orch_vault_watch_opts o = { .quiet_ms = quiet_ms,
					   .rescan_ms = rescan_ms };
	struct cm_err err;
	struct orch_vault_watch *w = orch_vault_watch_new(&vault, &o, &err);

	assert_non_null(w);
	return w;
}

static struct orch_vault_watch *watch(unsigned rescan_ms)
{
	return watch_quiet(QUIET_MS, rescan_ms);
}

/* Poll until something is ready or max_ms passed; the names reported go
 * to `got` (comma-separated). Returns the ms waited. */
static long poll_for(struct orch_vault_watch *w, int max_ms, char *got,
		     size_t n, struct orch_rp_list *keep)
{
	struct orch_rp_list ready = { 0 };
	uint64_t t0 = cm_now_ns();
	struct cm_err err;
	size_t len = 0;

	got[0] = '\0';
	assert_int_equal(orch_vault_watch_poll(w, max_ms, &ready, &err), 0);
	for (size_t i = 0; i < ready.n; i++)
		len += (size_t)snprintf(got + len, n - len, "%s%s",
					i ? "," : "", ready.items[i].name);
	if (keep)
		*keep = ready;
	else
		orch_rp_list_release(&ready);
	return (long)((cm_now_ns() - t0) / 1000000);
}

/* ---- scanning ---------------------------------------------------------- */

static void test_scan(void **state)
{
	struct orch_recovery_point rp;
	struct orch_rp_list l;
	struct cm_err err;
	char *p, *q;
	time_t t;

	(void)state;
	put_bytes("disk.img", 1000);
	put("disk.img.json",
	    "{\"resourceId\": \"arn:aws:ec2:eu-west-1:123456789012:"
	    "snapshot/snap-1\", \"creationTime\": \"2026-01-02T03:04:05Z\","
	    " \"tags\": {\"a\": \"1\", \"b\": \"2\"}}");
	put_bytes("empty.img", 0);
	make_dir("tree");
	make_dir("tree/sub");
	put_bytes("tree/f1", 10);
	put_bytes("tree/sub/f2", 20);
	p = at("tree/sub/link");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	free(p);
	/* none of these is a recovery point */
	put_bytes(".hidden", 5);
	put_bytes("x.partial", 5);
	put("lone.json", "{}");
	make_dir("lost+found");
	make_dir(".snapshots");
	p = at("link");
	q = at("disk.img");
	assert_int_equal(symlink(q, p), 0);
	free(p);
	free(q);
	p = at("fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	free(p);

	assert_int_equal(orch_vault_scan(&vault, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].name, "disk.img");
	assert_string_equal(l.items[1].name, "empty.img");
	assert_string_equal(l.items[2].name, "tree");

	assert_string_equal(l.items[0].vault, "v");
	p = at("disk.img");
	assert_string_equal(l.items[0].path, p);
	free(p);
	assert_string_equal(l.items[0].type, ORCH_RP_IMAGE);
	assert_int_equal(l.items[0].size, 1000);
	assert_string_equal(l.items[0].resource_id,
			    "arn:aws:ec2:eu-west-1:123456789012:"
			    "snapshot/snap-1");
	assert_int_equal(cm_time_parse_iso8601("2026-01-02T03:04:05Z", &t), 0);
	assert_int_equal(l.items[0].created, t);
	assert_true(l.items[0].mtime > t);
	assert_int_equal(l.items[0].ntags, 2);
	assert_string_equal(l.items[0].tags[0].key, "a");
	assert_string_equal(l.items[0].tags[1].value, "2");
	assert_null(l.items[0].error);

	assert_int_equal(l.items[1].size, 0);
	assert_string_equal(l.items[1].resource_id, "local:v:empty.img");
	assert_int_equal(l.items[1].created, l.items[1].mtime);
	assert_int_equal(l.items[1].ntags, 0);

	assert_string_equal(l.items[2].type, ORCH_RP_TREE);
	assert_string_equal(l.items[2].type, "tree");
	assert_int_equal(l.items[2].size, 30);
	assert_string_equal(l.items[2].resource_id, "local:v:tree");
	orch_rp_list_release(&l);
	orch_rp_list_release(&l);

	/* one by name */
	assert_int_equal(orch_vault_inspect(&vault, "tree", &rp, &err), 0);
	assert_int_equal(rp.size, 30);
	orch_rp_release(&rp);
	assert_int_equal(orch_vault_inspect(&vault, "x.partial", &rp, &err),
			 -ENOENT);
	assert_string_equal(err.msg, "vault \"v\": x.partial: no such "
			    "recovery point");
	assert_int_equal(orch_vault_inspect(&vault, "../etc", &rp, &err),
			 -ENOENT);
	assert_int_equal(orch_vault_inspect(&vault, "link", &rp, &err),
			 -ENOENT);
	assert_int_equal(orch_vault_inspect(&vault, "gone", &rp, &err),
			 -ENOENT);
}

static void test_scan_errors(void **state)
{
	char nname[] = "n", npath[] = "/nonexistent";
	struct orch_vault_config none = { .name = nname, .path = npath };
	struct orch_rp_list l;
	struct cm_err err;

	(void)state;
	assert_int_equal(orch_vault_scan(&none, &l, &err), -ENOENT);
	assert_string_equal(err.msg, "vault \"n\": /nonexistent: No such file "
			    "or directory");
	assert_int_equal(l.n, 0);
	assert_true(orch_vault_name_ignored(".x"));
	assert_true(orch_vault_name_ignored("a.partial"));
	assert_true(orch_vault_name_ignored("a.json"));
	assert_true(orch_vault_name_ignored("lost+found"));
	assert_false(orch_vault_name_ignored("a.img"));
	assert_false(orch_vault_name_ignored("json"));
}

static void test_sidecar_errors(void **state)
{
	static const struct {
		const char *name;
		const char *json;
		const char *error;
	} cases[] = {
		{ "a", "{\"resourceId\": ", "sidecar a.json: invalid JSON" },
		{ "b", "{\"resourceID\": \"x\"}",
		  "sidecar b.json: unknown key \"resourceID\"" },
		{ "c", "{\"creationTime\": \"yesterday\"}",
		  "sidecar c.json: creationTime: must be an ISO 8601 UTC time "
		  "such as \"2026-11-26T20:45:16Z\"" },
		{ "d", "{\"tags\": {\"k\": 1}}",
		  "sidecar d.json: tags.k: must be a string" },
		{ "e", "{\"resourceId\": \"\"}",
		  "sidecar e.json: resourceId: must be a non-empty string" },
		{ "f", "[]", "sidecar f.json: must be an object" },
		{ "g", "{\"tags\": []}", "sidecar g.json: tags: must be an "
		  "object" },
	};
	struct orch_rp_list l;
	struct cm_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char side[16];

		put_bytes(cases[i].name, 1);
		snprintf(side, sizeof(side), "%s.json", cases[i].name);
		put(side, cases[i].json);
	}
	assert_int_equal(orch_vault_scan(&vault, &l, &err), 0);
	assert_int_equal(l.n, sizeof(cases) / sizeof(cases[0]));
	for (size_t i = 0; i < l.n; i++) {
		assert_non_null(l.items[i].error);
		if (strncmp(l.items[i].error, cases[i].error,
			    strlen(cases[i].error)) != 0)
			fail_msg("got \"%s\", want \"%s\"", l.items[i].error,
				 cases[i].error);
	}
	orch_rp_list_release(&l);
}

/* A sidecar that is not a regular file is an error, and a FIFO never
 * blocks the scan (the test would hang). */
static void test_sidecar_not_regular(void **state)
{
	struct orch_rp_list l;
	struct cm_err err;
	char *p;

	(void)state;
	put_bytes("fifo", 1);
	p = at("fifo.json");
	assert_int_equal(mkfifo(p, 0644), 0);
	free(p);
	put_bytes("link", 1);
	put("target", "{}");
	p = at("link.json");
	assert_int_equal(symlink("target", p), 0);
	free(p);
	assert_int_equal(orch_vault_scan(&vault, &l, &err), 0);
	assert_int_equal(l.n, 3); /* fifo, link, target */
	assert_string_equal(l.items[0].name, "fifo");
	assert_string_equal(l.items[0].error,
			    "sidecar fifo.json: not a regular file (a FIFO)");
	assert_string_equal(l.items[1].name, "link");
	assert_string_equal(l.items[1].error,
			    "sidecar link.json: a symlink, not a regular file");
	assert_null(l.items[2].error);
	orch_rp_list_release(&l);
}

/* The identity a scan records, and opening by it. */
static void test_identity_open(void **state)
{
	struct orch_recovery_point rp;
	struct cm_err err;
	struct stat st;
	char *p = at("img"), *q = at("img2");
	int vfd, fd = -1, fd2 = -1;

	(void)state;
	put_bytes("img", 100);
	make_dir("tree");
	assert_int_equal(orch_vault_inspect(&vault, "img", &rp, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_true(rp.id.known);
	assert_int_equal(rp.id.ino, st.st_ino);
	assert_int_equal(rp.id.size, 100);
	assert_int_equal(rp.id.mtime_ns, (int64_t)st.st_mtim.tv_sec *
				1000000000 + st.st_mtim.tv_nsec);
	vfd = open(tmp, O_RDONLY | O_DIRECTORY);
	assert_true(vfd >= 0);
	assert_int_equal(orch_rp_open(vfd, "img", p, false, &rp.id, &fd,
				      &err), 0);
	assert_int_equal(orch_rp_check_name(vfd, "img", p, fd, &err), 0);
	/* a directory is not an image, an image not a tree */
	assert_int_equal(orch_rp_open(vfd, "img", p, true, &rp.id, &fd2,
				      &err), -ESTALE);
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err.msg, "it is now a regular file, not a "
				       "directory"));
	/* replaced under the same name: the open fd no longer matches */
	put_bytes("img2", 100);
	assert_int_equal(rename(q, p), 0);
	assert_int_equal(orch_rp_check_name(vfd, "img", p, fd, &err),
			 -ESTALE);
	assert_non_null(strstr(err.msg, "new inode"));
	close(fd);
	assert_int_equal(orch_rp_open(vfd, "img", p, false, &rp.id, &fd2,
				      &err), -ESTALE);
	/* a symlink in its place is refused, not followed */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/dev/null", p), 0);
	assert_int_equal(orch_rp_open(vfd, "img", p, false, &rp.id, &fd2,
				      &err), -ESTALE);
	assert_non_null(strstr(err.msg, "it is now a symlink"));
	close(vfd);
	orch_rp_release(&rp);
	free(p);
	free(q);
}

/* ---- writers ----------------------------------------------------------- */

static void test_open_for_writing(void **state)
{
	struct orch_recovery_point rp;
	struct cm_err err;
	char *p;
	int fd;

	(void)state;
	put_bytes("img", 100);
	make_dir("t");
	make_dir("t/deep");
	put_bytes("t/deep/f", 10);

	assert_int_equal(orch_vault_inspect(&vault, "img", &rp, &err), 0);
	assert_false(orch_rp_open_for_writing(&rp));
	p = at("img");
	fd = open(p, O_RDONLY);
	assert_false(orch_rp_open_for_writing(&rp)); /* readers are fine */
	close(fd);
	fd = open(p, O_RDWR);
	assert_true(orch_rp_open_for_writing(&rp));
	close(fd);
	fd = open(p, O_WRONLY | O_APPEND);
	assert_true(orch_rp_open_for_writing(&rp));
	close(fd);
	assert_false(orch_rp_open_for_writing(&rp));
	free(p);
	/* its sidecar being written counts too */
	p = at("img.json");
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(orch_rp_open_for_writing(&rp));
	close(fd);
	assert_false(orch_rp_open_for_writing(&rp));
	free(p);
	orch_rp_release(&rp);

	assert_int_equal(orch_vault_inspect(&vault, "t", &rp, &err), 0);
	assert_false(orch_rp_open_for_writing(&rp));
	p = at("t/deep/f");
	fd = open(p, O_WRONLY);
	assert_true(orch_rp_open_for_writing(&rp));
	close(fd);
	assert_false(orch_rp_open_for_writing(&rp));
	free(p);
	orch_rp_release(&rp);
}

/* ---- the watcher ------------------------------------------------------- */

static void test_watch_complete_file(void **state)
{
	struct orch_vault_watch *w = watch(0);
	struct orch_rp_list keep;
	char got[256];
	long ms;

	(void)state;
	assert_true(orch_vault_watch_fd(w) >= 0);
	assert_int_equal(orch_vault_watch_timeout(w), -1); /* nothing due */
	put_bytes("a.img", 5000);
	poll_for(w, 0, got, sizeof(got), NULL);
	assert_string_equal(got, ""); /* not before the quiet period */
	assert_true(orch_vault_watch_timeout(w) >= 0);
	assert_true(orch_vault_watch_timeout(w) <= QUIET_MS);
	ms = poll_for(w, 5000, got, sizeof(got), &keep);
	assert_string_equal(got, "a.img");
	assert_true(ms < 5000);
	assert_int_equal(keep.n, 1);
	assert_int_equal(keep.items[0].size, 5000);
	assert_string_equal(keep.items[0].resource_id, "local:v:a.img");
	orch_rp_list_release(&keep);
	/* once only */
	poll_for(w, 3 * QUIET_MS, got, sizeof(got), NULL);
	assert_string_equal(got, "");
	orch_vault_watch_free(w);
	orch_vault_watch_free(NULL);
}

static void test_watch_existing_at_start(void **state)
{
	struct orch_vault_watch *w;
	char got[256];

	(void)state;
	put_bytes("old.img", 10);
	make_dir("oldtree");
	w = watch(0);
	poll_for(w, 0, got, sizeof(got), NULL);
	assert_string_equal(got, "");
	poll_for(w, 5000, got, sizeof(got), NULL);
	if (strcmp(got, "old.img") != 0 && strcmp(got, "oldtree") != 0 &&
	    strcmp(got, "old.img,oldtree") != 0 &&
	    strcmp(got, "oldtree,old.img") != 0)
		fail_msg("got \"%s\"", got);
	if (!strchr(got, ',')) {
		char more[256];

		poll_for(w, 5000, more, sizeof(more), NULL);
		assert_true(strstr("old.img,oldtree", more) != NULL);
	}
	orch_vault_watch_free(w);
}

static void test_watch_open_writer(void **state)
{
	struct orch_vault_watch *w = watch(0);
	char got[256], *p = at("busy.img");
	int fd = open(p, O_WRONLY | O_CREAT, 0644);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	/* quiet, but open for writing: not taken */
	poll_for(w, 4 * QUIET_MS, got, sizeof(got), NULL);
	assert_string_equal(got, "");
	close(fd);
	poll_for(w, 5000, got, sizeof(got), NULL);
	assert_string_equal(got, "busy.img");
	orch_vault_watch_free(w);
	free(p);
}

static void test_watch_growing_file(void **state)
{
	/* a longer quiet period: a stalled test must not look quiet */
	const unsigned quiet = 4 * QUIET_MS;
	struct orch_vault_watch *w = watch_quiet(quiet, 0);
	char got[256], *p = at("grow.img");
	uint64_t t0 = cm_now_ns();

	(void)state;
	/* appended by short-lived writers for longer than the quiet period:
	 * every change restarts it */
	while (cm_now_ns() - t0 < 3ull * quiet * 1000000) {
		int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "0123456789", 10), 10);
		close(fd);
		poll_for(w, (int)quiet / 10, got, sizeof(got), NULL);
		assert_string_equal(got, "");
	}
	poll_for(w, 5000, got, sizeof(got), NULL);
	assert_string_equal(got, "grow.img");
	orch_vault_watch_free(w);
	free(p);
}

static void test_watch_ignored_then_renamed(void **state)
{
	struct orch_vault_watch *w = watch(0);
	char got[256], *from = at("up.img.partial"), *to = at("up.img");

	(void)state;
	put_bytes("up.img.partial", 100);
	put_bytes(".tmp-upload", 100);
	put("up.img.json", "{\"tags\": {\"k\": \"v\"}}");
	poll_for(w, 3 * QUIET_MS, got, sizeof(got), NULL);
	assert_string_equal(got, "");
	assert_int_equal(rename(from, to), 0);
	poll_for(w, 5000, got, sizeof(got), NULL);
	assert_string_equal(got, "up.img");
	orch_vault_watch_free(w);
	free(from);
	free(to);
}

static void test_watch_replaced(void **state)
{
	struct orch_vault_watch *w = watch(0);
	char got[256], *p = at("r.img"), *n = at("new.partial");

	(void)state;
	put_bytes("r.img", 10);
	poll_for(w, 5000, got, sizeof(got), NULL);
	assert_string_equal(got, "r.img");
	/* deleted and written again: a new recovery point */
	assert_int_equal(unlink(p), 0);
	poll_for(w, 0, got, sizeof(got), NULL);
	put_bytes("r.img", 20);
	poll_for(w, 5000, got, sizeof(got), NULL);
	assert_string_equal(got, "r.img");
	/* another file renamed over it: new too */
	put_bytes("new.partial", 30);
	assert_int_equal(rename(n, p), 0);
	poll_for(w, 5000, got, sizeof(got), NULL);
	assert_string_equal(got, "r.img");
	/* the same file written again in place is not */
	put_bytes("r.img", 40);
	poll_for(w, 3 * QUIET_MS, got, sizeof(got), NULL);
	assert_string_equal(got, "");
	orch_vault_watch_free(w);
	free(p);
	free(n);
}

/* Read and drop every pending inotify event: as if they were lost. */
static void lose_events(struct orch_vault_watch *w)
{
	char buf[4096];

	while (read(orch_vault_watch_fd(w), buf, sizeof(buf)) > 0)
		;
}

static void test_watch_rescan(void **state)
{
	struct orch_vault_watch *w = watch(0), *r = watch(3 * QUIET_MS);
	char got[256];

	(void)state;
	put_bytes("missed.img", 10);
	lose_events(w);
	lose_events(r);
	/* events only: never seen */
	poll_for(w, 6 * QUIET_MS, got, sizeof(got), NULL);
	assert_string_equal(got, "");
	/* with a periodic rescan: found, then taken when quiet */
	poll_for(r, 5000, got, sizeof(got), NULL);
	assert_string_equal(got, "missed.img");
	orch_vault_watch_free(w);
	orch_vault_watch_free(r);
}

static void test_watch_tree(void **state)
{
	struct orch_vault_watch *w = watch(0);
	struct orch_rp_list keep;
	char got[256], *p;
	int fd;

	(void)state;
	make_dir("t");
	make_dir("t/a");
	put_bytes("t/a/f", 100);
	p = at("t/a/open");
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "12345", 5), 5);
	/* a file deep inside is still being written */
	poll_for(w, 4 * QUIET_MS, got, sizeof(got), NULL);
	assert_string_equal(got, "");
	close(fd);
	poll_for(w, 5000, got, sizeof(got), &keep);
	assert_string_equal(got, "t");
	assert_string_equal(keep.items[0].type, ORCH_RP_TREE);
	assert_int_equal(keep.items[0].size, 105);
	orch_rp_list_release(&keep);
	orch_vault_watch_free(w);
	free(p);
}

static void test_watch_errors(void **state)
{
	char nname[] = "n", npath[] = "/nonexistent";
	struct orch_vault_config none = { .name = nname, .path = npath };
	struct orch_rp_list ready = { 0 };
	struct orch_vault_watch *w;
	struct cm_err err;
	char *sub = at("sub");

	(void)state;
	cm_err_clear(&err);
	assert_null(orch_vault_watch_new(&none, NULL, &err));
	assert_string_equal(err.msg, "vault \"n\": /nonexistent: No such "
			    "file or directory");

	/* the vault directory goes away while watched */
	assert_int_equal(mkdir(sub, 0755), 0);
	none.path = sub;
	w = orch_vault_watch_new(&none, NULL, &err);
	assert_non_null(w);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(orch_vault_watch_poll(w, 2000, &ready, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, sub));
	assert_int_equal(ready.n, 0);
	orch_vault_watch_free(w);
	free(sub);
}

static void test_writers_collect(void **state)
{
	struct inode_set s = { 0 };
	struct stat st;
	char *p = at("w");
	int fd = open(p, O_WRONLY | O_CREAT, 0644);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	writers_collect(&s);
	assert_true(set_has(&s, st.st_dev, st.st_ino));
	set_release(&s);
	close(fd);
	writers_collect(&s);
	assert_false(set_has(&s, st.st_dev, st.st_ino));
	set_release(&s);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_scan),
		T(test_scan_errors),
		T(test_sidecar_errors),
		T(test_sidecar_not_regular),
		T(test_identity_open),
		T(test_open_for_writing),
		T(test_writers_collect),
		T(test_watch_complete_file),
		T(test_watch_existing_at_start),
		T(test_watch_open_writer),
		T(test_watch_growing_file),
		T(test_watch_ignored_then_renamed),
		T(test_watch_replaced),
		T(test_watch_rescan),
		T(test_watch_tree),
		T(test_watch_errors),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
