/*
 * aws_events.h - AWS Backup events, as an SQS queue receives them from an
 * EventBridge rule (source "aws.backup"), read into what the aws-backup
 * provider needs to decide: archive a recovery point, drop the message, or
 * leave it to the queue's redrive policy.
 *
 * The events, as AWS Backup's EventBridge documentation defines them:
 *
 *   detail-type "Backup Job State Change"      detail.state  "COMPLETED"
 *   detail-type "Recovery Point State Change"  detail.status "COMPLETED"
 *
 * with, in detail: backupVaultName (or backupVaultArn, ending in
 * ":backup-vault:NAME"), resourceType ("EBS", "RDS", "Aurora",
 * "DynamoDB", ...; when absent, the provider's DescribeRecoveryPoint
 * decides), resourceArn, and recoveryPointArn (a Recovery Point
 * State Change may carry the recovery point only as the single entry of
 * the event's "resources"). An EventBridge rule may deliver the event as
 * the message body itself, or wrapped in an SNS notification when the
 * queue is subscribed to a topic ({"Type": "Notification", "Message":
 * "<the event>"}); both are read.
 *
 * Verdicts:
 *   ACCEPT     a COMPLETED recovery point of the vault and of a wanted
 *              resource type: the provider describes it and reports it
 *   IGNORE     well formed, but not ours (another source, detail-type,
 *              vault, state or resource type): deleted, logged at info
 *   MALFORMED  not an event we can read (not JSON, a field missing or of
 *              the wrong type): left in the queue, logged with the message
 *              id, so that the queue's redrive policy moves it aside
 *
 * Pure functions, no state: duplicates parse to the same recovery point,
 * and the engine makes one job of them.
 */
#ifndef VAULTFS_ORCH_AWS_EVENTS_H
#define VAULTFS_ORCH_AWS_EVENTS_H

#include <stddef.h>

#define ORCH_AWS_EVENT_SOURCE "aws.backup"
#define ORCH_AWS_EVENT_JOB "Backup Job State Change"
#define ORCH_AWS_EVENT_RP "Recovery Point State Change"

enum orch_aws_verdict {
	ORCH_AWS_EVENT_ACCEPT = 0,
	ORCH_AWS_EVENT_IGNORE,
	ORCH_AWS_EVENT_MALFORMED,
};

/* What an event is read against: the vault's name and the resource types
 * it archives (AWS Backup's names, "EBS"...). Borrowed. */
struct orch_aws_event_filter {
	const char *vault;
	const char *const *resource_types;
	size_t ntypes;
};

/* An event read. Strings owned (NULL when the event did not carry them);
 * `why` says, for IGNORE and MALFORMED, what decided it. */
struct orch_aws_event {
	char *id;                 /* the EventBridge event id */
	char *detail_type;
	char *vault;
	char *state;
	char *resource_type;
	char *resource_arn;
	char *recovery_point_arn; /* set on ACCEPT */
	char why[256];
};

/* Read one message body (len bytes, not necessarily NUL-terminated). out
 * is overwritten; release it with orch_aws_event_release() whatever the
 * verdict. */
enum orch_aws_verdict orch_aws_event_parse(const char *body, size_t len,
					   const struct orch_aws_event_filter *f,
					   struct orch_aws_event *out);
void orch_aws_event_release(struct orch_aws_event *ev);

/* The vault name of a backup vault ARN ("arn:aws:backup:R:A:backup-vault:
 * NAME"), or NULL when s is not one. Points into s. */
const char *orch_aws_vault_of_arn(const char *s);

#endif
