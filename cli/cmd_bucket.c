/*
 * cmd_bucket.c - `vaultfs bucket setup [--config F] [--dry-run]`: check
 * that the destination bucket is reachable (and owned by
 * expectedBucketOwner, which the client sends with every request), then
 * apply the configured lifecycleRules with PutBucketLifecycleConfiguration:
 * one rule for the destination prefix with the GLACIER and DEEP_ARCHIVE
 * transitions and the expiration that are set, and always
 * AbortIncompleteMultipartUpload after 7 days, so that an upload no crash
 * recovery could reach does not cost forever.
 *
 * The rule (id "vaultfs-archive") is merged into the bucket's lifecycle
 * configuration (core/s3_lifecycle.h): every other rule of the bucket is
 * kept byte for byte, an earlier vaultfs rule is replaced. Transitions and
 * expiration act only under the destination prefix; a destination
 * without a prefix may not have them (they would reach every object of
 * the bucket). --dry-run prints the merged configuration and applies
 * nothing.
 */
#include "commands.h"
#include "usage.h"

#include "config.h"
#include "dest.h"
#include "mem.h"
#include "orch.h"
#include "s3.h"
#include "s3_lifecycle.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ABORT_INCOMPLETE_DAYS 7
#define RULE_ID "vaultfs-archive"

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs bucket setup [--config FILE] [--dry-run]\n\n"
		"Check that the destination bucket is reachable (and owned by "
		"expectedBucketOwner),\nthen apply lifecycleRules to it: "
		"transitions to GLACIER and DEEP_ARCHIVE,\nexpiration, and "
		"the abort of multipart uploads left incomplete for %d days.\n"
		"The rule (id \"" RULE_ID "\") is merged into the bucket's "
		"lifecycle configuration:\nits other rules are kept, an "
		"earlier vaultfs rule is replaced.\n\n"
		"options:\n"
		"  -c, --config FILE  the configuration (default: the "
		"embedded default)\n"
		"  -n, --dry-run      check the bucket, print the rule and the "
		"merged\n                     configuration, apply nothing\n"
		"  -h, --help         this help\n",
		ABORT_INCOMPLETE_DAYS);
	vf_help_end(f, "bucket");
}

static void describe(const struct s3_lifecycle_rule *r, const char *bucket)
{
	printf("lifecycle rule \"%s\" for s3://%s/%s:\n", r->id, bucket,
	       r->prefix ? r->prefix : "");
	if (r->glacier_days)
		printf("  transition to GLACIER after %u days\n",
		       r->glacier_days);
	if (r->deep_archive_days)
		printf("  transition to DEEP_ARCHIVE after %u days\n",
		       r->deep_archive_days);
	if (r->expiration_days)
		printf("  expire after %u days\n", r->expiration_days);
	else
		printf("  never expire\n");
	printf("  abort incomplete multipart uploads after %u days\n",
	       r->abort_incomplete_days);
}

static int setup(const struct orch_config *cfg, bool dry_run)
{
	struct s3_lifecycle_rule rule;
	struct s3_lifecycle_merged merged;
	struct orch_dest *dest = NULL;
	struct s3_client *s3;
	struct cm_buf old, doc;
	struct cm_err err;
	char *prefix = NULL;
	bool found;
	int rc;

	cm_err_clear(&err);
	cm_buf_init(&old, 0);
	cm_buf_init(&doc, 0);
	rc = orch_dest_new(cfg, &dest, &err);
	if (rc)
		goto out;
	/* lifecycle rules are a bucket's: other destinations have none */
	if (!dest->bucket || !dest->s3) {
		printf("destination %s is a local directory: nothing to set "
		       "up\n", dest->where);
		goto out;
	}
	s3 = dest->s3;
	memset(&rule, 0, sizeof(rule));
	rule.id = RULE_ID;
	if (*dest->prefix)
		prefix = cm_xasprintf("%s/", dest->prefix);
	rule.prefix = prefix;
	rule.glacier_days = cfg->lifecycle.glacier;
	rule.deep_archive_days = cfg->lifecycle.deep_archive;
	rule.expiration_days = cfg->lifecycle.expiration;
	rule.abort_incomplete_days = ABORT_INCOMPLETE_DAYS;
	if (!prefix && (rule.glacier_days || rule.deep_archive_days ||
			rule.expiration_days)) {
		rc = cm_err_set(&err, EINVAL,
				"lifecycleRules: transitions and expiration "
				"would act on every object of s3://%s; give "
				"the destination a prefix (s3://%s/PREFIX)",
				dest->bucket, dest->bucket);
		goto out;
	}
	rc = s3_head_bucket(s3, dest->bucket, &err);
	if (rc) {
		cm_err_prefix(&err, "bucket %s", dest->bucket);
		goto out;
	}
	printf("bucket %s: reachable%s%s%s\n", dest->bucket,
	       cfg->expected_bucket_owner ? ", owned by " : "",
	       cfg->expected_bucket_owner ? cfg->expected_bucket_owner : "",
	       cfg->expected_bucket_owner ? " as expected" : "");
	rc = s3_get_bucket_lifecycle(s3, dest->bucket, &old, &found, &err);
	if (!rc)
		rc = s3_lifecycle_merge(old.data, old.len, &rule, &doc,
					&merged, &err);
	if (rc) {
		cm_err_prefix(&err, "bucket %s: lifecycle", dest->bucket);
		goto out;
	}
	if (dry_run) {
		printf("would apply ");
		describe(&rule, dest->bucket);
		printf("%s rule \"%s\", keeping %u other rule%s; the merged "
		       "configuration:\n%.*s\n",
		       merged.replaced ? "replacing" : "adding", RULE_ID,
		       merged.kept, merged.kept == 1 ? "" : "s", (int)doc.len,
		       doc.data);
		goto out;
	}
	rc = s3_put_bucket_lifecycle_xml(s3, dest->bucket, doc.data, doc.len,
					 &err);
	if (rc) {
		cm_err_prefix(&err, "bucket %s: lifecycle", dest->bucket);
		goto out;
	}
	printf("applied ");
	describe(&rule, dest->bucket);
	printf("%s rule \"%s\", kept %u other rule%s of the bucket\n",
	       merged.replaced ? "replaced" : "added", RULE_ID, merged.kept,
	       merged.kept == 1 ? "" : "s");
out:
	if (rc)
		fprintf(stderr, "vaultfs: bucket setup: %s\n", err.msg);
	cm_buf_release(&old);
	cm_buf_release(&doc);
	free(prefix);
	orch_dest_free(dest);
	return rc ? 1 : 0;
}

int cmd_bucket(int argc, char **argv)
{
	const char *config = NULL;
	struct orch_config cfg;
	bool dry_run = false;
	int c, rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") ||
			  !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 2)
		return vf_usage_error("bucket", "missing the command (setup)");
	if (strcmp(argv[1], "setup") != 0)
		return vf_usage_error("bucket", "unknown command '%s' (setup "
				      "is the one)", argv[1]);
	argc--;
	argv++;
	optind = 1;
	while ((c = vf_getopt("bucket setup", argc, argv, "c:nh",
			      long_opts)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return VF_EXIT_USAGE;
		}
	}
	rc = vf_operands("bucket setup", argc, argv, optind, "");
	if (rc)
		return rc;
	rc = vf_load_config("bucket setup", config, &cfg);
	if (rc)
		return rc;
	rc = setup(&cfg, dry_run);
	orch_config_release(&cfg);
	return rc;
}
