/*
 * codec_internal.h - what codec.c dispatches to: one constructor per codec
 * file (codec_gzip.c for zlib, codec_zstd.c for libzstd; `none` lives in
 * codec.c). Not for use outside archiver/: callers go through
 * arc_codec_new() in arc.h.
 *
 * Each constructor gets options already resolved by codec.c (threads >= 1,
 * level and block size as given, -1 / 0 still meaning "default") and takes
 * ownership of `next` whatever happens: on failure it has been freed.
 */
#ifndef VAULTFS_CODEC_INTERNAL_H
#define VAULTFS_CODEC_INTERNAL_H

#include "arc.h"

struct arc_filter *arc_gzip_new(const struct arc_codec_opts *opts,
				struct arc_filter *next, struct cm_err *err);
struct arc_filter *arc_zstd_new(const struct arc_codec_opts *opts,
				struct arc_filter *next, struct cm_err *err);

#endif
