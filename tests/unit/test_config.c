/*
 * test_config.c - the orchestrator's configuration: defaults, every key,
 * and errors that name the key and the problem.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "orchestrator/config.h"
#include "orchestrator/dest.h"

static char tmp[64]; /* a fresh directory per test */

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	char *p;

	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/vf-config-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	p = cm_xasprintf("%s/vault", tmp);
	mkdir(p, 0755);
	free(p);
	p = cm_xasprintf("%s/vault2", tmp);
	mkdir(p, 0755);
	free(p);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Parse text with relative paths taken from the temp dir. */
static int parse(const char *text, struct orch_config *cfg,
		 struct cm_err *err)
{
	cm_err_clear(err);
	return orch_config_parse(text, strlen(text), tmp, cfg, err);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_default(void **state)
{
	struct orch_config cfg;

	(void)state;
	orch_config_default(&cfg);
	assert_int_equal(cfg.nvaults, 1);
	assert_string_equal(cfg.vaults[0].name, "local");
	assert_string_equal(cfg.vaults[0].path, "/var/lib/vaultfs/vault");
	assert_ptr_equal(orch_dest_type_of(&cfg), &orch_dest_local);
	assert_string_equal(cfg.store_dir, "/var/lib/vaultfs/store");
	assert_string_equal(cfg.prefix, "");
	assert_null(cfg.bucket);
	assert_string_equal(cfg.state_dir, "/var/lib/vaultfs/state");
	assert_false(cfg.auto_delete_snapshot);
	assert_true(cfg.auto_start);
	assert_int_equal(cfg.compression.codec, ARC_CODEC_GZIP);
	assert_int_equal(cfg.compression.level, 6);
	assert_int_equal(cfg.jobs, 1);
	assert_int_equal(cfg.uploads, 4);
	assert_int_equal(cfg.max_attempts, 3);
	assert_int_equal(cfg.verify, ORCH_VERIFY_ETAG);
	assert_string_equal(cfg.storage_class, "STANDARD");
	assert_null(cfg.sse);
	assert_null(cfg.on_failure);
	assert_int_equal(cfg.on_failure_timeout_seconds, 300);
	assert_false(cfg.has_security_tag);
	assert_int_equal(cfg.rescan_seconds, 60);
	assert_int_equal(cfg.lifecycle.glacier, 0);
	assert_int_equal(cfg.ebs_concurrency, 32);
	assert_int_equal(cfg.ebs_cache_size, 64ull << 20);
	assert_int_equal(cfg.ebs_method, ORCH_EBS_DIRECT);
	assert_string_equal(cfg.ebs_volume_type, "gp3");
	assert_int_equal(cfg.ebs_iops, 0);
	assert_string_equal(cfg.ebs_device_root, "/dev");
	assert_int_equal(cfg.ebs_device_timeout_seconds, 120);
	orch_config_release(&cfg);
	orch_config_release(&cfg); /* released twice is harmless */
}

static void test_empty_object_is_default(void **state)
{
	struct orch_config cfg;
	struct cm_err err;

	(void)state;
	assert_int_equal(parse("{}", &cfg, &err), 0);
	assert_string_equal(cfg.vaults[0].name, "local");
	assert_string_equal(cfg.destination, "/var/lib/vaultfs/store");
	orch_config_release(&cfg);
}

static void test_every_key(void **state)
{
	static const char text[] =
		"{\n"
		" \"vaults\": [ {\"name\": \"a\", \"type\": \"local\","
		" \"path\": \"vault\"},\n"
		"             {\"name\": \"b\", \"path\": \"./x/../vault2/\"} ],\n"
		" \"destination\": \"s3://my-bucket/archive/vaultfs/\",\n"
		" \"endpoint\": \"http://127.0.0.1:7480\",\n"
		" \"region\": \"eu-west-1\",\n"
		" \"pathStyle\": true,\n"
		" \"expectedBucketOwner\": \"123456789012\",\n"
		" \"tags\": {\"team\": \"ops\", \"cost\": \"\"},\n"
		" \"securityTag\": {\"key\": \"vaultfs\", \"value\": \"yes\"},\n"
		" \"autoDeleteSnapshot\": true,\n"
		" \"autoStart\": false,\n"
		" \"lifecycleRules\": {\"glacier\": 10, \"deepArchive\": 101,"
		" \"expiration\": 2190},\n"
		" \"storageClass\": \"STANDARD_IA\",\n"
		" \"sse\": \"aws:kms\",\n"
		" \"kmsKeyId\": \"alias/backup\",\n"
		" \"compression\": {\"codec\": \"zstd\", \"level\": 19,"
		" \"threads\": 3},\n"
		" \"concurrency\": {\"jobs\": 3, \"uploads\": 8},\n"
		" \"partSize\": \"64MiB\",\n"
		" \"overlayLimit\": \"512MiB\",\n"
		" \"ebs\": {\"method\": \"volume\", \"concurrency\": 64,"
		" \"cacheSize\": \"256MiB\", \"volumeType\": \"gp3\","
		" \"iops\": 6000, \"throughput\": 500,"
		" \"deviceRoot\": \"/run/devs\", \"deviceTimeoutSeconds\": 9},\n"
		" \"stateDir\": \"state\",\n"
		" \"metricsFile\": \"textfile/./vaultfs.prom\",\n"
		" \"verify\": \"full\",\n"
		" \"maxAttempts\": 5,\n"
		" \"onFailure\": \"logger -t vaultfs failed\",\n"
		" \"onFailureTimeoutSeconds\": 30,\n"
		" \"rescanSeconds\": 0\n"
		"}\n";
	char *path = cm_xasprintf("%s/vaultfs.json", tmp);
	char *v1 = cm_xasprintf("%s/vault", tmp);
	char *v2 = cm_xasprintf("%s/vault2", tmp);
	char *sd = cm_xasprintf("%s/state", tmp);
	struct orch_config cfg;
	struct cm_err err;

	(void)state;
	write_file(path, text);
	cm_err_clear(&err);
	assert_int_equal(orch_config_load(path, &cfg, &err), 0);
	assert_int_equal(cfg.nvaults, 2);
	assert_string_equal(cfg.vaults[0].name, "a");
	assert_string_equal(cfg.vaults[0].path, v1);
	{
		char *mf = cm_xasprintf("%s/textfile/vaultfs.prom", tmp);

		assert_string_equal(cfg.metrics_file, mf);
		free(mf);
	}
	assert_string_equal(cfg.vaults[1].name, "b");
	assert_string_equal(cfg.vaults[1].path, v2);
	assert_ptr_equal(orch_config_vault(&cfg, "b"), &cfg.vaults[1]);
	assert_null(orch_config_vault(&cfg, "c"));
	assert_ptr_equal(orch_dest_type_of(&cfg), &orch_dest_s3);
	assert_string_equal(cfg.bucket, "my-bucket");
	assert_string_equal(cfg.prefix, "archive/vaultfs");
	assert_null(cfg.store_dir);
	assert_string_equal(cfg.endpoint, "http://127.0.0.1:7480");
	assert_string_equal(cfg.region, "eu-west-1");
	assert_int_equal(cfg.addressing, ORCH_ADDRESSING_PATH);
	assert_string_equal(cfg.expected_bucket_owner, "123456789012");
	assert_int_equal(cfg.ntags, 2);
	assert_string_equal(cfg.tags[0].key, "team");
	assert_string_equal(cfg.tags[0].value, "ops");
	assert_string_equal(cfg.tags[1].key, "cost");
	assert_string_equal(cfg.tags[1].value, "");
	assert_true(cfg.has_security_tag);
	assert_string_equal(cfg.security_tag.key, "vaultfs");
	assert_string_equal(cfg.security_tag.value, "yes");
	assert_true(cfg.auto_delete_snapshot);
	assert_false(cfg.auto_start);
	assert_int_equal(cfg.lifecycle.glacier, 10);
	assert_int_equal(cfg.lifecycle.deep_archive, 101);
	assert_int_equal(cfg.lifecycle.expiration, 2190);
	assert_string_equal(cfg.storage_class, "STANDARD_IA");
	assert_string_equal(cfg.sse, "aws:kms");
	assert_string_equal(cfg.kms_key_id, "alias/backup");
	assert_int_equal(cfg.compression.codec, ARC_CODEC_ZSTD);
	assert_int_equal(cfg.compression.level, 19);
	assert_int_equal(cfg.compression.threads, 3);
	assert_int_equal(cfg.jobs, 3);
	assert_int_equal(cfg.uploads, 8);
	assert_int_equal(cfg.part_size, 64ull << 20);
	assert_int_equal(cfg.overlay_limit, 512ull << 20);
	assert_int_equal(cfg.ebs_concurrency, 64);
	assert_int_equal(cfg.ebs_cache_size, 256ull << 20);
	assert_int_equal(cfg.ebs_method, ORCH_EBS_VOLUME);
	assert_int_equal(cfg.ebs_iops, 6000);
	assert_int_equal(cfg.ebs_throughput, 500);
	assert_string_equal(cfg.ebs_device_root, "/run/devs");
	assert_int_equal(cfg.ebs_device_timeout_seconds, 9);
	assert_string_equal(cfg.state_dir, sd);
	assert_int_equal(cfg.verify, ORCH_VERIFY_FULL);
	assert_int_equal(cfg.max_attempts, 5);
	assert_string_equal(cfg.on_failure, "logger -t vaultfs failed");
	assert_int_equal(cfg.on_failure_timeout_seconds, 30);
	assert_int_equal(cfg.rescan_seconds, 0);
	orch_config_release(&cfg);
	free(path);
	free(v1);
	free(v2);
	free(sd);
}

static void test_small_variants(void **state)
{
	struct orch_config cfg;
	struct cm_err err;

	(void)state;
	/* a local store, relative; zstd default level; kms implied */
	assert_int_equal(parse("{\"destination\": \"store\","
			       " \"compression\": {\"codec\": \"zstd\"},"
			       " \"kmsKeyId\": \"k\", \"pathStyle\": false,"
			       " \"partSize\": 8388608,"
			       " \"securityTag\": null, \"sse\": null,"
			       " \"autoDeleteSnapshot\": false}",
			       &cfg, &err), 0);
	assert_ptr_equal(orch_dest_type_of(&cfg), &orch_dest_local);
	assert_true(strncmp(cfg.store_dir, tmp, strlen(tmp)) == 0);
	assert_string_equal(cfg.store_dir + strlen(tmp), "/store");
	assert_string_equal(cfg.destination, cfg.store_dir);
	assert_int_equal(cfg.compression.level, 3);
	assert_string_equal(cfg.sse, "aws:kms");
	assert_int_equal(cfg.addressing, ORCH_ADDRESSING_VIRTUAL);
	assert_int_equal(cfg.part_size, 8 << 20);
	assert_false(cfg.auto_delete_snapshot);
	orch_config_release(&cfg);

	/* gzip level default stays 6 when only the codec is named */
	assert_int_equal(parse("{\"compression\": {\"codec\": \"none\"},"
			       " \"destination\": \"s3://bkt\","
			       " \"onFailure\": \"\"}", &cfg, &err), 0);
	assert_int_equal(cfg.compression.codec, ARC_CODEC_NONE);
	assert_int_equal(cfg.compression.level, 0);
	assert_string_equal(cfg.bucket, "bkt");
	assert_string_equal(cfg.prefix, "");
	assert_null(cfg.on_failure);
	orch_config_release(&cfg);
}

struct bad_case {
	const char *json;   /* %s: the temp dir */
	const char *msg;    /* the exact message; %s: the temp dir */
};

static const struct bad_case bad_cases[] = {
	{ "{\"vualts\": []}",
	  "config: unknown key \"vualts\" (did you mean \"vaults\"?)" },
	{ "{\"StateDir\": \"/x\"}",
	  "config: unknown key \"StateDir\" (did you mean \"stateDir\"?)" },
	{ "{\"bananas\": 1}", "config: unknown key \"bananas\"" },
	{ "{\"compression\": {\"lvl\": 3}}",
	  "config: unknown key \"compression.lvl\" (did you mean "
	  "\"compression.level\"?)" },
	{ "{\"vaults\": [{\"name\": \"a\", \"path\": \"vault\", "
	  "\"paht\": 1}]}",
	  "config: unknown key \"vaults[0].paht\" (did you mean "
	  "\"vaults[0].path\"?)" },
	{ "{\"lifecycleRules\": {\"glacer\": 3}}",
	  "config: unknown key \"lifecycleRules.glacer\" (did you mean "
	  "\"lifecycleRules.glacier\"?)" },
	{ "{\"region\": \"a\", \"region\": \"b\"}",
	  "config: duplicate key \"region\"" },
	{ "{\"compression\": {\"level\": 0}}",
	  "config: compression.level: must be an integer from 1 to 9 for "
	  "gzip, got 0" },
	{ "{\"compression\": {\"level\": 12}}",
	  "config: compression.level: must be an integer from 1 to 9 for "
	  "gzip, got 12" },
	{ "{\"compression\": {\"codec\": \"zstd\", \"level\": 20}}",
	  "config: compression.level: must be an integer from 1 to 19 for "
	  "zstd, got 20" },
	{ "{\"compression\": {\"codec\": \"none\", \"level\": 1}}",
	  "config: compression.level: must be an integer from 0 to 0 for "
	  "none, got 1" },
	{ "{\"compression\": {\"level\": 2.5}}",
	  "config: compression.level: must be an integer from 1 to 9 for "
	  "gzip, got 2.5" },
	{ "{\"compression\": {\"codec\": \"xz\"}}",
	  "config: compression.codec: must be one of \"gzip\", \"zstd\", "
	  "\"none\", got \"xz\"" },
	{ "{\"compression\": \"gzip\"}",
	  "config: compression: must be an object, got \"gzip\"" },
	{ "{\"autoDeleteSnapshot\": \"false\"}",
	  "config: autoDeleteSnapshot: must be true or false, got "
	  "\"false\"" },
	{ "{\"autoStart\": 1}",
	  "config: autoStart: must be true or false, got 1" },
	{ "{\"vaults\": [{\"name\": \"a\", \"path\": \"nope\"}]}",
	  "config: vaults[0].path: %s/nope: No such file or directory" },
	{ "{\"vaults\": [{\"name\": \"a\", \"path\": \"vault/f\"}]}",
	  "config: vaults[0].path: %s/vault/f: not a directory" },
	{ "{\"vaults\": [{\"name\": \"a\", \"path\": \"vault\"},"
	  " {\"name\": \"a\", \"path\": \"vault2\"}]}",
	  "config: vaults[1].name: \"a\" is already the name of vaults[0]" },
	{ "{\"vaults\": [{\"path\": \"vault\"}]}",
	  "config: vaults[0].name: missing (every vault has a name)" },
	{ "{\"vaults\": [{\"name\": \"../x\", \"path\": \"vault\"}]}",
	  "config: vaults[0].name: must be 1 to 64 characters from "
	  "[A-Za-z0-9._-], not starting with '.', got \"../x\"" },
	{ "{\"vaults\": [{\"name\": \"a\", \"type\": \"aws\", "
	  "\"path\": \"vault\"}]}",
	  "config: vaults[0].type: unknown vault type \"aws\" (known types: "
	  "\"local\", \"aws-backup\")" },
	{ "{\"vaults\": {}}", "config: vaults: must be an array, got an "
	  "object" },
	{ "{\"vaults\": [3]}", "config: vaults[0]: must be an object {name, "
	  "type, ...}, got 3" },
	{ "{\"lifecycleRules\": {\"glacier\": 30, \"deepArchive\": 20}}",
	  "config: lifecycleRules.deepArchive: must be greater than "
	  "lifecycleRules.glacier (30), got 20" },
	{ "{\"lifecycleRules\": {\"glacier\": 30, \"expiration\": 30}}",
	  "config: lifecycleRules.expiration: must be greater than "
	  "lifecycleRules.glacier (30), got 30" },
	{ "{\"lifecycleRules\": {\"glacier\": -1}}",
	  "config: lifecycleRules.glacier: must be an integer from 0 to "
	  "100000 (days, 0: off), got -1" },
	{ "{\"storageClass\": \"COLD\"}",
	  "config: storageClass: must be one of \"STANDARD\", "
	  "\"REDUCED_REDUNDANCY\", \"STANDARD_IA\", \"ONEZONE_IA\", "
	  "\"INTELLIGENT_TIERING\", \"GLACIER\", \"GLACIER_IR\", "
	  "\"DEEP_ARCHIVE\", \"OUTPOSTS\", \"SNOW\", \"EXPRESS_ONEZONE\", "
	  "got \"COLD\"" },
	{ "{\"sse\": \"aes\"}",
	  "config: sse: must be one of \"AES256\", \"aws:kms\", got "
	  "\"aes\"" },
	{ "{\"sse\": \"AES256\", \"kmsKeyId\": \"k\"}",
	  "config: kmsKeyId: needs sse \"aws:kms\", but sse is \"AES256\"" },
	{ "{\"partSize\": \"1MiB\"}",
	  "config: partSize: must be 0 (automatic) or a size from 5MiB to "
	  "5GiB (bytes or a string like \"64MiB\"), got \"1MiB\"" },
	{ "{\"partSize\": \"lots\"}",
	  "config: partSize: must be 0 (automatic) or a size from 5MiB to "
	  "5GiB (bytes or a string like \"64MiB\"), got \"lots\"" },
	{ "{\"overlayLimit\": 4095}",
	  "config: overlayLimit: must be a size of at least 4KiB (bytes or a "
	  "string like \"2GiB\"), got 4095" },
	{ "{\"overlayLimit\": \"0\"}",
	  "config: overlayLimit: must be a size of at least 4KiB (bytes or a "
	  "string like \"2GiB\"), got \"0\"" },
	{ "{\"ebs\": {\"method\": \"fast\"}}",
	  "config: ebs.method: must be \"direct\" or \"volume\", got "
	  "\"fast\"" },
	{ "{\"ebs\": {\"volumeType\": \"GP 3\"}}",
	  "config: ebs.volumeType: must be an EBS volume type such as "
	  "\"gp3\", got \"GP 3\"" },
	{ "{\"ebs\": {\"iops\": 50}}",
	  "config: ebs.iops: must be an integer from 100 to 256000, got 50" },
	{ "{\"ebs\": {\"deviceRoot\": \"dev\"}}",
	  "config: ebs.deviceRoot: must be an absolute path, got \"dev\"" },
	{ "{\"ebs\": {\"concurrency\": 0}}",
	  "config: ebs.concurrency: must be an integer from 1 to 256, got 0" },
	{ "{\"ebs\": {\"cacheSize\": \"64KiB\"}}",
	  "config: ebs.cacheSize: must be a size from 1MiB to 64GiB (bytes or "
	  "a string like \"64MiB\"), got \"64KiB\"" },
	{ "{\"ebs\": {\"readers\": 3}}",
	  "config: unknown key \"ebs.readers\"" },
	{ "{\"view\": {\"memoryLimit\": \"1MiB\"}}",
	  "config: view.memoryLimit: must be a size from 16MiB to 1TiB (bytes "
	  "or a string like \"256MiB\"), got \"1MiB\"" },
	{ "{\"view\": {\"memoryLimit\": 0}}",
	  "config: view.memoryLimit: must be a size from 16MiB to 1TiB (bytes "
	  "or a string like \"256MiB\"), got 0" },
	{ "{\"concurrency\": {\"jobs\": 0}}",
	  "config: concurrency.jobs: must be an integer from 1 to 64, "
	  "got 0" },
	{ "{\"maxAttempts\": true}",
	  "config: maxAttempts: must be an integer from 1 to 100, got true" },
	{ "{\"destination\": \"s3://Bad_Bucket/x\"}",
	  "config: destination: \"Bad_Bucket\" is not a valid bucket name "
	  "(3 to 63 of [a-z0-9.-])" },
	{ "{\"destination\": \"s3://bucket/a//b\"}",
	  "config: destination: the prefix \"a//b\" has an empty, \".\" or "
	  "\"..\" segment or a control character" },
	{ "{\"destination\": \"s3://bucket/a/../b\"}",
	  "config: destination: the prefix \"a/../b\" has an empty, \".\" "
	  "or \"..\" segment or a control character" },
	{ "{\"destination\": \"s3:/bucket/x\"}",
	  "config: destination: \"s3:/bucket/x\" is not an S3 URL "
	  "(s3://BUCKET[/PREFIX]); write \"./s3:/bucket/x\" for a local "
	  "directory of that name" },
	{ "{\"destination\": \"S3://bucket\"}",
	  "config: destination: \"S3://bucket\" is not an S3 URL "
	  "(s3://BUCKET[/PREFIX]); write \"./S3://bucket\" for a local "
	  "directory of that name" },
	{ "{\"destination\": \"http://host/x\"}",
	  "config: destination: must be s3://BUCKET[/PREFIX] or a local "
	  "directory, got \"http://host/x\"" },
	{ "{\"destination\": \"vault/f\"}",
	  "config: destination: %s/vault/f: not a directory" },
	{ "{\"destination\": \"vault/store\", \"vaults\": [{\"name\": \"a\","
	  " \"path\": \"vault\"}]}",
	  "config: destination: %s/vault/store overlaps vault \"a\" "
	  "(%s/vault)" },
	{ "{\"stateDir\": \"vault\", \"vaults\": [{\"name\": \"a\","
	  " \"path\": \"vault\"}]}",
	  "config: stateDir: %s/vault overlaps vault \"a\" (%s/vault)" },
	{ "{\"region\": 5}",
	  "config: region: must be a string or null, got 5" },
	{ "{\"region\": \"eu west\"}",
	  "config: region: must be a region name such as \"eu-west-1\", got "
	  "\"eu west\"" },
	{ "{\"endpoint\": \"ftp://x\"}",
	  "config: endpoint: must start with http:// or https://, got "
	  "\"ftp://x\"" },
	{ "{\"endpoints\": {\"ec3\": \"http://x\"}}",
	  "config: unknown key \"endpoints.ec3\" (did you mean "
	  "\"endpoints.ec2\"?)" },
	{ "{\"endpoints\": {\"backup\": \"backup.local\"}}",
	  "config: endpoints.backup: endpoint backup.local: must start with "
	  "http:// or https://" },
	{ "{\"endpoints\": {\"sts\": 1}}",
	  "config: endpoints.sts: must be a URL string, got 1" },
	{ "{\"endpoints\": [\"http://x\"]}",
	  "config: endpoints: must be an object or null, got an array" },
	{ "{\"pathStyle\": \"yes\"}",
	  "config: pathStyle: must be true, false or null, got \"yes\"" },
	{ "{\"expectedBucketOwner\": \"12345\"}",
	  "config: expectedBucketOwner: must be a 12-digit account id, got "
	  "\"12345\"" },
	{ "{\"tags\": {\"a\": 1}}",
	  "config: tags.a: must be a string, got 1" },
	{ "{\"tags\": []}", "config: tags: must be an object, got an array" },
	{ "{\"securityTag\": {\"key\": \"k\"}}",
	  "config: securityTag.value: missing" },
	{ "{\"securityTag\": {\"key\": \"k\", \"value\": \"v\", \"x\": 1}}",
	  "config: unknown key \"securityTag.x\"" },
	{ "{\"verify\": \"fulll\"}",
	  "config: verify: must be one of \"etag\", \"full\", \"decode\", got "
	  "\"fulll\"" },
	{ "{\"stateDir\": \"\"}", "config: stateDir: must not be empty" },
	{ "{\"metricsFile\": \"\"}",
	  "config: metricsFile: must not be empty (null: none)" },
	{ "{\"metricsFile\": 3}",
	  "config: metricsFile: must be a string or null, got 3" },
	{ "{\"rescanSeconds\": 100000}",
	  "config: rescanSeconds: must be an integer from 0 to 86400 "
	  "(0: inotify only), got 100000" },
	{ "[]", "config: the top level must be an object, got array" },
	{ "{\"vaults\": [}", "config: invalid JSON near line 1 (byte 12)" },
};

/* msg with every "%s" replaced by the temp dir. */
static void subst(char *out, size_t n, const char *msg)
{
	size_t len = 0;

	for (const char *p = msg; *p && len + 1 < n;) {
		if (p[0] == '%' && p[1] == 's') {
			len += (size_t)snprintf(out + len, n - len, "%s", tmp);
			p += 2;
		} else {
			out[len++] = *p++;
		}
	}
	out[len < n ? len : n - 1] = '\0';
}

static void test_bad_values(void **state)
{
	char *f = cm_xasprintf("%s/vault/f", tmp);

	(void)state;
	write_file(f, "not a directory\n");
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]);
	     i++) {
		const struct bad_case *c = &bad_cases[i];
		char want[1024];
		struct orch_config cfg;
		struct cm_err err;

		subst(want, sizeof(want), c->msg);
		assert_int_equal(parse(c->json, &cfg, &err), -EINVAL);
		if (strcmp(err.msg, want) != 0)
			fail_msg("case %zu: %s\n got: %s\nwant: %s", i,
				 c->json, err.msg, want);
		/* nothing left to free, and a release is harmless */
		assert_null(cfg.vaults);
		orch_config_release(&cfg);
	}
	free(f);
}

