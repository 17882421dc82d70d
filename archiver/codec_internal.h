/*
 * codec_internal.h - what codec.c dispatches to: one constructor per codec
 * file (codec_gzip.c on libdeflate, codec_zstd.c on libzstd; `none` lives
 * in codec.c), and the slice engine both are built on (codec_slice.c). Not
 * for use outside archiver/: callers go through arc_codec_new() in arc.h.
 *
 * Each constructor gets options already resolved by codec.c (threads >= 1,
 * level and block size as given, -1 / 0 still meaning "default") and takes
 * ownership of `next` whatever happens: on failure it has been freed.
 */
#ifndef VAULTFS_CODEC_INTERNAL_H
#define VAULTFS_CODEC_INTERNAL_H

#include "aindex.h"
#include "arc.h"
#include "member.h"

struct arc_filter *arc_gzip_new(const struct arc_codec_opts *opts,
				struct arc_filter *next, struct cm_err *err);
struct arc_filter *arc_zstd_new(const struct arc_codec_opts *opts,
				struct arc_filter *next, struct cm_err *err);

/*
 * How one slice becomes one member, for codec_slice.c. A context is one
 * worker's; compress() is called on any worker thread with its own
 * context and writes the whole member (header and trailer too) of the
 * slice at stream offset `uoff` into out (cap bytes, at least bound()).
 * relabel() (may be NULL) rewrites a member made for another offset
 * (cached zero slices); finish() (may be NULL) writes what follows the
 * last member (zstd's seek table) to `next`, on the driving thread.
 */
struct arc_slice_ops {
	const char *name;
	void *(*ctx_new)(int level, size_t slice, struct cm_err *err);
	void (*ctx_free)(void *ctx);
	size_t (*bound)(void *ctx, size_t slice);
	int (*compress)(void *ctx, const void *in, size_t len, uint64_t uoff,
			void *out, size_t cap, size_t *out_len, char *msg,
			size_t msg_len);
	void (*relabel)(void *member, size_t len, uint64_t uoff);
	int (*finish)(const struct aidx_member *m, size_t n,
		      struct arc_filter *next, struct cm_err *err);
};

/* Takes ownership of `next` whatever happens. */
struct arc_filter *arc_slice_codec_new(const struct arc_slice_ops *ops,
				       const struct arc_codec_opts *opts,
				       int level, struct arc_filter *next,
				       struct cm_err *err);
/* Full zero slices sent from the cache (tests, logs). */
uint64_t arc_slice_codec_zero_hits(const struct arc_filter *f);

/* Little-endian stores, for the codecs' headers and tables. */
static inline void arc_put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void arc_put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

#endif
