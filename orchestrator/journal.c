/*
 * journal.c - one JSON file per job, replaced atomically (see journal.h).
 *
 * The file (version 1):
 *
 *   { "version": 1, "id": "20261126T204516.123Z-3f9a1c0b",
 *     "vault": "local",
 *     "recoveryPoint": { "path": "/v/disk.img", "resourceId": "local:...",
 *                        "size": 1048576, "mtime": 1795639516 },
 *     "state": "archiving", "attempts": 1,
 *     "times": { "queued": "2026-11-26T20:45:16Z", ... },
 *     "progress": { "bytesRead": 0, "bytesTotal": 0, "bytesWritten": 0 },
 *     "result": { "url": ..., "size": ..., "etag": ..., "sha256": ...,
 *                 "incomplete": "2 items not archived: ..." },
 *     "export": { "task": "vaultfs-...", "status": "IN_PROGRESS",
 *                 "percent": 42, "detail": "18.3 GB extracted" },
 *     "lastError": "...", "verified": true, "snapshotDeleted": true,
 *     "resources": [ { "kind": "loop", "status": "created",
 *                      "changed": "...", "device": "/dev/loop3",
 *                      "backingFile": "/v/disk.img" }, ... ] }
 *
 * "result", "export" (a job whose archive a service writes, provider.h
 * "Exports") and "lastError" are present only when set, and so are the
 * identifiers of a resource, the recovery point's size and mtime (0:
 * unknown) and the two flags (absent: false). A file is accepted only whole and well formed:
 * anything else is "corrupt".
 */
#include "journal.h"
#include "fault.h"
#include "json.h"
#include "fsutil.h"
#include "log.h"
#include "mem.h"
#include "rp.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_VERSION 1
#define JOBS_DIR "jobs"
#define LOCK_NAME "lock"
#define TMP_SUFFIX ".json.tmp"

struct orch_journal {
	char *state_dir;  /* owned */
	char *jobs_dir;   /* owned: STATEDIR/jobs */
	int lock_fd;      /* holds the flock */
	int dir_fd;       /* STATEDIR/jobs, for openat/renameat/fsync */
};

static const char *const state_names[ORCH_JOB_NSTATES] = {
	"queued", "restoring", "archiving", "verifying", "cleaning",
	"succeeded", "failed", "cancelled", "incomplete", "waiting",
	"exporting",
};
static const char *const engine_kinds[] = {
	ORCH_RES_LOOP, ORCH_RES_MOUNT, ORCH_RES_UPLOAD, ORCH_RES_TEMPDIR,
	ORCH_RES_NODE,
};
#define NENGINE_KINDS (sizeof(engine_kinds) / sizeof(engine_kinds[0]))
#define KIND_MAX 64
static const char *const status_names[] = {
	"intended", "created", "released",
};

/* The identifier fields, in one table for saving, loading and copying. */
struct id_field {
	const char *json;
	size_t res_off;  /* char * in struct orch_resource */
	size_t ids_off;  /* const char * in struct orch_res_ids */
};

#define ID_FIELD(json, name)                                              \
	{ json, offsetof(struct orch_resource, name),                     \
	  offsetof(struct orch_res_ids, name) }

static const struct id_field id_fields[] = {
	ID_FIELD("device", device),
	ID_FIELD("backingFile", backing_file),
	ID_FIELD("mountPoint", mount_point),
	ID_FIELD("bucket", bucket),
	ID_FIELD("key", key),
	ID_FIELD("uploadId", upload_id),
	ID_FIELD("dir", dir),
	ID_FIELD("devnum", devnum),
	ID_FIELD("inode", inode),
};
#define NID_FIELDS (sizeof(id_fields) / sizeof(id_fields[0]))

static char **res_field(struct orch_resource *r, const struct id_field *f)
{
	return (char **)((char *)r + f->res_off);
}

static const char *ids_field(const struct orch_res_ids *ids,
			     const struct id_field *f)
{
	return *(const char *const *)((const char *)ids + f->ids_off);
}

/* ---- names ------------------------------------------------------------- */

const char *orch_job_state_name(enum orch_job_state s)
{
	return (unsigned)s < ORCH_JOB_NSTATES ? state_names[s] : "unknown";
}

