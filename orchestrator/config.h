/*
 * config.h - the orchestrator's configuration: one JSON file, in the spirit
 * of the seed's cdk.json, loaded into a `struct orch_config`.
 *
 * Every key has a default (orch_config_default() is the embedded default:
 * one local vault, a local directory store, the state under /var/lib/vaultfs);
 * a file only overrides what it names. Unknown keys, at any depth, and bad
 * values are errors that name the key path and the problem:
 *
 *   config: compression.level: must be an integer from 1 to 9 for gzip, got 12
 *   config: unknown key "vualts" (did you mean "vaults"?)
 *
 * The reference of every key is docs/config.md; keep the two in step.
 *
 * Ownership: a loaded config owns all its strings and arrays; release it with
 * orch_config_release(). It is immutable once loaded, so any number of
 * threads may read it without a lock.
 */
#ifndef VAULTFS_ORCH_CONFIG_H
#define VAULTFS_ORCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arc.h"
#include "aws.h"
#include "err.h"

#define ORCH_DEFAULT_VAULT_NAME "local"
#define ORCH_DEFAULT_VAULT_PATH "/var/lib/vaultfs/vault"
#define ORCH_DEFAULT_DESTINATION "/var/lib/vaultfs/store"
#define ORCH_DEFAULT_STATE_DIR "/var/lib/vaultfs/state"

/* ebs.method */
enum orch_ebs_method {
	ORCH_EBS_DIRECT = 0, /* the EBS direct APIs (restore_ebs.c) */
	ORCH_EBS_VOLUME,     /* a volume (restore_ebs_volume.c) */
};

/* A key/value pair (tags, the security tag). Both strings owned. */
struct orch_tag {
	char *key;
	char *value;
};

struct cm_json;

#define ORCH_VAULT_LOCAL "local" /* a directory of images and trees */

/*
 * A vault. Its "type" names a provider type (provider.h, providers.c),
 * whose check_config reads every other key at load.
 */
struct orch_vault_config {
	char *name;  /* unique; [A-Za-z0-9._-], not starting with '.' */
	char *type;  /* "local" (the default), "aws-backup", ... */
	char *path;  /* local: the directory, absolute (relative ones are
			resolved at load); other types: NULL */
	struct cm_json *raw; /* owned copy of the vault's object in the
				file; NULL for the embedded default */
};

enum orch_addressing {
	ORCH_ADDRESSING_AUTO = 0, /* path-style when an endpoint is set */
	ORCH_ADDRESSING_PATH,
	ORCH_ADDRESSING_VIRTUAL,
};

enum orch_verify {
	ORCH_VERIFY_ETAG = 0, /* HeadObject: size and ETag */
	ORCH_VERIFY_FULL,     /* also download and check the sha256 */
	ORCH_VERIFY_DECODE,   /* read back, decode, walk, match the manifest
				 (archiver/verify.h); always, whatever this
				 says, when autoDeleteSnapshot is on */
};

struct orch_lifecycle {
	unsigned glacier;      /* days to GLACIER; 0: no such transition */
	unsigned deep_archive; /* days to DEEP_ARCHIVE; 0: none */
	unsigned expiration;   /* days to expiry; 0: never */
};

struct orch_compression {
	enum arc_codec codec;
	int level;        /* resolved: gzip 1-9, zstd 1-19, none 0 */
	unsigned threads; /* 0: one per online CPU */
};

struct orch_config {
	struct orch_vault_config *vaults; /* nvaults entries, owned */
	size_t nvaults;

	/* Where archives go, as written (or resolved, when local). Its URL
	 * kind (url.h) says which destination it is: s3:// an S3 bucket,
	 * a path a local directory laid out like a bucket. Only the
	 * destination (orchestrator/dest.h) acts on the kind; everything
	 * else asks it. */
	char *destination;
	char *bucket;           /* S3: the bucket; local: NULL */
	char *prefix;           /* S3: key prefix without leading or trailing
				 * '/', may be ""; local: "" */
	char *store_dir;        /* local: the absolute directory; S3: NULL */

	char *endpoint;         /* NULL: the AWS endpoint for the region */
	/* "endpoints": service ("ec2", "s3", as aws_service_find knows them)
	 * -> URL, checked; strings owned. Passed to aws_client_opts and
	 * s3_client_opts as they are. */
	struct aws_endpoint *endpoints;
	size_t nendpoints;
	char *region;           /* NULL: AWS_REGION etc., else us-east-1 */
	enum orch_addressing addressing;
	char *expected_bucket_owner; /* 12-digit account id or NULL */

	struct orch_tag *tags;  /* ntags entries, owned */
	size_t ntags;
	bool has_security_tag;
	struct orch_tag security_tag; /* meaningful if has_security_tag */

