/*
 * dest.h - destinations: where archives go. One interface, one
 * implementation per kind (dest_local.c: a directory laid out like a
 * bucket; dest_s3.c: an S3 bucket and prefix), chosen once from the
 * configured destination's URL kind (url.h). Nothing outside the
 * destination code asks which kind it is: the engine, the view and the CLI
 * call the operations below, or read the fields every destination sets.
 *
 * A destination owns:
 *
 *   the key layout   a job's folder is orch_key_job_dir() (keys.h) under
 *                    the destination's prefix; url() turns a key into
 *                    what the archiver writes to and messages name
 *   writing          prepare() before the engine's first job, open_dir()
 *                    before an archive is written into a folder, and the
 *                    S3 client (`s3`) the archiver uses for s3:// URLs
 *   the manifest     publish_manifest(): manifest.json beside the archive,
 *                    appearing whole or not at all
 *   verification     verify(): the stored archive against what was
 *                    written; the full decode (archiver/verify.h) reads
 *                    url() through `s3`
 *   leftovers        discard_partial() after a failed run; an S3 upload
 *                    is a journal record (resources.h), released through
 *                    `s3`
 *   browsing         type->kind names the view's store (fs/view_store.h)
 *                    over `bucket` or `dir`; `name` is its folder in the
 *                    view
 *
 * Adding a destination (client-side encryption over another, another
 * object store) is one new dest_*.c defining its struct orch_dest_type,
 * one line in the table of dest.c, its URL kind in url.h, and, to browse
 * it, one line in the table of fs/view_store.c.
 *
 * Many machines may share one destination: keys hold the job id (time and
 * 32 random bits, keys.h), so two engines never write the same key, and
 * nothing here keeps state about the destination's contents between
 * calls.
 *
 * Threads: made once, then used by any number of job threads (and the
 * view's) at once; the operations keep no mutable state. Strings handed in
 * are borrowed for the call.
 */
#ifndef VAULTFS_ORCH_DEST_H
#define VAULTFS_ORCH_DEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "url.h"

struct s3_client;
struct orch_dest;

/* What verify() checks the stored archive against: what the job wrote. */
struct orch_dest_check {
	const char *url;    /* the archive, as the archiver reported it */
	uint64_t size;      /* bytes written */
	const char *etag;   /* the ETag the upload ended with, or NULL */
	const char *sha256; /* hex digest of the bytes written */
	bool full;          /* read the archive back and hash it, and the
			       manifest back too, even where a cheaper
			       check exists */
	const atomic_int *cancel; /* nonzero: stop reading (may be NULL) */
	/* The manifest's claims, read back beside the archive (`where`
	 * names it for messages); called by verify() whenever it reads the
	 * manifest. */
	int (*check_manifest)(void *ctx, const char *text, size_t len,
			      const char *where, struct cm_err *err);
	void *ctx;
	/* out: the archive's bytes were read back and hashed (else only its
	 * size and ETag were compared) */
	bool read_back;
};

struct orch_dest_ops {
	/* Before the engine's first job: what must exist for writing (local:
	 * the store directory). NULL: nothing. */
	int (*prepare)(struct orch_dest *d, struct cm_err *err);
	/* The URL of key: "s3://bucket/key", "/store/key". Caller frees. */
	char *(*url)(const struct orch_dest *d, const char *key);
	/* Before an archive is written into the folder dir_key (ending in
	 * '/'): local creates it durably. NULL: nothing to do. */
	int (*open_dir)(struct orch_dest *d, const char *dir_key,
			struct cm_err *err);
	/* manifest.json into dir_key: replaces any earlier one whole. */
	int (*publish_manifest)(struct orch_dest *d, const char *dir_key,
				const char *text, size_t len,
				struct cm_err *err);
	/* The archive at c->url is stored whole: see orch_dest_check. */
	int (*verify)(struct orch_dest *d, struct orch_dest_check *c,
		      struct cm_err *err);
	/* After a failed run into dir_key: remove what the run left that no
	 * journal record holds (local: NAME.partial files, then the folder
	 * if empty). Never fails (logs what it removed). NULL: nothing. */
	void (*discard_partial)(struct orch_dest *d, const char *dir_key);
	void (*free)(struct orch_dest *d);
};

/* A kind of destination: one per dest_*.c, listed in dest.c's table. */
struct orch_dest_type {
	const char *kind;	 /* "local", "s3" */
	enum cm_url_kind url;	 /* the configured destinations it takes */
	int (*make)(const struct orch_config *cfg, struct orch_dest **out,
		    struct cm_err *err);
	/* The destination for people (status, messages), from cfg alone:
	 * "s3://bucket/prefix", "/store". Caller frees. */
	char *(*describe)(const struct orch_config *cfg);
};

extern const struct orch_dest_type orch_dest_local; /* dest_local.c */
extern const struct orch_dest_type orch_dest_s3;    /* dest_s3.c */

struct orch_dest {
	const struct orch_dest_ops *ops;
	const struct orch_dest_type *type;
	const struct orch_config *cfg; /* borrowed */
	char *name;         /* the view's folder under archive/: the bucket,
			       or the store directory's last component */
	char *where;        /* type->describe(cfg) */
	const char *prefix; /* job keys start with it and '/' ("": at the
			       top); no leading or trailing '/' */
	const char *bucket; /* the bucket of a bucket-backed one, or NULL */
	const char *dir;    /* the directory of a local one, or NULL */
	struct s3_client *s3; /* owned: the client for the archiver's, the
				 verifier's and the view's s3:// URLs and
				 the journal's upload records; NULL when the
				 destination has none */
	void *priv;         /* the implementation's */
};

/*
 * The destination cfg names (cfg must outlive it). Makes no change
 * anywhere (prepare() does); fails only on a bad setting (an S3 client
 * that cannot be made). Free with orch_dest_free().
 */
int orch_dest_new(const struct orch_config *cfg, struct orch_dest **out,
		  struct cm_err *err);
void orch_dest_free(struct orch_dest *d); /* NULL is a no-op */

/* The type of cfg's destination; NULL for none (config.c accepts none
 * such). */
const struct orch_dest_type *orch_dest_type_of(const struct orch_config *cfg);

/* type->describe(cfg) without making the destination ("?" for none).
 * Caller frees. */
char *orch_dest_describe(const struct orch_config *cfg);

/*
 * The folder of a job's archive, as a key ending in '/': the prefix, the
 * resource id, the date of the job id (so that every run of a job writes
 * to the same place; today's date for an id that has none) and the job id
 * (orch_key_job_dir). *out is the caller's to free.
 */
int orch_dest_job_dir(const struct orch_dest *d, const char *resource_id,
		      const char *job_id, char **out, struct cm_err *err);

#endif
