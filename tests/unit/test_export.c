/*
 * test_export.c - the exports of aws-backup vaults without a network: the
 * RDS task name a job gets, StartExportTask's parameters and the config
 * errors that stop them, ExportTableToPointInTime's body, the checks of
 * the exports' own manifests (RDS export_tables_info, DynamoDB
 * manifest-files.json), the "rds" and "dynamodb" config objects, and how
 * an exporting job reads in status.
 * The exports themselves, their verification and the engine's path run
 * against moto in tests/integration/aws_exports.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "orchestrator/config.h"
#include "orchestrator/orch.h"
#include "orchestrator/provider.h"
#include "orchestrator/provider_aws_backup.h"

/* The service's rules for ExportTaskIdentifier. */
static void assert_rds_name(const char *s)
{
	size_t n = strlen(s);

	assert_true(n >= 1 && n <= 60);
	assert_true(s[0] >= 'a' && s[0] <= 'z');
	assert_true(s[n - 1] != '-');
	assert_null(strstr(s, "--"));
	for (const char *p = s; *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '-');
}

static void test_task_name(void **state)
{
	char a[64], b[64];

	(void)state;
	assert_int_equal(orch_export_task_name(
				 "20261203T070000.123Z-4e778d7e", a, sizeof(a)),
			 0);
	assert_string_equal(a, "vaultfs-20261203t070000-123z-4e778d7e");
	assert_rds_name(a);
	/* two jobs of the same millisecond differ in their random part */
	assert_int_equal(orch_export_task_name(
				 "20261203T070000.123Z-4e778d7f", b, sizeof(b)),
			 0);
	assert_string_not_equal(a, b);
	/* marks in a row, marks at the end: one hyphen, none last */
	assert_int_equal(orch_export_task_name("a..b--c.", a, sizeof(a)), 0);
	assert_string_equal(a, "vaultfs-a-b-c");
	assert_rds_name(a);
	/* over 60 characters, or no room: refused, never cut */
	assert_int_equal(orch_export_task_name(
				 "0123456789012345678901234567890123456789"
				 "0123456789012345", a, sizeof(a)),
			 -EINVAL);
	assert_int_equal(orch_export_task_name("x", a, 9), -EINVAL);
	assert_int_equal(orch_export_task_name("", a, sizeof(a)), -EINVAL);
}

static int parse(const char *extra, struct orch_config *cfg,
		 struct cm_err *err)
{
	char *text = cm_xasprintf("{\"vaults\": [{\"name\": \"db\", \"type\": "
				  "\"aws-backup\", \"backupVault\": \"v1\"}], "
				  "\"destination\": \"s3://vaultfs-test/p\", "
				  "\"stateDir\": \"/tmp/vf-state\"%s}",
				  extra);
	int rc;

	cm_err_clear(err);
	rc = orch_config_parse(text, strlen(text), "/tmp", cfg, err);
	free(text);
	return rc;
}

static void expect_config_error(const char *extra, const char *msg)
{
	struct orch_config cfg;
	struct cm_err err;

	assert_int_equal(parse(extra, &cfg, &err), -EINVAL);
	if (strstr(err.msg, msg) == NULL)
		fail_msg("got  \"%s\"\nwant \"%s\"", err.msg, msg);
}

/* pairs[i] for name, or NULL */
static const char *param(const char **pv, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(pv[2 * i], name) == 0)
			return pv[2 * i + 1];
	return NULL;
}

