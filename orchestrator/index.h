/*
 * index.h - finished jobs, compactly: the index file and the table.
 *
 * The journal keeps one file per job (journal.h). A daemon that runs for
 * years must not keep every job it ever ran, neither in memory nor as
 * files, so finished jobs end here.
 *
 * The index file, STATEDIR/jobs.index, JSON Lines, version 1:
 *
 *   {"vaultfsIndex":1}
 *   {"id":"...","vault":"...","recoveryPoint":{...},"state":"succeeded",...}
 *   ... one record per line ...
 *   {"end":N}
 *
 * A record is the job's journal file on one line, without "version" and
 * "resources" (orch_job_record_text(): a finished job holds nothing).
 * The last line counts the records: a file without it (torn), with a
 * count that differs, or with a line that does not parse is refused with
 * an error that names the file and the line; it is never read as empty.
 *
 * The file is only ever replaced whole, the way the journal's files are
 * (struct orch_index_writer: STATEDIR/jobs.index.tmp, fsync, rename over
 * jobs.index, fsync of STATEDIR). A new file begins with the old one's
 * header and records, byte for byte, then the new records: old records
 * keep their offsets, and what a newer vaultfs wrote (a state this one
 * does not know, new identity fields) is carried over untouched.
 *
 * The tail, STATEDIR/jobs.index.tail: every job that finishes is appended
 * there at once (orch_index_append: one record line, fdatasync, and an
 * fsync of STATEDIR when the file is new), so that a start and `vaultfs
 * status` read the index and the tail and never the finished jobs' own
 * files, which stay in jobs/ until journal.keepDays for their logs. Lines
 * only; no header, no count. A last line without its '\n' is an append a
 * crash cut off: it is not a record (its job's file is still in jobs/, and
 * the next start appends it again after cutting the torn line off); any
 * other line that is not a record is refused as in the index. A new index
 * file takes the whole tail after the old records (byte for byte), and
 * only once it is in place is the tail removed, and only then are job
 * files removed: a job's record is in the tail, the index, or (between
 * the rename and the tail's removal) both, where readers take it once.
 *
 * The table (struct orch_index): one small entry per finished job the
 * engine knows, whether its record is in the index file or still in
 * jobs/ID.json: the id, the state (by name: a state this version does not
 * know is kept as a name), where the full record is, the archive's size,
 * and two 128-bit digests (not cryptographic: see index.c) - of the
 * recovery point's identity (vault, path, resource id, size, mtime: what
 * makes a later scan find it archived) and of its vault and name (the
 * view's lookup). About 100 bytes a job; full records are read on demand.
 *
 * Threads: a table has no lock of its own (the engine's ->lock covers
 * it). The file functions touch nothing shared.
 *
 * Fault sites (core/fault.h): index.write (half of a record is written,
 * then EIO), index.fsync, index.rename, index.fsync_dir.
 */
#ifndef VAULTFS_ORCH_INDEX_H
#define VAULTFS_ORCH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "journal.h"
#include "keys.h"

#define ORCH_INDEX_NAME "jobs.index"
#define ORCH_INDEX_VERSION 1
/* Where a record is: an offset in the index file, or this: jobs/ID.json */
#define ORCH_INDEX_IN_JOURNAL UINT64_MAX
#define ORCH_INDEX_TAIL_NAME "jobs.index.tail"
/* or this bit and an offset in the tail */
#define ORCH_INDEX_IN_TAIL (1ULL << 62)
/* A `where` that is an offset in the index file itself. */
#define ORCH_INDEX_IN_FILE(where) (!((where) & ORCH_INDEX_IN_TAIL))

struct cm_json;

/* What the table keeps of a finished job; borrowed strings. */
struct orch_index_rec {
	const char *id;
	const char *vault;
	const char *path;        /* the recovery point's */
	const char *name;        /* its name in the vault; NULL (records of
				    older versions): path's last component */
	const char *resource_id;
	uint64_t size;           /* the recovery point's; 0: unknown */
	int64_t mtime;           /* 0: unknown */
	struct orch_rp_identity file; /* dev and ino count (known or not) */
	const char *state;       /* its name, known to this version or not */
	uint64_t result_size;    /* the archive's */
	time_t ended;            /* its last state change */
};

