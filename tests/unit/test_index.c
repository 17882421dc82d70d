/*
 * test_index.c - the index of finished jobs (orchestrator/index.h): the
 * file written and read back, records appended behind the old ones byte
 * for byte, states and fields of a newer vaultfs kept, torn and corrupt
 * files refused with the file's name, a failed write leaving the old file,
 * and the table's lookups.
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
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "orchestrator/index.h"
#include "orchestrator/journal.h"

#include "tmpdir.h"


static int setup(void **state)
{
	(void)state;
	return tmpdir_make("index");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static char *index_text(void)
{
	char path[PATH_MAX], *text;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", tmp, ORCH_INDEX_NAME);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = cm_xmalloc((size_t)n + 1);
	text[fread(text, 1, (size_t)n, f)] = '\0';
	fclose(f);
	return text;
}

static void write_index(const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, ORCH_INDEX_NAME);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A finished job of recovery point /v/NAME. */
static struct orch_job *finished(const char *name, enum orch_job_state st,
				 uint64_t size)
{
	char path[64], res[64], url[128];
	struct orch_job *j;

	snprintf(path, sizeof(path), "/v/%s", name);
	snprintf(res, sizeof(res), "local:v:%s", name);
	j = orch_job_new("v", name, path, res);
	j->rp_size = size;
	j->rp_mtime = 1795639516;
	j->attempts = 1;
	orch_job_set_state(j, ORCH_JOB_ARCHIVING);
	orch_job_set_state(j, st);
	if (st == ORCH_JOB_SUCCEEDED) {
		snprintf(url, sizeof(url), "/store/%s/backup.tar.gz", name);
		orch_job_set_result(j, url, size / 2, NULL,
				    "0123456789abcdef0123456789abcdef"
				    "0123456789abcdef0123456789abcdef");
		j->verified = true;
	} else {
		orch_job_set_error(j, "it broke");
	}
	return j;
}

