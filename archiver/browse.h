/*
 * browse.h - an indexed archive opened for browsing: its tree listed from
 * the index (aindex.h) and any file's bytes read through ranged reads of
 * only the members that cover them, with a bounded cache of decoded
 * members. The view's `vaults/<v>/<rp>/files/` and
 * `archive/<store>/<key>.d/` are built on it (fs/view_tree.c).
 *
 * The archive and its index are arc_objects (unpack.h): a local path or
 * s3://bucket/key, each read pinned to the ETag seen at open (an object
 * replaced while browsed fails with -ESTALE, it is not misread).
 *
 * What a read returns is what `tar -x` would have written into the file:
 *   - a regular file: its data (data_off .. data_off + size);
 *   - a GNU sparse file (pax 1.0, aidx_entry.sparse): the sparse map at
 *     the start of its data is parsed once (cached per entry), holes read
 *     as zeros, the size is the real size;
 *   - a hard link ('1'): the data of the entry it links to (looked up by
 *     its link path, through links to links up to 8 deep), whose size
 *     arc_browse_stat reports; a target not in the archive fails the
 *     read with -ENOENT naming it;
 *   - symlinks, directories, devices, fifos have no data (-EINVAL); an
 *     old GNU sparse entry (type 'S', its map in the headers) -ENOTSUP.
 * An uncompressed archive (codec none) is read straight from the object,
 * without the cache.
 *
 * Memory. Decoded members (at most ARC_UNIT_MAX each, usually the
 * archive's 1 MiB slice) are kept in an LRU cache of at most `cache_bytes`
 * (0: 64 MiB), shared by every reader of this archive. When `budget` is
 * given, every cached member's bytes are also taken from it with
 * cm_budget_try; when the budget has no room the least recently used
 * members are dropped first, and a read that still finds no room decodes
 * into a buffer of its own for the call only (never waits, never fails for
 * want of cache). Bytes are given back as members leave the cache and at
 * arc_browse_free. Besides the cache: the stored bytes of each member
 * being fetched (for the fetch only), and per file being read (the last
 * 64) its sparse map, 24 bytes a region.
 *
 * Reads fetch members ahead: a read that ends inside member i also starts
 * fetching member i + 1 when the reader is sequential (the last read of
 * the same entry ended where this one starts; a file's first read at 0
 * counts) and member i + 1 still holds the file's data, so `cat`
 * streams. Two threads of the archive's (started by the first such
 * read) fetch ahead, at most 4 members queued, and only into the cache:
 * when it has no room the hint is dropped, never waited for. A member
 * queued is in the cache already, on its way: a reader that gets there
 * first waits for that fetch.
 *
 * Threads: every function but arc_browse_free may be called from any
 * number of threads at once (the index reader is behind a lock; the
 * cache is locked; fetches and decodes run unlocked, and two readers
 * wanting the same member wait for one fetch of it); arc_browse_free
 * once no call is in flight. Errors: 0 or a negative errno with err
 * naming the archive and the problem ("s3://b/k/backup.tar.gz: member 12
 * (stored bytes ...): CRC mismatch"); err may be NULL. A read that
 * fails returns no bytes.
 */
#ifndef VAULTFS_BROWSE_H
#define VAULTFS_BROWSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aindex.h"
#include "budget.h"
#include "err.h"
#include "s3.h"

struct arc_browse;

struct arc_browse_opts {
	const char *url;           /* the archive (copied) */
	const char *index_url;     /* NULL: url + AIDX_SUFFIX */
	struct s3_client *client;  /* borrowed; needed for s3:// */
	struct cm_budget *budget;  /* borrowed; may be NULL */
	uint64_t cache_bytes;      /* 0: 64 MiB */
};

/*
 * Open the archive and its index (aidx_open: header, member table,
 * directory table; no entry block). -ENOENT with "not indexed" in err when
 * the index object does not exist (an archive from before indexes, or
 * another tool's); -EMEDIUMTYPE when the index is a raw archive's (no
 * tree). The index's recorded archive size must equal the object's size
 * (-ESTALE otherwise: the index belongs to another archive).
 */
int arc_browse_open(const struct arc_browse_opts *o, struct arc_browse **out,
		    struct cm_err *err);
void arc_browse_free(struct arc_browse *b); /* NULL is a no-op */

const struct aidx_info *arc_browse_info(const struct arc_browse *b);

/*
 * The entry at path (aidx_normalise rules; "" the root). A hard link's
 * entry comes back as stored (type '1', link = its target's path) but
 * with size, mode, owner and times of its target, so that stat shows what
 * tar -x makes (its uname and gname stay its own header's, which tar
 * writes from the same inode). The root may have no entry in the archive
 * (a tar of "dir/a" only): it and every other directory that only
 * appears as a parent come back as a directory, mode 0755, uid and gid 0,
 * uname and gname "", with the archive's newest mtime (synthesised, type
 * '5', header_off and data_off UINT64_MAX). That mtime costs one pass
 * over every entry block of the index, once, and only for an archive
 * that leaves directories out (vaultfs's own never do).
 */
int arc_browse_stat(struct arc_browse *b, const char *path,
		    struct aidx_list *out, struct cm_err *err);

/*
 * The entries directly in dir, sorted by name, with the same hard-link
 * and parent-directory rules as arc_browse_stat (a directory only implied
 * by deeper paths is listed too). -ENOTDIR, -ENOENT as aidx_list_dir.
 */
int arc_browse_list(struct arc_browse *b, const char *dir,
		    struct aidx_list *out, struct cm_err *err);

/*
 * Up to len bytes of the file `e` (an entry from arc_browse_stat or
 * arc_browse_list of this archive) at off into buf; fewer only at the
 * end of the file (0 at or past it). Returns the count or a negative
 * errno.
 */
ssize_t arc_browse_read(struct arc_browse *b, const struct aidx_entry *e,
			uint64_t off, void *buf, size_t len,
			struct cm_err *err);

struct arc_browse_stats {
	uint64_t bytes_fetched;   /* stored bytes read, archive + index */
	uint64_t members_decoded; /* by readers and read-ahead */
	/* readers' requests for a member: found cached or on its way
	 * (hits), or fetched by the request (misses); read-ahead counts in
	 * neither */
	uint64_t cache_hits, cache_misses;
	uint64_t cache_bytes;     /* decoded bytes cached now (or reserved
				     for a member on its way) */
};

void arc_browse_stats(struct arc_browse *b, struct arc_browse_stats *out);

#endif
