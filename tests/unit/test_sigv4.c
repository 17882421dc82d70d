/*
 * test_sigv4.c - AWS Signature Version 4, byte for byte.
 *
 * The first group checks the pieces: path normalisation, query and header
 * canonicalisation, S3's path rule (two worked examples of the S3 API
 * reference), UNSIGNED-PAYLOAD, the signing-key cache (also under threads),
 * errors, and aws_sigv4_amz_date().
 *
 * The second group is the official AWS test suite in tests/data/sigv4, one
 * cmocka test per case, found by walking the directory: a case is a folder
 * D holding D.req (the raw request). Each request is parsed (request line,
 * headers with folded continuation lines, blank line, body), signed with the
 * suite's credentials, and the canonical request, string to sign and
 * Authorization header are compared with D.creq, D.sts and D.authz.
 *
 * Session tokens: post-sts-header-before carries X-Amz-Security-Token in its
 * .req (signed); post-sts-header-after adds it only after signing (unsigned),
 * both with the token of post-sts-token/readme.txt; the .req of
 * get-vanilla-with-session-token has no token, and its .sreq shows the one
 * added (and signed) before signing. Each case's .sreq is checked to carry
 * the token used here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* UNITTEST: the module's statics and the signer's fields are reachable. */
#include "core/aws_sigv4.c"

#define SUITE_DIR   VAULTFS_TEST_DATA "/sigv4"
#define SUITE_CASES 34
#define MAX_HEADERS 32

#define SUITE_AKID   "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/* The whole file as a NUL-terminated heap string (NULL if unreadable);
 * *len gets its length (the file may hold NULs). */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct cm_buf b;
	char chunk[4096];
	size_t n;

	if (len)
		*len = 0; /* defined on failure too */
	if (!f)
		return NULL;
	cm_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		cm_buf_append(&b, chunk, n);
	(void)fclose(f);
	if (len)
		*len = b.len;
	return cm_buf_detach(&b);
}

static struct aws_sigv4_creds suite_creds(const char *token)
{
	struct aws_sigv4_creds c = {
	    .access_key_id = SUITE_AKID,
	    .secret_access_key = SUITE_SECRET,
	    .session_token = token,
	};

	return c;
}

/* The canonical request's line `line` (0-based), copied into buf. */
static void creq_line(const char *creq, int line, char *buf, size_t size)
{
	const char *p = creq, *e;

	while (line-- > 0) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	e = strchr(p, '\n');
	if (!e)
		e = p + strlen(p);
	assert_true((size_t)(e - p) < size);
	memcpy(buf, p, (size_t)(e - p));
	buf[e - p] = '\0';
}

/* ------------------------------------------------------------------ */
/* The pieces                                                          */
/* ------------------------------------------------------------------ */

static void test_normalize_path(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"", "/"},
	    {"/", "/"},
	    {"//", "/"},
	    {"/a", "/a"},
	    {"a/b", "/a/b"},
	    {"//example//", "/example/"},
	    {"/./", "/"},
	    {"/./example", "/example"},
	    {"/example/..", "/"},
	    {"/example1/example2/../..", "/"},
	    {"/a/b/..", "/a/"},
	    {"/a/b/.", "/a/b/"},
	    {"/a/./b/../c", "/a/c"},
	    {"/../../a", "/a"},
	    {"/a/.../b", "/a/.../b"},
	    {"/a/..b/.c/", "/a/..b/.c/"},
	    {"/a%2Fb/c", "/a%2Fb/c"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = normalize_path(cases[i].in);

		if (strcmp(got, cases[i].out))
			print_error("normalize_path(\"%s\") = \"%s\"\n",
				    cases[i].in, got);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void check_query(const char *query, const char *want)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	assert_int_equal(canonical_query(&b, query, NULL), 0);
	assert_string_equal(cm_buf_str(&b), want);
	cm_buf_release(&b);
}

