/*
 * ebs.h - the EBS direct APIs, read side: which blocks of a snapshot hold
 * data (ListSnapshotBlocks) and one block's bytes (GetSnapshotBlock),
 * through aws_rest (aws.h) on a client of aws_ebs.
 *
 * API reference: Amazon EBS direct APIs, ListSnapshotBlocks and
 * GetSnapshotBlock (REST-JSON, signing name "ebs").
 *
 *   GET /snapshots/SNAP/blocks?maxResults=N&pageToken=T
 *       -> {"Blocks": [{"BlockIndex": i, "BlockToken": t}...],
 *           "BlockSize": bytes, "VolumeSize": GiB, "ExpiryTime": t,
 *           "NextToken": t}
 *   GET /snapshots/SNAP/blocks/INDEX?blockToken=T
 *       -> the block's bytes; x-amz-Data-Length, x-amz-Checksum (base64
 *          SHA-256 of the bytes), x-amz-Checksum-Algorithm "SHA256"
 *
 * Blocks not listed were never written: they read as zeros and are never
 * asked for. Block tokens expire (ExpiryTime): a caller lists again when
 * they have (ebs_listing_expired) or when GetSnapshotBlock says so.
 *
 * Threads: the calls are as thread-safe as the client (it is).
 */
#ifndef VAULTFS_EBS_H
#define VAULTFS_EBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws.h"
#include "err.h"

/* The largest block accepted (AWS's are 512 KiB): a bound on buffers. */
#define EBS_BLOCK_MAX (16u << 20)

struct ebs_block {
	uint64_t index;
	char *token; /* owned */
};

struct ebs_listing {
	struct ebs_block *blocks; /* n, sorted by index, no duplicates */
	size_t n;
	uint32_t block_size;   /* BlockSize as the listing reports it */
	uint64_t volume_bytes; /* VolumeSize (GiB) in bytes */
	time_t expiry;         /* ExpiryTime; 0: not given */
	unsigned pages;        /* ListSnapshotBlocks calls made */
};

/* Every page of ListSnapshotBlocks of `snapshot` ("snap-..."). */
int ebs_list_blocks(struct aws_client *c, const char *snapshot,
		    struct ebs_listing *out, struct cm_err *err);
void ebs_listing_release(struct ebs_listing *l);
/* The tokens are past (or within a minute of) their ExpiryTime. */
bool ebs_listing_expired(const struct ebs_listing *l, time_t now);
/* The listed block of this index, or NULL (never written). */
const struct ebs_block *ebs_listing_find(const struct ebs_listing *l,
					 uint64_t index);

/*
 * GetSnapshotBlock: the block's bytes into buf (cap bytes), *len their
 * count, checked against x-amz-Checksum (ebs_check_block). -ENOSPC when
 * the block is larger than cap; -EIO naming the block when the checksum is
 * missing or wrong (a retry may heal a transfer that went bad: the caller
 * decides). An expired token fails with the service's error (-EINVAL,
 * ValidationException).
 */
int ebs_get_block(struct aws_client *c, const char *snapshot,
		  const struct ebs_block *b, void *buf, size_t cap,
		  size_t *len, struct cm_err *err);

/*
 * The block's bytes against the answer's headers: algorithm must be
 * "SHA256" (or absent), checksum the base64 SHA-256 of data, and
 * data_length (when not NULL) the number of bytes. err names `what`.
 */
int ebs_check_block(const void *data, size_t len, const char *checksum,
		    const char *algorithm, const char *data_length,
		    const char *what, struct cm_err *err);

/*
 * The snapshot's block size, from the first block's DataLength (the
 * bytes GetSnapshotBlock returned) checked against the listing's
 * BlockSize (see ebs.c for why both): 0 with *out set, or -EIO naming
 * the snapshot when they disagree or the size cannot tile the volume.
 */
int ebs_block_size(const char *snapshot, uint32_t reported,
		   size_t data_length, uint64_t volume_bytes, uint32_t *out,
		   struct cm_err *err);

#endif
