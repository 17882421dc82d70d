/*
 * test_core.c - the small shared core: buffers, queue and pool, errors,
 * JSON, crypto helpers, fault switch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/budget.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/queue.h"
#include "core/sd_notify.h"
#include "core/timeutil.h"

static void test_buf_cap(void **state)
{
	struct cm_buf b;

	(void)state;
	cm_buf_init(&b, 8);
	assert_int_equal(cm_buf_puts(&b, "12345"), 0);
	assert_int_equal(cm_buf_puts(&b, "6789"), -EMSGSIZE);
	assert_string_equal(cm_buf_str(&b), "12345"); /* unchanged */
	assert_int_equal(cm_buf_printf(&b, "%d", 678), 0);
	assert_string_equal(cm_buf_str(&b), "12345678");
	assert_int_equal(b.len, 8);
	cm_buf_release(&b);
	assert_string_equal(cm_buf_str(&b), "");
}

static void test_err(void **state)
{
	struct cm_err e;

	(void)state;
	cm_err_clear(&e);
	assert_int_equal(cm_err_set(&e, ENOENT, "no %s", "such"), -ENOENT);
	assert_string_equal(e.msg, "no such");
	assert_false(e.retryable);
	cm_err_prefix(&e, "open %s", "x");
	assert_string_equal(e.msg, "open x: no such");
	assert_int_equal(cm_err_retry(&e, -EAGAIN, "later"), -EAGAIN);
	assert_true(e.retryable);
	assert_int_equal(cm_err_set(NULL, EIO, "nobody listens"), -EIO);
}

struct counter {
	pthread_mutex_t lock;
	long sum;
};

static void add_task(void *arg)
{
	struct counter *c = arg;

	pthread_mutex_lock(&c->lock);
	c->sum += 1;
	pthread_mutex_unlock(&c->lock);
}

static void test_pool(void **state)
{
	struct counter c = { PTHREAD_MUTEX_INITIALIZER, 0 };
	struct cm_pool *p = cm_pool_new(4, 2);

	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cm_pool_submit(p, add_task, &c), 0);
	cm_pool_free(p);
	assert_int_equal(c.sum, 1000);
}

static void test_queue_close(void **state)
{
	struct cm_queue *q = cm_queue_new(2);
	void *item;
	int a = 1, b = 2;

	(void)state;
	assert_int_equal(cm_queue_push(q, &a), 0);
	assert_int_equal(cm_queue_push(q, &b), 0);
	assert_int_equal(cm_queue_len(q), 2);
	cm_queue_close(q);
	assert_int_equal(cm_queue_push(q, &a), -EPIPE);
	assert_int_equal(cm_queue_pop(q, &item), 0); /* drains after close */
	assert_ptr_equal(item, &a);
	assert_int_equal(cm_queue_pop(q, &item), 0);
	assert_ptr_equal(item, &b);
	assert_int_equal(cm_queue_pop(q, &item), -EPIPE);
	assert_int_equal(cm_queue_trypop(q, &item), -EPIPE);
	cm_queue_free(q);
}

static void test_json(void **state)
{
	struct cm_json *root = NULL, *o;
	struct cm_err e;
	char *text;
	const char doc[] = "{\"a\": \"x\", \"n\": 5, \"t\": true, \"l\": [1,2]}";

	(void)state;
	cm_err_clear(&e);
	assert_int_equal(cm_json_parse(doc, strlen(doc), &root, &e), 0);
	assert_string_equal(cm_json_get_str(root, "a"), "x");
	assert_null(cm_json_get_str(root, "n"));
	assert_int_equal(cm_json_type(cm_json_get(root, "n")), CM_JSON_NUMBER);
	assert_true(cm_json_bool(cm_json_get(root, "t")));
	assert_int_equal(cm_json_size(cm_json_get(root, "l")), 2);
	cm_json_free(root);

	assert_int_equal(cm_json_parse("{\n\"a\": ]", 8, &root, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "line 2"));

	o = cm_json_new_object();
	cm_json_add_str(o, "k", "v");
	cm_json_add_u64(o, "big", 5497558138880ull);
	text = cm_json_print(o);
	assert_non_null(strstr(text, "5497558138880"));
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
	cm_json_free(o);
}

