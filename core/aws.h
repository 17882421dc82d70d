/*
 * aws.h - the AWS API layer: one request path for the control planes
 * vaultfs talks to (S3 keeps its own client, s3.h, on the same parts).
 *
 * Protocols, as the AWS API references define them:
 *   Query      EC2, RDS, STS: POST form "Action=...&Version=..." with
 *              the parameters flattened ("Filter.1.Name=..."); the answer
 *              is XML (xml.h). EC2 errors are <Response><Errors><Error>,
 *              the others <ErrorResponse><Error>.
 *   JSON 1.0   DynamoDB, SQS: POST "/", X-Amz-Target: PREFIX.Operation,
 *   JSON 1.1   SSM            Content-Type application/x-amz-json-1.x;
 *                             errors {"__type": "...#Code", "message"}
 *   REST-JSON  Backup, EBS direct APIs: METHOD /path?query, JSON bodies;
 *              errors from the x-amzn-ErrorType header or the body's
 *              "__type"/"code" and "message"/"Message".
 *
 * Every request is signed with SigV4 (aws_sigv4.h) for the service's
 * signing name and the client's region, with the credentials of the
 * client's provider (aws_creds.h), and sent through http.c.
 *
 * Retries: transport failures http.c marks retryable, HTTP 5xx, and the
 * throttling codes (Throttling, ThrottlingException, RequestLimitExceeded,
 * TooManyRequestsException, SlowDown, ProvisionedThroughputExceeded-
 * Exception, RequestThrottled...) are retried with full-jitter exponential
 * backoff up to max_attempts (VAULTFS_AWS_MAX_ATTEMPTS, default 8).
 * Anything else fails at once with
 *
 *     "<service>: <Code>: <Message>"        e.g.
 *     "backup: ResourceNotFoundException: Backup vault prod does not exist"
 *
 * (main prints it after "vaultfs: "). Errno: 404 / *NotFound* -> ENOENT,
 * 401/403 / AccessDenied*, UnrecognizedClient, InvalidClientTokenId,
 * ExpiredToken -> EACCES, throttling after the last try -> EAGAIN,
 * 409 / *Conflict*, *InUse*, InvalidParameterCombination -> EBUSY/EINVAL,
 * other 4xx -> EINVAL, the rest -> EIO.
 *
 * Endpoints, as the AWS SDKs resolve them, first found wins:
 *   1. AWS_ENDPOINT_URL_<SERVICE> (EC2, EBS, RDS, DYNAMODB, BACKUP, SQS,
 *      STS, SSM, S3)
 *   2. AWS_ENDPOINT_URL
 *   3. opts->endpoints (the config's "endpoints" map, service -> URL)
 *   4. https://<prefix>.<region>.amazonaws.com (amazonaws.com.cn in cn-*)
 *   The S3 client (s3.c) puts its explicit endpoint first, then the same.
 * Region: opts->region (config), AWS_REGION, AWS_DEFAULT_REGION, the
 * profile's region, IMDS (placement/region); else an error naming them.
 *
 * A raw answer given to a sink (REST-JSON) that breaks off is asked for
 * again whole, and the bytes the sink already took are skipped: the
 * answer must be the same each time (a snapshot block is).
 *
 * Fault sites: "aws.request" fails one attempt as a retryable reset.
 *
 * Threads: a client is thread-safe (a free list of HTTP handles, as
 * s3.c); its settings never change after aws_client_new().
 */
#ifndef VAULTFS_AWS_H
#define VAULTFS_AWS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws_creds.h"
#include "aws_sigv4.h"
#include "err.h"
#include "http.h"

struct cm_json;
struct cm_xml;

enum aws_protocol {
	AWS_PROTO_QUERY = 0,
	AWS_PROTO_JSON10,
	AWS_PROTO_JSON11,
	AWS_PROTO_REST_JSON,
};

/* A service as its API reference describes it. */
struct aws_service {
	const char *name;          /* "backup": messages, signing name */
	const char *env;           /* "BACKUP": AWS_ENDPOINT_URL_BACKUP */
	const char *host;          /* "backup": https://backup.REGION... */
	enum aws_protocol proto;
	const char *version;       /* Query: API version "2016-11-15" */
	const char *target;        /* JSON: X-Amz-Target prefix
				      "DynamoDB_20120810", "AmazonSQS" */
};

extern const struct aws_service aws_ec2, aws_ebs, aws_rds, aws_dynamodb,
	aws_backup, aws_sqs, aws_sts, aws_ssm;

/* The config's "endpoints" map: n pairs of service name ("ec2", as in
 * struct aws_service.name) and URL. Borrowed. */
struct aws_endpoint {
	const char *service;
	const char *url;
};

