/*
 * budget.h - one memory budget shared by many users: bytes are taken
 * before a buffer is allocated and given back after it is freed, so that
 * what all of them hold together stays under one limit (the view's
 * read-ahead windows and upload part buffers: view.memoryLimit).
 *
 * cm_budget_take waits while the bytes are not there; cm_budget_try never
 * waits (for what is only a hint, like read-ahead). A take larger than the
 * whole limit waits until nothing is taken, then goes through: a single
 * user is never refused for good. cm_budget_close wakes every waiter and
 * makes later takes fail with -ECANCELED (shutting down).
 *
 * Threads: every function may be called from any thread; ->lock is a
 * leaf (no callback runs under it).
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
/* true when n bytes were free and are now taken. */
bool cm_budget_try(struct cm_budget *b, uint64_t n);
void cm_budget_give(struct cm_budget *b, uint64_t n);
void cm_budget_close(struct cm_budget *b);

struct cm_budget_stats {
	uint64_t limit;
	uint64_t used;	  /* taken now */
	uint64_t peak;	  /* the most ever taken at once */
	uint64_t waits;	  /* takes that had to wait */
	unsigned waiting; /* takers waiting now */
};
void cm_budget_stats(struct cm_budget *b, struct cm_budget_stats *out);

#endif
