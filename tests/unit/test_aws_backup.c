/*
 * test_aws_backup.c - the aws-backup vault type without a network: its
 * config keys and their errors, the provider made from them, and the
 * names recovery point ARNs get in the view.
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
#include "orchestrator/provider.h"
#include "orchestrator/provider_aws_backup.h"
#include "orchestrator/rp.h"

static int parse(const char *vault, struct orch_config *cfg,
		 struct cm_err *err)
{
	char *text = cm_xasprintf("{\"vaults\": [%s], \"destination\": "
				  "\"s3://vaultfs-test/p\", \"stateDir\": \"/tmp/vf-state\"}",
				  vault);
	int rc;

	cm_err_clear(err);
	rc = orch_config_parse(text, strlen(text), "/tmp", cfg, err);
	free(text);
	return rc;
}

static void expect_error(const char *vault, const char *msg)
{
	struct orch_config cfg;
	struct cm_err err;

	assert_int_equal(parse(vault, &cfg, &err), -EINVAL);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", err.msg, msg);
}

#define V "{\"name\": \"prod\", \"type\": \"aws-backup\", "

static void test_config_good(void **state)
{
	struct orch_config cfg;
	struct cm_err err;

	(void)state;
	assert_int_equal(parse(V "\"backupVault\": \"prod-vault\", "
			       "\"region\": \"us-east-1\", \"queueUrl\": "
			       "\"https://sqs.us-east-1.amazonaws.com/"
			       "123456789012/vaultfs-events\", "
			       "\"pollSeconds\": 60, \"resourceTypes\": "
			       "[\"EBS\", \"DynamoDB\"]}", &cfg, &err), 0);
	assert_int_equal(cfg.nvaults, 1);
	assert_string_equal(cfg.vaults[0].type, "aws-backup");
	assert_null(cfg.vaults[0].path);
	orch_config_release(&cfg);

	/* only backupVault is required */
	assert_int_equal(parse(V "\"backupVault\": \"v_1\"}", &cfg, &err), 0);
	orch_config_release(&cfg);
}

static void test_config_errors(void **state)
{
	(void)state;
	expect_error(V "\"region\": \"us-east-1\"}",
		     "config: vaults[0].backupVault: missing (the AWS Backup "
		     "vault's name)");
	expect_error(V "\"backupVault\": \"prod vault\"}",
		     "config: vaults[0].backupVault: must be 2 to 50 "
		     "characters from [A-Za-z0-9_-], got \"prod vault\"");
	expect_error(V "\"backupVault\": 7}",
		     "config: vaults[0].backupVault: must be a string, got 7");
	expect_error(V "\"backupVault\": \"v1\", \"pollSeconds\": 0}",
		     "config: vaults[0].pollSeconds: must be an integer from "
		     "1 to 86400, got 0");
	expect_error(V "\"backupVault\": \"v1\", \"pollSeconds\": \"300\"}",
		     "config: vaults[0].pollSeconds: must be an integer from "
		     "1 to 86400, got \"300\"");
	expect_error(V "\"backupVault\": \"v1\", \"queueUrl\": "
		     "\"sqs://vaultfs-events\"}",
		     "config: vaults[0].queueUrl: must be an SQS queue URL "
		     "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, got "
		     "\"sqs://vaultfs-events\"");
	expect_error(V "\"backupVault\": \"v1\", \"queueUrl\": "
		     "\"https://sqs.us-east-1.amazonaws.com/\"}",
		     "config: vaults[0].queueUrl: must be an SQS queue URL "
		     "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, got "
		     "\"https://sqs.us-east-1.amazonaws.com/\"");
	expect_error(V "\"backupVault\": \"v1\", \"region\": \"us east\"}",
		     "config: vaults[0].region: must be a region name such as "
		     "\"us-east-1\", got \"us east\"");
	expect_error(V "\"backupVault\": \"v1\", \"resourceTypes\": "
		     "[\"EBS\", \"EFS\"]}",
		     "config: vaults[0].resourceTypes: [1] must be one of "
		     "\"EBS\", \"RDS\", \"Aurora\", \"DynamoDB\" (AWS Backup's "
		     "names), got \"EFS\"");
	expect_error(V "\"backupVault\": \"v1\", \"resourceTypes\": "
		     "[\"RDS\", \"RDS\"]}",
		     "config: vaults[0].resourceTypes: \"RDS\" is listed "
		     "twice");
	expect_error(V "\"backupVault\": \"v1\", \"resourceTypes\": []}",
		     "config: vaults[0].resourceTypes: must be a non-empty "
		     "array of \"EBS\", \"RDS\", \"Aurora\", \"DynamoDB\"");
	/* a local vault's key is not an aws-backup vault's */
	expect_error(V "\"backupVault\": \"v1\", \"path\": \"/tmp\"}",
		     "config: unknown key \"vaults[0].path\"");
}

