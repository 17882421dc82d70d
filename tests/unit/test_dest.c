/*
 * test_dest.c - destinations (orchestrator/dest.h): which one a config
 * makes, the keys and URLs of a job's folder with and without a prefix,
 * the local one's writing, verification and leftovers on a real
 * directory, the view's store for each, and the URL-kind test every part
 * shares (core/url.h). S3 verification against a real server is in
 * tests/integration/orch_verify.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/url.h"
#include "fs/view_store.h"
#include "orchestrator/config.h"
#include "orchestrator/dest.h"
#include "orchestrator/keys.h"
#include "tmpdir.h"

#define JOB_ID "20261126T204516.123Z-3f9a1c0b"
#define RES_ID "arn:aws:ec2:eu-west-1:123456789012:snapshot/snap-0abc"
#define JOB_KEY                                                        \
	"arn/aws/ec2/eu-west-1/123456789012/snapshot/snap-0abc/Y=2026/" \
	"M=11/D=26/" JOB_ID "/"

static int setup(void **state)
{
	(void)state;
	/* the S3 destination makes a client: nothing from the machine's
	 * environment may decide its endpoint or region */
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_PROFILE");
	return tmpdir_make("dest");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static void parse(const char *text, struct orch_config *cfg)
{
	struct cm_err err;

	cm_err_clear(&err);
	if (orch_config_parse(text, strlen(text), tmp, cfg, &err))
		fail_msg("%s", err.msg);
}

static struct orch_dest *make(const struct orch_config *cfg)
{
	struct orch_dest *d = NULL;
	struct cm_err err;

