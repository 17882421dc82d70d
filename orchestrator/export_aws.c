/*
 * export_aws.c - the exporters of aws-backup vaults (provider.h,
 * "Exports"; docs/aws.md, "Exports"): RDS and Aurora snapshots go to S3
 * through RDS StartExportTask, DynamoDB tables through DynamoDB
 * ExportTableToPointInTime, into the job's folder of the destination:
 *
 *   PREFIX/RESOURCE/Y=/M=/D=/JOBID/TASK/...            RDS, Aurora
 *     export_info_TASK.json, export_tables_info_TASK_from_N_to_M.json,
 *     DATABASE/SCHEMA.TABLE/.../part-*.gz.parquet
 *   PREFIX/RESOURCE/Y=/M=/D=/JOBID/AWSDynamoDB/EXPORTID/...  DynamoDB
 *     manifest-summary.json, manifest-files.json, data/NAME.json.gz|ion.gz
 *   PREFIX/RESOURCE/Y=/M=/D=/JOBID/manifest.json       vaultfs's (job.c)
 *
 * Never started twice. RDS: the task is named from the job id
 * (orch_export_task_name), recorded before StartExportTask, and looked up
 * with DescribeExportTasks before any start. DynamoDB names its exports
 * itself: ClientToken = the job id makes a repeated call answer the same
 * export (AWS keeps the token 8 hours), and the ExportArn is recorded
 * right after the call.
 *
 * Following: DescribeExportTasks / DescribeExport, first after
 * x->poll_ms, then at twice the wait each time up to
 * ORCH_EXPORT_POLL_MAX_MS. The statuses are AWS's: RDS STARTING,
 * IN_PROGRESS, COMPLETE, CANCELING, CANCELED, FAILED; DynamoDB
 * IN_PROGRESS, COMPLETED, FAILED (compared ignoring case).
 *
 * Verification, by the export's own manifests (the service writes them
 * last). RDS: export_info_TASK.json says COMPLETE, at least one
 * export_tables_info_TASK_*.json is there and every table in it is
 * COMPLETE, and the data files under the task's folder are listed (count,
 * bytes). DynamoDB: manifest-summary.json names manifest-files.json, every
 * data file that one names is there (HeadObject) with its ETag where the
 * manifest gives one, and the item counts add up to the summary's.
 *
 * API references: RDS StartExportTask, DescribeExportTasks,
 * CancelExportTask (Query, 2014-10-31); DynamoDB ExportTableToPointInTime,
 * DescribeExport (JSON 1.0); DynamoDB's "Export output format".
 */
#include "aws_backup_int.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "orch.h"
#include "s3.h"
#include "timeutil.h"
#include "xml.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SMALL_MAX (64u << 20) /* a manifest read into memory */

/* ---- shared ------------------------------------------------------------ */

int orch_export_task_name(const char *job_id, char *out, size_t n)
{
	static const char lead[] = "vaultfs-";
	size_t k = sizeof(lead) - 1;
	const char *p;

	if (!job_id || !*job_id || n < k + 2)
		return -EINVAL;
	memcpy(out, lead, k);
	/* RDS: 1-60 letters, digits and hyphens, a letter first, no "--",
	 * no hyphen last. The job id's '.' and any other mark become one
	 * hyphen; letters are lowered (ids differ in digits, not case) */
	for (p = job_id; *p; p++) {
		char c = *p;

		if (isalnum((unsigned char)c))
			c = (char)tolower((unsigned char)c);
		else if (out[k - 1] == '-')
			continue;
		else
			c = '-';
		if (k + 1 >= n || k >= 60)
			return -EINVAL;
		out[k++] = c;
	}
	while (out[k - 1] == '-')
		k--;
	out[k] = '\0';
	return 0;
}

/* The job's folder key without its '/': the S3Prefix of both APIs. */
static char *prefix_of(const struct orch_export *x)
{
	size_t n = strlen(x->prefix);

	return cm_xstrndup(x->prefix, n && x->prefix[n - 1] == '/' ? n - 1
								   : n);
}

static void progress(struct orch_export *x, const char *status, int pct,
		     const char *detail)
{
	struct orch_export_progress p = { status, pct, detail };

	if (x->progress)
		x->progress(x->ctx, &p);
}

