/*
 * job.c - one run of one job, on the worker thread that picked it:
 *
 *   restoring   the provider makes the recovery point readable (local:
 *               opened once, checked to be still the one queued; the
 *               archiver reads through that descriptor, after the
 *               provider's check() right before archiving)
 *   exporting   instead of archiving, for a recovery point its service
 *               exports itself (provider.h, "Exports"): the provider
 *               starts the export into the same folder, or follows the
 *               one recorded by an earlier run, until it is complete;
 *               verifying is then the provider's check of the export's own
 *               manifests, and manifest.json is written beside them
 *   archiving   arc_run() into PREFIX/RESOURCE/Y=/M=/D=/JOBID/, its loop
 *               devices, mounts and multipart upload journaled through its
 *               hooks as they appear; then manifest.json, completed with
 *               the job, the recovery point and the configured tags
 *   verifying   by the destination (dest.h). S3: HeadObject size and
 *               ETag equal what was uploaded, the manifest is there
 *               (verify "full": both downloaded, the archive's sha256 and
 *               the manifest's values checked); local store: size and
 *               sha256 of the file, and the manifest's. With
 *               autoDeleteSnapshot (or verify "decode") the archive is
 *               read back and decoded end to end (archiver/verify.h), and
 *               no snapshot is deleted without that in this run
 *   cleaning    always, whatever happened before: the provider's release,
 *               then every record of the journal not yet released (an
 *               upload that arc_run could not abort, a mount of a crashed
 *               run), then what the destination keeps of a failed run (a
 *               local store's partial file); then, only if the archive
 *               was verified and is complete, autoDeleteSnapshot is on
 *               and the security tag allows it, the snapshot is deleted
 *   (a failed or incomplete job starts onFailure, which runs beside the
 *   next jobs: onfailure.h)
 *   succeeded | incomplete | failed | cancelled, or queued again: for a
 *               retry with backoff after a retryable error, or, when the
 *               engine is stopping, for the next start (the run then does
 *               not count as an attempt). incomplete: verified, but the
 *               archive left something out (result_incomplete); the
 *               snapshot is kept and onFailure runs
 *
 * A job cut off by a crash resumes where it is safe to: at cleaning once
 * verified, at verifying once the archive and its manifest are recorded,
 * otherwise from the start (into the same folder: the job id names it).
 *
 * The worker owns the journal record while it runs: it changes it and
 * saves it holding job->lock, so that readers (orch_snapshot) copy a
 * consistent record. The archiver's callbacks run on this same thread.
 * The job's log: a thread sink (cm_log_set_thread_sink) that appends every
 * line of this thread at info level or above to STATEDIR/jobs/ID.log and
 * to a ring of the last ORCH_JOB_LOG_LINES lines.
 */
#include "orch_int.h"
#include "run.h"
#include "fault.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "resources.h"
#include "onfailure.h"
#include "s3.h"
#include "timeutil.h"
#include "url.h"
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SAVE_EVERY_NS 1000000000ULL  /* progress into the journal */
#define RETRY_BASE_MS 2000
#define RETRY_MAX_MS 60000

/* ---- the job object ---------------------------------------------------- */

struct job *job_new(struct orch *o, struct orch_job *j)
{
	struct job *jb = cm_xcalloc(1, sizeof(*jb));

	jb->o = o;
	jb->j = j;
	jb->log_fd = -1;
	jb->where = ORCH_INDEX_IN_JOURNAL;
	pthread_mutex_init(&jb->lock, NULL);
	pthread_mutex_init(&jb->log_lock, NULL);
	return jb;
}

void job_free(struct job *jb)
{
	if (!jb)
		return;
	orch_job_free(jb->j);
	if (jb->have_rp)
		orch_rp_release(&jb->rp);
	for (size_t i = 0; i < ORCH_JOB_LOG_LINES; i++)
		free(jb->log[i]);
	if (jb->log_fd >= 0)
		close(jb->log_fd);
	free(jb->no_cancel);
	pthread_mutex_destroy(&jb->lock);
	pthread_mutex_destroy(&jb->log_lock);
	free(jb);
}

const char *job_rp_name(const struct orch_job *j)
{
	return j->rp_name;
}

struct orch_provider *job_provider(struct job *jb)
{
	const struct orch_config *cfg = jb->o->cfg;

	for (size_t i = 0; i < cfg->nvaults; i++)
		if (strcmp(cfg->vaults[i].name, jb->j->vault) == 0)
			return jb->o->providers[i];
	return NULL;
}

int job_save(struct job *jb, struct cm_err *err)
{
	int rc;

	pthread_mutex_lock(&jb->lock);
	rc = orch_journal_save(jb->o->journal, jb->j, err);
	pthread_mutex_unlock(&jb->lock);
	return rc;
}

void job_info(struct job *jb, struct orch_job_info *out)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&jb->lock);
	orch_job_info_from_job(jb->j, now, out);
	if (jb->j->state == ORCH_JOB_ARCHIVING && jb->rate > 0)
		out->rate = jb->rate;
	if (jb->no_cancel)
		out->no_cancel = cm_xstrdup(jb->no_cancel);
	pthread_mutex_unlock(&jb->lock);
	out->running = jb->running;
	out->waiting = jb->queued && jb->not_before_ms > 0;
}

void job_notify(struct job *jb)
{
	struct orch *o = jb->o;
	struct orch_job_info ji;

	if (!o->opts.notify)
		return;
	pthread_mutex_lock(&o->lock);
	job_info(jb, &ji);
	pthread_mutex_unlock(&o->lock);
	o->opts.notify(o->opts.notify_ctx, &ji);
	orch_job_info_release(&ji);
}

/* ---- the job's log ----------------------------------------------------- */

/* One line, stamped, into fd (when >= 0) and the ring. */
static void log_put(struct job *jb, int fd, const char *line)
{
	char stamp[40];
	char *text;
	size_t slot;

	cm_log_stamp(stamp, sizeof(stamp));
	text = cm_xasprintf("%s %s\n", stamp, line);
	if (fd >= 0 && write(fd, text, strlen(text)) < 0) {
		/* the ring still has it */
	}
	pthread_mutex_lock(&jb->log_lock);
	slot = (jb->log_head + jb->log_n) % ORCH_JOB_LOG_LINES;
	if (jb->log_n == ORCH_JOB_LOG_LINES) {
		slot = jb->log_head;
		jb->log_head = (jb->log_head + 1) % ORCH_JOB_LOG_LINES;
	} else {
		jb->log_n++;
	}
	free(jb->log[slot]);
	jb->log[slot] = text;
	pthread_mutex_unlock(&jb->log_lock);
}

static void log_sink(void *ctx, enum cm_log_level level, const char *line)
{
	struct job *jb = ctx;

	if (level > CM_LOG_INFO && cm_log_get_level() < CM_LOG_DEBUG)
		return;
	log_put(jb, jb->log_fd, line);
}

