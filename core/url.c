/*
 * url.c - see url.h.
 */
#include "url.h"

#include <string.h>

enum cm_url_kind cm_url_kind(const char *s)
{
	/* case-sensitive, as it always was: "S3://b" is a relative path */
	if (s && !strncmp(s, "s3://", 5))
		return CM_URL_S3;
	return CM_URL_PATH;
}
