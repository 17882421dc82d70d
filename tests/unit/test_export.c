/*
 * test_export.c - the exports of aws-backup vaults without a network: the
 * RDS task name a job gets, StartExportTask's parameters and the config
 * errors that stop them, ExportTableToPointInTime's body, the "rds" and
 * "dynamodb" config objects, and how an exporting job reads in status.
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
		cmocka_unit_test(test_local_destination),
		cmocka_unit_test(test_status_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
