/*
 * log.c - see log.h.
 */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int level = -1; /* -1: not yet read from the environment */
static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static __thread cm_log_sink_fn thread_sink;
static __thread void *thread_sink_ctx;

static const char *const level_names[] = { "error", "warning", "info",
					   "debug" };

static void read_env_level(void)
{
	const char *v = getenv("VAULTFS_LOG");

	if (level >= 0)
		return;
	level = CM_LOG_WARN;
	if (!v)
		return;
	if (!strcasecmp(v, "error"))
		level = CM_LOG_ERROR;
	else if (!strcasecmp(v, "info"))
		level = CM_LOG_INFO;
	else if (!strcasecmp(v, "debug"))
		level = CM_LOG_DEBUG;
}

void cm_log_set_level(enum cm_log_level l)
{
	pthread_once(&level_once, read_env_level);
	__atomic_store_n(&level, (int)l, __ATOMIC_RELAXED);
}

enum cm_log_level cm_log_get_level(void)
{
	pthread_once(&level_once, read_env_level);
	return (enum cm_log_level)__atomic_load_n(&level, __ATOMIC_RELAXED);
}

void cm_log_set_thread_sink(cm_log_sink_fn fn, void *ctx)
{
	thread_sink = fn;
	thread_sink_ctx = ctx;
}

void cm_vlog(enum cm_log_level l, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (l > cm_log_get_level() && !thread_sink)
		return;
	n = snprintf(line, sizeof(line), "vaultfs: %s: ", level_names[l]);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	n = (int)strlen(line);
	if (thread_sink)
		thread_sink(thread_sink_ctx, l, line + strlen("vaultfs: "));
	if (l > cm_log_get_level())
		return;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void cm_log(enum cm_log_level l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cm_vlog(l, fmt, ap);
	va_end(ap);
}
