/*
 * codec_gzip.c - gzip compressed on N threads, yet one standard gzip stream
 * (RFC 1952) that gzip -d, tar -xz and pigz -d read. The only file that
 * includes zlib.h.
 *
 * The method is pigz's. The input is cut into blocks of `block_size` bytes
 * (128 KiB by default, at least 32 KiB). Each block is compressed on its own
 * as raw deflate, primed with the 32 KiB of input that precede it as a
 * dictionary (deflateSetDictionary), so that it loses almost nothing to the
 * cut, and ends with Z_SYNC_FLUSH: a byte boundary and an empty stored block,
 * after which the next block's deflate data may simply follow. The final
 * partial block ends with Z_FINISH instead; when the input ends exactly on a
 * block boundary, an empty final block (two bytes, 03 00) closes the deflate
 * stream. Each block's CRC-32 is computed with it and combined in order with
 * crc32_combine; the writer sends the 10-byte header before the first block
 * and the CRC-32 and ISIZE (length mod 2^32) trailer at close().
 *
 * Threads and ownership. The driving thread (the one that calls write(),
 * write_zeros() and close(), see arc.h) copies the caller's bytes into the
 * block being filled; a full block is handed to a cm_pool of `threads`
 * workers and the next one started. Blocks live in a ring of 2 * threads + 2
 * slots, each owning its input buffer (32 KiB of history, then the block)
 * and its output buffer, allocated on first use and reused: memory does not
 * grow with the input. When every slot is in flight, the driving thread
 * waits for the oldest. A worker borrows a z_stream from a free list (one
 * stream per worker, created up front: deflateReset per block, no
 * re-allocation), compresses into the slot's output and marks the slot done
 * under ->lock. Finished blocks are passed to the next filter strictly in
 * order, by the driving thread, inside write() and close(): workers never
 * touch the next filter. The driving thread alone owns the ring indices, the
 * running CRC and length, and the filling block; a slot's buffers belong to
 * the driving thread while it is filled or emitted and to one worker between
 * submission and ->done. With threads == 1 there is no pool: blocks are
 * compressed inline by the driving thread with the same code.
 *
 * Zero blocks. A block of zeros whose 32 KiB of history are zeros too always
 * compresses to the same bytes. They are computed once (lazily) and sent
 * again for every such block, with the precomputed CRC-32 of a zero block:
 * write_zeros() (holes and empty regions of raw images) costs no deflate and
 * no buffer, and full blocks passed to write() are checked (the ends first,
 * so data is rejected at once) and take the same path. The first zero block
 * after data still goes through deflate, since its history is not zero.
 *
 * Errors: zlib's are reported as "gzip: ...". A worker records its failure
 * in the slot; the driving thread reports it when the slot's turn comes.
 * abort() tells the workers to skip what is queued, joins them and aborts
 * the next filter without closing it.
 */
#include "arc.h"
#include "codec_internal.h"
#include "fault.h"
#include "log.h"
#include "mem.h"
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define GZ_WINDOW (32 * 1024)           /* deflate's reach: the history */
#define GZ_BLOCK_DEFAULT (128 * 1024)
#define GZ_BLOCK_MAX (16 * 1024 * 1024)
#define GZ_LEVEL_DEFAULT 6
#define GZ_OUT_SLACK 64                 /* sync-flush marker and then some */
#define GZ_MEM_LEVEL 8                  /* zlib's; 9 measured no better */
/*
 * Level 6, the default, searches differently from zlib's level 6 (good 8,
 * lazy 16, nice 128, chain 128). Most of deflate's time is the hash-chain
 * walk; "good" quarters the chain when looking for a better match right
 * after a match of at least that length. Quartering it after any match of
 * 4 or more, with a chain of 96, finds almost all that the longer searches
 * find: on the benchmark's tree (/usr/share and /usr/lib, 1.25 GB) this
 * costs ~20 % less CPU than zlib's 6 for 0.05 % more output, still below
 * GNU gzip -6's size. Other levels are zlib's. Measured with
 * docs/compression.md's command.
 */
#define GZ_L6_GOOD 4
#define GZ_L6_LAZY 128
#define GZ_L6_NICE 258
#define GZ_L6_CHAIN 96

