/*
 * provider.h - restore providers: what turns a recovery point of one kind
 * of vault into something the archiver can read, and deletes the snapshot
 * once its archive is verified.
 *
 * One provider per vault type. The local one (provider_local.c) is the
 * only one so far: a local vault's recovery points are image files and
 * directory trees, which the archiver reads directly (it attaches images
 * to read-only loop devices itself and reports them to the job's journal
 * through arc_run's hooks), so restoring opens the recovery point once
 * (checking that it is still the one that was queued, rp_identity.h) and
 * hands the descriptor to the archiver; release closes what it kept.
 * The next ones fit the same calls:
 *
 *   AWS EBS      restore: CreateVolume (gp3) from the snapshot, attach it,
 *                find the NVMe device by volume id -> "/dev/nvme2n1";
 *                release: detach and delete the volume; resources: volume
 *   RDS/Aurora,  restore: StartExportTask / ExportTableToPointInTime and
 *   DynamoDB     poll -> an S3 prefix that is already the archive (the
 *                restored result says "no archiving needed")
 *   temp DB      restore: start a server on the restored data directory
 *                with a random password -> a dump command's output
 *
 * Every resource a provider creates goes through the journal hooks it is
 * given (struct orch_res_journal) BEFORE it is created, and is marked
 * created and released as it goes, so that the engine finds and releases
 * it after a crash. Resource kinds the engine does not know how to release
 * (an EBS volume, say) are released by the provider's release_stale().
 *
 * A recovery point is described by struct orch_recovery_point
 * (vault_local.h): vault, name, path (a file, directory or ARN), type,
 * size, mtime, resource id, creation time, tags, a sidecar error and, for
 * local ones, its identity (rp_identity.h).
 *
 * Threads: a provider is created once per vault and then used from any
 * number of job threads at once; its calls must be thread-safe (the
 * local one keeps no state). Strings handed in are borrowed for the call.
 */
#ifndef VAULTFS_ORCH_PROVIDER_H
#define VAULTFS_ORCH_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "journal.h"
#include "source.h"
#include "vault_local.h"

struct cm_json;

/*
 * How a provider records its resources: the job's journal (each call saves
 * the job, see orch_journal_res_add and friends). add must succeed before
 * the resource is created.
 */
struct orch_res_journal {
	int (*add)(void *ctx, enum orch_res_kind kind,
		   const struct orch_res_ids *ids, size_t *idx,
		   struct cm_err *err);
	int (*created)(void *ctx, size_t idx,
		       const struct orch_res_ids *learned, struct cm_err *err);
	int (*released)(void *ctx, size_t idx, struct cm_err *err);
	void *ctx;
};

/* What restore() made readable. */
struct orch_restored {
	char *path;         /* owned: a block device, image or directory */
	int fd;             /* owned: it, open read-only, or -1 (then the
			       archiver opens path); the archiver reads
			       through it and never resolves path again */
	enum arc_mode mode; /* how to archive it (auto for local) */
	void *priv;         /* the provider's, for release() */
};

struct orch_provider;

struct orch_provider_ops {
	const char *name; /* "local" */
	/* Every recovery point of the vault now (complete or not). */
	int (*scan)(struct orch_provider *p, struct orch_rp_list *out,
		    struct cm_err *err);
	/* One recovery point by name, freshly read; -ENOENT: gone. */
	int (*inspect)(struct orch_provider *p, const char *name,
		       struct orch_recovery_point *out, struct cm_err *err);
	/* Make rp readable; on failure nothing is left held. */
	int (*restore)(struct orch_provider *p,
		       const struct orch_recovery_point *rp,
		       const struct orch_res_journal *rj,
		       struct orch_restored *out, struct cm_err *err);
	/* Right before archiving: what restore() made is still the
	 * recovery point (local: the name still leads to the open file).
	 * NULL: nothing to check. */
	int (*check)(struct orch_provider *p,
		     const struct orch_recovery_point *rp,
		     const struct orch_restored *r, struct cm_err *err);
	/* Give back what restore() made; never fails (logs problems). */
	void (*release)(struct orch_provider *p,
			const struct orch_res_journal *rj,
			struct orch_restored *r);
	/* Delete the snapshot itself. The caller has checked the policy
	 * (autoDeleteSnapshot, verified archive, security tag); rp->id (when
	 * known) is what must be deleted and nothing else. */
	int (*delete_snapshot)(struct orch_provider *p,
			       const struct orch_recovery_point *rp,
			       const struct orch_res_journal *rj,
			       struct cm_err *err);
	/* Add what is known of rp to `out` (a JSON object): type, resource
	 * id, created, size, tags ... for info.json in the view. */
	int (*describe)(struct orch_provider *p,
			const struct orch_recovery_point *rp,
			struct cm_json *out, struct cm_err *err);
	/* After a crash: release a resource of a kind only this provider
	 * knows. NULL: it has none. */
	int (*release_stale)(struct orch_provider *p,
			     const struct orch_resource *res,
			     struct cm_err *err);
	void (*free)(struct orch_provider *p);
};

struct orch_provider {
	const struct orch_provider_ops *ops;
	const struct orch_config *cfg;         /* borrowed */
	const struct orch_vault_config *vault; /* borrowed, in cfg */
	void *priv;                            /* the provider's */
};

/*
 * The provider for `vault` (a vault of cfg, which must outlive it).
 * Free with orch_provider_free().
 */
int orch_provider_new(const struct orch_config *cfg,
		      const struct orch_vault_config *vault,
		      struct orch_provider **out, struct cm_err *err);
void orch_provider_free(struct orch_provider *p); /* NULL is a no-op */

/* The local provider's constructor (provider_local.c). */
int orch_provider_local_new(const struct orch_config *cfg,
			    const struct orch_vault_config *vault,
			    struct orch_provider **out, struct cm_err *err);

/* Release what a struct orch_restored owns (after ops->release). */
void orch_restored_release(struct orch_restored *r);

/*
 * The snapshot may be deleted under the security tag rule: no security tag
 * configured, or rp's tags carry its key with exactly its value. On false,
 * `why` (may be NULL) receives the reason.
 */
bool orch_rp_tag_allows_delete(const struct orch_config *cfg,
			       const struct orch_recovery_point *rp,
			       char *why, size_t whylen);

/* A deep copy of a recovery point (dst is overwritten, not released). */
void orch_rp_copy(struct orch_recovery_point *dst,
		  const struct orch_recovery_point *src);

#endif
