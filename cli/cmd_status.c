/*
 * cmd_status.c - `vaultfs status [--config F] [--json]`: the jobs of the
 * journal as a table (or JSON), read without the stateDir lock, so that it
 * works while `vaultfs run` or `vaultfs mount` is running (their progress
 * reaches the journal about once a second).
 *
 * The journal's files first, then the index of finished jobs
 * (orchestrator/index.h) in one streaming read: a job folded into the
 * index meanwhile is in one or the other (or both: listed once).
 */
#include "commands.h"

#include "config.h"
#include "index.h"
#include "journal.h"
#include "json.h"
#include "mem.h"
#include "orch.h"
#include "timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs status [--config FILE] [--json]\n\n"
		"The jobs in the journal of the configured stateDir: recovery "
		"point, state,\nprogress, size, rate, and the archive's URL or "
		"the error.\n\n"
		"options:\n"
		"  -c, --config FILE  the configuration (default: the "
		"embedded default)\n"
		"      --json         one JSON array with every field of "
		"every job\n"
		"  -h, --help         this help\n");
}

#define NCOLS 6

struct row {
	char *col[NCOLS];
};

static const char *const headers[NCOLS] = {
	"RECOVERY POINT", "STATE", "PROGRESS", "SIZE", "RATE", "RESULT",
};

static double percent(const struct orch_job_info *ji)
{
	if (ji->bytes_read >= ji->bytes_total)
		return 100.0;
	return 100.0 * (double)ji->bytes_read / (double)ji->bytes_total;
}

static void fill_row(const struct orch_job_info *ji, struct row *r)
{
	char a[32];

	r->col[0] = cm_xasprintf("%s/%s", ji->vault, ji->rp_name);
	r->col[1] = cm_xasprintf("%s%s", orch_job_state_name(ji->state),
				 ji->verified &&
				 ji->state != ORCH_JOB_SUCCEEDED &&
				 ji->state != ORCH_JOB_INCOMPLETE ?
					 " (verified)" : "");
	if (ji->state == ORCH_JOB_SUCCEEDED ||
	    ji->state == ORCH_JOB_INCOMPLETE)
		r->col[2] = cm_xstrdup("100%");
	else if (ji->bytes_total && ji->bytes_read)
		r->col[2] = cm_xasprintf("%.0f%%", percent(ji));
	else if (ji->bytes_read) {
		orch_format_bytes(ji->bytes_read, a, sizeof(a));
		r->col[2] = cm_xstrdup(a);
	} else {
		r->col[2] = cm_xstrdup("-");
	}
	if (ji->bytes_total) {
		orch_format_bytes(ji->bytes_total, a, sizeof(a));
		r->col[3] = cm_xstrdup(a);
	} else {
		r->col[3] = cm_xstrdup("-");
	}
	if (ji->rate > 0) {
		orch_format_bytes((uint64_t)ji->rate, a, sizeof(a));
		r->col[4] = cm_xasprintf("%s/s", a);
	} else {
		r->col[4] = cm_xstrdup("-");
	}
	if ((ji->state == ORCH_JOB_SUCCEEDED ||
	     ji->state == ORCH_JOB_INCOMPLETE) && ji->result_url)
		r->col[5] = cm_xasprintf("%s%s%s%s", ji->result_url,
					 ji->snapshot_deleted ?
						 " (snapshot deleted)" : "",
					 ji->error ? " - " : "",
					 ji->error ? ji->error : "");
	else if (ji->state == ORCH_JOB_WAITING)
		r->col[5] = cm_xasprintf("waiting: %s",
					 ji->error ? ji->error : "");
	else if (!ji->error && ji->blocks_total &&
		 ji->state == ORCH_JOB_ARCHIVING)
		r->col[5] = cm_xasprintf("blocks: %llu of %llu fetched",
					 (unsigned long long)ji->blocks_fetched,
					 (unsigned long long)ji->blocks_total);
	else
		r->col[5] = cm_xstrdup(ji->error ? ji->error : "");
}

