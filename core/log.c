/*
 * log.c - see log.h.
 */
#include "log.h"

#include "json.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int level = -1; /* -1: not yet read from the environment */
static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static int format = CM_LOG_PLAIN; /* enum cm_log_format, atomic */
static __thread cm_log_sink_fn thread_sink;
static __thread void *thread_sink_ctx;
static __thread const char *thread_job, *thread_vault;

/* The file of cm_log_open, for cm_log_reopen (the mount opens it on a
 * FUSE thread and reopens it on its signal thread). */
static pthread_mutex_t path_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_path; /* protected by path_lock */

static const char *const level_names[] = { "error", "warning", "notice",
					   "info", "debug" };

static void read_env_level(void)
{
	const char *v = getenv("VAULTFS_LOG");

	if (level >= 0)
		return;
	level = CM_LOG_NOTICE;
	if (!v)
		return;
	if (!strcasecmp(v, "error"))
		level = CM_LOG_ERROR;
	else if (!strcasecmp(v, "warn") || !strcasecmp(v, "warning"))
		level = CM_LOG_WARN;
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

int cm_log_format_parse(const char *s, enum cm_log_format *out)
{
	if (!strcmp(s, "text"))
		*out = CM_LOG_PLAIN;
	else if (!strcmp(s, "json"))
		*out = CM_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

void cm_log_set_format(enum cm_log_format f)
{
	__atomic_store_n(&format, (int)f, __ATOMIC_RELAXED);
}

/* Open `path` over stderr. */
static int open_over_stderr(const char *path, struct cm_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	if (fd < 0)
		return cm_err_set(err, errno, "log %s: %s", path,
				  strerror(errno));
	if (dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;

		close(fd);
		return cm_err_set(err, e, "log %s: dup2: %s", path,
				  strerror(e));
	}
	close(fd);
	return 0;
}

int cm_log_open(const char *path, struct cm_err *err)
{
	int rc = open_over_stderr(path, err);

	if (rc)
		return rc;
	pthread_mutex_lock(&path_lock);
	free(log_path);
	log_path = cm_xstrdup(path);
	pthread_mutex_unlock(&path_lock);
	/* a file has no clock of its own: stamp every line */
	if (__atomic_load_n(&format, __ATOMIC_RELAXED) == CM_LOG_PLAIN)
		cm_log_set_format(CM_LOG_STAMPED);
	return 0;
}

int cm_log_reopen(struct cm_err *err)
{
	int rc;

	pthread_mutex_lock(&path_lock);
	rc = log_path ? open_over_stderr(log_path, err) : 0;
	pthread_mutex_unlock(&path_lock);
	return rc;
}

void cm_log_stamp(char *out, size_t n)
{
	struct timeval tv;
	struct tm tm;
	char day[24];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03u+00:00", day,
		 (unsigned)(tv.tv_usec / 1000) % 1000u);
}

void cm_log_set_thread_sink(cm_log_sink_fn fn, void *ctx)
{
	thread_sink = fn;
	thread_sink_ctx = ctx;
}

void cm_log_set_thread_job(const char *job_id, const char *vault)
{
	thread_job = job_id;
	thread_vault = vault;
}

/* The line as it goes out, in the form in use, with its newline. */
static char *render(enum cm_log_level l, const char *job, const char *vault,
		    const char *msg)
{
	enum cm_log_format f = __atomic_load_n(&format, __ATOMIC_RELAXED);
	char stamp[40];

	if (f == CM_LOG_PLAIN)
		return l == CM_LOG_NOTICE ?
			       cm_xasprintf("vaultfs: %s\n", msg) :
			       cm_xasprintf("vaultfs: %s: %s\n",
					    level_names[l], msg);
	cm_log_stamp(stamp, sizeof(stamp));
	if (f == CM_LOG_STAMPED)
		return cm_xasprintf("%s %s %s%s%s%s\n", stamp, level_names[l],
				    job ? "[" : "", job ? job : "",
				    job ? "] " : "", msg);
	{
		struct cm_json *o = cm_json_new_object();
		char *text, *line;

		cm_json_add_str(o, "time", stamp);
		cm_json_add_str(o, "level", level_names[l]);
		if (job)
			cm_json_add_str(o, "job", job);
		if (vault)
			cm_json_add_str(o, "vault", vault);
		cm_json_add_str(o, "msg", msg);
		text = cm_json_print_line(o);
		cm_json_free(o);
		line = cm_xasprintf("%s\n", text);
		free(text);
		return line;
	}
}

static void emit(enum cm_log_level l, const char *job, const char *vault,
		 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void emit(enum cm_log_level l, const char *job, const char *vault,
		 const char *fmt, va_list ap)
{
	char msg[2048];
	char *line;

	if (l > cm_log_get_level() && !thread_sink)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (thread_sink) {
		char *with_level = cm_xasprintf("%s: %s", level_names[l], msg);

		thread_sink(thread_sink_ctx, l, with_level);
		free(with_level);
	}
	if (l > cm_log_get_level())
		return;
	line = render(l, job, vault, msg);
	if (write(STDERR_FILENO, line, strlen(line)) < 0) {
		/* nowhere left to report it */
	}
	free(line);
}

void cm_vlog(enum cm_log_level l, const char *fmt, va_list ap)
{
	emit(l, thread_job, thread_vault, fmt, ap);
}

void cm_log(enum cm_log_level l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cm_vlog(l, fmt, ap);
	va_end(ap);
}

void cm_log_job(enum cm_log_level l, const char *job_id, const char *vault,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(l, job_id, vault, fmt, ap);
	va_end(ap);
}
