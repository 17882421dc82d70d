/*
 * test_orch.c - the job engine's library side, without loop devices or S3:
 * the journal's recovery-point and verification fields, job info and its
 * status text, the security-tag rule, releasing recorded resources (tree
 * removal that follows no symlink, loop records that no longer match), and
 * the engine API the view uses (orch_new/start/scan/export/cancel/
 * snapshot/job_log/stop/free) on directory trees into a local store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "orchestrator/config.h"
#include "orchestrator/journal.h"
#include "orchestrator/orch.h"
#include "orchestrator/orch_int.h"
#include "orchestrator/provider.h"
#include "orchestrator/resources.h"

#include "tmpdir.h"


static int setup(void **state)
{
	(void)state;
	return tmpdir_make("orch");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ---- journal fields ----------------------------------------------------- */

static void test_journal_fields(void **state)
{
	struct orch_journal *j = NULL;
	struct orch_job_list l;
	struct orch_job *job;
	struct cm_err err;

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	job = orch_job_new("v", "a.img", "/v/a.img", "local:v:a.img");
	job->rp_size = 123456789;
	job->rp_mtime = 1795728088;
	job->verified = true;
	job->snapshot_deleted = true;
	assert_int_equal(orch_journal_save(j, job, &err), 0);
	assert_int_equal(orch_journal_read(tmp, ORCH_LOAD_ALL, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.jobs[0]->rp_size, 123456789);
	assert_int_equal(l.jobs[0]->rp_mtime, 1795728088);
	assert_true(l.jobs[0]->verified);
	assert_true(l.jobs[0]->snapshot_deleted);
	orch_job_list_release(&l);
	/* absent means unknown / false */
	job->rp_size = 0;
	job->rp_mtime = 0;
	job->verified = job->snapshot_deleted = false;
	assert_int_equal(orch_journal_save(j, job, &err), 0);
	assert_int_equal(orch_journal_read(tmp, ORCH_LOAD_ALL, &l, &err), 0);
	assert_int_equal(l.jobs[0]->rp_size, 0);
	assert_false(l.jobs[0]->verified);
	orch_job_list_release(&l);
	orch_job_free(job);
	orch_journal_close(j);
}

/* ---- job info and text -------------------------------------------------- */

static void test_info_text(void **state)
{
	struct orch_job *job = orch_job_new("v", "disk.img", "/v/disk.img", "arn:x");
	struct orch_job_info ji;
	char buf[32];
	char *text;

	(void)state;
	orch_format_bytes(512, buf, sizeof(buf));
	assert_string_equal(buf, "512 B");
	orch_format_bytes(3 * 1024 * 1024 + 512 * 1024, buf, sizeof(buf));
	assert_string_equal(buf, "3.5 MiB");

	orch_job_set_state(job, ORCH_JOB_ARCHIVING);
	job->times[ORCH_JOB_ARCHIVING] = 1000;
	job->bytes_read = 400;
	job->bytes_total = 1000;
	orch_job_info_from_job(job, 1010, &ji);
	assert_string_equal(ji.rp_name, "disk.img");
	assert_true(ji.rate > 39.9 && ji.rate < 40.1);
	assert_int_equal(orch_job_info_eta(&ji), 15);
	text = orch_job_info_text(&ji);
	assert_non_null(strstr(text, "state: archiving\n"));
	assert_non_null(strstr(text, "progress: 400 B of 1000 B (40%)\n"));
	assert_non_null(strstr(text, "eta: 15 s\n"));
	assert_null(strstr(text, "blocks:")); /* not read block by block */
	free(text);
	orch_job_info_release(&ji);

	/* an EBS snapshot read block by block says how far its fetch is */
	job->blocks_fetched = 1234;
	job->blocks_total = 4096;
	orch_job_info_from_job(job, 1010, &ji);
	text = orch_job_info_text(&ji);
	assert_non_null(strstr(text, "blocks: 1234 of 4096 fetched\n"));
	free(text);
	orch_job_info_release(&ji);

	orch_job_set_state(job, ORCH_JOB_FAILED);
	orch_job_set_error(job, "boom");
	orch_job_info_from_job(job, 1020, &ji);
	assert_int_equal(orch_job_info_eta(&ji), -1);
	text = orch_job_info_text(&ji);
	assert_non_null(strstr(text, "error: boom\n"));
	free(text);
	orch_job_info_release(&ji);

	/* the view's status file of an incomplete job says what is missing */
	orch_job_set_state(job, ORCH_JOB_INCOMPLETE);
	orch_job_set_error(job, "1 item not archived: ./a: read error; "
			   "snapshot kept");
	orch_job_info_from_job(job, 1030, &ji);
	text = orch_job_info_text(&ji);
	assert_non_null(strstr(text, "state: incomplete\n"));
	assert_non_null(strstr(text, "left out: 1 item not archived: ./a: "
				     "read error; snapshot kept\n"));
	free(text);
	orch_job_info_release(&ji);
	orch_job_free(job);
}

/* ---- the security tag --------------------------------------------------- */

static void test_security_tag(void **state)
{
	struct orch_config cfg;
	struct orch_recovery_point rp;
	struct orch_tag tags[2] = { { (char *)"team", (char *)"ops" },
				    { (char *)"vaultfs", (char *)"managed" } };
	char why[128];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	memset(&rp, 0, sizeof(rp));
	assert_true(orch_rp_tag_allows_delete(&cfg, &rp, why, sizeof(why)));
	cfg.has_security_tag = true;
	cfg.security_tag.key = (char *)"vaultfs";
	cfg.security_tag.value = (char *)"managed";
	assert_false(orch_rp_tag_allows_delete(&cfg, &rp, why, sizeof(why)));
	assert_non_null(strstr(why, "does not carry"));
	rp.tags = tags;
	rp.ntags = 2;
	assert_true(orch_rp_tag_allows_delete(&cfg, &rp, NULL, 0));
	cfg.security_tag.value = (char *)"Managed";
	assert_false(orch_rp_tag_allows_delete(&cfg, &rp, why, sizeof(why)));
	assert_non_null(strstr(why, "not the security tag's value"));
}

/* ---- resources ---------------------------------------------------------- */

static void test_remove_all(void **state)
{
	char outside[PATH_MAX], tree[PATH_MAX], p[PATH_MAX + 32];
	struct orch_resource r;
	struct cm_err err;
	struct stat st;

	(void)state;
	snprintf(outside, sizeof(outside), "%s/outside", tmp);
	snprintf(tree, sizeof(tree), "%s/a/b/c", tmp);
	assert_int_equal(cm_mkdirs(outside, 0755, &err), 0);
	assert_int_equal(cm_mkdirs(tree, 0755, &err), 0);
	assert_int_equal(cm_mkdirs(tree, 0755, &err), 0); /* exists: fine */
	snprintf(p, sizeof(p), "%s/keep", outside);
	put_file(p, "keep me");
	snprintf(p, sizeof(p), "%s/f", tree);
	put_file(p, "x");
	snprintf(p, sizeof(p), "%s/a/link", tmp);
	assert_int_equal(symlink(outside, p), 0);
	/* a tempdir record: removed without following the symlink */
	memset(&r, 0, sizeof(r));
	r.kind = (char *)ORCH_RES_TEMPDIR;
	snprintf(p, sizeof(p), "%s/a", tmp);
	r.dir = p;
	assert_int_equal(orch_res_release(NULL, &r, &err), 0);
	assert_int_equal(lstat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/keep", outside);
	assert_int_equal(stat(p, &st), 0);
	/* missing: fine; a file: unlinked */
	assert_int_equal(orch_remove_all("/nonexistent/vf-orch", &err), 0);
	assert_int_equal(orch_remove_all(p, &err), 0);
	assert_int_equal(stat(p, &st), -1);
}

static void test_stale_records(void **state)
{
	struct orch_resource r;
	struct cm_err err;
	char mp[PATH_MAX];

	(void)state;
	/* a loop record whose device is bound to nothing of ours */
	memset(&r, 0, sizeof(r));
	r.kind = (char *)ORCH_RES_LOOP;
	r.device = (char *)"/dev/loop-vaultfs-none";
	r.backing_file = (char *)"/nonexistent/disk.img";
	assert_int_equal(orch_res_release(NULL, &r, &err), 0);
	/* a mount record whose directory is not a mount point */
	snprintf(mp, sizeof(mp), "%s/mnt", tmp);
	assert_int_equal(mkdir(mp, 0700), 0);
	assert_false(orch_is_mounted(mp));
	assert_true(orch_is_mounted("/"));
	memset(&r, 0, sizeof(r));
	r.kind = (char *)ORCH_RES_MOUNT;
	r.mount_point = mp;
	assert_int_equal(orch_res_release(NULL, &r, &err), 0);
	assert_int_equal(access(mp, F_OK), -1); /* its directory removed */
	/* an upload record with no S3 destination cannot be released */
	memset(&r, 0, sizeof(r));
	r.kind = (char *)ORCH_RES_UPLOAD;
	r.bucket = (char *)"b";
	r.key = (char *)"k";
	assert_int_equal(orch_res_release(NULL, &r, &err), -EINVAL);
}

/* ---- the engine API ---------------------------------------------------- */

struct seen {
	int final;
};

static void on_notify(void *ctx, const struct orch_job_info *ji)
{
	struct seen *s = ctx;

	if (orch_job_state_final(ji->state) && !ji->running)
		__atomic_add_fetch(&s->final, 1, __ATOMIC_SEQ_CST);
}

static void make_rp(const char *vault, const char *name)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", vault, name);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/%s/file", vault, name);
	put_file(p, name);
}

