/*
 * orch.c - the job engine (see orch.h): the job list and queue, the worker
 * threads, the vault watcher, recovery at start, and the public API.
 *
 * Threads:
 *   workers     cfg->jobs of them. Each takes the first queued job whose
 *               retry time has come and runs it to the end (job.c), then
 *               puts it back in the queue if it is to be retried.
 *   watcher     unless opts.once or autoStart is false: one thread that
 *               drives every vault's provider watch (provider.h: watch_fd,
 *               watch_timeout, watch_poll) and an eventfd that
 *               orch_stop() writes; a watch's ready callback queues the
 *               recovery points that became complete (journaled before
 *               it returns, so a provider may then acknowledge them).
 *   callers     orch_scan / orch_export / orch_cancel / orch_snapshot ...
 *               from any thread (the CLI's main thread, FUSE handlers).
 *
 * Ownership: the engine owns every struct job (and through it the journal
 * record) from its creation or loading until it leaves memory. A finished
 * job leaves memory for the index (index.h: an entry of ~100 bytes, its
 * record read back on demand) once ORCH_RECENT_FINISHED newer ones have
 * finished, and only when no thread holds it: a `struct job *` used past
 * ->lock is held (jb->refs) by whoever uses it. A job that finishes is
 * appended to the index's tail at once (index_finished), so a start reads
 * only the files of jobs the index does not have; those finished before
 * journal.keepDays fold into the index file and their files go (at
 * start, then hourly on the watcher's thread: fold_due). A job's record is written only by the
 * thread that owns the job at that moment: the worker running it, or the
 * thread that queues, recovers or cancels it while it is in no worker's
 * hands (under orch->lock, so no worker can take it meanwhile). Lock order
 * and the rest of the rules: orch_int.h.
 *
 * Queueing is idempotent: orch->submit_lock makes "find a job for this
 * recovery point, else create and journal one" atomic, so a scan, the
 * watcher and an export racing for one recovery point queue it once.
 */
#include "orch_int.h"
#include "onfailure.h"
#include "json.h"
#include "fsutil.h"
#include "fuse_file.h"
#include "log.h"
#include "mem.h"
#include "resources.h"
#include "s3.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_RETRY_MS 10000 /* re-create a vault watcher that failed */
#define FOLD_EVERY_MS 3600000 /* the daemon folds old finished jobs */

/* ---- small helpers ----------------------------------------------------- */

static uint64_t now_ms(void)
{
	return cm_now_ns() / 1000000;
}

static bool is_idle(const struct orch *o)
{
	return o->nrunning == 0 && (o->nqueue == 0 || o->stopping);
}

/* Caller holds o->lock. */
static void enqueue(struct orch *o, struct job *jb, unsigned delay_ms)
{
	if (o->nqueue == o->queue_cap) {
		o->queue_cap = o->queue_cap ? o->queue_cap * 2 : 16;
		o->queue = cm_xrealloc(o->queue,
				       o->queue_cap * sizeof(*o->queue));
	}
	o->queue[o->nqueue++] = jb;
	jb->queued = true;
	jb->not_before_ms = delay_ms ? now_ms() + delay_ms : 0;
	pthread_cond_signal(&o->work);
}

/* Caller holds o->lock. */
static void dequeue(struct orch *o, size_t i)
{
	o->queue[i]->queued = false;
	memmove(&o->queue[i], &o->queue[i + 1],
		(o->nqueue - i - 1) * sizeof(*o->queue));
	o->nqueue--;
}

/* Caller holds o->lock. */
static void add_job(struct orch *o, struct job *jb)
{
	if (o->njobs == o->jobs_cap) {
		o->jobs_cap = o->jobs_cap ? o->jobs_cap * 2 : 64;
		o->jobs = cm_xrealloc(o->jobs, o->jobs_cap * sizeof(*o->jobs));
	}
	o->jobs[o->njobs++] = jb;
}

/* Caller holds o->lock. */
static struct job *find_job(struct orch *o, const char *id)
{
	for (size_t i = 0; i < o->njobs; i++)
		if (strcmp(o->jobs[i]->j->id, id) == 0)
			return o->jobs[i];
	return NULL;
}

static enum orch_job_state job_state(struct job *jb)
{
	enum orch_job_state s;

	pthread_mutex_lock(&jb->lock);
	s = jb->j->state;
	pthread_mutex_unlock(&jb->lock);
	return s;
}

/* Finished, in no one's hands, holding nothing (a resource that could
 * not be released stays with its whole record, for the next start).
 * Caller holds o->lock. */
static bool retirable(struct job *jb)
{
	bool done;

	if (jb->running || jb->queued || jb->refs)
		return false;
	pthread_mutex_lock(&jb->lock);
	done = orch_job_state_final(jb->j->state) &&
	       !orch_job_holds_resources(jb->j);
	pthread_mutex_unlock(&jb->lock);
	return done;
}

/* Finished jobs beyond the ORCH_RECENT_FINISHED most recent leave memory:
 * an index entry each (their records stay in jobs/ID.json). Caller holds
 * o->lock. */
static void retire_finished(struct orch *o)
{
	size_t nfinished = 0;

	for (size_t i = 0; i < o->njobs; i++)
		nfinished += retirable(o->jobs[i]);
	for (size_t i = 0; i < o->njobs && nfinished > o->recent_finished;) {
		struct job *jb = o->jobs[i];
		struct orch_index_rec rec;

		if (!retirable(jb)) {
			i++;
			continue;
		}
		orch_index_rec_from_job(jb->j, &rec);
		orch_index_add(o->index, &rec, jb->where);
		orch_index_set_file(o->index, jb->j->id, true);
		memmove(&o->jobs[i], &o->jobs[i + 1],
			(o->njobs - i - 1) * sizeof(*o->jobs));
		o->njobs--;
		job_free(jb);
		nfinished--;
	}
}

/*
 * A job that has finished and holds nothing goes to the index's tail at
 * once (index.h: appended and synced), so that no later start and no
 * `vaultfs status` reads its file again. Its file stays in jobs/ until
 * a fold. A failed append leaves it to the next start, which finds the
 * file unindexed and appends it then. No lock held; takes ->index_lock,
 * then jb->lock and ->lock.
 */
static bool index_due(struct orch *o, struct job *jb)
{
	bool due;

	pthread_mutex_lock(&o->lock);
	due = !jb->indexed && !jb->running && !jb->queued;
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_lock(&jb->lock);
	due = due && orch_job_state_final(jb->j->state) &&
	      !orch_job_holds_resources(jb->j);
	pthread_mutex_unlock(&jb->lock);
	return due;
}

