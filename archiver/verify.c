/*
 * verify.c - arc_verify (see verify.h): one stored archive, read back and
 * proven whole against its manifest.
 *
 *   1. the places: a folder ('/' at the end) holds exactly one of the
 *      seed's object names (backup.tar.gz, rawbackup.zst, ...), listed
 *      (S3) or looked up (local); the manifest is found as arc_run names
 *      it (run.h), or given;
 *   2. the manifest is read and must parse, name this object, and say the
 *      method, codec, size, sha256 and the counts it was written with;
 *   3. the object is read by the parallel reader (unpack.h: ranged reads
 *      and member decoding on N threads, handed out in order): every
 *      stored byte, in order, to sha256 (its on_chunk); an archive written
 *      in members has them decoded there (each checked, each gzip
 *      member's UOFF against the one before) and fed, in order, to the
 *      counter; an archive without members (older ones, other tools) has
 *      its stored bytes fed to a streaming decoder (decode_gzip.c,
 *      decode_zstd.c) in front of the counter. The decoders and the
 *      counter stop at the first bad byte;
 *   4. size, sha256 and counts are compared with the manifest's;
 *   5. an indexed archive ("indexed": true): the index is rebuilt from
 *      what the reader and the counter saw (the members cut from the
 *      stored object, the tar headers decoded) and must equal, byte for
 *      byte, the index object stored beside the archive (OBJECT.index),
 *      whose size and sha256 must be the manifest's. The index writer is
 *      deterministic, so any difference (a member out of place, an entry
 *      with another offset, mode or name) is a difference in the bytes.
 *
 * The first failure is the message. Memory: the reader's window
 * (VERIFY_WINDOW chunks of at most 8 MiB, as many members), the
 * counter's buffer and the manifest (at most 16 MiB).
 */
#include "verify.h"
#include "aindex.h"
#include "decode_internal.h"
#include "unpack.h"
#include "buf.h"
#include "json.h"
#include "mem.h"
#include "run.h"
#include "sink.h"
#include "url.h"
#include "fsutil.h"

/* The reader's window: see read_archive. */
#define VERIFY_WINDOW 8u

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1024 * 1024)
#define MANIFEST_MAX (16u << 20)
#define MANIFEST_NAME "manifest.json"

/* ---- the decoder front door -------------------------------------------- */

struct decoder {
	const uint64_t *units;  /* the inner decoder's, or NULL (none) */
};

static int dec_write(struct arc_filter *f, const void *p, size_t n,
		     struct cm_err *err)
{
	return arc_write(f->next, p, n, err);
}

static int dec_close(struct arc_filter *f, struct cm_err *err)
{
	return arc_close(f->next, err);
}

static void dec_abort(struct arc_filter *f)
{
	arc_abort(f->next);
}

static void dec_free(struct arc_filter *f)
{
	arc_free(f->next);
	free(f->state);
	free(f);
}

static const struct arc_filter_ops dec_ops = {
	.name = "decoder",
	.write = dec_write,
	.close = dec_close,
	.abort = dec_abort,
	.free = dec_free,
};

struct arc_filter *arc_decoder_new(enum arc_codec c, struct arc_filter *next,
				   struct cm_err *err)
{
	struct decoder *d = cm_xcalloc(1, sizeof(*d));
	struct arc_filter *f = cm_xcalloc(1, sizeof(*f)), *inner = next;

	f->ops = &dec_ops;
	f->state = d;
	if (c == ARC_CODEC_GZIP)
		inner = arc_gunzip_new(next, &d->units, err);
	else if (c == ARC_CODEC_ZSTD)
		inner = arc_unzstd_new(next, &d->units, err);
	else if (c != ARC_CODEC_NONE) {
		cm_err_set(err, EINVAL, "no decoder for codec %d", (int)c);
		arc_free(next);
		inner = NULL;
	}
	if (!inner) {
		free(d);
		free(f);
		return NULL;
	}
	f->next = inner;
	return f;
}

uint64_t arc_decoder_units(const struct arc_filter *dec)
{
	const struct decoder *d = dec->state;

	return d->units ? *d->units : 0;
}

/* ---- places ------------------------------------------------------------ */

/* An object or a manifest: in S3 (bucket set) or a local path. */
struct place {
	char *bucket;
	char *key;
};

static void place_release(struct place *p)
{
	free(p->bucket);
	free(p->key);
	p->bucket = p->key = NULL;
}