/* TMP/vault (made) and a config for it, with `jobs` workers. */
static void engine_config(char vault[PATH_MAX], unsigned jobs,
			  struct orch_config *cfg)
{
	char json[PATH_MAX * 2];
	struct cm_err err;

	snprintf(vault, PATH_MAX, "%s/vault", tmp);
	assert_int_equal(mkdir(vault, 0755), 0);
	snprintf(json, sizeof(json),
		 "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"%s\" } ],"
		 "  \"destination\": \"%s/store\", \"stateDir\": \"%s/state\","
		 "  \"concurrency\": { \"jobs\": %u } }",
		 vault, tmp, tmp, jobs);
	assert_int_equal(orch_config_parse(json, strlen(json), NULL, cfg,
					   &err), 0);
}

static void test_engine(void **state)
{
	struct orch_config cfg;
	struct orch_opts opts = { .once = true, .notify = on_notify };
	struct orch_snapshot snap;
	struct orch_job_info ji;
	struct seen seen = { 0 };
	char vault[PATH_MAX], id[ORCH_JOB_ID_SIZE];
	char id2[ORCH_JOB_ID_SIZE];
	struct cm_err err;
	struct orch *o;
	size_t queued = 0;
	bool q = false;
	char *log;

	(void)state;
	engine_config(vault, 2, &cfg);
	make_rp(vault, "t1");
	make_rp(vault, "t2");
	opts.notify_ctx = &seen;
	o = orch_new(&cfg, &opts, &err);
	assert_non_null(o);
	assert_int_equal(orch_start(o, &err), 0);
	assert_int_equal(orch_scan(o, 0, &queued, &err), 0);
	assert_int_equal(queued, 2);
	assert_true(orch_wait_idle(o, 60000));
	assert_int_equal(orch_failed_count(o), 0);
	assert_int_equal(__atomic_load_n(&seen.final, __ATOMIC_SEQ_CST), 2);

	orch_snapshot(o, &snap);
	assert_int_equal(snap.n, 2);
	assert_int_equal(snap.by_state[ORCH_JOB_SUCCEEDED], 2);
	assert_true(snap.jobs[0].verified);
	assert_non_null(strstr(snap.jobs[0].result_url, "/store/local/v/"));
	memcpy(id, snap.jobs[0].id, sizeof(id));
	orch_snapshot_release(&snap);

	/* a second scan and a repeated export queue nothing */
	assert_int_equal(orch_scan(o, 0, &queued, &err), 0);
	assert_int_equal(queued, 0);
	assert_int_equal(orch_export(o, "v", "t1", id2, &q, &err), 0);
	assert_false(q);
	assert_int_equal(orch_job_for_rp(o, "v", "t1", &ji), 0);
	assert_string_equal(ji.id, id2);
	assert_int_equal(ji.state, ORCH_JOB_SUCCEEDED);
	orch_job_info_release(&ji);
	assert_int_equal(orch_export(o, "v", "nope", id2, &q, &err), -ENOENT);
	assert_int_equal(orch_export(o, "nope", "t1", id2, &q, &err),
			 -ENOENT);

	/* what the provider knows */
	assert_int_equal(orch_describe(o, "v", "t1", &log, &err), 0);
	assert_non_null(strstr(log, "\"resourceId\":\t\"local:v:t1\""));
	assert_non_null(strstr(log, "\"type\":\t\"tree\""));
	free(log);
	assert_int_equal(orch_describe(o, "v", "nope", &log, &err), -ENOENT);

	/* the log of a finished job */
	log = orch_job_log(o, id);
	assert_non_null(log);
	assert_non_null(strstr(log, "verified"));
	free(log);
	assert_null(orch_job_log(o, "not-a-job-id"));

	/* cancelling a finished job */
	assert_int_equal(orch_cancel(o, id, &err), -EALREADY);
	assert_int_equal(orch_job_get(o, id, &ji), 0);
	orch_job_info_release(&ji);

	orch_stop(o);
	orch_stop(o); /* idempotent */
	assert_int_equal(orch_export(o, "v", "t2", id2, &q, &err),
			 -ESHUTDOWN);
	orch_free(o);

	/* a second engine on the same stateDir sees the history */
	o = orch_new(&cfg, &opts, &err);
	assert_non_null(o);
	assert_int_equal(orch_start(o, &err), 0);
	assert_int_equal(orch_scan(o, 0, &queued, &err), 0);
	assert_int_equal(queued, 0);
	orch_snapshot(o, &snap);
	/* finished jobs of an earlier run are in the index, not in memory */
	assert_int_equal(snap.n, 0);
	assert_int_equal(snap.indexed, 2);
	assert_int_equal(snap.by_state[ORCH_JOB_SUCCEEDED], 2);
	orch_snapshot_release(&snap);
	assert_int_equal(orch_job_for_rp(o, "v", "t1", &ji), 0);
	assert_string_equal(ji.id, id2);
	assert_int_equal(ji.state, ORCH_JOB_SUCCEEDED);
	assert_true(ji.verified);
	orch_job_info_release(&ji);
	assert_int_equal(orch_cancel(o, id, &err), -EALREADY);
	log = orch_job_log(o, id); /* from the file now */
	assert_non_null(log);
	assert_non_null(strstr(log, "succeeded"));
	free(log);
	orch_free(o);
	orch_config_release(&cfg);
}

