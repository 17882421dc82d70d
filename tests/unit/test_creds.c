/*
 * test_creds.c - the credential chain (aws_creds.c): environment, shared
 * files and profiles, the ECS container endpoint and IMDSv2, their order,
 * refresh before expiry, region resolution, and errors that list what was
 * tried without leaking a secret.
 *
 * The module is included whole (UNITTEST, curl's way) to reach its INI
 * parser, its URL checks and its knobs (the ECS relative-URI host and the
 * pause between refreshes). ECS and IMDS are served by
 * tests/tools/metadata_server.py, started per test on an ephemeral port and
 * stopped by pid in the teardown; it also exits when our end of its stdin
 * closes, so a crashed test leaves nothing behind.
 *
 * Every test starts from a clean environment: no AWS_* variables, HOME a
 * fresh temporary directory, and AWS_EC2_METADATA_DISABLED=true so that
 * nothing ever talks to a real 169.254.169.254.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/aws_creds.c"

#define SERVER_SCRIPT	   VAULTFS_TEST_DATA "/../tools/metadata_server.py"
#define ECS_PATH	   "/v2/credentials/test"
#define ROLE_PATH_FOR_TEST "/latest/meta-data/iam/security-credentials/"

struct server {
	pid_t pid;    /* 0 when not running */
	int stdin_fd; /* our end of its stdin */
	int port;
	char base[64]; /* "http://127.0.0.1:PORT" */
};

struct fixture {
	char home[64];
	struct server srv;
};

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
};

/* ---- fixture ----------------------------------------------------------- */