static void index_finished(struct orch *o, struct job *jb)
{
	uint64_t where = ORCH_INDEX_IN_JOURNAL;
	struct cm_err e;
	int rc;

	if (!index_due(o, jb))
		return;
	/* test-only: a crash between the journal's final save and this */
	job_test_pause(jb, "finished");
	cm_err_clear(&e);
	pthread_mutex_lock(&o->index_lock);
	/* a finished job's record no longer changes: jb->lock only for
	 * the rule that readers of jb->j hold it */
	pthread_mutex_lock(&jb->lock);
	rc = orch_index_append(o->cfg->state_dir, &o->index_pos, jb->j, 0,
			       &where, &e);
	pthread_mutex_unlock(&jb->lock);
	if (rc == 0) {
		pthread_mutex_lock(&o->lock);
		jb->where = where;
		jb->indexed = true;
		pthread_mutex_unlock(&o->lock);
	}
	pthread_mutex_unlock(&o->index_lock);
	if (rc)
		cm_warn("job %s: not in the index yet (the next start adds "
			"it from its file): %s", jb->j->id, e.msg);
	else
		job_test_pause(jb, "indexed");
}

/* Caller holds o->lock: jb stays in memory until job_drop(). */
static void job_hold(struct job *jb)
{
	jb->refs++;
}

static void job_drop(struct orch *o, struct job *jb)
{
	pthread_mutex_lock(&o->lock);
	jb->refs--;
	retire_finished(o);
	pthread_mutex_unlock(&o->lock);
}

/* The newest job for the same recovery point (vault, path, resource id,
 * size and mtime, and the same file where both know it) in memory, or
 * NULL. Caller holds o->lock. */
static struct job *find_job_for(struct orch *o,
				const struct orch_recovery_point *rp)
{
	for (size_t i = o->njobs; i-- > 0;) {
		const struct orch_job *j = o->jobs[i]->j;

		/* these fields never change after queueing: no job lock */
		if (strcmp(j->vault, rp->vault) == 0 &&
		    strcmp(j->rp_path, rp->path) == 0 &&
		    strcmp(j->resource_id, rp->resource_id) == 0 &&
		    j->rp_size == rp->size && j->rp_mtime == rp->mtime &&
		    orch_rp_identity_same_file(&j->rp_id, &rp->id))
			return o->jobs[i];
	}
	return NULL;
}

static struct orch_provider *provider_of(struct orch *o, const char *vault)
{
	for (size_t v = 0; v < o->cfg->nvaults; v++)
		if (strcmp(o->cfg->vaults[v].name, vault) == 0)
			return o->providers[v];
	return NULL;
}

/* A job of `vault` succeeded at t: the vault's newest success (the
 * metrics' vaultfs_last_success_timestamp_seconds). Jobs of vaults no
 * longer configured count for none. Caller holds o->lock, or is alone
 * (recovery at start). */
static void note_success(struct orch *o, const char *vault, time_t t)
{
	for (size_t v = 0; v < o->cfg->nvaults; v++)
		if (strcmp(o->cfg->vaults[v].name, vault) == 0 &&
		    t > o->last_success[v])
			o->last_success[v] = t;
}

static void parse_pauses(struct orch *o)
{
	const char *env = getenv("VAULTFS_TEST_PAUSE_AT");
	char *copy, *save = NULL;

	if (!env || !*env)
		return;
	copy = cm_xstrdup(env);
	for (char *tok = strtok_r(copy, ",", &save);
	     tok && o->npauses < ORCH_PAUSE_MAX;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		struct orch_pause *p = &o->pauses[o->npauses];
		double secs;

		if (!colon || colon - tok >= (long)sizeof(p->stage))
			continue;
		secs = strtod(colon + 1, NULL);
		if (secs <= 0)
			continue;
		*colon = '\0';
		snprintf(p->stage, sizeof(p->stage), "%s", tok);
		p->ms = (unsigned)(secs * 1000);
		o->npauses++;
		cm_warn("test: VAULTFS_TEST_PAUSE_AT pauses every job at %s "
			"for %.1f s", p->stage, secs);
	}
	free(copy);
}

/* ---- creation ---------------------------------------------------------- */

struct s3_client *orch_s3_client_new(const struct orch_config *cfg,
				     struct cm_err *err)
{
	struct s3_client_opts so;

	memset(&so, 0, sizeof(so));
	so.endpoint = cfg->endpoint;
	so.endpoints = cfg->endpoints;
	so.nendpoints = cfg->nendpoints;
	so.region = cfg->region;
	so.addressing = cfg->addressing == ORCH_ADDRESSING_PATH ?
				S3_ADDRESSING_PATH :
			cfg->addressing == ORCH_ADDRESSING_VIRTUAL ?
				S3_ADDRESSING_VIRTUAL :
				S3_ADDRESSING_AUTO;
	so.expected_bucket_owner = cfg->expected_bucket_owner;
	so.storage_class = cfg->storage_class;
	so.sse = cfg->sse;
	so.sse_kms_key_id = cfg->kms_key_id;
	return s3_client_new(&so, err);
}

struct orch *orch_new(const struct orch_config *cfg,
		      const struct orch_opts *opts, struct cm_err *err)
{
	struct orch *o = cm_xcalloc(1, sizeof(*o));
	int rc = 0;

	o->cfg = cfg;
	if (opts)
		o->opts = *opts;
	o->stop_fd = -1;
	pthread_mutex_init(&o->submit_lock, NULL);
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->index_lock, NULL);
	pthread_cond_init(&o->work, NULL);
	pthread_cond_init(&o->idle, NULL);
	o->last_success = cm_xcalloc(cfg->nvaults + 1,
				     sizeof(*o->last_success));
	o->tmp_dir = cm_xasprintf("%s/tmp", cfg->state_dir);
	o->jobs_dir = cm_xasprintf("%s/jobs", cfg->state_dir);
	parse_pauses(o);
	if (cfg->on_failure)
		o->failure_cmds = orch_failure_cmds_new(
			cfg->on_failure_timeout_seconds * 1000);
	o->recent_finished = ORCH_RECENT_FINISHED;
	o->fold_every_ms = FOLD_EVERY_MS;
	if (getenv("VAULTFS_TEST_FOLD_SECONDS")) {
		o->fold_every_ms = 1000 * (unsigned)strtoul(
			getenv("VAULTFS_TEST_FOLD_SECONDS"), NULL, 10);
		cm_warn("test: VAULTFS_TEST_FOLD_SECONDS folds every %u ms",
			o->fold_every_ms);
	}
	if (getenv("VAULTFS_TEST_RECENT_FINISHED")) {
		o->recent_finished = strtoul(
			getenv("VAULTFS_TEST_RECENT_FINISHED"), NULL, 10);
		cm_warn("test: VAULTFS_TEST_RECENT_FINISHED keeps %zu finished "
			"jobs in memory", o->recent_finished);
	}

	/* the embedded default's directories are ours to create */
	for (size_t i = 0; i < cfg->nvaults && rc == 0; i++)
		if (cfg->vaults[i].path &&
		    !strcmp(cfg->vaults[i].path, ORCH_DEFAULT_VAULT_PATH))
			rc = cm_mkdirs(cfg->vaults[i].path, 0755, err);
	if (rc == 0)
		rc = orch_dest_new(cfg, &o->dest, err);
	if (rc == 0 && o->dest->ops->prepare)
		rc = o->dest->ops->prepare(o->dest, err);
	if (rc)
		goto fail;
	o->providers = cm_xcalloc(cfg->nvaults + 1, sizeof(*o->providers));
	for (size_t i = 0; i < cfg->nvaults; i++)
		if (orch_provider_new(cfg, &cfg->vaults[i], &o->providers[i],
				      err))
			goto fail;
	return o;
