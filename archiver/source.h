/*
 * source.h - the archiver's sources: what reads a snapshot and drives the
 * filter chain of arc.h.
 *
 * Three ways to read:
 *
 *   tree   a directory walked into one pax tar stream (struct arc_tar):
 *          owners (numeric only), modes, mtimes, symlinks, hard links,
 *          sparse files, xattrs, POSIX ACLs, names of any bytes and length.
 *          Several trees, and raw images, may go into one tar under
 *          prefixes ("p1/", "p2.img"): that is how partitioned disks are
 *          archived.
 *   raw    the bytes of a block device or an image file, read in large
 *          blocks; holes (SEEK_DATA/SEEK_HOLE) and all-zero blocks reach
 *          the chain as arc_write_zeros(), so an empty volume costs little.
 *          The output is exactly the device's bytes.
 *   auto   struct arc_plan: probe a device or image (probe.h), attach images
 *          to read-only loop devices and mount what mounts read-only
 *          (blockdev.h), then archive as a tree, partition by partition, or
 *          raw when nothing mounts. The plan is made before the first byte
 *          is written, so the caller knows the method (and hence the object
 *          name: backup.tar.gz or rawbackup.gz) before it builds the chain.
 *
 * Ownership: a source borrows the chain (`out`) and never closes, aborts or
 * frees it: on success the caller closes it, on failure the caller aborts
 * and frees it. `opts` and `stats` are borrowed for the duration of the call
 * (for arc_tar and arc_plan: until their _free()).
 *
 * Threads: everything here runs on the caller's thread, which is the one
 * thread that drives the chain. The cancel flag may be set from any thread
 * or from a signal handler; the progress callback runs on the caller's
 * thread.
 *
 * Errors: 0 or a negative errno with the reason in `err`. Problems with
 * single entries (an unreadable file, a socket, a partition that will not
 * mount) are not errors: they are recorded in stats and logged with
 * cm_warn(), and the archive goes on.
 *
 * Complete or not. Anything that makes the archive differ from the source
 * as it was when the archive began is recorded through the one door
 * arc_stats_skip(): an entry left out (unopenable, a socket), a read error
 * stored as zeros, a file or directory that changed while it was read, a
 * file that grew or shrank, a partition whose data is not in the archive,
 * a journal that could not be replayed. Any such record makes the archive
 * incomplete (arc_stats_complete() is false, the manifest says
 * "complete": false), and the orchestrator then keeps the snapshot. What
 * differs only in presentation (a filesystem archived raw because it
 * would not mount: every byte is there) is a warning (arc_stats_warn()),
 * not a skip. With stats->strict, the sources stop at the first skip with
 * the error of arc_stats_check().
 */
#ifndef VAULTFS_SOURCE_H
#define VAULTFS_SOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arc.h"
#include "err.h"

struct cm_json;
struct arc_devs;

/* How the source was archived; names the object (tar or raw image). */
enum arc_method {
	ARC_METHOD_TREE = 0,  /* a pax tar */
	ARC_METHOD_RAW,       /* the device bytes */
};

/* What the caller asked for. */
enum arc_mode {
	ARC_MODE_AUTO = 0,
	ARC_MODE_TREE,  /* fail rather than fall back to raw */
	ARC_MODE_RAW,
};

int arc_mode_parse(const char *name, enum arc_mode *out);  /* 0 or -EINVAL */
const char *arc_mode_name(enum arc_mode m);       /* "auto", "tree", "raw" */
const char *arc_method_name(enum arc_method m);   /* "tree", "raw" */

/* --- Statistics: filled by the source, serialised into the manifest. --- */

/* One entry left out of the archive, or stored incomplete. */
struct arc_skip {
	char *path;    /* owned; as it would be named in the archive */
	char *reason;  /* owned; "open: Permission denied", ... */
};

/* What was done with one filesystem or partition. */
enum arc_volume_action {
	ARC_VOL_TREE = 0,  /* mounted read-only and archived as files */
	ARC_VOL_RAW,       /* archived as bytes */
	ARC_VOL_SKIPPED,   /* not archived (an extended-partition container) */
};

struct arc_volume {
	char *name;        /* owned; "p2" or "disk" for a whole device */
	unsigned partno;   /* 0: the whole device */
	uint64_t start;    /* bytes from the start of the device */
	uint64_t size;     /* bytes */
	char *part_type;   /* owned or NULL: GPT type GUID, or MBR "0x83" */
	char *fstype;      /* owned or NULL: "ext4", "xfs", ... */
	char *label;       /* owned or NULL */
	char *uuid;        /* owned or NULL */
	enum arc_volume_action action;
	char *entry;       /* owned or NULL: its place in the tar: "p1/" */
	char *note;        /* owned or NULL: why raw or skipped */
	/* owned or NULL (no journal, or not mounted): "clean", "replayed"
	 * (through a copy-on-write overlay, replay.h), or "not replayed:
	 * WHY" (mounted without replay: the job is incomplete) */
	char *journal;
};

