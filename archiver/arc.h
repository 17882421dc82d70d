/*
 * arc.h - the archiver's pipeline: source -> codec -> sink, as a chain of
 * filters (libarchive's writer, pigz's reader -> compressors -> writer).
 *
 * A filter receives bytes with write(), may receive long runs of zeros with
 * write_zeros() (raw images: holes and empty regions, which a codec can
 * compress once and repeat), and is finished with close() or, on any
 * failure, abort(). A filter owns the next one in the chain: close() closes
 * it after flushing, abort() aborts it, free() frees it. Bytes passed to
 * write() are borrowed for the duration of the call only.
 *
 * Threads: a chain is driven by one thread (the source). A filter may run
 * workers inside (the parallel gzip codec, zstd's), but its ops are called
 * from that one thread and its output reaches the next filter in order from
 * that same thread, inside write()/close() calls.
 *
 * Errors: 0 or a negative errno, the message in `err`. After a failure the
 * driver calls abort() then free(); neither may fail.
 */
#ifndef VAULTFS_ARC_H
#define VAULTFS_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct arc_filter;

struct arc_filter_ops {
	const char *name;
	int (*write)(struct arc_filter *f, const void *p, size_t n,
		     struct cm_err *err);
	/* Optional: NULL means write() of a zero buffer, chunk by chunk. */
	int (*write_zeros)(struct arc_filter *f, uint64_t n,
			   struct cm_err *err);
	int (*close)(struct arc_filter *f, struct cm_err *err);
	void (*abort)(struct arc_filter *f);
	void (*free)(struct arc_filter *f);
};

struct arc_filter {
	const struct arc_filter_ops *ops;
	struct arc_filter *next;  /* owned; NULL for a sink */
	void *state;              /* the filter's own */
	uint64_t bytes_in;        /* counted by arc_write/arc_write_zeros */
};

/* Dispatch helpers: count bytes in, and fall back for write_zeros. */
int arc_write(struct arc_filter *f, const void *p, size_t n,
	      struct cm_err *err);
int arc_write_zeros(struct arc_filter *f, uint64_t n, struct cm_err *err);
int arc_close(struct arc_filter *f, struct cm_err *err);
void arc_abort(struct arc_filter *f);
/* Frees f and the rest of the chain. NULL is a no-op. */
void arc_free(struct arc_filter *f);

/* Codecs (archiver/codec_*.c). Each takes ownership of `next`. */
enum arc_codec {
	ARC_CODEC_GZIP = 0,
	ARC_CODEC_ZSTD,
	ARC_CODEC_NONE,
};

struct aidx_member;

/*
 * gzip and zstd write independent members, one per slice of `block_size`
 * input bytes (docs/archive-format.md); each member sent to the next
 * filter is reported to on_member (may be NULL), on the driving thread, in
 * order: the archive's index is built from them.
 */
struct arc_codec_opts {
	enum arc_codec codec;
	int level;          /* -1: codec default (gzip 6, zstd 3) */
	unsigned threads;   /* 0: number of online CPUs */
	size_t block_size;  /* input bytes per member; 0: 1 MiB */
	void (*on_member)(void *ctx, const struct aidx_member *m);
	void *member_ctx;
};

int arc_codec_parse(const char *name, enum arc_codec *out);
const char *arc_codec_name(enum arc_codec c);     /* "gzip", "zstd", "none" */
const char *arc_codec_suffix(enum arc_codec c);   /* ".gz", ".zst", "" */
/*
 * The levels a codec takes, lo..hi, and its default: gzip 1-9 (6), zstd
 * 1-19 (3; the ultra levels above 19 want hundreds of MiB per thread),
 * none takes no level (0, 0, 0: any level given is an error). The one
 * place the command line and the configuration take their ranges from.
 */
void arc_codec_levels(enum arc_codec c, int *lo, int *hi, int *def);

struct arc_filter *arc_codec_new(const struct arc_codec_opts *opts,
				 struct arc_filter *next, struct cm_err *err);

#endif