fail:
	orch_free(o);
	return NULL;
}

/* ---- recovery at start ------------------------------------------------- */

static void notify_copy(struct orch *o, struct job *jb)
{
	if (o->opts.notify)
		job_notify(jb);
}


static void recover_one(struct orch *o, struct job *jb)
{
	struct orch_job *j = jb->j;
	enum orch_job_state was = j->state;
	struct cm_err e;

	cm_err_clear(&e);
	if (orch_job_holds_resources(j)) {
		cm_warn("job %s (%s): releasing what an earlier run left "
			"behind", j->id, j->rp_path);
		if (job_release_recorded(jb))
			cm_warn("job %s: not everything could be released; "
				"the next start tries again", j->id);
	}
	if (orch_job_state_final(was))
		return;
	if (was == ORCH_JOB_WAITING) {
		/* perhaps this version has its restorer: try again, its
		 * attempts untouched */
		cm_info("job %s (%s): waiting; trying again", j->id,
			j->rp_path);
		pthread_mutex_lock(&o->lock);
		enqueue(o, jb, 0);
		pthread_mutex_unlock(&o->lock);
		return;
	}
	if (j->verified)
		jb->resume = RESUME_CLEAN;
	else if (was == ORCH_JOB_VERIFYING && j->result_url)
		jb->resume = RESUME_VERIFY;
	else
		jb->resume = RESUME_RESTORE;
	if (was != ORCH_JOB_QUEUED && jb->resume == RESUME_RESTORE &&
	    j->attempts >= o->cfg->max_attempts) {
		char *msg = cm_xasprintf("interrupted while %s, %u of %u "
					 "attempts used (vaultfs stopped or "
					 "crashed)",
					 orch_job_state_name(was), j->attempts,
					 o->cfg->max_attempts);

		pthread_mutex_lock(&jb->lock);
		orch_job_set_state(j, ORCH_JOB_FAILED);
		orch_job_set_error(j, msg);
		if (orch_journal_save(o->journal, j, &e))
			cm_error("%s", e.msg);
		pthread_mutex_unlock(&jb->lock);
		cm_error("job %s (%s) failed: %s", j->id, j->rp_path, msg);
		free(msg);
		pthread_mutex_lock(&o->lock);
		jb->this_run = true;
		o->nfailed++;
		pthread_mutex_unlock(&o->lock);
		job_on_failure(jb);
		notify_copy(o, jb);
		return;
	}
	if (was != ORCH_JOB_QUEUED) {
		char *msg = cm_xasprintf("interrupted while %s (vaultfs "
					 "stopped or crashed); %s",
					 orch_job_state_name(was),
					 jb->resume == RESUME_CLEAN ?
						 "resuming at cleaning" :
					 jb->resume == RESUME_VERIFY ?
						 "resuming at verifying" :
						 "retrying");

		cm_warn("job %s (%s): %s", j->id, j->rp_path, msg);
		pthread_mutex_lock(&jb->lock);
		orch_job_set_state(j, ORCH_JOB_QUEUED);
		orch_job_set_error(j, msg);
		if (orch_journal_save(o->journal, j, &e))
			cm_error("%s", e.msg);
		pthread_mutex_unlock(&jb->lock);
		free(msg);
	}
	pthread_mutex_lock(&o->lock);
	enqueue(o, jb, 0);
	pthread_mutex_unlock(&o->lock);
}

/* What loading the journal at start gathers. */
struct loading {
	struct orch *o;
	struct job **live;            /* unfinished or holding resources */
	size_t nlive, live_cap;
	size_t appended;              /* to the tail, not synced yet */
	bool append_failed;
	struct cm_err append_err;
};

/* orch_journal_each's skip: a job in the index is finished, and its file
 * is not read (it only says the file is there, for the fold). */
static bool skip_indexed(void *ctx, const char *id)
{
	struct loading *l = ctx;
	struct orch_index_hit hit;

	if (!orch_index_find_id(l->o->index, id, &hit))
		return false;
	orch_index_set_file(l->o->index, id, true);
	return true;
}

/* One journal file not in the index (orch_journal_each): an unfinished
 * job stays whole; a finished one (it finished before its record reached
 * the tail - a crash, a full disk - or under an older vaultfs) is
 * appended to the tail now. */
static void load_job(void *ctx, struct orch_job *j)
{
	struct loading *l = ctx;
	struct orch *o = l->o;
	struct orch_index_rec rec;
	uint64_t where = ORCH_INDEX_IN_JOURNAL;

	if (!orch_job_state_final(j->state) || orch_job_holds_resources(j)) {
		if (l->nlive == l->live_cap) {
			l->live_cap = l->live_cap ? l->live_cap * 2 : 16;
			l->live = cm_xrealloc(l->live, l->live_cap *
							       sizeof(*l->live));
		}
		l->live[l->nlive++] = job_new(o, j);
		return;
	}
	if (j->state == ORCH_JOB_SUCCEEDED)
		note_success(o, j->vault, j->times[ORCH_JOB_SUCCEEDED]);
	/* synced once for all of them (orch_index_tail_sync) */
	if (!l->append_failed &&
	    orch_index_append(o->cfg->state_dir, &o->index_pos, j,
			      ORCH_INDEX_NOSYNC, &where, &l->append_err))
		l->append_failed = true;
	else if (!l->append_failed)
		l->appended++;
	orch_index_rec_from_job(j, &rec);
	orch_index_add(o->index, &rec, where);
	orch_index_set_file(o->index, j->id, true);
	orch_job_free(j);
}

static int live_by_id(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a;
	const struct job *y = *(struct job *const *)b;

	return strcmp(x->j->id, y->j->id);
}

/* Test-only: VAULTFS_TEST_PAUSE_AT=folding:SECONDS stops a fold once the
 * new index is in place, before the tail and the journal's files go (for
 * the crash test). */
static void test_pause_folding(struct orch *o)
{
	for (size_t i = 0; i < o->npauses; i++) {
		if (strcmp(o->pauses[i].stage, "folding") != 0)
			continue;
		cm_warn("test: paused at folding for %u ms", o->pauses[i].ms);
		cm_sleep_ms(o->pauses[i].ms);
	}
}