/* One look at the export: *done once complete; -ECANCELED once the
 * service cancelled it; another error once it failed. */
typedef int (*poll_fn)(void *c, struct orch_export *x, bool *done,
		       struct cm_err *err);
typedef int (*cancel_fn)(void *c, struct orch_export *x,
			 struct cm_err *err);

static int follow(struct orch_export *x, poll_fn poll, cancel_fn cancel,
		  void *c, struct cm_err *err)
{
	unsigned wait = x->poll_ms ? x->poll_ms : ORCH_EXPORT_POLL_MS;
	bool cancelling = false;

	for (;;) {
		bool done = false;
		int rc;

		if (cancel && !cancelling &&
		    x->stop(x->ctx) == ORCH_EXPORT_CANCEL) {
			rc = cancel(c, x, err);
			if (rc)
				return rc;
			cancelling = true;
		}
		rc = poll(c, x, &done, err);
		if (rc || done)
			return rc;
		for (unsigned ms = 0; ms < wait; ms += 100) {
			enum orch_export_stop st = x->stop(x->ctx);

			if (st == ORCH_EXPORT_DETACH)
				return cm_err_set(err, ECANCELED, "interrupted:"
						  " vaultfs is stopping (the "
						  "export goes on)");
			if (st == ORCH_EXPORT_CANCEL && cancel && !cancelling) {
				rc = cancel(c, x, err);
				if (rc)
					return rc;
				cancelling = true;
				wait = x->poll_ms ? x->poll_ms
						  : ORCH_EXPORT_POLL_MS;
				break;
			}
			cm_sleep_ms(100);
		}
		if (!cancelling && wait < ORCH_EXPORT_POLL_MAX_MS)
			wait = wait * 2 > ORCH_EXPORT_POLL_MAX_MS
				       ? ORCH_EXPORT_POLL_MAX_MS
				       : wait * 2;
	}
}

static int small_sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct cm_buf *b = ctx;

	if (cm_buf_append(b, p, n))
		return cm_err_set(err, EFBIG, "over %u MiB", SMALL_MAX >> 20);
	return 0;
}

/* An object of the export, whole, into b. */
static int get_small(const struct orch_export *x, const char *key,
		     struct cm_buf *b, struct cm_err *err)
{
	int rc;

	cm_buf_init(b, SMALL_MAX);
	rc = s3_get_object(x->s3, x->bucket, key, NULL, small_sink, b, NULL,
			   err);
	if (rc)
		cm_err_prefix(err, "s3://%s/%s", x->bucket, key);
	return rc;
}

static int get_json(const struct orch_export *x, const char *key,
		    struct cm_json **out, struct cm_err *err)
{
	struct cm_buf b;
	int rc;

	rc = get_small(x, key, &b, err);
	if (rc == 0) {
		rc = cm_json_parse(cm_buf_str(&b), b.len, out, err);
		if (rc)
			cm_err_prefix(err, "s3://%s/%s", x->bucket, key);
	}
	cm_buf_release(&b);
	return rc;
}

/* The key under the bucket of x->url ("s3://bucket/key/"). */
static const char *url_key(const struct orch_export *x)
{
	const char *k = x->url + 5 + strlen(x->bucket);

	return *k == '/' ? k + 1 : k;
}

/* The exporter's AWS client of rp's type and the settings both read. */
struct exp {
	struct aws_backup *ab;
	struct aws_client *c;
	const struct orch_recovery_point *rp;
	const char *what; /* "RDS", "Aurora", "DynamoDB" */
};

static int exp_init(struct orch_provider *p,
		    const struct orch_recovery_point *rp,
		    const struct orch_export *x, struct exp *e,
		    struct cm_err *err)
{
	e->ab = awsb_of(p);
	e->rp = rp;
	e->what = !strcmp(rp->type, ORCH_RP_RDS)      ? "RDS" :
		  !strcmp(rp->type, ORCH_RP_AURORA)   ? "Aurora" :
							"DynamoDB";
	e->c = awsb_client_of(e->ab, rp->type);
	if (!e->c)
		return cm_err_set(err, EINVAL, "vault \"%s\" does not take %s",
				  p->vault->name, e->what);
	if (!x->bucket)
		return cm_err_set(err, EINVAL, "%s recovery points are "
				  "exported by the service into an S3 bucket:"
				  " the destination must be s3://BUCKET"
				  "[/PREFIX], not a local store", e->what);
	return 0;
}