/* A provider is made from a checked vault without any request. */
static void test_provider_new(void **state)
{
	struct orch_config cfg;
	struct orch_provider *p = NULL;
	struct cm_err err;

	(void)state;
	assert_int_equal(parse(V "\"backupVault\": \"v1\", \"region\": "
			       "\"eu-west-1\"}", &cfg, &err), 0);
	assert_int_equal(orch_provider_new(&cfg, &cfg.vaults[0], &p, &err),
			 0);
	assert_non_null(p);
	assert_string_equal(p->ops->name, "aws-backup");
	assert_non_null(p->ops->watch_new);
	orch_provider_free(p);
	orch_config_release(&cfg);
}

static int adds;

static int count_add(void *ctx, const char *kind,
		     const struct orch_res_ids *ids, size_t *idx,
		     struct cm_err *err)
{
	(void)ctx, (void)kind, (void)ids, (void)err;
	*idx = adds++;
	return 0;
}

/*
 * ebs.method "volume" picks the volume restorer, which needs this
 * instance's id and zone from IMDS before anything is journaled or
 * created; its resources, and the direct method's, are released after a
 * crash whatever the method configured now.
 */
static void test_ebs_methods(void **state)
{
	struct orch_config cfg;
	struct orch_provider *p = NULL;
	struct orch_res_journal rj = { .add = count_add, .job_id = "j1" };
	char path[] = "arn:aws:ec2:eu-west-1::snapshot/snap-0123456789abcdef0";
	char type[] = ORCH_RP_EBS;
	char vol[] = "ebs-volume", mnt[] = "ebs-mount", other[] = "ebs-other";
	struct orch_recovery_point rp = { .path = path, .type = type };
	struct orch_resource res = { .kind = vol };
	struct orch_restored out;
	struct cm_err err;

	(void)state;
	assert_int_equal(parse(V "\"backupVault\": \"v1\", \"region\": "
			       "\"eu-west-1\"}", &cfg, &err), 0);
	cfg.ebs_method = ORCH_EBS_VOLUME; /* (config.c's parsing: test_config) */
	assert_int_equal(orch_provider_new(&cfg, &cfg.vaults[0], &p, &err),
			 0);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	cm_err_clear(&err);
	assert_int_equal(p->ops->restore(p, &rp, &rj, &out, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "ebs.method volume needs this EC2 "
			       "instance's id and zone"));
	assert_non_null(strstr(err.msg, "AWS_EC2_METADATA_DISABLED"));
	assert_int_equal(adds, 0);
	/* never made (no token recorded): nothing to ask for */
	res.ids = cm_json_new_object();
	assert_int_equal(p->ops->release_stale(p, &res, &err), 0);
	cfg.ebs_method = ORCH_EBS_DIRECT;
	assert_int_equal(p->ops->release_stale(p, &res, &err), 0);
	res.kind = mnt;
	assert_int_equal(p->ops->release_stale(p, &res, &err), 0);
	res.kind = other;
	assert_int_equal(p->ops->release_stale(p, &res, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no restorer releases a resource of "
			       "kind \"ebs-other\""));
	cm_json_free(res.ids);
	orch_provider_free(p);
	orch_config_release(&cfg);
}

