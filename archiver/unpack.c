/*
 * unpack.c - the parallel member reader (unpack.h).
 *
 *   fetchers (N)      chunk i of the ranges  -> chunk ring (window slots)
 *   consumer thread   chunks in order, cut into members -> member ring
 *   decoders (N)      member j decoded in place in the ring
 *   consumer thread   member ring head handed out by arc_unpack_next
 *
 * The consumer does the cutting inside arc_unpack_next ("pump"): it takes
 * the next chunk in order once fetched, appends it to the bytes not yet
 * cut (`pend`), and cuts whole members off the front while the member
 * ring has room. A member is copied out of `pend` into its own buffer
 * (compressed bytes: a copy costs little beside decoding), so a chunk's
 * buffer is freed as soon as it is cut. Fetchers and decoders are two
 * pools, so that slow GETs never keep a decoder waiting for a thread.
 *
 * One mutex guards both rings and the error; one condition variable
 * wakes the consumer when a chunk or a member is done. Workers touch only
 * their own slot's buffers outside the lock.
 */
#include "unpack.h"
#include "member.h"
#include "fsutil.h"
#include "mem.h"
#include "queue.h"
#include "url.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_MAX (8u << 20)
#define SEEK_TABLE_MAX (64u << 20)

/* ---- the object -------------------------------------------------------- */

struct arc_object {
	char *url;
	char *bucket, *key;       /* S3 */
	struct s3_client *client; /* borrowed */
	int fd;                   /* local; -1 for S3 */
	uint64_t size;
	char etag[S3_ETAG_MAX];
	atomic_uint_fast64_t bytes_read;
};

int arc_object_open(const char *url, struct s3_client *client,
		    struct arc_object **out, struct cm_err *err)
{
	struct arc_object *o = cm_xcalloc(1, sizeof(*o));
	int rc = 0;

	o->url = cm_xstrdup(url);
	o->fd = -1;
	if (cm_url_kind(url) == CM_URL_S3) {
		struct s3_object_info info;

		if (!client) {
			rc = cm_err_set(err, EINVAL, "an s3:// place needs a "
					"client");
			goto out;
		}
		o->client = client;
		rc = s3_parse_url(url, &o->bucket, &o->key, err);
		if (rc == 0)
			rc = s3_head_object(client, o->bucket, o->key, &info,
					    err);
		if (rc == 0) {
			o->size = info.size;
			memcpy(o->etag, info.etag, sizeof(o->etag));
		}
	} else {
		struct stat st;

		o->fd = open(url, O_RDONLY | O_CLOEXEC);
		if (o->fd < 0 || fstat(o->fd, &st))
			rc = cm_err_set(err, errno, "%s", strerror(errno));
		else if (!S_ISREG(st.st_mode))
			rc = cm_err_set(err, EINVAL, "not a regular file");
		else
			o->size = (uint64_t)st.st_size;
	}
out:
	if (rc) {
		arc_object_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void arc_object_free(struct arc_object *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	free(o->url);
	free(o->bucket);
	free(o->key);
	free(o);
}

uint64_t arc_object_size(const struct arc_object *o)
{
	return o->size;
}

const char *arc_object_url(const struct arc_object *o)
{
	return o->url;
}

uint64_t arc_object_bytes_read(const struct arc_object *o)
{
	return atomic_load(&o->bytes_read);
}

const char *arc_object_etag(const struct arc_object *o)
{
	return o->etag;
}

struct fill {
	unsigned char *p;
	size_t n, got;
};

static int fill_sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct fill *f = ctx;

	if (n > f->n - f->got)
		return cm_err_set(err, EIO, "the server sent more than the "
				  "range asked for");
	memcpy(f->p + f->got, p, n);
	f->got += n;
	return 0;
}

int arc_object_read(struct arc_object *o, uint64_t off, void *p, size_t n,
		    struct cm_err *err)
{
	if (off > o->size || n > o->size - off)
		return cm_err_set(err, EINVAL, "bytes %llu+%zu are past the "
				  "end (%llu)", (unsigned long long)off, n,
				  (unsigned long long)o->size);
	if (n == 0)
		return 0;
	if (o->fd >= 0) {
		size_t got;
		int rc = cm_pread_full(o->fd, p, n, (off_t)off, &got, err);

		if (rc)
			return rc;
		if (got < n)
			return cm_err_set(err, EIO, "the file shrank under "
					  "us (%llu bytes)", (unsigned long long)
					  (off + got));
	} else {
		struct s3_range range = { off, n };
		struct fill f = { p, n, 0 };
		struct s3_object_info info;
		int rc = s3_get_object(o->client, o->bucket, o->key, &range,
				       fill_sink, &f, &info, err);

		if (rc)
			return rc;
		if (f.got != n)
			return cm_err_set(err, EIO, "a ranged GET gave %zu "
					  "bytes of %zu", f.got, n);
		if (o->etag[0] && !s3_etag_equal(info.etag, o->etag))
			return cm_err_set(err, ESTALE, "the object changed "
					  "while it was read (ETag %s, was "
					  "%s)", info.etag, o->etag);
	}
	atomic_fetch_add(&o->bytes_read, n);
	return 0;
}

/* ---- units ------------------------------------------------------------- */

static uint32_t le32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

/* Our member header at p: 1 (msize, uoff set), 0 for another gzip
 * member, -EIO (err set) for no gzip member or a bad size. */
static int gz_header(const void *p, size_t n, uint64_t *msize, uint64_t *uoff,
		     struct cm_err *err)
{
	uint32_t m;
	int rc = arc_gz_member_parse(p, n, &m, uoff, err);