/* ---- RDS and Aurora ---------------------------------------------------- */

/* DescribeExportTasks of one task into *task (cm_xml_free *ans): -ENOENT
 * when the service knows none by that name. */
static int rds_describe(struct exp *e, const char *id, struct cm_xml **ans,
			struct cm_xml **task, struct cm_err *err)
{
	const char *params[] = { "ExportTaskIdentifier", id };
	struct cm_err e2;
	int rc;

	cm_err_clear(&e2);
	*ans = NULL;
	rc = aws_query(e->c, "DescribeExportTasks", params, 1, ans, &e2);
	if (rc == -ENOENT)
		return -ENOENT; /* ExportTaskNotFound */
	if (rc) {
		*err = e2;
		return rc;
	}
	*task = cm_xml_child(cm_xml_child(cm_xml_child(*ans,
			"DescribeExportTasksResult"), "ExportTasks"),
			"ExportTask");
	if (!*task) {
		cm_xml_free(*ans);
		*ans = NULL;
		return -ENOENT;
	}
	return 0;
}

int orch_rds_export_params(const struct orch_config *cfg, const char *id,
			   const char *source_arn, const char *bucket,
			   const char *prefix, const char ***out, size_t *n,
			   struct cm_err *err)
{
	const char **pv;
	size_t k = 0;

	if (!cfg->rds_iam_role_arn)
		return cm_err_set(err, EINVAL, "config: rds.iamRoleArn: "
				  "missing: exporting an RDS or Aurora "
				  "snapshot needs the IAM role the export "
				  "writes to S3 with (docs/aws.md, "
				  "\"Exports\")");
	if (!cfg->rds_kms_key_id)
		return cm_err_set(err, EINVAL, "config: rds.kmsKeyId: missing:"
				  " exporting an RDS or Aurora snapshot needs "
				  "the KMS key the export is encrypted with "
				  "(docs/aws.md, \"Exports\")");
	pv = cm_xcalloc(2 * (6 + cfg->rds_nexport_only), sizeof(*pv));
	pv[k++] = "ExportTaskIdentifier";
	pv[k++] = id;
	pv[k++] = "SourceArn";
	pv[k++] = source_arn;
	pv[k++] = "S3BucketName";
	pv[k++] = bucket;
	pv[k++] = "IamRoleArn";
	pv[k++] = cfg->rds_iam_role_arn;
	pv[k++] = "KmsKeyId";
	pv[k++] = cfg->rds_kms_key_id;
	pv[k++] = "S3Prefix";
	pv[k++] = prefix;
	for (size_t i = 0; i < cfg->rds_nexport_only; i++) {
		/* the names "ExportOnly.member.N" live as long as *out */
		char *name = cm_xasprintf("ExportOnly.member.%zu", i + 1);

		pv[k++] = name;
		pv[k++] = cfg->rds_export_only[i];
	}
	*out = pv;
	*n = k / 2;
	return 0;
}

void orch_rds_export_params_free(const char **pv, size_t n)
{
	for (size_t i = 6; i < n; i++)
		free((char *)pv[2 * i]);
	free(pv);
}

static int rds_start(struct exp *e, struct orch_export *x, const char *id,
		     struct cm_err *err)
{
	char *prefix = prefix_of(x);
	const char **pv = NULL;
	struct cm_xml *ans = NULL;
	size_t n = 0;
	int rc;

	rc = orch_rds_export_params(e->ab->cfg, id, e->rp->path, x->bucket,
				    prefix, &pv, &n, err);
	if (rc)
		goto out;
	rc = x->record(x->ctx, id, false, err);
	if (rc)
		goto out;
	rc = aws_query(e->c, "StartExportTask", pv, n, &ans, err);
	if (rc && strstr(err->msg, "ExportTaskAlreadyExists")) {
		/* started after all (a race with another run's start) */
		cm_info("export task %s exists already: following it", id);
		rc = 0;
	}
	if (rc) {
		cm_err_prefix(err, "StartExportTask %s of %s", id,
			      e->rp->path);
		goto out;
	}
	rc = x->record(x->ctx, id, true, err);
out:
	cm_xml_free(ans);
	if (pv)
		orch_rds_export_params_free(pv, n);
	free(prefix);
	return rc;
}

