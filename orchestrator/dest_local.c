/*
 * dest_local.c - the local destination: a directory laid out like a
 * bucket, a key being a path below it (orch_key_local_path's rules; the
 * keys made here are safe by construction). Archives are written by the
 * archiver's file sink (NAME.partial, fsynced, renamed into place), the
 * manifest by an atomic replacement; verification always reads the
 * archive back, since reading a local file is what a cheaper check would
 * cost anyway.
 */
#include "dest.h"
#include "dest_int.h"
#include "fsutil.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "verify.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int local_prepare(struct orch_dest *d, struct cm_err *err)
{
	return cm_mkdirs_durable(d->dir, 0755, err);
}

static char *local_url(const struct orch_dest *d, const char *key)
{
	return cm_xasprintf("%s/%s", d->dir, key);
}

static int local_open_dir(struct orch_dest *d, const char *dir_key,
			  struct cm_err *err)
{
	char *path = local_url(d, dir_key);
	int rc = cm_mkdirs_durable(path, 0755, err);

	free(path);
	return rc;
}

static int local_publish_manifest(struct orch_dest *d, const char *dir_key,
				  const char *text, size_t len,
				  struct cm_err *err)
{
	char *path = cm_xasprintf("%s/%s%s", d->dir, dir_key,
				  ORCH_MANIFEST_NAME);
	int rc = cm_write_file_atomic(path, text, len, err);

	free(path);
	return rc;
}

static int local_verify(struct orch_dest *d, struct orch_dest_check *c,
			struct cm_err *err)
{
	struct dest_digest dg = { 0 };
	char hex[CM_SHA256_HEX_LEN + 1];
	char *mpath = NULL, *text = NULL;
	const char *slash;
	struct cm_json *m = NULL;
	struct stat st;
	int rc;

	(void)d;
	c->read_back = true;
	if (stat(c->url, &st) < 0) {
		rc = cm_err_set(err, errno, "verify %s: %s", c->url,
				strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size != c->size) {
		rc = cm_err_set(err, EIO, "verify %s: %llu bytes stored, %llu "
				"written", c->url,
				(unsigned long long)st.st_size,
				(unsigned long long)c->size);
		goto out;
	}
	slash = strrchr(c->url, '/');
	mpath = cm_xasprintf("%.*s%s", slash ? (int)(slash - c->url + 1) : 0,
			     c->url, ORCH_MANIFEST_NAME);
	rc = cm_json_parse_file(mpath, &m, err);
	if (rc) {
		cm_err_prefix(err, "verify");
		goto out;
	}
	text = cm_json_print(m);
	rc = c->check_manifest(c->ctx, text, strlen(text), mpath, err);
	if (rc)
		goto out;
	dest_digest_init(&dg, c->cancel);
	rc = arc_read_file(c->url, dest_digest_sink, &dg, NULL, err);
	if (rc) {
		cm_err_prefix(err, "%s", c->url);
		cm_err_prefix(err, "verify");
		goto out;
	}
	dest_digest_hex(&dg, hex);
	if (strcmp(hex, c->sha256) != 0)
		rc = cm_err_set(err, EIO, "verify %s: sha256 %s, written %s",
				c->url, hex, c->sha256);
out:
	dest_digest_release(&dg);
	cm_json_free(m);
	free(text);
	free(mpath);
	return rc;
}

/* The archiver's file sink writes NAME.partial and renames it: a run cut
 * short leaves the partial file, which no journal record names. */
static void local_discard_partial(struct orch_dest *d, const char *dir_key)
{
	char *dir = local_url(d, dir_key);
	struct dirent *e;
	DIR *dh;

	dh = opendir(dir);
	if (dh) {
		while ((e = readdir(dh))) {
			size_t n = strlen(e->d_name);

			if (n > 8 && !strcmp(e->d_name + n - 8, ".partial") &&
			    unlinkat(dirfd(dh), e->d_name, 0) == 0)
				cm_info("removed %s/%s", dir, e->d_name);
		}
		closedir(dh);
		rmdir(dir); /* if nothing else is in it */
	}
	free(dir);
}

static void local_free(struct orch_dest *d)
{
	free(d->name);
	free(d);
}

static const struct orch_dest_ops local_ops = {
	.prepare = local_prepare,
	.url = local_url,
	.open_dir = local_open_dir,
	.publish_manifest = local_publish_manifest,
	.verify = local_verify,
	.discard_partial = local_discard_partial,
	.free = local_free,
};

static int local_new(const struct orch_config *cfg, struct orch_dest **out,
		     struct cm_err *err)
{
	struct orch_dest *d;
	const char *slash;

	*out = NULL;
	if (!cfg->store_dir)
		return cm_err_set(err, EINVAL, "destination %s: no store "
				  "directory", cfg->destination);
	d = cm_xcalloc(1, sizeof(*d));
	d->ops = &local_ops;
	slash = strrchr(cfg->store_dir, '/');
	d->name = cm_xstrdup(slash && slash[1] ? slash + 1 : "store");
	/* "" from the config (the store directory is the top), but a
	 * prefix set there scopes the store as it does a bucket */
	d->prefix = cfg->prefix ? cfg->prefix : "";
	d->dir = cfg->store_dir;
	*out = d;
	return 0;
}

static char *local_describe(const struct orch_config *cfg)
{
	return cm_xstrdup(cfg->store_dir);
}

const struct orch_dest_type orch_dest_local = {
	.kind = "local",
	.url = CM_URL_PATH,
	.make = local_new,
	.describe = local_describe,
};