static int setup(void **state)
{
	struct fixture *f = cm_xcalloc(1, sizeof(*f));
	char aws[96];

	for (size_t i = 0; i < sizeof(aws_vars) / sizeof(aws_vars[0]); i++)
		unsetenv(aws_vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	snprintf(f->home, sizeof(f->home), "/tmp/vaultfs-creds-XXXXXX");
	if (!mkdtemp(f->home))
		return -1;
	setenv("HOME", f->home, 1);
	snprintf(aws, sizeof(aws), "%s/.aws", f->home);
	if (mkdir(aws, 0700) != 0)
		return -1;
	retry_interval_s = RETRY_INTERVAL_S;
	ecs_relative_host = "http://169.254.170.2";
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void server_stop(struct server *s)
{
	int status;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	close(s->stdin_fd);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	server_stop(&f->srv);
	nftw(f->home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static void write_home_file(struct fixture *f, const char *name,
			    const char *text)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/.aws/%s", f->home, name);
	write_file(path, text);
}

/*
 * Start the metadata server with extra arguments (NULL-terminated) and
 * read its "PORT n" line.
 */
static void server_start(struct server *s, ...)
{
	const char *argv[32];
	int out[2], in[2];
	char line[64];
	size_t got = 0;
	int argc = 0;
	va_list ap;

	argv[argc++] = "python3";
	argv[argc++] = SERVER_SCRIPT;
	argv[argc++] = "--watch-stdin";
	va_start(ap, s);
	for (const char *a; (a = va_arg(ap, const char *)) && argc < 31;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(in[0]);
	s->stdin_fd = in[1];
	while (got < sizeof(line) - 1 && (got == 0 || line[got - 1] != '\n')) {
		struct pollfd pfd = {.fd = out[0], .events = POLLIN};
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 15000), 1);
		n = read(out[0], line + got, 1);
		assert_true(n == 1);
		got++;
	}
	line[got] = '\0';
	close(out[0]);
	assert_int_equal(sscanf(line, "PORT %d", &s->port), 1);
	snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
}

/* One counter from the server's GET /_stats. */
static long server_stat(struct server *s, const char *key)
{
	struct cm_http *h = cm_http_new(NULL);
	struct cm_http_request req = {.method = "GET"};
	struct cm_http_response resp;
	struct cm_json *root = NULL;
	char *url = cm_xasprintf("%s/_stats", s->base);
	long v;

	cm_http_response_init(&resp, 1 << 16);
	req.url = url;
	assert_int_equal(cm_http_perform(h, &req, &resp, NULL), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(
	    cm_json_parse(resp.body.data, resp.body.len, &root, NULL), 0);
	assert_non_null(cm_json_get(root, key));
	v = (long)cm_json_num(cm_json_get(root, key));
	cm_json_free(root);
	cm_http_response_release(&resp);
	cm_http_free(h);
	free(url);
	return v;
}

/* A plain request to the server, to see what it demands; the status. */
static long server_request(struct server *s, const char *method,
			   const char *path, const char *header)
{
	struct cm_http *h = cm_http_new(NULL);
	struct cm_http_request req = {.method = method};
	struct cm_http_response resp;
	char *url = cm_xasprintf("%s%s", s->base, path);
	long status;

	cm_http_response_init(&resp, 1 << 16);
	req.url = url;
	if (header) {
		req.headers = &header;
		req.nheaders = 1;
	}
	assert_int_equal(cm_http_perform(h, &req, &resp, NULL), 0);
	status = resp.status;
	cm_http_response_release(&resp);
	cm_http_free(h);
	free(url);
	return status;
}

static void use_imds(struct server *s)
{
	char *ep = cm_xasprintf("%s/", s->base); /* trailing '/' is fine */

	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
	free(ep);
}

/* Get credentials from a fresh provider with default options. */
static int get_once(struct aws_creds *c, struct cm_err *err)
{
	struct aws_creds_provider *p = aws_creds_provider_new(NULL);
	int rc = aws_creds_get(p, c, err);

	aws_creds_provider_free(p);
	return rc;
}

#define assert_no_substr(hay, needle) assert_null(strstr((hay), (needle)))
#define assert_substr(hay, needle)    assert_non_null(strstr((hay), (needle)))

/* ---- parsing ----------------------------------------------------------- */

static void test_ini_credentials_syntax(void **state)
{
	char text[] = "# comment\n"
		      "; another comment\n"
		      "[default]\n"
		      "  aws_access_key_id   =   AKID1  \n"
		      "aws_secret_access_key\t=\tse#cret ; a note\n"
		      "[ work ]\r\n"
		      "aws_access_key_id=AKID2\r\n"
		      "s3 =\n"
		      "  region = nested\n"
		      "  max_concurrent_requests = 4\n"
		      "region = eu-west-1 # where\n"
		      "no equals sign here\n"
		      "[broken\n"
		      "aws_access_key_id = lost\n"
		      "[default]\n"
		      "AWS_SESSION_TOKEN = tok\n";
	struct ini ini = {0};

	(void)state;
	ini_parse(&ini, text, INI_CREDENTIALS, "test");
	assert_string_equal(ini_get(&ini, "default", "aws_access_key_id"),
			    "AKID1");
	assert_string_equal(ini_get(&ini, "default", "aws_secret_access_key"),
			    "se#cret");
	/* a repeated section adds to the first; keys ignore case */
	assert_string_equal(ini_get(&ini, "default", "aws_session_token"),
			    "tok");
	assert_string_equal(ini_get(&ini, "work", "aws_access_key_id"),
			    "AKID2");
	assert_string_equal(ini_get(&ini, "work", "s3"), "");
	assert_string_equal(ini_get(&ini, "work", "region"), "eu-west-1");
	assert_null(ini_get(&ini, "work", "max_concurrent_requests"));
	assert_false(ini_has_section(&ini, "broken"));
	assert_null(ini_get(&ini, "default", "no equals sign here"));
	ini_release(&ini);
}

static void test_ini_config_sections(void **state)
{
	char text[] = "[default]\n"
		      "region = us-east-1\n"
		      "[profile dev]\n"
		      "region=eu-central-1\n"
		      "[profile   spaced  ]\n"
		      "region = ap-south-1\n"
		      "[sso-session corp]\n"
		      "sso_region = us-west-2\n"
		      "[ops]\n"
		      "region = not-a-profile\n";
	struct ini ini = {0};

	(void)state;
	ini_parse(&ini, text, INI_CONFIG, "test");
	assert_string_equal(ini_get(&ini, "default", "region"), "us-east-1");
	assert_string_equal(ini_get(&ini, "dev", "region"), "eu-central-1");
	assert_string_equal(ini_get(&ini, "spaced", "region"), "ap-south-1");
	assert_false(ini_has_section(&ini, "corp"));
	assert_false(ini_has_section(&ini, "sso-session corp"));
	assert_false(ini_has_section(&ini, "ops")); /* needs "profile " */
	ini_release(&ini);
}

static void test_url_helpers(void **state)
{
	char *d;

	(void)state;
	d = describe_url("http://user:pw@127.0.0.1:9/a/b?x=secret#frag");
	assert_string_equal(d, "http://127.0.0.1:9/a/b");
	free(d);
	d = describe_url("http://169.254.170.2/v2/credentials/abc");
	assert_string_equal(d, "http://169.254.170.2/v2/credentials/abc");
	free(d);

	assert_true(full_uri_allowed("http://127.0.0.1:8080/creds"));
	assert_true(full_uri_allowed("http://127.1.2.3/creds"));
	assert_true(full_uri_allowed("http://LOCALHOST/creds"));
	assert_true(full_uri_allowed("http://[::1]:9/creds"));
	assert_true(full_uri_allowed("http://169.254.170.2/creds"));
	assert_true(full_uri_allowed("http://169.254.170.23/v1/credentials"));
	assert_true(full_uri_allowed("https://creds.example.com/x"));
	assert_true(full_uri_allowed("http://u@127.0.0.1/x"));
	assert_false(full_uri_allowed("http://creds.example.com/x"));
	assert_false(full_uri_allowed("http://127.0.0.1.example.com/x"));
	assert_false(full_uri_allowed("http://127.0.0.1@example.com/x"));
	assert_false(full_uri_allowed("ftp://127.0.0.1/x"));
}

static void test_slurp(void **state)
{
	struct fixture *f = *state;
	char path[160], *text;
	struct cm_err err;
	size_t len;

	snprintf(path, sizeof(path), "%s/small", f->home);
	write_file(path, "abc\n");
	assert_int_equal(slurp(path, 16, &text, &len, &err), 0);
	assert_int_equal(len, 4);
	assert_string_equal(text, "abc\n");
	free_text(text, len);

	assert_int_equal(slurp(path, 3, &text, &len, &err), -EFBIG);
	assert_null(text);
	snprintf(path, sizeof(path), "%s/nothere", f->home);
	assert_int_equal(slurp(path, 16, &text, &len, &err), -ENOENT);
	assert_substr(err.msg, path);

	/* something that is not a regular file is capped while read */
	assert_int_equal(slurp("/dev/zero", 64, &text, &len, &err), -EFBIG);
}

static void test_copy_release(void **state)
{
	struct aws_creds a = {0}, b = {0};

	(void)state;
	creds_set(&a, "AKID", "SECRET", NULL, 42, SRC_ENV);
	aws_creds_copy(&b, &a);
	aws_creds_release(&a);
	assert_null(a.access_key_id);
	assert_string_equal(b.access_key_id, "AKID");
	assert_string_equal(b.secret_access_key, "SECRET");
	assert_null(b.session_token);
	assert_int_equal(b.expires, 42);
	assert_string_equal(b.source, "environment");
	aws_creds_release(&b);
	aws_creds_release(&b); /* released twice is harmless */
	aws_creds_release(NULL);
}

/* ---- 1. environment ---------------------------------------------------- */

static void test_env(void **state)
{
	struct aws_creds c;
	struct cm_err err;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(get_once(&c, &err), 0);
	assert_string_equal(c.source, "environment");
	assert_string_equal(c.access_key_id, "AKIDENV");
	assert_string_equal(c.secret_access_key, "envsecret");
	assert_null(c.session_token);
	assert_int_equal(c.expires, 0);
	aws_creds_release(&c);

	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	assert_int_equal(get_once(&c, &err), 0);
	assert_string_equal(c.session_token, "envtoken");
	aws_creds_release(&c);
}

static void test_env_partial(void **state)
{
	struct aws_creds c;
	struct cm_err err;

	setenv("AWS_SECRET_ACCESS_KEY", "lonelysecret", 1);
	/* a usable profile does not hide a half-set environment */
	write_home_file(*state, "credentials",
			"[default]\naws_access_key_id=A\n"
			"aws_secret_access_key=B\n");
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "AWS_ACCESS_KEY_ID");
	assert_no_substr(err.msg, "lonelysecret");
	assert_null(c.access_key_id);
}

static void test_env_wins_over_files(void **state)
{
	struct aws_creds c;

	write_home_file(*state, "credentials",
			"[default]\naws_access_key_id = AKIDFILE\n"
			"aws_secret_access_key = filesecret\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "environment");
	assert_string_equal(c.access_key_id, "AKIDENV");
	aws_creds_release(&c);

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "profile");
	assert_string_equal(c.access_key_id, "AKIDFILE");
	aws_creds_release(&c);
}

/* ---- 2. shared files --------------------------------------------------- */

static const char two_profiles[] = "[default]\n"
				   "aws_access_key_id = AKIDDEFAULT\n"
				   "aws_secret_access_key = defaultsecret\n"
				   "\n"
				   "[work]\n"
				   "aws_access_key_id = AKIDWORK\n"
				   "aws_secret_access_key = worksecret\n"
				   "aws_session_token = worktoken\n"
				   "\n"
				   "[other]\n"
				   "aws_access_key_id = AKIDOTHER\n"
				   "aws_secret_access_key = othersecret\n";

static void test_profile_default(void **state)
{
	struct aws_creds c;

	write_home_file(*state, "credentials", two_profiles);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "profile");
	assert_string_equal(c.access_key_id, "AKIDDEFAULT");
	assert_string_equal(c.secret_access_key, "defaultsecret");
	assert_null(c.session_token);
	assert_int_equal(c.expires, 0);
	aws_creds_release(&c);
}

static void test_profile_from_env_and_opts(void **state)
{
	struct aws_creds_opts opts = {.profile = "other"};
	struct aws_creds_provider *p;
	struct aws_creds c;

	write_home_file(*state, "credentials", two_profiles);
	setenv("AWS_PROFILE", "work", 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDWORK");
	assert_string_equal(c.secret_access_key, "worksecret");
	assert_string_equal(c.session_token, "worktoken");
	aws_creds_release(&c);

	/* the option wins over AWS_PROFILE */
	p = aws_creds_provider_new(&opts);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDOTHER");
	aws_creds_release(&c);
	aws_creds_provider_free(p);

	/* and over the environment's keys, which AWS_PROFILE does not */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	p = aws_creds_provider_new(&opts);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDOTHER");
	aws_creds_release(&c);
	aws_creds_provider_free(p);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDENV");
	aws_creds_release(&c);
}

static void test_config_file_profile(void **state)
{
	struct aws_creds c;

	write_home_file(*state, "config",
			"[default]\n"
			"region = us-east-1\n"
			"[profile cfg]\n"
			"region = eu-west-3\n"
			"aws_access_key_id = AKIDCONFIG\n"
			"aws_secret_access_key = configsecret\n"
			"[profile both]\n"
			"aws_access_key_id = AKIDBOTHCONFIG\n"
			"aws_secret_access_key = bothconfigsecret\n"
			"aws_session_token = configtoken\n");
	write_home_file(*state, "credentials",
			"[both]\n"
			"aws_access_key_id = AKIDBOTHCREDS\n"
			"aws_secret_access_key = bothcredssecret\n");

	setenv("AWS_PROFILE", "cfg", 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "profile");
	assert_string_equal(c.access_key_id, "AKIDCONFIG");
	assert_string_equal(c.secret_access_key, "configsecret");
	aws_creds_release(&c);

	/* credentials file wins, and keys are never mixed across files */
	setenv("AWS_PROFILE", "both", 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDBOTHCREDS");
	assert_string_equal(c.secret_access_key, "bothcredssecret");
	assert_null(c.session_token);
	aws_creds_release(&c);
}

static void test_file_overrides(void **state)
{
	struct fixture *f = *state;
	char dir[128], cpath[160], fpath[160];
	struct aws_creds c;
	char *region;

	write_home_file(f, "credentials", two_profiles);
	write_home_file(f, "config", "[default]\nregion = us-east-1\n");
	snprintf(dir, sizeof(dir), "%s/elsewhere", f->home);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(cpath, sizeof(cpath), "%s/creds.ini", dir);
	snprintf(fpath, sizeof(fpath), "%s/config.ini", dir);
	write_file(cpath, "[default]\naws_access_key_id = AKIDELSEWHERE\n"
			  "aws_secret_access_key = elsewheresecret\n");
	write_file(fpath, "[default]\nregion = sa-east-1\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", cpath, 1);
	setenv("AWS_CONFIG_FILE", fpath, 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDELSEWHERE");
	aws_creds_release(&c);
	region = aws_region_resolve(NULL);
	assert_string_equal(region, "sa-east-1");
	free(region);

	/* "~/" in the variable is HOME */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere/creds.ini", 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDELSEWHERE");
	aws_creds_release(&c);
}

static void test_profile_errors(void **state)
{
	struct aws_creds c;
	struct cm_err err;

	write_home_file(*state, "credentials",
			"[default]\naws_access_key_id = AKIDX\n"
			"aws_secret_access_key = xsecret\n"
			"[half]\naws_secret_access_key = halfsecret\n"
			"[role]\nrole_arn = arn:aws:iam::1:role/r\n"
			"[mfa]\nrole_arn = arn:aws:iam::1:role/r\n"
			"source_profile = default\nmfa_serial = x\n"
			"[loop]\nrole_arn = arn:aws:iam::1:role/r\n"
			"source_profile = loop2\n"
			"[loop2]\nrole_arn = arn:aws:iam::1:role/r\n"
			"source_profile = loop\n"
			"[nosrc]\nrole_arn = arn:aws:iam::1:role/r\n"
			"source_profile = empty\n[empty]\nregion = x\n"
			"[cs]\nrole_arn = arn:aws:iam::1:role/r\n"
			"credential_source = Somewhere\n"
			"[webp]\nrole_arn = arn:aws:iam::1:role/r\n"
			"web_identity_token_file = /nonexistent/t\n"
			"[sso]\nsso_session = corp\n");

	/* a profile asked for by name must exist */
	setenv("AWS_PROFILE", "missing", 1);
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "profile \"missing\" not found");
	assert_substr(err.msg, "/.aws/credentials");
	assert_substr(err.msg, "/.aws/config (missing)");

	setenv("AWS_PROFILE", "half", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "profile \"half\"");
	assert_substr(err.msg, "no aws_access_key_id");
	assert_no_substr(err.msg, "halfsecret");

	/* roles that cannot be assumed fail before any request */
	setenv("AWS_PROFILE", "role", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "role_arn needs exactly one of source_profile");
	assert_no_substr(err.msg, "xsecret");
	setenv("AWS_PROFILE", "mfa", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "profile mfa: mfa_serial");
	setenv("AWS_PROFILE", "loop", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "source_profile chain longer than 5");
	setenv("AWS_PROFILE", "nosrc", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "profile nosrc: source_profile empty has no "
			       "credentials");
	setenv("AWS_PROFILE", "cs", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "credential_source \"Somewhere\": use "
			       "Environment");
	setenv("AWS_PROFILE", "webp", 1);
	assert_int_equal(get_once(&c, &err), -EIO);
	assert_string_equal(err.msg, "profile webp: web_identity_token_file "
				     "/nonexistent/t: No such file or "
				     "directory");
	setenv("AWS_PROFILE", "sso", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "IAM Identity Center");
	/* web identity from the environment names the missing half */
	setenv("AWS_PROFILE", "empty", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "web identity: AWS_ROLE_ARN is set but "
			       "AWS_WEB_IDENTITY_TOKEN_FILE is not");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	assert_int_equal(get_once(&c, &err), -EIO);
	assert_substr(err.msg, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE "
			       "/nonexistent/token: No such file or directory");
}

/* credential_process: split without a shell, run, read, time out. */
static void test_split_command(void **state)
{
	char **v;
	size_t n;

	(void)state;
	assert_int_equal(split_command("  a 'b c'  \"d \\\" $e\" f\\ g h'i'\"j\"",
				       &v, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(v[4], "hij");
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b c");
	assert_string_equal(v[2], "d \" $e");
	assert_string_equal(v[3], "f g");
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	assert_int_equal(split_command("x 'open", &v, &n), -EINVAL);
	assert_int_equal(split_command("x \"open", &v, &n), -EINVAL);
	assert_int_equal(split_command("   ", &v, &n), -ENOENT);
}

static void test_process(void **state)
{
	struct fixture *f = *state;
	struct aws_creds c;
	struct cm_err err;
	time_t t;
	char text[2048];

	snprintf(text, sizeof(text),
		 "[profile good]\ncredential_process = sh -c 'echo "
		 "\"{\\\"Version\\\": 1, \\\"AccessKeyId\\\": \\\"AKPROC\\\", "
		 "\\\"SecretAccessKey\\\": \\\"procsecret\\\", "
		 "\\\"SessionToken\\\": \\\"tok\\\", \\\"Expiration\\\": "
		 "\\\"2099-01-02T03:04:05+00:00\\\"}\"'\n"
		 "[profile fails]\ncredential_process = sh -c "
		 "'echo first line >&2; echo second >&2; exit 3'\n"
		 "[profile notjson]\ncredential_process = echo procsecret\n"
		 "[profile v2]\ncredential_process = echo "
		 "'{\"Version\":2,\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"b\"}'\n"
		 "[profile missing]\ncredential_process = /nonexistent/helper\n"
		 "[profile slow]\ncredential_process = sleep 30\n");
	write_home_file(f, "config", text);

	setenv("AWS_PROFILE", "good", 1);
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), 0);
	assert_string_equal(c.access_key_id, "AKPROC");
	assert_string_equal(c.secret_access_key, "procsecret");
	assert_string_equal(c.session_token, "tok");
	assert_string_equal(c.source, "credential_process");
	assert_int_equal(cm_time_parse_iso8601("2099-01-02T03:04:05Z", &t), 0);
	assert_int_equal(c.expires, t);
	aws_creds_release(&c);

	setenv("AWS_PROFILE", "fails", 1);
	assert_int_equal(get_once(&c, &err), -EIO);
	assert_string_equal(err.msg, "profile fails: credential_process "
				     "exited 3: first line");
	setenv("AWS_PROFILE", "notjson", 1);
	assert_int_equal(get_once(&c, &err), -EIO);
	assert_substr(err.msg, "profile notjson: credential_process");
	assert_substr(err.msg, "not JSON");
	assert_no_substr(err.msg, "procsecret");
	setenv("AWS_PROFILE", "v2", 1);
	assert_int_equal(get_once(&c, &err), -EIO);
	assert_substr(err.msg, "Version is not 1");
	setenv("AWS_PROFILE", "missing", 1);
	assert_true(get_once(&c, &err) < 0);
	/* posix_spawnp says ENOENT, or (where it forks first, as under
	 * valgrind) the child exits 127 */
	assert_substr(err.msg, "profile missing: credential_process");
	assert_substr(err.msg, "/nonexistent/helper: ");
	setenv("AWS_PROFILE", "slow", 1);
	process_timeout_s = 1;
	assert_int_equal(get_once(&c, &err), -ETIMEDOUT);
	process_timeout_s = PROCESS_TIMEOUT_S;
	assert_substr(err.msg, "sleep did not finish in 1 s");
}

/* The region of the instance, from IMDSv2, when nothing names one. */
static void test_imds_region(void **state)
{
	struct fixture *f = *state;
	struct aws_creds_provider *p = aws_creds_provider_new(NULL);
	struct cm_err err;
	char *r = NULL;

	cm_err_clear(&err);
	assert_int_equal(aws_imds_region(p, &r, &err), -ENOENT);
	assert_substr(err.msg, "AWS_EC2_METADATA_DISABLED");
	server_start(&f->srv, "--region", "eu-central-2", NULL);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f->srv.base, 1);
	assert_int_equal(aws_imds_region(p, &r, &err), 0);
	assert_string_equal(r, "eu-central-2");
	free(r);
	/* kept: a second client asks nothing */
	assert_int_equal(aws_imds_region(p, &r, &err), 0);
	assert_string_equal(r, "eu-central-2");
	free(r);
	assert_int_equal(server_stat(&f->srv, "imds_region"), 1);
	aws_creds_provider_free(p);
}

/* The instance's id and zone (the EBS volume method), with one token for
 * both; a missing item is ENODATA, not a malformed answer. */
static void test_imds_items(void **state)
{
	struct fixture *f = *state;
	struct aws_creds_provider *p = aws_creds_provider_new(NULL);
	struct cm_err err;
	char *v = NULL;

	cm_err_clear(&err);
	server_start(&f->srv, "--instance-id", "i-0123456789abcdef0",
		     "--availability-zone", "eu-central-2b", NULL);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f->srv.base, 1);
	assert_int_equal(aws_imds_get(p, "/latest/meta-data/instance-id", &v,
				      &err), 0);
	assert_string_equal(v, "i-0123456789abcdef0");
	free(v);
	assert_int_equal(aws_imds_get(p, "/latest/meta-data/placement/"
				      "availability-zone", &v, &err), 0);
	assert_string_equal(v, "eu-central-2b");
	free(v);
	assert_int_equal(server_stat(&f->srv, "imds_token"), 1);
	assert_int_equal(aws_imds_get(p, "/latest/meta-data/placement/region",
				      &v, &err), -ENODATA);
	assert_null(v);
	assert_substr(err.msg, "HTTP 404");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(aws_imds_get(p, "/latest/meta-data/instance-id", &v,
				      &err), -ENOENT);
	aws_creds_provider_free(p);
}

