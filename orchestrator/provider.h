/*
 * provider.h - vault providers: everything the engine and the view know
 * of a vault goes through these calls. A provider lists a vault's
 * recovery points (scan, inspect, describe), watches it for new ones,
 * turns one into something the archiver can read (restore), and deletes
 * the snapshot once its archive is verified.
 *
 * One provider type per vault type, registered in ONE table
 * (providers.c): adding a vault type is one new file that defines a
 * `struct orch_provider_type` and its ops, plus one line there
 * (docs/design.md, "Adding a vault type"). The local one
 * (provider_local.c) serves directories of image files and trees: the
 * archiver reads them directly (it attaches images to read-only loop
 * devices itself and reports them to the job's journal through arc_run's
 * hooks), so restoring opens the recovery point once (checking that it
 * is still the one that was queued, rp_identity.h) and hands the
 * descriptor to the archiver; release closes what it kept. Others fit
 * the same calls:
 *
 *   AWS EBS      restore (direct, restore_ebs.c): the snapshot read with
 *                the EBS direct APIs, served as a file by a private FUSE
 *                mount -> "STATE/ebs/snap-...-XXXXXX/disk.img"; release:
 *                unmount; resources: the mount ("ebs-mount").
 *                (volume, restore_ebs_volume.c): CreateVolume, attach,
 *                the NVMe device by volume id -> "/dev/nvme2n1";
 *                release: detach, delete; resources: the volume
 *                ("ebs-volume"). open_image: the direct reader
 *                alone, for the view's disk.img
 *   RDS/Aurora,  not restored: exported (below, "Exports"):
 *   DynamoDB     StartExportTask / ExportTableToPointInTime, followed to
 *                its end -> an S3 prefix that is already the archive
 *                (export_aws.c)
 *   anything not restorable yet: restore returns ORCH_RESTORE_WAITING
 *
 * Exports. Some services write a recovery point's data to S3 themselves
 * (an RDS or Aurora snapshot export in Parquet, a DynamoDB table export):
 * nothing is restored, nothing goes through the archiver. For such a
 * recovery point ops->export starts the service's export into the job's
 * folder of the destination (the seed's key layout, dest.h) or follows the
 * one an earlier run started, until the service reports it complete; the
 * job is `exporting` meanwhile. ops->export_verify then checks the export
 * by its own manifests, and the engine writes manifest.json beside them
 * and deletes the snapshot under the same rules as for an archive. The
 * rules an exporter keeps:
 *   - never started twice: the task's name is derived from the job id
 *     and recorded (x->record) BEFORE the start call where the service
 *     lets the caller name it (RDS's ExportTaskIdentifier: after a crash,
 *     DescribeExportTasks by that name finds the task if it started);
 *     where it does not, an idempotency token derived from the job id
 *     makes a repeated call answer the same export, and what the service
 *     names it is recorded right after (DynamoDB's ClientToken, ExportArn)
 *   - an export is not a resource (struct orch_res_journal): a run cut
 *     off by a crash follows it again, it never cancels it
 *   - x->stop(): ORCH_EXPORT_DETACH (vaultfs is stopping) stops following
 *     and leaves the export running; ORCH_EXPORT_CANCEL (the user's
 *     cancel) asks the service to cancel and follows until it says so.
 *     A service that cannot cancel says why once through
 *     x->uncancellable(), and the engine refuses the user's cancel with
 *     EINVAL and that reason
 *   - the service's failure ends the job with the service's reason
 *
 * Resources. Every resource a provider creates goes through the journal
 * hooks it is given (struct orch_res_journal) BEFORE it is created, and
 * is marked created and released as it goes, so that the engine finds
 * and releases it after a crash. A provider's own resources have a kind
 * name of its own ("ebs-volume") and their ids as a JSON object
 * (orch_res_ids.json); after a crash the engine hands them to the job's
 * vault's provider's release_stale().
 *
 * A recovery point is a struct orch_recovery_point (rp.h).
 *
 * Threads: a provider is created once per vault per process (the engine
 * and the view each make their own) and then used from any number of
 * threads at once: scan, inspect, restore, check, release,
 * delete_snapshot, describe and release_stale must be thread-safe. A
 * watch (watch_new ... watch_free) is driven by ONE thread, its owner,
 * which calls watch_fd/watch_timeout/watch_poll and receives the
 * callbacks on that thread. Strings handed in are borrowed for the call.
 */