void job_log_line(struct job *jb, const char *fmt, ...)
{
	char line[CM_ERR_MSG_MAX + 64];
	char *path = cm_xasprintf("%s/%s.log", jb->o->jobs_dir, jb->j->id);
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* from another thread than the worker's: a descriptor of its own */
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	log_put(jb, fd, line);
	if (fd >= 0)
		close(fd);
	free(path);
	cm_info("job %s: %s", jb->j->id, line);
}

/* The i-th oldest line of the ring. */
#define LOG_SLOT(jb, i) (((jb)->log_head + (i)) % ORCH_JOB_LOG_LINES)

char *job_log_text(struct job *jb)
{
	size_t len = 0, off = 0;
	char *out = NULL;

	pthread_mutex_lock(&jb->log_lock);
	for (size_t i = 0; i < jb->log_n; i++)
		len += strlen(jb->log[LOG_SLOT(jb, i)]);
	if (len) {
		out = cm_xmalloc(len + 1);
		for (size_t i = 0; i < jb->log_n; i++) {
			const char *l = jb->log[LOG_SLOT(jb, i)];
			size_t n = strlen(l);

			memcpy(out + off, l, n);
			off += n;
		}
		out[off] = '\0';
	}
	pthread_mutex_unlock(&jb->log_lock);
	return out;
}

static void log_open(struct job *jb)
{
	char *path = cm_xasprintf("%s/%s.log", jb->o->jobs_dir, jb->j->id);

	jb->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0644);
	if (jb->log_fd < 0)
		cm_warn("job %s: cannot open its log %s: %s", jb->j->id, path,
			strerror(errno));
	free(path);
}

static void log_close(struct job *jb)
{
	if (jb->log_fd >= 0)
		close(jb->log_fd);
	jb->log_fd = -1;
}

/* ---- journal hooks ----------------------------------------------------- */

static int rj_add(void *ctx, const char *kind,
		  const struct orch_res_ids *ids, size_t *idx,
		  struct cm_err *err)
{
	struct job *jb = ctx;
	int rc;

	pthread_mutex_lock(&jb->lock);
	rc = orch_journal_res_add(jb->o->journal, jb->j, kind, ids, idx, err);
	pthread_mutex_unlock(&jb->lock);
	return rc;
}

static int rj_created(void *ctx, size_t idx, const struct orch_res_ids *ids,
		      struct cm_err *err)
{
	struct job *jb = ctx;
	int rc;

	pthread_mutex_lock(&jb->lock);
	rc = orch_journal_res_created(jb->o->journal, jb->j, idx, ids, err);
	pthread_mutex_unlock(&jb->lock);
	return rc;
}

static int rj_released(void *ctx, size_t idx, struct cm_err *err)
{
	struct job *jb = ctx;
	int rc;

	pthread_mutex_lock(&jb->lock);
	rc = orch_journal_res_released(jb->o->journal, jb->j, idx, err);
	pthread_mutex_unlock(&jb->lock);
	return rc;
}

static const struct orch_res_journal *res_journal(struct job *jb,
						   struct orch_res_journal *rj)
{
	rj->add = rj_add;
	rj->created = rj_created;
	rj->released = rj_released;
	rj->ctx = jb;
	rj->job_id = jb->j->id;
	return rj;
}

/* A hook failed to journal: remember why, for the job's error. */
static int hook_failed(struct job *jb, int rc, const struct cm_err *e)
{
	if (!jb->hook_rc) {
		jb->hook_rc = rc;
		jb->hook_err = *e;
	}
	return rc;
}

/* The newest record of `kind` at `path` that is not released. */
static bool find_res(struct job *jb, const char *kind, const char *path,
		     size_t *idx)
{
	for (size_t i = jb->j->nres; i-- > 0;) {
		const struct orch_resource *r = &jb->j->res[i];
		const char *p = !strcmp(kind, ORCH_RES_MOUNT)	? r->mount_point
				: !strcmp(kind, ORCH_RES_TEMPDIR) ? r->dir
								  : r->device;

		if (strcmp(r->kind, kind) == 0 && r->status != ORCH_RES_RELEASED && p &&
		    strcmp(p, path) == 0) {
			*idx = i;
			return true;
		}
	}
	return false;
}



/* arc_run's loop devices, mounts and device nodes (blockdev.h), and the
 * directories of journal-replay overlays (a tempdir: removed after its
 * FUSE mount). */
static int on_resource(void *ctx, enum arc_res_event ev,
		       enum arc_res_kind kind, const char *path,
		       const char *detail)
{
	struct job *jb = ctx;
	struct orch_res_ids ids = { 0 };
	const char *rk;
	struct cm_err e;
	size_t idx;
	int rc = 0;

	cm_err_clear(&e);
	rk = kind == ARC_RES_MOUNT   ? ORCH_RES_MOUNT :
	     kind == ARC_RES_NODE    ? ORCH_RES_NODE :
	     kind == ARC_RES_OVERLAY ? ORCH_RES_TEMPDIR :
				       ORCH_RES_LOOP;
	if (kind == ARC_RES_MOUNT) {
		ids.mount_point = path;
		ids.device = detail;
	} else if (kind == ARC_RES_NODE) {
		ids.device = path;
		ids.devnum = detail;
	} else if (kind == ARC_RES_OVERLAY) {
		ids.dir = path;
	} else {
		ids.device = path;
		ids.backing_file = detail;
	}
	pthread_mutex_lock(&jb->lock);
	switch (ev) {
	case ARC_RES_CREATING:
		rc = orch_journal_res_add(jb->o->journal, jb->j, rk, &ids,
					  &idx, &e);
		break;
	case ARC_RES_CREATED:
		if (!find_res(jb, rk, path, &idx))
			rc = orch_journal_res_add(jb->o->journal, jb->j, rk,
						  &ids, &idx, &e);
		if (rc == 0)
			rc = orch_journal_res_created(jb->o->journal, jb->j,
						      idx, NULL, &e);
		break;
	case ARC_RES_RELEASED:
		if (find_res(jb, rk, path, &idx))
			rc = orch_journal_res_released(jb->o->journal, jb->j,
						       idx, &e);
		break;
	}
	pthread_mutex_unlock(&jb->lock);
	if (rc == 0 && ev == ARC_RES_CREATED && kind == ARC_RES_MOUNT)
		job_test_pause(jb, "mounted");
	if (rc && ev == ARC_RES_RELEASED) {
		/* it is gone; the record says otherwise, which only costs a
		 * check at the next start */
		cm_warn("%s", e.msg);
		return 0;
	}
	return rc ? hook_failed(jb, rc, &e) : 0;
}

/* Test-only: VAULTFS_TEST_PAUSE_AT=STAGE:SECONDS (docs/orchestrator.md).
 * The pause ends early on a cancel, or once STATEDIR/continue-STAGE
 * exists (removed then): a test that must act during it says when it is
 * done. */
