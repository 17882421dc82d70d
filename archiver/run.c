/*
 * run.c - see run.h: one archive, start to finish.
 */
#include "run.h"
#include "aindex.h"
#include "member.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "sink.h"
#include "timeutil.h"
#include "url.h"
#include "verify.h"
#include "version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where one thing (the object or the manifest) goes. */
struct target {
	char *bucket;  /* NULL: local */
	char *key;     /* S3 key, or local path ("-" for stdout) */
};

int arc_codec_effective_level(const struct arc_codec_opts *c)
{
	if (c->level >= 0)
		return c->level;
	return c->codec == ARC_CODEC_GZIP ? 6 :
	       c->codec == ARC_CODEC_ZSTD ? 3 :
					    0;
}

char *arc_object_name(enum arc_method m, enum arc_codec c)
{
	const char *base = m == ARC_METHOD_TREE ? "backup.tar" : "rawbackup";
	const char *suffix = arc_codec_suffix(c);

	if (!*suffix && m == ARC_METHOD_RAW)
		suffix = ".img";
	return cm_xasprintf("%s%s", base, suffix);
}

static bool is_s3(const char *s)
{
	return cm_url_kind(s) == CM_URL_S3;
}

static bool is_local_dir(const char *path)
{
	struct stat st;
	size_t n = strlen(path);

	return (n && path[n - 1] == '/') ||
	       (stat(path, &st) == 0 && S_ISDIR(st.st_mode));
}

static void target_release(struct target *t)
{
	free(t->bucket);
	free(t->key);
	t->bucket = t->key = NULL;
}

static char *target_url(const struct target *t)
{
	if (t->bucket)
		return cm_xasprintf("s3://%s/%s", t->bucket, t->key);
	return cm_xstrdup(t->key);
}

/* The object's and the manifest's places, from dest and manifest. */
static int resolve_targets(const struct arc_run_opts *o, enum arc_method m,
			   struct target *obj, struct target *man,
			   struct cm_err *err)
{
	char *name = arc_object_name(m, o->codec.codec);
	int rc = 0;

	target_release(obj);
	target_release(man);
	if (is_s3(o->dest)) {
		char *key;

		rc = s3_parse_url(o->dest, &obj->bucket, &key, err);
		if (rc)
			goto out;
		if (!*key || key[strlen(key) - 1] == '/') {
			obj->key = cm_xasprintf("%s%s", key, name);
			man->key = cm_xasprintf("%smanifest.json", key);
		} else {
			obj->key = cm_xstrdup(key);
			man->key = cm_xasprintf("%s.manifest.json", key);
		}
		man->bucket = cm_xstrdup(obj->bucket);
		free(key);
	} else if (!strcmp(o->dest, "-")) {
		obj->key = cm_xstrdup("-");
	} else if (is_local_dir(o->dest)) {
		const char *sep =
			o->dest[strlen(o->dest) - 1] == '/' ? "" : "/";

		obj->key = cm_xasprintf("%s%s%s", o->dest, sep, name);
		man->key = cm_xasprintf("%s%smanifest.json", o->dest, sep);
	} else {
		obj->key = cm_xstrdup(o->dest);
		man->key = cm_xasprintf("%s.manifest.json", o->dest);
	}
	if (o->manifest) {
		target_release(man);
		if (is_s3(o->manifest))
			rc = s3_parse_url(o->manifest, &man->bucket, &man->key,
					  err);
		else
			man->key = cm_xstrdup(o->manifest);
	}
	if (rc == 0 && (obj->bucket || man->bucket) && !o->client)
		rc = cm_err_set(err, EINVAL, "an s3:// place needs a client");
out:
	free(name);
	return rc;
}

/* Fail early, before anything is mounted, when the object cannot go. */
static int check_dest(struct s3_client *client, const struct target *obj,
		      struct cm_err *err)
{
	char *dir, *slash;
	int rc = 0;

	if (obj->bucket) {
		rc = s3_head_bucket(client, obj->bucket, err);
		if (rc)
			cm_err_prefix(err, "s3://%s", obj->bucket);
		return rc;
	}
	if (!strcmp(obj->key, "-"))
		return 0;
	dir = cm_xstrdup(obj->key);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	if (access(slash ? (*dir ? dir : "/") : ".", W_OK) != 0)
		rc = cm_err_set(err, errno, "%s: %s", obj->key,
				errno == ENOENT ? "no such directory" :
						  strerror(errno));
	free(dir);
	return rc;
}