static char *place_url(const struct place *p)
{
	if (p->bucket)
		return cm_xasprintf("s3://%s/%s", p->bucket, p->key);
	return cm_xstrdup(p->key);
}

static int place_parse(const char *url, struct place *p, struct cm_err *err)
{
	memset(p, 0, sizeof(*p));
	if (cm_url_kind(url) == CM_URL_S3)
		return s3_parse_url(url, &p->bucket, &p->key, err);
	p->key = cm_xstrdup(url);
	return 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Whether `name` is one of arc_run's object names; the method and codec. */
static bool seed_name(const char *name, enum arc_method *m,
		      enum arc_codec *c)
{
	static const enum arc_method methods[] = { ARC_METHOD_TREE,
						   ARC_METHOD_RAW };
	static const enum arc_codec codecs[] = { ARC_CODEC_GZIP,
						 ARC_CODEC_ZSTD,
						 ARC_CODEC_NONE };
	bool found = false;

	for (size_t i = 0; i < 2 && !found; i++) {
		for (size_t j = 0; j < 3 && !found; j++) {
			char *n = arc_object_name(methods[i], codecs[j]);

			if (!strcmp(n, name)) {
				found = true;
				if (m)
					*m = methods[i];
				if (c)
					*c = codecs[j];
			}
			free(n);
		}
	}
	return found;
}

struct found {
	struct place *folder;
	char *names;   /* owned: ", "-separated, for a message */
	char *key;     /* owned: the one found */
	unsigned n;
};

static void found_add(struct found *f, const char *key)
{
	char *names = f->names ? cm_xasprintf("%s, %s", f->names,
					      base_name(key))
			       : cm_xstrdup(base_name(key));

	free(f->names);
	f->names = names;
	if (!f->key)
		f->key = cm_xstrdup(key);
	f->n++;
}

static int list_one(void *ctx, const struct s3_list_entry *e)
{
	struct found *f = ctx;

	if (!e->is_prefix && seed_name(base_name(e->key), NULL, NULL))
		found_add(f, e->key);
	return 0;
}

/* A folder (its URL ends in '/') holds one archive: make `obj` name it. */
static int find_in_folder(const struct arc_verify_opts *o, struct place *obj,
			  struct cm_err *err)
{
	struct found f = { .folder = obj };
	int rc = 0;

	if (obj->bucket) {
		struct s3_list_opts lo = { .prefix = obj->key,
					   .delimiter = "/" };

		if (!o->client)
			return cm_err_set(err, EINVAL, "an s3:// place needs "
					  "a client");
		rc = s3_list_objects(o->client, obj->bucket, &lo, list_one, &f,
				     err);
		if (rc)
			goto out;
	} else {
		static const enum arc_method methods[] = { ARC_METHOD_TREE,
							   ARC_METHOD_RAW };
		for (size_t i = 0; i < 2; i++) {
			for (int c = 0; c <= ARC_CODEC_NONE; c++) {
				char *n = arc_object_name(methods[i],
							  (enum arc_codec)c);
				char *path = cm_xasprintf("%s%s", obj->key, n);
				struct stat st;

				if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
					found_add(&f, path);
				free(path);
				free(n);
			}
		}
	}
	if (f.n == 0)
		rc = cm_err_set(err, ENOENT, "no archive (backup.* or "
				"rawbackup.*) in this folder");
	else if (f.n > 1)
		rc = cm_err_set(err, EINVAL, "%u archives in this folder (%s): "
				"name one", f.n, f.names);
	else {
		free(obj->key);
		obj->key = f.key;
		f.key = NULL;
	}
out:
	free(f.names);
	free(f.key);
	return rc;
}

/* ---- reading ----------------------------------------------------------- */

static int text_sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	if (cm_buf_append(ctx, p, n))
		return cm_err_set(err, EFBIG, "over %u MiB: not a manifest",
				  MANIFEST_MAX >> 20);
	return 0;
}

int arc_read_file(const char *path, s3_sink_fn sink, void *ctx,
		  uint64_t *size, struct cm_err *err)
{
	char *buf = cm_xmalloc(READ_CHUNK);
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		rc = cm_err_set(err, errno, "%s", strerror(errno));
		goto out;
	}
	if (size && fstat(fd, &st) == 0)
		*size = (uint64_t)st.st_size;
	for (;;) {
		ssize_t got = read(fd, buf, READ_CHUNK);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = cm_err_set(err, errno, "read: %s",
					strerror(errno));
			break;
		}
		if (got == 0)
			break;
		rc = sink(ctx, buf, (size_t)got, err);
		if (rc)
			break;
	}
	close(fd);
