/*
 * provider_aws_backup.h - the provider of "aws-backup" vaults: the
 * recovery points of one AWS Backup vault.
 *
 * Config (docs/config.md):
 *   {"name": "prod", "type": "aws-backup", "backupVault": "prod-vault",
 *    "region": "us-east-1", "queueUrl": "https://sqs...", "pollSeconds":
 *    300, "resourceTypes": ["EBS", "RDS", "Aurora", "DynamoDB"]}
 *
 * Recovery points. Only those with Status COMPLETED and of a configured
 * resource type exist for vaultfs: the others are not listed, not
 * described and never queued. One is
 *   name         the recovery point ARN's own id ("snap-0abc..." for EBS,
 *                "awsbackup:job-1f..." for RDS, the backup id for
 *                DynamoDB, the UUID of an "arn:aws:backup:...:recovery-
 *                point:UUID"), unique in the vault
 *   path         the recovery point ARN
 *   resource_id  the protected resource's ARN (the archive's key is that
 *                ARN split on ':' into folders, keys.h)
 *   type         ORCH_RP_EBS, _RDS, _AURORA or _DYNAMODB
 *   size, mtime  BackupSizeInBytes, CreationDate (the engine knows a
 *                recovery point by them: they never change, and every
 *                answer carries them; the completion date is in extra)
 *   created      CreationDate
 *   tags         the recovery point's tags (ListTags): the security tag is
 *                looked for there
 *   extra        status, storage class, lifecycle, IAM role, encryption,
 *                resource name, and the resource's own tags (EC2
 *                DescribeTags, RDS ListTagsForResource, DynamoDB
 *                ListTagsOfResource), for info.json
 * A listing (scan, the poll) reads ListRecoveryPointsByBackupVault only;
 * list (the view's, every few seconds) answers from the last listing while
 * it is younger than pollSeconds; inspect (what the engine does before
 * restoring and before deleting, and what the view's info.json shows)
 * adds DescribeRecoveryPoint and the tags.
 *
 * Discovery, both ways and idempotent (the engine makes one job of a
 * recovery point however often it is reported):
 *   - every page of ListRecoveryPointsByBackupVault when the watch starts
 *     and every pollSeconds (a failed listing is logged and retried within
 *     30 s; the watch and its queue reader go on);
 *   - with queueUrl, the SQS queue an EventBridge rule feeds with AWS
 *     Backup's events (aws_events.h), long-polled by a thread of the
 *     watch. A message is deleted only once the engine has the job in its
 *     journal (the watch's ready callback returned 0), or when it is not
 *     ours (logged at info). A malformed one stays, for the queue's redrive
 *     policy, and is logged with its message id.
 *
 * Restoring is per resource type: the table in provider_aws_backup.c maps
 * each AWS Backup resource type to its vaultfs type and its restorer
 * (struct orch_aws_restorer). A type without one yet makes restore()
 * answer ORCH_RESTORE_WAITING, "no provider for EBS yet": the job waits,
 * and a later vaultfs with that restorer takes it. Adding EBS (volume
 * from snapshot, or the EBS direct APIs) or the RDS/Aurora/DynamoDB
 * exports is one new file defining its restorer and one pointer in that
 * table.
 *
 * Deleting: DeleteRecoveryPoint, after the security tag has been checked
 * once more on the recovery point's tags read right then; the recovery
 * point is read back, since the call succeeds and leaves it EXPIRED when
 * the role may not delete the snapshot underneath.
 *
 * Threads: the provider's calls are thread-safe (the AWS clients are; the
 * last listing, which also maps names to ARNs, has a lock). A watch is
 * driven by its owner's thread; its SQS reader is a thread of its own that
 * wakes the owner through the watch's eventfd. A watch without a ready
 * callback (the view) starts no reader: it could not acknowledge.
 */
#ifndef VAULTFS_ORCH_PROVIDER_AWS_BACKUP_H
#define VAULTFS_ORCH_PROVIDER_AWS_BACKUP_H

#include <stdint.h>
#include <time.h>