static void test_canonical_query(void **state)
{
	struct cm_buf b;
	struct cm_err err;

	(void)state;
	check_query(NULL, "");
	check_query("", "");
	check_query("a", "a=");
	check_query("b=2&a&a=1", "a=&a=1&b=2");
	check_query("&&x=1&", "x=1");
	check_query("k=%7e%7E~", "k=~~~");
	check_query("k=a+b c", "k=a%2Bb%20c");
	check_query("k=%2f/", "k=%2F%2F");
	check_query("k=%e1%88%b4", "k=%E1%88%B4");
	check_query("list-type=2&prefix=a%2Fb%2F&continuation-token=x%3D%3D",
		    "continuation-token=x%3D%3D&list-type=2&prefix=a%2Fb%2F");
	check_query("uploads", "uploads=");
	check_query("a=b=c", "a=b%3Dc");
	/* sorted on the encoded bytes: '%' < 'P' */
	check_query("Param=1&%E1%88%B4=2", "%E1%88%B4=2&Param=1");
	/* name first, then value */
	check_query("p=b&p=a&P=z", "P=z&p=a&p=b");

	cm_buf_init(&b, 0);
	cm_err_clear(&err);
	assert_int_equal(canonical_query(&b, "a=%zz", &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(canonical_query(&b, "a=1&b=%4", NULL), -EINVAL);
	cm_buf_release(&b);
}

static void test_canonical_headers(void **state)
{
	static const struct aws_sigv4_header in[] = {
	    {"X-Amz-Date", " 20150830T123600Z "},
	    {"My-Header", "\t b  \r\n  c\t"},
	    {"host", "example.amazonaws.com"},
	    {"MY-HEADER", "a"},
	    {"Empty", "   "},
	    {"my-header", "\"x   y\""},
	};
	struct aws_sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .headers = in,
	    .nheaders = sizeof(in) / sizeof(in[0]),
	    .payload_hash = EMPTY_SHA256,
	};
	struct aws_sigv4_signer *s =
	    aws_sigv4_signer_new("us-east-1", "service", false);
	struct aws_sigv4_creds c = suite_creds(NULL);
	struct aws_sigv4_result r;

	(void)state;
	assert_int_equal(aws_sigv4_sign(s, &req, &c, &r, NULL), 0);
	assert_string_equal(r.canonical_request,
			    "GET\n/\n\n"
			    "empty:\n"
			    "host:example.amazonaws.com\n"
			    "my-header:b c,a,\"x y\"\n"
			    "x-amz-date:20150830T123600Z\n"
			    "\n"
			    "empty;host;my-header;x-amz-date\n" EMPTY_SHA256);
	assert_non_null(strstr(
	    r.authorization, "SignedHeaders=empty;host;my-header;x-amz-date,"));
	aws_sigv4_result_release(&r);
	aws_sigv4_signer_free(s);
}

/* S3's rule: the path is signed as given, never normalised or re-encoded;
 * the other rule, on the same paths, for contrast. */
static void test_s3_path_rule(void **state)
{
	static const struct {
		const char *path, *s3, *other;
	} cases[] = {
	    {"/my-object//example//photo.user",
	     "/my-object//example//photo.user",
	     "/my-object/example/photo.user"},
	    {"/bucket/a%20b", "/bucket/a%20b", "/bucket/a%2520b"},
	    {"/bucket/./x/../y", "/bucket/./x/../y", "/bucket/y"},
	    {"/bucket/key/", "/bucket/key/", "/bucket/key/"},
	    {"", "/", "/"},
	    {"bucket/key", "/bucket/key", "/bucket/key"},
	};
	struct aws_sigv4_header h[] = {
	    {"Host", "s3.amazonaws.com"},
	    {"X-Amz-Date", "20150830T123600Z"},
	};
	struct aws_sigv4_request req = {
	    .method = "GET",
	    .headers = h,
	    .nheaders = 2,
	    .payload_hash = EMPTY_SHA256,
	};
	struct aws_sigv4_signer *s3 =
	    aws_sigv4_signer_new("us-east-1", "s3", true);
	struct aws_sigv4_signer *other =
	    aws_sigv4_signer_new("us-east-1", "s3", false);
	struct aws_sigv4_creds c = suite_creds(NULL);
	struct aws_sigv4_result r;
	char line[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		req.path = cases[i].path;
		assert_int_equal(aws_sigv4_sign(s3, &req, &c, &r, NULL), 0);
		creq_line(r.canonical_request, 1, line, sizeof(line));
		assert_string_equal(line, cases[i].s3);
		aws_sigv4_result_release(&r);

		assert_int_equal(aws_sigv4_sign(other, &req, &c, &r, NULL), 0);
		creq_line(r.canonical_request, 1, line, sizeof(line));
		assert_string_equal(line, cases[i].other);
		aws_sigv4_result_release(&r);
	}
	req.path = NULL;
	assert_int_equal(aws_sigv4_sign(s3, &req, &c, &r, NULL), 0);
	creq_line(r.canonical_request, 1, line, sizeof(line));
	assert_string_equal(line, "/");
	aws_sigv4_result_release(&r);
	aws_sigv4_signer_free(s3);
	aws_sigv4_signer_free(other);
}

/* "Example: GET Object" of the S3 API reference (sig-v4-header-based-auth). */
static void test_s3_doc_get_object(void **state)
{
	static const struct aws_sigv4_header h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9"},
	    {"x-amz-content-sha256", EMPTY_SHA256},
	    {"x-amz-date", "20130524T000000Z"},
	};
	struct aws_sigv4_request req = {
	    .method = "GET",
	    .path = "/test.txt",
	    .headers = h,
	    .nheaders = 4,
	    .payload_hash = EMPTY_SHA256,
	};
	struct aws_sigv4_creds c = {
	    .access_key_id = "AKIAIOSFODNN7EXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	};
	struct aws_sigv4_signer *s =
	    aws_sigv4_signer_new("us-east-1", "s3", true);
	struct aws_sigv4_result r;

	(void)state;
	assert_int_equal(aws_sigv4_sign(s, &req, &c, &r, NULL), 0);
	assert_string_equal(
	    r.canonical_request,
	    "GET\n/test.txt\n\n"
	    "host:examplebucket.s3.amazonaws.com\n"
	    "range:bytes=0-9\n"
	    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	    "x-amz-date:20130524T000000Z\n\n"
	    "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(r.string_to_sign,
			    "AWS4-HMAC-SHA256\n20130524T000000Z\n"
			    "20130524/us-east-1/s3/aws4_request\n"
			    "7344ae5b7ee6c3e7e6b0fe0640412a37"
			    "625d1fbfff95c48bbb2dc43964946972");
	assert_string_equal(
	    r.authorization,
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, "
	    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
	    "Signature=f0e8bdb87c964420e857bd35b5d6ed31"
	    "0bd44f0170aba48dd91039c6036bdb41");
	aws_sigv4_result_release(&r);
	aws_sigv4_signer_free(s);
}

/* "Example: PUT Object": the key "test$file.text" goes on the wire (and so
 * to the signer) encoded once, and S3 signs it as it is. */
static void test_s3_doc_put_object(void **state)
{
	static const char body[] = "Welcome to Amazon S3.";
	char hash[CM_SHA256_HEX_LEN + 1];
	struct aws_sigv4_header h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	    {"x-amz-date", "20130524T000000Z"},
	    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	    {"x-amz-content-sha256", hash},
	};
	struct aws_sigv4_request req = {
	    .method = "PUT",
	    .path = "/test%24file.text",
	    .headers = h,
	    .nheaders = 5,
	    .payload_hash = hash,
	};
	struct aws_sigv4_creds c = {
	    .access_key_id = "AKIAIOSFODNN7EXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	};
	struct aws_sigv4_signer *s =
	    aws_sigv4_signer_new("us-east-1", "s3", true);
	struct aws_sigv4_result r;

	(void)state;
	cm_sha256_hex(body, strlen(body), hash);
	assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbb"
				  "a87d2b6b4b4e99e42034a8b803f8b072");
	assert_int_equal(aws_sigv4_sign(s, &req, &c, &r, NULL), 0);
	assert_non_null(
	    strstr(r.canonical_request, "PUT\n/test%24file.text\n"));
	assert_non_null(strstr(r.authorization,
			       "Signature=98ad721746da40c64f1a55b78f14c238"
			       "d841ea1380cd77a1b5971af0ece108bd"));
	aws_sigv4_result_release(&r);
	aws_sigv4_signer_free(s);
}