	cm_err_clear(&err);
	if (orch_dest_new(cfg, &d, &err))
		fail_msg("%s", err.msg);
	assert_non_null(d);
	return d;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_url_kind(void **state)
{
	(void)state;
	assert_int_equal(cm_url_kind("s3://bucket/key"), CM_URL_S3);
	assert_int_equal(cm_url_kind("s3://bucket"), CM_URL_S3);
	assert_int_equal(cm_url_kind("s3://"), CM_URL_S3);
	assert_int_equal(cm_url_kind("/var/lib/vaultfs/store"), CM_URL_PATH);
	assert_int_equal(cm_url_kind("store/x"), CM_URL_PATH);
	assert_int_equal(cm_url_kind("S3://bucket"), CM_URL_PATH);
	assert_int_equal(cm_url_kind("s3:/bucket"), CM_URL_PATH);
	assert_int_equal(cm_url_kind(""), CM_URL_PATH);
	assert_int_equal(cm_url_kind(NULL), CM_URL_PATH);

	/* meant as S3, mistyped: refused where a place is taken */
	assert_true(cm_url_is_typo("s3:/bucket/x"));
	assert_true(cm_url_is_typo("s3:bucket"));
	assert_true(cm_url_is_typo("S3://bucket"));
	assert_true(cm_url_is_typo("s3:"));
	assert_false(cm_url_is_typo("s3://bucket/x"));
	assert_false(cm_url_is_typo("./s3:/bucket"));
	assert_false(cm_url_is_typo("s3-store/x"));
	assert_false(cm_url_is_typo(""));
	assert_false(cm_url_is_typo(NULL));
}

static void test_s3_keys(void **state)
{
	struct orch_config cfg;
	struct orch_dest *d;
	char *key = NULL, *url;
	struct cm_err err;

	(void)state;
	parse("{\"destination\": \"s3://my-bucket/archive/vaultfs/\","
	      " \"endpoint\": \"http://127.0.0.1:9\", \"region\": \"eu-west-1\"}",
	      &cfg);
	assert_ptr_equal(orch_dest_type_of(&cfg), &orch_dest_s3);
	d = make(&cfg);
	assert_string_equal(d->type->kind, "s3");
	assert_string_equal(d->name, "my-bucket");
	assert_string_equal(d->bucket, "my-bucket");
	assert_null(d->dir);
	assert_non_null(d->s3);
	assert_string_equal(d->prefix, "archive/vaultfs");
	assert_string_equal(d->where, "s3://my-bucket/archive/vaultfs");
	cm_err_clear(&err);
	assert_int_equal(orch_dest_job_dir(d, RES_ID, JOB_ID, &key, &err), 0);
	assert_string_equal(key, "archive/vaultfs/" JOB_KEY);
	url = d->ops->url(d, key);
	assert_string_equal(url, "s3://my-bucket/archive/vaultfs/" JOB_KEY);
	free(url);
	free(key);
	/* a job id of another shape names no folder */
	key = NULL;
	assert_int_equal(orch_dest_job_dir(d, RES_ID, "20261126-x", &key, &err),
			 -EINVAL);
	assert_null(key);
	assert_non_null(strstr(err.msg, "20261126-x"));
	orch_dest_free(d);
	orch_config_release(&cfg);

	/* no prefix: jobs start at the top of the bucket */
	parse("{\"destination\": \"s3://bkt\","
	      " \"endpoint\": \"http://127.0.0.1:9\", \"region\": \"eu-west-1\"}",
	      &cfg);
	d = make(&cfg);
	assert_string_equal(d->prefix, "");
	assert_string_equal(d->where, "s3://bkt/");
	assert_int_equal(orch_dest_job_dir(d, RES_ID, JOB_ID, &key, &err), 0);
	assert_string_equal(key, JOB_KEY);
	url = d->ops->url(d, key);
	assert_string_equal(url, "s3://bkt/" JOB_KEY);
	free(url);
	free(key);
	orch_dest_free(d);
	orch_config_release(&cfg);
}

static void test_local_keys(void **state)
{
	struct orch_config cfg;
	struct orch_dest *d;
	char *key = NULL, *url, *want;
	struct cm_err err;

	(void)state;
	parse("{\"destination\": \"archives/\"}", &cfg);
	assert_ptr_equal(orch_dest_type_of(&cfg), &orch_dest_local);
	d = make(&cfg);
	assert_string_equal(d->type->kind, "local");
	assert_string_equal(d->name, "archives");
	assert_null(d->bucket);
	assert_null(d->s3);
	assert_string_equal(d->prefix, "");
	want = cm_xasprintf("%s/archives", tmp);
	assert_string_equal(d->dir, want);
	assert_string_equal(d->where, want);
	free(want);
	cm_err_clear(&err);
	assert_int_equal(orch_dest_job_dir(d, "local:v1:disk.img", JOB_ID,
					   &key, &err), 0);
	assert_string_equal(key, "local/v1/disk.img/Y=2026/M=11/D=26/" JOB_ID
			    "/");
	url = d->ops->url(d, key);
	want = cm_xasprintf("%s/archives/%s", tmp, key);
	assert_string_equal(url, want);
	free(want);
	free(url);
	free(key);
	orch_dest_free(d);
	orch_config_release(&cfg);
}

struct seen {
	int calls;
	char where[512];
	char text[512];
	int rc; /* what the check answers */
};

static int check_manifest(void *ctx, const char *text, size_t len,
			  const char *where, struct cm_err *err)
{
	struct seen *s = ctx;

	s->calls++;
	snprintf(s->where, sizeof(s->where), "%s", where);
	snprintf(s->text, sizeof(s->text), "%.*s", (int)len, text);
	if (s->rc)
		return cm_err_set(err, -s->rc, "the manifest says otherwise");
	return 0;
}

/* Writing into a local destination, verifying what is there, and the
 * leftovers of a failed run. */
static void test_local_write_verify(void **state)
{
	static const char data[] = "the archive's bytes";
	struct orch_config cfg;
	struct orch_dest *d;
	struct orch_dest_check c;
	struct seen seen = { 0 };
	char hex[CM_SHA256_HEX_LEN + 1], *key = NULL, *dir, *path, *mpath;
	struct cm_err err;
	struct stat st;

	(void)state;
	parse("{\"destination\": \"store\"}", &cfg);
	d = make(&cfg);
	/* made, not created: the store appears with prepare() */
	path = cm_xasprintf("%s/store", tmp);
	assert_int_equal(stat(path, &st), -1);
	cm_err_clear(&err);
	assert_int_equal(d->ops->prepare(d, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(path);

	assert_int_equal(orch_dest_job_dir(d, "local:v1:tree", JOB_ID, &key,
					   &err), 0);
	assert_int_equal(d->ops->open_dir(d, key, &err), 0);
	dir = d->ops->url(d, key);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	path = cm_xasprintf("%sbackup.tar", dir);
	write_text(path, data);
	assert_int_equal(d->ops->publish_manifest(d, key, "{\"a\": 1}", 8,
						  &err), 0);
	mpath = cm_xasprintf("%s" ORCH_MANIFEST_NAME, dir);
	assert_int_equal(stat(mpath, &st), 0);

	cm_sha256_hex(data, strlen(data), hex);
	memset(&c, 0, sizeof(c));
	c.url = path;
	c.size = strlen(data);
	c.sha256 = hex;
	c.check_manifest = check_manifest;
	c.ctx = &seen;
	assert_int_equal(d->ops->verify(d, &c, &err), 0);
	assert_true(c.read_back); /* a local file is always hashed */
	assert_int_equal(seen.calls, 1);
	assert_string_equal(seen.where, mpath);
	assert_non_null(strstr(seen.text, "\"a\""));

	/* the manifest's check fails the verification */
	seen.rc = -EIO;
	cm_err_clear(&err);
	assert_int_equal(d->ops->verify(d, &c, &err), -EIO);
	assert_string_equal(err.msg, "the manifest says otherwise");
	seen.rc = 0;

	/* other bytes, same size: the digest tells */
	write_text(path, "THE archive's bytes");
	cm_err_clear(&err);
	assert_int_equal(d->ops->verify(d, &c, &err), -EIO);
	assert_non_null(strstr(err.msg, "sha256"));
	assert_non_null(strstr(err.msg, path));

	/* another size: stat tells, the manifest is not even read */
	write_text(path, "short");
	seen.calls = 0;
	cm_err_clear(&err);
	assert_int_equal(d->ops->verify(d, &c, &err), -EIO);
	assert_non_null(strstr(err.msg, "5 bytes stored"));
	assert_int_equal(seen.calls, 0);

	/* gone */
	unlink(path);
	cm_err_clear(&err);
	assert_int_equal(d->ops->verify(d, &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, path));

	/* a failed run's partial file goes, and the folder when it is
	 * empty then; anything else stays */
	free(path);
	path = cm_xasprintf("%sbackup.tar.partial", dir);
	write_text(path, "part");
	d->ops->discard_partial(d, key);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(stat(mpath, &st), 0); /* not a partial: kept */
	assert_int_equal(stat(dir, &st), 0);
	unlink(mpath);
	write_text(path, "part");
	d->ops->discard_partial(d, key);
	assert_int_equal(stat(dir, &st), -1);

	free(mpath);
	free(path);
	free(dir);
	free(key);
	orch_dest_free(d);
	orch_config_release(&cfg);
}

/* The view browses each destination with the store of its kind. */
static void test_view_store(void **state)
{
	struct orch_config cfg;
	struct orch_dest *d;
	struct view_store *s;
	struct cm_err err;

	(void)state;
	parse("{\"destination\": \"store\"}", &cfg);
	d = make(&cfg);
	cm_err_clear(&err);
	/* the store directory does not exist yet: named in the error */
	assert_null(view_store_new(d, 0, 0, &err));
	assert_non_null(strstr(err.msg, d->dir));
	assert_int_equal(d->ops->prepare(d, &err), 0);
	s = view_store_new(d, 0, 0, &err);
	assert_non_null(s);
	assert_false(s->remote);
	assert_string_equal(s->name, "store");
	s->ops->free(s);
	orch_dest_free(d);
	orch_config_release(&cfg);

	parse("{\"destination\": \"s3://bkt/p\","
	      " \"endpoint\": \"http://127.0.0.1:9\", \"region\": \"eu-west-1\"}",
	      &cfg);
	d = make(&cfg);
	s = view_store_new(d, 0, 0, &err);
	assert_non_null(s);
	assert_true(s->remote);
	assert_string_equal(s->name, "bkt");
	s->ops->free(s);
	orch_dest_free(d);
	orch_config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_kind),
		cmocka_unit_test_setup_teardown(test_s3_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_local_write_verify, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_view_store, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
