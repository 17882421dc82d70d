/*
 * url.c - see url.h.
 */
#include "url.h"

#include <string.h>
#include <strings.h>

enum cm_url_kind cm_url_kind(const char *s)
{
	/* case-sensitive, as it always was: "S3://b" is a relative path */
	if (s && !strncmp(s, "s3://", 5))
		return CM_URL_S3;
	return CM_URL_PATH;
}

bool cm_url_is_typo(const char *s)
{
	return s && !strncasecmp(s, "s3:", 3) && cm_url_kind(s) != CM_URL_S3;
}
