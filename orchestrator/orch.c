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
 * ->lock is held (jb->refs) by whoever uses it. Finished jobs loaded at
 * start go to the index at once, and those finished before
 * journal.keepDays fold into the index file (at start, then hourly on
 * the watcher's thread: fold_due). A job's record is written only by the
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
		orch_index_add(o->index, &rec, ORCH_INDEX_IN_JOURNAL);
		memmove(&o->jobs[i], &o->jobs[i + 1],
			(o->njobs - i - 1) * sizeof(*o->jobs));
		o->njobs--;
		job_free(jb);
		nfinished--;
	}
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
	pthread_cond_init(&o->work, NULL);
	pthread_cond_init(&o->idle, NULL);
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

/* Job ids. */
struct id_list {
	char (*id)[ORCH_JOB_ID_SIZE];
	size_t n, cap;
};

static void id_push(struct id_list *l, const char *id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->id = cm_xrealloc(l->id, l->cap * sizeof(*l->id));
	}
	memcpy(l->id[l->n++], id, ORCH_JOB_ID_SIZE);
}

/* What loading the journal at start gathers. */
struct loading {
	struct orch *o;
	time_t cutoff;                /* finished before it: folded */
	struct orch_index_pos pos;    /* of the index file as loaded */
	struct orch_index_writer *w;  /* the new index, from the first fold */
	bool fold_failed;
	struct cm_err fold_err;
	struct job **live;            /* unfinished or holding resources */
	size_t nlive, live_cap;
	struct id_list folded;        /* into the new index */
	struct id_list stale;         /* in the index already */
};

static time_t job_ended(const struct orch_job *j)
{
	time_t t = 0;

	for (int s = 0; s < ORCH_JOB_NSTATES; s++)
		if (j->times[s] > t)
			t = j->times[s];
	return t;
}

/* A fold failed: what was folded so far stays in the journal. */
static void fold_undo(struct loading *l)
{
	orch_index_writer_abort(l->w);
	l->w = NULL;
	l->fold_failed = true;
	for (size_t i = 0; i < l->folded.n; i++)
		orch_index_set_where(l->o->index, l->folded.id[i],
				     ORCH_INDEX_IN_JOURNAL);
	l->folded.n = 0;
}

/* Into the new index file; `where` receives its offset, or stays. */
static void fold(struct loading *l, const struct orch_job *j,
		 uint64_t *where)
{
	uint64_t off;

	if (l->fold_failed)
		return;
	if (!l->w && orch_index_writer_open(l->o->cfg->state_dir, &l->pos,
					    &l->w, &l->fold_err)) {
		fold_undo(l);
		return;
	}
	if (orch_index_writer_add(l->w, j, &off, &l->fold_err)) {
		fold_undo(l);
		return;
	}
	*where = off;
	id_push(&l->folded, j->id);
}

/* One journal file (orch_journal_each): a finished job to the index,
 * folded when old enough; the others stay whole. */
static void load_job(void *ctx, struct orch_job *j)
{
	struct loading *l = ctx;
	struct orch_index *ix = l->o->index;
	struct orch_index_hit hit;
	struct orch_index_rec rec;
	uint64_t where = ORCH_INDEX_IN_JOURNAL;

	if (orch_index_find_id(ix, j->id, &hit)) {
		/* in the index: a compaction was cut off before removing
		 * its files */
		id_push(&l->stale, j->id);
		orch_job_free(j);
		return;
	}
	if (!orch_job_state_final(j->state) || orch_job_holds_resources(j)) {
		if (l->nlive == l->live_cap) {
			l->live_cap = l->live_cap ? l->live_cap * 2 : 16;
			l->live = cm_xrealloc(l->live, l->live_cap *
							       sizeof(*l->live));
		}
		l->live[l->nlive++] = job_new(l->o, j);
		return;
	}
	if (job_ended(j) <= l->cutoff)
		fold(l, j, &where);
	orch_index_rec_from_job(j, &rec);
	orch_index_add(ix, &rec, where);
	orch_job_free(j);
}

static int live_by_id(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a;
	const struct job *y = *(struct job *const *)b;

	return strcmp(x->j->id, y->j->id);
}

/* Test-only: VAULTFS_TEST_PAUSE_AT=folding:SECONDS stops the start once
 * the new index is in place and before the journal's files go (for the
 * crash test). */
static void test_pause_folding(struct orch *o)
{
	for (size_t i = 0; i < o->npauses; i++) {
		if (strcmp(o->pauses[i].stage, "folding") != 0)
			continue;
		cm_warn("test: paused at folding for %u ms", o->pauses[i].ms);
		cm_sleep_ms(o->pauses[i].ms);
	}
}

static void forget_all(struct orch *o, const struct id_list *ids)
{
	for (size_t i = 0; i < ids->n; i++) {
		int rc = orch_journal_forget(o->journal, ids->id[i]);

		if (rc)
			cm_warn("journal: job %s is in the index; its file "
				"stays in %s/jobs until the next start: %s",
				ids->id[i], o->cfg->state_dir, strerror(-rc));
	}
}

/* Commit the new index, then remove the journal files it holds: a job is
 * in the journal, the index, or both for a moment; never in neither. */