static void test_nothing_found(void **state)
{
	struct aws_creds c;
	struct cm_err err;

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), -ENOKEY);
	assert_false(err.retryable);
	assert_substr(err.msg, "no AWS credentials found");
	assert_substr(err.msg, "environment (AWS_ACCESS_KEY_ID not set)");
	assert_substr(err.msg, "profile \"default\" not found");
	assert_substr(err.msg, "ECS container endpoint (");
	assert_substr(err.msg, "EC2 instance metadata (disabled");
	assert_null(c.access_key_id);

	/* IMDS tried for real: nobody listens on port 1 */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	assert_int_equal(get_once(&c, &err), -ENOKEY);
	assert_substr(err.msg, "EC2 instance metadata");
	assert_substr(err.msg, "http://127.0.0.1:1/latest/api/token");

	/* a default profile without keys is a note, not an error */
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	write_home_file(*state, "config", "[default]\nregion = us-east-1\n");
	assert_int_equal(get_once(&c, &err), -ENOKEY);
	assert_substr(err.msg, "profile \"default\" has no aws_access_key_id");
}

static void test_region(void **state)
{
	char *r;

	write_home_file(*state, "config",
			"[default]\nregion = us-east-1\n"
			"[profile dev]\nregion = eu-central-1\n");
	r = aws_region_resolve(NULL);
	assert_string_equal(r, "us-east-1");
	free(r);
	r = aws_region_resolve("dev");
	assert_string_equal(r, "eu-central-1");
	free(r);
	setenv("AWS_PROFILE", "dev", 1);
	r = aws_region_resolve(NULL);
	assert_string_equal(r, "eu-central-1");
	free(r);
	assert_null(aws_region_resolve("nosuch"));

	setenv("AWS_DEFAULT_REGION", "ap-northeast-1", 1);
	r = aws_region_resolve("dev");
	assert_string_equal(r, "ap-northeast-1");
	free(r);
	setenv("AWS_REGION", "", 1); /* empty counts as unset */
	r = aws_region_resolve("dev");
	assert_string_equal(r, "ap-northeast-1");
	free(r);
	setenv("AWS_REGION", "eu-north-1", 1);
	r = aws_region_resolve("dev");
	assert_string_equal(r, "eu-north-1");
	free(r);

	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_PROFILE");
	setenv("AWS_CONFIG_FILE", "/nonexistent/vaultfs/config", 1);
	assert_null(aws_region_resolve(NULL));
}

