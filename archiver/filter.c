/*
 * filter.c - see arc.h: the dispatch helpers every chain goes through.
 */
#include "arc.h"

#include <string.h>

int arc_write(struct arc_filter *f, const void *p, size_t n,
	      struct cm_err *err)
{
	if (n == 0)
		return 0;
	f->bytes_in += n;
	return f->ops->write(f, p, n, err);
}

int arc_write_zeros(struct arc_filter *f, uint64_t n, struct cm_err *err)
{
	static const char zeros[64 * 1024];
	int rc = 0;

	if (f->ops->write_zeros) {
		f->bytes_in += n;
		return f->ops->write_zeros(f, n, err);
	}
	while (n && rc == 0) {
		size_t chunk = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);

		rc = arc_write(f, zeros, chunk, err);
		n -= chunk;
	}
	return rc;
}

int arc_close(struct arc_filter *f, struct cm_err *err)
{
	return f->ops->close(f, err);
}

void arc_abort(struct arc_filter *f)
{
	if (f)
		f->ops->abort(f);
}

void arc_free(struct arc_filter *f)
{
	if (f)
		f->ops->free(f);
}
