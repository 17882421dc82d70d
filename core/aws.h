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
 * Region: opts->region (config), AWS_REGION, AWS_DEFAULT_REGION, the
 * profile's region, IMDS (placement/region); else an error naming them.
 *
 * Fault sites: "aws.request" fails one attempt as a retryable reset.
 *
 * Threads: a client is thread-safe (a free list of HTTP handles, as
 * s3.c); its settings never change after aws_client_new().
 */
#ifndef VAULTFS_AWS_H
#define VAULTFS_AWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws_creds.h"
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
	struct cm_http_opts http;
};

struct aws_client;

/* A client of one service. NULL with err set when the region cannot be
 * resolved or an endpoint is not an http(s) URL. Strings are copied. */
struct aws_client *aws_client_new(const struct aws_service *svc,
				  const struct aws_client_opts *opts,
				  struct cm_err *err);
void aws_client_free(struct aws_client *c); /* NULL is a no-op */
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

/*
 * STS GetCallerIdentity through `sts` (a client of aws_sts): the account
 * id into out (13 bytes). Used to build ARNs and for expectedBucketOwner.
 */
int aws_account_id(struct aws_client *sts, char out[13], struct cm_err *err);

#endif
