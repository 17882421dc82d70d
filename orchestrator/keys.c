/*
 * keys.c - archive keys and job ids (see keys.h).
 */
#include "keys.h"
#include "buf.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for the longest object name after a job folder. */
#define OBJECT_NAME_ROOM 32
#define SEGMENT_MAX 255

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_id_ms; /* protected by id_lock */

void orch_job_id_format(uint64_t ms, uint32_t rnd, char out[ORCH_JOB_ID_SIZE])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char date[20];

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y%m%dT%H%M%S", &tm);
	snprintf(out, ORCH_JOB_ID_SIZE, "%.15s.%03uZ-%08x", date,
		 (unsigned)(ms % 1000), rnd);
}

void orch_job_id_new(char out[ORCH_JOB_ID_SIZE])
{
	struct timespec ts;
	uint64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	pthread_mutex_lock(&id_lock);
	if (ms <= last_id_ms)
		ms = last_id_ms + 1;
	last_id_ms = ms;
	pthread_mutex_unlock(&id_lock);
	orch_job_id_format(ms, (uint32_t)cm_random(1ull << 32), out);
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool orch_job_id_valid(const char *id)
{
	/* 0         1         2
	 * 01234567890123456789012345678
	 * 20261126T204516.123Z-3f9a1c0b */
	if (!id || strlen(id) != ORCH_JOB_ID_LEN)
		return false;
	if (!all_digits(id, 8) || id[8] != 'T' || !all_digits(id + 9, 6) ||
	    id[15] != '.' || !all_digits(id + 16, 3) || id[19] != 'Z' ||
	    id[20] != '-')
		return false;
	for (int i = 21; i < ORCH_JOB_ID_LEN; i++)
		if (!strchr("0123456789abcdef", id[i]))
			return false;
	return true;
}

const char *orch_archive_name(enum orch_archive_kind kind,
			      enum arc_codec codec)
{
	bool tree = kind == ORCH_ARCHIVE_TREE;

	switch (codec) {
	case ARC_CODEC_GZIP:
		return tree ? "backup.tar.gz" : "rawbackup.gz";
	case ARC_CODEC_ZSTD:
		return tree ? "backup.tar.zst" : "rawbackup.zst";
	case ARC_CODEC_NONE:
		break;
	}
	return tree ? "backup.tar" : "rawbackup.img";
}

static bool plain_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("-_.+=@,~", c));
}

static int append_segment(struct cm_buf *b, const char *s, size_t n,
			  const char *rid, struct cm_err *err)
{
	size_t start = b->len;
	bool dots = (n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.');

	if (n == 0) {
		cm_buf_puts(b, "_");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (plain_byte(c) && !dots)
			cm_buf_append(b, &s[i], 1);
		else
			cm_buf_printf(b, "%%%02X", c);
	}
	if (b->len - start > SEGMENT_MAX)
		return cm_err_set(err, ENAMETOOLONG,
				  "resource id \"%.64s...\": a segment is "
				  "longer than %d bytes", rid, SEGMENT_MAX);
	return 0;
}

int orch_key_resource_path(const char *resource_id, char **out,
			   struct cm_err *err)
{
	struct cm_buf b;
	const char *p = resource_id, *end;
	int rc = 0;

	if (!resource_id || !*resource_id)
		return cm_err_set(err, EINVAL, "empty resource id");
	cm_buf_init(&b, 0);
	for (;;) {
		end = p + strcspn(p, ":/");
		rc = append_segment(&b, p, (size_t)(end - p), resource_id,
				    err);
		if (rc)
			goto out;
		if (!*end)
			break;
		cm_buf_puts(&b, "/");
		p = end + 1;
	}
	if (b.len > ORCH_KEY_MAX) {
		rc = cm_err_set(err, ENAMETOOLONG,
				"resource id \"%.64s...\" is too long",
				resource_id);
		goto out;
	}
	*out = cm_buf_detach(&b);
out:
	cm_buf_release(&b);
	return rc;
}

int orch_key_job_dir(const char *prefix, const char *resource_id, time_t t,
		     const char *job_id, char **out, struct cm_err *err)
{
	char *res = NULL;
	struct tm tm;
	char *dir;
	int rc;

	if (prefix && *prefix && !orch_key_is_safe(prefix))
		return cm_err_set(err, EINVAL, "unsafe key prefix \"%s\"",
				  prefix);
	if (!orch_job_id_valid(job_id))
		return cm_err_set(err, EINVAL, "invalid job id \"%s\"",
				  job_id ? job_id : "(null)");
	rc = orch_key_resource_path(resource_id, &res, err);
	if (rc)
		return rc;
	if (!prefix)
		prefix = "";
	gmtime_r(&t, &tm);
	dir = cm_xasprintf("%s%s%s/Y=%04d/M=%02d/D=%02d/%s/", prefix,
			   *prefix && prefix[strlen(prefix) - 1] != '/' ? "/"
									: "",
			   res, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			   job_id);
	free(res);
	if (strlen(dir) + OBJECT_NAME_ROOM > ORCH_KEY_MAX) {
		free(dir);
		return cm_err_set(err, ENAMETOOLONG,
				  "archive key for \"%.64s\" is too long",
				  resource_id);
	}
	*out = dir;
	return 0;
}

bool orch_key_is_safe(const char *key)
{
	const char *p = key, *end;
	size_t len;

	if (!key || !*key || *key == '/')
		return false;
	len = strlen(key);
	if (len > ORCH_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return false;
	for (;;) {
		size_t n;

		end = strchrnul(p, '/');
		n = (size_t)(end - p);
		if (n == 0 && !(*end == '\0' && p != key))
			return false; /* empty, except after a last '/' */
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!*end)
			return true;
		p = end + 1;
	}
}

int orch_key_local_path(const char *store_dir, const char *key, char **out,
			struct cm_err *err)
{
	size_t n;

	if (!orch_key_is_safe(key))
		return cm_err_set(err, EINVAL, "unsafe key \"%s\"", key);
	n = strlen(store_dir);
	while (n > 0 && store_dir[n - 1] == '/')
		n--;
	*out = cm_xasprintf("%.*s/%s", (int)n, store_dir, key);
	return 0;
}