void job_test_pause(struct job *jb, const char *stage)
{
	const struct orch *o = jb->o;
	char *go;

	for (size_t i = 0; i < o->npauses; i++) {
		if (strcmp(o->pauses[i].stage, stage) != 0)
			continue;
		cm_warn("test: job %s paused at %s for %u ms", jb->j->id,
			stage, o->pauses[i].ms);
		go = cm_xasprintf("%s/continue-%s", o->cfg->state_dir, stage);
		for (unsigned ms = 0;
		     ms < o->pauses[i].ms && !atomic_load(&jb->cancel);
		     ms += 20) {
			if (unlink(go) == 0)
				break;
			cm_sleep_ms(20);
		}
		free(go);
	}
}

/* An upload to `url` recorded before it starts (S3 only: a local file
 * has nothing to abort after a crash); *idx its record. */
static int record_upload(struct job *jb, const char *url, struct job_upload *up,
			 struct cm_err *err)
{
	struct orch_res_ids ids = { 0 };
	char *bucket = NULL, *key = NULL;
	int rc;

	if (cm_url_kind(url) != CM_URL_S3)
		return 0;
	rc = s3_parse_url(url, &bucket, &key, err);
	if (rc == 0) {
		ids.bucket = bucket;
		ids.key = key;
		pthread_mutex_lock(&jb->lock);
		rc = orch_journal_res_add(jb->o->journal, jb->j,
					  ORCH_RES_UPLOAD, &ids, &up->idx,
					  err);
		pthread_mutex_unlock(&jb->lock);
		up->recorded = rc == 0;
	}
	free(bucket);
	free(key);
	return rc;
}

/* Its multipart upload's id, as soon as S3 gave it. */
static int record_upload_id(struct job *jb, struct job_upload *up,
			    const char *upload_id, const char *pause,
			    struct cm_err *err)
{
	struct orch_res_ids ids = { .upload_id = upload_id };
	int rc;

	if (!up->recorded)
		return cm_err_set(err, EINVAL, "an upload nobody recorded");
	pthread_mutex_lock(&jb->lock);
	rc = orch_journal_res_created(jb->o->journal, jb->j, up->idx, &ids,
				      err);
	pthread_mutex_unlock(&jb->lock);
	if (rc == 0)
		job_test_pause(jb, pause);
	return rc;
}

static void on_object(void *ctx, const char *url, enum arc_method m)
{
	struct job *jb = ctx;
	struct cm_err e;
	int rc;

	cm_err_clear(&e);
	cm_info("archiving as %s into %s", arc_method_name(m), url);
	rc = record_upload(jb, url, &jb->upload, &e);
	if (rc) {
		/* no record, no upload: stop the archive */
		hook_failed(jb, rc, &e);
		atomic_store(&jb->cancel, 1);
	}
}

static int on_upload_id(void *ctx, const char *upload_id, struct cm_err *err)
{
	return record_upload_id(ctx, &((struct job *)ctx)->upload, upload_id,
				"uploading", err);
}

/* The index beside the archive is an upload of its own, journaled the
 * same way (docs/orchestrator.md, "The journal and crashes"). */
static int on_index(void *ctx, const char *url, struct cm_err *err)
{
	return record_upload(ctx, url, &((struct job *)ctx)->index_upload,
			     err);
}

static int on_index_upload_id(void *ctx, const char *upload_id,
			      struct cm_err *err)
{
	return record_upload_id(ctx, &((struct job *)ctx)->index_upload,
				upload_id, "uploading-index", err);
}

static void on_progress(void *ctx, uint64_t bytes, uint64_t total)
{
	struct job *jb = ctx;
	uint64_t now = cm_now_ns();
	double secs;

	if (bytes && !jb->paused_writing) {
		jb->paused_writing = true;
		job_test_pause(jb, "writing");
	}
	pthread_mutex_lock(&jb->lock);
	jb->j->bytes_read = bytes;
	if (total)
		jb->j->bytes_total = total;
	if (jb->blocks_fetched)
		jb->j->blocks_fetched = atomic_load(jb->blocks_fetched);
	secs = (double)(now - jb->archive_ns) / 1e9;
	if (secs > 0.05)
		jb->rate = (double)bytes / secs;
	if (now - jb->last_save_ns >= SAVE_EVERY_NS) {
		jb->last_save_ns = now;
		orch_journal_save(jb->o->journal, jb->j, NULL);
	}
	pthread_mutex_unlock(&jb->lock);
}

/* ---- states ------------------------------------------------------------ */

static int enter(struct job *jb, enum orch_job_state s, struct cm_err *err)
{
	int rc;

	pthread_mutex_lock(&jb->lock);
	orch_job_set_state(jb->j, s);
	rc = orch_journal_save(jb->o->journal, jb->j, err);
	pthread_mutex_unlock(&jb->lock);
	cm_info("job %s: %s", jb->j->id, orch_job_state_name(s));
	job_notify(jb);
	job_test_pause(jb, orch_job_state_name(s));
	return rc;
}

static int check_cancel(struct job *jb, struct cm_err *err)
{
	if (!atomic_load(&jb->cancel))
		return 0;
	if (atomic_load(&jb->cancel_why) == JOB_CANCEL_SHUTDOWN)
		return cm_err_set(err, ECANCELED, "interrupted: vaultfs is "
				  "stopping");
	return cm_err_set(err, ECANCELED, "cancelled");
}

/* The recovery point, read again, must be the one queued (`since`:
 * "queued" or "archived", for the message). */
static int refresh_rp(struct job *jb, struct orch_provider *prov,
		      struct orch_recovery_point *rp, const char *since,
		      struct cm_err *err)
{
	const struct orch_job *j = jb->j;
	int rc;

	rc = prov->ops->inspect(prov, job_rp_name(j), rp, err);
	if (rc == -ENOENT)
		return cm_err_set(err, ENOENT, "recovery point %s is gone",
				  j->rp_path);
	if (rc)
		return rc;
	if ((j->rp_size && rp->size != j->rp_size) ||
	    (j->rp_mtime && rp->mtime != j->rp_mtime) ||
	    strcmp(rp->resource_id, j->resource_id) != 0 ||
	    (j->rp_id.known && !orch_rp_identity_equal(&rp->id, &j->rp_id))) {
		orch_rp_release(rp);
		return cm_err_set(err, ESTALE, "superseded: recovery point "
				  "%s changed since it was %s (a new job "
				  "takes it)", j->rp_path, since);
	}
	pthread_mutex_lock(&jb->lock);
	if (jb->have_rp)
		orch_rp_release(&jb->rp);
	orch_rp_copy(&jb->rp, rp);
	jb->have_rp = true;
	pthread_mutex_unlock(&jb->lock);
	return 0;
}

/* ---- the manifest ------------------------------------------------------ */

static void add_tags(struct cm_json *obj, const char *key,
		     const struct orch_tag *tags, size_t n)
{
	struct cm_json *t = cm_json_add_object(obj, key);

	for (size_t i = 0; i < n; i++)
		cm_json_add_str(t, tags[i].key, tags[i].value);
}

