/*
 * view_store_s3.c - the archive view's store in an S3 bucket (see
 * view_store.h), on the client of core/s3.h and the streaming uploader of
 * core/s3_upload.h.
 *
 * Listing: ListObjectsV2 with delimiter '/', every page. Reading: one
 * ranged GetObject per call, checked against the ETag seen at open.
 * Writing: an s3_upload; an object that fits in its first part goes as one
 * PutObject when finished. Before the write that would start a multipart
 * upload (the first byte past the first part), the writer's record
 * callback runs without an id (the intent), and again with the id once
 * the upload exists - so a crash at any point leaves a record that finds
 * the upload.
 *
 * Copies. Bytes go straight into the uploader's part buffer
 * (s3_upload_reserve/commit). A write() leaves the rest of the current
 * part buffer reserved (->room), so that write_nowait() can copy the next
 * writes into it without calling the uploader at all - a copy that never
 * waits, which the FUSE adapter does on its own thread instead of handing
 * the request (and a copy of its data) to a worker. Those bytes are
 * committed by the next write() or by finish(), before anything else is
 * asked of the uploader: the room stays valid until then.
 *
 * Threads: the client is thread-safe; a reader may be read from several
 * threads at once (each call is its own request); a writer is used by one
 * thread at a time, its parts go out on the uploader's own threads.
 */
#include "view_store.h"

#include "log.h"
#include "mem.h"
#include "s3_upload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct s3_store {
	struct view_store base;
	struct s3_client *c; /* borrowed */
	char *bucket;
	uint64_t part_size;
	unsigned concurrency;
};

struct view_store_rd {
	struct s3_store *s;
	char *key;
	char etag[S3_ETAG_MAX];
};

struct view_store_wr {
	struct s3_store *s;
	struct s3_upload *up;
	char *key;
	uint64_t written; /* committed or in ->room */
	char *room;	  /* reserved in the current part buffer, or NULL */
	size_t room_len;
	size_t room_used; /* filled, not yet committed */
	uint64_t first_part;
	bool intent_recorded;
	view_wr_record_fn record;
	void *ctx;
};

static struct s3_store *S(struct view_store *s)
{
	return (struct s3_store *)s;
}

const char *view_arc_child_name(const char *dir, const char *key, char *buf,
				size_t buflen);

struct list_ctx {
	const char *prefix;
	view_list_fn fn;
	void *ctx;
};

static int list_one(void *ctx, const struct s3_list_entry *e)
{
	struct list_ctx *lc = ctx;
	struct view_obj obj;
	char name[1100];

	if (!view_arc_child_name(lc->prefix, e->key, name, sizeof(name)))
		return 0;
	memset(&obj, 0, sizeof(obj));
	obj.is_dir = e->is_prefix;
	obj.size = e->size;
	obj.mtime = e->last_modified;
	snprintf(obj.etag, sizeof(obj.etag), "%s", e->etag ? e->etag : "");
	return lc->fn(lc->ctx, name, &obj);
}

static int s3s_list(struct view_store *s, const char *prefix,
		    const char *cursor, unsigned max, view_list_fn fn,
		    void *ctx, char **next, struct cm_err *err)
{
	struct s3_list_opts lo = {0};
	struct list_ctx lc = {prefix, fn, ctx};

	lo.prefix = *prefix ? prefix : NULL;
	lo.delimiter = "/";
	lo.max_keys = max;
	return s3_list_objects_page(S(s)->c, S(s)->bucket, &lo, cursor,
				    list_one, &lc, next, err);
}

static int s3s_stat(struct view_store *s, const char *key, struct view_obj *out,
		    struct cm_err *err)
{
	struct s3_object_info info;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = s3_head_object(S(s)->c, S(s)->bucket, key, &info, err);
	if (rc)
		return rc;
	out->size = info.size;
	out->mtime = info.last_modified;
	snprintf(out->etag, sizeof(out->etag), "%s", info.etag);
	return 0;
}

static int stop_at_first(void *ctx, const struct s3_list_entry *e)
{
	*(bool *)ctx = true;
	return 1;
}

static int s3s_has_children(struct view_store *s, const char *prefix, bool *out,
			    struct cm_err *err)
{
	struct s3_list_opts lo = {0};

	*out = false;
	lo.prefix = prefix;
	lo.delimiter = "/";
	lo.max_keys = 1;
	return s3_list_objects(S(s)->c, S(s)->bucket, &lo, stop_at_first, out,
			       err);
}

static int s3s_open_read(struct view_store *s, const char *key,
			 const struct view_obj *obj, struct view_store_rd **out,
			 struct cm_err *err)
{
	struct view_store_rd *rd = cm_xcalloc(1, sizeof(*rd));

