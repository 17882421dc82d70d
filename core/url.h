/*
 * url.h - what kind of place a destination, a source or a manifest names.
 *
 * Everywhere vaultfs takes "a place" (the archiver's destination and
 * manifest, `vaultfs verify`'s URL, the configured destination, an object
 * URL the archiver reports), the string is either an object store URL or a
 * local path. This is the one test that tells them apart, so that a new
 * kind (another object store's scheme) is added here and nowhere else
 * decides it on its own.
 *
 * Pure; any thread.
 */
#ifndef VAULTFS_URL_H
#define VAULTFS_URL_H

#include <stdbool.h>

enum cm_url_kind {
	CM_URL_PATH = 0, /* anything else: a local path, relative or not */
	CM_URL_S3,	 /* "s3://bucket[/key]" (s3_parse_url splits it) */
};

/* The kind of `s`; a NULL string is a path (nothing names S3). */
enum cm_url_kind cm_url_kind(const char *s);

/*
 * An S3 URL with a typo: a string that starts with "s3:" in any case but
 * is not "s3://..." ("s3:/bucket/k", "s3:bucket", "S3://bucket"). As a
 * path it would be a directory named "s3:" in the working directory,
 * which nobody means: every place that takes a URL or a path refuses it
 * (a path that truly starts so is written "./s3:..."). True for such a
 * string; NULL is not one.
 */
bool cm_url_is_typo(const char *s);

#endif
