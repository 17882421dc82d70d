/*
 * orch_int.h - the engine's insides, shared by orch.c (the engine: queue,
 * workers, watcher, recovery at start, the public API) and job.c (one run
 * of one job: the states, the archiver's hooks, verification, cleanup,
 * onFailure, the job's log). Not for use outside orchestrator/.
 *
 * Locks, in the order they may be taken:
 *
 *   orch->submit_lock   serialises queueing (the duplicate check, the
 *                       first journal save, the insertion) so that two
 *                       requests for one recovery point queue one job
 *   orch->index_lock    the index's files and ->index_pos: one append to
 *                       the tail at a time, none while a fold writes a
 *                       new index file and removes the tail
 *   orch->lock          the job list, the queue, the running/queued
 *                       flags, stopping, the counters
 *   job->lock           the journal record job->j and the fields marked
 *                       below: the worker changes them (and saves the
 *                       record) holding it; readers copy under it
 *   job->log_lock       the job's log ring; a leaf: nothing is taken
 *                       while it is held, and nothing logs under it
 *
 * Nothing logs while holding orch->lock or job->lock (a job's log sink
 * takes log_lock only, so logging under job->lock would be safe, but the
 * rule keeps stderr writes out of the critical sections).
 */
#ifndef VAULTFS_ORCH_INT_H
#define VAULTFS_ORCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dest.h"
#include "index.h"
#include "orch.h"
#include "provider.h"

enum job_cancel {
	JOB_RUN = 0,
	JOB_CANCEL_USER,     /* orch_cancel: the job ends cancelled */
	JOB_CANCEL_SHUTDOWN, /* orch_stop: journaled as interrupted */
};

/* Where a run starts (a job cut off by a crash may resume). */
enum job_resume {
	RESUME_RESTORE = 0,
	RESUME_VERIFY,  /* the archive is complete and recorded */
	RESUME_CLEAN,   /* it was verified too */
};

/* What a run ended with, for the worker. */
enum job_outcome {
	OUTCOME_FINAL = 0,  /* succeeded, failed or cancelled */
	OUTCOME_RETRY,      /* queued again after job->retry_ms */
	OUTCOME_INTERRUPTED, /* left queued for the next start */
};

/* An upload of the job's archiving, recorded in its journal (an
 * ORCH_RES_UPLOAD resource) before it starts. */
struct job_upload {
	size_t idx;     /* its record, if recorded */
	bool recorded;
};

struct job {
	struct orch *o;
	pthread_mutex_t lock;
	struct orch_job *j;   /* owned; protected by ->lock */
	/* the recovery point as last seen (at queueing, or by the run);
	 * protected by ->lock */
	struct orch_recovery_point rp;
	bool have_rp;         /* protected by ->lock */
	uint64_t archive_ns;  /* protected by ->lock: archiving began */
	double rate;          /* protected by ->lock */
	/* while archiving: the restorer's block count, or NULL */
	const _Atomic uint64_t *blocks_fetched;

	/* protected by orch->lock */
	unsigned refs;        /* threads that use it past orch->lock: a
				 finished job leaves memory only at 0 */
	bool queued;
	bool running;
	bool this_run;        /* ran (or was failed) in this process */
	bool indexed;         /* its record is in the index's tail (or, after
				 a fold, its file) */
	uint64_t where;       /* and there (index.h); ORCH_INDEX_IN_JOURNAL
				 until then */
	uint64_t not_before_ms; /* a retry waits until then (monotonic) */

	/* set by others, read by the worker */
	atomic_int cancel;      /* nonzero: stop soon (arc_run polls it) */
	atomic_int cancel_why;  /* enum job_cancel */

	/* the worker's own */
	enum job_resume resume;
	unsigned retry_ms;
	int log_fd;
	uint64_t last_save_ns;
	struct job_upload upload;       /* the archive's */
	struct job_upload index_upload; /* its index's (archiver/run.h) */
	bool paused_writing;    /* the "writing" test pause happened */
	bool superseded;        /* the recovery point changed: cancelled */
	char *no_cancel;        /* protected by ->lock: why its export
				   cannot be cancelled (orch_cancel says
				   so), or NULL */
	int hook_rc;            /* a journal failure inside a hook */
	struct cm_err hook_err;