out:
	free(buf);
	return rc;
}

/* The text at `p` into t; -ENOENT (err set) when it does not exist. */
static int read_text(const struct arc_verify_opts *o, const struct place *p,
		     struct cm_buf *t, struct cm_err *err)
{
	cm_buf_reset(t);
	if (!p->bucket)
		return arc_read_file(p->key, text_sink, t, NULL, err);
	if (!o->client)
		return cm_err_set(err, EINVAL, "an s3:// place needs a client");
	return s3_get_object(o->client, p->bucket, p->key, NULL, text_sink, t,
			     NULL, err);
}

/* The manifest of `obj`: as given, or where arc_run puts it. */
static int read_manifest(const struct arc_verify_opts *o,
			 const struct place *obj, bool folder,
			 struct arc_verify_result *res, struct cm_err *err)
{
	struct place cand[2] = { { 0 }, { 0 } };
	const char *slash = strrchr(obj->key, '/');
	int dir_len = slash ? (int)(slash - obj->key + 1) : 0;
	struct cm_buf t;
	size_t n = 0;
	int rc = -ENOENT;

	cm_buf_init(&t, MANIFEST_MAX);
	if (o->manifest) {
		rc = place_parse(o->manifest, &cand[n++], err);
		if (rc)
			goto out;
	} else {
		if (folder || seed_name(base_name(obj->key), NULL, NULL)) {
			cand[n].bucket = obj->bucket ? cm_xstrdup(obj->bucket)
						     : NULL;
			cand[n++].key = cm_xasprintf("%.*s%s", dir_len,
						     obj->key, MANIFEST_NAME);
		}
		if (!folder) {
			cand[n].bucket = obj->bucket ? cm_xstrdup(obj->bucket)
						     : NULL;
			cand[n++].key = cm_xasprintf("%s.%s", obj->key,
						     MANIFEST_NAME);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct cm_err e;

		cm_err_clear(&e);
		rc = read_text(o, &cand[i], &t, &e);
		if (rc == 0) {
			res->manifest_url = place_url(&cand[i]);
			res->manifest_text = cm_xstrdup(cm_buf_str(&t));
			break;
		}
		if (rc != -ENOENT || i + 1 == n) {
			char *url = place_url(&cand[i]);
			char *first = place_url(&cand[0]);

			if (rc == -ENOENT && n == 2)
				cm_err_set(err, ENOENT, "no manifest: neither "
					   "%s nor %s exists", first, url);
			else
				cm_err_set(err, -rc, "manifest %s: %s", url,
					   e.msg);
			free(first);
			free(url);
			break;
		}
	}
out:
	cm_buf_release(&t);
	place_release(&cand[0]);
	place_release(&cand[1]);
	return rc;
}

/* ---- what the manifest says -------------------------------------------- */

struct claims {
	uint64_t size;
	const char *sha256;
	bool indexed;
	const char *index_object;   /* its name: the object's + ".index" */
	const char *index_sha256;
	uint64_t index_size;
	enum arc_method method;
	enum arc_codec codec;
	struct arc_counts counts;
};

static int get_u64(const struct cm_json *obj, const char *key, uint64_t *out)
{
	const struct cm_json *v = obj ? cm_json_get(obj, key) : NULL;
	double d;

	if (!v || cm_json_type(v) != CM_JSON_NUMBER)
		return -1;
	d = cm_json_num(v);
	if (d < 0 || d > 9007199254740992.0 || d != (double)(uint64_t)d)
		return -1;
	*out = (uint64_t)d;
	return 0;
}

/* `object_url` NULL: the manifest was named, do not compare names. */
static int read_claims(const struct cm_json *m, const char *object_url,
		       struct claims *c, struct cm_err *err)
{
	const struct cm_json *comp = cm_json_get(m, "compression");
	const struct cm_json *counts;
	const char *method = cm_json_get_str(m, "method");
	const char *codec = comp ? cm_json_get_str(comp, "codec") : NULL;
	const char *object = cm_json_get_str(m, "object");

