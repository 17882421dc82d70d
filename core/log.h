/*
 * log.h - the one logging path.
 *
 * Lines go to stderr as "vaultfs: LEVEL: message" (the level is omitted for
 * errors printed by commands, see cm_log_set_prefix). A job may install a
 * thread-local sink so that its lines also land in its own log (the view's
 * `log` file). Thread-safe: one line is written with one write(2).
 * Secrets never reach this module: callers log no credentials or signatures.
 */
#ifndef VAULTFS_LOG_H
#define VAULTFS_LOG_H

#include <stdarg.h>

enum cm_log_level {
	CM_LOG_ERROR = 0,
	CM_LOG_WARN = 1,
	CM_LOG_INFO = 2,
	CM_LOG_DEBUG = 3,
};

/* Lines above `level` are dropped. Default CM_LOG_WARN, or VAULTFS_LOG
 * (error|warn|info|debug) from the environment at the first call. */
void cm_log_set_level(enum cm_log_level level);
enum cm_log_level cm_log_get_level(void);

/* A per-thread extra sink (NULL to remove). `fn` is borrowed; `ctx` is
 * passed back untouched. Called without any lock held by this module. */
typedef void (*cm_log_sink_fn)(void *ctx, enum cm_log_level level,
			       const char *line);
void cm_log_set_thread_sink(cm_log_sink_fn fn, void *ctx);

void cm_log(enum cm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cm_vlog(enum cm_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define cm_error(...) cm_log(CM_LOG_ERROR, __VA_ARGS__)
#define cm_warn(...) cm_log(CM_LOG_WARN, __VA_ARGS__)
#define cm_info(...) cm_log(CM_LOG_INFO, __VA_ARGS__)
#define cm_debug(...) cm_log(CM_LOG_DEBUG, __VA_ARGS__)

#endif
