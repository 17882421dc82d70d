/*
 * metrics.c - see metrics.h.
 */
#include "metrics.h"

#include "buf.h"
#include "config.h"
#include "orch.h"

#include <stdio.h>

static const double duration_buckets[] = {1, 10, 60, 300, 1800, 3600, 21600};
#define N_DURATION_BUCKETS                                                     \
	(sizeof(duration_buckets) / sizeof(duration_buckets[0]))

uint64_t orch_snapshot_archived(const struct orch_snapshot *snap)
{
	uint64_t sum = snap->indexed_archived;

	for (size_t i = 0; i < snap->n; i++)
		if (snap->jobs[i].state == ORCH_JOB_SUCCEEDED)
			sum += snap->jobs[i].result_size;
	return sum;
}

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

void orch_metric_u64(struct cm_buf *b, const char *name, const char *type,
		     const char *help, uint64_t value)
{
	metric_head(b, name, type, help);
	cm_buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

/* A label value: \, " and newline escaped (exposition format). */
static void put_label(struct cm_buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			cm_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			cm_buf_puts(b, "\\n");
		else
			cm_buf_append(b, v, 1);
	}
}

void orch_metrics_put(struct cm_buf *b, const struct orch_config *cfg,
		      const struct orch_snapshot *snap, time_t started,
		      time_t now)
{
	uint64_t counts[N_DURATION_BUCKETS] = {0}, n = 0, errors = 0;
	double sum = 0;

	metric_head(b, "vaultfs_jobs", "gauge",
		    "Jobs known to the engine, by state.");
	for (int s = 0; s < ORCH_JOB_NSTATES; s++)
		cm_buf_printf(b, "vaultfs_jobs{state=\"%s\"} %zu\n",
			      orch_job_state_name((enum orch_job_state)s),
			      snap->by_state[s]);
	orch_metric_u64(b, "vaultfs_jobs_running", "gauge",
			"Jobs a worker runs now.", snap->running);
	orch_metric_u64(b, "vaultfs_archived_bytes", "gauge",
			"Bytes of the archives of succeeded jobs.",
			orch_snapshot_archived(snap));
	orch_metric_u64(b, "vaultfs_reading_bytes", "gauge",
			"Bytes read so far by the running jobs.",
			snap->bytes_read);
	metric_head(b, "vaultfs_rate_bytes_per_second", "gauge",
		    "Reading rate of the running jobs together.");
	cm_buf_printf(b, "vaultfs_rate_bytes_per_second %.0f\n", snap->rate);
	metric_head(b, "vaultfs_export_percent", "gauge",
		    "Progress of the running exports, as their services "
		    "state it.");
	for (size_t i = 0; i < snap->n; i++)
		if (snap->jobs[i].state == ORCH_JOB_EXPORTING &&
		    snap->jobs[i].export_percent >= 0)
			cm_buf_printf(b, "vaultfs_export_percent{job=\"%s\"} "
				      "%d\n", snap->jobs[i].id,
				      snap->jobs[i].export_percent);
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
	orch_metric_u64(b, "vaultfs_job_errors", "gauge",
			"Jobs that ended failed, with an error.", errors);
	metric_head(b, "vaultfs_job_duration_seconds", "histogram",
		    "Time from queueing to success of succeeded jobs.");
	for (size_t k = 0; k < N_DURATION_BUCKETS; k++)
		cm_buf_printf(b,
			      "vaultfs_job_duration_seconds_bucket{le=\"%g\"} "
			      "%llu\n",
			      duration_buckets[k],
			      (unsigned long long)counts[k]);
	cm_buf_printf(b,
		      "vaultfs_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		      "vaultfs_job_duration_seconds_sum %.0f\n"
		      "vaultfs_job_duration_seconds_count %llu\n",
		      (unsigned long long)n, sum, (unsigned long long)n);
	metric_head(b, "vaultfs_last_success_timestamp_seconds", "gauge",
		    "When the newest job of each vault succeeded (Unix "
		    "time).");
	for (size_t v = 0; cfg && snap->vault_last_success &&
			   v < cfg->nvaults; v++) {
		if (!snap->vault_last_success[v])
			continue;
		cm_buf_puts(b, "vaultfs_last_success_timestamp_seconds{"
			       "vault=\"");
		put_label(b, cfg->vaults[v].name);
		cm_buf_printf(b, "\"} %lld\n",
			      (long long)snap->vault_last_success[v]);
	}
	orch_metric_u64(b, "vaultfs_uptime_seconds", "gauge",
			"Seconds since vaultfs started.",
			now > started ? (uint64_t)(now - started) : 0);
}

char *orch_counts_line(const struct orch_config *cfg,
		       const struct orch_snapshot *snap)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	cm_buf_printf(&b, "%zu vault%s; jobs: %zu running", cfg->nvaults,
		      cfg->nvaults == 1 ? "" : "s", snap->running);
	for (int st = 0; st < ORCH_JOB_NSTATES; st++) {
		enum orch_job_state s = (enum orch_job_state)st;
		bool working = st > ORCH_JOB_QUEUED &&
			       !orch_job_state_final(s) &&
			       s != ORCH_JOB_WAITING;

		if (snap->by_state[st] && !working)
			cm_buf_printf(&b, ", %zu %s", snap->by_state[st],
				      orch_job_state_name(s));
	}
	return cm_buf_detach(&b);
}