static void test_crypto(void **state)
{
	char hex[CM_SHA256_HEX_LEN + 1];
	char b64[32];
	uint8_t md5[CM_MD5_LEN];

	(void)state;
	cm_sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
	cm_md5("abc", 3, md5);
	cm_base64(md5, sizeof(md5), b64);
	assert_string_equal(b64, "kAFQmDzST7DWlj99KOF/cg==");
}

static void test_iso8601(void **state)
{
	time_t t;
	char s[32];

	(void)state;
	assert_int_equal(cm_time_parse_iso8601("2026-11-26T20:45:16Z", &t), 0);
	cm_time_iso8601(t, s, sizeof(s));
	assert_string_equal(s, "2026-11-26T20:45:16Z");
	assert_int_equal(cm_time_parse_iso8601("2026-11-26T20:45:16.123Z", &t),
			 0);
	assert_int_equal(cm_time_parse_iso8601("yesterday", &t), -EINVAL);
}

static void *budget_taker(void *arg)
{
	struct cm_budget *b = arg;

	/* waits until the main thread gives 6 back */
	return (void *)(intptr_t)cm_budget_take(b, 6);
}

static void *budget_closed(void *arg)
{
	return (void *)(intptr_t)cm_budget_take(arg, 100);
}

static void test_budget(void **state)
{
	struct cm_budget *b = cm_budget_new(10);
	struct cm_budget_stats st;
	pthread_t t;
	void *rc;

	assert_true(cm_budget_try(b, 6));
	assert_false(cm_budget_try(b, 5));
	assert_int_equal(cm_budget_take(b, 4), 0);
	assert_int_equal(pthread_create(&t, NULL, budget_taker, b), 0);
	for (cm_budget_stats(b, &st); !st.waiting; cm_budget_stats(b, &st))
		cm_sleep_ms(1);
	assert_int_equal(st.used, 10);
	cm_budget_give(b, 6);
	assert_int_equal(pthread_join(t, &rc), 0);
	assert_int_equal((intptr_t)rc, 0);
	cm_budget_stats(b, &st);
	assert_int_equal(st.used, 10);
	assert_int_equal(st.peak, 10);
	assert_int_equal(st.waits, 1);
	cm_budget_give(b, 10);
	/* more than the whole limit: only into an empty budget */
	assert_true(cm_budget_try(b, 50));
	assert_false(cm_budget_try(b, 1));
	cm_budget_give(b, 50);
	/* closing wakes the waiters: they fail */
	assert_true(cm_budget_try(b, 10));
	assert_int_equal(pthread_create(&t, NULL, budget_closed, b), 0);
	for (cm_budget_stats(b, &st); !st.waiting; cm_budget_stats(b, &st))
		cm_sleep_ms(1);
	cm_budget_close(b);
	assert_int_equal(pthread_join(t, &rc), 0);
	assert_int_equal((intptr_t)rc, -ECANCELED);
	assert_false(cm_budget_try(b, 1));
	cm_budget_give(b, 10);
	cm_budget_free(b);
}

/* sd_notify to an abstract socket ('@' in NOTIFY_SOCKET): one datagram,
 * the state as given; WATCHDOG_USEC for this process only. */