	*msize = m;
	return rc;
}

int arc_units_probe(struct arc_object *o, enum arc_codec codec,
		    bool *members, struct arc_unit **units, size_t *nunits,
		    uint64_t *data_end, struct cm_err *err)
{
	unsigned char head[ARC_GZ_HEADER], foot[ARC_ZS_SEEK_FOOTER];
	uint64_t size = o->size, msize, uoff, sum = 0;
	unsigned char *tail = NULL;
	size_t len = 0;
	struct cm_err e;
	int64_t frames;
	int rc;

	*members = false;
	*units = NULL;
	*nunits = 0;
	*data_end = size;
	cm_err_clear(&e);
	if (codec == ARC_CODEC_GZIP) {
		if (size < sizeof(head))
			return 0;
		rc = arc_object_read(o, 0, head, sizeof(head), err);
		if (rc)
			return rc;
		/* not gzip at all: libarchive's reader will say so */
		*members = gz_header(head, sizeof(head), &msize, &uoff, &e) == 1
			   && uoff == 0;
		return 0;
	}
	if (codec != ARC_CODEC_ZSTD || size < sizeof(foot))
		return 0;
	rc = arc_object_read(o, size - sizeof(foot), foot, sizeof(foot), err);
	if (rc)
		return rc;
	/* the footer alone: -EAGAIN with the table's length when there is
	 * one, -EIO when there is none (an old or foreign stream) */
	if (arc_zs_seek_parse(foot, sizeof(foot), NULL, 0, &len, &e) !=
	    -EAGAIN)
		return 0;
	if (len > size || len > SEEK_TABLE_MAX)
		return cm_err_set(err, EIO, "zstd seek table of %zu bytes in "
				  "an object of %llu", len,
				  (unsigned long long)size);
	tail = cm_xmalloc(len);
	rc = arc_object_read(o, size - len, tail, len, err);
	if (rc)
		goto out;
	frames = arc_zs_seek_parse(tail, len, NULL, 0, &len, err);
	if (frames < 0) {
		rc = (int)frames;
		goto out;
	}
	*units = cm_xcalloc(frames ? (size_t)frames : 1, sizeof(**units));
	arc_zs_seek_parse(tail, len, *units, (size_t)frames, &len, err);
	for (int64_t i = 0; i < frames; i++) {
		if ((*units)[i].clen == 0 || (*units)[i].ulen > ARC_UNIT_MAX) {
			rc = cm_err_set(err, EIO, "zstd seek table: frame "
					"%lld of %llu bytes, decoding to %llu",
					(long long)i + 1, (unsigned long long)
					(*units)[i].clen, (unsigned long long)
					(*units)[i].ulen);
			goto out;
		}
		sum += (*units)[i].clen;
	}
	if (sum != size - len) {
		rc = cm_err_set(err, EIO, "zstd seek table: its %lld frames "
				"add up to %llu bytes, the frames take %llu",
				(long long)frames, (unsigned long long)sum,
				(unsigned long long)(size - len));
		goto out;
	}
	*nunits = (size_t)frames;
	*data_end = size - len;
	*members = true;
out:
	if (rc) {
		free(*units);
		*units = NULL;
	}
	free(tail);
	return rc;
}

/* ---- the pipeline ------------------------------------------------------ */

enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_DONE, SLOT_FAILED };

