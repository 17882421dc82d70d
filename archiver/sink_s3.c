/*
 * sink_s3.c - the S3 sink: the end of an archive chain is one streaming
 * multipart upload (core/s3_upload.h). Bytes are copied once, into the
 * upload's part buffers; back-pressure comes from the upload's fixed pool.
 * close() finishes the upload and checks its ETag; abort() aborts it, so a
 * failed archive leaves no half-open upload behind.
 */
#include "sink.h"
#include "mem.h"
#include "s3_upload.h"

#include <stdlib.h>

struct s3_sink {
	struct s3_upload *upload;
	struct s3_upload_result result;
};

static int s3_write(struct arc_filter *f, const void *p, size_t n,
		    struct cm_err *err)
{
	struct s3_sink *s = f->state;

	return s3_upload_write(s->upload, p, n, err);
}

static int s3_close(struct arc_filter *f, struct cm_err *err)
{
	struct s3_sink *s = f->state;

	return s3_upload_finish(s->upload, &s->result, err);
}

static void s3_sink_abort(struct arc_filter *f)
{
	struct s3_sink *s = f->state;

	s3_upload_abort(s->upload);
}

static void s3_free(struct arc_filter *f)
{
	struct s3_sink *s = f->state;

	s3_upload_free(s->upload); /* aborts unless finished */
	free(s);
	free(f);
}

static const struct arc_filter_ops s3_ops = {
	.name = "s3",
	.write = s3_write,
	.close = s3_close,
	.abort = s3_sink_abort,
	.free = s3_free,
};

struct arc_filter *arc_sink_s3_new(struct s3_client *client,
				   const char *bucket, const char *key,
				   const struct s3_upload_opts *opts,
				   struct cm_err *err)
{
	struct s3_upload *u = s3_upload_new(client, bucket, key, opts, err);
	struct arc_filter *f;
	struct s3_sink *s;

	if (!u)
		return NULL;
	s = cm_xcalloc(1, sizeof(*s));
	s->upload = u;
	f = cm_xcalloc(1, sizeof(*f));
	f->ops = &s3_ops;
	f->state = s;
	return f;
}

void arc_sink_s3_result(const struct arc_filter *sink,
			struct s3_upload_result *out)
{
	const struct s3_sink *s = sink->state;

	*out = s->result;
}

uint64_t arc_sink_s3_bytes_done(const struct arc_filter *sink)
{
	const struct s3_sink *s = sink->state;

	return s3_upload_bytes_done(s->upload);
}