#ifndef VAULTFS_ORCH_PROVIDER_H
#define VAULTFS_ORCH_PROVIDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "journal.h"
#include "source.h"
#include "rp.h"

struct cm_json;
struct s3_client;

/*
 * How a provider records its resources: the job's journal (each call saves
 * the job, see orch_journal_res_add and friends). add must succeed before
 * the resource is created.
 */
struct orch_res_journal {
	int (*add)(void *ctx, const char *kind,
		   const struct orch_res_ids *ids, size_t *idx,
		   struct cm_err *err);
	int (*created)(void *ctx, size_t idx,
		       const struct orch_res_ids *learned, struct cm_err *err);
	int (*released)(void *ctx, size_t idx, struct cm_err *err);
	void *ctx;
	/* the job's id, or NULL: what a provider names the resources it
	 * makes for the job by (an EC2 ClientToken, a tag) */
	const char *job_id;
};

/* What restore() made readable. */
struct orch_restored {
	char *path;         /* owned: a block device, image or directory */
	int fd;             /* owned: it, open read-only, or -1 (then the
			       archiver opens path); the archiver reads
			       through it and never resolves path again */
	enum arc_mode mode; /* how to archive it (auto for local) */
	/* owned, NULL or a JSON object: what the provider knows of the
	 * source (an EBS snapshot's block size, volume size and block
	 * count), recorded as the manifest's "source" */
	struct cm_json *manifest;
	/* NULL, or a count the provider keeps while the archiver reads: an
	 * EBS snapshot's blocks fetched so far, of blocks_total written;
	 * the job's progress carries both (status: "blocks: N of M
	 * fetched") */
	const _Atomic uint64_t *blocks_fetched;
	uint64_t blocks_total;
	void *priv;         /* the provider's, for release() */
};

/*
 * A recovery point's bytes opened for reading as one image, without
 * restoring it (open_image): the view's disk.img. `read` fills all n
 * bytes at off (off + n <= size) or returns -errno; it may be called from
 * several threads at once and may block on the network. `close` frees
 * the image. Memory is bounded by the provider (an EBS snapshot: its
 * block cache, ebs.cacheSize).
 */
struct orch_image {
	uint64_t size;
	int (*read)(struct orch_image *im, void *buf, size_t n, uint64_t off);
	void (*close)(struct orch_image *im);
};

/* What an export reports while it runs (borrowed for the call). */
struct orch_export_progress {
	const char *status;  /* the service's: "IN_PROGRESS" */
	int percent;         /* 0-100, or -1: not known */
	const char *detail;  /* for people: "18.3 GB extracted", or NULL */
};

enum orch_export_stop {
	ORCH_EXPORT_GO = 0,   /* go on */
	ORCH_EXPORT_DETACH,   /* stop following; the export goes on */
	ORCH_EXPORT_CANCEL,   /* cancel the export */
};

/* One export, between the engine and an exporter (see "Exports"). */
struct orch_export {
	/* in */
	const char *job_id;
	const char *bucket;      /* the destination's bucket */
	const char *prefix;      /* the job's folder key, ending in '/' */
	const char *task;        /* recorded by an earlier run, or NULL */
	struct s3_client *s3;    /* the destination's, for export_verify */
	unsigned poll_ms;        /* the first wait between polls; it grows
				    to ORCH_EXPORT_POLL_MAX_MS */
	/* Record `task` in the job durably: started false before the
	 * service is asked to start it, true once it answered or was found
	 * started (called before following: the job is `exporting` from
	 * the first call on). 0: go on; otherwise do not start. */
	int (*record)(void *ctx, const char *task, bool started,
		      struct cm_err *err);
	void (*progress)(void *ctx, const struct orch_export_progress *p);
	void (*uncancellable)(void *ctx, const char *why);
	enum orch_export_stop (*stop)(void *ctx);
	void *ctx;
	/* out */
	char *url;               /* owned: export: "s3://bucket/key/" where
				    its files are */
	uint64_t bytes;          /* export_verify: bytes of its files */
	struct cm_json *facts;   /* owned: export_verify: an object for
				    manifest.json's "export" (task, counts,
				    sizes, times) */
};