static void expect_name(const char *arn, const char *want)
{
	char out[ORCH_RP_NAME_MAX + 1];

	if (!want) {
		assert_int_equal(orch_aws_rp_name(arn, out, sizeof(out)),
				 -EINVAL);
		return;
	}
	assert_int_equal(orch_aws_rp_name(arn, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_names(void **state)
{
	(void)state;
	expect_name("arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0",
		    "snap-0123456789abcdef0");
	expect_name("arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:"
		    "job-1f2e", "awsbackup:job-1f2e");
	expect_name("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:"
		    "awsbackup:job-9a", "awsbackup:job-9a");
	expect_name("arn:aws:dynamodb:us-east-1:123456789012:table/orders/"
		    "backup/01693468800000-abcdef12", "01693468800000-abcdef12");
	expect_name("arn:aws:backup:us-east-1:123456789012:recovery-point:"
		    "1EB3B5E7-9EB0-435A-A80B-108B488B0D45",
		    "1EB3B5E7-9EB0-435A-A80B-108B488B0D45");
	expect_name("arn:aws:ec2:us-east-1::snapshot/..", NULL);
	expect_name("arn:aws:ec2:us-east-1::snapshot/", NULL);
	expect_name("snap-0123", NULL);
	expect_name("arn:aws:ec2:us-east-1", NULL);
}

/*
 * The delete path against moto: run by tests/integration/aws_backup.sh,
 * which makes the recovery points and names them in AWSB_TEST_* (without
 * them, as a unit test, there is nothing to talk to). The security tag
 * is checked on the recovery point's tags before DeleteRecoveryPoint,
 * whatever the caller checked before.
 */
static void expect_delete(struct orch_provider *p, const char *arn, int want,
			  const char *msg_part)
{
	char name[ORCH_RP_NAME_MAX + 1];
	struct orch_recovery_point rp;
	struct orch_res_journal rj = { 0 };
	struct cm_err err;
	int rc;

	assert_non_null(arn);
	assert_int_equal(orch_aws_rp_name(arn, name, sizeof(name)), 0);
	cm_err_clear(&err);
	rc = p->ops->inspect(p, name, &rp, &err);
	if (rc)
		fail_msg("inspect %s: %s", name, err.msg);
	assert_string_equal(rp.path, arn);
	rc = p->ops->delete_snapshot(p, &rp, &rj, &err);
	orch_rp_release(&rp);
	if (rc != want || (msg_part && !strstr(err.msg, msg_part)))
		fail_msg("delete %s: %d \"%s\", want %d \"%s\"", arn, rc,
			 rc ? err.msg : "", want, msg_part ? msg_part : "");
	/* refused: still there; deleted: gone */
	cm_err_clear(&err);
	rc = p->ops->inspect(p, name, &rp, &err);
	if (rc == 0)
		orch_rp_release(&rp);
	assert_int_equal(rc, want ? 0 : -ENOENT);
}

static void test_delete_moto(void **state)
{
	const char *vault = getenv("AWSB_TEST_VAULT");
	struct orch_provider *p = NULL;
	struct orch_config cfg;
	struct cm_err err;
	char *text;

	(void)state;
	if (!vault || !getenv("AWS_ENDPOINT_URL"))
		skip(); /* the unit run: aws_backup.sh runs it against moto */
	text = cm_xasprintf("{\"vaults\": [{\"name\": \"prod\", \"type\": "
			    "\"aws-backup\", \"backupVault\": \"%s\"}], "
			    "\"destination\": \"s3://vaultfs-test/p\", "
			    "\"stateDir\": \"/tmp/vf-state\", \"securityTag\": "
			    "{\"key\": \"vaultfs-archive\", \"value\": "
			    "\"yes\"}}", vault);
	cm_err_clear(&err);
	if (orch_config_parse(text, strlen(text), "/tmp", &cfg, &err))
		fail_msg("%s", err.msg);
	free(text);
	assert_int_equal(orch_provider_new(&cfg, &cfg.vaults[0], &p, &err),
			 0);
	expect_delete(p, getenv("AWSB_TEST_RP_NOTAG"), -EPERM,
		      "does not carry the security tag \"vaultfs-archive\"");
	expect_delete(p, getenv("AWSB_TEST_RP_WRONG"), -EPERM,
		      "its tag \"vaultfs-archive\" is not the security tag's "
		      "value");
	expect_delete(p, getenv("AWSB_TEST_RP_OK"), 0, NULL);
	printf("aws_backup delete path: checked against moto\n");
	orch_provider_free(p);
	orch_config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_good),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_provider_new),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ebs_methods),
		cmocka_unit_test(test_delete_moto),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