struct gz_codec;

struct gz_block {
	struct gz_codec *gz;    /* borrowed, for the worker */
	unsigned char *buf;     /* owned: GZ_WINDOW bytes of history, then
				 * up to block_size bytes of input */
	unsigned char *out;     /* owned, out_cap bytes; grown by the worker
				 * if deflate ever needs more */
	size_t out_cap;
	size_t len;             /* input bytes after the history */
	size_t dict_len;        /* 0 for the stream's first block */
	bool last;              /* the final block: Z_FINISH */
	bool cached_zero;       /* stands for gz->zero_out: no deflate */
	/* Results, written by the worker before it sets ->done. */
	size_t out_len;
	unsigned long crc;      /* CRC-32 of the block's input */
	int rc;                 /* 0 or a negative errno */
	char msg[128];          /* why, when rc != 0 */
	bool done;              /* protected by ->lock */
};

struct gz_codec {
	struct arc_filter filter;
	int level;
	size_t block_size;
	unsigned threads;

	struct cm_pool *pool;       /* NULL: compressed inline (1 thread) */
	z_stream *zs;               /* owned, `threads` streams */
	struct cm_queue *idle_zs;   /* the streams not in use (pool only) */

	pthread_mutex_t lock;
	pthread_cond_t done_cond;   /* some block's ->done became true */
	bool cancel;                /* protected by ->lock: workers skip */

	/* The driving thread's own, from here on. */
	struct gz_block *ring;      /* nslots slots */
	size_t nslots;
	size_t head;                /* oldest block in flight */
	size_t count;               /* blocks in flight (submitted, not sent) */
	struct gz_block *fill;      /* being filled: ring[head + count] */
	size_t out_cap;             /* initial output buffer size */
	bool started;               /* a block was started: history exists */
	bool prev_zero;             /* the last block submitted was zeros */
	bool header_sent;
	bool finished;              /* the final deflate block was sent */
	bool shut;                  /* workers stopped (close or abort) */
	unsigned long crc;          /* CRC-32 of the input sent so far */
	uint64_t total;             /* input bytes sent so far */
	unsigned long crc_op;       /* crc32_combine_gen(block_size) */

	unsigned char *zero_out;    /* owned: a zero block after zeros */
	size_t zero_out_len;
	unsigned long zero_crc;
	uint64_t zero_hits;         /* blocks sent from zero_out */
};

static voidpf gz_zalloc(voidpf opaque, uInt items, uInt size)
{
	return cm_xmalloc((size_t)items * size);
}

static void gz_zfree(voidpf opaque, voidpf p)
{
	free(p);
}

static unsigned long crc_append(const struct gz_codec *gz, unsigned long crc,
				unsigned long crc2, size_t len2)
{
#if ZLIB_VERNUM >= 0x12c0
	if (len2 == gz->block_size)
		return crc32_combine_op(crc, crc2, gz->crc_op);
#endif
	return crc32_combine(crc, crc2, (z_off_t)len2);
}

static void block_fail(struct gz_block *b, int zrc, const char *what,
		       const char *why)
{
	b->rc = zrc == Z_MEM_ERROR ? -ENOMEM : -EIO;
	snprintf(b->msg, sizeof(b->msg), "%s: %s", what,
		 why ? why : zError(zrc));
}

/*
 * Compress one block with stream `s`: any thread, the block and the stream
 * being its own for the call.
 */
