/*
 * aindex.h - the archive index: the object stored beside an archive
 * (backup.tar.gz.index, backup.tar.zst.index, rawbackup.gz.index) that
 * says where every member and every tar entry of the archive is, so that a
 * reader can list a directory, find a file, and fetch only the members
 * that hold it. The byte format is docs/archive-format.md; this header is
 * the C contract of its writer and reader.
 *
 * Members. A member is one independent unit of the stored archive: a gzip
 * member (archiver/member.h) or a zstd frame, each the compression of one
 * slice of the uncompressed stream. Member i covers the uncompressed bytes
 * [uoff, uoff + ulen) and is stored at [coff, coff + clen). Members are in
 * stream order, without gaps: member i + 1 starts where member i ends, in
 * both streams.
 *
 * Entries. One per tar entry (pax 'x' and GNU 'L'/'K' headers belong to
 * the entry they precede). Paths are normalised: no leading "./" or "/",
 * no trailing "/", "." and "./" become "" (the root of the tree). Offsets
 * are in the uncompressed stream: `header_off` is where the entry's FIRST
 * header block starts (its pax or long-name header, if any), `data_off`
 * where its data starts (after the last header block). Reading the tar
 * stream from header_off gives back everything tar knows of the entry
 * (xattrs, ACLs, the sparse map), which the index does not repeat.
 *
 * Order. Entries are stored sorted by (parent directory, name), bytewise,
 * in compressed blocks; a directory table (loaded at open) says which
 * entries, hence which blocks, belong to each directory. So list() of one
 * directory reads one or a few blocks, whatever the size of the tree.
 *
 * Threads: a writer is one thread's. A reader may be used by one thread at
 * a time (its block cache is not locked); open one per thread otherwise.
 * Except the functions that read only what aidx_open loaded (aidx_info,
 * aidx_members, aidx_member_for, aidx_dir_path, aidx_dir_search), which
 * any thread may call alongside the others.
 * Errors: 0 or a negative errno, the message in `err` naming the problem
 * ("index block 12: checksum mismatch").
 */
#ifndef VAULTFS_AINDEX_H
#define VAULTFS_AINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AIDX_SUFFIX ".index"     /* the object's name + this */

enum aidx_kind {
	AIDX_KIND_TAR = 1,       /* members and entries */
	AIDX_KIND_RAW = 2,       /* members only */
};

enum aidx_codec {
	AIDX_CODEC_NONE = 0,     /* no members: one range, the stream */
	AIDX_CODEC_GZIP = 1,
	AIDX_CODEC_ZSTD = 2,
};

struct aidx_member {
	uint64_t coff, clen;     /* stored (compressed) bytes */
	uint64_t uoff, ulen;     /* uncompressed bytes */
};

struct aidx_entry {
	const char *path;        /* normalised, see above; "" the root */
	const char *link;        /* symlink or hard link target; "" none */
	const char *uname;       /* "" when the header has none */
	const char *gname;
	char type;               /* tar typeflag: '0' file ('\0' and '7' are
				    given as '0'), '1' hard link, '2'
				    symlink, '3' char, '4' block, '5' dir,
				    '6' fifo */
	bool sparse;             /* GNU sparse (pax 1.0): the data starts
				    with the sparse map */
	uint32_t mode;           /* the header's mode (permission bits) */
	uint32_t uid, gid;
	uint32_t devmajor, devminor;
	uint64_t size;           /* the file's size (a sparse file's real
				    size) */
	uint64_t stored;         /* data bytes in the tar after the header
				    (before the padding to 512) */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t header_off;     /* first header block, uncompressed */
	uint64_t data_off;       /* first data byte, uncompressed */
};

/* A list of entries; owns their strings. Release with aidx_list_release. */
struct aidx_list {
	struct aidx_entry *v;
	size_t n;
	void *arena;             /* private */
};

void aidx_list_release(struct aidx_list *l);
/* Append a copy of e (its strings copied into the list) to l, which is
 * empty ({0}) or came from this reader; returns the copy. */
struct aidx_entry *aidx_list_add(struct aidx_list *l,
				 const struct aidx_entry *e);

/* ---- writer ------------------------------------------------------------ */

struct aidx_writer;

/*
 * A writer for an archive of `kind` and `codec`. Entries may come in any
 * order (the archiver gives them in tar order); the writer keeps at most
 * about `mem_budget` bytes of them in memory (0: 16 MiB) and spills sorted
 * runs to unlinked temporary files in `tmpdir` (NULL: $TMPDIR, else /tmp)
 * beyond that, so a tree of millions of entries costs bounded memory.
 */