/* Borrowed from job, valid while it is. */
void orch_index_rec_from_job(const struct orch_job *job,
			     struct orch_index_rec *out);
/* Borrowed from the parsed record. -EINVAL with why set. */
int orch_index_rec_from_json(const struct cm_json *record,
			     struct orch_index_rec *out, char *why,
			     size_t n);

/* ---- the table --------------------------------------------------------- */

struct orch_index;

struct orch_index *orch_index_new(void);
void orch_index_free(struct orch_index *ix); /* NULL is a no-op */

/* Add a finished job (copied); `where` says where its record is. One
 * entry per id: the caller adds an id once. */
void orch_index_add(struct orch_index *ix, const struct orch_index_rec *rec,
		    uint64_t where);
/* Move an entry's record (a compaction that failed: back to the
 * journal). */
void orch_index_set_where(struct orch_index *ix, const char *id,
			  uint64_t where);
/* Say whether the job's own files are (still) in jobs/: only those are
 * due for a fold. orch_index_add takes them to be there when `where` is
 * ORCH_INDEX_IN_JOURNAL, else not. */
void orch_index_set_file(struct orch_index *ix, const char *id, bool file);
/* The tail moved into the index file at base: every entry in the tail
 * now has its record at base plus its offset in the tail. */
void orch_index_tail_moved(struct orch_index *ix, uint64_t base);

struct orch_index_hit {
	char id[ORCH_JOB_ID_SIZE];
	int state;              /* enum orch_job_state, -1: unknown here */
	const char *state_name; /* borrowed from the table */
	uint64_t where;
	uint64_t result_size;
};

/* By job id. The finders take a NULL table (none loaded yet) as empty. */
bool orch_index_find_id(const struct orch_index *ix, const char *id,
			struct orch_index_hit *out);
/* The newest job for this recovery point: vault, path, resource id, size
 * and mtime equal, and the same file (orch_rp_identity_same_file: id may
 * be NULL or not known), as the engine matches the jobs in memory. */
bool orch_index_find_rp(const struct orch_index *ix, const char *vault,
			const char *path, const char *resource_id,
			uint64_t size, int64_t mtime,
			const struct orch_rp_identity *id,
			struct orch_index_hit *out);
/* The newest job for the recovery point `name` of `vault`. */
bool orch_index_find_name(const struct orch_index *ix, const char *vault,
			  const char *name, struct orch_index_hit *out);

/* The ids of the jobs whose files are still in jobs/ and that ended at
 * or before cutoff: what a fold would take. *move (may be NULL): some of
 * them have their record only in the tail or the journal (the fold must
 * write a new index file first). The caller frees *ids. */
size_t orch_index_due(const struct orch_index *ix, time_t cutoff,
		      char (**ids)[ORCH_JOB_ID_SIZE], bool *move);

size_t orch_index_count(const struct orch_index *ix);
/* Jobs by state (added to by_state), of states unknown here (*other),
 * and the archives' bytes of the succeeded ones (*archived). */
void orch_index_counts(const struct orch_index *ix,
		       size_t by_state[ORCH_JOB_NSTATES], size_t *other,
		       uint64_t *archived);

/* ---- the file ---------------------------------------------------------- */

/* Where a file's records end, and how many there are; the same of the
 * tail. */
struct orch_index_pos {
	uint64_t end;  /* offset of the "end" line; 0: no file */
	size_t count;
	uint64_t tail_end;  /* bytes of whole lines in the tail */
	size_t tail_count;
	bool tail_torn;     /* bytes after tail_end: a cut-off append */
	size_t tail_dups;   /* orch_index_load: tail records the index file
			       has too (a fold cut off before the tail went) */
};

