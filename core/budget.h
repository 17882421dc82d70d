/*
 * budget.h - one memory budget shared by many users: bytes are taken
 * before a buffer is allocated and given back after it is freed, so that
 * what all of them hold together stays under one limit (the view's
 * read-ahead windows and upload part buffers: view.memoryLimit).
 *
 * cm_budget_take waits while the bytes are not there; cm_budget_try never
 * waits (for what is only a hint, like read-ahead); cm_budget_queue waits
 * without a thread: the waiter is queued and called back once its bytes
 * are taken for it (the view parks a FUSE request this way, so that any
 * number of writers wait on a bounded number of threads). A take larger
 * than the whole limit waits until nothing is taken, then goes through: a
 * single user is never refused for good. cm_budget_close wakes every
 * waiter, calls back every queued one with -ECANCELED, and makes later
 * takes fail with -ECANCELED (shutting down).
 *
 * Queued waiters are served first come, first served, before the threads
 * that wait in cm_budget_take (which re-check as bytes come back).
 *
 * Threads: every function may be called from any thread; ->lock is a
 * leaf (no callback runs under it: a queued waiter is called back by the
 * thread that gave the bytes back, or closed the budget, after it let go
 * of the lock).
 */
#ifndef VAULTFS_BUDGET_H
#define VAULTFS_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct cm_budget;

/* limit in bytes (> 0) */
struct cm_budget *cm_budget_new(uint64_t limit);
void cm_budget_free(struct cm_budget *b); /* NULL is a no-op; nothing taken */

/* 0, or -ECANCELED once closed. Waits while n bytes are not free. */
int cm_budget_take(struct cm_budget *b, uint64_t n);

/* A waiter that holds no thread; the caller's, embedded in its own
 * struct, untouched by the budget once called back or cancelled. */
struct cm_budget_waiter {
	struct cm_budget_waiter *next, *prev; /* the budget's */
	uint64_t n;
	/* rc 0: the n bytes are taken for the waiter (give them back with
	 * cm_budget_give); -ECANCELED: the budget closed, nothing taken. */
	void (*ready)(struct cm_budget_waiter *w, int rc);
};

/* Take w->n bytes now (0), or queue w (1): w->ready is called once,
 * later, from another thread. -ECANCELED once closed (nothing queued). */
int cm_budget_queue(struct cm_budget *b, struct cm_budget_waiter *w);
/* Take a queued waiter out: true when it was still queued (it will not be
 * called back), false when it is being or has been called back. */
bool cm_budget_cancel(struct cm_budget *b, struct cm_budget_waiter *w);
/* true when n bytes were free and are now taken. */
bool cm_budget_try(struct cm_budget *b, uint64_t n);
void cm_budget_give(struct cm_budget *b, uint64_t n);
void cm_budget_close(struct cm_budget *b);

struct cm_budget_stats {
	uint64_t limit;
	uint64_t used;	  /* taken now */
	uint64_t peak;	  /* the most ever taken at once */
	uint64_t waits;	  /* takes that had to wait */
	unsigned waiting; /* takers waiting now (threads and queued) */
};
void cm_budget_stats(struct cm_budget *b, struct cm_budget_stats *out);

#endif