static void fold_commit(struct loading *l)
{
	struct orch *o = l->o;

	o->index_pos = l->pos;
	if (l->w && orch_index_writer_commit(l->w, &o->index_pos,
					     &l->fold_err)) {
		l->w = NULL;
		o->index_pos = l->pos;
		fold_undo(l);
	}
	l->w = NULL;
	if (l->fold_failed)
		cm_warn("journal: finished jobs stay in %s/jobs, not folded "
			"into the index: %s", o->cfg->state_dir,
			l->fold_err.msg);
	if (l->folded.n)
		test_pause_folding(o);
	forget_all(o, &l->stale);
	forget_all(o, &l->folded);
	if (l->stale.n || l->folded.n)
		orch_journal_sync(o->journal);
	if (l->folded.n)
		cm_info("journal: %zu finished job%s folded into %s/%s",
			l->folded.n, l->folded.n == 1 ? "" : "s",
			o->cfg->state_dir, ORCH_INDEX_NAME);
}

static int recover(struct orch *o, struct cm_err *err)
{
	struct loading l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.o = o;
	l.cutoff = time(NULL) - (time_t)o->cfg->keep_days * 86400;
	cm_err_clear(&l.fold_err);
	o->index = orch_index_new();
	{
		/* a new index a crash cut off before its rename */
		char *tmp = cm_xasprintf("%s/%s.tmp", o->cfg->state_dir,
					 ORCH_INDEX_NAME);

		unlink(tmp);
		free(tmp);
	}
	rc = orch_index_load(o->cfg->state_dir, o->index, &l.pos, err);
	if (rc == 0)
		rc = orch_journal_each(o->journal, load_job, &l, NULL, err);
	if (rc) {
		orch_index_writer_abort(l.w);
		for (size_t i = 0; i < l.nlive; i++)
			job_free(l.live[i]);
		goto out;
	}
	fold_commit(&l);
	if (l.nlive > 1)
		qsort(l.live, l.nlive, sizeof(*l.live), live_by_id);
	for (size_t i = 0; i < l.nlive; i++) {
		struct job *jb = l.live[i];

		pthread_mutex_lock(&o->lock);
		add_job(o, jb);
		job_hold(jb);
		pthread_mutex_unlock(&o->lock);
		recover_one(o, jb);
		job_drop(o, jb);
	}
out:
	free(l.live);
	free(l.folded.id);
	free(l.stale.id);
	return rc;
}

/*
 * While running (the watcher, every fold_every_ms): fold the jobs that
 * left memory and ended before journal.keepDays, as at start. Only this
 * thread writes the index file after start; readers holding an old
 * `where` retry (load_indexed). The entries move under ->lock before the
 * files go.
 */
static void fold_due(struct orch *o)
{
	time_t cutoff = time(NULL) - (time_t)o->cfg->keep_days * 86400;
	struct orch_index_writer *w = NULL;
	char (*ids)[ORCH_JOB_ID_SIZE];
	struct orch_index_pos pos;
	uint64_t *offs;
	struct cm_err e;
	size_t n;
	int rc = 0;

	cm_err_clear(&e);
	pthread_mutex_lock(&o->lock);
	n = orch_index_due(o->index, cutoff, &ids);
	pthread_mutex_unlock(&o->lock);
	if (!n)
		return;
	offs = cm_xcalloc(n, sizeof(*offs));
	rc = orch_index_writer_open(o->cfg->state_dir, &o->index_pos, &w, &e);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct orch_job *j = NULL;

		rc = orch_journal_load_job(o->cfg->state_dir, ids[i], &j, &e);
		if (rc == 0)
			rc = orch_index_writer_add(w, j, &offs[i], &e);
		orch_job_free(j);
	}
	if (rc == 0) {
		rc = orch_index_writer_commit(w, &pos, &e);
		w = NULL;
	}
	if (rc) {
		orch_index_writer_abort(w);
		cm_warn("journal: finished jobs stay in %s/jobs, not folded "
			"into the index: %s", o->cfg->state_dir, e.msg);
		goto out;
	}
	pthread_mutex_lock(&o->lock);
	o->index_pos = pos;
	for (size_t i = 0; i < n; i++)
		orch_index_set_where(o->index, ids[i], offs[i]);
	pthread_mutex_unlock(&o->lock);
	{
		struct id_list l = { ids, n, n };

		forget_all(o, &l);
	}
	orch_journal_sync(o->journal);
	cm_info("journal: %zu finished job%s folded into %s/%s", n,
		n == 1 ? "" : "s", o->cfg->state_dir, ORCH_INDEX_NAME);
out:
	free(offs);
	free(ids);
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
	}
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
		pthread_mutex_unlock(&o->lock);
		/* told before anyone sees the engine idle */
		job_notify(jb);
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
	pthread_mutex_destroy(&o->submit_lock);
	pthread_mutex_destroy(&o->lock);
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
	rc = hit->where == ORCH_INDEX_IN_JOURNAL ?
		     orch_journal_load_job(o->cfg->state_dir, hit->id, &j, &e) :
		     orch_index_load_record(o->cfg->state_dir, hit->where, &j,
					    &e);
	if (rc == -ENOENT && hit->where == ORCH_INDEX_IN_JOURNAL) {
		/* folded meanwhile: its entry moved before its file went */
		struct orch_index_hit now;
		bool moved;

		pthread_mutex_lock(&o->lock);
		moved = orch_index_find_id(o->index, hit->id, &now) &&
			now.where != ORCH_INDEX_IN_JOURNAL;
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