/* ---- 3. ECS ------------------------------------------------------------ */

static void test_ecs_full_uri_with_token(void **state)
{
	struct fixture *f = *state;
	struct aws_creds c;
	struct cm_err err;
	char *uri;
	time_t now = time(NULL);

	server_start(&f->srv, "--ecs-auth", "ecs-auth-secret",
		     "--access-key-id", "AKIDECS", "--secret-access-key",
		     "ecssecret", "--token", "ecstoken", NULL);
	uri = cm_xasprintf("%s%s", f->srv.base, ECS_PATH);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-secret", 1);
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), 0);
	assert_string_equal(c.source, "ecs");
	assert_string_equal(c.access_key_id, "AKIDECS");
	assert_string_equal(c.secret_access_key, "ecssecret");
	assert_string_equal(c.session_token, "ecstoken");
	assert_true(c.expires >= now + 3600 - 60 &&
		    c.expires <= now + 3600 + 60);
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "ecs"), 1);
	assert_int_equal(server_stat(&f->srv, "ecs_unauthorized"), 0);

	/* the header was required: without it the endpoint refuses */
	assert_int_equal(server_request(&f->srv, "GET", ECS_PATH, NULL), 401);
	assert_int_equal(server_request(&f->srv, "GET", ECS_PATH,
					"Authorization: ecs-auth-secret"),
			 200);

	/* the token file wins over the variable */
	{
		char path[160];

		snprintf(path, sizeof(path), "%s/ecs-token", f->home);
		write_file(path, "ecs-auth-secret\n");
		setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
		setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale", 1);
		assert_int_equal(get_once(&c, &err), 0);
		assert_string_equal(c.access_key_id, "AKIDECS");
		aws_creds_release(&c);
	}
	assert_int_equal(server_stat(&f->srv, "ecs"), 3);
	free(uri);
}

