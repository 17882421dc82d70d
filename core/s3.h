/*
 * s3.h - the S3 client: one object per endpoint and identity, and the S3
 * operations vaultfs needs, each one signed, retried and classified.
 *
 * A `struct s3_client` holds the resolved endpoint, region and addressing
 * style, the SigV4 signer, the credential provider and a free list of HTTP
 * handles. Every operation borrows one handle from that list for its
 * duration and gives it back, so N threads calling operations at once use
 * N connections, each reused by later calls. The client is thread-safe;
 * its settings never change after s3_client_new().
 *
 * Requests: every request carries X-Amz-Date, X-Amz-Content-Sha256 (the
 * SHA-256 of the body, or UNSIGNED-PAYLOAD for object data when the client
 * is told so, in which case Content-MD5 protects the body instead),
 * X-Amz-Security-Token with temporary credentials, and
 * x-amz-expected-bucket-owner when configured. Keys are percent-encoded
 * once, '/' kept.
 *
 * Retries: transport failures that http.c marks retryable, HTTP 5xx, 429,
 * SlowDown and RequestTimeout are retried with full-jitter exponential
 * backoff (base 100 ms, cap 20 s) up to max_attempts (default 8, or
 * VAULTFS_S3_MAX_ATTEMPTS). Anything else fails at once. The message then
 * starts with the S3 error code: "NoSuchBucket: The specified bucket does
 * not exist (ListObjectsV2 s3://b, HTTP 404)"; an error without a body
 * (HEAD) is named from its status ("NoSuchKey: 404 Not Found (...)").
 * Errno: 404 -> ENOENT, 401/403 -> EACCES, 409 -> EEXIST/ENOTEMPTY/EBUSY,
 * 412 -> ESTALE, 416 -> ERANGE, 405/501 -> ENOTSUP, other 4xx -> EINVAL,
 * the rest -> EIO.
 * Credentials and signatures never appear in messages or logs.
 *
 * Fault sites: "s3.request" fails one attempt as a retryable reset (the
 * retry path runs); ops that upload parts also ask "s3.upload_part" (a
 * fatal failure, see s3_upload.h).
 *
 * Strings passed in are borrowed for the call; strings handed out through
 * callbacks are borrowed until the callback returns.
 */
#ifndef VAULTFS_S3_H
#define VAULTFS_S3_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws.h"
#include "aws_creds.h"
#include "buf.h"
#include "crypto.h"
#include "err.h"
#include "http.h"

#define S3_MIB		     (1024ULL * 1024)
#define S3_MIN_PART_SIZE     (5 * S3_MIB)
#define S3_MAX_PART_SIZE     (5120 * S3_MIB)
#define S3_DEFAULT_PART_SIZE (8 * S3_MIB)
#define S3_MAX_PARTS	     10000
#define S3_ETAG_MAX	     128 /* an ETag without its quotes, NUL included */
#define S3_XMLNS	     "http://s3.amazonaws.com/doc/2006-03-01/"

enum s3_addressing {
	S3_ADDRESSING_AUTO = 0, /* path-style with an endpoint override */
	S3_ADDRESSING_PATH,	/* http://host/bucket/key */
	S3_ADDRESSING_VIRTUAL,	/* http://bucket.host/key */
};

struct s3_client_opts {
	/* "http[s]://host[:port][/base]"; NULL: AWS_ENDPOINT_URL_S3, then
	 * AWS_ENDPOINT_URL, then endpoints' "s3", then
	 * https://s3.REGION.amazonaws.com (aws_endpoint_resolve) */
	const char *endpoint;
	const struct aws_endpoint *endpoints; /* the config's map, borrowed */
	size_t nendpoints;
	const char *region;  /* NULL: aws_region_resolve(), else us-east-1 */
	const char *profile; /* NULL: AWS_PROFILE, else "default" */
	enum s3_addressing addressing;
	bool unsigned_payload; /* object data: Content-MD5 instead */
	const char *expected_bucket_owner; /* account id, or NULL */
	const char *storage_class;	   /* "STANDARD_IA", ...; NULL: none */
	const char *sse;		   /* "AES256", "aws:kms" or NULL */
	const char *sse_kms_key_id;	   /* implies sse "aws:kms" */
	unsigned max_attempts;		   /* 0: VAULTFS_S3_MAX_ATTEMPTS or 8 */
	/* borrowed, must outlive the client; NULL: the client makes its own
	 * for `profile` */
	struct aws_creds_provider *creds;
	struct cm_http_opts http;
};