static void write_jobs(struct orch_job **jobs, size_t n,
		       const struct orch_index_pos *keep, uint64_t *offs)
{
	struct orch_index_writer *w;
	struct cm_err err;

	cm_err_clear(&err);
	assert_int_equal(orch_index_writer_open(tmp, keep, &w, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(orch_index_writer_add(w, jobs[i], &offs[i],
						       &err), 0);
	assert_int_equal(orch_index_writer_commit(w, NULL, &err), 0);
}

static void test_round_trip(void **state)
{
	struct orch_job *jobs[3], *back;
	struct orch_index *ix = orch_index_new();
	struct orch_index_pos pos;
	struct orch_index_hit hit;
	struct cm_err err;
	size_t by_state[ORCH_JOB_NSTATES] = { 0 }, other = 0;
	uint64_t offs[3], archived = 0;
	char *text;

	(void)state;
	cm_err_clear(&err);
	/* no file: an empty index, not an error */
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
	assert_int_equal(pos.end, 0);
	assert_int_equal(orch_index_count(ix), 0);

	jobs[0] = finished("a.img", ORCH_JOB_SUCCEEDED, 1000);
	jobs[1] = finished("b.img", ORCH_JOB_FAILED, 2000);
	jobs[2] = finished("c.img", ORCH_JOB_SUCCEEDED, 3000);
	write_jobs(jobs, 3, NULL, offs);
	text = index_text();
	assert_non_null(text);
	assert_memory_equal(text, "{\"vaultfsIndex\":1}\n", 19);
	assert_non_null(strstr(text, "\n{\"end\":3}\n"));
	free(text);

	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
	assert_int_equal(orch_index_count(ix), 3);
	assert_int_equal(pos.count, 3);
	orch_index_counts(ix, by_state, &other, &archived);
	assert_int_equal(by_state[ORCH_JOB_SUCCEEDED], 2);
	assert_int_equal(by_state[ORCH_JOB_FAILED], 1);
	assert_int_equal(other, 0);
	assert_int_equal(archived, 500 + 1500);

	/* lookups: by id, by identity (exactly), by name */
	assert_true(orch_index_find_id(ix, jobs[1]->id, &hit));
	assert_int_equal(hit.state, ORCH_JOB_FAILED);
	assert_int_equal(hit.where, offs[1]);
	assert_true(orch_index_find_rp(ix, "v", "/v/c.img", "local:v:c.img",
				       3000, 1795639516, NULL, &hit));
	assert_string_equal(hit.id, jobs[2]->id);
	assert_false(orch_index_find_rp(ix, "v", "/v/c.img", "local:v:c.img",
					3001, 1795639516, NULL, &hit));
	assert_false(orch_index_find_rp(ix, "v", "/v/c.img", "local:v:c.img",
					3000, 1795639517, NULL, &hit));
	assert_true(orch_index_find_name(ix, "v", "a.img", &hit));
	assert_string_equal(hit.id, jobs[0]->id);
	assert_false(orch_index_find_name(ix, "w", "a.img", &hit));

	/* the full record back from its offset */
	assert_int_equal(orch_index_load_record(tmp, offs[2], &back, &err),
			 0);
	assert_string_equal(back->id, jobs[2]->id);
	assert_string_equal(back->rp_path, "/v/c.img");
	assert_int_equal(back->rp_size, 3000);
	assert_int_equal(back->rp_mtime, 1795639516);
	assert_int_equal(back->state, ORCH_JOB_SUCCEEDED);
	assert_string_equal(back->result_url, "/store/c.img/backup.tar.gz");
	assert_int_equal(back->result_size, 1500);
	assert_true(back->verified);
	assert_int_equal(back->times[ORCH_JOB_SUCCEEDED],
			 jobs[2]->times[ORCH_JOB_SUCCEEDED]);
	orch_job_free(back);
	orch_index_free(ix);

	/* a new file keeps the old records where they were */
	{
		struct orch_job *more = finished("d.img", ORCH_JOB_CANCELLED,
						 1);
		uint64_t off;

		write_jobs(&more, 1, &pos, &off);
		ix = orch_index_new();
		assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
		assert_int_equal(orch_index_count(ix), 4);
		assert_int_equal(pos.count, 4);
		for (size_t i = 0; i < 3; i++) {
			assert_true(orch_index_find_id(ix, jobs[i]->id, &hit));
			assert_int_equal(hit.where, offs[i]);
		}
		assert_int_equal(orch_index_load_record(tmp, off, &back,
							&err), 0);
		assert_string_equal(back->id, more->id);
		assert_int_equal(back->state, ORCH_JOB_CANCELLED);
		orch_job_free(back);
		orch_job_free(more);
		orch_index_free(ix);
	}
	for (size_t i = 0; i < 3; i++)
		orch_job_free(jobs[i]);
}

/* A record a newer vaultfs wrote: a state ("quarantined") and fields
 * unknown here. */
#define FUTURE_RECORD                                                        \
	"{\"id\":\"20261201T101010.123Z-0badcafe\",\"vault\":\"v\","       \
	"\"recoveryPoint\":{\"path\":\"/v/x.img\",\"resourceId\":"          \
	"\"local:v:x.img\",\"size\":7,\"mtime\":1795639516,\"dev\":2049,"  \
	"\"ino\":1234,\"ctimeNs\":1795639516123456789},"                   \
	"\"state\":\"quarantined\",\"attempts\":1,\"times\":{\"queued\":"    \
	"\"2026-12-01T10:10:10Z\"},\"incomplete\":{\"reason\":\"1 file "   \
	"unreadable\"}}\n"

static void test_unknown_kept(void **state)
{
	struct orch_index *ix = orch_index_new();
	struct orch_index_pos pos;
	struct orch_index_hit hit;
	struct orch_job *j, *back;
	struct cm_err err;
	size_t by_state[ORCH_JOB_NSTATES] = { 0 }, other = 0;
	uint64_t off;
	char *text;

	(void)state;
	cm_err_clear(&err);
	write_index("{\"vaultfsIndex\":1}\n" FUTURE_RECORD "{\"end\":1}\n");
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
	assert_true(orch_index_find_id(ix, "20261201T101010.123Z-0badcafe",
				       &hit));
	assert_int_equal(hit.state, -1);
	assert_string_equal(hit.state_name, "quarantined");
	orch_index_counts(ix, by_state, &other, NULL);
	assert_int_equal(other, 1);
	assert_true(orch_index_find_rp(ix, "v", "/v/x.img", "local:v:x.img",
				       7, 1795639516, NULL, &hit));

	/* read back here: final, and says what it was */
	assert_int_equal(orch_index_load_record(tmp, hit.where, &back, &err),
			 0);
	assert_int_equal(back->state, ORCH_JOB_FAILED);
	assert_non_null(strstr(back->last_error, "\"quarantined\""));
	orch_job_free(back);

	/* a new file carries the record over byte for byte */
	j = finished("y.img", ORCH_JOB_SUCCEEDED, 10);
	write_jobs(&j, 1, &pos, &off);
	text = index_text();
	assert_non_null(strstr(text, FUTURE_RECORD));
	assert_non_null(strstr(text, "\n{\"end\":2}\n"));
	free(text);
	orch_job_free(j);
	orch_index_free(ix);
}

/* The file must be refused, naming itself and the problem. */
static void refused(const char *text, const char *what)
{
	struct orch_index *ix = orch_index_new();
	struct cm_err err;

	cm_err_clear(&err);
	write_index(text);
	assert_int_equal(orch_index_load(tmp, ix, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, tmp));
	assert_non_null(strstr(err.msg, ORCH_INDEX_NAME));
	if (!strstr(err.msg, what))
		fail_msg("\"%s\" does not say \"%s\"", err.msg, what);
	orch_index_free(ix);
	/* status reads it the same way */
	cm_err_clear(&err);
	assert_int_equal(orch_index_read(tmp, NULL, NULL, NULL, &err),
			 -EINVAL);
}

static void test_torn_and_corrupt(void **state)
{
	(void)state;
	/* cut off after a record: no end line */
	refused("{\"vaultfsIndex\":1}\n" FUTURE_RECORD, "torn");
	/* cut off inside a record */
	refused("{\"vaultfsIndex\":1}\n{\"id\":\"2026", "line 2");
	/* a record lost: the count says so */
	refused("{\"vaultfsIndex\":1}\n" FUTURE_RECORD "{\"end\":2}\n",
		"end line");
	/* garbage in the middle */
	refused("{\"vaultfsIndex\":1}\n" FUTURE_RECORD "x\n{\"end\":1}\n",
		"line 3");
	/* empty, or not ours */
	refused("", "empty");
	refused("{\"something\":1}\n{\"end\":0}\n", "not a vaultfs index");
	refused("{\"vaultfsIndex\":2}\n{\"end\":0}\n", "version 2");
	/* a record without its recovery point */
	refused("{\"vaultfsIndex\":1}\n{\"id\":\"20261201T101010.123Z-"
		"0badcafe\",\"state\":\"failed\"}\n{\"end\":1}\n",
		"line 2: job 20261201T101010.123Z-0badcafe: vault or "
		"recoveryPoint missing");
}

/* A write that fails part way leaves the old file whole and no temp file
 * (in a child: the fault switch reads VAULTFS_FAULT once). */
static int fault_child(const char *rule, const char *step)
{
	struct orch_index_writer *w = NULL;
	struct orch_job *j = finished("a.img", ORCH_JOB_SUCCEEDED, 1);
	struct orch_index_pos pos;
	struct cm_err err;
	char path[PATH_MAX];
	uint64_t off;
	int rc;

	setenv("VAULTFS_FAULT", rule, 1);
	cm_err_clear(&err);
	write_index("{\"vaultfsIndex\":1}\n" FUTURE_RECORD "{\"end\":1}\n");
	if (orch_index_read(tmp, NULL, NULL, &pos, &err))
		return 10;
	rc = orch_index_writer_open(tmp, &pos, &w, &err);
	if (rc == 0)
		rc = orch_index_writer_add(w, j, &off, &err);
	if (rc == 0)
		rc = orch_index_writer_commit(w, NULL, &err);
	else
		orch_index_writer_abort(w);
	if (rc == 0 || !strstr(err.msg, step))
		return 11;
	if (orch_index_read(tmp, NULL, NULL, &pos, &err) || pos.count != 1)
		return 12;
	snprintf(path, sizeof(path), "%s/%s.tmp", tmp, ORCH_INDEX_NAME);
	if (access(path, F_OK) == 0)
		return 13;
	orch_job_free(j);
	return 0;
}

static void run_fault(const char *rule, const char *step)
{
	pid_t pid;
	int st;

	assert_int_equal(setup(NULL), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fault_child(rule, step));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st))
		fail_msg("%s: step %d", rule, WEXITSTATUS(st));
	assert_int_equal(teardown(NULL), 0);
}