static void print_table(const struct orch_job_info *jobs, size_t n)
{
	struct row *rows = cm_xcalloc(n + 1, sizeof(*rows));
	size_t width[NCOLS];
	size_t by_state[ORCH_JOB_NSTATES] = { 0 };
	bool first = true;

	for (int c = 0; c < NCOLS; c++)
		width[c] = strlen(headers[c]);
	for (size_t i = 0; i < n; i++) {
		fill_row(&jobs[i], &rows[i]);
		by_state[jobs[i].state]++;
		for (int c = 0; c < NCOLS; c++)
			if (strlen(rows[i].col[c]) > width[c])
				width[c] = strlen(rows[i].col[c]);
	}
	printf("%-*s  %-*s  %*s  %*s  %*s  %s\n", (int)width[0], headers[0],
	       (int)width[1], headers[1], (int)width[2], headers[2],
	       (int)width[3], headers[3], (int)width[4], headers[4],
	       headers[5]);
	for (size_t i = 0; i < n; i++) {
		struct row *r = &rows[i];

		printf("%-*s  %-*s  %*s  %*s  %*s  %s\n", (int)width[0],
		       r->col[0], (int)width[1], r->col[1], (int)width[2],
		       r->col[2], (int)width[3], r->col[3], (int)width[4],
		       r->col[4], r->col[5]);
		for (int c = 0; c < NCOLS; c++)
			free(r->col[c]);
	}
	printf("%zu job%s", n, n == 1 ? "" : "s");
	for (int s = 0; s < ORCH_JOB_NSTATES; s++) {
		if (!by_state[s])
			continue;
		printf("%s %zu %s", first ? ":" : ",", by_state[s],
		       orch_job_state_name((enum orch_job_state)s));
		first = false;
	}
	printf("\n");
	free(rows);
}

static void print_json(const struct orch_job_info *jobs, size_t n)
{
	struct cm_json *arr = cm_json_new_array();
	char *text;

	for (size_t i = 0; i < n; i++) {
		const struct orch_job_info *ji = &jobs[i];
		struct cm_json *o = cm_json_new_object(), *t;
		char when[32];
		long eta = orch_job_info_eta(ji);

		cm_json_add_str(o, "id", ji->id);
		cm_json_add_str(o, "vault", ji->vault);
		cm_json_add_str(o, "recoveryPoint", ji->rp_name);
		cm_json_add_str(o, "path", ji->rp_path);
		cm_json_add_str(o, "resourceId", ji->resource_id);
		cm_json_add_str(o, "state", orch_job_state_name(ji->state));
		cm_json_add_num(o, "attempts", ji->attempts);
		cm_json_add_u64(o, "bytesRead", ji->bytes_read);
		cm_json_add_u64(o, "bytesTotal", ji->bytes_total);
		cm_json_add_u64(o, "bytesWritten", ji->bytes_written);
		if (ji->blocks_total) {
			cm_json_add_u64(o, "blocksFetched", ji->blocks_fetched);
			cm_json_add_u64(o, "blocksTotal", ji->blocks_total);
		}
		cm_json_add_num(o, "rate", ji->rate);
		if (eta >= 0)
			cm_json_add_num(o, "etaSeconds", (double)eta);
		if (ji->result_url) {
			cm_json_add_str(o, "result", ji->result_url);
			cm_json_add_u64(o, "resultSize", ji->result_size);
			if (ji->result_sha256)
				cm_json_add_str(o, "sha256",
						ji->result_sha256);
		}
		cm_json_add_bool(o, "verified", ji->verified);
		cm_json_add_bool(o, "snapshotDeleted", ji->snapshot_deleted);
		if (ji->error)
			cm_json_add_str(o, "error", ji->error);
		if (ji->held)
			cm_json_add_str(o, "holds", ji->held);
		t = cm_json_add_object(o, "times");
		for (int s = 0; s < ORCH_JOB_NSTATES; s++) {
			if (!ji->times[s])
				continue;
			cm_time_iso8601(ji->times[s], when, sizeof(when));
			cm_json_add_str(t,
					orch_job_state_name(
						(enum orch_job_state)s),
					when);
		}
		cm_json_add(arr, NULL, o);
	}
	text = cm_json_print(arr);
	fputs(text, stdout);
	free(text);
	cm_json_free(arr);
}

