/*
 * cmd_status.c - `vaultfs status [--config F] [--json]`: the jobs of the
 * journal as a table (or JSON), read without the stateDir lock, so that it
 * works while `vaultfs run` or `vaultfs mount` is running (their progress
 * reaches the journal about once a second).
 *
 * The names of the journal's files first, then the index of finished
 * jobs and its tail (orchestrator/index.h) in one streaming read, then
 * only the files of jobs the index does not have (unfinished ones): a
 * finished job's file is never read. A job is appended to the tail while
 * its file stays, and a fold moves the tail into the index file before
 * any file goes, so a job that moves meanwhile is found in one place or
 * two (listed once).
 */
#include "commands.h"
#include "usage.h"

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

enum {
	OPT_SINCE = 300,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "json", no_argument, NULL, 'j' },
	{ "wide", no_argument, NULL, 'w' },
	{ "check", no_argument, NULL, 'k' },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

#define TABLE_WIDTH 100     /* what the table fits in, without --wide */
#define RP_MAX 36           /* RECOVERY POINT, without --wide ... */
#define RP_MIN 16           /* ... down to this to leave RESULT room */
#define RESULT_MIN 18       /* RESULT gets what is left, at least this:
			       "...f/backup.tar.gz", the file and a hint
			       of the job id; the name comes first */
#define SINCE_DEFAULT 86400 /* --check looks back a day */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs status [--config FILE] [--json | --wide | "
		"--check [--since D]]\n\n"
		"The jobs in the journal of the configured stateDir: recovery "
		"point, state,\nprogress, the recovery point's size, the "
		"archive's size, rate, time taken,\nand the archive (its key "
		"under the destination) or the error.\n\n"
		"options:\n"
		"  -c, --config FILE  the configuration (default: the "
		"embedded default)\n"
		"      --json         one JSON array with every field of "
		"every job\n"
		"  -w, --wide         whole URLs and errors (the table is cut "
		"to 100 columns\n"
		"                     otherwise)\n"
		"      --check        a health check: exit 1 if a job ended "
		"failed or\n"
		"                     incomplete within --since, 0 otherwise; "
		"one line each\n"
		"      --since D      how far --check looks back: 90s, 30m, "
		"24h (default), 7d\n"
		"  -h, --help         this help\n");
	vf_help_end(f, "status");
}

/* "24h", "30m", "7d", "90s", "3600" -> seconds; -1 when not one. */
static long parse_since(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v <= 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		v *= 60;
		break;
	case 'h':
		v *= 3600;
		break;
	case 'd':
		v *= 86400;
		break;
	default:
		return -1;
	}
	if (*end && end[1])
		return -1;
	return v;
}

#define NCOLS 8

struct row {
	char *col[NCOLS];
	bool url; /* RESULT begins with the archive's URL or key */
};

/* RP SIZE: the recovery point's (what is read), ARCHIVE: what was
 * written, TIME: from the first step to the end (or now). */
static const char *const headers[NCOLS] = {
	"RECOVERY POINT", "STATE", "PROGRESS", "RP SIZE", "ARCHIVE", "RATE",
	"TIME", "RESULT",
};

static double percent(const struct orch_job_info *ji)
{
	if (ji->bytes_read >= ji->bytes_total)
		return 100.0;
	return 100.0 * (double)ji->bytes_read / (double)ji->bytes_total;
}

static char *bytes_or_dash(uint64_t n)
{
	char a[32];

	if (!n)
		return cm_xstrdup("-");
	orch_format_bytes(n, a, sizeof(a));
	return cm_xstrdup(a);
}

/* Seconds the job has worked: from its first state after queued to its
 * end, or to now while it runs; -1: it never started. */
