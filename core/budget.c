/*
 * budget.c - see budget.h. A counter under a mutex, and a condition
 * variable for the takers that wait; waiters are served as bytes come
 * back, in no particular order (each re-checks what it needs).
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
	unsigned waiting; /* protected by ->lock */
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
	if (b->used || b->waiting)
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
	ok = !b->closed && fits_locked(b, n);
	if (ok)
		taken_locked(b, n);
	pthread_mutex_unlock(&b->lock);
	return ok;
}

void cm_budget_give(struct cm_budget *b, uint64_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&b->lock);
	if (n > b->used)
		abort(); /* more given back than taken: a bug */
	b->used -= n;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

void cm_budget_close(struct cm_budget *b)
{
	pthread_mutex_lock(&b->lock);
	b->closed = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

void cm_budget_stats(struct cm_budget *b, struct cm_budget_stats *out)
{
	pthread_mutex_lock(&b->lock);
	out->limit = b->limit;
	out->used = b->used;
	out->peak = b->peak;
	out->waits = b->waits;
	out->waiting = b->waiting;
	pthread_mutex_unlock(&b->lock);
}
