/*
 * aws_creds.h - where AWS credentials come from, in the order AWS SDKs use:
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN; skipped when the options name a profile (as the
 *      SDKs skip it for a profile given in code or by --profile; one from
 *      AWS_PROFILE does not skip it)
 *   2. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config, "[profile NAME]" sections), profile
 *      from AWS_PROFILE (or the explicit option), "default" otherwise
 *   3. ECS container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 *      (against 169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header
 *   4. EC2 instance metadata, IMDSv2: PUT /latest/api/token, then
 *      GET /latest/meta-data/iam/security-credentials/ (role), then the
 *      role's credentials; AWS_EC2_METADATA_SERVICE_ENDPOINT overrides
 *      http://169.254.169.254, AWS_EC2_METADATA_DISABLED=true skips it.
 *
 * A profile (step 2) gives, in the SDKs' order:
 *   - a role: role_arn with source_profile (another profile's credentials,
 *     or its own keys when it names itself; chains up to 5 deep) or
 *     credential_source (Environment, Ec2InstanceMetadata, EcsContainer):
 *     STS AssumeRole, with role_session_name, external_id and
 *     duration_seconds when set; mfa_serial is refused (no one to type
 *     the code);
 *   - role_arn with web_identity_token_file: AssumeRoleWithWebIdentity;
 *   - static keys (credentials file, then config file);
 *   - credential_process: the command is split into words as a POSIX
 *     shell would (quotes, backslashes) but run without a shell (no
 *     expansion, no pipes), stdin /dev/null, killed after 60 s; its
 *     stdout must be {"Version": 1, "AccessKeyId", "SecretAccessKey",
 *     "SessionToken"?, "Expiration"?}; a failure names the exit status and
 *     the first line of its stderr.
 * Between steps 2 and 3: web identity from the environment,
 * AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (and AWS_ROLE_SESSION_NAME),
 * as on EKS. The token file is read again at each refresh.
 * STS is asked in the profile's (else the environment's, else us-east-1)
 * region, at the endpoint aws.h resolves for "sts" (AWS_ENDPOINT_URL_STS,
 * AWS_ENDPOINT_URL, default); web identity requests are not signed.
 * SSO profiles are refused with a message that says so.
 *
 * Temporary credentials (ECS, IMDS, roles, processes with an Expiration)
 * are refreshed a few minutes before they expire. A provider is shared by every worker: aws_creds_get is
 * thread-safe and hands out a copy.
 *
 * Secrets never appear in log lines or error messages.
 */
#ifndef VAULTFS_AWS_CREDS_H
#define VAULTFS_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

struct aws_creds {
	char *access_key_id;      /* owned */
	char *secret_access_key;  /* owned; wiped on release */
	char *session_token;      /* owned; NULL when none */
	time_t expires;           /* 0: does not expire */
	const char *source;       /* static: "environment", "profile",
				   * "ecs", "imds", "assume-role",
				   * "web-identity", "credential_process" */
};

void aws_creds_release(struct aws_creds *c);
void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src);

struct aws_creds_opts {
	const char *profile;  /* NULL: AWS_PROFILE, else "default" */
};

struct aws_creds_provider;

struct aws_creds_provider *aws_creds_provider_new(
	const struct aws_creds_opts *opts);
void aws_creds_provider_free(struct aws_creds_provider *p);
/* Where the current credentials came from, in the chain's terms:
 * "environment", "profile prod", "AWS_WEB_IDENTITY_TOKEN_FILE", "ECS
 * container endpoint", "EC2 instance metadata" ("" before the first
 * aws_creds_get). With aws_creds.source it says how: "profile prod" and
 * "assume-role" is a role that profile assumes. */
void aws_creds_origin(struct aws_creds_provider *p, char *out, size_t n);

/* A provider that hands out c (copied) and never refreshes it. */
struct aws_creds_provider *
aws_creds_provider_new_static(const struct aws_creds *c);

/* Current credentials into *out (caller releases). Fails with a message
 * that lists the sources tried: -ENOKEY when no source has credentials,
 * -EINVAL for a broken setup (an SSO profile, a role without a source, a
 * malformed file), -EACCES when the ECS endpoint or STS refuses, -EIO when
 * a credential_process fails. Fault sites "creds.ecs" and "creds.imds". */
int aws_creds_get(struct aws_creds_provider *p, struct aws_creds *out,
		  struct cm_err *err);

/* Region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region` in
 * the config file; NULL if none. The caller frees the result. */
char *aws_region_resolve(const char *profile);
/* The same, and where it came from into `from` ("AWS_REGION", "profile
 * prod"). */
char *aws_region_find(const char *profile, char *from, size_t fromlen);

/*
 * The region of the EC2 instance this runs on, from IMDSv2
 * (/latest/meta-data/placement/region), with p's IMDS session, asked
 * once per provider and kept. -ENOENT
 * when AWS_EC2_METADATA_DISABLED is true; otherwise a failure names the
 * endpoint. The caller frees *out.
 */
int aws_imds_region(struct aws_creds_provider *p, char **out,
		    struct cm_err *err);

/*
 * One item of this instance's metadata from IMDSv2 with p's IMDS session
 * (the token is kept and shared with the credentials and the region):
 * `path` as "/latest/meta-data/instance-id" or ".../placement/
 * availability-zone", the endpoint AWS_EC2_METADATA_SERVICE_ENDPOINT or
 * 169.254.169.254 as the SDKs resolve it. The answer, trimmed, must be
 * one word (-EIO otherwise). -ENOENT when AWS_EC2_METADATA_DISABLED is
 * true, -ENODATA on a 404; other failures name the endpoint. Not cached.
 * The caller frees *out.
 */
int aws_imds_get(struct aws_creds_provider *p, const char *path, char **out,
		 struct cm_err *err);

#endif
