/*
 * test_s3_upload.c - the multipart uploader, from a stream and from a file,
 * against a small in-process S3 stand-in: single PutObject for objects of
 * at most one part, parts in order with their MD5s, the final ETag check,
 * back-pressure (never more parts in flight than asked), the upload id
 * reported before any part, every failure ending in AbortMultipartUpload,
 * a file that changes while it is uploaded failing the upload, and a lost
 * CompleteMultipartUpload answer reconciled (ETag, or size and part count
 * under SSE-KMS) or refused.
 *
 * The stand-in speaks just enough HTTP/1.1 (keep-alive, Content-Length
 * bodies) and S3: one listening thread, one thread per connection. What it
 * saw is kept in `struct fake` under ->lock for the tests to check. Like
 * S3, it refuses object data that does not match its X-Amz-Content-Sha256
 * or Content-MD5 (so the hash a file part is signed with must be that of
 * the bytes sent); it does not check signatures (test_s3_request.c does
 * that against botocore).
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/budget.h"
#include "core/crypto.h"
#include "core/s3.h"
#include "core/s3_upload.h"
#include "core/timeutil.h"

#define MAX_CONNS 256 /* every connection of the whole run: slots are not reused */
#define MAX_PARTS 64

struct fake {
	int listen_fd;
	int port;
	pthread_t acceptor;
	pthread_mutex_t lock;
	/* protected by ->lock */
	pthread_t conns[MAX_CONNS];
	int conn_fds[MAX_CONNS];
	int nconns;
	int in_flight, max_in_flight;
	int puts, creates, completes, aborts, heads;
	int parts_seen;
	uint8_t md5[MAX_PARTS + 1][CM_MD5_LEN];
	uint64_t part_len[MAX_PARTS + 1];
	uint64_t bytes;
	int completed_parts;	 /* <Part> entries in the last complete */
	bool create_before_part; /* no part came before CreateMultipart */
	int md5s_checked;	 /* bodies that came with Content-MD5 */
	/* behaviour */
	int fail_part; /* this part number answers fail_status */
	int fail_status;
	bool fail_once;		  /* ... only the first time it comes */
	int bad_etag_part;	  /* this part answers a wrong ETag */
	bool empty_complete_etag; /* Ceph 16: <ETag></ETag> */
	bool key_exists; /* If-None-Match: * on a PutObject or a complete
			    answers 412 */
	int precondition_failures;
	/* a lost complete answer: the server completes, then says
	 * NoSuchUpload (as to a retry whose first attempt went through) */
	bool complete_lost;
	bool upload_remains;	/* ListParts still finds it */
	int head_size_delta;	/* HeadObject's size is off by this */
	/* a lost PutObject answer: the next PutObject makes the object (of
	 * other bytes with put_other: another client's) and its connection
	 * closes unanswered; from then on the key exists */
	bool put_lost, put_other;
	bool has_object; /* HeadObject answers put_len and put_md5 */
	uint64_t put_len;
	uint8_t put_md5[CM_MD5_LEN];
	int list_parts;		/* ListParts requests */
	atomic_uint part_delay_ms; /* set by a test while connections run */
	int want_parallel; /* parts 1..N wait (5 s at most) until N
			    * parts are at the server */
	pthread_cond_t arrived;
};

static struct fake F;

static ssize_t read_full(int fd, char *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);

		if (r <= 0)
			return r < 0 && errno == EINTR ? 0 : -1;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void reply(int fd, int status, const char *extra, const char *body)
{
	char head[512];
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
			 status, blen, extra ? extra : "");

	if (write(fd, head, (size_t)n) < 0 ||
	    (blen && write(fd, body, blen) < 0))
		return;
}

static void hex_md5(const void *p, size_t n, char out[33])
{
	uint8_t md5[CM_MD5_LEN];

	cm_md5(p, n, md5);
	cm_hex(md5, CM_MD5_LEN, out);
}

/* A header's value in a request head, or "" when it is absent. */
static void header(const char *head, const char *name, char *out, size_t n)
{
	char pat[64];
	const char *h;
	size_t len = 0;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	h = strcasestr(head, pat);
	if (h) {
		h += strlen(pat);
		h += strspn(h, " ");
		len = strcspn(h, "\r");
		if (len >= n)
			len = n - 1;
		memcpy(out, h, len);
	}
	out[len] = '\0';
}

/* What S3 checks of object data: the signed SHA-256 and the Content-MD5.
 * The error code when the body does not match, else NULL. */
static const char *bad_body(const char *head, const char *body, size_t blen)
{
	char got[80], want[CM_SHA256_HEX_LEN + 1];
	uint8_t md5[CM_MD5_LEN];

	header(head, "x-amz-content-sha256", got, sizeof(got));
	cm_sha256_hex(body, blen, want);
	if (strcmp(got, "UNSIGNED-PAYLOAD") && strcmp(got, want))
		return "XAmzContentSHA256Mismatch";
	header(head, "content-md5", got, sizeof(got));
	if (!got[0])
		return NULL;
	cm_md5(body, blen, md5);
	cm_base64(md5, CM_MD5_LEN, want);
	pthread_mutex_lock(&F.lock);
	F.md5s_checked++;
	pthread_mutex_unlock(&F.lock);
	return strcmp(got, want) ? "BadDigest" : NULL;
}