struct s3_client;

/* Resolve endpoint and region and check the options. NULL with err set
 * when an option is bad. All strings are copied. */
struct s3_client *s3_client_new(const struct s3_client_opts *opts,
				struct cm_err *err);
void s3_client_free(struct s3_client *c); /* NULL is a no-op */

const char *s3_client_region(const struct s3_client *c);
const char *s3_client_endpoint(const struct s3_client *c);
/* false under SSE-KMS, where an object's ETag is not the MD5 of its data
 * (and, for tests, when VAULTFS_TEST_OPAQUE_ETAGS is set: the client then
 * checks no ETag, as under SSE-KMS, against a server without KMS) */
bool s3_client_etag_is_md5(const struct s3_client *c);
bool s3_client_unsigned_payload(const struct s3_client *c);
/*
 * From now on, every request of c stops within about a second of *flag
 * becoming non-zero (in a transfer, while it waits for an answer, or in a
 * backoff between attempts) and fails with -ECANCELED, not retried:
 * how a command interrupted by a signal ends its transfer. Except
 * AbortMultipartUpload, which is what a cancelled upload leads to and
 * always goes out. Set it before other threads use c; the flag must
 * outlive c. A body's own cancel (struct s3_body) takes precedence.
 */
void s3_client_set_cancel(struct s3_client *c, const atomic_int *flag);

/* "s3://bucket/key" -> bucket and key (key may be "", never NULL); the
 * caller frees both. -EINVAL if url is not of that form. */
int s3_parse_url(const char *url, char **bucket, char **key,
		 struct cm_err *err);

/* The ETag S3 gives a multipart object: hex MD5 of the concatenated binary
 * MD5s of its parts, then "-N". */
void s3_multipart_etag(const uint8_t (*part_md5)[CM_MD5_LEN], size_t nparts,
		       char out[S3_ETAG_MAX]);
/* Compare two ETags, ignoring surrounding quotes and hex case. */
bool s3_etag_equal(const char *a, const char *b);

struct s3_object_info {
	uint64_t size;		/* whole object, even for a range */
	char etag[S3_ETAG_MAX]; /* without quotes */
	time_t last_modified;	/* 0: unknown */
	unsigned parts_count;	/* x-amz-mp-parts-count; 0: not sent */
};

/* Object data from memory in one request. md5 may be NULL; when given it
 * goes out as Content-MD5 (and must be given with unsigned payloads).
 * etag (may be NULL) receives the ETag without quotes. */
int s3_put_object(struct s3_client *c, const char *bucket, const char *key,
		  const void *data, size_t len, const uint8_t *md5, char *etag,
		  struct cm_err *err);

/*
 * The body of an object request: `len` bytes in memory (`data`), or read by
 * the client while it sends them (`data` NULL), so that a file goes up
 * without being held in memory.
 *
 * read: puts exactly n bytes of the body, from offset off, into p (n > 0,
 * off + n <= len); returns 0, or a negative errno with err set, which ends
 * the request at once (not retried). It runs on the caller's thread. Each
 * attempt reads from offset 0 again, and libcurl may go back to an earlier
 * offset to resend: the bytes must not change in between (S3 rejects a
 * body that does not match its hash).
 * sha256: the body's SHA-256. NULL: computed from data; a read body needs
 * it, unless the client sends unsigned payloads.
 * md5: sent as Content-MD5. NULL: none, except with unsigned payloads,
 * where it is computed from data; a read body then needs it.
 */
struct s3_body {
	const void *data;
	size_t len;
	int (*read)(void *ctx, uint64_t off, void *p, size_t n,
		    struct cm_err *err);
	void *ctx;
	const uint8_t *sha256;
	const uint8_t *md5;
	/* PutObject only: send If-None-Match: *, so that the object is made
	 * only where the key does not exist (-EEXIST otherwise, on servers
	 * that honour it: AWS, Ceph RGW). A 412 to a retry is checked with
	 * HeadObject first: an object of our size and MD5 ETag is ours, made
	 * by the attempt whose answer was lost. */
	bool if_none_match;
	/* NULL (the client's, see s3_client_set_cancel), or a flag that
	 * stops this request as the client's would: an upload's own */
	const atomic_int *cancel;
};

