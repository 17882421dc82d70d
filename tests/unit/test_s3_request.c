/*
 * test_s3_request.c - S3 requests as they go on the wire: how the client
 * resolves endpoint, region and addressing; URLs for path-style and
 * virtual-host addressing; keys with odd characters; query strings
 * (?uploads, ?partNumber=1&uploadId=...); the headers every request and
 * some requests carry; signatures checked against botocore's (computed
 * independently, with the same credentials and clock); and the retry loop
 * driven by the fault switch.
 *
 * core/s3.c is included to reach its static functions (UNITTEST, curl's
 * way). No network: the only "server" is a closed local port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/s3.c"

/* 2015-08-30T12:36:00Z, the SigV4 suite's clock */
#define T_2015 1440938160

static void clean_env(void)
{
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_PROFILE");
	unsetenv("VAULTFS_S3_MAX_ATTEMPTS");
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY",
	       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
}

static struct s3_client *client(const struct s3_client_opts *o)
{
	struct cm_err err;
	struct s3_client *c;

	cm_err_clear(&err);
	c = s3_client_new(o, &err);
	if (!c)
		fail_msg("s3_client_new: %s", err.msg);
	return c;
}

static const char *header(const struct aws_wire *w, const char *name)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcasecmp(w->name[i], name))
			return w->value[i];
	return NULL;
}

/* ---- the client ------------------------------------------------------------
 */

static void test_resolution(void **state)
{
	struct s3_client_opts o = {0};
	struct s3_client *c;

	(void)state;
	clean_env();
	/* AWS: the regional endpoint, virtual-host addressing */
	c = client(&o);
	assert_string_equal(s3_client_region(c), "us-east-1");
	assert_string_equal(s3_client_endpoint(c),
			    "https://s3.us-east-1.amazonaws.com");
	assert_false(c->path_style);
	s3_client_free(c);

	setenv("AWS_REGION", "eu-west-1", 1);
	c = client(&o);
	assert_string_equal(s3_client_endpoint(c),
			    "https://s3.eu-west-1.amazonaws.com");
	s3_client_free(c);
	o.region = "ap-south-1"; /* the option wins */
	c = client(&o);
	assert_string_equal(s3_client_region(c), "ap-south-1");
	s3_client_free(c);
	o.region = NULL;

	/* an override: path-style; the _S3 variable wins; option wins */
	setenv("AWS_ENDPOINT_URL", "http://generic:9000/", 1);
	c = client(&o);
	assert_string_equal(s3_client_endpoint(c), "http://generic:9000");
	assert_true(c->path_style);
	s3_client_free(c);
	setenv("AWS_ENDPOINT_URL_S3", "http://s3only:9000", 1);
	c = client(&o);
	assert_string_equal(s3_client_endpoint(c), "http://s3only:9000");
	s3_client_free(c);
	o.endpoint = "https://opt.example:443/base/";
	c = client(&o);
	assert_string_equal(s3_client_endpoint(c), "https://opt.example/base");
	assert_string_equal(c->b.url.authority, "opt.example"); /* :443 implied */
	assert_string_equal(c->b.url.base_path, "/base");
	s3_client_free(c);
	o.addressing = S3_ADDRESSING_VIRTUAL;
	c = client(&o);
	assert_false(c->path_style);
	s3_client_free(c);
	o.addressing = S3_ADDRESSING_AUTO;
	o.endpoint = NULL;
	clean_env();

	/* attempts */
	c = client(&o);
	assert_int_equal(c->b.max_attempts, 8);
	s3_client_free(c);
	setenv("VAULTFS_S3_MAX_ATTEMPTS", "3", 1);
	c = client(&o);
	assert_int_equal(c->b.max_attempts, 3);
	s3_client_free(c);
	setenv("VAULTFS_S3_MAX_ATTEMPTS", "zero", 1);
	c = client(&o);
	assert_int_equal(c->b.max_attempts, 8);
	s3_client_free(c);
	unsetenv("VAULTFS_S3_MAX_ATTEMPTS");

	/* SSE-KMS: a key implies aws:kms, and ETags are not MD5s then */
	o.sse_kms_key_id = "arn:aws:kms:us-east-1:111122223333:key/k";
	c = client(&o);
	assert_string_equal(c->sse, "aws:kms");
	assert_false(s3_client_etag_is_md5(c));
	s3_client_free(c);
	o.sse_kms_key_id = NULL;
	o.sse = "AES256";
	c = client(&o);
	assert_true(s3_client_etag_is_md5(c));
	s3_client_free(c);
}

