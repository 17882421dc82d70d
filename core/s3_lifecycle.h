/*
 * s3_lifecycle.h - vaultfs's lifecycle rule merged into a bucket's
 * configuration, for `vaultfs bucket setup`.
 *
 * PutBucketLifecycleConfiguration replaces a bucket's whole configuration,
 * so applying one rule means reading the configuration first
 * (s3_get_bucket_lifecycle) and putting back every rule but ours. The
 * merge parses the document with core/xml.h and copies every child of
 * <LifecycleConfiguration> that is not a <Rule> with our ID byte for byte
 * from the text it got (cm_xml_span), in their order, then appends our
 * rule (s3_lifecycle_rule_xml): other rules keep every element and value
 * they had, including ones vaultfs does not know. A rule of ours already
 * there is replaced, never duplicated.
 *
 * Pure functions, no state: any thread.
 */
#ifndef VAULTFS_S3_LIFECYCLE_H
#define VAULTFS_S3_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "s3.h"

struct s3_lifecycle_merged {
	unsigned kept;	/* other rules (elements) copied unchanged */
	bool replaced;	/* a rule with our ID was there (and is gone) */
};

/* Append to out a <LifecycleConfiguration> made of the rules of `doc`
 * (len bytes; NULL or 0 bytes: the bucket has none) other than ours->id,
 * then ours. -EINVAL when doc is not a lifecycle configuration. info may
 * be NULL. */
int s3_lifecycle_merge(const char *doc, size_t len,
		       const struct s3_lifecycle_rule *ours, struct cm_buf *out,
		       struct s3_lifecycle_merged *info, struct cm_err *err);

#endif
