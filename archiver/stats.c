/*
 * stats.c - what a source saw, for the log and the manifest (see source.h),
 * and the small helpers every source shares: progress, cancellation, zero
 * detection, printable names.
 *
 * Names in a filesystem are bytes, not text: a skipped path may hold a
 * newline or bytes that are not UTF-8. Everything a source records is first
 * made printable (arc_printable), so that log lines stay one line and the
 * manifest stays valid JSON.
 */
#include "source_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

/* Report progress at most this often. */
#define PROGRESS_INTERVAL_NS (200ull * 1000 * 1000)

int arc_mode_parse(const char *name, enum arc_mode *out)
{
	if (!strcmp(name, "auto"))
		*out = ARC_MODE_AUTO;
	else if (!strcmp(name, "tree"))
		*out = ARC_MODE_TREE;
	else if (!strcmp(name, "raw"))
		*out = ARC_MODE_RAW;
	else
		return -EINVAL;
	return 0;
}

const char *arc_mode_name(enum arc_mode m)
{
	switch (m) {
	case ARC_MODE_TREE:
		return "tree";
	case ARC_MODE_RAW:
		return "raw";
	default:
		return "auto";
	}
}

const char *arc_method_name(enum arc_method m)
{
	return m == ARC_METHOD_RAW ? "raw" : "tree";
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if there is none. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* the second byte's range excludes overlongs and surrogates */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

char *arc_printable(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	/* at worst every byte becomes 4 */
	char *out = cm_xmalloc(len * 4 + 1);
	char *o = out;

	while (*p) {
		size_t n = utf8_len(p);

		if (*p == '\\') {
			*o++ = '\\';
			*o++ = '\\';
			p++;
		} else if (n == 0 || *p < 0x20 || *p == 0x7f) {
			o += sprintf(o, "\\x%02x", *p);
			p++;
		} else {
			memcpy(o, p, n);
			o += n;
			p += n;
		}
	}
	*o = '\0';
	return out;
}

bool arc_is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	/* a quick look at the head, then one overlapping compare */
	if (n == 0)
		return true;
	if (n >= 16) {
		static const unsigned char z16[16];

		if (memcmp(b, z16, 16) != 0)
			return false;
		return memcmp(b, b + 16, n - 16) == 0;
	}
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

bool arc_source_cancelled(const struct arc_source_opts *opts)
{
	return opts && opts->cancel &&
	       atomic_load_explicit(opts->cancel, memory_order_relaxed);
}

/*
 * Test-only (docs/orchestrator.md, "Test-only switches"):
 * VAULTFS_TEST_HOOK_READ=NAME:COMMAND runs COMMAND with /bin/sh -c, and
 * waits for it, right after the first read of the file whose name (in the
 * tar, or the raw source's path) is NAME or ends in /NAME: a file changed
 * while it is read, on purpose rather than by luck of timing.
 */
static const char *hook_read;
static pthread_once_t hook_read_once = PTHREAD_ONCE_INIT;

static void hook_read_init(void)
{
	hook_read = getenv("VAULTFS_TEST_HOOK_READ");
	if (hook_read && !strchr(hook_read, ':'))
		hook_read = NULL;
	if (hook_read)
		cm_warn("test: VAULTFS_TEST_HOOK_READ is set: a command runs "
			"while a file is read");
}

void arc_test_hook_read(const char *name)
{
	const char *colon;
	size_t n, len = strlen(name);
	int st;

	pthread_once(&hook_read_once, hook_read_init);
	if (!hook_read)
		return;
	colon = strchr(hook_read, ':');
	n = (size_t)(colon - hook_read);
	if (len < n || memcmp(name + len - n, hook_read, n) != 0 ||
	    (len > n && name[len - n - 1] != '/'))
		return;
	cm_warn("test: %s read in part: running %s", name, colon + 1);
	st = system(colon + 1);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		cm_warn("test: the hook's command failed (status %d)", st);
}

int arc_cancel_error(struct cm_err *err)
{
	return cm_err_set(err, ECANCELED, "archive cancelled");
}

void arc_progress(const struct arc_source_opts *opts, struct arc_stats *s,
		  bool force)
{
	uint64_t now;

	if (!opts || !opts->progress)
		return;
	now = cm_now_ns();
	if (!force && now - s->progress_ns < PROGRESS_INTERVAL_NS)
		return;
	s->progress_ns = now;
	/* an estimate may fall short: never report more than 100 % */
	opts->progress(opts->progress_ctx, s->bytes_read,
		       s->bytes_total && s->bytes_total < s->bytes_read
			       ? s->bytes_read
			       : s->bytes_total);
}

void arc_stats_init(struct arc_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->method = ARC_METHOD_TREE;
}

static void volume_release(struct arc_volume *v)
{
	free(v->name);
	free(v->part_type);
	free(v->fstype);
	free(v->label);
	free(v->uuid);
	free(v->entry);
	free(v->note);
	free(v->journal);
}

void arc_stats_release(struct arc_stats *s)
{
	for (size_t i = 0; i < s->nskipped; i++) {
		free(s->skipped[i].path);
		free(s->skipped[i].reason);
	}
	free(s->skipped);
	for (size_t i = 0; i < s->nvolumes; i++)
		volume_release(&s->volumes[i]);
	free(s->volumes);
	for (size_t i = 0; i < s->nwarnings; i++)
		free(s->warnings[i]);
	free(s->warnings);
	free(s->pttype);
	arc_stats_init(s);
}

void arc_stats_skip(struct arc_stats *s, const char *path, const char *fmt,
		    ...)
{
	char *shown = arc_printable(path);
	char reason[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	cm_warn("%s: %s", shown, reason);
	s->skipped_count++;
	if (s->nskipped >= ARC_STATS_MAX_LIST) {
		free(shown);
		return;
	}
	s->skipped = cm_xrealloc(s->skipped,
				 (s->nskipped + 1) * sizeof(*s->skipped));
	s->skipped[s->nskipped].path = shown;
	s->skipped[s->nskipped].reason = arc_printable(reason);
	s->nskipped++;
}

bool arc_stats_complete(const struct arc_stats *s)
{
	return s->skipped_count == 0;
}

int arc_stats_check(const struct arc_stats *s, struct cm_err *err)
{
	if (!s->strict || arc_stats_complete(s))
		return 0;
	/* the first is always in the list: the cap keeps the first ones */
	return cm_err_set(err, EIO, "strict: %s: %s (the archive would be "
			  "incomplete)", s->skipped[0].path,
			  s->skipped[0].reason);
}

char *arc_stats_summary(const struct arc_stats *s)
{
	char *text, *more;

	if (arc_stats_complete(s))
		return NULL;
	text = cm_xasprintf("%llu item%s not archived",
			    (unsigned long long)s->skipped_count,
			    s->skipped_count == 1 ? "" : "s");
	for (size_t i = 0; i < s->nskipped && i < ARC_STATS_SUMMARY_ITEMS;
	     i++) {
		more = cm_xasprintf("%s%s %s: %s", text, i ? ";" : ":",
				    s->skipped[i].path, s->skipped[i].reason);
		free(text);
		text = more;
	}
	if (s->skipped_count > ARC_STATS_SUMMARY_ITEMS) {
		more = cm_xasprintf("%s; ...", text);
		free(text);
		text = more;
	}
	return text;
}

void arc_stats_warn(struct arc_stats *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cm_warn("%s", msg);
	s->warnings_count++;
	if (s->nwarnings >= ARC_STATS_MAX_LIST)
		return;
	s->warnings = cm_xrealloc(s->warnings,
				  (s->nwarnings + 1) * sizeof(*s->warnings));
	s->warnings[s->nwarnings++] = arc_printable(msg);
}

struct arc_volume *arc_stats_add_volume(struct arc_stats *s)
{
	struct arc_volume *v;

	s->volumes = cm_xrealloc(s->volumes,
				 (s->nvolumes + 1) * sizeof(*s->volumes));
	v = &s->volumes[s->nvolumes++];
	memset(v, 0, sizeof(*v));
	return v;
}

/* A string member, made printable; NULL becomes JSON null. */
static void add_text(struct cm_json *obj, const char *key, const char *v)
{
	char *shown = v ? arc_printable(v) : NULL;

	cm_json_add_str(obj, key, shown);
	free(shown);
}

static const char *action_name(enum arc_volume_action a)
{
	switch (a) {
	case ARC_VOL_TREE:
		return "tree";
	case ARC_VOL_RAW:
		return "raw";
	default:
		return "skipped";
	}
}

void arc_stats_to_json(const struct arc_stats *s, struct cm_json *obj)
{
	struct cm_json *arr;

	cm_json_add_bool(obj, "complete", arc_stats_complete(s));
	cm_json_add_str(obj, "method", arc_method_name(s->method));
	cm_json_add_u64(obj, "bytes_read", s->bytes_read);
	cm_json_add_u64(obj, "bytes_total", s->bytes_total);
	cm_json_add_u64(obj, "bytes_zero", s->bytes_zero);
	cm_json_add_u64(obj, "files", s->files);
	cm_json_add_u64(obj, "dirs", s->dirs);
	cm_json_add_u64(obj, "symlinks", s->symlinks);
	cm_json_add_u64(obj, "hardlinks", s->hardlinks);
	cm_json_add_u64(obj, "other", s->other);
	add_text(obj, "partition_table", s->pttype);

	arr = cm_json_add_array(obj, "volumes");
	for (size_t i = 0; i < s->nvolumes; i++) {
		const struct arc_volume *v = &s->volumes[i];
		struct cm_json *o = cm_json_new_object();

		add_text(o, "name", v->name);
		cm_json_add_u64(o, "partno", v->partno);
		cm_json_add_u64(o, "start", v->start);
		cm_json_add_u64(o, "size", v->size);
		add_text(o, "part_type", v->part_type);
		add_text(o, "fstype", v->fstype);
		add_text(o, "label", v->label);
		add_text(o, "uuid", v->uuid);
		cm_json_add_str(o, "action", action_name(v->action));
		add_text(o, "entry", v->entry);
		add_text(o, "note", v->note);
		add_text(o, "journal", v->journal);
		cm_json_add(arr, NULL, o);
	}

	cm_json_add_u64(obj, "skipped_count", s->skipped_count);
	arr = cm_json_add_array(obj, "skipped");
	for (size_t i = 0; i < s->nskipped; i++) {
		struct cm_json *o = cm_json_new_object();

		/* already printable */
		cm_json_add_str(o, "path", s->skipped[i].path);
		cm_json_add_str(o, "reason", s->skipped[i].reason);
		cm_json_add(arr, NULL, o);
	}

	cm_json_add_u64(obj, "warnings_count", s->warnings_count);
	arr = cm_json_add_array(obj, "warnings");
	for (size_t i = 0; i < s->nwarnings; i++)
		cm_json_add(arr, NULL, cm_json_new_str(s->warnings[i]));
}
