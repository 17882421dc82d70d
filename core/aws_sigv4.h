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
 * Every header passed in is signed; a header the caller adds after signing
 * (X-Amz-Security-Token for services that want it unsigned, say) is simply
 * left out of `headers`.
 *
 * Secrets are never logged; the result strings hold no secret (the
 * Authorization header holds a signature, which callers must not log
 * either), and error messages hold neither.
 */
#ifndef VAULTFS_AWS_SIGV4_H
#define VAULTFS_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

#define AWS_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* The payload hash of an empty body: hex SHA-256 of "". */
#define AWS_EMPTY_SHA256                                                       \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct aws_sigv4_header {
	const char *name;   /* any case; canonicalised to lowercase; no
			     * whitespace, ':' or control characters */
	const char *value;  /* trimmed, inner runs of whitespace (line folds
			     * included) folded to one space */
};

struct aws_sigv4_request {
	const char *method;
	const char *path;    /* request path as on the wire ("/a%20b"), "" or
			      * NULL = "/" */
	const char *query;   /* raw query without '?', or NULL; each name and
			      * value is decoded and re-encoded (RFC 3986),
			      * "a" alone signs as "a=" */
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
	const char *session_token; /* not used by the signer: the caller adds
				    * the X-Amz-Security-Token header, in
				    * `headers` to sign it */
};

/* Filled by aws_sigv4_sign(); all NULL after a failure. The caller owns the
 * strings and frees them with aws_sigv4_result_release(). */
struct aws_sigv4_result {
	char *canonical_request;
	char *string_to_sign;
	char *authorization;      /* the value of the Authorization header */
};

struct aws_sigv4_signer;

/* region and service (non-empty; NULL is a bug and aborts) are copied.
 * s3_paths: S3's path rule (see above). Free with aws_sigv4_signer_free();
 * aws_sigv4_signer_free(NULL) is a no-op. */
struct aws_sigv4_signer *aws_sigv4_signer_new(const char *region,
					      const char *service,
					      bool s3_paths);
void aws_sigv4_signer_free(struct aws_sigv4_signer *s);

/* Sign; the date is taken from the request's X-Amz-Date header. All of req
 * and creds is borrowed for the call only. Returns 0, or -EINVAL (message in
 * err) when credentials, method, payload hash, Host or a well-formed
 * X-Amz-Date are missing, a header name is bad or the query holds a bad
 * percent-escape. Thread-safe: one signer may sign in many threads at once
 * (the key cache is locked). */
int aws_sigv4_sign(struct aws_sigv4_signer *s,
		   const struct aws_sigv4_request *req,
		   const struct aws_sigv4_creds *creds,
		   struct aws_sigv4_result *out, struct cm_err *err);
/* Frees the strings (the signature is wiped) and sets them to NULL; safe on
 * a result left by a failed aws_sigv4_sign(). */
void aws_sigv4_result_release(struct aws_sigv4_result *r);

/* "20150830T123600Z" for t, in UTC (16 chars + NUL); "" for a time outside
 * the years 0000-9999, which aws_sigv4_sign() then refuses. */
void aws_sigv4_amz_date(time_t t, char out[17]);

#endif
