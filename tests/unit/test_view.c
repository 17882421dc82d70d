/*
 * test_view.c - the view's core without FUSE: control-file parsing, the
 * status and metrics texts, info.json, tree lookups and listings over a
 * real vault directory, the kernel invalidations a new recovery point
 * causes, the archive's key names, and the write-order rules of the
 * archive view over a local store (the same code paths as S3 above the
 * store interface). view_text.c is included (UNITTEST) to reach quote().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archiver/run.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "orchestrator/config.h"
#include "orchestrator/orch.h"
#include "orchestrator/provider.h"

#include "fs/view_text.c"

/* ---- fixtures ---------------------------------------------------------- */

static char top[64]; /* vault/, store/, state/ below */
static struct orch_config cfg;

/* what the view asked the kernel to forget */
static pthread_mutex_t inval_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t inval_inodes[64];
static size_t ninval_inodes;
static char inval_names[64][64];
static size_t ninval_names;

static void on_inval_inode(void *ctx, uint64_t ino)
{
	pthread_mutex_lock(&inval_lock);
	if (ninval_inodes < 64)
		inval_inodes[ninval_inodes++] = ino;
	pthread_mutex_unlock(&inval_lock);
}

static void on_inval_entry(void *ctx, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&inval_lock);
	if (ninval_names < 64)
		snprintf(inval_names[ninval_names++], 64, "%s", name);
	pthread_mutex_unlock(&inval_lock);
}

static const struct view_notify_ops notify = {on_inval_inode, on_inval_entry};

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(p);
}

static char *at(const char *rel)
{
	return cm_xasprintf("%s/%s", top, rel);
}

static void put(const char *rel, const char *text)
{
	char *p = at(rel);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static void mkdir_at(const char *rel)
{
	char *p = at(rel);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static bool exists(const char *rel)
{
	char *p = at(rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;

	free(p);
	return r;
}

static size_t count_entries(const char *rel)
{
	char *p = at(rel);
	DIR *d = opendir(p);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' ||
		    (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
			n++;
	closedir(d);
	free(p);
	return n;
}

static int setup(void **state)
{
	struct cm_err err;
	char *text;
	int rc;

	snprintf(top, sizeof(top), "/tmp/vf-view-XXXXXX");
	if (!mkdtemp(top))
		return -1;
	mkdir_at("vault");
	mkdir_at("store");
	mkdir_at("state");
	mkdir_at("vault/tree1");
	put("vault/tree1/a.txt", "hello\n");
	put("vault/disk.img", "not really a disk\n");
	put("vault/disk.img.json", "{ \"resourceId\": \"arn:aws:ec2:eu-west-1:"
				   "123456789012:snapshot/snap-1\" }\n");
	put("vault/.hidden", "x");
	put("vault/late.partial", "x");
	text = cm_xasprintf("{ \"vaults\": [ { \"name\": \"v1\", \"type\": "
			    "\"local\", \"path\": \"%s/vault\" } ], "
			    "\"destination\": \"%s/store\", \"stateDir\": "
			    "\"%s/state\", \"autoStart\": false }",
			    top, top, top);
	cm_err_clear(&err);
	rc = orch_config_parse(text, strlen(text), NULL, &cfg, &err);
	free(text);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	ninval_inodes = ninval_names = 0;
	return rc;
}

static int teardown(void **state)
{
	orch_config_release(&cfg);
	return nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct view *new_view_paged(bool overwrite, bool del,
				   unsigned max_keys)
{
	struct view_opts o = {0};
	struct cm_err err;
	struct view *v;

	o.cfg = &cfg;
	o.list_max_keys = max_keys;
	o.allow_overwrite = overwrite;
	o.allow_delete = del;
	o.uid = getuid();
	o.gid = getgid();
	o.rescan_ms = 200;
	o.notify = &notify;
	cm_err_clear(&err);
	v = view_new(&o, &err);
	if (!v)
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(v);
	return v;
}

static struct view *new_view(bool overwrite, bool del)
{
	return new_view_paged(overwrite, del, 0);
}

/* the inode of a path from the root, each step a lookup */
static int walk(struct view *v, const char *path, struct view_attr *out)
{
	char *copy = cm_xstrdup(path), *save = NULL;
	uint64_t ino = VIEW_ROOT_INO;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->ino = ino;
	for (char *tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		rc = view_lookup(v, ino, tok, out, NULL);
		if (rc)
			break;
		ino = out->ino;
	}
	free(copy);
	return rc;
}

/* ---- control files ----------------------------------------------------- */

static void test_control_words(void **state)
{
	struct cm_err err;

	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "start", 5, NULL),
			 0);
	assert_int_equal(
	    view_control_parse(VIEW_CTL_EXPORT, "start\n", 6, NULL), 0);
	assert_int_equal(
	    view_control_parse(VIEW_CTL_EXPORT, "  start \r\n", 10, NULL), 0);
	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "", 0, NULL), 0);
	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "\n\n", 2, NULL),
			 0);
	assert_int_equal(
	    view_control_parse(VIEW_CTL_CANCEL, "cancel\n", 7, NULL), 0);

	cm_err_clear(&err);
	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "junk\n", 5, &err),
			 -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_non_null(strstr(err.msg, "\"junk\\x0a\""));
	assert_non_null(strstr(err.msg, "\"start\""));
	/* each file has its own word */
	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "cancel", 6, NULL),
			 -EINVAL);
	assert_int_equal(view_control_parse(VIEW_CTL_CANCEL, "start", 5, NULL),
			 -EINVAL);
	/* no prefixes, no extras, no NULs */
	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "star", 4, NULL),
			 -EINVAL);
	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "startx", 6, NULL),
			 -EINVAL);
	assert_int_equal(
	    view_control_parse(VIEW_CTL_EXPORT, "start\0", 6, NULL), -EINVAL);
	assert_int_equal(
	    view_control_parse(VIEW_CTL_EXPORT, "start start", 11, NULL),
	    -EINVAL);
	assert_int_equal(view_control_parse(VIEW_CTL_EXPORT, "START", 5, NULL),
			 -EINVAL);
}

static void test_control_quote(void **state)
{
	char big[200], q[256];
	struct cm_err err;

	memset(big, 'a', sizeof(big));
	quote(big, sizeof(big), q, sizeof(q));
	assert_int_equal(strlen(q), 43); /* 40 bytes and "..." */
	quote("a\"b\\c\x01", 6, q, sizeof(q));
	assert_string_equal(q, "a\\x22b\\x5cc\\x01");
	cm_err_clear(&err);
	assert_int_equal(
	    view_control_parse(VIEW_CTL_CANCEL, big, sizeof(big), &err),
	    -EINVAL);
	assert_true(strlen(err.msg) < 200);
}

/* ---- texts ------------------------------------------------------------- */