struct chunk {
	struct arc_unpack *u;
	uint64_t off;
	size_t len;
	unsigned char *buf;
	int state;
	bool seen;            /* given to on_chunk */
	struct cm_err err;
};

struct member {
	struct arc_unpack *u;
	uint64_t seq;         /* from 1, in the order cut */
	uint64_t coff, uoff, ulen;
	size_t clen;
	void *in;
	void *out;
	size_t out_len;
	int state;
	struct cm_err err;
};

struct arc_unpack {
	struct arc_object *obj;
	enum arc_codec codec;
	struct arc_unit *units;
	size_t nunits;
	const atomic_int *cancel;
	unsigned threads;
	unsigned window;
	int (*on_chunk)(void *ctx, uint64_t off, const void *p, size_t n,
			struct cm_err *err);
	void *chunk_ctx;

	/* the chunks: ranges cut in pieces of at most CHUNK_MAX */
	struct arc_range *chunks;
	size_t nchunks;
	size_t chunk_next;    /* next to submit */
	size_t chunk_head;    /* next to cut */
	struct chunk *cring;  /* window slots: chunk i in i % window */

	/* bytes of taken chunks not yet cut into members */
	unsigned char *pend;
	size_t pend_len, pend_pos, pend_cap;
	uint64_t pend_off;    /* stored offset of pend[pend_pos] */

	struct member *mring; /* window slots */
	uint64_t mem_head, mem_tail; /* handed out / cut */
	bool handed;          /* mring[mem_head] is lent to the caller */
	uint64_t expect_uoff; /* the end of the last member handed out */
	bool cut_any;         /* a member was cut; it ends at: */
	uint64_t cut_coff, cut_uoff;
	uint64_t cut_ulen;    /* zstd: the frame being cut, per the table */
	uint64_t units_out;

	struct cm_pool *fetchers, *decoders;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool stop;
	int rc;
	struct cm_err err;
};