	memset(c, 0, sizeof(*c));
	if (object_url &&
	    (!object || strcmp(base_name(object), base_name(object_url))))
		return cm_err_set(err, EIO, "it describes %s, not this object",
				  object ? object : "no object");
	c->sha256 = cm_json_get_str(m, "sha256");
	if (!c->sha256 || strlen(c->sha256) != CM_SHA256_HEX_LEN)
		return cm_err_set(err, EIO, "no sha256");
	if (get_u64(m, "bytes_written", &c->size))
		return cm_err_set(err, EIO, "no bytes_written");
	if (!codec || arc_codec_parse(codec, &c->codec))
		return cm_err_set(err, EIO, "compression.codec: %s",
				  codec ? codec : "missing");
	if (cm_json_bool(cm_json_get(m, "indexed"))) {
		const struct cm_json *ix = cm_json_get(m, "index");

		c->indexed = true;
		c->index_object = ix ? cm_json_get_str(ix, "object") : NULL;
		c->index_sha256 = ix ? cm_json_get_str(ix, "sha256") : NULL;
		if (!c->index_object || !c->index_sha256 ||
		    strlen(c->index_sha256) != CM_SHA256_HEX_LEN ||
		    get_u64(ix, "size", &c->index_size))
			return cm_err_set(err, EIO, "\"indexed\", but no "
					  "\"index\": {\"object\", \"size\", "
					  "\"sha256\"}");
	}
	if (method && !strcmp(method, "tree"))
		c->method = ARC_METHOD_TREE;
	else if (method && !strcmp(method, "raw"))
		c->method = ARC_METHOD_RAW;
	else
		return cm_err_set(err, EIO, "method: %s",
				  method ? method : "missing");
	if (c->method == ARC_METHOD_RAW) {
		uint64_t total;

		counts = cm_json_get(m, "raw");
		if (get_u64(counts, "bytes", &c->counts.bytes))
			return cm_err_set(err, EIO, "no \"raw\": {\"bytes\"} "
					  "to compare the image with");
		if (get_u64(m, "bytes_total", &total) ||
		    total != c->counts.bytes)
			return cm_err_set(err, EIO, "raw.bytes %llu is not the "
					  "image's size (bytes_total)",
					  (unsigned long long)c->counts.bytes);
		return 0;
	}
	counts = cm_json_get(m, "tar");
	if (get_u64(counts, "entries", &c->counts.entries) ||
	    get_u64(counts, "bytes", &c->counts.bytes) ||
	    get_u64(counts, "data_bytes", &c->counts.data_bytes))
		return cm_err_set(err, EIO, "no \"tar\": {\"entries\", "
				  "\"bytes\", \"data_bytes\"} to compare "
				  "the archive with");
	return 0;
}

static int compare(const struct arc_verify_result *r, const struct claims *c,
		   struct cm_err *err)
{
	const struct arc_counts *got = &r->counts, *want = &c->counts;

	if (r->size != c->size)
		return cm_err_set(err, EIO, "%llu bytes stored, the manifest "
				  "says %llu", (unsigned long long)r->size,
				  (unsigned long long)c->size);
	if (strcmp(r->sha256_hex, c->sha256))
		return cm_err_set(err, EIO, "sha256 %s, the manifest says %s",
				  r->sha256_hex, c->sha256);
	if (c->method == ARC_METHOD_RAW) {
		if (got->bytes != want->bytes)
			return cm_err_set(err, EIO, "the image decodes to "
					  "%llu bytes, the device had %llu",
					  (unsigned long long)got->bytes,
					  (unsigned long long)want->bytes);
		return 0;
	}
	if (got->entries != want->entries)
		return cm_err_set(err, EIO, "%llu tar entries, the manifest "
				  "says %llu", (unsigned long long)got->entries,
				  (unsigned long long)want->entries);
	if (got->bytes != want->bytes)
		return cm_err_set(err, EIO, "the tar stream is %llu bytes, the "
				  "manifest says %llu",
				  (unsigned long long)got->bytes,
				  (unsigned long long)want->bytes);
	if (got->data_bytes != want->data_bytes)
		return cm_err_set(err, EIO, "%llu bytes of entry data, the "
				  "manifest says %llu",
				  (unsigned long long)got->data_bytes,
				  (unsigned long long)want->data_bytes);
	return 0;
}

/* ---- the index ---------------------------------------------------------- */

/* The index rebuilt from the decoded archive (step 5). */
struct rebuild {
	struct aidx_writer *w;
	int rc;
	struct cm_err err;
};

static void rebuild_member(struct rebuild *b, const struct aidx_member *m)
{
	if (b->rc == 0)
		b->rc = aidx_writer_add_member(b->w, m, &b->err);
}

static int rebuild_entry(void *ctx, const struct aidx_entry *e,
			 struct cm_err *err)
{
	struct rebuild *b = ctx;