/* UNSIGNED-PAYLOAD is signed as the literal string. The expected signature
 * was computed independently (Python's hmac and hashlib). */
static void test_unsigned_payload(void **state)
{
	static const struct aws_sigv4_header h[] = {
	    {"x-amz-date", "20150830T123600Z"},
	    {"x-amz-content-sha256", AWS_UNSIGNED_PAYLOAD},
	    {"host", "127.0.0.1:7480"},
	};
	struct aws_sigv4_request req = {
	    .method = "PUT",
	    .path = "/bucket/my%20key",
	    .query = "uploadId=abc&partNumber=1",
	    .headers = h,
	    .nheaders = 3,
	    .payload_hash = AWS_UNSIGNED_PAYLOAD,
	};
	struct aws_sigv4_signer *s =
	    aws_sigv4_signer_new("us-east-1", "s3", true);
	struct aws_sigv4_creds c = suite_creds(NULL);
	struct aws_sigv4_result r;

	(void)state;
	assert_int_equal(aws_sigv4_sign(s, &req, &c, &r, NULL), 0);
	assert_string_equal(r.canonical_request,
			    "PUT\n/bucket/my%20key\n"
			    "partNumber=1&uploadId=abc\n"
			    "host:127.0.0.1:7480\n"
			    "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
			    "x-amz-date:20150830T123600Z\n\n"
			    "host;x-amz-content-sha256;x-amz-date\n"
			    "UNSIGNED-PAYLOAD");
	assert_string_equal(
	    r.authorization,
	    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
	    "s3/aws4_request, "
	    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
	    "Signature=e9d935605491d39b58f386e3992edc63"
	    "77da2a36a4bc536e16fa9f2bca1a0ed3");
	aws_sigv4_result_release(&r);
	aws_sigv4_signer_free(s);
}