static void test_faults(void **state)
{
	(void)state;
	run_fault("index.write@2", "write"); /* the copy, then the record */
	run_fault("index.write@3", "write"); /* the end line */
	run_fault("index.fsync@1", "fsync");
	run_fault("index.rename@1", "rename");
}

/* Many jobs of one recovery point: the newest answers. */
/* The index matches a recovery point as the engine matches the jobs in
 * memory (orch_rp_identity_same_file): another file - device and inode -
 * of the same name, size and mtime is not the one archived; a record
 * that knows no file (an older vaultfs) matches any. */
static void test_same_file(void **state)
{
	struct orch_rp_identity a = { .known = true, .dev = 8, .ino = 100 };
	struct orch_rp_identity b = a, c = a, unknown = { 0 };
	struct orch_index *ix = orch_index_new();
	struct orch_job *jobs[3];
	struct orch_index_pos pos;
	struct orch_index_hit hit;
	struct cm_err err;
	uint64_t offs[3];

	(void)state;
	b.ino = 200;
	c.ino = 300;
	assert_true(orch_rp_identity_same_file(&a, &a));
	assert_false(orch_rp_identity_same_file(&a, &b));
	assert_false(orch_rp_identity_same_file(&b, &a));
	assert_true(orch_rp_identity_same_file(&a, &unknown));
	assert_true(orch_rp_identity_same_file(NULL, &a));
	jobs[0] = finished("d.img", ORCH_JOB_SUCCEEDED, 4096);
	jobs[1] = finished("d.img", ORCH_JOB_FAILED, 4096);
	jobs[2] = finished("e.img", ORCH_JOB_SUCCEEDED, 4096);
	for (int i = 0; i < 3; i++)
		orch_job_id_format(1795639516000ULL + (uint64_t)i * 1000,
				   (unsigned)i, jobs[i]->id);
	jobs[0]->rp_id = a;
	jobs[1]->rp_id = b; /* newer: the file was replaced */
	write_jobs(jobs, 3, NULL, offs);
	cm_err_clear(&err);
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);

	assert_true(orch_index_find_rp(ix, "v", "/v/d.img", "local:v:d.img",
				       4096, 1795639516, &a, &hit));
	assert_string_equal(hit.id, jobs[0]->id);
	assert_true(orch_index_find_rp(ix, "v", "/v/d.img", "local:v:d.img",
				       4096, 1795639516, &b, &hit));
	assert_string_equal(hit.id, jobs[1]->id);
	/* a third file: never archived, whatever its name says */
	assert_false(orch_index_find_rp(ix, "v", "/v/d.img", "local:v:d.img",
					4096, 1795639516, &c, &hit));
	/* no identity to tell: the newest */
	assert_true(orch_index_find_rp(ix, "v", "/v/d.img", "local:v:d.img",
				       4096, 1795639516, &unknown, &hit));
	assert_string_equal(hit.id, jobs[1]->id);
	assert_true(orch_index_find_rp(ix, "v", "/v/e.img", "local:v:e.img",
				       4096, 1795639516, &c, &hit));
	assert_string_equal(hit.id, jobs[2]->id);
	for (int i = 0; i < 3; i++)
		orch_job_free(jobs[i]);
	orch_index_free(ix);
}

