/*
 * test_aws_events.c - AWS Backup events read from SQS message bodies:
 * the ones to archive, the foreign ones to drop, the malformed ones to
 * leave in the queue, and duplicates that name one recovery point.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "orchestrator/aws_events.h"

#define VAULT_ARN "arn:aws:backup:us-east-1:123456789012:backup-vault:"
#define SNAP_ARN "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
#define VOL_ARN "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc"

static const char *const types[] = { "EBS", "RDS", "Aurora", "DynamoDB" };
static const struct orch_aws_event_filter filter = {
	.vault = "prod-vault",
	.resource_types = types,
	.ntypes = 4,
};

/* A Backup Job State Change as AWS Backup sends it, with the fields the
 * test varies. */
static char *job_event(const char *vault, const char *state,
		       const char *type, const char *rp)
{
	return cm_xasprintf(
		"{\"version\": \"0\", \"id\": \"6a7e8feb-b491\","
		" \"detail-type\": \"Backup Job State Change\","
		" \"source\": \"aws.backup\", \"account\": \"123456789012\","
		" \"time\": \"2026-11-26T20:45:16Z\", \"region\": \"us-east-1\","
		" \"resources\": [\"%s\"],"
		" \"detail\": {\"backupJobId\": \"8a3c1c8e-0000\","
		" \"backupSizeInBytes\": \"1073741824\","
		" \"backupVaultArn\": \"" VAULT_ARN "%s\","
		" \"backupVaultName\": \"%s\","
		" \"creationDate\": \"2026-11-26T20:40:00Z\","
		" \"iamRoleArn\": \"arn:aws:iam::123456789012:role/backup\","
		" \"resourceArn\": \"%s\", \"resourceType\": \"%s\","
		" \"state\": \"%s\", \"percentDone\": \"100.0\""
		"%s%s%s}}",
		VOL_ARN, vault, vault, VOL_ARN, type, state,
		rp ? ", \"recoveryPointArn\": \"" : "", rp ? rp : "",
		rp ? "\"" : "");
}

static enum orch_aws_verdict parse(const char *body,
				   struct orch_aws_event *ev)
{
	return orch_aws_event_parse(body, strlen(body), &filter, ev);
}

static void test_job_completed(void **state)
{
	char *body = job_event("prod-vault", "COMPLETED", "EBS", SNAP_ARN);
	struct orch_aws_event ev;

	(void)state;
	assert_int_equal(parse(body, &ev), ORCH_AWS_EVENT_ACCEPT);
	assert_string_equal(ev.recovery_point_arn, SNAP_ARN);
	assert_string_equal(ev.resource_arn, VOL_ARN);
	assert_string_equal(ev.resource_type, "EBS");
	assert_string_equal(ev.vault, "prod-vault");
	assert_string_equal(ev.id, "6a7e8feb-b491");
	orch_aws_event_release(&ev);
	free(body);
}

/* The status spelling, the recovery point only in resources, and the
 * vault only as an ARN. */
static void test_rp_state_change(void **state)
{
	static const char body[] =
		"{\"id\": \"e1\", \"detail-type\": \"Recovery Point State "
		"Change\", \"source\": \"aws.backup\", \"resources\": [\""
		"arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-1"
		"\"], \"detail\": {\"backupVaultArn\": \"" VAULT_ARN
		"prod-vault\", \"resourceType\": \"RDS\", \"status\": "
		"\"COMPLETED\", \"resourceArn\": \"arn:aws:rds:us-east-1:"
		"123456789012:db:orders\"}}";
	struct orch_aws_event ev;

	(void)state;
	assert_int_equal(parse(body, &ev), ORCH_AWS_EVENT_ACCEPT);
	assert_string_equal(ev.recovery_point_arn,
			    "arn:aws:rds:us-east-1:123456789012:snapshot:"
			    "awsbackup:job-1");
	assert_string_equal(ev.vault, "prod-vault");
	orch_aws_event_release(&ev);
}

/* An SNS notification around the event (a queue subscribed to a topic). */
static void test_sns_wrapped(void **state)
{
	char *inner = job_event("prod-vault", "COMPLETED", "DynamoDB",
				"arn:aws:dynamodb:us-east-1:123456789012:"
				"table/t/backup/0169-ab");
	char *esc = cm_xmalloc(strlen(inner) * 2 + 1), *q = esc, *body;
	struct orch_aws_event ev;

	(void)state;
	for (const char *p = inner; *p; p++) {
		if (*p == '"' || *p == '\\')
			*q++ = '\\';
		*q++ = *p;
	}
	*q = '\0';
	body = cm_xasprintf("{\"Type\": \"Notification\", \"MessageId\": "
			    "\"m1\", \"Message\": \"%s\"}", esc);
	assert_int_equal(parse(body, &ev), ORCH_AWS_EVENT_ACCEPT);
	assert_string_equal(ev.recovery_point_arn,
			    "arn:aws:dynamodb:us-east-1:123456789012:"
			    "table/t/backup/0169-ab");
	orch_aws_event_release(&ev);
	free(body);
	free(esc);
	free(inner);
}