static void test_rds_params(void **state)
{
	struct orch_config cfg;
	struct cm_err err;
	const char **pv = NULL;
	size_t n = 0;

	(void)state;
	/* neither key: the role is named first */
	assert_int_equal(parse("", &cfg, &err), 0);
	assert_int_equal(orch_rds_export_params(&cfg, "vaultfs-x", "arn:s",
						"b", "p/k", &pv, &n, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "config: rds.iamRoleArn: missing"));
	orch_config_release(&cfg);
	assert_int_equal(parse(", \"rds\": {\"iamRoleArn\": "
			       "\"arn:aws:iam::123456789012:role/export\"}",
			       &cfg, &err),
			 0);
	assert_int_equal(orch_rds_export_params(&cfg, "vaultfs-x", "arn:s",
						"b", "p/k", &pv, &n, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "config: rds.kmsKeyId: missing"));
	orch_config_release(&cfg);

	assert_int_equal(parse(", \"rds\": {\"iamRoleArn\": "
			       "\"arn:aws:iam::123456789012:role/export\", "
			       "\"kmsKeyId\": \"alias/export\", \"exportOnly\":"
			       " [\"db1\", \"db2.public.t\"]}",
			       &cfg, &err),
			 0);
	assert_int_equal(orch_rds_export_params(&cfg, "vaultfs-x",
						"arn:aws:rds:r:1:snapshot:s",
						"bkt", "p/arn/Y=2026/J", &pv,
						&n, &err),
			 0);
	assert_int_equal(n, 8);
	assert_string_equal(param(pv, n, "ExportTaskIdentifier"),
			    "vaultfs-x");
	assert_string_equal(param(pv, n, "SourceArn"),
			    "arn:aws:rds:r:1:snapshot:s");
	assert_string_equal(param(pv, n, "S3BucketName"), "bkt");
	assert_string_equal(param(pv, n, "S3Prefix"), "p/arn/Y=2026/J");
	assert_string_equal(param(pv, n, "IamRoleArn"),
			    "arn:aws:iam::123456789012:role/export");
	assert_string_equal(param(pv, n, "KmsKeyId"), "alias/export");
	assert_string_equal(param(pv, n, "ExportOnly.member.1"), "db1");
	assert_string_equal(param(pv, n, "ExportOnly.member.2"),
			    "db2.public.t");
	orch_rds_export_params_free(pv, n);
	orch_config_release(&cfg);
}

static void test_ddb_request(void **state)
{
	struct orch_config cfg;
	struct cm_err err;
	struct cm_json *b;

	(void)state;
	assert_int_equal(parse("", &cfg, &err), 0);
	b = orch_ddb_export_request(&cfg, "20261203T070000.123Z-4e778d7e",
				    "arn:aws:dynamodb:r:1:table/t", 1795639516,
				    "bkt", "p/k");
	assert_string_equal(cm_json_get_str(b, "TableArn"),
			    "arn:aws:dynamodb:r:1:table/t");
	assert_true(cm_json_num(cm_json_get(b, "ExportTime")) == 1795639516);
	assert_string_equal(cm_json_get_str(b, "S3Bucket"), "bkt");
	assert_string_equal(cm_json_get_str(b, "S3Prefix"), "p/k");
	assert_string_equal(cm_json_get_str(b, "ExportFormat"),
			    "DYNAMODB_JSON");
	assert_string_equal(cm_json_get_str(b, "ClientToken"),
			    "20261203T070000.123Z-4e778d7e");
	assert_null(cm_json_get(b, "S3SseAlgorithm"));
	cm_json_free(b);
	orch_config_release(&cfg);

	assert_int_equal(parse(", \"dynamodb\": {\"exportFormat\": \"ION\", "
			       "\"s3SseAlgorithm\": \"KMS\", \"s3SseKmsKeyId\":"
			       " \"alias/k\"}",
			       &cfg, &err),
			 0);
	b = orch_ddb_export_request(&cfg, "j", "t", 0, "bkt", "p");
	assert_string_equal(cm_json_get_str(b, "ExportFormat"), "ION");
	assert_string_equal(cm_json_get_str(b, "S3SseAlgorithm"), "KMS");
	assert_string_equal(cm_json_get_str(b, "S3SseKmsKeyId"), "alias/k");
	assert_null(cm_json_get(b, "ExportTime")); /* unknown: now */
	cm_json_free(b);
	orch_config_release(&cfg);
}

