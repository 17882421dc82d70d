/*
 * status.c - what a job looks like to people: struct orch_job_info from a
 * journal record, its rate and ETA, and its status text (see orch.h). Pure
 * functions, no engine state: `vaultfs status` (another process, reading
 * the journal files) and the view (reading engine snapshots) share them.
 */
#include "orch.h"
#include "mem.h"
#include "timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
	return s ? cm_xstrdup(s) : NULL;
}

void orch_job_info_release(struct orch_job_info *ji)
{
	if (!ji)
		return;
	free(ji->vault);
	free(ji->rp_name);
	free(ji->rp_path);
	free(ji->resource_id);
	free(ji->result_url);
	free(ji->result_sha256);
	free(ji->error);
	free(ji->held);
	memset(ji, 0, sizeof(*ji));
}

void orch_job_info_from_job(const struct orch_job *job, time_t now,
			    struct orch_job_info *out)
{
	time_t t0 = job->times[ORCH_JOB_ARCHIVING];
	time_t t1 = job->times[ORCH_JOB_VERIFYING];

	memset(out, 0, sizeof(*out));
	memcpy(out->id, job->id, sizeof(out->id));
	out->vault = dup_or_null(job->vault);
	out->rp_name = cm_xstrdup(job->rp_name);
	out->rp_path = dup_or_null(job->rp_path);
	out->resource_id = dup_or_null(job->resource_id);
	out->state = job->state;
	out->attempts = job->attempts;
	memcpy(out->times, job->times, sizeof(out->times));
	out->rp_size = job->rp_size;
	out->bytes_read = job->bytes_read;
	out->bytes_total = job->bytes_total ? job->bytes_total : job->rp_size;
	out->bytes_written = job->bytes_written;
	out->blocks_fetched = job->blocks_fetched;
	out->blocks_total = job->blocks_total;
	out->result_url = dup_or_null(job->result_url);
	out->result_size = job->result_size;
	out->result_sha256 = dup_or_null(job->result_sha256);
	out->error = dup_or_null(job->last_error);
	for (size_t i = 0; i < job->nres; i++) {
		char *next;

		if (job->res[i].status == ORCH_RES_RELEASED)
			continue;
		next = cm_xasprintf("%s%s%s", out->held ? out->held : "",
				    out->held ? ", " : "", job->res[i].kind);
		free(out->held);
		out->held = next;
	}
	out->verified = job->verified;
	out->snapshot_deleted = job->snapshot_deleted;
	/* the rate of reading: while archiving up to now, after it over
	 * the time archiving took */
	if (t0 && job->state == ORCH_JOB_ARCHIVING && now > t0)
		out->rate = (double)job->bytes_read / (double)(now - t0);
	else if (t0 && t1 >= t0 && job->bytes_read)
		out->rate = (double)job->bytes_read /
			    (double)(t1 > t0 ? t1 - t0 : 1);
}

long orch_job_info_eta(const struct orch_job_info *ji)
{
	if (ji->state != ORCH_JOB_ARCHIVING || ji->rate <= 0 ||
	    !ji->bytes_total || ji->bytes_read > ji->bytes_total)
		return -1;
	return (long)((double)(ji->bytes_total - ji->bytes_read) / ji->rate);
}

void orch_format_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)n);
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
}

static void add_line(char **text, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_line(char **text, const char *key, const char *fmt, ...)
{
	char value[2048];
	va_list ap;
	char *next;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	next = cm_xasprintf("%s%s: %s\n", *text ? *text : "", key, value);
	free(*text);
	*text = next;
}

char *orch_job_info_text(const struct orch_job_info *ji)
{
	char *text = NULL;
	char a[32], b[32], when[32];
	long eta;

	add_line(&text, "job", "%s", ji->id);
	add_line(&text, "recovery point", "%s/%s", ji->vault, ji->rp_name);
	add_line(&text, "resource", "%s", ji->resource_id);
	add_line(&text, "state", "%s%s", orch_job_state_name(ji->state),
		 ji->waiting ? " (waiting to retry)" : "");
	add_line(&text, "attempts", "%u", ji->attempts);
	orch_format_bytes(ji->bytes_read, a, sizeof(a));
	if (ji->bytes_total) {
		orch_format_bytes(ji->bytes_total, b, sizeof(b));
		add_line(&text, "progress", "%s of %s (%.0f%%)", a, b,
			 ji->bytes_read >= ji->bytes_total ?
				 100.0 :
				 100.0 * (double)ji->bytes_read /
					 (double)ji->bytes_total);
	} else {
		add_line(&text, "progress", "%s", a);
	}
	if (ji->blocks_total)
		add_line(&text, "blocks", "%llu of %llu fetched",
			 (unsigned long long)ji->blocks_fetched,
			 (unsigned long long)ji->blocks_total);
	if (ji->rate > 0) {
		orch_format_bytes((uint64_t)ji->rate, a, sizeof(a));
		add_line(&text, "rate", "%s/s", a);
	}
	eta = orch_job_info_eta(ji);
	if (eta >= 0)
		add_line(&text, "eta", "%ld s", eta);
	for (int s = 0; s < ORCH_JOB_NSTATES; s++) {
		char key[32];

		if (!ji->times[s])
			continue;
		cm_time_iso8601(ji->times[s], when, sizeof(when));
		snprintf(key, sizeof(key), "%s at",
			 orch_job_state_name((enum orch_job_state)s));
		add_line(&text, key, "%s", when);
	}
	if (ji->result_url) {
		orch_format_bytes(ji->result_size, a, sizeof(a));
		add_line(&text, "result", "%s", ji->result_url);
		add_line(&text, "archive size", "%s (%llu bytes)", a,
			 (unsigned long long)ji->result_size);
		if (ji->result_sha256)
			add_line(&text, "sha256", "%s", ji->result_sha256);
		add_line(&text, "verified", "%s", ji->verified ? "yes" : "no");
	}
	if (ji->snapshot_deleted)
		add_line(&text, "snapshot", "deleted");
	if (ji->held)
		add_line(&text, "holds", "%s", ji->held);
	if (ji->error)
		add_line(&text, ji->state == ORCH_JOB_SUCCEEDED ? "note" :
				ji->state == ORCH_JOB_INCOMPLETE ? "left out" :
				ji->state == ORCH_JOB_WAITING	 ? "waiting" :
								   "error",
			 "%s", ji->error);
	return text;
}

void orch_snapshot_release(struct orch_snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		orch_job_info_release(&s->jobs[i]);
	free(s->jobs);
	memset(s, 0, sizeof(*s));
}
