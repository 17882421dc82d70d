/*
 * orch.h - the job engine: for every recovery point of every vault,
 * restore -> archive -> verify -> clean up -> (delete the snapshot), on a
 * fixed number of worker threads, with every step in the journal so that
 * nothing is lost to a crash.
 *
 * A library with no terminal and no FUSE in it: `vaultfs run` drives it
 * headless, the view (`vaultfs mount`) runs it inside the FUSE process and
 * reads it through orch_snapshot(), orch_job_log() and the notify
 * callback, and queues work with orch_export() and orch_cancel().
 *
 * Life cycle:
 *   orch_new(cfg, opts)   nothing touched yet
 *   orch_start()          takes the stateDir lock, loads the journal,
 *                         releases whatever earlier runs left (mounts,
 *                         loop devices, multipart uploads), requeues the
 *                         jobs they cut off (or fails those out of
 *                         attempts), starts the workers and, unless
 *                         opts.once, the vault watcher
 *   orch_scan()           queue every complete recovery point not yet
 *                         archived (what `run --once` does once)
 *   orch_wait_idle()      wait until nothing is queued or running
 *   orch_stop()           cancel what runs (journaled as interrupted, so
 *                         the next start retries it), join the threads
 *   orch_free()
 *
 * A recovery point is archived once: a job that succeeded for the same
 * vault, path, resource id, size and mtime answers later requests. A
 * failed, incomplete (archived and verified, but not the whole recovery
 * point: its snapshot is kept) or cancelled one is not retried by itself
 * (the snapshot stays, as in the seed); orch_export() or
 * orch_scan(ORCH_SCAN_RETRY_FAILED) queues it again. A job that fails with a retryable error (S3 5xx after
 * the client's own retries, a reset) is retried with backoff up to
 * maxAttempts; one cut off by a crash counts that run as an attempt.
 *
 * Threads: any thread may call any function once orch_start() returned,
 * except orch_free(). Callbacks run on the engine's threads with no lock of
 * the engine held; they may call orch_snapshot() etc. but must not call
 * orch_stop() or orch_free().
 */
#ifndef VAULTFS_ORCH_H
#define VAULTFS_ORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "journal.h"
#include "keys.h"

struct orch_dest;
struct s3_client;

/* A copy of one job, made under the engine's lock: owned strings. */
struct orch_job_info {
	char id[ORCH_JOB_ID_SIZE];
	char *vault;          /* the vault's name */
	char *rp_name;        /* the recovery point's name in the vault */
	char *rp_path;
	char *resource_id;
	enum orch_job_state state;
	bool running;         /* a worker has it now */
	bool waiting;         /* queued for a retry after a delay */
	unsigned attempts;
	time_t times[ORCH_JOB_NSTATES]; /* last entry into each; 0: never */
	uint64_t rp_size;
	uint64_t bytes_read;  /* of the source, so far */
	uint64_t bytes_total; /* 0: unknown */
	uint64_t bytes_written; /* the archive's size, once known */
	uint64_t blocks_fetched; /* of blocks_total (EBS direct); 0 of 0 */
	uint64_t blocks_total;
	double rate;          /* bytes read per second while archiving */
	char *result_url;     /* NULL until archived */
	uint64_t result_size;
	char *result_sha256;
	char *error;          /* the last error, or NULL */
	char *held;           /* NULL, or the kinds of the resources it still
				 holds ("ebs-volume, loop"): released at
				 the next start, by the engine or the job's
				 vault's provider */
	bool verified;
	bool snapshot_deleted;
};

void orch_job_info_release(struct orch_job_info *ji);

/* The same from a journal record (for `vaultfs status`, which reads the
 * journal files of another process). `now` is for the rate. */
void orch_job_info_from_job(const struct orch_job *job, time_t now,
			    struct orch_job_info *out);

/* Seconds to completion, or -1 when unknown. */
long orch_job_info_eta(const struct orch_job_info *ji);

/*
 * "state: archiving\nprogress: 1.2 GiB of 4.0 GiB (30%)\nrate: ...\n":
 * the text of a job's status (the view's status file). The caller frees.
 */
char *orch_job_info_text(const struct orch_job_info *ji);

/* "1.5 GiB", "512 B", "3.0 MiB" into buf. */
void orch_format_bytes(uint64_t n, char *buf, size_t len);

