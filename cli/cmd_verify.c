/*
 * cmd_verify.c - `vaultfs verify URL`: prove a stored archive whole, any
 * time after it was written (a scrub). archiver/verify.h's arc_verify()
 * does the work: the object read back, decoded end to end, every tar header
 * walked, and sizes, sha256 and counts matched against the manifest.
 *
 * An archive written in members is read and decoded on --threads threads
 * (unpack.h), older ones through a streaming decoder.
 *
 * Exit 0 only when the archive is whole; 1 with one line naming the first
 * bad member or entry; 2 for a bad command line. SIGINT, SIGTERM and SIGHUP
 * raise the cancel flag the transfer polls, and the client's requests
 * watch (a GET the server does not answer ends too).
 */
#include "commands.h"
#include "usage.h"
#include "progress.h"
#include "s3opts.h"

#include "url.h"
#include "verify.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_MANIFEST = 300,
	OPT_THREADS,
};

static const struct option long_opts[] = {
	{ "manifest", required_argument, NULL, OPT_MANIFEST },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	VF_S3_LONG_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

static atomic_int cancel_flag;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs verify [OPTIONS] URL\n\n"
		"Read an archive back and prove it whole: decompressed end to "
		"end (every\ngzip member's CRC-32 and ISIZE, every zstd "
		"frame's checksum), every tar\nheader walked, and its size, "
		"sha256 and counts of entries and bytes\nmatched against its "
		"manifest.\n\n"
		"URL   s3://bucket/key or a local path of an archive; or a "
		"job's folder\n      ending in '/' (s3://bucket/prefix/ or "
		"DIR/), holding backup.* or\n      rawbackup.* and "
		"manifest.json. The manifest is found where\n      `vaultfs "
		"archive` writes it: manifest.json beside backup.tar.gz\n"
		"      and the other default names, else URL.manifest.json.\n\n"
		"options:\n"
		"  --manifest PATH|s3://...  the manifest to check against\n"
		"  --threads N               read and decode on N threads "
		"(default: the\n"
		"                            CPUs, at least 2)\n"
		"  -q, --quiet               no progress bar, no summary\n"
		"  -h, --help                this help\n\n%s",
		vf_s3_client_help);
	vf_help_end(f, "verify");
}

static void summary(const struct arc_verify_result *r)
{
	char size[32], units[96] = "", par[40] = "";

	vf_format_bytes(r->size, size, sizeof(size));
	/* an archive in members says it was decoded in parallel */
	if (r->threads)
		snprintf(par, sizeof(par), " decoded on %u threads",
			 r->threads);
	if (r->codec != ARC_CODEC_NONE)
		snprintf(units, sizeof(units), ", %llu %s%s%s",
			 (unsigned long long)r->units,
			 r->codec == ARC_CODEC_ZSTD ? "frame" : "member",
			 r->units == 1 ? "" : "s", par);
	if (r->method == ARC_METHOD_RAW)
		printf("verified %s: %s %s%s, a raw image of %llu bytes\n",
		       r->object_url, size, arc_codec_name(r->codec), units,
		       (unsigned long long)r->counts.bytes);
	else
		printf("verified %s: %s %s%s, %llu tar entries, %llu bytes of "
		       "tar\n", r->object_url, size, arc_codec_name(r->codec),
		       units, (unsigned long long)r->counts.entries,
		       (unsigned long long)r->counts.bytes);
	if (r->indexed)
		printf("verified %s: the index (%llu bytes) describes it\n",
		       r->index_url, (unsigned long long)r->index_size);
}

int cmd_verify(int argc, char **argv)
{
	struct vf_s3_cli s3;
	struct arc_verify_opts vo = { 0 };
	struct arc_verify_result res;
	struct s3_client *client = NULL;
	struct vf_progress_feed feed = { 0 };
	const char *manifest = NULL;
	bool quiet = false;
	struct cm_err err;
	int c, r, rc;

	memset(&s3, 0, sizeof(s3));
	memset(&res, 0, sizeof(res));
	optind = 1;
	while ((c = vf_getopt("verify", argc, argv, "qh", long_opts)) != -1) {
		switch (c) {
		case OPT_MANIFEST:
			manifest = optarg;
			break;
		case OPT_THREADS:
			if (vf_parse_threads("verify", optarg, &vo.threads))
				return VF_EXIT_USAGE;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case VF_OPT_BAD:
			return VF_EXIT_USAGE;
		default:
			r = vf_s3_opt("verify", c, optarg, &s3);
			if (r == 1)
				break;
			return VF_EXIT_USAGE;
		}
	}
	r = vf_operands("verify", argc, argv, optind, "URL");
	if (r)
		return r;
	if (!*argv[optind])
		return vf_usage_error("verify", "the URL is empty");
	if (vf_check_place("verify", argv[optind]) ||
	    vf_check_place("verify", manifest))
		return VF_EXIT_USAGE;
	cm_err_clear(&err);
	vf_cancel_on_signals(&cancel_flag);
	vo.url = argv[optind];
	vo.manifest = manifest;
	if (cm_url_kind(vo.url) == CM_URL_S3 ||
	    cm_url_kind(manifest) == CM_URL_S3) {
		client = s3_client_new(&s3.client, &err);
		if (!client) {
			rc = -EINVAL;
			goto out;
		}
		s3_client_set_cancel(client, &cancel_flag);
	}
	vo.client = client;
	vo.cancel = &cancel_flag;
	vo.progress = vf_progress_feed_fn;
	vo.progress_ctx = &feed;
	feed.bar = vf_progress_start(vo.url, 0, vf_progress_feed_now, &feed,
				     quiet);
	rc = arc_verify(&vo, &res, &err);
	vf_progress_stop(feed.bar, rc == 0);
	if (rc == 0 && !quiet)
		summary(&res);
out:
	if (rc == -ECANCELED && atomic_load(&cancel_flag)) {
		arc_verify_result_release(&res);
		s3_client_free(client);
		return vf_cancelled("verify", atomic_load(&cancel_flag), NULL);
	}
	if (rc)
		fprintf(stderr, "vaultfs: verify %s: %s\n",
			res.object_url ? res.object_url : vo.url ? vo.url : "",
			err.msg);
	arc_verify_result_release(&res);
	s3_client_free(client);
	return rc ? 1 : 0;
}