/* Called for each record (checked: rec is what the table needs of it),
 * with its offset; nonzero stops the read and is returned. A record in
 * the form this version writes comes read (job, by orch_job_scan_record;
 * record NULL), any other parsed (record; job NULL: orch_job_from_record
 * makes one). Both borrowed for the call. */
typedef int (*orch_index_fn)(void *ctx, const struct orch_job *job,
			     const struct cm_json *record,
			     const struct orch_index_rec *rec, uint64_t off);

/*
 * Read STATEDIR/jobs.index, then its tail, each record to fn (a tail
 * record's offset with ORCH_INDEX_IN_TAIL; a job may come twice, from the
 * index and the tail: the caller takes it once). No files: 0 and a zero
 * *pos. *pos (may be NULL) receives what a new file keeps of these.
 * -EINVAL for a torn or corrupt file, with err naming it and the line.
 */
int orch_index_read(const char *state_dir, orch_index_fn fn, void *ctx,
		    struct orch_index_pos *pos, struct cm_err *err);

/* orch_index_read into a table (a job in the index file and the tail is
 * added once, counted in pos->tail_dups). */
int orch_index_load(const char *state_dir, struct orch_index *ix,
		    struct orch_index_pos *pos, struct cm_err *err);
/* The same, and each job taken (once) also to `each` (may be NULL). */
int orch_index_load_each(const char *state_dir, struct orch_index *ix,
			 struct orch_index_pos *pos, orch_index_fn each,
			 void *ctx, struct cm_err *err);

/* The full record at `off` of the index file (free with orch_job_free);
 * not of the tail (whose jobs still have their files). */
int orch_index_load_record(const char *state_dir, uint64_t off,
			   struct orch_job **out, struct cm_err *err);

struct orch_index_writer;

/*
 * Begin a new index file: what `keep` (from orch_index_read) says of the
 * current one, its header and records byte for byte, then the tail's
 * whole lines (at keep->end + their offset in the tail); a zero keep: a
 * new header. Nothing is visible until commit.
 */
int orch_index_writer_open(const char *state_dir,
			   const struct orch_index_pos *keep,
			   struct orch_index_writer **out, struct cm_err *err);
/* Append a finished job's record; *off receives its offset. */
int orch_index_writer_add(struct orch_index_writer *w,
			  const struct orch_job *job, uint64_t *off,
			  struct cm_err *err);
/* Count line, fsync, rename over jobs.index, fsync STATEDIR; *pos (may
 * be NULL) receives what the next new file keeps of this one. Frees w,
 * whatever the outcome (on failure the old file stands). */
int orch_index_writer_commit(struct orch_index_writer *w,
			     struct orch_index_pos *pos, struct cm_err *err);
/* Drop the new file. NULL is a no-op. */
void orch_index_writer_abort(struct orch_index_writer *w);

/*
 * Append a finished job's record to the tail, whose whole lines end at
 * pos->tail_end (bytes past it, a cut-off append, are cut off first), and
 * make it durable (fdatasync; the directory's fsync when the tail is
 * new). *where receives ORCH_INDEX_IN_TAIL | its offset; pos is moved on.
 * On failure the tail is cut back to what it was. Fault sites:
 * index.append (half the line is written, then EIO), index.append_sync.
 * One appender at a time, and none while a new index file takes the tail.
 */
#define ORCH_INDEX_NOSYNC 0x1 /* many appends: orch_index_tail_sync after */
int orch_index_append(const char *state_dir, struct orch_index_pos *pos,
		      const struct orch_job *job, unsigned flags,
		      uint64_t *where, struct cm_err *err);
/* fdatasync the tail and fsync STATEDIR (after NOSYNC appends). */
int orch_index_tail_sync(const char *state_dir, struct cm_err *err);
/* Remove the tail (its records are in the index file now) and fsync
 * STATEDIR; pos's tail is zeroed. */
int orch_index_tail_remove(const char *state_dir, struct orch_index_pos *pos,
			   struct cm_err *err);

#endif