static void sign_vanilla(struct aws_sigv4_signer *s, const char *date,
			 const char *secret, struct aws_sigv4_result *r)
{
	struct aws_sigv4_header h[] = {
	    {"Host", "example.amazonaws.com"},
	    {"X-Amz-Date", date},
	};
	struct aws_sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .headers = h,
	    .nheaders = 2,
	    .payload_hash = EMPTY_SHA256,
	};
	struct aws_sigv4_creds c = suite_creds(NULL);

	c.secret_access_key = secret;
	assert_int_equal(aws_sigv4_sign(s, &req, &c, r, NULL), 0);
}

static void cached_key_hex(struct aws_sigv4_signer *s, char *hex)
{
	pthread_mutex_lock(&s->lock);
	cm_hex(s->key, sizeof(s->key), hex);
	pthread_mutex_unlock(&s->lock);
}

static void test_key_cache(void **state)
{
	/* HMAC chain for (SUITE_SECRET, 20150830, us-east-1, service),
	 * computed independently. */
	static const char want_key[] = "938127b5336810ddb6a5d6af445fcac9"
				       "e371f9ed418ed386b022aed82901be75";
	struct aws_sigv4_signer *s =
	    aws_sigv4_signer_new("us-east-1", "service", false);
	struct aws_sigv4_result a, b, c;
	char k1[CM_SHA256_HEX_LEN + 1], k2[CM_SHA256_HEX_LEN + 1];
	char k3[CM_SHA256_HEX_LEN + 1];

	(void)state;
	sign_vanilla(s, "20150830T123600Z", SUITE_SECRET, &a);
	sign_vanilla(s, "20150830T235959Z", SUITE_SECRET, &b);
	/* Same day: one derivation; the key is the suite's. */
	assert_int_equal(s->derivations, 1);
	assert_string_equal(s->key_day, "20150830");
	cached_key_hex(s, k1);
	assert_string_equal(k1, want_key);
	/* The cache keeps no copy of the secret. */
	assert_null(memmem(s, sizeof(*s), SUITE_SECRET, strlen(SUITE_SECRET)));
	aws_sigv4_result_release(&b);

	/* Same request twice: the same result, still from the cache. */
	sign_vanilla(s, "20150830T123600Z", SUITE_SECRET, &b);
	assert_int_equal(s->derivations, 1);
	assert_string_equal(a.authorization, b.authorization);
	assert_string_equal(a.string_to_sign, b.string_to_sign);
	assert_string_equal(a.authorization,
			    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
			    "us-east-1/service/aws4_request, "
			    "SignedHeaders=host;x-amz-date, "
			    "Signature=5fa00fa31553b73ebf1942676e86291e"
			    "8372ff2a2260956d9b8aae1d763fbf31");
	aws_sigv4_result_release(&b);

	/* Another day: another key. */
	sign_vanilla(s, "20150831T000000Z", SUITE_SECRET, &c);
	assert_int_equal(s->derivations, 2);
	assert_string_equal(s->key_day, "20150831");
	cached_key_hex(s, k2);
	assert_string_not_equal(k1, k2);
	assert_string_not_equal(a.authorization, c.authorization);
	aws_sigv4_result_release(&c);

	/* Same day, another secret (rotated credentials): another key. */
	sign_vanilla(s, "20150831T000000Z", "another-secret", &c);
	assert_int_equal(s->derivations, 3);
	cached_key_hex(s, k3);
	assert_string_not_equal(k2, k3);
	aws_sigv4_result_release(&c);

	/* Back to the first: derived again, equal to the first. */
	sign_vanilla(s, "20150830T123600Z", SUITE_SECRET, &b);
	assert_int_equal(s->derivations, 4);
	assert_string_equal(a.authorization, b.authorization);
	aws_sigv4_result_release(&b);

	aws_sigv4_result_release(&a);
	aws_sigv4_signer_free(s);
}