static int rds_poll(void *c, struct orch_export *x, bool *done,
		    struct cm_err *err)
{
	struct exp *e = c;
	struct cm_xml *ans = NULL, *t = NULL;
	const char *st, *pct, *gb, *cause;
	char detail[96] = "";
	int rc;

	rc = rds_describe(e, x->task, &ans, &t, err);
	if (rc == -ENOENT)
		return cm_err_set(err, ENOENT, "export task %s: the service "
				  "no longer knows it", x->task);
	if (rc)
		return cm_err_prefix(err, "DescribeExportTasks %s", x->task);
	st = cm_xml_child_text(t, "Status");
	pct = cm_xml_child_text(t, "PercentProgress");
	gb = cm_xml_child_text(t, "TotalExtractedDataInGB");
	cause = cm_xml_child_text(t, "FailureCause");
	if (gb && *gb)
		snprintf(detail, sizeof(detail), "%s GB extracted", gb);
	progress(x, st ? st : "?", pct && *pct ? atoi(pct) : -1,
		 *detail ? detail : NULL);
	if (!st)
		rc = cm_err_set(err, EPROTO, "export task %s: no Status",
				x->task);
	else if (!strcasecmp(st, "COMPLETE"))
		*done = true;
	else if (!strcasecmp(st, "FAILED"))
		rc = cm_err_set(err, EIO, "export task %s failed: %s",
				x->task, cause && *cause ? cause
							 : "no FailureCause");
	else if (!strcasecmp(st, "CANCELED"))
		rc = cm_err_set(err, ECANCELED, "export task %s was "
				"cancelled", x->task);
	cm_xml_free(ans);
	return rc;
}

static int rds_cancel(void *c, struct orch_export *x, struct cm_err *err)
{
	struct exp *e = c;
	const char *params[] = { "ExportTaskIdentifier", x->task };
	struct cm_xml *ans = NULL;
	int rc;

	cm_info("cancelling export task %s", x->task);
	rc = aws_query(e->c, "CancelExportTask", params, 1, &ans, err);
	cm_xml_free(ans);
	if (rc)
		cm_err_prefix(err, "CancelExportTask %s", x->task);
	return rc;
}

static int rds_export(struct orch_provider *p,
		      const struct orch_recovery_point *rp,
		      struct orch_export *x, struct cm_err *err)
{
	struct exp e;
	struct cm_xml *ans = NULL, *t;
	char id[64], *prefix;
	int rc;

	rc = exp_init(p, rp, x, &e, err);
	if (rc)
		return rc;
	if (orch_export_task_name(x->job_id, id, sizeof(id)))
		return cm_err_set(err, EINVAL, "job %s: no export task name "
				  "from it", x->job_id);
	if (x->task && strcmp(x->task, id) != 0)
		return cm_err_set(err, EINVAL, "job %s recorded export task "
				  "%s, not %s", x->job_id, x->task, id);
	/* an earlier run may have started it: look before starting */
	rc = rds_describe(&e, id, &ans, &t, err);
	cm_xml_free(ans);
	if (rc == 0) {
		cm_info("export task %s exists: following it", id);
		rc = x->record(x->ctx, id, true, err);
	} else if (rc == -ENOENT) {
		rc = rds_start(&e, x, id, err);
	} else {
		cm_err_prefix(err, "DescribeExportTasks %s", id);
	}
	if (rc)
		return rc;
	x->task = x->task ? x->task : id;
	prefix = prefix_of(x);
	x->url = cm_xasprintf("s3://%s/%s/%s/", x->bucket, prefix, id);
	free(prefix);
	rc = follow(x, rds_poll, rds_cancel, &e, err);
	if (x->task == id)
		x->task = NULL; /* borrowed from this frame */
	return rc;
}

/* What one list walk of the export's folder finds. */
struct listing {
	const char *task;
	char **tables_info; /* keys of export_tables_info_TASK_*.json */
	size_t ntables_info;
	bool has_info;
	uint64_t files, bytes;
};