#define ORCH_EXPORT_POLL_MS 15000       /* the first wait: 15 s */
#define ORCH_EXPORT_POLL_MAX_MS 300000  /* growing to 5 min */

/* export() returns this (> 0) for a recovery point it does not export:
 * the engine restores it as usual. */
#define ORCH_EXPORT_NONE 2

/* Free what an export's out fields hold. */
void orch_export_release(struct orch_export *x);

/*
 * restore() returns this (> 0) when no restorer handles the recovery point
 * yet (an EBS snapshot before its restorer exists): err says why ("no
 * provider for EBS yet"), nothing is held, and the job waits (state
 * `waiting`, its attempts not counted) to be tried again at the next
 * start, `run --retry-failed` or `touch export`.
 */
#define ORCH_RESTORE_WAITING 1

struct orch_provider;
struct orch_watch; /* the provider's */

/* What a watch reports, on its owner's thread (see watch_poll). */
struct orch_watch_cb {
	/* rp is complete and should be archived. Return 0 once the engine
	 * has recorded it durably (a job in the journal, or an existing job
	 * for the same recovery point found): only then may the provider
	 * acknowledge the event behind it (delete an SQS message). <0: not
	 * recorded; the provider must report it again later. NULL: the
	 * owner only lists (the view). */
	int (*ready)(void *ctx, const struct orch_recovery_point *rp,
		     struct cm_err *err);
	/* The vault's listing may have changed (the view rescans). NULL:
	 * not wanted. */
	void (*changed)(void *ctx);
	void *ctx;
};

struct orch_watch_opts {
	unsigned quiet_ms;  /* local: completeness quiet period; 0: the
			       default (ORCH_VAULT_QUIET_MS) */
	unsigned rescan_ms; /* local: full rescan period (0: events only);
			       others: poll period override (0: their own
			       default) */
};

struct orch_provider_ops {
	const char *name; /* the vault type: "local" */
	/* Every recovery point of the vault now (complete or not). */
	int (*scan)(struct orch_provider *p, struct orch_rp_list *out,
		    struct cm_err *err);
	/* The same for a listing (the view, every few seconds): only vault,
	 * name, path, type and mtime need be filled, as cheaply as the
	 * provider can (local: no tree walk, no sidecar). NULL: scan. */
	int (*list)(struct orch_provider *p, struct orch_rp_list *out,
		    struct cm_err *err);
	/* One recovery point by name, freshly read; -ENOENT: gone. */
	int (*inspect)(struct orch_provider *p, const char *name,
		       struct orch_recovery_point *out, struct cm_err *err);
	/* rp (from scan or inspect) is not complete yet (local: a process
	 * has one of its files open for writing): a scan or an export
	 * leaves it for later. NULL: always complete. */
	bool (*busy)(struct orch_provider *p,
		     const struct orch_recovery_point *rp);
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
	/* Exports (see above). export: start or follow rp's export until the
	 * service reports it complete (0, x->url set), or ORCH_EXPORT_NONE.
	 * -ECANCELED: stopped (x->stop). Other errors: failed, err says why
	 * (the service's reason). NULL: the provider exports nothing. */
	int (*export)(struct orch_provider *p,
		      const struct orch_recovery_point *rp,
		      struct orch_export *x, struct cm_err *err);
	/* The completed export x->task at x->url is whole, by its own
	 * manifests: x->bytes and x->facts set. -EIO naming what is
	 * missing or wrong. */
	int (*export_verify)(struct orch_provider *p,
			     const struct orch_recovery_point *rp,
			     struct orch_export *x, struct cm_err *err);
	/* Open rp's bytes as one image (see struct orch_image), nothing
	 * restored, nothing journaled: an EBS snapshot read through the
	 * EBS direct APIs. -ENOTSUP: not for rp's type. NULL: the provider
	 * offers none (a local vault's images are files already). */
	int (*open_image)(struct orch_provider *p,
			  const struct orch_recovery_point *rp,
			  struct orch_image **out, struct cm_err *err);
	/* After a crash: release a resource of a kind only this provider
	 * knows (res->kind is its own name, res->ids its ids). 0: gone now.
	 * NULL: it has none. */
	int (*release_stale)(struct orch_provider *p,
			     const struct orch_resource *res,
			     struct cm_err *err);