/* Several threads share one signer, each switching days and secrets so that
 * the cache keeps missing; every result must equal a single-threaded one. */
#define THREADS 4
#define ROUNDS	200

struct thread_arg {
	struct aws_sigv4_signer *s;
	const char *const *dates;
	const char *const *secrets;
	char *const *want; /* [day * 2 + secret] */
	int id;
	int bad;
};

static void *sign_thread(void *p)
{
	struct thread_arg *t = p;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		int d = (i + t->id) % 2, k = (i / 2 + t->id) % 2;
		struct aws_sigv4_header h[] = {
		    {"Host", "example.amazonaws.com"},
		    {"X-Amz-Date", t->dates[d]},
		};
		struct aws_sigv4_request req = {
		    .method = "GET",
		    .path = "/",
		    .headers = h,
		    .nheaders = 2,
		    .payload_hash = EMPTY_SHA256,
		};
		struct aws_sigv4_creds c = {
		    .access_key_id = SUITE_AKID,
		    .secret_access_key = t->secrets[k],
		};
		struct aws_sigv4_result r;

		if (aws_sigv4_sign(t->s, &req, &c, &r, NULL) ||
		    strcmp(r.authorization, t->want[d * 2 + k]))
			t->bad++;
		aws_sigv4_result_release(&r);
	}
	return NULL;
}