static void test_newest_wins(void **state)
{
	struct orch_index *ix = orch_index_new();
	struct orch_index_hit hit;
	struct orch_index_rec rec;
	char ids[3][ORCH_JOB_ID_SIZE];

	(void)state;
	orch_job_id_format(1795639516000ULL, 1, ids[0]);
	orch_job_id_format(1795639517000ULL, 2, ids[1]);
	orch_job_id_format(1795639518000ULL, 3, ids[2]);
	memset(&rec, 0, sizeof(rec));
	rec.vault = "v";
	rec.path = "/v/a.img";
	rec.resource_id = "local:v:a.img";
	rec.size = 5;
	/* added out of order: ids, not the order, say which is newest */
	rec.id = ids[1];
	rec.state = "succeeded";
	orch_index_add(ix, &rec, 0);
	rec.id = ids[0];
	rec.state = "failed";
	orch_index_add(ix, &rec, 10);
	assert_true(orch_index_find_rp(ix, "v", "/v/a.img", "local:v:a.img",
				       5, 0, NULL, &hit));
	assert_string_equal(hit.id, ids[1]);
	rec.id = ids[2];
	rec.state = "cancelled";
	orch_index_add(ix, &rec, 20);
	assert_true(orch_index_find_name(ix, "v", "a.img", &hit));
	assert_string_equal(hit.id, ids[2]);
	assert_int_equal(hit.state, ORCH_JOB_CANCELLED);
	/* and many more, through the tables' growth */
	for (uint32_t i = 0; i < 5000; i++) {
		char id[ORCH_JOB_ID_SIZE], path[32];

		orch_job_id_format(1795600000000ULL + i, i, id);
		snprintf(path, sizeof(path), "/v/n%u", i);
		rec.id = id;
		rec.path = path;
		orch_index_add(ix, &rec, i);
	}
	assert_int_equal(orch_index_count(ix), 5003);
	assert_true(orch_index_find_name(ix, "v", "n4321", &hit));
	assert_int_equal(hit.where, 4321);
	assert_true(orch_index_find_id(ix, ids[0], &hit));
	assert_int_equal(hit.where, 10);
	orch_index_free(ix);
}