struct infos {
	const struct orch_job_list *journal; /* sorted by id */
	struct orch_job_info *v;
	size_t n, cap;
	time_t now;
	struct cm_err *err;
};

static void infos_push(struct infos *in, const struct orch_job *job)
{
	if (in->n == in->cap) {
		in->cap = in->cap ? in->cap * 2 : 64;
		in->v = cm_xrealloc(in->v, (in->cap + 1) * sizeof(*in->v));
	}
	orch_job_info_from_job(job, in->now, &in->v[in->n++]);
}

static int by_job_id(const void *key, const void *elem)
{
	return strcmp(key, (*(struct orch_job *const *)elem)->id);
}

/* One record of the index (orch_index_read), unless the journal has it. */
static int add_record(void *ctx, const struct orch_job *job,
		      const struct cm_json *record,
		      const struct orch_index_rec *rec, uint64_t off)
{
	struct infos *in = ctx;
	struct orch_job *parsed = NULL;
	char why[256];

	(void)off;
	if (in->journal->n &&
	    bsearch(rec->id, in->journal->jobs, in->journal->n,
		    sizeof(*in->journal->jobs), by_job_id))
		return 0;
	if (!job) {
		if (orch_job_from_record(record, &parsed, why, sizeof(why)))
			return cm_err_set(in->err, EINVAL, "%s", why);
		job = parsed;
	}
	infos_push(in, job);
	orch_job_free(parsed);
	return 0;
}

static int info_by_id(const void *a, const void *b)
{
	const struct orch_job_info *x = a, *y = b;

	return strcmp(x->id, y->id);
}

int cmd_status(int argc, char **argv)
{
	const char *config = NULL;
	struct orch_config cfg;
	struct orch_job_list list = { 0 };
	struct orch_job_info *jobs = NULL;
	struct infos in = { 0 };
	struct cm_err err;
	bool json = false;
	time_t now = time(NULL);
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	rc = vf_load_config("status", config, &cfg);
	if (rc)
		return rc;
	cm_err_clear(&err);
	rc = orch_journal_read(cfg.state_dir, ORCH_LOAD_ALL, &list, &err);
	if (rc) {
		fprintf(stderr, "vaultfs: status: %s\n", err.msg);
		orch_config_release(&cfg);
		return 1;
	}
	in.journal = &list;
	in.now = now;
	in.err = &err;
	for (size_t i = 0; i < list.n; i++)
		infos_push(&in, list.jobs[i]);
	rc = orch_index_read(cfg.state_dir, add_record, &in, NULL, &err);
	if (rc) {
		fprintf(stderr, "vaultfs: status: %s\n", err.msg);
		goto out;
	}
	jobs = in.v;
	if (in.n > 1)
		qsort(jobs, in.n, sizeof(*jobs), info_by_id);
	if (json)
		print_json(jobs, in.n);
	else if (in.n == 0)
		printf("no jobs yet in %s\n", cfg.state_dir);
	else
		print_table(jobs, in.n);
	/* a provider's resources wait for their vault's provider */
	for (size_t i = 0; i < in.n; i++)
		if (jobs[i].held && !orch_config_vault(&cfg, jobs[i].vault))
			fprintf(stderr, "vaultfs: status: job %s holds %s of "
				"vault \"%s\", which is not configured: "
				"released at a start with that vault in the "
				"config\n", jobs[i].id, jobs[i].held,
				jobs[i].vault);
	if (list.ncorrupt)
		fprintf(stderr, "vaultfs: status: %zu corrupt journal file%s "
			"skipped\n", list.ncorrupt,
			list.ncorrupt == 1 ? "" : "s");
out:
	for (size_t i = 0; i < in.n; i++)
		orch_job_info_release(&in.v[i]);
	free(in.v);
	orch_job_list_release(&list);
	orch_config_release(&cfg);
	return rc ? 1 : 0;
}
