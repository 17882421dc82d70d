/*
 * aws_creds.c - the credential chain and region resolution (see
 * aws_creds.h for the order of the sources).
 *
 * A provider resolves the chain once, on the first aws_creds_get, and keeps
 * what it found in ->cur. Static credentials (environment, shared files)
 * are kept for the provider's life. Temporary ones (ECS, IMDS, roles, web
 * identity, a credential_process that says when they expire) carry an
 * expiry; once `now` is within REFRESH_MARGIN_S of it, the next
 * aws_creds_get fetches new ones from the same source (ECS and IMDS
 * directly, the others by walking the chain again, which leads to the same
 * profile or variables). When that refresh
 * fails while the current credentials are still valid, they are handed out
 * with a warning and the refresh is tried again retry_interval_s later; once
 * they have expired, the failure is the caller's. The same pause follows a
 * refresh whose new credentials are already inside the margin, so that a
 * source handing out short-lived credentials is not asked on every call.
 *
 * Threads: one mutex, ->lock, guards the cached credentials and the IMDS
 * session token. It is held across a refresh, so at most one request to
 * ECS, IMDS or STS (or one credential_process) is in flight per provider
 * and the other workers wait for its result (bounded by the timeouts
 * below and by STS's retries) instead of stampeding the endpoint. Every
 * caller gets its own copy of the credentials.
 *
 * Shared files are INI text: "[section]" lines, "key = value" lines,
 * comments from '#' or ';' at the start of a line (or after whitespace in a
 * value), and indented continuation lines (the sub-properties of
 * "s3 =" and the like), which are skipped. In the credentials file a
 * section is named by the profile itself; in the config file it is
 * "[profile NAME]", or "[default]". For one profile the credentials file
 * wins over the config file, and keys are taken from one file as a set,
 * never mixed; the keys that say how to get credentials (role_arn,
 * credential_process, ...) are read from either, the credentials file
 * first. SSO profiles and mfa_serial are refused with a clear error rather
 * than silently skipped.
 *
 * Roles and web identity are asked of STS through the AWS layer (aws.h):
 * AssumeRole signed by a static provider holding the source credentials,
 * AssumeRoleWithWebIdentity unsigned. STS answers are wiped after reading.
 *
 * credential_process is run with posix_spawnp, never through a shell: the
 * line is split into words by split_command (the quoting a POSIX shell
 * and the AWS CLI's shlex.split understand, no expansion). Its stdout is
 * read into a buffer reserved up front (no realloc leaves a copy of a
 * secret) and wiped.
 *
 * IMDS is spoken in version 2 only: PUT /latest/api/token with a TTL of
 * 21600 s, then every GET carries the token. The token is kept and reused
 * until shortly before its TTL runs out; a 401 on a reused token drops it
 * and the request is tried once more with a fresh one.
 *
 * Secrets (keys, session tokens, the ECS authorization token, the IMDS
 * token, web identity tokens) are wiped before their memory is freed, and no message or log
 * line built here contains one: errors name sources, files, profiles,
 * endpoints and HTTP statuses only.
 */
#include "aws_creds.h"
#include "aws.h"
#include "buf.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"
#include "fault.h"
#include "xml.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Refresh temporary credentials this long before they expire. */
#define REFRESH_MARGIN_S (5 * 60)
/* After a refresh that failed, or that brought credentials which are
 * themselves inside the margin, wait this long before the next one while
 * the current credentials are valid (each try may take the full HTTP
 * timeouts under ->lock, and all workers call aws_creds_get). */
#define RETRY_INTERVAL_S 10

#define IMDS_TOKEN_TTL_S 21600
/* Ask for a new IMDS token this long before the old one runs out. */
#define IMDS_TOKEN_MARGIN_S	300
#define IMDS_CONNECT_TIMEOUT_MS 1000
#define IMDS_TOTAL_TIMEOUT_MS	3000
#define ECS_CONNECT_TIMEOUT_MS	2000
#define ECS_TOTAL_TIMEOUT_MS	5000
/* A credential_process that has not finished by then is killed. */
#define PROCESS_TIMEOUT_S	60

/* Shared files and token files larger than this are refused. */
#define FILE_MAX       (1u << 20)
#define TOKEN_FILE_MAX (16u << 10)
/* Metadata answers are small; reserving this much up front means a body
 * with secrets in it is never moved by a realloc (which would leave an
 * unwiped copy behind). */
#define BODY_MAX     (64u << 10)
#define BODY_RESERVE (16u << 10)

/* Not const so that a unit test can point them at a local server. */
static const char *imds_default_endpoint = "http://169.254.169.254";
static const char *ecs_relative_host = "http://169.254.170.2";
static time_t retry_interval_s = RETRY_INTERVAL_S;
static time_t process_timeout_s = PROCESS_TIMEOUT_S;

static const char SRC_ENV[] = "environment";
static const char SRC_PROFILE[] = "profile";
static const char SRC_ECS[] = "ecs";
static const char SRC_IMDS[] = "imds";
static const char SRC_ROLE[] = "assume-role";
static const char SRC_WEB[] = "web-identity";
static const char SRC_PROCESS[] = "credential_process";

struct aws_creds_provider {
	bool fixed;	       /* static: ->cur as given, never refreshed */
	char *profile;	       /* owned; fixed at creation */
	bool profile_explicit; /* named by the options or AWS_PROFILE */
	bool profile_given;    /* named by the options (--profile) */
	char origin[96];       /* protected by ->lock: the chain's step that
				  gave ->cur ("profile prod"); "" before */
	pthread_mutex_t lock;
	struct aws_creds cur;	 /* protected by ->lock; valid if have_cur */
	bool have_cur;		 /* protected by ->lock */
	time_t retry_after;	 /* protected by ->lock: no refresh before,
				  * while ->cur is valid */
	char *imds_token;	 /* protected by ->lock; secret */
	char *imds_region;	 /* protected by ->lock: asked once, kept */
	double imds_token_until; /* protected by ->lock; cm_now_s() clock */
};

/* ---- small helpers ---------------------------------------------------- */

/* An environment variable, NULL when unset or empty. */
static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static void wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/*
 * Read a whole (small) file into a NUL-terminated heap buffer (*text, the
 * caller wipes and frees it with free_text). -ENOENT when it does not
 * exist, -EFBIG past `max` bytes. The buffer is sized once, from the file's
 * size (or `max` for what is not a regular file), so that no realloc
 * leaves a stray copy of a secret behind.
 */
static int slurp(const char *path, size_t max, char **text, size_t *len,
		 struct cm_err *err)
{
	size_t got = 0, cap = max;
	char *buf = NULL;
	struct stat st;
	int fd, rc = 0;