static void compress_block(z_stream *s, struct gz_block *b)
{
	unsigned char *in = b->buf + GZ_WINDOW;
	int flush = b->last ? Z_FINISH : Z_SYNC_FLUSH;
	int zrc;

	b->rc = 0;
	b->out_len = 0;
	b->crc = crc32(0L, in, (uInt)b->len);
	if (cm_fault("gzip.deflate")) {
		block_fail(b, Z_STREAM_ERROR, "deflate", "injected fault");
		return;
	}
	zrc = deflateReset(s);
	/* deflateReset restores the level's search parameters: tune after */
	if (zrc == Z_OK && b->gz->level == 6)
		zrc = deflateTune(s, GZ_L6_GOOD, GZ_L6_LAZY, GZ_L6_NICE,
				  GZ_L6_CHAIN);
	if (zrc == Z_OK && b->dict_len)
		zrc = deflateSetDictionary(s, in - b->dict_len,
					   (uInt)b->dict_len);
	if (zrc != Z_OK) {
		block_fail(b, zrc, "deflate setup", s->msg);
		return;
	}
	s->next_in = in;
	s->avail_in = (uInt)b->len;
	s->next_out = b->out;
	s->avail_out = (uInt)b->out_cap;
	for (;;) {
		size_t used;

		zrc = deflate(s, flush);
		if (zrc == Z_STREAM_END)
			break;
		if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
			block_fail(b, zrc, "deflate", s->msg);
			return;
		}
		if (s->avail_out != 0) {
			if (flush == Z_SYNC_FLUSH)
				break;  /* all input in, flushed */
			block_fail(b, zrc, "deflate", "stalled before the end");
			return;
		}
		/* Out of room (never with deflateBound's size, but cheap). */
		used = (size_t)(s->next_out - b->out);
		b->out_cap *= 2;
		b->out = cm_xrealloc(b->out, b->out_cap);
		s->next_out = b->out + used;
		s->avail_out = (uInt)(b->out_cap - used);
	}
	b->out_len = (size_t)(s->next_out - b->out);
}

static z_stream *get_stream(struct gz_codec *gz)
{
	void *item;

	if (!gz->pool)
		return &gz->zs[0];
	if (cm_queue_pop(gz->idle_zs, &item) != 0)
		abort(); /* the free list is never closed */
	return item;
}

static void put_stream(struct gz_codec *gz, z_stream *s)
{
	if (gz->pool && cm_queue_push(gz->idle_zs, s) != 0)
		abort(); /* never closed, and has room for every stream */
}

static void set_done(struct gz_codec *gz, struct gz_block *b, bool done)
{
	pthread_mutex_lock(&gz->lock);
	b->done = done;
	if (done)
		pthread_cond_signal(&gz->done_cond);
	pthread_mutex_unlock(&gz->lock);
}

/* A pool task: compress one block, or skip it after abort(). */
static void compress_task(void *arg)
{
	struct gz_block *b = arg;
	struct gz_codec *gz = b->gz;
	bool cancel;

	pthread_mutex_lock(&gz->lock);
	cancel = gz->cancel;
	pthread_mutex_unlock(&gz->lock);
	if (cancel) {
		b->rc = -ECANCELED;
		snprintf(b->msg, sizeof(b->msg), "cancelled");
	} else {
		z_stream *s = get_stream(gz);

		compress_block(s, b);
		put_stream(gz, s);
	}
	set_done(gz, b, true);
}

/* Cheap on data: the ends and the middle reject nearly every real block. */
static bool is_zero(const unsigned char *p, size_t n)
{
	if (n == 0)
		return true;
	if (p[0] || p[n - 1] || p[n / 2])
		return false;
	return memcmp(p, p + 1, n - 1) == 0;
}

/* Compute, once, the bytes of a zero block that follows zeros. */
static int ensure_zero_out(struct gz_codec *gz, struct cm_err *err)
{
	struct gz_block zb = { 0 };
	z_stream *s;

	if (gz->zero_out)
		return 0;
	zb.buf = cm_xcalloc(1, GZ_WINDOW + gz->block_size);
	zb.out_cap = gz->out_cap;
	zb.out = cm_xmalloc(zb.out_cap);
	zb.len = gz->block_size;
	zb.dict_len = GZ_WINDOW;
	zb.gz = gz;
	s = get_stream(gz);
	compress_block(s, &zb);
	put_stream(gz, s);
	free(zb.buf);
	if (zb.rc) {
		free(zb.out);
		return cm_err_set(err, -zb.rc, "gzip: zero block: %s", zb.msg);
	}
	gz->zero_out = zb.out;
	gz->zero_out_len = zb.out_len;
	gz->zero_crc = zb.crc;
	return 0;
}