/* The index file again, with the tail's records after the old ones, and
 * those of the due jobs (ids) that are only in their files (an append
 * that failed); then the tail goes. offs[i] receives where ids[i] is.
 * Caller holds ->index_lock. */
static int fold_write(struct orch *o, char (*ids)[ORCH_JOB_ID_SIZE],
		      size_t n, uint64_t *offs, struct cm_err *e)
{
	struct orch_index_writer *w = NULL;
	struct orch_index_pos pos;
	uint64_t base = o->index_pos.end;
	int rc;

	rc = orch_index_writer_open(o->cfg->state_dir, &o->index_pos, &w, e);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct orch_index_hit hit;
		struct orch_job *j = NULL;

		pthread_mutex_lock(&o->lock);
		offs[i] = orch_index_find_id(o->index, ids[i], &hit)
				  ? hit.where
				  : ORCH_INDEX_IN_JOURNAL;
		pthread_mutex_unlock(&o->lock);
		if (offs[i] != ORCH_INDEX_IN_JOURNAL)
			continue;
		rc = orch_journal_load_job(o->cfg->state_dir, ids[i], &j, e);
		if (rc == 0)
			rc = orch_index_writer_add(w, j, &offs[i], e);
		orch_job_free(j);
	}
	if (rc == 0) {
		rc = orch_index_writer_commit(w, &pos, e);
		w = NULL;
	}
	if (rc) {
		orch_index_writer_abort(w);
		return rc;
	}
	/* in place: from here the tail's records are in both files */
	test_pause_folding(o);
	if (base == 0)
		base = strlen("{\"vaultfsIndex\":1}\n");
	pthread_mutex_lock(&o->lock);
	o->index_pos.end = pos.end;
	o->index_pos.count = pos.count;
	orch_index_tail_moved(o->index, base);
	for (size_t i = 0; i < n; i++)
		if (ORCH_INDEX_IN_FILE(offs[i]))
			orch_index_set_where(o->index, ids[i], offs[i]);
	for (size_t i = 0; i < o->njobs; i++) {
		struct job *jb = o->jobs[i];

		if (jb->indexed && !ORCH_INDEX_IN_FILE(jb->where) &&
		    jb->where != ORCH_INDEX_IN_JOURNAL)
			jb->where = base + (jb->where & ~ORCH_INDEX_IN_TAIL);
	}
	pthread_mutex_unlock(&o->lock);
	/* a tail that stays (a failed unlink) is cut to nothing by the next
	 * append, and taken once by readers meanwhile */
	if (orch_index_tail_remove(o->cfg->state_dir, &o->index_pos, e))
		cm_warn("journal: %s", e->msg);
	return 0;
}

static void forget_all(struct orch *o, char (*ids)[ORCH_JOB_ID_SIZE],
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = orch_journal_forget(o->journal, ids[i]);

		if (rc) {
			cm_warn("journal: job %s is in the index; its file "
				"stays in %s/jobs until the next fold: %s",
				ids[i], o->cfg->state_dir, strerror(-rc));
			continue;
		}
		pthread_mutex_lock(&o->lock);
		orch_index_set_file(o->index, ids[i], false);
		pthread_mutex_unlock(&o->lock);
	}
}

/*
 * Fold (at start, then on the watcher every fold_every_ms): the files of
 * finished jobs that ended before journal.keepDays go, once the index
 * file holds their records. Those only in the tail (or, after a failed
 * append, only in their file) get there first: a new index file with the
 * tail and them (fold_write), and then the tail goes. A job is in its
 * file, the tail or the index file, or for a moment in two; never in
 * none. A fold that fails leaves every file where it was.
 */
static void fold_due(struct orch *o)
{
	time_t cutoff = time(NULL) - (time_t)o->cfg->keep_days * 86400;
	char (*ids)[ORCH_JOB_ID_SIZE];
	uint64_t *offs = NULL;
	struct cm_err e;
	bool move;
	size_t n;
	int rc = 0;

	cm_err_clear(&e);
	pthread_mutex_lock(&o->index_lock);
	pthread_mutex_lock(&o->lock);
	n = orch_index_due(o->index, cutoff, &ids, &move);
	pthread_mutex_unlock(&o->lock);
	if (n && move) {
		offs = cm_xcalloc(n, sizeof(*offs));
		rc = fold_write(o, ids, n, offs, &e);
	}
	pthread_mutex_unlock(&o->index_lock);
	if (rc) {
		cm_warn("journal: finished jobs stay in %s/jobs, not folded "
			"into the index: %s", o->cfg->state_dir, e.msg);
		goto out;
	}
	if (!n)
		goto out;
	forget_all(o, ids, n);
	orch_journal_sync(o->journal);
	cm_info("journal: %zu finished job%s folded into %s/%s", n,
		n == 1 ? "" : "s", o->cfg->state_dir, ORCH_INDEX_NAME);
out:
	free(offs);
	free(ids);
}

/* A job of the index (orch_index_load_each): its success noted (a
 * succeeded job's last state change is its success). */
static int note_indexed_success(void *ctx, const struct orch_job *job,
				const struct cm_json *record,
				const struct orch_index_rec *rec, uint64_t off)
{
	(void)job;
	(void)record;
	(void)off;
	if (strcmp(rec->state, orch_job_state_name(ORCH_JOB_SUCCEEDED)) == 0)
		note_success(ctx, rec->vault, rec->ended);
	return 0;
}

static int recover(struct orch *o, struct cm_err *err)
{
	struct loading l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.o = o;
	cm_err_clear(&l.append_err);
	o->index = orch_index_new();
	{
		/* a new index a crash cut off before its rename */
		char *tmp = cm_xasprintf("%s/%s.tmp", o->cfg->state_dir,
					 ORCH_INDEX_NAME);

		unlink(tmp);
		free(tmp);
	}
	rc = orch_index_load_each(o->cfg->state_dir, o->index, &o->index_pos,
				  note_indexed_success, o, err);
	if (rc)
		return rc;
	if (o->index_pos.tail_count &&
	    o->index_pos.tail_dups == o->index_pos.tail_count) {
		/* a fold cut off after its new index was in place */
		struct cm_err e;

		cm_err_clear(&e);
		if (orch_index_tail_remove(o->cfg->state_dir, &o->index_pos,
					   &e))
			cm_warn("journal: %s", e.msg);
	}
	rc = orch_journal_each(o->journal, skip_indexed, load_job, &l, NULL,
			       err);
	if (rc) {
		for (size_t i = 0; i < l.nlive; i++)
			job_free(l.live[i]);
		goto out;
	}
	if (l.appended &&
	    orch_index_tail_sync(o->cfg->state_dir, &l.append_err))
		l.append_failed = true;
	if (l.append_failed)
		cm_warn("journal: finished jobs not in the index yet (the "
			"next start adds them): %s", l.append_err.msg);
	else if (l.appended)
		cm_info("journal: %zu finished job%s added to %s/%s",
			l.appended, l.appended == 1 ? "" : "s",
			o->cfg->state_dir, ORCH_INDEX_TAIL_NAME);
	fold_due(o);
	if (l.nlive > 1)
		qsort(l.live, l.nlive, sizeof(*l.live), live_by_id);
	for (size_t i = 0; i < l.nlive; i++) {
		struct job *jb = l.live[i];

		pthread_mutex_lock(&o->lock);
		add_job(o, jb);
		job_hold(jb);
		pthread_mutex_unlock(&o->lock);
		recover_one(o, jb);
		index_finished(o, jb);
		job_drop(o, jb);
	}
out:
	free(l.live);
	return rc;
}

