/*
 * unpack.h - a stored archive read back fast: ranged reads of the object
 * on N threads, its members decoded on N threads, handed out in order.
 * `vaultfs restore` and the verifier (verify.h) read archives through it.
 *
 * Three pieces:
 *
 *   arc_object   the stored object, read by ranges: a local file (pread)
 *                or an S3 object (ranged GetObject on the client's
 *                connection pool). Thread-safe; counts the bytes it read.
 *   arc_units    where the members are. An archive written in members
 *                (docs/archive-format.md: gzip members carrying their own
 *                size in a 'VF' extra field, zstd frames with a seek
 *                table) is cut without an index: gzip members are walked
 *                by their MSIZE as they arrive, zstd frames from the seek
 *                table at the object's end. Old archives (one gzip member
 *                or one zstd frame for the whole stream) have no units:
 *                they are read sequentially (ARC_CODEC_NONE below, with a
 *                streaming decoder after it).
 *   arc_unpack   the pipeline: a list of byte ranges of the object (the
 *                whole object, or only the members that cover what is
 *                wanted) is fetched in chunks of at most 8 MiB, each by
 *                one worker; the chunks are cut into members in order;
 *                members are decoded by the workers (libdeflate for gzip,
 *                libzstd for zstd, each member's CRC-32 and ISIZE or
 *                checksum and content size checked) and come out of
 *                arc_unpack_next in order, each with its offset in the
 *                uncompressed stream (member.h does the header, the
 *                seek table and the decoding of one member). With
 *                ARC_CODEC_NONE the chunks
 *                themselves come out, in order (an old archive's
 *                compressed bytes, prefetched in parallel).
 *
 * Memory is bounded: at most `window` chunks are fetched or waiting, and
 * at most `window` members are being decoded or waiting to be taken, each
 * at most ARC_UNIT_MAX decoded bytes.
 *
 * Errors name the member and where it is: "gzip member 2 at byte 1048601:
 * CRC mismatch (its data at uncompressed byte 4194304)". Members are
 * numbered from 1 in the order read: for the whole object, their place in
 * it. The first error stops the pipeline; arc_unpack_next returns it.
 *
 * Threads: arc_unpack_next and arc_unpack_free are called from one thread
 * (the consumer); the workers are the unpack's own. `cancel` may be raised
 * from any thread or a signal handler.
 */
#ifndef VAULTFS_UNPACK_H
#define VAULTFS_UNPACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aindex.h"
#include "arc.h"
#include "err.h"
#include "s3.h"

/* The largest member (decoded) or frame accepted: a bound on memory. */
#define ARC_UNIT_MAX (64u << 20)

/* ---- the object -------------------------------------------------------- */

struct arc_object;

/* s3://bucket/key (needs `client`, borrowed until arc_object_free) or a
 * local path. Learns the size (HeadObject, fstat); an S3 object's reads
 * are pinned to the ETag seen then (If-Match through s3_get_object). */
int arc_object_open(const char *url, struct s3_client *client,
		    struct arc_object **out, struct cm_err *err);
void arc_object_free(struct arc_object *o); /* NULL is a no-op */
uint64_t arc_object_size(const struct arc_object *o);
const char *arc_object_url(const struct arc_object *o);
/* Exactly n bytes from off into p; off + n must not pass the end.
 * Thread-safe. Errors do not name the object. */
int arc_object_read(struct arc_object *o, uint64_t off, void *p, size_t n,
		    struct cm_err *err);
/* Stored bytes read so far (all threads). */
uint64_t arc_object_bytes_read(const struct arc_object *o);
/* An S3 object's ETag, every read pinned to it; "" for a file. */
const char *arc_object_etag(const struct arc_object *o);

/* ---- units ------------------------------------------------------------- */

/* One member (gzip) or frame (zstd): aindex.h's, as the index and the
 * zstd seek table give them. */
#define arc_unit aidx_member

/*
 * What the object holds, from its first bytes (and, for zstd, its seek
 * table): *members true when it is written in members. For zstd, *units
 * and *nunits receive the frames (NULL/0 for gzip: walked as it comes),
 * and *data_end where the frames end (the seek table after them); for
 * gzip *data_end is the object's size. A seek table whose frames do not
 * add up to the bytes before it is an error (-EIO).
 */
int arc_units_probe(struct arc_object *o, enum arc_codec codec,
		    bool *members, struct arc_unit **units, size_t *nunits,
		    uint64_t *data_end, struct cm_err *err);

/* ---- the pipeline ------------------------------------------------------ */

/* A range of the stored object to fetch; ranges are read in the order
 * given and must start on a member boundary (any boundary for NONE). */
struct arc_range {
	uint64_t off;
	uint64_t len;
};

struct arc_unpack_opts {
	struct arc_object *obj;    /* borrowed */
	enum arc_codec codec;      /* NONE: the chunks themselves */
	const struct arc_range *ranges; /* copied */
	size_t nranges;
	/* zstd: the frames (copied), to cut the chunks into members; gzip
	 * members are cut by their headers */
	const struct arc_unit *units;
	size_t nunits;
	/* Optional: every chunk of stored bytes, in order (ranges in the
	 * order given, each from its start to its end), on the consumer's
	 * thread inside arc_unpack_next (without the pipeline's lock: the
	 * workers go on meanwhile), before the members cut from it are
	 * handed out: a verifier hashes the stored object here while its
	 * members decode in parallel. p is borrowed for the call; a nonzero
	 * return (with err set) fails the unpack with it. */
	int (*on_chunk)(void *ctx, uint64_t off, const void *p, size_t n,
			struct cm_err *err);
	void *chunk_ctx;
	unsigned threads;          /* 0: online CPUs, at least 2 */
	unsigned window;           /* 0: 2 * threads + 2 */
	const atomic_int *cancel;  /* borrowed; may be NULL */
};

struct arc_unpack;

struct arc_unpack *arc_unpack_new(const struct arc_unpack_opts *o,
				  struct cm_err *err);
/*
 * The next member's decoded bytes, in order: *p (n bytes, borrowed until
 * the next call) from offset *uoff of the uncompressed stream (NONE: of
 * the stored object). 0 with *n == 0 at the end. A negative errno, with
 * err set, on the first failure (the same on every later call).
 */
int arc_unpack_next(struct arc_unpack *u, const void **p, size_t *n,
		    uint64_t *uoff, struct cm_err *err);
/* Members decoded and handed out so far. */
uint64_t arc_unpack_units(const struct arc_unpack *u);
/* The threads of each pool (opts.threads, or the default it stood for). */
unsigned arc_unpack_threads(const struct arc_unpack *u);
/* Where the member arc_unpack_next last handed out is, stored and
 * decoded (the verifier rebuilds the index's member table from them);
 * all zero for ARC_CODEC_NONE or when none is lent. */
void arc_unpack_member(const struct arc_unpack *u, struct arc_unit *m);
/* Stops the workers (what is in flight is dropped) and frees. */
void arc_unpack_free(struct arc_unpack *u);

#endif