	return aidx_writer_add_entry(b->w, e, err);
}

/* The stored index, read as it comes, against the rebuilt one in `fd`. */
struct index_cmp {
	int fd;
	uint64_t size;            /* the rebuilt index's */
	uint64_t at;
	uint64_t differ_at;       /* UINT64_MAX: the same so far */
	struct cm_sha256 *sha;
	unsigned char *buf;
};

static int cmp_sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct index_cmp *c = ctx;
	const unsigned char *q = p;

	cm_sha256_update(c->sha, p, n);
	while (n && c->differ_at == UINT64_MAX) {
		size_t k = n < (1 << 20) ? n : 1 << 20;
		int rc;

		if (c->at + k > c->size) {
			c->differ_at = c->size;
			break;
		}
		rc = cm_pread_all(c->fd, c->buf, k, (off_t)c->at);
		if (rc)
			return cm_err_set(err, -rc, "rebuilt index: %s",
					  strerror(-rc));
		for (size_t i = 0; i < k; i++) {
			if (c->buf[i] != q[i]) {
				c->differ_at = c->at + i;
				break;
			}
		}
		c->at += k;
		q += k;
		n -= k;
	}
	if (c->differ_at == UINT64_MAX)
		return 0;
	c->at += n;
	return 0;
}

static int check_index(const struct arc_verify_opts *o,
		       const struct place *obj, const struct claims *c,
		       struct rebuild *b, struct arc_verify_result *res,
		       struct cm_err *err)
{
	struct place ix = { 0 };
	struct index_cmp cmp = { .fd = -1, .differ_at = UINT64_MAX };
	uint8_t d[CM_SHA256_LEN];
	char hex[CM_SHA256_HEX_LEN + 1];
	int rc;

	if (b->rc) {
		*err = b->err;
		return b->rc;
	}
	{
		char *want = cm_xasprintf("%s%s", base_name(obj->key),
					  AIDX_SUFFIX);
		bool same = !strcmp(base_name(c->index_object), want);

		free(want);
		if (!same)
			return cm_err_set(err, EIO, "the manifest's index %s "
					  "is not this object's",
					  c->index_object);
	}
	rc = aidx_writer_finish(b->w, res->size, res->counts.bytes, &cmp.fd,
				&cmp.size, err);
	if (rc)
		return rc;
	ix.bucket = obj->bucket ? cm_xstrdup(obj->bucket) : NULL;
	ix.key = cm_xasprintf("%s%s", obj->key, AIDX_SUFFIX);
	res->index_url = place_url(&ix);
	cmp.sha = cm_sha256_new();
	cmp.buf = cm_xmalloc(1 << 20);
	if (ix.bucket)
		rc = s3_get_object(o->client, ix.bucket, ix.key, NULL,
				   cmp_sink, &cmp, NULL, err);
	else
		rc = arc_read_file(ix.key, cmp_sink, &cmp, NULL, err);
	if (rc) {
		cm_err_prefix(err, "index %s", res->index_url);
		goto out;
	}
	cm_sha256_final(cmp.sha, d);
	cm_hex(d, sizeof(d), hex);
	res->index_size = cmp.at;
	if (cmp.at != c->index_size)
		rc = cm_err_set(err, EIO, "index %s: %llu bytes, the manifest "
				"says %llu", res->index_url,
				(unsigned long long)cmp.at,
				(unsigned long long)c->index_size);
	else if (strcmp(hex, c->index_sha256))
		rc = cm_err_set(err, EIO, "index %s: sha256 %s, the manifest "
				"says %s", res->index_url, hex,
				c->index_sha256);
	else if (cmp.differ_at != UINT64_MAX || cmp.at != cmp.size)
		rc = cm_err_set(err, EIO, "index %s does not describe the "
				"archive: it differs from the index rebuilt "
				"from the archive at byte %llu (%s)",
				res->index_url, (unsigned long long)
				(cmp.differ_at != UINT64_MAX ? cmp.differ_at
							     : cmp.size),
				cmp.differ_at < 128 ? "its header: sizes or "
						      "counts" :
				"its members or entries");
out:
	free(cmp.buf);
	cm_sha256_free(cmp.sha);
	if (cmp.fd >= 0)
		close(cmp.fd);
	place_release(&ix);
	return rc;
}

