/*
 * http.h - the only door to libcurl.
 *
 * A `struct cm_http` is one libcurl easy handle: it keeps its connections
 * alive between requests, so each worker thread owns one and reuses it. It is
 * not thread-safe; different handles may run concurrently.
 *
 * cm_http_perform returns 0 whenever an HTTP response arrived, whatever its
 * status (the caller classifies statuses), and a negative errno for
 * transport failures: those are marked retryable in `err` when they may pass
 * (connect failures, timeouts, resets, partial transfers) and fatal otherwise
 * (bad URL, TLS verification failure). TLS peers are always verified
 * against the system's CAs, or against the CA file named by
 * VAULTFS_CA_BUNDLE, else AWS_CA_BUNDLE (the AWS CLI's and SDKs' variable),
 * for private endpoints.
 */
#ifndef VAULTFS_HTTP_H
#define VAULTFS_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct cm_http_opts {
	long connect_timeout_ms;  /* 0: 10 s */
	long low_speed_time_s;    /* abort below 1 byte/s for this long; 0: 60 */
	long total_timeout_ms;    /* 0: none (streams may be long) */
};

struct cm_http;

struct cm_http *cm_http_new(const struct cm_http_opts *opts); /* opts may be NULL */
void cm_http_free(struct cm_http *h);                          /* NULL: no-op */

/* Called with response body bytes; return n to go on, anything else to
 * abort the transfer (the perform then fails with -ECANCELED). */
typedef size_t (*cm_http_sink_fn)(void *ctx, const void *p, size_t n);
/* Called to fill the request body when `body` is NULL and body_len is set:
 * put up to n bytes (n > 0, never past body_len) of the body from offset
 * `off` into p; return how many (> 0), or SIZE_MAX to abort the transfer
 * (the perform then fails with -ECANCELED). Offsets go up from 0 on each
 * perform, and may go back to an earlier one when libcurl rewinds to resend
 * on a new connection: the source must give the same bytes again. */
typedef size_t (*cm_http_source_fn)(void *ctx, uint64_t off, void *p, size_t n);

struct cm_http_request {
	const char *method;           /* "GET", "PUT", "HEAD", ... */
	const char *url;              /* full URL, already percent-encoded */
	const char *const *headers;   /* "Name: value" lines, borrowed */
	size_t nheaders;
	const void *body;             /* borrowed for the call; may be NULL */
	size_t body_len;              /* with body NULL and source set: length */
	cm_http_source_fn source;
	void *source_ctx;
	cm_http_sink_fn sink;         /* NULL: body collected in resp->body */
	void *sink_ctx;
	/* NULL, or a flag another thread (or a signal handler) may set to
	 * non-zero: the transfer then stops within about a second, even
	 * while it waits for an answer (a long poll), and the perform fails
	 * with -ECANCELED, not retryable. An int, as every cancel flag of
	 * vaultfs is (the CLI's holds the signal's number). */
	const atomic_int *cancel;
};

struct cm_http_response {
	long status;
	struct cm_buf headers;        /* raw "Name: value\r\n" lines of the
				       * final response */
	struct cm_buf body;           /* capped by the caller via cm_buf max */
	/* curl sent the request again, on a new connection, because the
	 * reused one died before an answer: the server may have acted on
	 * the first (its answer lost). Set by each cm_http_perform. */
	bool resent;
};

void cm_http_response_init(struct cm_http_response *r, size_t body_max);
void cm_http_response_release(struct cm_http_response *r);
/* Case-insensitive header lookup; copies the trimmed value into out.
 * Returns true if found. */
bool cm_http_response_header(const struct cm_http_response *r,
			     const char *name, char *out, size_t outlen);

int cm_http_perform(struct cm_http *h, const struct cm_http_request *req,
		    struct cm_http_response *resp, struct cm_err *err);

/*
 * A free list of handles for a client used by many threads (s3.c, aws.c):
 * an operation takes one for its request and puts it back, so N threads
 * at once use N connections, each kept alive for later calls. Only the
 * push and pop are locked.
 */
struct cm_http_pool {
	struct cm_http_opts opts;
	pthread_mutex_t lock;
	struct cm_http **idle; /* protected by ->lock */
	size_t nidle, cap;     /* protected by ->lock */
};

void cm_http_pool_init(struct cm_http_pool *p, const struct cm_http_opts *opts);
void cm_http_pool_release(struct cm_http_pool *p); /* frees idle handles */
/* An idle handle, or a new one. Never NULL. */
struct cm_http *cm_http_pool_get(struct cm_http_pool *p);
void cm_http_pool_put(struct cm_http_pool *p, struct cm_http *h);

/* Percent-encode per RFC 3986 (unreserved kept); '/' kept when keep_slash. */
char *cm_http_uri_encode(const char *s, size_t n, bool keep_slash);

#endif
