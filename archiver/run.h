/*
 * run.h - one archive, start to finish: the unit of work that both
 * `vaultfs archive` and the orchestrator's jobs run.
 *
 *   plan (probe, attach, mount)          source.h
 *     -> codec (gzip | zstd | none)      arc.h
 *     -> hash (sha256, bytes out)        sink.h
 *     -> sink (S3 upload | file | stdout)
 *   then manifest.json beside the object.
 *
 * The destination is checked before the source is touched (a missing
 * bucket fails at once). An archive that left something out succeeds,
 * with res->stats saying what (arc_stats_complete(), the manifest's
 * "complete" and "skipped"); with opts->strict it fails instead. On any failure, or when `cancel` is raised, the
 * upload is aborted (or the partial file removed) and every mount and loop
 * device is released before arc_run returns.
 *
 * Object names follow the seed: a DEST ending in '/' (or an existing local
 * directory) receives backup.tar.gz or rawbackup.gz (.zst for zstd,
 * backup.tar / rawbackup.img for none) and manifest.json; a DEST naming an
 * object gets its manifest as DEST.manifest.json; "-" writes the archive to
 * stdout and a manifest only where `manifest` says. Beside the object (not
 * for stdout) goes its index, OBJECT.index (docs/archive-format.md), stored
 * after the archive through the same kind of sink and named in the
 * manifest with its size and sha256 ("indexed": true). The index writer
 * spills to overlay_dir (else $TMPDIR) when the tree is large.
 *
 * Threads: arc_run runs on the caller's thread (plus the codec's and the
 * uploader's workers). `cancel` may be raised from any thread or a signal
 * handler; the callbacks run on the caller's thread.
 */
#ifndef VAULTFS_RUN_H
#define VAULTFS_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arc.h"
#include "blockdev.h"
#include "crypto.h"
#include "err.h"
#include "s3.h"
#include "s3_upload.h"
#include "source.h"
#include "verify.h"

struct arc_run_opts {
	const char *src;          /* the source's path; with has_src_fd only
				     its name (messages, the manifest) */
	/* has_src_fd: read the source through src_fd (a directory, regular
	 * file or block device, open read-only; borrowed until arc_run
	 * returns), never through its name (see arc_plan_new_fd) */
	int src_fd;
	bool has_src_fd;
	enum arc_mode mode;
	struct arc_codec_opts codec;
	const char *dest;         /* s3://bucket/prefix/, s3://b/key, path, - */
	const char *manifest;     /* NULL: beside the object (see above) */
	struct s3_client *client; /* borrowed; needed for s3:// places */
	/* on_upload_id: for the journal; cancel (usually `cancel` below):
	 * the object's parts on the wire stop too (not the index's, which
	 * goes once the object is made) */
	struct s3_upload_opts upload;
	const atomic_int *cancel;      /* borrowed; may be NULL */
	arc_progress_fn progress;      /* bytes read of the source */
	void *progress_ctx;
	/* Called once the object's place is known, before any byte goes
	 * out. May be NULL. url is borrowed for the call. */
	void (*on_object)(void *ctx, const char *url, enum arc_method m);
	void *object_ctx;
	/* The index's upload (S3), for the journal as the object's is: the
	 * object is complete by then, and a crash inside the index's upload
	 * must not leave it open. on_index (object_ctx) is told the index's
	 * URL before it is created, and may refuse (the index is then not
	 * stored and arc_run fails); on_index_upload_id (upload.ctx) its
	 * multipart upload's id, as upload.on_upload_id is the object's.
	 * Both may be NULL. */
	int (*on_index)(void *ctx, const char *url, struct cm_err *err);
	int (*on_index_upload_id)(void *ctx, const char *upload_id,
				  struct cm_err *err);
	arc_resource_fn on_resource;   /* loop devices and mounts (journal) */
	void *resource_ctx;
	/* Fail (upload aborted, partial file removed) at the first item that
	 * would make the archive incomplete (source.h, "Complete or not"),
	 * instead of recording it in the manifest. */
	bool strict;
	/* journal replay: see struct arc_source_opts (source.h) */
	const char *overlay_dir;       /* NULL: $TMPDIR, else /tmp */
	uint64_t overlay_limit;        /* 0: the default */
	/* A local object or manifest that already exists is an error
	 * (EEXIST) instead of being replaced: `vaultfs archive` without
	 * --force. */
	bool no_clobber;
};

struct arc_run_result {
	enum arc_method method;
	char *object_url;     /* owned: s3://bucket/key or a path */
	char *manifest_url;   /* owned or NULL */
	uint64_t bytes_written;
	char sha256_hex[CM_SHA256_HEX_LEN + 1];
	char etag[S3_ETAG_MAX];  /* S3 only */
	unsigned parts;          /* S3 only: 0 for a single PutObject */
	struct arc_stats stats;  /* owned */
	/* what the uncompressed stream holds (verify.h's counter): the
	 * manifest's "tar" (entries, bytes, data_bytes) or "raw" (bytes) */
	struct arc_counts counts;
	/* the index beside the object (aindex.h), stored after it; NULL
	 * for stdout */
	char *index_url;         /* owned */
	uint64_t index_size;
	char index_sha256_hex[CM_SHA256_HEX_LEN + 1];
	uint64_t members;        /* gzip members or zstd frames */
};

/* `res` is always initialised and must be released, success or not. */
int arc_run(const struct arc_run_opts *o, struct arc_run_result *res,
	    struct cm_err *err);
void arc_run_result_release(struct arc_run_result *res);

/* The seed's object name for a method and codec: "backup.tar.gz", ... */
char *arc_object_name(enum arc_method m, enum arc_codec c);
/* The level a codec runs at when opts->level is -1. */
int arc_codec_effective_level(const struct arc_codec_opts *c);

#endif
