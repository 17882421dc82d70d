/*
 * s3opts.c - see s3opts.h.
 */
#include "s3opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char vf_s3_client_help[] =
	"S3 client options:\n"
	"  --endpoint-url URL        S3 endpoint (default: AWS_ENDPOINT_URL_S3,\n"
	"                            AWS_ENDPOINT_URL, else AWS for the region);\n"
	"                            an endpoint means path-style addressing\n"
	"  --region REGION           (default: AWS_REGION, AWS_DEFAULT_REGION,\n"
	"                            the profile's, else us-east-1)\n"
	"  --profile NAME            credentials and region profile\n"
	"  --expected-bucket-owner ID  send x-amz-expected-bucket-owner\n";

const char vf_s3_upload_help[] =
	"upload options:\n"
	"  --expected-size SIZE      expected object size when streaming (sizes\n"
	"                            the parts; default: unknown)\n"
	"  --part-size SIZE          part size, 5M..5G (default 8M; grows when\n"
	"                            needed to stay under 10,000 parts)\n"
	"  --concurrency N           parts in flight (default 4)\n"
	"  --storage-class CLASS     e.g. STANDARD_IA, GLACIER\n"
	"  --sse AES256|aws:kms      server-side encryption\n"
	"  --sse-kms-key-id ID       KMS key (implies --sse aws:kms)\n"
	"  --unsigned-payload        send UNSIGNED-PAYLOAD with Content-MD5\n"
	"SIZE takes a K, M, G or T suffix (powers of 1024).\n";

int vf_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		break;
	}
	if (shift) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int vf_s3_opt(const char *cmd, int c, const char *arg, struct vf_s3_cli *o)
{
	uint64_t v;

	switch (c) {
	case VF_OPT_EXPECTED_SIZE:
	case VF_OPT_PART_SIZE:
		if (vf_parse_size(arg, &v)) {
			fprintf(stderr, "vaultfs: %s: --%s: bad size '%s'\n",
				cmd,
				c == VF_OPT_PART_SIZE ? "part-size"
						      : "expected-size",
				arg);
			return -1;
		}
		if (c == VF_OPT_PART_SIZE)
			o->part_size = v;
		else
			o->expected_size = v;
		return 1;
	case VF_OPT_CONCURRENCY:
		if (vf_parse_size(arg, &v) || v < 1 || v > 64) {
			fprintf(stderr,
				"vaultfs: %s: --concurrency: a number from 1 "
				"to 64, not '%s'\n",
				cmd, arg);
			return -1;
		}
		o->concurrency = (unsigned)v;
		return 1;
	case VF_OPT_STORAGE_CLASS:
		o->client.storage_class = arg;
		return 1;
	case VF_OPT_SSE:
		o->client.sse = arg;
		return 1;
	case VF_OPT_SSE_KMS_KEY_ID:
		o->client.sse_kms_key_id = arg;
		return 1;
	case VF_OPT_ENDPOINT_URL:
		o->client.endpoint = arg;
		return 1;
	case VF_OPT_REGION:
		o->client.region = arg;
		return 1;
	case VF_OPT_PROFILE:
		o->client.profile = arg;
		return 1;
	case VF_OPT_UNSIGNED_PAYLOAD:
		o->client.unsigned_payload = true;
		return 1;
	case VF_OPT_EXPECTED_BUCKET_OWNER:
		o->client.expected_bucket_owner = arg;
		return 1;
	default:
		return 0;
	}
}
