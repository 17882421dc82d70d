/*
 * s3_upload.c - see s3_upload.h.
 *
 * Buffers. The upload owns up to `nbufs` part buffers, as many as parts
 * may be in flight (`concurrency`, at least 2), made on first need. While
 * the writer fills one, the others upload; a writer that outruns the
 * network waits with every buffer in flight. One more buffer would keep
 * `concurrency` parts in flight during the few milliseconds a fast writer
 * takes to fill a part, for a whole part of memory more: not worth it
 * (measured: no difference in throughput, 8 MiB more RSS). At any time each
 * buffer is in exactly one place:
 *
 *   free list (->free_bufs)  ->  the writer (->cur, or ->held for part 1)
 *        ^                            |  full
 *        |                            v
 *        +--------- a worker  <-  the pool's queue
 *
 * The writer fills ->cur. When it is full and more bytes come, it goes to
 * the pool and the writer takes the next buffer off the free list, waiting
 * on ->cond while the list is empty and every buffer exists. Part 1 is the
 * exception: when it fills, it is only ->held, because if the stream ends
 * right there the object goes as one PutObject; the first byte committed
 * to part 2 creates the multipart upload and sends part 1 off.
 *
 * A buffer carries the part number it holds. Sizes follow
 * s3_part_size_for(); a buffer smaller than the part it is taken for is
 * reallocated (sizes only grow), so at most nbufs buffers ever exist.
 *
 * Workers upload a part (signed with its SHA-256, so S3 checks the body
 * against it), record the answered ETag - an MD5 - in ->parts[number - 1]
 * (the object's ETag is checked against those at the end), and put the
 * buffer back on the free list. The MD5 of the bytes is computed only with
 * unsigned payloads, where it goes out as Content-MD5 and the answered
 * ETag must equal it: with a signed payload S3 has already verified the
 * body, and MD5 would cost more CPU than SHA-256 and the upload together
 * on a machine with SHA extensions. The first failure of any worker is
 * kept in ->fail_err and makes later parts skip their upload; the writer
 * sees ->failed at its next call, waits until nothing is in flight, aborts
 * the multipart upload and returns that error.
 *
 * Files (s3_upload_file). The same machinery with another kind of buffer:
 * a buffer no longer holds its part's bytes, only the part's place in the
 * file (->off, ->len) and a small scratch area (FILE_CHUNK). The caller's
 * thread takes a buffer per part off the same free list, which is what
 * bounds the parts in flight, and queues it; nothing is copied. The worker
 * reads its part twice with pread: first through the scratch area to hash
 * it (SHA-256 for the signature, or MD5 for Content-MD5 with unsigned
 * payloads), then while libcurl sends it (an s3_body whose reader preads
 * straight into libcurl's upload buffer); a retry reads it again. Memory is
 * nbufs x FILE_CHUNK whatever the part size; the file's pages sit in the
 * page cache between the two passes. A file has a size, so there is no
 * holding back: one part means one PutObject, more mean a multipart
 * upload from the first part on. The file must not change meanwhile: a
 * read that ends early fails its part, and before the request that makes
 * the object (PutObject, CompleteMultipartUpload) the file must still have
 * the size and mtime it had at the start; otherwise the upload fails and
 * is aborted, naming the file. (A part changed between its two passes is
 * refused by S3, whose hash no longer matches.)
 *
 * Orphans and lost answers (see s3_upload.h): with opts.key_is_ours the
 * create is followed by s3_abort_orphans() keeping our id, and a failed
 * create by one keeping none; a complete that failed in a way that may
 * hide a success goes through reconcile_complete() and
 * s3_complete_matches() before it counts as failed.
 *
 * Sending is one function for both kinds (send_part), used by the workers
 * and by the single PutObject, and so are the records, ETag checks and
 * abort: the two kinds differ only in how a buffer is filled and read.
 *
 * Threads and locks: one lock, ->lock, guards the free list, the in-flight
 * count, the part records and the failure. Workers hold it only to take or
 * return state, never across network or hashing. ->upload_id, and for a
 * file ->fd, ->file_name and ->file_size, are written by the caller's
 * thread before the first part is queued and only read afterwards (the
 * pool's queue orders the two). Byte counters are atomics.
 */
#include "s3_upload.h"
#include "budget.h"
#include "log.h"
#include "mem.h"
#include "queue.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONCURRENCY 4
#define MAX_CONCURRENCY	    64
#define FILE_CHUNK	    (256 * 1024) /* a file part is hashed by this */

struct part_buf {
	struct s3_upload *u;
	uint8_t *data;	       /* owned: the part, or a file's scratch */
	size_t cap;	       /* bytes allocated */
	size_t limit;	       /* size of the part it holds */
	size_t len;	       /* bytes filled (of a file: the part's size) */
	uint64_t off;	       /* a file's part: where it starts */
	unsigned number;       /* part number, 1-based */
	struct part_buf *next; /* free-list link */
	uint64_t charged;      /* bytes taken from opts.budget for ->data */
};

struct part_rec {
	uint8_t md5[CM_MD5_LEN];
	char etag[S3_ETAG_MAX];
};

