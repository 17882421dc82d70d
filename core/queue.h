/*
 * queue.h - a bounded blocking queue of pointers, and a worker pool on it.
 *
 * The queue is the back-pressure primitive of every pipeline in vaultfs: a
 * producer that runs ahead blocks in cm_queue_push until a consumer catches
 * up, so memory is bounded by the queue's capacity times the item size.
 * Closing the queue wakes everyone: pushes fail with -EPIPE, pops drain what
 * is left and then return -EPIPE. Items are borrowed pointers: the queue
 * never frees them.
 *
 * The pool runs `cm_pool_task`s on N threads. cm_pool_submit blocks while
 * `queue_cap` tasks are waiting. cm_pool_free closes the queue, lets the
 * workers finish what was queued, and joins them.
 */
#ifndef VAULTFS_QUEUE_H
#define VAULTFS_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct cm_queue;

struct cm_queue *cm_queue_new(size_t cap);
void cm_queue_free(struct cm_queue *q); /* NULL is a no-op; must be idle */
int cm_queue_push(struct cm_queue *q, void *item);  /* 0 or -EPIPE */
int cm_queue_pop(struct cm_queue *q, void **item);  /* 0 or -EPIPE */
/* Non-blocking pop: 0, -EAGAIN when empty, -EPIPE when closed and empty. */
int cm_queue_trypop(struct cm_queue *q, void **item);
void cm_queue_close(struct cm_queue *q);
size_t cm_queue_len(struct cm_queue *q);

typedef void (*cm_pool_fn)(void *arg);
struct cm_pool;

struct cm_pool *cm_pool_new(unsigned nthreads, size_t queue_cap);
/* Queue fn(arg); 0 or -EPIPE after cm_pool_free started. */
int cm_pool_submit(struct cm_pool *p, cm_pool_fn fn, void *arg);
/* Finish every queued task, join the threads, free. NULL is a no-op. */
void cm_pool_free(struct cm_pool *p);

#endif