static void test_threads(void **state)
{
	static const char *const dates[] = {"20150830T123600Z",
					    "20160101T000000Z"};
	static const char *const secrets[] = {SUITE_SECRET, "other"};
	struct aws_sigv4_signer *s =
	    aws_sigv4_signer_new("us-east-1", "service", false);
	struct thread_arg args[THREADS];
	pthread_t tids[THREADS];
	char *want[4];
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		struct aws_sigv4_signer *one =
		    aws_sigv4_signer_new("us-east-1", "service", false);
		struct aws_sigv4_result r;

		sign_vanilla(one, dates[i / 2], secrets[i % 2], &r);
		want[i] = cm_xstrdup(r.authorization);
		aws_sigv4_result_release(&r);
		aws_sigv4_signer_free(one);
	}
	for (i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){s, dates, secrets, want, i, 0};
		assert_int_equal(
		    pthread_create(&tids[i], NULL, sign_thread, &args[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(tids[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	for (i = 0; i < 4; i++)
		free(want[i]);
	aws_sigv4_signer_free(s);
}

static void expect_einval(struct aws_sigv4_signer *s,
			  const struct aws_sigv4_request *req,
			  const struct aws_sigv4_creds *c, const char *what)
{
	struct aws_sigv4_result r;
	struct cm_err err;

	cm_err_clear(&err);
	assert_int_equal(aws_sigv4_sign(s, req, c, &r, &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_non_null(strstr(err.msg, what));
	assert_null(strstr(err.msg, SUITE_SECRET));
	assert_null(r.canonical_request);
	assert_null(r.string_to_sign);
	assert_null(r.authorization);
	aws_sigv4_result_release(&r); /* harmless on a failed result */
}

static void test_errors(void **state)
{
	struct aws_sigv4_header h[] = {
	    {"Host", "example.amazonaws.com"},
	    {"X-Amz-Date", "20150830T123600Z"},
	};
	struct aws_sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .headers = h,
	    .nheaders = 2,
	    .payload_hash = EMPTY_SHA256,
	};
	struct aws_sigv4_signer *s =
	    aws_sigv4_signer_new("us-east-1", "service", false);
	struct aws_sigv4_creds c = suite_creds(NULL);
	struct aws_sigv4_creds none = suite_creds(NULL);
	struct aws_sigv4_result r;

	(void)state;
	h[1].value = "2015-08-30T12:36:00Z";
	expect_einval(s, &req, &c, "X-Amz-Date");
	h[1].value = "20150830T1236Z";
	expect_einval(s, &req, &c, "X-Amz-Date");
	h[1].value = "20150830T123600Z";

	req.nheaders = 1;
	expect_einval(s, &req, &c, "X-Amz-Date");
	req.nheaders = 2;

	h[0].name = "X-Host";
	expect_einval(s, &req, &c, "Host");
	h[0].name = "Bad Name";
	expect_einval(s, &req, &c, "header 0");
	h[0].name = "Host";

	req.payload_hash = NULL;
	expect_einval(s, &req, &c, "payload hash");
	req.payload_hash = EMPTY_SHA256;

	req.query = "a=%G0";
	expect_einval(s, &req, &c, "percent-escape");
	req.query = NULL;

	none.secret_access_key = "";
	expect_einval(s, &req, &none, "credentials");
	none = suite_creds(NULL);
	none.access_key_id = NULL;
	expect_einval(s, &req, &none, "credentials");

	/* The signer is still usable, and err stays untouched on success. */
	assert_int_equal(aws_sigv4_sign(s, &req, &c, &r, NULL), 0);
	aws_sigv4_result_release(&r);
	assert_null(r.authorization);
	aws_sigv4_signer_free(s);
	aws_sigv4_signer_free(NULL);
}

static void test_amz_date(void **state)
{
	char d[17];

	(void)state;
	aws_sigv4_amz_date(1440938160, d); /* the suite's moment */
	assert_string_equal(d, "20150830T123600Z");
	aws_sigv4_amz_date(0, d);
	assert_string_equal(d, "19700101T000000Z");
	aws_sigv4_amz_date(951868799, d);
	assert_string_equal(d, "20000229T235959Z");
	aws_sigv4_amz_date(253402300799, d);
	assert_string_equal(d, "99991231T235959Z");
	aws_sigv4_amz_date(253402300800, d); /* year 10000: no such date */
	assert_string_equal(d, "");
}

/* ------------------------------------------------------------------ */
/* The official test suite                                             */
/* ------------------------------------------------------------------ */

struct suite_case {
	char *name; /* owned: "get-vanilla" */
	char *dir;  /* owned: the folder holding name.req and the rest */
};

static struct suite_case *cases;
static size_t ncases;

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Collect every folder D under dir that holds D.req. */
static void walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char *sub, *req;

		if (e->d_name[0] == '.')
			continue;
		sub = cm_xasprintf("%s/%s", dir, e->d_name);
		if (!is_dir(sub)) {
			free(sub);
			continue;
		}
		req = cm_xasprintf("%s/%s.req", sub, e->d_name);
		if (is_file(req)) {
			cases =
			    cm_xrealloc(cases, (ncases + 1) * sizeof(*cases));
			cases[ncases].name = cm_xstrdup(e->d_name);
			cases[ncases].dir = cm_xstrdup(sub);
			ncases++;
		}
		free(req);
		walk(sub);
		free(sub);
	}
	closedir(d);
}

static int compare_cases(const void *a, const void *b)
{
	const struct suite_case *x = a, *y = b;

	return strcmp(x->dir, y->dir);
}

/* A raw HTTP request from a .req file, parsed in place. */
struct raw_request {
	char *text; /* owned: the file; every field below points into it */
	const char *method, *path, *query;
	struct aws_sigv4_header headers[MAX_HEADERS];
	size_t nheaders;
	const char *body;
	size_t body_len;
};

static char *line_end(char *p, char *end)
{
	char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl ? nl : end;
}

/* Cut a line at e, dropping a '\r' before it. */
static void cut(char *start, char *e)
{
	if (e > start && e[-1] == '\r')
		e[-1] = '\0';
	*e = '\0';
}

/*
 * Request line ("METHOD target HTTP/1.1"; the target may hold spaces, so it
 * runs from the first space to the last), header lines "Name:value" where a
 * line starting with a space or tab continues the previous value (the fold
 * is kept: the signer folds whitespace), a blank line, then the body.
 * 0 or -EINVAL.
 */
static int parse_request(char *text, size_t len, struct raw_request *rq)
{
	char *end = text + len, *p = text, *e, *sp1, *sp2, *q;

	memset(rq, 0, sizeof(*rq));
	rq->text = text;
	rq->body = "";
	e = line_end(p, end);
	sp1 = memchr(p, ' ', (size_t)(e - p));
	sp2 = e;
	while (sp2 > p && sp2[-1] != ' ')
		sp2--;
	if (!sp1 || sp2 <= sp1 + 1)
		return -EINVAL;
	sp2--; /* at the last space */
	*sp1 = '\0';
	*sp2 = '\0';
	rq->method = p;
	rq->path = sp1 + 1;
	q = strchr(sp1 + 1, '?');
	if (q) {
		*q = '\0';
		rq->query = q + 1;
	}
	p = e < end ? e + 1 : end;

	while (p < end) {
		char *colon;

		e = line_end(p, end);
		if (e == p || (e == p + 1 && *p == '\r')) {
			rq->body = e < end ? e + 1 : end;
			rq->body_len = (size_t)(end - (char *)rq->body);
			break;
		}
		colon = memchr(p, ':', (size_t)(e - p));
		if (!colon || *p == ' ' || *p == '\t' ||
		    rq->nheaders == MAX_HEADERS)
			return -EINVAL;
		while (e < end && e + 1 < end && (e[1] == ' ' || e[1] == '\t'))
			e = line_end(e + 1, end);
		*colon = '\0';
		rq->headers[rq->nheaders].name = p;
		rq->headers[rq->nheaders].value = colon + 1;
		rq->nheaders++;
		p = e < end ? e + 1 : end;
		cut(colon + 1, e);
	}
	return 0;
}

static char *case_file(const struct suite_case *c, const char *ext, size_t *len)
{
	char *path = cm_xasprintf("%s/%s.%s", c->dir, c->name, ext);
	char *text = slurp(path, len);

	if (!text)
		print_error("%s: cannot read\n", path);
	free(path);
	return text;
}

static void expect_file(const struct suite_case *c, const char *ext,
			const char *got)
{
	char *want = case_file(c, ext, NULL);

	assert_non_null(want);
	if (strcmp(want, got))
		print_error("%s.%s differs:\n--- want\n%s\n--- got\n%s\n",
			    c->name, ext, want, got);
	assert_string_equal(got, want);
	free(want);
}

/* The STS example token: the last line of post-sts-token/readme.txt. */
static char *readme_token(void)
{
	char *text = slurp(SUITE_DIR "/post-sts-token/readme.txt", NULL);
	char *e, *p;

	assert_non_null(text);
	e = text + strlen(text);
	while (e > text && is_space(e[-1]))
		e--;
	*e = '\0';
	p = e;
	while (p > text && p[-1] != '\n')
		p--;
	memmove(text, p, strlen(p) + 1);
	assert_true(strlen(text) > 32);
	return text;
}

static const struct aws_sigv4_header *raw_header(const struct raw_request *rq,
						 const char *name)
{
	size_t i;

	for (i = 0; i < rq->nheaders; i++)
		if (!strcasecmp(rq->headers[i].name, name))
			return &rq->headers[i];
	return NULL;
}

static void test_suite_case(void **state)
{
	const struct suite_case *c = *state;
	struct raw_request rq;
	struct aws_sigv4_request req;
	struct aws_sigv4_creds creds;
	struct aws_sigv4_result r;
	struct aws_sigv4_signer *s;
	struct cm_err err;
	char hash[CM_SHA256_HEX_LEN + 1];
	char *text, *token = NULL, *sreq = NULL, *line;
	size_t len;

	text = case_file(c, "req", &len);
	assert_non_null(text);
	assert_int_equal(parse_request(text, len, &rq), 0);
	cm_sha256_hex(rq.body, rq.body_len, hash);

	if (!strcmp(c->name, "get-vanilla-with-session-token")) {
		/* Only its .sreq and .creq show the token: added, signed. */
		token = cm_xstrdup("6e86291e8372ff2a2260956d9b8aae1d"
				   "763fbf315fa00fa31553b73ebf194267");
		assert_null(raw_header(&rq, "X-Amz-Security-Token"));
		assert_true(rq.nheaders < MAX_HEADERS);
		rq.headers[rq.nheaders].name = "X-Amz-Security-Token";
		rq.headers[rq.nheaders].value = token;
		rq.nheaders++;
	} else if (!strcmp(c->name, "post-sts-header-before")) {
		/* The .req carries the token: it is signed. */
		const struct aws_sigv4_header *h;

		token = readme_token();
		h = raw_header(&rq, "X-Amz-Security-Token");
		assert_non_null(h);
		assert_string_equal(h->value, token);
	} else if (!strcmp(c->name, "post-sts-header-after")) {
		/* Added to the request after signing: not signed. */
		token = readme_token();
		assert_null(raw_header(&rq, "X-Amz-Security-Token"));
	}

	req = (struct aws_sigv4_request){
	    .method = rq.method,
	    .path = rq.path,
	    .query = rq.query,
	    .headers = rq.headers,
	    .nheaders = rq.nheaders,
	    .payload_hash = hash,
	};
	creds = suite_creds(token);
	s = aws_sigv4_signer_new("us-east-1", "service", false);
	cm_err_clear(&err);
	if (aws_sigv4_sign(s, &req, &creds, &r, &err))
		fail_msg("%s: %s", c->name, err.msg);
	expect_file(c, "creq", r.canonical_request);
	expect_file(c, "sts", r.string_to_sign);
	expect_file(c, "authz", r.authorization);

	if (token) {
		/* The signed request on the wire carries this very token. */
		sreq = case_file(c, "sreq", NULL);
		assert_non_null(sreq);
		line = cm_xasprintf("\nX-Amz-Security-Token:%s\n", token);
		assert_non_null(strstr(sreq, line));
		free(line);
	}
	aws_sigv4_result_release(&r);
	aws_sigv4_signer_free(s);
	free(sreq);
	free(token);
	free(text);
}

/* Every case of the suite is there, with all its files. */
static void test_suite_complete(void **state)
{
	static const char *const exts[] = {"req", "creq", "sts", "authz"};
	size_t i, j;

	(void)state;
	if (ncases < SUITE_CASES)
		fail_msg("found %zu cases under %s, want %d", ncases, SUITE_DIR,
			 SUITE_CASES);
	for (i = 0; i < ncases; i++) {
		for (j = 0; j < sizeof(exts) / sizeof(exts[0]); j++) {
			char *p = cm_xasprintf("%s/%s.%s", cases[i].dir,
					       cases[i].name, exts[j]);

			if (!is_file(p))
				fail_msg("missing %s", p);
			free(p);
		}
	}
	assert_true(is_file(SUITE_DIR "/LICENSE"));
	assert_true(is_file(SUITE_DIR "/NOTICE"));
}

int main(void)
{
	const struct CMUnitTest unit[] = {
	    cmocka_unit_test(test_normalize_path),
	    cmocka_unit_test(test_canonical_query),
	    cmocka_unit_test(test_canonical_headers),
	    cmocka_unit_test(test_s3_path_rule),
	    cmocka_unit_test(test_s3_doc_get_object),
	    cmocka_unit_test(test_s3_doc_put_object),
	    cmocka_unit_test(test_unsigned_payload),
	    cmocka_unit_test(test_key_cache),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_amz_date),
	    cmocka_unit_test(test_suite_complete),
	};
	struct CMUnitTest *suite;
	size_t i;
	int failed;

	walk(SUITE_DIR);
	qsort(cases, ncases, sizeof(*cases), compare_cases);
	failed = cmocka_run_group_tests_name("sigv4", unit, NULL, NULL);

	/* One test per case found; cmocka's macro wants a fixed array, so the
	 * function behind it is called with the count. */
	suite = cm_xcalloc(ncases ? ncases : 1, sizeof(*suite));
	for (i = 0; i < ncases; i++) {
		suite[i].name = cases[i].name;
		suite[i].test_func = test_suite_case;
		suite[i].initial_state = &cases[i];
	}
	failed += _cmocka_run_group_tests("sigv4 test suite", suite, ncases,
					  NULL, NULL);
	for (i = 0; i < ncases; i++) {
		free(cases[i].name);
		free(cases[i].dir);
	}
	free(cases);
	free(suite);
	return failed;
}