static void expect_verdict(char *body, enum orch_aws_verdict want,
			   const char *why_part)
{
	struct orch_aws_event ev;

	assert_int_equal(parse(body, &ev), want);
	if (!strstr(ev.why, why_part))
		fail_msg("why \"%s\" lacks \"%s\"", ev.why, why_part);
	assert_null(ev.recovery_point_arn);
	orch_aws_event_release(&ev);
	free(body);
}

static void test_foreign(void **state)
{
	(void)state;
	expect_verdict(job_event("other-vault", "COMPLETED", "EBS", SNAP_ARN),
		       ORCH_AWS_EVENT_IGNORE, "\"other-vault\"");
	expect_verdict(job_event("prod-vault", "FAILED", "EBS", SNAP_ARN),
		       ORCH_AWS_EVENT_IGNORE, "state FAILED");
	expect_verdict(job_event("prod-vault", "RUNNING", "EBS", NULL),
		       ORCH_AWS_EVENT_IGNORE, "state RUNNING");
	expect_verdict(job_event("prod-vault", "COMPLETED", "EFS", SNAP_ARN),
		       ORCH_AWS_EVENT_IGNORE, "\"EFS\"");
	expect_verdict(cm_xstrdup("{\"id\": \"x\", \"source\": \"aws.ec2\", "
				  "\"detail-type\": \"EBS Snapshot "
				  "Notification\", \"detail\": {}}"),
		       ORCH_AWS_EVENT_IGNORE, "aws.ec2");
	expect_verdict(cm_xstrdup("{\"source\": \"aws.backup\", "
				  "\"detail-type\": \"Copy Job State "
				  "Change\", \"detail\": {}}"),
		       ORCH_AWS_EVENT_IGNORE, "Copy Job State Change");
}

/* Without resourceType the event is taken, and the recovery point's
 * description decides its type. */
static void test_no_resource_type(void **state)
{
	static const char body[] =
		"{\"source\": \"aws.backup\", \"detail-type\": \"Recovery "
		"Point State Change\", \"resources\": [\"" SNAP_ARN "\"], "
		"\"detail\": {\"backupVaultName\": \"prod-vault\", "
		"\"status\": \"COMPLETED\"}}";
	struct orch_aws_event ev;

	(void)state;
	assert_int_equal(parse(body, &ev), ORCH_AWS_EVENT_ACCEPT);
	assert_null(ev.resource_type);
	assert_string_equal(ev.recovery_point_arn, SNAP_ARN);
	orch_aws_event_release(&ev);
}

/* A vault that ignores resource types narrows the filter. */
static void test_resource_type_filter(void **state)
{
	static const char *const only_rds[] = { "RDS" };
	struct orch_aws_event_filter f = { "prod-vault", only_rds, 1 };
	char *body = job_event("prod-vault", "COMPLETED", "EBS", SNAP_ARN);
	struct orch_aws_event ev;

	(void)state;
	assert_int_equal(orch_aws_event_parse(body, strlen(body), &f, &ev),
			 ORCH_AWS_EVENT_IGNORE);
	orch_aws_event_release(&ev);
	free(body);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_verdict(cm_xstrdup("hello"), ORCH_AWS_EVENT_MALFORMED,
		       "not JSON");
	expect_verdict(cm_xstrdup("{\"source\": \"aws.backup\"}"),
		       ORCH_AWS_EVENT_MALFORMED, "detail-type");
	expect_verdict(cm_xstrdup("[1, 2]"), ORCH_AWS_EVENT_MALFORMED,
		       "array");
	expect_verdict(cm_xstrdup("{\"source\": \"aws.backup\", "
				  "\"detail-type\": \"Backup Job State "
				  "Change\", \"detail\": \"x\"}"),
		       ORCH_AWS_EVENT_MALFORMED, "detail is string");
	expect_verdict(cm_xstrdup("{\"source\": \"aws.backup\", "
				  "\"detail-type\": \"Backup Job State "
				  "Change\", \"detail\": {\"state\": 3}}"),
		       ORCH_AWS_EVENT_MALFORMED, "detail.state is number");
	expect_verdict(cm_xstrdup("{\"source\": \"aws.backup\", "
				  "\"detail-type\": \"Backup Job State "
				  "Change\", \"detail\": {\"state\": "
				  "\"COMPLETED\", \"resourceType\": "
				  "\"EBS\"}}"),
		       ORCH_AWS_EVENT_MALFORMED, "names the vault");
	/* ours in every way but without the recovery point */
	expect_verdict(job_event("prod-vault", "COMPLETED", "EBS", NULL),
		       ORCH_AWS_EVENT_MALFORMED, "recoveryPointArn");
	expect_verdict(job_event("prod-vault", "COMPLETED", "EBS", "snap-1"),
		       ORCH_AWS_EVENT_MALFORMED, "recoveryPointArn");
	expect_verdict(cm_xstrdup("{\"Type\": \"Notification\", \"Message\": "
				  "\"{not json\"}"),
		       ORCH_AWS_EVENT_MALFORMED, "SNS");
}

