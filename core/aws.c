/*
 * aws.c - see aws.h.
 *
 * Every call, whatever its protocol, becomes one `struct call`: method,
 * path and query, extra headers, a body, and what to do with the answer.
 * call_run() runs it to the end with aws_retry(): for each attempt it
 * fetches credentials, builds the wire form (URL, Host, path and query as
 * signed), signs it, borrows an HTTP handle from the client's pool,
 * performs, gives the handle back and classifies the answer. The protocol
 * shows only in how the request is encoded (query_body, aws_json, aws_rest)
 * and how an error answer is read (parse_error).
 *
 * The wire form is built afresh for every attempt, so a retry carries a new
 * date (and new credentials, when the old ones were refreshed meanwhile).
 * A raw answer handed to a sink (EBS GetSnapshotBlock) that breaks off is
 * asked again whole; the bytes the sink already has are skipped, since a
 * block of a snapshot does not change.
 *
 * Threads: the client's settings are read-only after aws_client_new(); the
 * handle pool, the signer and the credential provider lock themselves.
 *
 * Secrets: the Authorization and X-Amz-Security-Token values live only in
 * the wire form and are wiped when it is released. Messages name the
 * service, the operation and what the server said, never a header.
 */
#include "aws.h"
#include "buf.h"
#include "crypto.h"
#include "fault.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"
#include "xml.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BACKOFF_BASE_MS	   100
#define BACKOFF_CAP_MS	   20000
#define DEFAULT_ATTEMPTS   8
#define MAX_ATTEMPTS_LIMIT 100
#define ANSWER_MAX	   (32 * 1024 * 1024) /* a page of a listing */
#define MAX_EXTRA_HEADERS  12

/* ---- services ------------------------------------------------------------ */

/* API versions and target prefixes from each service's API reference. */
const struct aws_service aws_ec2 = {
    .name = "ec2", .env = "EC2", .host = "ec2",
    .proto = AWS_PROTO_QUERY, .version = "2016-11-15",
};
const struct aws_service aws_ebs = {
    .name = "ebs", .env = "EBS", .host = "ebs",
    .proto = AWS_PROTO_REST_JSON,
};
const struct aws_service aws_rds = {
    .name = "rds", .env = "RDS", .host = "rds",
    .proto = AWS_PROTO_QUERY, .version = "2014-10-31",
};
const struct aws_service aws_dynamodb = {
    .name = "dynamodb", .env = "DYNAMODB", .host = "dynamodb",
    .proto = AWS_PROTO_JSON10, .target = "DynamoDB_20120810",
};
const struct aws_service aws_backup = {
    .name = "backup", .env = "BACKUP", .host = "backup",
    .proto = AWS_PROTO_REST_JSON,
};
const struct aws_service aws_sqs = {
    .name = "sqs", .env = "SQS", .host = "sqs",
    .proto = AWS_PROTO_JSON10, .target = "AmazonSQS",
};
const struct aws_service aws_sts = {
    .name = "sts", .env = "STS", .host = "sts",
    .proto = AWS_PROTO_QUERY, .version = "2011-06-15",
};
const struct aws_service aws_ssm = {
    .name = "ssm", .env = "SSM", .host = "ssm",
    .proto = AWS_PROTO_JSON11, .target = "AmazonSSM",
};

const struct aws_service *const aws_services[] = {
    &aws_ec2, &aws_ebs, &aws_rds, &aws_dynamodb, &aws_backup,
    &aws_sqs, &aws_sts, &aws_ssm, NULL,
};

const struct aws_service *aws_service_find(const char *name)
{
	for (size_t i = 0; aws_services[i]; i++)
		if (!strcmp(aws_services[i]->name, name))
			return aws_services[i];
	return NULL;
}

/* ---- the client ---------------------------------------------------------- */

struct aws_client {
	const struct aws_service *svc;
	bool anonymous;
	const atomic_int *cancel; /* aws_client_set_cancel */
	struct aws_base b;
	char region_from[48];
	char endpoint_from[64];
};

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int aws_url_parse(const char *url, struct aws_url *out, struct cm_err *err)
{
	const char *p, *rest;
	size_t n;
	char *auth;

	memset(out, 0, sizeof(*out));
	if (!strncmp(url, "https://", 8)) {
		out->https = true;
		p = url + 8;
	} else if (!strncmp(url, "http://", 7)) {
		p = url + 7;
	} else {
		return cm_err_set(err, EINVAL,
				  "endpoint %s: must start with "
				  "http:// or https://",
				  url);
	}
	n = strcspn(p, "/?#");
	rest = p + n;
	if (n == 0 || memchr(p, '@', n) || *rest == '?' || *rest == '#' ||
	    strpbrk(url, " \t\r\n"))
		return cm_err_set(err, EINVAL,
				  "endpoint %s: expected "
				  "scheme://host[:port][/path]",
				  url);
	auth = cm_xstrndup(p, n);
	/* the Host header the server sees omits a default port: sign the
	 * same */
	if (out->https && n > 4 && !strcmp(auth + n - 4, ":443"))
		auth[n - 4] = '\0';
	else if (!out->https && n > 3 && !strcmp(auth + n - 3, ":80"))
		auth[n - 3] = '\0';
	out->authority = auth;
	n = strlen(rest);
	while (n && rest[n - 1] == '/')
		n--;
	out->base_path = cm_xstrndup(rest, n);
	out->endpoint = cm_xasprintf("%s://%s%s", out->https ? "https" : "http",
				     out->authority, out->base_path);
	return 0;
}

