/*
 * s3_upload.h - upload one S3 object in parallel parts with bounded
 * memory: bytes of unknown total length streamed in by writes, or a
 * regular file read in place.
 *
 * Streams: the caller writes bytes in order; they fill part buffers taken
 * from a fixed pool of `concurrency` (at least 2). A full buffer goes to a
 * worker, which hashes it (SHA-256 for the signature, or MD5 for
 * Content-MD5 with unsigned payloads) and uploads it as one part, retrying
 * per the client's policy; the buffer then returns to the pool. When every
 * buffer is filled or in flight, write() blocks: that is the back-pressure,
 * and memory stays at `concurrency` part buffers (32 MiB with the defaults)
 * whatever the object's size.
 *
 * Files (s3_upload_file): nothing is copied. Each part is read by the
 * worker that sends it, twice, with pread: once in 256 KiB pieces to hash
 * it, then again while it goes on the wire (and again on a retry). At most
 * `concurrency` parts are in flight, and memory is a 256 KiB scratch area
 * per buffer of the pool, whatever the file's or the part's size. Part
 * sizes come from the file's size. The file must not change while it is uploaded: a read that
 * ends early, or a size or mtime at the end other than at the start, fails
 * the upload (which is aborted) with a message that names the file.
 *
 * Objects that fit in one part go as a single PutObject when finished, and
 * no multipart upload is ever created for them. Otherwise the upload is
 * created when the second part's first byte arrives (for a file: before
 * its first part), and on_upload_id is told its id before any part is sent
 * (so that a journal can record it and clean up after a crash).
 *
 * Integrity: S3 checks each part against its signed SHA-256 (or its
 * Content-MD5, when the ETag must also equal the MD5 sent); the object's
 * ETag must equal the multipart ETag computed from the parts' ETags (both
 * skipped under SSE-KMS, whose ETags are not MD5s).
 *
 * Orphans: a CreateMultipartUpload whose answer was lost (a reset or a
 * timeout after the server acted) leaves an upload nobody knows the id of;
 * the client's retry then makes a second one. When the caller says the key
 * is its own (opts.key_is_ours: a key derived for one job, which nobody
 * else writes), every upload in progress for exactly that key other than
 * this one is aborted right after the create, and all of them after a
 * failed create. Without it (a key the user chose, which another writer
 * may be using) nothing is aborted: a failed create only logs the uploads
 * in progress for the key, for the user to judge.
 *
 * A lost CompleteMultipartUpload answer: when completing fails with
 * "NoSuchUpload" (an earlier attempt went through, its answer lost) or out
 * of retries, the upload is looked at again. Still there (ListParts): it
 * was not completed, and the failure stands. Gone: the object at the key
 * must be ours, by s3_complete_matches() on HeadObject (and HeadObject
 * ?partNumber=1 for the part count): with MD5 ETags its ETag must be the
 * multipart ETag of our parts; under SSE-KMS, where ETags are not MD5s,
 * its size and its part count must be ours.
 *
 * Failure: any failure (a part out of retries, a fatal answer, an ETag
 * mismatch, the callback refusing, the file changing) makes
 * write()/file()/finish() wait for the
 * parts in flight, abort the multipart upload, and return the first error.
 * The fault site "s3.upload_part" fails a part fatally (see s3.h).
 *
 * Cancel: opts.cancel raised (from any thread or a signal handler) is a
 * failure like those, -ECANCELED: the writer sees it at its next call and
 * between parts, a file's parts and a PutObject see it before they go out,
 * and a part on the wire or in a backoff stops within about a second (the
 * flag rides on its HTTP request, see s3_body). The multipart upload, if
 * one was created, is then aborted: AbortMultipartUpload is never
 * cancelled. s3_upload_id() still names it afterwards.
 *
 * Threads: write/reserve/commit/file/finish/abort/free are called from one
 * thread (the caller's); parts run on the upload's own worker pool.
 */
#ifndef VAULTFS_S3_UPLOAD_H
#define VAULTFS_S3_UPLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "err.h"
#include "s3.h"

/* Part-size growth for unknown sizes: doubles every this many parts. */
#define S3_PART_GROWTH_STEP 900

/*
 * The size of part `part_number` (1-based).
 *
 * base: the configured part size (0: 8 MiB), rounded up to a MiB multiple
 * and kept within [5 MiB, 5 GiB].
 *
 * Known expected_size: P = the smallest MiB multiple >= max(base,
 * ceil(expected_size / 10000)), at most 5 GiB; every part is P. If more
 * data comes than expected, the parts after ceil(expected_size / P) grow
 * as for an unknown size (never below P).
 *
 * Unknown size (0): base << floor((part_number - 1) / 900), at most 5 GiB.
 * Even from base 5 MiB, 10,000 such parts hold more than 9 TiB, so an
 * object up to S3's 5 TiB limit never runs out of part numbers.
 */
uint64_t s3_part_size_for(unsigned part_number, uint64_t expected_size,
			  uint64_t base);