/* Add the job, the tags and what the provider knows of the source to
 * root, and put it beside the archive as manifest.json. */
static int publish_manifest_json(struct job *jb, struct cm_json *root,
				 const char *dir_key,
				 const struct orch_recovery_point *rp,
				 const struct cm_json *source,
				 struct cm_err *err)
{
	struct orch *o = jb->o;
	const struct orch_config *cfg = o->cfg;
	struct cm_json *job;
	char when[32], *text = NULL;
	int rc;

	job = cm_json_add_object(root, "job");
	cm_json_add_str(job, "id", jb->j->id);
	cm_json_add_num(job, "attempt", jb->j->attempts);
	cm_json_add_str(job, "vault", rp->vault);
	cm_json_add_str(job, "recoveryPoint", rp->name);
	cm_json_add_str(job, "path", rp->path);
	cm_json_add_str(job, "type", rp->type);
	cm_json_add_str(job, "resourceId", rp->resource_id);
	cm_time_iso8601(rp->created, when, sizeof(when));
	cm_json_add_str(job, "created", when);
	cm_json_add_u64(job, "size", rp->size);
	add_tags(root, "tags", cfg->tags, cfg->ntags);
	add_tags(root, "recoveryPointTags", rp->tags, rp->ntags);
	if (source)
		cm_json_add(root, "source", cm_json_copy(source));
	text = cm_json_print(root);
	rc = o->dest->ops->publish_manifest(o->dest, dir_key, text,
					    strlen(text), err);
	free(text);
	return rc;
}

/* arc_run wrote its manifest to `draft`: completed, beside the archive. */
static int publish_manifest(struct job *jb, const char *draft,
			    const char *dir_key,
			    const struct orch_recovery_point *rp,
			    const struct cm_json *source, struct cm_err *err)
{
	struct cm_json *root = NULL;
	int rc;

	rc = cm_json_parse_file(draft, &root, err);
	if (rc == 0)
		rc = publish_manifest_json(jb, root, dir_key, rp, source, err);
	cm_json_free(root);
	return rc;
}

/* ---- archiving --------------------------------------------------------- */

static int archive(struct job *jb, const struct orch_recovery_point *rp,
		   const struct orch_restored *restored, const char *dir_key,
		   struct cm_err *err)
{
	struct orch *o = jb->o;
	const struct orch_config *cfg = o->cfg;
	struct arc_run_opts ro;
	struct arc_run_result res;
	struct orch_job *j = jb->j;
	char *dest, *draft, *overlay_dir;
	int rc = 0;

	memset(&ro, 0, sizeof(ro));
	dest = o->dest->ops->url(o->dest, dir_key);
	if (o->dest->ops->open_dir)
		rc = o->dest->ops->open_dir(o->dest, dir_key, err);
	draft = cm_xasprintf("%s/%s.manifest.json", o->tmp_dir, j->id);
	/* not under tmp/, which is emptied at start before the journal's
	 * resources (a dead FUSE mount among them) are released */
	overlay_dir = cm_xasprintf("%s/overlay", cfg->state_dir);
	if (rc)
		goto out;
	ro.src = restored->path;
	ro.src_fd = restored->fd;
	ro.has_src_fd = restored->fd >= 0;
	ro.mode = restored->mode;
	ro.codec.codec = cfg->compression.codec;
	ro.codec.level = cfg->compression.level;
	ro.codec.threads = cfg->compression.threads;
	ro.dest = dest;
	ro.manifest = draft;
	ro.client = o->dest->s3;
	ro.upload.expected_size = rp->size;
	ro.upload.part_size = cfg->part_size;
	ro.upload.concurrency = cfg->uploads;
	ro.upload.on_upload_id = on_upload_id;
	ro.upload.ctx = jb;
	ro.upload.key_is_ours = true; /* the job id names the key */
	ro.cancel = &jb->cancel;
	ro.progress = on_progress;
	ro.progress_ctx = jb;
	ro.on_object = on_object;
	ro.object_ctx = jb;
	ro.on_index = on_index;
	ro.on_index_upload_id = on_index_upload_id;
	ro.on_resource = on_resource;
	ro.resource_ctx = jb;
	ro.overlay_dir = overlay_dir;
	ro.overlay_limit = cfg->overlay_limit;

	pthread_mutex_lock(&jb->lock);
	jb->archive_ns = cm_now_ns();
	jb->rate = 0;
	j->bytes_read = 0;
	j->bytes_written = 0;
	j->bytes_total = rp->size;
	jb->blocks_fetched = restored->blocks_fetched;
	j->blocks_fetched = 0;
	j->blocks_total = restored->blocks_total;
	pthread_mutex_unlock(&jb->lock);
	jb->upload.recorded = false;
	jb->index_upload.recorded = false;
	jb->hook_rc = 0;
	jb->paused_writing = false;

	rc = arc_run(&ro, &res, err);
	if (rc && jb->hook_rc) {
		*err = jb->hook_err;
		rc = jb->hook_rc;
	} else if (rc == -ECANCELED) {
		check_cancel(jb, err);
	}
	if (rc == 0) {
		/* completed: nothing to abort */
		if (jb->upload.recorded)
			rj_released(jb, jb->upload.idx, NULL);
		if (jb->index_upload.recorded)
			rj_released(jb, jb->index_upload.idx, NULL);
		pthread_mutex_lock(&jb->lock);
		orch_job_set_result(j, res.object_url, res.bytes_written,
				    cm_url_kind(res.object_url) == CM_URL_S3 ?
				    res.etag : NULL, res.sha256_hex);
		j->bytes_written = res.bytes_written;
		j->bytes_read = res.stats.bytes_read;
		if (jb->blocks_fetched)
			j->blocks_fetched = atomic_load(jb->blocks_fetched);
		/* what was left out goes with the result: a crash before the
		 * end cannot lose it, so no later step deletes the snapshot */
		free(j->result_incomplete);
		j->result_incomplete = arc_stats_summary(&res.stats);
		if (res.stats.bytes_total)
			j->bytes_total = res.stats.bytes_total;
		rc = orch_journal_save(o->journal, j, err);
		pthread_mutex_unlock(&jb->lock);
		cm_info("archived %s (%s, %llu bytes, sha256 %s)%s",
			res.object_url, arc_method_name(res.method),
			(unsigned long long)res.bytes_written, res.sha256_hex,
			res.stats.warnings_count ? " with warnings" : "");
		if (j->result_incomplete)
			cm_warn("job %s: the archive is incomplete: %s",
				j->id, j->result_incomplete);
	}
	pthread_mutex_lock(&jb->lock);
	jb->blocks_fetched = NULL; /* the restorer's, released after us */
	pthread_mutex_unlock(&jb->lock);
	if (rc == 0)
		rc = publish_manifest(jb, draft, dir_key, rp,
				      restored->manifest, err);
	arc_run_result_release(&res);
out:
	unlink(draft);
	free(draft);
	free(overlay_dir);
	free(dest);
	return rc;
}