static void handle(int fd, const char *head, const char *method,
		   const char *target, char *body, size_t blen)
{
	char hdr[160], hex[33], xml[512];
	const char *q = strchr(target, '?');
	const char *bad = NULL;
	bool failing;
	int part = 0;

	if (!strcmp(method, "PUT"))
		bad = bad_body(head, body, blen);
	header(head, "if-none-match", hdr, sizeof(hdr));
	if (!bad && F.key_exists && !strcmp(hdr, "*") &&
	    ((!q && !strcmp(method, "PUT")) ||
	     (q && !strcmp(method, "POST") && strcmp(q, "?uploads")))) {
		pthread_mutex_lock(&F.lock);
		F.precondition_failures++;
		pthread_mutex_unlock(&F.lock);
		reply(fd, 412, NULL,
		      "<Error><Code>PreconditionFailed</Code></Error>");
	} else if (bad) {
		snprintf(xml, sizeof(xml), "<Error><Code>%s</Code></Error>",
			 bad);
		reply(fd, 400, NULL, xml);
	} else if (!strcmp(method, "PUT") && q &&
		   sscanf(q, "?partNumber=%d", &part) == 1 && part > 0 &&
		   part <= MAX_PARTS) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		pthread_mutex_lock(&F.lock);
		F.in_flight++;
		if (F.in_flight > F.max_in_flight)
			F.max_in_flight = F.in_flight;
		if (!F.creates)
			F.create_before_part = false;
		pthread_cond_broadcast(&F.arrived);
		/* no timing luck: parts meet at the server when they can */
		while (part <= F.want_parallel &&
		       F.in_flight < F.want_parallel &&
		       pthread_cond_timedwait(&F.arrived, &F.lock, &until) == 0)
			;
		pthread_mutex_unlock(&F.lock);
		if (F.part_delay_ms)
			cm_sleep_ms(F.part_delay_ms);
		hex_md5(body, blen, hex);
		pthread_mutex_lock(&F.lock);
		F.in_flight--;
		F.parts_seen++;
		cm_md5(body, blen, F.md5[part]);
		F.part_len[part] = blen;
		F.bytes += blen;
		failing = part == F.fail_part;
		if (failing && F.fail_once)
			F.fail_part = 0;
		pthread_mutex_unlock(&F.lock);
		if (failing) {
			reply(fd, F.fail_status, NULL,
			      "<Error><Code>Injected</Code><Message>no"
			      "</Message></Error>");
			return;
		}
		if (part == F.bad_etag_part)
			hex[0] = hex[0] == '0' ? '1' : '0';
		snprintf(hdr, sizeof(hdr), "ETag: \"%s\"\r\n", hex);
		reply(fd, 200, hdr, NULL);
	} else if (q && !strcmp(q, "?uploads") && !strcmp(method, "POST")) {
		pthread_mutex_lock(&F.lock);
		F.creates++;
		pthread_mutex_unlock(&F.lock);
		reply(fd, 200, NULL,
		      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k"
		      "</Key><UploadId>UP1</UploadId>"
		      "</InitiateMultipartUploadResult>");
	} else if (q && !strcmp(method, "GET") && strstr(q, "uploadId=")) {
		pthread_mutex_lock(&F.lock);
		F.list_parts++;
		pthread_mutex_unlock(&F.lock);
		if (F.upload_remains)
			reply(fd, 200, NULL,
			      "<ListPartsResult><Part><PartNumber>1</PartNumber>"
			      "<Size>5242880</Size><ETag>&quot;x&quot;</ETag>"
			      "</Part><IsTruncated>false</IsTruncated>"
			      "</ListPartsResult>");
		else
			reply(fd, 404, NULL,
			      "<Error><Code>NoSuchUpload</Code></Error>");
	} else if (q && !strcmp(method, "POST")) {
		uint8_t all[MAX_PARTS * CM_MD5_LEN], md5[CM_MD5_LEN];
		int n = 0;

		for (char *p = body; (p = strstr(p, "<Part>")); p++)
			n++;
		pthread_mutex_lock(&F.lock);
		F.completes++;
		F.completed_parts = n;
		for (int i = 0; i < n; i++)
			memcpy(all + i * CM_MD5_LEN, F.md5[i + 1], CM_MD5_LEN);
		pthread_mutex_unlock(&F.lock);
		cm_md5(all, (size_t)n * CM_MD5_LEN, md5);
		cm_hex(md5, CM_MD5_LEN, hex);
		if (F.complete_lost)
			reply(fd, 404, NULL,
			      "<Error><Code>NoSuchUpload</Code></Error>");
		else if (F.empty_complete_etag)
			snprintf(xml, sizeof(xml),
				 "<CompleteMultipartUploadResult><ETag></ETag>"
				 "</CompleteMultipartUploadResult>");
		else
			snprintf(xml, sizeof(xml),
				 "<CompleteMultipartUploadResult><ETag>&quot;"
				 "%s-%d&quot;</ETag>"
				 "</CompleteMultipartUploadResult>",
				 hex, n);
		if (!F.complete_lost)
			reply(fd, 200, NULL, xml);
	} else if (q && !strcmp(method, "DELETE")) {
		pthread_mutex_lock(&F.lock);
		F.aborts++;
		pthread_mutex_unlock(&F.lock);
		reply(fd, 204, NULL, NULL);
	} else if (!strcmp(method, "HEAD") && F.has_object) {
		char h[256];
		int hn;

		pthread_mutex_lock(&F.lock);
		F.heads++;
		cm_hex(F.put_md5, CM_MD5_LEN, hex);
		hn = snprintf(h, sizeof(h),
			      "HTTP/1.1 200 X\r\nContent-Length: %llu\r\n"
			      "ETag: \"%s\"\r\n\r\n",
			      (unsigned long long)F.put_len, hex);
		pthread_mutex_unlock(&F.lock);
		if (write(fd, h, (size_t)hn) < 0)
			return;
	} else if (!strcmp(method, "PUT") && F.put_lost) {
		pthread_mutex_lock(&F.lock);
		F.puts++;
		F.put_lost = false;
		F.has_object = F.key_exists = true;
		F.put_len = blen;
		cm_md5(body, blen, F.put_md5);
		if (F.put_other)
			F.put_md5[0] ^= 1;
		pthread_mutex_unlock(&F.lock);
		shutdown(fd, SHUT_RDWR); /* the answer is lost */
	} else if (!strcmp(method, "HEAD")) {
		uint8_t all[MAX_PARTS * CM_MD5_LEN], md5[CM_MD5_LEN];
		int n;

		uint64_t size = 0;
		char h[256];
		int hn;

		pthread_mutex_lock(&F.lock);
		F.heads++;
		n = F.completed_parts;
		for (int i = 0; i < n; i++) {
			memcpy(all + i * CM_MD5_LEN, F.md5[i + 1], CM_MD5_LEN);
			size += F.part_len[i + 1];
		}
		size += (uint64_t)(int64_t)F.head_size_delta;
		pthread_mutex_unlock(&F.lock);
		cm_md5(all, (size_t)n * CM_MD5_LEN, md5);
		cm_hex(md5, CM_MD5_LEN, hex);
		/* a HEAD answer: the object's length, no body */
		hn = snprintf(h, sizeof(h),
			      "HTTP/1.1 200 X\r\nContent-Length: %llu\r\n"
			      "ETag: \"%s-%d\"\r\n\r\n",
			      (unsigned long long)size, hex, n);
		if (write(fd, h, (size_t)hn) < 0)
			return;
	} else if (!strcmp(method, "PUT")) {
		hex_md5(body, blen, hex);
		pthread_mutex_lock(&F.lock);
		F.puts++;
		F.bytes += blen;
		pthread_mutex_unlock(&F.lock);
		snprintf(hdr, sizeof(hdr), "ETag: \"%s\"\r\n", hex);
		reply(fd, 200, hdr, NULL);
	} else {
		reply(fd, 400, NULL, "<Error><Code>Unexpected</Code></Error>");
	}
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char head[16384];

	for (;;) {
		size_t len = 0, blen = 0;
		char method[16], target[1024], *end, *cl, *body;

		/* headers, byte by byte up to the blank line */
		while (len < sizeof(head) - 1) {
			if (read(fd, head + len, 1) != 1)
				goto out;
			len++;
			if (len >= 4 && !memcmp(head + len - 4, "\r\n\r\n", 4))
				break;
		}
		head[len] = '\0';
		end = strstr(head, "\r\n\r\n");
		if (!end || sscanf(head, "%15s %1023s", method, target) != 2)
			goto out;
		cl = strcasestr(head, "\r\nContent-Length:");
		if (cl)
			blen = strtoull(cl + 17, NULL, 10);
		body = malloc(blen + 1);
		if (blen && read_full(fd, body, blen) < 0) {
			free(body);
			goto out;
		}
		body[blen] = '\0';
		handle(fd, head, method, target, body, blen);
		free(body);
	}