/* "endpoints": each known service to its URL, in the file's order. */
static void test_endpoints(void **state)
{
	struct orch_config cfg;
	struct cm_err err;

	(void)state;
	assert_int_equal(parse("{\"endpoints\": {\"ec2\": \"http://h:1\", "
			       "\"s3\": \"https://s3.local/base\"}}",
			       &cfg, &err),
			 0);
	assert_int_equal(cfg.nendpoints, 2);
	assert_string_equal(cfg.endpoints[0].service, "ec2");
	assert_string_equal(cfg.endpoints[0].url, "http://h:1");
	assert_string_equal(cfg.endpoints[1].service, "s3");
	assert_string_equal(cfg.endpoints[1].url, "https://s3.local/base");
	orch_config_release(&cfg);
	assert_int_equal(parse("{\"endpoints\": null}", &cfg, &err), 0);
	assert_int_equal(cfg.nendpoints, 0);
	orch_config_release(&cfg);
}

static void test_load_errors(void **state)
{
	char *path = cm_xasprintf("%s/missing.json", tmp);
	char want[256];
	struct orch_config cfg;
	struct cm_err err;

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(orch_config_load(path, &cfg, &err), -ENOENT);
	snprintf(want, sizeof(want),
		 "config: %s: No such file or directory", path);
	assert_string_equal(err.msg, want);
	free(path);

	path = cm_xasprintf("%s/bad.json", tmp);
	write_file(path, "{\n \"vaults\": [\n");
	assert_int_equal(orch_config_load(path, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "config: "));
	assert_non_null(strstr(err.msg, "bad.json: invalid JSON near line"));
	free(path);
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "0", 0 },
		{ "5242880", 5242880 },
		{ "64MiB", 64ull << 20 },
		{ "64 MiB", 64ull << 20 },
		{ "64mb", 64ull << 20 },
		{ "8M", 8ull << 20 },
		{ "1g", 1ull << 30 },
		{ "2KiB", 2048 },
		{ "1T", 1ull << 40 },
		{ "100B", 100 },
		{ " 7k ", 7168 },
	};
	static const char *const bad[] = {
		"", "MiB", "1.5GiB", "-1", "12Q", "1 MiBs", "99999999999999999999",
		"20000000T",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(orch_parse_size(ok[i].s, &v), 0);
		assert_int_equal(v, ok[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (orch_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_object_is_default,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_small_variants, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, setup,
						teardown),
		cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