/* s3_put_object and s3_upload_part with a body of either kind. */
int s3_put_object_body(struct s3_client *c, const char *bucket, const char *key,
		       const struct s3_body *body, char *etag,
		       struct cm_err *err);
int s3_upload_part_body(struct s3_client *c, const char *bucket,
			const char *key, const char *upload_id,
			unsigned part_number, const struct s3_body *body,
			char *etag, struct cm_err *err);

/* Multipart: *upload_id is the caller's to free. */
int s3_create_multipart_upload(struct s3_client *c, const char *bucket,
			       const char *key, char **upload_id,
			       struct cm_err *err);
/* One part (1..10000); md5 as for s3_put_object. Also asks the fault site
 * "s3.upload_part" on each attempt. */
int s3_upload_part(struct s3_client *c, const char *bucket, const char *key,
		   const char *upload_id, unsigned part_number,
		   const void *data, size_t len, const uint8_t *md5, char *etag,
		   struct cm_err *err);

struct s3_part {
	unsigned number;
	const char *etag;
};

/* Parts in ascending order. A 200 answer carrying an <Error> counts as
 * that error. etag (may be NULL) receives the object's ETag; when the
 * answer's is empty (Ceph RGW 16 sends <ETag></ETag>) it is read back
 * with HeadObject. */
int s3_complete_multipart_upload(struct s3_client *c, const char *bucket,
				 const char *key, const char *upload_id,
				 const struct s3_part *parts, size_t nparts,
				 char *etag, struct cm_err *err);
/* The same; if_none_match sends If-None-Match: * (-EEXIST when the key
 * exists: AWS honours it; Ceph RGW 16 ignores it on this request). */
int s3_complete_multipart_upload_if(struct s3_client *c, const char *bucket,
				    const char *key, const char *upload_id,
				    const struct s3_part *parts, size_t nparts,
				    bool if_none_match, char *etag,
				    struct cm_err *err);
int s3_abort_multipart_upload(struct s3_client *c, const char *bucket,
			      const char *key, const char *upload_id,
			      struct cm_err *err);

struct s3_upload_entry {
	const char *key;
	const char *upload_id;
	time_t initiated;
};
/* Callbacks of listings return 0 to go on, > 0 to stop (the listing then
 * returns 0) or a negative errno to fail (returned as is; the callback sets
 * err's message through its own means). */
typedef int (*s3_upload_fn)(void *ctx, const struct s3_upload_entry *e);
int s3_list_multipart_uploads(struct s3_client *c, const char *bucket,
			      const char *prefix, s3_upload_fn fn, void *ctx,
			      struct cm_err *err);

int s3_head_object(struct s3_client *c, const char *bucket, const char *key,
		   struct s3_object_info *info, struct cm_err *err);
/* HeadObject?partNumber=N: S3 then says how many parts the object has
 * (info->parts_count; Ceph RGW 16 does not). info->size is the part's
 * size on S3 (the object's when the server ignores partNumber). */
int s3_head_object_part(struct s3_client *c, const char *bucket,
			const char *key, unsigned part_number,
			struct s3_object_info *info, struct cm_err *err);

/* ListParts of an upload in progress, every page; -ENOENT once the upload
 * is gone (completed or aborted: "NoSuchUpload", or Ceph's "NoSuchKey"). */
struct s3_part_entry {
	unsigned number;
	uint64_t size;
	const char *etag; /* without quotes */
};
typedef int (*s3_part_fn)(void *ctx, const struct s3_part_entry *e);
int s3_list_parts(struct s3_client *c, const char *bucket, const char *key,
		  const char *upload_id, s3_part_fn fn, void *ctx,
		  struct cm_err *err);

/* Bytes from GetObject, in order, from any thread but one at a time.
 * Return 0 or a negative errno (with err set) to stop the download. */
typedef int (*s3_sink_fn)(void *ctx, const void *p, size_t n,
			  struct cm_err *err);