static long job_seconds(const struct orch_job_info *ji, time_t now)
{
	time_t start = 0, end = 0;

	for (int s = ORCH_JOB_QUEUED + 1; s < ORCH_JOB_NSTATES; s++) {
		if (!ji->times[s])
			continue;
		if (!start || ji->times[s] < start)
			start = ji->times[s];
		if (ji->times[s] > end)
			end = ji->times[s];
	}
	if (!start)
		return -1;
	if (!orch_job_state_final(ji->state) &&
	    ji->state != ORCH_JOB_WAITING)
		end = now;
	return end > start ? (long)(end - start) : 0;
}

/* "<1s", "42s", "3m05s", "2h07m", "3d04h". */
static char *duration_text(long s)
{
	if (s < 0)
		return cm_xstrdup("-");
	if (s < 1)
		return cm_xstrdup("<1s");
	if (s < 60)
		return cm_xasprintf("%lds", s);
	if (s < 3600)
		return cm_xasprintf("%ldm%02lds", s / 60, s % 60);
	if (s < 86400)
		return cm_xasprintf("%ldh%02ldm", s / 3600, s % 3600 / 60);
	return cm_xasprintf("%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

/* The archive's key under the destination (what the table shows without
 * --wide): the URL less the destination's URL or directory. */
static const char *under_destination(const struct orch_config *cfg,
				     const char *url)
{
	const char *base = cfg->store_dir;
	char s3[1024];
	size_t n;

	if (cfg->bucket) {
		snprintf(s3, sizeof(s3), "s3://%s%s%s", cfg->bucket,
			 cfg->prefix && *cfg->prefix ? "/" : "",
			 cfg->prefix ? cfg->prefix : "");
		base = s3;
	}
	if (!base)
		return url;
	n = strlen(base);
	if (strncmp(url, base, n) == 0 && url[n] == '/')
		return url + n + 1;
	return url;
}

static void fill_row(const struct orch_config *cfg, bool wide,
		     const struct orch_job_info *ji, time_t now,
		     struct row *r)
{
	const char *url = NULL;
	char a[32];

	if (ji->result_url)
		url = wide ? ji->result_url
			   : under_destination(cfg, ji->result_url);
	r->col[0] = cm_xasprintf("%s/%s", ji->vault, ji->rp_name);
	r->col[1] = cm_xasprintf("%s%s", orch_job_state_name(ji->state),
				 ji->verified &&
				 ji->state != ORCH_JOB_SUCCEEDED &&
				 ji->state != ORCH_JOB_INCOMPLETE ?
					 " (verified)" : "");
	if (ji->state == ORCH_JOB_SUCCEEDED ||
	    ji->state == ORCH_JOB_INCOMPLETE)
		r->col[2] = cm_xstrdup("100%");
	else if (ji->export_status && ji->export_percent >= 0)
		r->col[2] = cm_xasprintf("%d%%", ji->export_percent);
	else if (ji->bytes_total && ji->bytes_read)
		r->col[2] = cm_xasprintf("%.0f%%", percent(ji));
	else if (ji->bytes_read) {
		orch_format_bytes(ji->bytes_read, a, sizeof(a));
		r->col[2] = cm_xstrdup(a);
	} else {
		r->col[2] = cm_xstrdup("-");
	}
	r->col[3] = bytes_or_dash(ji->rp_size ? ji->rp_size
					      : ji->bytes_total);
	r->col[4] = bytes_or_dash(ji->result_size ? ji->result_size
						  : ji->bytes_written);
	if (ji->rate > 0) {
		orch_format_bytes((uint64_t)ji->rate, a, sizeof(a));
		r->col[5] = cm_xasprintf("%s/s", a);
	} else {
		r->col[5] = cm_xstrdup("-");
	}
	r->col[6] = duration_text(job_seconds(ji, now));
	r->url = (ji->state == ORCH_JOB_SUCCEEDED ||
		  ji->state == ORCH_JOB_INCOMPLETE) && url;
	if (r->url)
		r->col[7] = cm_xasprintf("%s%s%s%s", url,
					 ji->snapshot_deleted ?
						 " (snapshot deleted)" : "",
					 ji->error ? " - " : "",
					 ji->error ? ji->error : "");
	else if (ji->state == ORCH_JOB_WAITING)
		r->col[7] = cm_xasprintf("waiting: %s",
					 ji->error ? ji->error : "");
	else if (ji->state == ORCH_JOB_EXPORTING && ji->export_task)
		r->col[7] = cm_xasprintf("export %s: %s%s%s", ji->export_task,
					 ji->export_status ?
						 ji->export_status : "?",
					 ji->export_detail ? ", " : "",
					 ji->export_detail ?
						 ji->export_detail : "");
	else if (!ji->error && ji->blocks_total &&
		 ji->state == ORCH_JOB_ARCHIVING)
		r->col[7] = cm_xasprintf("blocks: %llu of %llu fetched",
					 (unsigned long long)ji->blocks_fetched,
					 (unsigned long long)ji->blocks_total);
	else
		r->col[7] = cm_xstrdup(ji->error ? ji->error : "");
}

enum cut { CUT_END, CUT_MIDDLE, CUT_FRONT };

/* Cut *s to `max` bytes, "..." where the cut is: at the end of an error,
 * in the middle of a name (its two ends say the most), at the front of a
 * key (its end names the job and the file, and the notes after it). */
static void fit(char **s, size_t max, enum cut how)
{
	size_t n = strlen(*s), head;
	char *out;

	if (n <= max || max < 8)
		return;
	head = how == CUT_END ? max - 3 : how == CUT_MIDDLE ? (max - 3) / 2 : 0;
	out = cm_xasprintf("%.*s...%s", (int)head, *s,
			   how == CUT_END ? "" : *s + n - (max - 3 - head));
	free(*s);
	*s = out;
}

static void print_table(const struct orch_config *cfg, bool wide,
			const struct orch_job_info *jobs, size_t n,
			time_t now)
{
	struct row *rows = cm_xcalloc(n + 1, sizeof(*rows));
	size_t width[NCOLS];
	size_t by_state[ORCH_JOB_NSTATES] = { 0 };
	size_t used = 0, rp_max = RP_MAX;
	bool first = true;

	for (int c = 0; c < NCOLS; c++)
		width[c] = strlen(headers[c]);
	for (size_t i = 0; i < n; i++) {
		fill_row(cfg, wide, &jobs[i], now, &rows[i]);
		by_state[jobs[i].state]++;
		for (int c = 1; c < NCOLS - 1; c++)
			if (strlen(rows[i].col[c]) > width[c])
				width[c] = strlen(rows[i].col[c]);
	}
	/* the columns of numbers whole; the names, then RESULT, cut to
	 * what is left of TABLE_WIDTH */
	for (int c = 1; c < NCOLS - 1; c++)
		used += width[c] + 2;
	if (used + 2 + RP_MAX + RESULT_MIN > TABLE_WIDTH)
		rp_max = TABLE_WIDTH > used + 2 + RESULT_MIN + RP_MIN ?
				 TABLE_WIDTH - used - 2 - RESULT_MIN :
				 RP_MIN;
	for (size_t i = 0; i < n; i++) {
		if (!wide)
			fit(&rows[i].col[0], rp_max, CUT_MIDDLE);
		if (strlen(rows[i].col[0]) > width[0])
			width[0] = strlen(rows[i].col[0]);
	}
	used += width[0] + 2;
	for (size_t i = 0; i < n && !wide; i++)
		fit(&rows[i].col[NCOLS - 1],
		    used + RESULT_MIN < TABLE_WIDTH ? TABLE_WIDTH - used
						    : RESULT_MIN,
		    rows[i].url ? CUT_FRONT : CUT_END);
	printf("%-*s  %-*s  %*s  %*s  %*s  %*s  %*s  %s\n", (int)width[0],
	       headers[0], (int)width[1], headers[1], (int)width[2],
	       headers[2], (int)width[3], headers[3], (int)width[4],
	       headers[4], (int)width[5], headers[5], (int)width[6],
	       headers[6], headers[7]);
	for (size_t i = 0; i < n; i++) {
		struct row *r = &rows[i];
		char *line = cm_xasprintf(
			"%-*s  %-*s  %*s  %*s  %*s  %*s  %*s  %s",
			(int)width[0], r->col[0], (int)width[1], r->col[1],
			(int)width[2], r->col[2], (int)width[3], r->col[3],
			(int)width[4], r->col[4], (int)width[5], r->col[5],
			(int)width[6], r->col[6], r->col[7]);
		size_t len = strlen(line);

		/* no trailing blanks when RESULT is empty */
		while (len && line[len - 1] == ' ')
			line[--len] = '\0';
		puts(line);
		free(line);
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

/*
 * --check: the jobs that ended failed or incomplete at or after
 * now - since, one line each on stdout; 1 if there is one, else 0 and
 * one line saying how many jobs ended well.
 */
static int check_jobs(const struct orch_job_info *jobs, size_t n,
		      time_t now, long since)
{
	size_t bad = 0, good = 0;
	char when[32];

	for (size_t i = 0; i < n; i++) {
		const struct orch_job_info *ji = &jobs[i];
		time_t end = ji->times[ji->state];

		if (!orch_job_state_final(ji->state) || end < now - since)
			continue;
		if (ji->state != ORCH_JOB_FAILED &&
		    ji->state != ORCH_JOB_INCOMPLETE) {
			good += ji->state == ORCH_JOB_SUCCEEDED;
			continue;
		}
		bad++;
		cm_time_iso8601(end, when, sizeof(when));
		printf("%s %s/%s %s at %s: %s\n", ji->id, ji->vault,
		       ji->rp_name, orch_job_state_name(ji->state), when,
		       ji->error ? ji->error : "");
	}
	if (bad) {
		printf("%zu job%s failed or incomplete in the last %ld s\n",
		       bad, bad == 1 ? "" : "s", since);
		return 1;
	}
	printf("ok: %zu job%s succeeded, none failed or incomplete in the "
	       "last %ld s\n", good, good == 1 ? "" : "s", since);
	return 0;
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
		if (ji->export_task || ji->export_status) {
			struct cm_json *x = cm_json_add_object(o, "export");

			if (ji->export_task)
				cm_json_add_str(x, "task", ji->export_task);
			if (ji->export_status)
				cm_json_add_str(x, "status",
						ji->export_status);
			if (ji->export_percent >= 0)
				cm_json_add_num(x, "percent",
						ji->export_percent);
			if (ji->export_detail)
				cm_json_add_str(x, "detail",
						ji->export_detail);
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

/* One record of the index (orch_index_read). */
static int add_record(void *ctx, const struct orch_job *job,
		      const struct cm_json *record,
		      const struct orch_index_rec *rec, uint64_t off)
{
	struct infos *in = ctx;
	struct orch_job *parsed = NULL;
	char why[256];

	(void)off;
	(void)rec;
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

/* Sorted by id, each job once (one in the index and its tail). */
static void infos_sort(struct infos *in)
{
	size_t n = 0;

	if (in->n > 1)
		qsort(in->v, in->n, sizeof(*in->v), info_by_id);
	for (size_t i = 0; i < in->n; i++) {
		if (n && strcmp(in->v[n - 1].id, in->v[i].id) == 0) {
			orch_job_info_release(&in->v[i]);
			continue;
		}
		if (n != i)
			in->v[n] = in->v[i];
		n++;
	}
	in->n = n;
}

/* The journal files of the jobs the index does not have. */
static void add_files(struct infos *in, const char *state_dir,
		      char (*ids)[ORCH_JOB_ID_SIZE], size_t nids,
		      size_t *ncorrupt)
{
	size_t indexed = in->n;

	for (size_t i = 0; i < nids; i++) {
		struct orch_job_info key;
		struct orch_job *job = NULL;
		struct cm_err e;
		int rc;

		memcpy(key.id, ids[i], sizeof(key.id));
		if (indexed && bsearch(&key, in->v, indexed, sizeof(*in->v),
				       info_by_id))
			continue;
		cm_err_clear(&e);
		rc = orch_journal_load_job(state_dir, ids[i], &job, &e);
		if (rc == -EINVAL) {
			fprintf(stderr, "vaultfs: status: %s\n", e.msg);
			(*ncorrupt)++;
		} else if (rc == -EIO) {
			fprintf(stderr, "vaultfs: status: %s (skipped)\n",
				e.msg);
		} else if (rc == 0) {
			infos_push(in, job);
			orch_job_free(job);
		} /* -ENOENT: gone meanwhile (a fold: then in the index) */
	}
	infos_sort(in);
}

int cmd_status(int argc, char **argv)
{
	const char *config = NULL;
	struct orch_config cfg;
	char (*ids)[ORCH_JOB_ID_SIZE] = NULL;
	size_t nids = 0, ncorrupt = 0;
	struct orch_job_info *jobs = NULL;
	struct infos in = { 0 };
	struct cm_err err;
	bool json = false, wide = false, check = false;
	long since = SINCE_DEFAULT;
	time_t now = time(NULL);
	int c, rc;

	optind = 1;
	while ((c = vf_getopt("status", argc, argv, "c:wh", long_opts)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'w':
			wide = true;
			break;
		case 'k':
			check = true;
			break;
		case OPT_SINCE:
			since = parse_since(optarg);
			if (since < 0)
				return vf_usage_error("status", "--since: '%s' "
						      "is not a duration (90s, "
						      "30m, 24h, 7d)", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return VF_EXIT_USAGE;
		}
	}
	rc = vf_operands("status", argc, argv, optind, "");
	if (rc)
		return rc;
	if (since != SINCE_DEFAULT && !check)
		return vf_usage_error("status", "--since goes with --check");
	if (check + json + wide > 1)
		return vf_usage_error("status", "--check, --json and --wide "
				      "go alone");
	rc = vf_load_config("status", config, &cfg);
	if (rc)
		return rc;
	cm_err_clear(&err);
	rc = orch_journal_ids(cfg.state_dir, &ids, &nids, &err);
	if (rc) {
		fprintf(stderr, "vaultfs: status: %s\n", err.msg);
		orch_config_release(&cfg);
		return 1;
	}
	in.now = now;
	in.err = &err;
	rc = orch_index_read(cfg.state_dir, add_record, &in, NULL, &err);
	if (rc == 0) {
		infos_sort(&in);
		add_files(&in, cfg.state_dir, ids, nids, &ncorrupt);
	}
	if (rc) {
		fprintf(stderr, "vaultfs: status: %s\n", err.msg);
		goto out;
	}
	jobs = in.v;
	if (in.n > 1)
		qsort(jobs, in.n, sizeof(*jobs), info_by_id);
	if (check)
		rc = check_jobs(jobs, in.n, now, since);
	else if (json)
		print_json(jobs, in.n);
	else if (in.n == 0)
		printf("no jobs yet in %s\n", cfg.state_dir);
	else
		print_table(&cfg, wide, jobs, in.n, now);
	/* a provider's resources wait for their vault's provider */
	for (size_t i = 0; i < in.n; i++)
		if (jobs[i].held && !orch_config_vault(&cfg, jobs[i].vault))
			fprintf(stderr, "vaultfs: status: job %s holds %s of "
				"vault \"%s\", which is not configured: "
				"released at a start with that vault in the "
				"config\n", jobs[i].id, jobs[i].held,
				jobs[i].vault);
	if (ncorrupt)
		fprintf(stderr, "vaultfs: status: %zu corrupt journal file%s "
			"skipped\n", ncorrupt, ncorrupt == 1 ? "" : "s");
out:
	for (size_t i = 0; i < in.n; i++)
		orch_job_info_release(&in.v[i]);
	free(in.v);
	free(ids);
	orch_config_release(&cfg);
	return rc ? 1 : 0;
}
