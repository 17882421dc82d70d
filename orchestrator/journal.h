/*
 * journal.h - the crash-safe record of every job.
 *
 * One small JSON file per job, STATEDIR/jobs/<job id>.json, replaced
 * atomically on every save: the new text goes to <job id>.json.tmp, which
 * is fsynced, renamed over the old file, and the directory is fsynced. A
 * crash at any point leaves either the old or the new file whole; only a
 * .tmp can be partial, and the next open removes it. A .json that does not
 * parse (a disk fault, a hand edit) is reported with a warning and moved
 * aside to <name>.corrupt; it never stops the start.
 *
 * A job records its recovery point, its state and the time it entered each
 * state, attempts, progress, result and last error, and every resource it
 * creates (loop device, mount, multipart upload, temporary directory,
 * device node). The
 * rule that makes recovery possible: a resource is added (status
 * "intended") and saved BEFORE it is created, marked "created" with what
 * was learned (the loop device, the upload id) right after, and
 * "released" once gone. After a crash the next start loads every job that
 * is unfinished or still holds resources (orch_journal_load_all) and
 * releases what they list; an "intended" resource may or may not exist and
 * is looked for by what is known (the backing file, the bucket and key).
 *
 * Finished jobs do not stay here for ever: the engine folds those older
 * than journal.keepDays into the index (index.h) and removes their files
 * (orch_journal_forget) once the index holding them is durable.
 *
 * The lock: orch_journal_open() takes flock(LOCK_EX | LOCK_NB) on
 * STATEDIR/lock and writes its pid there; a second vaultfs on the same
 * stateDir is refused with "another vaultfs (pid N) holds STATEDIR/lock".
 * The lock lives as long as the handle (and dies with the process).
 * orch_journal_read() reads the jobs without the lock, for `vaultfs status`.
 *
 * Threads: a `struct orch_journal` is immutable after open and may be used
 * by any number of threads. A `struct orch_job` has no lock: one thread at
 * a time (the worker running the job) changes and saves it; others read
 * the files or a copy. Saves of different jobs may run in parallel.
 *
 * Fault sites (core/fault.h): journal.write (half the text is written,
 * then EIO), journal.fsync, journal.rename, journal.fsync_dir.
 */
#ifndef VAULTFS_ORCH_JOURNAL_H
#define VAULTFS_ORCH_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "keys.h"

struct cm_json;
#include "rp_identity.h"

enum orch_job_state {
	ORCH_JOB_QUEUED = 0,
	ORCH_JOB_RESTORING,
	ORCH_JOB_ARCHIVING,
	ORCH_JOB_VERIFYING,
	ORCH_JOB_CLEANING,
	ORCH_JOB_SUCCEEDED,  /* final */
	ORCH_JOB_FAILED,     /* final */
	ORCH_JOB_CANCELLED,  /* final */
	/* final: archived and verified, but the archive is not the whole
	 * recovery point (result_incomplete says what is missing); the
	 * snapshot is always kept */
	ORCH_JOB_INCOMPLETE,
	/* not final: no restorer handles the recovery point yet
	 * (ORCH_RESTORE_WAITING, provider.h); last_error says why. Tried
	 * again at the next start, `run --retry-failed` or `touch export`;
	 * its attempts are not counted */
	ORCH_JOB_WAITING,
};
#define ORCH_JOB_NSTATES 10

/* "queued", "restoring", ... */
const char *orch_job_state_name(enum orch_job_state s);
int orch_job_state_parse(const char *name, enum orch_job_state *out);
bool orch_job_state_final(enum orch_job_state s);

/*
 * Resource kinds are names. The engine's own (released by resources.h):
 */
#define ORCH_RES_LOOP    "loop"    /* a loop device: device, backing_file */
#define ORCH_RES_MOUNT   "mount"   /* a mount: mount_point, device */
#define ORCH_RES_UPLOAD  "upload"  /* a multipart upload: bucket, key,
				      upload_id */
#define ORCH_RES_TEMPDIR "tempdir" /* a temporary directory: dir */
#define ORCH_RES_NODE    "node"    /* a block device node we made: device
				      (its path), devnum ("major:minor") */
/* Any other name ("ebs-volume") belongs to the provider of the job's
 * vault, which records its ids in `json` and releases it after a crash
 * (provider.h, release_stale). A kind name is 1 to 64 bytes of
 * [a-z0-9-]. */
bool orch_res_kind_engine(const char *kind); /* one of the five above */
bool orch_res_kind_valid(const char *kind);

enum orch_res_status {
	ORCH_RES_INTENDED = 0, /* recorded, creation may not have happened */
	ORCH_RES_CREATED,
	ORCH_RES_RELEASED,
};

