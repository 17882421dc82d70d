/*
 * http.c - see http.h. The only file that includes libcurl.
 *
 * One `struct cm_http` wraps one easy handle. Before each request the handle
 * is reset (curl_easy_reset keeps the connection cache), so no option leaks
 * from one request into the next while connections are still reused.
 *
 * Bodies: a borrowed buffer, or the caller's source callback (asked by
 * offset, so that a rewind to resend is only a new offset), is read through
 * our own read callback rather than CURLOPT_POSTFIELDS, so PUT and POST of
 * any size behave the same and curl never copies the data.
 * "Expect: 100-continue" is turned off: S3 answers errors after the body
 * anyway, and the extra round trip costs throughput.
 *
 * Response headers are collected for the final response only: a new status
 * line (after "100 Continue" or a redirect) clears what came before.
 *
 * Threads: curl_global_init runs once (pthread_once) before the first handle
 * is made; CURLOPT_NOSIGNAL is set because handles live on worker threads.
 */
#include "http.h"
#include "fault.h"
#include "log.h"
#include "mem.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cm_http {
	CURL *curl;
	struct cm_http_opts opts;
	char errbuf[CURL_ERROR_SIZE];
};

struct xfer {
	CURL *curl;
	const struct cm_http_request *req;
	struct cm_http_response *resp;
	size_t body_off;    /* bytes of the body handed to curl */
	bool sink_failed;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort(); /* no TLS library: nothing works */
}

struct cm_http *cm_http_new(const struct cm_http_opts *opts)
{
	struct cm_http *h;

	pthread_once(&global_once, global_init);
	h = cm_xcalloc(1, sizeof(*h));
	if (opts)
		h->opts = *opts;
	if (!h->opts.connect_timeout_ms)
		h->opts.connect_timeout_ms = 10000;
	if (!h->opts.low_speed_time_s)
		h->opts.low_speed_time_s = 60;
	h->curl = curl_easy_init();
	if (!h->curl)
		abort();
	return h;
}

void cm_http_free(struct cm_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	free(h);
}

void cm_http_response_init(struct cm_http_response *r, size_t body_max)
{
	r->status = 0;
	r->resent = false;
	cm_buf_init(&r->headers, 64 * 1024);
	cm_buf_init(&r->body, body_max);
}

void cm_http_response_release(struct cm_http_response *r)
{
	cm_buf_release(&r->headers);
	cm_buf_release(&r->body);
}

bool cm_http_response_header(const struct cm_http_response *r,
			     const char *name, char *out, size_t outlen)
{
	const char *p = cm_buf_str(&r->headers);
	size_t nlen = strlen(name);

	while (*p) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);

		if ((size_t)(end - p) > nlen && p[nlen] == ':' &&
		    !strncasecmp(p, name, nlen)) {
			const char *v = p + nlen + 1;
			size_t n;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && isspace((unsigned char)end[-1]))
				end--;
			n = (size_t)(end - v);
			if (outlen) {
				if (n >= outlen)
					n = outlen - 1;
				memcpy(out, v, n);
				out[n] = '\0';
			}
			return true;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return false;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct xfer *x = ctx;
	size_t n = size * nmemb;

	if (n >= 5 && !strncmp(p, "HTTP/", 5))
		cm_buf_reset(&x->resp->headers); /* a new (final?) response */
	else
		(void)cm_buf_append(&x->resp->headers, p, n); /* capped */
	return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct xfer *x = ctx;
	size_t n = size * nmemb;

	if (x->req->sink) {
		long status = 0;

		/* error bodies are collected, not handed to the sink */
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 300)
			goto collect;
		if (x->req->sink(x->req->sink_ctx, p, n) != n) {
			x->sink_failed = true;
			return 0;
		}
		return n;
	}
collect:
	/* past the cap the rest is dropped: callers cap only error bodies */
	(void)cm_buf_append(&x->resp->body, p, n);
	return n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct xfer *x = ctx;
	size_t n = size * nmemb, left = x->req->body_len - x->body_off;

	if (n > left)
		n = left;
	if (!n)
		return 0;
	if (x->req->body) {
		memcpy(p, (const char *)x->req->body + x->body_off, n);
	} else if (x->req->source) {
		n = x->req->source(x->req->source_ctx, x->body_off, p, n);
		if (n == SIZE_MAX || n == 0)
			return CURL_READFUNC_ABORT;
	} else {
		return 0;
	}
	x->body_off += n;
	return n;
}

