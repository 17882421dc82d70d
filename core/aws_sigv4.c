/*
 * aws_sigv4.c - AWS Signature Version 4 for the Authorization header.
 *
 * A signature is three strings, each built from the one before. The
 * canonical request spells the request out in a fixed form: the method, the
 * canonical path, the canonical query, the signed headers (lowercase names
 * sorted, values trimmed and folded, duplicates joined with ','), the list of
 * their names and the payload hash. The string to sign binds the SHA-256 of
 * that text to the time and the scope ("date/region/service/aws4_request").
 * The signature is an HMAC-SHA256 of the string to sign under the signing
 * key, a chain of four HMACs that starts from "AWS4" + secret. The key
 * depends only on the secret and the day (region and service are fixed per
 * signer), so each signer keeps the last key it derived.
 *
 * Paths follow one of two rules. Every service but S3 normalises the path
 * ("." and ".." resolved as RFC 3986 does, empty segments dropped) and then
 * percent-encodes it once more, so that a '%' of the wire path signs as
 * "%25". S3 signs the path exactly as it goes on the wire. Under both rules
 * each query parameter is decoded and encoded again per RFC 3986, then the
 * parameters are sorted by name and value.
 *
 * Threads: any number of threads may sign with one signer at once. Region,
 * service and the path rule never change after aws_sigv4_signer_new(); the
 * key cache is the only mutable state and lives behind ->lock, which is held
 * only to look an entry up or to store one, never while hashing. The cache
 * is keyed by the SHA-256 of the secret, so the signer never keeps the secret
 * itself, and the key is wiped when the signer is freed.
 *
 * Nothing here logs (but for a misused aws_sigv4_signer_new(), which
 * aborts). Error messages say which part of the request is wrong and never
 * carry a credential, a key or a signature.
 */
#include "aws_sigv4.h"
#include "buf.h"
#include "crypto.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM    "AWS4-HMAC-SHA256"
#define TERMINATOR   "aws4_request"
#define AMZ_DATE_LEN 16 /* "20150830T123600Z" */
#define DAY_LEN	     8	/* "20150830" */

struct aws_sigv4_signer {
	char *region;  /* owned; fixed after _new */
	char *service; /* owned; fixed after _new */
	bool s3_paths; /* fixed after _new */

	/* A one-entry cache of the signing key: credentials and the day change
	 * rarely, so one entry hits on nearly every request. */
	pthread_mutex_t lock;
	bool key_valid;			   /* protected by ->lock */
	char key_day[DAY_LEN + 1];	   /* protected by ->lock */
	uint8_t key_secret[CM_SHA256_LEN]; /* protected by ->lock: SHA-256
					    * of the secret */
	uint8_t key[CM_SHA256_LEN];	   /* protected by ->lock */
	unsigned long derivations;	   /* protected by ->lock: keys
					    * derived so far (tests) */
};

/* One request header on its way into the canonical request. */
struct canon_header {
	char *name;	   /* owned: lowercase copy */
	const char *value; /* borrowed from the request */
	size_t order;	   /* position in the request: sort tie-break */
};

/* One query parameter, both halves owned and already re-encoded. */
struct query_param {
	char *name;
	char *value;
};

/*
 * The buffers below are unbounded (max 0), so appending to them cannot fail
 * (running out of memory aborts); their return values are not checked.
 */

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Append s[0..n) percent-encoded per RFC 3986: unreserved bytes stay, and so
 * does '/' when keep_slash; everything else becomes %XX (uppercase). */
static void uri_encode(struct cm_buf *b, const char *s, size_t n,
		       bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3] = {'%', 0, 0};
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			cm_buf_append(b, &s[i], 1);
			continue;
		}
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 0xf];
		cm_buf_append(b, esc, sizeof(esc));
	}
}

/* Append s[0..n) with every %XX decoded; '+' is taken literally (SigV4 is
 * not form encoding). -EINVAL on a '%' not followed by two hex digits. */