void aws_url_release(struct aws_url *u)
{
	free(u->authority);
	free(u->base_path);
	free(u->endpoint);
	memset(u, 0, sizeof(*u));
}

char *aws_endpoint_resolve(const char *service, const char *env,
			   const char *host, const char *region,
			   const struct aws_endpoint *endpoints, size_t n,
			   char *from, size_t fromlen)
{
	char var[64];
	const char *v;

	snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", env);
	if ((v = env_nonempty(var))) {
		snprintf(from, fromlen, "%s", var);
		return cm_xstrdup(v);
	}
	if ((v = env_nonempty("AWS_ENDPOINT_URL"))) {
		snprintf(from, fromlen, "AWS_ENDPOINT_URL");
		return cm_xstrdup(v);
	}
	for (size_t i = 0; i < n; i++) {
		if (endpoints[i].service && endpoints[i].url &&
		    !strcmp(endpoints[i].service, service)) {
			snprintf(from, fromlen, "config endpoints.%s", service);
			return cm_xstrdup(endpoints[i].url);
		}
	}
	snprintf(from, fromlen, "default");
	/* the China partition has its own domain */
	return cm_xasprintf("https://%s.%s.amazonaws.com%s", host, region,
			    strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

static bool region_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

/* The region in the order of aws.h, with where it came from. */
static int resolve_region(struct aws_client *c,
			  const struct aws_client_opts *opts,
			  struct cm_err *err)
{
	struct cm_err ierr;
	int rc;

	if (opts->region && *opts->region) {
		c->b.region = cm_xstrdup(opts->region);
		snprintf(c->region_from, sizeof(c->region_from), "config");
	} else {
		c->b.region = aws_region_find(opts->profile, c->region_from,
					    sizeof(c->region_from));
	}
	if (!c->b.region) {
		cm_err_clear(&ierr);
		rc = aws_imds_region(c->b.creds, &c->b.region, &ierr);
		if (rc)
			return cm_err_set(
			    err, rc == -ENOENT ? ENOENT : -rc,
			    "%s: no region: set \"region\" in the config, "
			    "AWS_REGION, AWS_DEFAULT_REGION or the profile's "
			    "region (EC2 instance metadata: %s)",
			    c->svc->name, ierr.msg);
		snprintf(c->region_from, sizeof(c->region_from),
			 "EC2 instance metadata");
	}
	if (!region_ok(c->b.region))
		return cm_err_set(err, EINVAL, "%s: bad region '%.64s'",
				  c->svc->name, c->b.region);
	return 0;
}

unsigned aws_max_attempts(const char *var)
{
	const char *v = env_nonempty(var);
	char *end;
	unsigned long n;

	if (!v)
		return DEFAULT_ATTEMPTS;
	n = strtoul(v, &end, 10);
	if (*end || n < 1 || n > MAX_ATTEMPTS_LIMIT) {
		cm_warn("%s=%s: not in 1..%d, using %d", var, v,
			MAX_ATTEMPTS_LIMIT, DEFAULT_ATTEMPTS);
		return DEFAULT_ATTEMPTS;
	}
	return (unsigned)n;
}

void aws_base_init(struct aws_base *b, const struct cm_http_opts *http,
		   struct aws_creds_provider *creds, const char *profile)
{
	memset(b, 0, sizeof(*b));
	cm_http_pool_init(&b->pool, http);
	if (creds) {
		b->creds = creds;
	} else {
		struct aws_creds_opts co = {.profile = profile};

		b->creds = aws_creds_provider_new(&co);
		b->own_creds = true;
	}
}

void aws_base_release(struct aws_base *b)
{
	cm_http_pool_release(&b->pool);
	if (b->own_creds)
		aws_creds_provider_free(b->creds);
	aws_sigv4_signer_free(b->signer);
	aws_url_release(&b->url);
	free(b->region);
	memset(b, 0, sizeof(*b));
}

struct aws_client *aws_client_new(const struct aws_service *svc,
				  const struct aws_client_opts *opts,
				  struct cm_err *err)
{
	static const struct aws_client_opts none;
	struct aws_client *c = cm_xcalloc(1, sizeof(*c));
	char *url = NULL;
	int rc;

	if (!opts)
		opts = &none;
	c->svc = svc;
	c->anonymous = opts->anonymous;
	aws_base_init(&c->b, &opts->http, opts->creds, opts->profile);
	rc = resolve_region(c, opts, err);
	if (!rc) {
		url = aws_endpoint_resolve(
		    svc->name, svc->env, svc->host, c->b.region,
		    opts->endpoints, opts->nendpoints, c->endpoint_from,
		    sizeof(c->endpoint_from));
		rc = aws_url_parse(url, &c->b.url, err);
		if (rc)
			cm_err_prefix(err, "%s (%s)", svc->name,
				      c->endpoint_from);
	}
	free(url);
	if (rc) {
		aws_client_free(c);
		return NULL;
	}
	c->b.max_attempts =
	    opts->max_attempts ? opts->max_attempts
			       : aws_max_attempts("VAULTFS_AWS_MAX_ATTEMPTS");
	c->b.signer = aws_sigv4_signer_new(c->b.region, svc->name, false);
	cm_debug("%s: endpoint %s (%s), region %s (%s)", svc->name,
		 c->b.url.endpoint, c->endpoint_from, c->b.region,
		 c->region_from);
	return c;
}

void aws_client_set_cancel(struct aws_client *c, const atomic_int *flag)
{
	c->cancel = flag;
}

void aws_client_free(struct aws_client *c)
{
	if (!c)
		return;
	aws_base_release(&c->b);
	free(c);
}

const char *aws_client_region(const struct aws_client *c)
{
	return c->b.region;
}

const char *aws_client_endpoint(const struct aws_client *c)
{
	return c->b.url.endpoint;
}

const char *aws_client_endpoint_source(const struct aws_client *c)
{
	return c->endpoint_from;
}

const char *aws_client_region_source(const struct aws_client *c)
{
	return c->region_from;
}

struct aws_creds_provider *aws_client_creds(const struct aws_client *c)
{
	return c->b.creds;
}

/* ---- the wire form (shared with s3.c) ------------------------------------ */

void aws_wire_header(struct aws_wire *w, const char *name, const char *value)
{
	if (w->n == AWS_WIRE_MAX_HEADERS)
		abort(); /* a bug: raise AWS_WIRE_MAX_HEADERS */
	w->name[w->n] = cm_xstrdup(name);
	w->value[w->n] = cm_xstrdup(value);
	w->n++;
}

void aws_wire_release(struct aws_wire *w)
{
	for (size_t i = 0; i < w->n; i++) {
		/* Authorization and the session token: wipe */
		cm_free_secret(w->value[i]);
		free(w->name[i]);
	}
	for (size_t i = 0; i < w->nlines; i++)
		cm_free_secret(w->line[i]);
	free(w->url);
	free(w->path);
	free(w->query);
	memset(w, 0, sizeof(*w));
}

int aws_wire_sign(struct aws_sigv4_signer *s, const char *method,
		  struct aws_wire *w, const char *payload_hash,
		  bool hash_header, time_t now, const struct aws_creds *cr,
		  struct cm_err *err)
{
	struct aws_sigv4_header hs[AWS_WIRE_MAX_HEADERS];
	struct aws_sigv4_result res = {0};
	struct aws_sigv4_request req;
	struct aws_sigv4_creds sc;
	char date[17];
	int rc;

	aws_sigv4_amz_date(now, date);
	aws_wire_header(w, "X-Amz-Date", date);
	if (hash_header)
		aws_wire_header(w, "X-Amz-Content-Sha256", payload_hash);
	if (cr->session_token && *cr->session_token)
		aws_wire_header(w, "X-Amz-Security-Token", cr->session_token);
	for (size_t i = 0; i < w->n; i++) {
		hs[i].name = w->name[i];
		hs[i].value = w->value[i];
	}
	req = (struct aws_sigv4_request){
	    .method = method,
	    .path = w->path,
	    .query = w->query,
	    .headers = hs,
	    .nheaders = w->n,
	    .payload_hash = payload_hash,
	};
	sc = (struct aws_sigv4_creds){
	    .access_key_id = cr->access_key_id,
	    .secret_access_key = cr->secret_access_key,
	    .session_token = cr->session_token,
	};
	rc = aws_sigv4_sign(s, &req, &sc, &res, err);
	if (rc)
		return rc;
	aws_wire_header(w, "Authorization", res.authorization);
	aws_sigv4_result_release(&res);
	aws_wire_lines(w);
	return 0;
}

void aws_wire_lines(struct aws_wire *w)
{
	for (size_t i = w->nlines; i < w->n; i++)
		w->line[w->nlines++] =
		    cm_xasprintf("%s: %s", w->name[i], w->value[i]);
}

/* ---- retries (shared with s3.c) ------------------------------------------ */

unsigned aws_backoff_ms(unsigned attempt)
{
	uint64_t ceiling = BACKOFF_BASE_MS;

	for (unsigned i = 1; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > BACKOFF_CAP_MS)
		ceiling = BACKOFF_CAP_MS;
	return (unsigned)cm_random(ceiling + 1);
}

/* No connection at all (core/http.c's codes): refused, no such host. */
static bool unreachable(const struct cm_err *e)
{
	return e->code == ECONNREFUSED || e->code == EHOSTUNREACH;
}

/* Sleep ms, in slices so that a raised cancel flag ends it soon (a
 * backoff may be 20 s). True when cancelled. */
static bool backoff_sleep(unsigned ms, const atomic_int *cancel)
{
	while (ms) {
		unsigned slice = ms < 100 ? ms : 100;

		if (cancel && atomic_load(cancel))
			return true;
		cm_sleep_ms(slice);
		ms -= slice;
	}
	return cancel && atomic_load(cancel);
}

int aws_retry(const char *what, unsigned max_attempts, aws_attempt_fn fn,
	      void *ctx, const atomic_int *cancel, struct cm_err *err)
{
	struct cm_err e;
	unsigned attempt;
	int rc;

	for (attempt = 1;; attempt++) {
		unsigned delay;

		cm_err_clear(&e);
		rc = fn(ctx, &e);
		if (!rc)
			return 0;
		if (!e.retryable || attempt >= max_attempts)
			break;
		delay = aws_backoff_ms(attempt);
		if (attempt == 1 && unreachable(&e))
			/* an endpoint that does not answer at all: say so
			 * now, not after the backoffs' silent seconds */
			cm_warn("%s: %s (attempt 1 of %u, retrying)", what,
				e.msg, max_attempts);
		else
			cm_info("%s: attempt %u of %u failed, retrying in %u "
				"ms: %s", what, attempt, max_attempts, delay,
				e.msg);
		if (backoff_sleep(delay, cancel)) {
			struct cm_err last = e;

			rc = cm_err_set(&e, ECANCELED, "%s: cancelled while "
					"waiting to retry (%s)", what,
					last.msg);
			break;
		}
	}
	if (e.retryable && attempt > 1) {
		size_t l = strlen(e.msg);

		snprintf(e.msg + l, sizeof(e.msg) - l,
			 " [gave up after %u attempts]", attempt);
	}
	if (err)
		*err = e;
	return rc;
}

/* ---- errors -------------------------------------------------------------- */

/* Reason phrases, and the code an error without a body is given. */
static const struct {
	long status;
	const char *text;
	const char *code;
} statuses[] = {
    {301, "Moved Permanently", "PermanentRedirect"},
    {307, "Temporary Redirect", "TemporaryRedirect"},
    {400, "Bad Request", "BadRequest"},
    {401, "Unauthorized", "Unauthorized"},
    {403, "Forbidden", "AccessDenied"},
    {404, "Not Found", "NotFound"},
    {405, "Method Not Allowed", "MethodNotAllowed"},
    {409, "Conflict", "Conflict"},
    {411, "Length Required", "MissingContentLength"},
    {412, "Precondition Failed", "PreconditionFailed"},
    {416, "Range Not Satisfiable", "InvalidRange"},
    {429, "Too Many Requests", "TooManyRequests"},
    {500, "Internal Server Error", "InternalError"},
    {501, "Not Implemented", "NotImplemented"},
    {502, "Bad Gateway", "BadGateway"},
    {503, "Service Unavailable", "ServiceUnavailable"},
    {504, "Gateway Timeout", "GatewayTimeout"},
};

const char *aws_status_text(long st)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].status == st)
			return statuses[i].text;
	return "";
}