out:
	return NULL;
}

static void *accept_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(F.listen_fd, NULL, NULL);

		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&F.lock);
		if (F.nconns == MAX_CONNS) {
			pthread_mutex_unlock(&F.lock);
			close(fd);
			continue;
		}
		F.conn_fds[F.nconns] = fd;
		pthread_create(&F.conns[F.nconns], NULL, conn_main,
			       (void *)(intptr_t)fd);
		F.nconns++;
		pthread_mutex_unlock(&F.lock);
	}
}

static int fake_start(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	(void)state;
	memset(&F, 0, sizeof(F));
	F.create_before_part = true;
	pthread_mutex_init(&F.lock, NULL);
	pthread_cond_init(&F.arrived, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	F.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(F.listen_fd >= 0);
	assert_int_equal(bind(F.listen_fd, (struct sockaddr *)&a, sizeof(a)),
			 0);
	assert_int_equal(listen(F.listen_fd, 64), 0);
	getsockname(F.listen_fd, (struct sockaddr *)&a, &alen);
	F.port = ntohs(a.sin_port);
	pthread_create(&F.acceptor, NULL, accept_main, NULL);
	return 0;
}

static int fake_stop(void **state)
{
	(void)state;
	shutdown(F.listen_fd, SHUT_RDWR);
	close(F.listen_fd);
	pthread_join(F.acceptor, NULL);
	for (int i = 0; i < F.nconns; i++) {
		shutdown(F.conn_fds[i], SHUT_RDWR);
		pthread_join(F.conns[i], NULL);
		close(F.conn_fds[i]);
	}
	pthread_mutex_destroy(&F.lock);
	pthread_cond_destroy(&F.arrived);
	return 0;
}

static bool unsigned_payload; /* the next client() sends Content-MD5 */

static struct s3_client *client(void)
{
	char url[64];
	struct s3_client_opts o = {.endpoint = url, .max_attempts = 2,
				   .unsigned_payload = unsigned_payload};
	struct cm_err err;
	struct s3_client *c;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", F.port);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	cm_err_clear(&err);
	c = s3_client_new(&o, &err);
	if (!c)
		fail_msg("%s", err.msg);
	return c;
}

/* Bytes that differ per offset: a table with a prime period, so that no
 * two parts look alike. Filled with memcpy, which keeps the writer fast
 * under sanitizers. */
#define PERIOD 1048573
static uint8_t table[PERIOD];

static void fill(uint8_t *p, size_t n, uint64_t off)
{
	if (!table[1])
		for (size_t i = 0; i < PERIOD; i++)
			table[i] = (uint8_t)((i * 0x9E3779B97F4A7C15ULL) >> 56);
	while (n) {
		size_t at = (size_t)(off % PERIOD), k = PERIOD - at;

		if (k > n)
			k = n;
		memcpy(p, table + at, k);
		p += k;
		off += k;
		n -= k;
	}
}

/* The ETag of fill()'s first `size` bytes sent in parts of `part` bytes,
 * each part's length checked against what the server saw. */
static void expected_etag(uint64_t size, uint64_t part, char want[S3_ETAG_MAX])
{
	unsigned n = (unsigned)((size + part - 1) / part);
	uint8_t(*md5s)[CM_MD5_LEN] = calloc(n, CM_MD5_LEN);
	uint8_t *buf = malloc(part);

	for (unsigned i = 0; i < n; i++) {
		uint64_t off = (uint64_t)i * part;
		uint64_t len = size - off < part ? size - off : part;

		fill(buf, len, off);
		assert_int_equal(F.part_len[i + 1], len);
		cm_md5(buf, len, md5s[i]);
	}
	s3_multipart_etag((const uint8_t(*)[CM_MD5_LEN])md5s, n, want);
	free(buf);
	free(md5s);
}

/* A temporary file of fill()'s first `size` bytes, open read-write; its
 * name in path. */
static int make_file(uint64_t size, char path[64])
{
	static uint8_t chunk[1 << 20];
	int fd;

	snprintf(path, 64, "/tmp/test_s3_upload.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < sizeof(chunk) ? (size_t)(size - off)
						      : sizeof(chunk);

		fill(chunk, n, off);
		assert_int_equal(pwrite(fd, chunk, n, (off_t)off), (ssize_t)n);
		off += n;
	}
	return fd;
}

struct id_seen {
	char id[64];
	int parts_before;
};

static int on_id(void *ctx, const char *id, struct cm_err *err)
{
	struct id_seen *s = ctx;

	(void)err;
	snprintf(s->id, sizeof(s->id), "%s", id);
	pthread_mutex_lock(&F.lock);
	s->parts_before = F.parts_seen;
	pthread_mutex_unlock(&F.lock);
	return 0;
}

static int refuse_id(void *ctx, const char *id, struct cm_err *err)
{
	(void)ctx;
	(void)id;
	return cm_err_set(err, EIO, "journal full");
}

/* Write `size` bytes in odd-sized chunks; 0 or the failure. */
static int stream(struct s3_upload *u, uint64_t size, struct cm_err *err)
{
	static uint8_t chunk[300001];
	uint64_t off = 0;

	while (off < size) {
		size_t n = sizeof(chunk);
		int rc;

		if (n > size - off)
			n = (size_t)(size - off);
		fill(chunk, n, off);
		rc = s3_upload_write(u, chunk, n, err);
		if (rc)
			return rc;
		off += n;
	}
	return 0;
}

static void test_single_put(void **state)
{
	uint64_t sizes[] = {0, 1, 5 * S3_MIB, 5 * S3_MIB + 7};
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB};
	struct s3_client *c = client();

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct s3_upload_result res;
		struct cm_err err;
		struct s3_upload *u;
		int puts = F.puts, creates = F.creates;

		cm_err_clear(&err);
		u = s3_upload_new(c, "b", "k", &o, &err);
		assert_non_null(u);
		assert_int_equal(stream(u, sizes[i], &err), 0);
		if (sizes[i] <= 5 * S3_MIB) {
			/* at most one part: one PutObject, no upload */
			assert_int_equal(s3_upload_finish(u, &res, &err), 0);
			assert_int_equal(res.parts, 0);
			assert_int_equal(res.size, sizes[i]);
			assert_int_equal(F.puts, puts + 1);
			assert_int_equal(F.creates, creates);
			assert_null(s3_upload_id(u));
		} else {
			assert_int_equal(s3_upload_finish(u, &res, &err), 0);
			assert_int_equal(res.parts, 2);
			assert_int_equal(F.completed_parts, 2);
			assert_int_equal(F.part_len[2], 7);
		}
		assert_int_equal(strlen(res.etag) >= 32, 1);
		s3_upload_free(u);
	}
	s3_client_free(c);
}