/* Finished jobs leave memory while the engine runs (one kept here): they
 * still answer scans, exports, lookups by name and id, and their logs. */
static void test_retired(void **state)
{
	struct orch_config cfg;
	struct orch_opts opts = { .once = true, .notify = on_notify };
	struct orch_snapshot snap;
	struct orch_job_info ji;
	struct seen seen = { 0 };
	char vault[PATH_MAX], id[ORCH_JOB_ID_SIZE];
	char name[16];
	struct cm_err err;
	struct orch *o;
	size_t queued = 0;
	bool q = true;
	char *log;

	(void)state;
	engine_config(vault, 3, &cfg);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		make_rp(vault, name);
	}
	opts.notify_ctx = &seen;
	setenv("VAULTFS_TEST_RECENT_FINISHED", "1", 1);
	o = orch_new(&cfg, &opts, &err);
	unsetenv("VAULTFS_TEST_RECENT_FINISHED");
	assert_non_null(o);
	assert_int_equal(orch_start(o, &err), 0);
	assert_int_equal(orch_scan(o, 0, &queued, &err), 0);
	assert_int_equal(queued, 6);
	assert_true(orch_wait_idle(o, 60000));
	assert_int_equal(__atomic_load_n(&seen.final, __ATOMIC_SEQ_CST), 6);

	/* one finished job in memory, five in the index; all counted */
	orch_snapshot(o, &snap);
	assert_int_equal(snap.n, 1);
	assert_int_equal(snap.indexed, 5);
	assert_int_equal(snap.by_state[ORCH_JOB_SUCCEEDED], 6);
	assert_true(snap.indexed_archived > 0);
	orch_snapshot_release(&snap);

	/* nothing is queued again, by a scan or an export */
	assert_int_equal(orch_scan(o, 0, &queued, &err), 0);
	assert_int_equal(queued, 0);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(orch_export(o, "v", name, id, &q, &err), 0);
		assert_false(q);
		/* read back, by name and by id, with the log of its file */
		assert_int_equal(orch_job_for_rp(o, "v", name, &ji), 0);
		assert_string_equal(ji.id, id);
		assert_string_equal(ji.rp_name, name);
		assert_int_equal(ji.state, ORCH_JOB_SUCCEEDED);
		assert_true(ji.verified);
		assert_non_null(ji.result_url);
		orch_job_info_release(&ji);
		assert_int_equal(orch_job_get(o, id, &ji), 0);
		assert_string_equal(ji.rp_name, name);
		orch_job_info_release(&ji);
		log = orch_job_log(o, id);
		assert_non_null(log);
		assert_non_null(strstr(log, "succeeded"));
		free(log);
		assert_int_equal(orch_cancel(o, id, &err), -EALREADY);
	}
	orch_free(o);
	orch_config_release(&cfg);
}