/* o->no_clobber: neither local place may exist yet. */
static int check_no_clobber(const struct target *obj, const struct target *man,
			    struct cm_err *err)
{
	const struct target *t[] = { obj, man };
	struct stat st;

	for (size_t i = 0; i < 2; i++) {
		if (t[i]->bucket || !t[i]->key || !strcmp(t[i]->key, "-"))
			continue;
		if (lstat(t[i]->key, &st) == 0)
			return cm_err_set(err, EEXIST, "%s: exists",
					  t[i]->key);
	}
	return 0;
}

static int write_manifest(struct s3_client *client, const struct target *man,
			  const char *text, struct cm_err *err)
{
	size_t len = strlen(text);
	uint8_t md5[CM_MD5_LEN];
	int rc;

	if (man->bucket) {
		cm_md5(text, len, md5);
		rc = s3_put_object(client, man->bucket, man->key, text, len,
				   md5, NULL, err);
		if (rc)
			cm_err_prefix(err, "manifest s3://%s/%s", man->bucket,
				      man->key);
		return rc;
	}
	rc = cm_write_file_atomic(man->key, text, len, err);
	if (rc)
		cm_err_prefix(err, "manifest");
	return rc;
}

/* ---- the index ---------------------------------------------------------- */

/* What the chain reports while it runs, for the index (aindex.h). */
struct index_build {
	struct aidx_writer *w;
	int rc;                  /* the first failure, kept for close */
	struct cm_err err;
};

static void on_member(void *ctx, const struct aidx_member *m)
{
	struct index_build *b = ctx;

	if (b->rc == 0)
		b->rc = aidx_writer_add_member(b->w, m, &b->err);
}

static int on_entry(void *ctx, const struct aidx_entry *e, struct cm_err *err)
{
	struct index_build *b = ctx;
	int rc = aidx_writer_add_entry(b->w, e, err);

	if (rc)
		cm_err_prefix(err, "index");
	return rc;
}

static enum aidx_codec index_codec(enum arc_codec c)
{
	return c == ARC_CODEC_GZIP ? AIDX_CODEC_GZIP :
	       c == ARC_CODEC_ZSTD ? AIDX_CODEC_ZSTD :
				     AIDX_CODEC_NONE;
}

/* Store the finished index beside the object, through the same kind of
 * sink as the archive (S3 upload or local file), hashed on the way. */
static int store_index(const struct arc_run_opts *o, const struct target *obj,
		       struct index_build *b, struct arc_run_result *res,
		       struct cm_err *err)
{
	struct arc_filter *sink, *hash;
	struct arc_hash_result h;
	unsigned char *buf = NULL;
	uint64_t size = 0, done = 0;
	char *key = cm_xasprintf("%s%s", obj->key, AIDX_SUFFIX);
	int fd = -1, rc;

	rc = aidx_writer_finish(b->w, res->bytes_written, res->counts.bytes,
				&fd, &size, err);
	if (rc)
		goto out;
	if (obj->bucket) {
		struct s3_upload_opts uo = o->upload;
		char *url = cm_xasprintf("s3://%s/%s", obj->bucket, key);

		/* the index's own journal hook and size; and the object is
		 * made: a cancel now would leave it without its index and
		 * manifest */
		uo.on_upload_id = o->on_index_upload_id;
		uo.cancel = NULL;
		uo.expected_size = size;
		rc = o->on_index ? o->on_index(o->object_ctx, url, err) : 0;
		free(url);
		if (rc)
			goto out;
		sink = arc_sink_s3_new(o->client, obj->bucket, key, &uo, err);
	} else {
		sink = arc_sink_file_new(key, err);
	}
	if (!sink) {
		rc = -EIO;
		goto out;
	}
	hash = arc_hash_new(sink);
	buf = cm_xmalloc(1 << 20);
	while (rc == 0 && done < size) {
		size_t n = size - done < (1 << 20) ? (size_t)(size - done)
						   : 1 << 20;

		rc = cm_pread_all(fd, buf, n, (off_t)done);
		if (rc)
			rc = cm_err_set(err, -rc, "index: read back: %s",
					strerror(-rc));
		else
			rc = arc_write(hash, buf, n, err);
		done += n;
	}
	if (rc == 0)
		rc = arc_close(hash, err);
	if (rc) {
		arc_abort(hash);
	} else {
		arc_hash_result(hash, &h);
		memcpy(res->index_sha256_hex, h.sha256_hex,
		       sizeof(res->index_sha256_hex));
		res->index_size = h.bytes;
		res->index_url = obj->bucket ? cm_xasprintf("s3://%s/%s",
							    obj->bucket, key)
					     : cm_xstrdup(key);
	}
	arc_free(hash);
out:
	if (rc)
		cm_err_prefix(err, "index %s", key);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(key);
	return rc;
}