static void test_multipart(void **state)
{
	struct s3_upload_opts o = {
	    .part_size = 5 * S3_MIB, .concurrency = 3, .on_upload_id = on_id};
	uint64_t size = 23 * S3_MIB + 12345; /* 5 parts, the last short */
	struct id_seen seen = {"", -1};
	struct s3_client *c = client();
	int parts_before = F.parts_seen;
	struct s3_upload_result res;
	struct cm_err err;
	struct s3_upload *u;
	char want[S3_ETAG_MAX];

	(void)state;
	o.ctx = &seen;
	F.part_delay_ms = 20;
	F.want_parallel = 3;
	F.max_in_flight = 0;
	cm_err_clear(&err);
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, size, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), 0);
	F.part_delay_ms = 0;
	F.want_parallel = 0;
	assert_int_equal(res.parts, 5);
	assert_int_equal(res.size, size);
	assert_string_equal(seen.id, "UP1");
	/* told before any part went out */
	assert_int_equal(seen.parts_before, parts_before);
	assert_true(F.create_before_part);
	/* back-pressure: never more than `concurrency` parts at the server */
	assert_int_equal(F.max_in_flight, 3);
	assert_int_equal(F.completed_parts, 5);
	assert_int_equal(s3_upload_bytes_done(u), size);

	/* the parts hold the stream in order: recompute the ETag */
	expected_etag(size, 5 * S3_MIB, want);
	assert_string_equal(res.etag, want);
	assert_int_equal(F.aborts, 0);
	s3_upload_free(u);

	/* Ceph's empty <ETag></ETag>: read back with HeadObject */
	F.empty_complete_etag = true;
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, size, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), 0);
	assert_string_equal(res.etag, want);
	assert_true(F.heads >= 1);
	F.empty_complete_etag = false;
	s3_upload_free(u);
	s3_client_free(c);
}