static void test_ecs_relative_uri(void **state)
{
	struct fixture *f = *state;
	struct aws_creds c;

	server_start(&f->srv, "--access-key-id", "AKIDREL", NULL);
	ecs_relative_host = f->srv.base;
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ECS_PATH, 1);
	/* the relative URI wins over the full one */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/x", 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "ecs");
	assert_string_equal(c.access_key_id, "AKIDREL");
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "ecs"), 1);
}

static void test_ecs_wrong_token(void **state)
{
	struct fixture *f = *state;
	struct aws_creds c;
	struct cm_err err;
	char *uri, *where;

	server_start(&f->srv, "--ecs-auth", "the-right-secret",
		     "--secret-access-key", "ecssecret", NULL);
	uri = cm_xasprintf("%s%s?q=1", f->srv.base, ECS_PATH);
	where = cm_xasprintf("%s%s", f->srv.base, ECS_PATH);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "a-wrong-secret", 1);
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), -EACCES);
	assert_false(err.retryable);
	assert_substr(err.msg, "ECS container endpoint");
	assert_substr(err.msg, where);
	assert_substr(err.msg, "401");
	assert_no_substr(err.msg, "a-wrong-secret");
	assert_no_substr(err.msg, "the-right-secret");
	assert_no_substr(err.msg, "ecssecret");
	assert_null(c.access_key_id);
	assert_int_equal(server_stat(&f->srv, "ecs_unauthorized"), 1);

	/* no token at all is refused the same way */
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	assert_int_equal(get_once(&c, &err), -EACCES);
	assert_int_equal(server_stat(&f->srv, "ecs_unauthorized"), 2);

	/* a token file that is not there is an error, not "no ECS" */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent/tok", 1);
	assert_int_equal(get_once(&c, &err), -EIO);
	assert_substr(err.msg, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	free(where);
	free(uri);
}