	bool auto_delete_snapshot;
	bool auto_start;
	struct orch_lifecycle lifecycle;
	char *storage_class;    /* always set; default "STANDARD" */
	char *sse;              /* NULL, "AES256" or "aws:kms" */
	char *kms_key_id;       /* NULL or a key id/ARN (implies aws:kms) */
	struct orch_compression compression;
	unsigned jobs;          /* recovery points archived at once, >= 1 */
	unsigned uploads;       /* parts in flight per job, >= 1 */
	uint64_t part_size;     /* bytes; 0: automatic */
	uint64_t overlay_limit; /* bytes a journal replay may write; 0: the
				   archiver's default (overlay.h) */
	char *state_dir;        /* absolute */
	char *metrics_file;     /* metricsFile: absolute, or NULL (none) */
	enum orch_verify verify;
	unsigned max_attempts;  /* tries per job, >= 1 */
	char *on_failure;       /* NULL or a shell command */
	unsigned on_failure_timeout_seconds; /* then its process group is
						killed; default 300 */
	unsigned rescan_seconds; /* periodic vault rescan; 0: inotify only */
	unsigned keep_days;     /* journal.keepDays: finished jobs older than
				   this fold into the index */
	uint64_t view_memory_limit; /* view.memoryLimit: bytes of read-ahead
				     * and part buffers of `vaultfs mount` */
	/* "ebs" (docs/aws.md): how EBS snapshots are read: with the EBS
	 * direct APIs (method "direct", the default) or restored to a volume
	 * attached to this instance ("volume") */
	enum orch_ebs_method ebs_method;
	unsigned ebs_concurrency;   /* ebs.concurrency: blocks in flight */
	uint64_t ebs_cache_size;    /* ebs.cacheSize: bytes of blocks kept
				       (at least 2 per reader) */
	/* "rds" and "dynamodb" (docs/config.md): how RDS/Aurora snapshots
	 * and DynamoDB tables are exported (provider.h, "Exports"); NULL:
	 * not set. Checked when an export starts: the job fails naming a
	 * missing key */
	char *rds_iam_role_arn;     /* rds.iamRoleArn: required for RDS */
	char *rds_kms_key_id;       /* rds.kmsKeyId: required for RDS */
	char **rds_export_only;     /* rds.exportOnly: n strings, owned */
	size_t rds_nexport_only;
	char *ddb_export_format;    /* dynamodb.exportFormat: always set,
				       "DYNAMODB_JSON" or "ION" */
	char *ddb_sse_algorithm;    /* dynamodb.s3SseAlgorithm: "AES256",
				       "KMS" or NULL */
	char *ddb_sse_kms_key_id;   /* dynamodb.s3SseKmsKeyId */
	char *ebs_volume_type;      /* ebs.volumeType: "gp3" */
	unsigned ebs_iops;          /* ebs.iops; 0: the type's default */
	unsigned ebs_throughput;    /* ebs.throughput MiB/s; 0: default */
	char *ebs_device_root;      /* ebs.deviceRoot: "/dev"; another
				       root only for tests */
	unsigned ebs_device_timeout_seconds; /* ebs.deviceTimeoutSeconds:
						how long an attached volume
						may take to show up */
};

#define ORCH_EBS_CONCURRENCY 32
#define ORCH_EBS_VOLUME_TYPE "gp3"
#define ORCH_EBS_DEVICE_ROOT "/dev"
#define ORCH_EBS_DEVICE_TIMEOUT_S 120
#define ORCH_EBS_CACHE_SIZE (64ull << 20)

#define ORCH_VIEW_MEMORY_LIMIT (256ull << 20)
#define ORCH_VIEW_MEMORY_MIN   (16ull << 20)
#define ORCH_VIEW_MEMORY_MAX   (1ull << 40)

/*
 * The embedded default: vault "local" at ORCH_DEFAULT_VAULT_PATH,
 * destination ORCH_DEFAULT_DESTINATION, state in ORCH_DEFAULT_STATE_DIR.
 * No path is checked (the orchestrator creates the default directories).
 * Release with orch_config_release().
 */
void orch_config_default(struct orch_config *cfg);

/*
 * Load a JSON file over the defaults. Relative paths in it (vault paths, a
 * local destination, stateDir) are taken relative to the file's directory.
 * Vault paths must exist and be directories. On failure *cfg is left
 * released (nothing to free) and err says "config: KEY: problem".
 */
int orch_config_load(const char *path, struct orch_config *cfg,
		     struct cm_err *err);

/* The same from text; relative paths are taken from base_dir (NULL: the
 * current directory). */
int orch_config_parse(const char *text, size_t len, const char *base_dir,
		      struct orch_config *cfg, struct cm_err *err);

/* Free everything the config owns; the struct is zeroed. */
void orch_config_release(struct orch_config *cfg);

/*
 * Helpers for a vault type's check_config (provider.h), so that its
 * errors read like the rest: "config: vaults[1].path: missing ...".
 * `where` is the object's key path ("vaults[1]").
 */
/* Every member of obj is in `known` (NULL-terminated) and appears once. */
int orch_config_check_keys(const struct cm_json *obj, const char *where,
			   const char *const *known, struct cm_err *err);
/* obj.key as a string into *dst (replacing it; absent: left as is).
 * *present (may be NULL) says whether the key was there. */
int orch_config_get_str(const struct cm_json *obj, const char *where,
			const char *key, char **dst, bool *present,
			struct cm_err *err);
/* obj.key as an integer from lo to hi (absent: left as is). */
int orch_config_get_uint(const struct cm_json *obj, const char *where,
			 const char *key, unsigned lo, unsigned hi,
			 unsigned *dst, struct cm_err *err);
/* -EINVAL with "config: WHERE.KEY: <message>". */
int orch_config_bad(struct cm_err *err, const char *where, const char *key,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* path made absolute from base_dir and lexically normalised; freed by
 * the caller. */
char *orch_config_abs_path(const char *base_dir, const char *path);

/* The vault named `name`, or NULL. Borrowed from cfg. */
const struct orch_vault_config *orch_config_vault(const struct orch_config *cfg,
						  const char *name);

/*
 * "64MiB", "8M", "1 GiB", "5242880": a byte count with an optional binary
 * suffix (K, KB, KiB, M, ..., T; all powers of 1024, case-insensitive).
 * -EINVAL on anything else or on overflow.
 */
int orch_parse_size(const char *s, uint64_t *out);

#endif