static int list_cb(void *ctx, const struct s3_list_entry *le)
{
	struct listing *l = ctx;
	const char *base = strrchr(le->key, '/');
	char want[128];

	base = base ? base + 1 : le->key;
	if (le->is_prefix || !strcmp(base, ORCH_MANIFEST_NAME))
		return 0; /* vaultfs's own, of an earlier verification */
	l->files++;
	l->bytes += le->size;
	snprintf(want, sizeof(want), "export_info_%s.json", l->task);
	if (!strcmp(base, want))
		l->has_info = true;
	snprintf(want, sizeof(want), "export_tables_info_%s_", l->task);
	if (!strncmp(base, want, strlen(want)) &&
	    strlen(base) > 5 && !strcmp(base + strlen(base) - 5, ".json")) {
		l->tables_info = cm_xrealloc(l->tables_info,
					     (l->ntables_info + 1) *
						     sizeof(char *));
		l->tables_info[l->ntables_info++] = cm_xstrdup(le->key);
	}
	return 0;
}

/* One export_tables_info file: every table COMPLETE. */
int orch_rds_tables_check(const struct cm_json *info, const char *where,
			   uint64_t *ntables, struct cm_err *err)
{
	const struct cm_json *arr = cm_json_get(info, "perTableStatus");

	if (cm_json_type(arr) != CM_JSON_ARRAY)
		return cm_err_set(err, EIO, "%s: no perTableStatus list",
				  where);
	for (const struct cm_json *t = cm_json_first(arr); t;
	     t = cm_json_next(t)) {
		const char *st = cm_json_get_str(t, "status");
		const char *target = cm_json_get_str(t, "target");

		if (!st || strcasecmp(st, "COMPLETE") != 0)
			return cm_err_set(err, EIO, "%s: table %s is %s, not "
					  "COMPLETE", where,
					  target ? target : "?",
					  st ? st : "without a status");
		(*ntables)++;
	}
	return 0;
}

static int rds_check_tables(const struct orch_export *x, const char *key,
			    uint64_t *ntables, struct cm_err *err)
{
	struct cm_json *j = NULL;
	char *where;
	int rc;

	rc = get_json(x, key, &j, err);
	if (rc)
		return rc;
	where = cm_xasprintf("s3://%s/%s", x->bucket, key);
	rc = orch_rds_tables_check(j, where, ntables, err);
	free(where);
	cm_json_free(j);
	return rc;
}

static int rds_verify(struct orch_provider *p,
		      const struct orch_recovery_point *rp,
		      struct orch_export *x, struct cm_err *err)
{
	struct listing l = { 0 };
	struct s3_list_opts lo = { 0 };
	struct cm_json *info = NULL;
	const char *st;
	char *key;
	uint64_t ntables = 0;
	int rc;

	(void)p;
	(void)rp;
	l.task = x->task;
	lo.prefix = url_key(x);
	rc = s3_list_objects(x->s3, x->bucket, &lo, list_cb, &l, err);
	if (rc) {
		cm_err_prefix(err, "list %s", x->url);
		goto out;
	}
	key = cm_xasprintf("%sexport_info_%s.json", url_key(x), x->task);
	if (!l.has_info)
		rc = cm_err_set(err, EIO, "s3://%s/%s is missing: the export "
				"is not whole", x->bucket, key);
	else if (!l.ntables_info)
		rc = cm_err_set(err, EIO, "%sexport_tables_info_%s_*.json is "
				"missing: the export is not whole", x->url,
				x->task);
	if (!rc)
		rc = get_json(x, key, &info, err);
	free(key);
	if (rc)
		goto out;
	st = cm_json_get_str(info, "status");
	if (st && strcasecmp(st, "COMPLETE") != 0) {
		rc = cm_err_set(err, EIO, "%sexport_info_%s.json: status %s",
				x->url, x->task, st);
		goto out;
	}
	for (size_t i = 0; !rc && i < l.ntables_info; i++)
		rc = rds_check_tables(x, l.tables_info[i], &ntables, err);
	if (rc)
		goto out;
	x->bytes = l.bytes;
	x->facts = cm_json_new_object();
	cm_json_add_str(x->facts, "service", "rds");
	cm_json_add_str(x->facts, "task", x->task);
	cm_json_add_str(x->facts, "url", x->url);
	cm_json_add_str(x->facts, "format", "parquet");
	cm_json_add_u64(x->facts, "files", l.files);
	cm_json_add_u64(x->facts, "bytes", l.bytes);
	cm_json_add_u64(x->facts, "tables", ntables);
	cm_json_add(x->facts, "exportInfo", info);
	info = NULL;
	cm_info("verified export %s: %llu files, %llu bytes, %llu tables "
		"COMPLETE", x->url, (unsigned long long)l.files,
		(unsigned long long)l.bytes, (unsigned long long)ntables);
out:
	cm_json_free(info);
	for (size_t i = 0; i < l.ntables_info; i++)
		free(l.tables_info[i]);
	free(l.tables_info);
	return rc;
}

