/*
 * rp.c - see rp.h.
 */
#include "rp.h"
#include "json.h"
#include "mem.h"

#include <stdlib.h>
#include <string.h>

static void free_tags(struct orch_tag *tags, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(tags[i].key);
		free(tags[i].value);
	}
	free(tags);
}

void orch_rp_release(struct orch_recovery_point *rp)
{
	if (!rp)
		return;
	free(rp->vault);
	free(rp->name);
	free(rp->path);
	free(rp->type);
	free(rp->resource_id);
	free_tags(rp->tags, rp->ntags);
	free(rp->error);
	cm_json_free(rp->extra);
	memset(rp, 0, sizeof(*rp));
}

static char *dup_or_null(const char *s)
{
	return s ? cm_xstrdup(s) : NULL;
}

void orch_rp_copy(struct orch_recovery_point *dst,
		  const struct orch_recovery_point *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->vault = dup_or_null(src->vault);
	dst->name = dup_or_null(src->name);
	dst->path = dup_or_null(src->path);
	dst->type = dup_or_null(src->type);
	dst->size = src->size;
	dst->mtime = src->mtime;
	dst->resource_id = dup_or_null(src->resource_id);
	dst->created = src->created;
	dst->tags = cm_xcalloc(src->ntags + 1, sizeof(*dst->tags));
	for (size_t i = 0; i < src->ntags; i++) {
		dst->tags[i].key = cm_xstrdup(src->tags[i].key);
		dst->tags[i].value = cm_xstrdup(src->tags[i].value);
	}
	dst->ntags = src->ntags;
	dst->error = dup_or_null(src->error);
	dst->id = src->id;
	dst->extra = cm_json_copy(src->extra);
}

bool orch_rp_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n > 0 && n <= ORCH_RP_NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

void orch_rp_list_take(struct orch_rp_list *l, struct orch_recovery_point *rp)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->items = cm_xrealloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->n++] = *rp;
	memset(rp, 0, sizeof(*rp));
}

void orch_rp_list_release(struct orch_rp_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++)
		orch_rp_release(&list->items[i]);
	free(list->items);
	memset(list, 0, sizeof(*list));
}