#include "provider.h"

struct cm_json;

/*
 * A restorer: what makes one resource type's recovery points readable.
 * Its ops are the restore side of struct orch_provider_ops (provider.h):
 * restore (required), check, release and release_stale (may be NULL), for
 * recovery points of its type only, called with the aws-backup provider;
 * `priv` of the restored result is the restorer's own. The other ops are
 * not used.
 */
struct orch_aws_restorer {
	const struct orch_provider_ops *ops;
	/* the journal resource kinds it creates ("ebs-volume"), NULL-ended:
	 * after a crash, release_stale gets those */
	const char *const *kinds;
	/* NULL, or (a type restored more than one way: EBS, ebs.method)
	 * the restorer the config asks for in place of this one ... */
	const struct orch_aws_restorer *(*pick)(const struct orch_config *cfg);
	/* ... and every one pick may answer, NULL-ended: after a crash
	 * their resources are released whatever the config says now */
	const struct orch_aws_restorer *const *methods;
};

/* restore_ebs.c: EBS snapshots read with the EBS direct APIs; it picks
 * the volume method when ebs.method says so */
extern const struct orch_aws_restorer orch_ebs_direct_restorer;
/* restore_ebs_volume.c: EBS snapshots restored to a volume attached to
 * this instance (ebs.method "volume") */
extern const struct orch_aws_restorer orch_ebs_volume_restorer;

/*
 * export_aws.c: RDS/Aurora snapshots and DynamoDB tables exported by
 * their services (provider.h, "Exports"); their ops are export and
 * export_verify only.
 */
extern const struct orch_aws_restorer orch_rds_exporter;
extern const struct orch_aws_restorer orch_ddb_exporter;

/* RDS's ExportTaskIdentifier of a job: "vaultfs-" and the job id lowered,
 * every run of other characters one '-' (1-60 letters, digits, hyphens,
 * a letter first, no "--", no '-' last). -EINVAL when it cannot be. */
int orch_export_task_name(const char *job_id, char *out, size_t n);
/* StartExportTask's parameters (n name/value pairs into *out; free with
 * orch_rds_export_params_free). -EINVAL naming rds.iamRoleArn or
 * rds.kmsKeyId when the config lacks it. */
int orch_rds_export_params(const struct orch_config *cfg, const char *id,
			   const char *source_arn, const char *bucket,
			   const char *prefix, const char ***out, size_t *n,
			   struct cm_err *err);
void orch_rds_export_params_free(const char **pv, size_t n);
/* An RDS export_tables_info file (parsed): every table of its
 * perTableStatus COMPLETE, counted into *ntables; else -EIO naming the
 * table (`where` names the file). */
int orch_rds_tables_check(const struct cm_json *info, const char *where,
			  uint64_t *ntables, struct cm_err *err);
/* One line of a DynamoDB manifest-files.json (borrowed for the call). */
struct orch_ddb_file {
	size_t line;
	const char *key;  /* dataFileS3Key */
	const char *etag; /* or NULL */
	uint64_t items;   /* itemCount */
};
/* fn for every line of manifest-files.json (one JSON object per line;
 * empty lines skipped); -EIO naming the line when one lacks
 * dataFileS3Key or itemCount or is not JSON; fn's error stops it. */
int orch_ddb_files_each(const char *text, size_t len,
			int (*fn)(void *ctx, const struct orch_ddb_file *f,
				  struct cm_err *err),
			void *ctx, struct cm_err *err);
/* ExportTableToPointInTime's body (cm_json_free it). */
struct cm_json *orch_ddb_export_request(const struct orch_config *cfg,
					const char *job_id,
					const char *table_arn, time_t when,
					const char *bucket,
					const char *prefix);

/*
 * The name a recovery point ARN gets in its vault (see above) into out,
 * or -EINVAL when the ARN yields no usable name (a file name: no '/', not
 * "." or "..", 1 to 255 bytes, no control byte).
 */
int orch_aws_rp_name(const char *arn, char *out, size_t n);

#endif
