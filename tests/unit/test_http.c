/*
 * test_http.c - the libcurl door: header lookup, URI encoding, and the
 * classification of transport failures (a refused connection is retryable,
 * a malformed URL is not).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* included whole (UNITTEST, curl's way) to reach ca_bundle() */
#include "core/http.c"

/* The CA file: vaultfs's own variable first, then the AWS SDKs'. */
static void test_ca_bundle(void **state)
{
	(void)state;
	unsetenv("VAULTFS_CA_BUNDLE");
	unsetenv("AWS_CA_BUNDLE");
	assert_null(ca_bundle());
	setenv("AWS_CA_BUNDLE", "/etc/aws-ca.pem", 1);
	assert_string_equal(ca_bundle(), "/etc/aws-ca.pem");
	setenv("VAULTFS_CA_BUNDLE", "", 1); /* empty: not set */
	assert_string_equal(ca_bundle(), "/etc/aws-ca.pem");
	setenv("VAULTFS_CA_BUNDLE", "/etc/vaultfs-ca.pem", 1);
	assert_string_equal(ca_bundle(), "/etc/vaultfs-ca.pem");
	unsetenv("VAULTFS_CA_BUNDLE");
	unsetenv("AWS_CA_BUNDLE");
}

static void test_header_lookup(void **state)
{
	struct cm_http_response r;
	char v[64];

	(void)state;
	cm_http_response_init(&r, 0);
	cm_buf_puts(&r.headers, "Content-Length: 5\r\n"
				"ETag:   \"abc\"  \r\n"
				"x-amz-request-id: tx1\r\n");
	assert_true(cm_http_response_header(&r, "etag", v, sizeof(v)));
	assert_string_equal(v, "\"abc\"");
	assert_true(cm_http_response_header(&r, "CONTENT-LENGTH", v, sizeof(v)));
	assert_string_equal(v, "5");
	assert_false(cm_http_response_header(&r, "content", v, sizeof(v)));
	assert_false(cm_http_response_header(&r, "x-amz", v, sizeof(v)));
	/* truncation keeps the terminator */
	assert_true(cm_http_response_header(&r, "x-amz-request-id", v, 3));
	assert_string_equal(v, "tx");
	cm_http_response_release(&r);
}

static void test_uri_encode(void **state)
{
	char *s;

	(void)state;
	s = cm_http_uri_encode("a b/c~d_e.f-g+h=\xff", 17, true);
	assert_string_equal(s, "a%20b/c~d_e.f-g%2Bh%3D%FF");
	free(s);
	s = cm_http_uri_encode("a/b", 3, false);
	assert_string_equal(s, "a%2Fb");
	free(s);
}

static void test_transport_errors(void **state)
{
	struct cm_http *h = cm_http_new(NULL);
	struct cm_http_response r;
	struct cm_http_request req = { .method = "GET" };
	struct cm_err e;
	int rc;

	(void)state;
	cm_http_response_init(&r, 4096);
	/* port 1 on loopback: nothing listens there */
	req.url = "http://127.0.0.1:1/x?secret=not-shown";
	cm_err_clear(&e);
	rc = cm_http_perform(h, &req, &r, &e);
	assert_int_equal(rc, -ECONNREFUSED);
	assert_true(e.retryable);
	assert_null(strstr(e.msg, "secret")); /* queries stay out */

	req.url = "notascheme://x";
	cm_err_clear(&e);
	rc = cm_http_perform(h, &req, &r, &e);
	assert_true(rc < 0);
	assert_false(e.retryable);
	cm_http_response_release(&r);
	cm_http_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_bundle),
		cmocka_unit_test(test_header_lookup),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_transport_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