struct orch_snapshot {
	struct orch_job_info *jobs; /* n entries, sorted by id: the jobs in
				       memory (see orch_snapshot) */
	size_t n;
	size_t indexed;             /* finished jobs not in jobs[] (only in
				       the index); n + indexed: every job */
	uint64_t indexed_archived;  /* archive bytes of the succeeded ones */
	size_t by_state[ORCH_JOB_NSTATES]; /* of every job */
	size_t running;
	uint64_t bytes_read;        /* of the running jobs */
	double rate;                /* of the running jobs together */
};

void orch_snapshot_release(struct orch_snapshot *s);

/* Called when a job changes state (and once more when it ends). */
typedef void (*orch_notify_fn)(void *ctx, const struct orch_job_info *ji);

struct orch_opts {
	bool once;             /* no vault watcher: the caller scans */
	orch_notify_fn notify; /* may be NULL */
	void *notify_ctx;
};

struct orch;

/*
 * cfg is borrowed and must outlive the engine; opts is copied (may be
 * NULL). Creates the default directories of the embedded default when
 * they are missing. NULL with err set on a bad setup (an S3 destination
 * whose client cannot be made).
 */
struct orch *orch_new(const struct orch_config *cfg,
		      const struct orch_opts *opts, struct cm_err *err);
/* Stops first if needed. NULL is a no-op. */
void orch_free(struct orch *o);

/* See above. -EBUSY: another vaultfs holds the stateDir lock. */
int orch_start(struct orch *o, struct cm_err *err);
/* Idempotent. Returns once every engine thread has ended. */
void orch_stop(struct orch *o);

#define ORCH_SCAN_RETRY_FAILED 0x1 /* also failed, incomplete and
					* cancelled ones */

/*
 * Scan every vault and queue the complete recovery points not yet
 * archived (ignoring autoStart). A recovery point that some process still
 * has open for writing is left for later. *queued (may be NULL) receives
 * how many jobs were queued. Vaults that cannot be read are reported in
 * err (the others are still scanned).
 */
int orch_scan(struct orch *o, unsigned flags, size_t *queued,
	      struct cm_err *err);

/*
 * Queue recovery point `name` of `vault`. Idempotent: if a job for it is
 * queued or running, or has archived it, that job's id is returned and
 * *queued (may be NULL) is false. -ENOENT: no such vault or recovery
 * point. -ESHUTDOWN: the engine is stopping.
 */
int orch_export(struct orch *o, const char *vault, const char *name,
		char id[ORCH_JOB_ID_SIZE], bool *queued, struct cm_err *err);

/*
 * What the vault's provider knows of recovery point `name`: a JSON object
 * (type, resourceId, created, size, tags, ...: the view's info.json) as
 * text, which the caller frees. -ENOENT: no such vault or recovery point.
 */
int orch_describe(struct orch *o, const char *vault, const char *name,
		  char **json, struct cm_err *err);

/* Cancel a queued or running job (cleanup still runs; the job ends
 * cancelled). -ENOENT: no such job; -EALREADY: it has ended. */
int orch_cancel(struct orch *o, const char *job_id, struct cm_err *err);

/* Wait up to timeout_ms (-1: forever) for nothing to be queued or running.
 * Returns true when idle. */
bool orch_wait_idle(struct orch *o, int timeout_ms);

/*
 * Copies of the jobs in memory: every unfinished job and the most recent
 * finished ones; counts (by_state, indexed) of every job the engine knows.
 * Older finished jobs live in the index only: orch_job_get and
 * orch_job_for_rp read them back.
 */
void orch_snapshot(struct orch *o, struct orch_snapshot *out);

/* One job (-ENOENT), finished ones read back from the journal or the
 * index. */
int orch_job_get(struct orch *o, const char *job_id,
		 struct orch_job_info *out);

/* The newest job for a recovery point, or -ENOENT. */
int orch_job_for_rp(struct orch *o, const char *vault, const char *name,
		    struct orch_job_info *out);

/* The job's log: the last lines held in memory, else its log file. The
 * caller frees. NULL: no such job or no log. */
char *orch_job_log(struct orch *o, const char *job_id);

/* Jobs of this engine's run that ended failed. */
size_t orch_failed_count(struct orch *o);

/* The engine's destination (dest.h). Borrowed. */
struct orch_dest *orch_destination(struct orch *o);

/* An S3 client for the configured destination (endpoint, region,
 * addressing, owner, storage class, SSE). s3_client_free() it. */
struct s3_client *orch_s3_client_new(const struct orch_config *cfg,
				     struct cm_err *err);

/* Lines kept in memory per job (the file keeps all). */
#define ORCH_JOB_LOG_LINES 200

#endif
