/*
 * cmd_archive.c - `vaultfs archive SRC DEST`: archive one thing now.
 *
 * Options in, archiver/archive.h's arc_run() does the work, a progress bar
 * on a terminal. Exit status: 0 the archive is whole; 1 it failed (with
 * --strict: also at the first item it would leave out); 2 a usage error;
 * VF_EXIT_INCOMPLETE (3) it was written, but something was left out or
 * changed while read (the manifest's "complete": false and "skipped"). SIGINT, SIGTERM and SIGHUP only raise the cancel flag the
 * source polls: the normal failure path then aborts the upload, unmounts
 * and detaches, so nothing is left behind.
 */
#include "commands.h"
#include "progress.h"
#include "s3opts.h"
#include "usage.h"

#include "run.h"
#include "mem.h"
#include "url.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	OPT_MODE = 300,
	OPT_CODEC,
	OPT_LEVEL,
	OPT_THREADS,
	OPT_MANIFEST,
	OPT_STRICT,
	OPT_OVERLAY_LIMIT,
	OPT_FORCE,
};

/* The archive is written and usable, but not the whole source. */
#define VF_EXIT_INCOMPLETE 3

static const struct option long_opts[] = {
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "codec", required_argument, NULL, OPT_CODEC },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "manifest", required_argument, NULL, OPT_MANIFEST },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "overlay-limit", required_argument, NULL, OPT_OVERLAY_LIMIT },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	VF_S3_LONG_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

struct archive_cli {
	struct vf_s3_cli s3;
	enum arc_mode mode;
	struct arc_codec_opts codec;
	const char *manifest;  /* --manifest, or NULL */
	bool strict;
	uint64_t overlay_limit; /* --overlay-limit, or 0 */
	bool quiet;
	bool force;
	bool level_given;
	const char *src;
	const char *dest;
};

static atomic_int cancel_flag;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs archive [OPTIONS] SRC DEST\n\n"
		"Archive SRC now, as one compressed stream, into DEST.\n"
		"SRC   a directory, a block device or a disk-image file. In auto "
		"mode a\n      device or image is probed: a filesystem is "
		"mounted read-only and\n      archived as a tar, a partitioned "
		"disk partition by partition,\n      anything else as raw "
		"bytes.\n"
		"DEST  s3://bucket/prefix/ (object named backup.tar.gz or "
		"rawbackup.gz,\n      manifest.json beside it), s3://bucket/key, "
		"a file or directory\n      path, or - for stdout.\n\n"
		"options:\n"
		"  --mode auto|tree|raw      how to read SRC (default auto)\n"
		"  --codec gzip|zstd|none    compression (default gzip)\n"
		"  --level N                 gzip 1-9 (default 6), zstd 1-19 "
		"(default 3);\n"
		"                            none takes no level\n"
		"  --threads N               compression threads (default: "
		"all CPUs)\n"
		"  --manifest PATH|s3://...  where to write the manifest\n"
		"  --strict                  fail at the first item that "
		"cannot be archived\n"
		"                            as it is (unreadable, changed "
		"while read, ...)\n"
		"  --overlay-limit SIZE      what replaying a journal may "
		"write into its\n                            copy-on-write "
		"overlay (in $TMPDIR; default 2G)\n"
		"  --force                   replace a local DEST (or "
		"manifest) that exists\n"
		"  -q, --quiet               no progress bar\n"
		"  -h, --help                this help\n\n"
		"%s\n%s",
		vf_s3_upload_help, vf_s3_client_help);
	vf_help_end(f, "archive");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

