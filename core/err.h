/*
 * err.h - errors as values.
 *
 * Every fallible function in vaultfs returns 0 on success or a negative errno.
 * The human-readable reason travels in an optional `struct cm_err *` that the
 * caller owns (usually on its stack); it is written only on failure, so a
 * caller may pass the same one down a chain of calls and read the first
 * failure's message at the top (git, curl).
 *
 * Each error is classified: `retryable` is set for failures that may pass on
 * their own (S3 5xx and SlowDown, timeouts, resets); everything else is fatal
 * and fails the job at once.
 */
#ifndef VAULTFS_ERR_H
#define VAULTFS_ERR_H

#include <stdarg.h>
#include <stdbool.h>

#define CM_ERR_MSG_MAX 1024

struct cm_err {
	int code;                  /* positive errno, 0 while unset */
	bool retryable;            /* true: the same call may succeed later */
	char msg[CM_ERR_MSG_MAX];  /* "context: reason", no trailing newline */
};

/* Reset to "no error". */
void cm_err_clear(struct cm_err *err);

/*
 * Record a fatal failure: err may be NULL. Returns -code, so that
 * `return cm_err_set(err, EINVAL, "bad part size %zu", n);` reads naturally.
 */
int cm_err_set(struct cm_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same, marked retryable. */
int cm_err_retry(struct cm_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context: "ctx: old message". */
int cm_err_prefix(struct cm_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int cm_err_vset(struct cm_err *err, int code, bool retryable, const char *fmt,
		va_list ap) __attribute__((format(printf, 4, 0)));

#endif
