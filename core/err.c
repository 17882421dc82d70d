/*
 * err.c - see err.h.
 */
#include "err.h"

#include <stdio.h>
#include <errno.h>
#include <string.h>

#define EIO_FALLBACK EIO

void cm_err_clear(struct cm_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->retryable = false;
	err->msg[0] = '\0';
}

int cm_err_vset(struct cm_err *err, int code, bool retryable, const char *fmt,
		va_list ap)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO_FALLBACK;
	if (err) {
		err->code = code;
		err->retryable = retryable;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return -code;
}

int cm_err_set(struct cm_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cm_err_vset(err, code, false, fmt, ap);
	va_end(ap);
	return rc;
}

int cm_err_retry(struct cm_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cm_err_vset(err, code, true, fmt, ap);
	va_end(ap);
	return rc;
}

int cm_err_prefix(struct cm_err *err, const char *fmt, ...)
{
	char prefix[256];
	char old[CM_ERR_MSG_MAX];
	va_list ap;
	size_t plen;

	if (!err)
		return -EIO_FALLBACK;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	plen = strlen(prefix);
	if (plen + 2 >= sizeof(err->msg))
		plen = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, ": ", 2);
	/* the old message is cut if the two do not fit together */
	memcpy(err->msg + plen + 2, old,
	       strnlen(old, sizeof(err->msg) - plen - 3));
	err->msg[plen + 2 + strnlen(old, sizeof(err->msg) - plen - 3)] = '\0';
	return err->code ? -err->code : -EIO_FALLBACK;
}