int orch_job_state_parse(const char *name, enum orch_job_state *out)
{
	for (int i = 0; i < ORCH_JOB_NSTATES; i++) {
		if (name && strcmp(name, state_names[i]) == 0) {
			*out = (enum orch_job_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool orch_job_state_final(enum orch_job_state s)
{
	return s == ORCH_JOB_SUCCEEDED || s == ORCH_JOB_FAILED ||
	       s == ORCH_JOB_CANCELLED || s == ORCH_JOB_INCOMPLETE;
}

bool orch_res_kind_engine(const char *kind)
{
	for (size_t i = 0; kind && i < NENGINE_KINDS; i++)
		if (strcmp(kind, engine_kinds[i]) == 0)
			return true;
	return false;
}

bool orch_res_kind_valid(const char *kind)
{
	size_t n = kind ? strlen(kind) : 0;

	if (n == 0 || n > KIND_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(kind[i] >= 'a' && kind[i] <= 'z') &&
		    !(kind[i] >= '0' && kind[i] <= '9') && kind[i] != '-')
			return false;
	return true;
}

const char *orch_res_status_name(enum orch_res_status s)
{
	return (unsigned)s <= ORCH_RES_RELEASED ? status_names[s] : "unknown";
}

static int lookup(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (name && strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

/* ---- jobs in memory ---------------------------------------------------- */

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? cm_xstrdup(v) : NULL;
}

static struct orch_job *job_alloc(void)
{
	struct orch_job *job = cm_xcalloc(1, sizeof(struct orch_job));

	job->export_percent = -1;
	return job;
}

struct orch_job *orch_job_new(const char *vault, const char *rp_name,
			      const char *rp_path, const char *resource_id)
{
	struct orch_job *job = job_alloc();

	orch_job_id_new(job->id);
	job->vault = cm_xstrdup(vault);
	job->rp_name = cm_xstrdup(rp_name);
	job->rp_path = cm_xstrdup(rp_path);
	job->resource_id = cm_xstrdup(resource_id);
	orch_job_set_state(job, ORCH_JOB_QUEUED);
	return job;
}

static void res_release(struct orch_resource *r)
{
	free(r->kind);
	for (size_t f = 0; f < NID_FIELDS; f++)
		free(*res_field(r, &id_fields[f]));
	cm_json_free(r->ids);
}

void orch_job_free(struct orch_job *job)
{
	if (!job)
		return;
	for (size_t i = 0; i < job->nres; i++)
		res_release(&job->res[i]);
	free(job->res);
	free(job->vault);
	free(job->rp_name);
	free(job->rp_path);
	free(job->resource_id);
	free(job->result_url);
	free(job->result_etag);
	free(job->result_sha256);
	free(job->result_incomplete);
	free(job->export_task);
	free(job->export_status);
	free(job->export_detail);
	free(job->last_error);
	free(job);
}

void orch_job_set_state(struct orch_job *job, enum orch_job_state s)
{
	job->state = s;
	job->times[s] = time(NULL);
}

void orch_job_set_error(struct orch_job *job, const char *msg)
{
	set_str(&job->last_error, msg);
}

void orch_job_set_result(struct orch_job *job, const char *url,
			 uint64_t size, const char *etag, const char *sha256)
{
	set_str(&job->result_url, url);
	job->result_size = size;
	set_str(&job->result_etag, etag);
	set_str(&job->result_sha256, sha256);
}

bool orch_job_holds_resources(const struct orch_job *job)
{
	for (size_t i = 0; i < job->nres; i++)
		if (job->res[i].status != ORCH_RES_RELEASED)
			return true;
	return false;
}

static struct orch_resource *res_append(struct orch_job *job)
{
	struct orch_resource *r;

	if (job->nres == job->res_cap) {
		job->res_cap = job->res_cap ? job->res_cap * 2 : 4;
		job->res = cm_xrealloc(job->res,
				       job->res_cap * sizeof(*job->res));
	}
	r = &job->res[job->nres++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* ---- to and from JSON -------------------------------------------------- */

static void add_time(struct cm_json *obj, const char *key, time_t t)
{
	char buf[32];

	cm_time_iso8601(t, buf, sizeof(buf));
	cm_json_add_str(obj, key, buf);
}

/* Nanoseconds pass 2^53: the identity's numbers are decimal strings. */
static void add_identity(struct cm_json *rp, const struct orch_rp_identity *id)
{
	struct cm_json *o = cm_json_add_object(rp, "identity");
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)id->dev);
	cm_json_add_str(o, "dev", buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)id->ino);
	cm_json_add_str(o, "ino", buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)id->size);
	cm_json_add_str(o, "size", buf);
	snprintf(buf, sizeof(buf), "%lld", (long long)id->ctime_ns);
	cm_json_add_str(o, "ctimeNs", buf);
	snprintf(buf, sizeof(buf), "%lld", (long long)id->mtime_ns);
	cm_json_add_str(o, "mtimeNs", buf);
}

static bool get_dec(const struct cm_json *obj, const char *key,
		    uint64_t *out)
{
	const char *s = cm_json_get_str(obj, key);
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

bool orch_rp_identity_from_record(const struct cm_json *rp,
				  struct orch_rp_identity *id)
{
	const struct cm_json *o = cm_json_get(rp, "identity");
	uint64_t c, m;

	memset(id, 0, sizeof(*id));
	if (!o)
		return true;
	if (!get_dec(o, "dev", &id->dev) || !get_dec(o, "ino", &id->ino) ||
	    !get_dec(o, "size", &id->size) || !get_dec(o, "ctimeNs", &c) ||
	    !get_dec(o, "mtimeNs", &m) || c > INT64_MAX || m > INT64_MAX)
		return false;
	id->ctime_ns = (int64_t)c;
	id->mtime_ns = (int64_t)m;
	id->known = true;
	return true;
}

/* The journal file's text, or (as_record) the index's one-line record:
 * the same members without "version" and "resources". */
static char *job_to_text(const struct orch_job *job, bool as_record)
{
	struct cm_json *root = cm_json_new_object();
	struct cm_json *o, *arr;
	char *text;

	if (!as_record)
		cm_json_add_num(root, "version", JOURNAL_VERSION);
	cm_json_add_str(root, "id", job->id);
	cm_json_add_str(root, "vault", job->vault);
	o = cm_json_add_object(root, "recoveryPoint");
	cm_json_add_str(o, "name", job->rp_name);
	cm_json_add_str(o, "path", job->rp_path);
	cm_json_add_str(o, "resourceId", job->resource_id);
	if (job->rp_size)
		cm_json_add_u64(o, "size", job->rp_size);
	if (job->rp_mtime > 0)
		cm_json_add_u64(o, "mtime", (uint64_t)job->rp_mtime);
	if (job->rp_id.known)
		add_identity(o, &job->rp_id);
	cm_json_add_str(root, "state", orch_job_state_name(job->state));
	cm_json_add_u64(root, "attempts", job->attempts);
	o = cm_json_add_object(root, "times");
	for (int s = 0; s < ORCH_JOB_NSTATES; s++)
		if (job->times[s])
			add_time(o, state_names[s], job->times[s]);
	o = cm_json_add_object(root, "progress");
	cm_json_add_u64(o, "bytesRead", job->bytes_read);
	cm_json_add_u64(o, "bytesTotal", job->bytes_total);
	cm_json_add_u64(o, "bytesWritten", job->bytes_written);
	if (job->blocks_total) { /* an EBS snapshot's, read block by block */
		cm_json_add_u64(o, "blocksFetched", job->blocks_fetched);
		cm_json_add_u64(o, "blocksTotal", job->blocks_total);
	}
	if (job->result_url) {
		o = cm_json_add_object(root, "result");
		cm_json_add_str(o, "url", job->result_url);
		cm_json_add_u64(o, "size", job->result_size);
		if (job->result_etag)
			cm_json_add_str(o, "etag", job->result_etag);
		if (job->result_sha256)
			cm_json_add_str(o, "sha256", job->result_sha256);
		if (job->result_incomplete)
			cm_json_add_str(o, "incomplete",
					job->result_incomplete);
	}
	if (job->export_task || job->export_status) {
		o = cm_json_add_object(root, "export");
		if (job->export_task)
			cm_json_add_str(o, "task", job->export_task);
		if (job->export_status)
			cm_json_add_str(o, "status", job->export_status);
		if (job->export_percent >= 0)
			cm_json_add_u64(o, "percent",
					(uint64_t)job->export_percent);
		if (job->export_detail)
			cm_json_add_str(o, "detail", job->export_detail);
	}
	if (job->last_error)
		cm_json_add_str(root, "lastError", job->last_error);
	if (job->verified)
		cm_json_add_bool(root, "verified", true);
	if (job->snapshot_deleted)
		cm_json_add_bool(root, "snapshotDeleted", true);
	if (as_record) {
		text = cm_json_print_line(root);
		cm_json_free(root);
		return text;
	}
	arr = cm_json_add_array(root, "resources");
	for (size_t i = 0; i < job->nres; i++) {
		struct orch_resource *r = &job->res[i];

		o = cm_json_new_object();
		cm_json_add_str(o, "kind", r->kind);
		cm_json_add_str(o, "status", orch_res_status_name(r->status));
		add_time(o, "changed", r->changed);
		for (size_t f = 0; f < NID_FIELDS; f++) {
			char *v = *res_field(r, &id_fields[f]);

			if (v)
				cm_json_add_str(o, id_fields[f].json, v);
		}
		if (r->ids)
			cm_json_add(o, "ids", cm_json_copy(r->ids));
		cm_json_add(arr, NULL, o);
	}
	text = cm_json_print(root);
	cm_json_free(root);
	return text;
}

/* A reason for rejecting a file, into why (returns -EINVAL). */
static int reject(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reject(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool get_u64(const struct cm_json *obj, const char *key, bool required,
		    uint64_t *out)
{
	struct cm_json *j = cm_json_get(obj, key);
	double v;

	if (!j)
		return !required;
	if (cm_json_type(j) != CM_JSON_NUMBER)
		return false;
	v = cm_json_num(j);
	if (v < 0 || v > 9007199254740992.0 || v != (double)(uint64_t)v)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* An optional string member: absent is fine, another type is not. */
static bool get_opt_str(const struct cm_json *obj, const char *key,
			char **dst)
{
	struct cm_json *j = cm_json_get(obj, key);

	if (!j)
		return true;
	if (cm_json_type(j) != CM_JSON_STRING)
		return false;
	set_str(dst, cm_json_str(j));
	return true;
}

/* An optional boolean member: absent is false. */
static bool get_opt_bool(const struct cm_json *obj, const char *key,
			 bool *dst)
{
	struct cm_json *j = cm_json_get(obj, key);

	if (!j)
		return true;
	if (cm_json_type(j) != CM_JSON_BOOL)
		return false;
	*dst = cm_json_bool(j);
	return true;
}

static bool get_time(const struct cm_json *obj, const char *key,
		     time_t *out)
{
	struct cm_json *j = cm_json_get(obj, key);

	if (!j)
		return true;
	return cm_json_str(j) &&
	       cm_time_parse_iso8601(cm_json_str(j), out) == 0;
}

static int res_from_json(const struct cm_json *o, struct orch_job *job,
			 size_t i, char *why, size_t n)
{
	const char *kind = cm_json_get_str(o, "kind");
	struct cm_json *ids = cm_json_get(o, "ids");
	struct orch_resource *r;
	int status;

	if (cm_json_type(o) != CM_JSON_OBJECT)
		return reject(why, n, "resources[%zu]: not an object", i);
	status = lookup(status_names, 3, cm_json_get_str(o, "status"));
	/* any well-formed kind loads: one the engine does not know is a
	 * provider's, released by it (provider.h) */
	if (!orch_res_kind_valid(kind))
		return reject(why, n, "resources[%zu].kind: not a kind name",
			      i);
	if (status < 0)
		return reject(why, n, "resources[%zu].status: unknown", i);
	if (ids && cm_json_type(ids) != CM_JSON_OBJECT)
		return reject(why, n, "resources[%zu].ids: not an object", i);
	r = res_append(job);
	r->kind = cm_xstrdup(kind);
	r->ids = cm_json_copy(ids);
	r->status = (enum orch_res_status)status;
	if (!get_time(o, "changed", &r->changed))
		return reject(why, n, "resources[%zu].changed: bad time", i);
	for (size_t f = 0; f < NID_FIELDS; f++)
		if (!get_opt_str(o, id_fields[f].json,
				 res_field(r, &id_fields[f])))
			return reject(why, n, "resources[%zu].%s: not a "
				      "string", i, id_fields[f].json);
	return 0;
}

/* want_id NULL: an index record (no "version", the id its own, a state
 * this version does not know taken as failed with a note). */
static int job_from_json(const struct cm_json *root, const char *want_id,
			 struct orch_job **out, char *why, size_t n)
{
	struct orch_job *job = job_alloc();
	struct cm_json *rp, *times, *prog, *result, *arr;
	const char *s, *unknown_state = NULL;
	bool record = !want_id;
	uint64_t v = 0;
	int st, rc = -EINVAL;
	size_t i = 0;

	if (cm_json_type(root) != CM_JSON_OBJECT) {
		reject(why, n, "not an object");
		goto out;
	}
	if (!record && (!get_u64(root, "version", true, &v) ||
			v != JOURNAL_VERSION)) {
		reject(why, n, "version: not %d", JOURNAL_VERSION);
		goto out;
	}
	s = cm_json_get_str(root, "id");
	if (record && orch_job_id_valid(s))
		want_id = s;
	if (!orch_job_id_valid(s) || strcmp(s, want_id) != 0) {
		reject(why, n, "id: does not match the file name");
		goto out;
	}
	memcpy(job->id, s, ORCH_JOB_ID_SIZE);
	rp = cm_json_get(root, "recoveryPoint");
	if (!cm_json_get_str(root, "vault") || !cm_json_get_str(rp, "path") ||
	    !cm_json_get_str(rp, "resourceId")) {
		reject(why, n, "vault or recoveryPoint missing");
		goto out;
	}
	job->vault = cm_xstrdup(cm_json_get_str(root, "vault"));
	job->rp_path = cm_xstrdup(cm_json_get_str(rp, "path"));
	s = cm_json_get_str(rp, "name");
	if (!s) {
		/* written before names were recorded: only local vaults,
		 * whose name was the path's last component */
		s = strrchr(job->rp_path, '/');
		s = s ? s + 1 : job->rp_path;
	}
	if (!orch_rp_name_valid(s)) {
		reject(why, n, "recoveryPoint.name: not a name");
		goto out;
	}
	job->rp_name = cm_xstrdup(s);
	job->resource_id = cm_xstrdup(cm_json_get_str(rp, "resourceId"));
	v = 0;
	if (!get_u64(rp, "size", false, &job->rp_size) ||
	    !get_u64(rp, "mtime", false, &v) || v > INT64_MAX) {
		reject(why, n, "recoveryPoint: bad size or mtime");
		goto out;
	}
	job->rp_mtime = (time_t)v;
	if (!orch_rp_identity_from_record(rp, &job->rp_id)) {
		reject(why, n, "recoveryPoint.identity: bad");
		goto out;
	}
	s = cm_json_get_str(root, "state");
	st = lookup(state_names, ORCH_JOB_NSTATES, s);
	if (st < 0 && (!record || !s)) {
		reject(why, n, "state: unknown");
		goto out;
	}
	if (st < 0) {
		/* an index record of a newer vaultfs: final, shown failed */
		unknown_state = s;
		st = ORCH_JOB_FAILED;
	}
	job->state = (enum orch_job_state)st;
	if (!get_u64(root, "attempts", true, &v) || v > 1000000) {
		reject(why, n, "attempts: not a count");
		goto out;
	}
	job->attempts = (unsigned)v;
	times = cm_json_get(root, "times");
	if (times && cm_json_type(times) != CM_JSON_OBJECT) {
		reject(why, n, "times: not an object");
		goto out;
	}
	for (int k = 0; k < ORCH_JOB_NSTATES; k++) {
		if (!get_time(times, state_names[k], &job->times[k])) {
			reject(why, n, "times.%s: bad time", state_names[k]);
			goto out;
		}
	}
	prog = cm_json_get(root, "progress");
	if (!get_u64(prog, "bytesRead", false, &job->bytes_read) ||
	    !get_u64(prog, "bytesTotal", false, &job->bytes_total) ||
	    !get_u64(prog, "bytesWritten", false, &job->bytes_written) ||
	    !get_u64(prog, "blocksFetched", false, &job->blocks_fetched) ||
	    !get_u64(prog, "blocksTotal", false, &job->blocks_total)) {
		reject(why, n, "progress: bad counts");
		goto out;
	}
	result = cm_json_get(root, "result");
	if (result) {
		if (!cm_json_get_str(result, "url") ||
		    !get_opt_str(result, "url", &job->result_url) ||
		    !get_u64(result, "size", false, &job->result_size) ||
		    !get_opt_str(result, "etag", &job->result_etag) ||
		    !get_opt_str(result, "sha256", &job->result_sha256) ||
		    !get_opt_str(result, "incomplete",
				 &job->result_incomplete)) {
			reject(why, n, "result: malformed");
			goto out;
		}
	}
	result = cm_json_get(root, "export");
	v = 0;
	if (result && (cm_json_type(result) != CM_JSON_OBJECT ||
		       !get_opt_str(result, "task", &job->export_task) ||
		       !get_opt_str(result, "status", &job->export_status) ||
		       !get_opt_str(result, "detail", &job->export_detail) ||
		       !get_u64(result, "percent", false, &v) || v > 100)) {
		reject(why, n, "export: malformed");
		goto out;
	}
	if (result && cm_json_get(result, "percent"))
		job->export_percent = (int)v;
	if (!get_opt_str(root, "lastError", &job->last_error)) {
		reject(why, n, "lastError: not a string");
		goto out;
	}
	if (unknown_state) {
		char *note = cm_xasprintf("state \"%s\" is not known to this "
					  "version of vaultfs%s%s",
					  unknown_state,
					  job->last_error ? ": " : "",
					  job->last_error ? job->last_error
							  : "");

		free(job->last_error);
		job->last_error = note;
	}
	if (!get_opt_bool(root, "verified", &job->verified) ||
	    !get_opt_bool(root, "snapshotDeleted", &job->snapshot_deleted)) {
		reject(why, n, "verified or snapshotDeleted: not a boolean");
		goto out;
	}
	arr = cm_json_get(root, "resources");
	if (arr && cm_json_type(arr) != CM_JSON_ARRAY) {
		reject(why, n, "resources: not an array");
		goto out;
	}
	for (struct cm_json *o = cm_json_first(arr); o;
	     o = cm_json_next(o), i++) {
		rc = res_from_json(o, job, i, why, n);
		if (rc)
			goto out;
	}
	rc = 0;
	*out = job;
	job = NULL;
out:
	orch_job_free(job);
	return rc;
}

/* ---- files ------------------------------------------------------------- */


int orch_journal_save(struct orch_journal *j, const struct orch_job *job,
		      struct cm_err *err)
{
	char tmp[ORCH_JOB_ID_SIZE + sizeof(TMP_SUFFIX)];
	char final[ORCH_JOB_ID_SIZE + sizeof(".json")];
	char *text = job_to_text(job, false);
	size_t len = strlen(text);
	const char *step = "write";
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s%s", job->id, TMP_SUFFIX);
	snprintf(final, sizeof(final), "%s.json", job->id);
	fd = openat(j->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644);
	if (fd < 0) {
		rc = -errno;
		step = "create";
		goto fail;
	}
	if (cm_fault("journal.write")) {
		/* a short write then an error, as on a full disk */
		rc = cm_write_all(fd, text, len / 2);
		if (!rc)
			rc = -EIO;
	} else {
		rc = cm_write_all(fd, text, len);
	}
	if (!rc && (cm_fault("journal.fsync") ? (errno = EIO, 1)
					      : fsync(fd) < 0)) {
		rc = -errno;
		step = "fsync";
	}
	if (close(fd) < 0 && !rc) {
		rc = -errno;
		step = "close";
	}
	if (rc)
		goto fail;
	if (cm_fault("journal.rename") ? (errno = EIO, 1)
				       : renameat(j->dir_fd, tmp, j->dir_fd,
						  final) < 0) {
		rc = -errno;
		step = "rename";
		goto fail;
	}
	if (cm_fault("journal.fsync_dir") ? (errno = EIO, 1)
					  : fsync(j->dir_fd) < 0) {
		rc = cm_err_set(err, errno, "journal: %s/%s: fsync of the "
				"directory: %s", j->jobs_dir, final,
				strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
fail:
	if (fd >= 0)
		unlinkat(j->dir_fd, tmp, 0);
	rc = cm_err_set(err, rc, "journal: %s/%s: %s: %s", j->jobs_dir, tmp,
			step, strerror(-rc));
out:
	free(text);
	return rc;
}


static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void remove_leftovers(struct orch_journal *j)
{
	DIR *d = opendir(j->jobs_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!has_suffix(e->d_name, TMP_SUFFIX))
			continue;
		cm_info("journal: removing %s/%s left by an interrupted save",
			j->jobs_dir, e->d_name);
		unlinkat(j->dir_fd, e->d_name, 0);
	}
	closedir(d);
	fsync(j->dir_fd);
}

static void read_holder(int fd, char *pid, size_t n)
{
	ssize_t got = pread(fd, pid, n - 1, 0);

	if (got <= 0) {
		snprintf(pid, n, "unknown");
		return;
	}
	pid[got] = '\0';
	pid[strcspn(pid, "\n")] = '\0';
	for (char *c = pid; *c; c++)
		if (*c < '0' || *c > '9') {
			snprintf(pid, n, "unknown");
			return;
		}
}

long orch_journal_holder(const char *state_dir)
{
	char *lock_path = cm_xasprintf("%s/%s", state_dir, LOCK_NAME);
	int fd = open(lock_path, O_RDONLY | O_CLOEXEC);
	char pid[32] = "unknown";

	free(lock_path);
	if (fd < 0)
		return -1;
	read_holder(fd, pid, sizeof(pid));
	close(fd);
	return strcmp(pid, "unknown") != 0 && pid[0] ? atol(pid) : -1;
}

int orch_journal_open(const char *state_dir, struct orch_journal **out,
		      struct cm_err *err)
{
	struct orch_journal *j = cm_xcalloc(1, sizeof(*j));
	char *lock_path = cm_xasprintf("%s/%s", state_dir, LOCK_NAME);
	char pid[32];
	int rc;

	j->lock_fd = j->dir_fd = -1;
	j->state_dir = cm_xstrdup(state_dir);
	j->jobs_dir = cm_xasprintf("%s/%s", state_dir, JOBS_DIR);
	rc = cm_mkdirs(j->jobs_dir, 0755, err);
	if (rc)
		cm_err_prefix(err, "journal");
	if (rc)
		goto out;
	j->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->lock_fd < 0) {
		rc = cm_err_set(err, errno, "journal: %s: %s", lock_path,
				strerror(errno));
		goto out;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			rc = cm_err_set(err, errno, "journal: flock %s: %s",
					lock_path, strerror(errno));
			goto out;
		}
		read_holder(j->lock_fd, pid, sizeof(pid));
		rc = cm_err_set(err, EBUSY, "another vaultfs (pid %s) holds "
				"%s", pid, lock_path);
		goto out;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(j->lock_fd, 0) < 0 ||
	    pwrite(j->lock_fd, pid, strlen(pid), 0) < 0)
		cm_warn("journal: %s: cannot record the pid: %s", lock_path,
			strerror(errno));
	j->dir_fd = open(j->jobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dir_fd < 0) {
		rc = cm_err_set(err, errno, "journal: %s: %s", j->jobs_dir,
				strerror(errno));
		goto out;
	}
	remove_leftovers(j);
	*out = j;
	j = NULL;
out:
	orch_journal_close(j);
	free(lock_path);
	return rc;
}

void orch_journal_close(struct orch_journal *j)
{
	if (!j)
		return;
	if (j->dir_fd >= 0)
		close(j->dir_fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd); /* releases the flock */
	free(j->state_dir);
	free(j->jobs_dir);
	free(j);
}

/* ---- loading ----------------------------------------------------------- */

static int by_id(const void *a, const void *b)
{
	const struct orch_job *x = *(struct orch_job *const *)a;
	const struct orch_job *y = *(struct orch_job *const *)b;

	return strcmp(x->id, y->id);
}

static void list_push(struct orch_job_list *l, size_t *cap,
		      struct orch_job *job)
{
	if (l->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		l->jobs = cm_xrealloc(l->jobs, *cap * sizeof(*l->jobs));
	}
	l->jobs[l->n++] = job;
}

/* Load one NAME.json; -EINVAL (why set) when it is corrupt. */
static int load_one(const char *dir, const char *name, struct orch_job **out,
		    char *why, size_t n)
{
	char id[ORCH_JOB_ID_SIZE];
	char *path = cm_xasprintf("%s/%s", dir, name);
	struct cm_json *root = NULL;
	struct cm_err e;
	size_t idlen = strlen(name) - strlen(".json");
	int rc;

	cm_err_clear(&e);
	if (idlen != ORCH_JOB_ID_LEN) {
		rc = reject(why, n, "not named after a job id");
		goto out;
	}
	memcpy(id, name, idlen);
	id[idlen] = '\0';
	rc = cm_json_parse_file(path, &root, &e);
	if (rc) {
		size_t plen = strlen(path);

		if (rc != -EINVAL) /* unreadable, not corrupt */
			rc = -EIO;
		/* the message starts with the path, which the caller says */
		reject(why, n, "%s", strncmp(e.msg, path, plen) == 0 &&
				     e.msg[plen] == ':' ? e.msg + plen + 2
							: e.msg);
		goto out;
	}
	rc = job_from_json(root, id, out, why, n);
out:
	cm_json_free(root);
	free(path);
	return rc;
}

/* Every NAME.json of dir to fn (which takes the job), corrupt ones
 * counted and, when dir_fd >= 0 (locked), moved aside. */
static int walk_dir(const char *dir, int dir_fd, orch_journal_skip_fn skip,
		    orch_journal_fn fn, void *ctx, size_t *ncorrupt,
		    struct cm_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool moved = false;

	if (!d && errno == ENOENT)
		return 0; /* no job yet */
	if (!d)
		return cm_err_set(err, errno, "journal: %s: %s", dir,
				  strerror(errno));
	while ((e = readdir(d))) {
		struct orch_job *job = NULL;
		char why[256], aside[NAME_MAX + 16];
		int rc;

		if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".json"))
			continue;
		if (skip && strlen(e->d_name) == ORCH_JOB_ID_LEN + 5) {
			char id[ORCH_JOB_ID_SIZE];

			memcpy(id, e->d_name, ORCH_JOB_ID_LEN);
			id[ORCH_JOB_ID_LEN] = '\0';
			if (skip(ctx, id))
				continue;
		}
		rc = load_one(dir, e->d_name, &job, why, sizeof(why));
		if (rc == -EIO) {
			cm_warn("journal: %s/%s: %s (skipped)", dir, e->d_name,
				why);
			continue;
		}
		if (rc) {
			(*ncorrupt)++;
			if (dir_fd < 0) {
				cm_warn("journal: %s/%s is corrupt: %s", dir,
					e->d_name, why);
				continue;
			}
			snprintf(aside, sizeof(aside), "%s.corrupt",
				 e->d_name);
			if (renameat(dir_fd, e->d_name, dir_fd, aside) < 0)
				cm_warn("journal: %s/%s is corrupt (%s) and "
					"cannot be moved aside: %s", dir,
					e->d_name, why, strerror(errno));
			else
				cm_warn("journal: %s/%s is corrupt (%s): "
					"moved aside to %s", dir, e->d_name,
					why, aside);
			moved = true;
			continue;
		}
		fn(ctx, job);
	}
	closedir(d);
	if (moved)
		fsync(dir_fd);
	return 0;
}

struct list_ctx {
	struct orch_job_list *out;
	unsigned flags;
	size_t cap;
};

static void list_add(void *ctx, struct orch_job *job)
{
	struct list_ctx *lc = ctx;

	if (!(lc->flags & ORCH_LOAD_ALL) &&
	    orch_job_state_final(job->state) &&
	    !orch_job_holds_resources(job)) {
		orch_job_free(job);
		return;
	}
	list_push(lc->out, &lc->cap, job);
}

static int load_dir(const char *dir, int dir_fd, unsigned flags,
		    struct orch_job_list *out, struct cm_err *err)
{
	struct list_ctx lc = { out, flags, 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	rc = walk_dir(dir, dir_fd, NULL, list_add, &lc, &out->ncorrupt, err);
	if (out->n > 1)
		qsort(out->jobs, out->n, sizeof(*out->jobs), by_id);
	return rc;
}

int orch_journal_each(struct orch_journal *j, orch_journal_skip_fn skip,
		      orch_journal_fn fn, void *ctx, size_t *ncorrupt,
		      struct cm_err *err)
{
	size_t n = 0;
	int rc = walk_dir(j->jobs_dir, j->dir_fd, skip, fn, ctx, &n, err);

	if (ncorrupt)
		*ncorrupt = n;
	return rc;
}

int orch_journal_ids(const char *state_dir, char (**ids)[ORCH_JOB_ID_SIZE],
		     size_t *n, struct cm_err *err)
{
	char *dir = cm_xasprintf("%s/%s", state_dir, JOBS_DIR);
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 0;
	int rc = 0;

	*ids = NULL;
	*n = 0;
	if (!d) {
		if (errno != ENOENT)
			rc = cm_err_set(err, errno, "journal: %s: %s", dir,
					strerror(errno));
		free(dir);
		return rc;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".json") ||
		    strlen(e->d_name) != ORCH_JOB_ID_LEN + 5)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*ids = cm_xrealloc(*ids, cap * sizeof(**ids));
		}
		memcpy((*ids)[*n], e->d_name, ORCH_JOB_ID_LEN);
		(*ids)[(*n)++][ORCH_JOB_ID_LEN] = '\0';
	}
	closedir(d);
	free(dir);
	return 0;
}

int orch_journal_load_job(const char *state_dir, const char *id,
			  struct orch_job **out, struct cm_err *err)
{
	char *dir = cm_xasprintf("%s/%s", state_dir, JOBS_DIR);
	char *name = cm_xasprintf("%s.json", id);
	char why[256];
	int rc = -ENOENT;

	*out = NULL;
	if (orch_job_id_valid(id)) {
		char *path = cm_xasprintf("%s/%s", dir, name);

		if (access(path, F_OK) == 0 || errno != ENOENT)
			rc = load_one(dir, name, out, why, sizeof(why));
		free(path);
	}
	if (rc == -EINVAL || rc == -EIO)
		rc = cm_err_set(err, -rc, "journal: %s/%s: %s", dir, name,
				why);
	else if (rc)
		rc = cm_err_set(err, ENOENT, "journal: no job %s", id);
	free(dir);
	free(name);
	return rc;
}

char *orch_job_record_text(const struct orch_job *job)
{
	return job_to_text(job, true);
}

int orch_job_from_record(const struct cm_json *record, struct orch_job **out,
			 char *why, size_t n)
{
	return job_from_json(record, NULL, out, why, n);
}

/* ---- index records, read by hand ---------------------------------------
 * A scanner for exactly the line job_to_text(as_record) writes: cJSON's
 * unformatted print of the members in that order, each optional one
 * present or not, integers as plain digits. 100,000 records parsed into
 * cJSON trees (a node and a key copy per member) and then walked by name
 * took a third of `vaultfs status`; this reads the line once, in order.
 * It checks what job_from_json checks; whatever it does not recognise (a
 * record of another version, members in another order, a number cJSON
 * printed with an exponent, a \u escape past ASCII) it leaves to the JSON
 * parser, which decides, so both accept the same records. */

struct scan {
	const char *p, *end;
};

static bool sc_litn(struct scan *s, const char *lit, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return false;
	s->p += n;
	return true;
}

/* a literal's length counted by the compiler: no strlen a member */
#define sc_lit(s, lit) sc_litn(s, lit, sizeof(lit) - 1)

static int sc_hex(char c)
{
	return c >= '0' && c <= '9'	? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* A string, unescaped into *out (malloc'd). */
static bool sc_str(struct scan *s, char **out)
{
	const char *q;
	char *d;

	*out = NULL;
	if (s->p >= s->end || *s->p != '"')
		return false;
	for (q = ++s->p; q < s->end && *q != '"' && *q != '\\'; q++)
		if ((unsigned char)*q < 0x20)
			return false;
	if (q < s->end && *q == '"') {
		/* the usual case: nothing escaped */
		*out = cm_xstrndup(s->p, (size_t)(q - s->p));
		s->p = q + 1;
		return true;
	}
	d = *out = cm_xmalloc((size_t)(s->end - s->p) + 1);
	for (q = s->p; q < s->end && *q != '"'; q++) {
		int a, b, c, e;

		if ((unsigned char)*q < 0x20)
			goto bad;
		if (*q != '\\') {
			*d++ = *q;
			continue;
		}
		if (++q == s->end)
			goto bad;
		switch (*q) {
		case '"': case '\\': case '/': *d++ = *q; break;
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u':
			/* what cJSON writes: control characters only */
			if (s->end - q < 5 || (a = sc_hex(q[1])) < 0 ||
			    (b = sc_hex(q[2])) < 0 || (c = sc_hex(q[3])) < 0 ||
			    (e = sc_hex(q[4])) < 0 || a || b || c > 1 ||
			    !(c << 4 | e))
				goto bad;
			*d++ = (char)(c << 4 | e);
			q += 4;
			break;
		default:
			goto bad;
		}
	}
	if (q == s->end)
		goto bad;
	*d = '\0';
	s->p = q + 1;
	return true;
bad:
	free(*out);
	*out = NULL;
	return false;
}

/* A count as cJSON prints one (digits; at most 2^53, as get_u64). */
static bool sc_u64(struct scan *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		v = v * 10 + (uint64_t)(*s->p++ - '0');
		if (v > 9007199254740992ULL)
			return false;
	}
	if (s->p == start || (*start == '0' && s->p - start > 1))
		return false;
	/* a fraction or an exponent: the JSON parser's to judge */
	if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
		return false;
	*out = v;
	return true;
}

/* "KEY":"decimal" of the identity (get_dec) */
#define sc_dec(s, key, out) sc_decn(s, key, sizeof(key) - 1, out)
static bool sc_decn(struct scan *s, const char *key, size_t n, uint64_t *out)
{
	char *t, *end;
	bool ok;

	if (!sc_litn(s, key, n) || !sc_str(s, &t))
		return false;
	errno = 0;
	*out = strtoull(t, &end, 10);
	ok = *t >= '0' && *t <= '9' && errno == 0 && *end == '\0';
	free(t);
	return ok;
}

static bool sc_time(struct scan *s, time_t *out)
{
	char *t;
	bool ok;

	if (!sc_str(s, &t))
		return false;
	ok = cm_time_parse_iso8601(t, out) == 0;
	free(t);
	return ok;
}

/* ,"KEY":"string" when next, into *dst */
#define sc_opt_str(s, key, dst) (!sc_lit(s, key) || sc_str(s, dst))

static bool scan_record(struct scan *s, struct orch_job *job)
{
	uint64_t v = 0, c, m;
	char *t = NULL;
	int st;

	if (!sc_lit(s, "{\"id\":") || !sc_str(s, &t))
		return false;
	if (!orch_job_id_valid(t)) {
		free(t);
		return false;
	}
	memcpy(job->id, t, ORCH_JOB_ID_SIZE);
	free(t);
	if (!sc_lit(s, ",\"vault\":") || !sc_str(s, &job->vault) ||
	    !sc_lit(s, ",\"recoveryPoint\":{\"name\":") ||
	    !sc_str(s, &job->rp_name) || !sc_lit(s, ",\"path\":") ||
	    !sc_str(s, &job->rp_path) || !sc_lit(s, ",\"resourceId\":") ||
	    !sc_str(s, &job->resource_id))
		return false;
	if (sc_lit(s, ",\"size\":") && !sc_u64(s, &job->rp_size))
		return false;
	if (sc_lit(s, ",\"mtime\":")) {
		if (!sc_u64(s, &v) || v > INT64_MAX)
			return false;
		job->rp_mtime = (time_t)v;
	}
	if (sc_lit(s, ",\"identity\":{")) {
		struct orch_rp_identity *id = &job->rp_id;

		if (!sc_dec(s, "\"dev\":", &id->dev) ||
		    !sc_dec(s, ",\"ino\":", &id->ino) ||
		    !sc_dec(s, ",\"size\":", &id->size) ||
		    !sc_dec(s, ",\"ctimeNs\":", &c) ||
		    !sc_dec(s, ",\"mtimeNs\":", &m) || c > INT64_MAX ||
		    m > INT64_MAX || !sc_lit(s, "}"))
			return false;
		id->ctime_ns = (int64_t)c;
		id->mtime_ns = (int64_t)m;
		id->known = true;
	}
	if (!sc_lit(s, "},\"state\":") || !sc_str(s, &t))
		return false;
	st = lookup(state_names, ORCH_JOB_NSTATES, t);
	free(t);
	if (st < 0) /* a newer vaultfs's state: the note job_from_json adds */
		return false;
	job->state = (enum orch_job_state)st;
	if (!sc_lit(s, ",\"attempts\":") || !sc_u64(s, &v) || v > 1000000)
		return false;
	job->attempts = (unsigned)v;
	if (!sc_lit(s, ",\"times\":{"))
		return false;
	for (int k = 0, first = 1; k < ORCH_JOB_NSTATES; k++) {
		const char *at = s->p;

		if ((!first && !sc_lit(s, ",")) || !sc_lit(s, "\"") ||
		    !sc_litn(s, state_names[k], strlen(state_names[k])) ||
		    !sc_lit(s, "\":")) {
			s->p = at; /* not this one */
			continue;
		}
		if (!sc_time(s, &job->times[k]))
			return false;
		first = 0;
	}
	if (!sc_lit(s, "},\"progress\":{\"bytesRead\":") ||
	    !sc_u64(s, &job->bytes_read) ||
	    !sc_lit(s, ",\"bytesTotal\":") || !sc_u64(s, &job->bytes_total) ||
	    !sc_lit(s, ",\"bytesWritten\":") ||
	    !sc_u64(s, &job->bytes_written))
		return false;
	if (sc_lit(s, ",\"blocksFetched\":") &&
	    (!sc_u64(s, &job->blocks_fetched) ||
	     !sc_lit(s, ",\"blocksTotal\":") || !sc_u64(s, &job->blocks_total)))
		return false;
	if (!sc_lit(s, "}"))
		return false;
	if (sc_lit(s, ",\"result\":{\"url\":")) {
		if (!sc_str(s, &job->result_url))
			return false;
		if (sc_lit(s, ",\"size\":") && !sc_u64(s, &job->result_size))
			return false;
		if (!sc_opt_str(s, ",\"etag\":", &job->result_etag) ||
		    !sc_opt_str(s, ",\"sha256\":", &job->result_sha256) ||
		    !sc_opt_str(s, ",\"incomplete\":",
				&job->result_incomplete) ||
		    !sc_lit(s, "}"))
			return false;
	}
	if (sc_lit(s, ",\"export\":{")) {
		/* as job_to_text writes it: task or status first */
		bool first = true;

		if (sc_lit(s, "\"task\":")) {
			if (!sc_str(s, &job->export_task))
				return false;
			first = false;
		}
		if (first ? sc_lit(s, "\"status\":")
			  : sc_lit(s, ",\"status\":")) {
			if (!sc_str(s, &job->export_status))
				return false;
			first = false;
		}
		if (first)
			return false;
		if (sc_lit(s, ",\"percent\":")) {
			if (!sc_u64(s, &v) || v > 100)
				return false;
			job->export_percent = (int)v;
		}
		if (!sc_opt_str(s, ",\"detail\":", &job->export_detail) ||
		    !sc_lit(s, "}"))
			return false;
	}
	if (!sc_opt_str(s, ",\"lastError\":", &job->last_error))
		return false;
	job->verified = sc_lit(s, ",\"verified\":true");
	job->snapshot_deleted = sc_lit(s, ",\"snapshotDeleted\":true");
	if (!sc_lit(s, "}"))
		return false;
	sc_lit(s, "\n");
	return s->p == s->end;
}

int orch_job_scan_record(const char *line, size_t len, struct orch_job **out)
{
	struct scan s = { line, line + len };
	struct orch_job *job = job_alloc();

	*out = NULL;
	if (!scan_record(&s, job)) {
		orch_job_free(job);
		return 1;
	}
	*out = job;
	return 0;
}

int orch_job_from_record_line(const char *line, size_t len,
			      struct orch_job **out, char *why, size_t n)
{
	struct cm_json *j = NULL;
	struct cm_err pe;
	int rc;

	if (orch_job_scan_record(line, len, out) == 0)
		return 0;
	cm_err_clear(&pe);
	if (cm_json_parse(line, len, &j, &pe))
		return reject(why, n, "%s", pe.msg);
	rc = job_from_json(j, NULL, out, why, n);
	cm_json_free(j);
	return rc;
}

int orch_journal_forget(struct orch_journal *j, const char *id)
{
	char name[ORCH_JOB_ID_SIZE + sizeof(".json")];
	int rc = 0;

	snprintf(name, sizeof(name), "%s.log", id);
	if (unlinkat(j->dir_fd, name, 0) < 0 && errno != ENOENT)
		rc = -errno;
	snprintf(name, sizeof(name), "%s.json", id);
	if (cm_fault("journal.forget") ? (errno = EIO, 1)
				       : unlinkat(j->dir_fd, name, 0) < 0 &&
						 errno != ENOENT)
		rc = -errno;
	return rc;
}

int orch_journal_sync(struct orch_journal *j)
{
	return fsync(j->dir_fd) < 0 ? -errno : 0;
}

const char *orch_journal_state_dir(const struct orch_journal *j)
{
	return j->state_dir;
}

int orch_journal_load_all(struct orch_journal *j, unsigned flags,
			  struct orch_job_list *out, struct cm_err *err)
{
	return load_dir(j->jobs_dir, j->dir_fd, flags, out, err);
}

int orch_journal_read(const char *state_dir, unsigned flags,
		      struct orch_job_list *out, struct cm_err *err)
{
	char *dir = cm_xasprintf("%s/%s", state_dir, JOBS_DIR);
	int rc = load_dir(dir, -1, flags, out, err);

	free(dir);
	return rc;
}

void orch_job_list_release(struct orch_job_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++)
		orch_job_free(list->jobs[i]);
	free(list->jobs);
	memset(list, 0, sizeof(*list));
}

/* ---- resources --------------------------------------------------------- */

/* A provider's ids: those of `add` replace or add to what r has. */
static void take_json(struct orch_resource *r, const struct cm_json *add)
{
	struct cm_json *merged;

	if (!add)
		return;
	merged = cm_json_new_object();
	for (struct cm_json *m = cm_json_first(r->ids); m;
	     m = cm_json_next(m))
		if (!cm_json_get(add, cm_json_key(m)))
			cm_json_add(merged, cm_json_key(m), cm_json_copy(m));
	for (struct cm_json *m = cm_json_first(add); m; m = cm_json_next(m))
		cm_json_add(merged, cm_json_key(m), cm_json_copy(m));
	cm_json_free(r->ids);
	r->ids = merged;
}

static void take_ids(struct orch_resource *r, const struct orch_res_ids *ids)
{
	if (!ids)
		return;
	for (size_t f = 0; f < NID_FIELDS; f++) {
		const char *v = ids_field(ids, &id_fields[f]);

		if (v)
			set_str(res_field(r, &id_fields[f]), v);
	}
	take_json(r, ids->json);
}

int orch_journal_res_add(struct orch_journal *j, struct orch_job *job,
			 const char *kind,
			 const struct orch_res_ids *ids, size_t *idx,
			 struct cm_err *err)
{
	struct orch_resource *r;
	int rc;

	if (!orch_res_kind_valid(kind))
		return cm_err_set(err, EINVAL, "job %s: resource kind \"%s\":"
				  " not 1 to 64 of [a-z0-9-]", job->id,
				  kind ? kind : "");
	if (ids && ids->json && cm_json_type(ids->json) != CM_JSON_OBJECT)
		return cm_err_set(err, EINVAL, "job %s: resource %s: its ids "
				  "are not a JSON object", job->id, kind);
	r = res_append(job);
	r->kind = cm_xstrdup(kind);
	r->status = ORCH_RES_INTENDED;
	r->changed = time(NULL);
	take_ids(r, ids);
	rc = orch_journal_save(j, job, err);
	if (rc) {
		res_release(&job->res[--job->nres]);
		return rc;
	}
	*idx = job->nres - 1;
	return 0;
}

static int res_mark(struct orch_journal *j, struct orch_job *job, size_t idx,
		    enum orch_res_status status,
		    const struct orch_res_ids *learned, struct cm_err *err)
{
	struct orch_resource *r;

	if (idx >= job->nres)
		abort(); /* a broken invariant: no such resource */
	r = &job->res[idx];
	r->status = status;
	r->changed = time(NULL);
	take_ids(r, learned);
	return orch_journal_save(j, job, err);
}

int orch_journal_res_created(struct orch_journal *j, struct orch_job *job,
			     size_t idx, const struct orch_res_ids *learned,
			     struct cm_err *err)
{
	return res_mark(j, job, idx, ORCH_RES_CREATED, learned, err);
}

int orch_journal_res_released(struct orch_journal *j, struct orch_job *job,
			      size_t idx, struct cm_err *err)
{
	return res_mark(j, job, idx, ORCH_RES_RELEASED, NULL, err);
}