const char *aws_status_code(long st)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].status == st)
			return statuses[i].code;
	return st >= 500 ? "ServerError" : "ClientError";
}

void aws_clean_copy(char *out, size_t n, const char *in)
{
	size_t o = 0;

	for (; in && *in && o + 1 < n; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch == '\n' || ch == '\r' || ch == '\t')
			ch = ' ';
		if (ch < 0x20 || ch == 0x7f)
			continue;
		if (ch == ' ' && (o == 0 || out[o - 1] == ' '))
			continue;
		out[o++] = (char)ch;
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/*
 * The codes the AWS SDKs retry as throttling (botocore's and the Java
 * SDK's lists), less LimitExceededException: in Backup and others it names
 * a quota (too many vaults), which no wait lifts.
 */
bool aws_code_is_throttling(const char *code)
{
	static const char *const codes[] = {
	    "Throttling",
	    "ThrottlingException",
	    "ThrottledException",
	    "RequestThrottledException",
	    "TooManyRequestsException",
	    "ProvisionedThroughputExceededException",
	    "TransactionInProgressException",
	    "RequestLimitExceeded",
	    "BandwidthLimitExceeded",
	    "RequestThrottled",
	    "SlowDown",
	    "PriorRequestNotComplete",
	    "EC2ThrottledException",
	};

	for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(code, codes[i]))
			return true;
	return false;
}