enum upload_state {
	UPLOAD_OPEN = 0,
	UPLOAD_DONE,
	UPLOAD_ABORTED,
};

struct s3_upload {
	struct s3_client *client; /* borrowed */
	char *bucket;
	char *key;
	struct s3_upload_opts opts;
	bool check_etags; /* ETags are MD5s (no SSE-KMS) */
	bool want_md5;	  /* check_etags or unsigned payloads */
	unsigned nbufs;

	/* the writer's thread only */
	enum upload_state state;
	struct part_buf *cur;	/* being filled */
	struct part_buf *held;	/* part 1, full, not yet sent */
	unsigned next_number;	/* part number of the next buffer */
	unsigned dispatched;	/* parts handed to the pool */
	unsigned nmade;		/* entries of ->bufs */
	uint64_t spare;		/* taken from opts.budget, not yet used */
	struct part_buf **bufs; /* every buffer, owned */
	struct cm_pool *pool;	/* made with the multipart upload */
	char *upload_id;	/* see the top of the file */

	/* s3_upload_file: see the top of the file */
	int fd; /* -1: bytes come from writes */
	char *file_name;
	uint64_t file_size;
	struct timespec file_mtime;

	uint64_t bytes_in;   /* atomic */
	uint64_t bytes_done; /* atomic */

	pthread_mutex_t lock;
	pthread_cond_t cond;	    /* a buffer came back, a part ended */
	struct part_buf *free_bufs; /* protected by ->lock */
	unsigned in_flight;	    /* protected by ->lock */
	struct part_rec *parts;	    /* protected by ->lock */
	size_t parts_cap;	    /* protected by ->lock */
	bool failed;		    /* protected by ->lock */
	struct cm_err fail_err;	    /* protected by ->lock: the first */
};

static uint64_t round_up_mib(uint64_t n)
{
	return (n + S3_MIB - 1) / S3_MIB * S3_MIB;
}