	pthread_mutex_t log_lock;
	char *log[ORCH_JOB_LOG_LINES]; /* protected by ->log_lock: a ring */
	size_t log_head, log_n;        /* protected by ->log_lock */
};

/* Test-only pauses (VAULTFS_TEST_PAUSE_AT, see docs/orchestrator.md). */
#define ORCH_PAUSE_MAX 8
struct orch_failure_cmds;

struct orch_pause {
	char stage[16];
	unsigned ms;
};

struct orch {
	const struct orch_config *cfg; /* borrowed */
	struct orch_opts opts;
	struct orch_dest *dest;        /* owned: where archives go */
	struct orch_provider **providers; /* one per cfg vault, owned */
	struct orch_journal *journal;  /* owned once started */
	char *tmp_dir;                 /* STATEDIR/tmp: manifests in work */
	char *jobs_dir;                /* STATEDIR/jobs: the job logs */
	struct orch_failure_cmds *failure_cmds; /* owned; NULL without
						   onFailure */
	struct orch_pause pauses[ORCH_PAUSE_MAX];
	size_t npauses;
	size_t recent_finished;        /* ORCH_RECENT_FINISHED, or the test's */
	unsigned fold_every_ms;        /* the watcher folds this often */
	struct orch_index_pos index_pos; /* protected by ->index_lock: of
					    the index file and its tail */
	pthread_mutex_t index_lock;

	pthread_mutex_t submit_lock;
	pthread_mutex_t lock;
	pthread_cond_t work;  /* a job is ready, or stopping */
	pthread_cond_t idle;  /* nothing queued or running */
	struct job **jobs;    /* protected by ->lock: the jobs in memory:
				 unfinished, held, or among the last
				 ORCH_RECENT_FINISHED to finish */
	size_t njobs, jobs_cap;       /* protected by ->lock */
	struct orch_index *index;     /* protected by ->lock: every other
					 (finished) job, compactly */
	struct job **queue;   /* protected by ->lock: FIFO */
	size_t nqueue, queue_cap;     /* protected by ->lock */
	size_t nrunning;      /* protected by ->lock */
	size_t nfailed;       /* protected by ->lock: failed in this run */
	time_t *last_success; /* protected by ->lock: per cfg vault, the
				 newest job that succeeded (0: none) */
	bool started;         /* protected by ->lock */
	bool stopping;        /* protected by ->lock */

	pthread_t *workers;
	unsigned nworkers;
	pthread_t watcher;
	bool have_watcher;
	int stop_fd;          /* eventfd: wakes the watcher to stop */
};

/* Finished jobs kept whole in memory (their log ring, the view's listing
 * of a recovery point gone from its vault); older ones leave memory for
 * the index (index.h) and are read back on demand. Tests set another
 * number with VAULTFS_TEST_RECENT_FINISHED. */
#define ORCH_RECENT_FINISHED 64

/* job.c */
struct job *job_new(struct orch *o, struct orch_job *j);
void job_free(struct job *jb);
/* One run of the job on the calling (worker) thread. */
enum job_outcome job_run(struct job *jb);
/* Copy the job for readers (takes jb->lock). Caller holds orch->lock
 * for the flags. */
void job_info(struct job *jb, struct orch_job_info *out);
/* Save jb->j (takes jb->lock). */
int job_save(struct job *jb, struct cm_err *err);
/* Start the configured onFailure command for a failed job; returns at
 * once (onfailure.h waits for it and kills it at its timeout). */
void job_on_failure(struct job *jb);
/* Release every unreleased resource the journal lists; 0 when all are
 * released now. */
int job_release_recorded(struct job *jb);
/* The job's provider, or NULL when its vault is no longer configured. */
struct orch_provider *job_provider(struct job *jb);
/* The recovery point's name: the last component of its path. */
const char *job_rp_name(const struct orch_job *j);
/* Test-only: VAULTFS_TEST_PAUSE_AT's pause at stage, if it names it (no
 * lock held; a cancel ends it). */
void job_test_pause(struct job *jb, const char *stage);
/* Tell the notify callback (no lock held). */
void job_notify(struct job *jb);
/* A line into the job's log (file and ring) from any thread, and to the
 * process's log. */
void job_log_line(struct job *jb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Copy of the log ring as text, or NULL if it is empty. */
char *job_log_text(struct job *jb);

#endif