	/*
	 * Watching. watch_new starts watching (recovery points already there
	 * are candidates like new ones; cb is copied). The owner then loops:
	 * poll() watch_fd for POLLIN (-1: no descriptor) with watch_timeout
	 * (ms until watch_poll is due; -1: only when the fd is readable),
	 * and calls watch_poll, which processes what is pending and calls
	 * cb->ready / cb->changed from the calling thread. watch_poll
	 * returns -errno when the vault is unusable (the owner logs it, frees
	 * the watch and tries again later). A provider that blocks (SQS long
	 * polling) does so in a thread of its own and wakes the owner
	 * through its fd (an eventfd). watch_new NULL: the vault is not
	 * watched (the engine only scans; the view rescans periodically).
	 */
	int (*watch_new)(struct orch_provider *p,
			 const struct orch_watch_opts *o,
			 const struct orch_watch_cb *cb,
			 struct orch_watch **out, struct cm_err *err);
	int (*watch_fd)(struct orch_watch *w);
	int (*watch_timeout)(struct orch_watch *w);
	int (*watch_poll)(struct orch_watch *w, struct cm_err *err);
	void (*watch_free)(struct orch_watch *w); /* NULL: no-op */

	void (*free)(struct orch_provider *p);
};

struct orch_provider {
	const struct orch_provider_ops *ops;
	const struct orch_config *cfg;         /* borrowed */
	const struct orch_vault_config *vault; /* borrowed, in cfg */
	void *priv;                            /* the provider's */
};

/*
 * A vault type: one entry of the table in providers.c.
 */
struct orch_provider_type {
	const char *type; /* the config's vault "type": "local" */
	/*
	 * Check the vault's JSON object from the config file at load.
	 * Every key other than "name" and "type" is the type's: unknown keys
	 * (orch_config_check_keys, with "name" and "type" in the list) and
	 * bad values are errors naming "WHERE.key" like the rest of config.c
	 * (the helpers in config.h). `where` is "vaults[N]", base_dir the
	 * directory relative paths start from; `out` is the vault being
	 * built (name and type set, raw not yet): the check may fill the
	 * fields it owns (the local type: path).
	 */
	int (*check_config)(const struct cm_json *vault, const char *where,
			    const char *base_dir,
			    struct orch_vault_config *out, struct cm_err *err);
	/* The provider for `vault` (of cfg, which outlives it; its raw
	 * JSON was checked by check_config). */
	int (*create)(const struct orch_config *cfg,
		      const struct orch_vault_config *vault,
		      struct orch_provider **out, struct cm_err *err);
};

/* The type named `type`, or NULL. */
const struct orch_provider_type *orch_provider_type_find(const char *type);
/* The known type names for messages: "\"local\", \"aws-backup\"". */
void orch_provider_type_names(char *buf, size_t n);

/*
 * The provider for `vault` (a vault of cfg, which must outlive it), made
 * by its type's create(). Free with orch_provider_free().
 */
int orch_provider_new(const struct orch_config *cfg,
		      const struct orch_vault_config *vault,
		      struct orch_provider **out, struct cm_err *err);
void orch_provider_free(struct orch_provider *p); /* NULL is a no-op */

/* The vault types (one line each in providers.c's table). */
int orch_local_check_config(const struct cm_json *vault, const char *where,
			    const char *base_dir,
			    struct orch_vault_config *out, struct cm_err *err);
int orch_provider_local_new(const struct orch_config *cfg,
			    const struct orch_vault_config *vault,
			    struct orch_provider **out, struct cm_err *err);
/*
 * What every recovery point shows in info.json, into `out` (an object):
 * vault, name, type, path, resourceId, created, size, modified (when
 * known), tags, error (when
 * set) and every member of rp->extra. A provider's describe adds its own.
 */
void orch_rp_describe(const struct orch_recovery_point *rp,
		      struct cm_json *out);

/* provider_aws_backup.c */
int orch_aws_backup_check_config(const struct cm_json *vault,
				 const char *where, const char *base_dir,
				 struct orch_vault_config *out,
				 struct cm_err *err);
int orch_provider_aws_backup_new(const struct orch_config *cfg,
				 const struct orch_vault_config *vault,
				 struct orch_provider **out,
				 struct cm_err *err);

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

#endif
