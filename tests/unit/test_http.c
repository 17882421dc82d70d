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

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
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

static void *set_after(void *arg)
{
	atomic_int *flag = arg;

	usleep(300 * 1000);
	atomic_store(flag, 1);
	return NULL;
}

/* A request the server never answers (it listens, the kernel accepts,
 * nobody reads): the cancel flag ends it within about a second, as it ends
 * an SQS long poll when a watch stops. Without it this waits out the
 * 60 s low-speed limit. */
static void test_cancel(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char url[64];
	atomic_int cancel;
	struct cm_http *h = cm_http_new(NULL);
	struct cm_http_response resp;
	struct cm_http_request req = {.method = "GET", .cancel = &cancel};
	struct cm_err err;
	struct timespec t0, t1;
	pthread_t th;
	double took;

	(void)state;
	atomic_init(&cancel, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/poll",
		 ntohs(a.sin_port));
	req.url = url;
	cm_http_response_init(&resp, 1 << 16);
	assert_int_equal(pthread_create(&th, NULL, set_after, &cancel), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cm_err_clear(&err);
	assert_int_equal(cm_http_perform(h, &req, &resp, &err), -ECANCELED);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(th, NULL);
	took = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took < 30.0); /* the low-speed limit would take 60 s */
	assert_false(err.retryable);
	assert_non_null(strstr(err.msg, "cancelled"));
	cm_http_response_release(&resp);
	cm_http_free(h);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_bundle),
		cmocka_unit_test(test_header_lookup),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_transport_errors),
		cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