static void test_bad_options(void **state)
{
	static const char *const endpoints[] = {
	    "ftp://x",	       "http://",	  "s3.amazonaws.com",
	    "http://u:p@host", "http://host?x=1", "http://ho st",
	};
	struct s3_client_opts o = {0};
	struct cm_err err;

	(void)state;
	clean_env();
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		o.endpoint = endpoints[i];
		cm_err_clear(&err);
		assert_null(s3_client_new(&o, &err));
		assert_int_equal(err.code, EINVAL);
		assert_non_null(strstr(err.msg, "endpoint"));
	}
	o.endpoint = NULL;
	o.sse = "rot13";
	assert_null(s3_client_new(&o, &err));
	assert_non_null(strstr(err.msg, "SSE"));
	o.sse = "AES256";
	o.sse_kms_key_id = "k";
	assert_null(s3_client_new(&o, &err));
	o.sse = NULL;
	o.sse_kms_key_id = NULL;
	o.storage_class = "STANDARD IA";
	assert_null(s3_client_new(&o, &err));
	o.storage_class = NULL;
	o.expected_bucket_owner = "1234\r\nX-Evil: 1";
	assert_null(s3_client_new(&o, &err));
	o.expected_bucket_owner = NULL;
	o.region = "us-east-1/../x";
	assert_null(s3_client_new(&o, &err));
}

/* ---- URLs
 * -------------------------------------------------------------------- */

static void build(struct s3_client *c, struct s3_op *op, struct aws_wire *w)
{
	memset(w, 0, sizeof(*w));
	wire_build(c, op, w);
}

static void test_path_style_keys(void **state)
{
	static const struct {
		const char *key;
		const char *path;
	} keys[] = {
	    {"plain.txt", "/b/plain.txt"},
	    {"dir/a b+c~d_e-f.txt", "/b/dir/a%20b%2Bc~d_e-f.txt"},
	    {"\xc3\xbcni/\xc3\xb6", "/b/%C3%BCni/%C3%B6"},
	    {"a//b/", "/b/a//b/"},
	    {"q?h#p%s", "/b/q%3Fh%23p%25s"},
	    {"*'()!$&,;=:@[]", "/b/%2A%27%28%29%21%24%26%2C%3B%3D%3A%40"
			       "%5B%5D"},
	    {"tab\there\x01", "/b/tab%09here%01"},
	};
	struct s3_client_opts o = {.endpoint = "http://127.0.0.1:7490"};
	struct s3_client *c;
	struct s3_op op;
	struct aws_wire w;
	char url[512];

	(void)state;
	clean_env();
	c = client(&o);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		op_init(&op, "GetObject", "GET", "b", keys[i].key);
		build(c, &op, &w);
		assert_string_equal(w.path, keys[i].path);
		snprintf(url, sizeof(url), "http://127.0.0.1:7490%s",
			 keys[i].path);
		assert_string_equal(w.url, url);
		assert_null(w.query);
		assert_string_equal(header(&w, "Host"), "127.0.0.1:7490");
		aws_wire_release(&w);
	}
	/* bucket level and service level */
	op_init(&op, "ListObjectsV2", "GET", "b", NULL);
	build(c, &op, &w);
	assert_string_equal(w.url, "http://127.0.0.1:7490/b");
	aws_wire_release(&w);
	op_init(&op, "ListBuckets", "GET", NULL, NULL);
	build(c, &op, &w);
	assert_string_equal(w.url, "http://127.0.0.1:7490/");
	assert_string_equal(w.path, "/");
	aws_wire_release(&w);
	s3_client_free(c);

	/* an endpoint with a base path keeps it in front */
	o.endpoint = "http://gw.example:8080/s3/";
	c = client(&o);
	op_init(&op, "PutObject", "PUT", "b", "k");
	build(c, &op, &w);
	assert_string_equal(w.url, "http://gw.example:8080/s3/b/k");
	assert_string_equal(w.path, "/s3/b/k");
	assert_string_equal(header(&w, "Host"), "gw.example:8080");
	aws_wire_release(&w);
	s3_client_free(c);
}