static void append_tail(const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, ORCH_INDEX_TAIL_NAME);
	f = fopen(path, "a");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The tail: records appended one by one, read after the index file; a
 * cut-off append is not a record and goes with the next append; a job in
 * both files (a fold cut off before the tail went) is loaded once; a new
 * index file takes the whole tail after its old records, at the offsets
 * orch_index_tail_moved says. */
static void test_tail(void **state)
{
	struct orch_job *jobs[4], *back = NULL;
	struct orch_index *ix = orch_index_new();
	struct orch_index_pos pos;
	struct orch_index_hit hit;
	struct cm_err err;
	uint64_t where[4], off;
	char *text;

	(void)state;
	cm_err_clear(&err);
	jobs[0] = finished("a.img", ORCH_JOB_SUCCEEDED, 1000);
	jobs[1] = finished("b.img", ORCH_JOB_FAILED, 2000);
	jobs[2] = finished("c.img", ORCH_JOB_SUCCEEDED, 3000);
	jobs[3] = finished("d.img", ORCH_JOB_SUCCEEDED, 4000);
	write_jobs(jobs, 1, NULL, &off); /* a in the index file */
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(orch_index_append(tmp, &pos, jobs[i], 0,
						   &where[i], &err), 0);
		assert_false(ORCH_INDEX_IN_FILE(where[i]));
	}
	assert_int_equal(pos.tail_count, 2);
	/* a crash in the middle of the next append */
	append_tail("{\"id\":\"20261203T000000.000Z-0000");
	orch_index_free(ix);
	ix = orch_index_new();
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
	assert_int_equal(orch_index_count(ix), 3);
	assert_int_equal(pos.count, 1);
	assert_int_equal(pos.tail_count, 2);
	assert_true(pos.tail_torn);
	assert_int_equal(pos.tail_dups, 0);
	assert_true(orch_index_find_id(ix, jobs[2]->id, &hit));
	assert_int_equal(hit.where, where[2]);
	/* the next append cuts the torn line off: it goes where the whole
	 * lines end */
	off = pos.tail_end;
	assert_int_equal(orch_index_append(tmp, &pos, jobs[3], 0, &where[3],
					   &err), 0);
	assert_int_equal(where[3], ORCH_INDEX_IN_TAIL | off);
	orch_index_free(ix);
	ix = orch_index_new();
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
	assert_int_equal(orch_index_count(ix), 4);
	assert_false(pos.tail_torn);

	/* a new index file with the tail; the tail still there: each job
	 * once, the tail's counted as seen twice */
	{
		struct orch_index_writer *w;
		struct orch_index_pos now;
		uint64_t base = pos.end;

		assert_int_equal(orch_index_writer_open(tmp, &pos, &w, &err),
				 0);
		assert_int_equal(orch_index_writer_commit(w, &now, &err), 0);
		assert_int_equal(now.count, 4);
		orch_index_free(ix);
		ix = orch_index_new();
		assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
		assert_int_equal(orch_index_count(ix), 4);
		assert_int_equal(pos.tail_dups, 3);
		assert_int_equal(pos.tail_count, 3);
		/* where the records are now: at base + their tail offset */
		orch_index_tail_moved(ix, base);
		assert_true(orch_index_find_id(ix, jobs[3]->id, &hit));
		assert_true(ORCH_INDEX_IN_FILE(hit.where));
		assert_int_equal(hit.where,
				 base + (where[3] & ~ORCH_INDEX_IN_TAIL));
		assert_int_equal(orch_index_load_record(tmp, hit.where, &back,
							&err), 0);
		assert_string_equal(back->id, jobs[3]->id);
		orch_job_free(back);
		assert_int_equal(orch_index_tail_remove(tmp, &pos, &err), 0);
	}
	text = index_text();
	assert_non_null(strstr(text, "\n{\"end\":4}\n"));
	free(text);
	orch_index_free(ix);
	ix = orch_index_new();
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), 0);
	assert_int_equal(orch_index_count(ix), 4);
	assert_int_equal(pos.tail_count, 0);
	/* a whole line that is not a record is refused, naming the tail */
	append_tail("not json\n");
	orch_index_free(ix);
	ix = orch_index_new();
	assert_int_equal(orch_index_load(tmp, ix, &pos, &err), -EINVAL);
	assert_non_null(strstr(err.msg, ORCH_INDEX_TAIL_NAME ": line 1"));
	orch_index_free(ix);
	for (int i = 0; i < 4; i++)
		orch_job_free(jobs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: nothing may ask the fault switch before */
		cmocka_unit_test(test_faults),
		cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unknown_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_and_corrupt, setup,
						teardown),
		cmocka_unit_test(test_newest_wins),
		cmocka_unit_test_setup_teardown(test_same_file, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