/* ---- engine paths only another provider reaches ------------------------ */

/*
 * A test provider: the local one, except that restore() says no restorer
 * handles the recovery point yet and release_stale() records what it is
 * handed. It exists because the local provider never waits and has no
 * resource kind of its own, so the engine's paths for those - the
 * `waiting` state, a provider's resource after a crash - cannot be reached
 * through it. It replaces the ops of the engine's provider for vault "v"
 * between orch_new and orch_start.
 */
static struct orch_provider_ops test_ops;
static char stale_seen[256];
static int stale_rc;

static int test_restore(struct orch_provider *p,
			const struct orch_recovery_point *rp,
			const struct orch_res_journal *rj,
			struct orch_restored *out, struct cm_err *err)
{
	(void)p;
	(void)rp;
	(void)rj;
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	cm_err_set(err, EAGAIN, "no provider for EBS yet");
	return ORCH_RESTORE_WAITING;
}

static int test_release_stale(struct orch_provider *p,
			      const struct orch_resource *res,
			      struct cm_err *err)
{
	(void)p;
	snprintf(stale_seen, sizeof(stale_seen), "%s %s", res->kind,
		 cm_json_get_str(res->ids, "volumeId"));
	if (stale_rc)
		return cm_err_set(err, -stale_rc, "volume busy");
	return 0;
}