uint64_t s3_part_size_for(unsigned part_number, uint64_t expected_size,
			  uint64_t base)
{
	unsigned step;
	uint64_t grown, p, fit;

	if (!base)
		base = S3_DEFAULT_PART_SIZE;
	base = round_up_mib(base);
	if (base < S3_MIN_PART_SIZE)
		base = S3_MIN_PART_SIZE;
	if (base > S3_MAX_PART_SIZE)
		base = S3_MAX_PART_SIZE;
	if (part_number < 1)
		part_number = 1;

	step = (part_number - 1) / S3_PART_GROWTH_STEP;
	grown = step >= 12 ? S3_MAX_PART_SIZE : base << step;
	if (grown > S3_MAX_PART_SIZE)
		grown = S3_MAX_PART_SIZE;
	if (!expected_size)
		return grown;

	p = (expected_size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
	if (p < base)
		p = base;
	p = round_up_mib(p);
	if (p > S3_MAX_PART_SIZE)
		p = S3_MAX_PART_SIZE;
	fit = (expected_size + p - 1) / p;
	if (part_number <= fit || grown < p)
		return p;
	return grown; /* more data than expected: grow from here on */
}

static void record_failure(struct s3_upload *u, const struct cm_err *e)
{
	pthread_mutex_lock(&u->lock);
	if (!u->failed) {
		u->failed = true;
		u->fail_err = *e;
		if (!u->fail_err.code)
			u->fail_err.code = EIO;
	}
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

static bool has_failed(struct s3_upload *u)
{
	bool f;

	pthread_mutex_lock(&u->lock);
	f = u->failed;
	pthread_mutex_unlock(&u->lock);
	return f;
}

/* Failed, or cancelled now (then recorded as the failure, -ECANCELED,
 * unless another came first). */
static bool failed_or_cancelled(struct s3_upload *u)
{
	struct cm_err e;

	if (u->opts.cancel && atomic_load(u->opts.cancel)) {
		cm_err_set(&e, ECANCELED, "s3://%s/%s: upload cancelled",
			   u->bucket, u->key);
		record_failure(u, &e);
		return true;
	}
	return has_failed(u);
}

/* Wait until no part is in flight, then stop the workers. */
static void drain(struct s3_upload *u)
{
	pthread_mutex_lock(&u->lock);
	while (u->in_flight)
		pthread_cond_wait(&u->cond, &u->lock);
	pthread_mutex_unlock(&u->lock);
	cm_pool_free(u->pool);
	u->pool = NULL;
}

static void abort_remote(struct s3_upload *u)
{
	struct cm_err e;

	if (!u->upload_id)
		return;
	cm_err_clear(&e);
	if (s3_abort_multipart_upload(u->client, u->bucket, u->key,
				      u->upload_id, &e))
		cm_error("s3: could not abort multipart upload %s of "
			 "s3://%s/%s: %s",
			 u->upload_id, u->bucket, u->key, e.msg);
	else
		cm_debug("s3: aborted multipart upload of s3://%s/%s",
			 u->bucket, u->key);
}

/* The end of every failure: nothing left in flight, nothing left on the
 * server, the first error to the caller. */
static int fail_now(struct s3_upload *u, struct cm_err *err)
{
	struct cm_err e;

	drain(u);
	abort_remote(u);
	u->state = UPLOAD_ABORTED;
	pthread_mutex_lock(&u->lock);
	e = u->fail_err;
	pthread_mutex_unlock(&u->lock);
	if (err)
		*err = e;
	return -(e.code ? e.code : EIO);
}

static int fail_with(struct s3_upload *u, const struct cm_err *e,
		     struct cm_err *err)
{
	record_failure(u, e);
	return fail_now(u, err);
}

static int not_open(struct s3_upload *u, struct cm_err *err)
{
	struct cm_err e;
	bool failed;

	pthread_mutex_lock(&u->lock);
	failed = u->failed;
	e = u->fail_err;
	pthread_mutex_unlock(&u->lock);
	if (u->state == UPLOAD_ABORTED && failed && e.code) {
		if (err)
			*err = e;
		return -e.code;
	}
	return cm_err_set(err, EPIPE, "s3://%s/%s: upload already %s",
			  u->bucket, u->key,
			  u->state == UPLOAD_DONE ? "finished" : "aborted");
}

struct s3_upload *s3_upload_new(struct s3_client *client, const char *bucket,
				const char *key,
				const struct s3_upload_opts *opts,
				struct cm_err *err)
{
	static const struct s3_upload_opts none;
	struct s3_upload *u;

	if (!opts)
		opts = &none;
	if (!bucket || !*bucket || !key || !*key) {
		cm_err_set(err, EINVAL, "upload: bucket and key needed");
		return NULL;
	}
	if (opts->part_size && (opts->part_size < S3_MIN_PART_SIZE ||
				opts->part_size > S3_MAX_PART_SIZE)) {
		cm_err_set(err, EINVAL,
			   "part size %llu: must be between "
			   "5 MiB and 5 GiB",
			   (unsigned long long)opts->part_size);
		return NULL;
	}
	if (opts->concurrency > MAX_CONCURRENCY) {
		cm_err_set(err, EINVAL, "concurrency %u: at most %d",
			   opts->concurrency, MAX_CONCURRENCY);
		return NULL;
	}
	u = cm_xcalloc(1, sizeof(*u));
	u->client = client;
	u->bucket = cm_xstrdup(bucket);
	u->key = cm_xstrdup(key);
	u->opts = *opts;
	if (!u->opts.concurrency)
		u->opts.concurrency = DEFAULT_CONCURRENCY;
	u->check_etags = s3_client_etag_is_md5(client);
	u->want_md5 = s3_client_unsigned_payload(client);
	/* part 1 is held while part 2 fills: at least two */
	u->nbufs = u->opts.concurrency < 2 ? 2 : u->opts.concurrency;
	u->bufs = cm_xcalloc(u->nbufs, sizeof(*u->bufs));
	u->spare = opts->budget ? opts->budget_reserved : 0;
	u->next_number = 1;
	u->fd = -1;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	return u;
}

static void give_back(struct s3_upload *u, struct part_buf *b)
{
	pthread_mutex_lock(&u->lock);
	b->next = u->free_bufs;
	u->free_bufs = b;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* Under ->lock, no buffer free: whether to make one more. Without a
 * budget, up to nbufs. With one, the first buffer, and one while none is
 * in flight (part 1 held, part 2 begins), are always made (their bytes are
 * waited for by the caller); others only while the budget has room at
 * once (*charged: taken), else the writer waits for a part to come back. */
static bool more_buffers_locked(struct s3_upload *u, uint64_t room,
				uint64_t *charged)
{
	*charged = 0;
	if (u->nmade == u->nbufs)
		return false;
	if (!u->opts.budget || u->nmade == 0 || u->in_flight == 0)
		return true;
	if (!cm_budget_try(u->opts.budget, room))
		return false;
	*charged = room;
	return true;
}

/* Take a buffer for the next part; NULL when the upload failed (with the
 * failure recorded). */
static struct part_buf *take_buffer(struct s3_upload *u)
{
	unsigned number = u->next_number;
	struct part_buf *b = NULL;
	uint64_t size, room, charged = 0;
	struct cm_err e;

	if (number > S3_MAX_PARTS) {
		cm_err_set(&e, EFBIG,
			   "s3://%s/%s: more than %d parts; give "
			   "the expected size or a larger part size",
			   u->bucket, u->key, S3_MAX_PARTS);
		record_failure(u, &e);
		return NULL;
	}
	size =
	    s3_part_size_for(number, u->opts.expected_size, u->opts.part_size);
	room = size;
	if (u->fd >= 0)
		room = u->file_size < FILE_CHUNK ? u->file_size : FILE_CHUNK;
	pthread_mutex_lock(&u->lock);
	while (!u->free_bufs && !u->failed &&
	       !more_buffers_locked(u, room, &charged))
		pthread_cond_wait(&u->cond, &u->lock);
	if (u->failed)
		goto out;
	if (u->free_bufs) {
		b = u->free_bufs;
		u->free_bufs = b->next;
	} else {
		b = cm_xcalloc(1, sizeof(*b));
		b->u = u;
		b->charged = charged;
		u->bufs[u->nmade++] = b;
	}
	if (number > u->parts_cap) {
		size_t cap = u->parts_cap ? 2 * u->parts_cap : 64;

		if (cap > S3_MAX_PARTS)
			cap = S3_MAX_PARTS;
		u->parts = cm_xrealloc(u->parts, cap * sizeof(*u->parts));
		u->parts_cap = cap;
	}
out:
	pthread_mutex_unlock(&u->lock);
	if (!b)
		return NULL;
	if (u->opts.budget && b->charged < room) {
		/* this writer's only way on: wait for the bytes. The first
		 * buffer waits for two (kept in ->spare for the second):
		 * part 2 needs a buffer while part 1 is held, and a writer
		 * holding one buffer must not wait on others that do too */
		uint64_t need = room - b->charged;
		uint64_t spare = u->nmade == 1 && !u->spare ? room : 0;

		if (u->spare >= need) {
			u->spare -= need;
		} else if (cm_budget_take(u->opts.budget,
					  need - u->spare + spare)) {
			cm_err_set(&e, ECANCELED,
				   "s3://%s/%s: no memory for a part "
				   "(shutting down)",
				   u->bucket, u->key);
			give_back(u, b);
			record_failure(u, &e);
			return NULL;
		} else {
			u->spare = spare;
		}
		b->charged = room;
	}
	if (b->cap < room) {
		free(b->data);
		b->data = cm_xmalloc(room);
		b->cap = room;
	}
	b->limit = size;
	b->len = 0;
	b->off = 0;
	b->number = number;
	b->next = NULL;
	u->next_number++;
	return b;
}

static void md5_hex(const uint8_t md5[CM_MD5_LEN], char *out)
{
	cm_hex(md5, CM_MD5_LEN, out);
}

/* The 16 bytes of an ETag that is a hex MD5 (quotes allowed). */
static bool etag_md5(const char *etag, uint8_t out[CM_MD5_LEN])
{
	size_t n;

	if (*etag == '"')
		etag++;
	n = strcspn(etag, "\"");
	if (n != 2 * CM_MD5_LEN)
		return false;
	for (size_t i = 0; i < CM_MD5_LEN; i++) {
		unsigned v;

		if (sscanf(etag + 2 * i, "%2x", &v) != 1 ||
		    !isxdigit((unsigned char)etag[2 * i]) ||
		    !isxdigit((unsigned char)etag[2 * i + 1]))
			return false;
		out[i] = (uint8_t)v;
	}
	return true;
}

/* n bytes of the file from off into p. The file ending early means that
 * it changed under the upload: that fails the part. */
static int read_file(struct s3_upload *u, uint64_t off, void *p, size_t n,
		     struct cm_err *err)
{
	uint8_t *dst = p;

	while (n) {
		ssize_t r = pread(u->fd, dst, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cm_err_set(err, errno, "%s: %s", u->file_name,
					  strerror(errno));
		if (r == 0)
			return cm_err_set(err, EIO,
					  "%s: changed while being uploaded: "
					  "it ends at byte %" PRIu64
					  ", not %" PRIu64,
					  u->file_name, off, u->file_size);
		dst += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

/* The reader of a file part's s3_body: offsets within the part. */
static int read_part(void *ctx, uint64_t off, void *p, size_t n,
		     struct cm_err *err)
{
	struct part_buf *b = ctx;

	return read_file(b->u, b->off + off, p, n, err);
}

/* The first pass over a file part, through its scratch area: the SHA-256
 * of a signed payload, or the MD5 that goes as Content-MD5. */
static int hash_file_part(struct s3_upload *u, struct part_buf *b,
			  uint8_t sha[CM_SHA256_LEN], uint8_t md5[CM_MD5_LEN],
			  struct cm_err *err)
{
	struct cm_digest *d =
	    cm_digest_new(u->want_md5 ? CM_DIGEST_MD5 : CM_DIGEST_SHA256);
	size_t done = 0;
	int rc = 0;

	while (done < b->len) {
		size_t n = b->len - done < b->cap ? b->len - done : b->cap;

		rc = read_file(u, b->off + done, b->data, n, err);
		if (rc)
			break;
		cm_digest_update(d, b->data, n);
		done += n;
	}
	cm_digest_final(d, u->want_md5 ? md5 : sha);
	cm_digest_free(d);
	return rc;
}

/* Send what b holds as part b->number, or (single) as the whole object by
 * PutObject, and check the answered ETag where it is an MD5. md5 receives
 * the MD5 of the bytes: computed with unsigned payloads, where it goes as
 * Content-MD5; otherwise taken from a part's ETag. */
static int send_part(struct s3_upload *u, struct part_buf *b, bool single,
		     uint8_t md5[CM_MD5_LEN], char etag[S3_ETAG_MAX],
		     struct cm_err *e)
{
	uint8_t sha[CM_SHA256_LEN];
	struct s3_body body = {.len = b->len};
	char part[32] = "", want[2 * CM_MD5_LEN + 1];
	const char *op = single ? "PutObject" : "UploadPart";
	int rc;

	if (u->fd < 0) {
		body.data = b->data;
		if (u->want_md5)
			cm_md5(b->data, b->len, md5);
	} else {
		rc = hash_file_part(u, b, sha, md5, e);
		if (rc)
			return rc;
		body.read = read_part;
		body.ctx = b;
		body.sha256 = sha;
	}
	if (u->want_md5)
		body.md5 = md5;
	body.if_none_match = single && u->opts.if_none_match;
	body.cancel = u->opts.cancel;
	if (single)
		rc = s3_put_object_body(u->client, u->bucket, u->key, &body,
					etag, e);
	else
		rc = s3_upload_part_body(u->client, u->bucket, u->key,
					 u->upload_id, b->number, &body, etag,
					 e);
	if (rc || !u->check_etags)
		return rc;
	if (!single)
		snprintf(part, sizeof(part), ": part %u", b->number);
	if (u->want_md5) {
		md5_hex(md5, want);
		if (!s3_etag_equal(etag, want))
			return cm_err_set(e, EIO,
					  "%s s3://%s/%s%s: ETag '%s' is not "
					  "the MD5 %s of the bytes sent",
					  op, u->bucket, u->key, part, etag,
					  want);
	} else if (!single && !etag_md5(etag, md5)) {
		return cm_err_set(e, EIO,
				  "%s s3://%s/%s%s: ETag '%s' is not an MD5",
				  op, u->bucket, u->key, part, etag);
	}
	return 0;
}

/* A worker: one part, start to end. */
static void part_task(void *arg)
{
	struct part_buf *b = arg;
	struct s3_upload *u = b->u;
	uint8_t md5[CM_MD5_LEN] = {0};
	char etag[S3_ETAG_MAX] = "";
	struct cm_err e;
	int rc = 0;

	cm_err_clear(&e);
	if (!failed_or_cancelled(u))
		rc = send_part(u, b, false, md5, etag, &e);
	pthread_mutex_lock(&u->lock);
	if (rc) {
		if (!u->failed) {
			u->failed = true;
			u->fail_err = e;
		}
	} else if (!u->failed) {
		struct part_rec *r = &u->parts[b->number - 1];

		memcpy(r->md5, md5, sizeof(md5));
		snprintf(r->etag, sizeof(r->etag), "%s", etag);
		__atomic_add_fetch(&u->bytes_done, b->len, __ATOMIC_RELAXED);
	}
	b->next = u->free_bufs;
	u->free_bufs = b;
	u->in_flight--;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* ---- orphans of lost create answers ------------------------------------ */

struct key_uploads {
	const char *key;
	char **ids;
	size_t n;
};

static int collect_key_upload(void *ctx, const struct s3_upload_entry *e)
{
	struct key_uploads *m = ctx;

	if (strcmp(e->key, m->key) != 0)
		return 0; /* a longer key under the same prefix: not ours */
	m->ids = cm_xrealloc(m->ids, (m->n + 1) * sizeof(*m->ids));
	m->ids[m->n++] = cm_xstrdup(e->upload_id);
	return 0;
}

static void key_uploads_release(struct key_uploads *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->ids[i]);
	free(m->ids);
}

int s3_abort_orphans(struct s3_client *c, const char *bucket, const char *key,
		     const char *keep_id, unsigned *aborted,
		     struct cm_err *err)
{
	struct key_uploads m = {.key = key};
	unsigned n = 0;
	int rc;

	rc = s3_list_multipart_uploads(c, bucket, key, collect_key_upload, &m,
				       err);
	for (size_t i = 0; i < m.n && !rc; i++) {
		if (keep_id && !strcmp(m.ids[i], keep_id))
			continue;
		rc = s3_abort_multipart_upload(c, bucket, key, m.ids[i], err);
		if (!rc) {
			n++;
			cm_info("s3: aborted upload %s of s3://%s/%s, which "
				"nobody recorded (a create whose answer was "
				"lost, or a crash)",
				m.ids[i], bucket, key);
		}
	}
	key_uploads_release(&m);
	if (aborted)
		*aborted = n;
	return rc;
}

/* A create failed, or succeeded after attempts whose answers were lost:
 * abort what they may have left (a key of our own), or say what is there
 * (a key someone else may write). keep_id: our upload, or NULL. */
static void orphans_after_create(struct s3_upload *u, const char *keep_id)
{
	struct key_uploads m = {.key = u->key};
	struct cm_err e;

	cm_err_clear(&e);
	if (u->opts.key_is_ours) {
		if (s3_abort_orphans(u->client, u->bucket, u->key, keep_id,
				     NULL, &e))
			cm_warn("s3: s3://%s/%s: could not clear uploads "
				"left by lost create answers: %s",
				u->bucket, u->key, e.msg);
		return;
	}
	if (keep_id)
		return;
	if (s3_list_multipart_uploads(u->client, u->bucket, u->key,
				      collect_key_upload, &m, &e) == 0)
		for (size_t i = 0; i < m.n; i++)
			cm_warn("s3: s3://%s/%s: upload %s is in progress "
				"(perhaps made by the failed create, perhaps "
				"another writer's): not aborted",
				u->bucket, u->key, m.ids[i]);
	key_uploads_release(&m);
}

/* Create the multipart upload and tell the caller its id. */
static int start_multipart(struct s3_upload *u, struct cm_err *err)
{
	int rc;

	rc = s3_create_multipart_upload(u->client, u->bucket, u->key,
					&u->upload_id, err);
	if (rc) {
		orphans_after_create(u, NULL);
		return rc;
	}
	cm_debug("s3: multipart upload of s3://%s/%s started", u->bucket,
		 u->key);
	if (u->opts.on_upload_id) {
		rc = u->opts.on_upload_id(u->opts.ctx, u->upload_id, err);
		if (rc)
			return rc < 0
				   ? rc
				   : cm_err_set(err, EIO, "upload id refused");
	}
	/* a retried create may have left a first upload behind */
	if (u->opts.key_is_ours)
		orphans_after_create(u, u->upload_id);
	u->pool = cm_pool_new(u->opts.concurrency, u->nbufs);
	return 0;
}

/* Hand a full buffer to the pool, creating the upload first if need be.
 * A failure is recorded (the caller then goes through fail_now()). */
static int dispatch(struct s3_upload *u, struct part_buf *b)
{
	struct cm_err e;
	int rc;

	if (!u->upload_id) {
		cm_err_clear(&e);
		rc = start_multipart(u, &e);
		if (rc) {
			give_back(u, b);
			record_failure(u, &e);
			return rc;
		}
	}
	pthread_mutex_lock(&u->lock);
	u->in_flight++;
	pthread_mutex_unlock(&u->lock);
	u->dispatched++;
	/* never blocks: the queue holds as many tasks as there are buffers */
	if (cm_pool_submit(u->pool, part_task, b) != 0)
		abort(); /* the pool lives until drain(): a bug */
	return 0;
}

int s3_upload_reserve(struct s3_upload *u, void **p, size_t *n,
		      struct cm_err *err)
{
	int rc;

	if (u->state != UPLOAD_OPEN)
		return not_open(u, err);
	if (failed_or_cancelled(u))
		return fail_now(u, err);
	if (u->cur && u->cur->len < u->cur->limit)
		goto room;
	if (u->cur) {
		/* full, and more is coming */
		if (u->cur->number == 1) {
			u->held = u->cur;
		} else {
			rc = dispatch(u, u->cur);
			u->cur = NULL;
			if (rc)
				return fail_now(u, err);
		}
		u->cur = NULL;
	}
	u->cur = take_buffer(u);
	if (!u->cur)
		return fail_now(u, err);
room:
	*p = u->cur->data + u->cur->len;
	*n = u->cur->limit - u->cur->len;
	return 0;
}

int s3_upload_commit(struct s3_upload *u, size_t n, struct cm_err *err)
{
	struct part_buf *held;

	if (u->state != UPLOAD_OPEN)
		return not_open(u, err);
	if (!n)
		return 0;
	if (!u->cur || n > u->cur->limit - u->cur->len)
		abort(); /* committing more than reserved: a bug */
	u->cur->len += n;
	__atomic_add_fetch(&u->bytes_in, n, __ATOMIC_RELAXED);
	if (!u->held)
		return 0;
	/* a second part has begun: the object goes multipart */
	held = u->held;
	u->held = NULL;
	if (dispatch(u, held))
		return fail_now(u, err);
	return 0;
}

int s3_upload_write(struct s3_upload *u, const void *p, size_t n,
		    struct cm_err *err)
{
	const char *src = p;

	while (n) {
		/* set by s3_upload_reserve when it returns 0, which gcc -O2
		 * cannot see through its failure paths */
		void *dst = NULL;
		size_t room = 0;
		int rc = s3_upload_reserve(u, &dst, &room, err);

		if (rc)
			return rc;
		if (room > n)
			room = n;
		memcpy(dst, src, room);
		rc = s3_upload_commit(u, room, err);
		if (rc)
			return rc;
		src += room;
		n -= room;
	}
	return 0;
}

/* Before the request that makes the object: a file must be as it was when
 * the upload began. A change after its part was read would not show in
 * the parts, and the object would be torn. */
static int file_changed(struct s3_upload *u, struct cm_err *err)
{
	struct stat st;

	if (u->fd < 0)
		return 0;
	if (fstat(u->fd, &st) != 0)
		return cm_err_set(err, errno, "%s: %s", u->file_name,
				  strerror(errno));
	if ((uint64_t)st.st_size != u->file_size)
		return cm_err_set(err, EIO,
				  "%s: changed while being uploaded: %" PRIu64
				  " bytes, not %" PRIu64,
				  u->file_name, (uint64_t)st.st_size,
				  u->file_size);
	if (st.st_mtim.tv_sec != u->file_mtime.tv_sec ||
	    st.st_mtim.tv_nsec != u->file_mtime.tv_nsec)
		return cm_err_set(err, EIO,
				  "%s: changed while being uploaded: "
				  "modified",
				  u->file_name);
	return 0;
}

/* The whole object fits in one part: one PutObject. */
static int finish_single(struct s3_upload *u, struct s3_upload_result *res,
			 struct cm_err *err)
{
	static uint8_t nothing[1];
	struct part_buf none = {.u = u, .data = nothing};
	struct part_buf *b = u->held ? u->held : u->cur ? u->cur : &none;
	uint8_t md5[CM_MD5_LEN];
	struct cm_err e;

	cm_err_clear(&e);
	if (send_part(u, b, true, md5, res->etag, &e))
		return fail_with(u, &e, err);
	__atomic_store_n(&u->bytes_done, (uint64_t)b->len, __ATOMIC_RELAXED);
	res->size = b->len;
	res->parts = 0;
	return 0;
}

/* ---- a lost CompleteMultipartUpload answer ------------------------------ */

/* "…-N": N, else 0. */
static unsigned etag_parts_hint(const char *etag)
{
	const char *dash = strrchr(etag, '-');
	char *end;
	unsigned long n;

	if (!dash || !dash[1])
		return 0;
	n = strtoul(dash + 1, &end, 10);
	if ((*end && *end != '"') || n == 0 || n > S3_MAX_PARTS)
		return 0;
	return (unsigned)n;
}

int s3_complete_matches(const struct s3_complete_want *want,
			const struct s3_object_info *seen, struct cm_err *err)
{
	unsigned hint = etag_parts_hint(seen->etag);

	if (seen->size != want->size)
		return cm_err_set(err, EIO,
				  "the object has %" PRIu64 " bytes, not the "
				  "%" PRIu64 " uploaded",
				  seen->size, want->size);
	if (want->etag) {
		if (!s3_etag_equal(seen->etag, want->etag))
			return cm_err_set(err, EIO,
					  "the object's ETag is '%s', not "
					  "the '%s' of our parts",
					  seen->etag, want->etag);
		return 0;
	}
	if (seen->parts_count && hint && seen->parts_count != hint)
		return cm_err_set(err, EIO,
				  "the object says %u parts, its ETag %u",
				  seen->parts_count, hint);
	if (!seen->parts_count && !hint)
		return cm_err_set(err, EIO,
				  "the object's part count is unknown (no "
				  "x-amz-mp-parts-count, no -N in its ETag "
				  "'%s')",
				  seen->etag);
	if ((seen->parts_count ? seen->parts_count : hint) != want->parts)
		return cm_err_set(err, EIO,
				  "the object has %u parts, not the %u "
				  "completed",
				  seen->parts_count ? seen->parts_count : hint,
				  want->parts);
	return 0;
}

struct parts_seen {
	unsigned n;
	uint64_t bytes;
};

static int count_part(void *ctx, const struct s3_part_entry *e)
{
	struct parts_seen *ps = ctx;

	ps->n++;
	ps->bytes += e->size;
	return 0;
}

/* Completing failed in a way that may hide a success (its answer lost).
 * 0 with etag set when the object at the key is the one our parts make;
 * otherwise a negative errno with the reason in err. */
static int reconcile_complete(struct s3_upload *u,
			      const struct s3_complete_want *want, char *etag,
			      struct cm_err *err)
{
	struct parts_seen ps = {0};
	struct s3_object_info info, part1;
	int rc;

	rc = s3_list_parts(u->client, u->bucket, u->key, u->upload_id,
			   count_part, &ps, err);
	if (rc == 0)
		return cm_err_set(err, EIO,
				  "the upload is still in progress (%u parts, "
				  "%" PRIu64 " bytes): not completed",
				  ps.n, ps.bytes);
	if (rc != -ENOENT)
		return rc;
	/* gone: completed (by us?) or aborted */
	rc = s3_head_object(u->client, u->bucket, u->key, &info, err);
	if (rc)
		return rc;
	if (s3_head_object_part(u->client, u->bucket, u->key, 1, &part1,
				NULL) == 0)
		info.parts_count = part1.parts_count;
	rc = s3_complete_matches(want, &info, err);
	if (rc == 0)
		snprintf(etag, S3_ETAG_MAX, "%s", info.etag);
	return rc;
}

/* CompleteMultipartUpload with the recorded parts, and the ETag check. */
static int finish_multipart(struct s3_upload *u, struct s3_upload_result *res,
			    struct cm_err *err)
{
	unsigned n = u->dispatched;
	struct s3_part *parts = cm_xcalloc(n, sizeof(*parts));
	uint8_t(*md5s)[CM_MD5_LEN] = cm_xcalloc(n, CM_MD5_LEN);
	char want[S3_ETAG_MAX];
	struct cm_err e;
	int rc;

	cm_err_clear(&e);
	/* nothing in flight: the records are ours without the lock */
	for (unsigned i = 0; i < n; i++) {
		parts[i].number = i + 1;
		parts[i].etag = u->parts[i].etag;
		memcpy(md5s[i], u->parts[i].md5, CM_MD5_LEN);
	}
	s3_multipart_etag((const uint8_t(*)[CM_MD5_LEN])md5s, n, want);
	rc = s3_complete_multipart_upload_if(
	    u->client, u->bucket, u->key, u->upload_id, parts, n,
	    u->opts.if_none_match, res->etag, &e);
	if ((rc == -ENOENT && !strncmp(e.msg, "NoSuchUpload:", 13)) ||
	    (rc && e.retryable)) {
		/* an earlier attempt may have completed it, its answer lost */
		struct s3_complete_want cw = {
		    .size = __atomic_load_n(&u->bytes_in, __ATOMIC_RELAXED),
		    .parts = n,
		    .etag = u->check_etags ? want : NULL,
		};
		struct cm_err e2;

		cm_err_clear(&e2);
		if (reconcile_complete(u, &cw, res->etag, &e2) == 0) {
			cm_info("s3: s3://%s/%s: completed by an attempt "
				"whose answer was lost (%s)",
				u->bucket, u->key,
				cw.etag ? "ETag checked"
					: "size and part count checked");
			rc = 0;
		} else {
			size_t l = strlen(e.msg);

			snprintf(e.msg + l, sizeof(e.msg) - l, "; and %s",
				 e2.msg);
		}
	}
	if (!rc && u->check_etags && !s3_etag_equal(res->etag, want))
		rc = cm_err_set(&e, EIO,
				"CompleteMultipartUpload s3://%s/%s: "
				"ETag '%s' is not the expected '%s'",
				u->bucket, u->key, res->etag, want);
	free(parts);
	free(md5s);
	if (rc)
		return fail_with(u, &e, err);
	res->size = __atomic_load_n(&u->bytes_in, __ATOMIC_RELAXED);
	res->parts = n;
	return 0;
}

int s3_upload_finish(struct s3_upload *u, struct s3_upload_result *result,
		     struct cm_err *err)
{
	struct s3_upload_result local;
	struct s3_upload_result *res = result ? result : &local;
	struct cm_err e;
	int rc;

	memset(res, 0, sizeof(*res));
	if (u->state != UPLOAD_OPEN)
		return not_open(u, err);
	if (u->upload_id && u->cur && u->cur->len) {
		rc = dispatch(u, u->cur);
		u->cur = NULL;
		if (rc)
			return fail_now(u, err);
	} else if (u->upload_id && u->cur) {
		give_back(u, u->cur);
		u->cur = NULL;
	}
	if (u->upload_id)
		drain(u);
	if (failed_or_cancelled(u))
		return fail_now(u, err);
	cm_err_clear(&e);
	if (file_changed(u, &e))
		return fail_with(u, &e, err);
	if (!u->upload_id)
		rc = finish_single(u, res, err);
	else
		rc = finish_multipart(u, res, err);
	if (rc)
		return rc;
	u->state = UPLOAD_DONE;
	cm_debug("s3: s3://%s/%s: %u parts, %llu bytes", u->bucket, u->key,
		 res->parts, (unsigned long long)res->size);
	return 0;
}

int s3_upload_file(struct s3_upload *u, int fd, const char *name,
		   struct s3_upload_result *result, struct cm_err *err)
{
	struct part_buf *b;
	struct stat st;
	uint64_t off = 0;

	if (u->state != UPLOAD_OPEN)
		return not_open(u, err);
	if (u->cur || u->held || u->next_number != 1)
		abort(); /* bytes were written before: a bug */
	if (fstat(fd, &st) != 0)
		return cm_err_set(err, errno, "%s: %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cm_err_set(err, EINVAL, "%s: not a regular file", name);
	u->fd = fd;
	u->file_name = cm_xstrdup(name);
	u->file_size = (uint64_t)st.st_size;
	u->file_mtime = st.st_mtim;
	u->opts.expected_size = u->file_size;
	do {
		if (failed_or_cancelled(u))
			return fail_now(u, err);
		b = take_buffer(u); /* blocks while every buffer is busy */
		if (!b)
			return fail_now(u, err);
		b->off = off;
		b->len = u->file_size - off < b->limit
			     ? (size_t)(u->file_size - off)
			     : b->limit;
		off += b->len;
		__atomic_add_fetch(&u->bytes_in, b->len, __ATOMIC_RELAXED);
		if (b->number == 1 && off == u->file_size) {
			u->cur = b; /* one part: one PutObject, at finish */
			break;
		}
		if (dispatch(u, b))
			return fail_now(u, err);
	} while (off < u->file_size);
	return s3_upload_finish(u, result, err);
}

void s3_upload_abort(struct s3_upload *u)
{
	struct cm_err e;

	if (!u || u->state != UPLOAD_OPEN)
		return;
	cm_err_set(&e, ECANCELED, "s3://%s/%s: upload aborted", u->bucket,
		   u->key);
	record_failure(u, &e); /* queued parts skip their upload */
	fail_now(u, NULL);
}

void s3_upload_free(struct s3_upload *u)
{
	if (!u)
		return;
	s3_upload_abort(u);
	drain(u);
	for (unsigned i = 0; i < u->nmade; i++) {
		free(u->bufs[i]->data);
		if (u->opts.budget)
			cm_budget_give(u->opts.budget, u->bufs[i]->charged);
		free(u->bufs[i]);
	}
	if (u->opts.budget)
		cm_budget_give(u->opts.budget, u->spare);
	free(u->bufs);
	free(u->parts);
	free(u->upload_id);
	free(u->file_name);
	free(u->bucket);
	free(u->key);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u);
}

uint64_t s3_upload_bytes_in(const struct s3_upload *u)
{
	return __atomic_load_n(&u->bytes_in, __ATOMIC_RELAXED);
}

uint64_t s3_upload_bytes_done(const struct s3_upload *u)
{
	return __atomic_load_n(&u->bytes_done, __ATOMIC_RELAXED);
}

const char *s3_upload_id(const struct s3_upload *u)
{
	return u->upload_id;
}