static void test_ecs_full_uri_refused(void **state)
{
	struct aws_creds c;
	struct cm_err err;

	(void)state;
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
	       "http://creds.example.com/v1?token=x", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "do-not-send", 1);
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), -EINVAL);
	assert_substr(err.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	assert_substr(err.msg, "http://creds.example.com/v1");
	assert_no_substr(err.msg, "token=x");
	assert_no_substr(err.msg, "do-not-send");
}

/* ---- 4. IMDSv2 --------------------------------------------------------- */

static void test_imds(void **state)
{
	struct fixture *f = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	struct cm_err err;
	time_t now = time(NULL);

	server_start(&f->srv, "--access-key-id", "AKIDIMDS",
		     "--secret-access-key", "imdssecret", "--token",
		     "imdstoken", "--role", "my-role", NULL);
	use_imds(&f->srv);
	p = aws_creds_provider_new(NULL);
	cm_err_clear(&err);
	assert_int_equal(aws_creds_get(p, &c, &err), 0);
	assert_string_equal(c.source, "imds");
	assert_string_equal(c.access_key_id, "AKIDIMDS");
	assert_string_equal(c.secret_access_key, "imdssecret");
	assert_string_equal(c.session_token, "imdstoken");
	assert_true(c.expires >= now + 3600 - 60 &&
		    c.expires <= now + 3600 + 60);
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_token"), 1);
	assert_int_equal(server_stat(&f->srv, "last_token_ttl"), 21600);
	assert_int_equal(server_stat(&f->srv, "imds_role_list"), 1);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 1);
	/* version 2 from the first request: nothing went out without a token */
	assert_int_equal(server_stat(&f->srv, "imds_unauthorized"), 0);
	/* and the server really wants one */
	assert_int_equal(
	    server_request(&f->srv, "GET", ROLE_PATH_FOR_TEST, NULL), 401);

	/* far from expiry: the second call is served from the cache */
	assert_int_equal(aws_creds_get(p, &c, &err), 0);
	assert_string_equal(c.access_key_id, "AKIDIMDS");
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 1);
	aws_creds_provider_free(p);
}

