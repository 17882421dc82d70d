/*
 * view_store.c - the store that browses a destination: one line per kind
 * of destination (dest.h) that can be browsed.
 */
#include "view_store.h"
#include "dest.h"

#include <errno.h>
#include <string.h>

static struct view_store *local_store(struct orch_dest *d, uint64_t part_size,
				      unsigned concurrency, struct cm_err *err)
{
	(void)part_size;
	(void)concurrency;
	return view_store_local_new(d->dir, err);
}

static struct view_store *s3_store(struct orch_dest *d, uint64_t part_size,
				   unsigned concurrency, struct cm_err *err)
{
	(void)err;
	return view_store_s3_new(d->s3, d->bucket, part_size, concurrency);
}

static const struct {
	const char *kind; /* struct orch_dest_type's */
	struct view_store *(*make)(struct orch_dest *d, uint64_t part_size,
				   unsigned concurrency, struct cm_err *err);
} stores[] = {
	{ "local", local_store },
	{ "s3", s3_store },
};

struct view_store *view_store_new(struct orch_dest *d, uint64_t part_size,
				  unsigned concurrency, struct cm_err *err)
{
	for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++)
		if (!strcmp(stores[i].kind, d->type->kind))
			return stores[i].make(d, part_size, concurrency, err);
	cm_err_set(err, ENOTSUP, "view: the %s destination %s cannot be "
		   "browsed", d->type->kind, d->where);
	return NULL;
}