/* ---- exports (provider.h, "Exports") ---------------------------------- */

static int ex_record(void *ctx, const char *task, bool started,
		     struct cm_err *err)
{
	struct job *jb = ctx;
	struct orch_job *j = jb->j;
	bool was = j->state == ORCH_JOB_EXPORTING;
	int rc = 0;

	pthread_mutex_lock(&jb->lock);
	if (task && (!j->export_task || strcmp(j->export_task, task) != 0)) {
		free(j->export_task);
		j->export_task = cm_xstrdup(task);
	}
	orch_job_set_state(j, ORCH_JOB_EXPORTING);
	if (!was || task)
		rc = orch_journal_save(jb->o->journal, j, err);
	pthread_mutex_unlock(&jb->lock);
	if (rc)
		return rc;
	if (!was) {
		cm_info("job %s: exporting", j->id);
		job_notify(jb);
	}
	if (started) {
		cm_info("export %s started: following it", task);
		job_test_pause(jb, "export-started");
	} else {
		cm_info("export %s recorded; starting it",
			task ? task : "of this job");
		job_test_pause(jb, "export-recorded");
	}
	return 0;
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static void ex_progress(void *ctx, const struct orch_export_progress *p)
{
	struct job *jb = ctx;
	struct orch_job *j = jb->j;
	bool changed;

	pthread_mutex_lock(&jb->lock);
	changed = str_differs(j->export_status, p->status) ||
		  str_differs(j->export_detail, p->detail) ||
		  j->export_percent != p->percent;
	if (changed) {
		free(j->export_status);
		free(j->export_detail);
		j->export_status = p->status ? cm_xstrdup(p->status) : NULL;
		j->export_detail = p->detail ? cm_xstrdup(p->detail) : NULL;
		j->export_percent = p->percent;
		orch_journal_save(jb->o->journal, j, NULL);
	}
	pthread_mutex_unlock(&jb->lock);
	if (!changed)
		return;
	if (p->percent >= 0)
		cm_info("export %s: %s, %d%%%s%s", j->export_task, p->status,
			p->percent, p->detail ? ", " : "",
			p->detail ? p->detail : "");
	else
		cm_info("export %s: %s%s%s", j->export_task, p->status,
			p->detail ? ", " : "", p->detail ? p->detail : "");
	job_notify(jb);
}

static void ex_uncancellable(void *ctx, const char *why)
{
	struct job *jb = ctx;

	pthread_mutex_lock(&jb->lock);
	free(jb->no_cancel);
	jb->no_cancel = cm_xstrdup(why);
	pthread_mutex_unlock(&jb->lock);
}

static enum orch_export_stop ex_stop(void *ctx)
{
	struct job *jb = ctx;

