/*
 * view_text.c - what the view's files say, as pure functions of engine
 * snapshots and counters (see view.h): the daemon's status, the
 * Prometheus metrics, a recovery point's status and info.json, and the
 * parsing of what is written to a control file. No locks, no threads: the
 * unit tests call these directly.
 *
 * Formats are stable to parse: status files are "key: value" lines with
 * lower-case keys (a value may carry a human form after the number, as in
 * "archived: 1073741824 bytes (1.0 GiB)"); info.json is one JSON object.
 */
#include "view.h"

#include "buf.h"
#include "json.h"
#include "dest.h"
#include "mem.h"
#include "orch.h"
#include "timeutil.h"
#include "rp.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- control files ----------------------------------------------------- */

static const char *const control_words[] = {
    [VIEW_CTL_EXPORT] = "start",
    [VIEW_CTL_CANCEL] = "cancel",
};

/* What was written, quoted for a log line: printable ASCII as is, the rest
 * as \xNN, at most 40 bytes of input. */
static void quote(const char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < 40 && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o +=
			    (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	if (n > 40 && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

int view_control_parse(enum view_control which, const char *data, size_t len,
		       struct cm_err *err)
{
	const char *word = control_words[which];
	size_t a = 0, b = len;
	char q[256];

	while (a < b && isspace((unsigned char)data[a]))
		a++;
	while (b > a && isspace((unsigned char)data[b - 1]))
		b--;
	if (a == b)
		return 0;
	if (b - a == strlen(word) && memcmp(data + a, word, b - a) == 0 &&
	    !memchr(data, '\0', len))
		return 0;
	quote(data, len, q, sizeof(q));
	return cm_err_set(err, EINVAL,
			  "unknown command \"%s\": write \"%s\" or touch the "
			  "file",
			  q, word);
}

/* ---- the daemon's status ----------------------------------------------- */

static uint64_t archived_bytes(const struct orch_snapshot *snap)
{
	uint64_t sum = snap->indexed_archived;

	for (size_t i = 0; i < snap->n; i++)
		if (snap->jobs[i].state == ORCH_JOB_SUCCEEDED)
			sum += snap->jobs[i].result_size;
	return sum;
}

char *view_status_text(const struct orch_config *cfg,
		       const struct orch_snapshot *snap,
		       const struct view_stats *st, time_t now)
{
	struct cm_buf b;
	char h[32], when[32], *dest;

	cm_buf_init(&b, 0);
	cm_time_iso8601(st->started, when, sizeof(when));
	cm_buf_printf(&b, "started: %s\n", when);
	cm_buf_printf(&b, "uptime: %lld s\n",
		      (long long)(now > st->started ? now - st->started : 0));
	dest = orch_dest_describe(cfg);
	cm_buf_printf(&b, "destination: %s\n", dest);
	free(dest);
	cm_buf_printf(&b, "vaults: %zu\n", cfg->nvaults);
	cm_buf_printf(&b, "auto start: %s\n", cfg->auto_start ? "yes" : "no");
	cm_buf_printf(&b, "jobs: %zu\n", snap->n + snap->indexed);
	for (int s = 0; s < ORCH_JOB_NSTATES; s++)
		cm_buf_printf(&b, "%s: %zu\n",
			      orch_job_state_name((enum orch_job_state)s),
			      snap->by_state[s]);
	cm_buf_printf(&b, "running: %zu\n", snap->running);
	orch_format_bytes(archived_bytes(snap), h, sizeof(h));
	cm_buf_printf(&b, "archived: %llu bytes (%s)\n",
		      (unsigned long long)archived_bytes(snap), h);
	orch_format_bytes(snap->bytes_read, h, sizeof(h));
	cm_buf_printf(&b, "reading: %llu bytes (%s)\n",
		      (unsigned long long)snap->bytes_read, h);
	orch_format_bytes((uint64_t)snap->rate, h, sizeof(h));
	cm_buf_printf(&b, "rate: %.0f bytes/s (%s/s)\n", snap->rate, h);
	orch_format_bytes(st->bytes_written, h, sizeof(h));
	cm_buf_printf(&b, "archive view written: %llu bytes (%s)\n",
		      (unsigned long long)st->bytes_written, h);
	orch_format_bytes(st->bytes_read, h, sizeof(h));
	cm_buf_printf(&b, "archive view read: %llu bytes (%s)\n",
		      (unsigned long long)st->bytes_read, h);
	cm_buf_printf(&b, "archive view uploads open: %llu\n",
		      (unsigned long long)st->uploads_open);
	cm_buf_printf(&b,
		      "archive view memory: %llu bytes (limit %llu, peak "
		      "%llu, waits %llu, waiting %llu)\n",
		      (unsigned long long)st->memory_used,
		      (unsigned long long)st->memory_limit,
		      (unsigned long long)st->memory_peak,
		      (unsigned long long)st->memory_waits,
		      (unsigned long long)st->memory_waiting);
	return cm_buf_detach(&b);
}

/* ---- metrics ----------------------------------------------------------- */

static const double duration_buckets[] = {1, 10, 60, 300, 1800, 3600, 21600};
#define N_DURATION_BUCKETS                                                     \
	(sizeof(duration_buckets) / sizeof(duration_buckets[0]))

/* Seconds from the job's first state to its end; -1: not ended. */
static long job_duration(const struct orch_job_info *ji)
{
	time_t start = 0, end;

	if (!orch_job_state_final(ji->state) || ji->running)
		return -1;
	end = ji->times[ji->state];
	for (int s = 0; s < ORCH_JOB_NSTATES; s++)
		if (ji->times[s] && (!start || ji->times[s] < start))
			start = ji->times[s];
	if (!start || !end || end < start)
		return -1;
	return (long)(end - start);
}

static void metric_head(struct cm_buf *b, const char *name, const char *type,
			const char *help)
{
	cm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		      type);
}

/* A metric of one unlabelled integer sample. */
static void metric_u64(struct cm_buf *b, const char *name, const char *type,
		       const char *help, uint64_t value)
{
	metric_head(b, name, type, help);
	cm_buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

char *view_metrics_text(const struct orch_snapshot *snap,
			const struct view_stats *st, time_t now)
{
	uint64_t counts[N_DURATION_BUCKETS] = {0}, n = 0, errors = 0;
	double sum = 0;
	struct cm_buf b;

	cm_buf_init(&b, 0);
	metric_head(&b, "vaultfs_jobs", "gauge",
		    "Jobs known to the engine, by state.");
	for (int s = 0; s < ORCH_JOB_NSTATES; s++)
		cm_buf_printf(&b, "vaultfs_jobs{state=\"%s\"} %zu\n",
			      orch_job_state_name((enum orch_job_state)s),
			      snap->by_state[s]);
	metric_u64(&b, "vaultfs_jobs_running", "gauge",
		   "Jobs a worker runs now.", snap->running);
	metric_u64(&b, "vaultfs_archived_bytes", "gauge",
		   "Bytes of the archives of succeeded jobs.",
		   archived_bytes(snap));
	metric_u64(&b, "vaultfs_reading_bytes", "gauge",
		   "Bytes read so far by the running jobs.", snap->bytes_read);
	metric_head(&b, "vaultfs_rate_bytes_per_second", "gauge",
		    "Reading rate of the running jobs together.");
	cm_buf_printf(&b, "vaultfs_rate_bytes_per_second %.0f\n", snap->rate);
	for (size_t i = 0; i < snap->n; i++) {
		const struct orch_job_info *ji = &snap->jobs[i];
		long d = job_duration(ji);

		if (ji->error && ji->state == ORCH_JOB_FAILED)
			errors++;
		if (d < 0 || ji->state != ORCH_JOB_SUCCEEDED)
			continue;
		n++;
		sum += (double)d;
		for (size_t k = 0; k < N_DURATION_BUCKETS; k++)
			if ((double)d <= duration_buckets[k])
				counts[k]++;
	}
	metric_u64(&b, "vaultfs_job_errors", "gauge",
		   "Jobs that ended failed, with an error.", errors);
	metric_head(&b, "vaultfs_job_duration_seconds", "histogram",
		    "Time from queueing to success of succeeded jobs.");
	for (size_t k = 0; k < N_DURATION_BUCKETS; k++)
		cm_buf_printf(&b,
			      "vaultfs_job_duration_seconds_bucket{le=\"%g\"} "
			      "%llu\n",
			      duration_buckets[k],
			      (unsigned long long)counts[k]);
	cm_buf_printf(&b,
		      "vaultfs_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		      "vaultfs_job_duration_seconds_sum %.0f\n"
		      "vaultfs_job_duration_seconds_count %llu\n",
		      (unsigned long long)n, sum, (unsigned long long)n);
	metric_u64(&b, "vaultfs_view_written_bytes_total", "counter",
		   "Bytes written into archive objects through the view.",
		   st->bytes_written);
	metric_u64(&b, "vaultfs_view_read_bytes_total", "counter",
		   "Bytes read from archive objects through the view.",
		   st->bytes_read);
	metric_u64(&b, "vaultfs_view_objects_written_total", "counter",
		   "Objects completed through the view.", st->objects_written);
	metric_u64(&b, "vaultfs_view_write_errors_total", "counter",
		   "Writes of archive objects that failed or were refused.",
		   st->write_errors);
	metric_u64(&b, "vaultfs_view_control_errors_total", "counter",
		   "Writes to control files rejected with EINVAL.",
		   st->control_errors);
	metric_u64(&b, "vaultfs_view_uploads_open", "gauge",
		   "Archive objects being written now.", st->uploads_open);
	metric_u64(&b, "vaultfs_view_memory_bytes", "gauge",
		   "Read-ahead and part buffers of the view now.",
		   st->memory_used);
	metric_u64(&b, "vaultfs_view_memory_peak_bytes", "gauge",
		   "The most read-ahead and part buffers held at once.",
		   st->memory_peak);
	metric_u64(&b, "vaultfs_view_memory_limit_bytes", "gauge",
		   "view.memoryLimit.", st->memory_limit);
	metric_u64(&b, "vaultfs_view_memory_waits_total", "counter",
		   "Buffers that waited for memory.", st->memory_waits);
	metric_u64(&b, "vaultfs_view_memory_waiting", "gauge",
		   "Requests waiting for memory now.", st->memory_waiting);
	metric_u64(&b, "vaultfs_uptime_seconds", "gauge",
		   "Seconds since the mount started.",
		   now > st->started ? (uint64_t)(now - st->started) : 0);
	return cm_buf_detach(&b);
}

/* ---- a recovery point -------------------------------------------------- */

char *view_rp_status_text(const char *vault, const char *name,
			  const struct orch_job_info *ji, bool auto_start)
{
	if (ji)
		return orch_job_info_text(ji);
	return cm_xasprintf("recovery point: %s/%s\n"
			    "state: new\n"
			    "hint: %s\n",
			    vault, name,
			    auto_start ? "queued once complete (autoStart), "
					 "or now with `touch export`"
				       : "touch export to queue it "
					 "(autoStart is false)");
}

char *view_rp_info_json(const char *vault, const char *name,
			const struct cm_json *described,
			const struct orch_job_info *ji)
{
	struct cm_json *o, *job;
	char *text;

	if (described) {
		/* the provider's words (describe), vault and name first */
		o = cm_json_new_object();
		cm_json_add_str(o, "vault", vault);
		cm_json_add_str(o, "name", name);
		for (struct cm_json *m = cm_json_first(described); m;
		     m = cm_json_next(m))
			if (strcmp(cm_json_key(m), "vault") != 0 &&
			    strcmp(cm_json_key(m), "name") != 0)
				cm_json_add(o, cm_json_key(m),
					    cm_json_copy(m));
	} else {
		/* gone from the vault (deleted after archiving): what the
		 * job remembers */
		o = cm_json_new_object();
		cm_json_add_str(o, "vault", vault);
		cm_json_add_str(o, "name", name);
		cm_json_add_str(o, "resourceId", ji->resource_id);
		cm_json_add_u64(o, "size", ji->rp_size);
		cm_json_add_str(o, "path", ji->rp_path);
		cm_json_add_bool(o, "present", false);
	}
	if (ji) {
		job = cm_json_add_object(o, "job");
		cm_json_add_str(job, "id", ji->id);
		cm_json_add_str(job, "state", orch_job_state_name(ji->state));
		if (ji->result_url)
			cm_json_add_str(job, "archive", ji->result_url);
		if (ji->result_sha256)
			cm_json_add_str(job, "sha256", ji->result_sha256);
		if (ji->error)
			cm_json_add_str(job, "error", ji->error);
	}
	text = cm_json_print(o);
	cm_json_free(o);
	return text;
}
