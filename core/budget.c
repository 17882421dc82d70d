/*
 * budget.c - see budget.h. A counter under a mutex, a condition
 * variable for the takers that wait on a thread (served as bytes come
 * back, in no particular order: each re-checks what it needs), and a FIFO
 * of queued waiters (served first, in order, by whoever gives bytes back).
 */
#include "budget.h"

#include "mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct cm_budget {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t limit;
	uint64_t used;	  /* protected by ->lock */
	uint64_t peak;	  /* protected by ->lock */
	uint64_t waits;	  /* protected by ->lock */
	unsigned waiting; /* protected by ->lock: threads in take */
	/* protected by ->lock: queued waiters, oldest first */
	struct cm_budget_waiter *head, *tail;
	unsigned queued;  /* protected by ->lock */
	bool closed;	  /* protected by ->lock */
};

struct cm_budget *cm_budget_new(uint64_t limit)
{
	struct cm_budget *b = cm_xcalloc(1, sizeof(*b));

	b->limit = limit ? limit : 1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	return b;
}

void cm_budget_free(struct cm_budget *b)
{
	if (!b)
		return;
	if (b->used || b->waiting || b->head)
		abort(); /* bytes still out, or a waiter: a bug */
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

/* Under ->lock: n bytes fit now (a take larger than the limit fits only
 * into an empty budget). */
static bool fits_locked(const struct cm_budget *b, uint64_t n)
{
	return n == 0 || b->used == 0 ||
	       (b->used <= b->limit && n <= b->limit - b->used);
}

static void taken_locked(struct cm_budget *b, uint64_t n)
{
	b->used += n;
	if (b->used > b->peak)
		b->peak = b->used;
}

int cm_budget_take(struct cm_budget *b, uint64_t n)
{
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	if (!b->closed && !fits_locked(b, n)) {
		b->waits++;
		b->waiting++;
		while (!b->closed && !fits_locked(b, n))
			pthread_cond_wait(&b->cond, &b->lock);
		b->waiting--;
	}
	if (b->closed)
		rc = -ECANCELED;
	else
		taken_locked(b, n);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

bool cm_budget_try(struct cm_budget *b, uint64_t n)
{
	bool ok;

	pthread_mutex_lock(&b->lock);
	/* a hint gives way to the queued waiters */
	ok = !b->closed && !b->head && fits_locked(b, n);
	if (ok)
		taken_locked(b, n);
	pthread_mutex_unlock(&b->lock);
	return ok;
}

static void unlink_locked(struct cm_budget *b, struct cm_budget_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		b->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		b->tail = w->prev;
	w->next = w->prev = NULL;
	b->queued--;
}

/* Under ->lock: the queued waiters whose bytes fit now, oldest first
 * (one that does not fit stops the line), taken out and chained on
 * ->next for the caller to call back once unlocked. */
static struct cm_budget_waiter *serve_locked(struct cm_budget *b)
{
	struct cm_budget_waiter *done = NULL, **end = &done;

	while (b->head && fits_locked(b, b->head->n)) {
		struct cm_budget_waiter *w = b->head;

		unlink_locked(b, w);
		taken_locked(b, w->n);
		*end = w;
		end = &w->next;
	}
	return done;
}

static void call_back(struct cm_budget_waiter *w, int rc)
{
	while (w) {
		struct cm_budget_waiter *next = w->next;

		w->next = NULL;
		w->ready(w, rc); /* may free w */
		w = next;
	}
}

int cm_budget_queue(struct cm_budget *b, struct cm_budget_waiter *w)
{
	int rc = 0;

	w->next = w->prev = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->closed) {
		rc = -ECANCELED;
	} else if (!b->head && fits_locked(b, w->n)) {
		taken_locked(b, w->n);
	} else {
		b->waits++;
		w->prev = b->tail;
		if (b->tail)
			b->tail->next = w;
		else
			b->head = w;
		b->tail = w;
		b->queued++;
		rc = 1;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

bool cm_budget_cancel(struct cm_budget *b, struct cm_budget_waiter *w)
{
	struct cm_budget_waiter *done = NULL;
	bool queued = false;

	pthread_mutex_lock(&b->lock);
	for (struct cm_budget_waiter *q = b->head; q; q = q->next) {
		if (q == w) {
			queued = true;
			break;
		}
	}
	if (queued) {
		/* it may have held up smaller ones behind it */
		unlink_locked(b, w);
		done = serve_locked(b);
	}
	pthread_mutex_unlock(&b->lock);
	call_back(done, 0);
	return queued;
}

void cm_budget_give(struct cm_budget *b, uint64_t n)
{
	struct cm_budget_waiter *done;

	if (!n)
		return;
	pthread_mutex_lock(&b->lock);
	if (n > b->used)
		abort(); /* more given back than taken: a bug */
	b->used -= n;
	done = serve_locked(b);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	call_back(done, 0);
}

void cm_budget_close(struct cm_budget *b)
{
	struct cm_budget_waiter *done;

	pthread_mutex_lock(&b->lock);
	b->closed = true;
	done = b->head;
	b->head = b->tail = NULL;
	b->queued = 0;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	call_back(done, -ECANCELED);
}

void cm_budget_stats(struct cm_budget *b, struct cm_budget_stats *out)
{
	pthread_mutex_lock(&b->lock);
	out->limit = b->limit;
	out->used = b->used;
	out->peak = b->peak;
	out->waits = b->waits;
	out->waiting = b->waiting + b->queued;
	pthread_mutex_unlock(&b->lock);
}