bool aws_code_is_retryable(const char *code)
{
	/* transient failures a server may name in a 4xx, or a 5xx's body */
	static const char *const codes[] = {
	    "RequestTimeout",	  "RequestTimeoutException",
	    "InternalError",	  "InternalFailure",
	    "ServiceUnavailable", "TooManyRequests",
	    "IDPCommunicationError",
	};

	if (aws_code_is_throttling(code))
		return true;
	for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(code, codes[i]))
			return true;
	return false;
}

static int code_errno(long st, const char *code)
{
	if (aws_code_is_throttling(code))
		return EAGAIN;
	if (st == 404 || strstr(code, "NotFound") ||
	    !strcmp(code, "NoSuchEntity"))
		return ENOENT;
	if (st == 401 || st == 403 || !strncmp(code, "AccessDenied", 12) ||
	    !strncmp(code, "UnrecognizedClient", 18) ||
	    !strcmp(code, "InvalidClientTokenId") ||
	    !strncmp(code, "ExpiredToken", 12) ||
	    !strcmp(code, "SignatureDoesNotMatch") ||
	    !strcmp(code, "AuthFailure"))
		return EACCES;
	if (st == 409 || strstr(code, "Conflict") || strstr(code, "InUse"))
		return EBUSY;
	if (st >= 400 && st < 500)
		return EINVAL;
	return EIO;
}

