/*
 * log.h - the one logging path.
 *
 * Lines go to stderr. Three forms (cm_log_set_format, cm_log_open):
 *
 *   plain    "vaultfs: LEVEL: message" ("vaultfs: message" at notice):
 *            for a terminal and for journald, which stamps lines itself
 *   stamped  "2026-12-03T15:31:42.123+00:00 LEVEL [JOB] message": what a
 *            log file gets (cm_log_open), so that every line in it says
 *            when it was written (UTC, with the offset, in milliseconds)
 *            and, in a job's thread, which job wrote it
 *   json     one object per line for log shippers:
 *            {"time":"...","level":"...","job":"...","vault":"...",
 *             "msg":"..."} (job and vault only where there is one)
 *
 * A job may install a thread-local sink so that its lines also land in
 * its own log (the view's `log` file), and names itself
 * (cm_log_set_thread_job) for the stamped and json forms. Thread-safe: one
 * line is written with one write(2); cm_log_reopen replaces the file under
 * the writers with dup2(2), which is atomic.
 * Secrets never reach this module: callers log no credentials or signatures.
 */
#ifndef VAULTFS_LOG_H
#define VAULTFS_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

enum cm_log_level {
	CM_LOG_ERROR = 0,
	CM_LOG_WARN = 1,
	CM_LOG_NOTICE = 2, /* what a daemon says it did (a job ended) */
	CM_LOG_INFO = 3,
	CM_LOG_DEBUG = 4,
};

/* Lines above `level` are dropped. Default CM_LOG_NOTICE, or VAULTFS_LOG
 * (error|warn|notice|info|debug) from the environment at the first call. */
void cm_log_set_level(enum cm_log_level level);
enum cm_log_level cm_log_get_level(void);

enum cm_log_format {
	CM_LOG_PLAIN = 0,
	CM_LOG_STAMPED,
	CM_LOG_JSON,
};

/* "text" (plain on stderr, stamped in a file) or "json"; -EINVAL. */
int cm_log_format_parse(const char *s, enum cm_log_format *out);
void cm_log_set_format(enum cm_log_format f);

/*
 * Send stderr (these lines, and whatever else the process writes there)
 * to the file at `path`, appended to, created 0640; the plain form
 * becomes stamped. -errno with err set when it cannot be opened (stderr
 * is then untouched).
 */
int cm_log_open(const char *path, struct cm_err *err);
/* Open the file of cm_log_open again (logrotate moved it away): 0 when
 * there is none. On failure the old file stays in use. */
int cm_log_reopen(struct cm_err *err);

/* "2026-12-03T15:31:42.123+00:00" (now, UTC) into out (>= 30 bytes). */
void cm_log_stamp(char *out, size_t n);

/* A per-thread extra sink (NULL to remove). `fn` is borrowed; `ctx` is
 * passed back untouched. Called without any lock held by this module. */
typedef void (*cm_log_sink_fn)(void *ctx, enum cm_log_level level,
			       const char *line);
void cm_log_set_thread_sink(cm_log_sink_fn fn, void *ctx);

/* The job (and its vault) this thread works for, named in the stamped
 * and json forms; NULLs for none. Both borrowed until replaced. */
void cm_log_set_thread_job(const char *job_id, const char *vault);

void cm_log(enum cm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cm_vlog(enum cm_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* One line for another thread's job (a daemon reporting a job's end). */
void cm_log_job(enum cm_log_level level, const char *job_id,
		const char *vault, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define cm_error(...) cm_log(CM_LOG_ERROR, __VA_ARGS__)
#define cm_warn(...) cm_log(CM_LOG_WARN, __VA_ARGS__)
#define cm_notice(...) cm_log(CM_LOG_NOTICE, __VA_ARGS__)
#define cm_info(...) cm_log(CM_LOG_INFO, __VA_ARGS__)
#define cm_debug(...) cm_log(CM_LOG_DEBUG, __VA_ARGS__)

#endif