const char *orch_res_status_name(enum orch_res_status s); /* "created" */

/* What identifies a resource; borrowed strings, NULL: not known. */
struct orch_res_ids {
	const char *device;       /* loop: /dev/loopN; mount: the source */
	const char *backing_file; /* loop: the attached image */
	const char *mount_point;  /* mount */
	const char *bucket;       /* upload */
	const char *key;          /* upload */
	const char *upload_id;    /* upload, known once created */
	const char *dir;          /* tempdir */
	const char *devnum;       /* node: "major:minor" */
	const char *inode;        /* tempdir: "dev:ino" of what it must be
				     (a recovery point being deleted) */
	/* a provider's kind: its own ids, a JSON object (copied); for
	 * `created`, its members replace or add to those recorded */
	const struct cm_json *json;
};

struct orch_resource {
	char *kind;          /* owned: ORCH_RES_LOOP ... or a provider's */
	enum orch_res_status status;
	time_t changed;      /* when the status was last set */
	/* owned; NULL when not known (same meaning as struct orch_res_ids) */
	char *device;
	char *backing_file;
	char *mount_point;
	char *bucket;
	char *key;
	char *upload_id;
	char *dir;
	char *devnum;
	char *inode;
	struct cm_json *ids; /* owned or NULL: a provider's ids (object) */
};

struct orch_job {
	char id[ORCH_JOB_ID_SIZE];
	char *vault;         /* owned: the vault's name */
	char *rp_name;       /* owned: the recovery point's name in its
				vault (rp.h; may hold ':'); journals written
				before it was recorded: the last component
				of rp_path */
	char *rp_path;       /* owned: the recovery point's path or ARN */
	char *resource_id;   /* owned: e.g. "local:VAULT:NAME" or an ARN */
	uint64_t rp_size;    /* the recovery point's size when queued; 0:
				unknown (it tells a replaced one apart) */
	time_t rp_mtime;     /* and its mtime; 0: unknown */
	/* a local recovery point's identity when queued (rp_identity.h):
	 * checked when it is opened, before archiving and before deleting */
	struct orch_rp_identity rp_id;
	enum orch_job_state state;
	unsigned attempts;   /* started runs, this one included */
	time_t times[ORCH_JOB_NSTATES]; /* last entry into each; 0: never */
	uint64_t bytes_read;
	uint64_t bytes_total;   /* 0: unknown */
	uint64_t bytes_written;
	/* a snapshot read block by block (EBS direct): blocks fetched so
	 * far of blocks_total written; 0 of 0 for anything else. Kept in
	 * the journal (for `vaultfs status`), not in the index */
	uint64_t blocks_fetched;
	uint64_t blocks_total;
	char *result_url;    /* owned, NULL until archived */
	uint64_t result_size;
	char *result_etag;   /* owned or NULL */
	char *result_sha256; /* owned or NULL: 64 hex digits */
	char *result_incomplete; /* owned or NULL: what the archive left
				    out ("2 items not archived: ..."); set:
				    the job ends incomplete, never deletes */
	char *last_error;    /* owned or NULL */
	bool verified;       /* the archive passed verification */
	bool snapshot_deleted; /* the recovery point was deleted after it */
	struct orch_resource *res; /* nres entries, owned */
	size_t nres;
	size_t res_cap;
};

/* A new job for a recovery point, state queued, with a fresh id. All
 * strings are copied. Free with orch_job_free(). */
struct orch_job *orch_job_new(const char *vault, const char *rp_name,
			      const char *rp_path, const char *resource_id);
void orch_job_free(struct orch_job *job); /* NULL is a no-op */

/* Move to state s and stamp times[s] with now (in memory only). */
void orch_job_set_state(struct orch_job *job, enum orch_job_state s);
/* Copy msg (NULL clears) into last_error. */
void orch_job_set_error(struct orch_job *job, const char *msg);
/* Record the archive (strings copied; NULL leaves a field unset). */
void orch_job_set_result(struct orch_job *job, const char *url,
			 uint64_t size, const char *etag, const char *sha256);
/* Some resource is intended or created (not yet released). */
bool orch_job_holds_resources(const struct orch_job *job);

struct orch_journal;

/*
 * Create STATEDIR and STATEDIR/jobs if missing, take the lock, remove the
 * leftover *.tmp files of a crashed writer. -EBUSY when another process
 * holds the lock. Close with orch_journal_close().
 */
int orch_journal_open(const char *state_dir, struct orch_journal **out,
		      struct cm_err *err);
/* The pid STATEDIR/lock names (its holder's, while it is held); -1 when
 * none. */