static const struct orch_provider_ops rds_ops = {
	.name = "rds-export",
	.export = rds_export,
	.export_verify = rds_verify,
};

const struct orch_aws_restorer orch_rds_exporter = { .ops = &rds_ops };

/* ---- DynamoDB ---------------------------------------------------------- */

struct cm_json *orch_ddb_export_request(const struct orch_config *cfg,
					const char *job_id,
					const char *table_arn, time_t when,
					const char *bucket,
					const char *prefix)
{
	struct cm_json *b = cm_json_new_object();

	cm_json_add_str(b, "TableArn", table_arn);
	if (when > 0)
		cm_json_add_u64(b, "ExportTime", (uint64_t)when);
	cm_json_add_str(b, "S3Bucket", bucket);
	cm_json_add_str(b, "S3Prefix", prefix);
	if (cfg->expected_bucket_owner)
		cm_json_add_str(b, "S3BucketOwner",
				cfg->expected_bucket_owner);
	cm_json_add_str(b, "ExportFormat", cfg->ddb_export_format
						   ? cfg->ddb_export_format
						   : "DYNAMODB_JSON");
	cm_json_add_str(b, "ExportType", "FULL_EXPORT");
	if (cfg->ddb_sse_algorithm)
		cm_json_add_str(b, "S3SseAlgorithm", cfg->ddb_sse_algorithm);
	if (cfg->ddb_sse_kms_key_id)
		cm_json_add_str(b, "S3SseKmsKeyId", cfg->ddb_sse_kms_key_id);
	/* the same token answers the same export: never two */
	cm_json_add_str(b, "ClientToken", job_id);
	return b;
}

static int ddb_start(struct exp *e, struct orch_export *x, char **arn,
		     struct cm_err *err)
{
	char *prefix = prefix_of(x);
	struct cm_json *body, *ans = NULL;
	const char *a;
	int rc;

	body = orch_ddb_export_request(e->ab->cfg, x->job_id,
				       e->rp->resource_id, e->rp->created,
				       x->bucket, prefix);
	rc = x->record(x->ctx, NULL, false, err);
	if (rc == 0)
		rc = aws_json(e->c, "ExportTableToPointInTime", body, &ans,
			      err);
	if (rc && strstr(err->msg, "PointInTimeRecoveryUnavailable"))
		rc = cm_err_set(err, EINVAL, "table %s: point-in-time "
				"recovery is disabled, and DynamoDB exports "
				"only from it: enable it on the table "
				"(UpdateContinuousBackups) and export again",
				e->rp->resource_id);
	else if (rc)
		cm_err_prefix(err, "ExportTableToPointInTime %s",
			      e->rp->resource_id);
	a = rc ? NULL : cm_json_get_str(cm_json_get(ans, "ExportDescription"),
					"ExportArn");
	if (rc == 0 && !a)
		rc = cm_err_set(err, EPROTO, "ExportTableToPointInTime %s: no "
				"ExportArn in the answer", e->rp->resource_id);
	if (rc == 0) {
		*arn = cm_xstrdup(a);
		rc = x->record(x->ctx, a, true, err);
	}
	cm_json_free(ans);
	cm_json_free(body);
	free(prefix);
	return rc;
}

/* The export's folder: the directory of ExportManifest when the answer
 * names it, else PREFIX/AWSDynamoDB/EXPORTID/ (the ARN's last part). */
static char *ddb_url(const struct orch_export *x, const struct cm_json *d)
{
	const char *m = cm_json_get_str(d, "ExportManifest");
	const char *slash = m ? strrchr(m, '/') : NULL;
	const char *id = strrchr(x->task, '/');
	char *prefix, *url;

	if (slash)
		return cm_xasprintf("s3://%s/%.*s/", x->bucket,
				    (int)(slash - m), m);
	prefix = prefix_of(x);
	url = cm_xasprintf("s3://%s/%s/AWSDynamoDB/%s/", x->bucket, prefix,
			   id ? id + 1 : x->task);
	free(prefix);
	return url;
}