/* Drafts of manifests a crashed run left in STATEDIR/tmp. */
static int clean_tmp(struct orch *o, struct cm_err *err)
{
	int rc = orch_remove_all(o->tmp_dir, err);

	if (rc == 0)
		rc = cm_mkdirs(o->tmp_dir, 0755, err);
	return rc;
}

/* ---- queueing ---------------------------------------------------------- */

/*
 * Queue a job for rp unless one answers it already (see orch.h). With
 * `retry`, a failed or cancelled job does not answer it.
 */
static int submit_rp(struct orch *o, const struct orch_recovery_point *rp,
		     bool retry, char *id_out, bool *queued,
		     struct cm_err *err)
{
	struct orch_job *j = NULL;
	struct orch_index_hit hit;
	struct job *jb;
	int rc = 0;

	if (queued)
		*queued = false;
	pthread_mutex_lock(&o->submit_lock);
	pthread_mutex_lock(&o->lock);
	if (o->stopping) {
		pthread_mutex_unlock(&o->lock);
		rc = cm_err_set(err, ESHUTDOWN, "vaultfs is stopping");
		goto out;
	}
	jb = find_job_for(o, rp);
	if (jb) {
		enum orch_job_state s = job_state(jb);

		if (s == ORCH_JOB_WAITING && retry && !jb->queued &&
		    !jb->running) {
			/* asked for again (export, --retry-failed) */
			enqueue(o, jb, 0);
			if (queued)
				*queued = true;
		}
		if (!orch_job_state_final(s) || s == ORCH_JOB_SUCCEEDED ||
		    !retry) {
			if (id_out)
				memcpy(id_out, jb->j->id, ORCH_JOB_ID_SIZE);
			pthread_mutex_unlock(&o->lock);
			goto out;
		}
	} else if (orch_index_find_rp(o->index, rp->vault, rp->path,
				      rp->resource_id, rp->size,
				      (int64_t)rp->mtime, &rp->id, &hit) &&
		   (hit.state == ORCH_JOB_SUCCEEDED || !retry)) {
		/* finished, out of memory: a state unknown here is
		 * retried as a failed one would be */
		if (id_out)
			memcpy(id_out, hit.id, ORCH_JOB_ID_SIZE);
		pthread_mutex_unlock(&o->lock);
		goto out;
	}
	pthread_mutex_unlock(&o->lock);

	j = orch_job_new(rp->vault, rp->name, rp->path, rp->resource_id);
	j->rp_size = rp->size;
	j->rp_mtime = rp->mtime;
	j->rp_id = rp->id;
	rc = orch_journal_save(o->journal, j, err);
	if (rc) {
		orch_job_free(j);
		goto out;
	}
	jb = job_new(o, j);
	orch_rp_copy(&jb->rp, rp);
	jb->have_rp = true;
	if (id_out)
		memcpy(id_out, j->id, ORCH_JOB_ID_SIZE);
	if (queued)
		*queued = true;
	pthread_mutex_lock(&o->lock);
	add_job(o, jb);
	enqueue(o, jb, 0);
	job_hold(jb);
	pthread_mutex_unlock(&o->lock);
	cm_info("queued job %s for %s/%s", j->id, rp->vault, rp->name);
	pthread_mutex_unlock(&o->submit_lock);
	notify_copy(o, jb);
	job_drop(o, jb);
	return 0;
out:
	pthread_mutex_unlock(&o->submit_lock);
	return rc;
}

int orch_scan(struct orch *o, unsigned flags, size_t *queued,
	      struct cm_err *err)
{
	const struct orch_config *cfg = o->cfg;
	size_t count = 0;
	int first = 0;

	for (size_t v = 0; v < cfg->nvaults; v++) {
		struct orch_provider *p = o->providers[v];
		struct orch_rp_list list = { 0 };
		struct cm_err e;
		int rc;

		cm_err_clear(&e);
		rc = p->ops->scan(p, &list, &e);
		if (rc) {
			cm_error("%s", e.msg);
			if (!first) {
				first = rc;
				*err = e;
			}
			continue;
		}
		for (size_t i = 0; i < list.n; i++) {
			const struct orch_recovery_point *rp = &list.items[i];
			bool q = false;

			if (p->ops->busy && p->ops->busy(p, rp)) {
				cm_warn("%s: still being written, left for "
					"later", rp->path);
				continue;
			}
			rc = submit_rp(o, rp, flags & ORCH_SCAN_RETRY_FAILED,
				       NULL, &q, &e);
			if (rc && !first) {
				first = rc;
				*err = e;
			}
			count += q;
		}
		orch_rp_list_release(&list);
	}
	if (queued)
		*queued = count;
	return first;
}

int orch_export(struct orch *o, const char *vault, const char *name,
		char id[ORCH_JOB_ID_SIZE], bool *queued, struct cm_err *err)
{
	struct orch_provider *p = provider_of(o, vault);
	struct orch_recovery_point rp;
	int rc;

	if (!p)
		return cm_err_set(err, ENOENT, "no vault \"%s\"", vault);
	rc = p->ops->inspect(p, name, &rp, err);
	if (rc)
		return rc;
	if (p->ops->busy && p->ops->busy(p, &rp))
		rc = cm_err_set(err, EBUSY, "%s is still being written",
				rp.path);
	else
		rc = submit_rp(o, &rp, true, id, queued, err);
	orch_rp_release(&rp);
	return rc;
}

int orch_describe(struct orch *o, const char *vault, const char *name,
		  char **json, struct cm_err *err)
{
	struct orch_provider *p = provider_of(o, vault);
	struct orch_recovery_point rp;
	struct cm_json *obj;
	int rc;

	*json = NULL;
	if (!p)
		return cm_err_set(err, ENOENT, "no vault \"%s\"", vault);
	rc = p->ops->inspect(p, name, &rp, err);
	if (rc)
		return rc;
	obj = cm_json_new_object();
	rc = p->ops->describe(p, &rp, obj, err);
	if (rc == 0)
		*json = cm_json_print(obj);
	cm_json_free(obj);
	orch_rp_release(&rp);
	return rc;
}

