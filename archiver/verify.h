/*
 * verify.h - proof that a stored archive is whole: read back, decoded end
 * to end, every tar header walked, counted, and matched against what the
 * archiver recorded in the manifest.
 *
 * Three pieces, each a filter of arc.h or built from them:
 *
 *   arc_count_new      counts what a stream holds: for a tree (tar) every
 *                      header is walked (checksums, pax records, sizes,
 *                      the end-of-archive marker and the zero padding
 *                      after it) and entries and data bytes counted; for a
 *                      raw image only the bytes. The archiver puts one in
 *                      front of the codec (its counts go into the
 *                      manifest as "tar" or "raw"); the verifier puts one
 *                      at the end of the decoder, as the last filter.
 *   arc_decoder_new    the codec undone as a stream, for archives without
 *                      members (older ones, other tools): gzip (every
 *                      member, each one's CRC-32 and ISIZE checked), zstd
 *                      (every frame, each one's content checksum required
 *                      and checked), none.
 *   arc_verify         the whole check of one archive, local or in S3:
 *                      the object read by the parallel reader (unpack.h),
 *                      every stored byte to sha256, its members decoded on
 *                      N threads and fed in order to the counter (an
 *                      archive without members: its bytes through a
 *                      streaming decoder to the counter), then size,
 *                      sha256 and counts compared with the manifest, which
 *                      must parse; for an indexed archive, its index
 *                      rebuilt from what was decoded and compared with the
 *                      stored one (aindex.h).
 *
 * Errors name the first bad thing and where it is: "gzip member 3 at byte
 * 1048601: CRC mismatch", "tar entry 1204 'etc/passwd': truncated". Byte
 * offsets count from the start of the stream the piece reads (stored bytes
 * for a decoder, decoded bytes for the counter).
 *
 * Threads: the filters run on the caller's thread. arc_verify reads and
 * decodes on the reader's threads (opts.threads), hashes and counts on the
 * caller's. `cancel` may be raised from any thread or a signal handler.
 */
#ifndef VAULTFS_VERIFY_H
#define VAULTFS_VERIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arc.h"
#include "crypto.h"
#include "err.h"
#include "s3.h"
#include "source.h"

struct cm_json;

/* What a stream holds, as the counter saw it. */
struct arc_counts {
	uint64_t bytes;       /* the uncompressed stream's length */
	uint64_t entries;     /* tar: entries (pax and GNU long-name headers
				 belong to their entry); raw: 0 */
	uint64_t data_bytes;  /* tar: the entries' data, as stored; raw: 0 */
};

/*
 * A counter for a stream of method `m`. With `next` it passes every byte
 * on (write_zeros as write_zeros) and takes ownership of it; with NULL it
 * is the end of a chain. A tar stream that does not parse fails the
 * write or close that shows it.
 */
struct arc_filter *arc_count_new(enum arc_method m, struct arc_filter *next);
/* Valid after a successful arc_close. */
void arc_count_result(const struct arc_filter *count, struct arc_counts *out);

/*
 * Give every tar entry to fn as the counter walks it (see count.c): the
 * header's fields with pax records and GNU long names applied, and the
 * stream offsets of its first header block and of its data. The entry and
 * its strings are borrowed for the call; a non-zero return fails the
 * write that walked it. Set before the first write.
 */
struct aidx_entry;
typedef int (*arc_entry_fn)(void *ctx, const struct aidx_entry *e,
			    struct cm_err *err);
void arc_count_on_entry(struct arc_filter *count, arc_entry_fn fn, void *ctx);
/* The counts as the manifest holds them: "tar": {"entries", "bytes",
 * "data_bytes"} for a tree, "raw": {"bytes"} for a raw image. */
void arc_counts_to_json(enum arc_method m, const struct arc_counts *c,
			struct cm_json *manifest);

/*
 * A decoder for codec `c` that writes the decoded bytes to `next` and
 * takes ownership of it, whatever happens. close() fails on a stream that
 * ends inside a member or frame, or holds none.
 */
struct arc_filter *arc_decoder_new(enum arc_codec c, struct arc_filter *next,
				   struct cm_err *err);
/* Members (gzip) or frames (zstd) seen so far; none: 0. */
uint64_t arc_decoder_units(const struct arc_filter *dec);

struct arc_verify_opts {
	/* s3://bucket/key, a local path, or either ending in '/': a job's
	 * folder, holding backup.* or rawbackup.* and manifest.json. */
	const char *url;
	/* NULL: beside the object, as arc_run names it (run.h): FOLDER/
	 * manifest.json for the seed's names, else OBJECT.manifest.json. */
	const char *manifest;
	struct s3_client *client;  /* borrowed; needed for s3:// places */
	const atomic_int *cancel;  /* borrowed; may be NULL */
	/* Reading and decoding threads (unpack.h); 0: online CPUs, at
	 * least 2. */
	unsigned threads;
	/* Stored bytes read so far, of `total` (0: unknown). May be NULL. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};

struct arc_verify_result {
	char *object_url;     /* owned: the object checked */
	char *manifest_url;   /* owned: the manifest it was checked against */
	char *manifest_text;  /* owned: the manifest as read */
	enum arc_method method;
	enum arc_codec codec;
	uint64_t size;        /* stored bytes */
	char sha256_hex[CM_SHA256_HEX_LEN + 1];
	char etag[S3_ETAG_MAX];  /* S3 only */
	uint64_t units;          /* gzip members or zstd frames */
	/* the threads its members were decoded on; 0: it has no members
	 * (or no codec) and went through one streaming decoder */
	unsigned threads;
	struct arc_counts counts;
	bool indexed;            /* the manifest says so; then checked: */
	char *index_url;         /* owned: OBJECT.index */
	uint64_t index_size;
};

/*
 * Check the archive at o->url. 0 only when it is whole and is what its
 * manifest says; otherwise -EIO (or the failing call's errno) with the
 * first problem in err, without the URL (callers prefix it). `res` is
 * always initialised and must be released.
 */
int arc_verify(const struct arc_verify_opts *o, struct arc_verify_result *res,
	       struct cm_err *err);
void arc_verify_result_release(struct arc_verify_result *res);

/* A local file's bytes into `sink`, 1 MiB at a time; *size (may be NULL)
 * is set from fstat first. Errors do not name the file. */
int arc_read_file(const char *path, s3_sink_fn sink, void *ctx,
		  uint64_t *size, struct cm_err *err);

#endif
