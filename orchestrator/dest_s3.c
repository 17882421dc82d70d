/*
 * dest_s3.c - the S3 destination: a bucket, and a prefix every job key
 * starts with. Archives are multipart uploads by the archiver through this
 * destination's client (their ids are journal records, released after a
 * crash by resources.c), the manifest one PutObject with its MD5.
 *
 * Verification by default trusts S3's own integrity checks on the way in
 * (part MD5s, the ETag of the whole) and compares size and ETag with
 * HeadObject, then checks the manifest is there; verify "full" reads both
 * back: the manifest's claims, and the archive's sha256.
 */
#include "dest.h"
#include "dest_int.h"
#include "keys.h"
#include "mem.h"
#include "orch.h"
#include "s3.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *s3_url(const struct orch_dest *d, const char *key)
{
	return cm_xasprintf("s3://%s/%s", d->bucket, key);
}

static int s3_publish_manifest(struct orch_dest *d, const char *dir_key,
			       const char *text, size_t len,
			       struct cm_err *err)
{
	char *key = cm_xasprintf("%s%s", dir_key, ORCH_MANIFEST_NAME);
	uint8_t md5[CM_MD5_LEN];
	int rc;

	cm_md5(text, len, md5);
	rc = s3_put_object(d->s3, d->bucket, key, text, len, md5, NULL, err);
	if (rc)
		cm_err_prefix(err, "manifest s3://%s/%s", d->bucket, key);
	free(key);
	return rc;
}

static int s3_verify(struct orch_dest *d, struct orch_dest_check *c,
		     struct cm_err *err)
{
	struct s3_object_info info;
	struct dest_digest dg = { 0 };
	struct dest_text t = { 0 };
	char *bucket = NULL, *key = NULL, *mkey = NULL, *slash;
	char hex[CM_SHA256_HEX_LEN + 1];
	int rc;

	c->read_back = c->full;
	rc = s3_parse_url(c->url, &bucket, &key, err);
	if (rc)
		goto out;
	rc = s3_head_object(d->s3, bucket, key, &info, err);
	if (rc) {
		cm_err_prefix(err, "verify %s", c->url);
		goto out;
	}
	if (info.size != c->size) {
		rc = cm_err_set(err, EIO, "verify %s: %llu bytes stored, %llu "
				"uploaded", c->url,
				(unsigned long long)info.size,
				(unsigned long long)c->size);
		goto out;
	}
	if (c->etag && !s3_etag_equal(info.etag, c->etag)) {
		rc = cm_err_set(err, EIO, "verify %s: ETag %s stored, %s "
				"uploaded", c->url, info.etag, c->etag);
		goto out;
	}
	slash = strrchr(key, '/');
	mkey = cm_xasprintf("%.*s%s", slash ? (int)(slash - key + 1) : 0, key,
			    ORCH_MANIFEST_NAME);
	if (!c->full) {
		rc = s3_head_object(d->s3, bucket, mkey, &info, err);
		if (rc)
			cm_err_prefix(err, "verify the manifest s3://%s/%s",
				      bucket, mkey);
		goto out;
	}
	rc = s3_get_object(d->s3, bucket, mkey, NULL, dest_text_sink, &t,
			   NULL, err);
	if (rc) {
		cm_err_prefix(err, "verify the manifest s3://%s/%s", bucket,
			      mkey);
		goto out;
	}
	rc = c->check_manifest(c->ctx, t.p, t.n, mkey, err);
	if (rc)
		goto out;
	dest_digest_init(&dg, c->cancel);
	rc = s3_get_object(d->s3, bucket, key, NULL, dest_digest_sink, &dg,
			   NULL, err);
	if (rc) {
		cm_err_prefix(err, "verify %s", c->url);
		goto out;
	}
	dest_digest_hex(&dg, hex);
	if (dg.bytes != c->size || strcmp(hex, c->sha256) != 0)
		rc = cm_err_set(err, EIO, "verify %s: read back %llu bytes "
				"with sha256 %s, uploaded %llu with %s",
				c->url, (unsigned long long)dg.bytes, hex,
				(unsigned long long)c->size, c->sha256);
out:
	dest_digest_release(&dg);
	free(t.p);
	free(bucket);
	free(key);
	free(mkey);
	return rc;
}

static void s3_free(struct orch_dest *d)
{
	s3_client_free(d->s3);
	free(d->name);
	free(d);
}

static const struct orch_dest_ops s3_ops = {
	.url = s3_url,
	.publish_manifest = s3_publish_manifest,
	.verify = s3_verify,
	.free = s3_free,
};

static int s3_new(const struct orch_config *cfg, struct orch_dest **out,
		  struct cm_err *err)
{
	struct orch_dest *d;

	*out = NULL;
	if (!cfg->bucket || !*cfg->bucket)
		return cm_err_set(err, EINVAL, "destination %s: no bucket",
				  cfg->destination);
	d = cm_xcalloc(1, sizeof(*d));
	d->ops = &s3_ops;
	d->name = cm_xstrdup(cfg->bucket);
	d->prefix = cfg->prefix ? cfg->prefix : "";
	d->bucket = cfg->bucket;
	d->s3 = orch_s3_client_new(cfg, err);
	if (!d->s3) {
		s3_free(d);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

static char *s3_describe(const struct orch_config *cfg)
{
	return cm_xasprintf("s3://%s/%s", cfg->bucket,
			    cfg->prefix ? cfg->prefix : "");
}

const struct orch_dest_type orch_dest_s3 = {
	.kind = "s3",
	.url = CM_URL_S3,
	.make = s3_new,
	.describe = s3_describe,
};