struct aws_client_opts {
	const char *region;   /* NULL: resolved as above */
	const char *profile;  /* NULL: AWS_PROFILE, else "default" */
	const struct aws_endpoint *endpoints;
	size_t nendpoints;
	/* borrowed, must outlive the client; NULL: the client makes its own
	 * for `profile` */
	struct aws_creds_provider *creds;
	unsigned max_attempts; /* 0: VAULTFS_AWS_MAX_ATTEMPTS or 8 */
	bool anonymous;        /* send unsigned (STS
				  AssumeRoleWithWebIdentity) */
	struct cm_http_opts http;
};

struct aws_client;

/* A client of one service. NULL with err set when the region cannot be
 * resolved or an endpoint is not an http(s) URL. Strings are copied. */
struct aws_client *aws_client_new(const struct aws_service *svc,
				  const struct aws_client_opts *opts,
				  struct cm_err *err);
void aws_client_free(struct aws_client *c); /* NULL is a no-op */
/* From now on, every call of c stops (fails with -ECANCELED, not retried)
 * within about a second of *flag becoming non-zero, even in a long poll or
 * a backoff between attempts: how a
 * thread blocked in SQS ReceiveMessage is stopped. Set it before other
 * threads use c; the flag must outlive c. */
void aws_client_set_cancel(struct aws_client *c, const atomic_int *flag);
const char *aws_client_region(const struct aws_client *c);
const char *aws_client_endpoint(const struct aws_client *c);

/*
 * Query protocol: `params` is n "Name", "value" pairs (2n strings, values
 * unencoded; Action and Version are added). *out: the answer's root
 * element (cm_xml_free it), e.g. <DescribeSnapshotsResponse>.
 */
int aws_query(struct aws_client *c, const char *action,
	      const char *const *params, size_t n, struct cm_xml **out,
	      struct cm_err *err);

/*
 * JSON 1.0/1.1 protocol: operation "ReceiveMessage", body an object (NULL:
 * "{}"). *out: the answer (cm_json_free it; "{}" when the body is empty).
 */
int aws_json(struct aws_client *c, const char *operation,
	     const struct cm_json *body, struct cm_json **out,
	     struct cm_err *err);

/* REST-JSON protocol. */
struct aws_rest_request {
	const char *op;             /* "ListRecoveryPointsByBackupVault":
				       messages only */
	const char *method;         /* "GET", "POST", "PUT", "DELETE" */
	const char *path;           /* percent-encoded path and query, "/x?y=z"
				       (aws_uri_encode for each segment) */
	const char *const *headers; /* extra "Name: value" lines */
	size_t nheaders;
	const struct cm_json *json; /* request body, or NULL */
	const void *body;           /* a raw body instead (EBS PutSnapshotBlock) */
	size_t body_len;
	cm_http_sink_fn sink;       /* raw answer (EBS GetSnapshotBlock); NULL:
				       the answer is parsed as JSON into *out */
	void *sink_ctx;
};

/* On success *out is the parsed answer (NULL with a sink, or when the body
 * is empty); `headers`, when not NULL, receives the answer's headers (for
 * x-amz-Checksum and the like; release with cm_buf_release). */
int aws_rest(struct aws_client *c, const struct aws_rest_request *req,
	     struct cm_json **out, struct cm_buf *headers,
	     struct cm_err *err);

/* Percent-encode one path segment or query value (RFC 3986, '/' encoded):
 * ARNs go in paths this way. The caller frees. */
char *aws_uri_encode(const char *s);

/* Is this error code a throttling one (retried)? */
bool aws_code_is_throttling(const char *code);
/* Throttling, or another failure that may pass (RequestTimeout,
 * InternalError, ServiceUnavailable, IDPCommunicationError...). */
bool aws_code_is_retryable(const char *code);

/*
 * STS GetCallerIdentity through `sts` (a client of aws_sts): the account
 * id into out (13 bytes). Used to build ARNs and for expectedBucketOwner.
 */
int aws_account_id(struct aws_client *sts, char out[13], struct cm_err *err);

/* The whole GetCallerIdentity answer (strings owned; aws_identity_release). */
struct aws_identity {
	char *account;
	char *arn;
	char *user_id;
};
int aws_caller_identity(struct aws_client *sts, struct aws_identity *out,
			struct cm_err *err);
void aws_identity_release(struct aws_identity *id);

/* Where the client's endpoint came from: "AWS_ENDPOINT_URL_EC2",
 * "AWS_ENDPOINT_URL", "config endpoints.ec2" or "default". */
const char *aws_client_endpoint_source(const struct aws_client *c);
/* Where the region came from: "config", "AWS_REGION", ..., "imds". */
const char *aws_client_region_source(const struct aws_client *c);
struct aws_creds_provider *aws_client_creds(const struct aws_client *c);

/* Every service above, NULL-terminated; and one by name ("ec2"), or NULL. */
extern const struct aws_service *const aws_services[];
const struct aws_service *aws_service_find(const char *name);