struct aws_error {
	char code[128];
	char message[512];
};

/* "prefix#Code" (JSON __type) or "Code:http://..." (x-amzn-ErrorType). */
static void error_code_copy(char *out, size_t n, const char *in)
{
	const char *hash = strrchr(in, '#');
	char tmp[256];

	if (hash)
		in = hash + 1;
	snprintf(tmp, sizeof(tmp), "%.*s", (int)strcspn(in, ":"), in);
	aws_clean_copy(out, n, tmp);
}

static void error_from_xml(const char *body, size_t len, struct aws_error *e)
{
	struct cm_xml *root = NULL, *er = NULL;

	if (!len || cm_xml_parse(body, len, &root, NULL) != 0)
		return;
	/* <ErrorResponse><Error> (STS, RDS), <Response><Errors><Error>
	 * (EC2), or a bare <Error> */
	if (!strcmp(cm_xml_name(root), "Error"))
		er = root;
	if (!er)
		er = cm_xml_child(root, "Error");
	if (!er && cm_xml_child(root, "Errors"))
		er = cm_xml_child(cm_xml_child(root, "Errors"), "Error");
	if (er) {
		aws_clean_copy(e->code, sizeof(e->code),
			       cm_xml_child_text(er, "Code"));
		aws_clean_copy(e->message, sizeof(e->message),
			       cm_xml_child_text(er, "Message"));
	}
	cm_xml_free(root);
}

static void error_from_json(const char *body, size_t len, struct aws_error *e)
{
	static const char *const code_keys[] = {"__type", "code", "Code"};
	static const char *const msg_keys[] = {"message", "Message",
					       "errorMessage"};
	struct cm_json *root = NULL;
	const char *v;

	if (!len || cm_json_parse(body, len, &root, NULL) != 0)
		return;
	for (size_t i = 0; !e->code[0] && i < 3; i++)
		if ((v = cm_json_get_str(root, code_keys[i])))
			error_code_copy(e->code, sizeof(e->code), v);
	for (size_t i = 0; !e->message[0] && i < 3; i++)
		if ((v = cm_json_get_str(root, msg_keys[i])))
			aws_clean_copy(e->message, sizeof(e->message), v);
	cm_json_free(root);
}

/* The code and message of an error answer, as each protocol puts them. */
static void parse_error(enum aws_protocol proto,
			const struct cm_http_response *r, struct aws_error *e)
{
	char hv[256];

	memset(e, 0, sizeof(*e));
	if (proto == AWS_PROTO_QUERY) {
		error_from_xml(r->body.data, r->body.len, e);
	} else {
		/* SQS's JSON protocol keeps its Query codes here */
		if (cm_http_response_header(r, "x-amzn-query-error", hv,
					    sizeof(hv))) {
			hv[strcspn(hv, ";")] = '\0'; /* "Code;Sender" */
			error_code_copy(e->code, sizeof(e->code), hv);
		}
		/* REST-JSON: the header first, as the SDKs read it */
		if (!e->code[0] &&
		    cm_http_response_header(r, "x-amzn-ErrorType", hv,
					    sizeof(hv)))
			error_code_copy(e->code, sizeof(e->code), hv);
		error_from_json(r->body.data, r->body.len, e);
	}
	if (!e->code[0])
		snprintf(e->code, sizeof(e->code), "%s",
			 aws_status_code(r->status));
	if (!e->message[0])
		snprintf(e->message, sizeof(e->message), "HTTP %ld %s",
			 r->status, aws_status_text(r->status));
}