/* Part buffers from a shared budget of two parts: the upload goes on
 * within it (at most the two parts in flight), and gives it all
 * back. */
static void test_budget(void **state)
{
	struct cm_budget *b = cm_budget_new(10 * S3_MIB);
	struct s3_upload_opts o = {
	    .part_size = 5 * S3_MIB, .concurrency = 4, .budget = b};
	uint64_t size = 23 * S3_MIB + 12345; /* 5 parts */
	struct s3_client *c = client();
	struct s3_upload_result res;
	struct cm_budget_stats st;
	struct cm_err err;
	struct s3_upload *u;

	(void)state;
	F.part_delay_ms = 20;
	F.max_in_flight = 0;
	cm_err_clear(&err);
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, size, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), 0);
	F.part_delay_ms = 0;
	assert_int_equal(res.parts, 5);
	assert_true(F.max_in_flight <= 2);
	s3_upload_free(u);
	cm_budget_stats(b, &st);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.peak, 10 * S3_MIB);
	/* with room: never more than its own buffers (concurrency) */
	cm_budget_free(b);
	b = cm_budget_new(40 * S3_MIB);
	o.budget = b;
	F.part_delay_ms = 20;
	F.max_in_flight = 0;
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, size, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), 0);
	F.part_delay_ms = 0;
	assert_true(F.max_in_flight <= 4);
	s3_upload_free(u);
	cm_budget_stats(b, &st);
	assert_int_equal(st.used, 0);
	assert_true(st.peak <= 20 * S3_MIB);
	cm_budget_free(b);
	s3_client_free(c);
}

/* if_none_match: the request that makes the object carries
 * If-None-Match: *, and a key that exists fails it with -EEXIST (a
 * multipart upload is then aborted). */
static void test_if_none_match(void **state)
{
	struct s3_upload_opts o = {
	    .part_size = 5 * S3_MIB, .concurrency = 2, .if_none_match = true};
	struct s3_client *c = client();
	struct s3_upload_result res;
	struct cm_err err;
	struct s3_upload *u;
	int aborts = F.aborts;

	(void)state;
	cm_err_clear(&err);
	/* the key is free: both kinds go through */
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 1000, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), 0);
	s3_upload_free(u);
	F.key_exists = true;
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 1000, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "exists"));
	s3_upload_free(u);
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 11 * S3_MIB, &err), 0);
	cm_err_clear(&err);
	assert_int_equal(s3_upload_finish(u, &res, &err), -EEXIST);
	s3_upload_free(u);
	assert_int_equal(F.aborts, aborts + 1);
	assert_int_equal(F.precondition_failures, 2);
	/* without the option, the header is not sent */
	o.if_none_match = false;
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 1000, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), 0);
	s3_upload_free(u);
	assert_int_equal(F.precondition_failures, 2);
	F.key_exists = false;
	s3_client_free(c);
}

/* A PutObject with If-None-Match: * whose answer was lost: the resend
 * gets 412, and the object there is ours (our size, our MD5 as ETag), so
 * the upload succeeds; when it is not ours, EEXIST. */
static void test_put_answer_lost(void **state)
{
	struct s3_upload_opts o = {
	    .part_size = 5 * S3_MIB, .concurrency = 2, .if_none_match = true};
	struct s3_client *c = client();
	struct s3_upload_result res;
	struct cm_err err;
	struct s3_upload *u;
	uint8_t buf[1000], md5[CM_MD5_LEN];
	char want[2 * CM_MD5_LEN + 1];

	(void)state;
	cm_err_clear(&err);
	F.heads = F.precondition_failures = 0;
	F.put_lost = true;
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 1000, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), 0);
	s3_upload_free(u);
	assert_int_equal(F.precondition_failures, 1);
	assert_int_equal(F.heads, 1);
	fill(buf, sizeof(buf), 0);
	cm_md5(buf, sizeof(buf), md5);
	cm_hex(md5, CM_MD5_LEN, want);
	assert_string_equal(res.etag, want);

	/* another client's bytes at the key: taken */
	F.heads = F.precondition_failures = 0;
	F.has_object = F.key_exists = false;
	F.put_lost = F.put_other = true;
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 1000, &err), 0);
	assert_int_equal(s3_upload_finish(u, &res, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "exists"));
	s3_upload_free(u);
	assert_int_equal(F.heads, 1);
	F.has_object = F.key_exists = F.put_other = false;
	F.heads = F.precondition_failures = 0;
	s3_client_free(c);
}

/* The upload fails with msg_part in its message, and is aborted once:
 * from a stream of `size` bytes, or from the file at path when not NULL. */
static void expect_abort_of(struct s3_upload_opts *o, uint64_t size,
			    const char *path, const char *msg_part)
{
	struct s3_client *c = client();
	struct s3_upload_result res;
	struct cm_err err;
	struct s3_upload *u;
	int aborts = F.aborts, rc, fd = -1;

	cm_err_clear(&err);
	u = s3_upload_new(c, "b", "k", o, &err);
	if (path) {
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		rc = s3_upload_file(u, fd, path, &res, &err);
	} else {
		rc = stream(u, size, &err);
		if (!rc)
			rc = s3_upload_finish(u, &res, &err);
	}
	assert_true(rc < 0);
	if (!strstr(err.msg, msg_part))
		fail_msg("'%s' is not in '%s'", msg_part, err.msg);
	/* aborted before returning */
	assert_int_equal(F.aborts, aborts + 1);
	/* later calls fail the same way, and free does not abort twice */
	assert_true(s3_upload_write(u, "x", 1, &err) < 0);
	assert_true(s3_upload_finish(u, &res, &err) < 0);
	s3_upload_free(u);
	assert_int_equal(F.aborts, aborts + 1);
	if (fd >= 0)
		close(fd);
	s3_client_free(c);
}