static int ddb_poll(void *c, struct orch_export *x, bool *done,
		    struct cm_err *err)
{
	struct exp *e = c;
	struct cm_json *body = cm_json_new_object(), *ans = NULL;
	const struct cm_json *d;
	const char *st;
	char detail[128], size[32];
	int rc;

	cm_json_add_str(body, "ExportArn", x->task);
	rc = aws_json(e->c, "DescribeExport", body, &ans, err);
	cm_json_free(body);
	if (rc)
		return cm_err_prefix(err, "DescribeExport %s", x->task);
	d = cm_json_get(ans, "ExportDescription");
	st = cm_json_get_str(d, "ExportStatus");
	orch_format_bytes((uint64_t)cm_json_num(cm_json_get(d,
				"BilledSizeBytes")), size, sizeof(size));
	snprintf(detail, sizeof(detail), "%.0f items, %s billed",
		 cm_json_num(cm_json_get(d, "ItemCount")), size);
	progress(x, st ? st : "?", -1, detail);
	if (!st) {
		rc = cm_err_set(err, EPROTO, "export %s: no ExportStatus",
				x->task);
	} else if (!strcasecmp(st, "COMPLETED")) {
		free(x->url);
		x->url = ddb_url(x, d);
		*done = true;
	} else if (!strcasecmp(st, "FAILED")) {
		const char *code = cm_json_get_str(d, "FailureCode");
		const char *msg = cm_json_get_str(d, "FailureMessage");

		rc = cm_err_set(err, EIO, "export %s failed: %s%s%s", x->task,
				code ? code : "", code && msg ? ": " : "",
				msg ? msg : code ? "" : "no FailureMessage");
	}
	cm_json_free(ans);
	return rc;
}

static int ddb_export(struct orch_provider *p,
		      const struct orch_recovery_point *rp,
		      struct orch_export *x, struct cm_err *err)
{
	struct exp e;
	char *arn = NULL;
	int rc;

	rc = exp_init(p, rp, x, &e, err);
	if (rc)
		return rc;
	if (x->uncancellable)
		x->uncancellable(x->ctx, "DynamoDB exports cannot be "
				 "cancelled: the service has no such call, "
				 "the export runs to its end");
	if (x->task) {
		cm_info("export %s recorded: following it", x->task);
		rc = x->record(x->ctx, x->task, true, err);
		if (rc)
			return rc;
	} else {
		/* none recorded: not started, or started and not recorded
		 * (the same ClientToken answers that one) */
		rc = ddb_start(&e, x, &arn, err);
		if (rc)
			return rc;
		x->task = arn;
	}
	rc = follow(x, ddb_poll, NULL, &e, err);
	if (x->task == arn)
		x->task = NULL;
	free(arn);
	return rc;
}

int orch_ddb_files_each(const char *text, size_t len,
			int (*fn)(void *ctx, const struct orch_ddb_file *f,
				  struct cm_err *err),
			void *ctx, struct cm_err *err)
{
	const char *p = text, *end = text + len;
	size_t line = 0;
	int rc = 0;

	while (!rc && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct cm_json *j = NULL;
		const struct cm_json *items;
		struct orch_ddb_file f;

		line++;
		if (n == 0 || (n == 1 && *p == '\r')) {
			p += n + 1;
			continue;
		}
		rc = cm_json_parse(p, n, &j, err);
		if (rc) {
			cm_err_prefix(err, "manifest-files.json line %zu",
				      line);
			break;
		}
		items = cm_json_get(j, "itemCount");
		f.line = line;
		f.key = cm_json_get_str(j, "dataFileS3Key");
		f.etag = cm_json_get_str(j, "etag");
		f.items = (uint64_t)cm_json_num(items);
		if (!f.key || !*f.key)
			rc = cm_err_set(err, EIO, "manifest-files.json line "
					"%zu: no dataFileS3Key", line);
		else if (cm_json_type(items) != CM_JSON_NUMBER ||
			 cm_json_num(items) < 0)
			rc = cm_err_set(err, EIO, "manifest-files.json line "
					"%zu: no itemCount", line);
		else
			rc = fn(ctx, &f, err);
		cm_json_free(j);
		p += n + 1;
	}
	return rc;
}