/* "<service>: <Code>: <Message>", retryable when it may pass. */
static int error_answer(const struct aws_client *c, const char *op,
			const struct cm_http_response *r, struct cm_err *err)
{
	struct aws_error e;
	bool retry;

	parse_error(c->svc->proto, r, &e);
	retry = r->status >= 500 || r->status == 429 ||
		aws_code_is_retryable(e.code);
	cm_debug("%s: %s: HTTP %ld %s", c->svc->name, op, r->status, e.code);
	if (retry)
		return cm_err_retry(err, code_errno(r->status, e.code),
				    "%s: %s: %s", c->svc->name, e.code,
				    e.message);
	return cm_err_set(err, code_errno(r->status, e.code), "%s: %s: %s",
			  c->svc->name, e.code, e.message);
}

/* ---- one call ------------------------------------------------------------ */

struct call {
	struct aws_client *c;
	const char *op;	    /* for messages */
	const char *method;
	const char *path;   /* encoded path, "/" or "/a/b", may hold "?q" */
	const char *hdr[MAX_EXTRA_HEADERS]; /* "Name: value" */
	size_t nh;
	const void *body;
	size_t body_len;
	const char *payload_hash;
	cm_http_sink_fn sink; /* raw answer, or NULL: collected */
	void *sink_ctx;
	uint64_t delivered; /* bytes the sink has taken, over all attempts */
	uint64_t skip;	    /* of this attempt, to pass over (a retry) */
	struct cm_http_response resp;
};

static size_t call_sink(void *ctx, const void *p, size_t n)
{
	struct call *k = ctx;
	const char *b = p;
	size_t give = n;

	if (k->skip) {
		size_t s = k->skip < n ? (size_t)k->skip : n;

		k->skip -= s;
		b += s;
		give -= s;
	}
	if (give && k->sink(k->sink_ctx, b, give) != give)
		return 0;
	k->delivered += give;
	return n;
}

/* The URL, path and canonical query of a call on this client. */
static void call_wire(const struct call *k, struct aws_wire *w)
{
	const struct aws_url *u = &k->c->b.url;
	const char *q = strchr(k->path, '?');
	size_t plen = q ? (size_t)(q - k->path) : strlen(k->path);

	w->path = cm_xasprintf("%s%.*s", u->base_path, (int)plen, k->path);
	if (!w->path[0]) {
		free(w->path);
		w->path = cm_xstrdup("/");
	}
	/* the signer decodes, sorts and re-encodes the query itself */
	if (q && q[1])
		w->query = cm_xstrdup(q + 1);
	w->url = cm_xasprintf("%s://%s%s%s%s", u->https ? "https" : "http",
			      u->authority, w->path, w->query ? "?" : "",
			      w->query ? w->query : "");
	aws_wire_header(w, "Host", u->authority);
	for (size_t i = 0; i < k->nh; i++) {
		const char *colon = strchr(k->hdr[i], ':');
		char *name = cm_xstrndup(k->hdr[i], (size_t)(colon - k->hdr[i]));
		const char *v = colon + 1;

		while (*v == ' ' || *v == '\t')
			v++;
		aws_wire_header(w, name, v);
		free(name);
	}
}

static int call_attempt(void *ctx, struct cm_err *err)
{
	struct call *k = ctx;
	struct aws_client *c = k->c;
	struct aws_creds cr = {0};
	struct aws_wire w = {0};
	struct cm_http_request req;
	struct cm_http *h;
	int rc;

	if (cm_fault("aws.request"))
		return cm_err_retry(err, ECONNRESET,
				    "%s: %s: connection reset (injected fault)",
				    c->svc->name, k->op);
	call_wire(k, &w);
	if (c->anonymous) {
		aws_wire_lines(&w);
	} else {
		rc = aws_creds_get(c->b.creds, &cr, err);
		if (rc) {
			cm_err_prefix(err, "%s: %s: credentials", c->svc->name,
				      k->op);
			goto out;
		}
		rc = aws_wire_sign(c->b.signer, k->method, &w, k->payload_hash,
				   false, time(NULL), &cr, err);
		if (rc) {
			cm_err_prefix(err, "%s: %s: signing", c->svc->name,
				      k->op);
			goto out;
		}
	}
	req = (struct cm_http_request){
	    .method = k->method,
	    .url = w.url,
	    .headers = (const char *const *)w.line,
	    .nheaders = w.nlines,
	    .body = k->body_len ? k->body : NULL,
	    .body_len = k->body_len,
	    .sink = k->sink ? call_sink : NULL,
	    .sink_ctx = k,
	    .cancel = c->cancel,
	};
	k->skip = k->delivered;
	h = cm_http_pool_get(&c->b.pool);
	rc = cm_http_perform(h, &req, &k->resp, err);
	cm_http_pool_put(&c->b.pool, h);
	cm_debug("%s: %s -> %ld%s", c->svc->name, k->op, k->resp.status,
		 rc ? " (transport failure)" : "");
	if (rc) {
		cm_err_prefix(err, "%s: %s", c->svc->name, k->op);
		goto out;
	}
	if (k->resp.status < 200 || k->resp.status >= 300)
		rc = error_answer(c, k->op, &k->resp, err);
out:
	aws_wire_release(&w);
	aws_creds_release(&cr);
	return rc;
}