long orch_journal_holder(const char *state_dir);
/* Releases the lock. NULL is a no-op. */
void orch_journal_close(struct orch_journal *j);

/* Write the job's file atomically (see above). The job is borrowed. */
int orch_journal_save(struct orch_journal *j, const struct orch_job *job,
		      struct cm_err *err);

struct orch_job_list {
	struct orch_job **jobs; /* n entries, owned, sorted by id */
	size_t n;
	size_t ncorrupt;        /* files reported (and, if locked, moved) */
};

/* Flags for loading. */
#define ORCH_LOAD_ALL 0x1 /* also finished jobs that hold nothing */

/*
 * For recovery at start: every job that is not in a final state or still
 * holds a resource, with its resources (ORCH_LOAD_ALL: every job). Corrupt
 * files are moved aside to .corrupt and counted. Release with
 * orch_job_list_release().
 */
int orch_journal_load_all(struct orch_journal *j, unsigned flags,
			  struct orch_job_list *out, struct cm_err *err);

/* The same without the lock and read-only (corrupt files are only
 * counted): for `vaultfs status` while another process runs. */
int orch_journal_read(const char *state_dir, unsigned flags,
		      struct orch_job_list *out, struct cm_err *err);

void orch_job_list_release(struct orch_job_list *list);

/*
 * Every job file, one at a time, to fn, which takes ownership of the job
 * (so that a start holds one full record at a time, not all of them).
 * Corrupt files are moved aside as by orch_journal_load_all and counted
 * into *ncorrupt (may be NULL).
 */
typedef void (*orch_journal_fn)(void *ctx, struct orch_job *job);
int orch_journal_each(struct orch_journal *j, orch_journal_fn fn, void *ctx,
		      size_t *ncorrupt, struct cm_err *err);

/* One job's file, read without the lock (a record on demand). -ENOENT:
 * there is none; -EINVAL: corrupt (err names the file). */
int orch_journal_load_job(const char *state_dir, const char *id,
			  struct orch_job **out, struct cm_err *err);

/*
 * The index's form of a finished job (orchestrator/index.h): the journal
 * file's members on one line, without "version" and "resources" (a
 * finished job holds nothing). The caller frees the text.
 */
char *orch_job_record_text(const struct orch_job *job);
/* Back from a parsed record; a state this version does not know reads as
 * failed, with a note naming it in last_error. -EINVAL with why set. */
int orch_job_from_record(const struct cm_json *record, struct orch_job **out,
			 char *why, size_t n);
/* recoveryPoint.identity of a record or journal file (rp: the
 * recoveryPoint object): absent (an older vaultfs: id->known false) or
 * whole; false when malformed. */
bool orch_rp_identity_from_record(const struct cm_json *rp,
				  struct orch_rp_identity *id);
/* The same from the record's line (with or without its '\n'): read by a
 * scanner made for exactly what orch_job_record_text writes, else through
 * the JSON parser (a record of another version, or edited by hand). The
 * two accept the same records. */
int orch_job_from_record_line(const char *line, size_t len,
			      struct orch_job **out, char *why, size_t n);
/* The scanner alone: 0 and *out, or 1 when it does not recognise the line
 * (nothing said about whether the JSON parser would take it). */
int orch_job_scan_record(const char *line, size_t len, struct orch_job **out);

/*
 * Remove a job's files (ID.json, ID.log) once its record is elsewhere
 * (folded into the index). The directory is fsynced by
 * orch_journal_sync(). Fault site: journal.forget.
 */
int orch_journal_forget(struct orch_journal *j, const char *id);
int orch_journal_sync(struct orch_journal *j);
const char *orch_journal_state_dir(const struct orch_journal *j);

/*
 * Resource tracking; each call saves the job and returns what the save
 * returned.
 *
 * add: append a resource with status intended and the ids known now;
 * *idx receives its index. If the save fails the resource is dropped
 * again, and the caller must not create it.
 * created: mark it created; non-NULL fields of `learned` (may be NULL)
 * replace what was recorded.
 * released: mark it released.
 * For created/released the job in memory keeps the new status even if
 * the save fails (it is the truth; the caller decides what to do).
 */
int orch_journal_res_add(struct orch_journal *j, struct orch_job *job,
			 const char *kind,
			 const struct orch_res_ids *ids, size_t *idx,
			 struct cm_err *err);
int orch_journal_res_created(struct orch_journal *j, struct orch_job *job,
			     size_t idx, const struct orch_res_ids *learned,
			     struct cm_err *err);
int orch_journal_res_released(struct orch_journal *j, struct orch_job *job,
			      size_t idx, struct cm_err *err);

#endif
