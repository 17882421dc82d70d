/*
 * test_aws.c - the AWS API layer (aws.c): how each protocol encodes a
 * request (Query flattening, JSON target headers, REST paths with ARNs),
 * how each reads an error (EC2 <Response><Errors>, <ErrorResponse>, JSON
 * __type with '#', x-amzn-ErrorType with ':', x-amzn-query-error), which
 * codes are throttling and retried, the order endpoints and regions are
 * resolved in, and a raw answer resumed after a broken transfer.
 *
 * Requests go over real HTTP to a small server in this file (a thread on
 * 127.0.0.1, an ephemeral port) that records what it receives and answers
 * from a script of canned responses, so a test sees the bytes on the wire
 * and the client sees real statuses, headers and broken transfers.
 *
 * The modules are included whole (UNITTEST, curl's way) to reach aws.c's
 * encoders and error parser and aws_creds.c's pause between refreshes;
 * roles and web identity are asked of the same scripted server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/aws.c"
#include "core/aws_creds.c"
#include "core/s3.h"
#include "tests/unit/tmpdir.h"

/* ---- a scripted HTTP server ---------------------------------------------- */

struct canned {
	int status;
	const char *headers; /* extra "Name: value\r\n" lines, or NULL */
	const char *body;
	size_t cut; /* > 0: send only this many body bytes, then close */
};

/* An answer whose body is sent whole. */
#define A(status, headers, body) {status, headers, body, 0}

struct seen {
	char method[16];
	char path[1024];
	char headers[4096];
	char body[4096];
};

#define SEEN_MAX 32

static struct mini {
	int lfd;
	int port;
	char url[64];
	pthread_t th;
	pthread_mutex_t lock;
	const struct canned *script; /* the last one repeats */
	size_t nscript, next;
	struct seen seen[SEEN_MAX];
	size_t nseen;
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* More bytes from fd into buf (8 KiB); false at EOF or when full. */
static bool read_more(int fd, char *buf, size_t *got)
{
	ssize_t n;

	if (*got >= 8191)
		return false;
	n = read(fd, buf + *got, 8191 - *got);
	if (n <= 0)
		return false;
	*got += (size_t)n;
	buf[*got] = '\0';
	return true;
}

/* Read one request from fd into s; false at EOF or on a malformed one. */
static bool read_request(int fd, struct seen *s)
{
	char buf[8192] = "";
	size_t got = 0, clen = 0, hlen;
	char *end, *cl;

	memset(s, 0, sizeof(*s));
	while (!(end = strstr(buf, "\r\n\r\n")))
		if (!read_more(fd, buf, &got))
			return false;
	hlen = (size_t)(end - buf) + 4;
	sscanf(buf, "%15s %1023s", s->method, s->path);
	snprintf(s->headers, sizeof(s->headers), "%.*s", (int)hlen, buf);
	cl = strcasestr(s->headers, "\r\ncontent-length:");
	if (cl)
		clen = strtoul(cl + 17, NULL, 10);
	while (got - hlen < clen)
		if (!read_more(fd, buf, &got))
			return false;
	snprintf(s->body, sizeof(s->body), "%.*s", (int)clen, buf + hlen);
	return true;
}

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct seen s;

	while (read_request(fd, &s)) {
		const struct canned *c;
		char head[1024];
		size_t blen, send_len;

		pthread_mutex_lock(&srv.lock);
		if (srv.nseen < SEEN_MAX)
			srv.seen[srv.nseen++] = s;
		c = &srv.script[srv.next < srv.nscript ? srv.next
						       : srv.nscript - 1];
		srv.next++;
		pthread_mutex_unlock(&srv.lock);
		blen = c->body ? strlen(c->body) : 0;
		send_len = c->cut ? c->cut : blen;
		snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
			 c->status, blen, c->headers ? c->headers : "");
		if (write(fd, head, strlen(head)) < 0 ||
		    (send_len && write(fd, c->body, send_len) < 0) || c->cut)
			break;
	}
	close(fd);
	return NULL;
}

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(srv.lfd, NULL, NULL);
		pthread_t t;

		if (fd < 0)
			return NULL;
		pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static void mini_start(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv.lfd >= 0);
	assert_int_equal(bind(srv.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(srv.lfd, 16), 0);
	assert_int_equal(getsockname(srv.lfd, (struct sockaddr *)&a, &len), 0);
	srv.port = ntohs(a.sin_port);
	snprintf(srv.url, sizeof(srv.url), "http://127.0.0.1:%d", srv.port);
	assert_int_equal(pthread_create(&srv.th, NULL, serve, NULL), 0);
}

/* Answer the next requests from this script; forget what was seen. */
static void mini_script(const struct canned *script, size_t n)
{
	pthread_mutex_lock(&srv.lock);
	srv.script = script;
	srv.nscript = n;
	srv.next = 0;
	srv.nseen = 0;
	pthread_mutex_unlock(&srv.lock);
}