/* ---- parts shared with the S3 client (s3.c) --------------------------- */

/* An endpoint URL split for requests: "https://host:port/base". */
struct aws_url {
	bool https;
	char *authority; /* "host[:port]", a default port dropped (as the
			    Host header the server sees) */
	char *base_path; /* "" or "/base", no trailing '/' */
	char *endpoint;	 /* the whole, normalised, for messages */
};

/* -EINVAL naming the URL unless it is http(s)://host[:port][/path]. */
int aws_url_parse(const char *url, struct aws_url *out, struct cm_err *err);
void aws_url_release(struct aws_url *u);

/*
 * The endpoint of a service, in the order above: AWS_ENDPOINT_URL_<env>,
 * AWS_ENDPOINT_URL, the endpoints map's entry for `service`, then
 * https://<host>.<region>.amazonaws.com[.cn]. Returns a heap string; `from`
 * (fromlen bytes) receives where it came from.
 */
char *aws_endpoint_resolve(const char *service, const char *env,
			   const char *host, const char *region,
			   const struct aws_endpoint *endpoints, size_t n,
			   char *from, size_t fromlen);

/*
 * What every client here holds, whatever its service: endpoint, region,
 * signer, credentials and the pool of HTTP handles. aws_base_init sets the
 * pool and the credentials (`creds` borrowed, or NULL: a provider of its
 * own for `profile`); the client then sets region, url, signer and
 * max_attempts. aws_base_release frees what is set.
 */
struct aws_base {
	char *region;
	struct aws_url url;
	unsigned max_attempts;
	struct aws_sigv4_signer *signer;
	struct aws_creds_provider *creds;
	bool own_creds;
	struct cm_http_pool pool;
};

void aws_base_init(struct aws_base *b, const struct cm_http_opts *http,
		   struct aws_creds_provider *creds, const char *profile);
void aws_base_release(struct aws_base *b);

/* Attempts from the environment variable `var` (1..100), else 8. */
unsigned aws_max_attempts(const char *var);
/* Full jitter: uniform in [0, min(20 s, 100 ms * 2^(attempt-1))]. */
unsigned aws_backoff_ms(unsigned attempt);

/*
 * Run fn until it succeeds, fails with an error not marked retryable, or
 * max_attempts have failed, sleeping aws_backoff_ms between attempts and
 * logging each retry as "<what>: attempt i of n failed, retrying..." (at
 * info level; the first of an endpoint that cannot be reached at all as a
 * warning, "<what>: <error> (attempt 1 of n, retrying)"). The
 * last error gets "[gave up after N attempts]" when retries ran out.
 * cancel (NULL: none) non-zero ends a backoff within 100 ms: the retry then
 * fails with -ECANCELED ("cancelled"), not retryable.
 */
typedef int (*aws_attempt_fn)(void *ctx, struct cm_err *err);
int aws_retry(const char *what, unsigned max_attempts, aws_attempt_fn fn,
	      void *ctx, const atomic_int *cancel, struct cm_err *err);

/* The request of one attempt as it goes on the wire. All owned. */
#define AWS_WIRE_MAX_HEADERS 24
struct aws_wire {
	char *url;
	char *path;  /* as signed and sent */
	char *query; /* canonical: sorted, "k=v"; NULL: none */
	size_t n;
	char *name[AWS_WIRE_MAX_HEADERS];
	char *value[AWS_WIRE_MAX_HEADERS];
	char *line[AWS_WIRE_MAX_HEADERS]; /* "Name: value", by aws_wire_sign */
	size_t nlines;
};

void aws_wire_header(struct aws_wire *w, const char *name, const char *value);
/* Wipes the values (Authorization, the session token) before freeing. */
void aws_wire_release(struct aws_wire *w);
/*
 * Add X-Amz-Date (for `now`), X-Amz-Content-Sha256 when hash_header (S3
 * wants it, other services do without), X-Amz-Security-Token for
 * temporary credentials, sign them all with the rest, add Authorization
 * and build the header lines.
 */
/* "Name: value" lines for the headers that have none yet (unsigned
 * requests; aws_wire_sign calls it). */
void aws_wire_lines(struct aws_wire *w);
int aws_wire_sign(struct aws_sigv4_signer *s, const char *method,
		  struct aws_wire *w, const char *payload_hash,
		  bool hash_header, time_t now, const struct aws_creds *cr,
		  struct cm_err *err);

/* Reason phrase ("Not Found", "" if unknown) and the code an error answer
 * without a body is given ("NotFound", "ServerError"...). */
const char *aws_status_text(long status);
const char *aws_status_code(long status);
/* Copy server text into a message: printable, one line, bounded. */
void aws_clean_copy(char *out, size_t n, const char *in);

#endif
