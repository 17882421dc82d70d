/*
 * rp.h - a recovery point, whatever vault it comes from.
 *
 * Providers (provider.h) make these: the local one from the entries of a
 * vault directory (vault_local.h), others from their service's listing
 * (an AWS Backup vault's recovery points, say). The engine, the journal,
 * the index and the view only read the fields below; what only one
 * provider knows goes into `extra`.
 *
 * Names. `name` is unique within its vault and is ONE file name in the
 * view: no '/', not "." or "..", no NUL, 1 to 255 bytes
 * (orch_rp_name_valid). Anything else is allowed, ':' included (names
 * derived from ARNs). `path` is the provider's own id of the recovery
 * point (a local path, a recovery point ARN): it may hold '/' and ':'
 * and is never split by the engine.
 *
 * Types are an open set of names: the macros below are the ones known so
 * far, and a provider may report another.
 *
 * Ownership: every pointer is owned by the struct; orch_rp_release frees
 * them, orch_rp_copy makes a deep copy. No locks: a recovery point is
 * used by one thread at a time, or copied.
 */
#ifndef VAULTFS_ORCH_RP_H
#define VAULTFS_ORCH_RP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "rp_identity.h"

struct cm_json;

#define ORCH_RP_IMAGE    "image"        /* a regular file: a disk image */
#define ORCH_RP_TREE     "tree"         /* a directory tree */
#define ORCH_RP_EBS      "ebs-snapshot"
#define ORCH_RP_RDS      "rds-snapshot"
#define ORCH_RP_AURORA   "aurora-cluster-snapshot"
#define ORCH_RP_DYNAMODB "dynamodb-backup"

#define ORCH_RP_NAME_MAX 255

struct orch_recovery_point {
	char *vault;         /* the vault's name */
	char *name;          /* unique in the vault; one file name (above) */
	char *path;          /* the provider's id: local path, or an ARN */
	char *type;          /* ORCH_RP_IMAGE, ... or a provider's own */
	uint64_t size;       /* bytes (local image: st_size; tree: the sum
				of its files); 0: unknown */
	time_t mtime;        /* last change; 0: unknown */
	char *resource_id;   /* the protected resource (a sidecar's id, a
				resource ARN, or "local:VAULT:NAME") */
	time_t created;      /* creation time of the recovery point */
	struct orch_tag *tags; /* ntags entries */
	size_t ntags;
	char *error;         /* NULL, or why it cannot be archived as it is
				(a local sidecar that does not parse) */
	/* a local recovery point's identity as the scan saw it
	 * (rp_identity.h); zero for other providers */
	struct orch_rp_identity id;
	/* NULL or a JSON object: the provider's own facts (status,
	 * lifecycle, IAM role, the resource's tags ...), shown by describe */
	struct cm_json *extra;
};

/* Free what rp owns; rp is zeroed. */
void orch_rp_release(struct orch_recovery_point *rp);

/* A deep copy (dst is overwritten, not released). */
void orch_rp_copy(struct orch_recovery_point *dst,
		  const struct orch_recovery_point *src);

/* name is usable as a recovery point's name (see above). */
bool orch_rp_name_valid(const char *name);

struct orch_rp_list {
	struct orch_recovery_point *items; /* n entries, owned */
	size_t n;
	size_t cap;
};

/* Move *rp to the end of list (grown as needed); rp is left zeroed. */
void orch_rp_list_take(struct orch_rp_list *list,
		       struct orch_recovery_point *rp);
void orch_rp_list_release(struct orch_rp_list *list);

#endif