	if (!atomic_load(&jb->cancel))
		return ORCH_EXPORT_GO;
	return atomic_load(&jb->cancel_why) == JOB_CANCEL_SHUTDOWN
		       ? ORCH_EXPORT_DETACH
		       : ORCH_EXPORT_CANCEL;
}

/* Poll floor for tests: VAULTFS_TEST_EXPORT_POLL_MS (docs/testing.md). */
static unsigned export_poll_ms(void)
{
	const char *v = getenv("VAULTFS_TEST_EXPORT_POLL_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;

	return ms >= 100 && ms <= ORCH_EXPORT_POLL_MAX_MS ? (unsigned)ms
							  : ORCH_EXPORT_POLL_MS;
}

static void export_init(struct job *jb, const char *dir_key,
			struct orch_export *x)
{
	memset(x, 0, sizeof(*x));
	x->job_id = jb->j->id;
	x->bucket = jb->o->dest->bucket;
	x->prefix = dir_key;
	x->task = jb->j->export_task;
	x->s3 = jb->o->dest->s3;
	x->poll_ms = export_poll_ms();
	x->record = ex_record;
	x->progress = ex_progress;
	x->uncancellable = ex_uncancellable;
	x->stop = ex_stop;
	x->ctx = jb;
}

/*
 * Start or follow rp's export to its end (ORCH_EXPORT_NONE: the provider
 * does not export it). The job's result is the export's own folder (under
 * the job's), where manifest.json goes too.
 */
static int run_export(struct job *jb, struct orch_provider *prov,
		      const struct orch_recovery_point *rp,
		      const char *dir_key, struct cm_err *err)
{
	struct orch_job *j = jb->j;
	struct orch_export x;
	int rc;

	if (!prov->ops->export)
		return ORCH_EXPORT_NONE;
	export_init(jb, dir_key, &x);
	rc = prov->ops->export(prov, rp, &x, err);
	if (rc == ORCH_EXPORT_NONE)
		return rc;
	if (rc == -ECANCELED && atomic_load(&jb->cancel))
		check_cancel(jb, err);
	if (rc == 0) {
		pthread_mutex_lock(&jb->lock);
		orch_job_set_result(j, x.url, 0, NULL, NULL);
		rc = orch_journal_save(jb->o->journal, j, err);
		pthread_mutex_unlock(&jb->lock);
		cm_info("export %s complete: %s", j->export_task, x.url);
	}
	orch_export_release(&x);
	return rc;
}

/*
 * The export, by its own manifests (the provider's export_verify), then
 * vaultfs's manifest.json beside them: the job, the recovery point, and
 * what the export holds.
 */
static int verify_export(struct job *jb, struct orch_provider *prov,
			 const char *dir_key, struct cm_err *err)
{
	struct orch_job *j = jb->j;
	struct orch_recovery_point rp;
	struct orch_export x;
	struct cm_json *root;
	const char *url_key;
	char when[32];
	int rc;

	if (!jb->o->dest->bucket || !j->result_url ||
	    strncmp(j->result_url, "s3://", 5) != 0)
		return cm_err_set(err, EINVAL, "export %s: no s3:// result "
				  "recorded", j->export_task);
	url_key = j->result_url + 5 + strlen(jb->o->dest->bucket);
	url_key += *url_key == '/';
	if (!prov)
		return cm_err_set(err, ENOENT, "vault \"%s\" is no longer "
				  "configured", j->vault);
	if (!prov->ops->export_verify)
		return cm_err_set(err, EINVAL, "the %s provider cannot verify "
				  "export %s", prov->ops->name,
				  j->export_task);
	if (!jb->have_rp) { /* resumed: the recovery point as it is now */
		rc = refresh_rp(jb, prov, &rp, "exported", err);
		if (rc)
			return rc;
		orch_rp_release(&rp);
	}
	export_init(jb, dir_key, &x);
	x.url = cm_xstrdup(j->result_url);
	rc = prov->ops->export_verify(prov, &jb->rp, &x, err);
	if (rc) {
		cm_err_prefix(err, "verify export %s", j->export_task);
		goto out;
	}
	pthread_mutex_lock(&jb->lock);
	j->result_size = x.bytes;
	j->bytes_written = x.bytes;
	pthread_mutex_unlock(&jb->lock);
	/* the times as vaultfs saw them (the service's are in its own) */
	cm_time_iso8601(j->times[ORCH_JOB_EXPORTING], when, sizeof(when));
	cm_json_add_str(x.facts, "exporting", when);
	cm_time_iso8601(time(NULL), when, sizeof(when));
	cm_json_add_str(x.facts, "verified", when);
	root = cm_json_new_object();
	cm_json_add_str(root, "kind", "export");
	cm_json_add_u64(root, "bytes_written", x.bytes);
	cm_json_add(root, "export", x.facts);
	x.facts = NULL;
	/* beside the export's own manifests */
	rc = publish_manifest_json(jb, root, url_key, &jb->rp, NULL, err);
	cm_json_free(root);
out:
	orch_export_release(&x);
	return rc;
}

/* ---- verification ------------------------------------------------------ */

/* The manifest's claims must be the job's. */
static int check_manifest(struct job *jb, const char *text, size_t len,
			  const char *where, struct cm_err *err)
{
	const struct orch_job *j = jb->j;
	struct cm_json *m = NULL;
	const char *sha, *etag;
	struct cm_json *bw;
	int rc;

	rc = cm_json_parse(text, len, &m, err);
	if (rc) {
		cm_err_prefix(err, "manifest %s", where);
		return rc;
	}
	sha = cm_json_get_str(m, "sha256");
	etag = cm_json_get_str(m, "etag");
	bw = cm_json_get(m, "bytes_written");
	if (!sha || !j->result_sha256 || strcmp(sha, j->result_sha256) != 0)
		rc = cm_err_set(err, EIO, "manifest %s: sha256 %s, the "
				"archive's is %s", where, sha ? sha : "missing",
				j->result_sha256 ? j->result_sha256 : "?");
	else if (!bw || cm_json_num(bw) != (double)j->result_size)
		rc = cm_err_set(err, EIO, "manifest %s: bytes_written is not "
				"the archive's %llu", where,
				(unsigned long long)j->result_size);
	else if (j->result_etag &&
		 (!etag || !s3_etag_equal(etag, j->result_etag)))
		rc = cm_err_set(err, EIO, "manifest %s: etag %s, the "
				"archive's is %s", where,
				etag ? etag : "missing", j->result_etag);
	cm_json_free(m);
	return rc;
}

static int check_manifest_cb(void *ctx, const char *text, size_t len,
			     const char *where, struct cm_err *err)
{
	return check_manifest(ctx, text, len, where, err);
}

/*
 * The full proof (archiver/verify.h): the stored object read back, decoded
 * end to end, every tar header walked, its size, sha256 and counts matched
 * against manifest.json beside it, and the manifest's claims against the
 * job's.
 */
static int verify_decode(struct job *jb, struct cm_err *err)
{
	const struct orch_job *j = jb->j;
	struct arc_verify_opts vo = { 0 };
	struct arc_verify_result res;
	const char *slash = strrchr(j->result_url, '/');
	char *murl = cm_xasprintf("%.*s%s",
				  slash ? (int)(slash - j->result_url + 1) : 0,
				  j->result_url, ORCH_MANIFEST_NAME);
	int rc;

	vo.url = j->result_url;
	vo.manifest = murl;
	vo.client = jb->o->dest->s3;
	vo.cancel = &jb->cancel;
	/* the threads that compressed it read it back */
	vo.threads = jb->o->cfg->compression.threads;
	rc = arc_verify(&vo, &res, err);
	if (rc == 0)
		rc = check_manifest(jb, res.manifest_text,
				    strlen(res.manifest_text), murl, err);
	if (rc == 0 && j->result_etag && *res.etag &&
	    !s3_etag_equal(res.etag, j->result_etag))
		rc = cm_err_set(err, EIO, "ETag %s read back, %s uploaded",
				res.etag, j->result_etag);
	if (rc)
		cm_err_prefix(err, "verify %s", j->result_url);
	else
		cm_info("verified %s: decoded %llu bytes in %llu %s, %llu tar "
			"entries, as the manifest says",
			j->result_url, (unsigned long long)res.counts.bytes,
			(unsigned long long)res.units,
			res.codec == ARC_CODEC_ZSTD ? "frame(s)" : "member(s)",
			(unsigned long long)res.counts.entries);
	arc_verify_result_release(&res);
	free(murl);
	return rc;
}

/* *decoded: whether the full decode ran and passed (verify_decode). */
static int verify(struct job *jb, bool *decoded, struct cm_err *err)
{
	const struct orch_config *cfg = jb->o->cfg;
	struct orch_dest *d = jb->o->dest;
	struct orch_dest_check c = { 0 };
	int rc;

	*decoded = false;
	if (!jb->j->result_url || !jb->j->result_sha256)
		return cm_err_set(err, EINVAL, "nothing recorded to verify");
	if (cm_fault("orch.verify"))
		return cm_err_set(err, EIO, "verify %s: failed (fault "
				  "injection)", jb->j->result_url);
	/* a snapshot that may be deleted needs the full proof */
	if (cfg->auto_delete_snapshot || cfg->verify == ORCH_VERIFY_DECODE) {
		rc = verify_decode(jb, err);
		*decoded = rc == 0;
		return rc;
	}
	c.url = jb->j->result_url;
	c.size = jb->j->result_size;
	c.etag = jb->j->result_etag;
	c.sha256 = jb->j->result_sha256;
	c.full = cfg->verify == ORCH_VERIFY_FULL;
	c.cancel = &jb->cancel;
	c.check_manifest = check_manifest_cb;
	c.ctx = jb;
	rc = d->ops->verify(d, &c, err);
	if (rc == 0)
		cm_info("verified %s (%llu bytes%s)", jb->j->result_url,
			(unsigned long long)jb->j->result_size,
			c.read_back ? ", sha256 read back" : ", ETag");
	return rc;
}

/* ---- cleaning ---------------------------------------------------------- */

int job_release_recorded(struct job *jb)
{
	struct orch_provider *prov = job_provider(jb);
	int failed = 0;

	for (size_t i = jb->j->nres; i-- > 0;) {
		const struct orch_resource *r = &jb->j->res[i];
		struct cm_err e;
		int rc;

		if (r->status == ORCH_RES_RELEASED)
			continue;
		cm_err_clear(&e);
		if (orch_res_kind_engine(r->kind))
			rc = orch_res_release(jb->o->dest->s3, r, &e);
		else if (!prov)
			rc = cm_err_set(&e, ENOENT, "vault \"%s\" is no longer"
					" configured: kept recorded until its "
					"provider can release it",
					jb->j->vault);
		else if (prov->ops->release_stale)
			rc = prov->ops->release_stale(prov, r, &e);
		else
			rc = cm_err_set(&e, EINVAL, "the %s provider does not "
					"know this kind", prov->ops->name);
		if (rc == 0)
			rc = rj_released(jb, i, &e);
		if (rc) {
			cm_warn("job %s: %s record %zu not released: %s",
				jb->j->id, r->kind, i,
				e.msg);
			failed++;
		}
	}
	return failed ? -EBUSY : 0;
}

/* A failed run may leave what no journal record holds (local:
 * NAME.partial files). */
static void remove_partials(struct job *jb, const char *dir_key)
{
	struct orch_dest *d = jb->o->dest;

	if (dir_key && d->ops->discard_partial)
		d->ops->discard_partial(d, dir_key);
}

/*
 * The snapshot goes only if the archive is verified (the caller's check),
 * autoDeleteSnapshot is on, the recovery point is still the one archived
 * and the security tag allows it. Returns a note for the job when kept
 * for a reason worth showing (the caller frees), else NULL.
 */
static char *maybe_delete_snapshot(struct job *jb, struct orch_provider *prov)
{
	const struct orch_config *cfg = jb->o->cfg;
	struct orch_res_journal rj;
	struct orch_recovery_point rp;
	char why[256];
	struct cm_err e;
	char *note = NULL;
	int rc;

	/* whatever the configuration says: the archive is not the whole
	 * recovery point (finish() says so in the job's reason) */
	if (jb->j->result_incomplete) {
		cm_warn("snapshot %s kept: its archive is incomplete",
			jb->j->rp_path);
		return NULL;
	}
	if (!cfg->auto_delete_snapshot) {
		cm_info("snapshot %s kept (autoDeleteSnapshot is off)",
			jb->j->rp_path);
		return NULL;
	}
	if (jb->j->snapshot_deleted || !prov)
		return NULL;
	cm_err_clear(&e);
	rc = refresh_rp(jb, prov, &rp, "archived", &e);
	if (rc) {
		note = cm_xasprintf("snapshot kept: %s", e.msg);
		goto out;
	}
	if (!orch_rp_tag_allows_delete(cfg, &rp, why, sizeof(why))) {
		note = cm_xasprintf("snapshot kept: %s", why);
		goto out_rp;
	}
	rc = prov->ops->delete_snapshot(prov, &rp, res_journal(jb, &rj), &e);
	if (rc) {
		note = cm_xasprintf("snapshot kept: delete failed: %s", e.msg);
		goto out_rp;
	}
	pthread_mutex_lock(&jb->lock);
	jb->j->snapshot_deleted = true;
	orch_journal_save(jb->o->journal, jb->j, NULL);
	pthread_mutex_unlock(&jb->lock);
	cm_info("snapshot %s deleted after its archive was verified",
		jb->j->rp_path);
out_rp:
	orch_rp_release(&rp);
out:
	if (note)
		cm_warn("job %s: %s", jb->j->id, note);
	return note;
}

/* ---- onFailure --------------------------------------------------------- */

static bool env_ours(const char *kv)
{
	return strncmp(kv, "VAULTFS_JOB_", 12) == 0;
}

void job_on_failure(struct job *jb)
{
	const char *cmd = jb->o->cfg->on_failure;
	char **envp;
	size_t n = 0, k = 0;

	if (!cmd || !*cmd || !jb->o->failure_cmds)
		return;
	while (environ[n])
		n++;
	envp = cm_xcalloc(n + 16, sizeof(*envp));
	for (size_t i = 0; i < n; i++)
		if (!env_ours(environ[i]))
			envp[k++] = cm_xstrdup(environ[i]);
	pthread_mutex_lock(&jb->lock);
	envp[k++] = cm_xasprintf("VAULTFS_JOB_ID=%s", jb->j->id);
	envp[k++] = cm_xasprintf("VAULTFS_JOB_STATE=%s",
				 orch_job_state_name(jb->j->state));
	envp[k++] = cm_xasprintf("VAULTFS_JOB_ERROR=%s",
				 jb->j->last_error ? jb->j->last_error : "");
	envp[k++] = cm_xasprintf("VAULTFS_JOB_VAULT=%s", jb->j->vault);
	envp[k++] = cm_xasprintf("VAULTFS_JOB_RECOVERY_POINT=%s",
				 jb->j->rp_path);
	envp[k++] = cm_xasprintf("VAULTFS_JOB_RESOURCE_ID=%s",
				 jb->j->resource_id);
	envp[k++] = cm_xasprintf("VAULTFS_JOB_ATTEMPTS=%u", jb->j->attempts);
	envp[k++] = cm_xasprintf("VAULTFS_JOB_LOG=%s/%s.log",
				 jb->o->jobs_dir, jb->j->id);
	pthread_mutex_unlock(&jb->lock);
	envp[k] = NULL;
	/* its own process, waited for and timed out by the reaper */
	orch_failure_cmds_spawn(jb->o->failure_cmds, jb->j->id, cmd, envp);
	for (size_t i = 0; i < k; i++)
		free(envp[i]);
	free(envp);
}

/* ---- one run ----------------------------------------------------------- */

static unsigned retry_delay_ms(unsigned attempts)
{
	uint64_t ms = (uint64_t)RETRY_BASE_MS << (attempts > 5 ? 5 : attempts);

	if (ms > RETRY_MAX_MS)
		ms = RETRY_MAX_MS;
	return (unsigned)(ms / 2 + cm_random(ms / 2 + 1));
}

/* The end of a run: the final state (or queued again) and its record. */
static enum job_outcome finish(struct job *jb, int rc, struct cm_err *err,
			       char *note)
{
	struct orch_job *j = jb->j;
	const struct orch_config *cfg = jb->o->cfg;
	enum job_outcome out = OUTCOME_FINAL;
	enum orch_job_state s;
	const char *msg = NULL;
	char *reason = NULL;
	struct cm_err e;

	cm_err_clear(&e);
	if (rc == 0 && j->verified && j->result_incomplete) {
		s = ORCH_JOB_INCOMPLETE;
		reason = cm_xasprintf("%s; snapshot kept",
				      j->result_incomplete);
		msg = reason;
	} else if (rc == 0 && j->verified) {
		s = ORCH_JOB_SUCCEEDED;
		msg = note;
	} else if (rc == -ECANCELED &&
		   atomic_load(&jb->cancel_why) == JOB_CANCEL_SHUTDOWN) {
		s = ORCH_JOB_QUEUED;
		msg = "interrupted: vaultfs stopped (retried at the next "
		      "start)";
		out = OUTCOME_INTERRUPTED;
	} else if (rc == -ECANCELED && atomic_load(&jb->cancel)) {
		s = ORCH_JOB_CANCELLED;
		msg = "cancelled";
	} else if (jb->superseded) {
		s = ORCH_JOB_CANCELLED; /* the job for what is there now runs */
		msg = err->msg;
	} else if (rc == ORCH_RESTORE_WAITING) {
		/* no restorer for it yet: not a failure, tried again at the
		 * next start (orch.c) */
		s = ORCH_JOB_WAITING;
		msg = err->msg[0] ? err->msg : "no restorer for it yet";
	} else if (err->retryable && j->attempts < cfg->max_attempts) {
		s = ORCH_JOB_QUEUED;
		msg = err->msg;
		out = OUTCOME_RETRY;
		jb->retry_ms = retry_delay_ms(j->attempts);
	} else {
		s = ORCH_JOB_FAILED;
		msg = err->msg[0] ? err->msg : "failed";
	}
	pthread_mutex_lock(&jb->lock);
	if ((out == OUTCOME_INTERRUPTED || s == ORCH_JOB_WAITING) &&
	    j->attempts > 0)
		j->attempts--; /* not the job's fault */
	orch_job_set_state(j, s);
	orch_job_set_error(j, msg);
	rc = orch_journal_save(jb->o->journal, j, &e);
	pthread_mutex_unlock(&jb->lock);
	if (rc)
		cm_error("job %s: %s", j->id, e.msg);
	jb->resume = j->verified ? RESUME_CLEAN : RESUME_RESTORE;
	switch (s) {
	case ORCH_JOB_SUCCEEDED:
		cm_info("job %s: succeeded: %s", j->id, j->result_url);
		break;
	case ORCH_JOB_INCOMPLETE:
		cm_warn("job %s (%s) incomplete: %s: %s", j->id, j->rp_path,
			j->result_url, msg);
		break;
	case ORCH_JOB_WAITING:
		cm_info("job %s (%s) waiting: %s", j->id, j->rp_path, msg);
		break;
	case ORCH_JOB_QUEUED:
		if (out == OUTCOME_RETRY)
			cm_warn("job %s (%s): attempt %u of %u failed, retry "
				"in %u s: %s", j->id, j->rp_path, j->attempts,
				cfg->max_attempts, jb->retry_ms / 1000, msg);
		else
			cm_info("job %s: %s", j->id, msg);
		break;
	default:
		cm_error("job %s (%s) %s: %s", j->id, j->rp_path,
			 orch_job_state_name(s), msg);
	}
	free(reason);
	return out;
}

enum job_outcome job_run(struct job *jb)
{
	struct orch *o = jb->o;
	struct orch_job *j = jb->j;
	struct orch_provider *prov;
	struct orch_recovery_point rp;
	struct orch_restored restored;
	struct orch_res_journal rj;
	struct cm_err err, e2;
	enum job_outcome out;
	bool have_rp = false, have_restored = false;
	char *dir_key = NULL, *note = NULL;
	bool decoded = false;
	int rc;

	memset(&rp, 0, sizeof(rp));
	memset(&restored, 0, sizeof(restored));
	restored.fd = -1;
	cm_err_clear(&err);
	cm_err_clear(&e2);
	log_open(jb);
	cm_log_set_thread_sink(log_sink, jb);
	cm_log_set_thread_job(j->id, j->vault); /* fixed once queued */
	pthread_mutex_lock(&jb->lock);
	j->attempts++;
	pthread_mutex_unlock(&jb->lock);
	cm_info("job %s: %s/%s (%s), attempt %u of %u%s", j->id, j->vault,
		job_rp_name(j), j->resource_id, j->attempts,
		o->cfg->max_attempts,
		jb->resume == RESUME_CLEAN    ? ", resuming at cleaning" :
		jb->resume == RESUME_VERIFY ? ", resuming at verifying" :
					      "");

	prov = job_provider(jb);
	rc = prov ? orch_dest_job_dir(jb->o->dest, jb->j->resource_id,
				       jb->j->id, &dir_key, &err)
		  : cm_err_set(&err, ENOENT, "vault \"%s\" is no longer "
			       "configured", j->vault);
	/* verified by an earlier run, perhaps without the full decode: a
	 * snapshot that may be deleted is decoded again first */
	if (rc == 0 && jb->resume == RESUME_CLEAN &&
	    o->cfg->auto_delete_snapshot && !j->snapshot_deleted)
		goto verify;
	if (rc || jb->resume == RESUME_CLEAN)
		goto clean;
	if (jb->resume == RESUME_VERIFY)
		goto verify;

	rc = enter(jb, ORCH_JOB_RESTORING, &err);
	if (rc == 0)
		rc = check_cancel(jb, &err);
	if (rc == 0) {
		rc = refresh_rp(jb, prov, &rp, "queued", &err);
		jb->superseded = rc == -ESTALE;
	}
	if (rc)
		goto clean;
	have_rp = true;
	rc = run_export(jb, prov, &rp, dir_key, &err);
	if (rc != ORCH_EXPORT_NONE) { /* exported: no archiving */
		if (rc)
			goto clean;
		goto verify;
	}
	rc = prov->ops->restore(prov, &rp, res_journal(jb, &rj), &restored,
				&err);
	if (rc) /* < 0, or ORCH_RESTORE_WAITING */
		goto clean;
	have_restored = true;

	rc = enter(jb, ORCH_JOB_ARCHIVING, &err);
	if (rc == 0)
		rc = check_cancel(jb, &err);
	if (rc == 0 && prov->ops->check) /* still the one restored */
		rc = prov->ops->check(prov, &rp, &restored, &err);
	if (rc == 0)
		rc = archive(jb, &rp, &restored, dir_key, &err);
	if (rc)
		goto clean;
verify:
	rc = enter(jb, ORCH_JOB_VERIFYING, &err);
	if (rc == 0)
		rc = check_cancel(jb, &err);
	if (rc == 0 && j->export_task) {
		/* the export's own proof: what a snapshot may go after */
		rc = verify_export(jb, prov, dir_key, &err);
		decoded = rc == 0;
	} else if (rc == 0) {
		rc = verify(jb, &decoded, &err);
	}
	if (rc == -ECANCELED)
		check_cancel(jb, &err);
	if (rc == 0) {
		pthread_mutex_lock(&jb->lock);
		j->verified = true;
		rc = orch_journal_save(o->journal, j, &err);
		pthread_mutex_unlock(&jb->lock);
	}
clean:
	/* cleanup runs whatever happened, and is not cancelled */
	if (enter(jb, ORCH_JOB_CLEANING, &e2))
		cm_warn("job %s: %s", j->id, e2.msg);
	if (have_restored) {
		prov->ops->release(prov, res_journal(jb, &rj), &restored);
		orch_restored_release(&restored);
	}
	if (job_release_recorded(jb))
		cm_warn("job %s: some resources are still held; the next "
			"start releases them", j->id);
	if (rc)
		remove_partials(jb, dir_key);
	/* no snapshot goes without the full decode of its archive */
	if (rc == 0 && j->verified && (decoded || !o->cfg->auto_delete_snapshot))
		note = maybe_delete_snapshot(jb, prov);
	out = finish(jb, rc, &err, note);
	if (j->state == ORCH_JOB_FAILED || j->state == ORCH_JOB_INCOMPLETE)
		job_on_failure(jb);
	cm_log_set_thread_sink(NULL, NULL);
	cm_log_set_thread_job(NULL, NULL);
	log_close(jb);
	if (have_rp)
		orch_rp_release(&rp);
	free(dir_key);
	free(note);
	return out;
}