static void test_virtual_host(void **state)
{
	struct s3_client_opts o = {.region = "us-west-2"};
	struct s3_client *c;
	struct s3_op op;
	struct aws_wire w;

	(void)state;
	clean_env();
	c = client(&o);
	op_init(&op, "PutObject", "PUT", "my-bucket", "a b/c");
	build(c, &op, &w);
	assert_string_equal(w.url, "https://my-bucket.s3.us-west-2."
				   "amazonaws.com/a%20b/c");
	assert_string_equal(w.path, "/a%20b/c");
	assert_string_equal(header(&w, "Host"),
			    "my-bucket.s3.us-west-2.amazonaws.com");
	aws_wire_release(&w);

	op_init(&op, "HeadBucket", "HEAD", "my-bucket", NULL);
	build(c, &op, &w);
	assert_string_equal(w.url, "https://my-bucket.s3.us-west-2."
				   "amazonaws.com/");
	assert_string_equal(w.path, "/");
	aws_wire_release(&w);

	/* names that are no DNS label for TLS: path-style instead */
	op_init(&op, "GetObject", "GET", "my.dotted.bucket", "k");
	build(c, &op, &w);
	assert_string_equal(w.url, "https://s3.us-west-2.amazonaws.com/"
				   "my.dotted.bucket/k");
	aws_wire_release(&w);
	op_init(&op, "GetObject", "GET", "Upper_Case", "k");
	build(c, &op, &w);
	assert_string_equal(w.path, "/Upper_Case/k");
	aws_wire_release(&w);
	op_init(&op, "GetObject", "GET", "192.168.1.1", "k");
	build(c, &op, &w);
	assert_string_equal(w.path, "/192.168.1.1/k");
	aws_wire_release(&w);

	/* the service itself */
	op_init(&op, "ListBuckets", "GET", NULL, NULL);
	build(c, &op, &w);
	assert_string_equal(w.url, "https://s3.us-west-2.amazonaws.com/");
	aws_wire_release(&w);
	s3_client_free(c);

	assert_true(virtual_host_ok("a.b-c", false));
	assert_false(virtual_host_ok("a.b-c", true));
	assert_false(virtual_host_ok("ab", false));
	assert_false(virtual_host_ok("a..b", false));
	assert_false(virtual_host_ok("-ab", false));
	assert_false(virtual_host_ok("a-.b", false));
}

