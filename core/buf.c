/*
 * buf.c - see buf.h.
 */
#include "buf.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cm_buf_init(struct cm_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void cm_buf_release(struct cm_buf *b)
{
	free(b->data);
	cm_buf_init(b, b->max);
}

void cm_buf_reset(struct cm_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int cm_buf_reserve(struct cm_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap;

	if (b->max && b->len + extra > b->max)
		return -EMSGSIZE;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->data = cm_xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int cm_buf_append(struct cm_buf *b, const void *p, size_t n)
{
	int rc = cm_buf_reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cm_buf_puts(struct cm_buf *b, const char *s)
{
	return cm_buf_append(b, s, strlen(s));
}

int cm_buf_vprintf(struct cm_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	int rc;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	rc = cm_buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int cm_buf_printf(struct cm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cm_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *cm_buf_detach(struct cm_buf *b)
{
	char *p = b->data ? b->data : cm_xstrdup("");

	cm_buf_init(b, b->max);
	return p;
}

const char *cm_buf_str(const struct cm_buf *b)
{
	return b->data ? b->data : "";
}