static void fetch_task(void *arg)
{
	struct chunk *c = arg;
	struct arc_unpack *u = c->u;
	struct cm_err err;
	int rc = 0;

	cm_err_clear(&err);
	if (atomic_load(&u->stop))
		rc = cm_err_set(&err, ECANCELED, "stopped");
	else
		rc = arc_object_read(u->obj, c->off, c->buf, c->len, &err);
	pthread_mutex_lock(&u->lock);
	c->state = rc ? SLOT_FAILED : SLOT_DONE;
	if (rc)
		c->err = err;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* A member's decoded size, known before decoding: gzip's ISIZE (members
 * are far below 4 GiB), a zstd frame's from the seek table. */
static size_t decoded_size(const struct arc_unpack *u, const struct member *m)
{
	if (u->codec == ARC_CODEC_GZIP)
		return m->clen >= ARC_GZ_TRAILER ?
			       le32((const unsigned char *)m->in + m->clen - 4) :
			       0;
	return (size_t)m->ulen;
}

static void decode_task(void *arg)
{
	struct member *m = arg;
	struct arc_unpack *u = m->u;
	size_t cap = decoded_size(u, m), out_len = 0;
	struct cm_err err;
	void *out = NULL;
	int rc;

	cm_err_clear(&err);
	if (atomic_load(&u->stop))
		rc = cm_err_set(&err, ECANCELED, "stopped");
	else if (cap > ARC_UNIT_MAX)
		rc = cm_err_set(&err, EIO, "decodes to %zu bytes, over the "
				"%u MiB a member may hold", cap,
				ARC_UNIT_MAX >> 20);
	else {
		out = cm_xmalloc(cap ? cap : 1);
		rc = arc_member_decode(u->codec, m->in, m->clen, out, cap,
				       &out_len, &err);
		if (rc == 0 && out_len != cap)
			rc = cm_err_set(&err, EIO, "decodes to %zu bytes, not "
					"the %zu it says", out_len, cap);
	}
	if (rc) {
		free(out);
		out = NULL;
	}
	free(m->in);
	m->in = NULL;
	pthread_mutex_lock(&u->lock);
	m->out = out;
	m->out_len = out_len;
	m->state = rc ? SLOT_FAILED : SLOT_DONE;
	if (rc)
		m->err = err;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

static const char *unit_word(enum arc_codec c)
{
	return c == ARC_CODEC_ZSTD ? "zstd frame" : "gzip member";
}

/* Record the first failure (lock held). */
static int fail(struct arc_unpack *u, int rc, const struct cm_err *e)
{
	if (!u->rc) {
		u->rc = rc;
		u->err = *e;
		atomic_store(&u->stop, true);
	}
	return u->rc;
}

static int fail_msg(struct arc_unpack *u, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail_msg(struct arc_unpack *u, int code, const char *fmt, ...)
{
	struct cm_err e;
	va_list ap;

	cm_err_clear(&e);
	va_start(ap, fmt);
	cm_err_vset(&e, code, false, fmt, ap);
	va_end(ap);
	return fail(u, -code, &e);
}

/* Keep `window` chunks fetched or being fetched (lock held). */
static void submit_fetches(struct arc_unpack *u)
{
	while (u->chunk_next < u->nchunks &&
	       u->chunk_next - u->chunk_head < u->window) {
		struct chunk *c = &u->cring[u->chunk_next % u->window];

		c->u = u;
		c->off = u->chunks[u->chunk_next].off;
		c->len = (size_t)u->chunks[u->chunk_next].len;
		c->buf = cm_xmalloc(c->len);
		c->state = SLOT_BUSY;
		c->seen = false;
		cm_err_clear(&c->err);
		u->chunk_next++;
		/* never blocks: the queue holds a window's worth */
		cm_pool_submit(u->fetchers, fetch_task, c);
	}
}

/* The unit (zstd frame) starting at stored offset `coff`, or NULL. */
static const struct arc_unit *unit_at(const struct arc_unpack *u,
				      uint64_t coff)
{
	size_t lo = 0, hi = u->nunits;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (u->units[mid].coff == coff)
			return &u->units[mid];
		if (u->units[mid].coff < coff)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The size of the member at the front of pend, or 0 when not enough is
 * there to tell (lock held). Sets u->rc on a bad header.
 */
static size_t member_size(struct arc_unpack *u, uint64_t *uoff)
{
	const unsigned char *p = u->pend + u->pend_pos;
	size_t avail = u->pend_len - u->pend_pos;
	uint64_t msize;
	struct cm_err e;
	int rc;

	if (u->codec == ARC_CODEC_ZSTD) {
		const struct arc_unit *t = unit_at(u, u->pend_off);

		if (!t) {
			fail_msg(u, EIO, "zstd frame %llu at byte %llu: no frame "
				 "of the seek table starts there",
				 (unsigned long long)(u->mem_tail + 1),
				 (unsigned long long)u->pend_off);
			return 0;
		}
		*uoff = t->uoff;
		u->cut_ulen = t->ulen;
		return (size_t)t->clen;
	}
	if (avail < ARC_GZ_HEADER)
		return 0;
	cm_err_clear(&e);
	rc = gz_header(p, avail, &msize, uoff, &e);
	if (rc == 0)
		fail_msg(u, EIO, "gzip member %llu at byte %llu: not a member "
			 "of this layout (no 'VF' extra field)",
			 (unsigned long long)(u->mem_tail + 1),
			 (unsigned long long)u->pend_off);
	else if (rc < 0 || msize > ARC_UNIT_MAX)
		fail_msg(u, EIO, "gzip member %llu at byte %llu: %s",
			 (unsigned long long)(u->mem_tail + 1),
			 (unsigned long long)u->pend_off,
			 rc < 0 ? e.msg : "member size over the limit");
	else
		return (size_t)msize;
	return 0;
}

/* Move the next chunk (fetched) into pend (lock held). */
static void take_chunk(struct arc_unpack *u, struct chunk *c)
{
	size_t left = u->pend_len - u->pend_pos;

	if (left == 0)
		u->pend_off = c->off;
	else if (u->pend_off + left != c->off) {
		/* a new range: what is left of the last one is a member
		 * cut short */
		fail_msg(u, EIO, "%s %llu at byte %llu: truncated (the range "
			 "ends at byte %llu)", unit_word(u->codec),
			 (unsigned long long)(u->mem_tail + 1),
			 (unsigned long long)u->pend_off,
			 (unsigned long long)(u->pend_off + left));
		return;
	}
	if (left) /* the first chunk: no buffer yet */
		memmove(u->pend, u->pend + u->pend_pos, left);
	u->pend_pos = 0;
	u->pend_len = left;
	if (u->pend_cap < left + c->len) {
		u->pend_cap = left + c->len;
		u->pend = cm_xrealloc(u->pend, u->pend_cap);
	}
	memcpy(u->pend + left, c->buf, c->len);
	u->pend_len += c->len;
	free(c->buf);
	c->buf = NULL;
	c->state = SLOT_FREE;
	u->chunk_head++;
}

/* The next chunk in order, fetched: to on_chunk (lock held; released
 * for the call, as hashing 8 MiB must not keep the workers from handing
 * in what they finish: the slot is the consumer's until it is cut).
 * Nonzero when it failed the unpack. */
static int chunk_seen(struct arc_unpack *u, struct chunk *c)
{
	struct cm_err e;
	int rc;

	if (!u->on_chunk)
		return 0;
	cm_err_clear(&e);
	pthread_mutex_unlock(&u->lock);
	rc = u->on_chunk(u->chunk_ctx, c->off, c->buf, c->len, &e);
	pthread_mutex_lock(&u->lock);
	if (rc)
		fail(u, rc, &e);
	return rc;
}

/* Cut and submit what can be (lock held). */
static void pump(struct arc_unpack *u)
{
	submit_fetches(u);
	while (!u->rc && u->mem_tail - u->mem_head < u->window) {
		struct chunk *c = u->chunk_head < u->chunk_next ?
			&u->cring[u->chunk_head % u->window] : NULL;
		struct member *m = &u->mring[u->mem_tail % u->window];
		uint64_t uoff = 0;
		size_t msize = 0;

		if (c && c->state == SLOT_FAILED) {
			fail(u, -c->err.code ? -c->err.code : -EIO, &c->err);
			cm_err_prefix(&u->err, "bytes %llu+%zu",
				      (unsigned long long)c->off, c->len);
			return;
		}
		if (c && c->state == SLOT_DONE && !c->seen) {
			c->seen = true;
			if (chunk_seen(u, c))
				return;
		}
		if (u->codec == ARC_CODEC_NONE) {
			if (!c || c->state != SLOT_DONE)
				return;
			/* the chunk is the member: its buffer moves */
			m->coff = m->uoff = c->off;
			m->out = c->buf;
			m->out_len = c->len;
			m->state = SLOT_DONE;
			c->buf = NULL;
			c->state = SLOT_FREE;
			u->chunk_head++;
			u->mem_tail++;
			submit_fetches(u);
			continue;
		}
		if (u->pend_len > u->pend_pos)
			msize = member_size(u, &uoff);
		if (u->rc)
			return;
		if (msize == 0 || u->pend_len - u->pend_pos < msize) {
			if (!c || c->state != SLOT_DONE)
				return;
			take_chunk(u, c);
			submit_fetches(u);
			continue;
		}
		/* members that follow each other in the object follow each
		 * other in the stream: a header that says otherwise is bad */
		if (u->codec == ARC_CODEC_GZIP && u->cut_any &&
		    u->pend_off == u->cut_coff && uoff != u->cut_uoff) {
			fail_msg(u, EIO, "gzip member %llu at byte %llu: says "
				 "it starts at uncompressed byte %llu, the "
				 "member before ends at %llu",
				 (unsigned long long)(u->mem_tail + 1),
				 (unsigned long long)u->pend_off,
				 (unsigned long long)uoff,
				 (unsigned long long)u->cut_uoff);
			return;
		}
		if (u->codec == ARC_CODEC_GZIP)
			u->cut_uoff = uoff + le32(u->pend + u->pend_pos +
						  msize - 4);
		u->cut_any = true;
		u->cut_coff = u->pend_off + msize;
		m->u = u;
		m->seq = u->mem_tail + 1;
		m->coff = u->pend_off;
		m->uoff = uoff;
		m->clen = msize;
		m->ulen = u->cut_ulen;
		m->in = cm_xmalloc(msize);
		memcpy(m->in, u->pend + u->pend_pos, msize);
		m->out = NULL;
		m->state = SLOT_BUSY;
		cm_err_clear(&m->err);
		u->pend_pos += msize;
		u->pend_off += msize;
		u->mem_tail++;
		cm_pool_submit(u->decoders, decode_task, m);
	}
}

static void release_handed(struct arc_unpack *u)
{
	struct member *m;

	if (!u->handed)
		return;
	m = &u->mring[u->mem_head % u->window];
	free(m->out);
	m->out = NULL;
	m->state = SLOT_FREE;
	u->mem_head++;
	u->handed = false;
}

int arc_unpack_next(struct arc_unpack *u, const void **p, size_t *n,
		    uint64_t *uoff, struct cm_err *err)
{
	int rc = 0;

	*p = NULL;
	*n = 0;
	pthread_mutex_lock(&u->lock);
	release_handed(u);
	for (;;) {
		struct member *m = &u->mring[u->mem_head % u->window];

		if (!u->rc && u->cancel && atomic_load(u->cancel))
			fail_msg(u, ECANCELED, "cancelled");
		if (!u->rc)
			pump(u);
		if (u->rc)
			break;
		if (u->mem_head < u->mem_tail && m->state == SLOT_FAILED) {
			fail_msg(u, EIO, "%s %llu at byte %llu: %s (its data "
				 "at uncompressed byte %llu)",
				 unit_word(u->codec),
				 (unsigned long long)m->seq,
				 (unsigned long long)m->coff, m->err.msg,
				 (unsigned long long)m->uoff);
			break;
		}
		if (u->mem_head < u->mem_tail && m->state == SLOT_DONE) {
			*p = m->out;
			*n = m->out_len;
			*uoff = m->uoff;
			u->expect_uoff = m->uoff + m->out_len;
			u->handed = true;
			u->units_out++;
			break;
		}
		if (u->mem_head == u->mem_tail &&
		    u->chunk_head == u->nchunks) {
			if (u->pend_len > u->pend_pos)
				fail_msg(u, EIO, "%s %llu at byte %llu: "
					 "truncated at byte %llu",
					 unit_word(u->codec),
					 (unsigned long long)(u->mem_tail + 1),
					 (unsigned long long)u->pend_off,
					 (unsigned long long)(u->pend_off +
						u->pend_len - u->pend_pos));
			if (u->rc)
				break;
			*uoff = u->expect_uoff;
			break; /* the end */
		}
		pthread_cond_wait(&u->cond, &u->lock);
	}
	rc = u->rc;
	if (rc)
		*err = u->err;
	pthread_mutex_unlock(&u->lock);
	return rc;
}

uint64_t arc_unpack_units(const struct arc_unpack *u)
{
	return u->units_out;
}

unsigned arc_unpack_threads(const struct arc_unpack *u)
{
	return u->threads;
}

void arc_unpack_member(const struct arc_unpack *u, struct arc_unit *m)
{
	const struct member *h = &u->mring[u->mem_head % u->window];

	memset(m, 0, sizeof(*m));
	if (!u->handed || u->codec == ARC_CODEC_NONE)
		return;
	m->coff = h->coff;
	m->clen = h->clen;
	m->uoff = h->uoff;
	m->ulen = h->out_len;
}

struct arc_unpack *arc_unpack_new(const struct arc_unpack_opts *o,
				  struct cm_err *err)
{
	struct arc_unpack *u;
	unsigned threads = o->threads;
	size_t n = 0;

	if (o->codec != ARC_CODEC_GZIP && o->codec != ARC_CODEC_ZSTD &&
	    o->codec != ARC_CODEC_NONE) {
		cm_err_set(err, EINVAL, "no decoder for codec %d",
			   (int)o->codec);
		return NULL;
	}
	if (o->codec == ARC_CODEC_ZSTD && !o->nunits) {
		cm_err_set(err, EINVAL, "zstd frames without a seek table");
		return NULL;
	}
	if (threads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		threads = cpus > 2 ? (unsigned)cpus : 2;
	}
	u = cm_xcalloc(1, sizeof(*u));
	u->obj = o->obj;
	u->codec = o->codec;
	u->cancel = o->cancel;
	u->threads = threads;
	u->on_chunk = o->on_chunk;
	u->chunk_ctx = o->chunk_ctx;
	u->window = o->window ? o->window : 2 * threads + 2;
	if (o->nunits) {
		u->units = cm_xcalloc(o->nunits, sizeof(*u->units));
		memcpy(u->units, o->units, o->nunits * sizeof(*u->units));
		u->nunits = o->nunits;
	}
	for (size_t i = 0; i < o->nranges; i++)
		n += (o->ranges[i].len + CHUNK_MAX - 1) / CHUNK_MAX;
	u->chunks = cm_xcalloc(n ? n : 1, sizeof(*u->chunks));
	for (size_t i = 0; i < o->nranges; i++) {
		uint64_t off = o->ranges[i].off, end = off + o->ranges[i].len;

		while (off < end) {
			uint64_t len = end - off < CHUNK_MAX ? end - off
							     : CHUNK_MAX;

			u->chunks[u->nchunks].off = off;
			u->chunks[u->nchunks++].len = len;
			off += len;
		}
	}
	u->cring = cm_xcalloc(u->window, sizeof(*u->cring));
	u->mring = cm_xcalloc(u->window, sizeof(*u->mring));
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	u->fetchers = cm_pool_new(threads, u->window);
	if (o->codec != ARC_CODEC_NONE) {
		u->decoders = cm_pool_new(threads, u->window);
	}
	return u;
}

void arc_unpack_free(struct arc_unpack *u)
{
	if (!u)
		return;
	atomic_store(&u->stop, true);
	/* the pools finish (quickly: `stop`) what was queued, then join */
	cm_pool_free(u->fetchers);
	cm_pool_free(u->decoders);
	for (unsigned i = 0; i < u->window; i++) {
		free(u->cring[i].buf);
		free(u->mring[i].in);
		free(u->mring[i].out);
	}
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u->cring);
	free(u->mring);
	free(u->chunks);
	free(u->units);
	free(u->pend);
	free(u);
}