static void test_queries(void **state)
{
	struct s3_client_opts o = {.endpoint = "http://h:1"};
	struct s3_param uploads[] = {{"uploads", NULL}};
	struct s3_param part[] = {{"partNumber", "1"},
				  {"uploadId", "2~a/b+c=d"}};
	struct s3_param list[] = {{"list-type", "2"},
				  {"encoding-type", "url"},
				  {"prefix", "a b/\xc3\xbc"},
				  {"delimiter", "/"},
				  {"continuation-token", "1ueGcxLPRx1T+Y="}};
	struct s3_client *c;
	struct s3_op op;
	struct aws_wire w;

	(void)state;
	clean_env();
	c = client(&o);
	op_init(&op, "CreateMultipartUpload", "POST", "b", "k");
	op.params = uploads;
	op.nparams = 1;
	build(c, &op, &w);
	assert_string_equal(w.url, "http://h:1/b/k?uploads");
	assert_string_equal(w.query, "uploads=");
	aws_wire_release(&w);

	op_init(&op, "UploadPart", "PUT", "b", "k");
	op.params = part;
	op.nparams = 2;
	build(c, &op, &w);
	assert_string_equal(w.url, "http://h:1/b/k?partNumber=1&uploadId="
				   "2~a%2Fb%2Bc%3Dd");
	assert_string_equal(w.query, "partNumber=1&uploadId=2~a%2Fb%2Bc%3Dd");
	aws_wire_release(&w);

	op_init(&op, "ListObjectsV2", "GET", "b", NULL);
	op.params = list;
	op.nparams = 5;
	build(c, &op, &w);
	assert_string_equal(w.url, "http://h:1/b?list-type=2&encoding-type=url"
				   "&prefix=a%20b%2F%C3%BC&delimiter=%2F"
				   "&continuation-token=1ueGcxLPRx1T%2BY%3D");
	/* signed in sorted order */
	assert_string_equal(w.query, "continuation-token=1ueGcxLPRx1T%2BY%3D"
				     "&delimiter=%2F&encoding-type=url"
				     "&list-type=2&prefix=a%20b%2F%C3%BC");
	aws_wire_release(&w);
	s3_client_free(c);
}

static void test_headers(void **state)
{
	struct s3_client_opts o = {
	    .endpoint = "http://h:1",
	    .expected_bucket_owner = "111122223333",
	    .storage_class = "DEEP_ARCHIVE",
	    .sse_kms_key_id = "alias/backup",
	};
	struct s3_client *c;
	struct get_state g = {0};
	struct s3_op op;
	struct aws_wire w;

	(void)state;
	clean_env();
	c = client(&o);
	/* PutObject: class, encryption and owner */
	op_init(&op, "PutObject", "PUT", "b", "k");
	op_put_headers(c, &op);
	build(c, &op, &w);
	assert_string_equal(header(&w, "x-amz-storage-class"), "DEEP_ARCHIVE");
	assert_string_equal(header(&w, "x-amz-server-side-encryption"),
			    "aws:kms");
	assert_string_equal(header(&w, "x-amz-server-side-encryption-aws-"
				       "kms-key-id"),
			    "alias/backup");
	assert_string_equal(header(&w, "x-amz-expected-bucket-owner"),
			    "111122223333");
	aws_wire_release(&w);

	/* UploadPart: the owner only (class and SSE belong to the upload) */
	op_init(&op, "UploadPart", "PUT", "b", "k");
	build(c, &op, &w);
	assert_null(header(&w, "x-amz-storage-class"));
	assert_null(header(&w, "x-amz-server-side-encryption"));
	assert_string_equal(header(&w, "x-amz-expected-bucket-owner"),
			    "111122223333");
	aws_wire_release(&w);

	/* ListBuckets names no bucket: no owner */
	op_init(&op, "ListBuckets", "GET", NULL, NULL);
	build(c, &op, &w);
	assert_null(header(&w, "x-amz-expected-bucket-owner"));
	aws_wire_release(&w);

	/* GetObject: a range, and a resume pinned to the first ETag */
	op_init(&op, "GetObject", "GET", "b", "k");
	op.get = &g;
	build(c, &op, &w);
	assert_null(header(&w, "Range"));
	assert_null(header(&w, "If-Match"));
	aws_wire_release(&w);
	g.ranged = true;
	g.start = 100;
	g.len = 50;
	build(c, &op, &w);
	assert_string_equal(header(&w, "Range"), "bytes=100-149");
	aws_wire_release(&w);
	g.delivered = 20;
	g.have_info = true;
	strcpy(g.info.etag, "abc");
	build(c, &op, &w);
	assert_string_equal(header(&w, "Range"), "bytes=120-149");
	assert_string_equal(header(&w, "If-Match"), "\"abc\"");
	aws_wire_release(&w);
	g.ranged = false;
	g.start = 0;
	g.len = 0;
	g.delivered = 7;
	build(c, &op, &w);
	assert_string_equal(header(&w, "Range"), "bytes=7-");
	aws_wire_release(&w);
	s3_client_free(c);
}

