/*
 * codec_slice.c - the engine of both codecs: the input cut into slices of
 * `slice` bytes, each compressed on its own into one independent member
 * (docs/archive-format.md) on N threads, the members written in order.
 * codec_gzip.c and codec_zstd.c supply only how one slice becomes one
 * member (struct arc_slice_ops); the threads, the ring, the order and the
 * member table live here once.
 *
 * Threads and ownership. The driving thread (the one that calls write(),
 * write_zeros() and close(), see arc.h) copies the caller's bytes into the
 * slice being filled; a full slice is handed to a cm_pool of `threads`
 * workers and the next one started. Slices live in a ring of 2 * threads
 * + 2 slots, each owning its input buffer and its output buffer (the
 * codec's bound for a full slice), allocated on first use and reused:
 * memory does not grow with the input. When every slot is in flight, the
 * driving thread waits for the oldest. A worker borrows a compressor
 * context from a free list (one per worker, created up front), compresses
 * into the slot's output and marks the slot done under ->lock. Finished
 * members are passed to the next filter strictly in order, by the driving
 * thread: workers never touch the next filter. With threads == 1 there is
 * no pool: slices are compressed inline with the same code.
 *
 * Members are independent, so a slice of zeros always compresses to the
 * same bytes but for the header's stream offset (gzip's UOFF). The first
 * full zero slice is compressed on the driving thread and its member kept;
 * every full zero slice (write_zeros() runs: holes of raw images, and full
 * slices found zero in write()) is then sent from that copy, relabelled
 * (ops->relabel), with no compression and no worker.
 *
 * Every member sent is reported to opts->on_member (the index) with its
 * stored and uncompressed offsets and lengths, and kept in a table when the
 * codec needs one at the end (zstd's seek table, ops->finish).
 *
 * Errors: a worker records its failure in the slot; the driving thread
 * reports it when the slot's turn comes. abort() tells the workers to skip
 * what is queued, joins them and aborts the next filter without closing.
 */
#include "arc.h"
#include "codec_internal.h"
#include "log.h"
#include "mem.h"
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_codec;

struct sl_slot {
	struct sl_codec *sc;    /* borrowed, for the worker */
	unsigned char *in;      /* owned: up to `slice` bytes */
	unsigned char *out;     /* owned: out_cap bytes */
	size_t len;             /* input bytes */
	uint64_t uoff;          /* where the slice starts in the stream */
	bool zero;              /* known to be all zeros and full */
	bool cached;            /* stands for sc->zero_out: not compressed */
	/* results, written by the worker before it sets ->done */
	size_t out_len;
	int rc;
	char msg[128];
	bool done;              /* protected by ->lock */
};

struct sl_codec {
	struct arc_filter filter;
	const struct arc_slice_ops *ops;
	struct arc_codec_opts opts;
	size_t slice;
	size_t out_cap;

	struct cm_pool *pool;       /* NULL: inline (1 thread) */
	void **ctx;                 /* `threads` compressor contexts */
	struct cm_queue *idle_ctx;  /* those not in use (pool only) */

	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool cancel;                /* protected by ->lock */

	/* the driving thread's own */
	struct sl_slot *ring;
	size_t nslots, head, count;
	struct sl_slot *fill;
	uint64_t uoff;              /* input taken so far */
	uint64_t coff;              /* stored bytes sent so far */
	bool any;                   /* a member was sent */
	bool shut;
	unsigned char *zero_out;    /* owned: a full zero slice's member */
	size_t zero_len;
	uint64_t zero_hits;
	struct aidx_member *members; /* kept for ops->finish */
	size_t nmembers, members_cap;
};

static void *get_ctx(struct sl_codec *sc)
{
	void *item;

	if (!sc->pool)
		return sc->ctx[0];
	if (cm_queue_pop(sc->idle_ctx, &item) != 0)
		abort(); /* the free list is never closed */
	return item;
}

static void put_ctx(struct sl_codec *sc, void *ctx)
{
	if (sc->pool && cm_queue_push(sc->idle_ctx, ctx) != 0)
		abort(); /* never closed, room for every context */
}

static void compress_slot(struct sl_codec *sc, void *ctx, struct sl_slot *s)
{
	s->msg[0] = '\0';
	s->rc = sc->ops->compress(ctx, s->in, s->len, s->uoff, s->out,
				  sc->out_cap, &s->out_len, s->msg,
				  sizeof(s->msg));
}