static void call_init(struct call *k, struct aws_client *c, const char *op,
		      const char *method, const char *path)
{
	memset(k, 0, sizeof(*k));
	k->c = c;
	k->op = op;
	k->method = method;
	k->path = path;
	cm_http_response_init(&k->resp, ANSWER_MAX);
}

static void call_header(struct call *k, const char *line)
{
	if (k->nh == MAX_EXTRA_HEADERS)
		abort(); /* a bug: raise MAX_EXTRA_HEADERS */
	k->hdr[k->nh++] = line;
}

/* Hash the body once, then every attempt. */
static int call_run(struct call *k, struct cm_err *err)
{
	char sha[CM_SHA256_HEX_LEN + 1];
	char what[64];

	if (k->body_len) {
		cm_sha256_hex(k->body, k->body_len, sha);
		k->payload_hash = sha;
	} else {
		k->payload_hash = AWS_EMPTY_SHA256;
	}
	snprintf(what, sizeof(what), "%s: %s", k->c->svc->name, k->op);
	return aws_retry(what, k->c->b.max_attempts, call_attempt, k,
			 k->c->cancel, err);
}

static void call_release(struct call *k)
{
	/* STS answers carry credentials */
	if (k->c->svc == &aws_sts && k->resp.body.data)
		explicit_bzero(k->resp.body.data, k->resp.body.cap);
	cm_http_response_release(&k->resp);
}

/* ---- Query --------------------------------------------------------------- */

/* "Action=A&Version=V&Name=value..." with names and values encoded. */
static char *query_body(const struct aws_service *svc, const char *action,
			const char *const *params, size_t n)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	cm_buf_printf(&b, "Action=%s&Version=%s", action, svc->version);
	for (size_t i = 0; i < n; i++) {
		const char *name = params[2 * i], *v = params[2 * i + 1];
		char *en = cm_http_uri_encode(name, strlen(name), false);
		char *ev = cm_http_uri_encode(v ? v : "", v ? strlen(v) : 0,
					      false);

		cm_buf_printf(&b, "&%s=%s", en, ev);
		free(en);
		free(ev);
	}
	return cm_buf_detach(&b);
}

int aws_query(struct aws_client *c, const char *action,
	      const char *const *params, size_t n, struct cm_xml **out,
	      struct cm_err *err)
{
	struct call k;
	char *body;
	int rc;

	*out = NULL;
	if (c->svc->proto != AWS_PROTO_QUERY)
		return cm_err_set(err, EINVAL, "%s: %s: not a Query service",
				  c->svc->name, action);
	body = query_body(c->svc, action, params, n);
	call_init(&k, c, action, "POST", "/");
	call_header(&k, "Content-Type: application/x-www-form-urlencoded; "
			"charset=utf-8");
	k.body = body;
	k.body_len = strlen(body);
	rc = call_run(&k, err);
	if (!rc) {
		rc = cm_xml_parse(k.resp.body.data ? k.resp.body.data : "",
				  k.resp.body.len, out, err);
		if (rc)
			cm_err_prefix(err, "%s: %s: the answer", c->svc->name,
				      action);
	}
	call_release(&k);
	/* AssumeRoleWithWebIdentity carries the identity token */
	cm_free_secret(body);
	return rc;
}

/* ---- JSON ---------------------------------------------------------------- */

/* The answer's JSON into *out; "{}" for an empty body. */
static int json_answer(const struct call *k, struct cm_json **out,
		       struct cm_err *err)
{
	const struct cm_buf *b = &k->resp.body;
	int rc;

	if (!b->len) {
		*out = cm_json_new_object();
		return 0;
	}
	rc = cm_json_parse(b->data, b->len, out, err);
	if (rc)
		cm_err_prefix(err, "%s: %s: the answer", k->c->svc->name,
			      k->op);
	return rc;
}

int aws_json(struct aws_client *c, const char *operation,
	     const struct cm_json *body, struct cm_json **out,
	     struct cm_err *err)
{
	struct call k;
	char *text, *target, *ctype;
	int rc;