	*text = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if ((unsigned long long)st.st_size > max) {
			rc = cm_err_set(err, EFBIG, "%s: larger than %zu bytes",
					path, max);
			goto out;
		}
		cap = (size_t)st.st_size;
	}
	/* one byte more than expected tells a file that grew meanwhile */
	buf = cm_xmalloc(cap + 2);
	for (;;) {
		ssize_t n = read(fd, buf + got, cap + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = cm_err_set(err, errno, "%s: %s", path,
					strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > cap) {
			rc = cm_err_set(err, EFBIG, "%s: %s", path,
					cap < max ? "changed while being read"
						  : "too large");
			goto out;
		}
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	buf = NULL;
out:
	if (buf) {
		wipe(buf, cap + 2);
		free(buf);
	}
	close(fd);
	return rc;
}

static void free_text(char *text, size_t len)
{
	if (!text)
		return;
	wipe(text, len);
	free(text);
}

/* ---- credentials values ----------------------------------------------- */

void aws_creds_release(struct aws_creds *c)
{
	if (!c)
		return;
	cm_free_secret(c->access_key_id);
	cm_free_secret(c->secret_access_key);
	cm_free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	dst->access_key_id =
	    src->access_key_id ? cm_xstrdup(src->access_key_id) : NULL;
	dst->secret_access_key =
	    src->secret_access_key ? cm_xstrdup(src->secret_access_key) : NULL;
	dst->session_token =
	    src->session_token ? cm_xstrdup(src->session_token) : NULL;
	dst->expires = src->expires;
	dst->source = src->source;
}

static void creds_set(struct aws_creds *out, const char *id, const char *secret,
		      const char *token, time_t expires, const char *source)
{
	out->access_key_id = cm_xstrdup(id);
	out->secret_access_key = cm_xstrdup(secret);
	out->session_token = token && *token ? cm_xstrdup(token) : NULL;
	out->expires = expires;
	out->source = source;
}

/* ---- 1. environment --------------------------------------------------- */

/* 0: found; -ENOENT: not set (err holds a note); -EINVAL: half set. */
static int from_env(struct aws_creds *out, struct cm_err *err)
{
	const char *id = env("AWS_ACCESS_KEY_ID");
	const char *secret = env("AWS_SECRET_ACCESS_KEY");

	if (!id && !secret)
		return cm_err_set(err, ENOENT,
				  "environment (AWS_ACCESS_KEY_ID not set)");
	if (!id || !secret)
		return cm_err_set(
		    err, EINVAL, "environment: %s is set but %s is not",
		    id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		    id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	creds_set(out, id, secret, env("AWS_SESSION_TOKEN"), 0, SRC_ENV);
	return 0;
}

/* ---- 2. shared files -------------------------------------------------- */

enum ini_kind {
	INI_CREDENTIALS, /* sections are profile names */
	INI_CONFIG,	 /* "[profile NAME]" and "[default]" */
};

struct ini_entry {
	char *section; /* owned: the profile name */
	char *key;     /* owned */
	char *value;   /* owned; may be a secret, wiped on release */
};

struct ini {
	struct ini_entry *v; /* owned */
	size_t n, cap;
};

static void ini_release(struct ini *ini)
{
	for (size_t i = 0; i < ini->n; i++) {
		free(ini->v[i].section);
		free(ini->v[i].key);
		cm_free_secret(ini->v[i].value);
	}
	free(ini->v);
	memset(ini, 0, sizeof(*ini));
}

static void ini_add(struct ini *ini, const char *section, const char *key,
		    const char *value)
{
	struct ini_entry *e;

	if (ini->n == ini->cap) {
		ini->cap = ini->cap ? 2 * ini->cap : 16;
		ini->v = cm_xrealloc(ini->v, ini->cap * sizeof(*ini->v));
	}
	e = &ini->v[ini->n++];
	e->section = cm_xstrdup(section);
	e->key = cm_xstrdup(key);
	e->value = cm_xstrdup(value);
}

/* The profile a section header names, or NULL for sections that are not
 * profiles ("[sso-session x]", "[services x]" in the config file). */
static const char *section_profile(char *name, enum ini_kind kind)
{
	if (kind == INI_CREDENTIALS)
		return name;
	if (strcmp(name, "default") == 0)
		return name;
	if (strncmp(name, "profile", 7) == 0 &&
	    (name[7] == ' ' || name[7] == '\t'))
		return trim(name + 8);
	return NULL;
}

/* Cut a comment that follows whitespace in a value: "abc  # note". */
static void cut_inline_comment(char *v)
{
	for (char *p = v; *p; p++) {
		if ((*p == '#' || *p == ';') && p > v &&
		    (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
}

/*
 * Parse INI text (modified in place) into entries. Malformed lines are
 * skipped with a warning that names the file and line only, since the
 * line may hold a secret.
 */
static void ini_parse(struct ini *ini, char *text, enum ini_kind kind,
		      const char *path)
{
	const char *section = NULL;
	bool in_property = false;
	unsigned lineno = 0;
	char *save = NULL;

	for (char *line = text; line; line = save) {
		bool indented = *line == ' ' || *line == '\t';
		char *nl = strchr(line, '\n'), *s, *eq;

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			char *rest;

			in_property = false;
			section = NULL;
			if (!close) {
				cm_warn("%s:%u: section header without ']'",
					path, lineno);
				continue;
			}
			*close = '\0';
			rest = trim(close + 1);
			if (*rest && *rest != '#' && *rest != ';')
				cm_warn(
				    "%s:%u: text after section header ignored",
				    path, lineno);
			section = section_profile(trim(s + 1), kind);
			if (section && !*section)
				section = NULL;
			continue;
		}
		if (indented && in_property)
			continue; /* a sub-property or continuation */
		eq = strchr(s, '=');
		if (!eq) {
			cm_warn("%s:%u: line without '=' ignored", path,
				lineno);
			continue;
		}
		*eq = '\0';
		in_property = true;
		s = trim(s);
		if (!*s) {
			cm_warn("%s:%u: empty key ignored", path, lineno);
			continue;
		}
		if (!section)
			continue;
		cut_inline_comment(eq + 1);
		ini_add(ini, section, s, trim(eq + 1));
	}
}

/* Load and parse a file: -ENOENT if it does not exist. */
static int ini_load(struct ini *ini, const char *path, enum ini_kind kind,
		    struct cm_err *err)
{
	char *text;
	size_t len;
	int rc;

	rc = slurp(path, FILE_MAX, &text, &len, err);
	if (rc)
		return rc;
	ini_parse(ini, text, kind, path);
	free_text(text, len);
	return 0;
}

/* The value of key in a section (the last one wins), or NULL. */
static const char *ini_get(const struct ini *ini, const char *section,
			   const char *key)
{
	for (size_t i = ini->n; i-- > 0;) {
		if (strcmp(ini->v[i].section, section) == 0 &&
		    strcasecmp(ini->v[i].key, key) == 0)
			return ini->v[i].value;
	}
	return NULL;
}

static bool ini_has_section(const struct ini *ini, const char *section)
{
	for (size_t i = 0; i < ini->n; i++) {
		if (strcmp(ini->v[i].section, section) == 0)
			return true;
	}
	return false;
}

/*
 * The path of a shared file: the variable's value (with "~/" expanded), or
 * ~/.aws/NAME. NULL when neither can be formed (no HOME).
 */
static char *shared_file_path(const char *var, const char *name)
{
	const char *v = env(var), *home = env("HOME");

	if (v && strncmp(v, "~/", 2) == 0 && home)
		return cm_xasprintf("%s/%s", home, v + 2);
	if (v)
		return cm_xstrdup(v);
	if (!home)
		return NULL;
	return cm_xasprintf("%s/.aws/%s", home, name);
}

/*
 * Credentials from one file's section's keys. 0: found; -ENOENT: the
 * section has no keys; -EINVAL: half a key pair.
 */
static int creds_from_section(const struct ini *ini, const char *profile,
			      const char *path, struct aws_creds *out,
			      struct cm_err *err)
{
	const char *id = ini_get(ini, profile, "aws_access_key_id");
	const char *secret = ini_get(ini, profile, "aws_secret_access_key");

	if (id && !*id)
		id = NULL;
	if (secret && !*secret)
		secret = NULL;
	if (!id && !secret)
		return -ENOENT;
	if (!id || !secret)
		return cm_err_set(
		    err, EINVAL, "profile \"%s\" in %s has %s but no %s",
		    profile, path,
		    id ? "aws_access_key_id" : "aws_secret_access_key",
		    id ? "aws_secret_access_key" : "aws_access_key_id");
	creds_set(out, id, secret, ini_get(ini, profile, "aws_session_token"),
		  0, SRC_PROFILE);
	return 0;
}

struct profile_files {
	char *cpath, *fpath; /* NULL: cannot be named (no HOME) */
	struct ini cred, conf;
	bool cred_missing, conf_missing;
};

static void files_release(struct profile_files *f)
{
	ini_release(&f->cred);
	ini_release(&f->conf);
	free(f->cpath);
	free(f->fpath);
}

/* Both shared files; a missing one is noted, an unreadable one fails. */
static int files_load(struct profile_files *f, struct cm_err *err)
{
	int rc;

	memset(f, 0, sizeof(*f));
	f->cred_missing = f->conf_missing = true;
	f->cpath = shared_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	f->fpath = shared_file_path("AWS_CONFIG_FILE", "config");
	if (!f->cpath && !f->fpath)
		return cm_err_set(err, ENOENT, "shared files (HOME not set)");
	if (f->cpath) {
		rc = ini_load(&f->cred, f->cpath, INI_CREDENTIALS, err);
		if (rc && rc != -ENOENT)
			return rc;
		f->cred_missing = rc == -ENOENT;
	}
	if (f->fpath) {
		rc = ini_load(&f->conf, f->fpath, INI_CONFIG, err);
		if (rc && rc != -ENOENT)
			return rc;
		f->conf_missing = rc == -ENOENT;
	}
	return 0;
}

/* A profile's key, from the credentials file first, as the SDKs read it. */
static const char *profile_get(const struct profile_files *f,
			       const char *profile, const char *key)
{
	const char *v = ini_get(&f->cred, profile, key);

	if (!v || !*v)
		v = ini_get(&f->conf, profile, key);
	return v && *v ? v : NULL;
}

static int profile_creds(struct aws_creds_provider *p,
			 const struct profile_files *f, const char *profile,
			 unsigned depth, bool keys_only, struct aws_creds *out,
			 struct cm_err *err);

/*
 * 0: found; -ENOENT: no credentials for this profile (err holds a note);
 * other: a broken setup (unreadable file, half a key pair, a profile asked
 * for by name that does not exist, a role that cannot be assumed).
 */
static int from_profile(struct aws_creds_provider *p, const char *profile,
			bool explicit, struct aws_creds *out,
			struct cm_err *err)
{
	struct profile_files f;
	int rc;

	rc = files_load(&f, err);
	if (rc)
		goto out;
	rc = profile_creds(p, &f, profile, 0, false, out, err);
	if (rc != -ENOENT)
		goto out;
	if (ini_has_section(&f.cred, profile) ||
	    ini_has_section(&f.conf, profile))
		rc = cm_err_set(
		    err, ENOENT,
		    "shared files (profile \"%s\" has no aws_access_key_id)",
		    profile);
	else
		rc = cm_err_set(err, explicit ? EINVAL : ENOENT,
				"%sprofile \"%s\" not found in %s%s, %s%s%s",
				explicit ? "" : "shared files (", profile,
				f.cpath ? f.cpath : "(no credentials file)",
				f.cred_missing ? " (missing)" : "",
				f.fpath ? f.fpath : "(no config file)",
				f.conf_missing ? " (missing)" : "",
				explicit ? "" : ")");
out:
	files_release(&f);
	return rc;
}

char *aws_region_find(const char *profile, char *from, size_t fromlen)
{
	static const char *const vars[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
	struct ini conf = {0};
	char *path, *region = NULL;
	const char *v;

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if ((v = env(vars[i]))) {
			snprintf(from, fromlen, "%s", vars[i]);
			return cm_xstrdup(v);
		}
	}
	if (!profile || !*profile)
		profile = env("AWS_PROFILE");
	if (!profile)
		profile = "default";
	path = shared_file_path("AWS_CONFIG_FILE", "config");
	if (!path)
		return NULL;
	if (ini_load(&conf, path, INI_CONFIG, NULL) == 0) {
		v = ini_get(&conf, profile, "region");
		if (v && *v) {
			region = cm_xstrdup(v);
			snprintf(from, fromlen, "profile %s", profile);
		}
	}
	ini_release(&conf);
	free(path);
	return region;
}

char *aws_region_resolve(const char *profile)
{
	char from[64];

	return aws_region_find(profile, from, sizeof(from));
}

/* ---- HTTP sources: shared parts --------------------------------------- */

/* "scheme://host[:port]/path" of a URL: no user info, query or fragment,
 * so that it can appear in messages. */
static char *describe_url(const char *url)
{
	const char *p = strstr(url, "://");
	const char *auth, *at, *end;
	size_t plen;

	if (!p)
		return cm_xstrndup(url, strcspn(url, "?#"));
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	plen = strcspn(end, "?#");
	if (!at)
		return cm_xstrndup(url, (size_t)(end - url) + plen);
	return cm_xasprintf("%.*s%.*s%.*s", (int)(auth - url), url,
			    (int)(end - at - 1), at + 1, (int)plen, end);
}

/*
 * In the chain -ENOENT means "this source is not set up". Once a source
 * is set up, its failures (a missing token file, say) must not read as
 * that: they become -EIO.
 */
static int not_absent(int rc, struct cm_err *err)
{
	if (rc != -ENOENT)
		return rc;
	if (err)
		err->code = EIO;
	return -EIO;
}

static void response_init(struct cm_http_response *resp)
{
	cm_http_response_init(resp, BODY_MAX);
	if (cm_buf_reserve(&resp->body, BODY_RESERVE) != 0)
		abort(); /* the cap is larger than the reserve */
}

/* Wipe what a previous request left in the response (it may be a secret). */
static void response_reset(struct cm_http_response *resp)
{
	wipe(resp->body.data, resp->body.cap);
	cm_buf_reset(&resp->body);
	cm_buf_reset(&resp->headers);
}

static void response_release(struct cm_http_response *resp)
{
	wipe(resp->body.data, resp->body.cap);
	cm_http_response_release(resp);
}

/* An HTTP status other than 200 as an error: 5xx and 429 may pass. */
static int status_error(struct cm_err *err, long status, const char *what,
			const char *where)
{
	if (status >= 500 || status == 429)
		return cm_err_retry(err, EAGAIN, "%s %s: HTTP %ld", what, where,
				    status);
	return cm_err_set(err, status == 401 || status == 403 ? EACCES : EIO,
			  "%s %s: HTTP %ld", what, where, status);
}

/* cJSON keeps its own copies of the strings; wipe them before the tree is
 * freed. The strings are the tree's heap memory, so writing is fine. */
static void wipe_json_str(const char *s)
{
	if (s)
		explicit_bzero((char *)s, strlen(s));
}

/* ISO 8601 in UTC: "...Z", or "...+00:00" as some credential_process
 * helpers write it. */
static int parse_expiration(const char *s, time_t *out)
{
	size_t n = strlen(s);
	char tmp[48];

	if (n > 6 && n < sizeof(tmp) && !strcmp(s + n - 6, "+00:00")) {
		snprintf(tmp, sizeof(tmp), "%.*sZ", (int)(n - 6), s);
		return cm_time_parse_iso8601(tmp, out);
	}
	return cm_time_parse_iso8601(s, out);
}

/*
 * Credentials from an ECS or IMDS JSON answer, or a credential_process
 * output: AccessKeyId, SecretAccessKey, Token (SessionToken from a
 * process, which must also say Version 1), Expiration (and Code, which
 * IMDS sends and which must then be "Success").
 */
static int creds_from_json(const struct cm_buf *body, const char *what,
			   const char *where, bool expiry_required,
			   const char *source, struct aws_creds *out,
			   struct cm_err *err)
{
	struct cm_json *root = NULL;
	const char *code, *id = NULL, *secret = NULL, *token = NULL, *exp;
	time_t expires = 0;
	int rc;

	rc =
	    cm_json_parse(body->data ? body->data : "", body->len, &root, NULL);
	if (rc) {
		rc = cm_err_set(err, EIO, "%s %s: the answer is not JSON", what,
				where);
		goto out;
	}
	code = cm_json_get_str(root, "Code");
	id = cm_json_get_str(root, "AccessKeyId");
	secret = cm_json_get_str(root, "SecretAccessKey");
	token = cm_json_get_str(root, "Token");
	if (!token) /* credential_process names it as STS does */
		token = cm_json_get_str(root, "SessionToken");
	exp = cm_json_get_str(root, "Expiration");
	if (source == SRC_PROCESS &&
	    (cm_json_type(cm_json_get(root, "Version")) != CM_JSON_NUMBER ||
	     cm_json_num(cm_json_get(root, "Version")) != 1)) {
		rc = cm_err_set(err, EIO, "%s %s: the output's Version is not 1",
				what, where);
		goto out;
	}
	if (code && strcmp(code, "Success") != 0) {
		rc = cm_err_set(err, EIO, "%s %s: Code is \"%.64s\"", what,
				where, code);
		goto out;
	}
	if (!id || !*id || !secret || !*secret) {
		rc = cm_err_set(
		    err, EIO,
		    "%s %s: the answer lacks AccessKeyId or SecretAccessKey",
		    what, where);
		goto out;
	}
	if (exp && parse_expiration(exp, &expires) != 0) {
		rc = cm_err_set(err, EIO,
				"%s %s: Expiration \"%.40s\" is not ISO 8601",
				what, where, exp);
		goto out;
	}
	if (!exp && expiry_required) {
		rc = cm_err_set(err, EIO, "%s %s: the answer lacks Expiration",
				what, where);
		goto out;
	}
	if (expires && expires <= time(NULL))
		cm_warn("credentials from %s %s have already expired", what,
			where);
	creds_set(out, id, secret, token, expires, source);
out:
	if (root) {
		wipe_json_str(id);
		wipe_json_str(secret);
		wipe_json_str(token);
		cm_json_free(root);
	}
	return rc;
}

/* ---- 3. ECS container endpoint ---------------------------------------- */

/* The authority's host of a URL, lower-cased, brackets kept for IPv6. */
static void url_host(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");
	const char *end, *at;
	size_t len;

	out[0] = '\0';
	if (!p)
		return;
	p += 3;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		len = close ? (size_t)(close - p) + 1 : (size_t)(end - p);
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		len = colon ? (size_t)(colon - p) : (size_t)(end - p);
	}
	if (len >= n)
		return;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[len] = '\0';
}

/*
 * A full URI may carry the authorization token, so plain http is allowed
 * only to this machine and to the ECS and EKS agents' link-local
 * addresses (as the AWS SDKs do); https goes anywhere.
 */
static bool full_uri_allowed(const char *url)
{
	static const char *const hosts[] = {
	    "localhost",      "[::1]",		"169.254.170.2",
	    "169.254.170.23", "[fd00:ec2::23]",
	};
	char host[256];

	if (strncasecmp(url, "https://", 8) == 0)
		return true;
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	url_host(url, host, sizeof(host));
	if (strncmp(host, "127.", 4) == 0 &&
	    strspn(host, "0123456789.") == strlen(host))
		return true;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		if (strcmp(host, hosts[i]) == 0)
			return true;
	}
	return false;
}

/* The Authorization value: the token file wins over the variable. NULL
 * with 0 when there is none. */
static int ecs_auth_token(char **out, struct cm_err *err)
{
	const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *v = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (file) {
		rc = slurp(file, TOKEN_FILE_MAX, &text, &len, err);
		if (rc)
			return cm_err_prefix(
			    err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
		*out = cm_xstrdup(trim(text));
		free_text(text, len);
	} else if (v) {
		*out = cm_xstrdup(v);
	}
	if (*out && strpbrk(*out, "\r\n")) {
		cm_free_secret(*out);
		*out = NULL;
		return cm_err_set(
		    err, EINVAL,
		    "the ECS authorization token (%s) contains a line break",
		    file ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
			 : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	}
	return 0;
}

/*
 * 0: found; -ENOENT: not configured (err holds a note); other: the
 * endpoint is configured but failed, which ends the chain (as in the SDKs:
 * a container told where its credentials are should not quietly use
 * others).
 */
static int from_ecs(struct aws_creds *out, struct cm_err *err)
{
	static const char what[] = "ECS container endpoint";
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct cm_http_opts hopts = {
	    .connect_timeout_ms = ECS_CONNECT_TIMEOUT_MS,
	    .total_timeout_ms = ECS_TOTAL_TIMEOUT_MS,
	};
	struct cm_http_response resp;
	struct cm_http_request req = {.method = "GET"};
	struct cm_http *h = NULL;
	char *url, *where, *token = NULL, *auth = NULL;
	const char *hdrs[1];
	int rc;

	if (!rel && !full)
		return cm_err_set(err, ENOENT,
				  "ECS container endpoint "
				  "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
				  "_FULL_URI not set)");
	if (rel)
		url = cm_xasprintf("%s%s%s", ecs_relative_host,
				   rel[0] == '/' ? "" : "/", rel);
	else
		url = cm_xstrdup(full);
	where = describe_url(url);
	response_init(&resp);
	if (!rel && !full_uri_allowed(full)) {
		rc = cm_err_set(
		    err, EINVAL,
		    "AWS_CONTAINER_CREDENTIALS_FULL_URI %s: only https, or "
		    "http to a loopback or ECS/EKS agent address, is allowed",
		    where);
		goto out;
	}
	rc = ecs_auth_token(&token, err);
	if (rc)
		goto out;
	req.url = url;
	if (token) {
		auth = cm_xasprintf("Authorization: %s", token);
		hdrs[0] = auth;
		req.headers = hdrs;
		req.nheaders = 1;
	}
	if (cm_fault("creds.ecs")) {
		rc = cm_err_retry(err, EIO, "%s %s: injected fault", what,
				  where);
		goto out;
	}
	h = cm_http_new(&hopts);
	rc = cm_http_perform(h, &req, &resp, err);
	if (rc) {
		cm_err_prefix(err, "%s", what);
		goto out;
	}
	if (resp.status != 200) {
		rc = status_error(err, resp.status, what, where);
		goto out;
	}
	rc = creds_from_json(&resp.body, what, where, false, SRC_ECS, out, err);
	if (rc == 0)
		cm_debug("credentials: from the %s %s", what, where);
out:
	rc = not_absent(rc, err);
	cm_http_free(h);
	response_release(&resp);
	cm_free_secret(auth);
	cm_free_secret(token);
	free(where);
	free(url);
	return rc;
}

/* ---- 4. EC2 instance metadata (IMDSv2) -------------------------------- */

static bool imds_disabled(void)
{
	const char *v = env("AWS_EC2_METADATA_DISABLED");

	return v && strcasecmp(v, "true") == 0;
}

static char *imds_base(void)
{
	const char *v = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	size_t n;

	if (!v)
		v = imds_default_endpoint;
	n = strlen(v);
	while (n > 0 && v[n - 1] == '/')
		n--;
	return cm_xstrndup(v, n);
}

static void imds_drop_token(struct aws_creds_provider *p)
{
	cm_free_secret(p->imds_token);
	p->imds_token = NULL;
	p->imds_token_until = 0;
}

_Static_assert(IMDS_TOKEN_TTL_S == 21600, "imds_new_token's header says 21600");

/* PUT /latest/api/token into ->imds_token. Called with ->lock held. */
static int imds_new_token(struct aws_creds_provider *p, struct cm_http *h,
			  const char *base, struct cm_http_response *resp,
			  struct cm_err *err)
{
	static const char *const hdrs[] = {
	    "X-aws-ec2-metadata-token-ttl-seconds: 21600",
	};
	struct cm_http_request req = {
	    .method = "PUT",
	    .headers = hdrs,
	    .nheaders = 1,
	};
	char *url = cm_xasprintf("%s/latest/api/token", base);
	double asked = cm_now_s();
	int rc;

	imds_drop_token(p);
	req.url = url;
	response_reset(resp);
	rc = cm_http_perform(h, &req, resp, err);
	if (rc) {
		cm_err_prefix(err, "EC2 instance metadata token");
		goto out;
	}
	if (resp->status != 200) {
		rc = status_error(err, resp->status,
				  "EC2 instance metadata token at", base);
		goto out;
	}
	if (resp->body.data)
		p->imds_token = cm_xstrdup(trim(resp->body.data));
	if (!p->imds_token || !*p->imds_token ||
	    strpbrk(p->imds_token, "\r\n")) {
		imds_drop_token(p);
		rc = cm_err_set(
		    err, EIO,
		    "EC2 instance metadata %s: empty or malformed token", base);
		goto out;
	}
	p->imds_token_until = asked + IMDS_TOKEN_TTL_S - IMDS_TOKEN_MARGIN_S;
out:
	response_reset(resp);
	free(url);
	return rc;
}

/*
 * GET base+path with the session token into resp (status 200 only). A
 * reused token that is refused (401) is replaced once. Called with ->lock
 * held.
 */
static int imds_get(struct aws_creds_provider *p, struct cm_http *h,
		    const char *base, const char *path,
		    struct cm_http_response *resp, struct cm_err *err)
{
	struct cm_http_request req = {.method = "GET", .nheaders = 1};
	char *url = cm_xasprintf("%s%s", base, path);
	char *hdr = NULL;
	const char *hdrs[1];
	int rc;

	req.url = url;
	req.headers = hdrs;
	for (int attempt = 0;; attempt++) {
		bool fresh = false;

		if (!p->imds_token || cm_now_s() >= p->imds_token_until) {
			rc = imds_new_token(p, h, base, resp, err);
			if (rc)
				goto out;
			fresh = true;
		}
		cm_free_secret(hdr);
		hdr =
		    cm_xasprintf("X-aws-ec2-metadata-token: %s", p->imds_token);
		hdrs[0] = hdr;
		response_reset(resp);
		rc = cm_http_perform(h, &req, resp, err);
		if (rc) {
			cm_err_prefix(err, "EC2 instance metadata");
			goto out;
		}
		if (resp->status == 401 && !fresh && attempt == 0) {
			cm_debug("credentials: IMDS token refused, getting a "
				 "new one");
			imds_drop_token(p);
			continue;
		}
		if (resp->status == 401)
			imds_drop_token(p);
		if (resp->status == 404)
			rc = cm_err_set(err, ENODATA,
					"EC2 instance metadata %s: HTTP 404",
					url);
		else if (resp->status != 200)
			rc = status_error(err, resp->status,
					  "EC2 instance metadata", url);
		goto out;
	}
out:
	cm_free_secret(hdr);
	free(url);
	return rc;
}

/* Token, role, role's credentials. Called with ->lock held. */
static int from_imds(struct aws_creds_provider *p, struct aws_creds *out,
		     struct cm_err *err)
{
	static const char role_path[] =
	    "/latest/meta-data/iam/security-credentials/";
	struct cm_http_opts hopts = {
	    .connect_timeout_ms = IMDS_CONNECT_TIMEOUT_MS,
	    .total_timeout_ms = IMDS_TOTAL_TIMEOUT_MS,
	};
	struct cm_http_response resp;
	struct cm_http *h = NULL;
	char *base = imds_base(), *role = NULL, *enc = NULL, *path = NULL;
	char *where = NULL, *name;
	const char *line;
	int rc;

	response_init(&resp);
	if (cm_fault("creds.imds")) {
		rc = cm_err_retry(
		    err, EIO, "EC2 instance metadata %s: injected fault", base);
		goto out;
	}
	h = cm_http_new(&hopts);
	rc = imds_get(p, h, base, role_path, &resp, err);
	if (rc == -ENODATA)
		cm_err_set(err, ENODATA,
			   "EC2 instance metadata %s: no IAM role attached",
			   base);
	if (rc)
		goto out;
	/* one role per instance profile: the first line */
	line = cm_buf_str(&resp.body);
	role = cm_xstrndup(line, strcspn(line, "\r\n"));
	name = trim(role);
	if (!*name) {
		rc = cm_err_set(
		    err, ENODATA,
		    "EC2 instance metadata %s: no IAM role attached", base);
		goto out;
	}
	enc = cm_http_uri_encode(name, strlen(name), false);
	path = cm_xasprintf("%s%s", role_path, enc);
	rc = imds_get(p, h, base, path, &resp, err);
	if (rc)
		goto out;
	where = cm_xasprintf("%s (role %s)", base, name);
	rc = creds_from_json(&resp.body, "EC2 instance metadata", where, true,
			     SRC_IMDS, out, err);
	if (rc == 0)
		cm_debug("credentials: from EC2 instance metadata %s", where);
out:
	rc = not_absent(rc, err);
	cm_http_free(h);
	response_release(&resp);
	free(where);
	free(path);
	free(enc);
	free(role);
	free(base);
	return rc;
}

int aws_imds_get(struct aws_creds_provider *p, const char *path, char **out,
		 struct cm_err *err)
{
	struct cm_http_opts hopts = {
	    .connect_timeout_ms = IMDS_CONNECT_TIMEOUT_MS,
	    .total_timeout_ms = IMDS_TOTAL_TIMEOUT_MS,
	};
	struct cm_http_response resp;
	struct cm_http *h;
	char *base, *text, *item;
	int rc;

	*out = NULL;
	if (imds_disabled())
		return cm_err_set(err, ENOENT,
				  "disabled by AWS_EC2_METADATA_DISABLED");
	base = imds_base();
	response_init(&resp);
	h = cm_http_new(&hopts);
	pthread_mutex_lock(&p->lock); /* the token is shared */
	rc = imds_get(p, h, base, path, &resp, err);
	pthread_mutex_unlock(&p->lock);
	if (rc == 0) {
		text = cm_xstrdup(cm_buf_str(&resp.body));
		item = cm_xstrdup(trim(text));
		free(text);
		/* one word: a region, an id, a zone */
		if (!*item || strpbrk(item, " \r\n/")) {
			free(item);
			rc = cm_err_set(err, EIO, "EC2 instance metadata %s%s: "
					"malformed answer", base, path);
		} else {
			*out = item;
		}
	}
	cm_http_free(h);
	response_release(&resp);
	free(base);
	return rc;
}

int aws_imds_region(struct aws_creds_provider *p, char **out,
		    struct cm_err *err)
{
	char *region = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->imds_region) {
		/* an instance does not move: every client asks once */
		*out = cm_xstrdup(p->imds_region);
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	pthread_mutex_unlock(&p->lock);
	rc = aws_imds_get(p, "/latest/meta-data/placement/region", &region,
			  err);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	if (!p->imds_region)
		p->imds_region = cm_xstrdup(region);
	pthread_mutex_unlock(&p->lock);
	*out = region;
	return 0;
}

/* ---- roles, web identity and processes -------------------------------- */

/*
 * A static provider: hands out the credentials it was made with, never
 * refreshes them. The source credentials of an AssumeRole are signed with
 * through one.
 */
struct aws_creds_provider *
aws_creds_provider_new_static(const struct aws_creds *c)
{
	struct aws_creds_provider *p = aws_creds_provider_new(NULL);

	aws_creds_copy(&p->cur, c);
	p->have_cur = true;
	p->fixed = true;
	return p;
}

/* A session name for the role: "vaultfs-<unix time>" unless one is set. */
static void session_name(const char *given, char *out, size_t n)
{
	if (given && *given)
		snprintf(out, n, "%s", given);
	else
		snprintf(out, n, "vaultfs-%lld", (long long)time(NULL));
}

/*
 * One STS call that answers credentials (AssumeRole,
 * AssumeRoleWithWebIdentity): signed with `base`, or unsigned when base is
 * NULL (web identity needs no credentials). The region is the profile's,
 * else the environment's, else us-east-1, as the SDKs pick STS's; the
 * endpoint resolves as any service's (AWS_ENDPOINT_URL_STS...).
 */
static int sts_credentials(const char *profile, const struct aws_creds *base,
			   const char *action, const char *const *params,
			   size_t n, const char *source, struct aws_creds *out,
			   struct cm_err *err)
{
	struct aws_client_opts o = {.anonymous = base == NULL};
	struct aws_creds_provider *sp = NULL;
	struct aws_client *sts = NULL;
	struct cm_xml *root = NULL, *res, *cr;
	char from[64], result[64];
	char *region = aws_region_find(profile, from, sizeof(from));
	const char *id, *secret, *token, *exp;
	time_t expires;
	int rc;

	o.region = region ? region : "us-east-1";
	if (base) {
		sp = aws_creds_provider_new_static(base);
		o.creds = sp;
	}
	sts = aws_client_new(&aws_sts, &o, err);
	if (!sts) {
		rc = err ? -err->code : -EINVAL;
		goto out;
	}
	rc = aws_query(sts, action, params, n, &root, err);
	if (rc)
		goto out;
	snprintf(result, sizeof(result), "%sResult", action);
	res = cm_xml_child(root, result);
	cr = res ? cm_xml_child(res, "Credentials") : NULL;
	id = cr ? cm_xml_child_text(cr, "AccessKeyId") : NULL;
	secret = cr ? cm_xml_child_text(cr, "SecretAccessKey") : NULL;
	token = cr ? cm_xml_child_text(cr, "SessionToken") : NULL;
	exp = cr ? cm_xml_child_text(cr, "Expiration") : NULL;
	if (!id || !*id || !secret || !*secret || !exp ||
	    parse_expiration(exp, &expires) != 0) {
		rc = cm_err_set(err, EPROTO,
				"sts: %s: the answer lacks Credentials "
				"(AccessKeyId, SecretAccessKey, Expiration)",
				action);
		goto out;
	}
	creds_set(out, id, secret, token, expires, source);
out:
	cm_xml_free_secret(root);
	aws_client_free(sts);
	aws_creds_provider_free(sp);
	free(region);
	return rc;
}

/* AssumeRole with the profile's options, signed with base. */
static int assume_role(const struct profile_files *f, const char *profile,
		       const char *role_arn, const struct aws_creds *base,
		       struct aws_creds *out, struct cm_err *err)
{
	const char *ext = profile_get(f, profile, "external_id");
	const char *dur = profile_get(f, profile, "duration_seconds");
	const char *params[8];
	char name[80];
	size_t n = 0;
	int rc;

	if (dur && (strspn(dur, "0123456789") != strlen(dur) ||
		    atol(dur) < 900 || atol(dur) > 43200))
		return cm_err_set(err, EINVAL,
				  "profile %s: duration_seconds \"%.20s\" is "
				  "not a number of seconds from 900 to 43200",
				  profile, dur);
	session_name(profile_get(f, profile, "role_session_name"), name,
		     sizeof(name));
	params[n++] = "RoleArn";
	params[n++] = role_arn;
	params[n++] = "RoleSessionName";
	params[n++] = name;
	if (ext) {
		params[n++] = "ExternalId";
		params[n++] = ext;
	}
	if (dur) {
		params[n++] = "DurationSeconds";
		params[n++] = dur;
	}
	rc = sts_credentials(profile, base, "AssumeRole", params, n / 2,
			     SRC_ROLE, out, err);
	if (rc)
		cm_err_prefix(err, "profile %s: role %s", profile, role_arn);
	else
		cm_debug("credentials: profile %s: assumed role %s", profile,
			 role_arn);
	return rc;
}

/*
 * AssumeRoleWithWebIdentity with the token in token_file (read each time:
 * EKS rotates it). `what` names the set-up in messages: "web identity"
 * (the environment) or "profile NAME".
 */
static int web_identity(const char *what, const char *profile,
			const char *token_var, const char *token_file,
			const char *role_arn, const char *session,
			struct aws_creds *out, struct cm_err *err)
{
	const char *params[6];
	char name[80];
	char *text = NULL, *token;
	size_t len = 0;
	struct cm_err ferr;
	int rc;

	cm_err_clear(&ferr);
	rc = slurp(token_file, TOKEN_FILE_MAX, &text, &len, &ferr);
	if (rc)
		return cm_err_set(err, -rc == ENOENT ? EIO : -rc,
				  "%s: %s %s: %s", what, token_var, token_file,
				  strerror(-rc));
	token = trim(text);
	if (!*token) {
		free_text(text, len);
		return cm_err_set(err, EINVAL, "%s: %s %s: empty", what,
				  token_var, token_file);
	}
	session_name(session, name, sizeof(name));
	params[0] = "RoleArn";
	params[1] = role_arn;
	params[2] = "RoleSessionName";
	params[3] = name;
	params[4] = "WebIdentityToken";
	params[5] = token;
	rc = sts_credentials(profile, NULL, "AssumeRoleWithWebIdentity", params,
			     3, SRC_WEB, out, err);
	free_text(text, len);
	if (rc)
		cm_err_prefix(err, "%s: role %s", what, role_arn);
	else
		cm_debug("credentials: %s: assumed role %s", what, role_arn);
	return rc;
}

/* AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (EKS service accounts).
 * -ENOENT when neither is set. */
static int from_web_identity_env(const char *profile, struct aws_creds *out,
				 struct cm_err *err)
{
	const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = env("AWS_ROLE_ARN");

	if (!file && !role)
		return cm_err_set(err, ENOENT,
				  "web identity (AWS_WEB_IDENTITY_TOKEN_FILE "
				  "not set)");
	if (!file || !role)
		return cm_err_set(err, EINVAL, "web identity: %s is set but %s "
				  "is not",
				  file ? "AWS_WEB_IDENTITY_TOKEN_FILE"
				       : "AWS_ROLE_ARN",
				  file ? "AWS_ROLE_ARN"
				       : "AWS_WEB_IDENTITY_TOKEN_FILE");
	return not_absent(web_identity("web identity", profile,
				       "AWS_WEB_IDENTITY_TOKEN_FILE", file,
				       role, env("AWS_ROLE_SESSION_NAME"), out,
				       err),
			  err);
}

/* credential_source: where a role profile's base credentials come from. */
static int from_credential_source(struct aws_creds_provider *p,
				  const char *profile, const char *src,
				  struct aws_creds *out, struct cm_err *err)
{
	int rc;

	if (!strcmp(src, "Environment"))
		rc = from_env(out, err);
	else if (!strcmp(src, "Ec2InstanceMetadata"))
		rc = from_imds(p, out, err);
	else if (!strcmp(src, "EcsContainer"))
		rc = from_ecs(out, err);
	else
		return cm_err_set(err, EINVAL,
				  "profile %s: credential_source \"%.40s\": "
				  "use Environment, Ec2InstanceMetadata or "
				  "EcsContainer",
				  profile, src);
	if (rc)
		cm_err_prefix(err, "profile %s: credential_source %s", profile,
			      src);
	return rc == -ENOENT ? -EINVAL : rc;
}

/*
 * Split a command line as the AWS CLI does (a POSIX shell's words, without
 * the shell): blanks separate words, '...' is literal, "..." keeps $ ` and
 * newlines literal but lets \\ \" \$ \` escape, a backslash outside quotes
 * escapes the next character. No expansion of any kind. NULL-terminated
 * array into *argv (free each, then it); -EINVAL on an unterminated quote.
 */
static int split_command(const char *s, char ***argv, size_t *argc)
{
	struct cm_buf word;
	char **v = NULL;
	size_t n = 0;
	bool in_word = false;
	int rc = 0;

	cm_buf_init(&word, 0);
	for (;; s++) {
		if (*s == '\0' || *s == ' ' || *s == '\t' || *s == '\n') {
			if (in_word) {
				v = cm_xrealloc(v, (n + 2) * sizeof(*v));
				v[n++] = cm_xstrdup(cm_buf_str(&word));
				cm_buf_reset(&word);
				in_word = false;
			}
			if (*s == '\0')
				break;
			continue;
		}
		in_word = true;
		if (*s == '\\' && s[1]) {
			cm_buf_append(&word, ++s, 1);
		} else if (*s == '\'') {
			const char *end = strchr(s + 1, '\'');

			if (!end) {
				rc = -EINVAL;
				break;
			}
			cm_buf_append(&word, s + 1, (size_t)(end - s - 1));
			s = end;
		} else if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && s[1] && strchr("\\\"$`", s[1]))
					s++;
				cm_buf_append(&word, s, 1);
			}
			if (!*s) {
				rc = -EINVAL;
				break;
			}
		} else {
			cm_buf_append(&word, s, 1);
		}
	}
	cm_buf_release(&word);
	if (rc || !n) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc ? rc : -ENOENT;
	}
	v[n] = NULL;
	*argv = v;
	*argc = n;
	return 0;
}