static void expect_abort(struct s3_upload_opts *o, uint64_t size,
			 const char *msg_part)
{
	expect_abort_of(o, size, NULL, msg_part);
}

static void test_failures(void **state)
{
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB, .concurrency = 2};

	(void)state;
	/* a fatal answer to part 3 */
	F.fail_part = 3;
	F.fail_status = 403;
	expect_abort(&o, 40 * S3_MIB, "Injected: no (UploadPart");
	/* a 5xx that does not pass: retried (max 2 attempts), then abort */
	F.fail_status = 500;
	expect_abort(&o, 40 * S3_MIB, "[gave up after 2 attempts]");
	/* the last part fails: seen at finish() */
	F.fail_part = 2;
	F.fail_status = 403;
	expect_abort(&o, 6 * S3_MIB, "Injected");
	F.fail_part = 0;
	/* a part whose ETag is not the MD5 of the data: with a signed
	 * payload S3 checked the body, and the object's ETag no longer
	 * matches the parts' at completion; with Content-MD5 the part's
	 * own ETag is checked at once */
	F.bad_etag_part = 2;
	expect_abort(&o, 12 * S3_MIB, "is not the expected");
	unsigned_payload = true;
	expect_abort(&o, 12 * S3_MIB, "is not the MD5");
	unsigned_payload = false;
	F.bad_etag_part = 0;
	/* the caller refuses the upload id */
	o.on_upload_id = refuse_id;
	expect_abort(&o, 12 * S3_MIB, "journal full");
	o.on_upload_id = NULL;
}

/* The complete's answer lost: the server completed, a retry is told
 * NoSuchUpload. The object is looked at: with MD5 ETags its ETag, under
 * SSE-KMS (VAULTFS_TEST_OPAQUE_ETAGS) its size and part count; one that
 * does not match, or an upload still in progress, fails and aborts. */
static void test_lost_complete(void **state)
{
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB};
	uint64_t size = 12 * S3_MIB + 3;
	struct s3_upload_result res;
	struct s3_client *c;
	struct s3_upload *u;
	struct cm_err err;
	int lp;

	(void)state;
	F.complete_lost = true;
	for (int opaque = 0; opaque < 2; opaque++) {
		if (opaque)
			setenv("VAULTFS_TEST_OPAQUE_ETAGS", "1", 1);
		c = client();
		assert_int_equal(s3_client_etag_is_md5(c), !opaque);
		lp = F.list_parts;
		cm_err_clear(&err);
		u = s3_upload_new(c, "b", "k", &o, &err);
		assert_int_equal(stream(u, size, &err), 0);
		if (s3_upload_finish(u, &res, &err))
			fail_msg("%s", err.msg);
		assert_int_equal(res.parts, 3);
		assert_int_equal(F.list_parts, lp + 1);
		s3_upload_free(u);
		s3_client_free(c);
	}
	/* under SSE-KMS: a size that is not ours */
	F.head_size_delta = 1;
	expect_abort(&o, size, "bytes, not the 12582915 uploaded");
	F.head_size_delta = 0;
	/* the upload is still there: not completed */
	F.upload_remains = true;
	expect_abort(&o, size, "still in progress");
	F.upload_remains = false;
	unsetenv("VAULTFS_TEST_OPAQUE_ETAGS");
	/* with MD5 ETags: a size that is not ours */
	F.head_size_delta = -1;
	expect_abort(&o, size, "bytes, not the 12582915 uploaded");
	F.head_size_delta = 0;
	F.complete_lost = false;
}

static void test_abort_by_caller(void **state)
{
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB};
	struct s3_client *c = client();
	struct cm_err err;
	struct s3_upload *u;
	int aborts = F.aborts;

	(void)state;
	cm_err_clear(&err);
	/* before any upload exists: nothing to abort on the server */
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 1000, &err), 0);
	s3_upload_abort(u);
	s3_upload_free(u);
	assert_int_equal(F.aborts, aborts);
	/* mid-way: the upload is aborted; free() alone does it too */
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 17 * S3_MIB, &err), 0);
	s3_upload_abort(u);
	s3_upload_abort(u);
	assert_int_equal(F.aborts, aborts + 1);
	s3_upload_free(u);
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 17 * S3_MIB, &err), 0);
	s3_upload_free(u);
	assert_int_equal(F.aborts, aborts + 2);
	s3_client_free(c);
}

static void *raise_after(void *arg)
{
	cm_sleep_ms(300);
	atomic_store((atomic_int *)arg, 2); /* SIGINT's number, as the CLI */
	return NULL;
}

/* The cancel flag (what a SIGINT raises in `vaultfs s3 cp`): parts held
 * at the server for seconds are cut short within about a second, the
 * upload fails with -ECANCELED and is aborted, although the client's own
 * cancel is the same raised flag (AbortMultipartUpload always goes out);
 * raised before a byte went out, nothing is sent at all. */
