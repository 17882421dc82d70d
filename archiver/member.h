/*
 * member.h - the independent members of an archive (docs/archive-format.md):
 * one gzip member or one zstd frame per slice of the uncompressed stream.
 * The codecs (codec_gzip.c, codec_zstd.c) write them; the verifier, the
 * restorer and the view read them, one member at a time, on any thread.
 *
 * gzip member header (28 bytes, all ours carry it):
 *   1f 8b 08 04 | MTIME 00 00 00 00 | XFL | OS 03 | XLEN 10 00 |
 *   'V' 'F' | LEN 0c 00 | MSIZE u32 LE | UOFF u64 LE
 * MSIZE is the whole member (header through trailer); UOFF where its data
 * starts in the uncompressed stream. A member without the subfield (an
 * archive written before, or by another tool) is still gzip, read by a
 * streaming inflater only.
 *
 * zstd: frames with their content size, then a seek table (zstd's contrib
 * seekable format): a skippable frame, magic 0x184D2A5E, of entries
 * {compressed size u32 LE, decompressed size u32 LE}, then the footer
 * {number of frames u32 LE, descriptor u8 (0: no checksums), magic
 * 0x8F92EAB1 u32 LE}.
 */
#ifndef VAULTFS_MEMBER_H
#define VAULTFS_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aindex.h"
#include "arc.h"
#include "err.h"

#define ARC_SLICE_DEFAULT (1024 * 1024)   /* input bytes per member */
#define ARC_SLICE_MIN (64 * 1024)
#define ARC_SLICE_MAX (64 * 1024 * 1024)

#define ARC_GZ_HEADER 28          /* our member header, with VF */
#define ARC_GZ_TRAILER 8          /* CRC-32, ISIZE */

#define ARC_ZS_SEEK_MAGIC 0x184D2A5Eu
#define ARC_ZS_SEEK_FOOTER_MAGIC 0x8F92EAB1u
#define ARC_ZS_SEEK_FOOTER 9      /* frames u32, descriptor u8, magic u32 */

/*
 * Parse the start of a gzip member (at least ARC_GZ_HEADER bytes at p,
 * fewer only at the end of the object). 1 with *msize and *uoff set when it
 * is one of ours (carries the VF subfield), 0 when it is a gzip member
 * without it, -EIO (err set) when it is not a gzip member.
 */
int arc_gz_member_parse(const void *p, size_t n, uint32_t *msize,
			uint64_t *uoff, struct cm_err *err);

/*
 * Decode one whole member (gzip: header, deflate data, trailer; zstd: one
 * frame) of `in_len` bytes into out, which has room for `out_cap` bytes;
 * *out_len is its length. The gzip CRC-32 and ISIZE, the zstd content
 * checksum when the frame has one, are checked. Errors say what is wrong
 * ("CRC mismatch", "ISIZE mismatch ...", "checksum mismatch") without
 * naming the member: the caller knows which it is. Thread-safe: no shared
 * state (the decompressor is allocated per call).
 */
int arc_member_decode(enum arc_codec c, const void *in, size_t in_len,
		      void *out, size_t out_cap, size_t *out_len,
		      struct cm_err *err);

/*
 * The zstd seek table at the end of an object: `tail` holds its last
 * `tail_len` bytes (at least ARC_ZS_SEEK_FOOTER; the whole table to
 * succeed). Returns the number of frames, with *table_len the table's size
 * (skippable frame header included); frames into `m` (room for `max`,
 * coff/uoff computed from 0), or -EIO (err set) when there is no table,
 * -EAGAIN when tail is too short (*table_len says how much is needed).
 */
int64_t arc_zs_seek_parse(const void *tail, size_t tail_len,
			  struct aidx_member *m, size_t max,
			  size_t *table_len, struct cm_err *err);

#endif