static void fake_job(struct orch_job_info *ji, const char *name,
		     enum orch_job_state s, time_t t0, long secs)
{
	memset(ji, 0, sizeof(*ji));
	snprintf(ji->id, sizeof(ji->id), "20261126T204516.123Z-0000000%c",
		 name[0]);
	ji->vault = cm_xstrdup("v1");
	ji->rp_name = cm_xstrdup(name);
	ji->rp_path = cm_xasprintf("/vault/%s", name);
	ji->resource_id = cm_xasprintf("local:v1:%s", name);
	ji->state = s;
	ji->times[ORCH_JOB_QUEUED] = t0;
	ji->times[s] = t0 + secs;
	ji->rp_size = 1000;
	ji->bytes_total = 1000;
	if (s == ORCH_JOB_SUCCEEDED) {
		ji->bytes_read = 1000;
		ji->result_size = 400;
		ji->result_url = cm_xstrdup("s3://b/k/backup.tar.gz");
		ji->verified = true;
	} else if (s == ORCH_JOB_ARCHIVING) {
		ji->running = true;
		ji->bytes_read = 250;
		ji->rate = 50;
	} else if (s == ORCH_JOB_FAILED) {
		ji->error = cm_xstrdup("NoSuchBucket: gone");
	}
}

static void fake_snapshot(struct orch_snapshot *s, time_t t0)
{
	memset(s, 0, sizeof(*s));
	s->jobs = cm_xcalloc(4, sizeof(*s->jobs));
	fake_job(&s->jobs[0], "a", ORCH_JOB_SUCCEEDED, t0, 5);
	fake_job(&s->jobs[1], "b", ORCH_JOB_SUCCEEDED, t0, 100);
	fake_job(&s->jobs[2], "c", ORCH_JOB_ARCHIVING, t0, 1);
	fake_job(&s->jobs[3], "d", ORCH_JOB_FAILED, t0, 2);
	s->n = 4;
	s->by_state[ORCH_JOB_SUCCEEDED] = 2;
	s->by_state[ORCH_JOB_ARCHIVING] = 1;
	s->by_state[ORCH_JOB_FAILED] = 1;
	s->running = 1;
	s->bytes_read = 250;
	s->rate = 50;
}

static void test_status_text(void **state)
{
	struct orch_snapshot snap;
	struct view_stats st = {0};
	time_t t0 = 1795000000;
	char *text;

	fake_snapshot(&snap, t0);
	st.started = t0;
	st.bytes_written = 2048;
	cfg.auto_start = true;
	text = view_status_text(&cfg, &snap, &st, t0 + 60);
	assert_non_null(strstr(text, "\njobs: 4\n"));
	assert_non_null(strstr(text, "\nsucceeded: 2\n"));
	assert_non_null(strstr(text, "\narchiving: 1\n"));
	assert_non_null(strstr(text, "\nfailed: 1\n"));
	assert_non_null(strstr(text, "\nqueued: 0\n"));
	assert_non_null(strstr(text, "\nrunning: 1\n"));
	assert_non_null(strstr(text, "\narchived: 800 bytes (800 B)\n"));
	assert_non_null(strstr(text, "\nrate: 50 bytes/s"));
	assert_non_null(strstr(text, "\nuptime: 60 s\n"));
	assert_non_null(strstr(text, "\narchive view written: 2048 bytes"));
	assert_non_null(strstr(text, "\nauto start: yes\n"));
	/* every line is "key: value" */
	for (char *l = text; *l;) {
		char *nl = strchr(l, '\n'), *colon = strstr(l, ": ");

		assert_non_null(nl);
		assert_non_null(colon);
		assert_true(colon < nl);
		l = nl + 1;
	}
	free(text);
	orch_snapshot_release(&snap);
}

static void test_metrics_text(void **state)
{
	struct orch_snapshot snap;
	struct view_stats st = {0};
	time_t t0 = 1795000000;
	char *text;

	fake_snapshot(&snap, t0);
	st.started = t0;
	st.control_errors = 3;
	text = view_metrics_text(NULL, &snap, &st, t0 + 10);
	assert_non_null(strstr(text, "# TYPE vaultfs_jobs gauge\n"));
	assert_non_null(
	    strstr(text, "\nvaultfs_jobs{state=\"succeeded\"} 2\n"));
	assert_non_null(strstr(text, "\nvaultfs_jobs{state=\"queued\"} 0\n"));
	assert_non_null(strstr(text, "\nvaultfs_archived_bytes 800\n"));
	assert_non_null(strstr(text, "\nvaultfs_job_errors 1\n"));
	/* durations 5 s and 100 s: cumulative buckets */
	assert_non_null(strstr(text, "duration_seconds_bucket{le=\"1\"} 0\n"));
	assert_non_null(strstr(text, "duration_seconds_bucket{le=\"10\"} 1\n"));
	assert_non_null(
	    strstr(text, "duration_seconds_bucket{le=\"300\"} 2\n"));
	assert_non_null(
	    strstr(text, "duration_seconds_bucket{le=\"+Inf\"} 2\n"));
	assert_non_null(
	    strstr(text, "\nvaultfs_job_duration_seconds_sum 105\n"));
	assert_non_null(
	    strstr(text, "\nvaultfs_job_duration_seconds_count 2\n"));
	assert_non_null(
	    strstr(text, "\nvaultfs_view_control_errors_total 3\n"));
	/* every sample line: NAME[{labels}] VALUE */
	for (char *l = text; *l;) {
		char *nl = strchr(l, '\n');

		assert_non_null(nl);
		if (*l != '#')
			assert_true(!strncmp(l, "vaultfs_", 8) &&
				    memchr(l, ' ', (size_t)(nl - l)));
		l = nl + 1;
	}
	free(text);
	/* the last success per configured vault, a label escaped; none
	 * for a vault that never succeeded */
	{
		struct orch_config mc;

		orch_config_default(&mc);
		free(mc.vaults[0].name);
		mc.vaults[0].name = strdup("a\"b");
		snap.vault_last_success = calloc(1, sizeof(time_t));
		text = view_metrics_text(&mc, &snap, &st, t0 + 10);
		assert_null(strstr(text, "\nvaultfs_last_success_timestamp_"
					 "seconds{"));
		free(text);
		snap.vault_last_success[0] = t0 + 5;
		text = view_metrics_text(&mc, &snap, &st, t0 + 10);
		assert_non_null(strstr(text, "\nvaultfs_last_success_timestamp_"
					     "seconds{vault=\"a\\\"b\"} "
					     "1795000005\n"));
		free(text);
		orch_config_release(&mc);
	}
	orch_snapshot_release(&snap);
}

static void test_rp_status_text(void **state)
{
	struct orch_job_info ji;
	char *text;

	text = view_rp_status_text("v1", "rp", NULL, false);
	assert_non_null(strstr(text, "state: new\n"));
	assert_non_null(strstr(text, "touch export"));
	assert_non_null(strstr(text, "autoStart is false"));
	free(text);
	text = view_rp_status_text("v1", "rp", NULL, true);
	assert_non_null(strstr(text, "(autoStart)"));
	free(text);

	fake_job(&ji, "c", ORCH_JOB_ARCHIVING, 1795000000, 1);
	text = view_rp_status_text("v1", "c", &ji, false);
	assert_non_null(strstr(text, "state: archiving\n"));
	assert_non_null(strstr(text, "progress: 250 B of 1000 B (25%)\n"));
	assert_non_null(strstr(text, "eta: 15 s\n"));
	free(text);
	orch_job_info_release(&ji);
}