static char *manifest_text(const struct arc_run_opts *o,
			   const struct arc_run_result *res, time_t started,
			   time_t finished, double seconds)
{
	struct cm_json *root = cm_json_new_object();
	struct cm_json *codec;
	char *abs = o->has_src_fd ? NULL : realpath(o->src, NULL);
	unsigned threads = o->codec.threads;
	char when[32];
	char *text;

	if (!threads)
		threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	cm_json_add_str(root, "vaultfs_version", VAULTFS_VERSION);
	cm_json_add_str(root, "source", abs ? abs : o->src);
	cm_json_add_str(root, "mode", arc_mode_name(o->mode));
	cm_json_add_str(root, "object", res->object_url);
	codec = cm_json_add_object(root, "compression");
	cm_json_add_str(codec, "codec", arc_codec_name(o->codec.codec));
	cm_json_add_num(codec, "level", arc_codec_effective_level(&o->codec));
	cm_json_add_num(codec, "threads", threads);
	cm_json_add_u64(root, "bytes_written", res->bytes_written);
	cm_json_add_str(root, "sha256", res->sha256_hex);
	if (res->index_url) {
		struct cm_json *ix;

		cm_json_add_bool(root, "indexed", true);
		ix = cm_json_add_object(root, "index");
		cm_json_add_str(ix, "object", res->index_url);
		cm_json_add_u64(ix, "size", res->index_size);
		cm_json_add_str(ix, "sha256", res->index_sha256_hex);
		cm_json_add_u64(root, "members", res->members);
		cm_json_add_u64(root, "slice_bytes", o->codec.block_size ?
					     o->codec.block_size :
					     ARC_SLICE_DEFAULT);
	}
	if (is_s3(res->object_url)) {
		cm_json_add_str(root, "etag", res->etag);
		cm_json_add_u64(root, "parts", res->parts);
	}
	cm_time_iso8601(started, when, sizeof(when));
	cm_json_add_str(root, "started", when);
	cm_time_iso8601(finished, when, sizeof(when));
	cm_json_add_str(root, "finished", when);
	cm_json_add_num(root, "duration_seconds", seconds);
	arc_stats_to_json(&res->stats, root);
	arc_counts_to_json(res->method, &res->counts, root);
	text = cm_json_print(root);
	cm_json_free(root);
	free(abs);
	return text;
}

void arc_run_result_release(struct arc_run_result *res)
{
	free(res->object_url);
	free(res->manifest_url);
	free(res->index_url);
	arc_stats_release(&res->stats);
	memset(res, 0, sizeof(*res));
}

int arc_run(const struct arc_run_opts *o, struct arc_run_result *res,
	    struct cm_err *err)
{
	struct arc_source_opts sopts = { 0 };
	struct arc_plan *plan = NULL;
	struct arc_devs *devs = NULL;
	struct arc_filter *chain = NULL, *hash = NULL, *sink = NULL;
	struct arc_filter *count = NULL;  /* borrowed: the chain's first */
	struct target obj = { 0 }, man = { 0 };
	struct arc_codec_opts copts = o->codec;
	struct index_build ib = { 0 };
	struct arc_hash_result hres;
	struct s3_upload_result up = { 0 };
	time_t started = time(NULL);
	double t0 = cm_now_s();
	struct stat st;
	char *text = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	arc_stats_init(&res->stats);
	if ((o->has_src_fd ? fstat(o->src_fd, &st) : stat(o->src, &st)) != 0) {
		rc = cm_err_set(err, errno, "%s: %s", o->src, strerror(errno));
		goto out;
	}
	/* the object's name depends on the method, its place does not */
	rc = resolve_targets(o, ARC_METHOD_TREE, &obj, &man, err);
	if (rc == 0)
		rc = check_dest(o->client, &obj, err);
	if (rc)
		goto out;