static void test_sd_notify(void **state)
{
	struct sockaddr_un sa;
	char name[64], env[80], got[64];
	struct timeval tv = { 5, 0 };
	ssize_t n;
	int fd;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(cm_sd_notify("READY=1"), 0); /* no systemd: nothing */
	snprintf(name, sizeof(name), "vaultfs-test-notify-%d", (int)getpid());
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, strlen(name));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un,
						   sun_path) + 1 +
					  strlen(name))), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(env, sizeof(env), "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(cm_sd_notify("STATUS=x\nWATCHDOG=1"), 0);
	n = recv(fd, got, sizeof(got) - 1, 0);
	assert_int_equal(n, 19);
	got[n] = '\0';
	assert_string_equal(got, "STATUS=x\nWATCHDOG=1");
	close(fd);
	/* nobody listens now */
	assert_true(cm_sd_notify("READY=1") < 0);
	setenv("NOTIFY_SOCKET", "relative", 1);
	assert_int_equal(cm_sd_notify("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");

	setenv("WATCHDOG_USEC", "400000", 1);
	unsetenv("WATCHDOG_PID");
	assert_int_equal(cm_sd_watchdog_usec(), 400000);
	snprintf(env, sizeof(env), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", env, 1);
	assert_int_equal(cm_sd_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "soon", 1);
	unsetenv("WATCHDOG_PID");
	assert_int_equal(cm_sd_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}

/* The stamp of stamped and json log lines: UTC, offset, milliseconds. */
static void test_log_stamp(void **state)
{
	char s[40];
	enum cm_log_format f;

	(void)state;
	cm_log_stamp(s, sizeof(s));
	assert_int_equal(strlen(s), 29);
	assert_true(s[4] == '-' && s[10] == 'T' && s[19] == '.');
	assert_string_equal(s + 23, "+00:00");
	assert_int_equal(cm_log_format_parse("json", &f), 0);
	assert_int_equal(f, CM_LOG_JSON);
	assert_int_equal(cm_log_format_parse("text", &f), 0);
	assert_int_equal(f, CM_LOG_PLAIN);
	assert_int_equal(cm_log_format_parse("xml", &f), -EINVAL);
}

struct queued {
	struct cm_budget_waiter w;
	int calls;
	int rc;
};

static void queued_ready(struct cm_budget_waiter *w, int rc)
{
	struct queued *q = (struct queued *)w;

	q->calls++;
	q->rc = rc;
}

/* Waiters without a thread: first come, first served as bytes come back,
 * a cancelled one is never called back and lets the next one through,
 * a hint (try) gives way to them, and close calls back the rest. */
static void test_budget_queue(void **state)
{
	struct cm_budget *b = cm_budget_new(10);
	struct queued q[4];
	struct cm_budget_stats st;

	memset(q, 0, sizeof(q));
	for (int i = 0; i < 4; i++) {
		q[i].w.n = i == 1 ? 8 : 4;
		q[i].w.ready = queued_ready;
	}
	assert_int_equal(cm_budget_queue(b, &q[0].w), 0); /* fits: taken */
	assert_int_equal(q[0].calls, 0);
	assert_true(cm_budget_try(b, 6));
	assert_int_equal(cm_budget_queue(b, &q[1].w), 1); /* 8: waits */
	assert_int_equal(cm_budget_queue(b, &q[2].w), 1); /* behind it */
	assert_int_equal(cm_budget_queue(b, &q[3].w), 1);
	cm_budget_stats(b, &st);
	assert_int_equal(st.waiting, 3);
	assert_int_equal(st.waits, 3);
	cm_budget_give(b, 6); /* 6 free: q[1] (8) still waits, and so the
				 others behind it */
	assert_int_equal(q[1].calls + q[2].calls + q[3].calls, 0);
	assert_false(cm_budget_try(b, 1)); /* a hint gives way */
	/* q[1] leaves (its request was interrupted): q[2] gets 4 at once */
	assert_true(cm_budget_cancel(b, &q[1].w));
	assert_int_equal(q[1].calls, 0);
	assert_int_equal(q[2].calls, 1);
	assert_int_equal(q[2].rc, 0);
	assert_int_equal(q[3].calls, 0);
	assert_false(cm_budget_cancel(b, &q[2].w)); /* served already */
	cm_budget_give(b, 4); /* q[0]'s: q[3] */
	assert_int_equal(q[3].calls, 1);
	assert_int_equal(q[3].rc, 0);
	cm_budget_stats(b, &st);
	assert_int_equal(st.used, 8);
	assert_int_equal(st.waiting, 0);
	/* closing answers the queued ones */
	q[1].calls = 0;
	assert_int_equal(cm_budget_queue(b, &q[1].w), 1);
	cm_budget_close(b);
	assert_int_equal(q[1].calls, 1);
	assert_int_equal(q[1].rc, -ECANCELED);
	assert_int_equal(cm_budget_queue(b, &q[1].w), -ECANCELED);
	cm_budget_give(b, 8);
	cm_budget_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),	    cmocka_unit_test(test_err),
		cmocka_unit_test(test_pool),	    cmocka_unit_test(test_queue_close),
		cmocka_unit_test(test_json),	    cmocka_unit_test(test_crypto),
		cmocka_unit_test(test_iso8601),	    cmocka_unit_test(test_budget),
		cmocka_unit_test(test_sd_notify),   cmocka_unit_test(test_log_stamp),
		cmocka_unit_test(test_budget_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
