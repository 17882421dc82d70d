/*
 * decode_internal.h - what arc_decoder_new (verify.c) dispatches to: one
 * decoder per codec file, decode_gzip.c for zlib and decode_zstd.c for
 * libzstd (their doors for decompression, as codec_gzip.c and codec_zstd.c
 * are for compression). Not for use outside archiver/.
 *
 * The verifier uses them for archives without members only (older ones,
 * other tools); archives of ours go through the parallel reader (unpack.h).
 *
 * Each constructor takes ownership of `next` whatever happens. `units`
 * points at the decoder's count of members or frames begun, readable after
 * any call (the filter owns it).
 */
#ifndef VAULTFS_DECODE_INTERNAL_H
#define VAULTFS_DECODE_INTERNAL_H

#include "arc.h"

struct arc_filter *arc_gunzip_new(struct arc_filter *next,
				  const uint64_t **units, struct cm_err *err);
struct arc_filter *arc_unzstd_new(struct arc_filter *next,
				  const uint64_t **units, struct cm_err *err);

#endif