/* ---- reading the archive ----------------------------------------------- */

/* What the reader's consumer thread does with the object (step 3). */
struct feed {
	const struct arc_verify_opts *o;
	struct cm_sha256 *sha;
	uint64_t done, total;
};

/* Every stored byte, in order: the sha256, the progress, the cancel. */
static int feed_chunk(void *ctx, uint64_t off, const void *p, size_t n,
		      struct cm_err *err)
{
	struct feed *f = ctx;

	(void)off;
	if (f->o->cancel && atomic_load(f->o->cancel))
		return cm_err_set(err, ECANCELED, "verification cancelled");
	cm_sha256_update(f->sha, p, n);
	f->done += n;
	if (f->o->progress)
		f->o->progress(f->o->progress_ctx, f->done, f->total);
	return 0;
}

/*
 * The object read through `u` to the end: each piece it hands out (a
 * decoded member, or stored bytes for ARC_CODEC_NONE) written to `to`,
 * each member told to the index rebuild `rb` (may have no writer).
 */
static int feed_all(struct arc_unpack *u, struct arc_filter *to,
		    struct rebuild *rb, struct cm_err *err)
{
	for (;;) {
		const void *p;
		size_t n;
		uint64_t at;
		struct aidx_member m;
		int rc = arc_unpack_next(u, &p, &n, &at, err);

		if (rc)
			return rc;
		if (n == 0)
			return 0;
		rc = arc_write(to, p, n, err);
		if (rc)
			return rc;
		arc_unpack_member(u, &m);
		if (rb->w && m.clen)
			rebuild_member(rb, &m);
	}
}

/*
 * Step 3: the object at `url` read, hashed, decoded and counted, its tar
 * entries told to `rb` when it has a writer. Sets res->size, sha256_hex,
 * etag, units and counts.
 */
static int read_archive(const struct arc_verify_opts *o, const char *url,
			enum arc_method method, enum arc_codec codec,
			struct rebuild *rb, struct arc_verify_result *res,
			struct cm_err *err)
{
	struct arc_object *obj = NULL;
	struct arc_unpack *u = NULL;
	struct arc_unpack_opts uo = { 0 };
	struct arc_filter *count, *top = NULL;
	struct arc_unit *units = NULL;
	struct feed f = { .o = o };
	struct arc_range all;
	uint64_t data_end;
	bool members = false;
	size_t nunits = 0;
	uint8_t d[CM_SHA256_LEN];
	int rc;

	rc = arc_object_open(url, o->client, &obj, err);
	if (rc)
		return rc;
	f.total = arc_object_size(obj);
	data_end = f.total;
	if (codec != ARC_CODEC_NONE)
		rc = arc_units_probe(obj, codec, &members, &units, &nunits,
				     &data_end, err);
	if (rc)
		goto out;
	f.sha = cm_sha256_new();
	all.off = 0;
	all.len = data_end;
	uo.obj = obj;
	/* without members: the stored bytes themselves, prefetched in
	 * parallel, to one streaming decoder */
	uo.codec = members ? codec : ARC_CODEC_NONE;
	uo.ranges = &all;
	uo.nranges = 1;
	uo.units = units;
	uo.nunits = nunits;
	uo.on_chunk = feed_chunk;
	uo.chunk_ctx = &f;
	uo.threads = o->threads;
	/* unpack's default window grows with the threads (2 x threads + 2
	 * chunks of 8 MiB): 300 MiB on 16 cores, per job the orchestrator
	 * verifies. VERIFY_WINDOW slots keep a verification under about 80
	 * MiB whatever the machine and still keep fetches and decoders
	 * busy: the stored bytes arrive no faster than a few members'
	 * decoding. */
	uo.window = VERIFY_WINDOW;
	uo.cancel = o->cancel;
	/* the counter is the end of the chain; a decoder in front of it
	 * (owning it) only for an archive without members */
	count = arc_count_new(method, NULL);
	if (rb->w && method == ARC_METHOD_TREE)
		arc_count_on_entry(count, rebuild_entry, rb);
	top = members ? count : arc_decoder_new(codec, count, err);
	if (!top) {
		rc = -EINVAL;
		goto out;
	}
	u = arc_unpack_new(&uo, err);
	if (!u) {
		rc = -EINVAL;
		goto out;
	}
	rc = feed_all(u, top, rb, err);
	res->units = members ? arc_unpack_units(u) : arc_decoder_units(top);
	res->threads = members ? arc_unpack_threads(u) : 0;
	if (rc == 0)
		rc = arc_close(top, err);
	if (rc == 0)
		arc_count_result(count, &res->counts);
	if (rc == 0 && data_end < f.total) {
		/* the zstd seek table after the frames: hashed, not cut */
		size_t len = (size_t)(f.total - data_end);
		void *tail = cm_xmalloc(len);

		rc = arc_object_read(obj, data_end, tail, len, err);
		if (rc == 0)
			rc = feed_chunk(&f, data_end, tail, len, err);
		free(tail);
	}
	if (rc)
		goto out;
	cm_sha256_final(f.sha, d);
	cm_hex(d, sizeof(d), res->sha256_hex);
	res->size = f.done;
	memcpy(res->etag, arc_object_etag(obj), S3_ETAG_MAX);
out:
	/* the workers stop before the chain they feed goes */
	arc_unpack_free(u);
	if (rc && top)
		arc_abort(top);
	arc_free(top);
	cm_sha256_free(f.sha);
	free(units);
	arc_object_free(obj);
	return rc;
}