struct s3_upload_opts {
	uint64_t expected_size; /* 0: unknown */
	uint64_t part_size;	/* 0: 8 MiB (see s3_part_size_for) */
	unsigned concurrency;	/* parts in flight; 0: 4 */
	/* Called on the writer's thread once the multipart upload exists and
	 * before any part goes out; non-zero fails the upload (which is then
	 * aborted). upload_id is borrowed for the call. */
	int (*on_upload_id)(void *ctx, const char *upload_id,
			    struct cm_err *err);
	void *ctx;
	/* Memory shared with other users (borrowed; NULL: none): part
	 * buffers are taken from it. A writer's first buffer waits for two
	 * buffers' bytes (part 2 begins while part 1 is held); more buffers,
	 * for parts in flight, are made only while it has room at once,
	 * else the writer waits for its own parts to come back. */
	struct cm_budget *budget;
	/* bytes the caller already took from budget for this upload: the
	 * upload owns them (given back at free) and uses them first */
	uint64_t budget_reserved;
	/* The request that makes the object (PutObject,
	 * CompleteMultipartUpload) carries If-None-Match: *: finish fails
	 * with -EEXIST when the key exists (where the server honours it) */
	bool if_none_match;
	/* The key was made for this upload alone: any other upload in
	 * progress for exactly this key is an orphan of a lost create
	 * answer, and is aborted (see the top of the file). */
	bool key_is_ours;
	/* Borrowed, NULL: none. Non-zero stops the upload (see the top);
	 * the client's own cancel, if any, stays in force too. */
	const atomic_int *cancel;
};

struct s3_upload_result {
	char etag[S3_ETAG_MAX]; /* of the object, without quotes */
	uint64_t size;
	unsigned parts; /* 0: sent as one PutObject */
};

struct s3_upload;

/* Nothing goes on the wire yet. client is borrowed and must outlive the
 * upload; bucket and key are copied. */
struct s3_upload *s3_upload_new(struct s3_client *client, const char *bucket,
				const char *key,
				const struct s3_upload_opts *opts,
				struct cm_err *err);

/* Copy n bytes in; blocks while every part buffer is busy. */
int s3_upload_write(struct s3_upload *u, const void *p, size_t n,
		    struct cm_err *err);

/* Zero-copy writing: *p receives room for *n > 0 bytes inside the current
 * part buffer (blocking like write); fill some, then commit how many
 * (0 is fine). The room is valid until the next call on u. Committing may
 * start the multipart upload, hence may fail. */
int s3_upload_reserve(struct s3_upload *u, void **p, size_t *n,
		      struct cm_err *err);
int s3_upload_commit(struct s3_upload *u, size_t n, struct cm_err *err);

/* Instead of writes: the object is the regular file open on fd, all of it
 * (from offset 0, whatever fd's position). Call it first thing after
 * s3_upload_new(); it sends every part and finishes as s3_upload_finish()
 * does, so the upload is done (or aborted) when it returns. The file's size
 * is the expected size (opts->expected_size is not used). fd is borrowed
 * for the call; name is for messages. result may be NULL. */
int s3_upload_file(struct s3_upload *u, int fd, const char *name,
		   struct s3_upload_result *result, struct cm_err *err);

/* Send what is left, wait for every part, complete and check the ETag.
 * result may be NULL. */
int s3_upload_finish(struct s3_upload *u, struct s3_upload_result *result,
		     struct cm_err *err);

/* Give up: wait for the parts in flight and abort the multipart upload.
 * Idempotent; a no-op after finish. */
void s3_upload_abort(struct s3_upload *u);

/* Aborts first unless finished. NULL is a no-op. */
void s3_upload_free(struct s3_upload *u);

/* Bytes written so far (of a file: handed to parts), and bytes whose parts
 * the server acknowledged (for progress displays; may be read from any
 * thread). */
uint64_t s3_upload_bytes_in(const struct s3_upload *u);
uint64_t s3_upload_bytes_done(const struct s3_upload *u);

/* The multipart upload id, or NULL before one exists. */
const char *s3_upload_id(const struct s3_upload *u);

/* Abort every multipart upload in progress for exactly `key` (listed with
 * the key as prefix, every page; longer keys are left alone) except
 * `keep_id` (NULL: none). Only for a key that is the caller's alone.
 * *aborted (may be NULL) receives how many were aborted; "NoSuchUpload"
 * counts as done. */
int s3_abort_orphans(struct s3_client *c, const char *bucket, const char *key,
		     const char *keep_id, unsigned *aborted,
		     struct cm_err *err);

/* What a completed upload must look like, for reconciling a lost
 * CompleteMultipartUpload answer. */
struct s3_complete_want {
	uint64_t size;	  /* bytes uploaded */
	unsigned parts;	  /* parts completed */
	const char *etag; /* the multipart ETag of the parts' MD5s; NULL when
			   * ETags are not MD5s (SSE-KMS) */
};
/* Is the object seen (HeadObject: size, ETag; parts_count from HeadObject
 * ?partNumber=1, 0 if not sent) the one our complete made? With an ETag
 * wanted: the ETag and the size equal. Without: the size equal, and the
 * part count equal, from parts_count, else from the ETag's "-N" suffix (a
 * hint S3 gives under SSE-KMS too); no part count at all refuses. 0 when
 * it is ours, else -EIO with the reason in err. */
int s3_complete_matches(const struct s3_complete_want *want,
			const struct s3_object_info *seen, struct cm_err *err);

#endif