static void test_cancel(void **state)
{
	atomic_int flag;
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB, .concurrency = 2,
				   .cancel = &flag};
	struct s3_client *c = client();
	int aborts = F.aborts, completes = F.completes, puts = F.puts;
	struct s3_upload_result res;
	struct cm_err err;
	struct s3_upload *u;
	pthread_t th;
	uint64_t t0;
	double took;
	int rc;

	(void)state;
	atomic_init(&flag, 0);
	s3_client_set_cancel(c, &flag);
	F.part_delay_ms = 6000;
	cm_err_clear(&err);
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_non_null(u);
	t0 = cm_now_ns();
	assert_int_equal(pthread_create(&th, NULL, raise_after, &flag), 0);
	/* part 3 waits for a buffer: both are at the server */
	rc = stream(u, 17 * S3_MIB, &err);
	if (rc == 0)
		rc = s3_upload_finish(u, &res, &err);
	took = (double)(cm_now_ns() - t0) / 1e9;
	pthread_join(th, NULL);
	F.part_delay_ms = 0;
	assert_int_equal(rc, -ECANCELED);
	assert_true(took < 5.0); /* the parts' answers would take 6 s */
	assert_non_null(s3_upload_id(u));
	assert_int_equal(F.aborts, aborts + 1);
	assert_int_equal(F.completes, completes);
	s3_upload_free(u);
	assert_int_equal(F.aborts, aborts + 1);

	/* raised before the end of a one-part object: no PutObject */
	atomic_store(&flag, 0);
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(stream(u, 1000, &err), 0);
	atomic_store(&flag, 15);
	assert_int_equal(s3_upload_finish(u, &res, &err), -ECANCELED);
	assert_non_null(strstr(err.msg, "cancelled"));
	assert_null(s3_upload_id(u));
	s3_upload_free(u);
	assert_int_equal(F.puts, puts);
	assert_int_equal(F.aborts, aborts + 1);
	s3_client_free(c);
	/* the stand-in still holds the cut parts: let them go, so that the
	 * next tests count only theirs */
	for (int i = 0; i < 200; i++) {
		pthread_mutex_lock(&F.lock);
		rc = F.in_flight;
		pthread_mutex_unlock(&F.lock);
		if (!rc)
			break;
		cm_sleep_ms(50);
	}
	assert_int_equal(rc, 0);
}

static void test_reserve_commit(void **state)
{
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB,
				   .expected_size = 11 * S3_MIB};
	struct s3_client *c = client();
	struct s3_upload_result res;
	struct cm_err err;
	struct s3_upload *u;
	uint64_t off = 0;

	(void)state;
	cm_err_clear(&err);
	assert_null(s3_upload_new(
	    c, "b", "k", &(struct s3_upload_opts){.part_size = 1}, &err));
	u = s3_upload_new(c, "b", "k", &o, &err);
	while (off < 11 * S3_MIB) {
		void *p;
		size_t n;

		assert_int_equal(s3_upload_reserve(u, &p, &n, &err), 0);
		assert_true(n > 0 && n <= 5 * S3_MIB);
		if (n > 1000000)
			n = 1000000;
		if (n > 11 * S3_MIB - off)
			n = (size_t)(11 * S3_MIB - off);
		fill(p, n, off);
		assert_int_equal(s3_upload_commit(u, n, &err), 0);
		assert_int_equal(s3_upload_commit(u, 0, &err), 0);
		off += n;
	}
	assert_int_equal(s3_upload_bytes_in(u), 11 * S3_MIB);
	if (s3_upload_finish(u, &res, &err) != 0)
		fail_msg("finish: %s", err.msg);
	assert_int_equal(res.parts, 3);
	assert_int_equal(F.part_len[3], S3_MIB);
	/* finished: no more writes */
	assert_int_equal(s3_upload_write(u, "x", 1, &err), -EPIPE);
	s3_upload_free(u);
	s3_client_free(c);
}

static void test_file_single(void **state)
{
	uint64_t sizes[] = {0, 1, 5 * S3_MIB};
	/* the file's size sizes the parts, not expected_size */
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB, .expected_size = 1};
	int md5s = F.md5s_checked;

	(void)state;
	for (int up = 0; up < 2; up++) {
		struct s3_client *c;

		unsigned_payload = up;
		c = client();
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			struct s3_upload_result res;
			struct cm_err err;
			struct s3_upload *u;
			int puts = F.puts, creates = F.creates, fd;
			char path[64], want[33];
			uint8_t *data = malloc(sizes[i] + 1);

			fd = make_file(sizes[i], path);
			cm_err_clear(&err);
			u = s3_upload_new(c, "b", "k", &o, &err);
			if (s3_upload_file(u, fd, path, &res, &err) != 0)
				fail_msg("%s", err.msg);
			/* one PutObject, no multipart upload */
			assert_int_equal(res.parts, 0);
			assert_int_equal(res.size, sizes[i]);
			assert_int_equal(F.puts, puts + 1);
			assert_int_equal(F.creates, creates);
			assert_null(s3_upload_id(u));
			assert_int_equal(s3_upload_bytes_done(u), sizes[i]);
			fill(data, sizes[i], 0);
			hex_md5(data, sizes[i], want);
			assert_string_equal(res.etag, want);
			/* done: neither writes nor a second file */
			assert_int_equal(s3_upload_write(u, "x", 1, &err),
					 -EPIPE);
			assert_int_equal(
			    s3_upload_file(u, fd, path, &res, &err), -EPIPE);
			s3_upload_free(u);
			free(data);
			close(fd);
			unlink(path);
		}
		s3_client_free(c);
	}
	unsigned_payload = false;
	/* unsigned: every body came with its Content-MD5 (checked) */
	assert_int_equal(F.md5s_checked, md5s + 3);
}