struct aidx_writer *aidx_writer_new(enum aidx_kind kind,
				    enum aidx_codec codec, const char *tmpdir,
				    size_t mem_budget, struct cm_err *err);
/* Members in stream order (the codec's order). */
int aidx_writer_add_member(struct aidx_writer *w,
			   const struct aidx_member *m, struct cm_err *err);
/* Members added so far. */
uint64_t aidx_writer_members(const struct aidx_writer *w);
/* The entry's strings are copied. */
int aidx_writer_add_entry(struct aidx_writer *w, const struct aidx_entry *e,
			  struct cm_err *err);
/*
 * Build the index for an archive of `archive_size` stored bytes holding a
 * stream of `stream_size` bytes. On success *fd is an unlinked temporary
 * file holding the index, positioned at 0 (the caller closes it), and
 * *size its length.
 */
int aidx_writer_finish(struct aidx_writer *w, uint64_t archive_size,
		       uint64_t stream_size, int *fd, uint64_t *size,
		       struct cm_err *err);
void aidx_writer_free(struct aidx_writer *w);

/* ---- reader ------------------------------------------------------------ */

/*
 * Read exactly `len` bytes of the index at `off` into buf: a local file
 * (pread), an S3 ranged GET, ... A short object is an error.
 */
typedef int (*aidx_read_fn)(void *ctx, uint64_t off, void *buf, size_t len,
			    struct cm_err *err);

struct aidx;

struct aidx_info {
	enum aidx_kind kind;
	enum aidx_codec codec;
	uint32_t version;
	uint64_t archive_size;   /* stored bytes of the archive */
	uint64_t stream_size;    /* uncompressed bytes */
	uint64_t members;
	uint64_t entries;
	uint64_t dirs;           /* directories that have entries */
	uint64_t index_size;
};

/*
 * Open an index of `size` bytes read through `read` (ctx borrowed until
 * aidx_close). Reads the header, the member table and the directory table
 * (for 1,000,000 entries: a few hundred KiB), no entry block.
 */
int aidx_open(aidx_read_fn read, void *ctx, uint64_t size, struct aidx **out,
	      struct cm_err *err);
/* A local index file: opens it and reads it with pread. */
int aidx_open_file(const char *path, struct aidx **out, struct cm_err *err);
void aidx_close(struct aidx *x);

const struct aidx_info *aidx_info(const struct aidx *x);
/* The member table, in stream order; borrowed until aidx_close. */
const struct aidx_member *aidx_members(const struct aidx *x, size_t *n);
/* The member holding uncompressed byte `uoff`; -1 past the end. */
int64_t aidx_member_for(const struct aidx *x, uint64_t uoff);

/*
 * The entry at `path` (normalised as above; a leading "./" or "/" and a
 * trailing "/" are accepted) into out (one entry: of a name the tar holds
 * twice, the last, which is what tar -x leaves). -ENOENT when there is
 * none (err set). A raw index has no entries: -ENOENT.
 */
int aidx_lookup(struct aidx *x, const char *path, struct aidx_list *out,
		struct cm_err *err);
/*
 * The entries directly in directory `dir` ("" the root), sorted by name;
 * loads only that directory's blocks. -ENOTDIR when `dir` is an entry but
 * not a directory, -ENOENT when it is none.
 */
int aidx_list_dir(struct aidx *x, const char *dir, struct aidx_list *out,
		  struct cm_err *err);
/*
 * The entry `prefix` and everything below it ("" every entry), in tar
 * order (by header_off). Memory grows with the subtree.
 */
int aidx_walk(struct aidx *x, const char *prefix, struct aidx_list *out,
	      struct cm_err *err);

/*
 * The directory table (directories that have at least one entry, sorted
 * by path, bytewise): the path of directory d < info.dirs, and the first
 * d whose path is >= `path` (info.dirs when none). What a caller needs to
 * find directories that are only implied by deeper paths (a tar of
 * "a/b/c" alone has no entry "a"). Both read only what aidx_open loaded:
 * safe alongside any other call on the same reader.
 */
const char *aidx_dir_path(const struct aidx *x, uint64_t d);
uint64_t aidx_dir_search(const struct aidx *x, const char *path);

/* Normalise a tar name in place as above; returns s. */
char *aidx_normalise(char *s);

#endif