/* Lists are capped so that a pathological tree cannot blow up memory or
 * the manifest; the counters keep counting past the cap. */
#define ARC_STATS_MAX_LIST 1000

struct arc_stats {
	enum arc_method method;
	uint64_t bytes_read;   /* file data (tree) or device bytes (raw) */
	uint64_t bytes_total;  /* 0: unknown; an estimate for trees until
				  the tar is finished, then bytes_read */
	uint64_t bytes_zero;   /* sent as arc_write_zeros: holes, zeros */
	uint64_t files, dirs, symlinks, hardlinks, other;
	char *pttype;          /* owned or NULL: "gpt", "dos" */

	struct arc_skip *skipped;  /* owned, nskipped of them */
	size_t nskipped;
	uint64_t skipped_count;    /* all of them, past the cap too */

	struct arc_volume *volumes;  /* owned, nvolumes of them */
	size_t nvolumes;

	char **warnings;           /* owned, nwarnings of them */
	size_t nwarnings;
	uint64_t warnings_count;

	/* Set by the caller before the source runs: the first skip fails the
	 * archive (arc_stats_check), rather than being recorded and passed. */
	bool strict;

	uint64_t progress_ns;      /* private: the last progress report */
};

void arc_stats_init(struct arc_stats *s);
void arc_stats_release(struct arc_stats *s);
/* Record an item that makes the archive differ from the source (see
 * "Complete or not" above) and log it (cm_warn). Strings are copied. */