/* The same event twice, and the two event kinds of one recovery point,
 * name the same recovery point: the engine makes one job of them. */
static void test_duplicate(void **state)
{
	char *a = job_event("prod-vault", "COMPLETED", "EBS", SNAP_ARN);
	char *b = cm_xasprintf(
		"{\"id\": \"e2\", \"detail-type\": \"Recovery Point State "
		"Change\", \"source\": \"aws.backup\", \"resources\": [\"%s\"],"
		" \"detail\": {\"backupVaultName\": \"prod-vault\", "
		"\"resourceType\": \"EBS\", \"status\": \"COMPLETED\"}}",
		SNAP_ARN);
	struct orch_aws_event e1, e2, e3;

	(void)state;
	assert_int_equal(parse(a, &e1), ORCH_AWS_EVENT_ACCEPT);
	assert_int_equal(parse(a, &e2), ORCH_AWS_EVENT_ACCEPT);
	assert_int_equal(parse(b, &e3), ORCH_AWS_EVENT_ACCEPT);
	assert_string_equal(e1.recovery_point_arn, e2.recovery_point_arn);
	assert_string_equal(e1.recovery_point_arn, e3.recovery_point_arn);
	orch_aws_event_release(&e1);
	orch_aws_event_release(&e2);
	orch_aws_event_release(&e3);
	free(a);
	free(b);
}

/*
 * Whatever a queue holds, the parser answers: every byte of a good event
 * replaced, truncated at every length. No crash (the sanitizer builds
 * catch reads out of bounds), a verdict, and an ACCEPT only with an ARN.
 */
static void test_mangled(void **state)
{
	char *good = job_event("prod-vault", "COMPLETED", "EBS", SNAP_ARN);
	static const char subst[] = "\"{}[]:,\\0a \x01\xff";
	size_t n = strlen(good), accepted = 0;
	char *buf = cm_xmalloc(n + 1);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof(subst) - 1; k++) {
			struct orch_aws_event ev;
			enum orch_aws_verdict v;

			memcpy(buf, good, n + 1);
			buf[i] = subst[k];
			v = orch_aws_event_parse(buf, n, &filter, &ev);
			assert_true(v == ORCH_AWS_EVENT_ACCEPT ||
				    v == ORCH_AWS_EVENT_IGNORE ||
				    v == ORCH_AWS_EVENT_MALFORMED);
			if (v == ORCH_AWS_EVENT_ACCEPT) {
				assert_non_null(ev.recovery_point_arn);
				assert_memory_equal(ev.recovery_point_arn,
						    "arn:", 4);
				accepted++;
			} else {
				assert_true(ev.why[0] != '\0');
			}
			orch_aws_event_release(&ev);
		}
		{
			struct orch_aws_event ev;

			/* the first i bytes only, not NUL-terminated */
			memcpy(buf, good, i);
			assert_int_not_equal(orch_aws_event_parse(buf, i,
								  &filter,
								  &ev),
					     ORCH_AWS_EVENT_ACCEPT);
			orch_aws_event_release(&ev);
		}
	}
	/* many changes (in values nobody reads) leave it ours */
	assert_true(accepted > 0);
	free(buf);
	free(good);
}

static void test_vault_of_arn(void **state)
{
	(void)state;
	assert_string_equal(orch_aws_vault_of_arn(VAULT_ARN "v1"), "v1");
	assert_null(orch_aws_vault_of_arn(VAULT_ARN));
	assert_null(orch_aws_vault_of_arn("prod-vault"));
	assert_null(orch_aws_vault_of_arn(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_completed),
		cmocka_unit_test(test_rp_state_change),
		cmocka_unit_test(test_sns_wrapped),
		cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_resource_type_filter),
		cmocka_unit_test(test_no_resource_type),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_mangled),
		cmocka_unit_test(test_vault_of_arn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