/* Read what is there from fd into b (up to its cap); false at EOF. */
static bool drain(int fd, struct cm_buf *b)
{
	char chunk[4096];
	ssize_t r = read(fd, chunk, sizeof(chunk));

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (r <= 0)
		return false;
	(void)cm_buf_append(b, chunk, (size_t)r); /* past the cap: dropped */
	explicit_bzero(chunk, sizeof(chunk));
	return true;
}

/*
 * Run a credential_process command: no shell (the line is split as
 * split_command says), stdin /dev/null, stdout read as the credentials,
 * the first line of stderr kept for the message; killed after
 * process_timeout_s.
 */
static int run_process(const char *profile, const char *cmdline,
		       struct aws_creds *out, struct cm_err *err)
{
	posix_spawn_file_actions_t fa;
	struct cm_buf o, e;
	char **argv = NULL, where[96], line[256];
	size_t argc = 0;
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, status = 0, rc;
	bool open_o = true, open_e = true;
	double deadline = cm_now_s() + process_timeout_s;
	pid_t pid;

	snprintf(where, sizeof(where), "profile %s: credential_process",
		 profile);
	rc = split_command(cmdline, &argv, &argc);
	if (rc)
		return cm_err_set(err, EINVAL, "%s: %s", where,
				  rc == -ENOENT ? "empty command"
						: "unterminated quote");
	cm_buf_init(&o, BODY_MAX);
	cm_buf_init(&e, 4096);
	if (cm_buf_reserve(&o, BODY_RESERVE) != 0)
		abort(); /* the cap is larger than the reserve */
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
		rc = cm_err_set(err, errno, "%s: pipe: %s", where,
				strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (rc) {
		rc = cm_err_set(err, rc, "%s: %s: %s", where, argv[0],
				strerror(rc));
		goto out;
	}
	while (open_o || open_e) {
		struct pollfd fds[2] = {{.fd = open_o ? po[0] : -1,
					 .events = POLLIN},
					{.fd = open_e ? pe[0] : -1,
					 .events = POLLIN}};
		double left = deadline - cm_now_s();
		int r;

		if (left <= 0)
			break;
		r = poll(fds, 2, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (fds[0].revents)
			open_o = drain(po[0], &o);
		if (fds[1].revents)
			open_e = drain(pe[0], &e);
	}
	if (open_o || open_e) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		rc = cm_err_set(err, ETIMEDOUT, "%s: %s did not finish in %lld s",
				where, argv[0], (long long)process_timeout_s);
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	snprintf(line, sizeof(line), "%.*s",
		 (int)strcspn(cm_buf_str(&e), "\n"), cm_buf_str(&e));
	if (WIFSIGNALED(status)) {
		rc = cm_err_set(err, EIO, "%s killed by signal %d%s%s", where,
				WTERMSIG(status), line[0] ? ": " : "", line);
		goto out;
	}
	if (WEXITSTATUS(status) == 127 && !line[0]) {
		/* where spawning forks first, a failed exec shows only so */
		rc = cm_err_set(err, EIO, "%s exited 127: %s: not found or not "
				"executable", where, argv[0]);
		goto out;
	}
	if (WEXITSTATUS(status) != 0) {
		rc = cm_err_set(err, EIO, "%s exited %d%s%s", where,
				WEXITSTATUS(status), line[0] ? ": " : "", line);
		goto out;
	}
	rc = creds_from_json(&o, where, "output", false, SRC_PROCESS, out, err);
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	wipe(o.data, o.cap);
	cm_buf_release(&o);
	cm_buf_release(&e);
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

/* Most roles a profile may chain through source_profile. */
#define SOURCE_DEPTH_MAX 5

/*
 * One profile's credentials, in the SDKs' order: a role (role_arn, with
 * source_profile, credential_source or web_identity_token_file), static
 * keys, credential_process. keys_only: static keys alone (a profile that
 * names itself as its source_profile). -ENOENT: the profile has none.
 */
static int profile_creds(struct aws_creds_provider *p,
			 const struct profile_files *f, const char *profile,
			 unsigned depth, bool keys_only, struct aws_creds *out,
			 struct cm_err *err)
{
	const char *role = profile_get(f, profile, "role_arn");
	const char *proc = profile_get(f, profile, "credential_process");
	int rc;

	if (role && !keys_only) {
		const char *sp = profile_get(f, profile, "source_profile");
		const char *cs = profile_get(f, profile, "credential_source");
		const char *wi =
		    profile_get(f, profile, "web_identity_token_file");
		struct aws_creds base = {0};

		if (profile_get(f, profile, "mfa_serial"))
			return cm_err_set(err, EINVAL,
					  "profile %s: mfa_serial needs a code "
					  "typed in, which vaultfs cannot ask "
					  "for",
					  profile);
		if (!!sp + !!cs + !!wi != 1)
			return cm_err_set(err, EINVAL,
					  "profile %s: role_arn needs exactly "
					  "one of source_profile, "
					  "credential_source and "
					  "web_identity_token_file",
					  profile);
		if (wi) {
			char what[96];

			snprintf(what, sizeof(what), "profile %s", profile);
			return not_absent(
			    web_identity(what, profile,
					 "web_identity_token_file", wi, role,
					 profile_get(f, profile,
						     "role_session_name"),
					 out, err),
			    err);
		}
		if (cs) {
			rc = from_credential_source(p, profile, cs, &base, err);
		} else if (depth >= SOURCE_DEPTH_MAX) {
			rc = cm_err_set(err, EINVAL,
					"profile %s: source_profile chain "
					"longer than %d profiles (a loop?)",
					profile, SOURCE_DEPTH_MAX);
		} else {
			rc = profile_creds(p, f, sp, depth + 1,
					   !strcmp(sp, profile), &base, err);
			if (rc == -ENOENT)
				rc = cm_err_set(err, EINVAL,
						"profile %s: source_profile "
						"%s has no credentials",
						profile, sp);
		}
		if (!rc)
			rc = assume_role(f, profile, role, &base, out, err);
		aws_creds_release(&base);
		return not_absent(rc, err);
	}
	if (f->cpath) {
		rc = creds_from_section(&f->cred, profile, f->cpath, out, err);
		if (rc != -ENOENT)
			return rc;
	}
	if (f->fpath) {
		rc = creds_from_section(&f->conf, profile, f->fpath, out, err);
		if (rc != -ENOENT)
			return rc;
	}
	if (proc && !keys_only)
		return not_absent(run_process(profile, proc, out, err), err);
	if (profile_get(f, profile, "sso_session") ||
	    profile_get(f, profile, "sso_start_url"))
		return cm_err_set(err, EINVAL,
				  "profile %s uses AWS IAM Identity Center "
				  "(sso_session), which vaultfs does not "
				  "support: give it a role_arn, "
				  "credential_process or keys",
				  profile);
	return -ENOENT;
}

/* ---- the chain and the provider --------------------------------------- */

static void add_note(struct cm_buf *tried, const struct cm_err *note)
{
	if (tried->len)
		cm_buf_puts(tried, "; ");
	cm_buf_puts(tried, note->msg);
}

/*
 * Walk the chain. A source that has nothing adds a note to the list of
 * what was tried; a source that is set up but broken ends the walk with
 * its own error. Called with ->lock held.
 */
static int resolve_chain(struct aws_creds_provider *p, struct aws_creds *out,
			 struct cm_err *err)
{
	struct cm_buf tried;
	struct cm_err note;
	const char *step = "environment";
	int rc;

	cm_buf_init(&tried, 0);
	cm_err_clear(&note);
	/* a profile named outright means that profile, as in the SDKs (the
	 * AWS CLI's --profile): the environment's keys are not looked at */
	if (p->profile_given)
		rc = cm_err_set(&note, ENOENT,
				"environment (not used: profile %s named)",
				p->profile);
	else
		rc = from_env(out, &note);
	if (rc != -ENOENT)
		goto out;
	add_note(&tried, &note);

	step = "profile";
	rc = from_profile(p, p->profile, p->profile_explicit, out, &note);
	if (rc != -ENOENT)
		goto out;
	add_note(&tried, &note);

	step = "AWS_WEB_IDENTITY_TOKEN_FILE";
	rc = from_web_identity_env(p->profile, out, &note);
	if (rc != -ENOENT)
		goto out;
	add_note(&tried, &note);

	step = "ECS container endpoint";
	rc = from_ecs(out, &note);
	if (rc != -ENOENT)
		goto out;
	add_note(&tried, &note);

	if (imds_disabled()) {
		cm_err_set(&note, ENOENT,
			   "EC2 instance metadata (disabled by "
			   "AWS_EC2_METADATA_DISABLED)");
	} else {
		/* any failure here is a note: most machines are not EC2 */
		step = "EC2 instance metadata";
		rc = from_imds(p, out, &note);
		if (rc == 0)
			goto out;
	}
	add_note(&tried, &note);
	rc = cm_err_set(&note, ENOKEY, "no AWS credentials found; tried %s",
			cm_buf_str(&tried));
out:
	if (rc == 0 && step[0] == 'p')
		snprintf(p->origin, sizeof(p->origin), "profile %s", p->profile);
	else if (rc == 0)
		snprintf(p->origin, sizeof(p->origin), "%s", step);
	if (rc && err)
		*err = note;
	cm_buf_release(&tried);
	return rc;
}

/* New credentials from the source the current ones came from. */
static int refresh(struct aws_creds_provider *p, struct aws_creds *out,
		   struct cm_err *err)
{
	if (p->cur.source == SRC_ECS)
		return from_ecs(out, err);
	if (p->cur.source == SRC_IMDS)
		return from_imds(p, out, err);
	return resolve_chain(p, out, err);
}

static bool needs_refresh(const struct aws_creds *c, time_t now)
{
	return c->expires != 0 && now >= c->expires - REFRESH_MARGIN_S;
}

struct aws_creds_provider *
aws_creds_provider_new(const struct aws_creds_opts *opts)
{
	struct aws_creds_provider *p = cm_xcalloc(1, sizeof(*p));
	const char *name = opts ? opts->profile : NULL;

	if (name && !*name)
		name = NULL;
	p->profile_given = name != NULL;
	if (!name)
		name = env("AWS_PROFILE");
	p->profile_explicit = name != NULL;
	p->profile = cm_xstrdup(name ? name : "default");
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void aws_creds_origin(struct aws_creds_provider *p, char *out, size_t n)
{
	pthread_mutex_lock(&p->lock);
	snprintf(out, n, "%s", p->fixed ? "given" : p->origin);
	pthread_mutex_unlock(&p->lock);
}

void aws_creds_provider_free(struct aws_creds_provider *p)
{
	if (!p)
		return;
	aws_creds_release(&p->cur);
	imds_drop_token(p);
	free(p->imds_region);
	pthread_mutex_destroy(&p->lock);
	free(p->profile);
	free(p);
}

int aws_creds_get(struct aws_creds_provider *p, struct aws_creds *out,
		  struct cm_err *err)
{
	struct aws_creds fresh = {0};
	struct cm_err ferr;
	char when[32];
	time_t now;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	cm_err_clear(&ferr);
	pthread_mutex_lock(&p->lock);
	now = time(NULL);
	if (p->have_cur && (p->fixed || !needs_refresh(&p->cur, now)))
		goto copy;
	if (p->have_cur && now < p->cur.expires && now < p->retry_after)
		goto copy; /* refreshed or failed a moment ago */
	rc = p->have_cur ? refresh(p, &fresh, &ferr)
			 : resolve_chain(p, &fresh, &ferr);
	if (rc == 0) {
		aws_creds_release(&p->cur);
		p->cur = fresh;
		p->have_cur = true;
		p->retry_after =
		    needs_refresh(&p->cur, now) ? now + retry_interval_s : 0;
		goto copy;
	}
	if (p->have_cur && now < p->cur.expires) {
		cm_time_iso8601(p->cur.expires, when, sizeof(when));
		cm_warn("credentials: refresh failed (%s); the current ones "
			"stay in use until %s",
			ferr.msg, when);
		p->retry_after = now + retry_interval_s;
		rc = 0;
		goto copy;
	}
	if (err)
		*err = ferr;
	goto out;
copy:
	aws_creds_copy(out, &p->cur);
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}