static void test_info_json(void **state)
{
	struct orch_recovery_point rp;
	struct orch_job_info ji;
	struct cm_json *j = NULL, *tags, *desc = cm_json_new_object();
	struct orch_tag tag = {(char *)"k", (char *)"v"};
	struct orch_vault_config vault = {.name = (char *)"v1",
					  .type = (char *)ORCH_VAULT_LOCAL,
					  .path = (char *)"/vault"};
	struct orch_config one = {.vaults = &vault, .nvaults = 1};
	struct orch_provider *prov;
	char *text;

	memset(&rp, 0, sizeof(rp));
	rp.type = (char *)ORCH_RP_IMAGE;
	rp.resource_id = (char *)"arn:aws:ec2:eu-west-1:1:snapshot/snap-1";
	rp.created = 1795000000;
	rp.size = 4096;
	rp.path = (char *)"/vault/disk.img";
	rp.tags = &tag;
	rp.ntags = 1;
	rp.vault = (char *)"v1";
	rp.name = (char *)"disk.img";
	fake_job(&ji, "d", ORCH_JOB_SUCCEEDED, 1795000000, 3);
	/* what the view shows is the provider's description, and the job */
	assert_int_equal(orch_provider_new(&one, &vault, &prov, NULL), 0);
	assert_int_equal(prov->ops->describe(prov, &rp, desc, NULL), 0);
	orch_provider_free(prov);
	text = view_rp_info_json("v1", "disk.img", desc, &ji);
	cm_json_free(desc);
	assert_int_equal(cm_json_parse(text, strlen(text), &j, NULL), 0);
	assert_string_equal(cm_json_get_str(j, "type"), "image");
	assert_string_equal(cm_json_get_str(j, "resourceId"), rp.resource_id);
	assert_string_equal(cm_json_get_str(j, "created"),
			    "2026-11-18T11:06:40Z");
	assert_int_equal((int)cm_json_num(cm_json_get(j, "size")), 4096);
	tags = cm_json_get(j, "tags");
	assert_string_equal(cm_json_get_str(tags, "k"), "v");
	assert_string_equal(cm_json_get_str(cm_json_get(j, "job"), "state"),
			    "succeeded");
	assert_string_equal(cm_json_get_str(cm_json_get(j, "job"), "archive"),
			    "s3://b/k/backup.tar.gz");
	cm_json_free(j);
	free(text);

	/* gone from the vault: what the job remembers */
	text = view_rp_info_json("v1", "d", NULL, &ji);
	assert_int_equal(cm_json_parse(text, strlen(text), &j, NULL), 0);
	assert_false(cm_json_bool(cm_json_get(j, "present")));
	assert_string_equal(cm_json_get_str(j, "resourceId"), "local:v1:d");
	cm_json_free(j);
	free(text);
	orch_job_info_release(&ji);
}

/* ---- the tree ---------------------------------------------------------- */

