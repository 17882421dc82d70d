/*
 * decode_internal.h - what arc_decoder_new (verify.c) dispatches to: one
 * decoder per codec file, decode_gzip.c for zlib and decode_zstd.c for
 * libzstd (their doors for decompression, as codec_gzip.c and codec_zstd.c
 * are for compression). Not for use outside archiver/.
 *
 * Each constructor takes ownership of `next` whatever happens. `units`
 * points at the decoder's count of members or frames begun, readable after
 * any call (the filter owns it). `hook` hears of every member of ours
 * (gzip with the VF subfield, zstd frames but skippable ones) once it is
 * decoded and checked.
 */
#ifndef VAULTFS_DECODE_INTERNAL_H
#define VAULTFS_DECODE_INTERNAL_H

#include "arc.h"

struct aidx_member;

/* Told of each member as it is decoded (its stored and decoded offsets and
 * lengths); fn may be NULL. Borrowed by the decoder. */
struct arc_member_hook {
	void (*fn)(void *ctx, const struct aidx_member *m);
	void *ctx;
};

struct arc_filter *arc_gunzip_new(struct arc_filter *next,
				  const struct arc_member_hook *hook,
				  const uint64_t **units, struct cm_err *err);
struct arc_filter *arc_unzstd_new(struct arc_filter *next,
				  const struct arc_member_hook *hook,
				  const uint64_t **units, struct cm_err *err);

#endif