static void test_file_multipart(void **state)
{
	struct s3_upload_opts o = {
	    .part_size = 5 * S3_MIB, .concurrency = 3, .on_upload_id = on_id};
	uint64_t size = 23 * S3_MIB + 12345; /* 5 parts, the last short */
	char path[64], want[S3_ETAG_MAX];
	int fd = make_file(size, path);

	(void)state;
	for (int up = 0; up < 2; up++) {
		struct id_seen seen = {"", -1};
		struct s3_upload_result res;
		struct s3_client *c;
		struct cm_err err;
		struct s3_upload *u;
		int parts_before = F.parts_seen, aborts = F.aborts;
		int md5s = F.md5s_checked;

		unsigned_payload = up;
		c = client();
		o.ctx = &seen;
		F.part_delay_ms = 20;
		F.want_parallel = 3;
		F.max_in_flight = 0;
		/* the last part fails once: the retry reads it again */
		F.fail_part = 5;
		F.fail_status = 500;
		F.fail_once = true;
		/* where fd stands does not matter */
		assert_int_equal(lseek(fd, 12345, SEEK_SET), 12345);
		cm_err_clear(&err);
		u = s3_upload_new(c, "b", "k", &o, &err);
		if (s3_upload_file(u, fd, path, &res, &err) != 0)
			fail_msg("%s", err.msg);
		F.part_delay_ms = 0;
		F.want_parallel = 0;
		F.fail_once = false;
		assert_int_equal(F.fail_part, 0); /* it did fail */
		assert_int_equal(res.parts, 5);
		assert_int_equal(res.size, size);
		assert_string_equal(seen.id, "UP1");
		/* told before any part went out */
		assert_int_equal(seen.parts_before, parts_before);
		/* never more than `concurrency` parts at the server */
		assert_int_equal(F.max_in_flight, 3);
		assert_int_equal(F.completed_parts, 5);
		assert_int_equal(s3_upload_bytes_in(u), size);
		assert_int_equal(s3_upload_bytes_done(u), size);
		expected_etag(size, 5 * S3_MIB, want);
		assert_string_equal(res.etag, want);
		assert_int_equal(F.aborts, aborts);
		/* Content-MD5 with unsigned payloads only (6: one retry) */
		assert_int_equal(F.md5s_checked, md5s + (up ? 6 : 0));
		s3_upload_free(u);
		s3_client_free(c);
	}
	unsigned_payload = false;
	close(fd);
	unlink(path);
}

enum change { GROW, SHRINK, TOUCH };
struct file_change {
	const char *path;
	enum change how;
};

/* on_upload_id, which comes before any part is read: change the file. */
static int change_file(void *ctx, const char *id, struct cm_err *err)
{
	const struct file_change *fc = ctx;
	int fd = open(fc->path, O_RDWR);
	struct stat st;
	char c = 0;

	(void)id;
	(void)err;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	if (fc->how == GROW)
		assert_int_equal(pwrite(fd, "x", 1, st.st_size), 1);
	else if (fc->how == SHRINK)
		assert_int_equal(ftruncate(fd, 7 * S3_MIB), 0);
	else /* the same byte again: only the mtime changes */
		assert_true(pread(fd, &c, 1, 0) == 1 &&
			    pwrite(fd, &c, 1, 0) == 1);
	close(fd);
	return 0;
}

static void test_file_failures(void **state)
{
	struct s3_upload_opts o = {.part_size = 5 * S3_MIB, .concurrency = 2};
	const struct timespec long_ago[2] = {{1000000000, 0}, {1000000000, 0}};
	uint64_t size = 23 * S3_MIB;
	struct file_change fc;
	char path[64], msg[160];
	int fd = make_file(size, path);
	int pipe_fds[2];
	struct cm_err err;
	struct s3_client *c = client();
	struct s3_upload *u;
	int completes;

	(void)state;
	/* not a regular file: refused before anything happens */
	assert_int_equal(pipe(pipe_fds), 0);
	cm_err_clear(&err);
	u = s3_upload_new(c, "b", "k", &o, &err);
	assert_int_equal(s3_upload_file(u, pipe_fds[0], "a pipe", NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
	s3_upload_free(u);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	s3_client_free(c);

	/* a part refused for good; a part whose ETag is wrong */
	F.fail_part = 3;
	F.fail_status = 403;
	expect_abort_of(&o, size, path, "Injected: no (UploadPart");
	F.fail_part = 0;
	F.bad_etag_part = 2;
	expect_abort_of(&o, size, path, "is not the expected");
	unsigned_payload = true;
	expect_abort_of(&o, size, path, "is not the MD5");
	unsigned_payload = false;
	F.bad_etag_part = 0;

	/* the file changes under the upload: the message names it, and the
	 * upload is never completed */
	completes = F.completes;
	o.on_upload_id = change_file;
	o.ctx = &fc;
	fc.path = path;
	assert_int_equal(futimens(fd, long_ago), 0);
	fc.how = TOUCH;
	snprintf(msg, sizeof(msg), "%s: changed while being uploaded: modified",
		 path);
	expect_abort_of(&o, size, path, msg);
	fc.how = GROW;
	snprintf(msg, sizeof(msg),
		 "%s: changed while being uploaded: %llu bytes, not %llu", path,
		 (unsigned long long)size + 1, (unsigned long long)size);
	expect_abort_of(&o, size, path, msg);
	fc.how = SHRINK;
	snprintf(msg, sizeof(msg),
		 "%s: changed while being uploaded: it ends at byte %llu, "
		 "not %llu",
		 path, (unsigned long long)7 * S3_MIB,
		 (unsigned long long)size + 1);
	expect_abort_of(&o, size, path, msg);
	assert_int_equal(F.completes, completes);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_put),
	    cmocka_unit_test(test_multipart),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_if_none_match),
	    cmocka_unit_test(test_put_answer_lost),
	    cmocka_unit_test(test_failures),
	    cmocka_unit_test(test_lost_complete),
	    cmocka_unit_test(test_abort_by_caller),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_reserve_commit),
	    cmocka_unit_test(test_file_single),
	    cmocka_unit_test(test_file_multipart),
	    cmocka_unit_test(test_file_failures),
	};

	/* the stand-in answers parts whose client went away (test_cancel) */
	signal(SIGPIPE, SIG_IGN);
	unsetenv("VAULTFS_FAULT");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	return cmocka_run_group_tests(tests, fake_start, fake_stop);
}