/* ---- signatures (botocore 1.43 S3SigV4Auth, same inputs) --------------- */

static void sign_and_check(struct s3_client *c, struct s3_op *op,
			   const char *md5_b64, const char *payload_hash,
			   const char *want)
{
	struct aws_creds cr = {
	    .access_key_id = (char *)"AKIDEXAMPLE",
	    .secret_access_key =
		(char *)"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	    .session_token = (char *)"TOKEN/with+chars=",
	};
	struct cm_err err;
	struct aws_wire w;
	bool found = false;

	build(c, op, &w);
	if (md5_b64)
		aws_wire_header(&w, "Content-MD5", md5_b64);
	cm_err_clear(&err);
	assert_int_equal(
	    aws_wire_sign(c->b.signer, op->method, &w, payload_hash, true, T_2015,
			  &cr, &err), 0);
	assert_string_equal(header(&w, "X-Amz-Date"), "20150830T123600Z");
	assert_string_equal(header(&w, "X-Amz-Content-Sha256"), payload_hash);
	assert_string_equal(header(&w, "X-Amz-Security-Token"),
			    "TOKEN/with+chars=");
	assert_string_equal(header(&w, "Authorization"), want);
	/* the lines handed to curl are the same headers */
	for (size_t i = 0; i < w.nlines; i++)
		if (!strncmp(w.line[i], "Authorization: AWS4-HMAC-SHA256 ", 32))
			found = true;
	assert_true(found);
	assert_int_equal(w.nlines, w.n);
	aws_wire_release(&w);
}

static void test_signatures(void **state)
{
	struct s3_client_opts o = {.endpoint = "http://127.0.0.1:7490"};
	struct s3_param part[] = {{"partNumber", "1"}, {"uploadId", "2~abc"}};
	struct s3_param uploads[] = {{"uploads", NULL}};
	char hello[CM_SHA256_HEX_LEN + 1];
	struct s3_client *c;
	struct s3_op op;

	(void)state;
	clean_env();
	c = client(&o);
	cm_sha256_hex("hello", 5, hello);

	op_init(&op, "PutObject", "PUT", "b", "dir/a b+c.txt");
	sign_and_check(c, &op, NULL, hello,
		       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
		       "us-east-1/s3/aws4_request, SignedHeaders=host;"
		       "x-amz-content-sha256;x-amz-date;x-amz-security-token, "
		       "Signature=4d8d93a7a88dcc56a6f094a803225e0e974e5a2d03a1"
		       "19b1957e20e8e3d7ee77");

	op_init(&op, "UploadPart", "PUT", "b", "k");
	op.params = part;
	op.nparams = 2;
	sign_and_check(c, &op, "XUFAKrxLKna5cZ2REBfFkg==", hello,
		       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
		       "us-east-1/s3/aws4_request, SignedHeaders=content-md5;"
		       "host;x-amz-content-sha256;x-amz-date;"
		       "x-amz-security-token, Signature=de5b598f801e1b837e3774"
		       "96312e0143be85f64eac5b16db8fe65ce088c3e4ff");

	op_init(&op, "CreateMultipartUpload", "POST", "b", "k");
	op.params = uploads;
	op.nparams = 1;
	sign_and_check(c, &op, NULL, AWS_EMPTY_SHA256,
		       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
		       "us-east-1/s3/aws4_request, SignedHeaders=host;"
		       "x-amz-content-sha256;x-amz-date;x-amz-security-token, "
		       "Signature=9e58ed6910055648ae834fbdd64642d8a0071be91d7c"
		       "12c7ec035057f0bc6e98");
	s3_client_free(c);
}