	rd->s = S(s);
	rd->key = cm_xstrdup(key);
	snprintf(rd->etag, sizeof(rd->etag), "%s", obj->etag);
	*out = rd;
	return 0;
}

struct sink_ctx {
	char *buf;
	size_t cap;
	size_t got;
};

static int sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct sink_ctx *sc = ctx;

	if (n > sc->cap - sc->got)
		return cm_err_set(err, EIO,
				  "GetObject sent more than the "
				  "range asked for");
	memcpy(sc->buf + sc->got, p, n);
	sc->got += n;
	return 0;
}

static int s3s_read(struct view_store_rd *rd, uint64_t off, void *buf,
		    size_t len, size_t *got, struct cm_err *err)
{
	struct s3_range range = {off, len};
	struct sink_ctx sc = {buf, len, 0};
	struct s3_object_info info;
	int rc;

	*got = 0;
	if (!len)
		return 0;
	rc = s3_get_object(rd->s->c, rd->s->bucket, rd->key, &range, sink, &sc,
			   &info, err);
	if (rc == -ERANGE) {
		/* at or past the end */
		if (err)
			cm_err_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	if (rd->etag[0] && !s3_etag_equal(rd->etag, info.etag))
		return cm_err_set(err, EIO,
				  "s3://%s/%s changed while being "
				  "read",
				  rd->s->bucket, rd->key);
	*got = sc.got;
	return 0;
}

static void s3s_close_read(struct view_store_rd *rd)
{
	if (!rd)
		return;
	free(rd->key);
	free(rd);
}

static int on_upload_id(void *ctx, const char *upload_id, struct cm_err *err)
{
	struct view_store_wr *w = ctx;

	return w->record ? w->record(w->ctx, upload_id, NULL, err) : 0;
}

static uint64_t s3s_write_memory(struct view_store *s)
{
	return 2 * s3_part_size_for(1, 0, S(s)->part_size);
}

static int s3s_open_write(struct view_store *s, const char *key,
			  uint64_t reserved, view_wr_record_fn record,
			  void *ctx, struct view_store_wr **out,
			  struct cm_err *err)
{
	struct view_store_wr *w = cm_xcalloc(1, sizeof(*w));
	struct s3_upload_opts uo = {0};

	w->s = S(s);
	w->key = cm_xstrdup(key);
	w->record = record;
	w->ctx = ctx;
	w->first_part = s3_part_size_for(1, 0, S(s)->part_size);
	uo.part_size = S(s)->part_size;
	uo.concurrency = S(s)->concurrency;
	uo.on_upload_id = on_upload_id;
	uo.ctx = w;
	uo.budget = s->budget;
	uo.budget_reserved = reserved;
	uo.if_none_match = s->exclusive;
	w->up = s3_upload_new(S(s)->c, S(s)->bucket, key, &uo, err);
	if (!w->up) {
		if (s->budget)
			cm_budget_give(s->budget, reserved);
		free(w->key);
		free(w);
		return err && err->code ? -err->code : -EINVAL;
	}
	*out = w;
	return 0;
}

/* Commit what was copied into ->room; the room is given up. */
static int commit_room(struct view_store_wr *w, struct cm_err *err)
{
	size_t used = w->room_used;

	if (!w->room)
		return 0;
	w->room = NULL;
	w->room_len = w->room_used = 0;
	return s3_upload_commit(w->up, used, err);
}

static int s3s_write(struct view_store_wr *w, const void *p, size_t n,
		     struct cm_err *err)
{
	const char *src = p;
	void *room;
	size_t len;
	int rc;

	if (!w->intent_recorded && w->written + n > w->first_part &&
	    w->record) {
		/* the next bytes start a multipart upload */
		rc = w->record(w->ctx, NULL, NULL, err);
		if (rc)
			return rc;
		w->intent_recorded = true;
	}
	rc = commit_room(w, err);
	while (rc == 0 && n) {
		rc = s3_upload_reserve(w->up, &room, &len, err);
		if (rc)
			break;
		if (len > n) {
			/* the room stays reserved, for write_nowait() too;
			 * committed later */
			memcpy(room, src, n);
			w->room = room;
			w->room_len = len;
			w->room_used = n;
			w->written += n;
			return 0;
		}
		memcpy(room, src, len);
		rc = s3_upload_commit(w->up, len, err);
		if (rc == 0) {
			w->written += len;
			src += len;
			n -= len;
		}
	}
	return rc;
}

static int s3s_write_nowait(struct view_store_wr *w, const void *p, size_t n)
{
	if (!w->room || n > w->room_len - w->room_used)
		return -EAGAIN;
	memcpy(w->room + w->room_used, p, n);
	w->room_used += n;
	w->written += n;
	return 0;
}

static int s3s_finish(struct view_store_wr *w, struct view_obj *out,
		      struct cm_err *err)
{
	struct s3_object_info info;
	struct s3_upload_result res;
	int rc;

	rc = commit_room(w, err);
	if (rc)
		return rc;
	if (w->s->base.exclusive) {
		/* Another client may have made the key while ours was open.
		 * If-None-Match on the last request says so where the server
		 * honours it (AWS; Ceph RGW 16 on PutObject only); ask
		 * first anyway, as RGW ignores it on
		 * CompleteMultipartUpload: the window left is the time
		 * between this HEAD and that request. */
		rc = s3_head_object(w->s->c, w->s->bucket, w->key, &info, err);
		if (rc == 0) {
			s3_upload_abort(w->up);
			return cm_err_set(err, EEXIST,
					  "s3://%s/%s: made by another "
					  "client meanwhile: not replaced",
					  w->s->bucket, w->key);
		}
		if (rc != -ENOENT)
			return rc;
		if (err)
			cm_err_clear(err);
	}
	rc = s3_upload_finish(w->up, &res, err);
	if (rc)
		return rc;
	if (out) {
		memset(out, 0, sizeof(*out));
		out->size = res.size;
		out->mtime = time(NULL);
		snprintf(out->etag, sizeof(out->etag), "%s", res.etag);
	}
	return 0;
}

static void s3s_close_write(struct view_store_wr *w)
{
	if (!w)
		return;
	s3_upload_free(w->up); /* aborts unless finished */
	free(w->key);
	free(w);
}

static int s3s_remove(struct view_store *s, const char *key, struct cm_err *err)
{
	return s3_delete_object(S(s)->c, S(s)->bucket, key, err);
}

struct cleanup_ctx {
	struct s3_store *s;
	const char *bucket;
	const char *key;
	time_t since;
	size_t aborted;
};

static int abort_one(void *ctx, const struct s3_upload_entry *e)
{
	struct cleanup_ctx *cc = ctx;
	struct cm_err err;

	/* 60 s of slack for the server's clock */
	if (strcmp(e->key, cc->key) != 0 ||
	    (e->initiated && e->initiated < cc->since - 60))
		return 0;
	cm_err_clear(&err);
	if (s3_abort_multipart_upload(cc->s->c, cc->bucket, e->key,
				      e->upload_id, &err) == 0)
		cc->aborted++;
	else
		cm_warn("view: %s", err.msg);
	return 0;
}

static int s3s_cleanup(struct view_store *s, const char *bucket,
		       const char *key, const char *upload_id, time_t since,
		       struct cm_err *err)
{
	struct cleanup_ctx cc = {S(s), bucket ? bucket : S(s)->bucket, key,
				 since, 0};
	int rc;

	if (upload_id) {
		rc = s3_abort_multipart_upload(S(s)->c, cc.bucket, key,
					       upload_id, err);
		if (rc == -ENOENT) {
			/* completed or aborted already */
			if (err)
				cm_err_clear(err);
			rc = 0;
		}
		return rc;
	}
	return s3_list_multipart_uploads(S(s)->c, cc.bucket, key, abort_one,
					 &cc, err);
}

static void s3s_free(struct view_store *s)
{
	if (!s)
		return;
	free(S(s)->bucket);
	free(s);
}

static const struct view_store_ops s3_ops = {
    .list = s3s_list,
    .stat = s3s_stat,
    .has_children = s3s_has_children,
    .open_read = s3s_open_read,
    .read = s3s_read,
    .close_read = s3s_close_read,
    .open_write = s3s_open_write,
    .write_memory = s3s_write_memory,
    .write = s3s_write,
    .write_nowait = s3s_write_nowait,
    .finish = s3s_finish,
    .close_write = s3s_close_write,
    .remove = s3s_remove,
    .cleanup = s3s_cleanup,
    .free = s3s_free,
};

struct view_store *view_store_s3_new(struct s3_client *client,
				     const char *bucket, uint64_t part_size,
				     unsigned concurrency)
{
	struct s3_store *s = cm_xcalloc(1, sizeof(*s));

	s->base.ops = &s3_ops;
	s->base.remote = true;
	s->c = client;
	s->bucket = cm_xstrdup(bucket);
	s->base.name = s->bucket;
	s->part_size = part_size;
	s->concurrency = concurrency;
	return &s->base;
}