static void set_done(struct sl_codec *sc, struct sl_slot *s, bool done)
{
	pthread_mutex_lock(&sc->lock);
	s->done = done;
	if (done)
		pthread_cond_signal(&sc->done_cond);
	pthread_mutex_unlock(&sc->lock);
}

static void compress_task(void *arg)
{
	struct sl_slot *s = arg;
	struct sl_codec *sc = s->sc;
	bool cancel;

	pthread_mutex_lock(&sc->lock);
	cancel = sc->cancel;
	pthread_mutex_unlock(&sc->lock);
	if (cancel) {
		s->rc = -ECANCELED;
		snprintf(s->msg, sizeof(s->msg), "cancelled");
	} else {
		void *ctx = get_ctx(sc);

		compress_slot(sc, ctx, s);
		put_ctx(sc, ctx);
	}
	set_done(sc, s, true);
}

static bool is_zero(const unsigned char *p, size_t n)
{
	if (n == 0)
		return true;
	if (p[0] || p[n - 1] || p[n / 2])
		return false;
	return memcmp(p, p + 1, n - 1) == 0;
}

static int send_slot(struct sl_codec *sc, struct sl_slot *s,
		     struct cm_err *err)
{
	struct aidx_member m;
	unsigned char *p = s->out;
	size_t n = s->out_len;
	int rc;

	if (s->cached) {
		p = sc->zero_out;
		n = sc->zero_len;
		if (sc->ops->relabel)
			sc->ops->relabel(p, n, s->uoff);
		sc->zero_hits++;
	} else if (s->rc) {
		return cm_err_set(err, -s->rc, "%s: %s", sc->ops->name,
				  s->msg);
	}
	rc = arc_write(sc->filter.next, p, n, err);
	if (rc)
		return rc;
	m.coff = sc->coff;
	m.clen = n;
	m.uoff = s->uoff;
	m.ulen = s->len;
	sc->coff += n;
	sc->any = true;
	if (sc->ops->finish) {
		if (sc->nmembers == sc->members_cap) {
			sc->members_cap = sc->members_cap ?
						  2 * sc->members_cap : 64;
			sc->members = cm_xrealloc(sc->members,
						  sc->members_cap *
							  sizeof(m));
		}
		sc->members[sc->nmembers++] = m;
	}
	if (sc->opts.on_member)
		sc->opts.on_member(sc->opts.member_ctx, &m);
	return 0;
}

/* Send finished members in order; wait while more than max_pending fly. */
static int drain(struct sl_codec *sc, size_t max_pending, struct cm_err *err)
{
	int rc = 0;

	while (sc->count) {
		struct sl_slot *s = &sc->ring[sc->head];
		bool done;

		pthread_mutex_lock(&sc->lock);
		while (!s->done && sc->count > max_pending)
			pthread_cond_wait(&sc->done_cond, &sc->lock);
		done = s->done;
		pthread_mutex_unlock(&sc->lock);
		if (!done)
			break;
		rc = send_slot(sc, s, err);
		if (rc)
			break;
		sc->head = (sc->head + 1) % sc->nslots;
		sc->count--;
	}
	return rc;
}

static int next_slot(struct sl_codec *sc, struct sl_slot **out,
		     struct cm_err *err)
{
	int rc = 0;

	if (sc->count == sc->nslots)
		rc = drain(sc, sc->nslots - 1, err);
	*out = &sc->ring[(sc->head + sc->count) % sc->nslots];
	(*out)->len = 0;
	(*out)->zero = false;
	(*out)->cached = false;
	(*out)->uoff = sc->uoff;
	return rc;
}

static int start_slot(struct sl_codec *sc, struct cm_err *err)
{
	struct sl_slot *s;
	int rc = next_slot(sc, &s, err);

	if (rc)
		return rc;
	if (!s->in) {
		s->in = cm_xmalloc(sc->slice);
		s->out = cm_xmalloc(sc->out_cap);
	}
	sc->fill = s;
	return 0;
}