static void test_imds_refresh(void **state)
{
	struct fixture *f = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	char exp[16];

	/* valid, but already inside the refresh margin */
	snprintf(exp, sizeof(exp), "%d", REFRESH_MARGIN_S - 60);
	server_start(&f->srv, "--expires-in", exp, NULL);
	use_imds(&f->srv);
	retry_interval_s = 0;
	p = aws_creds_provider_new(NULL);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 1);

	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	assert_string_equal(c.source, "imds");
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 2);
	assert_int_equal(server_stat(&f->srv, "imds_role_list"), 2);
	assert_int_equal(server_stat(&f->srv, "imds_token"), 1); /* reused */

	/* with the normal pause, short-lived credentials are not fetched
	 * again on every call */
	retry_interval_s = RETRY_INTERVAL_S;
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 3);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 3);
	aws_creds_provider_free(p);
}

static void test_imds_token_replaced(void **state)
{
	struct fixture *f = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	char exp[16];

	snprintf(exp, sizeof(exp), "%d", REFRESH_MARGIN_S - 60);
	server_start(&f->srv, "--expires-in", exp, NULL);
	use_imds(&f->srv);
	retry_interval_s = 0;
	p = aws_creds_provider_new(NULL);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	aws_creds_release(&c);
	assert_int_equal(
	    server_request(&f->srv, "POST", "/_revoke-tokens", NULL), 200);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_unauthorized"), 1);
	assert_int_equal(server_stat(&f->srv, "imds_token"), 2);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 2);
	aws_creds_provider_free(p);
}

