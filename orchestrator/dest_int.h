/*
 * dest_int.h - what the destination implementations (dest_*.c) share:
 * reading an archive back into a digest, and a small object into memory.
 * Not for use outside them.
 */
#ifndef VAULTFS_ORCH_DEST_INT_H
#define VAULTFS_ORCH_DEST_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

/* A sink (s3_sink_fn) that hashes what it is given and counts it,
 * stopping with -ECANCELED once *cancel is set. */
struct dest_digest {
	struct cm_sha256 *sha; /* dest_digest_init makes it */
	uint64_t bytes;
	const atomic_int *cancel; /* may be NULL */
};

void dest_digest_init(struct dest_digest *d, const atomic_int *cancel);
int dest_digest_sink(void *ctx, const void *p, size_t n, struct cm_err *err);
/* The hex digest; the hash is freed (call once, or dest_digest_release). */
void dest_digest_hex(struct dest_digest *d, char out[CM_SHA256_HEX_LEN + 1]);
void dest_digest_release(struct dest_digest *d);

/* A sink that collects a manifest in memory (16 MiB at most: -EFBIG). */
struct dest_text {
	char *p; /* NUL-terminated once anything came; free() it */
	size_t n;
};

int dest_text_sink(void *ctx, const void *p, size_t n, struct cm_err *err);

#endif