static int send_header(struct gz_codec *gz, struct cm_err *err)
{
	/* magic, deflate, no flags, no mtime, XFL, OS = Unix */
	unsigned char h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

	if (gz->header_sent)
		return 0;
	if (gz->level == 9)
		h[8] = 2;
	else if (gz->level == 1)
		h[8] = 4;
	gz->header_sent = true;
	return arc_write(gz->filter.next, h, sizeof(h), err);
}

static int send_block(struct gz_codec *gz, struct gz_block *b,
		      struct cm_err *err)
{
	const unsigned char *p = b->out;
	size_t n = b->out_len;
	unsigned long crc = b->crc;
	int rc;

	if (b->cached_zero) {
		p = gz->zero_out;
		n = gz->zero_out_len;
		crc = gz->zero_crc;
		gz->zero_hits++;
	} else if (b->rc) {
		return cm_err_set(err, -b->rc, "gzip: %s", b->msg);
	}
	rc = send_header(gz, err);
	if (rc == 0)
		rc = arc_write(gz->filter.next, p, n, err);
	if (rc)
		return rc;
	gz->crc = crc_append(gz, gz->crc, crc, b->len);
	gz->total += b->len;
	if (b->last)
		gz->finished = true;
	return 0;
}

/*
 * Send finished blocks in order. Waits while more than `max_pending` are in
 * flight, then sends whatever else is already done, without waiting.
 */
static int drain(struct gz_codec *gz, size_t max_pending, struct cm_err *err)
{
	int rc = 0;

	while (gz->count) {
		struct gz_block *b = &gz->ring[gz->head];
		bool done;

		pthread_mutex_lock(&gz->lock);
		while (!b->done && gz->count > max_pending)
			pthread_cond_wait(&gz->done_cond, &gz->lock);
		done = b->done;
		pthread_mutex_unlock(&gz->lock);
		if (!done)
			break;
		rc = send_block(gz, b, err);
		if (rc)
			break;
		gz->head = (gz->head + 1) % gz->nslots;
		gz->count--;
	}
	return rc;
}

/* The slot after the last one in flight, once there is room for it. */
static int next_slot(struct gz_codec *gz, struct gz_block **out,
		     struct cm_err *err)
{
	int rc = 0;

	if (gz->count == gz->nslots)
		rc = drain(gz, gz->nslots - 1, err);
	*out = &gz->ring[(gz->head + gz->count) % gz->nslots];
	return rc;
}

/* Put a zero block that follows zeros in flight: already done. */
static int push_cached_zero(struct gz_codec *gz, struct gz_block *b,
			    struct cm_err *err)
{
	int rc = ensure_zero_out(gz, err);

	if (rc)
		return rc;
	b->cached_zero = true;
	b->last = false;
	b->len = gz->block_size;
	b->rc = 0;
	set_done(gz, b, true);
	gz->prev_zero = true;
	gz->started = true;
	gz->count++;
	return 0;
}

static int start_block(struct gz_codec *gz, struct cm_err *err)
{
	struct gz_block *b, *prev;
	int rc = next_slot(gz, &b, err);

	if (rc)
		return rc;
	if (!b->buf) {
		b->buf = cm_xmalloc(GZ_WINDOW + gz->block_size);
		b->out_cap = gz->out_cap;
		b->out = cm_xmalloc(b->out_cap);
	}
	b->len = 0;
	b->last = false;
	b->cached_zero = false;
	b->dict_len = 0;
	if (gz->started) {
		/* Every block but the last is full: its tail is our history. */
		prev = &gz->ring[(gz->head + gz->count + gz->nslots - 1) %
				 gz->nslots];
		b->dict_len = GZ_WINDOW;
		if (gz->prev_zero)
			memset(b->buf, 0, GZ_WINDOW);
		else
			memcpy(b->buf, prev->buf + prev->len, GZ_WINDOW);
	}
	gz->started = true;
	gz->fill = b;
	return 0;
}