static void use_test_provider(struct orch *o)
{
	test_ops = *o->providers[0]->ops;
	test_ops.name = "test";
	test_ops.restore = test_restore;
	test_ops.release_stale = test_release_stale;
	o->providers[0]->ops = &test_ops;
}

static void test_waiting(void **state)
{
	struct orch_config cfg;
	struct orch_opts opts = { .once = true };
	struct orch_snapshot snap;
	char vault[PATH_MAX], id[ORCH_JOB_ID_SIZE];
	struct cm_err err;
	struct orch *o;
	size_t queued = 0;
	bool q = false;
	char *text;

	(void)state;
	engine_config(vault, 1, &cfg);
	make_rp(vault, "t1");
	o = orch_new(&cfg, &opts, &err);
	assert_non_null(o);
	use_test_provider(o);
	assert_int_equal(orch_start(o, &err), 0);
	assert_int_equal(orch_scan(o, 0, &queued, &err), 0);
	assert_int_equal(queued, 1);
	assert_true(orch_wait_idle(o, 60000));
	/* waiting is no failure, and its attempt is not counted */
	assert_int_equal(orch_failed_count(o), 0);
	orch_snapshot(o, &snap);
	assert_int_equal(snap.n, 1);
	assert_int_equal(snap.jobs[0].state, ORCH_JOB_WAITING);
	assert_false(orch_job_state_final(snap.jobs[0].state));
	assert_int_equal(snap.jobs[0].attempts, 0);
	assert_string_equal(snap.jobs[0].error, "no provider for EBS yet");
	text = orch_job_info_text(&snap.jobs[0]);
	assert_non_null(strstr(text, "state: waiting\n"));
	assert_non_null(strstr(text, "waiting: no provider for EBS yet\n"));
	free(text);
	memcpy(id, snap.jobs[0].id, sizeof(id));
	orch_snapshot_release(&snap);
	/* a scan leaves it; an export tries it again (the same job) */
	assert_int_equal(orch_scan(o, 0, &queued, &err), 0);
	assert_int_equal(queued, 0);
	assert_int_equal(orch_export(o, "v", "t1", id, &q, &err), 0);
	assert_true(q);
	assert_true(orch_wait_idle(o, 60000));
	orch_snapshot(o, &snap);
	assert_int_equal(snap.n, 1);
	assert_string_equal(snap.jobs[0].id, id);
	assert_int_equal(snap.jobs[0].state, ORCH_JOB_WAITING);
	orch_snapshot_release(&snap);
	orch_free(o);

	/* the next start, with a restorer (the local one): it runs */
	o = orch_new(&cfg, &opts, &err);
	assert_non_null(o);
	assert_int_equal(orch_start(o, &err), 0);
	assert_true(orch_wait_idle(o, 60000));
	orch_snapshot(o, &snap);
	assert_int_equal(snap.n, 1);
	assert_string_equal(snap.jobs[0].id, id);
	assert_int_equal(snap.jobs[0].state, ORCH_JOB_SUCCEEDED);
	assert_int_equal(snap.jobs[0].attempts, 1);
	orch_snapshot_release(&snap);
	orch_free(o);
	orch_config_release(&cfg);
}