/* A full slice of zeros whose member is known: in flight, already done. */
static void push_cached(struct sl_codec *sc, struct sl_slot *s)
{
	s->cached = true;
	s->zero = true;
	s->len = sc->slice;
	s->rc = 0;
	set_done(sc, s, true);
	sc->uoff += sc->slice;
	sc->count++;
}

static int submit(struct sl_codec *sc, bool known_zero, struct cm_err *err)
{
	struct sl_slot *s = sc->fill;
	int rc;

	sc->fill = NULL;
	if (s->len == sc->slice)
		s->zero = known_zero || is_zero(s->in, s->len);
	if (s->zero && !sc->zero_out) {
		/* the first zero slice: compressed here, once, and kept */
		void *ctx = get_ctx(sc);

		compress_slot(sc, ctx, s);
		put_ctx(sc, ctx);
		if (s->rc)
			return cm_err_set(err, -s->rc, "%s: %s", sc->ops->name,
					  s->msg);
		sc->zero_out = cm_xmalloc(s->out_len);
		memcpy(sc->zero_out, s->out, s->out_len);
		sc->zero_len = s->out_len;
	}
	if (s->zero) {
		sc->uoff -= s->len; /* push_cached counts it again */
		push_cached(sc, s);
		return drain(sc, sc->nslots, err);
	}
	if (!sc->pool) {
		compress_slot(sc, sc->ctx[0], s);
		set_done(sc, s, true);
	} else {
		set_done(sc, s, false);
		rc = cm_pool_submit(sc->pool, compress_task, s);
		if (rc)
			return cm_err_set(err, -rc, "%s: no worker pool",
					  sc->ops->name);
	}
	sc->count++;
	return drain(sc, sc->nslots, err);
}

static int sl_write(struct arc_filter *f, const void *p, size_t n,
		    struct cm_err *err)
{
	struct sl_codec *sc = f->state;
	const unsigned char *src = p;
	int rc = 0;

	while (n) {
		size_t take;

		if (!sc->fill) {
			rc = start_slot(sc, err);
			if (rc)
				break;
		}
		take = sc->slice - sc->fill->len;
		if (take > n)
			take = n;
		memcpy(sc->fill->in + sc->fill->len, src, take);
		sc->fill->len += take;
		sc->uoff += take;
		src += take;
		n -= take;
		if (sc->fill->len == sc->slice) {
			rc = submit(sc, false, err);
			if (rc)
				break;
		}
	}
	return rc;
}

static int sl_write_zeros(struct arc_filter *f, uint64_t n,
			  struct cm_err *err)
{
	struct sl_codec *sc = f->state;
	int rc = 0;

	while (n) {
		bool whole;
		size_t take;

		if (!sc->fill && n >= sc->slice && sc->zero_out) {
			struct sl_slot *s;

			rc = next_slot(sc, &s, err);
			if (rc)
				break;
			push_cached(sc, s);
			rc = drain(sc, sc->nslots, err);
			if (rc)
				break;
			n -= sc->slice;
			continue;
		}
		if (!sc->fill) {
			rc = start_slot(sc, err);
			if (rc)
				break;
		}
		whole = sc->fill->len == 0;
		take = sc->slice - sc->fill->len;
		if (take > n)
			take = (size_t)n;
		memset(sc->fill->in + sc->fill->len, 0, take);
		sc->fill->len += take;
		sc->uoff += take;
		n -= take;
		if (sc->fill->len == sc->slice) {
			rc = submit(sc, whole, err);
			if (rc)
				break;
		}
	}
	return rc;
}

static void shut_workers(struct sl_codec *sc, bool cancel)
{
	if (sc->shut)
		return;
	sc->shut = true;
	if (cancel) {
		pthread_mutex_lock(&sc->lock);
		sc->cancel = true;
		pthread_mutex_unlock(&sc->lock);
	}
	cm_pool_free(sc->pool);
	sc->pool = NULL;
}

static int sl_close(struct arc_filter *f, struct cm_err *err)
{
	struct sl_codec *sc = f->state;
	int rc = 0;

	/* the last slice, or the one empty member of an empty stream */
	if (!sc->fill && !sc->any && sc->count == 0)
		rc = start_slot(sc, err);
	if (rc == 0 && sc->fill)
		rc = submit(sc, false, err);
	if (rc == 0)
		rc = drain(sc, 0, err);
	if (rc == 0 && sc->ops->finish)
		rc = sc->ops->finish(sc->members, sc->nmembers, f->next, err);
	if (rc)
		return rc;
	shut_workers(sc, false);
	cm_debug("%s: %llu bytes in, %llu out, %llu zero slices from the "
		 "cache", sc->ops->name, (unsigned long long)sc->uoff,
		 (unsigned long long)sc->coff,
		 (unsigned long long)sc->zero_hits);
	return arc_close(f->next, err);
}