static void test_config_errors(void **state)
{
	(void)state;
	expect_config_error(", \"rds\": {\"iamRole\": \"x\"}",
			    "config: unknown key \"rds.iamRole\"");
	expect_config_error(", \"rds\": {\"iamRoleArn\": \"export\"}",
			    "config: rds.iamRoleArn: must be an IAM role ARN");
	expect_config_error(", \"rds\": {\"exportOnly\": []}",
			    "config: rds.exportOnly: must be a non-empty "
			    "array");
	expect_config_error(", \"dynamodb\": {\"exportFormat\": \"CSV\"}",
			    "config: dynamodb.exportFormat: must be one of "
			    "\"DYNAMODB_JSON\", \"ION\", got \"CSV\"");
	expect_config_error(", \"dynamodb\": {\"s3SseKmsKeyId\": \"k\"}",
			    "config: dynamodb.s3SseKmsKeyId: needs "
			    "s3SseAlgorithm \"KMS\"");
}

static void expect_tables(const char *text, int want, const char *msg,
			  uint64_t ntables)
{
	struct cm_json *j = NULL;
	struct cm_err err;
	uint64_t n = 0;

	cm_err_clear(&err);
	assert_int_equal(cm_json_parse(text, strlen(text), &j, &err), 0);
	assert_int_equal(orch_rds_tables_check(j, "s3://b/t.json", &n, &err),
			 want);
	if (msg && strcmp(err.msg, msg) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", err.msg, msg);
	if (!want)
		assert_int_equal(n, ntables);
	cm_json_free(j);
}

/* export_tables_info: every table COMPLETE, else the table named */
static void test_rds_tables(void **state)
{
	(void)state;
	expect_tables("{\"perTableStatus\": [{\"target\": \"db.public.a\", "
		      "\"status\": \"COMPLETE\", \"sizeGB\": 0.5}, "
		      "{\"target\": \"db.public.b\", \"status\": "
		      "\"complete\"}]}", 0, NULL, 2);
	expect_tables("{\"perTableStatus\": [{\"target\": \"db.public.a\", "
		      "\"status\": \"COMPLETE\"}, {\"target\": "
		      "\"db.public.b\", \"status\": \"FAILED\"}]}", -EIO,
		      "s3://b/t.json: table db.public.b is FAILED, not "
		      "COMPLETE", 0);
	expect_tables("{\"perTableStatus\": [{\"target\": \"db.x\"}]}", -EIO,
		      "s3://b/t.json: table db.x is without a status, not "
		      "COMPLETE", 0);
	expect_tables("{\"tables\": []}", -EIO,
		      "s3://b/t.json: no perTableStatus list", 0);
}

struct files_seen {
	size_t n;
	uint64_t items;
	const char *last_key, *last_etag;
	size_t stop_at; /* the callback fails at this line; 0: never */
};

static int files_cb(void *ctx, const struct orch_ddb_file *f,
		    struct cm_err *err)
{
	struct files_seen *s = ctx;

	s->n++;
	s->items += f->items;
	s->last_key = f->key;
	s->last_etag = f->etag;
	if (f->line == s->stop_at)
		return cm_err_set(err, EIO, "%s missing", f->key);
	return 0;
}

static int files(const char *text, struct files_seen *seen,
		 struct cm_err *err)
{
	cm_err_clear(err);
	return orch_ddb_files_each(text, strlen(text), files_cb, seen, err);
}

/* manifest-files.json: one object per line, each naming a data file */
static void test_ddb_files(void **state)
{
	struct files_seen s = { 0 };
	struct cm_err err;

	(void)state;
	assert_int_equal(files("{\"itemCount\":2,\"md5Checksum\":\"x\","
			       "\"etag\":\"e1\",\"dataFileS3Key\":\"p/data/a."
			       "json.gz\"}\n\n{\"itemCount\":1,\"dataFileS3Key"
			       "\":\"p/data/b.json.gz\"}\n", &s, &err),
			 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.items, 3);
	assert_null(s.last_etag); /* none given: none compared */
	/* the callback's failure stops the walk at that line */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(files("{\"itemCount\":2,\"dataFileS3Key\":\"a\"}\n"
			       "{\"itemCount\":1,\"dataFileS3Key\":\"b\"}\n"
			       "{\"itemCount\":1,\"dataFileS3Key\":\"c\"}\n",
			       &s, &err),
			 -EIO);
	assert_int_equal(s.n, 2);
	assert_string_equal(err.msg, "b missing");
	/* a line without its key or count, or not JSON: named */
	memset(&s, 0, sizeof(s));
	assert_int_equal(files("{\"itemCount\":2,\"dataFileS3Key\":\"a\"}\n"
			       "{\"itemCount\":1}\n", &s, &err),
			 -EIO);
	assert_string_equal(err.msg, "manifest-files.json line 2: no "
			    "dataFileS3Key");
	assert_int_equal(files("{\"dataFileS3Key\":\"a\"}", &s, &err), -EIO);
	assert_string_equal(err.msg, "manifest-files.json line 1: no "
			    "itemCount");
	assert_true(files("{\"itemCount\":", &s, &err) < 0);
	assert_non_null(strstr(err.msg, "manifest-files.json line 1"));
}

/* Types listed on purpose that are exported need an S3 destination; the
 * default (all four) into a local store stays valid for EBS. */
static void test_local_destination(void **state)
{
	static const char *const cfgs[] = {
		"{\"vaults\": [{\"name\": \"db\", \"type\": \"aws-backup\", "
		"\"backupVault\": \"v1\", \"region\": \"us-east-1\", "
		"\"resourceTypes\": [\"EBS\", \"DynamoDB\"]}], "
		"\"destination\": \"/tmp/vf-store\", "
		"\"stateDir\": \"/tmp/vf-state\"}",
		"{\"vaults\": [{\"name\": \"db\", \"type\": \"aws-backup\", "
		"\"backupVault\": \"v1\", \"region\": \"us-east-1\"}], "
		"\"destination\": \"/tmp/vf-store\", "
		"\"stateDir\": \"/tmp/vf-state\"}",
	};
	struct orch_config cfg;
	struct orch_provider *p = NULL;
	struct cm_err err;

	(void)state;
	for (int i = 0; i < 2; i++) {
		cm_err_clear(&err);
		assert_int_equal(orch_config_parse(cfgs[i], strlen(cfgs[i]),
						   "/tmp", &cfg, &err),
				 0);
		assert_int_equal(orch_provider_new(&cfg, &cfg.vaults[0], &p,
						   &err),
				 i ? 0 : -EINVAL);
		if (i == 0)
			assert_string_equal(err.msg, "config: vault \"db\": "
					    "resourceTypes lists DynamoDB, "
					    "whose recovery points their "
					    "service exports into S3: the "
					    "destination must be s3://BUCKET"
					    "[/PREFIX], not a local store");
		orch_provider_free(p);
		p = NULL;
		orch_config_release(&cfg);
	}
}

static void test_status_text(void **state)
{
	struct orch_job_info ji;
	char *text;

	(void)state;
	memset(&ji, 0, sizeof(ji));
	strcpy(ji.id, "20261203T070000.123Z-4e778d7e");
	ji.vault = cm_xstrdup("prod");
	ji.rp_name = cm_xstrdup("awsbackup:job-1");
	ji.resource_id = cm_xstrdup("arn:aws:rds:r:1:db:orders");
	ji.state = ORCH_JOB_EXPORTING;
	ji.export_task = cm_xstrdup("vaultfs-20261203t070000-123z-4e778d7e");
	ji.export_status = cm_xstrdup("IN_PROGRESS");
	ji.export_detail = cm_xstrdup("18.3 GB extracted");
	ji.export_percent = 42;
	ji.no_cancel = cm_xstrdup("no such call");
	text = orch_job_info_text(&ji);
	assert_non_null(strstr(text, "state: exporting\n"));
	assert_non_null(strstr(text, "progress: 42% (18.3 GB extracted)\n"));
	assert_non_null(strstr(text, "export task: vaultfs-20261203t070000-"
				     "123z-4e778d7e\n"));
	assert_non_null(strstr(text, "cancel: not possible: no such call\n"));
	free(text);
	orch_job_info_release(&ji);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_name),
		cmocka_unit_test(test_rds_params),
		cmocka_unit_test(test_ddb_request),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_rds_tables),
		cmocka_unit_test(test_ddb_files),
		cmocka_unit_test(test_local_destination),
		cmocka_unit_test(test_status_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