/* ---- the retry loop, driven by the fault switch (see main) ---------- */

static void test_backoff(void **state)
{
	(void)state;
	for (int i = 0; i < 200; i++) {
		assert_true(aws_backoff_ms(1) <= 100);
		assert_true(aws_backoff_ms(2) <= 200);
		assert_true(aws_backoff_ms(8) <= 12800);
		assert_true(aws_backoff_ms(9) <= 20000);
		assert_true(aws_backoff_ms(60) <= 20000);
	}
}

static void test_retries(void **state)
{
	struct s3_client_opts o = {.endpoint = "http://127.0.0.1:1",
				   .max_attempts = 3};
	struct s3_object_info info;
	struct s3_client *c;
	struct cm_err err;
	char etag[S3_ETAG_MAX];
	int rc;

	(void)state;
	clean_env();
	c = client(&o);
	/* s3.request fails the first three attempts: retried, then given
	 * up, still marked retryable for the caller */
	cm_err_clear(&err);
	rc = s3_head_object(c, "b", "k", &info, &err);
	assert_int_equal(rc, -ECONNRESET);
	assert_true(err.retryable);
	assert_non_null(strstr(err.msg, "injected"));
	assert_non_null(strstr(err.msg, "[gave up after 3 attempts]"));

	/* s3.upload_part@1 is fatal: one attempt, no retry */
	cm_err_clear(&err);
	rc = s3_upload_part(c, "b", "k", "id", 1, "x", 1, NULL, etag, &err);
	assert_int_equal(rc, -EIO);
	assert_false(err.retryable);
	assert_string_equal(err.msg, "UploadPart s3://b/k: injected fault "
				     "at s3.upload_part");

	/* a closed port: transport failures are retried too */
	cm_err_clear(&err);
	rc = s3_delete_object(c, "b", "k", &err);
	assert_true(rc < 0);
	assert_true(err.retryable);
	assert_non_null(strstr(err.msg, "[gave up after 3 attempts]"));
	assert_null(strstr(err.msg, "wJalrXUtnFEMI"));

	/* arguments are checked before anything goes out */
	assert_int_equal(
	    s3_upload_part(c, "b", "k", "id", 10001, "x", 1, NULL, etag, &err),
	    -EFBIG);
	assert_int_equal(s3_put_object(c, "b", "", "x", 1, NULL, etag, &err),
			 -EINVAL);
	assert_int_equal(s3_head_bucket(c, "a/b", &err), -EINVAL);
	s3_client_free(c);
}

static void test_http_handles(void **state)
{
	struct s3_client_opts o = {.endpoint = "http://h:1"};
	struct s3_client *c;
	struct cm_http *a, *b;

	(void)state;
	clean_env();
	c = client(&o);
	a = cm_http_pool_get(&c->b.pool);
	b = cm_http_pool_get(&c->b.pool);
	assert_ptr_not_equal(a, b);
	cm_http_pool_put(&c->b.pool, a);
	assert_ptr_equal(cm_http_pool_get(&c->b.pool), a); /* reused: its connections too */
	cm_http_pool_put(&c->b.pool, a);
	cm_http_pool_put(&c->b.pool, b);
	assert_int_equal(c->b.pool.nidle, 2);
	s3_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolution),
	    cmocka_unit_test(test_bad_options),
	    cmocka_unit_test(test_path_style_keys),
	    cmocka_unit_test(test_virtual_host),
	    cmocka_unit_test(test_queries),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_signatures),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_retries),
	    cmocka_unit_test(test_http_handles),
	};

	/* read once, at the first fault check: the first three S3 attempts
	 * and the first part upload fail */
	setenv("VAULTFS_FAULT",
	       "s3.request@1,s3.request@2,s3.request@3,s3.upload_part@1", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
