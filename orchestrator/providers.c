/*
 * providers.c - the table of vault types, and the helpers of provider.h
 * that every provider shares.
 *
 * Adding a vault type: one file (provider_TYPE.c) that defines its
 * check_config, create and ops, its two prototypes in provider.h, and one
 * line in `types` below (docs/design.md, "Adding a vault type").
 */
#include "provider.h"
#include "json.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The one table. */
static const struct orch_provider_type types[] = {
	{ ORCH_VAULT_LOCAL, orch_local_check_config, orch_provider_local_new },
	{ "aws-backup", orch_aws_backup_check_config,
	  orch_provider_aws_backup_new },
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

const struct orch_provider_type *orch_provider_type_find(const char *type)
{
	for (size_t i = 0; type && i < NTYPES; i++)
		if (strcmp(types[i].type, type) == 0)
			return &types[i];
	return NULL;
}

void orch_provider_type_names(char *buf, size_t n)
{
	size_t len = 0;

	if (n)
		buf[0] = '\0';
	for (size_t i = 0; i < NTYPES && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s\"%s\"",
					i ? ", " : "", types[i].type);
}

int orch_provider_new(const struct orch_config *cfg,
		      const struct orch_vault_config *vault,
		      struct orch_provider **out, struct cm_err *err)
{
	const struct orch_provider_type *t = orch_provider_type_find(
	    vault->type);

	*out = NULL;
	if (!t)
		return cm_err_set(err, EINVAL, "vault \"%s\": no provider "
				  "for its type \"%s\"", vault->name,
				  vault->type ? vault->type : "");
	return t->create(cfg, vault, out, err);
}

void orch_provider_free(struct orch_provider *p)
{
	if (!p)
		return;
	if (p->ops->free)
		p->ops->free(p);
	free(p);
}

void orch_restored_release(struct orch_restored *r)
{
	free(r->path);
	cm_json_free(r->manifest);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

void orch_export_release(struct orch_export *x)
{
	free(x->url);
	cm_json_free(x->facts);
	x->url = NULL;
	x->facts = NULL;
	x->bytes = 0;
}

void orch_rp_describe(const struct orch_recovery_point *rp,
		      struct cm_json *out)
{
	struct cm_json *tags;
	char when[32];

	cm_json_add_str(out, "vault", rp->vault);
	cm_json_add_str(out, "name", rp->name);
	cm_json_add_str(out, "type", rp->type);
	cm_json_add_str(out, "path", rp->path);
	cm_json_add_str(out, "resourceId", rp->resource_id);
	cm_time_iso8601(rp->created, when, sizeof(when));
	cm_json_add_str(out, "created", when);
	cm_json_add_u64(out, "size", rp->size);
	if (rp->mtime) {
		cm_time_iso8601(rp->mtime, when, sizeof(when));
		cm_json_add_str(out, "modified", when);
	}
	tags = cm_json_add_object(out, "tags");
	for (size_t i = 0; i < rp->ntags; i++)
		cm_json_add_str(tags, rp->tags[i].key, rp->tags[i].value);
	if (rp->error)
		cm_json_add_str(out, "error", rp->error);
	for (const struct cm_json *m = cm_json_first(rp->extra); m;
	     m = cm_json_next(m))
		cm_json_add(out, cm_json_key(m), cm_json_copy(m));
}

bool orch_rp_tag_allows_delete(const struct orch_config *cfg,
			       const struct orch_recovery_point *rp,
			       char *why, size_t whylen)
{
	const struct orch_tag *want = &cfg->security_tag;

	if (!cfg->has_security_tag)
		return true;
	for (size_t i = 0; i < rp->ntags; i++) {
		if (strcmp(rp->tags[i].key, want->key) != 0)
			continue;
		if (strcmp(rp->tags[i].value, want->value) == 0)
			return true;
		if (why)
			snprintf(why, whylen, "its tag \"%s\" is not the "
				 "security tag's value", want->key);
		return false;
	}
	if (why)
		snprintf(why, whylen, "it does not carry the security tag "
			 "\"%s\"", want->key);
	return false;
}