int orch_cancel(struct orch *o, const char *job_id, struct cm_err *err)
{
	struct orch_index_hit hit;
	char *refused = NULL;
	struct job *jb;
	struct cm_err e;
	int rc = 0;

	cm_err_clear(&e);
	pthread_mutex_lock(&o->lock);
	jb = find_job(o, job_id);
	if (!jb && orch_index_find_id(o->index, job_id, &hit)) {
		rc = cm_err_set(err, EALREADY, "job %s has ended (%s)",
				job_id, hit.state_name);
		goto unlock;
	}
	if (!jb) {
		rc = cm_err_set(err, ENOENT, "no job %s", job_id);
		goto unlock;
	}
	job_hold(jb);
	pthread_mutex_lock(&jb->lock);
	if (jb->running && jb->no_cancel &&
	    jb->j->state == ORCH_JOB_EXPORTING) {
		/* the service cannot: refused, and the job's log says why */
		refused = cm_xstrdup(jb->no_cancel);
		rc = cm_err_set(err, EINVAL, "job %s: %s", job_id, refused);
		pthread_mutex_unlock(&jb->lock);
		goto unlock;
	}
	pthread_mutex_unlock(&jb->lock);
	if (jb->running) {
		atomic_store(&jb->cancel_why, JOB_CANCEL_USER);
		atomic_store(&jb->cancel, 1);
		goto unlock;
	}
	if (!jb->queued) {
		rc = cm_err_set(err, EALREADY, "job %s has ended (%s)", job_id,
				orch_job_state_name(job_state(jb)));
		goto unlock;
	}
	for (size_t i = 0; i < o->nqueue; i++)
		if (o->queue[i] == jb)
			dequeue(o, i--);
	/* in no worker's hands now: ours to change */
	pthread_mutex_lock(&jb->lock);
	orch_job_set_state(jb->j, ORCH_JOB_CANCELLED);
	orch_job_set_error(jb->j, "cancelled");
	if (orch_journal_save(o->journal, jb->j, &e))
		rc = -EIO;
	pthread_mutex_unlock(&jb->lock);
	if (is_idle(o))
		pthread_cond_broadcast(&o->idle);
unlock:
	pthread_mutex_unlock(&o->lock);
	if (rc == -EIO) {
		/* cancelled in memory; the record still says queued */
		cm_warn("%s", e.msg);
		rc = 0;
	}
	if (rc == 0 && jb) {
		cm_info("job %s: cancel requested", job_id);
		notify_copy(o, jb);
		index_finished(o, jb);
	}
	if (refused) /* the job's log says why, where its user looks */
		job_log_line(jb, "cancel refused: %s", refused);
	free(refused);
	if (jb)
		job_drop(o, jb);
	return rc;
}

/* ---- workers ----------------------------------------------------------- */

/* The first queued job that may run now; else *wait_ms until one may
 * (-1: none queued). Caller holds o->lock. */
static struct job *pick(struct orch *o, int *wait_ms)
{
	uint64_t now = now_ms(), soonest = UINT64_MAX;

	for (size_t i = 0; i < o->nqueue; i++) {
		struct job *jb = o->queue[i];

		if (jb->not_before_ms <= now) {
			dequeue(o, i);
			return jb;
		}
		if (jb->not_before_ms < soonest)
			soonest = jb->not_before_ms;
	}
	*wait_ms = soonest == UINT64_MAX ? -1 : (int)(soonest - now);
	return NULL;
}

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(c, m, &ts);
}