/* Rewind for a resend on a reused connection that went away. */
static int on_seek(void *ctx, curl_off_t off, int origin)
{
	struct xfer *x = ctx;

	if ((!x->req->body && !x->req->source) || origin != SEEK_SET ||
	    off < 0 || (size_t)off > x->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->body_off = (size_t)off;
	x->resp->resent = true;
	return CURL_SEEKFUNC_OK;
}

static bool retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* The CA file to verify peers with, or NULL: VAULTFS_CA_BUNDLE first (it
 * names vaultfs's own choice), then AWS_CA_BUNDLE. */
static const char *ca_bundle(void)
{
	static const char *const vars[] = {"VAULTFS_CA_BUNDLE", "AWS_CA_BUNDLE"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			return v;
	}
	return NULL;
}

/* Host and path of the URL, without query, for messages. */
static void url_for_message(const char *url, char *out, size_t n)
{
	size_t len = strcspn(url, "?");

	if (len >= n)
		len = n - 1;
	memcpy(out, url, len);
	out[len] = '\0';
}

/* libcurl calls this about once a second while a transfer waits, and
 * more often while it moves: the cancel flag's only reader. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	const atomic_int *cancel = ctx;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(cancel) ? 1 : 0;
}

int cm_http_perform(struct cm_http *h, const struct cm_http_request *req,
		    struct cm_http_response *resp, struct cm_err *err)
{
	struct xfer x = { .curl = h->curl, .req = req, .resp = resp };
	struct curl_slist *hdrs = NULL, *tmp;

	resp->resent = false;
	const char *method = req->method ? req->method : "GET";
	bool has_body = req->body || req->source;
	bool has_ctype = false;
	const char *ca = ca_bundle();
	char where[256];
	CURLcode rc;
	int ret = 0;

	cm_buf_reset(&resp->headers);
	cm_buf_reset(&resp->body);
	resp->status = 0;
	url_for_message(req->url, where, sizeof(where));

	if (cm_fault("http.perform"))
		return cm_err_retry(err, ECONNRESET,
				    "%s %s: connection reset (injected)",
				    method, where);

	curl_easy_reset(h->curl);
	h->errbuf[0] = '\0';
	curl_easy_setopt(h->curl, CURLOPT_URL, req->url);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	/* keys like "a/../b" are names in S3, not paths to tidy */
	curl_easy_setopt(h->curl, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 h->opts.connect_timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME,
			 h->opts.low_speed_time_s);
	if (h->opts.total_timeout_ms)
		curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS,
				 h->opts.total_timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca && *ca)
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "vaultfs");
	curl_easy_setopt(h->curl, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(h->curl, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &x);
	if (req->cancel) {
		curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA,
				 (void *)req->cancel);
		curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	}

	for (size_t i = 0; i < req->nheaders; i++) {
		if (!strncasecmp(req->headers[i], "content-type:", 13))
			has_ctype = true;
		tmp = curl_slist_append(hdrs, req->headers[i]);
		if (!tmp)
			abort();
		hdrs = tmp;
	}
	/* no 100-continue round trip; no form content type on POST */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (!has_ctype)
		hdrs = curl_slist_append(hdrs, "Content-Type:");
	if (!hdrs)
		abort();
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);

	if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(method, "PUT")) {
		curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(has_body ? req->body_len : 0));
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(has_body ? req->body_len : 0));
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	}
	if (has_body || !strcmp(method, "PUT") || !strcmp(method, "POST")) {
		curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h->curl, CURLOPT_READDATA, &x);
		curl_easy_setopt(h->curl, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h->curl, CURLOPT_SEEKDATA, &x);
	}

	rc = curl_easy_perform(h->curl);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);

	if (req->cancel && atomic_load(req->cancel)) {
		ret = cm_err_set(err, ECANCELED, "%s %s: cancelled", method,
				 where);
	} else if (x.sink_failed) {
		ret = cm_err_set(err, ECANCELED, "%s %s: download aborted",
				 method, where);
	} else if (rc == CURLE_ABORTED_BY_CALLBACK ||
		   rc == CURLE_READ_ERROR) {
		ret = cm_err_set(err, ECANCELED, "%s %s: upload aborted",
				 method, where);
	} else if (rc != CURLE_OK) {
		const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
		int code = rc == CURLE_OPERATION_TIMEDOUT    ? ETIMEDOUT :
			   rc == CURLE_COULDNT_CONNECT	     ? ECONNREFUSED :
			   rc == CURLE_COULDNT_RESOLVE_HOST ? EHOSTUNREACH :
							       EIO;

		if (retryable(rc))
			ret = cm_err_retry(err, code, "%s %s: %s", method,
					   where, why);
		else
			ret = cm_err_set(err, code, "%s %s: %s", method, where,
					 why);
	}
	curl_slist_free_all(hdrs);
	return ret;
}

char *cm_http_uri_encode(const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = cm_xmalloc(3 * n + 1);
	char *o = out;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~' || (keep_slash && c == '/')) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

void cm_http_pool_init(struct cm_http_pool *p, const struct cm_http_opts *opts)
{
	memset(p, 0, sizeof(*p));
	if (opts)
		p->opts = *opts;
	pthread_mutex_init(&p->lock, NULL);
}

void cm_http_pool_release(struct cm_http_pool *p)
{
	for (size_t i = 0; i < p->nidle; i++)
		cm_http_free(p->idle[i]);
	free(p->idle);
	pthread_mutex_destroy(&p->lock);
	memset(p, 0, sizeof(*p));
}

struct cm_http *cm_http_pool_get(struct cm_http_pool *p)
{
	struct cm_http *h = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->nidle)
		h = p->idle[--p->nidle];
	pthread_mutex_unlock(&p->lock);
	return h ? h : cm_http_new(&p->opts);
}

void cm_http_pool_put(struct cm_http_pool *p, struct cm_http *h)
{
	pthread_mutex_lock(&p->lock);
	if (p->nidle == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 8;
		p->idle = cm_xrealloc(p->idle, p->cap * sizeof(*p->idle));
	}
	p->idle[p->nidle++] = h;
	pthread_mutex_unlock(&p->lock);
}