void arc_stats_skip(struct arc_stats *s, const char *path, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
/* Whether nothing was skipped: the archive holds the whole source. */
bool arc_stats_complete(const struct arc_stats *s);
/*
 * 0, or, when s->strict and something was skipped, -EIO with the first
 * skipped item and its reason in err. The sources call it after every
 * entry (and arc_run once more before the archive is closed), so that
 * --strict stops at the first item and the upload is aborted.
 */
int arc_stats_check(const struct arc_stats *s, struct cm_err *err);
/*
 * NULL when complete; else what was left out, for a job's reason and the
 * log: "2 items not archived: ./a: read error ...; ./b: changed while it
 * was read" (the first ARC_STATS_SUMMARY_ITEMS items, then "; ..."). The
 * caller frees it.
 */
#define ARC_STATS_SUMMARY_ITEMS 3
char *arc_stats_summary(const struct arc_stats *s);
/* Record a warning and log it (cm_warn). */
void arc_stats_warn(struct arc_stats *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append a zeroed volume (fields owned by the stats) and return it. */
struct arc_volume *arc_stats_add_volume(struct arc_stats *s);
/*
 * Add the stats as members of `obj` (a JSON object the caller owns):
 * complete, method, bytes_*, counts, partition_table, volumes[],
 * skipped_count, skipped[] (every item, up to ARC_STATS_MAX_LIST),
 * warnings[]. Names of any bytes become valid UTF-8: bytes that are not
 * UTF-8 are written as "\xNN" (a literal backslash, x and two hex digits).
 */
void arc_stats_to_json(const struct arc_stats *s, struct cm_json *obj);

/* --- Options shared by all sources. --- */

/* Called on the driving thread now and then (about 5 times a second) and
 * once at the end. `total` is 0 while unknown, and may grow (partitions). */
typedef void (*arc_progress_fn)(void *ctx, uint64_t bytes_read,
				uint64_t total);

struct arc_source_opts {
	arc_progress_fn progress;  /* NULL: none */
	void *progress_ctx;
	/* Nonzero: stop soon with -ECANCELED. Borrowed; atomic_int is
	 * lock-free here, so a signal handler may store to it. */
	const atomic_int *cancel;
	bool one_file_system;  /* tree: do not descend into other mounts */
	bool no_estimate;      /* tree: skip the metadata pre-walk that
				  estimates bytes_total for progress */
	/* auto: loop devices and mounts are tracked here (borrowed), so that
	 * a signal path may release them; NULL: the plan makes its own. */
	struct arc_devs *devs;
	/* auto: a filesystem whose journal needs replaying is mounted over a
	 * copy-on-write overlay (overlay.h) made under `overlay_dir` (NULL:
	 * $TMPDIR, else /tmp) and holding at most `overlay_limit` bytes (0:
	 * ARC_OVERLAY_DEFAULT_LIMIT). */
	const char *overlay_dir;
	uint64_t overlay_limit;
	/* tree: the file the archive is being written into, when it is a
	 * local file (has_exclude): left out of the walk with a warning,
	 * so that archiving a tree into itself does not read its own
	 * growing output */
	bool has_exclude;
	dev_t exclude_dev;
	ino_t exclude_ino;
};

bool arc_source_cancelled(const struct arc_source_opts *opts);

/* --- tar: one pax stream made of trees and raw images. --- */

struct arc_tar;

/* `out`, `opts` (may be NULL) and `stats` are borrowed until arc_tar_free. */
int arc_tar_new(struct arc_filter *out, const struct arc_source_opts *opts,
		struct arc_stats *stats, struct arc_tar **tarp,
		struct cm_err *err);
/*
 * Walk `dir` (not following symlinks) into the tar. Entries are named
 * `prefix` + path relative to dir, the directory itself `prefix` (NULL
 * means "./", as `tar -C dir .` names them). Unreadable entries are
 * skipped and recorded; errors are failures of the chain, of the walk
 * itself, or cancellation.
 */
int arc_tar_add_tree(struct arc_tar *t, const char *dir, const char *prefix,
		     struct cm_err *err);
/* A regular file `name` (mode 0600, owner 0) holding `size` bytes of
 * `fd` from `offset`: a partition that would not mount, say. */
int arc_tar_add_raw(struct arc_tar *t, const char *name, int fd,
		    uint64_t offset, uint64_t size, struct cm_err *err);
/* End of archive and the final padding. Does not close the chain. */
int arc_tar_finish(struct arc_tar *t, struct cm_err *err);
/* NULL is a no-op. Without a successful finish, nothing more is written. */
void arc_tar_free(struct arc_tar *t);

/* One directory as a whole tar: new + add_tree(dir, "./") + finish. */
int arc_source_tree(const char *dir, struct arc_filter *out,
		    const struct arc_source_opts *opts, struct arc_stats *stats,
		    struct cm_err *err);

/* --- raw --- */

/* The whole device or image file at `path`. */
int arc_source_raw(const char *path, struct arc_filter *out,
		   const struct arc_source_opts *opts, struct arc_stats *stats,
		   struct cm_err *err);
/* `size` bytes of `fd` from `offset` (fd borrowed; `name` for messages).
 * Holes are looked for only when fd is a regular file. */
int arc_source_raw_fd(int fd, const char *name, uint64_t offset,
		      uint64_t size, struct arc_filter *out,
		      const struct arc_source_opts *opts,
		      struct arc_stats *stats, struct cm_err *err);

/* --- auto: probe, attach, mount, then archive. --- */

struct arc_plan;

/*
 * Look at `src` and prepare: a directory -> tree; a device or image ->
 * probe; a filesystem is mounted read-only now (a failure falls back to
 * raw with a warning, or fails in ARC_MODE_TREE); a partition table ->
 * tree, each partition mounted in turn during run. Nothing is written.
 * `opts` (may be NULL) and `stats` are borrowed until arc_plan_free.
 */
int arc_plan_new(const char *src, enum arc_mode mode,
		 const struct arc_source_opts *opts, struct arc_stats *stats,
		 struct arc_plan **planp, struct cm_err *err);
/*
 * The same for a source open at `fd` (borrowed: the plan keeps its own
 * duplicate), named `name` in messages: it is never resolved by name
 * again. A directory is walked through /proc/self/fd/N (entries are named
 * as for a path); an image is probed, read and attached through the fd.
 */
int arc_plan_new_fd(int fd, const char *name, enum arc_mode mode,
		    const struct arc_source_opts *opts, struct arc_stats *stats,
		    struct arc_plan **planp, struct cm_err *err);
enum arc_method arc_plan_method(const struct arc_plan *p);
/* Stream the source into `out` (borrowed; not closed). Once only. */
int arc_plan_run(struct arc_plan *p, struct arc_filter *out,
		 struct cm_err *err);
/* Unmounts, detaches, closes. NULL is a no-op. */
void arc_plan_free(struct arc_plan *p);

/* new + run + free; *method (may be NULL) is set once the plan is made. */
int arc_archive_auto(const char *src, enum arc_mode mode,
		     struct arc_filter *out, const struct arc_source_opts *opts,
		     struct arc_stats *stats, enum arc_method *method,
		     struct cm_err *err);

#endif
