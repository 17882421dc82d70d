/*
 * dest.c - choosing the destination, the parts every kind shares: see
 * dest.h.
 */
#include "dest.h"
#include "dest_int.h"
#include "keys.h"
#include "mem.h"
#include "url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every kind of destination, one line each: the configured destination's
 * URL kind picks one. */
static const struct orch_dest_type *const types[] = {
	&orch_dest_local,
	&orch_dest_s3,
};

const struct orch_dest_type *orch_dest_type_of(const struct orch_config *cfg)
{
	enum cm_url_kind k = cm_url_kind(cfg->destination);

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i]->url == k)
			return types[i];
	return NULL;
}

int orch_dest_new(const struct orch_config *cfg, struct orch_dest **out,
		  struct cm_err *err)
{
	const struct orch_dest_type *t = orch_dest_type_of(cfg);
	int rc;

	*out = NULL;
	/* config.c accepts no other kind: one added to url.h without its
	 * destination here */
	if (!t)
		return cm_err_set(err, EINVAL, "destination %s: no "
				  "destination of that kind",
				  cfg->destination);
	rc = t->make(cfg, out, err);
	if (rc == 0) {
		(*out)->type = t;
		(*out)->cfg = cfg;
		(*out)->where = t->describe(cfg);
	}
	return rc;
}

char *orch_dest_describe(const struct orch_config *cfg)
{
	const struct orch_dest_type *t = orch_dest_type_of(cfg);

	return t ? t->describe(cfg) : cm_xstrdup("?");
}

void orch_dest_free(struct orch_dest *d)
{
	if (!d)
		return;
	free(d->where);
	d->ops->free(d);
}

int orch_dest_job_dir(const struct orch_dest *d, const char *resource_id,
		      const char *job_id, char **out, struct cm_err *err)
{
	struct tm tm;
	time_t t = time(NULL);

	memset(&tm, 0, sizeof(tm));
	if (sscanf(job_id, "%4d%2d%2dT", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday) == 3) {
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		t = timegm(&tm);
	}
	return orch_key_job_dir(d->prefix, resource_id, t, job_id, out, err);
}

/* ---- shared by the implementations ------------------------------------- */

void dest_digest_init(struct dest_digest *d, const atomic_int *cancel)
{
	d->sha = cm_sha256_new();
	d->bytes = 0;
	d->cancel = cancel;
}

int dest_digest_sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct dest_digest *d = ctx;

	if (d->cancel && atomic_load(d->cancel))
		return cm_err_set(err, ECANCELED, "cancelled");
	cm_sha256_update(d->sha, p, n);
	d->bytes += n;
	return 0;
}

void dest_digest_hex(struct dest_digest *d, char out[CM_SHA256_HEX_LEN + 1])
{
	uint8_t bin[CM_SHA256_LEN];

	cm_sha256_final(d->sha, bin);
	cm_hex(bin, sizeof(bin), out);
	dest_digest_release(d);
}

void dest_digest_release(struct dest_digest *d)
{
	if (d->sha)
		cm_sha256_free(d->sha);
	d->sha = NULL;
}

int dest_text_sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct dest_text *t = ctx;

	if (t->n + n > (16u << 20))
		return cm_err_set(err, EFBIG, "manifest over 16 MiB");
	t->p = cm_xrealloc(t->p, t->n + n + 1);
	memcpy(t->p + t->n, p, n);
	t->n += n;
	t->p[t->n] = '\0';
	return 0;
}