/* A failed job holding a resource of kind `kind` in `vault`, as a crash
 * would leave it. */
static void stale_job(const struct orch_config *cfg, const char *vault,
		      const char *volume, char id[ORCH_JOB_ID_SIZE])
{
	struct orch_journal *j = NULL;
	struct cm_json *ids = cm_json_new_object();
	struct orch_res_ids ri = { .json = ids };
	struct orch_job *job;
	struct cm_err err;
	size_t idx;

	cm_json_add_str(ids, "volumeId", volume);
	assert_int_equal(orch_journal_open(cfg->state_dir, &j, &err), 0);
	job = orch_job_new(vault, "snap-1", "arn:aws:ec2:r::snapshot/snap-1",
			   "arn:aws:ec2:r:1:volume/vol-1");
	orch_job_set_state(job, ORCH_JOB_FAILED);
	assert_int_equal(orch_journal_res_add(j, job, "ebs-volume", &ri, &idx,
					      &err), 0);
	assert_int_equal(orch_journal_res_created(j, job, idx, NULL, &err),
			 0);
	memcpy(id, job->id, ORCH_JOB_ID_SIZE);
	orch_job_free(job);
	orch_journal_close(j);
	cm_json_free(ids);
}

static enum orch_res_status stale_status(const struct orch_config *cfg,
					 const char *id)
{
	struct orch_job *job;
	struct cm_err err;
	enum orch_res_status st;

	assert_int_equal(orch_journal_load_job(cfg->state_dir, id, &job,
					       &err), 0);
	assert_int_equal(job->nres, 1);
	st = job->res[0].status;
	orch_job_free(job);
	return st;
}

/*
 * After a crash, a resource of a kind the engine does not know goes to the
 * release_stale of its job's vault's provider; while that fails, or the
 * vault is gone from the config, it stays recorded.
 */
static void test_stale_provider_resource(void **state)
{
	struct orch_config cfg;
	struct orch_opts opts = { .once = true };
	char vault[PATH_MAX], id[ORCH_JOB_ID_SIZE], gone[ORCH_JOB_ID_SIZE];
	struct orch_job_info ji;
	struct orch_job *job;
	struct cm_err err;
	struct orch *o;
	char *text;

	(void)state;
	engine_config(vault, 1, &cfg);
	stale_job(&cfg, "v", "vol-0abc", id);
	stale_job(&cfg, "gone", "vol-0def", gone);

	stale_seen[0] = '\0';
	stale_rc = -EBUSY;
	o = orch_new(&cfg, &opts, &err);
	assert_non_null(o);
	use_test_provider(o);
	assert_int_equal(orch_start(o, &err), 0);
	assert_string_equal(stale_seen, "ebs-volume vol-0abc");
	orch_free(o);
	assert_int_equal(stale_status(&cfg, id), ORCH_RES_CREATED);
	assert_int_equal(stale_status(&cfg, gone), ORCH_RES_CREATED);
	/* and its status says what it holds */
	assert_int_equal(orch_journal_load_job(cfg.state_dir, gone, &job,
					       &err), 0);
	orch_job_info_from_job(job, time(NULL), &ji);
	assert_string_equal(ji.held, "ebs-volume");
	text = orch_job_info_text(&ji);
	assert_non_null(strstr(text, "holds: ebs-volume\n"));
	free(text);
	orch_job_info_release(&ji);
	orch_job_free(job);

	stale_seen[0] = '\0';
	stale_rc = 0;
	o = orch_new(&cfg, &opts, &err);
	assert_non_null(o);
	use_test_provider(o);
	assert_int_equal(orch_start(o, &err), 0);
	assert_string_equal(stale_seen, "ebs-volume vol-0abc");
	orch_free(o);
	assert_int_equal(stale_status(&cfg, id), ORCH_RES_RELEASED);
	/* no provider for vault "gone": kept for when there is one */
	assert_int_equal(stale_status(&cfg, gone), ORCH_RES_CREATED);
	orch_config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_fields, setup,
						teardown),
		cmocka_unit_test(test_info_text),
		cmocka_unit_test(test_security_tag),
		cmocka_unit_test_setup_teardown(test_remove_all, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stale_records, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_provider_resource,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
