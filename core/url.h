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

enum cm_url_kind {
	CM_URL_PATH = 0, /* anything else: a local path, relative or not */
	CM_URL_S3,	 /* "s3://bucket[/key]" (s3_parse_url splits it) */
};

/* The kind of `s`; a NULL string is a path (nothing names S3). */
enum cm_url_kind cm_url_kind(const char *s);

#endif