#define SCRIPT(...)                                                            \
	do {                                                                   \
		static const struct canned s_[] = {__VA_ARGS__};               \
		mini_script(s_, sizeof(s_) / sizeof(s_[0]));                   \
	} while (0)

/* The value of a header the server received, or NULL. */
static const char *seen_header(const struct seen *s, const char *name,
			       char *out, size_t n)
{
	char pat[128];
	const char *p, *v;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	p = strcasestr(s->headers, pat);
	if (!p)
		return NULL;
	v = p + strlen(pat);
	while (*v == ' ')
		v++;
	snprintf(out, n, "%.*s", (int)strcspn(v, "\r"), v);
	return out;
}

/* ---- fixture -------------------------------------------------------------- */

static int setup(void **state)
{
	extern char **environ;
	char path[128];

	(void)state;
	/* nothing from the caller's AWS set-up may leak in */
	for (char **e = environ; *e;) {
		if (!strncmp(*e, "AWS_", 4) || !strncmp(*e, "VAULTFS_AWS", 11)) {
			char name[128];

			snprintf(name, sizeof(name), "%.*s",
				 (int)strcspn(*e, "="), *e);
			unsetenv(name);
			continue;
		}
		e++;
	}
	if (tmpdir_make("aws"))
		return -1;
	snprintf(path, sizeof(path), "%s/config", tmp);
	setenv("AWS_CONFIG_FILE", path, 1);
	snprintf(path, sizeof(path), "%s/credentials", tmp);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "testsecret", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

#define assert_substr(hay, needle) assert_non_null(strstr((hay), (needle)))

/* A client of svc against the scripted server. */
static struct aws_client *client(const struct aws_service *svc,
				 unsigned attempts)
{
	struct aws_endpoint ep = {.service = svc->name, .url = srv.url};
	struct aws_client_opts o = {
	    .region = "us-east-1",
	    .endpoints = &ep,
	    .nendpoints = 1,
	    .max_attempts = attempts,
	};
	struct cm_err err;
	struct aws_client *c;

	cm_err_clear(&err);
	c = aws_client_new(svc, &o, &err);
	if (!c)
		fail_msg("aws_client_new: %s", err.msg);
	return c;
}

/* ---- request encoding ----------------------------------------------------- */

static void test_query_encoding(void **state)
{
	static const char *const params[] = {
	    "Filter.1.Name", "tag:a b", "Filter.1.Value.1", "x&y=z/\xc3\xa9",
	    "MaxResults",    "5",
	};
	struct aws_client *c;
	struct cm_xml *x = NULL;
	struct cm_err err;
	char *body, h[256];

	(void)state;
	body = query_body(&aws_ec2, "DescribeSnapshots", params, 3);
	assert_string_equal(body, "Action=DescribeSnapshots&Version=2016-11-15"
				  "&Filter.1.Name=tag%3Aa%20b"
				  "&Filter.1.Value.1=x%26y%3Dz%2F%C3%A9"
				  "&MaxResults=5");

	/* on the wire: POST / with the form, signed for ec2 */
	SCRIPT(A(200, NULL,
		"<DescribeSnapshotsResponse xmlns=\"http://ec2.amazonaws.com/"
		"doc/2016-11-15/\"><snapshotSet/></DescribeSnapshotsResponse>"));
	c = client(&aws_ec2, 1);
	cm_err_clear(&err);
	assert_int_equal(aws_query(c, "DescribeSnapshots", params, 3, &x, &err),
			 0);
	assert_string_equal(cm_xml_name(x), "DescribeSnapshotsResponse");
	assert_int_equal(srv.nseen, 1);
	assert_string_equal(srv.seen[0].method, "POST");
	assert_string_equal(srv.seen[0].path, "/");
	assert_string_equal(srv.seen[0].body, body);
	assert_non_null(seen_header(&srv.seen[0], "Content-Type", h, sizeof(h)));
	assert_string_equal(h,
			    "application/x-www-form-urlencoded; charset=utf-8");
	assert_non_null(
	    seen_header(&srv.seen[0], "Authorization", h, sizeof(h)));
	assert_substr(h, "Credential=AKIDTEST/");
	assert_substr(h, "/us-east-1/ec2/aws4_request");
	assert_non_null(seen_header(&srv.seen[0], "X-Amz-Date", h, sizeof(h)));
	/* S3's payload header is S3's only */
	assert_null(seen_header(&srv.seen[0], "X-Amz-Content-Sha256", h,
				sizeof(h)));
	cm_xml_free(x);
	aws_client_free(c);
	free(body);

	/* a Query call on a JSON service is a bug, said so */
	c = client(&aws_dynamodb, 1);
	assert_int_equal(aws_query(c, "ListTables", NULL, 0, &x, &err),
			 -EINVAL);
	assert_substr(err.msg, "not a Query service");
	aws_client_free(c);
}

static void test_json_target(void **state)
{
	struct aws_client *c;
	struct cm_json *in, *out = NULL;
	struct cm_err err;
	char h[256];

	(void)state;
	SCRIPT(A(200, NULL, "{\"TableNames\":[\"a\"]}"), A(200, NULL, ""));
	c = client(&aws_dynamodb, 1);
	in = cm_json_new_object();
	cm_json_add_num(in, "Limit", 5);
	cm_err_clear(&err);
	assert_int_equal(aws_json(c, "ListTables", in, &out, &err), 0);
	assert_string_equal(
	    cm_json_str(cm_json_first(cm_json_get(out, "TableNames"))), "a");
	assert_string_equal(srv.seen[0].path, "/");
	assert_string_equal(srv.seen[0].body, "{\"Limit\":5}");
	assert_string_equal(seen_header(&srv.seen[0], "X-Amz-Target", h,
					sizeof(h)),
			    "DynamoDB_20120810.ListTables");
	assert_string_equal(seen_header(&srv.seen[0], "Content-Type", h,
					sizeof(h)),
			    "application/x-amz-json-1.0");
	cm_json_free(out);
	/* an empty answer is {} */
	assert_int_equal(aws_json(c, "ListTables", NULL, &out, &err), 0);
	assert_int_equal(cm_json_type(out), CM_JSON_OBJECT);
	assert_int_equal(cm_json_size(out), 0);
	assert_string_equal(srv.seen[1].body, "{}");
	cm_json_free(out);
	cm_json_free(in);
	aws_client_free(c);

	/* JSON 1.1 */
	SCRIPT(A(200, NULL, "{}"));
	c = client(&aws_ssm, 1);
	assert_int_equal(aws_json(c, "GetParameter", NULL, &out, &err), 0);
	assert_string_equal(seen_header(&srv.seen[0], "X-Amz-Target", h,
					sizeof(h)),
			    "AmazonSSM.GetParameter");
	assert_string_equal(seen_header(&srv.seen[0], "Content-Type", h,
					sizeof(h)),
			    "application/x-amz-json-1.1");
	cm_json_free(out);
	aws_client_free(c);
}

static void test_rest_paths(void **state)
{
	struct aws_endpoint ep = {.service = "backup"};
	struct aws_client_opts o = {.region = "us-east-1", .endpoints = &ep,
				    .nendpoints = 1, .max_attempts = 1};
	struct aws_rest_request r = {.op = "DescribeRecoveryPoint",
				     .method = "GET"};
	struct aws_client *c;
	struct cm_json *out = NULL, *body;
	struct cm_buf hdrs;
	struct cm_err err;
	char *arn, *path, url[96], h[128];
	const char *extra[] = {"x-amz-Checksum: abc"};

	(void)state;
	arn = aws_uri_encode("arn:aws:ec2:us-east-1::snapshot/snap-1 x");
	assert_string_equal(arn,
			    "arn%3Aaws%3Aec2%3Aus-east-1%3A%3Asnapshot%2Fsnap-1"
			    "%20x");
	path = cm_xasprintf("/backup-vaults/v/recovery-points/%s?maxResults=5",
			    arn);
	/* the endpoint's own path goes before the request's */
	snprintf(url, sizeof(url), "%s/base/", srv.url);
	ep.url = url;
	cm_err_clear(&err);
	c = aws_client_new(&aws_backup, &o, &err);
	assert_non_null(c);
	SCRIPT(A(200, "X-Answer: 1\r\n", "{\"Status\":\"COMPLETED\"}"));
	r.path = path;
	r.headers = extra;
	r.nheaders = 1;
	cm_buf_init(&hdrs, 0);
	assert_int_equal(aws_rest(c, &r, &out, &hdrs, &err), 0);
	assert_string_equal(cm_json_get_str(out, "Status"), "COMPLETED");
	assert_string_equal(srv.seen[0].method, "GET");
	assert_string_equal(srv.seen[0].path,
			    "/base/backup-vaults/v/recovery-points/"
			    "arn%3Aaws%3Aec2%3Aus-east-1%3A%3Asnapshot%2Fsnap-1"
			    "%20x?maxResults=5");
	assert_string_equal(seen_header(&srv.seen[0], "x-amz-Checksum", h,
					sizeof(h)),
			    "abc");
	assert_substr(cm_buf_str(&hdrs), "X-Answer: 1");
	cm_buf_release(&hdrs);
	cm_json_free(out);

	/* a JSON body goes as application/json */
	SCRIPT(A(200, NULL, ""));
	body = cm_json_new_object();
	cm_json_add_str(body, "BackupVaultName", "v");
	r = (struct aws_rest_request){.op = "PutBackupVaultAccessPolicy",
				      .method = "PUT",
				      .path = "/backup-vaults/v/access-policy",
				      .json = body};
	assert_int_equal(aws_rest(c, &r, &out, NULL, &err), 0);
	assert_null(out); /* empty answer */
	assert_string_equal(srv.seen[0].body, "{\"BackupVaultName\":\"v\"}");
	assert_string_equal(seen_header(&srv.seen[0], "Content-Type", h,
					sizeof(h)),
			    "application/json");
	cm_json_free(body);

	/* a raw body (EBS PutSnapshotBlock) goes as it is */
	SCRIPT(A(201, NULL, "{\"Checksum\":\"c\"}"));
	r = (struct aws_rest_request){.op = "PutSnapshotBlock",
				      .method = "PUT",
				      .path = "/snapshots/snap-1/blocks/7",
				      .headers = extra,
				      .nheaders = 1,
				      .body = "raw\0block",
				      .body_len = 9};
	assert_int_equal(aws_rest(c, &r, &out, NULL, &err), 0);
	assert_string_equal(cm_json_get_str(out, "Checksum"), "c");
	cm_json_free(out);
	assert_string_equal(srv.seen[0].method, "PUT");
	assert_string_equal(seen_header(&srv.seen[0], "Content-Type", h,
					sizeof(h)),
			    "application/octet-stream");
	assert_string_equal(seen_header(&srv.seen[0], "Content-Length", h,
					sizeof(h)),
			    "9");
	assert_memory_equal(srv.seen[0].body, "raw", 4); /* up to the NUL */

	r.path = "no-slash";
	assert_int_equal(aws_rest(c, &r, &out, NULL, &err), -EINVAL);
	assert_substr(err.msg, "path must start with /");
	aws_client_free(c);
	free(path);
	free(arn);
}

/* ---- errors ---------------------------------------------------------------- */

static void check_error(enum aws_protocol proto, long status,
			const char *headers, const char *body,
			const char *code, const char *message)
{
	struct cm_http_response r;
	struct aws_error e;

	cm_http_response_init(&r, 0);
	r.status = status;
	if (headers)
		cm_buf_puts(&r.headers, headers);
	if (body)
		cm_buf_puts(&r.body, body);
	parse_error(proto, &r, &e);
	assert_string_equal(e.code, code);
	assert_string_equal(e.message, message);
	cm_http_response_release(&r);
}

static void test_error_parsing(void **state)
{
	(void)state;
	/* EC2 */
	check_error(AWS_PROTO_QUERY, 400, NULL,
		    "<?xml version=\"1.0\"?><Response><Errors><Error><Code>"
		    "InvalidSnapshot.NotFound</Code><Message>The snapshot "
		    "'snap-1' does not exist.</Message></Error></Errors>"
		    "<RequestID>r</RequestID></Response>",
		    "InvalidSnapshot.NotFound",
		    "The snapshot 'snap-1' does not exist.");
	/* STS, RDS */
	check_error(AWS_PROTO_QUERY, 403, NULL,
		    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/"
		    "2011-06-15/\"><Error><Type>Sender</Type><Code>"
		    "AccessDenied</Code><Message>User: u is not\n authorized"
		    "</Message></Error><RequestId>r</RequestId></ErrorResponse>",
		    "AccessDenied", "User: u is not authorized");
	/* JSON: __type with a namespace before '#' */
	check_error(AWS_PROTO_JSON10, 400, NULL,
		    "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
		    "ResourceNotFoundException\",\"message\":\"Requested "
		    "resource not found\"}",
		    "ResourceNotFoundException", "Requested resource not found");
	/* REST-JSON: the header, cut at ':', wins over the body */
	check_error(AWS_PROTO_REST_JSON, 400,
		    "x-amzn-ErrorType: InvalidParameterValueException:http://"
		    "internal.amazon.com/coral/com.amazonaws.backup/\r\n",
		    "{\"Code\":\"Other\",\"Message\":\"bad name\"}",
		    "InvalidParameterValueException", "bad name");
	check_error(AWS_PROTO_REST_JSON, 404, NULL,
		    "{\"code\":\"ResourceNotFoundException\",\"Message\":\"Backup "
		    "vault v does not exist\"}",
		    "ResourceNotFoundException", "Backup vault v does not exist");
	/* SQS's JSON protocol keeps its Query code in a header */
	check_error(AWS_PROTO_JSON10, 400,
		    "x-amzn-query-error: AWS.SimpleQueueService."
		    "NonExistentQueue;Sender\r\n",
		    "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
		    "\"message\":\"The specified queue does not exist.\"}",
		    "AWS.SimpleQueueService.NonExistentQueue",
		    "The specified queue does not exist.");
	/* nothing to read: named from the status */
	check_error(AWS_PROTO_JSON11, 503, NULL, "", "ServiceUnavailable",
		    "HTTP 503 Service Unavailable");
	check_error(AWS_PROTO_QUERY, 500, NULL, "<html>oops", "InternalError",
		    "HTTP 500 Internal Server Error");
}

/* "<service>: <Code>: <Message>", errno from the code, not retried. */
static void test_error_message(void **state)
{
	struct aws_client *c;
	struct cm_json *out = NULL;
	struct cm_xml *x = NULL;
	struct aws_rest_request r = {.op = "DescribeBackupVault",
				     .method = "GET",
				     .path = "/backup-vaults/prod"};
	struct cm_err err;

	(void)state;
	SCRIPT(A(400, NULL,
		"{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
		"ResourceNotFoundException\",\"message\":\"Requested resource "
		"not found: Table: t not found\"}"));
	c = client(&aws_dynamodb, 5);
	cm_err_clear(&err);
	assert_int_equal(aws_json(c, "DescribeTable", NULL, &out, &err),
			 -ENOENT);
	assert_string_equal(err.msg, "dynamodb: ResourceNotFoundException: "
				     "Requested resource not found: Table: t "
				     "not found");
	assert_false(err.retryable);
	assert_int_equal(srv.nseen, 1);
	aws_client_free(c);

	SCRIPT(A(404, "x-amzn-ErrorType: ResourceNotFoundException\r\n",
		"{\"Message\":\"Backup vault prod does not exist\"}"));
	c = client(&aws_backup, 5);
	assert_int_equal(aws_rest(c, &r, &out, NULL, &err), -ENOENT);
	assert_string_equal(err.msg, "backup: ResourceNotFoundException: "
				     "Backup vault prod does not exist");
	aws_client_free(c);

	SCRIPT(A(403, NULL,
		"<ErrorResponse><Error><Code>ExpiredToken</Code><Message>The "
		"security token included in the request is expired</Message>"
		"</Error></ErrorResponse>"));
	c = client(&aws_sts, 5);
	assert_int_equal(aws_query(c, "GetCallerIdentity", NULL, 0, &x, &err),
			 -EACCES);
	assert_string_equal(err.msg, "sts: ExpiredToken: The security token "
				     "included in the request is expired");
	assert_int_equal(srv.nseen, 1);
	aws_client_free(c);

	SCRIPT(A(409, NULL,
		"{\"__type\":\"ConflictException\",\"message\":\"busy\"}"));
	c = client(&aws_ssm, 5);
	assert_int_equal(aws_json(c, "X", NULL, &out, &err), -EBUSY);
	aws_client_free(c);
}

/* ---- throttling ------------------------------------------------------------ */

static void test_throttling_codes(void **state)
{
	static const char *const yes[] = {
	    "Throttling",	     "ThrottlingException",
	    "RequestLimitExceeded", "TooManyRequestsException",
	    "SlowDown",		     "ProvisionedThroughputExceededException",
	    "RequestThrottled",	     "EC2ThrottledException",
	};
	static const char *const no[] = {
	    "LimitExceededException", "AccessDenied", "ValidationException",
	    "throttling",	      "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		assert_true(aws_code_is_throttling(yes[i]));
		assert_true(aws_code_is_retryable(yes[i]));
		assert_int_equal(code_errno(400, yes[i]), EAGAIN);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(aws_code_is_throttling(no[i]));
	assert_false(aws_code_is_throttling(NULL));
	assert_true(aws_code_is_retryable("RequestTimeout"));
	assert_true(aws_code_is_retryable("IDPCommunicationError"));
	assert_false(aws_code_is_retryable("AccessDenied"));
}

static void test_throttling_retried(void **state)
{
	struct aws_client *c;
	struct cm_xml *x = NULL;
	struct cm_json *out = NULL;
	struct cm_err err;

	(void)state;
	/* throttled twice (two protocols' ways of saying it), then served */
	SCRIPT(A(400, NULL,
		"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
		"<Message>Request limit exceeded.</Message></Error></Errors>"
		"</Response>"),
	       A(400, NULL,
		"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate "
		"exceeded</Message></Error></ErrorResponse>"),
	       A(200, NULL, "<DescribeSnapshotsResponse/>"));
	c = client(&aws_ec2, 5);
	cm_err_clear(&err);
	assert_int_equal(aws_query(c, "DescribeSnapshots", NULL, 0, &x, &err),
			 0);
	assert_int_equal(srv.nseen, 3);
	/* each attempt is signed afresh */
	assert_string_equal(srv.seen[2].body,
			    "Action=DescribeSnapshots&Version=2016-11-15");
	cm_xml_free(x);
	aws_client_free(c);

	/* still throttled after the last attempt: EAGAIN, said so */
	SCRIPT(A(400, NULL,
		"{\"__type\":\"ThrottlingException\",\"message\":\"Rate "
		"exceeded\"}"));
	c = client(&aws_dynamodb, 3);
	assert_int_equal(aws_json(c, "ListTables", NULL, &out, &err), -EAGAIN);
	assert_true(err.retryable);
	assert_string_equal(err.msg, "dynamodb: ThrottlingException: Rate "
				     "exceeded [gave up after 3 attempts]");
	assert_int_equal(srv.nseen, 3);
	aws_client_free(c);

	/* 429 and 5xx without a body are retried too */
	SCRIPT(A(429, NULL, ""), A(503, NULL, ""), A(200, NULL, "{}"));
	c = client(&aws_backup, 5);
	{
		struct aws_rest_request r = {.op = "ListBackupVaults",
					     .method = "GET",
					     .path = "/backup-vaults/"};

		assert_int_equal(aws_rest(c, &r, &out, NULL, &err), 0);
	}
	assert_int_equal(srv.nseen, 3);
	cm_json_free(out);
	aws_client_free(c);
}

/* ---- a raw answer resumed ------------------------------------------------- */

struct sink_state {
	char got[64];
	size_t n;
};

static size_t sink(void *ctx, const void *p, size_t n)
{
	struct sink_state *s = ctx;

	assert_true(s->n + n < sizeof(s->got));
	memcpy(s->got + s->n, p, n);
	s->n += n;
	return n;
}

static void test_sink_resumed(void **state)
{
	struct sink_state st = {0};
	struct aws_rest_request r = {
	    .op = "GetSnapshotBlock",
	    .method = "GET",
	    .path = "/snapshots/snap-1/blocks/0?blockToken=t",
	    .sink = sink,
	    .sink_ctx = &st,
	};
	struct aws_client *c;
	struct cm_err err;

	(void)state;
	/* the first answer breaks off after 3 of 8 bytes */
	SCRIPT({200, NULL, "abcdefgh", 3}, A(200, NULL, "abcdefgh"));
	c = client(&aws_ebs, 3);
	cm_err_clear(&err);
	assert_int_equal(aws_rest(c, &r, NULL, NULL, &err), 0);
	assert_int_equal(srv.nseen, 2);
	assert_int_equal(st.n, 8);
	assert_memory_equal(st.got, "abcdefgh", 8); /* each byte once */
	aws_client_free(c);
}

/* ---- endpoints and regions ------------------------------------------------- */

/* eps: NULL, or the two of test_endpoint_order */
static void endpoint_is(const struct aws_service *svc, const char *region,
			const struct aws_endpoint *eps, const char *url,
			const char *source)
{
	char from[64], *u;

	u = aws_endpoint_resolve(svc->name, svc->env, svc->host, region, eps,
				 eps ? 2 : 0, from, sizeof(from));
	assert_string_equal(u, url);
	assert_string_equal(from, source);
	free(u);
}

static void test_endpoint_order(void **state)
{
	struct aws_endpoint eps[] = {{"ec2", "http://config-ec2:1"},
				     {"s3", "http://config-s3:2"}};

	(void)state;
	endpoint_is(&aws_ec2, "eu-west-1", eps, "http://config-ec2:1",
		    "config endpoints.ec2");
	endpoint_is(&aws_rds, "eu-west-1", eps,
		    "https://rds.eu-west-1.amazonaws.com", "default");
	endpoint_is(&aws_ec2, "cn-north-1", NULL,
		    "https://ec2.cn-north-1.amazonaws.com.cn", "default");
	setenv("AWS_ENDPOINT_URL", "http://all:3", 1);
	endpoint_is(&aws_ec2, "eu-west-1", eps, "http://all:3",
		    "AWS_ENDPOINT_URL");
	setenv("AWS_ENDPOINT_URL_EC2", "http://ec2-only:4", 1);
	endpoint_is(&aws_ec2, "eu-west-1", eps, "http://ec2-only:4",
		    "AWS_ENDPOINT_URL_EC2");
	/* _EC2 is EC2's only */
	endpoint_is(&aws_rds, "eu-west-1", eps, "http://all:3",
		    "AWS_ENDPOINT_URL");

	/* the S3 client resolves the same way after its own endpoint */
	{
		struct s3_client_opts so = {.region = "eu-west-1",
					    .endpoints = eps,
					    .nendpoints = 2};
		struct s3_client *s3;
		struct cm_err err;

		setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:5", 1);
		s3 = s3_client_new(&so, &err);
		assert_string_equal(s3_client_endpoint(s3), "http://s3-only:5");
		s3_client_free(s3);
		unsetenv("AWS_ENDPOINT_URL_S3");
		unsetenv("AWS_ENDPOINT_URL");
		s3 = s3_client_new(&so, &err);
		assert_string_equal(s3_client_endpoint(s3), "http://config-s3:2");
		s3_client_free(s3);
		so.nendpoints = 0;
		s3 = s3_client_new(&so, &err);
		assert_string_equal(s3_client_endpoint(s3),
				    "https://s3.eu-west-1.amazonaws.com");
		s3_client_free(s3);
	}

	/* a bad URL is named with where it came from */
	{
		struct aws_client_opts o = {.region = "us-east-1"};
		struct cm_err err;

		setenv("AWS_ENDPOINT_URL_EC2", "ftp://x", 1);
		assert_null(aws_client_new(&aws_ec2, &o, &err));
		assert_substr(err.msg, "ec2 (AWS_ENDPOINT_URL_EC2): endpoint "
				       "ftp://x: must start with http://");
	}
}

static void test_region_order(void **state)
{
	struct aws_client_opts o = {0};
	struct aws_client *c;
	struct cm_err err;
	char path[128];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/config", tmp);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[default]\nregion = ap-south-1\n[profile p]\nregion = "
	      "sa-east-1\n",
	      f);
	fclose(f);

#define REGION_IS(r, src)                                                      \
	do {                                                                   \
		cm_err_clear(&err);                                            \
		c = aws_client_new(&aws_backup, &o, &err);                     \
		if (!c)                                                        \
			fail_msg("%s", err.msg);                               \
		assert_string_equal(aws_client_region(c), r);                  \
		assert_string_equal(aws_client_region_source(c), src);         \
		aws_client_free(c);                                            \
	} while (0)

	REGION_IS("ap-south-1", "profile default");
	o.profile = "p";
	REGION_IS("sa-east-1", "profile p");
	setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
	REGION_IS("eu-west-3", "AWS_DEFAULT_REGION");
	setenv("AWS_REGION", "eu-north-1", 1);
	REGION_IS("eu-north-1", "AWS_REGION");
	o.region = "us-west-2";
	REGION_IS("us-west-2", "config");

	/* nothing anywhere, no instance metadata: an error naming them */
	unlink(path);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	o.region = NULL;
	o.profile = NULL;
	assert_null(aws_client_new(&aws_backup, &o, &err));
	assert_substr(err.msg, "backup: no region: set \"region\" in the "
			       "config, AWS_REGION, AWS_DEFAULT_REGION");
	assert_substr(err.msg, "AWS_EC2_METADATA_DISABLED");

	o.region = "us-east-1;x";
	assert_null(aws_client_new(&aws_backup, &o, &err));
	assert_substr(err.msg, "bad region");
#undef REGION_IS
}

/* ---- STS ------------------------------------------------------------------- */

static void test_account_id(void **state)
{
	struct aws_client *c;
	struct aws_identity id;
	struct cm_err err;
	char acct[13];

	(void)state;
	SCRIPT(A(200, NULL,
		"<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/"
		"doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::"
		"123456789012:user/u</Arn><UserId>AIDA</UserId><Account>"
		"123456789012</Account></GetCallerIdentityResult>"
		"</GetCallerIdentityResponse>"),
	       A(200, NULL,
		"<GetCallerIdentityResponse><GetCallerIdentityResult><Account>"
		"12345</Account></GetCallerIdentityResult>"
		"</GetCallerIdentityResponse>"));
	c = client(&aws_sts, 1);
	cm_err_clear(&err);
	assert_int_equal(aws_account_id(c, acct, &err), 0);
	assert_string_equal(acct, "123456789012");
	assert_string_equal(srv.seen[0].body,
			    "Action=GetCallerIdentity&Version=2011-06-15");
	assert_int_equal(aws_caller_identity(c, &id, &err), -EPROTO);
	assert_substr(err.msg, "no 12-digit Account");
	aws_client_free(c);
}

/* Web identity is asked without credentials: nothing is signed. */
static void test_anonymous(void **state)
{
	struct aws_endpoint ep = {.service = "sts", .url = srv.url};
	struct aws_client_opts o = {.region = "us-east-1", .endpoints = &ep,
				    .nendpoints = 1, .anonymous = true};
	struct aws_client *c;
	struct cm_xml *x = NULL;
	struct cm_err err;
	char h[256];

	(void)state;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	SCRIPT(A(200, NULL, "<AssumeRoleWithWebIdentityResponse/>"));
	cm_err_clear(&err);
	c = aws_client_new(&aws_sts, &o, &err);
	assert_non_null(c);
	assert_int_equal(aws_query(c, "AssumeRoleWithWebIdentity", NULL, 0, &x,
				   &err),
			 0);
	assert_null(seen_header(&srv.seen[0], "Authorization", h, sizeof(h)));
	cm_xml_free(x);
	aws_client_free(c);
}

/* ---- credentials through STS ---------------------------------------------- */

static void write_tmp(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* An STS answer with credentials that expire `in` seconds from now. */
static char *sts_answer(const char *action, const char *key, long in)
{
	char exp[32];

	cm_time_iso8601(time(NULL) + in, exp, sizeof(exp));
	return cm_xasprintf(
	    "<%sResponse><%sResult><Credentials><AccessKeyId>%s</AccessKeyId>"
	    "<SecretAccessKey>rolesecret</SecretAccessKey><SessionToken>"
	    "roletoken</SessionToken><Expiration>%s</Expiration>"
	    "</Credentials></%sResult></%sResponse>",
	    action, action, key, exp, action, action);
}

/*
 * AssumeRole: asked with the profile's options, signed with the source
 * profile's keys, and cached until five minutes before the expiry.
 */
static void test_assume_role_cached(void **state)
{
	struct aws_creds_opts co = {.profile = "prod"};
	struct aws_creds_provider *p;
	struct aws_creds c;
	struct cm_err err;
	char *fresh = sts_answer("AssumeRole", "ASIAROLE1", 3600);
	char *soon = sts_answer("AssumeRole", "ASIAROLE2", 120);
	char h[512];
	const struct canned script[] = {A(200, NULL, soon), A(200, NULL, fresh)};

	(void)state;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_ENDPOINT_URL_STS", srv.url, 1);
	write_tmp("credentials", "[base]\naws_access_key_id = AKIDBASE\n"
				 "aws_secret_access_key = basesecret\n");
	write_tmp("config", "[profile prod]\nregion = eu-west-1\n"
			    "role_arn = arn:aws:iam::123456789012:role/r\n"
			    "source_profile = base\nrole_session_name = s1\n"
			    "external_id = e&1\nduration_seconds = 3600\n");
	mini_script(script, 2);
	retry_interval_s = 0; /* no pause between refreshes */
	p = aws_creds_provider_new(&co);
	cm_err_clear(&err);
	/* the first answer is already inside the margin: asked again */
	assert_int_equal(aws_creds_get(p, &c, &err), 0);
	assert_string_equal(c.access_key_id, "ASIAROLE2");
	aws_creds_release(&c);
	assert_int_equal(aws_creds_get(p, &c, &err), 0);
	assert_string_equal(c.access_key_id, "ASIAROLE1");
	assert_string_equal(c.session_token, "roletoken");
	assert_string_equal(c.source, "assume-role");
	aws_creds_release(&c);
	/* a fresh one is kept */
	assert_int_equal(aws_creds_get(p, &c, &err), 0);
	assert_string_equal(c.access_key_id, "ASIAROLE1");
	aws_creds_release(&c);
	assert_int_equal(srv.nseen, 2);
	assert_string_equal(srv.seen[0].body,
			    "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3A"
			    "aws%3Aiam%3A%3A123456789012%3Arole%2Fr&"
			    "RoleSessionName=s1&ExternalId=e%261&"
			    "DurationSeconds=3600");
	assert_non_null(
	    seen_header(&srv.seen[0], "Authorization", h, sizeof(h)));
	assert_substr(h, "Credential=AKIDBASE/");
	assert_substr(h, "/eu-west-1/sts/aws4_request"); /* profile's region */
	aws_creds_provider_free(p);
	retry_interval_s = RETRY_INTERVAL_S;

	/* STS refusing is named */
	SCRIPT(A(403, NULL,
		 "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not "
		 "authorized to perform: sts:AssumeRole</Message></Error>"
		 "</ErrorResponse>"));
	p = aws_creds_provider_new(&co);
	assert_int_equal(aws_creds_get(p, &c, &err), -EACCES);
	assert_string_equal(err.msg,
			    "profile prod: role arn:aws:iam::123456789012:role/r: "
			    "sts: AccessDenied: not authorized to perform: "
			    "sts:AssumeRole");
	aws_creds_provider_free(p);
	free(fresh);
	free(soon);
}

/* Web identity: unsigned, with the token file's text. */
static void test_web_identity(void **state)
{
	struct aws_creds_provider *p;
	struct aws_creds c;
	struct cm_err err;
	char *ans = sts_answer("AssumeRoleWithWebIdentity", "ASIAWEB", 3600);
	char path[128], h[256];
	const struct canned script[] = {A(200, NULL, ans)};

	(void)state;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_ENDPOINT_URL", srv.url, 1);
	write_tmp("token", "eyJ.tok\n");
	snprintf(path, sizeof(path), "%s/token", tmp);
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/eks", 1);
	setenv("AWS_ROLE_SESSION_NAME", "pod", 1);
	mini_script(script, 1);
	p = aws_creds_provider_new(NULL);
	cm_err_clear(&err);
	assert_int_equal(aws_creds_get(p, &c, &err), 0);
	assert_string_equal(c.access_key_id, "ASIAWEB");
	assert_string_equal(c.source, "web-identity");
	aws_creds_release(&c);
	assert_string_equal(srv.seen[0].body,
			    "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
			    "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2F"
			    "eks&RoleSessionName=pod&WebIdentityToken=eyJ.tok");
	assert_null(seen_header(&srv.seen[0], "Authorization", h, sizeof(h)));
	aws_creds_provider_free(p);
	free(ans);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_query_encoding),   T(test_json_target),
	    T(test_rest_paths),	      T(test_error_parsing),
	    T(test_error_message),    T(test_throttling_codes),
	    T(test_throttling_retried), T(test_sink_resumed),
	    T(test_endpoint_order),   T(test_region_order),
	    T(test_account_id),	      T(test_anonymous),
	    T(test_assume_role_cached), T(test_web_identity),
	};

	signal(SIGPIPE, SIG_IGN);
	mini_start();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
