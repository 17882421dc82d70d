/*
 * test_journal.c - the job journal (atomic saves under injected faults, the
 * stateDir lock, every state, resource tracking, corrupt files) and the
 * archive keys and job ids it is named by.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "orchestrator/index.h"
#include "orchestrator/journal.h"
#include "orchestrator/keys.h"
#include "orchestrator/orch.h"

#include "tmpdir.h"


static int setup(void **state)
{
	(void)state;
	return tmpdir_make("journal");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

/* STATEDIR/jobs/name exists. */
static bool exists(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/jobs/%s", tmp, name);
	return stat(path, &st) == 0;
}

static void write_text(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/jobs/%s", tmp, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ---- faults: each scenario runs in a child, before anything else in this
 * process has asked the fault switch (which reads VAULTFS_FAULT once). */

static int fault_scenario(const char *rule, const char *step, bool res)
{
	struct orch_journal *j = NULL;
	struct orch_job_list l;
	struct orch_job *job;
	struct cm_err err;
	char name[64];
	size_t idx;
	int rc;

	setenv("VAULTFS_FAULT", rule, 1);
	if (orch_journal_open(tmp, &j, &err))
		return 10;
	job = orch_job_new("local", "disk.img", "/v/disk.img", "local:local:disk.img");
	orch_job_set_state(job, ORCH_JOB_RESTORING);
	if (orch_journal_save(j, job, &err))
		return 11;
	if (res) {
		rc = orch_journal_res_add(j, job, ORCH_RES_LOOP,
					  &(struct orch_res_ids){
						  .backing_file = "/v/disk.img"
					  }, &idx, &err);
		if (job->nres != 0)
			return 12; /* dropped again in memory */
	} else {
		orch_job_set_state(job, ORCH_JOB_ARCHIVING);
		rc = orch_journal_save(j, job, &err);
	}
	if (rc != -EIO || !strstr(err.msg, step))
		return 13;
	/* the old file is whole and unchanged; no temp file is left */
	if (orch_journal_read(tmp, ORCH_LOAD_ALL, &l, &err) || l.n != 1 ||
	    l.ncorrupt || l.jobs[0]->state != ORCH_JOB_RESTORING ||
	    l.jobs[0]->nres != 0)
		return 14;
	orch_job_list_release(&l);
	snprintf(name, sizeof(name), "%s.json.tmp", job->id);
	if (exists(name))
		return 15;
	/* and the next save goes through */
	orch_job_set_state(job, ORCH_JOB_VERIFYING);
	if (orch_journal_save(j, job, &err))
		return 16;
	if (orch_journal_read(tmp, ORCH_LOAD_ALL, &l, &err) || l.n != 1 ||
	    l.jobs[0]->state != ORCH_JOB_VERIFYING)
		return 17;
	orch_job_list_release(&l);
	orch_job_free(job);
	orch_journal_close(j);
	return 0;
}

static void run_fault(const char *rule, const char *step, bool res)
{
	pid_t pid;
	int st;

	assert_int_equal(setup(NULL), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fault_scenario(rule, step, res));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("%s: child exited %d", rule, WEXITSTATUS(st));
	assert_int_equal(teardown(NULL), 0);
}

static void test_save_faults(void **state)
{
	(void)state;
	/* between write and rename: the old file stays */
	run_fault("journal.rename@2", ": rename: ", false);
	run_fault("journal.write@2", ": write: ", false);
	run_fault("journal.fsync@2", ": fsync: ", false);
	/* a resource whose intent cannot be recorded is not kept */
	run_fault("journal.rename@2", ": rename: ", true);
}

/* ---- the lock ---------------------------------------------------------- */

static void test_lock(void **state)
{
	struct orch_journal *j = NULL, *j2 = NULL;
	char want[256];
	struct cm_err err;
	pid_t pid;
	int st;

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	snprintf(want, sizeof(want), "another vaultfs (pid %ld) holds %s/lock",
		 (long)getpid(), tmp);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct orch_journal *c = NULL;
		struct cm_err e;
		int rc = orch_journal_open(tmp, &c, &e);

		if (rc != -EBUSY || c)
			_exit(1);
		_exit(strcmp(e.msg, want) == 0 ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	/* the same process cannot hold it twice either */
	assert_int_equal(orch_journal_open(tmp, &j2, &err), -EBUSY);
	assert_string_equal(err.msg, want);
	assert_null(j2);

	/* released on close: a child gets it now */
	orch_journal_close(j);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct orch_journal *c = NULL;
		struct cm_err e;

		if (orch_journal_open(tmp, &c, &e))
			_exit(1);
		orch_journal_close(c);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	orch_journal_close(j);
}

static void test_open_creates_dirs(void **state)
{
	char *deep = cm_xasprintf("%s/a/b/state", tmp);
	struct orch_journal *j = NULL;
	struct cm_err err;
	struct stat st;
	char *jobs;

	(void)state;
	assert_int_equal(orch_journal_open(deep, &j, &err), 0);
	jobs = cm_xasprintf("%s/jobs", deep);
	assert_int_equal(stat(jobs, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	orch_journal_close(j);
	free(jobs);
	free(deep);

	/* a file in the way is an error naming it */
	deep = cm_xasprintf("%s/file", tmp);
	close(open(deep, O_CREAT | O_WRONLY, 0644));
	jobs = cm_xasprintf("%s/state", deep);
	assert_int_equal(orch_journal_open(jobs, &j, &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, deep));
	free(jobs);
	free(deep);
}

/* ---- states ------------------------------------------------------------ */

static void same_str(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* Every field the journal keeps (resources aside) agrees. */
static void same_job(const struct orch_job *a, const struct orch_job *b)
{
	assert_string_equal(a->id, b->id);
	same_str(a->vault, b->vault);
	same_str(a->rp_name, b->rp_name);
	same_str(a->rp_path, b->rp_path);
	same_str(a->resource_id, b->resource_id);
	assert_int_equal(a->rp_size, b->rp_size);
	assert_int_equal(a->rp_mtime, b->rp_mtime);
	assert_memory_equal(&a->rp_id, &b->rp_id, sizeof(a->rp_id));
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->attempts, b->attempts);
	assert_memory_equal(a->times, b->times, sizeof(a->times));
	assert_int_equal(a->bytes_read, b->bytes_read);
	assert_int_equal(a->bytes_total, b->bytes_total);
	assert_int_equal(a->bytes_written, b->bytes_written);
	assert_int_equal(a->blocks_fetched, b->blocks_fetched);
	assert_int_equal(a->blocks_total, b->blocks_total);
	same_str(a->result_url, b->result_url);
	assert_int_equal(a->result_size, b->result_size);
	same_str(a->result_etag, b->result_etag);
	same_str(a->result_sha256, b->result_sha256);
	same_str(a->result_incomplete, b->result_incomplete);
	same_str(a->export_task, b->export_task);
	same_str(a->export_status, b->export_status);
	same_str(a->export_detail, b->export_detail);
	assert_int_equal(a->export_percent, b->export_percent);
	same_str(a->last_error, b->last_error);
	assert_int_equal(a->verified, b->verified);
	assert_int_equal(a->snapshot_deleted, b->snapshot_deleted);
}

static void test_every_state(void **state)
{
	struct orch_journal *j = NULL;
	static const char *const names[ORCH_JOB_NSTATES] = {
		"queued", "restoring", "archiving", "verifying", "cleaning",
		"succeeded", "failed", "cancelled", "incomplete", "waiting",
		"exporting",
	};
	static const enum orch_job_state unfinished[] = {
		ORCH_JOB_QUEUED, ORCH_JOB_RESTORING, ORCH_JOB_ARCHIVING,
		ORCH_JOB_VERIFYING, ORCH_JOB_CLEANING, ORCH_JOB_WAITING,
		ORCH_JOB_EXPORTING,
	};
	struct orch_job *jobs[ORCH_JOB_NSTATES];
	struct orch_job_list l;
	struct cm_err err;
	enum orch_job_state s;

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	for (int i = 0; i < ORCH_JOB_NSTATES; i++) {
		char path[64], rid[64];

		snprintf(path, sizeof(path), "/v/rp%d", i);
		snprintf(rid, sizeof(rid), "local:v:rp%d", i);
		jobs[i] = orch_job_new("v", path + 3, path, rid);
		for (int k = 1; k <= i; k++)
			orch_job_set_state(jobs[i], (enum orch_job_state)k);
		jobs[i]->attempts = (unsigned)i;
		jobs[i]->bytes_read = 1000 + (uint64_t)i;
		jobs[i]->bytes_total = 1ull << 40;
		jobs[i]->bytes_written = 77;
		/* an EBS read's block count, for all but the first */
		jobs[i]->blocks_fetched = (uint64_t)i;
		jobs[i]->blocks_total = i ? 4096 : 0;
		if (i == ORCH_JOB_SUCCEEDED)
			orch_job_set_result(jobs[i], "s3://b/k/backup.tar.gz",
					    12345, "abc-2", "00ff");
		if (i == ORCH_JOB_FAILED)
			orch_job_set_error(jobs[i], "archive: \"x\": EIO\n");
		if (i == ORCH_JOB_INCOMPLETE) {
			orch_job_set_result(jobs[i], "/s/backup.tar.gz", 9,
					    NULL, "11ee");
			jobs[i]->result_incomplete =
				strdup("1 item not archived: ./a: changed");
		}
		if (i == ORCH_JOB_EXPORTING) {
			jobs[i]->export_task = strdup("vaultfs-20261126t2045");
			jobs[i]->export_status = strdup("IN_PROGRESS");
			jobs[i]->export_percent = 0;
		}
		assert_int_equal(orch_journal_save(j, jobs[i], &err), 0);
		assert_string_equal(orch_job_state_name(
					    (enum orch_job_state)i), names[i]);
		assert_int_equal(orch_job_state_parse(orch_job_state_name(
				   (enum orch_job_state)i), &s), 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(orch_job_state_parse("done", &s), -EINVAL);

	/* recovery sees the seven unfinished ones (waiting and exporting
	 * too), in id (creation) order */
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 7);
	assert_int_equal(l.ncorrupt, 0);
	for (size_t i = 0; i < l.n; i++) {
		assert_string_equal(l.jobs[i]->id, jobs[unfinished[i]]->id);
		assert_int_equal(l.jobs[i]->state, unfinished[i]);
		assert_false(orch_job_state_final(l.jobs[i]->state));
	}
	orch_job_list_release(&l);

	/* everything, field by field */
	assert_int_equal(orch_journal_load_all(j, ORCH_LOAD_ALL, &l, &err), 0);
	assert_int_equal(l.n, ORCH_JOB_NSTATES);
	for (size_t i = 0; i < l.n; i++) {
		struct orch_job *b = l.jobs[i];

		same_job(jobs[i], b);
		assert_true(b->times[ORCH_JOB_QUEUED] > 0);
		assert_int_equal(b->bytes_read, 1000 + i);
		assert_int_equal(b->bytes_total, 1ull << 40);
		assert_int_equal(b->bytes_written, 77);
		assert_int_equal(b->blocks_fetched, i);
		assert_int_equal(b->blocks_total, i ? 4096 : 0);
		assert_int_equal(b->nres, 0);
	}
	assert_string_equal(l.jobs[ORCH_JOB_SUCCEEDED]->result_url,
			    "s3://b/k/backup.tar.gz");
	assert_int_equal(l.jobs[ORCH_JOB_SUCCEEDED]->result_size, 12345);
	assert_string_equal(l.jobs[ORCH_JOB_SUCCEEDED]->result_etag, "abc-2");
	assert_string_equal(l.jobs[ORCH_JOB_SUCCEEDED]->result_sha256, "00ff");
	assert_null(l.jobs[ORCH_JOB_FAILED]->result_url);
	assert_string_equal(l.jobs[ORCH_JOB_FAILED]->last_error,
			    "archive: \"x\": EIO\n");
	assert_null(l.jobs[ORCH_JOB_SUCCEEDED]->last_error);
	assert_null(l.jobs[ORCH_JOB_SUCCEEDED]->result_incomplete);
	assert_true(orch_job_state_final(l.jobs[ORCH_JOB_INCOMPLETE]->state));
	assert_string_equal(l.jobs[ORCH_JOB_INCOMPLETE]->result_incomplete,
			    "1 item not archived: ./a: changed");
	assert_string_equal(l.jobs[ORCH_JOB_EXPORTING]->export_task,
			    "vaultfs-20261126t2045");
	assert_int_equal(l.jobs[ORCH_JOB_EXPORTING]->export_percent, 0);
	assert_int_equal(l.jobs[ORCH_JOB_FAILED]->export_percent, -1);
	orch_job_list_release(&l);
	orch_job_list_release(&l); /* twice is harmless */

	for (int i = 0; i < ORCH_JOB_NSTATES; i++)
		orch_job_free(jobs[i]);
	orch_job_free(NULL);
	orch_journal_close(j);
	orch_journal_close(NULL);
}

/* ---- resources --------------------------------------------------------- */

static void test_resources(void **state)
{
	struct orch_journal *j = NULL;
	struct orch_job_list l;
	struct orch_job *job;
	struct cm_err err;
	size_t loop, mnt, up, dir;
	struct orch_resource *r;

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	job = orch_job_new("v", "disk.img", "/v/disk.img", "local:v:disk.img");
	orch_job_set_state(job, ORCH_JOB_RESTORING);
	assert_int_equal(orch_journal_save(j, job, &err), 0);

	assert_int_equal(orch_journal_res_add(j, job, ORCH_RES_LOOP,
		&(struct orch_res_ids){ .backing_file = "/v/disk.img" },
		&loop, &err), 0);
	assert_int_equal(orch_journal_res_created(j, job, loop,
		&(struct orch_res_ids){ .device = "/dev/loop7" }, &err), 0);
	assert_int_equal(orch_journal_res_add(j, job, ORCH_RES_MOUNT,
		&(struct orch_res_ids){ .device = "/dev/loop7p1",
					.mount_point = "/run/vaultfs/m1" },
		&mnt, &err), 0);
	assert_int_equal(orch_journal_res_created(j, job, mnt, NULL, &err), 0);
	orch_job_set_state(job, ORCH_JOB_ARCHIVING);
	assert_int_equal(orch_journal_res_add(j, job, ORCH_RES_UPLOAD,
		&(struct orch_res_ids){ .bucket = "b", .key = "k/backup.tar.gz" },
		&up, &err), 0);
	assert_int_equal(orch_journal_res_add(j, job, ORCH_RES_TEMPDIR,
		&(struct orch_res_ids){ .dir = "/var/lib/vaultfs/state/tmp/x" },
		&dir, &err), 0);
	assert_int_equal(orch_journal_res_released(j, job, dir, &err), 0);
	assert_int_equal(loop, 0);
	assert_int_equal(mnt, 1);
	assert_int_equal(up, 2);
	assert_int_equal(dir, 3);
	assert_true(orch_job_holds_resources(job));

	/* a restart: the upload is only intended, the rest as recorded */
	orch_journal_close(j);
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.jobs[0]->state, ORCH_JOB_ARCHIVING);
	assert_int_equal(l.jobs[0]->nres, 4);
	r = l.jobs[0]->res;
	assert_string_equal(r[0].kind, ORCH_RES_LOOP);
	assert_int_equal(r[0].status, ORCH_RES_CREATED);
	assert_string_equal(r[0].device, "/dev/loop7");
	assert_string_equal(r[0].backing_file, "/v/disk.img");
	assert_null(r[0].mount_point);
	assert_string_equal(r[1].kind, ORCH_RES_MOUNT);
	assert_int_equal(r[1].status, ORCH_RES_CREATED);
	assert_string_equal(r[1].mount_point, "/run/vaultfs/m1");
	assert_string_equal(r[1].device, "/dev/loop7p1");
	assert_string_equal(r[2].kind, ORCH_RES_UPLOAD);
	assert_int_equal(r[2].status, ORCH_RES_INTENDED);
	assert_string_equal(r[2].bucket, "b");
	assert_string_equal(r[2].key, "k/backup.tar.gz");
	assert_null(r[2].upload_id);
	assert_string_equal(r[3].kind, ORCH_RES_TEMPDIR);
	assert_int_equal(r[3].status, ORCH_RES_RELEASED);
	assert_string_equal(r[3].dir, "/var/lib/vaultfs/state/tmp/x");
	for (int i = 0; i < 4; i++)
		assert_true(r[i].changed > 0);
	assert_string_equal(r[2].kind, "upload");
	assert_string_equal(orch_res_status_name(r[2].status), "intended");
	orch_job_list_release(&l);

	/* upload id learned on creation */
	assert_int_equal(orch_journal_res_created(j, job, up,
		&(struct orch_res_ids){ .upload_id = "2~abc" }, &err), 0);

	/* failed but still holding resources: still returned */
	orch_job_set_state(job, ORCH_JOB_FAILED);
	assert_int_equal(orch_journal_save(j, job, &err), 0);
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.jobs[0]->res[2].upload_id, "2~abc");
	assert_int_equal(l.jobs[0]->res[2].status, ORCH_RES_CREATED);
	orch_job_list_release(&l);

	/* all released: a finished job is no longer recovery's business */
	assert_int_equal(orch_journal_res_released(j, job, up, &err), 0);
	assert_int_equal(orch_journal_res_released(j, job, mnt, &err), 0);
	assert_int_equal(orch_journal_res_released(j, job, loop, &err), 0);
	assert_false(orch_job_holds_resources(job));
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 0);
	orch_job_list_release(&l);
	assert_int_equal(orch_journal_load_all(j, ORCH_LOAD_ALL, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.jobs[0]->nres, 4);
	orch_job_list_release(&l);

	orch_job_free(job);
	orch_journal_close(j);
}

/* The recovery point's identity survives a save exactly (nanoseconds
 * past 2^53), and so does a device node record. */
static void test_identity_and_node(void **state)
{
	struct orch_journal *j = NULL;
	struct orch_job_list l;
	struct orch_job *job;
	struct cm_err err;
	size_t node;

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	job = orch_job_new("v", "disk.img", "/v/disk.img", "local:v:disk.img");
	job->rp_id = (struct orch_rp_identity){
		.known = true, .dev = 2049, .ino = 18446744073709551557ull,
		.size = 8388608, .ctime_ns = 1764700000123456789,
		.mtime_ns = 1764699999987654321 };
	assert_int_equal(orch_journal_save(j, job, &err), 0);
	assert_int_equal(orch_journal_res_add(j, job, ORCH_RES_NODE,
		&(struct orch_res_ids){ .device = "/dev/vaultfs-7-3",
					.devnum = "7:3" },
		&node, &err), 0);
	assert_int_equal(orch_journal_res_add(j, job, ORCH_RES_TEMPDIR,
		&(struct orch_res_ids){ .dir = "/v/.vaultfs-delete-1",
					.inode = "2049:12" },
		&node, &err), 0);
	orch_journal_close(j);
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_true(l.jobs[0]->rp_id.known);
	assert_true(orch_rp_identity_equal(&l.jobs[0]->rp_id, &job->rp_id));
	assert_int_equal(l.jobs[0]->nres, 2);
	assert_string_equal(l.jobs[0]->res[1].inode, "2049:12");
	assert_string_equal(l.jobs[0]->res[0].kind, ORCH_RES_NODE);
	assert_string_equal(l.jobs[0]->res[0].device, "/dev/vaultfs-7-3");
	assert_string_equal(l.jobs[0]->res[0].devnum, "7:3");
	orch_job_list_release(&l);
	orch_job_free(job);
	orch_journal_close(j);
}


/* ---- names and kinds of other providers -------------------------------- */

/*
 * A recovery point named after an ARN (':' in its name, '/' and ':' in
 * its path and resource id) keeps its name through the journal, the
 * index record, the index's lookup by name and the status of its job.
 */
static void test_rp_name_with_colon(void **state)
{
	static const char name[] = "snap-0abc:2026-12-03";
	static const char path[] =
	    "arn:aws:ec2:eu-west-1::snapshot/snap-0abc";
	struct orch_journal *j = NULL;
	struct orch_index *ix = orch_index_new();
	struct orch_index_rec rec;
	struct orch_index_hit hit;
	struct orch_job *job, *back;
	struct orch_job_info ji;
	struct orch_job_list l;
	struct cm_json *record;
	struct cm_err err;
	char *text, why[128];

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	job = orch_job_new("aws", name, path,
			   "arn:aws:ec2:eu-west-1:123456789012:volume/vol-1");
	orch_job_set_state(job, ORCH_JOB_SUCCEEDED);
	assert_int_equal(orch_journal_save(j, job, &err), 0);
	assert_int_equal(orch_journal_load_all(j, ORCH_LOAD_ALL, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.jobs[0]->rp_name, name);
	assert_string_equal(l.jobs[0]->rp_path, path);
	orch_job_info_from_job(l.jobs[0], time(NULL), &ji);
	assert_string_equal(ji.rp_name, name);
	text = orch_job_info_text(&ji);
	assert_non_null(strstr(text, "recovery point: aws/snap-0abc:"
				     "2026-12-03\n"));
	free(text);
	orch_job_info_release(&ji);
	orch_job_list_release(&l);

	/* the index's one-line record, and its lookup by name */
	text = orch_job_record_text(job);
	assert_int_equal(cm_json_parse(text, strlen(text), &record, &err), 0);
	assert_int_equal(orch_job_from_record(record, &back, why,
					      sizeof(why)), 0);
	assert_string_equal(back->rp_name, name);
	assert_int_equal(orch_index_rec_from_json(record, &rec, why,
						  sizeof(why)), 0);
	orch_index_add(ix, &rec, ORCH_INDEX_IN_JOURNAL);
	assert_true(orch_index_find_name(ix, "aws", name, &hit));
	assert_string_equal(hit.id, job->id);
	assert_false(orch_index_find_name(ix, "aws", "snap-0abc", &hit));
	orch_job_free(back);
	cm_json_free(record);
	free(text);
	orch_index_free(ix);
	orch_job_free(job);
	orch_journal_close(j);
}

/* A journal written before names were recorded (users' disks): the name
 * is its path's last component. */
static void test_rp_name_of_old_journal(void **state)
{
	struct orch_journal *j = NULL;
	struct orch_job_list l;
	struct cm_err err;
	char id[ORCH_JOB_ID_SIZE], name[64];
	char *text;

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0); /* jobs/ */
	orch_journal_close(j);
	orch_job_id_new(id);
	snprintf(name, sizeof(name), "%s.json", id);
	text = cm_xasprintf("{\"version\": 1, \"id\": \"%s\", \"vault\": "
			    "\"v\", \"recoveryPoint\": {\"path\": "
			    "\"/vault/disk.img\", \"resourceId\": "
			    "\"local:v:disk.img\"}, \"state\": \"queued\", "
			    "\"attempts\": 0, \"resources\": []}", id);
	write_text(name, text);
	free(text);
	assert_int_equal(orch_journal_read(tmp, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ncorrupt, 0);
	assert_string_equal(l.jobs[0]->rp_name, "disk.img");
	orch_job_list_release(&l);
}

/*
 * A provider's resource: any kind name, its ids a JSON object merged by
 * `created`, written and read back; a kind that is not a name is refused
 * before anything is recorded.
 */
static void test_provider_resource(void **state)
{
	struct orch_journal *j = NULL;
	struct cm_json *ids = cm_json_new_object();
	struct cm_json *learned = cm_json_new_object();
	struct orch_res_ids a = {.json = ids}, b = {.json = learned};
	struct orch_job_list l;
	struct orch_job *job;
	struct cm_err err;
	size_t idx;

	(void)state;
	cm_json_add_str(ids, "volumeId", "vol-0abc");
	cm_json_add_str(ids, "state", "creating");
	cm_json_add_str(learned, "state", "attached");
	cm_json_add_str(learned, "instanceId", "i-1");
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	job = orch_job_new("aws", "snap-1", "arn:aws:ec2:r::snapshot/snap-1",
			   "arn:aws:ec2:r:1:volume/vol-1");
	assert_int_equal(orch_journal_res_add(j, job, "ebs-volume", &a, &idx,
					      &err), 0);
	assert_int_equal(orch_journal_res_created(j, job, idx, &b, &err), 0);
	assert_int_equal(orch_journal_res_add(j, job, "EBS volume", &a, &idx,
					      &err), -EINVAL);
	assert_non_null(strstr(err.msg, "EBS volume"));
	assert_int_equal(job->nres, 1);
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.jobs[0]->nres, 1);
	assert_string_equal(l.jobs[0]->res[0].kind, "ebs-volume");
	assert_false(orch_res_kind_engine(l.jobs[0]->res[0].kind));
	assert_true(orch_res_kind_engine(ORCH_RES_UPLOAD));
	assert_int_equal(l.jobs[0]->res[0].status, ORCH_RES_CREATED);
	assert_string_equal(cm_json_get_str(l.jobs[0]->res[0].ids,
					    "volumeId"), "vol-0abc");
	assert_string_equal(cm_json_get_str(l.jobs[0]->res[0].ids, "state"),
			    "attached");
	assert_string_equal(cm_json_get_str(l.jobs[0]->res[0].ids,
					    "instanceId"), "i-1");
	orch_job_list_release(&l);
	cm_json_free(ids);
	cm_json_free(learned);
	orch_job_free(job);
	orch_journal_close(j);
}

/* ---- crashes and corruption -------------------------------------------- */

static void test_corrupt_and_partial(void **state)
{
	struct orch_journal *j = NULL;
	struct orch_job_list l;
	struct orch_job *good;
	struct cm_err err;
	char name[64], bad_id[ORCH_JOB_ID_SIZE];
	char *text;
	const char *bad[4];

	(void)state;
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	good = orch_job_new("v", "a", "/v/a", "local:v:a");
	assert_int_equal(orch_journal_save(j, good, &err), 0);
	orch_journal_close(j);

	/* a crash mid-save leaves only a partial temp file */
	snprintf(name, sizeof(name), "%s.json.tmp", good->id);
	write_text(name, "{ \"version\": 1, \"id\": \"");
	/* damaged files under final names */
	orch_job_id_new(bad_id);
	snprintf(name, sizeof(name), "%s.json", bad_id);
	write_text(name, "{ \"version\": 1, \"id\": \"");  /* truncated */
	bad[0] = cm_xstrdup(name);
	orch_job_id_new(bad_id);
	snprintf(name, sizeof(name), "%s.json", bad_id);
	write_text(name, "");                              /* empty */
	bad[1] = cm_xstrdup(name);
	orch_job_id_new(bad_id);
	snprintf(name, sizeof(name), "%s.json", bad_id);
	text = cm_xasprintf("{\"version\": 1, \"id\": \"%s\", \"vault\": "
			    "\"v\", \"recoveryPoint\": {\"path\": \"p\", "
			    "\"resourceId\": \"r\"}, \"state\": \"dancing\", "
			    "\"attempts\": 0}", bad_id);
	write_text(name, text);                            /* bad state */
	free(text);
	bad[2] = cm_xstrdup(name);
	write_text("notanid.json", "{}");                  /* bad name */
	bad[3] = "notanid.json";
	write_text("README", "not a journal file");        /* ignored */

	/* read-only: counted, left in place */
	assert_int_equal(orch_journal_read(tmp, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ncorrupt, 4);
	orch_job_list_release(&l);
	assert_true(exists(bad[0]));

	/* open: the temp file goes; load: the bad ones are moved aside */
	assert_int_equal(orch_journal_open(tmp, &j, &err), 0);
	snprintf(name, sizeof(name), "%s.json.tmp", good->id);
	assert_false(exists(name));
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ncorrupt, 4);
	assert_string_equal(l.jobs[0]->id, good->id);
	orch_job_list_release(&l);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s.corrupt", bad[i]);
		assert_false(exists(bad[i]));
		assert_true(exists(name));
	}
	assert_true(exists("README"));
	assert_int_equal(orch_journal_load_all(j, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ncorrupt, 0);
	orch_job_list_release(&l);
	orch_journal_close(j);
	for (int i = 0; i < 3; i++)
		free((char *)bad[i]);
	orch_job_free(good);
}

static void test_read_missing_dir(void **state)
{
	char *none = cm_xasprintf("%s/none", tmp);
	struct orch_job_list l;
	struct cm_err err;

	(void)state;
	assert_int_equal(orch_journal_read(none, 0, &l, &err), 0);
	assert_int_equal(l.n, 0);
	orch_job_list_release(&l);
	free(none);
}

/* ---- job ids ----------------------------------------------------------- */

static void test_job_ids(void **state)
{
	enum { N = 5000 };
	char (*ids)[ORCH_JOB_ID_SIZE] = calloc(N, ORCH_JOB_ID_SIZE);
	char id[ORCH_JOB_ID_SIZE];

	(void)state;
	orch_job_id_format(1795725916123ull, 0x3f9a1c0b, id);
	assert_string_equal(id, "20261126T204516.123Z-3f9a1c0b");
	assert_true(orch_job_id_valid(id));
	for (int i = 0; i < N; i++) {
		orch_job_id_new(ids[i]);
		assert_int_equal(strlen(ids[i]), ORCH_JOB_ID_LEN);
		assert_true(orch_job_id_valid(ids[i]));
		if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
			fail_msg("%s then %s", ids[i - 1], ids[i]);
	}
	free(ids);
	assert_false(orch_job_id_valid(NULL));
	assert_false(orch_job_id_valid(""));
	assert_false(orch_job_id_valid("20261126T204516.123Z-3f9a1c0"));
	assert_false(orch_job_id_valid("20261126T204516.123Z-3F9A1C0B"));
	assert_false(orch_job_id_valid("20261126T204516.123Z/3f9a1c0b"));
	assert_false(orch_job_id_valid("../../../../../etc/passwd.json"));
}

/* ---- keys -------------------------------------------------------------- */

static void test_archive_names(void **state)
{
	(void)state;
	assert_string_equal(orch_archive_name(ORCH_ARCHIVE_TREE,
					      ARC_CODEC_GZIP), "backup.tar.gz");
	assert_string_equal(orch_archive_name(ORCH_ARCHIVE_RAW,
					      ARC_CODEC_GZIP), "rawbackup.gz");
	assert_string_equal(orch_archive_name(ORCH_ARCHIVE_TREE,
					      ARC_CODEC_ZSTD),
			    "backup.tar.zst");
	assert_string_equal(orch_archive_name(ORCH_ARCHIVE_RAW,
					      ARC_CODEC_ZSTD), "rawbackup.zst");
	assert_string_equal(orch_archive_name(ORCH_ARCHIVE_TREE,
					      ARC_CODEC_NONE), "backup.tar");
	assert_string_equal(orch_archive_name(ORCH_ARCHIVE_RAW,
					      ARC_CODEC_NONE), "rawbackup.img");
}

static void test_key_layout(void **state)
{
	const char *id = "20261126T204516.123Z-3f9a1c0b";
	time_t t = 1795725916; /* 2026-11-26T20:45:16Z */
	struct cm_err err;
	char *dir;

	(void)state;
	/* the seed's layout, ARN unchanged */
	assert_int_equal(orch_key_job_dir("backups", "arn:aws:ec2:us-east-1:"
					  "123456789012:snapshot/snap-0abc",
					  t, id, &dir, &err), 0);
	assert_string_equal(dir, "backups/arn/aws/ec2/us-east-1/123456789012/"
			    "snapshot/snap-0abc/Y=2026/M=11/D=26/"
			    "20261126T204516.123Z-3f9a1c0b/");
	free(dir);
	/* no prefix, a local id; the date is t's (UTC) */
	assert_int_equal(orch_key_job_dir("", "local:vault:disk.img",
					  86400 * 31, id, &dir, &err), 0);
	assert_string_equal(dir, "local/vault/disk.img/Y=1970/M=02/D=01/"
			    "20261126T204516.123Z-3f9a1c0b/");
	free(dir);
	assert_int_equal(orch_key_job_dir("a/b/", "x", t, id, &dir, &err), 0);
	assert_string_equal(dir, "a/b/x/Y=2026/M=11/D=26/"
			    "20261126T204516.123Z-3f9a1c0b/");
	free(dir);
	assert_int_equal(orch_key_job_dir(NULL, "x", t, "bad", &dir, &err),
			 -EINVAL);
	assert_int_equal(orch_key_job_dir("../up", "x", t, id, &dir, &err),
			 -EINVAL);
	assert_int_equal(orch_key_job_dir("", "", t, id, &dir, &err),
			 -EINVAL);
}

static void test_hostile_resource_ids(void **state)
{
	static const struct {
		const char *id;
		const char *path;
	} cases[] = {
		{ "arn:aws:s3:::bucket", "arn/aws/s3/_/_/bucket" },
		{ "..", "%2E%2E" },
		{ ".", "%2E" },
		{ "../../etc/passwd", "%2E%2E/%2E%2E/etc/passwd" },
		{ "/etc/passwd", "_/etc/passwd" },
		{ "a//b/", "a/_/b/_" },
		{ "a/./b", "a/%2E/b" },
		{ "...", "..." },
		{ "a\x01\nb\x7f", "a%01%0Ab%7F" },
		{ "sp ace%25", "sp%20ace%2525" },
		{ "caf\xc3\xa9", "caf%C3%A9" },
		{ "back\\slash", "back%5Cslash" },
		{ "local:v:disk-1_2.img", "local/v/disk-1_2.img" },
	};
	struct cm_err err;
	char *out, *store, *path, *resolved;
	char big[400];

	(void)state;
	store = cm_xasprintf("%s/store", tmp);
	mkdir(store, 0755);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *cmd;
		char real_store[PATH_MAX];

		assert_int_equal(orch_key_resource_path(cases[i].id, &out,
							&err), 0);
		if (strcmp(out, cases[i].path) != 0)
			fail_msg("\"%s\" -> \"%s\", want \"%s\"", cases[i].id,
				 out, cases[i].path);
		assert_true(orch_key_is_safe(out));
		/* and on a real filesystem it stays below the store */
		assert_int_equal(orch_key_local_path(store, out, &path, &err),
				 0);
		cmd = cm_xasprintf("mkdir -p '%s'", path);
		assert_int_equal(system(cmd), 0);
		resolved = realpath(path, NULL);
		assert_non_null(resolved);
		assert_non_null(realpath(store, real_store));
		assert_true(strncmp(resolved, real_store,
				    strlen(real_store)) == 0);
		assert_int_equal(resolved[strlen(real_store)], '/');
		free(resolved);
		free(cmd);
		free(path);
		free(out);
	}
	free(store);

	memset(big, 'a', 300);
	big[300] = '\0';
	assert_int_equal(orch_key_resource_path(big, &out, &err),
			 -ENAMETOOLONG);
	assert_int_equal(orch_key_resource_path("", &out, &err), -EINVAL);
	assert_int_equal(orch_key_resource_path(NULL, &out, &err), -EINVAL);

	/* random bytes never give an unsafe key */
	srand(7);
	for (int n = 0; n < 2000; n++) {
		char id[48];
		size_t len = 1 + (size_t)rand() % 40;
		static const char alphabet[] = "./:%\\ \x01\xff" "ab";

		for (size_t k = 0; k < len; k++)
			id[k] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
		id[len] = '\0';
		assert_int_equal(orch_key_resource_path(id, &out, &err), 0);
		if (!orch_key_is_safe(out))
			fail_msg("unsafe key \"%s\"", out);
		free(out);
	}
}

/* line: 0 the scanner must take it, 1 leave it to the JSON parser */
static void check_line(const char *line, int want_scan)
{
	struct orch_job *a = NULL, *b = NULL, *c = NULL;
	struct cm_json *j = NULL;
	struct cm_err err;
	char why[256];

	cm_err_clear(&err);
	if (orch_job_scan_record(line, strlen(line), &a) != want_scan)
		fail_msg("the scanner %s %s", want_scan ? "takes" : "refuses",
			 line);
	assert_int_equal(cm_json_parse(line, strlen(line), &j, &err), 0);
	if (orch_job_from_record(j, &b, why, sizeof(why)) != 0)
		fail_msg("the JSON parser refuses %s: %s", line, why);
	assert_int_equal(orch_job_from_record_line(line, strlen(line), &c,
						   why, sizeof(why)),
			 0);
	same_job(b, c);
	if (a)
		same_job(a, b);
	orch_job_free(a);
	orch_job_free(b);
	orch_job_free(c);
	cm_json_free(j);
}

/* The index's hand-written record reader takes every record the writer
 * makes (hostile strings included) and reads it as the JSON parser does;
 * what it does not know it leaves to the parser. */
static void test_record_scanner(void **state)
{
	static const char *const paths[] = {
		"/v/plain.img", "/v/quote\"back\\slash/",
		"/v/ctl\x01\x1f\ttab\nnl\rcr\b\f", "/v/utf8-\xc3\xa9\xe2\x82\xac",
	};
	struct orch_job *job;
	char *text;

	(void)state;
	for (int i = 0; i < ORCH_JOB_NSTATES; i++) {
		for (size_t p = 0; p < sizeof(paths) / sizeof(*paths); p++) {
			job = orch_job_new("v\"1", "snap:1\"x", paths[p],
					   "local:v:x");
			for (int k = 1; k <= i; k++)
				orch_job_set_state(job,
						   (enum orch_job_state)k);
			job->attempts = (unsigned)i;
			job->bytes_read = (uint64_t)i << 40;
			job->bytes_total = (1ull << 49) + p; /* 15 digits */
			if (p % 2) {
				struct stat st;

				assert_int_equal(stat("/", &st), 0);
				orch_rp_identity_from_stat(&job->rp_id, &st);
				job->rp_size = 1048576 + p;
				job->rp_mtime = 1795639516;
			}
			if (i >= ORCH_JOB_SUCCEEDED)
				orch_job_set_result(job, paths[p], 12345,
						    p ? "abc-2" : NULL,
						    p > 1 ? "00ff" : NULL);
			if (i == ORCH_JOB_INCOMPLETE)
				job->result_incomplete =
				    cm_xstrdup("2 items: \"a\"");
			if (i == ORCH_JOB_FAILED)
				orch_job_set_error(job, paths[p]);
			job->verified = p & 1;
			job->snapshot_deleted = p & 2;
			if (p) { /* an export, whole or in part */
				job->export_task = p != 2 ?
					cm_xstrdup(paths[p]) : NULL;
				job->export_status = p > 1 ?
					cm_xstrdup("IN_PROGRESS") : NULL;
				job->export_percent = p == 3 ? 42 : -1;
				job->export_detail = p == 3 ?
					cm_xstrdup("18.3 GB \"x\"") : NULL;
			}
			if (p == 1) { /* an EBS snapshot's blocks */
				job->blocks_fetched = 4000 + (uint64_t)i;
				job->blocks_total = 4096;
			}
			text = orch_job_record_text(job);
			check_line(text, 0);
			free(text);
			orch_job_free(job);
		}
	}
	/* members in another order, a state of a newer vaultfs, a count
	 * printed with an exponent, a \u escape past ASCII: the parser's */
	check_line("{\"vault\":\"v\",\"id\":\"20261126T204516.123Z-3f9a1c0b\","
		   "\"recoveryPoint\":{\"path\":\"/v/a\",\"resourceId\":\"r\"},"
		   "\"state\":\"failed\",\"attempts\":1}",
		   1);
	check_line("{\"id\":\"20261126T204516.123Z-3f9a1c0b\",\"vault\":\"v\","
		   "\"recoveryPoint\":{\"path\":\"/v/a\",\"resourceId\":\"r\"},"
		   "\"state\":\"frozen\",\"attempts\":1,\"times\":{},"
		   "\"progress\":{\"bytesRead\":0,\"bytesTotal\":0,"
		   "\"bytesWritten\":0}}\n",
		   1);
	check_line("{\"id\":\"20261126T204516.123Z-3f9a1c0b\",\"vault\":\"v\","
		   "\"recoveryPoint\":{\"path\":\"/v/a\",\"resourceId\":\"r\","
		   "\"size\":1e+15},\"state\":\"failed\",\"attempts\":1,"
		   "\"times\":{},\"progress\":{\"bytesRead\":0,\"bytesTotal\":0,"
		   "\"bytesWritten\":0}}\n",
		   1);
	check_line("{\"id\":\"20261126T204516.123Z-3f9a1c0b\",\"vault\":\"\\u00e9\","
		   "\"recoveryPoint\":{\"path\":\"/v/a\",\"resourceId\":\"r\"},"
		   "\"state\":\"failed\",\"attempts\":1,\"times\":{},"
		   "\"progress\":{\"bytesRead\":0,\"bytesTotal\":0,"
		   "\"bytesWritten\":0}}\n",
		   1);
}

static void test_key_is_safe(void **state)
{
	struct cm_err err;
	char *p;

	(void)state;
	assert_true(orch_key_is_safe("a"));
	assert_true(orch_key_is_safe("a/b/c.tar.gz"));
	assert_true(orch_key_is_safe("a/b/"));
	assert_true(orch_key_is_safe("..a/b.."));
	assert_false(orch_key_is_safe(NULL));
	assert_false(orch_key_is_safe(""));
	assert_false(orch_key_is_safe("/a"));
	assert_false(orch_key_is_safe("/"));
	assert_false(orch_key_is_safe("a//b"));
	assert_false(orch_key_is_safe("a/../b"));
	assert_false(orch_key_is_safe(".."));
	assert_false(orch_key_is_safe("a/."));
	assert_false(orch_key_is_safe("./a"));
	assert_false(orch_key_is_safe("a\nb"));
	assert_false(orch_key_is_safe("a/b//"));

	assert_int_equal(orch_key_local_path("/store/", "a/b", &p, &err), 0);
	assert_string_equal(p, "/store/a/b");
	free(p);
	assert_int_equal(orch_key_local_path("/", "a", &p, &err), 0);
	assert_string_equal(p, "/a");
	free(p);
	assert_int_equal(orch_key_local_path("/store", "../etc", &p, &err),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: its children must meet a fresh fault switch */
		cmocka_unit_test(test_save_faults),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_creates_dirs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_every_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_identity_and_node, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resources, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_and_partial,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_missing_dir, setup,
						teardown),
		cmocka_unit_test(test_job_ids),
		cmocka_unit_test(test_archive_names),
		cmocka_unit_test_setup_teardown(test_key_layout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_resource_ids,
						setup, teardown),
		cmocka_unit_test(test_key_is_safe),
		cmocka_unit_test_setup_teardown(test_rp_name_with_colon, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rp_name_of_old_journal,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_resource, setup,
						teardown),
		cmocka_unit_test(test_record_scanner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
