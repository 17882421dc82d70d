/*
 * aws_backup_int.h - what provider_aws_backup.c and aws_backup_watch.c
 * share: the provider's state and its AWS Backup calls. Not for the
 * engine (provider_aws_backup.h is).
 */
#ifndef VAULTFS_ORCH_AWS_BACKUP_INT_H
#define VAULTFS_ORCH_AWS_BACKUP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "aws.h"
#include "provider_aws_backup.h"

#define AWSB_POLL_SECONDS 300
#define AWSB_POLL_SECONDS_MAX 86400

/* One AWS Backup resource type vaultfs knows. */
struct awsb_type {
	const char *aws;     /* AWS Backup's ResourceType: "EBS" */
	const char *rp_type; /* ORCH_RP_EBS */
	const char *what;    /* for messages: "EBS" */
	/* The protected resource's own tags into `tags` (an object). */
	int (*resource_tags)(struct aws_client *c, const char *resource_arn,
			     struct cm_json *tags, struct cm_err *err);
	const struct aws_service *tag_service;
	const struct orch_aws_restorer *restorer; /* NULL: waiting */
};

#define AWSB_NTYPES 4

struct aws_backup {
	const struct orch_config *cfg;         /* borrowed */
	const struct orch_vault_config *vault; /* borrowed */
	char *backup_vault;
	char *region;     /* NULL: resolved by the AWS layer */
	char *queue_url;  /* NULL: no queue */
	unsigned poll_seconds;
	const struct awsb_type *types[AWSB_NTYPES];
	const char *type_names[AWSB_NTYPES]; /* types[i]->aws */
	size_t ntypes;

	/* one credential chain for the clients below (an AssumeRole once,
	 * not once per service); the queue reader has its own, since it
	 * may outlive the provider */
	struct aws_creds_provider *creds;
	struct aws_client *backup;
	struct aws_client *tag_clients[AWSB_NTYPES]; /* by types[i] */

	pthread_mutex_t lock;     /* guards last, last_ns */
	struct orch_rp_list last; /* the last listing: inspect(name) finds
				     the ARN there, list() answers from it */
	uint64_t last_ns;         /* when it was made; 0: never */
};

static inline struct aws_backup *awsb_of(struct orch_provider *p)
{
	return p->priv;
}

/* Every COMPLETED recovery point of a configured type (ListRecovery-
 * PointsByBackupVault, every page), sorted by name; refreshes the name
 * cache. */
int awsb_list(struct aws_backup *ab, struct orch_rp_list *out,
	      struct cm_err *err);

/* The same, from the last listing while it is younger than the poll
 * period (the view asks every few seconds; a new recovery point reaches
 * it through the watch's changed()). */
int awsb_list_cached(struct aws_backup *ab, struct orch_rp_list *out,
		     struct cm_err *err);

/* One recovery point by ARN, described and with its tags. -ENOENT when
 * it is gone, not COMPLETED (-EAGAIN, with the status in err) or not of a
 * configured type (-ENOENT). */
int awsb_inspect_arn(struct aws_backup *ab, const char *arn,
		     struct orch_recovery_point *out, struct cm_err *err);

/* The vault's AWS client of a recovery point type (ORCH_RP_RDS: RDS),
 * or NULL when the vault does not take that type. */
struct aws_client *awsb_client_of(struct aws_backup *ab, const char *rp_type);

/* The snapshot id ("snap-...") of an EBS recovery point, from its ARN
 * (arn:aws:ec2:REGION::snapshot/snap-...) into out, or -EINVAL naming it
 * (restore_ebs.c; both EBS methods). */
int awsb_ebs_snapshot_id(const struct orch_recovery_point *rp, char *out,
			 size_t n, struct cm_err *err);

/* The watch ops (aws_backup_watch.c). */
int awsb_watch_new(struct orch_provider *p, const struct orch_watch_opts *o,
		   const struct orch_watch_cb *cb, struct orch_watch **out,
		   struct cm_err *err);
int awsb_watch_fd(struct orch_watch *w);
int awsb_watch_timeout(struct orch_watch *w);
int awsb_watch_poll(struct orch_watch *w, struct cm_err *err);
void awsb_watch_free(struct orch_watch *w);

#endif