/* 0 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct archive_cli *o)
{
	long v;
	int c, r, lo, hi, def;

	memset(o, 0, sizeof(*o));
	o->mode = ARC_MODE_AUTO;
	o->codec.codec = ARC_CODEC_GZIP;
	o->codec.level = -1;
	optind = 1;
	while ((c = vf_getopt("archive", argc, argv, "qh", long_opts)) != -1) {
		switch (c) {
		case OPT_MODE:
			if (arc_mode_parse(optarg, &o->mode))
				return vf_usage_error("archive", "--mode: "
						      "auto, tree or raw, not "
						      "'%s'", optarg);
			break;
		case OPT_CODEC:
			if (arc_codec_parse(optarg, &o->codec.codec))
				return vf_usage_error("archive", "--codec: "
						      "gzip, zstd or none, "
						      "not '%s'", optarg);
			break;
		case OPT_LEVEL:
			/* the range is the codec's, checked below */
			if (parse_int(optarg, 0, 99, &v))
				return vf_usage_error("archive", "--level: "
						      "not a level: '%s'",
						      optarg);
			o->codec.level = (int)v;
			o->level_given = true;
			break;
		case OPT_THREADS:
			if (parse_int(optarg, 0, 256, &v))
				return vf_usage_error("archive", "--threads: "
						      "0 to 256, not '%s'",
						      optarg);
			o->codec.threads = (unsigned)v;
			break;
		case OPT_MANIFEST:
			o->manifest = optarg;
			break;
		case OPT_STRICT:
			o->strict = true;
			break;
		case OPT_OVERLAY_LIMIT:
			if (vf_parse_size(optarg, &o->overlay_limit) ||
			    o->overlay_limit == 0)
				return vf_usage_error("archive",
						      "--overlay-limit: not a "
						      "size: '%s'", optarg);
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case VF_OPT_BAD:
			return VF_EXIT_USAGE;
		default:
			r = vf_s3_opt("archive", c, optarg, &o->s3);
			if (r == 1)
				break;
			return VF_EXIT_USAGE;
		}
	}
	r = vf_operands("archive", argc, argv, optind, "SRC DEST");
	if (r)
		return r;
	o->src = argv[optind];
	o->dest = argv[optind + 1];
	if (vf_check_place("archive", o->dest) ||
	    vf_check_place("archive", o->manifest))
		return VF_EXIT_USAGE;
	arc_codec_levels(o->codec.codec, &lo, &hi, &def);
	if (o->level_given && hi == 0)
		return vf_usage_error("archive", "--level: --codec %s takes "
				      "no level",
				      arc_codec_name(o->codec.codec));
	if (o->level_given && (o->codec.level < lo || o->codec.level > hi))
		return vf_usage_error("archive", "--level: %s takes %d to %d, "
				      "not %d", arc_codec_name(o->codec.codec),
				      lo, hi, o->codec.level);
	return 0;
}

static void object_started(void *ctx, const char *url, enum arc_method m)
{
	*(bool *)ctx = true;
}

int cmd_archive(int argc, char **argv)
{
	struct archive_cli o;
	struct arc_run_opts ro = { 0 };
	struct arc_run_result res;
	struct s3_client *client = NULL;
	struct vf_progress_feed feed = { 0 };
	struct cm_err err;
	char *label;
	bool started = false; /* the object's place known, bytes may flow */
	int rc, status;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	cm_err_clear(&err);
	vf_cancel_on_signals(&cancel_flag);
	memset(&res, 0, sizeof(res));

	if (cm_url_kind(o.dest) == CM_URL_S3 ||
	    cm_url_kind(o.manifest) == CM_URL_S3) {
		client = s3_client_new(&o.s3.client, &err);
		if (!client) {
			rc = -EINVAL;
			goto out;
		}
	}
	ro.src = o.src;
	ro.mode = o.mode;
	ro.codec = o.codec;
	ro.dest = o.dest;
	ro.manifest = o.manifest;
	ro.client = client;
	ro.upload.expected_size = o.s3.expected_size;
	ro.upload.part_size = o.s3.part_size;
	ro.upload.concurrency = o.s3.concurrency;
	ro.cancel = &cancel_flag;
	/* parts on the wire stop too, not only the reading */
	ro.upload.cancel = &cancel_flag;
	ro.progress = vf_progress_feed_fn;
	ro.progress_ctx = &feed;
	ro.strict = o.strict;
	ro.overlay_limit = o.overlay_limit;
	ro.no_clobber = !o.force;
	ro.on_object = object_started;
	ro.object_ctx = &started;

	label = cm_xasprintf("%s -> %s", o.src, o.dest);
	feed.bar = vf_progress_start(label, 0, vf_progress_feed_now, &feed,
				     o.quiet);
	free(label);
	rc = arc_run(&ro, &res, &err);
	vf_progress_stop(feed.bar, rc == 0);
	if (rc == 0 && !o.quiet && isatty(STDERR_FILENO))
		fprintf(stderr, "vaultfs: archive: %s (%s) -> %s\n", o.src,
			arc_method_name(res.method), res.object_url);
out:
	if (rc == -ECANCELED && atomic_load(&cancel_flag)) {
		/* nothing is left behind either way (see the top); the
		 * upload is named only when one was begun */
		bool upload = started && cm_url_kind(o.dest) == CM_URL_S3;

		arc_run_result_release(&res);
		s3_client_free(client);
		return vf_cancelled("archive", atomic_load(&cancel_flag),
				    upload ? "upload aborted" : NULL);
	}
	if (rc)
		fprintf(stderr, "vaultfs: archive: %s%s\n", err.msg,
			rc == -EEXIST ? " (--force replaces it)" : "");
	if (rc == 0 && !arc_stats_complete(&res.stats)) {
		char *what = arc_stats_summary(&res.stats);

		fprintf(stderr, "vaultfs: archive: incomplete: %s (all in the "
			"manifest's \"skipped\")\n", what);
		free(what);
	}
	status = rc ? 1 : arc_stats_complete(&res.stats) ? 0
							 : VF_EXIT_INCOMPLETE;
	arc_run_result_release(&res);
	s3_client_free(client);
	return status;
}
