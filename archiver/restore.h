/*
 * restore.h - an archive back on disk: `vaultfs restore`.
 *
 *   object (S3 or local)  -> the parallel member reader (unpack.h)
 *     tree: -> libarchive's tar reader -> libarchive's disk writer, as GNU
 *              tar restores as root: owners (numeric), modes, times,
 *              xattrs, POSIX ACLs, hard links, sparse files, device nodes,
 *              fifos; never outside DEST ("..", absolute names and
 *              symlinked directories refused)
 *     raw:  -> a file (sparse where the image is zeros) or a block device
 *              (refused while it or one of its partitions is mounted, and
 *              opened O_EXCL; zero runs are written with BLKZEROOUT)
 *
 * An archive written in members (docs/archive-format.md) is fetched with
 * parallel ranged reads and decoded on every core; an old single-stream
 * archive (or one made by another tool) is fetched the same way but
 * decoded in one stream, by libarchive's gzip or zstd reader.
 *
 * `paths` selects entries (a file, or a directory and all below it). With
 * an index beside the archive (`index_url`), only the members that hold
 * the selected entries are fetched; without one the whole archive is read
 * and the rest skipped (res->scanned says so).
 *
 * Entries that cannot be restored exactly (an ACL the filesystem refuses,
 * a hard link whose target was not selected, an owner that cannot be set)
 * go to `on_problem` and are counted; with `strict` the first one fails
 * the restore. A raw image is restored whole or the restore fails.
 *
 * Threads: arc_restore runs on the caller's thread plus the reader's
 * workers; callbacks run on the caller's thread. `cancel` may be raised
 * from any thread or a signal handler. A tree restore changes the working
 * directory while it runs (libarchive's disk writer works relative to it,
 * which is how it reaches paths past PATH_MAX) and puts it back.
 */
#ifndef VAULTFS_RESTORE_H
#define VAULTFS_RESTORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arc.h"
#include "err.h"
#include "s3.h"
#include "source.h"

struct arc_restore_opts {
	const char *url;           /* the archive: s3://bucket/key or a path */
	enum arc_method method;    /* tree or raw */
	enum arc_codec codec;
	const char *index_url;     /* NULL: no index */
	const char *dest;          /* a directory (tree); a file or block
				      device (raw) */
	const char *const *paths;  /* entries to restore; NULL: all */
	size_t npaths;
	struct s3_client *client;  /* borrowed; needed for s3:// places */
	unsigned threads;          /* 0: online CPUs */
	bool strict;
	const atomic_int *cancel;  /* borrowed; may be NULL */
	/* Stored bytes fetched so far, of `total`, as the restore goes (on
	 * the caller's thread). May be NULL. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
	/* an entry not restored, or not exactly; path borrowed */
	void (*on_problem)(void *ctx, const char *path, const char *why);
	void *problem_ctx;
};

struct arc_restore_result {
	uint64_t entries;      /* tree: entries restored */
	uint64_t problems;     /* entries not restored, or not exactly */
	uint64_t bytes;        /* uncompressed bytes read from the archive */
	uint64_t fetched;      /* stored bytes fetched */
	uint64_t index_fetched; /* bytes of the index read (--path) */
	uint64_t object_size;  /* the archive's stored size */
	uint64_t units;        /* members decoded in parallel; 0: streamed */
	bool parallel;         /* members: read in parallel */
	bool scanned;          /* --path without an index: the whole read */
};

/*
 * Where an archive is and what it is, from a URL: s3://bucket/key or a
 * local path of the archive, or a job's folder (ending in '/', or a local
 * directory) whose manifest.json names it. The manifest (beside the
 * object as arc_run writes it: FOLDER/manifest.json for the default
 * names, else OBJECT.manifest.json) gives the method, codec and index;
 * without one they come from the name (rawbackup.* or no ".tar": raw;
 * .gz, .zst) and there is no index.
 */
struct arc_restore_target {
	char *url;           /* owned: the archive */
	char *manifest_url;  /* owned or NULL: none found */
	char *index_url;     /* owned or NULL: not indexed */
	enum arc_method method;
	enum arc_codec codec;
};
int arc_restore_locate(const char *src, struct s3_client *client,
		       struct arc_restore_target *t, struct cm_err *err);
void arc_restore_target_release(struct arc_restore_target *t);

/* 0 when everything selected was restored exactly; -EIO (err says how
 * many problems) when some entries were not; another negative errno when
 * the restore stopped. `res` is always set. */
int arc_restore(const struct arc_restore_opts *o,
		struct arc_restore_result *res, struct cm_err *err);

/* Whether a path of the archive ("./a/b", "a/b/") is `sel` or below it
 * ("a", "./a/", "/a"); "" and "." select everything. */
bool arc_path_selected(const char *path, const char *sel);

#endif