	if (o->on_resource)
		devs = arc_devs_new(NULL, o->on_resource, o->resource_ctx);
	sopts.cancel = o->cancel;
	sopts.progress = o->progress;
	sopts.progress_ctx = o->progress_ctx;
	sopts.devs = devs;
	res->stats.strict = o->strict;
	sopts.overlay_dir = o->overlay_dir;
	sopts.overlay_limit = o->overlay_limit;
	rc = o->has_src_fd ? arc_plan_new_fd(o->src_fd, o->src, o->mode,
					     &sopts, &res->stats, &plan, err)
			   : arc_plan_new(o->src, o->mode, &sopts, &res->stats,
					  &plan, err);
	if (rc == 0)
		rc = arc_stats_check(&res->stats, err); /* a partition left out */
	if (rc)
		goto out;
	res->method = arc_plan_method(plan);
	rc = resolve_targets(o, res->method, &obj, &man, err);
	if (rc == 0 && o->no_clobber)
		rc = check_no_clobber(&obj, &man, err);
	if (rc)
		goto out;
	res->object_url = target_url(&obj);
	if (man.key)
		res->manifest_url = target_url(&man);
	if (o->on_object)
		o->on_object(o->object_ctx, res->object_url, res->method);

	if (obj.bucket)
		sink = arc_sink_s3_new(o->client, obj.bucket, obj.key,
				       &o->upload, err);
	else
		sink = arc_sink_file_new(obj.key, err);
	if (!sink) {
		rc = -EIO;
		goto out;
	}
	if (!obj.bucket && arc_sink_file_stat(sink, &st) == 0 &&
	    S_ISREG(st.st_mode)) {
		/* the plan borrows sopts: its walk has not begun */
		sopts.has_exclude = true;
		sopts.exclude_dev = st.st_dev;
		sopts.exclude_ino = st.st_ino;
	}
	hash = arc_hash_new(sink);
	/* the index beside the object: not for stdout, which has no beside */
	if (strcmp(obj.key, "-") != 0) {
		ib.w = aidx_writer_new(res->method == ARC_METHOD_TREE ?
					       AIDX_KIND_TAR : AIDX_KIND_RAW,
				       index_codec(o->codec.codec),
				       o->overlay_dir &&
						       access(o->overlay_dir,
							      W_OK) == 0 ?
					       o->overlay_dir : NULL,
				       0, err);
		copts.on_member = on_member;
		copts.member_ctx = &ib;
	}
	chain = arc_codec_new(&copts, hash, err);
	if (!chain) { /* the codec freed hash and sink */
		rc = -EINVAL;
		goto out;
	}
	/* what the stream holds, for the manifest and the verifier */
	chain = count = arc_count_new(res->method, chain);
	if (ib.w && res->method == ARC_METHOD_TREE)
		arc_count_on_entry(count, on_entry, &ib);
	rc = arc_plan_run(plan, chain, err);
	/* --strict: whatever source recorded the item, nothing incomplete
	 * is closed (the sources check as they go; this is the last word) */
	if (rc == 0)
		rc = arc_stats_check(&res->stats, err);
	/* the source is read: release mounts and loop devices now, before
	 * the codec drains (zstd at a high level may take seconds to stop)
	 * and before anything else can fail */
	arc_plan_free(plan);
	plan = NULL;
	if (rc == 0)
		rc = arc_close(chain, err);
	if (rc) {
		arc_abort(chain);
		goto out;
	}

	arc_hash_result(hash, &hres);
	arc_count_result(count, &res->counts);
	res->bytes_written = hres.bytes;
	memcpy(res->sha256_hex, hres.sha256_hex, sizeof(res->sha256_hex));
	if (ib.w) {
		if (o->codec.codec == ARC_CODEC_NONE) {
			/* no members: one range, the whole stream */
			struct aidx_member m = { 0, hres.bytes, 0, hres.bytes };

			on_member(&ib, &m);
		}
		if (ib.rc) {
			*err = ib.err;
			rc = ib.rc;
			goto out;
		}
		res->members = aidx_writer_members(ib.w);
		rc = store_index(o, &obj, &ib, res, err);
		if (rc)
			goto out;
	}
	if (obj.bucket) {
		arc_sink_s3_result(sink, &up);
		memcpy(res->etag, up.etag, sizeof(res->etag));
		res->parts = up.parts;
	}
	if (man.key) {
		text = manifest_text(o, res, started, time(NULL),
				     cm_now_s() - t0);
		rc = write_manifest(o->client, &man, text, err);
	}
out:
	arc_plan_free(plan);
	arc_devs_free(devs);
	arc_free(chain);
	aidx_writer_free(ib.w);
	free(text);
	target_release(&obj);
	target_release(&man);
	return rc;
}