struct s3_range {
	uint64_t start;
	uint64_t len; /* 0: to the end */
};
/* Stream an object (or a range of it) into sink. A transfer broken after
 * some bytes resumes where it stopped, pinned to the first answer's ETag
 * (If-Match), so the sink never sees a byte twice. info may be NULL. */
int s3_get_object(struct s3_client *c, const char *bucket, const char *key,
		  const struct s3_range *range, s3_sink_fn sink, void *ctx,
		  struct s3_object_info *info, struct cm_err *err);

struct s3_list_entry {
	const char *key; /* object key, or the common prefix */
	bool is_prefix;	 /* a CommonPrefixes entry */
	uint64_t size;
	const char *etag; /* without quotes; "" for a prefix */
	time_t last_modified;
	const char *storage_class; /* "" when absent */
};
typedef int (*s3_list_fn)(void *ctx, const struct s3_list_entry *e);
struct s3_list_opts {
	const char *prefix;    /* NULL: whole bucket */
	const char *delimiter; /* NULL: no grouping */
	const char *start_after;
	unsigned max_keys; /* per page; 0: the server's (1000) */
};
/* ListObjectsV2, following continuation tokens until the end. Entries of
 * one page come in the server's order, prefixes before objects. */
int s3_list_objects(struct s3_client *c, const char *bucket,
		    const struct s3_list_opts *opts, s3_list_fn fn, void *ctx,
		    struct cm_err *err);
/* One page of it: at most opts->max_keys entries from `token` (a
 * NextContinuationToken of an earlier page; NULL or "": the first page).
 * *next is the token of the page after this one (malloc'd), NULL after
 * the last page, when fn stopped the page, or on failure. A truncated
 * answer without a token is an error (EPROTO), never an endless loop. */
int s3_list_objects_page(struct s3_client *c, const char *bucket,
			 const struct s3_list_opts *opts, const char *token,
			 s3_list_fn fn, void *ctx, char **next,
			 struct cm_err *err);

struct s3_bucket_entry {
	const char *name;
	time_t created;
};
typedef int (*s3_bucket_fn)(void *ctx, const struct s3_bucket_entry *e);
int s3_list_buckets(struct s3_client *c, s3_bucket_fn fn, void *ctx,
		    struct cm_err *err);

int s3_delete_object(struct s3_client *c, const char *bucket, const char *key,
		     struct cm_err *err);
/* With a LocationConstraint unless the region is us-east-1. */
int s3_create_bucket(struct s3_client *c, const char *bucket,
		     struct cm_err *err);
/* The bucket must be empty (S3 answers 409 BucketNotEmpty otherwise). */
int s3_delete_bucket(struct s3_client *c, const char *bucket,
		     struct cm_err *err);
int s3_head_bucket(struct s3_client *c, const char *bucket, struct cm_err *err);

/* One lifecycle rule; a day count of 0 leaves that action out. */
struct s3_lifecycle_rule {
	const char *id;		    /* NULL: "vaultfs" */
	const char *prefix;	    /* NULL: the whole bucket */
	unsigned glacier_days;	    /* transition to GLACIER */
	unsigned deep_archive_days; /* transition to DEEP_ARCHIVE */
	unsigned expiration_days;
	unsigned abort_incomplete_days; /* AbortIncompleteMultipartUpload */
};
/* PutBucketLifecycleConfiguration with a whole <LifecycleConfiguration>
 * document as the body: replaces the bucket's rules (merge them first,
 * core/s3_lifecycle.h). */
int s3_put_bucket_lifecycle_xml(struct s3_client *c, const char *bucket,
				const char *xml, size_t len,
				struct cm_err *err);
/* Append one rule as a <Rule> element to b. */
void s3_lifecycle_rule_xml(struct cm_buf *b, const struct s3_lifecycle_rule *r);
/* GetBucketLifecycleConfiguration: the document, appended to xml, and
 * *found true; a bucket without one ("NoSuchLifecycleConfiguration") is
 * 0 with *found false. */
int s3_get_bucket_lifecycle(struct s3_client *c, const char *bucket,
			    struct cm_buf *xml, bool *found,
			    struct cm_err *err);

#endif