static void sl_abort(struct arc_filter *f)
{
	struct sl_codec *sc = f->state;

	shut_workers(sc, true);
	arc_abort(f->next);
}

static void sl_free(struct arc_filter *f)
{
	struct sl_codec *sc;

	if (!f)
		return;
	sc = f->state;
	shut_workers(sc, true);
	for (size_t i = 0; i < sc->nslots; i++) {
		free(sc->ring[i].in);
		free(sc->ring[i].out);
	}
	free(sc->ring);
	for (unsigned i = 0; sc->ctx && i < sc->opts.threads; i++)
		sc->ops->ctx_free(sc->ctx[i]);
	free(sc->ctx);
	cm_queue_free(sc->idle_ctx);
	free(sc->zero_out);
	free(sc->members);
	pthread_mutex_destroy(&sc->lock);
	pthread_cond_destroy(&sc->done_cond);
	arc_free(f->next);
	free(sc);
}

static const struct arc_filter_ops sl_ops = {
	.name = "slices",
	.write = sl_write,
	.write_zeros = sl_write_zeros,
	.close = sl_close,
	.abort = sl_abort,
	.free = sl_free,
};

struct arc_filter *arc_slice_codec_new(const struct arc_slice_ops *ops,
				       const struct arc_codec_opts *opts,
				       int level, struct arc_filter *next,
				       struct cm_err *err)
{
	struct sl_codec *sc;
	size_t slice = opts->block_size ? opts->block_size
					: ARC_SLICE_DEFAULT;

	if (slice < ARC_SLICE_MIN || slice > ARC_SLICE_MAX) {
		cm_err_set(err, EINVAL, "%s: slice size %zu is not %d KiB.."
			   "%d MiB", ops->name, slice, ARC_SLICE_MIN / 1024,
			   ARC_SLICE_MAX >> 20);
		arc_free(next);
		return NULL;
	}
	sc = cm_xcalloc(1, sizeof(*sc));
	sc->filter.ops = &sl_ops;
	sc->filter.next = next;
	sc->filter.state = sc;
	sc->ops = ops;
	sc->opts = *opts;
	if (!sc->opts.threads)
		sc->opts.threads = 1;
	sc->slice = slice;
	pthread_mutex_init(&sc->lock, NULL);
	pthread_cond_init(&sc->done_cond, NULL);
	sc->ctx = cm_xcalloc(sc->opts.threads, sizeof(*sc->ctx));
	for (unsigned i = 0; i < sc->opts.threads; i++) {
		sc->ctx[i] = ops->ctx_new(level, slice, err);
		if (!sc->ctx[i]) {
			sl_free(&sc->filter);
			return NULL;
		}
	}
	sc->out_cap = ops->bound(sc->ctx[0], slice);
	sc->nslots = sc->opts.threads == 1 ? 2 : 2 * (size_t)sc->opts.threads
						   + 2;
	sc->ring = cm_xcalloc(sc->nslots, sizeof(*sc->ring));
	for (size_t i = 0; i < sc->nslots; i++)
		sc->ring[i].sc = sc;
	if (sc->opts.threads > 1) {
		sc->idle_ctx = cm_queue_new(sc->opts.threads);
		for (unsigned i = 0; i < sc->opts.threads; i++) {
			if (cm_queue_push(sc->idle_ctx, sc->ctx[i]) != 0)
				abort(); /* a new queue with room for all */
		}
		sc->pool = cm_pool_new(sc->opts.threads, sc->nslots);
	}
	cm_debug("%s: level %d, %u threads, %zu KiB slices", ops->name, level,
		 sc->opts.threads, slice / 1024);
	return &sc->filter;
}

uint64_t arc_slice_codec_zero_hits(const struct arc_filter *f)
{
	const struct sl_codec *sc = f->state;

	return sc->zero_hits;
}
