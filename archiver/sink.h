/*
 * sink.h - where an archive stream ends, and the filter that measures it.
 *
 * arc_hash_new: a pass-through filter that counts the bytes leaving the
 *   codec and computes their sha256: the manifest's "sha256 of the object
 *   as stored". Read the result with arc_hash_result() after close.
 * arc_sink_file_new: a local file written as PATH.partial, fsynced and
 *   renamed over PATH on close (a crash never leaves a truncated archive
 *   under the final name); abort unlinks the partial file. "-" is stdout.
 * arc_sink_s3_new: a streaming multipart upload (core/s3_upload.h); abort
 *   aborts the upload, so no half-open upload is left behind.
 */
#ifndef VAULTFS_SINK_H
#define VAULTFS_SINK_H

#include <stdint.h>
#include <sys/stat.h>

#include "arc.h"
#include "crypto.h"

struct s3_client;
struct s3_upload_opts;
struct s3_upload_result;

struct arc_hash_result {
	uint64_t bytes;
	char sha256_hex[CM_SHA256_HEX_LEN + 1];
};

struct arc_filter *arc_hash_new(struct arc_filter *next);
/* Valid after a successful arc_close of the chain. */
void arc_hash_result(const struct arc_filter *hash,
		     struct arc_hash_result *out);

struct arc_filter *arc_sink_file_new(const char *path, struct cm_err *err);
/* The file a file sink writes (PATH.partial, or what stdout is): fstat of
 * it, so that a tree walk can leave it out of the archive it is making.
 * 0 or -errno. */
int arc_sink_file_stat(const struct arc_filter *sink, struct stat *st);

/* `client` is borrowed and must outlive the filter. On success the ETag
 * and size of the stored object are readable with arc_sink_s3_result. */
struct arc_filter *arc_sink_s3_new(struct s3_client *client,
				   const char *bucket, const char *key,
				   const struct s3_upload_opts *opts,
				   struct cm_err *err);
void arc_sink_s3_result(const struct arc_filter *sink,
			struct s3_upload_result *out);
/* Bytes the server has acknowledged; any thread may ask. */
uint64_t arc_sink_s3_bytes_done(const struct arc_filter *sink);

#endif
