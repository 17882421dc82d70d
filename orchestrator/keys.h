/*
 * keys.h - where an archive lands, and what a job is called.
 *
 * The layout is the seed's: under the destination prefix, the resource id
 * (an ARN, or "local:VAULT:NAME") split on ':' and joined with '/', then
 * Y=YYYY/M=MM/D=DD/<job id>/, holding the archive (backup.tar.gz,
 * rawbackup.gz, backup.tar.zst, ...) and manifest.json:
 *
 *   PREFIX/arn/aws/ec2/eu-west-1/123456789012/snapshot/snap-0abc/
 *       Y=2026/M=11/D=26/20261126T204516.123Z-3f9a1c0b/backup.tar.gz
 *
 * The same key is a path below the store directory when the destination
 * is local, so a resource id is untrusted input: it must not be able to
 * climb out of the prefix or make names the filesystem refuses. Each
 * segment (split on ':' and on '/') keeps [A-Za-z0-9] and "-_.+=@,~" and
 * percent-encodes every other byte (controls, '%', spaces, non-ASCII); a
 * segment "." or ".." is encoded whole ("%2E%2E"), an empty one becomes
 * "_". Seed-style ARNs come through unchanged.
 *
 * Job ids are "YYYYMMDDTHHMMSS.mmmZ-xxxxxxxx": UTC time to the millisecond,
 * then 32 random bits in hex. They sort by creation time, are unique within
 * a process (the millisecond is bumped when two ids would share it) and,
 * with the random part, across processes. They are safe as file names.
 *
 * Thread-safe: orch_job_id_new() serialises on an internal mutex; the rest
 * is pure.
 */
#ifndef VAULTFS_ORCH_KEYS_H
#define VAULTFS_ORCH_KEYS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "arc.h"
#include "err.h"

#define ORCH_JOB_ID_LEN 29
#define ORCH_JOB_ID_SIZE (ORCH_JOB_ID_LEN + 1)
#define ORCH_KEY_MAX 1024          /* S3's limit on a key, in bytes */
#define ORCH_MANIFEST_NAME "manifest.json"

/* A new job id for "now" into out. */
void orch_job_id_new(char out[ORCH_JOB_ID_SIZE]);
/* The id for a given time (ms since the epoch) and random part. */
void orch_job_id_format(uint64_t ms, uint32_t rnd, char out[ORCH_JOB_ID_SIZE]);
/* Exactly the shape orch_job_id_new() makes. */
bool orch_job_id_valid(const char *id);

enum orch_archive_kind {
	ORCH_ARCHIVE_TREE = 0, /* a tar of a filesystem tree */
	ORCH_ARCHIVE_RAW,      /* a raw image */
};

/* "backup.tar.gz", "rawbackup.zst", "backup.tar" (codec none),
 * "rawbackup.img" (codec none). Static strings. */
const char *orch_archive_name(enum orch_archive_kind kind,
			      enum arc_codec codec);

/*
 * The resource id as a relative key: segments sanitised as above, joined
 * with '/', no leading or trailing '/'. *out is the caller's to free.
 * -EINVAL for an empty id, -ENAMETOOLONG for a segment over 255 bytes or a
 * result over ORCH_KEY_MAX.
 */
int orch_key_resource_path(const char *resource_id, char **out,
			   struct cm_err *err);

/*
 * The job's folder: "PREFIX/RESOURCE/Y=YYYY/M=MM/D=DD/JOBID/" (no PREFIX/
 * when prefix is NULL or ""), the date being `t` in UTC. The prefix must
 * be safe (orch_key_is_safe) and the job id valid. Append an object name
 * to get a key. *out is the caller's to free.
 */
int orch_key_job_dir(const char *prefix, const char *resource_id, time_t t,
		     const char *job_id, char **out, struct cm_err *err);

/*
 * A relative key that cannot leave its directory: non-empty, no leading
 * '/', no empty, "." or ".." segment (one trailing '/' is allowed), no
 * control byte, at most ORCH_KEY_MAX bytes.
 */
bool orch_key_is_safe(const char *key);

/* store_dir + "/" + key, after checking the key is safe (-EINVAL).
 * *out is the caller's to free. */
int orch_key_local_path(const char *store_dir, const char *key, char **out,
			struct cm_err *err);

#endif