/* Every data file a manifest names is there, with its ETag. */
struct ddb_walk {
	const struct orch_export *x;
	uint64_t files, items, bytes;
};

static int ddb_check_file(void *ctx, const struct orch_ddb_file *f,
			  struct cm_err *err)
{
	struct ddb_walk *w = ctx;
	struct s3_object_info info;
	int rc;

	rc = s3_head_object(w->x->s3, w->x->bucket, f->key, &info, err);
	if (rc) /* the name first: the cause may be cut */
		return cm_err_set(err, rc == -ENOENT ? EIO : -rc,
				  "%s, named by manifest-files.json line %zu:"
				  " %s", f->key, f->line,
				  rc == -ENOENT ? "missing" : err->msg);
	if (f->etag && *f->etag && !s3_etag_equal(f->etag, info.etag))
		return cm_err_set(err, EIO, "%s: ETag %s, manifest-files.json "
				  "line %zu says %s", f->key, info.etag,
				  f->line, f->etag);
	w->files++;
	w->items += f->items;
	w->bytes += info.size;
	return 0;
}

static int ddb_check_files(const struct orch_export *x, const char *key,
			   struct ddb_walk *w, struct cm_err *err)
{
	struct cm_buf b;
	int rc;

	w->x = x;
	rc = get_small(x, key, &b, err);
	if (rc == 0)
		rc = orch_ddb_files_each(cm_buf_str(&b), b.len,
					 ddb_check_file, w, err);
	cm_buf_release(&b);
	return rc;
}

static int ddb_verify(struct orch_provider *p,
		      const struct orch_recovery_point *rp,
		      struct orch_export *x, struct cm_err *err)
{
	struct cm_json *sum = NULL;
	const char *files_key, *arn;
	struct ddb_walk w = { 0 };
	char *key = cm_xasprintf("%smanifest-summary.json", url_key(x));
	int rc;

	(void)p;
	(void)rp;
	rc = get_json(x, key, &sum, err);
	if (rc)
		goto out;
	files_key = cm_json_get_str(sum, "manifestFilesS3Key");
	arn = cm_json_get_str(sum, "exportArn");
	if (!files_key) {
		rc = cm_err_set(err, EIO, "s3://%s/%s: no manifestFilesS3Key",
				x->bucket, key);
		goto out;
	}
	if (arn && strcmp(arn, x->task) != 0) {
		rc = cm_err_set(err, EIO, "s3://%s/%s is export %s's, not "
				"%s's", x->bucket, key, arn, x->task);
		goto out;
	}
	rc = ddb_check_files(x, files_key, &w, err);
	if (rc)
		goto out;
	if (cm_json_get(sum, "itemCount") &&
	    (uint64_t)cm_json_num(cm_json_get(sum, "itemCount")) != w.items) {
		rc = cm_err_set(err, EIO, "s3://%s/%s: %llu items, its data "
				"files hold %llu", x->bucket, key,
				(unsigned long long)cm_json_num(
					cm_json_get(sum, "itemCount")),
				(unsigned long long)w.items);
		goto out;
	}
	x->bytes = w.bytes;
	x->facts = cm_json_new_object();
	cm_json_add_str(x->facts, "service", "dynamodb");
	cm_json_add_str(x->facts, "task", x->task);
	cm_json_add_str(x->facts, "url", x->url);
	cm_json_add_u64(x->facts, "files", w.files);
	cm_json_add_u64(x->facts, "bytes", w.bytes);
	cm_json_add_u64(x->facts, "items", w.items);
	cm_json_add(x->facts, "summary", sum);
	sum = NULL;
	cm_info("verified export %s: %llu data files, %llu bytes, %llu items",
		x->url, (unsigned long long)w.files,
		(unsigned long long)w.bytes, (unsigned long long)w.items);
out:
	cm_json_free(sum);
	free(key);
	return rc;
}

static const struct orch_provider_ops ddb_ops = {
	.name = "dynamodb-export",
	.export = ddb_export,
	.export_verify = ddb_verify,
};

const struct orch_aws_restorer orch_ddb_exporter = { .ops = &ddb_ops };