/* Hand the filled block over: cached, compressed inline, or to the pool. */
static int submit(struct gz_codec *gz, bool known_zero, struct cm_err *err)
{
	struct gz_block *b = gz->fill;
	bool zero = false;
	int rc;

	gz->fill = NULL;
	if (!b->last && b->len == gz->block_size)
		zero = known_zero || is_zero(b->buf + GZ_WINDOW, b->len);
	if (zero && gz->prev_zero)
		return push_cached_zero(gz, b, err);
	gz->prev_zero = zero;
	if (!gz->pool) {
		compress_block(&gz->zs[0], b);
		set_done(gz, b, true);
	} else {
		set_done(gz, b, false);
		rc = cm_pool_submit(gz->pool, compress_task, b);
		if (rc)
			return cm_err_set(err, -rc, "gzip: no worker pool");
	}
	gz->count++;
	return drain(gz, gz->nslots, err);
}

static int gz_write(struct arc_filter *f, const void *p, size_t n,
		    struct cm_err *err)
{
	struct gz_codec *gz = f->state;
	const unsigned char *src = p;
	int rc = 0;

	while (n) {
		struct gz_block *b = gz->fill;
		size_t take;

		if (!b) {
			rc = start_block(gz, err);
			if (rc)
				goto out;
			b = gz->fill;
		}
		take = gz->block_size - b->len;
		if (take > n)
			take = n;
		memcpy(b->buf + GZ_WINDOW + b->len, src, take);
		b->len += take;
		src += take;
		n -= take;
		if (b->len == gz->block_size) {
			rc = submit(gz, false, err);
			if (rc)
				goto out;
		}
	}
out:
	return rc;
}

static int gz_write_zeros(struct arc_filter *f, uint64_t n,
			  struct cm_err *err)
{
	struct gz_codec *gz = f->state;
	int rc = 0;

	while (n) {
		struct gz_block *b = gz->fill;
		bool whole;
		size_t take;

		if (!b && n >= gz->block_size && gz->prev_zero) {
			rc = next_slot(gz, &b, err);
			if (rc == 0)
				rc = push_cached_zero(gz, b, err);
			if (rc)
				goto out;
			n -= gz->block_size;
			continue;
		}
		if (!b) {
			rc = start_block(gz, err);
			if (rc)
				goto out;
			b = gz->fill;
		}
		whole = b->len == 0;
		take = gz->block_size - b->len;
		if (take > n)
			take = (size_t)n;
		memset(b->buf + GZ_WINDOW + b->len, 0, take);
		b->len += take;
		n -= take;
		if (b->len == gz->block_size) {
			rc = submit(gz, whole, err);
			if (rc)
				goto out;
		}
	}
out:
	return rc;
}

