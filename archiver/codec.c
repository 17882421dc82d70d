/*
 * codec.c - the codecs' front door (see arc.h): names and suffixes, option
 * defaults shared by every codec, and dispatch to the codec files. The
 * `none` codec lives here too, being a few lines.
 *
 * gzip and zstd each sit in their own file (codec_gzip.c, codec_zstd.c), the
 * only files that include zlib's and libzstd's headers. This file resolves
 * `threads == 0` to the number of online CPUs so that both see the same
 * count; levels and block sizes are checked by the codec that knows them.
 *
 * none: write() passes the caller's bytes straight to the next filter (still
 * counted in bytes_in by arc_write), write_zeros() passes the run on so that
 * a sink may do something better with it than receive zero buffers. It has
 * no threads and no state but the filter itself.
 */
#include "arc.h"
#include "codec_internal.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CODEC_MAX_THREADS 256

static const struct {
	const char *name;
	const char *suffix;
} codecs[] = {
	[ARC_CODEC_GZIP] = { "gzip", ".gz" },
	[ARC_CODEC_ZSTD] = { "zstd", ".zst" },
	[ARC_CODEC_NONE] = { "none", "" },
};

#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

int arc_codec_parse(const char *name, enum arc_codec *out)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < NCODECS; i++) {
		if (strcmp(name, codecs[i].name) == 0) {
			*out = (enum arc_codec)i;
			return 0;
		}
	}
	return -EINVAL;
}

void arc_codec_levels(enum arc_codec c, int *lo, int *hi, int *def)
{
	switch (c) {
	case ARC_CODEC_GZIP:
		*lo = 1, *hi = 9, *def = 6;
		break;
	case ARC_CODEC_ZSTD:
		*lo = 1, *hi = 19, *def = 3;
		break;
	default:
		*lo = *hi = *def = 0;
		break;
	}
}

const char *arc_codec_name(enum arc_codec c)
{
	if ((size_t)c >= NCODECS)
		return "?";
	return codecs[c].name;
}

const char *arc_codec_suffix(enum arc_codec c)
{
	if ((size_t)c >= NCODECS)
		return "";
	return codecs[c].suffix;
}

/* ---- none ---- */

static int none_write(struct arc_filter *f, const void *p, size_t n,
		      struct cm_err *err)
{
	return arc_write(f->next, p, n, err);
}

static int none_write_zeros(struct arc_filter *f, uint64_t n,
			    struct cm_err *err)
{
	return arc_write_zeros(f->next, n, err);
}

static int none_close(struct arc_filter *f, struct cm_err *err)
{
	return arc_close(f->next, err);
}

static void none_abort(struct arc_filter *f)
{
	arc_abort(f->next);
}

static void none_free(struct arc_filter *f)
{
	arc_free(f->next);
	free(f);
}

static const struct arc_filter_ops none_ops = {
	.name = "none",
	.write = none_write,
	.write_zeros = none_write_zeros,
	.close = none_close,
	.abort = none_abort,
	.free = none_free,
};

static struct arc_filter *none_new(struct arc_filter *next)
{
	struct arc_filter *f = cm_xcalloc(1, sizeof(*f));

	f->ops = &none_ops;
	f->next = next;
	return f;
}

/* ---- dispatch ---- */

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	if (n > CODEC_MAX_THREADS)
		return CODEC_MAX_THREADS;
	return (unsigned)n;
}

struct arc_filter *arc_codec_new(const struct arc_codec_opts *opts,
				 struct arc_filter *next, struct cm_err *err)
{
	struct arc_codec_opts o = *opts;

	if (!next) {
		cm_err_set(err, EINVAL, "codec: no next filter");
		return NULL;
	}
	if (o.threads == 0)
		o.threads = online_cpus();
	if (o.threads > CODEC_MAX_THREADS) {
		cm_err_set(err, EINVAL, "%s: %u threads is more than %d",
			   arc_codec_name(o.codec), o.threads,
			   CODEC_MAX_THREADS);
		arc_free(next);
		return NULL;
	}
	switch (o.codec) {
	case ARC_CODEC_GZIP:
		return arc_gzip_new(&o, next, err);
	case ARC_CODEC_ZSTD:
		return arc_zstd_new(&o, next, err);
	case ARC_CODEC_NONE:
		return none_new(next);
	}
	cm_err_set(err, EINVAL, "codec: unknown codec %d", (int)o.codec);
	arc_free(next);
	return NULL;
}
