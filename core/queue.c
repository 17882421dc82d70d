/*
 * queue.c - see queue.h. A ring of pointers under one mutex and two
 * condition variables (not_empty, not_full).
 */
#include "queue.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>

struct cm_queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	void **ring;       /* protected by ->lock */
	size_t cap;
	size_t head;       /* protected by ->lock: next to pop */
	size_t len;        /* protected by ->lock */
	bool closed;       /* protected by ->lock */
};

struct cm_queue *cm_queue_new(size_t cap)
{
	struct cm_queue *q = cm_xcalloc(1, sizeof(*q));

	if (cap == 0)
		cap = 1;
	q->ring = cm_xcalloc(cap, sizeof(void *));
	q->cap = cap;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	return q;
}

void cm_queue_free(struct cm_queue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->ring);
	free(q);
}

int cm_queue_push(struct cm_queue *q, void *item)
{
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	while (q->len == q->cap && !q->closed)
		pthread_cond_wait(&q->not_full, &q->lock);
	if (q->closed) {
		rc = -EPIPE;
		goto out;
	}
	q->ring[(q->head + q->len) % q->cap] = item;
	q->len++;
	pthread_cond_signal(&q->not_empty);
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static void take(struct cm_queue *q, void **item)
{
	*item = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	pthread_cond_signal(&q->not_full);
}

int cm_queue_pop(struct cm_queue *q, void **item)
{
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	while (q->len == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->len == 0)
		rc = -EPIPE;
	else
		take(q, item);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int cm_queue_trypop(struct cm_queue *q, void **item)
{
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	if (q->len)
		take(q, item);
	else
		rc = q->closed ? -EPIPE : -EAGAIN;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void cm_queue_close(struct cm_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

size_t cm_queue_len(struct cm_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len;
	pthread_mutex_unlock(&q->lock);
	return n;
}

struct pool_task {
	cm_pool_fn fn;
	void *arg;
};

struct cm_pool {
	struct cm_queue *tasks;
	pthread_t *threads;
	unsigned nthreads;
};

static void *pool_worker(void *arg)
{
	struct cm_pool *p = arg;
	void *item;

	while (cm_queue_pop(p->tasks, &item) == 0) {
		struct pool_task *t = item;

		t->fn(t->arg);
		free(t);
	}
	return NULL;
}

struct cm_pool *cm_pool_new(unsigned nthreads, size_t queue_cap)
{
	struct cm_pool *p = cm_xcalloc(1, sizeof(*p));

	if (nthreads == 0)
		nthreads = 1;
	p->tasks = cm_queue_new(queue_cap);
	p->threads = cm_xcalloc(nthreads, sizeof(pthread_t));
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_worker, p) != 0)
			abort(); /* no threads: nothing sane to do */
		p->nthreads++;
	}
	return p;
}

int cm_pool_submit(struct cm_pool *p, cm_pool_fn fn, void *arg)
{
	struct pool_task *t = cm_xmalloc(sizeof(*t));
	int rc;

	t->fn = fn;
	t->arg = arg;
	rc = cm_queue_push(p->tasks, t);
	if (rc)
		free(t);
	return rc;
}

void cm_pool_free(struct cm_pool *p)
{
	if (!p)
		return;
	cm_queue_close(p->tasks);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	cm_queue_free(p->tasks);
	free(p->threads);
	free(p);
}