static void test_imds_refresh_failure(void **state)
{
	struct fixture *f = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	struct cm_err err;
	char exp[16];

	/* the source goes away while the credentials are still valid */
	snprintf(exp, sizeof(exp), "%d", REFRESH_MARGIN_S - 60);
	server_start(&f->srv, "--expires-in", exp, "--access-key-id",
		     "AKIDSTILL", NULL);
	use_imds(&f->srv);
	retry_interval_s = 0;
	p = aws_creds_provider_new(NULL);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	aws_creds_release(&c);
	server_stop(&f->srv);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDSTILL");
	aws_creds_release(&c);
	aws_creds_provider_free(p);

	/* ... and once they have expired, the failure is the caller's */
	server_start(&f->srv, "--expires-in", "-30", "--secret-access-key",
		     "expiredsecret", NULL);
	use_imds(&f->srv);
	p = aws_creds_provider_new(NULL);
	assert_int_equal(aws_creds_get(p, &c, NULL), 0);
	aws_creds_release(&c);
	server_stop(&f->srv);
	cm_err_clear(&err);
	assert_true(aws_creds_get(p, &c, &err) < 0);
	assert_substr(err.msg, "EC2 instance metadata");
	assert_no_substr(err.msg, "expiredsecret");
	assert_null(c.access_key_id);
	aws_creds_provider_free(p);
}

static void test_imds_no_role(void **state)
{
	struct fixture *f = *state;
	struct aws_creds c;
	struct cm_err err;

	server_start(&f->srv, "--role", "", NULL);
	use_imds(&f->srv);
	cm_err_clear(&err);
	assert_int_equal(get_once(&c, &err), -ENOKEY);
	assert_substr(err.msg, "no IAM role attached");
}

/* ---- order and threads ------------------------------------------------- */

static void test_chain_order(void **state)
{
	struct fixture *f = *state;
	struct aws_creds c;
	char *uri;

	/* one server plays both ECS and IMDS; keys in no profile */
	server_start(&f->srv, "--access-key-id", "AKIDSERVER", NULL);
	use_imds(&f->srv);
	uri = cm_xasprintf("%s%s", f->srv.base, ECS_PATH);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
	write_home_file(f, "config", "[default]\nregion = us-east-1\n");

	/* files without keys fall through to ECS, which beats IMDS */
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "ecs");
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "imds_token"), 0);

	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "imds");
	aws_creds_release(&c);

	/* files beat both */
	write_home_file(f, "credentials",
			"[default]\naws_access_key_id = AKIDFILE\n"
			"aws_secret_access_key = s\n");
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
	assert_int_equal(get_once(&c, NULL), 0);
	assert_string_equal(c.source, "profile");
	aws_creds_release(&c);
	assert_int_equal(server_stat(&f->srv, "ecs"), 1);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 1);
	free(uri);
}

struct worker_arg {
	struct aws_creds_provider *p;
	int failures;
};

static void *worker(void *arg)
{
	struct worker_arg *w = arg;

	for (int i = 0; i < 25; i++) {
		struct aws_creds c;

		if (aws_creds_get(w->p, &c, NULL) != 0 ||
		    strcmp(c.access_key_id, "AKIDTHREADS") != 0)
			w->failures++;
		aws_creds_release(&c);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	struct worker_arg args[8];
	pthread_t t[8];
	char exp[16];

	snprintf(exp, sizeof(exp), "%d", REFRESH_MARGIN_S - 60);
	server_start(&f->srv, "--expires-in", exp, "--access-key-id",
		     "AKIDTHREADS", NULL);
	use_imds(&f->srv);
	retry_interval_s = 0; /* every call refreshes: the lock is busy */
	args[0].p = aws_creds_provider_new(NULL);
	for (int i = 0; i < 8; i++) {
		args[i].p = args[0].p;
		args[i].failures = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]),
				 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	aws_creds_provider_free(args[0].p);
	assert_int_equal(server_stat(&f->srv, "imds_creds"), 200);
	assert_int_equal(server_stat(&f->srv, "imds_token"), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_ini_credentials_syntax),
	    T(test_ini_config_sections),
	    T(test_url_helpers),
	    T(test_slurp),
	    T(test_copy_release),
	    T(test_env),
	    T(test_env_partial),
	    T(test_env_wins_over_files),
	    T(test_profile_default),
	    T(test_profile_from_env_and_opts),
	    T(test_config_file_profile),
	    T(test_file_overrides),
	    T(test_profile_errors),
	    T(test_split_command),
	    T(test_process),
	    T(test_imds_region),
	    T(test_imds_items),
	    T(test_nothing_found),
	    T(test_region),
	    T(test_ecs_full_uri_with_token),
	    T(test_ecs_relative_uri),
	    T(test_ecs_wrong_token),
	    T(test_ecs_full_uri_refused),
	    T(test_imds),
	    T(test_imds_refresh),
	    T(test_imds_token_replaced),
	    T(test_imds_refresh_failure),
	    T(test_imds_no_role),
	    T(test_chain_order),
	    T(test_threads),
	};

	/* the metadata server may go away under a write */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