void arc_verify_result_release(struct arc_verify_result *res)
{
	free(res->object_url);
	free(res->manifest_url);
	free(res->manifest_text);
	free(res->index_url);
	memset(res, 0, sizeof(*res));
}

int arc_verify(const struct arc_verify_opts *o, struct arc_verify_result *res,
	       struct cm_err *err)
{
	struct place obj = { 0 };
	struct cm_json *m = NULL;
	struct claims c;
	struct rebuild rb = { 0 };
	size_t len = strlen(o->url);
	bool folder = len && o->url[len - 1] == '/';
	struct stat st;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = place_parse(o->url, &obj, err);
	if (rc)
		goto out;
	if (!obj.bucket && !folder && stat(obj.key, &st) == 0 &&
	    S_ISDIR(st.st_mode)) {
		char *dir = cm_xasprintf("%s/", obj.key);

		free(obj.key);
		obj.key = dir;
		folder = true;
	}
	if (obj.bucket && !o->client) {
		rc = cm_err_set(err, EINVAL, "an s3:// place needs a client");
		goto out;
	}
	if (folder)
		rc = find_in_folder(o, &obj, err);
	if (rc)
		goto out;
	res->object_url = place_url(&obj);

	rc = read_manifest(o, &obj, folder, res, err);
	if (rc)
		goto out;
	rc = cm_json_parse(res->manifest_text, strlen(res->manifest_text), &m,
			   err);
	if (rc == 0 && cm_json_type(m) != CM_JSON_OBJECT)
		rc = cm_err_set(err, EIO, "not a JSON object");
	if (rc == 0)
		rc = read_claims(m, o->manifest ? NULL : res->object_url, &c,
				 err);
	if (rc) {
		cm_err_prefix(err, "manifest %s", res->manifest_url);
		rc = -EIO;
		goto out;
	}
	res->method = c.method;
	res->codec = c.codec;

	if (c.indexed)
		rb.w = aidx_writer_new(c.method == ARC_METHOD_TREE ?
					       AIDX_KIND_TAR : AIDX_KIND_RAW,
				       c.codec == ARC_CODEC_GZIP ?
					       AIDX_CODEC_GZIP :
				       c.codec == ARC_CODEC_ZSTD ?
					       AIDX_CODEC_ZSTD :
					       AIDX_CODEC_NONE,
				       NULL, 0, err);
	rc = read_archive(o, res->object_url, c.method, c.codec, &rb, res,
			  err);
	if (rc)
		goto out;
	rc = compare(res, &c, err);
	if (rc == 0 && c.indexed) {
		if (c.codec == ARC_CODEC_NONE) {
			struct aidx_member one = { 0, res->size, 0, res->size };

			rebuild_member(&rb, &one);
		}
		res->indexed = true;
		rc = check_index(o, &obj, &c, &rb, res, err);
	}
out:
	aidx_writer_free(rb.w);
	cm_json_free(m);
	place_release(&obj);
	return rc;
}
