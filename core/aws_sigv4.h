/*
 * aws_sigv4.h - AWS Signature Version 4 (header-based).
 *
 * Builds the canonical request, the string to sign and the Authorization
 * header exactly as the official test suite expects (tests/data/sigv4).
 * Two path rules exist: services other than S3 normalise the path (remove
 * "." and "..", merge slashes) and encode it twice; S3 uses the path as
 * given (already encoded once by the caller). The signing key depends only
 * on (secret, date, region, service) and is cached in the signer.
 *
 * Secrets are never logged; the result strings hold no secret (the
 * Authorization header holds a signature, which callers must not log
 * either).
 */
#ifndef VAULTFS_AWS_SIGV4_H
#define VAULTFS_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

#define AWS_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

struct aws_sigv4_header {
	const char *name;   /* any case; canonicalised to lowercase */
	const char *value;  /* trimmed, inner runs of spaces folded */
};

struct aws_sigv4_request {
	const char *method;
	const char *path;    /* request path as on the wire ("/a%20b"), "" = "/" */
	const char *query;   /* raw query without '?', or NULL */
	const struct aws_sigv4_header *headers; /* must include Host and
						 * X-Amz-Date; duplicates of
						 * one name are joined with
						 * ',' in order */
	size_t nheaders;
	const char *payload_hash; /* hex sha256 of the body, or
				   * AWS_UNSIGNED_PAYLOAD */
};

struct aws_sigv4_creds {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "": none (the caller adds the
				    * X-Amz-Security-Token header) */
};

struct aws_sigv4_result {
	char *canonical_request;  /* owned by the result */
	char *string_to_sign;
	char *authorization;      /* the value of the Authorization header */
};

struct aws_sigv4_signer;

/* region and service are copied. s3_paths: S3's path rule (see above). */
struct aws_sigv4_signer *aws_sigv4_signer_new(const char *region,
					      const char *service,
					      bool s3_paths);
void aws_sigv4_signer_free(struct aws_sigv4_signer *s);

/* Sign; the date is taken from the request's X-Amz-Date header.
 * Thread-safe (the key cache is locked). */
int aws_sigv4_sign(struct aws_sigv4_signer *s,
		   const struct aws_sigv4_request *req,
		   const struct aws_sigv4_creds *creds,
		   struct aws_sigv4_result *out, struct cm_err *err);
void aws_sigv4_result_release(struct aws_sigv4_result *r);

/* "20150830T123600Z" for t (16 chars + NUL). */
void aws_sigv4_amz_date(time_t t, char out[17]);

#endif
