/*
 * s3opts.h - the options every command that talks to S3 takes, parsed in
 * one place (`vaultfs s3 cp`, `vaultfs archive`, ...).
 *
 * A command puts VF_S3_LONG_OPTIONS into its getopt_long table and hands
 * every option it does not know itself to vf_s3_opt(). Strings in the
 * result are borrowed from argv.
 */
#ifndef VAULTFS_S3OPTS_H
#define VAULTFS_S3OPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "s3.h"

struct vf_s3_cli {
	struct s3_client_opts client;
	uint64_t expected_size;  /* 0: unknown */
	uint64_t part_size;      /* 0: the uploader's default */
	unsigned concurrency;    /* 0: the uploader's default */
};

enum {
	VF_OPT_EXPECTED_SIZE = 512,
	VF_OPT_PART_SIZE,
	VF_OPT_CONCURRENCY,
	VF_OPT_STORAGE_CLASS,
	VF_OPT_SSE,
	VF_OPT_SSE_KMS_KEY_ID,
	VF_OPT_ENDPOINT_URL,
	VF_OPT_REGION,
	VF_OPT_PROFILE,
	VF_OPT_UNSIGNED_PAYLOAD,
	VF_OPT_EXPECTED_BUCKET_OWNER,
};

#define VF_S3_LONG_OPTIONS                                                    \
	{ "expected-size", required_argument, NULL, VF_OPT_EXPECTED_SIZE },   \
	{ "part-size", required_argument, NULL, VF_OPT_PART_SIZE },           \
	{ "concurrency", required_argument, NULL, VF_OPT_CONCURRENCY },       \
	{ "storage-class", required_argument, NULL, VF_OPT_STORAGE_CLASS },   \
	{ "sse", required_argument, NULL, VF_OPT_SSE },                       \
	{ "sse-kms-key-id", required_argument, NULL, VF_OPT_SSE_KMS_KEY_ID }, \
	{ "endpoint-url", required_argument, NULL, VF_OPT_ENDPOINT_URL },     \
	{ "region", required_argument, NULL, VF_OPT_REGION },                 \
	{ "profile", required_argument, NULL, VF_OPT_PROFILE },               \
	{ "unsigned-payload", no_argument, NULL, VF_OPT_UNSIGNED_PAYLOAD },   \
	{ "expected-bucket-owner", required_argument, NULL,                   \
	  VF_OPT_EXPECTED_BUCKET_OWNER }

/* Help text for the client options and for the upload options. */
extern const char vf_s3_client_help[];
extern const char vf_s3_upload_help[];

/*
 * Handle option `c` with argument `arg` if it is one of the above.
 * Returns 1 when handled, 0 when `c` is not an S3 option, and -1 after
 * printing "vaultfs: CMD: ..." for a bad value.
 */
int vf_s3_opt(const char *cmd, int c, const char *arg, struct vf_s3_cli *o);

/* Integers with an optional binary suffix: "8M", "8MiB", "1G", "512".
 * 0 or -EINVAL. */
int vf_parse_size(const char *s, uint64_t *out);

#endif