static void test_tree_lookups(void **state)
{
	struct view *v = new_view(false, false);
	struct view_attr a, rp;
	uint64_t vault;

	assert_int_equal(walk(v, "status", &a), 0);
	assert_true(S_ISREG(a.mode));
	assert_int_equal(walk(v, "metrics", &a), 0);
	assert_int_equal(walk(v, "archive/store", &a), 0);
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(walk(v, "nothing", &a), -ENOENT);
	assert_true(a.entry_timeout > 0); /* a negative entry */
	assert_int_equal(walk(v, "vaults/v1", &a), 0);
	vault = a.ino;
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(walk(v, "vaults/v2", &a), -ENOENT);

	/* recovery points: images and trees; not hidden, sidecar or
	 * partial names */
	assert_int_equal(walk(v, "vaults/v1/disk.img", &rp), 0);
	assert_true(S_ISDIR(rp.mode));
	assert_int_equal(walk(v, "vaults/v1/tree1", &a), 0);
	assert_int_equal(walk(v, "vaults/v1/.hidden", &a), -ENOENT);
	assert_int_equal(walk(v, "vaults/v1/disk.img.json", &a), -ENOENT);
	assert_int_equal(walk(v, "vaults/v1/late.partial", &a), -ENOENT);
	/* the same name, the same node */
	assert_int_equal(view_lookup(v, vault, "disk.img", &a, NULL), 0);
	assert_int_equal(a.ino, rp.ino);

	assert_int_equal(walk(v, "vaults/v1/disk.img/info.json", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0444);
	assert_int_equal(walk(v, "vaults/v1/disk.img/status", &a), 0);
	assert_int_equal(walk(v, "vaults/v1/disk.img/log", &a), 0);
	assert_int_equal(walk(v, "vaults/v1/disk.img/export", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0644);
	assert_int_equal(walk(v, "vaults/v1/disk.img/cancel", &a), 0);
	assert_int_equal(walk(v, "vaults/v1/disk.img/other", &a), -ENOENT);
	assert_int_equal(walk(v, "status/x", &a), -ENOTDIR);

	/* forget drops the kernel's references: the node goes (tree1 has
	 * no child looked up); a new lookup makes a new one */
	assert_int_equal(walk(v, "vaults/v1/tree1", &rp), 0);
	view_forget(v, rp.ino, 2);
	assert_int_equal(view_getattr(v, rp.ino, &a, NULL), -ENOENT);
	assert_int_equal(walk(v, "vaults/v1/tree1", &a), 0);
	assert_true(a.ino != rp.ino);
	/* a node with children looked up stays */
	assert_int_equal(walk(v, "vaults/v1/disk.img", &rp), 0);
	view_forget(v, rp.ino, 100);
	assert_int_equal(view_getattr(v, rp.ino, &a, NULL), 0);
	view_free(v);
}

static void test_tree_readdir(void **state)
{
	struct view *v = new_view(false, false);
	const struct view_dirent *de;
	struct view_dir *d;
	struct view_attr a;
	bool cacheable;
	const char *want[] = {".", "..", "disk.img", "tree1"};
	size_t i;

	assert_int_equal(view_opendir(v, VIEW_ROOT_INO, &d, &cacheable, NULL),
			 0);
	assert_true(cacheable);
	assert_string_equal(view_dir_entry(d, 2)->name, "status");
	assert_string_equal(view_dir_entry(d, 4)->name, "README");
	assert_string_equal(view_dir_entry(d, 6)->name, "archive");
	assert_null(view_dir_entry(d, 7));
	view_releasedir(v, d);

	assert_int_equal(walk(v, "vaults/v1", &a), 0);
	assert_int_equal(view_opendir(v, a.ino, &d, &cacheable, NULL), 0);
	for (i = 0; (de = view_dir_entry(d, i)); i++) {
		assert_true(i < 4);
		assert_string_equal(de->name, want[i]);
	}
	assert_int_equal(i, 4);
	/* readdirplus: one reference, the attributes of a lookup */
	assert_int_equal(view_dir_lookup(v, d, 3, &a), 0);
	assert_true(a.ino != 0);
	assert_true(S_ISDIR(a.mode));
	view_releasedir(v, d);

	assert_int_equal(walk(v, "vaults/v1/tree1", &a), 0);
	assert_int_equal(view_opendir(v, a.ino, &d, &cacheable, NULL), 0);
	assert_string_equal(view_dir_entry(d, 2)->name, "info.json");
	assert_string_equal(view_dir_entry(d, 6)->name, "cancel");
	view_releasedir(v, d);
	assert_int_equal(walk(v, "status", &a), 0);
	assert_int_equal(view_opendir(v, a.ino, &d, &cacheable, NULL),
			 -ENOTDIR);
	view_free(v);
}

static void test_tree_new_rp_appears(void **state)
{
	struct view *v = new_view(false, false);
	struct view_attr a, vault;
	bool seen_dir = false, seen_name = false;

	assert_int_equal(walk(v, "vaults/v1", &vault), 0);
	assert_int_equal(walk(v, "vaults/v1/new-rp", &a), -ENOENT);
	mkdir_at("vault/new-rp");
	/* the refresher sees it (inotify) and tells the kernel */
	for (int i = 0; i < 300 && !(seen_dir && seen_name); i++) {
		cm_sleep_ms(10);
		pthread_mutex_lock(&inval_lock);
		for (size_t k = 0; k < ninval_inodes; k++)
			seen_dir |= inval_inodes[k] == vault.ino;
		for (size_t k = 0; k < ninval_names; k++)
			seen_name |= !strcmp(inval_names[k], "new-rp");
		pthread_mutex_unlock(&inval_lock);
	}
	assert_true(seen_dir);
	assert_true(seen_name);
	assert_int_equal(walk(v, "vaults/v1/new-rp", &a), 0);

	/* and one that goes: its node is unhashed, getattr says ENOENT */
	{
		char *p = at("vault/new-rp");

		assert_int_equal(rmdir(p), 0);
		free(p);
	}
	for (int i = 0; i < 300; i++) {
		struct view_attr b;

		if (view_getattr(v, a.ino, &b, NULL) == -ENOENT)
			break;
		cm_sleep_ms(10);
	}
	assert_int_equal(view_getattr(v, a.ino, &vault, NULL), -ENOENT);
	view_free(v);
}

static void test_rp_files(void **state)
{
	struct view *v = new_view(false, false);
	struct view_open_out oo;
	struct view_file *f;
	struct view_attr a;
	struct cm_err err;
	char buf[4096];
	size_t got;

	assert_int_equal(walk(v, "vaults/v1/disk.img/status", &a), 0);
	assert_int_equal(view_open(v, a.ino, O_RDONLY, &f, &oo, NULL), 0);
	assert_true(oo.direct_io);
	assert_int_equal(view_read(v, f, 0, buf, sizeof(buf) - 1, &got, NULL),
			 0);
	buf[got] = '\0';
	assert_non_null(strstr(buf, "state: new\n"));
	view_release(v, f);
	assert_int_equal(view_getattr(v, a.ino, &a, NULL), 0);
	assert_int_equal(a.size, got);
	/* read-only files refuse writers */
	assert_int_equal(view_open(v, a.ino, O_WRONLY, &f, &oo, NULL), -EACCES);

	assert_int_equal(walk(v, "vaults/v1/disk.img/info.json", &a), 0);
	assert_int_equal(view_open(v, a.ino, O_RDONLY, &f, &oo, NULL), 0);
	assert_int_equal(view_read(v, f, 0, buf, sizeof(buf) - 1, &got, NULL),
			 0);
	buf[got] = '\0';
	assert_non_null(strstr(buf, "snap-1"));
	/* reads past the end: nothing */
	assert_int_equal(view_read(v, f, got + 10, buf, 10, &got, NULL), 0);
	assert_int_equal(got, 0);
	view_release(v, f);

	/* a bad command fails the write, with the reason; without an
	 * engine, a good one cannot run */
	assert_int_equal(walk(v, "vaults/v1/disk.img/export", &a), 0);
	assert_int_equal(view_open(v, a.ino, O_WRONLY | O_TRUNC, &f, &oo, NULL),
			 0);
	cm_err_clear(&err);
	assert_int_equal(view_write(v, f, 0, "junk", 4, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "junk"));
	assert_int_equal(view_write(v, f, 0, "start\n", 6, NULL), -ENOTCONN);
	view_release(v, f);
	assert_int_equal(
	    view_setattr(v, a.ino, NULL, VIEW_SET_TIMES, 0, &a, NULL),
	    -ENOTCONN);
	/* the reason is in the recovery point's log too, and in no other */
	assert_int_equal(walk(v, "vaults/v1/disk.img/log", &a), 0);
	assert_int_equal(view_open(v, a.ino, O_RDONLY, &f, &oo, NULL), 0);
	assert_int_equal(view_read(v, f, 0, buf, sizeof(buf) - 1, &got, NULL),
			 0);
	buf[got] = '\0';
	assert_non_null(strstr(buf, " warning: view: export: unknown command "
				    "\"junk\""));
	view_release(v, f);
	assert_int_equal(walk(v, "vaults/v1/tree1/log", &a), 0);
	assert_int_equal(view_open(v, a.ino, O_RDONLY, &f, &oo, NULL), 0);
	assert_int_equal(view_read(v, f, 0, buf, sizeof(buf) - 1, &got, NULL),
			 0);
	assert_int_equal(got, 0);
	view_release(v, f);
	view_free(v);
}

/* ---- the archive ------------------------------------------------------- */

static void test_archive_names(void **state)
{
	char *key, buf[64];

	assert_int_equal(view_arc_child_key("a/b/", "c", false, &key), 0);
	assert_string_equal(key, "a/b/c");
	free(key);
	assert_int_equal(view_arc_child_key("", "c", true, &key), 0);
	assert_string_equal(key, "c/");
	free(key);
	assert_int_equal(view_arc_child_key("a/", "", false, &key), -EINVAL);
	assert_int_equal(view_arc_child_key("a/", ".", false, &key), -EINVAL);
	assert_int_equal(view_arc_child_key("a/", "..", true, &key), -EINVAL);
	assert_int_equal(view_arc_child_key("a/", "x/y", false, &key), -EINVAL);
	{
		char dir[1100];

		memset(dir, 'd', 1020);
		strcpy(dir + 1020, "/");
		assert_int_equal(view_arc_child_key(dir, "abc", false, &key),
				 0);
		free(key);
		assert_int_equal(view_arc_child_key(dir, "abcd", false, &key),
				 -ENAMETOOLONG);
		assert_int_equal(view_arc_child_key(dir, "abc", true, &key),
				 -ENAMETOOLONG);
	}

	assert_string_equal(view_arc_child_name("a/", "a/b", buf, 64), "b");
	assert_string_equal(view_arc_child_name("a/", "a/b/", buf, 64), "b");
	assert_string_equal(view_arc_child_name("", "top", buf, 64), "top");
	assert_null(view_arc_child_name("a/", "a/", buf, 64)); /* marker */
	assert_null(view_arc_child_name("a/", "a//x", buf, 64));
	assert_null(view_arc_child_name("a/", "b/c", buf, 64));
	assert_null(view_arc_child_name("a/", "a/./", buf, 64));
	assert_null(view_arc_child_name("a/", "a/verylongname", buf, 4));
}

/* create archive/store/NAME and return its handle */
static struct view_file *create(struct view *v, const char *name, int rc_want,
				struct view_attr *a)
{
	struct view_attr store;
	struct view_open_out oo;
	struct view_file *f = NULL;

	assert_int_equal(walk(v, "archive/store", &store), 0);
	assert_int_equal(view_create(v, store.ino, name, S_IFREG | 0644,
				     O_WRONLY | O_CREAT | O_TRUNC, &f, a, &oo,
				     NULL),
			 rc_want);
	if (!rc_want)
		assert_true(oo.direct_io);
	return f;
}

static void test_archive_write_in_order(void **state)
{
	struct view *v = new_view(false, false);
	struct view_attr a, b;
	struct view_file *f;
	char buf[64];
	size_t got;

	f = create(v, "obj", 0, &a);
	/* a copy of the descriptor closed before any write: not the end */
	assert_int_equal(view_flush(v, f, NULL), 0);
	assert_int_equal(view_write(v, f, 0, "hello ", 6, NULL), 0);
	assert_int_equal(view_write(v, f, 6, "world", 5, NULL), 0);
	/* a local store's writes may wait on the disk: never taken at once */
	assert_int_equal(view_write_nowait(v, f, 11, "!", 1), -EAGAIN);
	/* being written: a temporary file and its crash record */
	assert_false(exists("store/obj"));
	assert_int_equal(count_entries("state/view/uploads"), 1);
	assert_int_equal(view_getattr(v, a.ino, &b, NULL), 0);
	assert_int_equal(b.size, 11);
	assert_int_equal(view_flush(v, f, NULL), 0);
	/* complete: the object is there, the record is gone */
	assert_true(exists("store/obj"));
	assert_int_equal(count_entries("state/view/uploads"), 0);
	assert_int_equal(count_entries("store"), 1);
	/* nothing more can go in */
	assert_int_equal(view_write(v, f, 11, "!", 1, NULL), -EINVAL);
	view_release(v, f);

	/* and it reads back */
	assert_int_equal(walk(v, "archive/store/obj", &a), 0);
	assert_int_equal(a.size, 11);
	{
		struct view_open_out oo;

		assert_int_equal(view_open(v, a.ino, O_RDONLY, &f, &oo, NULL),
				 0);
	}
	assert_int_equal(view_read(v, f, 6, buf, sizeof(buf), &got, NULL), 0);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "world", 5);
	view_release(v, f);
	view_free(v);
}

static void test_archive_out_of_order(void **state)
{
	struct view *v = new_view(false, false);
	struct view_attr a;
	struct view_file *f;
	struct cm_err err;

	f = create(v, "bad", 0, &a);
	assert_int_equal(view_write(v, f, 0, "abc", 3, NULL), 0);
	cm_err_clear(&err);
	/* a hole, then a rewrite: both out of order */
	assert_int_equal(view_write(v, f, 1 << 30, "x", 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "in order"));
	/* poisoned: the upload is gone at once, nothing appears */
	assert_int_equal(count_entries("store"), 0);
	assert_int_equal(count_entries("state/view/uploads"), 0);
	assert_int_equal(view_write(v, f, 3, "d", 1, NULL), -EINVAL);
	assert_int_equal(view_flush(v, f, NULL), -EINVAL);
	view_release(v, f);
	assert_false(exists("store/bad"));
	assert_int_equal(walk(v, "archive/store/bad", &a), -ENOENT);

	f = create(v, "rewrite", 0, &a);
	assert_int_equal(view_write(v, f, 0, "abc", 3, NULL), 0);
	assert_int_equal(view_write(v, f, 0, "abc", 3, NULL), -EINVAL);
	view_release(v, f);
	assert_false(exists("store/rewrite"));
	view_free(v);
}

static void test_archive_overwrite_delete(void **state)
{
	struct view *v = new_view(false, false);
	struct view_attr a, store;
	struct view_open_out oo;
	struct view_file *f;

	put("store/old", "old data\n");
	create(v, "old", -EEXIST, &a);
	assert_int_equal(walk(v, "archive/store/old", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0444);
	assert_int_equal(view_open(v, a.ino, O_WRONLY | O_TRUNC, &f, &oo, NULL),
			 -EEXIST);
	assert_int_equal(walk(v, "archive/store", &store), 0);
	assert_int_equal(view_unlink(v, store.ino, "old", NULL), -EPERM);
	assert_true(exists("store/old"));
	/* truncation and extension are refused; the same size is fine */
	assert_int_equal(
	    view_setattr(v, a.ino, NULL, VIEW_SET_SIZE, 0, &a, NULL), -EINVAL);
	assert_int_equal(
	    view_setattr(v, a.ino, NULL, VIEW_SET_SIZE, 9, &a, NULL), 0);
	view_free(v);

	v = new_view(true, true);
	f = create(v, "old", 0, &a);
	assert_int_equal(view_write(v, f, 0, "new\n", 4, NULL), 0);
	assert_int_equal(view_fsync(v, f, NULL), 0);
	view_release(v, f);
	assert_int_equal(walk(v, "archive/store/old", &a), 0);
	assert_int_equal(a.size, 4);
	assert_int_equal(walk(v, "archive/store", &store), 0);
	assert_int_equal(view_unlink(v, store.ino, "old", NULL), 0);
	assert_false(exists("store/old"));
	assert_int_equal(walk(v, "archive/store/old", &a), -ENOENT);
	view_free(v);
}

#define PAGED_FILES 300
#define PAGED_MAX   16

/* Read d from offset *off as readdir does: seek, then the entries the
 * page holds (at most the page, "." "..": never the whole directory), up
 * to offset stop. Counts each name of "f%03d"/"g%03d" into seen. */
static void paged_read(struct view *v, struct view_dir *d, size_t *off,
		       size_t stop, unsigned *seen_f, unsigned *seen_g,
		       unsigned *dots)
{
	while (*off < stop) {
		const struct view_dirent *de;
		size_t got = 0;

		assert_int_equal(view_dir_seek(v, d, *off, NULL), 0);
		while (*off < stop && (de = view_dir_entry(d, *off))) {
			unsigned i;

			if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
				(*dots)++;
			else if (sscanf(de->name, "f%u", &i) == 1 &&
				 i < PAGED_FILES)
				seen_f[i]++;
			else if (sscanf(de->name, "g%u", &i) == 1 &&
				 i < PAGED_FILES)
				seen_g[i]++;
			else
				fail_msg("unexpected entry %s", de->name);
			(*off)++;
			got++;
		}
		assert_true(got <= PAGED_MAX + 2);
		if (!got)
			break; /* the end */
	}
}

/* A directory larger than a page: every name once, bounded pages,
 * seekdir back, names added and removed between pages, rewinddir. */
static void test_archive_paged(void **state)
{
	struct view *v = new_view_paged(false, false, PAGED_MAX);
	unsigned seen_f[PAGED_FILES] = {0}, seen_g[PAGED_FILES] = {0};
	unsigned dots = 0;
	struct view_attr a;
	struct view_dir *d;
	char name[PATH_MAX], at50[256], at120[256];
	size_t off = 0, removed = 0;
	bool cacheable;

	mkdir_at("store/big");
	for (int i = 0; i < PAGED_FILES; i++) {
		snprintf(name, sizeof(name), "store/big/f%03d", i);
		put(name, "x");
	}
	assert_int_equal(walk(v, "archive/store/big", &a), 0);
	assert_int_equal(view_opendir(v, a.ino, &d, &cacheable, NULL), 0);
	assert_false(cacheable);
	paged_read(v, d, &off, 130, seen_f, seen_g, &dots);
	assert_int_equal(off, 130);

	/* seekdir back to a telldir, then forward again: the same names */
	assert_int_equal(view_dir_seek(v, d, 120, NULL), 0);
	snprintf(at120, sizeof(at120), "%s", view_dir_entry(d, 120)->name);
	assert_int_equal(view_dir_seek(v, d, 50, NULL), 0);
	assert_non_null(view_dir_entry(d, 50));
	snprintf(at50, sizeof(at50), "%s", view_dir_entry(d, 50)->name);
	assert_null(view_dir_entry(d, 50 + PAGED_MAX + 2));
	assert_int_equal(view_dir_seek(v, d, 120, NULL), 0);
	assert_string_equal(view_dir_entry(d, 120)->name, at120);
	assert_int_equal(view_dir_seek(v, d, 50, NULL), 0);
	assert_string_equal(view_dir_entry(d, 50)->name, at50);

	/* between pages: names already read go, new ones come */
	for (int i = 0; i < PAGED_FILES; i++) {
		if (seen_f[i] && i % 2) {
			snprintf(name, sizeof(name), "%s/store/big/f%03d", top,
				 i);
			assert_int_equal(unlink(name), 0);
			removed++;
		}
		if (i < 40) {
			snprintf(name, sizeof(name), "store/big/g%03d", i);
			put(name, "y");
		}
	}
	paged_read(v, d, &off, SIZE_MAX, seen_f, seen_g, &dots);
	assert_int_equal(dots, 2);
	for (int i = 0; i < PAGED_FILES; i++)
		if (seen_f[i] != 1)
			fail_msg("f%03d listed %u times", i, seen_f[i]);
	for (int i = 0; i < PAGED_FILES; i++)
		assert_true(seen_g[i] <= 1);

	/* rewinddir: the directory as it is now, each name once */
	memset(seen_f, 0, sizeof(seen_f));
	memset(seen_g, 0, sizeof(seen_g));
	dots = 0;
	off = 0;
	paged_read(v, d, &off, SIZE_MAX, seen_f, seen_g, &dots);
	assert_int_equal(dots, 2);
	for (int i = 0; i < PAGED_FILES; i++) {
		snprintf(name, sizeof(name), "store/big/f%03d", i);
		assert_int_equal(seen_f[i], exists(name) ? 1 : 0);
		assert_int_equal(seen_g[i], i < 40 ? 1 : 0);
	}
	assert_true(removed > 0);
	assert_int_equal(off, 2 + PAGED_FILES - removed + 40);
	view_releasedir(v, d);
	view_free(v);
}

/* In a child (the fault switch reads VAULTFS_FAULT once per process, so
 * this test runs before any other has asked it): the third
 * listing page fails, as a readdir; the next readdir asks for it again
 * and the directory goes on, each name once. An exit code says what
 * went wrong. */
static int page_retry_child(void)
{
	unsigned seen[100] = {0};
	unsigned fails = 0, i;
	struct view *v;
	struct view_attr a;
	struct view_dir *d;
	size_t off = 0;
	bool cacheable;

	setenv("VAULTFS_FAULT", "view.list@3", 1);
	v = new_view_paged(false, false, PAGED_MAX);
	if (walk(v, "archive/store/big", &a) ||
	    view_opendir(v, a.ino, &d, &cacheable, NULL))
		return 10;
	for (;;) {
		const struct view_dirent *de;

		if (view_dir_seek(v, d, off, NULL)) {
			if (++fails > 1)
				return 11;
			continue;
		}
		de = view_dir_entry(d, off);
		if (!de)
			break;
		if (sscanf(de->name, "f%u", &i) == 1 && i < 100)
			seen[i]++;
		off++;
	}
	if (fails != 1)
		return 12; /* no fault: the test proves nothing */
	for (i = 0; i < 100; i++)
		if (seen[i] != 1)
			return 13; /* the directory ended early, or repeated */
	view_releasedir(v, d);
	view_free(v);
	return 0;
}

static void test_archive_page_retry(void **state)
{
	char name[PATH_MAX];
	int status;
	pid_t pid;

	mkdir_at("store/big");
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "store/big/f%03d", i);
		put(name, "x");
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(page_retry_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_archive_dirs(void **state)
{
	struct view *v = new_view(false, false);
	struct view_attr a, d1;
	struct view_file *f;
	struct view_dir *d;
	bool cacheable;

	mkdir_at("store/x");
	put("store/x/one", "1");
	assert_int_equal(walk(v, "archive/store/x", &d1), 0);
	assert_true(S_ISDIR(d1.mode));
	assert_int_equal(view_mkdir(v, d1.ino, "new", &a, NULL), 0);
	assert_int_equal(view_mkdir(v, d1.ino, "new", &a, NULL), -EEXIST);
	/* listed though the store has nothing yet, as is a file being
	 * written */
	f = create(v, "top", 0, &a);
	assert_int_equal(view_opendir(v, d1.ino, &d, &cacheable, NULL), 0);
	assert_false(cacheable);
	assert_string_equal(view_dir_entry(d, 2)->name, "new");
	assert_string_equal(view_dir_entry(d, 3)->name, "one");
	view_releasedir(v, d);
	assert_int_equal(walk(v, "archive/store", &a), 0);
	assert_int_equal(view_opendir(v, a.ino, &d, &cacheable, NULL), 0);
	assert_string_equal(view_dir_entry(d, 2)->name, "top");
	assert_string_equal(view_dir_entry(d, 3)->name, "x");
	view_releasedir(v, d);
	/* an empty directory of the view's own: found, and removable */
	assert_int_equal(walk(v, "archive/store/x/new", &a), 0);
	assert_int_equal(view_rmdir(v, d1.ino, "new", NULL), 0);
	assert_int_equal(walk(v, "archive/store/x/new", &a), -ENOENT);
	assert_int_equal(view_rmdir(v, d1.ino, "one", NULL), -ENOTDIR);
	view_release(v, f); /* an empty object */
	assert_true(exists("store/top"));
	/* view_free aborts what is still being written */
	f = create(v, "unfinished", 0, &a);
	assert_int_equal(view_write(v, f, 0, "abc", 3, NULL), 0);
	view_free(v);
	assert_false(exists("store/unfinished"));
	assert_int_equal(count_entries("store"), 2);
	assert_int_equal(count_entries("state/view/uploads"), 0);
}

static void test_recover(void **state)
{
	struct view *v;
	size_t n = 99;

	/* what a killed mount left: a record and its temporary file */
	put("store/.vaultfs-upload-00000000deadbeef", "partial");
	mkdir_at("state/view");
	mkdir_at("state/view/uploads");
	{
		char *text = cm_xasprintf(
		    "{ \"key\": \"obj\", \"tmp\": "
		    "\"%s/store/.vaultfs-upload-00000000deadbeef\" }\n",
		    top);

		put("state/view/uploads/1795000000-1-1.json", text);
		free(text);
	}
	put("state/view/uploads/1795000000-1-2.json.tmp", "{");
	v = new_view(false, false);
	assert_int_equal(view_recover(v, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(count_entries("store"), 0);
	assert_int_equal(count_entries("state/view/uploads"), 0);
	view_free(v);
}

/* ---- with the engine
 * --------------------------------------------------------- */

static void read_file(struct view *v, const char *path, char *buf, size_t len)
{
	struct view_open_out oo;
	struct view_file *f;
	struct view_attr a;
	size_t got = 0;

	assert_int_equal(walk(v, path, &a), 0);
	assert_int_equal(view_open(v, a.ino, O_RDONLY, &f, &oo, NULL), 0);
	assert_int_equal(view_read(v, f, 0, buf, len - 1, &got, NULL), 0);
	buf[got] = '\0';
	view_release(v, f);
}

static void test_engine(void **state)
{
	struct orch_opts oo = {0};
	struct view_open_out fo;
	struct view_file *f;
	struct view_attr a;
	struct cm_err err;
	struct orch *o;
	struct view *v;
	char buf[8192];
	char *p;

	v = new_view(false, false);
	oo.notify = view_orch_notify;
	oo.notify_ctx = v;
	cm_err_clear(&err);
	o = orch_new(&cfg, &oo, &err);
	assert_non_null(o);
	assert_int_equal(orch_start(o, &err), 0);
	view_set_orch(v, o);

	/* write "start" to export: one job; a touch answers with it */
	assert_int_equal(walk(v, "vaults/v1/tree1/export", &a), 0);
	assert_int_equal(view_open(v, a.ino, O_WRONLY | O_TRUNC, &f, &fo, NULL),
			 0);
	assert_int_equal(view_setattr(v, a.ino, f, VIEW_SET_SIZE, 0, &a, NULL),
			 0);
	assert_int_equal(view_write(v, f, 0, "start\n", 6, NULL), 0);
	view_release(v, f);
	assert_int_equal(
	    view_setattr(v, a.ino, NULL, VIEW_SET_TIMES, 0, &a, NULL), 0);
	assert_true(orch_wait_idle(o, 60000));
	assert_int_equal(count_entries("state/jobs") / 2, 1); /* .json .log */
	read_file(v, "vaults/v1/tree1/status", buf, sizeof(buf));
	assert_non_null(strstr(buf, "state: succeeded\n"));
	read_file(v, "vaults/v1/tree1/log", buf, sizeof(buf));
	assert_non_null(strstr(buf, "succeeded"));
	read_file(v, "status", buf, sizeof(buf));
	assert_non_null(strstr(buf, "\nsucceeded: 1\n"));

	/* the snapshot goes; the recovery point stays listed with its job */
	p = at("vault/tree1");
	assert_int_equal(nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(p);
	for (int i = 0; i < 300; i++) {
		read_file(v, "vaults/v1/tree1/info.json", buf, sizeof(buf));
		if (strstr(buf, "\"present\""))
			break;
		cm_sleep_ms(10);
	}
	assert_non_null(strstr(buf, "\"present\":\tfalse"));
	assert_int_equal(walk(v, "vaults/v1/tree1/status", &a), 0);

	/* cancel after the end: nothing to do, no error */
	assert_int_equal(walk(v, "vaults/v1/tree1/cancel", &a), 0);
	assert_int_equal(
	    view_setattr(v, a.ino, NULL, VIEW_SET_TIMES, 0, &a, NULL), 0);
	orch_stop(o);
	view_set_orch(v, NULL);
	view_free(v);
	orch_free(o);
}

/* Modes: what a node allows less the umask; the owner from the opts. */
static void test_modes_umask(void **state)
{
	struct view_opts o;
	struct view_attr a;
	struct cm_err err;
	struct view *v;

	view_opts_init(&o);
	assert_int_equal(o.umask, 027);
	o.cfg = &cfg;
	o.uid = 4242;
	o.gid = 4343;
	o.rescan_ms = 200;
	cm_err_clear(&err);
	v = view_new(&o, &err);
	assert_non_null(v);
	put("store/obj", "x");
	assert_int_equal(view_getattr(v, VIEW_ROOT_INO, &a, NULL), 0);
	assert_int_equal(a.mode, S_IFDIR | 0550);
	assert_int_equal(a.uid, 4242);
	assert_int_equal(a.gid, 4343);
	assert_int_equal(walk(v, "status", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0440);
	assert_int_equal(walk(v, "vaults/v1/tree1/export", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0640);
	assert_int_equal(walk(v, "archive/store", &a), 0);
	assert_int_equal(a.mode, S_IFDIR | 0750);
	assert_int_equal(walk(v, "archive/store/obj", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0440);
	view_free(v);

	/* umask 0: still, only the owner may write to a control file */
	o.umask = 0;
	v = view_new(&o, &err);
	assert_non_null(v);
	assert_int_equal(walk(v, "vaults/v1/tree1/cancel", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0644);
	assert_int_equal(walk(v, "archive/store", &a), 0);
	assert_int_equal(a.mode, S_IFDIR | 0777);
	view_free(v);
}

/* The configured prefix: the way to it and what is below it, nothing
 * else; --whole-bucket shows all. */
static void test_archive_scope(void **state)
{
	struct view_open_out oo;
	struct view_attr a, store;
	struct view_file *f = NULL;
	struct view_dir *d;
	struct view *v;
	bool cacheable;

	mkdir_at("store/back");
	mkdir_at("store/back/ups");
	mkdir_at("store/other");
	put("store/back/ups/in", "in");
	put("store/back/x", "x");
	put("store/other/out", "out");
	free(cfg.prefix);
	cfg.prefix = cm_xstrdup("back/ups");
	v = new_view(false, false);
	assert_int_equal(walk(v, "archive/store", &store), 0);
	assert_int_equal(view_opendir(v, store.ino, &d, &cacheable, NULL), 0);
	assert_string_equal(view_dir_entry(d, 2)->name, "back");
	assert_null(view_dir_entry(d, 3));
	view_releasedir(v, d);
	assert_int_equal(walk(v, "archive/store/other", &a), -ENOENT);
	assert_int_equal(walk(v, "archive/store/back/x", &a), -ENOENT);
	assert_int_equal(walk(v, "archive/store/back/ups/in", &a), 0);
	/* nothing made outside it */
	assert_int_equal(view_create(v, store.ino, "new", S_IFREG | 0644,
				     O_WRONLY | O_CREAT, &f, &a, &oo, NULL),
			 -EACCES);
	assert_int_equal(view_mkdir(v, store.ino, "dir", &a, NULL), -EACCES);
	assert_false(exists("store/new"));
	view_free(v);

	{
		struct view_opts o = {0};
		struct cm_err err;

		o.cfg = &cfg;
		o.whole_bucket = true;
		o.rescan_ms = 200;
		cm_err_clear(&err);
		v = view_new(&o, &err);
		assert_non_null(v);
	}
	assert_int_equal(walk(v, "archive/store/other/out", &a), 0);
	assert_int_equal(walk(v, "archive/store/back/x", &a), 0);
	view_free(v);
}

/* Two creates of one name while the first is open: the second gets
 * EEXIST, and so does an open for writing of the name being written. */
static void test_archive_create_race(void **state)
{
	struct view *v = new_view(true, false);
	struct view_open_out oo;
	struct view_file *f, *g = NULL;
	struct view_attr a, b;

	f = create(v, "one", 0, &a);
	create(v, "one", -EEXIST, &b);
	assert_int_equal(view_open(v, a.ino, O_WRONLY | O_TRUNC, &g, &oo, NULL),
			 -EEXIST);
	assert_int_equal(view_open(v, a.ino, O_RDONLY, &g, &oo, NULL), -EBUSY);
	assert_int_equal(view_write(v, f, 0, "first", 5, NULL), 0);
	view_release(v, f);
	assert_true(exists("store/one"));
	/* and once it is there, with --allow-overwrite, one may replace it */
	f = create(v, "one", 0, &a);
	view_release(v, f);
	view_free(v);
}

/* ---- archives' trees: KEY.d ------------------------------------------- */

/* vault/tree1 archived by the real archiver into store/x/ */
static void archive_tree1(void)
{
	struct arc_run_opts o;
	struct arc_run_result res;
	struct cm_err err;
	char *src = at("vault/tree1"), *dest = at("store/x/");

	mkdir_at("store/x");
	memset(&o, 0, sizeof(o));
	o.src = src;
	o.mode = ARC_MODE_TREE;
	o.codec.codec = ARC_CODEC_GZIP;
	o.codec.level = 1;
	o.codec.threads = 1;
	o.dest = dest;
	o.strict = true;
	cm_err_clear(&err);
	if (arc_run(&o, &res, &err))
		fail_msg("arc_run: %s", err.msg);
	assert_non_null(res.index_url);
	arc_run_result_release(&res);
	free(src);
	free(dest);
}

static void test_archive_tree(void **state)
{
	struct view *v;
	struct view_attr a, root, b;
	struct view_open_out oo;
	struct view_file *f = NULL;
	struct view_dir *d;
	const struct view_dirent *de;
	bool cacheable, seen_tree = false, seen_link = false;
	char buf[64], *target = NULL, *p;
	size_t got = 0;

	(void)state;
	mkdir_at("vault/tree1/sub");
	put("vault/tree1/sub/b.txt", "bee\n");
	p = at("vault/tree1/sub/b.txt");
	assert_int_equal(chmod(p, 0604), 0);
	free(p);
	p = at("vault/tree1/link");
	assert_int_equal(symlink("sub/b.txt", p), 0);
	free(p);
	archive_tree1();
	mkdir_at("store/y");
	put("store/y/plain.tar.gz", "no index beside it");
	v = new_view(false, false);

	/* the listing shows KEY.d beside KEY and KEY.index */
	assert_int_equal(walk(v, "archive/store/x", &a), 0);
	assert_int_equal(view_opendir(v, a.ino, &d, &cacheable, NULL), 0);
	assert_int_equal(view_dir_seek(v, d, 0, NULL), 0);
	for (size_t i = 0; (de = view_dir_entry(d, i)); i++)
		if (!strcmp(de->name, "backup.tar.gz.d")) {
			seen_tree = true;
			assert_true(S_ISDIR(de->attr.mode));
		}
	view_releasedir(v, d);
	assert_true(seen_tree);
	assert_int_equal(walk(v, "archive/store/y/plain.tar.gz", &a), 0);
	assert_int_equal(walk(v, "archive/store/y/plain.tar.gz.d", &a),
			 -ENOENT);

	/* the tree: the archive's names, modes, sizes, link targets */
	assert_int_equal(walk(v, "archive/store/x/backup.tar.gz.d", &root), 0);
	assert_true(S_ISDIR(root.mode));
	assert_int_equal(walk(v, "archive/store/x/backup.tar.gz.d/sub/b.txt",
			      &b), 0);
	assert_int_equal(b.mode, S_IFREG | 0604);
	assert_int_equal(b.size, 4);
	assert_int_equal(b.uid, getuid());
	assert_int_equal(walk(v, "archive/store/x/backup.tar.gz.d/nothing",
			      &a), -ENOENT);
	assert_int_equal(walk(v, "archive/store/x/backup.tar.gz.d/link", &a),
			 0);
	assert_int_equal(a.mode & S_IFMT, S_IFLNK);
	assert_int_equal(view_readlink(v, a.ino, &target, NULL), 0);
	assert_string_equal(target, "sub/b.txt");
	free(target);
	assert_int_equal(view_readlink(v, b.ino, &target, NULL), -EINVAL);
	assert_int_equal(view_opendir(v, root.ino, &d, &cacheable, NULL), 0);
	assert_true(cacheable); /* the kernel may keep it: it never changes */
	assert_int_equal(view_dir_seek(v, d, 0, NULL), 0);
	for (size_t i = 0; (de = view_dir_entry(d, i)); i++)
		if (!strcmp(de->name, "link")) {
			seen_link = true;
			assert_int_equal(view_dir_lookup(v, d, i, &a), 0);
			assert_int_equal(a.mode & S_IFMT, S_IFLNK);
			view_forget(v, a.ino, 1);
		}
	view_releasedir(v, d);
	assert_true(seen_link);

	/* read */
	assert_int_equal(view_open(v, b.ino, O_RDONLY, &f, &oo, NULL), 0);
	assert_true(oo.keep_cache);
	assert_int_equal(view_read(v, f, 0, buf, sizeof(buf), &got, NULL), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "bee\n", 4);
	assert_int_equal(view_read(v, f, 4, buf, sizeof(buf), &got, NULL), 0);
	assert_int_equal(got, 0);
	view_release(v, f);

	/* and nothing else: read-only */
	assert_int_equal(view_open(v, b.ino, O_WRONLY, &f, &oo, NULL), -EROFS);
	assert_int_equal(view_open(v, b.ino, O_RDONLY | O_TRUNC, &f, &oo, NULL),
			 -EROFS);
	assert_int_equal(view_open(v, root.ino, O_RDONLY, &f, &oo, NULL),
			 -EISDIR);
	assert_int_equal(view_create(v, root.ino, "new", S_IFREG | 0644,
				     O_WRONLY, &f, &a, &oo, NULL), -EROFS);
	assert_int_equal(view_mkdir(v, root.ino, "d", &a, NULL), -EROFS);
	assert_int_equal(view_unlink(v, root.ino, "link", NULL), -EROFS);
	assert_int_equal(view_rmdir(v, root.ino, "sub", NULL), -EROFS);
	assert_int_equal(view_setattr(v, b.ino, NULL, VIEW_SET_TIMES, 0, &a,
				      NULL), -EROFS);
	assert_int_equal(view_refuse(v, root.ino), -EROFS);
	assert_int_equal(view_refuse(v, VIEW_ROOT_INO), -EPERM);
	view_free(v);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    /* first: its child must be the first to ask the fault switch */
	    T(test_archive_page_retry),
	    cmocka_unit_test(test_control_words),
	    cmocka_unit_test(test_control_quote),
	    T(test_status_text),
	    T(test_metrics_text),
	    cmocka_unit_test(test_rp_status_text),
	    cmocka_unit_test(test_info_json),
	    T(test_tree_lookups),
	    T(test_tree_readdir),
	    T(test_tree_new_rp_appears),
	    T(test_rp_files),
	    cmocka_unit_test(test_archive_names),
	    T(test_archive_paged),
	    T(test_archive_write_in_order),
	    T(test_archive_out_of_order),
	    T(test_archive_overwrite_delete),
	    T(test_archive_dirs),
	    T(test_recover),
	    T(test_engine),
	    T(test_modes_umask),
	    T(test_archive_scope),
	    T(test_archive_create_race),
	    T(test_archive_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