static void *worker_main(void *arg)
{
	struct orch *o = arg;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		struct job *jb = NULL;
		enum job_outcome out;
		int wait_ms = -1;

		while (!o->stopping && !(jb = pick(o, &wait_ms))) {
			if (wait_ms < 0)
				pthread_cond_wait(&o->work, &o->lock);
			else
				timed_wait(&o->work, &o->lock, wait_ms + 1);
		}
		if (!jb)
			break;
		jb->running = true;
		jb->this_run = true;
		job_hold(jb);
		o->nrunning++;
		pthread_mutex_unlock(&o->lock);

		out = job_run(jb);

		pthread_mutex_lock(&o->lock);
		jb->running = false;
		if (out == OUTCOME_RETRY && !o->stopping)
			enqueue(o, jb, jb->retry_ms);
		if (jb->j->state == ORCH_JOB_FAILED)
			o->nfailed++;
		if (jb->j->state == ORCH_JOB_SUCCEEDED)
			note_success(o, jb->j->vault,
				     jb->j->times[ORCH_JOB_SUCCEEDED]);
		pthread_mutex_unlock(&o->lock);
		/* told before anyone sees the engine idle */
		job_notify(jb);
		index_finished(o, jb);
		pthread_mutex_lock(&o->lock);
		jb->refs--;
		retire_finished(o);
		o->nrunning--;
		if (is_idle(o))
			pthread_cond_broadcast(&o->idle);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* ---- the vault watcher ------------------------------------------------- */

/* A watch's cb->ready: queue rp, or find its job; 0 once journaled. */
static int watch_ready(void *ctx, const struct orch_recovery_point *rp,
		       struct cm_err *err)
{
	return submit_rp(ctx, rp, false, NULL, NULL, err);
}

static void *watcher_main(void *arg)
{
	struct orch *o = arg;
	const struct orch_config *cfg = o->cfg;
	size_t n = cfg->nvaults;
	struct orch_watch **w = cm_xcalloc(n + 1, sizeof(*w));
	struct pollfd *pfd = cm_xcalloc(n + 1, sizeof(*pfd));
	struct orch_watch_opts wo = {
		.quiet_ms = 0,
		.rescan_ms = cfg->rescan_seconds * 1000,
	};
	struct orch_watch_cb cb = { .ready = watch_ready, .ctx = o };
	uint64_t retry_at = 0, fold_at = now_ms() + o->fold_every_ms;

	for (;;) {
		int timeout = -1, nfd = 1;
		uint64_t now = now_ms();
		bool missing = false;

		if (now >= fold_at) {
			fold_due(o);
			now = now_ms();
			fold_at = now + o->fold_every_ms;
		}
		timeout = (int)(fold_at - now);
		for (size_t i = 0; i < n; i++) {
			const struct orch_provider_ops *ops =
			    o->providers[i]->ops;
			struct cm_err e;

			if (w[i] || !ops->watch_new)
				continue;
			missing = true;
			if (now < retry_at)
				continue;
			cm_err_clear(&e);
			if (ops->watch_new(o->providers[i], &wo, &cb, &w[i],
					   &e))
				cm_warn("vault \"%s\": %s (trying again in "
					"%d s)", cfg->vaults[i].name, e.msg,
					WATCH_RETRY_MS / 1000);
		}
		if (now >= retry_at)
			retry_at = now + WATCH_RETRY_MS;
		if (missing && timeout > WATCH_RETRY_MS)
			timeout = WATCH_RETRY_MS;
		pfd[0].fd = o->stop_fd;
		pfd[0].events = POLLIN;
		for (size_t i = 0; i < n; i++) {
			const struct orch_provider_ops *ops =
			    o->providers[i]->ops;
			int t;

			pfd[i + 1].fd = w[i] ? ops->watch_fd(w[i]) : -1;
			pfd[i + 1].events = POLLIN;
			nfd++;
			t = w[i] ? ops->watch_timeout(w[i]) : -1;
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		if (poll(pfd, (nfds_t)nfd, timeout) < 0 && errno != EINTR)
			cm_warn("vault watcher: poll: %s", strerror(errno));
		if (pfd[0].revents & POLLIN)
			break;
		for (size_t i = 0; i < n; i++) {
			const struct orch_provider_ops *ops =
			    o->providers[i]->ops;
			struct cm_err e;

			if (!w[i])
				continue;
			cm_err_clear(&e);
			if (ops->watch_poll(w[i], &e) < 0) {
				cm_warn("vault \"%s\": %s (watching again in "
					"%d s)", cfg->vaults[i].name, e.msg,
					WATCH_RETRY_MS / 1000);
				ops->watch_free(w[i]);
				w[i] = NULL;
				retry_at = now_ms() + WATCH_RETRY_MS;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		if (w[i])
			o->providers[i]->ops->watch_free(w[i]);
	free(w);
	free(pfd);
	return NULL;
}

/* ---- start and stop ---------------------------------------------------- */

/* Whether process `pid` was killed and is still exiting: its leader a
 * zombie, or SIGKILL pending in one of its threads (a thread in an
 * uninterruptible wait has not taken it yet). */
static bool dying(long pid)
{
	char path[64];
	struct dirent *d;
	bool yes = false;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!yes && (d = readdir(dir))) {
		char line[128];
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/task/%.16s/status", pid,
			 d->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (!yes && fgets(line, sizeof(line), f)) {
			unsigned long long mask;

			if (!strncmp(line, "State:", 6))
				yes = strchr(line, 'Z') || strchr(line, 'X');
			else if ((sscanf(line, "SigPnd: %llx", &mask) == 1 ||
				  sscanf(line, "ShdPnd: %llx", &mask) == 1))
				yes = mask & (1ULL << (SIGKILL - 1));
		}
		fclose(f);
	}
	closedir(dir);
	return yes;
}

/*
 * Take the state directory's lock. A vaultfs killed while one of its
 * threads waited, unkillably, for a read of a loop device over one of its
 * own FUSE files (an EBS snapshot, an overlay) cannot finish dying: the
 * server thread is gone, but /dev/fuse closes only when the last thread
 * exits, so the read waits for ever, and the process keeps the lock. Such
 * a holder is dying, not running: its FUSE connections under the state
 * directory are aborted (the reads fail, the process exits), and the lock
 * is waited for. A live holder is refused as before.
 */
static int open_journal(struct orch *o, struct cm_err *err)
{
	const char *dir = o->cfg->state_dir;
	long pid;
	int rc;

	rc = orch_journal_open(dir, &o->journal, err);
	if (rc != -EBUSY || (pid = orch_journal_holder(dir)) <= 0 ||
	    !dying(pid))
		return rc;
	cm_warn("vaultfs pid %ld was killed and has not exited: aborting its "
		"FUSE connections under %s, waiting for its lock", pid, dir);
	for (int i = 0; rc == -EBUSY && i < 600; i++) {
		if (i % 10 == 0)
			arc_fuse_abort_under(dir);
		cm_sleep_ms(100);
		cm_err_clear(err);
		rc = orch_journal_open(dir, &o->journal, err);
	}
	if (rc == 0)
		cm_info("vaultfs pid %ld exited; its lock is ours", pid);
	return rc;
}

int orch_start(struct orch *o, struct cm_err *err)
{
	unsigned n = o->cfg->jobs ? o->cfg->jobs : 1;
	int rc;

	if (o->journal)
		return 0;
	rc = open_journal(o, err);
	if (rc)
		return rc;
	rc = clean_tmp(o, err);
	if (rc == 0)
		rc = recover(o, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&o->lock);
	o->started = true;
	pthread_mutex_unlock(&o->lock);
	o->workers = cm_xcalloc(n, sizeof(*o->workers));
	for (; o->nworkers < n; o->nworkers++) {
		rc = pthread_create(&o->workers[o->nworkers], NULL,
				    worker_main, o);
		if (rc) {
			cm_err_set(err, rc, "cannot start a worker: %s",
				   strerror(rc));
			orch_stop(o);
			return -rc;
		}
	}
	if (!o->opts.once && o->cfg->auto_start && o->cfg->nvaults) {
		o->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (o->stop_fd < 0) {
			rc = cm_err_set(err, errno, "eventfd: %s",
					strerror(errno));
			orch_stop(o);
			return rc;
		}
		rc = pthread_create(&o->watcher, NULL, watcher_main, o);
		if (rc) {
			cm_err_set(err, rc, "cannot start the vault watcher: "
				   "%s", strerror(rc));
			orch_stop(o);
			return -rc;
		}
		o->have_watcher = true;
	}
	return 0;
}

void orch_stop(struct orch *o)
{
	uint64_t one = 1;

	pthread_mutex_lock(&o->lock);
	if (!o->stopping) {
		o->stopping = true;
		for (size_t i = 0; i < o->njobs; i++) {
			struct job *jb = o->jobs[i];

			if (!jb->running)
				continue;
			atomic_store(&jb->cancel_why, JOB_CANCEL_SHUTDOWN);
			atomic_store(&jb->cancel, 1);
		}
		pthread_cond_broadcast(&o->work);
		pthread_cond_broadcast(&o->idle);
	}
	pthread_mutex_unlock(&o->lock);
	if (o->have_watcher) {
		if (write(o->stop_fd, &one, sizeof(one)) < 0)
			cm_warn("cannot wake the vault watcher: %s",
				strerror(errno));
		pthread_join(o->watcher, NULL);
		o->have_watcher = false;
	}
	for (unsigned i = 0; i < o->nworkers; i++)
		pthread_join(o->workers[i], NULL);
	o->nworkers = 0;
	/* woken again: waiters see nothing running now */
	pthread_mutex_lock(&o->lock);
	pthread_cond_broadcast(&o->idle);
	pthread_mutex_unlock(&o->lock);
}

void orch_free(struct orch *o)
{
	if (!o)
		return;
	orch_stop(o);
	/* onFailure commands still running: each until its timeout */
	orch_failure_cmds_free(o->failure_cmds);
	for (size_t i = 0; i < o->njobs; i++)
		job_free(o->jobs[i]);
	free(o->jobs);
	orch_index_free(o->index);
	free(o->queue);
	free(o->workers);
	if (o->providers)
		for (size_t i = 0; i < o->cfg->nvaults; i++)
			orch_provider_free(o->providers[i]);
	free(o->providers);
	orch_dest_free(o->dest);
	orch_journal_close(o->journal);
	if (o->stop_fd >= 0)
		close(o->stop_fd);
	free(o->tmp_dir);
	free(o->jobs_dir);
	free(o->last_success);
	pthread_mutex_destroy(&o->submit_lock);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->index_lock);
	pthread_cond_destroy(&o->work);
	pthread_cond_destroy(&o->idle);
	free(o);
}

bool orch_wait_idle(struct orch *o, int timeout_ms)
{
	uint64_t end = timeout_ms < 0 ? UINT64_MAX
				      : now_ms() + (uint64_t)timeout_ms;
	bool idle;

	pthread_mutex_lock(&o->lock);
	while (!(idle = is_idle(o))) {
		uint64_t now = now_ms();

		if (now >= end)
			break;
		if (timeout_ms < 0)
			pthread_cond_wait(&o->idle, &o->lock);
		else
			timed_wait(&o->idle, &o->lock, (int)(end - now));
	}
	pthread_mutex_unlock(&o->lock);
	return idle;
}

/* ---- readers ----------------------------------------------------------- */

static int by_id(const void *a, const void *b)
{
	const struct orch_job_info *x = a, *y = b;

	return strcmp(x->id, y->id);
}

void orch_snapshot(struct orch *o, struct orch_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&o->lock);
	out->jobs = cm_xcalloc(o->njobs + 1, sizeof(*out->jobs));
	for (size_t i = 0; i < o->njobs; i++) {
		struct orch_job_info *ji = &out->jobs[out->n++];

		job_info(o->jobs[i], ji);
		out->by_state[ji->state]++;
		if (ji->running) {
			out->running++;
			out->bytes_read += ji->bytes_read;
			out->rate += ji->rate;
		}
	}
	out->vault_last_success = cm_xcalloc(o->cfg->nvaults + 1,
					     sizeof(*out->vault_last_success));
	memcpy(out->vault_last_success, o->last_success,
	       o->cfg->nvaults * sizeof(*o->last_success));
	if (o->index) {
		out->indexed = orch_index_count(o->index);
		orch_index_counts(o->index, out->by_state, NULL,
				  &out->indexed_archived);
	}
	pthread_mutex_unlock(&o->lock);
	qsort(out->jobs, out->n, sizeof(*out->jobs), by_id);
}

/* A finished job out of memory, read back from where its record is (no
 * lock held: a record does not change once it left memory). */
static int load_indexed(struct orch *o, const struct orch_index_hit *hit,
			struct orch_job_info *out)
{
	struct orch_job *j = NULL;
	struct cm_err e;
	int rc;

	cm_err_clear(&e);
	/* a record in the tail: its file is still there (the tail goes
	 * into the index file before any job file goes) */
	rc = !ORCH_INDEX_IN_FILE(hit->where) ?
		     orch_journal_load_job(o->cfg->state_dir, hit->id, &j, &e) :
		     orch_index_load_record(o->cfg->state_dir, hit->where, &j,
					    &e);
	if (rc == -ENOENT && !ORCH_INDEX_IN_FILE(hit->where)) {
		/* folded meanwhile: its entry moved before its file went */
		struct orch_index_hit now;
		bool moved;

		pthread_mutex_lock(&o->lock);
		moved = orch_index_find_id(o->index, hit->id, &now) &&
			ORCH_INDEX_IN_FILE(now.where);
		pthread_mutex_unlock(&o->lock);
		if (moved) {
			cm_err_clear(&e);
			rc = orch_index_load_record(o->cfg->state_dir,
						    now.where, &j, &e);
		}
	}
	if (rc) {
		cm_warn("job %s: %s", hit->id, e.msg);
		return rc;
	}
	orch_job_info_from_job(j, time(NULL), out);
	orch_job_free(j);
	return 0;
}

int orch_job_get(struct orch *o, const char *job_id,
		 struct orch_job_info *out)
{
	struct orch_index_hit hit;
	struct job *jb;
	bool indexed = false;

	pthread_mutex_lock(&o->lock);
	jb = find_job(o, job_id);
	if (jb)
		job_info(jb, out);
	else if (o->index)
		indexed = orch_index_find_id(o->index, job_id, &hit);
	pthread_mutex_unlock(&o->lock);
	if (indexed)
		return load_indexed(o, &hit, out);
	return jb ? 0 : -ENOENT;
}

int orch_job_for_rp(struct orch *o, const char *vault, const char *name,
		    struct orch_job_info *out)
{
	struct orch_index_hit hit;
	struct job *found = NULL;
	bool indexed = false;

	pthread_mutex_lock(&o->lock);
	for (size_t i = o->njobs; i-- > 0 && !found;) {
		const struct orch_job *j = o->jobs[i]->j;

		if (strcmp(j->vault, vault) == 0 &&
		    strcmp(job_rp_name(j), name) == 0)
			found = o->jobs[i];
	}
	if (found)
		job_info(found, out);
	else if (o->index)
		indexed = orch_index_find_name(o->index, vault, name, &hit);
	pthread_mutex_unlock(&o->lock);
	if (indexed)
		return load_indexed(o, &hit, out);
	return found ? 0 : -ENOENT;
}

/* The last `max` bytes of a job's log file, from a line start. */
static char *log_file_tail(const struct orch *o, const char *id, size_t max)
{
	char *path = cm_xasprintf("%s/%s.log", o->jobs_dir, id);
	char *buf = NULL, *start;
	struct stat st;
	off_t off = 0;
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size > max)
		off = st.st_size - (off_t)max;
	buf = cm_xmalloc(max + 1);
	got = pread(fd, buf, max, off);
	close(fd);
	if (got <= 0) {
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	start = buf;
	if (off > 0 && (start = strchr(buf, '\n')))
		start++;
	if (!start || !*start) {
		free(buf);
		return NULL;
	}
	memmove(buf, start, strlen(start) + 1);
	return buf;
}

char *orch_job_log(struct orch *o, const char *job_id)
{
	struct orch_index_hit hit;
	struct job *jb;
	char *text = NULL;
	bool known = true;

	if (!orch_job_id_valid(job_id))
		return NULL;
	pthread_mutex_lock(&o->lock);
	jb = find_job(o, job_id);
	if (jb)
		text = job_log_text(jb); /* log_lock is a leaf */
	else if (!o->index || !orch_index_find_id(o->index, job_id, &hit))
		known = false;
	pthread_mutex_unlock(&o->lock);
	if (!text && known) /* a folded job's log went with its file */
		text = log_file_tail(o, job_id, 64 * 1024);
	return text;
}

size_t orch_failed_count(struct orch *o)
{
	size_t n;

	pthread_mutex_lock(&o->lock);
	n = o->nfailed;
	pthread_mutex_unlock(&o->lock);
	return n;
}

struct orch_dest *orch_destination(struct orch *o)
{
	return o->dest;
}