/* Stop the workers: after close() they have nothing left to do. */
static void shut_workers(struct gz_codec *gz, bool cancel)
{
	if (gz->shut)
		return;
	gz->shut = true;
	if (cancel) {
		pthread_mutex_lock(&gz->lock);
		gz->cancel = true;
		pthread_mutex_unlock(&gz->lock);
	}
	cm_pool_free(gz->pool);
	gz->pool = NULL;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static int gz_close(struct arc_filter *f, struct cm_err *err)
{
	/* An empty final block: BFINAL=1, fixed codes, end of block. */
	static const unsigned char final_empty[2] = { 0x03, 0x00 };
	struct gz_codec *gz = f->state;
	unsigned char trailer[8];
	int rc = 0;

	if (gz->fill) {
		gz->fill->last = true;
		rc = submit(gz, false, err);
		if (rc)
			goto out;
	}
	rc = drain(gz, 0, err);
	if (rc == 0)
		rc = send_header(gz, err);
	if (rc == 0 && !gz->finished) {
		rc = arc_write(f->next, final_empty, sizeof(final_empty), err);
		gz->finished = true;
	}
	if (rc)
		goto out;
	put_le32(trailer, (uint32_t)gz->crc);
	put_le32(trailer + 4, (uint32_t)gz->total);
	rc = arc_write(f->next, trailer, sizeof(trailer), err);
	if (rc)
		goto out;
	shut_workers(gz, false);
	cm_debug("gzip: %llu bytes in, %llu zero blocks from the cache",
		 (unsigned long long)gz->total,
		 (unsigned long long)gz->zero_hits);
	rc = arc_close(f->next, err);
out:
	return rc;
}

static void gz_abort(struct arc_filter *f)
{
	struct gz_codec *gz = f->state;

	shut_workers(gz, true);
	arc_abort(f->next);
}

static void gz_free(struct arc_filter *f)
{
	struct gz_codec *gz;

	if (!f)
		return;
	gz = f->state;
	shut_workers(gz, true);
	for (size_t i = 0; i < gz->nslots; i++) {
		free(gz->ring[i].buf);
		free(gz->ring[i].out);
	}
	free(gz->ring);
	for (unsigned i = 0; i < gz->threads; i++) {
		if (gz->zs[i].state)
			deflateEnd(&gz->zs[i]);
	}
	free(gz->zs);
	cm_queue_free(gz->idle_zs);
	free(gz->zero_out);
	pthread_mutex_destroy(&gz->lock);
	pthread_cond_destroy(&gz->done_cond);
	arc_free(f->next);
	free(gz);
}

static const struct arc_filter_ops gz_ops = {
	.name = "gzip",
	.write = gz_write,
	.write_zeros = gz_write_zeros,
	.close = gz_close,
	.abort = gz_abort,
	.free = gz_free,
};

struct arc_filter *arc_gzip_new(const struct arc_codec_opts *opts,
				struct arc_filter *next, struct cm_err *err)
{
	struct gz_codec *gz = NULL;
	int level = opts->level < 0 ? GZ_LEVEL_DEFAULT : opts->level;
	size_t bs = opts->block_size ? opts->block_size : GZ_BLOCK_DEFAULT;
	int zrc, rc = 0;

	if (level > 9) {
		rc = cm_err_set(err, EINVAL, "gzip: level %d is not 0..9",
				opts->level);
		goto out;
	}
	if (bs < GZ_WINDOW || bs > GZ_BLOCK_MAX) {
		rc = cm_err_set(err, EINVAL,
				"gzip: block size %zu is not %d KiB..%d MiB",
				bs, GZ_WINDOW / 1024, GZ_BLOCK_MAX >> 20);
		goto out;
	}
	gz = cm_xcalloc(1, sizeof(*gz));
	gz->filter.ops = &gz_ops;
	gz->filter.next = next;
	gz->filter.state = gz;
	gz->level = level;
	gz->block_size = bs;
	gz->threads = opts->threads ? opts->threads : 1;
	pthread_mutex_init(&gz->lock, NULL);
	pthread_cond_init(&gz->done_cond, NULL);

	gz->zs = cm_xcalloc(gz->threads, sizeof(z_stream));
	for (unsigned i = 0; i < gz->threads; i++) {
		z_stream *s = &gz->zs[i];

		s->zalloc = gz_zalloc;
		s->zfree = gz_zfree;
		zrc = deflateInit2(s, level, Z_DEFLATED, -15, GZ_MEM_LEVEL,
				   Z_DEFAULT_STRATEGY);
		if (zrc != Z_OK) {
			rc = cm_err_set(err, zrc == Z_MEM_ERROR ? ENOMEM : EIO,
					"gzip: deflateInit2: %s",
					s->msg ? s->msg : zError(zrc));
			goto out;
		}
	}
	gz->out_cap = deflateBound(&gz->zs[0], (uLong)bs) + GZ_OUT_SLACK;
#if ZLIB_VERNUM >= 0x12c0
	gz->crc_op = crc32_combine_gen((z_off_t)bs);
#endif

	gz->nslots = gz->threads == 1 ? 2 : 2 * (size_t)gz->threads + 2;
	gz->ring = cm_xcalloc(gz->nslots, sizeof(*gz->ring));
	for (size_t i = 0; i < gz->nslots; i++)
		gz->ring[i].gz = gz;
	if (gz->threads > 1) {
		gz->idle_zs = cm_queue_new(gz->threads);
		for (unsigned i = 0; i < gz->threads; i++) {
			if (cm_queue_push(gz->idle_zs, &gz->zs[i]) != 0)
				abort(); /* a new queue with room for all */
		}
		gz->pool = cm_pool_new(gz->threads, gz->nslots);
	}
	cm_debug("gzip: level %d, %u threads, %zu KiB blocks", level,
		 gz->threads, bs / 1024);
out:
	if (rc) {
		if (gz)
			gz_free(&gz->filter);
		else
			arc_free(next);
		return NULL;
	}
	return &gz->filter;
}