static int uri_decode(struct cm_buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -EINVAL;
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		cm_buf_append(b, &c, 1);
	}
	return 0;
}

/*
 * The path with "." and ".." resolved and empty segments dropped, as a new
 * string the caller frees. It always starts with '/'; it ends with '/' when
 * the input did or when its last segment was "." or ".." (RFC 3986, 5.2.4),
 * unless nothing is left but the root. ".." above the root is dropped.
 */
static char *normalize_path(const char *path)
{
	size_t n = strlen(path);
	char *out = cm_xmalloc(n + 2);
	size_t len = 0;
	bool slash_end = false;
	const char *p = path;

	while (*p) {
		const char *seg;
		size_t seglen;

		while (*p == '/')
			p++;
		seg = p;
		while (*p && *p != '/')
			p++;
		seglen = (size_t)(p - seg);
		if (seglen == 0) {
			slash_end = true; /* the path ended with '/' */
			break;
		}
		if (seglen == 1 && seg[0] == '.') {
			slash_end = true;
			continue;
		}
		if (seglen == 2 && seg[0] == '.' && seg[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the '/' before the dropped segment */
			slash_end = true;
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, seg, seglen);
		len += seglen;
		slash_end = false;
	}
	if (len == 0 || slash_end)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

/* Append the canonical path. A path that does not start with '/' (or is
 * empty) is taken as relative to the root. */
static void canonical_path(struct cm_buf *b, const char *path, bool s3_paths)
{
	char *norm;

	if (!path)
		path = "";
	if (s3_paths) {
		if (path[0] != '/')
			cm_buf_append(b, "/", 1);
		cm_buf_puts(b, path);
		return;
	}
	norm = normalize_path(path);
	uri_encode(b, norm, strlen(norm), true);
	free(norm);
}

/* Decode s[0..n) and encode it again: a new string the caller frees. */
static int reencode(const char *s, size_t n, char **out)
{
	struct cm_buf raw, enc;
	int rc;

	cm_buf_init(&raw, 0);
	cm_buf_init(&enc, 0);
	rc = uri_decode(&raw, s, n);
	if (rc)
		goto out;
	uri_encode(&enc, cm_buf_str(&raw), raw.len, false);
	*out = cm_buf_detach(&enc);
out:
	cm_buf_release(&raw);
	cm_buf_release(&enc);
	return rc;
}

static int compare_params(const void *a, const void *b)
{
	const struct query_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/*
 * Append the canonical query of `query` (without '?', may be NULL): split on
 * '&' (empty pieces dropped), each name and value decoded and encoded again
 * ("a" alone becomes "a="), sorted by encoded name then value, joined with
 * '&'. Sorting the encoded form is what AWS does: "%E1..." sorts before "P".
 */
static int canonical_query(struct cm_buf *b, const char *query,
			   struct cm_err *err)
{
	struct query_param *params = NULL;
	size_t nparams = 0, max = 1, i;
	const char *p;
	int rc = 0;

	if (!query || !*query)
		return 0;
	for (p = query; *p; p++)
		max += *p == '&';
	params = cm_xcalloc(max, sizeof(*params));
	p = query;
	while (*p) {
		const char *end = strchr(p, '&');
		const char *eq;
		size_t len;

		if (!end)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len > 0) {
			struct query_param *qp = &params[nparams++];
			const char *value = end;

			eq = memchr(p, '=', len);
			if (eq)
				value = eq + 1;
			else
				eq = end;
			rc = reencode(p, (size_t)(eq - p), &qp->name);
			if (!rc)
				rc = reencode(value, (size_t)(end - value),
					      &qp->value);
			if (rc) {
				rc = cm_err_set(err, EINVAL,
						"sigv4: bad percent-escape in "
						"query parameter %zu",
						nparams);
				goto out;
			}
		}
		p = *end ? end + 1 : end;
	}
	qsort(params, nparams, sizeof(*params), compare_params);
	for (i = 0; i < nparams; i++) {
		if (i)
			cm_buf_append(b, "&", 1);
		cm_buf_puts(b, params[i].name);
		cm_buf_append(b, "=", 1);
		cm_buf_puts(b, params[i].value);
	}
out:
	for (i = 0; i < nparams; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	return rc;
}

/* Append a header value trimmed, with each inner run of whitespace (line
 * folds included) replaced by one space. */
static void canonical_value(struct cm_buf *b, const char *v)
{
	bool gap = false, seen = false;

	for (; *v; v++) {
		if (is_space(*v)) {
			gap = seen;
			continue;
		}
		if (gap)
			cm_buf_append(b, " ", 1);
		cm_buf_append(b, v, 1);
		gap = false;
		seen = true;
	}
}

static int compare_headers(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool valid_header_name(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (!*p)
		return false;
	for (; *p; p++)
		if (*p <= ' ' || *p == ':' || *p >= 0x7f)
			return false;
	return true;
}

/* The request's headers with lowercase names, sorted by name and then by
 * order of appearance: a new array (names owned) the caller frees with
 * free_headers(). */
static int sort_headers(const struct aws_sigv4_request *req,
			struct canon_header **out, struct cm_err *err)
{
	struct canon_header *h;
	size_t i;

	if (req->nheaders && !req->headers)
		return cm_err_set(err, EINVAL, "sigv4: no header array");
	for (i = 0; i < req->nheaders; i++) {
		const struct aws_sigv4_header *in = &req->headers[i];

		if (!in->name || !valid_header_name(in->name) || !in->value)
			return cm_err_set(err, EINVAL,
					  "sigv4: header %zu: bad name or no "
					  "value",
					  i);
	}
	h = cm_xcalloc(req->nheaders ? req->nheaders : 1, sizeof(*h));
	for (i = 0; i < req->nheaders; i++) {
		char *c;

		h[i].name = cm_xstrdup(req->headers[i].name);
		for (c = h[i].name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		h[i].value = req->headers[i].value;
		h[i].order = i;
	}
	qsort(h, req->nheaders, sizeof(*h), compare_headers);
	*out = h;
	return 0;
}

static void free_headers(struct canon_header *h, size_t n)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < n; i++)
		free(h[i].name);
	free(h);
}

static const struct canon_header *find_header(const struct canon_header *h,
					      size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(h[i].name, name))
			return &h[i];
	return NULL;
}

static bool valid_amz_date(const char *s, size_t len)
{
	size_t i;

	if (len != AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
		return false;
	for (i = 0; i < AMZ_DATE_LEN - 1; i++)
		if (i != 8 && (s[i] < '0' || s[i] > '9'))
			return false;
	return true;
}

/* Copy the X-Amz-Date header's value into amz_date, checking its shape
 * (YYYYMMDD'T'HHMMSS'Z'). */
static int request_date(const struct canon_header *h, size_t n,
			char amz_date[AMZ_DATE_LEN + 1], struct cm_err *err)
{
	const struct canon_header *d = find_header(h, n, "x-amz-date");
	struct cm_buf v;
	int rc = 0;

	if (!d)
		return cm_err_set(err, EINVAL,
				  "sigv4: request has no X-Amz-Date header");
	cm_buf_init(&v, 0);
	canonical_value(&v, d->value);
	if (!valid_amz_date(cm_buf_str(&v), v.len)) {
		rc = cm_err_set(err, EINVAL,
				"sigv4: X-Amz-Date is not YYYYMMDDTHHMMSSZ");
		goto out;
	}
	memcpy(amz_date, v.data, AMZ_DATE_LEN + 1);
out:
	cm_buf_release(&v);
	return rc;
}

/* Append "name:value\n" per distinct name (values of one name joined with
 * ',' in order) to b, and "name;name..." to names. */
static void canonical_headers(struct cm_buf *b, struct cm_buf *names,
			      const struct canon_header *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		bool same = i > 0 && !strcmp(h[i].name, h[i - 1].name);

		if (same) {
			cm_buf_append(b, ",", 1);
		} else {
			if (i > 0) {
				cm_buf_append(b, "\n", 1);
				cm_buf_append(names, ";", 1);
			}
			cm_buf_puts(b, h[i].name);
			cm_buf_append(b, ":", 1);
			cm_buf_puts(names, h[i].name);
		}
		canonical_value(b, h[i].value);
	}
	if (n)
		cm_buf_append(b, "\n", 1);
}

/* The signing key for (secret, day, region, service): four chained HMACs. */
static void derive_key(const char *secret, const char *day, const char *region,
		       const char *service, uint8_t key[CM_SHA256_LEN])
{
	size_t n = strlen(secret);
	char *k = cm_xmalloc(n + 5);
	uint8_t a[CM_SHA256_LEN], b[CM_SHA256_LEN];

	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, n + 1);
	cm_hmac_sha256(k, n + 4, day, DAY_LEN, a);
	cm_free_secret(k);
	cm_hmac_sha256(a, sizeof(a), region, strlen(region), b);
	cm_hmac_sha256(b, sizeof(b), service, strlen(service), a);
	cm_hmac_sha256(a, sizeof(a), TERMINATOR, strlen(TERMINATOR), key);
	explicit_bzero(a, sizeof(a));
	explicit_bzero(b, sizeof(b));
}

/* The signing key for (secret, day), from the cache when it holds it. The
 * lock is not held while deriving: two threads missing at once both derive
 * the same key, and the second store is harmless. */
static void signing_key(struct aws_sigv4_signer *s, const char *secret,
			const char *day, uint8_t key[CM_SHA256_LEN])
{
	uint8_t fp[CM_SHA256_LEN];
	bool hit;

	cm_sha256(secret, strlen(secret), fp);
	pthread_mutex_lock(&s->lock);
	hit = s->key_valid && !strcmp(s->key_day, day) &&
	      !memcmp(s->key_secret, fp, sizeof(fp));
	if (hit)
		memcpy(key, s->key, CM_SHA256_LEN);
	pthread_mutex_unlock(&s->lock);
	if (hit)
		goto out;

	derive_key(secret, day, s->region, s->service, key);
	pthread_mutex_lock(&s->lock);
	memcpy(s->key, key, CM_SHA256_LEN);
	memcpy(s->key_secret, fp, sizeof(fp));
	memcpy(s->key_day, day, DAY_LEN + 1);
	s->key_valid = true;
	s->derivations++;
	pthread_mutex_unlock(&s->lock);
out:
	explicit_bzero(fp, sizeof(fp));
}

struct aws_sigv4_signer *
aws_sigv4_signer_new(const char *region, const char *service, bool s3_paths)
{
	struct aws_sigv4_signer *s;

	if (!region || !*region || !service || !*service) {
		cm_error("sigv4: signer without a region or a service");
		abort(); /* a bug in the caller */
	}
	s = cm_xcalloc(1, sizeof(*s));
	s->region = cm_xstrdup(region);
	s->service = cm_xstrdup(service);
	s->s3_paths = s3_paths;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void aws_sigv4_signer_free(struct aws_sigv4_signer *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	explicit_bzero(s->key, sizeof(s->key));
	explicit_bzero(s->key_secret, sizeof(s->key_secret));
	free(s->region);
	free(s->service);
	free(s);
}

static bool nonempty(const char *s)
{
	return s && *s;
}

int aws_sigv4_sign(struct aws_sigv4_signer *s,
		   const struct aws_sigv4_request *req,
		   const struct aws_sigv4_creds *creds,
		   struct aws_sigv4_result *out, struct cm_err *err)
{
	struct canon_header *hdrs = NULL;
	struct cm_buf creq, sts, authz, names;
	char amz_date[AMZ_DATE_LEN + 1];
	char day[DAY_LEN + 1];
	char hash[CM_SHA256_HEX_LEN + 1];
	uint8_t key[CM_SHA256_LEN], sig[CM_SHA256_LEN];
	char sig_hex[CM_SHA256_HEX_LEN + 1];
	int rc;

	out->canonical_request = NULL;
	out->string_to_sign = NULL;
	out->authorization = NULL;
	cm_buf_init(&creq, 0);
	cm_buf_init(&sts, 0);
	cm_buf_init(&authz, 0);
	cm_buf_init(&names, 0);

	if (!creds || !nonempty(creds->access_key_id) ||
	    !nonempty(creds->secret_access_key)) {
		rc = cm_err_set(err, EINVAL, "sigv4: no credentials");
		goto out;
	}
	if (!nonempty(req->method) || !nonempty(req->payload_hash)) {
		rc = cm_err_set(err, EINVAL,
				"sigv4: request without a method or a "
				"payload hash");
		goto out;
	}
	rc = sort_headers(req, &hdrs, err);
	if (rc)
		goto out;
	if (!find_header(hdrs, req->nheaders, "host")) {
		rc = cm_err_set(err, EINVAL,
				"sigv4: request has no Host header");
		goto out;
	}
	rc = request_date(hdrs, req->nheaders, amz_date, err);
	if (rc)
		goto out;
	memcpy(day, amz_date, DAY_LEN);
	day[DAY_LEN] = '\0';

	/* 1. The canonical request. */
	cm_buf_puts(&creq, req->method);
	cm_buf_append(&creq, "\n", 1);
	canonical_path(&creq, req->path, s->s3_paths);
	cm_buf_append(&creq, "\n", 1);
	rc = canonical_query(&creq, req->query, err);
	if (rc)
		goto out;
	cm_buf_append(&creq, "\n", 1);
	canonical_headers(&creq, &names, hdrs, req->nheaders);
	cm_buf_printf(&creq, "\n%s\n%s", cm_buf_str(&names), req->payload_hash);

	/* 2. The string to sign. */
	cm_sha256_hex(creq.data, creq.len, hash);
	cm_buf_printf(&sts, ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s",
		      amz_date, day, s->region, s->service, hash);

	/* 3. The signature and the header that carries it. */
	signing_key(s, creds->secret_access_key, day, key);
	cm_hmac_sha256(key, sizeof(key), sts.data, sts.len, sig);
	cm_hex(sig, sizeof(sig), sig_hex);
	cm_buf_printf(&authz,
		      ALGORITHM " Credential=%s/%s/%s/%s/" TERMINATOR
				", SignedHeaders=%s, Signature=%s",
		      creds->access_key_id, day, s->region, s->service,
		      cm_buf_str(&names), sig_hex);

	out->canonical_request = cm_buf_detach(&creq);
	out->string_to_sign = cm_buf_detach(&sts);
	out->authorization = cm_buf_detach(&authz);
out:
	explicit_bzero(key, sizeof(key));
	explicit_bzero(sig, sizeof(sig));
	explicit_bzero(sig_hex, sizeof(sig_hex));
	free_headers(hdrs, req->nheaders);
	cm_buf_release(&creq);
	cm_buf_release(&sts);
	cm_buf_release(&authz);
	cm_buf_release(&names);
	return rc;
}

void aws_sigv4_result_release(struct aws_sigv4_result *r)
{
	if (!r)
		return;
	free(r->canonical_request);
	free(r->string_to_sign);
	cm_free_secret(r->authorization); /* holds a signature: wipe it */
	r->canonical_request = NULL;
	r->string_to_sign = NULL;
	r->authorization = NULL;
}

void aws_sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	/* Years past 9999 do not fit the format. */
	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900 ||
	    strftime(out, AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) !=
		AMZ_DATE_LEN)
		out[0] = '\0';
}
