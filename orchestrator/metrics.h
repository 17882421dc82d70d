/*
 * metrics.h - the engine's Prometheus metrics (text format 0.0.4), one
 * generator for both places that show them: the view's MOUNT/metrics
 * (which adds the view's own counters) and `vaultfs run`'s metricsFile
 * (node_exporter's textfile collector). Pure functions of an engine
 * snapshot: no locks, no threads.
 */
#ifndef VAULTFS_ORCH_METRICS_H
#define VAULTFS_ORCH_METRICS_H

#include <stdint.h>
#include <time.h>

struct cm_buf;
struct orch_config;
struct orch_snapshot;

/*
 * The engine's metrics into b: jobs by state, running, bytes archived and
 * being read, the rate, failed jobs, the duration histogram of succeeded
 * jobs, per vault vaultfs_last_success_timestamp_seconds (snap's
 * vault_last_success, in cfg's vault order; a vault that never succeeded
 * has no sample), and vaultfs_uptime_seconds since `started`.
 */
void orch_metrics_put(struct cm_buf *b, const struct orch_config *cfg,
		      const struct orch_snapshot *snap, time_t started,
		      time_t now);

/* A metric of one unlabelled integer sample, with its HELP and TYPE. */
void orch_metric_u64(struct cm_buf *b, const char *name, const char *type,
		     const char *help, uint64_t value);

/* "2 vaults; jobs: 1 running, 3 queued, 10 succeeded, 1 failed": the
 * counts in one line (systemd's STATUS=), states with no job left out
 * (and the running ones' states, which "running" counts). The caller
 * frees. */
char *orch_counts_line(const struct orch_config *cfg,
		       const struct orch_snapshot *snap);

/* Archive bytes of every succeeded job (in memory and in the index). */
uint64_t orch_snapshot_archived(const struct orch_snapshot *snap);

#endif