	*out = NULL;
	if (c->svc->proto != AWS_PROTO_JSON10 &&
	    c->svc->proto != AWS_PROTO_JSON11)
		return cm_err_set(err, EINVAL, "%s: %s: not a JSON service",
				  c->svc->name, operation);
	text = body ? cm_json_print_line(body) : cm_xstrdup("{}");
	target = cm_xasprintf("X-Amz-Target: %s.%s", c->svc->target,
			      operation);
	ctype = cm_xasprintf("Content-Type: application/x-amz-json-%s",
			     c->svc->proto == AWS_PROTO_JSON10 ? "1.0" : "1.1");
	call_init(&k, c, operation, "POST", "/");
	call_header(&k, target);
	call_header(&k, ctype);
	k.body = text;
	k.body_len = strlen(text);
	rc = call_run(&k, err);
	if (!rc)
		rc = json_answer(&k, out, err);
	call_release(&k);
	free(ctype);
	free(target);
	free(text);
	return rc;
}

/* ---- REST-JSON ----------------------------------------------------------- */

int aws_rest(struct aws_client *c, const struct aws_rest_request *req,
	     struct cm_json **out, struct cm_buf *headers,
	     struct cm_err *err)
{
	struct call k;
	char *text = NULL;
	bool has_ctype = false;
	int rc;

	if (out)
		*out = NULL;
	if (c->svc->proto != AWS_PROTO_REST_JSON)
		return cm_err_set(err, EINVAL, "%s: %s: not a REST-JSON service",
				  c->svc->name, req->op);
	if (!req->path || req->path[0] != '/')
		return cm_err_set(err, EINVAL, "%s: %s: path must start with /",
				  c->svc->name, req->op);
	if (req->nheaders > MAX_EXTRA_HEADERS - 1)
		return cm_err_set(err, EINVAL, "%s: %s: too many headers",
				  c->svc->name, req->op);
	call_init(&k, c, req->op, req->method, req->path);
	for (size_t i = 0; i < req->nheaders; i++) {
		if (!strchr(req->headers[i], ':')) {
			rc = cm_err_set(err, EINVAL,
					"%s: %s: header without ':'",
					c->svc->name, req->op);
			goto out;
		}
		if (!strncasecmp(req->headers[i], "content-type:", 13))
			has_ctype = true;
		call_header(&k, req->headers[i]);
	}
	if (req->json) {
		text = cm_json_print_line(req->json);
		k.body = text;
		k.body_len = strlen(text);
		if (!has_ctype)
			call_header(&k, "Content-Type: application/json");
	} else if (req->body_len) {
		k.body = req->body;
		k.body_len = req->body_len;
		if (!has_ctype)
			call_header(&k,
				    "Content-Type: application/octet-stream");
	}
	k.sink = req->sink;
	k.sink_ctx = req->sink_ctx;
	rc = call_run(&k, err);
	if (!rc && headers)
		cm_buf_append(headers, k.resp.headers.data ? k.resp.headers.data
							   : "",
			      k.resp.headers.len);
	if (!rc && !req->sink && out && k.resp.body.len)
		rc = json_answer(&k, out, err);
out:
	call_release(&k);
	free(text);
	return rc;
}

char *aws_uri_encode(const char *s)
{
	return cm_http_uri_encode(s, strlen(s), false);
}

/* ---- STS ----------------------------------------------------------------- */

void aws_identity_release(struct aws_identity *id)
{
	free(id->account);
	free(id->arn);
	free(id->user_id);
	memset(id, 0, sizeof(*id));
}

int aws_caller_identity(struct aws_client *sts, struct aws_identity *out,
			struct cm_err *err)
{
	struct cm_xml *root = NULL, *res;
	const char *acct;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = aws_query(sts, "GetCallerIdentity", NULL, 0, &root, err);
	if (rc)
		return rc;
	res = cm_xml_child(root, "GetCallerIdentityResult");
	acct = res ? cm_xml_child_text(res, "Account") : NULL;
	if (!acct || strlen(acct) != 12 ||
	    strspn(acct, "0123456789") != 12) {
		rc = cm_err_set(err, EPROTO,
				"sts: GetCallerIdentity: the answer has no "
				"12-digit Account");
		goto out;
	}
	out->account = cm_xstrdup(acct);
	out->arn = cm_xstrdup(cm_xml_child_text(res, "Arn") ?: "");
	out->user_id = cm_xstrdup(cm_xml_child_text(res, "UserId") ?: "");
out:
	cm_xml_free(root);
	return rc;
}

int aws_account_id(struct aws_client *sts, char out[13], struct cm_err *err)
{
	struct aws_identity id;
	int rc = aws_caller_identity(sts, &id, err);

	if (rc)
		return rc;
	memcpy(out, id.account, 13);
	aws_identity_release(&id);
	return 0;
}
